// test_safetensors.cpp: the safetensors writer and strict reader (round trips, the exact
// bytes of a header, half precision, compatibility with Python's `safetensors` when it is
// installed, every refusal with its message, atomic saves) and the state dict load into a
// module (names, in-place copy, missing / shape / dtype / unexpected errors).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "nn/layers.h"
#include "nn/safetensors.h"
#include "nn/state_dict.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using nn::load_safetensors;
using nn::NamedTensors;
using nn::save_safetensors;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// A whole file: length, the header padded with spaces to a multiple of 8, the data section.
std::string file_with(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

std::string tensor_json(const std::string& name, const std::string& dtype, const std::string& shape,
                        uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fpa_safetensors_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  size_t files_in_dir() const {
    return std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator());
  }
  // Writes a file from a header and data section and returns its path.
  std::string raw_file(const std::string& header, const std::string& data) {
    std::string p = path("raw.safetensors");
    write_bytes(p, file_with(header, data));
    return p;
  }
  std::string dir_;
};

TEST_F(Safetensors, RoundTripKeepsTensorsAndMetadata) {
  Tensor a = randn({2, 3}), b = from_vector({0.1, -1e300, 3.5, 1e-310}, {4}, DType::f64);
  Tensor scalar = full(Shape(), 7.25, DType::f64), none = empty({0, 3});
  std::map<std::string, std::string> meta = {{"quote", "say \"hi\" \\ back/slash"},
                                             {"unicode", "é ü 日本 😀"},
                                             {"tab\tkey", "line\nbreak \x01 control"},
                                             {"g.hidden", "1024"},
                                             {"empty", ""}};
  std::string p = path("m.safetensors");
  save_safetensors(p, {{"a", a}, {"b.c", b}, {"scalar", scalar}, {"none", none}}, meta);
  EXPECT_EQ(files_in_dir(), 1u);  // no PATH.tmp left behind

  NamedTensors f = load_safetensors(p);
  EXPECT_EQ(f.source, p);
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.tensors[0].first, "a");
  EXPECT_EQ(f.tensors[1].first, "b.c");
  EXPECT_EQ(f.tensors[0].second.dtype(), DType::f32);
  EXPECT_EQ(f.tensors[1].second.dtype(), DType::f64);
  EXPECT_EQ(f.tensors[0].second.shape(), Shape({2, 3}));
  EXPECT_EQ(f.tensors[2].second.shape(), Shape());
  EXPECT_EQ(f.tensors[3].second.shape(), Shape({0, 3}));
  EXPECT_EQ(f.tensors[0].second.to_floats(), a.to_floats());
  EXPECT_EQ(f.tensors[1].second.to_vector(), b.to_vector());
  EXPECT_EQ(f.tensors[2].second.item(), 7.25);
  ASSERT_NE(f.find("b.c"), nullptr);
  EXPECT_EQ(f.find("zzz"), nullptr);
}

TEST_F(Safetensors, HeaderIsByteExact) {
  std::string p = path("exact.safetensors");
  save_safetensors(p,
                   {{"w", from_floats({1.5f, -2.0f}, {2})}, {"v", from_vector({0.25}, {1, 1}, DType::f64)}},
                   {{"k", "v\"q"}});
  const std::string header =
      "{\"__metadata__\":{\"k\":\"v\\\"q\"},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"v\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}      ";
  ASSERT_EQ(header.size(), 144u);
  std::string expected = std::string("\x90\0\0\0\0\0\0\0", 8) + header +
                         raw_bytes(std::vector<float>{1.5f, -2.0f}) + raw_bytes(std::vector<double>{0.25});
  EXPECT_EQ(read_bytes(p), expected);
}

TEST_F(Safetensors, ReadsEscapesWhitespaceAndHalfPrecision) {
  // F16: 1, -2, 0.5, 65504, the smallest subnormal 2^-24, +inf; BF16: 1, -3.
  std::vector<uint16_t> half = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00}, bf16 = {0x3F80, 0xC040};
  std::string header = "{ \"__metadata__\" : {\"e\\u00e9\": \"\\ud83d\\ude00\\n\\/\"},\n\t" +
                       tensor_json("h", "F16", "[2, 3]", 0, 12) + " ,\r\n " +
                       tensor_json("bf", "BF16", "[2]", 12, 16) + " }";
  NamedTensors f = load_safetensors(raw_file(header, raw_bytes(half) + raw_bytes(bf16)));
  EXPECT_EQ(f.metadata.at("eé"), "😀\n/");
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].second.dtype(), DType::f32);
  EXPECT_EQ(f.tensors[0].second.shape(), Shape({2, 3}));
  std::vector<float> h = f.tensors[0].second.to_floats();
  EXPECT_EQ(h, (std::vector<float>{1.f, -2.f, 0.5f, 65504.f, std::ldexp(1.f, -24),
                                   std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(f.tensors[1].second.to_floats(), (std::vector<float>{1.f, -3.f}));
}

// parse_safetensors reads a file's bytes from memory as load_safetensors reads the file, and
// refuses what it refuses, naming the given name.
TEST_F(Safetensors, ParseFromMemoryIsTheFileReader) {
  std::string p = path("m.safetensors");
  Tensor a = randn({2, 3}), b = from_vector({0.5, -1e300}, {1, 2}, DType::f64);
  save_safetensors(p, {{"a", a}, {"b", b}}, {{"k", "v"}});
  const std::string file = read_bytes(p);
  NamedTensors f =
      nn::parse_safetensors(std::vector<uint8_t>(file.begin(), file.end()), "in memory");
  EXPECT_EQ(f.source, "in memory");
  EXPECT_EQ(f.metadata.at("k"), "v");
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].second.to_floats(), a.to_floats());
  EXPECT_EQ(f.tensors[1].second.to_vector(), b.to_vector());
  const std::vector<uint8_t> cut(file.begin(), file.end() - 8);
  EXPECT_ERROR(nn::parse_safetensors(cut, "in memory"),
               "in memory: tensor 'b' data_offsets [24, 40] run past the end of the data section "
               "(32 bytes)");
  EXPECT_ERROR(nn::parse_safetensors({1, 2, 3}, "in memory"),
               "in memory: file is 3 bytes, too short for the 8-byte header length");
}

// Python's safetensors writes a file we read, and reads ours; skipped when it is absent.
TEST_F(Safetensors, PythonCompatibility) {
  if (std::system("python3 -c 'import safetensors.numpy, numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with safetensors and numpy is not installed";
  std::string script = path("check.py");
  write_bytes(
      script,
      "import sys, numpy as np\n"
      "from safetensors import safe_open\n"
      "from safetensors.numpy import save_file, load_file\n"
      "d = sys.argv[2]\n"
      "if sys.argv[1] == 'write':\n"
      "    save_file({'a.w': np.arange(6, dtype=np.float32).reshape(2, 3),\n"
      "               'b': np.array([0.5, -1.25], dtype=np.float64),\n"
      "               'h': np.array([1, -2, 0.5], dtype=np.float16)}, d + '/py.safetensors',\n"
      "              metadata={'who': 'python', 'uni': '\\u00e9\"'})\n"
      "else:\n"
      "    t = load_file(d + '/ours.safetensors')\n"
      "    with safe_open(d + '/ours.safetensors', 'np') as f:\n"
      "        meta = f.metadata()\n"
      "    ok = (meta == {'k': '\\u00e9 \"x\"'} and t['x'].dtype == np.float32 and t['x'].shape == (2, 2)\n"
      "          and (t['x'] == np.array([[1, 2], [3, 4]], np.float32)).all()\n"
      "          and t['y'].dtype == np.float64 and t['y'].tolist() == [0.125, -8.0])\n"
      "    sys.exit(0 if ok else 1)\n");
  ASSERT_EQ(std::system(("python3 " + script + " write " + dir_).c_str()), 0);
  NamedTensors f = load_safetensors(path("py.safetensors"));
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"who", "python"}, {"uni", "é\""}}));
  ASSERT_NE(f.find("a.w"), nullptr);
  EXPECT_EQ(f.find("a.w")->shape(), Shape({2, 3}));
  EXPECT_EQ(f.find("a.w")->to_floats(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(f.find("b")->dtype(), DType::f64);
  EXPECT_EQ(f.find("b")->to_vector(), (std::vector<double>{0.5, -1.25}));
  EXPECT_EQ(f.find("h")->to_floats(), (std::vector<float>{1, -2, 0.5}));

  save_safetensors(
      path("ours.safetensors"),
      {{"x", from_floats({1, 2, 3, 4}, {2, 2})}, {"y", from_vector({0.125, -8}, {2}, DType::f64)}},
      {{"k", "é \"x\""}});
  EXPECT_EQ(std::system(("python3 " + script + " read " + dir_).c_str()), 0)
      << "python could not read our file";
}

TEST_F(Safetensors, RefusesTruncatedFiles) {
  std::string p = path("short.safetensors");
  write_bytes(p, "abc");
  EXPECT_ERROR(load_safetensors(p), p + ": file is 3 bytes, too short for the 8-byte header length");
  write_bytes(p, le64(64) + "{\"a\":");
  EXPECT_ERROR(load_safetensors(p), p + ": header length 64 runs past the end of the file (13 bytes)");
  write_bytes(p, le64(uint64_t(1) << 40) + "{}      ");
  EXPECT_ERROR(load_safetensors(p), p + ": header length 1099511627776 exceeds the limit of 100000000 bytes");
  std::string missing = path("nope.safetensors");
  EXPECT_ERROR(load_safetensors(missing), missing + ": cannot open");
}

TEST_F(Safetensors, RefusesMalformedJson) {
  const std::string a = tensor_json("a", "F32", "[1]", 0, 4);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{" + a, "expected ',' or '}'"},
      {"{" + a + "} x", "unexpected text after the closing '}'"},
      {"[" + a + "]", "the header must start with '{'"},
      {"{" + a + ",}", "expected a string key"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", "found a fraction or exponent"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", "leading zero"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}",
       "integer out of range"},
      {"{\"__metadata__\":{\"k\":\"\\q\"}," + a + "}", "invalid escape"},
      {"{\"__metadata__\":{\"k\":\"\\ud800\"}," + a + "}", "unpaired surrogate"},
      {"{\"__metadata__\":{\"k\":\"\\u12G4\"}," + a + "}", "four hex digits"},
      {"{\"__metadata__\":{\"k\":\"\xff\"}," + a + "}", "invalid UTF-8"},
      {"{\"__metadata__\":{\"k\":\"a\nb\"}," + a + "}", "unescaped control character"},
      {"{\"__metadata__\":{\"k\":true}," + a + "}", "unexpected character 't'"},
      {"{\"x\":" + std::string(40, '[') + std::string(40, ']') + "," + a + "}",
       "nested deeper than 32 levels"},
  };
  for (const auto& [header, needle] : cases) {
    std::string p = raw_file(header, std::string(4, '\0'));
    EXPECT_ERROR(load_safetensors(p), p + ": malformed JSON header at header byte ");
    EXPECT_ERROR(load_safetensors(p), needle);
  }
}

TEST_F(Safetensors, RefusesBadOffsets) {
  std::string data(24, '\0'), p;
  p = raw_file("{" + tensor_json("a", "F32", "[2]", 0, 8) + "," + tensor_json("b", "F32", "[2]", 4, 12) + "}",
               data.substr(0, 12));
  EXPECT_ERROR(load_safetensors(p), p + ": tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  p = raw_file(
      "{" + tensor_json("a", "F32", "[2]", 0, 8) + "," + tensor_json("b", "F32", "[2]", 12, 20) + "}",
      data.substr(0, 20));
  EXPECT_ERROR(load_safetensors(p),
               p + ": gap in the data section: bytes [8, 12) before tensor 'b' belong to no tensor");
  p = raw_file("{" + tensor_json("a", "F32", "[2]", 0, 8) + "}", data.substr(0, 12));
  EXPECT_ERROR(load_safetensors(p), p + ": the data section has 12 bytes but the tensors cover only 8");
  p = raw_file("{" + tensor_json("a", "F32", "[2]", 0, 8) + "}", data.substr(0, 4));
  EXPECT_ERROR(load_safetensors(p),
               p + ": tensor 'a' data_offsets [0, 8] run past the end of the data section (4 bytes)");
  p = raw_file("{" + tensor_json("a", "F32", "[2]", 8, 0) + "}", data.substr(0, 8));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'a' data_offsets [8, 0] are not a range");
  p = raw_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", data.substr(0, 8));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'a' data_offsets must be [begin, end]");
}

TEST_F(Safetensors, RefusesWrongByteCountForShape) {
  std::string p = raw_file("{" + tensor_json("G.kvb_net.weight", "F32", "[387,1024]", 0, 100) + "}",
                           std::string(100, '\0'));
  EXPECT_ERROR(load_safetensors(p),
               p + ": tensor 'G.kvb_net.weight' data_offsets [0, 100] hold 100 bytes but shape "
                   "(387, 1024) float32 needs 1585152");
}

TEST_F(Safetensors, RefusesBadShapes) {
  std::string p = raw_file("{" + tensor_json("n", "F32", "[2,-1]", 0, 0) + "}", "");
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'n' has a negative dimension in shape (2, -1)");
  p = raw_file("{" + tensor_json("o", "F64", "[4611686018427387904,4]", 0, 8) + "}", std::string(8, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'o' shape (4611686018427387904, 4) overflows");
  // No bytes, but its strides would overflow int64 (UBSan, once the tensor was used).
  p = raw_file("{" + tensor_json("z", "F32", "[0,1099511627776,1099511627776]", 0, 0) + "}", "");
  EXPECT_ERROR(load_safetensors(p),
               p + ": tensor 'z' shape (0, 1099511627776, 1099511627776) overflows: its "
                   "non-zero dimensions multiply past 2^63");
  p = raw_file("{" + tensor_json("r", "F32", "[1,1,1,1,1,1]", 0, 4) + "}", std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p),
               p + ": tensor 'r' has 6 dimensions (1, 1, 1, 1, 1, 1); this engine supports at most 5");
  p = raw_file("{" + tensor_json("s", "F32", "[\"2\"]", 0, 8) + "}", std::string(8, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 's' has a shape entry that is a string, not an integer");
}

TEST_F(Safetensors, RefusesUnknownAndIntegerDtypes) {
  std::string p = raw_file("{" + tensor_json("q", "Q7", "[1]", 0, 4) + "}", std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'q' has unknown dtype 'Q7'");
  for (const char* dtype : {"I32", "I64"}) {
    p = raw_file("{" + tensor_json("step", dtype, "[1]", 0, 4) + "}", std::string(4, '\0'));
    EXPECT_ERROR(load_safetensors(p), p + ": tensor 'step' has dtype " + dtype +
                                          ", which this engine does not load (only F32, F64, F16 and BF16)");
  }
}

TEST_F(Safetensors, RefusesDuplicatesAndBadEntries) {
  const std::string a = tensor_json("a", "F32", "[1]", 0, 4);
  std::string p = raw_file("{" + a + "," + a + "}", std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": duplicate tensor name 'a'");
  p = raw_file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," + a + "}", std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": duplicate metadata key 'k'");
  p = raw_file("{\"__metadata__\":{\"k\":3}," + a + "}", std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": metadata 'k' must be a string, got an integer");
  p = raw_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}",
               std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'a' has unknown field 'extra'");
  p = raw_file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", std::string(4, '\0'));
  EXPECT_ERROR(load_safetensors(p), p + ": tensor 'a' needs an array 'shape'");
}

TEST_F(Safetensors, SaveIntoMissingDirectoryThrowsAndLeavesNothing) {
  std::string p = path("no/such/dir/m.safetensors");
  EXPECT_ERROR(save_safetensors(p, {{"a", ones({2})}}), "cannot write " + p + ": cannot create " + p + ".tmp");
  EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(Safetensors, FailedSaveLeavesExistingFileUnchanged) {
  std::string p = path("m.safetensors");
  save_safetensors(p, {{"a", ones({3})}}, {{"step", "1"}});
  const std::string before = read_bytes(p);
  // PATH.tmp.PID cannot be created (a directory is in the way).
  const std::string tmp = p + ".tmp." + std::to_string(getpid());
  ASSERT_EQ(mkdir(tmp.c_str(), 0755), 0);
  EXPECT_ERROR(save_safetensors(p, {{"a", zeros({3})}}, {{"step", "2"}}), "cannot write " + p + ": cannot create " + tmp);
  EXPECT_EQ(read_bytes(p), before);
  std::filesystem::remove(tmp);
  // Invalid input is refused before anything is written.
  EXPECT_ERROR(save_safetensors(p, {{"a", zeros({3})}, {"a", zeros({3})}}),
               p + ": duplicate tensor name 'a'");
  EXPECT_ERROR(save_safetensors(p, {{"u", Tensor()}}), p + ": tensor 'u' is undefined");
  EXPECT_ERROR(save_safetensors(p, {{"__metadata__", zeros({1})}}),
               "cannot save a tensor named '__metadata__'");
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(files_in_dir(), 1u);
  EXPECT_EQ(load_safetensors(p).metadata.at("step"), "1");
}

// ---- state dicts ----

class TinyNet : public nn::Module {
 public:
  explicit TinyNet(int64_t hidden = 4) {
    scale = ones({2});
    register_parameter("scale", &scale);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(3, hidden));
    auto list = register_module("layers", std::make_shared<nn::ModuleList>());
    list->push_back(std::make_shared<nn::Linear>(hidden, 2, false));
  }
  Tensor scale;
  nn::Linear* fc1;
};

NamedTensors in_memory(std::vector<std::pair<std::string, Tensor>> tensors) {
  NamedTensors f;
  f.tensors = std::move(tensors);
  f.source = "mem.safetensors";
  return f;
}

class StateDict : public Safetensors {};

TEST_F(StateDict, NamesFollowTheModuleWithPrefix) {
  TinyNet net;
  std::vector<std::string> names;
  for (auto& [name, t] : nn::state_dict(net, "G.")) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"G.scale", "G.fc1.weight", "G.fc1.bias", "G.layers.0.weight"}));
  EXPECT_EQ(nn::state_dict(net)[1].second.data(), net.fc1->weight.data());  // shares storage
}

TEST_F(StateDict, RoundTripThroughFileCopiesInPlace) {
  TinyNet a, b, ema;
  auto tensors = nn::state_dict(a, "G.");
  for (auto& entry : nn::state_dict(ema, "GE.")) tensors.push_back(entry);
  tensors.emplace_back("G.mod_dict.alias", zeros({1}));  // ignored by default
  tensors.emplace_back("D.other", zeros({1}));           // outside the prefix
  std::string p = path("gan.safetensors");
  save_safetensors(p, tensors, {{"g.hidden", "4"}});

  NamedTensors f = load_safetensors(p);
  EXPECT_TRUE(nn::has_prefix(f, "GE."));
  EXPECT_FALSE(nn::has_prefix(f, "D_aug."));
  void* storage = b.fc1->weight.data();
  Tensor view = alias(b.fc1->weight, {12});
  nn::load_state_dict(b, "G.", f);
  EXPECT_EQ(b.fc1->weight.data(), storage);
  EXPECT_EQ(view.to_floats(), a.fc1->weight.to_floats());
  auto pa = nn::state_dict(a), pb = nn::state_dict(b);
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(pa[i].second.to_floats(), pb[i].second.to_floats()) << pa[i].first;
  EXPECT_TRUE(b.fc1->weight.requires_grad());
}

TEST_F(StateDict, MissingParametersAreNamed) {
  TinyNet a, b;
  auto tensors = nn::state_dict(a, "G.");
  tensors.erase(tensors.begin() + 2);  // G.fc1.bias
  EXPECT_ERROR(nn::load_state_dict(b, "G.", in_memory(tensors)),
               "mem.safetensors: 1 parameter(s) of the model missing from the file: G.fc1.bias");
  auto list = std::make_shared<nn::ModuleList>();
  for (int i = 0; i < 4; ++i) list->push_back(std::make_shared<nn::Linear>(2, 2));
  EXPECT_ERROR(
      nn::load_state_dict(*list, "", in_memory({})),
      "8 parameter(s) of the model missing from the file: 0.weight, 0.bias, 1.weight, 1.bias, 2.weight, "
      "and 3 more");
}

TEST_F(StateDict, ShapeMismatchIsNamedAndLeavesModelUntouched) {
  TinyNet wide(5), b;
  const std::vector<float> before = b.scale.to_floats();
  auto tensors = nn::state_dict(wide, "G.");
  tensors[0].second = full({2}, 9.0);  // G.scale would load, but nothing may be copied
  std::string p = path("wide.safetensors");
  save_safetensors(p, tensors);
  EXPECT_ERROR(nn::load_state_dict(b, "G.", load_safetensors(p)),
               p + ": tensor 'G.fc1.weight' has shape (5, 3) in the file but (4, 3) in the model");
  EXPECT_EQ(b.scale.to_floats(), before);
}

TEST_F(StateDict, DtypeMismatchNeedsConversionOption) {
  TinyNet a, b;
  auto tensors = nn::state_dict(a, "G.");
  for (auto& entry : tensors) entry.second = entry.second.to(DType::f64);
  EXPECT_ERROR(nn::load_state_dict(b, "G.", in_memory(tensors)),
               "mem.safetensors: tensor 'G.scale' is float64 in the file but float32 in the model");
  nn::LoadOptions opt;
  opt.allow_dtype_conversion = true;
  nn::load_state_dict(b, "G.", in_memory(tensors), opt);
  EXPECT_EQ(b.fc1->weight.dtype(), DType::f32);
  EXPECT_EQ(b.fc1->weight.to_floats(), a.fc1->weight.to_floats());
}

TEST_F(StateDict, UnexpectedTensorsUnderPrefixAreNamed) {
  TinyNet a, b;
  auto tensors = nn::state_dict(a, "G.");
  tensors.emplace_back("G.extra.weight", zeros({1}));
  tensors.emplace_back("D_aug.p", zeros({1}));
  EXPECT_ERROR(nn::load_state_dict(b, "G.", in_memory(tensors)),
               "mem.safetensors: 1 tensor(s) under 'G.' that the model does not have: G.extra.weight");
  nn::LoadOptions opt;
  opt.ignore_prefixes.push_back("G.extra.");
  nn::load_state_dict(b, "G.", in_memory(tensors), opt);
}

// Saving copies device tensors to the host; loading copies into device storage in place.
TEST_F(StateDict, SavesAndLoadsCudaParameters) {
  if (!has_backend(Device::cuda)) GTEST_SKIP() << "no CUDA device";
  TinyNet a, b;
  a.to(Device::cuda);
  b.to(Device::cuda);
  std::string p = path("cuda.safetensors");
  save_safetensors(p, nn::state_dict(a, "G."));
  void* storage = b.fc1->weight.data();
  nn::load_state_dict(b, "G.", load_safetensors(p));
  EXPECT_EQ(b.fc1->weight.data(), storage);
  EXPECT_EQ(b.fc1->weight.device(), Device::cuda);
  EXPECT_EQ(b.fc1->weight.to_floats(), a.fc1->weight.to_floats());
}

}  // namespace
}  // namespace fpa::test
