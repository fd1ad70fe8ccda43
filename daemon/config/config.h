// The configuration file (/etc/zerobyte/zerobyte.yaml): daemon settings and declared resources.
#pragma once

#include "common/errors.h"
#include "daemon/core/model.h"
#include "daemon/core/mount_plan.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::config {

// How requests are authorized: polkit when a system bus with polkit is there (auto), or always
// polkit (the daemon does not start without it), or always the Unix groups below (no polkit).
enum class AuthorizationMode { Auto, Polkit, Groups };
std::string_view toString(AuthorizationMode mode);

// Empty strings mean "not set": the daemon then uses $STATE_DIRECTORY etc. or the defaults.
struct DaemonSettings {
  std::string stateDirectory;
  std::string runtimeDirectory;
  std::string cacheDirectory;
  std::string socketPath;
  std::string resticBinary;                  // absolute path; empty: "restic" on PATH
  AuthorizationMode authorization = AuthorizationMode::Auto;
  // The Unix groups that carry the roles when polkit is not used (the shipped polkit rules name
  // the same groups in their own file).
  std::string viewerGroup = "zerobyte-viewers";
  std::string operatorGroup = "zerobyte-operators";
  std::string adminGroup = "zerobyte-admins";
  // The audit table keeps entries this many days, and at most this many entries.
  unsigned auditMaxAgeDays = 180;
  unsigned auditMaxEntries = 100000;
  unsigned jobHistory = 1000;                // finished jobs kept
  unsigned cancelGraceSeconds = 10;          // SIGTERM, then SIGKILL after this
  // A job whose restic keeps retrying a failing repository server (restic itself retries for 15 minutes) is stopped
  // and failed with the cause after this.
  unsigned repositoryRetrySeconds = 600;
  // restic jobs running at once (backups, restores, checks, retention …); the rest wait in order.
  unsigned maxConcurrentJobs = 4;
  // Network volumes: where mount helpers are looked up (also their PATH), how long one may run, how often mounted
  // volumes are checked and how long a check may take, and the extra mount options volumes may ask for per driver.
  std::string mountHelperPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  unsigned mountTimeoutSeconds = 60;
  unsigned mountCheckIntervalSeconds = 300;
  unsigned mountCheckTimeoutSeconds = 10;
  core::MountOptionPolicy mountOptions = core::defaultMountOptionPolicy();
  // D-Bus: a finished job's object stays on the bus this long.
  unsigned finishedJobSeconds = 300;
  // Serve org.zerobyte.Daemon1 on the system bus ("auto": when there is one, reconnecting when it comes back).
  bool dbus = true;
  std::string logLevel = "info";             // debug, info, notice, warning, error
};

struct Config {
  std::string sourcePath;  // the file it was read from
  DaemonSettings daemon;
  std::vector<core::Volume> volumes;           // declared = true
  std::vector<core::Repository> repositories;  // declared = true, passwordRef set
  std::vector<core::Schedule> schedules;        // declared = true, owned by root
};

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the file as a whole is wrong
  int column = 0;  // 1-based
  std::string message;
  // "file:line:column: message" (or "file: message" when line is 0)
  std::string str() const;
};

// Every problem found in one pass, not just the first.
class ConfigError : public Error {
 public:
  explicit ConfigError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const noexcept { return m_diagnostics; }

 private:
  std::vector<Diagnostic> m_diagnostics;
};

// What the loader may ask of the machine (it reads nothing else itself).
struct LoadOptions {
  // Whether the running kernel can mount a file system ("cifs"): a declared smb volume without a driver gets cifs
  // where it can and rclone where it cannot, as one made through the API does. Unset: cifs.
  std::function<bool(const std::string& fileSystem)> kernelCanMount;
};

// Throw ConfigError naming file, line and column and what was expected.
Config loadFile(const std::string& path, const LoadOptions& options = {});
Config loadString(std::string_view yaml, const std::string& fileName, const LoadOptions& options = {});

}  // namespace zerobyte::config
