#include <unistd.h>

#include <chrono>

#include "proto/tensorboard.pb.h"
#include "runtime/observe/append_file.h"
#include "runtime/observe/monitor.h"
#include "runtime/observe/tfrecord.h"

namespace zshard::observe {

namespace {

double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string eventFileName() {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  return "events.out.tfevents." + std::to_string(static_cast<int64_t>(wallSeconds())) + "." + host +
         "." + std::to_string(getpid());
}

class TensorboardMonitor : public MonitorSink {
 public:
  explicit TensorboardMonitor(const std::string& dir) : file_(dir + "/" + eventFileName()) {
    pb::tensorboard::Event version;
    version.set_wall_time(wallSeconds());
    version.set_file_version("brain.Event:2");
    append(version);
  }

  // One Event per scalar, as torch's SummaryWriter.add_scalar writes them.
  void write(const std::vector<Scalar>& scalars) override {
    const double now = wallSeconds();
    for (const Scalar& s : scalars) {
      pb::tensorboard::Event event;
      event.set_wall_time(now);
      event.set_step(s.step);
      pb::tensorboard::SummaryValue* value = event.mutable_summary()->add_value();
      value->set_tag(s.tag);
      value->set_simple_value(static_cast<float>(s.value));
      append(event);
    }
  }

  void flush() override { file_.flush(); }
  std::string describe() const override { return "tensorboard (" + file_.path() + ")"; }

 private:
  void append(const pb::tensorboard::Event& event) {
    file_.append(tfrecordFrame(event.SerializeAsString()));
  }

  AppendFile file_;
};

}  // namespace

std::unique_ptr<MonitorSink> makeTensorboardMonitor(const std::string& dir) {
  return std::make_unique<TensorboardMonitor>(dir);
}

}  // namespace zshard::observe
