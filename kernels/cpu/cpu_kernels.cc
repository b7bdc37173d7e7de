// kernels.h on the CPU: argument checks, per-step constants, and OpenMP
// over fixed-size chunks of the ISA-specific chunk kernels.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/adam_coeffs.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/kernels.h"
#include "runtime/core/error.h"

namespace zshard::kernels {

namespace {

using cpu::KernelTable;

// Fixed chunking keeps reductions independent of the thread count.
constexpr int64_t kChunk = 1 << 15;

const KernelTable& table() {
  static const KernelTable& t = cpu::selectTable();
  return t;
}

int index(DType t) {
  switch (t) {
    case DType::kFloat16: return 1;
    case DType::kBFloat16: return 2;
    default: return 0;
  }
}

int outIndex(View v) {
  return v.data == nullptr ? 3 : index(v.dtype);
}

template <typename P>
P* advance(P* base, DType t, int64_t elements) {
  if (base == nullptr) return nullptr;
  using Byte = std::conditional_t<std::is_const_v<P>, const char, char>;
  return reinterpret_cast<Byte*>(base) + elements * static_cast<int64_t>(dtypeSize(t));
}

// Runs f(begin, count) over [0, n) in kChunk pieces on all OpenMP threads.
template <typename F>
void forChunks(int64_t n, F&& f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(kChunk, n - c * kChunk));
}

// OR of f(begin, count) over all chunks.
template <typename F>
bool anyChunk(int64_t n, F&& f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<char> flags(static_cast<size_t>(chunks), 0);
  forChunks(n, [&](int64_t begin, int64_t count) { flags[begin / kChunk] = f(begin, count); });
  return std::any_of(flags.begin(), flags.end(), [](char b) { return b != 0; });
}

void checkCount(int64_t n, const char* kernel) {
  if (n < 0) throw Error(std::string(kernel) + ": " + expectedGot("n >= 0", std::to_string(n)));
}

}  // namespace

void adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
              const AdamHyper& h, float grad_scale) {
  checkCount(n, "adamStep");
  if (h.skip_ptr != nullptr && *h.skip_ptr != 0) return;
  if (h.scale_ptr != nullptr) grad_scale *= *h.scale_ptr;
  const AdamCoeffs c = adamCoeffs(h);
  const cpu::AdamFn fn = table().adam[index(grad.dtype)][outIndex(model)];
  forChunks(n, [&](int64_t b, int64_t count) {
    fn(master + b, m + b, v + b, advance(grad.data, grad.dtype, b),
       advance(model.data, model.dtype, b), count, c, grad_scale);
  });
}

void sgdStep(float* master, float* momentum_buf, ConstView grad, View model, int64_t n,
             const SgdHyper& h, float grad_scale) {
  checkCount(n, "sgdStep");
  const SgdCoeffs c = sgdCoeffs(h);
  const cpu::SgdFn fn = table().sgd[index(grad.dtype)][outIndex(model)];
  forChunks(n, [&](int64_t b, int64_t count) {
    fn(master + b, momentum_buf == nullptr ? nullptr : momentum_buf + b,
       advance(grad.data, grad.dtype, b), advance(model.data, model.dtype, b), count, c,
       grad_scale);
  });
}

void lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update, int64_t n,
                const AdamHyper& h, float grad_scale) {
  checkCount(n, "lambUpdate");
  const AdamCoeffs c = lambCoeffs(h);
  const cpu::LambFn fn = table().lamb[index(grad.dtype)];
  forChunks(n, [&](int64_t b, int64_t count) {
    fn(master + b, m + b, v + b, advance(grad.data, grad.dtype, b), update + b, count, c,
       grad_scale);
  });
}

void applyUpdate(float* master, const float* update, float alpha, View model, int64_t n) {
  checkCount(n, "applyUpdate");
  const cpu::ApplyFn fn = table().apply[outIndex(model)];
  forChunks(n, [&](int64_t b, int64_t count) {
    fn(master + b, update + b, alpha, advance(model.data, model.dtype, b), count);
  });
}

bool unscale(View x, int64_t n, float multiplier) {
  checkCount(n, "unscale");
  const cpu::UnscaleFn fn = table().unscale[index(x.dtype)];
  return anyChunk(n, [&](int64_t b, int64_t count) {
    return fn(advance(x.data, x.dtype, b), count, multiplier);
  });
}

bool hasNonFinite(ConstView x, int64_t n) {
  checkCount(n, "hasNonFinite");
  const cpu::NonFiniteFn fn = table().non_finite[index(x.dtype)];
  return anyChunk(n,
                  [&](int64_t b, int64_t count) { return fn(advance(x.data, x.dtype, b), count); });
}

double squaredNorm(ConstView x, int64_t n) {
  checkCount(n, "squaredNorm");
  const cpu::NormFn fn = table().squared_norm[index(x.dtype)];
  std::vector<double> partial(static_cast<size_t>((n + kChunk - 1) / kChunk), 0.0);
  forChunks(n, [&](int64_t b, int64_t count) {
    partial[b / kChunk] = fn(advance(x.data, x.dtype, b), count);
  });
  double sum = 0;
  for (double p : partial) sum += p;
  return sum;
}

void scale(View x, int64_t n, float s) {
  unscale(x, n, s);
}

void cast(ConstView src, View dst, int64_t n) {
  checkCount(n, "cast");
  const cpu::CastFn fn = table().cast[index(src.dtype)][index(dst.dtype)];
  forChunks(n, [&](int64_t b, int64_t count) {
    fn(advance(src.data, src.dtype, b), advance(dst.data, dst.dtype, b), count);
  });
}

void accumulate(View dst, ConstView src, int64_t n) {
  checkCount(n, "accumulate");
  const cpu::CastFn fn = table().accumulate[index(dst.dtype)][index(src.dtype)];
  forChunks(n, [&](int64_t b, int64_t count) {
    fn(advance(src.data, src.dtype, b), advance(dst.data, dst.dtype, b), count);
  });
}

const char* cpuIsa() {
  return table().isa;
}

}  // namespace zshard::kernels
