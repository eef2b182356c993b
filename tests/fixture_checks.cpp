// fixture_checks.cpp: the model-against-fixture checks of fixture_checks.h, shared by the CPU
// tests and the CUDA suite. The weights are loaded on the host in the model's dtype, then the
// model moves to the device; results come back to the host in float64 to be compared.
//
// Tolerances, elementwise |ours - ref| <= atol * scale + rtol |ref|, per tensor, the same on
// every device:
//   float64 (weights and inputs as stored): atol 1e-9, rtol 1e-7, scale 1;
//   float32 (everything converted):          atol 1e-5, rtol 1e-4, and scale max(1, max|ref|) for
//     every gradient tensor, and for every discriminator and loss tensor (scale 1 for the
//     generators' outputs). A float32 gradient element is a long sum whose rounding error
//     follows the size of the tensor's terms, not its own value:
//     - U-Net: PyTorch's own float32 run of gen_unet misses a plain atol 1e-5 on 15 of 204
//       gradient tensors (the 3x3 conv weights, max|ref| up to ~30, errors up to 4.5e-5), as
//       this code does; scaled, both pass with a margin of about 2 (worst: 6e-6 of max|ref|).
//     - gen_oja's float32 gradients are ill-conditioned: PyTorch's own float32 run misses the
//       plain atol by 1.1x (decoder_rnn.weight_ih_l0, max|ref| 11.8), and this code, on 24
//       rescaled latents, by 0.7-2.6x; scaled, both pass.
//     - Discriminator: the penalty's parameter gradients span a wide range (disc32_out5: gp
//       606, entries up to 42): a reduction over thousands of float32 terms leaves errors near
//       1e-6 of the largest term on every entry, small ones included (measured on the CPU: at
//       most 7e-6 of max|ref| on every tensor of the three files).
#include "tests/fixture_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "fpa/config.h"
#include "fpa/discriminator.h"
#include "fpa/fast_weight_painter.h"
#include "fpa/gan_losses.h"
#include "fpa/unet_painter.h"
#include "nn/safetensors.h"
#include "nn/state_dict.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

const std::string kFixtureDir = "tests/fixtures/";

// A stored tensor by name; a missing one fails the test and is replaced by a tensor that
// fails the comparison by its shape.
struct Ref {
  const nn::NamedTensors& file;
  Tensor operator()(const std::string& name) const {
    const Tensor* t = file.find(name);
    EXPECT_NE(t, nullptr) << file.source << " lacks " << name;
    return t ? *t : full({1}, std::nan(""), DType::f64);
  }
};

struct Tol {
  double atol, rtol;
  bool scaled;  // atol times max(1, max|ref|)
};
// `scaled_in_float32`: whether float32 scales atol (see the top of the file).
Tol tolerance(DType dtype, bool scaled_in_float32) {
  return dtype == DType::f64 ? Tol{1e-9, 1e-7, false} : Tol{1e-5, 1e-4, scaled_in_float32};
}

// `ours` (on any device, any dtype) against the stored float64 reference.
void expect_close(const Tensor& ours, const Tensor& ref, Tol tol) {
  Tensor host = ours.to(Device::cpu).to(DType::f64);
  if (tol.scaled)
    EXPECT_CLOSE_SCALED(host, ref, tol.atol, tol.rtol);
  else
    EXPECT_CLOSE_TOL(host, ref, tol.atol, tol.rtol);
}

// A stored input in `dtype` on `device`.
Tensor input(const Tensor& stored, Device device, DType dtype) { return stored.to(dtype).to(device); }

// The `prefix` weights of `file` into `m`, converted to `dtype`, then `m` onto `device`.
void load_weights(nn::Module& m, const std::string& prefix, const nn::NamedTensors& file, Device device, DType dtype) {
  m.to(dtype);
  nn::LoadOptions opt;
  opt.allow_dtype_conversion = dtype != DType::f64;
  nn::load_state_dict(m, prefix, file, opt);
  m.to(device);
}

// The gradients of sum(images * in.out_weight) w.r.t. z ("grad.in.z") and every parameter of G
// ("grad.G.<name>").
void expect_generator_grads(nn::Module& G, const Tensor& z, const Tensor& images, Ref ref, Device device, Tol tol) {
  auto named = G.named_parameters();
  std::vector<Tensor> wrt = {z};
  for (auto& p : named) wrt.push_back(*p.second);
  std::vector<Tensor> grads = grad({sum(mul(images, input(ref("in.out_weight"), device, images.dtype())))}, wrt);
  auto expect_grad = [&](const Tensor& g, const std::string& name) {
    SCOPED_TRACE(name);
    expect_close(g, ref(name), tol);
  };
  expect_grad(grads[0], "grad.in.z");
  for (size_t i = 0; i < named.size(); ++i) expect_grad(grads[i + 1], "grad.G." + named[i].first);
}

void check_generator_fixture(const std::string& path, Device device, DType dtype) {
  nn::NamedTensors file = nn::load_safetensors(path);
  Ref ref{file};
  const Tol tol = tolerance(dtype, false);
  FastWeightPainter G(from_metadata(file.metadata).g);
  load_weights(G, "G.", file, device, dtype);

  Tensor z = input(ref("in.z"), device, dtype).requires_grad_();
  Tensor painted = G.paint(z);
  Tensor images = tanh(painted);
  expect_close(painted, ref("out.paint"), tol);
  expect_close(images, ref("out.images"), tol);
  {
    NoGradGuard ng;
    expect_close(G.forward(z), ref("out.images"), tol);
  }
  if (file.find("out.steps_updates") || file.find("out.steps_images")) {
    NoGradGuard ng;
    PaintingSteps s = G.forward_with_steps(z);
    expect_close(s.updates, ref("out.steps_updates"), tol);
    expect_close(s.images, ref("out.steps_images"), tol);
  }
  expect_generator_grads(G, z, images, ref, device, tolerance(dtype, true));
}

}  // namespace

std::vector<std::string> generator_fixtures() {
  std::vector<std::string> r;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kFixtureDir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("gen_", 0) == 0 && name != "gen_unet.safetensors" &&
        name.size() > 12 && name.substr(name.size() - 12) == ".safetensors")
      r.push_back(e.path().string());
  }
  std::sort(r.begin(), r.end());
  return r;
}

void check_generator_fixtures(Device device, DType dtype) {
  std::vector<std::string> files = generator_fixtures();
  if (files.empty()) GTEST_SKIP() << "no " << kFixtureDir << "gen_*.safetensors (make fixtures)";
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    check_generator_fixture(f, device, dtype);
  }
}

void check_unet_fixture(Device device, DType dtype) {
  const std::string path = kFixtureDir + "gen_unet.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found (make fixtures)";
  nn::NamedTensors file = nn::load_safetensors(path);
  Ref ref{file};
  const Tol tol = tolerance(dtype, false);
  GeneratorConfig cfg = from_metadata(file.metadata).g;
  ASSERT_EQ(cfg.model, "unet");
  UNetPainter G(cfg);
  load_weights(G, "G.", file, device, dtype);
  G.set_requires_grad(true);  // the fixture's gradients cover every parameter (frozen_base ignored)

  Tensor z = input(ref("in.z"), device, dtype).requires_grad_();
  Tensor painted = G.paint(z);
  Tensor images = G.forward(z);
  {
    NoGradGuard ng;
    Tensor u = cfg.unet_tanh ? tanh(painted) : painted;
    expect_close(G.u_net->forward(u), ref("out.paint"), tol);
  }
  expect_close(painted, ref("out.fpa_paint"), tol);
  expect_close(images, ref("out.images"), tol);
  expect_generator_grads(G, z, images, ref, device, tolerance(dtype, true));
}

void check_discriminator_fixture(const std::string& name, Device device, DType dtype) {
  const std::string path = kFixtureDir + name + ".safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  nn::NamedTensors file = nn::load_safetensors(path);
  Ref ref{file};
  const Tol tol = tolerance(dtype, true);
  Discriminator D(from_metadata(file.metadata).d);
  load_weights(D, "D.", file, device, dtype);

  Tensor x = input(ref("in.images"), device, dtype).requires_grad_(true);
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
  Tensor loss = add(add(sum(mul(o.logits, input(ref("in.w_logits"), device, dtype))),
                        sum(mul(o.logits32, input(ref("in.w_logits32"), device, dtype)))),
                    o.aux_loss);
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

void check_gan_losses_fixture(Device device, DType dtype) {
  const std::string path = kFixtureDir + "losses.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  nn::NamedTensors file = nn::load_safetensors(path);
  Ref ref{file};
  const Tol tol = tolerance(dtype, true);
  auto in = [&](const std::string& n) { return input(ref("in." + n), device, dtype).requires_grad_(true); };
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

}  // namespace fpa::test
