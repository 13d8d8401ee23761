#pragma once
// A 3D voxel buffer with its geometry. 2D images are volumes with one slice; cine and
// time series are stacks whose k axis is time (see VolumeInfo::stackKind).
//
// Volumes are move-only: pixel data is large and copies must be explicit (clone()).
// Share a loaded volume between threads as std::shared_ptr<const Volume>.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "lumen/core/Geometry.h"
#include "lumen/core/Result.h"

namespace lumen {

enum class PixelType : std::uint8_t { UInt8, Int16, UInt16, Float32, RGB8 };

struct Rgb8 {
  std::uint8_t r, g, b;
};
static_assert(sizeof(Rgb8) == 3, "RGB voxels are packed");

constexpr std::size_t bytesPerVoxel(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return 1;
    case PixelType::Int16: return 2;
    case PixelType::UInt16: return 2;
    case PixelType::Float32: return 4;
    case PixelType::RGB8: return 3;
  }
  return 0;
}
constexpr int componentCount(PixelType t) { return t == PixelType::RGB8 ? 3 : 1; }
const char* toString(PixelType t);

template <class T> struct PixelTypeOf;
template <> struct PixelTypeOf<std::uint8_t> { static constexpr PixelType value = PixelType::UInt8; };
template <> struct PixelTypeOf<std::int16_t> { static constexpr PixelType value = PixelType::Int16; };
template <> struct PixelTypeOf<std::uint16_t> { static constexpr PixelType value = PixelType::UInt16; };
template <> struct PixelTypeOf<float> { static constexpr PixelType value = PixelType::Float32; };
template <> struct PixelTypeOf<Rgb8> { static constexpr PixelType value = PixelType::RGB8; };

template <class T> struct TypeTag { using type = T; };

/// Calls fn(TypeTag<T>{}) with T the C++ type of `t`.
template <class Fn>
decltype(auto) visitPixelType(PixelType t, Fn&& fn) {
  switch (t) {
    case PixelType::UInt8: return fn(TypeTag<std::uint8_t>{});
    case PixelType::Int16: return fn(TypeTag<std::int16_t>{});
    case PixelType::UInt16: return fn(TypeTag<std::uint16_t>{});
    case PixelType::Float32: return fn(TypeTag<float>{});
    case PixelType::RGB8: return fn(TypeTag<Rgb8>{});
  }
  return fn(TypeTag<std::uint8_t>{});
}

/// Calls fn(TypeTag<T>{}) for the scalar types only (RGB excluded).
template <class Fn>
decltype(auto) visitScalarType(PixelType t, Fn&& fn) {
  switch (t) {
    case PixelType::UInt8: return fn(TypeTag<std::uint8_t>{});
    case PixelType::Int16: return fn(TypeTag<std::int16_t>{});
    case PixelType::UInt16: return fn(TypeTag<std::uint16_t>{});
    case PixelType::Float32:
    default: return fn(TypeTag<float>{});
  }
}

class Volume {
 public:
  Volume() = default;
  /// A moved-from volume is empty (no dangling pointer to voxels it no longer owns).
  Volume(Volume&& o) noexcept
      : type_(o.type_), geometry_(o.geometry_), owner_(std::move(o.owner_)), data_(std::exchange(o.data_, nullptr)) {
    o.geometry_ = {};
  }
  Volume& operator=(Volume&& o) noexcept {
    if (this != &o) {
      type_ = o.type_;
      geometry_ = o.geometry_;
      owner_ = std::move(o.owner_);
      data_ = std::exchange(o.data_, nullptr);
      o.geometry_ = {};
    }
    return *this;
  }
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  /// Allocates an uninitialised buffer. Fails with OutOfMemory / TooLarge instead of
  /// throwing, so a hostile header cannot crash the application.
  static Result<Volume> allocate(PixelType type, const ImageGeometry& geometry);
  /// Same, filled with zero.
  static Result<Volume> zeros(PixelType type, const ImageGeometry& geometry);
  /// Wraps memory owned elsewhere (e.g. a tensor); `owner` keeps it alive.
  static Volume wrap(PixelType type, const ImageGeometry& geometry, void* data,
                     std::shared_ptr<void> owner);

  Volume clone() const;
  /// A copy in another scalar type: rounded to the nearest integer and clamped to the
  /// type's range for integer types (e.g. a float result back to the input's int16 HU).
  /// RGB is not converted (an error).
  Result<Volume> convertTo(PixelType type) const;
  /// Another Volume over the same voxels (no copy) that keeps them alive: how a viewer
  /// shows a volume while a loader is still filling it.
  Volume share() const { return wrap(type_, geometry_, data_, owner_); }

  bool empty() const { return data_ == nullptr; }
  PixelType pixelType() const { return type_; }
  const ImageGeometry& geometry() const { return geometry_; }
  /// Changing the geometry must not change the size (the buffer stays as it is).
  void setGeometry(const ImageGeometry& g);
  const Size3& size() const { return geometry_.size; }

  std::size_t voxelCount() const { return geometry_.voxelCount(); }
  std::size_t byteSize() const { return voxelCount() * bytesPerVoxel(type_); }
  std::size_t sliceByteSize() const { return geometry_.sliceVoxelCount() * bytesPerVoxel(type_); }

  std::byte* bytes() { return static_cast<std::byte*>(data_); }
  const std::byte* bytes() const { return static_cast<const std::byte*>(data_); }

  template <class T> T* data() {
    checkType<T>();
    return static_cast<T*>(data_);
  }
  template <class T> const T* data() const {
    checkType<T>();
    return static_cast<const T*>(data_);
  }
  template <class T> T* slice(std::size_t k) { return data<T>() + k * geometry_.sliceVoxelCount(); }
  template <class T> const T* slice(std::size_t k) const {
    return data<T>() + k * geometry_.sliceVoxelCount();
  }

  std::size_t linearIndex(std::size_t i, std::size_t j, std::size_t k) const {
    return i + geometry_.size[0] * (j + geometry_.size[1] * k);
  }
  /// Scalar value at a voxel (RGB: luminance). For probes and tests, not for hot loops.
  double scalarAt(std::size_t i, std::size_t j, std::size_t k) const;

 private:
  template <class T> void checkType() const {
    if (PixelTypeOf<std::remove_const_t<T>>::value != type_) throwTypeMismatch();
  }
  [[noreturn]] void throwTypeMismatch() const;

  PixelType type_ = PixelType::UInt8;
  ImageGeometry geometry_;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
};

}  // namespace lumen
