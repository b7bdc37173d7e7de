#include "runtime/observe/comms_log.h"

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "runtime/core/logging.h"
#include "runtime/observe/progress.h"
#include "runtime/observe/trace.h"

namespace zshard::observe {

namespace {

std::atomic<int64_t> waited{0};

double percentile(const std::vector<int64_t>& sorted, double p) {
  const size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[std::min(i, sorted.size() - 1)]);
}

CommsRow rowOf(const std::string& op, int64_t bytes, std::vector<int64_t> micros, int ranks) {
  std::sort(micros.begin(), micros.end());
  CommsRow row{op, bytes, static_cast<int64_t>(micros.size())};
  double sum = 0;
  for (int64_t m : micros) sum += static_cast<double>(m);
  row.mean_us = sum / static_cast<double>(micros.size());
  row.p50_us = percentile(micros, 0.5);
  row.p99_us = percentile(micros, 0.99);
  if (row.mean_us > 0) row.algbw_gbps = static_cast<double>(bytes) / (row.mean_us * 1e3);
  row.busbw_gbps = row.algbw_gbps * busBandwidthFactor(op, ranks);
  return row;
}

}  // namespace

double busBandwidthFactor(const std::string& op, int ranks) {
  const double n = ranks;
  if (op == "all_reduce") return 2 * (n - 1) / n;
  if (op == "reduce_scatter" || op == "all_gather") return (n - 1) / n;
  if (op == "broadcast") return 1;
  return 0;
}

std::string deepspeedOpName(const std::string& op) {
  if (op == "reduceScatter") return "reduce_scatter";
  if (op == "allGather") return "all_gather";
  if (op == "allReduce") return "all_reduce";
  return op;  // broadcast, barrier
}

CommsLog& CommsLog::get() {
  static CommsLog* log = new CommsLog();  // never destroyed: threads may record at exit
  return *log;
}

void CommsLog::configure(bool enabled, bool verbose, std::set<std::string> ops) {
  std::lock_guard<std::mutex> lock(mutex_);
  enabled_ = enabled;
  verbose_ = verbose;
  ops_ = std::move(ops);
}

bool CommsLog::enabled() const {
  return enabled_.load(std::memory_order_relaxed);
}

void CommsLog::record(const std::string& communicator_op, int64_t bytes, int ranks,
                      int64_t micros) {
  const std::string op = deepspeedOpName(communicator_op);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!enabled_ || (!ops_.empty() && ops_.count(op) == 0)) return;
  ranks_ = ranks;
  latencies_[{op, bytes}].push_back(micros);
  if (verbose_) {
    log(LogLevel::kInfo, "comm op: " + op + " | time (ms): " + std::to_string(micros / 1e3) +
                             " | msg size: " + humanBytes(static_cast<double>(bytes)));
  }
}

std::vector<CommsRow> CommsLog::summary() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<CommsRow> rows;
  for (const auto& [key, micros] : latencies_)
    rows.push_back(rowOf(key.first, key.second, micros, ranks_));
  return rows;
}

std::string CommsLog::table() const {
  const std::vector<CommsRow> rows = summary();
  std::string out =
      "Comm. Op        Message Size    Count   Total Latency(ms)  Avg Latency(ms)  p50(ms)   "
      "p99(ms)   algbw (GB/s)  busbw (GB/s)\n";
  for (const CommsRow& r : rows) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "%-15s %-15s %-7lld %-18.3f %-16.3f %-9.3f %-9.3f %-13.3f %.3f\n", r.op.c_str(),
                  humanBytes(static_cast<double>(r.bytes)).c_str(), static_cast<long long>(r.count),
                  r.mean_us * static_cast<double>(r.count) / 1e3, r.mean_us / 1e3, r.p50_us / 1e3,
                  r.p99_us / 1e3, r.algbw_gbps, r.busbw_gbps);
    out += line;
  }
  return out;
}

void CommsLog::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  latencies_.clear();
}

void collectiveDone(const char* op, int64_t bytes, int ranks, int64_t sequence,
                    const std::string& communicator, int64_t begin_us, int64_t end_us) {
  CommsLog& log = CommsLog::get();
  if (log.enabled()) log.record(op, bytes, ranks, end_us - begin_us);
  Trace& trace = Trace::get();
  if (!trace.recording()) return;
  const std::string number = sequence < 0 ? "" : " #" + std::to_string(sequence);
  trace.slice(deepspeedOpName(op) + number, "comm", begin_us, end_us,
              "\"bytes\":" + std::to_string(bytes) + ",\"communicator\":\"" +
                  jsonEscape(communicator.empty() ? "main" : communicator) + "\"");
}

void addWaited(int64_t micros) {
  waited.fetch_add(micros, std::memory_order_relaxed);
}

int64_t waitedMicros() {
  return waited.load(std::memory_order_relaxed);
}

}  // namespace zshard::observe
