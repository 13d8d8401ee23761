#pragma once
// Faster CPU kernels for 3D networks, swapped into a frozen TorchScript graph (private to
// models/). LibTorch 1.13 runs 3D convolutions of small batches and every transposed 3D
// convolution through its slow im2col path on the CPU; the replacements compute the same
// function with oneDNN:
//   lumen::conv3d            -> oneDNN convolution;
//   lumen::conv_transpose3d  -> for stride 2, kernel 3, padding 1, output padding 1 (the
//                               U-Net up-sampling), eight oneDNN convolutions, one per
//                               output parity ("sub-pixel" decomposition), interleaved;
//                               for fewer than 16 output channels one convolution with the
//                               parities packed as channels.
// Anything else falls back to ATen.

#include <torch/script.h>

#include <string>
#include <vector>

namespace lumen::models {

/// Rewrites conv3d / conv_transpose3d calls of a frozen module's forward graph. Returns the
/// number of calls rewritten (0 when oneDNN is unavailable).
int useFastCpuKernels(torch::jit::Module& frozen);

/// The replacements, exposed for tests.
torch::Tensor conv3dInSlabs(const torch::Tensor& input, const torch::Tensor& weight, const c10::optional<torch::Tensor>& bias,
                            c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, std::int64_t groups,
                            std::int64_t slabDepth);
torch::Tensor fastConv3d(const torch::Tensor& input, const torch::Tensor& weight, const c10::optional<torch::Tensor>& bias,
                         c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, std::int64_t groups);
torch::Tensor fastConvTranspose3d(const torch::Tensor& input, const torch::Tensor& weight,
                                  const c10::optional<torch::Tensor>& bias, c10::IntArrayRef stride,
                                  c10::IntArrayRef padding, c10::IntArrayRef outputPadding, std::int64_t groups,
                                  c10::IntArrayRef dilation);

}  // namespace lumen::models
