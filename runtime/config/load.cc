#include "runtime/config/load.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/config.pb.h"
#include "runtime/config/batch_size.h"
#include "runtime/config/json.h"
#include "runtime/config/schema_walker.h"
#include "runtime/config/semantic_checks.h"
#include "runtime/config/support.h"
#include "runtime/config/to_config.h"

namespace zshard::config {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Sets the scalar at a dotted key path; false when the path names no scalar.
bool setByPath(Message* msg, const std::string& path, double value) {
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string name =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName(name);
    if (f == nullptr || f->is_repeated()) return false;
    if (dot == std::string::npos) {
      const auto* r = msg->GetReflection();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          r->SetInt32(msg, f, static_cast<int32_t>(std::llround(value)));
          return true;
        case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(msg, f, std::llround(value)); return true;
        case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(msg, f, value); return true;
        case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(msg, f, value != 0); return true;
        default: return false;
      }
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return false;
    msg = msg->GetReflection()->MutableMessage(msg, f);
    start = dot + 1;
  }
}

// The HuggingFace integration's formulas for "auto" bucket sizes.
std::optional<double> fromHiddenSize(const std::string& path, std::optional<int64_t> hidden) {
  if (!hidden) return std::nullopt;
  const double h = static_cast<double>(*hidden);
  if (path == "zero_optimization.reduce_bucket_size") return h * h;
  if (path == "zero_optimization.stage3_prefetch_bucket_size") return std::floor(0.9 * h * h);
  if (path == "zero_optimization.stage3_param_persistence_threshold") return 10 * h;
  return std::nullopt;
}

void applyAutoValues(pb::DeepSpeedConfig& cfg, const std::vector<std::string>& auto_keys,
                     const LoadOptions& options, Diagnostics& diags) {
  for (const std::string& path : auto_keys) {
    std::optional<double> value = fromHiddenSize(path, options.hidden_size);
    if (auto it = options.auto_values.find(path); it != options.auto_values.end())
      value = it->second;
    if (value && !setByPath(&cfg, path, *value)) {
      diags.error(path, "a value for \"auto\" was given, but this key holds no single number");
    }
  }
}

bool isBatchKey(const std::string& path) {
  return path == "train_batch_size" || path == "train_micro_batch_size_per_gpu" ||
         path == "gradient_accumulation_steps";
}

bool batchResolved(const BatchConfig& b) {
  return b.train_batch_size > 0 && b.micro_batch_per_gpu > 0 && b.gradient_accumulation_steps > 0 &&
         b.world_size > 0;
}

// HuggingFace's Trainer replaces every "auto" before DeepSpeed reads the
// config; a value left "auto" would silently train with a default (batch
// size 0, lr 0 once), so it is an error here.
void checkAutoResolved(const Config& c, const LoadOptions& options, Diagnostics& diags) {
  for (const std::string& path : c.auto_keys) {
    if (options.auto_values.count(path) != 0 || fromHiddenSize(path, options.hidden_size)) continue;
    if (isBatchKey(path) && batchResolved(c.batch)) continue;
    diags.error(path,
                "\"auto\" has no value here: HuggingFace's Trainer fills these in before "
                "DeepSpeed reads the config, and nothing did; write a number, or pass "
                "initialize(config=dict) with the values");
  }
}

bool isAutoKey(const std::vector<std::string>& auto_keys, const std::string& key) {
  for (const std::string& k : auto_keys) {
    if (k == key) return true;
  }
  return false;
}

BatchInput batchInput(const pb::DeepSpeedConfig& cfg, const std::vector<std::string>& auto_keys,
                      std::optional<int> world_size) {
  BatchInput in;
  if (cfg.has_train_batch_size()) in.train_batch_size = cfg.train_batch_size();
  if (cfg.has_train_micro_batch_size_per_gpu())
    in.micro_batch_per_gpu = cfg.train_micro_batch_size_per_gpu();
  if (cfg.has_gradient_accumulation_steps())
    in.gradient_accumulation_steps = cfg.gradient_accumulation_steps();
  in.world_size = world_size;
  in.any_auto = isAutoKey(auto_keys, "train_batch_size") ||
                isAutoKey(auto_keys, "train_micro_batch_size_per_gpu") ||
                isAutoKey(auto_keys, "gradient_accumulation_steps");
  return in;
}

[[noreturn]] void throwMalformed(const ConfigError& e) {
  throw InvalidConfigError(
      {{Diagnostic::Severity::kError, "", std::string("malformed JSON: ") + e.what()}}, {});
}

}  // namespace

LoadedConfig loadConfig(std::string_view json_text, const LoadOptions& options) {
  JsonValue document;
  try {
    document = parseJson(json_text);
  } catch (const ConfigError& e) {
    throwMalformed(e);
  }
  Diagnostics diags;
  std::vector<std::string> auto_keys;
  pb::DeepSpeedConfig cfg;
  fillFromJson(document, &cfg, diags, auto_keys);
  if (options.world_size && *options.world_size < 1) {
    diags.error("--world-size", expectedGot(">= 1", std::to_string(*options.world_size)));
  }
  applyAutoValues(cfg, auto_keys, options, diags);
  normalizeDeprecated(cfg);
  checkSemantics(cfg, diags);
  std::optional<int> world = options.world_size;
  if (world && *world < 1) world.reset();
  const BatchConfig batch = resolveBatch(batchInput(cfg, auto_keys, world), diags);
  LoadedConfig loaded{toConfig(cfg), {}};
  loaded.config.batch = batch;
  loaded.config.auto_keys = auto_keys;
  checkSupported(loaded.config, diags);
  if (options.require_resolved) checkAutoResolved(loaded.config, options, diags);
  if (diags.hasErrors()) {
    throw InvalidConfigError(diags.errors(), diags.warnings(),
                             diags.full() && diags.moreErrors() == 0 ? -1 : diags.moreErrors());
  }
  loaded.warnings = diags.warnings();
  return loaded;
}

LoadedConfig loadConfigFile(const std::string& path, const LoadOptions& options) {
  const auto refuse = [&](const std::string& expected, const std::string& found) {
    return InvalidConfigError(
        {{Diagnostic::Severity::kError, "", expectedGot(expected, found, "check the path")}}, {});
  };
  std::error_code error;
  // Checked before opening: opening a FIFO would wait for a writer.
  if (!std::filesystem::is_regular_file(path, error)) {
    throw refuse(
        "a readable config file",
        "\"" + path + "\"" +
            (std::filesystem::exists(path, error) ? " (not a regular file)" : " (no such file)"));
  }
  const auto bytes = std::filesystem::file_size(path, error);
  if (!error && bytes > kMaxConfigBytes) {
    throw refuse("a config file of at most " + std::to_string(kMaxConfigBytes >> 20) + " MiB",
                 "\"" + path + "\" of " + std::to_string(bytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw refuse("a readable config file", "\"" + path + "\" (cannot be opened)");
  std::ostringstream text;
  text << in.rdbuf();
  return loadConfig(text.str(), options);
}

}  // namespace zshard::config
