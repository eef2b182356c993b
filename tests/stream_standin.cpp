// stream_standin.cpp: the queued CPU backend of stream_standin.h.
#include "tests/stream_standin.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "autograd/error.h"

namespace fpa {
const Backend& cpu_backend();
}

namespace fpa::test {
namespace {

using Work = std::function<void()>;

class Standin {
 public:
  void* alloc(size_t bytes) {
    const size_t size = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    void* p = nullptr;
    for (int pool : {capturing_, 0}) {  // a capture takes the shared cache's blocks too
      std::vector<void*>& blocks = free_[pool][size];
      if (blocks.empty()) continue;
      p = blocks.back();
      blocks.pop_back();
      break;
    }
    if (!p) {
      p = std::aligned_alloc(64, size);
      FPA_CHECK(p != nullptr, "stream stand-in: out of memory");
    }
    live_[p] = Block{size, capturing_};
    return p;
  }
  void free(void* p) {
    auto it = live_.find(p);
    if (it == live_.end()) {  // called from destructors: report, never throw (as cuda_memory.cu)
      std::fprintf(stderr, "stream stand-in: free of unknown pointer %p ignored\n", p);
      return;
    }
    free_[it->second.pool][it->second.size].push_back(p);
    live_.erase(it);
  }

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
  void capture_begin() {
    FPA_CHECK(!recording_, "stream stand-in: captures do not nest");
    recording_ = true;
    capturing_ = next_pool_++;
  }
  void* capture_end() {
    FPA_CHECK(recording_, "stream stand-in: capture_end without capture_begin");
    auto* g = new Graph{std::move(recorded_), capturing_};
    recorded_.clear();
    recording_ = false;
    capturing_ = 0;
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
    for (auto& [size, blocks] : free_[g->pool])
      for (void* p : blocks) free_[0][size].push_back(p);
    free_.erase(g->pool);
    for (auto& [p, block] : live_)
      if (block.pool == g->pool) block.pool = 0;
  }

  StreamStandinCounts counts() const { return {int64_t(queue_.size()), waits_, captures_, replays_}; }

 private:
  struct Block {
    size_t size;
    int pool;  // 0: shared; otherwise the capture that allocated it
  };
  std::unordered_map<int, std::unordered_map<size_t, std::vector<void*>>> free_;  // pool -> size -> blocks
  std::unordered_map<void*, Block> live_;
  std::deque<Work> queue_, recorded_;
  bool recording_ = false;
  int capturing_ = 0, next_pool_ = 1;
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
  b.supports = [](const char*) { return true; };
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
  b.copy = QUEUED(copy);
  b.copy_many = [](int64_t count, const CopySpan* spans) {  // the host array may be gone when it runs
    auto copied = std::make_shared<std::vector<CopySpan>>(spans, spans + count);
    standin().enqueue([copied] { cpu_backend().copy_many(int64_t(copied->size()), copied->data()); });
  };
  b.cast = QUEUED(cast);
  b.fill = QUEUED(fill);
  b.unary = QUEUED(unary);
  b.binary = QUEUED(binary);
  b.copy_strided = QUEUED(copy_strided);
  b.reduce = QUEUED(reduce);
  b.softmax = QUEUED(softmax);
  b.softmax_backward = QUEUED(softmax_backward);
  b.gemm = QUEUED(gemm);
  b.conv2d_forward = QUEUED(conv2d_forward);
  b.conv2d_backward_data = QUEUED(conv2d_backward_data);
  b.conv2d_backward_filter = QUEUED(conv2d_backward_filter);
  b.im2col = QUEUED(im2col);
  b.col2im = QUEUED(col2im);
  b.avg_pool2d = QUEUED(avg_pool2d);
  b.avg_pool2d_backward = QUEUED(avg_pool2d_backward);
  b.resize_nearest = QUEUED(resize_nearest);
  b.resize_nearest_backward = QUEUED(resize_nearest_backward);
  b.rand_uniform = QUEUED(rand_uniform);
  b.rand_normal = QUEUED(rand_normal);
  b.adam_step = QUEUED(adam_step);
  b.local_attention = QUEUED(local_attention);
  b.local_attention_backward = QUEUED(local_attention_backward);
  b.neighbour_dot = QUEUED(neighbour_dot);
  b.neighbour_sum = QUEUED(neighbour_sum);
  b.neighbour_transpose = QUEUED(neighbour_transpose);
  b.paint_forward = QUEUED(paint_forward);
  b.paint_backward = QUEUED(paint_backward);
  b.lstm_gates_forward = QUEUED(lstm_gates_forward);
  b.lstm_gates_backward = QUEUED(lstm_gates_backward);
  b.channel_norm_forward = QUEUED(channel_norm_forward);
  b.channel_norm_backward = QUEUED(channel_norm_backward);
  b.capture_begin = [] { standin().capture_begin(); };
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

StreamStandinAsCuda::StreamStandinAsCuda()
    : previous_(has_backend(Device::cuda) ? &backend(Device::cuda) : nullptr) {
  register_backend(Device::cuda, &standin_backend());
}

StreamStandinAsCuda::~StreamStandinAsCuda() {
  standin().wait("the end of the stand-in's use");
  register_backend(Device::cuda, previous_);
}

}  // namespace fpa::test
