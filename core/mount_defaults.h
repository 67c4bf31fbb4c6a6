// The defaults of a mount, each once, with its reason. Used by the
// command line (fs/options.cc), the resolution of a mount's settings
// (fetch/mount/mount_config.h) and the option structs of the parts, so
// they cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace jigdoofus {

namespace mount_defaults {
// --cache-size: a DVD image's slices (4.7 GB) twice over, so two point
// releases' images share one cache without evicting each other.
inline constexpr uint64_t kCacheSize = uint64_t{10} << 30;
// --jobs: parallel downloads and slice read-ahead. 8 keep a loopback or
// LAN mirror busy and hash ahead of a local reader (8 threads beat 2 and
// 0 on a 2-core machine: read-ahead waits on I/O as much as on hashing);
// mirrors far away need more slices in flight, as each waits a round trip
// for its first byte: on the simulated internet of BENCHMARKS.md (four
// mirrors, 20-160 ms), 8 read at 23-24 MB/s of the 30 the link allows,
// 16 at 27-28 MB/s.
inline constexpr int kJobs = 16;
// --fetch-timeout: a read waiting longer than this for its slice is EIO
// (the mount stays up); long enough for a slow mirror to deliver a large
// package, short enough that a burner or a loop mount does not hang.
inline constexpr double kFetchTimeoutS = 60;
// Connections to one mirror: all of --jobs, up to this. Every slice is one
// request and libcurl has no HTTP/1.1 pipelining, so over a link with
// latency a connection mostly waits for the first byte of small slices:
// with +20 ms RTT on the bench corpus, 6 connections read at 91 MB/s, 8 at
// 126 MB/s, 16 at 180 MB/s. (HTTP/2 mirrors multiplex over one connection.)
inline constexpr size_t kMaxConnectionsPerHost = 16;
// Without --jobs, a server whose downloads mostly wait for their first
// byte (far away, small files) gets more connections, up to this, and the
// read-ahead as many more slices in flight (ServerScores::Connections): on
// a mirror 250 ms away with a 30 MB/s uplink beside a near 5 MB/s one, 16
// read the bench corpus at 0.64x of aria2c -x16 -s16; adapted (up to 48),
// 0.88x.
inline constexpr size_t kMaxAutoConnectionsPerHost = 48;
inline constexpr size_t kMaxAutoJobs = 64;
// Documents (.jigdo, template) get at least this long: they come before
// the mount exists, and a template is megabytes.
inline constexpr double kMinDocumentTimeoutS = 30;
// Slices the cache cannot keep (larger than its bound, a full disk) are
// held in memory for their readers, this many bytes at once: the largest
// packages on Debian's DVDs are a few hundred MB.
inline constexpr uint64_t kMemorySliceBudget = uint64_t{512} << 20;
// Bytes that slices fetched in pieces from several servers hold out of
// order at once (a piece in before the one the slice goes on from), all
// slices together: each may run 32 MiB ahead (PiecePlanOptions::window),
// and up to kMaxAutoJobs of them download at once. Past this, a slice
// fetches the piece its bytes go on from, and starts others as the bound
// gives room.
inline constexpr uint64_t kHeldPieceBytes = uint64_t{128} << 20;
// Open files wanted: a DVD's few thousand slices stay open (one fd each)
// instead of being looked up again per read.
inline constexpr uint64_t kWantOpenFiles = 65536;
// Verified slices each resolver keeps open: a quarter of the open-file
// limit shared by the .jigdo files, within these bounds.
inline constexpr size_t kMinOpenSlices = 64;
inline constexpr size_t kMaxOpenSlices = 8192;
// Read-ahead keeps half the open-slice LRU queued (prefetched slices are
// still open when the reader arrives), within these bounds. Small slices
// come in the hundreds per window; with only 96 a big slice's hash started
// too late (first read of the 1 GB bench image, 5 alternating runs:
// 1.53-1.68 s with 96, 1.44-1.53 s with 1024).
inline constexpr size_t kMinSlicesAhead = 16;
inline constexpr size_t kMaxSlicesAhead = 1024;
}  // namespace mount_defaults

}  // namespace jigdoofus
