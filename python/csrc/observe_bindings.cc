// zshard._C's view of runtime/observe: monitors, the trace and the comms
// log (bindings only).
#include "python/csrc/observe_bindings.h"

#include <pybind11/stl.h>

#include <set>

#include "runtime/config/config.h"
#include "runtime/observe/comms_log.h"
#include "runtime/observe/monitor.h"
#include "runtime/observe/progress.h"
#include "runtime/observe/trace.h"

namespace py = pybind11;
using namespace zshard;

namespace {

// Trace categories are static strings in C++; Python's are interned here.
const char* interned(const std::string& category) {
  static std::set<std::string> names;
  return names.insert(category).first->c_str();
}

py::dict rowDict(const observe::CommsRow& r) {
  py::dict d;
  d["op"] = r.op;
  d["bytes"] = r.bytes;
  d["count"] = r.count;
  d["mean_us"] = r.mean_us;
  d["p50_us"] = r.p50_us;
  d["p99_us"] = r.p99_us;
  d["algbw_gbps"] = r.algbw_gbps;
  d["busbw_gbps"] = r.busbw_gbps;
  return d;
}

void bindConfig(py::module_& m) {
  using config::MonitorConfig;
  using config::ObserveConfig;
  py::class_<MonitorConfig>(m, "MonitorConfig")
      .def_readonly("enabled", &MonitorConfig::enabled)
      .def_readonly("output_path", &MonitorConfig::output_path)
      .def_readonly("job_name", &MonitorConfig::job_name);
  py::class_<ObserveConfig>(m, "ObserveConfig")
      .def_readonly("tensorboard", &ObserveConfig::tensorboard)
      .def_readonly("csv", &ObserveConfig::csv)
      .def_readonly("wandb", &ObserveConfig::wandb)
      .def_readonly("wandb_group", &ObserveConfig::wandb_group)
      .def_readonly("wandb_team", &ObserveConfig::wandb_team)
      .def_readonly("wandb_project", &ObserveConfig::wandb_project)
      .def_readonly("comms_logger", &ObserveConfig::comms_logger)
      .def_readonly("comms_verbose", &ObserveConfig::comms_verbose)
      .def_readonly("comms_prof_all", &ObserveConfig::comms_prof_all)
      .def_readonly("comms_prof_ops", &ObserveConfig::comms_prof_ops)
      .def_readonly("flops_profiler", &ObserveConfig::flops_profiler)
      .def_readonly("profile_step", &ObserveConfig::profile_step)
      .def_readonly("module_depth", &ObserveConfig::module_depth)
      .def_readonly("top_modules", &ObserveConfig::top_modules)
      .def_readonly("flops_detailed", &ObserveConfig::flops_detailed)
      .def_readonly("recompute_fwd_factor", &ObserveConfig::recompute_fwd_factor)
      .def_readonly("flops_output_file", &ObserveConfig::flops_output_file)
      .def_readonly("trace", &ObserveConfig::trace)
      .def_readonly("trace_dir", &ObserveConfig::trace_dir)
      .def_readonly("trace_first", &ObserveConfig::trace_first)
      .def_readonly("trace_last", &ObserveConfig::trace_last);
}

void bindMonitors(py::module_& m) {
  py::class_<observe::MonitorWriter>(m, "MonitorWriter",
                                     "monitored values written on a thread of its own")
      .def(py::init([](const std::string& csv_dir, const std::string& tensorboard_dir,
                       const std::string& run_log) {
             return observe::openMonitors({csv_dir, tensorboard_dir, run_log});
           }),
           py::arg("csv_dir") = "", py::arg("tensorboard_dir") = "", py::arg("run_log") = "")
      .def(
          "write",
          [](observe::MonitorWriter& w,
             const std::vector<std::tuple<std::string, double, int64_t>>& events) {
            std::vector<observe::Scalar> scalars;
            scalars.reserve(events.size());
            for (const auto& [tag, value, step] : events) scalars.push_back({tag, value, step});
            w.write(std::move(scalars));
          },
          "queue (tag, value, step) events; returns at once")
      .def("flush", &observe::MonitorWriter::flush, py::call_guard<py::gil_scoped_release>(),
           "block until everything queued is written and flushed")
      .def_property_readonly("sinks", &observe::MonitorWriter::sinks);
}

void bindProgress(py::module_& m) {
  py::class_<observe::Progress>(m, "Progress", "a long operation's bytes, rate and ETA on stderr")
      .def(py::init<std::string, int64_t, bool>(), py::arg("label"), py::arg("total_bytes"),
           py::arg("shown") = true)
      .def("advance", &observe::Progress::advance, py::arg("bytes"))
      .def("finish", &observe::Progress::finish);
}

void bindTrace(py::module_& m) {
  m.def("trace_now_us", &observe::nowMicros, "the trace's clock (CLOCK_MONOTONIC), microseconds");
  m.def(
      "trace_set_recording", [](bool on) { observe::Trace::get().setRecording(on); },
      py::arg("on"));
  m.def("trace_recording", [] { return observe::Trace::get().recording(); });
  m.def(
      "trace_name_thread", [](const std::string& name) { observe::Trace::get().nameThread(name); },
      py::arg("name"), "names the calling thread's track");
  m.def(
      "trace_slice",
      [](std::string name, const std::string& category, int64_t begin_us, int64_t end_us,
         std::string args_json) {
        observe::Trace::get().slice(std::move(name), interned(category), begin_us, end_us,
                                    std::move(args_json));
      },
      py::arg("name"), py::arg("category"), py::arg("begin_us"), py::arg("end_us"),
      py::arg("args_json") = "");
  m.def(
      "trace_write",
      [](const std::string& path, int rank) { return observe::Trace::get().write(path, rank); },
      py::arg("path"), py::arg("rank"), py::call_guard<py::gil_scoped_release>(),
      "this process's slices as a Chrome trace file; returns how many");
}

void bindCommsLog(py::module_& m) {
  m.def(
      "comms_configure",
      [](bool enabled, bool verbose, const std::vector<std::string>& ops) {
        observe::CommsLog::get().configure(enabled, verbose, {ops.begin(), ops.end()});
      },
      py::arg("enabled"), py::arg("verbose") = false, py::arg("ops") = std::vector<std::string>{});
  m.def("comms_summary", [] {
    py::list rows;
    for (const observe::CommsRow& r : observe::CommsLog::get().summary()) rows.append(rowDict(r));
    return rows;
  });
  m.def("comms_enabled", [] { return observe::CommsLog::get().enabled(); });
  m.def(
      "comms_record",
      [](const std::string& op, int64_t bytes, int ranks, int64_t begin_us, int64_t end_us) {
        observe::collectiveDone(op.c_str(), bytes, ranks, -1, "torch.distributed", begin_us,
                                end_us);
      },
      py::arg("op"), py::arg("bytes"), py::arg("ranks"), py::arg("begin_us"), py::arg("end_us"),
      "a collective made elsewhere (torch.distributed)");
  m.def("comms_table", [] { return observe::CommsLog::get().table(); });
  m.def("comms_clear", [] { observe::CommsLog::get().clear(); });
  m.def("waited_us", &observe::waitedMicros,
        "microseconds threads have waited on collectives (exposed communication)");
}

}  // namespace

void bindObserve(py::module_& m) {
  bindConfig(m);
  bindMonitors(m);
  bindTrace(m);
  bindCommsLog(m);
  bindProgress(m);
}
