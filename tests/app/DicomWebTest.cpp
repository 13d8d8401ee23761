// The multipart/related splitter WADO-RS answers go through: every part's bytes exactly,
// however the body is cut into reads, and malformed bodies refused.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "DicomWeb.h"

using lumen::web::boundaryOf;
using lumen::web::MultipartSplitter;

namespace {

struct Parts {
  std::vector<std::string> headers, bodies;
  int ends = 0;
  MultipartSplitter::Handler handler() {
    return {[this](std::string_view h) {
              headers.emplace_back(h);
              bodies.emplace_back();
              return true;
            },
            [this](std::string_view b) {
              bodies.back().append(b);
              return true;
            },
            [this] {
              ++ends;
              return true;
            }};
  }
};

// Bodies that hold CR, LF, dashes and near-misses of the delimiter (a prefix of it cut
// short, another boundary), as pixel data may.
std::vector<std::string> awkwardBodies() {
  std::string binary;
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) binary.push_back(static_cast<char>(rng() & 0xFF));
  return {binary, "", "\r\n--lumen-boundary-4", "--XyZ\r\n--XyZ-", std::string(3, '\0') + "\r\n\r\n\r\n--lumen-boundary"};
}

std::string body(const std::vector<std::string>& parts, const std::string& boundary) {
  std::string b = "preamble to ignore\r\n";
  for (const auto& p : parts) b += "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" + p + "\r\n";
  return b + "--" + boundary + "--\r\nepilogue";
}

}  // namespace

TEST(Multipart, EveryPartExactlyWhateverTheReadSizes) {
  const auto parts = awkwardBodies();
  const std::string boundary = "lumen-boundary-42";
  const std::string whole = body(parts, boundary);
  for (std::size_t step : {std::size_t(1), std::size_t(2), std::size_t(7), std::size_t(100), whole.size()}) {
    Parts got;
    MultipartSplitter s(boundary, got.handler());
    for (std::size_t i = 0; i < whole.size(); i += step) ASSERT_TRUE(s.feed(std::string_view(whole).substr(i, step))) << s.error();
    EXPECT_TRUE(s.complete()) << "step " << step;
    ASSERT_EQ(got.bodies.size(), parts.size()) << "step " << step;
    EXPECT_EQ(got.ends, static_cast<int>(parts.size()));
    for (std::size_t i = 0; i < parts.size(); ++i) {
      EXPECT_EQ(got.bodies[i], parts[i]) << "part " << i << ", step " << step;
      EXPECT_EQ(got.headers[i], "Content-Type: application/dicom");
    }
  }
}

// Parts as large as a CT slice, read in sizes below and above what a read joins to the
// bytes the last one left, and part headers of nearly the 64 KiB allowed.
TEST(Multipart, LargePartsAndLongHeadersWhateverTheReadSizes) {
  std::mt19937 rng(11);
  std::vector<std::string> parts;
  for (std::size_t n : {std::size_t(600000), std::size_t(90000), std::size_t(3), std::size_t(300000)}) {
    std::string p;
    for (std::size_t i = 0; i < n; ++i) p.push_back(static_cast<char>(rng() & 0xFF));
    p.replace(n / 2, 0, "\r\n--lumen-boundary-4x");  // a near miss in the middle
    parts.push_back(p);
  }
  const std::string boundary = "lumen-boundary-42";
  const std::string longHeader = "Content-Location: /" + std::string(60000, 'x');
  std::string whole = "\r\n";
  for (const auto& p : parts)
    whole += "--" + boundary + "\r\nContent-Type: application/dicom\r\n" + longHeader + "\r\n\r\n" + p + "\r\n";
  whole += "--" + boundary + "--\r\n";
  for (std::size_t step : {std::size_t(20), std::size_t(21), std::size_t(22), std::size_t(1000), std::size_t(65536), std::size_t(81919), std::size_t(81920),
                           std::size_t(81921), std::size_t(262144), whole.size()}) {
    Parts got;
    MultipartSplitter s(boundary, got.handler());
    for (std::size_t i = 0; i < whole.size(); i += step) ASSERT_TRUE(s.feed(std::string_view(whole).substr(i, step))) << s.error();
    EXPECT_TRUE(s.complete()) << "step " << step;
    ASSERT_EQ(got.bodies.size(), parts.size()) << "step " << step;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      EXPECT_TRUE(got.bodies[i] == parts[i]) << "part " << i << ", step " << step;
      EXPECT_EQ(got.headers[i], "Content-Type: application/dicom\r\n" + longHeader);
    }
  }
}

TEST(Multipart, ATruncatedBodyIsNotComplete) {
  const std::string whole = body({"abc", "def"}, "B");
  Parts got;
  MultipartSplitter s("B", got.handler());
  ASSERT_TRUE(s.feed(std::string_view(whole).substr(0, whole.size() - 20)));
  EXPECT_FALSE(s.complete());
  EXPECT_EQ(got.ends, 1);  // the first part ended; the second never did
}

TEST(Multipart, MalformedAndRefusedPartsStopTheSplit) {
  Parts got;
  MultipartSplitter s("B", got.handler());
  EXPECT_FALSE(s.feed("--B garbage\r\nheaders\r\n\r\nx\r\n--B--"));
  EXPECT_NE(s.error().find("text after a boundary"), std::string::npos);

  MultipartSplitter::Handler refuse{[](std::string_view) { return false; }, [](std::string_view) { return true; },
                                    [] { return true; }};
  MultipartSplitter r("B", refuse);
  EXPECT_FALSE(r.feed("--B\r\nContent-Type: text/html\r\n\r\n<html>\r\n--B--"));
}

TEST(Multipart, BoundaryParameter) {
  EXPECT_EQ(boundaryOf(R"(multipart/related; type="application/dicom"; boundary="a b;c")"), "a b;c");
  EXPECT_EQ(boundaryOf("multipart/related; Boundary=xyz; type=application/dicom"), "xyz");
  EXPECT_EQ(boundaryOf("multipart/related;boundary=xyz"), "xyz");
  EXPECT_EQ(boundaryOf("application/dicom"), "");
  EXPECT_EQ(boundaryOf("multipart/related; boundary=" + std::string(70, 'b')), std::string(70, 'b'));
  EXPECT_EQ(boundaryOf("multipart/related; boundary=" + std::string(71, 'b')), "");
  EXPECT_EQ(boundaryOf("multipart/related; boundary=\"" + std::string(71, 'b') + "\""), "");
}
