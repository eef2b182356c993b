// test_fixtures_discriminator.cpp: the discriminator and the GAN losses against the PyTorch
// reference fixtures (tools/reference/make_fixtures.py; each test skipped when its file is
// absent). For tests/fixtures/disc*.safetensors: build D from the metadata (fpa/config.h
// from_metadata), load the "D.*" weights, run in.images with the aux loss and compare
//   out.logits, out.logits32, out.aux_loss;
//   grad.in.images and grad.D.* of sum(logits * in.w_logits) + sum(logits32 * in.w_logits32) + aux;
//   gp.input_grad = d(sum logits + sum logits32)/d images, gp.value (the two halves of
//   fpa::gradient_penalty) and its second-order parameter gradients gp.grad.D.*.
// For tests/fixtures/losses.safetensors: every hinge variant (mean and pooled, on the (B,1),
// (B,1,1,1) and (B,25) logits), the generator losses and their input gradients.
//
// Tolerances, elementwise |ours - ref| <= atol + rtol |ref|, per tensor:
//   float64 (weights and inputs as stored): atol 1e-9, rtol 1e-7;
//   float32 (everything converted):          atol 1e-5 * max(1, max|ref|), rtol 1e-4.
// The float32 atol scales with the tensor's largest entry because the penalty's parameter
// gradients span a wide range (disc32_out5: gp 606, entries up to 42): a reduction over
// thousands of float32 terms leaves errors near 1e-6 of the largest term on every entry,
// small ones included (measured: at most 7e-6 of max|ref| on every tensor of the three files).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "fpa/config.h"
#include "fpa/discriminator.h"
#include "fpa/gan_losses.h"
#include "nn/safetensors.h"
#include "nn/state_dict.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

const std::string kFixtureDir = "tests/fixtures/";

struct Ref {
  const nn::NamedTensors& file;
  Tensor operator()(const std::string& name) const {
    const Tensor* t = file.find(name);
    EXPECT_NE(t, nullptr) << file.source << " lacks " << name;
    return t ? *t : full({1}, std::nan(""), DType::f64);  // fails the comparison by shape
  }
};

Tensor f64(const Tensor& t) { return t.to(DType::f64); }

// |ours - ref| <= atol * max(1, max|ref|) (scaled) or atol (not) + rtol |ref|, elementwise.
struct Tol {
  double atol, rtol;
  bool scaled;
};
void expect_close(const Tensor& ours, const Tensor& ref, Tol tol) {
  if (tol.scaled)
    EXPECT_CLOSE_SCALED(f64(ours), ref, tol.atol, tol.rtol);
  else
    EXPECT_CLOSE_TOL(f64(ours), ref, tol.atol, tol.rtol);
}

void check_discriminator(const std::string& name, DType dtype, Tol tol) {
  const std::string path = kFixtureDir + name + ".safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  nn::NamedTensors file = nn::load_safetensors(path);
  Ref ref{file};
  Discriminator D(from_metadata(file.metadata).d);
  D.to(dtype);
  nn::LoadOptions opt;
  opt.allow_dtype_conversion = dtype != DType::f64;
  nn::load_state_dict(D, "D.", file, opt);

  Tensor x = ref("in.images").to(dtype).requires_grad_(true);
  DiscOutput o = D.forward(x, true);
  expect_close(o.logits, ref("out.logits"), tol);
  expect_close(o.logits32, ref("out.logits32"), tol);
  expect_close(reshape(o.aux_loss, {1}), ref("out.aux_loss"), tol);

  auto named = D.named_parameters();
  std::vector<Tensor> params;
  for (auto& p : named) params.push_back(*p.second);
  std::vector<Tensor> wrt = {x};
  wrt.insert(wrt.end(), params.begin(), params.end());

  // First order: the weighted logits plus the aux loss.
  Tensor loss = add(add(sum(mul(o.logits, ref("in.w_logits").to(dtype))),
                        sum(mul(o.logits32, ref("in.w_logits32").to(dtype)))), o.aux_loss);
  std::vector<Tensor> grads = grad({loss}, wrt, {}, /*retain_graph=*/true);
  expect_close(grads[0], ref("grad.in.images"), tol);
  for (size_t i = 0; i < named.size(); ++i) {
    SCOPED_TRACE("grad.D." + named[i].first);
    expect_close(grads[i + 1], ref("grad.D." + named[i].first), tol);
  }

  // The gradient penalty, its input gradient and its (second-order) parameter gradients.
  Tensor g = penalty_input_grad(x, o);
  expect_close(g, ref("gp.input_grad"), tol);
  Tensor gp = penalty_from_input_grad(g);
  expect_close(reshape(gp, {1}), ref("gp.value"), tol);
  // Biases followed only by piecewise-linear ops do not reach d logits / d images: zero.
  std::vector<Tensor> gp_grads = grad({gp}, params, {}, false, false, /*allow_unused=*/true);
  for (size_t i = 0; i < named.size(); ++i) {
    SCOPED_TRACE("gp.grad.D." + named[i].first);
    Tensor gi = gp_grads[i].defined() ? gp_grads[i] : zeros(params[i].shape(), DType::f64);
    expect_close(gi, ref("gp.grad.D." + named[i].first), tol);
  }
}

const Tol kF64{1e-9, 1e-7, false}, kF32{1e-5, 1e-4, true};

TEST(FixturesDiscriminator, Grey32Float64) { check_discriminator("disc32_grey", DType::f64, kF64); }
TEST(FixturesDiscriminator, Grey32Float32) { check_discriminator("disc32_grey", DType::f32, kF32); }
TEST(FixturesDiscriminator, Rgb64Float64) { check_discriminator("disc64_rgb", DType::f64, kF64); }
TEST(FixturesDiscriminator, Rgb64Float32) { check_discriminator("disc64_rgb", DType::f32, kF32); }
TEST(FixturesDiscriminator, Out5Float64) { check_discriminator("disc32_out5", DType::f64, kF64); }
TEST(FixturesDiscriminator, Out5Float32) { check_discriminator("disc32_out5", DType::f32, kF32); }

void check_losses(DType dtype, Tol tol) {
  const std::string path = kFixtureDir + "losses.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  nn::NamedTensors file = nn::load_safetensors(path);
  Ref ref{file};
  auto in = [&](const std::string& n) { return ref("in." + n).to(dtype).requires_grad_(true); };
  // Each loss with the inputs it depends on.
  using Inputs = std::vector<std::pair<std::string, Tensor>>;
  auto check = [&](const std::string& loss_name, const Tensor& value, const Inputs& inputs) {
    SCOPED_TRACE("loss." + loss_name);
    expect_close(reshape(value, {1}), ref("loss." + loss_name), tol);
    std::vector<Tensor> xs;
    for (auto& i : inputs) xs.push_back(i.second);
    std::vector<Tensor> gs = grad({value}, xs);
    for (size_t k = 0; k < inputs.size(); ++k)
      expect_close(gs[k], ref("grad." + loss_name + ".in." + inputs[k].first), tol);
  };
  for (std::string suffix : {"", "32", "5"}) {
    Tensor real = in("real_logits" + suffix), fake = in("fake_logits" + suffix);
    check("d_hinge" + suffix, hinge_loss(real, fake), {{"real_logits" + suffix, real}, {"fake_logits" + suffix, fake}});
    check("d_hinge_pooled" + suffix, hinge(HingeKind::pooled, real, fake),
          {{"real_logits" + suffix, real}, {"fake_logits" + suffix, fake}});
  }
  Tensor real = in("real_logits"), fake = in("fake_logits"), real32 = in("real_logits32"), fake32 = in("fake_logits32");
  DiscOutput fake_out{fake, fake32, {}};
  check("g", mean(fake), {{"fake_logits", fake}});
  check("g32", mean(fake32), {{"fake_logits32", fake32}});
  check("g_total", generator_loss(fake_out), {{"fake_logits", fake}, {"fake_logits32", fake32}});
  check("d_total", add(hinge(HingeKind::mean, real, fake), hinge(HingeKind::mean, real32, fake32)),
        {{"real_logits", real}, {"fake_logits", fake}, {"real_logits32", real32}, {"fake_logits32", fake32}});
}

TEST(FixturesGanLosses, Float64) { check_losses(DType::f64, kF64); }
TEST(FixturesGanLosses, Float32) { check_losses(DType::f32, kF32); }

}  // namespace
}  // namespace fpa::test
