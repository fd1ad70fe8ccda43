// zerobytectl status: the daemon at a glance.
#include "common/version.h"
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/record_format.h"

#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace zerobyte::ctl {
namespace {

int showStatus(Context& ctx) {
  const nlohmann::json reply = ctx.call("GetStatus");
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::string version = field(reply, "version", "unknown");
  if (version != kVersion) version += " (zerobytectl " + std::string(kVersion) + ")";
  std::vector<std::pair<std::string, std::string>> fields{
      {"Version", version},
      {"restic", field(reply, "restic_version", "unknown")},
      {"Uptime", formatDuration(static_cast<double>(intField(reply, "uptime_seconds")))},
      {"Jobs", std::to_string(intField(reply, "running_jobs")) + " running, " +
                   std::to_string(intField(reply, "queued_jobs")) + " queued"},
      {"Volumes", std::to_string(intField(reply, "volumes"))},
      {"Repositories", std::to_string(intField(reply, "repositories"))},
      {"Authorization", field(reply, "authorization", "unknown")},
  };
  // Only administrators are told where the master key comes from (null for others).
  if (const auto& masterKey = objectField(reply, "master_key"); !masterKey.empty())
    fields.emplace_back("Master key", field(masterKey, "source", "unknown") + " (key id " + field(masterKey, "key_id", "?") + ")");
  std::cout << formatFields(fields);
  return 0;
}

}  // namespace

void addStatusCommand(CLI::App& app, Context& ctx) {
  CLI::App* status = addCommand(app, ctx, "status", "Show the daemon's version, uptime, jobs and resource counts");
  status->callback([&ctx] { ctx.action = [&ctx] { return showStatus(ctx); }; });
}

}  // namespace zerobyte::ctl
