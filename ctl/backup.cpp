// zerobytectl backup: start a backup of a volume into a repository.
#include "ctl/commands.h"
#include "ctl/progress.h"

#include <memory>
#include <vector>

namespace zerobyte::ctl {
namespace {

struct BackupOptions {
  std::string volume;
  std::string repository;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  bool follow = false;
};

int startBackup(Context& ctx, const BackupOptions& options) {
  nlohmann::json parameters = {{"volume", options.volume}, {"repository", options.repository}};
  if (!options.tags.empty()) parameters["tags"] = options.tags;
  if (!options.excludes.empty()) parameters["excludes"] = options.excludes;
  return reportStartedJob(ctx, ctx.call("StartBackup", parameters), options.follow);
}

}  // namespace

void addBackupCommand(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<BackupOptions>();
  CLI::App* backup = addCommand(app, ctx, "backup", "Back up a volume into a repository (starts a job)");
  backup->add_option("VOLUME", options->volume, "Volume to back up")->type_name("")->required();
  backup->add_option("--repo", options->repository, "Repository to back up into")->type_name("REPO")->required();
  // One value per occurrence, so that "--tag daily home" does not take "home" as a tag.
  backup->add_option("--tag", options->tags, "Tag the snapshot (repeatable)")
      ->type_name("TAG")
      ->allow_extra_args(false);
  backup->add_option("--exclude", options->excludes, "Exclude a restic pattern (repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false);
  backup->add_flag("--follow,-f", options->follow, "Show progress until the job ends; exit status from its outcome");
  backup->footer(
      "Examples:\n"
      "  zerobytectl backup home --repo main --follow\n"
      "  zerobytectl backup home --repo main --tag daily --exclude '*.tmp' --exclude /home/alice/.cache");
  backup->callback([&ctx, options] { ctx.action = [&ctx, options] { return startBackup(ctx, *options); }; });
}

}  // namespace zerobyte::ctl
