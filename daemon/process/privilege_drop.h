// Taking a user's identity in a forked child: async-signal-safe, with everything prepared before the fork.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace zerobyte::process {

// What the child becomes. Built in the parent: `groups` points at memory that stays valid across the fork, so the
// child allocates nothing.
struct ChildIdentity {
  bool setGroups = false;  // call setgroups(groupCount, groups); an empty list clears root's groups
  const gid_t* groups = nullptr;
  size_t groupCount = 0;
  bool setGid = false;
  gid_t gid = 0;
  bool setUid = false;
  uid_t uid = 0;
  // For a child that stays root: the only capabilities it keeps (bit N = capability N), in its bounding
  // set too, so that the program it becomes has no others.
  bool limitCapabilities = false;
  uint64_t capabilities = 0;
};

// Which call of dropPrivileges() failed.
enum class DropStep : int { None = 0, Groups, Gid, Uid, Capabilities, Verify };

// In a forked child only. Order: setgroups, setresgid, setresuid (the group calls need root, so they come first).
// For a non-root uid the child also ends with no capability at all (effective, permitted, inheritable, ambient,
// and the bounding set where the daemon holds CAP_SETPCAP) and is checked not to be able to become root again.
// no_new_privs is the caller's to set (before this, so nothing exec'd later can regain privileges). Returns the
// failing step with errno set, or DropStep::None.
DropStep dropPrivileges(const ChildIdentity& identity) noexcept;

// In a forked child only: closes every descriptor but `keep` and `keepToo` (-1 for none).
void closeDescriptorsExcept(int keep, int keepToo) noexcept;

}  // namespace zerobyte::process
