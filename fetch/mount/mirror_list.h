// Mirror lists (--mirror-list LABEL=FILE|URL): more servers for a label,
// from a list in one of three forms, recognised by their content:
//
//   * jigdo's (as /usr/share/jigdo/debian-mirrors.jigdo): `Label=URL
//     # comment` lines; the lines of the wanted label are taken, others
//     (Non-US=...) are skipped; an optional [Servers] header is allowed.
//   * a plain list: one URL a line; blank lines and `#` comments skipped.
//   * Metalink (RFC 5854, version 4, and the older 3.0 that Fedora's
//     MirrorManager also serves): each <url> of a <file>, with the file's
//     name cut from its end, is a server base (a metalink for
//     `repodata/repomd.xml` whose URLs end in it gives the directories
//     above); ordered by priority (v4 `priority`, lowest first; v3
//     `preference`, highest first). A DOCTYPE is refused (no entities).
//
// Only http, https and ftp URLs are taken (a list is a document from
// anywhere; local directories are --local). At most kMaxListedServers.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace jigdoofus {

inline constexpr size_t kMaxListedServers = 1000;

enum class MirrorListForm { kJigdo, kPlain, kMetalink };

struct MirrorList {
  MirrorListForm form = MirrorListForm::kPlain;
  std::vector<std::string> servers;  // base URLs, each ending in '/'
  size_t skipped = 0;                // lines or URLs not taken (other labels, other schemes)
};

// `origin` names the list in errors. kInvalidArgument for a list that
// yields no server for `label`, or malformed XML.
Result<MirrorList> ParseMirrorList(std::string_view text, const std::string& label, const std::string& origin);

}  // namespace jigdoofus
