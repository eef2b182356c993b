// alloc_trace.cpp: recording and playing back alloc_trace.h's list of allocations.
#include "tools/alloc_trace.h"

#include "autograd/error.h"

namespace fpa::tools {
namespace {

// A driver of addresses only: nothing behind them is ever touched.
uintptr_t g_next_address = uintptr_t(1) << 40;
void* address_alloc(size_t bytes) {
  void* p = reinterpret_cast<void*>(g_next_address);
  g_next_address += bytes;
  return p;
}
void address_free(void*) {}
void* address_reserve(size_t& capacity) {
  capacity = size_t(1) << 40;
  return address_alloc(capacity);
}
bool address_map(void*, size_t) { return true; }
void address_unmap(void*, size_t) {}

}  // namespace

void AllocTrace::alloc(void* p, size_t bytes) {
  live_[p] = allocations_;
  events_.push_back({Kind::alloc, bytes, allocations_++});
}

void AllocTrace::free(void* p) {
  auto it = live_.find(p);
  if (it == live_.end()) return;
  events_.push_back({Kind::free, 0, it->second});
  live_.erase(it);
}

void AllocTrace::begin_capture() { events_.push_back({Kind::begin_capture, 0, 0}); }
void AllocTrace::end_capture() { events_.push_back({Kind::end_capture, 0, 0}); }

BlockCacheStats AllocTrace::play(bool captures_share_a_pool, bool address_range) const {
  BlockCache cache(address_range ? BlockCache::Driver{address_alloc, address_free, address_reserve, address_map,
                                                      address_unmap}
                                 : BlockCache::Driver{address_alloc, address_free});
  std::vector<void*> pointers(size_t(allocations_), nullptr);  // allocation number -> its block
  int shared_pool = 0;
  for (const Event& e : events_) {
    switch (e.kind) {
      case Kind::alloc:
        pointers[size_t(e.id)] = cache.alloc(e.bytes);
        FPA_CHECK(pointers[size_t(e.id)] != nullptr, "alloc_trace: the address driver ran out");
        break;
      case Kind::free:
        cache.free(pointers[size_t(e.id)]);
        break;
      case Kind::begin_capture: {
        const int pool = cache.begin_pool(captures_share_a_pool ? shared_pool : 0);
        if (captures_share_a_pool) shared_pool = pool;
        break;
      }
      case Kind::end_capture:
        cache.end_pool();
        break;
    }
  }
  return cache.stats();
}

}  // namespace fpa::tools
