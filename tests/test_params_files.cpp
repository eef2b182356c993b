// test_params_files.cpp: `fpa params` (parameter_listing over the model factory) against the
// spec's params-*.txt for every preset, line for line, and the parameter totals.
#include <gtest/gtest.h>

#include <fstream>

#include "fpa/models.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

const char* kSpecDir = "../shared/spec/";

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);)
    if (!l.empty()) lines.push_back(l);
  return lines;
}

std::vector<std::string> with_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  std::vector<std::string> r;
  for (const std::string& l : lines)
    if (l.rfind(prefix, 0) == 0) r.push_back(l);
  return r;
}

struct Listing {
  std::vector<std::string> lines;
  int64_t g_total, d_total;
};

Listing listing_for(const std::string& preset) {
  ModelConfig c = preset_config(preset);
  GeneratorModel g = make_generator(c.g);
  std::shared_ptr<Discriminator> d = make_discriminator(c.d);
  return {parameter_listing(*g.module, *d), g.module->parameter_count(), d->parameter_count()};
}

void expect_same_lines(const std::vector<std::string>& ours, const std::vector<std::string>& spec, const std::string& what) {
  ASSERT_FALSE(spec.empty()) << what << ": spec file missing or empty";
  EXPECT_EQ(ours.size(), spec.size()) << what;
  for (size_t i = 0; i < std::min(ours.size(), spec.size()); ++i)
    ASSERT_EQ(ours[i], spec[i]) << what << " line " << i + 1;
}

TEST(ParamsFiles, Rgb64T64MatchesExactly) {
  if (read_lines(std::string(kSpecDir) + "params-fpa-rgb64-T64.txt").empty()) GTEST_SKIP() << "no spec dir";
  Listing l = listing_for("paper-rgb64-T64");
  expect_same_lines(l.lines, read_lines(std::string(kSpecDir) + "params-fpa-rgb64-T64.txt"), "rgb64-T64");
  EXPECT_EQ(l.g_total, 6437891);
  EXPECT_EQ(l.d_total, 12326632);
}

TEST(ParamsFiles, Grey32T32MatchesExactly) {
  if (read_lines(std::string(kSpecDir) + "params-fpa-grey32-T32.txt").empty()) GTEST_SKIP() << "no spec dir";
  Listing l = listing_for("grey32-T32");
  expect_same_lines(l.lines, read_lines(std::string(kSpecDir) + "params-fpa-grey32-T32.txt"), "grey32-T32");
  EXPECT_EQ(l.d_total, 11094384);
}

TEST(ParamsFiles, UNetGeneratorMatchesExactly) {
  std::vector<std::string> spec = read_lines(std::string(kSpecDir) + "params-fpa-unet-rgb64-generator.txt");
  if (spec.empty()) GTEST_SKIP() << "no spec dir";
  std::vector<std::string> without_aliases;
  for (const std::string& l : spec)
    if (l.rfind("G.mod_dict.", 0) != 0) without_aliases.push_back(l);
  Listing l = listing_for("paper-rgb64-T64+unet");
  expect_same_lines(with_prefix(l.lines, "G."), without_aliases, "unet generator");
  EXPECT_EQ(l.g_total, 14423366);
}

}  // namespace
}  // namespace fpa::test
