// The HTTP side of the DICOMweb client: WebSession.h.

#include "WebSession.h"

#include <QEventLoop>
#include <QHostAddress>
#include <QSslCertificate>
#include <QSslError>
#include <QTimer>

namespace lumen::web::detail {

using json = nlohmann::json;

std::string label(const net::WebNode& n) { return n.name + " (" + n.baseUrl + ")"; }

bool isLoopback(const QString& host) {
  if (host.compare("localhost", Qt::CaseInsensitive) == 0) return true;
  const QHostAddress a(host);  // "127.evil.example" is a name, not an address: not loopback
  return !a.isNull() && a.isLoopback();
}

bool validUid(const std::string& uid) {
  return !uid.empty() && uid.size() <= 64 && uid.find_first_not_of("0123456789.") == std::string::npos;
}

Session::Session(const net::WebNode& node, const WebOptions& options) : node_(node), options_(options) {
  base_ = QString::fromStdString(node.baseUrl);
  while (base_.endsWith('/')) base_.chop(1);
}

Status Session::prepare() {
  const QUrl url(base_);
  if (!url.isValid() || url.host().isEmpty()) return Error(ErrorCode::InvalidArgument, "not a valid URL", label(node_));
  if (!node_.auth.empty() && url.scheme() == "http" && !isLoopback(url.host()))
    return Error(ErrorCode::InvalidArgument,
                 "credentials would go unencrypted over http:// to another machine; use https://", label(node_));
  if (!node_.caFile.empty()) {
    const auto certs = QSslCertificate::fromPath(QString::fromStdString(node_.caFile), QSsl::Pem);
    if (certs.isEmpty())
      return Error(ErrorCode::InvalidArgument, "ca_file " + node_.caFile + ": no PEM certificate could be read",
                   label(node_));
    ssl_ = QSslConfiguration::defaultConfiguration();
    ssl_.addCaCertificates(certs);
    ssl_.setPeerVerifyMode(QSslSocket::VerifyPeer);
    customSsl_ = true;
  }
  return {};
}

QUrl Session::url(const QString& path, const QUrlQuery& query) const {
  QUrl u(base_ + path);
  if (!query.isEmpty()) u.setQuery(query);
  return u;
}

QNetworkRequest Session::request(const QUrl& url, const QByteArray& accept) const {
  QNetworkRequest r(url);
  r.setRawHeader("Accept", accept);
  // Pixel data gains little from gzip and the decoding costs more than the transfer saves
  // on a LAN; Qt would otherwise ask for it.
  r.setRawHeader("Accept-Encoding", "identity");
  r.setTransferTimeout(options_.timeoutSeconds * 1000);
  // Redirects stay on the node's own origin: the Authorization header must not follow
  // them to another host.
  r.setAttribute(QNetworkRequest::RedirectPolicyAttribute, QNetworkRequest::SameOriginRedirectPolicy);
  if (node_.auth == "basic")
    r.setRawHeader("Authorization",
                   "Basic " + QByteArray::fromStdString(node_.username + ":" + node_.password).toBase64());
  else if (node_.auth == "bearer")
    r.setRawHeader("Authorization", "Bearer " + QByteArray::fromStdString(node_.token));
  if (customSsl_) r.setSslConfiguration(ssl_);
  return r;
}

Result<Response> Session::wait(QNetworkReply* reply, const std::function<bool(QNetworkReply&)>& onData,
                             const CancelToken& cancel, const char* what) {
  std::unique_ptr<QNetworkReply> owner(reply);
  QEventLoop loop;
  bool cancelled = false, stopped = false;
  QStringList sslErrors;
  QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
  QObject::connect(reply, &QNetworkReply::sslErrors, [&](const QList<QSslError>& errors) {
    for (const auto& e : errors) sslErrors << e.errorString();  // never ignored: the handshake fails
  });
  if (onData)
    QObject::connect(reply, &QNetworkReply::readyRead, [&] {
      if (!stopped && !onData(*reply)) {
        stopped = true;
        reply->abort();
      }
    });
  QTimer poll;
  QObject::connect(&poll, &QTimer::timeout, [&] {
    if (cancel.isCancelled() && !cancelled) {
      cancelled = true;
      reply->abort();
    }
  });
  poll.start(100);
  if (!reply->isFinished()) loop.exec();
  if (onData && !stopped && reply->bytesAvailable() > 0 && !onData(*reply)) stopped = true;

  if (cancelled) return Error(ErrorCode::Cancelled, std::string(what) + " cancelled", label(node_));
  if (stopped) return Error(ErrorCode::Io, std::string(what) + " stopped", label(node_));
  Response r;
  r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
  r.contentType = reply->header(QNetworkRequest::ContentTypeHeader).toString().toStdString();
  if (!onData) r.body = reply->readAll();
  const auto err = reply->error();
  if (err == QNetworkReply::NoError || r.status >= 400) return r;  // HTTP errors: the caller's to word
  std::string why;
  switch (err) {
    case QNetworkReply::ConnectionRefusedError: why = "connection refused (is the service running on that port?)"; break;
    case QNetworkReply::HostNotFoundError: why = "host not found"; break;
    case QNetworkReply::OperationCanceledError:  // Qt's transfer timeout aborts this way
    case QNetworkReply::TimeoutError:
      why = "no answer within " + std::to_string(options_.timeoutSeconds) + " s";
      break;
    case QNetworkReply::SslHandshakeFailedError:
      why = "TLS: the server's certificate is not trusted";
      if (!sslErrors.isEmpty()) why += " (" + sslErrors.join("; ").toStdString() + ")";
      if (node_.caFile.empty()) why += "; for a private CA, give the node a ca_file";
      break;
    default: why = reply->errorString().toStdString();
  }
  return Error(ErrorCode::Io, std::string(what) + " failed: " + why, label(node_));
}

Error Session::httpError(const Response& r, const char* what) const {
  std::string why = "HTTP " + std::to_string(r.status);
  if (r.status == 401 || r.status == 403) why += ": the node refused the credentials (check its auth settings)";
  else if (r.status == 404) why += ": not found on the node";
  else if (r.status == 406) why += ": the node cannot answer in a form Lumen asked for";
  return Error(r.status == 404 ? ErrorCode::NotFound : ErrorCode::Io, std::string(what) + " failed: " + why, label(node_));
}

std::string value(const json& obj, const char* tag) {
  const auto it = obj.find(tag);
  if (it == obj.end() || !it->is_object()) return {};
  const auto v = it->find("Value");
  if (v == it->end() || !v->is_array()) return {};
  std::string out;
  for (const auto& e : *v) {
    if (!out.empty()) out += '\\';
    if (e.is_string()) out += e.get<std::string>();
    else if (e.is_number_integer()) out += std::to_string(e.get<long long>());
    else if (e.is_number()) out += e.dump();
    else if (e.is_object() && e.contains("Alphabetic") && e["Alphabetic"].is_string()) out += e["Alphabetic"].get<std::string>();
  }
  return out;
}

int number(const json& obj, const char* tag, int fallback) {
  const std::string v = value(obj, tag);
  try {
    return v.empty() ? fallback : std::stoi(v);
  } catch (const std::exception&) {
    return fallback;
  }
}

Result<json> parseJson(const QByteArray& body, const net::WebNode& node) {
  if (body.trimmed().isEmpty()) return json::array();
  try {
    return json::parse(body.constData(), body.constData() + body.size());
  } catch (const json::exception&) {
    return Error(ErrorCode::Corrupt, "the node's answer is not valid DICOM JSON", label(node));
  }
}

}  // namespace lumen::web::detail
