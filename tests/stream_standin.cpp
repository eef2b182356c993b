// stream_standin.cpp: the queued CPU backend of stream_standin.h.
#include "tests/stream_standin.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/error.h"
#include "ops/backend/block_cache.h"

namespace fpa {
const Backend& cpu_backend();
}

namespace fpa::test {
namespace {

using Work = std::function<void()>;

// The allocator's driver on host memory: segments from aligned_alloc; the growing range as
// addresses reserved inaccessible (mmap) and made readable and writable as it grows.
void* host_alloc(size_t bytes) { return std::aligned_alloc(4096, bytes); }
void* host_reserve(size_t& capacity) {
  capacity = size_t(64) << 30;
  void* p = mmap(nullptr, capacity, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
bool host_map(void* at, size_t bytes) { return mprotect(at, bytes, PROT_READ | PROT_WRITE) == 0; }
void host_unmap(void* at, size_t bytes) {
  madvise(at, bytes, MADV_DONTNEED);
  mprotect(at, bytes, PROT_NONE);  // a later touch faults
}

class Standin {
 public:
  // The CUDA backend's allocator (ops/backend/block_cache.h) on host memory.
  void* alloc(size_t bytes) {
    void* p = memory_.alloc(bytes);
    FPA_CHECK(p != nullptr, "stream stand-in: out of memory");
    return p;
  }
  void free(void* p) { memory_.free(p); }
  BlockCacheStats memory() const { return memory_.stats(); }

  void enqueue(Work w) { (recording_ ? recorded_ : queue_).push_back(std::move(w)); }
  // Runs the queued work in order, all of it or until *done is set (the host waits for the
  // stream, or for an event on it).
  void wait(const char* why, const bool* done = nullptr) {
    FPA_CHECK(!recording_, "stream stand-in: ", why, " waits for the device while a graph is being captured");
    if (queue_.empty() || (done && *done)) return;
    ++waits_;
    while (!queue_.empty() && !(done && *done)) {
      Work w = std::move(queue_.front());
      queue_.pop_front();
      w();
    }
  }
  void check_not_capturing(const char* what) {
    FPA_CHECK(!recording_, "stream stand-in: ", what, " while a graph is being captured (a replay would repeat it)");
  }

  struct Graph {
    std::deque<Work> work;
    int pool;
  };
  void capture_begin(void* share_pool_of) {
    FPA_CHECK(!recording_, "stream stand-in: captures do not nest");
    memory_.begin_pool(share_pool_of ? static_cast<Graph*>(share_pool_of)->pool : 0);
    recording_ = true;
  }
  void* capture_end() {
    FPA_CHECK(recording_, "stream stand-in: capture_end without capture_begin");
    auto* g = new Graph{std::move(recorded_), memory_.end_pool()};
    recorded_.clear();
    recording_ = false;
    ++captures_;
    return g;
  }
  void replay(void* graph) {
    for (const Work& w : static_cast<Graph*>(graph)->work) enqueue(w);
    ++replays_;
  }
  void release(void* graph) {
    std::unique_ptr<Graph> g(static_cast<Graph*>(graph));
    wait("graph_release");
    memory_.release_pool(g->pool);
  }

  StreamStandinCounts counts() const { return {int64_t(queue_.size()), waits_, captures_, replays_}; }

 private:
  // Blocks over 4 KiB (not 1 MiB) in the range: the tests' tiny models use it too.
  BlockCache memory_{{host_alloc, std::free, host_reserve, host_map, host_unmap}, 4096};
  std::deque<Work> queue_, recorded_;
  bool recording_ = false;
  int64_t waits_ = 0, captures_ = 0, replays_ = 0;
};

Standin& standin() {
  static Standin* s = new Standin();  // never destroyed: tensors may outlive static teardown
  return *s;
}

// An entry of the CPU table, queued: its arguments copied now (a reference's referent too),
// the CPU primitive run when the queue is.
template <typename Entry>
struct Queued;
template <typename... A>
struct Queued<void (*)(A...)> {
  template <void (*Backend::*entry)(A...)>
  static void call(A... a) {
    standin().enqueue([a...] { (cpu_backend().*entry)(a...); });
  }
};
#define QUEUED(entry) Queued<decltype(Backend::entry)>::call<&Backend::entry>

// A copy to the host in flight: filled when the queue reaches it.
struct Ticket {
  std::vector<unsigned char> bytes;
  bool done = false;
};

Backend standin_table() {
  Backend b = cpu_backend();
  b.name = "cuda (stream stand-in)";
  b.memory_bound = true;  // as the CUDA backend
  b.supports = is_primitive;
  b.alloc = [](size_t bytes) { return standin().alloc(bytes); };
  b.free = [](void* p) { standin().free(p); };
  b.to_host = [](void* dst, const void* src, size_t bytes) {
    standin().wait("to_host");
    std::memcpy(dst, src, bytes);
  };
  b.from_host = [](void* dst, const void* src, size_t bytes) {
    standin().check_not_capturing("a copy from the host");
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                              static_cast<const unsigned char*>(src) + bytes);
    standin().enqueue([dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  };
  b.to_host_start = [](const void* src, size_t bytes) -> void* {
    standin().check_not_capturing("a copy to the host");
    auto* t = new Ticket{std::vector<unsigned char>(bytes), false};
    standin().enqueue([t, src, bytes] {
      std::memcpy(t->bytes.data(), src, bytes);
      t->done = true;
    });
    return t;
  };
  b.to_host_finish = [](void* ticket, void* dst) {
    std::unique_ptr<Ticket> t(static_cast<Ticket*>(ticket));
    standin().wait("to_host_finish", &t->done);
    if (dst) std::memcpy(dst, t->bytes.data(), t->bytes.size());
  };
  // Every primitive that runs on the device, queued (ops/backend/primitives.def).
#define FPA_PRIMITIVE(fn, ret, params) b.fn = QUEUED(fn);
#define FPA_HOST_PRIMITIVE(fn, ret, params)
#define FPA_CAPTURE_PRIMITIVE(fn, ret, params)
#include "ops/backend/primitives.def"
  b.copy_many = [](int64_t count, const CopySpan* spans) {  // the host array may be gone when it runs
    auto copied = std::make_shared<std::vector<CopySpan>>(spans, spans + count);
    standin().enqueue([copied] { cpu_backend().copy_many(int64_t(copied->size()), copied->data()); });
  };
  b.capture_begin = [](void* share_pool_of) { standin().capture_begin(share_pool_of); };
  b.capture_end = [] { return standin().capture_end(); };
  b.graph_replay = [](void* g) { standin().replay(g); };
  b.graph_release = [](void* g) { standin().release(g); };
  return b;
}

const Backend& standin_backend() {
  static const Backend b = standin_table();
  return b;
}

}  // namespace

StreamStandinCounts stream_standin_counts() { return standin().counts(); }
BlockCacheStats stream_standin_memory() { return standin().memory(); }

StreamStandinAsCuda::StreamStandinAsCuda()
    : previous_(has_backend(Device::cuda) ? &backend(Device::cuda) : nullptr) {
  register_backend(Device::cuda, &standin_backend());
}

StreamStandinAsCuda::~StreamStandinAsCuda() {
  standin().wait("the end of the stand-in's use");
  register_backend(Device::cuda, previous_);
}

}  // namespace fpa::test
