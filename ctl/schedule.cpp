// zerobytectl schedule: create, edit, list, show, delete, enable, disable and run backup schedules; their next fire
// times and a dry run of their retention policy.
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/progress.h"
#include "ctl/record_format.h"

#include <iostream>
#include <map>
#include <memory>
#include <vector>

namespace zerobyte::ctl {
namespace {

// The options of create and edit. Only options given on the command line are sent, so that edit changes
// just those (CLI::Option::count()).
struct ScheduleOptions {
  std::string name, volume, repository, cron, timezone, compression, keepWithin, readDataSubset;
  bool check = false, prune = false;
  int64_t jitter = 0, retries = 0, retryDelay = 0;
  std::vector<std::string> includes, excludes, markers, tags, keepTags;
  bool oneFileSystem = false, noOneFileSystem = false, disabled = false;
  std::map<std::string, int64_t> keep;  // keep_last … keep_yearly
  std::vector<std::pair<std::string, CLI::Option*>> given;  // parameter name → its option
};

const char* const kKeepRules[] = {"last", "hourly", "daily", "weekly", "monthly", "yearly"};

template <typename T>
void addParameter(CLI::App* command, ScheduleOptions& o, const std::string& parameter, const std::string& flag, T& target,
                  const std::string& help, const std::string& typeName) {
  CLI::Option* option = command->add_option(flag, target, help)->type_name(typeName);
  if constexpr (std::is_same_v<T, std::vector<std::string>>) option->allow_extra_args(false);
  o.given.emplace_back(parameter, option);
}

void addScheduleOptions(CLI::App* command, ScheduleOptions& o, bool create) {
  addParameter(command, o, "cron", "--cron", o.cron,
               "When to run: 5 cron fields (minute hour day month weekday) or @hourly, @daily, @weekly, @monthly, @yearly",
               "EXPR");
  if (create) command->get_option("--cron")->required();
  addParameter(command, o, "timezone", "--timezone", o.timezone, "IANA time zone of the cron times (default: the system's)", "ZONE");
  addParameter(command, o, "jitter_seconds", "--jitter", o.jitter, "Start each run up to this many seconds late (random)", "SECONDS");
  addParameter(command, o, "includes", "--include", o.includes, "Back up only this path inside the volume (repeatable)", "PATH");
  addParameter(command, o, "excludes", "--exclude", o.excludes, "Exclude a restic pattern (repeatable)", "PATTERN");
  addParameter(command, o, "exclude_if_present", "--exclude-if-present", o.markers,
               "Skip directories that contain a file of this name (repeatable)", "FILE");
  addParameter(command, o, "tags", "--tag", o.tags, "Tag the snapshots (repeatable)", "TAG");
  addParameter(command, o, "read_data_subset", "--read-data-subset", o.readDataSubset,
               "Check schedules: also read this part of the data (n/t, a percentage or a size)", "SUBSET");
  addParameter(command, o, "compression", "--compression", o.compression, "auto, off or max (default: the repository's)", "MODE");
  addParameter(command, o, "retries", "--retries", o.retries, "Try a failed run again this many times", "N");
  addParameter(command, o, "retry_delay_seconds", "--retry-delay", o.retryDelay, "Seconds between tries (default 300)", "SECONDS");
  for (const char* rule : kKeepRules)
    addParameter(command, o, std::string("keep_") + rule, std::string("--keep-") + rule, o.keep[std::string("keep_") + rule],
                 std::string("Retention: keep the ") + (std::string(rule) == "last" ? "last N snapshots" : std::string("last N ") + rule + " snapshots") +
                     (create ? "" : " (0 removes the rule)"),
                 "N");
  addParameter(command, o, "keep_within", "--keep-within", o.keepWithin,
               "Retention: keep every snapshot within this long of the newest (e.g. 30d, 1y6m)", "DURATION");
  addParameter(command, o, "keep_tags", "--keep-tag", o.keepTags, "Retention: keep every snapshot with this tag (repeatable)", "TAG");
  o.given.emplace_back("one_file_system", command->add_flag("--one-file-system", o.oneFileSystem, "Do not cross file system boundaries"));
  if (!create)
    o.given.emplace_back("!one_file_system",
                         command->add_flag("--no-one-file-system", o.noOneFileSystem, "Cross file system boundaries again"));
  if (create) command->add_flag("--disabled", o.disabled, "Create it disabled (enable it with 'schedule enable')");
}

nlohmann::json scheduleParameters(const ScheduleOptions& o) {
  nlohmann::json p = {{"name", o.name}};
  for (const auto& [parameter, option] : o.given) {
    if (option->count() == 0) continue;
    if (parameter == "cron") p[parameter] = o.cron;
    else if (parameter == "timezone") p[parameter] = o.timezone;
    else if (parameter == "jitter_seconds") p[parameter] = o.jitter;
    else if (parameter == "includes") p[parameter] = o.includes;
    else if (parameter == "excludes") p[parameter] = o.excludes;
    else if (parameter == "exclude_if_present") p[parameter] = o.markers;
    else if (parameter == "tags") p[parameter] = o.tags;
    else if (parameter == "compression") p[parameter] = o.compression;
    else if (parameter == "read_data_subset") p[parameter] = o.readDataSubset;
    else if (parameter == "retries") p[parameter] = o.retries;
    else if (parameter == "retry_delay_seconds") p[parameter] = o.retryDelay;
    else if (parameter == "keep_within") p[parameter] = o.keepWithin;
    else if (parameter == "keep_tags") p[parameter] = o.keepTags;
    else if (parameter == "one_file_system") p[parameter] = true;
    else if (parameter == "!one_file_system") p["one_file_system"] = false;
    else p[parameter] = o.keep.at(parameter);
  }
  return p;
}

// "volume home into repository main", "check of repository main (data subset 1/5)", "prune of repository main".
std::string whatText(const nlohmann::json& s) {
  const std::string kind = field(s, "kind", "backup");
  if (kind == "backup") {
    std::string includes = joinedField(s, "includes");
    return "volume " + field(s, "volume") + (includes.empty() ? "" : " (" + includes + ")") + " into repository " + field(s, "repository");
  }
  std::string subset = field(s, "read_data_subset");
  return kind + " of repository " + field(s, "repository") + (subset.empty() ? "" : " (data subset " + subset + ")");
}

std::string stateText(const nlohmann::json& s) { return boolField(s, "enabled") ? "enabled" : "disabled"; }

std::string lastRunText(const nlohmann::json& s, const char* time, const char* job) {
  if (field(s, time).empty()) return "never";
  return localTimeField(s, time) + " (job " + std::to_string(intField(s, job)) + ")";
}

void printSchedule(const nlohmann::json& s) {
  std::cout << formatFields({
      {"Name", field(s, "name")},
      {"State", stateText(s)},
      {"Runs", whatText(s)},
      {"When", field(s, "cron") + " in " + field(s, "timezone") +
                   (intField(s, "jitter_seconds") ? ", up to " + std::to_string(intField(s, "jitter_seconds")) + " s late" : "")},
      {"Next run", boolField(s, "enabled") ? localTimeField(s, "next_run") : "- (disabled)"},
      {"Running", s.contains("running_job") && s["running_job"].is_number() ? "job " + std::to_string(intField(s, "running_job")) : "no"},
      {"Last success", lastRunText(s, "last_success", "last_success_job")},
      {"Last failure", lastRunText(s, "last_failure", "last_failure_job")},
      {"Failure", field(s, "last_failure_message", "-")},
      {"Retention", field(s, "retention_text")},
      {"Excludes", joinedField(s, "excludes").empty() ? "-" : joinedField(s, "excludes")},
      {"Exclude if present", joinedField(s, "exclude_if_present").empty() ? "-" : joinedField(s, "exclude_if_present")},
      {"One file system", boolField(s, "one_file_system") ? "yes" : "no"},
      {"Tags", field(s, "snapshot_tag") + (joinedField(s, "tags").empty() ? "" : ", " + joinedField(s, "tags"))},
      {"Compression", field(s, "compression", "repository default")},
      {"Retries", std::to_string(intField(s, "retries")) + " (every " + std::to_string(intField(s, "retry_delay_seconds")) + " s)"},
      {"Owner", ownerText(s)},
      {"Shared", sharingText(s)},
      {"Created", localTimeField(s, "created")},
  });
}

int createSchedule(Context& ctx, const ScheduleOptions& o) {
  nlohmann::json p = scheduleParameters(o);
  if (o.check && o.prune) throw Error(ErrorCode::InvalidParameter, "give --check or --prune, not both: each schedule runs one thing");
  if (o.check || o.prune) {
    if (!o.volume.empty())
      throw Error(ErrorCode::InvalidParameter, std::string("a ") + (o.check ? "check" : "prune") +
                                                   " schedule is about the repository alone; give no --volume");
    p["kind"] = o.check ? "check" : "prune";
  } else {
    if (o.volume.empty())
      throw Error(ErrorCode::InvalidParameter, "a backup schedule needs --volume (or give --check or --prune for maintenance)");
    p["volume"] = o.volume;
  }
  p["repository"] = o.repository;
  if (o.disabled) p["enabled"] = false;
  const nlohmann::json reply = ctx.call("CreateSchedule", p);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& s = objectField(reply, "schedule");
  std::cout << sanitize("Created schedule " + field(s, "name") + ": " + whatText(s) + " at " + field(s, "cron") + " (" +
                        field(s, "timezone") + ").")
            << "\n";
  if (boolField(s, "enabled")) std::cout << sanitize("Next run: " + localTimeField(s, "next_run") + ".") << "\n";
  return 0;
}

int editSchedule(Context& ctx, const ScheduleOptions& o) {
  nlohmann::json p = scheduleParameters(o);
  if (p.size() == 1)
    throw Error(ErrorCode::InvalidParameter, "nothing to change: give at least one option, e.g. --cron or --keep-daily (see --help)");
  const nlohmann::json reply = ctx.call("EditSchedule", p);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << sanitize("Changed schedule " + o.name + ".") << "\n";
  printSchedule(objectField(reply, "schedule"));
  return 0;
}

int listSchedules(Context& ctx) {
  const nlohmann::json reply = ctx.call("ListSchedules");
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& schedules = arrayField(reply, "schedules");
  if (schedules.empty()) {
    std::cout << "No schedules. Create one with: zerobytectl schedule create NAME --volume VOLUME --repo REPO --cron '0 3 * * *'\n";
    return 0;
  }
  Table table({"name", "kind", "volume", "repository", "when", "state", "next run", "last success", "last failure"});
  for (const auto& s : schedules)
    table.addRow({field(s, "name"), field(s, "kind", "backup"), field(s, "volume", "-"), field(s, "repository"),
                  field(s, "cron") + " " + field(s, "timezone"),
                  stateText(s), boolField(s, "enabled") ? localTimeField(s, "next_run") : "-", localTimeField(s, "last_success"),
                  localTimeField(s, "last_failure")});
  std::cout << table.render() << "\n" << countOf(schedules.size(), "schedule") << " listed.\n";
  return 0;
}

int showSchedule(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("GetSchedule", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  printSchedule(objectField(reply, "schedule"));
  const auto& history = arrayField(reply, "history");
  if (history.empty()) {
    std::cout << "\nNo runs yet.\n";
    return 0;
  }
  std::cout << "\nRecent runs:\n";
  Table table({"job", "operation", "state", "trigger", "created", "message"});
  for (const auto& j : history)
    table.addRow({std::to_string(intField(j, "id")), field(j, "operation"), jobStateText(j), field(j, "trigger", "-"),
                  localTimeField(j, "created"), field(j, "message")});
  std::cout << table.render() << "\n";
  return 0;
}

int simpleCall(Context& ctx, const char* method, const std::string& name, const std::string& text) {
  const nlohmann::json reply = ctx.call(method, {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << sanitize(text) << "\n";
  const auto& s = objectField(reply, "schedule");
  if (boolField(s, "enabled") && !field(s, "next_run").empty())
    std::cout << sanitize("Next run: " + localTimeField(s, "next_run") + ".") << "\n";
  return 0;
}

int nextRuns(Context& ctx, const std::string& name, int64_t count) {
  nlohmann::json p = {{"name", name}};
  if (count > 0) p["count"] = count;
  const nlohmann::json reply = ctx.call("GetScheduleFireTimes", p);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  if (!boolField(reply, "enabled", true))
    std::cout << sanitize("Schedule " + name + " is disabled; these are the times it would run at once enabled:") << "\n";
  for (const auto& t : arrayField(reply, "fire_times")) std::cout << sanitize(field(t, "local")) << "\n";
  return 0;
}

int previewRetention(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("PreviewRetention", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& keep = arrayField(reply, "keep");
  const auto& remove = arrayField(reply, "remove");
  std::cout << sanitize("Schedule " + name + " (" + field(reply, "policy") + ") in repository " + field(reply, "repository") +
                        ", snapshots tagged " + field(reply, "snapshot_tag") + " from host " + field(reply, "host") + ":")
            << "\n";
  Table table({"snapshot", "time", "verdict"});
  for (const auto& s : keep) table.addRow({field(s, "short_id"), field(s, "time", "-"), "keep"});
  for (const auto& s : remove) table.addRow({field(s, "short_id"), field(s, "time", "-"), "forget"});
  if (!keep.empty() || !remove.empty()) std::cout << table.render() << "\n";
  std::cout << keep.size() << " kept, " << remove.size() << " would be forgotten. Nothing was changed.\n";
  return 0;
}

}  // namespace

void addScheduleCommands(CLI::App& app, Context& ctx) {
  CLI::App* schedule = addCommand(app, ctx, "schedule", "Manage backup schedules: when a volume is backed up and what is kept");
  schedule->require_subcommand(1);

  auto create = std::make_shared<ScheduleOptions>();
  CLI::App* createCommand = addCommand(*schedule, ctx, "create", "Back up a volume into a repository at cron times");
  createCommand->add_option("NAME", create->name, "Schedule name ([a-z0-9][a-z0-9_-]*)")->type_name("")->required();
  createCommand->add_option("--volume", create->volume, "Volume to back up")->type_name("VOLUME");
  createCommand->add_option("--repo", create->repository, "Repository to back up into (or to check or prune)")->type_name("REPO")->required();
  createCommand->add_flag("--check", create->check, "A maintenance schedule: restic check of the repository (no volume)");
  createCommand->add_flag("--prune", create->prune, "A maintenance schedule: restic prune of the repository (no volume)");
  addScheduleOptions(createCommand, *create, true);
  createCommand->footer(
      "Examples:\n"
      "  zerobytectl schedule create nightly --volume home --repo main --cron '30 2 * * *' --keep-daily 7 --keep-weekly 4\n"
      "  zerobytectl schedule create hourly --volume www --repo main --cron @hourly --timezone Europe/Berlin --keep-last 24\n"
      "  zerobytectl schedule create weekly-check --check --repo main --cron '0 4 * * SUN' --read-data-subset 10%\n"
      "  zerobytectl schedule create monthly-prune --prune --repo main --cron '0 5 1 * *'");
  createCommand->callback([&ctx, create] { ctx.action = [&ctx, create] { return createSchedule(ctx, *create); }; });

  auto edit = std::make_shared<ScheduleOptions>();
  CLI::App* editCommand = addCommand(*schedule, ctx, "edit", "Change a schedule (only the options given)");
  editCommand->add_option("NAME", edit->name, "Schedule name")->type_name("")->required();
  addScheduleOptions(editCommand, *edit, false);
  editCommand->callback([&ctx, edit] { ctx.action = [&ctx, edit] { return editSchedule(ctx, *edit); }; });

  CLI::App* list = addCommand(*schedule, ctx, "list", "List schedules with their next and last runs");
  list->callback([&ctx] { ctx.action = [&ctx] { return listSchedules(ctx); }; });

  auto name = std::make_shared<std::string>();
  auto addNamed = [&](const std::string& verb, const std::string& help, std::function<int(Context&, const std::string&)> run) {
    CLI::App* command = addCommand(*schedule, ctx, verb, help);
    command->add_option("NAME", *name, "Schedule name")->type_name("")->required();
    command->callback([&ctx, name, run] { ctx.action = [&ctx, name, run] { return run(ctx, *name); }; });
    return command;
  };
  addNamed("show", "Show a schedule, its last success and failure, next run and recent runs", showSchedule);
  addNamed("delete", "Delete a schedule (its snapshots are kept)", [](Context& c, const std::string& n) {
    return simpleCall(c, "DeleteSchedule", n, "Deleted schedule " + n + "; its snapshots are kept.");
  });
  addNamed("enable", "Enable a schedule (fire times while it was disabled are not caught up)", [](Context& c, const std::string& n) {
    return simpleCall(c, "EnableSchedule", n, "Enabled schedule " + n + ".");
  });
  addNamed("disable", "Disable a schedule (a running backup goes on)", [](Context& c, const std::string& n) {
    return simpleCall(c, "DisableSchedule", n, "Disabled schedule " + n + ".");
  });
  auto follow = std::make_shared<bool>(false);
  CLI::App* run = addNamed("run", "Run a schedule's backup now (and its retention after it)", [follow](Context& c, const std::string& n) {
    return reportStartedJob(c, c.call("RunSchedule", {{"name", n}}), *follow);
  });
  run->add_flag("--follow,-f", *follow, "Show progress until the backup ends; exit status from its outcome");
  auto count = std::make_shared<int64_t>(0);
  CLI::App* next = addNamed("next", "Print the next fire times (in the schedule's time zone)",
                            [count](Context& c, const std::string& n) { return nextRuns(c, n, *count); });
  next->add_option("--count,-n", *count, "How many (default 5, at most 1000)")->type_name("N");
  addNamed("retention-preview", "Show which snapshots the retention policy would keep and forget (changes nothing)",
           previewRetention);
}

}  // namespace zerobyte::ctl
