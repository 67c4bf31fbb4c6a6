// Tests for fs/options.cc: the jigdoofus and jigdoofus-cat command lines.
#include "fs/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace jigdoofus {
namespace {

// Owns argv storage for one parse.
class Argv {
 public:
  Argv(std::initializer_list<std::string> args) : strings_(args) {
    for (std::string& s : strings_) ptrs_.push_back(s.data());
    ptrs_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(strings_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> ptrs_;
};

Result<CommandLine> Parse(std::initializer_list<std::string> args) {
  Argv a(args);
  return ParseCommandLine(a.argc(), a.argv());
}

Result<CatCommandLine> ParseCat(std::initializer_list<std::string> args) {
  Argv a(args);
  return ParseCatCommandLine(a.argc(), a.argv());
}

class OptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/options_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/a");
    std::filesystem::create_directories(dir_ + "/b");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST(ParseSizeTest, PlainAndSuffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("1K"), 1024u);
  EXPECT_EQ(*ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseSize("20G"), 20ull << 30);
  EXPECT_EQ(*ParseSize("3T"), 3ull << 40);
  EXPECT_EQ(*ParseSize("20g"), 20ull << 30);
  EXPECT_EQ(*ParseSize("512MB"), 512ull << 20);
  EXPECT_EQ(*ParseSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseSize("100B"), 100u);
  EXPECT_EQ(*ParseSize("1.5T"), 3ull << 39);
  EXPECT_EQ(*ParseSize("0.5K"), 512u);
}

TEST(ParseSizeTest, RejectsGarbage) {
  for (const char* bad : {"", "M", "12X", "1.2.3G", "-5M", "5 M", "5MM", "5iB", "1e3", "99999999999999999999",
                          "16777216T", "."}) {
    auto r = ParseSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
      EXPECT_NE(r.status().message().find("bad size"), std::string::npos);
    }
  }
}

TEST_F(OptionsTest, MinimalCommandLine) {
  auto r = Parse({"jigdoofus", "/x/a.jigdo", "/mnt/img"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.sources, std::vector<std::string>{"/x/a.jigdo"});
  EXPECT_EQ(r->mountpoint, "/mnt/img");
  EXPECT_FALSE(r->foreground);
  EXPECT_FALSE(r->debug);
  EXPECT_FALSE(r->single_thread);
  EXPECT_FALSE(r->images.offline);
  EXPECT_FALSE(r->images.trust_file_urls);
  EXPECT_TRUE(r->fuse_options.empty());
  EXPECT_EQ(r->log_level, "info");
  EXPECT_EQ(r->images.jobs, 0);  // not given: the default, more for far servers
}

TEST_F(OptionsTest, SeveralSourcesLastIsMountpoint) {
  auto r = Parse({"jigdoofus", "/x/a.jigdo", "/x/dir", "https://example.org/b.jigdo", "/mnt/img"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.sources,
            (std::vector<std::string>{"/x/a.jigdo", "/x/dir", "https://example.org/b.jigdo"}));
  EXPECT_EQ(r->mountpoint, "/mnt/img");
}

TEST_F(OptionsTest, RelativePathsBecomeAbsolute) {
  std::string cwd = std::filesystem::current_path().string();
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  auto r = Parse({"jigdoofus", "--local", "Debian=a", "--scan", "./b", "--cache-dir", "c", "x.jigdo", "mnt"});
  ASSERT_EQ(chdir(cwd.c_str()), 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.local.at("Debian"), dir_ + "/a");
  EXPECT_EQ(r->images.scan, std::vector<std::string>{dir_ + "/b"});
  EXPECT_EQ(r->images.cache_dir, dir_ + "/c");
  EXPECT_EQ(r->images.sources, std::vector<std::string>{dir_ + "/x.jigdo"});
  EXPECT_EQ(r->mountpoint, dir_ + "/mnt");
}

TEST_F(OptionsTest, AllLongOptions) {
  auto r = Parse({"jigdoofus", "--cache-dir", "/var/cache/j", "--cache-size", "20G", "--local", "Debian=" + dir_ + "/a",
                  "--local=Other=" + dir_ + "/b", "--scan", dir_ + "/a", "--scan", dir_ + "/b", "--mirror",
                  "Debian=http://m1/debian/", "--mirror", "Debian=https://m2/debian/", "--offline", "--jobs", "3",
                  "--fetch-timeout", "2.5", "--log-level", "debug", "s.jigdo", "/mnt"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.cache_dir, "/var/cache/j");
  EXPECT_EQ(r->images.cache_size, 20ull << 30);
  EXPECT_EQ(r->images.local.size(), 2u);
  EXPECT_EQ(r->images.local.at("Debian"), dir_ + "/a");
  EXPECT_EQ(r->images.local.at("Other"), dir_ + "/b");
  EXPECT_EQ(r->images.scan, (std::vector<std::string>{dir_ + "/a", dir_ + "/b"}));
  ASSERT_EQ(r->images.mirrors.size(), 2u);
  EXPECT_EQ(r->images.mirrors[0], std::make_pair(std::string("Debian"), std::string("http://m1/debian/")));
  EXPECT_EQ(r->images.mirrors[1].second, "https://m2/debian/");
  EXPECT_TRUE(r->images.offline);
  EXPECT_EQ(r->images.jobs, 3);
  EXPECT_DOUBLE_EQ(r->images.fetch_timeout_s, 2.5);
  EXPECT_EQ(r->log_level, "debug");
}

TEST_F(OptionsTest, ShortFlags) {
  auto r = Parse({"jigdoofus", "-f", "-s", "a.jigdo", "/mnt"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->foreground);
  EXPECT_TRUE(r->single_thread);
  EXPECT_FALSE(r->debug);

  auto d = Parse({"jigdoofus", "-d", "a.jigdo", "/mnt"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->debug);
  EXPECT_TRUE(d->foreground);  // -d implies -f
}

TEST_F(OptionsTest, FstabStyleArgv) {
  auto r = Parse({"jigdoofus", "/srv/x.jigdo", "/mnt/x", "-o", "rw,nosuid,nodev,local=Debian=/tmp,allow_other"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.sources, std::vector<std::string>{"/srv/x.jigdo"});
  EXPECT_EQ(r->mountpoint, "/mnt/x");
  EXPECT_EQ(r->images.local.at("Debian"), "/tmp");
  EXPECT_EQ(r->fuse_options, std::vector<std::string>{"allow_other"});
}

TEST_F(OptionsTest, DashOMapsLongOptionsWithUnderscores) {
  auto r = Parse({"jigdoofus", "-o", "cache_size=512M,offline,jobs=2,fetch_timeout=7,log_level=warn,trust_file_urls",
                  "-ocache_dir=/c,scan=" + dir_ + "/a", "-o", "mirror=L=http://h/,cache-dir=/d", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.cache_size, 512ull << 20);
  EXPECT_TRUE(r->images.offline);
  EXPECT_TRUE(r->images.trust_file_urls);
  EXPECT_EQ(r->images.jobs, 2);
  EXPECT_DOUBLE_EQ(r->images.fetch_timeout_s, 7);
  EXPECT_EQ(r->log_level, "warn");
  EXPECT_EQ(r->images.cache_dir, "/d");  // the later one wins
  EXPECT_EQ(r->images.scan, std::vector<std::string>{dir_ + "/a"});
  ASSERT_EQ(r->images.mirrors.size(), 1u);
  EXPECT_EQ(r->images.mirrors[0].first, "L");
  EXPECT_EQ(r->images.mirrors[0].second, "http://h/");
  EXPECT_TRUE(r->fuse_options.empty());
}

TEST_F(OptionsTest, GenericMountOptionsAreIgnored) {
  auto r = Parse({"jigdoofus", "s.jigdo", "/m", "-o",
                  "rw,ro,dev,nodev,suid,nosuid,exec,noexec,auto,noauto,user,nouser,users,owner,group,defaults,"
                  "_netdev,nofail,x-systemd.automount,x-gvfs-show,comment=hello,relatime,noatime,user=bob"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->fuse_options.empty());
}

TEST_F(OptionsTest, OtherOptionsGoToFuseInOrder) {
  auto r = Parse({"jigdoofus", "-o", "allow_other,default_permissions", "-o", "fsname=my\\,name,max_read=1048576",
                  "-oallow_root", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->fuse_options, (std::vector<std::string>{"allow_other", "default_permissions", "fsname=my\\,name",
                                                      "max_read=1048576", "allow_root"}));
}

// df and findmnt show the first SOURCE; the user's fsname/subtype win.
TEST_F(OptionsTest, FuseArgsNameTheMountAfterItsSource) {
  auto r = Parse({"jigdoofus", "/srv/j/a,b.jigdo", "http://h/x.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FuseArgs(*r),
            (std::vector<std::string>{"jigdoofus", "-o", "ro,fsname=/srv/j/a\\,b.jigdo,subtype=jigdoofus"}));
  r = Parse({"jigdoofus", "-o", "fsname=mine,allow_other", "-d", "http://h/x.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FuseArgs(*r),
            (std::vector<std::string>{"jigdoofus", "-o", "ro,subtype=jigdoofus,fsname=mine,allow_other", "-d"}));
}

TEST_F(OptionsTest, EscapedCommaStaysInOurValue) {
  std::string odd = dir_ + "/a,b";
  std::filesystem::create_directories(odd);
  auto r = Parse({"jigdoofus", "-o", "local=L=" + dir_ + "/a\\,b,offline", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.local.at("L"), odd);
  EXPECT_TRUE(r->images.offline);
}

TEST_F(OptionsTest, ValueOfAnOptionIsNotAnOList) {
  // "--cache-dir -o" means a cache dir named "-o" (odd, but not an -o list).
  auto r = Parse({"jigdoofus", "--cache-dir", "-o", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->fuse_options.empty());
  EXPECT_EQ(r->images.cache_dir.substr(r->images.cache_dir.size() - 3), "/-o");
}

TEST_F(OptionsTest, DefaultCacheDirFromXdgThenHome) {
  std::string old_xdg = getenv("XDG_CACHE_HOME") ? getenv("XDG_CACHE_HOME") : "";
  std::string old_home = getenv("HOME") ? getenv("HOME") : "";
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  setenv("HOME", "/home/u", 1);
  auto a = Parse({"jigdoofus", "s.jigdo", "/m"});
  unsetenv("XDG_CACHE_HOME");
  auto b = Parse({"jigdoofus", "s.jigdo", "/m"});
  if (old_xdg.empty()) unsetenv("XDG_CACHE_HOME"); else setenv("XDG_CACHE_HOME", old_xdg.c_str(), 1);
  if (old_home.empty()) unsetenv("HOME"); else setenv("HOME", old_home.c_str(), 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->images.cache_dir, "/xdg/jigdoofus");
  EXPECT_EQ(b->images.cache_dir, "/home/u/.cache/jigdoofus");
}

void ExpectError(Result<CommandLine> r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << fragment;
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "not one line: " << r.status().message();
}

TEST_F(OptionsTest, UsageErrors) {
  ExpectError(Parse({"jigdoofus"}), "usage: jigdoofus");
  ExpectError(Parse({"jigdoofus", "only.jigdo"}), "usage: jigdoofus");
  ExpectError(Parse({"jigdoofus", "--local", "Debian", "s.jigdo", "/m"}), "--local expects LABEL=DIR, got 'Debian'");
  ExpectError(Parse({"jigdoofus", "--local", "=/tmp", "s.jigdo", "/m"}), "--local expects LABEL=DIR");
  ExpectError(Parse({"jigdoofus", "--mirror", "Debian=file:/srv/debian", "s.jigdo", "/m"}),
              "use --local Debian=DIR");
  ExpectError(Parse({"jigdoofus", "--local", "D=", "s.jigdo", "/m"}), "--local expects LABEL=DIR");
  ExpectError(Parse({"jigdoofus", "--local", "D=" + dir_ + "/nope", "s.jigdo", "/m"}), dir_ + "/nope");
  ExpectError(Parse({"jigdoofus", "--local", "D=/etc/passwd", "s.jigdo", "/m"}), "not a directory");
  ExpectError(Parse({"jigdoofus", "--local", "D=/tmp", "--local", "D=/", "s.jigdo", "/m"}), "given twice");
  ExpectError(Parse({"jigdoofus", "--scan", dir_ + "/nope", "s.jigdo", "/m"}), "--scan");
  ExpectError(Parse({"jigdoofus", "--scan", "/dev/null", "s.jigdo", "/m"}),
              "--scan: /dev/null is neither a directory nor a regular file");
  ExpectError(Parse({"jigdoofus", "--mirror", "Debian", "s.jigdo", "/m"}), "--mirror expects LABEL=URL");
  ExpectError(Parse({"jigdoofus", "--mirror", "Debian=/srv", "s.jigdo", "/m"}), "is not an http");
  ExpectError(Parse({"jigdoofus", "--cache-size", "lots", "s.jigdo", "/m"}), "--cache-size: bad size 'lots'");
  ExpectError(Parse({"jigdoofus", "--jobs", "0", "s.jigdo", "/m"}), "--jobs");
  ExpectError(Parse({"jigdoofus", "--jobs", "many", "s.jigdo", "/m"}), "jobs");
  ExpectError(Parse({"jigdoofus", "--fetch-timeout", "-1", "s.jigdo", "/m"}), "--fetch-timeout");
  ExpectError(Parse({"jigdoofus", "--log-level", "loud", "s.jigdo", "/m"}), "log-level");
  ExpectError(Parse({"jigdoofus", "--bogus", "s.jigdo", "/m"}), "--bogus");
  ExpectError(Parse({"jigdoofus", "s.jigdo", "/m", "-o"}), "-o expects");
  ExpectError(Parse({"jigdoofus", "s.jigdo", "/m", "-o", "local"}), "-o local expects a value");
  ExpectError(Parse({"jigdoofus", "s.jigdo", "/m", "-o", "offline=yes"}), "-o offline takes no value");
  ExpectError(Parse({"jigdoofus", "s.jigdo", "/m", "-o", "local=Debian"}), "--local expects LABEL=DIR, got 'Debian'");
}

TEST_F(OptionsTest, HelpAndVersion) {
  testing::internal::CaptureStdout();
  auto h = Parse({"jigdoofus", "--help"});
  std::string help = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->help);
  for (const char* opt : {"--cache-dir", "--cache-size", "--local", "--scan", "--mirror", "--offline", "--jobs",
                          "--trust-file-urls", "--proxy", "--fetch-timeout", "--log-level", "-o", "-f", "-d", "-s", "--version"}) {
    EXPECT_NE(help.find(opt), std::string::npos) << opt;
  }

  testing::internal::CaptureStdout();
  auto v = Parse({"jigdoofus", "-V"});
  std::string version = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->version);
  EXPECT_EQ(version, std::string("jigdoofus ") + JIGDOOFUS_VERSION + "\n");
}

TEST_F(OptionsTest, CatCommandLine) {
  auto r = ParseCat({"jigdoofus-cat", "--local", "Debian=" + dir_ + "/a", "--offline", "/x/s.jigdo", "img.iso",
                     "--offset", "1M", "--length", "4096"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.sources, std::vector<std::string>{"/x/s.jigdo"});
  EXPECT_EQ(r->image, "img.iso");
  EXPECT_EQ(r->offset, 1u << 20);
  ASSERT_TRUE(r->length.has_value());
  EXPECT_EQ(*r->length, 4096u);
  EXPECT_TRUE(r->images.offline);
  EXPECT_EQ(r->images.local.at("Debian"), dir_ + "/a");

  auto plain = ParseCat({"jigdoofus-cat", "/x/s.jigdo"});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->image.empty());
  EXPECT_EQ(plain->offset, 0u);
  EXPECT_FALSE(plain->length.has_value());

  EXPECT_FALSE(ParseCat({"jigdoofus-cat"}).ok());
  EXPECT_FALSE(ParseCat({"jigdoofus-cat", "a", "b", "c"}).ok());
  EXPECT_FALSE(ParseCat({"jigdoofus-cat", "a", "--offset", "x"}).ok());
  auto bad = ParseCat({"jigdoofus-cat", "--local", "Debian", "a"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--local expects LABEL=DIR, got 'Debian'");
}

TEST_F(OptionsTest, ProxyIsAUrl) {
  auto r = Parse({"jigdoofus", "-o", "proxy=http://127.0.0.1:3128", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.proxy, "http://127.0.0.1:3128");
  r = Parse({"jigdoofus", "--proxy", "socks5h://p:1080", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.proxy, "socks5h://p:1080");
  for (const char* bad : {"proxy:3128", "ftp://p:21", "http://"}) {
    ExpectError(Parse({"jigdoofus", "--proxy", bad, "s.jigdo", "/m"}), "--proxy expects a URL");
  }
}

TEST_F(OptionsTest, ScanTakesImageFilesAndDiscoverAddsWhatExists) {
  const std::string iso = dir_ + "/old.iso";
  { std::ofstream(iso) << "not really an ISO"; }
  auto r = Parse({"jigdoofus", "--scan", iso, "--scan", dir_ + "/a", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images.scan, (std::vector<std::string>{iso, dir_ + "/a"}));
  r = Parse({"jigdoofus", "--discover", "s.jigdo", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const std::string& d : r->images.scan) {
    EXPECT_TRUE(d == "/var/cache/apt/archives" || d == "/var/cache/apt-cacher-ng" || d == "/media" ||
                d == "/run/media")
        << d;
    EXPECT_TRUE(std::filesystem::is_directory(d)) << d;
  }
  if (std::filesystem::is_directory("/var/cache/apt/archives")) {
    EXPECT_NE(std::find(r->images.scan.begin(), r->images.scan.end(), "/var/cache/apt/archives"),
              r->images.scan.end());
  }
}

}  // namespace
}  // namespace jigdoofus
