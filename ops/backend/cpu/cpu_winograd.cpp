// cpu_winograd.cpp: the float32 forward pass of stride-1 convolutions by Winograd's minimal
// filtering (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
// F(4x4, 3x3) for 3x3 filters, 36 multiplications per 4x4 outputs and input channel instead of
// 144, and F(2x2, 5x5) for 5x5 filters, 36 instead of 100. Both read 6x6 input patches at the
// interpolation points 0, 1, -1, 2, -2 and infinity, so they share the input transform B^T.
//
// The output is cut into m x m tiles (m = 6 - r + 1 for r x r filters); each tile reads a 6x6
// input patch d (zeros outside the padded image). With the transforms B^T, G and A^T below,
//   U = G g G^T      (36 values per filter g (r, r); computed in double, rounded once)
//   V = B^T d B      (36 values per input patch and channel)
//   M_p = U_p V_p    one GEMM per position p of the 36: (Cout, Cin) x (Cin, tiles)
//   y = A^T m A      (m x m outputs from each tile's 36 values)
// Images are split over threads when there are enough, as the GEMM path does (cpu_conv.cpp);
// otherwise the transforms thread over channels and the GEMMs over their own tiles. An image's
// tiles run in chunks of whole tile rows, the chunk from the shape alone; so every output is
// computed the same way on any thread count and in any batch.
//
// Rounding: the transforms add and scale by small integers, so each output carries a few more
// float32 roundings than the direct sum; tests/test_conv.cpp bounds the difference. A NaN or an
// infinity in a patch makes its whole m x m tile NaN (the transforms mix the patch), where the
// direct sum spreads it only to the outputs whose windows cover it.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {
namespace {

constexpr int64_t kPatch = 6;       // input patch side: outputs per tile side + filter side - 1
constexpr int64_t kPositions = 36;  // kPatch * kPatch
constexpr int64_t kLanes = 16;      // tiles transformed together, one vector register of floats
// Floats of one chunk's V and M buffers together (1 MB, about L2): sets a chunk's tile rows.
constexpr int64_t kChunkFloats = 1 << 18;

// The finite interpolation points and the factors G's rows carry, c_j = 1 / prod_{k != j}
// (p_j - p_k): G (6, r) has rows c_j (1, p_j, ..., p_j^(r-1)) and (0, ..., 0, 1).
constexpr double kPoints[5] = {0, 1, -1, 2, -2};
constexpr double kRowFactors[5] = {1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24};

// G (6, kTaps), the filter transform.
template <int64_t kTaps>
struct FilterTransform {
  double g[kPatch][kTaps] = {};
  constexpr FilterTransform() {
    for (int j = 0; j < 5; ++j) {
      double power = 1;
      for (int i = 0; i < kTaps; ++i, power *= kPoints[j]) g[j][i] = kRowFactors[j] * power;
    }
    g[5][kTaps - 1] = 1;
  }
};

using Lanes = float[kLanes];

// out = B^T in for 6 lane vectors in[i * stride + l]: B^T's rows (4 0 -5 0 1 0), (0 -4 -4 1 1 0),
// (0 4 -4 -1 1 0), (0 -2 -1 2 1 0), (0 2 -1 -2 1 0), (0 4 0 -5 0 1).
inline void input_transform_6(const float* in, int64_t stride, Lanes* out) {
#pragma omp simd
  for (int64_t l = 0; l < kLanes; ++l) {
    const float d0 = in[l], d1 = in[stride + l], d2 = in[2 * stride + l], d3 = in[3 * stride + l],
                d4 = in[4 * stride + l], d5 = in[5 * stride + l];
    out[0][l] = 4.0f * d0 - 5.0f * d2 + d4;
    out[1][l] = -4.0f * (d1 + d2) + (d3 + d4);
    out[2][l] = 4.0f * (d1 - d2) + (d4 - d3);
    out[3][l] = 2.0f * (d3 - d1) + (d4 - d2);
    out[4][l] = 2.0f * (d1 - d3) + (d4 - d2);
    out[5][l] = 4.0f * d1 - 5.0f * d3 + d5;
  }
}

// out = A^T in for 6 lane vectors in[i * stride + l], A^T (kOut, 6) with rows p_j^a and the
// infinity column in the last row: for kOut 4 (1 1 1 1 1 0), (0 1 -1 2 -2 0), (0 1 1 4 4 0),
// (0 1 -1 8 -8 1); for kOut 2 (1 1 1 1 1 0), (0 1 -1 2 -2 1).
template <int64_t kOut>
inline void output_transform_6(const float* in, int64_t stride, Lanes* out) {
#pragma omp simd
  for (int64_t l = 0; l < kLanes; ++l) {
    const float m0 = in[l], m1 = in[stride + l], m2 = in[2 * stride + l], m3 = in[3 * stride + l],
                m4 = in[4 * stride + l], m5 = in[5 * stride + l];
    const float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
    out[0][l] = m0 + s12 + s34;
    if constexpr (kOut == 4) {
      out[1][l] = d12 + 2.0f * d34;
      out[2][l] = s12 + 4.0f * s34;
      out[3][l] = d12 + 8.0f * d34 + m5;
    } else {
      out[1][l] = d12 + 2.0f * d34 + m5;
    }
  }
}

// U (36, Cout, Cin) from w (Cout, Cin, kTaps, kTaps).
template <int64_t kTaps>
std::vector<float> filter_transform(const ConvGeom& g, const float* w) {
  static constexpr FilterTransform<kTaps> G;
  std::vector<float> u(kPositions * g.Cout * g.Cin);
  const int64_t filters = g.Cout * g.Cin;
#pragma omp parallel for schedule(static) if (filters * 200 > kParallelGrain && !omp_in_parallel())
  for (int64_t f = 0; f < filters; ++f) {
    const float* k = w + f * kTaps * kTaps;  // (kTaps, kTaps)
    double gk[kPatch][kTaps] = {};           // G k
    for (int i = 0; i < kPatch; ++i)
      for (int j = 0; j < kTaps; ++j)
        for (int t = 0; t < kTaps; ++t) gk[i][j] += G.g[i][t] * k[t * kTaps + j];
    for (int i = 0; i < kPatch; ++i)
      for (int j = 0; j < kPatch; ++j) {
        double sum = 0;  // (G k G^T)[i][j]
        for (int t = 0; t < kTaps; ++t) sum += gk[i][t] * G.g[j][t];
        u[(i * kPatch + j) * filters + f] = float(sum);
      }
  }
  return u;
}

// The tiling of one image (tiles of kOut x kOut outputs) and its chunks of tile rows.
template <int64_t kOut>
struct Tiling {
  int64_t tile_rows, tile_cols, chunk_rows;
  int64_t row_width;  // padded input row: enough columns for whole lane groups of tiles
  explicit Tiling(const ConvGeom& g) {
    tile_rows = (g.OH + kOut - 1) / kOut;
    tile_cols = (g.OW + kOut - 1) / kOut;
    row_width = (tile_cols + kLanes - 1) / kLanes * kLanes * kOut + kPatch - kOut;
    const int64_t per_row = kPositions * (g.Cin + g.Cout) * tile_cols;
    chunk_rows = std::clamp<int64_t>(kChunkFloats / per_row, 1, tile_rows);
  }
  int64_t chunk_floats(const ConvGeom& g) const { return kPositions * (g.Cin + g.Cout) * chunk_rows * tile_cols; }
};

// V (Cin, 36, tiles) of tile rows [r0, r0 + rows) of one image x (Cin, H, W).
template <int64_t kOut>
void input_tiles(const ConvGeom& g, const Tiling<kOut>& t, const float* x, int64_t r0, int64_t rows, float* v,
                 bool threaded) {
  const int64_t tiles = rows * t.tile_cols;
#pragma omp parallel if (threaded && g.Cin * rows > 1)
  {
    std::vector<float> padded(kPatch * t.row_width);  // (6, row_width): the patch rows, zero outside
    alignas(64) Lanes d[kPatch][kPatch], bd[kPatch][kPatch], v36[kPatch][kPatch];
#pragma omp for schedule(static)
    for (int64_t job = 0; job < g.Cin * rows; ++job) {
      const int64_t c = job / rows, tr = job % rows;
      const int64_t ih0 = (r0 + tr) * kOut - g.pad_h;
      std::fill(padded.begin(), padded.end(), 0.0f);
      for (int64_t r = 0; r < kPatch; ++r) {
        const int64_t ih = ih0 + r;
        if (ih < 0 || ih >= g.H) continue;
        std::memcpy(padded.data() + r * t.row_width + g.pad_w, x + (c * g.H + ih) * g.W, g.W * sizeof(float));
      }
      for (int64_t tc0 = 0; tc0 < t.tile_cols; tc0 += kLanes) {
        for (int64_t r = 0; r < kPatch; ++r)
          for (int64_t k = 0; k < kPatch; ++k) {
            const float* src = padded.data() + r * t.row_width + tc0 * kOut + k;
#pragma omp simd
            for (int64_t l = 0; l < kLanes; ++l) d[k][r][l] = src[l * kOut];  // d transposed: columns first
          }
        for (int64_t k = 0; k < kPatch; ++k) input_transform_6(d[k][0], kLanes, bd[k]);  // bd[k][i] = (B^T d)[i][k]
        for (int64_t i = 0; i < kPatch; ++i)
          input_transform_6(bd[0][i], kPatch * kLanes, v36[i]);  // v36[i][j] = (B^T d B)[i][j]
        const int64_t n = std::min(kLanes, t.tile_cols - tc0);
        float* dst = v + c * kPositions * tiles + tr * t.tile_cols + tc0;
        for (int64_t p = 0; p < kPositions; ++p) {
          const float* from = v36[p / kPatch][p % kPatch];
          float* to = dst + p * tiles;
          if (n == kLanes) {
            std::memcpy(to, from, sizeof(Lanes));
          } else {
#pragma omp simd
            for (int64_t l = 0; l < kLanes; ++l)
              if (l < n) to[l] = from[l];
          }
        }
      }
    }
  }
}

// y rows of tile rows [r0, r0 + rows) of one image, y (Cout, OH, OW), from M (Cout, 36, tiles).
template <int64_t kOut>
void output_tiles(const ConvGeom& g, const Tiling<kOut>& t, const float* m, int64_t r0, int64_t rows, float* y,
                  bool threaded) {
  const int64_t tiles = rows * t.tile_cols;
#pragma omp parallel if (threaded && g.Cout * rows > 1)
  {
    std::vector<float> out_rows(kOut * t.row_width);  // (kOut, row_width)
    alignas(64) Lanes am[kPatch][kOut], y16[kOut][kOut];
#pragma omp for schedule(static)
    for (int64_t job = 0; job < g.Cout * rows; ++job) {
      const int64_t c = job / rows, tr = job % rows;
      for (int64_t tc0 = 0; tc0 < t.tile_cols; tc0 += kLanes) {
        // Lanes past the row's last tile read the next tiles or the buffer's padding: unused.
        const float* src = m + c * kPositions * tiles + tr * t.tile_cols + tc0;
        for (int64_t j = 0; j < kPatch; ++j)
          output_transform_6<kOut>(src + j * tiles, kPatch * tiles, am[j]);  // am[j][a] = (A^T m)[a][j]
        for (int64_t a = 0; a < kOut; ++a)
          output_transform_6<kOut>(am[0][a], kOut * kLanes, y16[a]);  // y16[a][b] = (A^T m A)[a][b]
        for (int64_t a = 0; a < kOut; ++a)
          for (int64_t b = 0; b < kOut; ++b) {
            float* dst = out_rows.data() + a * t.row_width + tc0 * kOut + b;
#pragma omp simd
            for (int64_t l = 0; l < kLanes; ++l) dst[l * kOut] = y16[a][b][l];
          }
      }
      for (int64_t a = 0; a < kOut; ++a) {
        const int64_t oh = (r0 + tr) * kOut + a;
        if (oh < g.OH) std::memcpy(y + (c * g.OH + oh) * g.OW, out_rows.data() + a * t.row_width, g.OW * sizeof(float));
      }
    }
  }
}

bool disabled_by_environment() {
  static const bool off = env_switch_on("FPA_NO_WINOGRAD");
  return off;
}

// The convolution by F(kOut x kOut, kTaps x kTaps).
template <int64_t kTaps>
void winograd_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  constexpr int64_t kOut = kPatch - kTaps + 1;
  const Tiling<kOut> t(g);
  const std::vector<float> u = filter_transform<kTaps>(g, w);  // (36, Cout, Cin)
  const int64_t chunk_floats = t.chunk_floats(g);
  auto image = [&](int64_t n, float* scratch, bool threaded) {
    const float* xn = x + n * g.Cin * g.H * g.W;  // (Cin, H, W)
    float* yn = y + n * g.Cout * g.OH * g.OW;     // (Cout, OH, OW)
    for (int64_t r0 = 0; r0 < t.tile_rows; r0 += t.chunk_rows) {
      const int64_t rows = std::min(t.chunk_rows, t.tile_rows - r0), tiles = rows * t.tile_cols;
      float* v = scratch;                               // (Cin, 36, tiles)
      float* m = scratch + kPositions * g.Cin * tiles;  // (Cout, 36, tiles)
      input_tiles(g, t, xn, r0, rows, v, threaded);
      gemm_products(DType::f32, false, false, g.Cout, tiles, g.Cin, 1.0, u.data(), g.Cin, g.Cout * g.Cin, v,
                    kPositions * tiles, tiles, 0.0, m, kPositions * tiles, tiles, kPositions, kPositions);
      output_tiles(g, t, m, r0, rows, yn, threaded);
    }
  };
  const int threads = omp_get_max_threads();
  if (threads > 1 && g.N >= threads && !omp_in_parallel()) {
#pragma omp parallel
    {
      std::unique_ptr<float[]> scratch(new float[chunk_floats + kLanes]());
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.N; ++n) image(n, scratch.get(), false);
    }
  } else {
    std::unique_ptr<float[]> scratch(new float[chunk_floats + kLanes]());
    for (int64_t n = 0; n < g.N; ++n) image(n, scratch.get(), true);
  }
}

}  // namespace

bool winograd_applies(DType t, const ConvGeom& g) {
  return t == DType::f32 && g.groups == 1 && g.KH == g.KW && (g.KH == 3 || g.KH == 5) && g.stride_h == 1 &&
         g.stride_w == 1 && g.Cin >= kWinogradMinChannels && g.Cout >= kWinogradMinChannels &&
         g.OH >= kWinogradMinSide && g.OW >= kWinogradMinSide && !disabled_by_environment();
}

void conv2d_forward_winograd(const ConvGeom& g, const float* x, const float* w, float* y) {
  if (g.KH == 3) winograd_forward<3>(g, x, w, y);
  else winograd_forward<5>(g, x, w, y);
}

}  // namespace fpa::cpu
