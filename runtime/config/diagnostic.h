#pragma once

#include <cstdint>
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

// Collects findings while a config is checked: the first kMaxKept errors
// and warnings each (a long path or message shortened), the rest only
// counted, so that a hostile document costs bounded memory and output.
// Not thread-safe.
class Diagnostics {
 public:
  static constexpr size_t kMaxKept = 20;
  void error(const std::string& path, const std::string& message);
  void warn(const std::string& path, const std::string& message);
  bool hasErrors() const { return !errors_.empty(); }
  // Whether no more errors will be kept (checking may stop).
  bool full() const { return errors_.size() >= kMaxKept; }
  // Errors found beyond the kept ones.
  int64_t moreErrors() const { return more_errors_; }
  // Whether an error was already reported for exactly this key path.
  bool hasErrorAt(const std::string& path) const;
  const std::vector<Diagnostic>& errors() const { return errors_; }
  const std::vector<Diagnostic>& warnings() const { return warnings_; }

 private:
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  int64_t more_errors_ = 0;
};

// Thrown when a config has errors; what() lists one problem per line.
// `more_errors`: problems found beyond those listed (-1: checking stopped
// after them, more may exist).
class InvalidConfigError : public ConfigError {
 public:
  InvalidConfigError(std::vector<Diagnostic> errors, std::vector<Diagnostic> warnings,
                     int64_t more_errors = 0);
  const std::vector<Diagnostic>& errors() const { return errors_; }
  const std::vector<Diagnostic>& warnings() const { return warnings_; }
  int64_t moreErrors() const { return more_errors_; }
  // "and N more problems" (or "and possibly more ..."), "" when none.
  std::string moreLine() const;

 private:
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  int64_t more_errors_;
};

// Joins "a" and "b" into the path "a.b" (or "b" when a is empty).
std::string joinPath(const std::string& parent, const std::string& key);

}  // namespace zshard::config
