#pragma once
// SHA-256 (FIPS 180-4), for provenance: every AI result records the hash of the model
// file that produced it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "lumen/core/Result.h"

namespace lumen {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  /// Finishes and returns the digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> digest();
  /// Lower-case hexadecimal digest.
  std::string hex();

  static std::string hexOf(const void* data, std::size_t size);
  static Result<std::string> hexOfFile(const std::filesystem::path& path);
  /// HMAC-SHA-256 (RFC 2104): a keyed hash, so that who lacks the key cannot recompute it.
  static std::array<std::uint8_t, 32> hmac(const std::string& key, const std::string& message);
  /// A DICOM UID made from a digest: "2.25." and the decimal of its first 128 bits (PS3.5
  /// B.2, a UUID-derived UID). The same digest always gives the same UID.
  static std::string uidOf(const std::array<std::uint8_t, 32>& digest);
  /// uidOf the SHA-256 of `text`: a UID that a name determines (a result a batch re-makes
  /// keeps its identity, so a node never receives it twice).
  static std::string uidOfText(const std::string& text);

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t used_ = 0;
  std::uint64_t bits_ = 0;
};

}  // namespace lumen
