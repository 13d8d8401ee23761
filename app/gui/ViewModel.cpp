#include "ViewModel.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace lumen::gui {

namespace {
// Range and robust percentiles of voxels [first, last) of `v`, taking every `stride`th.
void statisticsOf(LoadedSeries& s, const Volume& v, std::size_t first, std::size_t last) {
  const std::size_t n = last - first;
  if (n == 0) return;
  const std::size_t stride = std::max<std::size_t>(1, n / 2000000);
  std::vector<float> sample;
  sample.reserve(n / stride + 1);
  double lo = INFINITY, hi = -INFINITY;
  visitPixelType(v.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* d = v.data<T>();
    for (std::size_t i = first; i < last; i += stride) {
      double x;
      if constexpr (std::is_same_v<T, Rgb8>) x = 0.299 * d[i].r + 0.587 * d[i].g + 0.114 * d[i].b;
      else x = static_cast<double>(d[i]);
      if (!std::isfinite(x)) continue;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sample.push_back(static_cast<float>(x));
    }
  });
  if (sample.empty()) return;
  s.minValue = lo;
  s.maxValue = hi;
  // Background (air around a CT, padding, the black border of an X-ray) is the minimum
  // filling much of the image: percentiles over it would put the window in the air.
  const auto atMin = static_cast<std::size_t>(std::count(sample.begin(), sample.end(), static_cast<float>(lo)));
  if (atMin > sample.size() / 5 && atMin < sample.size())
    sample.erase(std::remove(sample.begin(), sample.end(), static_cast<float>(lo)), sample.end());
  auto pct = [&](double q) {
    auto it = sample.begin() + static_cast<long>(q * static_cast<double>(sample.size() - 1));
    std::nth_element(sample.begin(), it, sample.end());
    return static_cast<double>(*it);
  };
  s.lowPercentile = pct(0.005);
  s.highPercentile = pct(0.995);
  s.hasStatistics = true;
}
}  // namespace

void computeStatistics(LoadedSeries& s) {
  if (!s.volume || s.volume->empty()) return;
  statisticsOf(s, *s.volume, 0, s.volume->voxelCount());
}

void computeSliceStatistics(LoadedSeries& s, std::size_t k) {
  if (!s.volume || s.volume->empty() || k >= s.volume->size()[2]) return;
  const std::size_t n = s.volume->geometry().sliceVoxelCount();
  statisticsOf(s, *s.volume, k * n, (k + 1) * n);
}

const char* toString(Plane p) {
  switch (p) {
    case Plane::Axial: return "Axial";
    case Plane::Coronal: return "Coronal";
    case Plane::Sagittal: return "Sagittal";
    case Plane::Native: return "Native";
  }
  return "?";
}

PlaneAxes nativeAxes(const ImageGeometry& g) {
  const Vec3 c0 = g.direction.column(0).normalized();
  const Vec3 c1 = g.direction.column(1).normalized();
  const Vec3 n = c0.cross(c1);
  const double ax = std::fabs(n.x), ay = std::fabs(n.y), az = std::fabs(n.z);
  const Plane nearest = az >= ax && az >= ay ? Plane::Axial : ay >= ax ? Plane::Coronal : Plane::Sagittal;
  const PlaneAxes want = planeAxes(nearest);
  // Right: the in-plane axis (either sign) closest to the convention's right; up: the other.
  const bool rowsRight = std::fabs(c0.dot(want.right)) >= std::fabs(c1.dot(want.right));
  Vec3 right = rowsRight ? c0 : c1;
  Vec3 up = rowsRight ? c1 : c0;
  if (right.dot(want.right) < 0) right = -right;
  if (up.dot(want.up) < 0) up = -up;
  return {up.cross(right), right, up};
}

std::string planeName(const Vec3& n) {
  const double ax = std::fabs(n.x), ay = std::fabs(n.y), az = std::fabs(n.z);
  const double mx = std::max({ax, ay, az});
  if (mx < std::cos(10.0 * M_PI / 180.0)) return "Oblique";
  if (az == mx) return "Axial";
  if (ay == mx) return "Coronal";
  return "Sagittal";
}

PlaneAxes planeAxes(Plane p, const Mat3& frame) {
  const Vec3 L = frame.column(0), P = frame.column(1), S = frame.column(2);
  switch (p) {
    case Plane::Axial: return {S, L, -P};
    case Plane::Coronal: return {P, L, S};
    case Plane::Sagittal: return {-L, P, S};
    case Plane::Native: break;
  }
  return {S, L, -P};
}

std::string orientationLabel(const Vec3& v) {
  struct C {
    double mag;
    char letter;
  };
  std::array<C, 3> c = {C{std::fabs(v.x), v.x >= 0 ? 'L' : 'R'}, C{std::fabs(v.y), v.y >= 0 ? 'P' : 'A'},
                        C{std::fabs(v.z), v.z >= 0 ? 'S' : 'I'}};
  std::sort(c.begin(), c.end(), [](const C& a, const C& b) { return a.mag > b.mag; });
  const double n = v.norm();
  std::string out;
  for (const auto& e : c)
    if (n > 0 && e.mag / n > 0.26) out += e.letter;  // sin(15 deg) ~ 0.26
  return out.empty() ? "?" : out;
}

std::array<std::string, 4> edgeLabels(const PlaneAxes& a) {
  return {orientationLabel(-a.right), orientationLabel(a.right), orientationLabel(a.up), orientationLabel(-a.up)};
}

// ---------------------------------------------------------------------------------------

void SliceNavigator::reset(const ImageGeometry& g, const PlaneAxes& axes) {
  geometry_ = g;
  axes_ = axes;
  focal_ = g.centerLps();
  updateExtent();
  setSliceIndex(count_ / 2);
}

void SliceNavigator::setAxes(const PlaneAxes& axes) {
  axes_ = axes;
  updateExtent();
  setFocal(focal_);
}

void SliceNavigator::updateExtent() {
  const Vec3& n = axes_.normal;
  // Voxel size along the normal: the spacing of the axis it follows, else the finest.
  step_ = std::min({geometry_.spacingMm.x, geometry_.spacingMm.y, geometry_.spacingMm.z});
  for (int c = 0; c < 3; ++c)
    if (std::fabs(std::fabs(n.dot(geometry_.direction.column(c))) - 1.0) < 1e-3 && geometry_.size[c] > 1)
      step_ = geometry_.spacingMm[c];
  double lo = INFINITY, hi = -INFINITY;
  for (int corner = 0; corner < 8; ++corner) {
    Vec3 ijk;
    for (int a = 0; a < 3; ++a) ijk[a] = (corner >> a) & 1 ? static_cast<double>(geometry_.size[a]) - 1.0 : 0.0;
    const double d = geometry_.ijkToLps(ijk).dot(n);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  lo_ = lo;
  count_ = std::max(1, static_cast<int>(std::floor((hi - lo) / step_ + 0.5)) + 1);
}

int SliceNavigator::sliceIndex() const {
  const int k = static_cast<int>(std::lround((focal_.dot(axes_.normal) - lo_) / step_));
  return std::clamp(k, 0, count_ - 1);
}

void SliceNavigator::setSliceIndex(int k) {
  k = std::clamp(k, 0, count_ - 1);
  const double target = lo_ + step_ * k;
  focal_ += axes_.normal * (target - focal_.dot(axes_.normal));
}

void SliceNavigator::scroll(int steps) { setSliceIndex(sliceIndex() + steps); }

void SliceNavigator::setFocal(const Vec3& lps) {
  focal_ = lps;
  setSliceIndex(sliceIndex());
}

// ---------------------------------------------------------------------------------------

const std::vector<WindowPresetDef>& ctWindowPresets() {
  static const std::vector<WindowPresetDef> p = {
      {"Brain", {40, 80}, "1"},          {"Subdural", {75, 215}, "2"}, {"Stroke", {40, 40}, "3"},
      {"Lung", {-600, 1500}, "4"},       {"Mediastinum", {50, 350}, "5"}, {"Abdomen", {40, 400}, "6"},
      {"Liver", {60, 160}, "7"},         {"Bone", {400, 1800}, "8"},
  };
  return p;
}

bool findWindowPreset(const std::string& name, WindowLevel& out) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& p : ctWindowPresets())
    if (lower(p.name) == lower(name)) {
      out = p.wl;
      return true;
    }
  return false;
}

WindowLevel automaticWindow(const LoadedSeries& s) {
  if (s.isColor()) return {127.5, 255.0};
  const double lo = s.lowPercentile, hi = s.highPercentile;
  if (s.hasStatistics && hi > lo) return {(lo + hi) / 2.0, hi - lo};
  if (s.hasStatistics && s.maxValue > s.minValue) return {(s.minValue + s.maxValue) / 2.0, s.maxValue - s.minValue};
  return {(s.minValue + s.maxValue) / 2.0, std::max(1.0, s.maxValue - s.minValue)};
}

WindowLevel defaultWindow(const LoadedSeries& s) {
  if (s.isColor()) return {127.5, 255.0};
  // The header's window, unless it is degenerate or misses the data entirely (a window
  // written for other units, or W 1 / L 0 placeholders).
  for (const auto& w : s.info.windows) {
    if (!(w.width > 1.0) || !std::isfinite(w.center)) continue;
    if (s.hasStatistics && (w.center + w.width / 2 <= s.lowPercentile || w.center - w.width / 2 >= s.highPercentile)) continue;
    return {w.center, w.width};
  }
  // The CT soft-tissue preset, when the data reach into it (a CT in HU usually does; a
  // phantom or a derived map in other values may not).
  const WindowLevel ct{40, 400};
  if (s.isCt() && s.info.units == "HU" &&
      (!s.hasStatistics || (s.lowPercentile < ct.center + ct.width / 2 && s.highPercentile > ct.center - ct.width / 2)))
    return ct;
  return automaticWindow(s);
}

namespace {
std::string formatDate(const std::string& d) {
  if (d.size() == 8 && std::all_of(d.begin(), d.end(), ::isdigit)) return d.substr(0, 4) + "-" + d.substr(4, 2) + "-" + d.substr(6, 2);
  return d;
}
std::string formatName(const std::string& pn) {
  std::string s = pn.substr(0, pn.find('='));  // alphabetic group only
  std::string out;
  std::size_t part = 0;
  for (char c : s) {
    if (c == '^') {
      ++part;
      if (part == 1) out += ", ";
      else out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ',')) out.pop_back();
  return out;
}
std::string num(double v, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}
}  // namespace

CornerText cornerText(const AnnotationInput& in) {
  CornerText t;
  if (!in.series) return t;
  const VolumeInfo& info = in.series->info;
  std::ostringstream tl, tr, bl, br;
  if (!in.hidePatient) {
    tl << (info.patient.name.empty() ? "(no name)" : formatName(info.patient.name)) << "\n";
    if (!info.patient.patientId.empty()) tl << "ID " << info.patient.patientId << "\n";
    if (!info.patient.birthDate.empty() || !info.patient.sex.empty())
      tl << formatDate(info.patient.birthDate) << (info.patient.sex.empty() ? "" : " " + info.patient.sex) << "\n";
  }
  tl << formatDate(info.study.date) << "\n" << info.study.description;
  tr << info.series.modality << "  Se " << info.series.seriesNumber << "\n" << info.series.description;
  if (!info.splitLabel.empty()) tr << "\n[" << info.splitLabel << "]";
  if (!in.viewName.empty()) bl << in.viewName << "  ";
  bl << "Im " << (in.sliceIndex + 1) << "/" << in.sliceCount << "  " << num(in.positionMm, 1) << " mm";
  if (!in.slabText.empty()) bl << "\n" << in.slabText;
  if (!in.probe.empty()) bl << "\n" << in.probe;
  br << "W " << num(in.wl.width, 0) << "  L " << num(in.wl.center, 0) << "\nZoom " << num(in.zoomPercent, 0) << "%";
  t.topLeft = tl.str();
  t.topRight = tr.str();
  t.bottomLeft = bl.str();
  t.bottomRight = br.str();
  return t;
}

std::string probeText(const LoadedSeries& s, const Vec3& lps) {
  if (!s.volume) return {};
  const ImageGeometry& g = s.volume->geometry();
  const Vec3 ijk = g.lpsToIjk(lps);
  long idx[3];
  for (int a = 0; a < 3; ++a) {
    idx[a] = std::lround(ijk[a]);
    if (idx[a] < 0 || idx[a] >= static_cast<long>(g.size[a])) return {};
  }
  std::ostringstream out;
  const auto i = static_cast<std::size_t>(idx[0]), j = static_cast<std::size_t>(idx[1]), k = static_cast<std::size_t>(idx[2]);
  if (s.isColor()) {
    const Rgb8 c = s.volume->data<Rgb8>()[s.volume->linearIndex(i, j, k)];
    out << "RGB " << int(c.r) << "," << int(c.g) << "," << int(c.b);
  } else {
    const double v = s.volume->scalarAt(i, j, k);
    out << (s.info.units.empty() ? "Value" : s.info.units) << " "
        << (s.volume->pixelType() == PixelType::Float32 ? num(v, 2) : num(v, 0));
  }
  out << "  (" << num(lps.x, 1) << ", " << num(lps.y, 1) << ", " << num(lps.z, 1) << ") mm";
  return out.str();
}

Rgb8 labelColor(int value) { return defaultLabelColor(value); }

Result<LabelOverlay> makeLabelOverlay(std::shared_ptr<Volume> labels, std::string source) {
  if (!labels || labels->empty()) return Error(ErrorCode::InvalidArgument, "empty label map", source);
  if (labels->pixelType() == PixelType::RGB8)
    return Error(ErrorCode::Unsupported, "a colour image is not a label map", source);
  std::vector<char> seen(65536, 0);
  bool nonInteger = false;
  visitScalarType(labels->pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* d = labels->data<T>();
    for (std::size_t i = 0; i < labels->voxelCount(); ++i) {
      const double v = static_cast<double>(d[i]);
      if (v != std::floor(v) || v < 0 || v > 65535) {
        nonInteger = true;
        return;
      }
      seen[static_cast<std::size_t>(v)] = 1;
    }
  });
  if (nonInteger)
    return Error(ErrorCode::Unsupported, "not a label map (values must be whole numbers from 0 to 65535)", source);
  LabelOverlay o;
  o.labels = std::move(labels);
  o.source = std::move(source);
  for (int v = 1; v < 65536; ++v) {
    if (!seen[static_cast<std::size_t>(v)]) continue;
    if (o.entries.size() >= 1000) return Error(ErrorCode::Unsupported, "more than 1000 labels", o.source);
    o.entries.push_back({v, "Label " + std::to_string(v), labelColor(v), true, {}, {}, 1.0});
  }
  return o;
}

LabelInfo toLabelInfo(const LabelEntry& e) {
  LabelInfo i;
  i.value = e.value;
  i.name = e.name;
  i.color = e.color;
  i.visible = e.visible;
  i.category = e.category;
  i.type = e.type;
  i.opacity = e.opacity;
  return i;
}

std::vector<LabelInfo> labelInfosOf(const LabelOverlay& o) {
  std::vector<LabelInfo> out;
  for (const auto& e : o.entries) out.push_back(toLabelInfo(e));
  return out;
}

void applyLabelInfos(LabelOverlay& o, const std::vector<LabelInfo>& infos) {
  for (const auto& info : infos) {
    auto it = std::find_if(o.entries.begin(), o.entries.end(), [&](const LabelEntry& e) { return e.value == info.value; });
    if (it == o.entries.end()) {
      o.entries.push_back({info.value, {}, {}, true, {}, {}, 1.0});
      it = o.entries.end() - 1;
    }
    it->name = info.name;
    it->color = info.color;
    it->visible = info.visible;
    it->category = info.category;
    it->type = info.type;
    it->opacity = info.opacity;
  }
  std::sort(o.entries.begin(), o.entries.end(), [](const LabelEntry& a, const LabelEntry& b) { return a.value < b.value; });
}

double niceScaleLength(double maxMm) {
  if (!(maxMm > 0)) return 0;
  const double p = std::pow(10.0, std::floor(std::log10(maxMm)));
  for (double m : {5.0, 2.0, 1.0})
    if (m * p <= maxMm) return m * p;
  return p;
}

}  // namespace lumen::gui
