#include <gtest/gtest.h>

#include <cstdio>

#include <string>
#include <vector>

#include "lumen/core/Log.h"
#include "lumen/core/Result.h"

using namespace lumen;

TEST(Result, HoldsValueOrError) {
  Result<int> ok = 5;
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 5);
  Result<int> bad = Error(ErrorCode::Corrupt, "truncated", "/data/x.dcm");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().toString(), "/data/x.dcm: truncated");
  Status s;
  EXPECT_TRUE(s);
  Status f = Error(ErrorCode::Io, "disk full");
  EXPECT_EQ(f.error().toString(), "disk full");
}

TEST(Log, SinkAndLevelFilter) {
  std::vector<std::string> lines;
  setLogSink([&](LogLevel, std::string_view m) { lines.emplace_back(m); });
  setLogLevel(LogLevel::Warning);
  LUMEN_INFO("hidden " << 1);
  LUMEN_WARN("shown " << 2);
  setLogLevel(LogLevel::Debug);
  LUMEN_DEBUG("debug " << 3);
  setLogSink({});
  setLogLevel(LogLevel::Warning);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "shown 2");
  EXPECT_EQ(lines[1], "debug 3");
}

#include "lumen/core/Sha256.h"

TEST(Sha256, HmacMatchesRfc4231) {
  auto hex = [](const std::array<std::uint8_t, 32>& d) {
    std::string s;
    char b[3];
    for (auto v : d) {
      std::snprintf(b, sizeof b, "%02x", v);
      s += b;
    }
    return s;
  };
  EXPECT_EQ(hex(Sha256::hmac(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hex(Sha256::hmac("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A key longer than the block is hashed first (test case 6).
  EXPECT_EQ(hex(Sha256::hmac(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(Sha256::hexOf("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hexOf("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(Sha256::hexOf(m.data(), m.size()), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  Sha256 h;  // in pieces of awkward sizes
  for (std::size_t i = 0; i < million.size(); i += 777) h.update(million.data() + i, std::min<std::size_t>(777, million.size() - i));
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, UidsFromDigests) {
  std::array<std::uint8_t, 32> d{};
  EXPECT_EQ(Sha256::uidOf(d), "2.25.0");
  d.fill(0xFF);  // only the first 128 bits count
  EXPECT_EQ(Sha256::uidOf(d), "2.25.340282366920938463463374607431768211455");
  // SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223.
  EXPECT_EQ(Sha256::uidOfText("abc"), "2.25.247859944228867399418143717509236138531");
  EXPECT_LE(Sha256::uidOfText("any text at all").size(), 64u);  // a UID's limit
}
