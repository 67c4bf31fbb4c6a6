// Command line of jigdoofus (CONTRACT.md, "Mounting"):
//   jigdoofus [OPTIONS] SOURCE [SOURCE...] MOUNTPOINT
// Every long option is also accepted as "-o name=value" (dashes become
// underscores) so fstab and mount(8) work; generic mount options (rw, dev,
// suid, exec, auto, user, their no- forms, _netdev, x-*) are accepted and
// ignored; other -o options go to FUSE (allow_other, ...).
//
// FUSE-free: jigdoofus-cat shares the image options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "fetch/mount/image_set.h"

namespace jigdoofus {

struct CommandLine {
  ImageSetOptions images;
  std::string mountpoint;           // absolute
  bool foreground = false;          // -f
  bool debug = false;               // -d (implies -f)
  bool single_thread = false;       // -s
  std::vector<std::string> fuse_options;  // passed to FUSE as -o
  std::string log_level = "info";
  std::string log_file;             // --log-file (absolute); empty: syslog, or stderr with -f
  bool help = false;                // --help printed; exit 0
  bool version = false;             // --version printed; exit 0
};

// Parses argv. On --help/--version the text goes to stdout and
// help/version is set. Errors are kInvalidArgument with a one-line message.
// Relative paths (sources, dirs, mountpoint) are made absolute here, since
// the daemon changes directory.
Result<CommandLine> ParseCommandLine(int argc, char** argv);

// FUSE's own command line for `cl` (argv, first "jigdoofus"): read-only,
// fsname the first SOURCE (what df and findmnt show), subtype jigdoofus,
// unless the user gave their own; then the user's FUSE -o options.
std::vector<std::string> FuseArgs(const CommandLine& cl);

// Parses "512M", "20G", "1.5T", "4096" into bytes.
Result<uint64_t> ParseSize(const std::string& text);

// Command line of jigdoofus-cat (shares the image options above):
//   jigdoofus-cat [OPTIONS] SOURCE [IMAGE-NAME] [--offset N] [--length N] [-o FILE]
struct CatCommandLine {
  ImageSetOptions images;
  std::string image;                // empty: the only image of SOURCE
  std::string output;               // -o FILE; empty: stdout
  uint64_t offset = 0;
  std::optional<uint64_t> length;   // unset: to the end of the image
  std::string log_level = "warn";
  bool help = false;
  bool version = false;
};
Result<CatCommandLine> ParseCatCommandLine(int argc, char** argv);

// Command line of jigdoofus-ctl (CONTRACT.md, "Operating a mount"):
//   jigdoofus-ctl status   MOUNTPOINT [--json]
//   jigdoofus-ctl prefetch MOUNTPOINT [IMAGE...]
//   jigdoofus-ctl verify   MOUNTPOINT [IMAGE...]
//   jigdoofus-ctl plan     [MOUNT OPTIONS] SOURCE... [--json]
struct CtlCommandLine {
  std::string verb;                 // status, prefetch, verify, plan
  std::string mountpoint;           // absolute (status, prefetch, verify)
  std::vector<std::string> names;   // images (prefetch, verify); empty: all
  bool json = false;                // status, plan
  ImageSetOptions images;           // plan: the mount options and SOURCEs
  std::string log_level = "warn";
  bool help = false;
  bool version = false;
};
Result<CtlCommandLine> ParseCtlCommandLine(int argc, char** argv);

// $XDG_CACHE_HOME/jigdoofus, else $HOME/.cache/jigdoofus (empty if neither
// can be found).
std::string DefaultCacheDir();

}  // namespace jigdoofus
