#include "CpuKernels.h"

#include <algorithm>

#include <ATen/Context.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>
#include <torch/library.h>
#include <torch/torch.h>

namespace lumen::models {

namespace F = torch::nn::functional;

namespace {

bool all(c10::IntArrayRef v, std::int64_t x) {
  for (auto e : v)
    if (e != x) return false;
  return true;
}

bool oneDnnUsable(const torch::Tensor& input, const torch::Tensor& weight) {
  return at::hasMKLDNN() && input.device().is_cpu() && input.scalar_type() == torch::kFloat32 &&
         weight.scalar_type() == torch::kFloat32 && input.dim() == 5 && !input.requires_grad() &&
         !weight.requires_grad();
}

}  // namespace

torch::Tensor conv3dInSlabs(const torch::Tensor& input, const torch::Tensor& weight, const c10::optional<torch::Tensor>& bias,
                            c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, std::int64_t groups,
                            std::int64_t slabDepth) {
  const std::int64_t depth = input.size(2), reach = dilation[0] * (weight.size(2) - 1);
  const std::int64_t outDepth = (depth + 2 * padding[0] - reach - 1) / stride[0] + 1;
  torch::Tensor out;
  const torch::Tensor w = weight.contiguous();
  const std::vector<std::int64_t> inPlane{0, padding[1], padding[2]};  // depth padding is explicit
  for (std::int64_t o0 = 0; o0 < outDepth; o0 += slabDepth) {
    const std::int64_t o1 = std::min(outDepth, o0 + slabDepth);
    // The input slices output slices [o0, o1) read, zero-padded where they lie outside.
    const std::int64_t i0 = o0 * stride[0] - padding[0], i1 = (o1 - 1) * stride[0] - padding[0] + reach + 1;
    // A slab may lie wholly in the padding (padding wider than the kernel's reach).
    const std::int64_t from = std::clamp<std::int64_t>(i0, 0, depth), to = std::clamp<std::int64_t>(i1, from, depth);
    torch::Tensor in;
    if (to == from) {
      in = torch::zeros({input.size(0), input.size(1), i1 - i0, input.size(3), input.size(4)}, input.options());
    } else {
      in = input.narrow(2, from, to - from);
      if (from > i0 || i1 > to) in = F::pad(in, F::PadFuncOptions({0, 0, 0, 0, from - i0, i1 - to}));
    }
    const torch::Tensor y = at::mkldnn_convolution(in.contiguous(), w, bias, inPlane, stride, dilation, groups);
    if (!out.defined()) out = torch::empty({y.size(0), y.size(1), outDepth, y.size(3), y.size(4)}, y.options());
    out.narrow(2, o0, o1 - o0).copy_(y);
  }
  return out;
}

torch::Tensor fastConv3d(const torch::Tensor& input, const torch::Tensor& weight, const c10::optional<torch::Tensor>& bias,
                         c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, std::int64_t groups) {
  if (!oneDnnUsable(input, weight) || input.size(0) == 0)
    return at::conv3d(input, weight, bias, stride, padding, dilation, groups);
  // oneDNN computes in blocks of 16 channels and pads a thin output into its own copy: two
  // channels at 96^3 take 54 MiB there instead of 7. Such a convolution runs in slabs
  // along depth, so that copy stays near kSlabBytes.
  constexpr std::int64_t kSlabBytes = std::int64_t{16} << 20;
  const std::int64_t cout = weight.size(0);
  if (cout % 16 != 0) {
    std::int64_t perSlice = input.size(0) * ((cout + 15) / 16 * 16) * 4;  // bytes per output slice, padded
    for (int a = 1; a < 3; ++a)
      perSlice *= (input.size(a + 2) + 2 * padding[a] - dilation[a] * (weight.size(a + 2) - 1) - 1) / stride[a] + 1;
    const std::int64_t outDepth = (input.size(2) + 2 * padding[0] - dilation[0] * (weight.size(2) - 1) - 1) / stride[0] + 1;
    if (perSlice > 0 && outDepth > 1 && perSlice * outDepth > 2 * kSlabBytes)
      return conv3dInSlabs(input, weight, bias, stride, padding, dilation, groups, std::max<std::int64_t>(1, kSlabBytes / perSlice));
  }
  return at::mkldnn_convolution(input.contiguous(), weight.contiguous(), bias, padding, stride, dilation, groups);
}

torch::Tensor fastConvTranspose3d(const torch::Tensor& input, const torch::Tensor& weight,
                                  const c10::optional<torch::Tensor>& bias, c10::IntArrayRef stride,
                                  c10::IntArrayRef padding, c10::IntArrayRef outputPadding, std::int64_t groups,
                                  c10::IntArrayRef dilation) {
  const bool upsampling = weight.dim() == 5 && weight.size(2) == 3 && weight.size(3) == 3 && weight.size(4) == 3 &&
                          all(stride, 2) && all(padding, 1) && all(outputPadding, 1) && all(dilation, 1) && groups == 1;
  if (!upsampling || !oneDnnUsable(input, weight))
    return at::conv_transpose3d(input, weight, bias, stride, padding, outputPadding, groups, dilation);
  // 1D: y[2m] = x[m] w[1];  y[2m+1] = x[m] w[2] + x[m+1] w[0]. In 3D each of the eight
  // output parities is a small convolution of x with some of the kernel taps.
  const torch::Tensor wc = weight.transpose(0, 1);  // [Cout, Cin, 3, 3, 3], as a convolution
  const std::int64_t n = input.size(0), cout = wc.size(0), cin = wc.size(1);
  const std::int64_t d = input.size(2), h = input.size(3), w = input.size(4);
  const torch::Tensor xp = F::pad(input, F::PadFuncOptions({0, 1, 0, 1, 0, 1}));
  const auto ones = std::vector<std::int64_t>{1, 1, 1}, zeros = std::vector<std::int64_t>{0, 0, 0};
  // taps[parity] = (offset into x, kernel index) pairs along one axis.
  const std::vector<std::pair<int, int>> taps[2] = {{{0, 1}}, {{0, 2}, {1, 0}}};
  if (cout < 16) {
    // Few output channels (the last up-sampling of a segmentation net): oneDNN is slow on
    // thin outputs, so pack the eight parities as 8*Cout channels of one 2x2x2 convolution
    // and interleave them afterwards.
    torch::Tensor k = torch::zeros({cout, 2, 2, 2, cin, 2, 2, 2}, wc.options());
    for (int pd = 0; pd < 2; ++pd)
      for (int ph = 0; ph < 2; ++ph)
        for (int pw = 0; pw < 2; ++pw)
          for (auto [td, kd] : taps[pd])
            for (auto [th, kh] : taps[ph])
              for (auto [tw, kw] : taps[pw])
                k.select(1, pd).select(1, ph).select(1, pw).select(2, td).select(2, th).select(2, tw)
                    .copy_(wc.select(2, kd).select(2, kh).select(2, kw));
    k = k.reshape({cout * 8, cin, 2, 2, 2});
    c10::optional<torch::Tensor> b8;
    if (bias) b8 = bias->repeat_interleave(8);
    const torch::Tensor y = at::mkldnn_convolution(xp.contiguous(), k, b8, zeros, ones, ones, 1);
    return y.view({n, cout, 2, 2, 2, d, h, w}).permute({0, 1, 5, 2, 6, 3, 7, 4}).reshape({n, cout, 2 * d, 2 * h, 2 * w});
  }
  torch::Tensor out = torch::empty({n, cout, 2 * d, 2 * h, 2 * w}, input.options());
  const auto idx = [&](const std::vector<std::pair<int, int>>& t) {
    std::vector<std::int64_t> v;
    for (auto [offset, tap] : t) v.push_back(tap);
    return torch::tensor(v, torch::kLong);
  };
  for (int pd = 0; pd < 2; ++pd)
    for (int ph = 0; ph < 2; ++ph)
      for (int pw = 0; pw < 2; ++pw) {
        const torch::Tensor k = wc.index_select(2, idx(taps[pd])).index_select(3, idx(taps[ph])).index_select(4, idx(taps[pw]));
        const torch::Tensor in = xp.narrow(2, 0, d + pd).narrow(3, 0, h + ph).narrow(4, 0, w + pw);
        out.slice(2, pd, 2 * d, 2).slice(3, ph, 2 * h, 2).slice(4, pw, 2 * w, 2)
            .copy_(at::mkldnn_convolution(in.contiguous(), k.contiguous(), bias, zeros, ones, ones, 1));
      }
  return out;
}

TORCH_LIBRARY_FRAGMENT(lumen, m) {
  m.def("conv3d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, int groups) -> Tensor",
        &fastConv3d);
  m.def("conv_transpose3d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] output_padding, "
        "int groups, int[] dilation) -> Tensor",
        &fastConvTranspose3d);
}

int useFastCpuKernels(torch::jit::Module& frozen) {
  if (!at::hasMKLDNN()) return 0;
  auto graph = frozen.get_method("forward").graph();
  auto count = [&](const char* kind) {
    int c = 0;
    for (const torch::jit::Node* node : graph->nodes())
      if (node->kind().toQualString() == std::string(kind)) ++c;
    return c;
  };
  const int before = count("aten::conv3d") + count("aten::conv_transpose3d");
  torch::jit::SubgraphRewriter conv;
  conv.RegisterRewritePattern(R"IR(
    graph(%x, %w, %b, %s, %p, %d, %g):
      %r = aten::conv3d(%x, %w, %b, %s, %p, %d, %g)
      return (%r))IR",
                              R"IR(
    graph(%x, %w, %b, %s, %p, %d, %g):
      %r = lumen::conv3d(%x, %w, %b, %s, %p, %d, %g)
      return (%r))IR");
  conv.runOnGraph(graph);
  torch::jit::SubgraphRewriter up;
  up.RegisterRewritePattern(R"IR(
    graph(%x, %w, %b, %s, %p, %op, %g, %d):
      %r = aten::conv_transpose3d(%x, %w, %b, %s, %p, %op, %g, %d)
      return (%r))IR",
                            R"IR(
    graph(%x, %w, %b, %s, %p, %op, %g, %d):
      %r = lumen::conv_transpose3d(%x, %w, %b, %s, %p, %op, %g, %d)
      return (%r))IR");
  up.runOnGraph(graph);
  return before - (count("aten::conv3d") + count("aten::conv_transpose3d"));
}

}  // namespace lumen::models
