// zerobytectl: the command-line client of zerobyted.
#include "common/errors.h"
#include "common/version.h"
#include "ctl/commands.h"
#include "ctl/context.h"
#include "ctl/output.h"

#include <iostream>
#include <string_view>

namespace {

constexpr const char* kFooter = R"(Examples:
  zerobytectl volume create home --path /home
  zerobytectl repo create main --path /srv/backup/main
  zerobytectl backup home --repo main --follow
  zerobytectl snapshot list main
  zerobytectl restore main latest --target /srv/restored --include /home/alice

Authentication:
  zerobyted asks polkit whether you may do what you ask. With stdin on a terminal,
  zerobytectl runs pkttyagent for itself so that polkit can ask for your password
  there; --no-ask-password turns that off (a request that needs a password then
  fails with NotAuthorized).

Exit status:
  0  success
  1  the operation or the job failed
  2  invalid argument or usage (also an invalid configuration file)
  3  the job ended with warnings (some files could not be read)
  4  not found
  5  not authorized
  6  busy, conflict, already exists or read-only
  7  zerobyted cannot be reached
  8  the job was cancelled, interrupted or skipped, or following it was stopped (Ctrl-C)
  9  repository or secret problem (no repository, wrong password, secret unavailable)

Errors are printed on stderr as "<ErrorName>: <message>".)";

}  // namespace

int main(int argc, char** argv) {
  namespace ctl = zerobyte::ctl;
  ctl::Context ctx;
  CLI::App app{"Control zerobyted, the backup daemon: volumes, repositories, backups, jobs, snapshots, restores.",
               "zerobytectl"};
  app.set_version_flag("--version", zerobyte::kVersion);
  app.require_subcommand(1);
  ctl::addCommonOptions(app, ctx);
  ctl::addStatusCommand(app, ctx);
  ctl::addVolumeCommands(app, ctx);
  ctl::addRepoCommands(app, ctx);
  ctl::addBackupCommand(app, ctx);
  ctl::addScheduleCommands(app, ctx);
  ctl::addRestoreCommand(app, ctx);
  ctl::addJobCommands(app, ctx);
  ctl::addSnapshotCommands(app, ctx);
  ctl::addConfigCommands(app, ctx);
  ctl::addSecretsCommands(app, ctx);
  ctl::addAuditCommand(app, ctx);
  app.footer(kFooter);  // after the subcommands, which would otherwise inherit it

  try {
    app.parse(argc, argv);
  } catch (const CLI::RequiredError& e) {
    // "zerobytectl volume" alone: list what the group can do rather than just say it needs more.
    if (std::string_view(e.what()).find("subcommand") == std::string_view::npos) return app.exit(e) == 0 ? 0 : 2;
    CLI::App* chosen = &app;
    std::string parents;
    for (; !chosen->get_subcommands().empty(); chosen = chosen->get_subcommands().front())
      parents += (parents.empty() ? "" : " ") + chosen->get_name();
    std::cerr << chosen->help(parents);
    return 2;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    return ctx.action ? ctx.action() : 2;
  } catch (const zerobyte::Error& e) {
    std::cerr << zerobyte::errorName(e.code()) << ": " << ctl::sanitize(e.what()) << std::endl;
    return zerobyte::errorInfo(e.code()).exitCode;
  } catch (const std::exception& e) {
    std::cerr << zerobyte::errorName(zerobyte::ErrorCode::Failed) << ": " << ctl::sanitize(e.what()) << std::endl;
    return zerobyte::errorInfo(zerobyte::ErrorCode::Failed).exitCode;
  }
}
