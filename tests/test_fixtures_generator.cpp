// test_fixtures_generator.cpp: FastWeightPainter on the CPU against the PyTorch reference
// fixtures tests/fixtures/gen_*.safetensors (tools/reference/make_fixtures.py; all but gen_unet,
// which tests/test_fixtures_unet.cpp covers; skipped when none is present): outputs, the
// painting-steps view and the gradients, in float64 and float32. The check and its tolerances
// are in tests/fixture_checks.cpp, shared with the CUDA suite (tests/cuda/test_cuda_fixtures.cpp).
#include <gtest/gtest.h>

#include <algorithm>

#include "fpa/config.h"
#include "nn/safetensors.h"
#include "tests/fixture_checks.h"

namespace fpa::test {
namespace {

TEST(GeneratorFixture, MatchesReferenceFloat64) { check_generator_fixtures(Device::cpu, DType::f64); }
TEST(GeneratorFixture, MatchesReferenceFloat32) { check_generator_fixtures(Device::cpu, DType::f32); }

// Every model of the reference is covered by a fixture.
TEST(GeneratorFixture, CoversEveryModel) {
  std::vector<std::string> files = generator_fixtures();
  if (files.empty()) GTEST_SKIP() << "no generator fixtures";
  std::vector<std::string> seen;
  for (const std::string& f : files) seen.push_back(from_metadata(nn::load_safetensors(f).metadata).g.model);
  for (const char* m : {"v2", "v1", "hebb", "oja"})
    EXPECT_NE(std::find(seen.begin(), seen.end(), m), seen.end()) << "no fixture for model " << m;
}

}  // namespace
}  // namespace fpa::test
