#include "runtime/checkpoint/manifest.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/digest.h"
#include "runtime/core/error.h"

namespace zshard::checkpoint {

namespace {

constexpr std::string_view kMagic = "ZSHARD-CHECKPOINT\n";

std::string shapeText(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

std::vector<int> checkParams(const pb::CheckpointManifest& m, const std::string& path,
                             const ModelInfo& model) {
  const auto here = [](const std::string& name, const std::vector<int64_t>& shape) {
    return "'" + name + "' " + shapeText(shape);
  };
  if (m.params_size() != static_cast<int>(model.names.size())) {
    throw ConfigError("checkpoint \"" + path + "\" is of another model: " +
                      expectedGot(std::to_string(model.names.size()) + " parameters (this model)",
                                  std::to_string(m.params_size()) + " in the checkpoint"));
  }
  std::map<std::string, int> saved_index;
  for (int i = 0; i < m.params_size(); ++i) saved_index.emplace(m.params(i).name(), i);
  std::vector<int> index_of;
  for (size_t i = 0; i < model.names.size(); ++i) {
    const auto it = saved_index.find(model.names[i]);
    if (it == saved_index.end()) {
      throw ConfigError("checkpoint \"" + path + "\" is of another model: this model's parameter " +
                        here(model.names[i], model.shapes[i]) + " is not in the checkpoint");
    }
    const pb::CheckpointParam& p = m.params(it->second);
    const std::vector<int64_t> saved(p.shape().begin(), p.shape().end());
    if (saved != model.shapes[i]) {
      throw ConfigError("checkpoint \"" + path + "\" is of another model: parameter " +
                        here(p.name(), saved) + " in the checkpoint is " +
                        here(model.names[i], model.shapes[i]) + " in this model");
    }
    index_of.push_back(it->second);
  }
  std::vector<std::string> unknown;
  for (const std::string& n : m.module_state_names()) {
    const auto& have = model.module_state_names;
    if (std::find(have.begin(), have.end(), n) == have.end()) unknown.push_back(n);
  }
  if (!unknown.empty()) {
    throw ConfigError("checkpoint \"" + path +
                      "\": the checkpoint has buffers or frozen parameters this model does not: " +
                      joined(unknown) + "; nothing was loaded");
  }
  return index_of;
}

bool sameSlice(const pb::CheckpointSlice& a, const pb::CheckpointSlice& b) {
  return a.param() == b.param() && a.param_offset() == b.param_offset() && a.numel() == b.numel() &&
         a.shard_offset() == b.shard_offset();
}

void checkLayout(const pb::CheckpointManifest& m, const std::string& path) {
  const auto bad = [&](const std::string& what) {
    throw IoError("checkpoint manifest \"" + path + "\" is inconsistent: " + what +
                  "; it will not be loaded");
  };
  if (m.world_size() < 1 || m.shard_numel() < 1 || m.shards_size() != m.world_size()) {
    bad("world size " + std::to_string(m.world_size()) + ", shard length " +
        std::to_string(m.shard_numel()) + ", " + std::to_string(m.shards_size()) + " shard files");
  }
  std::optional<shard::ShardPlan> plan;
  try {
    plan = manifestPlan(m);
  } catch (const Error& e) {
    bad(e.what());
  }
  if (plan->shardNumel() != m.shard_numel()) bad("the shard length does not match its parameters");
  for (int p = 0; p < m.params_size(); ++p) {
    if (plan->params()[p].offset != m.params(p).flat_offset()) {
      bad("parameter " + std::to_string(p) + "'s offset does not match the layout");
    }
  }
  for (int r = 0; r < m.world_size(); ++r) {
    const pb::CheckpointShard& s = m.shards(r);
    const std::vector<pb::CheckpointSlice> want = slicesOf(*plan, r);
    const bool same = s.rank() == r && s.slices_size() == static_cast<int>(want.size()) &&
                      std::equal(want.begin(), want.end(), s.slices().begin(), sameSlice);
    if (!same) bad("shard " + std::to_string(r) + "'s slices do not match the parameter layout");
  }
}

}  // namespace

shard::ShardPlan manifestPlan(const pb::CheckpointManifest& m) {
  std::vector<shard::ParamSpec> specs;
  for (const pb::CheckpointParam& p : m.params()) {
    specs.push_back({{p.shape().begin(), p.shape().end()}, DType::kFloat32});
  }
  return shard::ShardPlan::build(specs, m.world_size(), m.alignment());
}

std::vector<pb::CheckpointSlice> slicesOf(const shard::ShardPlan& plan, int rank) {
  const int64_t base = plan.ownerRange(rank).begin;
  std::vector<pb::CheckpointSlice> out;
  for (const shard::ParamSlice& slice : plan.slicesInShard(rank)) {
    pb::CheckpointSlice s;
    s.set_param(slice.param);
    s.set_param_offset(slice.param_offset);
    s.set_numel(slice.flat.size());
    s.set_shard_offset(slice.flat.begin - base);
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> settingDifferences(const pb::CheckpointManifest& m,
                                            const ModelInfo& model) {
  std::vector<std::string> out;
  if (m.optimizer_summary() != model.optimizer_summary) {
    out.push_back("saved with \"" + m.optimizer_summary() + "\", this run has \"" +
                  model.optimizer_summary + "\"");
  }
  if (m.scheduler_summary() != model.scheduler_summary) {
    out.push_back("saved with \"" + m.scheduler_summary() + "\", this run has \"" +
                  model.scheduler_summary + "\"");
  }
  return out;
}

std::string encodeManifest(const pb::CheckpointManifest& manifest) {
  const std::string payload = manifest.SerializeAsString();
  return std::string(kMagic) + sha256Hex(payload) + "\n" + payload;
}

pb::CheckpointManifest readManifest(const std::string& tag_dir) {
  const std::string path = (std::filesystem::path(tag_dir) / kManifestName).string();
  if (!std::filesystem::is_directory(tag_dir)) {
    throw IoError("checkpoint \"" + tag_dir + "\" does not exist; check the directory and tag");
  }
  if (!std::filesystem::exists(path)) {
    throw IoError("checkpoint \"" + tag_dir + "\" has no " + kManifestName +
                  ": its save did not complete (or it is not a zshard checkpoint); load an "
                  "earlier tag");
  }
  const std::string bytes = readFile(path);
  const size_t header = kMagic.size() + 65;
  if (bytes.size() < header || bytes.compare(0, kMagic.size(), kMagic) != 0) {
    throw IoError("\"" + path + "\" is not a zshard checkpoint manifest (bad header)");
  }
  const std::string digest = bytes.substr(kMagic.size(), 64);
  const std::string_view payload(bytes.data() + header, bytes.size() - header);
  const std::string found = sha256Hex(payload);
  if (found != digest) {
    throw IoError("checkpoint manifest \"" + path + "\" is corrupt: " +
                  expectedGot("SHA-256 " + digest, found) + "; it will not be loaded");
  }
  pb::CheckpointManifest m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    throw IoError("checkpoint manifest \"" + path + "\" cannot be parsed");
  }
  if (m.format_version() < 1 || m.format_version() > kFormatVersion) {
    throw IoError("checkpoint manifest \"" + path + "\" has format version " +
                  std::to_string(m.format_version()) + "; this zshard reads version " +
                  std::to_string(kFormatVersion) + " (written by zshard " + m.zshard_version() +
                  ")");
  }
  checkLayout(m, path);
  return m;
}

std::vector<int> checkCompatible(const pb::CheckpointManifest& m, const std::string& path,
                                 const ModelInfo& model, const LoadOptions& options) {
  std::vector<int> index_of = checkParams(m, path, model);
  const std::vector<std::string> saved(m.buffer_names().begin(), m.buffer_names().end());
  if (saved.empty() || saved[0] != "master") {
    throw IoError("checkpoint \"" + path +
                  "\" has no fp32 master weights (buffers: " + joined(saved) + ")");
  }
  if (options.optimizer_states &&
      (m.optimizer_type() != model.optimizer_type || saved != model.buffer_names)) {
    throw ConfigError("checkpoint \"" + path + "\" is of another optimizer: it holds " +
                      m.optimizer_type() + " state (" + joined(saved) + "), this run steps " +
                      model.optimizer_type + " (" + joined(model.buffer_names) +
                      "); load with load_optimizer_states=False to take only the weights");
  }
  if (options.scheduler_state && m.scheduler_type() != model.scheduler_type) {
    throw ConfigError("checkpoint \"" + path + "\" was saved with scheduler " + m.scheduler_type() +
                      ", this run's config has " + model.scheduler_type +
                      "; load with load_lr_scheduler_states=False to restart the schedule");
  }
  return index_of;
}

}  // namespace zshard::checkpoint
