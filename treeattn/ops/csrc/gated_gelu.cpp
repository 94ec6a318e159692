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

#include <cmath>
#include <cstdint>
#include <cstring>

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

// `count` elements from p (whole vectors, or the last, partial one: its other lanes zero), and back.
inline vec load_n(const float* p, int64_t count) {
  if (count == kFloatLanes) return load(p);
  vec out{};
  std::memcpy(&out, p, count * sizeof(float));
  return out;
}

inline void store_n(float* p, vec v, int64_t count) {
  if (count == kFloatLanes) return store(p, v);
  std::memcpy(p, &v, count * sizeof(float));
}

// Runs body(i, count) over [begin, end) one vector at a time: count = kFloatLanes (a constant
// once inlined, so load_n/store_n are plain vector moves), then the partial rest.
template <typename F>
inline void each_vector(int64_t begin, int64_t end, const F& body) {
  int64_t i = begin;
  for (; i + kFloatLanes <= end; i += kFloatLanes) body(i, kFloatLanes);
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
