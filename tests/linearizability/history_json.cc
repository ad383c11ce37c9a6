// The JSON-lines history format of checker.h: a strict parser for exactly one flat object
// per line (string, integer and null values), and the matching writer.
#include <charconv>
#include <cstdio>
#include <sstream>
#include <utility>

#include "tests/linearizability/checker.h"

namespace linearizability {
namespace {

struct JsonValue {
  enum class Type { kString, kInteger, kNull };
  Type type = Type::kNull;
  std::string string;
  int64_t integer = 0;
};

// Parses one line holding one flat JSON object. On failure, error() says what and where.
class LineParser {
 public:
  explicit LineParser(std::string_view line) : s_(line) {}

  bool ParseObject(std::vector<std::pair<std::string, JsonValue>>* fields) {
    SkipSpace();
    if (!Consume('{')) return Fail("expected '{'");
    SkipSpace();
    if (!Consume('}')) {
      while (true) {
        SkipSpace();
        std::string name;
        if (!ParseString(&name)) return false;
        SkipSpace();
        if (!Consume(':')) return Fail("expected ':' after field name");
        SkipSpace();
        JsonValue value;
        if (!ParseValue(&value)) return false;
        fields->emplace_back(std::move(name), std::move(value));
        SkipSpace();
        if (Consume(',')) continue;
        if (Consume('}')) break;
        return Fail("expected ',' or '}'");
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected text after the object");
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(const std::string& what) {
    error_ = what + " at column " + std::to_string(pos_ + 1);
    return false;
  }

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r')) pos_++;
  }

  bool Consume(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      pos_++;
      return true;
    }
    return false;
  }

  bool ParseValue(JsonValue* value) {
    if (pos_ >= s_.size()) return Fail("expected a value");
    const char c = s_[pos_];
    if (c == '"') {
      value->type = JsonValue::Type::kString;
      return ParseString(&value->string);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      value->type = JsonValue::Type::kInteger;
      return ParseInteger(&value->integer);
    }
    if (s_.substr(pos_, 4) == "null") {
      pos_ += 4;
      value->type = JsonValue::Type::kNull;
      return true;
    }
    return Fail("expected a string, an integer or null");
  }

  bool ParseInteger(int64_t* out) {
    const size_t start = pos_;
    Consume('-');
    const size_t digits = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') pos_++;
    if (pos_ == digits) return Fail("expected digits");
    if (s_[digits] == '0' && pos_ - digits > 1) return Fail("leading zero in integer");
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
      return Fail("only integers are allowed");
    }
    auto [ptr, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, *out);
    if (ec != std::errc() || ptr != s_.data() + pos_) {
      pos_ = start;
      return Fail("integer out of 64-bit range");
    }
    return true;
  }

  bool ParseHex4(uint32_t* out) {
    if (s_.size() - pos_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        pos_--;
        return Fail("bad hex digit in \\u escape");
      }
    }
    *out = v;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool ParseString(std::string* out) {
    if (!Consume('"')) return Fail("expected a string");
    out->clear();
    while (true) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        pos_++;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in string");
      if (c != '\\') {
        out->push_back(c);
        pos_++;
        continue;
      }
      pos_++;
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("unpaired low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (s_.substr(pos_, 2) != "\\u") return Fail("unpaired high surrogate");
            pos_ += 2;
            if (!ParseHex4(&low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return Fail("unpaired high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          pos_--;
          return Fail("bad escape in string");
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

// Turns the fields of one line into an Operation. Returns an error message, or "" if ok.
std::string ToOperation(const std::vector<std::pair<std::string, JsonValue>>& fields,
                        Operation* op) {
  using Type = JsonValue::Type;
  static constexpr const char* kNames[] = {"client", "op",   "key",    "value",
                                           "output", "call", "return", "status"};
  const JsonValue* found[8] = {};
  for (const auto& [name, value] : fields) {
    int slot = -1;
    for (int i = 0; i < 8; i++) {
      if (name == kNames[i]) slot = i;
    }
    if (slot < 0) return "unknown field \"" + name + "\"";
    if (found[slot] != nullptr) return "repeated field \"" + name + "\"";
    found[slot] = &value;
  }
  for (int i : {0, 1, 2, 5, 7}) {
    if (found[i] == nullptr) return std::string("missing field \"") + kNames[i] + "\"";
  }
  const auto [client, kind, key, value, output, call, ret, status] = found;
  auto is = [](const JsonValue* v, Type type) { return v != nullptr && v->type == type; };
  auto null_or_absent = [](const JsonValue* v) { return v == nullptr || v->type == Type::kNull; };

  if (!is(client, Type::kInteger)) return "\"client\" must be an integer";
  op->client = client->integer;

  if (!is(kind, Type::kString)) return "\"op\" must be a string";
  if (kind->string == "get") {
    op->kind = OpKind::kGet;
  } else if (kind->string == "set") {
    op->kind = OpKind::kSet;
  } else if (kind->string == "append") {
    op->kind = OpKind::kAppend;
  } else if (kind->string == "del") {
    op->kind = OpKind::kDel;
  } else if (kind->string == "incr") {
    op->kind = OpKind::kIncr;
  } else {
    return "unknown op \"" + kind->string + "\"";
  }

  if (!is(key, Type::kString)) return "\"key\" must be a string";
  op->key = key->string;

  const bool takes_value = op->kind == OpKind::kSet || op->kind == OpKind::kAppend;
  if (takes_value) {
    if (!is(value, Type::kString)) return "\"value\" must be a string for " + kind->string;
    op->value = value->string;
  } else {
    if (!null_or_absent(value)) return "\"value\" must be null for " + kind->string;
    op->value.clear();
  }

  op->output.reset();
  op->output_int.reset();
  switch (op->kind) {
    case OpKind::kGet:
      if (is(output, Type::kString)) {
        op->output = output->string;
      } else if (!null_or_absent(output)) {
        return "\"output\" of get must be a string or null";
      }
      break;
    case OpKind::kSet:
      if (!null_or_absent(output) && !is(output, Type::kString)) {
        return "\"output\" of set must be a string or null";
      }
      break;
    case OpKind::kAppend:
    case OpKind::kDel:
    case OpKind::kIncr:
      if (is(output, Type::kInteger)) {
        op->output_int = output->integer;
      } else if (!null_or_absent(output)) {
        return "\"output\" of " + kind->string + " must be an integer or null";
      }
      break;
  }

  if (!is(status, Type::kString)) return "\"status\" must be a string";
  if (status->string == "ok") {
    op->status = OpStatus::kOk;
  } else if (status->string == "failed") {
    op->status = OpStatus::kFailed;
  } else if (status->string == "unknown") {
    op->status = OpStatus::kUnknown;
  } else {
    return "unknown status \"" + status->string + "\"";
  }

  if (!is(call, Type::kInteger)) return "\"call\" must be an integer";
  op->call = call->integer;
  if (op->status == OpStatus::kUnknown) {
    if (!null_or_absent(ret) && !is(ret, Type::kInteger)) {
      return "\"return\" must be an integer or null";
    }
    op->ret = kInfiniteTime;
  } else {
    if (!is(ret, Type::kInteger)) return "\"return\" must be an integer";
    if (ret->integer < op->call) return "\"return\" is before \"call\"";
    op->ret = ret->integer;
  }
  return "";
}

void AppendJsonString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

const char* KindName(OpKind kind) {
  switch (kind) {
    case OpKind::kGet:
      return "get";
    case OpKind::kSet:
      return "set";
    case OpKind::kAppend:
      return "append";
    case OpKind::kDel:
      return "del";
    case OpKind::kIncr:
      return "incr";
  }
  return "?";
}

const char* StatusName(OpStatus status) {
  switch (status) {
    case OpStatus::kOk:
      return "ok";
    case OpStatus::kFailed:
      return "failed";
    case OpStatus::kUnknown:
      return "unknown";
  }
  return "?";
}

}  // namespace

common::Status ReadHistory(std::istream& in, std::vector<Operation>* history) {
  history->clear();
  std::string line;
  for (int64_t line_number = 1; std::getline(in, line); line_number++) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(line_number) + ": ";
    LineParser parser(line);
    std::vector<std::pair<std::string, JsonValue>> fields;
    if (!parser.ParseObject(&fields))
      return common::Status::InvalidArgument(where + parser.error());
    Operation op;
    const std::string error = ToOperation(fields, &op);
    if (!error.empty()) return common::Status::InvalidArgument(where + error);
    history->push_back(std::move(op));
  }
  if (in.bad()) return common::Status::IOError("read failed");
  return common::Status::OK();
}

common::Status ReadHistoryFromString(std::string_view text, std::vector<Operation>* history) {
  std::istringstream in{std::string(text)};
  return ReadHistory(in, history);
}

std::string ToJsonLine(const Operation& op) {
  std::string out =
      "{\"client\":" + std::to_string(op.client) + ",\"op\":\"" + KindName(op.kind) + "\",\"key\":";
  AppendJsonString(op.key, &out);
  out += ",\"value\":";
  if (op.kind == OpKind::kSet || op.kind == OpKind::kAppend) {
    AppendJsonString(op.value, &out);
  } else {
    out += "null";
  }
  out += ",\"output\":";
  if (op.kind == OpKind::kGet && op.output.has_value()) {
    AppendJsonString(*op.output, &out);
  } else if (op.kind != OpKind::kGet && op.kind != OpKind::kSet && op.output_int.has_value()) {
    out += std::to_string(*op.output_int);
  } else {
    out += "null";
  }
  out += ",\"call\":" + std::to_string(op.call) + ",\"return\":";
  out += op.status == OpStatus::kUnknown ? "null" : std::to_string(op.ret);
  out += ",\"status\":\"";
  out += StatusName(op.status);
  out += "\"}";
  return out;
}

}  // namespace linearizability
