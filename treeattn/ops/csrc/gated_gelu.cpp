// The gate of Hi-IR's L3 feed-forward, value·GELU(gate), forward and backward in one pass each.
//
// forward:  out = v·g(c)                       with g(x) = x·Φ(x), the exact (erf) GELU
// backward: dv = d·g(c),  dc = d·v·g'(c)       with g'(x) = Φ(x) + x·φ(x)
//
// Element-wise over contiguous arrays of n elements. PyTorch's path runs the GELU, the product and,
// in the backward, two products and the GELU gradient as separate passes over maps larger than the
// cache; here each element is read and written once per direction. float32 runs on the compiler's
// vector types (vec_math.h; the host's widest FMA with -march=native): erf by Abramowitz & Stegun
// 7.1.26 (|error| < 1.5e-7, the formula PyTorch's own vectorised erf uses) with the attention
// kernel's exp. float64 (the reference precision of the tests) calls std::erf and std::exp.
//
// Plain C++ with a C interface (no PyTorch headers), built with biased_attention.cpp into one
// library by treeattn/ops/cpu_kernel.py. Part of treeattn (Apache-2.0).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>


#include "vec_math.h"

namespace {

using namespace treeattn_vec;
using vec = Vec<float>;

constexpr int64_t kFloatLanes = kLanes<float>;
// Elements per parallel task: small arrays stay on one thread.
constexpr int64_t kChunk = 1 << 14;

constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// GELU and its derivative at x.
inline void gelu(vec x, vec& value, vec& slope) {
  const vec s = x * static_cast<float>(kSqrtHalf);
  const vec a = s < 0.0f ? -s : s;
  const vec t = 1.0f / (0.3275911f * a + 1.0f);
  vec poly = splat(1.061405429f);
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const vec e = vexp(-s * s);  // e^(−x²/2): 0 once below FLT_MIN (and for |x| = inf)
  const vec erf_a = 1.0f - e * t * poly;
  const vec cdf = 0.5f + 0.5f * (s < 0.0f ? -erf_a : erf_a);  // Φ(x)
  value = x * cdf;
  slope = cdf + x * e * static_cast<float>(kInvSqrt2Pi);
}

inline void gelu(double x, double& value, double& slope) {
  const double cdf = 0.5 + 0.5 * std::erf(x * kSqrtHalf);
  value = x * cdf;
  slope = cdf + x * std::exp(-0.5 * x * x) * kInvSqrt2Pi;
}

// float64 lane by lane (the reference precision).
inline void gelu(Vec<double> x, Vec<double>& value, Vec<double>& slope) {
  for (int64_t l = 0; l < kLanes<double>; ++l) {
    double v, s;
    gelu(x[l], v, s);
    value[l] = v;
    slope[l] = s;
  }
}

// Runs body(i, count) over [begin, end) one vector of T at a time: count = kLanes<T> (a constant
// once inlined, so load_n/store_n are plain vector moves), then the partial rest.
template <typename T = float, typename F>
inline void each_vector(int64_t begin, int64_t end, const F& body) {
  constexpr int64_t L = kLanes<T>;
  int64_t i = begin;
  for (; i + L <= end; i += L) body(i, L);
  if (i < end) body(i, end - i);
}

// Runs body(begin, end) over [0, n) in chunks of kChunk, on up to `threads` OpenMP threads.
template <typename F>
void parallel_chunks(int64_t n, int threads, const F& body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && chunks > 1)
#endif
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t begin = chunk * kChunk;
    body(begin, begin + kChunk < n ? begin + kChunk : n);
  }
#ifndef _OPENMP
  (void)threads;
#endif
}

void forward(int64_t n, const float* v, const float* c, float* out, int threads) {
  parallel_chunks(n, threads, [&](int64_t begin, int64_t end) {
    each_vector(begin, end, [&](int64_t i, int64_t count) {
      vec g, slope;
      gelu(load_n(c + i, count), g, slope);
      store_n(out + i, load_n(v + i, count) * g, count);
    });
  });
}

void backward(int64_t n, const float* d, const float* v, const float* c, float* dv, float* dc,
              int threads) {
  parallel_chunks(n, threads, [&](int64_t begin, int64_t end) {
    each_vector(begin, end, [&](int64_t i, int64_t count) {
      vec g, slope;
      gelu(load_n(c + i, count), g, slope);
      const vec grad = load_n(d + i, count);
      store_n(dv + i, grad * g, count);
      store_n(dc + i, grad * load_n(v + i, count) * slope, count);
    });
  });
}

void forward(int64_t n, const double* v, const double* c, double* out, int threads) {
  parallel_chunks(n, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double g, slope;
      gelu(c[i], g, slope);
      out[i] = v[i] * g;
    }
  });
}

void backward(int64_t n, const double* d, const double* v, const double* c, double* dv,
              double* dc, int threads) {
  parallel_chunks(n, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double g, slope;
      gelu(c[i], g, slope);
      dv[i] = d[i] * g;
      dc[i] = d[i] * v[i] * slope;
    }
  });
}


// ---------------------------------------------------------------------------------------------
// The gate with its depthwise 3×3 convolution in front, on contiguous channels-last (B, H, W, C)
// maps (the Hi-IR L3 feed-forward's hidden maps):
//
// forward:  out = v·g(c),  c(p) = bias + Σ_o w_o·gate(p + o)   over the 3×3 offsets o, zero outside
// backward: dv = d·g(c),  dc = d·v·g'(c)  (c recomputed),  dgate(q) = Σ_o w_o·dc(q − o),
//           dw_o = Σ_p dc(p)·gate(p + o),  dbias = Σ_p dc(p)
//
// so neither c nor dc is ever a map: PyTorch's path writes c, the GELU, dc and the convolution's
// input gradient as maps and reads them back. Each thread takes a contiguous range of rows and keeps
// dc for three rows in a ring; the row above and below its range are recomputed for dgate (and not
// counted in dv, dw, dbias). dw and dbias are summed a row at a time from the ring, the nine
// products of each channel vector in registers across the row (weight_sums; accumulating them in
// memory pixel by pixel took a third of the backward). The weight is the convolution's
// (C, 1, 3, 3) read as (C, 9).

struct MapShape {
  int64_t b, h, w, c, cp;  // images, rows, columns, channels; channels padded to whole vectors
};

template <typename T>
MapShape map_shape(const int64_t* sizes) {
  constexpr int64_t L = kLanes<T>;
  return {sizes[0], sizes[1], sizes[2], sizes[3], (sizes[3] + L - 1) / L * L};
}

// The weight as 9 rows of channels (offset-major) and the bias, zero padded to cp channels.
template <typename T>
void pack_conv(const MapShape& s, const T* weight, const T* bias, std::vector<T>& wp,
               std::vector<T>& bp) {
  wp.assign(9 * s.cp, T(0));
  bp.assign(s.cp, T(0));
  for (int64_t ch = 0; ch < s.c; ++ch) {
    for (int64_t o = 0; o < 9; ++o) wp[o * s.cp + ch] = weight[ch * 9 + o];
    if (bias) bp[ch] = bias[ch];
  }
}

// A pixel (y, x) of one image and its 3×3 neighbourhood: `corner` points at the top-left tap
// (channel 0) when all nine taps lie inside the map, and is null at the border. Made once per
// pixel: the channel vectors' loop then reads its taps at fixed offsets, with no test of its own
// (made per channel vector, with the row's index divided per vector, the forward took 1.11–1.15×
// and the backward 1.03–1.06× the time; a 2-core AMD EPYC, Zen 3, per-round medians,
// ab_kernel_versions.py --gate).
template <typename T>
struct Pixel {
  const T* image;
  int64_t y, x;
  const T* corner;
};

template <typename T>
inline Pixel<T> pixel_of(const MapShape& s, const T* image, int64_t y, int64_t x) {
  const bool inner = y > 0 && y + 1 < s.h && x > 0 && x + 1 < s.w;
  return {image, y, x, inner ? image + ((y - 1) * s.w + x - 1) * s.c : nullptr};
}

// Calls tap(o, at) for each 3×3 offset o = dy·3 + dx of the pixel that lies inside the map, `at`
// pointing at that neighbour's channel j: straight through for inner pixels, checked at the
// border. (Outside taps are skipped, not multiplied by zero padding: the caller leaves non-finite
// weights to PyTorch.)
template <typename T, typename F>
inline void each_tap(const MapShape& s, const Pixel<T>& px, int64_t j, const F& tap) {
  if (px.corner) {
    const T* corner = px.corner + j;
#pragma GCC unroll 3
    for (int64_t dy = 0; dy < 3; ++dy)
#pragma GCC unroll 3
      for (int64_t dx = 0; dx < 3; ++dx) tap(dy * 3 + dx, corner + (dy * s.w + dx) * s.c);
    return;
  }
  for (int64_t dy = 0; dy < 3; ++dy) {
    const int64_t yy = px.y + dy - 1;
    if (yy < 0 || yy >= s.h) continue;
    for (int64_t dx = 0; dx < 3; ++dx) {
      const int64_t xx = px.x + dx - 1;
      if (xx >= 0 && xx < s.w) tap(dy * 3 + dx, px.image + (yy * s.w + xx) * s.c + j);
    }
  }
}

// c at a pixel, channels [j, j + n); taps wp (9 rows of cp), bias bp.
template <typename T>
inline Vec<T> conv_at(const MapShape& s, const Pixel<T>& px, const T* wp, const T* bp, int64_t j,
                      int64_t n) {
  Vec<T> acc = load(bp + j);
  each_tap(s, px, j,
           [&](int64_t o, const T* at) { acc += load(wp + o * s.cp + j) * load_n(at, n); });
  return acc;
}

template <typename T>
void dwconv_gate_forward(const MapShape& s, const T* value, const T* gate, const T* weight,
                         const T* bias, T* out, int threads) {
  std::vector<T> wp, bp;
  pack_conv(s, weight, bias, wp, bp);
  const int64_t rows = s.b * s.h;
  parallel_ranges(rows, static_cast<int>(std::min<int64_t>(threads, rows)),
                [&](int64_t, int64_t begin, int64_t end) {
                  for (int64_t row = begin; row < end; ++row) {
                    const T* image = gate + row / s.h * s.h * s.w * s.c;
                    for (int64_t x = 0; x < s.w; ++x) {
                      const Pixel<T> px = pixel_of(s, image, row % s.h, x);
                      const int64_t p = (row * s.w + x) * s.c;
                      each_vector<T>(0, s.c, [&](int64_t j, int64_t n) {
                        Vec<T> g, slope;
                        gelu(conv_at(s, px, wp.data(), bp.data(), j, n), g, slope);
                        store_n(out + p + j, load_n(value + p + j, n) * g, n);
                      });
                    }
                  }
                });
}

// acc[dy·3 + dx] += d · gate row dy at column x + dx − 1 (channels j…, n of them), for the taps
// dx in [First, Last]: all three inside a row, two at its ends.
template <int First, int Last, typename T>
inline void tap_products(Vec<T> (&acc)[9], const Vec<T>& d, const T* const (&rows)[3], int64_t x,
                         int64_t c, int64_t n) {
#pragma GCC unroll 3
  for (int dy = 0; dy < 3; ++dy)
#pragma GCC unroll 3
    for (int dx = First; dx <= Last; ++dx)
      acc[dy * 3 + dx] += d * load_n(rows[dy] + (x + dx - 1) * c, n);
}

// One row's share of the weight and bias gradients: sums[o·cp + j] = Σ_x dc(x)·gate(y + dy − 1,
// x + dx − 1) for the offset o = dy·3 + dx, sums[9·cp + j] = Σ_x dc(x) — the nine products of a
// pixel in registers across the row (a row above or below the map reads `zeros`, which
// adds d·0 as the convolution's zero padding does; columns outside it are skipped).
template <typename T>
void weight_sums(const MapShape& s, const T* image, int64_t y, const T* dc, const T* zeros,
                 T* sums) {
  each_vector<T>(0, s.c, [&](int64_t j, int64_t n) {
    const T* rows[3];
    for (int64_t dy = 0; dy < 3; ++dy) {
      const int64_t yy = y + dy - 1;
      rows[dy] = (yy >= 0 && yy < s.h ? image + yy * s.w * s.c : zeros) + j;
    }
    auto at = [&](int64_t x) { return load(dc + x * s.cp + j); };
    Vec<T> acc[9] = {}, total = at(0);
    if (s.w == 1) {
      tap_products<1, 1>(acc, total, rows, 0, s.c, n);
    } else {
      tap_products<1, 2>(acc, total, rows, 0, s.c, n);
      for (int64_t x = 1; x + 1 < s.w; ++x) {
        const Vec<T> d = at(x);
        total += d;
        tap_products<0, 2>(acc, d, rows, x, s.c, n);
      }
      const Vec<T> last = at(s.w - 1);
      total += last;
      tap_products<0, 1>(acc, last, rows, s.w - 1, s.c, n);
    }
    for (int64_t o = 0; o < 9; ++o) store(sums + o * s.cp + j, acc[o]);
    store(sums + 9 * s.cp + j, total);
  });
}

template <typename T>
void dwconv_gate_backward(const MapShape& s, const T* grad, const T* value, const T* gate,
                          const T* weight, const T* bias, T* grad_value, T* grad_gate,
                          T* grad_weight, T* grad_bias, int threads) {
  std::vector<T> wp, bp;
  pack_conv(s, weight, bias, wp, bp);
  const int64_t rows = s.b * s.h;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, rows)));
  const int64_t row_size = s.w * s.cp, sums = 10 * s.cp;  // dw per offset, then dbias
  // Per thread: the ring of three dc rows, one row's sums, and the sums of its rows in double.
  std::vector<T> rings(threads * 3 * row_size), row_sums(threads * sums);
  std::vector<double> totals(threads * sums, 0.0);
  const std::vector<T> zeros(s.w * s.c + kLanes<T>, T(0));  // the rows above and below the map
  parallel_ranges(rows, threads, [&](int64_t thread, int64_t begin, int64_t end) {
    T* ring = rings.data() + thread * 3 * row_size;
    T* row_sum = row_sums.data() + thread * sums;
    double* total = totals.data() + thread * sums;
    const T* w = wp.data();
    // dc of row y of image `img` into its ring slot; `own` rows also give dv and the sums.
    auto dc_row = [&](int64_t img, int64_t y, bool own) {
      T* dc = ring + y % 3 * row_size;
      const T* image = gate + img * s.h * s.w * s.c;
      for (int64_t x = 0; x < s.w; ++x) {
        const Pixel<T> px = pixel_of(s, image, y, x);
        const int64_t p = ((img * s.h + y) * s.w + x) * s.c;
        each_vector<T>(0, s.c, [&](int64_t j, int64_t n) {
          Vec<T> g, slope;
          gelu(conv_at(s, px, w, bp.data(), j, n), g, slope);
          const Vec<T> d = load_n(grad + p + j, n);
          const Vec<T> dcv = d * load_n(value + p + j, n) * slope;  // 0 in the padding lanes
          store(dc + x * s.cp + j, dcv);
          if (own) store_n(grad_value + p + j, d * g, n);
        });
      }
      if (!own) return;
      weight_sums(s, image, y, dc, zeros.data(), row_sum);
      for (int64_t i = 0; i < sums; ++i) total[i] += row_sum[i];
    };
    // dgate of row y: Σ_o w_o·dc(y − o), from the ring.
    auto dgate_row = [&](int64_t img, int64_t y) {
      for (int64_t x = 0; x < s.w; ++x) {
        const int64_t p = ((img * s.h + y) * s.w + x) * s.c;
        each_vector<T>(0, s.c, [&](int64_t j, int64_t n) {
          Vec<T> acc{};
          if (y > 0 && y + 1 < s.h && x > 0 && x + 1 < s.w) {  // inside: all nine taps
#pragma GCC unroll 3
            for (int64_t dy = 0; dy < 3; ++dy) {
              const T* dc = ring + (y + 1 - dy) % 3 * row_size + (x + 1) * s.cp + j;
#pragma GCC unroll 3
              for (int64_t dx = 0; dx < 3; ++dx)
                acc += load(w + (dy * 3 + dx) * s.cp + j) * load(dc - dx * s.cp);
            }
            return store_n(grad_gate + p + j, acc, n);
          }
          for (int64_t dy = 0; dy < 3; ++dy) {
            const int64_t yy = y - (dy - 1);
            if (yy < 0 || yy >= s.h) continue;
            const T* dc = ring + yy % 3 * row_size;
            for (int64_t dx = 0; dx < 3; ++dx) {
              const int64_t xx = x - (dx - 1);
              if (xx < 0 || xx >= s.w) continue;
              acc += load(w + (dy * 3 + dx) * s.cp + j) * load(dc + xx * s.cp + j);
            }
          }
          store_n(grad_gate + p + j, acc, n);
        });
      }
    };
    for (int64_t row = begin; row < end;) {  // this thread's rows, image by image
      const int64_t img = row / s.h, y0 = row % s.h;
      const int64_t y1 = std::min(s.h, y0 + (end - row));
      if (y0 > 0) dc_row(img, y0 - 1, false);
      dc_row(img, y0, true);
      for (int64_t y = y0; y < y1; ++y) {
        if (y + 1 < s.h) dc_row(img, y + 1, y + 1 < y1);
        dgate_row(img, y);
      }
      row += y1 - y0;
    }
  });
  for (int64_t ch = 0; ch < s.c; ++ch) {  // the threads' sums, in thread order
    for (int64_t o = 0; o < 10; ++o) {
      double sum = 0;
      for (int64_t thread = 0; thread < threads; ++thread)
        sum += totals[thread * sums + o * s.cp + ch];
      if (o < 9)
        grad_weight[ch * 9 + o] = static_cast<T>(sum);
      else
        grad_bias[ch] = static_cast<T>(sum);
    }
  }
}

template <typename F>
int guarded(const F& body) {
  try {
    body();
    return 0;
  } catch (...) {  // out of memory before the parallel part
    return 1;
  }
}

}  // namespace

// All arrays contiguous, of n elements; value = v, gate = c, grad = d as above. Each returns 0.
#define TREEATTN_GATE_ENTRIES(T, suffix)                                                          \
  extern "C" int treeattn_gated_gelu_forward_##suffix(int64_t n, const T* value, const T* gate,  \
                                                       T* out, int threads) {                     \
    forward(n, value, gate, out, threads);                                                        \
    return 0;                                                                                     \
  }                                                                                               \
  extern "C" int treeattn_gated_gelu_backward_##suffix(int64_t n, const T* grad, const T* value, \
                                                        const T* gate, T* grad_value,             \
                                                        T* grad_gate, int threads) {              \
    backward(n, grad, value, gate, grad_value, grad_gate, threads);                               \
    return 0;                                                                                     \
  }

TREEATTN_GATE_ENTRIES(float, f32)
TREEATTN_GATE_ENTRIES(double, f64)

// sizes = (B, H, W, C); every array contiguous: value, gate, out and their gradients (B, H, W, C),
// weight and its gradient (C, 9), bias and its gradient (C) or null. Each returns 0, or 1 if it
// could not allocate its buffers.
#define TREEATTN_DWCONV_GATE_ENTRIES(T, suffix)                                                   \
  extern "C" int treeattn_dwconv_gate_forward_##suffix(const int64_t* sizes, const T* value,     \
                                                        const T* gate, const T* weight,           \
                                                        const T* bias, T* out, int threads) {     \
    return guarded([&] {                                                                         \
      dwconv_gate_forward(map_shape<T>(sizes), value, gate, weight, bias, out, threads);          \
    });                                                                                           \
  }                                                                                               \
  extern "C" int treeattn_dwconv_gate_backward_##suffix(                                          \
      const int64_t* sizes, const T* grad, const T* value, const T* gate, const T* weight,        \
      const T* bias, T* grad_value, T* grad_gate, T* grad_weight, T* grad_bias, int threads) {    \
    return guarded([&] {                                                                         \
      dwconv_gate_backward(map_shape<T>(sizes), grad, value, gate, weight, bias, grad_value,      \
                           grad_gate, grad_weight, grad_bias, threads);                           \
    });                                                                                           \
  }

TREEATTN_DWCONV_GATE_ENTRIES(float, f32)
TREEATTN_DWCONV_GATE_ENTRIES(double, f64)
