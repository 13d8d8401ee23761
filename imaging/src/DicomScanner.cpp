#include "lumen/imaging/DicomScanner.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <sstream>

#include "DcmtkSupport.h"
#include "lumen/core/Log.h"
#include "lumen/core/Parallel.h"

namespace lumen::dicom {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool isDicomdirName(const fs::path& p) { return lower(p.filename().string()) == "dicomdir"; }

bool looksLikeArchive(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".zip" || ext == ".gz" || ext == ".tgz" || ext == ".tar" || ext == ".7z" || ext == ".rar";
}

// DICOMDIR file IDs are upper-case ISO 9660 names; the media may have been copied with
// other case. Resolve each component case-insensitively when the exact path is absent.
std::optional<fs::path> resolveCaseInsensitive(const fs::path& root, const std::vector<std::string>& parts) {
  fs::path cur = root;
  for (const auto& part : parts) {
    fs::path exact = cur / part;
    std::error_code ec;
    if (fs::exists(exact, ec)) {
      cur = exact;
      continue;
    }
    bool found = false;
    for (const auto& e : fs::directory_iterator(cur, ec)) {
      if (lower(e.path().filename().string()) == lower(part)) {
        cur = e.path();
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }
  return cur;
}

// Referenced files of a DICOMDIR; an error text when the DICOMDIR itself is unreadable.
std::string readDicomdir(const fs::path& dicomdir, std::vector<fs::path>& out, std::size_t& missing) {
  initializeDicomLibrary();
  DcmFileFormat ff;
  if (auto err = loadDicomHeader(ff, dicomdir.string()); !err.empty()) return err;
  DcmSequenceOfItems* records = nullptr;
  if (ff.getDataset()->findAndGetSequence(DCM_DirectoryRecordSequence, records).bad() || !records)
    return "DICOMDIR has no DirectoryRecordSequence";
  const fs::path root = dicomdir.parent_path();
  for (unsigned long i = 0; i < records->card(); ++i) {
    DcmItem* rec = records->getItem(i);
    const unsigned long vm = valueCount(rec, DCM_ReferencedFileID);
    if (vm == 0) continue;
    std::vector<std::string> parts;
    bool safe = true;
    for (unsigned long c = 0; c < vm; ++c) {
      std::string part = getString(rec, DCM_ReferencedFileID, c);
      if (part.empty() || part == ".." || part == "." || part.find('/') != std::string::npos) safe = false;
      parts.push_back(part);
    }
    if (!safe) continue;  // a hostile index must not point outside its folder
    if (auto p = resolveCaseInsensitive(root, parts)) out.push_back(*p);
    else ++missing;
  }
  return {};
}

// Lists a folder tree. Every folder that cannot be opened or read to its end (out of file
// descriptors, removed or unreadable while walking) is reported with the reason, and the
// walk goes on with the folders it can read: a series is never silently cut short.
// Iterative (a hostile tree may be very deep); symlinked folders are not followed.
template <class AddFile>
void walkFolder(const fs::path& root, AddFile& addFile, std::vector<SkippedFile>& skipped) {
  std::vector<fs::path> pending{root};
  while (!pending.empty()) {
    const fs::path dir = std::move(pending.back());
    pending.pop_back();
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      skipped.push_back({dir.string(), "cannot list folder: " + ec.message() + " (its files were not read)", true});
      continue;
    }
    std::vector<fs::path> subfolders;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      const fs::path p = it->path();
      std::error_code tec;
      const auto type = it->symlink_status(tec).type();
      if (tec) {
        skipped.push_back({p.string(), "cannot read: " + tec.message(), true});
        continue;
      }
      const auto name = p.filename().string();
      if (type == fs::file_type::directory) {
        subfolders.push_back(p);
      } else if (!name.empty() && name[0] == '.') {
        continue;  // hidden files (.DS_Store, ...)
      } else if (type == fs::file_type::regular || (type == fs::file_type::symlink && fs::is_regular_file(p, tec))) {
        addFile(p);
      }
    }
    // increment() failing leaves the iterator at the end: the rest of this folder is unread.
    if (ec) skipped.push_back({dir.string(), "cannot list folder to its end: " + ec.message() + " (some files were not read)", true});
    std::sort(subfolders.begin(), subfolders.end());
    for (auto r = subfolders.rbegin(); r != subfolders.rend(); ++r) pending.push_back(*r);
  }
}

}  // namespace

const SkippedFile* firstListingError(const std::vector<SkippedFile>& skipped) {
  for (const auto& s : skipped)
    if (s.listingError) return &s;
  return nullptr;
}

std::vector<fs::path> enumerateInputs(const std::vector<fs::path>& inputs, std::vector<SkippedFile>& skipped,
                                      std::vector<std::string>& notes) {
  std::vector<fs::path> files;
  std::set<fs::path> dicomdirReferenced;
  auto addFile = [&](const fs::path& p) {
    if (isDicomdirName(p)) {
      std::vector<fs::path> refs;
      std::size_t missing = 0;
      if (auto err = readDicomdir(p, refs, missing); !err.empty()) {
        skipped.push_back({p.string(), "unreadable DICOMDIR: " + err});
        return;
      }
      std::ostringstream n;
      n << p.string() << ": DICOMDIR references " << refs.size() << " file(s)";
      if (missing) n << ", " << missing << " of them missing on disk";
      notes.push_back(n.str());
      for (auto& r : refs) dicomdirReferenced.insert(r);
      files.insert(files.end(), refs.begin(), refs.end());
      return;
    }
    if (looksLikeArchive(p)) {
      skipped.push_back({p.string(), "archive files are not read; unpack it and open the folder"});
      return;
    }
    files.push_back(p);
  };

  for (const auto& in : inputs) {
    std::error_code ec;
    const auto st = fs::status(in, ec);
    if (ec || !fs::exists(st)) {
      skipped.push_back({in.string(), "no such file or folder"});
      continue;
    }
    if (fs::is_directory(st)) {
      walkFolder(in, addFile, skipped);
    } else if (fs::is_regular_file(st)) {
      addFile(in);
    } else {
      skipped.push_back({in.string(), "not a regular file or folder"});
    }
  }
  // A folder holding a DICOMDIR lists its files twice (walk + index): keep one of each.
  for (auto& f : files) {
    std::error_code ec;
    auto c = fs::weakly_canonical(f, ec);
    if (!ec) f = c;
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

Result<ScanResult> scanInputs(const std::vector<fs::path>& inputs, const ScanOptions& options,
                              const Progress& progress, const CancelToken& cancel) {
  initializeDicomLibrary();
  ScanResult result;
  progress.unknown("Listing files");
  const auto files = enumerateInputs(inputs, result.skipped, result.notes);

  std::vector<std::optional<Result<FileInfo>>> parsed(files.size());
  std::atomic<std::size_t> done{0};
  const std::size_t step = std::max<std::size_t>(1, files.size() / 100);
  parallelFor(files.size(), resolveThreadCount(options.threads), cancel, [&](std::size_t i, int) {
    parsed[i] = readFileInfo(files[i]);
    const std::size_t d = done.fetch_add(1) + 1;
    if (d % step == 0 || d == files.size())
      progress.report(static_cast<double>(d) / static_cast<double>(files.size()), "Reading headers");
  });
  if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "scan cancelled");

  for (auto& r : parsed) {
    if (!r) continue;
    if (r->ok()) result.files.push_back(std::move(r->value()));
    else result.skipped.push_back({r->error().resource, r->error().message});
  }
  LUMEN_INFO("scan: " << result.files.size() << " image file(s), " << result.skipped.size() << " skipped");
  return result;
}

}  // namespace lumen::dicom
