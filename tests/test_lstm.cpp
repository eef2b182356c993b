// test_lstm.cpp: nn::LSTM against a hand-written loop of PyTorch's LSTM equations (1 and 2
// layers, given and zero initial states), its parameter names, shapes and init bound, and
// gradcheck + gradgradcheck in float64 over the input, the initial states and every weight.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/philox.h"
#include "nn/lstm.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// PyTorch's LSTM by plain loops in double: returns output (T, B, H) followed by h_n, c_n.
std::vector<std::vector<double>> lstm_loop(const nn::LSTM& m, const Tensor& x, const Tensor& h0, const Tensor& c0) {
  const int64_t T = x.dim(0), B = x.dim(1), H = m.hidden_size, Lr = m.num_layers;
  std::vector<double> in = x.to_vector();
  int64_t in_size = x.dim(2);
  std::vector<double> hs0 = h0.defined() ? h0.to_vector() : std::vector<double>(Lr * B * H, 0.0);
  std::vector<double> cs0 = c0.defined() ? c0.to_vector() : std::vector<double>(Lr * B * H, 0.0);
  std::vector<double> hn(Lr * B * H), cn(Lr * B * H);
  for (int64_t l = 0; l < Lr; ++l) {
    std::vector<double> wih = m.weight_ih[l].to_vector(), whh = m.weight_hh[l].to_vector();
    std::vector<double> bih = m.bias_ih[l].to_vector(), bhh = m.bias_hh[l].to_vector();
    std::vector<double> h(hs0.begin() + l * B * H, hs0.begin() + (l + 1) * B * H);
    std::vector<double> c(cs0.begin() + l * B * H, cs0.begin() + (l + 1) * B * H);
    std::vector<double> out(T * B * H);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> hn_t(B * H), cn_t(B * H);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < H; ++j) {
          double g[4];
          for (int q = 0; q < 4; ++q) {
            int64_t row = q * H + j;
            double s = bih[row] + bhh[row];
            for (int64_t i = 0; i < in_size; ++i) s += wih[row * in_size + i] * in[(t * B + b) * in_size + i];
            for (int64_t i = 0; i < H; ++i) s += whh[row * H + i] * h[b * H + i];
            g[q] = s;
          }
          double cc = sigm(g[1]) * c[b * H + j] + sigm(g[0]) * std::tanh(g[2]);
          cn_t[b * H + j] = cc;
          hn_t[b * H + j] = sigm(g[3]) * std::tanh(cc);
        }
      h = hn_t, c = cn_t;
      for (int64_t i = 0; i < B * H; ++i) out[t * B * H + i] = h[i];
    }
    std::copy(h.begin(), h.end(), hn.begin() + l * B * H);
    std::copy(c.begin(), c.end(), cn.begin() + l * B * H);
    in = out, in_size = H;
  }
  return {in, hn, cn};
}

TEST(Lstm, NamesShapesAndInitBound) {
  nn::LSTM m(5, 4, 2);
  auto named = m.named_parameters();
  std::vector<std::string> names = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                    "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"};
  std::vector<Shape> shapes = {{16, 5}, {16, 4}, {16}, {16}, {16, 4}, {16, 4}, {16}, {16}};
  ASSERT_EQ(named.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(named[i].first, names[i]);
    EXPECT_EQ(named[i].second->shape(), shapes[i]) << names[i];
    EXPECT_TRUE(named[i].second->requires_grad());
    for (double v : named[i].second->to_vector()) EXPECT_LE(std::abs(v), 0.5) << names[i];  // 1/sqrt(4)
  }
}

TEST(Lstm, ForwardMatchesHandLoop) {
  for (int64_t layers : {1, 2}) {
    nn::LSTM m(3, 4, layers);
    m.to(DType::f64);
    Tensor x = randn({5, 2, 3}, DType::f64);
    Tensor h0 = randn({layers, 2, 4}, DType::f64), c0 = randn({layers, 2, 4}, DType::f64);
    for (bool given : {true, false}) {
      nn::LSTMOutput r = given ? m.forward(x, h0, c0) : m.forward(x);
      auto ref = lstm_loop(m, x, given ? h0 : Tensor(), given ? c0 : Tensor());
      EXPECT_CLOSE_TOL(r.output, from_vector(ref[0], {5, 2, 4}, DType::f64), 1e-12, 1e-12);
      EXPECT_CLOSE_TOL(r.h_n, from_vector(ref[1], {layers, 2, 4}, DType::f64), 1e-12, 1e-12);
      EXPECT_CLOSE_TOL(r.c_n, from_vector(ref[2], {layers, 2, 4}, DType::f64), 1e-12, 1e-12);
    }
    // float32 agrees with the double loop to float precision.
    nn::LSTM m32(3, 4, layers);
    nn::LSTMOutput r32 = m32.forward(x.to(DType::f32), h0.to(DType::f32), c0.to(DType::f32));
    m32.to(DType::f64);
    auto ref = lstm_loop(m32, x, h0, c0);
    EXPECT_CLOSE_TOL(r32.output.to(DType::f64), from_vector(ref[0], {5, 2, 4}, DType::f64), 1e-5, 1e-4);
  }
}

TEST(Lstm, RejectsBadShapes) {
  nn::LSTM m(3, 4, 1);
  EXPECT_ERROR(m.forward(zeros({5, 2, 2})), "LSTM: expects input");
  EXPECT_ERROR(m.forward(zeros({5, 2, 3}), zeros({1, 3, 4}), zeros({1, 2, 4})), "initial state");
}

// (x, h0, c0, params...) -> concat(output, h_n, c_n), the module's parameters bound to the inputs.
std::function<Tensor(const V&)> lstm_fn(nn::LSTM& m) {
  return [&m](const V& in) {
    auto params = m.parameters();
    for (size_t i = 0; i < params.size(); ++i) *params[i] = in[3 + i];
    nn::LSTMOutput r = m.forward(in[0], in[1], in[2]);
    return concat({reshape(r.output, {-1}), reshape(r.h_n, {-1}), reshape(r.c_n, {-1})}, 0);
  };
}

V lstm_inputs(nn::LSTM& m, int64_t T, int64_t B, uint64_t seed) {
  Philox gen(seed);
  V in = {randn({T, B, m.input_size}, DType::f64, Device::cpu, &gen),
          randn({m.num_layers, B, m.hidden_size}, DType::f64, Device::cpu, &gen),
          randn({m.num_layers, B, m.hidden_size}, DType::f64, Device::cpu, &gen)};
  for (Tensor* p : m.parameters()) in.push_back(p->to(DType::f64).detach());
  for (Tensor& t : in) t.requires_grad_();
  return in;
}

TEST(Lstm, Gradcheck) {
  nn::LSTM m(2, 3, 2);
  V in = lstm_inputs(m, 3, 2, 11);
  CheckResult r = gradcheck(lstm_fn(m), in);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Lstm, Gradgradcheck) {
  nn::LSTM m(2, 2, 2);
  V in = lstm_inputs(m, 2, 2, 12);
  CheckResult r = gradgradcheck(lstm_fn(m), in);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
}  // namespace fpa::test
