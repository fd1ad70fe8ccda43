// Authorization: the one place that decides whether a caller may perform an action on a resource.
#pragma once

#include "daemon/api/request.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::api {

// polkit action ids are "org.zerobyte.daemon1.<name>" (polkit/org.zerobyte.Daemon1.policy).
//   view          see the daemon, resources, jobs and snapshots
//   backup        start backups and cancel one's own jobs
//   restore       restore snapshots
//   manage        create, change and delete volumes, repositories and schedules; forget, check
//   mount         mount network volumes
//   manage-hooks  set commands that run around jobs
//   export-secret reveal a stored secret
//   admin         settings, master key, audit, other users' jobs
enum class Action { View, Backup, Restore, Manage, Mount, ManageHooks, ExportSecret, Admin };
const std::vector<Action>& allActions();
std::string_view actionName(Action action);
std::string actionId(Action action);
std::optional<Action> actionFromName(std::string_view nameOrId);

// What a request is about. Ownership is the daemon's fact, passed to polkit as details
// ("zerobyte.owner", "zerobyte.group", "zerobyte.caller_owns", "zerobyte.resource") so that the
// shipped rules decide with it.
struct Scope {
  // The resource's owner and the group it is shared with; nullopt owner: not about one resource.
  std::optional<uint32_t> ownerUid;
  std::optional<uint32_t> groupGid;
  // The caller owns the resource or is in its group. For requests about the daemon as a whole
  // (status, creating a resource of one's own) true; for "everyone's resources" (a list of all) false.
  bool callerOwns = true;
  std::string resource;  // "volume home", "repository offsite", "" (for messages, polkit and audit)
};

// A scope about the caller's own things (status, creating a new resource).
Scope ownScope();
// A scope about everybody's resources (may the caller see all of them?).
Scope everyoneScope();
// A scope about one resource, given the caller's uid and the groups they are in.
Scope resourceScope(std::string resource, uint32_t ownerUid, std::optional<uint32_t> groupGid, uid_t callerUid,
                    const std::vector<gid_t>& callerGroups);

struct Decision {
  bool allowed = false;
  // Denied now, but authentication (a polkit agent) could allow it.
  bool challenge = false;
  // Why, when not allowed and not simply "the policy says no" (e.g. "polkit is unreachable: …").
  std::string reason;
};

// Roles as the shipped polkit rules define them; also the group fallback.
enum class Role { None, Viewer, Operator, Admin };
std::string_view roleName(Role role);

// The group names that carry each role (config: daemon.roles).
struct RoleGroups {
  std::string viewers = "zerobyte-viewers";
  std::string operators = "zerobyte-operators";
  std::string admins = "zerobyte-admins";
};

// The access rule itself, the same as polkit/50-zerobyte.rules:
//   root and admins: everything;
//   view: of one's own (or group-shared) resources and of the daemon: everyone; of all: viewers and up;
//   backup, restore: own resources: everyone; all resources: operators and up;
//   manage: own resources (and creating new ones): everyone;
//   mount, manage-hooks, export-secret, admin: admins only.
bool allowedByRole(Role role, Action action, const Scope& scope);
// A user's role from their groups (root is always admin).
Role roleOfUser(uid_t uid, const RoleGroups& groups);

// Asynchronous by contract: polkit answers later, never while the caller waits in the loop.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // `interactive`: the caller allows an authentication dialog (its polkit agent) for this request.
  virtual void check(const Caller& caller, Action action, const Scope& scope, bool interactive,
                     std::function<void(Decision)> done) = 0;
  // Shown by GetStatus: how decisions are made ("polkit", "groups").
  virtual std::string mode() const = 0;
  // One line for the log at start and GetStatus: the mode and where roles come from.
  virtual std::string describe() const = 0;
};

// Without polkit (no system bus, a container, or forced by the config): root, and the groups
// of RoleGroups, with allowedByRole().
class GroupAuthorizer : public Authorizer {
 public:
  explicit GroupAuthorizer(RoleGroups groups);
  void check(const Caller& caller, Action action, const Scope& scope, bool interactive,
             std::function<void(Decision)> done) override;
  std::string mode() const override { return "groups"; }
  std::string describe() const override;
  void setGroups(RoleGroups groups) { m_groups = std::move(groups); }
  Role roleOf(uid_t uid) const;

 private:
  RoleGroups m_groups;
};

}  // namespace zerobyte::api
