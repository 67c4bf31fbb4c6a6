#include "fetch/mount/mirror_list.h"

#include <expat.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cctype>
#include <memory>

#include "core/uri.h"

namespace jigdoofus {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The line without a `#` comment (jigdo lists and plain lists alike: a URL
// with '#' in it is not a server base).
std::string_view Uncommented(std::string_view line) {
  const size_t hash = line.find('#');
  return Trim(hash == std::string_view::npos ? line : line.substr(0, hash));
}

bool Usable(std::string_view url) {
  const std::string u(url);
  const std::string scheme = UriScheme(u);
  return (scheme == "http" || scheme == "https" || scheme == "ftp") && u.find("://") != std::string::npos &&
         u.find_first_of(" \t\r\n\"'<>\\") == std::string::npos;
}

std::string AsBase(std::string_view url) {
  std::string u(url);
  if (u.back() != '/') u.push_back('/');
  return u;
}

bool LooksLikeXml(std::string_view text) {
  text = Trim(text);
  return text.substr(0, 5) == "<?xml" || text.find("<metalink") != std::string_view::npos;
}

template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    fn(Uncommented(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
}

// `Label=` at the start of a line, as jigdo writes them.
bool LooksLikeJigdoForm(std::string_view text) {
  bool found = false;
  ForEachLine(text, [&found](std::string_view line) {
    const size_t eq = line.find('=');
    found |= eq != std::string_view::npos && eq > 0 &&
             std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(eq), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ' ';
             });
  });
  return found;
}

// ---------------------------------------------------------------- metalink

struct MetalinkUrl {
  std::string url;
  double rank = 0;  // lower is better
  size_t order = 0;
};

struct MetalinkState {
  XML_Parser parser = nullptr;
  std::string file_name;   // of the <file> we are in
  bool in_url = false;
  double rank = 0;
  std::string text;
  std::vector<MetalinkUrl> urls;
  bool refused_doctype = false;
};

std::string_view LocalName(const char* name) {
  std::string_view n(name);
  const size_t sep = n.rfind('|');  // namespace separator (XML_ParserCreateNS)
  return sep == std::string_view::npos ? n : n.substr(sep + 1);
}

void XMLCALL OnStart(void* data, const char* name, const char** attrs) {
  auto* st = static_cast<MetalinkState*>(data);
  const std::string_view local = LocalName(name);
  if (local == "file") {
    st->file_name.clear();
    for (int i = 0; attrs[i] != nullptr; i += 2) {
      if (std::string_view(attrs[i]) == "name") st->file_name = attrs[i + 1];
    }
  } else if (local == "url") {
    st->in_url = true;
    st->text.clear();
    st->rank = 1e6;
    for (int i = 0; attrs[i] != nullptr; i += 2) {
      const std::string_view a = LocalName(attrs[i]);
      const double v = std::strtod(attrs[i + 1], nullptr);
      if (a == "priority") st->rank = v;              // v4: 1 is the most preferred
      if (a == "preference") st->rank = 1000.0 - v;   // v3: 100 is the most preferred
    }
  }
}

void XMLCALL OnEnd(void* data, const char* name) {
  auto* st = static_cast<MetalinkState*>(data);
  if (LocalName(name) != "url" || !st->in_url) return;
  st->in_url = false;
  std::string url(Trim(st->text));
  // The server base: the URL without the file's name at its end.
  const std::string& fname = st->file_name;
  if (!fname.empty() && url.size() > fname.size() && url.compare(url.size() - fname.size(), fname.size(), fname) == 0 &&
      url[url.size() - fname.size() - 1] == '/') {
    url.resize(url.size() - fname.size());
  } else if (url.empty() || url.back() != '/') {
    return;  // not a URL of this file: no base to take from it
  }
  st->urls.push_back({std::move(url), st->rank, st->urls.size()});
}

void XMLCALL OnText(void* data, const char* s, int len) {
  auto* st = static_cast<MetalinkState*>(data);
  if (st->in_url && st->text.size() < 4096) st->text.append(s, static_cast<size_t>(len));
}

void XMLCALL OnDoctype(void* data, const char*, const char*, const char*, int) {
  auto* st = static_cast<MetalinkState*>(data);
  st->refused_doctype = true;
  XML_StopParser(st->parser, XML_FALSE);
}

Result<std::vector<std::string>> ParseMetalink(std::string_view text, const std::string& origin, size_t* skipped) {
  MetalinkState st;
  std::unique_ptr<XML_ParserStruct, void (*)(XML_Parser)> parser(XML_ParserCreateNS(nullptr, '|'), XML_ParserFree);
  if (!parser) return Status::Internal(origin + ": cannot create an XML parser");
  st.parser = parser.get();
  XML_SetUserData(parser.get(), &st);
  XML_SetElementHandler(parser.get(), OnStart, OnEnd);
  XML_SetCharacterDataHandler(parser.get(), OnText);
  XML_SetStartDoctypeDeclHandler(parser.get(), OnDoctype);
  if (text.size() > static_cast<size_t>(INT32_MAX)) return Status::InvalidArgument(origin + ": too large");
  if (XML_Parse(parser.get(), text.data(), static_cast<int>(text.size()), XML_TRUE) != XML_STATUS_OK) {
    if (st.refused_doctype) return Status::InvalidArgument(origin + ": a metalink with a DOCTYPE is not accepted");
    return Status::InvalidArgument(origin + ": not well-formed XML at line " +
                                   std::to_string(XML_GetCurrentLineNumber(parser.get())) + ": " +
                                   XML_ErrorString(XML_GetErrorCode(parser.get())));
  }
  std::stable_sort(st.urls.begin(), st.urls.end(),
                   [](const MetalinkUrl& a, const MetalinkUrl& b) { return a.rank < b.rank; });
  std::vector<std::string> out;
  for (const MetalinkUrl& u : st.urls) {
    if (Usable(u.url)) {
      out.push_back(AsBase(u.url));
    } else {
      ++*skipped;
    }
  }
  return out;
}

}  // namespace

Result<MirrorList> ParseMirrorList(std::string_view text, const std::string& label, const std::string& origin) {
  MirrorList list;
  std::vector<std::string> found;
  if (LooksLikeXml(text)) {
    list.form = MirrorListForm::kMetalink;
    JIGDOOFUS_ASSIGN_OR_RETURN(found, ParseMetalink(text, origin, &list.skipped));
  } else if (LooksLikeJigdoForm(text)) {
    list.form = MirrorListForm::kJigdo;
    ForEachLine(text, [&](std::string_view line) {
      if (line.empty() || line.front() == '[') return;  // [Servers] and the like
      const size_t eq = line.find('=');
      if (eq == std::string_view::npos) return;
      const std::string_view name = Trim(line.substr(0, eq));
      std::string_view value = Trim(line.substr(eq + 1));
      value = value.substr(0, value.find_first_of(" \t"));  // server options (--try-last) are not taken
      if (name != label || !Usable(value)) {
        ++list.skipped;
        return;
      }
      found.push_back(AsBase(value));
    });
  } else {
    list.form = MirrorListForm::kPlain;
    ForEachLine(text, [&](std::string_view line) {
      if (line.empty()) return;
      if (!Usable(line)) {
        ++list.skipped;
        return;
      }
      found.push_back(AsBase(line));
    });
  }
  for (std::string& url : found) {
    if (list.servers.size() >= kMaxListedServers) break;
    if (std::find(list.servers.begin(), list.servers.end(), url) == list.servers.end()) {
      list.servers.push_back(std::move(url));
    }
  }
  if (list.servers.empty()) {
    return Status::InvalidArgument(origin + ": no http, https or ftp server for label '" + label + "' in this list");
  }
  return list;
}

}  // namespace jigdoofus
