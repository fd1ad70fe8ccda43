// Actions, scopes, the role rule (mirrored by polkit/50-zerobyte.rules) and the group fallback.
#include "daemon/api/authorizer.h"

#include "common/users.h"

#include <algorithm>

namespace zerobyte::api {

namespace {
constexpr std::string_view kPrefix = "org.zerobyte.daemon1.";
}

const std::vector<Action>& allActions() {
  static const std::vector<Action> all = {Action::View,        Action::Backup,       Action::Restore, Action::Manage,
                                          Action::Mount,       Action::ManageHooks,  Action::ExportSecret, Action::Admin};
  return all;
}

std::string_view actionName(Action action) {
  switch (action) {
    case Action::View: return "view";
    case Action::Backup: return "backup";
    case Action::Restore: return "restore";
    case Action::Manage: return "manage";
    case Action::Mount: return "mount";
    case Action::ManageHooks: return "manage-hooks";
    case Action::ExportSecret: return "export-secret";
    case Action::Admin: return "admin";
  }
  return "admin";
}

std::string actionId(Action action) { return std::string(kPrefix) + std::string(actionName(action)); }

std::optional<Action> actionFromName(std::string_view nameOrId) {
  if (nameOrId.substr(0, kPrefix.size()) == kPrefix) nameOrId.remove_prefix(kPrefix.size());
  for (Action a : allActions())
    if (actionName(a) == nameOrId) return a;
  return std::nullopt;
}

Scope ownScope() { return Scope{}; }

Scope everyoneScope() {
  Scope s;
  s.callerOwns = false;
  return s;
}

Scope resourceScope(std::string resource, uint32_t ownerUid, std::optional<uint32_t> groupGid, uid_t callerUid,
                    const std::vector<gid_t>& callerGroups) {
  Scope s;
  s.ownerUid = ownerUid;
  s.groupGid = groupGid;
  s.resource = std::move(resource);
  s.callerOwns = ownerUid == callerUid ||
                 (groupGid && std::find(callerGroups.begin(), callerGroups.end(), static_cast<gid_t>(*groupGid)) != callerGroups.end());
  return s;
}

std::string_view roleName(Role role) {
  switch (role) {
    case Role::None: return "none";
    case Role::Viewer: return "viewer";
    case Role::Operator: return "operator";
    case Role::Admin: return "admin";
  }
  return "none";
}

bool allowedByRole(Role role, Action action, const Scope& scope) {
  if (role == Role::Admin) return true;
  switch (action) {
    case Action::View: return scope.callerOwns || role >= Role::Viewer;
    case Action::Backup:
    case Action::Restore: return scope.callerOwns || role >= Role::Operator;
    case Action::Manage: return scope.callerOwns;
    case Action::Mount:
    case Action::ManageHooks:
    case Action::ExportSecret:
    case Action::Admin: return false;
  }
  return false;
}

GroupAuthorizer::GroupAuthorizer(RoleGroups groups) : m_groups(std::move(groups)) {}

std::string GroupAuthorizer::describe() const {
  return "groups: root and " + m_groups.admins + " are admins, " + m_groups.operators + " operators, " + m_groups.viewers + " viewers";
}

Role GroupAuthorizer::roleOf(uid_t uid) const { return roleOfUser(uid, m_groups); }

Role roleOfUser(uid_t uid, const RoleGroups& roles) {
  if (uid == 0) return Role::Admin;
  auto groups = users::groupsOf(uid);
  auto in = [&](const std::string& name) {
    if (name.empty()) return false;
    auto gid = users::groupId(name);
    return gid && std::find(groups.begin(), groups.end(), *gid) != groups.end();
  };
  if (in(roles.admins)) return Role::Admin;
  if (in(roles.operators)) return Role::Operator;
  if (in(roles.viewers)) return Role::Viewer;
  return Role::None;
}

void GroupAuthorizer::check(const Caller& caller, Action action, const Scope& scope, bool, std::function<void(Decision)> done) {
  Decision d;
  d.allowed = allowedByRole(roleOf(caller.uid), action, scope);
  done(d);
}

}  // namespace zerobyte::api
