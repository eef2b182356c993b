// safetensors.cpp: the safetensors writer (atomic: autograd/atomic_file.h) and the validating
// reader. The checks mirror the official library's (header size, exact coverage of the data
// section, byte counts, overflow) and add this engine's own (dtype, rank, duplicate keys). The
// reader takes its bytes from a Source: a file (load_safetensors) or memory (parse_safetensors).
// The header's JSON is nn/json_header.h's; F16 and BF16 are widened by nn/half_float.h.
#include "nn/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <set>

#include "autograd/atomic_file.h"
#include "autograd/error.h"
#include "nn/half_float.h"
#include "nn/json_header.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace fpa::nn {
namespace {

using FilePtr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

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

// ---- reader ----

struct Entry {
  std::string name;
  const FileDType* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // relative to the data section
};

void read_metadata(const Json& v, const std::string& path, std::map<std::string, std::string>& out) {
  FPA_CHECK(v.kind == Json::object, path, ": '__metadata__' must be an object, got ", json_kind_name(v.kind));
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const std::string& key = v.keys[i];
    FPA_CHECK(v.items[i].kind == Json::string, path, ": metadata '", key, "' must be a string, got ",
              json_kind_name(v.items[i].kind));
    FPA_CHECK(out.emplace(key, v.items[i].text).second, path, ": duplicate metadata key '", key, "'");
  }
}

// One tensor's header entry, checked on its own: dtype, shape, byte count, range.
Entry parse_entry(const std::string& name, const Json& v, const std::string& path, uint64_t data_size) {
  const std::string where = path + ": tensor '" + name + "'";
  FPA_CHECK(v.kind == Json::object, where, " must be described by an object, got ", json_kind_name(v.kind));
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
    FPA_CHECK(d.kind == Json::integer, where, " has a shape entry that is ", json_kind_name(d.kind),
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

  const Json root = parse_json_header(header, path);
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
