#pragma once
// Which model bundles may run. A bundle is code: its TorchScript runs inside Lumen with the
// user's rights. Bundles shipped with Lumen are pinned by the SHA-256 of their model.ts
// (resources/models/SHA256SUMS, compiled in): they run without asking, and only with exactly
// those bytes. Any other bundle runs once the user has trusted its hash; a changed model.ts
// has another hash and must be trusted again.

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lumen/core/Result.h"

namespace lumen::models {

/// Bundle folder name -> SHA-256 of the model.ts shipped in it.
const std::map<std::string, std::string>& shippedModelPins();

struct TrustedModel {
  std::string sha256;
  std::string name;    // the bundle's name when it was trusted (for the list shown to users)
  std::string folder;  // where it was
};

class TrustStore;

enum class TrustState {
  Shipped,     // shipped with Lumen, its bytes the pinned ones (or the same bytes elsewhere)
  Trusted,     // in the user's list
  NotTrusted,  // must be trusted before it runs
  Modified,    // in Lumen's shipped folder but not the bytes Lumen was built with
};
const char* toString(TrustState s);  // "shipped", "trusted", "not trusted", "modified"

/// Whether the bundle (its model.ts hash as listed, `modelSha256`) may run. `shippedDir`: the
/// folder of the bundles shipped with this installation.
TrustState trustOf(const std::string& bundleFolder, const std::string& modelSha256, const TrustStore& store,
                   const std::filesystem::path& shippedDir);

class TrustStore {
 public:
  /// $LUMEN_CONFIG_DIR/trusted-models.json, else $XDG_CONFIG_HOME/lumen/..., else
  /// ~/.config/lumen/...
  static std::filesystem::path defaultFile();
  /// Reads the list; a missing file is an empty list, a malformed one an error naming it.
  static Result<TrustStore> load(const std::filesystem::path& file = defaultFile());

  bool trusts(const std::string& sha256) const;
  const std::vector<TrustedModel>& models() const { return models_; }
  /// Adds (or renames) an entry and saves the file: written beside it, flushed and renamed,
  /// readable by the user only.
  Status add(const TrustedModel& model);
  /// Removes every entry with this hash and saves; false when there was none.
  Result<bool> remove(const std::string& sha256);
  /// What InferenceOptions::trustedSha256 takes: these hashes and the shipped pins.
  std::set<std::string> trustedHashes() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  Status save() const;
  std::filesystem::path file_;
  std::vector<TrustedModel> models_;
};

}  // namespace lumen::models
