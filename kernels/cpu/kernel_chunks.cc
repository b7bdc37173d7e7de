// The chunk kernels, written once as plain loops that the compiler
// vectorises; CMake compiles this file once per ISA with its flags and
// ZSHARD_KERNEL_TABLE naming the table function it defines.
#include <array>
#include <cmath>

#include "kernels/cpu/element.h"
#include "kernels/cpu/kernel_table.h"

namespace zshard::kernels::cpu {
namespace {

template <typename T>
inline void store(T* out, int64_t i, float value) {
  out[i] = fromFloat<T>(value);
}
inline void store(NoStore*, int64_t, float) {}

// Adam's moment update for one element; returns mhat / (sqrt(vhat) + eps).
// Shared by Adam and Lamb (and mirrored by the CUDA twin).
inline float adamDirection(float& m, float& v, float g, const AdamCoeffs& c) {
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  return m * c.inv_bias1 / (std::sqrt(v) * c.inv_sqrt_bias2 + c.eps);
}

inline bool nonFinite(float x) {
  return (floatToBits(x) & 0x7f800000u) == 0x7f800000u;
}

template <typename G, typename P>
void adamChunk(float* __restrict master, float* __restrict m, float* __restrict v, const void* grad,
               void* model, int64_t n, const AdamCoeffs& c, float grad_scale) {
  const G* __restrict g = static_cast<const G*>(grad);
  P* __restrict out = static_cast<P*>(model);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float p = master[i];
    float mi = m[i], vi = v[i];
    const float direction = adamDirection(mi, vi, toFloat(g[i]) * grad_scale + c.l2_decay * p, c);
    m[i] = mi;
    v[i] = vi;
    p -= c.lr * (direction + c.decoupled_decay * p);
    master[i] = p;
    store(out, i, p);
  }
}

template <typename G>
void lambChunk(const float* __restrict master, float* __restrict m, float* __restrict v,
               const void* grad, float* __restrict update, int64_t n, const AdamCoeffs& c,
               float grad_scale) {
  const G* __restrict g = static_cast<const G*>(grad);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float mi = m[i], vi = v[i];
    const float direction = adamDirection(mi, vi, toFloat(g[i]) * grad_scale, c);
    m[i] = mi;
    v[i] = vi;
    update[i] = direction + c.decoupled_decay * master[i];
  }
}

template <typename G, typename P>
void sgdChunk(float* __restrict master, float* __restrict buf, const void* grad, void* model,
              int64_t n, const SgdCoeffs& c, float grad_scale) {
  const G* __restrict g = static_cast<const G*>(grad);
  P* __restrict out = static_cast<P*>(model);
  const float keep = c.first_step ? 0.f : c.momentum;
  const float add = c.first_step ? 1.f : c.one_minus_dampening;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float p = master[i];
    float d = toFloat(g[i]) * grad_scale + c.weight_decay * p;
    if (c.use_momentum) {
      const float b = keep * buf[i] + add * d;
      buf[i] = b;
      d = c.nesterov ? d + c.momentum * b : b;
    }
    p -= c.lr * d;
    master[i] = p;
    store(out, i, p);
  }
}

template <typename P>
void applyChunk(float* __restrict master, const float* __restrict update, float alpha, void* model,
                int64_t n) {
  P* __restrict out = static_cast<P*>(model);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float p = master[i] + alpha * update[i];
    master[i] = p;
    store(out, i, p);
  }
}

template <typename T>
bool unscaleChunk(void* data, int64_t n, float multiplier) {
  T* __restrict x = static_cast<T*>(data);
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    const float y = toFloat(x[i]) * multiplier;
    x[i] = fromFloat<T>(y);
    bad |= nonFinite(y);
  }
  return bad != 0;
}

template <typename T>
bool nonFiniteChunk(const void* data, int64_t n) {
  const T* __restrict x = static_cast<const T*>(data);
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) bad |= nonFinite(toFloat(x[i]));
  return bad != 0;
}

template <typename T>
double squaredNormChunk(const void* data, int64_t n) {
  const T* __restrict x = static_cast<const T*>(data);
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const double y = toFloat(x[i]);
    sum += y * y;
  }
  return sum;
}

template <typename S, typename D>
void castChunk(const void* src, void* dst, int64_t n) {
  const S* __restrict s = static_cast<const S*>(src);
  D* __restrict d = static_cast<D*>(dst);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) d[i] = fromFloat<D>(toFloat(s[i]));
}

template <typename D, typename S>
void accumulateChunk(const void* src, void* dst, int64_t n) {
  const S* __restrict s = static_cast<const S*>(src);
  D* __restrict d = static_cast<D*>(dst);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) d[i] = fromFloat<D>(toFloat(d[i]) + toFloat(s[i]));
}

// Row helpers: one entry per element type, in dtype-index order.
template <typename G>
constexpr std::array<AdamFn, 4> adamRow() {
  return {adamChunk<G, float>, adamChunk<G, Fp16>, adamChunk<G, Bf16>, adamChunk<G, NoStore>};
}
template <typename G>
constexpr std::array<SgdFn, 4> sgdRow() {
  return {sgdChunk<G, float>, sgdChunk<G, Fp16>, sgdChunk<G, Bf16>, sgdChunk<G, NoStore>};
}
template <typename S>
constexpr std::array<CastFn, 3> castRow() {
  return {castChunk<S, float>, castChunk<S, Fp16>, castChunk<S, Bf16>};
}
template <typename D>
constexpr std::array<CastFn, 3> accumulateRow() {
  return {accumulateChunk<D, float>, accumulateChunk<D, Fp16>, accumulateChunk<D, Bf16>};
}

template <typename Row, size_t N>
void copyRow(const Row& row, typename Row::value_type (&out)[N]) {
  for (size_t i = 0; i < N; ++i) out[i] = row[i];
}

KernelTable makeTable(const char* isa) {
  KernelTable t{};
  t.isa = isa;
  copyRow(adamRow<float>(), t.adam[0]);
  copyRow(adamRow<Fp16>(), t.adam[1]);
  copyRow(adamRow<Bf16>(), t.adam[2]);
  copyRow(sgdRow<float>(), t.sgd[0]);
  copyRow(sgdRow<Fp16>(), t.sgd[1]);
  copyRow(sgdRow<Bf16>(), t.sgd[2]);
  copyRow(castRow<float>(), t.cast[0]);
  copyRow(castRow<Fp16>(), t.cast[1]);
  copyRow(castRow<Bf16>(), t.cast[2]);
  copyRow(accumulateRow<float>(), t.accumulate[0]);
  copyRow(accumulateRow<Fp16>(), t.accumulate[1]);
  copyRow(accumulateRow<Bf16>(), t.accumulate[2]);
  copyRow(std::array<LambFn, 3>{lambChunk<float>, lambChunk<Fp16>, lambChunk<Bf16>}, t.lamb);
  copyRow(std::array<ApplyFn, 4>{applyChunk<float>, applyChunk<Fp16>, applyChunk<Bf16>,
                                 applyChunk<NoStore>},
          t.apply);
  copyRow(std::array<UnscaleFn, 3>{unscaleChunk<float>, unscaleChunk<Fp16>, unscaleChunk<Bf16>},
          t.unscale);
  copyRow(
      std::array<NonFiniteFn, 3>{nonFiniteChunk<float>, nonFiniteChunk<Fp16>, nonFiniteChunk<Bf16>},
      t.non_finite);
  copyRow(std::array<NormFn, 3>{squaredNormChunk<float>, squaredNormChunk<Fp16>,
                                squaredNormChunk<Bf16>},
          t.squared_norm);
  return t;
}

}  // namespace

const KernelTable& ZSHARD_KERNEL_TABLE() {
  static const KernelTable table = makeTable(ZSHARD_KERNEL_ISA);
  return table;
}

}  // namespace zshard::kernels::cpu
