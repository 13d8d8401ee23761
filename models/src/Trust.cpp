#include "lumen/models/Trust.h"

#include "lumen/core/DurableFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lumen::models {

namespace fs = std::filesystem;
using json = nlohmann::json;

extern const char* const kShippedModelSums;  // generated from resources/models/SHA256SUMS

const std::map<std::string, std::string>& shippedModelPins() {
  static const std::map<std::string, std::string> pins = [] {
    std::map<std::string, std::string> out;
    std::istringstream in(kShippedModelSums);
    std::string sha, path;
    while (in >> sha >> path) out[path.substr(0, path.find('/'))] = sha;  // "ct_denoise/models/model.ts"
    return out;
  }();
  return pins;
}

const char* toString(TrustState s) {
  switch (s) {
    case TrustState::Shipped: return "shipped";
    case TrustState::Trusted: return "trusted";
    case TrustState::NotTrusted: return "not trusted";
    case TrustState::Modified: return "modified";
  }
  return "?";
}

TrustState trustOf(const std::string& bundleFolder, const std::string& modelSha256, const TrustStore& store,
                   const fs::path& shippedDir) {
  const fs::path dir(bundleFolder);
  const auto& pins = shippedModelPins();
  const auto pin = pins.find(dir.filename().string());
  std::error_code ec;
  const bool inShipped = pin != pins.end() && !shippedDir.empty() &&
                         fs::equivalent(fs::weakly_canonical(dir.parent_path(), ec), fs::weakly_canonical(shippedDir, ec), ec);
  if (inShipped) return modelSha256 == pin->second ? TrustState::Shipped : TrustState::Modified;
  if (store.trusts(modelSha256)) return TrustState::Trusted;
  for (const auto& [name, sha] : pins)
    if (sha == modelSha256) return TrustState::Shipped;  // the same bytes as a shipped bundle
  return TrustState::NotTrusted;
}

fs::path TrustStore::defaultFile() {
  if (const char* d = std::getenv("LUMEN_CONFIG_DIR"); d && *d) return fs::path(d) / "trusted-models.json";
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return fs::path(x) / "lumen" / "trusted-models.json";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".config" / "lumen" / "trusted-models.json";
  return fs::current_path() / ".lumen-trusted-models.json";
}

Result<TrustStore> TrustStore::load(const fs::path& file) {
  TrustStore t;
  t.file_ = file;
  std::error_code ec;
  if (!fs::exists(file, ec)) return t;
  std::ifstream in(file);
  if (!in) return Error(ErrorCode::Io, "cannot read the trusted models list", file.string());
  try {
    const json j = json::parse(in);
    if (!j.is_object() || !j.contains("trusted") || !j["trusted"].is_array())
      return Error(ErrorCode::Corrupt, "not a trusted models list (expected {\"trusted\": [...]})", file.string());
    for (const auto& e : j["trusted"]) {
      if (!e.is_object() || !e.contains("sha256") || !e["sha256"].is_string() || e["sha256"].get<std::string>().size() != 64)
        return Error(ErrorCode::Corrupt, "an entry without a 64-digit sha256", file.string());
      TrustedModel m;
      m.sha256 = e["sha256"].get<std::string>();
      if (e.contains("name") && e["name"].is_string()) m.name = e["name"].get<std::string>();
      if (e.contains("folder") && e["folder"].is_string()) m.folder = e["folder"].get<std::string>();
      t.models_.push_back(std::move(m));
    }
  } catch (const json::exception& e) {
    return Error(ErrorCode::Corrupt, std::string("not valid JSON: ") + e.what(), file.string());
  }
  return t;
}

bool TrustStore::trusts(const std::string& sha256) const {
  for (const auto& m : models_)
    if (m.sha256 == sha256) return true;
  return false;
}

std::set<std::string> TrustStore::trustedHashes() const {
  std::set<std::string> out;
  for (const auto& m : models_) out.insert(m.sha256);
  for (const auto& [name, sha] : shippedModelPins()) out.insert(sha);
  return out;
}

Status TrustStore::add(const TrustedModel& model) {
  if (model.sha256.size() != 64) return Error(ErrorCode::InvalidArgument, "not a SHA-256 digest", model.name);
  bool found = false;
  for (auto& m : models_)
    if (m.sha256 == model.sha256) {
      m = model;
      found = true;
    }
  if (!found) models_.push_back(model);
  return save();
}

Result<bool> TrustStore::remove(const std::string& sha256) {
  const auto before = models_.size();
  std::erase_if(models_, [&](const TrustedModel& m) { return m.sha256 == sha256; });
  if (models_.size() == before) return false;
  if (auto s = save(); !s) return s.error();
  return true;
}

Status TrustStore::save() const {
  std::error_code ec;
  fs::create_directories(file_.parent_path(), ec);
  if (ec) return Error(ErrorCode::Io, "cannot create the folder: " + ec.message(), file_.parent_path().string());
  json j{{"trusted", json::array()}};
  for (const auto& m : models_) j["trusted"].push_back({{"sha256", m.sha256}, {"name", m.name}, {"folder", m.folder}});
  // The user's only: it decides which code runs.
  if (auto w = writeFileDurably(file_, j.dump(2) + "\n", 0600); !w)
    return Error(ErrorCode::Io, "cannot write the trusted models list: " + w.error().message, file_.string());
  return {};
}

}  // namespace lumen::models
