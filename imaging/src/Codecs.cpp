#include "Codecs.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <openjpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>

#include "DcmtkSupport.h"
#include "lumen/imaging/DicomFile.h"

namespace lumen::dicom {

namespace {

Result<std::vector<std::uint8_t>> concat(DcmPixelSequence& seq, unsigned long first, unsigned long last,
                                         const std::string& path) {
  std::vector<std::uint8_t> out;
  for (unsigned long i = first; i < last; ++i) {
    DcmPixelItem* item = nullptr;
    if (seq.getItem(item, i).bad() || !item) return Error(ErrorCode::Corrupt, "missing pixel data fragment", path);
    Uint8* p = nullptr;
    if (item->getUint8Array(p).bad()) return Error(ErrorCode::Corrupt, "unreadable pixel data fragment", path);
    if (p) out.insert(out.end(), p, p + item->getLength());
  }
  return out;
}

bool startsCodeStream(DcmPixelSequence& seq, unsigned long i) {
  DcmPixelItem* item = nullptr;
  Uint8* p = nullptr;
  if (seq.getItem(item, i).bad() || !item || item->getLength() < 4 || item->getUint8Array(p).bad() || !p) return false;
  const bool j2k = p[0] == 0xFF && p[1] == 0x4F && p[2] == 0xFF && p[3] == 0x51;  // SOC, SIZ
  const bool jp2 = item->getLength() >= 12 && p[4] == 'j' && p[5] == 'P' && p[6] == ' ' && p[7] == ' ';
  return j2k || jp2;
}

// In-memory OpenJPEG stream.
struct MemoryStream {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
};

OPJ_SIZE_T readFn(void* buf, OPJ_SIZE_T n, void* user) {
  auto* m = static_cast<MemoryStream*>(user);
  if (m->pos >= m->size) return static_cast<OPJ_SIZE_T>(-1);
  const std::size_t k = std::min<std::size_t>(n, m->size - m->pos);
  std::memcpy(buf, m->data + m->pos, k);
  m->pos += k;
  return k;
}
OPJ_OFF_T skipFn(OPJ_OFF_T n, void* user) {
  auto* m = static_cast<MemoryStream*>(user);
  if (n < 0) {
    const std::size_t back = std::min<std::size_t>(static_cast<std::size_t>(-n), m->pos);
    m->pos -= back;
    return -static_cast<OPJ_OFF_T>(back);
  }
  const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(n), m->size - m->pos);
  m->pos += k;
  return static_cast<OPJ_OFF_T>(k);
}
OPJ_BOOL seekFn(OPJ_OFF_T n, void* user) {
  auto* m = static_cast<MemoryStream*>(user);
  if (n < 0 || static_cast<std::size_t>(n) > m->size) return OPJ_FALSE;
  m->pos = static_cast<std::size_t>(n);
  return OPJ_TRUE;
}
void messageFn(const char* msg, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->empty() && msg) {
    *s = msg;
    while (!s->empty() && (s->back() == '\n' || s->back() == ' ')) s->pop_back();
  }
}

}  // namespace

Result<std::vector<std::uint8_t>> encapsulatedFrame(DcmDataset& ds, DcmPixelData& pixel, const FileInfo& f,
                                                    std::uint32_t frame) {
  DcmPixelSequence* seq = nullptr;
  const E_TransferSyntax xs = DcmXfer(f.transferSyntaxUid.c_str()).getXfer();
  (void)ds;
  if (pixel.getEncapsulatedRepresentation(xs, nullptr, seq).bad() || !seq || seq->card() < 2)
    return Error(ErrorCode::Corrupt, "encapsulated pixel data has no fragments", f.path);
  const unsigned long fragments = seq->card() - 1;  // item 0 is the basic offset table
  if (f.numberOfFrames == 1) return concat(*seq, 1, seq->card(), f.path);
  if (fragments == f.numberOfFrames) return concat(*seq, frame + 1, frame + 2, f.path);

  // Several fragments per frame: the basic offset table says where each frame starts.
  std::vector<unsigned long> starts;
  DcmPixelItem* bot = nullptr;
  Uint8* botData = nullptr;
  if (seq->getItem(bot, 0).good() && bot && bot->getLength() == 4u * f.numberOfFrames &&
      bot->getUint8Array(botData).good() && botData) {
    std::uint64_t offset = 0;  // of each fragment's item tag, relative to the first fragment
    std::size_t next = 0;
    for (unsigned long i = 1; i < seq->card() && next < f.numberOfFrames; ++i) {
      std::uint32_t want;
      std::memcpy(&want, botData + 4 * next, 4);
      if (offset == want) {
        starts.push_back(i);
        ++next;
      }
      DcmPixelItem* item = nullptr;
      if (seq->getItem(item, i).bad() || !item) break;
      offset += 8u + item->getLength();
    }
    if (starts.size() != f.numberOfFrames) starts.clear();
  }
  // No usable table: a JPEG 2000 frame starts where a code stream starts.
  if (starts.empty())
    for (unsigned long i = 1; i < seq->card(); ++i)
      if (startsCodeStream(*seq, i)) starts.push_back(i);
  if (starts.size() != f.numberOfFrames || frame >= starts.size()) {
    std::ostringstream s;
    s << "cannot find frame " << (frame + 1) << " among " << fragments << " fragments";
    return Error(ErrorCode::Corrupt, s.str(), f.path);
  }
  const unsigned long end = frame + 1 < starts.size() ? starts[frame + 1] : seq->card();
  return concat(*seq, starts[frame], end, f.path);
}

Result<J2kFrame> decodeJpeg2000(const std::vector<std::uint8_t>& stream, const FileInfo& f, std::uint8_t* dst,
                                std::size_t bytes) {
  if (stream.size() < 12) return Error(ErrorCode::Corrupt, "JPEG 2000 code stream is empty", f.path);
  const bool jp2 = stream[4] == 'j' && stream[5] == 'P';
  std::unique_ptr<opj_codec_t, void (*)(opj_codec_t*)> codec(opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K),
                                                              opj_destroy_codec);
  std::string error;
  opj_set_error_handler(codec.get(), messageFn, &error);
  opj_set_warning_handler(codec.get(), [](const char*, void*) {}, nullptr);
  opj_set_info_handler(codec.get(), [](const char*, void*) {}, nullptr);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  if (!opj_setup_decoder(codec.get(), &params)) return Error(ErrorCode::Internal, "JPEG 2000 decoder set-up failed", f.path);
  opj_codec_set_threads(codec.get(), 1);  // frames are already decoded in parallel

  MemoryStream mem{stream.data(), stream.size()};
  std::unique_ptr<opj_stream_t, void (*)(opj_stream_t*)> s(opj_stream_create(1 << 16, OPJ_TRUE), opj_stream_destroy);
  opj_stream_set_user_data(s.get(), &mem, nullptr);
  opj_stream_set_user_data_length(s.get(), stream.size());
  opj_stream_set_read_function(s.get(), readFn);
  opj_stream_set_skip_function(s.get(), skipFn);
  opj_stream_set_seek_function(s.get(), seekFn);

  opj_image_t* raw = nullptr;
  if (!opj_read_header(s.get(), codec.get(), &raw) || !raw)
    return Error(ErrorCode::Corrupt, "invalid JPEG 2000 header" + (error.empty() ? "" : " (" + error + ")"), f.path);
  std::unique_ptr<opj_image_t, void (*)(opj_image_t*)> image(raw, opj_image_destroy);
  // Check the declared size before decoding: a hostile stream must not allocate more.
  if (image->numcomps != f.samplesPerPixel || image->x1 - image->x0 != f.columns || image->y1 - image->y0 != f.rows) {
    std::ostringstream m;
    m << "JPEG 2000 code stream is " << (image->x1 - image->x0) << "x" << (image->y1 - image->y0) << " with "
      << image->numcomps << " component(s); the header says " << f.columns << "x" << f.rows << " with "
      << f.samplesPerPixel;
    return Error(ErrorCode::Corrupt, m.str(), f.path);
  }
  if (!opj_decode(codec.get(), s.get(), image.get()) || !opj_end_decompress(codec.get(), s.get()))
    return Error(ErrorCode::Corrupt, "JPEG 2000 decoding failed" + (error.empty() ? "" : " (" + error + ")"), f.path);

  const std::size_t n = static_cast<std::size_t>(f.rows) * f.columns;
  const std::size_t bps = f.bitsAllocated / 8u;
  const std::size_t comps = image->numcomps;
  if (bytes < n * comps * bps) return Error(ErrorCode::Internal, "frame buffer too small", f.path);
  J2kFrame out;
  out.precision = static_cast<int>(image->comps[0].prec);
  out.isSigned = image->comps[0].sgnd != 0;
  out.colorTransformed = comps == 3;  // OpenJPEG applies the inverse RCT/ICT
  for (std::size_t c = 0; c < comps; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    if (!comp.data || comp.w != f.columns || comp.h != f.rows || comp.dx != 1 || comp.dy != 1)
      return Error(ErrorCode::Unsupported, "subsampled JPEG 2000 components are not supported", f.path);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t v = static_cast<std::uint32_t>(comp.data[i]);
      std::uint8_t* d = dst + (i * comps + c) * bps;
      if (bps == 1) d[0] = static_cast<std::uint8_t>(v);
      else if (bps == 2) {
        const std::uint16_t w = static_cast<std::uint16_t>(v);
        std::memcpy(d, &w, 2);
      } else {
        std::memcpy(d, &v, 4);
      }
    }
  }
  return out;
}

Status decodeRle(const std::vector<std::uint8_t>& data, const FileInfo& f, std::uint8_t* dst, std::size_t bytes) {
  // PS3.5 Annex G: a 64-byte header (segment count, 15 offsets), then one PackBits
  // segment per byte of each sample, most significant byte first.
  const std::size_t n = static_cast<std::size_t>(f.rows) * f.columns;
  const std::size_t bps = f.bitsAllocated / 8u;
  const std::size_t samples = f.samplesPerPixel;
  const std::size_t segments = bps * samples;
  if (bytes < n * segments) return Error(ErrorCode::Internal, "frame buffer too small", f.path);
  if (data.size() < 64) return Error(ErrorCode::Corrupt, "RLE frame is shorter than its header", f.path);
  auto u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, data.data() + at, 4);
    return v;
  };
  if (u32(0) != segments) {
    std::ostringstream s;
    s << "RLE frame has " << u32(0) << " segments; " << segments << " expected";
    return Error(ErrorCode::Corrupt, s.str(), f.path);
  }
  for (std::size_t seg = 0; seg < segments; ++seg) {
    const std::size_t begin = u32(4 + 4 * seg);
    const std::size_t end = seg + 1 < segments ? u32(8 + 4 * seg) : data.size();
    if (begin < 64 || begin > end || end > data.size()) return Error(ErrorCode::Corrupt, "RLE segment offsets are invalid", f.path);
    const std::size_t sample = seg / bps;
    const std::size_t byteInSample = bps - 1 - seg % bps;  // MSB segment first; output little endian
    std::size_t out = 0;
    std::size_t in = begin;
    auto put = [&](std::uint8_t v) {
      dst[(out * samples + sample) * bps + byteInSample] = v;
      ++out;
    };
    while (in < end && out < n) {
      const auto h = static_cast<std::int8_t>(data[in++]);
      if (h >= 0) {
        const std::size_t count = static_cast<std::size_t>(h) + 1;
        if (in + count > end || out + count > n) return Error(ErrorCode::Corrupt, "RLE literal run overflows its segment", f.path);
        for (std::size_t k = 0; k < count; ++k) put(data[in + k]);
        in += count;
      } else if (h != -128) {
        const std::size_t count = static_cast<std::size_t>(1 - h);
        if (in >= end || out + count > n) return Error(ErrorCode::Corrupt, "RLE repeat run overflows its segment", f.path);
        const std::uint8_t v = data[in++];
        for (std::size_t k = 0; k < count; ++k) put(v);
      }
    }
    if (out != n) return Error(ErrorCode::Corrupt, "RLE segment ends before the frame is complete", f.path);
  }
  return {};
}

}  // namespace lumen::dicom
