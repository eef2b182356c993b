// cpu_backend.cpp: the CPU backend's table: memory, casts and fills here, the compute
// primitives from the other ops/backend/cpu files.
//
// Memory comes from a cache of freed blocks keyed by size: a training step allocates the
// same sizes every step, so after the first one nothing reaches the OS (no page faults on
// fresh pages, which cost as much as a large GEMM here). Up to 2 GiB is kept cached.
// Under AddressSanitizer (make test-asan) nothing is cached and no size is rounded up, so a
// kernel reading past its tensor or a tensor used after it was freed is reported at once.
#include <fmt/format.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa {
namespace cpu {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizing = true;
#else
constexpr bool kSanitizing = false;
#endif

class SizeBucketCache {
 public:
  // Rounded up to 64 B and reused from the cache; under ASan exactly `bytes`, always fresh, so
  // the sanitizer's red zone starts at the tensor's end.
  void* alloc(size_t bytes) {
    const size_t size = kSanitizing ? bytes : (bytes + 63) / 64 * 64;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        live_[p] = size;
        return p;
      }
    }
    void* p = nullptr;
    FPA_CHECK(posix_memalign(&p, 64, size ? size : 1) == 0, "cpu: out of memory allocating ", bytes, " bytes");
    std::lock_guard<std::mutex> lock(mu_);
    live_[p] = size;
    return p;
  }
  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) {  // as the CUDA allocator: report, never throw (destructors call this)
      fmt::print(stderr, "fpa: cpu free of a pointer it did not hand out ({}) ignored\n", p);
      return;
    }
    size_t size = it->second;
    live_.erase(it);
    if (kSanitizing || cached_ + size > kMaxCached) return std::free(p);
    free_[size].push_back(p);
    cached_ += size;
  }

 private:
  static constexpr size_t kMaxCached = size_t(2) << 30;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
  size_t cached_ = 0;
};

SizeBucketCache& cache() {
  static SizeBucketCache* c = new SizeBucketCache();  // never destroyed: tensors may outlive static teardown
  return *c;
}

}  // namespace

void* alloc(size_t bytes) { return cache().alloc(bytes); }
void free(void* p) { cache().free(p); }
// An empty tensor has no storage (nullptr): memcpy's pointers must not be null even for 0 bytes.
void copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
// Device memory is host memory.
void to_host(void* dst, const void* src, size_t bytes) { copy(dst, src, bytes); }
void from_host(void* dst, const void* src, size_t bytes) { copy(dst, src, bytes); }
void copy_many(int64_t count, const CopySpan* spans) {
  for (int64_t i = 0; i < count; ++i) copy(spans[i].dst, spans[i].src, spans[i].bytes);
}

// The CPU has nothing in flight: the copy is made at once into the ticket, a heap block that
// holds the byte count and then the bytes.
void* to_host_start(const void* src, size_t bytes) {
  auto* ticket = static_cast<unsigned char*>(std::malloc(sizeof(size_t) + bytes));
  FPA_CHECK(ticket != nullptr, "cpu: out of memory allocating ", bytes, " bytes");
  std::memcpy(ticket, &bytes, sizeof(size_t));
  copy(ticket + sizeof(size_t), src, bytes);
  return ticket;
}
void to_host_finish(void* ticket, void* host_dst) {
  auto* t = static_cast<unsigned char*>(ticket);
  size_t bytes;
  std::memcpy(&bytes, t, sizeof(size_t));
  if (host_dst) copy(host_dst, t + sizeof(size_t), bytes);
  std::free(t);
}

void cast(DType from, DType to, int64_t n, const void* src, void* dst) {
  if (from == to) return copy(dst, src, n * dtype_size(from));
  dispatch(from, [&](auto zf) {
    using F = decltype(zf);
    dispatch(to, [&](auto zt) {
      using T = decltype(zt);
      const F* s = static_cast<const F*>(src);
      T* d = static_cast<T*>(dst);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) d[i] = T(s[i]);
    });
  });
}

void fill(DType t, int64_t n, double value, void* dst) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    T* d = static_cast<T*>(dst);
    T v = T(value);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] = v;
  });
}

// The CPU runs every primitive as it is called: nothing to capture.
void capture_begin(void*) { fail("capture_begin: the CPU backend runs eagerly and does not capture"); }
void* capture_end() { fail("capture_end: the CPU backend runs eagerly and does not capture"); }
void graph_replay(void*) { fail("graph_replay: the CPU backend runs eagerly and does not capture"); }
void graph_release(void*) { fail("graph_release: the CPU backend runs eagerly and does not capture"); }

namespace {

// Every primitive but the capture ones.
bool supports(const char* name) {
  return is_primitive(name) && std::strncmp(name, "capture", 7) != 0 && std::strncmp(name, "graph", 5) != 0;
}

}  // namespace
}  // namespace cpu

const Backend& cpu_backend() {
  static const Backend b = [] {
    Backend t{};
    t.name = "cpu";
    t.supports = cpu::supports;
    t.summary = [] {
      const std::string gemm = cpu::gemm_implementation();  // loads the BLAS first: the count after it
      return fmt::format("OpenMP, {} threads; GEMM: {}", omp_get_max_threads(), gemm);
    };
#define FPA_PRIMITIVE(fn, ret, params) t.fn = cpu::fn;
#include "ops/backend/primitives.def"
    return t;
  }();
  return b;
}

}  // namespace fpa
