// Tests for LmdbEnv (schema, errors, multi-process) and
// LmdbVerificationStore, against real LMDB in temp directories.
#include "cache/lmdb_env.h"
#include "tests/unit/temp_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace jigdoofus {
namespace {

namespace fs = std::filesystem;

using testing_util::TempDir;

LmdbOptions SmallOptions() {
  LmdbOptions o;
  o.map_size = uint64_t{64} << 20;
  o.durable = false;
  return o;
}

void PutSchema(const std::string& dir, uint32_t version) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 4);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
  uint8_t v[4] = {static_cast<uint8_t>(version), static_cast<uint8_t>(version >> 8), 0, 0};
  MDB_val k{6, const_cast<char*>("schema")}, val{4, v};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &val, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST(LmdbEnvTest, CreatesNestedDirectoryWithPrivateMode) {
  TempDir tmp;
  std::string dir = tmp.path() + "/a/b/cache";
  auto env = LmdbEnv::Open(dir, SmallOptions());
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(fs::exists(dir + "/data.mdb"));
  EXPECT_TRUE(fs::exists(dir + "/lock.mdb"));
  EXPECT_EQ((*env)->dir(), dir);
}

TEST(LmdbEnvTest, SchemaWrittenAndReopened) {
  TempDir tmp;
  {
    auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    auto dbi = (*env)->OpenDb("meta");
    ASSERT_TRUE(dbi.ok());
    auto txn = LmdbTxn::Begin(**env, true);
    ASSERT_TRUE(txn.ok());
    auto v = txn->Get(*dbi, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("schema"), 6));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(v->size(), 4u);
    EXPECT_EQ((*v)[0], kCacheSchemaVersion & 0xff);
  }
  auto again = LmdbEnv::Open(tmp.path(), SmallOptions());
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(LmdbEnvTest, OtherSchemaVersionRefused) {
  TempDir tmp;
  PutSchema(tmp.path(), kCacheSchemaVersion + 6);
  auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(env.ok());
  const std::string& msg = env.status().message();
  EXPECT_NE(msg.find(tmp.path()), std::string::npos) << msg;
  EXPECT_NE(msg.find("cache schema version " + std::to_string(kCacheSchemaVersion + 6)), std::string::npos) << msg;
  EXPECT_NE(msg.find("this jigdoofus uses " + std::to_string(kCacheSchemaVersion)), std::string::npos) << msg;
  EXPECT_NE(msg.find("--cache-dir"), std::string::npos) << msg;
}

TEST(LmdbEnvTest, PathThatIsAFileRefused) {
  TempDir tmp;
  std::string file = tmp.path() + "/plain";
  std::ofstream(file) << "hello";
  auto env = LmdbEnv::Open(file, SmallOptions());
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find(file + ": not a directory"), std::string::npos)
      << env.status().ToString();
}

TEST(LmdbEnvTest, GarbageDataFileRefused) {
  TempDir tmp;
  {
    std::ofstream f(tmp.path() + "/data.mdb", std::ios::binary);
    std::string junk(16384, 'x');
    f << junk;
  }
  auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), Status::Code::kCorruption) << env.status().ToString();
  EXPECT_NE(env.status().message().find(tmp.path() + "/data.mdb"), std::string::npos)
      << env.status().ToString();
  // The garbage is left alone.
  EXPECT_EQ(fs::file_size(tmp.path() + "/data.mdb"), 16384u);
}

TEST(LmdbEnvTest, ForeignLmdbDatabaseRefused) {
  TempDir tmp;
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, tmp.path().c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
  MDB_val k{3, const_cast<char*>("key")}, v{5, const_cast<char*>("value")};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  auto opened = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("not a jigdoofus cache"), std::string::npos)
      << opened.status().ToString();
}

TEST(LmdbEnvTest, SecondOpenInOneProcessRefused) {
  TempDir tmp;
  auto a = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_TRUE(a.ok());
  auto b = LmdbEnv::Open(tmp.path() + "/.", SmallOptions());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("already open"), std::string::npos) << b.status().ToString();
  a->reset();
  auto c = LmdbEnv::Open(tmp.path(), SmallOptions());
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

TEST(LmdbEnvTest, MapGrowsWhenFull) {
  TempDir tmp;
  LmdbOptions o = SmallOptions();
  o.map_size = 1 << 20;  // 1 MiB: 4 MiB of values cannot fit
  auto env = LmdbEnv::Open(tmp.path(), o);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto dbi = (*env)->OpenDb("blobs");
  ASSERT_TRUE(dbi.ok());
  std::vector<uint8_t> blob(256 * 1024, 0xab);
  for (uint8_t i = 0; i < 16; ++i) {
    uint8_t key[1] = {i};
    Status s = (*env)->Update([&](LmdbTxn& txn) { return txn.Put(*dbi, key, blob); });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_GT((*env)->map_size(), uint64_t{1} << 20);
  Status s = (*env)->View([&](LmdbTxn& txn) -> Status {
    uint8_t key[1] = {15};
    auto v = txn.Get(*dbi, key);
    if (!v.ok()) return v.status();
    EXPECT_EQ(v->size(), blob.size());
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// Group commit: callers that queue while a group commits go into the next
// group together (one transaction); a failing fn fails only its caller.
TEST(LmdbEnvTest, GroupedUpdatesShareATransactionAndFailAlone) {
  TempDir tmp;
  auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  LmdbEnv& e = **env;
  auto dbi = e.OpenDb("grouped");
  ASSERT_TRUE(dbi.ok());
  constexpr int kFollowers = 7;
  auto put = [&](uint8_t k) {
    return [&e, dbi = *dbi, k](LmdbTxn& txn) {
      uint8_t key[1] = {k};
      uint8_t value[2] = {k, 0x5a};
      return txn.Put(dbi, key, value);
    };
  };
  // The first caller leads; its fn waits until the others have queued, so
  // they must all go into the second group.
  Status first;
  std::atomic<bool> leading{false};
  std::thread leader([&] {
    auto put0 = put(0);
    first = e.UpdateGrouped([&](LmdbTxn& txn) {
      leading = true;
      while (e.group_commit_stats().queued < kFollowers) std::this_thread::yield();
      return put0(txn);
    });
  });
  while (!leading) std::this_thread::yield();
  std::vector<Status> results(kFollowers);
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.emplace_back([&, i] {
      const uint8_t k = static_cast<uint8_t>(i + 1);
      if (k == 4) {  // this one fails: the others still commit
        results[i] = e.UpdateGrouped([](LmdbTxn&) { return Status::IOError("fn 4 fails"); });
      } else {
        results[i] = e.UpdateGrouped(put(k));
      }
    });
  }
  leader.join();
  for (std::thread& t : followers) t.join();
  ASSERT_TRUE(first.ok()) << first.ToString();
  for (int i = 0; i < kFollowers; ++i) {
    if (i + 1 == 4) {
      EXPECT_EQ(results[i].code(), Status::Code::kIOError);
    } else {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    }
  }
  LmdbEnv::GroupCommitStats st = e.group_commit_stats();
  EXPECT_EQ(st.transactions, 2u);
  EXPECT_EQ(st.ops, 1u + kFollowers);
  EXPECT_EQ(st.fallbacks, 1u);
  EXPECT_EQ(st.queued, 0u);
  Status s = e.View([&](LmdbTxn& txn) -> Status {
    for (uint8_t k = 0; k <= kFollowers; ++k) {
      uint8_t key[1] = {k};
      auto v = txn.Get(*dbi, key);
      EXPECT_EQ(v.ok(), k != 4) << int{k};
      if (v.ok()) {
        EXPECT_EQ(v->size(), 2u);
        EXPECT_EQ((*v)[0], k);
      }
    }
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(LmdbEnvTest, MapFullAtMaximumIsAClearError) {
  TempDir tmp;
  LmdbOptions o = SmallOptions();
  o.map_size = 1 << 20;
  o.max_map_size = 1 << 20;
  auto env = LmdbEnv::Open(tmp.path(), o);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto dbi = (*env)->OpenDb("blobs");
  ASSERT_TRUE(dbi.ok());
  std::vector<uint8_t> blob(2 << 20, 1);
  uint8_t key[1] = {1};
  Status s = (*env)->Update([&](LmdbTxn& txn) { return txn.Put(*dbi, key, blob); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.ToString();
  EXPECT_NE(s.message().find(tmp.path()), std::string::npos) << s.ToString();
}

FileKey SampleKey(uint64_t ino) {
  FileKey k;
  k.dev = 0x0801;
  k.ino = ino;
  k.size = 123456789;
  k.mtime_ns = 1700000000123456789;
  k.ctime_ns = -5;  // negative times are legal
  return k;
}

Digest SampleDigest(HashAlgo algo, uint8_t seed) {
  std::vector<uint8_t> raw(DigestSize(algo));
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(seed + i * 7);
  return Digest::FromBytes(algo, raw);
}

TEST(LmdbVerificationStoreTest, RecordsRoundTripAndSurviveReopen) {
  TempDir tmp;
  {
    auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    auto store = LmdbVerificationStore::Open(env->get());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_FALSE((*store)->Lookup(SampleKey(1), HashAlgo::kMd5).has_value());
    ASSERT_TRUE((*store)->Record(SampleKey(1), SampleDigest(HashAlgo::kMd5, 3)).ok());
    ASSERT_TRUE((*store)->Record(SampleKey(1), SampleDigest(HashAlgo::kSha256, 9)).ok());
    ASSERT_TRUE((*store)->Record(SampleKey(2), SampleDigest(HashAlgo::kMd5, 4)).ok());
    auto md5 = (*store)->Lookup(SampleKey(1), HashAlgo::kMd5);
    ASSERT_TRUE(md5.has_value());
    EXPECT_EQ(*md5, SampleDigest(HashAlgo::kMd5, 3));
  }
  auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto store = LmdbVerificationStore::Open(env->get());
  ASSERT_TRUE(store.ok());
  auto md5 = (*store)->Lookup(SampleKey(1), HashAlgo::kMd5);
  auto sha = (*store)->Lookup(SampleKey(1), HashAlgo::kSha256);
  auto other = (*store)->Lookup(SampleKey(2), HashAlgo::kMd5);
  ASSERT_TRUE(md5 && sha && other);
  EXPECT_EQ(*md5, SampleDigest(HashAlgo::kMd5, 3));
  EXPECT_EQ(*sha, SampleDigest(HashAlgo::kSha256, 9));
  EXPECT_EQ(*other, SampleDigest(HashAlgo::kMd5, 4));
  // A changed file (any stat field) is a different key: never found.
  FileKey changed = SampleKey(1);
  changed.mtime_ns += 1;
  EXPECT_FALSE((*store)->Lookup(changed, HashAlgo::kMd5).has_value());
  changed = SampleKey(1);
  changed.size -= 1;
  EXPECT_FALSE((*store)->Lookup(changed, HashAlgo::kSha256).has_value());
  // Overwriting a record replaces it.
  ASSERT_TRUE((*store)->Record(SampleKey(2), SampleDigest(HashAlgo::kMd5, 40)).ok());
  EXPECT_EQ(*(*store)->Lookup(SampleKey(2), HashAlgo::kMd5), SampleDigest(HashAlgo::kMd5, 40));
}

// Parent and a forked child write records into one directory at the same
// time; both sets are visible afterwards.
TEST(LmdbVerificationStoreTest, TwoProcessesShareOneDirectory) {
  TempDir tmp;
  { ASSERT_TRUE(LmdbEnv::Open(tmp.path(), SmallOptions()).ok()); }  // create it first
  constexpr int kPerProcess = 200;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    {
      auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
      if (!env.ok()) ::_exit(2);
      auto store = LmdbVerificationStore::Open(env->get());
      if (!store.ok()) ::_exit(3);
      for (int i = 0; i < kPerProcess && code == 0; ++i) {
        if (!(*store)->Record(SampleKey(100000 + i), SampleDigest(HashAlgo::kSha256, i)).ok()) code = 4;
      }
    }
    ::_exit(code);
  }
  {
    auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    auto store = LmdbVerificationStore::Open(env->get());
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < kPerProcess; ++i) {
      ASSERT_TRUE((*store)->Record(SampleKey(i), SampleDigest(HashAlgo::kMd5, i)).ok());
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  auto env = LmdbEnv::Open(tmp.path(), SmallOptions());
  ASSERT_TRUE(env.ok());
  auto store = LmdbVerificationStore::Open(env->get());
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < kPerProcess; ++i) {
    auto a = (*store)->Lookup(SampleKey(i), HashAlgo::kMd5);
    auto b = (*store)->Lookup(SampleKey(100000 + i), HashAlgo::kSha256);
    ASSERT_TRUE(a && b) << i;
    EXPECT_EQ(*a, SampleDigest(HashAlgo::kMd5, i));
    EXPECT_EQ(*b, SampleDigest(HashAlgo::kSha256, i));
  }
}

}  // namespace
}  // namespace jigdoofus
