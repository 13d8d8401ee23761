#pragma once
// Lumen volumes as VTK images, without copying voxels. VTK draws in LPS world
// coordinates: the image itself is axis aligned with its spacing, and the prop's user
// matrix carries direction and origin (so oblique acquisitions are placed correctly by
// every mapper, including those that ignore vtkImageData's own direction).

#include <memory>

#include <vtkSmartPointer.h>

#include "lumen/core/Volume.h"

class vtkImageData;
class vtkMatrix4x4;

namespace lumen::gui {

struct VtkImage {
  vtkSmartPointer<vtkImageData> image;   // shares the volume's buffer
  vtkSmartPointer<vtkMatrix4x4> matrix;  // index space (scaled by spacing) -> LPS
  std::shared_ptr<const Volume> keepAlive;
};

/// Wraps the volume (no copy); the returned object keeps the volume alive.
VtkImage wrapForVtk(std::shared_ptr<const Volume> volume);

/// Tells VTK that voxels changed (slices arriving while loading).
void markModified(const VtkImage& image);

}  // namespace lumen::gui
