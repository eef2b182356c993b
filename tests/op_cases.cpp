// op_cases.cpp: the case table and the numerical checks (gradcheck, gradgradcheck) in float64.
//
// check_jacobian compares, for a function of several inputs with several outputs, the
// engine's vector-Jacobian product against central differences of the scalar
// L = sum_k <F_k(x), v_k> with random v, as PyTorch's gradcheck does. Everything runs on the
// inputs' device (the conformance suite checks a backend's gradients this way).
#include "tests/op_cases.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "autograd/philox.h"

namespace fpa::test {

static std::vector<OpCase>& cases() {
  static std::vector<OpCase> v;
  return v;
}
int add_op_case(const OpCase& c) {
  cases().push_back(c);
  return 0;
}
const std::vector<OpCase>& op_cases() { return cases(); }

std::vector<Tensor> make_inputs(const OpCase& c, uint64_t seed, Device device) {
  Philox gen(seed);
  std::vector<Tensor> xs;
  for (const Shape& s : c.shapes) {
    std::vector<double> v = rand(s, DType::f64, Device::cpu, &gen, c.lo, c.hi).to_vector();
    for (double& x : v)
      if (std::abs(x) < c.min_abs) x += x < 0 ? -c.min_abs : c.min_abs;
    xs.push_back(from_vector(v, s, DType::f64, device).requires_grad_());
  }
  return xs;
}

using MultiFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

static double dot(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

static std::vector<Tensor> fresh_leaves(const std::vector<std::vector<double>>& vals, const std::vector<Tensor>& like) {
  std::vector<Tensor> r;
  for (size_t i = 0; i < vals.size(); ++i)
    r.push_back(from_vector(vals[i], like[i].shape(), DType::f64, like[i].device()).requires_grad_());
  return r;
}

static CheckResult check_jacobian(const MultiFn& f, const std::vector<Tensor>& inputs, uint64_t seed) {
  const double eps = 1e-6, atol = 1e-5, rtol = 1e-3;
  std::vector<Tensor> outs = f(inputs);
  Philox gen(seed * 7919 + 13);
  std::vector<Tensor> vs, diff_outs, diff_vs;
  for (const Tensor& o : outs) {
    vs.push_back(o.defined() ? randn(o.shape(), DType::f64, Device::cpu, &gen).to(o.device()) : Tensor());
    if (o.defined() && o.requires_grad()) diff_outs.push_back(o), diff_vs.push_back(vs.back());
  }
  std::vector<Tensor> analytic(inputs.size());
  if (!diff_outs.empty()) analytic = grad(diff_outs, inputs, diff_vs, false, false, true);

  std::vector<std::vector<double>> vals;
  for (const Tensor& x : inputs) vals.push_back(x.to_vector());
  auto L = [&](const std::vector<std::vector<double>>& v) {
    std::vector<Tensor> o = f(fresh_leaves(v, inputs));
    double s = 0;
    for (size_t k = 0; k < o.size(); ++k)
      if (o[k].defined()) s += dot(o[k], vs[k]);
    return s;
  };
  CheckResult res;
  double worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<double> a = analytic[i].defined() ? analytic[i].to_vector() : std::vector<double>(vals[i].size(), 0.0);
    for (size_t e = 0; e < vals[i].size(); ++e) {
      double x0 = vals[i][e];
      vals[i][e] = x0 + eps;
      double lp = L(vals);
      vals[i][e] = x0 - eps;
      double lm = L(vals);
      vals[i][e] = x0;
      double num = (lp - lm) / (2 * eps);
      double excess = std::abs(a[e] - num) - (atol + rtol * std::abs(num));
      if (excess > 0 && (res.ok || excess > worst)) {
        worst = excess;
        res.ok = false;
        std::ostringstream os;
        os << "input " << i << " " << inputs[i].shape() << " element " << e << ": analytic " << a[e]
           << " numeric " << num;
        res.message = os.str();
      }
    }
  }
  return res;
}

CheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                      uint64_t seed) {
  return check_jacobian([&](const std::vector<Tensor>& x) { return std::vector<Tensor>{fn(x)}; }, inputs, seed);
}

CheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, uint64_t seed) {
  // The first-order map (x, u) -> d<fn(x), u>/dx, built with create_graph.
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = fn(inputs);
  }
  Philox gen(seed * 104729 + 7);
  Tensor u = randn(y0.shape(), DType::f64, Device::cpu, &gen).to(y0.device()).requires_grad_();
  size_t n = inputs.size();
  MultiFn first = [&fn, n](const std::vector<Tensor>& xu) {
    std::vector<Tensor> x(xu.begin(), xu.begin() + n);
    Tensor y = fn(x);
    if (!y.requires_grad()) return std::vector<Tensor>(n);
    return grad({y}, x, {xu[n]}, true, true, true);
  };
  std::vector<Tensor> all(inputs);
  all.push_back(u);
  return check_jacobian(first, all, seed + 1);
}

CheckResult allclose(const Tensor& a, const Tensor& b, double atol, double rtol) {
  CheckResult r;
  if (a.shape() != b.shape()) {
    r.ok = false;
    r.message = "shapes differ: " + a.shape().str() + " vs " + b.shape().str();
    return r;
  }
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double excess = std::abs(x[i] - y[i]) - (atol + rtol * std::abs(y[i]));
    if (!(excess <= 0) && (r.ok || excess > worst || std::isnan(excess))) {
      worst = excess;
      r.ok = false;
      std::ostringstream os;
      os << "element " << i << ": " << x[i] << " vs " << y[i];
      r.message = os.str();
    }
  }
  return r;
}

CheckResult allclose_scaled(const Tensor& a, const Tensor& b, double atol, double rtol) {
  double scale = 1;
  for (double v : b.to_vector()) scale = std::max(scale, std::abs(v));
  CheckResult r = allclose(a, b, atol * scale, rtol);
  if (!r.ok) r.message += " (atol " + std::to_string(atol) + " x max|ref| " + std::to_string(scale) + ")";
  return r;
}

CheckResult allclose_to_max(const Tensor& a, const Tensor& b, double tol) {
  double scale = 0;
  for (double v : b.to_vector()) scale = std::max(scale, std::abs(v));
  CheckResult r = allclose(a, b, tol * (scale > 0 ? scale : 1.0), 0.0);
  if (!r.ok) r.message += " (max|ref| " + std::to_string(scale) + ")";
  return r;
}

}  // namespace fpa::test
