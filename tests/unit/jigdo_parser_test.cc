#include <gtest/gtest.h>

#include <algorithm>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/jigdo_file.h"
#include "core/jigdo_words.h"
#include "tests/unit/temp_dir.h"

namespace jigdoofus {
namespace {

// ---- Real producer outputs (verbatim, including trailing spaces) ----

// xorriso -as mkisofs ... -jigdo-checksum-algorithm sha256 (libjte): values
// are written unquoted even when the path has a space.
constexpr std::string_view kXorrisoJigdo = R"(# JigsawDownload
# See <https://www.einval.com/~steve/software/jigdo/> for details about jigdo
# See <https://www.einval.com/~steve/software/JTE/> for details about JTE

[Jigdo]
Version=2.0
Generator=libjte-2.0.0

[Image]
Filename=stdio:y.iso
Template=http://localhost/y.template
Template-SHA256Sum=O_azPlrqIfk0K6tag-z1DzPxUd6kPn9bwawsYDR6zGk 
# Template Hex MD5Sum 32e35b4898b15d26657ab078313fb8f8
# Template Hex SHA256Sum 3bf6b33e5aea21f9342bab5a83ecf50f33f151dea43e7f5bc1ac2c60347acc69
# Template size 1882 bytes
# Image size 1245184 bytes

[Parts]
psN2mtKcoxLhOLkYycnhPFmJQfAGVyZ3l1EX-jd4Fds=Debian:pool/main/a/pkg1.deb
4zM02QC5tAr8sOs0ixGU_9RXAouxyHh1_OEC1cIpEqU=Debian:pool/main/b/we+ird name~1.deb

[Servers]
)";

// jigdo-file make-template -C sha256: quoted part, relative file: server.
constexpr std::string_view kJigdoFileJigdo = R"(# JigsawDownload
# See <https://www.einval.com/~steve/software/jigdo/> for details about jigdo

[Jigdo]
Version=2.0
Generator=jigdo-file/0.8.0

[Image]
Filename=y.iso
Template=k.template
Template-SHA256Sum=4OmGHhEF7GuGc39YWrF7oO-F_cJqYJe7F9YhT9B-S2c

[Servers]
A=file:tree/

[Parts]
4zM02QC5tAr8sOs0ixGU_9RXAouxyHh1_OEC1cIpEqU='A:pool/main/b/we+ird name~1.deb'
psN2mtKcoxLhOLkYycnhPFmJQfAGVyZ3l1EX-jd4Fds=A:pool/main/a/pkg1.deb
)";

constexpr std::string_view kWeirdB64 = "4zM02QC5tAr8sOs0ixGU_9RXAouxyHh1_OEC1cIpEqU";
constexpr std::string_view kPkg1B64 = "psN2mtKcoxLhOLkYycnhPFmJQfAGVyZ3l1EX-jd4Fds";
constexpr std::string_view kMd5B64 = "hI_FNZHoV84_uykSChvJgg";
constexpr std::string_view kMd5B64b = "xJNkjrq8NYMraeGavUpllw";

Digest D(std::string_view b64) {
  auto d = ParseDigestBase64(b64);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : Digest{};
}

Result<JigdoFile> Parse(std::string_view text, const std::string& origin = "t.jigdo") {
  return ParseJigdo(text, origin, nullptr);
}

JigdoFile MustParse(std::string_view text, const std::string& origin = "t.jigdo") {
  auto f = Parse(text, origin);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? std::move(f).value() : JigdoFile{};
}

// Asserts a parse error whose message contains every one of `needles`.
void ExpectError(std::string_view text, std::initializer_list<std::string_view> needles,
                 Status::Code code = Status::Code::kCorruption) {
  auto f = Parse(text);
  ASSERT_FALSE(f.ok()) << "parsed:\n" << text;
  EXPECT_EQ(f.status().code(), code) << f.status().ToString();
  for (std::string_view n : needles) {
    EXPECT_NE(f.status().message().find(n), std::string::npos) << "'" << n << "' not in: " << f.status().message();
  }
  EXPECT_EQ(f.status().message().find('\n'), std::string::npos) << "message is not one line";
}

SliceLocation Label(std::string label, std::string path, double weight = 0) {
  return SliceLocation{std::move(label), std::move(path), weight, ""};
}
SliceLocation Url(std::string url, std::string base = "t.jigdo", double weight = 0) {
  return SliceLocation{"", std::move(url), weight, std::move(base)};
}

std::string Describe(const std::vector<SliceLocation>& locs) {
  std::string out;
  for (const auto& l : locs) {
    out += "{" + l.label + "|" + l.path + "|" + std::to_string(l.weight) + "|" + l.base + "} ";
  }
  return out;
}

std::string Gzip(std::string_view data, int level = Z_BEST_COMPRESSION) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// gzip of `count` copies of `c`, compressed in chunks (no giant input buffer).
std::string GzipRepeated(char c, size_t count) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  const std::string chunk(1 << 20, c);
  std::string out;
  char buf[1 << 16];
  while (count > 0 || zs.avail_in > 0) {
    if (zs.avail_in == 0) {
      size_t take = std::min(count, chunk.size());
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
      zs.avail_in = static_cast<uInt>(take);
      count -= take;
    }
    do {
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof buf;
      deflate(&zs, Z_NO_FLUSH);
      out.append(buf, sizeof buf - zs.avail_out);
    } while (zs.avail_out == 0);
  }
  int ret;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    ret = deflate(&zs, Z_FINISH);
    out.append(buf, sizeof buf - zs.avail_out);
  } while (ret != Z_STREAM_END);
  deflateEnd(&zs);
  return out;
}

// A temp directory removed at the end of the test.
using testing_util::TempDir;

// ---- Real files ----

TEST(JigdoParserTest, XorrisoOutput) {
  JigdoFile f = MustParse(kXorrisoJigdo, "/srv/y.jigdo");
  EXPECT_EQ(f.origin(), "/srv/y.jigdo");
  EXPECT_EQ(f.version(), "2.0");
  EXPECT_EQ(f.generator(), "libjte-2.0.0");
  ASSERT_EQ(f.images().size(), 1u);
  const JigdoImage& img = f.images()[0];
  EXPECT_EQ(img.filename, "stdio:y.iso");
  EXPECT_EQ(img.template_uri, "http://localhost/y.template");
  EXPECT_EQ(img.template_base, "/srv/y.jigdo");
  EXPECT_EQ(img.line, 9);
  ASSERT_TRUE(img.template_sha256.has_value());
  EXPECT_EQ(img.template_sha256->ToHex(), "3bf6b33e5aea21f9342bab5a83ecf50f33f151dea43e7f5bc1ac2c60347acc69");
  EXPECT_FALSE(img.template_md5.has_value());
  EXPECT_EQ(f.part_count(), 2u);
  EXPECT_TRUE(f.servers().empty());
  auto parts = f.PartsFor(D(kWeirdB64));
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].location, "Debian:pool/main/b/we+ird name~1.deb");
  EXPECT_EQ(*parts[0].base, "/srv/y.jigdo");
  EXPECT_EQ(f.LocationsFor(D(kPkg1B64)), (std::vector{Label("Debian", "pool/main/a/pkg1.deb")}));
  EXPECT_FALSE(f.HasServerLabel("Debian"));
}

TEST(JigdoParserTest, JigdoFileOutputWithRelativeFileServer) {
  JigdoFile f = MustParse(kJigdoFileJigdo, "/srv/k.jigdo");
  EXPECT_EQ(f.generator(), "jigdo-file/0.8.0");
  ASSERT_EQ(f.images().size(), 1u);
  EXPECT_EQ(f.images()[0].filename, "y.iso");
  EXPECT_EQ(f.images()[0].template_uri, "k.template");
  ASSERT_TRUE(f.images()[0].template_sha256.has_value());
  EXPECT_EQ(f.images()[0].template_sha256->ToBase64(), "4OmGHhEF7GuGc39YWrF7oO-F_cJqYJe7F9YhT9B-S2c");
  EXPECT_TRUE(f.HasServerLabel("A"));
  auto locs = f.LocationsFor(D(kWeirdB64));
  EXPECT_EQ(locs, (std::vector{Label("A", "pool/main/b/we+ird name~1.deb"),
                               Url("file:tree/pool/main/b/we+ird name~1.deb", "/srv/k.jigdo")}))
      << Describe(locs);
}

TEST(JigdoParserTest, UnquotedAndQuotedPathWithSpaceGiveTheSamePath) {
  JigdoFile x = MustParse(kXorrisoJigdo);
  JigdoFile j = MustParse(kJigdoFileJigdo);
  auto xp = x.PartsFor(D(kWeirdB64));
  auto jp = j.PartsFor(D(kWeirdB64));
  ASSERT_EQ(xp.size(), 1u);
  ASSERT_EQ(jp.size(), 1u);
  EXPECT_EQ(xp[0].location.substr(xp[0].location.find(':')), jp[0].location.substr(jp[0].location.find(':')));
  EXPECT_EQ(jp[0].location, "A:pool/main/b/we+ird name~1.deb");
  // Several spaces are kept as written; options are not part of the path.
  JigdoFile f = MustParse(std::string("[Parts]\n") + std::string(kWeirdB64) + "=Debian:a  b\tc.deb --opt\n");
  EXPECT_EQ(f.PartsFor(D(kWeirdB64))[0].location, "Debian:a  b\tc.deb");
}

TEST(JigdoParserTest, Md5AndOlderGenerators) {
  std::string md5 = "[Jigdo]\nVersion=1.2\nGenerator=jigdo-file/0.8.0\n[Image]\nFilename=a.iso\nTemplate=a.template\n"
                    "Template-MD5Sum=" + std::string(kMd5B64) + " \n[Parts]\n" + std::string(kMd5B64b) + "=Debian:x.deb\n";
  JigdoFile f = MustParse(md5);
  EXPECT_EQ(f.version(), "1.2");
  ASSERT_EQ(f.images().size(), 1u);
  ASSERT_TRUE(f.images()[0].template_md5.has_value());
  EXPECT_EQ(f.images()[0].template_md5->ToHex(), "848fc53591e857ce3fbb29120a1bc982");
  EXPECT_FALSE(f.images()[0].template_sha256.has_value());
  EXPECT_EQ(f.PartsFor(D(kMd5B64b))[0].location, "Debian:x.deb");

  JigdoFile g = MustParse("[Jigdo]\nVersion=1.1\nGenerator=JTE/1.19\n");
  EXPECT_EQ(g.version(), "1.1");
  EXPECT_EQ(g.generator(), "JTE/1.19");
  EXPECT_TRUE(g.images().empty());
}

TEST(JigdoParserTest, CrlfLineEnds) {
  std::string crlf;
  for (char c : kJigdoFileJigdo) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  JigdoFile f = MustParse(crlf, "/srv/k.jigdo");
  JigdoFile g = MustParse(kJigdoFileJigdo, "/srv/k.jigdo");
  ASSERT_EQ(f.images().size(), 1u);
  EXPECT_EQ(f.images()[0].filename, "y.iso");
  EXPECT_EQ(f.LocationsFor(D(kWeirdB64)), g.LocationsFor(D(kWeirdB64)));
}

TEST(JigdoParserTest, ByteOrderMarkIsSkipped) {
  JigdoFile f = MustParse("\xEF\xBB\xBF# JigsawDownload\n[Jigdo]\nVersion=2.0\n");
  EXPECT_EQ(f.version(), "2.0");
}

// ---- Sections and lines ----

TEST(JigdoParserTest, SeveralImagesInTheTopLevelFile) {
  JigdoFile f = MustParse(
      "[Jigdo]\nVersion=1.1\n"
      "[Image]\nFilename=cd1.iso\nTemplate=cd1.template\nShortInfo='Debian CD 1' \"x\"\nInfo=Long <b>text</b> # kept\n"
      "[Parts]\n" + std::string(kMd5B64) + "=A:x\n"
      "[Image]\nFilename=\"cd 2.iso\"\nTemplate=http://h/cd2.template\nUnknownKey=whatever\n");
  ASSERT_EQ(f.images().size(), 2u);
  EXPECT_EQ(f.images()[0].filename, "cd1.iso");
  EXPECT_EQ(f.images()[0].line, 3);
  EXPECT_EQ(f.images()[0].short_info, "'Debian CD 1' \"x\"");
  EXPECT_EQ(f.images()[0].info, "Long <b>text</b> # kept");
  EXPECT_EQ(f.images()[1].filename, "cd 2.iso");
  EXPECT_EQ(f.images()[1].template_uri, "http://h/cd2.template");
  EXPECT_EQ(f.images()[1].line, 10);
}

TEST(JigdoParserTest, ImageNeedsFilenameAndTemplate) {
  ExpectError("[Image]\nTemplate=x.template\n", {"t.jigdo:1:", "Filename"});
  ExpectError("\n[Image]\nFilename=x.iso\n", {"t.jigdo:2:", "Template"});
  ExpectError("[Image]\nFilename=\nTemplate=x\n", {"t.jigdo:2:", "Filename"});
}

TEST(JigdoParserTest, CommentsWhitespaceAndUnknownSections) {
  JigdoFile f = MustParse(
      "# leading comment\n"
      "  [ Jigdo ]   # trailing comment\n"
      "\t Version   =   2.0  \n"
      "[Comment]\n"
      "This is free text, not an entry\n"
      "  neither = is this, it is ignored 'unterminated\n"
      "[comment]\n"
      "more text\n"
      "[Future]\n"
      "Something=else 'unterminated but never split\n"
      "[Parts]\n"
      "   # indented comment\n"
      + std::string(kMd5B64) + "  =  Debian:x.deb # comment\n"
      + std::string(kMd5B64) + "='Debian:y#z.deb'\n");
  EXPECT_EQ(f.version(), "2.0");
  auto parts = f.PartsFor(D(kMd5B64));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].location, "Debian:x.deb");
  EXPECT_EQ(parts[1].location, "Debian:y#z.deb");
  EXPECT_EQ(f.part_count(), 2u);
}

TEST(JigdoParserTest, MalformedLinesNameTheLine) {
  ExpectError("[Parts]\n\nthis is not an entry\n", {"t.jigdo:3:", "Label=Value"});
  ExpectError("Version=1.0\n", {"t.jigdo:1:", "before any"});
  ExpectError("[Parts\n", {"t.jigdo:1:", "']'"});
  ExpectError("[Parts] junk\n", {"t.jigdo:1:", "junk"});
  ExpectError("[Servers]\n=http://x/\n", {"t.jigdo:2:", "empty label"});
  ExpectError("[Servers]\nA=\n", {"t.jigdo:2:", "empty"});
  ExpectError("[Parts]\nkey=A:x\n", {"t.jigdo:2:", "[Parts] key"});
  ExpectError("[Parts]\n" + std::string(kMd5B64) + "=\n", {"t.jigdo:2:", "empty"});
}

TEST(JigdoParserTest, UnterminatedQuoteNamesTheLine) {
  ExpectError("[Servers]\nA=http://x/\nB='http://y/\n", {"t.jigdo:3:", "unterminated"});
  ExpectError("[Image]\nFilename=\"a.iso\nTemplate=x\n", {"t.jigdo:2:", "unterminated"});
  ExpectError("[Jigdo]\nGenerator=\"x\\\"\n", {"t.jigdo:2:", "unterminated"});
}

TEST(JigdoParserTest, BadChecksumsNameTheLine) {
  ExpectError("[Image]\nFilename=a\nTemplate=b\nTemplate-MD5Sum=not-base64!\n", {"t.jigdo:4:", "Template-MD5Sum"});
  ExpectError("[Image]\nFilename=a\nTemplate=b\nTemplate-MD5Sum=" + std::string(kWeirdB64) + "\n",
              {"t.jigdo:4:", "not a MD5"});
  ExpectError("[Image]\nFilename=a\nTemplate=b\nTemplate-SHA256Sum=" + std::string(kMd5B64) + "\n",
              {"t.jigdo:4:", "SHA256"});
  ExpectError("[Image]\nFilename=a\nTemplate=b\nTemplate-SHA256Sum=" + std::string(kWeirdB64) + " x\n",
              {"t.jigdo:4:", "one"});
  // Non-zero padding bits.
  ExpectError("[Image]\nFilename=a\nTemplate=b\nTemplate-MD5Sum=hI_FNZHoV84_uykSChvJgh\n", {"t.jigdo:4:"});
  ExpectError("[Parts]\nSHA256Sum:" + std::string(kMd5B64) + "=A:x\n", {"t.jigdo:2:", "SHA256"});
}

TEST(JigdoParserTest, VersionCheck) {
  ExpectError("[Jigdo]\nVersion=3.0\n", {"t.jigdo:2:", "3.0", "not supported"}, Status::Code::kNotSupported);
  ExpectError("[Jigdo]\nVersion=12\n", {"not supported"}, Status::Code::kNotSupported);
  ExpectError("[Jigdo]\nVersion=abc\n", {"t.jigdo:2:", "Version"});
  EXPECT_EQ(MustParse("[Jigdo]\nVersion=2.9\n").version(), "2.9");
  EXPECT_EQ(MustParse("[Jigdo]\nVersion=1\n").version(), "1");
}

// ---- Word splitting ----

std::vector<std::string> Words(std::string_view v) {
  auto w = SplitJigdoWords(v);
  EXPECT_TRUE(w.ok()) << v << ": " << w.status().ToString();
  return w.ok() ? *w : std::vector<std::string>{"<error>"};
}
using V = std::vector<std::string>;

TEST(JigdoWordsTest, ShellLikeSplitting) {
  EXPECT_EQ(Words("a b\t c"), (V{"a", "b", "c"}));
  EXPECT_EQ(Words(""), V{});
  EXPECT_EQ(Words("   "), V{});
  EXPECT_EQ(Words("'a b'"), V{"a b"});
  EXPECT_EQ(Words("'a\\b \"c\" #d'"), V{"a\\b \"c\" #d"});
  EXPECT_EQ(Words("\"a \\\"b\\\" 'c' #d\""), V{"a \"b\" 'c' #d"});
  EXPECT_EQ(Words("\"a\\\\b\""), V{"a\\b"});
  EXPECT_EQ(Words("a\\ b"), V{"a b"});
  EXPECT_EQ(Words("a\\#b\\'c"), V{"a#b'c"});
  EXPECT_EQ(Words("x'y z'\"w\"v"), V{"xy zwv"});
  EXPECT_EQ(Words("''"), V{""});
  EXPECT_EQ(Words("a '' b"), (V{"a", "", "b"}));
  EXPECT_EQ(Words("a # b c"), V{"a"});
  EXPECT_EQ(Words("a#b"), V{"a"});
  EXPECT_EQ(Words("#x"), V{});
  EXPECT_EQ(Words("trailing\\"), V{"trailing\\"});
}

TEST(JigdoWordsTest, UnterminatedQuotes) {
  EXPECT_FALSE(SplitJigdoWords("'abc").ok());
  EXPECT_FALSE(SplitJigdoWords("a \"bc").ok());
  EXPECT_FALSE(SplitJigdoWords("\"bc\\\"").ok());
  EXPECT_EQ(SplitJigdoWords("'abc").status().code(), Status::Code::kCorruption);
}

TEST(JigdoWordsTest, LocationValue) {
  auto v = ParseLocationValue("http://x/ --try-last  --foo");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->location, "http://x/");
  EXPECT_EQ(v->options, (V{"--try-last", "--foo"}));
  v = ParseLocationValue("Debian:pool/a b  'c d'.deb --try-last");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->location, "Debian:pool/a b  c d.deb");
  EXPECT_EQ(v->options, V{"--try-last"});
  v = ParseLocationValue("");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->location, "");
}

TEST(JigdoWordsTest, SplitLabelLocation) {
  std::string_view label, path;
  EXPECT_TRUE(SplitLabelLocation("Debian:pool/x.deb", &label, &path));
  EXPECT_EQ(label, "Debian");
  EXPECT_EQ(path, "pool/x.deb");
  EXPECT_TRUE(SplitLabelLocation("MD5Sum:abc", &label, &path));
  EXPECT_EQ(label, "MD5Sum");
  EXPECT_FALSE(SplitLabelLocation("http://x/y", &label, &path));
  EXPECT_FALSE(SplitLabelLocation("file:tree/y", &label, &path));
  EXPECT_FALSE(SplitLabelLocation("dir/a:b", &label, &path));
  EXPECT_FALSE(SplitLabelLocation("plain.deb", &label, &path));
  EXPECT_FALSE(SplitLabelLocation(":x", &label, &path));
}

// ---- [Servers] expansion ----

TEST(JigdoServersTest, ManPageExample) {
  JigdoFile f = MustParse(
      "[Parts]\n"
      "xJNkjrq8NYMraeGavUpllw=LabelA:part0\n"
      "kyfebwu6clbYqqWUdFIyaw=LabelB:some/path/part2\n"
      "-J9UAimo0Bqg9c0oOXI1mQ=http://some.where.com/part3\n"
      "[Servers]\n"
      "LabelA=http://myserver.org/\n"
      "LabelA=ftp://mirror.myserver.org/\n"
      "LabelB=LabelC:subdirectory/\n"
      "LabelC=http://some.where.com/jigdo/\n");
  auto a = f.LocationsFor(D("xJNkjrq8NYMraeGavUpllw"));
  EXPECT_EQ(a, (std::vector{Label("LabelA", "part0"), Url("http://myserver.org/part0"),
                            Url("ftp://mirror.myserver.org/part0")}))
      << Describe(a);
  auto b = f.LocationsFor(D("kyfebwu6clbYqqWUdFIyaw"));
  EXPECT_EQ(b, (std::vector{Label("LabelB", "some/path/part2"), Label("LabelC", "subdirectory/some/path/part2"),
                            Url("http://some.where.com/jigdo/subdirectory/some/path/part2")}))
      << Describe(b);
  EXPECT_EQ(f.LocationsFor(D("-J9UAimo0Bqg9c0oOXI1mQ")), (std::vector{Url("http://some.where.com/part3")}));
  EXPECT_EQ(f.servers().count("LabelA"), 2u);
}

TEST(JigdoServersTest, ServerUrlsRecordWhereTheFilePathStarts) {
  // The fetcher percent-encodes only the file path, never the server's URL.
  JigdoFile f = MustParse(
      "[Parts]\n"
      "xJNkjrq8NYMraeGavUpllw=LabelB:pool/a b+c.deb\n"
      "kyfebwu6clbYqqWUdFIyaw=http://raw.example/x%20y\n"
      "[Servers]\n"
      "LabelB=LabelC:sub/\n"
      "LabelC=http://h.example/deb%7E/\n");
  auto a = f.LocationsFor(D("xJNkjrq8NYMraeGavUpllw"));
  ASSERT_EQ(a.size(), 3u) << Describe(a);
  EXPECT_EQ(a[2].path, "http://h.example/deb%7E/sub/pool/a b+c.deb");
  EXPECT_EQ(a[2].url_prefix_len, std::string("http://h.example/deb%7E/").size());
  auto b = f.LocationsFor(D("kyfebwu6clbYqqWUdFIyaw"));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].url_prefix_len, std::string::npos);  // a [Parts] URL is used as written
}

TEST(JigdoServersTest, LabelLoopsTerminate) {
  JigdoFile f = MustParse(
      "[Servers]\nA=B:x/\nB=A:y/\nB=http://h/\nS=S:again/\nS=http://s/\n"
      "[Parts]\n" + std::string(kMd5B64) + "=A:p\n" + std::string(kMd5B64b) + "=S:q\n");
  auto a = f.LocationsFor(D(kMd5B64));
  EXPECT_EQ(a, (std::vector{Label("A", "p"), Label("B", "x/p"), Url("http://h/x/p")})) << Describe(a);
  auto s = f.LocationsFor(D(kMd5B64b));
  EXPECT_EQ(s, (std::vector{Label("S", "q"), Url("http://s/q")})) << Describe(s);
}

TEST(JigdoServersTest, ExponentialChainsAreBounded) {
  std::string text = "[Servers]\n";
  for (int i = 0; i < 40; ++i) {
    text += "L" + std::to_string(i) + "=L" + std::to_string(i + 1) + ":a/\n";
    text += "L" + std::to_string(i) + "=L" + std::to_string(i + 1) + ":b/\n";
  }
  text += "[Parts]\n" + std::string(kMd5B64) + "=L0:p\n";
  JigdoFile f = MustParse(text);
  auto locs = f.LocationsFor(D(kMd5B64));
  EXPECT_FALSE(locs.empty());
  EXPECT_LE(locs.size(), kMaxExpandedLocations);
  EXPECT_EQ(locs[0], Label("L0", "p"));
}

TEST(JigdoServersTest, TryLastServersComeAfterAllOthers) {
  JigdoFile f = MustParse(
      "[Servers]\n"
      "Debian=http://slow/  --try-last\n"
      "Debian=http://fast/\n"
      "Debian=Mirror:debian/ --try-last\n"
      "Mirror=http://m/\n"
      "Debian=http://fast2/ --unknown-option\n"
      "[Parts]\n" + std::string(kMd5B64) + "=Debian:p\n" + std::string(kMd5B64) + "=http://direct/p\n");
  auto locs = f.LocationsFor(D(kMd5B64));
  EXPECT_EQ(locs, (std::vector{Label("Debian", "p"), Url("http://fast/p"), Url("http://fast2/p"),
                               Url("http://direct/p"), Url("http://slow/p", "t.jigdo", -1),
                               Label("Mirror", "debian/p", -1), Url("http://m/debian/p", "t.jigdo", -1)}))
      << Describe(locs);
  auto it = f.servers().find("Debian");
  ASSERT_NE(it, f.servers().end());
  EXPECT_EQ(it->second.value, "http://slow/");
  EXPECT_EQ(it->second.weight, -1);
  EXPECT_EQ(it->second.options, V{"--try-last"});
  EXPECT_EQ(it->second.base, "t.jigdo");
}

TEST(JigdoServersTest, TryFirstAndTryLastWeightsAddUpAlongTheChain) {
  // As jigdo: --try-first[=W] adds W (1), --try-last[=W] subtracts it; a
  // label chain sums the weights on the way; highest first, then file order.
  JigdoFile f = MustParse(
      "[Servers]\n"
      "Debian=http://plain/\n"
      "Debian=http://half/ --try-first=0.5\n"
      "Debian=http://first/ --try-first\n"
      "Debian=Near:d/ --try-first=2\n"
      "Near=http://near/ --try-last=0.5\n"
      "Debian=http://last/ --try-last=3\n"
      "[Parts]\n" + std::string(kMd5B64) + "=Debian:p\n");
  auto locs = f.LocationsFor(D(kMd5B64));
  EXPECT_EQ(locs, (std::vector{Label("Near", "d/p", 2), Url("http://near/d/p", "t.jigdo", 1.5),
                               Url("http://first/p", "t.jigdo", 1), Url("http://half/p", "t.jigdo", 0.5),
                               Label("Debian", "p"), Url("http://plain/p"), Url("http://last/p", "t.jigdo", -3)}))
      << Describe(locs);
  ExpectError("[Servers]\nA=http://a/ --try-first=fast\n", {"invalid argument to --try-first", "'fast'"});
  ExpectError("[Servers]\nA=http://a/ --try-last=nan\n", {"invalid argument to --try-last"});
}

TEST(JigdoServersTest, DuplicatesAreRemoved) {
  JigdoFile f = MustParse(
      "[Servers]\nA=http://h/\nA=http://h/\nB=http://h/\n"
      "[Parts]\n" + std::string(kMd5B64) + "=A:p\n" + std::string(kMd5B64) + "=B:p\n" + std::string(kMd5B64) +
      "=A:p\n");
  auto locs = f.LocationsFor(D(kMd5B64));
  EXPECT_EQ(locs, (std::vector{Label("A", "p"), Url("http://h/p"), Label("B", "p")})) << Describe(locs);
  EXPECT_EQ(f.PartsFor(D(kMd5B64)).size(), 3u);
}

TEST(JigdoServersTest, ChecksumLabelFallback) {
  JigdoFile f = MustParse("[Servers]\nMD5Sum=http://h/md5/\nSHA256Sum=http://h/sha/\n[Parts]\n" +
                          std::string(kMd5B64) + "=A:p\n");
  EXPECT_EQ(f.PartsFor(D(kMd5B64))[0].location, "A:p");
  auto md5 = f.LocationsFor(D(kMd5B64b));
  EXPECT_EQ(md5, (std::vector{Label("MD5Sum", std::string(kMd5B64b)), Url("http://h/md5/" + std::string(kMd5B64b))}))
      << Describe(md5);
  auto sha = f.LocationsFor(D(kWeirdB64));
  EXPECT_EQ(sha, (std::vector{Label("SHA256Sum", std::string(kWeirdB64)), Url("http://h/sha/" + std::string(kWeirdB64))}))
      << Describe(sha);
  // Without such servers the label form is still offered (for --local).
  JigdoFile g = MustParse("[Parts]\n");
  EXPECT_EQ(g.LocationsFor(D(kMd5B64)), (std::vector{Label("MD5Sum", std::string(kMd5B64))}));
}

TEST(JigdoServersTest, LiteralChecksumKeys) {
  JigdoFile f = MustParse("[Parts]\nMD5Sum:" + std::string(kMd5B64) + "=http://a/x\nSHA256Sum:" + std::string(kWeirdB64) +
                          "=B:y\n" + std::string(kMd5B64) + "=http://b/x\n");
  auto parts = f.PartsFor(D(kMd5B64));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].location, "http://a/x");
  EXPECT_EQ(parts[1].location, "http://b/x");
  EXPECT_EQ(f.PartsFor(D(kWeirdB64))[0].location, "B:y");
}

TEST(JigdoServersTest, RelativeUrlsKeepTheirBase) {
  JigdoFile f = MustParse("[Servers]\nR=mirror/\n[Parts]\n" + std::string(kMd5B64) + "=R:a.deb\n" +
                              std::string(kMd5B64) + "=rel/b.deb\n",
                          "http://h/d/t.jigdo");
  auto locs = f.LocationsFor(D(kMd5B64));
  EXPECT_EQ(locs, (std::vector{Label("R", "a.deb"), Url("mirror/a.deb", "http://h/d/t.jigdo"),
                               Url("rel/b.deb", "http://h/d/t.jigdo")}))
      << Describe(locs);
}

// ---- gzip and binary input ----

TEST(JigdoGzipTest, WholeFileGzip) {
  JigdoFile f = MustParse(Gzip(kJigdoFileJigdo), "/srv/k.jigdo");
  ASSERT_EQ(f.images().size(), 1u);
  EXPECT_EQ(f.images()[0].filename, "y.iso");
  EXPECT_EQ(f.part_count(), 2u);
}

TEST(JigdoGzipTest, GzipThenPlainThenGzip) {
  std::string raw = Gzip(kXorrisoJigdo) + "Debian=http://deb/\n[Parts]\n" + std::string(kMd5B64) + "=Debian:p\n" +
                    Gzip("[Servers]\nDebian=http://deb2/\n") + Gzip("Debian=http://deb3/\n");
  JigdoFile f = MustParse(raw);
  EXPECT_EQ(f.images().size(), 1u);
  EXPECT_EQ(f.part_count(), 3u);
  auto locs = f.LocationsFor(D(kWeirdB64));
  EXPECT_EQ(locs, (std::vector{Label("Debian", "pool/main/b/we+ird name~1.deb"),
                               Url("http://deb/pool/main/b/we+ird name~1.deb"),
                               Url("http://deb2/pool/main/b/we+ird name~1.deb"),
                               Url("http://deb3/pool/main/b/we+ird name~1.deb")}))
      << Describe(locs);
}

TEST(JigdoGzipTest, PlainThenGzip) {
  std::string raw = "[Jigdo]\nVersion=2.0\n" + Gzip("[Image]\nFilename=a.iso\nTemplate=a.template\n");
  JigdoFile f = MustParse(raw);
  ASSERT_EQ(f.images().size(), 1u);
  EXPECT_EQ(f.images()[0].filename, "a.iso");
  auto text = DecodeJigdoBytes(raw, "x");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "[Jigdo]\nVersion=2.0\n[Image]\nFilename=a.iso\nTemplate=a.template\n");
}

TEST(JigdoGzipTest, MagicInsideALineIsText) {
  auto text = DecodeJigdoBytes("a\x1f\x8b" "b\n", "x");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "a\x1f\x8b" "b\n");
}

TEST(JigdoGzipTest, TruncatedAndCorruptGzip) {
  std::string gz = Gzip(kJigdoFileJigdo);
  auto f = Parse(gz.substr(0, gz.size() / 2), "/srv/cut.jigdo");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kCorruption);
  EXPECT_NE(f.status().message().find("/srv/cut.jigdo"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status().message();
  // Only the trailer missing.
  EXPECT_FALSE(Parse(gz.substr(0, gz.size() - 3)).ok());
  // Just the magic.
  EXPECT_FALSE(Parse("\x1f\x8b").ok());
  // Corrupt CRC.
  std::string bad = gz;
  bad[bad.size() - 6] ^= 0x55;
  f = Parse(bad, "/srv/bad.jigdo");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/srv/bad.jigdo"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("corrupt"), std::string::npos) << f.status().message();
}

TEST(JigdoGzipTest, DecompressedSizeIsBounded) {
  std::string big(100000, '#');
  auto r = DecodeJigdoBytes(Gzip(big), "bomb.jigdo", 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bomb.jigdo"), std::string::npos);
  EXPECT_NE(r.status().message().find("more than"), std::string::npos) << r.status().message();
  EXPECT_FALSE(DecodeJigdoBytes(big, "plain.jigdo", 4096).ok());
  EXPECT_TRUE(DecodeJigdoBytes(Gzip(big), "ok.jigdo", 100000).ok());
}

TEST(JigdoGzipTest, GzipBombIsAnErrorNotAnOutOfMemory) {
  // 65 MiB of '\n' compresses to a few hundred KiB.
  std::string bomb = GzipRepeated('\n', kMaxJigdoTextSize + (1 << 20));
  ASSERT_LT(bomb.size(), 2u << 20);
  auto f = Parse(bomb, "bomb.jigdo");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("64 MiB"), std::string::npos) << f.status().message();
}

TEST(JigdoGzipTest, BinaryGarbageIsNotAJigdoFile) {
  ExpectError(std::string("\x7f" "ELF\x02\x01\x01\x00\x00", 9), {"t.jigdo: not a .jigdo file"});
  ExpectError(std::string("[Jigdo]\nVersion=1.0\n\0\0\0", 22), {"t.jigdo: not a .jigdo file", "offset 20"});
  ExpectError(Gzip(std::string("ab\0cd", 5)), {"not a .jigdo file"});
}

TEST(JigdoFuzzTest, RandomInputNeverCrashes) {
  std::mt19937 rng(12345);
  const std::string seeds[] = {std::string(kXorrisoJigdo), std::string(kJigdoFileJigdo), Gzip(kJigdoFileJigdo),
                               Gzip(kXorrisoJigdo) + "[Servers]\nDebian=A:x/ --try-last\nA=Debian:y/\n"};
  const std::string alphabet = "[]=#'\"\\ \t\n\r:/-_AZaz09%\x1f\x8b";
  int ok_count = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string input;
    int mode = iter % 4;
    if (mode == 0) {
      input.resize(rng() % 200);
      for (char& c : input) c = static_cast<char>(rng());
    } else if (mode == 1) {
      input.resize(rng() % 300);
      for (char& c : input) c = alphabet[rng() % alphabet.size()];
    } else {
      input = seeds[rng() % std::size(seeds)];
      int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && !input.empty(); ++e) {
        size_t at = rng() % input.size();
        switch (rng() % 4) {
          case 0: input[at] = static_cast<char>(rng()); break;
          case 1: input[at] = alphabet[rng() % alphabet.size()]; break;
          case 2: input.erase(at, 1 + rng() % 16); break;
          default: input.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        }
      }
      if (rng() % 4 == 0) input.resize(rng() % (input.size() + 1));
    }
    auto f = ParseJigdo(input, "fuzz.jigdo", nullptr);
    if (f.ok()) {
      ++ok_count;
      for (const JigdoImage& image : f->images()) {
        EXPECT_FALSE(image.filename.empty());
        if (image.template_sha256) f->LocationsFor(*image.template_sha256);
      }
      f->LocationsFor(D(kWeirdB64));
    } else {
      EXPECT_FALSE(f.status().message().empty());
      EXPECT_EQ(f.status().message().rfind("fuzz.jigdo", 0), 0u) << f.status().message();
    }
  }
  EXPECT_GT(ok_count, 0);  // the mutations are not all fatal
}

// ---- [Include] ----

// In-memory loader that records what it was asked for.
class FakeLoader : public IncludeLoader {
 public:
  std::map<std::string, std::string> files;
  std::vector<std::string> asked;
  Result<std::string> Load(const std::string& uri) override {
    asked.push_back(uri);
    auto it = files.find(uri);
    if (it == files.end()) return Status::NotFound(uri + ": no such file");
    return it->second;
  }
};

TEST(JigdoIncludeTest, IncludesFromLocalFiles) {
  TempDir dir;
  std::string top = dir.Write("top.jigdo",
                              "[Jigdo]\nVersion=1.1\n"
                              "[Image]\nFilename=dvd.iso\nTemplate=dvd.template\n"
                              "[Include sub/cd%201.jigdo]\n"
                              "[Include file:sub/cd2.jigdo]\n"
                              "[Parts]\n" + std::string(kMd5B64) + "=Top:p\n");
  std::string cd1 = dir.Write("sub/cd 1.jigdo",
                              "[Jigdo]\nVersion=1.1\nGenerator=not-the-top\n"
                              "[Image]\nFilename=cd1.iso\nTemplate=cd1.template\n"
                              "[Include ../other/nested.jigdo]\n"
                              "[Servers]\nA=file:tree/\n"
                              "[Parts]\n" + std::string(kMd5B64) + "=A:one.deb\n");
  std::string cd2 = dir.Write("sub/cd2.jigdo", Gzip("[Parts]\n" + std::string(kMd5B64b) + "=A:two.deb\n"));
  std::string nested = dir.Write("other/nested.jigdo", "[Parts]\n" + std::string(kWeirdB64) + "=nested/x.deb\n");

  auto f = LoadJigdoFile(top);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->origin(), top);
  EXPECT_EQ(f->generator(), "");
  ASSERT_EQ(f->images().size(), 1u);  // included [Image] sections are not images
  EXPECT_EQ(f->images()[0].filename, "dvd.iso");
  EXPECT_EQ(f->part_count(), 4u);
  auto parts = f->PartsFor(D(kMd5B64));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].location, "A:one.deb");
  EXPECT_EQ(*parts[0].base, cd1);
  EXPECT_EQ(parts[1].location, "Top:p");
  EXPECT_EQ(*parts[1].base, top);
  auto two = f->LocationsFor(D(kMd5B64b));
  EXPECT_EQ(two, (std::vector{Label("A", "two.deb"), Url("file:tree/two.deb", cd1)})) << Describe(two);
  auto n = f->PartsFor(D(kWeirdB64));
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(*n[0].base, dir.path() + "/sub/../other/nested.jigdo");
  EXPECT_TRUE(std::filesystem::exists(*n[0].base));
}

TEST(JigdoIncludeTest, AnIncludedMirrorListAddsServers) {
  // debian-mirrors.jigdo style: Label=URL lines before any section.
  TempDir dir;
  std::string top = dir.Write("top.jigdo",
                              "[Image]\nFilename=cd.iso\nTemplate=cd.template\n"
                              "[Servers]\nDebian=http://own/\n"
                              "[Include mirrors.jigdo]\n"
                              "[Parts]\n" + std::string(kMd5B64) + "=Debian:pool/p.deb\n");
  dir.Write("mirrors.jigdo",
            "Debian=http://ftp.us.example/debian/         # US United States\n"
            "Non-US=http://archive.example/debian-non-US/ # NL\n"
            "Debian=http://ftp.uk.example/debian/ --try-last\n");
  auto f = LoadJigdoFile(top);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto locs = f->LocationsFor(D(kMd5B64));
  EXPECT_EQ(locs, (std::vector{Label("Debian", "pool/p.deb"), Url("http://own/pool/p.deb", top),
                               Url("http://ftp.us.example/debian/pool/p.deb", dir.path() + "/mirrors.jigdo"),
                               Url("http://ftp.uk.example/debian/pool/p.deb", dir.path() + "/mirrors.jigdo", -1)}))
      << Describe(locs);
  // At the top level, entries before any section stay an error.
  ExpectError("Debian=http://x/\n", {"t.jigdo:1:", "entry before any [Section] line"});
}

TEST(JigdoIncludeTest, IncludeLoopsAreErrors) {
  TempDir dir;
  std::string a = dir.Write("a.jigdo", "[Parts]\n[Include b.jigdo]\n");
  dir.Write("b.jigdo", "[Include ./c.jigdo]\n");
  dir.Write("c.jigdo", "[Include a.jigdo]\n");
  auto f = LoadJigdoFile(a);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("loop"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("c.jigdo:1:"), std::string::npos) << f.status().message();

  std::string self = dir.Write("self.jigdo", "[Include self.jigdo]\n");
  f = LoadJigdoFile(self);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("loop"), std::string::npos) << f.status().message();
}

TEST(JigdoIncludeTest, IncludeErrors) {
  TempDir dir;
  std::string missing = dir.Write("m.jigdo", "[Include nothere.jigdo]\n");
  auto f = LoadJigdoFile(missing);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kNotFound);
  EXPECT_NE(f.status().message().find("m.jigdo:1:"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("nothere.jigdo"), std::string::npos) << f.status().message();

  std::string http = dir.Write("h.jigdo", "[Include http://127.0.0.1:1/x.jigdo]\n");
  f = LoadJigdoFile(http);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kNotSupported);
  EXPECT_NE(f.status().message().find("network"), std::string::npos) << f.status().message();

  dir.Write("ok.jigdo", "[Parts]\n");
  std::string after = dir.Write("after.jigdo", "[Servers]\nA=http://a/\n[Include ok.jigdo]\nB=http://b/\n");
  f = LoadJigdoFile(after);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("after.jigdo:4:"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("[Include]"), std::string::npos) << f.status().message();

  std::string bad = dir.Write("bad_inner.jigdo", "[Include inner.jigdo]\n");
  dir.Write("inner.jigdo", "[Parts]\n\nbroken line\n");
  f = LoadJigdoFile(bad);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("inner.jigdo:3:"), std::string::npos) << f.status().message();

  EXPECT_FALSE(ParseJigdo("[Include x.jigdo]\n", "t.jigdo", nullptr).ok());
  ExpectError("[Include]\n", {"t.jigdo:1:", "URL"});
}

TEST(JigdoIncludeTest, UrlIncludesResolveAgainstTheirOwnUrl) {
  FakeLoader loader;
  loader.files["http://h/d/x/inc.jigdo"] =
      "[Servers]\nM=mirror/\n[Include ../y/deep%5D.jigdo]\n";
  loader.files["http://h/d/y/deep].jigdo"] = Gzip("[Parts]\n" + std::string(kMd5B64) + "=M:a.deb\n");
  auto f = ParseJigdo("[Image]\nFilename=a\nTemplate=t.template\n[Include x/inc.jigdo]\n", "http://h/d/top.jigdo",
                      &loader);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(loader.asked, (V{"http://h/d/x/inc.jigdo", "http://h/d/y/deep].jigdo"}));
  EXPECT_EQ(f->images()[0].template_base, "http://h/d/top.jigdo");
  auto locs = f->LocationsFor(D(kMd5B64));
  EXPECT_EQ(locs, (std::vector{Label("M", "a.deb"), Url("mirror/a.deb", "http://h/d/x/inc.jigdo")})) << Describe(locs);
  EXPECT_EQ(*f->PartsFor(D(kMd5B64))[0].base, "http://h/d/y/deep].jigdo");
}

TEST(JigdoIncludeTest, SameFileTwiceIsNotALoop) {
  FakeLoader loader;
  loader.files["/j/p.jigdo"] = "[Parts]\n" + std::string(kMd5B64) + "=http://h/a\n";
  auto f = ParseJigdo("[Include p.jigdo]\n[Include /j/p.jigdo]\n", "/j/top.jigdo", &loader);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->part_count(), 1u);  // parsed once: the second include adds nothing new
  EXPECT_EQ(f->LocationsFor(D(kMd5B64)), (std::vector{Url("http://h/a", "/j/p.jigdo")}));
  EXPECT_EQ(loader.asked.size(), 1u);
}

// A document from the network stays remote through every include: it may
// only include network URLs, so it can never name a local file.
TEST(JigdoIncludeTest, RemoteDocumentsMayOnlyIncludeNetworkUrls) {
  FakeLoader loader;
  loader.files["/etc/secret"] = "[Servers]\nX=file:/\n";
  loader.files["http://h/inner.jigdo"] = "[Include file:///etc/secret]\n";
  for (const char* top : {"[Include file:///etc/secret]\n", "[Include inner.jigdo]\n"}) {
    loader.asked.clear();
    auto f = ParseJigdo(top, "http://h/top.jigdo", &loader);
    ASSERT_FALSE(f.ok()) << top;
    EXPECT_NE(f.status().message().find("may only include http"), std::string::npos) << f.status().message();
    EXPECT_EQ(std::count(loader.asked.begin(), loader.asked.end(), "/etc/secret"), 0) << top;
  }
  // A local document may include local files and URLs.
  loader.files["http://h/ok.jigdo"] = "[Servers]\nM=http://m/\n";
  auto local = ParseJigdo("[Include /etc/secret]\n[Include http://h/ok.jigdo]\n", "/j/top.jigdo", &loader);
  EXPECT_TRUE(local.ok()) << local.status().ToString();
}

// One budget across every include: a thousand includes of distinct files
// of a few MiB each stop at the budget, not at the machine's memory.
TEST(JigdoIncludeTest, OneTextBudgetAcrossIncludes) {
  FakeLoader loader;
  std::string top;
  const std::string chunk(8u << 20, '#');  // 8 MiB of comment lines' worth
  std::string body;
  for (size_t i = 0; i < chunk.size(); i += 64) body += std::string(63, '#') + "\n";
  for (int i = 0; i < 20; ++i) {
    loader.files["/j/i" + std::to_string(i) + ".jigdo"] = body;
    top += "[Include i" + std::to_string(i) + ".jigdo]\n";
  }
  auto f = ParseJigdo(top, "/j/top.jigdo", &loader);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("64 MiB"), std::string::npos) << f.status().message();
  EXPECT_LE(loader.asked.size(), 9u);  // 8 MiB each: the ninth crosses the budget
}

TEST(JigdoIncludeTest, LoadJigdoFileErrors) {
  auto f = LoadJigdoFile("/nonexistent/dir/x.jigdo");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/nonexistent/dir/x.jigdo"), std::string::npos);
}

}  // namespace
}  // namespace jigdoofus
