// test_adam.cpp: nn::Adam against torch.optim.Adam's formula over several steps (with and
// without weight decay, float64 and float32, a parameter without a gradient), the rebinding of
// parameters into one flat buffer (views stay views, gradients still flow), zero_grad and the
// state tensors; nn::EMA's update and reset.
#include <gtest/gtest.h>

#include <cmath>

#include "fpa/fast_weight_painter.h"
#include "autograd/philox.h"
#include "nn/adam.h"
#include "nn/ema.h"
#include "nn/layers.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

// torch.optim.Adam's update for one element, in double.
struct RefAdam {
  double m = 0, v = 0;
  void step(double& p, double g, int64_t s, const nn::AdamOptions& o) {
    g += o.weight_decay * p;
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    double bc1 = 1 - std::pow(o.beta1, double(s)), bc2 = 1 - std::pow(o.beta2, double(s));
    p -= o.lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + o.eps);
  }
};

void run_against_reference(DType dt, double wd, double tol) {
  Philox gen(42);
  std::vector<Shape> shapes = {{3, 4}, {5}, {2, 2, 2}};
  std::vector<Tensor> params;
  for (const Shape& s : shapes) params.push_back(randn(s, dt, Device::cpu, &gen).requires_grad_());
  std::vector<Tensor*> ptrs;
  for (Tensor& p : params) ptrs.push_back(&p);
  std::vector<std::vector<double>> ref_p;
  for (Tensor& p : params) ref_p.push_back(p.to_vector());
  std::vector<std::vector<RefAdam>> ref_state;
  for (Tensor& p : params) ref_state.emplace_back(p.numel());

  nn::AdamOptions o;
  o.lr = 2e-2, o.beta1 = 0.5, o.beta2 = 0.9, o.weight_decay = wd;
  nn::Adam adam(ptrs, o);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(params[i].to_vector(), ref_p[i]);  // values kept
  for (int64_t s = 1; s <= 5; ++s) {
    adam.zero_grad();
    // loss = sum_i <p_i, c_i> (parameter 1 left out at step 3: no gradient, zeros in the step).
    Tensor loss;
    std::vector<std::vector<double>> grads;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor c = randn(params[i].shape(), dt, Device::cpu, &gen);
      bool used = !(i == 1 && s == 3);
      grads.push_back(used ? c.to_vector() : std::vector<double>(c.numel(), 0.0));
      if (used) loss = loss.defined() ? loss + sum(params[i] * c) : sum(params[i] * c);
    }
    backward(loss);
    EXPECT_EQ(params[1].grad().defined(), s != 3);
    adam.step();
    EXPECT_EQ(adam.step_count(), s);
    for (size_t i = 0; i < params.size(); ++i)
      for (size_t e = 0; e < ref_p[i].size(); ++e) ref_state[i][e].step(ref_p[i][e], grads[i][e], s, o);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_CLOSE_TOL(params[i].to(DType::f64), from_vector(ref_p[i], shapes[i], DType::f64), tol, tol);
    std::vector<double> m = slice(adam.exp_avg(), 0, adam.offsets()[i], adam.offsets()[i] + params[i].numel()).to_vector();
    for (size_t e = 0; e < m.size(); ++e) EXPECT_NEAR(m[e], ref_state[i][e].m, tol);
  }
}

TEST(Adam, MatchesTorchFormulaFloat64) {
  run_against_reference(DType::f64, 0.0, 1e-12);
  run_against_reference(DType::f64, 0.1, 1e-12);
}

TEST(Adam, MatchesTorchFormulaFloat32) { run_against_reference(DType::f32, 0.01, 2e-5); }

TEST(Adam, ParametersStayViewsOfTheFlatBuffer) {
  manual_seed(3);
  GeneratorConfig c;
  c.image_size = 4, c.channels = 1, c.steps = 3, c.latent_dim = 5, c.hidden = 4, c.mini_latent = 2, c.mini_input = 3;
  FastWeightPainter g(c);
  auto named = g.named_parameters();
  std::vector<std::vector<double>> before;
  for (auto& np : named) before.push_back(np.second->to_vector());
  nn::Adam adam(g.parameters(), nn::AdamOptions{1e-2, 0.5, 0.9, 1e-8, 0.0});
  Tensor& flat = adam.flat_params();
  ASSERT_EQ(flat.numel(), g.parameter_count());
  for (size_t i = 0; i < named.size(); ++i) {
    Tensor& p = *named[i].second;
    EXPECT_EQ(p.impl()->storage, flat.impl()->storage) << named[i].first;
    EXPECT_EQ(p.data(), static_cast<void*>(flat.data_as<float>() + adam.offsets()[i])) << named[i].first;
    EXPECT_EQ(p.to_vector(), before[i]) << named[i].first;
    EXPECT_TRUE(p.requires_grad() && p.is_leaf());
  }
  // Gradients still flow into the rebound parameters, and a step moves them all.
  Tensor z = randn({2, 5});
  backward(sum(g.forward(z)));
  for (auto& np : named) EXPECT_TRUE(np.second->grad().defined()) << np.first;
  adam.step();
  for (size_t i = 0; i < named.size(); ++i) {
    EXPECT_NE(named[i].second->to_vector(), before[i]) << named[i].first;
    EXPECT_EQ(named[i].second->impl()->storage, flat.impl()->storage);
  }
  // Writing the flat buffer is writing the parameters.
  backend(Device::cpu).fill(DType::f32, flat.numel(), 0.25, flat.data());
  for (auto& np : named)
    for (double v : np.second->to_vector()) ASSERT_EQ(v, 0.25) << np.first;
  adam.zero_grad();
  for (auto& np : named) EXPECT_FALSE(np.second->grad().defined());
  // State for checkpoints.
  auto st = adam.state();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].first, "exp_avg");
  EXPECT_EQ(st[1].first, "exp_avg_sq");
  EXPECT_EQ(st[0].second.shape(), Shape({g.parameter_count()}));
  EXPECT_EQ(st[1].second.impl()->storage, adam.exp_avg_sq().impl()->storage);
  // Replacing a parameter breaks the aliasing, and step() says so.
  g.to(DType::f64);
  EXPECT_ERROR(adam.step(), "no longer views");
}

TEST(Adam, RejectsBadParameterLists) {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({2}, DType::f64).requires_grad_();
  EXPECT_ERROR(nn::Adam({}), "empty parameter list");
  EXPECT_ERROR(nn::Adam({&a, &b}), "one dtype and device");
  EXPECT_ERROR(nn::Adam({&a, &a}), "appears twice");
}

TEST(Ema, UpdateAndReset) {
  nn::Linear cur(3, 2), ema(3, 2);
  nn::EMA e(ema, cur, 0.9);
  EXPECT_FALSE(ema.weight.requires_grad());
  EXPECT_TRUE(cur.weight.requires_grad());
  e.reset();
  EXPECT_EQ(ema.weight.to_vector(), cur.weight.to_vector());
  EXPECT_EQ(ema.bias.to_vector(), cur.bias.to_vector());
  void* storage = ema.weight.data();
  for (int s = 0; s < 3; ++s) {
    std::vector<double> old_w = ema.weight.to_vector(), old_b = ema.bias.to_vector();
    {
      NoGradGuard ng;
      cur.weight = (cur.weight + randn({2, 3})).detach().requires_grad_();
      cur.bias = (cur.bias * 2.0).detach().requires_grad_();
    }
    e.update();
    std::vector<double> w = ema.weight.to_vector(), cw = cur.weight.to_vector();
    for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], old_w[i] * 0.9 + 0.1 * cw[i], 1e-6);
    std::vector<double> b = ema.bias.to_vector(), cb = cur.bias.to_vector();
    for (size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(b[i], old_b[i] * 0.9 + 0.1 * cb[i], 1e-6);
  }
  EXPECT_EQ(ema.weight.data(), storage);  // written in place
  EXPECT_FALSE(ema.weight.requires_grad());
  nn::Linear nobias(3, 2, false), wide(4, 2);
  EXPECT_ERROR(nn::EMA(nobias, cur), "parameters");
  EXPECT_ERROR(nn::EMA(wide, cur), "in the EMA module but");
}

}  // namespace
}  // namespace fpa::test
