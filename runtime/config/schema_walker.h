#pragma once

#include <string>
#include <vector>

#include "runtime/config/diagnostic.h"
#include "runtime/config/json.h"

namespace google::protobuf {
class Message;
}

namespace zshard::config {

// Fills `out` from a JSON document by walking it against the message's
// descriptor and the options of proto/schema_options.proto: types, ranges,
// choices, "auto", aliases, deprecations, inert and opaque blocks, per-type
// applicability and requirements. Every problem is reported to `diags` with
// its key path; unknown keys get a "did you mean". Keys written as "auto"
// are left unset and their paths appended to `auto_keys`.
// Internal to runtime/config (it sees protobuf types).
void fillFromJson(const JsonValue& document, google::protobuf::Message* out, Diagnostics& diags,
                  std::vector<std::string>& auto_keys);

}  // namespace zshard::config
