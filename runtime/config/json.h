#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zshard::config {

// A parsed JSON document that remembers where each value started, so that
// errors can name a line and column. Object members keep their file order.
struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;             // kNumber
  std::string text;              // kString: the decoded string; kNumber: the literal
  std::vector<JsonValue> items;  // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject
  int line = 1;
  int column = 1;

  bool isString(std::string_view s) const { return kind == Kind::kString && text == s; }
  // The member named `key` of an object, or nullptr.
  const JsonValue* find(std::string_view key) const;
  // A short description for messages: `the string "x"`, `the number 4`, ...
  std::string describe() const;
};

// Parses RFC 8259 JSON (no comments, no NaN/Infinity, no trailing commas).
// Duplicate keys in one object are an error, as in DeepSpeed. Throws
// ConfigError "line L, column C: expected ..., got ..." on malformed input.
// Nesting deeper than kMaxDepth is refused rather than overflowing the stack.
JsonValue parseJson(std::string_view text);

inline constexpr int kMaxJsonDepth = 200;

}  // namespace zshard::config
