// Opening a file named by a .jigdo under a directory it must not escape
// (--local LABEL=DIR). The .jigdo is input we do not trust: "..",
// absolute paths and symlinks that lead outside DIR are refused.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "core/unique_fd.h"

namespace jigdoofus {

// True if `rel` is non-empty, relative, and has no ".." component.
bool IsSafeRelativePath(std::string_view rel);

// `dir` made absolute against the current directory and lexically
// normalised, without a trailing '/' (except for "/" itself).
std::string AbsoluteDir(const std::string& dir);

// True if the absolute, normalised `path` is `root` or below it (compared
// component-wise: "/a/bc" is not below "/a/b").
bool IsPathWithin(std::string_view root, std::string_view path);

// Opens DIR/rel with `flags` without leaving DIR. Uses openat2 with
// RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; if the kernel lacks it
// (ENOSYS), realpath() both and checks the prefix. Symlinks inside DIR
// that stay inside are followed.
// Returns kNotFound when the file is missing or the path is refused
// (the message says which), other errors as kIOError.
// REQUIRES: `dir` is absolute.
Result<UniqueFd> OpenBeneath(const std::string& dir, const std::string& rel, int flags);

// The realpath() fallback of OpenBeneath (exposed so tests can exercise it
// on kernels that have openat2).
Result<UniqueFd> OpenBeneathByRealpath(const std::string& dir, const std::string& rel, int flags);

}  // namespace jigdoofus
