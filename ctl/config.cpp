// zerobytectl config check: validate a configuration file locally, without the daemon.
#include "common/errors.h"
#include "ctl/commands.h"
#include "ctl/output.h"
#include "daemon/config/config.h"

#include <iostream>
#include <memory>

namespace zerobyte::ctl {
namespace {

int checkConfig(Context& ctx, const std::string& file) {
  try {
    const config::Config loaded = config::loadFile(file);
    if (ctx.json) {
      ctx.printJson({{"file", file},
                     {"valid", true},
                     {"volumes", loaded.volumes.size()},
                     {"repositories", loaded.repositories.size()},
                     {"schedules", loaded.schedules.size()},
                     {"diagnostics", nlohmann::json::array()}});
    } else {
      std::cout << sanitize(file + ": OK (" + countOf(loaded.volumes.size(), "volume") + ", " +
                            countOf(loaded.repositories.size(), "repository", "repositories") + ", " +
                            countOf(loaded.schedules.size(), "schedule") + ")")
                << "\n";
    }
    return 0;
  } catch (const config::ConfigError& error) {
    nlohmann::json diagnostics = nlohmann::json::array();
    for (const auto& diagnostic : error.diagnostics()) {
      std::cerr << sanitize(diagnostic.str()) << "\n";
      diagnostics.push_back({{"file", diagnostic.file},
                             {"line", diagnostic.line},
                             {"column", diagnostic.column},
                             {"message", diagnostic.message}});
    }
    if (ctx.json) ctx.printJson({{"file", file}, {"valid", false}, {"diagnostics", diagnostics}});
    const size_t count = error.diagnostics().size();
    std::cerr << errorName(ErrorCode::ConfigInvalid) << ": "
              << sanitize(count > 0 ? file + " is not valid (" + countOf(count, "problem") + ")"
                                    : file + " is not valid: " + error.what())
              << "\n";
    return errorInfo(ErrorCode::ConfigInvalid).exitCode;
  }
}

}  // namespace

void addConfigCommands(CLI::App& app, Context& ctx) {
  CLI::App* configCommand = addCommand(app, ctx, "config", "Work with zerobyted's configuration file");
  configCommand->require_subcommand(1);

  auto file = std::make_shared<std::string>();
  CLI::App* check = addCommand(*configCommand, ctx, "check", "Validate a configuration file (locally; no daemon needed)");
  check->add_option("FILE", *file, "The YAML file, e.g. /etc/zerobyte/zerobyte.yaml")->type_name("")->required();
  check->callback([&ctx, file] { ctx.action = [&ctx, file] { return checkConfig(ctx, *file); }; });
}

}  // namespace zerobyte::ctl
