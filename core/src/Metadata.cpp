#include "lumen/core/Metadata.h"

namespace lumen {

const char* toString(StackKind kind) {
  switch (kind) {
    case StackKind::Spatial: return "3d";
    case StackKind::Single2D: return "2d";
    case StackKind::TimeSeries2D: return "2d+t";
  }
  return "?";
}

}  // namespace lumen
