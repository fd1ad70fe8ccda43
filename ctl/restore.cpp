// zerobytectl restore: start restoring a snapshot into a directory.
#include "ctl/commands.h"
#include "ctl/paths.h"
#include "ctl/progress.h"

#include <memory>
#include <vector>

namespace zerobyte::ctl {
namespace {

struct RestoreOptions {
  std::string repository;
  std::string snapshot;
  std::string target;
  std::vector<std::string> includes;
  bool follow = false;
};

int startRestore(Context& ctx, const RestoreOptions& options) {
  nlohmann::json parameters = {
      {"repository", options.repository}, {"snapshot", options.snapshot}, {"target", absolutePath(options.target)}};
  if (!options.includes.empty()) parameters["includes"] = options.includes;
  return reportStartedJob(ctx, ctx.call("StartRestore", parameters), options.follow);
}

}  // namespace

void addRestoreCommand(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<RestoreOptions>();
  CLI::App* restore = addCommand(app, ctx, "restore", "Restore a snapshot into a directory (starts a job)");
  restore->add_option("REPO", options->repository, "Repository holding the snapshot")->type_name("")->required();
  restore->add_option("SNAPSHOT", options->snapshot, "Snapshot id (as in 'snapshot list') or 'latest'")
      ->type_name("")
      ->required();
  restore->add_option("--target", options->target, "Directory to restore into (created when missing)")
      ->type_name("DIR")
      ->required();
  restore->add_option("--include", options->includes, "Restore only this path of the snapshot (repeatable)")
      ->type_name("PATH")
      ->allow_extra_args(false);
  restore->add_flag("--follow,-f", options->follow, "Show progress until the job ends; exit status from its outcome");
  restore->footer(
      "Examples:\n"
      "  zerobytectl restore main latest --target /srv/restored --follow\n"
      "  zerobytectl restore main 5c62b13c --target ./out --include /home/alice/Documents");
  restore->callback([&ctx, options] { ctx.action = [&ctx, options] { return startRestore(ctx, *options); }; });
}

}  // namespace zerobyte::ctl
