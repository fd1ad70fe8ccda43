// Human descriptions of jobs, snapshot entries and secret states.
#include "ctl/record_format.h"

#include "ctl/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace zerobyte::ctl {
namespace {

const nlohmann::json* find(const nlohmann::json& record, std::string_view key) {
  if (!record.is_object()) return nullptr;
  auto it = record.find(std::string(key));
  return it == record.end() ? nullptr : &*it;
}

}  // namespace

std::string field(const nlohmann::json& record, std::string_view key, std::string_view fallback) {
  const auto* value = find(record, key);
  if (value && value->is_string()) return value->get<std::string>();
  return std::string(fallback);
}

int64_t intField(const nlohmann::json& record, std::string_view key, int64_t fallback) {
  return optionalIntField(record, key).value_or(fallback);
}

std::optional<int64_t> optionalIntField(const nlohmann::json& record, std::string_view key) {
  const auto* value = find(record, key);
  if (!value || !value->is_number()) return std::nullopt;
  if (value->is_number_unsigned()) return static_cast<int64_t>(value->get<uint64_t>());
  if (value->is_number_integer()) return value->get<int64_t>();
  return static_cast<int64_t>(std::llround(value->get<double>()));
}

uint64_t countField(const nlohmann::json& record, std::string_view key) {
  return static_cast<uint64_t>(std::max<int64_t>(0, intField(record, key)));
}

double numberField(const nlohmann::json& record, std::string_view key, double fallback) {
  const auto* value = find(record, key);
  return value && value->is_number() ? value->get<double>() : fallback;
}

bool boolField(const nlohmann::json& record, std::string_view key, bool fallback) {
  const auto* value = find(record, key);
  return value && value->is_boolean() ? value->get<bool>() : fallback;
}

const nlohmann::json& objectField(const nlohmann::json& record, std::string_view key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const auto* value = find(record, key);
  return value && value->is_object() ? *value : kEmpty;
}

const nlohmann::json& arrayField(const nlohmann::json& record, std::string_view key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const auto* value = find(record, key);
  return value && value->is_array() ? *value : kEmpty;
}

std::string joinedField(const nlohmann::json& record, std::string_view key, std::string_view separator) {
  const auto* value = find(record, key);
  std::string out;
  if (!value || !value->is_array()) return out;
  for (const auto& item : *value) {
    if (!item.is_string()) continue;
    if (!out.empty()) out += separator;
    out += item.get<std::string>();
  }
  return out;
}

std::string localTimeField(const nlohmann::json& record, std::string_view key) {
  const auto* value = find(record, key);
  return formatLocalTime(value ? *value : nlohmann::json());
}

std::string shortSnapshotId(std::string_view id) {
  bool hex = std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  return std::string(hex && id.size() == 64 ? id.substr(0, 8) : id);
}

std::string describeJob(const nlohmann::json& job) {
  const std::string operation = field(job, "operation", "job");
  const std::string repository = field(job, "repository", "?");
  const std::string snapshot = shortSnapshotId(field(job, "snapshot"));
  if (operation == "backup") return "backup " + field(job, "volume", "?") + " → " + repository;
  if (operation == "restore") return "restore " + repository + " " + snapshot + " → " + field(job, "target", "?");
  if (operation == "forget") return "forget " + repository + " " + snapshot;
  if (operation == "retention") return "retention " + field(job, "schedule", "?") + " in " + repository;
  return operation + " " + repository;
}

std::string jobStateText(const nlohmann::json& job) {
  std::string state = field(job, "state", "unknown");
  if (state != "running") return state;
  const auto& progress = objectField(job, "progress");
  double percent = numberField(progress, "percent");
  if (!(percent > 0)) return state;
  char buf[32];
  std::snprintf(buf, sizeof buf, " %d%%", static_cast<int>(std::clamp(percent, 0.0, 100.0)));
  return state + buf;
}

std::optional<double> jobDuration(const nlohmann::json& job, double now) {
  const auto& summary = objectField(job, "summary");
  if (summary.contains("total_duration")) return numberField(summary, "total_duration");
  auto started = parseRfc3339(field(job, "started"));
  auto finished = parseRfc3339(field(job, "finished"));
  if (started && finished) return std::max(0.0, *finished - *started);
  if (started && field(job, "state") == "running") return std::max(0.0, now - *started);
  const auto& progress = objectField(job, "progress");
  if (auto elapsed = optionalIntField(progress, "seconds_elapsed"); elapsed && *elapsed > 0)
    return static_cast<double>(*elapsed);
  return std::nullopt;
}

std::string secretStateText(const nlohmann::json& secretState) {
  if (!boolField(secretState, "set")) return "not set";
  std::string source = field(secretState, "source");
  return source.empty() ? "set" : "set (" + source + ")";
}

std::string ownerText(const nlohmann::json& resource) {
  const int64_t uid = intField(resource, "owner_uid");
  std::string name = userName(uid);
  return name == std::to_string(uid) ? name : name + " (" + std::to_string(uid) + ")";
}

std::string sharingText(const nlohmann::json& resource) {
  auto gid = optionalIntField(resource, "group_gid");
  if (!gid) return "not shared";
  std::string name = field(resource, "group");
  return "with group " + (name.empty() ? std::to_string(*gid) : name);
}

std::string runsAsText(const nlohmann::json& resource) {
  return boolField(resource, "privileged") ? "root (created by an admin)" : "its owner";
}

std::string lsPermissions(std::string_view type, int64_t mode) {
  char kind = '-';
  if (type == "dir") kind = 'd';
  else if (type == "symlink") kind = 'l';
  else if (type == "dev") kind = 'b';
  else if (type == "chardev") kind = 'c';
  else if (type == "fifo") kind = 'p';
  else if (type == "socket") kind = 's';
  else if (type != "file") kind = '?';

  // Go keeps setuid, setgid and sticky in high bits (1<<23, 1<<22, 1<<20); POSIX in 07000.
  const bool goMode = mode > 0xffff;
  const bool setuid = goMode ? (mode & (int64_t{1} << 23)) != 0 : (mode & 04000) != 0;
  const bool setgid = goMode ? (mode & (int64_t{1} << 22)) != 0 : (mode & 02000) != 0;
  const bool sticky = goMode ? (mode & (int64_t{1} << 20)) != 0 : (mode & 01000) != 0;

  std::string out(10, '-');
  out[0] = kind;
  static constexpr char kLetters[] = "rwxrwxrwx";
  for (int bit = 0; bit < 9; ++bit)
    if (mode & (int64_t{1} << (8 - bit))) out[static_cast<size_t>(bit) + 1] = kLetters[bit];
  auto special = [&](size_t position, bool on, char withExecute, char withoutExecute) {
    if (on) out[position] = out[position] == '-' ? withoutExecute : withExecute;
  };
  special(3, setuid, 's', 'S');
  special(6, setgid, 's', 'S');
  special(9, sticky, 't', 'T');
  return out;
}

std::string nodeLine(const nlohmann::json& node) {
  auto mode = optionalIntField(node, "mode");
  std::string permissions = mode ? lsPermissions(field(node, "type"), *mode) : field(node, "permissions", "?");
  std::string owner = std::to_string(intField(node, "uid")) + "/" + std::to_string(intField(node, "gid"));
  auto size = optionalIntField(node, "size");
  const std::string sizeText = size ? std::to_string(*size) : "";
  const std::string mtime = localTimeField(node, "mtime");
  char head[128];
  std::snprintf(head, sizeof head, "%-10s %-11s %12s %s ", permissions.c_str(), owner.c_str(), sizeText.c_str(),
                mtime.c_str());
  std::string line = sanitize(head) + sanitize(field(node, "path", field(node, "name")));
  if (field(node, "type") == "symlink") line += " -> " + sanitize(field(node, "link_target"));
  return line;
}

}  // namespace zerobyte::ctl
