// A directory only its owner can use: where jigdoofus keeps its cache and
// the documents it downloaded. Files kept there are written 0600.
#pragma once

#include <string>

#include "core/status.h"

namespace jigdoofus {

// mkdir -p with mode 0700 for the directories it creates. The directory
// must then be a directory owned by this process's effective user: a
// cache another user can write into could make us (root, say) write
// through their symlinks or serve what they put there.
Status MakePrivateDir(const std::string& dir);

}  // namespace jigdoofus
