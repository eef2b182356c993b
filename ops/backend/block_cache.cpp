// block_cache.cpp: the caching allocator of block_cache.h: segments and a growing range from
// the driver, blocks cut from them best fit, merged again when freed, kept per pool (0: the
// shared cache).
#include "ops/backend/block_cache.h"

#include <fmt/format.h>

#include <cstdio>
#include <vector>

#include "autograd/error.h"

namespace fpa {
namespace {

constexpr size_t kAlign = 512;                    // every block's size and offset
constexpr size_t kSegmentStep = size_t(2) << 20;  // small segments' size; large ones round up to it

size_t round_up(size_t n, size_t step) { return (n + step - 1) / step * step; }

}  // namespace

BlockCache::BlockCache(Driver driver, size_t small_max) : driver_(driver), small_max_(small_max) {
  FPA_CHECK(small_max % kAlign == 0 && small_max > 0 && small_max <= kSegmentStep, "device allocator: small_max ",
            small_max, " is not a multiple of ", kAlign, " up to ", kSegmentStep);
}

BlockCache::~BlockCache() {
  std::vector<Block*> segments;  // each segment's first block, free or in use
  for (auto& [pool_and_kind, blocks] : free_)
    for (Block* b : blocks)
      if (!b->prev && !in_range(b)) segments.push_back(b);
  for (auto& [p, b] : live_)
    if (!b->prev && !in_range(b)) segments.push_back(b);
  auto delete_blocks = [](Block* first) {
    for (Block* b = first; b;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
  };
  for (Block* first : segments) {
    driver_.free(first->ptr);
    delete_blocks(first);
  }
  delete_blocks(range_head_);
  if (range_mapped_) driver_.unmap(range_, range_mapped_);
  if (range_ && driver_.unreserve) driver_.unreserve(range_, range_capacity_);
}

size_t BlockCache::rounded(size_t bytes) { return bytes == 0 ? kAlign : round_up(bytes, kAlign); }

void* BlockCache::alloc(size_t bytes) {
  const size_t size = rounded(bytes);
  const bool small = size <= small_max_;
  std::lock_guard<std::mutex> lock(mu_);
  Block* b = capturing_ ? take_free(capturing_, small, size) : nullptr;
  if (!b) b = take_free(0, small, size);  // a capture takes the shared cache's blocks too
  auto from_driver = [&] {
    Block* got = small ? nullptr : grow_range(size);
    return got ? got : new_segment(small, size);
  };
  if (!b) b = from_driver();
  if (!b && capturing_ == 0) {  // the driver is out of memory: give it the cache, try once more
    release_cached_locked();
    b = from_driver();
  }
  if (!b) return nullptr;
  b->in_use = true;  // before split, so the rest does not merge back into it
  split(b, size);
  b->pool = capturing_;
  live_[b->ptr] = b;
  in_use_ += b->size;
  if (in_use_ > peak_) peak_ = in_use_;
  return b->ptr;
}

void BlockCache::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    fmt::print(stderr, "fpa: free of a pointer the device allocator did not hand out ({}) ignored\n", p);
    return;
  }
  Block* b = it->second;
  live_.erase(it);
  in_use_ -= b->size;
  // Kernels recorded before this free may use the block at every replay: a shared-cache block
  // freed while capturing joins the capture's pool.
  if (capturing_ != 0 && b->pool == 0) b->pool = capturing_;
  give_back(b);
}

void BlockCache::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void BlockCache::release_cached_locked() {
  for (bool small : {false, true}) {
    FreeBlocks& blocks = free_blocks(0, small);
    for (auto it = blocks.begin(); it != blocks.end();) {
      Block* b = *it;
      if (b->prev || b->next || in_range(b)) {  // part of a segment partly in use or another pool's; the range
        ++it;
        continue;
      }
      it = blocks.erase(it);
      driver_.free(b->ptr);
      reserved_ -= b->size;
      delete b;
    }
  }
  unmap_free_range_end();
}

void BlockCache::unmap_free_range_end() {
  Block* tail = range_tail();
  if (!tail || tail->in_use || tail->pool != 0) return;
  const size_t start = size_t(tail->ptr - range_), from = round_up(start, kSegmentStep);
  if (from >= range_mapped_) return;
  driver_.unmap(range_ + from, range_mapped_ - from);
  reserved_ -= range_mapped_ - from;
  range_mapped_ = from;
  free_blocks(0, false).erase(tail);
  if (start == from) {  // the whole block is gone
    if (tail->prev) tail->prev->next = nullptr;
    else range_head_ = nullptr;
    delete tail;
  } else {  // the part below the first whole 2 MiB stays
    tail->size = from - start;
    free_blocks(0, false).insert(tail);
  }
}

int BlockCache::begin_pool(int share) {
  std::lock_guard<std::mutex> lock(mu_);
  FPA_CHECK(capturing_ == 0, "device allocator: a capture is already open (captures do not nest)");
  if (share != 0) {
    auto it = pool_users_.find(share);
    FPA_CHECK(it != pool_users_.end(), "device allocator: capture pool ", share,
              " to share is not live (released, or never opened)");
    ++it->second;
    capturing_ = share;
  } else {
    capturing_ = next_pool_++;
    pool_users_[capturing_] = 1;
  }
  return capturing_;
}

int BlockCache::end_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  const int pool = capturing_;
  capturing_ = 0;
  return pool;
}

void BlockCache::release_pool(int pool) {
  std::lock_guard<std::mutex> lock(mu_);
  auto users = pool_users_.find(pool);
  if (users == pool_users_.end() || --users->second > 0) return;
  pool_users_.erase(users);
  for (bool small : {false, true}) {
    auto found = free_.find({pool, small});
    if (found == free_.end()) continue;
    FreeBlocks blocks = std::move(found->second);
    free_.erase(found);
    for (Block* b : blocks) {  // no two are neighbours (they would have merged)
      b->pool = 0;
      give_back(b);
    }
  }
  for (auto& [p, b] : live_)  // freed later, these go to the shared cache
    if (b->pool == pool) b->pool = 0;
}

int BlockCache::capturing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return capturing_;
}

BlockCacheStats BlockCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BlockCacheStats s;
  s.driver_allocs = driver_allocs_;
  s.bytes_in_use = in_use_;
  s.bytes_cached = reserved_ - in_use_;
  s.peak_bytes_in_use = peak_;
  s.peak_bytes_reserved = peak_reserved_;
  s.bytes_in_range = range_mapped_;
  return s;
}

void BlockCache::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  peak_ = in_use_;
  peak_reserved_ = reserved_;
}

BlockCache::Block* BlockCache::take_free(int pool, bool small, size_t size) {
  auto found = free_.find({pool, small});
  if (found == free_.end()) return nullptr;
  FreeBlocks& blocks = found->second;
  Block key{nullptr, size, pool, false, small, nullptr, nullptr};
  auto it = blocks.lower_bound(&key);  // the smallest that fits, the lowest address among equals
  if (it == blocks.end()) return nullptr;
  Block* b = *it;
  blocks.erase(it);
  return b;
}

BlockCache::Block* BlockCache::new_segment(bool small, size_t size) {
  const size_t bytes = small ? kSegmentStep : round_up(size, kSegmentStep);
  void* p = driver_.alloc(bytes);
  if (!p) return nullptr;
  took_from_driver(bytes);
  // A capture's new segment is wholly the capture's: the rest split off stays in its pool.
  return new Block{static_cast<char*>(p), bytes, capturing_, false, small, nullptr, nullptr};
}

BlockCache::Block* BlockCache::grow_range(size_t size) {
  if (!driver_.reserve || !driver_.map || !driver_.unmap) return nullptr;
  if (!range_tried_) {  // reserved at the first large request, once
    range_tried_ = true;
    size_t capacity = 0;
    range_ = static_cast<char*>(driver_.reserve(capacity));
    range_capacity_ = range_ ? capacity / kSegmentStep * kSegmentStep : 0;
  }
  if (!range_) return nullptr;
  // A free last block that this request may take grows; otherwise a new block follows it.
  Block* tail = range_tail();
  const bool extend = tail && !tail->in_use && (tail->pool == capturing_ || tail->pool == 0);
  const size_t more = round_up(size - (extend ? tail->size : 0), kSegmentStep);
  if (more > range_capacity_ - range_mapped_ || !driver_.map(range_ + range_mapped_, more)) return nullptr;
  took_from_driver(more);
  Block* b = nullptr;
  if (extend) {
    free_blocks(tail->pool, false).erase(tail);
    tail->size += more;
    b = tail;
  } else {  // like a capture's new segment, the capture's
    b = new Block{range_ + range_mapped_, more, capturing_, false, false, tail, nullptr};
    if (tail) tail->next = b;
    else range_head_ = b;
  }
  range_mapped_ += more;
  return b;
}

void BlockCache::took_from_driver(size_t bytes) {
  ++driver_allocs_;
  reserved_ += bytes;
  if (reserved_ > peak_reserved_) peak_reserved_ = reserved_;
}

BlockCache::Block* BlockCache::range_tail() const {
  Block* b = range_head_;
  while (b && b->next) b = b->next;
  return b;
}

void BlockCache::split(Block* b, size_t size) {
  const size_t rest = b->size - size;
  if (b->small ? rest < kAlign : rest <= small_max_) return;  // not worth a block of its own
  Block* r = new Block{b->ptr + size, rest, b->pool, false, b->small, b, b->next};
  if (b->next) b->next->prev = r;
  b->next = r;
  b->size = size;
  give_back(r);
}

void BlockCache::give_back(Block* b) {
  b->in_use = false;
  // Each free neighbour (out of its free set first) merges with b: the upper block's bytes go
  // to the lower one, the upper one is deleted.
  auto mergeable = [&](Block* n) { return n && !n->in_use && n->pool == b->pool; };
  auto absorb = [](Block* lower, Block* upper) {
    lower->size += upper->size;
    lower->next = upper->next;
    if (upper->next) upper->next->prev = lower;
    delete upper;
  };
  if (mergeable(b->prev)) {
    Block* prev = b->prev;
    free_blocks(prev->pool, prev->small).erase(prev);
    absorb(prev, b);
    b = prev;
  }
  if (mergeable(b->next)) {
    free_blocks(b->next->pool, b->next->small).erase(b->next);
    absorb(b, b->next);
  }
  free_blocks(b->pool, b->small).insert(b);
}

}  // namespace fpa
