// RespWriter: appends RESP2 replies to a string that the connection later writes out.
//
// Wire format of a reply (RESP2, every line ends with CRLF):
//   simple string  '+' <text> CRLF        e.g. "+OK\r\n"
//   error          '-' <text> CRLF        e.g. "-ERR unknown command 'FOO', ...\r\n"
//   integer        ':' <decimal> CRLF     e.g. ":-42\r\n"
//   bulk string    '$' <len> CRLF <len bytes> CRLF, binary-safe; "$-1\r\n" is the null bulk
//   array          '*' <count> CRLF then <count> replies; "*-1\r\n" is the null array
// Simple strings and errors are one line: the writer drops CR and LF at the end of their text
// and turns any other CR or LF into a space (as Redis does for formatted errors), so no
// caller's text can break the framing.
//
// Thread-safety: none; a writer and its string belong to one connection on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace protocol {

class RespWriter {
 public:
  // REQUIRES: out != nullptr and outlives the writer. Replies are appended after whatever
  // *out already holds.
  explicit RespWriter(std::string* out) : out_(out) {}

  // "+<text>\r\n".
  void SimpleString(std::string_view text);
  // "-<text>\r\n". `text` starts with the error code, e.g. "ERR syntax error" or
  // "WRONGTYPE Operation against ...". A leading '-' is not doubled, so a line such as
  // RespParser::error() can be passed as is. An empty text writes "-ERR\r\n".
  void Error(std::string_view text);
  // ":<value>\r\n".
  void Integer(int64_t value);
  // "$<len>\r\n<bytes>\r\n".
  void BulkString(std::string_view bytes);
  // "$-1\r\n": a missing value (GET of a missing key).
  void NullBulk();
  // "*<count>\r\n": the caller then writes `count` replies.
  void ArrayHeader(size_t count);
  // "*-1\r\n".
  void NullArray();
  // An array of bulk strings: "*<n>\r\n" then each as BulkString().
  void BulkStringArray(const std::vector<std::string>& items);

  // Common replies.
  void Ok() { out_->append("+OK\r\n"); }
  void Pong() { out_->append("+PONG\r\n"); }
  void Queued() { out_->append("+QUEUED\r\n"); }

  std::string* out() const { return out_; }

 private:
  // Appends `text` with CR and LF trimmed from its end and replaced by spaces elsewhere.
  void AppendLine(std::string_view text);

  std::string* const out_;
};

}  // namespace protocol
