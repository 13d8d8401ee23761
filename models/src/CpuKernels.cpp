#include "CpuKernels.h"

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

torch::Tensor fastConv3d(const torch::Tensor& input, const torch::Tensor& weight, const c10::optional<torch::Tensor>& bias,
                         c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, std::int64_t groups) {
  if (!oneDnnUsable(input, weight) || input.size(0) == 0)
    return at::conv3d(input, weight, bias, stride, padding, dilation, groups);
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
