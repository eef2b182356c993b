// fake_cuda_runtime.h: the CUDA runtime calls of the backend's host code (cuda_errors.cu,
// cuda_graph.cu, cuda_staging.cu), faked for the host emulation (cuda_host_shim.h includes
// this), so its error handling runs where there is no GPU and faults can be injected.
//
// Modelled on the runtime's documented behaviour, no more: every failing call sets the
// thread's last error, which cudaGetLastError returns and clears; one stream, whose work runs
// at once (so it is always idle), except that `busy` makes events recorded meanwhile "not
// ready" until synchronised (or reset); a capture is open between cudaStreamBeginCapture
// and cudaStreamEndCapture, and waiting for the stream during it fails and invalidates it
// (cudaStreamEndCapture then fails too). Faults to inject:
//   emu::fail_next["cudaStreamBeginCapture"] = cudaErrorUnknown;  // that call's next result
//   emu::fault_after_kernel = "unary";  // the next launch of that kernel faults on the device:
//                                       // the next wait for the stream reports it, once
// Kernels still run at once and their captures record nothing: this is for error paths only.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

namespace emu {

inline thread_local cudaError_t last_error = cudaSuccess;
inline std::map<std::string, cudaError_t> fail_next;
inline std::string fault_after_kernel;
inline cudaError_t device_fault = cudaSuccess;  // raised by a kernel, reported by the next wait
inline bool capturing = false, capture_invalidated = false, busy = false;
inline std::set<cudaEvent_t> pending_events;  // recorded while busy, not yet waited for

// The result of a call: an injected failure for `call`, else `ok`; a failure becomes the last error.
inline cudaError_t result(const char* call, cudaError_t ok = cudaSuccess) {
  auto it = fail_next.find(call);
  cudaError_t e = ok;
  if (it != fail_next.end()) e = it->second, fail_next.erase(it);
  if (e != cudaSuccess) last_error = e;
  return e;
}

// After each emulated launch (cuda_launch.cuh): the injected fault of that kernel, if any.
inline void kernel_ran(const char* name) {
  if (fault_after_kernel.empty() || fault_after_kernel != name) return;
  device_fault = cudaErrorIllegalAddress;
  fault_after_kernel.clear();
}

// Every event done, no fault, no capture: the state a test starts from.
inline void reset() {
  last_error = cudaSuccess, device_fault = cudaSuccess;
  fail_next.clear(), fault_after_kernel.clear(), pending_events.clear();
  capturing = capture_invalidated = busy = false;
}

inline cudaError_t get_last_error() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
inline cudaError_t peek_at_last_error() { return last_error; }
inline const char* get_error_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    default: return "an emulated CUDA error";
  }
}

// Waiting for the stream: refused while capturing (which invalidates the capture); else the
// device's fault, once.
inline cudaError_t wait_for_stream(const char* call) {
  if (capturing) {
    capture_invalidated = true;
    return result(call, cudaErrorStreamCaptureUnsupported);
  }
  const cudaError_t fault = device_fault;
  device_fault = cudaSuccess;
  pending_events.clear();
  return result(call, fault);
}

inline cudaError_t stream_synchronize(cudaStream_t) { return wait_for_stream("cudaStreamSynchronize"); }
inline cudaError_t stream_is_capturing(cudaStream_t, cudaStreamCaptureStatus* status) {
  *status = !capturing ? cudaStreamCaptureStatusNone
                       : capture_invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return result("cudaStreamIsCapturing");
}
inline cudaError_t stream_begin_capture(cudaStream_t, cudaStreamCaptureMode) {
  const cudaError_t e = result("cudaStreamBeginCapture", capturing ? cudaErrorIllegalState : cudaSuccess);
  if (e == cudaSuccess) capturing = true, capture_invalidated = false;
  return e;
}
inline cudaError_t stream_end_capture(cudaStream_t, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!capturing) return result("cudaStreamEndCapture", cudaErrorIllegalState);
  capturing = false;
  const cudaError_t e =
      result("cudaStreamEndCapture", capture_invalidated ? cudaErrorStreamCaptureInvalidated : cudaSuccess);
  if (e == cudaSuccess) *graph = reinterpret_cast<cudaGraph_t>(new char);
  return e;
}
inline cudaError_t graph_instantiate(cudaGraphExec_t* exec, cudaGraph_t, unsigned long long) {
  *exec = nullptr;
  const cudaError_t e = result("cudaGraphInstantiate");
  if (e == cudaSuccess) *exec = reinterpret_cast<cudaGraphExec_t>(new char);
  return e;
}
inline cudaError_t graph_launch(cudaGraphExec_t, cudaStream_t) { return result("cudaGraphLaunch"); }
inline cudaError_t graph_destroy(cudaGraph_t g) {
  delete reinterpret_cast<char*>(g);
  return cudaSuccess;
}
inline cudaError_t graph_exec_destroy(cudaGraphExec_t g) {
  delete reinterpret_cast<char*>(g);
  return cudaSuccess;
}

inline cudaError_t event_create_with_flags(cudaEvent_t* event, unsigned) {
  *event = reinterpret_cast<cudaEvent_t>(new char);
  return result("cudaEventCreateWithFlags");
}
inline cudaError_t event_destroy(cudaEvent_t event) {
  pending_events.erase(event);
  delete reinterpret_cast<char*>(event);
  return cudaSuccess;
}
inline cudaError_t event_record(cudaEvent_t event, cudaStream_t) {
  if (busy) pending_events.insert(event);
  else pending_events.erase(event);
  return result("cudaEventRecord");
}
inline cudaError_t event_query(cudaEvent_t event) {
  return result("cudaEventQuery", pending_events.count(event) ? cudaErrorNotReady : cudaSuccess);
}
inline cudaError_t event_synchronize(cudaEvent_t event) {
  pending_events.erase(event);
  return result("cudaEventSynchronize");
}
inline cudaError_t malloc_host(void** p, size_t bytes) {
  *p = std::malloc(bytes);
  return result("cudaMallocHost", *p ? cudaSuccess : cudaErrorMemoryAllocation);
}
inline cudaError_t free_host(void* p) {
  std::free(p);
  return cudaSuccess;
}

}  // namespace emu

#define cudaGetLastError emu::get_last_error
#define cudaPeekAtLastError emu::peek_at_last_error
#define cudaGetErrorString emu::get_error_string
#define cudaStreamSynchronize emu::stream_synchronize
#define cudaStreamIsCapturing emu::stream_is_capturing
#define cudaStreamBeginCapture emu::stream_begin_capture
#define cudaStreamEndCapture emu::stream_end_capture
#define cudaGraphInstantiate emu::graph_instantiate
#define cudaGraphLaunch emu::graph_launch
#define cudaGraphDestroy emu::graph_destroy
#define cudaGraphExecDestroy emu::graph_exec_destroy
#define cudaEventCreateWithFlags emu::event_create_with_flags
#define cudaEventDestroy emu::event_destroy
#define cudaEventRecord emu::event_record
#define cudaEventQuery emu::event_query
#define cudaEventSynchronize emu::event_synchronize
#define cudaMallocHost emu::malloc_host
#define cudaFreeHost emu::free_host
