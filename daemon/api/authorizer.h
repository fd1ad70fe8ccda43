// Authorization: the one place that decides whether a caller may perform an action.
#pragma once

#include "daemon/api/request.h"

#include <functional>
#include <string>
#include <string_view>

namespace zerobyte::api {

// polkit action ids are "org.zerobyte.daemon1.<name>". ExportSecret ("export-secret") is revealing a
// stored secret: its own action so that a policy can ask for it separately (auth_admin, never cached).
enum class Action { View, Backup, Restore, Manage, Admin, ExportSecret };
std::string_view actionName(Action action);
std::string actionId(Action action);

// Asynchronous by contract: polkit answers later, never while the caller waits in the loop.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual void check(const Caller& caller, Action action, std::function<void(bool allowed)> done) = 0;
  // Shown by GetStatus: how decisions are made.
  virtual std::string mode() const = 0;
};

// Until polkit: viewing is open to everyone; everything else (revealing a secret included) is root's and
// the admin group's.
class GroupAuthorizer : public Authorizer {
 public:
  explicit GroupAuthorizer(std::string adminGroup);
  void check(const Caller& caller, Action action, std::function<void(bool allowed)> done) override;
  std::string mode() const override;
  void setAdminGroup(std::string group) { m_adminGroup = std::move(group); }

 private:
  bool isAdmin(uid_t uid, gid_t gid) const;
  std::string m_adminGroup;
};

}  // namespace zerobyte::api
