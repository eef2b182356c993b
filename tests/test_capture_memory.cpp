// test_capture_memory.cpp: device memory around a CUDA graph, on the stream stand-in
// (tests/stream_standin.h: the CPU primitives queued, captured and replayed, with the CUDA
// allocator's pool rules). A tensor allocated before a capture and freed inside it is still
// written by every replay, so eager code must not get its memory while the graph lives.
#include <gtest/gtest.h>

#include <vector>

#include "ops/backend/backend.h"
#include "tests/stream_standin.h"

namespace fpa::test {
namespace {

TEST(CaptureMemory, ATensorFreedInsideACaptureIsNotReusedWhileTheGraphLives) {
  StreamStandinAsCuda standin;
  const Backend& be = backend(Device::cuda);
  const int64_t n = 1 << 16;  // large enough for the range, and a 4 KiB small block below
  for (int64_t count : {n, int64_t(256)}) {
    SCOPED_TRACE(count);
    const size_t bytes = size_t(count) * sizeof(float);
    void* before = be.alloc(bytes);  // e.g. the last eager step's activations
    be.capture_begin(nullptr);
    be.fill(DType::f32, count, 3.0, before);  // recorded: every replay writes `before`
    be.free(before);
    void* graph = be.capture_end();
    void* eager = be.alloc(bytes);
    EXPECT_NE(eager, before) << "eager code was handed a block the graph writes";
    be.fill(DType::f32, count, 7.0, eager);
    be.graph_replay(graph);
    std::vector<float> host(size_t(count), 0.0f);
    be.to_host(host.data(), eager, bytes);
    EXPECT_EQ(host.front(), 7.0f) << "a replay overwrote eager data";
    EXPECT_EQ(host.back(), 7.0f) << "a replay overwrote eager data";
    be.free(eager);
    be.graph_release(graph);
    void* after = be.alloc(bytes);
    EXPECT_EQ(after, before) << "released with its graph, the block should be the shared cache's again";
    be.free(after);
  }
}

}  // namespace
}  // namespace fpa::test
