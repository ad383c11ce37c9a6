// The shared string helpers: Redis's integer parsing and ASCII lower case.
#include "common/strings.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace common {
namespace {

TEST(ParseInt64, RedisString2ll) {
  int64_t v = 0;
  EXPECT_TRUE(ParseInt64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(ParseInt64("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_TRUE(ParseInt64("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  for (const char* bad : {"", "-", "-0", "00", "01", "+1", " 1", "1 ", "1.0", "abc",
                          "9223372036854775808", "-9223372036854775809"}) {
    EXPECT_FALSE(ParseInt64(bad, &v)) << "'" << bad << "'";
  }
}

TEST(AsciiLower, OnlyAsciiLettersChange) {
  EXPECT_EQ(AsciiLower("SET"), "set");
  EXPECT_EQ(AsciiLower("Raft.Transfer-LEADER"), "raft.transfer-leader");
  EXPECT_EQ(AsciiLower(std::string("A\xc3\x89\x00Z", 5)), std::string("a\xc3\x89\x00z", 5));
}

}  // namespace
}  // namespace common
