// zerobytectl audit: the daemon's audit trail (changes and denials), newest first.
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/record_format.h"
#include "ctl/time_argument.h"

#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

namespace zerobyte::ctl {
namespace {

constexpr int64_t kMaxLimit = 10000;
constexpr std::string_view kActionPrefix = "org.zerobyte.daemon1.";

struct AuditOptions {
  std::optional<std::string> since;
  std::optional<std::string> user;
  std::optional<std::string> action;
  std::optional<int64_t> limit;
};

// "manage" for "org.zerobyte.daemon1.manage": the table is narrow enough without the prefix.
std::string shortAction(const std::string& id) {
  return id.starts_with(kActionPrefix) ? id.substr(kActionPrefix.size()) : id;
}

std::string callerText(const nlohmann::json& entry) {
  const int64_t uid = intField(entry, "caller_uid", -1);
  return userName(uid);
}

int listAudit(Context& ctx, const AuditOptions& options) {
  nlohmann::json parameters = nlohmann::json::object();
  if (options.since) {
    // Checked when parsing; "2h" is relative to now, when the command runs.
    auto since = parseTimeArgument(*options.since, std::time(nullptr));
    if (since) parameters["since"] = static_cast<int64_t>(*since < 0 ? 0 : *since);
  }
  if (options.user) parameters["user"] = *options.user;
  if (options.action) parameters["action"] = *options.action;
  if (options.limit) parameters["limit"] = *options.limit;
  const nlohmann::json reply = ctx.call("ListAudit", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& entries = arrayField(reply, "entries");
  if (entries.empty()) {
    std::cout << "No audit entries" << (parameters.empty() ? "" : " match") << ".\n";
    return 0;
  }
  Table table({"time", "user", "pid", "action", "method", "resource", "result"});
  table.alignRight(2);
  for (const auto& entry : entries)
    table.addRow({localTimeField(entry, "time"), callerText(entry), std::to_string(intField(entry, "caller_pid")),
                  shortAction(field(entry, "action")), field(entry, "method"), field(entry, "resource", "-"),
                  field(entry, "result")});
  std::cout << table.render() << "\n" << countOf(entries.size(), "entry", "entries") << " listed.\n";
  return 0;
}

CLI::Validator timeArgument() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (parseTimeArgument(value, std::time(nullptr))) return {};
        return "expected " + std::string(kTimeArgumentForms) + ", got \"" + sanitize(value) + "\"";
      },
      "");
}

CLI::Validator limitArgument() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        size_t used = 0;
        int64_t number = 0;
        try {
          number = std::stoll(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != value.size() || number < 1 || number > kMaxLimit)
          return "expected a whole number from 1 to " + std::to_string(kMaxLimit) + ", got \"" + sanitize(value) + "\"";
        return {};
      },
      "");
}

}  // namespace

void addAuditCommand(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<AuditOptions>();
  CLI::App* audit = addCommand(app, ctx, "audit",
                               "Show the audit trail: changes and denied requests, newest first (admin)");
  audit->add_option("--since", options->since,
                    "Only entries from TIME on: " + std::string(kTimeArgumentForms))
      ->type_name("TIME")
      ->check(timeArgument());
  audit->add_option("--user", options->user, "Only requests by this user (a name or a uid)")->type_name("USER");
  audit->add_option("--action", options->action,
                    "Only this action: view, backup, restore, manage, mount, manage-hooks, export-secret, admin "
                    "(or its full polkit id)")
      ->type_name("A");
  audit->add_option("--limit", options->limit, "Show at most N entries (default 100, at most 10000)")
      ->type_name("N")
      ->check(limitArgument());
  audit->footer(
      "Examples:\n"
      "  zerobytectl audit --since 2h\n"
      "  zerobytectl audit --since \"2024-05-01 08:00\" --user alice\n"
      "  zerobytectl audit --action export-secret --json\n\n"
      "Every entry is also in the journal: journalctl SYSLOG_IDENTIFIER=zerobyted ZEROBYTE_ACTION=...");
  audit->callback([&ctx, options] { ctx.action = [&ctx, options] { return listAudit(ctx, *options); }; });
}

}  // namespace zerobyte::ctl
