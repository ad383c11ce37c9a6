#include "protocol/resp_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace protocol {
namespace {

// Above this capacity, an emptied input buffer is released rather than kept for reuse.
constexpr size_t kKeepBufferCapacity = 256 * 1024;
// A multibulk header reserves at most this many argument slots beyond what the bytes
// already buffered could hold; the vector grows as arguments actually arrive.
constexpr size_t kReserveSlack = 16;
// The shortest encoding of one argument: "$0\r\n\r\n".
constexpr size_t kMinArgBytes = 6;

// isspace() in the C locale, without its locale lookup.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses a decimal integer the way Redis's string2ll does: an optional '-', then either "0"
// alone or a first digit 1-9 followed by digits; nothing else, at most 20 characters, and no
// overflow of int64_t.
bool ParseInteger(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") {
    *out = 0;
    return true;
  }
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  if (negative) {
    if (v > kMax + 1) return false;
    *out = -static_cast<int64_t>(v - 1) - 1;
  } else {
    if (v > kMax) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

// True if n is positive and above limit.
bool Above(int64_t n, size_t limit) { return n > 0 && static_cast<uint64_t>(n) > limit; }

// Splits an inline line (without its line end) into arguments with Redis's quoting rules
// (sds.c: sdssplitargs). Returns false on unbalanced quotes, or a closing quote that is not
// followed by a space or the end of the line.
bool SplitInline(std::string_view line, std::vector<std::string>* args) {
  const size_t n = line.size();
  size_t i = 0;
  while (true) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i == n) return true;
    std::string arg;
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      if (in_double) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && HexValue(line[i + 2]) >= 0 &&
            HexValue(line[i + 3]) >= 0) {
          arg.push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
          i += 4;
        } else if (c == '\\' && i + 1 < n) {
          switch (line[i + 1]) {
            case 'n':
              arg.push_back('\n');
              break;
            case 'r':
              arg.push_back('\r');
              break;
            case 't':
              arg.push_back('\t');
              break;
            case 'b':
              arg.push_back('\b');
              break;
            case 'a':
              arg.push_back('\a');
              break;
            default:
              arg.push_back(line[i + 1]);
              break;
          }
          i += 2;
        } else if (c == '"') {
          if (i + 1 < n && !IsSpace(line[i + 1])) return false;
          ++i;
          done = true;
        } else {
          arg.push_back(c);
          ++i;
        }
      } else if (in_single) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          arg.push_back('\'');
          i += 2;
        } else if (c == '\'') {
          if (i + 1 < n && !IsSpace(line[i + 1])) return false;
          ++i;
          done = true;
        } else {
          arg.push_back(c);
          ++i;
        }
      } else if (i == n) {
        done = true;
      } else {
        char c = line[i++];
        switch (c) {
          case ' ':
          case '\t':
          case '\r':
          case '\n':
            done = true;
            break;
          case '"':
            in_double = true;
            break;
          case '\'':
            in_single = true;
            break;
          default:
            arg.push_back(c);
            break;
        }
      }
    }
    args->push_back(std::move(arg));
  }
}

// Redis formats the offending byte with "%c" into a C string and then replaces CR and LF in
// error replies by spaces, so a NUL ends the message early and CR or LF reads as a space.
std::string ExpectedDollar(char got) {
  std::string reason = "expected '$', got '";
  if (got == '\0') return reason;
  reason.push_back(got == '\r' || got == '\n' ? ' ' : got);
  reason.push_back('\'');
  return reason;
}

}  // namespace

RespParser::RespParser(const Limits& limits, bool authenticated)
    : limits_(limits), authenticated_(authenticated) {}

void RespParser::Feed(const char* data, size_t n) {
  if (failed_ || n == 0) return;
  if (pos_ == buf_.size()) {
    if (buf_.capacity() > kKeepBufferCapacity) {
      std::string().swap(buf_);
    } else {
      buf_.clear();
    }
    pos_ = 0;
  } else if (pos_ >= buf_.size() - pos_) {
    // At least half of the buffer is consumed: moving the rest costs no more than the bytes
    // consumed since the last move, so compaction stays linear overall.
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

RespParser::Result RespParser::Next(Request* out) {
  while (true) {
    Step step = Step::kContinue;
    if (failed_) return Result::kError;
    switch (state_) {
      case State::kStart:
        if (Available() == 0) return Result::kNeedMore;
        state_ = buf_[pos_] == '*' ? State::kCount : State::kInline;
        break;
      case State::kInline:
        step = ParseInline(out);
        break;
      case State::kCount:
        step = ParseCount();
        break;
      case State::kBulkHeader:
        step = ParseBulkHeader();
        break;
      case State::kBulkPayload:
        step = ParseBulkPayload();
        break;
      case State::kBulkEnd:
        step = ParseBulkEnd(out);
        break;
    }
    switch (step) {
      case Step::kContinue:
        break;
      case Step::kNeedMore:
        return Result::kNeedMore;
      case Step::kRequest:
        return Result::kRequest;
      case Step::kError:
        return Result::kError;
    }
  }
}

bool RespParser::FindInLine(char c, size_t* at) {
  const char* start = buf_.data() + pos_;
  const void* hit = std::memchr(start + scanned_, c, Available() - scanned_);
  if (hit == nullptr) {
    scanned_ = Available();
    return false;
  }
  *at = static_cast<size_t>(static_cast<const char*>(hit) - start);
  scanned_ = *at;
  return true;
}

void RespParser::Consume(size_t n) {
  pos_ += n;
  scanned_ = 0;
}

RespParser::Step RespParser::Emit(Request* out) {
  state_ = State::kStart;
  partial_bytes_ = 0;
  out->args.swap(args_);
  args_.clear();  // keeps the capacity of the caller's previous vector for the next request
  return Step::kRequest;
}

RespParser::Step RespParser::Fail(std::string_view reason) {
  failed_ = true;
  error_ = "-ERR Protocol error: ";
  error_.append(reason);
  // Nothing after a protocol error is ever parsed: release it all.
  std::string().swap(buf_);
  pos_ = 0;
  scanned_ = 0;
  std::vector<std::string>().swap(args_);
  partial_bytes_ = 0;
  return Step::kError;
}

RespParser::Step RespParser::ParseInline(Request* out) {
  size_t lf;
  if (!FindInLine('\n', &lf)) {
    if (Available() > limits_.max_inline_bytes) return Fail("too big inline request");
    return Step::kNeedMore;
  }
  if (lf > limits_.max_inline_bytes) return Fail("too big inline request");
  size_t len = lf;
  if (len > 0 && buf_[pos_ + len - 1] == '\r') --len;
  args_.clear();
  if (!SplitInline(std::string_view(buf_.data() + pos_, len), &args_)) {
    return Fail("unbalanced quotes in request");
  }
  Consume(lf + 1);
  if (args_.empty()) {
    state_ = State::kStart;
    return Step::kContinue;
  }
  return Emit(out);
}

RespParser::Step RespParser::ParseCount() {
  size_t cr;
  if (!FindInLine('\r', &cr)) {
    if (Available() > limits_.max_inline_bytes) return Fail("too big mbulk count string");
    return Step::kNeedMore;
  }
  if (cr > limits_.max_inline_bytes) return Fail("too big mbulk count string");
  if (cr + 1 >= Available()) return Step::kNeedMore;  // the LF has not arrived yet
  int64_t count;
  if (buf_[pos_ + cr + 1] != '\n' ||
      !ParseInteger(std::string_view(buf_.data() + pos_ + 1, cr - 1), &count) ||
      Above(count, limits_.max_multibulk_count)) {
    return Fail("invalid multibulk length");
  }
  if (!authenticated_ && Above(count, limits_.max_unauthenticated_multibulk_count)) {
    return Fail("unauthenticated multibulk length");
  }
  Consume(cr + 2);
  if (count <= 0) {
    state_ = State::kStart;  // "*0" and negative counts are empty requests
    return Step::kContinue;
  }
  args_left_ = static_cast<size_t>(count);
  args_.clear();
  args_.reserve(std::min(args_left_, Available() / kMinArgBytes + kReserveSlack));
  partial_bytes_ = 0;
  state_ = State::kBulkHeader;
  return Step::kContinue;
}

RespParser::Step RespParser::ParseBulkHeader() {
  size_t cr;
  if (!FindInLine('\r', &cr)) {
    if (Available() > limits_.max_inline_bytes) return Fail("too big bulk count string");
    return Step::kNeedMore;
  }
  if (cr > limits_.max_inline_bytes) return Fail("too big bulk count string");
  if (cr + 1 >= Available()) return Step::kNeedMore;  // the LF has not arrived yet
  if (buf_[pos_] != '$') return Fail(ExpectedDollar(buf_[pos_]));
  int64_t len;
  if (buf_[pos_ + cr + 1] != '\n' ||
      !ParseInteger(std::string_view(buf_.data() + pos_ + 1, cr - 1), &len) || len < 0 ||
      Above(len, limits_.max_bulk_bytes)) {
    return Fail("invalid bulk length");
  }
  if (!authenticated_ && Above(len, limits_.max_unauthenticated_bulk_bytes)) {
    return Fail("unauthenticated bulk length");
  }
  Consume(cr + 2);
  bulk_left_ = static_cast<size_t>(len);
  args_.emplace_back();
  state_ = State::kBulkPayload;
  return Step::kContinue;
}

RespParser::Step RespParser::ParseBulkPayload() {
  // Copy what has arrived; the argument grows with the bytes, never ahead of them.
  size_t n = std::min(Available(), bulk_left_);
  if (n > 0) {
    args_.back().append(buf_.data() + pos_, n);
    Consume(n);
    bulk_left_ -= n;
    partial_bytes_ += n;
  }
  if (bulk_left_ > 0) return Step::kNeedMore;
  state_ = State::kBulkEnd;
  return Step::kContinue;
}

RespParser::Step RespParser::ParseBulkEnd(Request* out) {
  if (Available() < 2) return Step::kNeedMore;
  if (buf_[pos_] != '\r' || buf_[pos_ + 1] != '\n') return Fail("expected CRLF after bulk");
  Consume(2);
  if (--args_left_ > 0) {
    state_ = State::kBulkHeader;
    return Step::kContinue;
  }
  return Emit(out);
}

}  // namespace protocol
