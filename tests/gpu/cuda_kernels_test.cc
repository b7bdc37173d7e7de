// The CUDA twins against the CPU kernels (the oracle) over grad dtype x
// model dtype x size x misalignment, on random data with poisoned outputs.
// Both sides avoid FMA contraction, so element-wise results must match
// bit for bit; the norm to 1e-12 relative. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/backend.h"

namespace zshard::kernels {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (!cudaAvailable()) GTEST_SKIP() << "no usable CUDA GPU here"

// Host bytes of n elements and their device copy, `shift` elements past an
// aligned allocation.
struct Twin {
  Twin(DType t, int64_t count, int shift) : dtype(t), n(count), offset(shift * dtypeSize(t)) {
    host.resize(n * dtypeSize(t));
    base = cudaBackend(0).allocate(host.size() + offset + 64);
  }
  ~Twin() { cudaBackend(0).release(base); }
  void* dev() const { return static_cast<char*>(base) + offset; }
  void upload() { cudaBackend(0).copyFromHost(dev(), host.data(), host.size()); }
  std::vector<char> download() const {
    std::vector<char> out(host.size());
    cudaBackend(0).copyToHost(out.data(), dev(), out.size());
    return out;
  }
  void poisonBoth() {
    std::memset(host.data(), 0xFF, host.size());
    upload();
  }
  DType dtype;
  int64_t n;
  size_t offset;
  std::vector<char> host;
  void* base;
};

void fillRandom(Twin& t, std::mt19937& rng, float sigma, bool positive = false) {
  std::normal_distribution<float> dist(0, sigma);
  std::vector<float> values(t.n);
  for (float& v : values) v = positive ? std::fabs(dist(rng)) : dist(rng);
  cast({values.data(), DType::kFloat32}, {t.host.data(), t.dtype}, t.n);
  t.upload();
}

void expectSameBits(const Twin& t, const char* what) {
  const std::vector<char> gpu = t.download();
  if (gpu == t.host) return;
  const size_t e = dtypeSize(t.dtype);
  for (int64_t i = 0; i < t.n; ++i) {
    if (std::memcmp(gpu.data() + i * e, t.host.data() + i * e, e) != 0) {
      ADD_FAILURE() << what << ": first difference at element " << i << " of " << t.n;
      return;
    }
  }
}

using Case = std::tuple<DType, int, int64_t, int>;  // grad dtype, model (-1 none), n, shift

std::string caseName(const Case& c) {
  const int m = std::get<1>(c);
  return std::string("grad_") + dtypeName(std::get<0>(c)) + "_model_" +
         (m < 0 ? "none" : dtypeName(static_cast<DType>(m))) + "_n" +
         std::to_string(std::get<2>(c)) + "_shift" + std::to_string(std::get<3>(c));
}

class CudaTwins : public ::testing::TestWithParam<Case> {};

TEST_P(CudaTwins, AdamSgdLambMatchTheCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  const auto [gdt, model_code, n, shift] = GetParam();
  const bool has_model = model_code >= 0;
  const DType mdt = has_model ? static_cast<DType>(model_code) : DType::kFloat32;
  Backend& gpu = cudaBackend(0);
  Backend& cpu = cpuBackend();
  std::mt19937 rng(static_cast<unsigned>(n * 31 + shift));
  Twin p(DType::kFloat32, n, shift), m(DType::kFloat32, n, shift), v(DType::kFloat32, n, shift),
      g(gdt, n, shift), out(mdt, n, shift), upd(DType::kFloat32, n, shift);
  fillRandom(p, rng, 1), fillRandom(m, rng, 0.1f), fillRandom(v, rng, 0.01f, true),
      fillRandom(g, rng, 3);
  out.poisonBoth();
  auto f = [](Twin& t, bool dev) {
    return reinterpret_cast<float*>(dev ? t.dev() : t.host.data());
  };
  auto model = [&](bool dev) {
    return has_model ? View{dev ? out.dev() : out.host.data(), mdt} : View{};
  };
  AdamHyper h;
  h.lr = 1e-2f, h.weight_decay = 0.1f, h.step = 7;
  for (bool adam_w : {true, false}) {
    h.adam_w_mode = adam_w;
    cpu.adamStep(f(p, false), f(m, false), f(v, false), {g.host.data(), gdt}, model(false), n, h,
                 0.5f);
    gpu.adamStep(f(p, true), f(m, true), f(v, true), {g.dev(), gdt}, model(true), n, h, 0.5f);
  }
  SgdHyper s;
  s.momentum = 0.9f, s.nesterov = true, s.weight_decay = 0.01f, s.step = 2;
  cpu.sgdStep(f(p, false), f(m, false), {g.host.data(), gdt}, model(false), n, s, 2.f);
  gpu.sgdStep(f(p, true), f(m, true), {g.dev(), gdt}, model(true), n, s, 2.f);
  upd.poisonBoth();
  cpu.lambUpdate(f(p, false), f(m, false), f(v, false), {g.host.data(), gdt}, f(upd, false), n, h,
                 1.f);
  gpu.lambUpdate(f(p, true), f(m, true), f(v, true), {g.dev(), gdt}, f(upd, true), n, h, 1.f);
  cpu.applyUpdate(f(p, false), f(upd, false), -0.01f, model(false), n);
  gpu.applyUpdate(f(p, true), f(upd, true), -0.01f, model(true), n);
  gpu.synchronize();
  expectSameBits(p, "master");
  expectSameBits(m, "m / momentum");
  expectSameBits(v, "v");
  expectSameBits(upd, "lamb update");
  if (has_model) expectSameBits(out, "model copy");
}

TEST_P(CudaTwins, ReductionsCastsAndAccumulate) {
  SKIP_WITHOUT_GPU();
  const auto [gdt, model_code, n, shift] = GetParam();
  if (model_code < 0) GTEST_SKIP() << "covered by the dtype cases";
  const DType mdt = static_cast<DType>(model_code);
  Backend& gpu = cudaBackend(0);
  Backend& cpu = cpuBackend();
  std::mt19937 rng(static_cast<unsigned>(n * 17 + shift));
  Twin x(gdt, n, shift), y(mdt, n, shift);
  fillRandom(x, rng, 2.f);
  const double want = cpu.squaredNorm({x.host.data(), gdt}, n);
  EXPECT_NEAR(gpu.squaredNorm({x.dev(), gdt}, n), want, 1e-12 * want + 1e-300);
  EXPECT_EQ(gpu.squaredNorm({x.dev(), gdt}, n),
            gpu.squaredNorm({x.dev(), gdt}, n));  // deterministic
  EXPECT_FALSE(gpu.hasNonFinite({x.dev(), gdt}, n));
  y.poisonBoth();
  cpu.cast({x.host.data(), gdt}, {y.host.data(), mdt}, n);
  gpu.cast({x.dev(), gdt}, {y.dev(), mdt}, n);
  cpu.accumulate({y.host.data(), mdt}, {x.host.data(), gdt}, n);
  gpu.accumulate({y.dev(), mdt}, {x.dev(), gdt}, n);
  EXPECT_EQ(cpu.unscale({y.host.data(), mdt}, n, 0.25f), gpu.unscale({y.dev(), mdt}, n, 0.25f));
  expectSameBits(y, "cast + accumulate + unscale");
  if (n > 2) {
    const float inf = INFINITY;
    std::vector<char> one(dtypeSize(gdt));
    cast({&inf, DType::kFloat32}, {one.data(), gdt}, 1);
    cudaBackend(0).copyFromHost(static_cast<char*>(x.dev()) + (n / 2) * dtypeSize(gdt), one.data(),
                                one.size());
    EXPECT_TRUE(gpu.hasNonFinite({x.dev(), gdt}, n));
    EXPECT_TRUE(gpu.unscale({x.dev(), gdt}, n, 1.f));
  }
}

INSTANTIATE_TEST_SUITE_P(
    DtypeSizeShift, CudaTwins,
    ::testing::Combine(::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16),
                       ::testing::Values(-1, int(DType::kFloat32), int(DType::kFloat16),
                                         int(DType::kBFloat16)),
                       ::testing::Values(int64_t{1}, int64_t{7}, int64_t{8}, int64_t{1000},
                                         int64_t{70001}, int64_t{(1 << 20) + 3}),
                       ::testing::Values(0, 1, 3)),
    [](const auto& info) { return caseName(info.param); });

TEST(CudaKernels, DeviceScalarsSkipAndScaleWithoutHostSync) {
  SKIP_WITHOUT_GPU();
  Backend& gpu = cudaBackend(0);
  const int64_t n = 4096;
  Twin p(DType::kFloat32, n, 0), m(DType::kFloat32, n, 0), v(DType::kFloat32, n, 0),
      g(DType::kFloat32, n, 0);
  std::mt19937 rng(1);
  fillRandom(p, rng, 1), fillRandom(g, rng, 1);
  Twin skip(DType::kFloat32, 1, 0), scale(DType::kFloat32, 1, 0);
  const int32_t one = 1;
  const float half = 0.5f;
  gpu.copyFromHost(skip.dev(), &one, 4);
  gpu.copyFromHost(scale.dev(), &half, 4);
  AdamHyper h;
  h.skip_ptr = static_cast<const int32_t*>(skip.dev());
  auto fp = [](Twin& t) { return static_cast<float*>(t.dev()); };
  gpu.adamStep(fp(p), fp(m), fp(v), {g.dev(), DType::kFloat32}, {}, n, h, 1.f);
  expectSameBits(p, "skipped step must not change the master");  // host still holds the input
  // Scale read on the device: grad_scale 1 x 0.5 there == grad_scale 0.5 on the CPU.
  h.skip_ptr = nullptr;
  h.scale_ptr = static_cast<const float*>(scale.dev());
  gpu.adamStep(fp(p), fp(m), fp(v), {g.dev(), DType::kFloat32}, {}, n, h, 1.f);
  h.scale_ptr = nullptr;
  cpuBackend().adamStep(
      reinterpret_cast<float*>(p.host.data()), reinterpret_cast<float*>(m.host.data()),
      reinterpret_cast<float*>(v.host.data()), {g.host.data(), DType::kFloat32}, {}, n, h, 0.5f);
  expectSameBits(p, "scaled step");
}

}  // namespace
}  // namespace zshard::kernels
