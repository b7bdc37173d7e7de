#include <chrono>
#include <cmath>

#include "runtime/observe/append_file.h"
#include "runtime/observe/monitor.h"
#include "runtime/observe/trace.h"

namespace zshard::observe {

namespace {

std::string number(double value) {
  return std::isfinite(value) ? shortestDecimal(value) : "null";  // JSON has no inf/nan
}

class JsonLinesMonitor : public MonitorSink {
 public:
  explicit JsonLinesMonitor(const std::string& path) : file_(path) {}

  void write(const std::vector<Scalar>& scalars) override {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (const Scalar& s : scalars) {
      file_.append("{\"tag\":\"" + jsonEscape(s.tag) + "\",\"value\":" + number(s.value) +
                   ",\"step\":" + std::to_string(s.step) + ",\"time\":" + number(now) + "}\n");
    }
  }

  void flush() override { file_.flush(); }
  std::string describe() const override { return "run log (" + file_.path() + ")"; }

 private:
  AppendFile file_;
};

}  // namespace

std::unique_ptr<MonitorSink> makeJsonLinesMonitor(const std::string& path) {
  return std::make_unique<JsonLinesMonitor>(path);
}

}  // namespace zshard::observe
