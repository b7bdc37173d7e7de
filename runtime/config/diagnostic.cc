#include "runtime/config/diagnostic.h"

namespace zshard::config {

namespace {

std::string joinLines(const std::vector<Diagnostic>& diagnostics) {
  std::string text;
  for (const Diagnostic& d : diagnostics) {
    if (!text.empty()) text += '\n';
    text += d.str();
  }
  return text;
}

}  // namespace

std::string Diagnostic::str() const {
  return path.empty() ? message : path + ": " + message;
}

namespace {

// A key path or message from a hostile document can be megabytes.
std::string shortened(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...(" + std::to_string(text.size()) + " bytes)";
}

}  // namespace

void Diagnostics::error(const std::string& path, const std::string& message) {
  if (full()) {
    ++more_errors_;
    return;
  }
  errors_.push_back({Diagnostic::Severity::kError, shortened(path, 200), shortened(message, 1000)});
}

void Diagnostics::warn(const std::string& path, const std::string& message) {
  if (warnings_.size() >= kMaxKept) return;
  warnings_.push_back(
      {Diagnostic::Severity::kWarning, shortened(path, 200), shortened(message, 1000)});
}

bool Diagnostics::hasErrorAt(const std::string& path) const {
  for (const Diagnostic& d : errors_) {
    if (d.path == path) return true;
  }
  return false;
}

InvalidConfigError::InvalidConfigError(std::vector<Diagnostic> errors,
                                       std::vector<Diagnostic> warnings, int64_t more_errors)
    : ConfigError(joinLines(errors)),
      errors_(std::move(errors)),
      warnings_(std::move(warnings)),
      more_errors_(more_errors) {}

std::string InvalidConfigError::moreLine() const {
  if (more_errors_ == 0) return "";
  if (more_errors_ < 0) return "and possibly more problems (checking stopped after these)";
  return "and " + std::to_string(more_errors_) + " more problem(s) like these";
}

std::string joinPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

}  // namespace zshard::config
