#include "fetch/mount/label_coverage.h"

#include <set>

#include "core/uri.h"

namespace jigdoofus {

namespace {

struct Tally {
  size_t slices = 0;
  uint64_t bytes = 0;
};

std::string Mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace

std::vector<std::string> UncoveredLabelWarnings(const LabelCoverageInput& in) {
  std::map<std::string, Tally> uncovered;  // first label of the slice's parts -> what it cannot serve
  std::set<Digest> seen;
  for (const TemplateIndex* index : in.images) {
    for (const SliceId& id : index->slices()) {
      if (!seen.insert(id.digest).second) continue;
      bool local = false, network = false;
      std::string first_label;
      for (const SliceLocation& loc : in.jigdo->LocationsFor(id.digest)) {
        if (!loc.label.empty()) {
          if (first_label.empty()) first_label = loc.label;
          if (in.local->count(loc.label)) local = true;
          for (const auto& [label, url] : *in.mirrors) network |= label == loc.label;
        } else if (UriScheme(loc.path) == "file") {
          local = true;
        } else if (IsNetworkUrl(loc.path)) {
          network = true;
        }
      }
      if (local || (network && !in.offline)) continue;
      if (in.cached && in.cached(id)) continue;
      Tally& t = uncovered[first_label.empty() ? "(no label)" : first_label];
      ++t.slices;
      t.bytes += id.size;
    }
  }
  std::vector<std::string> out;
  const std::string& origin = in.jigdo->origin();
  for (const auto& [label, t] : uncovered) {
    std::string line = origin + ": label '" + label + "': " + std::to_string(t.slices) + " slice(s), " + Mb(t.bytes) +
                       ", that nothing can serve: ";
    const bool has_servers = label != "(no label)" && in.jigdo->HasServerLabel(label);
    if (in.offline) {
      line += "--offline, no --local " + label + "=DIR, not in the cache";
    } else if (!has_servers) {
      line += "no server in the .jigdo, no --mirror " + label + "=URL, no --local " + label + "=DIR";
    } else {
      line += "its servers are not network URLs, no --local " + label + "=DIR";
    }
    line += in.scanning ? "; they read as EIO unless --scan finds them" : "; they read as EIO";
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace jigdoofus
