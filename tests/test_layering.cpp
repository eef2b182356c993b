// test_layering.cpp: the layers of the source tree, checked on the sources themselves. The
// backend (ops/backend: the primitive table, its registry, the allocator and every backend)
// is the lowest layer: it includes only itself and autograd's leaf headers (dtype, shape,
// error, philox), which include nothing of the project. Nothing above it (autograd, the op
// families in ops/, nn, fpa, train, data, tools) includes a particular backend's headers or
// tests for a particular device; it asks the table's properties instead.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fpa::test {
namespace {

namespace fs = std::filesystem;

const std::set<std::string> kLeafHeaders = {"autograd/dtype.h", "autograd/shape.h", "autograd/error.h",
                                             "autograd/philox.h"};

bool is_source(const fs::path& p) {
  const std::string e = p.extension().string();
  return e == ".h" || e == ".cpp" || e == ".cu" || e == ".cuh" || e == ".def";
}

// The project's sources under `dir` (relative to the repository root), all depths or the top only.
std::vector<std::string> sources(const std::string& dir, bool recursive) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  auto add = [&](const fs::directory_entry& e) {
    if (e.is_regular_file() && is_source(e.path())) out.push_back(e.path().generic_string());
  };
  if (recursive)
    for (const auto& e : fs::recursive_directory_iterator(dir)) add(e);
  else
    for (const auto& e : fs::directory_iterator(dir)) add(e);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The project headers a file includes ("dir/name.h" forms).
std::vector<std::string> project_includes(const std::string& text) {
  static const std::regex include(R"re(#include\s+"([a-z_]+/[^"]+)")re");
  std::vector<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), include), end; it != end; ++it) out.push_back((*it)[1]);
  return out;
}

TEST(Layering, TheBackendIncludesOnlyItselfAndLeafHeaders) {
  const std::vector<std::string> files = sources("ops/backend", true);
  if (files.empty()) GTEST_SKIP() << "ops/backend not found: run from the repository root";
  for (const std::string& f : files)
    for (const std::string& inc : project_includes(read_text(f)))
      EXPECT_TRUE(inc.rfind("ops/backend/", 0) == 0 || kLeafHeaders.count(inc)) << f << " includes " << inc;
  for (const std::string& leaf : kLeafHeaders)
    for (const std::string& inc : project_includes(read_text(leaf)))
      EXPECT_TRUE(kLeafHeaders.count(inc)) << leaf << " (a leaf header) includes " << inc;
}

TEST(Layering, NothingAboveTheTableNamesABackendOrTestsForADevice) {
  std::vector<std::string> files = sources("ops", false);
  if (files.empty()) GTEST_SKIP() << "ops not found: run from the repository root";
  for (const char* dir : {"autograd", "nn", "fpa", "train", "data", "tools"})
    for (const std::string& f : sources(dir, true)) files.push_back(f);
  // count_kernels stands a counting table in for the CUDA device on purpose (it counts what a
  // GPU would launch); it tests nothing.
  const std::set<std::string> allowed = {"tools/count_kernels.cpp"};
  static const std::regex device_test(R"(FPA_WITH_CUDA|Device::cuda)");
  static const std::regex backend_header(R"(#include\s+"ops/backend/(cpu|cuda|stub)/)");
  for (const std::string& f : files) {
    if (allowed.count(f)) continue;
    const std::string text = read_text(f);
    EXPECT_FALSE(std::regex_search(text, device_test)) << f << " tests for a particular device";
    EXPECT_FALSE(std::regex_search(text, backend_header)) << f << " includes a particular backend's header";
  }
}

}  // namespace
}  // namespace fpa::test
