// Command-line parsing for jigdoofus and jigdoofus-cat (see fs/options.h).
//
// "-o" lists are rewritten before CLI11 sees argv: an item naming one of our
// long options becomes "--name=value", a generic mount(8) option is dropped,
// anything else is kept for FUSE. CLI11 then parses one uniform argv, so an
// option given as "-o cache_size=20G" is checked exactly like
// "--cache-size 20G".
#include "fs/options.h"

#include "core/uri.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>
#include <string_view>

namespace jigdoofus {
namespace {

constexpr const char* kMountUsage = "usage: jigdoofus [OPTIONS] SOURCE [SOURCE...] MOUNTPOINT (see --help)";
constexpr const char* kCatUsage =
    "usage: jigdoofus-cat [OPTIONS] SOURCE [IMAGE-NAME] [--offset N] [--length N] [-o FILE] (see --help)";

// Long options that take a value, as "--name VALUE" or "--name=VALUE".
constexpr std::array<std::string_view, 11> kValueOptions = {
    "cache-dir", "cache-size", "local", "scan", "mirror", "mirror-list", "jobs", "log-level", "fetch-timeout", "proxy",
    "log-file"};
// Long options without a value.
constexpr std::array<std::string_view, 3> kFlagOptions = {"offline", "discover", "trust-file-urls"};
// --discover: where a Debian machine already keeps packages.
constexpr std::array<const char*, 4> kDiscoveryDirs = {"/var/cache/apt/archives", "/var/cache/apt-cacher-ng",
                                                       "/media", "/run/media"};

bool Contains(auto& list, std::string_view s) { return std::find(list.begin(), list.end(), s) != list.end(); }

// Generic options of mount(8) / mount.fuse3 that make no sense for us: the
// mount is read-only and FUSE needs none of them.
bool IsGenericMountOption(std::string_view item) {
  static constexpr std::array<std::string_view, 40> kExact = {
      "rw", "ro", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "auto", "noauto",
      "user", "nouser", "users", "owner", "group", "defaults", "_netdev", "nofail", "relatime",
      "norelatime", "noatime", "atime", "strictatime", "nostrictatime", "lazytime", "nolazytime",
      "diratime", "nodiratime", "sync", "async", "dirsync", "silent", "loud", "mand", "nomand",
      "iversion", "noiversion", "nonempty", "symfollow", "nosymfollow"};
  if (Contains(kExact, item)) return true;
  for (std::string_view prefix : {"x-", "comment=", "user=", "uhelper=", "helper="}) {
    if (item.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

// Splits an -o list at commas that are not escaped with a backslash; a
// backslash keeps the next character literally.
std::vector<std::string> SplitOptionList(std::string_view list) {
  std::vector<std::string> items;
  std::string cur;
  for (size_t i = 0; i < list.size(); ++i) {
    char c = list[i];
    if (c == '\\' && i + 1 < list.size()) {
      cur += list[++i];
    } else if (c == ',') {
      if (!cur.empty()) items.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) items.push_back(cur);
  return items;
}

// FUSE splits its -o lists itself; keep commas inside a value escaped.
std::string EscapeForFuse(std::string_view item) {
  std::string out;
  for (char c : item) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Rewrites argv (without argv[0]): -o lists become long options or
// fuse_options; everything else is passed through in order.
Status ExpandMountOptions(const std::vector<std::string>& in, std::vector<std::string>* out,
                          std::vector<std::string>* fuse_options) {
  bool after_dashdash = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& arg = in[i];
    if (after_dashdash) {
      out->push_back(arg);
      continue;
    }
    if (arg == "--") {
      after_dashdash = true;
      out->push_back(arg);
      continue;
    }
    // A value given as a separate word ("--local -o") is never an -o.
    if (arg.size() > 2 && arg.substr(0, 2) == "--" && arg.find('=') == std::string::npos &&
        Contains(kValueOptions, std::string_view(arg).substr(2))) {
      out->push_back(arg);
      if (i + 1 < in.size()) out->push_back(in[++i]);
      continue;
    }
    std::string list;
    if (arg == "-o") {
      if (i + 1 >= in.size()) return Status::InvalidArgument("-o expects a list of options");
      list = in[++i];
    } else if (arg.size() > 2 && arg.substr(0, 2) == "-o") {
      list = arg.substr(2);
    } else {
      out->push_back(arg);
      continue;
    }
    for (const std::string& item : SplitOptionList(list)) {
      size_t eq = item.find('=');
      std::string name = item.substr(0, eq);
      std::replace(name.begin(), name.end(), '_', '-');
      if (Contains(kValueOptions, name)) {
        if (eq == std::string::npos) {
          return Status::InvalidArgument("-o " + item + " expects a value (" + item + "=...)");
        }
        out->push_back("--" + name + "=" + item.substr(eq + 1));
      } else if (Contains(kFlagOptions, name)) {
        if (eq != std::string::npos) return Status::InvalidArgument("-o " + name + " takes no value, got '" + item + "'");
        out->push_back("--" + name);
      } else if (IsGenericMountOption(item)) {
        // accepted and ignored: the mount is always read-only
      } else {
        fuse_options->push_back(EscapeForFuse(item));
      }
    }
  }
  return Status::OK();
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}


Status CheckDirectory(const std::string& what, const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::InvalidArgument(what + ": " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(what + ": " + dir + " is not a directory");
  return Status::OK();
}

// --scan takes a directory tree or an image file.
Status CheckScanPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::InvalidArgument("--scan: " + path + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("--scan: " + path + " is neither a directory nor a regular file");
  }
  if (S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("--scan: " + path + ": " + std::strerror(errno));
  }
  return Status::OK();
}

// Raw values of the image options, as CLI11 collected them.
struct ImageOptionValues {
  std::string cache_dir;
  std::string cache_size;
  std::vector<std::string> local;
  std::vector<std::string> scan;
  std::vector<std::string> mirror;
  std::vector<std::string> mirror_list;
  bool offline = false;
  bool discover = false;
  bool trust_file_urls = false;
  int jobs = mount_defaults::kJobs;
  const CLI::Option* jobs_option = nullptr;  // given or not: without it, far servers get more
  double fetch_timeout_s = mount_defaults::kFetchTimeoutS;
  std::string proxy;
};

template <typename T>
CLI::Option* AddRepeatable(CLI::App& app, const std::string& name, std::vector<T>& into, const std::string& help) {
  return app.add_option(name, into, help)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void AddImageOptions(CLI::App& app, ImageOptionValues& v) {
  // A single-valued option given twice (command line, then -o): the last wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--cache-dir", v.cache_dir,
                 "Cache directory (default $XDG_CACHE_HOME/jigdoofus, else ~/.cache/jigdoofus)")
      ->type_name("DIR");
  app.add_option("--cache-size", v.cache_size,
                 "Upper bound of the slice cache, e.g. 512M, 20G (default " +
                     std::to_string(mount_defaults::kCacheSize >> 30) + "G)")
      ->type_name("SIZE");
  AddRepeatable(app, "--local", v.local, "Files of [Servers] label LABEL are under DIR (repeatable)")
      ->type_name("LABEL=DIR");
  AddRepeatable(app, "--scan", v.scan,
                "Use slices found in PATH: any file under a directory whose checksum matches a slice, or "
                "byte ranges of an image file (an old ISO, a tar) (repeatable)")
      ->type_name("PATH");
  app.add_flag("--discover", v.discover,
               "Also scan where this machine keeps packages: /var/cache/apt/archives, "
               "/var/cache/apt-cacher-ng, /media, /run/media (those that exist)");
  AddRepeatable(app, "--mirror-list", v.mirror_list,
                "More servers for LABEL from a list: jigdo's Label=URL lines (/usr/share/jigdo/debian-mirrors.jigdo), "
                "one URL a line, or a Metalink; a fetched list is kept in the cache dir (repeatable)")
      ->type_name("LABEL=FILE|URL");
  AddRepeatable(app, "--mirror", v.mirror, "Extra server for LABEL, tried before the .jigdo's own (repeatable)")
      ->type_name("LABEL=URL");
  app.add_flag("--offline", v.offline, "Never touch the network");
  app.add_flag("--trust-file-urls", v.trust_file_urls,
               "Let file: URLs in a local .jigdo name any path (default: beneath the .jigdo's directory)");
  v.jobs_option = app.add_option("--jobs", v.jobs,
                                 "Parallel downloads (default " + std::to_string(mount_defaults::kJobs) +
                                     ", more for far servers, up to " + std::to_string(mount_defaults::kMaxAutoJobs) +
                                     ")")
                      ->type_name("N");
  app.add_option("--fetch-timeout", v.fetch_timeout_s,
                 "Give up a read waiting for a slice after SECONDS (default " +
                     std::to_string(static_cast<int>(mount_defaults::kFetchTimeoutS)) + ")")
      ->type_name("SECONDS");
  app.add_option("--proxy", v.proxy,
                 "Fetch everything through this HTTP proxy (http://host:port), whatever http_proxy and "
                 "no_proxy say")
      ->type_name("URL");
}

Result<std::pair<std::string, std::string>> SplitLabelValue(const std::string& option, const std::string& what,
                                                            const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return Status::InvalidArgument(option + " expects " + what + ", got '" + text + "'");
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

Status FinishImageOptions(const ImageOptionValues& v, ImageSetOptions* out) {
  out->cache_dir = v.cache_dir.empty() ? DefaultCacheDir() : Absolute(v.cache_dir);
  if (!v.cache_size.empty()) {
    auto size = ParseSize(v.cache_size);
    if (!size.ok()) return Status::InvalidArgument("--cache-size: " + size.status().message());
    out->cache_size = *size;
  }
  for (const std::string& entry : v.local) {
    JIGDOOFUS_ASSIGN_OR_RETURN(auto kv, SplitLabelValue("--local", "LABEL=DIR", entry));
    std::string dir = Absolute(kv.second);
    JIGDOOFUS_RETURN_IF_ERROR(CheckDirectory("--local " + kv.first, dir));
    if (!out->local.emplace(kv.first, dir).second) {
      return Status::InvalidArgument("--local: label '" + kv.first + "' given twice");
    }
  }
  for (const std::string& path : v.scan) {
    std::string abs = Absolute(path);
    JIGDOOFUS_RETURN_IF_ERROR(CheckScanPath(abs));
    out->scan.push_back(abs);
  }
  if (v.discover) {
    for (const char* dir : kDiscoveryDirs) {
      struct stat st;
      if (::stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      if (std::find(out->scan.begin(), out->scan.end(), dir) == out->scan.end()) out->scan.push_back(dir);
    }
  }
  for (const std::string& entry : v.mirror) {
    JIGDOOFUS_ASSIGN_OR_RETURN(auto kv, SplitLabelValue("--mirror", "LABEL=URL", entry));
    if (kv.second.rfind("file:", 0) == 0) {
      return Status::InvalidArgument("--mirror " + kv.first + ": '" + kv.second +
                                     "' is a local directory, not a server; use --local " + kv.first + "=DIR");
    }
    if (!IsNetworkUrl(kv.second)) {
      return Status::InvalidArgument("--mirror " + kv.first + ": '" + kv.second +
                                     "' is not an http://, https:// or ftp:// URL");
    }
    out->mirrors.push_back(std::move(kv));
  }
  for (const std::string& entry : v.mirror_list) {
    JIGDOOFUS_ASSIGN_OR_RETURN(auto kv, SplitLabelValue("--mirror-list", "LABEL=FILE|URL", entry));
    if (!IsNetworkUrl(kv.second)) {
      if (IsUrl(kv.second) && UriScheme(kv.second) != "file") {
        return Status::InvalidArgument("--mirror-list " + kv.first + ": '" + kv.second +
                                       "' is neither a file nor an http://, https:// or ftp:// URL");
      }
      std::string path = kv.second;
      if (UriScheme(path) == "file") {
        auto p = FileUrlToPath(path, "");
        if (!p) return Status::InvalidArgument("--mirror-list " + kv.first + ": '" + path + "' is not a usable file: URL");
        path = *p;
      }
      path = Absolute(path);
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) {
        return Status::InvalidArgument("--mirror-list " + kv.first + ": " + path + ": " + std::strerror(errno));
      }
      if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("--mirror-list " + kv.first + ": " + path + " is not a file");
      kv.second = path;
    }
    out->mirror_lists.push_back(std::move(kv));
  }
  out->offline = v.offline;
  out->trust_file_urls = v.trust_file_urls;
  if (v.jobs < 1 || v.jobs > 1024) {
    return Status::InvalidArgument("--jobs expects a number from 1 to 1024, got " + std::to_string(v.jobs));
  }
  out->jobs = v.jobs_option != nullptr && v.jobs_option->count() == 0 ? 0 : v.jobs;
  if (!(v.fetch_timeout_s > 0) || !std::isfinite(v.fetch_timeout_s)) {
    return Status::InvalidArgument("--fetch-timeout expects a positive number of seconds");
  }
  out->fetch_timeout_s = v.fetch_timeout_s;
  if (!v.proxy.empty()) {
    const std::string scheme = v.proxy.substr(0, v.proxy.find("://"));
    static constexpr std::array<std::string_view, 6> kProxySchemes = {"http",   "https",  "socks4",
                                                                       "socks4a", "socks5", "socks5h"};
    if (v.proxy.find("://") == std::string::npos || !Contains(kProxySchemes, scheme) ||
        v.proxy.size() == scheme.size() + 3) {
      return Status::InvalidArgument("--proxy expects a URL such as http://proxy.example:3128, got '" + v.proxy +
                                     "'");
    }
    out->proxy = v.proxy;
  }
  return Status::OK();
}

std::string SourceArg(const std::string& s) { return IsNetworkUrl(s) ? s : Absolute(s); }

// CLI11 messages can span lines; keep the first.
Status UsageError(const CLI::Error& e) {
  std::string msg = e.what();
  size_t nl = msg.find('\n');
  if (nl != std::string::npos) msg.resize(nl);
  return Status::InvalidArgument(msg);
}

CLI::Option* AddLogLevel(CLI::App& app, std::string& level) {
  return app.add_option("--log-level", level, "trace, debug, info, warn, error, critical or off")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

// Help text with our own usage line (CLI11 would print "[args...]").
class UsageFormatter : public CLI::Formatter {
 public:
  explicit UsageFormatter(std::string usage) : usage_(std::move(usage)) {}
  std::string make_usage(const CLI::App*, std::string) const override { return usage_ + "\n"; }

 private:
  std::string usage_;
};

// Runs CLI11 on `args` (argv without argv[0]). Returns OK, or the error.
Status RunCli(CLI::App& app, std::vector<std::string> args, bool* help, bool* version) {
  std::reverse(args.begin(), args.end());  // CLI11 consumes from the back
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    *help = true;
  } catch (const CLI::CallForVersion&) {
    *version = true;
  } catch (const CLI::ParseError& e) {
    return UsageError(e);
  }
  return Status::OK();
}

}  // namespace

std::string DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/jigdoofus";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return std::string(home) + "/.cache/jigdoofus";
  return "";
}

Result<uint64_t> ParseSize(const std::string& text) {
  auto bad = [&] {
    return Status::InvalidArgument("bad size '" + text + "' (expected a number with an optional K, M, G or T suffix, e.g. 512M)");
  };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string number = text.substr(0, i);
  if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) return bad();
  std::string suffix = text.substr(i);
  std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  int shift = 0;
  if (!suffix.empty()) {
    static const std::string kUnits = "KMGT";
    size_t unit = kUnits.find(suffix[0]);
    if (unit != std::string::npos) {
      shift = 10 * static_cast<int>(unit + 1);
      suffix.erase(0, 1);
      if (suffix == "IB") suffix = "B";
    }
    if (!suffix.empty() && suffix != "B") return bad();
  }
  if (number.find('.') == std::string::npos) {
    errno = 0;
    char* end = nullptr;
    unsigned long long n = std::strtoull(number.c_str(), &end, 10);
    if (errno == ERANGE || *end != '\0') return bad();
    if (shift > 0 && n > (~uint64_t{0} >> shift)) return bad();
    return uint64_t{n} << shift;
  }
  double d = std::strtod(number.c_str(), nullptr);
  double bytes = std::ldexp(d, shift);
  if (!std::isfinite(bytes) || bytes >= 18446744073709551616.0) return bad();
  return static_cast<uint64_t>(bytes);
}

std::vector<std::string> FuseArgs(const CommandLine& cl) {
  bool has_fsname = false, has_subtype = false;
  for (const std::string& o : cl.fuse_options) {
    has_fsname |= o.rfind("fsname=", 0) == 0;
    has_subtype |= o.rfind("subtype=", 0) == 0;
  }
  std::string opts = "ro";
  if (!has_fsname) {
    const std::string name = cl.images.sources.empty() ? "jigdoofus" : cl.images.sources.front();
    opts += ",fsname=" + EscapeForFuse(name);
  }
  if (!has_subtype) opts += ",subtype=jigdoofus";
  for (const std::string& o : cl.fuse_options) opts += "," + o;
  std::vector<std::string> args = {"jigdoofus", "-o", opts};
  if (cl.debug) args.push_back("-d");
  return args;
}

Result<CommandLine> ParseCommandLine(int argc, char** argv) {
  CommandLine cl;
  std::vector<std::string> raw(argv + (argc > 0 ? 1 : 0), argv + argc);
  std::vector<std::string> args;
  JIGDOOFUS_RETURN_IF_ERROR(ExpandMountOptions(raw, &args, &cl.fuse_options));

  CLI::App app("jigdoofus: mount the images described by .jigdo files as read-only files", "jigdoofus");
  ImageOptionValues values;
  std::vector<std::string> positionals;
  std::vector<std::string> o_unused;
  AddImageOptions(app, values);
  app.add_flag("-f", cl.foreground, "Stay in the foreground");
  app.add_flag("-d", cl.debug, "FUSE debug output (implies -f)");
  app.add_flag("-s", cl.single_thread, "Single-threaded FUSE loop");
  AddRepeatable(app, "-o", o_unused,
                "Mount options, comma-separated: any long option as name=value (e.g. "
                "local=Debian=/srv/debian, cache_size=20G, offline), FUSE options (allow_other, ...); "
                "rw, nosuid, nodev, _netdev, x-* ... are ignored")
      ->type_name("OPTS");
  AddLogLevel(app, cl.log_level);
  app.add_option("--log-file", cl.log_file,
                 "Append the log to FILE instead of syslog (or stderr with -f): for systems without syslog")
      ->type_name("FILE");
  app.set_version_flag("-V,--version", std::string("jigdoofus ") + JIGDOOFUS_VERSION);
  app.add_option("SOURCE...MOUNTPOINT", positionals, "the .jigdo sources, then the mount point")->type_name("");
  app.formatter(std::make_shared<UsageFormatter>("Usage: jigdoofus [OPTIONS] SOURCE [SOURCE...] MOUNTPOINT"));
  app.footer(
      "SOURCE is a .jigdo file, a directory of .jigdo files, or an http(s) URL of one.\n"
      "fstab:  /srv/x.jigdo  /mnt/x  fuse.jigdoofus  ro,local=Debian=/srv/debian,allow_other  0 0\n");

  JIGDOOFUS_RETURN_IF_ERROR(RunCli(app, std::move(args), &cl.help, &cl.version));
  if (cl.version) std::cout << "jigdoofus " << JIGDOOFUS_VERSION << "\n";
  if (cl.help || cl.version) return cl;
  if (positionals.size() < 2) return Status::InvalidArgument(kMountUsage);

  cl.mountpoint = Absolute(positionals.back());
  positionals.pop_back();
  if (!cl.log_file.empty()) cl.log_file = Absolute(cl.log_file);
  for (const std::string& s : positionals) cl.images.sources.push_back(SourceArg(s));
  JIGDOOFUS_RETURN_IF_ERROR(FinishImageOptions(values, &cl.images));
  if (cl.debug) cl.foreground = true;
  return cl;
}

Result<CatCommandLine> ParseCatCommandLine(int argc, char** argv) {
  CatCommandLine cl;
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);

  CLI::App app("jigdoofus-cat: write an image described by a .jigdo file (or a byte range of it) to stdout",
               "jigdoofus-cat");
  ImageOptionValues values;
  std::vector<std::string> positionals;
  std::string offset, length;
  AddImageOptions(app, values);
  app.add_option("--offset", offset, "First byte to write (default 0; K/M/G/T suffixes allowed)")->type_name("N");
  app.add_option("--length", length, "Number of bytes to write (default: to the end)")->type_name("N");
  app.add_option("-o,--output", cl.output,
                 "Write to FILE (as FILE.part, renamed when complete; progress on a terminal) instead of stdout")
      ->type_name("FILE");
  AddLogLevel(app, cl.log_level);
  app.set_version_flag("-V,--version", std::string("jigdoofus-cat ") + JIGDOOFUS_VERSION);
  app.add_option("SOURCE[IMAGE-NAME]", positionals,
                 "a .jigdo file, directory of them, or URL; then the image to write (needed if several)")
      ->type_name("");
  app.formatter(std::make_shared<UsageFormatter>(
      "Usage: jigdoofus-cat [OPTIONS] SOURCE [IMAGE-NAME] [--offset N] [--length N] [-o FILE]"));

  JIGDOOFUS_RETURN_IF_ERROR(RunCli(app, std::move(args), &cl.help, &cl.version));
  if (cl.version) std::cout << "jigdoofus-cat " << JIGDOOFUS_VERSION << "\n";
  if (cl.help || cl.version) return cl;
  if (positionals.empty() || positionals.size() > 2) return Status::InvalidArgument(kCatUsage);
  cl.images.sources.push_back(SourceArg(positionals[0]));
  if (positionals.size() == 2) cl.image = positionals[1];
  if (!offset.empty()) {
    auto n = ParseSize(offset);
    if (!n.ok()) return Status::InvalidArgument("--offset: " + n.status().message());
    cl.offset = *n;
  }
  if (!length.empty()) {
    auto n = ParseSize(length);
    if (!n.ok()) return Status::InvalidArgument("--length: " + n.status().message());
    cl.length = *n;
  }
  JIGDOOFUS_RETURN_IF_ERROR(FinishImageOptions(values, &cl.images));
  return cl;
}

Result<CtlCommandLine> ParseCtlCommandLine(int argc, char** argv) {
  static constexpr const char* kCtlUsage =
      "usage: jigdoofus-ctl status MOUNTPOINT [--json] | prefetch MOUNTPOINT [IMAGE...] | "
      "verify MOUNTPOINT [IMAGE...] | plan [MOUNT OPTIONS] SOURCE... (see --help)";
  CtlCommandLine cl;
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  if (args.empty()) return Status::InvalidArgument(kCtlUsage);
  if (args[0] == "-h" || args[0] == "--help") {
    std::cout << "jigdoofus-ctl: see and steer jigdoofus mounts\n"
                 "Usage:\n"
                 "  jigdoofus-ctl status   MOUNTPOINT [--json]     what each image has, what is missing, downloads\n"
                 "  jigdoofus-ctl prefetch MOUNTPOINT [IMAGE...]   fetch and verify everything still missing\n"
                 "  jigdoofus-ctl verify   MOUNTPOINT [IMAGE...]   read images whole, check their checksums\n"
                 "  jigdoofus-ctl plan [MOUNT OPTIONS] SOURCE... [--json]\n"
                 "                                                 without mounting: local, cached, to download\n"
                 "  jigdoofus-ctl VERB --help                      the options of a verb\n";
    cl.help = true;
    return cl;
  }
  if (args[0] == "-V" || args[0] == "--version") {
    std::cout << "jigdoofus-ctl " << JIGDOOFUS_VERSION << "\n";
    cl.version = true;
    return cl;
  }
  cl.verb = args[0];
  args.erase(args.begin());
  CLI::App app("jigdoofus-ctl " + cl.verb, "jigdoofus-ctl " + cl.verb);
  std::vector<std::string> positionals;
  ImageOptionValues values;
  if (cl.verb == "status") {
    app.add_flag("--json", cl.json, "One JSON object (the mount's whole status document)");
    app.add_option("MOUNTPOINT", positionals, "a jigdoofus mount")->type_name("");
    app.formatter(std::make_shared<UsageFormatter>("Usage: jigdoofus-ctl status MOUNTPOINT [--json]"));
  } else if (cl.verb == "prefetch" || cl.verb == "verify") {
    app.add_option("MOUNTPOINT", positionals, "a jigdoofus mount, then image names (default: all)")->type_name("");
    app.formatter(std::make_shared<UsageFormatter>("Usage: jigdoofus-ctl " + cl.verb + " MOUNTPOINT [IMAGE...]"));
  } else if (cl.verb == "plan") {
    std::vector<std::string> fuse_ignored;
    std::vector<std::string> expanded;
    JIGDOOFUS_RETURN_IF_ERROR(ExpandMountOptions(args, &expanded, &fuse_ignored));
    args = std::move(expanded);
    AddImageOptions(app, values);
    app.add_flag("--json", cl.json, "One JSON object");
    app.add_option("SOURCE", positionals, "a .jigdo file, directory of them, or URL")->type_name("");
    app.formatter(std::make_shared<UsageFormatter>("Usage: jigdoofus-ctl plan [MOUNT OPTIONS] SOURCE... [--json]"));
  } else {
    return Status::InvalidArgument("unknown verb '" + cl.verb + "'; " + kCtlUsage);
  }
  AddLogLevel(app, cl.log_level);
  JIGDOOFUS_RETURN_IF_ERROR(RunCli(app, std::move(args), &cl.help, &cl.version));
  if (cl.help) return cl;
  if (positionals.empty()) return Status::InvalidArgument(kCtlUsage);
  if (cl.verb == "plan") {
    for (const std::string& p : positionals) cl.images.sources.push_back(SourceArg(p));
    JIGDOOFUS_RETURN_IF_ERROR(FinishImageOptions(values, &cl.images));
    return cl;
  }
  if (cl.verb == "status" && positionals.size() != 1) return Status::InvalidArgument(kCtlUsage);
  cl.mountpoint = Absolute(positionals[0]);
  cl.names.assign(positionals.begin() + 1, positionals.end());
  return cl;
}

}  // namespace jigdoofus
