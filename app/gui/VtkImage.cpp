#include "VtkImage.h"

#include <vtkFloatArray.h>
#include <vtkImageData.h>
#include <vtkMatrix4x4.h>
#include <vtkPointData.h>
#include <vtkShortArray.h>
#include <vtkUnsignedCharArray.h>
#include <vtkUnsignedShortArray.h>

namespace lumen::gui {

namespace {
template <class ArrayT, class T>
vtkSmartPointer<vtkDataArray> wrapArray(const T* data, vtkIdType tuples, int components) {
  auto a = vtkSmartPointer<ArrayT>::New();
  a->SetNumberOfComponents(components);
  // save = 1: VTK never frees the buffer; the Volume owns it.
  a->SetVoidArray(const_cast<T*>(data), tuples * components, 1);
  a->SetName("voxels");
  return a;
}
}  // namespace

VtkImage wrapForVtk(std::shared_ptr<const Volume> volume) {
  VtkImage out;
  out.keepAlive = volume;
  const ImageGeometry& g = volume->geometry();
  out.image = vtkSmartPointer<vtkImageData>::New();
  out.image->SetDimensions(static_cast<int>(g.size[0]), static_cast<int>(g.size[1]), static_cast<int>(g.size[2]));
  out.image->SetSpacing(g.spacingMm.x, g.spacingMm.y, g.spacingMm.z);
  out.image->SetOrigin(0, 0, 0);
  const auto n = static_cast<vtkIdType>(volume->voxelCount());
  vtkSmartPointer<vtkDataArray> arr;
  switch (volume->pixelType()) {
    case PixelType::UInt8: arr = wrapArray<vtkUnsignedCharArray>(volume->data<std::uint8_t>(), n, 1); break;
    case PixelType::Int16: arr = wrapArray<vtkShortArray>(volume->data<std::int16_t>(), n, 1); break;
    case PixelType::UInt16: arr = wrapArray<vtkUnsignedShortArray>(volume->data<std::uint16_t>(), n, 1); break;
    case PixelType::Float32: arr = wrapArray<vtkFloatArray>(volume->data<float>(), n, 1); break;
    case PixelType::RGB8:
      arr = wrapArray<vtkUnsignedCharArray>(reinterpret_cast<const std::uint8_t*>(volume->data<Rgb8>()), n, 3);
      break;
  }
  out.image->GetPointData()->SetScalars(arr);
  out.matrix = vtkSmartPointer<vtkMatrix4x4>::New();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) out.matrix->SetElement(r, c, g.direction(r, c));
    out.matrix->SetElement(r, 3, g.originLps[r]);
  }
  return out;
}

void markModified(const VtkImage& image) {
  if (!image.image) return;
  image.image->GetPointData()->GetScalars()->Modified();
  image.image->Modified();
}

}  // namespace lumen::gui
