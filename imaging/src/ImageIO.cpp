#include "lumen/imaging/ImageIO.h"

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>
#include <itkRGBPixel.h>

#include <mutex>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <system_error>

#include <stdlib.h>

namespace lumen::io {

namespace fs = std::filesystem;

namespace {

// Explicit registration: no dependency on ITK's generated factory-registration headers.
void registerImageIO() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
  });
}

std::string lowerName(const fs::path& p) {
  std::string s = p.filename().string();
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <class T> struct ItkPixel { using type = T; };
template <> struct ItkPixel<Rgb8> { using type = itk::RGBPixel<unsigned char>; };

template <class ImageT>
void setGeometry(ImageT* img, const ImageGeometry& g) {
  typename ImageT::RegionType region;
  typename ImageT::SpacingType spacing;
  typename ImageT::PointType origin;
  typename ImageT::DirectionType direction;
  for (unsigned a = 0; a < 3; ++a) {
    region.SetSize(a, g.size[a]);
    region.SetIndex(a, 0);
    spacing[a] = g.spacingMm[a];
    origin[a] = g.originLps[a];
    for (unsigned b = 0; b < 3; ++b) direction(a, b) = g.direction(a, b);
  }
  img->SetRegions(region);
  img->SetSpacing(spacing);
  img->SetOrigin(origin);
  img->SetDirection(direction);
}

template <class ImageT>
ImageGeometry geometryOf(const ImageT* img) {
  ImageGeometry g;
  const auto size = img->GetLargestPossibleRegion().GetSize();
  for (unsigned a = 0; a < 3; ++a) {
    g.size[a] = size[a];
    g.spacingMm[a] = img->GetSpacing()[a];
    g.originLps[a] = img->GetOrigin()[a];
    for (unsigned b = 0; b < 3; ++b) g.direction(a, b) = img->GetDirection()(a, b);
  }
  return g;
}

template <class T>
Status writeTyped(const Volume& v, const fs::path& path, bool compress) {
  using P = typename ItkPixel<T>::type;
  static_assert(sizeof(P) == sizeof(T), "pixel layouts must match");
  using ImageT = itk::Image<P, 3>;
  auto img = ImageT::New();
  setGeometry(img.GetPointer(), v.geometry());
  // Wrap Lumen's buffer: ITK must neither copy nor free it.
  img->GetPixelContainer()->SetImportPointer(reinterpret_cast<P*>(const_cast<std::byte*>(v.bytes())),
                                            v.voxelCount(), false);
  auto writer = itk::ImageFileWriter<ImageT>::New();
  writer->SetFileName(path.string());
  writer->SetInput(img);
  writer->SetUseCompression(compress);
  writer->Update();
  return {};
}

template <class T>
Result<Volume> readTyped(const fs::path& path, PixelType type) {
  using P = typename ItkPixel<T>::type;
  using ImageT = itk::Image<P, 3>;
  auto reader = itk::ImageFileReader<ImageT>::New();
  reader->SetFileName(path.string());
  reader->Update();
  typename ImageT::Pointer img = reader->GetOutput();
  img->DisconnectPipeline();
  ImageGeometry g = geometryOf(img.GetPointer());
  void* data = img->GetBufferPointer();
  // The ITK image owns the buffer; the Volume keeps it alive without copying.
  std::shared_ptr<void> owner(data, [keep = img](void*) mutable { keep = nullptr; });
  return Volume::wrap(type, g, data, std::move(owner));
}

}  // namespace

ImageFormat formatFromPath(const fs::path& path) {
  const std::string n = lowerName(path);
  if (endsWith(n, ".nii") || endsWith(n, ".nii.gz")) return ImageFormat::Nifti;
  if (endsWith(n, ".nrrd") || endsWith(n, ".nhdr")) return ImageFormat::Nrrd;
  if (endsWith(n, ".mha") || endsWith(n, ".mhd")) return ImageFormat::MetaImage;
  return ImageFormat::Unknown;
}

Status writeImage(const Volume& volume, const fs::path& path) {
  registerImageIO();
  const ImageFormat fmt = formatFromPath(path);
  if (fmt == ImageFormat::Unknown)
    return Error(ErrorCode::InvalidArgument, "unknown output format (use .nii, .nii.gz, .nrrd or .mha)", path.string());
  if (volume.empty()) return Error(ErrorCode::InvalidArgument, "nothing to write: the volume is empty", path.string());
  std::string why;
  if (!volume.geometry().isValid(&why)) return Error(ErrorCode::InvalidArgument, "invalid geometry: " + why, path.string());
  const std::string n = lowerName(path);
  const bool compress = endsWith(n, ".gz") || fmt == ImageFormat::Nrrd;

  // Write next to the target, then rename: a crash leaves the old file (if any) intact.
  // The temporary keeps the real extension so ITK picks the right writer.
  const fs::path tmp = path.parent_path() / (".lumen-tmp-" + path.filename().string());
  try {
    Status s = visitPixelType(volume.pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      return writeTyped<T>(volume, tmp, compress);
    });
    if (!s) return s;
  } catch (const itk::ExceptionObject& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, std::string("cannot write image: ") + e.GetDescription(), path.string());
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, std::string("cannot write image: ") + e.what(), path.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, "cannot move the written file into place: " + ec.message(), path.string());
  }
  return {};
}

namespace {
// Writes `fill` through a temporary beside `path`, renamed into place when complete.
template <class Fill>
Status writeAtomically(const fs::path& path, Fill fill) {
  const fs::path tmp = path.parent_path() / (".lumen-tmp-" + path.filename().string());
  try {
    if (Status s = fill(tmp); !s) return s;
  } catch (const itk::ExceptionObject& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, std::string("cannot write image: ") + e.GetDescription(), path.string());
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, std::string("cannot write image: ") + e.what(), path.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, "cannot move the written file into place: " + ec.message(), path.string());
  }
  return {};
}
}  // namespace

Status writeChannels(const std::vector<Volume>& channels, const fs::path& path) {
  registerImageIO();
  const ImageFormat fmt = formatFromPath(path);
  if (fmt == ImageFormat::Unknown)
    return Error(ErrorCode::InvalidArgument, "unknown output format (use .nii, .nii.gz, .nrrd or .mha)", path.string());
  if (channels.empty()) return Error(ErrorCode::InvalidArgument, "nothing to write: no channels", path.string());
  const ImageGeometry& g = channels.front().geometry();
  for (const auto& c : channels)
    if (c.pixelType() != PixelType::UInt8 || !sameGrid(c.geometry(), g, 1e-6))
      return Error(ErrorCode::InvalidArgument, "channels must be 8-bit volumes on one grid", path.string());
  const std::string n = lowerName(path);
  const bool compress = endsWith(n, ".gz") || fmt == ImageFormat::Nrrd;
  return writeAtomically(path, [&](const fs::path& tmp) -> Status {
    using ImageT = itk::Image<std::uint8_t, 4>;
    auto img = ImageT::New();
    ImageT::RegionType region;
    ImageT::SpacingType spacing;
    ImageT::PointType origin;
    ImageT::DirectionType direction;
    direction.SetIdentity();
    for (unsigned a = 0; a < 3; ++a) {
      region.SetSize(a, g.size[a]);
      spacing[a] = g.spacingMm[a];
      origin[a] = g.originLps[a];
      for (unsigned b = 0; b < 3; ++b) direction(a, b) = g.direction(a, b);
    }
    region.SetSize(3, channels.size());
    spacing[3] = 1.0;
    origin[3] = 0.0;
    img->SetRegions(region);
    img->SetSpacing(spacing);
    img->SetOrigin(origin);
    img->SetDirection(direction);
    img->Allocate();
    std::uint8_t* out = img->GetBufferPointer();
    for (std::size_t c = 0; c < channels.size(); ++c)
      std::copy(channels[c].bytes(), channels[c].bytes() + channels[c].byteSize(),
                reinterpret_cast<std::byte*>(out) + c * channels[c].byteSize());
    auto writer = itk::ImageFileWriter<ImageT>::New();
    writer->SetFileName(tmp.string());
    writer->SetInput(img);
    writer->SetUseCompression(compress);
    writer->Update();
    return {};
  });
}

namespace {
// niftilib resolves "x.nii.gz" to "x.nii" (and the reverse) when both exist, so it may
// read another file than the one asked for. Read such a file through a link with no
// siblings instead.
struct NiftiAlias {
  fs::path dir;
  fs::path link;
  ~NiftiAlias() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

bool hasNiftiSibling(const fs::path& path) {
  const std::string n = lowerName(path);
  std::error_code ec;
  if (endsWith(n, ".nii.gz")) {
    const std::string s = path.string();
    return fs::exists(s.substr(0, s.size() - 3), ec);
  }
  if (endsWith(n, ".nii")) return fs::exists(path.string() + ".gz", ec);
  return false;
}
}  // namespace

Result<Volume> readImage(const fs::path& path) {
  registerImageIO();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Error(ErrorCode::NotFound, "no such file", path.string());
  NiftiAlias alias;
  std::string p = path.string();
  if (formatFromPath(path) == ImageFormat::Nifti && hasNiftiSibling(path)) {
    char tmpl[] = "/tmp/lumen-nifti-XXXXXX";
    if (!mkdtemp(tmpl)) return Error(ErrorCode::Io, "cannot create a temporary folder", path.string());
    alias.dir = tmpl;
    alias.link = alias.dir / (endsWith(lowerName(path), ".gz") ? "image.nii.gz" : "image.nii");
    fs::create_symlink(fs::absolute(path), alias.link, ec);
    if (ec) return Error(ErrorCode::Io, "cannot create a temporary link: " + ec.message(), path.string());
    p = alias.link.string();
  }
  const std::string shown = path.string();
  try {
    auto io = itk::ImageIOFactory::CreateImageIO(p.c_str(), itk::CommonEnums::IOFileMode::ReadMode);
    if (!io) return Error(ErrorCode::Unsupported, "not a readable image format (NIfTI, NRRD, MetaImage)", shown);
    io->SetFileName(p);
    io->ReadImageInformation();
    const unsigned dims = io->GetNumberOfDimensions();
    if (dims > 3) {
      for (unsigned d = 3; d < dims; ++d)
        if (io->GetDimensions(d) > 1) return Error(ErrorCode::Unsupported, "images with more than 3 dimensions are not supported", shown);
    }
    const auto comps = io->GetNumberOfComponents();
    const auto ct = io->GetComponentType();
    using C = itk::CommonEnums::IOComponent;
    if (comps == 3 && ct == C::UCHAR) return readTyped<Rgb8>(p, PixelType::RGB8);
    if (comps != 1) {
      std::ostringstream s;
      s << "images with " << comps << " components per voxel are not supported";
      return Error(ErrorCode::Unsupported, s.str(), shown);
    }
    switch (ct) {
      case C::UCHAR: return readTyped<std::uint8_t>(p, PixelType::UInt8);
      case C::SHORT: return readTyped<std::int16_t>(p, PixelType::Int16);
      case C::USHORT: return readTyped<std::uint16_t>(p, PixelType::UInt16);
      default: return readTyped<float>(p, PixelType::Float32);
    }
  } catch (const itk::ExceptionObject& e) {
    return Error(ErrorCode::Corrupt, std::string("cannot read image: ") + e.GetDescription(), shown);
  } catch (const std::exception& e) {
    return Error(ErrorCode::Corrupt, std::string("cannot read image: ") + e.what(), shown);
  }
}

}  // namespace lumen::io
