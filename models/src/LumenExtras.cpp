#include "LumenExtras.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <utility>

namespace lumen::models::detail {

using json = nlohmann::json;

namespace {

std::string str(const json& j, const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); }

Result<Task> parseTask(const std::string& s, const std::string& file) {
  if (s == "segmentation") return Task::Segmentation;
  if (s == "classification") return Task::Classification;
  if (s == "enhancement") return Task::Enhancement;
  return Error(ErrorCode::Model, "task: '" + s + "' (segmentation, classification or enhancement)", file);
}

// `key` holds [low, high], two numbers with low < high.
std::optional<std::pair<double, double>> numberPair(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 || !j[key][0].is_number() || !j[key][1].is_number())
    return std::nullopt;
  const double lo = j[key][0].get<double>(), hi = j[key][1].get<double>();
  if (!(lo < hi)) return std::nullopt;
  return std::make_pair(lo, hi);
}

// The first key of object j not in `known` (empty: none): a key this version does not know
// could change the result, so it is refused, not ignored.
std::string unknownKey(const json& j, std::initializer_list<const char*> known) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::none_of(known.begin(), known.end(), [&it](const char* k) { return it.key() == k; })) return it.key();
  return {};
}

}  // namespace

Status readLumenExtras(const json& extra, const std::string& file, Bundle& b) {
  if (extra.contains("task")) {
    auto t = parseTask(str(extra, "task"), file);
    if (!t) return t.error();
    b.extras.task = *t;
    b.task = *t;
  }
  b.extras.displayName = str(extra, "display_name");
  b.extras.disclaimer = str(extra, "disclaimer");
  if (extra.contains("plane")) {
    const json& pl = extra["plane"];
    if (!pl.is_string() || (pl != "axial" && pl != "coronal" && pl != "sagittal"))
      return Error(ErrorCode::Model, "plane: expected \"axial\", \"coronal\" or \"sagittal\"", file);
    b.extras.plane = pl.get<std::string>();
  }
  if (extra.contains("series_filter") && extra["series_filter"].is_object())
    b.extras.modalityFilter = str(extra["series_filter"], "modality");
  if (extra.contains("suggest")) {
    const json& sg = extra["suggest"];
    if (!sg.is_object() || !sg.contains("when") || !sg["when"].is_array() || !sg.contains("model") || !sg["model"].is_string())
      return Error(ErrorCode::Model, "suggest: expected {\"when\": [class names], \"model\": name, \"text\": reason}", file);
    LumenExtras::Suggestion su;
    for (const auto& w : sg["when"])
      if (w.is_string()) su.whenClasses.push_back(w.get<std::string>());
    su.model = sg["model"].get<std::string>();
    su.text = str(sg, "text");
    b.extras.suggestion = su;
  }
  if (extra.contains("slice_evidence")) {
    const json& se = extra["slice_evidence"];
    const char* expected =
        "slice_evidence: expected {\"range\": [low, high], \"smoothing_mm\": >= 0, \"neighbourhood_mm\": > 0, "
        "\"min_area_mm2\": > 0}";
    const auto number = [&se](const char* key) { return se.contains(key) && se[key].is_number(); };
    const auto range = se.is_object() ? numberPair(se, "range") : std::nullopt;
    if (!range || !number("smoothing_mm") || !number("neighbourhood_mm") || !number("min_area_mm2"))
      return Error(ErrorCode::Model, expected, file);
    LumenExtras::SliceEvidence ev{range->first, range->second, se["smoothing_mm"].get<double>(),
                                  se["neighbourhood_mm"].get<double>(), se["min_area_mm2"].get<double>()};
    if (!(ev.smoothingMm >= 0) || !(ev.neighbourhoodMm > 0) || !(ev.minAreaMm2 > 0) ||
        ev.smoothingMm > 1000 || ev.neighbourhoodMm > 1000)
      return Error(ErrorCode::Model, expected, file);
    b.extras.sliceEvidence = ev;
  }
  if (extra.contains("estimate")) {
    const json& es = extra["estimate"];
    const char* expected =
        "estimate: expected {\"name\": text, \"unit\": text, \"transform\": \"exp\" or \"none\", \"known_range\": [low, high], "
        "\"class_edges\": [ascending numbers, one fewer than the classes]}";
    const auto known = es.is_object() ? numberPair(es, "known_range") : std::nullopt;
    if (!known || !es.contains("name") || !es["name"].is_string() || (es.contains("unit") && !es["unit"].is_string()) ||
        (es.contains("transform") && es["transform"] != "exp" && es["transform"] != "none"))
      return Error(ErrorCode::Model, expected, file);
    if (const auto k = unknownKey(es, {"name", "unit", "transform", "known_range", "class_edges", "size_reference"}); !k.empty())
      return Error(ErrorCode::Model, "estimate: unknown key '" + k + "' (" + expected + ")", file);
    LumenExtras::Estimate e{es["name"].get<std::string>(), str(es, "unit"), es.value("transform", std::string("none")) == "exp",
                            known->first, known->second, {}, std::nullopt};
    if (e.exp && !(e.lo > 0)) return Error(ErrorCode::Model, expected, file);
    if (es.contains("class_edges")) {
      const json& edges = es["class_edges"];
      if (!edges.is_array() || edges.empty()) return Error(ErrorCode::Model, expected, file);
      for (const auto& x : edges) {
        if (!x.is_number() || (!e.classEdges.empty() && !(x.get<double>() > e.classEdges.back())))
          return Error(ErrorCode::Model, expected, file);
        e.classEdges.push_back(x.get<double>());
      }
      // The last output column is the estimate; the others are the classes.
      if (b.output.numChannels > 0 && static_cast<int>(e.classEdges.size()) != b.output.numChannels - 2)
        return Error(ErrorCode::Model, "estimate: class_edges must be one fewer than the classes (metadata.json: " +
                                           std::to_string(b.output.numChannels - 1) + " classes)", file);
    }
    if (es.contains("size_reference")) {
      const json& sr = es["size_reference"];
      const char* expectedSize =
          "estimate.size_reference: expected {\"diameter_mm\": > 0, \"slope_ln_per_mm\": number, \"class_spread\": > 0}, "
          "with \"transform\": \"exp\" and at least two class_edges of equal ratio";
      const auto number = [&sr](const char* key) { return sr.contains(key) && sr[key].is_number(); };
      if (!sr.is_object() || !number("diameter_mm") || !number("slope_ln_per_mm") || !number("class_spread"))
        return Error(ErrorCode::Model, expectedSize, file);
      if (const auto k = unknownKey(sr, {"diameter_mm", "slope_ln_per_mm", "class_spread"}); !k.empty())
        return Error(ErrorCode::Model, "estimate.size_reference: unknown key '" + k + "' (" + expectedSize + ")", file);
      // A water-equivalent diameter is of an axial slice.
      if (b.extras.plane != "axial")
        return Error(ErrorCode::Model, "estimate.size_reference needs \"plane\": \"axial\" (diameters are of axial slices)", file);
      LumenExtras::SizeReference ref{sr["diameter_mm"].get<double>(), sr["slope_ln_per_mm"].get<double>(),
                                     sr["class_spread"].get<double>()};
      // The bins are equal in ln: the logistic model's outer bins are one such width wide.
      bool equalRatio = e.exp && e.classEdges.size() >= 2 && e.classEdges.front() > 0;
      for (std::size_t i = 2; equalRatio && i < e.classEdges.size(); ++i)
        equalRatio = std::fabs(std::log(e.classEdges[i] / e.classEdges[i - 1]) - std::log(e.classEdges[1] / e.classEdges[0])) <
                     1e-3 * std::log(e.classEdges[1] / e.classEdges[0]);
      if (!equalRatio || !(ref.diameterMm > 0 && ref.diameterMm < 2000) || !(std::fabs(ref.slopePerMm) < 1) ||
          !(ref.classSpread > 0 && ref.classSpread < 10))
        return Error(ErrorCode::Model, expectedSize, file);
      e.sizeReference = ref;
    }
    if (b.task != Task::Classification)
      return Error(ErrorCode::Model, "estimate: only a classifier can have one", file);
    b.extras.estimate = e;
  }
  if (extra.contains("label_colors") && extra["label_colors"].is_object())
    for (auto it = extra["label_colors"].begin(); it != extra["label_colors"].end(); ++it) {
      const json& c = it.value();
      if (!c.is_array() || c.size() != 3 ||
          !std::all_of(c.begin(), c.end(), [](const json& e) { return e.is_number_integer() && e.get<int>() >= 0 && e.get<int>() <= 255; }))
        return Error(ErrorCode::Model, "label_colors#" + it.key() + ": expected [r, g, b], each 0 to 255", file);
      b.extras.labelColors[std::atoi(it.key().c_str())] = {c[0].get<std::uint8_t>(), c[1].get<std::uint8_t>(), c[2].get<std::uint8_t>()};
    }
  return {};
}

}  // namespace lumen::models::detail
