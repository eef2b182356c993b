// tensor.cpp: storage, tensor accessors, factories and host/device copies.
#include <fmt/format.h>

#include "autograd/tensor.h"


#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/philox.h"
#include "ops/backend/backend.h"

namespace fpa {

Storage::Storage(size_t bytes_, Device device_) : bytes(bytes_), device(device_) {
  data = bytes ? backend(device).alloc(bytes) : nullptr;
}

Storage::~Storage() {
  if (data) backend(device).free(data);
}

static const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  FPA_CHECK(impl != nullptr, "use of an undefined tensor");
  return *impl;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
int64_t Tensor::dim(int axis) const { return shape()[shape().axis(axis, "dim")]; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device; }
void* Tensor::data() const {
  const TensorImpl& t = checked(impl_);
  return static_cast<char*>(t.storage->data) + t.offset * dtype_size(t.dtype);
}
bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

Tensor& Tensor::requires_grad_(bool on) {
  FPA_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (",
            str(), " was made by ", grad_fn()->name, ")");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return Tensor(checked(impl_).grad); }
void Tensor::zero_grad() { checked(impl_), impl_->grad.reset(); }

namespace {
thread_local const char* g_guarded_region = nullptr;  // the innermost HostTrafficGuard's region
}  // namespace

HostTrafficGuard::HostTrafficGuard(const char* region) : previous_(g_guarded_region) { g_guarded_region = region; }
HostTrafficGuard::~HostTrafficGuard() { g_guarded_region = previous_; }

void check_no_host_traffic(const char* what) {
  FPA_CHECK(g_guarded_region == nullptr, what, " inside ", g_guarded_region,
            ": a captured region may not move data between host and device or draw from a host-side "
            "random generator (its replays would reuse the captured values)");
}

std::vector<double> Tensor::to_vector() const {
  check_no_host_traffic("to_vector");
  Tensor h = to(DType::f64).to(Device::cpu);
  const double* p = h.data_as<double>();
  return std::vector<double>(p, p + numel());
}

std::vector<float> Tensor::to_floats() const {
  check_no_host_traffic("to_floats");
  Tensor h = to(DType::f32).to(Device::cpu);
  const float* p = h.data_as<float>();
  return std::vector<float>(p, p + numel());
}

double Tensor::item() const {
  check_no_host_traffic("item");
  FPA_CHECK(numel() == 1, "item: tensor ", str(), " has ", numel(), " elements, expected 1");
  return to_vector()[0];
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  check_no_host_traffic(dev == Device::cpu ? "a copy to the host" : "a copy from the host");
  Tensor r = empty(shape(), dtype(), dev);
  size_t bytes = numel() * dtype_size(dtype());
  if (dev == Device::cpu) backend(device()).to_host(r.data(), data(), bytes);
  else backend(dev).from_host(r.data(), data(), bytes);
  return r;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor r = empty(shape(), t, device());
  backend(device()).cast(dtype(), t, numel(), data(), r.data());
  return r;
}

Tensor Tensor::clone() const {
  Tensor r = empty(shape(), dtype(), device());
  backend(device()).copy(r.data(), data(), numel() * dtype_size(dtype()));
  return r;
}

Tensor Tensor::detach() const { return alias(*this, shape()); }

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return fmt::format("{} {} {}", dtype_name(dtype()), shape(), device_name(device()));
}

Tensor empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape.numel() * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(dtype, t.numel(), value, t.data());
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor arange(int64_t n, DType dtype, Device device) {
  check_no_host_traffic("arange");
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = double(i);
  return from_vector(v, Shape{n}, dtype, device);
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  check_no_host_traffic("from_vector");
  FPA_CHECK(int64_t(values.size()) == shape.numel(), "from_vector: ", values.size(),
            " values for shape ", shape.str());
  Tensor h = empty(shape, DType::f64, Device::cpu);
  std::copy(values.begin(), values.end(), h.data_as<double>());
  return h.to(dtype).to(device);
}

Tensor from_floats(const std::vector<float>& values, const Shape& shape, Device device) {
  check_no_host_traffic("from_floats");
  FPA_CHECK(int64_t(values.size()) == shape.numel(), "from_floats: ", values.size(),
            " values for shape ", shape.str());
  Tensor h = empty(shape, DType::f32, Device::cpu);
  std::copy(values.begin(), values.end(), h.data_as<float>());
  return h.to(device);
}

Tensor rand(const Shape& shape, DType dtype, Device device, Philox* gen, double lo, double hi) {
  check_no_host_traffic("rand");
  Philox& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  backend(device).rand_uniform(dtype, t.numel(), g.seed(), g.advance(t.numel()), lo, hi, t.data());
  return t;
}

Tensor randn(const Shape& shape, DType dtype, Device device, Philox* gen, double mean, double std) {
  check_no_host_traffic("randn");
  Philox& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  backend(device).rand_normal(dtype, t.numel(), g.seed(), g.advance(t.numel()), mean, std, t.data());
  return t;
}

Tensor alias(const Tensor& t, const Shape& shape) {
  FPA_CHECK(shape.numel() == t.numel(), "alias: cannot view ", t.str(), " as ", shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->offset = t.impl()->offset;
  impl->shape = shape;
  impl->dtype = t.dtype();
  return Tensor(impl);
}

void check_defined(const char* op, const Tensor& t, const char* what) {
  FPA_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

void check_same_kind(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, "first operand");
  check_defined(op, b, "second operand");
  FPA_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", a.str(), " vs ", b.str());
  FPA_CHECK(a.device() == b.device(), op, ": device mismatch, ", a.str(), " vs ", b.str());
}

}  // namespace fpa
