// LabelCoverage: at mount time, the [Parts] labels whose slices nothing
// can serve, so the user hears it at once and not at the first EIO: a
// label with no --local directory and no server (or only network servers
// with --offline), for slices that are not in the cache either. One line
// per label, naming it, how many slices and bytes, and what would help.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/jigdo_file.h"
#include "core/template_index.h"

namespace jigdoofus {

struct LabelCoverageInput {
  const JigdoFile* jigdo = nullptr;
  std::vector<const TemplateIndex*> images;          // the images of this .jigdo
  const std::map<std::string, std::string>* local = nullptr;  // --local
  const std::vector<std::pair<std::string, std::string>>* mirrors = nullptr;  // --mirror, --mirror-list servers
  bool offline = false;
  bool scanning = false;                              // --scan given: slices may be found there
  std::function<bool(const SliceId&)> cached;         // complete in the cache
};

std::vector<std::string> UncoveredLabelWarnings(const LabelCoverageInput& in);

}  // namespace jigdoofus
