#pragma once
// What SliceView.cpp and SliceViewMeasure.cpp share (private to the 2D view).

class vtkTextProperty;

namespace lumen::gui::detail {

/// The view's text style: Arial, a shadow, grey `grey` (0..1).
void styleText(vtkTextProperty* p, int size, double grey = 0.86);

}  // namespace lumen::gui::detail
