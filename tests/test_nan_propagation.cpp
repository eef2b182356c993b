// test_nan_propagation.cpp: NaN goes where PyTorch sends it (a diverging GAN must print a loss
// of nan, not 0.000).
//
// Over the op table (every FPA_OP_CASE, every element of every input): a NaN put into one
// element comes out NaN in exactly the output elements that element influences, found by
// moving the element to other finite values and seeing which outputs change (float64, and
// float32 where the case runs in float32); and a NaN upstream gradient at one output element
// (each in turn) comes out NaN in every input-gradient element that the output's gradient
// reaches (the nonzero entries of that row of the Jacobian). Every op is held to exactly that
// unless kExpectations lists it with why; an op with no op case fails the coverage test
// unless it is a mask listed there. About half a second in all.
// Then the primitives one by one, with the values PyTorch gives: relu, leaky_relu, clamp, max
// (amax), softmax, the masks, where, and the CPU reduce kernel's max on each of its paths (the
// engine has no min).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <set>
#include <sstream>

#include "ops/backend/backend.h"
#include "ops/op_util.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;
constexpr double kNan = NAN, kInf = INFINITY;

// ---- what each registered op does with a NaN in one input element

enum class Nan {
  exact,     // NaN in exactly the output elements the element influences (what PyTorch gives)
  at_least,  // NaN there and elsewhere too: `why` says where, and how PyTorch differs
  mask,      // not differentiable, no op case: NaN compares false, 0 out (checked by hand below)
};
struct Expectation {
  const char* op;
  Nan nan;
  const char* why = "";
};

constexpr const char* kPaddingTimesNan =
    "the im2col GEMM multiplies the zero padding too, so a NaN weight (or, for the weight gradient, a "
    "NaN dy) also reaches the outputs where it only meets padding (0 * NaN). PyTorch's CPU float64 "
    "convolution (im2col) does the same; its oneDNN and cuDNN kernels may skip the padding";

constexpr const char* kZeroTapTimesNan =
    "an output whose sample point falls on an input row or column (weight 1 there) still reads the next "
    "one with weight 0, so a NaN there gives 0 * NaN = NaN; PyTorch's bilinear upsampling (CPU and CUDA) "
    "reads and weights the same two inputs and gives the same NaN";

// The ops that do not propagate NaN exactly, each with why; every other op with an op case is
// held to `exact`.
const Expectation kExpectations[] = {
    {"gt", Nan::mask, "NaN > x and x > NaN are false: 0, as torch.gt gives False"},
    {"eq", Nan::mask, "NaN == x is false, NaN == NaN too: 0, as torch.eq gives False"},
    {"where", Nan::at_least,
     "mask a + (1 - mask) b: a NaN in the branch not taken gives 0 * NaN = NaN, where torch.where "
     "picks the other branch's value (a select would need a backend primitive)"},
    {"conv2d", Nan::at_least, kPaddingTimesNan},
    {"conv2d_weight_grad", Nan::at_least, kPaddingTimesNan},
    {"interpolate_bilinear", Nan::at_least, kZeroTapTimesNan},
    {"interpolate_bilinear_backward", Nan::at_least, kZeroTapTimesNan},
};

// The op's entry in kExpectations, or `exact`.
const Expectation& expectation_of(const std::string& op) {
  static const Expectation exact{"", Nan::exact};
  for (const Expectation& e : kExpectations)
    if (op == e.op) return e;
  return exact;
}

TEST(NanPropagationCoverage, EveryRegisteredOpIsCheckedOrListedWithWhy) {
  std::set<std::string> with_cases;
  for (const OpCase& c : op_cases()) with_cases.insert(c.op);
  for (const OpInfo& op : registered_ops()) {
    const Expectation& e = expectation_of(op.name);
    if (e.nan != Nan::exact) {
      EXPECT_STRNE(e.why, "") << op.name << ": say why";
    }
    if (e.nan == Nan::mask) {
      EXPECT_FALSE(op.differentiable) << op.name << ": only masks may go without op cases";
    } else if (!with_cases.count(op.name)) {
      ADD_FAILURE() << "op " << op.name << " (" << op.family << ") has no op case: its NaN propagation is unchecked";
    }
  }
  for (const Expectation& e : kExpectations) {
    bool known = false;
    for (const OpInfo& op : registered_ops()) known = known || op.name == e.op;
    EXPECT_TRUE(known) << "kExpectations names unregistered op " << e.op;
  }
}

// ---- forward and backward over the op table

// The case's inputs (make_inputs) as fresh leaves of dtype t, element e of input i set to v.
V inputs_with(const OpCase& c, DType t, int64_t i = -1, int64_t e = 0, double v = 0) {
  V xs;
  for (const Tensor& x : make_inputs(c, 42)) {
    std::vector<double> vals = x.to_vector();
    if (int64_t(xs.size()) == i) vals[e] = v;
    xs.push_back(from_vector(vals, x.shape(), t).requires_grad_());
  }
  return xs;
}

bool changed(double a, double b) { return std::isnan(a) != std::isnan(b) || (!std::isnan(a) && a != b); }

// Failure lines of one case: the first few told, the rest counted.
class Failures {
 public:
  template <typename... Parts>
  void add(const Parts&... parts) {
    if (++count_ > kTold) return;
    told_ << "\n  ";
    (told_ << ... << parts);
  }
  bool none() const { return count_ == 0; }
  std::string str() const {
    return told_.str() + (count_ > kTold ? "\n  (" + std::to_string(count_) + " failures in all)" : "");
  }

 private:
  static constexpr int kTold = 6;
  std::ostringstream told_;
  int count_ = 0;
};

// The failures of one case's forward in dtype t (empty: none). A NaN in element e of input i
// must give NaN in every output it influences, and (exact) nowhere else.
std::string forward_failures(const OpCase& c, DType t, bool exact) {
  const std::vector<double> base = c.fn(inputs_with(c, t)).to_vector();
  for (double v : base)
    if (std::isnan(v)) return "the output holds NaN before any NaN is put in";
  Failures bad;
  const V xs = make_inputs(c, 42);
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::vector<double> x = xs[i].to_vector();
    bool influences_any = false;
    for (int64_t e = 0; e < int64_t(x.size()); ++e) {
      std::vector<bool> influenced(base.size(), false);
      for (double moved : {x[e] + 0.25, 3.0, -3.0}) {
        const std::vector<double> y = c.fn(inputs_with(c, t, int64_t(i), e, moved)).to_vector();
        for (size_t o = 0; o < y.size(); ++o) influenced[o] = influenced[o] || changed(y[o], base[o]);
      }
      const std::vector<double> y = c.fn(inputs_with(c, t, int64_t(i), e, kNan)).to_vector();
      for (size_t o = 0; o < y.size(); ++o) {
        influences_any = influences_any || influenced[o];
        if (influenced[o] && !std::isnan(y[o]))
          bad.add("NaN at input ", i, " element ", e, ": output ", o, " = ", y[o], ", though the element moves it");
        else if (exact && !influenced[o] && std::isnan(y[o]))
          bad.add("NaN at input ", i, " element ", e, ": output ", o, " is NaN, though the element never moves it");
      }
    }
    if (!influences_any) bad.add("input ", i, " moves no output: the check sees nothing");
  }
  return bad.str();
}

// Parameterised by the index into op_cases() (gtest then prints a number, not the case's bytes).
// The inputs are tiny and run hundreds of times: on one thread (results do not depend on the
// count), so that a busy machine does not slow every parallel region down.
class NanPropagation : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override { omp_set_num_threads(1); }
  void TearDown() override { omp_set_num_threads(saved_threads_); }
  const int saved_threads_ = omp_get_max_threads();
};

TEST_P(NanPropagation, ForwardFloat64) {
  const OpCase& c = op_cases()[GetParam()];
  const Expectation& e = expectation_of(c.op);
  std::string bad = forward_failures(c, DType::f64, e.nan == Nan::exact);
  EXPECT_TRUE(bad.empty()) << c.op << " (" << c.label << "):" << bad;
}

// Cases whose function builds float64 constants (where's mask) do not run in float32: skipped.
TEST_P(NanPropagation, ForwardFloat32) {
  const OpCase& c = op_cases()[GetParam()];
  const Expectation& e = expectation_of(c.op);
  try {
    c.fn(inputs_with(c, DType::f32));
  } catch (const Error& err) {
    GTEST_SKIP() << c.label << " does not run in float32: " << err.what();
  }
  std::string bad = forward_failures(c, DType::f32, e.nan == Nan::exact);
  EXPECT_TRUE(bad.empty()) << c.op << " (" << c.label << "):" << bad;
}

// A NaN upstream gradient at output o reaches every input element whose gradient depends on
// it: wherever d out[o] / d x[e] != 0, PyTorch's backward multiplies the NaN by it. (Where the
// derivative is 0, PyTorch's relu and clamp backward select 0; ours multiply by 0 and give NaN:
// see the unit tests below. That is not checked here.)
TEST_P(NanPropagation, BackwardFloat64) {
  const OpCase& c = op_cases()[GetParam()];
  const V xs = inputs_with(c, DType::f64);
  const Tensor out = c.fn(xs);
  ASSERT_TRUE(out.requires_grad());
  Failures bad;
  bool reaches_any = false;
  for (int64_t o = 0; o < out.numel(); ++o) {
    std::vector<double> hot(out.numel(), 0.0);
    hot[o] = 1.0;
    const V jacobian_row = grad({out}, xs, {from_vector(hot, out.shape(), DType::f64)}, true, false, true);
    hot[o] = kNan;
    const V nan_grads = grad({out}, xs, {from_vector(hot, out.shape(), DType::f64)}, true, false, true);
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!jacobian_row[i].defined()) continue;
      const std::vector<double> d = jacobian_row[i].to_vector(), n = nan_grads[i].to_vector();
      for (size_t e = 0; e < d.size(); ++e) {
        if (d[e] == 0) continue;
        reaches_any = true;
        if (!std::isnan(n[e]))
          bad.add("NaN gradient at output ", o, ": input ", i, " element ", e, " gets ", n[e], " (derivative ", d[e],
                  ")");
      }
    }
  }
  EXPECT_TRUE(reaches_any) << c.label << ": no output has a nonzero gradient: the check sees nothing";
  EXPECT_TRUE(bad.none()) << c.op << " (" << c.label << "):" << bad.str();
}

INSTANTIATE_TEST_SUITE_P(Ops, NanPropagation, ::testing::Range(size_t(0), op_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return op_cases()[info.param].label; });

// ---- the primitives one by one, PyTorch's values

// Forward value and the gradients for upstream g of a one-input op, in dtype t.
struct Outcome {
  std::vector<double> y, dx;
};
Outcome run(Tensor (*op)(const Tensor&), const std::vector<double>& x, const std::vector<double>& g, DType t) {
  const Shape s{int64_t(x.size())};
  Tensor xt = from_vector(x, s, t).requires_grad_();
  Tensor y = op(xt);
  return {y.to_vector(), grad({y}, {xt}, {from_vector(g, y.shape(), t)})[0].to_vector()};
}

// Elementwise equality where NaN equals NaN (and only NaN).
::testing::AssertionResult same_values(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << got.size() << " values, not " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (changed(got[i], want[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << ", expected " << want[i];
  return ::testing::AssertionSuccess();
}

const std::vector<double> kOnes(6, 1.0), kNans(6, kNan);

// torch.relu: clamp_min(x, 0), NaN propagating. Backward: threshold_backward(g, result, 0) =
// result <= 0 ? 0 : g (a select), so g passes at a NaN x (NaN <= 0 is false), and a NaN g at
// x <= 0 gives 0 in PyTorch. Ours multiplies g by a 0/1 mask: NaN there (known difference).
TEST(NanPrimitives, Relu) {
  const std::vector<double> x = {kNan, -1.0, 0.0, 2.0, -kInf, kInf};
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Outcome r = run(relu, x, kOnes, t);
    EXPECT_TRUE(same_values(r.y, {kNan, 0, 0, 2, 0, kInf}));
    EXPECT_TRUE(same_values(r.dx, {1, 0, 0, 1, 0, 1}));
    r = run(relu, x, kNans, t);
    // PyTorch: {nan, 0, 0, nan, 0, nan}.
    EXPECT_TRUE(same_values(r.dx, kNans)) << "known difference: NaN * 0 where PyTorch selects 0";
  }
  // The hinge losses (relu of the shifted logits): a NaN logit gives a NaN loss, not 0.
  Tensor logits = from_vector({0.5, kNan, -2.0}, {3}, DType::f64);
  EXPECT_TRUE(std::isnan(hinge_real(logits).item()));
  EXPECT_TRUE(std::isnan(hinge_fake(logits).item()));
}

// torch.nn.functional.leaky_relu: x > 0 ? x : x * slope (NaN * slope = NaN). Backward:
// leaky_relu_backward(g, x) = x > 0 ? g : g * slope, so a NaN x gives g * slope and a NaN g
// gives NaN everywhere: ours is the same.
TEST(NanPrimitives, LeakyRelu) {
  const std::vector<double> x = {kNan, -2.0, 0.0, 3.0, -kInf, kInf};
  auto op = [](const Tensor& a) { return leaky_relu(a, 0.25); };
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Outcome r = run(op, x, kOnes, t);
    EXPECT_TRUE(same_values(r.y, {kNan, -0.5, 0, 3, -kInf, kInf}));
    EXPECT_TRUE(same_values(r.dx, {0.25, 0.25, 0.25, 1, 0.25, 1}));
    EXPECT_TRUE(same_values(run(op, x, kNans, t).dx, kNans));
  }
}

// torch.clamp(x, lo, hi): NaN stays NaN. Backward: clamp_backward = where(lo <= x <= hi, g, 0),
// 0 at a NaN x; a NaN g outside [lo, hi] gives 0 in PyTorch, NaN here (g times a 0/1 mask).
TEST(NanPrimitives, Clamp) {
  const std::vector<double> x = {kNan, -1.0, 0.25, 1.0, kInf, -kInf};
  auto op = [](const Tensor& a) { return clamp(a, -0.5, 0.5); };
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Outcome r = run(op, x, kOnes, t);
    EXPECT_TRUE(same_values(r.y, {kNan, -0.5, 0.25, 0.5, 0.5, -0.5}));
    EXPECT_TRUE(same_values(r.dx, {0, 0, 1, 0, 0, 0}));
    r = run(op, x, kNans, t);
    // PyTorch: {0, 0, nan, 0, 0, 0}.
    EXPECT_TRUE(same_values(r.dx, kNans)) << "known difference: NaN * 0 where PyTorch selects 0";
  }
}

// max over axes is torch.amax: NaN if any reduced element is NaN. Its backward,
// scale_grad_by_count(g, result == x) = g / count(result == x) * (result == x), gives NaN to the
// whole of a NaN row (no element equals NaN: g / 0 * 0); ours shares g the same way.
TEST(NanPrimitives, MaxIsAmax) {
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Tensor x = from_vector({1, kNan, 3, 4, 5, 6}, {2, 3}, t).requires_grad_();
    EXPECT_TRUE(same_values(max(x, {1}).to_vector(), {kNan, 6}));
    EXPECT_TRUE(same_values(max(x, {0}).to_vector(), {4, kNan, 6}));
    EXPECT_TRUE(same_values(max(x).to_vector(), {kNan}));
    EXPECT_TRUE(same_values(max(from_vector({kInf, kNan, -kInf}, {3}, t)).to_vector(), {kNan}));
    EXPECT_TRUE(same_values(max(from_vector({-kInf, 2, kInf}, {3}, t)).to_vector(), {kInf}));
    Tensor dx = grad({max(x, {1})}, {x}, {from_vector({1, 1}, {2}, t)})[0];
    EXPECT_TRUE(same_values(dx.to_vector(), {kNan, kNan, kNan, 0, 0, 1}));
  }
}

// The CPU kernel itself, on each of its paths: a short row, rows of whole 16-lane groups and a
// remainder (NaN first, in a lane, in the remainder), columns (innermost dim kept), and few
// long rows cut into pieces computed in parallel (on 2 threads; one piece after another on 1).
TEST(NanPrimitives, CpuReduceMaxGivesNan) {
  const Backend& be = backend(Device::cpu);
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    auto reduce_max = [&](const Shape& s, unsigned mask, const std::vector<std::pair<int64_t, double>>& set) {
      std::vector<double> v(s.numel());
      for (int64_t i = 0; i < s.numel(); ++i) v[i] = std::sin(0.37 * double(i));
      for (auto [i, value] : set) v[i] = value;
      Tensor x = from_vector(v, s, t);
      std::vector<int64_t> kept;
      for (int d = 0; d < s.ndim; ++d)
        if (!(mask >> d & 1u)) kept.push_back(s[d]);
      Tensor y = zeros(kept.empty() ? Shape{1} : Shape(kept), t);
      be.reduce(t, ReduceOp::max, s, mask, x.data(), y.data());
      return y.to_vector();
    };
    const std::vector<double> plain = reduce_max({3, 3}, 0b10, {});
    EXPECT_TRUE(same_values(reduce_max({3, 3}, 0b10, {{0, kNan}, {5, kNan}}), {kNan, kNan, plain[2]}));
    std::vector<double> rows = reduce_max({4, 37}, 0b10, {{0, kNan}, {37 + 20, kNan}, {2 * 37 + 36, kNan}});
    EXPECT_TRUE(std::isnan(rows[0]) && std::isnan(rows[1]) && std::isnan(rows[2]) && !std::isnan(rows[3]));
    for (int64_t width : {4, 20}) {  // columns: a plain loop, a vector loop
      std::vector<double> cols =
          reduce_max({37, width}, 0b01, {{0, kNan}, {20 * width + 1, kNan}, {36 * width + 2, kNan}});
      EXPECT_TRUE(std::isnan(cols[0]) && std::isnan(cols[1]) && std::isnan(cols[2]) && !std::isnan(cols[3]));
    }
    EXPECT_TRUE(std::isnan(reduce_max({2, 3, 20}, 0b101, {{2 * 60 - 1, kNan}})[2]));
    for (int threads : {1, 2}) {  // NaN then inf in row 0, inf then NaN in row 1, pieces apart
      std::vector<double> big = with_threads(threads, [&] {
        return reduce_max({3, 1 << 16}, 0b10, {{100, kNan}, {20000, kInf}, {(1 << 16) + 50000, kInf},
                                                {(1 << 16) + 60000, kNan}, {(2 << 16) + 30000, kInf}});
      });
      EXPECT_TRUE(same_values(big, {kNan, kNan, kInf})) << threads << " threads";
    }
  }
}

// torch.softmax: the max of a row holding NaN is NaN, and so is every output of that row (ours
// skips the NaN in its max, but exp(NaN - max) makes the row's sum NaN: the same result). An
// infinity gives inf - inf = NaN the same way. The backward y (g - sum(g y)) is NaN over a row
// whose upstream gradient holds a NaN, in PyTorch and here.
TEST(NanPrimitives, Softmax) {
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Tensor x = from_vector({kNan, 0, 1, 0, 1, 2, 1, kInf, 0, 1, kNan, 2}, {4, 3}, t);
    std::vector<double> y = softmax(x, 1).to_vector();
    for (int r : {0, 2, 3})
      for (int j = 0; j < 3; ++j) EXPECT_TRUE(std::isnan(y[r * 3 + j])) << "row " << r;
    for (int j = 0; j < 3; ++j) EXPECT_FALSE(std::isnan(y[3 + j]));
    // Over the middle axis (the kernel's column path): only the NaN's column.
    std::vector<double> v(24, 0.5);
    v[1 * 12 + 2 * 4 + 3] = kNan;
    std::vector<double> z = softmax(from_vector(v, {2, 3, 4}, t), 1).to_vector();
    for (int i = 0; i < 24; ++i) EXPECT_EQ(std::isnan(z[i]), i % 4 == 3 && i >= 12) << "element " << i;
    Tensor xg = from_vector({0, 1, 2, 3, 4, 5}, {2, 3}, t).requires_grad_();
    const Tensor g = from_vector({1, kNan, 1, 1, 1, 1}, {2, 3}, t);
    std::vector<double> dx = grad({softmax(xg, 1)}, {xg}, {g})[0].to_vector();
    for (int i = 0; i < 6; ++i) EXPECT_EQ(std::isnan(dx[i]), i < 3) << "element " << i;
  }
}

// torch.gt / torch.eq: comparisons with NaN are False (0); sign(NaN) = 0 as torch.sign gives
// ((0 < x) - (x < 0)), which is also why PyTorch's abs backward, g * sgn(x), is 0 at a NaN x.
TEST(NanPrimitives, MasksCompareFalse) {
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Tensor a = from_vector({kNan, 1, kNan}, {3}, t), b = from_vector({1, kNan, kNan}, {3}, t);
    EXPECT_TRUE(same_values(gt(a, b).to_vector(), {0, 0, 0}));
    EXPECT_TRUE(same_values(eq(a, b).to_vector(), {0, 0, 0}));
    EXPECT_TRUE(same_values(unary_map(a, UnaryOp::sign).to_vector(), {0, 1, 0}));
    EXPECT_TRUE(same_values(run(abs, {kNan, -2, 3}, {1, 1, 1}, t).dx, {0, -1, 1}));
  }
}

// torch.where(mask, a, b) picks: a NaN in the branch not taken does not show. Ours is
// mask a + (1 - mask) b, where it does (kExpectations: at_least).
TEST(NanPrimitives, WhereMultipliesTheBranchNotTaken) {
  Tensor mask = from_vector({1, 0}, {2}, DType::f64);
  Tensor a = from_vector({2, kNan}, {2}, DType::f64), b = from_vector({kNan, 3}, {2}, DType::f64);
  // PyTorch: {2, 3}.
  EXPECT_TRUE(same_values(where(mask, a, b).to_vector(), {kNan, kNan})) << "known difference";
}

}  // namespace
}  // namespace fpa::test
