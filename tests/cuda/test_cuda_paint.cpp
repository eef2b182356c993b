// test_cuda_paint.cpp: the fused painting primitives (paint_forward, paint_backward) on CUDA
// against the CPU on the same inputs, float32 and float64: every rule x start matrix or not x
// rate per matrix or per row x front end (key softmax, rate sigmoid) on or off; hebb without
// rates; backward without dbeta / dw0; S from 1 to 100 (one tile and one warp to several row
// groups per warp, W / G in registers or in a buffer), T from 1 to 300 (every way of cutting
// the checkpoint chunks; T 300 puts the states and, in float64, the staged inputs in global
// memory), several N; the paper's size and a big N behind large_cases(). Then the painter op on
// CUDA (fused) against its composed twin on CUDA, forward and gradients.
#include <string>

#include "autograd/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

struct PaintCase {
  PaintRule rule;
  int64_t T, N, S;
  bool per_row_rate, with_w0, front_end;
  bool want_dbeta = true, want_dw0 = true;  // backward outputs asked for (with beta / w0)
};

const char* rule_name(PaintRule r) { return r == PaintRule::delta ? "delta" : r == PaintRule::hebb ? "hebb" : "oja"; }

std::string paint_label(const char* what, const PaintCase& c, DType t) {
  return std::string(what) + " " + dtype_label(t) + " " + rule_name(c.rule) + " T " + std::to_string(c.T) + " N " +
         std::to_string(c.N) + " S " + std::to_string(c.S) + (c.per_row_rate ? " rate per row" : "") +
         (c.with_w0 ? " w0" : "") + (c.front_end ? " front end" : "") + (c.want_dbeta ? "" : " no dbeta") +
         (c.want_dw0 ? "" : " no dw0");
}

PaintGeom geometry(const PaintCase& c) {
  const int64_t rate_dim = c.per_row_rate ? c.S : 1;
  return {c.rule, c.T, c.N, c.S, rate_dim, c.front_end, c.front_end};
}

// The CPU works in double whatever the data type and rounds once; the CUDA kernels work in the
// data type. float32: each step adds a few ulp of its terms, and the delta rule contracts the
// errors of earlier steps, so the GPU stays within about 1e-6 of max|W| at T = 64 (the float
// result differs from the exact one by about that much on either device); 1e-5 (80 ulp) of the
// largest element, plus 1e-5 relative, leaves room for sums of S terms. float64: the same
// arithmetic, summed in another order, agrees to a few hundred ulp after 300 steps.
Tolerance paint_tolerance(DType t) {
  return t == DType::f32 ? Tolerance{1e-5, 1e-5, true} : Tolerance{1e-12, 1e-12, true};
}

// Inputs as the rule sees them, or raw when the front end is on: raw keys and rates any real
// numbers (softmax, sigmoid); otherwise keys in [0, 2/S) (about a simplex: the delta rule
// stays stable) and rates in [0.1, 0.9).
struct PaintInputs {
  Buffers k, v, beta, w0;  // (T, N, S), (T, N, S), (T, N, rate_dim) or none, (N, S, S) or none
};
PaintInputs paint_inputs(const PaintCase& c, DType t) {
  const PaintGeom g = geometry(c);
  const Shape seq = {c.T, c.N, c.S};
  const uint64_t seed = uint64_t(c.T * 1000 + c.N * 100 + c.S);
  PaintInputs in;
  in.k = c.front_end ? uniform(seq, t, seed + 1, -2, 2) : uniform(seq, t, seed + 1, 0, 2.0 / double(c.S));
  in.v = uniform(seq, t, seed + 2);
  if (c.rule != PaintRule::hebb)
    in.beta = c.front_end ? uniform({c.T, c.N, g.rate_dim}, t, seed + 3, -2, 2)
                          : uniform({c.T, c.N, g.rate_dim}, t, seed + 3, 0.1, 0.9);
  if (c.with_w0) in.w0 = uniform({c.N, c.S, c.S}, t, seed + 4, -0.3, 0.3);
  return in;
}

void* data_or_null(const Buffers& b, Device d) { return b.host.defined() ? b.on(d) : nullptr; }

void check_paint_case(const PaintCase& c) {
  for (DType t : kDtypes) {
    const PaintGeom g = geometry(c);
    PaintInputs in;
    run_case(paint_label("paint_forward", c, t), [&] {
      in = paint_inputs(c, t);
      Buffers W = filled({c.N, c.S, c.S}, t);
      on_both([&](Device d) {
        backend(d).paint_forward(t, g, in.k.on(d), in.v.on(d), data_or_null(in.beta, d), data_or_null(in.w0, d),
                                 W.on(d));
      });
      EXPECT_MATCH(W, paint_tolerance(t));
    });
    run_case(paint_label("paint_backward", c, t), [&] {
      const Shape seq = {c.T, c.N, c.S};
      Buffers dW = uniform({c.N, c.S, c.S}, t, 99), dk = filled(seq, t), dv = filled(seq, t), dbeta, dw0;
      if (in.beta.host.defined() && c.want_dbeta) dbeta = filled(in.beta.shape(), t);
      if (in.w0.host.defined() && c.want_dw0) dw0 = filled(in.w0.shape(), t);
      on_both([&](Device d) {
        backend(d).paint_backward(t, g, in.k.on(d), in.v.on(d), data_or_null(in.beta, d), data_or_null(in.w0, d),
                                  dW.on(d), dk.on(d), dv.on(d), data_or_null(dbeta, d), data_or_null(dw0, d));
      });
      EXPECT_MATCH(dk, paint_tolerance(t));
      EXPECT_MATCH(dv, paint_tolerance(t));
      if (dbeta.host.defined()) {
        EXPECT_MATCH(dbeta, paint_tolerance(t));
      }
      if (dw0.host.defined()) {
        EXPECT_MATCH(dw0, paint_tolerance(t));
      }
    });
  }
}

TEST(CudaPaint, EveryRuleAndOptionMatchesTheCpu) {
  REQUIRE_CUDA();
  for (PaintRule rule : {PaintRule::delta, PaintRule::hebb, PaintRule::oja})
    for (bool per_row : {false, true})
      for (bool w0 : {false, true})
        for (bool fe : {false, true}) {
          if (rule == PaintRule::hebb && per_row) continue;  // no rates
          check_paint_case({rule, 7, 3, 5, per_row, w0, fe});
        }
}

TEST(CudaPaint, ShapesMatchTheCpu) {
  REQUIRE_CUDA();
  const PaintRule delta = PaintRule::delta, hebb = PaintRule::hebb, oja = PaintRule::oja;
  std::vector<PaintCase> cases = {
      {delta, 1, 1, 1, false, false, true},  {delta, 7, 2, 1, true, true, true},   {oja, 2, 3, 1, true, false, true},
      {delta, 1, 2, 32, true, true, false},  {delta, 2, 3, 32, false, false, true}, {hebb, 7, 2, 32, false, true, false},
      {oja, 7, 2, 32, true, true, true},     {delta, 1, 2, 64, false, false, true}, {delta, 7, 5, 64, true, true, true},
      {delta, 64, 2, 64, false, false, true}, {oja, 64, 1, 64, true, false, true},  {hebb, 64, 2, 64, false, false, true},
      {delta, 64, 2, 32, true, true, false},  {delta, 7, 2, 40, true, false, true}, {oja, 5, 2, 33, false, true, false},
      // S 100: two column tiles and more row groups than warps (W / G in a buffer).
      {delta, 5, 2, 100, true, true, true},  {oja, 3, 2, 100, false, true, true},  {hebb, 4, 2, 100, false, true, false},
      // T 300: chunks of 18; the states (and, in float64, the staged inputs) in global memory.
      {delta, 300, 2, 40, true, true, true}, {oja, 300, 1, 40, false, false, true},
  };
  for (const PaintCase& c : cases) check_paint_case(c);
}

TEST(CudaPaint, GradientsNotAskedForAreLeftOut) {
  REQUIRE_CUDA();
  for (PaintRule rule : {PaintRule::delta, PaintRule::oja}) {
    PaintCase c{rule, 6, 2, 9, true, true, true};
    c.want_dbeta = false;
    check_paint_case(c);
    c.want_dbeta = true, c.want_dw0 = false;
    check_paint_case(c);
  }
}

TEST(CudaPaint, LargeCasesMatchTheCpu) {
  REQUIRE_CUDA();
  if (!large_cases()) GTEST_SKIP() << "large cases left out (FPA_CUDA_TEST_SMALL=1)";
  // The paper's painter: batch 20 x 3 colour channels, S 64, T 64, delta, front end on.
  check_paint_case({PaintRule::delta, 64, 60, 64, false, false, true});
  check_paint_case({PaintRule::delta, 64, 60, 64, true, true, true});
  check_paint_case({PaintRule::oja, 16, 60, 64, true, false, true});
  check_paint_case({PaintRule::delta, 16, 2000, 32, false, false, true});  // more blocks than the GPU holds at once
}

// The op: paint_fused (over the kernels above) against paint_composed (generic CUDA ops), both
// on CUDA, forward and every input gradient, for one random upstream gradient.
TEST(CudaPaint, FusedOpMatchesItsComposedTwinOnCuda) {
  REQUIRE_CUDA();
  struct OpCase {
    PaintRule rule;
    bool per_row_rate, with_w0, front_end;
  };
  const OpCase cases[] = {{PaintRule::delta, false, false, true},
                          {PaintRule::delta, true, true, true},
                          {PaintRule::hebb, false, true, false},
                          {PaintRule::oja, true, false, true},
                          {PaintRule::oja, false, true, true}};
  for (DType t : kDtypes)
    for (const OpCase& oc : cases) {
      const PaintCase c{oc.rule, 16, 4, 17, oc.per_row_rate, oc.with_w0, oc.front_end};
      run_case(paint_label("paint op", c, t), [&] {
        const PaintInputs in = paint_inputs(c, t);
        std::vector<Tensor> xs = {in.k.device, in.v.device};
        if (in.beta.host.defined()) xs.push_back(in.beta.device);
        if (in.w0.host.defined()) xs.push_back(in.w0.device);
        for (Tensor& x : xs) x = x.detach().requires_grad_();
        const Tensor beta = in.beta.host.defined() ? xs[2] : Tensor();
        const Tensor w0 = in.w0.host.defined() ? xs.back() : Tensor();
        PaintFrontEnd fe;
        fe.key_softmax = fe.rate_sigmoid = c.front_end;
        Philox gen(7);
        const Tensor g = rand({c.N, c.S, c.S}, t, Device::cpu, &gen, -1, 1).to(Device::cuda);
        auto run = [&](bool composed) {
          Tensor W = composed ? paint_composed(c.rule, xs[0], xs[1], beta, w0, fe)
                              : paint_fused(c.rule, xs[0], xs[1], beta, w0, fe);
          std::vector<Tensor> out = fpa::grad({W}, xs, {g});
          out.insert(out.begin(), W);
          return out;
        };
        const std::vector<Tensor> fused = run(false), composed = run(true);
        const char* names[] = {"W", "dk", "dv", "dbeta or dw0", "dw0"};
        for (size_t i = 0; i < fused.size(); ++i)
          EXPECT_TRUE(matches(fused[i], composed[i], paint_tolerance(t))) << names[i];
      });
    }
}

}  // namespace
}  // namespace fpa::test::cuda
