#include "fs/read_reply.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "core/byte_source.h"

namespace jigdoofus {

namespace {

BufVecPtr MakeBufVec(const ReadPlan& plan) {
  const size_t n = std::max<size_t>(1, plan.parts.size());
  void* raw = std::calloc(1, sizeof(fuse_bufvec) + (n - 1) * sizeof(fuse_buf));
  if (raw == nullptr) throw std::bad_alloc();
  BufVecPtr v(static_cast<fuse_bufvec*>(raw));
  v->count = plan.parts.size();
  for (size_t i = 0; i < plan.parts.size(); ++i) {
    const ReadPlan::Part& part = plan.parts[i];
    fuse_buf& b = v->buf[i];
    b.size = part.length;
    if (part.fd >= 0) {
      b.flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      b.fd = part.fd;
      b.pos = static_cast<off_t>(part.pos);
    } else {
      b.mem = const_cast<uint8_t*>(plan.memory.get() + part.pos);
    }
  }
  return v;
}

}  // namespace

Status CopyPlan(const ReadPlan& plan, uint8_t* out) {
  size_t done = 0;
  for (const ReadPlan::Part& part : plan.parts) {
    if (part.fd < 0) {
      std::memcpy(out + done, plan.memory.get() + part.pos, part.length);
    } else {
      JIGDOOFUS_ASSIGN_OR_RETURN(size_t got, PreadFully(part.fd, part.pos, {out + done, part.length}, "slice file"));
      if (got != part.length) {
        return Status::IOError("slice file ended " + std::to_string(part.length - got) + " bytes early");
      }
    }
    done += part.length;
  }
  return Status::OK();
}

Result<ReadReply> BuildReadReply(const ReadPlan& plan, const ReplyPolicy& policy) {
  ReadReply reply;
  reply.size = plan.size;
  if (plan.parts.empty()) return reply;
  if (plan.parts.size() == 1 && plan.parts[0].fd < 0) {
    reply.kind = ReadReply::Kind::kMemory;  // literal bytes only: already in memory
    reply.data = plan.memory.get() + plan.parts[0].pos;
    return reply;
  }
  if (policy.splice && plan.size >= policy.min_splice_bytes && policy.budget != nullptr &&
      policy.budget->Fits(plan.size, plan.parts.size())) {
    reply.kind = ReadReply::Kind::kFileBacked;
    reply.bufv = MakeBufVec(plan);
    return reply;
  }
  // libfuse would copy into a fresh buffer; copy into a reused one.
  uint8_t* buf;
  if (policy.buffers != nullptr && plan.size <= policy.buffers->buffer_size()) {
    reply.lease.emplace(policy.buffers->Get());
    buf = reply.lease->data();
  } else {
    reply.large = std::make_unique_for_overwrite<uint8_t[]>(plan.size);
    buf = reply.large.get();
  }
  JIGDOOFUS_RETURN_IF_ERROR(CopyPlan(plan, buf));
  reply.kind = ReadReply::Kind::kMemory;
  reply.data = buf;
  return reply;
}

}  // namespace jigdoofus
