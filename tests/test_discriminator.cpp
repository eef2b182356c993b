// test_discriminator.cpp: the lightweight-GAN discriminator, its LinearAttention and the GAN
// losses. Parameter names, shapes, order and totals against the reference lists
// (../shared/spec/params-*.txt, skipped when absent) and the published totals; LinearAttention
// against direct float64 loops; gradcheck of LinearAttention and of a tiny whole D (side 16,
// fmap_max 8, attention at 16) in float64; the gradient penalty's second-order path
// (gradgradcheck of images -> sum(logits) + sum(logits32)) and gradcheck of the penalty
// w.r.t. parameters; hinge / pooled hinge / generator loss values; the whole D-step loss.
// The tiny D still carries the fixed-width 32x32 head (64 and 32 channels), so the numerical
// checks perturb a random subset of elements (a differentiable one-hot scatter into the
// full tensor) instead of every one.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "autograd/philox.h"
#include "fpa/discriminator.h"
#include "fpa/gan_losses.h"
#include "ops/backend/backend.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// ---- helpers

// The "D." lines of a reference parameter list: (name without "D.", shape), in file order.
bool read_spec_params(const std::string& file, std::vector<std::pair<std::string, std::vector<int64_t>>>& out) {
  std::ifstream in("../shared/spec/" + file);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("D.", 0) != 0) continue;
    size_t sp = line.find(' ');
    std::string name = line.substr(2, sp - 2), dims = line.substr(sp + 1);
    std::vector<int64_t> shape;
    for (char& ch : dims)
      if (ch == '(' || ch == ')' || ch == ',') ch = ' ';
    std::istringstream is(dims);
    int64_t v;
    while (is >> v) shape.push_back(v);
    out.emplace_back(name, shape);
  }
  return true;
}

DiscriminatorConfig config(int64_t side, int64_t channels, int64_t fmap_max, std::vector<int64_t> attn,
                           int64_t output_size = 1) {
  DiscriminatorConfig c;
  c.image_size = side, c.channels = channels, c.fmap_max = fmap_max, c.attn_res_layers = attn;
  c.output_size = output_size;
  return c;
}

// The tiny D of the numerical checks, in float64: side 16, 3 channels, fmap_max 8 (the least
// decoder1 allows), attention at 16, and every LinearAttention at 2 heads x 4 (the official
// 8 x 64 would make every float64 gradient check slow; the full size is
// covered by the loop reference here and by the fixtures).
std::unique_ptr<Discriminator> tiny_d(uint64_t seed = 3) {
  Philox gen(seed);
  manual_seed(seed);
  DiscriminatorConfig small = config(16, 3, 8, {16});
  small.attn_heads = 2, small.attn_dim_head = 4;
  auto D = std::make_unique<Discriminator>(small, &gen);
  D->to(DType::f64);
  return D;
}

// A differentiable view of `full` whose entries `idx` come from a (k) input `sel`:
// at(sel) = rest + sel @ P, rest = full with those entries zeroed, P the (k, N) one-hot rows.
struct Subset {
  Tensor rest, P, initial;
  Tensor at(const Tensor& sel) const {
    return add(rest, reshape(matmul(reshape(sel, {1, sel.numel()}), P), rest.shape()));
  }
  Tensor input() const { return initial.clone().requires_grad_(true); }
};

Subset make_subset(const Tensor& full, int64_t k, uint64_t seed) {
  const int64_t n = full.numel();
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  idx.resize(std::min(k, n));
  std::vector<double> rest = full.to_vector(), p(idx.size() * n, 0.0), init;
  for (size_t j = 0; j < idx.size(); ++j) {
    init.push_back(rest[idx[j]]);
    rest[idx[j]] = 0.0;
    p[j * n + idx[j]] = 1.0;
  }
  const int64_t kk = int64_t(idx.size());
  return {from_vector(rest, full.shape(), DType::f64), from_vector(p, {kk, n}, DType::f64),
          from_vector(init, {kk}, DType::f64)};
}

// Swaps module parameters for differentiable stand-ins during a check; restores them after.
struct ParamSwap {
  std::vector<std::pair<Tensor*, Tensor>> saved;
  void set(Tensor* p, const Tensor& v) {
    bool known = false;
    for (auto& s : saved) known = known || s.first == p;
    if (!known) saved.emplace_back(p, *p);
    *p = v;
  }
  ~ParamSwap() {
    for (auto& s : saved) *s.first = s.second;
  }
};

Tensor flat(const Tensor& t) { return reshape(t, {-1}); }

// Guards against a vacuous check: every input must reach the output (a swapped-in
// parameter the module ignores would give zero analytic and zero numeric gradients).
void expect_every_input_used(const std::function<Tensor(const V&)>& fn, const V& inputs) {
  Tensor y = fn(inputs);
  V g = grad({sum(square(y))}, inputs, {}, false, false, true);
  for (size_t i = 0; i < inputs.size(); ++i) {
    double n = 0;
    if (g[i].defined())
      for (double v : g[i].to_vector()) n += v * v;
    EXPECT_GT(n, 0.0) << "input " << i << " does not reach the output";
  }
}

Tensor rand64(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  Philox g(seed);
  return rand(s, DType::f64, Device::cpu, &g, lo, hi);
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// ---- parameter layout

void expect_layout_matches(const char* file, const DiscriminatorConfig& c, int64_t expected_total) {
  Discriminator D(c);
  EXPECT_EQ(D.parameter_count(), expected_total);
  std::vector<std::pair<std::string, std::vector<int64_t>>> spec;
  if (!read_spec_params(file, spec)) GTEST_SKIP() << "../shared/spec/" << file << " not found";
  auto ours = D.named_parameters();
  ASSERT_EQ(ours.size(), spec.size()) << "parameter tensor count differs from " << file;
  int64_t spec_total = 0;
  for (size_t i = 0; i < spec.size(); ++i) {
    EXPECT_EQ(ours[i].first, spec[i].first) << "entry " << i;
    EXPECT_EQ(ours[i].second->shape().vec(), spec[i].second) << ours[i].first;
    int64_t n = 1;
    for (int64_t d : spec[i].second) n *= d;
    spec_total += n;
  }
  EXPECT_EQ(spec_total, expected_total);
}

TEST(Discriminator, ParametersMatchReferenceRgb64) {
  expect_layout_matches("params-fpa-rgb64-T64.txt", config(64, 3, 512, {32}), 12326632);
}

TEST(Discriminator, ParametersMatchReferenceGrey32) {
  expect_layout_matches("params-fpa-grey32-T32.txt", config(32, 1, 512, {32}), 11094384);
}

TEST(Discriminator, LayoutForOtherSidesAndOutputSize5) {
  // S = 128: features {3, 64, 128, 256, 512}; attention at 32 sits on level 2 (input 32x32).
  Discriminator D128(config(128, 3, 512, {32, 64}));
  EXPECT_EQ(D128.features(), (std::vector<int64_t>{3, 64, 128, 256, 512}));
  EXPECT_NE(D128.find_parameter("residual_layers.1.1.fn.to_q.weight"), nullptr);  // 64x64 input
  EXPECT_NE(D128.find_parameter("residual_layers.2.1.norm.g"), nullptr);          // 32x32 input
  EXPECT_EQ(D128.find_parameter("residual_layers.0.1.norm.g"), nullptr);
  // fmap_max caps the channels; output size 5: to_logits.0 (1x1) and to_logits.2 (4x4), no Blur slot.
  Discriminator D5(config(32, 1, 256, {}, 5));
  EXPECT_EQ(D5.features(), (std::vector<int64_t>{1, 256, 256}));
  ASSERT_NE(D5.find_parameter("to_logits.0.weight"), nullptr);
  EXPECT_EQ(D5.find_parameter("to_logits.0.weight")->shape(), Shape({256, 256, 1, 1}));
  EXPECT_EQ(D5.find_parameter("to_logits.2.weight")->shape(), Shape({1, 256, 4, 4}));
  EXPECT_EQ(D5.find_parameter("to_logits.1.weight"), nullptr);
  EXPECT_EQ(D5.find_parameter("decoder1.layers.3.1.weight")->shape(), Shape({2, 32, 3, 3}));
}

TEST(Discriminator, KaimingNormalInitOnWeightsDefaultOnBiases) {
  Philox gen(11);
  Discriminator D(config(32, 1, 512, {32}), &gen);
  auto stats = [](const Tensor& t) {
    std::vector<double> v = t.to_vector();
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    for (double x : v) s += (x - m) * (x - m);
    return std::make_pair(m, std::sqrt(s / double(v.size())));
  };
  auto [m, s] = stats(*D.find_parameter("to_logits.1.weight"));  // fan_in 512 * 9
  EXPECT_NEAR(m, 0.0, 1e-3);
  EXPECT_NEAR(s, std::sqrt(2.0 / (512 * 9)), 0.01 * std::sqrt(2.0 / (512 * 9)));
  auto [m2, s2] = stats(*D.find_parameter("to_shape_disc_out.1.fn.fn.to_lin_kv.net.0.weight"));  // depthwise: fan_in 9
  (void)m2;
  EXPECT_NEAR(s2, std::sqrt(2.0 / 9), 0.2 * std::sqrt(2.0 / 9));
  std::vector<double> b = D.find_parameter("to_logits.1.bias")->to_vector();  // U(+-1/sqrt(4608))
  double bound = 1.0 / std::sqrt(512.0 * 9), mx = 0;
  for (double x : b) mx = std::max(mx, std::abs(x));
  EXPECT_LE(mx, bound);
  EXPECT_GT(mx, 0.9 * bound);
  std::vector<double> g = D.find_parameter("residual_layers.0.1.norm.g")->to_vector();
  EXPECT_EQ(g, std::vector<double>(1, 1.0));
}

TEST(Discriminator, ErrorsNameTheProblem) {
  EXPECT_ERROR(Discriminator(config(48, 3, 512, {})), "power of two");
  EXPECT_ERROR(Discriminator(config(32, 3, 512, {}, 3)), "output_size");
  EXPECT_ERROR(Discriminator(config(16, 3, 4, {})), "multiple of 8");
  auto D = tiny_d();
  EXPECT_ERROR(D->forward(zeros({1, 1, 16, 16}, DType::f64), false), "Discriminator: images must be (B, 3, 16, 16)");
  EXPECT_ERROR(D->forward_pair(zeros({2, 3, 16, 16}, DType::f64), zeros({1, 3, 16, 16}, DType::f64)),
               "fake images (2, 3, 16, 16) and real images (1, 3, 16, 16) differ in shape");
  EXPECT_ERROR(D->forward_pair(zeros({1, 3, 8, 8}, DType::f64), zeros({1, 3, 16, 16}, DType::f64)),
               "Discriminator: fake images must be (B, 3, 16, 16)");
}

// The one-batch pair (what a D step runs) against two calls: outputs, the aux loss, the
// gradient penalty through it, and the gradients of a loss using all of them (a second
// derivative included) w.r.t. both image batches and every parameter.
TEST(Discriminator, PairIsTwoCalls) {
  auto D = tiny_d();
  Tensor fake = rand64({2, 3, 16, 16}, 21, -1, 1).requires_grad_(true);
  Tensor real = rand64({2, 3, 16, 16}, 22, 0, 1).requires_grad_(true);
  std::vector<Tensor> inputs = {fake, real};
  std::vector<std::string> names;
  for (auto& [name, p] : D->named_parameters()) inputs.push_back(*p), names.push_back(name);
  names.insert(names.begin(), {"fake", "real"});
  auto loss_and_grads = [&](bool pair, std::vector<double>& values) {
    DiscOutput fo, ro;
    if (pair) {
      Discriminator::Pair both = D->forward_pair(fake, real);
      fo = both.fake, ro = both.real;
    } else {
      fo = D->forward(fake, false), ro = D->forward(real, true);
    }
    EXPECT_FALSE(fo.aux_loss.defined());
    Tensor gp = gradient_penalty(real, ro);
    values = {sum(mul(fo.logits, fo.logits)).item(), sum(ro.logits).item(), sum(fo.logits32).item(),
              sum(ro.logits32).item(), ro.aux_loss.item(), gp.item()};
    Tensor loss = add(add(hinge_loss(ro.logits, fo.logits), hinge_loss(ro.logits32, fo.logits32)),
                      add(ro.aux_loss, gp));
    return grad({loss}, inputs);
  };
  std::vector<double> pair_values, two_values;
  std::vector<Tensor> pair_grads = loss_and_grads(true, pair_values), two_grads = loss_and_grads(false, two_values);
  for (size_t i = 0; i < pair_values.size(); ++i) EXPECT_NEAR(pair_values[i], two_values[i], 1e-12) << "value " << i;
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(names[i]);
    ASSERT_TRUE(pair_grads[i].defined());
    EXPECT_CLOSE_TOL(pair_grads[i], two_grads[i], 1e-12, 1e-10);
  }
}

// Checkpointed attention blocks (as on CUDA) give the same outputs, penalty and gradients,
// a second derivative included, as blocks that keep their intermediates (as on the CPU).
TEST(Discriminator, CheckpointedAttentionIsTheSame) {
  auto D = tiny_d();
  Tensor real = rand64({2, 3, 16, 16}, 23, 0, 1).requires_grad_(true);
  std::vector<Tensor> inputs = {real};
  for (auto& [name, p] : D->named_parameters()) inputs.push_back(*p);
  auto values_and_grads = [&](disc::CheckpointAttention mode) {
    const disc::CheckpointAttentionScope scope(mode);
    DiscOutput o = D->forward(real, true);
    Tensor gp = gradient_penalty(real, o);
    Tensor loss = add(add(sum(o.logits), sum(o.logits32)), add(o.aux_loss, gp));
    std::vector<Tensor> r = grad({loss}, inputs);
    r.insert(r.begin(), {o.logits, o.logits32, gp});
    return r;
  };
  EXPECT_FALSE(disc::checkpoints_attention(Device::cpu));
  {  // `automatic` follows the backend's memory_bound, whichever device it serves
    Backend memory_bound_cpu = backend(Device::cpu);
    memory_bound_cpu.memory_bound = true;
    const Backend* before = has_backend(Device::cuda) ? &backend(Device::cuda) : nullptr;
    register_backend(Device::cuda, &memory_bound_cpu);
    EXPECT_TRUE(disc::checkpoints_attention(Device::cuda));
    register_backend(Device::cuda, before);
  }
  const std::vector<Tensor> kept = values_and_grads(disc::CheckpointAttention::never);
  const std::vector<Tensor> recomputed = values_and_grads(disc::CheckpointAttention::always);
  for (size_t i = 0; i < kept.size(); ++i) {
    SCOPED_TRACE(i < 3 ? "logits, logits32, penalty " + std::to_string(i) : "gradient " + std::to_string(i - 3));
    ASSERT_TRUE(recomputed[i].defined());
    EXPECT_CLOSE_TOL(recomputed[i], kept[i], 1e-12, 1e-10);
  }
}

// ---- LinearAttention against direct loops

// Both branches from the module's own projections (convs are tested elsewhere), by loops.
Tensor ref_attention_branches(const disc::LinearAttention& A, const Tensor& fmap) {
  const int64_t B = fmap.dim(0), X = fmap.dim(2), Y = fmap.dim(3), N = X * Y, h = A.heads, d = A.dim_head;
  const double scale = 1.0 / std::sqrt(double(d));
  NoGradGuard ng;
  std::vector<double> LQ = A.to_lin_q->forward(fmap).to_vector(), LKV = A.to_lin_kv->forward(fmap).to_vector();
  std::vector<double> Q = A.to_q->forward(fmap).to_vector(), KV = A.to_kv->forward(fmap).to_vector();
  const int64_t inner = h * d;
  std::vector<double> out(B * 2 * inner * N);
  auto at = [&](const std::vector<double>& t, int64_t chans, int64_t b, int64_t c, int64_t n) {
    return t[(b * chans + c) * N + n];
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hh = 0; hh < h; ++hh) {
      // linear: q softmax over features, k softmax over positions, out = q (k^T v), GELU.
      std::vector<double> q(N * d), k(N * d), v(N * d);
      for (int64_t n = 0; n < N; ++n) {
        double mx = -1e300, s = 0;
        for (int64_t c = 0; c < d; ++c) mx = std::max(mx, at(LQ, inner, b, hh * d + c, n));
        for (int64_t c = 0; c < d; ++c) s += std::exp(at(LQ, inner, b, hh * d + c, n) - mx);
        for (int64_t c = 0; c < d; ++c) q[n * d + c] = std::exp(at(LQ, inner, b, hh * d + c, n) - mx) / s * scale;
        for (int64_t c = 0; c < d; ++c) v[n * d + c] = at(LKV, 2 * inner, b, inner + hh * d + c, n);
      }
      for (int64_t c = 0; c < d; ++c) {
        double mx = -1e300, s = 0;
        for (int64_t n = 0; n < N; ++n) mx = std::max(mx, at(LKV, 2 * inner, b, hh * d + c, n));
        for (int64_t n = 0; n < N; ++n) s += std::exp(at(LKV, 2 * inner, b, hh * d + c, n) - mx);
        for (int64_t n = 0; n < N; ++n) k[n * d + c] = std::exp(at(LKV, 2 * inner, b, hh * d + c, n) - mx) / s;
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int64_t c = 0; c < d; ++c) {
            double ctx = 0;
            for (int64_t m = 0; m < N; ++m) ctx += k[m * d + c] * v[m * d + e];
            acc += q[n * d + c] * ctx;
          }
          out[(b * 2 * inner + hh * d + e) * N + n] = gelu_ref(acc);
        }
      // local: 3x3 neighbourhood in unfold order, zero-padded neighbours take part (logit 0).
      for (int64_t i = 0; i < X; ++i)
        for (int64_t j = 0; j < Y; ++j) {
          double sim[9], kv_v[9][256];
          for (int64_t t = 0; t < 9; ++t) {
            int64_t ii = i + t / 3 - 1, jj = j + t % 3 - 1;
            bool in = ii >= 0 && ii < X && jj >= 0 && jj < Y;
            sim[t] = 0;
            for (int64_t c = 0; c < d; ++c) {
              double kk = in ? at(KV, 2 * inner, b, hh * d + c, ii * Y + jj) : 0.0;
              kv_v[t][c] = in ? at(KV, 2 * inner, b, inner + hh * d + c, ii * Y + jj) : 0.0;
              sim[t] += at(Q, inner, b, hh * d + c, i * Y + j) * scale * kk;
            }
          }
          double mx = -1e300, s = 0;
          for (double x : sim) mx = std::max(mx, x);
          for (double x : sim) s += std::exp(x - mx);
          for (int64_t c = 0; c < d; ++c) {
            double acc = 0;
            for (int64_t t = 0; t < 9; ++t) acc += std::exp(sim[t] - mx) / s * kv_v[t][c];
            out[(b * 2 * inner + inner + hh * d + c) * N + i * Y + j] = acc;
          }
        }
    }
  return from_vector(out, {B, 2 * inner, X, Y}, DType::f64);
}

TEST(DiscAttention, ParameterNamesAndShapes) {
  disc::LinearAttention A(128);
  std::vector<std::pair<std::string, Shape>> want = {
      {"to_lin_q.weight", {512, 128, 1, 1}},       {"to_lin_kv.net.0.weight", {128, 1, 3, 3}},
      {"to_lin_kv.net.1.weight", {1024, 128, 1, 1}}, {"to_q.weight", {512, 128, 1, 1}},
      {"to_kv.weight", {1024, 128, 1, 1}},          {"to_out.weight", {128, 1024, 1, 1}},
      {"to_out.bias", {128}}};
  auto got = A.named_parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second->shape(), want[i].second) << want[i].first;
  }
}

TEST(DiscAttention, BranchesMatchLoops) {
  manual_seed(5);
  for (auto [heads, dim_head, X, Y] : {std::array<int64_t, 4>{2, 4, 4, 5}, std::array<int64_t, 4>{8, 64, 3, 3}}) {
    disc::LinearAttention A(3, dim_head, heads);
    A.to(DType::f64);
    Tensor x = rand64({2, 3, X, Y}, 7, -2, 2);
    Tensor ours = concat({A.linear_branch(x), A.local_branch(x)}, 1);
    EXPECT_CLOSE_TOL(ours, ref_attention_branches(A, x), 1e-12, 1e-10);
    Tensor y = A.forward(x);
    EXPECT_EQ(y.shape(), x.shape());
  }
}

TEST(DiscAttention, LocalBranchAtOneByOneSeesOnlyZeroPadding) {
  // A single position: 8 padded neighbours with logit 0 and v = 0, so out = v * e^s / (e^s + 8).
  manual_seed(9);
  disc::LinearAttention A(2, 4, 1);
  A.to(DType::f64);
  Tensor x = rand64({1, 2, 1, 1}, 3);
  std::vector<double> q = A.to_q->forward(x).to_vector(), kv = A.to_kv->forward(x).to_vector();
  double s = 0;
  for (int c = 0; c < 4; ++c) s += q[c] * kv[c] * 0.5;
  std::vector<double> want(4);
  for (int c = 0; c < 4; ++c) want[c] = kv[4 + c] * std::exp(s) / (std::exp(s) + 8.0);
  EXPECT_CLOSE_TOL(A.local_branch(x), from_vector(want, {1, 4, 1, 1}, DType::f64), 1e-14, 1e-12);
}

TEST(DiscAttention, GradcheckInputAndEveryParameter) {
  manual_seed(21);
  auto attention = std::make_shared<disc::LinearAttention>(3, 4, 2);
  disc::ResidualAttention R(std::make_shared<disc::PreNormAttention>(3, attention));
  R.to(DType::f64);
  auto params = R.named_parameters();
  V inputs{rand64({2, 3, 3, 4}, 4).requires_grad_(true)};
  for (auto& p : params) {
    // Move g, b away from 1, 0 so the norm's gain path is exercised generically.
    Tensor v = p.second->detach().clone();
    if (p.first.find("norm.") != std::string::npos) v = add(v, rand64(v.shape(), 8, -0.5, 0.5));
    inputs.push_back(v.requires_grad_(true));
  }
  auto fn = [&](const V& x) {
    ParamSwap swap;
    for (size_t i = 0; i < params.size(); ++i) swap.set(params[i].second, x[i + 1]);
    return R.forward(x[0]);
  };
  expect_every_input_used(fn, inputs);
  CheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(DiscAttention, GradgradcheckInputAndSomeParameters) {
  manual_seed(22);
  disc::PreNormAttention P(2, std::make_shared<disc::LinearAttention>(2, 2, 2));
  P.to(DType::f64);
  Tensor* wq = &P.fn->to_q->weight;
  Tensor* wkv = P.fn->to_lin_kv->net->find_parameter("0.weight");
  V inputs{rand64({1, 2, 3, 3}, 6).requires_grad_(true), wq->detach().clone().requires_grad_(true),
           wkv->detach().clone().requires_grad_(true)};
  auto fn = [&](const V& x) {
    ParamSwap swap;
    swap.set(wq, x[1]);
    swap.set(wkv, x[2]);
    return P.forward(x[0]);
  };
  expect_every_input_used(fn, inputs);
  CheckResult r = gradgradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

// ---- the whole discriminator

TEST(Discriminator, OutputShapesAndAux) {
  auto D = tiny_d();
  Tensor x = rand64({2, 3, 16, 16}, 1, 0, 1);
  DiscOutput o = D->forward(x, false);
  EXPECT_EQ(o.logits.shape(), Shape({2, 1}));
  EXPECT_EQ(o.logits32.shape(), Shape({2, 1, 1, 1}));
  EXPECT_FALSE(o.aux_loss.defined());
  DiscOutput a = D->forward(x, true);
  ASSERT_TRUE(a.aux_loss.defined());
  EXPECT_EQ(a.aux_loss.numel(), 1);
  EXPECT_CLOSE(a.logits, o.logits);
  EXPECT_GT(a.aux_loss.item(), 0.0);

  manual_seed(4);
  Discriminator D5(config(32, 1, 16, {}, 5));
  DiscOutput o5 = D5.forward(rand({3, 1, 32, 32}), true);
  EXPECT_EQ(o5.logits.shape(), Shape({3, 25}));  // the 5x5 map of the 8x8 features, flattened
  EXPECT_EQ(o5.logits32.shape(), Shape({3, 1, 1, 1}));
  EXPECT_TRUE(std::isfinite(o5.aux_loss.item()));
}

TEST(Discriminator, GradcheckTinyInputAndParameterSubsets) {
  auto D = tiny_d();
  Tensor x = rand64({1, 3, 16, 16}, 2, 0, 1);
  const char* names[] = {"residual_layers.0.1.fn.to_q.weight", "residual_layers.0.1.norm.b",
                         "to_shape_disc_out.1.fn.fn.to_lin_kv.net.1.weight", "to_shape_disc_out.2.branches.1.2.bias",
                         "decoder1.layers.2.1.weight"};
  std::vector<Tensor*> ps;
  std::vector<Subset> subs{make_subset(x, 16, 1)};
  for (const char* n : names) {
    ps.push_back(D->find_parameter(n));
    ASSERT_NE(ps.back(), nullptr) << n;
    subs.push_back(make_subset(*ps.back(), 3, ps.size() + 10));
  }
  V inputs;
  for (auto& s : subs) inputs.push_back(s.input());
  auto fn = [&](const V& in) {
    ParamSwap swap;
    for (size_t i = 0; i < ps.size(); ++i) swap.set(ps[i], subs[i + 1].at(in[i + 1]));
    DiscOutput o = D->forward(subs[0].at(in[0]), true);
    return concat({flat(o.logits), flat(o.logits32), flat(o.aux_loss)}, 0);
  };
  expect_every_input_used(fn, inputs);
  CheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

// The gradient penalty's path: images -> sum(logits) + sum(logits32), differentiated twice.
TEST(GradientPenalty, GradgradcheckOfTheLogitsPath) {
  auto D = tiny_d();
  Tensor x = rand64({1, 3, 16, 16}, 5, 0, 1);
  Tensor* w = D->find_parameter("to_shape_disc_out.3.fn.fn.to_kv.weight");
  Subset sx = make_subset(x, 12, 2), sw = make_subset(*w, 3, 3);
  auto fn = [&](const V& in) {
    ParamSwap swap;
    swap.set(w, sw.at(in[1]));
    DiscOutput o = D->forward(sx.at(in[0]), false);
    return add(sum(o.logits), sum(o.logits32));
  };
  expect_every_input_used(fn, {sx.input(), sw.input()});
  CheckResult r = gradgradcheck(fn, {sx.input(), sw.input()});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(GradientPenalty, ValueMatchesItsDefinition) {
  auto D = tiny_d();
  Tensor x = rand64({2, 3, 16, 16}, 6, 0, 1).requires_grad_(true);
  DiscOutput o = D->forward(x, false);
  Tensor gp = gradient_penalty(x, o);
  // d(sum logits + sum logits32)/dx by backward, then 10 * mean_b (||g_b|| - 1)^2 by hand.
  Tensor g = grad({add(sum(o.logits), sum(o.logits32))}, {x}, {}, true)[0];
  std::vector<double> gv = g.to_vector();
  double want = 0;
  for (int b = 0; b < 2; ++b) {
    double s = 0;
    for (int i = 0; i < 768; ++i) s += gv[b * 768 + i] * gv[b * 768 + i];
    want += (std::sqrt(s) - 1) * (std::sqrt(s) - 1);
  }
  EXPECT_NEAR(gp.item(), 10 * want / 2, 1e-12 * std::max(1.0, want));
  EXPECT_TRUE(gp.requires_grad());
  // The fresh-forward form agrees, and works on images that do not require grad.
  EXPECT_NEAR(gradient_penalty(*D, x.detach()).item(), gp.item(), 1e-12 * std::max(1.0, want));
}

TEST(GradientPenalty, GradcheckWithRespectToParameters) {
  auto D = tiny_d();
  Tensor x = rand64({2, 3, 16, 16}, 7, 0, 1);
  const char* names[] = {"residual_layers.0.0.branches.0.1.weight", "residual_layers.0.1.fn.to_lin_kv.net.0.weight",
                         "to_logits.3.weight", "to_shape_disc_out.1.fn.norm.g", "to_shape_disc_out.0.weight"};
  std::vector<Tensor*> ps;
  std::vector<Subset> subs;
  for (const char* n : names) {
    ps.push_back(D->find_parameter(n));
    ASSERT_NE(ps.back(), nullptr) << n;
    subs.push_back(make_subset(*ps.back(), 3, ps.size() + 20));
  }
  V inputs;
  for (auto& s : subs) inputs.push_back(s.input());
  auto fn = [&](const V& in) {
    ParamSwap swap;
    for (size_t i = 0; i < ps.size(); ++i) swap.set(ps[i], subs[i].at(in[i]));
    return gradient_penalty(*D, x);
  };
  expect_every_input_used(fn, inputs);
  CheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

// ---- losses

TEST(GanLosses, HingeValues) {
  Tensor real = from_vector({-2.0, -0.5, 0.5, 3.0}, {4, 1}, DType::f64);
  Tensor fake = from_vector({2.0, 0.5, -0.5, -1.0}, {4, 1}, DType::f64);
  // relu(1 + real) = {0, 0.5, 1.5, 4}; relu(1 - fake) = {0, 0.5, 1.5, 2}.
  EXPECT_NEAR(hinge_loss(real, fake).item(), 6.0 / 4 + 4.0 / 4, 1e-15);
  EXPECT_NEAR(pooled_hinge_loss(real, fake).item(), (6.0 + 4.0) / 8, 1e-15);
  // The pooled divisor counts batch rows, not elements (the official hinge_loss_bis).
  Tensor r25 = full({2, 25}, 1.0, DType::f64), f25 = full({2, 25}, 0.0, DType::f64);
  EXPECT_NEAR(pooled_hinge_loss(r25, f25).item(), (50 * 2.0 + 50 * 1.0) / 4, 1e-12);
  EXPECT_NEAR(hinge(HingeKind::mean, r25, f25).item(), 3.0, 1e-15);
  EXPECT_ERROR(hinge_loss(real, r25), "hinge_loss");
  DiscOutput o{from_vector({1.0, 2.0}, {2, 1}, DType::f64), from_vector({-1.0, 5.0}, {2, 1, 1, 1}, DType::f64), {}};
  EXPECT_NEAR(generator_loss(o).item(), 1.5 + 2.0, 1e-15);
}

TEST(GanLosses, DiscriminatorLossComposesAndBackpropagates) {
  auto D = tiny_d();
  Tensor real = rand64({2, 3, 16, 16}, 8, 0, 1), fake = rand64({2, 3, 16, 16}, 9, -1, 1);
  DiscLoss l = discriminator_loss(*D, real, fake, /*apply_gp=*/true);
  DiscOutput ro = D->forward(real, true), fo = D->forward(fake, false);
  EXPECT_NEAR(l.divergence.item(), hinge_loss(ro.logits, fo.logits).item(), 1e-13);
  EXPECT_NEAR(l.divergence32.item(), hinge_loss(ro.logits32, fo.logits32).item(), 1e-13);
  EXPECT_NEAR(l.aux.item(), ro.aux_loss.item(), 1e-13);
  EXPECT_NEAR(l.gp.item(), gradient_penalty(*D, real).item(), 1e-12);
  EXPECT_NEAR(l.total.item(), l.without_gp.item() + l.gp.item(), 1e-12);
  EXPECT_NEAR(l.without_gp.item(), l.divergence.item() + l.divergence32.item() + l.aux.item(), 1e-12);
  // The penalty kept the forward graph: the whole loss backpropagates into every parameter.
  backward(l.total);
  for (auto& [name, p] : D->named_parameters()) {
    ASSERT_TRUE(p->grad().defined()) << name;
    p->zero_grad();
  }
  // With the penalty the fakes' forward is recorded after it, so the backward frees it first.
  Tensor penalized = real.detach().requires_grad_(true);
  DStepForward f = d_forward(*D, fake, penalized, penalized, 10.0);
  EXPECT_GT(f.fake.logits.grad_fn()->seq, f.gp.grad_fn()->seq);
  EXPECT_GT(f.gp.grad_fn()->seq, f.real.logits.grad_fn()->seq);
  DiscLoss l2 = discriminator_loss(*D, real, fake, false, HingeKind::pooled);
  EXPECT_FALSE(l2.gp.defined());
  EXPECT_NEAR(l2.total.item(), pooled_hinge_loss(ro.logits, fo.logits).item() +
                                   pooled_hinge_loss(ro.logits32, fo.logits32).item() + ro.aux_loss.item(), 1e-12);
}

TEST(Discriminator, Float32AgreesWithFloat64) {
  auto D = tiny_d();
  Tensor x = rand64({2, 3, 16, 16}, 10, 0, 1);
  DiscOutput o64 = D->forward(x, true);
  D->to(DType::f32);
  DiscOutput o32 = D->forward(x.to(DType::f32), true);
  EXPECT_CLOSE_TOL(o32.logits.to(DType::f64), o64.logits, 1e-5, 1e-4);
  EXPECT_CLOSE_TOL(o32.logits32.to(DType::f64), o64.logits32, 1e-5, 1e-4);
  EXPECT_CLOSE_TOL(o32.aux_loss.to(DType::f64), o64.aux_loss, 1e-5, 1e-4);
}

}  // namespace
}  // namespace fpa::test
