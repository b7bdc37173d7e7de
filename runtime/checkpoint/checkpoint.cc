#include "runtime/checkpoint/checkpoint.h"

#include <filesystem>
#include <random>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/shard_file.h"
#include "runtime/checkpoint/shard_set.h"
#include "runtime/core/build_info.h"
#include "runtime/core/error.h"
#include "runtime/core/hex.h"
#include "runtime/core/logging.h"
#include "runtime/observe/progress.h"

namespace zshard::checkpoint {

namespace fs = std::filesystem;

namespace {

constexpr const char* kErrorPrefix = "ERROR:";

std::string shardFileName(int rank, int world, const std::string& save_id) {
  return "shard-r" + std::to_string(rank) + "-of-" + std::to_string(world) + "." + save_id + ".bin";
}

std::string newSaveId() {
  std::random_device rd;
  std::string bytes(8, '\0');
  for (char& c : bytes) c = static_cast<char>(rd());
  return toHex(bytes);
}

// Throws when any rank's published result is an error, naming the rank.
void throwIfAnyFailed(const std::vector<std::string>& results, const std::string& what) {
  for (size_t r = 0; r < results.size(); ++r) {
    if (results[r].rfind(kErrorPrefix, 0) == 0) {
      throw IoError(what + " failed on rank " + std::to_string(r) + ": " +
                    results[r].substr(std::string(kErrorPrefix).size()));
    }
  }
}

// Publishes this rank's outcome of `step` ("" or the error) and collects
// every rank's, in rank order. Ranks that do not publish within the
// timeout are named: they died, or did not call save/load at all.
std::vector<std::string> exchange(const Group& g, const std::string& step,
                                  const std::string& mine) {
  const auto key = [&](int r) { return step + "/" + std::to_string(r); };
  g.store->set(key(g.rank), mine);
  std::vector<std::string> all;
  try {
    for (int r = 0; r < g.world_size; ++r) all.push_back(g.store->get(key(r), g.timeout));
  } catch (const TimeoutError&) {
    std::string missing;
    for (int r = 0; r < g.world_size; ++r) {
      if (!g.store->check({key(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    throw TimeoutError("checkpoint: rank(s) " + missing + " did not reach the " + step +
                       " step within " + std::to_string(g.timeout.count() / 1000) +
                       " s; every rank must call save_checkpoint/load_checkpoint (as in "
                       "DeepSpeed), so one of them died or skipped the call");
  }
  return all;
}

pb::CheckpointManifest baseManifest(const SaveRequest& req, const shard::ShardPlan& plan,
                                    const ModelInfo& model, const Counters& c) {
  pb::CheckpointManifest m;
  m.set_format_version(kFormatVersion);
  m.set_zshard_version(zshardVersion());
  m.set_tag(req.tag);
  m.set_world_size(plan.worldSize());
  m.set_stage(model.stage);
  m.set_param_dtype(dtypeName(model.param_dtype));
  m.set_alignment(plan.alignment());
  m.set_shard_numel(plan.shardNumel());
  for (size_t i = 0; i < model.names.size(); ++i) {
    pb::CheckpointParam* p = m.add_params();
    p->set_name(model.names[i]);
    for (int64_t d : model.shapes[i]) p->add_shape(d);
    p->set_flat_offset(plan.params()[i].offset);
    p->set_dtype(dtypeName(model.param_dtype));
  }
  m.set_optimizer_type(model.optimizer_type);
  for (const std::string& b : model.buffer_names) m.add_buffer_names(b);
  m.set_optimizer_step(c.optimizer_step);
  m.set_global_steps(c.global_steps);
  m.set_scheduler_type(model.scheduler_type);
  m.set_scheduler_iteration(c.scheduler_iteration);
  pb::LossScalerState* s = m.mutable_loss_scaler();
  s->set_scale(c.loss_scaler.scale);
  s->set_iteration(c.loss_scaler.iteration);
  s->set_last_overflow_iteration(c.loss_scaler.last_overflow_iteration);
  s->set_hysteresis_left(c.loss_scaler.hysteresis_left);
  s->set_skipped(c.loss_scaler.skipped);
  m.set_client_state(req.client_state);
  m.set_optimizer_summary(model.optimizer_summary);
  m.set_scheduler_summary(model.scheduler_summary);
  for (const std::string& n : model.module_state_names) m.add_module_state_names(n);
  return m;
}

Counters countersOf(const pb::CheckpointManifest& m) {
  const pb::LossScalerState& s = m.loss_scaler();
  return {
      m.optimizer_step(),
      m.global_steps(),
      m.scheduler_iteration(),
      {s.scale(), s.iteration(), s.last_overflow_iteration(), s.hysteresis_left(), s.skipped()}};
}

// Removes files of earlier (or interrupted) saves of this tag that the new
// manifest does not reference. Best effort: a leftover is harmless.
void removeStaleFiles(const std::string& tag_dir, const pb::CheckpointManifest& m) {
  std::vector<std::string> keep = {kManifestName};
  for (const pb::CheckpointShard& s : m.shards()) keep.push_back(s.file());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tag_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) != 0 && name.find(".tmp.") == std::string::npos) continue;
    if (std::find(keep.begin(), keep.end(), name) == keep.end()) fs::remove(entry.path(), ec);
  }
}

// The newest `keep` tags of `dir` (by their manifest's time) stay, with
// `tag` always among them; the older ones go. Only directories holding a
// manifest count: nothing else in the save directory is touched. Best
// effort: a tag that cannot be removed is left (and named at debug level).
void rotateTags(const std::string& dir, const std::string& tag, int keep) {
  if (keep <= 0) return;
  std::vector<std::pair<fs::file_time_type, fs::path>> tags;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path manifest = entry.path() / kManifestName;
    if (!entry.is_directory(ec) || !fs::exists(manifest, ec)) continue;
    if (entry.path().filename() == tag) continue;
    tags.emplace_back(fs::last_write_time(manifest, ec), entry.path());
  }
  std::sort(tags.begin(), tags.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = static_cast<size_t>(keep - 1); i < tags.size(); ++i) {
    fs::remove_all(tags[i].second, ec);
    if (ec) log(LogLevel::kDebug, "checkpoint: could not remove " + tags[i].second.string());
  }
}

// What a save killed while writing `latest` left in the save directory
// ("latest.tmp.<pid>"): rank 0's next save removes it.
void removeStaleTemporaries(const std::string& dir) {
  std::error_code ec;
  const std::string prefix = std::string(kLatestName) + ".tmp.";
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && entry.path().filename().string().rfind(prefix, 0) == 0) {
      fs::remove(entry.path(), ec);
    }
  }
}

// Rank 0: after every shard is in place, the manifest, then `latest`.
void commit(const SaveRequest& req, const std::string& tag_dir, const shard::ShardPlan& plan,
            pb::CheckpointManifest m, const std::vector<std::string>& shards) {
  for (size_t r = 0; r < shards.size(); ++r) {
    pb::CheckpointShard* s = m.add_shards();
    if (!s->ParseFromString(shards[r])) {
      throw IoError("rank " + std::to_string(r) + "'s shard record cannot be parsed");
    }
    for (const pb::CheckpointSlice& slice : slicesOf(plan, static_cast<int>(r))) {
      *s->add_slices() = slice;
    }
  }
  writeFileAtomically((fs::path(tag_dir) / kManifestName).string(), encodeManifest(m));
  if (req.save_latest) writeFileAtomically((fs::path(req.dir) / kLatestName).string(), req.tag);
  removeStaleFiles(tag_dir, m);
  removeStaleTemporaries(req.dir);
  rotateTags(req.dir, req.tag, req.keep_last);
}

// This rank's part of a save: its shard file, described for the manifest.
std::string writeMyShard(const Group& g, const std::string& tag_dir, const std::string& save_id,
                         const ShardState& state, const std::string& rank_state) {
  fs::create_directories(tag_dir);
  const std::string file = shardFileName(g.rank, g.world_size, save_id);
  const ShardFileInfo info =
      writeShardFile((fs::path(tag_dir) / file).string(), state.pieces, kBlockBytes, g.rank);
  pb::CheckpointShard s;
  s.set_rank(g.rank);
  s.set_file(file);
  s.set_bytes(info.bytes);
  s.set_block_bytes(info.block_bytes);
  s.set_digest_algorithm(info.digest_algorithm);
  for (const std::string& d : info.block_digests) s.add_block_digests(d);
  s.set_rank_state(rank_state);
  return s.SerializeAsString();
}

}  // namespace

std::string save(const Group& g, const SaveRequest& req, const shard::ShardPlan& plan,
                 const ModelInfo& model, const ShardState& state, const Counters& counters) {
  if (req.tag.empty() || req.tag.find('/') != std::string::npos) {
    throw UsageError("save_checkpoint: tag: expected a non-empty name without '/', got \"" +
                     req.tag + "\"");
  }
  const std::string tag_dir = (fs::path(req.dir) / req.tag).string();
  if (g.rank == 0) g.store->set("begin", newSaveId() + "\n" + req.tag);
  const std::string begin = g.store->get("begin", g.timeout);
  const std::string save_id = begin.substr(0, begin.find('\n'));
  const std::string tag0 = begin.substr(begin.find('\n') + 1);
  std::string mine;
  try {
    if (tag0 != req.tag) {
      throw UsageError("save_checkpoint: every rank must save the same tag: " +
                       expectedGot("\"" + tag0 + "\" (rank 0's)", "\"" + req.tag + "\""));
    }
    mine = writeMyShard(g, tag_dir, save_id, state, req.rank_state);
  } catch (const std::exception& e) {
    mine = kErrorPrefix + std::string(e.what());
  }
  // A rank that died never publishes: every rank's wait then times out
  // naming its key, and nothing is committed.
  const std::vector<std::string> shards = exchange(g, "shard", mine);
  if (g.rank == 0) {
    std::string outcome = "OK";
    try {
      throwIfAnyFailed(shards, "save_checkpoint of \"" + tag_dir + "\"");
      commit(req, tag_dir, plan, baseManifest(req, plan, model, counters), shards);
    } catch (const std::exception& e) {
      outcome = kErrorPrefix + std::string(e.what());
    }
    g.store->set("commit", outcome);
  }
  const std::string outcome = g.store->get("commit", g.timeout);
  if (outcome != "OK") throw IoError(outcome.substr(std::string(kErrorPrefix).size()));
  log(LogLevel::kInfo, "checkpoint saved: " + tag_dir);
  return tag_dir;
}

namespace {

constexpr int64_t kChunkFloats = 16 << 20;

// Pass 1 of a load: reads and verifies every block this rank's new shard
// needs from buffers [0, count), changing nothing.
void verifyMyShard(ShardSet& set, const shard::ShardPlan& plan, int rank, int count,
                   const std::vector<int>& saved_index, observe::Progress& progress) {
  for (int b = 0; b < count; ++b) {
    for (const shard::ParamSlice& s : plan.slicesInShard(rank)) {
      set.verify(b, saved_index.at(s.param), s.param_offset, s.flat.size());
      progress.advance(s.flat.size() * static_cast<int64_t>(sizeof(float)));
    }
  }
}

// Pass 2: reads this rank's new shard of buffer b into dst (device memory
// through a bounded host bounce buffer), zeroing the padding between
// parameters. The blocks are checked again as they are read.
// Buffer b of one piece of this rank's shard from the saved shards (zeros
// where no parameter lies).
void fillPiece(ShardSet& set, const shard::ShardPlan& plan, int rank, int b,
               const StatePiece& piece, const std::vector<int>& saved_index,
               observe::Progress& progress) {
  kernels::Backend& backend = *piece.backend;
  float* dst = piece.buffers.at(b);
  const int64_t base = plan.ownerRange(rank).begin + piece.offset;
  const shard::Range mine{base, base + piece.numel};
  std::vector<float> bounce;
  int64_t filled = 0;  // piece elements written so far, in order
  for (const shard::ParamSlice& s : plan.slicesInShard(rank)) {
    const shard::Range part = shard::intersect(s.flat, mine);
    if (part.size() <= 0) continue;
    const int64_t at = part.begin - base;
    const int64_t from = s.param_offset + (part.begin - s.flat.begin);
    if (at > filled) backend.zero(dst + filled, (at - filled) * sizeof(float));
    for (int64_t done = 0; done < part.size(); done += kChunkFloats) {
      const int64_t n = std::min(kChunkFloats, part.size() - done);
      progress.advance(n * static_cast<int64_t>(sizeof(float)));
      if (backend.onHost()) {
        set.read(b, saved_index.at(s.param), from + done, n, dst + at + done);
        continue;
      }
      bounce.resize(n);
      set.read(b, saved_index.at(s.param), from + done, n, bounce.data());
      backend.copyFromHost(dst + at + done, bounce.data(), n * sizeof(float));
    }
    filled = at + part.size();
  }
  if (piece.numel > filled) backend.zero(dst + filled, (piece.numel - filled) * sizeof(float));
}

}  // namespace

LoadResult load(const Group& g, const std::string& dir, const std::string& tag,
                const LoadOptions& options, const shard::ShardPlan& plan, const ModelInfo& model,
                const ShardState& state) {
  LoadResult result;
  result.path = resolveTagDirectory(dir, tag);
  if (result.path.empty()) return result;  // DeepSpeed: no `latest`, nothing to resume
  result.found = true;
  std::unique_ptr<ShardSet> set;
  std::vector<int> saved_index;  // each parameter's index in the checkpoint
  const int count = options.optimizer_states ? static_cast<int>(model.buffer_names.size()) : 1;
  // Read twice (verified first, then into place): this rank's part of it.
  observe::Progress progress(
      "checkpoint load, rank " + std::to_string(g.rank) + "'s shard",
      2 * count * plan.ownerRange(g.rank).size() * static_cast<int64_t>(sizeof(float)),
      g.rank == 0);
  std::string mine;
  try {
    set = std::make_unique<ShardSet>(result.path, readManifest(result.path));
    const pb::CheckpointManifest& m = set->manifest();
    saved_index = checkCompatible(m, result.path, model, options);
    if (options.optimizer_states && model.optimizer_state_per_rank &&
        m.world_size() != g.world_size) {
      throw ConfigError(
          "checkpoint \"" + result.path + "\": the " + model.optimizer_type +
          " optimizer's state is kept per rank and was saved by " + std::to_string(m.world_size()) +
          " ranks, this run has " + std::to_string(g.world_size) + "; resume on " +
          std::to_string(m.world_size()) +
          " ranks, or load with load_optimizer_states=False to take only the weights");
    }
    for (const std::string& d : settingDifferences(m, model)) {
      if (g.rank == 0) log(LogLevel::kWarning, "checkpoint " + result.path + ": " + d);
    }
    verifyMyShard(*set, plan, g.rank, count, saved_index, progress);
    result.counters = countersOf(m);
    result.client_state = m.client_state();
    result.saved_world_size = m.world_size();
    if (g.rank < m.world_size()) result.rank_state = m.shards(g.rank).rank_state();
  } catch (const std::exception& e) {
    mine = kErrorPrefix + std::string(e.what());
  }
  // Nothing changes unless every rank verified its part.
  throwIfAnyFailed(exchange(g, "verified", mine), "load_checkpoint of \"" + result.path + "\"");
  for (const StatePiece& piece : state.pieces) {
    for (int b = 0; b < static_cast<int>(piece.buffers.size()); ++b) {
      if (b < count) {
        fillPiece(*set, plan, g.rank, b, piece, saved_index, progress);
      } else {
        piece.backend->zero(piece.buffers[b], piece.numel * sizeof(float));
      }
    }
    piece.backend->synchronize();
  }
  progress.finish();
  return result;
}

}  // namespace zshard::checkpoint
