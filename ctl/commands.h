// The command groups of zerobytectl; each adds its subcommands to the application.
#pragma once

#include "ctl/context.h"

#include <CLI/CLI.hpp>

namespace zerobyte::ctl {

void addStatusCommand(CLI::App& app, Context& ctx);
void addVolumeCommands(CLI::App& app, Context& ctx);
void addRepoCommands(CLI::App& app, Context& ctx);
void addBackupCommand(CLI::App& app, Context& ctx);
void addRestoreCommand(CLI::App& app, Context& ctx);
void addJobCommands(CLI::App& app, Context& ctx);
void addSnapshotCommands(CLI::App& app, Context& ctx);
void addConfigCommands(CLI::App& app, Context& ctx);
void addSecretsCommands(CLI::App& app, Context& ctx);
void addAuditCommand(CLI::App& app, Context& ctx);
void addScheduleCommands(CLI::App& app, Context& ctx);

}  // namespace zerobyte::ctl
