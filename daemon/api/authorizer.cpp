// Group-based authorization (the fallback policy; polkit plugs in behind the same interface).
#include "daemon/api/authorizer.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

namespace zerobyte::api {

std::string_view actionName(Action action) {
  switch (action) {
    case Action::View: return "view";
    case Action::Backup: return "backup";
    case Action::Restore: return "restore";
    case Action::Manage: return "manage";
    case Action::Admin: return "admin";
    case Action::ExportSecret: return "export-secret";
  }
  return "admin";
}

std::string actionId(Action action) { return "org.zerobyte.daemon1." + std::string(actionName(action)); }

GroupAuthorizer::GroupAuthorizer(std::string adminGroup) : m_adminGroup(std::move(adminGroup)) {}

std::string GroupAuthorizer::mode() const { return "groups (root and members of " + m_adminGroup + " may change things)"; }

bool GroupAuthorizer::isAdmin(uid_t uid, gid_t gid) const {
  if (uid == 0) return true;
  if (m_adminGroup.empty()) return false;
  // Group lookups read the group database (NSS); fine for now, off the hot path of reads.
  group grp{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r(m_adminGroup.c_str(), &grp, buf.data(), buf.size(), &found) != 0 || !found) return false;
  gid_t adminGid = found->gr_gid;
  if (gid == adminGid) return true;
  passwd pw{};
  passwd* user = nullptr;
  std::vector<char> pbuf(16384);
  if (getpwuid_r(uid, &pw, pbuf.data(), pbuf.size(), &user) != 0 || !user) return false;
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (getgrouplist(user->pw_name, user->pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
    if (getgrouplist(user->pw_name, user->pw_gid, groups.data(), &count) < 0) return false;
  }
  for (int i = 0; i < count; ++i)
    if (groups[static_cast<size_t>(i)] == adminGid) return true;
  return false;
}

void GroupAuthorizer::check(const Caller& caller, Action action, std::function<void(bool)> done) {
  switch (action) {
    case Action::View: return done(true);
    case Action::Backup:
    case Action::Restore:
    case Action::Manage:
    case Action::Admin:
    case Action::ExportSecret: return done(isAdmin(caller.uid, caller.gid));
  }
  done(false);
}

}  // namespace zerobyte::api
