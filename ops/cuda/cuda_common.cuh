// cuda_common.cuh: what every file of the CUDA backend shares: error checks that throw
// fpa::Error, the one stream all work goes to, the caching allocator's entry points, scratch
// buffers, dispatch on dtype, arithmetic with explicit rounding, and the declarations of the
// primitives that cuda_backend.cu gathers into the table.
//
// Conventions: kernels are grid-stride loops over 64-bit indices (or a block per item where
// a block cooperates), started by launch() on stream(); a primitive with nothing to do returns
// before launching (an empty grid is a CUDA error).
// Nothing here synchronises: only to_host and to_host_finish wait for the device. Launching:
// cuda_launch.cuh.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "autograd/error.h"
#include "ops/backend.h"
#include "ops/cuda/cuda_launch.cuh"

namespace fpa::gpu {

// ---- errors

// Throws "cuda: WHAT: <CUDA's message> (file:line)" unless e is cudaSuccess, clearing the
// thread's last error (cuda_errors.cu).
void check_cuda(cudaError_t e, const char* what, const char* file, int line);
#define FPA_CUDA_CHECK(expr) ::fpa::gpu::check_cuda((expr), #expr, __FILE__, __LINE__)
// With FPA_CUDA_SYNC=1 and no capture open, waits for the stream after a library call (cuBLAS,
// cuDNN, a copy) and throws naming `what` if the device faulted (cuda_errors.cu).
void sync_if_requested(const char* what);

// ---- stream and memory (cuda_memory.cu)

// The one stream of the process; every kernel, copy and library call is ordered on it, so a
// block freed to the cache may be handed out again at once.
cudaStream_t stream();
// Device memory from the caching allocator (never cudaMalloc in the steady state).
void* device_alloc(size_t bytes);
// The same, nullptr where the device has not that much memory (device_alloc throws).
void* device_alloc_or_null(size_t bytes);
void device_free(void* ptr);
// Capture pools (cuda_graph.cu; the rules in ops/block_cache.h): begin_capture_pool routes
// allocations and frees into a new pool, or into `share` (a live pool), and throws while one is
// open, until end_capture_pool, which returns it (0 when none was open); release_capture_pool
// says one capture of the pool is done, and after the last its blocks are the cache's.
int begin_capture_pool(int share);
int end_capture_pool();
void release_capture_pool(int pool);
// The allocator's growing address range (cuda_address_range.cu; BlockCache::Driver's reserve,
// map, unmap): nullptr from reserve where the device cannot, or FPA_CUDA_ADDRESS_RANGE=0.
void* address_range_reserve(size_t& capacity);
bool address_range_map(void* at, size_t bytes);
void address_range_unmap(void* at, size_t bytes);

// A scratch buffer from the allocator, returned to the cache at scope end (safe: later users
// of the block are ordered after this scope's kernels on the one stream).
class Scratch {
 public:
  explicit Scratch(size_t bytes) : ptr_(bytes ? device_alloc(bytes) : nullptr) {}
  ~Scratch() {
    if (ptr_) device_free(ptr_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }

 private:
  void* ptr_;
};

// Calls body with a typed zero of the dtype: dispatch(t, [&](auto zero) { using T = decltype(zero); ... }).
template <typename F>
void dispatch(DType t, F&& body) {
  if (t == DType::f32) body(float(0));
  else body(double(0));
}

// ---- arithmetic with the rounding spelled out
// nvcc fuses a*b+c into one FMA wherever it likes, and g++ on the CPU backend does too where
// -march has FMA. Where the CUDA result must equal the CPU's bit for bit (random numbers,
// Adam), the CPU file is compiled with -ffp-contract=off (Makefile) and the kernels spell out
// every rounding with these, unfused.

__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// ---- the primitives (one .cu file per family)

// cuda_memory.cu
void* alloc(size_t bytes);
void free_(void* ptr);
void to_host(void* host_dst, const void* src, size_t bytes);
void copy(void* dst, const void* src, size_t bytes);
void cast(DType from, DType to, int64_t n, const void* src, void* dst);
void fill(DType t, int64_t n, double value, void* dst);

// cuda_elementwise.cu
void unary(DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y);
void binary(DType t, BinaryOp op, const StridedLoop& loop, const void* a, const void* b, void* out);
void copy_strided(DType t, const StridedLoop& loop, const void* src, void* dst);
void copy_many(int64_t count, const CopySpan* spans);

// cuda_reduce.cu
void reduce(DType t, ReduceOp op, const Shape& x_shape, unsigned reduce_mask, const void* x, void* y);
void softmax(DType t, int64_t outer, int64_t dim, int64_t inner, const void* x, void* y);
void softmax_backward(DType t, int64_t outer, int64_t dim, int64_t inner, const void* y, const void* g, const void* u,
                      void* dx);

// cuda_gemm.cu
void gemm(DType t, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
          int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, double beta, void* C,
          int64_t ldc, int64_t stride_c, int64_t batch);

// cuda_conv.cu
void conv2d_forward(DType t, const ConvGeom& g, const void* x, const void* w, void* y);
void conv2d_backward_data(DType t, const ConvGeom& g, const void* dy, const void* w, void* dx);
void conv2d_backward_filter(DType t, const ConvGeom& g, const void* x, const void* dy, void* dw);
void im2col(DType t, const ConvGeom& g, const void* x, void* col);
void col2im(DType t, const ConvGeom& g, const void* col, void* x);

// cuda_pool.cu
void avg_pool2d(DType t, const PoolGeom& g, const void* x, void* y);
void avg_pool2d_backward(DType t, const PoolGeom& g, const void* dy, void* dx);
void resize_nearest(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x, void* y);
void resize_nearest_backward(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* dy,
                             void* dx);

// cuda_random.cu
void rand_uniform(DType t, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, void* dst);
void rand_normal(DType t, int64_t n, uint64_t seed, uint64_t offset, double mean, double std, void* dst);
void adam_step(DType t, int64_t n, const AdamArgs& args, void* param, const void* grad, void* m, void* v);

// cuda_local_attention.cu
void neighbour_dot(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* a,
                   const void* b, void* out);
void neighbour_sum(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* w,
                   const void* x, void* out);
void neighbour_transpose(DType t, int64_t planes, int64_t H, int64_t W, int64_t kernel, const void* w, void* out);
void local_attention(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* q,
                     const void* key, const void* value, void* out, void* attn);
void local_attention_backward(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* q,
                              const void* key, const void* value, const void* attn, const void* dout, void* dq,
                              void* dkey, void* dvalue);

// cuda_paint.cu
void paint_forward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                   void* W);
void paint_backward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                    const void* dW, void* dk, void* dv, void* dbeta, void* dw0);

// cuda_lstm.cu
void lstm_gates_forward(DType t, int64_t B, int64_t H, void* gates, const void* c_prev, void* c, void* h);
void lstm_gates_backward(DType t, int64_t B, int64_t H, const void* gates, const void* c_prev, const void* c,
                         const void* dh, void* dc, void* dgates);

// cuda_channel_norm.cu
void channel_norm_forward(DType t, int64_t N, int64_t C, int64_t P, double eps, const void* x, const void* g,
                          const void* b, void* y, void* mean, void* rstd);
void channel_norm_backward(DType t, int64_t N, int64_t C, int64_t P, const void* x, const void* g, const void* mean,
                           const void* rstd, const void* dy, void* dx, void* dg, void* db);

// cuda_staging.cu
void from_host(void* dst, const void* host_src, size_t bytes);
void* to_host_start(const void* src, size_t bytes);
void to_host_finish(void* ticket, void* host_dst);

// cuda_graph.cu
void capture_begin(void* share_pool_of);
void* capture_end();
void graph_replay(void* graph);
void graph_release(void* graph);

}  // namespace fpa::gpu
