// pending_read.cpp: PendingRead over the backend's to_host_start / to_host_finish.
#include "autograd/pending_read.h"

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <utility>

#include "autograd/error.h"
#include "ops/backend/backend.h"

namespace fpa {

PendingRead::PendingRead(const Tensor& t) : device_(t.device()), dtype_(t.dtype()), shape_(t.shape()) {
  check_no_host_traffic("an asynchronous copy to the host");
  ticket_ = backend(device_).to_host_start(t.data(), size_t(t.numel()) * dtype_size(dtype_));
}

PendingRead::~PendingRead() { drop(); }

PendingRead::PendingRead(PendingRead&& other) noexcept
    : ticket_(std::exchange(other.ticket_, nullptr)),
      device_(other.device_),
      dtype_(other.dtype_),
      shape_(std::move(other.shape_)) {}

PendingRead& PendingRead::operator=(PendingRead&& other) noexcept {
  if (this != &other) {
    drop();
    ticket_ = std::exchange(other.ticket_, nullptr);
    device_ = other.device_, dtype_ = other.dtype_, shape_ = std::move(other.shape_);
  }
  return *this;
}

std::vector<double> PendingRead::values() {
  FPA_CHECK(ticket_ != nullptr, "PendingRead::values: nothing to read (never started, or already read)");
  Tensor host = empty(shape_, dtype_, Device::cpu);
  backend(device_).to_host_finish(std::exchange(ticket_, nullptr), host.data());
  Tensor d = host.to(DType::f64);
  const double* p = d.data_as<double>();
  return std::vector<double>(p, p + d.numel());
}

void PendingRead::drop() noexcept {
  if (!ticket_) return;
  try {
    backend(device_).to_host_finish(std::exchange(ticket_, nullptr), nullptr);
  } catch (const std::exception& e) {  // from a destructor: report, never throw
    fmt::print(stderr, "fpa: an unread copy to the host failed: {}\n", e.what());
  }
}

}  // namespace fpa
