#pragma once
// A guard run before DCMTK parses a file: DCMTK reads nested sequences recursively, so a
// hostile file nesting a million sequences overflows the stack and kills the process.
// This walks the element structure iteratively (no recursion, pixel data skipped by seek)
// and refuses files nested deeper than any real data set or whose lengths run past the
// end of their container.

#include <string>

namespace lumen::dicom {

inline constexpr int kMaxSequenceDepth = 32;

/// "" when the structure is sane, otherwise the reason (names the offending element).
std::string checkDicomStructure(const std::string& path);

}  // namespace lumen::dicom
