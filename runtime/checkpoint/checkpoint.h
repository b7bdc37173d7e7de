#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "runtime/checkpoint/shard_file.h"
#include "runtime/core/dtype.h"
#include "runtime/optim/loss_scaler.h"
#include "runtime/rendezvous/store.h"
#include "runtime/shard/shard_plan.h"

// Sharded, atomic, verified checkpoints that load on any number of ranks.
// Every rank writes its own shard file of fp32 state (master weights and
// the optimizer's moments); rank 0 then writes the manifest (the layout,
// counters and opaque client state) and finally the `latest` file, so a
// crash at any point leaves the previous checkpoint loadable. Loading maps
// each rank's new shard onto the saved ones and reads only those byte
// ranges, verifying every block it reads; all ranks agree that their reads
// succeeded before any state changes. Files: see proto/checkpoint.proto.
namespace zshard::checkpoint {

// The names of a model's tensors: the engine's parameters, in flattening
// order, and the module's other tensors (buffers, frozen parameters) that
// travel in the client state: at save those saved, at load those the model has.
struct ModelNames {
  std::vector<std::string> params;
  std::vector<std::string> module_state;
};

// What the checkpoint must match to be loaded into this run.
struct ModelInfo {
  std::vector<std::string> names;               // one per parameter, flattening order
  std::vector<std::string> module_state_names;  // ModelNames::module_state
  std::vector<std::vector<int64_t>> shapes;
  DType param_dtype = DType::kFloat32;
  int stage = 2;
  std::string optimizer_type;             // "AdamW"
  std::vector<std::string> buffer_names;  // the optimizer's fp32 state, "master" first
  // The optimizer keeps more state per rank, in the rank state (a client
  // torch optimizer's): its optimizer state loads only on the saved number
  // of ranks.
  bool optimizer_state_per_rank = false;
  std::string scheduler_type;  // "WarmupLR", "none"
  // What the run steps with (config/summary.h's lines): recorded, and a
  // difference at load time is logged (the run's own config applies).
  std::string optimizer_summary;
  std::string scheduler_summary;
};

// The training counters saved beside the tensors.
struct Counters {
  int64_t optimizer_step = 0;       // steps the optimizer applied (bias correction)
  int64_t global_steps = 0;         // DeepSpeed's global_steps (skipped ones included)
  int64_t scheduler_iteration = 0;  // steps the lr schedule advanced
  optim::LossScalerState loss_scaler;
};

// This rank's shard of the optimizer state: one buffer per
// ModelInfo::buffer_names entry, each plan.shardNumel() floats, in pieces
// (shard_file.h) that cover the shard in order.
struct ShardState {
  std::vector<StatePiece> pieces;
  // The whole shard in one backend's memory.
  static ShardState whole(kernels::Backend& backend, std::vector<float*> buffers, int64_t numel) {
    return {{{&backend, 0, numel, std::move(buffers)}}};
  }
};

// The ranks taking part: every rank of the job calls save()/load() with a
// store view that is fresh for this operation (a per-operation prefix).
struct Group {
  rendezvous::Store* store = nullptr;
  int rank = 0;
  int world_size = 1;
  rendezvous::Millis timeout = std::chrono::minutes(30);
};

struct SaveRequest {
  std::string dir;
  std::string tag;
  bool save_latest = true;
  std::string client_state;  // rank 0's is kept
  std::string rank_state;    // every rank's is kept (RNG states)
  // Keep only the newest `keep_last` tags of `dir` (0: all): older tags
  // with a manifest are removed once the new `latest` is durable.
  int keep_last = 0;
};

// Saves this rank's shard; returns "<dir>/<tag>" once rank 0 has committed
// the manifest (and `latest`). Throws on any rank's failure, naming the rank
// and the file; the previous checkpoint stays intact.
std::string save(const Group& group, const SaveRequest& request, const shard::ShardPlan& plan,
                 const ModelInfo& model, const ShardState& state, const Counters& counters);

struct LoadOptions {
  bool optimizer_states = true;  // false: master weights only, moments zero
  bool scheduler_state = true;
};

struct LoadResult {
  bool found = false;  // false: no tag given and no `latest` file (nothing loaded)
  std::string path;    // "<dir>/<tag>"
  Counters counters;   // as saved
  std::string client_state;
  std::string rank_state;  // this rank's, when the saved run had this rank
  int saved_world_size = 0;
};

// Loads `tag` (or the one `latest` names when empty) into `state`, from a
// checkpoint saved on any number of ranks. Throws (on every rank) when the
// checkpoint is missing, incomplete, corrupt, truncated or of another model
// or optimizer, naming the file and what does not match; `state` is then
// untouched on every rank.
LoadResult load(const Group& group, const std::string& dir, const std::string& tag,
                const LoadOptions& options, const shard::ShardPlan& plan, const ModelInfo& model,
                const ShardState& state);

}  // namespace zshard::checkpoint
