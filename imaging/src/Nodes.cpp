#include "lumen/imaging/Nodes.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lumen/core/DurableFile.h"

namespace lumen::net {

namespace fs = std::filesystem;
using json = nlohmann::json;

const DimseNode* NodeConfig::findDimse(const std::string& name) const {
  for (const auto& n : dimse)
    if (n.name == name) return &n;
  return nullptr;
}

const WebNode* NodeConfig::findWeb(const std::string& name) const {
  for (const auto& n : web)
    if (n.name == name) return &n;
  return nullptr;
}

fs::path defaultNodesFile() {
  if (const char* d = std::getenv("LUMEN_CONFIG_DIR"); d && *d) return fs::path(d) / "nodes.json";
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return fs::path(x) / "lumen" / "nodes.json";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".config" / "lumen" / "nodes.json";
  return fs::current_path() / ".lumen-nodes.json";
}

std::string checkAeTitle(const std::string& ae) {
  if (ae.empty() || ae.size() > 16) return "an AE title has 1 to 16 characters";
  if (std::all_of(ae.begin(), ae.end(), [](char c) { return c == ' '; })) return "an AE title cannot be all spaces";
  for (char c : ae)
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      return "an AE title holds printable ASCII characters other than backslash";
  return {};
}

std::string checkBindAddress(const std::string& address) {
  in_addr a{};
  if (::inet_pton(AF_INET, address.c_str(), &a) != 1)
    return "not an IPv4 address in dotted form (such as 127.0.0.1; host names and IPv6 are not supported)";
  return {};
}

namespace {

// Strict reading: every key is known, every value has its type. Unknown keys are errors
// so that a misspelt setting ("allowed_ae" for "allow") cannot be silently without effect.
class Reader {
 public:
  Reader(const json& object, std::string where) : j_(object), where_(std::move(where)) {
    if (!j_.is_object()) throw std::runtime_error(where_ + " must be a JSON object");
  }
  std::string str(const char* key, bool required, const std::string& fallback = {}) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      if (required) throw std::runtime_error(where_ + ": \"" + key + "\" is missing");
      return fallback;
    }
    if (!j_[key].is_string()) throw std::runtime_error(where_ + ": \"" + key + "\" must be a string");
    return j_[key].get<std::string>();
  }
  int integer(const char* key, int fallback, int lo, int hi) {
    seen_.insert(key);
    if (!j_.contains(key)) return fallback;
    if (!j_[key].is_number_integer()) throw std::runtime_error(where_ + ": \"" + key + "\" must be an integer");
    const auto v = j_[key].get<long long>();
    if (v < lo || v > hi)
      throw std::runtime_error(where_ + ": \"" + key + "\" must lie in " + std::to_string(lo) + ".." + std::to_string(hi));
    return static_cast<int>(v);
  }
  std::vector<std::string> strings(const char* key) {
    seen_.insert(key);
    std::vector<std::string> out;
    if (!j_.contains(key)) return out;
    if (!j_[key].is_array()) throw std::runtime_error(where_ + ": \"" + key + "\" must be a list of strings");
    for (const auto& v : j_[key]) {
      if (!v.is_string()) throw std::runtime_error(where_ + ": \"" + key + "\" must be a list of strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  void known(const char* key) { seen_.insert(key); }
  void finish() const {
    for (const auto& [k, v] : j_.items()) {
      (void)v;
      if (!seen_.count(k)) throw std::runtime_error(where_ + ": unknown setting \"" + k + "\"");
    }
  }

 private:
  const json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

void requireAe(const std::string& ae, const std::string& where) {
  if (auto why = checkAeTitle(ae); !why.empty()) throw std::runtime_error(where + ": AE title \"" + ae + "\": " + why);
}

// "tls": {"ca_file", "cert_file", "key_file"}. A remote node needs the CA (its certificate
// is always verified); Lumen's listener needs its own certificate and key.
std::optional<TlsFiles> readTls(const json& parent, Reader& r, const std::string& where, bool listener) {
  r.known("tls");
  if (!parent.contains("tls")) return std::nullopt;
  const std::string at = where + ": \"tls\"";
  Reader t(parent["tls"], at);
  TlsFiles f{t.str("ca_file", !listener), t.str("cert_file", listener), t.str("key_file", listener)};
  t.finish();
  if (auto why = checkTlsFiles(f, listener); !why.empty()) throw std::runtime_error(at + ": " + why);
  return f;
}

json tlsJson(const TlsFiles& f) {
  json j = json::object();
  if (!f.caFile.empty()) j["ca_file"] = f.caFile;
  if (!f.certFile.empty()) j["cert_file"] = f.certFile;
  if (!f.keyFile.empty()) j["key_file"] = f.keyFile;
  return j;
}

NodeConfig parse(const json& root) {
  NodeConfig c;
  Reader top(root, "the configuration");
  top.str("comment", false);
  if (root.contains("local")) {
    Reader r(root["local"], "\"local\"");
    c.local.aeTitle = r.str("ae_title", false, c.local.aeTitle);
    requireAe(c.local.aeTitle, "\"local\"");
    c.local.port = r.integer("port", c.local.port, 1, 65535);
    c.local.bindAddress = r.str("bind_address", false);
    if (auto why = c.local.bindAddress.empty() ? std::string() : checkBindAddress(c.local.bindAddress); !why.empty())
      throw std::runtime_error("\"local\".\"bind_address\" " + c.local.bindAddress + ": " + why);
    c.local.allowedAe = r.strings("allow");
    for (const auto& ae : c.local.allowedAe) requireAe(ae, "\"local\".\"allow\"");
    c.local.maxAssociations = r.integer("max_associations", c.local.maxAssociations, 1, 64);
    c.local.timeoutSeconds = r.integer("timeout_seconds", c.local.timeoutSeconds, 1, 3600);
    c.local.minFreeMegabytes = r.integer("min_free_mb", c.local.minFreeMegabytes, 0, 1 << 20);
    c.local.tls = readTls(root["local"], r, "\"local\"", true);
    r.finish();
  }
  top.known("local");
  std::set<std::string> names;
  if (root.contains("nodes")) {
    if (!root["nodes"].is_array()) throw std::runtime_error("\"nodes\" must be a list");
    for (const auto& n : root["nodes"]) {
      Reader r(n, "a node");
      const std::string name = r.str("name", true);
      if (name.empty()) throw std::runtime_error("a node has an empty name");
      if (!names.insert(name).second) throw std::runtime_error("two nodes are named \"" + name + "\"");
      const std::string where = "node \"" + name + "\"";
      const std::string type = r.str("type", false, "dimse");
      if (type == "dimse") {
        Reader d(n, where);
        d.str("name", true);
        d.str("type", false);
        DimseNode node{name, d.str("ae_title", true), d.str("host", true), d.integer("port", 104, 1, 65535), std::nullopt};
        requireAe(node.aeTitle, where);
        if (node.host.empty()) throw std::runtime_error(where + ": \"host\" is empty");
        node.tls = readTls(n, d, where, false);
        d.finish();
        c.dimse.push_back(std::move(node));
      } else if (type == "dicomweb") {
        Reader d(n, where);
        d.str("name", true);
        d.str("type", false);
        WebNode node;
        node.name = name;
        node.baseUrl = d.str("url", true);
        node.auth = d.str("auth", false);
        node.username = d.str("username", false);
        node.password = d.str("password", false);
        node.token = d.str("token", false);
        node.caFile = d.str("ca_file", false);
        if (auto why = checkWebNode(node); !why.empty()) throw std::runtime_error(where + ": " + why);
        d.finish();
        c.web.push_back(std::move(node));
      } else {
        throw std::runtime_error(where + ": unknown type \"" + type + "\" (dimse or dicomweb)");
      }
    }
  }
  top.known("nodes");
  top.finish();
  return c;
}

}  // namespace

Result<NodeConfig> loadNodes(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return NodeConfig{};
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error(ErrorCode::Io, "cannot read the node configuration", file.string());
  std::stringstream text;
  text << in.rdbuf();
  json root;
  try {
    root = json::parse(text.str());
  } catch (const json::parse_error& e) {
    // Not e.what(): it quotes the text last read, which may be a password.
    return Error(ErrorCode::InvalidArgument, "not valid JSON (near byte " + std::to_string(e.byte) + ")", file.string());
  }
  try {
    return parse(root);
  } catch (const json::exception& e) {
    return Error(ErrorCode::InvalidArgument, e.what(), file.string());
  } catch (const std::runtime_error& e) {
    return Error(ErrorCode::InvalidArgument, e.what(), file.string());
  }
}

std::string checkTlsFiles(const TlsFiles& f, bool listener) {
  if (!listener && f.caFile.empty()) return "\"ca_file\" is missing (the CA that signed the node's certificate)";
  if (listener && (f.certFile.empty() || f.keyFile.empty()))
    return "the listener needs \"cert_file\" and \"key_file\"";
  if (f.certFile.empty() != f.keyFile.empty()) return "\"cert_file\" and \"key_file\" go together";
  for (const auto* file : {&f.caFile, &f.certFile, &f.keyFile})
    if (!file->empty() && fs::path(*file).is_relative()) return *file + " is a relative path; give it in full";
  return {};
}

std::string checkWebNode(const WebNode& n) {
  if (n.baseUrl.rfind("http://", 0) != 0 && n.baseUrl.rfind("https://", 0) != 0)
    return "\"url\" must start with http:// or https://";
  const std::string rest = n.baseUrl.substr(n.baseUrl.find("://") + 3);
  if (rest.substr(0, rest.find('/')).find('@') != std::string::npos)
    return "\"url\" holds credentials (user@host): give them with \"auth\", never in the URL";
  if (n.auth.empty()) {
    // Credentials that would not be sent are an error, not silently unused.
    if (!n.username.empty() || !n.password.empty() || !n.token.empty())
      return "credentials are given but \"auth\" is not (\"basic\" or \"bearer\")";
  } else if (n.auth == "basic") {
    if (n.username.empty() || n.password.empty()) return "\"auth\": \"basic\" needs \"username\" and \"password\"";
    if (!n.token.empty()) return "\"token\" is for \"auth\": \"bearer\"";
  } else if (n.auth == "bearer") {
    if (n.token.empty()) return "\"auth\": \"bearer\" needs \"token\"";
    if (!n.username.empty() || !n.password.empty()) return "\"username\" and \"password\" are for \"auth\": \"basic\"";
  } else {
    return "\"auth\" must be \"basic\" or \"bearer\"";
  }
  if (!n.caFile.empty() && n.baseUrl.rfind("https://", 0) != 0) return "\"ca_file\" is for https:// URLs";
  return {};
}

Status saveNodes(const fs::path& file, const NodeConfig& c) {
  json nodes = json::array();
  for (const auto& n : c.dimse) {
    json d{{"name", n.name}, {"type", "dimse"}, {"ae_title", n.aeTitle}, {"host", n.host}, {"port", n.port}};
    if (n.tls) d["tls"] = tlsJson(*n.tls);
    nodes.push_back(d);
  }
  for (const auto& n : c.web) {
    json w{{"name", n.name}, {"type", "dicomweb"}, {"url", n.baseUrl}};
    if (!n.auth.empty()) w["auth"] = n.auth;
    if (!n.username.empty()) w["username"] = n.username;
    if (!n.password.empty()) w["password"] = n.password;
    if (!n.token.empty()) w["token"] = n.token;
    if (!n.caFile.empty()) w["ca_file"] = n.caFile;
    nodes.push_back(w);
  }
  json local{{"ae_title", c.local.aeTitle},
             {"port", c.local.port},
             {"max_associations", c.local.maxAssociations},
             {"timeout_seconds", c.local.timeoutSeconds},
             {"min_free_mb", c.local.minFreeMegabytes}};
  if (!c.local.bindAddress.empty()) local["bind_address"] = c.local.bindAddress;
  if (!c.local.allowedAe.empty()) local["allow"] = c.local.allowedAe;
  if (c.local.tls) local["tls"] = tlsJson(*c.local.tls);
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return Error(ErrorCode::Io, "cannot create the folder: " + ec.message(), file.parent_path().string());
  // 0600: web nodes may carry passwords or tokens.
  return writeFileDurably(file, json{{"local", local}, {"nodes", nodes}}.dump(2) + "\n", 0600);
}

}  // namespace lumen::net
