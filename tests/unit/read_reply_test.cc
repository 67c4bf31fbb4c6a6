// The read reply policy (fs/read_reply.h): what is spliced, what copied.
#include "fs/read_reply.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/unique_fd.h"
#include "tests/unit/temp_dir.h"

namespace jigdoofus {
namespace {

class ReadReplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tmp_.path() + "/f";
    UniqueFd w(::open(path_.c_str(), O_CREAT | O_WRONLY, 0644));
    content_.resize(1 << 20);
    for (size_t i = 0; i < content_.size(); ++i) content_[i] = static_cast<char>(i * 31 + 7);
    ASSERT_EQ(::write(w.get(), content_.data(), content_.size()), static_cast<ssize_t>(content_.size()));
    fd_.reset(::open(path_.c_str(), O_RDONLY));
    ASSERT_TRUE(fd_.valid());
  }
  std::string Bytes(const ReadPlan& plan) {
    std::string out(plan.size, '\0');
    EXPECT_TRUE(CopyPlan(plan, reinterpret_cast<uint8_t*>(out.data())).ok());
    return out;
  }
  testing_util::TempDir tmp_;
  std::string path_, content_;
  UniqueFd fd_;
  SpliceBudget budget_{1 << 20};
  BufferPool pool_{768 << 10, 2};
};

TEST_F(ReadReplyTest, LiteralOnlyIsSentFromThePlan) {
  ReadPlan plan;
  std::memcpy(plan.AppendMemory(5).data(), "hello", 5);
  auto r = BuildReadReply(plan, {true, 0, &budget_, &pool_});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ReadReply::Kind::kMemory);
  EXPECT_EQ(r->data, plan.memory.get());  // no copy
  EXPECT_FALSE(r->lease.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->data), r->size), "hello");
}

TEST_F(ReadReplyTest, FileRangesThatFitAreSpliced) {
  ReadPlan plan;
  plan.AppendFile(fd_.get(), 100, 1000);
  std::memcpy(plan.AppendMemory(3).data(), "abc", 3);
  plan.AppendFile(fd_.get(), 5000, 2000);
  auto r = BuildReadReply(plan, {true, 0, &budget_, &pool_});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kind, ReadReply::Kind::kFileBacked);
  ASSERT_EQ(r->bufv->count, 3u);
  EXPECT_EQ(r->bufv->buf[0].fd, fd_.get());
  EXPECT_EQ(r->bufv->buf[0].pos, 100);
  EXPECT_EQ(r->bufv->buf[2].pos, 5000);
  EXPECT_EQ(Bytes(plan), content_.substr(100, 1000) + "abc" + content_.substr(5000, 2000));
}

TEST_F(ReadReplyTest, SmallRepliesAreCopiedLargeOnesSpliced) {
  ReadPlan small, large;
  small.AppendFile(fd_.get(), 0, 4096);
  small.AppendFile(fd_.get(), 10000, 4096);
  large.AppendFile(fd_.get(), 0, kMinSpliceBytes);
  large.AppendFile(fd_.get(), 300000, 4096);
  auto s = BuildReadReply(small, {true, kMinSpliceBytes, &budget_, &pool_});
  auto l = BuildReadReply(large, {true, kMinSpliceBytes, &budget_, &pool_});
  ASSERT_TRUE(s.ok() && l.ok());
  EXPECT_EQ(s->kind, ReadReply::Kind::kMemory);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(s->data), s->size), content_.substr(0, 4096) + content_.substr(10000, 4096));
  EXPECT_EQ(l->kind, ReadReply::Kind::kFileBacked);
}

TEST_F(ReadReplyTest, AdjacentRangesMerge) {
  ReadPlan plan;
  plan.AppendFile(fd_.get(), 0, 4096);
  plan.AppendFile(fd_.get(), 4096, 4096);
  EXPECT_EQ(plan.parts.size(), 1u);
  EXPECT_EQ(plan.parts[0].length, 8192u);
}

TEST_F(ReadReplyTest, SpliceOffOrTooManyPartsIsCopiedIntoAPooledBuffer) {
  ReadPlan plan;
  for (int i = 0; i < 300; ++i) {  // more buffers than the pipe holds
    plan.AppendFile(fd_.get(), static_cast<uint64_t>(i) * 2000, 1000);
    plan.AppendMemory(1)[0] = 'x';
  }
  auto r = BuildReadReply(plan, {true, 0, &budget_, &pool_});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ReadReply::Kind::kMemory);
  EXPECT_TRUE(r->lease.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->data), r->size), Bytes(plan));

  ReadPlan small;
  small.AppendFile(fd_.get(), 10, 10);
  auto off = BuildReadReply(small, {false, 0, &budget_, &pool_});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->kind, ReadReply::Kind::kMemory);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(off->data), off->size), content_.substr(10, 10));
}

TEST_F(ReadReplyTest, ACopyOfAFileThatShrankFails) {
  ReadPlan plan;
  plan.AppendFile(fd_.get(), content_.size() - 10, 10);
  plan.AppendMemory(1);
  ASSERT_EQ(::truncate(path_.c_str(), static_cast<off_t>(content_.size() - 5)), 0);
  auto r = BuildReadReply(plan, {false, 0, &budget_, &pool_});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
}

TEST_F(ReadReplyTest, EmptyPlanIsAnEmptyReply) {
  ReadPlan plan;
  auto r = BuildReadReply(plan, {true, 0, &budget_, &pool_});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ReadReply::Kind::kEmpty);
}

}  // namespace
}  // namespace jigdoofus
