#include "runtime/rendezvous/hostlist.h"

#include <cstdlib>

#include "runtime/core/error.h"

namespace zshard::rendezvous {

namespace {

[[noreturn]] void malformed(const std::string& what, const std::string& text,
                            const std::string& why) {
  throw Error(what + ": cannot parse \"" + text + "\": " + why);
}

// Splits on commas that are not inside brackets.
std::vector<std::string> splitTopLevel(const std::string& text) {
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0) malformed("hostlist", text, "']' without '['");
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (depth != 0) malformed("hostlist", text, "'[' without ']'");
  if (!current.empty() || !parts.empty()) parts.push_back(current);
  return parts;
}

long parseNumber(const std::string& s, const std::string& whole, const char* what = "hostlist") {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    malformed(what, whole, "\"" + s + "\" is not a number");
  }
  return std::strtol(s.c_str(), nullptr, 10);
}

// "01-03,7" -> {"01","02","03","7"} (width of the lower bound kept).
std::vector<std::string> expandRange(const std::string& body, const std::string& whole) {
  std::vector<std::string> out;
  if (body.empty()) malformed("hostlist", whole, "empty brackets");
  for (const std::string& item : splitTopLevel(body)) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      parseNumber(item, whole);
      out.push_back(item);
      continue;
    }
    const std::string lo_text = item.substr(0, dash);
    const long lo = parseNumber(lo_text, whole), hi = parseNumber(item.substr(dash + 1), whole);
    if (hi < lo) malformed("hostlist", whole, "range " + item + " goes down");
    if (hi - lo > 100000) malformed("hostlist", whole, "range " + item + " is too large");
    for (long n = lo; n <= hi; ++n) {
      std::string digits = std::to_string(n);
      if (digits.size() < lo_text.size()) digits.insert(0, lo_text.size() - digits.size(), '0');
      out.push_back(digits);
    }
  }
  return out;
}

void expandName(const std::string& name, const std::string& whole, std::vector<std::string>& out) {
  const size_t open = name.find('[');
  if (open == std::string::npos) {
    out.push_back(name);
    return;
  }
  const size_t close = name.find(']', open);
  const std::string prefix = name.substr(0, open), rest = name.substr(close + 1);
  for (const std::string& n : expandRange(name.substr(open + 1, close - open - 1), whole)) {
    expandName(prefix + n + rest, whole, out);
  }
}

}  // namespace

std::vector<std::string> expandHostlist(const std::string& hostlist) {
  std::vector<std::string> hosts;
  for (const std::string& name : splitTopLevel(hostlist)) {
    if (name.empty()) malformed("hostlist", hostlist, "empty host name");
    expandName(name, hostlist, hosts);
  }
  return hosts;
}

std::vector<int> expandTasksPerNode(const std::string& spec) {
  std::vector<int> out;
  for (const std::string& item : splitTopLevel(spec)) {
    const size_t paren = item.find("(x");
    const std::string count = item.substr(0, paren);
    long repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') malformed("SLURM_TASKS_PER_NODE", spec, "missing ')'");
      repeat = parseNumber(item.substr(paren + 2, item.size() - paren - 3), spec,
                           "SLURM_TASKS_PER_NODE");
    }
    const long n = parseNumber(count, spec, "SLURM_TASKS_PER_NODE");
    for (long i = 0; i < repeat; ++i) out.push_back(static_cast<int>(n));
  }
  return out;
}

}  // namespace zshard::rendezvous
