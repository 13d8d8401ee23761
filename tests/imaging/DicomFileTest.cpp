#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <unistd.h>

#include "Corpus.h"
#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/DicomScanner.h"

using namespace lumen;
using namespace lumen::dicom;
namespace fs = std::filesystem;

namespace {
fs::path firstSampleFile() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(test::sampleCt())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files.front();
}
}  // namespace

TEST(DicomFile, ReadsTheHeaderOfARealCtSlice) {
  auto r = readFileInfo(firstSampleFile());
  ASSERT_TRUE(r) << r.error().toString();
  const FileInfo& f = *r;
  EXPECT_EQ(f.series.modality, "CT");
  EXPECT_EQ(f.rows, 512);
  EXPECT_EQ(f.columns, 512);
  EXPECT_EQ(f.bitsAllocated, 16);
  EXPECT_EQ(f.bitsStored, 12);
  EXPECT_EQ(f.photometric, "MONOCHROME2");
  EXPECT_FALSE(f.encapsulated);
  EXPECT_GT(f.pixelDataOffset, 0u);  // the fast pixel path is available
  ASSERT_EQ(f.frames.size(), 1u);
  const FrameInfo& fr = f.frames[0];
  EXPECT_TRUE(fr.hasPosition);
  EXPECT_TRUE(fr.hasOrientation);
  EXPECT_DOUBLE_EQ(fr.spacingI, 0.3125);
  EXPECT_DOUBLE_EQ(fr.rescaleSlope, 1.0);
  EXPECT_DOUBLE_EQ(fr.rescaleIntercept, -1024.0);
  EXPECT_DOUBLE_EQ(fr.positionLps.x, -80.0);
  EXPECT_EQ(f.transferSyntaxUid, "1.2.840.10008.1.2.1");
}

TEST(DicomFile, SniffRecognisesDicomAndRejectsOthers) {
  LUMEN_REQUIRE_CORPUS();
  EXPECT_EQ(sniffFile(firstSampleFile()), Sniff::Dicom);
  EXPECT_EQ(sniffFile(test::corpus("bad/zero-bytes.dcm")), Sniff::Empty);
  EXPECT_EQ(sniffFile(test::corpus("bad/notes.txt")), Sniff::NotDicom);
  EXPECT_EQ(sniffFile(test::corpus("bad/random-bytes.dcm")), Sniff::NotDicom);
  EXPECT_EQ(sniffFile(test::corpus("bad/does-not-exist")), Sniff::Unreadable);
}

struct BadCase {
  const char* file;
  ErrorCode code;
  const char* reason;  // a word the message must contain
};

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, GivesAClearErrorNamingTheFile) {
  LUMEN_REQUIRE_CORPUS();
  const BadCase& c = GetParam();
  const fs::path p = test::corpus(std::string("bad/") + c.file);
  auto r = readFileInfo(p);
  ASSERT_FALSE(r) << c.file << " was accepted";
  EXPECT_EQ(r.error().code, c.code) << r.error().toString();
  EXPECT_EQ(r.error().resource, p.string());
  EXPECT_NE(r.error().message.find(c.reason), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().toString().find('\n'), std::string::npos) << "one line";
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, BadInput,
    ::testing::Values(BadCase{"zero-bytes.dcm", ErrorCode::Corrupt, "empty"},
                      BadCase{"random-bytes.dcm", ErrorCode::NotDicom, "not a DICOM"},
                      BadCase{"notes.txt", ErrorCode::NotDicom, "not a DICOM"},
                      BadCase{"truncated-header.dcm", ErrorCode::Corrupt, "ends inside"},
                      BadCase{"truncated-pixels.dcm", ErrorCode::Corrupt, "truncated"},
                      BadCase{"no-pixel-data.dcm", ErrorCode::Unsupported, "no pixel data"},
                      BadCase{"size-lie.dcm", ErrorCode::Corrupt, "4096 rows"},
                      BadCase{"bits-lie.dcm", ErrorCode::Corrupt, "32 bits"},
                      BadCase{"bits-stored-lie.dcm", ErrorCode::Corrupt, "BitsStored 20"},
                      BadCase{"frames-lie.dcm", ErrorCode::Corrupt, "500 frames"},
                      BadCase{"nan-orientation.dcm", ErrorCode::Corrupt, "ImageOrientationPatient"},
                      BadCase{"degenerate-orientation.dcm", ErrorCode::Corrupt, "orthogonal"},
                      BadCase{"zero-spacing.dcm", ErrorCode::Corrupt, "PixelSpacing"},
                      BadCase{"inf-position.dcm", ErrorCode::Corrupt, "ImagePositionPatient"},
                      BadCase{"zero-rows.dcm", ErrorCode::Corrupt, "Rows"},
                      BadCase{"absurd-length.dcm", ErrorCode::Corrupt, "(0010,0010)"},
                      BadCase{"absurd-sequence-length.dcm", ErrorCode::Corrupt, "(0008,1110)"},
                      BadCase{"deep-nesting.dcm", ErrorCode::Corrupt, "nested"}),
    [](const auto& param) {
      std::string n = param.param.file;
      std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
      return n;
    });

TEST(DicomFile, ObjectsWithoutImagesAreNamedBySopClass) {
  LUMEN_REQUIRE_CORPUS();
  auto sr = readFileInfo(test::corpus("pydicom/test-SR.dcm"));
  ASSERT_FALSE(sr);
  EXPECT_NE(sr.error().message.find("SR"), std::string::npos) << sr.error().message;
  auto seg = readFileInfo(test::corpus("pydicom/liver_1frame.dcm"));
  ASSERT_FALSE(seg);
  EXPECT_NE(seg.error().message.find("1-bit"), std::string::npos);
}

TEST(DicomFile, EnhancedMultiFrameExpandsPerFrameGroups) {
  LUMEN_REQUIRE_CORPUS();
  auto r = readFileInfo(test::corpus("enhanced/ENHANCED_CT.dcm"));
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_TRUE(r->enhanced);
  ASSERT_EQ(r->frames.size(), 12u);
  for (const auto& fr : r->frames) {
    EXPECT_TRUE(fr.hasPosition);
    EXPECT_TRUE(fr.hasOrientation);
    EXPECT_DOUBLE_EQ(fr.rescaleIntercept, -1024);
    EXPECT_DOUBLE_EQ(fr.spacingJ, 2.0);
    EXPECT_DOUBLE_EQ(fr.spacingI, 1.5);
  }
}

TEST(DicomFile, CineMultiFrameIsATimeSequence) {
  LUMEN_REQUIRE_CORPUS();
  auto r = readFileInfo(test::corpus("cine/XA_CINE.dcm"));
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_TRUE(r->isCine);
  EXPECT_EQ(r->frames.size(), 5u);
  EXPECT_NEAR(r->frameTimeMs, 33.3, 1e-9);
}

TEST(DicomFile, VrUnAttributesAreReadWithTheirRealVr) {
  LUMEN_REQUIRE_CORPUS();
  auto r = readFileInfo(test::corpus("pydicom/rtdose_rle.dcm"));  // IPP/IOP stored as UN
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_TRUE(r->frames[0].hasPosition);
  EXPECT_EQ(r->frames.size(), 15u);
}

namespace {
// The lowest free descriptor number: RLIMIT_NOFILE at this value makes the next open fail.
rlim_t lowestFreeDescriptor() {
  const int fd = dup(0);
  close(fd);
  return static_cast<rlim_t>(fd);
}

struct FdLimit {
  rlimit saved{};
  explicit FdLimit(rlim_t soft) {
    getrlimit(RLIMIT_NOFILE, &saved);
    rlimit l = saved;
    l.rlim_cur = soft;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  ~FdLimit() { setrlimit(RLIMIT_NOFILE, &saved); }
};

fs::path deepTree(const std::string& name, int depth) {
  const fs::path root = fs::path(LUMEN_TEST_WORK_DIR) / "walk" / name;
  fs::remove_all(root);
  fs::path d = root;
  for (int i = 0; i < depth; ++i) {
    d /= "level" + std::to_string(i);
    fs::create_directories(d);
    std::ofstream(d / "file") << "x";
  }
  return root;
}
}  // namespace

// A deep tree listed with few file descriptors left: the walk holds one folder open at a
// time, so every file is found (a recursive iterator holding one per level ran out and
// silently ended the scan).
TEST(FolderWalk, FindsEveryFileWithFewDescriptorsLeft) {
  const fs::path root = deepTree("deep", 24);
  std::vector<SkippedFile> skipped;
  std::vector<std::string> notes;
  std::vector<fs::path> files;
  {
    FdLimit limit(lowestFreeDescriptor() + 3);
    files = enumerateInputs({root}, skipped, notes);
  }
  EXPECT_EQ(files.size(), 24u);
  EXPECT_TRUE(skipped.empty()) << skipped.front().path << ": " << skipped.front().reason;
}

// A folder that cannot be listed at all is reported as a listing error naming it, never
// read as "no files".
TEST(FolderWalk, AFolderThatCannotBeListedIsReported) {
  const fs::path root = deepTree("nofd", 2);
  std::vector<SkippedFile> skipped;
  std::vector<std::string> notes;
  std::vector<fs::path> files;
  {
    FdLimit limit(lowestFreeDescriptor());
    files = enumerateInputs({root}, skipped, notes);
  }
  EXPECT_TRUE(files.empty());
  const SkippedFile* e = firstListingError(skipped);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->path, root.string());
  EXPECT_NE(e->reason.find("cannot list folder"), std::string::npos) << e->reason;
}
