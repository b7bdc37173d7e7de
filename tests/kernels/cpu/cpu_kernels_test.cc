// kernels.h on the CPU against float64 host references, over grad dtype x
// model dtype x size x misalignment, on random data with poisoned outputs;
// and every built ISA table against the portable one.
#include "kernels/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/cpu/element.h"
#include "kernels/cpu/kernel_table.h"
#include "tests/kernels/cpu/reference_rounding.h"

namespace zshard::kernels {
namespace {

using cpu::Bf16;
using cpu::Fp16;

// A buffer of n elements of `dtype` starting `shift` elements past an
// aligned allocation, followed by a guard that must stay untouched.
struct Buffer {
  Buffer(DType t, int64_t n, int shift) : dtype(t), count(n), offset(shift) {
    bytes.assign((n + shift + kGuard) * dtypeSize(t), 0xA5);
  }
  void* data() { return bytes.data() + offset * dtypeSize(dtype); }
  float get(int64_t i) const {
    const uint8_t* p = bytes.data() + (offset + i) * dtypeSize(dtype);
    uint16_t h;
    float f;
    switch (dtype) {
      case DType::kFloat16: std::memcpy(&h, p, 2); return cpu::toFloat(Fp16{h});
      case DType::kBFloat16: std::memcpy(&h, p, 2); return cpu::toFloat(Bf16{h});
      default: std::memcpy(&f, p, 4); return f;
    }
  }
  void set(int64_t i, float value) {
    uint8_t* p = bytes.data() + (offset + i) * dtypeSize(dtype);
    if (dtype == DType::kFloat32) return (void)std::memcpy(p, &value, 4);
    // Rounding independent of element.h.
    const uint16_t h =
        dtype == DType::kFloat16 ? testing::fp16Nearest(value) : testing::bf16Nearest(value);
    std::memcpy(p, &h, 2);
  }
  void poison() { std::memset(data(), 0xFF, count * dtypeSize(dtype)); }  // nan in every dtype
  bool guardIntact() const {
    for (size_t i = (offset + count) * dtypeSize(dtype); i < bytes.size(); ++i) {
      if (bytes[i] != 0xA5) return false;
    }
    return true;
  }
  static constexpr int kGuard = 16;
  DType dtype;
  int64_t count;
  int offset;
  std::vector<uint8_t> bytes;
};

// Fills with random normal values representable in the dtype.
void fillRandom(Buffer& b, std::mt19937& rng, float sigma, float mean = 0) {
  std::normal_distribution<float> dist(mean, sigma);
  for (int64_t i = 0; i < b.count; ++i) {
    b.set(i, dist(rng));  // rounded to the dtype
  }
}

bool close(double got, double want, double tol) {
  return std::fabs(got - want) <= tol;
}

// The model copy must be exactly the master rounded to its dtype.
void expectModelIsRoundedMaster(const std::vector<float>& master, Buffer& model) {
  Buffer expect(model.dtype, model.count, 0);
  for (int64_t i = 0; i < model.count; ++i) expect.set(i, master[i]);
  for (int64_t i = 0; i < model.count; ++i) {
    ASSERT_EQ(std::memcmp(&expect.bytes[i * dtypeSize(model.dtype)],
                          static_cast<uint8_t*>(model.data()) + i * dtypeSize(model.dtype),
                          dtypeSize(model.dtype)),
              0)
        << "element " << i << " master " << master[i];
  }
  ASSERT_TRUE(model.guardIntact());
}

using Case = std::tuple<DType, DType, int64_t, int>;  // grad, model, n, shift

class CpuKernels : public ::testing::TestWithParam<Case> {};

TEST_P(CpuKernels, AdamMatchesFloat64Reference) {
  const auto [gdt, mdt, n, shift] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(n * 7 + shift));
  Buffer grad(gdt, n, shift), model(mdt, n, shift);
  fillRandom(grad, rng, 2.0f);
  model.poison();
  std::vector<float> p(n), m(n), v(n);
  std::normal_distribution<float> dist(0, 1);
  for (int64_t i = 0; i < n; ++i)
    p[i] = dist(rng), m[i] = 0.1f * dist(rng), v[i] = 0.01f * std::fabs(dist(rng));
  const std::vector<float> p0 = p, m0 = m, v0 = v;
  for (bool adam_w : {true, false}) {
    p = p0, m = m0, v = v0;
    AdamHyper h;
    h.lr = 1e-2f, h.weight_decay = 0.1f, h.adam_w_mode = adam_w, h.step = 3;
    const float gs = 0.25f;
    adamStep(p.data(), m.data(), v.data(), {grad.data(), gdt}, {model.data(), mdt}, n, h, gs);
    // The reference takes the hyperparameters as the kernel gets them (floats).
    const double b1 = h.beta1, b2 = h.beta2, wd = h.weight_decay, lr = h.lr, eps = h.eps;
    const double bc1 = 1 - std::pow(b1, 3), bc2 = 1 - std::pow(b2, 3);
    for (int64_t i = 0; i < n; ++i) {
      const double g = double(grad.get(i)) * gs + (adam_w ? 0 : wd * p0[i]);
      // |terms| of g: the L2 term may cancel the gradient.
      const double g_mag =
          std::fabs(double(grad.get(i)) * gs) + (adam_w ? 0 : wd * std::fabs(p0[i]));
      const double mr = b1 * m0[i] + (1 - b1) * g, vr = b2 * v0[i] + (1 - b2) * g * g;
      const double upd = (mr / bc1) / (std::sqrt(vr / bc2) + eps) + (adam_w ? wd * p0[i] : 0);
      const double pr = p0[i] - lr * upd;
      // Tolerances scale with the terms summed (cancellation is not the kernel's error).
      ASSERT_TRUE(close(m[i], mr, 1e-6 * (std::fabs(b1 * m0[i]) + (1 - b1) * g_mag))) << i;
      ASSERT_TRUE(close(v[i], vr, 1e-6 * (b2 * v0[i] + (1 - b2) * g_mag * g_mag))) << i;
      // An error e in m moves the update by e / denom: bound it the same way.
      const double denom = std::sqrt(vr / bc2) + eps;
      const double upd_tol =
          1e-6 * (std::fabs(upd) + (std::fabs(b1 * m0[i]) + (1 - b1) * g_mag) / bc1 / denom);
      ASSERT_TRUE(close(p[i], pr, 1e-6 * std::fabs(p0[i]) + lr * upd_tol)) << i;
    }
    expectModelIsRoundedMaster(p, model);
  }
}

TEST_P(CpuKernels, SgdMatchesFloat64Reference) {
  const auto [gdt, mdt, n, shift] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(n * 11 + shift));
  Buffer grad(gdt, n, shift), model(mdt, n, shift);
  fillRandom(grad, rng, 1.0f);
  model.poison();
  std::vector<float> p(n), buf(n);
  std::normal_distribution<float> dist(0, 1);
  for (int64_t i = 0; i < n; ++i) p[i] = dist(rng), buf[i] = dist(rng);
  const std::vector<float> p0 = p, b0 = buf;
  SgdHyper h;
  h.lr = 0.1f, h.momentum = 0.9f, h.dampening = 0.1f, h.weight_decay = 0.01f, h.nesterov = true,
  h.step = 2;
  sgdStep(p.data(), buf.data(), {grad.data(), gdt}, {model.data(), mdt}, n, h, 0.5f);
  for (int64_t i = 0; i < n; ++i) {
    const double mom = h.momentum, damp = 1 - double(h.dampening), wd = h.weight_decay, lr = h.lr;
    const double d = double(grad.get(i)) * 0.5 + wd * p0[i];
    const double b = mom * b0[i] + damp * d;
    const double pr = p0[i] - lr * (d + mom * b);
    ASSERT_TRUE(close(buf[i], b, 1e-6 * (std::fabs(mom * b0[i]) + std::fabs(d)))) << i;
    ASSERT_TRUE(close(p[i], pr, 1e-6 * (std::fabs(p0[i]) + lr * (std::fabs(d) + std::fabs(b)))))
        << i;
  }
  expectModelIsRoundedMaster(p, model);
}

TEST_P(CpuKernels, LambHalvesMatchReference) {
  const auto [gdt, mdt, n, shift] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(n * 13 + shift));
  Buffer grad(gdt, n, shift), model(mdt, n, shift);
  fillRandom(grad, rng, 1.0f);
  model.poison();
  std::vector<float> p(n), m(n, 0.f), v(n, 0.f), update(n, NAN);
  std::normal_distribution<float> dist(0, 1);
  for (int64_t i = 0; i < n; ++i) p[i] = dist(rng);
  const std::vector<float> p0 = p;
  AdamHyper h;
  h.weight_decay = 0.01f, h.step = 1;
  lambUpdate(p.data(), m.data(), v.data(), {grad.data(), gdt}, update.data(), n, h, 1.0f);
  applyUpdate(p.data(), update.data(), -0.05f, {model.data(), mdt}, n);
  for (int64_t i = 0; i < n; ++i) {
    const double g = grad.get(i);
    const double u = (0.1 * g / 0.1) / (std::sqrt(0.001 * g * g / 0.001) + 1e-8) + 0.01 * p0[i];
    ASSERT_TRUE(close(update[i], u, 1e-5 * (std::fabs(u) + 1))) << i;
    ASSERT_TRUE(close(p[i], p0[i] - 0.05 * u, 1e-6 * (std::fabs(p0[i]) + 1))) << i;
  }
  expectModelIsRoundedMaster(p, model);
}

TEST_P(CpuKernels, NormUnscaleCastAccumulate) {
  const auto [gdt, mdt, n, shift] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(n * 17 + shift));
  Buffer x(gdt, n, shift);
  fillRandom(x, rng, 3.0f);
  double want = 0;
  for (int64_t i = 0; i < n; ++i) want += double(x.get(i)) * x.get(i);
  EXPECT_NEAR(squaredNorm({x.data(), gdt}, n), want, 1e-12 * want + 1e-300);
  EXPECT_FALSE(hasNonFinite({x.data(), gdt}, n));

  if (mdt != DType::kFloat32 && n > 0) {  // the "none" model slot reuses fp32 here
    Buffer out(mdt, n, shift);
    out.poison();
    cast({x.data(), gdt}, {out.data(), mdt}, n);
    std::vector<float> values(n);
    for (int64_t i = 0; i < n; ++i) values[i] = x.get(i);
    expectModelIsRoundedMaster(values, out);
    accumulate({out.data(), mdt}, {x.data(), gdt}, n);
    for (int64_t i = 0; i < n; ++i) {
      Buffer one(mdt, 1, 0);
      one.set(0, x.get(i));
      Buffer sum(mdt, 1, 0);
      sum.set(0, one.get(0) + x.get(i));
      ASSERT_EQ(out.get(i), sum.get(0)) << i;
    }
  }

  Buffer y(gdt, n, shift);
  for (int64_t i = 0; i < n; ++i) y.set(i, x.get(i));
  EXPECT_FALSE(unscale({y.data(), gdt}, n, 0.5f));
  Buffer halved(gdt, 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    halved.set(0, x.get(i) * 0.5f);  // exact but for fp16 subnormals, which round
    ASSERT_EQ(y.get(i), halved.get(0)) << i;
  }
  if (n > 0) {
    y.set(n / 2, INFINITY);
    EXPECT_TRUE(hasNonFinite({y.data(), gdt}, n));
    EXPECT_TRUE(unscale({y.data(), gdt}, n, 1.0f));
    y.set(n / 2, NAN);
    EXPECT_TRUE(hasNonFinite({y.data(), gdt}, n));
    EXPECT_TRUE(std::isnan(squaredNorm({y.data(), gdt}, n)));
  }
  ASSERT_TRUE(y.guardIntact());
}

INSTANTIATE_TEST_SUITE_P(
    DtypeSizeShift, CpuKernels,
    ::testing::Combine(::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16),
                       ::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16),
                       ::testing::Values(int64_t{0}, int64_t{1}, int64_t{7}, int64_t{33},
                                         int64_t{1000}, int64_t{70001}),
                       ::testing::Values(0, 1, 3)));

TEST(CpuKernels, NoModelCopyIsAllowed) {
  std::vector<float> p(100, 1.f), m(100, 0.f), v(100, 0.f), g(100, 1.f);
  adamStep(p.data(), m.data(), v.data(), {g.data(), DType::kFloat32}, {}, 100, AdamHyper{}, 1.f);
  EXPECT_NEAR(p[0], 1.f - 1e-3f, 1e-7);  // first Adam step moves by lr
}

TEST(CpuKernels, NormIsDeterministicAcrossThreadCounts) {
  std::vector<float> x(300000);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 1);
  for (float& e : x) e = dist(rng);
  const double a = squaredNorm({x.data(), DType::kFloat32}, static_cast<int64_t>(x.size()));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(squaredNorm({x.data(), DType::kFloat32}, static_cast<int64_t>(x.size())), a);
  }
}

// Every ISA built and supported by this CPU gives bitwise the portable
// result for element-wise kernels (fp contraction is off).
TEST(CpuKernels, IsaTablesAgreeBitwise) {
  std::vector<const cpu::KernelTable*> tables = {&cpu::tablePortable()};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
      __builtin_cpu_supports("fma")) {
    tables.push_back(&cpu::tableAvx2());
  }
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    tables.push_back(&cpu::tableAvx512());
  }
  const int64_t n = 4099;
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> p0(n), g(n);
  for (int64_t i = 0; i < n; ++i) p0[i] = dist(rng), g[i] = dist(rng);
  cpu::AdamCoeffs c{0.9f, 0.999f, 0.1f, 0.001f, 1e-3f, 1e-8f, 0.f, 0.01f, 10.f, 31.6f};
  std::vector<std::vector<float>> results;
  std::vector<std::vector<uint16_t>> copies;
  for (const cpu::KernelTable* t : tables) {
    std::vector<float> p = p0, m(n, 0.01f), v(n, 0.02f);
    std::vector<uint16_t> out(n);
    t->adam[0][2](p.data(), m.data(), v.data(), g.data(), out.data(), n, c, 0.5f);
    results.push_back(p);
    copies.push_back(out);
  }
  for (size_t k = 1; k < tables.size(); ++k) {
    EXPECT_EQ(std::memcmp(results[k].data(), results[0].data(), n * 4), 0) << tables[k]->isa;
    EXPECT_EQ(copies[k], copies[0]) << tables[k]->isa;
  }
  std::printf("ISA tables compared: %zu (selected: %s)\n", tables.size(), cpuIsa());
}

}  // namespace
}  // namespace zshard::kernels
