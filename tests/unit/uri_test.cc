#include "core/uri.h"

#include <gtest/gtest.h>

namespace jigdoofus {
namespace {

TEST(UriTest, SchemeOnlyForKnownSchemes) {
  EXPECT_EQ(UriScheme("http://a/b"), "http");
  EXPECT_EQ(UriScheme("HTTPS://a/b"), "https");
  EXPECT_EQ(UriScheme("ftp://a/"), "ftp");
  EXPECT_EQ(UriScheme("file:tree/"), "file");
  EXPECT_EQ(UriScheme("Debian:pool/main/x.deb"), "");
  EXPECT_EQ(UriScheme("MD5Sum:abc"), "");
  EXPECT_EQ(UriScheme("mailto:x@y"), "");
  EXPECT_EQ(UriScheme("/abs/path"), "");
  EXPECT_EQ(UriScheme("rel/pa:th"), "");
  EXPECT_EQ(UriScheme(""), "");
  EXPECT_EQ(UriScheme(":x"), "");
  EXPECT_TRUE(IsUrl("http://x/"));
  EXPECT_FALSE(IsUrl("Debian:x"));
  EXPECT_FALSE(IsUrl("x.jigdo"));
}

// RFC 3986 section 5.4 examples.
TEST(UriTest, ResolveRfc3986NormalExamples) {
  const std::string base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> cases[] = {
      {"g:h", "g:h"},
      {"g", "http://a/b/c/g"},
      {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},
      {"//g", "http://g"},
      {"?y", "http://a/b/c/d;p?y"},
      {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q#s"},
      {"g#s", "http://a/b/c/g#s"},
      {"g?y#s", "http://a/b/c/g?y#s"},
      {";x", "http://a/b/c/;x"},
      {"g;x", "http://a/b/c/g;x"},
      {"", "http://a/b/c/d;p?q"},
      {".", "http://a/b/c/"},
      {"./", "http://a/b/c/"},
      {"..", "http://a/b/"},
      {"../", "http://a/b/"},
      {"../g", "http://a/b/g"},
      {"../..", "http://a/"},
      {"../../", "http://a/"},
      {"../../g", "http://a/g"},
  };
  for (const auto& [ref, want] : cases) EXPECT_EQ(ResolveReference(base, ref), want) << "ref " << ref;
}

TEST(UriTest, ResolveRfc3986AbnormalExamples) {
  const std::string base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> cases[] = {
      {"../../../g", "http://a/g"}, {"../../../../g", "http://a/g"}, {"/./g", "http://a/g"},
      {"/../g", "http://a/g"},      {"g.", "http://a/b/c/g."},        {".g", "http://a/b/c/.g"},
      {"g..", "http://a/b/c/g.."},  {"..g", "http://a/b/c/..g"},      {"./../g", "http://a/b/g"},
      {"./g/.", "http://a/b/c/g/"}, {"g/./h", "http://a/b/c/g/h"},    {"g/../h", "http://a/b/c/h"},
      {"g;x=1/./y", "http://a/b/c/g;x=1/y"},                          {"g;x=1/../y", "http://a/b/c/y"},
  };
  for (const auto& [ref, want] : cases) EXPECT_EQ(ResolveReference(base, ref), want) << "ref " << ref;
}

TEST(UriTest, ResolveAgainstHostOnlyAndFileUrls) {
  EXPECT_EQ(ResolveReference("http://h", "x.jigdo"), "http://h/x.jigdo");
  EXPECT_EQ(ResolveReference("file:///srv/j/a.jigdo", "sub/b.jigdo"), "file:///srv/j/sub/b.jigdo");
  EXPECT_EQ(ResolveReference("https://h/d/a.jigdo", "../e/b.jigdo"), "https://h/e/b.jigdo");
}

TEST(UriTest, ResolveAgainstLocalPath) {
  EXPECT_EQ(ResolveReference("/srv/j/a.jigdo", "b.jigdo"), "/srv/j/b.jigdo");
  EXPECT_EQ(ResolveReference("/srv/j/a.jigdo", "./x//y.jigdo"), "/srv/j/x/y.jigdo");
  EXPECT_EQ(ResolveReference("/srv/j/a.jigdo", "../k/y.jigdo"), "/srv/j/../k/y.jigdo");
  EXPECT_EQ(ResolveReference("a.jigdo", "b.jigdo"), "b.jigdo");
  EXPECT_EQ(ResolveReference("d/a.jigdo", "b.jigdo"), "d/b.jigdo");
  EXPECT_EQ(ResolveReference("/srv/a.jigdo", "/abs/x.jigdo"), "/abs/x.jigdo");
  EXPECT_EQ(ResolveReference("/srv/a.jigdo", "http://h/x.jigdo"), "http://h/x.jigdo");
  EXPECT_EQ(ResolveReference("/srv/a.jigdo", "file:x.jigdo"), "file:x.jigdo");
}

TEST(UriTest, PercentEncodePath) {
  EXPECT_EQ(PercentEncodePath("pool/main/b/we+ird name~1.deb"), "pool/main/b/we%2Bird%20name~1.deb");
  EXPECT_EQ(PercentEncodePath("AZaz09-._~/"), "AZaz09-._~/");
  EXPECT_EQ(PercentEncodePath("a%20b"), "a%2520b");
  EXPECT_EQ(PercentEncodePath("a%20b%zz%4", true), "a%20b%25zz%254");
  EXPECT_EQ(PercentEncodePath("\xc3\xa9:?#"), "%C3%A9%3A%3F%23");
  EXPECT_EQ(PercentEncodePath(""), "");
}

TEST(UriTest, PercentDecode) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc%2fd"), "a b/c/d");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
  EXPECT_EQ(PercentDecode("we+ird"), "we+ird");
  EXPECT_EQ(PercentDecode(PercentEncodePath("x y+z/\xff")), "x y+z/\xff");
}

TEST(UriTest, FileUrlToPath) {
  EXPECT_EQ(FileUrlToPath("file:/a/b", ""), "/a/b");
  EXPECT_EQ(FileUrlToPath("file:///a/b%20c", ""), "/a/b c");
  EXPECT_EQ(FileUrlToPath("file://localhost/a", ""), "/a");
  EXPECT_EQ(FileUrlToPath("FILE://LocalHost/a", ""), "/a");
  EXPECT_EQ(FileUrlToPath("file://otherhost/a", ""), std::nullopt);
  EXPECT_EQ(FileUrlToPath("file://", ""), std::nullopt);
  EXPECT_EQ(FileUrlToPath("file:tree/x%20y.deb", "/srv/j/a.jigdo"), "/srv/j/tree/x y.deb");
  EXPECT_EQ(FileUrlToPath("file:tree/x", "file:///srv/j/a.jigdo"), "/srv/j/tree/x");
  EXPECT_EQ(FileUrlToPath("file:tree/x", "a.jigdo"), "tree/x");
  // "file:" alone (jigdo-file's server for a tree named relative to the .jigdo): its directory.
  EXPECT_EQ(FileUrlToPath("file:", "/srv/j/a.jigdo"), "/srv/j/");
  EXPECT_EQ(FileUrlToPath("file:", "a.jigdo"), std::nullopt);
  // Names with '#' and '?' as jigdo-file writes them: not a fragment or query.
  EXPECT_EQ(FileUrlToPath("file:/m/English SR #3/", ""), "/m/English SR #3/");
  EXPECT_EQ(FileUrlToPath("file:tree/What is HyperCard?", "/srv/j/a.jigdo"), "/srv/j/tree/What is HyperCard?");
  EXPECT_EQ(FileUrlToPath("file:///m/a?b#c", ""), "/m/a?b#c");
  EXPECT_EQ(FileUrlToPath("file:tree/x", "http://h/a.jigdo"), std::nullopt);
  EXPECT_EQ(FileUrlToPath("http://h/x", ""), std::nullopt);
  EXPECT_EQ(FileUrlToPath("/a/b", ""), std::nullopt);
}

TEST(UriTest, DirName) {
  EXPECT_EQ(DirName("a/b/c.jigdo"), "a/b/");
  EXPECT_EQ(DirName("/c.jigdo"), "/");
  EXPECT_EQ(DirName("c.jigdo"), "");
  EXPECT_EQ(DirName("a/b/"), "a/b/");
  EXPECT_EQ(DirName("http://h/x/y.jigdo?q#f"), "http://h/x/");
  EXPECT_EQ(DirName("http://h"), "http://h/");
  EXPECT_EQ(DirName("file:tree/x"), "file:tree/");
}

}  // namespace
}  // namespace jigdoofus
