#pragma once
// Classical CT denoising, offered next to the AI denoiser, and the noise estimate that
// chooses between them (the denoiser's model card gives, per noise level, which of the two
// does better on held-out CT).

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen::imaging {

/// The noise of a CT series in homogeneous soft tissue, in HU: per axial slice, the robust
/// SD (1.4826 x the median absolute deviation) of the difference to the 3 x 3 mean, corrected
/// for the mean's own share of white noise, over the pixels whose whole 7 x 7 neighbourhood
/// has a 7 x 7 mean within (-20, 100) HU (found in the mean so that heavy noise does not
/// break soft tissue up); the median over the slices with at least 2000 such pixels, of up to
/// 24 evenly spaced ones. The
/// denoiser's card reads its noise levels with this same function (lumen-classical-denoise
/// noise), so a series is placed among them consistently. A smooth kernel's noise reads
/// lower than its true SD (its grain is coarser than 3 x 3). Error when no slice has enough
/// soft tissue.
Result<double> estimateNoiseSd(const Volume& ct);

/// ITK's bilateral filter, axial slice by axial slice (what a 2D denoiser sees): Gaussian
/// weights of width `domainMm` in the plane and `rangeHu` in intensity. Float32 on the
/// input's grid. Cancellable between slices.
Result<Volume> bilateralDenoise(const Volume& ct, double domainMm, double rangeHu, const Progress& progress = {},
                                const CancelToken& cancel = {});

}  // namespace lumen::imaging
