// zerobytectl volume: create, list, show and delete volumes (the data to back up).
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/paths.h"
#include "ctl/record_format.h"

#include <iostream>
#include <memory>

namespace zerobyte::ctl {
namespace {

struct VolumeOptions {
  std::string name;
  std::string type = "directory";
  std::string path;
  std::string group;  // shared with this Unix group; "" for the owner alone
};

std::string origin(const nlohmann::json& resource) { return boolField(resource, "declared") ? "config" : "api"; }

int createVolume(Context& ctx, const VolumeOptions& options) {
  nlohmann::json parameters = {{"name", options.name}, {"type", options.type}, {"path", absolutePath(options.path)}};
  if (!options.group.empty()) parameters["group"] = options.group;
  const nlohmann::json reply = ctx.call("CreateVolume", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& volume = objectField(reply, "volume");
  std::cout << sanitize("Created volume " + field(volume, "name", options.name) + " (" + field(volume, "type") + " " +
                        field(volume, "path") + ").")
            << "\n";
  return 0;
}

int listVolumes(Context& ctx) {
  const nlohmann::json reply = ctx.call("ListVolumes");
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& volumes = arrayField(reply, "volumes");
  if (volumes.empty()) {
    std::cout << "No volumes. Create one with: zerobytectl volume create NAME --path DIR\n";
    return 0;
  }
  Table table({"name", "type", "path", "origin", "owner", "created"});
  for (const auto& volume : volumes)
    table.addRow({field(volume, "name"), field(volume, "type"), field(volume, "path"), origin(volume),
                  userName(intField(volume, "owner_uid")), localTimeField(volume, "created")});
  std::cout << table.render() << "\n" << countOf(volumes.size(), "volume") << " listed.\n";
  return 0;
}

int showVolume(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("GetVolume", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& volume = objectField(reply, "volume");
  std::cout << formatFields({
      {"Name", field(volume, "name")},
      {"ID", field(volume, "id")},
      {"Type", field(volume, "type")},
      {"Path", field(volume, "path")},
      {"Origin", boolField(volume, "declared") ? "configuration file (read-only here)" : "created through the API"},
      {"Owner", ownerText(volume)},
      {"Shared", sharingText(volume)},
      {"restic runs as", runsAsText(volume)},
      {"Created", localTimeField(volume, "created")},
  });
  return 0;
}

int deleteVolume(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("DeleteVolume", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << sanitize("Deleted volume " + name + "; the data in it and its snapshots are not touched.") << "\n";
  return 0;
}

}  // namespace

void addVolumeCommands(CLI::App& app, Context& ctx) {
  CLI::App* volume = addCommand(app, ctx, "volume", "Manage volumes: the data to back up");
  volume->require_subcommand(1);

  auto create = std::make_shared<VolumeOptions>();
  CLI::App* createCommand = addCommand(*volume, ctx, "create", "Declare a directory on this machine as a volume");
  createCommand->add_option("NAME", create->name, "Volume name ([a-z0-9][a-z0-9_-]*)")->type_name("")->required();
  createCommand->add_option("--type", create->type, "Volume type (directory)")->type_name("TYPE")->capture_default_str();
  createCommand->add_option("--path", create->path, "Directory to back up (a relative path is resolved here)")
      ->type_name("DIR")
      ->required();
  createCommand
      ->add_option("--group", create->group,
                   "Share the volume with this Unix group (one you are in): its members may use and manage it")
      ->type_name("GROUP");
  createCommand->callback([&ctx, create] { ctx.action = [&ctx, create] { return createVolume(ctx, *create); }; });

  CLI::App* list = addCommand(*volume, ctx, "list", "List volumes");
  list->callback([&ctx] { ctx.action = [&ctx] { return listVolumes(ctx); }; });

  auto name = std::make_shared<std::string>();
  CLI::App* show = addCommand(*volume, ctx, "show", "Show one volume");
  show->add_option("NAME", *name, "Volume name")->type_name("")->required();
  show->callback([&ctx, name] { ctx.action = [&ctx, name] { return showVolume(ctx, *name); }; });

  CLI::App* remove = addCommand(*volume, ctx, "delete", "Delete a volume (its data and snapshots are not touched)");
  remove->add_option("NAME", *name, "Volume name")->type_name("")->required();
  remove->callback([&ctx, name] { ctx.action = [&ctx, name] { return deleteVolume(ctx, *name); }; });
}

}  // namespace zerobyte::ctl
