// Acting as a resource's owner: the child identity of a user, access checks made as that user, their restic cache.
#pragma once

#include "common/users.h"
#include "daemon/process/process_runner.h"

#include <sys/types.h>

#include <chrono>
#include <string>

namespace zerobyte::process {

// Sets spec.uid, gid and groups so that the child runs as `user` with exactly their groups (the primary one and
// the supplementary ones, as users::lookup() lists them). uid 0 leaves the spec as it is: root-owned resources run
// as the daemon.
void runAs(ProcessSpec& spec, const users::Identity& user);

enum class AccessKind {
  ReadDirectory,   // the user can open the directory and list it
  WriteDirectory,  // the user can create entries in it, or, when it does not exist, in its nearest existing ancestor
};

struct AccessResult {
  bool allowed = false;
  int error = 0;          // the failing call's errno when denied; 0 when allowed or timed out
  bool timedOut = false;  // the check did not finish in time (a hung network filesystem) and was killed
  // The directory the answer is about: the path itself, or for WriteDirectory its nearest existing ancestor (or,
  // when denied, the path on which the lookup failed).
  std::string checkedPath;
  std::string reason;  // "permission denied", "not a directory", "no answer within 5 seconds ...": lower case
  explicit operator bool() const noexcept { return allowed; }
};

constexpr std::chrono::milliseconds kAccessCheckTimeout{5000};

// Asks the kernel, not the permission bits: a forked child takes the user's identity (setgroups, setresgid,
// setresuid, no capabilities) and tries. Synchronous but bounded by `timeout`: a child stuck on a dead network
// filesystem is killed and reported as timed out. `path` must be absolute and without ".." (InvalidArgument).
// Throws Error(Failed) when the child cannot be started or cannot take the identity (the daemon is not root).
AccessResult checkAccessAs(const users::Identity& user, const std::string& path, AccessKind kind,
                           std::chrono::milliseconds timeout = kAccessCheckTimeout);

// Creates `path` and whichever of its ancestors are missing (as mkdir -p; new ones 0700) as `user`, in a forked
// child with their identity, so only where they could; bounded like checkAccessAs. Allowed: `path` is a directory
// now; else `reason` and `checkedPath` say which step failed.
AccessResult makeDirectoryAs(const users::Identity& user, const std::string& path,
                             std::chrono::milliseconds timeout = kAccessCheckTimeout);

// The user's own restic cache: `<cacheBase>/users/<uid>`, created mode 0700 and owned by the user, below a
// `users` directory owned by root (0711: users reach their own directory but list nobody's). `cacheBase` itself
// must be root's and writable by nobody else; it gains search permission for others (0711) where it lacked it.
// Nothing is followed: every step is relative to a directory fd opened with O_NOFOLLOW, ownership is set through
// an fd, and a symbolic link or a non-directory planted at any of these places, or a directory there owned by
// another user, is refused (Error(Failed), saying what to remove). An empty root-owned directory there (a create
// interrupted before its chown) is handed to the user. The caller puts restic's per-repository cache, HOME and
// TMPDIR below it and restic, running as the user, creates what it needs. For uid 0, `cacheBase` as before.
std::string ensureUserCacheDirectory(const std::string& cacheBase, const users::Identity& user);

}  // namespace zerobyte::process
