// test_fixtures_unet.cpp: the FPA U-Net generator (fpa/unet_painter.h) on the CPU against the
// PyTorch reference fixture tests/fixtures/gen_unet.safetensors (tools/reference/make_fixtures.py;
// skipped when absent): same weights, same latents, then the painting W_T, the U-Net output,
// the images and the gradient of sum(images * in.out_weight) w.r.t. in.z and every parameter,
// in float64 and float32. The check and its tolerances are in tests/fixture_checks.cpp, shared
// with the CUDA suite (tests/cuda/test_cuda_fixtures.cpp).
#include <gtest/gtest.h>

#include "tests/fixture_checks.h"

namespace fpa::test {
namespace {

TEST(UNetFixture, MatchesReferenceFloat64) { check_unet_fixture(Device::cpu, DType::f64); }
TEST(UNetFixture, MatchesReferenceFloat32) { check_unet_fixture(Device::cpu, DType::f32); }

}  // namespace
}  // namespace fpa::test
