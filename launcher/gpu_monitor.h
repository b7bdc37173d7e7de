#pragma once

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace zshard::launcher {

// What was seen of one GPU during the job.
struct GpuUsage {
  int index = 0;  // NVML index
  bool had_worker = false;
  double mean_utilisation = 0;  // percent busy
  double peak_memory_mib = 0;
  int samples = 0;
};

// The end-of-job report: one line per GPU, and a warning for a reserved GPU
// that had no worker or stayed under 10% busy. Pure function.
std::string gpuReport(const std::vector<GpuUsage>& usage);

// Samples this node's GPUs (those in CUDA_VISIBLE_DEVICES, else all) through
// NVML, loaded at run time with dlopen: without NVML (or GPUs) it does
// nothing and report() is empty — never an error. Local rank r uses the
// r-th GPU. Sampling runs on its own thread from start() to stop().
class GpuMonitor {
 public:
  GpuMonitor(int local_workers, double interval_seconds);
  ~GpuMonitor();
  // Also append every sample to `path` (CSV: seconds since start, host,
  // gpu, worker 0/1, utilisation %, memory MiB), what the run report plots.
  // Call before start(); without NVML nothing is written.
  void recordTo(const std::string& path);
  void start();
  void stop();
  std::string report() const;

 private:
  struct Nvml;
  void sample();

  std::unique_ptr<Nvml> nvml_;
  std::vector<GpuUsage> usage_;
  double interval_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::ofstream samples_;
  std::string host_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace zshard::launcher
