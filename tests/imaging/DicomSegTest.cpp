// DICOM SEG written from label maps and read back: voxel-exact round trips on frame sizes
// DCMTK 3.6.7 packs wrongly, oblique and multi-frame sources, references to every source
// frame, DCMTK's own SEG class loading the result, and SEGs that do not lie on the grid.

#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <filesystem>
#include <set>

#include "Corpus.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/StudyDatabase.h"

namespace fs = std::filesystem;
using namespace lumen;

namespace {

fs::path outDir() {
  const fs::path d = fs::path(LUMEN_TEST_WORK_DIR) / "seg";
  fs::create_directories(d);
  return d;
}

struct Source {
  test::Loaded loaded;
  dicom::SegReference ref;
};

Source source(const std::string& rel) {
  Source s;
  s.loaded = test::scanAndPlan(test::corpus(rel));
  EXPECT_FALSE(s.loaded.plans.empty());
  if (!s.loaded.plans.empty()) s.ref = dicom::segReferenceOf(s.loaded.scan, s.loaded.plans[0]);
  return s;
}

Volume labelsOn(const ImageGeometry& g) { return std::move(Volume::zeros(PixelType::UInt8, g).value()); }

// Label 1: a cone along k (on every slice); label 2: a slab on all but the end slices.
void paint(Volume& v) {
  const auto& s = v.size();
  const double ci = (s[0] - 1) / 2.0, cj = (s[1] - 1) / 2.0;
  for (std::size_t k = 0; k < s[2]; ++k)
    for (std::size_t j = 0; j < s[1]; ++j)
      for (std::size_t i = 0; i < s[0]; ++i) {
        const double d = std::hypot(i - ci, j - cj);
        const double radius = 0.4 * std::min(s[0], s[1]) * (0.5 + 0.5 * k / std::max<double>(1, s[2] - 1));
        std::uint8_t value = 0;
        if (d <= radius) value = 1;
        else if (j < 2 && k >= 1 && k + 1 < s[2]) value = 2;
        v.data<std::uint8_t>()[v.linearIndex(i, j, k)] = value;
      }
}

std::size_t differences(const Volume& a, const Volume& b) {
  std::size_t n = 0;
  for (std::size_t v = 0; v < a.voxelCount(); ++v) n += a.data<std::uint8_t>()[v] != b.data<std::uint8_t>()[v];
  return n;
}

std::vector<LabelInfo> twoLabels() {
  LabelInfo liver{1, "Liver", Rgb8{221, 130, 101}, 1.0, true, {"123037004", "SCT", "Anatomical Structure"},
                  {"10200004", "SCT", "Liver"}};
  LabelInfo lesion{2, "Lesion", Rgb8{30, 200, 60}, 1.0, true, {"49755003", "SCT", "Morphologically Abnormal Structure"},
                   {"52988006", "SCT", "Lesion"}};
  return {liver, lesion};
}

dicom::SegWriteOptions aiOptions() {
  dicom::SegWriteOptions o;
  o.algorithm = {dicom::SegAlgorithm::Type::Automatic, "test_model", "1.2", std::string(64, 'a')};
  return o;
}

}  // namespace

TEST(DicomSeg, LabColoursRoundTripAndWhiteIsNeutral) {
  const auto white = dicom::rgbToDicomLab({255, 255, 255});
  EXPECT_NEAR(white[0], 65535, 1);
  EXPECT_NEAR(white[1], 32896, 2);  // a* = 0
  EXPECT_NEAR(white[2], 32896, 2);  // b* = 0
  const auto black = dicom::rgbToDicomLab({0, 0, 0});
  EXPECT_EQ(black[0], 0);
  for (const Rgb8 c : {Rgb8{255, 0, 0}, Rgb8{0, 255, 0}, Rgb8{0, 0, 255}, Rgb8{221, 130, 101}, Rgb8{12, 34, 56},
                       Rgb8{128, 128, 128}}) {
    const Rgb8 back = dicom::dicomLabToRgb(dicom::rgbToDicomLab(c));
    EXPECT_EQ(back.r, c.r);
    EXPECT_EQ(back.g, c.g);
    EXPECT_EQ(back.b, c.b);
  }
}

// 13 x 11 = 143 pixels per frame: DCMTK 3.6.7 would pad each frame to a byte boundary.
TEST(DicomSeg, OddFrameSizeRoundTripsVoxelExactWithContinuousBits) {
  LUMEN_REQUIRE_CORPUS();
  auto src = source("phantom/odd");
  ASSERT_EQ(src.ref.geometry.size[0] * src.ref.geometry.size[1] % 8, 7u);
  Volume labels = labelsOn(src.ref.geometry);
  paint(labels);
  const fs::path out = outDir() / "odd.dcm";
  auto w = dicom::writeSegmentation(labels, twoLabels(), src.ref, aiOptions(), out);
  ASSERT_TRUE(w) << w.error().toString();
  EXPECT_EQ(w->segments, 2u);
  EXPECT_EQ(w->segmentLabels, (std::vector<int>{1, 2}));

  auto r = dicom::readSegmentation(out, src.ref.geometry, src.ref.frameOfReferenceUid);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(differences(labels, *r->labels), 0u);
  EXPECT_TRUE(r->notes.empty());
  ASSERT_EQ(r->infos.size(), 2u);
  EXPECT_EQ(r->infos[0].name, "Liver");
  EXPECT_EQ(r->infos[1].type.value, "52988006");
  EXPECT_EQ(r->infos[1].color.g, 200);
  EXPECT_EQ(r->referencedSeriesUid, src.ref.seriesInstanceUid);
  EXPECT_EQ(r->algorithmType, "AUTOMATIC");

  // The bits themselves: frame f, pixel p is bit f * 143 + p of the pixel data.
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(out.c_str()).good());
  const Uint8* bits = nullptr;
  unsigned long n = 0;
  ASSERT_TRUE(ff.getDataset()->findAndGetUint8Array(DCM_PixelData, bits, &n).good());
  Sint32 frames = 0;
  ff.getDataset()->findAndGetSint32(DCM_NumberOfFrames, frames);
  EXPECT_EQ(static_cast<std::size_t>(frames), w->frames);
  EXPECT_EQ(n, ((frames * 143 + 7) / 8 + 1) / 2 * 2);
  // Empty frames are left out: label 1's cone is on every slice, label 2 on 5 of 7.
  EXPECT_EQ(frames, 7 + 5);
  // Frame 2 (label 1, slice 1) starts at bit 143, mid-byte: its centre pixel is set.
  const std::size_t centre = 143 + 6 * 11 + 5;
  EXPECT_TRUE((bits[centre / 8] >> (centre % 8)) & 1);
  std::size_t setBits = 0, setVoxels = 0;
  for (std::size_t b = 0; b < static_cast<std::size_t>(frames) * 143; ++b) setBits += (bits[b / 8] >> (b % 8)) & 1;
  for (std::size_t v = 0; v < labels.voxelCount(); ++v) setVoxels += labels.data<std::uint8_t>()[v] != 0;
  EXPECT_EQ(setBits, setVoxels);
}

TEST(DicomSeg, DcmtkLoadsItWithReferencesToEverySourceInstance) {
  LUMEN_REQUIRE_CORPUS();
  auto src = source("ramp/axial-shuffled");
  Volume labels = labelsOn(src.ref.geometry);
  paint(labels);
  const fs::path out = outDir() / "axial.dcm";
  auto w = dicom::writeSegmentation(labels, twoLabels(), src.ref, aiOptions(), out);
  ASSERT_TRUE(w) << w.error().toString();

  DcmSegmentation* seg = nullptr;
  ASSERT_TRUE(DcmSegmentation::loadFile(out.c_str(), seg).good());
  std::unique_ptr<DcmSegmentation> owner(seg);
  EXPECT_EQ(seg->getNumberOfSegments(), 2u);
  EXPECT_EQ(seg->getNumberOfFrames(), w->frames);
  OFString label;
  seg->getSegment(1)->getSegmentLabel(label);
  EXPECT_EQ(std::string(label.c_str()), "Liver");

  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(out.c_str()).good());
  DcmDataset* ds = ff.getDataset();
  OFString v;
  ds->findAndGetOFString(DCM_StudyInstanceUID, v);
  EXPECT_EQ(std::string(v.c_str()), src.loaded.plans[0].info.study.studyInstanceUid);
  ds->findAndGetOFString(DCM_FrameOfReferenceUID, v);
  EXPECT_EQ(std::string(v.c_str()), src.ref.frameOfReferenceUid);
  // Every source instance is in the Referenced Series Sequence, and each frame's
  // derivation names the instance of its own slice.
  DcmItem* series = nullptr;
  ASSERT_TRUE(ds->findAndGetSequenceItem(DCM_ReferencedSeriesSequence, series, 0).good());
  DcmSequenceOfItems* instances = nullptr;
  ASSERT_TRUE(series->findAndGetSequence(DCM_ReferencedInstanceSequence, instances).good());
  EXPECT_EQ(instances->card(), src.loaded.scan.files.size());
  DcmItem* item = nullptr;
  ASSERT_TRUE(ds->findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, item, 0).good());
  DcmItem* der = nullptr;
  ASSERT_TRUE(item->findAndGetSequenceItem(DCM_DerivationImageSequence, der, 0).good());
  DcmItem* srcItem = nullptr;
  ASSERT_TRUE(der->findAndGetSequenceItem(DCM_SourceImageSequence, srcItem, 0).good());
  srcItem->findAndGetOFString(DCM_ReferencedSOPInstanceUID, v);
  // Frame 1 is label 1 on slice 0.
  EXPECT_EQ(std::string(v.c_str()), src.ref.slices[0][0].sopInstanceUid);
}

TEST(DicomSeg, ObliqueAndMultiFrameSourcesRoundTrip) {
  LUMEN_REQUIRE_CORPUS();
  for (const char* rel : {"ramp/oblique", "enhanced"}) {
    SCOPED_TRACE(rel);
    auto src = source(rel);
    Volume labels = labelsOn(src.ref.geometry);
    paint(labels);
    const fs::path out = outDir() / (std::string(rel == std::string("enhanced") ? "enhanced" : "oblique") + ".dcm");
    auto w = dicom::writeSegmentation(labels, twoLabels(), src.ref, aiOptions(), out);
    ASSERT_TRUE(w) << w.error().toString();
    auto r = dicom::readSegmentation(out, src.ref.geometry);
    ASSERT_TRUE(r) << r.error().toString();
    EXPECT_EQ(differences(labels, *r->labels), 0u);
    EXPECT_TRUE(r->notes.empty());
  }
  // The enhanced source is one instance: frames are referenced by number.
  auto src = source("enhanced");
  std::set<std::uint32_t> numbers;
  for (const auto& s : src.ref.slices) numbers.insert(s.at(0).frameNumber);
  EXPECT_EQ(numbers.size(), src.ref.slices.size());
  EXPECT_EQ(*numbers.begin(), 1u);
}

TEST(DicomSeg, ReadOntoAnotherGridCropsOrResamples) {
  LUMEN_REQUIRE_CORPUS();
  auto src = source("ramp/axial-shuffled");
  Volume labels = labelsOn(src.ref.geometry);
  paint(labels);
  const fs::path out = outDir() / "regrid.dcm";
  ASSERT_TRUE(dicom::writeSegmentation(labels, twoLabels(), src.ref, aiOptions(), out));

  // A grid shifted by whole voxels: copied exactly, the part outside reported.
  ImageGeometry shifted = src.ref.geometry;
  shifted.originLps = shifted.ijkToLps({3.0, 2.0, 1.0});
  auto r = dicom::readSegmentation(out, shifted);
  ASSERT_TRUE(r) << r.error().toString();
  std::size_t mismatched = 0;
  const auto& g = shifted.size;
  for (std::size_t k = 0; k + 1 < g[2]; ++k)
    for (std::size_t j = 0; j + 2 < g[1]; ++j)
      for (std::size_t i = 0; i + 3 < g[0]; ++i)
        mismatched += r->labels->data<std::uint8_t>()[r->labels->linearIndex(i, j, k)] !=
                      labels.data<std::uint8_t>()[labels.linearIndex(i + 3, j + 2, k + 1)];
  EXPECT_EQ(mismatched, 0u);
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_NE(r->notes[0].find("outside"), std::string::npos);

  // A grid twice as fine in-plane: every fine voxel takes the coarse pixel it lies in.
  ImageGeometry fine = src.ref.geometry;
  fine.spacingMm.x /= 2;
  fine.spacingMm.y /= 2;
  fine.size[0] *= 2;
  fine.size[1] *= 2;
  fine.originLps = src.ref.geometry.ijkToLps({-0.25, -0.25, 0.0});
  auto f = dicom::readSegmentation(out, fine);
  ASSERT_TRUE(f) << f.error().toString();
  ASSERT_FALSE(f->notes.empty());
  EXPECT_NE(f->notes[0].find("nearest neighbour"), std::string::npos);
  std::size_t wrong = 0;
  for (std::size_t k = 0; k < fine.size[2]; ++k)
    for (std::size_t j = 0; j < fine.size[1]; ++j)
      for (std::size_t i = 0; i < fine.size[0]; ++i)
        wrong += f->labels->data<std::uint8_t>()[f->labels->linearIndex(i, j, k)] !=
                 labels.data<std::uint8_t>()[labels.linearIndex(i / 2, j / 2, k)];
  EXPECT_EQ(wrong, 0u);
}

TEST(DicomSeg, RefusesWhatItCannotWriteOrRead) {
  LUMEN_REQUIRE_CORPUS();
  auto src = source("phantom/odd");
  Volume empty = labelsOn(src.ref.geometry);
  auto e = dicom::writeSegmentation(empty, {}, src.ref, aiOptions(), outDir() / "empty.dcm");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().toString().find("empty"), std::string::npos);
  EXPECT_FALSE(fs::exists(outDir() / "empty.dcm"));

  Volume labels = labelsOn(src.ref.geometry);
  paint(labels);
  auto noName = aiOptions();
  noName.algorithm.name.clear();
  EXPECT_FALSE(dicom::writeSegmentation(labels, {}, src.ref, noName, outDir() / "x.dcm"));
  auto badLabel = aiOptions();
  badLabel.contentLabel = "lower case";
  EXPECT_FALSE(dicom::writeSegmentation(labels, {}, src.ref, badLabel, outDir() / "x.dcm"));
  ImageGeometry other = src.ref.geometry;
  other.spacingMm.z *= 2;
  dicom::SegReference wrongGrid = src.ref;
  wrongGrid.geometry = other;
  EXPECT_FALSE(dicom::writeSegmentation(labels, {}, wrongGrid, aiOptions(), outDir() / "x.dcm"));

  // Uncoded labels get a code and a note; a gap in the values renumbers, and says so.
  for (std::size_t v = 0; v < labels.voxelCount(); ++v)
    if (labels.data<std::uint8_t>()[v] == 2) labels.data<std::uint8_t>()[v] = 5;
  dicom::SegWriteOptions manual;
  auto w = dicom::writeSegmentation(labels, {}, src.ref, manual, outDir() / "renumbered.dcm");
  ASSERT_TRUE(w) << w.error().toString();
  EXPECT_EQ(w->segmentLabels, (std::vector<int>{1, 5}));
  std::string notes;
  for (const auto& n : w->notes) notes += n + "\n";
  EXPECT_NE(notes.find("label 5 is segment 2"), std::string::npos);
  EXPECT_NE(notes.find("no category/type code"), std::string::npos);

  // Not a SEG; a SEG of another frame of reference; a truncated SEG.
  const std::string image = src.ref.firstFile;
  auto notSeg = dicom::readSegmentation(image, src.ref.geometry);
  ASSERT_FALSE(notSeg);
  EXPECT_NE(notSeg.error().toString().find(image), std::string::npos);
  EXPECT_FALSE(dicom::readSegmentation(outDir() / "renumbered.dcm", src.ref.geometry, "1.2.3.4"));
  const fs::path cut = outDir() / "truncated.dcm";
  fs::copy_file(outDir() / "renumbered.dcm", cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(cut) - 40);
  auto t = dicom::readSegmentation(cut, src.ref.geometry);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().toString().find("truncated.dcm"), std::string::npos);
  // Hostile files are refused before DCMTK parses them (sequences nested 20000 deep would
  // overflow its stack), as SEG and as RT structure set.
  for (const char* bad : {"bad/deep-nesting.dcm", "bad/absurd-sequence-length.dcm", "bad/random-bytes.dcm"}) {
    auto h = dicom::readSegmentation(test::corpus(bad), src.ref.geometry);
    ASSERT_FALSE(h) << bad;
    EXPECT_NE(h.error().toString().find(bad), std::string::npos);
    EXPECT_FALSE(dicom::readRtStruct(test::corpus(bad), src.ref.geometry)) << bad;
  }
}

// A SEG beside its images is a series of their study in the database (an image without
// pixel data is still refused).
TEST(DicomSeg, ImportedAsASeriesOfItsStudy) {
  LUMEN_REQUIRE_CORPUS();
  auto src = source("phantom/odd");
  Volume labels = labelsOn(src.ref.geometry);
  paint(labels);
  const fs::path dir = outDir() / "db";
  fs::remove_all(dir);
  fs::create_directories(dir / "in");
  ASSERT_TRUE(dicom::writeSegmentation(labels, twoLabels(), src.ref, aiOptions(), dir / "in" / "seg.dcm"));
  auto db = db::StudyDatabase::open(dir / "data");
  ASSERT_TRUE(db);
  auto r = (*db)->import({test::corpus("phantom/odd"), dir / "in", test::corpus("bad/no-pixel-data.dcm")}, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->instancesAdded, 7u + 1u);
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_NE(r->skipped[0].path.find("no-pixel-data"), std::string::npos);
  auto studies = (*db)->studies();
  ASSERT_TRUE(studies);
  ASSERT_EQ(studies->size(), 1u);
  auto series = (*db)->series(studies->front().id);
  ASSERT_TRUE(series);
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ(series->at(1).info.modality, "SEG");
  EXPECT_EQ(series->at(1).info.seriesNumber, src.loaded.plans[0].info.series.seriesNumber + 1000);
}
