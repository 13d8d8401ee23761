#include <gtest/gtest.h>

#include "../../models/src/ConfigValue.h"
#include "ModelsTestSupport.h"
#include "lumen/core/Sha256.h"
#include "lumen/models/Bundle.h"

using namespace lumen;
using namespace lumen::models;

TEST(Bundle, ReadsTheSpleenCtSegmentationConfig) {
  LUMEN_REQUIRE_TEST_MODELS();
  auto b = loadBundle(test::testModels("spleen_like"));
  ASSERT_TRUE(b) << b.error().toString();
  EXPECT_EQ(b->name, "spleen_ct_segmentation");
  EXPECT_EQ(b->task, Task::Segmentation);
  ASSERT_EQ(b->preprocessing.size(), 3u);
  ASSERT_TRUE(std::holds_alternative<OrientationT>(b->preprocessing[0]));
  EXPECT_EQ(std::get<OrientationT>(b->preprocessing[0]).axcodes, "RAS");
  const auto& sp = std::get<SpacingT>(b->preprocessing[1]);
  EXPECT_EQ(sp.pixdim, (std::vector<double>{1.5, 1.5, 2.0}));
  EXPECT_EQ(sp.mode, "bilinear");
  const auto& si = std::get<ScaleIntensityRangeT>(b->preprocessing[2]);
  EXPECT_DOUBLE_EQ(si.aMin, -57);
  EXPECT_DOUBLE_EQ(si.aMax, 164);
  EXPECT_DOUBLE_EQ(si.bMax, 1);
  EXPECT_TRUE(si.clip);
  EXPECT_TRUE(b->inferer.slidingWindow);
  EXPECT_EQ(b->inferer.window.roiSize, (std::vector<int>{96, 96, 96}));
  EXPECT_EQ(b->inferer.window.swBatchSize, 4);
  EXPECT_DOUBLE_EQ(b->inferer.window.overlap, 0.5);
  EXPECT_EQ(b->inferer.window.mode, BlendMode::Constant);
  ASSERT_EQ(b->postprocessing.size(), 3u);
  EXPECT_TRUE(std::get<ActivationsT>(b->postprocessing[0]).softmax);
  EXPECT_FALSE(std::get<InvertT>(b->postprocessing[1]).nearest);
  EXPECT_TRUE(std::get<AsDiscreteT>(b->postprocessing[2]).argmax);
  // The steps Lumen does itself are said, not ignored.
  std::string notes;
  for (const auto& n : b->notes) notes += n + "\n";
  for (const char* k : {"LoadImaged", "EnsureChannelFirstd", "EnsureTyped", "SaveImaged"})
    EXPECT_NE(notes.find(k), std::string::npos) << k;
  EXPECT_EQ(b->labels().at(1), "spleen");
  EXPECT_EQ(b->extras.modalityFilter, "CT");
  EXPECT_EQ(b->extras.labelColors.at(1).r, 220);
  auto hash = Sha256::hexOfFile(b->modelPath);
  ASSERT_TRUE(hash);
  EXPECT_EQ(b->modelSha256, *hash);
  EXPECT_EQ(b->modelSha256.size(), 64u);
}

TEST(Bundle, ResolvesPlainReferencesAndLiterals) {
  LUMEN_REQUIRE_TEST_MODELS();
  auto b = loadBundle(test::testModels("references"));
  ASSERT_TRUE(b) << b.error().toString();
  EXPECT_EQ(std::get<SpacingT>(b->preprocessing[1]).pixdim, (std::vector<double>{1.5, 1.5, 2.0}));
  EXPECT_EQ(b->inferer.window.roiSize, (std::vector<int>{64, 64, 32}));
}

struct BadBundle {
  const char* dir;
  const char* words[2];
};

class MalformedBundle : public ::testing::TestWithParam<BadBundle> {};

TEST_P(MalformedBundle, IsRefusedWithAClearMessage) {
  LUMEN_REQUIRE_TEST_MODELS();
  auto b = loadBundle(test::testModels(GetParam().dir));
  ASSERT_FALSE(b) << GetParam().dir << " was accepted";
  const std::string m = b.error().toString();
  for (const char* w : GetParam().words) EXPECT_NE(m.find(w), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Models, MalformedBundle,
    ::testing::Values(BadBundle{"unknown_transform", {"RandFlipd", "preprocessing#transforms#3"}},
                      BadBundle{"python_expression", {"pixdim", "does not run Python"}},
                      BadBundle{"no_model", {"model.ts", "missing"}},
                      BadBundle{"bad_json", {"metadata.json", "not valid JSON"}},
                      BadBundle{"no_data_format", {"metadata.json", "network_data_format"}},
                      BadBundle{"bad_task", {"lumen.json", "sorcery"}},
                      BadBundle{"bad_slice_evidence", {"lumen.json", "slice_evidence"}},
                      BadBundle{"bad_estimate", {"lumen.json", "known_range"}},
                      BadBundle{"bad_size_reference", {"estimate.size_reference", "slope_ln_per_mm"}},
                      BadBundle{"unknown_estimate_key", {"lumen.json", "unknown key 'size_referral'"}},
                      BadBundle{"size_reference_unknown_key", {"estimate.size_reference", "unknown key 'pixel_mm'"}},
                      BadBundle{"size_reference_coronal", {"estimate.size_reference", "\"plane\": \"axial\""}},
                      BadBundle{"does_not_exist", {"does_not_exist", "not a model bundle"}},
                      // Types a hand-edited bundle gets wrong: errors naming the key, never a crash.
                      BadBundle{"bad_label_colors", {"lumen.json", "label_colors#1"}},
                      BadBundle{"bad_pixdim_type", {"inference.json", "pixdim: expected numbers"}},
                      BadBundle{"bad_plane", {"lumen.json", "plane"}},
                      // Options that change MONAI's result and are not reproduced: refused by name.
                      BadBundle{"refused_spacing_align_corners", {"transforms#3", "align_corners"}},
                      BadBundle{"refused_spacing_diagonal", {"transforms#3", "diagonal"}},
                      BadBundle{"refused_spacing_padding_mode", {"padding_mode", "reflection"}},
                      BadBundle{"refused_spacing_scale_extent", {"transforms#3", "scale_extent"}},
                      BadBundle{"refused_spacing_recompute_affine", {"transforms#3", "recompute_affine"}},
                      BadBundle{"refused_orientation_labels", {"transforms#2", "labels"}},
                      BadBundle{"refused_asdiscrete_dim", {"postprocessing", "dim"}},
                      BadBundle{"refused_asdiscrete_keepdim", {"postprocessing", "keepdim"}},
                      BadBundle{"refused_threshold_values", {"postprocessing", "threshold_values"}},
                      BadBundle{"refused_klcc_connectivity", {"postprocessing", "connectivity"}}),
    [](const auto& p) { return std::string(p.param.dir); });

TEST(Bundle, PythonLiteralsOnly) {
  using config::parsePythonLiteral;
  EXPECT_EQ(*parsePythonLiteral("(96, 96, 96)"), nlohmann::json({96, 96, 96}));
  EXPECT_EQ(*parsePythonLiteral("[1.5, -2e-1, True, None, 'RAS']"), nlohmann::json({1.5, -0.2, true, nullptr, "RAS"}));
  EXPECT_FALSE(parsePythonLiteral("torch.device('cpu')"));
  EXPECT_FALSE(parsePythonLiteral("[1, 2"));
  EXPECT_FALSE(parsePythonLiteral("__import__('os').system('rm -rf /')"));
}

TEST(Bundle, DiscoveryListsGoodAndBadBundles) {
  LUMEN_REQUIRE_TEST_MODELS();
  const auto entries = discoverBundles({test::testModels()});
  int good = 0, bad = 0;
  for (const auto& e : entries) (e.bundle ? good : bad)++;
  EXPECT_GE(good, 9);
  EXPECT_GE(bad, 4);
  auto byName = findBundle("spleen_ct_segmentation", {test::testModels()});
  ASSERT_TRUE(byName) << byName.error().toString();
  EXPECT_EQ(byName->root.filename(), "spleen_like");
  EXPECT_FALSE(findBundle("no-such-model", {test::testModels()}));
}
