// Checkpoint save/load throughput vs the machine's plain file write/read.
//
//   bench_ckpt [--gib 1] [--dir DIR] [--reps 3] [--help]
//
// Two ranks (threads over one HashStore, each with its own file and I/O)
// save and load a model state of --gib GiB in total (fp32 master, exp_avg,
// exp_avg_sq: 12 bytes per parameter) through zshard's checkpoint::save and
// load (2 -> 2 ranks), and, side by side in the same run and directory, the
// peer: each rank write()s its bytes to a file and fsyncs it, then read()s
// it back. Page cache: reads are preceded by a drop of the page cache when
// /proc/sys/vm/drop_caches is writable (root), so both sides read from the
// disk; the table says which. The order alternates between runs; median of
// --reps runs of each.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/rendezvous/hash_store.h"

using namespace zshard;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRanks = 2;
constexpr int kBuffers = 3;

bool dropCaches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!f) return false;
  f << "3\n";
  return static_cast<bool>(f.flush());
}

double timed(const std::function<void(int)>& per_rank) {
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) threads.emplace_back(per_rank, r);
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void plainWrite(const std::string& path, const std::vector<std::vector<float>>& buffers) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (const auto& b : buffers) {
    const char* p = reinterpret_cast<const char*>(b.data());
    size_t left = b.size() * sizeof(float);
    while (left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n <= 0) std::perror("write"), std::exit(1);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ::fsync(fd);
  ::close(fd);
}

void plainRead(const std::string& path, std::vector<std::vector<float>>& buffers) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  for (auto& b : buffers) {
    char* p = reinterpret_cast<char*>(b.data());
    size_t left = b.size() * sizeof(float);
    while (left > 0) {
      const ssize_t n = ::read(fd, p, left);
      if (n <= 0) std::perror("read"), std::exit(1);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ::close(fd);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_ckpt [--gib G] [--dir DIR] [--reps N]\n"
    "  checkpoint save/load of G GiB of optimizer state (default 1) on 2 ranks vs plain\n"
    "  write+fsync/read of the same bytes, in DIR (default: the temporary directory),\n"
    "  median of N runs (default 3); every run saves a new tag, as training does\n";

int main(int argc, char** argv) {
  double gib = 1.0;
  int reps = 3;
  std::string dir = (fs::temp_directory_path() / "zshard_ckpt_bench").string();
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (i + 1 >= argc || (a != "--gib" && a != "--dir" && a != "--reps")) {
      std::fprintf(stderr, "bench_ckpt: %s: %s\n%s", a.c_str(),
                   i + 1 >= argc ? "needs a value" : "unknown option", kUsage);
      return 2;
    }
    if (a == "--gib") gib = std::stod(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--reps") reps = std::stoi(argv[i + 1]);
  }
  const int64_t total_params = static_cast<int64_t>(gib * (1LL << 30) / (4 * kBuffers));
  std::vector<shard::ParamSpec> specs;
  for (int i = 0; i < 8; ++i) specs.push_back({{total_params / 8}, DType::kFloat32});
  const shard::ShardPlan plan = shard::ShardPlan::build(specs, kRanks, 16);
  const int64_t shard = plan.shardNumel();
  const double bytes = double(shard) * 4 * kBuffers * kRanks;
  checkpoint::ModelInfo model;
  for (int i = 0; i < 8; ++i) {
    model.names.push_back("layer" + std::to_string(i) + ".weight");
    model.shapes.push_back(specs[i].shape);
  }
  model.optimizer_type = "AdamW";
  model.buffer_names = {"master", "exp_avg", "exp_avg_sq"};
  model.scheduler_type = "none";
  std::vector<std::vector<std::vector<float>>> state(kRanks);
  for (int r = 0; r < kRanks; ++r) {
    for (int b = 0; b < kBuffers; ++b) {
      state[r].emplace_back(shard);
      for (int64_t i = 0; i < shard; ++i) state[r][b][i] = float(i % 1000) * 0.001f + b + r;
    }
  }
  auto shardState = [&](int r) {
    std::vector<float*> buffers;
    for (auto& b : state[r]) buffers.push_back(b.data());
    return checkpoint::ShardState::whole(kernels::cpuBackend(), buffers, shard);
  };
  fs::create_directories(dir);
  std::vector<double> save_s, write_s, load_s, read_s;
  bool cold = true;
  for (int rep = 0; rep < reps; ++rep) {
    rendezvous::HashStore store;
    const std::string ops = "rep" + std::to_string(rep);
    // Like a training run, every save goes to new files (a new tag); the
    // previous run's files are removed outside the timings.
    auto plainFile = [&](int r, int rep) {
      return dir + "/plain" + std::to_string(r) + "-" + std::to_string(rep) + ".bin";
    };
    auto ours_save = [&] {
      dropCaches();
      save_s.push_back(timed([&](int r) {
        rendezvous::PrefixStore op(store, ops + "/save");
        checkpoint::save({&op, r, kRanks}, {dir, "bench" + std::to_string(rep), true, "", ""}, plan,
                         model, shardState(r), {});
      }));
    };
    auto plain_write = [&] {
      dropCaches();
      write_s.push_back(timed([&](int r) { plainWrite(plainFile(r, rep), state[r]); }));
    };
    auto ours_load = [&] {
      cold = dropCaches() && cold;
      load_s.push_back(timed([&](int r) {
        rendezvous::PrefixStore op(store, ops + "/load");
        checkpoint::load({&op, r, kRanks}, dir, "", {}, plan, model, shardState(r));
      }));
    };
    auto plain_read = [&] {
      cold = dropCaches() && cold;
      read_s.push_back(timed([&](int r) { plainRead(plainFile(r, rep), state[r]); }));
    };
    // Alternate who goes first, so neither side profits from the order.
    if (rep % 2 == 0) {
      ours_save(), plain_write(), ours_load(), plain_read();
    } else {
      plain_write(), ours_save(), plain_read(), ours_load();
    }
    if (rep > 0) {
      fs::remove_all(dir + "/bench" + std::to_string(rep - 1));
      for (int r = 0; r < kRanks; ++r) fs::remove(plainFile(r, rep - 1));
    }
  }
  fs::remove_all(dir);
  const double gb = bytes / 1e9;
  const double save = gb / median(save_s), write = gb / median(write_s);
  const double load = gb / median(load_s), read = gb / median(read_s);
  std::printf(
      "checkpoint bench: %.3f GB of fp32 state (3 buffers x %lld floats x %d ranks), "
      "%d reps, median; reads %s\n",
      gb, static_cast<long long>(shard), kRanks, reps,
      cold ? "from disk (page cache dropped)" : "possibly from the page cache (not root)");
  std::printf("  %-34s %8.3f GB/s\n", "zshard save (hash + fsync + manifest)", save);
  std::printf("  %-34s %8.3f GB/s\n", "plain write + fsync", write);
  std::printf("  %-34s %8.3f GB/s\n", "zshard load (verified, 2 -> 2)", load);
  std::printf("  %-34s %8.3f GB/s\n", "plain read", read);
  std::printf("ckpt_load_fraction_of_disk=%.3f\n", load / read);
  std::printf("ckpt_save_fraction_of_disk=%.3f\n", save / write);
  return 0;
}
