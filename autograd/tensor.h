// tensor.h: Tensor, a reference-counted handle to a contiguous n-d array on a device.
//
// Storage is shared by views where that is free (reshape, detach); every other op makes a
// new contiguous tensor. A tensor that requires grad and was produced by a recorded op has a
// grad_fn (the tape node that made it); leaves that require grad collect `.grad()`.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/dtype.h"
#include "autograd/shape.h"

namespace fpa {

struct Node;
class Philox;

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;       // null for leaves
  std::shared_ptr<TensorImpl> grad;    // accumulated by backward() on leaves
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int ndim() const { return shape().ndim; }
  int64_t dim(int axis) const;  // negative axes count from the end
  int64_t numel() const { return shape().numel(); }
  DType dtype() const;
  Device device() const;
  void* data() const;  // device pointer to the first element
  template <typename T>
  T* data_as() const { return static_cast<T*>(data()); }

  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // only on leaves
  Tensor grad() const;                     // undefined when none accumulated yet
  void zero_grad();                        // drops the accumulated gradient
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }

  double item() const;                     // the single element, as double
  std::vector<double> to_vector() const;   // host copy, as doubles
  std::vector<float> to_floats() const;    // host copy, as floats
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const;                    // a copy with no history
  Tensor detach() const;                   // same storage, no history
  std::string str() const;                 // "float32 (2, 3) cpu"

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A fresh uninitialised contiguous tensor.
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu);
Tensor arange(int64_t n, DType dtype = DType::f32, Device device = Device::cpu);  // 0 .. n-1
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32,
                   Device device = Device::cpu);
Tensor from_floats(const std::vector<float>& values, const Shape& shape, Device device = Device::cpu);
// Uniform in [lo, hi) and normal(mean, std) from a generator (the default one when null).
Tensor rand(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu,
            Philox* gen = nullptr, double lo = 0.0, double hi = 1.0);
Tensor randn(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu,
             Philox* gen = nullptr, double mean = 0.0, double std = 1.0);
// A tensor with another's storage and a new shape of equal numel (no history).
Tensor alias(const Tensor& t, const Shape& shape);

// A region of work that is recorded once and replayed (a CUDA graph of a training step):
// inside it nothing may cross between host and device or depend on host state that changes
// between replays. Tensor::item, to_vector, to_floats, copies between devices, from_vector,
// from_floats, arange, rand and randn throw "NAME inside REGION: ..." while a guard lives on
// this thread (nestable). It also holds on the CPU, so CPU tests prove a step capturable.
class HostTrafficGuard {
 public:
  explicit HostTrafficGuard(const char* region);
  ~HostTrafficGuard();
  HostTrafficGuard(const HostTrafficGuard&) = delete;
  HostTrafficGuard& operator=(const HostTrafficGuard&) = delete;

 private:
  const char* previous_;
};
// Throws if a HostTrafficGuard is active on this thread.
void check_no_host_traffic(const char* what);

// Throws naming `op` unless the tensors agree in dtype and device.
void check_same_kind(const char* op, const Tensor& a, const Tensor& b);
void check_defined(const char* op, const Tensor& t, const char* what);

}  // namespace fpa
