// The config contract: every key of the ds.json schema is either read into
// config::Config (what the runtime acts on), marked (inert) in the schema
// with the reason, so that setting it warns the user, or refused when set
// (refused_when_true). A key added to
// proto/config.proto without either fails here; so does a key marked inert
// that something reads after all.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "proto/config.pb.h"
#include "proto/schema_options.pb.h"
#include "runtime/config/load.h"
#include "runtime/config/semantic_checks.h"
#include "runtime/config/to_config.h"

namespace zshard::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Read by the batch-size inference (batch_size.h), not by toConfig();
// checked through loadConfig below.
const std::set<std::string> kBatchKeys = {"train_batch_size", "train_micro_batch_size_per_gpu",
                                          "gradient_accumulation_steps"};

struct Leaf {
  std::vector<const FieldDescriptor*> path;
  bool inert = false;  // or refused when set: nothing reads it either way
  std::string name() const {
    std::string out;
    for (const FieldDescriptor* f : path) out += (out.empty() ? "" : ".") + f->name();
    return out;
  }
};

bool skipped(const FieldDescriptor* f) {
  // Old names write into their new key (tested in load_test.cc); opaque
  // blocks keep any JSON and are reported as inert by the walker.
  return f->options().HasExtension(pb::alias_of) || f->options().GetExtension(pb::opaque);
}

void collect(const Descriptor* d, std::vector<const FieldDescriptor*> prefix, bool inert,
             std::vector<Leaf>& out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (skipped(f)) continue;
    std::vector<const FieldDescriptor*> path = prefix;
    path.push_back(f);
    const bool leaf_inert = inert || f->options().HasExtension(pb::inert) ||
                            f->options().HasExtension(pb::refused_when_true);
    if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      collect(f->message_type(), path, leaf_inert, out);
    } else {
      out.push_back({path, leaf_inert});
    }
  }
}

// The first of a field's choices that is not its default.
std::string otherChoice(const FieldDescriptor* f) {
  std::string list = f->options().GetExtension(pb::choices);
  if (list.empty()) return "x";
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(',', start), list.size());
    const std::string choice = list.substr(start, end - start);
    if (choice != f->default_value_string()) return choice;
    start = end + 1;
  }
  return "x";
}

// Sets the leaf to a value other than its default.
void perturb(Message* msg, const Leaf& leaf) {
  for (size_t i = 0; i + 1 < leaf.path.size(); ++i) {
    msg = msg->GetReflection()->MutableMessage(msg, leaf.path[i]);
  }
  const FieldDescriptor* f = leaf.path.back();
  const auto* r = msg->GetReflection();
  if (f->is_repeated()) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
      r->AddDouble(msg, f, 0.5);
      r->AddDouble(msg, f, 0.75);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
      r->AddInt64(msg, f, 2);
      r->AddInt64(msg, f, 3);
    } else {
      r->AddString(msg, f, "x");
    }
    return;
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(msg, f, !f->default_value_bool()); break;
    case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(msg, f, f->default_value_int32() + 2); break;
    case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(msg, f, f->default_value_int64() - 2); break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      r->SetDouble(msg, f, f->default_value_double() * 0.5 + 0.25);
      break;
    case FieldDescriptor::CPPTYPE_STRING: r->SetString(msg, f, otherChoice(f)); break;
    default: FAIL() << leaf.name() << ": a field type this test does not know";
  }
}

Config typed(pb::DeepSpeedConfig cfg) {
  normalizeDeprecated(cfg);
  return toConfig(cfg);
}

std::vector<Leaf> leaves() {
  std::vector<Leaf> out;
  collect(pb::DeepSpeedConfig::descriptor(), {}, false, out);
  return out;
}

TEST(SchemaContract, EveryKeyIsReadIntoTheConfigOrMarkedInert) {
  const Config baseline = typed(pb::DeepSpeedConfig());
  std::vector<std::string> unread;
  for (const Leaf& leaf : leaves()) {
    if (leaf.inert || kBatchKeys.count(leaf.name()) != 0) continue;
    pb::DeepSpeedConfig cfg;
    perturb(&cfg, leaf);
    if (typed(cfg) == baseline) unread.push_back(leaf.name());
  }
  EXPECT_TRUE(unread.empty()) << "keys nothing reads (read them into config::Config, or mark "
                                 "them (inert) = \"why\" in proto/config.proto): "
                              << ::testing::PrintToString(unread);
}

TEST(SchemaContract, NoInertKeyIsRead) {
  const Config baseline = typed(pb::DeepSpeedConfig());
  for (const Leaf& leaf : leaves()) {
    if (!leaf.inert) continue;
    pb::DeepSpeedConfig cfg;
    perturb(&cfg, leaf);
    EXPECT_TRUE(typed(cfg) == baseline) << leaf.name() << " is marked inert but changes the Config";
  }
}

TEST(SchemaContract, InertKeysSayWhy) {
  const Descriptor* root = pb::DeepSpeedConfig::descriptor();
  std::vector<const Descriptor*> todo = {root};
  std::set<const Descriptor*> seen;
  int marked = 0;
  while (!todo.empty()) {
    const Descriptor* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->options().HasExtension(pb::inert)) {
        ++marked;
        EXPECT_GE(f->options().GetExtension(pb::inert).size(), 10u) << f->full_name();
      }
      if (f->type() == FieldDescriptor::TYPE_MESSAGE) todo.push_back(f->message_type());
    }
  }
  EXPECT_GT(marked, 40);
}

TEST(SchemaContract, BatchKeysAreReadByTheBatchInference) {
  LoadOptions options;
  options.world_size = 2;
  const Config c = loadConfig(R"({"train_micro_batch_size_per_gpu": 3,
      "gradient_accumulation_steps": 5})",
                              options)
                       .config;
  EXPECT_EQ(c.batch.train_batch_size, 30);
  const Config d =
      loadConfig(R"({"train_batch_size": 12, "gradient_accumulation_steps": 2})", options).config;
  EXPECT_EQ(d.batch.micro_batch_per_gpu, 3);
}

// Setting an inert key tells the user, with the reason.
TEST(SchemaContract, SettingAnInertKeyWarnsWithTheReason) {
  const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8,
      "zero_optimization": {"stage": 2, "allgather_bucket_size": 5e7}})");
  bool found = false;
  for (const Diagnostic& w : loaded.warnings) {
    if (w.path == "zero_optimization.allgather_bucket_size" &&
        w.message.find("not acted on by zshard: the all-gather runs in place") != std::string::npos)
      found = true;
  }
  EXPECT_TRUE(found);
}

// ... but not when the value written is what zshard always does.
TEST(SchemaContract, AnInertKeySetAsZshardBehavesIsNotWarned) {
  const auto warned = [](const std::string& zero) {
    const LoadedConfig loaded =
        loadConfig(R"({"train_batch_size": 8, "zero_optimization": {"stage": 2, )" + zero + "}}");
    for (const Diagnostic& w : loaded.warnings)
      if (w.path == "zero_optimization.contiguous_gradients") return true;
    return false;
  };
  EXPECT_FALSE(warned(R"("contiguous_gradients": true)"));
  EXPECT_TRUE(warned(R"("contiguous_gradients": false)"));
}

}  // namespace
}  // namespace zshard::config
