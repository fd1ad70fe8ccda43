// zerobytectl job: list, show, follow, read the log of and cancel jobs.
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/progress.h"
#include "ctl/record_format.h"

#include <ctime>
#include <iostream>
#include <memory>
#include <optional>

namespace zerobyte::ctl {
namespace {

struct ListOptions {
  std::optional<int64_t> limit;
  std::optional<std::string> state;
};

double now() { return static_cast<double>(std::time(nullptr)); }

std::string durationText(const nlohmann::json& job) {
  auto duration = jobDuration(job, now());
  return duration ? formatDuration(*duration) : "-";
}

int listJobs(Context& ctx, const ListOptions& options) {
  nlohmann::json parameters = nlohmann::json::object();
  if (options.limit) parameters["limit"] = *options.limit;
  if (options.state) parameters["state"] = *options.state;
  const nlohmann::json reply = ctx.call("ListJobs", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& jobs = arrayField(reply, "jobs");
  if (jobs.empty()) {
    std::cout << (options.state ? "No " + *options.state + " jobs.\n" : std::string("No jobs.\n"));
    return 0;
  }
  Table table({"id", "state", "created", "duration", "description"});
  table.alignRight(0);
  table.alignRight(3);
  for (const auto& job : jobs)
    table.addRow({std::to_string(intField(job, "id")), jobStateText(job),
                  localTimeField(job, "created"), durationText(job), describeJob(job)});
  std::cout << table.render() << "\n" << countOf(jobs.size(), "job") << " listed.\n";
  return 0;
}

std::vector<std::pair<std::string, std::string>> jobFields(const nlohmann::json& job) {
  std::vector<std::pair<std::string, std::string>> fields{
      {"Job", std::to_string(intField(job, "id")) + " (" + describeJob(job) + ")"},
      {"State", field(job, "state")},
      {"Repository", field(job, "repository")},
  };
  auto addIfSet = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) fields.emplace_back(key, value);
  };
  addIfSet("Volume", field(job, "volume"));
  addIfSet("Snapshot", field(job, "snapshot"));
  addIfSet("Target", field(job, "target"));
  addIfSet("Tags", joinedField(job, "tags"));
  addIfSet("Excludes", joinedField(job, "excludes"));
  addIfSet("Includes", joinedField(job, "includes"));
  const int64_t uid = intField(job, "started_by_uid");
  std::string user = userName(uid);
  fields.emplace_back("Started by", user == std::to_string(uid) ? user : user + " (" + std::to_string(uid) + ")");
  fields.emplace_back("Created", localTimeField(job, "created"));
  fields.emplace_back("Started", localTimeField(job, "started"));
  fields.emplace_back("Finished", localTimeField(job, "finished"));
  fields.emplace_back("Duration", durationText(job));
  const std::string state = field(job, "state");
  if (state == "running") fields.emplace_back("Progress", progressLine(job, 100));

  const auto& summary = objectField(job, "summary");
  if (!summary.empty()) {
    // A backup's job record may already carry its new snapshot as "snapshot".
    if (field(summary, "snapshot_id") != field(job, "snapshot")) addIfSet("New snapshot", field(summary, "snapshot_id"));
    fields.emplace_back("Files", std::to_string(intField(summary, "files_new")) + " new, " +
                                     std::to_string(intField(summary, "files_changed")) + " changed, " +
                                     std::to_string(intField(summary, "files_unmodified")) + " unmodified");
    fields.emplace_back("Directories", std::to_string(intField(summary, "dirs_new")) + " new, " +
                                           std::to_string(intField(summary, "dirs_changed")) + " changed, " +
                                           std::to_string(intField(summary, "dirs_unmodified")) + " unmodified");
    fields.emplace_back("Data added", formatBytes(countField(summary, "data_added")));
    fields.emplace_back("Processed", countOf(countField(summary, "total_files_processed"), "file") + ", " +
                                         formatBytes(countField(summary, "total_bytes_processed")));
  }
  addIfSet("Message", field(job, "message"));
  addIfSet("Could not read", joinedField(job, "warnings", "\n"));
  return fields;
}

int showJob(Context& ctx, int64_t id) {
  const nlohmann::json reply = ctx.call("GetJob", {{"id", id}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << formatFields(jobFields(objectField(reply, "job")));
  return 0;
}

int showJobLog(Context& ctx, int64_t id) {
  const nlohmann::json reply = ctx.call("GetJobLog", {{"id", id}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& lines = arrayField(reply, "lines");
  if (lines.empty() && ctx.stdoutIsTerminal()) std::cerr << "Job " << id << " has no log lines.\n";
  for (const auto& line : lines)
    if (line.is_string()) std::cout << sanitize(line.get<std::string>()) << "\n";
  return 0;
}

int cancelJob(Context& ctx, int64_t id) {
  const nlohmann::json reply = ctx.call("CancelJob", {{"id", id}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& job = objectField(reply, "job");
  const std::string state = field(job, "state");
  const std::string head = "job " + std::to_string(id) + " (" + describeJob(job) + ")";
  if (state == "cancelled")
    std::cout << sanitize("Cancelled " + head + ".") << "\n";
  else if (isFinishedState(state))
    std::cout << sanitize("The " + head + " had already ended: " + state + ".") << "\n";
  else
    std::cout << sanitize("Cancelling " + head + ": restic was asked to stop.") << "\n"
              << "Follow it to the end with: zerobytectl job follow " << id << "\n";
  return 0;
}

// CLI11's own number checks print their range as a 300-digit float.
CLI::Validator atLeast(int64_t minimum) {
  return CLI::Validator(
      [minimum](std::string& value) -> std::string {
        size_t used = 0;
        int64_t number = 0;
        try {
          number = std::stoll(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != value.size() || number < minimum)
          return "expected a whole number of " + std::to_string(minimum) + " or more, got \"" + value + "\"";
        return {};
      },
      "");
}

CLI::App* addIdCommand(CLI::App& parent, Context& ctx, const std::string& name, const std::string& description,
                       std::shared_ptr<int64_t> id) {
  CLI::App* command = addCommand(parent, ctx, name, description);
  command->add_option("ID", *id, "Job id (as in 'job list')")->type_name("")->required()->check(atLeast(0));
  return command;
}

}  // namespace

void addJobCommands(CLI::App& app, Context& ctx) {
  CLI::App* job = addCommand(app, ctx, "job", "List, follow and cancel jobs (backups, restores, maintenance)");
  job->require_subcommand(1);

  auto listOptions = std::make_shared<ListOptions>();
  CLI::App* list = addCommand(*job, ctx, "list", "List jobs, newest first");
  list->add_option("--limit", listOptions->limit, "Show at most N jobs")->type_name("N")->check(atLeast(1));
  list->add_option("--state", listOptions->state, "Only jobs in this state")
      ->type_name("STATE")
      ->check(CLI::IsMember({"queued", "running", "succeeded", "warning", "failed", "cancelled", "interrupted", "skipped"}));
  list->callback([&ctx, listOptions] { ctx.action = [&ctx, listOptions] { return listJobs(ctx, *listOptions); }; });

  auto id = std::make_shared<int64_t>(0);
  addIdCommand(*job, ctx, "show", "Show a job: state, progress, summary, warnings", id)
      ->callback([&ctx, id] { ctx.action = [&ctx, id] { return showJob(ctx, *id); }; });
  addIdCommand(*job, ctx, "follow", "Show a job's progress until it ends; exit status from its outcome", id)
      ->callback([&ctx, id] { ctx.action = [&ctx, id] { return followAndReport(ctx, *id); }; });
  addIdCommand(*job, ctx, "log", "Print restic's messages for a job", id)
      ->callback([&ctx, id] { ctx.action = [&ctx, id] { return showJobLog(ctx, *id); }; });
  addIdCommand(*job, ctx, "cancel", "Cancel a queued or running job", id)
      ->callback([&ctx, id] { ctx.action = [&ctx, id] { return cancelJob(ctx, *id); }; });
}

}  // namespace zerobyte::ctl
