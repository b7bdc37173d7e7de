// zshard._C: bindings only, no logic. C++ errors become Python exceptions
// carrying the same message (zshard.ConfigError is a ValueError; other
// zshard errors are zshard.ZshardError, a RuntimeError).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "runtime/config/load.h"
#include "runtime/config/summary.h"
#include "runtime/core/build_info.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/topology.h"

namespace py = pybind11;
using namespace zshard;

namespace {

// (normalized summary, warnings) of a ds.json text; raises ConfigError.
std::pair<std::string, std::vector<std::string>> checkConfig(const std::string& json,
                                                             std::optional<int> world_size) {
  config::LoadOptions options;
  options.world_size = world_size;
  const config::LoadedConfig loaded = config::loadConfig(json, options);
  std::vector<std::string> warnings;
  for (const config::Diagnostic& w : loaded.warnings) warnings.push_back(w.str());
  return {config::summarize(loaded.config), warnings};
}

py::dict topology() {
  const rendezvous::Topology t = rendezvous::detectTopology();
  py::dict d;
  d["rank"] = t.rank;
  d["world_size"] = t.world_size;
  d["local_rank"] = t.local_rank;
  d["local_size"] = t.local_size;
  d["node_rank"] = t.node_rank;
  d["node_count"] = t.node_count;
  d["master_addr"] = t.master_addr;
  d["master_port"] = t.master_port;
  d["source"] = t.source;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "zshard's C++ runtime (bindings only)";
  static py::exception<Error> base(m, "ZshardError", PyExc_RuntimeError);
  static py::exception<ConfigError> config_error(m, "ConfigError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ConfigError& e) {
      config_error(e.what());
    } catch (const Error& e) {
      base(e.what());
    }
  });
  m.def("version", &zshardVersion, "zshard's version");
  m.def("build_report", &buildReport, "what this build has (CUDA, NCCL, PMIx, Gloo)");
  m.def("check_config", &checkConfig, py::arg("json"), py::arg("world_size") = std::nullopt,
        "validate a ds.json text: (summary, warnings); raises ConfigError listing every problem");
  m.def("topology", &topology, "this process's place in the job, from the environment");
}
