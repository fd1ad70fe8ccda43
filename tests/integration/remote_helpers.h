// Helpers for the integration tests of remote volumes and repositories: file trees to back up and compare, and
// looks at what other processes show on their command lines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace zbtest {

void writeFile(const std::string& path, const std::string& content, mode_t mode = 0600);
// Processes whose command line contains `needle` (but `except`, and the test servers, which take their own
// passwords on argv): "PID: cmdline" each.
std::vector<std::string> cmdlinesContaining(const std::string& needle, pid_t except = -1);
// name -> content of every regular file below root ("l:" + target for symlinks, "d" for directories).
std::map<std::string, std::string> contentsOf(const std::string& root);
// "" when equal, else the first difference ("missing NAME", "differs: NAME", "extra NAME").
std::string firstDifference(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b);
// A small tree of plain files and directories (names with spaces, unicode), `count` files.
void makeSimpleTree(const std::string& root, int count);
// chown -R to `user` (throws std::runtime_error if there is no such user).
void chownTree(const std::string& root, const std::string& user);

// Polls `p` every 100 ms for at most timeoutMs; its last answer.
template <typename Predicate>
bool eventually(Predicate p, int timeoutMs) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return p();
}

}  // namespace zbtest
