// Privilege drop in a forked child: raw system calls only (no allocation, no locks, no libcap).
#include "daemon/process/privilege_drop.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace zerobyte::process {

namespace {

// Empties the bounding set, so no later exec can ever receive a capability. It needs CAP_SETPCAP: a daemon
// started without it keeps its (already reduced) bounding set; no_new_privs and the empty permitted set still
// leave the child without capabilities.
void dropBoundingSet() noexcept {
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EPERM) return;
}

// Clears effective, permitted and inheritable: setresuid() to a non-root uid clears the first two but keeps the
// inheritable set as it was.
bool clearCapabilities() noexcept {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return syscall(SYS_capset, &header, data) == 0;
}

// A child that stays root keeps only `mask`: the bounding set (what exec can give it) and its own sets.
bool keepOnlyCapabilities(uint64_t mask) noexcept {
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap)
    if (cap >= 64 || !(mask & (uint64_t{1} << cap)))
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return false;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return false;
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    auto word = static_cast<uint32_t>(mask >> (32 * i));
    data[i].permitted &= word;
    data[i].effective &= word;
    data[i].inheritable = 0;
  }
  return syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

DropStep dropPrivileges(const ChildIdentity& id) noexcept {
  if (id.limitCapabilities && !(id.setUid && id.uid != 0) && !keepOnlyCapabilities(id.capabilities)) return DropStep::Capabilities;
  if (id.setGroups && setgroups(id.groupCount, id.groupCount ? id.groups : nullptr) < 0) return DropStep::Groups;
  if (id.setGid && setresgid(id.gid, id.gid, id.gid) < 0) return DropStep::Gid;
  if (!id.setUid) return DropStep::None;
  const bool toUser = id.uid != 0;
  if (toUser) dropBoundingSet();
  if (setresuid(id.uid, id.uid, id.uid) < 0) return DropStep::Uid;
  if (!toUser) return DropStep::None;
  // Ambient capabilities go with the permitted set already; cleared explicitly in case of a kernel that differs.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return DropStep::Capabilities;
  if (!clearCapabilities()) return DropStep::Capabilities;
  // The way back must be closed: a drop that can be undone is no drop.
  if (setresuid(0, 0, 0) == 0 || (id.setGid && id.gid != 0 && setresgid(0, 0, 0) == 0)) {
    errno = EPERM;
    return DropStep::Verify;
  }
  return DropStep::None;
}

void closeDescriptorsExcept(int keep, int keepToo) noexcept {
  int low = std::min(keep, keepToo), high = std::max(keep, keepToo);
  if (low < 0) low = high;  // only one to keep
  unsigned from = 0;
  for (int fd : {low, high}) {
    if (fd < 0) continue;
    if (static_cast<unsigned>(fd) > from) syscall(SYS_close_range, from, static_cast<unsigned>(fd - 1), 0U);
    from = static_cast<unsigned>(fd) + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0U);
}

}  // namespace zerobyte::process
