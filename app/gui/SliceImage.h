#pragma once
// A slice of a volume as a QImage, windowed: study-browser thumbnails and tests that
// compare what the viewer shows with what it should show.

#include <QImage>

#include "ViewModel.h"

namespace lumen::gui {

/// Slice k of the volume (index space, rows top to bottom) mapped through the window
/// (grey) or as colour (RGB volumes).
QImage sliceImage(const Volume& v, std::size_t k, const WindowLevel& wl, bool invert = false);

/// A study-browser thumbnail: the middle image of a series (first frame of the middle
/// file), square, `size` pixels. A null image when nothing can be decoded.
QImage seriesThumbnail(const QStringList& files, int size);

/// The tile a series of results gets instead (it has no image to show): what it is ("SEG",
/// "SR", "PDF" for an Encapsulated PDF...) in words. A null image for an image modality.
QImage resultThumbnail(const QString& modality, int size);

}  // namespace lumen::gui
