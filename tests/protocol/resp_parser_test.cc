// The RESP request parser: the malformed-input table of the reliability plan (§6.6), one test
// per row about parsing, with Redis's exact reply and whether the connection closes; then
// pipelining, every split of the input, inline quoting, the limits, and seeded random tests.
#include "protocol/resp_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

// The largest single allocation made while `g_track_allocations` is set, to show that a
// declared length is never allocated ahead of the bytes that carry it.
namespace {
bool g_track_allocations = false;
size_t g_largest_allocation = 0;
}  // namespace

// Out of line, so that the compiler never pairs a new-expression with the free() inside.
[[gnu::noinline]] void* operator new(size_t n) {
  if (g_track_allocations) g_largest_allocation = std::max(g_largest_allocation, n);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace protocol {
namespace {

using Args = std::vector<std::string>;
using Result = RespParser::Result;

// What a connection sees for an input: the requests, then the error reply if any.
struct Outcome {
  std::vector<Args> requests;
  std::string error;  // empty: no error, the connection stays open
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << o.requests.size() << " requests [";
  for (const Args& args : o.requests) {
    os << "(";
    for (const std::string& a : args) os << a.size() << ":" << a.substr(0, 20) << " ";
    os << ")";
  }
  return os << "] error='" << o.error << "'";
}

RespParser::Limits Defaults() { return RespParser::Limits(); }

// Small limits so that the tests at and above each limit stay fast.
RespParser::Limits Small() {
  RespParser::Limits l;
  l.max_inline_bytes = 16;
  l.max_multibulk_count = 4;
  l.max_bulk_bytes = 8;
  l.max_unauthenticated_multibulk_count = 2;
  l.max_unauthenticated_bulk_bytes = 4;
  return l;
}

// Takes out every request the parser can give; records the error, if any.
void Drain(RespParser* p, Outcome* o) {
  Request r;
  while (true) {
    Result res = p->Next(&r);
    if (res == Result::kNeedMore) return;
    if (res == Result::kError) {
      o->error = p->error();
      EXPECT_TRUE(p->close_after_reply());
      return;
    }
    EXPECT_FALSE(r.args.empty());
    o->requests.push_back(r.args);
  }
}

// Feeds `input` in pieces of `piece` bytes (0: all at once), draining after each.
Outcome Parse(std::string_view input, size_t piece = 0,
              const RespParser::Limits& limits = Defaults(), bool authenticated = true) {
  RespParser p(limits, authenticated);
  Outcome o;
  if (piece == 0) piece = std::max<size_t>(input.size(), 1);
  for (size_t at = 0; at < input.size() && o.error.empty(); at += piece) {
    p.Feed(input.substr(at, piece));
    Drain(&p, &o);
  }
  if (input.empty()) Drain(&p, &o);
  if (o.error.empty()) {
    EXPECT_FALSE(p.close_after_reply());
  }
  return o;
}

// Parses all at once, one byte at a time and in two pieces split at every byte, expects the
// same outcome each way, and returns it.
Outcome ParseEveryWay(std::string_view input, const RespParser::Limits& limits = Defaults(),
                      bool authenticated = true) {
  Outcome whole = Parse(input, 0, limits, authenticated);
  EXPECT_EQ(Parse(input, 1, limits, authenticated), whole) << "fed one byte at a time";
  for (size_t k = 1; k < input.size() && input.size() < 4096; ++k) {
    RespParser p(limits, authenticated);
    Outcome o;
    p.Feed(input.substr(0, k));
    Drain(&p, &o);
    if (o.error.empty()) {
      p.Feed(input.substr(k));
      Drain(&p, &o);
    }
    EXPECT_EQ(o, whole) << "split at byte " << k;
  }
  return whole;
}

Outcome Requests(std::vector<Args> requests) { return Outcome{std::move(requests), ""}; }
Outcome Error(std::vector<Args> before, std::string line) {
  return Outcome{std::move(before), std::move(line)};
}

const std::string kPing = "*1\r\n$4\r\nPING\r\n";

// --- §6.6, rows about parsing -------------------------------------------------------------

TEST(RespParserTable, Row01_EmptyLineIsSkippedThenPing) {
  EXPECT_EQ(ParseEveryWay("\r\nPING\r\n"), Requests({{"PING"}}));
}

TEST(RespParserTable, Row02_NegativeMultibulkCountIsSkipped) {
  EXPECT_EQ(ParseEveryWay("*-10\r\n" + kPing), Requests({{"PING"}}));
}

TEST(RespParserTable, Row03_ZeroMultibulkCountIsSkipped) {
  EXPECT_EQ(ParseEveryWay("*0\r\n" + kPing), Requests({{"PING"}}));
}

TEST(RespParserTable, Row04_MultibulkCountAboveIntMax) {
  EXPECT_EQ(ParseEveryWay("*3000000000\r\n"),
            Error({}, "-ERR Protocol error: invalid multibulk length"));
}

TEST(RespParserTable, Row05_MultibulkCountNotANumber) {
  EXPECT_EQ(ParseEveryWay("*abc\r\n"), Error({}, "-ERR Protocol error: invalid multibulk length"));
}

TEST(RespParserTable, Row06_MultibulkCountAboveOurCap) {
  EXPECT_EQ(ParseEveryWay("*2000000\r\n"),
            Error({}, "-ERR Protocol error: invalid multibulk length"));
  EXPECT_EQ(Parse("*1048577\r\n"), Error({}, "-ERR Protocol error: invalid multibulk length"));
  EXPECT_EQ(Parse("*1048576\r\n"), Requests({}));  // at the cap: waits for the arguments
}

TEST(RespParserTable, Row07_JunkWhereBulkHeaderExpected) {
  EXPECT_EQ(ParseEveryWay("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            Error({}, "-ERR Protocol error: expected '$', got 'f'"));
}

TEST(RespParserTable, Row08_MultibulkNotFollowedByBulk) {
  EXPECT_EQ(ParseEveryWay("*1\r\nfoo\r\n"),
            Error({}, "-ERR Protocol error: expected '$', got 'f'"));
}

TEST(RespParserTable, Row09_NegativeBulkLength) {
  EXPECT_EQ(ParseEveryWay("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
            Error({}, "-ERR Protocol error: invalid bulk length"));
}

TEST(RespParserTable, Row10_BulkLengthOver512MiB) {
  EXPECT_EQ(ParseEveryWay("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
            Error({}, "-ERR Protocol error: invalid bulk length"));
  EXPECT_EQ(Parse("*1\r\n$536870913\r\n"), Error({}, "-ERR Protocol error: invalid bulk length"));
  EXPECT_EQ(Parse("*1\r\n$536870912\r\n"), Requests({}));  // at the limit: waits for the bytes
}

TEST(RespParserTable, Row11_BulkLengthNotANumber) {
  EXPECT_EQ(ParseEveryWay("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"),
            Error({}, "-ERR Protocol error: invalid bulk length"));
}

TEST(RespParserTable, Row12_UnbalancedQuotesInline) {
  EXPECT_EQ(ParseEveryWay("set \"\"\"test-key\"\"\" test-value\r\n"),
            Error({}, "-ERR Protocol error: unbalanced quotes in request"));
}

TEST(RespParserTable, Row13_InlineRequestTooBig) {
  EXPECT_EQ(ParseEveryWay(std::string(65 * 1024, 'A')),
            Error({}, "-ERR Protocol error: too big inline request"));
}

TEST(RespParserTable, Row14_MultibulkCountLineTooBig) {
  EXPECT_EQ(ParseEveryWay("*" + std::string(65 * 1024, '1')),
            Error({}, "-ERR Protocol error: too big mbulk count string"));
}

TEST(RespParserTable, Row15_BulkLengthLineTooBig) {
  EXPECT_EQ(ParseEveryWay("*1\r\n$" + std::string(65 * 1024, '1')),
            Error({}, "-ERR Protocol error: too big bulk count string"));
}

// Redis's "protocol desync" regression test: a prefix, then a stream of bytes with no line
// end. The error comes once more than 64 KiB are buffered, and not before.
TEST(RespParserTable, Row16_ProtocolDesyncStreamsEndInAnError) {
  const std::pair<std::string, std::string> cases[] = {
      {std::string("\0", 1), "-ERR Protocol error: too big inline request"},
      {std::string("*\0", 2), "-ERR Protocol error: too big mbulk count string"},
      {std::string("$\0", 2), "-ERR Protocol error: too big inline request"},
  };
  for (const auto& [prefix, want] : cases) {
    RespParser p(Defaults(), true);
    Request r;
    p.Feed(prefix);
    size_t fed = prefix.size();
    Result res = p.Next(&r);
    while (res == Result::kNeedMore) {
      ASSERT_LE(fed, 64u * 1024) << "no error after " << fed << " bytes";
      p.Feed("payload");
      fed += 7;
      res = p.Next(&r);
    }
    ASSERT_EQ(res, Result::kError);
    EXPECT_GT(fed, 64u * 1024);
    EXPECT_EQ(p.error(), want);
    EXPECT_TRUE(p.close_after_reply());
  }
}

TEST(RespParserTable, Row17_NoCrlfAfterBulk) {
  EXPECT_EQ(ParseEveryWay("*1\r\n$4\r\nPINGXY"),
            Error({}, "-ERR Protocol error: expected CRLF after bulk"));
}

TEST(RespParserTable, Row18_TruncatedRequestIsHeldUntilTheParserGoes) {
  auto p = std::make_unique<RespParser>(Defaults(), true);
  Request r;
  p->Feed("*2\r\n$3\r\nGET\r\n");
  EXPECT_EQ(p->Next(&r), Result::kNeedMore);
  EXPECT_FALSE(p->close_after_reply());
  EXPECT_EQ(p->pending_bytes(), 3u);  // "GET", held for the second argument
  p.reset();                          // the client closed: everything is freed (ASan checks)
}

TEST(RespParserTable, Row19_TenThousandPipelinedPings) {
  std::string multibulk, mixed;
  for (int i = 0; i < 10000; ++i) {
    multibulk += kPing;
    mixed += i % 2 == 0 ? kPing : "PING\r\n";
  }
  std::vector<Args> want(10000, Args{"PING"});
  EXPECT_EQ(Parse(multibulk), Requests(want));
  EXPECT_EQ(Parse(mixed), Requests(want));
  EXPECT_EQ(Parse(mixed, 4096), Requests(want));
}

TEST(RespParserTable, Row20_UnauthenticatedMultibulkCount) {
  EXPECT_EQ(ParseEveryWay("*11\r\n", Defaults(), false),
            Error({}, "-ERR Protocol error: unauthenticated multibulk length"));
  EXPECT_EQ(Parse("*10\r\n", 0, Defaults(), false), Requests({}));
}

TEST(RespParserTable, Row21_UnauthenticatedBulkLength) {
  EXPECT_EQ(ParseEveryWay("*2\r\n$4\r\nAUTH\r\n$16385\r\n", Defaults(), false),
            Error({}, "-ERR Protocol error: unauthenticated bulk length"));
}

// The parser's part of row 22: a password of exactly 16384 bytes reaches AUTH, which answers.
TEST(RespParserTable, Row22_UnauthenticatedBulkAtTheLimitParses) {
  std::string password(16384, 'p');
  EXPECT_EQ(Parse("*2\r\n$4\r\nAUTH\r\n$16384\r\n" + password + "\r\n", 1000, Defaults(), false),
            Requests({{"AUTH", password}}));
}

// The parser's part of row 26: the arguments reach the command table intact.
TEST(RespParserTable, Row26_UnknownCommandReachesTheServerWithItsArgs) {
  EXPECT_EQ(ParseEveryWay("FOO a b\r\n*3\r\n$3\r\nFOO\r\n$1\r\na\r\n$1\r\nb\r\n"),
            Requests({{"FOO", "a", "b"}, {"FOO", "a", "b"}}));
}

// Row 27: a RESP3 map does not start with '*', so it is an inline command named "%1".
TEST(RespParserTable, Row27_Resp3MapIsReadAsAnInlineCommand) {
  EXPECT_EQ(ParseEveryWay("%1\r\n"), Requests({{"%1"}}));
}

// The parser's part of row 35: 2 MiB is far below proto-max-bulk-len; the replicated log's
// own entry limit is the server's to enforce.
TEST(RespParserTable, Row35_TwoMiBValueParses) {
  std::string value(2 << 20, 'v');
  std::string input = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n" + value + "\r\n";
  EXPECT_EQ(Parse(input, 16 * 1024), Requests({{"SET", "k", value}}));
}

// --- Pipelining, splitting, errors ----------------------------------------------------------

constexpr char kCorpusBytes[] =
    "PING\r\n"
    "\r\n"
    "   \t \r\n"
    "*0\r\n"
    "*-1\r\n"
    "set \"a b\" 'c\\'d' \"\\x00\\xff\\n\"\r\n"
    "*3\r\n$3\r\nSET\r\n$5\r\nk\0\r\ny\r\n$0\r\n\r\n"
    "GET k\n"
    "*2\r\n$4\r\nECHO\r\n$12\r\n*1\r\n$4\r\nPING\r\n"
    "%1\r\n";
const std::string kCorpus(kCorpusBytes, sizeof(kCorpusBytes) - 1);

std::vector<Args> CorpusRequests() {
  return {{"PING"},
          {"set", "a b", "c'd", std::string("\0\xff\n", 3)},
          {"SET", std::string("k\0\r\ny", 5), ""},
          {"GET", "k"},
          {"ECHO", "*1\r\n$4\r\nPING"},
          {"%1"}};
}

TEST(RespParser, PipelinedRequestsComeOutInOrder) {
  EXPECT_EQ(Parse(kCorpus), Requests(CorpusRequests()));
}

TEST(RespParser, EverySplitGivesTheSameRequests) {
  // One byte at a time, and two pieces split at every byte (inside ParseEveryWay).
  EXPECT_EQ(ParseEveryWay(kCorpus), Requests(CorpusRequests()));
}

TEST(RespParser, CorpusBytesDefinedWithEmbeddedNul) {
  // kCorpus holds a NUL inside a payload: make sure the literal kept it.
  EXPECT_NE(kCorpus.find(std::string("k\0\r\ny", 5)), std::string::npos);
}

TEST(RespParser, RequestsBeforeAnErrorAreReturned) {
  EXPECT_EQ(ParseEveryWay("PING\r\n" + kPing + "*abc\r\nPING\r\n"),
            Error({{"PING"}, {"PING"}}, "-ERR Protocol error: invalid multibulk length"));
}

TEST(RespParser, ErrorIsFinalAndReleasesTheBuffer) {
  RespParser p(Defaults(), true);
  Request r;
  p.Feed("*x\r\nPING\r\n");
  EXPECT_EQ(p.Next(&r), Result::kError);
  EXPECT_EQ(p.pending_bytes(), 0u);
  p.Feed("PING\r\n");
  EXPECT_EQ(p.Next(&r), Result::kError);
  EXPECT_EQ(p.error(), "-ERR Protocol error: invalid multibulk length");
  EXPECT_TRUE(p.close_after_reply());
  EXPECT_EQ(p.pending_bytes(), 0u);
}

TEST(RespParser, NextWithNothingFedNeedsMore) {
  RespParser p(Defaults(), true);
  Request r;
  EXPECT_EQ(p.Next(&r), Result::kNeedMore);
  EXPECT_EQ(p.error(), "");
  EXPECT_FALSE(p.close_after_reply());
}

TEST(RespParser, PendingBytesFollowTheRequestInProgress) {
  RespParser p(Defaults(), true);
  Request r;
  p.Feed("*2\r\n$3\r\nGET\r\n$5\r\nab");
  EXPECT_EQ(p.Next(&r), Result::kNeedMore);
  EXPECT_EQ(p.pending_bytes(), 5u);  // "GET" and "ab"
  p.Feed("cde\r\nPI");
  EXPECT_EQ(p.Next(&r), Result::kRequest);
  EXPECT_EQ(r.args, (Args{"GET", "abcde"}));
  EXPECT_EQ(p.pending_bytes(), 2u);  // "PI"
}

TEST(RespParser, MalformedIntegersAreRefusedLikeRedis) {
  for (const char* count : {"01", "+1", " 1", "1 ", "-0", "-", "", "1x", "99999999999999999999",
                            "1\rX", "-99999999999999999999"}) {
    EXPECT_EQ(ParseEveryWay(std::string("*") + count + "\r\n"),
              Error({}, "-ERR Protocol error: invalid multibulk length"))
        << count;
  }
  for (const char* len : {"01", "+1", "", "-0", "-1", "1x", "1\rX"}) {
    EXPECT_EQ(ParseEveryWay(std::string("*1\r\n$") + len + "\r\n"),
              Error({}, "-ERR Protocol error: invalid bulk length"))
        << len;
  }
  // Extremes that are numbers: a very negative count is an empty request; zero a valid length.
  EXPECT_EQ(ParseEveryWay("*-9223372036854775808\r\n*1\r\n$0\r\n\r\n"), Requests({{""}}));
}

TEST(RespParser, ExpectedDollarNamesTheByteAsRedisPrintsIt) {
  EXPECT_EQ(Parse("*1\r\n:1\r\n"), Error({}, "-ERR Protocol error: expected '$', got ':'"));
  EXPECT_EQ(Parse("*1\r\n\r\n"), Error({}, "-ERR Protocol error: expected '$', got ' '"));
  EXPECT_EQ(Parse(std::string("*1\r\n\0\r\n", 7)),
            Error({}, "-ERR Protocol error: expected '$', got '"));
}

TEST(RespParser, BulkEndMustBeCrlf) {
  EXPECT_EQ(Parse("*1\r\n$4\r\nPING\n\r"),
            Error({}, "-ERR Protocol error: expected CRLF after bulk"));
  EXPECT_EQ(Parse("*1\r\n$4\r\nPING\rX"),
            Error({}, "-ERR Protocol error: expected CRLF after bulk"));
  EXPECT_EQ(Parse("*1\r\n$4\r\nPING\r"), Requests({}));  // waits for the LF
}

// --- Inline quoting (Redis's sdssplitargs) ---------------------------------------------------

TEST(RespParserInline, DoubleQuotesAndEscapes) {
  EXPECT_EQ(ParseEveryWay("SET \"a b\" \"\\x41\\x7a\\n\\r\\t\\b\\a\\\"\\\\\\q\"\r\n"),
            Requests({{"SET", "a b", "Az\n\r\t\b\a\"\\q"}}));
  // \x with fewer than two hex digits is a plain escaped 'x'.
  EXPECT_EQ(ParseEveryWay("\"\\x4g\" \"\\x\"\r\n"), Requests({{"x4g", "x"}}));
  EXPECT_EQ(ParseEveryWay("\"\" x\r\n"), Requests({{"", "x"}}));
}

TEST(RespParserInline, SingleQuotesKeepBackslashes) {
  EXPECT_EQ(ParseEveryWay("'it\\'s' 'a\\nb' '\"'\r\n"), Requests({{"it's", "a\\nb", "\""}}));
}

TEST(RespParserInline, QuotesMayStartInsideAWord) {
  EXPECT_EQ(ParseEveryWay("ab\"c d\" x'y z'\r\n"), Requests({{"abc d", "xy z"}}));
}

TEST(RespParserInline, UnbalancedOrGluedQuotesAreErrors) {
  for (const char* line : {"\"abc", "'abc", "\"a\"b", "'a'b", "\"abc\\\"", "x \"a\"\"b\""}) {
    EXPECT_EQ(ParseEveryWay(std::string(line) + "\r\n"),
              Error({}, "-ERR Protocol error: unbalanced quotes in request"))
        << line;
  }
  // A closing quote may be followed by any isspace() byte.
  EXPECT_EQ(ParseEveryWay("\"a\"\vb\r\n"), Requests({{"a", "b"}}));
}

TEST(RespParserInline, SeparatorsAndLineEnds) {
  EXPECT_EQ(ParseEveryWay("  a \t b\rc  \r\n"), Requests({{"a", "b", "c"}}));
  EXPECT_EQ(ParseEveryWay("a\vb\n"), Requests({{"a\vb"}}));  // \v only separates between args
  EXPECT_EQ(ParseEveryWay("PING\nPING\r\n"), Requests({{"PING"}, {"PING"}}));
  EXPECT_EQ(ParseEveryWay(std::string("GET a\0b\r\n", 10)),
            Requests({{"GET", std::string("a\0b", 3)}}));
  EXPECT_EQ(ParseEveryWay("\n\r\n \n"), Requests({}));
}

// --- Limits, at and just above each one, with small limits ------------------------------

TEST(RespParserLimits, InlineLine) {
  const std::string at(16, 'a');
  EXPECT_EQ(ParseEveryWay(at + "\n", Small()), Requests({{at}}));
  EXPECT_EQ(ParseEveryWay(at.substr(1) + "\r\n", Small()), Requests({{at.substr(1)}}));
  EXPECT_EQ(ParseEveryWay(at, Small()), Requests({}));
  const std::string too_big = "-ERR Protocol error: too big inline request";
  EXPECT_EQ(ParseEveryWay(at + "\r\n", Small()), Error({}, too_big));  // the CR counts
  EXPECT_EQ(ParseEveryWay(at + "a", Small()), Error({}, too_big));
  EXPECT_EQ(ParseEveryWay(at + "a\n", Small()), Error({}, too_big));
}

TEST(RespParserLimits, CountAndLengthLines) {
  const std::string digits(15, '1');  // with the '*' or '$', 16 bytes: at the limit
  EXPECT_EQ(ParseEveryWay("*" + digits + "\r\n", Small()),
            Error({}, "-ERR Protocol error: invalid multibulk length"));
  EXPECT_EQ(ParseEveryWay("*" + digits + "1\r\n", Small()),
            Error({}, "-ERR Protocol error: too big mbulk count string"));
  EXPECT_EQ(ParseEveryWay("*" + digits + "1", Small()),
            Error({}, "-ERR Protocol error: too big mbulk count string"));
  EXPECT_EQ(ParseEveryWay("*" + digits, Small()), Requests({}));
  EXPECT_EQ(ParseEveryWay("*1\r\n$" + digits + "\r\n", Small()),
            Error({}, "-ERR Protocol error: invalid bulk length"));
  EXPECT_EQ(ParseEveryWay("*1\r\n$" + digits + "1\r\n", Small()),
            Error({}, "-ERR Protocol error: too big bulk count string"));
  EXPECT_EQ(ParseEveryWay("*1\r\n$" + digits + "1", Small()),
            Error({}, "-ERR Protocol error: too big bulk count string"));
}

TEST(RespParserLimits, ArgumentCountAndBulkBytes) {
  EXPECT_EQ(ParseEveryWay("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$8\r\n12345678\r\n", Small()),
            Requests({{"a", "b", "c", "12345678"}}));
  EXPECT_EQ(ParseEveryWay("*5\r\n", Small()),
            Error({}, "-ERR Protocol error: invalid multibulk length"));
  EXPECT_EQ(ParseEveryWay("*1\r\n$9\r\n", Small()),
            Error({}, "-ERR Protocol error: invalid bulk length"));
}

TEST(RespParserLimits, BeforeAuthentication) {
  EXPECT_EQ(ParseEveryWay("*2\r\n$4\r\nAUTH\r\n$4\r\npass\r\n", Small(), false),
            Requests({{"AUTH", "pass"}}));
  EXPECT_EQ(ParseEveryWay("*3\r\n", Small(), false),
            Error({}, "-ERR Protocol error: unauthenticated multibulk length"));
  EXPECT_EQ(ParseEveryWay("*1\r\n$5\r\n", Small(), false),
            Error({}, "-ERR Protocol error: unauthenticated bulk length"));
  // The general limits are checked first, as in Redis.
  EXPECT_EQ(ParseEveryWay("*5\r\n", Small(), false),
            Error({}, "-ERR Protocol error: invalid multibulk length"));
  // Redis puts no pre-authentication limit on inline requests.
  EXPECT_EQ(ParseEveryWay("a b c d e f\r\n", Small(), false),
            Requests({{"a", "b", "c", "d", "e", "f"}}));
}

TEST(RespParserLimits, AuthenticationTakesEffectForTheNextRequest) {
  RespParser p(Small(), false);
  Request r;
  p.Feed("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$5\r\n12345\r\n");
  ASSERT_EQ(p.Next(&r), Result::kRequest);
  EXPECT_EQ(r.args, (Args{"AUTH", "pw"}));
  p.set_authenticated(true);  // the server ran AUTH successfully
  EXPECT_TRUE(p.authenticated());
  ASSERT_EQ(p.Next(&r), Result::kRequest);
  EXPECT_EQ(r.args, (Args{"a", "b", "12345"}));
}

TEST(RespParserLimits, DeclaredLengthsAreNotAllocatedAhead) {
  RespParser p(Defaults(), true);
  Request r;
  std::string input = "*1048576\r\n$536870912\r\n" + std::string(100, 'x');
  g_largest_allocation = 0;
  g_track_allocations = true;
  p.Feed(input);
  Result res = p.Next(&r);
  g_track_allocations = false;
  EXPECT_EQ(res, Result::kNeedMore);
  EXPECT_LT(g_largest_allocation, 4096u);
  EXPECT_EQ(p.pending_bytes(), 100u);
}

// --- Seeded random tests ----------------------------------------------------------------------

constexpr uint64_t kSeed = 0x5eed2024;

std::string RandomBytes(std::mt19937_64* rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>((*rng)() & 0xff);
  return s;
}

std::string EncodeMultibulk(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Every byte as \xHH inside double quotes: any binary argument as an inline request.
std::string EncodeInline(const Args& args) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const std::string& a : args) {
    out += out.empty() ? "\"" : " \"";
    for (unsigned char c : a) out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    out += "\"";
  }
  return out + "\r\n";
}

TEST(RespParserRandom, RoundTripsRandomBinaryArraysInRandomPieces) {
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  std::mt19937_64 rng(kSeed);
  for (int iter = 0; iter < 200; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    std::vector<Args> want;
    std::string wire;
    const int requests = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < requests; ++i) {
      Args args(1 + rng() % 12);
      size_t total = 0;
      for (std::string& a : args) {
        uint64_t kind = rng() % 100;
        size_t len = kind < 70 ? rng() % 20 : kind < 95 ? rng() % 300 : rng() % 100000;
        a = RandomBytes(&rng, len);
        total += len;
      }
      want.push_back(args);
      wire += (total < 2000 && rng() % 3 == 0) ? EncodeInline(args) : EncodeMultibulk(args);
    }
    RespParser p(Defaults(), true);
    Outcome got;
    for (size_t at = 0; at < wire.size();) {
      size_t piece = 1 + rng() % (rng() % 2 ? 16 : 20000);
      p.Feed(wire.substr(at, piece));
      at += piece;
      Drain(&p, &got);
    }
    ASSERT_EQ(got, Requests(want));
    EXPECT_EQ(p.pending_bytes(), 0u);
  }
}

// Random bytes drawn mostly from the protocol's own alphabet: whatever the input, the parser
// neither crashes nor gives an outcome that depends on how the bytes were split.
TEST(RespParserRandom, GarbageGivesTheSameOutcomeWhateverTheSplit) {
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  std::mt19937_64 rng(kSeed);
  static const char kAlphabet[] = "*$\r\n\r\n0123456789-+ \t\"'\\xabAZ";
  int errors = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string input(rng() % 80, '\0');
    for (char& c : input) {
      c = rng() % 8 == 0 ? static_cast<char>(rng() & 0xff)
                         : kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
    }
    if (rng() % 2) input = "*" + std::to_string(rng() % 4) + "\r\n$" + input;
    SCOPED_TRACE(::testing::PrintToString(input));
    bool authenticated = rng() % 4 != 0;
    Outcome whole = Parse(input, 0, Small(), authenticated);
    ASSERT_EQ(Parse(input, 1, Small(), authenticated), whole);
    ASSERT_EQ(Parse(input, 1 + rng() % 7, Small(), authenticated), whole);
    errors += whole.error.empty() ? 0 : 1;
  }
  EXPECT_GT(errors, 100);  // the inputs do reach the error paths
}

}  // namespace
}  // namespace protocol
