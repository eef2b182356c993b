// alloc_trace.h: a device's allocations and frees as a list, with the captures marked, played
// back into the CUDA backend's allocator (ops/backend/block_cache.h) on a driver that hands out
// addresses only: the device memory a run would hold (reserved), and how it depends on whether
// the captured steps share one memory pool, without a GPU. Used by count_kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ops/backend/block_cache.h"

namespace fpa::tools {

class AllocTrace {
 public:
  void alloc(void* p, size_t bytes);
  void free(void* p);  // pointers not recorded as allocated are ignored
  // What is allocated between these is the capture's (a graph's), kept until the end.
  void begin_capture();
  void end_capture();

  // The allocator's figures after playing the whole list back: the captures each with a pool
  // of their own or all in one shared pool; large blocks in the growing address range or in
  // segments of their own (as cudaMalloc gives them).
  BlockCacheStats play(bool captures_share_a_pool, bool address_range) const;

 private:
  enum class Kind { alloc, free, begin_capture, end_capture };
  struct Event {
    Kind kind;
    size_t bytes;  // alloc: the size asked for
    int64_t id;    // alloc and free: the allocation's number
  };
  std::vector<Event> events_;
  std::unordered_map<void*, int64_t> live_;  // pointer -> allocation number
  int64_t allocations_ = 0;
};

}  // namespace fpa::tools
