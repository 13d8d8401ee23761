#pragma once
// DICOMweb (DICOM PS3.18) on Qt Network: QIDO-RS query, WADO-RS retrieve into the study
// database, STOW-RS send. Qt is why this lives in app/ (below it there is no Qt); the
// results are the DIMSE ones (imaging/Dimse.h), so a command or a panel treats both alike.
//
// Calls block, each running its own event loop: use them from the CLI's main thread or a
// GUI worker thread, with a QCoreApplication in existence. HTTPS certificates are always
// verified (against the node's ca_file when it has one); credentials go only in the
// Authorization header, never in a log or a message.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/Nodes.h"

namespace lumen::db {
class StudyDatabase;
}

namespace lumen::web {

struct WebOptions {
  int timeoutSeconds = 30;  // connecting, and any pause in a transfer
};

/// A QIDO-RS request for one study: the node answers, and the credentials work.
Status ping(const net::WebNode& node, const WebOptions& options);

Result<std::vector<net::QueryMatch>> query(const net::WebNode& node, const net::QueryFilter& filter,
                                           const WebOptions& options, const CancelToken& cancel = {});

/// WADO-RS of a study (or one of its series), every instance as stored on the node
/// (transfer-syntax=*), filed into the study database as it arrives.
Result<net::TransferReport> retrieve(const net::WebNode& node, const std::string& studyUid,
                                     const std::string& seriesUid, db::StudyDatabase& db, const WebOptions& options,
                                     const Progress& progress = {}, const CancelToken& cancel = {});

/// STOW-RS of DICOM Part 10 files, their bytes as they are, in batches.
Result<net::TransferReport> store(const net::WebNode& node, const std::vector<std::filesystem::path>& files,
                                  const WebOptions& options, const Progress& progress = {},
                                  const CancelToken& cancel = {});

/// Splits a multipart/related body into its parts as the bytes arrive, holding at most one
/// delimiter's worth of a part in memory.
class MultipartSplitter {
 public:
  struct Handler {
    std::function<bool(std::string_view headers)> begin;  // false: the response is refused
    std::function<bool(std::string_view bytes)> data;     // false: stop (a write failed)
    std::function<bool()> end;
  };
  MultipartSplitter(std::string boundary, Handler handler);

  /// Feeds the next bytes. False once the body is malformed or a handler said stop.
  bool feed(std::string_view bytes);
  /// True once the closing delimiter has been seen.
  bool complete() const { return state_ == State::Done; }
  const std::string& error() const { return error_; }

 private:
  enum class State { Preamble, Headers, Body, AfterDelimiter, Done, Failed };
  static constexpr std::size_t kFailed = std::string::npos;
  // Of a new read, joined to what the last one left: more than part headers may hold.
  static constexpr std::size_t kJoin = 80 * 1024;
  bool fail(std::string why);
  /// Runs the state machine over `data`: how many bytes it consumed, the rest to be
  /// carried, or kFailed.
  std::size_t parse(std::string_view data);
  std::string delimiter_;  // CRLF "--" boundary
  Handler handler_;
  std::string buffer_;  // bytes a read left unresolved
  State state_ = State::Preamble;
  std::string error_;
};

/// The boundary parameter of a multipart Content-Type, unquoted; "" when it has none or
/// one longer than RFC 2046's 70 characters.
std::string boundaryOf(std::string_view contentType);

}  // namespace lumen::web
