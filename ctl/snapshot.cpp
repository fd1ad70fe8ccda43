// zerobytectl snapshot: list snapshots, list the files in one, forget one.
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/progress.h"
#include "ctl/record_format.h"

#include <iostream>
#include <memory>

namespace zerobyte::ctl {
namespace {

struct SnapshotOptions {
  std::string repository;
  std::string snapshot;
  std::string path;
  bool refresh = false;
};

int listSnapshots(Context& ctx, const SnapshotOptions& options) {
  nlohmann::json parameters = {{"repository", options.repository}};
  if (options.refresh) parameters["refresh"] = true;
  const nlohmann::json reply = ctx.call("ListSnapshots", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& snapshots = arrayField(reply, "snapshots");
  const std::string source =
      boolField(reply, "cached") ? " (from zerobyted's cache; --refresh reads the repository)" : "";
  if (snapshots.empty()) {
    std::cout << "No snapshots in " << sanitize(options.repository) << source << ".\n";
    return 0;
  }
  Table table({"id", "time", "host", "paths", "tags"});
  for (const auto& snapshot : snapshots)
    table.addRow({field(snapshot, "short_id", shortSnapshotId(field(snapshot, "id"))),
                  localTimeField(snapshot, "time"), field(snapshot, "hostname"),
                  joinedField(snapshot, "paths"), joinedField(snapshot, "tags")});
  std::cout << table.render() << "\n" << countOf(snapshots.size(), "snapshot") << " listed" << source << ".\n";
  return 0;
}

int listFiles(Context& ctx, const SnapshotOptions& options) {
  nlohmann::json parameters = {{"repository", options.repository}, {"snapshot", options.snapshot}};
  if (!options.path.empty()) parameters["path"] = options.path;
  const bool legend = !ctx.json && ctx.stdoutIsTerminal();
  bool first = true;
  ctx.callMore("ListFiles", parameters, [&](const nlohmann::json& reply) {
    if (ctx.json) {
      ctx.printJsonLine(reply);
      return true;
    }
    if (first && legend) {
      const auto& snapshot = objectField(reply, "snapshot");
      std::cout << sanitize("Snapshot " + field(snapshot, "short_id", shortSnapshotId(field(snapshot, "id"))) +
                            " of " + joinedField(snapshot, "paths") + " on " + field(snapshot, "hostname") + ", " +
                            localTimeField(snapshot, "time") + ":")
                << "\n";
    }
    first = false;
    for (const auto& node : arrayField(reply, "nodes")) std::cout << nodeLine(node) << "\n";
    std::cout << std::flush;
    return true;
  });
  return 0;
}

int forgetSnapshot(Context& ctx, const SnapshotOptions& options) {
  const nlohmann::json started =
      ctx.call("ForgetSnapshot", {{"repository", options.repository}, {"snapshot", options.snapshot}});
  return awaitJob(ctx, started, [&options](const nlohmann::json& job) {
    return "Forgot snapshot " + shortSnapshotId(options.snapshot) + " in " + options.repository + " (job " +
           std::to_string(intField(job, "id")) + "). Its data is freed by the next prune.";
  });
}

}  // namespace

void addSnapshotCommands(CLI::App& app, Context& ctx) {
  CLI::App* snapshot = addCommand(app, ctx, "snapshot", "List, browse and forget the snapshots of a repository");
  snapshot->require_subcommand(1);

  auto options = std::make_shared<SnapshotOptions>();
  CLI::App* list = addCommand(*snapshot, ctx, "list", "List the snapshots of a repository, oldest first");
  list->add_option("REPO", options->repository, "Repository name")->type_name("")->required();
  list->add_flag("--refresh", options->refresh, "Read the repository instead of zerobyted's cache");
  list->callback([&ctx, options] { ctx.action = [&ctx, options] { return listSnapshots(ctx, *options); }; });

  CLI::App* ls = addCommand(*snapshot, ctx, "ls", "List a directory of a snapshot, like ls -l");
  ls->add_option("REPO", options->repository, "Repository name")->type_name("")->required();
  ls->add_option("SNAPSHOT", options->snapshot, "Snapshot id or 'latest'")->type_name("")->required();
  ls->add_option("PATH", options->path, "Directory inside the snapshot (default: /)")->type_name("");
  ls->callback([&ctx, options] { ctx.action = [&ctx, options] { return listFiles(ctx, *options); }; });

  CLI::App* forget = addCommand(*snapshot, ctx, "forget", "Forget one snapshot (its data is freed by a later prune)");
  forget->add_option("REPO", options->repository, "Repository name")->type_name("")->required();
  forget->add_option("SNAPSHOT", options->snapshot, "Snapshot id")->type_name("")->required();
  forget->callback([&ctx, options] { ctx.action = [&ctx, options] { return forgetSnapshot(ctx, *options); }; });
}

}  // namespace zerobyte::ctl
