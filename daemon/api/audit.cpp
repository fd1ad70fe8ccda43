// Audit records: log::notice, sd_journal_send with a MESSAGE_ID per event kind and ZEROBYTE_* fields, the store's table.
#include "daemon/api/audit.h"

#include "daemon/api/json_mapping.h"
#include "daemon/log/log.h"
#include "daemon/store/store.h"

#include <systemd/sd-journal.h>

#include <exception>
#include <string>

namespace zerobyte::api {
namespace {

constexpr core::Timestamp kSecondsPerDay = 86400;

bool startsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

std::string_view auditMessageId(AuditEvent event) {
  // Generated once (random 128-bit ids, as `systemd-id128 new` makes them); never change them:
  // admins filter and alert on them. Listed in docs/security.md, "Audit".
  switch (event) {
    case AuditEvent::Changed: return "df7d4ab6eded47d6b8be408ebefa17b7";
    case AuditEvent::Denied: return "ed6c9a94bfbb4380997fb87e537e565f";
    case AuditEvent::Failed: return "b274ca5ad12c4d13a4c081c09c55d962";
    case AuditEvent::SecretRevealed: return "fcfa4cbaf4924a4db0c43b158fb526ab";
  }
  return "b274ca5ad12c4d13a4c081c09c55d962";
}

std::string_view auditEventName(AuditEvent event) {
  switch (event) {
    case AuditEvent::Changed: return "changed";
    case AuditEvent::Denied: return "denied";
    case AuditEvent::Failed: return "failed";
    case AuditEvent::SecretRevealed: return "secret-revealed";
  }
  return "failed";
}

AuditEvent auditEventOf(std::string_view result) {
  if (startsWith(result, "denied")) return AuditEvent::Denied;
  if (startsWith(result, "revealed")) return AuditEvent::SecretRevealed;
  if (startsWith(result, "failed") || startsWith(result, "not ") || result.find(" failed") != std::string_view::npos)
    return AuditEvent::Failed;
  return AuditEvent::Changed;
}

AuditLog::AuditLog(store::Store& store) : m_store(store) {}

void AuditLog::record(const Caller& caller, Action action, std::string_view method, std::string_view resource,
                      std::string_view result) {
  record(caller, action, method, resource, result, auditEventOf(result));
}

void AuditLog::record(const Caller& caller, Action action, std::string_view method, std::string_view resource,
                      std::string_view result, AuditEvent event) {
  const std::string uid = std::to_string(caller.uid), pid = std::to_string(caller.pid);
  const std::string name = log::sanitize(resource), what = log::sanitize(result), id = actionId(action);
  const std::string how = log::sanitize(method), transport = log::sanitize(caller.transport);
  const std::string message = "audit: uid " + uid + " (pid " + pid + ") " + how + " " + id +
                              (name.empty() ? std::string() : " " + name) + ": " + what;
  log::notice(message);

  const std::string messageId(auditMessageId(event));
  const log::Level priority =
      event == AuditEvent::Denied || event == AuditEvent::Failed ? log::Level::Warning : log::Level::Notice;
  // Without journald (a container, a test) this fails; the log line above and the store still have it.
  sd_journal_send("MESSAGE=%s", message.c_str(), "MESSAGE_ID=%s", messageId.c_str(), "PRIORITY=%d",
                  static_cast<int>(priority), "SYSLOG_IDENTIFIER=zerobyted", "ZEROBYTE_AUDIT=1", "ZEROBYTE_EVENT=%s",
                  std::string(auditEventName(event)).c_str(), "ZEROBYTE_ACTION=%s", id.c_str(), "ZEROBYTE_METHOD=%s",
                  how.c_str(), "ZEROBYTE_RESOURCE=%s", name.c_str(), "ZEROBYTE_CALLER_UID=%s", uid.c_str(),
                  "ZEROBYTE_CALLER_PID=%s", pid.c_str(), "ZEROBYTE_TRANSPORT=%s", transport.c_str(),
                  "ZEROBYTE_RESULT=%s", what.c_str(), nullptr);

  core::AuditEntry entry;
  entry.time = now();
  entry.callerUid = caller.uid;
  entry.callerPid = caller.pid;
  entry.transport = transport;
  entry.action = id;
  entry.method = how;
  entry.resource = name;
  entry.result = what;
  try {
    m_store.appendAudit(entry);
  } catch (const std::exception& e) {
    // The change itself is done (or the denial given): the caller still gets its answer.
    log::error("audit: cannot write the audit entry to the store (it is in the journal): " + std::string(e.what()));
  }
  if (++m_recordsSincePrune >= kPruneEvery) prune();
}

void AuditLog::setLimits(unsigned maxAgeDays, size_t maxEntries) {
  m_maxAgeDays = maxAgeDays;
  m_maxEntries = maxEntries;
  prune();
}

void AuditLog::prune() noexcept {
  m_recordsSincePrune = 0;
  try {
    const core::Timestamp cutoff = now() - static_cast<core::Timestamp>(m_maxAgeDays) * kSecondsPerDay;
    const size_t erased = m_store.pruneAudit(cutoff, m_maxEntries, kPruneBatch);
    if (erased > 0)
      log::debug("audit: pruned " + std::to_string(erased) + " entries older than " + std::to_string(m_maxAgeDays) +
                 " days or beyond the newest " + std::to_string(m_maxEntries));
  } catch (const std::exception& e) {
    log::error("audit: cannot prune the audit table: " + std::string(e.what()));
  }
}

}  // namespace zerobyte::api
