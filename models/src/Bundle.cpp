#include "lumen/models/Bundle.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "ConfigValue.h"
#include "LumenExtras.h"
#include "lumen/core/Sha256.h"

namespace lumen::models {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* toString(Task t) {
  switch (t) {
    case Task::Segmentation: return "segmentation";
    case Task::Classification: return "classification";
    case Task::Enhancement: return "enhancement";
  }
  return "?";
}

std::map<int, std::string> Bundle::labels() const {
  std::map<int, std::string> out;
  for (const auto& [k, v] : output.channelDef)
    if (k > 0) out[k] = v;
  return out;
}

namespace {

Result<json> readJson(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return Error(ErrorCode::Model, "missing or unreadable", p.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    return Error(ErrorCode::Model, std::string("not valid JSON: ") + e.what(), p.string());
  }
}

std::string targetName(const json& t) {
  if (!t.is_object() || !t.contains("_target_") || !t["_target_"].is_string()) return {};
  std::string s = t["_target_"].get<std::string>();
  const auto dot = s.rfind('.');
  return dot == std::string::npos ? s : s.substr(dot + 1);
}

// Options every transform may carry that do not change what is computed here (Lumen
// has one input and one output, always float32, and writes results itself).
const std::set<std::string> kHarmless = {"_target_", "keys", "allow_missing_keys", "meta_keys", "meta_key_postfix",
                                         "image_only", "device", "track_meta", "reader", "orig_keys", "orig_meta_keys",
                                         "to_tensor", "output_dir", "output_postfix", "output_ext", "separate_folder",
                                         "print_log", "resample", "squeeze_end_dims", "data_root_dir", "channel_dim",
                                         "strict_check", "output_dtype", "writer", "post_func", "transform",
                                         "source_key", "ensure_channel_first", "simple_keys", "overwriting"};

class Reader {
 public:
  Reader(const json& root, std::string file) : root_(root), file_(std::move(file)) {}

  Result<json> get(const json& obj, const std::string& key, const std::string& where) const {
    return config::resolve(obj.at(key), root_, where + "#" + key, file_);
  }
  // Checks that `obj` has no keys beyond `known` and kHarmless.
  Status checkKeys(const json& obj, const std::vector<std::string>& known, const std::string& where) const {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (kHarmless.count(it.key()) || std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
      if (it.value().is_null()) continue;
      return Error(ErrorCode::Model, where + ": option '" + it.key() + "' is not supported by Lumen", file_);
    }
    return {};
  }
  template <class T>
  Result<T> value(const json& obj, const std::string& key, const T& fallback, const std::string& where) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    auto v = get(obj, key, where);
    if (!v) return v.error();
    try {
      if (v->is_null()) return fallback;
      return v->get<T>();
    } catch (const json::exception&) {
      return Error(ErrorCode::Model, where + "#" + key + ": unexpected value " + v->dump(), file_);
    }
  }
  const std::string& file() const { return file_; }

 private:
  const json& root_;
  std::string file_;
};

// A list of transforms: either {"_target_": "Compose", "transforms": [...]} or a list.
Result<std::vector<std::pair<json, std::string>>> transformList(const json& root, const std::string& key, const Reader& r) {
  std::vector<std::pair<json, std::string>> out;
  if (!root.contains(key)) return out;
  // Only the structure is followed here; each transform's values are resolved when read,
  // so expressions in options Lumen does not use (SaveImaged's output_dir...) are harmless.
  auto v = config::follow(root[key], root, key, r.file());
  if (!v) return v.error();
  json list;
  std::string base = key;
  if (v->is_array()) {
    list = *v;
  } else if (v->is_object() && targetName(*v) == "Compose" && v->contains("transforms")) {
    auto t = config::follow((*v)["transforms"], root, key + "#transforms", r.file());
    if (!t) return t.error();
    list = *t;
    base = key + "#transforms";
  } else {
    return Error(ErrorCode::Model, key + ": expected a Compose of transforms", r.file());
  }
  if (!list.is_array()) return Error(ErrorCode::Model, base + ": expected a list of transforms", r.file());
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto item = config::follow(list[i], root, base + "#" + std::to_string(i), r.file());
    if (!item) return item.error();
    out.emplace_back(*item, base + "#" + std::to_string(i));
  }
  return out;
}

// A number or a list of numbers (null entries: -1, "keep this axis"). Anything else is an
// error naming the key: a bundle's JSON types must never escape as exceptions.
Result<std::vector<double>> numbers(const json& v, std::size_t n, const std::string& key, const std::string& file) {
  std::vector<double> out;
  if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_null()) out.push_back(-1.0);
      else if (e.is_number()) out.push_back(e.get<double>());
      else return Error(ErrorCode::Model, key + ": expected numbers, found " + e.dump(), file);
    }
  } else if (v.is_number()) {
    out.assign(n, v.get<double>());
  } else {
    return Error(ErrorCode::Model, key + ": expected a number or a list of numbers, found " + v.dump(), file);
  }
  return out;
}

Status readPreprocessing(const json& root, const Reader& r, Bundle& b) {
  auto list = transformList(root, "preprocessing", r);
  if (!list) return list.error();
  static const std::set<std::string> kNoOps = {"LoadImaged", "LoadImage", "EnsureChannelFirstd", "EnsureChannelFirst",
                                               "AddChanneld", "AddChannel", "EnsureTyped", "EnsureType", "ToTensord",
                                               "ToTensor", "ToDeviced", "CastToTyped"};
  for (const auto& [t, where] : *list) {
    const std::string name = targetName(t);
    if (kNoOps.count(name)) {
      if (name == "CastToTyped" && t.contains("dtype")) {
        auto d = r.get(t, "dtype", where);
        if (!d || d->dump().find("float32") == std::string::npos)
          return Error(ErrorCode::Model, where + ": CastToTyped to anything but float32 is not supported", r.file());
      }
      b.notes.push_back(where + ": " + name + " (handled by Lumen)");
      continue;
    }
    if (name == "Orientationd" || name == "Orientation") {
      if (auto s = r.checkKeys(t, {"axcodes", "as_closest_canonical", "labels"}, where); !s) return s;
      OrientationT o;
      auto ax = r.value<std::string>(t, "axcodes", "RAS", where);
      if (!ax) return ax.error();
      o.axcodes = *ax;
      auto canonical = r.value<bool>(t, "as_closest_canonical", false, where);
      if (!canonical) return canonical.error();
      if (*canonical) o.axcodes = "RAS";  // MONAI then ignores axcodes: the closest canonical (RAS) order
      if (o.axcodes.size() != 3) return Error(ErrorCode::Model, where + "#axcodes: expected three letters", r.file());
      if (t.contains("labels") && !t["labels"].is_null()) {
        // The meaning of the letters: only nibabel's (L->R, P->A, I->S), MONAI's default.
        auto l = r.get(t, "labels", where);
        if (!l) return l.error();
        if (*l != json::parse(R"([["L","R"],["P","A"],["I","S"]])"))
          return Error(ErrorCode::Model, where + "#labels: only MONAI's default ((L, R), (P, A), (I, S)) is supported", r.file());
      }
      b.preprocessing.emplace_back(o);
    } else if (name == "Spacingd" || name == "Spacing") {
      if (auto s = r.checkKeys(t, {"pixdim", "mode", "padding_mode", "align_corners", "diagonal", "dtype", "scale_extent",
                                   "recompute_affine", "min_pixdim", "max_pixdim"},
                               where);
          !s)
        return s;
      SpacingT s;
      if (!t.contains("pixdim")) return Error(ErrorCode::Model, where + ": Spacingd without pixdim", r.file());
      auto p = r.get(t, "pixdim", where);
      if (!p) return p.error();
      auto pv = numbers(*p, 3, where + "#pixdim", r.file());
      if (!pv) return pv.error();
      s.pixdim = *pv;
      if (s.pixdim.empty() || s.pixdim.size() > 3) return Error(ErrorCode::Model, where + "#pixdim: expected 1 to 3 numbers", r.file());
      while (s.pixdim.size() < 3) s.pixdim.push_back(s.pixdim.back());  // MONAI pads with the last value
      for (const char* key : {"min_pixdim", "max_pixdim"}) {
        std::vector<double> v(3, std::nan(""));
        if (t.contains(key) && !t[key].is_null()) {
          auto m = r.get(t, key, where);
          if (!m) return m.error();
          auto mv = numbers(*m, 3, where + "#" + key, r.file());
          if (!mv) return mv.error();
          v = *mv;
          if (v.empty() || v.size() > 3) return Error(ErrorCode::Model, where + "#" + key + ": expected 1 to 3 numbers", r.file());
          while (v.size() < 3) v.push_back(v.back());
          for (double& x : v)
            if (x < 0) x = std::nan("");  // MONAI: a negative value means no limit
        }
        (std::string(key) == "min_pixdim" ? s.minPixdim : s.maxPixdim) = v;
      }
      // One value per key, or a list with the image's first: the image is the one key here.
      const auto firstString = [](const json& j) { return j.is_array() && !j.empty() ? j[0] : j; };
      if (t.contains("mode") && !t["mode"].is_null()) {
        auto m = r.get(t, "mode", where);
        if (!m) return m.error();
        const json mode = firstString(*m);
        if (!mode.is_string() || (mode != "bilinear" && mode != "nearest"))
          return Error(ErrorCode::Model, where + "#mode: " + mode.dump() + " (supported: bilinear, nearest)", r.file());
        s.mode = mode.get<std::string>();
      }
      if (t.contains("padding_mode") && !t["padding_mode"].is_null()) {
        auto m = r.get(t, "padding_mode", where);
        if (!m) return m.error();
        const json pad = firstString(*m);
        if (!pad.is_string() || (pad != "border" && pad != "zeros"))
          return Error(ErrorCode::Model, where + "#padding_mode: " + pad.dump() + " (supported: border, zeros)", r.file());
        s.padding = pad.get<std::string>();
      }
      // Options whose MONAI result Lumen does not reproduce: refused, never ignored.
      for (const auto& [key, why] : std::vector<std::pair<std::string, std::string>>{
               {"align_corners", "true makes MONAI sample voxel edges, not centres"},
               {"diagonal", "true resamples onto world axes"},
               {"scale_extent", "true measures the extent from voxel edges"},
               {"recompute_affine", "true replaces the output's affine"}}) {
        auto v = r.value<json>(t, key, json(false), where);
        if (!v) return v.error();
        const json one = firstString(*v);
        if (!(one.is_boolean() && !one.get<bool>()))
          return Error(ErrorCode::Model, where + "#" + key + ": only false is supported (" + why + ")", r.file());
      }
      b.preprocessing.emplace_back(s);
    } else if (name == "ScaleIntensityRanged" || name == "ScaleIntensityRange") {
      if (auto s = r.checkKeys(t, {"a_min", "a_max", "b_min", "b_max", "clip", "dtype"}, where); !s) return s;
      ScaleIntensityRangeT s;
      auto a0 = r.value<double>(t, "a_min", 0, where), a1 = r.value<double>(t, "a_max", 1, where);
      auto b0 = r.value<double>(t, "b_min", 0, where), b1 = r.value<double>(t, "b_max", 1, where);
      auto c = r.value<bool>(t, "clip", false, where);
      for (auto* e : {&a0, &a1, &b0, &b1})
        if (!*e) return e->error();
      if (!c) return c.error();
      s.aMin = *a0;
      s.aMax = *a1;
      s.bMin = *b0;
      s.bMax = *b1;
      s.clip = *c;
      if (s.aMax == s.aMin) return Error(ErrorCode::Model, where + ": a_min equals a_max", r.file());
      b.preprocessing.emplace_back(s);
    } else if (name == "NormalizeIntensityd" || name == "NormalizeIntensity") {
      if (auto s = r.checkKeys(t, {"nonzero", "channel_wise", "dtype"}, where); !s) return s;
      NormalizeIntensityT n;
      auto nz = r.value<bool>(t, "nonzero", false, where), cw = r.value<bool>(t, "channel_wise", false, where);
      if (!nz) return nz.error();
      if (!cw) return cw.error();
      n.nonzero = *nz;
      n.channelWise = *cw;
      b.preprocessing.emplace_back(n);
    } else if (name == "ScaleIntensityd" || name == "ScaleIntensity") {
      if (auto s = r.checkKeys(t, {"minv", "maxv", "dtype"}, where); !s) return s;
      ScaleIntensityT s;
      auto lo = r.value<double>(t, "minv", 0, where), hi = r.value<double>(t, "maxv", 1, where);
      if (!lo) return lo.error();
      if (!hi) return hi.error();
      s.minv = *lo;
      s.maxv = *hi;
      b.preprocessing.emplace_back(s);
    } else if (name == "CropForegroundd" || name == "CropForeground") {
      if (auto s = r.checkKeys(t, {"margin", "k_divisible", "allow_smaller"}, where); !s) return s;
      if (t.contains("k_divisible")) {
        auto k = r.get(t, "k_divisible", where);
        if (!k || !(k->is_number() && k->get<int>() == 1))
          return Error(ErrorCode::Model, where + "#k_divisible: only 1 is supported", r.file());
      }
      auto smaller = r.value<bool>(t, "allow_smaller", true, where);
      if (!smaller) return smaller.error();
      if (!*smaller)
        return Error(ErrorCode::Model, where + "#allow_smaller: only true is supported (false pads the box beyond the image)", r.file());
      CropForegroundT c;
      auto m = r.value<int>(t, "margin", 0, where);
      if (!m) return m.error();
      c.margin = std::max(0, *m);
      b.preprocessing.emplace_back(c);
    } else {
      return Error(ErrorCode::Model,
                   where + ": transform '" + (name.empty() ? t.dump() : name) + "' is not supported by Lumen", r.file());
    }
  }
  return {};
}

Status readInferer(const json& root, const Reader& r, Bundle& b) {
  if (!root.contains("inferer")) {
    b.notes.push_back("inferer: none given, SimpleInferer used");
    return {};
  }
  auto v = config::follow(root["inferer"], root, "inferer", r.file());
  if (!v) return v.error();
  const std::string name = targetName(*v);
  if (name == "SimpleInferer") return {};
  if (name != "SlidingWindowInferer")
    return Error(ErrorCode::Model, "inferer: '" + name + "' is not supported (SlidingWindowInferer, SimpleInferer)", r.file());
  if (auto s = r.checkKeys(*v, {"roi_size", "sw_batch_size", "overlap", "mode", "sigma_scale", "padding_mode", "cval",
                                "sw_device", "progress", "cache_roi_weight_map", "cpu_thresh"},
                           "inferer");
      !s)
    return s;
  b.inferer.slidingWindow = true;
  auto& w = b.inferer.window;
  if (!v->contains("roi_size")) return Error(ErrorCode::Model, "inferer: SlidingWindowInferer without roi_size", r.file());
  auto roi = r.get(*v, "roi_size", "inferer");
  if (!roi) return roi.error();
  auto rv = numbers(*roi, 3, "inferer#roi_size", r.file());
  if (!rv) return rv.error();
  for (double d : *rv) w.roiSize.push_back(static_cast<int>(d));
  auto bs = r.value<int>(*v, "sw_batch_size", 1, "inferer");
  auto ov = r.value<double>(*v, "overlap", 0.25, "inferer");
  auto mode = r.value<std::string>(*v, "mode", "constant", "inferer");
  auto sigma = r.value<double>(*v, "sigma_scale", 0.125, "inferer");
  auto pad = r.value<std::string>(*v, "padding_mode", "constant", "inferer");
  auto cval = r.value<double>(*v, "cval", 0.0, "inferer");
  if (!bs) return bs.error();
  if (!ov) return ov.error();
  if (!mode) return mode.error();
  if (!sigma) return sigma.error();
  if (!pad) return pad.error();
  if (!cval) return cval.error();
  w.swBatchSize = std::max(1, *bs);
  w.overlap = *ov;
  if (w.overlap < 0 || w.overlap >= 1) return Error(ErrorCode::Model, "inferer#overlap: must be in [0, 1)", r.file());
  if (*mode == "gaussian") w.mode = BlendMode::Gaussian;
  else if (*mode != "constant") return Error(ErrorCode::Model, "inferer#mode: '" + *mode + "' (constant or gaussian)", r.file());
  w.sigmaScale = *sigma;
  if (*pad != "constant") return Error(ErrorCode::Model, "inferer#padding_mode: only 'constant' is supported", r.file());
  w.padValue = *cval;
  return {};
}

Status readPostprocessing(const json& root, const Reader& r, Bundle& b) {
  auto list = transformList(root, "postprocessing", r);
  if (!list) return list.error();
  static const std::set<std::string> kNoOps = {"SaveImaged", "SaveImage", "EnsureTyped", "EnsureType", "ToTensord",
                                               "ToDeviced", "CopyItemsd"};
  for (const auto& [t, where] : *list) {
    const std::string name = targetName(t);
    if (kNoOps.count(name)) {
      b.notes.push_back(where + ": " + name + " (handled by Lumen)");
      continue;
    }
    if (name == "Activationsd" || name == "Activations") {
      if (auto s = r.checkKeys(t, {"softmax", "sigmoid", "other"}, where); !s) return s;
      ActivationsT a;
      auto sm = r.value<bool>(t, "softmax", false, where), sg = r.value<bool>(t, "sigmoid", false, where);
      if (!sm) return sm.error();
      if (!sg) return sg.error();
      if (t.contains("other") && !t["other"].is_null())
        return Error(ErrorCode::Model, where + "#other: custom activations are not supported", r.file());
      a.softmax = *sm;
      a.sigmoid = *sg;
      b.postprocessing.emplace_back(a);
    } else if (name == "AsDiscreted" || name == "AsDiscrete") {
      if (auto s = r.checkKeys(t, {"argmax", "threshold", "to_onehot", "dim", "keepdim", "rounding", "threshold_values",
                                   "logit_thresh"},
                               where);
          !s)
        return s;
      AsDiscreteT a;
      auto am = r.value<bool>(t, "argmax", false, where);
      if (!am) return am.error();
      a.argmax = *am;
      if (t.contains("to_onehot") && !t["to_onehot"].is_null() && t["to_onehot"] != false)
        return Error(ErrorCode::Model, where + "#to_onehot: one-hot outputs are not supported", r.file());
      if (t.contains("threshold") && !t["threshold"].is_null()) {
        auto th = r.get(t, "threshold", where);
        if (!th) return th.error();
        if (!th->is_number())
          return Error(ErrorCode::Model, where + "#threshold: expected a number (MONAI 1.x refuses " + th->dump() + ")", r.file());
        a.threshold = th->get<double>();
      }
      // MONAI 0.x's threshold_values / logit_thresh: MONAI 1.x ignores them, 0.x applied them.
      for (const char* key : {"threshold_values", "logit_thresh"})
        if (t.contains(key) && !t[key].is_null())
          return Error(ErrorCode::Model,
                       where + "#" + key + ": an old MONAI option whose meaning changed between versions; use 'threshold'",
                       r.file());
      auto dim = r.value<int>(t, "dim", 0, where);
      if (!dim) return dim.error();
      if (*dim != 0) return Error(ErrorCode::Model, where + "#dim: only 0 (the channel axis) is supported", r.file());
      auto keep = r.value<bool>(t, "keepdim", true, where);
      if (!keep) return keep.error();
      if (!*keep)
        return Error(ErrorCode::Model, where + "#keepdim: only true is supported (false drops the channel axis)", r.file());
      if (t.contains("rounding") && !t["rounding"].is_null())
        return Error(ErrorCode::Model, where + "#rounding: not supported", r.file());
      b.postprocessing.emplace_back(a);
    } else if (name == "KeepLargestConnectedComponentd" || name == "KeepLargestConnectedComponent") {
      if (auto s = r.checkKeys(t, {"applied_labels", "independent", "connectivity", "is_onehot", "num_components"}, where); !s)
        return s;
      KeepLargestComponentT k;
      if (t.contains("applied_labels") && !t["applied_labels"].is_null()) {
        auto al = r.get(t, "applied_labels", where);
        if (!al) return al.error();
        auto lv = numbers(*al, 1, where + "#applied_labels", r.file());
        if (!lv) return lv.error();
        for (double d : *lv) k.appliedLabels.push_back(static_cast<int>(d));
      }
      if (t.contains("is_onehot") && t["is_onehot"] == true)
        return Error(ErrorCode::Model, where + "#is_onehot: one-hot inputs are not supported", r.file());
      auto independent = r.value<bool>(t, "independent", true, where);
      auto connectivity = r.value<json>(t, "connectivity", json(nullptr), where);
      auto number = r.value<int>(t, "num_components", 1, where);
      if (!independent) return independent.error();
      if (!connectivity) return connectivity.error();
      if (!number) return number.error();
      k.independent = *independent;
      if (!connectivity->is_null()) {
        if (!connectivity->is_number_integer() || connectivity->get<int>() < 1 || connectivity->get<int>() > 3)
          return Error(ErrorCode::Model, where + "#connectivity: expected 1, 2 or 3 (or null: full)", r.file());
        k.connectivity = connectivity->get<int>();
      }
      if (*number < 1) return Error(ErrorCode::Model, where + "#num_components: expected at least 1", r.file());
      k.numComponents = *number;
      b.postprocessing.emplace_back(k);
    } else if (name == "Invertd" || name == "Invert") {
      if (auto s = r.checkKeys(t, {"nearest_interp"}, where); !s) return s;
      InvertT inv;
      auto ni = r.value<bool>(t, "nearest_interp", true, where);  // MONAI's default
      if (!ni) return ni.error();
      inv.nearest = *ni;
      b.postprocessing.emplace_back(inv);
    } else {
      return Error(ErrorCode::Model,
                   where + ": transform '" + (name.empty() ? t.dump() : name) + "' is not supported by Lumen", r.file());
    }
  }
  return {};
}

void readSpec(const json& j, TensorSpec& s) {
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  s.type = str("type");
  s.format = str("format");
  s.modality = str("modality");
  if (j.contains("num_channels") && j["num_channels"].is_number()) s.numChannels = j["num_channels"].get<int>();
  if (j.contains("spatial_shape") && j["spatial_shape"].is_array())
    for (const auto& e : j["spatial_shape"]) s.spatialShape.push_back(e.is_number() ? e.get<int>() : -1);
  if (j.contains("value_range") && j["value_range"].is_array())
    for (const auto& e : j["value_range"])
      if (e.is_number()) s.valueRange.push_back(e.get<double>());
  if (j.contains("channel_def") && j["channel_def"].is_object())
    for (auto it = j["channel_def"].begin(); it != j["channel_def"].end(); ++it)
      if (it.value().is_string()) s.channelDef[std::atoi(it.key().c_str())] = it.value().get<std::string>();
}


}  // namespace

Result<Bundle> loadBundleChecked(const fs::path& dir) {
  Bundle b;
  b.root = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error(ErrorCode::NotFound, "not a model bundle folder", dir.string());
  const fs::path metaPath = dir / "configs" / "metadata.json";
  auto meta = readJson(metaPath);
  if (!meta) return meta.error();
  auto str = [&](const json& j, const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  b.name = str(*meta, "name");
  if (b.name.empty()) b.name = dir.filename().string();
  b.version = str(*meta, "version");
  b.description = str(*meta, "description");
  b.authors = str(*meta, "authors");
  b.license = str(*meta, "license");
  if (!meta->contains("network_data_format") || !(*meta)["network_data_format"].is_object())
    return Error(ErrorCode::Model, "network_data_format is missing", metaPath.string());
  const json& ndf = (*meta)["network_data_format"];
  if (!ndf.contains("inputs") || !ndf["inputs"].is_object() || ndf["inputs"].empty())
    return Error(ErrorCode::Model, "network_data_format#inputs is missing or empty", metaPath.string());
  if (!ndf.contains("outputs") || !ndf["outputs"].is_object() || ndf["outputs"].empty())
    return Error(ErrorCode::Model, "network_data_format#outputs is missing or empty", metaPath.string());
  readSpec(ndf["inputs"].begin().value(), b.input);
  readSpec(ndf["outputs"].begin().value(), b.output);
  if (b.input.numChannels != 1)
    return Error(ErrorCode::Model, "network_data_format#inputs: only single-channel inputs are supported", metaPath.string());

  const fs::path infPath = dir / "configs" / "inference.json";
  auto inf = readJson(infPath);
  if (!inf) return inf.error();
  Reader reader(*inf, infPath.string());
  if (auto s = readPreprocessing(*inf, reader, b); !s) return s.error();
  if (auto s = readInferer(*inf, reader, b); !s) return s.error();
  if (auto s = readPostprocessing(*inf, reader, b); !s) return s.error();

  // Task: Lumen's extra file says it; otherwise the output description does.
  const std::string outFormat = b.output.format + " " + b.output.type;
  if (outFormat.find("segmentation") != std::string::npos || outFormat.find("label") != std::string::npos)
    b.task = Task::Segmentation;
  else if (outFormat.find("probabilit") != std::string::npos || outFormat.find("class") != std::string::npos)
    b.task = Task::Classification;
  else if (b.output.type == "image")
    b.task = Task::Enhancement;
  const fs::path extraPath = dir / "configs" / "lumen.json";
  if (fs::exists(extraPath, ec)) {
    auto extra = readJson(extraPath);
    if (!extra) return extra.error();
    if (auto s = detail::readLumenExtras(*extra, extraPath.string(), b); !s) return s.error();
  }

  b.modelPath = dir / "models" / "model.ts";
  if (!fs::is_regular_file(b.modelPath, ec)) return Error(ErrorCode::Model, "TorchScript model is missing", b.modelPath.string());
  auto hash = Sha256::hexOfFile(b.modelPath);
  if (!hash) return hash.error();
  b.modelSha256 = *hash;
  return b;
}

Result<Bundle> loadBundle(const fs::path& dir) {
  // Every value is type-checked where it is read, with the key in the message; this is the
  // net for anything missed: a malformed bundle is an error, never an exception.
  try {
    return loadBundleChecked(dir);
  } catch (const json::exception& e) {
    return Error(ErrorCode::Model, std::string("malformed configuration (") + e.what() + ")", dir.string());
  } catch (const std::exception& e) {
    return Error(ErrorCode::Model, std::string("cannot read the bundle: ") + e.what(), dir.string());
  }
}

std::vector<fs::path> modelSearchPath(const fs::path& shipped) {
  std::vector<fs::path> out;
  if (const char* p = std::getenv("LUMEN_MODEL_PATH"); p && *p) {
    std::stringstream ss(p);
    std::string part;
    while (std::getline(ss, part, ':'))
      if (!part.empty()) out.emplace_back(part);
  }
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) out.push_back(fs::path(x) / "lumen" / "models");
  else if (const char* h = std::getenv("HOME"); h && *h) out.push_back(fs::path(h) / ".local" / "share" / "lumen" / "models");
  if (!shipped.empty()) out.push_back(shipped);
  return out;
}

std::vector<BundleEntry> discoverBundles(const std::vector<fs::path>& searchPath) {
  std::vector<BundleEntry> out;
  std::set<std::string> seen;
  for (const auto& root : searchPath) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    std::vector<fs::path> dirs;
    fs::directory_iterator it(root, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code dec;
      if (it->is_directory(dec) && fs::exists(it->path() / "configs" / "metadata.json", dec)) dirs.push_back(it->path());
    }
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      if (!seen.insert(d.filename().string()).second) continue;  // earlier folders win
      BundleEntry entry;
      entry.dir = d;
      auto b = loadBundle(d);
      if (b) entry.bundle = std::move(b.value());
      else entry.error = b.error().toString();
      out.push_back(std::move(entry));
    }
  }
  return out;
}

Result<Bundle> findBundle(const std::string& nameOrDir, const std::vector<fs::path>& searchPath) {
  std::error_code ec;
  if (fs::is_directory(nameOrDir, ec)) return loadBundle(nameOrDir);
  for (const auto& root : searchPath) {
    const fs::path d = root / nameOrDir;
    if (fs::is_directory(d, ec)) return loadBundle(d);
  }
  for (auto& e : discoverBundles(searchPath))
    if (e.bundle && e.bundle->name == nameOrDir) return std::move(*e.bundle);
  return Error(ErrorCode::NotFound, "no model bundle of that name or folder (see `lumen-cli models`)", nameOrDir);
}

}  // namespace lumen::models
