#pragma once
// Lumen's own file in a bundle, configs/lumen.json: what MONAI's configs do not say (task,
// display name, plane, series filter, suggestion, slice evidence, estimate, label colours).

#include <nlohmann/json.hpp>

#include <string>

#include "lumen/core/Result.h"
#include "lumen/models/Bundle.h"

namespace lumen::models::detail {

/// Reads `extra` (the parsed lumen.json, named `file` in errors) into b.extras, and b.task
/// where it names one. Needs b.output (metadata.json) read first: the estimate's classes
/// are checked against its channels.
Status readLumenExtras(const nlohmann::json& extra, const std::string& file, Bundle& b);

}  // namespace lumen::models::detail
