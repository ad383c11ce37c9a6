#include "protocol/command.h"

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "protocol/command_generated.h"

namespace protocol {

namespace fbs = raftkv::protocol::fb;

namespace {

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fbs::Bytes>>> BuildList(
    flatbuffers::FlatBufferBuilder& b, const std::vector<std::string>& items) {
  std::vector<flatbuffers::Offset<fbs::Bytes>> offsets;
  offsets.reserve(items.size());
  for (const std::string& s : items) {
    auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    offsets.push_back(fbs::CreateBytes(b, data));
  }
  return b.CreateVector(offsets);
}

void ReadList(const flatbuffers::Vector<flatbuffers::Offset<fbs::Bytes>>* list,
              std::vector<std::string>* out) {
  out->clear();
  if (list == nullptr) return;
  for (const fbs::Bytes* item : *list) {
    if (item == nullptr || item->data() == nullptr) {
      out->emplace_back();
    } else {
      out->emplace_back(reinterpret_cast<const char*>(item->data()->data()), item->data()->size());
    }
  }
}

}  // namespace

bool OpArgumentsFit(const Op& op) {
  switch (op.code) {
    case OpCode::kSet:
    case OpCode::kAppend:
    case OpCode::kIncrByFloat:
      return op.keys.size() == 1 && op.values.size() == 1 && !(op.nx && op.xx);
    case OpCode::kIncrBy:
    case OpCode::kGetDel:
    case OpCode::kGet:
      return op.keys.size() == 1 && op.values.empty();
    case OpCode::kDel:
      return !op.keys.empty() && op.values.empty();
    case OpCode::kMSet:
      return !op.keys.empty() && op.keys.size() == op.values.size();
    case OpCode::kFlushAll:
      return op.keys.empty() && op.values.empty();
    case OpCode::kSessionOpen:
    case OpCode::kSessionClose:
      return op.keys.empty() && op.values.empty() && op.incr > 0;
  }
  return false;
}

bool Batchable(const Command& cmd) {
  for (const Op& op : cmd.ops) {
    if (op.code == OpCode::kFlushAll || op.code == OpCode::kSessionOpen ||
        op.code == OpCode::kSessionClose) {
      return false;
    }
  }
  return true;
}

std::string EncodeCommand(const Command& cmd) {
  flatbuffers::FlatBufferBuilder b(256);
  std::vector<flatbuffers::Offset<fbs::Op>> ops;
  ops.reserve(cmd.ops.size());
  for (const Op& op : cmd.ops) {
    auto keys = BuildList(b, op.keys);
    auto values = BuildList(b, op.values);
    ops.push_back(fbs::CreateOp(b, static_cast<fbs::OpCode>(op.code), keys, values, op.nx, op.xx,
                                op.get, op.incr));
  }
  auto vec = b.CreateVector(ops);
  b.Finish(fbs::CreateCommand(b, kCommandVersion, cmd.session, cmd.seq, vec, cmd.acked, cmd.time_ms,
                              cmd.create_session));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

namespace {

// Verifies `bytes` as a Command buffer, copied into `aligned` if it does not start where the
// verifier needs it to.
common::Status Verify(std::string_view bytes, std::vector<uint64_t>* aligned,
                      const fbs::Command** out) {
  if (bytes.size() > kMaxCommandBytes) return common::Status::InvalidArgument("command too large");
  // The verifier checks alignment against the buffer's start: give it an aligned buffer.
  const char* data = bytes.data();
  if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) {
    aligned->resize(bytes.size() / sizeof(uint64_t) + 1);
    std::memcpy(aligned->data(), bytes.data(), bytes.size());
    data = reinterpret_cast<const char*>(aligned->data());
  }
  // Shallow and bounded: a command has three levels of tables, at most one per 4 bytes.
  flatbuffers::Verifier verifier(
      reinterpret_cast<const uint8_t*>(data), bytes.size(),
      /*max_depth=*/8,
      /*max_tables=*/static_cast<flatbuffers::uoffset_t>(bytes.size() / 4 + 16));
  if (!fbs::VerifyCommandBuffer(verifier)) {
    return common::Status::InvalidArgument("command fails verification");
  }
  *out = fbs::GetCommand(data);
  return common::Status::OK();
}

// A verified version-1 command of `size` bytes.
common::Status Read(const fbs::Command* c, size_t size, Command* out);

}  // namespace

std::string EncodeBatch(std::span<const std::string> commands) {
  CHECK(commands.size() >= 2) << "a batch of " << commands.size() << " commands";
  size_t bytes = 64;
  for (const std::string& c : commands) bytes += c.size() + 16;
  flatbuffers::FlatBufferBuilder b(bytes);
  std::vector<flatbuffers::Offset<fbs::Bytes>> items;
  items.reserve(commands.size());
  for (const std::string& c : commands) {
    // 8-byte aligned, so that decoding each needs no copy to verify it.
    b.ForceVectorAlignment(c.size(), 1, alignof(uint64_t));
    auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(c.data()), c.size());
    items.push_back(fbs::CreateBytes(b, data));
  }
  auto batch = b.CreateVector(items);
  fbs::CommandBuilder cb(b);
  cb.add_version(kBatchVersion);
  cb.add_batch(batch);
  b.Finish(cb.Finish());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

common::Status DecodeCommand(std::string_view bytes, Command* out) {
  std::vector<uint64_t> aligned;
  const fbs::Command* c = nullptr;
  common::Status s = Verify(bytes, &aligned, &c);
  if (!s.ok()) return s;
  if (c->version() != kCommandVersion) {
    return common::Status::InvalidArgument("unknown command version " +
                                           std::to_string(c->version()));
  }
  return Read(c, bytes.size(), out);
}

common::Status DecodeEntry(std::string_view bytes, std::vector<Command>* out) {
  std::vector<uint64_t> aligned;
  const fbs::Command* c = nullptr;
  common::Status s = Verify(bytes, &aligned, &c);
  if (!s.ok()) return s;
  if (c->version() == kCommandVersion) {
    out->resize(1);
    return Read(c, bytes.size(), &(*out)[0]);
  }
  if (c->version() != kBatchVersion) {
    return common::Status::InvalidArgument("unknown command version " +
                                           std::to_string(c->version()));
  }
  if ((c->ops() != nullptr && c->ops()->size() != 0) || c->session() != 0 || c->seq() != 0 ||
      c->acked() != 0 || c->time_ms() != 0 || c->create_session()) {
    return common::Status::InvalidArgument("a batch has fields besides its commands");
  }
  out->clear();
  if (c->batch() == nullptr || c->batch()->size() == 0) {
    return common::Status::InvalidArgument("empty batch");
  }
  if (c->batch()->size() > kMaxBatchCommands) {
    return common::Status::InvalidArgument("batch of more than " +
                                           std::to_string(kMaxBatchCommands) + " commands");
  }
  // Grown one command at a time: what is decoded is bounded by the bytes checked so far.
  size_t total = 0;
  for (flatbuffers::uoffset_t i = 0; i < c->batch()->size(); i++) {
    const fbs::Bytes* item = c->batch()->Get(i);
    if (item == nullptr || item->data() == nullptr) {
      return common::Status::InvalidArgument("empty command in a batch");
    }
    std::string_view one(reinterpret_cast<const char*>(item->data()->data()), item->data()->size());
    total += one.size();
    if (total > bytes.size()) {
      return common::Status::InvalidArgument("batch refers to the same command more than once");
    }
    out->emplace_back();
    s = DecodeCommand(one, &out->back());  // version 1 only: batches do not nest
    if (!s.ok())
      return common::Status::InvalidArgument("command " + std::to_string(i) +
                                             " of a batch: " + s.message());
    if (!Batchable(out->back())) {
      return common::Status::InvalidArgument("command " + std::to_string(i) +
                                             " of a batch must be an entry of its own");
    }
  }
  return common::Status::OK();
}

namespace {

common::Status Read(const fbs::Command* c, size_t size, Command* out) {
  if (c->batch() != nullptr) return common::Status::InvalidArgument("a command with a batch");
  out->session = c->session();
  out->seq = c->seq();
  out->acked = c->acked();
  out->time_ms = c->time_ms();
  out->create_session = c->create_session();
  out->ops.clear();
  if (c->ops() == nullptr || c->ops()->size() == 0) {
    return common::Status::InvalidArgument("command has no operation");
  }
  size_t decoded = 0;
  for (const fbs::Op* o : *c->ops()) {
    if (o == nullptr) return common::Status::InvalidArgument("empty operation");
    if (static_cast<uint8_t>(o->code()) > static_cast<uint8_t>(fbs::OpCode_MAX)) {
      return common::Status::InvalidArgument("unknown op code");
    }
    Op op;
    op.code = static_cast<OpCode>(o->code());
    ReadList(o->keys(), &op.keys);
    ReadList(o->values(), &op.values);
    // A FlatBuffer may point many times at one byte string: refuse a command whose keys and
    // values add up to more than its own size (memory amplification).
    for (const std::string& k : op.keys) decoded += k.size();
    for (const std::string& v : op.values) decoded += v.size();
    if (decoded > size) {
      return common::Status::InvalidArgument("command refers to the same data more than once");
    }
    op.nx = o->nx();
    op.xx = o->xx();
    op.get = o->get();
    op.incr = o->incr();
    if (!OpArgumentsFit(op))
      return common::Status::InvalidArgument("operation arguments do not fit");
    out->ops.push_back(std::move(op));
  }
  const bool session_op =
      out->ops[0].code == OpCode::kSessionOpen || out->ops[0].code == OpCode::kSessionClose;
  if (session_op && (out->ops.size() != 1 || out->session != 0)) {
    return common::Status::InvalidArgument("a session operation must be a command of its own");
  }
  for (size_t i = 1; i < out->ops.size(); i++) {
    if (out->ops[i].code == OpCode::kSessionOpen || out->ops[i].code == OpCode::kSessionClose) {
      return common::Status::InvalidArgument("a session operation must be a command of its own");
    }
  }
  return common::Status::OK();
}

}  // namespace

}  // namespace protocol
