// jigdoofus-ctl: see and steer jigdoofus mounts (CONTRACT.md, "Operating a
// mount").
//
//   status   MOUNTPOINT [--json]      the mount's status, for people or as JSON
//   prefetch MOUNTPOINT [IMAGE...]    every missing slice fetched and verified
//   verify   MOUNTPOINT [IMAGE...]    images read whole, checked against their checksum
//   plan     [MOUNT OPTIONS] SOURCE.. without mounting: local, cached, to download
//
// status, prefetch and verify talk to the mount's daemon over its control
// socket (fs/control_socket.h); plan opens the images itself, as
// jigdoofus-cat does. Exit 0 on success, 1 with a one-line reason, 2 on a
// usage error.
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <string>

#include "core/malloc_arenas.h"
#include "fetch/mount/image_set.h"
#include "fs/control_socket.h"
#include "fs/options.h"
#include "tools/progress_line.h"
#include "tools/tool_logging.h"

namespace jigdoofus {
namespace {

using nlohmann::json;

int Fail(const std::string& message) {
  std::fprintf(stderr, "jigdoofus-ctl: %s\n", message.c_str());
  return 1;
}

std::string Percent(uint64_t part, uint64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", whole ? 100.0 * static_cast<double>(part) / whole : 100.0);
  return buf;
}

// Connects to the daemon of `mountpoint`, checking that it is a jigdoofus
// mount and that the socket is held by the mount's owner.
Result<UniqueFd> Connect(const std::string& mountpoint) {
  char real[PATH_MAX];
  std::string canonical;
  if (::realpath(mountpoint.c_str(), real) != nullptr) {
    canonical = real;
  } else if (errno == EACCES) {
    // Another user's FUSE mount may refuse even a stat of its root: its
    // parent is enough to resolve the path.
    const std::filesystem::path p(mountpoint);
    if (::realpath(p.parent_path().c_str(), real) == nullptr) return Status::FromErrno(mountpoint, errno);
    canonical = (std::filesystem::path(real) / p.filename()).string();
  } else {
    return Status::FromErrno(mountpoint, errno);
  }
  std::optional<MountInfo> info = FindMount(canonical);
  if (!info) return Status::NotFound(canonical + ": not a mountpoint");
  if (info->fstype != "fuse.jigdoofus") {
    return Status::InvalidArgument(canonical + ": not a jigdoofus mount (" + info->fstype + ")");
  }
  JIGDOOFUS_ASSIGN_OR_RETURN(UniqueFd fd, ConnectControlSocket(canonical));
  JIGDOOFUS_ASSIGN_OR_RETURN(uid_t server, PeerUid(fd.get()));
  if (info->owner && server != *info->owner) {
    return Status::Unavailable(canonical + ": its control socket is held by uid " + std::to_string(server) +
                               ", not by the mount's owner (uid " + std::to_string(*info->owner) + "); not talking to it");
  }
  return fd;
}

// Sends `request` and returns the reader for the answers.
Status Ask(int fd, const json& request) { return SendLine(fd, request.dump()); }

// The next answer as JSON; an {"error": ...} answer becomes the status.
Result<json> NextAnswer(LineReader& reader) {
  Result<std::string> line = reader.Next();
  if (!line.ok()) {
    if (line.status().IsNotFound()) return Status::Unavailable("the mount hung up");
    return line.status();
  }
  json j = json::parse(*line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("the mount sent an unreadable answer");
  if (j.contains("error")) return Status::Unavailable(j["error"].get<std::string>());
  return j;
}

// ------------------------------------------------------------------ status

void PrintStatus(const json& s) {
  std::printf("jigdoofus %s, pid %s%s\n", s.value("version", "?").c_str(), s["pid"].dump().c_str(),
              s.value("offline", false) ? ", offline" : "");
  double rate = 0;
  if (s.contains("transfers")) rate = s["transfers"].value("rate_bps", 0.0);
  for (const json& img : s["images"]) {
    const uint64_t size = img.value("size", uint64_t{0});
    const uint64_t avail = img.value("available_bytes", uint64_t{0});
    const uint64_t missing = img.value("missing_bytes", uint64_t{0});
    std::printf("\n%s\n", img.value("name", "?").c_str());
    std::printf("  size       %s\n", HumanBytes(size).c_str());
    std::printf("  available  %s (%s) without the network; %lu of %lu slices\n", HumanBytes(avail).c_str(),
                Percent(avail, size).c_str(), static_cast<unsigned long>(img.value("slices_available", 0ul)),
                static_cast<unsigned long>(img.value("slices", 0ul)));
    std::printf("  missing    %s", HumanBytes(missing).c_str());
    const uint64_t to_fetch = img.value("missing_slice_bytes", uint64_t{0});
    if (missing > 0 && rate > 0) {
      std::printf(" (%s left at %s/s)", HumanDuration(static_cast<double>(to_fetch) / rate).c_str(),
                  HumanBytes(static_cast<uint64_t>(rate)).c_str());
    }
    std::printf("\n");
  }
  if (s.contains("transfers")) {
    const json& t = s["transfers"];
    std::printf("\ndownloads  %s/s now, %s in all\n", HumanBytes(static_cast<uint64_t>(rate)).c_str(),
                HumanBytes(t.value("bytes", uint64_t{0})).c_str());
    for (const json& f : t["in_flight"]) {
      std::printf("  %s of %s  %s\n", HumanBytes(f.value("bytes", uint64_t{0})).c_str(),
                  HumanBytes(f.value("size", uint64_t{0})).c_str(), f.value("url", "").c_str());
    }
    if (!t["servers"].empty()) std::printf("servers\n");
    for (const json& sv : t["servers"]) {
      std::printf("  %-40s %10s/s  %lu ok, %lu failed, %s", sv.value("server", "").c_str(),
                  HumanBytes(static_cast<uint64_t>(sv.value("rate_bps", 0.0))).c_str(),
                  static_cast<unsigned long>(sv.value("ok", 0ul)), static_cast<unsigned long>(sv.value("failed", 0ul)),
                  sv.value("health", "ok").c_str());
      if (sv.contains("last_error")) std::printf(" (last: %s)", sv["last_error"].get<std::string>().c_str());
      std::printf("\n");
    }
  }
  if (s.contains("scan")) {
    const json& sc = s["scan"];
    if (sc.contains("image_files")) {
      const json& im = sc["image_files"];
      std::printf("\nscan       image files: %lu of %lu done, %s of %s%s; %lu slices found\n",
                  static_cast<unsigned long>(im.value("files_done", 0ul)),
                  static_cast<unsigned long>(im.value("files", 0ul)),
                  HumanBytes(im.value("bytes_done", uint64_t{0})).c_str(),
                  HumanBytes(im.value("bytes_total", uint64_t{0})).c_str(),
                  im.value("done", false) ? "" : ", scanning", static_cast<unsigned long>(im.value("slices_found", 0ul)));
    }
    if (sc.value("files_seen", 0ul) > 0) {
      std::printf("%s trees: %lu files; %lu heads read, %lu rejected; %lu checked whole\n",
                  sc.contains("image_files") ? "          " : "\nscan      ",
                  static_cast<unsigned long>(sc.value("files_seen", 0ul)),
                  static_cast<unsigned long>(sc.value("heads_read", 0ul)),
                  static_cast<unsigned long>(sc.value("heads_rejected", 0ul)),
                  static_cast<unsigned long>(sc.value("files_checked", 0ul)));
    }
  }
  if (s.contains("cache") && s["cache"].contains("bytes_used")) {
    const json& c = s["cache"];
    std::printf("\ncache      %s used of %s (%s)\n", HumanBytes(c.value("bytes_used", uint64_t{0})).c_str(),
                HumanBytes(c.value("effective_bound", uint64_t{0})).c_str(), s.value("cache_dir", "").c_str());
  }
  if (s.contains("recent_failures") && !s["recent_failures"].empty()) {
    std::printf("\nrecent read failures\n");
    for (const json& f : s["recent_failures"]) {
      std::printf("  %s ago  %s at %lu: [%s] %s\n", HumanDuration(f.value("seconds_ago", 0.0)).c_str(),
                  f.value("image", "").c_str(), static_cast<unsigned long>(f.value("offset", 0ul)),
                  f.value("cause", "").c_str(), f.value("message", "").c_str());
    }
  }
}

int Status_(const CtlCommandLine& cl) {
  auto fd = Connect(cl.mountpoint);
  if (!fd.ok()) return Fail(fd.status().message());
  Status st = Ask(fd->get(), {{"op", "status"}});
  if (!st.ok()) return Fail(cl.mountpoint + ": " + st.message());
  LineReader reader(fd->get());
  auto answer = NextAnswer(reader);
  if (!answer.ok()) return Fail(cl.mountpoint + ": " + answer.status().message());
  const json& s = (*answer)["status"];
  if (cl.json) {
    std::printf("%s\n", s.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    PrintStatus(s);
  }
  return 0;
}

// --------------------------------------------------------- prefetch, verify

int Job(const CtlCommandLine& cl) {
  auto fd = Connect(cl.mountpoint);
  if (!fd.ok()) return Fail(fd.status().message());
  Status st = Ask(fd->get(), {{"op", cl.verb}, {"images", cl.names}});
  if (!st.ok()) return Fail(cl.mountpoint + ": " + st.message());
  LineReader reader(fd->get());
  std::unique_ptr<ProgressLine> line;
  std::string current;
  std::string first_failure;
  for (;;) {
    auto answer = NextAnswer(reader);
    if (!answer.ok()) {
      if (line) line->Finish("");
      return Fail(cl.mountpoint + ": " + answer.status().message());
    }
    const json& a = *answer;
    if (a.contains("warning")) {
      std::fprintf(stderr, "jigdoofus-ctl: warning: %s\n", a["warning"].get<std::string>().c_str());
    } else if (a.contains("progress")) {
      const json& p = a["progress"];
      const std::string image = p.value("image", "");
      if (image != current) {
        if (line) line->Finish("");
        current = image;
        const std::string label = "[" + std::to_string(p.value("index", 0) + 1) + "/" +
                                  std::to_string(p.value("count", 0)) + "] " + image + ": ";
        line = std::make_unique<ProgressLine>(stdout, label, std::chrono::seconds(10));
      }
      line->Update(p.value("done", uint64_t{0}), p.value("total", uint64_t{0}));
    } else if (a.contains("result")) {
      const json& r = a["result"];
      const std::string image = r.value("image", "");
      const bool ok = r.value("ok", false);
      if (line && image == current) {
        line->Finish(ok ? "done" : "FAILED");
        line.reset();
        current.clear();
      }
      std::string what;
      if (cl.verb == "verify") {
        what = r.contains("error") ? r["error"].get<std::string>()
               : ok               ? r.value("algo", "") + " " + r.value("actual", "") + " matches the template"
                                  : r.value("algo", "") + " is " + r.value("actual", "") + ", the template says " +
                                      r.value("expected", "");
      } else {
        what = ok ? "complete: every byte is available without the network"
                  : HumanBytes(r.value("missing_bytes", uint64_t{0})) + " still missing" +
                        (r.contains("error") ? ": " + r["error"].get<std::string>() : "");
      }
      std::printf("%s: %s\n", image.c_str(), what.c_str());
      if (!ok && first_failure.empty()) first_failure = image + ": " + what;
    } else if (a.contains("done")) {
      if (line) line->Finish("");
      if (a.value("ok", false)) return 0;
      return Fail(first_failure.empty() ? cl.verb + " did not finish" : first_failure);
    }
  }
}

// -------------------------------------------------------------------- plan

int Plan(const CtlCommandLine& cl) {
  const MountConfig config = ResolveMountConfig(cl.images, RaiseOpenFileLimit());
  auto set = ImageSet::Open(config);
  if (!set.ok()) return Fail(set.status().message());
  for (const std::string& w : (*set)->warnings()) std::fprintf(stderr, "jigdoofus-ctl: warning: %s\n", w.c_str());
  json out = json::array();
  for (const OpenImage& image : (*set)->images()) {
    const TemplateIndex& index = image.reader->index();
    std::vector<ImageSet::SliceOrigin> where;
    where.reserve(index.slices().size());
    for (const SliceId& id : index.slices()) where.push_back((*set)->Locate(image, id));
    uint64_t literal = 0, local = 0, cached = 0, download = 0, download_unique = 0;
    for (size_t i = 0; i < where.size(); ++i) {
      if (where[i] == ImageSet::SliceOrigin::kDownload) download_unique += index.slices()[i].size;
    }
    for (const ImageExtent& e : index.extents()) {
      if (e.kind == ImageExtent::Kind::kLiteral) {
        literal += e.length;
        continue;
      }
      switch (where[e.slice]) {
        case ImageSet::SliceOrigin::kCached: cached += e.length; break;
        case ImageSet::SliceOrigin::kLocal: local += e.length; break;
        case ImageSet::SliceOrigin::kDownload: download += e.length; break;
      }
    }
    const uint64_t size = image.reader->size();
    out.push_back({{"name", image.name},
                   {"size", size},
                   {"literal_bytes", literal},
                   {"local_bytes", local},
                   {"cached_bytes", cached},
                   {"download_bytes", download},
                   {"download_unique_bytes", download_unique}});
    if (!cl.json) {
      std::printf("%s\n", image.name.c_str());
      std::printf("  size        %s\n", HumanBytes(size).c_str());
      std::printf("  template    %s (%s)\n", HumanBytes(literal).c_str(), Percent(literal, size).c_str());
      std::printf("  local       %s (%s)\n", HumanBytes(local).c_str(), Percent(local, size).c_str());
      std::printf("  cached      %s (%s)\n", HumanBytes(cached).c_str(), Percent(cached, size).c_str());
      std::printf("  download    %s (%s)\n", HumanBytes(download_unique).c_str(), Percent(download, size).c_str());
    }
  }
  if (cl.json) std::printf("%s\n", json{{"images", out}}.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

int Run(int argc, char** argv) {
  auto cl = ParseCtlCommandLine(argc, argv);
  if (!cl.ok()) {
    const std::string& msg = cl.status().message();
    std::fprintf(stderr, msg.rfind("usage:", 0) == 0 ? "%s\n" : "jigdoofus-ctl: %s\n", msg.c_str());
    return 2;
  }
  if (cl->help || cl->version) return 0;
  SetUpToolLogging("jigdoofus-ctl", cl->log_level);
  if (cl->verb == "status") return Status_(*cl);
  if (cl->verb == "plan") return Plan(*cl);
  return Job(*cl);
}

}  // namespace
}  // namespace jigdoofus

int main(int argc, char** argv) {
  jigdoofus::LimitMallocArenas();
  try {
    return jigdoofus::Run(argc, argv);
  } catch (const std::exception& e) {  // e.g. an answer of an unexpected shape
    std::fprintf(stderr, "jigdoofus-ctl: %s\n", e.what());
    return 1;
  }
}
