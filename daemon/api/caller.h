// A caller's process identity from the kernel: start times from /proc and pidfds, so that a pid is never confused with a later process.
#pragma once

#include "common/file_descriptor.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace zerobyte::api {

// The start time (field 22, in clock ticks since boot) from the text of /proc/PID/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
// nullopt when the text is not a stat line.
std::optional<uint64_t> parseStartTime(std::string_view statLine);

// The start time of a live process; nullopt when it does not exist or is a zombie (its pid
// is about to be free for reuse, so nothing should be decided about it).
std::optional<uint64_t> processStartTime(pid_t pid);
// The real uid of a process ("Uid:" of /proc/PID/status); nothing when it does not exist.
std::optional<uid_t> processRealUid(pid_t pid);

// pidfd_open(2) through syscall(2) (glibc 2.36 has no wrapper); an invalid descriptor on failure.
FileDescriptor openPidfd(pid_t pid);

// True while the process behind a pidfd has not exited (POLLIN on a pidfd means it has).
bool pidfdAlive(int pidfd);

}  // namespace zerobyte::api
