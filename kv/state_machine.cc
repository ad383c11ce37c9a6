#include "kv/state_machine.h"

#include <fcntl.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>

#include "common/check.h"
#include "common/coding.h"
#include "common/strings.h"
#include "kv/durable_env.h"
#include "kv/keys.h"
#include "kv/leveldb_status.h"
#include "kv/pending_writes.h"
#include "kv/sessions.h"
#include "kv/torn_tail.h"
#include "kv/value_cache.h"

namespace kv {

namespace {

std::string_view View(const leveldb::Slice& s) { return std::string_view(s.data(), s.size()); }

// A number as Redis 7.0 reads one for INCRBYFLOAT (string2ld): strtold's syntax (decimal,
// hexadecimal such as 0x10 or 0x1p-2, inf or infinity in any case, an optional sign), the whole
// text and nothing else (no spaces around it, no NUL inside), shorter than 5120 bytes, not NaN.
// raftkv computes in IEEE binary64 (docs/commands.md), so the text is read with strtod, which
// rounds correctly (the same double on every node), in the "C" locale whatever the process's.
// Infinity is accepted here; the sum then fails as Redis's does ("increment would produce NaN or
// Infinity"). A number beyond a double's range reads as infinite, and fails the same way; one too
// small for a double reads as 0 or a subnormal.
bool ParseDouble(std::string_view s, double* out) {
  if (s.empty() || s.size() >= 5120) return false;
  if (std::string_view(" \t\n\v\f\r").find(s[0]) != std::string_view::npos) return false;
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t{});
  CHECK(c_locale != locale_t{}) << "newlocale(\"C\") failed";
  const std::string text(s);  // NUL-terminated for strtod
  char* end = nullptr;
  const double v = strtod_l(text.c_str(), &end, c_locale);
  if (end != text.c_str() + text.size() || std::isnan(v)) return false;
  *out = v;
  return true;
}

// The shortest decimal, in fixed notation, that reads back as the same double ("10.6", not
// "10.5999999999999996447"): the same text on every machine.
std::string FormatDouble(double v) {
  char buf[512];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  CHECK(ec == std::errc()) << "formatting " << v;
  std::string s(buf, ptr);
  if (s == "-0") s = "0";
  return s;
}

OpResult Ok() { return {}; }
OpResult Nil() { return {OpResult::Kind::kNil, 0, ""}; }
OpResult Int(int64_t v) { return {OpResult::Kind::kInt, v, ""}; }
OpResult Bulk(std::string v) { return {OpResult::Kind::kBulk, 0, std::move(v)}; }
OpResult Error(std::string text) { return {OpResult::Kind::kError, 0, std::move(text)}; }

}  // namespace

std::string EncodeResults(const std::vector<OpResult>& results) {
  std::string out;
  common::PutFixed32(&out, static_cast<uint32_t>(results.size()));
  for (const OpResult& r : results) {
    out.push_back(static_cast<char>(r.kind));
    common::PutFixed64(&out, static_cast<uint64_t>(r.integer));
    common::PutFixed32(&out, static_cast<uint32_t>(r.bulk.size()));
    out += r.bulk;
  }
  return out;
}

bool DecodeResults(std::string_view in, std::vector<OpResult>* results) {
  uint32_t n;
  if (!common::GetFixed32(&in, &n)) return false;
  results->clear();
  for (uint32_t i = 0; i < n; i++) {
    if (in.empty()) return false;
    auto kind = static_cast<uint8_t>(in[0]);
    if (kind > static_cast<uint8_t>(OpResult::Kind::kError)) return false;
    in.remove_prefix(1);
    uint64_t integer;
    uint32_t len;
    if (!common::GetFixed64(&in, &integer) || !common::GetFixed32(&in, &len) || in.size() < len) {
      return false;
    }
    results->push_back({static_cast<OpResult::Kind>(kind), static_cast<int64_t>(integer),
                        std::string(in.substr(0, len))});
    in.remove_prefix(len);
  }
  return in.empty();
}

// ---- Opening and generations ----

StateMachine::StateMachine(std::string dir, leveldb::Env* env, size_t value_cache_bytes)
    : dir_(std::move(dir)),
      base_env_(env),
      env_(std::make_shared<DurableEnv>(env)),
      cache_(std::make_unique<ValueCache>(value_cache_bytes)),
      sessions_(std::make_unique<SessionTable>()) {}

namespace {

// The state's tables carry Bloom filters (10 bits a key, about 1 % false positives): a read of
// a key, by GET or by an apply (which reads every key it writes, for the key count), then
// reads one table instead of every table of level 0 and one per level below. Filters are
// kept in memory while a table is open: about 1.25 bytes a key.
const leveldb::FilterPolicy* Filter() {
  static const leveldb::FilterPolicy* const policy = leveldb::NewBloomFilterPolicy(10);
  return policy;
}

}  // namespace
StateMachine::~StateMachine() = default;

uint64_t StateMachine::session_count() const { return sessions_->count(); }
uint64_t StateMachine::cluster_time_ms() const { return sessions_->cluster_time_ms(); }

std::string StateMachine::GenerationPath(uint64_t generation) const {
  return dir_ + "/state-" + std::to_string(generation);
}

common::Status StateMachine::Open(const std::string& dir, const Options& options,
                                  std::unique_ptr<StateMachine>* out) {
  leveldb::Env* env = options.env != nullptr ? options.env : leveldb::Env::Default();
  env->CreateDir(dir);  // may exist already
  std::unique_ptr<StateMachine> sm(new StateMachine(dir, env, options.value_cache_bytes));
  uint64_t generation = 0;
  std::string pointer;
  leveldb::Status s = leveldb::ReadFileToString(env, dir + "/STATE", &pointer);
  if (s.ok()) {
    char* end = nullptr;
    generation = std::strtoull(pointer.c_str(), &end, 10);
    if (pointer.empty() || end == nullptr || *end != '\n') {
      return common::Status::Corruption("state pointer " + dir + "/STATE is unreadable");
    }
  } else if (env->FileExists(dir + "/STATE")) {
    return FromLevelDB(s, "read " + dir + "/STATE");
  }
  common::Status st = sm->OpenGeneration(generation);
  if (!st.ok()) return st;
  // Leftovers of an install that did not finish, or of a generation replaced before a crash.
  std::vector<std::string> children;
  if (env->GetChildren(dir, &children).ok()) {
    for (const std::string& name : children) {
      if (name.rfind("state-", 0) == 0 && name != "state-" + std::to_string(generation)) {
        leveldb::Options o;
        o.env = env;
        leveldb::DestroyDB(dir + "/" + name, o);
      }
    }
  }
  *out = std::move(sm);
  return common::Status::OK();
}

common::Status StateMachine::OpenGeneration(uint64_t generation) {
  leveldb::Options o;
  o.env = env_.get();
  o.filter_policy = Filter();
  o.create_if_missing = true;
  o.paranoid_checks = true;
  leveldb::DB* db = nullptr;
  std::string path = GenerationPath(generation);
  int trimmed = 0;
  common::Status t = TrimTornTails(env_.get(), path, &trimmed);
  if (!t.ok()) return t;
  leveldb::Status s = leveldb::DB::Open(o, path, &db);
  if (!s.ok()) return FromLevelDB(s, "open state " + path);
  // A snapshot reader may hold the database past this state machine: keep the Env with it.
  std::shared_ptr<leveldb::Env> env = env_;
  std::shared_ptr<leveldb::DB> owned(db, [env](leveldb::DB* d) { delete d; });
  std::string value;
  raft::Index index = 0;
  raft::Term term = 0;
  s = owned->Get(leveldb::ReadOptions(), std::string(keys::kApplied), &value);
  if (s.ok()) {
    if (!keys::DecodeApplied(value, &index, &term)) {
      return common::Status::Corruption("state " + path + ": applied index fails its checksum");
    }
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "state " + path + ": read applied index");
  }
  // The key count has its own record (a restart with millions of keys must not read them all
  // before serving); a state written before it was kept has its keys counted here.
  uint64_t count = 0;
  s = owned->Get(leveldb::ReadOptions(), std::string(keys::kKeyCount), &value);
  if (s.ok()) {
    if (!keys::DecodeKeyCount(value, &count)) {
      return common::Status::Corruption("state " + path + ": key count fails its checksum");
    }
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "state " + path + ": read key count");
  } else {
    std::unique_ptr<leveldb::Iterator> it(owned->NewIterator(leveldb::ReadOptions()));
    std::string prefix(1, keys::kUserPrefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) count++;
    if (!it->status().ok()) return FromLevelDB(it->status(), "state " + path + ": count keys");
  }
  db_ = std::move(owned);
  cache_->Clear();  // it held the values of the database this one replaces
  generation_ = generation;
  applied_index_ = index;
  applied_term_ = term;
  key_count_ = count;
  return sessions_->Load(db_.get());
}

common::Status StateMachine::SwitchTo(uint64_t generation) {
  std::string tmp = dir_ + "/STATE.tmp";
  std::string body = std::to_string(generation) + "\n";
  leveldb::WritableFile* file = nullptr;
  leveldb::Status s = env_->NewWritableFile(tmp, &file);
  if (!s.ok()) return FromLevelDB(s, "write " + tmp);
  std::unique_ptr<leveldb::WritableFile> f(file);
  s = f->Append(body);
  if (s.ok()) s = f->Sync();
  if (s.ok()) s = f->Close();
  if (s.ok()) s = env_->RenameFile(tmp, dir_ + "/STATE");
  if (!s.ok()) return FromLevelDB(s, "switch state pointer");
  if (base_env_ == leveldb::Env::Default()) {
    // Make the rename itself durable.
    int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      return common::Status::IOError("fsync " + dir_ + " failed");
    }
    ::close(fd);
  }
  return common::Status::OK();
}

// ---- Applying ----

common::Status StateMachine::Apply(const raft::Entry& e, ApplyResult* result) {
  std::vector<ApplyResult> results;
  common::Status s = ApplyAll(std::span<const raft::Entry>(&e, 1), &results);
  if (s.ok()) *result = std::move(results[0]);
  return s;
}

common::Status StateMachine::ApplyAll(std::span<const raft::Entry> entries,
                                      std::vector<ApplyResult>* results) {
  if (!failed_.ok()) return failed_;
  results->resize(entries.size());
  PendingWrites group(db_.get(), cache_.get());
  // What the database holds: restored if a write fails, so that applied_index() never runs
  // ahead of the data.
  struct Point {
    raft::Index index;
    raft::Term term;
    uint64_t keys;
  };
  Point written{applied_index_, applied_term_, key_count_};
  common::Status s;
  for (size_t i = 0; i < entries.size() && s.ok(); i++) {
    const raft::Entry& e = entries[i];
    CHECK(e.index == applied_index_ + 1)
        << "apply index " << e.index << " after applied index " << applied_index_;
    const Point before{applied_index_, applied_term_, key_count_};
    const uint64_t writes = group.writes();
    s = ApplyEntry(e, &(*results)[i], &group, i + 1 < entries.size());
    if (group.writes() != writes) written = before;  // a scan wrote the entries before this one
  }
  if (s.ok()) {
    leveldb::Status w = group.Write();
    if (w.ok()) return common::Status::OK();
    s = FromLevelDB(w, "apply up to index " + std::to_string(entries.back().index));
  }
  // A failed apply may have moved the session table's counters without its batch: nothing
  // more may be applied (fail-stop), as after a failed write.
  applied_index_ = written.index;
  applied_term_ = written.term;
  key_count_ = written.keys;
  return failed_ = s;
}

common::Status StateMachine::ApplyEntry(const raft::Entry& e, ApplyResult* result,
                                        PendingWrites* group, bool more) {
  result->duplicate = false;
  result->refused = false;
  result->results.clear();
  result->batch.clear();
  uint64_t key_count = key_count_;
  leveldb::WriteBatch batch;
  common::Status decoded = e.type == raft::EntryType::kNormal
                               ? protocol::DecodeEntry(e.data, &commands_)
                               : common::Status::OK();
  if (e.type == raft::EntryType::kNormal && !decoded.ok()) {
    result->results.push_back(Error("ERR undecodable command: " + decoded.message()));
  } else if (e.type == raft::EntryType::kNormal) {
    // A batch's commands are applied at its latest time: sessions expire once per entry.
    uint64_t time_ms = 0;
    for (const protocol::Command& cmd : commands_) time_ms = std::max(time_ms, cmd.time_ms);
    common::Status table = sessions_->Advance(group, time_ms, &batch);
    if (!table.ok()) return table;
    if (commands_.size() == 1) {
      table = ApplyCommand(commands_[0], e.index, result, group, &batch, &key_count);
      if (!table.ok()) return table;
    } else {
      // Each command sees the writes of those before it (staged in the group), and the entry's
      // writes go to the group as one: a scan never finds half of it on disk.
      result->batch.resize(commands_.size());
      leveldb::WriteBatch part;
      for (size_t i = 0; i < commands_.size(); i++) {
        part.Clear();
        table = ApplyCommand(commands_[i], e.index, &result->batch[i], group, &part, &key_count);
        if (!table.ok()) return table;
        batch.Append(part);
        if (i + 1 < commands_.size()) group->Stage(part);
      }
    }
  }
  if (key_count != key_count_) {
    batch.Put(std::string(keys::kKeyCount), keys::EncodeKeyCount(key_count));
  }
  batch.Put(std::string(keys::kApplied), keys::EncodeApplied(e.index, e.term));
  group->Add(batch, more);
  applied_index_ = e.index;
  applied_term_ = e.term;
  key_count_ = key_count;
  return common::Status::OK();
}

common::Status StateMachine::ApplyCommand(const protocol::Command& cmd, raft::Index index,
                                          ApplyResult* result, PendingWrites* group,
                                          leveldb::WriteBatch* batch, uint64_t* key_count) {
  common::Status table;
  const SessionTable::Request request{cmd.session, cmd.seq, cmd.acked, cmd.create_session};
  SessionTable::Verdict verdict = SessionTable::Verdict::kApply;
  const protocol::Op& first = cmd.ops[0];
  if (first.code == protocol::OpCode::kSessionOpen) {
    result->results.push_back(sessions_->Open(index, static_cast<uint64_t>(first.incr), batch));
    verdict = SessionTable::Verdict::kRefused;  // nothing more to apply
  } else if (first.code == protocol::OpCode::kSessionClose) {
    result->results.emplace_back();
    table =
        sessions_->Close(group, static_cast<uint64_t>(first.incr), batch, &result->results.back());
    if (!table.ok()) return table;
    verdict = SessionTable::Verdict::kRefused;
  } else if (cmd.session != 0) {
    table = sessions_->Begin(group, request, batch, &verdict, &result->results);
    if (!table.ok()) return table;
    result->duplicate = verdict == SessionTable::Verdict::kDuplicate;
    result->refused = verdict == SessionTable::Verdict::kRefused;
  }
  const bool duplicate = verdict != SessionTable::Verdict::kApply;
  if (!duplicate) {
    // Later ops of a MULTI see the writes of earlier ones.
    std::map<std::string, std::optional<std::string>> pending;
    std::map<std::string, bool> existed;  // before this entry, for every key read from disk
    bool flushed = false;
    auto read = [&](const std::string& key, std::optional<std::string>* out) -> common::Status {
      auto it = pending.find(key);
      if (it != pending.end()) {
        *out = it->second;
        return common::Status::OK();
      }
      out->reset();
      if (flushed) return common::Status::OK();
      std::string value;
      leveldb::Status s = group->Get(keys::UserKey(key), &value);
      if (s.ok()) {
        *out = std::move(value);
      } else if (!s.IsNotFound()) {
        return FromLevelDB(s, "read key");
      }
      existed.emplace(key, s.ok());
      return common::Status::OK();
    };
    for (const protocol::Op& op : cmd.ops) {
      std::optional<std::string> old;
      switch (op.code) {
        case protocol::OpCode::kSet: {
          common::Status st = read(op.keys[0], &old);
          if (!st.ok()) return st;
          bool write = !(op.nx && old) && !(op.xx && !old);
          if (write) pending[op.keys[0]] = op.values[0];
          if (op.get) {
            result->results.push_back(old ? Bulk(*old) : Nil());
          } else {
            result->results.push_back(write ? Ok() : Nil());
          }
          break;
        }
        case protocol::OpCode::kDel: {
          int64_t n = 0;
          for (const std::string& k : op.keys) {
            common::Status st = read(k, &old);
            if (!st.ok()) return st;
            if (old) {
              n++;
              pending[k] = std::nullopt;
            }
          }
          result->results.push_back(Int(n));
          break;
        }
        case protocol::OpCode::kAppend: {
          common::Status st = read(op.keys[0], &old);
          if (!st.ok()) return st;
          std::string v = old ? *old + op.values[0] : op.values[0];
          result->results.push_back(Int(static_cast<int64_t>(v.size())));
          pending[op.keys[0]] = std::move(v);
          break;
        }
        case protocol::OpCode::kIncrBy: {
          common::Status st = read(op.keys[0], &old);
          if (!st.ok()) return st;
          int64_t cur = 0;
          if (old && !common::ParseInt64(*old, &cur)) {
            result->results.push_back(Error("ERR value is not an integer or out of range"));
            break;
          }
          int64_t next;
          if (__builtin_add_overflow(cur, op.incr, &next)) {
            result->results.push_back(Error("ERR increment or decrement would overflow"));
            break;
          }
          pending[op.keys[0]] = std::to_string(next);
          result->results.push_back(Int(next));
          break;
        }
        case protocol::OpCode::kIncrByFloat: {
          common::Status st = read(op.keys[0], &old);
          if (!st.ok()) return st;
          double cur = 0, incr = 0;
          if ((old && !ParseDouble(*old, &cur)) || !ParseDouble(op.values[0], &incr)) {
            result->results.push_back(Error("ERR value is not a valid float"));
            break;
          }
          double next = cur + incr;
          if (std::isnan(next) || std::isinf(next)) {
            result->results.push_back(Error("ERR increment would produce NaN or Infinity"));
            break;
          }
          std::string v = FormatDouble(next);
          pending[op.keys[0]] = v;
          result->results.push_back(Bulk(std::move(v)));
          break;
        }
        case protocol::OpCode::kMSet:
          for (size_t i = 0; i < op.keys.size(); i++) {
            common::Status st = read(op.keys[i], &old);  // for the key count
            if (!st.ok()) return st;
            pending[op.keys[i]] = op.values[i];
          }
          result->results.push_back(Ok());
          break;
        case protocol::OpCode::kGetDel: {
          common::Status st = read(op.keys[0], &old);
          if (!st.ok()) return st;
          if (old) pending[op.keys[0]] = std::nullopt;
          result->results.push_back(old ? Bulk(*old) : Nil());
          break;
        }
        case protocol::OpCode::kGet: {
          common::Status st = read(op.keys[0], &old);
          if (!st.ok()) return st;
          result->results.push_back(old ? Bulk(*old) : Nil());
          break;
        }
        case protocol::OpCode::kFlushAll:
          pending.clear();
          flushed = true;
          result->results.push_back(Ok());
          break;
        case protocol::OpCode::kSessionOpen:
        case protocol::OpCode::kSessionClose:
          CHECK(false) << "session op inside a command (refused by DecodeCommand)";
          break;
      }
    }
    if (flushed) {
      std::unique_ptr<leveldb::Iterator> it;
      leveldb::Status s = group->NewIterator(&it);
      if (!s.ok()) return FromLevelDB(s, "flush");
      std::string prefix(1, keys::kUserPrefix);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        batch->Delete(it->key());
      }
      if (!it->status().ok()) return FromLevelDB(it->status(), "flush");
    }
    uint64_t new_key_count = flushed ? 0 : *key_count;
    for (const auto& [key, value] : pending) {
      if (value) {
        batch->Put(keys::UserKey(key), *value);
      } else {
        batch->Delete(keys::UserKey(key));
      }
      // Every key written was read first; after a FLUSHALL nothing existed before.
      auto was = existed.find(key);
      bool before = !flushed && was != existed.end() && was->second;
      if (value && !before) new_key_count++;
      if (!value && before) new_key_count--;
    }
    *key_count = new_key_count;
    if (cmd.session != 0) sessions_->Finish(request, result->results, batch);
  }
  return common::Status::OK();
}

common::Status StateMachine::Get(std::string_view key, std::string* value) {
  return FromLevelDB(cache_->Get(db_.get(), keys::UserKey(key), value), "get");
}

common::Status StateMachine::Dump(std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  std::string prefix(1, keys::kUserPrefix);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    out->emplace_back(std::string(View(it->key()).substr(1)), it->value().ToString());
  }
  return FromLevelDB(it->status(), "dump");
}

common::Status StateMachine::ForEachKey(std::string_view from,
                                        const std::function<bool(std::string_view key)>& fn) {
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  std::string prefix(1, keys::kUserPrefix);
  for (it->Seek(keys::UserKey(from)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!fn(View(it->key()).substr(1))) break;
  }
  return FromLevelDB(it->status(), "scan keys");
}

bool StateMachine::WritesWouldStall() const {
  // LevelDB's db/dbformat.h: config::kL0_SlowdownWritesTrigger.
  constexpr uint64_t kSlowdownFiles = 8;
  std::string files;
  if (!db_->GetProperty("leveldb.num-files-at-level0", &files)) return false;
  return std::strtoull(files.c_str(), nullptr, 10) >= kSlowdownFiles;
}

common::Status StateMachine::Sync() {
  if (!failed_.ok()) return failed_;
  // A synced write of the trailer alone: it covers every write before it (DurableEnv), and
  // changes nothing else.
  leveldb::WriteBatch batch;
  failed_ = FromLevelDB(keys::WriteSealed(db_.get(), true, &batch), "sync state");
  return failed_;
}

std::function<common::Status()> StateMachine::SyncTask() {
  // The database is held, not the state machine: an install may switch to another one before
  // the task runs, and then syncing the old one is merely useless.
  std::shared_ptr<leveldb::DB> db = db_;
  common::Status failed = failed_;
  return [db, failed]() -> common::Status {
    if (!failed.ok()) return failed;
    leveldb::WriteBatch batch;
    return FromLevelDB(keys::WriteSealed(db.get(), true, &batch), "sync state");
  };
}

// ---- Snapshots ----

class StateMachine::Reader : public StateMachine::SnapshotReader {
 public:
  Reader(std::shared_ptr<leveldb::DB> db, size_t chunk_bytes)
      : db_(std::move(db)), snapshot_(db_->GetSnapshot()), chunk_bytes_(chunk_bytes) {
    leveldb::ReadOptions ro;
    ro.snapshot = snapshot_;
    ro.verify_checksums = true;
    std::string value;
    if (db_->Get(ro, std::string(keys::kApplied), &value).ok()) {
      keys::DecodeApplied(value, &meta_.index, &meta_.term);
    }
    ro.fill_cache = false;
    it_.reset(db_->NewIterator(ro));
    it_->SeekToFirst();
  }
  ~Reader() override {
    it_.reset();
    db_->ReleaseSnapshot(snapshot_);
  }
  raft::SnapshotMeta meta() const override { return meta_; }
  common::Status Next(std::string* chunk, bool* done) override {
    std::string body;
    uint32_t count = 0;
    while (it_->Valid() && (count == 0 || body.size() < chunk_bytes_)) {
      common::PutFixed32(&body, static_cast<uint32_t>(it_->key().size()));
      body.append(it_->key().data(), it_->key().size());
      common::PutFixed32(&body, static_cast<uint32_t>(it_->value().size()));
      body.append(it_->value().data(), it_->value().size());
      count++;
      it_->Next();
    }
    if (!it_->status().ok()) return FromLevelDB(it_->status(), "read snapshot");
    *done = !it_->Valid();
    std::string counted;
    common::PutFixed32(&counted, seq_++);
    counted.push_back(*done ? 1 : 0);
    common::PutFixed64(&counted, meta_.index);
    common::PutFixed64(&counted, meta_.term);
    common::PutFixed32(&counted, count);
    counted += body;
    chunk->clear();
    common::PutFixed32(chunk, common::Crc32c(counted));
    *chunk += counted;
    return common::Status::OK();
  }

 private:
  std::shared_ptr<leveldb::DB> db_;
  const leveldb::Snapshot* snapshot_;
  size_t chunk_bytes_;
  uint32_t seq_ = 0;
  std::unique_ptr<leveldb::Iterator> it_;
  raft::SnapshotMeta meta_;
};

std::unique_ptr<StateMachine::SnapshotReader> StateMachine::NewSnapshotReader(size_t chunk_bytes) {
  return std::make_unique<Reader>(db_, chunk_bytes);
}

class StateMachine::Writer : public StateMachine::SnapshotWriter {
 public:
  Writer(StateMachine* sm, uint64_t generation, std::unique_ptr<leveldb::DB> db)
      : sm_(sm), generation_(generation), db_(std::move(db)) {}

  common::Status Add(std::string_view chunk) override {
    uint32_t crc, seq, count;
    uint64_t index, term;
    if (!common::GetFixed32(&chunk, &crc) || crc != common::Crc32c(chunk) ||
        !common::GetFixed32(&chunk, &seq) || chunk.empty()) {
      return common::Status::Corruption("snapshot chunk fails its checksum");
    }
    bool last = chunk[0] != 0;
    chunk.remove_prefix(1);
    if (!common::GetFixed64(&chunk, &index) || !common::GetFixed64(&chunk, &term) ||
        !common::GetFixed32(&chunk, &count)) {
      return common::Status::Corruption("snapshot chunk truncated");
    }
    // One stream, in order, whole: a chunk of another snapshot, a repeated, missing or
    // reordered chunk, or a chunk after the last would install a state no replica has.
    if (finished_ || seq != next_seq_ || (seq > 0 && !(meta_ == raft::SnapshotMeta{index, term}))) {
      return common::Status::InvalidArgument("snapshot chunk " + std::to_string(seq) + " of " +
                                             std::to_string(index) + "/" + std::to_string(term) +
                                             " does not continue the stream");
    }
    meta_ = {index, term};
    next_seq_++;
    finished_ = last;
    leveldb::WriteBatch batch;
    for (uint32_t i = 0; i < count; i++) {
      uint32_t klen, vlen;
      if (!common::GetFixed32(&chunk, &klen) || chunk.size() < klen) {
        return common::Status::Corruption("snapshot chunk truncated");
      }
      std::string_view key = chunk.substr(0, klen);
      chunk.remove_prefix(klen);
      if (!common::GetFixed32(&chunk, &vlen) || chunk.size() < vlen) {
        return common::Status::Corruption("snapshot chunk truncated");
      }
      batch.Put(leveldb::Slice(key.data(), key.size()), leveldb::Slice(chunk.data(), vlen));
      chunk.remove_prefix(vlen);
    }
    if (!chunk.empty()) return common::Status::Corruption("snapshot chunk has trailing bytes");
    return FromLevelDB(keys::WriteSealed(db_.get(), false, &batch), "write snapshot chunk");
  }

  common::Status Finish(raft::SnapshotMeta* meta) override {
    if (!finished_) return common::Status::InvalidArgument("snapshot stream did not reach its end");
    std::string value;
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), std::string(keys::kApplied), &value);
    raft::Index index = 0;
    raft::Term term = 0;
    if (!s.ok() || !keys::DecodeApplied(value, &index, &term) ||
        !(meta_ == raft::SnapshotMeta{index, term})) {
      return common::Status::Corruption("snapshot's applied index does not match its stream");
    }
    // Data durable first: one synced write covers everything written before it.
    leveldb::WriteBatch batch;
    s = keys::WriteSealed(db_.get(), true, &batch);
    if (!s.ok()) return FromLevelDB(s, "sync snapshot");
    db_.reset();
    // Then the switch: a crash before the rename keeps the old state. A failure from here on
    // leaves the pointer and the open database possibly apart: stop writing (fail-stop).
    common::Status st = sm_->SwitchTo(generation_);
    if (!st.ok()) return sm_->failed_ = st;
    uint64_t old = sm_->generation_;
    st = sm_->OpenGeneration(generation_);
    if (!st.ok()) return sm_->failed_ = st;
    leveldb::Options o;
    o.env = sm_->env_.get();
    leveldb::DestroyDB(sm_->GenerationPath(old), o);  // fails harmlessly while a reader holds it
    *meta = {index, term};
    return common::Status::OK();
  }

  raft::SnapshotMeta meta() const override { return meta_; }

 private:
  StateMachine* sm_;
  uint64_t generation_;
  std::unique_ptr<leveldb::DB> db_;
  uint32_t next_seq_ = 0;
  bool finished_ = false;    // the last chunk arrived
  raft::SnapshotMeta meta_;  // the stream's snapshot
};

common::Status StateMachine::NewSnapshotWriter(std::unique_ptr<SnapshotWriter>* out) {
  uint64_t generation = generation_ + 1;
  std::string path = GenerationPath(generation);
  leveldb::Options o;
  o.env = env_.get();
  o.filter_policy = Filter();
  leveldb::DestroyDB(path, o);  // a leftover of an earlier attempt
  o.create_if_missing = true;
  o.error_if_exists = true;
  o.paranoid_checks = true;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, path, &db);
  if (!s.ok()) return FromLevelDB(s, "create snapshot state " + path);
  *out = std::make_unique<Writer>(this, generation, std::unique_ptr<leveldb::DB>(db));
  return common::Status::OK();
}

}  // namespace kv
