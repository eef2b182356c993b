// safetensors.cpp: the safetensors writer (atomic: autograd/atomic_file.h), a small strict parser
// for the JSON subset a header uses (objects, arrays, strings, integers), and the validating
// reader. The checks mirror the official library's (header size, exact coverage of the data
// section, byte counts, overflow) and add this engine's own (dtype, rank, duplicate keys). The
// reader takes its bytes from a Source: a file (load_safetensors) or memory (parse_safetensors).
#include "nn/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <set>

#include "autograd/atomic_file.h"
#include "autograd/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace fpa::nn {
namespace {

using FilePtr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

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

struct Json {
  enum Kind { object, array, string, integer } kind = object;
  std::string text;               // string
  int64_t number = 0;             // integer
  std::vector<std::string> keys;  // object: keys[i] names items[i], in file order
  std::vector<Json> items;        // object values or array elements
};

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::object: return "an object";
    case Json::array: return "an array";
    case Json::string: return "a string";
    default: return "an integer";
  }
}

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

std::string shape_string(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

// ---- dtypes of the format ----

struct FileDType {
  const char* code;  // as in the header
  const char* name;  // as in messages
  size_t size;
};
const FileDType kLoadable[] = {
    {"F32", "float32", 4}, {"F64", "float64", 8}, {"F16", "float16", 2}, {"BF16", "bfloat16", 2}};
const char* const kRefused[] = {"BOOL", "U8",      "I8",      "I16",     "U16", "I32",     "U32",     "I64",
                                "U64",  "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};

const FileDType& find_dtype(const std::string& code, const std::string& tensor, const std::string& path) {
  for (const FileDType& d : kLoadable)
    if (code == d.code) return d;
  for (const char* r : kRefused)
    FPA_CHECK(code != r, path, ": tensor '", tensor, "' has dtype ", code,
              ", which this engine does not load (only F32, F64, F16 and BF16)");
  fail(path, ": tensor '", tensor, "' has unknown dtype '", code, "'");
}

float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat_to_float(uint16_t h) { return float_from_bits(uint32_t(h) << 16); }

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0x1F) return float_from_bits(sign | 0x7F800000u | (mant << 13));  // inf, nan
  if (exp != 0) return float_from_bits(sign | ((exp + 112) << 23) | (mant << 13));  // rebias 15 -> 127
  float f = std::ldexp(float(mant), -24);  // zero or subnormal: mant * 2^-24
  return sign ? -f : f;
}

// ---- reader ----

struct Entry {
  std::string name;
  const FileDType* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // relative to the data section
};

void read_metadata(const Json& v, const std::string& path, std::map<std::string, std::string>& out) {
  FPA_CHECK(v.kind == Json::object, path, ": '__metadata__' must be an object, got ", kind_name(v.kind));
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const std::string& key = v.keys[i];
    FPA_CHECK(v.items[i].kind == Json::string, path, ": metadata '", key, "' must be a string, got ",
              kind_name(v.items[i].kind));
    FPA_CHECK(out.emplace(key, v.items[i].text).second, path, ": duplicate metadata key '", key, "'");
  }
}

// One tensor's header entry, checked on its own: dtype, shape, byte count, range.
Entry parse_entry(const std::string& name, const Json& v, const std::string& path, uint64_t data_size) {
  const std::string where = path + ": tensor '" + name + "'";
  FPA_CHECK(v.kind == Json::object, where, " must be described by an object, got ", kind_name(v.kind));
  const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const std::string& k = v.keys[i];
    const Json** slot = k == "dtype"          ? &dtype
                        : k == "shape"        ? &shape
                        : k == "data_offsets" ? &offsets
                                              : nullptr;
    FPA_CHECK(slot, where, " has unknown field '", k, "'");
    FPA_CHECK(!*slot, where, " has field '", k, "' twice");
    *slot = &v.items[i];
  }
  FPA_CHECK(dtype && dtype->kind == Json::string, where, " needs a string 'dtype'");
  FPA_CHECK(shape && shape->kind == Json::array, where, " needs an array 'shape'");
  FPA_CHECK(offsets && offsets->kind == Json::array, where, " needs an array 'data_offsets'");

  Entry e{name, &find_dtype(dtype->text, name, path), {}, 0, 0};
  for (const Json& d : shape->items) {
    FPA_CHECK(d.kind == Json::integer, where, " has a shape entry that is ", kind_name(d.kind),
              ", not an integer");
    e.shape.push_back(d.number);
  }
  for (int64_t d : e.shape)
    FPA_CHECK(d >= 0, where, " has a negative dimension in shape ", shape_string(e.shape));
  FPA_CHECK(e.shape.size() <= size_t(kMaxDims), where, " has ", e.shape.size(), " dimensions ",
            shape_string(e.shape), "; this engine supports at most ", kMaxDims);
  uint64_t bytes = e.dtype->size;
  for (int64_t d : e.shape)
    FPA_CHECK(!__builtin_mul_overflow(bytes, uint64_t(d), &bytes), where, " shape ", shape_string(e.shape),
              " overflows: its byte count does not fit in 64 bits");
  int64_t elements = 1;  // with a zero dimension too: the strides multiply the other dimensions
  for (int64_t d : e.shape)
    FPA_CHECK(d == 0 || !__builtin_mul_overflow(elements, d, &elements), where, " shape ",
              shape_string(e.shape), " overflows: its non-zero dimensions multiply past 2^63");

  bool pair = offsets->items.size() == 2 && offsets->items[0].kind == Json::integer &&
              offsets->items[1].kind == Json::integer;
  FPA_CHECK(pair, where, " data_offsets must be [begin, end], two integers");
  int64_t b = offsets->items[0].number, en = offsets->items[1].number;
  FPA_CHECK(b >= 0 && en >= b, where, " data_offsets [", b, ", ", en,
            "] are not a range (need 0 <= begin <= end)");
  e.begin = uint64_t(b);
  e.end = uint64_t(en);
  FPA_CHECK(e.end - e.begin == bytes, where, " data_offsets [", b, ", ", en, "] hold ", e.end - e.begin,
            " bytes but shape ", shape_string(e.shape), " ", e.dtype->name, " needs ", bytes);
  FPA_CHECK(e.end <= data_size, where, " data_offsets [", b, ", ", en,
            "] run past the end of the data section (", data_size, " bytes)");
  return e;
}

// The tensors must cover the data section exactly, in some order, with no gap or overlap.
void check_coverage(const std::vector<Entry>& entries, const std::string& path, uint64_t data_size) {
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    FPA_CHECK(e->begin >= covered, path, ": tensors '", prev ? prev->name : "", "' [", prev ? prev->begin : 0,
              ", ", covered, "] and '", e->name, "' [", e->begin, ", ", e->end, "] overlap");
    FPA_CHECK(e->begin == covered, path, ": gap in the data section: bytes [", covered, ", ", e->begin,
              ") before tensor '", e->name, "' belong to no tensor");
    covered = e->end;
    prev = e;
  }
  FPA_CHECK(covered == data_size, path, ": the data section has ", data_size,
            " bytes but the tensors cover only ", covered, " (bytes [", covered, ", ", data_size,
            ") belong to no tensor)");
}

// Where the reader's bytes come from, a file or memory: `read` fills dst with the n bytes at
// `offset` and returns false when the source ends first.
struct Source {
  uint64_t size;
  std::function<bool(uint64_t offset, void* dst, uint64_t n)> read;
};

void read_exact(const Source& f, uint64_t offset, void* dst, uint64_t bytes,
                const std::string& path, const std::string& what) {
  if (bytes == 0) return;
  FPA_CHECK(f.read(offset, dst, bytes), path, ": unexpected end of file reading ", what, " (",
            bytes, " bytes at offset ", offset, ")");
}

Tensor read_tensor(const Source& f, const Entry& e, uint64_t data_start, const std::string& path) {
  const std::string what = "tensor '" + e.name + "'";
  uint64_t bytes = e.end - e.begin;
  if (e.dtype->size == 4 || e.dtype->size == 8) {
    Tensor t = empty(Shape(e.shape), e.dtype->size == 8 ? DType::f64 : DType::f32);
    read_exact(f, data_start + e.begin, t.data(), bytes, path, what);
    return t;
  }
  std::vector<uint16_t> raw(bytes / 2);  // F16 / BF16, converted to float32
  read_exact(f, data_start + e.begin, raw.data(), bytes, path, what);
  Tensor t = empty(Shape(e.shape), DType::f32);
  float* out = t.data_as<float>();
  bool bf16 = std::strcmp(e.dtype->code, "BF16") == 0;
  for (size_t i = 0; i < raw.size(); ++i) out[i] = bf16 ? bfloat_to_float(raw[i]) : half_to_float(raw[i]);
  return t;
}

// The validating reader behind both entry points; `path` names the source in messages.
NamedTensors read_safetensors(const Source& file, const std::string& path) {
  const uint64_t file_size = file.size;
  FPA_CHECK(file_size >= 8, path, ": file is ", file_size,
            " bytes, too short for the 8-byte header length");

  uint64_t n = 0;
  read_exact(file, 0, &n, 8, path, "the header length");
  FPA_CHECK(n <= kSafetensorsMaxHeader, path, ": header length ", n, " exceeds the limit of ",
            kSafetensorsMaxHeader, " bytes");
  FPA_CHECK(n <= file_size - 8, path, ": header length ", n, " runs past the end of the file (",
            file_size, " bytes)");
  std::string header(n, '\0');
  read_exact(file, 8, header.data(), n, path, "the header");

  const Json root = JsonParser(header, path).parse();
  const uint64_t data_start = 8 + n, data_size = file_size - data_start;
  NamedTensors out;
  out.source = path;
  std::vector<Entry> entries;
  std::set<std::string> seen;
  for (size_t i = 0; i < root.keys.size(); ++i) {
    const std::string& key = root.keys[i];
    FPA_CHECK(seen.insert(key).second, path, ": duplicate ",
              key == "__metadata__" ? std::string("'__metadata__'") : "tensor name '" + key + "'");
    if (key == "__metadata__")
      read_metadata(root.items[i], path, out.metadata);
    else
      entries.push_back(parse_entry(key, root.items[i], path, data_size));
  }
  check_coverage(entries, path, data_size);
  for (const Entry& e : entries)
    out.tensors.emplace_back(e.name, read_tensor(file, e, data_start, path));
  return out;
}

// ---- writer ----

std::string build_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::string h = "{\"__metadata__\":{";
  bool first = true;
  for (const auto& [key, value] : metadata) {
    if (!first) h += ',';
    first = false;
    append_json_string(h, key);
    h += ':';
    append_json_string(h, value);
  }
  h += '}';
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    uint64_t bytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    h += ',';
    append_json_string(h, name);
    h += t.dtype() == DType::f32 ? ":{\"dtype\":\"F32\",\"shape\":[" : ":{\"dtype\":\"F64\",\"shape\":[";
    for (int i = 0; i < t.ndim(); ++i) h += (i ? "," : "") + std::to_string(t.dim(i));
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

}  // namespace

const Tensor* NamedTensors::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Everything is checked before PATH.tmp is created.
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    FPA_CHECK(!name.empty() && name != "__metadata__", path, ": cannot save a tensor named '", name, "'");
    FPA_CHECK(valid_utf8(name), path, ": tensor name '", name, "' is not valid UTF-8");
    FPA_CHECK(names.insert(name).second, path, ": duplicate tensor name '", name, "'");
    FPA_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
  }
  for (const auto& [key, value] : metadata)
    FPA_CHECK(valid_utf8(key) && valid_utf8(value), path, ": metadata '", key, "' is not valid UTF-8");
  const std::string header = build_header(tensors, metadata);

  AtomicFile out(path);
  uint64_t n = header.size();
  out.write(&n, 8);
  out.write(header.data(), header.size());
  for (const auto& [name, t] : tensors) {
    Tensor host = t.to(Device::cpu);
    out.write(host.data(), size_t(host.numel()) * dtype_size(host.dtype()));
  }
  out.commit();
}

NamedTensors load_safetensors(const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"), &std::fclose);
  FPA_CHECK(file, path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  FPA_CHECK(fstat(fileno(file.get()), &st) == 0 && S_ISREG(st.st_mode), path, ": not a regular file");
  std::FILE* f = file.get();
  return read_safetensors({uint64_t(st.st_size),
                           [f](uint64_t offset, void* dst, uint64_t n) {
                             return fseeko(f, off_t(offset), SEEK_SET) == 0 &&
                                    std::fread(dst, 1, n, f) == n;
                           }},
                          path);
}

NamedTensors parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& name) {
  return read_safetensors({bytes.size(),
                           [&bytes](uint64_t offset, void* dst, uint64_t n) {
                             if (offset > bytes.size() || n > bytes.size() - offset) return false;
                             std::memcpy(dst, bytes.data() + offset, n);
                             return true;
                           }},
                          name);
}

}  // namespace fpa::nn
