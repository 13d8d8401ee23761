#include "lumen/core/LabelEditor.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace lumen {

namespace {

using Index = std::array<long, 3>;

// Value of the image at a linear index, whatever its scalar type.
template <class T>
double at(const Volume& v, std::size_t i) {
  return static_cast<double>(v.data<T>()[i]);
}

bool sameSize(const Volume& a, const Volume& b) { return a.size() == b.size(); }

// Index box holding an LPS box centre +/- r.
IndexBox boxAround(const ImageGeometry& g, const Vec3& c, double r) {
  IndexBox b;
  double lo[3] = {1e300, 1e300, 1e300}, hi[3] = {-1e300, -1e300, -1e300};
  for (int n = 0; n < 8; ++n) {
    const Vec3 p = c + Vec3{(n & 1) ? r : -r, (n & 2) ? r : -r, (n & 4) ? r : -r};
    const Vec3 ijk = g.lpsToIjk(p);
    for (std::size_t a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], ijk[a]);
      hi[a] = std::max(hi[a], ijk[a]);
    }
  }
  for (std::size_t a = 0; a < 3; ++a) {
    b.lo[a] = static_cast<long>(std::floor(lo[a]));
    b.hi[a] = static_cast<long>(std::ceil(hi[a]));
  }
  return b.intersected(IndexBox::of(g));
}

}  // namespace

Rgb8 defaultLabelColor(int value) {
  // First ones like common anatomy tables.
  static const Rgb8 palette[] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},  {245, 130, 48},
                                 {145, 30, 180}, {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 212},
                                 {0, 128, 128},  {220, 190, 255}, {170, 110, 40}, {255, 250, 200}, {128, 0, 0},
                                 {170, 255, 195}, {128, 128, 0}, {255, 215, 180}, {0, 0, 128},   {128, 128, 128}};
  constexpr int n = sizeof(palette) / sizeof(palette[0]);
  if (value <= 0) return {0, 0, 0};
  return palette[(value - 1) % n];
}

const std::vector<std::pair<CodedConcept, CodedConcept>>& commonLabelCodes() {
  static const CodedConcept tissue{"85756007", "SCT", "Tissue"};
  static const CodedConcept anatomy{"91723000", "SCT", "Anatomical Structure"};
  static const CodedConcept abnormal{"49755003", "SCT", "Morphologically Abnormal Structure"};
  static const std::vector<std::pair<CodedConcept, CodedConcept>> codes = {
      {anatomy, {"12738006", "SCT", "Brain"}},    {anatomy, {"10200004", "SCT", "Liver"}},
      {anatomy, {"39607008", "SCT", "Lung"}},     {anatomy, {"64033007", "SCT", "Kidney"}},
      {anatomy, {"78961009", "SCT", "Spleen"}},   {anatomy, {"80891009", "SCT", "Heart"}},
      {tissue, {"3138006", "SCT", "Bone"}},       {tissue, {"55603005", "SCT", "Fat"}},
      {tissue, {"59820001", "SCT", "Blood vessel"}}, {tissue, {"51114001", "SCT", "Artery"}},
      {abnormal, {"52988006", "SCT", "Lesion"}},  {abnormal, {"4147007", "SCT", "Mass"}},
      {abnormal, {"108369006", "SCT", "Neoplasm"}}, {abnormal, {"27925004", "SCT", "Nodule"}},
  };
  return codes;
}

std::size_t IndexBox::voxels() const {
  if (empty()) return 0;
  return static_cast<std::size_t>(hi[0] - lo[0] + 1) * static_cast<std::size_t>(hi[1] - lo[1] + 1) *
         static_cast<std::size_t>(hi[2] - lo[2] + 1);
}

IndexBox IndexBox::of(const ImageGeometry& g) {
  IndexBox b;
  for (std::size_t a = 0; a < 3; ++a) b.hi[a] = static_cast<long>(g.size[a]) - 1;
  return b;
}

IndexBox IndexBox::intersected(const IndexBox& o) const {
  IndexBox r;
  for (std::size_t a = 0; a < 3; ++a) {
    r.lo[a] = std::max(lo[a], o.lo[a]);
    r.hi[a] = std::min(hi[a], o.hi[a]);
  }
  return r;
}

void IndexBox::include(const IndexBox& o) {
  if (o.empty()) return;
  if (empty()) {
    *this = o;
    return;
  }
  for (std::size_t a = 0; a < 3; ++a) {
    lo[a] = std::min(lo[a], o.lo[a]);
    hi[a] = std::max(hi[a], o.hi[a]);
  }
}

void connectedRegion(const Volume& image, const std::array<long, 3>& seed, IntensityRange range,
                     std::vector<std::uint8_t>& mask, IndexBox& box) {
  mask.assign(image.voxelCount(), 0);
  box = IndexBox{};
  if (image.empty() || image.pixelType() == PixelType::RGB8) return;
  const auto& s = image.size();
  const long nx = static_cast<long>(s[0]), ny = static_cast<long>(s[1]), nz = static_cast<long>(s[2]);
  for (std::size_t a = 0; a < 3; ++a)
    if (seed[a] < 0 || seed[a] >= static_cast<long>(s[a])) return;
  visitScalarType(image.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* d = image.template data<T>();
    auto in = [&](std::size_t i) { return !mask[i] && range.contains(static_cast<double>(d[i])); };
    auto index = [&](long x, long y, long z) {
      return static_cast<std::size_t>(x) + static_cast<std::size_t>(nx) * (static_cast<std::size_t>(y) + static_cast<std::size_t>(ny) * static_cast<std::size_t>(z));
    };
    if (!in(index(seed[0], seed[1], seed[2]))) return;
    long lo[3] = {seed[0], seed[1], seed[2]}, hi[3] = {seed[0], seed[1], seed[2]};
    struct Run {
      long x, y, z;
    };
    std::vector<Run> stack{{seed[0], seed[1], seed[2]}};
    while (!stack.empty()) {
      const Run r = stack.back();
      stack.pop_back();
      const std::size_t row = index(0, r.y, r.z);
      if (!in(row + static_cast<std::size_t>(r.x))) continue;
      // The whole run along x through this voxel.
      long x0 = r.x, x1 = r.x;
      while (x0 > 0 && in(row + static_cast<std::size_t>(x0 - 1))) --x0;
      while (x1 < nx - 1 && in(row + static_cast<std::size_t>(x1 + 1))) ++x1;
      std::fill(mask.begin() + static_cast<std::ptrdiff_t>(row + static_cast<std::size_t>(x0)),
                mask.begin() + static_cast<std::ptrdiff_t>(row + static_cast<std::size_t>(x1) + 1), std::uint8_t{1});
      lo[0] = std::min(lo[0], x0);
      hi[0] = std::max(hi[0], x1);
      lo[1] = std::min(lo[1], r.y);
      hi[1] = std::max(hi[1], r.y);
      lo[2] = std::min(lo[2], r.z);
      hi[2] = std::max(hi[2], r.z);
      // One seed per stretch of growable voxels in each face-neighbouring row.
      const long rows[4][2] = {{r.y - 1, r.z}, {r.y + 1, r.z}, {r.y, r.z - 1}, {r.y, r.z + 1}};
      for (const auto& nb : rows) {
        if (nb[0] < 0 || nb[0] >= ny || nb[1] < 0 || nb[1] >= nz) continue;
        const std::size_t nrow = index(0, nb[0], nb[1]);
        bool open = false;
        for (long x = x0; x <= x1; ++x) {
          const bool g = in(nrow + static_cast<std::size_t>(x));
          if (g && !open) stack.push_back({x, nb[0], nb[1]});
          open = g;
        }
      }
    }
    for (std::size_t a = 0; a < 3; ++a) {
      box.lo[a] = lo[a];
      box.hi[a] = hi[a];
    }
  });
}

std::vector<LabelMeasures> measureLabels(const Volume& labels, const Volume* image) {
  std::vector<LabelMeasures> out;
  if (labels.empty() || labels.pixelType() != PixelType::UInt8) return out;
  if (image && (image->pixelType() == PixelType::RGB8 || !sameSize(labels, *image))) image = nullptr;
  const auto& g = labels.geometry();
  const long nx = static_cast<long>(g.size[0]), ny = static_cast<long>(g.size[1]), nz = static_cast<long>(g.size[2]);
  const double face[3] = {g.spacingMm.y * g.spacingMm.z, g.spacingMm.x * g.spacingMm.z, g.spacingMm.x * g.spacingMm.y};
  std::array<std::size_t, 256> count{};
  std::array<double, 256> sum{}, sum2{}, surface{};
  const std::uint8_t* d = labels.data<std::uint8_t>();
  auto pass = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* img = image ? image->template data<T>() : nullptr;
    std::size_t i = 0;
    for (long z = 0; z < nz; ++z)
      for (long y = 0; y < ny; ++y)
        for (long x = 0; x < nx; ++x, ++i) {
          const std::uint8_t l = d[i];
          if (l == 0) continue;
          ++count[l];
          if (img) {
            const double v = static_cast<double>(img[i]);
            sum[l] += v;
            sum2[l] += v * v;
          }
          // A face is surface where the neighbour is another value or off the grid.
          surface[l] += ((x == 0 || d[i - 1] != l) + (x == nx - 1 || d[i + 1] != l)) * face[0];
          surface[l] += ((y == 0 || d[i - static_cast<std::size_t>(nx)] != l) +
                         (y == ny - 1 || d[i + static_cast<std::size_t>(nx)] != l)) *
                        face[1];
          const std::size_t slice = static_cast<std::size_t>(nx * ny);
          surface[l] += ((z == 0 || d[i - slice] != l) + (z == nz - 1 || d[i + slice] != l)) * face[2];
        }
  };
  if (image) visitScalarType(image->pixelType(), pass);
  else pass(TypeTag<std::uint8_t>{});
  const double voxelMl = g.spacingMm.x * g.spacingMm.y * g.spacingMm.z / 1000.0;
  for (int l = 1; l < 256; ++l) {
    const std::size_t n = count[static_cast<std::size_t>(l)];
    if (n == 0) continue;
    LabelMeasures m;
    m.label = l;
    m.voxels = n;
    m.volumeMl = static_cast<double>(n) * voxelMl;
    m.surfaceMm2 = surface[static_cast<std::size_t>(l)];
    if (image) {
      const double s = sum[static_cast<std::size_t>(l)], s2 = sum2[static_cast<std::size_t>(l)];
      const double dn = static_cast<double>(n);
      m.mean = s / dn;
      m.sd = n > 1 ? std::sqrt(std::max(0.0, (s2 - s * s / dn) / (dn - 1))) : 0.0;
    }
    out.push_back(m);
  }
  return out;
}

// ---- LabelEditor ------------------------------------------------------------------------

LabelEditor::LabelEditor(std::shared_ptr<Volume> labels, std::size_t maxUndoBytes)
    : labels_(std::move(labels)), maxBytes_(maxUndoBytes) {
  for (std::size_t a = 0; a < 3; ++a) blocks_[a] = (static_cast<long>(labels_->size()[a]) + kBlock - 1) / kBlock;
}

Result<std::shared_ptr<Volume>> LabelEditor::emptyLabelsFor(const Volume& image) {
  auto v = Volume::zeros(PixelType::UInt8, image.geometry());
  if (!v) return v.error();
  return std::make_shared<Volume>(std::move(*v));
}

Result<std::shared_ptr<Volume>> LabelEditor::toEditable(const Volume& labels) {
  if (labels.pixelType() == PixelType::RGB8) return Error(ErrorCode::Unsupported, "a colour image is not a label map");
  auto v = Volume::allocate(PixelType::UInt8, labels.geometry());
  if (!v) return v.error();
  std::uint8_t* out = v->data<std::uint8_t>();
  bool ok = true;
  visitScalarType(labels.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = labels.template data<T>();
    for (std::size_t i = 0; i < labels.voxelCount(); ++i) {
      const double x = static_cast<double>(in[i]);
      if (!(x >= 0 && x <= 255 && x == std::floor(x))) {
        ok = false;
        return;
      }
      out[i] = static_cast<std::uint8_t>(x);
    }
  });
  if (!ok) return Error(ErrorCode::Unsupported, "labels are edited as integers 0 to 255; this map holds other values");
  return std::make_shared<Volume>(std::move(*v));
}

IndexBox LabelEditor::blockBox(std::size_t index) const {
  const long bx = static_cast<long>(index % static_cast<std::size_t>(blocks_[0]));
  const long by = static_cast<long>((index / static_cast<std::size_t>(blocks_[0])) % static_cast<std::size_t>(blocks_[1]));
  const long bz = static_cast<long>(index / static_cast<std::size_t>(blocks_[0] * blocks_[1]));
  IndexBox b;
  b.lo = {bx * kBlock, by * kBlock, bz * kBlock};
  b.hi = {bx * kBlock + kBlock - 1, by * kBlock + kBlock - 1, bz * kBlock + kBlock - 1};
  return b.intersected(IndexBox::of(labels_->geometry()));
}

// Run-length code: (value, run - 1) pairs, runs of at most 256, in x-fastest order.
std::vector<std::uint8_t> LabelEditor::encodeBlock(std::size_t index) const {
  const IndexBox b = blockBox(index);
  const std::uint8_t* d = labels_->data<std::uint8_t>();
  std::vector<std::uint8_t> out;
  int run = 0;
  std::uint8_t cur = 0;
  for (long z = b.lo[2]; z <= b.hi[2]; ++z)
    for (long y = b.lo[1]; y <= b.hi[1]; ++y) {
      const std::uint8_t* row =
          d + labels_->linearIndex(static_cast<std::size_t>(b.lo[0]), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
      for (long x = 0; x <= b.hi[0] - b.lo[0]; ++x) {
        const std::uint8_t v = row[x];
        if (run > 0 && (v != cur || run == 256)) {
          out.push_back(cur);
          out.push_back(static_cast<std::uint8_t>(run - 1));
          run = 0;
        }
        cur = v;
        ++run;
      }
    }
  if (run > 0) {
    out.push_back(cur);
    out.push_back(static_cast<std::uint8_t>(run - 1));
  }
  out.shrink_to_fit();
  return out;
}

void LabelEditor::decodeBlock(std::size_t index, const std::vector<std::uint8_t>& rle) {
  const IndexBox b = blockBox(index);
  std::uint8_t* d = labels_->data<std::uint8_t>();
  std::size_t pos = 0;
  int left = 0;
  std::uint8_t cur = 0;
  for (long z = b.lo[2]; z <= b.hi[2]; ++z)
    for (long y = b.lo[1]; y <= b.hi[1]; ++y) {
      std::uint8_t* row =
          d + labels_->linearIndex(static_cast<std::size_t>(b.lo[0]), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
      for (long x = 0; x <= b.hi[0] - b.lo[0]; ++x) {
        if (left == 0) {
          cur = rle[pos];
          left = rle[pos + 1] + 1;
          pos += 2;
        }
        row[x] = cur;
        --left;
      }
    }
}

void LabelEditor::beginStep(std::string name) {
  if (open_) return;
  open_ = std::make_unique<OpenStep>();
  open_->name = std::move(name);
}

void LabelEditor::touch(const IndexBox& box) {
  const IndexBox b = box.intersected(IndexBox::of(labels_->geometry()));
  if (b.empty() || !open_) return;
  for (long bz = b.lo[2] / kBlock; bz <= b.hi[2] / kBlock; ++bz)
    for (long by = b.lo[1] / kBlock; by <= b.hi[1] / kBlock; ++by)
      for (long bx = b.lo[0] / kBlock; bx <= b.hi[0] / kBlock; ++bx) {
        const auto index = static_cast<std::size_t>(bx + blocks_[0] * (by + blocks_[1] * bz));
        if (!open_->before.count(index)) open_->before.emplace(index, encodeBlock(index));
      }
}

LabelEditor::Change LabelEditor::endStep() {
  Change change;
  if (!open_) return change;
  Step step;
  step.name = open_->name;
  std::vector<std::uint8_t> scratch;
  const std::uint8_t* d = labels_->data<std::uint8_t>();
  for (auto& [index, before] : open_->before) {
    std::vector<std::uint8_t> after = encodeBlock(index);
    if (after == before) continue;
    // Count the voxels that differ: decode `before` run by run against the block.
    const IndexBox b = blockBox(index);
    std::size_t pos = 0;
    int left = 0;
    std::uint8_t cur = 0;
    for (long z = b.lo[2]; z <= b.hi[2]; ++z)
      for (long y = b.lo[1]; y <= b.hi[1]; ++y) {
        const std::uint8_t* row = d + labels_->linearIndex(static_cast<std::size_t>(b.lo[0]), static_cast<std::size_t>(y),
                                                           static_cast<std::size_t>(z));
        for (long x = 0; x <= b.hi[0] - b.lo[0]; ++x) {
          if (left == 0) {
            cur = before[pos];
            left = before[pos + 1] + 1;
            pos += 2;
          }
          change.voxels += row[x] != cur;
          --left;
        }
      }
    change.box.include(b);
    step.bytes += before.size() + after.size() + sizeof(BlockRecord);
    step.blocks.push_back({index, std::move(before), std::move(after)});
  }
  open_.reset();
  if (step.blocks.empty()) return change;
  for (auto& s : redo_) bytes_ -= s.bytes;
  redo_.clear();
  bytes_ += step.bytes;
  undo_.push_back(std::move(step));
  ++revision_;
  trim();
  return change;
}

void LabelEditor::trim() {
  while (bytes_ > maxBytes_ && undo_.size() > 1) {
    bytes_ -= undo_.front().bytes;
    undo_.erase(undo_.begin());
  }
}

LabelEditor::Change LabelEditor::apply(Step& step, bool forward) {
  Change change;
  for (const auto& r : step.blocks) {
    decodeBlock(r.index, forward ? r.after : r.before);
    change.box.include(blockBox(r.index));
  }
  ++revision_;
  return change;
}

LabelEditor::Change LabelEditor::step(std::vector<Step>& from, std::vector<Step>& to, bool forward) {
  if (from.empty() || open_) return {};
  Change c = apply(from.back(), forward);
  to.push_back(std::move(from.back()));
  from.pop_back();
  return c;
}

LabelEditor::Change LabelEditor::undo() { return step(undo_, redo_, false); }

LabelEditor::Change LabelEditor::redo() { return step(redo_, undo_, true); }

bool LabelEditor::implicitBegin(const char* name) {
  if (open_) return false;
  beginStep(name);
  return true;
}

LabelEditor::Change LabelEditor::implicitEnd(bool began) {
  if (began) return endStep();
  return {};
}

LabelEditor::Change LabelEditor::edit(const std::string& name, const IndexBox& box, const std::function<void(Volume&)>& fn) {
  const bool began = implicitBegin(name.c_str());
  touch(box);
  fn(*labels_);
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::paint(const Brush& brush, const Vec3& c, int label, const Volume* image,
                                       IntensityRange range, bool overwrite) {
  if (label < 0 || label > 255) return {};
  if (image && (image->pixelType() == PixelType::RGB8 || !sameSize(*image, *labels_))) image = nullptr;
  const ImageGeometry& g = labels_->geometry();
  const double r = brush.diameterMm / 2.0, r2 = r * r;
  const IndexBox box = boxAround(g, c, r);
  const bool began = implicitBegin(label == 0 ? "Erase" : "Paint");
  touch(box);
  std::uint8_t* d = labels_->data<std::uint8_t>();
  const Mat3 m = g.indexToPhysical();
  const Vec3 n = brush.normal.normalized();
  const double halfT = brush.thicknessMm / 2.0;
  const auto value = static_cast<std::uint8_t>(label);
  auto loop = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* img = image ? image->template data<T>() : nullptr;
    for (long z = box.lo[2]; z <= box.hi[2]; ++z)
      for (long y = box.lo[1]; y <= box.hi[1]; ++y) {
        const Vec3 rowStart = g.ijkToLps({static_cast<double>(box.lo[0]), static_cast<double>(y), static_cast<double>(z)});
        const Vec3 step = m.column(0);
        std::size_t i = labels_->linearIndex(static_cast<std::size_t>(box.lo[0]), static_cast<std::size_t>(y),
                                             static_cast<std::size_t>(z));
        Vec3 p = rowStart;
        for (long x = box.lo[0]; x <= box.hi[0]; ++x, ++i, p += step) {
          const Vec3 dv = p - c;
          const double dd = dv.dot(dv);
          if (brush.sphere) {
            if (dd > r2) continue;
          } else {
            const double dn = dv.dot(n);
            if (std::fabs(dn) > halfT || dd - dn * dn > r2) continue;
          }
          if (!overwrite && d[i] != 0 && d[i] != value) continue;
          if (img && !range.contains(static_cast<double>(img[i]))) continue;
          d[i] = value;
        }
      }
  };
  if (image) visitScalarType(image->pixelType(), loop);
  else loop(TypeTag<std::uint8_t>{});
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::erase(const Brush& brush, const Vec3& c, int label) {
  if (label < 0) return paint(brush, c, 0);
  // Only `label` goes: paint 0 over voxels that hold it.
  const ImageGeometry& g = labels_->geometry();
  const double r = brush.diameterMm / 2.0, r2 = r * r;
  const IndexBox box = boxAround(g, c, r);
  const bool began = implicitBegin("Erase");
  touch(box);
  std::uint8_t* d = labels_->data<std::uint8_t>();
  const Vec3 n = brush.normal.normalized();
  for (long z = box.lo[2]; z <= box.hi[2]; ++z)
    for (long y = box.lo[1]; y <= box.hi[1]; ++y)
      for (long x = box.lo[0]; x <= box.hi[0]; ++x) {
        const std::size_t i = labels_->linearIndex(static_cast<std::size_t>(x), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
        if (d[i] != label) continue;
        const Vec3 dv = g.ijkToLps({static_cast<double>(x), static_cast<double>(y), static_cast<double>(z)}) - c;
        const double dd = dv.dot(dv), dn = dv.dot(n);
        if (brush.sphere ? dd > r2 : (std::fabs(dn) > brush.thicknessMm / 2 || dd - dn * dn > r2)) continue;
        d[i] = 0;
      }
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::threshold(const Volume& image, IntensityRange range, int label, const IndexBox* within,
                                           bool overwrite) {
  if (label < 0 || label > 255 || image.pixelType() == PixelType::RGB8 || !sameSize(image, *labels_)) return {};
  const IndexBox box = within ? within->intersected(IndexBox::of(labels_->geometry())) : IndexBox::of(labels_->geometry());
  const bool began = implicitBegin("Threshold");
  touch(box);
  std::uint8_t* d = labels_->data<std::uint8_t>();
  const auto value = static_cast<std::uint8_t>(label);
  visitScalarType(image.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* img = image.template data<T>();
    for (long z = box.lo[2]; z <= box.hi[2]; ++z)
      for (long y = box.lo[1]; y <= box.hi[1]; ++y) {
        std::size_t i = labels_->linearIndex(static_cast<std::size_t>(box.lo[0]), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
        for (long x = box.lo[0]; x <= box.hi[0]; ++x, ++i) {
          if (!overwrite && d[i] != 0) continue;
          if (range.contains(static_cast<double>(img[i]))) d[i] = value;
        }
      }
  });
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::fillHoles(int label, int sliceAxis) {
  if (label <= 0 || label > 255) return {};
  const auto& s = labels_->size();
  const long n[3] = {static_cast<long>(s[0]), static_cast<long>(s[1]), static_cast<long>(s[2])};
  const bool began = implicitBegin("Fill holes");
  touch(IndexBox::of(labels_->geometry()));
  std::uint8_t* d = labels_->data<std::uint8_t>();
  const auto value = static_cast<std::uint8_t>(label);
  const std::size_t stride[3] = {1, s[0], s[0] * s[1]};
  // Outside = not the label and reachable from the border (in the slice, for 2D).
  std::vector<std::uint8_t> outside(labels_->voxelCount(), 0);
  std::deque<std::size_t> queue;
  auto flood = [&](int axisFixed, long fixed) {
    auto seed = [&](long x, long y, long z) {
      const std::size_t i = static_cast<std::size_t>(x) * stride[0] + static_cast<std::size_t>(y) * stride[1] +
                            static_cast<std::size_t>(z) * stride[2];
      if (d[i] != value && !outside[i]) {
        outside[i] = 1;
        queue.push_back(i);
      }
    };
    long lo[3] = {0, 0, 0}, hi[3] = {n[0] - 1, n[1] - 1, n[2] - 1};
    if (axisFixed >= 0) lo[axisFixed] = hi[axisFixed] = fixed;
    for (long z = lo[2]; z <= hi[2]; ++z)
      for (long y = lo[1]; y <= hi[1]; ++y)
        for (long x = lo[0]; x <= hi[0]; ++x) {
          const long c[3] = {x, y, z};
          bool border = false;
          for (int a = 0; a < 3; ++a)
            if (a != axisFixed && (c[a] == 0 || c[a] == n[a] - 1)) border = true;
          if (border) seed(x, y, z);
        }
    while (!queue.empty()) {
      const std::size_t i = queue.front();
      queue.pop_front();
      long c[3] = {static_cast<long>(i % s[0]), static_cast<long>((i / s[0]) % s[1]), static_cast<long>(i / (s[0] * s[1]))};
      for (int a = 0; a < 3; ++a) {
        if (a == axisFixed) continue;
        for (int dir : {-1, 1}) {
          const long v = c[a] + dir;
          if (v < 0 || v >= n[a]) continue;
          const std::size_t j = dir < 0 ? i - stride[a] : i + stride[a];
          if (d[j] != value && !outside[j]) {
            outside[j] = 1;
            queue.push_back(j);
          }
        }
      }
    }
  };
  if (sliceAxis >= 0 && sliceAxis < 3) {
    for (long k = 0; k < n[sliceAxis]; ++k) flood(sliceAxis, k);
  } else {
    flood(-1, 0);
  }
  for (std::size_t i = 0; i < labels_->voxelCount(); ++i)
    if (!outside[i] && d[i] == 0) d[i] = value;
  return implicitEnd(began);
}

namespace {
// Face-connected parts of `value`: calls visit(seed, size) for each, in scan order.
template <class Visit>
void components(const Volume& labels, std::uint8_t value, std::vector<std::uint8_t>& seen, Visit visit) {
  const auto& s = labels.size();
  const std::uint8_t* d = labels.data<std::uint8_t>();
  const std::size_t stride[3] = {1, s[0], s[0] * s[1]};
  seen.assign(labels.voxelCount(), 0);
  std::deque<std::size_t> queue;
  for (std::size_t start = 0; start < labels.voxelCount(); ++start) {
    if (d[start] != value || seen[start]) continue;
    std::size_t size = 0;
    seen[start] = 1;
    queue.push_back(start);
    while (!queue.empty()) {
      const std::size_t i = queue.front();
      queue.pop_front();
      ++size;
      const std::size_t c[3] = {i % s[0], (i / s[0]) % s[1], i / (s[0] * s[1])};
      for (int a = 0; a < 3; ++a) {
        if (c[a] > 0 && d[i - stride[a]] == value && !seen[i - stride[a]]) {
          seen[i - stride[a]] = 1;
          queue.push_back(i - stride[a]);
        }
        if (c[a] + 1 < s[static_cast<std::size_t>(a)] && d[i + stride[a]] == value && !seen[i + stride[a]]) {
          seen[i + stride[a]] = 1;
          queue.push_back(i + stride[a]);
        }
      }
    }
    visit(start, size);
  }
}

// Clears the face-connected part of `value` that holds `seed`.
void clearComponent(Volume& labels, std::uint8_t value, std::size_t seed) {
  const auto& s = labels.size();
  std::uint8_t* d = labels.data<std::uint8_t>();
  const std::size_t stride[3] = {1, s[0], s[0] * s[1]};
  std::deque<std::size_t> queue{seed};
  d[seed] = 0;
  while (!queue.empty()) {
    const std::size_t i = queue.front();
    queue.pop_front();
    const std::size_t c[3] = {i % s[0], (i / s[0]) % s[1], i / (s[0] * s[1])};
    for (int a = 0; a < 3; ++a) {
      if (c[a] > 0 && d[i - stride[a]] == value) {
        d[i - stride[a]] = 0;
        queue.push_back(i - stride[a]);
      }
      if (c[a] + 1 < s[static_cast<std::size_t>(a)] && d[i + stride[a]] == value) {
        d[i + stride[a]] = 0;
        queue.push_back(i + stride[a]);
      }
    }
  }
}
}  // namespace

LabelEditor::Change LabelEditor::keepLargestIsland(int label) {
  if (label <= 0 || label > 255) return {};
  const auto value = static_cast<std::uint8_t>(label);
  std::vector<std::pair<std::size_t, std::size_t>> parts;  // (seed, size)
  std::vector<std::uint8_t> seen;
  components(*labels_, value, seen, [&](std::size_t seed, std::size_t size) { parts.emplace_back(seed, size); });
  if (parts.size() < 2) return {};
  const auto largest = std::max_element(parts.begin(), parts.end(), [](auto& a, auto& b) { return a.second < b.second; });
  const bool began = implicitBegin("Keep largest island");
  touch(IndexBox::of(labels_->geometry()));
  for (auto it = parts.begin(); it != parts.end(); ++it)
    if (it != largest) clearComponent(*labels_, value, it->first);
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::removeSmallIslands(int label, std::size_t minVoxels) {
  if (label <= 0 || label > 255) return {};
  const auto value = static_cast<std::uint8_t>(label);
  std::vector<std::size_t> small;
  std::vector<std::uint8_t> seen;
  components(*labels_, value, seen, [&](std::size_t seed, std::size_t size) {
    if (size < minVoxels) small.push_back(seed);
  });
  if (small.empty()) return {};
  const bool began = implicitBegin("Remove small islands");
  touch(IndexBox::of(labels_->geometry()));
  for (std::size_t seed : small) clearComponent(*labels_, value, seed);
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::combine(int label, LogicalOp op, const Volume& mask, int maskLabel, bool overwrite) {
  if (label <= 0 || label > 255 || mask.pixelType() == PixelType::RGB8 || !sameSize(mask, *labels_)) return {};
  const bool began = implicitBegin(op == LogicalOp::Union ? "Union" : op == LogicalOp::Intersect ? "Intersect" : "Subtract");
  touch(IndexBox::of(labels_->geometry()));
  std::uint8_t* d = labels_->data<std::uint8_t>();
  const auto value = static_cast<std::uint8_t>(label);
  visitScalarType(mask.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* m = mask.template data<T>();
    for (std::size_t i = 0; i < labels_->voxelCount(); ++i) {
      const double mv = static_cast<double>(m[i]);
      const bool in = maskLabel < 0 ? mv != 0 : mv == maskLabel;
      switch (op) {
        case LogicalOp::Union:
          if (in && (overwrite || d[i] == 0)) d[i] = value;
          break;
        case LogicalOp::Intersect:
          if (!in && d[i] == value) d[i] = 0;
          break;
        case LogicalOp::Subtract:
          if (in && d[i] == value) d[i] = 0;
          break;
      }
    }
  });
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::clearOutside(const IndexBox& box, int label) {
  const bool began = implicitBegin("Crop");
  touch(IndexBox::of(labels_->geometry()));
  std::uint8_t* d = labels_->data<std::uint8_t>();
  const auto& s = labels_->size();
  std::size_t i = 0;
  for (long z = 0; z < static_cast<long>(s[2]); ++z)
    for (long y = 0; y < static_cast<long>(s[1]); ++y)
      for (long x = 0; x < static_cast<long>(s[0]); ++x, ++i) {
        const bool in = x >= box.lo[0] && x <= box.hi[0] && y >= box.lo[1] && y <= box.hi[1] && z >= box.lo[2] && z <= box.hi[2];
        if (!in && d[i] != 0 && (label < 0 || d[i] == label)) d[i] = 0;
      }
  return implicitEnd(began);
}

LabelEditor::Change LabelEditor::relabel(int from, int to) {
  if (from <= 0 || from > 255 || to < 0 || to > 255 || from == to) return {};
  const bool began = implicitBegin("Relabel");
  touch(IndexBox::of(labels_->geometry()));
  std::uint8_t* d = labels_->data<std::uint8_t>();
  for (std::size_t i = 0; i < labels_->voxelCount(); ++i)
    if (d[i] == from) d[i] = static_cast<std::uint8_t>(to);
  return implicitEnd(began);
}

}  // namespace lumen
