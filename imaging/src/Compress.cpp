#include "lumen/imaging/Compress.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/dcmjpls/djrparam.h>
#include <openjpeg.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "DcmtkSupport.h"
#include "lumen/imaging/DicomFile.h"

namespace fs = std::filesystem;

namespace lumen::dicom {

const char* toString(LosslessSyntax s) {
  switch (s) {
    case LosslessSyntax::JpegLs: return "jpeg-ls";
    case LosslessSyntax::Jpeg2000: return "jpeg2000";
    case LosslessSyntax::Deflate: return "deflate";
  }
  return "deflate";
}

bool parseLosslessSyntax(const std::string& text, LosslessSyntax& out) {
  for (auto s : {LosslessSyntax::JpegLs, LosslessSyntax::Jpeg2000, LosslessSyntax::Deflate})
    if (text == toString(s)) {
      out = s;
      return true;
    }
  return false;
}

namespace {

void registerEncoders() {
  static std::once_flag once;
  std::call_once(once, [] { DJLSEncoderRegistration::registerCodecs(); });
}

// An OpenJPEG output stream into memory.
struct OutStream {
  std::vector<std::uint8_t> bytes;
  std::size_t pos = 0;
};
OPJ_SIZE_T writeFn(void* buf, OPJ_SIZE_T n, void* user) {
  auto* s = static_cast<OutStream*>(user);
  if (s->pos + n > s->bytes.size()) s->bytes.resize(s->pos + n);
  std::memcpy(s->bytes.data() + s->pos, buf, n);
  s->pos += n;
  return n;
}
OPJ_OFF_T skipFn(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<OutStream*>(user);
  if (n < 0 && static_cast<std::size_t>(-n) > s->pos) return -1;
  s->pos = static_cast<std::size_t>(static_cast<OPJ_OFF_T>(s->pos) + n);
  if (s->pos > s->bytes.size()) s->bytes.resize(s->pos);
  return n;
}
OPJ_BOOL seekFn(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<OutStream*>(user);
  if (n < 0) return OPJ_FALSE;
  s->pos = static_cast<std::size_t>(n);
  if (s->pos > s->bytes.size()) s->bytes.resize(s->pos);
  return OPJ_TRUE;
}

struct Layout {
  std::size_t rows = 0, cols = 0, samples = 1, frames = 1;
  int bitsAllocated = 0, bitsStored = 0, highBit = 0;
  bool isSigned = false, planar = false;
  std::size_t frameBytes() const { return rows * cols * samples * static_cast<std::size_t>(bitsAllocated / 8); }
};

// One frame as a reversible (5/3 wavelet, no colour transform) JPEG 2000 code stream.
Result<std::vector<std::uint8_t>> encodeJ2k(const std::uint8_t* frame, const Layout& l) {
  std::vector<opj_image_cmptparm_t> parms(l.samples);
  for (auto& p : parms) {
    std::memset(&p, 0, sizeof p);
    p.dx = p.dy = 1;
    p.w = static_cast<OPJ_UINT32>(l.cols);
    p.h = static_cast<OPJ_UINT32>(l.rows);
    p.prec = static_cast<OPJ_UINT32>(l.bitsStored);
    p.sgnd = l.isSigned ? 1 : 0;
  }
  std::unique_ptr<opj_image_t, void (*)(opj_image_t*)> image(
      opj_image_create(static_cast<OPJ_UINT32>(l.samples), parms.data(), l.samples == 1 ? OPJ_CLRSPC_GRAY : OPJ_CLRSPC_SRGB),
      opj_image_destroy);
  if (!image) return Error(ErrorCode::OutOfMemory, "JPEG 2000 image");
  image->x1 = static_cast<OPJ_UINT32>(l.cols);
  image->y1 = static_cast<OPJ_UINT32>(l.rows);
  const std::size_t n = l.rows * l.cols;
  const std::uint32_t mask = l.bitsStored >= 32 ? 0xFFFFFFFFu : ((1u << l.bitsStored) - 1u);
  const int shift = l.highBit + 1 - l.bitsStored;  // stored bits sit below the high bit
  for (std::size_t c = 0; c < l.samples; ++c) {
    OPJ_INT32* dst = image->comps[c].data;
    for (std::size_t p = 0; p < n; ++p) {
      const std::size_t index = l.planar ? c * n + p : p * l.samples + c;
      std::uint32_t raw = l.bitsAllocated == 8 ? frame[index]
                                               : static_cast<std::uint32_t>(frame[2 * index] | (frame[2 * index + 1] << 8));
      raw = (raw >> shift) & mask;
      std::int32_t v = static_cast<std::int32_t>(raw);
      if (l.isSigned && (raw >> (l.bitsStored - 1)) & 1u) v -= static_cast<std::int32_t>(1u << l.bitsStored);
      dst[p] = v;
    }
  }
  opj_cparameters_t params;
  opj_set_default_encoder_parameters(&params);
  params.tcp_numlayers = 1;
  params.tcp_rates[0] = 0;  // lossless
  params.cp_disto_alloc = 1;
  params.irreversible = 0;
  params.tcp_mct = 0;  // samples as stored (RGB stays RGB)
  int levels = 1;
  while (levels < 6 && (std::min(l.rows, l.cols) >> levels) >= 1) ++levels;
  params.numresolution = levels;
  std::unique_ptr<opj_codec_t, void (*)(opj_codec_t*)> codec(opj_create_compress(OPJ_CODEC_J2K), opj_destroy_codec);
  opj_set_error_handler(codec.get(), [](const char*, void*) {}, nullptr);
  opj_set_warning_handler(codec.get(), [](const char*, void*) {}, nullptr);
  opj_set_info_handler(codec.get(), [](const char*, void*) {}, nullptr);
  if (!opj_setup_encoder(codec.get(), &params, image.get())) return Error(ErrorCode::Internal, "JPEG 2000 encoder set-up failed");
  OutStream out;
  std::unique_ptr<opj_stream_t, void (*)(opj_stream_t*)> s(opj_stream_create(1 << 16, OPJ_FALSE), opj_stream_destroy);
  opj_stream_set_user_data(s.get(), &out, nullptr);
  opj_stream_set_write_function(s.get(), writeFn);
  opj_stream_set_skip_function(s.get(), skipFn);
  opj_stream_set_seek_function(s.get(), seekFn);
  if (!opj_start_compress(codec.get(), image.get(), s.get()) || !opj_encode(codec.get(), s.get()) ||
      !opj_end_compress(codec.get(), s.get()))
    return Error(ErrorCode::Internal, "JPEG 2000 encoding failed");
  s.reset();  // flushes
  if (out.bytes.size() % 2) out.bytes.push_back(0);  // fragments have even length
  return std::move(out.bytes);
}

}  // namespace

Result<CompressReport> compressFile(const fs::path& in, LosslessSyntax syntax, const fs::path& out) {
  initializeDicomLibrary();
  registerEncoders();
  const std::string where = in.string();
  DcmFileFormat ff;
  if (std::string why = loadDicomFile(ff, where); !why.empty()) return Error(ErrorCode::Corrupt, why, where);
  DcmDataset* ds = ff.getDataset();
  CompressReport report;
  std::error_code ec;
  report.fileBytesIn = fs::file_size(in, ec);
  const E_TransferSyntax original = ds->getOriginalXfer();
  const DcmXfer originalXfer(original);
  if (originalXfer.isEncapsulated() && (originalXfer.isLossy() || getString(ds, DCM_LossyImageCompression) == "01"))
    return Error(ErrorCode::Unsupported,
                 std::string("its pixels were compressed lossily (") + originalXfer.getXferName() +
                     "): stored as lossless they would still not be the acquired ones",
                 where);
  if (getString(ds, DCM_LossyImageCompression) == "01")
    return Error(ErrorCode::Unsupported, "its pixels were compressed lossily once (Lossy Image Compression 01)", where);
  if (ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
    return Error(ErrorCode::Unsupported, std::string("cannot decode its pixel data (") + originalXfer.getXferName() + ")", where);

  const bool hasPixels = ds->tagExists(DCM_PixelData);
  Layout l;
  if (hasPixels) {
    Uint16 v = 0;
    ds->findAndGetUint16(DCM_Rows, v), l.rows = v;
    ds->findAndGetUint16(DCM_Columns, v), l.cols = v;
    v = 1;
    ds->findAndGetUint16(DCM_SamplesPerPixel, v), l.samples = v;
    ds->findAndGetUint16(DCM_BitsAllocated, v), l.bitsAllocated = v;
    ds->findAndGetUint16(DCM_BitsStored, v), l.bitsStored = v;
    ds->findAndGetUint16(DCM_HighBit, v), l.highBit = v;
    v = 0;
    ds->findAndGetUint16(DCM_PixelRepresentation, v), l.isSigned = v == 1;
    v = 0;
    ds->findAndGetUint16(DCM_PlanarConfiguration, v), l.planar = v == 1;
    Sint32 frames = 1;
    if (ds->tagExistsWithValue(DCM_NumberOfFrames)) ds->findAndGetSint32(DCM_NumberOfFrames, frames);
    l.frames = static_cast<std::size_t>(std::max<Sint32>(1, frames));
    // Sizes from the header are checked against the data before they are multiplied.
    DcmElement* pe = nullptr;
    const std::uint64_t have = ds->findAndGetElement(DCM_PixelData, pe).good() && pe ? pe->getLength() : 0;
    if (l.frameBytes() == 0 || l.frames > have / l.frameBytes())
      return Error(ErrorCode::Corrupt, "its pixel data is shorter than Rows x Columns x frames says", where);
    report.pixelBytes = l.frameBytes() * l.frames;
  }
  if (syntax != LosslessSyntax::Deflate) {
    if (!hasPixels) return Error(ErrorCode::Unsupported, "no pixel data to compress (deflate takes any data set)", where);
    if (l.bitsAllocated != 8 && l.bitsAllocated != 16)
      return Error(ErrorCode::Unsupported,
                   std::to_string(l.bitsAllocated) + " bits allocated: JPEG-LS and JPEG 2000 hold 8 or 16 (deflate takes it)", where);
    if (l.bitsStored < 2 || l.bitsStored > l.bitsAllocated || l.highBit + 1 < l.bitsStored)
      return Error(ErrorCode::Corrupt, "Bits Stored / High Bit are inconsistent", where);
    if (l.samples != 1 && l.samples != 3) return Error(ErrorCode::Unsupported, std::to_string(l.samples) + " samples per pixel", where);
  }

  if (syntax != LosslessSyntax::Deflate) {
    // Samples must lie within Bits Stored: those codecs keep only those bits, and the JPEG-LS
    // library asserts (aborts the process) on a sample that does not fit.
    DcmElement* e = nullptr;
    Uint8* native = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e || e->getUint8Array(native).bad() || !native ||
        e->getLength() < report.pixelBytes)
      return Error(ErrorCode::Corrupt, "its pixel data is shorter than its size says", where);
    if (l.bitsAllocated == 16) {
      const int shift = l.highBit + 1 - l.bitsStored;
      const std::uint32_t mask = (1u << l.bitsStored) - 1u;
      for (std::size_t i = 0; i < report.pixelBytes / 2; ++i) {
        const std::uint32_t raw = static_cast<std::uint32_t>(native[2 * i] | (native[2 * i + 1] << 8));
        const std::uint32_t stored = (raw >> shift) & mask;
        if (raw == stored << shift) continue;
        // A negative value with its sign extended above the stored bits is common (CT) and
        // means the same value: the JPEG 2000 encoder sign-extends from Bits Stored itself.
        const bool signExtended = l.isSigned && shift == 0 && ((stored >> (l.bitsStored - 1)) & 1u) &&
                                  raw == ((stored | ~mask) & 0xFFFFu);
        if (signExtended && syntax == LosslessSyntax::Jpeg2000) continue;
        return Error(ErrorCode::Inconsistent,
                     "a pixel uses bits outside Bits Stored (" + std::to_string(l.bitsStored) + " bits, high bit " +
                         std::to_string(l.highBit) + "): it would not survive " + toString(syntax) +
                         (signExtended ? "; jpeg2000 and deflate keep it" : "; deflate keeps it"),
                     where);
      }
    }
  }

  E_TransferSyntax target = EXS_DeflatedLittleEndianExplicit;
  DJLSRepresentationParameter jpegLsParams(2, OFTrue);  // lossless
  if (syntax == LosslessSyntax::JpegLs) {
    target = EXS_JPEGLSLossless;
    if (ds->chooseRepresentation(target, &jpegLsParams).bad() || !ds->canWriteXfer(target))
      return Error(ErrorCode::Unsupported, "JPEG-LS cannot encode this pixel layout", where);
  } else if (syntax == LosslessSyntax::Jpeg2000) {
    target = EXS_JPEG2000LosslessOnly;
    DcmElement* e = nullptr;
    const Uint8* native = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e || e->getUint8Array(const_cast<Uint8*&>(native)).bad() || !native ||
        e->getLength() < report.pixelBytes)
      return Error(ErrorCode::Corrupt, "its pixel data is shorter than its size says", where);
    auto* seq = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
    auto* offsetTable = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
    seq->insert(offsetTable);
    DcmOffsetList offsets;
    for (std::size_t f = 0; f < l.frames; ++f) {
      auto frame = encodeJ2k(native + f * l.frameBytes(), l);
      if (!frame) {
        delete seq;
        return Error(frame.error().code, frame.error().message + " (frame " + std::to_string(f + 1) + ")", where);
      }
      if (seq->storeCompressedFrame(offsets, frame->data(), static_cast<Uint32>(frame->size()), 0).bad()) {
        delete seq;
        return Error(ErrorCode::Internal, "cannot store frame " + std::to_string(f + 1), where);
      }
    }
    offsetTable->createOffsetTable(offsets);
    auto* pd = static_cast<DcmPixelData*>(e);
    pd->putOriginalRepresentation(target, nullptr, seq);
    if (l.samples == 3) ds->putAndInsertUint16(DCM_PlanarConfiguration, 0);  // encapsulated frames are interleaved
    // The code stream holds the stored bits as values: the high bit is their top one.
    ds->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(l.bitsStored - 1));
  }
  if (syntax != LosslessSyntax::Deflate) {
    // The compressed size of the pixels: the fragments written.
    DcmElement* e = nullptr;
    ds->findAndGetElement(DCM_PixelData, e);
    DcmPixelSequence* seq = nullptr;
    const DcmRepresentationParameter* rp = syntax == LosslessSyntax::JpegLs ? &jpegLsParams : nullptr;
    if (auto* pd = dynamic_cast<DcmPixelData*>(e); pd && pd->getEncapsulatedRepresentation(target, rp, seq).good() && seq)
      for (unsigned long i = 1; i < seq->card(); ++i) {
        DcmPixelItem* item = nullptr;
        if (seq->getItem(item, i).good() && item) report.compressedBytes += item->getLength();
      }
  }
  ff.getMetaInfo()->findAndDeleteElement(DCM_TransferSyntaxUID);
  if (auto st = saveDicomDurably(ff, out, target); !st) return st.error();
  report.fileBytesOut = fs::file_size(out, ec);
  if (syntax == LosslessSyntax::Deflate) report.compressedBytes = report.fileBytesOut;
  return report;
}

}  // namespace lumen::dicom
