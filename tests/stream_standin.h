// stream_standin.h: a stand-in for a GPU and its stream, on the CPU, for testing the CUDA
// graph path of the trainer (capture, replays, losses read while the next step is queued)
// where there is no GPU. It is the CPU backend behind a queue: every primitive is queued and
// runs only when the host waits, in order, as on a CUDA stream: to_host and graph_release run
// the whole queue, to_host_finish runs it up to its copy (an event); from_host stages the
// bytes at the call, as cuda_staging.cu does. Between
// capture_begin and capture_end the primitives are recorded instead, and graph_replay queues
// the recording again. Its memory is its own, with the pool rules of the CUDA allocator
// (cuda_memory.cu): a capture allocates from a pool of its own (taking the shared cache's
// free blocks into it), kept until graph_release.
// So a host that runs ahead of the device, or a replay that touches freed memory, shows.
#pragma once
#include <cstdint>

#include "ops/backend/backend.h"
#include "ops/backend/block_cache.h"

namespace fpa::test {

struct StreamStandinCounts {
  int64_t queued = 0;    // primitives waiting to run now
  int64_t waits = 0;     // times the host waited for queued work, ever
  int64_t captures = 0;  // graphs recorded, ever
  int64_t replays = 0;   // graph_replay calls, ever
};
StreamStandinCounts stream_standin_counts();
// The stand-in's device memory: in use, cached, and their peaks (as cuda_memory_stats).
BlockCacheStats stream_standin_memory();

// Registers the stand-in as Device::cuda while it lives, then puts back what was there.
class StreamStandinAsCuda {
 public:
  StreamStandinAsCuda();
  ~StreamStandinAsCuda();
  StreamStandinAsCuda(const StreamStandinAsCuda&) = delete;
  StreamStandinAsCuda& operator=(const StreamStandinAsCuda&) = delete;

 private:
  const Backend* previous_;
};

}  // namespace fpa::test
