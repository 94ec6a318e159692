// Vector types and element-wise math shared by treeattn's C++ CPU kernels (biased_attention.cpp,
// gated_gelu.cpp): GCC/Clang vector types as wide as the host's vector registers (built with
// -march=native), whole- and part-vector load/store, exp in float32 (float64 lane by lane, the
// parity reference), and the split of a loop into one range per OpenMP thread. Part of treeattn
// (Apache-2.0).

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace treeattn_vec {

// Runs body(thread, begin, end) on contiguous ranges of [0, count), one per thread (OpenMP, if the
// build has it; threads ≥ 1).
template <typename F>
void parallel_ranges(int64_t count, int threads, const F& body) {
#ifdef _OPENMP
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t team = omp_get_num_threads(), thread = omp_get_thread_num();
      const int64_t chunk = (count + team - 1) / team;
      const int64_t begin = std::min(count, thread * chunk);
      const int64_t end = std::min(count, begin + chunk);
      if (begin < end) body(thread, begin, end);
    }
    return;
  }
#endif
  body(0, 0, count);
}

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename T>
struct VecTraits;
template <>
struct VecTraits<float> {
  typedef float vec __attribute__((vector_size(kVecBytes)));
  typedef int32_t ivec __attribute__((vector_size(kVecBytes)));
};
template <>
struct VecTraits<double> {
  typedef double vec __attribute__((vector_size(kVecBytes)));
  typedef int64_t ivec __attribute__((vector_size(kVecBytes)));
};
template <typename T>
using Vec = typename VecTraits<T>::vec;
template <typename T>
constexpr int64_t kLanes = kVecBytes / sizeof(T);

template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
inline void store(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// x in every lane. Written x − 0, which is x for every x (0 + x is not: it turns −0 into +0), so the
// compiler emits one broadcast (from memory: a load, no arithmetic) instead of an add and a shuffle.
template <typename T>
inline Vec<T> splat(T x) {
  return x - Vec<T>{};
}

// The first `count` (< kLanes) elements from p, the other lanes zero; and back, leaving the memory
// past `count` untouched. Masked moves on AVX-512, element by element elsewhere.
#if defined(__AVX512F__)
inline Vec<float> load_part(const float* p, int64_t count) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
}
inline Vec<double> load_part(const double* p, int64_t count) {
  return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << count) - 1), p);
}
inline void store_part(float* p, const Vec<float>& v, int64_t count) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << count) - 1), v);
}
inline void store_part(double* p, const Vec<double>& v, int64_t count) {
  _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << count) - 1), v);
}
#else
template <typename T>
inline Vec<T> load_part(const T* p, int64_t count) {
  Vec<T> v{};
  for (int64_t l = 0; l < count; ++l) v[l] = p[l];
  return v;
}
template <typename T>
inline void store_part(T* p, const Vec<T>& v, int64_t count) {
  for (int64_t l = 0; l < count; ++l) p[l] = v[l];
}
#endif

// `count` ≤ kLanes elements: whole vectors through plain moves (a constant count once inlined).
template <typename T>
inline Vec<T> load_n(const T* p, int64_t count) {
  return count == kLanes<T> ? load(p) : load_part(p, count);
}

template <typename T>
inline void store_n(T* p, const Vec<T>& v, int64_t count) {
  if (count == kLanes<T>) return store(p, v);
  store_part(p, v, count);
}

// exp, lane by lane (float64: the parity reference, speed irrelevant).
inline Vec<double> vexp(Vec<double> x) {
  for (int64_t l = 0; l < kLanes<double>; ++l) x[l] = std::exp(x[l]);
  return x;
}

// exp in float32, 0 below ln(FLT_MIN) (including −inf); NaN stays NaN.
#if defined(__AVX512F__)
// e^x = 2^n · 2^f with n = round(x·log2 e), |f| ≤ 1/2: a degree-6 polynomial for 2^f (fitted for
// relative error ≤ 1e-7) and vscalefps for 2^n. x is first raised to ln(FLT_MIN), so no lane ever
// computes a subnormal (Intel CPUs take a slow microcode path for those: a GELU backward over
// inputs of |x| ≳ 13 ran 2× slower); lanes below it are set to 0 at the end.
inline Vec<float> vexp(Vec<float> x) {
  const __m512 t = _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(-87.3365447505531f), x),
                                 _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const Vec<float> f = _mm512_sub_ps(t, n);
  Vec<float> p = splat(1.5337577497120947e-4f);
  p = p * f + 1.3399859890341759e-3f;
  p = p * f + 9.618519805371761e-3f;
  p = p * f + 5.550329014658928e-2f;
  p = p * f + 2.4022646248340607e-1f;
  p = p * f + 6.931471824645996e-1f;
  p = p * f + 1.0f;
  const Vec<float> result = _mm512_scalef_ps(p, n);
  return x < -87.3365447505531f ? splat(0.0f) : result;
}
#else
// x = n·ln2 + r, |r| ≤ ln2/2: a degree-6 polynomial for e^r (Cephes' expf coefficients), 2^n
// through the exponent bits.
inline Vec<float> vexp(Vec<float> x) {
  using V = Vec<float>;
  using I = VecTraits<float>::ivec;
  const V lo = splat(-87.3365447505531f);
  const V hi = splat(88.3762626647949f);
  const I under = x < lo;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const V magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer
  const V n = (x * 1.44269504088896341f + magic) - magic;
  V r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  V pow2n;
  std::memcpy(&pow2n, &bits, sizeof(pow2n));
  const V result = p * pow2n;
  return under ? splat(0.0f) : result;
}
#endif

// Natural log, lane by lane (float64: the parity reference, speed irrelevant).
inline Vec<double> vlog(Vec<double> x) {
  for (int64_t l = 0; l < kLanes<double>; ++l) x[l] = std::log(x[l]);
  return x;
}

// Natural log in float32 for x ≥ FLT_MIN (the softmax's row sums, ≥ 1), with log 0 = −inf and
// NaN and +inf kept: x = 2^n · m with m in [√½, √2), then log m by a degree-8 polynomial in m − 1
// (Cephes' logf coefficients) and n·ln 2 added in two parts.
inline Vec<float> vlog(Vec<float> x) {
  using V = Vec<float>;
  using I = VecTraits<float>::ivec;
  I bits;
  std::memcpy(&bits, &x, sizeof(bits));
  I exponent = (bits >> 23) - 126;
  bits = (bits & 0x007fffff) | 0x3f000000;  // mantissa in [½, 1)
  V m;
  std::memcpy(&m, &bits, sizeof(m));
  const I small = m < 0.707106781186547524f;
  exponent = exponent + small;  // (−1 in the lanes where it holds)
  m = small ? m + m : m;
  const V n = __builtin_convertvector(exponent, V);
  const V f = m - 1.0f;
  const V z = f * f;
  V p = splat(7.0376836292e-2f);
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  V y = p * f * z + n * -2.12194440e-4f - 0.5f * z;
  y = f + y + n * 0.693359375f;
  y = x > 0.0f ? y : splat(-std::numeric_limits<float>::infinity());
  y = x == std::numeric_limits<float>::infinity() ? x : y;
  return x == x ? y : x;  // NaN stays NaN
}

}  // namespace treeattn_vec
