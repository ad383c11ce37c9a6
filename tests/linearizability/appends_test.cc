// Unit tests of the lost/duplicated-append check: hand-made histories with a lost, a duplicated
// and a corrupt token, the choice of the final read, unknown and failed APPENDs, and the
// histories it refuses to judge.
#include "tests/linearizability/appends.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace linearizability {
namespace {

Operation Append(int64_t client, const std::string& key, const std::string& token, int64_t call,
                 int64_t ret, OpStatus status = OpStatus::kOk) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kAppend;
  op.key = key;
  op.value = token;
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

Operation Get(int64_t client, const std::string& key, std::optional<std::string> output,
              int64_t call, int64_t ret, OpStatus status = OpStatus::kOk) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kGet;
  op.key = key;
  op.output = std::move(output);
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

Operation Set(int64_t client, const std::string& key, const std::string& value, int64_t call,
              int64_t ret) {
  Operation op = Get(client, key, std::nullopt, call, ret);
  op.kind = OpKind::kSet;
  op.value = value;
  return op;
}

AppendCheckResult MustCheck(const std::vector<Operation>& history) {
  AppendCheckResult result;
  const common::Status s = CheckAppends(history, &result);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return result;
}

using Tokens = std::vector<std::string>;

TEST(AppendsTest, EveryAcknowledgedTokenOnceIsOk) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 10),         Append(2, "a0", "c2.0;", 5, 15),
      Get(3, "a0", "c1.0;", 11, 12),  // a read during the load
      Append(1, "a0", "c1.1;", 20, 30),        Append(2, "a1", "c2.1;", 20, 30),
      Get(9, "a0", "c1.0;c2.0;c1.1;", 40, 50), Get(9, "a1", "c2.1;", 40, 50),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_TRUE(result.ok()) << result.Explain();
  EXPECT_EQ(result.lost, 0);
  EXPECT_EQ(result.duplicated, 0);
  EXPECT_EQ(result.corrupt, 0);
  ASSERT_EQ(result.keys.size(), 2u);
  EXPECT_EQ(result.keys[0].key, "a0");
  EXPECT_EQ(result.keys[0].ok_appends, 3);
  EXPECT_EQ(result.keys[0].pieces, 3);
  EXPECT_EQ(result.keys[1].key, "a1");
  EXPECT_EQ(result.Explain(), "");
}

TEST(AppendsTest, AMissingAcknowledgedTokenIsLost) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 10),
      Append(2, "a0", "c2.0;", 0, 10),
      Append(1, "a0", "c1.1;", 20, 30),
      Get(9, "a0", "c1.0;c1.1;", 40, 50),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.lost, 1);
  EXPECT_EQ(result.duplicated, 0);
  EXPECT_EQ(result.corrupt, 0);
  ASSERT_EQ(result.keys.size(), 1u);
  EXPECT_EQ(result.keys[0].lost, Tokens{"c2.0;"});
  EXPECT_NE(result.Explain().find("lost (1): \"c2.0;\""), std::string::npos) << result.Explain();
}

TEST(AppendsTest, ATokenTwiceIsDuplicatedWhateverItsStatus) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 10),
      Append(2, "a0", "c2.0;", 0, 0, OpStatus::kUnknown),
      Append(1, "a0", "c1.1;", 20, 30),
      Get(9, "a0", "c1.0;c2.0;c1.0;c1.1;c2.0;c2.0;", 40, 50),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_EQ(result.lost, 0);
  EXPECT_EQ(result.duplicated, 2);
  EXPECT_EQ(result.corrupt, 0);
  EXPECT_EQ(result.keys[0].duplicated, (Tokens{"c1.0;", "c2.0;"}));
  EXPECT_EQ(result.keys[0].pieces, 6);
}

TEST(AppendsTest, PiecesNoOkOrUnknownAppendIssuedAreCorrupt) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 10),
      Append(2, "a0", "c2.0;", 0, 10, OpStatus::kFailed),  // refused: must not be applied
      Append(3, "a1", "c3.0;", 0, 10),
      // A token never issued, the failed one, one of another key, and a cut-off rest.
      Get(9, "a0", "c1.0;c7.7;c2.0;c3.0;c1.", 40, 50),
      Get(9, "a1", "c3.0;", 40, 50),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_EQ(result.lost, 0);
  EXPECT_EQ(result.duplicated, 0);
  EXPECT_EQ(result.corrupt, 4);
  EXPECT_EQ(result.keys[0].corrupt, (Tokens{"c7.7;", "c2.0;", "c3.0;", "c1."}));
  EXPECT_EQ(result.keys[0].failed_appends, 1);
  EXPECT_TRUE(result.keys[1].corrupt.empty());
}

TEST(AppendsTest, UnknownAppendsMayBeMissingOrPresent) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 0, OpStatus::kUnknown),
      Append(2, "a0", "c2.0;", 0, 0, OpStatus::kUnknown),
      Append(3, "a0", "c3.0;", 5, 8),
      Get(9, "a0", "c3.0;c2.0;", 40, 50),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_TRUE(result.ok()) << result.Explain();
  EXPECT_EQ(result.keys[0].unknown_appends, 2);
}

TEST(AppendsTest, NilFinalReadLosesEveryAcknowledgedToken) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 10),
      Append(1, "a0", "c1.1;", 0, 0, OpStatus::kUnknown),
      Get(9, "a0", std::nullopt, 40, 50),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_EQ(result.lost, 1);
  EXPECT_EQ(result.keys[0].final_value, "");
  EXPECT_EQ(result.keys[0].pieces, 0);
}

TEST(AppendsTest, TheFinalReadIsTheLatestOkGetAfterEveryAppendReturned) {
  const std::vector<Operation> history = {
      Append(1, "a0", "c1.0;", 0, 10),
      Append(1, "a0", "c1.1;", 20, 30),
      // Before c1.1 returned: not a final read, even though it is the last to return.
      Get(2, "a0", "c1.0;", 25, 100),
      // After: candidates; the latest call wins. A failed and an unknown GET do not count.
      Get(9, "a0", "c1.0;", 31, 35),
      Get(9, "a0", "c1.0;c1.1;", 40, 50),
      Get(9, "a0", std::nullopt, 60, 70, OpStatus::kFailed),
      Get(9, "a0", std::nullopt, 80, 0, OpStatus::kUnknown),
      // Unknown and failed APPENDs later on do not move the bar.
      Append(3, "a0", "c3.0;", 45, 0, OpStatus::kUnknown),
      Append(3, "a0", "c3.1;", 36, 37, OpStatus::kFailed),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_TRUE(result.ok()) << result.Explain();
  EXPECT_EQ(result.keys[0].final_value, "c1.0;c1.1;");
}

TEST(AppendsTest, KeysWithoutAppendsAreIgnored) {
  const std::vector<Operation> history = {
      Set(1, "r0", "x", 0, 10),
      Get(2, "r0", "x", 20, 30),
  };
  const AppendCheckResult result = MustCheck(history);
  EXPECT_TRUE(result.ok());
  EXPECT_TRUE(result.keys.empty());
}

TEST(AppendsTest, RefusesHistoriesItCannotJudge) {
  const Operation final_read = Get(9, "a0", "c1.0;", 40, 50);
  struct Case {
    const char* name;
    std::vector<Operation> history;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"no separator", {Append(1, "a0", "c1.0", 0, 10), final_read}, "not one token"},
      {"two separators", {Append(1, "a0", "c1;0;", 0, 10), final_read}, "not one token"},
      {"empty", {Append(1, "a0", "", 0, 10), final_read}, "not one token"},
      {"token reused",
       {Append(1, "a0", "c1.0;", 0, 10), Append(2, "a1", "c1.0;", 0, 10), final_read,
        Get(9, "a1", "c1.0;", 40, 50)},
       "append the same"},
      {"other writes",
       {Append(1, "a0", "c1.0;", 0, 10), Set(2, "a0", "x", 11, 12), final_read},
       "other writes"},
      {"no final read", {Append(1, "a0", "c1.0;", 0, 10)}, "no final read"},
      {"final read too early",
       {Append(1, "a0", "c1.0;", 0, 10), Get(9, "a0", "c1.0;", 10, 50)},
       "no final read"},
  };
  for (const Case& c : cases) {
    AppendCheckResult result;
    const common::Status s = CheckAppends(c.history, &result);
    EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << c.name;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.name << ": " << s.ToString();
  }
}

TEST(AppendsTest, ReadsAJsonHistory) {
  const std::string text =
      R"({"client":1,"op":"append","key":"a0","value":"c1.0;","output":5,"call":1,"return":2,"status":"ok"})"
      "\n"
      R"({"client":2,"op":"append","key":"a0","value":"c2.0;","call":1,"return":2,"status":"ok"})"
      "\n"
      R"({"client":9,"op":"get","key":"a0","output":"c2.0;","call":3,"return":4,"status":"ok"})"
      "\n";
  std::vector<Operation> history;
  ASSERT_TRUE(ReadHistoryFromString(text, &history).ok());
  const AppendCheckResult result = MustCheck(history);
  EXPECT_EQ(result.lost, 1);
  EXPECT_EQ(result.keys[0].lost, Tokens{"c1.0;"});
}

}  // namespace
}  // namespace linearizability
