// Classification stage of Engine::run: class probabilities (per slice and their mean for a
// 2D network), slices without enough evidence left ungraded, a bundle's estimate (a
// quantity the network measures; outside the range it knows, no class), a gradient x input
// saliency map put back on the input grid.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <locale>
#include <sstream>
#include <tuple>
#include <utility>

#include "Pipeline.h"

namespace lumen::models::pipeline {

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

std::string formatValue(double v) {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  if (!std::isfinite(v))
    s << (std::isnan(v) ? "not a number" : v > 0 ? "infinity" : "-infinity");
  else if (std::fabs(v) >= 999.5)  // would round to 1000: whole numbers, no exponent
    s << std::llround(v);
  else
    s << std::setprecision(3) << v;
  return s.str();
}

namespace {

// The series' estimate and each slice's (row: the graded item behind each input slice, -1
// for none).
Result<InferenceResult::Estimate> estimateOf(const LumenExtras::Estimate& est, const torch::Tensor& column,
                                             const std::vector<std::int64_t>& row, std::size_t modelDims, const std::string& model) {
  const torch::Tensor raw = column.to(torch::kCPU, torch::kFloat64);
  InferenceResult::Estimate e;
  e.name = est.name;
  e.unit = est.unit;
  e.lo = est.lo;
  e.hi = est.hi;
  e.value = est.exp ? std::exp(raw.mean().item<double>()) : raw.mean().item<double>();
  if (std::isnan(e.value)) return Error(ErrorCode::Model, "the network's " + est.name + " is not a number", model);
  for (std::size_t z = 0; modelDims == 2 && z < row.size(); ++z) {
    const double v = row[z] < 0 ? std::nan("") : raw[row[z]].item<double>();
    e.slices.push_back(est.exp ? std::exp(v) : v);
  }
  return e;
}

// The bundle's model of class probabilities (estimate.size_reference) at ln value v: the
// probability that v plus logistic noise of scale `spread` lies in each class's bin (between
// the class edges; the outer bins one bin width wide), normalised. nets.NoiseLevelGrader's.
std::vector<double> intervalProbabilities(const std::vector<double>& lnEdges, double spread, double v) {
  const std::size_t classes = lnEdges.size() + 1;
  const double width = lnEdges[1] - lnEdges[0];
  const auto logSigmoid = [](double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); };
  std::vector<double> p(classes);
  for (std::size_t c = 0; c < classes; ++c) {
    const double lo = c == 0 ? lnEdges[0] - width : lnEdges[c - 1];
    const double hi = c + 1 == classes ? lnEdges.back() + width : lnEdges[c];
    // ln(sigmoid(a) - sigmoid(b)) for a > b; far up both are near 1, and
    // sigmoid(a) - sigmoid(b) = sigmoid(-b) - sigmoid(-a) keeps the difference exact.
    double a = (hi - v) / spread, b = (lo - v) / spread;
    if (a + b > 0) std::tie(a, b) = std::make_pair(-b, -a);
    const double la = logSigmoid(a);
    p[c] = la + std::log1p(-std::exp(logSigmoid(b) - la));
  }
  const double top = *std::max_element(p.begin(), p.end());
  double sum = 0;
  for (double& x : p) sum += (x = std::exp(x - top));
  for (double& x : p) x /= sum;
  return p;
}

// estimate.size_reference: each graded item's ln estimate referred to the reference body
// size, and `p` (the network's class probabilities, [items, classes]) replaced by the
// bundle's model at the referred values, once that model is shown to be the network's at
// the raw ones. row: the graded item behind each input slice (-1: none).
Result<InferenceResult::Estimate::Referred> referToSize(const LumenExtras::Estimate& est, const torch::Tensor& column,
                                                        torch::Tensor& p, const std::vector<std::int64_t>& row,
                                                        const torch::Tensor& diameters, const std::string& model) {
  const auto& ref = *est.sizeReference;
  std::vector<double> lnEdges;
  for (double e : est.classEdges) lnEdges.push_back(std::log(e));
  const torch::Tensor raw = column.to(torch::kCPU, torch::kFloat64).contiguous();
  const torch::Tensor d = diameters.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto rawA = raw.accessor<double, 1>();
  const auto dA = d.accessor<double, 1>();
  auto pA = p.accessor<double, 2>();
  InferenceResult::Estimate::Referred out;
  out.diameterMm = ref.diameterMm;
  // How far the stated model lies from the network: in probability, and in log-probability
  // wherever both are above 1e-10 (a wrong spread shows in the far bins at any estimate).
  double worst = 0, worstLog = 0, lnSum = 0;
  std::int64_t graded = 0;
  for (std::size_t z = 0; z < row.size(); ++z) {
    out.sliceDiametersMm.push_back(dA[static_cast<std::int64_t>(z)]);
    const std::int64_t i = row[z];
    if (i < 0) {
      out.slices.push_back(std::nan(""));
      continue;
    }
    if (std::isnan(rawA[i])) return Error(ErrorCode::Model, "the network's " + est.name + " is not a number", model);
    ++graded;
    if (std::isinf(rawA[i])) {  // no referral, no class: known_range refuses the series
      out.slices.push_back(std::exp(rawA[i]));
      lnSum += rawA[i];
      continue;
    }
    const auto atRaw = intervalProbabilities(lnEdges, ref.classSpread, rawA[i]);
    const double referred = rawA[i] - ref.slopePerMm * (dA[static_cast<std::int64_t>(z)] - ref.diameterMm);
    const auto atReferred = intervalProbabilities(lnEdges, ref.classSpread, referred);
    for (std::size_t c = 0; c < atRaw.size(); ++c) {
      const double net = pA[i][static_cast<std::int64_t>(c)];
      worst = std::max(worst, std::fabs(atRaw[c] - net));
      if (atRaw[c] > 1e-10 && net > 1e-10) worstLog = std::max(worstLog, std::fabs(std::log(atRaw[c] / net)));
      pA[i][static_cast<std::int64_t>(c)] = atReferred[c];
    }
    out.slices.push_back(std::exp(referred));
    lnSum += referred;
  }
  if (worst > 1e-3 || worstLog > 1e-2)
    return Error(ErrorCode::Model,
                 "estimate.size_reference: class_edges and class_spread " + formatValue(ref.classSpread) +
                     " do not describe this network's class probabilities (they differ by up to " + formatValue(worst) +
                     ", by up to " + formatValue(worstLog) + " in log-probability)",
                 model);
  out.value = std::exp(lnSum / static_cast<double>(std::max<std::int64_t>(graded, 1)));
  return out;
}

// [1, 1, X, Y, Z] on the input grid -> a float32 volume. (Its own function: inlined into
// classify, GCC 12 takes the Result's destructor for a free of a non-heap object.)
Status toVolume(const torch::Tensor& t, const ImageGeometry& geometry, Volume& out) {
  auto vol = Volume::allocate(PixelType::Float32, geometry);
  if (!vol) return vol.error();
  const auto& sz = geometry.size;
  torch::from_blob(vol->bytes(), {static_cast<std::int64_t>(sz[2]), static_cast<std::int64_t>(sz[1]), static_cast<std::int64_t>(sz[0])},
                   torch::kFloat32)
      .copy_(t[0][0].permute({2, 1, 0}));
  out = std::move(vol.value());
  return {};
}

std::string outsideRange(const InferenceResult::Estimate& e) {
  return "outside the range the model knows (" + formatValue(e.lo) + "-" + formatValue(e.hi) + " " + e.unit + "): " + e.name +
         " about " + formatValue(e.value) + " " + e.unit;
}

}  // namespace

Status classify(State& s, const Bundle& b, const Network& net, std::size_t modelDims, const torch::Tensor& evidence,
                const torch::Tensor& diameters, bool withSaliency, const ImageGeometry& inputGeometry, InferenceResult& res,
                const Progress& progress, const CancelToken& cancel) {
  // A fixed spatial_shape: the input is resized to it. "*" entries (a network that pools
  // globally and takes any size): the pre-processed grid as it is, since resizing changes
  // what some classifiers measure (noise, texture).
  std::vector<std::int64_t> shape;
  for (int v : b.input.spatialShape) shape.push_back(v);
  if (shape.size() != modelDims)
    return Error(ErrorCode::Model, "classification needs spatial_shape in metadata.json (sizes, or \"*\" for any)", b.root.string());
  const bool anySize = std::all_of(shape.begin(), shape.end(), [](std::int64_t v) { return v <= 0; });
  if (!anySize && std::any_of(shape.begin(), shape.end(), [](std::int64_t v) { return v <= 0; }))
    return Error(ErrorCode::Model, "spatial_shape mixes fixed sizes and \"*\"", b.root.string());
  torch::Tensor batch;  // [N, 1, *shape]
  if (modelDims == 3) {
    batch = anySize ? s.x : F::interpolate(s.x, F::InterpolateFuncOptions().size(shape).mode(torch::kTrilinear).align_corners(false));
  } else {
    const torch::Tensor slices = s.x[0].permute({3, 0, 1, 2});  // [Z, C, X, Y]
    batch = anySize ? slices.contiguous()
                    : F::interpolate(slices, F::InterpolateFuncOptions().size(shape).mode(torch::kBilinear).align_corners(false));
  }
  // Slices without enough of what the model reads are not graded (lumen.json).
  torch::Tensor graded;  // indices of the graded slices; undefined: all of them
  const std::int64_t nSlices = modelDims == 2 ? batch.size(0) : 1;
  if (const auto& ev = b.extras.sliceEvidence) {
    graded = (evidence >= ev->minAreaMm2).nonzero().flatten();
    std::ostringstream need;
    need << ev->minAreaMm2 / 100.0 << " cm^2 of tissue in " << ev->lo << ".." << ev->hi << " (mean over " << ev->smoothingMm << " mm)";
    if (graded.numel() == 0) {
      std::ostringstream e;
      e << "no slice shows enough tissue to grade (the model needs " << need.str() << "; the most any slice shows is "
        << std::round(evidence.max().item<double>()) / 100.0 << " cm^2: there is none, or noise breaks it up)";
      return Error(ErrorCode::InvalidArgument, e.str());
    }
    if (graded.numel() < nSlices) {
      std::ostringstream l;
      l << nSlices - graded.numel() << " of " << nSlices << " slice(s) not graded: less than " << need.str();
      res.log.push_back(l.str());
      batch = batch.index_select(0, graded.to(batch.device()));
    }
  }
  // With an estimate, the network's last column is that quantity, not a class logit.
  const auto& est = b.extras.estimate;
  const auto checkShape = [&](const torch::Tensor& out) -> Status {
    if (out.dim() != 2 || (est && out.size(1) < 2)) {
      std::ostringstream e;
      e << "a classifier must return [batch, classes" << (est ? " + 1 estimate" : "") << "]; this one returned " << out.sizes();
      return Error(ErrorCode::Model, e.str(), b.modelPath.string());
    }
    return {};
  };
  const auto classColumns = [&](const torch::Tensor& out) { return est ? out.narrow(1, 0, out.size(1) - 1) : out; };
  std::vector<torch::Tensor> probs, values;
  torch::Tensor saliency;
  // Items per forward pass bounded by pixels, not a count: a classifier that takes any
  // size keeps full-resolution activations (and, for saliency, their gradients) for every
  // item of the pass; 16 slices of 512 x 512 held over 5 GiB.
  const std::int64_t itemVoxels = std::max<std::int64_t>(1, batch[0].numel());
  const std::int64_t step = std::clamp<std::int64_t>((std::int64_t{1} << 20) / itemVoxels, 1, 16);
  for (std::int64_t i = 0; i < batch.size(0); i += step) {
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "inference cancelled");
    torch::Tensor x = batch.narrow(0, i, std::min(step, batch.size(0) - i)).clone();
    const auto t0 = Clock::now();
    torch::Tensor out;
    if (withSaliency) {
      torch::AutoGradMode grad(true);
      x.requires_grad_(true);
      out = net.forward(x);
      if (auto st = checkShape(out); !st) return st;
      // Gradient x input for each item's winning class, or of the estimate (what the
      // measurement rests on; a class of such a model is a function of it).
      const torch::Tensor logits = classColumns(out);
      const torch::Tensor target = est ? out.narrow(1, out.size(1) - 1, 1) : logits.gather(1, logits.argmax(1, true));
      target.sum().backward();
      torch::Tensor sal = (x.grad() * x).abs().sum(1, true).detach();
      saliency = saliency.defined() ? torch::cat({saliency, sal}) : sal;
      out = out.detach();
    } else {
      out = net.forward(x);
    }
    if (auto st = checkShape(out); !st) return st;
    res.forwardSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
    probs.push_back(torch::softmax(classColumns(out), 1));
    if (est) values.push_back(out.select(1, out.size(1) - 1));
    progress.report(static_cast<double>(std::min(i + step, batch.size(0))) / static_cast<double>(batch.size(0)),
                    "Running the model");
  }
  torch::Tensor p = torch::cat(probs).to(torch::kCPU, torch::kFloat64).contiguous();
  // metadata.json describes the whole output: with an estimate, the classes and its column.
  if (b.output.numChannels > 0 && p.size(1) + (est ? 1 : 0) != b.output.numChannels) {
    std::ostringstream e;
    e << "the network returned " << p.size(1) << " classes" << (est ? " and an estimate" : "") << "; metadata.json says "
      << b.output.numChannels << " channels";
    return Error(ErrorCode::Model, e.str(), b.modelPath.string());
  }
  if (est && !est->classEdges.empty() && est->classEdges.size() + 1 != static_cast<std::size_t>(p.size(1)))
    return Error(ErrorCode::Model, "estimate: class_edges must be one fewer than the classes the network returns",
                 b.modelPath.string());
  const torch::Tensor estimateColumn = est ? torch::cat(values) : torch::Tensor();
  // The graded item (row of p) behind each input slice; -1: not graded.
  std::vector<std::int64_t> row(static_cast<std::size_t>(nSlices), -1);
  for (std::int64_t i = 0; i < p.size(0); ++i)
    row[static_cast<std::size_t>(graded.defined() ? graded[i].item<std::int64_t>() : i)] = i;
  std::optional<InferenceResult::Estimate::Referred> referred;
  if (est && est->sizeReference) {  // the classes grade the estimate referred to one size
    auto r = referToSize(*est, estimateColumn, p, row, diameters, b.modelPath.string());
    if (!r) return r.error();
    referred = std::move(r.value());
  }
  const torch::Tensor mean = p.mean(0);
  for (std::int64_t c = 0; c < mean.size(0); ++c) {
    res.probabilities.push_back(mean[c].item<double>());
    auto it = b.output.channelDef.find(static_cast<int>(c));
    res.classNames.push_back(it != b.output.channelDef.end() ? it->second : "class " + std::to_string(c));
  }
  if (modelDims == 2) {
    // One row per input slice; an empty row for a slice that was not graded.
    for (std::int64_t z = 0; z < nSlices; ++z) {
      std::vector<double> sliceP;
      if (const std::int64_t i = row[static_cast<std::size_t>(z)]; i >= 0)
        for (std::int64_t c = 0; c < p.size(1); ++c) sliceP.push_back(p[i][c].item<double>());
      res.sliceProbabilities.push_back(std::move(sliceP));
    }
  }
  if (est) {
    auto e = estimateOf(*est, estimateColumn, row, modelDims, b.modelPath.string());
    if (!e) return e.error();
    if (!e->inRange()) res.notGraded = outsideRange(*e);  // the raw estimate: what the model was trained to read
    e->referred = std::move(referred);
    if (!est->classEdges.empty()) {
      const double gradedValue = e->referred ? e->referred->value : e->value;
      res.estimateClass = static_cast<int>(std::upper_bound(est->classEdges.begin(), est->classEdges.end(), gradedValue) -
                                           est->classEdges.begin());
    }
    res.estimate = std::move(*e);
  }
  if (saliency.defined()) {
    // Back to the pre-processed grid, then onto the input grid.
    torch::Tensor sal;
    if (modelDims == 3) {
      sal = F::interpolate(saliency, F::InterpolateFuncOptions()
                                         .size(std::vector<std::int64_t>{s.x.size(2), s.x.size(3), s.x.size(4)})
                                         .mode(torch::kTrilinear)
                                         .align_corners(false));
    } else {
      sal = F::interpolate(saliency, F::InterpolateFuncOptions()
                                         .size(std::vector<std::int64_t>{s.x.size(2), s.x.size(3)})
                                         .mode(torch::kBilinear)
                                         .align_corners(false));
      if (graded.defined() && graded.numel() < nSlices)  // slices not graded: no saliency
        sal = torch::zeros({nSlices, sal.size(1), sal.size(2), sal.size(3)}, sal.options()).index_copy(0, graded.to(sal.device()), sal);
      sal = sal.permute({1, 2, 3, 0}).unsqueeze(0);  // [1, 1, X, Y, Z]
    }
    sal = undoSpatial(sal, s.spatial, false);
    const double maxv = sal.max().item<double>();
    if (maxv > 0) sal = sal / maxv;
    if (auto st = toVolume(sal, inputGeometry, res.saliency); !st) return st;
  }
  std::ostringstream l;
  l << "classified " << batch.size(0) << (modelDims == 2 ? " slice(s)" : " volume") << ": ";
  const std::string detail = classificationDetail(res);
  if (const int top = res.predictedClass(); top >= 0)
    l << res.classNames[static_cast<std::size_t>(top)] << " (p = " << res.probabilities[static_cast<std::size_t>(top)] << ")"
      << (detail.empty() ? "" : "; ") << detail;
  else
    l << detail;
  res.log.push_back(l.str());
  return {};
}

}  // namespace lumen::models::pipeline

namespace lumen::models {

std::string classificationDetail(const InferenceResult& r) {
  if (!r.notGraded.empty()) return "not graded: " + r.notGraded;
  if (!r.estimate) return {};
  const auto& e = *r.estimate;
  std::string d = e.name + " " + pipeline::formatValue(e.value) + " " + e.unit;
  if (e.referred)
    d += "; " + pipeline::formatValue(e.referred->value) + " " + e.unit + " referred to a water-equivalent diameter of " +
         pipeline::formatValue(e.referred->diameterMm) + " mm";
  return d;
}

}  // namespace lumen::models
