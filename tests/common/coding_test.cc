// Byte coding: exact bytes, round trips, and CRC-32C against its published check value.
#include "common/coding.h"

#include <gtest/gtest.h>

namespace common {
namespace {

TEST(Coding, BigEndianBytesSortLikeNumbers) {
  std::string a, b;
  PutBigEndian32(&a, 0x01020304u);
  EXPECT_EQ(a, std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(DecodeBigEndian32(a.data()), 0x01020304u);
  PutBigEndian64(&b, 255);
  std::string c;
  PutBigEndian64(&c, 256);
  EXPECT_LT(b, c);
  std::string_view in = c;
  uint64_t v;
  ASSERT_TRUE(GetBigEndian64(&in, &v));
  EXPECT_EQ(v, 256u);
  char buf[4];
  EncodeBigEndian32(buf, 0xfffffffeu);
  EXPECT_EQ(DecodeBigEndian32(buf), 0xfffffffeu);
}

TEST(Coding, FixedLittleEndianRoundTripsAndRefusesShortInput) {
  std::string s;
  PutFixed32(&s, 0xdeadbeefu);
  PutFixed64(&s, 0x0102030405060708ull);
  EXPECT_EQ(s[0], '\xef');
  std::string_view in = s;
  uint32_t a;
  uint64_t b;
  ASSERT_TRUE(GetFixed32(&in, &a));
  ASSERT_TRUE(GetFixed64(&in, &b));
  EXPECT_EQ(a, 0xdeadbeefu);
  EXPECT_EQ(b, 0x0102030405060708ull);
  EXPECT_TRUE(in.empty());
  EXPECT_FALSE(GetFixed32(&in, &a));
}

// The instruction-based CRC and the table agree on every length and alignment, and when a
// CRC is continued at any split point.
TEST(Coding, Crc32cAgreesWithThePortableTable) {
  std::string data;
  for (int i = 0; i < 300; i++) data.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  EXPECT_EQ(Crc32cPortable("123456789"), 0xe3069283u);
  for (size_t offset = 0; offset < 9; offset++) {
    for (size_t len = 0; offset + len <= data.size(); len += 7) {
      std::string_view part(data.data() + offset, len);
      ASSERT_EQ(Crc32c(part), Crc32cPortable(part)) << "offset " << offset << " length " << len;
      ASSERT_EQ(Crc32c(part, 0x1234u), Crc32cPortable(part, 0x1234u));
    }
  }
  for (size_t split = 0; split <= data.size(); split += 13) {
    std::string_view a(data.data(), split), b(data.data() + split, data.size() - split);
    EXPECT_EQ(Crc32c(b, Crc32c(a)), Crc32cPortable(data));
  }
}

TEST(Coding, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  // Continuing a CRC equals computing it over the concatenation.
  EXPECT_EQ(Crc32c("6789", Crc32c("12345")), Crc32c("123456789"));
}

}  // namespace
}  // namespace common
