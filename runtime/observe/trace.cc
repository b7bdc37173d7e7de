#include "runtime/observe/trace.h"

#include <chrono>
#include <cstdio>
#include <sstream>

#include "runtime/checkpoint/atomic_file.h"

namespace zshard::observe {

namespace {

std::atomic<int> next_thread{0};

void writeSlice(std::ostringstream& out, const Slice& s, int rank) {
  out << "{\"ph\":\"X\",\"name\":\"" << jsonEscape(s.name) << "\",\"cat\":\"" << s.category
      << "\",\"pid\":" << rank << ",\"tid\":" << s.thread << ",\"ts\":" << s.begin_us
      << ",\"dur\":" << (s.end_us - s.begin_us);
  if (!s.args_json.empty()) out << ",\"args\":{" << s.args_json << "}";
  out << "}";
}

void writeName(std::ostringstream& out, const char* what, int rank, int tid,
               const std::string& name) {
  out << "{\"ph\":\"M\",\"name\":\"" << what << "\",\"pid\":" << rank << ",\"tid\":" << tid
      << ",\"args\":{\"name\":\"" << jsonEscape(name) << "\"}}";
}

}  // namespace

int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string jsonEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

Trace& Trace::get() {
  static Trace* trace = new Trace();  // never destroyed: threads may record at exit
  return *trace;
}

int Trace::threadId() {
  thread_local int id = next_thread.fetch_add(1);
  return id;
}

void Trace::nameThread(const std::string& name) {
  const int id = threadId();
  std::lock_guard<std::mutex> lock(mutex_);
  thread_names_[id] = name;
}

void Trace::slice(std::string name, const char* category, int64_t begin_us, int64_t end_us,
                  std::string args_json) {
  if (!recording()) return;
  const int id = threadId();
  std::lock_guard<std::mutex> lock(mutex_);
  if (slices_.size() >= kMaxSlices) {
    ++dropped_;
    return;
  }
  slices_.push_back({std::move(name), category, id, begin_us, end_us, std::move(args_json)});
}

size_t Trace::write(const std::string& path, int rank) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  // Wall clock minus the trace's clock: what puts ranks of other machines
  // on one time line when the traces are merged.
  const int64_t wall = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  out << "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"rank\":" << rank
      << ",\"dropped_slices\":" << dropped_ << ",\"clock_offset_us\":" << wall - nowMicros()
      << "},\"traceEvents\":[\n";
  writeName(out, "process_name", rank, 0, "rank " + std::to_string(rank));
  for (const auto& [tid, name] : thread_names_) {
    out << ",\n";
    writeName(out, "thread_name", rank, tid, name);
  }
  for (const Slice& s : slices_) {
    out << ",\n";
    writeSlice(out, s, rank);
  }
  out << "\n]}\n";
  checkpoint::writeFileAtomically(path, out.str());
  return slices_.size();
}

size_t Trace::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return slices_.size();
}

void Trace::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  slices_.clear();
  dropped_ = 0;
}

}  // namespace zshard::observe
