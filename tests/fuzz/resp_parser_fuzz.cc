// Fuzz target for protocol::RespParser, driven the way a client connection drives it: the
// input is the byte stream a client sends, fed in pieces and drained with Next() (after each
// piece, or now and then after a few) until kNeedMore or kError.
//
// Each input runs under two sets of limits (tiny ones, so that every limit is reached by short
// inputs, and the defaults) and three authentication modes (authenticated from the start,
// never authenticated, and authenticated after an "AUTH" request until a "RESET" request).
// For each, the stream is fed in one piece, one byte at a time, and in pieces whose sizes
// come from the input's own bytes. Checked, with a hard abort on violation:
//   - every request has at least one argument and ends where pending_bytes() says the
//     unconsumed bytes begin; the bytes it came from show whether it was multibulk or inline,
//     and it fits the multibulk limits in force (argument count, bytes per argument) or the
//     inline line limit accordingly;
//   - every request re-encoded as a multibulk request parses back to the same arguments;
//   - an error is one of the documented replies, and final: later calls return kError again
//     with the same reply, and nothing stays buffered;
//   - pending_bytes() grows by exactly the bytes fed, and after kNeedMore never exceeds what
//     one request in progress may hold (argument count times bytes per argument, plus one
//     header line) nor the bytes fed since the last request, and a line in progress stays
//     within the line limit;
//   - every way of splitting the stream yields the same requests, the same error and the same
//     pending_bytes() at the end as feeding it in one piece.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/check.h"
#include "protocol/resp_parser.h"

namespace {

using protocol::Request;
using protocol::RespParser;

// Besides its payloads, a partial request holds at most one header line: max_inline_bytes
// bytes and the CR after them while its LF is awaited. One byte more as a margin.
constexpr size_t kHeaderSlack = 2;

// Tiny limits: every one of them is within reach of a short input.
RespParser::Limits SmallLimits() {
  RespParser::Limits limits;
  limits.max_inline_bytes = 24;
  limits.max_multibulk_count = 5;
  limits.max_bulk_bytes = 12;
  limits.max_unauthenticated_multibulk_count = 3;
  limits.max_unauthenticated_bulk_bytes = 6;
  return limits;
}

enum class AuthMode {
  kAlways,  // the connection needs no password
  kNever,   // a password is set and never given
  kOnAuth,  // authenticated after a request named AUTH, until a request named RESET
};

// What the connection saw: the requests in order, then the error reply if any.
struct Outcome {
  std::vector<std::vector<std::string>> requests;
  std::string error;
  size_t final_pending_bytes = 0;

  bool operator==(const Outcome&) const = default;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

// The most a request in progress may hold after Next() returned kNeedMore.
size_t PendingBound(const RespParser::Limits& limits, bool authenticated) {
  const size_t count =
      authenticated ? limits.max_multibulk_count : limits.max_unauthenticated_multibulk_count;
  const size_t bulk = authenticated ? limits.max_bulk_bytes : limits.max_unauthenticated_bulk_bytes;
  return count * bulk + limits.max_inline_bytes + kHeaderSlack;
}

bool IsDocumentedError(const std::string& error) {
  static const char* const kReplies[] = {
      "-ERR Protocol error: too big inline request",
      "-ERR Protocol error: unbalanced quotes in request",
      "-ERR Protocol error: too big mbulk count string",
      "-ERR Protocol error: invalid multibulk length",
      "-ERR Protocol error: unauthenticated multibulk length",
      "-ERR Protocol error: too big bulk count string",
      "-ERR Protocol error: invalid bulk length",
      "-ERR Protocol error: unauthenticated bulk length",
      "-ERR Protocol error: expected CRLF after bulk",
  };
  for (const char* reply : kReplies) {
    if (error == reply) return true;
  }
  // "expected '$', got '<byte>'", where a NUL byte ends the message and CR or LF reads as a
  // space.
  const std::string_view prefix = "-ERR Protocol error: expected '$', got '";
  if (error.size() < prefix.size() || std::string_view(error).substr(0, prefix.size()) != prefix) {
    return false;
  }
  const std::string_view rest = std::string_view(error).substr(prefix.size());
  if (rest.empty()) return true;
  return rest.size() == 2 && rest[0] != '\0' && rest[0] != '\r' && rest[0] != '\n' &&
         rest[1] == '\'';
}

std::string EncodeMultibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

// A request re-encoded as multibulk parses back to the same arguments.
void CheckRoundTrip(const std::vector<std::string>& args) {
  RespParser parser(RespParser::Limits(), /*authenticated=*/true);
  parser.Feed(EncodeMultibulk(args));
  Request request;
  CHECK(parser.Next(&request) == RespParser::Result::kRequest);
  CHECK(request.args == args);
  CHECK(parser.Next(&request) == RespParser::Result::kNeedMore);
  CHECK(parser.pending_bytes() == 0);
}

// Checks a request against the bytes it came from. `segment` is the stream from the end of the
// previous request to the end of this one: the empty requests skipped before it (blank lines,
// "*0", negative counts), then the request itself. A multibulk request ends the segment with
// the encoding of its arguments, which is unique (counts and lengths have one spelling); an
// inline request never does, since the lines before an inline line are skipped ones, and none
// of those can hold the "*<count>" line, count >= 1, that such an encoding starts with.
void CheckRequest(const std::vector<std::string>& args, std::string_view segment,
                  const RespParser::Limits& limits, bool authenticated) {
  CHECK(!args.empty());
  const std::string encoded = EncodeMultibulk(args);
  if (segment.size() >= encoded.size() &&
      segment.substr(segment.size() - encoded.size()) == encoded) {
    const size_t count =
        authenticated ? limits.max_multibulk_count : limits.max_unauthenticated_multibulk_count;
    const size_t bulk =
        authenticated ? limits.max_bulk_bytes : limits.max_unauthenticated_bulk_bytes;
    CHECK(args.size() <= count);
    for (const std::string& arg : args) CHECK(arg.size() <= bulk);
    return;
  }
  // Inline: the segment's last line, which does not start with '*'.
  CHECK(!segment.empty() && segment.back() == '\n');
  const size_t previous_lf =
      segment.size() >= 2 ? segment.rfind('\n', segment.size() - 2) : std::string_view::npos;
  const size_t line_start = previous_lf == std::string_view::npos ? 0 : previous_lf + 1;
  const std::string_view line = segment.substr(line_start, segment.size() - 1 - line_start);
  CHECK(!line.empty() && line[0] != '*');
  CHECK(line.size() <= limits.max_inline_bytes);
  // The line holds the arguments and at least one separator between each two of them.
  size_t total = args.size() - 1;
  for (const std::string& arg : args) total += arg.size();
  CHECK(total <= line.size());
}

// One connection: the parser, its authentication, and what it returned.
class Connection {
 public:
  Connection(const RespParser::Limits& limits, AuthMode mode, std::string_view stream)
      : limits_(limits), mode_(mode), stream_(stream), parser_(limits, mode == AuthMode::kAlways) {}

  // Feeds the next n bytes of the stream and checks the bound; then, if `drain`, drains the
  // parser as the server does.
  void Read(size_t n, bool drain = true) {
    const size_t before = parser_.pending_bytes();
    parser_.Feed(n == 0 ? nullptr : stream_.data() + fed_, n);
    fed_ += n;
    if (failed_) {
      CHECK(parser_.pending_bytes() == 0);
    } else {
      CHECK(parser_.pending_bytes() == before + n);
    }
    if (drain) Drain();
  }

  Outcome Finish() {
    CHECK(fed_ == stream_.size());
    Drain();
    outcome_.final_pending_bytes = parser_.pending_bytes();
    return outcome_;
  }

 private:
  void Drain() {
    Request request;
    while (true) {
      const bool authenticated = parser_.authenticated();
      const RespParser::Result result = parser_.Next(&request);
      if (result == RespParser::Result::kNeedMore) {
        CHECK(!failed_);
        CHECK(parser_.error().empty());
        CHECK(!parser_.close_after_reply());
        // The request in progress came from the bytes after the last request, and is bounded.
        CHECK(parser_.pending_bytes() <= fed_ - last_end_);
        CHECK(parser_.pending_bytes() <= PendingBound(limits_, authenticated));
        // Bytes with no line end since the last request are one inline or count line in
        // progress (skipped empty requests end in LF), which the line limit bounds.
        const std::string_view tail = stream_.substr(last_end_, fed_ - last_end_);
        if (!tail.empty() && tail.find('\n') == std::string_view::npos &&
            (tail[0] != '*' || tail.find('\r') == std::string_view::npos)) {
          CHECK(parser_.pending_bytes() == tail.size());
          CHECK(tail.size() <= limits_.max_inline_bytes);
        }
        return;
      }
      if (result == RespParser::Result::kError) {
        CHECK(IsDocumentedError(parser_.error()));
        CHECK(parser_.close_after_reply());
        CHECK(parser_.pending_bytes() == 0);
        if (failed_) {
          CHECK(parser_.error() == outcome_.error);
        } else {
          failed_ = true;
          outcome_.error = parser_.error();
        }
        // Final: asking again, or feeding more, changes nothing.
        CHECK(parser_.Next(&request) == RespParser::Result::kError);
        parser_.Feed("PING\r\n", 6);
        CHECK(parser_.pending_bytes() == 0);
        CHECK(parser_.Next(&request) == RespParser::Result::kError);
        CHECK(parser_.error() == outcome_.error);
        return;
      }
      CHECK(result == RespParser::Result::kRequest);
      CHECK(!failed_);
      // Once a request is out, nothing of the next one has been parsed: every byte pending is
      // unconsumed, so the request ended where they begin.
      CHECK(parser_.pending_bytes() < fed_ - last_end_);
      const size_t end = fed_ - parser_.pending_bytes();
      CheckRequest(request.args, stream_.substr(last_end_, end - last_end_), limits_,
                   authenticated);
      last_end_ = end;
      CheckRoundTrip(request.args);
      outcome_.requests.push_back(request.args);
      if (mode_ == AuthMode::kOnAuth) {
        if (EqualsIgnoreCase(request.args[0], "AUTH")) parser_.set_authenticated(true);
        if (EqualsIgnoreCase(request.args[0], "RESET")) parser_.set_authenticated(false);
      }
    }
  }

  const RespParser::Limits limits_;
  const AuthMode mode_;
  const std::string_view stream_;
  RespParser parser_;
  size_t fed_ = 0;       // bytes of the stream fed so far
  size_t last_end_ = 0;  // where the last request returned ends in the stream
  bool failed_ = false;
  Outcome outcome_;
};

Outcome FeedWhole(const RespParser::Limits& limits, AuthMode mode, std::string_view stream) {
  Connection connection(limits, mode, stream);
  connection.Read(stream.size());
  return connection.Finish();
}

Outcome FeedBytewise(const RespParser::Limits& limits, AuthMode mode, std::string_view stream) {
  Connection connection(limits, mode, stream);
  for (size_t i = 0; i < stream.size(); ++i) connection.Read(1);
  return connection.Finish();
}

// Piece sizes come from the input's bytes, read from the end backwards: mostly short pieces,
// sometimes long ones, now and then an empty read, and a quarter of the time more bytes are
// fed before the next drain.
Outcome FeedInPieces(const RespParser::Limits& limits, AuthMode mode, std::string_view stream) {
  Connection connection(limits, mode, stream);
  size_t at = 0;
  for (size_t j = 0; at < stream.size(); ++j) {
    const uint8_t b = static_cast<uint8_t>(stream[stream.size() - 1 - j % stream.size()]);
    size_t size = b < 0xc0 ? 1 + (b & 0x0f) : 1 + (b & 0x3f) * 16;
    if (b == 0xff) connection.Read(0);
    size = std::min(size, stream.size() - at);
    connection.Read(size, /*drain=*/(b & 0x30) != 0x30);
    at += size;
  }
  return connection.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  const RespParser::Limits limit_sets[] = {SmallLimits(), RespParser::Limits()};
  for (const RespParser::Limits& limits : limit_sets) {
    for (AuthMode mode : {AuthMode::kAlways, AuthMode::kNever, AuthMode::kOnAuth}) {
      const Outcome whole = FeedWhole(limits, mode, stream);
      CHECK(FeedBytewise(limits, mode, stream) == whole);
      CHECK(FeedInPieces(limits, mode, stream) == whole);
    }
  }
  return 0;
}
