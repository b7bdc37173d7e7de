#pragma once

#include <string>
#include <vector>

#include "runtime/core/error.h"

namespace zshard::config {

// One finding about a config, tied to the key path it is about, e.g.
// {kError, "zero_optimization.stage", "expected 0..3, got 4"}.
struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string path;  // dotted key path; "" for the document itself
  std::string message;

  // "<path>: <message>", or just the message for the document itself.
  std::string str() const;
};

// Collects findings while a config is checked. Not thread-safe.
class Diagnostics {
 public:
  void error(const std::string& path, const std::string& message);
  void warn(const std::string& path, const std::string& message);
  bool hasErrors() const { return !errors_.empty(); }
  // Whether an error was already reported for exactly this key path.
  bool hasErrorAt(const std::string& path) const;
  const std::vector<Diagnostic>& errors() const { return errors_; }
  const std::vector<Diagnostic>& warnings() const { return warnings_; }

 private:
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
};

// Thrown when a config has errors; what() lists one problem per line.
class InvalidConfigError : public ConfigError {
 public:
  InvalidConfigError(std::vector<Diagnostic> errors, std::vector<Diagnostic> warnings);
  const std::vector<Diagnostic>& errors() const { return errors_; }
  const std::vector<Diagnostic>& warnings() const { return warnings_; }

 private:
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
};

// Joins "a" and "b" into the path "a.b" (or "b" when a is empty).
std::string joinPath(const std::string& parent, const std::string& key);

}  // namespace zshard::config
