// Window attention with an additive bias shared by all windows, forward and backward, on the CPU.
//
// softmax(q·kᵀ·scale + bias)·v for q, k (N, H, T, D), v (N, H, T, E) and bias (1, H, T, T); the
// backward returns the gradients of q, k, v and of the bias, summed over the N windows. Each
// (head, window) pair is one task: its q, k, v are in small cache-resident buffers (packed per
// task, or a small window's rows copied once for all its heads) and its T×T map is built a block
// at a time, kept in L1/L2 — a block of query rows at a time (the row form, kRowBlock rows) in
// windows larger than kColumnFormTokens, transposed with a few vectors of queries across (the
// column form) in smaller ones. The forward never stores a map, and the
// backward rebuilds each block of maps as exp(logits − lse) from the forward's log-sum-exp. Every
// product is one register-tiled kernel (`tile`) over GCC/Clang vector types, so the compiler emits
// the host's widest FMA (built with -march=native).
//
// Plain C++ with a C interface (no PyTorch headers, so it builds in seconds): the caller passes
// data pointers, shapes and element strides, and allocates the outputs; OpenMP threads, if the
// build has it. Part of treeattn (Apache-2.0); built on first use by treeattn/ops/cpu_kernel.py.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>


#include "vec_math.h"

namespace {

using namespace treeattn_vec;

#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kAccumulators = 24;  // of 32 vector registers
#else
constexpr int kAccumulators = 12;  // of 16
#endif
// Most vectors of columns one tile holds: its accumulators, one row of B and a broadcast of A
// must fit the register file.
constexpr int kMaxColumnVecs = kAccumulators >= 24 ? 4 : 3;
// Query rows per block of maps in the row form: 128 × 256 floats (128 KiB; the backward's two maps
// 256 KiB) stay in L2 with the packed inputs. Against 48 rows, the backward at 256 tokens took
// 2–8 % less time on one thread and 2–7 % on two (per-round medians of two A/Bs each; the products
// that sum the key and value gradients over a block run deeper), the forward the same (a 2-core
// AMD EPYC, Zen 3; 64 rows: 8 % less on one thread, from 2 % less to 9 % more on two).
constexpr int64_t kRowBlock = 128;

// Sum and maximum of a vector's lanes, as a tree (log2(lanes) dependent steps, not lanes).
template <typename T>
inline T horizontal_sum(Vec<T> v) {
  T lanes[kLanes<T>];
  store(lanes, v);
  for (int64_t width = kLanes<T> / 2; width > 0; width /= 2)
    for (int64_t l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}

template <typename T>
inline T horizontal_max(Vec<T> v) {
  T lanes[kLanes<T>];
  store(lanes, v);
  for (int64_t width = kLanes<T> / 2; width > 0; width /= 2)
    for (int64_t l = 0; l < width; ++l) lanes[l] = std::max(lanes[l], lanes[l + width]);
  return lanes[0];
}

// C[r, :] (=, or += when Accumulate) Σ_k A(r, k) · B[k, :] for R rows and CV vectors of columns;
// A(r, k) = a[r·a_row + k·a_depth] is broadcast, B's rows are vectors.
template <typename T, int R, int CV, bool Accumulate>
inline void tile(int64_t depth, const T* a, int64_t a_row, int64_t a_depth, const T* b,
                 int64_t b_row, T* c, int64_t c_row) {
  using V = Vec<T>;
  constexpr int64_t L = kLanes<T>;
  V acc[R][CV];
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < CV; ++j) acc[r][j] = Accumulate ? load(c + r * c_row + j * L) : V{};
  }
  for (int64_t k = 0; k < depth; ++k) {
    V bk[CV];
#pragma GCC unroll 4
    for (int j = 0; j < CV; ++j) bk[j] = load(b + k * b_row + j * L);
    const T* ak = a + k * a_depth;
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      const V ar = splat(ak[r * a_row]);
#pragma GCC unroll 4
      for (int j = 0; j < CV; ++j) acc[r][j] += ar * bk[j];
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < CV; ++j) store(c + r * c_row + j * L, acc[r][j]);
  }
}

template <typename T, int CV, bool Accumulate>
void gemm_columns(int64_t rows, int64_t depth, const T* a, int64_t a_row, int64_t a_depth,
                  const T* b, int64_t b_row, T* c, int64_t c_row) {
  constexpr int R = kAccumulators / CV;
  int64_t r = 0;
  for (; r + R <= rows; r += R)
    tile<T, R, CV, Accumulate>(depth, a + r * a_row, a_row, a_depth, b, b_row, c + r * c_row,
                               c_row);
  if constexpr (R > 4) {
    for (; r + 4 <= rows; r += 4)
      tile<T, 4, CV, Accumulate>(depth, a + r * a_row, a_row, a_depth, b, b_row, c + r * c_row,
                                 c_row);
  }
  if constexpr (R > 2) {
    for (; r + 2 <= rows; r += 2)
      tile<T, 2, CV, Accumulate>(depth, a + r * a_row, a_row, a_depth, b, b_row, c + r * c_row,
                                 c_row);
  }
  for (; r < rows; ++r)
    tile<T, 1, CV, Accumulate>(depth, a + r * a_row, a_row, a_depth, b, b_row, c + r * c_row,
                               c_row);
}

// C (rows × vecs·L, row stride c_row) = (or +=) A (rows × depth) · B (depth × vecs·L).
template <typename T, bool Accumulate>
void gemm(int64_t rows, int64_t vecs, int64_t depth, const T* a, int64_t a_row, int64_t a_depth,
          const T* b, int64_t b_row, T* c, int64_t c_row) {
  constexpr int64_t L = kLanes<T>;
  int64_t v = 0;
  for (; v + kMaxColumnVecs <= vecs; v += kMaxColumnVecs)
    gemm_columns<T, kMaxColumnVecs, Accumulate>(rows, depth, a, a_row, a_depth, b + v * L, b_row,
                                                c + v * L, c_row);
  switch (vecs - v) {
    case 3:
      gemm_columns<T, 3, Accumulate>(rows, depth, a, a_row, a_depth, b + v * L, b_row, c + v * L,
                                     c_row);
      break;
    case 2:
      gemm_columns<T, 2, Accumulate>(rows, depth, a, a_row, a_depth, b + v * L, b_row, c + v * L,
                                     c_row);
      break;
    case 1:
      gemm_columns<T, 1, Accumulate>(rows, depth, a, a_row, a_depth, b + v * L, b_row, c + v * L,
                                     c_row);
      break;
    default:
      break;
  }
}

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// A strided (N, H, rows, cols) array read as (n, h) slices.
template <typename T>
struct Strided {
  const T* data;
  int64_t s0, s1, s2, s3;
  Strided(const T* data_, const int64_t* strides)
      : data(data_), s0(strides[0]), s1(strides[1]), s2(strides[2]), s3(strides[3]) {}
  const T* slice(int64_t n, int64_t h) const { return data + n * s0 + h * s1; }
};

// Rows of the strided q, k, v (and their gradients) lie a projection's width apart, so each task
// reads (and writes) a few bytes of many rows: the hardware prefetchers do not fetch them early, so
// the loops over rows ask for the row kPrefetchRows ahead (its first and last element).
constexpr int64_t kPrefetchRows = 8;

template <int Write = 0, typename T>
inline void prefetch_row(const T* row, int64_t cols, int64_t sc) {
  __builtin_prefetch(row, Write);
  __builtin_prefetch(row + (cols - 1) * sc, Write);
}

// Every cache line of `rows` rows (a whole task's slice: asked for one task ahead, so the lines
// arrive while that task computes; all at once they would overrun the cache's miss queue).
template <int Write = 0, typename T>
inline void prefetch_slice(const T* slice, int64_t rows, int64_t cols, int64_t sr, int64_t sc) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t i = 0; i < rows; ++i) {
    const T* row = slice + i * sr;
    if (sc == 1)
      for (int64_t e = kLine; e < cols; e += kLine) __builtin_prefetch(row + e, Write);
    prefetch_row<Write>(row, cols, sc);
  }
}

// rows × cols of src (row stride sr, column stride sc) · factor into dst (row stride ld), zero
// padded to ld columns.
template <typename T>
void pack_rows(const T* src, int64_t rows, int64_t cols, int64_t sr, int64_t sc, T factor, T* dst,
               int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) {
    if (i + kPrefetchRows < rows) prefetch_row(src + (i + kPrefetchRows) * sr, cols, sc);
    for (int64_t d = 0; d < cols; ++d) dst[i * ld + d] = src[i * sr + d * sc] * factor;
    for (int64_t d = cols; d < ld; ++d) dst[i * ld + d] = 0;
  }
}

// The transpose times factor: dst[d, i] = src[i, d] · factor, zero padded to ld columns.
template <typename T>
void pack_transposed(const T* src, int64_t rows, int64_t cols, int64_t sr, int64_t sc, T factor,
                     T* dst, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) prefetch_row(src + i * sr, cols, sc);  // read cols times
  for (int64_t d = 0; d < cols; ++d) {
    for (int64_t i = 0; i < rows; ++i) dst[d * ld + i] = src[i * sr + d * sc] * factor;
    for (int64_t i = rows; i < ld; ++i) dst[d * ld + i] = 0;
  }
}

struct Shape {
  int64_t n, h, t, d, e;  // windows, heads, tokens, q/k and v head dims
  int64_t tp, dp, ep;     // padded to whole vectors
};

template <typename T>
Shape shape_of(const int64_t* sizes) {
  constexpr int64_t L = kLanes<T>;
  Shape s{sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], 0, 0, 0};
  s.tp = round_up(s.t, L);
  s.dp = round_up(s.d, L);
  s.ep = round_up(s.e, L);
  return s;
}

// The contiguous (H, T, T) bias as rows of Tp, −inf in the padding columns (a copy only when
// T is not a whole number of vectors).
template <typename T>
const T* padded_bias(const T* bias, const Shape& s, std::vector<T>& storage) {
  if (s.tp == s.t) return bias;
  storage.assign(s.h * s.t * s.tp, -std::numeric_limits<T>::infinity());
  for (int64_t row = 0; row < s.h * s.t; ++row)
    std::copy(bias + row * s.t, bias + (row + 1) * s.t, storage.data() + row * s.tp);
  return storage.data();
}

// Tasks are (head, window) pairs. A head's windows in a row keep its bias (and bias gradient) in
// cache while the windows stream by; when the bias is small, a window's heads in a row share the
// cache lines of its q, k, v rows instead (heads interleave in the channels).
constexpr int64_t kWindowMajorBiasBytes = 32 << 10;  // per head: up to 64 tokens in float32

template <typename T>
inline bool window_major(const Shape& s) {
  return s.t * s.tp * static_cast<int64_t>(sizeof(T)) <= kWindowMajorBiasBytes;
}

template <typename T>
inline void task_pair(const Shape& s, int64_t task, int64_t& h, int64_t& n) {
  if (window_major<T>(s)) {
    n = task / s.h;
    h = task % s.h;
  } else {
    h = task / s.n;
    n = task % s.n;
  }
}

template <typename T>
struct ForwardArgs {
  const T *q, *k, *v, *bias;
  const int64_t *q_strides, *k_strides, *v_strides;
  T scale;
  T* out;  // strided (N, H, T, E)
  const int64_t* out_strides;
  T* lse;  // contiguous (N, H, T)
};

// (n, h) slices of a strided (N, H, rows, cols) output.
template <typename T>
struct StridedOut {
  T* data;
  int64_t s0, s1, s2, s3;
  StridedOut(T* data_, const int64_t* strides)
      : data(data_), s0(strides[0]), s1(strides[1]), s2(strides[2]), s3(strides[3]) {}
  T* slice(int64_t n, int64_t h) const { return data + n * s0 + h * s1; }
};

// ---------------------------------------------------------------------------------------------
// The column form, for windows of up to kColumnFormTokens tokens. The maps are built transposed —
// keys down the rows, a block of kColumnVecs vectors of queries across — so every softmax
// reduction (the max, the sum, the log, and the backward's Σ_j P·dP, which stands in for
// rowsum(dO ⊙ O)) runs down the rows, one query per lane: no horizontal sum or max, no scalar log
// per query. The gradients of k and v come out row by row, as they are stored, instead of through
// a transpose. Where every input and output has its heads side by side (the layers' projections,
// the operator's outputs), a thread copies each window's rows whole, all heads at once, before its
// first head (StagedInput), reads them there as whole vectors without packing, and writes the
// window's outputs whole after its last head (StagedOutput); elsewhere each task packs its head's
// slices, writes its outputs row by row and asks for the same head's slices of the next window
// (prefetch_slice): a small window's task is too short for the hardware to fetch its scattered
// rows in time.

constexpr int64_t kColumnVecs = 2;
// Most tokens for which the column form runs. On a 2-core AMD EPYC (Zen 3), one thread, medians of
// per-round ratios: the forward 17 % faster than the row form at 16 tokens and 4 % at 64, the
// backward 11–12 % at both; at 256 the row form's forward is 8 % faster and its backward 1–4 %
// slower (benchmarks/ab_kernel_versions.py; for 256, --old-src a copy with this raised).
constexpr int64_t kColumnFormTokens = 64;

// The (H, T, T) bias transposed per head, biasᵀ[h, j, i] = bias[h, i, j], rows padded with zeros to
// `ld` queries.
template <typename T>
std::vector<T> transposed_bias(const T* bias, const Shape& s, int64_t ld) {
  std::vector<T> out(s.h * s.t * ld, T(0));
  for (int64_t h = 0; h < s.h; ++h)
    for (int64_t i = 0; i < s.t; ++i)
      for (int64_t j = 0; j < s.t; ++j) out[(h * s.t + j) * ld + i] = bias[(h * s.t + i) * s.t + j];
  return out;
}

// Lanes of vector c of a block of `cols` queries that hold a query (0 for none).
template <typename T>
inline int64_t lanes_of(int64_t cols, int64_t c) {
  return std::clamp<int64_t>(cols - c * kLanes<T>, 0, kLanes<T>);
}

// `rows` rows of `cols` elements from a buffer of row stride ld into a strided destination, each
// times factor (a per-row factor when factors is given).
template <typename T>
void unpack_rows(const T* src, int64_t ld, int64_t rows, int64_t cols, T factor,
                 const T* factors, T* dst, int64_t sr, int64_t sc) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = dst + r * sr;
    if (r + kPrefetchRows < rows) prefetch_row<1>(row + kPrefetchRows * sr, cols, sc);
    const T f = factors ? factors[r] : factor;
    if (sc == 1) {
      for (int64_t e = 0; e < cols; e += kLanes<T>) {
        const int64_t count = std::min(kLanes<T>, cols - e);
        store_n(row + e, load(src + r * ld + e) * f, count);
      }
    } else {
      for (int64_t e = 0; e < cols; ++e) row[e * sc] = src[r * ld + e] * f;
    }
  }
}

// Head h's q, k and v slices of window n, every cache line (prefetch_slice).
template <typename T>
void prefetch_qkv(const Shape& s, const Strided<T>& q, const Strided<T>& k, const Strided<T>& v,
                  int64_t n, int64_t h) {
  prefetch_slice(q.slice(n, h), s.t, s.d, q.s2, q.s3);
  prefetch_slice(k.slice(n, h), s.t, s.d, k.s2, k.s3);
  prefetch_slice(v.slice(n, h), s.t, s.e, v.s2, v.s3);
}

// One head's rows of one window: data[i·s2 + c·s3].
template <typename T>
struct Rows {
  const T* data;
  int64_t s2, s3;
};

// Whether a strided (N, H, T, cols) input or output (Strided, StridedOut) has its heads side by
// side in each row — as the layers' projections give them and the operator allocates its outputs
// (heads_inner): head h at columns [h·cols, (h + 1)·cols) of a token's row.
template <typename X>
inline bool heads_side_by_side(const X& x, int64_t cols) {
  return x.s3 == 1 && x.s1 == cols;
}

// The rows of one strided (N, H, T, cols) input for the window in hand, all heads side by side,
// copied into a thread's buffer once per window (`stage`) when `on`: the tasks run window-major
// and every input has its heads side by side. A head's slice is 60 or 120 bytes of every row:
// read head by head, a 16-token window's forward took 3.3–3.5 µs a head once the map outgrew the
// caches, 1.3 µs with the rows in cache; one sequential copy of the window's rows lets the hardware
// stream them (a 2-core AMD EPYC, Zen 3, per-round medians: 16-token windows forward 0.71–0.89×,
// backward 0.89–0.94× the time, 64-token 0.88–0.94× and 0.96–1.0×; ab_kernel_versions.py).
// A head's staged rows are read as whole vectors (its columns rounded up): the buffer ends in a
// vector of zeros, so the last head's last row reads no further than that.
template <typename T>
struct StagedInput {
  const Strided<T>& x;
  int64_t t, cols, width;  // tokens, one head's columns, all heads' columns
  bool on;
  std::vector<T> rows;
  StagedInput(const Strided<T>& x_, const Shape& s, int64_t cols_, bool on_)
      : x(x_),
        t(s.t),
        cols(cols_),
        width(s.h * cols_),
        on(on_),
        rows(on_ ? s.t * width + kLanes<T> : 0) {}
  void stage(int64_t n) {
    if (!on) return;
    const T* first = x.slice(n, 0);
    for (int64_t i = 0; i < t; ++i)
      std::copy(first + i * x.s2, first + i * x.s2 + width, rows.data() + i * width);
  }
  Rows<T> head(int64_t n, int64_t h) const {
    if (on) return {rows.data() + h * cols, width, 1};
    return {x.slice(n, h), x.s2, x.s3};
  }
};

// One head's rows of a task's result, `ld` apart: in the thread's StagedOutput when the window's
// outputs are staged, else in a buffer of the task's own that unpack_rows copies to the output.
template <typename T>
struct OutRows {
  T* data;
  int64_t ld;
};

// The output rows of the window in hand, all heads side by side, collected in a thread's buffer
// and copied out whole: each task writes its head's rows as whole vectors (the columns rounded up,
// running over into the next head's, which that head's task overwrites after it; the row's last
// vector is padding), and the heads a thread has done of a window are copied out together when it
// moves on to the next window or ends its range (`flush`). Written head by head instead (60 or 120
// bytes of each row, the last vector lane by lane), and with q, k, v and dO packed per head, the
// 16-token windows' forward took 1.17× and their backward 1.27× the time, the 64-token windows'
// 1.06× and 1.09× (a 2-core AMD EPYC, Zen 3, one thread, per-round medians; ab_kernel_versions.py).
template <typename T>
struct StagedOutput {
  const StridedOut<T>& x;
  int64_t t, cols, ld;  // tokens, one head's columns, the buffer's row stride
  std::vector<T> rows;  // empty unless `on`
  int64_t window = -1, first = 0, last = 0;  // heads [first, last) of `window` are in the buffer
  StagedOutput(const StridedOut<T>& x_, const Shape& s, int64_t cols_, bool on)
      : x(x_), t(s.t), cols(cols_), ld(s.h * cols_ + kLanes<T>), rows(on ? s.t * ld : 0) {}
  // Head h's rows of window n, to be written (only when built with `on`).
  OutRows<T> head(int64_t n, int64_t h) {
    if (n != window) {
      flush();
      window = n;
      first = h;
    }
    last = h + 1;
    return {rows.data() + h * cols, ld};
  }
  void flush() {
    if (window < 0) return;
    T* dst = x.slice(window, first);
    const T* src = rows.data() + first * cols;
    const int64_t count = (last - first) * cols;
    for (int64_t i = 0; i < t; ++i) std::copy(src + i * ld, src + i * ld + count, dst + i * x.s2);
    window = -1;
  }
};

// Whether the column form stages whole windows: the tasks run window-major and every input and
// output has its heads side by side.
template <typename T>
inline bool stages_windows(const Shape& s, const Strided<T>& q, const Strided<T>& k,
                           const Strided<T>& v) {
  return window_major<T>(s) && heads_side_by_side(q, s.d) && heads_side_by_side(k, s.d) &&
         heads_side_by_side(v, s.e);
}

// The first `vecs` vectors of `rows` rows ld apart times factor (a per-row factor when factors is
// given), in place.
template <typename T>
void scale_rows(T* data, int64_t ld, int64_t rows, int64_t vecs, T factor, const T* factors) {
  for (int64_t r = 0; r < rows; ++r) {
    const Vec<T> f = splat(factors ? factors[r] : factor);
    T* row = data + r * ld;
    for (int64_t e = 0; e < vecs * kLanes<T>; e += kLanes<T>) store(row + e, load(row + e) * f);
  }
}

template <typename T>
void forward_columns(const Shape& s, const ForwardArgs<T>& a, int threads) {
  constexpr int64_t L = kLanes<T>, W = kColumnVecs * L;
  const int64_t tq = round_up(s.t, W);  // queries, padded to whole blocks
  const std::vector<T> bias_t = transposed_bias(a.bias, s, tq);
  const Strided<T> qs(a.q, a.q_strides), ks(a.k, a.k_strides), vs(a.v, a.v_strides);
  const StridedOut<T> os(a.out, a.out_strides);
  const bool staged = stages_windows(s, qs, ks, vs) && heads_side_by_side(os, s.e);
  parallel_ranges(s.n * s.h, threads, [&](int64_t, int64_t begin, int64_t end) {
    std::vector<T> qt(s.d * tq), vp(staged ? 0 : s.t * s.ep), maps(s.t * W);
    std::vector<T> outs(staged ? 0 : s.t * s.ep), inv(W);
    StagedInput<T> q_in(qs, s, s.d, staged), k_in(ks, s, s.d, staged), v_in(vs, s, s.e, staged);
    StagedOutput<T> out_rows(os, s, s.e, staged);
    int64_t window = -1;
    for (int64_t task = begin; task < end; ++task) {
      int64_t h, n;
      task_pair<T>(s, task, h, n);
      if (n != window) {
        for (StagedInput<T>* in : {&q_in, &k_in, &v_in}) in->stage(n);
        window = n;
      }
      if (!staged && n + 1 < s.n) {  // this head of the next window: its inputs, and its output
        prefetch_qkv(s, qs, ks, vs, n + 1, h);
        prefetch_slice<1>(os.slice(n + 1, h), s.t, s.e, os.s2, os.s3);
      }
      const Rows<T> q = q_in.head(n, h), k = k_in.head(n, h), v = v_in.head(n, h);
      pack_transposed(q.data, s.t, s.d, q.s2, q.s3, a.scale, qt.data(), tq);
      // v's rows as whole vectors: the staged rows themselves, else packed
      const T* v_rows = v.data;
      int64_t v_ld = v.s2;
      if (!staged) {
        pack_rows(v.data, s.t, s.e, v.s2, v.s3, T(1), vp.data(), s.ep);
        v_rows = vp.data();
        v_ld = s.ep;
      }
      const OutRows<T> o = staged ? out_rows.head(n, h) : OutRows<T>{outs.data(), s.ep};
      const T* bias_h = bias_t.data() + h * s.t * tq;
      T* lse = a.lse + (n * s.h + h) * s.t;
      for (int64_t c0 = 0; c0 < s.t; c0 += W) {
        const int64_t cols = std::min(W, s.t - c0);
        // Sᵀ = k·(q·scale)ᵀ + biasᵀ, keys down, these queries across; its max over keys
        gemm<T, false>(s.t, kColumnVecs, s.d, k.data, k.s2, k.s3, qt.data() + c0, tq,
                       maps.data(), W);
        Vec<T> top[kColumnVecs], total[kColumnVecs];
        for (int64_t c = 0; c < kColumnVecs; ++c)
          top[c] = splat(-std::numeric_limits<T>::infinity());
        for (int64_t j = 0; j < s.t; ++j) {
          for (int64_t c = 0; c < kColumnVecs; ++c) {
            T* m = maps.data() + j * W + c * L;
            const Vec<T> x = load(m) + load(bias_h + j * tq + c0 + c * L);
            store(m, x);
            top[c] = x > top[c] ? x : top[c];
          }
        }
        for (int64_t c = 0; c < kColumnVecs; ++c) {
          top[c] = top[c] - top[c] == T(0) ? top[c] : Vec<T>{};  // a query with no finite logit
          total[c] = Vec<T>{};
        }
        for (int64_t j = 0; j < s.t; ++j) {
          for (int64_t c = 0; c < kColumnVecs; ++c) {
            T* m = maps.data() + j * W + c * L;
            const Vec<T> p = vexp(load(m) - top[c]);
            store(m, p);
            total[c] += p;
          }
        }
        for (int64_t c = 0; c < kColumnVecs; ++c) {
          const int64_t lanes = lanes_of<T>(cols, c);
          if (lanes) store_n(lse + c0 + c * L, top[c] + vlog(total[c]), lanes);
          store(inv.data() + c * L, T(1) / total[c]);
        }
        // out = P·v for these queries, each row divided by its sum
        T* o_block = o.data + c0 * o.ld;
        gemm<T, false>(cols, s.ep / L, s.t, maps.data(), 1, W, v_rows, v_ld, o_block, o.ld);
        scale_rows(o_block, o.ld, cols, s.ep / L, T(1), inv.data());
      }
      if (!staged)
        unpack_rows(outs.data(), s.ep, s.t, s.e, T(1), static_cast<const T*>(nullptr),
                    os.slice(n, h), os.s2, os.s3);
    }
    out_rows.flush();
  });
}

template <typename T>
void forward_impl(const Shape& s, const ForwardArgs<T>& a, int threads) {
  constexpr int64_t L = kLanes<T>;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, s.n * s.h)));
  if (s.t <= kColumnFormTokens) return forward_columns(s, a, threads);
  std::vector<T> bias_storage;
  const T* bias_data = padded_bias(a.bias, s, bias_storage);
  const Strided<T> qs(a.q, a.q_strides), ks(a.k, a.k_strides), vs(a.v, a.v_strides);
  const StridedOut<T> outs_(a.out, a.out_strides);
  parallel_ranges(s.n * s.h, threads, [&](int64_t, int64_t begin, int64_t end) {
    std::vector<T> qp(s.t * s.dp), kt(s.d * s.tp), vp(s.t * s.ep);
    std::vector<T> maps(kRowBlock * s.tp), outs(kRowBlock * s.ep), inv(kRowBlock);
    for (int64_t task = begin; task < end; ++task) {
      int64_t h, n;
      task_pair<T>(s, task, h, n);
      pack_rows(qs.slice(n, h), s.t, s.d, qs.s2, qs.s3, a.scale, qp.data(), s.dp);
      pack_transposed(ks.slice(n, h), s.t, s.d, ks.s2, ks.s3, T(1), kt.data(), s.tp);
      pack_rows(vs.slice(n, h), s.t, s.e, vs.s2, vs.s3, T(1), vp.data(), s.ep);
      const int64_t row0 = (n * s.h + h) * s.t;
      T* out_slice = outs_.slice(n, h);
      for (int64_t i0 = 0; i0 < s.t; i0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, s.t - i0);
        gemm<T, false>(rows, s.tp / L, s.d, qp.data() + i0 * s.dp, s.dp, 1, kt.data(), s.tp,
                       maps.data(), s.tp);
        for (int64_t r = 0; r < rows; ++r) {
          T* m = maps.data() + r * s.tp;
          const T* b = bias_data + (h * s.t + i0 + r) * s.tp;
          Vec<T> most = splat(-std::numeric_limits<T>::infinity());
          for (int64_t j = 0; j < s.tp; j += L) {
            const Vec<T> x = load(m + j) + load(b + j);
            store(m + j, x);
            most = x > most ? x : most;
          }
          T top = horizontal_max<T>(most);
          if (!std::isfinite(top)) top = 0;
          Vec<T> total{};
          for (int64_t j = 0; j < s.tp; j += L) {
            const Vec<T> p = vexp(load(m + j) - top);
            store(m + j, p);
            total += p;
          }
          const T sum = horizontal_sum<T>(total);
          a.lse[row0 + i0 + r] = top + std::log(sum);
          inv[r] = T(1) / sum;
        }
        gemm<T, false>(rows, s.ep / L, s.t, maps.data(), s.tp, 1, vp.data(), s.ep, outs.data(),
                       s.ep);
        for (int64_t r = 0; r < rows; ++r) {
          T* o = out_slice + (i0 + r) * outs_.s2;
          if (r + kPrefetchRows < rows)
            prefetch_row<1>(o + kPrefetchRows * outs_.s2, s.e, outs_.s3);
          for (int64_t e = 0; e < s.e; ++e) o[e * outs_.s3] = outs[r * s.ep + e] * inv[r];
        }
      }
    }
  });
}

template <typename T>
struct BackwardArgs {
  const T *grad_out, *q, *k, *v, *bias, *out, *lse;
  const int64_t *grad_out_strides, *q_strides, *k_strides, *v_strides, *out_strides;
  T scale;
  T *grad_q, *grad_k, *grad_v;  // strided (N, H, T, ·)
  const int64_t *grad_q_strides, *grad_k_strides, *grad_v_strides;
  T* grad_bias;  // contiguous (H, T, T)
};

template <typename T>
void backward_columns(const Shape& s, const BackwardArgs<T>& a, int threads) {
  constexpr int64_t L = kLanes<T>, W = kColumnVecs * L;
  const int64_t tq = round_up(s.t, W);
  const std::vector<T> bias_t = transposed_bias(a.bias, s, tq);
  const Strided<T> qs(a.q, a.q_strides), ks(a.k, a.k_strides), vs(a.v, a.v_strides);
  const Strided<T> gs(a.grad_out, a.grad_out_strides);
  const StridedOut<T> gqs(a.grad_q, a.grad_q_strides), gks(a.grad_k, a.grad_k_strides);
  const StridedOut<T> gvs(a.grad_v, a.grad_v_strides);
  const bool staged = stages_windows(s, qs, ks, vs) && heads_side_by_side(gqs, s.d) &&
                      heads_side_by_side(gks, s.d) && heads_side_by_side(gvs, s.e);
  // The output gradient staged too where its heads are side by side; else packed per task (the
  // layers pass it back with each head's rows together, which the hardware streams)
  const bool g_staged = staged && heads_side_by_side(gs, s.e);
  // The bias gradient, transposed as biasᵀ: one partial sum per thread, added up at the end.
  const int64_t bias_size = s.h * s.t * tq;
  std::vector<T> partial(threads * bias_size, T(0));
  parallel_ranges(s.n * s.h, threads, [&](int64_t thread, int64_t begin, int64_t end) {
    T* bias_grad = partial.data() + thread * bias_size;
    const int64_t packed = staged ? 0 : s.t;  // rows of the packs the staged rows stand in for
    std::vector<T> qt(s.d * tq), got(s.e * tq), qp(packed * s.dp), kp(packed * s.dp);
    std::vector<T> gop(g_staged ? 0 : s.t * s.ep), maps(s.t * W), grads(s.t * W);
    std::vector<T> dq(packed * s.dp), dk(packed * s.dp), dv(packed * s.ep);
    StagedInput<T> q_in(qs, s, s.d, staged), k_in(ks, s, s.d, staged), v_in(vs, s, s.e, staged);
    StagedInput<T> g_in(gs, s, s.e, g_staged);
    StagedOutput<T> dq_out(gqs, s, s.d, staged), dk_out(gks, s, s.d, staged);
    StagedOutput<T> dv_out(gvs, s, s.e, staged);
    int64_t window = -1;
    for (int64_t task = begin; task < end; ++task) {
      int64_t h, n;
      task_pair<T>(s, task, h, n);
      if (n != window) {
        for (StagedInput<T>* in : {&q_in, &k_in, &v_in, &g_in}) in->stage(n);
        window = n;
      }
      if (!staged && n + 1 < s.n) {  // this head of the next window: its inputs, its gradients
        prefetch_qkv(s, qs, ks, vs, n + 1, h);
        prefetch_slice(gs.slice(n + 1, h), s.t, s.e, gs.s2, gs.s3);
        prefetch_slice<1>(gqs.slice(n + 1, h), s.t, s.d, gqs.s2, gqs.s3);
        prefetch_slice<1>(gks.slice(n + 1, h), s.t, s.d, gks.s2, gks.s3);
        prefetch_slice<1>(gvs.slice(n + 1, h), s.t, s.e, gvs.s2, gvs.s3);
      }
      const Rows<T> q = q_in.head(n, h), k = k_in.head(n, h), v = v_in.head(n, h);
      const Rows<T> g = g_in.head(n, h);
      pack_transposed(q.data, s.t, s.d, q.s2, q.s3, a.scale, qt.data(), tq);
      pack_transposed(g.data, s.t, s.e, g.s2, g.s3, T(1), got.data(), tq);
      // q, k and dO as rows of whole vectors: the staged rows themselves, else packed; and where
      // the gradients go, as rows of whole vectors
      Rows<T> q_rows = q, k_rows = k, g_rows = g;
      OutRows<T> dq_rows{dq.data(), s.dp}, dk_rows{dk.data(), s.dp}, dv_rows{dv.data(), s.ep};
      if (staged) {
        dq_rows = dq_out.head(n, h);
        dk_rows = dk_out.head(n, h);
        dv_rows = dv_out.head(n, h);
      } else {
        pack_rows(q.data, s.t, s.d, q.s2, q.s3, T(1), qp.data(), s.dp);
        pack_rows(k.data, s.t, s.d, k.s2, k.s3, T(1), kp.data(), s.dp);
        q_rows = {qp.data(), s.dp, 1};
        k_rows = {kp.data(), s.dp, 1};
      }
      if (!g_staged) {
        pack_rows(g.data, s.t, s.e, g.s2, g.s3, T(1), gop.data(), s.ep);
        g_rows = {gop.data(), s.ep, 1};
      }
      const T* bias_h = bias_t.data() + h * s.t * tq;
      T* bias_grad_h = bias_grad + h * s.t * tq;
      const T* lse = a.lse + (n * s.h + h) * s.t;
      for (int64_t c0 = 0; c0 < s.t; c0 += W) {
        const int64_t cols = std::min(W, s.t - c0);
        // Pᵀ = exp(k·(q·scale)ᵀ + biasᵀ − lse), keys down, these queries across
        gemm<T, false>(s.t, kColumnVecs, s.d, k.data, k.s2, k.s3, qt.data() + c0, tq, maps.data(),
                       W);
        Vec<T> shift[kColumnVecs], delta[kColumnVecs];
        for (int64_t c = 0; c < kColumnVecs; ++c) {
          const int64_t lanes = lanes_of<T>(cols, c);
          shift[c] = lanes ? load_n(lse + c0 + c * L, lanes) : Vec<T>{};
          delta[c] = Vec<T>{};
        }
        for (int64_t j = 0; j < s.t; ++j) {
          for (int64_t c = 0; c < kColumnVecs; ++c) {
            T* m = maps.data() + j * W + c * L;
            store(m, vexp(load(m) + load(bias_h + j * tq + c0 + c * L) - shift[c]));
          }
        }
        // dPᵀ = v·dOᵀ, and delta = Σ_j P ⊙ dP (= rowsum(dO ⊙ O)) for each query
        gemm<T, false>(s.t, kColumnVecs, s.e, v.data, v.s2, v.s3, got.data() + c0, tq,
                       grads.data(), W);
        for (int64_t j = 0; j < s.t; ++j)
          for (int64_t c = 0; c < kColumnVecs; ++c)
            delta[c] += load(maps.data() + j * W + c * L) * load(grads.data() + j * W + c * L);
        // dSᵀ = Pᵀ ⊙ (dPᵀ − delta): the logits' gradient, and the bias's
        for (int64_t j = 0; j < s.t; ++j) {
          for (int64_t c = 0; c < kColumnVecs; ++c) {
            T* gr = grads.data() + j * W + c * L;
            T* db = bias_grad_h + j * tq + c0 + c * L;
            const Vec<T> x = load(maps.data() + j * W + c * L) * (load(gr) - delta[c]);
            store(gr, x);
            store(db, load(db) + x);
          }
        }
        // dv += P·dO and dk += dS·q over these queries (·scale at the end); dq = dS·k·scale for
        // them
        const T* g_block = g_rows.data + c0 * g_rows.s2;
        const T* q_block = q_rows.data + c0 * q_rows.s2;
        if (c0 == 0) {
          gemm<T, false>(s.t, s.ep / L, cols, maps.data(), W, 1, g_block, g_rows.s2, dv_rows.data,
                         dv_rows.ld);
          gemm<T, false>(s.t, s.dp / L, cols, grads.data(), W, 1, q_block, q_rows.s2,
                         dk_rows.data, dk_rows.ld);
        } else {
          gemm<T, true>(s.t, s.ep / L, cols, maps.data(), W, 1, g_block, g_rows.s2, dv_rows.data,
                        dv_rows.ld);
          gemm<T, true>(s.t, s.dp / L, cols, grads.data(), W, 1, q_block, q_rows.s2, dk_rows.data,
                        dk_rows.ld);
        }
        T* dq_block = dq_rows.data + c0 * dq_rows.ld;
        gemm<T, false>(cols, s.dp / L, s.t, grads.data(), 1, W, k_rows.data, k_rows.s2, dq_block,
                       dq_rows.ld);
        scale_rows(dq_block, dq_rows.ld, cols, s.dp / L, a.scale, static_cast<const T*>(nullptr));
      }
      scale_rows(dk_rows.data, dk_rows.ld, s.t, s.dp / L, a.scale, static_cast<const T*>(nullptr));
      if (!staged) {
        const T* none = nullptr;
        unpack_rows(dq.data(), s.dp, s.t, s.d, T(1), none, gqs.slice(n, h), gqs.s2, gqs.s3);
        unpack_rows(dv.data(), s.ep, s.t, s.e, T(1), none, gvs.slice(n, h), gvs.s2, gvs.s3);
        unpack_rows(dk.data(), s.dp, s.t, s.d, T(1), none, gks.slice(n, h), gks.s2, gks.s3);
      }
    }
    for (StagedOutput<T>* out : {&dq_out, &dk_out, &dv_out}) out->flush();
  });
  for (int64_t h = 0; h < s.h; ++h) {
    for (int64_t i = 0; i < s.t; ++i) {
      for (int64_t j = 0; j < s.t; ++j) {
        T sum = 0;
        for (int64_t thread = 0; thread < threads; ++thread)
          sum += partial[thread * bias_size + (h * s.t + j) * tq + i];
        a.grad_bias[(h * s.t + i) * s.t + j] = sum;
      }
    }
  }
}

template <typename T>
void backward_impl(const Shape& s, const BackwardArgs<T>& a, int threads) {
  constexpr int64_t L = kLanes<T>;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, s.n * s.h)));
  if (s.t <= kColumnFormTokens) return backward_columns(s, a, threads);
  std::vector<T> bias_storage;
  const T* bias_data = padded_bias(a.bias, s, bias_storage);
  const Strided<T> qs(a.q, a.q_strides), ks(a.k, a.k_strides), vs(a.v, a.v_strides);
  const Strided<T> gs(a.grad_out, a.grad_out_strides), os(a.out, a.out_strides);
  const StridedOut<T> gqs(a.grad_q, a.grad_q_strides), gks(a.grad_k, a.grad_k_strides);
  const StridedOut<T> gvs(a.grad_v, a.grad_v_strides);
  // The bias gradient sums over windows: one partial sum per thread, added up at the end.
  const int64_t bias_size = s.h * s.t * s.tp;
  std::vector<T> partial(threads * bias_size, T(0));
  parallel_ranges(s.n * s.h, threads, [&](int64_t thread, int64_t begin, int64_t end) {
    T* bias_grad = partial.data() + thread * bias_size;
    std::vector<T> qp(s.t * s.dp), kt(s.d * s.tp), kp(s.t * s.dp), vt(s.e * s.tp);
    std::vector<T> gop(s.t * s.ep), delta(s.t), dvt(s.e * s.tp), dkt(s.d * s.tp);
    std::vector<T> maps(kRowBlock * s.tp), grads(kRowBlock * s.tp), dq(kRowBlock * s.dp);
    for (int64_t task = begin; task < end; ++task) {
      int64_t h, n;
      task_pair<T>(s, task, h, n);
      pack_rows(qs.slice(n, h), s.t, s.d, qs.s2, qs.s3, a.scale, qp.data(), s.dp);
      pack_transposed(ks.slice(n, h), s.t, s.d, ks.s2, ks.s3, T(1), kt.data(), s.tp);
      pack_rows(ks.slice(n, h), s.t, s.d, ks.s2, ks.s3, T(1), kp.data(), s.dp);
      pack_transposed(vs.slice(n, h), s.t, s.e, vs.s2, vs.s3, T(1), vt.data(), s.tp);
      pack_rows(gs.slice(n, h), s.t, s.e, gs.s2, gs.s3, T(1), gop.data(), s.ep);
      const T* o = os.slice(n, h);
      for (int64_t i = 0; i < s.t; ++i) {  // rowsum(dO ⊙ O) = Σ_j P_ij·dP_ij
        const T* row = o + i * os.s2;
        if (i + kPrefetchRows < s.t) prefetch_row(row + kPrefetchRows * os.s2, s.e, os.s3);
        Vec<T> acc{};
        if (os.s3 == 1) {  // (the layout the forward writes)
          for (int64_t e = 0; e < s.e; e += L)
            acc += load(gop.data() + i * s.ep + e) * load_n(row + e, std::min(L, s.e - e));
        } else {
          for (int64_t e = 0; e < s.e; ++e) acc[e % L] += gop[i * s.ep + e] * row[e * os.s3];
        }
        delta[i] = horizontal_sum<T>(acc);
      }
      const int64_t row0 = (n * s.h + h) * s.t;
      for (int64_t i0 = 0; i0 < s.t; i0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, s.t - i0);
        // P = exp(q·kᵀ·scale + bias − lse)
        gemm<T, false>(rows, s.tp / L, s.d, qp.data() + i0 * s.dp, s.dp, 1, kt.data(), s.tp,
                       maps.data(), s.tp);
        for (int64_t r = 0; r < rows; ++r) {
          T* m = maps.data() + r * s.tp;
          const T* b = bias_data + (h * s.t + i0 + r) * s.tp;
          const T shift = a.lse[row0 + i0 + r];
          for (int64_t j = 0; j < s.tp; j += L)
            store(m + j, vexp(load(m + j) + load(b + j) - shift));
        }
        // dS = P ⊙ (dO·vᵀ − delta): the logits' gradient, and the bias's
        gemm<T, false>(rows, s.tp / L, s.e, gop.data() + i0 * s.ep, s.ep, 1, vt.data(), s.tp,
                       grads.data(), s.tp);
        for (int64_t r = 0; r < rows; ++r) {
          const T* m = maps.data() + r * s.tp;
          T* g = grads.data() + r * s.tp;
          T* db = bias_grad + (h * s.t + i0 + r) * s.tp;
          const T correction = delta[i0 + r];
          for (int64_t j = 0; j < s.tp; j += L) {
            const Vec<T> x = load(m + j) * (load(g + j) - correction);
            store(g + j, x);
            store(db + j, load(db + j) + x);
          }
        }
        // dvᵀ += dOᵀ·P and dkᵀ += (q·scale)ᵀ·dS over these rows (transposed: the maps' rows are
        // the vectors, keys the columns); dq = dS·k·scale for them
        if (i0 == 0) {
          gemm<T, false>(s.e, s.tp / L, rows, gop.data(), 1, s.ep, maps.data(), s.tp, dvt.data(),
                         s.tp);
          gemm<T, false>(s.d, s.tp / L, rows, qp.data(), 1, s.dp, grads.data(), s.tp, dkt.data(),
                         s.tp);
        } else {
          gemm<T, true>(s.e, s.tp / L, rows, gop.data() + i0 * s.ep, 1, s.ep, maps.data(), s.tp,
                        dvt.data(), s.tp);
          gemm<T, true>(s.d, s.tp / L, rows, qp.data() + i0 * s.dp, 1, s.dp, grads.data(), s.tp,
                        dkt.data(), s.tp);
        }
        gemm<T, false>(rows, s.dp / L, s.t, grads.data(), s.tp, 1, kp.data(), s.dp, dq.data(),
                       s.dp);
        for (int64_t r = 0; r < rows; ++r) {
          T* dst = gqs.slice(n, h) + (i0 + r) * gqs.s2;
          if (r + kPrefetchRows < rows) prefetch_row<1>(dst + kPrefetchRows * gqs.s2, s.d, gqs.s3);
          for (int64_t d = 0; d < s.d; ++d) dst[d * gqs.s3] = dq[r * s.dp + d] * a.scale;
        }
      }
      T* gv = gvs.slice(n, h);
      T* gk = gks.slice(n, h);
      for (int64_t j = 0; j < s.t; ++j) {
        if (j + kPrefetchRows < s.t) {
          prefetch_row<1>(gv + (j + kPrefetchRows) * gvs.s2, s.e, gvs.s3);
          prefetch_row<1>(gk + (j + kPrefetchRows) * gks.s2, s.d, gks.s3);
        }
        for (int64_t e = 0; e < s.e; ++e) gv[j * gvs.s2 + e * gvs.s3] = dvt[e * s.tp + j];
        for (int64_t d = 0; d < s.d; ++d) gk[j * gks.s2 + d * gks.s3] = dkt[d * s.tp + j];
      }
    }
  });
  for (int64_t row = 0; row < s.h * s.t; ++row) {
    for (int64_t j = 0; j < s.t; ++j) {
      T sum = 0;
      for (int64_t thread = 0; thread < threads; ++thread)
        sum += partial[thread * bias_size + row * s.tp + j];
      a.grad_bias[row * s.t + j] = sum;
    }
  }
}

template <typename T>
int forward_entry(const int64_t* sizes, const T* q, const int64_t* q_strides, const T* k,
                  const int64_t* k_strides, const T* v, const int64_t* v_strides, const T* bias,
                  double scale, T* out, const int64_t* out_strides, T* lse, int threads) {
  try {
    const Shape s = shape_of<T>(sizes);
    forward_impl(s, ForwardArgs<T>{q, k, v, bias, q_strides, k_strides, v_strides,
                                   static_cast<T>(scale), out, out_strides, lse},
                 threads);
    return 0;
  } catch (...) {
    return 1;
  }
}

template <typename T>
int backward_entry(const int64_t* sizes, const T* grad_out, const int64_t* grad_out_strides,
                   const T* q, const int64_t* q_strides, const T* k, const int64_t* k_strides,
                   const T* v, const int64_t* v_strides, const T* bias, const T* out,
                   const int64_t* out_strides, const T* lse, double scale, T* grad_q,
                   const int64_t* grad_q_strides, T* grad_k, const int64_t* grad_k_strides,
                   T* grad_v, const int64_t* grad_v_strides, T* grad_bias, int threads) {
  try {
    const Shape s = shape_of<T>(sizes);
    backward_impl(s,
                  BackwardArgs<T>{grad_out, q, k, v, bias, out, lse, grad_out_strides, q_strides,
                                  k_strides, v_strides, out_strides, static_cast<T>(scale),
                                  grad_q, grad_k, grad_v, grad_q_strides, grad_k_strides,
                                  grad_v_strides, grad_bias},
                  threads);
    return 0;
  } catch (...) {
    return 1;
  }
}

}  // namespace

// sizes = (N, H, T, D, E); bias, lse and the bias gradient are contiguous, the other arrays
// strided (strides count elements). Each returns 0, or 1 if it failed (out of memory).
#define TREEATTN_ENTRIES(T, suffix)                                                                \
  extern "C" int treeattn_attention_forward_##suffix(                                              \
      const int64_t* sizes, const T* q, const int64_t* q_strides, const T* k,                      \
      const int64_t* k_strides, const T* v, const int64_t* v_strides, const T* bias,               \
      double scale, T* out, const int64_t* out_strides, T* lse, int threads) {                     \
    return forward_entry<T>(sizes, q, q_strides, k, k_strides, v, v_strides, bias, scale, out,     \
                            out_strides, lse, threads);                                            \
  }                                                                                                \
  extern "C" int treeattn_attention_backward_##suffix(                                             \
      const int64_t* sizes, const T* grad_out, const int64_t* grad_out_strides, const T* q,        \
      const int64_t* q_strides, const T* k, const int64_t* k_strides, const T* v,                  \
      const int64_t* v_strides, const T* bias, const T* out, const int64_t* out_strides,           \
      const T* lse, double scale, T* grad_q, const int64_t* grad_q_strides, T* grad_k,             \
      const int64_t* grad_k_strides, T* grad_v, const int64_t* grad_v_strides, T* grad_bias,       \
      int threads) {                                                                               \
    return backward_entry<T>(sizes, grad_out, grad_out_strides, q, q_strides, k, k_strides, v,     \
                             v_strides, bias, out, out_strides, lse, scale, grad_q,                \
                             grad_q_strides, grad_k, grad_k_strides, grad_v, grad_v_strides,       \
                             grad_bias, threads);                                                  \
  }

TREEATTN_ENTRIES(float, f32)
TREEATTN_ENTRIES(double, f64)
