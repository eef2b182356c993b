// json_header.cpp: the strict JSON reader and string writer of json_header.h, with the UTF-8
// checks and encoding its strings need. A recursive-descent parser over the header text whose
// depth is bounded (32), so a hostile header cannot exhaust the stack.
#include "nn/json_header.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "autograd/error.h"

namespace fpa::nn {
namespace {

// ---- UTF-8 ----

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0 if invalid.
size_t utf8_length(const std::string& s, size_t i) {
  auto at = [&](size_t k) -> unsigned { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0; };
  unsigned c = at(i), lo = 0x80, hi = 0xBF;
  size_t n;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < n; ++k) {
    unsigned b = at(i + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
  }
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// ---- JSON ----

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  // The whole header: one object, then only whitespace (the padding).
  Json parse() {
    if (peek() != '{') error("the header must start with '{'");
    Json v = value(0);
    skip_space();
    if (pos_ != s_.size()) error("unexpected text after the closing '}'");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 32;
  const std::string& s_;
  const std::string& path_;
  size_t pos_ = 0;

  [[noreturn]] void error(const std::string& what) const {
    fail(path_, ": malformed JSON header at header byte ", pos_, ": ", what);
  }
  int peek() const { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : -1; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) error("nested deeper than 32 levels");
    skip_space();
    int c = peek();
    Json j;
    if (c == '{' || c == '[') return container(depth, c == '{');
    if (c == '"') {
      j.kind = Json::string;
      j.text = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      j.kind = Json::integer;
      j.number = integer();
    } else if (c < 0) {
      error("unexpected end of the header");
    } else {
      error(c >= 0x20 && c < 0x7F ? std::string("unexpected character '") + char(c) + "'"
                                  : "unexpected byte " + std::to_string(c));
    }
    return j;
  }

  // An object ({"k": v, ...}) or an array ([v, ...]); pos_ is on the opening bracket.
  Json container(int depth, bool is_object) {
    Json j;
    j.kind = is_object ? Json::object : Json::array;
    const char close = is_object ? '}' : ']';
    ++pos_;
    skip_space();
    if (peek() == close) {
      ++pos_;
      return j;
    }
    for (;;) {
      if (is_object) {
        skip_space();
        if (peek() != '"') error("expected a string key");
        j.keys.push_back(string());
        skip_space();
        if (peek() != ':') error("expected ':' after a key");
        ++pos_;
      }
      j.items.push_back(value(depth + 1));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != close) error(std::string("expected ',' or '") + close + "'");
      ++pos_;
      return j;
    }
  }

  std::string string() {
    ++pos_;  // the opening quote
    std::string out;
    for (;;) {
      int c = peek();
      if (c < 0) error("unterminated string");
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) error("unescaped control character in a string");
      if (c == '\\') {
        ++pos_;
        escape(out);
      } else if (c < 0x80) {
        out += char(c);
        ++pos_;
      } else {
        size_t n = utf8_length(s_, pos_);
        if (n == 0) error("invalid UTF-8 in a string");
        out.append(s_, pos_, n);
        pos_ += n;
      }
    }
  }

  void escape(std::string& out) {
    int c = peek();
    if (c < 0) error("unterminated string");
    ++pos_;
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: --pos_; error("invalid escape in a string");
    }
    uint32_t cp = hex4();
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: its low half must follow
      if (s_.compare(pos_, 2, "\\u") != 0) error("unpaired surrogate in a \\u escape");
      pos_ += 2;
      uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) error("unpaired surrogate in a \\u escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      error("unpaired surrogate in a \\u escape");
    }
    append_utf8(out, cp);
  }

  uint32_t hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      int c = peek();
      const char* digits = "0123456789abcdef";
      const char* d = c > 0 ? std::strchr(digits, std::tolower(c)) : nullptr;
      if (!d) error("\\u needs four hex digits");
      v = v * 16 + uint32_t(d - digits);
    }
    return v;
  }

  int64_t integer() {
    bool negative = peek() == '-';
    if (negative) ++pos_;
    auto is_digit = [&] { return peek() >= '0' && peek() <= '9'; };
    if (!is_digit()) error("expected a digit");
    if (peek() == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
      error("leading zero in an integer");
    uint64_t v = 0;
    const uint64_t limit = uint64_t(INT64_MAX) + (negative ? 1 : 0);
    for (; is_digit(); ++pos_) {
      if (__builtin_mul_overflow(v, uint64_t(10), &v) ||
          __builtin_add_overflow(v, uint64_t(peek() - '0'), &v) || v > limit)
        error("integer out of range");
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E')
      error("expected an integer, found a fraction or exponent");
    return negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  }
};

}  // namespace

const char* json_kind_name(Json::Kind k) {
  switch (k) {
    case Json::object: return "an object";
    case Json::array: return "an array";
    case Json::string: return "a string";
    default: return "an integer";
  }
}

Json parse_json_header(const std::string& text, const std::string& path) { return JsonParser(text, path).parse(); }

// Writes s as a JSON string (the escapes serde_json uses: short forms, else \u00XX).
void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace fpa::nn
