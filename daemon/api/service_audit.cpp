// The service layer: reading the audit trail (ListAudit, admin).
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/log/log.h"
#include "daemon/store/store.h"

#include <algorithm>
#include <string>

namespace zerobyte::api {
namespace {

using nlohmann::json;

constexpr int64_t kDefaultLimit = 100;
constexpr int64_t kMaxLimit = 10000;

// A user name or a uid, as `user` in ListAudit. A number needs no account: a deleted user's
// entries stay in the trail.
uint32_t uidOf(const std::string& user) {
  const bool digits = !user.empty() && user.size() <= 10 && std::all_of(user.begin(), user.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (digits) {
    const uint64_t uid = std::stoull(user);
    if (uid < static_cast<uint32_t>(-1)) return static_cast<uint32_t>(uid);
  } else if (auto identity = users::lookup(user)) {
    return identity->uid;
  }
  throw Error(ErrorCode::InvalidArgument,
              "no user \"" + log::sanitize(user) + "\" on this machine; give a user name or a numeric uid",
              {{"parameter", "user"}});
}

std::string actionIdOf(const std::string& action) {
  if (auto found = actionFromName(action)) return actionId(*found);
  std::string known;
  for (Action a : allActions()) known += (known.empty() ? "" : ", ") + std::string(actionName(a));
  throw Error(ErrorCode::InvalidArgument,
              "unknown action \"" + log::sanitize(action) + "\"; use one of " + known +
                  " or a full id such as org.zerobyte.daemon1.manage",
              {{"parameter", "action"}});
}

json auditJson(const core::AuditEntry& e) {
  return {{"id", e.id},         {"time", formatTime(e.time)}, {"caller_uid", e.callerUid}, {"caller_pid", e.callerPid},
          {"transport", e.transport}, {"action", e.action},  {"method", e.method},          {"resource", e.resource},
          {"result", e.result}};
}

}  // namespace

void Service::listAudit(const json& p, const RequestPtr& r) {
  store::AuditQuery query;
  if (auto since = optionalIntParam(p, "since")) {
    if (*since < 0)
      throw Error(ErrorCode::InvalidArgument, "since must be a time in seconds since the epoch (0 or more)",
                  {{"parameter", "since"}});
    query.since = *since;
  }
  if (auto user = optionalStringParam(p, "user")) query.callerUid = uidOf(*user);
  if (auto action = optionalStringParam(p, "action")) query.action = actionIdOf(*action);
  const int64_t limit = optionalIntParam(p, "limit").value_or(kDefaultLimit);
  if (limit < 1 || limit > kMaxLimit)
    throw Error(ErrorCode::InvalidArgument, "limit must be from 1 to " + std::to_string(kMaxLimit),
                {{"parameter", "limit"}});
  query.limit = static_cast<size_t>(limit);

  json entries = json::array();
  for (const auto& entry : m_store.auditEntries(query)) entries.push_back(auditJson(entry));
  r->reply({{"entries", std::move(entries)}});
}

}  // namespace zerobyte::api
