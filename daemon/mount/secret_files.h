// Credential files for mount helpers and restic children: one directory per use, files 0600, removed after.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace zerobyte::mount {

// Creates `path` (0600, O_EXCL, never through a symlink) owned by uid:gid (root's when both are 0) and writes
// `content`. Throws Error(Failed).
void writeSecretFile(const std::string& path, const std::string& content, uid_t uid = 0, gid_t gid = 0);
// Overwrites every file in `dir` with zeros, removes them, then the directory with whatever else is in it.
void removeSecretDirectory(const std::string& dir);
// The last `maxBytes` of a log a child wrote into its credential directory (ssh -E), as lines without the empty
// ones. Read as root from a directory the child's user owns: only a regular file owned by `owner`, never through
// a symlink; nothing (no lines) when it is missing or is something else.
std::vector<std::string> readChildLog(const std::string& path, uid_t owner, size_t maxBytes = 4096);
// 12 random hex digits, for directory names nobody can guess.
std::string randomSuffix();

}  // namespace zerobyte::mount
