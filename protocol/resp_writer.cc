#include "protocol/resp_writer.h"

#include <charconv>
#include <cstdint>

namespace protocol {
namespace {

template <typename Int>
void AppendDecimal(std::string* out, Int value) {
  char digits[24];  // holds any 64-bit integer
  std::to_chars_result r = std::to_chars(digits, digits + sizeof(digits), value);
  out->append(digits, r.ptr);
}

}  // namespace

void RespWriter::SimpleString(std::string_view text) {
  out_->push_back('+');
  AppendLine(text);
}

void RespWriter::Error(std::string_view text) {
  if (!text.empty() && text.front() == '-') text.remove_prefix(1);
  out_->push_back('-');
  AppendLine(text.empty() ? std::string_view("ERR") : text);
}

void RespWriter::Integer(int64_t value) {
  out_->push_back(':');
  AppendDecimal(out_, value);
  out_->append("\r\n");
}

void RespWriter::BulkString(std::string_view bytes) {
  out_->push_back('$');
  AppendDecimal(out_, bytes.size());
  out_->append("\r\n");
  out_->append(bytes);
  out_->append("\r\n");
}

void RespWriter::NullBulk() { out_->append("$-1\r\n"); }

void RespWriter::ArrayHeader(size_t count) {
  out_->push_back('*');
  AppendDecimal(out_, count);
  out_->append("\r\n");
}

void RespWriter::NullArray() { out_->append("*-1\r\n"); }

void RespWriter::BulkStringArray(const std::vector<std::string>& items) {
  ArrayHeader(items.size());
  for (const std::string& item : items) BulkString(item);
}

void RespWriter::AppendLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n')) text.remove_suffix(1);
  size_t start = out_->size();
  out_->append(text);
  for (size_t i = start; i < out_->size(); ++i) {
    char& c = (*out_)[i];
    if (c == '\r' || c == '\n') c = ' ';
  }
  out_->append("\r\n");
}

}  // namespace protocol
