#pragma once
// Errors a user can cause (bad file, missing GPU, out of memory) travel as values. The
// message names the file or resource and the reason; it must never contain patient data.
// Bugs are assertions, not Errors.

#include <cassert>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace lumen {

enum class ErrorCode {
  InvalidArgument,  // the caller asked for something impossible
  NotFound,         // file, series, model... does not exist
  Io,               // read/write failed
  NotDicom,         // file is not DICOM at all
  Corrupt,          // truncated, inconsistent lengths, lies about its size
  Unsupported,      // valid but not something we can handle (codec, SOP class...)
  Inconsistent,     // a set of files that cannot form what was asked (geometry, sizes)
  TooLarge,         // would exceed a memory or size limit
  Cancelled,        // the user cancelled
  OutOfMemory,
  Database,
  Model,            // a model bundle or tensor is malformed
  NotTrusted,       // a model whose code the user has not trusted
  Internal,
};

const char* toString(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;   // what went wrong and, where useful, what to do
  std::string resource;  // file path, series UID, device name... ("" if none)

  Error() = default;
  Error(ErrorCode c, std::string msg, std::string res = {})
      : code(c), message(std::move(msg)), resource(std::move(res)) {}

  /// "resource: message" (or just the message), one line, for users.
  std::string toString() const { return resource.empty() ? message : resource + ": " + message; }
};

/// Either a T or an Error. Small subset of C++23 std::expected, kept here so every layer
/// (including the LibTorch-only models build) has the same type.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}              // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}          // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { assert(!ok()); return *e_; }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

inline Status okStatus() { return {}; }

}  // namespace lumen
