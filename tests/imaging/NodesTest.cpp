#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "lumen/imaging/Nodes.h"

namespace fs = std::filesystem;
using namespace lumen::net;

namespace {
fs::path freshDir() {
  const fs::path d = fs::temp_directory_path() / ("lumen-nodes-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string loadError(const fs::path& f, const std::string& text) {
  std::ofstream(f) << text;
  auto r = loadNodes(f);
  return r ? std::string() : r.error().toString();
}
}  // namespace

TEST(Nodes, AMissingFileIsTheDefaults) {
  auto r = loadNodes(freshDir() / "none.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->local.aeTitle, "LUMEN");
  EXPECT_EQ(r->local.port, 11112);
  EXPECT_TRUE(r->dimse.empty());
}

TEST(Nodes, SavedAndLoadedAreEqualAndTheFileIsTheUsersOnly) {
  const fs::path f = freshDir() / "sub" / "nodes.json";
  NodeConfig c;
  c.local.aeTitle = "READING1";
  c.local.port = 11999;
  c.local.bindAddress = "10.1.2.3";
  c.local.allowedAe = {"PACS", "CT1"};
  c.local.maxAssociations = 3;
  c.local.minFreeMegabytes = 512;
  c.dimse.push_back({"pacs", "ORTHANC", "10.0.0.5", 4242, TlsFiles{"/etc/lumen/pacs-ca.pem", "", ""}});
  c.local.tls = TlsFiles{"", "/etc/lumen/me.crt", "/etc/lumen/me.key"};
  WebNode w;
  w.name = "web";
  w.baseUrl = "https://pacs.example.org/dicom-web";
  w.auth = "basic";
  w.username = "reader";
  w.password = "secret";
  w.caFile = "/etc/lumen/ca.pem";
  c.web.push_back(w);
  ASSERT_TRUE(saveNodes(f, c));
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto r = loadNodes(f);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->local.aeTitle, "READING1");
  EXPECT_EQ(r->local.port, 11999);
  EXPECT_EQ(r->local.bindAddress, "10.1.2.3");
  EXPECT_EQ(r->local.allowedAe, (std::vector<std::string>{"PACS", "CT1"}));
  EXPECT_EQ(r->local.maxAssociations, 3);
  EXPECT_EQ(r->local.minFreeMegabytes, 512);
  ASSERT_EQ(r->dimse.size(), 1u);
  EXPECT_EQ(r->dimse[0].aeTitle, "ORTHANC");
  EXPECT_EQ(r->dimse[0].port, 4242);
  ASSERT_TRUE(r->dimse[0].tls);
  EXPECT_EQ(r->dimse[0].tls->caFile, "/etc/lumen/pacs-ca.pem");
  ASSERT_TRUE(r->local.tls);
  EXPECT_EQ(r->local.tls->keyFile, "/etc/lumen/me.key");
  EXPECT_EQ(r->local.tls->caFile, "");
  ASSERT_NE(r->findWeb("web"), nullptr);
  EXPECT_EQ(r->findWeb("web")->password, "secret");
  EXPECT_EQ(r->findWeb("web")->caFile, "/etc/lumen/ca.pem");
}

TEST(Nodes, WhatCannotBeHonouredIsAnErrorNamingIt) {
  const fs::path f = freshDir() / "nodes.json";
  EXPECT_NE(loadError(f, R"({"local": {"ae_titel": "X"}})").find("unknown setting \"ae_titel\""), std::string::npos);
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "a", "ae_title": "A", "host": "h", "tls": true}]})").find("must be a JSON object"),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "a", "ae_title": "A", "host": "h", "tls": {}}]})").find("\"ca_file\" is missing"),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "a", "ae_title": "A", "host": "h", "tls": {"ca_file": "/c", "cert_file": "/x"}}]})")
                .find("go together"),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"local": {"tls": {"cert_file": "me.crt", "key_file": "/k"}}})").find("relative path"),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"local": {"tls": {"cert_file": "/c", "key_file": "/k", "verify": true}}})")
                .find("unknown setting \"verify\""),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "a", "ae_title": "MUCH_TOO_LONG_AE_TITLE", "host": "h"}]})")
                .find("1 to 16 characters"),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "a", "ae_title": "A", "host": "h"}, {"name": "a", "ae_title": "B", "host": "h"}]})")
                .find("two nodes are named"),
            std::string::npos);
  EXPECT_NE(loadError(f, R"({"local": {"port": 70000}})").find("\"port\" must lie in"), std::string::npos);
  // A listener that cannot listen where it was told to is an error, never every interface.
  EXPECT_NE(loadError(f, R"({"local": {"bind_address": "localhost"}})").find("\"bind_address\" localhost: not an IPv4"),
            std::string::npos);
  EXPECT_NE(loadError(f, "{not json").find("not valid JSON"), std::string::npos);
  // A syntax error beside a password does not quote it.
  const std::string broken = R"({"nodes": [{"name": "w", "type": "dicomweb", "url": "https://x", "auth": "basic", )"
                             R"("username": "u", "password": "hunter2" "extra"}]})";
  const std::string why = loadError(f, broken);
  EXPECT_NE(why.find("not valid JSON"), std::string::npos);
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "w", "type": "dicomweb", "url": "https://u:pw@x/dicom-web"}]})")
                .find("never in the URL"),
            std::string::npos);
  EXPECT_NE(checkTlsFiles({"/ca.pem", "/me.crt", ""}, false).find("go together"), std::string::npos);
  EXPECT_NE(checkTlsFiles({"", "", ""}, false).find("ca_file"), std::string::npos);
  EXPECT_NE(checkTlsFiles({"/ca.pem", "", ""}, true).find("cert_file"), std::string::npos);
  EXPECT_EQ(checkTlsFiles({"", "/me.crt", "/me.key"}, true), "");
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "w", "type": "dicomweb", "url": "ftp://x"}]})").find("http"), std::string::npos);
  // Credentials that would never be sent, or a half-configured auth, are errors.
  const auto web = [&](const std::string& extra) {
    return loadError(f, R"({"nodes": [{"name": "w", "type": "dicomweb", "url": "https://x/dicom-web")" + extra + "}]}");
  };
  EXPECT_NE(web(R"(, "token": "t")").find("\"auth\" is not"), std::string::npos);
  EXPECT_NE(web(R"(, "auth": "basic", "username": "u")").find("needs \"username\" and \"password\""), std::string::npos);
  EXPECT_NE(web(R"(, "auth": "bearer")").find("needs \"token\""), std::string::npos);
  EXPECT_NE(web(R"(, "auth": "digest")").find("\"basic\" or \"bearer\""), std::string::npos);
  EXPECT_NE(loadError(f, R"({"nodes": [{"name": "w", "type": "dicomweb", "url": "http://x", "ca_file": "c.pem"}]})")
                .find("for https://"),
            std::string::npos);
}

TEST(Nodes, BindAddressRules) {
  EXPECT_EQ(checkBindAddress("127.0.0.1"), "");
  EXPECT_EQ(checkBindAddress("0.0.0.0"), "");
  EXPECT_NE(checkBindAddress(""), "");
  EXPECT_NE(checkBindAddress("::1"), "");
  EXPECT_NE(checkBindAddress("10.0.0"), "");
  EXPECT_NE(checkBindAddress("10.0.0.256"), "");
  EXPECT_NE(checkBindAddress("pacs.example.org"), "");
}

TEST(Nodes, AeTitleRules) {
  EXPECT_EQ(checkAeTitle("ORTHANC"), "");
  EXPECT_EQ(checkAeTitle("A B"), "");
  EXPECT_NE(checkAeTitle(""), "");
  EXPECT_NE(checkAeTitle("    "), "");
  EXPECT_NE(checkAeTitle("BACK\\SLASH"), "");
  EXPECT_NE(checkAeTitle(std::string(17, 'A')), "");
}
