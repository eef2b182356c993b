// cuda_staging.cu: copies between host and device that never wait for the device: the
// backend's from_host, and to_host_start / to_host_finish.
//
// A copy from ordinary (pageable) host memory may make the driver wait for the stream before
// it stages the bytes, which would stall the host behind every queued kernel: the training
// loop could not prepare step k+1 while the GPU runs step k. So the bytes are first copied
// (on the host, at once: the caller may reuse its memory on return) into a pinned staging
// buffer, whose DMA is then queued on the stream, followed by an event. A buffer is handed out
// again only once its event has completed. Buffers are kept for the process (cudaMallocHost is
// slow); at most kMaxBuffers exist, beyond that the oldest copy is waited for. Copies larger
// than kMaxStaged bytes (checkpoints) go directly from the caller's memory.
//
// The other way (a step's losses, read while the next step is queued): to_host_start queues
// the DMA into a staging buffer, records its event and hands the buffer out as the ticket;
// to_host_finish waits for that event alone, copies the bytes out and returns the buffer.
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>

#include "ops/backend/cuda/cuda_common.cuh"

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

  // Queues the DMA of bytes from src into a pinned buffer, owned by the ticket until finish.
  StagingBuffer start_download(const void* src, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    StagingBuffer b = take(bytes);
    FPA_CUDA_CHECK(cudaMemcpyAsync(b.host, src, bytes, cudaMemcpyDeviceToHost, stream()));
    FPA_CUDA_CHECK(cudaEventRecord(b.copied, stream()));
    return b;
  }
  // Waits for the download's DMA, copies its bytes out (unless dst is null), keeps the buffer.
  void finish_download(const StagingBuffer& b, void* dst, size_t bytes) {
    const cudaError_t waited = cudaEventSynchronize(b.copied);
    if (waited == cudaSuccess && dst) std::memcpy(dst, b.host, bytes);
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.push_back(b);  // its event has completed: free for the next take
    FPA_CUDA_CHECK(waited);
  }

 private:
  // A buffer of at least `bytes` whose last DMA has finished (mu_ held).
  StagingBuffer take(size_t bytes) {
    for (size_t i = 0; i < in_flight_.size(); ++i) {
      StagingBuffer& b = in_flight_[i];
      if (b.size >= bytes && copied(b)) {
        StagingBuffer r = b;
        in_flight_.erase(in_flight_.begin() + long(i));
        return r;
      }
    }
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

  // Whether the buffer's last DMA has finished. cudaEventQuery's "not ready" is not an error,
  // but the runtime keeps it as the thread's last error: cleared at once, or the next launch
  // would report it.
  static bool copied(const StagingBuffer& b) {
    const cudaError_t e = cudaEventQuery(b.copied);
    if (e == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    FPA_CUDA_CHECK(e);
    return true;
  }

  std::mutex mu_;
  std::deque<StagingBuffer> in_flight_;  // every buffer, oldest DMA first
};

Staging& staging() {
  static Staging* s = new Staging();  // never destroyed: pinned memory is released at exit
  return *s;
}

// A download in flight: its buffer and how many of its bytes are the caller's.
struct Download {
  StagingBuffer buffer;
  size_t bytes;
};

void check_not_capturing(const char* what) {
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  FPA_CUDA_CHECK(cudaStreamIsCapturing(stream(), &capturing));
  FPA_CHECK(capturing == cudaStreamCaptureStatusNone, "cuda: ", what,
            " while a CUDA graph is being captured (a replay would repeat it)");
}

}  // namespace

void from_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check_not_capturing("a copy from the host");
  if (bytes > kMaxStaged) {
    FPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
    return;
  }
  staging().upload(dst, src, bytes);
}

void* to_host_start(const void* src, size_t bytes) {
  check_not_capturing("a copy to the host");
  auto d = std::make_unique<Download>(Download{StagingBuffer{}, bytes});
  if (bytes > 0) d->buffer = staging().start_download(src, bytes);
  return d.release();
}

void to_host_finish(void* ticket, void* host_dst) {
  std::unique_ptr<Download> d(static_cast<Download*>(ticket));
  if (d->bytes > 0) staging().finish_download(d->buffer, host_dst, d->bytes);
}

}  // namespace fpa::gpu
