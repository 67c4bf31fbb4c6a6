// JigdoFile lookups: [Parts] by digest, [Servers] label expansion.
#include "core/jigdo_file.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "core/uri.h"

namespace jigdoofus {

bool SplitLabelLocation(std::string_view location, std::string_view* label, std::string_view* path) {
  if (IsUrl(location)) return false;
  size_t colon = location.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  size_t slash = location.find('/');
  if (slash != std::string_view::npos && slash < colon) return false;
  *label = location.substr(0, colon);
  *path = location.substr(colon + 1);
  return true;
}

namespace {

// Depth-first expansion of one location; pre-order so that a label form is
// emitted before what it expands to. `chain` holds the labels on the current
// path (a label seen again is a loop and is cut there).
class Expander {
 public:
  explicit Expander(const std::multimap<std::string, ServerEntry>& servers) : servers_(servers) {}

  void Visit(const std::string& location, const std::string& base, double weight,
             size_t url_prefix_len = std::string::npos) {
    // Bounded work even for a hostile [Servers] graph (out_ and the calls
    // that end in a cut loop both count).
    if (out_.size() >= kMaxExpandedLocations || ++visits_ > 16 * kMaxExpandedLocations) return;
    std::string_view label, path;
    if (!SplitLabelLocation(location, &label, &path)) {
      out_.push_back(SliceLocation{"", location, weight, base, url_prefix_len});
      return;
    }
    std::string label_str(label);
    if (std::find(chain_.begin(), chain_.end(), label_str) != chain_.end()) return;  // loop: cut
    if (chain_.size() >= kMaxLabelChainDepth) return;
    out_.push_back(SliceLocation{label_str, std::string(path), weight, ""});
    chain_.push_back(label_str);
    auto [first, last] = servers_.equal_range(label_str);
    for (auto it = first; it != last; ++it) {
      const ServerEntry& server = it->second;
      std::string_view server_label, server_path;
      const bool server_is_url = !SplitLabelLocation(server.value, &server_label, &server_path);
      Visit(server.value + std::string(path), server.base, weight + server.weight,
            server_is_url ? server.value.size() : std::string::npos);
    }
    chain_.pop_back();
  }

  std::vector<SliceLocation> Take() { return std::move(out_); }

 private:
  const std::multimap<std::string, ServerEntry>& servers_;
  std::vector<std::string> chain_;
  std::vector<SliceLocation> out_;
  size_t visits_ = 0;
};

// Highest weight first (stable: file order among equals), then duplicates
// removed (first kept). A URL's base only matters while the URL is relative.
void OrderAndDedupe(std::vector<SliceLocation>* locations) {
  std::stable_sort(locations->begin(), locations->end(),
                   [](const SliceLocation& a, const SliceLocation& b) { return a.weight > b.weight; });
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  std::vector<SliceLocation> out;
  out.reserve(locations->size());
  for (SliceLocation& l : *locations) {
    bool absolute_url = l.label.empty() && IsUrl(l.path) && l.path.find("://") != std::string::npos;
    std::string base_key = l.label.empty() && !absolute_url ? l.base : std::string();
    if (seen.emplace(l.label, l.path, base_key).second) out.push_back(std::move(l));
  }
  *locations = std::move(out);
}

}  // namespace

std::vector<PartEntry> JigdoFile::PartsFor(const Digest& digest) const {
  std::string key = digest.ToBase64();
  if (auto it = parts_.find(key); it != parts_.end()) return it->second;
  const char* label = digest.algo == HashAlgo::kMd5 ? "MD5Sum:" : "SHA256Sum:";
  return {PartEntry{label + key, std::make_shared<const std::string>(origin_)}};
}

std::vector<SliceLocation> JigdoFile::Expand(const PartEntry& part) const {
  Expander expander(servers_);
  expander.Visit(part.location, part.base ? *part.base : origin_, 0.0);
  std::vector<SliceLocation> out = expander.Take();
  OrderAndDedupe(&out);
  return out;
}

std::vector<SliceLocation> JigdoFile::LocationsFor(const Digest& digest) const {
  std::vector<SliceLocation> all;
  for (const PartEntry& part : PartsFor(digest)) {
    std::vector<SliceLocation> one = Expand(part);
    all.insert(all.end(), std::make_move_iterator(one.begin()), std::make_move_iterator(one.end()));
  }
  OrderAndDedupe(&all);
  return all;
}

bool JigdoFile::HasServerLabel(std::string_view label) const {
  return servers_.find(std::string(label)) != servers_.end();
}

}  // namespace jigdoofus
