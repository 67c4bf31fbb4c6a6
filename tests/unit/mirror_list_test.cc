// --mirror-list parsing: jigdo's Label=URL form, plain lists, Metalink 4
// and 3; what is refused.
#include "fetch/mount/mirror_list.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace jigdoofus {
namespace {

using V = std::vector<std::string>;

TEST(MirrorList, JigdoFormTakesTheLabelsLines) {
  const std::string text =
      "Debian=http://ftp.us.debian.org/debian/         # US United States\n"
      "Non-US=http://archive.debian.org/debian-non-US/ # NL Netherlands\n"
      "  Debian=http://ftp.uk.debian.org/debian  # GB, no trailing slash\n"
      "Debian=file:/etc/ # never a local path\n"
      "Debian=ftp://ftp.de.debian.org/debian/ --try-last\n"
      "# a comment\n\n"
      "Debian=http://ftp.us.debian.org/debian/  # twice\n";
  auto l = ParseMirrorList(text, "Debian", "list");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->form, MirrorListForm::kJigdo);
  EXPECT_EQ(l->servers, (V{"http://ftp.us.debian.org/debian/", "http://ftp.uk.debian.org/debian/",
                           "ftp://ftp.de.debian.org/debian/"}));
  EXPECT_EQ(l->skipped, 2u);  // Non-US, file:
}

TEST(MirrorList, TheListShippedWithJigdoFileParses) {
  // jigdo-file is a test dependency (.ci/install-deps): the list is there.
  std::ifstream in("/usr/share/jigdo/debian-mirrors.jigdo");
  ASSERT_TRUE(in) << "jigdo-file's /usr/share/jigdo/debian-mirrors.jigdo is missing";
  std::stringstream ss;
  ss << in.rdbuf();
  auto l = ParseMirrorList(ss.str(), "Debian", "/usr/share/jigdo/debian-mirrors.jigdo");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->form, MirrorListForm::kJigdo);
  EXPECT_GT(l->servers.size(), 100u);
  for (const std::string& s : l->servers) EXPECT_EQ(s.back(), '/');
}

TEST(MirrorList, PlainListOneUrlALine) {
  auto l = ParseMirrorList("# mine\nhttp://a.example/debian/\nhttps://b.example/debian\n\nnot a url\n", "Debian",
                           "plain");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->form, MirrorListForm::kPlain);
  EXPECT_EQ(l->servers, (V{"http://a.example/debian/", "https://b.example/debian/"}));
  EXPECT_EQ(l->skipped, 1u);
}

TEST(MirrorList, Metalink4ByPriorityWithTheFileNameCut) {
  const std::string text = R"(<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="repodata/repomd.xml">
    <size>3500</size>
    <url location="de" priority="2">http://b.example/fedora/os/repodata/repomd.xml</url>
    <url location="us" priority="1">https://a.example/fedora/os/repodata/repomd.xml</url>
    <url priority="3">rsync://c.example/fedora/os/repodata/repomd.xml</url>
    <url priority="4">http://d.example/elsewhere/other.xml</url>
  </file>
</metalink>)";
  auto l = ParseMirrorList(text, "Fedora", "ml4");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->form, MirrorListForm::kMetalink);
  EXPECT_EQ(l->servers, (V{"https://a.example/fedora/os/", "http://b.example/fedora/os/"}));
  EXPECT_EQ(l->skipped, 1u);  // rsync (other.xml gives no base at all)
}

TEST(MirrorList, Metalink3ByPreference) {
  const std::string text = R"(<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic">
 <files>
  <file name="repomd.xml">
   <resources maxconnections="1">
    <url protocol="http" type="http" location="US" preference="90">http://low.example/os/repodata/repomd.xml</url>
    <url protocol="http" type="http" location="DE" preference="100">http://high.example/os/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>)";
  auto l = ParseMirrorList(text, "Fedora", "ml3");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->servers, (V{"http://high.example/os/repodata/", "http://low.example/os/repodata/"}));
}

TEST(MirrorList, RefusesDoctypesBadXmlAndListsWithNothingUsable) {
  const std::string laughs = R"(<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="x"><url>http://a/&lol2;/x</url></file></metalink>)";
  auto l = ParseMirrorList(laughs, "L", "evil.meta4");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("evil.meta4: a metalink with a DOCTYPE is not accepted"), std::string::npos);
  l = ParseMirrorList("<?xml version=\"1.0\"?><metalink><file name=\"x\"><url>http://a/x</url>", "L", "cut.meta4");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("cut.meta4: not well-formed XML"), std::string::npos);
  l = ParseMirrorList("Other=http://a/\n", "Debian", "other.jigdo");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("no http, https or ftp server for label 'Debian'"), std::string::npos);
  EXPECT_FALSE(ParseMirrorList("", "Debian", "empty").ok());
}

}  // namespace
}  // namespace jigdoofus
