#pragma once

#include <string>
#include <vector>

#include "proto/checkpoint.pb.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/shard/shard_plan.h"

namespace zshard::checkpoint {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr const char* kManifestName = "manifest.zshard";
inline constexpr const char* kLatestName = "latest";

// The manifest file's bytes: a magic line, the payload's SHA-256 in hex and
// a newline, then the serialized manifest.
std::string encodeManifest(const pb::CheckpointManifest& manifest);

// Reads and verifies <tag_dir>/manifest.zshard. Throws IoError naming the
// file when it is missing (the save did not complete), not a zshard
// manifest, corrupt, of a newer format, or inconsistent (the recorded
// offsets, shard length or slices differ from what manifestPlan() gives).
pb::CheckpointManifest readManifest(const std::string& tag_dir);

// The layout the manifest's parameters, world size and alignment give
// (ShardPlan::build, as at save time). Throws Error on impossible values.
shard::ShardPlan manifestPlan(const pb::CheckpointManifest& manifest);

// What shard `rank` of `plan` holds, as the manifest records it.
std::vector<pb::CheckpointSlice> slicesOf(const shard::ShardPlan& plan, int rank);

// Differences in the optimizer's and scheduler's settings between the
// checkpoint and this run (for a warning: the run's config applies).
std::vector<std::string> settingDifferences(const pb::CheckpointManifest& manifest,
                                            const ModelInfo& model);

// Throws ConfigError naming the manifest and the first difference when the
// checkpoint does not belong to this model (parameter names, shapes, a
// buffer or frozen parameter the model lacks), or,
// when loading optimizer states, to this optimizer (type, state buffers),
// or, when loading the scheduler state, to this scheduler type. Returns,
// for each of the model's parameters, its index in the checkpoint:
// parameters match by name, so a run that orders them differently (another
// stage, other parameter groups) loads the same checkpoint.
std::vector<int> checkCompatible(const pb::CheckpointManifest& manifest, const std::string& path,
                                 const ModelInfo& model, const LoadOptions& options);

}  // namespace zshard::checkpoint
