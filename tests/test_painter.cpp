// test_painter.cpp: the learning rules (delta, Hebbian, Oja; per-matrix and per-row rates; a
// start matrix) against plain loops, their traces, and gradcheck + gradgradcheck in float64;
// FastWeightPainter: parameter names and shapes of every model against the official lists,
// the initialisation statistics, the painting-steps view, and gradcheck + gradgradcheck of the
// whole model (latent and every parameter as inputs) at a tiny size for each model and option.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/philox.h"
#include "fpa/fast_weight_painter.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// ---------------------------------------------------------------------------------------------
// learning rules

// The rule by plain loops in double. k, v (T, N, S); beta (T, N, r); w0 (N, S, S) or empty.
std::vector<double> rule_loop(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta,
                              const Tensor& w0, std::vector<std::vector<double>>* steps = nullptr) {
  const int64_t T = k.dim(0), N = k.dim(1), S = k.dim(2);
  std::vector<double> K = k.to_vector(), Vv = v.to_vector();
  std::vector<double> Bt = beta.defined() ? beta.to_vector() : std::vector<double>();
  const int64_t r = beta.defined() ? beta.dim(2) : 1;
  std::vector<double> W = w0.defined() ? w0.to_vector() : std::vector<double>(N * S * S, 0.0);
  bool have = w0.defined();
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t n = 0; n < N; ++n) {
      std::vector<double> kt(S), vt(S);
      for (int64_t i = 0; i < S; ++i) kt[i] = K[(t * N + n) * S + i], vt[i] = Vv[(t * N + n) * S + i];
      auto b = [&](int64_t i) { return Bt[(t * N + n) * r + (r == 1 ? 0 : i)]; };
      double* w = &W[n * S * S];
      if (rule == LearningRule::delta && have) {
        std::vector<double> wk(S, 0.0);
        for (int64_t i = 0; i < S; ++i)
          for (int64_t j = 0; j < S; ++j) wk[i] += w[i * S + j] * kt[j];
        for (int64_t i = 0; i < S; ++i) vt[i] = b(i) * (vt[i] - wk[i]);
      } else if (rule == LearningRule::oja) {
        if (have) {
          std::vector<double> wv(S, 0.0);
          for (int64_t i = 0; i < S; ++i)
            for (int64_t j = 0; j < S; ++j) wv[j] += w[i * S + j] * vt[i];
          for (int64_t j = 0; j < S; ++j) kt[j] -= wv[j];
        }
        double mx = kt[0], z = 0;
        for (double x : kt) mx = std::max(mx, x);
        for (double& x : kt) z += (x = std::exp(x - mx));
        for (double& x : kt) x /= z;
        for (int64_t i = 0; i < S; ++i) vt[i] *= b(i);
      }
      for (int64_t i = 0; i < S; ++i)
        for (int64_t j = 0; j < S; ++j) w[i * S + j] += vt[i] * kt[j];
    }
    have = true;
    if (steps) steps->push_back(W);
  }
  return W;
}

struct RuleInputs {
  Tensor k, v, beta, w0;
};

RuleInputs rule_inputs(int64_t T, int64_t N, int64_t S, int64_t r, bool with_w0, uint64_t seed) {
  Philox gen(seed);
  RuleInputs in;
  in.k = softmax(randn({T, N, S}, DType::f64, Device::cpu, &gen), -1).detach().requires_grad_();
  in.v = randn({T, N, S}, DType::f64, Device::cpu, &gen).requires_grad_();
  in.beta = rand({T, N, r}, DType::f64, Device::cpu, &gen, 0.1, 0.9).requires_grad_();
  if (with_w0) in.w0 = randn({N, S, S}, DType::f64, Device::cpu, &gen).requires_grad_();
  return in;
}

const char* rule_name(LearningRule r) {
  return r == LearningRule::delta ? "delta" : r == LearningRule::hebb ? "hebb" : "oja";
}

TEST(PainterRules, MatchPlainLoops) {
  for (LearningRule rule : {LearningRule::delta, LearningRule::hebb, LearningRule::oja})
    for (int64_t r : {int64_t(1), int64_t(5)})
      for (bool w0 : {false, true}) {
        if (w0 && rule == LearningRule::oja) continue;
        RuleInputs in = rule_inputs(6, 4, 5, r, w0, 3 + r);
        Tensor beta = rule == LearningRule::hebb ? Tensor() : in.beta;
        Tensor W = paint(rule, in.k, in.v, beta, in.w0);
        std::vector<std::vector<double>> steps;
        Tensor ref = from_vector(rule_loop(rule, in.k, in.v, beta, in.w0, &steps), {4, 5, 5}, DType::f64);
        SCOPED_TRACE(std::string(rule_name(rule)) + " r=" + std::to_string(r) + (w0 ? " w0" : ""));
        EXPECT_CLOSE_TOL(W, ref, 1e-12, 1e-12);
        PaintTrace tr = paint_trace(rule, in.k, in.v, beta, in.w0);
        ASSERT_EQ(tr.weights.size(), 6u);
        ASSERT_EQ(tr.updates.size(), 6u);
        Tensor prev = in.w0;
        for (size_t t = 0; t < 6; ++t) {
          EXPECT_CLOSE_TOL(tr.weights[t], from_vector(steps[t], {4, 5, 5}, DType::f64), 1e-12, 1e-12);
          Tensor expect_update = prev.defined() ? tr.weights[t] - prev : tr.weights[t];
          EXPECT_CLOSE_TOL(tr.updates[t], expect_update, 1e-12, 1e-12);
          prev = tr.weights[t];
        }
        // float32 agrees to float precision.
        Tensor W32 = paint(rule, in.k.to(DType::f32), in.v.to(DType::f32),
                           beta.defined() ? beta.to(DType::f32) : Tensor(), in.w0.defined() ? in.w0.to(DType::f32) : Tensor());
        EXPECT_CLOSE_TOL(W32.to(DType::f64), ref, 1e-5, 1e-4);
      }
}

TEST(PainterRules, DeltaFirstStepHasNoRateAndHebbIsASum) {
  RuleInputs in = rule_inputs(1, 2, 3, 1, false, 9);
  Tensor W = delta_rule_paint(in.k, in.v, in.beta);
  Tensor outer = matmul(reshape(in.v, {2, 3, 1}), reshape(in.k, {2, 1, 3}));
  EXPECT_CLOSE(W, outer);
  RuleInputs in2 = rule_inputs(4, 2, 3, 1, false, 10);
  Tensor sum_outer = sum(matmul(reshape(in2.v, {4, 2, 3, 1}), reshape(in2.k, {4, 2, 1, 3})), {0});
  EXPECT_CLOSE(hebb_rule_paint(in2.k, in2.v), sum_outer);
}

TEST(PainterRules, RejectsBadShapes) {
  RuleInputs in = rule_inputs(3, 2, 4, 1, false, 1);
  EXPECT_ERROR(delta_rule_paint(in.k, in.v, Tensor()), "learning rates");
  EXPECT_ERROR(delta_rule_paint(in.k, reshape(in.v, {3, 4, 2}), in.beta), "values");
  EXPECT_ERROR(delta_rule_paint(in.k, in.v, zeros({3, 2, 3}, DType::f64)), "learning rates must be");
  EXPECT_ERROR(delta_rule_paint(in.k, in.v, in.beta, zeros({2, 4, 3}, DType::f64)), "start matrix");
}

TEST(PainterRules, Gradcheck) {
  for (LearningRule rule : {LearningRule::delta, LearningRule::hebb, LearningRule::oja})
    for (int64_t r : {int64_t(1), int64_t(3)}) {
      bool w0 = rule == LearningRule::delta && r == 3;
      RuleInputs in = rule_inputs(3, 2, 3, r, w0, 20 + r);
      V xs = {in.k, in.v};
      if (rule != LearningRule::hebb) xs.push_back(in.beta);
      if (w0) xs.push_back(in.w0);
      auto fn = [rule, w0](const V& x) {
        return paint(rule, x[0], x[1], rule == LearningRule::hebb ? Tensor() : x[2], w0 ? x[3] : Tensor());
      };
      SCOPED_TRACE(std::string(rule_name(rule)) + " r=" + std::to_string(r));
      CheckResult g1 = gradcheck(fn, xs);
      EXPECT_TRUE(g1.ok) << g1.message;
      CheckResult g2 = gradgradcheck(fn, xs);
      EXPECT_TRUE(g2.ok) << g2.message;
    }
}

// ---------------------------------------------------------------------------------------------
// FastWeightPainter

using Names = std::vector<std::pair<std::string, Shape>>;

Names names_of(FastWeightPainter& g) {
  Names r;
  for (auto& [n, p] : g.named_parameters()) r.emplace_back(n, p->shape());
  return r;
}

void expect_names(FastWeightPainter& g, const Names& want) {
  Names got = names_of(g);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second, want[i].second) << want[i].first;
  }
}

GeneratorConfig paper(const std::string& model = "v2") {
  GeneratorConfig c = preset_config("paper-rgb64-T64").g;
  c.model = model;
  return c;
}

TEST(Painter, ParameterNamesMatchOfficialLists) {
  // params-fpa-rgb64-T64.txt (G.*), and the U-Net generator's painter part.
  Names v2 = {{"latent_to_init.weight", {2048, 512}}, {"latent_to_init.bias", {2048}},
              {"input_generator.weight", {512, 512}}, {"input_generator.bias", {512}},
              {"per_time_linear_input.weight", {128, 8}}, {"per_time_linear_input.bias", {128}},
              {"decoder_rnn.weight_ih_l0", {4096, 128}}, {"decoder_rnn.weight_hh_l0", {4096, 1024}},
              {"decoder_rnn.bias_ih_l0", {4096}}, {"decoder_rnn.bias_hh_l0", {4096}},
              {"kvb_net.weight", {387, 1024}}, {"kvb_net.bias", {387}}};
  for (const char* m : {"v2", "unet"}) {
    FastWeightPainter g(paper(m));
    expect_names(g, v2);
  }
  // params-fpa-grey32-T32.txt.
  FastWeightPainter grey(preset_config("grey32-T32").g);
  expect_names(grey, {{"latent_to_init.weight", {1024, 256}}, {"latent_to_init.bias", {1024}},
                      {"input_generator.weight", {256, 256}}, {"input_generator.bias", {256}},
                      {"per_time_linear_input.weight", {128, 8}}, {"per_time_linear_input.bias", {128}},
                      {"decoder_rnn.weight_ih_l0", {2048, 128}}, {"decoder_rnn.weight_hh_l0", {2048, 512}},
                      {"decoder_rnn.bias_ih_l0", {2048}}, {"decoder_rnn.bias_hh_l0", {2048}},
                      {"kvb_net.weight", {65, 512}}, {"kvb_net.bias", {65}}});
  // The official oja generator has no latent_to_init; v1 and hebb take z at every step.
  FastWeightPainter oja(paper("oja"));
  expect_names(oja, Names(v2.begin() + 2, v2.end()));
  GeneratorConfig c1 = paper("v1");
  c1.use_pos_enc = c1.learned_w0 = true;
  FastWeightPainter v1(c1);
  expect_names(v1, {{"decoder_time_enc", {64, 512}}, {"learned_init", {3, 64, 64}},
                    {"latent_to_init.weight", {2048, 512}}, {"latent_to_init.bias", {2048}},
                    {"decoder_rnn.weight_ih_l0", {4096, 512}}, {"decoder_rnn.weight_hh_l0", {4096, 1024}},
                    {"decoder_rnn.bias_ih_l0", {4096}}, {"decoder_rnn.bias_hh_l0", {4096}},
                    {"kvb_net.weight", {387, 1024}}, {"kvb_net.bias", {387}}});
  FastWeightPainter hebb(paper("hebb"));
  Names hn = names_of(hebb);
  ASSERT_EQ(hn.size(), 8u);
  EXPECT_EQ(hn[2].second, Shape({4096, 512}));
  EXPECT_EQ(hn[6], (std::pair<std::string, Shape>{"kv_net.weight", {384, 1024}}));
  // Options: pos enc (T, I), vect_lr, wide_net.
  GeneratorConfig co = paper("v2");
  co.use_pos_enc = co.vect_lr = true;
  co.wide_out_dim = 256;
  co.layers = 2;
  FastWeightPainter opt(co);
  Names on = names_of(opt);
  EXPECT_EQ(on.front(), (std::pair<std::string, Shape>{"decoder_time_enc", {64, 128}}));
  EXPECT_EQ(on[1].second, Shape({4096, 512}));  // latent_to_init: 2 * layers * H
  EXPECT_EQ(on[on.size() - 4], (std::pair<std::string, Shape>{"wide_net.0.weight", {256, 1024}}));
  EXPECT_EQ(on[on.size() - 2], (std::pair<std::string, Shape>{"kvb_net.weight", {3 * (2 * 64 + 64), 256}}));
  EXPECT_ERROR(FastWeightPainter([] { GeneratorConfig c; c.learned_w0 = true; return c; }()), "v1 only");
  EXPECT_ERROR(FastWeightPainter([] { GeneratorConfig c; c.model = "lstm"; return c; }()), "not one of");
}

double stddev(const std::vector<double>& x) {
  double m = 0, s = 0;
  for (double v : x) m += v;
  m /= double(x.size());
  for (double v : x) s += (v - m) * (v - m);
  return std::sqrt(s / double(x.size()));
}

// Within the bound, reaching near it, and (for enough samples) with the std of U(-b, b).
void expect_uniform(const Tensor& t, double bound, const char* what) {
  std::vector<double> x = t.to_vector();
  double mx = 0;
  for (double v : x) mx = std::max(mx, std::abs(v));
  EXPECT_LE(mx, bound) << what;
  EXPECT_GE(mx, 0.95 * bound) << what;
  if (x.size() >= 1000) {
    EXPECT_NEAR(stddev(x), bound / std::sqrt(3.0), 0.05 * bound) << what;
  }
}

Tensor atanh_ref(const Tensor& x) {
  std::vector<double> v = x.to_vector();
  for (double& a : v) a = std::atanh(a);
  return from_vector(v, x.shape(), DType::f64);
}

TEST(Painter, InitialisationFollowsTheOfficialCode) {
  manual_seed(1);
  FastWeightPainter g(paper("v2"));
  expect_uniform(g.head->weight, 1 / std::sqrt(387.0), "kvb_net.weight");
  expect_uniform(g.head->bias, 1 / std::sqrt(387.0), "kvb_net.bias");
  for (Tensor* p : g.decoder_rnn->parameters()) expect_uniform(*p, 1 / 32.0, "decoder_rnn");
  expect_uniform(g.latent_to_init->weight, 1 / std::sqrt(512.0), "latent_to_init.weight");
  expect_uniform(g.input_generator->weight, 1 / std::sqrt(512.0), "input_generator.weight");
  expect_uniform(g.per_time_linear_input->bias, 1 / std::sqrt(8.0), "per_time_linear_input.bias");
  EXPECT_NEAR(stddev(g.per_time_linear_input->weight.to_vector()), 0.5, 0.05);  // Kaiming: sqrt(2/8)
  FastWeightPainter v1(paper("v1"));
  EXPECT_NEAR(stddev(v1.latent_to_init->weight.to_vector()), std::sqrt(2.0 / 512), 0.002);
  // With vect_lr the official bound still uses C*(2S + 1).
  GeneratorConfig c = paper("v2");
  c.vect_lr = true;
  FastWeightPainter gv(c);
  expect_uniform(gv.head->weight, 1 / std::sqrt(387.0), "kvb_net.weight (vect_lr)");
  FastWeightPainter hebb(paper("hebb"));
  expect_uniform(hebb.head->weight, 1 / 32.0, "kv_net.weight (default Linear init)");
}

// A tiny configuration for the numerical checks.
GeneratorConfig tiny(const std::string& model) {
  GeneratorConfig c;
  c.model = model;
  c.image_size = 3, c.channels = 2, c.steps = 3, c.latent_dim = 3, c.hidden = 3;
  c.layers = 1, c.mini_latent = 2, c.mini_input = 3;
  return c;
}

// (z, params...) -> out(g, z), with the module's parameters bound to the inputs.
std::function<Tensor(const V&)> model_fn(FastWeightPainter& g, std::function<Tensor(FastWeightPainter&, const Tensor&)> out) {
  return [&g, out](const V& in) {
    auto params = g.parameters();
    for (size_t i = 0; i < params.size(); ++i) *params[i] = in[1 + i];
    return out(g, in[0]);
  };
}

V model_inputs(FastWeightPainter& g, int64_t B, uint64_t seed) {
  Philox gen(seed);
  V in = {randn({B, g.config().latent_dim}, DType::f64, Device::cpu, &gen).requires_grad_()};
  for (Tensor* p : g.parameters()) in.push_back(p->to(DType::f64).detach().requires_grad_());
  return in;
}

struct TinyCase {
  std::string label;
  GeneratorConfig cfg;
};

std::vector<TinyCase> tiny_cases() {
  std::vector<TinyCase> r = {{"v2", tiny("v2")}, {"hebb", tiny("hebb")}, {"oja", tiny("oja")}};
  GeneratorConfig v1 = tiny("v1");
  v1.learned_w0 = v1.use_pos_enc = true;
  r.push_back({"v1_w0_posenc", v1});
  GeneratorConfig opt = tiny("v2");
  opt.use_pos_enc = opt.val_tanh = opt.vect_lr = opt.no_sigmoid_lr = true;
  opt.wide_out_dim = 4, opt.layers = 2, opt.input_tanh = false;
  r.push_back({"v2_all_options", opt});
  GeneratorConfig ojav = tiny("oja");
  ojav.vect_lr = ojav.val_tanh = true;
  r.push_back({"oja_vect_lr", ojav});
  return r;
}

TEST(Painter, WholeModelGradcheck) {
  for (const TinyCase& tc : tiny_cases()) {
    SCOPED_TRACE(tc.label);
    manual_seed(4);
    FastWeightPainter g(tc.cfg);
    V in = model_inputs(g, 2, 5);
    CheckResult r = gradcheck(model_fn(g, [](FastWeightPainter& m, const Tensor& z) { return m.forward(z); }), in);
    EXPECT_TRUE(r.ok) << r.message;
  }
}

TEST(Painter, WholeModelGradgradcheck) {
  for (const TinyCase& tc : tiny_cases()) {
    SCOPED_TRACE(tc.label);
    manual_seed(6);
    FastWeightPainter g(tc.cfg);
    V in = model_inputs(g, 1, 7);
    CheckResult r = gradgradcheck(model_fn(g, [](FastWeightPainter& m, const Tensor& z) { return m.forward(z); }), in);
    EXPECT_TRUE(r.ok) << r.message;
  }
}

TEST(Painter, PaintingStepsView) {
  for (const TinyCase& tc : tiny_cases()) {
    SCOPED_TRACE(tc.label);
    manual_seed(8);
    FastWeightPainter g(tc.cfg);
    g.to(DType::f64);
    Tensor z = randn({2, 3}, DType::f64);
    Tensor W = g.paint(z);
    ASSERT_EQ(W.shape(), Shape({2, 2, 3, 3}));
    EXPECT_CLOSE(g.forward(z), tanh(W));
    PaintingSteps s = g.forward_with_steps(z);
    ASSERT_EQ(s.updates.shape(), Shape({3, 2, 2, 3, 3}));
    ASSERT_EQ(s.images.shape(), Shape({3, 2, 2, 3, 3}));
    // The last partial image is the image itself; each step is rescaled to the final norm.
    EXPECT_CLOSE_TOL(reshape(slice(s.images, 0, 2, 3), {2, 2, 3, 3}), tanh(W), 1e-12, 1e-12);
    if (!tc.cfg.learned_w0) {
      EXPECT_CLOSE_TOL(slice(s.images, 0, 0, 1), slice(s.updates, 0, 0, 1), 1e-12, 1e-12);
    }
    double n = norm(W).item();
    for (int t = 0; t < 3; ++t) {
      EXPECT_NEAR(norm(atanh_ref(slice(s.images, 0, t, t + 1))).item(), n, 1e-9 * n);
      EXPECT_NEAR(norm(atanh_ref(slice(s.updates, 0, t, t + 1))).item(), n, 1e-9 * n);
    }
  }
}

TEST(Painter, PaintingStepsGradcheck) {
  manual_seed(9);
  FastWeightPainter g(tiny("v2"));
  V in = model_inputs(g, 1, 10);
  CheckResult r = gradcheck(model_fn(g, [](FastWeightPainter& m, const Tensor& z) {
                              PaintingSteps s = m.forward_with_steps(z);
                              return concat({s.updates, s.images}, 0);
                            }),
                            in);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
}  // namespace fpa::test
