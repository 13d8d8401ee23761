#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lumen/imaging/MeasurementIO.h"

using namespace lumen;

namespace {

std::vector<Measurement> sample() {
  std::vector<Measurement> list;
  Measurement d;
  d.id = 1;
  d.kind = MeasurementKind::Distance;
  d.points = {{0.1, -2.5, 30.25}, {3.1, 1.5, 30.25}};
  d.text = "width, \"max\"";
  list.push_back(d);
  Measurement r;
  r.id = 4;
  r.kind = MeasurementKind::Rectangle;
  r.points = {{0, 0, 2}, {4, 3, 2}};
  list.push_back(r);
  Measurement a;
  a.id = 7;
  a.kind = MeasurementKind::Angle;
  a.points = {{1, 0, 0}, {0, 0, 0}, {0, 1, 0}};
  a.right = Vec3{1, 1, 0}.normalized();
  a.up = Vec3{-1, 1, 0}.normalized();
  list.push_back(a);
  return list;
}

}  // namespace

TEST(MeasurementIO, DocumentRoundTripsExactly) {
  const auto list = sample();
  const std::string doc = measurementsToDocument(list);
  auto back = measurementsFromDocument(doc, "db");
  ASSERT_TRUE(back.ok()) << back.error().toString();
  ASSERT_EQ(back->size(), list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    EXPECT_EQ((*back)[i].id, list[i].id);
    EXPECT_EQ((*back)[i].kind, list[i].kind);
    EXPECT_EQ((*back)[i].text, list[i].text);
    ASSERT_EQ((*back)[i].points.size(), list[i].points.size());
    for (std::size_t p = 0; p < list[i].points.size(); ++p)
      for (std::size_t c = 0; c < 3; ++c) EXPECT_EQ((*back)[i].points[p][c], list[i].points[p][c]);  // bit-exact
    EXPECT_EQ((*back)[i].right.x, list[i].right.x);
  }
  EXPECT_EQ(measurementsToDocument({}), "");
  EXPECT_TRUE(measurementsFromDocument("", "db")->empty());
}

TEST(MeasurementIO, DocumentsAreReadStrictly) {
  const std::string good = measurementsToDocument(sample());
  auto bad = [&](const std::string& from, const std::string& to, const std::string& expect) {
    std::string doc = good;
    const auto at = doc.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    doc.replace(at, from.size(), to);
    auto r = measurementsFromDocument(doc, "lumen.db");
    ASSERT_FALSE(r.ok()) << "accepted: " << to;
    EXPECT_NE(r.error().toString().find(expect), std::string::npos) << r.error().toString();
    EXPECT_EQ(r.error().resource, "lumen.db");
  };
  bad("\"kind\":\"distance\"", "\"kind\":\"ruler\"", "unknown \"kind\"");
  bad("\"text\":\"\"", "\"text\":\"\",\"colour\":1", "unknown key \"colour\"");
  bad("\"version\":1", "\"version\":2", "unsupported version");
  bad("\"version\":1", "\"version\":4294967297", "unsupported version");  // no wrap to 1
  bad("\"id\":4", "\"id\":1", "used twice");
  bad("[[0.0,0.0,2.0],[4.0,3.0,2.0]]", "[[0.0,0.0,2.0],[4.0,3.0,2.5]]", "not in one plane");
  bad("[[0.0,0.0,2.0],[4.0,3.0,2.0]]", "[[0.0,0.0,2.0]]", "wrong number of points");
  EXPECT_FALSE(measurementsFromDocument("{", "x").ok());
  EXPECT_FALSE(measurementsFromDocument("[]", "x").ok());
}

TEST(MeasurementIO, ExportsCarryTheValues) {
  ImageGeometry g;
  g.size = {20, 20, 4};
  g.spacingMm = {0.5, 0.5, 2.0};
  auto image = Volume::allocate(PixelType::Int16, g);
  ASSERT_TRUE(image.ok());
  for (std::size_t i = 0; i < image->voxelCount(); ++i) image->data<std::int16_t>()[i] = 25;
  MeasurementSource src{"1.2.3", "1.2", "1.2.9", "", "HU"};
  const auto list = sample();

  const auto j = nlohmann::json::parse(exportMeasurementsJson(list, &*image, src));
  EXPECT_EQ(j["seriesInstanceUid"], "1.2.3");
  EXPECT_EQ(j["coordinates"], "LPS mm");
  ASSERT_EQ(j["measurements"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["measurements"][0]["lengthMm"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(j["measurements"][1]["areaMm2"].get<double>(), 12.0);
  // Voxel centres inside 0..4 x 0..3 mm on slice 1 (z = 2): 9 x 7 at 0.5 mm.
  EXPECT_EQ(j["measurements"][1]["statistics"]["samples"], 63);
  EXPECT_DOUBLE_EQ(j["measurements"][1]["statistics"]["mean"].get<double>(), 25.0);
  EXPECT_EQ(j["measurements"][1]["statistics"]["units"], "HU");
  EXPECT_NEAR(j["measurements"][2]["angleDeg"].get<double>(), 90.0, 1e-9);

  const std::string csv = exportMeasurementsCsv(list, &*image, src);
  EXPECT_EQ(csv,
            "id,kind,text,length_mm,angle_deg,area_mm2,mean,sd,min,max,samples,units,points_lps\r\n"
            "1,distance,\"width, \"\"max\"\"\",5,,,,,,,,,0.1 -2.5 30.25;3.1 1.5 30.25\r\n"
            "4,rectangle,,,,12,25,0,25,25,63,HU,0 0 2;4 3 2\r\n"
            "7,angle,,,90,,,,,,,,1 0 0;0 0 0;0 1 0\r\n");
  // Without an image: geometry only.
  const std::string bare = exportMeasurementsCsv(list, nullptr, src);
  EXPECT_NE(bare.find("4,rectangle,,,,12,,,,,,,0 0 2;4 3 2"), std::string::npos) << bare;
}
