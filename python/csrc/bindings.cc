// zshard._C: bindings only, no logic. C++ errors become Python exceptions
// carrying the same message (zshard.ConfigError is a ValueError; other
// zshard errors are zshard.ZshardError, a RuntimeError). Tensors cross as
// DLPack capsules without copies; blocking calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <optional>

#include "python/csrc/dlpack.h"
#include "python/csrc/observe_bindings.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/config/load.h"
#include "runtime/config/summary.h"
#include "runtime/config/support.h"
#include "runtime/core/build_info.h"
#include "runtime/core/error.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/rendezvous/job_store.h"
#include "runtime/rendezvous/topology.h"
#include "runtime/zero/session.h"

namespace py = pybind11;
using namespace zshard;

namespace {

std::pair<std::string, std::vector<std::string>> checkConfig(const std::string& json,
                                                             std::optional<int> world_size) {
  config::LoadOptions options;
  options.world_size = world_size;
  const config::LoadedConfig loaded = config::loadConfig(json, options);
  std::vector<std::string> warnings;
  for (const config::Diagnostic& w : loaded.warnings) warnings.push_back(w.str());
  return {config::summarize(loaded.config), warnings};
}

py::dict topologyDict(const rendezvous::Topology& t) {
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

DLDataType dlType(DType t) {
  switch (t) {
    case DType::kFloat16: return {kDLFloat, 16, 1};
    case DType::kBFloat16: return {kDLBfloat, 16, 1};
    default: return {kDLFloat, 32, 1};
  }
}

// A DLPack view of engine memory; keeps the Python session object alive.
struct View {
  DLManagedTensor managed{};
  std::vector<int64_t> shape;
  py::object owner;
};

py::capsule exportView(void* data, DType dtype, std::vector<int64_t> shape, bool gpu, int device,
                       py::object owner) {
  auto* view = new View;
  view->shape = std::move(shape);
  view->owner = std::move(owner);
  DLTensor& t = view->managed.dl_tensor;
  t.data = data;
  t.device = {gpu ? kDLCUDA : kDLCPU, gpu ? device : 0};
  t.ndim = static_cast<int32_t>(view->shape.size());
  t.dtype = dlType(dtype);
  t.shape = view->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  view->managed.manager_ctx = view;
  view->managed.deleter = [](DLManagedTensor* self) {
    py::gil_scoped_acquire gil;
    delete static_cast<View*>(self->manager_ctx);
  };
  return py::capsule(&view->managed, "dltensor", [](PyObject* capsule) {
    // Only an unconsumed capsule still owns its tensor.
    if (PyCapsule_IsValid(capsule, "dltensor")) {
      auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
      managed->deleter(managed);
    }
  });
}

// The data pointer of a borrowed, compact DLPack tensor of `dtype` and `numel`.
const void* importData(const py::capsule& capsule, DType dtype, int64_t numel, const char* what) {
  if (std::strcmp(capsule.name(), "dltensor") != 0)
    throw Error(std::string(what) + ": expected a DLPack capsule");
  const DLTensor& t = static_cast<DLManagedTensor*>(capsule.get_pointer())->dl_tensor;
  const DLDataType want = dlType(dtype);
  if (t.dtype.code != want.code || t.dtype.bits != want.bits) {
    throw Error(std::string(what) + ": expected " + dtypeName(dtype) +
                " elements, got a tensor of another dtype");
  }
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.shape[i];
  if (n != numel)
    throw Error(std::string(what) + ": " +
                expectedGot(std::to_string(numel) + " elements", std::to_string(n)));
  int64_t expected_stride = 1;
  for (int i = t.ndim - 1; t.strides != nullptr && i >= 0; --i) {
    if (t.shape[i] != 1 && t.strides[i] != expected_stride) {
      throw Error(std::string(what) + ": expected a contiguous tensor (call .contiguous())");
    }
    expected_stride *= t.shape[i];
  }
  return static_cast<const char*>(t.data) + t.byte_offset;
}

// The fp32 host arrays behind numpy buffers, each checked for `numel` floats.
std::vector<const float*> floatArrays(const std::vector<std::optional<py::buffer>>& buffers,
                                      const std::vector<int64_t>& numels, const char* what) {
  if (buffers.size() != numels.size()) {
    throw Error(
        std::string(what) + ": " +
        expectedGot(std::to_string(numels.size()) + " arrays", std::to_string(buffers.size())));
  }
  std::vector<const float*> values;
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i]) {  // None: nothing given for this one
      values.push_back(nullptr);
      continue;
    }
    const py::buffer_info info = buffers[i]->request();
    if (info.format != py::format_descriptor<float>::format() || info.size != numels[i]) {
      throw Error(std::string(what) + " " + std::to_string(i) + ": expected " +
                  std::to_string(numels[i]) + " float32 values");
    }
    values.push_back(static_cast<const float*>(info.ptr));
  }
  return values;
}

// A ds.json parsed and validated once (at initialize()): its warnings and
// summary for the user, what the Python engine needs to know, and the
// typed config the Session is built from.
struct ConfigHandle {
  config::LoadedConfig loaded;
};

ConfigHandle loadConfigHandle(const std::string& json, std::optional<int> world_size,
                              std::map<std::string, double> auto_values,
                              std::optional<int64_t> hidden_size, bool require_resolved) {
  config::LoadOptions options;
  options.world_size = world_size;
  options.auto_values = std::move(auto_values);
  options.hidden_size = hidden_size;
  options.require_resolved = require_resolved;
  return {config::loadConfig(json, options)};
}

// Parameter groups from Python: one dict per group (optional
// "weight_decay", "betas", "eps"; the engine has checked the keys) and the
// group index of each parameter. No groups: the config's settings.
optim::ParamGroups paramGroups(const std::vector<py::dict>& groups, std::vector<int> param_group) {
  optim::ParamGroups out;
  if (groups.empty()) return out;
  for (const py::dict& g : groups) {
    optim::GroupSettings settings;
    if (g.contains("weight_decay")) settings.weight_decay = g["weight_decay"].cast<double>();
    if (g.contains("eps")) settings.eps = g["eps"].cast<double>();
    if (g.contains("betas")) {
      const auto b = g["betas"].cast<std::vector<double>>();
      if (b.size() != 2)
        throw ConfigError("betas: " + expectedGot("2 values", std::to_string(b.size())));
      settings.betas = std::array<double, 2>{b[0], b[1]};
    }
    out.groups.push_back(settings);
  }
  out.param_group = std::move(param_group);
  return out;
}

// A collective in flight, waited from Python without the GIL.
struct PyWork {
  std::shared_ptr<comm::Work> work;
  comm::Millis timeout;
  void wait() {
    py::gil_scoped_release release;
    work->wait(timeout);
  }
};

class PySession {
 public:
  PySession(const ConfigHandle& cfg, std::vector<std::vector<int64_t>> shapes,
            std::vector<std::optional<py::buffer>> initial, bool use_gpu, int device,
            std::vector<std::string> names, const std::vector<py::dict>& groups,
            std::vector<int> param_group)
      : shapes_(std::move(shapes)) {
    for (const auto& s : shapes_) numels_.push_back(shard::numelOf(s));
    const std::vector<const float*> values = floatArrays(initial, numels_, "initial value");
    optim::ParamGroups param_groups = paramGroups(groups, std::move(param_group));
    py::gil_scoped_release release;
    session_ = std::make_unique<zero::Session>(cfg.loaded.config, shapes_, values, use_gpu, names,
                                               device, std::move(param_groups));
  }

  void setWeights(const std::vector<std::optional<py::buffer>>& values) {
    const std::vector<const float*> arrays = floatArrays(values, numels_, "weights of parameter");
    py::gil_scoped_release release;
    session_->setWeights(arrays);
  }

  void setInitial(int i, const py::buffer& values) {
    const std::vector<std::optional<py::buffer>> one = {values};
    const float* data = floatArrays(one, {numels_.at(i)}, "initial value")[0];
    py::gil_scoped_release release;
    session_->setInitial(i, data);
  }

  void finishInitial() {
    py::gil_scoped_release release;
    session_->finishInitial();
  }

  int discardWindow() {
    py::gil_scoped_release release;
    return session_->discardWindow();
  }

  ~PySession() {
    py::gil_scoped_release release;
    session_.reset();
  }

  // Stage 3: parameters [first, last] gathered into `out` (a DLPack tensor
  // of their flat range's length, param dtype): the check now, the values
  // in the background; the caller keeps `out` alive until the Work's
  // wait(). Collective.
  PyWork startGatherInto(int first, int last, const py::capsule& out) {
    void* data = runBuffer(first, last, out);
    py::gil_scoped_release release;
    return {session_->startGatherInto(first, last, data), session_->timeout()};
  }

  // Each parameter's (offset, numel) in the flat layout.
  py::list layout() const {
    py::list out;
    for (const auto& p : session_->plan().params()) out.append(py::make_tuple(p.offset, p.numel));
    return out;
  }

  bool reduceBoundary() {
    py::gil_scoped_release release;
    return session_->reduceBoundary();
  }

  // Parameter i's reduced gradient as a tensor view (stage 0, after
  // reduceBoundary).
  py::capsule reducedGradient(py::object self, int i) {
    return exportView(const_cast<void*>(session_->reducedGradient(i)), session_->gradDtype(),
                      shapes_.at(i), session_->onGpu(), session_->deviceIndex(), std::move(self));
  }

  py::capsule parameter(py::object self, int i) {
    return exportView(session_->parameter(i), session_->paramDtype(), shapes_.at(i),
                      session_->onGpu(), session_->deviceIndex(), std::move(self));
  }

  void addGradient(int i, const py::capsule& grad, uintptr_t producer_stream) {
    const void* data = importData(grad, session_->gradDtype(), numels_.at(i), "gradient");
    py::gil_scoped_release release;
    session_->addGradient(i, data, reinterpret_cast<void*>(producer_stream));
  }

  bool step(const std::vector<double>& lrs) {
    py::gil_scoped_release release;
    return session_->step(lrs);
  }

  std::string saveCheckpoint(const std::string& dir, const std::string& tag,
                             const std::vector<std::string>& names,
                             const std::vector<std::string>& module_state_names,
                             const py::bytes& client_state, const py::bytes& rank_state,
                             bool save_latest) {
    checkpoint::SaveRequest request{dir, tag, save_latest, client_state, rank_state};
    py::gil_scoped_release release;
    return session_->saveCheckpoint(request, {names, module_state_names});
  }

  py::dict loadCheckpoint(const std::string& dir, const std::string& tag,
                          const std::vector<std::string>& names,
                          const std::vector<std::string>& module_state_names, bool optimizer_states,
                          bool scheduler_state) {
    checkpoint::LoadResult r;
    {
      py::gil_scoped_release release;
      r = session_->loadCheckpoint(dir, tag, {names, module_state_names},
                                   {optimizer_states, scheduler_state});
    }
    py::dict d;
    d["found"] = r.found;
    d["path"] = r.path;
    d["client_state"] = py::bytes(r.client_state);
    d["rank_state"] = py::bytes(r.rank_state);
    d["saved_world_size"] = r.saved_world_size;
    return d;
  }

  // The shard as a client optimizer sees it: fp32 master weights and
  // staged gradients (1-D views of numel floats) and the runs of each group.
  py::dict externalShard(py::object self) {
    optim::ShardOptimizer& o = session_->shardOptimizer();
    const std::vector<int64_t> shape = {o.numel()};
    py::dict d;
    d["master"] = exportView(o.master(), DType::kFloat32, shape, session_->onGpu(),
                             session_->deviceIndex(), self);
    d["grad"] = exportView(o.stagedGradients(), DType::kFloat32, shape, session_->onGpu(),
                           session_->deviceIndex(), self);
    py::list runs;
    for (const auto& r : o.runs()) runs.append(py::make_tuple(r.offset, r.numel, r.group));
    d["runs"] = runs;
    return d;
  }

  void setExternalOptimizer(const std::string& name, py::function update) {
    // The engine may drop the callback with the GIL released (~PySession).
    std::shared_ptr<py::function> fn(new py::function(std::move(update)), [](py::function* f) {
      py::gil_scoped_acquire gil;
      delete f;
    });
    session_->setExternalOptimizer(name, [fn]() {
      py::gil_scoped_acquire gil;
      (*fn)();
    });
  }

  zero::Session& get() { return *session_; }
  int64_t numel(int i) const { return numels_.at(i); }

 private:
  // `out` as the buffer of parameters [first, last]'s flat range.
  void* runBuffer(int first, int last, const py::capsule& out) {
    const auto& params = session_->plan().params();
    const int64_t n = params.at(last).range().end - params.at(first).offset;
    return const_cast<void*>(importData(out, session_->paramDtype(), n, "gather buffer"));
  }
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<int64_t> numels_;
  std::unique_ptr<zero::Session> session_;
};

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
  bindObserve(m);
  m.def("version", &zshardVersion, "zshard's version");
  m.def("build_report", &buildReport, "what this build has (CUDA, NCCL, PMIx, Gloo)");
  m.def("check_config", &checkConfig, py::arg("json"), py::arg("world_size") = std::nullopt,
        "validate a ds.json text: (summary, warnings); raises ConfigError listing every problem");
  m.def(
      "topology", [] { return topologyDict(rendezvous::detectTopology()); },
      "this process's place in the job, from the environment");

  m.def("serve_job_store", &rendezvous::serveProcessJobStore, py::arg("token") = "",
        "rank 0, where the job store's address travels another way (torch's store under "
        "torchrun): serve it on a free port; returns \"host port token\" to publish");
  m.def("join_job_store", &rendezvous::joinProcessJobStore, py::arg("published"),
        "every rank: use the job store rank 0 published (before the store's first use)");
  m.def(
      "job_store_set",
      [](const std::string& key, const py::bytes& value) {
        const std::string v = value;
        py::gil_scoped_release release;
        rendezvous::processJobStore().store().set("py/" + key, v);
      },
      py::arg("key"), py::arg("value"), "publish bytes under key in this job's store");
  m.def(
      "job_store_get",
      [](const std::string& key, double timeout_s) {
        std::string v;
        {
          py::gil_scoped_release release;
          v = rendezvous::processJobStore().store().get(
              "py/" + key, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
        }
        return py::bytes(v);
      },
      py::arg("key"), py::arg("timeout_s") = 300.0,
      "the bytes some rank published under key (waits up to timeout_s)");

  py::class_<checkpoint::CheckpointReader>(m, "CheckpointReader",
                                           "a checkpoint's fp32 weights, one tensor at a time")
      .def(py::init<const std::string&, const std::string&>(), py::arg("dir"), py::arg("tag") = "")
      .def_property_readonly("path", &checkpoint::CheckpointReader::path)
      .def_property_readonly("num_params", &checkpoint::CheckpointReader::numParams)
      .def("name", &checkpoint::CheckpointReader::name)
      .def("shape", &checkpoint::CheckpointReader::shape)
      .def_property_readonly("bytes_read", &checkpoint::CheckpointReader::bytesRead)
      .def_property_readonly(
          "client_state",
          [](checkpoint::CheckpointReader& r) { return py::bytes(r.clientState()); })
      .def(
          "read",
          [](checkpoint::CheckpointReader& r, int i) {
            py::array_t<float> out(r.shape(i));
            float* dst = out.mutable_data();
            py::gil_scoped_release release;
            r.readParam(i, dst);
            return out;
          },
          "parameter i's fp32 weights as a new numpy array (reads only its byte ranges)");

  m.def(
      "scheduled_lr",
      [](const std::string& scheduler_json, double base_lr, int64_t iteration) {
        const config::Config c =
            config::loadConfig(R"({"train_batch_size": 1, "scheduler": )" + scheduler_json + "}")
                .config;
        return optim::scheduledLr(c.scheduler, base_lr, iteration);
      },
      py::arg("scheduler_json"), py::arg("base_lr"), py::arg("iteration"),
      "the lr a config \"scheduler\" block gives after `iteration` steps (-1: before any)");
  m.def("load_config", &loadConfigHandle, py::arg("json"), py::arg("world_size") = std::nullopt,
        py::arg("auto_values") = std::map<std::string, double>{},
        py::arg("hidden_size") = std::nullopt, py::arg("require_resolved") = false,
        "parse and validate a ds.json text once; raises ConfigError listing every problem");
  py::class_<ConfigHandle>(m, "Config")
      .def_property_readonly(
          "summary", [](const ConfigHandle& c) { return config::summarize(c.loaded.config); })
      .def_property_readonly("warnings",
                             [](const ConfigHandle& c) {
                               std::vector<std::string> out;
                               for (const auto& w : c.loaded.warnings) out.push_back(w.str());
                               return out;
                             })
      .def_property_readonly(
          "precision",
          [](const ConfigHandle& c) { return config::toString(c.loaded.config.precision); })
      .def_property_readonly("gradient_precision",
                             [](const ConfigHandle& c) {
                               return config::toString(config::gradientPrecision(c.loaded.config));
                             })
      .def_property_readonly("fp16_auto_cast",
                             [](const ConfigHandle& c) { return c.loaded.config.fp16_auto_cast; })
      .def_property_readonly("stage",
                             [](const ConfigHandle& c) { return c.loaded.config.zero.stage; })
      .def_property_readonly("observe",
                             [](const ConfigHandle& c) { return c.loaded.config.observe; })
      .def_property_readonly("checkpoint_dir",
                             [](const ConfigHandle& c) { return c.loaded.config.checkpoint.dir; })
      .def_property_readonly(
          "save_on_signal",
          [](const ConfigHandle& c) { return c.loaded.config.checkpoint.save_on_signal; })
      .def_property_readonly(
          "resume_latest",
          [](const ConfigHandle& c) { return c.loaded.config.checkpoint.resume_latest; })
      .def_property_readonly(
          "dataloader_drop_last",
          [](const ConfigHandle& c) { return c.loaded.config.dataloader_drop_last; })
      .def_property_readonly("stage3_param_persistence_threshold",
                             [](const ConfigHandle& c) {
                               return c.loaded.config.zero.stage3_param_persistence_threshold;
                             })
      .def_property_readonly(
          "stage3_prefetch_bucket_size",
          [](const ConfigHandle& c) { return c.loaded.config.zero.stage3_prefetch_bucket_size; })
      .def_property_readonly(
          "stage3_max_live_parameters",
          [](const ConfigHandle& c) { return c.loaded.config.zero.stage3_max_live_parameters; })
      .def_property_readonly(
          "stage3_max_reuse_distance",
          [](const ConfigHandle& c) { return c.loaded.config.zero.stage3_max_reuse_distance; })
      .def_property_readonly(
          "log_trace_cache_warnings",
          [](const ConfigHandle& c) { return c.loaded.config.zero.log_trace_cache_warnings; })
      .def_property_readonly(
          "memory_efficient_linear",
          [](const ConfigHandle& c) { return c.loaded.config.zero.memory_efficient_linear; })
      .def_property_readonly(
          "stage3_gather_16bit_weights_on_model_save",
          [](const ConfigHandle& c) {
            return c.loaded.config.zero.stage3_gather_16bit_weights_on_model_save;
          })
      .def_property_readonly(
          "zero_allow_untested_optimizer",
          [](const ConfigHandle& c) { return c.loaded.config.zero_allow_untested_optimizer; })
      .def_property_readonly("has_scheduler",
                             [](const ConfigHandle& c) {
                               return c.loaded.config.scheduler.type !=
                                      config::SchedulerType::kNone;
                             })
      .def_property_readonly(
          "optimizer_type",
          [](const ConfigHandle& c) { return config::toString(c.loaded.config.optimizer.type); })
      .def_property_readonly("gradient_clipping", [](const ConfigHandle& c) {
        return c.loaded.config.gradient_clipping;
      });

  py::class_<PyWork>(m, "Work", "a collective in flight")
      .def("wait", &PyWork::wait, "block until it is done; rethrows its failure")
      .def("done", [](const PyWork& w) { return w.work->done(); });

  py::class_<PySession>(m, "Session")
      .def(py::init<const ConfigHandle&, std::vector<std::vector<int64_t>>,
                    std::vector<std::optional<py::buffer>>, bool, int, std::vector<std::string>,
                    const std::vector<py::dict>&, std::vector<int>>(),
           py::arg("config"), py::arg("shapes"), py::arg("initial"), py::arg("use_gpu"),
           py::arg("device"), py::arg("names"), py::arg("groups"), py::arg("param_group"))
      .def("set_initial", &PySession::setInitial, py::arg("index"), py::arg("values"),
           "parameter index's first values (float32 numpy) for one the constructor was given None "
           "for; local, so the caller may free each original as it is copied")
      .def("finish_initial", &PySession::finishInitial,
           "after the last set_initial (collective): raises when the ranks' initial values differ")
      .def("set_weights", &PySession::setWeights, py::arg("values"),
           "new fp32 weights for every parameter (collective); moments are kept")
      .def(
          "set_train_batch_size", [](PySession& s, int64_t n) { s.get().setTrainBatchSize(n); },
          py::arg("train_batch_size"),
          "new global batch size: more or fewer micro steps per optimizer step")
      .def(
          "param_state",
          [](PySession& s, int i, const std::string& name) {
            py::array_t<float> out(s.numel(i));
            float* data = out.mutable_data();
            {
              py::gil_scoped_release release;
              s.get().gatherParamState(i, name, data);
            }
            return out;
          },
          py::arg("i"), py::arg("name"),
          "parameter i's whole fp32 state buffer (master, exp_avg, ...) from every rank; "
          "collective")
      .def("discard_window", &PySession::discardWindow,
           "forget the unfinished accumulation window's gradients (collective); the micro "
           "steps discarded")
      .def(
          "parameter",
          [](py::object self, int i) { return self.cast<PySession&>().parameter(self, i); },
          "parameter i inside the engine's flat buffer, as a DLPack capsule")
      .def("add_gradient", &PySession::addGradient, py::arg("i"), py::arg("grad"),
           py::arg("producer_stream") = 0,
           "parameter i's gradient of this micro step (DLPack), written on producer_stream (a "
           "cudaStream_t as an int; 0 on the host)")
      .def_property_readonly(
          "stream", [](PySession& s) { return reinterpret_cast<uintptr_t>(s.get().stream()); },
          "the engine's cudaStream_t as an int (0 on the host)")
      .def("step", &PySession::step, py::arg("lrs") = std::vector<double>{},
           "end a micro step (at a boundary stepping with lrs, one per parameter group or one for "
           "all, else the config's schedule); True when the optimizer stepped")
      .def("save_checkpoint", &PySession::saveCheckpoint, py::arg("dir"), py::arg("tag"),
           py::arg("names"), py::arg("module_state_names"), py::arg("client_state"),
           py::arg("rank_state"), py::arg("save_latest"),
           "every rank saves its shard; returns the tag's directory")
      .def("load_checkpoint", &PySession::loadCheckpoint, py::arg("dir"), py::arg("tag"),
           py::arg("names"), py::arg("module_state_names"), py::arg("optimizer_states"),
           py::arg("scheduler_state"),
           "load a checkpoint saved on any number of ranks; a dict of what was found")
      .def_property_readonly("at_boundary", [](PySession& s) { return s.get().atBoundary(); })
      .def_property_readonly("lr", [](PySession& s) { return s.get().lr(); })
      .def_property_readonly("momentum", [](PySession& s) { return s.get().momentum(); })
      .def("start_gather_into", &PySession::startGatherInto, py::arg("first"), py::arg("last"),
           py::arg("out"),
           "stage 3: parameters first..last gathered from every shard into out (collective), "
           "started: a Work whose wait() ends it; out must live until then")
      .def(
          "memory",
          [](PySession& s) {
            const zero::MemoryReport m = s.get().memory();
            py::dict out;
            out["parameters"] = m.parameters;
            out["gradients"] = m.gradients;
            out["optimizer"] = m.optimizer;
            out["buckets"] = m.buckets;
            out["offloaded"] = m.offloaded;
            return out;
          },
          "the engine's own bytes on this rank: on the device parameters (the model copy: at "
          "stage 3 the shard), gradients, optimizer (fp32 master and moments), buckets; in host "
          "memory offloaded (offload_optimizer's state and staging, offload_param's shard)")
      .def_property_readonly(
          "reduction_collective_bytes",
          [](PySession& s) { return s.get().reductionCollectiveBytes(); },
          "the bytes of each collective one gradient reduction issues, in order (stage 2: per "
          "bucket)")
      .def(
          "end_pass",
          [](PySession& s) {
            py::gil_scoped_release release;
            s.get().endPass();
          },
          "stage 3: every rank ends its forward/backward pass (collective); a rank still "
          "gathering fails with it, naming both")
      .def("layout", &PySession::layout, "each parameter's (offset, numel) in the flat layout")
      .def("reduce_boundary", &PySession::reduceBoundary,
           "stage 0, after the boundary's backward: all-reduce the window's gradients to their "
           "mean now (collective); False away from the boundary")
      .def(
          "reduced_gradient",
          [](py::object self, int i) { return self.cast<PySession&>().reducedGradient(self, i); },
          "parameter i's reduced gradient (DLPack view) after reduce_boundary()")
      .def("set_external_optimizer", &PySession::setExternalOptimizer, py::arg("name"),
           py::arg("update"),
           "a client optimizer steps the shard from now on: update() at each applied step")
      .def(
          "external_shard",
          [](py::object self) { return self.cast<PySession&>().externalShard(self); },
          "the shard's fp32 master and staged gradients (DLPack) and each group's runs")
      .def_property_readonly("cycles_momentum",
                             [](PySession& s) { return s.get().cyclesMomentum(); })
      .def(
          "any_rank", [](PySession& s, bool flag) { return s.get().anyRank(flag); },
          py::arg("flag"), "whether flag is true on any rank (collective; the same everywhere)")
      .def_property_readonly("loss_scale", [](PySession& s) { return s.get().lossScale(); })
      .def_property_readonly("global_steps", [](PySession& s) { return s.get().globalSteps(); })
      .def_property_readonly("skipped_steps", [](PySession& s) { return s.get().skippedSteps(); })
      .def_property_readonly("grad_norm", [](PySession& s) { return s.get().lastGradNorm(); })
      .def_property_readonly("topology",
                             [](PySession& s) { return topologyDict(s.get().topology()); })
      .def_property_readonly("train_batch_size",
                             [](PySession& s) { return s.get().config().batch.train_batch_size; })
      .def_property_readonly(
          "micro_batch_per_gpu",
          [](PySession& s) { return s.get().config().batch.micro_batch_per_gpu; })
      .def_property_readonly(
          "gradient_accumulation_steps",
          [](PySession& s) { return s.get().config().batch.gradient_accumulation_steps; })
      .def_property_readonly("steps_per_print",
                             [](PySession& s) { return s.get().config().steps_per_print; })
      .def_property_readonly("wall_clock_breakdown",
                             [](PySession& s) { return s.get().config().wall_clock_breakdown; });
}
