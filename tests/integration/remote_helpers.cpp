// Helpers for the integration tests of remote volumes and repositories.
#include "tests/integration/remote_helpers.h"

#include "tests/support/test_servers.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace zbtest {

namespace fs = std::filesystem;

void writeFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ::chmod(path.c_str(), mode);
}

std::vector<std::string> cmdlinesContaining(const std::string& needle, pid_t except) {
  std::vector<std::string> hits;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos || name == std::to_string(except)) continue;
    std::string cmd = readAll(entry.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    // The test servers take their own passwords on argv (tests running beside this one have them too).
    if (cmd.find(" serve webdav ") != std::string::npos || cmd.find(" serve restic ") != std::string::npos) continue;
    if (cmd.find(needle) != std::string::npos) hits.push_back(name + ": " + cmd);
  }
  return hits;
}

std::map<std::string, std::string> contentsOf(const std::string& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (it->is_symlink()) out[rel] = "l:" + fs::read_symlink(it->path()).string();
    else if (it->is_directory()) out[rel] = "d";
    else if (it->is_regular_file()) out[rel] = readAll(it->path());
  }
  return out;
}

std::string firstDifference(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) return "missing " + k;
    if (it->second != v) return "differs: " + k;
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) return "extra " + k;
  return "";
}

void makeSimpleTree(const std::string& root, int count) {
  fs::create_directories(root + "/sub dir/déjà");
  for (int i = 0; i < count; ++i) {
    std::string dir = i % 3 == 0 ? root : i % 3 == 1 ? root + "/sub dir" : root + "/sub dir/déjà";
    writeFile(dir + "/file " + std::to_string(i) + ".txt", "content of " + std::to_string(i) + std::string(static_cast<size_t>(i) * 37, 'x'), 0644);
  }
}

void chownTree(const std::string& root, const std::string& user) {
  struct passwd* pw = ::getpwnam(user.c_str());
  if (!pw) throw std::runtime_error("no user " + user);
  ::chown(root.c_str(), pw->pw_uid, pw->pw_gid);
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
    ::lchown(it->path().c_str(), pw->pw_uid, pw->pw_gid);
}

}  // namespace zbtest
