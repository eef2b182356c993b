// cuda_graph.cu: capture and replay (the backend table's capture_begin, capture_end,
// graph_replay, graph_release) with CUDA graphs.
//
// capture_begin opens a capture pool in the allocator (cuda_memory.cu; or reopens the pool of
// the graph it is given, which the two then share) and starts capturing
// the backend's one stream, so every kernel, copy, cuBLAS and cuDNN call queued until
// capture_end is recorded instead of run. Relaxed mode: cudaMalloc may still be called while
// recording (a pool that needs a new block gets one). capture_end instantiates the graph;
// graph_replay launches it on the stream (asynchronous, like any kernel); graph_release waits
// for the stream, destroys the graph and returns its pool to the cache (after its last graph).
// What the caller must guarantee (train/trainer.cpp does): everything a capture reads that
// changes between replays lives in device buffers allocated before the capture and refilled
// before each replay (stream-ordered copies); nothing reads device memory on the host while
// recording; cuDNN's algorithm search and cuBLAS's setup have run before (an eager step).
#include "ops/backend/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

struct CapturedGraph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
};

}  // namespace

void capture_begin(void* share_pool_of) {
  // throws while another capture is open, or when the graph to share with is released
  begin_capture_pool(share_pool_of ? static_cast<CapturedGraph*>(share_pool_of)->pool : 0);
  const cudaError_t e = cudaStreamBeginCapture(stream(), cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    release_capture_pool(end_capture_pool());
    check_cuda(e, "cudaStreamBeginCapture", __FILE__, __LINE__);
  }
}

void* capture_end() {
  const int pool = end_capture_pool();
  FPA_CHECK(pool != 0, "cuda: capture_end without capture_begin");
  auto* captured = new CapturedGraph;
  captured->pool = pool;
  cudaError_t e = cudaStreamEndCapture(stream(), &captured->graph);
  if (e == cudaSuccess) e = cudaGraphInstantiate(&captured->exec, captured->graph, 0);
  if (e != cudaSuccess) {
    if (captured->graph) cudaGraphDestroy(captured->graph);
    release_capture_pool(captured->pool);
    delete captured;
    check_cuda(e, "capturing a CUDA graph (cudaStreamEndCapture / cudaGraphInstantiate)", __FILE__, __LINE__);
  }
  return captured;
}

void graph_replay(void* graph) {
  FPA_CHECK(graph != nullptr, "cuda: graph_replay of a null graph");
  FPA_CUDA_CHECK(cudaGraphLaunch(static_cast<CapturedGraph*>(graph)->exec, stream()));
}

void graph_release(void* graph) {
  if (!graph) return;
  auto* captured = static_cast<CapturedGraph*>(graph);
  // Nothing may still run with the pool's blocks; errors are reported, never thrown (destructors call this).
  if (cudaStreamSynchronize(stream()) != cudaSuccess) (void)cudaGetLastError();
  if (captured->exec) cudaGraphExecDestroy(captured->exec);
  if (captured->graph) cudaGraphDestroy(captured->graph);
  release_capture_pool(captured->pool);
  delete captured;
}

}  // namespace fpa::gpu
