// block_cache.h: the caching allocator of a device whose memory is expensive to get (a
// cudaMalloc synchronises the GPU), in host code, so the CPU tests check the very logic the
// CUDA backend (ops/backend/cuda/cuda_memory.cu) and the stream stand-in (tests/) run.
//
// Memory is taken from the driver in segments and handed out as blocks cut from them:
// requests are rounded up to 512 B; those up to 1 MiB (small_max) come from 2 MiB segments
// shared by many small blocks. Larger ones come from one address range that grows: the driver reserves
// addresses once and maps memory at the range's end, 2 MiB at a time, as it is needed (CUDA's
// virtual memory management; PyTorch's "expandable segments"), so any two free neighbours in it
// merge, and a batch of 40 can use what two batches of 20 freed. Where the driver has no such
// range, or mapping fails, large requests get segments of their own size rounded up to 2 MiB.
// A request takes the smallest free block that fits (best fit) and splits off the rest when
// the rest is worth keeping (512 B for small blocks, over small_max for large ones); a freed
// block merges with its free neighbours. So a training step, which allocates the same sizes in the
// same order every time, calls the driver only in its first steps.
//
// Capture pools (CUDA graphs): between begin_pool and end_pool, blocks come from the pool's
// own free blocks, else from the shared cache's (then they are the pool's), else from the
// driver, and when freed they go back to the pool, never to the shared cache: a replay still
// writes them, so nothing outside the pool may be handed them until release_pool. So does a
// block allocated before the capture and freed during it (the kernels recorded before its free
// still use it at every replay): it joins the open pool. Captures may
// share one pool (begin_pool(pool)): a later capture then reuses what an earlier one freed,
// which is safe when the pool's graphs replay one at a time, each one's outputs read (or no
// longer needed) before another replays. The pool goes back to the shared cache when every
// capture that opened it has released it.
//
// Freeing never calls the driver (safe from destructors at exit); release_cached returns the
// shared cache's wholly free segments and unmaps the range's free end, and alloc does so once,
// then retries, when the driver is out of memory outside a capture. Thread-safe (one mutex).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

namespace fpa {

struct BlockCacheStats {
  int64_t driver_allocs = 0;       // segments taken from the driver, and growths of the range, ever
  size_t bytes_in_use = 0;         // blocks handed out (rounded sizes)
  size_t bytes_cached = 0;         // held from the driver but free (capture pools' included)
  size_t peak_bytes_in_use = 0;    // the most in use since the start or reset_peak
  size_t peak_bytes_reserved = 0;  // the most held (in use + cached) over the same time
  size_t bytes_in_range = 0;       // held in the growing address range (a part of in use + cached)
};

class BlockCache {
 public:
  // Segments; and optionally (reserve, map and unmap set) the growing range: reserve returns
  // its base, or nullptr when there is none, having set capacity (bytes); map backs
  // [at, at + bytes) with memory, false when it cannot; unmap takes it back (at and bytes:
  // multiples of 2 MiB from the base, whole earlier maps or not); unreserve (optional) gives
  // the addresses back when the cache is destroyed.
  struct Driver {
    void* (*alloc)(size_t bytes);  // nullptr when out of memory; may throw for other errors
    void (*free)(void* p);
    void* (*reserve)(size_t& capacity) = nullptr;
    bool (*map)(void* at, size_t bytes) = nullptr;
    void (*unmap)(void* at, size_t bytes) = nullptr;
    void (*unreserve)(void* base, size_t capacity) = nullptr;
  };
  // small_max: requests up to this many bytes (1 MiB; a multiple of 512, at most 2 MiB) share
  // small segments, and a large block's rest is split off when larger.
  explicit BlockCache(Driver driver, size_t small_max = size_t(1) << 20);
  ~BlockCache();  // every segment and the range back to the driver, blocks in use too
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // A block of at least `bytes` (512-byte aligned when the driver's segments are), or nullptr
  // when the driver has no more memory.
  void* alloc(size_t bytes);
  // Gives a block back; nullptr is ignored, a pointer not handed out is reported on stderr
  // (never thrown: destructors call this).
  void free(void* p);
  // Returns the shared cache's wholly free segments to the driver, and unmaps the range's free end.
  void release_cached();

  // Opens a capture pool (a new one when share is 0, else `share`, which must be live) and
  // returns it; throws while another is open (captures do not nest).
  int begin_pool(int share = 0);
  // Closes the open pool and returns it (0 when none was open).
  int end_pool();
  // One capture of the pool is done with it; after the last, its blocks are the shared cache's.
  void release_pool(int pool);
  int capturing() const;

  BlockCacheStats stats() const;
  void reset_peak();

  static size_t rounded(size_t bytes);  // what a request of `bytes` takes

 private:
  struct Block {
    char* ptr;
    size_t size;
    int pool;       // 0: the shared cache; otherwise a capture pool
    bool in_use;
    bool small;     // cut from a small-block segment
    Block* prev;    // address-order neighbours within the segment (or the range)
    Block* next;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using FreeBlocks = std::set<Block*, BySizeThenAddress>;

  FreeBlocks& free_blocks(int pool, bool small) { return free_[{pool, small}]; }
  Block* take_free(int pool, bool small, size_t size);  // best fit, removed from its set; or nullptr
  Block* new_segment(bool small, size_t size);          // or nullptr
  Block* grow_range(size_t size);                       // a block of at least size at the range's end, or nullptr
  Block* range_tail() const;                            // the range's last block, or nullptr
  void took_from_driver(size_t bytes);                  // a new segment or growth: counted, peak
  bool in_range(const Block* b) const { return range_ && b->ptr >= range_ && b->ptr < range_ + range_capacity_; }
  void split(Block* b, size_t size);                    // b (in use) keeps `size`; the rest a free block
  void give_back(Block* b);                             // into its pool's free set, merged with neighbours
  void release_cached_locked();
  void unmap_free_range_end();

  Driver driver_;
  size_t small_max_;
  mutable std::mutex mu_;
  std::map<std::pair<int, bool>, FreeBlocks> free_;  // (pool, small) -> free blocks
  std::unordered_map<void*, Block*> live_;          // blocks handed out, by address
  std::unordered_map<int, int> pool_users_;         // capture pool -> captures that have not released it
  size_t in_use_ = 0, reserved_ = 0, peak_ = 0, peak_reserved_ = 0;
  int64_t driver_allocs_ = 0;
  int capturing_ = 0, next_pool_ = 1;
  // The growing range: [range_, range_ + range_mapped_) is backed; its blocks from range_head_ on.
  bool range_tried_ = false;
  char* range_ = nullptr;
  size_t range_capacity_ = 0, range_mapped_ = 0;
  Block* range_head_ = nullptr;
};

}  // namespace fpa
