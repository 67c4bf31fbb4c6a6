// Word splitting of .jigdo entry values (jigdo-file(1), FORMAT OF .JIGDO
// FILES) and the "location + options" reading of [Parts]/[Servers] values.
//
// Internal to core/ (the parser and its tests). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace jigdoofus {

// One word of a value: its unquoted text and where it was in the raw value
// ([begin, end) byte offsets, quotes included).
struct JigdoWord {
  std::string text;
  size_t begin = 0;
  size_t end = 0;
};

// Shell-like splitting: space/tab separate words; '' quotes everything;
// "" quotes all but backslash escapes; a backslash outside '' makes the next
// character literal (a trailing lone backslash is kept as is); '#' outside
// quotes starts a comment. An unterminated quote is kCorruption (the message
// names the quote, not the file: callers add "<origin>:<line>").
Result<std::vector<JigdoWord>> SplitJigdoWordsWithSpans(std::string_view value);

// A [Parts]/[Servers]/Filename=/Template= value read as a location with
// options. The first word is the location; later words starting with "--"
// are options; other later words belong to the location, joined with the
// raw whitespace that preceded them. This makes the unquoted values that
// libjte (xorriso, genisoimage) writes for paths with spaces
// ("Debian:pool/a b.deb") read the same as jigdo-file's quoted ones.
struct LocationValue {
  std::string location;
  std::vector<std::string> options;
};
Result<LocationValue> ParseLocationValue(std::string_view value);

}  // namespace jigdoofus
