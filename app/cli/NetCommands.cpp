// lumen-cli's network commands: nodes, echo, query, retrieve, send, listen.

#include <CLI/CLI.hpp>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>

#include <QCoreApplication>

#include "CliCommands.h"
#include "RemoteNode.h"
#include "lumen/core/Log.h"
#include "lumen/core/Parallel.h"
#include "lumen/imaging/Compress.h"
#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::atomic<bool> gStop{false};
void onSignal(int) { gStop = true; }

fs::path dataDirOf(const CommonOptions& c) { return c.dataDir.empty() ? db::StudyDatabase::defaultDataDir() : c.dataDir; }

// A node by name from the configuration, or given inline as AE@host:port.
Result<net::DimseNode> resolveNode(const net::NodeConfig& cfg, const std::string& spec) {
  if (const auto* n = cfg.findDimse(spec)) return *n;
  static const std::regex inlineNode(R"(^([^@]{1,16})@([^:]+):(\d{1,5})$)");
  std::smatch m;
  if (std::regex_match(spec, m, inlineNode)) {
    net::DimseNode n{spec, m[1], m[2], std::stoi(m[3]), std::nullopt};
    if (auto why = net::checkAeTitle(n.aeTitle); !why.empty()) return Error(ErrorCode::InvalidArgument, why, spec);
    if (n.port < 1 || n.port > 65535) return Error(ErrorCode::InvalidArgument, "port out of range", spec);
    return n;
  }
  return Error(ErrorCode::NotFound,
               "no such node in " + net::defaultNodesFile().string() +
                   " (add it with `lumen-cli nodes add`, or write AE@host:port)",
               spec);
}

// The configuration and the node a command names, with the options to reach it.
struct Target {
  net::NodeConfig cfg;
  web::RemoteNode remote;
};

// Qt Network needs an application object for its event loops; only DICOMweb commands pay.
void ensureQtApplication() {
  if (QCoreApplication::instance()) return;
  static int argc = 1;
  static char name[] = "lumen-cli";
  static char* argv[] = {name, nullptr};
  static QCoreApplication app(argc, argv);
}

Result<Target> target(const std::string& spec, int timeout) {
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) return cfg.error();
  Target t;
  if (const auto* w = cfg->findWeb(spec)) {
    ensureQtApplication();
    t.remote = web::RemoteNode::of(*w, cfg->local, timeout);
  } else {
    auto node = resolveNode(*cfg, spec);
    if (!node) return node.error();
    t.remote = web::RemoteNode::of(std::move(*node), cfg->local, timeout);
  }
  t.cfg = std::move(*cfg);
  return t;
}

// Problems on stderr; then the counts, as JSON (`key` names the count of instances moved)
// or as one line ("<verb> N instance(s) in S s").
void printReport(const net::TransferReport& r, const char* key, const char* verb,
                 std::chrono::steady_clock::time_point t0, const CommonOptions& common) {
  for (const auto& p : r.problems) std::fprintf(stderr, "lumen-cli: %s\n", p.c_str());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (common.json)
    std::cout << json{{key, r.stored}, {"failed", r.failed}, {"warnings", r.warnings}, {"seconds", s}}.dump(2) << "\n";
  else
    std::printf("%s %zu instance(s) in %.1f s%s\n", verb, r.stored, s,
                r.failed ? (", " + std::to_string(r.failed) + " failed").c_str() : "");
}

}  // namespace

Result<web::RemoteNode> remoteNode(const std::string& spec, int timeoutSeconds) {
  auto t = target(spec, timeoutSeconds);
  if (!t) return t.error();
  return std::move(t->remote);
}

namespace {
std::string absolute(const std::string& file) { return file.empty() ? file : fs::absolute(file).string(); }
}  // namespace

int runNodes(const NodesOptions& o, const CommonOptions& common) {
  const fs::path file = net::defaultNodesFile();
  auto cfg = net::loadNodes(file);
  if (!cfg) return fail(cfg.error().toString());
  if (o.action == "list") {
    if (common.json) {
      json nodes = json::array();
      for (const auto& n : cfg->dimse)
        nodes.push_back({{"name", n.name}, {"type", "dimse"}, {"ae_title", n.aeTitle}, {"host", n.host}, {"port", n.port},
                         {"tls", n.tls.has_value()}});
      for (const auto& n : cfg->web)  // credentials are not printed
        nodes.push_back({{"name", n.name}, {"type", "dicomweb"}, {"url", n.baseUrl}, {"auth", n.auth}});
      std::cout << json{{"file", file.string()},
                        {"local", {{"ae_title", cfg->local.aeTitle},
                                   {"port", cfg->local.port},
                                   {"bind_address", cfg->local.bindAddress.empty() ? "0.0.0.0" : cfg->local.bindAddress},
                                   {"allow", cfg->local.allowedAe}}},
                        {"nodes", nodes}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "Lumen: " << cfg->local.aeTitle << " on "
                << (cfg->local.bindAddress.empty() ? "every interface," : cfg->local.bindAddress) << " port "
                << cfg->local.port << (cfg->local.tls ? " (TLS)" : "");
      if (!cfg->local.allowedAe.empty()) {
        std::cout << ", accepts only";
        for (const auto& a : cfg->local.allowedAe) std::cout << " " << a;
      }
      std::cout << "\n";
      for (const auto& n : cfg->dimse)
        std::cout << n.name << ": DIMSE " << n.aeTitle << "@" << n.host << ":" << n.port << (n.tls ? " (TLS)" : "") << "\n";
      for (const auto& n : cfg->web) std::cout << n.name << ": DICOMweb " << n.baseUrl << "\n";
      if (cfg->dimse.empty() && cfg->web.empty()) std::cout << "no nodes (" << file.string() << ")\n";
    }
    return 0;
  }
  if (o.action == "add") {
    if (cfg->findDimse(o.name) || cfg->findWeb(o.name)) return fail("a node named \"" + o.name + "\" exists; remove it first");
    if (!o.url.empty()) {
      // Secrets come from the environment: a command line is visible to every user (ps).
      net::WebNode w{o.name, o.url, o.auth, o.user, {}, {}, o.caFile};
      if (o.auth == "basic") {
        const char* pw = std::getenv("LUMEN_NODE_PASSWORD");
        if (!pw || !*pw) return fail("--auth basic: put the password in the environment variable LUMEN_NODE_PASSWORD");
        w.password = pw;
      } else if (o.auth == "bearer") {
        const char* token = std::getenv("LUMEN_NODE_TOKEN");
        if (!token || !*token) return fail("--auth bearer: put the token in the environment variable LUMEN_NODE_TOKEN");
        w.token = token;
      }
      w.caFile = absolute(w.caFile);
      if (auto why = net::checkWebNode(w); !why.empty()) return fail(o.name + ": " + why);
      cfg->web.push_back(std::move(w));
    } else {
      if (o.aeTitle.empty() || o.host.empty() || o.port == 0)
        return fail("nodes add: a DIMSE node needs --aet, --host and --port; a DICOMweb node needs --url");
      if (auto why = net::checkAeTitle(o.aeTitle); !why.empty()) return fail("--aet " + o.aeTitle + ": " + why);
      net::DimseNode n{o.name, o.aeTitle, o.host, o.port, std::nullopt};
      if (!o.tlsCa.empty() || !o.tlsCert.empty() || !o.tlsKey.empty()) {
        n.tls = net::TlsFiles{absolute(o.tlsCa), absolute(o.tlsCert), absolute(o.tlsKey)};
        if (auto why = net::checkTlsFiles(*n.tls, false); !why.empty()) return fail("nodes add: DICOM TLS: " + why);
      }
      cfg->dimse.push_back(std::move(n));
    }
  } else if (o.action == "remove") {
    const auto before = cfg->dimse.size() + cfg->web.size();
    std::erase_if(cfg->dimse, [&](const auto& n) { return n.name == o.name; });
    std::erase_if(cfg->web, [&](const auto& n) { return n.name == o.name; });
    if (cfg->dimse.size() + cfg->web.size() == before) return fail("no node named \"" + o.name + "\"");
  } else if (o.action == "local") {
    if (!o.aeTitle.empty()) {
      if (auto why = net::checkAeTitle(o.aeTitle); !why.empty()) return fail("--aet " + o.aeTitle + ": " + why);
      cfg->local.aeTitle = o.aeTitle;
    }
    if (o.port) cfg->local.port = o.port;
    if (!o.bind.empty()) {
      if (auto why = net::checkBindAddress(o.bind); !why.empty()) return fail("--bind " + o.bind + ": " + why);
      cfg->local.bindAddress = o.bind == "0.0.0.0" ? "" : o.bind;
    }
    if (o.noTls) {
      cfg->local.tls.reset();
    } else if (!o.tlsCert.empty() || !o.tlsKey.empty() || !o.tlsCa.empty()) {
      const net::TlsFiles f{absolute(o.tlsCa), absolute(o.tlsCert), absolute(o.tlsKey)};
      if (auto why = net::checkTlsFiles(f, true); !why.empty()) return fail("nodes local: DICOM TLS: " + why);
      cfg->local.tls = f;
    }
    if (o.allowSet) {
      for (const auto& a : o.allow)
        if (auto why = net::checkAeTitle(a); !why.empty()) return fail("--allow " + a + ": " + why);
      cfg->local.allowedAe = o.allow;
    }
  }
  if (auto s = net::saveNodes(file, *cfg); !s) return fail(s.error().toString());
  std::cout << "saved " << file.string() << "\n";
  return 0;
}

int runEcho(const std::string& nodeSpec, int timeout, const CommonOptions&) {
  auto t = target(nodeSpec, timeout);
  if (!t) return fail(t.error().toString());
  const auto t0 = std::chrono::steady_clock::now();
  if (auto s = web::check(t->remote); !s) return fail(s.error().toString());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %s ok (%.0f ms)\n", t->remote.name().c_str(), t->remote.web ? "QIDO-RS" : "echo", ms);
  return 0;
}

int runQuery(const std::string& nodeSpec, const net::QueryFilter& filter, int timeout, const CommonOptions& common) {
  auto t = target(nodeSpec, timeout);
  if (!t) return fail(t.error().toString());
  auto r = web::query(t->remote, filter);
  if (!r) return fail(r.error().toString());
  const bool series = filter.level == net::QueryLevel::Series;
  if (common.json) {
    json out = json::array();
    for (const auto& m : *r) {
      json j{{"study_uid", m.studyUid}, {"patient_name", m.patientName}, {"patient_id", m.patientId},
             {"study_date", m.studyDate}, {"study_description", m.studyDescription}, {"accession", m.accession}};
      if (series) {
        j["series_uid"] = m.seriesUid;
        j["modality"] = m.modalities;
        j["series_number"] = m.seriesNumber;
        j["series_description"] = m.seriesDescription;
      } else {
        j["modalities"] = m.modalities;
        j["birth_date"] = m.patientBirthDate;
        j["series_count"] = m.seriesCount;
      }
      j["instance_count"] = m.instanceCount;
      out.push_back(std::move(j));
    }
    std::cout << json{{"level", series ? "series" : "study"}, {"matches", out}}.dump(2) << "\n";
  } else {
    for (const auto& m : *r) {
      if (series)
        std::cout << m.studyUid << "  " << m.seriesUid << "  " << m.modalities << "  #" << m.seriesNumber << " \""
                  << m.seriesDescription << "\"  " << m.instanceCount << " instance(s)\n";
      else
        std::cout << m.studyUid << "  " << m.studyDate << "  " << m.patientName << " [" << m.patientId << "]  "
                  << m.modalities << " \"" << m.studyDescription << "\"  " << m.seriesCount << " series, "
                  << m.instanceCount << " instance(s)\n";
    }
    std::cout << r->size() << (series ? " series\n" : " study(ies)\n");
  }
  return 0;
}

int runRetrieve(const RetrieveOptions& o, const CommonOptions& common) {
  auto t = target(o.node, o.timeout);
  if (!t) return fail(t.error().toString());
  const net::NodeConfig* cfg = &t->cfg;
  const web::RemoteNode& remote = t->remote;
  auto db = db::StudyDatabase::open(dataDirOf(common));
  if (!db) return fail(db.error().toString());
  const auto t0 = std::chrono::steady_clock::now();
  Result<net::TransferReport> r = net::TransferReport{};
  const std::string via = o.via.empty() ? (remote.web ? "wado" : "get") : o.via;
  if (remote.web && via != "wado")
    return fail("--via " + via + ": " + o.node + " is a DICOMweb node; it retrieves by wado (WADO-RS)");
  if (!remote.web && via == "wado")
    return fail("--via wado: " + o.node + " is a DIMSE node; WADO-RS needs a DICOMweb node (`lumen-cli nodes add NAME --url`)");
  if (via == "wado" || via == "get") {
    r = web::retrieve(remote, o.studyUid, o.seriesUid, **db, makeProgress(common));
  } else if (via == "move") {
    // The node sends to Lumen's listener: this one, for the time of the move, unless a
    // listener (the GUI's, `lumen-cli listen`) already holds the port and will receive.
    net::InstanceFiler filer(**db);
    auto server = net::StorageServer::start(cfg->local, filer);
    if (!server)
      std::fprintf(stderr, "lumen-cli: warning: %s; counting on the listener already there to receive\n",
                   server.error().toString().c_str());
    r = net::retrieveMove(*remote.dimse, o.studyUid, o.seriesUid, cfg->local.aeTitle, remote.dimseOptions,
                          makeProgress(common));
    if (server) {
      (*server)->stop();
      if (r && (*server)->stats().failed > 0)
        r->problems.push_back(std::to_string((*server)->stats().failed.load()) + " received instance(s) could not be stored");
    }
  } else {
    return fail("--via " + via + ": get, move or wado");
  }
  if (!r) return fail(r.error().toString());
  printReport(*r, "stored", "retrieved", t0, common);
  if (r->failed) return fail(std::to_string(r->failed) + " instance(s) not retrieved; retrieving again fetches them (stored ones are kept)");
  return 0;
}

int runSend(const SendOptions& o, const CommonOptions& common) {
  dicom::LosslessSyntax syntax = dicom::LosslessSyntax::Deflate;
  if (!o.compress.empty() && !dicom::parseLosslessSyntax(o.compress, syntax))
    return fail("--compress must be jpeg-ls, jpeg2000 or deflate");
  auto t = target(o.node, o.timeout);
  if (!t) return fail(t.error().toString());
  std::vector<fs::path> files;
  if (!o.studyUid.empty() || !o.seriesUid.empty()) {
    auto db = db::StudyDatabase::open(dataDirOf(common));
    if (!db) return fail(db.error().toString());
    auto rows = o.seriesUid.empty() ? (*db)->instancesOfStudy(o.studyUid) : (*db)->instancesOfSeries(o.seriesUid);
    if (!rows) return fail(rows.error().toString());
    if (rows->empty()) return fail((o.seriesUid.empty() ? "study " + o.studyUid : "series " + o.seriesUid) + ": not in the study database");
    for (const auto& i : *rows) files.emplace_back(i.path);
  }
  std::vector<dicom::SkippedFile> skipped;
  std::vector<std::string> notes;
  if (!o.paths.empty()) {
    std::vector<fs::path> in(o.paths.begin(), o.paths.end());
    for (auto& f : dicom::enumerateInputs(in, skipped, notes)) files.push_back(std::move(f));
    for (const auto& s : skipped) std::fprintf(stderr, "lumen-cli: %s: %s\n", s.path.c_str(), s.reason.c_str());
  }
  if (files.empty()) return fail("nothing to send");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = o.compress.empty() ? web::send(t->remote, files, makeProgress(common))
                              : web::sendCompressed(t->remote, files, syntax, resolveThreadCount(common.threads),
                                                    makeProgress(common));
  if (!r) return fail(r.error().toString());
  printReport(*r, "sent", "sent", t0, common);
  if (r->failed || !skipped.empty()) return fail(std::to_string(r->failed + skipped.size()) + " file(s) not sent");
  return 0;
}

int runListen(const ListenOptions& o, const CommonOptions& common) {
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) return fail(cfg.error().toString());
  net::LocalNode local = cfg->local;
  if (!o.aeTitle.empty()) {
    if (auto why = net::checkAeTitle(o.aeTitle); !why.empty()) return fail("--aet " + o.aeTitle + ": " + why);
    local.aeTitle = o.aeTitle;
  }
  if (o.port) local.port = o.port;
  if (!o.bind.empty()) {
    if (auto why = net::checkBindAddress(o.bind); !why.empty()) return fail("--bind " + o.bind + ": " + why);
    local.bindAddress = o.bind == "0.0.0.0" ? "" : o.bind;
  }
  if (o.allowSet) {
    for (const auto& a : o.allow)
      if (auto why = net::checkAeTitle(a); !why.empty()) return fail("--allow " + a + ": " + why);
    local.allowedAe = o.allow;
  }
  if (o.minFreeMb >= 0) local.minFreeMegabytes = o.minFreeMb;
  auto db = db::StudyDatabase::open(dataDirOf(common));
  if (!db) return fail(db.error().toString());
  net::InstanceFiler filer(**db);
  auto server = net::StorageServer::start(local, filer);
  if (!server) return fail(server.error().toString());
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::printf("listening as %s on %s port %d%s; storing into %s (Ctrl-C stops)\n", local.aeTitle.c_str(),
              local.bindAddress.empty() ? "every interface," : local.bindAddress.c_str(), local.port,
              local.allowedAe.empty() ? "" : " (allow-list set)", (**db).dataDir().c_str());
  std::fflush(stdout);
  std::uint64_t lastStored = 0;
  while (!gStop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto stored = (*server)->stats().stored.load();
    if (common.progress && stored != lastStored) {
      std::fprintf(stderr, "\rreceived %llu instance(s)", static_cast<unsigned long long>(stored));
      lastStored = stored;
    }
  }
  (*server)->stop();
  const auto& st = (*server)->stats();
  std::printf("stopped: %llu instance(s) stored, %llu refused, %llu association(s), %llu rejected\n",
              static_cast<unsigned long long>(st.stored.load()), static_cast<unsigned long long>(st.failed.load()),
              static_cast<unsigned long long>(st.associations.load()), static_cast<unsigned long long>(st.rejected.load()));
  return 0;
}

}  // namespace lumen::cli
