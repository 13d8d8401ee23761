#include "lumen/imaging/MeasurementIO.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

namespace lumen {

namespace {

using json = nlohmann::json;
constexpr const char* kFormat = "lumen-measurements";
constexpr int kVersion = 1;

json vec(const Vec3& v) { return json::array({v.x, v.y, v.z}); }

Vec3 readVec(const json& j, const std::string& where) {
  if (!j.is_array() || j.size() != 3) throw std::runtime_error(where + " must be three numbers");
  Vec3 v;
  for (std::size_t i = 0; i < 3; ++i) {
    if (!j[i].is_number()) throw std::runtime_error(where + " must be three numbers");
    v[i] = j[i].get<double>();
  }
  return v;
}

// A number for JSON: NaN (no samples) becomes null.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string csvNumber(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

// Values of one measurement, computed once for both exports.
struct Values {
  double length = NAN, angle = NAN, area = NAN;
  RoiStatistics stats;
  bool hasStats = false;
  std::string statsError;
};

Values valuesOf(const Measurement& m, const Volume* image) {
  Values v;
  if (m.kind == MeasurementKind::Distance) v.length = lengthMm(m);
  if (m.kind == MeasurementKind::Angle) v.angle = angleDeg(m);
  if (isRoi(m.kind)) {
    v.area = areaMm2(m);
    if (image) {
      if (auto st = roiStatistics(m, *image)) {
        v.stats = *st;
        v.hasStats = true;
      } else {
        v.statsError = st.error().message;
      }
    }
  }
  return v;
}

}  // namespace

std::string measurementsToDocument(const std::vector<Measurement>& list) {
  if (list.empty()) return {};
  json items = json::array();
  for (const auto& m : list) {
    json pts = json::array();
    for (const auto& p : m.points) pts.push_back(vec(p));
    items.push_back({{"id", m.id}, {"kind", toString(m.kind)}, {"points", pts}, {"right", vec(m.right)},
                     {"up", vec(m.up)}, {"text", m.text}});
  }
  return json{{"format", kFormat}, {"version", kVersion}, {"measurements", items}}.dump();
}

Result<std::vector<Measurement>> measurementsFromDocument(const std::string& text, const std::string& resource) {
  std::vector<Measurement> out;
  if (text.empty()) return out;
  try {
    const json doc = json::parse(text);
    if (!doc.is_object()) throw std::runtime_error("not a JSON object");
    for (const auto& [key, value] : doc.items())
      if (key != "format" && key != "version" && key != "measurements")
        throw std::runtime_error("unknown key \"" + key + "\"");
    if (doc.value("format", std::string()) != kFormat) throw std::runtime_error("not a Lumen measurements document");
    if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"].get<long long>() != kVersion)
      throw std::runtime_error("unsupported version (this Lumen reads version " + std::to_string(kVersion) + ")");
    if (!doc.contains("measurements") || !doc["measurements"].is_array())
      throw std::runtime_error("\"measurements\" must be a list");
    std::set<int> ids;
    for (const auto& item : doc["measurements"]) {
      if (!item.is_object()) throw std::runtime_error("a measurement must be a JSON object");
      const std::string where = "measurement " + (item.contains("id") ? item["id"].dump() : std::string("?"));
      for (const auto& [key, value] : item.items())
        if (key != "id" && key != "kind" && key != "points" && key != "right" && key != "up" && key != "text")
          throw std::runtime_error(where + ": unknown key \"" + key + "\"");
      Measurement m;
      if (!item.contains("id") || !item["id"].is_number_integer() || item["id"].get<long long>() <= 0 ||
          item["id"].get<long long>() > 1000000000)
        throw std::runtime_error(where + ": \"id\" must be a positive integer");
      m.id = item["id"].get<int>();
      if (!ids.insert(m.id).second) throw std::runtime_error(where + ": the id is used twice");
      if (!item.contains("kind") || !item["kind"].is_string() ||
          !parseMeasurementKind(item["kind"].get<std::string>(), m.kind))
        throw std::runtime_error(where + ": unknown \"kind\"");
      if (!item.contains("points") || !item["points"].is_array()) throw std::runtime_error(where + ": \"points\" missing");
      for (const auto& p : item["points"]) m.points.push_back(readVec(p, where + ": a point"));
      if (!item.contains("right") || !item.contains("up")) throw std::runtime_error(where + ": plane axes missing");
      m.right = readVec(item["right"], where + ": \"right\"");
      m.up = readVec(item["up"], where + ": \"up\"");
      if (item.contains("text")) {
        if (!item["text"].is_string()) throw std::runtime_error(where + ": \"text\" must be a string");
        m.text = item["text"].get<std::string>();
      }
      if (auto s = validate(m); !s) throw std::runtime_error(s.error().message);
      out.push_back(std::move(m));
    }
  } catch (const std::exception& e) {
    return Error(ErrorCode::Corrupt, std::string("measurements cannot be read: ") + e.what(), resource);
  }
  return out;
}

std::string exportMeasurementsJson(const std::vector<Measurement>& list, const Volume* image,
                                   const MeasurementSource& source) {
  json items = json::array();
  for (const auto& m : list) {
    const Values v = valuesOf(m, image);
    json pts = json::array();
    for (const auto& p : m.points) pts.push_back(vec(p));
    json j{{"id", m.id}, {"kind", toString(m.kind)}, {"text", m.text}, {"pointsLps", pts},
           {"planeRight", vec(m.right)}, {"planeUp", vec(m.up)}};
    if (m.kind == MeasurementKind::Distance) j["lengthMm"] = v.length;
    if (m.kind == MeasurementKind::Angle) j["angleDeg"] = v.angle;
    if (isRoi(m.kind)) {
      j["areaMm2"] = v.area;
      if (v.hasStats) {
        j["statistics"] = {{"samples", v.stats.samples}, {"mean", num(v.stats.mean)}, {"sd", num(v.stats.sd)},
                           {"min", num(v.stats.min)},    {"max", num(v.stats.max)},   {"onVoxels", v.stats.onVoxels},
                           {"units", source.units}};
      } else if (!v.statsError.empty()) {
        j["statisticsError"] = v.statsError;
      }
    }
    items.push_back(std::move(j));
  }
  json doc{{"format", "lumen-measurements-export"},
           {"version", 1},
           {"coordinates", "LPS mm"},
           {"seriesInstanceUid", source.seriesInstanceUid},
           {"studyInstanceUid", source.studyInstanceUid},
           {"frameOfReferenceUid", source.frameOfReferenceUid},
           {"volume", source.volume},
           {"measurements", items}};
  return doc.dump(2) + "\n";
}

std::string exportMeasurementsCsv(const std::vector<Measurement>& list, const Volume* image,
                                  const MeasurementSource& source) {
  std::string out = "id,kind,text,length_mm,angle_deg,area_mm2,mean,sd,min,max,samples,units,points_lps\r\n";
  for (const auto& m : list) {
    const Values v = valuesOf(m, image);
    std::string points;
    for (const auto& p : m.points) {
      if (!points.empty()) points += ';';
      points += csvNumber(p.x) + " " + csvNumber(p.y) + " " + csvNumber(p.z);
    }
    const bool st = v.hasStats && v.stats.samples > 0;
    out += std::to_string(m.id) + "," + toString(m.kind) + "," + csvField(m.text) + "," + csvNumber(v.length) + "," +
           csvNumber(v.angle) + "," + csvNumber(v.area) + "," + (st ? csvNumber(v.stats.mean) : "") + "," +
           (st ? csvNumber(v.stats.sd) : "") + "," + (st ? csvNumber(v.stats.min) : "") + "," +
           (st ? csvNumber(v.stats.max) : "") + "," + (v.hasStats ? std::to_string(v.stats.samples) : "") + "," +
           (v.hasStats ? csvField(source.units) : "") + "," + csvField(points) + "\r\n";
  }
  return out;
}

}  // namespace lumen
