// ImageSet: SOURCE arguments -> parsed .jigdo files -> verified templates ->
// one ImageReader per [Image], all sharing one cache and one list of slice
// sources (see fetch/mount/image_set.h).
#include "fetch/mount/image_set.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include <spdlog/spdlog.h>

#include "cache/chunk_store.h"
#include "cache/lmdb_env.h"
#include "cache/verification_store.h"
#include "core/byte_source.h"
#include "core/digest.h"
#include "core/literal_store.h"
#include "core/md5_batcher.h"
#include "core/template_index.h"
#include "core/uri.h"
#include "fetch/mount/image_availability.h"
#include "fetch/mount/label_coverage.h"
#include "fetch/mount/mirror_list.h"
#include "fetch/transport/document_fetcher.h"
#include "fetch/transport/downloader.h"
#include "fetch/sources/local_tree_source.h"
#include "fetch/sources/mirror_source.h"
#include "fetch/sources/scan_source.h"
#include "fetch/sources/slice_resolver.h"

namespace jigdoofus {

namespace {

constexpr size_t kHashChunk = 1 << 20;

// One parsed SOURCE file.
struct LoadedJigdo {
  std::string path;  // local path (later: the URL it was fetched from)
  std::shared_ptr<const JigdoFile> file;
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Parses the bytes of one SOURCE .jigdo (`origin`: its path or URL).
Result<LoadedJigdo> ParseSourceJigdo(const std::string& raw, const std::string& origin, IncludeLoader* loader) {
  JIGDOOFUS_ASSIGN_OR_RETURN(JigdoFile parsed, ParseJigdo(raw, origin, loader));
  if (parsed.images().empty()) return Status::InvalidArgument(origin + ": no [Image] section (nothing to mount)");
  return LoadedJigdo{origin, std::make_shared<const JigdoFile>(std::move(parsed))};
}

Result<LoadedJigdo> LoadLocalJigdo(const std::string& path, IncludeLoader* loader) {
  JIGDOOFUS_ASSIGN_OR_RETURN(std::string raw, ReadWholeFile(path));
  return ParseSourceJigdo(raw, path, loader);
}

// Every regular file named *.jigdo directly in `dir`, sorted by name.
Result<std::vector<std::string>> ListJigdoFiles(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return Status::IOError(dir + ": " + ec.message());
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (!EndsWith(name, ".jigdo") || name == ".jigdo") continue;
    std::error_code ec2;
    if (!entry.is_regular_file(ec2)) continue;  // follows symlinks
    found.push_back(entry.path().string());
  }
  if (found.empty()) return Status::NotFound(dir + ": directory holds no .jigdo files");
  std::sort(found.begin(), found.end());
  return found;
}

// SOURCE -> the .jigdo files it stands for.
Status LoadSource(const std::string& source, DocumentFetcher* fetcher, std::vector<LoadedJigdo>* out) {
  UrlIncludeLoader loader(fetcher);
  if (IsNetworkUrl(source)) {
    JIGDOOFUS_ASSIGN_OR_RETURN(std::string raw, fetcher->FetchJigdo(source));
    JIGDOOFUS_ASSIGN_OR_RETURN(LoadedJigdo j, ParseSourceJigdo(raw, source, &loader));
    out->push_back(std::move(j));
    return Status::OK();
  }
  if (IsUrl(source) && UriScheme(source) != "file") {
    return Status::NotSupported(source + ": unsupported URL scheme (http, https, ftp and file are)");
  }
  std::string path = source;
  if (UriScheme(source) == "file") {
    auto p = FileUrlToPath(source, "");
    if (!p) return Status::InvalidArgument(source + ": not a usable file: URL");
    path = *p;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(path, errno);
  if (S_ISDIR(st.st_mode)) {
    JIGDOOFUS_ASSIGN_OR_RETURN(auto files, ListJigdoFiles(path));
    for (const std::string& f : files) {
      JIGDOOFUS_ASSIGN_OR_RETURN(LoadedJigdo j, LoadLocalJigdo(f, &loader));
      out->push_back(std::move(j));
    }
    return Status::OK();
  }
  JIGDOOFUS_ASSIGN_OR_RETURN(LoadedJigdo j, LoadLocalJigdo(path, &loader));
  out->push_back(std::move(j));
  return Status::OK();
}

// The servers of one --mirror-list: a network list through the document
// fetcher (kept in the cache dir, used offline), a local file read as is.
Result<std::vector<std::string>> LoadMirrorList(const std::string& label, const std::string& source,
                                                DocumentFetcher* fetcher) {
  std::string text;
  if (IsNetworkUrl(source)) {
    JIGDOOFUS_ASSIGN_OR_RETURN(text, fetcher->FetchJigdo(source));
  } else {
    JIGDOOFUS_ASSIGN_OR_RETURN(text, ReadWholeFile(source));
  }
  JIGDOOFUS_ASSIGN_OR_RETURN(MirrorList list, ParseMirrorList(text, label, source));
  spdlog::info("{}: {} servers for label {}", source, list.servers.size(), label);
  return std::move(list.servers);
}

std::string LocalDirOf(const std::string& path) {
  std::string dir = DirName(path);
  return dir.empty() ? std::string("./") : dir;
}

std::string JigdoStem(const std::string& path) {
  std::string base = std::filesystem::path(path).filename().string();
  if (EndsWith(base, ".gz")) base.resize(base.size() - 3);
  if (EndsWith(base, ".jigdo")) base.resize(base.size() - 6);
  return base;
}

// Last path segment of a URL, percent-decoded; empty if it is not a plain
// file name.
std::string UrlBasename(const std::string& url) {
  std::string u = url.substr(0, url.find_first_of("?#"));
  size_t scheme_end = u.find("://");
  size_t path_start = scheme_end == std::string::npos ? 0 : u.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return "";
  std::string base = PercentDecode(u.substr(u.rfind('/') + 1));
  if (!ValidateImageName(base).ok()) return "";
  return base;
}

struct TemplateCandidate {
  std::string path;       // local path, or the URL when `url` is set
  bool fallback = false;  // a guess: a checksum mismatch means "try the next"
  bool url = false;       // fetched through the DocumentFetcher (network or cache)
};

// Where the template of `image` may be, in the order to try.
Result<std::vector<TemplateCandidate>> TemplateCandidates(const JigdoImage& image, const std::string& jigdo_path) {
  std::vector<TemplateCandidate> out;
  const std::string& base = image.template_base.empty() ? jigdo_path : image.template_base;
  std::string dir = LocalDirOf(jigdo_path);
  std::string stem_guess = dir + JigdoStem(jigdo_path) + ".template";
  if (image.template_uri.empty()) {
    out.push_back({stem_guess, true});
    return out;
  }
  std::string resolved = ResolveReference(base, image.template_uri);
  std::string scheme = UriScheme(resolved);
  if (IsNetworkUrl(jigdo_path)) {  // a .jigdo from the network: its template is too
    if (!IsNetworkUrl(resolved)) {
      return Status::InvalidArgument(jigdo_path + ": Template=" + image.template_uri +
                                     ": a .jigdo from the network may only name an http, https or ftp template");
    }
    out.push_back({resolved, false, true});
    return out;
  }
  if (scheme.empty()) {
    out.push_back({resolved, false});
  } else if (scheme == "file") {
    auto p = FileUrlToPath(resolved, base);
    if (!p) return Status::InvalidArgument(jigdo_path + ": Template=" + image.template_uri + " is not a usable file: URL");
    out.push_back({*p, false});
  } else {
    // A local .jigdo naming its template by URL (xorriso writes
    // http://localhost/...): a copy beside the .jigdo, named as in the URL
    // or after the .jigdo, wins over the network.
    std::string named = UrlBasename(resolved);
    if (!named.empty()) out.push_back({dir + named, true});
    if (out.empty() || out.back().path != stem_guess) out.push_back({stem_guess, true});
    out.push_back({resolved, false, true});
  }
  return out;
}

Result<Digest> HashFile(const ByteSource& file, HashAlgo algo) {
  Hasher hasher(algo);
  std::vector<uint8_t> buf(kHashChunk);
  uint64_t offset = 0;
  while (offset < file.size()) {
    JIGDOOFUS_ASSIGN_OR_RETURN(size_t n, file.ReadAt(offset, buf));
    if (n == 0) break;
    hasher.Update(std::span<const uint8_t>(buf.data(), n));
    offset += n;
  }
  return hasher.Finish();
}

// Checks the template against Template-SHA256Sum (preferred) or
// Template-MD5Sum. The digest is remembered per stat key so that a remount
// does not hash a multi-megabyte template again.
Status VerifyTemplate(const ByteSource& file, const JigdoImage& image, const std::string& jigdo_path,
                      VerificationStore* store) {
  const std::optional<Digest>& want = image.template_sha256 ? image.template_sha256 : image.template_md5;
  if (!want) return Status::OK();
  struct stat st;
  std::optional<FileKey> key;
  if (file.fd() >= 0 && ::fstat(file.fd(), &st) == 0) key = FileKey::FromStat(st);
  std::optional<Digest> have;
  if (key) have = store->Lookup(*key, want->algo);
  if (!have) {
    JIGDOOFUS_ASSIGN_OR_RETURN(Digest d, HashFile(file, want->algo));
    have = d;
    if (key) (void)store->Record(*key, d);  // only an optimisation
  }
  if (*have == *want) return Status::OK();
  return Status::Corruption(file.name() + ": template checksum mismatch (" + jigdo_path + " line " +
                            std::to_string(image.line) + " wants " + HashAlgoName(want->algo) + " " +
                            want->ToBase64() + ", the file has " + have->ToBase64() + ")");
}

// Finds, opens and verifies the template of `image`.
Result<std::unique_ptr<FileByteSource>> OpenTemplate(const JigdoImage& image, const std::string& jigdo_path,
                                                     VerificationStore* store, DocumentFetcher* fetcher) {
  JIGDOOFUS_ASSIGN_OR_RETURN(auto candidates, TemplateCandidates(image, jigdo_path));
  std::string tried;
  bool mismatch = false;  // a candidate was there but had other bytes
  bool unusable = false;  // a candidate was there but is no regular file
  for (const TemplateCandidate& c : candidates) {
    std::string path = c.path;
    Status st;
    if (c.url) {
      const std::optional<Digest>& want = image.template_sha256 ? image.template_sha256 : image.template_md5;
      auto fetched = fetcher->FetchTemplate(c.path, want);
      if (fetched.ok()) path = *fetched;
      st = fetched.status();
    }
    auto file = st.ok() ? FileByteSource::Open(path) : Result<std::unique_ptr<FileByteSource>>(st);
    st = file.ok() ? VerifyTemplate(**file, image, jigdo_path, store) : file.status();
    if (st.ok()) return std::move(file).value();
    if (c.url && file.ok()) {
      fetcher->Discard(path);  // a bad download must not be reused
      st = st.WithContext(c.path);
    }
    // The last word is the non-fallback candidate's, unless a copy tried
    // before it was there but unusable (other bytes, or not a regular
    // file: say that, not "missing").
    if (!c.fallback && !mismatch && !unusable) return st.WithContext(jigdo_path + ": template of " + image.filename);
    mismatch = mismatch || st.IsCorruption();
    unusable = unusable || st.code() == Status::Code::kInvalidArgument;
    if (!tried.empty()) tried += "; ";
    tried += st.message();
    if (!c.fallback) break;
  }
  const std::string what = jigdo_path + ": template of " + image.filename + " (Template=" + image.template_uri + ")";
  if (mismatch) return Status::Corruption(what + " does not match the .jigdo's checksum; tried: " + tried);
  if (unusable) return Status::InvalidArgument(what + " cannot be used; tried: " + tried);
  return Status::NotFound(what + " not found; tried: " + tried);
}

}  // namespace

Status ValidateImageName(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name == "." || name == "..") return Status::InvalidArgument("'" + name + "' is not a file name");
  if (name.size() > kMaxImageNameBytes) {
    return Status::InvalidArgument("a name of " + std::to_string(name.size()) + " bytes (at most " +
                                   std::to_string(kMaxImageNameBytes) + ")");
  }
  if (name == kReservedStatusName) return Status::InvalidArgument("'" + name + "' is the mount's status file");
  for (unsigned char c : name) {
    if (c == '/') return Status::InvalidArgument("'" + name + "' contains '/'");
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument("name contains a control character");
  }
  return Status::OK();
}

struct ImageSet::State {
  struct Jigdo {
    LoadedJigdo loaded;
    std::shared_ptr<SliceResolver> resolver;
  };
  struct ImageInfo {
    std::string template_path;
    size_t jigdo = 0;  // index into jigdos
  };
  // Declaration order is destruction order reversed: resolvers go before
  // the sources they point to, sources before the store, the store before
  // the environment.
  std::unique_ptr<LmdbEnv> env;
  std::unique_ptr<VerificationStore> store;
  std::unique_ptr<ImageScanStore> scans;
  std::unique_ptr<ChunkStore> chunks;        // null without a cache dir
  std::unique_ptr<Downloader> downloader;    // null with --offline
  std::unique_ptr<DocumentFetcher> documents;
  std::unique_ptr<LocalTreeSource> local;
  std::unique_ptr<ScanSource> scan;
  std::unique_ptr<MirrorSource> mirror;      // null without a chunk store
  std::vector<SliceSource*> sources;
  std::vector<Jigdo> jigdos;
  std::vector<ImageInfo> infos;  // parallel to ImageSet::images_
};

ImageSet::~ImageSet() {
  images_.clear();  // readers hold the resolvers; drop them first
  state_.reset();
}

Result<std::unique_ptr<ImageSet>> ImageSet::Open(const MountConfig& config) {
  const ImageSetOptions& options = config.user;
  std::unique_ptr<ImageSet> set(new ImageSet());
  set->config_ = config;
  set->state_ = std::make_unique<State>();
  State& s = *set->state_;

  if (options.sources.empty()) return Status::InvalidArgument("no SOURCE given");
  if (!options.offline) {
    JIGDOOFUS_ASSIGN_OR_RETURN(s.downloader, Downloader::Create(config.downloader));
  }
  DocumentFetcherOptions dfopts;
  dfopts.dir = options.cache_dir;
  dfopts.offline = options.offline;
  dfopts.timeout_s = config.document_timeout_s;
  s.documents = std::make_unique<DocumentFetcher>(s.downloader.get(), dfopts);

  std::vector<LoadedJigdo> loaded;
  for (const std::string& source : options.sources) {
    JIGDOOFUS_RETURN_IF_ERROR(LoadSource(source, s.documents.get(), &loaded));
  }

  // Names first: cheap, and a clash is better reported before any hashing.
  std::map<std::string, std::string> seen;  // name -> .jigdo
  for (const LoadedJigdo& j : loaded) {
    for (const JigdoImage& image : j.file->images()) {
      Status st = ValidateImageName(image.filename);
      if (!st.ok()) {
        return Status::InvalidArgument(j.path + " line " + std::to_string(image.line) + ": Filename='" +
                                       image.filename + "' cannot be a file name in the mount: " + st.message());
      }
      auto [it, fresh] = seen.emplace(image.filename, j.path);
      if (!fresh) {
        return Status::InvalidArgument("image name '" + image.filename + "' appears twice: in " + it->second +
                                       " and in " + j.path);
      }
    }
  }

  if (options.cache_dir.empty()) {
    s.store = std::make_unique<MemoryVerificationStore>();
    s.scans = std::make_unique<MemoryImageScanStore>();
  } else {
    JIGDOOFUS_ASSIGN_OR_RETURN(s.env, LmdbEnv::Open(options.cache_dir, config.lmdb));
    JIGDOOFUS_ASSIGN_OR_RETURN(s.store, LmdbVerificationStore::Open(s.env.get()));
    JIGDOOFUS_ASSIGN_OR_RETURN(s.scans, LmdbImageScanStore::Open(s.env.get()));
    JIGDOOFUS_ASSIGN_OR_RETURN(s.chunks,
                               ChunkStore::Open(s.env.get(), ChunkStoreOptions{.capacity = config.cache_capacity}));
  }

  const FileUrlScope file_urls = options.trust_file_urls ? FileUrlScope::kAnywhere : FileUrlScope::kBeneathJigdo;
  if (file_urls == FileUrlScope::kBeneathJigdo) {
    for (const LoadedJigdo& j : loaded) {
      for (const std::string& server : FileServersOutsideJigdoDir(*j.file)) {
        set->warnings_.push_back(j.path + ": " + server +
                                 " is outside the .jigdo's directory and will not be read "
                                 "(--trust-file-urls, or --local LABEL=DIR, to use it)");
      }
    }
  }
  s.local = std::make_unique<LocalTreeSource>(options.local, file_urls, s.store.get());
  s.sources.push_back(s.local.get());
  if (!options.scan.empty()) {
    s.scan = std::make_unique<ScanSource>(options.scan, s.store.get(), s.scans.get());
    s.scan->Start();
    s.sources.push_back(s.scan.get());
  }
  if (s.chunks) {
    MirrorSourceOptions mirror_options = config.mirror;
    for (const auto& [label, source] : options.mirror_lists) {
      auto listed = LoadMirrorList(label, source, s.documents.get());
      if (!listed.ok()) {
        // The .jigdo's own servers still work: say so, do not fail.
        set->warnings_.push_back(listed.status().message() + "; --mirror-list " + label + " ignored");
        continue;
      }
      for (std::string& url : *listed) mirror_options.listed.emplace_back(label, std::move(url));
    }
    s.mirror = std::make_unique<MirrorSource>(s.downloader.get(), s.chunks.get(), mirror_options);
    s.sources.push_back(s.mirror.get());
  }

  WantedHeads wanted;  // every slice with a head sum: what image files are scanned for
  for (LoadedJigdo& j : loaded) {
    struct Read {
      const JigdoImage* image;
      std::string template_name;
      std::shared_ptr<const ByteSource> file;
      std::shared_ptr<const TemplateIndex> index;
    };
    std::vector<Read> reads;
    auto heads = std::make_shared<SliceHeadMap>();
    for (const JigdoImage& image : j.file->images()) {
      JIGDOOFUS_ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> file,
                                 OpenTemplate(image, j.path, s.store.get(), s.documents.get()));
      auto index = ReadTemplateIndex(*file);
      if (!index.ok()) return index.status().WithContext(j.path + ": image " + image.filename);
      auto shared_index = std::make_shared<const TemplateIndex>(std::move(index).value());
      for (size_t i = 0; i < shared_index->slices().size(); ++i) {
        const SliceHead& head = shared_index->slice_heads()[i];
        if (!head.known()) continue;
        heads->emplace(shared_index->slices()[i], head);
        wanted.Add(shared_index->slices()[i], head);
      }
      reads.push_back({&image, file->name(), file, shared_index});
    }
    // Cache slices are kept open like local ones (they pin nothing: each
    // read checks them in its own snapshot).
    auto resolver = std::make_shared<SliceResolver>(j.file, s.sources, config.max_open_slices, std::move(heads));
    size_t jigdo_index = s.jigdos.size();
    s.jigdos.push_back({j, resolver});
    for (Read& r : reads) {
      auto literals = std::make_shared<const LiteralStore>(r.file, r.index);
      OpenImage open;
      open.name = r.image->filename;
      open.source = j.path;
      open.jigdo = j.file;
      open.reader = std::make_unique<ImageReader>(r.index, literals, resolver);
      open.resolver = resolver;
      set->images_.push_back(std::move(open));
      s.infos.push_back({r.template_name, jigdo_index});
    }
  }
  if (s.scan && s.scan->has_image_files()) s.scan->StartImageScan(std::move(wanted));
  // Labels nothing can serve: said now, not at the first EIO.
  std::vector<std::pair<std::string, std::string>> extra_servers = options.mirrors;  // --mirror, --mirror-list
  if (s.mirror) {
    for (const auto& listed : s.mirror->options().listed) extra_servers.push_back(listed);
  }
  for (const State::Jigdo& j : s.jigdos) {
    LabelCoverageInput in;
    in.jigdo = j.loaded.file.get();
    for (const OpenImage& image : set->images_) {
      if (image.jigdo == j.loaded.file) in.images.push_back(&image.reader->index());
    }
    in.local = &options.local;
    in.mirrors = &extra_servers;
    in.offline = options.offline;
    in.scanning = !options.scan.empty();
    MirrorSource* mirror = s.mirror.get();
    in.cached = [mirror, &j](const SliceId& id) {
      return mirror != nullptr && mirror->HasVerified(j.resolver->RequestFor(id));
    };
    for (std::string& w : UncoveredLabelWarnings(in)) set->warnings_.push_back(std::move(w));
  }
  return set;
}

ImageSet::SliceOrigin ImageSet::Locate(const OpenImage& image, const SliceId& id) const {
  const SliceRequest request = image.resolver->RequestFor(id);
  if (state_->mirror && state_->mirror->HasVerified(request)) return SliceOrigin::kCached;
  for (SliceSource* local : {static_cast<SliceSource*>(state_->local.get()), static_cast<SliceSource*>(state_->scan.get())}) {
    if (local != nullptr && local->Open(request, FetchContext{}).ok()) return SliceOrigin::kLocal;
  }
  return SliceOrigin::kDownload;
}

std::optional<ImageSet::CacheUse> ImageSet::CacheUsage() const {
  if (!state_->chunks) return std::nullopt;
  auto stats = state_->chunks->Stats();
  if (!stats.ok()) return std::nullopt;
  return CacheUse{stats->bytes_used, stats->bound};
}

std::string ImageSet::StatusJson() const {
  using nlohmann::json;
  json out;
  out["version"] = JIGDOOFUS_VERSION;
  out["pid"] = ::getpid();
  out["uid"] = ::getuid();
  out["cache_dir"] = config_.user.cache_dir;
  out["offline"] = config_.user.offline;
  // While anything downloads: the time left to have each image whole.
  const std::optional<TransferSnapshot> transfers =
      state_->mirror ? std::optional(state_->mirror->Transfers()) : std::nullopt;
  const double rate = transfers ? transfers->rate_bps : 0.0;
  json images = json::array();
  for (size_t i = 0; i < images_.size(); ++i) {
    const OpenImage& image = images_[i];
    const State::ImageInfo& info = state_->infos[i];
    const ImageAvailability a = Availability(image);
    json entry = {{"name", image.name},
                  {"size", image.reader->size()},
                  {"source", image.source},
                  {"template", info.template_path},
                  {"slices", a.slices},
                  {"slices_available", a.slices_available},
                  {"literal_bytes", a.literal_bytes},
                  {"available_bytes", a.available_bytes},
                  {"missing_bytes", a.missing_bytes},
                  {"missing_slice_bytes", a.missing_slice_bytes}};
    if (rate > 0 && a.missing_slice_bytes > 0) entry["seconds_left"] = static_cast<double>(a.missing_slice_bytes) / rate;
    if (const auto& d = image.reader->index().image_digest()) {
      entry["checksum"] = {{"algo", HashAlgoName(d->algo)}, {"hex", d->ToHex()}};
    }
    images.push_back(std::move(entry));
  }
  out["images"] = std::move(images);
  json resolvers = json::array();
  for (const State::Jigdo& j : state_->jigdos) {
    const ResolverStats& st = j.resolver->stats();
    resolvers.push_back({{"jigdo", j.loaded.path},
                         {"opened", st.opened.load()},
                         {"lru_hits", st.lru_hits.load()},
                         {"merged_waits", st.merged_waits.load()},
                         {"not_found", st.not_found.load()},
                         {"corrupt", st.corrupt.load()},
                         {"unavailable", st.unavailable.load()},
                         {"other_errors", st.other_errors.load()}});
  }
  out["resolvers"] = std::move(resolvers);
  if (state_->mirror) {
    const MirrorSourceStats& m = state_->mirror->stats();
    out["mirror"] = {{"cache_hits", m.cache_hits.load()},
                     {"memory_hits", m.memory_hits.load()},
                     {"downloads_ok", m.downloads_ok.load()},
                     {"downloads_failed", m.downloads_failed.load()},
                     {"bad_checksum", m.bad_checksum.load()},
                     {"bytes_downloaded", m.bytes_downloaded.load()},
                     {"offline_misses", m.offline_misses.load()},
                     {"kept_in_memory", m.kept_in_memory.load()},
                     {"overtaken", m.overtaken.load()},
                     {"stalled", m.stalled.load()},
                     {"pieced", m.pieced.load()},
                     {"pieces", m.pieces.load()},
                     {"hedges", m.hedges.load()},
                     {"range_refused", m.range_refused.load()},
                     {"memory_bytes", state_->mirror->memory_used()}};
  }
  if (state_->chunks) {
    auto stats = state_->chunks->Stats();
    if (!stats.ok()) {
      out["cache"] = {{"error", stats.status().ToString()}};
    } else {
      const ChunkStoreStats& c = *stats;
      out["cache"] = {{"capacity", c.capacity},
                      {"effective_bound", c.bound},
                      {"bytes_used", c.bytes_used},
                      {"slices", c.slices_complete},
                      {"evictions", c.evictions},
                      {"no_space_events", c.no_space_events},
                      {"corrupt_dropped", c.corrupt_dropped},
                      {"gc_slices_at_open", c.gc_at_open.slices}};
    }
    if (state_->env) {
      LmdbEnv::GroupCommitStats g = state_->env->group_commit_stats();
      out["cache"]["group_commits"] = {{"transactions", g.transactions}, {"writes", g.ops}, {"fallbacks", g.fallbacks}};
    }
  }
  if (state_->mirror) {
    const TransferSnapshot& t = *transfers;
    json in_flight = json::array();
    for (const auto& f : t.in_flight) {
      in_flight.push_back({{"url", f.url}, {"size", f.size}, {"bytes", f.bytes}, {"seconds", f.seconds}});
    }
    std::map<std::string, double> backoff;
    for (const auto& [server, seconds] : state_->mirror->ServersInBackoff()) backoff[server] = seconds;
    json servers = json::array();
    for (const auto& sv : t.servers) {
      json e = {{"server", sv.server}, {"bytes", sv.bytes},     {"rate_bps", sv.rate_bps},
                {"ok", sv.ok},         {"failed", sv.failed},   {"in_flight", sv.in_flight},
                {"connections", state_->mirror->ConnectionLimit(sv.server)},
                {"share", t.bytes ? static_cast<double>(sv.bytes) / static_cast<double>(t.bytes) : 0.0},
                {"health", backoff.count(sv.server) ? "backing off" : "ok"}};
      if (backoff.count(sv.server)) e["retry_in_s"] = backoff[sv.server];
      const ServerScore score = state_->mirror->scores().Get(sv.server);
      if (score.samples > 0) {
        e["measured"] = {{"per_connection_bps", score.per_connection_bps},
                         {"aggregate_bps", score.aggregate_bps},
                         {"ttfb_s", score.ttfb_s},
                         {"least_ttfb_s", score.min_ttfb_s},
                         {"body_s", score.body_s},
                         {"samples", score.samples}};
      }
      if (score.refuses_ranges) e["ranges"] = "refused";
      if (!sv.last_error.empty()) e["last_error"] = sv.last_error;
      servers.push_back(std::move(e));
    }
    out["transfers"] = {{"rate_bps", t.rate_bps}, {"bytes", t.bytes}, {"in_flight", std::move(in_flight)},
                        {"servers", std::move(servers)}};
  }
  {
    const Md5BatcherStats h = Md5Batcher::Shared().stats();
    out["md5"] = {{"kernel", Md5KernelName(BestMd5Kernel())},
                  {"lanes", Md5KernelLanes(BestMd5Kernel())},
                  {"jobs", h.jobs},
                  {"steps", h.steps},
                  {"lanes_per_step", h.steps ? static_cast<double>(h.lane_steps) / static_cast<double>(h.steps) : 0.0}};
  }
  if (state_->scan) {
    const ScanStats sc = state_->scan->Stats();
    out["scan"] = {{"walked", sc.walked},
                   {"files_seen", sc.files_seen},
                   {"heads_read", sc.heads_read},
                   {"heads_rejected", sc.heads_rejected},
                   {"files_checked", sc.files_checked}};
    if (state_->scan->has_image_files()) {
      const ImageFileStats& im = sc.images;
      out["scan"]["image_files"] = {{"files", im.files},
                                    {"files_done", im.files_done},
                                    {"files_from_record", im.files_from_record},
                                    {"bytes_total", im.bytes_total},
                                    {"bytes_done", im.bytes_done},
                                    {"bytes_read", im.bytes_read},
                                    {"candidates", im.candidates},
                                    {"bytes_hashed", im.bytes_hashed},
                                    {"slices_found", im.slices_found},
                                    {"done", im.done}};
    }
  }
  if (state_->downloader) {
    DownloaderStats d = state_->downloader->stats();
    out["downloads"] = {{"submitted", d.submitted},
                        {"succeeded", d.succeeded},
                        {"body_bytes", d.body_bytes},
                        {"connections_opened", d.connections_opened}};
  }
  // Names and paths come from documents: bytes that are not UTF-8 are
  // replaced, so the status file never fails.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace jigdoofus
