#include <map>

#include "runtime/observe/append_file.h"
#include "runtime/observe/monitor.h"

namespace zshard::observe {

namespace {

class CsvMonitor : public MonitorSink {
 public:
  explicit CsvMonitor(std::string dir) : dir_(std::move(dir)) { makeDirectories(dir_); }

  void write(const std::vector<Scalar>& scalars) override {
    for (const Scalar& s : scalars) {
      fileFor(s.tag).append(std::to_string(s.step) + "," + shortestDecimal(s.value) + "\n");
    }
  }

  void flush() override {
    for (auto& [tag, file] : files_) file->flush();
  }

  std::string describe() const override { return "csv_monitor (" + dir_ + ")"; }

 private:
  // DeepSpeed's: the tag with '/' and ' ' as '_' names the file; the header
  // is "step,<the tag's last part>", written when the file is new.
  AppendFile& fileFor(const std::string& tag) {
    auto it = files_.find(tag);
    if (it != files_.end()) return *it->second;
    std::string name = tag;
    for (char& c : name) c = (c == '/' || c == ' ') ? '_' : c;
    auto file = std::make_unique<AppendFile>(dir_ + "/" + name + ".csv");
    if (file->wasEmpty()) file->append("step," + tag.substr(tag.find_last_of('/') + 1) + "\n");
    return *files_.emplace(tag, std::move(file)).first->second;
  }

  std::string dir_;
  std::map<std::string, std::unique_ptr<AppendFile>> files_;
};

}  // namespace

std::unique_ptr<MonitorSink> makeCsvMonitor(const std::string& dir) {
  return std::make_unique<CsvMonitor>(dir);
}

}  // namespace zshard::observe
