// The harness's own checks (KvLabHarness.*, no processes): the lab's append checks and the
// history check fail where they must.
#include "tests/kvlab/harness.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvlab {
namespace {

using linearizability::Operation;
using linearizability::OpKind;

std::string Elements(int clnt, std::vector<int> ks) {
  std::string v;
  for (int k : ks) v += "x " + std::to_string(clnt) + " " + std::to_string(k) + " y";
  return v;
}

TEST(KvLabHarness, CheckClntAppends) {
  EXPECT_TRUE(CheckClntAppends(0, "", 0));
  EXPECT_TRUE(CheckClntAppends(3, Elements(3, {0, 1, 2}), 3));
  // Other clients' elements in between, and "x 1 1 y" is not found inside "x 11 1 y".
  EXPECT_TRUE(CheckClntAppends(1, Elements(1, {0}) + Elements(11, {1}) + Elements(1, {1}), 2));
  EXPECT_FALSE(CheckClntAppends(1, Elements(11, {1}) + Elements(1, {0}), 2));
  const ::testing::AssertionResult missing = CheckClntAppends(0, Elements(0, {0, 2}), 3);
  EXPECT_FALSE(missing);
  EXPECT_NE(std::string(missing.message()).find("missing element x 0 1 y"), std::string::npos);
  const ::testing::AssertionResult duplicate = CheckClntAppends(0, Elements(0, {0, 1, 1}), 2);
  EXPECT_FALSE(duplicate);
  EXPECT_NE(std::string(duplicate.message()).find("duplicate element x 0 1 y"), std::string::npos);
  const ::testing::AssertionResult order = CheckClntAppends(0, Elements(0, {1, 0}), 2);
  EXPECT_FALSE(order);
  EXPECT_NE(std::string(order.message()).find("wrong order"), std::string::npos);
  // An append that never completed must not be there, unless its outcome is unknown (then at
  // most once, after the others).
  EXPECT_FALSE(CheckClntAppends(0, Elements(0, {0, 1}), 1));
  EXPECT_TRUE(CheckClntAppends(0, Elements(0, {0, 1}), 1, true));
  EXPECT_TRUE(CheckClntAppends(0, Elements(0, {0}), 1, true));
  EXPECT_FALSE(CheckClntAppends(0, Elements(0, {0, 1, 1}), 1, true));
  EXPECT_FALSE(CheckClntAppends(0, Elements(0, {1, 0}), 1, true));
}

TEST(KvLabHarness, CheckConcurrentAppends) {
  const std::string v = Elements(1, {0}) + Elements(0, {0}) + Elements(1, {1}) + Elements(0, {1});
  EXPECT_TRUE(CheckConcurrentAppends(v, {2, 2}));
  EXPECT_FALSE(CheckConcurrentAppends(v, {2, 3}));
  EXPECT_FALSE(CheckConcurrentAppends(v + Elements(0, {1}), {2, 2}));
}

Operation Op(int64_t client, OpKind kind, std::string value, int64_t call, int64_t ret) {
  Operation op;
  op.client = client;
  op.kind = kind;
  op.key = "k";
  if (kind == OpKind::kGet) {
    op.output = std::move(value);
  } else {
    op.value = std::move(value);
  }
  op.call = call;
  op.ret = ret;
  return op;
}

void CheckStaleRead() {
  History h;
  h.Add(Op(1, OpKind::kSet, "a", 0, 10));
  h.Add(Op(1, OpKind::kSet, "b", 20, 30));
  h.Add(Op(2, OpKind::kGet, "a", 40, 50));  // "b" was written before this read began
  h.Check();
}

TEST(KvLabHarness, HistoryCheckFailsOnAViolation) {
  EXPECT_NONFATAL_FAILURE(CheckStaleRead(), "history is not linearizable");
  History h;
  h.Add(Op(1, OpKind::kSet, "a", 0, 10));
  h.Add(Op(2, OpKind::kGet, "a", 5, 15));
  h.Add(Op(3, OpKind::kAppend, "b", 20, 30));
  h.Add(Op(2, OpKind::kGet, "ab", 25, 35));
  EXPECT_EQ(h.size(), 4u);
  h.Check();
}

}  // namespace
}  // namespace kvlab
