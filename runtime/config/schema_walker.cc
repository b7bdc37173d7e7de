#include "runtime/config/schema_walker.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "proto/config.pb.h"
#include "proto/schema_options.pb.h"
#include "runtime/core/suggest.h"

namespace zshard::config {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::vector<std::string> splitList(const std::string& list) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) items.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

bool equalsIgnoreCase(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool listContains(const std::string& list, const std::string& item) {
  for (const std::string& entry : splitList(list)) {
    if (entry == item) return true;
  }
  return false;
}

std::string joinList(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

std::string formatNumber(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  std::string shortest = buffer;
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v) return buffer;
  }
  return shortest;
}

// Every key path of the schema, for "did you mean" across blocks.
void collectPaths(const Descriptor* d, const std::string& prefix, int depth,
                  std::vector<std::string>& paths) {
  if (depth > 4) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string path = joinPath(prefix, f->name());
    paths.push_back(path);
    if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->options().GetExtension(pb::opaque)) {
      collectPaths(f->message_type(), path, depth + 1, paths);
    }
  }
}

// Built once: the schema is fixed at compile time.
const std::vector<std::string>& schemaPaths() {
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> all;
    collectPaths(pb::DeepSpeedConfig::descriptor(), "", 0, all);
    return all;
  }();
  return paths;
}

std::string lastComponent(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

class Walker {
 public:
  Walker(Diagnostics& diags, std::vector<std::string>& auto_keys)
      : diags_(diags), auto_keys_(auto_keys) {}

  void walkObject(const JsonValue& obj, Message* msg, const std::string& path,
                  const std::string& type_context, bool inside_inert) {
    const Descriptor* d = msg->GetDescriptor();
    // `type` first, so that its block's params know which type they serve.
    if (const JsonValue* type = obj.find("type")) {
      if (d->FindFieldByName("type") != nullptr) {
        walkMember("type", *type, msg, path, type_context, inside_inert);
      }
    }
    for (const auto& [key, value] : obj.members) {
      if (key == "type" && d->FindFieldByName("type") != nullptr) continue;
      walkMember(key, value, msg, path, type_context, inside_inert);
    }
    checkRequired(msg, path, type_context);
    checkStageUse(msg, path);
  }

 private:
  std::string ownType(const Message* msg) const {
    const FieldDescriptor* type = msg->GetDescriptor()->FindFieldByName("type");
    if (type == nullptr || !msg->GetReflection()->HasField(*msg, type)) return "";
    return msg->GetReflection()->GetString(*msg, type);
  }

  void walkMember(const std::string& key, const JsonValue& value, Message* msg,
                  const std::string& parent, const std::string& type_context, bool inside_inert) {
    const std::string path = joinPath(parent, key);
    const FieldDescriptor* field = msg->GetDescriptor()->FindFieldByName(key);
    if (field == nullptr) return reportUnknown(key, path, msg->GetDescriptor());
    field = resolveAlias(field, path, msg);
    if (field == nullptr) return;
    const auto& options = field->options();
    if (options.HasExtension(pb::applies_to) && !type_context.empty() &&
        !listContains(options.GetExtension(pb::applies_to), type_context)) {
      return diags_.error(path, "not a parameter of " + type_context + " (it belongs to " +
                                    joinList(splitList(options.GetExtension(pb::applies_to))) +
                                    ")");
    }
    if (value.kind == JsonValue::Kind::kNull) return;  // null: the default
    if (value.isString("auto")) return acceptAuto(field, path, inside_inert);
    if (options.HasExtension(pb::deprecated)) {
      diags_.warn(path, "deprecated; " + options.GetExtension(pb::deprecated));
    }
    const bool inert = options.HasExtension(pb::inert) || options.GetExtension(pb::opaque);
    const bool as_zshard_does = options.HasExtension(pb::behaves_as) &&
                                value.kind == JsonValue::Kind::kBool &&
                                value.boolean == options.GetExtension(pb::behaves_as);
    if (inert && !inside_inert && !as_zshard_does) {
      diags_.warn(path,
                  options.GetExtension(pb::opaque)
                      ? "accepted but not acted on by zshard (contents not checked)"
                      : "accepted but not acted on by zshard: " + options.GetExtension(pb::inert));
    }
    if (options.GetExtension(pb::opaque)) return;
    if (field->is_repeated()) return walkRepeated(field, value, msg, path);
    if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (value.kind != JsonValue::Kind::kObject) {
        return diags_.error(path, expectedGot("an object", value.describe()));
      }
      Message* child = msg->GetReflection()->MutableMessage(msg, field);
      return walkObject(value, child, path, ownType(msg), inside_inert || inert);
    }
    setScalar(field, value, msg, path, -1);
  }

  // Returns the field an old name stands for (with a warning), the field
  // itself when it is no alias, or nullptr after reporting a conflict.
  const FieldDescriptor* resolveAlias(const FieldDescriptor* field, const std::string& path,
                                      Message* msg) {
    if (!field->options().HasExtension(pb::alias_of)) return field;
    const std::string& target_name = field->options().GetExtension(pb::alias_of);
    const FieldDescriptor* target = msg->GetDescriptor()->FindFieldByName(target_name);
    if (msg->GetReflection()->HasField(*msg, target)) {
      diags_.error(
          path, "given together with its newer name " + target_name + "; keep only " + target_name);
      return nullptr;
    }
    diags_.warn(path, "old name of " + target_name + "; write " + target_name);
    return target;
  }

  // An "auto" of a key nothing reads needs no value: it is not recorded.
  void acceptAuto(const FieldDescriptor* field, const std::string& path, bool inside_inert) {
    if (!field->options().GetExtension(pb::auto_ok)) {
      return diags_.error(path, expectedGot(typeName(field), "the string \"auto\"",
                                            "\"auto\" is not accepted for this key"));
    }
    if (inside_inert || field->options().HasExtension(pb::inert)) return;
    auto_keys_.push_back(path);
  }

  void reportUnknown(const std::string& key, const std::string& path, const Descriptor* d) {
    std::vector<std::string> siblings;
    for (int i = 0; i < d->field_count(); ++i) siblings.push_back(d->field(i)->name());
    std::string suggestion = closestMatch(key, siblings);
    if (suggestion.empty()) suggestion = elsewhereInSchema(key);
    diags_.error(path, suggestion.empty() ? "unknown key"
                                          : "unknown key; did you mean \"" + suggestion + "\"?");
  }

  // A key that belongs to another block: its full path there.
  std::string elsewhereInSchema(const std::string& key) const {
    std::vector<std::string> leaves;
    for (const std::string& p : schemaPaths()) leaves.push_back(lastComponent(p));
    const std::string leaf = closestMatch(key, leaves);
    if (leaf.empty()) return "";
    for (const std::string& p : schemaPaths()) {
      if (lastComponent(p) == leaf) return p;
    }
    return "";
  }

  void walkRepeated(const FieldDescriptor* field, const JsonValue& value, Message* msg,
                    const std::string& path) {
    if (value.kind != JsonValue::Kind::kArray) {
      return diags_.error(path, expectedGot("an array of " + typeName(field), value.describe()));
    }
    const auto& options = field->options();
    if (options.HasExtension(pb::count) &&
        static_cast<int>(value.items.size()) != options.GetExtension(pb::count)) {
      return diags_.error(path,
                          expectedGot(std::to_string(options.GetExtension(pb::count)) + " elements",
                                      std::to_string(value.items.size())));
    }
    for (size_t i = 0; i < value.items.size() && !diags_.full(); ++i) {
      setScalar(field, value.items[i], msg, path + "[" + std::to_string(i) + "]",
                static_cast<int>(i));
    }
  }

  static std::string typeName(const FieldDescriptor* field) {
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: return "an integer";
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: return "a number";
      case FieldDescriptor::CPPTYPE_BOOL: return "true or false";
      case FieldDescriptor::CPPTYPE_STRING: return "a string";
      case FieldDescriptor::CPPTYPE_MESSAGE: return "an object";
      default: return "a value";
    }
  }

  // Sets one scalar (index >= 0: appends to a repeated field).
  void setScalar(const FieldDescriptor* field, const JsonValue& value, Message* msg,
                 const std::string& path, int index) {
    const Reflection* r = msg->GetReflection();
    const bool add = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v;
        if (!toInteger(field, value, path, v) ||
            !inRange(field, static_cast<double>(v), value, path))
          return;
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
          add ? r->AddInt32(msg, field, static_cast<int32_t>(v))
              : r->SetInt32(msg, field, static_cast<int32_t>(v));
        } else {
          add ? r->AddInt64(msg, field, v) : r->SetInt64(msg, field, v);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        if (value.kind != JsonValue::Kind::kNumber) {
          return diags_.error(path, expectedGot("a number", value.describe()));
        }
        if (!inRange(field, value.number, value, path)) return;
        add ? r->AddDouble(msg, field, value.number) : r->SetDouble(msg, field, value.number);
        return;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        if (value.kind != JsonValue::Kind::kBool) {
          return diags_.error(path, expectedGot("true or false", value.describe()));
        }
        if (value.boolean && field->options().HasExtension(pb::refused_when_true)) {
          return diags_.error(path, field->options().GetExtension(pb::refused_when_true));
        }
        add ? r->AddBool(msg, field, value.boolean) : r->SetBool(msg, field, value.boolean);
        return;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string s;
        if (!toChoice(field, value, path, s)) return;
        add ? r->AddString(msg, field, s) : r->SetString(msg, field, s);
        return;
      }
      default: diags_.error(path, "unsupported schema field type (a zshard bug)");
    }
  }

  bool toInteger(const FieldDescriptor* field, const JsonValue& value, const std::string& path,
                 int64_t& out) {
    if (value.kind != JsonValue::Kind::kNumber) {
      diags_.error(path, expectedGot("an integer", value.describe()));
      return false;
    }
    const bool plain = value.text.find_first_of(".eE") == std::string::npos;
    if (plain) {
      errno = 0;
      out = std::strtoll(value.text.c_str(), nullptr, 10);
      if (errno == ERANGE) return rangeError(path, value, "an integer within 64 bits");
    } else {
      const double v = value.number;
      if (!std::isfinite(v) || v != std::floor(v)) {
        diags_.error(path, expectedGot("an integer", value.describe()));
        return false;
      }
      if (v < -9.2233720368547758e18 || v >= 9.2233720368547758e18) {
        return rangeError(path, value, "an integer within 64 bits");
      }
      out = static_cast<int64_t>(v);
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32 &&
        (out < std::numeric_limits<int32_t>::min() || out > std::numeric_limits<int32_t>::max())) {
      return rangeError(path, value, "an integer within 32 bits");
    }
    return true;
  }

  bool rangeError(const std::string& path, const JsonValue& value, const std::string& expected) {
    diags_.error(path, expectedGot(expected, value.text));
    return false;
  }

  bool inRange(const FieldDescriptor* field, double v, const JsonValue& value,
               const std::string& path) {
    const auto& o = field->options();
    const bool has_min = o.HasExtension(pb::min), has_max = o.HasExtension(pb::max);
    const bool has_gt = o.HasExtension(pb::gt), has_lt = o.HasExtension(pb::lt);
    const double lo = has_min ? o.GetExtension(pb::min) : o.GetExtension(pb::gt);
    const double hi = has_max ? o.GetExtension(pb::max) : o.GetExtension(pb::lt);
    const bool low_ok = has_min ? v >= lo : (!has_gt || v > lo);
    const bool high_ok = has_max ? v <= hi : (!has_lt || v < hi);
    if (!std::isfinite(v)) return rangeError(path, value, "a finite number");
    if (low_ok && high_ok) return true;
    std::string expected;
    const bool has_low = has_min || has_gt, has_high = has_max || has_lt;
    if (has_min && has_max) {
      expected = formatNumber(lo) + ".." + formatNumber(hi);
    } else if (has_low && has_high) {
      expected = std::string(has_min ? "[" : "(") + formatNumber(lo) + ", " + formatNumber(hi) +
                 (has_max ? "]" : ")");
    } else if (has_low) {
      expected = std::string(has_min ? ">= " : "> ") + formatNumber(lo);
    } else {
      expected = std::string(has_max ? "<= " : "< ") + formatNumber(hi);
    }
    return rangeError(path, value, expected);
  }

  bool toChoice(const FieldDescriptor* field, const JsonValue& value, const std::string& path,
                std::string& out) {
    if (value.kind != JsonValue::Kind::kString) {
      diags_.error(path, expectedGot("a string", value.describe()));
      return false;
    }
    if (!field->options().HasExtension(pb::choices)) {
      out = value.text;
      return true;
    }
    const std::vector<std::string> choices = splitList(field->options().GetExtension(pb::choices));
    for (const std::string& choice : choices) {
      if (equalsIgnoreCase(choice, value.text)) {
        out = choice;
        return true;
      }
    }
    const std::string guess = closestMatch(value.text, choices);
    diags_.error(path, expectedGot("one of " + joinList(choices), "\"" + value.text + "\"",
                                   guess.empty() ? "" : "did you mean \"" + guess + "\"?"));
    return false;
  }

  // Keys required by the block itself ("*") or by its type; absent blocks
  // below a typed block are checked for what that type requires.
  void checkRequired(const Message* msg, const std::string& path, const std::string& type_context) {
    const Descriptor* d = msg->GetDescriptor();
    const Reflection* r = msg->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      const std::string child = joinPath(path, f->name());
      if (isRequired(f, type_context, true) && !r->HasField(*msg, f) && !isAuto(child) &&
          !diags_.hasErrorAt(child)) {
        diags_.error(child,
                     type_context.empty() || f->options().GetExtension(pb::required_for) == "*"
                         ? "required"
                         : "required for " + type_context);
      }
      if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated() &&
          !r->HasField(*msg, f) && !ownType(msg).empty()) {
        checkAbsentBlock(f->message_type(), child, ownType(msg));
      }
    }
  }

  void checkAbsentBlock(const Descriptor* d, const std::string& path, const std::string& type) {
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (isRequired(f, type, false))
        diags_.error(joinPath(path, f->name()), "required for " + type);
    }
  }

  static bool isRequired(const FieldDescriptor* f, const std::string& type, bool star_counts) {
    if (!f->options().HasExtension(pb::required_for)) return false;
    const std::string& list = f->options().GetExtension(pb::required_for);
    if (list == "*") return star_counts;
    return !type.empty() && listContains(list, type);
  }

  bool isAuto(const std::string& path) const {
    for (const std::string& key : auto_keys_) {
      if (key == path) return true;
    }
    return false;
  }

  // Keys only a later ZeRO stage reads, set while `stage` is lower.
  void checkStageUse(const Message* msg, const std::string& path) {
    const Descriptor* d = msg->GetDescriptor();
    const FieldDescriptor* stage_field = d->FindFieldByName("stage");
    if (stage_field == nullptr || stage_field->cpp_type() != FieldDescriptor::CPPTYPE_INT32) return;
    const Reflection* r = msg->GetReflection();
    const int stage = r->GetInt32(*msg, stage_field);
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      const int needs = f->options().GetExtension(pb::needs_stage);
      if (needs > stage && r->HasField(*msg, f)) {
        diags_.warn(joinPath(path, f->name()),
                    "only used from ZeRO stage " + std::to_string(needs) + " on; " +
                        joinPath(path, "stage") + " is " + std::to_string(stage));
      }
    }
  }

  Diagnostics& diags_;
  std::vector<std::string>& auto_keys_;
};

}  // namespace

void fillFromJson(const JsonValue& document, Message* out, Diagnostics& diags,
                  std::vector<std::string>& auto_keys) {
  if (document.kind != JsonValue::Kind::kObject) {
    return diags.error("",
                       expectedGot("a JSON object at the top of the config", document.describe()));
  }
  Walker(diags, auto_keys).walkObject(document, out, "", "", false);
}

}  // namespace zshard::config
