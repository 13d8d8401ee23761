// The HTTP side of Lumen's DICOMweb client (PS3.18), shared by QIDO-RS, WADO-RS and
// STOW-RS: requests to one node with its auth and TLS settings checked where they are
// used, and DICOM JSON read the way DIMSE shows the same attributes.
#pragma once

#include <QByteArray>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QSslConfiguration>
#include <QString>
#include <QUrl>
#include <QUrlQuery>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "DicomWeb.h"

namespace lumen::web::detail {

/// "name (base URL)", the node as errors name it.
std::string label(const net::WebNode& n);
/// localhost, or a loopback address (a name that merely starts with 127. is not one).
bool isLoopback(const QString& host);
/// Digits and dots, 1-64 characters.
bool validUid(const std::string& uid);

struct Response {
  int status = 0;
  QByteArray body;
  std::string contentType;
};

class Session {
 public:
  Session(const net::WebNode& node, const WebOptions& options);

  /// The node's settings checked once more where they are used: credentials never travel
  /// in clear text to another machine, and a CA file that does not load is an error.
  Status prepare();
  QUrl url(const QString& path, const QUrlQuery& query = {}) const;
  QNetworkRequest request(const QUrl& url, const QByteArray& accept) const;
  /// Waits for `reply` to finish. `onData` (when set) takes the body as it arrives and may
  /// stop the transfer by returning false; otherwise the body is kept in the response.
  Result<Response> wait(QNetworkReply* reply, const std::function<bool(QNetworkReply&)>& onData,
                        const CancelToken& cancel, const char* what);
  Error httpError(const Response& r, const char* what) const;

  QNetworkAccessManager nam;

 private:
  const net::WebNode& node_;
  WebOptions options_;
  QString base_;
  QSslConfiguration ssl_;
  bool customSsl_ = false;
};

/// A QIDO-RS request for `filter` sent on `s`; wait for it with Session::wait and read
/// its answer with readMatches.
Result<QNetworkReply*> sendQuery(Session& s, const net::QueryFilter& filter);
Result<std::vector<net::QueryMatch>> readMatches(const Session& s, const Result<Response>& answer,
                                                 const net::QueryFilter& filter, const net::WebNode& node);

/// The DICOM JSON model (PS3.18 F.2): a tag's values joined with a backslash, as DIMSE
/// shows them.
std::string value(const nlohmann::json& obj, const char* tag);
int number(const nlohmann::json& obj, const char* tag, int fallback);
Result<nlohmann::json> parseJson(const QByteArray& body, const net::WebNode& node);

}  // namespace lumen::web::detail
