#include "DicomStructureCheck.h"

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

namespace lumen::dicom {

namespace {

constexpr std::uint32_t kUndefined = 0xFFFFFFFFu;
constexpr std::uint64_t kNoEnd = std::numeric_limits<std::uint64_t>::max();

// Sequential byte source over the data set (a file, or the inflated stream of a
// deflated transfer syntax).
class Source {
 public:
  virtual ~Source() = default;
  virtual bool read(void* dst, std::size_t n) = 0;
  virtual bool skip(std::uint64_t n) = 0;
  virtual bool atEnd() = 0;
  std::uint64_t pos = 0;
};

class FileSource : public Source {
 public:
  explicit FileSource(std::FILE* f, std::uint64_t size) : f_(f), size_(size) {}
  bool read(void* dst, std::size_t n) override {
    if (pos + n > size_ || std::fread(dst, 1, n, f_) != n) return false;
    pos += n;
    return true;
  }
  bool skip(std::uint64_t n) override {
    if (pos + n > size_) return false;
    // Short values are read past: glibc's fseeko makes an lseek call even within its
    // buffer, and a header has hundreds of values (30 000 calls for one CT series).
    if (n <= sizeof scratch_) return read(scratch_, static_cast<std::size_t>(n));
    if (fseeko(f_, static_cast<off_t>(n), SEEK_CUR) != 0) return false;
    pos += n;
    return true;
  }
  bool atEnd() override { return pos >= size_; }
  std::uint64_t size() const { return size_; }

 private:
  std::FILE* f_;
  std::uint64_t size_;
  char scratch_[4096];
};

class InflateSource : public Source {
 public:
  explicit InflateSource(FileSource& in) : in_(in) {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, -MAX_WBITS) == Z_OK;  // DICOM deflate is raw (no zlib header)
  }
  ~InflateSource() override { inflateEnd(&z_); }
  bool read(void* dst, std::size_t n) override {
    auto* out = static_cast<unsigned char*>(dst);
    while (n > 0) {
      if (avail_ == 0 && !fill()) return false;
      const std::size_t k = std::min(n, avail_);
      std::memcpy(out, buf_.data() + off_, k);
      off_ += k;
      avail_ -= k;
      out += k;
      n -= k;
      pos += k;
    }
    return true;
  }
  bool skip(std::uint64_t n) override {
    while (n > 0) {
      if (avail_ == 0 && !fill()) return false;
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, avail_));
      off_ += k;
      avail_ -= k;
      n -= k;
      pos += k;
    }
    return true;
  }
  bool atEnd() override { return avail_ == 0 && !fill(); }
  /// Inflates the rest; false when the whole stream would exceed kMaxInflated.
  bool drainWithinLimit() {
    while (fill()) avail_ = 0;
    return finished_ && total_ <= kMaxInflated;
  }

 private:
  // A decompression bomb must not keep us busy: the header walk stops after this much.
  static constexpr std::uint64_t kMaxInflated = 1ull << 30;
  bool fill() {
    if (!ok_ || finished_ || total_ > kMaxInflated) return false;
    buf_.resize(1 << 16);
    z_.next_out = buf_.data();
    z_.avail_out = static_cast<uInt>(buf_.size());
    while (z_.avail_out == buf_.size()) {
      if (z_.avail_in == 0) {
        inBuf_.resize(1 << 16);
        const std::uint64_t left = in_.size() - in_.pos;
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(inBuf_.size(), left));
        if (want == 0 || !in_.read(inBuf_.data(), want)) return false;
        z_.next_in = inBuf_.data();
        z_.avail_in = static_cast<uInt>(want);
      }
      const int r = inflate(&z_, Z_NO_FLUSH);
      if (r == Z_STREAM_END) finished_ = true;
      else if (r != Z_OK) return false;
      if (finished_) break;
    }
    off_ = 0;
    avail_ = buf_.size() - z_.avail_out;
    total_ += avail_;
    return avail_ > 0;
  }
  FileSource& in_;
  z_stream z_;
  bool ok_ = false, finished_ = false;
  std::vector<unsigned char> buf_, inBuf_;
  std::size_t off_ = 0, avail_ = 0;
  std::uint64_t total_ = 0;
};

// Explicit VR length field: 2 bytes for the classic short VRs, 4 for the others. An
// unknown VR of two capital letters is taken as a future VR with a 4-byte length, any
// other unknown VR as a 2-byte one: DCMTK's rule, so both parsers see the same lengths.
bool isLongVr(const char vr[2]) {
  static const char* kShort[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                 "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"};
  for (const char* v : kShort)
    if (vr[0] == v[0] && vr[1] == v[1]) return false;
  return vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z';
}
bool looksLikeVr(const unsigned char* b) { return b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z'; }

std::string tagName(std::uint16_t g, std::uint16_t e) {
  char s[16];
  std::snprintf(s, sizeof s, "(%04X,%04X)", g, e);
  return s;
}

struct Container {
  std::uint64_t end;     // kNoEnd: ends with a delimiter (or EOF at top level)
  bool sequence;         // a sequence (holds items) rather than a data set / item
  bool fragments;        // encapsulated pixel data: items hold bytes, not elements
};

class Walker {
 public:
  Walker(Source& src, bool explicitVr, bool bigEndian) : s_(src), explicit_(explicitVr), big_(bigEndian) {}

  std::string run(std::uint64_t topEnd) {
    stack_.push_back({topEnd, false, false});
    for (;;) {
      Container& top = stack_.back();
      if (top.end != kNoEnd && s_.pos >= top.end) {
        if (s_.pos > top.end) return "an element runs past the end of its sequence item";
        if (stack_.size() == 1) return {};
        if (top.sequence) --depth_;
        stack_.pop_back();
        continue;
      }
      if (stack_.size() == 1 && s_.atEnd()) return {};
      unsigned char t[4];
      if (!s_.read(t, 4)) return stack_.size() == 1 ? std::string() : "file ends inside a sequence";
      const std::uint16_t g = u16(t), e = u16(t + 2);
      if (g == 0xFFFE) {
        std::uint32_t len;
        if (!read32(len)) return "file ends inside a sequence";
        if (e == 0xE000) {  // item
          if (!stack_.back().sequence) return "sequence item outside a sequence";
          if (stack_.back().fragments) {
            if (len == kUndefined || !s_.skip(len)) return "malformed encapsulated pixel data";
            continue;
          }
          if (len != kUndefined && !fits(len)) return "sequence item length runs past the end of the file";
          stack_.push_back({len == kUndefined ? kNoEnd : s_.pos + len, false, false});
        } else if (e == 0xE00D) {  // item delimiter
          if (stack_.back().sequence || stack_.size() == 1) return "unexpected item delimiter";
          stack_.pop_back();
        } else if (e == 0xE0DD) {  // sequence delimiter
          if (!stack_.back().sequence) return "unexpected sequence delimiter";
          --depth_;
          stack_.pop_back();
        } else {
          return "unknown delimiter tag " + tagName(g, e);
        }
        continue;
      }
      char vr[2] = {0, 0};
      std::uint32_t len = 0;
      if (explicit_) {
        if (!s_.read(vr, 2)) return "file ends inside element " + tagName(g, e);
        if (isLongVr(vr)) {
          unsigned char skip2[2];
          if (!s_.read(skip2, 2) || !read32(len)) return "file ends inside element " + tagName(g, e);
        } else {
          unsigned char l[2];
          if (!s_.read(l, 2)) return "file ends inside element " + tagName(g, e);
          len = u16(l);
        }
      } else if (!read32(len)) {
        return "file ends inside element " + tagName(g, e);
      }
      const bool pixelData = g == 0x7FE0 && e == 0x0010;
      // Pixel data is skipped (a seek), not the end of the walk: DCMTK parses what follows
      // it too, and hostile lengths hide there as well.
      if (pixelData && len != kUndefined && !fits(len)) {
        std::ostringstream m;
        m << "pixel data is truncated: " << len << " bytes declared, the file ends "
          << (s_.pos + len - stack_.front().end) << " bytes early";
        return m.str();
      }
      const bool sq = (explicit_ && vr[0] == 'S' && vr[1] == 'Q') || len == kUndefined;
      if (sq) {
        if (!pixelData && ++depth_ > kMaxSequenceDepth) {
          std::ostringstream m;
          m << "sequences nested more than " << kMaxSequenceDepth << " levels deep (at " << tagName(g, e)
            << "): refused as malformed or hostile";
          return m.str();
        }
        if (len != kUndefined && !fits(len)) return "sequence " + tagName(g, e) + " length runs past the end of the file";
        stack_.push_back({len == kUndefined ? kNoEnd : s_.pos + len, true, pixelData});
        if (pixelData) ++depth_;  // popped like any sequence
        continue;
      }
      if (!fits(len)) {
        std::ostringstream m;
        m << "element " << tagName(g, e) << " claims " << len << " bytes, past the end of the file";
        return m.str();
      }
      // Implicit VR gives no "SQ": a defined-length value starting with an item tag is one.
      if (!explicit_ && len >= 8) {
        unsigned char p[4];
        if (!s_.read(p, 4)) return "file ends inside element " + tagName(g, e);
        if (u16(p) == 0xFFFE && u16(p + 2) == 0xE000) {
          if (++depth_ > kMaxSequenceDepth) return "sequences nested too deep: refused as malformed or hostile";
          stack_.push_back({s_.pos - 4 + len, true, false});
          std::uint32_t itemLen;
          if (!read32(itemLen)) return "file ends inside a sequence";
          if (itemLen != kUndefined && !fits(itemLen)) return "sequence item length runs past the end of the file";
          stack_.push_back({itemLen == kUndefined ? kNoEnd : s_.pos + itemLen, false, false});
          continue;
        }
        if (!s_.skip(len - 4)) return "file ends inside element " + tagName(g, e);
        continue;
      }
      if (!s_.skip(len)) return "file ends inside element " + tagName(g, e);
    }
  }

 private:
  std::uint16_t u16(const unsigned char* b) const {
    return big_ ? static_cast<std::uint16_t>((b[0] << 8) | b[1]) : static_cast<std::uint16_t>(b[0] | (b[1] << 8));
  }
  bool read32(std::uint32_t& v) {
    unsigned char b[4];
    if (!s_.read(b, 4)) return false;
    v = big_ ? (std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | b[3])
             : (std::uint32_t(b[3]) << 24 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[1]) << 8 | b[0]);
    return true;
  }
  bool fits(std::uint64_t len) const {
    for (const auto& c : stack_)
      if (c.end != kNoEnd && s_.pos + len > c.end) return false;
    return true;
  }
  Source& s_;
  bool explicit_, big_;
  int depth_ = 0;
  std::vector<Container> stack_;
};

}  // namespace

std::string checkDicomStructure(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return "cannot open for reading";
  if (fseeko(f.get(), 0, SEEK_END) != 0) return "cannot read";
  const auto size = static_cast<std::uint64_t>(ftello(f.get()));
  std::rewind(f.get());
  FileSource file(f.get(), size);

  unsigned char pre[132];
  bool hasPreamble = file.read(pre, 132) && std::memcmp(pre + 128, "DICM", 4) == 0;
  if (!hasPreamble) {
    std::rewind(f.get());
    file.pos = 0;
  }
  // File meta information: always explicit VR little endian, group 0002.
  std::string tsUid;
  unsigned char head[8];
  bool explicitVr = true, bigEndian = false, deflated = false;
  std::uint64_t datasetStart = file.pos;
  for (;;) {
    datasetStart = file.pos;
    if (!file.read(head, 8)) break;
    const std::uint16_t g = static_cast<std::uint16_t>(head[0] | head[1] << 8);
    const std::uint16_t e = static_cast<std::uint16_t>(head[2] | head[3] << 8);
    if (g != 0x0002 || !looksLikeVr(head + 4)) break;
    std::uint32_t len;
    if (isLongVr(reinterpret_cast<const char*>(head + 4))) {
      unsigned char l[4];
      if (!file.read(l, 4)) return "file ends inside the file meta information";
      len = std::uint32_t(l[0]) | std::uint32_t(l[1]) << 8 | std::uint32_t(l[2]) << 16 | std::uint32_t(l[3]) << 24;
    } else {
      len = static_cast<std::uint32_t>(head[6] | head[7] << 8);
    }
    if (len == kUndefined || file.pos + len > file.size()) return "file meta information element runs past the end of the file";
    if (e == 0x0010 && len < 256) {
      std::string v(len, '\0');
      if (!file.read(v.data(), len)) return "file ends inside the file meta information";
      while (!v.empty() && (v.back() == '\0' || v.back() == ' ')) v.pop_back();
      tsUid = v;
    } else if (!file.skip(len)) {
      return "file ends inside the file meta information";
    }
  }
  if (fseeko(f.get(), static_cast<off_t>(datasetStart), SEEK_SET) != 0) return "cannot read";
  file.pos = datasetStart;

  if (tsUid == "1.2.840.10008.1.2") explicitVr = false;
  else if (tsUid == "1.2.840.10008.1.2.2") bigEndian = true;
  else if (tsUid == "1.2.840.10008.1.2.1.99") deflated = true;
  else if (tsUid.empty()) {
    // No meta header: guess like DCMTK does, from the first element.
    unsigned char b[6];
    if (file.read(b, 6)) {
      explicitVr = looksLikeVr(b + 4);
      bigEndian = b[0] == 0 && b[1] != 0;
    }
    if (fseeko(f.get(), static_cast<off_t>(datasetStart), SEEK_SET) != 0) return "cannot read";
    file.pos = datasetStart;
  }
  if (deflated) {
    // DCMTK cannot leave values of a deflated stream on disk: a length it believes is
    // allocated. Refuse streams whose elements run past the end, and bombs.
    InflateSource inflated(file);
    auto err = Walker(inflated, true, false).run(kNoEnd);
    if (!err.empty()) return err;
    if (!inflated.drainWithinLimit()) return "deflated data set is corrupt or expands beyond 1 GiB";
    return {};
  }
  return Walker(file, explicitVr, bigEndian).run(size);
}

}  // namespace lumen::dicom
