// The history recorder writes what the linearizability checker reads: every line is read back
// with linearizability::ReadHistory and compared, awkward strings included.
#include "client/history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/linearizability/checker.h"

namespace raftkv::client {
namespace {

namespace lin = linearizability;

// A fresh file path under the test's temporary directory.
std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string base = dir != nullptr ? dir : ::testing::TempDir();
  if (!base.empty() && base.back() != '/') base.push_back('/');
  return base + "raftkv_history_" + std::to_string(::getpid()) + "_" + name + ".jsonl";
}

lin::OpKind KindOf(const std::string& op) {
  if (op == "get") return lin::OpKind::kGet;
  if (op == "set") return lin::OpKind::kSet;
  if (op == "append") return lin::OpKind::kAppend;
  if (op == "del") return lin::OpKind::kDel;
  return lin::OpKind::kIncr;
}

lin::OpStatus StatusOf(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return lin::OpStatus::kOk;
    case Outcome::kFailed:
      return lin::OpStatus::kFailed;
    case Outcome::kUnknown:
      return lin::OpStatus::kUnknown;
  }
  return lin::OpStatus::kUnknown;
}

// What the checker should read back for `op` (a known op kind).
lin::Operation Expected(const HistoryOp& op) {
  lin::Operation e;
  e.client = op.client;
  e.kind = KindOf(op.op);
  e.key = op.key;
  if (e.kind == lin::OpKind::kSet || e.kind == lin::OpKind::kAppend)
    e.value = op.value.value_or("");
  if (e.kind == lin::OpKind::kGet) e.output = op.output;
  if (e.kind == lin::OpKind::kIncr || e.kind == lin::OpKind::kAppend ||
      e.kind == lin::OpKind::kDel) {
    e.output_int = op.output_int;
  }
  e.call = op.call;
  e.ret = op.status == Outcome::kUnknown ? lin::kInfiniteTime : op.ret;
  e.status = StatusOf(op.status);
  return e;
}

HistoryOp Op(int64_t client, std::string kind, std::string key, std::optional<std::string> value,
             int64_t call, int64_t ret, Outcome status) {
  HistoryOp op;
  op.client = client;
  op.op = std::move(kind);
  op.key = std::move(key);
  op.value = std::move(value);
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

// Every byte 0x00..0x7f, and quotes, backslashes, escapes-looking text, valid UTF-8.
std::vector<std::string> AwkwardStrings() {
  std::string all_ascii;
  for (int c = 0; c < 0x80; c++) all_ascii.push_back(static_cast<char>(c));
  return {
      "",
      "plain",
      "with \"quotes\" and \\backslashes\\ and \\\" both",
      "\\u0041 looks like an escape",
      std::string("nul\0byte", 8),
      "tab\tnewline\ncr\rbell\a\x1f\x7f",
      "/slash/ and } { , : braces",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",   // é € 😀 (2, 3 and 4 byte UTF-8)
      "\xed\x9f\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf",  // U+D7FF U+FFFF U+10FFFF
      all_ascii,
  };
}

TEST(HistoryRecorder, RoundTripsAwkwardStringsThroughTheCheckersReader) {
  const std::string path = TempPath("awkward");
  std::unique_ptr<HistoryRecorder> rec;
  ASSERT_TRUE(HistoryRecorder::Open(path, &rec).ok());
  std::vector<HistoryOp> ops;
  int64_t t = 1000;
  for (const std::string& s : AwkwardStrings()) {
    ops.push_back(Op(1, "set", s, s + "v", t, t + 5, Outcome::kOk));
    HistoryOp get = Op(2, "get", s, std::nullopt, t + 1, t + 9, Outcome::kOk);
    get.output = s;
    ops.push_back(get);
    HistoryOp append = Op(3, "append", "k", s, t + 2, t + 3, Outcome::kOk);
    append.output_int = static_cast<int64_t>(s.size()) + 100;
    ops.push_back(append);
    t += 10;
  }
  // Nil reads, integer outputs, outputs not recorded, and every status.
  ops.push_back(Op(4, "get", "missing", std::nullopt, 5, 6, Outcome::kOk));
  HistoryOp incr = Op(4, "incr", "n", std::nullopt, 7, 8, Outcome::kOk);
  incr.output_int = -9223372036854775807LL - 1;
  ops.push_back(incr);
  HistoryOp del = Op(4, "del", "n", std::nullopt, 9, 10, Outcome::kOk);
  del.output_int = 1;
  ops.push_back(del);
  ops.push_back(Op(4, "incr", "n", std::nullopt, 11, 12, Outcome::kFailed));
  ops.push_back(Op(5, "append", "k", "tail", 13, 0, Outcome::kUnknown));
  ops.push_back(Op(5, "set", "k", std::nullopt, 14, 15, Outcome::kOk));  // value missing: ""
  ops.push_back(Op(-7, "del", "k", std::nullopt, 16, 17, Outcome::kUnknown));
  for (const HistoryOp& op : ops) rec->Record(op);
  EXPECT_EQ(rec->lines(), ops.size());
  EXPECT_EQ(rec->lossy_lines(), 0u);
  ASSERT_TRUE(rec->Close().ok());

  std::ifstream in(path);
  std::vector<lin::Operation> read;
  common::Status s = lin::ReadHistory(in, &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(read.size(), ops.size());
  for (size_t i = 0; i < ops.size(); i++) {
    EXPECT_EQ(read[i], Expected(ops[i])) << "line " << i + 1 << ": " << FormatHistoryLine(ops[i]);
  }
  std::remove(path.c_str());
}

TEST(HistoryRecorder, LineFormatMatchesTheCheckersWriter) {
  // For ASCII and valid UTF-8 the recorder writes exactly what linearizability::ToJsonLine
  // writes for the same operation.
  for (const std::string& s : AwkwardStrings()) {
    HistoryOp set = Op(1, "set", s, s, 10, 20, Outcome::kOk);
    EXPECT_EQ(FormatHistoryLine(set), lin::ToJsonLine(Expected(set)));
    HistoryOp get = Op(2, "get", s, std::nullopt, 10, 20, Outcome::kOk);
    get.output = s;
    EXPECT_EQ(FormatHistoryLine(get), lin::ToJsonLine(Expected(get)));
    HistoryOp unknown = Op(3, "append", s, s, 10, 0, Outcome::kUnknown);
    EXPECT_EQ(FormatHistoryLine(unknown), lin::ToJsonLine(Expected(unknown)));
  }
  EXPECT_EQ(FormatHistoryLine(Op(1, "set", "k", "v", 123, 456, Outcome::kOk)),
            R"({"client":1,"op":"set","key":"k","value":"v","output":null,"call":123,)"
            R"("return":456,"status":"ok"})");
  EXPECT_EQ(FormatHistoryLine(Op(2, "get", "a\"b", std::nullopt, 1, 2, Outcome::kOk)),
            R"({"client":2,"op":"get","key":"a\"b","value":null,"output":null,"call":1,)"
            R"("return":2,"status":"ok"})");
  EXPECT_EQ(FormatHistoryLine(Op(3, "incr", "x\n", std::nullopt, 5, 99, Outcome::kUnknown)),
            R"({"client":3,"op":"incr","key":"x\u000a","value":null,"output":null,"call":5,)"
            R"("return":null,"status":"unknown"})");
}

TEST(HistoryRecorder, OutputsFollowTheOpKind) {
  // Whatever the optionals hold, each known op gets the fields the checker accepts.
  HistoryOp get = Op(1, "get", "k", "ignored", 1, 2, Outcome::kOk);
  get.output_int = 5;  // not a get's output
  HistoryOp set = Op(1, "set", "k", "v", 1, 2, Outcome::kOk);
  set.output = "OK";
  set.output_int = 3;
  HistoryOp incr = Op(1, "incr", "k", "ignored", 1, 2, Outcome::kOk);
  incr.output = "7";
  incr.output_int = 7;
  std::string text;
  for (const HistoryOp& op : {get, set, incr}) text += FormatHistoryLine(op) + "\n";
  std::vector<lin::Operation> read;
  common::Status s = lin::ReadHistoryFromString(text, &read);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << text;
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(read[0].value, "");
  EXPECT_EQ(read[0].output, std::nullopt);
  EXPECT_EQ(read[1].value, "v");
  EXPECT_EQ(read[2].output_int, std::optional<int64_t>(7));
}

TEST(HistoryRecorder, InvalidUtf8IsEscapedAsLatin1AndCounted) {
  // Documented: a byte >= 0x80 outside valid UTF-8 is written as \u00XX, so the file stays
  // valid UTF-8 JSON, and reads back as the UTF-8 encoding of U+00XX (not the original byte).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xe9", "\xc3\xa9"},                          // a lone Latin-1 byte
      {"a\x80z", "a\xc2\x80z"},                      // a stray continuation byte
      {"\xc0\xaf", "\xc3\x80\xc2\xaf"},              // an overlong '/'
      {"\xed\xa0\x80", "\xc3\xad\xc2\xa0\xc2\x80"},  // a UTF-8 encoded surrogate
      {"\xe2\x82", "\xc3\xa2\xc2\x82"},              // a truncated sequence
      {"\xff ok \xc3\xa9", "\xc3\xbf ok \xc3\xa9"},  // valid UTF-8 beside it is kept
  };
  const std::string path = TempPath("latin1");
  std::unique_ptr<HistoryRecorder> rec;
  ASSERT_TRUE(HistoryRecorder::Open(path, &rec).ok());
  for (const auto& [raw, read_back] : cases) {
    bool lossy = false;
    const std::string line = FormatHistoryLine(Op(1, "set", "k", raw, 1, 2, Outcome::kOk), &lossy);
    EXPECT_TRUE(lossy) << line;
    EXPECT_EQ(line.find(raw), std::string::npos) << "the raw bytes are not in " << line;
    rec->Record(Op(1, "set", "k", raw, 1, 2, Outcome::kOk));
  }
  rec->Record(Op(1, "set", "k", "ascii", 1, 2, Outcome::kOk));
  EXPECT_EQ(rec->lossy_lines(), cases.size());
  ASSERT_TRUE(rec->Close().ok());
  std::ifstream in(path);
  std::vector<lin::Operation> read;
  common::Status s = lin::ReadHistory(in, &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(read.size(), cases.size() + 1);
  for (size_t i = 0; i < cases.size(); i++) EXPECT_EQ(read[i].value, cases[i].second) << i;
  std::remove(path.c_str());
}

TEST(HistoryRecorder, UnknownOpNamesAreWrittenAsGivenAndTheReaderRefusesThem) {
  HistoryOp odd = Op(1, "cas", "k", "v", 1, 2, Outcome::kOk);
  odd.output = "x";
  EXPECT_EQ(FormatHistoryLine(odd),
            R"({"client":1,"op":"cas","key":"k","value":"v","output":"x","call":1,)"
            R"("return":2,"status":"ok"})");
  std::vector<lin::Operation> read;
  common::Status s = lin::ReadHistoryFromString(FormatHistoryLine(odd), &read);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown op"), std::string::npos) << s.ToString();
}

TEST(HistoryRecorder, ConcurrentRecordsEachWriteOneWholeLine) {
  const std::string path = TempPath("concurrent");
  std::unique_ptr<HistoryRecorder> rec;
  ASSERT_TRUE(HistoryRecorder::Open(path, &rec).ok());
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&rec, t] {
      // Long values with quotes and control bytes, so that interleaved writes would show.
      const std::string filler(300 + t * 37, static_cast<char>('a' + t));
      for (int i = 0; i < kOpsPerThread; i++) {
        const std::string value =
            "c" + std::to_string(t) + "." + std::to_string(i) + "\"\n" + filler;
        HistoryOp op = Op(t, i % 2 == 0 ? "append" : "get", "k" + std::to_string(i % 3),
                          i % 2 == 0 ? std::optional<std::string>(value) : std::nullopt, NowNanos(),
                          0, i % 5 == 0 ? Outcome::kUnknown : Outcome::kOk);
        if (i % 2 == 1) op.output = value;
        op.ret = NowNanos();
        rec->Record(op);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  ASSERT_TRUE(rec->Close().ok());
  rec->Record(Op(0, "get", "after-close", std::nullopt, 1, 2, Outcome::kOk));  // dropped

  std::ifstream in(path);
  std::vector<lin::Operation> read;
  common::Status s = lin::ReadHistory(in, &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(read.size(), static_cast<size_t>(kThreads * kOpsPerThread));
  // Each thread's ops appear in its own order, each once.
  std::vector<int> next(kThreads, 0);
  for (const lin::Operation& op : read) {
    ASSERT_GE(op.client, 0);
    ASSERT_LT(op.client, kThreads);
    const int t = static_cast<int>(op.client);
    const int i = next[t]++;
    const std::string prefix = "c" + std::to_string(t) + "." + std::to_string(i) + "\"\n";
    if (i % 2 == 0) {
      EXPECT_EQ(op.kind, lin::OpKind::kAppend);
      EXPECT_EQ(op.value.substr(0, prefix.size()), prefix);
    } else {
      EXPECT_EQ(op.kind, lin::OpKind::kGet);
      ASSERT_TRUE(op.output.has_value());
      EXPECT_EQ(op.output->substr(0, prefix.size()), prefix);
    }
  }
  for (int t = 0; t < kThreads; t++) EXPECT_EQ(next[t], kOpsPerThread);
  std::remove(path.c_str());
}

TEST(HistoryRecorder, OpenFailsOnABadPath) {
  std::unique_ptr<HistoryRecorder> rec;
  common::Status s = HistoryRecorder::Open("/nonexistent-dir/x/history.jsonl", &rec);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), common::Status::Code::kIOError);
  EXPECT_EQ(rec, nullptr);
}

TEST(HistoryRecorder, NowNanosIsMonotonic) {
  int64_t last = NowNanos();
  for (int i = 0; i < 1000; i++) {
    const int64_t now = NowNanos();
    EXPECT_GE(now, last);
    last = now;
  }
  EXPECT_GT(last, 0);
}

TEST(FillFromResult, TakesOutputsByOpKind) {
  Result ok;
  ok.outcome = Outcome::kOk;
  ok.reply.type = Reply::Type::kBulk;
  ok.reply.str = "v";
  HistoryOp get = Op(1, "get", "k", std::nullopt, 1, 2, Outcome::kUnknown);
  FillFromResult(ok, &get);
  EXPECT_EQ(get.status, Outcome::kOk);
  EXPECT_EQ(get.output, std::optional<std::string>("v"));

  Result nil;
  nil.outcome = Outcome::kOk;
  nil.reply.type = Reply::Type::kNil;
  get.output = "stale";
  FillFromResult(nil, &get);
  EXPECT_EQ(get.output, std::nullopt);

  Result integer;
  integer.outcome = Outcome::kOk;
  integer.reply.type = Reply::Type::kInteger;
  integer.reply.integer = 42;
  for (const char* kind : {"incr", "append", "del"}) {
    HistoryOp op = Op(1, kind, "k", std::nullopt, 1, 2, Outcome::kUnknown);
    FillFromResult(integer, &op);
    EXPECT_EQ(op.status, Outcome::kOk);
    EXPECT_EQ(op.output_int, std::optional<int64_t>(42)) << kind;
    EXPECT_EQ(op.output, std::nullopt);
  }

  Result status;
  status.outcome = Outcome::kOk;
  status.reply.type = Reply::Type::kStatus;
  status.reply.str = "OK";
  HistoryOp set = Op(1, "set", "k", "v", 1, 2, Outcome::kUnknown);
  FillFromResult(status, &set);
  EXPECT_EQ(set.status, Outcome::kOk);
  EXPECT_EQ(set.output, std::nullopt);
  EXPECT_EQ(set.output_int, std::nullopt);

  for (Outcome o : {Outcome::kFailed, Outcome::kUnknown}) {
    Result bad = integer;
    bad.outcome = o;
    HistoryOp op = Op(1, "incr", "k", std::nullopt, 1, 2, Outcome::kOk);
    op.output_int = 3;
    FillFromResult(bad, &op);
    EXPECT_EQ(op.status, o);
    EXPECT_EQ(op.output_int, std::nullopt);
  }
}

TEST(Endpoints, ParsesListsAndRefusesBadInput) {
  std::vector<Endpoint> eps;
  ASSERT_TRUE(ParseEndpoints("127.0.0.1:7001,127.0.0.1:7002", &eps).ok());
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0], (Endpoint{"127.0.0.1", 7001}));
  EXPECT_EQ(eps[1], (Endpoint{"127.0.0.1", 7002}));
  ASSERT_TRUE(ParseEndpoints(" localhost:1 , 10.0.0.2:65535 ", &eps).ok());
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0], (Endpoint{"localhost", 1}));
  EXPECT_EQ(eps[1], (Endpoint{"10.0.0.2", 65535}));
  EXPECT_EQ(EndpointName(eps[1]), "10.0.0.2:65535");

  for (const char* bad : {"", " ", "127.0.0.1", "127.0.0.1:", ":7001", "h:0", "h:65536", "h:-1",
                          "h:7001,", ",h:7001", "h:70x1", "h:7001,,h:7002", "h: 7001"}) {
    std::vector<Endpoint> out = {Endpoint{"keep", 1}};
    common::Status s = ParseEndpoints(bad, &out);
    EXPECT_FALSE(s.ok()) << "'" << bad << "'";
    EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(out.size(), 1u) << "output untouched on error: " << bad;
  }
}

TEST(Outcomes, HaveTheirNames) {
  EXPECT_STREQ(OutcomeName(Outcome::kOk), "ok");
  EXPECT_STREQ(OutcomeName(Outcome::kFailed), "failed");
  EXPECT_STREQ(OutcomeName(Outcome::kUnknown), "unknown");
}

}  // namespace
}  // namespace raftkv::client
