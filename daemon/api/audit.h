// The audit trail: every change and every denial, to the journal (structured) and the store's audit table.
#pragma once

#include "daemon/api/authorizer.h"
#include "daemon/api/request.h"

#include <cstddef>
#include <string_view>

namespace zerobyte::store {
class Store;
}

namespace zerobyte::api {

// The kinds of audit event; each has its own journal MESSAGE_ID (docs/security.md, "Audit"), so
// `journalctl MESSAGE_ID=…` finds all denials, or all revealed secrets, whatever their text.
enum class AuditEvent { Changed, Denied, Failed, SecretRevealed };

// 32 lower-case hex digits, fixed for all releases.
std::string_view auditMessageId(AuditEvent event);
std::string_view auditEventName(AuditEvent event);
// The kind a result text stands for: "denied…" Denied, "revealed…" SecretRevealed, "failed…",
// "not …" or "… failed…" Failed, anything else ("ok", "rotated the master key …") Changed.
AuditEvent auditEventOf(std::string_view result);

class AuditLog {
 public:
  // How much work one pruning pass may do, and how often (in records) one runs.
  static constexpr size_t kPruneBatch = 1000;
  static constexpr size_t kPruneEvery = 100;

  explicit AuditLog(store::Store& store);
  // `method`: the API method ("CreateVolume"); `resource`: what it was about ("volume home", may be
  // empty); `result`: "ok", "denied", "failed: NotFound", "revealed", ... Never carries a secret.
  // Writes one log line, one journal entry and one store entry. Never throws: a store that
  // cannot be written is logged, and the request's own answer goes out as it would have.
  void record(const Caller& caller, Action action, std::string_view method, std::string_view resource, std::string_view result);
  // The same with the event kind given rather than read from `result`.
  void record(const Caller& caller, Action action, std::string_view method, std::string_view resource,
              std::string_view result, AuditEvent event);
  // The bounds of the store's audit table (config: daemon.audit_max_age_days, daemon.audit_max_entries).
  // Prunes at once; afterwards every kPruneEvery records, at most kPruneBatch entries a time
  // (more than are added in between, so a trail above its bounds shrinks back to them).
  void setLimits(unsigned maxAgeDays, size_t maxEntries);

 private:
  void prune() noexcept;

  store::Store& m_store;
  unsigned m_maxAgeDays = 180;
  size_t m_maxEntries = 100000;
  // Starts "due", so that the first record after start prunes even if setLimits() was never called.
  size_t m_recordsSincePrune = kPruneEvery;
};

}  // namespace zerobyte::api
