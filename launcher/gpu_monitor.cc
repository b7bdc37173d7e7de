// NVML adapter (dlopen'ed; the few NVML types used are declared here from
// NVML's documented C ABI, so building needs no NVML headers).
#include "launcher/gpu_monitor.h"

#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace zshard::launcher {

namespace {

using NvmlDevice = void*;
struct NvmlUtilization {
  unsigned int gpu, memory;
};
struct NvmlMemory {
  unsigned long long total, free, used;
};

std::vector<int> visibleGpus(unsigned count) {
  std::vector<int> out;
  const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
  if (env == nullptr) {
    for (unsigned i = 0; i < count; ++i) out.push_back(static_cast<int>(i));
    return out;
  }
  std::stringstream in(env);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long i = std::strtol(item.c_str(), &end, 10);
    if (!item.empty() && *end == '\0' && i >= 0 && static_cast<unsigned>(i) < count)
      out.push_back(int(i));
  }
  return out;
}

}  // namespace

struct GpuMonitor::Nvml {
  void* lib = nullptr;
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*count)(unsigned*) = nullptr;
  int (*handle)(unsigned, NvmlDevice*) = nullptr;
  int (*utilisation)(NvmlDevice, NvmlUtilization*) = nullptr;
  int (*memory)(NvmlDevice, NvmlMemory*) = nullptr;

  bool load() {
    lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return false;
    init = reinterpret_cast<int (*)()>(dlsym(lib, "nvmlInit_v2"));
    shutdown = reinterpret_cast<int (*)()>(dlsym(lib, "nvmlShutdown"));
    count = reinterpret_cast<int (*)(unsigned*)>(dlsym(lib, "nvmlDeviceGetCount_v2"));
    handle = reinterpret_cast<int (*)(unsigned, NvmlDevice*)>(
        dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    utilisation = reinterpret_cast<int (*)(NvmlDevice, NvmlUtilization*)>(
        dlsym(lib, "nvmlDeviceGetUtilizationRates"));
    memory =
        reinterpret_cast<int (*)(NvmlDevice, NvmlMemory*)>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
    return init && shutdown && count && handle && utilisation && memory && init() == 0;
  }
  ~Nvml() {
    if (shutdown != nullptr) shutdown();
    if (lib != nullptr) dlclose(lib);
  }
};

std::string gpuReport(const std::vector<GpuUsage>& usage) {
  std::ostringstream out;
  char line[256];
  for (const GpuUsage& g : usage) {
    std::snprintf(line, sizeof line,
                  "zlaunch: GPU %d: %s, mean utilisation %.0f%%, peak memory %.0f MiB\n", g.index,
                  g.had_worker ? "used" : "NO WORKER", g.mean_utilisation, g.peak_memory_mib);
    out << line;
    if (!g.had_worker) {
      out << "zlaunch: warning: GPU " << g.index
          << " was reserved but no worker used it (reserving more GPUs isn't enough: start one "
             "worker per GPU, "
             "--nproc-per-node)\n";
    } else if (g.samples > 0 && g.mean_utilisation < 10) {
      out << "zlaunch: warning: GPU " << g.index
          << " stayed under 10% busy (reserving more GPUs isn't enough: "
          << "the job is bound elsewhere — input pipeline, CPU, communication)\n";
    }
  }
  return out.str();
}

GpuMonitor::GpuMonitor(int local_workers, double interval_seconds)
    : nvml_(std::make_unique<Nvml>()), interval_(interval_seconds > 0 ? interval_seconds : 1.0) {
  unsigned count = 0;
  if (!nvml_->load() || nvml_->count(&count) != 0 || count == 0) {
    nvml_.reset();
    return;
  }
  const std::vector<int> gpus = visibleGpus(count);
  for (size_t i = 0; i < gpus.size(); ++i) {
    GpuUsage u;
    u.index = gpus[i];
    u.had_worker = static_cast<int>(i) < local_workers;
    usage_.push_back(u);
  }
}

GpuMonitor::~GpuMonitor() {
  stop();
}

void GpuMonitor::recordTo(const std::string& path) {
  if (!nvml_) return;
  samples_.open(path, std::ios::trunc);
  samples_ << "time,host,gpu,worker,utilisation,memory_mib\n";
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  host_ = host;
}

void GpuMonitor::start() {
  if (!nvml_ || running_) return;
  running_ = true;
  started_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] {
    while (running_) {
      sample();
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::duration<double>(interval_);
      while (running_ && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  });
}

void GpuMonitor::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

void GpuMonitor::sample() {
  for (GpuUsage& u : usage_) {
    NvmlDevice device = nullptr;
    NvmlUtilization util{};
    NvmlMemory mem{};
    if (nvml_->handle(static_cast<unsigned>(u.index), &device) != 0) continue;
    if (nvml_->utilisation(device, &util) == 0) {
      u.mean_utilisation = (u.mean_utilisation * u.samples + util.gpu) / (u.samples + 1);
      ++u.samples;
    }
    if (nvml_->memory(device, &mem) == 0)
      u.peak_memory_mib = std::max(u.peak_memory_mib, mem.used / 1048576.0);
    if (samples_.is_open()) {
      const double t =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      samples_ << t << "," << host_ << "," << u.index << "," << (u.had_worker ? 1 : 0) << ","
               << util.gpu << "," << mem.used / 1048576.0 << "\n";
    }
  }
  if (samples_.is_open()) samples_.flush();
}

std::string GpuMonitor::report() const {
  return nvml_ ? gpuReport(usage_) : "";
}

}  // namespace zshard::launcher
