// Derived image series (AI-enhanced volumes as DICOM): read back by the same ingest they
// give the voxels written, through the source's rescale and MONOCHROME1 inversion; the
// header names the source instance of every slice; the stored range widens or clips (and
// says so) instead of wrapping; sources a slice-for-slice copy cannot describe are refused.

#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <filesystem>
#include <functional>
#include <limits>

#include "Corpus.h"
#include "lumen/core/Sha256.h"
#include "lumen/imaging/DerivedSeries.h"

namespace fs = std::filesystem;
using namespace lumen;

namespace {

fs::path freshDir(const std::string& name) {
  const fs::path d = fs::path(LUMEN_TEST_WORK_DIR) / "derived" / name;
  fs::remove_all(d);
  fs::create_directories(d.parent_path());
  return d;
}

std::string tag(const fs::path& file, const DcmTagKey& key, unsigned long pos = 0) {
  DcmFileFormat ff;
  EXPECT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  OFString v;
  DcmItem* where = key.getGroup() == 0x0002 ? static_cast<DcmItem*>(ff.getMetaInfo()) : ff.getDataset();
  where->findAndGetOFString(key, v, pos, true);
  return v.c_str();
}

// A value inside the first item of the Source Image Sequence.
std::string sourceTag(const fs::path& file, const DcmTagKey& key) {
  DcmFileFormat ff;
  EXPECT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  DcmItem* item = nullptr;
  OFString v;
  if (ff.getDataset()->findAndGetSequenceItem(DCM_SourceImageSequence, item, 0).good())
    item->findAndGetOFString(key, v, 0, true);
  return v.c_str();
}

std::size_t differingVoxels(const Volume& a, const Volume& b) {
  std::size_t n = 0;
  for (std::size_t k = 0; k < a.size()[2]; ++k)
    for (std::size_t j = 0; j < a.size()[1]; ++j)
      for (std::size_t i = 0; i < a.size()[0]; ++i) n += a.scalarAt(i, j, k) != b.scalarAt(i, j, k);
  return n;
}

}  // namespace

TEST(DerivedSeries, RealCtReadsBackVoxelForVoxelWithItsSourcesNamed) {
  auto src = test::scanAndPlan(test::sampleCt());
  ASSERT_EQ(src.plans.size(), 1u);
  Volume vol = test::load(src);
  ASSERT_EQ(vol.pixelType(), PixelType::Int16);
  // A changed image: a pattern everywhere, and values the source's 12 unsigned bits
  // (stored = HU + 1024) cannot hold at either end.
  auto* d = vol.data<std::int16_t>();
  for (std::size_t n = 0; n < vol.voxelCount(); ++n) d[n] = static_cast<std::int16_t>(d[n] + static_cast<int>(n % 7) - 3);
  d[vol.linearIndex(3, 4, 5)] = -2000;
  d[vol.linearIndex(100, 200, 10)] = 4000;
  dicom::DerivedSeriesOptions o;
  o.derivationDescription = "test: pattern added";
  o.uidSeed = "derived-test";
  const fs::path out = freshDir("ct");
  auto r = dicom::writeDerivedSeries(vol, src.scan, src.plans[0], o, out);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->files.size(), vol.size()[2]);
  EXPECT_EQ(r->clippedVoxels, 0u);
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_EQ(r->notes[0], "stored values widened to 16 bits, signed");
  EXPECT_EQ(r->seriesInstanceUid, Sha256::uidOfText("derived-test/series"));

  auto back = test::scanAndPlan(out);
  ASSERT_EQ(back.plans.size(), 1u);
  const Volume again = test::load(back);
  ASSERT_TRUE(sameGrid(again.geometry(), vol.geometry()));
  EXPECT_EQ(differingVoxels(again, vol), 0u);

  // Every slice: a new instance of a new series of the same study, naming its source.
  const auto& plan = src.plans[0];
  for (std::size_t k : {std::size_t{0}, vol.size()[2] / 2, vol.size()[2] - 1}) {
    const auto& source = src.scan.files[plan.slices[k].a.file];
    const fs::path f = r->files[k];
    EXPECT_EQ(tag(f, DCM_SOPInstanceUID), Sha256::uidOfText("derived-test/" + std::to_string(k + 1)));
    EXPECT_EQ(tag(f, DCM_SeriesInstanceUID), r->seriesInstanceUid);
    EXPECT_EQ(tag(f, DCM_StudyInstanceUID), source.study.studyInstanceUid);
    EXPECT_EQ(tag(f, DCM_FrameOfReferenceUID), plan.info.series.frameOfReferenceUid);
    EXPECT_EQ(tag(f, DCM_ImageType, 0), "DERIVED");
    EXPECT_EQ(tag(f, DCM_ImageType, 1), "SECONDARY");
    EXPECT_EQ(tag(f, DCM_ImageType, 2), "AXIAL");
    EXPECT_EQ(tag(f, DCM_DerivationDescription), "test: pattern added");
    EXPECT_EQ(sourceTag(f, DCM_ReferencedSOPInstanceUID), source.sopInstanceUid);
    EXPECT_EQ(sourceTag(f, DCM_ReferencedSOPClassUID), source.sopClassUid);
    EXPECT_EQ(sourceTag(f, DCM_CodeValue), "121322");
    EXPECT_EQ(tag(f, DCM_BitsStored), "16");
    EXPECT_EQ(tag(f, DCM_PixelRepresentation), "1");
    EXPECT_EQ(tag(f, DCM_SeriesNumber), std::to_string(plan.info.series.seriesNumber + 2000));
    EXPECT_EQ(tag(f, DCM_TransferSyntaxUID), UID_LittleEndianExplicitTransferSyntax);
    EXPECT_EQ(tag(f, DCM_MediaStorageSOPInstanceUID), tag(f, DCM_SOPInstanceUID));
  }

  // The same seed gives the same UIDs; a folder that holds something is never written over.
  auto twice = dicom::writeDerivedSeries(vol, src.scan, src.plans[0], o, out);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("not empty"), std::string::npos);
  EXPECT_EQ(fs::directory_iterator(out.parent_path()) == fs::directory_iterator(), false);
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    EXPECT_NE(e.path().filename().string().rfind(".part-ct-", 0), 0u) << e.path();  // no staging of its own left
}

TEST(DerivedSeries, ValuesNoStoredFormatHoldsAreClippedAndCounted) {
  auto src = test::scanAndPlan(test::sampleCt());
  ASSERT_EQ(src.plans.size(), 1u);
  Volume vol = test::load(src);
  auto* d = vol.data<std::int16_t>();
  d[vol.linearIndex(0, 0, 0)] = -2000;   // stored -976: needs the sign bit
  d[vol.linearIndex(1, 0, 0)] = 32000;   // stored 33024: needs all 16 bits unsigned
  const fs::path out = freshDir("clipped");
  auto r = dicom::writeDerivedSeries(vol, src.scan, src.plans[0], {}, out);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->clippedVoxels, 1u);
  ASSERT_EQ(r->notes.size(), 2u);
  EXPECT_EQ(r->notes[1], "1 voxel(s) outside what 16-bit stored values hold (or not a number) were clipped");
  auto back = test::scanAndPlan(out);
  const Volume again = test::load(back);
  EXPECT_EQ(again.scalarAt(0, 0, 0), -1024);  // stored 0, the least unsigned value
  EXPECT_EQ(again.scalarAt(1, 0, 0), 32000);
  EXPECT_EQ(differingVoxels(again, vol), 1u);
}

TEST(DerivedSeries, NotANumberAndInfinitiesAreClippedNotUndefined) {
  auto src = test::scanAndPlan(test::sampleCt());
  ASSERT_EQ(src.plans.size(), 1u);
  auto f = test::load(src).convertTo(PixelType::Float32);
  ASSERT_TRUE(f);
  Volume vol = std::move(f.value());
  auto* d = vol.data<float>();
  d[vol.linearIndex(0, 0, 0)] = std::numeric_limits<float>::quiet_NaN();
  d[vol.linearIndex(1, 0, 0)] = std::numeric_limits<float>::infinity();
  d[vol.linearIndex(2, 0, 0)] = -std::numeric_limits<float>::infinity();
  d[vol.linearIndex(3, 0, 0)] = 100.4f;  // rounds to the nearest stored value
  const fs::path out = freshDir("nonfinite");
  auto r = dicom::writeDerivedSeries(vol, src.scan, src.plans[0], {}, out);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->clippedVoxels, 3u);
  const Volume again = test::load(test::scanAndPlan(out));
  EXPECT_EQ(again.scalarAt(0, 0, 0), -1024);  // the least 12-bit unsigned stored value
  EXPECT_EQ(again.scalarAt(1, 0, 0), 3071);   // the greatest
  EXPECT_EQ(again.scalarAt(2, 0, 0), -1024);
  EXPECT_EQ(again.scalarAt(3, 0, 0), 100);
}

// Copies the sample CT into `dir`, applying `edit` to the data set of every file.
std::vector<fs::path> editedSample(const fs::path& dir, const std::function<void(const fs::path&, DcmDataset*)>& edit) {
  fs::create_directories(dir);
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(test::sampleCt())) {
    DcmFileFormat ff;
    EXPECT_TRUE(ff.loadFile(e.path().c_str()).good());
    edit(e.path(), ff.getDataset());
    out.push_back(dir / e.path().filename());
    EXPECT_TRUE(ff.saveFile(out.back().c_str(), EXS_LittleEndianExplicit).good());
  }
  return out;
}

TEST(DerivedSeries, PaddingAndSignaturesOfTheOldPixelsAreNotCopied) {
  const fs::path in = freshDir("padded-source");
  editedSample(in, [](const fs::path&, DcmDataset* ds) {
    ds->putAndInsertUint16(DCM_PixelPaddingValue, 0);
    ds->putAndInsertUint16(DCM_PixelPaddingRangeLimit, 10);
    ds->putAndInsertString(DCM_DerivationDescription, "the scanner's own reconstruction");
  });
  auto src = test::scanAndPlan(in);
  ASSERT_EQ(src.plans.size(), 1u);
  const fs::path out = freshDir("padded");
  auto r = dicom::writeDerivedSeries(test::load(src), src.scan, src.plans[0], {}, out);
  ASSERT_TRUE(r) << r.error().toString();
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(r->files[0].c_str()).good());
  EXPECT_FALSE(ff.getDataset()->tagExists(DCM_PixelPaddingValue));
  EXPECT_FALSE(ff.getDataset()->tagExists(DCM_PixelPaddingRangeLimit));
  EXPECT_FALSE(ff.getDataset()->tagExists(DCM_DerivationDescription));  // none given: the source's is not ours
}

TEST(DerivedSeries, AModalityLutIsRefusedAndNothingIsLeftBehind) {
  const fs::path in = freshDir("lut-source");
  auto first = test::scanAndPlan(test::sampleCt());
  ASSERT_EQ(first.plans.size(), 1u);
  // The last slice in the series' order: the writer has made the others when it finds it.
  const fs::path last = first.scan.files[first.plans[0].slices.back().a.file].path;
  editedSample(in, [&](const fs::path& p, DcmDataset* ds) {
    if (p.filename() != last.filename()) return;
    DcmItem* item = nullptr;
    ds->findOrCreateSequenceItem(DCM_ModalityLUTSequence, item, 0);
    item->putAndInsertString(DCM_ModalityLUTType, "HU");
  });
  auto src = test::scanAndPlan(in);
  ASSERT_EQ(src.plans.size(), 1u);
  const fs::path out = freshDir("lut");
  auto r = dicom::writeDerivedSeries(test::load(src), src.scan, src.plans[0], {}, out);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Modality LUT Sequence"), std::string::npos) << r.error().toString();
  EXPECT_EQ(r.error().resource, (in / last.filename()).string());
  EXPECT_FALSE(fs::exists(out));
  // Its staging folder is gone (other tests, run in parallel, stage their own beside it).
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    EXPECT_NE(e.path().filename().string().rfind(".part-lut-", 0), 0u) << e.path();
}

TEST(DerivedSeries, Monochrome1IsInvertedBackToItsStoredConvention) {
  LUMEN_REQUIRE_CORPUS();
  auto src = test::scanAndPlan(test::corpus("photometric/mono1.dcm"));
  ASSERT_EQ(src.plans.size(), 1u);
  ASSERT_TRUE(src.plans[0].invertMonochrome);
  Volume vol = test::load(src);
  const double before = vol.scalarAt(2, 3, 0);
  const fs::path out = freshDir("mono1");
  auto r = dicom::writeDerivedSeries(vol, src.scan, src.plans[0], {}, out);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(tag(r->files[0], DCM_PhotometricInterpretation), "MONOCHROME1");
  const Volume again = test::load(test::scanAndPlan(out));
  EXPECT_EQ(again.scalarAt(2, 3, 0), before);
  EXPECT_EQ(differingVoxels(again, vol), 0u);
}

TEST(DerivedSeries, SourcesASliceCopyCannotDescribeAreRefused) {
  LUMEN_REQUIRE_CORPUS();
  auto tilted = test::scanAndPlan(test::corpus("ramp/tilt"));
  ASSERT_FALSE(tilted.plans.empty());
  const Volume t = test::load(tilted);
  auto r = dicom::writeDerivedSeries(t, tilted.scan, tilted.plans[0], {}, freshDir("tilt"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("resampled on loading"), std::string::npos) << r.error().toString();
  EXPECT_FALSE(fs::exists(freshDir("tilt")));

  auto multi = test::scanAndPlan(test::corpus("enhanced"));
  ASSERT_FALSE(multi.plans.empty());
  const Volume m = test::load(multi);
  r = dicom::writeDerivedSeries(m, multi.scan, multi.plans[0], {}, freshDir("enhanced"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("multi-frame"), std::string::npos) << r.error().toString();

  // Another grid than the source's.
  auto src = test::scanAndPlan(test::sampleCt());
  r = dicom::writeDerivedSeries(t, src.scan, src.plans[0], {}, freshDir("grid"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("grid"), std::string::npos);
}
