#pragma once
// MONAI bundle config values: "@ref#path" references and "$..." expressions. Lumen
// resolves plain references and Python literals; any real Python is refused with a
// message naming the key (private to models/).

#include <nlohmann/json.hpp>

#include <string>

#include "lumen/core/Result.h"

namespace lumen::models::config {

using json = nlohmann::json;

/// Resolves `value` (found at `key`, for messages) against the whole config `root`:
/// references are followed, literals parsed, recursively for arrays and objects.
Result<json> resolve(const json& value, const json& root, const std::string& key, const std::string& file);

/// Follows references ("@x", "$@x") at the top level only: the containers a pipeline is
/// made of, without evaluating values Lumen does not need.
Result<json> follow(const json& value, const json& root, const std::string& key, const std::string& file);

/// A Python literal ("(96, 96, 96)", "True", "-1.5e3", "'RAS'", "[1, [2, 3]]") as JSON.
Result<json> parsePythonLiteral(const std::string& text);

}  // namespace lumen::models::config
