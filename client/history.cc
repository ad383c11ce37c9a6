#include "client/history.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>

namespace raftkv::client {
namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0 if none starts there (a stray
// continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, a truncated
// sequence).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&s](size_t j) { return static_cast<unsigned char>(s[j]); };
  const unsigned char b0 = byte(i);
  size_t len = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    min = 0x80;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    min = 0x800;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    min = 0x10000;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; k++) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void AppendHexEscape(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\u00");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0x0F]);
}

// Appends `s` as a JSON string (see history.h). Sets *lossy if some byte was not valid UTF-8.
void AppendJsonString(std::string_view s, std::string* out, bool* lossy) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      i++;
    } else if (c < 0x20) {
      AppendHexEscape(c, out);
      i++;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      i++;
    } else if (const size_t len = Utf8SequenceLength(s, i); len > 0) {
      out->append(s.substr(i, len));
      i += len;
    } else {
      AppendHexEscape(c, out);
      *lossy = true;
      i++;
    }
  }
  out->push_back('"');
}

}  // namespace

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void FillFromResult(const Result& r, HistoryOp* op) {
  op->status = r.outcome;
  op->output.reset();
  op->output_int.reset();
  if (r.outcome != Outcome::kOk) return;
  if (op->op == "get") {
    if (r.reply.type == Reply::Type::kBulk) op->output = r.reply.str;
  } else if (op->op == "incr" || op->op == "append" || op->op == "del") {
    if (r.reply.type == Reply::Type::kInteger) op->output_int = r.reply.integer;
  }
}

std::string FormatHistoryLine(const HistoryOp& op, bool* lossy) {
  bool lossy_local = false;
  std::string out = "{\"client\":" + std::to_string(op.client) + ",\"op\":";
  AppendJsonString(op.op, &out, &lossy_local);
  out += ",\"key\":";
  AppendJsonString(op.key, &out, &lossy_local);

  const bool is_get = op.op == "get";
  const bool is_set = op.op == "set";
  const bool takes_value = is_set || op.op == "append";
  const bool int_output = op.op == "append" || op.op == "del" || op.op == "incr";
  const bool known = is_get || takes_value || int_output;

  out += ",\"value\":";
  if (takes_value) {
    AppendJsonString(op.value.value_or(""), &out, &lossy_local);
  } else if (!known && op.value.has_value()) {
    AppendJsonString(*op.value, &out, &lossy_local);
  } else {
    out += "null";
  }

  out += ",\"output\":";
  if ((is_get || !known) && op.output.has_value()) {
    AppendJsonString(*op.output, &out, &lossy_local);
  } else if ((int_output || !known) && op.output_int.has_value()) {
    out += std::to_string(*op.output_int);
  } else {
    out += "null";
  }

  out += ",\"call\":" + std::to_string(op.call) + ",\"return\":";
  out += op.status == Outcome::kUnknown ? std::string("null") : std::to_string(op.ret);
  out += ",\"status\":\"";
  out += OutcomeName(op.status);
  out += "\"}";
  if (lossy != nullptr) *lossy = lossy_local;
  return out;
}

HistoryRecorder::HistoryRecorder(std::FILE* file, std::string path)
    : file_(file), path_(std::move(path)) {}

HistoryRecorder::~HistoryRecorder() {
  if (file_ != nullptr) std::fclose(file_);
}

common::Status HistoryRecorder::Open(const std::string& path,
                                     std::unique_ptr<HistoryRecorder>* out) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return common::Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  out->reset(new HistoryRecorder(f, path));
  return common::Status::OK();
}

void HistoryRecorder::Record(const HistoryOp& op) {
  bool lossy = false;
  std::string line = FormatHistoryLine(op, &lossy);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ == nullptr) return;
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    if (error_.ok()) {
      error_ = common::Status::IOError("write to " + path_ + ": " + std::strerror(errno));
    }
    return;
  }
  lines_++;
  if (lossy) lossy_++;
}

common::Status HistoryRecorder::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ == nullptr) return error_;
  if (std::fclose(file_) != 0 && error_.ok()) {
    error_ = common::Status::IOError("close " + path_ + ": " + std::strerror(errno));
  }
  file_ = nullptr;
  return error_;
}

uint64_t HistoryRecorder::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

uint64_t HistoryRecorder::lossy_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lossy_;
}

}  // namespace raftkv::client
