// pending_read.h: PendingRead, a tensor's values on their way to the host without waiting
// for them: the copy is queued at once behind the work already issued on the tensor's device
// (so it sees what that work writes, even if the tensor is overwritten later), and values()
// waits for that copy alone. The training loop reads a step's losses this way while the next
// step is already queued on the GPU. On the CPU the copy is made at once.
#pragma once
#include <vector>

#include "autograd/tensor.h"

namespace fpa {

class PendingRead {
 public:
  PendingRead() = default;
  explicit PendingRead(const Tensor& t);  // throws inside a HostTrafficGuard
  ~PendingRead();                         // an unread copy is waited for and dropped
  PendingRead(PendingRead&& other) noexcept;
  PendingRead& operator=(PendingRead&& other) noexcept;
  PendingRead(const PendingRead&) = delete;
  PendingRead& operator=(const PendingRead&) = delete;

  bool pending() const { return ticket_ != nullptr; }  // started and not yet read
  // Waits for the copy and returns the values as doubles (row-major); once per read.
  std::vector<double> values();

 private:
  void drop() noexcept;

  void* ticket_ = nullptr;  // the backend's (to_host_start)
  Device device_ = Device::cpu;
  DType dtype_ = DType::f32;
  Shape shape_;
};

}  // namespace fpa
