// test_fuzz_corpus.cpp: replays the committed fuzz corpus (tests/fuzz/corpus/<target>/: the
// seed-* inputs of tests/fuzz/make_corpus.cpp, the finding-* inputs that once broke a reader,
// and the inputs `make fuzz` found new coverage with, named by their SHA-1) through the fuzz
// targets of tests/fuzz/fuzz_targets.h, from the repository root: every file is loaded or
// refused with an fpa::Error, never a crash or any other exception; and every seed but the
// ones cut short on purpose (*-cut*) loads.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "tests/fuzz/fuzz_targets.h"

namespace fpa::test {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> corpus_files(const std::string& target) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("tests/fuzz/corpus/" + target, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(FuzzCorpus, EveryFileIsLoadedOrRefusedAndSeedsLoad) {
  for (const fuzz::Target& t : fuzz::kTargets) {
    const std::vector<fs::path> files = corpus_files(t.name);
    EXPECT_FALSE(files.empty()) << "no tests/fuzz/corpus/" << t.name << " (run from the repository root)";
    for (const fs::path& f : files) {
      SCOPED_TRACE(f.string());
      const std::vector<uint8_t> bytes = read_file_bytes(f.string());
      EXPECT_NO_THROW(t.run(bytes.data(), bytes.size()));
      const std::string name = f.filename().string();
      if (name.rfind("seed-", 0) == 0 && name.find("-cut") == std::string::npos) {
        EXPECT_EQ(fuzz::last_refusal(), "") << "a seed should load";
      }
    }
  }
}

}  // namespace
}  // namespace fpa::test
