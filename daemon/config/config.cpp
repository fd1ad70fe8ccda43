// Loading /etc/zerobyte/zerobyte.yaml: yaml-cpp nodes checked against the schema, every problem with its position.
#include "daemon/config/config.h"

#include "daemon/core/cron.h"
#include "daemon/core/repository_backend.h"
#include "daemon/core/retention.h"
#include "common/file_descriptor.h"

#include "daemon/core/validation.h"

#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace zerobyte::config {
namespace {

// One key a map may hold; `expected` finishes "expected ..." in messages.
struct KeySpec {
  std::string_view name;
  std::string_view expected;
  bool required = false;
};

constexpr KeySpec kTopLevelKeys[] = {
    {"daemon", "a map of daemon settings"},
    {"volumes", "a list of volumes"},
    {"repositories", "a list of repositories"},
    {"schedules", "a list of schedules"},
};

constexpr KeySpec kDaemonKeys[] = {
    {"state_directory", "an absolute path"},
    {"runtime_directory", "an absolute path"},
    {"cache_directory", "an absolute path"},
    {"socket", "an absolute path"},
    {"restic", "the absolute path of the restic binary"},
    {"authorization", "one of auto, polkit, groups"},
    {"viewer_group", "a Unix group name"},
    {"operator_group", "a Unix group name"},
    {"admin_group", "a Unix group name"},
    {"job_history", "an integer from 1 to 100000"},
    {"cancel_grace_seconds", "an integer from 1 to 3600"},
    {"repository_retry_seconds", "an integer from 5 to 3600"},
    {"max_concurrent_jobs", "an integer from 1 to 64"},
    {"mount_helper_path", "a list of absolute directories where mount helpers are looked up"},
    {"mount_timeout_seconds", "an integer from 1 to 3600"},
    {"mount_check_interval_seconds", "an integer from 0 to 86400"},
    {"mount_check_timeout_seconds", "an integer from 1 to 600"},
    {"mount_options", "a map from a driver (sshfs, davfs, rclone, cifs, nfs) to the list of extra mount options volumes may use"},
    {"finished_job_seconds", "an integer from 0 to 86400"},
    {"dbus", "one of auto, off"},
    {"log_level", "one of debug, info, notice, warning, error"},
    {"audit_max_age_days", "an integer from 1 to 36500"},
    {"audit_max_entries", "an integer from 100 to 1000000"},
};

constexpr KeySpec kVolumeKeys[] = {
    {"name", "a volume name", true},
    {"type", "a volume type: directory, sftp, smb, webdav, nfs or rclone"},
    {"path", "the absolute path of the directory to back up"},
    {"driver", "a driver for the type (sftp: sshfs; smb: cifs, rclone, default cifs where the kernel has it; webdav: rclone, davfs; nfs: nfs; rclone: rclone)"},
    {"host", "the server's host name or address"},
    {"port", "a port from 1 to 65535"},
    {"user", "a user name"},
    {"remote_path", "the path on the server (nfs: the export)"},
    {"share", "an SMB share name"},
    {"domain", "an SMB domain"},
    {"smb_version", "one of 2.0, 2.1, 3.0, 3.02, 3.1.1"},
    {"guest", "true or false"},
    {"url", "a WebDAV URL (http:// or https://, without credentials)"},
    {"tls_verify", "true or false"},
    {"nfs_version", "one of 3, 4, 4.1, 4.2"},
    {"known_hosts", "the server's known_hosts line(s)"},
    {"host_key_check", "true or false"},
    {"password", "a password reference (file:///path, env://NAME or credential://NAME)"},
    {"private_key", "a private key reference (file:///path, env://NAME or credential://NAME)"},
    {"rclone_type", "an rclone backend name"},
    {"rclone_options", "a map of rclone option names to values"},
    {"rclone_secrets", "a map of rclone option names to secret references"},
    {"mount_options", "a list of NAME or NAME=VALUE mount options the driver allows"},
    {"read_write", "true or false"},
    {"auto_remount", "true or false"},
    {"keep_mounted", "true or false"},
};

// The fields of every repository type, in the API's wire names (core::repositoryFieldsOf says which a type takes);
// credentials only as references, like the password.
constexpr KeySpec kRepositoryKeys[] = {
    {"name", "a repository name", true},
    {"type", "a repository type: local, sftp, rest, s3, b2, azure, gcs, swift or rclone"},
    {"path", "the repository's path (local: absolute; sftp: on the server; others: inside the bucket, container or remote)"},
    {"password", "a password reference (file:///path, env://NAME or credential://NAME)", true},
    {"host", "the server's host name or address"},
    {"port", "a port from 1 to 65535"},
    {"user", "a user name"},
    {"url", "the server's URL (http:// or https://, without credentials)"},
    {"endpoint", "an S3 endpoint: HOST[:PORT] or http(s)://HOST[:PORT]"},
    {"bucket", "a bucket name"},
    {"container", "a container name"},
    {"region", "a region name"},
    {"access_key_id", "an access key id"},
    {"path_style", "true or false"},
    {"account_id", "a B2 account or application key id"},
    {"account_name", "an Azure storage account name"},
    {"endpoint_suffix", "an Azure endpoint suffix such as core.chinacloudapi.cn"},
    {"project_id", "a Google Cloud project id"},
    {"project_name", "a Swift project (tenant) name"},
    {"user_domain", "a Keystone domain name"},
    {"project_domain", "a Keystone domain name"},
    {"known_hosts", "the server's known_hosts line(s)"},
    {"host_key_check", "true or false"},
    {"rclone_type", "an rclone backend name"},
    {"rclone_options", "a map of rclone option names to values"},
    {"rclone_secrets", "a map of rclone option names to secret references"},
    {"ca_cert", "the absolute path of a PEM file of CA certificates"},
    {"insecure_tls", "true or false"},
    {"limit_upload", "an integer from 0 to 10485760 (KiB/s; 0: unlimited)"},
    {"limit_download", "an integer from 0 to 10485760 (KiB/s; 0: unlimited)"},
    {"compression", "one of auto, off, max"},
    {"private_key", "a private key reference (file:///path, env://NAME or credential://NAME)"},
    {"server_password", "a password reference (file:///path, env://NAME or credential://NAME)"},
    {"secret_access_key", "a secret access key reference (file:///path, env://NAME or credential://NAME)"},
    {"account_key", "an account key reference (file:///path, env://NAME or credential://NAME)"},
    {"sas_token", "a SAS token reference (file:///path, env://NAME or credential://NAME)"},
    {"service_account", "a service account key reference (file:///path, env://NAME or credential://NAME)"},
};
constexpr uint32_t kMaxRepositoryLimitKiB = 10u * 1024 * 1024;

constexpr KeySpec kScheduleKeys[] = {
    {"name", "a schedule name", true},
    {"kind", "one of backup, check, prune"},
    {"volume", "the name of the volume to back up"},
    {"repository", "the name of the repository", true},
    {"cron", "a cron expression (5 fields, or @hourly, @daily, @weekly, @monthly, @yearly)", true},
    {"timezone", "an IANA time zone name such as Europe/Berlin"},
    {"jitter_seconds", "an integer from 0 to 86400"},
    {"enabled", "true or false"},
    {"includes", "a list of paths inside the volume"},
    {"excludes", "a list of restic exclude patterns"},
    {"exclude_if_present", "a list of marker file names"},
    {"one_file_system", "true or false"},
    {"tags", "a list of tags"},
    {"compression", "one of auto, off, max"},
    {"retries", "an integer from 0 to 100"},
    {"retry_delay_seconds", "an integer from 1 to 86400"},
    {"read_data_subset", "n/t, a percentage or a size (check schedules)"},
    {"retention", "a map of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_tags"},
};

constexpr KeySpec kRetentionKeys[] = {
    {"keep_last", "an integer from 1 to 100000"},    {"keep_hourly", "an integer from 1 to 100000"},
    {"keep_daily", "an integer from 1 to 100000"},   {"keep_weekly", "an integer from 1 to 100000"},
    {"keep_monthly", "an integer from 1 to 100000"}, {"keep_yearly", "an integer from 1 to 100000"},
    {"keep_within", "a duration such as 30d or 1y6m"}, {"keep_tags", "a list of tags"},
};

constexpr std::string_view kScheduleKinds[] = {"backup", "check", "prune"};
constexpr std::string_view kBooleans[] = {"true", "false"};

constexpr std::string_view kLogLevels[] = {"debug", "info", "notice", "warning", "error"};
constexpr std::string_view kAuthorizationModes[] = {"auto", "polkit", "groups"};
constexpr std::string_view kDbusModes[] = {"auto", "off"};
constexpr size_t kMaxGroupNameLength = 32;
constexpr size_t kMaxCredentialNameLength = 255;
constexpr std::string_view kDeclaredIdPrefix = "cfg-";

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate a misspelt `word` most likely meant, if any is close enough.
template <typename Range, typename Project>
std::optional<std::string_view> closest(std::string_view word, const Range& candidates, Project project) {
  std::string lowered = lowercase(word);
  std::optional<std::string_view> best;
  size_t bestDistance = 0;
  for (const auto& candidate : candidates) {
    std::string_view name = project(candidate);
    size_t distance = editDistance(lowered, name);
    size_t limit = std::min<size_t>(2, std::max<size_t>(1, name.size() / 3));
    // An abbreviation ("warn", "state") is as likely a slip as a typo.
    if (lowered.size() >= 3 && name.starts_with(lowered)) distance = std::min<size_t>(distance, 1);
    if (distance <= limit && (!best || distance < bestDistance)) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Scalar:
      return core::quoteValue(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
  }
  return "something else";
}

bool isGroupName(std::string_view name) {
  if (name.empty() || name.size() > kMaxGroupNameLength) return false;
  if (name.back() == '$') name.remove_suffix(1);
  if (name.empty()) return false;
  auto lowerOrUnderscore = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  if (!lowerOrUnderscore(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lowerOrUnderscore(c) || (c >= '0' && c <= '9') || c == '-'; });
}

bool isEnvironmentName(std::string_view name) {
  auto letterOrUnderscore = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (name.empty() || !letterOrUnderscore(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return letterOrUnderscore(c) || (c >= '0' && c <= '9'); });
}

// Why `ref` is not a secret reference, or nothing when it is one. The secrets library
// resolves references; this only checks their form, so the config library does not need it.
// A value without a known scheme is probably the password itself and is never repeated.
// `what` names the secret in the message for a plain value ("password", "secret access key", ...).
std::optional<std::string> passwordReferenceProblem(std::string_view ref, std::string_view what = "password") {
  constexpr std::string_view kFile = "file://";
  constexpr std::string_view kEnv = "env://";
  constexpr std::string_view kCredential = "credential://";
  if (ref.starts_with(kFile)) {
    if (ref == "file:///")
      return std::string("the reference \"file:///\" names the root directory; write file:// followed by the path of "
                         "the password file, e.g. file:///etc/zerobyte/local.pass");
    try {
      core::validateAbsolutePath(ref.substr(kFile.size()), "the path in file://");
    } catch (const Error& e) {
      return std::string(e.what()) + "; write file:// followed by an absolute path, e.g. file:///etc/zerobyte/local.pass";
    }
    return std::nullopt;
  }
  if (ref.starts_with(kEnv)) {
    if (isEnvironmentName(ref.substr(kEnv.size()))) return std::nullopt;
    return "the reference " + core::quoteValue(ref) +
           " is not valid: write env:// followed by an environment variable name ([A-Za-z_][A-Za-z0-9_]*)";
  }
  if (ref.starts_with(kCredential)) {
    std::string_view name = ref.substr(kCredential.size());
    bool control = std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    if (!name.empty() && name != "." && name != ".." && name.size() <= kMaxCredentialNameLength && !control &&
        name.find('/') == std::string_view::npos)
      return std::nullopt;
    return "the reference " + core::quoteValue(ref) +
           " is not valid: write credential:// followed by the name of a systemd credential (no '/')";
  }
  const std::string w(what);
  return "expected a reference to the " + w + " (file:///absolute/path, env://NAME or credential://NAME), not the " + w +
         " itself; put the " + w + " in a file only root can read and write file:// and its path";
}

// One key and its value in a map being read, with the dotted name messages use ("daemon.socket").
struct Entry {
  const KeySpec& spec;
  YAML::Node key;  // copies: yaml-cpp's iterators hand out temporaries, and Nodes are cheap handles
  YAML::Node value;
  std::string field;

  std::string_view name() const { return spec.name; }
  // yaml-cpp places an empty value ("key:") at the next token, often on a later line; the
  // key is where the reader should look.
  YAML::Mark mark() const { return value.IsNull() ? key.Mark() : value.Mark(); }
};

class Loader {
 public:
  Loader(const std::string& fileName, const LoadOptions& options) : m_fileName(fileName), m_options(options) {}

  Config load(std::string_view yaml) {
    Config config;
    config.sourcePath = m_fileName;
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(std::string(yaml));
    } catch (const YAML::Exception& e) {
      report(e.mark, "YAML syntax error: " + e.msg);
      finish();
    }
    if (documents.size() > 1)
      report(documents[1].Mark(),
             "the file holds more than one YAML document (a second '---'); put all settings in one document");
    if (!documents.empty()) readTopLevel(documents[0], config);
    checkDeclaredVolumes(config);
    finish();
    return config;
  }

 private:
  using EntryHandler = std::function<void(const Entry&)>;
  using FirstLines = std::map<std::string, int, std::less<>>;

  void report(const YAML::Mark& mark, std::string message) {
    Diagnostic d;
    d.file = m_fileName;
    if (!mark.is_null() && mark.line >= 0) {
      d.line = mark.line + 1;
      d.column = mark.column + 1;
    }
    d.message = std::move(message);
    m_diagnostics.push_back(std::move(d));
  }

  void finish() {
    if (m_diagnostics.empty()) return;
    std::stable_sort(m_diagnostics.begin(), m_diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    throw ConfigError(std::move(m_diagnostics));
  }

  static std::string where(const std::string& context) {
    return context.empty() ? std::string("at the top level") : "in \"" + context + "\"";
  }

  // Calls `handle` once for each known key; reports keys that are not scalars, unknown keys,
  // repeated keys and missing required keys. `context` is "" at the top level, else "daemon",
  // "volumes[0]", ...
  void forEachEntry(const YAML::Node& map, const std::string& context, std::span<const KeySpec> keys,
                    const EntryHandler& handle) {
    FirstLines seenAtLine;
    for (const auto& pair : map) {
      const YAML::Node key = pair.first;
      if (!key.IsScalar()) {
        report(key.Mark(), "expected a key name " + where(context) + ", got " + describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      auto spec = std::find_if(keys.begin(), keys.end(), [&](const KeySpec& k) { return k.name == name; });
      if (spec == keys.end()) {
        reportUnknownKey(key, context, keys);
        continue;
      }
      auto [seen, first] = seenAtLine.emplace(name, key.Mark().line + 1);
      if (!first) {
        report(key.Mark(), "the key " + core::quoteValue(name) + " appears twice " + where(context) +
                               " (first at line " + std::to_string(seen->second) + "); keep one of them");
        continue;
      }
      handle(Entry{*spec, key, pair.second, context.empty() ? name : context + "." + name});
    }
    for (const KeySpec& k : keys)
      if (k.required && !seenAtLine.contains(k.name))
        report(map.Mark(), context + ": the key \"" + std::string(k.name) + "\" is missing; expected " +
                               std::string(k.expected));
  }

  void reportUnknownKey(const YAML::Node& key, const std::string& context, std::span<const KeySpec> keys) {
    std::string message =
        "unknown key " + core::quoteValue(key.Scalar()) + " " + where(context) + "; expected one of: ";
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i > 0) message += ", ";
      message += keys[i].name;
    }
    if (auto guess = closest(key.Scalar(), keys, [](const KeySpec& k) { return k.name; }))
      message += "; did you mean \"" + std::string(*guess) + "\"?";
    report(key.Mark(), std::move(message));
  }

  void reportExpected(const Entry& entry, std::string_view expected) {
    std::string message = entry.field + ": expected " + std::string(expected) + ", got " + describe(entry.value);
    if (entry.value.IsNull()) message += "; give a value or remove the key";
    report(entry.mark(), std::move(message));
  }

  // The scalar text of the value, or nothing after reporting that it is not a single value.
  std::optional<std::string> scalar(const Entry& entry) {
    if (entry.value.IsScalar()) return entry.value.Scalar();
    reportExpected(entry, entry.spec.expected);
    return std::nullopt;
  }

  // The scalar text of the value if `validate` accepts it; its Error message is reported otherwise.
  template <typename Validate>
  std::optional<std::string> validated(const Entry& entry, Validate validate) {
    auto text = scalar(entry);
    if (!text) return std::nullopt;
    try {
      validate(*text, entry.field);
    } catch (const Error& e) {
      report(entry.mark(), e.what());
      return std::nullopt;
    }
    return text;
  }

  std::optional<std::string> absolutePath(const Entry& entry) {
    return validated(entry, [](std::string_view text, std::string_view field) {
      core::validateAbsolutePath(text, field);
    });
  }

  std::optional<std::string> resourceName(const Entry& entry) {
    return validated(entry, [](std::string_view text, std::string_view field) { core::validateName(text, field); });
  }

  void integer(const Entry& entry, unsigned minimum, unsigned maximum, unsigned& out) {
    auto text = scalar(entry);
    if (!text) return;
    // Nine digits cannot overflow and are more than any limit here.
    bool digits = !text->empty() && text->size() <= 9 &&
                  std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
    unsigned long parsed = digits ? std::stoul(*text) : 0;
    if (!digits || parsed < minimum || parsed > maximum) {
      reportExpected(entry, entry.spec.expected);
      return;
    }
    out = static_cast<unsigned>(parsed);
  }

  // The value if it is one of `choices`; otherwise reports it, with the closest choice as a guess.
  template <size_t N>
  std::optional<std::string> oneOf(const Entry& entry, const std::string_view (&choices)[N]) {
    auto text = scalar(entry);
    if (!text) return std::nullopt;
    if (std::find(std::begin(choices), std::end(choices), *text) != std::end(choices)) return text;
    std::string message =
        entry.field + ": expected " + std::string(entry.spec.expected) + ", got " + describe(entry.value);
    if (auto guess = closest(*text, choices, [](std::string_view s) { return s; }))
      message += "; did you mean \"" + std::string(*guess) + "\"?";
    report(entry.mark(), std::move(message));
    return std::nullopt;
  }

  void groupName(const Entry& entry, std::string& out) {
    auto text = scalar(entry);
    if (!text) return;
    if (!isGroupName(*text))
      return reportExpected(entry,
                            "a Unix group name (up to 32 characters from a-z, 0-9, '_' and '-', starting with a "
                            "letter or '_')");
    out = *text;
  }

  void readTopLevel(const YAML::Node& root, Config& config) {
    if (root.IsNull()) return;
    if (!root.IsMap()) {
      report(root.Mark(), "expected a map with the keys daemon, volumes and repositories at the top level, got " +
                              describe(root));
      return;
    }
    forEachEntry(root, "", kTopLevelKeys, [&](const Entry& entry) {
      if (entry.value.IsNull()) return;  // "volumes:" with every example commented out
      if (entry.name() == "daemon") {
        if (!entry.value.IsMap()) return reportExpected(entry, entry.spec.expected);
        readDaemon(entry.value, config.daemon);
        return;
      }
      if (!entry.value.IsSequence()) return reportExpected(entry, "a list (entries starting with \"- \")");
      if (entry.name() == "volumes")
        readVolumes(entry.value, config.volumes);
      else if (entry.name() == "schedules")
        readSchedules(entry.value, config.schedules);
      else
        readRepositories(entry.value, config.repositories);
    });
  }

  void readDaemon(const YAML::Node& map, DaemonSettings& settings) {
    forEachEntry(map, "daemon", kDaemonKeys, [&](const Entry& entry) {
      std::string_view key = entry.name();
      auto setPath = [&](std::string& out) {
        if (auto path = absolutePath(entry)) out = *path;
      };
      if (key == "state_directory") {
        setPath(settings.stateDirectory);
      } else if (key == "runtime_directory") {
        setPath(settings.runtimeDirectory);
      } else if (key == "cache_directory") {
        setPath(settings.cacheDirectory);
      } else if (key == "socket") {
        setPath(settings.socketPath);
      } else if (key == "restic") {
        setPath(settings.resticBinary);
      } else if (key == "viewer_group") {
        groupName(entry, settings.viewerGroup);
      } else if (key == "operator_group") {
        groupName(entry, settings.operatorGroup);
      } else if (key == "admin_group") {
        groupName(entry, settings.adminGroup);
      } else if (key == "authorization") {
        if (auto text = oneOf(entry, kAuthorizationModes))
          settings.authorization = *text == "polkit"   ? AuthorizationMode::Polkit
                                   : *text == "groups" ? AuthorizationMode::Groups
                                                       : AuthorizationMode::Auto;
      } else if (key == "audit_max_age_days") {
        integer(entry, 1, 36500, settings.auditMaxAgeDays);
      } else if (key == "audit_max_entries") {
        // At most ~200 MB of the store's 1 GiB map: a full map would stop every write, jobs included.
        integer(entry, 100, 1000000, settings.auditMaxEntries);
      } else if (key == "job_history") {
        integer(entry, 1, 100000, settings.jobHistory);
      } else if (key == "cancel_grace_seconds") {
        integer(entry, 1, 3600, settings.cancelGraceSeconds);
      } else if (key == "repository_retry_seconds") {
        integer(entry, 5, 3600, settings.repositoryRetrySeconds);
      } else if (key == "max_concurrent_jobs") {
        integer(entry, 1, 64, settings.maxConcurrentJobs);
      } else if (key == "mount_helper_path") {
        if (auto dirs = stringList(entry, [](const std::string& d) {
              core::validateAbsolutePath(d, "mount helper directory");
              if (d.find(':') != std::string::npos)
                throw Error(ErrorCode::InvalidArgument, "a mount helper directory cannot contain ':'");
            })) {
          std::string path;
          for (const auto& d : *dirs) path += (path.empty() ? "" : ":") + d;
          if (path.empty()) report(entry.mark(), entry.field + ": give at least one directory");
          else settings.mountHelperPath = path;
        }
      } else if (key == "mount_timeout_seconds") {
        integer(entry, 1, 3600, settings.mountTimeoutSeconds);
      } else if (key == "mount_check_interval_seconds") {
        integer(entry, 0, 86400, settings.mountCheckIntervalSeconds);
      } else if (key == "mount_check_timeout_seconds") {
        integer(entry, 1, 600, settings.mountCheckTimeoutSeconds);
      } else if (key == "mount_options") {
        readMountOptionPolicy(entry, settings.mountOptions);
      } else if (key == "finished_job_seconds") {
        integer(entry, 0, 86400, settings.finishedJobSeconds);
      } else if (key == "dbus") {
        if (auto text = oneOf(entry, kDbusModes)) settings.dbus = *text == "auto";
      } else if (key == "log_level") {
        if (auto text = oneOf(entry, kLogLevels)) settings.logLevel = *text;
      }
    });
  }

  // daemon.mount_options: {driver: [option names]}; a driver given replaces its default list.
  void readMountOptionPolicy(const Entry& entry, core::MountOptionPolicy& policy) {
    if (!entry.value.IsMap()) return reportExpected(entry, entry.spec.expected);
    static constexpr std::string_view kDrivers[] = {"sshfs", "davfs", "rclone", "cifs", "nfs"};
    for (const auto& pair : entry.value) {
      const std::string driver = pair.first.IsScalar() ? pair.first.Scalar() : std::string();
      if (std::find(std::begin(kDrivers), std::end(kDrivers), driver) == std::end(kDrivers)) {
        report(pair.first.Mark(), entry.field + ": " + core::quoteValue(driver) + " is not a driver; use sshfs, davfs, rclone, cifs or nfs");
        continue;
      }
      if (!pair.second.IsSequence()) {
        report(pair.second.Mark(), entry.field + "." + driver + ": expected a list of option names, got " + describe(pair.second));
        continue;
      }
      std::vector<std::string> names;
      bool ok = true;
      for (const auto& item : pair.second) {
        const std::string name = item.IsScalar() ? item.Scalar() : std::string();
        const bool valid = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
        if (!valid) {
          report(item.Mark(), entry.field + "." + driver + ": " + core::quoteValue(name) +
                                  " is not an option name (letters, digits, '_' and '-'; no value, no comma)");
          ok = false;
          break;
        }
        names.push_back(name);
      }
      if (ok) policy[driver] = std::move(names);
    }
  }

  // Names are unique within a list; `kind` is "volume" or "repository".
  void checkUnique(FirstLines& firstLines, const std::string& name, const Entry& entry, std::string_view kind) {
    auto [existing, inserted] = firstLines.emplace(name, entry.value.Mark().line + 1);
    if (inserted) return;
    report(entry.mark(), entry.field + ": another " + std::string(kind) + " is already named " +
                             core::quoteValue(name) + " (line " + std::to_string(existing->second) + "); give each " +
                             std::string(kind) + " its own name");
  }

  // Calls `readEntry` with each map of a list and its context ("volumes[2]").
  void forEachListEntry(const YAML::Node& list, std::string_view section, std::string_view kind,
                        const std::function<void(const YAML::Node&, const std::string&)>& readEntry) {
    size_t index = 0;
    for (auto it = list.begin(); it != list.end(); ++it, ++index) {
      std::string context = std::string(section) + "[" + std::to_string(index) + "]";
      const YAML::Node entry = *it;
      if (!entry.IsMap()) {
        report(entry.Mark(), context + ": expected a map describing a " + std::string(kind) +
                                 " (with name, type, path, ...), got " + describe(entry));
        continue;
      }
      readEntry(entry, context);
    }
  }

  void readVolumes(const YAML::Node& list, std::vector<core::Volume>& volumes) {
    FirstLines firstLines;
    forEachListEntry(list, "volumes", "volume", [&](const YAML::Node& map, const std::string& context) {
      core::Volume volume;
      volume.declared = true;
      volume.ownerUid = 0;
      DeclaredVolume declared;
      declared.mark = map.Mark();
      declared.context = context;
      auto& r = volume.remote;
      auto text = [&](const Entry& entry, std::string& out) {
        if (auto value = scalar(entry)) out = *value;
      };
      forEachEntry(map, context, kVolumeKeys, [&](const Entry& entry) {
        const std::string_view key = entry.name();
        if (key != "name" && key != "type" && key != "path") declared.networkKeys.push_back(std::string(key));
        if (key == "name") {
          if (auto name = resourceName(entry)) {
            checkUnique(firstLines, *name, entry, "volume");
            volume.name = *name;
          }
        } else if (key == "type") {
          if (auto type = scalar(entry)) {
            if (core::isVolumeType(*type)) volume.type = *type;
            else reportExpected(entry, entry.spec.expected);
          }
        } else if (key == "path") {
          declared.hasPath = true;
          if (auto path = absolutePath(entry)) volume.path = *path;
        } else if (key == "driver") {
          text(entry, r.driver);
        } else if (key == "host") {
          text(entry, r.host);
        } else if (key == "port") {
          unsigned port = 0;
          integer(entry, 1, 65535, port);
          r.port = port;
        } else if (key == "user") {
          text(entry, r.user);
        } else if (key == "remote_path") {
          text(entry, r.remotePath);
        } else if (key == "share") {
          text(entry, r.share);
        } else if (key == "domain") {
          text(entry, r.domain);
        } else if (key == "smb_version") {
          text(entry, r.smbVersion);
        } else if (key == "guest") {
          boolean(entry, r.guest);
        } else if (key == "url") {
          text(entry, r.url);
        } else if (key == "tls_verify") {
          boolean(entry, r.tlsVerify);
        } else if (key == "nfs_version") {
          text(entry, r.nfsVersion);
        } else if (key == "known_hosts") {
          text(entry, r.knownHosts);
        } else if (key == "host_key_check") {
          boolean(entry, r.hostKeyCheck);
        } else if (key == "password") {
          readPassword(entry, volume.passwordRef);
        } else if (key == "private_key") {
          readPassword(entry, volume.privateKeyRef);
        } else if (key == "rclone_type") {
          text(entry, r.rcloneType);
        } else if (key == "rclone_options" || key == "rclone_secrets") {
          readRcloneOptions(entry, r.rcloneOptions);
        } else if (key == "mount_options") {
          if (auto v = stringList(entry, [](const std::string&) {})) r.mountOptions = *v;
        } else if (key == "read_write") {
          boolean(entry, r.readWrite);
        } else if (key == "auto_remount") {
          boolean(entry, r.autoRemount);
        } else if (key == "keep_mounted") {
          boolean(entry, r.keepMounted);
        }
      });
      volume.id = std::string(kDeclaredIdPrefix) + volume.name;
      declared.index = volumes.size();
      m_declaredVolumes.push_back(std::move(declared));
      volumes.push_back(std::move(volume));
    });
  }

  // After the whole file (the daemon's mount option allow-list may come after the volumes): each declared volume's
  // fields checked for its type, reported at its entry.
  void checkDeclaredVolumes(Config& config) {
    for (const auto& d : m_declaredVolumes) {
      core::Volume& v = config.volumes[d.index];
      if (v.type == "directory") {
        if (!d.hasPath) report(d.mark, d.context + ": the key \"path\" is missing; expected the absolute path of the directory to back up");
        if (!d.networkKeys.empty())
          report(d.mark, d.context + ": \"" + d.networkKeys.front() + "\" does not apply to a directory volume (it takes path)");
        continue;
      }
      if (d.hasPath) {
        report(d.mark, d.context + ": a " + v.type + " volume has no path (use remote_path for the path on the server)");
        continue;
      }
      bool ok = true;
      for (const auto& key : d.networkKeys) {
        if (!core::appliesTo(v.type, key)) {
          report(d.mark, d.context + ": \"" + key + "\" does not apply to a " + v.type + " volume");
          ok = false;
        }
      }
      if (!ok) continue;
      if (v.type == "smb" && v.remote.driver.empty() && m_options.kernelCanMount && !m_options.kernelCanMount("cifs"))
        v.remote.driver = "rclone";
      try {
        core::validateRemote(v.type, v.remote, {!v.passwordRef.empty(), !v.privateKeyRef.empty()}, config.daemon.mountOptions);
      } catch (const Error& e) {
        report(d.mark, d.context + ": " + e.what());
      }
    }
  }

  // rclone_options (NAME: VALUE) or rclone_secrets (NAME: reference) of a volume or a repository.
  void readRcloneOptions(const Entry& entry, std::vector<core::RcloneOption>& out) {
    if (!entry.value.IsMap()) return reportExpected(entry, entry.spec.expected);
    const bool secret = entry.name() == "rclone_secrets";
    for (const auto& pair : entry.value) {
      if (!pair.first.IsScalar() || !pair.second.IsScalar()) {
        report(pair.first.Mark(), entry.field + ": expected NAME: VALUE pairs");
        continue;
      }
      if (secret) {
        if (auto problem = passwordReferenceProblem(pair.second.Scalar(), "secret")) {
          report(pair.second.Mark(), entry.field + "." + pair.first.Scalar() + ": " + *problem);
          continue;
        }
      }
      out.push_back({pair.first.Scalar(), pair.second.Scalar(), secret});
    }
  }

  // The keys a repository type takes, in this file's spelling (credentials without _ref, rclone_secrets).
  static std::string repositoryKeysOf(const std::string& type) {
    std::string list;
    for (const auto& field : core::repositoryFieldsOf(type)) {
      if (field.ends_with("_ref")) continue;
      list += (list.empty() ? "" : ", ") + (field == "rclone_secret_options" ? std::string("rclone_secrets") : field);
    }
    return list;
  }

  void readRepositories(const YAML::Node& list, std::vector<core::Repository>& repositories) {
    FirstLines firstLines;
    forEachListEntry(list, "repositories", "repository", [&](const YAML::Node& map, const std::string& context) {
      const size_t problemsBefore = m_diagnostics.size();
      core::Repository repository;
      repository.declared = true;
      repository.ownerUid = 0;
      // The type says which keys apply and what path is; it may stand after them.
      bool typeKnown = true;
      if (const YAML::Node type = map["type"]) {
        typeKnown = type.IsScalar() && core::isRepositoryType(type.Scalar());
        if (typeKnown) repository.type = type.Scalar();
      }
      const auto& credentialNames = core::allRepositoryCredentials();
      std::vector<std::string> credentials;  // the names of the credentials given
      bool hasPath = false;
      auto& r = repository.remote;
      auto text = [&](const Entry& entry, std::string& out) {
        if (auto value = scalar(entry)) out = *value;
      };
      auto limit = [&](const Entry& entry, uint32_t& out) {
        unsigned value = 0;
        integer(entry, 0, kMaxRepositoryLimitKiB, value);
        out = value;
      };
      forEachEntry(map, context, kRepositoryKeys, [&](const Entry& entry) {
        const std::string key(entry.name());
        if (key == "name") {
          if (auto name = resourceName(entry)) {
            checkUnique(firstLines, *name, entry, "repository");
            repository.name = *name;
          }
          return;
        }
        if (key == "type") {
          if (!typeKnown) reportExpected(entry, entry.spec.expected);
          return;
        }
        if (key == "password") return readPassword(entry, repository.passwordRef);
        if (!typeKnown) return;  // which keys apply is unknown
        if (!core::repositoryFieldApplies(repository.type, key))
          return report(entry.key.Mark(), context + ": \"" + key + "\" does not apply to a " + repository.type +
                                              " repository (it takes " + repositoryKeysOf(repository.type) + ")");
        if (std::find(credentialNames.begin(), credentialNames.end(), key) != credentialNames.end()) {
          std::string ref;
          std::string what = key;
          std::replace(what.begin(), what.end(), '_', ' ');
          readPassword(entry, ref, what);
          if (ref.empty()) return;
          repository.credentials.push_back(core::RepositoryCredential{key, {}, ref});
          credentials.push_back(key);
        } else if (key == "path") {
          hasPath = true;
          if (repository.type == "local") {
            if (auto path = absolutePath(entry)) repository.path = *path;
          } else {
            text(entry, repository.path);
          }
        } else if (key == "host") {
          text(entry, r.host);
        } else if (key == "port") {
          unsigned port = 0;
          integer(entry, 1, 65535, port);
          r.port = port;
        } else if (key == "user") {
          text(entry, r.user);
        } else if (key == "url") {
          text(entry, r.url);
        } else if (key == "endpoint") {
          text(entry, r.endpoint);
        } else if (key == "bucket" || key == "container") {
          text(entry, r.bucket);
        } else if (key == "region") {
          text(entry, r.region);
        } else if (key == "access_key_id") {
          text(entry, r.accessKeyId);
        } else if (key == "path_style") {
          boolean(entry, r.pathStyle);
        } else if (key == "account_id" || key == "account_name") {
          text(entry, r.account);
        } else if (key == "endpoint_suffix") {
          text(entry, r.endpointSuffix);
        } else if (key == "project_id" || key == "project_name") {
          text(entry, r.project);
        } else if (key == "user_domain") {
          text(entry, r.userDomain);
        } else if (key == "project_domain") {
          text(entry, r.projectDomain);
        } else if (key == "known_hosts") {
          text(entry, r.knownHosts);
        } else if (key == "host_key_check") {
          boolean(entry, r.hostKeyCheck);
        } else if (key == "rclone_type") {
          text(entry, r.rcloneType);
        } else if (key == "rclone_options" || key == "rclone_secrets") {
          readRcloneOptions(entry, r.rcloneOptions);
        } else if (key == "ca_cert") {
          if (auto path = absolutePath(entry)) r.caCert = *path;
        } else if (key == "insecure_tls") {
          boolean(entry, r.insecureTls);
        } else if (key == "limit_upload") {
          limit(entry, r.limitUploadKiB);
        } else if (key == "limit_download") {
          limit(entry, r.limitDownloadKiB);
        } else if (key == "compression") {
          checked(entry, [](std::string_view value) { core::validateCompression(value); }, r.compression);
        }
      });
      if (typeKnown && repository.type == "local" && !hasPath)
        report(map.Mark(), context + ": the key \"path\" is missing; expected the absolute path of the restic repository");
      // The repository as a whole, as the API checks it; only when its keys read well (one report per mistake).
      if (typeKnown && m_diagnostics.size() == problemsBefore) {
        try {
          core::validateRepository(repository, credentials);
        } catch (const Error& e) {
          report(map.Mark(), context + ": " + e.what());
        }
      }
      repository.id = std::string(kDeclaredIdPrefix) + repository.name;
      repositories.push_back(std::move(repository));
    });
  }

  // Each item of a list value through `validate` (which throws Error); reports the first bad one where it stands.
  template <typename Validate>
  std::optional<std::vector<std::string>> stringList(const Entry& entry, Validate validate) {
    if (!entry.value.IsSequence()) {
      reportExpected(entry, entry.spec.expected);
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : entry.value) {
      if (!item.IsScalar()) {
        report(item.Mark(), entry.field + ": expected " + std::string(entry.spec.expected) + ", got " + describe(item) + " in the list");
        return std::nullopt;
      }
      try {
        validate(item.Scalar());
      } catch (const Error& e) {
        report(item.Mark(), entry.field + ": " + e.what());
        return std::nullopt;
      }
      out.push_back(item.Scalar());
    }
    if (out.size() > 100) {
      report(entry.mark(), entry.field + ": more than 100 entries");
      return std::nullopt;
    }
    return out;
  }

  void boolean(const Entry& entry, bool& out) {
    if (auto text = oneOf(entry, kBooleans)) out = *text == "true";
  }

  template <typename Validate>
  void checked(const Entry& entry, Validate validate, std::string& out) {
    if (auto text = validated(entry, [&](std::string_view value, std::string_view) { validate(value); })) out = *text;
  }

  void readRetention(const Entry& retention, core::RetentionPolicy& policy) {
    if (!retention.value.IsMap()) return reportExpected(retention, retention.spec.expected);
    std::pair<const char*, std::optional<unsigned>*> counts[] = {
        {"keep_last", &policy.keepLast},     {"keep_hourly", &policy.keepHourly},   {"keep_daily", &policy.keepDaily},
        {"keep_weekly", &policy.keepWeekly}, {"keep_monthly", &policy.keepMonthly}, {"keep_yearly", &policy.keepYearly}};
    forEachEntry(retention.value, retention.field, kRetentionKeys, [&](const Entry& entry) {
      for (auto& [key, field] : counts)
        if (entry.name() == key) {
          unsigned value = 0;
          integer(entry, 1, core::kMaxRetentionCount, value);
          if (value) *field = value;
          return;
        }
      if (entry.name() == "keep_within") {
        if (auto text = scalar(entry)) policy.keepWithin = *text;
      } else if (entry.name() == "keep_tags") {
        if (auto tags = stringList(entry, [](const std::string& t) { core::validateTag(t); })) policy.keepTags = *tags;
      }
    });
    try {
      core::validateRetention(policy);
    } catch (const Error& e) {
      report(retention.mark(), retention.field + ": " + e.what());
    }
  }

  void readSchedules(const YAML::Node& list, std::vector<core::Schedule>& schedules) {
    FirstLines firstLines;
    forEachListEntry(list, "schedules", "schedule", [&](const YAML::Node& map, const std::string& context) {
      core::Schedule schedule;
      schedule.declared = true;
      schedule.ownerUid = 0;
      schedule.timeZone = core::systemTimeZone();
      std::optional<YAML::Mark> volumeMark, subsetMark;
      std::vector<std::pair<std::string, YAML::Mark>> backupOnly;
      forEachEntry(map, context, kScheduleKeys, [&](const Entry& entry) {
        const std::string_view key = entry.name();
        if (key == "name") {
          if (auto name = resourceName(entry)) {
            checkUnique(firstLines, *name, entry, "schedule");
            schedule.name = *name;
          }
        } else if (key == "kind") {
          if (auto kind = oneOf(entry, kScheduleKinds)) schedule.kind = *core::scheduleKindFromString(*kind);
        } else if (key == "volume") {
          volumeMark = entry.mark();
          if (auto name = resourceName(entry)) schedule.volumeName = *name;
        } else if (key == "repository") {
          if (auto name = resourceName(entry)) schedule.repositoryName = *name;
        } else if (key == "cron") {
          checked(entry, [](std::string_view text) { core::CronExpression::parse(text); }, schedule.cron);
        } else if (key == "timezone") {
          checked(entry, [](std::string_view text) { core::validateTimeZone(text); }, schedule.timeZone);
        } else if (key == "jitter_seconds") {
          integer(entry, 0, 86400, schedule.jitterSeconds);
        } else if (key == "enabled") {
          boolean(entry, schedule.enabled);
        } else if (key == "retries") {
          integer(entry, 0, 100, schedule.retries);
        } else if (key == "retry_delay_seconds") {
          integer(entry, 1, 86400, schedule.retryDelaySeconds);
        } else if (key == "read_data_subset") {
          subsetMark = entry.mark();
          checked(entry, [](std::string_view text) { core::validateReadDataSubset(text); }, schedule.readDataSubset);
        } else {
          backupOnly.emplace_back(std::string(key), entry.mark());
          if (key == "includes") {
            if (auto v = stringList(entry, [](const std::string& p) { core::validateIncludePath(p); })) schedule.includes = *v;
          } else if (key == "excludes") {
            if (auto v = stringList(entry, [](const std::string& p) { core::validateExcludePattern(p); })) schedule.excludes = *v;
          } else if (key == "exclude_if_present") {
            if (auto v = stringList(entry, [](const std::string& m) { core::validateMarkerName(m); })) schedule.excludeIfPresent = *v;
          } else if (key == "tags") {
            if (auto v = stringList(entry, [](const std::string& t) { core::validateUserTag(t, "tags"); })) schedule.tags = *v;
          } else if (key == "one_file_system") {
            boolean(entry, schedule.oneFileSystem);
          } else if (key == "compression") {
            checked(entry, [](std::string_view text) { core::validateCompression(text); }, schedule.compression);
          } else if (key == "retention") {
            readRetention(entry, schedule.retention);
          }
        }
      });
      const std::string kind(core::toString(schedule.kind));
      if (schedule.kind == core::ScheduleKind::Backup && schedule.volumeName.empty() && !volumeMark)
        report(map.Mark(), context + ": the key \"volume\" is missing; a backup schedule names the volume it backs up");
      if (schedule.kind != core::ScheduleKind::Backup) {
        if (volumeMark) report(*volumeMark, context + ".volume: a " + kind + " schedule is about the repository alone; remove the key");
        for (const auto& [key, mark] : backupOnly)
          report(mark, context + "." + key + ": only backup schedules have it; this one runs " + kind);
      }
      if (subsetMark && schedule.kind != core::ScheduleKind::Check)
        report(*subsetMark, context + ".read_data_subset: only check schedules read data; this one runs " + kind);
      schedule.id = std::string(kDeclaredIdPrefix) + schedule.name;
      schedules.push_back(std::move(schedule));
    });
  }

  void readPassword(const Entry& entry, std::string& out, std::string_view what = "password") {
    if (!entry.value.IsScalar()) {
      // Never describe() this value: it may be the password itself.
      std::string got = entry.value.IsNull() ? "nothing" : entry.value.IsMap() ? "a map" : "a list";
      return report(entry.mark(), entry.field + ": expected " + std::string(entry.spec.expected) + ", got " + got);
    }
    if (auto problem = passwordReferenceProblem(entry.value.Scalar(), what))
      return report(entry.mark(), entry.field + ": " + *problem);
    out = entry.value.Scalar();
  }

  struct DeclaredVolume {
    YAML::Mark mark;
    std::string context;
    size_t index = 0;
    bool hasPath = false;
    std::vector<std::string> networkKeys;  // the keys given besides name, type and path
  };
  std::vector<DeclaredVolume> m_declaredVolumes;
  std::string m_fileName;
  LoadOptions m_options;
  std::vector<Diagnostic> m_diagnostics;
};

std::string joinDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    if (!out.empty()) out += '\n';
    out += d.str();
  }
  return out;
}

[[noreturn]] void throwUnreadable(const std::string& path, int error) {
  Diagnostic d;
  d.file = path;
  d.message = "cannot read the configuration file: " + std::generic_category().message(error);
  throw ConfigError({std::move(d)});
}

}  // namespace

std::string_view toString(AuthorizationMode mode) {
  switch (mode) {
    case AuthorizationMode::Auto: return "auto";
    case AuthorizationMode::Polkit: return "polkit";
    case AuthorizationMode::Groups: return "groups";
  }
  return "auto";
}

std::string Diagnostic::str() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

ConfigError::ConfigError(std::vector<Diagnostic> diagnostics)
    : Error(ErrorCode::ConfigInvalid, joinDiagnostics(diagnostics)), m_diagnostics(std::move(diagnostics)) {}

Config loadFile(const std::string& path, const LoadOptions& options) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) throwUnreadable(path, errno);
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      throwUnreadable(path, errno);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return loadString(text, path, options);
}

Config loadString(std::string_view yaml, const std::string& fileName, const LoadOptions& options) {
  return Loader(fileName, options).load(yaml);
}

}  // namespace zerobyte::config
