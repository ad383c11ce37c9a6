// Unit tests of the linearizability checker: hand-built histories that are and are not
// linearizable for each KV operation, unknown and failed outcomes, partitioning by key, a
// large seeded random history, and the JSON-lines reader.
#include "tests/linearizability/checker.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

namespace linearizability {
namespace {

Operation Set(int64_t client, const std::string& key, const std::string& value, int64_t call,
              int64_t ret) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kSet;
  op.key = key;
  op.value = value;
  op.call = call;
  op.ret = ret;
  return op;
}

Operation Get(int64_t client, const std::string& key, std::optional<std::string> output,
              int64_t call, int64_t ret) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kGet;
  op.key = key;
  op.output = std::move(output);
  op.call = call;
  op.ret = ret;
  return op;
}

Operation Append(int64_t client, const std::string& key, const std::string& value, int64_t call,
                 int64_t ret, std::optional<int64_t> new_length = std::nullopt) {
  Operation op = Set(client, key, value, call, ret);
  op.kind = OpKind::kAppend;
  op.output_int = new_length;
  return op;
}

Operation Del(int64_t client, const std::string& key, int64_t call, int64_t ret,
              std::optional<int64_t> count = std::nullopt) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kDel;
  op.key = key;
  op.output_int = count;
  op.call = call;
  op.ret = ret;
  return op;
}

Operation Incr(int64_t client, const std::string& key, std::optional<int64_t> output, int64_t call,
               int64_t ret) {
  Operation op = Del(client, key, call, ret, output);
  op.kind = OpKind::kIncr;
  return op;
}

// The op, given up on by its client: it may have taken effect after its call, or never.
Operation Unknown(Operation op) {
  op.status = OpStatus::kUnknown;
  op.ret = kInfiniteTime;
  return op;
}

// The op, answered with an error: it did not take effect.
Operation Failed(Operation op) {
  op.status = OpStatus::kFailed;
  return op;
}

Verdict VerdictOf(const std::vector<Operation>& history) { return Check(history).verdict; }

// ---------------------------------------------------------------------------------------
// GET and SET: a register.

TEST(LinearizabilityRegister, SequentialHistoryIsLinearizable) {
  EXPECT_EQ(VerdictOf({Get(1, "x", std::nullopt, 0, 1), Set(1, "x", "a", 2, 3),
                       Get(2, "x", "a", 4, 5), Set(2, "x", "b", 6, 7), Get(1, "x", "b", 8, 9)}),
            Verdict::kOk);
}

TEST(LinearizabilityRegister, EmptyHistoryIsLinearizable) {
  EXPECT_EQ(VerdictOf({}), Verdict::kOk);
}

TEST(LinearizabilityRegister, ConcurrentWritesReadsMaySeeEitherOrder) {
  // Two overlapping writes; later reads may see either one as the last, and a read that
  // overlaps both may see the first or the second.
  for (const char* last : {"a", "b"}) {
    EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 10), Set(2, "x", "b", 5, 15),
                         Get(3, "x", std::nullopt, 0, 4), Get(3, "x", "a", 6, 12),
                         Get(3, "x", last, 20, 21), Get(4, "x", last, 22, 23)}),
              Verdict::kOk)
        << "last write seen: " << last;
  }
}

TEST(LinearizabilityRegister, TouchingIntervalsCountAsConcurrent) {
  // The write returns at the time the read is called: either order is allowed.
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 5), Get(2, "x", std::nullopt, 5, 6)}), Verdict::kOk);
}

TEST(LinearizabilityRegister, ReadOfValueNeverWrittenIsViolation) {
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 10), Get(2, "x", "z", 5, 15)}), Verdict::kViolation);
  EXPECT_EQ(VerdictOf({Get(1, "x", "", 0, 1)}), Verdict::kViolation);  // "" is not nil
}

TEST(LinearizabilityRegister, StaleReadAfterCompletedWriteIsViolation) {
  // set b returns before the read is called, yet the read sees the older a.
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Set(1, "x", "b", 2, 3), Get(2, "x", "a", 4, 5)}),
            Verdict::kViolation);
  // The same read overlapping set b is fine.
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Set(1, "x", "b", 2, 5), Get(2, "x", "a", 4, 6)}),
            Verdict::kOk);
}

TEST(LinearizabilityRegister, ReadYourWriteAcrossClientsViolated) {
  // Client 1 writes 1; client 2 then reads 1; client 1 then reads the old 0.
  EXPECT_EQ(VerdictOf({Set(1, "x", "0", 0, 1), Set(1, "x", "1", 2, 3), Get(2, "x", "1", 4, 5),
                       Get(1, "x", "0", 6, 7)}),
            Verdict::kViolation);
  // Client 2 writes, tells client 1 (out of band), client 1 reads nothing.
  EXPECT_EQ(VerdictOf({Set(2, "x", "v", 0, 10), Get(1, "x", std::nullopt, 11, 12)}),
            Verdict::kViolation);
}

TEST(LinearizabilityRegister, ReadsObservingWritesInDifferentOrdersIsViolation) {
  // Writes a and b overlap everything. Client 3 sees a then b, client 4 sees b then a.
  const std::vector<Operation> history = {
      Set(1, "x", "a", 0, 100), Set(2, "x", "b", 0, 100), Get(3, "x", "a", 10, 20),
      Get(3, "x", "b", 30, 40), Get(4, "x", "b", 10, 20), Get(4, "x", "a", 30, 40),
  };
  EXPECT_EQ(VerdictOf(history), Verdict::kViolation);
  // Both seeing a then b is fine.
  std::vector<Operation> agreeing = history;
  agreeing[4].output = "a";
  agreeing[5].output = "b";
  EXPECT_EQ(VerdictOf(agreeing), Verdict::kOk);
}

// ---------------------------------------------------------------------------------------
// APPEND, DEL, INCR.

TEST(LinearizabilityAppend, ConcurrentAppendsInEitherOrder) {
  for (const char* seen : {"ab", "ba"}) {
    EXPECT_EQ(VerdictOf({Append(1, "x", "a", 0, 10), Append(2, "x", "b", 0, 10),
                         Get(3, "x", seen, 20, 21)}),
              Verdict::kOk)
        << seen;
  }
  // Appending to nil starts from "".
  EXPECT_EQ(VerdictOf({Append(1, "x", "a", 0, 1, 1), Append(1, "x", "bc", 2, 3, 3),
                       Get(1, "x", "abc", 4, 5)}),
            Verdict::kOk);
}

TEST(LinearizabilityAppend, AppendAppliedTwiceIsViolation) {
  EXPECT_EQ(VerdictOf({Append(1, "x", "a", 0, 10), Append(2, "x", "b", 0, 10),
                       Get(3, "x", "aba", 20, 21)}),
            Verdict::kViolation);
}

TEST(LinearizabilityAppend, MissingAcknowledgedAppendIsViolation) {
  // The read completes after both appends returned but omits b.
  EXPECT_EQ(
      VerdictOf({Append(1, "x", "a", 0, 10), Append(2, "x", "b", 0, 10), Get(3, "x", "a", 20, 21)}),
      Verdict::kViolation);
  // A read overlapping append b may omit it.
  EXPECT_EQ(
      VerdictOf({Append(1, "x", "a", 0, 10), Append(2, "x", "b", 0, 10), Get(3, "x", "a", 5, 21)}),
      Verdict::kOk);
}

TEST(LinearizabilityAppend, ReturnedLengthIsChecked) {
  EXPECT_EQ(VerdictOf({Set(1, "x", "ab", 0, 1), Append(1, "x", "c", 2, 3, 3)}), Verdict::kOk);
  EXPECT_EQ(VerdictOf({Set(1, "x", "ab", 0, 1), Append(1, "x", "c", 2, 3, 1)}),
            Verdict::kViolation);
}

TEST(LinearizabilityIncr, SequentialAndConcurrentIncrements) {
  EXPECT_EQ(VerdictOf({Incr(1, "n", 1, 0, 1), Incr(2, "n", 2, 2, 3), Get(1, "n", "2", 4, 5)}),
            Verdict::kOk);
  EXPECT_EQ(VerdictOf({Incr(1, "n", 2, 0, 10), Incr(2, "n", 1, 0, 10)}), Verdict::kOk);
  EXPECT_EQ(VerdictOf({Set(1, "n", "41", 0, 1), Incr(1, "n", 42, 2, 3)}), Verdict::kOk);
  EXPECT_EQ(VerdictOf({Set(1, "n", "-1", 0, 1), Incr(1, "n", 0, 2, 3), Get(1, "n", "0", 4, 5)}),
            Verdict::kOk);
}

TEST(LinearizabilityIncr, DuplicateValuesAreViolation) {
  EXPECT_EQ(VerdictOf({Incr(1, "n", 1, 0, 10), Incr(2, "n", 1, 0, 10)}), Verdict::kViolation);
  EXPECT_EQ(VerdictOf({Incr(1, "n", 1, 0, 1), Incr(2, "n", 3, 2, 3)}), Verdict::kViolation);
}

TEST(LinearizabilityIncr, NonIntegerState) {
  // INCR on "abc" fails in Redis: an ok reply is impossible, an error reply is excluded.
  EXPECT_EQ(VerdictOf({Set(1, "n", "abc", 0, 1), Incr(1, "n", 1, 2, 3)}), Verdict::kViolation);
  EXPECT_EQ(VerdictOf({Set(1, "n", "abc", 0, 1), Failed(Incr(1, "n", std::nullopt, 2, 3)),
                       Get(1, "n", "abc", 4, 5)}),
            Verdict::kOk);
  // Redis does not read "01" or "" as integers either.
  EXPECT_EQ(VerdictOf({Set(1, "n", "01", 0, 1), Incr(1, "n", 2, 2, 3)}), Verdict::kViolation);
  EXPECT_EQ(VerdictOf({Set(1, "n", "", 0, 1), Incr(1, "n", 1, 2, 3)}), Verdict::kViolation);
}

TEST(LinearizabilityDel, DeleteMakesNil) {
  EXPECT_EQ(
      VerdictOf({Set(1, "x", "a", 0, 1), Del(1, "x", 2, 3, 1), Get(2, "x", std::nullopt, 4, 5),
                 Del(2, "x", 6, 7, 0), Append(1, "x", "z", 8, 9, 1), Get(1, "x", "z", 10, 11),
                 Del(1, "x", 12, 13), Incr(2, "x", 1, 14, 15)}),
      Verdict::kOk);
}

TEST(LinearizabilityDel, ViolationsOfDelete) {
  // The value is read back after a completed delete.
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Del(1, "x", 2, 3), Get(2, "x", "a", 4, 5)}),
            Verdict::kViolation);
  // The count says the key existed, but nothing was ever written.
  EXPECT_EQ(VerdictOf({Del(1, "x", 0, 1, 1)}), Verdict::kViolation);
  // The count says the key did not exist, right after a write completed.
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Del(2, "x", 2, 3, 0)}), Verdict::kViolation);
}

// ---------------------------------------------------------------------------------------
// Unknown and failed outcomes.

TEST(LinearizabilityUnknown, EffectObservedLaterIsLinearizable) {
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Unknown(Set(2, "x", "b", 2, 0)),
                       Get(3, "x", "a", 10, 11), Get(3, "x", "b", 1000, 1001)}),
            Verdict::kOk);
}

TEST(LinearizabilityUnknown, EffectNeverObservedIsLinearizable) {
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Unknown(Set(2, "x", "b", 2, 0)),
                       Get(3, "x", "a", 10, 11), Get(3, "x", "a", 20, 21)}),
            Verdict::kOk);
  // Several unknown ops of every kind, none observed.
  EXPECT_EQ(VerdictOf({Set(1, "x", "7", 0, 1), Unknown(Append(2, "x", "q", 2, 0)),
                       Unknown(Incr(3, "x", 8, 2, 0)), Unknown(Del(4, "x", 3, 0)),
                       Unknown(Get(5, "x", "nonsense", 3, 0)), Get(1, "x", "7", 10, 11)}),
            Verdict::kOk);
}

TEST(LinearizabilityUnknown, EffectObservedBeforeCallIsViolation) {
  EXPECT_EQ(
      VerdictOf({Set(1, "x", "a", 0, 1), Get(3, "x", "b", 2, 3), Unknown(Set(2, "x", "b", 10, 0))}),
      Verdict::kViolation);
}

TEST(LinearizabilityUnknown, EffectObservedThenUnobservedIsViolation) {
  EXPECT_EQ(VerdictOf({Set(1, "x", "a", 0, 1), Unknown(Set(2, "x", "b", 2, 0)),
                       Get(3, "x", "b", 10, 11), Get(3, "x", "a", 20, 21)}),
            Verdict::kViolation);
}

TEST(LinearizabilityUnknown, UnknownAppendTakesEffectAtMostOnce) {
  EXPECT_EQ(VerdictOf({Append(1, "x", "a", 0, 1), Unknown(Append(2, "x", "b", 2, 0)),
                       Get(3, "x", "ab", 10, 11), Append(1, "x", "c", 12, 13),
                       Get(3, "x", "abc", 20, 21)}),
            Verdict::kOk);
  EXPECT_EQ(VerdictOf({Append(1, "x", "a", 0, 1), Unknown(Append(2, "x", "b", 2, 0)),
                       Get(3, "x", "ab", 10, 11), Get(3, "x", "abb", 20, 21)}),
            Verdict::kViolation);
}

TEST(LinearizabilityUnknown, UnknownIncrementMayExplainAGap) {
  EXPECT_EQ(VerdictOf({Incr(1, "n", 1, 0, 1), Unknown(Incr(2, "n", std::nullopt, 2, 0)),
                       Incr(1, "n", 3, 10, 11)}),
            Verdict::kOk);
  EXPECT_EQ(VerdictOf({Incr(1, "n", 1, 0, 1), Incr(1, "n", 3, 10, 11)}), Verdict::kViolation);
}

TEST(LinearizabilityFailed, FailedOperationsAreIgnored) {
  EXPECT_EQ(
      VerdictOf({Set(1, "x", "a", 0, 1), Failed(Set(2, "x", "b", 2, 3)), Get(3, "x", "a", 4, 5)}),
      Verdict::kOk);
  EXPECT_EQ(
      VerdictOf({Set(1, "x", "a", 0, 1), Failed(Set(2, "x", "b", 2, 3)), Get(3, "x", "b", 4, 5)}),
      Verdict::kViolation);
}

// ---------------------------------------------------------------------------------------
// Partitioning, the result's explanation and budgets.

TEST(LinearizabilityPartition, ViolationIsReportedWithItsKey) {
  const std::vector<Operation> history = {
      Set(1, "alpha", "1", 0, 1), Set(1, "bad", "a", 0, 1),   Set(2, "zeta", "z", 0, 1),
      Set(2, "bad", "b", 2, 3),   Get(3, "alpha", "1", 2, 3), Get(3, "bad", "a", 4, 5),
      Get(1, "zeta", "z", 4, 5),
  };
  const CheckResult result = Check(history);
  EXPECT_EQ(result.verdict, Verdict::kViolation);
  EXPECT_EQ(result.key, "bad");
  // The longest prefix is the two writes; the stale read could not follow them.
  EXPECT_EQ(result.longest_prefix, (std::vector<size_t>{1, 3}));
  EXPECT_EQ(result.unplaceable, (std::vector<size_t>{5}));
  EXPECT_NE(result.explanation.find("get(\"bad\") -> \"a\""), std::string::npos)
      << result.explanation;

  // Without the bad key, the rest is linearizable.
  std::vector<Operation> good;
  for (const Operation& op : history) {
    if (op.key != "bad") good.push_back(op);
  }
  EXPECT_EQ(VerdictOf(good), Verdict::kOk);
}

TEST(LinearizabilityPartition, ViolationWinsOverTimeoutOnAnotherKey) {
  std::vector<Operation> history;
  for (int i = 0; i < 10; i++) history.push_back(Set(i, "a", std::to_string(i), 0, 100));
  history.push_back(Get(99, "a", "5", 200, 201));
  history.push_back(Set(1, "b", "x", 0, 1));
  history.push_back(Get(2, "b", "y", 2, 3));
  Options options;
  options.max_steps_per_key = 5;
  const CheckResult result = Check(history, options);
  EXPECT_EQ(result.verdict, Verdict::kViolation);
  EXPECT_EQ(result.key, "b");
}

TEST(LinearizabilityPartition, StepBudgetGivesTimeout) {
  std::vector<Operation> history;
  for (int i = 0; i < 10; i++) history.push_back(Set(i, "a", std::to_string(i), 0, 100));
  history.push_back(Get(99, "a", "5", 200, 201));
  Options options;
  options.max_steps_per_key = 5;
  const CheckResult result = Check(history, options);
  EXPECT_EQ(result.verdict, Verdict::kTimeout);
  EXPECT_EQ(result.key, "a");
  EXPECT_EQ(VerdictOf(history), Verdict::kOk);
}

// ---------------------------------------------------------------------------------------
// A large random history of an atomic register.

// `clients` clients each run `ops_per_client` operations on key "r" against a simulated
// atomic register. Each op takes effect at a random instant inside its own random interval,
// so the history is linearizable by construction; intervals of different clients overlap.
std::vector<Operation> RandomRegisterHistory(uint64_t seed, int clients, int ops_per_client) {
  std::mt19937_64 rng(seed);
  struct Client {
    bool busy = false;
    bool applied = false;
    int done = 0;
    int64_t apply_at = 0;
    int64_t return_at = 0;
    Operation op;
  };
  std::vector<Client> state(clients);
  std::optional<std::string> value;
  std::vector<Operation> history;
  int remaining = clients * ops_per_client;
  int serial = 0;
  for (int64_t t = 0; remaining > 0; t++) {
    for (int i = 0; i < clients; i++) {
      Client& c = state[i];
      if (!c.busy && c.done < ops_per_client && rng() % 2 == 0) {
        c.busy = true;
        c.applied = false;
        c.op = Operation();
        c.op.client = i;
        c.op.key = "r";
        c.op.call = t;
        const uint64_t dice = rng() % 10;
        if (dice < 5) {
          c.op.kind = OpKind::kGet;
        } else if (dice < 9) {
          c.op.kind = OpKind::kSet;
          c.op.value = "v" + std::to_string(serial++);
        } else {
          c.op.kind = OpKind::kDel;
        }
        c.apply_at = t + static_cast<int64_t>(rng() % 6);
        c.return_at = c.apply_at + static_cast<int64_t>(rng() % 6);
      }
      if (c.busy && !c.applied && c.apply_at <= t) {
        c.applied = true;
        switch (c.op.kind) {
          case OpKind::kGet:
            c.op.output = value;
            break;
          case OpKind::kSet:
            value = c.op.value;
            break;
          case OpKind::kDel:
            c.op.output_int = value.has_value() ? 1 : 0;
            value.reset();
            break;
          default:
            break;
        }
      }
      if (c.busy && c.applied && c.return_at <= t) {
        c.op.ret = t;
        history.push_back(c.op);
        c.busy = false;
        c.done++;
        remaining--;
      }
    }
  }
  return history;
}

TEST(LinearizabilityRandom, LargeRegisterHistoryIsLinearizable) {
  const std::vector<Operation> history = RandomRegisterHistory(20261128, 5, 2000);
  ASSERT_EQ(history.size(), 10000u);
  EXPECT_EQ(VerdictOf(history), Verdict::kOk);
}

TEST(LinearizabilityRandom, LargeRegisterHistoryWithOneStaleReadIsViolation) {
  std::vector<Operation> history = RandomRegisterHistory(20261128, 5, 2000);
  // The last read of the history is made to return the value of the first write, which a
  // later write overwrote strictly before the read was called.
  size_t first_set = history.size();
  size_t last_get = history.size();
  for (size_t i = 0; i < history.size(); i++) {
    if (history[i].kind == OpKind::kSet && first_set == history.size()) first_set = i;
    if (history[i].kind == OpKind::kGet) last_get = i;
  }
  ASSERT_LT(first_set, history.size());
  ASSERT_LT(last_get, history.size());
  bool overwritten = false;
  for (const Operation& op : history) {
    overwritten |= op.kind == OpKind::kSet && op.call > history[first_set].ret &&
                   op.ret < history[last_get].call;
  }
  ASSERT_TRUE(overwritten);
  history[last_get].output = history[first_set].value;

  const CheckResult result = Check(history);
  EXPECT_EQ(result.verdict, Verdict::kViolation);
  EXPECT_EQ(result.key, "r");
}

TEST(LinearizabilityRandom, ManyClientsWithUnknownOutcomesIsLinearizable) {
  // Ten clients; every 50th write is reported unknown (its effect stays in the history) and
  // every 70th op is a write that failed and never took effect.
  std::vector<Operation> history = RandomRegisterHistory(7, 10, 300);
  for (size_t i = 0; i < history.size(); i++) {
    if (history[i].kind == OpKind::kSet && i % 50 == 0) history[i] = Unknown(history[i]);
  }
  for (size_t i = 0; i < history.size(); i += 70) {
    history.push_back(Failed(Set(99, "r", "never", history[i].call, history[i].call + 1)));
  }
  EXPECT_EQ(VerdictOf(history), Verdict::kOk);
}

// ---------------------------------------------------------------------------------------
// The JSON-lines reader.

TEST(LinearizabilityJson, RoundTrip) {
  std::vector<Operation> history = {
      Set(1, "k", "v", 123, 456),
      Get(2, "k", "v", 124, 457),
      Get(2, "k", std::nullopt, 500, 501),
      Append(3, "we\"ird\\key\n", "\x01tab\there \xc3\xa9", 0, 0, 9),
      Append(3, "k", "", 1, 2),
      Del(4, "k", -5, 7, 1),
      Incr(5, "n", -9223372036854775807LL, 10, 20),
      Unknown(Set(6, "k", "maybe", 30, 0)),
      Failed(Incr(7, "n", std::nullopt, 40, 41)),
  };
  std::string text;
  for (const Operation& op : history) text += ToJsonLine(op) + "\n";
  EXPECT_EQ(ToJsonLine(history[0]),
            R"({"client":1,"op":"set","key":"k","value":"v","output":null,"call":123,)"
            R"("return":456,"status":"ok"})");

  std::vector<Operation> read;
  ASSERT_TRUE(ReadHistoryFromString(text, &read).ok());
  EXPECT_EQ(read, history);
}

TEST(LinearizabilityJson, ReadsEscapesAbsentFieldsAndBlankLines) {
  const std::string text =
      "\n"
      R"({ "client" : 1, "op" : "get", "key" : "\u00e9\ud83d\ude00\/", "output" : "a\tb",)"
      R"( "call" : 0, "return" : 1, "status" : "ok" })"
      "\n   \n"
      R"({"client":2,"op":"set","key":"k","value":"v","call":5,"status":"unknown"})"
      "\n";
  std::vector<Operation> read;
  ASSERT_TRUE(ReadHistoryFromString(text, &read).ok());
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].key, "\xc3\xa9\xf0\x9f\x98\x80/");
  EXPECT_EQ(read[0].output, "a\tb");
  EXPECT_EQ(read[1].status, OpStatus::kUnknown);
  EXPECT_EQ(read[1].ret, kInfiniteTime);
}

TEST(LinearizabilityJson, MalformedLineReportsItsLineNumber) {
  const std::string good =
      R"({"client":1,"op":"set","key":"k","value":"v","output":null,"call":1,"return":2,)"
      R"("status":"ok"})";
  const std::vector<std::string> bad_lines = {
      R"({"client":1,"op":"set","key":"k","value":"v","call":1,"return":2,"status":"ok")",
      R"({"client":1.5,"op":"get","key":"k","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"k","call":1,"return":2,"status":"ok","extra":1})",
      R"({"client":1,"op":"get","key":"k","key":"j","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"put","key":"k","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"set","key":"k","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"k","call":3,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"k","call":1,"status":"ok"})",
      R"({"client":1,"op":"get","key":"\ud800","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"\q","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"k","call":1,"return":2,"status":"ok"} x)",
      R"({"client":1,"op":"incr","key":"k","output":"5","call":1,"return":2,"status":"ok"})",
      R"({"client":true,"op":"get","key":"k","call":1,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"k","call":99999999999999999999,"return":2,"status":"ok"})",
      R"({"client":1,"op":"get","key":"k","call":1,"return":2,"status":"maybe"})",
      R"([1,2])",
  };
  for (const std::string& bad : bad_lines) {
    std::vector<Operation> read;
    const common::Status s = ReadHistoryFromString(good + "\n" + good + "\n" + bad + "\n", &read);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().rfind("line 3: ", 0), 0u) << bad << " -> " << s.ToString();
  }
}

}  // namespace
}  // namespace linearizability
