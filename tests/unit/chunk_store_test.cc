// Tests for ChunkStore against real LMDB in temp directories: exact bytes
// across chunk boundaries, verification before publication, abort, LRU
// eviction and the size bound, crash safety under SIGKILL, two processes
// sharing a directory, and readers racing a writer.
#include "cache/chunk_store.h"
#include "tests/unit/temp_dir.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace jigdoofus {
namespace {

namespace fs = std::filesystem;

using testing_util::TempDir;
using cache_record::kChunkSize;

// The old BeginSlice contract on top of Admit: a writer, or the status the
// admission stands for (kAlreadyComplete: a null writer).
Result<std::unique_ptr<ChunkStore::Writer>> BeginSlice(ChunkStore& store, const SliceId& id) {
  auto a = store.Admit(id);
  if (!a.ok()) return a.status();
  switch (a->admission) {
    case Admission::kWrite: return std::move(a->writer);
    case Admission::kAlreadyComplete: return std::unique_ptr<ChunkStore::Writer>();
    case Admission::kTooLarge: return Status::InvalidArgument("too large");
    case Admission::kBusyElsewhere: return Status::Unavailable("busy elsewhere");
    case Admission::kNoRoomNow: return Status::Unavailable("no room now");
  }
  return Status::Internal("unknown admission");
}

// Deterministic content for (seed, size).
std::vector<uint8_t> Content(uint64_t seed, uint64_t size) {
  std::vector<uint8_t> out(size);
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ULL + size);
  for (uint64_t i = 0; i < size; i += 8) {
    uint64_t r = rng();
    for (uint64_t j = 0; j < 8 && i + j < size; ++j) out[i + j] = static_cast<uint8_t>(r >> (8 * j));
  }
  return out;
}

SliceId IdOf(const std::vector<uint8_t>& data, HashAlgo algo = HashAlgo::kSha256) {
  return SliceId{HashBytes(algo, data), data.size()};
}

struct Cache {
  std::unique_ptr<LmdbEnv> env;
  std::unique_ptr<ChunkStore> store;
};

Cache OpenCache(const std::string& dir, uint64_t capacity = uint64_t{1} << 30, bool durable = false) {
  Cache c;
  LmdbOptions o;
  o.map_size = uint64_t{1} << 30;
  o.durable = durable;
  auto env = LmdbEnv::Open(dir, o);
  EXPECT_TRUE(env.ok()) << env.status().ToString();
  if (!env.ok()) return c;
  c.env = std::move(*env);
  ChunkStoreOptions so;
  so.capacity = capacity;
  auto store = ChunkStore::Open(c.env.get(), so);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (store.ok()) c.store = std::move(*store);
  return c;
}

// Writes data in pieces of `piece` bytes and commits.
Status WriteSlice(ChunkStore& store, const SliceId& id, const std::vector<uint8_t>& data, size_t piece = 7777) {
  auto w = BeginSlice(store, id);
  if (!w.ok()) return w.status();
  if (*w == nullptr) return Status::OK();  // already complete
  for (size_t off = 0; off < data.size(); off += piece) {
    size_t n = std::min(piece, data.size() - off);
    Status s = (*w)->Append(std::span<const uint8_t>(data.data() + off, n));
    if (!s.ok()) return s;
  }
  return (*w)->Commit().status();
}

// Reads the whole slice through Get and checks bytes (and hash).
::testing::AssertionResult ReadsBack(ChunkStore& store, const SliceId& id, const std::vector<uint8_t>* expect) {
  auto slice = store.Get(id);
  if (!slice.ok()) return ::testing::AssertionFailure() << slice.status().ToString();
  if (!((*slice)->id() == id)) return ::testing::AssertionFailure() << "wrong id";
  std::vector<uint8_t> got(id.size);
  Status s = (*slice)->ReadAt(0, got);
  if (!s.ok()) return ::testing::AssertionFailure() << s.ToString();
  if (expect != nullptr && got != *expect) return ::testing::AssertionFailure() << "bytes differ";
  if (!(HashBytes(id.digest.algo, got) == id.digest)) return ::testing::AssertionFailure() << "digest differs";
  return ::testing::AssertionSuccess();
}

TEST(ChunkStoreTest, ExactBytesAcrossChunkBoundaries) {
  TempDir tmp;
  const std::vector<uint64_t> sizes = {0, 1, kChunkSize - 1, kChunkSize, kChunkSize + 1, 10 * uint64_t{kChunkSize}};
  std::vector<std::pair<SliceId, std::vector<uint8_t>>> slices;
  {
    Cache c = OpenCache(tmp.path());
    ASSERT_TRUE(c.store);
    for (uint64_t size : sizes) {
      for (HashAlgo algo : {HashAlgo::kMd5, HashAlgo::kSha256}) {
        auto data = Content(size + static_cast<int>(algo), size);
        SliceId id = IdOf(data, algo);
        EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
        Status s = WriteSlice(*c.store, id, data, size == 1 ? 1 : 100003);
        ASSERT_TRUE(s.ok()) << size << ": " << s.ToString();
        ASSERT_TRUE(ReadsBack(*c.store, id, &data)) << size;
        slices.emplace_back(id, std::move(data));
      }
    }
    // Partial reads at awkward offsets, and Visit without copying.
    const auto& [big_id, big] = slices.back();
    auto slice = c.store->Get(big_id);
    ASSERT_TRUE(slice.ok());
    for (uint64_t off : {uint64_t{0}, uint64_t{kChunkSize} - 3, uint64_t{3} * kChunkSize, big.size() - 5}) {
      std::vector<uint8_t> part(std::min<uint64_t>(2 * kChunkSize + 7, big.size() - off));
      ASSERT_TRUE((*slice)->ReadAt(off, part).ok());
      EXPECT_TRUE(std::equal(part.begin(), part.end(), big.begin() + off)) << off;
    }
    // AppendTo: ranges of the cache's data file under a snapshot the plan holds.
    ReadPlan plan;
    ASSERT_TRUE((*slice)->AppendTo(kChunkSize / 2, 2 * kChunkSize, &plan).ok());
    EXPECT_EQ(plan.parts.size(), 3u);  // half chunk, a chunk, half chunk
    EXPECT_EQ(plan.holds.size(), 1u);
    std::vector<uint8_t> visited(plan.size);
    size_t at = 0;
    for (const ReadPlan::Part& p : plan.parts) {
      ASSERT_EQ(p.fd, c.store->data_fd());
      ASSERT_EQ(::pread(p.fd, visited.data() + at, p.length, static_cast<off_t>(p.pos)), static_cast<ssize_t>(p.length));
      at += p.length;
    }
    EXPECT_TRUE(std::equal(visited.begin(), visited.end(), big.begin() + kChunkSize / 2));
    EXPECT_EQ(visited.size(), 2u * kChunkSize);
    plan.Clear();
    std::vector<uint8_t> past(10);
    EXPECT_EQ((*slice)->ReadAt(big.size() - 5, past).code(), Status::Code::kInternal);

    ChunkStoreStats st = *c.store->Stats();
    EXPECT_EQ(st.slices_complete, slices.size());
    uint64_t total = 0;
    for (const auto& sl : slices) total += sl.first.size;
    EXPECT_EQ(st.bytes_used, total);
    EXPECT_EQ(st.slices_staged, 0u);
  }
  // Everything survives a reopen.
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  for (const auto& [id, data] : slices) EXPECT_TRUE(ReadsBack(*c.store, id, &data)) << id.size;
  EXPECT_EQ(c.store->Stats()->gc_at_open.slices, 0u);
  EXPECT_EQ(c.store->Stats()->gc_at_open.orphan_chunks, 0u);
}

TEST(ChunkStoreTest, ChecksumMismatchIsNeverVisible) {
  TempDir tmp;
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  auto data = Content(1, 3 * kChunkSize + 11);
  SliceId id = IdOf(data);
  auto bad = data;
  bad[2 * kChunkSize + 5] ^= 1;
  auto w = BeginSlice(*c.store, id);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append(bad).ok());
  // Staged but not committed: invisible.
  EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
  EXPECT_FALSE(*c.store->Contains(id));
  EXPECT_EQ(c.store->Stats()->slices_staged, 1u);
  Status s = (*w)->Commit().status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE((*w)->Commit().status().IsCorruption());
  EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
  ChunkStoreStats st = *c.store->Stats();
  EXPECT_EQ(st.bytes_used, 0u);
  EXPECT_EQ(st.slices_staged, 0u);
  EXPECT_EQ(st.slices_complete, 0u);
  // The right bytes afterwards are fine.
  ASSERT_TRUE(WriteSlice(*c.store, id, data).ok());
  EXPECT_TRUE(ReadsBack(*c.store, id, &data));
}

TEST(ChunkStoreTest, WrongLengthIsCorruption) {
  TempDir tmp;
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  auto data = Content(2, 1000);
  SliceId id = IdOf(data);
  {
    auto w = BeginSlice(*c.store, id);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(std::span<const uint8_t>(data).first(999)).ok());
    EXPECT_TRUE((*w)->Commit().status().IsCorruption());
  }
  {
    auto w = BeginSlice(*c.store, id);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(data).ok());
    uint8_t extra[1] = {0};
    EXPECT_TRUE((*w)->Append(extra).IsCorruption());
    EXPECT_TRUE((*w)->Commit().status().IsCorruption());
  }
  EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
  EXPECT_EQ(c.store->Stats()->bytes_used, 0u);
}

TEST(ChunkStoreTest, AbortLeavesNothing) {
  TempDir tmp;
  auto data = Content(3, 5 * kChunkSize);
  SliceId id = IdOf(data);
  {
    Cache c = OpenCache(tmp.path());
    ASSERT_TRUE(c.store);
    {
      auto w = BeginSlice(*c.store, id);
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE((*w)->Append(std::span<const uint8_t>(data).first(4 * kChunkSize)).ok());
      EXPECT_EQ(c.store->Stats()->bytes_used, data.size());  // charged up front
    }  // destroyed without Commit
    EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
    ChunkStoreStats st = *c.store->Stats();
    EXPECT_EQ(st.bytes_used, 0u);
    EXPECT_EQ(st.slices_staged, 0u);
  }
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  EXPECT_EQ(c.store->Stats()->gc_at_open.slices, 0u);
  EXPECT_EQ(c.store->Stats()->gc_at_open.orphan_chunks, 0u);  // no chunk was left behind
  EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
}

TEST(ChunkStoreTest, SecondWriterForOneSliceIsUnavailable) {
  TempDir tmp;
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  auto data = Content(4, 2 * kChunkSize + 1);
  SliceId id = IdOf(data);
  auto w1 = BeginSlice(*c.store, id);
  ASSERT_TRUE(w1.ok());
  auto w2 = BeginSlice(*c.store, id);
  ASSERT_FALSE(w2.ok());
  EXPECT_EQ(w2.status().code(), Status::Code::kUnavailable) << w2.status().ToString();
  ASSERT_TRUE((*w1)->Append(data).ok());
  ASSERT_TRUE((*w1)->Commit().ok());
  // Once complete, admission says so: nothing is written again.
  auto a3 = c.store->Admit(id);
  ASSERT_TRUE(a3.ok());
  EXPECT_EQ(a3->admission, Admission::kAlreadyComplete);
  EXPECT_EQ(a3->writer, nullptr);
  EXPECT_TRUE(ReadsBack(*c.store, id, &data));
  EXPECT_EQ(c.store->Stats()->bytes_used, data.size());
}

TEST(ChunkStoreTest, TooLargeSliceRefused) {
  TempDir tmp;
  Cache c = OpenCache(tmp.path(), 1 << 20);
  ASSERT_TRUE(c.store);
  SliceId id{HashBytes(HashAlgo::kMd5, {}), (1 << 20) + 1};
  auto w = BeginSlice(*c.store, id);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(w.status().message(), "too large");  // Admission::kTooLarge
  SliceId fits{HashBytes(HashAlgo::kMd5, {}), 1 << 20};
  EXPECT_TRUE(BeginSlice(*c.store, fits).ok());
}

TEST(ChunkStoreTest, EvictsLeastRecentlyUsedWithinCapacity) {
  TempDir tmp;
  constexpr uint64_t kSlice = 100000;
  Cache c = OpenCache(tmp.path(), 4 * kSlice);
  ASSERT_TRUE(c.store);
  std::vector<std::vector<uint8_t>> data;
  std::vector<SliceId> ids;
  for (int i = 0; i < 4; ++i) {
    data.push_back(Content(100 + i, kSlice));
    ids.push_back(IdOf(data.back()));
    ASSERT_TRUE(WriteSlice(*c.store, ids.back(), data.back()).ok());
  }
  EXPECT_EQ(c.store->Stats()->bytes_used, 4 * kSlice);
  // Use 0 and 2: 1 is now the least recently used, then 3.
  ASSERT_TRUE(c.store->Get(ids[0]).ok());
  ASSERT_TRUE(c.store->Get(ids[2]).ok());
  data.push_back(Content(104, kSlice));
  ids.push_back(IdOf(data.back()));
  ASSERT_TRUE(WriteSlice(*c.store, ids[4], data[4]).ok());
  EXPECT_TRUE(c.store->Get(ids[1]).status().IsNotFound());
  EXPECT_TRUE(*c.store->Contains(ids[0]));
  EXPECT_TRUE(*c.store->Contains(ids[2]));
  EXPECT_TRUE(*c.store->Contains(ids[3]));
  EXPECT_EQ(c.store->Stats()->evictions, 1u);
  // A slice twice as large evicts the next two in LRU order: 3, then 0.
  auto big = Content(200, 2 * kSlice);
  ASSERT_TRUE(WriteSlice(*c.store, IdOf(big), big).ok());
  EXPECT_FALSE(*c.store->Contains(ids[3]));
  EXPECT_FALSE(*c.store->Contains(ids[0]));
  EXPECT_TRUE(ReadsBack(*c.store, ids[2], &data[2]));
  EXPECT_TRUE(ReadsBack(*c.store, ids[4], &data[4]));
  EXPECT_TRUE(ReadsBack(*c.store, IdOf(big), &big));
  ChunkStoreStats st = *c.store->Stats();
  EXPECT_EQ(st.evictions, 3u);
  EXPECT_LE(st.bytes_used, st.capacity);
  EXPECT_EQ(st.bytes_used, 4 * kSlice);
  // Many more writes: the bound always holds.
  for (int i = 0; i < 20; ++i) {
    auto d = Content(300 + i, kSlice / 3 + i);
    ASSERT_TRUE(WriteSlice(*c.store, IdOf(d), d).ok());
    ASSERT_LE(c.store->Stats()->bytes_used, 4 * kSlice);
  }
}

TEST(ChunkStoreTest, RecencySurvivesReopen) {
  TempDir tmp;
  constexpr uint64_t kSlice = 50000;
  std::vector<SliceId> ids;
  {
    Cache c = OpenCache(tmp.path(), 3 * kSlice);
    ASSERT_TRUE(c.store);
    for (int i = 0; i < 3; ++i) {
      auto d = Content(400 + i, kSlice);
      ids.push_back(IdOf(d));
      ASSERT_TRUE(WriteSlice(*c.store, ids.back(), d).ok());
    }
    ASSERT_TRUE(c.store->Get(ids[0]).ok());  // flushed by the destructor
  }
  Cache c = OpenCache(tmp.path(), 3 * kSlice);
  ASSERT_TRUE(c.store);
  auto d = Content(499, kSlice);
  ASSERT_TRUE(WriteSlice(*c.store, IdOf(d), d).ok());
  EXPECT_TRUE(*c.store->Contains(ids[0]));
  EXPECT_FALSE(*c.store->Contains(ids[1]));
  EXPECT_TRUE(*c.store->Contains(ids[2]));
}

// Nothing pins: a slice held by a reader may be evicted, and its reads
// then say kNotFound (get it again), never other bytes.
TEST(ChunkStoreTest, EvictedWhileHeldReadsNotFound) {
  TempDir tmp;
  constexpr uint64_t kSlice = 100000;
  Cache c = OpenCache(tmp.path(), 2 * kSlice);
  ASSERT_TRUE(c.store);
  auto a = Content(500, kSlice), b = Content(501, kSlice), d = Content(502, kSlice);
  ASSERT_TRUE(WriteSlice(*c.store, IdOf(a), a).ok());
  auto held = c.store->Get(IdOf(a));
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(WriteSlice(*c.store, IdOf(b), b).ok());
  ASSERT_TRUE(WriteSlice(*c.store, IdOf(d), d).ok());  // a is the least recently used: it goes
  EXPECT_FALSE(*c.store->Contains(IdOf(a)));
  std::vector<uint8_t> got(kSlice);
  EXPECT_TRUE((*held)->ReadAt(0, got).IsNotFound());
  ReadPlan plan;
  EXPECT_TRUE((*held)->AppendTo(0, 10, &plan).IsNotFound());
  EXPECT_GE(c.store->Stats()->evictions, 1u);
}

// Slices being written hold the bound: admission says kNoRoomNow (the
// caller serves from memory), and a slice over the bound kTooLarge.
TEST(ChunkStoreTest, TypedAdmission) {
  TempDir tmp;
  constexpr uint64_t kSlice = 100000;
  Cache c = OpenCache(tmp.path(), 2 * kSlice);
  ASSERT_TRUE(c.store);
  auto a = Content(600, kSlice), b = Content(601, kSlice), d = Content(602, kSlice);
  auto wa = c.store->Admit(IdOf(a));
  auto wb = c.store->Admit(IdOf(b));
  ASSERT_TRUE(wa.ok() && wb.ok());
  EXPECT_EQ(wa->admission, Admission::kWrite);
  EXPECT_EQ(wb->admission, Admission::kWrite);
  auto busy = c.store->Admit(IdOf(a));
  ASSERT_TRUE(busy.ok());
  EXPECT_EQ(busy->admission, Admission::kBusyElsewhere);
  auto full = c.store->Admit(IdOf(d));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->admission, Admission::kNoRoomNow);
  SliceId huge{IdOf(d).digest, 2 * kSlice + 1};
  EXPECT_EQ(c.store->Admit(huge)->admission, Admission::kTooLarge);
  // The writer's end wakes a waiter at once (no polling in a process).
  std::thread finish([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(wa->writer->Append(a).ok());
    ASSERT_TRUE(wa->writer->Commit().ok());
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.store->WaitWhileBusy(IdOf(a), t0 + std::chrono::seconds(10)).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  finish.join();
  auto done = c.store->Admit(IdOf(a));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->admission, Admission::kAlreadyComplete);
  // A writer that goes away gives its charge back.
  wb->writer.reset();
  EXPECT_EQ(c.store->Stats()->bytes_used, kSlice);
}

// A map that cannot grow fails writes with MDB_MAP_FULL, as a full disk
// fails them with ENOSPC: both are kNoSpace. The store must then evict,
// lower its bound and keep storing; the environment stays valid.
TEST(ChunkStoreTest, FullDiskLowersTheBoundAndKeepsWriting) {
  TempDir tmp;
  LmdbOptions o;
  o.map_size = uint64_t{8} << 20;
  o.max_map_size = uint64_t{8} << 20;
  o.durable = false;
  auto env = LmdbEnv::Open(tmp.path(), o);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto store = ChunkStore::Open(env->get(), ChunkStoreOptions{.capacity = uint64_t{1} << 30});
  ASSERT_TRUE(store.ok());
  ChunkStore& cs = **store;
  std::vector<std::pair<SliceId, std::vector<uint8_t>>> written;
  for (int i = 0; i < 40; ++i) {
    auto data = Content(800 + i, 700000);
    Status s = WriteSlice(cs, IdOf(data), data);
    ASSERT_TRUE(s.ok()) << "slice " << i << ": " << s.ToString();
    written.emplace_back(IdOf(data), std::move(data));
  }
  ChunkStoreStats st = *cs.Stats();
  EXPECT_GE(st.no_space_events, 1u);
  EXPECT_LT(st.bound, st.capacity);
  EXPECT_LE(st.bytes_used, st.bound);
  EXPECT_GT(st.evictions, 0u);
  // The newest slices are there, bit-exact; evicted ones are simply gone.
  EXPECT_TRUE(ReadsBack(cs, written.back().first, &written.back().second));
  int present = 0;
  for (const auto& [id, data] : written) {
    if (*cs.Contains(id)) {
      ++present;
      EXPECT_TRUE(ReadsBack(cs, id, &data));
    }
  }
  EXPECT_GT(present, 1);
  // A slice larger than the lowered bound is now kTooLarge, not an error.
  SliceId big{written[0].first.digest, st.bound + 1};
  EXPECT_EQ(cs.Admit(big)->admission, Admission::kTooLarge);
}

// Flips one byte of a stored chunk in data.mdb, as bit rot would.
void FlipOnDisk(const std::string& dir, const std::vector<uint8_t>& needle, size_t at) {
  const std::string path = dir + "/data.mdb";
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::vector<uint8_t> all(fs::file_size(path));
  ASSERT_EQ(std::fread(all.data(), 1, all.size(), f), all.size());
  auto it = std::search(all.begin(), all.end(), needle.begin(), needle.end());
  ASSERT_NE(it, all.end()) << "slice bytes not found in data.mdb";
  const long pos = static_cast<long>(it - all.begin() + at);
  uint8_t byte = all[pos] ^ 0x20;
  ASSERT_EQ(std::fseek(f, pos, SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(&byte, 1, 1, f), 1u);
  std::fclose(f);
}

TEST(ChunkStoreTest, FlippedByteOnDiskIsNeverServed) {
  TempDir tmp;
  auto data = Content(700, 3 * kChunkSize + 999);
  SliceId id = IdOf(data);
  {
    Cache c = OpenCache(tmp.path());
    ASSERT_TRUE(WriteSlice(*c.store, id, data).ok());
  }
  // A byte in the second chunk's third block.
  const size_t flip = kChunkSize + 2 * 4096 + 17;
  FlipOnDisk(tmp.path(), std::vector<uint8_t>(data.begin() + kChunkSize, data.begin() + kChunkSize + 64),
             flip - kChunkSize);
  Cache c = OpenCache(tmp.path());
  auto slice = c.store->Get(id);
  ASSERT_TRUE(slice.ok());
  // Bytes away from the damaged block still read (they are still verified).
  std::vector<uint8_t> head(4096);
  ASSERT_TRUE((*slice)->ReadAt(0, head).ok());
  EXPECT_TRUE(std::equal(head.begin(), head.end(), data.begin()));
  // The damaged block: kCorruption from every way of reading it.
  std::vector<uint8_t> one(1);
  EXPECT_TRUE((*slice)->ReadAt(flip, one).IsCorruption());
  ReadPlan plan;
  EXPECT_TRUE((*slice)->AppendTo(flip - 100, 200, &plan).IsCorruption());
  plan.Clear();
  // Discard drops it; it is counted and gone.
  (*slice)->Discard();
  EXPECT_FALSE(*c.store->Contains(id));
  ChunkStoreStats st = *c.store->Stats();
  EXPECT_EQ(st.corrupt_dropped, 1u);
  EXPECT_EQ(st.bytes_used, 0u);
  ASSERT_TRUE(WriteSlice(*c.store, id, data).ok());
  EXPECT_TRUE(ReadsBack(*c.store, id, &data));
}

// Two processes share one directory, both writing (different slices) at
// the same time; both sets are complete afterwards.
TEST(ChunkStoreTest, TwoProcessesShareOneDirectory) {
  TempDir tmp;
  { Cache c = OpenCache(tmp.path()); ASSERT_TRUE(c.store); }
  constexpr int kPer = 15;
  auto slice_size = [](int i) { return uint64_t{kChunkSize} / 2 + static_cast<uint64_t>(i) * 40000; };
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    {
      Cache c = OpenCache(tmp.path());
      if (!c.store) ::_exit(2);
      for (int i = 0; i < kPer && code == 0; ++i) {
        auto d = Content(1000 + i, slice_size(i));
        if (!WriteSlice(*c.store, IdOf(d), d).ok()) code = 3;
      }
    }
    ::_exit(code);
  }
  {
    Cache c = OpenCache(tmp.path());
    ASSERT_TRUE(c.store);
    for (int i = 0; i < kPer; ++i) {
      auto d = Content(2000 + i, slice_size(i));
      ASSERT_TRUE(WriteSlice(*c.store, IdOf(d), d).ok());
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  uint64_t total = 0;
  for (int i = 0; i < kPer; ++i) {
    for (int base : {1000, 2000}) {
      auto d = Content(base + i, slice_size(i));
      EXPECT_TRUE(ReadsBack(*c.store, IdOf(d), &d)) << base + i;
      total += d.size();
    }
  }
  ChunkStoreStats st = *c.store->Stats();
  EXPECT_EQ(st.slices_complete, 2u * kPer);
  EXPECT_EQ(st.bytes_used, total);
}

// A live writer in another process keeps its staging: Open does not
// collect it and BeginSlice of the same slice is refused; once that
// process dies, its staging is collected.
TEST(ChunkStoreTest, LiveOtherProcessStagingKeptDeadOneCollected) {
  TempDir tmp;
  { Cache c = OpenCache(tmp.path()); ASSERT_TRUE(c.store); }
  auto data = Content(77, 3 * kChunkSize);
  SliceId id = IdOf(data);
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Cache c = OpenCache(tmp.path());
    if (!c.store) ::_exit(2);
    auto w = BeginSlice(*c.store, id);
    if (!w.ok()) ::_exit(3);
    if (!(*w)->Append(std::span<const uint8_t>(data).first(2 * kChunkSize + 9)).ok()) ::_exit(4);
    char x = 1;
    if (::write(ready[1], &x, 1) != 1) ::_exit(5);
    if (::read(go[0], &x, 1) != 1) ::_exit(6);
    ::pause();  // killed here
    ::_exit(7);
  }
  char x;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  {
    Cache c = OpenCache(tmp.path());
    ASSERT_TRUE(c.store);
    ChunkStoreStats st = *c.store->Stats();
    EXPECT_EQ(st.gc_at_open.slices, 0u);
    EXPECT_EQ(st.slices_staged, 1u);
    EXPECT_EQ(st.bytes_used, data.size());
    EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
    auto w = BeginSlice(*c.store, id);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().message(), "busy elsewhere");  // Admission::kBusyElsewhere
  }
  ASSERT_EQ(::write(go[1], &x, 1), 1);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  Cache c = OpenCache(tmp.path());
  ASSERT_TRUE(c.store);
  ChunkStoreStats st = *c.store->Stats();
  EXPECT_EQ(st.gc_at_open.slices, 1u);
  EXPECT_EQ(st.gc_at_open.bytes, data.size());
  EXPECT_EQ(st.slices_staged, 0u);
  EXPECT_EQ(st.bytes_used, 0u);
  EXPECT_TRUE(c.store->Get(id).status().IsNotFound());
  ASSERT_TRUE(WriteSlice(*c.store, id, data).ok());
  EXPECT_TRUE(ReadsBack(*c.store, id, &data));
}

// A child writes slices in an endless loop (some with wrong bytes) into a
// small cache, so it also evicts, and is killed with SIGKILL at a random
// moment; several times over one directory. Odd iterations fsync
// (durable), even ones do not: kill -9 leaves the page cache intact, so
// both must hold. After each kill: every visible slice reads back with its
// checksum, bad ones are never visible, the last slice the child committed
// is there, nothing staged remains and the totals match.
TEST(ChunkStoreTest, SurvivesSigkillAtRandomMoments) {
  TempDir tmp;
  constexpr uint64_t kCapacity = 4 << 20;
  constexpr int kIterations = 8;
  constexpr int kPerChild = 12;
  // Fillers are numbered from kFiller. Sizes keep the last two committed
  // slices plus one being written under the capacity, so the last slice
  // the parent heard of can never have been evicted.
  constexpr int kFiller = 1 << 20;
  constexpr uint64_t kFillerSize = kCapacity / 8;
  { Cache c = OpenCache(tmp.path(), kCapacity, true); ASSERT_TRUE(c.store); }
  std::mt19937 rng(12345);
  auto slice_size = [](int n) { return uint64_t{(n * 7919ULL) % (3 * kChunkSize + 17)}; };
  auto is_bad = [&](int n) { return n % 5 == 4 && slice_size(n) != 0; };
  auto make = [&](int n, std::vector<uint8_t>* data) {
    *data = Content(n, slice_size(n));
    SliceId id = IdOf(*data, n % 2 ? HashAlgo::kMd5 : HashAlgo::kSha256);
    if (is_bad(n)) (*data)[data->size() / 2] ^= 0x40;  // a bad download
    return id;
  };
  uint64_t gc_total = 0, commits_total = 0;
  for (int iter = 0; iter < kIterations; ++iter) {
    const bool durable = iter % 2 == 1;
    int progress[2];
    ASSERT_EQ(::pipe(progress), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(progress[0]);
      Cache c = OpenCache(tmp.path(), kCapacity, durable);
      if (!c.store) ::_exit(2);
      int32_t msg = -1;  // opened
      if (::write(progress[1], &msg, 4) != 4) ::_exit(3);
      for (int round = 0; round < 1000; ++round) {
        for (int k = 0; k < kPerChild; ++k) {
          int n = iter * kPerChild + k;
          std::vector<uint8_t> d;
          SliceId id = make(n, &d);
          auto w = BeginSlice(*c.store, id);
          if (!w.ok() || *w == nullptr) continue;
          bool fresh = true;
          for (size_t off = 0; off < d.size(); off += 50000) {
            (*w)->Append(std::span<const uint8_t>(d).subspan(off, std::min<size_t>(50000, d.size() - off)));
          }
          if ((*w)->Commit().ok() && fresh) {
            msg = n;
            if (::write(progress[1], &msg, 4) != 4) ::_exit(4);
          }
        }
        // Push older slices out so the next round writes again (and evicts).
        for (int j = 0; j < 3; ++j) {
          int f = kFiller + round * 3 + j;
          std::vector<uint8_t> d = Content(f, kFillerSize);
          if (WriteSlice(*c.store, IdOf(d), d, 65536).ok()) {
            msg = f;
            if (::write(progress[1], &msg, 4) != 4) ::_exit(4);
          }
        }
      }
      ::_exit(0);
    }
    ::close(progress[1]);
    // Wait until the child has opened the cache (and, every other time,
    // published a slice), then kill it a random moment later.
    int32_t msg = 0;
    bool killed = false;
    auto kill_child = [&] {
      if (!killed) ::kill(child, SIGKILL);
      killed = true;
      int status = 0;
      ::waitpid(child, &status, 0);
    };
    if (::read(progress[0], &msg, 4) != 4 || msg != -1) {
      kill_child();
      FAIL() << "child did not open the cache";
    }
    if (iter % 4 == 0 && ::read(progress[0], &msg, 4) != 4) {
      kill_child();
      FAIL() << "child published nothing";
    }
    int32_t last = iter % 4 == 0 ? msg : -1;
    ::usleep(std::uniform_int_distribution<int>(0, 50000)(rng));
    kill_child();
    while (::read(progress[0], &msg, 4) == 4) {
      last = msg;
      ++commits_total;
    }
    ::close(progress[0]);

    Cache c = OpenCache(tmp.path(), kCapacity, durable);
    ASSERT_TRUE(c.store);
    ChunkStoreStats st = *c.store->Stats();
    gc_total += st.gc_at_open.slices;
    EXPECT_EQ(st.slices_staged, 0u);
    EXPECT_EQ(st.gc_at_open.orphan_chunks, 0u);
    EXPECT_LE(st.bytes_used, kCapacity);
    uint64_t complete = 0, bytes = 0;
    for (int n = 0; n < (iter + 1) * kPerChild; ++n) {
      std::vector<uint8_t> d;
      SliceId id = make(n, &d);
      auto got = c.store->Get(id);
      if (is_bad(n)) {
        EXPECT_TRUE(got.status().IsNotFound()) << n;  // never verified, never visible
        continue;
      }
      if (!got.ok()) {
        EXPECT_TRUE(got.status().IsNotFound()) << got.status().ToString();
        EXPECT_NE(n, last) << "the last committed slice is gone";
        continue;
      }
      EXPECT_TRUE(ReadsBack(*c.store, id, &d)) << n;
      ++complete;
      bytes += d.size();
    }
    if (last >= kFiller) {
      std::vector<uint8_t> d = Content(last, kFillerSize);
      EXPECT_TRUE(ReadsBack(*c.store, IdOf(d), &d)) << "the last committed filler";
    }
    // The filler slices of the children count too; check them by totals.
    EXPECT_LE(complete, st.slices_complete);
    EXPECT_LE(bytes, st.bytes_used);
  }
  RecordProperty("staging_collected", static_cast<int>(gc_total));
  std::cout << "commits seen: " << commits_total << ", dead staging collected: " << gc_total << "\n";
}

// Eight reader threads read (and verify) slices while one thread writes
// new ones and evicts old ones: a read gives the slice's bytes or "evicted",
// nothing else.
TEST(ChunkStoreTest, ConcurrentReadersWhileWriting) {
  TempDir tmp;
  constexpr int kInitial = 16;
  constexpr int kNew = 24;
  auto size_of = [](int i) { return uint64_t{kChunkSize} / 3 + uint64_t(i) * 9973; };
  uint64_t capacity = 0;
  for (int i = 0; i < kInitial + kNew / 2; ++i) capacity += size_of(i);
  Cache c = OpenCache(tmp.path(), capacity);
  ASSERT_TRUE(c.store);
  for (int i = 0; i < kInitial; ++i) {
    auto d = Content(i, size_of(i));
    ASSERT_TRUE(WriteSlice(*c.store, IdOf(d), d).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> reads_ok{0}, failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop.load()) {
        int i = std::uniform_int_distribution<int>(0, kInitial + kNew - 1)(rng);
        auto d = Content(i, size_of(i));
        auto got = c.store->Get(IdOf(d));
        if (!got.ok()) {
          if (!got.status().IsNotFound()) ++failures;
          continue;
        }
        std::vector<uint8_t> buf(d.size());
        Status st = (*got)->ReadAt(0, buf);
        if (st.IsNotFound()) continue;  // evicted since Get (nothing pins): never other bytes
        if (!st.ok() || buf != d) {
          ++failures;
        } else {
          ++reads_ok;
        }
      }
    });
  }
  for (int i = kInitial; i < kInitial + kNew; ++i) {
    auto d = Content(i, size_of(i));
    Status s = WriteSlice(*c.store, IdOf(d), d);
    EXPECT_TRUE(s.ok()) << s.ToString();  // nothing pins: eviction always makes room
    EXPECT_LE(c.store->Stats()->bytes_used, capacity);
  }
  while (reads_ok.load() < 200 && failures.load() == 0) std::this_thread::yield();
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(c.store->Stats()->evictions, 0u);
}

}  // namespace
}  // namespace jigdoofus
