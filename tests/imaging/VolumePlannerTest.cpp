#include <gtest/gtest.h>

#include "Corpus.h"

using namespace lumen;
using namespace lumen::dicom;

namespace {
bool hasWarning(const VolumePlan& p, const std::string& word) {
  for (const auto& w : p.info.warnings)
    if (w.find(word) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST(VolumePlanner, OrdersSlicesByPositionNotByNameOrInstanceNumber) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/axial-shuffled"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto& p = l.plans[0];
  EXPECT_EQ(p.geometry.size[2], 20u);
  EXPECT_NEAR(p.geometry.spacingMm.z, 2.5, 1e-6);
  EXPECT_NEAR(p.geometry.originLps.z, -20.0, 1e-6);
  EXPECT_FALSE(p.resampled);
  EXPECT_TRUE(p.info.warnings.empty());
  // Ascending along the normal.
  for (std::size_t k = 1; k < p.slices.size(); ++k) {
    const auto& a = l.scan.files[p.slices[k - 1].a.file].frames[0].positionLps;
    const auto& b = l.scan.files[p.slices[k].a.file].frames[0].positionLps;
    EXPECT_LT(a.z, b.z);
  }
}

TEST(VolumePlanner, SpacingComesFromPositionsNotSliceThickness) {
  auto l = test::scanAndPlan(test::sampleCt());
  ASSERT_EQ(l.plans.size(), 1u);
  // SliceThickness is 1.0 mm; slices are 0.7 mm apart.
  EXPECT_NEAR(l.plans[0].geometry.spacingMm.z, 0.7, 1e-3);
  EXPECT_EQ(l.plans[0].geometry.size[2], 32u);
  EXPECT_EQ(l.plans[0].pixelType, PixelType::Int16);
  EXPECT_EQ(l.plans[0].info.units, "HU");
}

TEST(VolumePlanner, MissingSlicesAreReportedAndResampled) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/missing"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto& p = l.plans[0];
  EXPECT_EQ(p.geometry.size[2], 20u);  // the regular grid includes the two missing positions
  EXPECT_EQ(p.sourceFrames, 18u);
  EXPECT_TRUE(p.resampled);
  EXPECT_TRUE(hasWarning(p, "2 slice(s) missing")) << p.info.warnings.front();
}

TEST(VolumePlanner, NonUniformSpacingIsReportedAndResampled) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/nonuniform"));
  ASSERT_EQ(l.plans.size(), 1u);
  EXPECT_TRUE(l.plans[0].resampled);
  EXPECT_TRUE(hasWarning(l.plans[0], "non-uniform"));
}

TEST(VolumePlanner, GantryTiltIsDetectedFromPositions) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/tilt"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto& p = l.plans[0];
  EXPECT_TRUE(p.resampled);
  EXPECT_TRUE(hasWarning(p, "15 degrees from the slice normal, gantry tilt")) << p.info.warnings.front();
  EXPECT_NEAR(p.geometry.spacingMm.z, 2.0, 1e-6);  // along the normal, not along the tilt
  // 19 steps of 2 mm x tan(15 deg) = 10.2 mm = 5.09 rows of 2 mm: the grid grows by 6 rows.
  EXPECT_EQ(p.geometry.size[0], 40u);
  EXPECT_EQ(p.geometry.size[1], 32u + 6u);
  EXPECT_EQ(p.frameRows, 32u);
}

// Every acquired voxel centre (each frame's corners and edge midpoints) lies inside the
// tilt-corrected grid: nothing acquired is cut away.
TEST(VolumePlanner, TiltCorrectedGridHoldsEveryAcquiredVoxel) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/tilt"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto& g = l.plans[0].geometry;
  std::size_t checked = 0;
  for (const auto& f : l.scan.files) {
    const auto& fr = f.frames[0];
    for (double i : {0.0, (f.columns - 1) / 2.0, f.columns - 1.0})
      for (double j : {0.0, (f.rows - 1) / 2.0, f.rows - 1.0}) {
        const Vec3 p = fr.positionLps + fr.rowCosine * (i * fr.spacingI) + fr.columnCosine * (j * fr.spacingJ);
        const Vec3 ijk = g.lpsToIjk(p);
        for (int a = 0; a < 3; ++a) {
          EXPECT_GE(ijk[a], -1e-6) << f.path << " pixel " << i << "," << j;
          EXPECT_LE(ijk[a], static_cast<double>(g.size[a] - 1) + 1e-6) << f.path << " pixel " << i << "," << j;
        }
        ++checked;
      }
  }
  EXPECT_EQ(checked, 20u * 9u);
}

TEST(VolumePlanner, DriftUnderHalfAVoxelIsReportedNotResampled) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/drift"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto& p = l.plans[0];
  EXPECT_FALSE(p.resampled);
  EXPECT_EQ(p.geometry.size[1], 32u);
  ASSERT_EQ(p.info.warnings.size(), 1u);
  EXPECT_NE(p.info.warnings[0].find("0.4 degrees from the slice normal"), std::string::npos) << p.info.warnings[0];
  EXPECT_NE(p.info.warnings[0].find("not resampled"), std::string::npos) << p.info.warnings[0];
}

TEST(VolumePlanner, FilesThatStorePixelsDifferentlyAreSeparateVolumes) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/mixed-encoding"));
  ASSERT_EQ(l.plans.size(), 2u);
  for (const auto& p : l.plans) {
    EXPECT_EQ(p.geometry.size[2], 5u);
    EXPECT_NE(p.info.splitLabel.find("encoding"), std::string::npos) << p.info.splitLabel;
    EXPECT_TRUE(hasWarning(p, "BitsStored 12"));
    Volume v = test::load(l, static_cast<std::size_t>(&p - l.plans.data()));
    EXPECT_EQ(test::maxRampError(v), 0.0);
  }
}

TEST(VolumePlanner, LegacyMultiFrameStackingDirectionIsFollowedAndStated) {
  LUMEN_REQUIRE_CORPUS();
  for (const char* name : {"legacy-mf/positive-spacing.dcm", "legacy-mf/negative-spacing.dcm"}) {
    auto l = test::scanAndPlan(test::corpus(name));
    ASSERT_EQ(l.plans.size(), 1u) << name;
    const auto& p = l.plans[0];
    EXPECT_EQ(p.info.stackKind, StackKind::Spatial) << name;
    EXPECT_EQ(p.geometry.size[2], 6u) << name;
    EXPECT_TRUE(hasWarning(p, "assumed to advance")) << name;
    Volume v = test::load(l);
    EXPECT_EQ(test::maxRampError(v), 0.0) << name;
  }
}

TEST(VolumePlanner, SplitsOrientationsLocalizersEchoesTimePointsAndRanges) {
  LUMEN_REQUIRE_CORPUS();
  struct Case {
    const char* dir;
    std::size_t volumes;
    const char* label;
  };
  for (const Case& c : {Case{"ramp/two-orientations", 2, "coronal"}, Case{"ramp/localizer", 2, "localizer"},
                        Case{"ramp/echoes", 2, "echo 2"}, Case{"ramp/time", 3, "time 3"},
                        Case{"ramp/two-stacks", 2, "part 2"}}) {
    auto l = test::scanAndPlan(test::corpus(c.dir));
    ASSERT_EQ(l.plans.size(), c.volumes) << c.dir;
    bool found = false;
    for (const auto& p : l.plans) {
      if (p.info.splitLabel.find(c.label) != std::string::npos) found = true;
      EXPECT_FALSE(p.resampled) << c.dir;
    }
    EXPECT_TRUE(found) << c.dir << ": no volume labelled " << c.label;
  }
}

TEST(VolumePlanner, PerSliceAcquisitionNumbersDoNotSplitASeries) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/acquisition-per-slice"));
  ASSERT_EQ(l.plans.size(), 1u);
  EXPECT_EQ(l.plans[0].geometry.size[2], 10u);
}

TEST(VolumePlanner, DuplicatePositionsAreDroppedWithAReason) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/duplicates"));
  ASSERT_EQ(l.plans.size(), 1u);
  EXPECT_EQ(l.plans[0].geometry.size[2], 10u);
  EXPECT_TRUE(hasWarning(l.plans[0], "duplicate"));
  ASSERT_EQ(l.skipped.size(), 1u);
  EXPECT_NE(l.skipped[0].reason.find("same slice position"), std::string::npos);
}

TEST(VolumePlanner, ObliqueAndSagittalGeometry) {
  LUMEN_REQUIRE_CORPUS();
  auto ob = test::scanAndPlan(test::corpus("ramp/oblique"));
  ASSERT_EQ(ob.plans.size(), 1u);
  EXPECT_TRUE(isOblique(ob.plans[0].geometry.direction));
  auto sag = test::scanAndPlan(test::corpus("ramp/sagittal"));
  ASSERT_EQ(sag.plans.size(), 1u);
  EXPECT_EQ(orientationCode(sag.plans[0].geometry.direction), "PIR");
}

TEST(VolumePlanner, ProjectionImagesAreSingle2DWithSpacingWarning) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("photometric/mono2.dcm"));
  ASSERT_EQ(l.plans.size(), 1u);
  EXPECT_EQ(l.plans[0].info.stackKind, StackKind::Single2D);
  EXPECT_DOUBLE_EQ(l.plans[0].geometry.spacingMm.x, 0.15);
  EXPECT_TRUE(hasWarning(l.plans[0], "ImagerPixelSpacing"));
}

TEST(VolumePlanner, CineFileIsATimeSeries) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("cine"));
  ASSERT_EQ(l.plans.size(), 1u);
  EXPECT_EQ(l.plans[0].info.stackKind, StackKind::TimeSeries2D);
  EXPECT_EQ(l.plans[0].geometry.size[2], 5u);
  EXPECT_NEAR(l.plans[0].info.frameTimeMs, 33.3, 1e-9);
}

TEST(VolumePlanner, DicomdirListsItsReferencedFiles) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("dicomdir/DICOMDIR"));
  ASSERT_FALSE(l.scan.notes.empty());
  EXPECT_NE(l.scan.notes[0].find("DICOMDIR references"), std::string::npos);
  EXPECT_GT(l.scan.files.size(), 10u);
  EXPECT_FALSE(l.plans.empty());
}

TEST(VolumePlanner, ChooseVolumeTakesTheMostSlicesOrTheNumberAsked) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/localizer"));
  ASSERT_EQ(l.plans.size(), 2u);
  auto c = chooseVolume(l.plans, "", 0, "in");
  ASSERT_TRUE(c);
  EXPECT_EQ(l.plans[c->index].geometry.size[2], 10u);
  ASSERT_EQ(c->others.size(), 1u);
  EXPECT_EQ(l.plans[c->others[0]].geometry.size[2], 1u);
  auto second = chooseVolume(l.plans, "", 2, "in");  // 1-based, as `lumen-cli info` numbers them
  ASSERT_TRUE(second);
  EXPECT_EQ(second->index, 1u);
  auto out = chooseVolume(l.plans, "", 3, "in");
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message.find("out of range"), std::string::npos);
  auto series = chooseVolume(l.plans, "9.9.9", 0, "in");
  ASSERT_FALSE(series);
  EXPECT_EQ(series.error().resource, "in");
  auto wrong = chooseVolume(l.plans, l.plans[0].info.series.seriesInstanceUid + "1", 1, "in");
  EXPECT_FALSE(wrong);
}

TEST(VolumePlanner, SlicePlanDecodesOneSliceAtItsPosition) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/oblique"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto one = slicePlan(l.plans[0], 7);
  EXPECT_EQ(one.geometry.size[2], 1u);
  auto v = loadVolume(l.scan, one);
  ASSERT_TRUE(v) << v.error().toString();
  EXPECT_EQ(test::maxRampError(*v), 0.0) << "slice 7 placed at its own position";
}
