// cpu_memory_log.h: for tests of memory use: while a CpuMemoryLog lives, the CPU backend's
// alloc and free are noted, giving the bytes its live allocations hold now and the most they
// held since it began (no two may live at once).
#pragma once
#include <algorithm>
#include <cstddef>
#include <unordered_map>

#include "ops/backend/backend.h"

namespace fpa {
const Backend& cpu_backend();
}

namespace fpa::test {

class CpuMemoryLog {
 public:
  CpuMemoryLog() : table_(cpu_backend()) {
    table_.alloc = [](size_t bytes) {
      void* p = cpu_backend().alloc(bytes);
      State& s = state();
      s.live[p] = bytes, s.now += bytes, s.peak = std::max(s.peak, s.now);
      return p;
    };
    table_.free = [](void* p) {
      State& s = state();
      auto it = s.live.find(p);
      if (it != s.live.end()) s.now -= it->second, s.live.erase(it);
      cpu_backend().free(p);
    };
    state() = State();
    register_backend(Device::cpu, &table_);
  }
  ~CpuMemoryLog() { register_backend(Device::cpu, &cpu_backend()); }
  CpuMemoryLog(const CpuMemoryLog&) = delete;
  CpuMemoryLog& operator=(const CpuMemoryLog&) = delete;

  size_t now() const { return state().now; }
  size_t peak() const { return state().peak; }

 private:
  struct State {
    std::unordered_map<void*, size_t> live;  // allocations made while the log lives
    size_t now = 0, peak = 0;
  };
  static State& state() {
    static State s;
    return s;
  }
  Backend table_;
};

}  // namespace fpa::test
