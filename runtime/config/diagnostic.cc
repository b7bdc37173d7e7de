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

void Diagnostics::error(const std::string& path, const std::string& message) {
  errors_.push_back({Diagnostic::Severity::kError, path, message});
}

void Diagnostics::warn(const std::string& path, const std::string& message) {
  warnings_.push_back({Diagnostic::Severity::kWarning, path, message});
}

bool Diagnostics::hasErrorAt(const std::string& path) const {
  for (const Diagnostic& d : errors_) {
    if (d.path == path) return true;
  }
  return false;
}

InvalidConfigError::InvalidConfigError(std::vector<Diagnostic> errors,
                                       std::vector<Diagnostic> warnings)
    : ConfigError(joinLines(errors)), errors_(std::move(errors)), warnings_(std::move(warnings)) {}

std::string joinPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

}  // namespace zshard::config
