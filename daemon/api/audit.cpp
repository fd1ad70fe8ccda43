// Audit records: log::notice plus sd_journal_send with ZEROBYTE_* fields.
#include "daemon/api/audit.h"

#include "daemon/log/log.h"

#include <systemd/sd-journal.h>

#include <string>

namespace zerobyte::api {

void audit(const Caller& caller, Action action, std::string_view repository, std::string_view outcome) {
  const std::string uid = std::to_string(caller.uid), pid = std::to_string(caller.pid);
  const std::string name = log::sanitize(repository), what = log::sanitize(outcome), id = actionId(action);
  const std::string message = "audit: uid " + uid + " (pid " + pid + ") " + id +
                              (name.empty() ? std::string() : " repository \"" + name + "\"") + ": " + what;
  log::notice(message);
  // Fails quietly when no journal listens (tests, containers): the log line above remains.
  sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%d", static_cast<int>(log::Level::Notice),
                  "SYSLOG_IDENTIFIER=zerobyted", "ZEROBYTE_AUDIT=1", "ZEROBYTE_ACTION=%s", id.c_str(), "ZEROBYTE_UID=%s",
                  uid.c_str(), "ZEROBYTE_PID=%s", pid.c_str(), "ZEROBYTE_REPOSITORY=%s", name.c_str(),
                  "ZEROBYTE_OUTCOME=%s", what.c_str(), nullptr);
}

}  // namespace zerobyte::api
