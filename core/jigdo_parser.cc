// The .jigdo parser: decoded text -> JigdoFile. See core/jigdo_file.h for
// the rules and doc/jigdo_format.md for what is accepted and rejected.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <set>
#include <cctype>
#include <vector>

#include "core/byte_source.h"
#include "core/jigdo_file.h"
#include "core/jigdo_words.h"
#include "core/uri.h"

namespace jigdoofus {

namespace {

constexpr int kMaxIncludeDepth = 32;
constexpr int kMaxIncludes = 1024;
// One budget for a .jigdo and everything it includes: decoded text
// (kMaxJigdoTextSize in all) and [Parts] entries. Debian's DVD .jigdo files
// are a few MiB of text and tens of thousands of entries; a small gzip bomb
// or a thousand includes of one big file must not take the machine's memory.
constexpr uint64_t kMaxTotalTextBytes = kMaxJigdoTextSize;
constexpr size_t kMaxPartEntries = size_t{1} << 20;
constexpr int kMaxSupportedMajorVersion = 2;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Text that is not text: NUL or control bytes other than whitespace.
std::optional<size_t> FindBinaryByte(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') || c == 0x7f) return i;
  }
  return std::nullopt;
}

// [Include] arguments cannot be quoted; "]" is written %5D and " " %20.
std::string DecodeIncludeArgument(std::string_view arg) {
  std::string out;
  for (size_t i = 0; i < arg.size(); ++i) {
    std::string_view rest = arg.substr(i);
    if (rest.size() >= 3 && rest[0] == '%' && rest[1] == '5' && (rest[2] == 'D' || rest[2] == 'd')) {
      out.push_back(']');
      i += 2;
    } else if (rest.starts_with("%20")) {
      out.push_back(' ');
      i += 2;
    } else {
      out.push_back(arg[i]);
    }
  }
  return out;
}

enum class Section { kNone, kJigdo, kImage, kParts, kServers, kComment, kUnknown };

}  // namespace

// Parses one file (the top-level one or an included one) into file_.
class JigdoParser {
 public:
  explicit JigdoParser(IncludeLoader* loader) : loader_(loader) {}

  // `remote`: the text came from the network, or was included by text
  // that did (a document from the network stays "remote" through every
  // include, so it can never name a local file).
  Status ParseFile(std::string_view raw, const std::string& origin, bool top_level, bool remote);
  JigdoFile TakeFile(const std::string& origin) {
    file_.origin_ = origin;
    return std::move(file_);
  }

 private:
  // Per-file state.
  struct FileState {
    FileState(const std::string* o, bool top, bool r)
        : origin(o), shared_origin(std::make_shared<const std::string>(*o)), top_level(top), remote(r) {}
    const std::string* origin;
    std::shared_ptr<const std::string> shared_origin;  // one copy for all of this file's [Parts] entries
    bool top_level;
    bool remote;
    int line = 0;
    Section section = Section::kNone;
    bool after_include = false;
    JigdoImage* image = nullptr;  // current [Image] (a scratch one when included)
    JigdoImage scratch_image;
  };

  Status Error(const FileState& f, std::string_view what) const {
    return Status::Corruption(*f.origin + ":" + std::to_string(f.line) + ": " + std::string(what));
  }
  Status Header(FileState& f, std::string_view line);
  Status Include(FileState& f, std::string_view arg);
  Status Entry(FileState& f, std::string_view label, std::string_view value);
  Status JigdoEntry(FileState& f, std::string_view label, std::string_view value);
  Status ImageEntry(FileState& f, std::string_view label, std::string_view value);
  Status PartsEntry(FileState& f, std::string_view label, std::string_view value);
  Status ServersEntry(FileState& f, std::string_view label, std::string_view value);
  Result<LocationValue> Location(const FileState& f, std::string_view label, std::string_view value) const;

  IncludeLoader* loader_;
  JigdoFile file_;
  std::vector<std::string> include_stack_;  // origins being parsed, outermost first
  std::set<std::string> included_;          // every include parsed (each is parsed once)
  int include_count_ = 0;
  uint64_t text_bytes_ = 0;                 // decoded text of every file so far
  size_t part_entries_ = 0;
  bool version_seen_ = false;
};

Status JigdoParser::ParseFile(std::string_view raw, const std::string& origin, bool top_level, bool remote) {
  if (text_bytes_ >= kMaxTotalTextBytes) {
    return Status::Corruption(origin + ": the .jigdo and its includes exceed " +
                              std::to_string(kMaxTotalTextBytes >> 20) + " MiB of text");
  }
  auto decoded = DecodeJigdoBytes(raw, origin, static_cast<size_t>(kMaxTotalTextBytes - text_bytes_));
  const bool over_size = !decoded.ok() && (decoded.status().message().find("larger than") != std::string::npos ||
                                           decoded.status().message().find("more than") != std::string::npos);
  if (over_size && text_bytes_ > 0) {
    return Status::Corruption(origin + ": the .jigdo and its includes exceed " +
                              std::to_string(kMaxTotalTextBytes >> 20) + " MiB of text in all (" +
                              decoded.status().message() + ")");
  }
  if (!decoded.ok()) return decoded.status();
  text_bytes_ += decoded->size();
  std::string_view text = *decoded;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
  if (auto bad = FindBinaryByte(text)) {
    return Status::Corruption(origin + ": not a .jigdo file (binary data: byte 0x" +
                              ToHex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data() + *bad), 1)) +
                              " at offset " + std::to_string(*bad) + " of the text)");
  }
  include_stack_.push_back(origin);
  FileState f(&origin, top_level, remote || IsNetworkUrl(origin));
  // An included file whose entries start before any section line is a
  // server list (as /usr/share/jigdo/debian-mirrors.jigdo is written):
  // its Label=URL lines are [Servers] entries. (jigdo itself rejects such
  // an include; this is how [Include URL] of a mirror list works here.)
  if (!top_level) f.section = Section::kServers;
  size_t first_image = file_.images_.size();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++f.line;
    if (line.starts_with('[')) {
      JIGDOOFUS_RETURN_IF_ERROR(Header(f, line));
      continue;
    }
    if (f.section == Section::kComment || line.empty() || line.starts_with('#')) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Error(f, "expected \"Label=Value\", a [Section] line or a # comment, got \"" +
                          std::string(line.substr(0, 80)) + "\"");
    }
    std::string_view label = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (label.empty()) return Error(f, "entry with an empty label before '='");
    JIGDOOFUS_RETURN_IF_ERROR(Entry(f, label, value));
  }
  include_stack_.pop_back();
  if (top_level) {
    for (size_t i = first_image; i < file_.images_.size(); ++i) {
      const JigdoImage& image = file_.images_[i];
      std::string where = origin + ":" + std::to_string(image.line) + ": [Image] section has no ";
      if (image.filename.empty()) return Status::Corruption(where + "Filename=");
      if (image.template_uri.empty()) return Status::Corruption(where + "Template=");
    }
  }
  return Status::OK();
}

Status JigdoParser::Header(FileState& f, std::string_view line) {
  size_t close = line.find(']');
  if (close == std::string_view::npos) return Error(f, "section line without a closing ']'");
  std::string_view after = Trim(line.substr(close + 1));
  if (!after.empty() && !after.starts_with('#')) {
    return Error(f, "unexpected text \"" + std::string(after.substr(0, 80)) + "\" after the section line");
  }
  std::string_view name = Trim(line.substr(1, close - 1));
  f.after_include = false;
  f.image = nullptr;
  if (name.starts_with("Include") && (name.size() == 7 || IsSpace(name[7]))) {
    f.section = Section::kNone;
    f.after_include = true;
    return Include(f, Trim(name.substr(7)));
  }
  if (name == "Jigdo") {
    f.section = Section::kJigdo;
  } else if (name == "Image") {
    f.section = Section::kImage;
    if (f.top_level) {
      JigdoImage image;
      image.template_base = *f.origin;
      image.line = f.line;
      file_.images_.push_back(std::move(image));
      f.image = &file_.images_.back();
    } else {
      f.scratch_image = JigdoImage{};
      f.image = &f.scratch_image;
    }
  } else if (name == "Parts") {
    f.section = Section::kParts;
  } else if (name == "Servers") {
    f.section = Section::kServers;
  } else if (name == "Comment" || name == "comment") {
    f.section = Section::kComment;
  } else {
    f.section = Section::kUnknown;
  }
  return Status::OK();
}

Status JigdoParser::Include(FileState& f, std::string_view arg) {
  if (arg.empty()) return Error(f, "[Include] without a URL");
  std::string resolved = ResolveReference(*f.origin, DecodeIncludeArgument(arg));
  if (f.remote && !IsNetworkUrl(resolved)) {
    return Error(f, "[Include " + resolved + "]: a .jigdo from the network may only include http, https or ftp URLs");
  }
  if (UriScheme(resolved) == "file") {
    if (auto path = FileUrlToPath(resolved, *f.origin)) resolved = *path;
  }
  if (std::find(include_stack_.begin(), include_stack_.end(), resolved) != include_stack_.end()) {
    std::string chain;
    for (const std::string& o : include_stack_) chain += o + " -> ";
    return Error(f, "[Include] loop: " + chain + resolved);
  }
  if (include_stack_.size() > static_cast<size_t>(kMaxIncludeDepth)) {
    return Error(f, "[Include] nested more than " + std::to_string(kMaxIncludeDepth) + " deep");
  }
  if (++include_count_ > kMaxIncludes) {
    return Error(f, "more than " + std::to_string(kMaxIncludes) + " [Include] directives");
  }
  // The same file again adds nothing new: parse each include once.
  if (!included_.insert(resolved).second) return Status::OK();
  if (loader_ == nullptr) {
    return Status::NotSupported(*f.origin + ":" + std::to_string(f.line) + ": [Include " + resolved +
                                "]: no include loader given");
  }
  auto bytes = loader_->Load(resolved);
  if (!bytes.ok()) return bytes.status().WithContext(*f.origin + ":" + std::to_string(f.line) + ": [Include]");
  return ParseFile(*bytes, resolved, false, f.remote);
}

Status JigdoParser::Entry(FileState& f, std::string_view label, std::string_view value) {
  switch (f.section) {
    case Section::kNone:
      if (f.after_include) {
        return Error(f, "entry after an [Include] line; start a new section first (jigdo-file(1))");
      }
      return Error(f, "entry before any [Section] line");
    case Section::kJigdo: return JigdoEntry(f, label, value);
    case Section::kImage: return ImageEntry(f, label, value);
    case Section::kParts: return PartsEntry(f, label, value);
    case Section::kServers: return ServersEntry(f, label, value);
    case Section::kComment:
    case Section::kUnknown: return Status::OK();
  }
  return Status::OK();
}

Result<LocationValue> JigdoParser::Location(const FileState& f, std::string_view label,
                                            std::string_view value) const {
  auto loc = ParseLocationValue(value);
  if (!loc.ok()) return Error(f, std::string(label) + "=: " + loc.status().message());
  return loc;
}

Status JigdoParser::JigdoEntry(FileState& f, std::string_view label, std::string_view value) {
  if (label != "Version" && label != "Generator") return Status::OK();
  auto loc = Location(f, label, value);
  if (!loc.ok()) return loc.status();
  if (label == "Generator") {
    if (f.top_level && file_.generator_.empty()) file_.generator_ = loc->location;
    return Status::OK();
  }
  const std::string& version = loc->location;
  size_t digits = 0;
  while (digits < version.size() && std::isdigit(static_cast<unsigned char>(version[digits]))) ++digits;
  if (digits == 0 || digits > 6 || (digits < version.size() && version[digits] != '.')) {
    return Error(f, "malformed [Jigdo] Version \"" + version + "\"");
  }
  int major = std::stoi(version.substr(0, digits));
  if (major > kMaxSupportedMajorVersion) {
    return Status::NotSupported(*f.origin + ":" + std::to_string(f.line) + ": .jigdo format version " + version +
                                " is not supported (at most " + std::to_string(kMaxSupportedMajorVersion) + ".x)");
  }
  if (f.top_level && !version_seen_) {
    file_.version_ = version;
    version_seen_ = true;
  }
  return Status::OK();
}

Status JigdoParser::ImageEntry(FileState& f, std::string_view label, std::string_view value) {
  JigdoImage& image = *f.image;
  if (label == "ShortInfo") {
    image.short_info = std::string(value);
  } else if (label == "Info") {
    image.info = std::string(value);
  } else if (label == "Filename" || label == "Template") {
    auto loc = Location(f, label, value);
    if (!loc.ok()) return loc.status();
    if (loc->location.empty()) return Error(f, std::string(label) + "= is empty");
    (label == "Filename" ? image.filename : image.template_uri) = loc->location;
  } else if (label == "Template-MD5Sum" || label == "Template-SHA256Sum") {
    HashAlgo want = label == "Template-MD5Sum" ? HashAlgo::kMd5 : HashAlgo::kSha256;
    auto words = SplitJigdoWords(value);
    if (!words.ok()) return Error(f, std::string(label) + "=: " + words.status().message());
    if (words->size() != 1) return Error(f, std::string(label) + "= must be one jigdo Base64 checksum");
    auto digest = ParseDigestBase64(words->front());
    if (!digest.ok()) return Error(f, std::string(label) + "=: " + digest.status().message());
    if (digest->algo != want) {
      return Error(f, std::string(label) + "= \"" + words->front() + "\" is not a " + HashAlgoName(want) + " checksum");
    }
    (want == HashAlgo::kMd5 ? image.template_md5 : image.template_sha256) = *digest;
  }
  return Status::OK();
}

Status JigdoParser::PartsEntry(FileState& f, std::string_view label, std::string_view value) {
  std::string_view key = label;
  std::optional<HashAlgo> want;
  if (key.starts_with("MD5Sum:")) {
    key.remove_prefix(7);
    want = HashAlgo::kMd5;
  } else if (key.starts_with("SHA256Sum:")) {
    key.remove_prefix(10);
    want = HashAlgo::kSha256;
  }
  auto digest = ParseDigestBase64(key);
  if (!digest.ok()) return Error(f, "[Parts] key: " + digest.status().message());
  if (want && digest->algo != *want) {
    return Error(f, "[Parts] key \"" + std::string(label) + "\" does not have the length of a " +
                        HashAlgoName(*want) + " checksum");
  }
  auto loc = Location(f, label, value);
  if (!loc.ok()) return loc.status();
  if (loc->location.empty()) return Error(f, "[Parts] entry with an empty location");
  if (++part_entries_ > kMaxPartEntries) {
    return Error(f, "more than " + std::to_string(kMaxPartEntries) + " [Parts] entries in the .jigdo and its includes");
  }
  file_.parts_[digest->ToBase64()].push_back(PartEntry{loc->location, f.shared_origin});
  ++file_.part_count_;
  return Status::OK();
}

Status JigdoParser::ServersEntry(FileState& f, std::string_view label, std::string_view value) {
  auto loc = Location(f, label, value);
  if (!loc.ok()) return loc.status();
  if (loc->location.empty()) return Error(f, "[Servers] entry with an empty location");
  ServerEntry entry;
  entry.value = std::move(loc->location);
  entry.options = std::move(loc->options);
  entry.base = *f.origin;
  for (const std::string& opt : entry.options) {
    // --try-first[=W] adds W (default 1) to the server's weight,
    // --try-last[=W] subtracts it; other options are ignored, as by jigdo.
    for (auto [name, sign] : {std::pair<std::string_view, double>{"--try-first", 1.0}, {"--try-last", -1.0}}) {
      if (opt.rfind(name, 0) != 0) continue;
      std::string_view rest = std::string_view(opt).substr(name.size());
      double w = 1.0;
      if (!rest.empty()) {
        if (rest[0] != '=') continue;  // another option that starts the same way
        const std::string num(rest.substr(1));
        char* end = nullptr;
        errno = 0;
        w = std::strtod(num.c_str(), &end);
        if (num.empty() || end != num.c_str() + num.size() || errno != 0 || !std::isfinite(w) ||
            std::fabs(w) > 1e6) {
          return Error(f, "[Servers] entry '" + std::string(label) + "': invalid argument to " + std::string(name) +
                              ": '" + num + "'");
        }
      }
      entry.weight += sign * w;
    }
  }
  file_.servers_.emplace(std::string(label), std::move(entry));
  return Status::OK();
}

Result<JigdoFile> ParseJigdo(std::string_view raw, const std::string& origin, IncludeLoader* loader) {
  JigdoParser parser(loader);
  JIGDOOFUS_RETURN_IF_ERROR(parser.ParseFile(raw, origin, true, false));
  return parser.TakeFile(origin);
}

Result<std::string> LocalIncludeLoader::Load(const std::string& uri) {
  std::string scheme = UriScheme(uri);
  if (scheme.empty()) return ReadWholeFile(uri);
  if (scheme == "file") {
    auto path = FileUrlToPath(uri, "");
    if (!path) return Status::NotSupported(uri + ": not a local file: URL");
    return ReadWholeFile(*path);
  }
  return Status::NotSupported(uri + ": URL includes need network support");
}

Result<JigdoFile> LoadJigdoFile(const std::string& path) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  LocalIncludeLoader loader;
  return ParseJigdo(*bytes, path, &loader);
}

}  // namespace jigdoofus
