#include "lumen/imaging/LabelMapIO.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lumen/core/DurableFile.h"
#include "lumen/imaging/ImageIO.h"

namespace lumen::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json code(const CodedConcept& c) { return {{"value", c.value}, {"scheme", c.scheme}, {"meaning", c.meaning}}; }

CodedConcept readCode(const json& j, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error(where + " must be an object");
  CodedConcept c;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) throw std::runtime_error(where + ": \"" + k + "\" must be a string");
    if (k == "value") c.value = v.get<std::string>();
    else if (k == "scheme") c.scheme = v.get<std::string>();
    else if (k == "meaning") c.meaning = v.get<std::string>();
    else throw std::runtime_error(where + ": unknown key \"" + k + "\"");
  }
  if (!c.value.empty() && (c.scheme.empty() || c.meaning.empty()))
    throw std::runtime_error(where + ": a code needs its scheme and meaning");
  return c;
}

}  // namespace

fs::path labelSidecarPath(const fs::path& image) {
  std::string name = image.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      name.resize(name.size() - e.size());
      break;
    }
  }
  return image.parent_path() / (name + ".labels.json");
}

std::string labelInfosToJson(const std::vector<LabelInfo>& infos) {
  json list = json::array();
  for (const auto& l : infos) {
    json j{{"value", l.value},
           {"name", l.name},
           {"color", {l.color.r, l.color.g, l.color.b}},
           {"opacity", l.opacity},
           {"visible", l.visible}};
    if (!l.category.empty()) j["category"] = code(l.category);
    if (!l.type.empty()) j["type"] = code(l.type);
    list.push_back(j);
  }
  return json{{"format", "lumen-labels"}, {"version", 1}, {"labels", list}}.dump(2) + "\n";
}

Result<std::vector<LabelInfo>> labelInfosFromJson(const std::string& text, const std::string& resource) {
  std::vector<LabelInfo> out;
  try {
    const json doc = json::parse(text);
    if (!doc.is_object() || doc.value("format", std::string()) != "lumen-labels")
      throw std::runtime_error("not a Lumen label description");
    for (const auto& [k, v] : doc.items())
      if (k != "format" && k != "version" && k != "labels") throw std::runtime_error("unknown key \"" + k + "\"");
    if (!doc.contains("version") || doc["version"] != 1) throw std::runtime_error("unsupported version");
    if (!doc.contains("labels") || !doc["labels"].is_array()) throw std::runtime_error("\"labels\" must be a list");
    std::set<int> seen;
    for (const auto& j : doc["labels"]) {
      if (!j.is_object()) throw std::runtime_error("a label must be an object");
      LabelInfo l;
      if (!j.contains("value") || !j["value"].is_number_integer() || j["value"].get<long long>() < 1 ||
          j["value"].get<long long>() > 255)
        throw std::runtime_error("a label's \"value\" must be an integer 1 to 255");
      l.value = static_cast<int>(j["value"].get<long long>());
      const std::string where = "label " + std::to_string(l.value);
      if (!seen.insert(l.value).second) throw std::runtime_error(where + " is described twice");
      for (const auto& [k, v] : j.items()) {
        if (k == "value") continue;
        if (k == "name") {
          if (!v.is_string()) throw std::runtime_error(where + ": \"name\" must be a string");
          l.name = v.get<std::string>();
        } else if (k == "color") {
          if (!v.is_array() || v.size() != 3) throw std::runtime_error(where + ": \"color\" must be [r, g, b]");
          int c[3];
          for (std::size_t i = 0; i < 3; ++i) {
            if (!v[i].is_number_integer() || v[i].get<long long>() < 0 || v[i].get<long long>() > 255)
              throw std::runtime_error(where + ": colour components are integers 0 to 255");
            c[i] = static_cast<int>(v[i].get<long long>());
          }
          l.color = {static_cast<std::uint8_t>(c[0]), static_cast<std::uint8_t>(c[1]), static_cast<std::uint8_t>(c[2])};
        } else if (k == "opacity") {
          if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1)
            throw std::runtime_error(where + ": \"opacity\" must be 0 to 1");
          l.opacity = v.get<double>();
        } else if (k == "visible") {
          if (!v.is_boolean()) throw std::runtime_error(where + ": \"visible\" must be true or false");
          l.visible = v.get<bool>();
        } else if (k == "category") {
          l.category = readCode(v, where + ": category");
        } else if (k == "type") {
          l.type = readCode(v, where + ": type");
        } else {
          throw std::runtime_error(where + ": unknown key \"" + k + "\"");
        }
      }
      out.push_back(std::move(l));
    }
  } catch (const std::exception& e) {
    return Error(ErrorCode::Corrupt, std::string("label descriptions cannot be read: ") + e.what(), resource);
  }
  return out;
}

Status writeLabelMap(const Volume& labels, const std::vector<LabelInfo>& infos, const fs::path& path) {
  if (auto s = writeImage(labels, path); !s) return s;
  return writeFileDurably(labelSidecarPath(path), labelInfosToJson(infos));
}

Result<LabelMapFile> readLabelMap(const fs::path& path) {
  auto v = readImage(path);
  if (!v) return v.error();
  auto editable = LabelEditor::toEditable(*v);
  if (!editable) return Error(editable.error().code, editable.error().message, path.string());
  LabelMapFile f;
  f.labels = *editable;
  const fs::path side = labelSidecarPath(path);
  std::error_code ec;
  if (fs::exists(side, ec)) {
    std::ifstream in(side);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in.good() && !in.eof()) return Error(ErrorCode::Io, "cannot read", side.string());
    auto infos = labelInfosFromJson(ss.str(), side.string());
    if (!infos) return infos.error();
    f.infos = std::move(*infos);
    f.hasSidecar = true;
  }
  return f;
}

}  // namespace lumen::io
