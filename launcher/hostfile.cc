#include "launcher/hostfile.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "launcher/cli.h"
#include "runtime/core/error.h"

namespace zshard::launcher {

namespace {

int parseCount(const std::string& text, const std::string& where) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 6) {
    throw UsageError(where + ": " + expectedGot("a number", "\"" + text + "\""));
  }
  return std::stoi(text);
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

// "host:0,2@other" -> {host: {0,2}, other: {}} (empty: every slot).
std::map<std::string, std::vector<int>> parseSpec(const std::string& spec, const char* option) {
  std::map<std::string, std::vector<int>> out;
  for (const std::string& node : split(spec, '@')) {
    const size_t colon = node.find(':');
    const std::string host = node.substr(0, colon);
    if (host.empty())
      throw UsageError(std::string(option) + ": empty host name in \"" + spec + "\"");
    std::vector<int>& slots = out[host];
    if (colon == std::string::npos) continue;
    for (const std::string& s : split(node.substr(colon + 1), ','))
      slots.push_back(parseCount(s, option));
    if (slots.empty()) throw UsageError(std::string(option) + ": no slots after ':' for " + host);
  }
  return out;
}

const HostSlots& find(const std::vector<HostSlots>& hosts, const std::string& host,
                      const char* option) {
  for (const HostSlots& h : hosts) {
    if (h.host == host) return h;
  }
  throw UsageError(std::string(option) + ": host \"" + host + "\" is not in the hostfile");
}

void checkSlots(const HostSlots& h, const std::vector<int>& slots, const char* option) {
  for (int s : slots) {
    if (std::find(h.slots.begin(), h.slots.end(), s) == h.slots.end()) {
      throw UsageError(std::string(option) + ": " + h.host + " has slots 0.." +
                       std::to_string(h.slots.size() - 1) + ", got slot " + std::to_string(s));
    }
  }
}

}  // namespace

std::vector<HostSlots> parseHostfile(const std::string& text) {
  std::vector<HostSlots> hosts;
  std::stringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::stringstream words(line);
    std::string host, slots;
    if (!(words >> host)) continue;
    const std::string where = "hostfile line " + std::to_string(number);
    if (!(words >> slots) || slots.rfind("slots=", 0) != 0) {
      throw UsageError(where + ": " + expectedGot("\"HOST slots=N\"", "\"" + line + "\""));
    }
    std::string extra;
    if (words >> extra) throw UsageError(where + ": unexpected \"" + extra + "\" after the slots");
    for (const HostSlots& h : hosts) {
      if (h.host == host) throw UsageError(where + ": host \"" + host + "\" is listed twice");
    }
    HostSlots h{host, {}};
    for (int s = 0; s < parseCount(slots.substr(6), where); ++s) h.slots.push_back(s);
    hosts.push_back(h);
  }
  if (hosts.empty())
    throw UsageError("hostfile: expected at least one \"HOST slots=N\" line, got none");
  return hosts;
}

std::vector<HostSlots> filterHosts(const std::vector<HostSlots>& hosts, const std::string& include,
                                   const std::string& exclude) {
  if (!include.empty() && !exclude.empty())
    throw UsageError("--include and --exclude: give at most one");
  if (include.empty() && exclude.empty()) return hosts;
  const bool including = !include.empty();
  const char* option = including ? "--include" : "--exclude";
  const auto spec = parseSpec(including ? include : exclude, option);
  for (const auto& [host, slots] : spec) checkSlots(find(hosts, host, option), slots, option);
  std::vector<HostSlots> out;
  for (const HostSlots& h : hosts) {
    auto it = spec.find(h.host);
    HostSlots kept{h.host, {}};
    for (int s : h.slots) {
      const bool named = it != spec.end() &&
                         (it->second.empty() ||
                          std::find(it->second.begin(), it->second.end(), s) != it->second.end());
      if (named == including) kept.slots.push_back(s);
    }
    if (!kept.slots.empty()) out.push_back(kept);
  }
  if (out.empty()) throw UsageError(std::string(option) + ": no slot left to run on");
  return out;
}

void applyHostfile(LaunchOptions& o) {
  if (o.hostfile.empty()) return;
  std::ifstream in(o.hostfile);
  if (!in) throw UsageError("--hostfile: cannot read \"" + o.hostfile + "\"");
  std::stringstream text;
  text << in.rdbuf();
  const std::vector<HostSlots> hosts = filterHosts(parseHostfile(text.str()), o.include, o.exclude);
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  const std::string full = name, short_name = full.substr(0, full.find('.'));
  std::string listed;
  for (size_t i = 0; i < hosts.size(); ++i) {
    listed += (listed.empty() ? "" : ", ") + hosts[i].host;
    if (hosts[i].host != full && hosts[i].host != short_name) continue;
    o.nnodes = static_cast<int>(hosts.size());
    o.node_rank = static_cast<int>(i);
    o.nproc_per_node = static_cast<int>(hosts[i].slots.size());
    o.master_addr = hosts[0].host;
    if (o.master_port == 0 && o.nnodes > 1) o.master_port = 29500;
    std::string devices;
    for (int s : hosts[i].slots) devices += (devices.empty() ? "" : ",") + std::to_string(s);
    setenv("CUDA_VISIBLE_DEVICES", devices.c_str(), 1);
    return;
  }
  throw UsageError("--hostfile: this host (" + full + ") is not among the selected hosts (" +
                   listed + "); run zlaunch on each of them");
}

}  // namespace zshard::launcher
