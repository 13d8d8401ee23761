#pragma once
// The remote DICOM nodes Lumen talks to, and Lumen's own network identity, kept in a
// JSON file in the user's config folder (created readable by the user only: it may hold
// credentials). Read strictly: an unknown key or a setting this build cannot honour is
// an error naming it, never silently dropped.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lumen/core/Result.h"

namespace lumen::net {

/// DICOM TLS (PS3.15 Annex B) files, PEM, absolute paths. For a remote node: the CA that
/// signed its certificate (required: the peer is always verified), and Lumen's own
/// certificate and key when the node asks for one. For Lumen's listener: its certificate
/// and key (required), and a CA that, when given, every caller's certificate must chain to.
struct TlsFiles {
  std::string caFile;
  std::string certFile;
  std::string keyFile;
};

/// A DIMSE peer (PACS, modality, workstation).
struct DimseNode {
  std::string name;     // Lumen's name for it: what the user types (`lumen-cli echo NAME`)
  std::string aeTitle;  // its Application Entity title (called AE)
  std::string host;
  int port = 104;
  std::optional<TlsFiles> tls;  // set: DICOM TLS, else plain TCP
};

/// A DICOMweb service (QIDO-RS, WADO-RS, STOW-RS under one base URL).
struct WebNode {
  std::string name;
  std::string baseUrl;   // e.g. https://pacs.example.org/dicom-web
  std::string auth;      // "", "basic" or "bearer"
  std::string username;  // basic
  std::string password;  // basic; never logged
  std::string token;     // bearer; never logged
  std::string caFile;    // PEM file of the CA(s) that signed the server's certificate, for a
                         // private CA; empty: the system's trusted CAs. Always verified.
};

/// Lumen's own DIMSE identity and the limits of its listener. (DCMTK 3.6.7 listens on all
/// interfaces; it has no bind address to configure, so there is no such setting here.)
struct LocalNode {
  std::string aeTitle = "LUMEN";
  int port = 11112;
  std::string bindAddress;             // IPv4 address to listen on; empty: every interface
  std::vector<std::string> allowedAe;  // empty: any calling AE; else only these
  int maxAssociations = 8;             // concurrent; more are rejected, not queued
  int timeoutSeconds = 30;             // a peer silent this long loses its association
  int minFreeMegabytes = 256;          // below this much free disk, instances are refused (A700)
  std::optional<TlsFiles> tls;         // set: the listener speaks DICOM TLS only
};

struct NodeConfig {
  LocalNode local;
  std::vector<DimseNode> dimse;
  std::vector<WebNode> web;

  const DimseNode* findDimse(const std::string& name) const;
  const WebNode* findWeb(const std::string& name) const;
};

/// $LUMEN_CONFIG_DIR/nodes.json, else $XDG_CONFIG_HOME/lumen/nodes.json, else
/// ~/.config/lumen/nodes.json.
std::filesystem::path defaultNodesFile();

/// A missing file is an empty configuration (defaults); a malformed one is an error naming
/// the file and what is wrong in it.
Result<NodeConfig> loadNodes(const std::filesystem::path& file);

/// Writes durably (temporary file, fsync, rename) with mode 0600.
Status saveNodes(const std::filesystem::path& file, const NodeConfig& config);

/// Checks DICOM TLS files together: for a node the CA is required, for the listener its
/// certificate and key; a certificate and its key go together; paths are absolute.
/// Returns "" when valid, else why not.
std::string checkTlsFiles(const TlsFiles& files, bool listener);

/// Checks a DICOMweb node's settings together (URL scheme, auth and its credentials).
/// Returns "" when valid, else why not.
std::string checkWebNode(const WebNode& node);

/// Checks one value: an AE title is 1-16 characters of the default repertoire without
/// backslash or control characters, not all spaces. Returns "" when valid, else why not.
std::string checkAeTitle(const std::string& ae);

/// The listener's address: an IPv4 address in dotted form (DCMTK 3.6.7's listener speaks
/// IPv4 only). Returns "" when valid, else why not.
std::string checkBindAddress(const std::string& address);

}  // namespace lumen::net
