#pragma once
// The voxel grid of a volume in patient space. LPS millimetres, as in DICOM and ITK.
//
// Index axes: i = column (fastest in memory), j = row, k = slice. The physical position of
// the centre of voxel (i, j, k) is  originLps + direction * diag(spacingMm) * (i, j, k).
// Column c of `direction` is the unit vector, in LPS, along which index axis c increases.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "lumen/core/Math.h"

namespace lumen {

using Size3 = std::array<std::size_t, 3>;

struct ImageGeometry {
  Size3 size{0, 0, 0};
  Vec3 spacingMm{1.0, 1.0, 1.0};
  Vec3 originLps{0.0, 0.0, 0.0};
  Mat3 direction = Mat3::identity();

  std::size_t voxelCount() const { return size[0] * size[1] * size[2]; }
  std::size_t sliceVoxelCount() const { return size[0] * size[1]; }

  /// direction * diag(spacing): maps an index step to a physical step (mm, LPS).
  Mat3 indexToPhysical() const { return direction * Mat3::diagonal(spacingMm); }

  Vec3 ijkToLps(const Vec3& ijk) const { return originLps + indexToPhysical() * ijk; }
  /// Continuous index of a physical point. Requires isValid().
  Vec3 lpsToIjk(const Vec3& lps) const;

  /// Physical position of the volume's centre.
  Vec3 centerLps() const;

  /// Finite values, positive spacing, non-degenerate direction. On failure `why` (when
  /// given) says what is wrong, in words a user can act on.
  bool isValid(std::string* why = nullptr) const;
};

/// True when both grids have the same size and their voxel centres coincide within
/// `toleranceMm` everywhere (checked at the eight corners).
bool sameGrid(const ImageGeometry& a, const ImageGeometry& b, double toleranceMm = 1e-3);

/// Three letters naming, for each index axis, the patient direction it points towards
/// (L/R, P/A, S/I): e.g. "LPS" for a standard axial DICOM stack. Letters follow nibabel's
/// convention (the direction of increasing index), in LPS terms.
std::string orientationCode(const Mat3& direction);

/// True when any axis deviates from the nearest patient axis by more than `toleranceDeg`.
bool isOblique(const Mat3& direction, double toleranceDeg = 0.5);

/// Letter of the patient direction a unit vector (LPS) points to most: one of L R P A S I.
char dominantDirectionLetter(const Vec3& lps);

/// Orthonormalise a direction matrix (Gram-Schmidt in column order), keeping handedness of
/// the input. Used to clean DICOM cosines that are unit-length only to 5 decimals.
Mat3 orthonormalized(const Mat3& direction);

// ---- The one pair of conversions between LPS (inside Lumen) and RAS (NIfTI, models) ----

/// Point or vector from LPS to RAS (and back: the flip is its own inverse).
inline Vec3 lpsToRas(const Vec3& p) { return {-p.x, -p.y, p.z}; }
inline Vec3 rasToLps(const Vec3& p) { return {-p.x, -p.y, p.z}; }

/// 4x4 row-major affine mapping (i, j, k, 1) to RAS mm: the NIfTI / nibabel affine.
std::array<double, 16> ijkToRasAffine(const ImageGeometry& g);

}  // namespace lumen
