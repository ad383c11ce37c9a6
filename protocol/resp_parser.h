// RespParser: the incremental, bounded parser of client requests in RESP2, the protocol that
// Redis clients speak. The connection feeds it the bytes it reads, in pieces of any size, and
// takes out whole requests one at a time. It does no I/O and knows nothing of commands.
//
// Wire format of a request, as Redis reads it (networking.c: processInputBuffer,
// processMultibulkBuffer, processInlineBuffer):
//
//   multibulk  '*' <count> CRLF, then <count> times: '$' <len> CRLF <len bytes> CRLF
//              Chosen when the request's first byte is '*'. <count> and <len> are decimal
//              integers in Redis's strict form (string2ll): an optional '-', no '+', no
//              spaces, no leading zeros, at most 20 characters. A <count> of 0 or less is an
//              empty request and is skipped without a reply. Payloads are binary-safe.
//   inline     any other line, ended by LF (an optional CR before it is dropped). It is split
//              into arguments: an unquoted argument ends at a space, tab or CR, and any run
//              of isspace() bytes between arguments is skipped.
//              An argument may hold "double quoted" parts, with the escapes \xHH \n \r \t
//              \b \a and \<any byte> = that byte, and 'single quoted' parts, where only \' is
//              an escape. A closing quote must be followed by a space or the end of the line.
//              A line with no arguments (empty, or only spaces) is skipped without a reply.
//
// Limits, checked before anything is allocated for the thing they bound:
//   - an inline line, a '*' count line and a '$' length line may hold at most
//     `max_inline_bytes` bytes before their LF (inline) or CR (count and length lines),
//     counting the '*' or '$' and, for an inline line, a CR before the LF. The check does not
//     depend on how the bytes were split between Feed() calls.
//   - `max_multibulk_count` arguments and `max_bulk_bytes` bytes per argument;
//   - before the connection has authenticated, `max_unauthenticated_multibulk_count`
//     arguments and `max_unauthenticated_bulk_bytes` bytes per argument (CVE-2021-32675).
//     Redis applies no such limit to inline requests, whose size the line limit bounds.
//
// Errors. Every malformed input yields one reply line, exactly as Redis words it, after which
// the connection must be closed (Redis sets CLIENT_CLOSE_AFTER_REPLY on protocol errors):
//   -ERR Protocol error: too big inline request
//   -ERR Protocol error: unbalanced quotes in request
//   -ERR Protocol error: too big mbulk count string
//   -ERR Protocol error: invalid multibulk length
//   -ERR Protocol error: unauthenticated multibulk length
//   -ERR Protocol error: too big bulk count string
//   -ERR Protocol error: expected '$', got '<byte>'
//   -ERR Protocol error: invalid bulk length
//   -ERR Protocol error: unauthenticated bulk length
//   -ERR Protocol error: expected CRLF after bulk
// Where this parser is deliberately stricter than Redis 7.0:
//   - more than `max_multibulk_count` (default 1,048,576) arguments is an invalid multibulk
//     length; Redis 7.0 accepts up to INT_MAX;
//   - the two bytes after a bulk payload must be CRLF ("expected CRLF after bulk"); Redis skips
//     them unread. Likewise the byte after the CR of a '*' or '$' line must be LF, or the line
//     is an invalid multibulk or bulk length;
//   - an inline line longer than `max_inline_bytes` is refused even when its LF arrived in
//     the same read (Redis checks the size only while it waits for the LF), so the outcome
//     never depends on how the bytes were split;
//   - a NUL byte is an ordinary byte. Redis looks for line ends with strchr(), so a NUL before
//     the end of a line makes it wait until the line is too big.
//
// Memory: the parser holds the bytes fed and not yet consumed, plus the arguments of the one
// request in progress. A payload is copied into its argument as it arrives, so a large value
// is never held twice. pending_bytes() reports the total, for the connection's own
// query-buffer limit (Redis: client-query-buffer-limit, 1 MiB before authentication).
//
// Thread-safety: none. One parser per connection, used by one thread (the loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace protocol {

// One client request: the command name and its arguments, binary-safe.
struct Request {
  std::vector<std::string> args;
};

class RespParser {
 public:
  // Redis's defaults (server.h, config.c).
  struct Limits {
    size_t max_inline_bytes = 64 * 1024;                // PROTO_INLINE_MAX_SIZE
    size_t max_multibulk_count = 1024 * 1024;           // ours; Redis 7.0 allows INT_MAX
    size_t max_bulk_bytes = 512 * 1024 * 1024;          // proto-max-bulk-len
    size_t max_unauthenticated_multibulk_count = 10;    // networking.c, before AUTH
    size_t max_unauthenticated_bulk_bytes = 16 * 1024;  // networking.c, before AUTH
  };

  enum class Result {
    kNeedMore,  // no whole request is buffered yet; Feed() more bytes
    kRequest,   // *out holds the next request
    kError,     // protocol error: reply error(), then close the connection
  };

  // `authenticated` is false for a connection that must still AUTH (a password is set) and
  // true otherwise; it selects which limits apply (see set_authenticated()).
  RespParser(const Limits& limits, bool authenticated);

  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  // Appends n bytes read from the connection. Bytes already consumed are dropped first, in
  // amortized constant time per byte. After an error the bytes are discarded.
  // REQUIRES: data points to n readable bytes (data may be null when n == 0).
  void Feed(const char* data, size_t n);
  void Feed(std::string_view data) { Feed(data.data(), data.size()); }

  // Parses the next request from the bytes fed so far, skipping empty ones (an empty inline
  // line, "*0", a negative count).
  // Returns kRequest and replaces out->args with the request's arguments (never empty);
  // kNeedMore when the buffered bytes do not yet hold a whole request (the partial request
  // is kept); kError on a protocol error. The error is final: every later call returns
  // kError again and the bytes buffered after the bad one are dropped.
  // Call it until it returns kNeedMore or kError to drain a pipeline. The limits that apply
  // to a request's header are the ones in force when the header is parsed, so a connection
  // that executes each request before asking for the next one sees AUTH take effect for the
  // request that follows it, as in Redis.
  // REQUIRES: out != nullptr.
  Result Next(Request* out);

  // The reply line to send for the last kError, without its CRLF, e.g.
  // "-ERR Protocol error: invalid multibulk length". Empty while there is no error.
  const std::string& error() const { return error_; }

  // True once Next() has returned kError: reply error(), then close the connection. All
  // protocol errors close, as in Redis.
  bool close_after_reply() const { return failed_; }

  // Switches between the pre-authentication limits (false) and the normal ones (true).
  // Call it when AUTH or HELLO ... AUTH succeeds, or when the user is reset.
  void set_authenticated(bool authenticated) { authenticated_ = authenticated; }
  bool authenticated() const { return authenticated_; }

  // Bytes held for requests not yet returned: fed and unconsumed, plus the payload bytes of
  // the request in progress.
  size_t pending_bytes() const { return buf_.size() - pos_ + partial_bytes_; }

 private:
  enum class State {
    kStart,        // at the first byte of a request
    kInline,       // reading an inline line
    kCount,        // reading "*<count>\r\n"
    kBulkHeader,   // reading "$<len>\r\n"
    kBulkPayload,  // copying <len> payload bytes
    kBulkEnd,      // expecting the CRLF after the payload
  };
  enum class Step { kContinue, kNeedMore, kRequest, kError };

  Step ParseInline(Request* out);
  Step ParseCount();
  Step ParseBulkHeader();
  Step ParseBulkPayload();
  Step ParseBulkEnd(Request* out);

  // Looks for byte c among the unconsumed bytes, resuming where the previous search of the
  // same line stopped. On success sets *at to its offset from pos_.
  bool FindInLine(char c, size_t* at);
  size_t Available() const { return buf_.size() - pos_; }
  void Consume(size_t n);
  Step Emit(Request* out);
  Step Fail(std::string_view reason);

  const Limits limits_;
  bool authenticated_;

  std::string buf_;     // bytes fed; buf_[0, pos_) are consumed
  size_t pos_ = 0;      // first unconsumed byte
  size_t scanned_ = 0;  // bytes after pos_ searched already without finding the line's end

  State state_ = State::kStart;
  size_t args_left_ = 0;           // kBulk*: arguments still to read, including this one
  size_t bulk_left_ = 0;           // kBulkPayload: payload bytes still to copy
  std::vector<std::string> args_;  // the request in progress
  size_t partial_bytes_ = 0;       // payload bytes in args_

  bool failed_ = false;
  std::string error_;
};

}  // namespace protocol
