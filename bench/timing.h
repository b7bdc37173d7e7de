#pragma once

// What the benchmarks share: the best of a few timed runs, and a parallel
// copy with the kernels' threads (the memory bandwidth a step is held to).
#include <algorithm>
#include <chrono>
#include <cstring>

namespace zshard::bench {

template <typename F>
double bestSeconds(F&& f, int repeats = 7) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

inline void parallelCopy(char* dst, const char* src, size_t bytes) {
  const size_t chunk = 1 << 20;
  const long chunks = static_cast<long>((bytes + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
  for (long c = 0; c < chunks; ++c) {
    const size_t begin = c * chunk;
    std::memcpy(dst + begin, src + begin, std::min(chunk, bytes - begin));
  }
}

}  // namespace zshard::bench
