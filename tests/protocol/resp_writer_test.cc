// The RESP2 reply writer: the exact bytes of every reply type.
#include "protocol/resp_writer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "protocol/resp_parser.h"

namespace protocol {
namespace {

TEST(RespWriter, SimpleString) {
  std::string out;
  RespWriter w(&out);
  w.SimpleString("OK");
  w.SimpleString("");
  EXPECT_EQ(out, "+OK\r\n+\r\n");
}

TEST(RespWriter, SimpleStringStaysOneLine) {
  std::string out;
  RespWriter(&out).SimpleString("a\r\nb\rc\nd\r\n");
  EXPECT_EQ(out, "+a  b c d\r\n");
}

TEST(RespWriter, Error) {
  std::string out;
  RespWriter w(&out);
  w.Error("ERR syntax error");
  w.Error("WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_EQ(out,
            "-ERR syntax error\r\n"
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

TEST(RespWriter, ErrorDoesNotDoubleTheDash) {
  std::string out;
  RespWriter(&out).Error("-ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(out, "-ERR Protocol error: invalid multibulk length\r\n");
}

TEST(RespWriter, ErrorStaysOneLine) {
  std::string out;
  RespWriter w(&out);
  w.Error("ERR bad\r\nthing\r\n");
  w.Error("");
  w.Error("-");
  EXPECT_EQ(out, "-ERR bad  thing\r\n-ERR\r\n-ERR\r\n");
}

TEST(RespWriter, ParserErrorLineWritesAsRedisSendsIt) {
  RespParser p(RespParser::Limits(), true);
  Request r;
  p.Feed("*1\r\nfoo\r\n");
  ASSERT_EQ(p.Next(&r), RespParser::Result::kError);
  std::string out;
  RespWriter(&out).Error(p.error());
  EXPECT_EQ(out, "-ERR Protocol error: expected '$', got 'f'\r\n");
}

TEST(RespWriter, Integer) {
  std::string out;
  RespWriter w(&out);
  w.Integer(0);
  w.Integer(42);
  w.Integer(-1);
  w.Integer(std::numeric_limits<int64_t>::max());
  w.Integer(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(out, ":0\r\n:42\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n");
}

TEST(RespWriter, BulkStringIsBinarySafe) {
  std::string out;
  RespWriter w(&out);
  w.BulkString("bar");
  w.BulkString("");
  w.BulkString(std::string("a\0\r\nb", 5));
  constexpr char kWant[] = "$3\r\nbar\r\n$0\r\n\r\n$5\r\na\0\r\nb\r\n";
  EXPECT_EQ(out, std::string(kWant, sizeof(kWant) - 1));
}

TEST(RespWriter, NullBulkAndNullArray) {
  std::string out;
  RespWriter w(&out);
  w.NullBulk();
  w.NullArray();
  EXPECT_EQ(out, "$-1\r\n*-1\r\n");
}

TEST(RespWriter, ArrayHeaderThenElements) {
  std::string out;
  RespWriter w(&out);
  w.ArrayHeader(3);
  w.BulkString("v");
  w.NullBulk();
  w.Integer(7);
  w.ArrayHeader(0);
  EXPECT_EQ(out, "*3\r\n$1\r\nv\r\n$-1\r\n:7\r\n*0\r\n");
}

TEST(RespWriter, BulkStringArray) {
  std::string out;
  RespWriter w(&out);
  w.BulkStringArray({"a", "", "bc"});
  w.BulkStringArray({});
  EXPECT_EQ(out, "*3\r\n$1\r\na\r\n$0\r\n\r\n$2\r\nbc\r\n*0\r\n");
}

TEST(RespWriter, CommonReplies) {
  std::string out;
  RespWriter w(&out);
  w.Ok();
  w.Pong();
  w.Queued();
  EXPECT_EQ(out, "+OK\r\n+PONG\r\n+QUEUED\r\n");
}

TEST(RespWriter, AppendsAfterWhatTheStringHolds) {
  std::string out = "+OK\r\n";
  RespWriter w(&out);
  EXPECT_EQ(w.out(), &out);
  w.Integer(1);
  EXPECT_EQ(out, "+OK\r\n:1\r\n");
}

// An array of bulk strings is also the encoding of a request: the parser reads it back.
TEST(RespWriter, BulkStringArrayParsesBackAsARequest) {
  std::vector<std::string> args = {"SET", std::string("k\0\xff", 3), "v\r\n"};
  std::string out;
  RespWriter(&out).BulkStringArray(args);
  RespParser p(RespParser::Limits(), true);
  p.Feed(out);
  Request r;
  ASSERT_EQ(p.Next(&r), RespParser::Result::kRequest);
  EXPECT_EQ(r.args, args);
  EXPECT_EQ(p.Next(&r), RespParser::Result::kNeedMore);
}

}  // namespace
}  // namespace protocol
