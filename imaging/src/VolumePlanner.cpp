#include "lumen/imaging/VolumePlanner.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "lumen/core/Log.h"

namespace lumen::dicom {

namespace {

// Two positions closer than this along the normal are "the same slice".
constexpr double kSamePositionMm = 0.005;
// A gap this many times the median gap separates two stacks rather than missing slices.
constexpr double kSeparateStackGapFactor = 5.0;
// Orientation vectors closer than this (cosine) are the same orientation (~0.5 degree).
const double kSameOrientationCos = std::cos(0.5 * M_PI / 180.0);

struct Entry {
  FrameRef ref;
  const FileInfo* file = nullptr;
  const FrameInfo* frame = nullptr;
  double d = 0.0;  // position along the group's normal
};

struct Group {
  const FileInfo* first = nullptr;
  std::string seriesUid;
  std::string encoding;  // bits, sign, photometric, units: must agree within a volume
  std::uint16_t rows = 0, cols = 0;
  bool color = false, localizer = false, geometric = false;
  int cineFile = -1;   // cine files each form their own group
  int singleKey = -1;  // frames without geometry: one group each
  std::string stackId;
  Vec3 row, col;
  double si = 1, sj = 1;
  std::vector<Entry> entries;
  std::vector<std::string> labels;
  std::string splitWarning;
};

std::string fmt(double v, int precision = 2) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  std::string r = s.str();
  if (r.find('.') != std::string::npos) {
    while (!r.empty() && r.back() == '0') r.pop_back();
    if (!r.empty() && r.back() == '.') r.pop_back();
  }
  return r;
}

bool sameDirection(const Vec3& a, const Vec3& b) { return a.dot(b) >= kSameOrientationCos; }
bool sameSpacing(double a, double b) { return std::fabs(a - b) <= 1e-3 * std::max(a, b); }

std::string planeName(const Vec3& normal) {
  switch (dominantDirectionLetter(normal)) {
    case 'S': case 'I': return "axial";
    case 'A': case 'P': return "coronal";
    default: return "sagittal";
  }
}

// What the stored values mean: files that disagree on it cannot share one output type,
// one MONOCHROME1 inversion and one unit, so they are separate volumes.
std::string encodingKey(const FileInfo& f) {
  std::ostringstream s;
  s << "BitsAllocated " << f.bitsAllocated << ", BitsStored " << f.bitsStored << ", HighBit " << f.highBit << ", "
    << (f.floatPixelData ? "float" : f.pixelRepresentation == 1 ? "signed" : "unsigned") << ", " << f.photometric;
  if (!f.rescaleType.empty()) s << ", RescaleType " << f.rescaleType;
  return s.str();
}

bool matches(const Group& g, const FileInfo& f, const FrameInfo& fr) {
  if (g.cineFile >= 0 || g.singleKey >= 0) return false;
  if (g.seriesUid != f.series.seriesInstanceUid || g.rows != f.rows || g.cols != f.columns || g.encoding != encodingKey(f) ||
      g.color != f.isColor() || g.localizer != f.isLocalizer || g.stackId != fr.stackId)
    return false;
  return sameDirection(g.row, fr.rowCosine) && sameDirection(g.col, fr.columnCosine) &&
         sameSpacing(g.si, fr.spacingI) && sameSpacing(g.sj, fr.spacingJ);
}

// ---------------------------------------------------------------------------------------
// Splitting frames that share positions (echoes, time points, b-values, acquisitions).

struct SplitKey {
  const char* what;
  std::function<std::optional<double>(const Entry&)> value;
  std::function<std::string(double)> label;
};

const std::vector<SplitKey>& splitKeys() {
  static const std::vector<SplitKey> keys = {
      {"echo", [](const Entry& e) -> std::optional<double> {
         return e.frame->echoNumber > 0 ? std::optional<double>(e.frame->echoNumber) : std::nullopt; },
       [](double v) { return "echo " + fmt(v, 0); }},
      {"echo time", [](const Entry& e) -> std::optional<double> {
         return e.frame->echoTimeMs >= 0 ? std::optional<double>(e.frame->echoTimeMs) : std::nullopt; },
       [](double v) { return "TE " + fmt(v) + " ms"; }},
      {"b-value", [](const Entry& e) -> std::optional<double> {
         return e.frame->diffusionBValue >= 0 ? std::optional<double>(e.frame->diffusionBValue) : std::nullopt; },
       [](double v) { return "b=" + fmt(v, 0); }},
      {"time point", [](const Entry& e) -> std::optional<double> {
         return e.frame->temporalPosition >= 0 ? std::optional<double>(e.frame->temporalPosition) : std::nullopt; },
       [](double v) { return "time " + fmt(v, 0); }},
      {"trigger time", [](const Entry& e) -> std::optional<double> {
         return e.frame->triggerTimeMs >= 0 ? std::optional<double>(e.frame->triggerTimeMs) : std::nullopt; },
       [](double v) { return "trigger " + fmt(v, 1) + " ms"; }},
      {"acquisition", [](const Entry& e) -> std::optional<double> {
         return e.frame->acquisitionNumber >= 0 ? std::optional<double>(e.frame->acquisitionNumber) : std::nullopt; },
       [](double v) { return "acquisition " + fmt(v, 0); }},
  };
  return keys;
}

bool hasDuplicatePositions(const std::vector<Entry>& sorted) {
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].d - sorted[i - 1].d < kSamePositionMm) return true;
  return false;
}

void sortAlongNormal(std::vector<Entry>& entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (std::fabs(a.d - b.d) >= kSamePositionMm) return a.d < b.d;
    if (a.frame->instanceNumber != b.frame->instanceNumber) return a.frame->instanceNumber < b.frame->instanceNumber;
    if (a.ref.file != b.ref.file) return a.ref.file < b.ref.file;
    return a.ref.frame < b.ref.frame;
  });
}

// Tries each key; returns the parts (with labels) of the first key that separates the
// frames into stacks without duplicate positions, each of at least two slices.
std::optional<std::vector<std::pair<std::string, std::vector<Entry>>>> trySplit(const std::vector<Entry>& entries) {
  for (const auto& key : splitKeys()) {
    std::map<double, std::vector<Entry>> parts;
    bool complete = true;
    for (const auto& e : entries) {
      auto v = key.value(e);
      if (!v) {
        complete = false;
        break;
      }
      parts[*v].push_back(e);
    }
    if (!complete || parts.size() < 2) continue;
    bool good = true;
    for (auto& [v, part] : parts) {
      sortAlongNormal(part);
      if (part.size() < 2 || hasDuplicatePositions(part)) {
        good = false;
        break;
      }
    }
    if (!good) continue;
    std::vector<std::pair<std::string, std::vector<Entry>>> out;
    for (auto& [v, part] : parts) out.emplace_back(key.label(v), std::move(part));
    return out;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------

class Planner {
 public:
  Planner(const ScanResult& scan, std::vector<SkippedFile>* unused) : scan_(scan), unused_(unused) {}

  std::vector<VolumePlan> run() {
    buildGroups();
    for (auto& g : groups_) processGroup(g);
    std::stable_sort(plans_.begin(), plans_.end(), [](const VolumePlan& a, const VolumePlan& b) {
      if (a.info.study.studyInstanceUid != b.info.study.studyInstanceUid)
        return a.info.study.studyInstanceUid < b.info.study.studyInstanceUid;
      if (a.info.series.seriesNumber != b.info.series.seriesNumber)
        return a.info.series.seriesNumber < b.info.series.seriesNumber;
      return a.info.series.seriesInstanceUid < b.info.series.seriesInstanceUid;
    });
    if (unused_) {
      for (std::size_t i = 0; i < scan_.files.size(); ++i)
        if (!usedFiles_.count(static_cast<std::uint32_t>(i))) {
          auto it = dropReason_.find(static_cast<std::uint32_t>(i));
          unused_->push_back({scan_.files[i].path, it != dropReason_.end() ? it->second : "not part of any volume"});
        }
    }
    return std::move(plans_);
  }

 private:
  void buildGroups() {
    for (std::uint32_t fi = 0; fi < scan_.files.size(); ++fi) {
      const FileInfo& f = scan_.files[fi];
      for (const FrameInfo& fr : f.frames) {
        Entry e{{fi, fr.frameIndex}, &f, &fr, 0.0};
        const bool geometric = fr.hasPosition && fr.hasOrientation && !f.isCine;
        Group* target = nullptr;
        if (f.isCine) {
          for (auto& g : groups_)
            if (g.cineFile == static_cast<int>(fi)) target = &g;
        } else if (geometric) {
          for (auto& g : groups_)
            if (g.geometric && matches(g, f, fr)) target = &g;
        }
        if (!target) {
          Group g;
          g.first = &f;
          g.seriesUid = f.series.seriesInstanceUid;
          g.encoding = encodingKey(f);
          g.rows = f.rows;
          g.cols = f.columns;
          g.color = f.isColor();
          g.localizer = f.isLocalizer;
          g.geometric = geometric;
          g.stackId = fr.stackId;
          g.row = fr.rowCosine;
          g.col = fr.columnCosine;
          g.si = fr.spacingI;
          g.sj = fr.spacingJ;
          if (f.isCine) g.cineFile = static_cast<int>(fi);
          else if (!geometric) g.singleKey = static_cast<int>(groups_.size());
          groups_.push_back(std::move(g));
          target = &groups_.back();
        }
        target->entries.push_back(e);
      }
    }
    // Label groups of one series that had to be separated.
    std::map<std::string, std::vector<Group*>> bySeries;
    for (auto& g : groups_) bySeries[g.seriesUid].push_back(&g);
    for (auto& [uid, gs] : bySeries) {
      if (gs.size() < 2) continue;
      std::set<std::string> encodings;
      for (auto* g : gs) encodings.insert(g->encoding);
      if (encodings.size() > 1) {
        std::string all;
        for (const auto& e : encodings) all += (all.empty() ? "" : "; ") + e;
        int n = 0;
        std::map<std::string, int> number;
        for (const auto& e : encodings) number[e] = ++n;
        for (auto* g : gs) {
          g->labels.push_back("encoding " + std::to_string(number[g->encoding]));
          g->splitWarning = "the series' files store their pixels differently (" + all +
                            "): each encoding is a separate volume";
        }
      }
      std::set<std::string> planes;
      for (auto* g : gs)
        if (g->geometric) planes.insert(planeName(g->row.cross(g->col)));
      int imageNo = 0, stackNo = 0;
      for (auto* g : gs) {
        if (g->localizer) g->labels.push_back("localizer");
        if (g->geometric && !g->localizer) {
          ++stackNo;
          std::string l = planeName(g->row.cross(g->col));
          if (planes.size() < 2 || std::count_if(gs.begin(), gs.end(), [&](Group* o) {
                return o->geometric && !o->localizer && planeName(o->row.cross(o->col)) == l;
              }) > 1)
            l += " " + std::to_string(stackNo);
          g->labels.push_back(l);
        } else if (!g->geometric) {
          g->labels.push_back(g->cineFile >= 0 ? "cine " + std::to_string(++imageNo) : "image " + std::to_string(++imageNo));
        }
      }
    }
  }

  static std::string joinLabels(const std::vector<std::string>& labels) {
    std::string s;
    for (const auto& l : labels) {
      if (l.empty()) continue;
      if (!s.empty()) s += ", ";
      s += l;
    }
    return s;
  }

  void processGroup(Group& g) {
    if (g.cineFile >= 0 || !g.geometric) {
      emitFrameSequence(g);
      return;
    }
    const Vec3 normal = g.row.cross(g.col).normalized();
    for (auto& e : g.entries) e.d = e.frame->positionLps.dot(normal);
    sortAlongNormal(g.entries);
    std::vector<std::string> warnings;
    if (!g.splitWarning.empty()) warnings.push_back(g.splitWarning);
    processStack(g, g.entries, g.labels, warnings);
  }

  // A stack of frames of one orientation, possibly with shared positions.
  void processStack(const Group& g, std::vector<Entry> entries, std::vector<std::string> labels,
                    std::vector<std::string> warnings) {
    if (hasDuplicatePositions(entries)) {
      if (auto parts = trySplit(entries)) {
        for (auto& [label, part] : *parts) {
          auto l = labels;
          l.push_back(label);
          processStack(g, std::move(part), l, warnings);
        }
        return;
      }
      entries = resolveDuplicates(entries, warnings, labels, g);
      if (entries.empty()) return;  // split by occurrence already emitted
    }
    // Widely separated stacks in one series (e.g. two scan ranges) become separate volumes.
    if (entries.size() >= 3) {
      std::vector<double> gaps;
      for (std::size_t i = 1; i < entries.size(); ++i) gaps.push_back(entries[i].d - entries[i - 1].d);
      std::vector<double> sorted = gaps;
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2), sorted.end());
      const double median = sorted[sorted.size() / 2];
      std::vector<std::size_t> cuts;
      for (std::size_t i = 0; i < gaps.size(); ++i)
        if (gaps[i] > kSeparateStackGapFactor * median) cuts.push_back(i + 1);
      if (!cuts.empty()) {
        std::size_t begin = 0;
        int part = 0;
        cuts.push_back(entries.size());
        for (std::size_t c : cuts) {
          std::vector<Entry> sub(entries.begin() + static_cast<long>(begin), entries.begin() + static_cast<long>(c));
          auto l = labels;
          l.push_back("part " + std::to_string(++part));
          auto w = warnings;
          w.push_back("series has " + std::to_string(cuts.size()) +
                      " stacks separated by large gaps; each is a separate volume");
          emitStack(g, sub, l, w);
          begin = c;
        }
        return;
      }
    }
    emitStack(g, entries, labels, warnings);
  }

  std::vector<Entry> resolveDuplicates(const std::vector<Entry>& entries, std::vector<std::string>& warnings,
                                       const std::vector<std::string>& labels, const Group& g) {
    // Positions each repeated the same number of times: consecutive acquisitions without
    // distinguishing attributes. Split them by their order (instance number).
    std::vector<std::vector<Entry>> byPosition;
    for (const auto& e : entries) {
      if (byPosition.empty() || e.d - byPosition.back().back().d >= kSamePositionMm) byPosition.push_back({});
      byPosition.back().push_back(e);
    }
    const std::size_t m = byPosition.front().size();
    const bool uniform = std::all_of(byPosition.begin(), byPosition.end(), [&](auto& v) { return v.size() == m; });
    if (uniform && m > 1 && byPosition.size() > 1) {
      for (std::size_t r = 0; r < m; ++r) {
        std::vector<Entry> part;
        for (auto& pos : byPosition) part.push_back(pos[r]);
        auto l = labels;
        l.push_back("repetition " + std::to_string(r + 1));
        auto w = warnings;
        w.push_back("frames share positions without echo, time or acquisition attributes; split by instance number order");
        processStack(g, std::move(part), l, w);
      }
      return {};
    }
    std::vector<Entry> kept;
    std::size_t dropped = 0;
    for (auto& pos : byPosition) {
      kept.push_back(pos.front());
      for (std::size_t i = 1; i < pos.size(); ++i) {
        ++dropped;
        dropReason_.emplace(pos[i].ref.file, "same slice position as " + pos.front().file->path + " (duplicate ignored)");
      }
    }
    warnings.push_back(std::to_string(dropped) + " frame(s) duplicate the position of another frame and were ignored");
    return kept;
  }

  // Emits a stack with unique, sorted positions; plans a resampling when needed.
  void emitStack(const Group& g, const std::vector<Entry>& entries, const std::vector<std::string>& labels,
                 std::vector<std::string> warnings) {
    const Entry& e0 = entries.front();
    const Vec3 normal = g.row.cross(g.col).normalized();
    VolumePlan plan;
    plan.geometry.size = {g.cols, g.rows, entries.size()};
    plan.geometry.direction = Mat3::fromColumns(g.row, g.col, normal);
    plan.geometry.originLps = e0.frame->positionLps;
    const std::size_t n = entries.size();
    double dz = e0.frame->sliceThicknessMm > 0 ? e0.frame->sliceThicknessMm : 1.0;
    plan.info.stackKind = n == 1 ? StackKind::Single2D : StackKind::Spatial;

    // In-plane offset of each frame relative to the first (non-zero: gantry tilt, or a stack
    // whose positions and orientation disagree a little).
    std::vector<double> shiftI(n, 0.0), shiftJ(n, 0.0);
    double maxShiftPx = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      const Vec3 off = entries[k].frame->positionLps - e0.frame->positionLps - normal * (entries[k].d - e0.d);
      shiftI[k] = off.dot(g.row) / g.si;
      shiftJ[k] = off.dot(g.col) / g.sj;
      maxShiftPx = std::max({maxShiftPx, std::fabs(shiftI[k]), std::fabs(shiftJ[k])});
    }
    // Half a voxel of drift over the whole stack is what placing every slice on the normal
    // may cost at most; below it the slices are used as acquired, above it they are
    // resampled onto a grid that covers every acquired voxel (the bounding box of the
    // sheared stack), so nothing is cut away.
    const bool tilted = maxShiftPx >= 0.5;
    std::string shearText;
    if (maxShiftPx > 1e-3 && n >= 2) {
      const double lateral = std::hypot(shiftI[n - 1] * g.si, shiftJ[n - 1] * g.sj);
      const double angle = std::atan2(lateral, entries.back().d - e0.d) * 180.0 / M_PI;
      shearText = "slice positions shift in-plane by up to " + fmt(maxShiftPx, 2) + " voxel(s) over the stack (" +
                  fmt(angle, angle < 1.0 ? 2 : 1) + " degrees from the slice normal" +
                  (g.first->series.modality == "CT" ? ", gantry tilt" : "") + ")";
    }
    // Grid offset (whole voxels) that brings the leftmost / topmost shifted frame inside.
    const double eps = 1e-6;
    double oI = 0.0, oJ = 0.0;
    if (tilted) {
      const auto [minI, maxI] = std::minmax_element(shiftI.begin(), shiftI.end());
      const auto [minJ, maxJ] = std::minmax_element(shiftJ.begin(), shiftJ.end());
      oI = std::floor(*minI + eps);
      oJ = std::floor(*minJ + eps);
      plan.geometry.size[0] = g.cols + static_cast<std::size_t>(std::ceil(*maxI - eps) - oI);
      plan.geometry.size[1] = g.rows + static_cast<std::size_t>(std::ceil(*maxJ - eps) - oJ);
      plan.geometry.originLps = e0.frame->positionLps + g.row * (oI * g.si) + g.col * (oJ * g.sj);
      for (std::size_t k = 0; k < n; ++k) {
        shiftI[k] -= oI;
        shiftJ[k] -= oJ;
      }
    }

    std::vector<double> outD;  // output slice positions along the normal
    bool uniform = true;
    if (n >= 2) {
      const double span = entries.back().d - e0.d;
      const double s = span / static_cast<double>(n - 1);
      double maxDev = 0.0;
      for (std::size_t k = 0; k < n; ++k) maxDev = std::max(maxDev, std::fabs(entries[k].d - (e0.d + s * static_cast<double>(k))));
      uniform = maxDev <= std::max(0.01, 0.05 * s);
      dz = s;
      if (!uniform) {
        std::vector<double> gaps;
        for (std::size_t k = 1; k < n; ++k) gaps.push_back(entries[k].d - entries[k - 1].d);
        std::vector<double> sorted = gaps;
        std::sort(sorted.begin(), sorted.end());
        const double median = sorted[sorted.size() / 2];
        const std::size_t outN = static_cast<std::size_t>(std::llround(span / median)) + 1;
        dz = span / static_cast<double>(outN - 1);
        // Missing slices: every gap is (nearly) a whole multiple of the usual one.
        std::size_t missing = 0;
        bool multiples = true;
        for (double gap : gaps) {
          const double q = gap / median;
          if (std::fabs(q - std::round(q)) > 0.1) multiples = false;
          missing += static_cast<std::size_t>(std::max(0.0, std::round(q) - 1));
        }
        std::ostringstream w;
        if (multiples && missing > 0)
          w << missing << " slice(s) missing (gaps up to " << fmt(sorted.back()) << " mm where " << fmt(median)
            << " mm is usual); the gaps were filled by linear interpolation onto a regular " << fmt(dz, 3) << " mm grid";
        else
          w << "non-uniform slice spacing (" << fmt(sorted.front(), 3) << " to " << fmt(sorted.back(), 3)
            << " mm); resampled by linear interpolation onto a regular " << fmt(dz, 3) << " mm grid";
        warnings.push_back(w.str());
        for (std::size_t k = 0; k < outN; ++k) outD.push_back(e0.d + dz * static_cast<double>(k));
      }
    }
    if (tilted) {
      warnings.push_back(shearText + ": resampled onto a rectilinear " + std::to_string(plan.geometry.size[0]) + " x " +
                         std::to_string(plan.geometry.size[1]) + " grid that holds every acquired voxel (" +
                         std::to_string(g.cols) + " x " + std::to_string(g.rows) + " acquired)");
    } else if (!shearText.empty() && maxShiftPx > 0.05) {
      warnings.push_back(shearText + ": under half a voxel, slices used as acquired (not resampled)");
    }
    plan.geometry.spacingMm = {g.si, g.sj, dz > 0 ? dz : 1.0};

    if (uniform) {
      for (std::size_t k = 0; k < n; ++k) {
        SliceSource s;
        s.a = entries[k].ref;
        if (tilted) {
          s.shiftIa = shiftI[k];
          s.shiftJa = shiftJ[k];
        }
        plan.slices.push_back(s);
      }
    } else {
      plan.geometry.size[2] = outD.size();
      std::size_t j = 0;
      for (double D : outD) {
        while (j + 2 < n && entries[j + 1].d <= D) ++j;
        SliceSource s;
        const double da = entries[j].d, db = entries[j + 1].d;
        double w = (D - da) / (db - da);
        w = std::clamp(w, 0.0, 1.0);
        if (w > 1.0 - 1e-6) {  // lands on b
          s.a = entries[j + 1].ref;
          s.shiftIa = tilted ? shiftI[j + 1] : 0.0;
          s.shiftJa = tilted ? shiftJ[j + 1] : 0.0;
        } else {
          s.a = entries[j].ref;
          s.b = entries[j + 1].ref;
          s.weightB = w < 1e-6 ? 0.0 : w;
          if (tilted) {
            s.shiftIa = shiftI[j];
            s.shiftJa = shiftJ[j];
            s.shiftIb = shiftI[j + 1];
            s.shiftJb = shiftJ[j + 1];
          }
        }
        plan.slices.push_back(s);
      }
    }
    plan.sourceFrames = n;
    plan.frameColumns = g.cols;
    plan.frameRows = g.rows;
    plan.resampled = tilted || !uniform;
    finish(plan, g, entries, labels, std::move(warnings));
  }

  // Cine loops and frames without patient geometry: 2D images, in frame order.
  void emitFrameSequence(const Group& g) {
    VolumePlan plan;
    const FrameInfo& f0 = *g.entries.front().frame;
    plan.geometry.size = {g.cols, g.rows, g.entries.size()};
    plan.geometry.spacingMm = {f0.spacingI, f0.spacingJ, 1.0};
    if (f0.hasOrientation)
      plan.geometry.direction = Mat3::fromColumns(f0.rowCosine, f0.columnCosine, f0.rowCosine.cross(f0.columnCosine));
    if (f0.hasPosition) plan.geometry.originLps = f0.positionLps;
    plan.info.stackKind = g.entries.size() > 1 ? StackKind::TimeSeries2D : StackKind::Single2D;
    plan.frameColumns = g.cols;
    plan.frameRows = g.rows;
    for (const auto& e : g.entries) {
      SliceSource s;
      s.a = e.ref;
      plan.slices.push_back(s);
    }
    plan.sourceFrames = g.entries.size();
    std::vector<std::string> warnings;
    if (!g.splitWarning.empty()) warnings.push_back(g.splitWarning);
    if (!f0.hasPixelSpacing) {
      const FileInfo& f = *g.first;
      if (f0.spacingI != 1.0 || f0.spacingJ != 1.0)
        warnings.push_back("pixel spacing is the detector's (ImagerPixelSpacing), not calibrated at the patient");
      else if (f.series.modality != "OT" && f.series.modality != "SC")
        warnings.push_back("no pixel spacing in the header: 1 mm assumed, measurements are not calibrated");
    }
    if (!f0.hasPosition || !f0.hasOrientation) {
      plan.info.hasPatientGeometry = false;
      warnings.push_back("no patient position/orientation: shown in image coordinates");
    }
    finish(plan, g, g.entries, g.labels, std::move(warnings));
  }

  void finish(VolumePlan& plan, const Group& g, const std::vector<Entry>& entries,
              const std::vector<std::string>& labels, std::vector<std::string> warnings) {
    const FileInfo& f = *g.first;
    VolumeInfo& info = plan.info;
    info.patient = f.patient;
    info.study = f.study;
    info.series = f.series;
    info.splitLabel = joinLabels(labels);
    info.sopClassUid = f.sopClassUid;
    info.photometric = f.photometric;
    info.frameTimeMs = f.frameTimeMs;
    info.echoNumber = entries.front().frame->echoNumber;
    std::set<std::string> tsSeen;
    std::set<std::uint32_t> filesSeen;
    for (const auto& e : entries) {
      usedFiles_.insert(e.ref.file);
      if (filesSeen.insert(e.ref.file).second) info.files.push_back(e.file->path);
      const std::string ts = transferSyntaxName(e.file->transferSyntaxUid);
      if (tsSeen.insert(ts).second) info.transferSyntaxes.push_back(ts);
    }
    choosePixelType(plan, f, entries);
    std::set<std::string> stacking;
    for (const auto& e : entries)
      if (!e.file->stackingNote.empty() && stacking.insert(e.file->stackingNote).second) warnings.push_back(e.file->stackingNote);
    info.warnings = std::move(warnings);
    std::string why;
    if (!plan.geometry.isValid(&why)) {
      // Cannot happen for validated headers; keep the message if it does.
      info.warnings.push_back("geometry is not valid: " + why);
    }
    plans_.push_back(std::move(plan));
  }

  static void choosePixelType(VolumePlan& plan, const FileInfo& f, const std::vector<Entry>& entries) {
    VolumeInfo& info = plan.info;
    const bool ct = f.series.modality == "CT";
    if (ct && (f.rescaleType.empty() || f.rescaleType == "HU")) info.units = "HU";
    else info.units = f.rescaleType;
    if (f.isColor()) {
      plan.pixelType = PixelType::RGB8;
      return;
    }
    if (f.floatPixelData) {
      plan.pixelType = PixelType::Float32;
      info.windows = f.windows;
      return;
    }
    const bool sign = f.pixelRepresentation == 1;
    const double smin = sign ? -std::ldexp(1.0, f.bitsStored - 1) : 0.0;
    const double smax = sign ? std::ldexp(1.0, f.bitsStored - 1) - 1.0 : std::ldexp(1.0, f.bitsStored) - 1.0;
    double rmin = std::numeric_limits<double>::infinity(), rmax = -rmin;
    bool integral = true;
    for (const auto& e : entries) {
      const double a = e.frame->rescaleSlope, b = e.frame->rescaleIntercept;
      if (a != std::round(a) || b != std::round(b)) integral = false;
      rmin = std::min({rmin, a * smin + b, a * smax + b});
      rmax = std::max({rmax, a * smin + b, a * smax + b});
    }
    if (!integral || f.bitsStored > 16) plan.pixelType = PixelType::Float32;
    else if (rmin >= 0 && rmax <= 255) plan.pixelType = PixelType::UInt8;
    else if (rmin >= -32768 && rmax <= 32767) plan.pixelType = PixelType::Int16;
    else if (rmin >= 0 && rmax <= 65535) plan.pixelType = PixelType::UInt16;
    else plan.pixelType = PixelType::Int16;  // real values fit; the loader falls back to float if not

    plan.invertMonochrome = f.photometric == "MONOCHROME1";
    plan.invertSum = rmin + rmax;
    info.windows = f.windows;
    if (plan.invertMonochrome)
      for (auto& w : info.windows) w.center = plan.invertSum - w.center;
    plan.paddingValue = info.units == "HU" ? std::max(rmin, -1024.0) : std::max(rmin, -32768.0);
    if (plan.invertMonochrome) plan.paddingValue = rmin;
  }

  const ScanResult& scan_;
  std::vector<SkippedFile>* unused_;
  std::vector<Group> groups_;
  std::vector<VolumePlan> plans_;
  std::set<std::uint32_t> usedFiles_;
  std::map<std::uint32_t, std::string> dropReason_;
};

}  // namespace

std::vector<VolumePlan> planVolumes(const ScanResult& scan, std::vector<SkippedFile>* unused) {
  return Planner(scan, unused).run();
}

VolumePlan slicePlan(const VolumePlan& plan, std::size_t k) {
  VolumePlan p = plan;
  k = std::min(k, plan.slices.size() - 1);
  p.geometry.originLps = plan.geometry.ijkToLps({0.0, 0.0, static_cast<double>(k)});
  p.geometry.size[2] = 1;
  p.slices = {plan.slices[k]};
  p.sourceFrames = p.slices[0].weightB > 0 ? 2 : 1;
  return p;
}

Result<VolumeChoice> chooseVolume(const std::vector<VolumePlan>& plans, const std::string& seriesUid, int number,
                                  const std::string& input) {
  if (plans.empty()) return Error(ErrorCode::NotFound, "no image volume found", input);
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (seriesUid.empty() || plans[i].info.series.seriesInstanceUid == seriesUid) candidates.push_back(i);
  if (candidates.empty()) return Error(ErrorCode::NotFound, "no volume with series UID " + seriesUid, input);
  VolumeChoice c;
  if (number > 0) {
    if (static_cast<std::size_t>(number) > plans.size())
      return Error(ErrorCode::InvalidArgument,
                   "volume " + std::to_string(number) + " is out of range (" + std::to_string(plans.size()) + " volume(s) found)",
                   input);
    c.index = static_cast<std::size_t>(number - 1);
    if (std::find(candidates.begin(), candidates.end(), c.index) == candidates.end())
      return Error(ErrorCode::InvalidArgument, "volume " + std::to_string(number) + " is not in series " + seriesUid, input);
  } else {
    c.index = candidates.front();
    for (std::size_t i : candidates)
      if (plans[i].geometry.size[2] > plans[c.index].geometry.size[2]) c.index = i;
  }
  for (std::size_t i : candidates)
    if (i != c.index) c.others.push_back(i);
  return c;
}

}  // namespace lumen::dicom
