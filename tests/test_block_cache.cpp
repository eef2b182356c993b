// test_block_cache.cpp: the device caching allocator (ops/backend/block_cache.h) on a fake driver
// (host memory, with a limit): reuse without the driver, best fit, splitting and merging,
// small blocks kept out of large segments, capture pools (private, taking the shared cache's
// blocks and those freed while capturing, shared between captures, released after their last
// capture), giving the cache back
// when the driver runs out, and the peaks; then the same driver with a growing address range
// (addresses only): blocks of separate growths merging, the free end growing, unmapped when
// the cache is released, capture pools in it, and segments when mapping fails.
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

#include "ops/backend/block_cache.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

constexpr size_t MiB = size_t(1) << 20;

// Host memory standing in for the device's, at most `limit` bytes of it at once.
struct FakeDriver {
  static size_t limit, held;
  static int64_t frees;
  static std::map<void*, size_t> sizes;
  static void* alloc(size_t bytes) {
    if (held + bytes > limit) return nullptr;
    void* p = std::aligned_alloc(4096, bytes);
    held += bytes, sizes[p] = bytes;
    return p;
  }
  static void free(void* p) {
    ++frees, held -= sizes.at(p), sizes.erase(p);
    std::free(p);
  }
  // The range: addresses only (nothing is written there), its memory counted in held.
  static constexpr uintptr_t kRangeBase = uintptr_t(1) << 44;
  static bool map_fails;
  static size_t mapped;
  static void* reserve(size_t& capacity) {
    capacity = 1024 * MiB;
    return reinterpret_cast<void*>(kRangeBase);
  }
  static bool map(void* at, size_t bytes) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(at), kRangeBase + mapped) << "maps grow the range at its end";
    if (map_fails || held + bytes > limit) return false;
    held += bytes, mapped += bytes;
    return true;
  }
  static void unmap(void* at, size_t bytes) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(at) + bytes, kRangeBase + mapped) << "unmaps shrink the range at its end";
    held -= bytes, mapped -= bytes;
  }
  static void unreserve(void* base, size_t capacity) { EXPECT_EQ(mapped, 0u); }
};
size_t FakeDriver::limit = 0, FakeDriver::held = 0, FakeDriver::mapped = 0;
int64_t FakeDriver::frees = 0;
bool FakeDriver::map_fails = false;
std::map<void*, size_t> FakeDriver::sizes;

class BlockCacheTest : public ::testing::Test {
 protected:
  explicit BlockCacheTest(bool with_range = false)
      : owned(std::make_unique<BlockCache>(
            with_range ? BlockCache::Driver{FakeDriver::alloc, FakeDriver::free, FakeDriver::reserve, FakeDriver::map,
                                            FakeDriver::unmap, FakeDriver::unreserve}
                       : BlockCache::Driver{FakeDriver::alloc, FakeDriver::free})),
        cache(*owned) {}
  void SetUp() override { FakeDriver::limit = 1024 * MiB, FakeDriver::frees = 0, FakeDriver::map_fails = false; }
  void TearDown() override {
    owned.reset();
    EXPECT_EQ(FakeDriver::held, 0u) << "the cache did not give every segment back";
  }
  std::unique_ptr<BlockCache> owned;
  BlockCache& cache;
  int64_t driver_allocs() const { return cache.stats().driver_allocs; }
  static char* at(void* p) { return static_cast<char*>(p); }
};

TEST_F(BlockCacheTest, FreedBlocksAreReusedWithoutTheDriver) {
  void* p = cache.alloc(12345);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 512, 0u);
  EXPECT_EQ(cache.stats().bytes_in_use, BlockCache::rounded(12345));
  cache.free(p);
  EXPECT_EQ(cache.stats().bytes_in_use, 0u);
  const int64_t before = driver_allocs();
  EXPECT_EQ(cache.alloc(12345), p);
  EXPECT_EQ(driver_allocs(), before);
  cache.free(nullptr);  // ignored
  cache.free(p);
}

TEST_F(BlockCacheTest, SmallRequestsShareOneSegment) {
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i) blocks.push_back(cache.alloc(1001 + i % 24));  // 64 x 1 KiB, one segment
  EXPECT_EQ(driver_allocs(), 1);
  for (int i = 1; i < 64; ++i) EXPECT_EQ(at(blocks[i]) - at(blocks[i - 1]), 1024);
  for (void* p : blocks) cache.free(p);
  EXPECT_EQ(cache.stats().bytes_cached, 2 * MiB);
}

// A large free block serves smaller requests, split; freed, the pieces merge, and the whole
// block serves a request of its full size again.
TEST_F(BlockCacheTest, LargeBlocksSplitAndMergeAgain) {
  void* whole = cache.alloc(16 * MiB);
  cache.free(whole);
  void* a = cache.alloc(6 * MiB);
  void* b = cache.alloc(5 * MiB + 100);
  void* c = cache.alloc(3 * MiB);
  EXPECT_EQ(driver_allocs(), 1);
  EXPECT_EQ(a, whole);
  EXPECT_EQ(at(b), at(a) + 6 * MiB);
  EXPECT_EQ(at(c), at(b) + 5 * MiB + 512);
  EXPECT_EQ(cache.stats().bytes_in_use, 14 * MiB + 512);
  cache.free(b);  // the middle first: it merges with neither, then with both
  cache.free(a);
  cache.free(c);
  EXPECT_EQ(cache.alloc(16 * MiB), whole);
  EXPECT_EQ(driver_allocs(), 1);
  cache.free(whole);
}

// The smallest free block that fits is taken; a rest of 1 MiB or less is not split off.
TEST_F(BlockCacheTest, TakesTheBestFitAndKeepsSmallRestsWhole) {
  void* big = cache.alloc(20 * MiB);
  void* mid = cache.alloc(8 * MiB);
  cache.free(big);
  cache.free(mid);
  void* p = cache.alloc(7 * MiB + 1);  // fits both; the 8 MiB block is the best fit, its rest not split
  EXPECT_EQ(p, mid);
  EXPECT_EQ(cache.stats().bytes_in_use, 8 * MiB);
  cache.free(p);
}

// Small requests never cut large segments (which would keep them from merging back).
TEST_F(BlockCacheTest, SmallRequestsStayOutOfLargeSegments) {
  void* big = cache.alloc(4 * MiB);
  cache.free(big);
  void* small = cache.alloc(4096);
  EXPECT_EQ(driver_allocs(), 2);
  EXPECT_TRUE(at(small) < at(big) || at(small) >= at(big) + 4 * MiB);
  cache.free(small);
}

// Blocks of a capture pool go back to the pool, not to eager requests, until the pool is
// released; a capture first takes its own blocks, then the shared cache's.
TEST_F(BlockCacheTest, CapturePoolsKeepTheirBlocks) {
  void* cached = cache.alloc(3 * MiB);
  cache.free(cached);
  const int pool = cache.begin_pool();
  EXPECT_EQ(cache.capturing(), pool);
  EXPECT_ERROR(cache.begin_pool(), "captures do not nest");
  void* p = cache.alloc(3 * MiB);
  EXPECT_EQ(p, cached) << "the capture did not take the shared cache's block";
  void* q = cache.alloc(5 * MiB);
  cache.free(p);
  EXPECT_EQ(cache.end_pool(), pool);
  EXPECT_EQ(cache.capturing(), 0);
  void* eager = cache.alloc(3 * MiB);
  EXPECT_NE(eager, p) << "a block of the live pool was handed out";
  cache.free(q);  // still the pool's
  void* eager2 = cache.alloc(5 * MiB);
  EXPECT_NE(eager2, q);
  cache.release_pool(pool);
  void* back = cache.alloc(3 * MiB);
  EXPECT_EQ(back, p) << "the released pool's block should be the shared cache's";
  for (void* x : {eager, eager2, back}) cache.free(x);
}

// A block allocated before a capture and freed during it (the capture recorded kernels that use
// it) joins the capture's pool: neither eager requests nor another capture get it until the
// pool is released. Small blocks (cut from a shared segment) and large ones alike.
TEST_F(BlockCacheTest, BlocksFreedWhileCapturingJoinTheCapturesPool) {
  for (size_t bytes : {size_t(4096), 3 * MiB}) {
    void* before = cache.alloc(bytes);
    const int pool = cache.begin_pool();
    cache.free(before);
    cache.end_pool();
    void* eager = cache.alloc(bytes);
    EXPECT_NE(eager, before) << bytes << " bytes: a block the graph uses was handed to eager code";
    const int other = cache.begin_pool();
    void* captured = cache.alloc(bytes);
    cache.end_pool();
    EXPECT_NE(captured, before) << bytes << " bytes: a block the graph uses was handed to another capture";
    EXPECT_EQ(cache.begin_pool(pool), pool);
    void* same_pool = cache.alloc(bytes);  // a capture sharing the pool may reuse it
    cache.end_pool();
    EXPECT_EQ(same_pool, before) << bytes << " bytes";
    cache.free(same_pool);
    cache.release_pool(pool);
    cache.release_pool(pool);
    void* back = cache.alloc(bytes);
    EXPECT_EQ(back, before) << bytes << " bytes: the released pool's block should be the shared cache's again";
    for (void* p : {eager, captured, back}) cache.free(p);
    cache.release_pool(other);
  }
}

// A capture sharing another's pool reuses what that one freed; the pool lives until both
// captures release it.
TEST_F(BlockCacheTest, CapturesSharingAPoolReuseItsBlocks) {
  const int first = cache.begin_pool();
  void* out = cache.alloc(2 * MiB);  // the first graph's output, kept
  void* temp = cache.alloc(40 * MiB);
  cache.free(temp);
  cache.end_pool();
  const int64_t mallocs = driver_allocs();
  EXPECT_EQ(cache.begin_pool(first), first);
  void* a = cache.alloc(20 * MiB);  // two halves of the first's temporary
  void* b = cache.alloc(20 * MiB);
  cache.end_pool();
  EXPECT_EQ(a, temp);
  EXPECT_EQ(at(b), at(temp) + 20 * MiB);
  EXPECT_EQ(driver_allocs(), mallocs);
  cache.free(a), cache.free(b), cache.free(out);
  cache.release_pool(first);
  EXPECT_NE(cache.alloc(40 * MiB), temp) << "released by one capture of two, the pool was the shared cache's";
  EXPECT_ERROR(cache.begin_pool(12345), "not live");
  cache.release_pool(first);
  EXPECT_EQ(cache.alloc(40 * MiB), temp);
}

// Out of driver memory outside a capture, the shared cache's free segments are given back and
// the request retried; inside a capture (where the driver may not free) it fails.
TEST_F(BlockCacheTest, OutOfMemoryGivesTheCacheBack) {
  FakeDriver::limit = 80 * MiB;
  void* kept = cache.alloc(30 * MiB);
  void* freed = cache.alloc(30 * MiB);
  cache.free(freed);
  const int pool = cache.begin_pool();
  EXPECT_EQ(cache.alloc(40 * MiB), nullptr);
  cache.end_pool();
  cache.release_pool(pool);
  EXPECT_EQ(FakeDriver::frees, 0);
  void* p = cache.alloc(40 * MiB);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(FakeDriver::frees, 1);
  EXPECT_EQ(FakeDriver::held, 70 * MiB);
  EXPECT_EQ(cache.alloc(40 * MiB), nullptr);
  cache.free(p);
  cache.free(kept);
  cache.release_cached();
  EXPECT_EQ(FakeDriver::held, 0u);
  EXPECT_EQ(cache.stats().bytes_cached, 0u);
}

// Peaks: in use counts handed-out blocks, reserved the driver's segments; reset starts anew.
TEST_F(BlockCacheTest, PeaksOfBytesInUseAndReserved) {
  void* a = cache.alloc(8 * MiB);
  cache.free(a);
  void* b = cache.alloc(4 * MiB);   // from the cached segment: no new reserve
  void* c = cache.alloc(10 * MiB);  // a second segment
  BlockCacheStats s = cache.stats();
  EXPECT_EQ(s.peak_bytes_in_use, 14 * MiB);
  EXPECT_EQ(s.peak_bytes_reserved, 18 * MiB);
  cache.free(b), cache.free(c);
  cache.release_cached();
  cache.reset_peak();
  s = cache.stats();
  EXPECT_EQ(s.peak_bytes_in_use, 0u);
  EXPECT_EQ(s.peak_bytes_reserved, 0u);
}

class BlockCacheRangeTest : public BlockCacheTest {
 protected:
  BlockCacheRangeTest() : BlockCacheTest(true) {}
  size_t reserved() const { return cache.stats().bytes_in_use + cache.stats().bytes_cached; }
  static bool in_range(void* p) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= FakeDriver::kRangeBase && a < FakeDriver::kRangeBase + 1024 * MiB;
  }
};

// Two batches of 20 freed make room for one of 40: blocks from separate growths are
// neighbours in the range and merge (separate segments would not).
TEST_F(BlockCacheRangeTest, BlocksOfSeparateGrowthsMerge) {
  void* a = cache.alloc(80 * MiB);
  void* b = cache.alloc(80 * MiB);
  EXPECT_TRUE(in_range(a));
  EXPECT_EQ(at(b), at(a) + 80 * MiB);
  cache.free(a), cache.free(b);
  const int64_t growths = driver_allocs();
  EXPECT_EQ(cache.alloc(160 * MiB), a);
  EXPECT_EQ(driver_allocs(), growths);
  EXPECT_EQ(reserved(), 160 * MiB);
  cache.free(a);
}

// A request that no free block fits grows the free block at the range's end, mapping only
// what is missing; released, the cache unmaps the free end (whole 2 MiB steps).
TEST_F(BlockCacheRangeTest, TheFreeEndGrowsAndIsUnmappedWhenReleased) {
  void* a = cache.alloc(10 * MiB);
  void* b = cache.alloc(10 * MiB);
  cache.free(b);
  void* c = cache.alloc(30 * MiB);
  EXPECT_EQ(c, b);
  EXPECT_EQ(reserved(), 40 * MiB);
  cache.free(c);
  cache.release_cached();
  EXPECT_EQ(reserved(), 10 * MiB);
  EXPECT_EQ(FakeDriver::mapped, 10 * MiB);
  void* y = cache.alloc(5 * MiB / 2);  // [10, 12.5) MiB
  void* z = cache.alloc(5 * MiB / 2);  // [12.5, 16): the free end grown by 2 MiB
  EXPECT_EQ(at(z), at(y) + 5 * MiB / 2);
  cache.free(z);
  cache.release_cached();
  EXPECT_EQ(FakeDriver::mapped, 14 * MiB) << "the free end's part below a whole 2 MiB stays";
  cache.free(y);
  cache.free(a);
  cache.release_cached();
  EXPECT_EQ(FakeDriver::mapped, 0u);
  EXPECT_EQ(cache.alloc(4 * MiB), a) << "grown again from the base";
  cache.free(a);
}

// A capture's blocks in the range stay the capture's; a free end that belongs to a live
// pool is not grown for others: a new block follows it.
TEST_F(BlockCacheRangeTest, CapturePoolsInTheRange) {
  void* eager = cache.alloc(8 * MiB);
  cache.free(eager);
  const int pool = cache.begin_pool();
  void* p = cache.alloc(20 * MiB);  // grows the shared cache's free end: the capture's now
  EXPECT_EQ(p, eager);
  void* q = cache.alloc(4 * MiB);
  cache.free(q);  // the pool's free end
  cache.end_pool();
  void* r = cache.alloc(6 * MiB);
  EXPECT_EQ(at(r), at(q) + 4 * MiB) << "a new block after the pool's free end";
  EXPECT_EQ(reserved(), 30 * MiB);
  cache.free(r);
  cache.release_pool(pool);
  cache.free(p);
  EXPECT_EQ(cache.alloc(30 * MiB), p) << "released, the pool's blocks merge with the cache's";
  cache.free(p);
}

// Where the driver cannot map, large requests get segments of their own.
TEST_F(BlockCacheRangeTest, SegmentsWhenMappingFails) {
  FakeDriver::map_fails = true;
  void* p = cache.alloc(8 * MiB);
  EXPECT_FALSE(in_range(p));
  EXPECT_EQ(FakeDriver::mapped, 0u);
  FakeDriver::map_fails = false;
  void* q = cache.alloc(16 * MiB);
  EXPECT_TRUE(in_range(q));
  void* small = cache.alloc(4096);
  EXPECT_FALSE(in_range(small)) << "small requests share small segments";
  for (void* x : {p, q, small}) cache.free(x);
}

// Out of memory, the cache gives back its free segments and the range's free end, then retries.
TEST_F(BlockCacheRangeTest, OutOfMemoryUnmapsTheFreeEnd) {
  FakeDriver::limit = 64 * MiB;
  void* kept = cache.alloc(20 * MiB);
  void* freed = cache.alloc(30 * MiB);
  cache.free(freed);
  FakeDriver::map_fails = true;  // a segment beside the range, freed
  void* segment = cache.alloc(10 * MiB);
  FakeDriver::map_fails = false;
  cache.free(segment);
  void* p = cache.alloc(40 * MiB);  // 20 + 30 + 10 held: needs both given back
  EXPECT_EQ(at(p), at(kept) + 20 * MiB);
  EXPECT_EQ(FakeDriver::held, 60 * MiB);
  cache.free(p), cache.free(kept);
}

TEST_F(BlockCacheTest, UnknownPointersAreReportedNotThrown) {
  int not_ours = 0;
  testing::internal::CaptureStderr();
  cache.free(&not_ours);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("did not hand out"), std::string::npos);
}

}  // namespace
}  // namespace fpa::test
