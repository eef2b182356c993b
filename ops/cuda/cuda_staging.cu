// cuda_staging.cu: host-to-device copies that never wait for the device (the backend's
// from_host).
//
// A copy from ordinary (pageable) host memory may make the driver wait for the stream before
// it stages the bytes, which would stall the host behind every queued kernel: the training
// loop could not prepare step k+1 while the GPU runs step k. So the bytes are first copied
// (on the host, at once: the caller may reuse its memory on return) into a pinned staging
// buffer, whose DMA is then queued on the stream, followed by an event. A buffer is handed out
// again only once its event has completed. Buffers are kept for the process (cudaMallocHost is
// slow); at most kMaxBuffers exist, beyond that the oldest copy is waited for. Copies larger
// than kMaxStaged bytes (checkpoints) go directly from the caller's memory.
#include <cstring>
#include <deque>
#include <mutex>

#include "ops/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

constexpr size_t kMinBuffer = size_t(64) << 10;  // bytes; smaller requests share this size
constexpr size_t kMaxStaged = size_t(64) << 20;
constexpr size_t kMaxBuffers = 32;

struct StagingBuffer {
  void* host = nullptr;  // pinned, `size` bytes
  size_t size = 0;
  cudaEvent_t copied = nullptr;  // recorded after the buffer's last DMA
};

class Staging {
 public:
  // Copies bytes from src into a free pinned buffer and queues its DMA to dst.
  void upload(void* dst, const void* src, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    StagingBuffer b = take(bytes);
    std::memcpy(b.host, src, bytes);
    FPA_CUDA_CHECK(cudaMemcpyAsync(dst, b.host, bytes, cudaMemcpyHostToDevice, stream()));
    FPA_CUDA_CHECK(cudaEventRecord(b.copied, stream()));
    in_flight_.push_back(b);
  }

 private:
  // A buffer of at least `bytes` whose last DMA has finished (mu_ held).
  StagingBuffer take(size_t bytes) {
    for (size_t i = 0; i < in_flight_.size(); ++i) {
      StagingBuffer& b = in_flight_[i];
      if (b.size >= bytes && cudaEventQuery(b.copied) == cudaSuccess) {
        StagingBuffer r = b;
        in_flight_.erase(in_flight_.begin() + long(i));
        return r;
      }
    }
    (void)cudaGetLastError();  // cudaEventQuery's cudaErrorNotReady is not an error
    if (in_flight_.size() >= kMaxBuffers) {  // too many: wait for the oldest, resize it if needed
      StagingBuffer b = in_flight_.front();
      in_flight_.pop_front();
      FPA_CUDA_CHECK(cudaEventSynchronize(b.copied));
      if (b.size >= bytes) return b;
      FPA_CUDA_CHECK(cudaFreeHost(b.host));
      FPA_CUDA_CHECK(cudaEventDestroy(b.copied));
    }
    StagingBuffer b;
    b.size = bytes < kMinBuffer ? kMinBuffer : bytes;
    FPA_CUDA_CHECK(cudaMallocHost(&b.host, b.size));
    FPA_CUDA_CHECK(cudaEventCreateWithFlags(&b.copied, cudaEventDisableTiming));
    return b;
  }

  std::mutex mu_;
  std::deque<StagingBuffer> in_flight_;  // every buffer, oldest DMA first
};

Staging& staging() {
  static Staging* s = new Staging();  // never destroyed: pinned memory is released at exit
  return *s;
}

}  // namespace

void from_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  FPA_CUDA_CHECK(cudaStreamIsCapturing(stream(), &capturing));
  FPA_CHECK(capturing == cudaStreamCaptureStatusNone,
            "cuda: a copy from the host while a CUDA graph is being captured (a replay would repeat it)");
  if (bytes > kMaxStaged) {
    FPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
    return;
  }
  staging().upload(dst, src, bytes);
}

}  // namespace fpa::gpu
