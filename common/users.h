// The user and group database (NSS), as polkit's subject.isInGroup() sees it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace zerobyte::users {

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;                // primary group
  std::vector<gid_t> groups;    // primary and supplementary groups
  std::string name;
  std::string home;
};

std::optional<Identity> lookup(uid_t uid);
std::optional<Identity> lookup(const std::string& name);
std::optional<std::string> userName(uid_t uid);
std::optional<std::string> groupName(gid_t gid);
std::optional<gid_t> groupId(const std::string& name);
// Primary and supplementary groups of a user; empty when the uid has no entry.
std::vector<gid_t> groupsOf(uid_t uid);
bool isInGroup(uid_t uid, gid_t gid);
// "alice" or "uid 1234" when the uid has no entry.
std::string describeUser(uid_t uid);
std::string describeGroup(gid_t gid);

}  // namespace zerobyte::users
