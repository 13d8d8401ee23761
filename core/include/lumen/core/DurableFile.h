#pragma once
// Files that are either absent or complete on disk: written under a temporary name in the
// destination's folder, flushed, renamed into place, and the folder entry flushed too.
// Used wherever Lumen reports something saved or received (settings, the managed store,
// instances a PACS sends): after a crash or power loss the old file or the new one is
// there, never a torn one.

#include <filesystem>
#include <string_view>

#include "lumen/core/Result.h"

namespace lumen {

/// A temporary name beside `dest` that no other thread or process shares.
std::filesystem::path temporaryPathFor(const std::filesystem::path& dest);

/// Removes what writers of `dest` that died (killed mid-write: no cleanup ran) left beside
/// it under temporaryPathFor() names; those of processes still alive are left alone.
/// Returns how many were removed.
std::size_t removeAbandonedTemporaries(const std::filesystem::path& dest);

/// Whether commitFile flushes the folder itself, or leaves that to a caller that commits
/// many files into few folders and flushes each folder once (syncFolder) before it reports
/// any of them saved.
enum class FolderSync { Now, ByCaller };

/// Flushes `tmp` (complete, closed) to disk, renames it to `dest` (replacing it) and
/// flushes the folder. On failure `tmp` is removed and `dest` is untouched.
Status commitFile(const std::filesystem::path& tmp, const std::filesystem::path& dest,
                  FolderSync folder = FolderSync::Now);

/// Flushes a folder's entries (renames, new files and folders in it) to disk.
Status syncFolder(const std::filesystem::path& dir);

/// Writes `bytes` to `dest` durably, with permission bits `mode` (e.g. 0600 for a file
/// that holds credentials).
Status writeFileDurably(const std::filesystem::path& dest, std::string_view bytes, unsigned mode = 0644);

}  // namespace lumen
