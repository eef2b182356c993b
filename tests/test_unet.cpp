// test_unet.cpp: the U-Net refiner (fpa/unet.h) and the FPA U-Net generator
// (fpa/unet_painter.h): every parameter name and shape against the reference list
// (../shared/spec/params-fpa-unet-rgb64-generator.txt, skipped when absent) and the total
// 14,423,366; the attention blocks against direct float64 loops; gradcheck and gradgradcheck
// of both attentions and gradcheck of a tiny whole U-Net (w.r.t. input and parameters);
// frozen base, stop_grad_unet and unet_tanh behaviour.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "autograd/philox.h"
#include "fpa/unet.h"
#include "fpa/unet_painter.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;
const char* kParamsFile = "../shared/spec/params-fpa-unet-rgb64-generator.txt";

// "name (d0, d1, ...)" lines of the reference list, without the G.mod_dict.* aliases.
using NameShapes = std::vector<std::pair<std::string, std::string>>;
NameShapes read_reference_params(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  NameShapes out;
  std::string line;
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string name = line.substr(0, sp), shape = line.substr(sp + 1);
    if (name.rfind("G.mod_dict.", 0) == 0 || name.rfind(prefix, 0) != 0) continue;
    out.emplace_back(name, shape);
  }
  return out;
}

// PyTorch's shape spelling: "(64,)", "(64, 3, 7, 7)".
std::string torch_shape(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < s.ndim; ++i) os << (i ? ", " : "") << s[i];
  if (s.ndim == 1) os << ",";
  os << ")";
  return os.str();
}

void expect_names_match(nn::Module& m, const std::string& prefix, const std::string& ref_prefix) {
  std::ifstream probe(kParamsFile);
  if (!probe) GTEST_SKIP() << kParamsFile << " not found";
  auto ref = read_reference_params(kParamsFile, ref_prefix);
  auto ours = m.named_parameters(prefix);
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(ours[i].first, ref[i].first) << "parameter " << i;
    EXPECT_EQ(torch_shape(ours[i].second->shape()), ref[i].second) << ref[i].first;
  }
}

// Every parameter redrawn from N(0, scale^2) in float64 (so norms' gains and biases matter).
void randomise(nn::Module& m, uint64_t seed, double scale = 0.5) {
  Philox gen(seed);
  for (Tensor* p : m.parameters()) *p = randn(p->shape(), DType::f64, Device::cpu, &gen, 0.0, scale).requires_grad_();
}

// fn(inputs) with inputs[0] the module input and inputs[1..] standing in for the named parameters.
std::function<Tensor(const V&)> with_params(nn::Module& m, const std::vector<std::string>& names,
                                            std::function<Tensor(const Tensor&)> f) {
  std::vector<Tensor*> ps;
  for (const auto& n : names) {
    ps.push_back(m.find_parameter(n));
    EXPECT_NE(ps.back(), nullptr) << n;
  }
  return [ps, f](const V& x) {
    for (size_t i = 0; i < ps.size(); ++i) *ps[i] = x[i + 1];
    return f(x[0]);
  };
}

V inputs_for(nn::Module& m, const Shape& x_shape, const std::vector<std::string>& names, uint64_t seed) {
  Philox gen(seed);
  V xs = {randn(x_shape, DType::f64, Device::cpu, &gen).requires_grad_()};
  for (const auto& n : names) xs.push_back(m.find_parameter(n)->detach().clone().requires_grad_());
  return xs;
}

// ---- direct loops (float64) for the attention blocks, one sample at a time

using Mat = std::vector<std::vector<double>>;  // [row][col]

Mat conv1x1(const Tensor& w, const Tensor& b, const Mat& x) {  // w (O, C, 1, 1), x [C][N]
  std::vector<double> W = w.to_vector(), Bv = b.defined() ? b.to_vector() : std::vector<double>();
  int64_t O = w.dim(0), C = w.dim(1), N = x[0].size();
  Mat y(O, std::vector<double>(N, 0.0));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t n = 0; n < N; ++n) {
      double s = Bv.empty() ? 0.0 : Bv[o];
      for (int64_t c = 0; c < C; ++c) s += W[o * C + c] * x[c][n];
      y[o][n] = s;
    }
  return y;
}

Mat sample(const Tensor& x, int64_t b) {  // (B, C, H, W) -> [C][H*W]
  std::vector<double> v = x.to_vector();
  int64_t C = x.dim(1), N = x.dim(2) * x.dim(3);
  Mat m(C, std::vector<double>(N));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t n = 0; n < N; ++n) m[c][n] = v[(b * C + c) * N + n];
  return m;
}

void softmax_inplace(std::vector<double*> xs) {
  double mx = -1e300, s = 0;
  for (double* p : xs) mx = std::max(mx, *p);
  for (double* p : xs) s += (*p = std::exp(*p - mx));
  for (double* p : xs) *p /= s;
}

Mat layer_norm(const Mat& x, const Tensor& g, const Tensor& b) {
  std::vector<double> G = g.to_vector(), Bv = b.to_vector();
  Mat y = x;
  for (size_t n = 0; n < x[0].size(); ++n) {
    double mu = 0, var = 0;
    for (size_t c = 0; c < x.size(); ++c) mu += x[c][n] / x.size();
    for (size_t c = 0; c < x.size(); ++c) var += (x[c][n] - mu) * (x[c][n] - mu) / x.size();
    for (size_t c = 0; c < x.size(); ++c) y[c][n] = (x[c][n] - mu) / std::sqrt(var + 1e-5) * G[c] + Bv[c];
  }
  return y;
}

Mat ref_attention(const unet::LinearAttention* la, const unet::Attention* fa, const Mat& x) {
  const nn::Conv2d* to_qkv = la ? la->to_qkv : fa->to_qkv;
  int64_t heads = la ? la->heads : fa->heads, D = la ? la->dim_head : fa->dim_head, hid = heads * D;
  int64_t N = x[0].size();
  double scale = 1.0 / std::sqrt(double(D));
  Mat qkv = conv1x1(to_qkv->weight, Tensor(), x);
  Mat out(hid, std::vector<double>(N, 0.0));
  for (int64_t h = 0; h < heads; ++h) {
    auto q = [&](int64_t d, int64_t n) -> double& { return qkv[h * D + d][n]; };
    auto k = [&](int64_t d, int64_t n) -> double& { return qkv[hid + h * D + d][n]; };
    auto v = [&](int64_t d, int64_t n) -> double& { return qkv[2 * hid + h * D + d][n]; };
    if (la) {
      for (int64_t n = 0; n < N; ++n) {
        std::vector<double*> col;
        for (int64_t d = 0; d < D; ++d) col.push_back(&q(d, n));
        softmax_inplace(col);
      }
      for (int64_t d = 0; d < D; ++d) {
        std::vector<double*> row;
        for (int64_t n = 0; n < N; ++n) row.push_back(&k(d, n));
        softmax_inplace(row);
      }
      for (int64_t e = 0; e < D; ++e)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t d = 0; d < D; ++d) {
            double context = 0;
            for (int64_t m = 0; m < N; ++m) context += k(d, m) * v(e, m);
            out[h * D + e][n] += context * q(d, n) * scale;
          }
    } else {
      for (int64_t i = 0; i < N; ++i) {
        std::vector<double> sim(N, 0.0);
        std::vector<double*> ptrs;
        for (int64_t j = 0; j < N; ++j) {
          for (int64_t d = 0; d < D; ++d) sim[j] += q(d, i) * scale * k(d, j);
          ptrs.push_back(&sim[j]);
        }
        softmax_inplace(ptrs);
        for (int64_t d = 0; d < D; ++d)
          for (int64_t j = 0; j < N; ++j) out[h * D + d][i] += sim[j] * v(d, j);
      }
    }
  }
  if (la) return layer_norm(conv1x1(la->to_out_conv->weight, la->to_out_conv->bias, out),
                            la->to_out_norm->g, la->to_out_norm->b);
  return conv1x1(fa->to_out->weight, fa->to_out->bias, out);
}

void expect_attention_matches_loops(nn::Module& m, const unet::LinearAttention* la, const unet::Attention* fa,
                                    std::function<Tensor(const Tensor&)> f) {
  Philox gen(3);
  Tensor x = randn({2, 5, 3, 2}, DType::f64, Device::cpu, &gen);
  Tensor y = f(x);
  for (int64_t b = 0; b < 2; ++b) {
    Mat ref = ref_attention(la, fa, sample(x, b)), got = sample(y, b);
    for (size_t c = 0; c < ref.size(); ++c)
      for (size_t n = 0; n < ref[c].size(); ++n) EXPECT_NEAR(got[c][n], ref[c][n], 1e-12) << b << " " << c << " " << n;
  }
}

TEST(UNet, LinearAttentionMatchesLoops) {
  unet::LinearAttention la(5, 2, 3);
  randomise(la, 1);
  expect_attention_matches_loops(la, &la, nullptr, [&](const Tensor& x) { return la.forward(x); });
}

TEST(UNet, AttentionMatchesLoops) {
  unet::Attention fa(5, 2, 3);
  randomise(fa, 2);
  expect_attention_matches_loops(fa, nullptr, &fa, [&](const Tensor& x) { return fa.forward(x); });
}

TEST(UNet, LinearAttentionGradcheck) {
  unet::LinearAttention la(3, 2, 3);
  randomise(la, 4);
  std::vector<std::string> names = {"to_qkv.weight", "to_out.0.weight", "to_out.0.bias", "to_out.1.g", "to_out.1.b"};
  auto fn = with_params(la, names, [&](const Tensor& x) { return la.forward(x); });
  V xs = inputs_for(la, {2, 3, 2, 2}, names, 5);
  CheckResult r = gradcheck(fn, xs);
  EXPECT_TRUE(r.ok) << r.message;
  r = gradgradcheck(fn, xs);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(UNet, AttentionGradcheck) {
  unet::Attention fa(3, 2, 3);
  randomise(fa, 6);
  std::vector<std::string> names = {"to_qkv.weight", "to_out.weight", "to_out.bias"};
  auto fn = with_params(fa, names, [&](const Tensor& x) { return fa.forward(x); });
  V xs = inputs_for(fa, {2, 3, 2, 2}, names, 7);
  CheckResult r = gradcheck(fn, xs);
  EXPECT_TRUE(r.ok) << r.message;
  r = gradgradcheck(fn, xs);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(UNet, TinyUNetShapesAndGradcheck) {
  UNet net(8, {1, 2, 4}, 1);
  net.to(DType::f64);
  // A few parameters from every part: stem, a down attention's LayerNorm, the middle
  // attention, a transposed-conv upsample, a GroupNorm of the last block, the head.
  std::vector<std::string> names = {"init_conv.bias", "downs.1.2.fn.fn.to_out.1.g", "downs.0.3.bias",
                                    "mid_attn.fn.fn.to_out.bias", "ups.0.3.bias",
                                    "final_res_block.block1.norm.weight", "final_conv.weight"};
  auto fn = with_params(net, names, [&](const Tensor& x) { return net.forward(x); });
  V xs = inputs_for(net, {2, 1, 8, 8}, names, 8);
  EXPECT_EQ(fn(xs).shape(), Shape({2, 1, 8, 8}));
  CheckResult r = gradcheck(fn, xs);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(UNet, NamesAndShapesAtRgb64) {
  UNet net(64, {1, 2, 4}, 3);
  expect_names_match(net, "G.u_net.", "G.u_net.");
}

// ---- UNetPainter

GeneratorConfig tiny_unet_config() {
  GeneratorConfig c;
  c.model = "unet";
  c.image_size = 16, c.channels = 1, c.steps = 4, c.latent_dim = 8, c.hidden = 16;
  c.mini_latent = 2, c.mini_input = 8, c.unet_dim = 8;
  return c;
}

// Copies every parameter of `from` into `to` (same architecture), keeping to's requires_grad.
void copy_params(nn::Module& from, nn::Module& to) {
  auto a = from.named_parameters(), b = to.named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    bool rg = b[i].second->requires_grad();
    *b[i].second = a[i].second->detach().clone().requires_grad_(rg);
  }
}

// Runs sum(G(z) * w) backward; returns whether each parameter got a gradient, by name.
std::map<std::string, bool> grads_reached(UNetPainter& G, const Tensor& z) {
  for (Tensor* p : G.parameters()) p->zero_grad();
  Tensor y = G.forward(z);
  Philox gen(11);
  backward(sum(mul(y, randn(y.shape(), y.dtype(), Device::cpu, &gen))));
  std::map<std::string, bool> got;
  for (auto& p : G.named_parameters()) got[p.first] = p.second->grad().defined();
  return got;
}

bool is_unet(const std::string& name) { return name.rfind("u_net.", 0) == 0; }

TEST(UNetPainter, NamesShapesAndTotalAtRgb64) {
  GeneratorConfig c;  // the rgb64 preset's generator: image 64, channels 3, T 64, L 512, H 1024
  c.model = "unet";
  ASSERT_EQ(c.image_size, 64);
  ASSERT_EQ(c.channels, 3);
  ASSERT_EQ(c.steps, 64);
  ASSERT_EQ(c.latent_dim, 512);
  ASSERT_EQ(c.hidden, 1024);
  UNetPainter G(c);
  EXPECT_EQ(G.parameter_count(), 14423366);
  int64_t base = 0;
  for (Tensor* p : G.base_parameters()) base += p->numel();
  EXPECT_EQ(base + G.u_net->parameter_count(), 14423366);
  expect_names_match(G, "G.", "G.");
}

TEST(UNetPainter, ComposesPainterUNetAndTanh) {
  for (bool unet_tanh : {false, true}) {
    GeneratorConfig c = tiny_unet_config();
    c.unet_tanh = unet_tanh;
    UNetPainter G(c);
    G.to(DType::f64);
    Philox gen(9);
    Tensor z = randn({2, 8}, DType::f64, Device::cpu, &gen);
    Tensor y = G.forward(z);
    EXPECT_EQ(y.shape(), Shape({2, 1, 16, 16}));
    Tensor w = G.paint(z);
    EXPECT_CLOSE(y, tanh(G.u_net->forward(unet_tanh ? tanh(w) : w)));
    if (unet_tanh) {
      EXPECT_FALSE(allclose(y, tanh(G.u_net->forward(w)), 1e-9, 0).ok) << "unet_tanh had no effect";
    }
  }
}

TEST(UNetPainter, FrozenBaseGetsNoGradients) {
  GeneratorConfig c = tiny_unet_config();
  c.frozen_base = true;
  UNetPainter G(c);
  Tensor z = randn({2, 8});
  for (auto& p : G.named_parameters()) EXPECT_EQ(p.second->requires_grad(), is_unet(p.first)) << p.first;
  EXPECT_EQ(G.base_parameters().size() + G.unet_parameters().size(), G.parameters().size());
  for (auto& [name, got] : grads_reached(G, z)) EXPECT_EQ(got, is_unet(name)) << name;

  G.set_base_requires_grad(true);  // unfrozen: every parameter trains
  for (auto& [name, got] : grads_reached(G, z)) EXPECT_TRUE(got) << name;
}

TEST(UNetPainter, StopGradKeepsValuesAndCutsThePainter) {
  GeneratorConfig c = tiny_unet_config();
  c.frozen_base = false;
  UNetPainter G(c);
  c.stop_grad_unet = true;
  UNetPainter S(c);
  copy_params(G, S);
  Tensor z = randn({2, 8});
  for (auto& [name, got] : grads_reached(G, z)) EXPECT_TRUE(got) << name;
  for (auto& [name, got] : grads_reached(S, z)) EXPECT_EQ(got, is_unet(name)) << name;
  EXPECT_CLOSE(S.forward(z), G.forward(z));
}

}  // namespace
}  // namespace fpa::test
