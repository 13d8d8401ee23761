#pragma once
// Label tools that need ITK or a distance transform, applied through a LabelEditor (so
// each is one undoable step): region growing from a click (ITK's connected threshold and
// confidence connected filters), interpolation between slices drawn a few slices apart,
// smoothing. Every result stays on the series grid.

#include "lumen/core/LabelEditor.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen::seg {

using Change = LabelEditor::Change;

/// Voxels face-connected to the seed whose values lie in `range` become `label`: the
/// region of ITK's ConnectedThresholdImageFilter (core's connectedRegion, tested equal to
/// it). `overwrite` false: other labels are kept. A seed outside the grid or outside the
/// range is an error saying so.
Result<Change> growConnected(LabelEditor& editor, const Volume& image, const Vec3& seedLps, IntensityRange range,
                             int label, bool overwrite = false);

/// ITK's ConfidenceConnectedImageFilter: grows from the seed with the range mean +/-
/// multiplier x SD of the current region, re-estimated `iterations` times, starting from
/// the neighbourhood of `initialRadius` voxels around the seed.
Result<Change> growConfident(LabelEditor& editor, const Volume& image, const Vec3& seedLps, double multiplier,
                             int iterations, int initialRadius, int label, bool overwrite = false);

/// Fills the slices between drawn slices of `label` across index axis `axis` (0, 1, 2):
/// shape-based interpolation, the zero level of the linear blend of the two nearest drawn
/// slices' signed distance maps (in mm). Slices that hold the label are left as drawn;
/// other labels are not overwritten. Two discs give the cone between them.
Result<Change> interpolateSlices(LabelEditor& editor, int label, int axis);

/// Median smoothing of `label`'s mask with a radius in mm (ITK's BinaryMedianImageFilter):
/// removes spikes and fills pits smaller than the radius. Other labels are kept.
Result<Change> smoothLabel(LabelEditor& editor, int label, double radiusMm);

}  // namespace lumen::seg
