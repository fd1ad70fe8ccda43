// The configuration loader: the shipped file, the mapping onto the structs, and file:line:column for every mistake.
#include "daemon/config/config.h"
#include "daemon/core/cron.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace zerobyte::config {
namespace {

using zbtest::unit::contains;

const std::string kDataDir = ZB_TEST_DATA_DIR "/config";

// The diagnostics of the ConfigError that loading `yaml` throws; fails the test if it loads.
std::vector<Diagnostic> diagnosticsOf(std::string_view yaml, const LoadOptions& options = {}) {
  try {
    loadString(yaml, "zerobyte.yaml", options);
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.code(), ErrorCode::ConfigInvalid);
    return e.diagnostics();
  }
  ADD_FAILURE() << "expected ConfigError for:\n" << yaml;
  return {};
}

// The one diagnostic loading `yaml` gives, as "file:line:column: message".
std::string onlyDiagnostic(std::string_view yaml) {
  auto diagnostics = diagnosticsOf(yaml);
  if (diagnostics.size() != 1) {
    std::string all;
    for (const auto& d : diagnostics) all += d.str() + "\n";
    ADD_FAILURE() << "expected one diagnostic, got " << diagnostics.size() << ":\n" << all;
    return all;
  }
  return diagnostics[0].str();
}

TEST(ConfigShippedFile, LoadsWithoutErrorsAndGivesTheDefaults) {
  Config config = loadFile(ZB_SOURCE_DIR "/etc/zerobyte.yaml");
  EXPECT_EQ(config.sourcePath, ZB_SOURCE_DIR "/etc/zerobyte.yaml");
  DaemonSettings defaults;
  EXPECT_EQ(config.daemon.stateDirectory, defaults.stateDirectory);
  EXPECT_EQ(config.daemon.adminGroup, "zerobyte-admins");
  EXPECT_EQ(config.daemon.viewerGroup, "zerobyte-viewers");
  EXPECT_EQ(config.daemon.operatorGroup, "zerobyte-operators");
  EXPECT_EQ(config.daemon.authorization, AuthorizationMode::Auto);
  EXPECT_EQ(config.daemon.auditMaxAgeDays, 180u);
  EXPECT_EQ(config.daemon.auditMaxEntries, 100000u);
  EXPECT_EQ(config.daemon.jobHistory, 1000u);
  EXPECT_EQ(config.daemon.cancelGraceSeconds, 10u);
  EXPECT_EQ(config.daemon.maxConcurrentJobs, 4u);
  EXPECT_EQ(config.daemon.logLevel, "info");
  EXPECT_TRUE(config.volumes.empty());
  EXPECT_TRUE(config.repositories.empty());
}

// The commented examples in the shipped file must be valid once uncommented.
TEST(ConfigShippedFile, UncommentedSettingsAndExamplesLoadAndMatchTheDefaults) {
  std::ifstream in(ZB_SOURCE_DIR "/etc/zerobyte.yaml");
  // An indented "# key: value" (or "# - key: value") is a commented setting; prose starts otherwise.
  const std::regex commentedSetting("^( +)# ( *(- )?[a-z_]+:( [^ ].*)?)$");
  std::string text, line;
  int uncommented = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, commentedSetting)) {
      line = m[1].str() + m[2].str();
      ++uncommented;
    }
    text += line + "\n";
  }
  EXPECT_EQ(uncommented, 18 + 3 + 4 + 9 + 8 + 13 + 10) << text;
  Config config = loadString(text, "uncommented.yaml");
  DaemonSettings defaults;
  EXPECT_EQ(config.daemon.stateDirectory, "/var/lib/zerobyte");
  EXPECT_EQ(config.daemon.runtimeDirectory, "/run/zerobyte");
  EXPECT_EQ(config.daemon.cacheDirectory, "/var/cache/zerobyte");
  EXPECT_EQ(config.daemon.socketPath, "/run/zerobyte/zerobyted.sock");
  EXPECT_EQ(config.daemon.resticBinary, "/usr/bin/restic");
  EXPECT_EQ(config.daemon.adminGroup, defaults.adminGroup);
  EXPECT_EQ(config.daemon.viewerGroup, defaults.viewerGroup);
  EXPECT_EQ(config.daemon.operatorGroup, defaults.operatorGroup);
  EXPECT_EQ(config.daemon.authorization, defaults.authorization);
  EXPECT_EQ(config.daemon.auditMaxAgeDays, defaults.auditMaxAgeDays);
  EXPECT_EQ(config.daemon.auditMaxEntries, defaults.auditMaxEntries);
  EXPECT_EQ(config.daemon.jobHistory, defaults.jobHistory);
  EXPECT_EQ(config.daemon.cancelGraceSeconds, defaults.cancelGraceSeconds);
  EXPECT_EQ(config.daemon.repositoryRetrySeconds, defaults.repositoryRetrySeconds);
  EXPECT_EQ(config.daemon.maxConcurrentJobs, defaults.maxConcurrentJobs);
  EXPECT_EQ(config.daemon.finishedJobSeconds, defaults.finishedJobSeconds);
  EXPECT_EQ(config.daemon.dbus, defaults.dbus);
  EXPECT_EQ(config.daemon.logLevel, defaults.logLevel);
  EXPECT_EQ(config.daemon.mountHelperPath, defaults.mountHelperPath);
  EXPECT_EQ(config.daemon.mountTimeoutSeconds, defaults.mountTimeoutSeconds);
  EXPECT_EQ(config.daemon.mountCheckIntervalSeconds, defaults.mountCheckIntervalSeconds);
  EXPECT_EQ(config.daemon.mountCheckTimeoutSeconds, defaults.mountCheckTimeoutSeconds);
  EXPECT_EQ(config.daemon.mountOptions, defaults.mountOptions);
  ASSERT_EQ(config.volumes.size(), 1u);
  EXPECT_EQ(config.volumes[0].name, "etc");
  ASSERT_EQ(config.repositories.size(), 3u);
  EXPECT_EQ(config.repositories[0].passwordRef, "file:///etc/zerobyte/local.pass");
  EXPECT_EQ(config.repositories[1].type, "s3");
  ASSERT_EQ(config.repositories[1].credentials.size(), 1u);
  EXPECT_EQ(config.repositories[1].credentials[0].ref, "file:///etc/zerobyte/offsite.secret");
  EXPECT_EQ(config.repositories[2].type, "sftp");
  ASSERT_EQ(config.repositories[2].credentials.size(), 1u);
  EXPECT_EQ(config.repositories[2].credentials[0].name, "private_key");
  ASSERT_EQ(config.schedules.size(), 2u);
  EXPECT_EQ(config.schedules[0].retention.keepMonthly, 12u);
  EXPECT_EQ(config.schedules[1].kind, core::ScheduleKind::Check);
}

TEST(ConfigLoad, FullFileMapsOntoTheStructs) {
  Config config = loadFile(kDataDir + "/full.yaml");
  EXPECT_EQ(config.sourcePath, kDataDir + "/full.yaml");
  EXPECT_EQ(config.daemon.stateDirectory, "/srv/zerobyte/state");
  EXPECT_EQ(config.daemon.runtimeDirectory, "/run/zb");
  EXPECT_EQ(config.daemon.cacheDirectory, "/srv/zerobyte/cache");
  EXPECT_EQ(config.daemon.socketPath, "/run/zb/ctl.sock");
  EXPECT_EQ(config.daemon.resticBinary, "/opt/restic/bin/restic");
  EXPECT_EQ(config.daemon.adminGroup, "backup-admins");
  EXPECT_EQ(config.daemon.authorization, AuthorizationMode::Groups);
  EXPECT_EQ(config.daemon.viewerGroup, "backup-viewers");
  EXPECT_EQ(config.daemon.operatorGroup, "backup-operators");
  EXPECT_EQ(config.daemon.auditMaxAgeDays, 365u);
  EXPECT_EQ(config.daemon.auditMaxEntries, 5000u);
  EXPECT_EQ(config.daemon.jobHistory, 250u);
  EXPECT_EQ(config.daemon.cancelGraceSeconds, 30u);
  EXPECT_EQ(config.daemon.maxConcurrentJobs, 2u);
  EXPECT_EQ(config.daemon.logLevel, "debug");

  ASSERT_EQ(config.volumes.size(), 2u);
  const core::Volume& etc = config.volumes[0];
  EXPECT_EQ(etc.id, "cfg-etc");
  EXPECT_EQ(etc.name, "etc");
  EXPECT_EQ(etc.type, "directory");
  EXPECT_EQ(etc.path, "/etc");
  EXPECT_TRUE(etc.declared);
  EXPECT_EQ(etc.ownerUid, 0u);
  EXPECT_EQ(config.volumes[1].id, "cfg-home");
  EXPECT_EQ(config.volumes[1].type, "directory") << "type defaults to directory";
  EXPECT_EQ(config.volumes[1].path, "/home");

  ASSERT_EQ(config.repositories.size(), 3u);
  const core::Repository& local = config.repositories[0];
  EXPECT_EQ(local.id, "cfg-local");
  EXPECT_EQ(local.name, "local");
  EXPECT_EQ(local.type, "local");
  EXPECT_EQ(local.path, "/srv/backup/restic");
  EXPECT_EQ(local.passwordRef, "file:///etc/zerobyte/local.pass");
  EXPECT_TRUE(local.declared);
  EXPECT_EQ(local.ownerUid, 0u);
  EXPECT_TRUE(local.password.empty());
  EXPECT_EQ(config.repositories[1].passwordRef, "env://USB_RESTIC_PASSWORD");
  EXPECT_EQ(config.repositories[1].type, "local");
  EXPECT_EQ(config.repositories[2].passwordRef, "credential://nas-password");
}

TEST(ConfigLoad, EmptyOrCommentOnlyFileIsAnEmptyConfig) {
  for (std::string_view yaml : {"", "\n\n", "# nothing here\n", "---\n", "~\n"}) {
    Config config = loadString(yaml, "zerobyte.yaml");
    EXPECT_EQ(config.daemon.jobHistory, 1000u);
    EXPECT_TRUE(config.volumes.empty());
    EXPECT_TRUE(config.repositories.empty());
  }
}

TEST(ConfigLoad, EmptySectionsAreAllowed) {
  Config config = loadString("daemon:\nvolumes:\nrepositories: []\n", "zerobyte.yaml");
  EXPECT_TRUE(config.volumes.empty());
}

TEST(ConfigLoad, AcceptsFlowStyleAndQuotedValues) {
  Config config = loadString(
      "daemon: {job_history: \"42\", log_level: 'warning'}\n"
      "volumes: [{name: data, path: \"/srv/my data\"}]\n",
      "zerobyte.yaml");
  EXPECT_EQ(config.daemon.jobHistory, 42u);
  EXPECT_EQ(config.daemon.logLevel, "warning");
  ASSERT_EQ(config.volumes.size(), 1u);
  EXPECT_EQ(config.volumes[0].path, "/srv/my data");
}

TEST(ConfigErrors, UnknownKeyPointsAtTheKeyAndSuggestsTheClosestSpelling) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  log_level: info\n"
                           "  stat_directory: /var/lib/zerobyte\n"),
            "zerobyte.yaml:3:3: unknown key \"stat_directory\" in \"daemon\"; expected one of: state_directory, "
            "runtime_directory, cache_directory, socket, restic, authorization, viewer_group, operator_group, "
            "admin_group, job_history, cancel_grace_seconds, repository_retry_seconds, max_concurrent_jobs, mount_helper_path, mount_timeout_seconds, mount_check_interval_seconds, mount_check_timeout_seconds, mount_options, finished_job_seconds, dbus, log_level, audit_max_age_days, "
            "audit_max_entries; did you "
            "mean \"state_directory\"?");
}

TEST(ConfigErrors, UnknownKeyWithoutCloseSpellingHasNoSuggestion) {
  std::string d = onlyDiagnostic("timers: []\n");
  EXPECT_TRUE(d.starts_with("zerobyte.yaml:1:1: unknown key \"timers\" at the top level; expected one of: daemon, "
                            "volumes, repositories, schedules"))
      << d;
  EXPECT_FALSE(contains(d, "did you mean")) << d;
  EXPECT_TRUE(contains(onlyDiagnostic("volume: []\n"), "did you mean \"volumes\"?"));
}

TEST(ConfigSchedules, EveryKeyMapsOntoTheScheduleRecord) {
  Config config = loadString(R"(schedules:
  - name: nightly
    volume: home
    repository: main
    cron: "30 2 * * *"
    timezone: Europe/Berlin
    jitter_seconds: 600
    enabled: false
    includes: [Documents, photos/2024]
    excludes: ["*.tmp"]
    exclude_if_present: [.nobackup]
    one_file_system: true
    tags: [daily]
    compression: max
    retries: 2
    retry_delay_seconds: 60
    retention: {keep_last: 3, keep_daily: 7, keep_within: 30d, keep_tags: [pinned]}
  - name: weekly-check
    kind: check
    repository: main
    cron: "@weekly"
    read_data_subset: 10%
)",
                             "zerobyte.yaml");
  ASSERT_EQ(config.schedules.size(), 2u);
  const core::Schedule& s = config.schedules[0];
  EXPECT_EQ(s.id, "cfg-nightly");
  EXPECT_TRUE(s.declared);
  EXPECT_EQ(s.ownerUid, 0u);
  EXPECT_EQ(s.kind, core::ScheduleKind::Backup);
  EXPECT_EQ(s.volumeName, "home");
  EXPECT_EQ(s.repositoryName, "main");
  EXPECT_EQ(s.cron, "30 2 * * *");
  EXPECT_EQ(s.timeZone, "Europe/Berlin");
  EXPECT_EQ(s.jitterSeconds, 600u);
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.includes, (std::vector<std::string>{"Documents", "photos/2024"}));
  EXPECT_EQ(s.excludes, (std::vector<std::string>{"*.tmp"}));
  EXPECT_EQ(s.excludeIfPresent, (std::vector<std::string>{".nobackup"}));
  EXPECT_TRUE(s.oneFileSystem);
  EXPECT_EQ(s.tags, (std::vector<std::string>{"daily"}));
  EXPECT_EQ(s.compression, "max");
  EXPECT_EQ(s.retries, 2u);
  EXPECT_EQ(s.retryDelaySeconds, 60u);
  EXPECT_EQ(s.retention.keepLast, 3u);
  EXPECT_EQ(s.retention.keepDaily, 7u);
  EXPECT_FALSE(s.retention.keepWeekly);
  EXPECT_EQ(s.retention.keepWithin, "30d");
  EXPECT_EQ(s.retention.keepTags, (std::vector<std::string>{"pinned"}));
  const core::Schedule& c = config.schedules[1];
  EXPECT_EQ(c.kind, core::ScheduleKind::Check);
  EXPECT_EQ(c.readDataSubset, "10%");
  EXPECT_TRUE(c.volumeName.empty());
  EXPECT_EQ(c.timeZone, core::systemTimeZone());
}

TEST(ConfigSchedules, EachFaultIsReportedWhereItStands) {
  const std::string base = "schedules:\n  - name: nightly\n    repository: main\n";
  EXPECT_EQ(onlyDiagnostic(base + "    volume: home\n    cron: \"30 25 * * *\"\n").substr(0, 39),
            "zerobyte.yaml:5:11: cron field 2 (hour)");
  EXPECT_TRUE(contains(onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    timezone: Mars/Olympus\n"),
                       "zerobyte.yaml:6:15: "))
      << onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    timezone: Mars/Olympus\n");
  EXPECT_EQ(onlyDiagnostic(base + "    cron: \"@daily\"\n"),
            "zerobyte.yaml:2:5: schedules[0]: the key \"volume\" is missing; a backup schedule names the volume it backs up");
  EXPECT_TRUE(contains(onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    includes: [../etc]\n"),
                       "zerobyte.yaml:6:16: schedules[0].includes: include path \"../etc\" leaves the volume"));
  EXPECT_TRUE(contains(onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    tags: [\"zerobyte-schedule:x\"]\n"),
                       "is reserved"));
  EXPECT_TRUE(contains(onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    retention: {keep_within: soon}\n"),
                       "schedules[0].retention: "));
  EXPECT_TRUE(contains(onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    retention: {keep_dayly: 3}\n"),
                       "did you mean \"keep_daily\"?"));
  EXPECT_EQ(onlyDiagnostic(base + "    kind: prune\n    cron: \"@daily\"\n    retention: {keep_last: 3}\n"),
            "zerobyte.yaml:6:16: schedules[0].retention: only backup schedules have it; this one runs prune");
  EXPECT_EQ(onlyDiagnostic(base + "    kind: check\n    volume: home\n    cron: \"@daily\"\n"),
            "zerobyte.yaml:5:13: schedules[0].volume: a check schedule is about the repository alone; remove the key");
  EXPECT_TRUE(contains(onlyDiagnostic(base + "    kind: check\n    cron: \"@daily\"\n    read_data_subset: 0/5\n"),
                       "read-data subset \"0/5\" is not valid"));
  EXPECT_EQ(onlyDiagnostic(base + "    volume: home\n    cron: \"@daily\"\n    enabled: yes\n"),
            "zerobyte.yaml:6:14: schedules[0].enabled: expected true or false, got \"yes\"");
  EXPECT_TRUE(contains(onlyDiagnostic("schedules:\n  - {name: a, volume: v, repository: r, cron: \"@daily\"}\n"
                                      "  - {name: a, volume: v, repository: r, cron: \"@daily\"}\n"),
                       "another schedule is already named \"a\""));
}

TEST(ConfigLoad, MountSettingsReplaceTheDefaultsAndAreChecked) {
  Config config = loadString("daemon:\n  mount_helper_path: [/opt/helpers, /usr/sbin]\n  mount_timeout_seconds: 5\n"
                             "  mount_check_interval_seconds: 0\n  mount_options:\n    sshfs: [reconnect]\n",
                             "z.yaml");
  EXPECT_EQ(config.daemon.mountHelperPath, "/opt/helpers:/usr/sbin");
  EXPECT_EQ(config.daemon.mountTimeoutSeconds, 5u);
  EXPECT_EQ(config.daemon.mountCheckIntervalSeconds, 0u);
  EXPECT_EQ(config.daemon.mountOptions.at("sshfs"), std::vector<std::string>{"reconnect"});
  EXPECT_EQ(config.daemon.mountOptions.at("nfs"), core::defaultMountOptionPolicy().at("nfs"));
  EXPECT_EQ(onlyDiagnostic("daemon:\n  mount_options:\n    ftp: [x]\n"),
            "zerobyte.yaml:3:5: daemon.mount_options: \"ftp\" is not a driver; use sshfs, davfs, rclone, cifs or nfs");
  EXPECT_EQ(onlyDiagnostic("daemon:\n  mount_options:\n    sshfs: [\"a=b\"]\n"),
            "zerobyte.yaml:3:13: daemon.mount_options.sshfs: \"a=b\" is not an option name (letters, digits, '_' and '-'; no "
            "value, no comma)");
  EXPECT_EQ(onlyDiagnostic("daemon:\n  mount_helper_path: [relative/dir]\n"),
            "zerobyte.yaml:2:23: daemon.mount_helper_path: mount helper directory \"relative/dir\" is not valid: it is relative; "
            "give an absolute path that starts with '/'");
  EXPECT_EQ(onlyDiagnostic("daemon:\n  mount_timeout_seconds: 0\n").find("zerobyte.yaml:2:26"), 0u);
}

// The two answers a kernel gives about cifs (this machine's has none; a loaded module or a built-in one says yes)
// stand in as the probe; the daemon passes mount::kernelCanMount.
TEST(ConfigVolumes, ADeclaredSmbVolumeWithoutADriverGetsCifsWhereTheKernelHasItAndRcloneWhereNot) {
  const std::string yaml = "volumes:\n  - {name: share, type: smb, host: nas, share: data, guest: true}\n"
                           "  - {name: chosen, type: smb, host: nas, share: data, guest: true, driver: cifs}\n";
  std::vector<std::string> asked;
  LoadOptions noCifs;
  noCifs.kernelCanMount = [&](const std::string& fs) {
    asked.push_back(fs);
    return false;
  };
  Config without = loadString(yaml, "z.yaml", noCifs);
  EXPECT_EQ(without.volumes.at(0).remote.driver, "rclone");
  EXPECT_EQ(without.volumes.at(1).remote.driver, "cifs") << "a driver the file names is kept";
  EXPECT_EQ(asked, std::vector<std::string>{"cifs"}) << "asked once, for the volume without a driver";
  LoadOptions withCifs;
  withCifs.kernelCanMount = [](const std::string&) { return true; };
  EXPECT_EQ(loadString(yaml, "z.yaml", withCifs).volumes.at(0).remote.driver, "cifs");
  EXPECT_EQ(loadString(yaml, "z.yaml").volumes.at(0).remote.driver, "cifs") << "without a probe (zerobytectl config check)";
  // rclone takes no smb_version: a file that gives one for a driverless volume is told so where cifs is missing.
  const auto diagnostics =
      diagnosticsOf("volumes:\n  - {name: s, type: smb, host: nas, share: d, guest: true, smb_version: \"3.0\"}\n", noCifs);
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_TRUE(contains(diagnostics[0].str(), "smb_version")) << diagnostics[0].str();
}

TEST(ConfigVolumes, NetworkVolumesAreDeclaredWithReferencesAndCheckedForTheirType) {
  Config config = loadString("volumes:\n"
                             "  - name: nas\n    type: sftp\n    host: nas.lan\n    port: 2222\n    user: backup\n"
                             "    remote_path: /srv\n    known_hosts: \"[nas.lan]:2222 ssh-ed25519 AAAAC3Nz\"\n"
                             "    private_key: file:///etc/zerobyte/nas.key\n    keep_mounted: true\n"
                             "  - name: cloud\n    type: rclone\n    rclone_type: sftp\n    rclone_options: {host: h, user: u}\n"
                             "    rclone_secrets: {pass: credential://cloud-pass}\n",
                             "z.yaml");
  ASSERT_EQ(config.volumes.size(), 2u);
  const core::Volume& nas = config.volumes[0];
  EXPECT_EQ(nas.type, "sftp");
  EXPECT_EQ(nas.remote.driver, "sshfs");  // the type's default
  EXPECT_EQ(nas.remote.port, 2222u);
  EXPECT_EQ(nas.privateKeyRef, "file:///etc/zerobyte/nas.key");
  EXPECT_TRUE(nas.remote.keepMounted);
  EXPECT_TRUE(nas.path.empty());
  const core::Volume& cloud = config.volumes[1];
  ASSERT_EQ(cloud.remote.rcloneOptions.size(), 3u);
  EXPECT_EQ(cloud.remote.rcloneOptions[2].name, "pass");
  EXPECT_EQ(cloud.remote.rcloneOptions[2].value, "credential://cloud-pass");
  EXPECT_TRUE(cloud.remote.rcloneOptions[2].secret);

  EXPECT_EQ(onlyDiagnostic("volumes:\n  - {name: n, type: nfs, host: h, remote_path: /x, path: /mnt}\n"),
            "zerobyte.yaml:2:5: volumes[0]: a nfs volume has no path (use remote_path for the path on the server)");
  EXPECT_EQ(onlyDiagnostic("volumes:\n  - {name: n, type: sftp, host: h, user: u, private_key: env://K, url: http://x/}\n"),
            "zerobyte.yaml:2:5: volumes[0]: \"url\" does not apply to a sftp volume");
  EXPECT_TRUE(contains(onlyDiagnostic("volumes:\n  - {name: n, type: sftp, host: h, user: u, private_key: env://K}\n"),
                       "known_hosts has no entry"));
  EXPECT_TRUE(contains(onlyDiagnostic("volumes:\n  - {name: n, type: rclone, rclone_type: sftp, rclone_secrets: {pass: hunter2}}\n"),
                       "volumes[0].rclone_secrets.pass: "));
  EXPECT_EQ(onlyDiagnostic("volumes:\n  - {name: n, type: directory}\n"),
            "zerobyte.yaml:2:5: volumes[0]: the key \"path\" is missing; expected the absolute path of the directory to back up");
  // The allow-list of the daemon section applies, wherever it stands in the file.
  EXPECT_TRUE(contains(onlyDiagnostic("volumes:\n  - {name: n, type: nfs, host: h, remote_path: /x, mount_options: [soft]}\n"
                                      "daemon:\n  mount_options: {nfs: [hard]}\n"),
                       "mount option \"soft\" is not allowed for the nfs driver (allowed: hard)"));
}

TEST(ConfigRepositories, RemoteRepositoriesMapOntoTheRecordWithCredentialReferences) {
  Config config = loadFile(kDataDir + "/repositories.yaml");
  ASSERT_EQ(config.repositories.size(), 4u);
  for (const auto& repo : config.repositories) {
    EXPECT_TRUE(repo.declared);
    EXPECT_EQ(repo.id, "cfg-" + repo.name);
    EXPECT_TRUE(repo.password.empty());
    for (const auto& c : repo.credentials) EXPECT_TRUE(c.sealed.empty()) << c.name;
  }
  const core::Repository& nas = config.repositories[0];
  EXPECT_EQ(nas.type, "sftp");
  EXPECT_EQ(nas.remote.host, "nas.lan");
  EXPECT_EQ(nas.remote.port, 2222u);
  EXPECT_EQ(nas.remote.user, "restic");
  EXPECT_EQ(nas.path, "/srv/restic/host1");
  EXPECT_TRUE(nas.remote.knownHosts.starts_with("[nas.lan]:2222 ssh-ed25519 "));
  EXPECT_TRUE(nas.remote.hostKeyCheck);
  EXPECT_EQ(nas.remote.limitUploadKiB, 2048u);
  EXPECT_EQ(nas.passwordRef, "file:///etc/zerobyte/nas.pass");
  ASSERT_EQ(nas.credentials.size(), 1u);
  EXPECT_EQ(nas.credentials[0].name, "private_key");
  EXPECT_EQ(nas.credentials[0].ref, "file:///etc/zerobyte/nas.key");

  const core::Repository& rest = config.repositories[1];
  EXPECT_EQ(rest.type, "rest");
  EXPECT_EQ(rest.remote.url, "https://backup.example.org:8000/host1");
  EXPECT_EQ(rest.remote.user, "host1");
  EXPECT_EQ(rest.remote.caCert, "/etc/zerobyte/rest-ca.pem");
  EXPECT_TRUE(rest.path.empty());
  ASSERT_EQ(rest.credentials.size(), 1u);
  EXPECT_EQ(rest.credentials[0].name, "server_password");
  EXPECT_EQ(rest.credentials[0].ref, "env://REST_SERVER_PASSWORD");

  const core::Repository& s3 = config.repositories[2];
  EXPECT_EQ(s3.type, "s3");
  EXPECT_EQ(s3.remote.endpoint, "https://minio.example.org:9000");
  EXPECT_EQ(s3.remote.bucket, "backups");
  EXPECT_EQ(s3.path, "host1/restic");
  EXPECT_EQ(s3.remote.region, "eu-central-1");
  EXPECT_EQ(s3.remote.accessKeyId, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_TRUE(s3.remote.pathStyle);
  EXPECT_FALSE(s3.remote.insecureTls);
  EXPECT_EQ(s3.remote.compression, "max");
  EXPECT_EQ(s3.remote.limitDownloadKiB, 10240u);
  EXPECT_EQ(s3.passwordRef, "credential://offsite-password");
  ASSERT_EQ(s3.credentials.size(), 1u);
  EXPECT_EQ(s3.credentials[0].name, "secret_access_key");
  EXPECT_EQ(s3.credentials[0].ref, "credential://offsite-secret");

  const core::Repository& cloud = config.repositories[3];
  EXPECT_EQ(cloud.type, "rclone");
  EXPECT_EQ(cloud.remote.rcloneType, "sftp");
  EXPECT_EQ(cloud.path, "restic/host1");
  EXPECT_TRUE(cloud.credentials.empty());
  ASSERT_EQ(cloud.remote.rcloneOptions.size(), 3u);
  EXPECT_EQ(cloud.remote.rcloneOptions[0].name, "host");
  EXPECT_EQ(cloud.remote.rcloneOptions[0].value, "cloud.example.org");
  EXPECT_FALSE(cloud.remote.rcloneOptions[0].secret);
  EXPECT_EQ(cloud.remote.rcloneOptions[2].name, "pass");
  EXPECT_EQ(cloud.remote.rcloneOptions[2].value, "file:///etc/zerobyte/cloud.pass");
  EXPECT_TRUE(cloud.remote.rcloneOptions[2].secret);
}

TEST(ConfigRepositories, WireNamesMapAsTheApiMapsThem) {
  Config config = loadString("repositories:\n"
                             "  - {name: a, type: azure, account_name: store1, container: box, path: p,"
                             " sas_token: env://SAS, password: env://P}\n"
                             "  - {name: g, type: gcs, project_id: proj-1, bucket: bkt, service_account: credential://gsa,"
                             " password: env://P}\n"
                             "  - {name: b, type: b2, account_id: 0012ab, bucket: my-bucket, account_key: env://B2,"
                             " password: env://P}\n"
                             "  - {name: w, type: swift, url: \"https://auth.example.org/v3\", container: box, user: u,"
                             " project_name: tenant, user_domain: Default, project_domain: Default,"
                             " server_password: env://SW, password: env://P}\n"
                             "  - {name: s, type: sftp, host: h, user: u, path: /r, host_key_check: false,"
                             " private_key: env://K, password: env://P}\n",
                             "z.yaml");
  ASSERT_EQ(config.repositories.size(), 5u);
  EXPECT_EQ(config.repositories[0].remote.account, "store1");
  EXPECT_EQ(config.repositories[0].remote.bucket, "box");
  EXPECT_EQ(config.repositories[0].credentials[0].name, "sas_token");
  EXPECT_EQ(config.repositories[1].remote.project, "proj-1");
  EXPECT_EQ(config.repositories[1].credentials[0].ref, "credential://gsa");
  EXPECT_EQ(config.repositories[2].remote.account, "0012ab");
  EXPECT_EQ(config.repositories[3].remote.bucket, "box");
  EXPECT_EQ(config.repositories[3].remote.project, "tenant");
  EXPECT_EQ(config.repositories[3].remote.userDomain, "Default");
  EXPECT_FALSE(config.repositories[4].remote.hostKeyCheck);
}

TEST(ConfigRepositories, CredentialsAreReferencesNeverValues) {
  std::string d = onlyDiagnostic("repositories:\n"
                                 "  - name: offsite\n"
                                 "    type: s3\n"
                                 "    bucket: backups\n"
                                 "    access_key_id: AKIAIOSFODNN7EXAMPLE\n"
                                 "    secret_access_key: wJalrXUtnFEMI\n"
                                 "    password: env://P\n");
  EXPECT_EQ(d, "zerobyte.yaml:6:24: repositories[0].secret_access_key: expected a reference to the secret access key "
               "(file:///absolute/path, env://NAME or credential://NAME), not the secret access key itself; put the secret "
               "access key in a file only root can read and write file:// and its path");
  EXPECT_FALSE(contains(d, "wJalrXUtnFEMI")) << d;
  d = onlyDiagnostic("repositories:\n  - name: nas\n    type: sftp\n    host: h\n    user: u\n    path: /r\n"
                     "    host_key_check: false\n    password: env://P\n    private_key: |\n"
                     "      -----BEGIN OPENSSH PRIVATE KEY-----\n      b3BlbnNzaC1rZXktdjEAAAAA\n");
  EXPECT_TRUE(d.starts_with("zerobyte.yaml:9:18: repositories[0].private_key: expected a reference to the private key")) << d;
  EXPECT_FALSE(contains(d, "BEGIN")) << d;
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: rest, url: \"https://h/\", user: u,"
                                      " server_password: \"file://rel/pass\", password: env://P}\n"),
                       "repositories[0].server_password: the path in file:// \"rel/pass\" is not valid"));
  d = onlyDiagnostic("repositories:\n  - {name: r, type: rclone, rclone_type: sftp, rclone_secrets: {pass: hunter2},"
                     " password: env://P}\n");
  EXPECT_TRUE(contains(d, "repositories[0].rclone_secrets.pass: expected a reference to the secret")) << d;
  EXPECT_FALSE(contains(d, "hunter2")) << d;
  // The API's *_ref spelling is not this file's: the credential key takes the reference.
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: s3, bucket: bkt, access_key_id: k,"
                                      " secret_access_key_ref: env://S, password: env://P}\n"),
                       "unknown key \"secret_access_key_ref\" in \"repositories[0]\""));
}

TEST(ConfigRepositories, KeysThatDoNotApplyToTheTypeAreRefusedAtTheKey) {
  EXPECT_EQ(onlyDiagnostic("repositories:\n"
                           "  - name: nas\n"
                           "    type: sftp\n"
                           "    bucket: backups\n"
                           "    password: env://P\n"),
            "zerobyte.yaml:4:5: repositories[0]: \"bucket\" does not apply to a sftp repository (it takes host, port, user, "
            "path, known_hosts, host_key_check, private_key, limit_upload, limit_download, compression)");
  // The type may come after the keys it decides about.
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, url: \"https://h/\", type: local, path: /r, password: env://P}\n"),
                       "zerobyte.yaml:2:15: repositories[0]: \"url\" does not apply to a local repository (it takes path, "
                       "limit_upload, limit_download, compression)"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, path: /r, secret_access_key: env://S, password: env://P}\n"),
                       "\"secret_access_key\" does not apply to a local repository"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: s3, bucket: bkt, access_key_id: k,"
                                      " secret_access_key: env://S, rclone_secrets: {a: env://A}, password: env://P}\n"),
                       "\"rclone_secrets\" does not apply to a s3 repository (it takes endpoint, bucket, path, region, "
                       "access_key_id, path_style, secret_access_key, limit_upload, limit_download, compression, ca_cert, "
                       "insecure_tls)"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: sftp, host: h, user: u, path: /r, host_key_check: false,"
                                      " private_key: env://K, insecure_tls: true, password: env://P}\n"),
                       "\"insecure_tls\" does not apply to a sftp repository"));
}

TEST(ConfigRepositories, TheWholeRepositoryIsValidatedAndReportedAtItsEntry) {
  EXPECT_EQ(onlyDiagnostic("repositories:\n"
                           "  - name: offsite\n"
                           "    type: s3\n"
                           "    bucket: backups\n"
                           "    access_key_id: AKIAIOSFODNN7EXAMPLE\n"
                           "    password: env://P\n"),
            "zerobyte.yaml:2:5: repositories[0]: an s3 repository needs secret_access_key (or secret_access_key_ref)");
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: sftp, host: h, user: u, path: /r, private_key: env://K,"
                                      " password: env://P}\n"),
                       "zerobyte.yaml:2:5: repositories[0]: known_hosts has no entry"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: azure, account_name: store1, container: box,"
                                      " account_key: env://K, sas_token: env://S, password: env://P}\n"),
                       "zerobyte.yaml:2:5: repositories[0]: an azure repository needs exactly one of account_key and sas_token"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: s3, bucket: Bad_Bucket, access_key_id: k,"
                                      " secret_access_key: env://S, password: env://P}\n"),
                       "zerobyte.yaml:2:5: repositories[0]: bucket \"Bad_Bucket\" is not a valid S3 bucket name"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: rest, url: \"https://h/\", server_password: env://S,"
                                      " password: env://P}\n"),
                       "zerobyte.yaml:2:5: repositories[0]: server_password is given without user"));
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: rclone, rclone_type: sftp,"
                                      " rclone_options: {pass: x}, password: env://P}\n"),
                       "rclone option \"pass\" is a password"));
  // The restic password stays required for every type, path for local ones.
  EXPECT_EQ(onlyDiagnostic("repositories:\n  - {name: r, type: rest, url: \"https://h/\"}\n"),
            "zerobyte.yaml:2:5: repositories[0]: the key \"password\" is missing; expected a password reference "
            "(file:///path, env://NAME or credential://NAME)");
  EXPECT_EQ(onlyDiagnostic("repositories:\n  - {name: r, type: local, password: env://P}\n"),
            "zerobyte.yaml:2:5: repositories[0]: the key \"path\" is missing; expected the absolute path of the restic repository");
  EXPECT_EQ(onlyDiagnostic("repositories:\n  - {name: r, type: local, path: srv/restic, password: env://P}\n"),
            "zerobyte.yaml:2:34: repositories[0].path \"srv/restic\" is not valid: it is relative; give an absolute path "
            "that starts with '/'");
  EXPECT_EQ(onlyDiagnostic("repositories:\n  - {name: r, type: sftp, host: h, port: 0, user: u, path: /r,"
                           " host_key_check: false, private_key: env://K, password: env://P}\n"),
            "zerobyte.yaml:2:42: repositories[0].port: expected a port from 1 to 65535, got \"0\"");
  EXPECT_TRUE(contains(onlyDiagnostic("repositories:\n  - {name: r, type: s3, bucket: bkt, access_key_id: k,"
                                      " secret_access_key: env://S, limit_upload: 10485761, password: env://P}\n"),
                       "repositories[0].limit_upload: expected an integer from 0 to 10485760 (KiB/s; 0: unlimited)"));
}

TEST(ConfigErrors, BadIntegerPointsAtTheValue) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  job_history: many\n"),
            "zerobyte.yaml:2:16: daemon.job_history: expected an integer from 1 to 100000, got \"many\"");
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  cancel_grace_seconds: 0\n"),
            "zerobyte.yaml:2:25: daemon.cancel_grace_seconds: expected an integer from 1 to 3600, got \"0\"");
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  max_concurrent_jobs: 65\n"),
            "zerobyte.yaml:2:24: daemon.max_concurrent_jobs: expected an integer from 1 to 64, got \"65\"");
  for (std::string_view value : {"100001", "-5", "1e3", "12.5", "99999999999999999999", "0x10"})
    EXPECT_TRUE(contains(onlyDiagnostic("daemon: {job_history: " + std::string(value) + "}\n"),
                         "zerobyte.yaml:1:23: daemon.job_history: expected an integer from 1 to 100000"))
        << value;
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  finished_job_seconds: 86401\n"),
            "zerobyte.yaml:2:25: daemon.finished_job_seconds: expected an integer from 0 to 86400, got \"86401\"");
}

TEST(ConfigLoad, DbusAndFinishedJobSeconds) {
  Config config = loadString("daemon:\n  dbus: off\n  finished_job_seconds: 0\n", "zerobyte.yaml");
  EXPECT_FALSE(config.daemon.dbus);
  EXPECT_EQ(config.daemon.finishedJobSeconds, 0u);
  EXPECT_TRUE(loadString("daemon:\n  dbus: auto\n", "zerobyte.yaml").daemon.dbus);
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  dbus: yes\n"),
            "zerobyte.yaml:2:9: daemon.dbus: expected one of auto, off, got \"yes\"");
}

TEST(ConfigErrors, EmptyValuePointsAtItsKey) {
  // yaml-cpp puts an empty value at the next token, on another line; the key is the place to look.
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  socket:\n"
                           "  log_level: info\n"),
            "zerobyte.yaml:2:3: daemon.socket: expected an absolute path, got nothing; give a value or remove the key");
}

TEST(ConfigErrors, InvalidPathQuotesItAndSaysHowToFixIt) {
  EXPECT_EQ(onlyDiagnostic("volumes:\n"
                           "  - name: etc\n"
                           "    path: etc/\n"),
            "zerobyte.yaml:3:11: volumes[0].path \"etc/\" is not valid: it is relative; give an absolute path that "
            "starts with '/'");
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  state_directory: /var/lib/../zerobyte\n"),
            "zerobyte.yaml:2:20: daemon.state_directory \"/var/lib/../zerobyte\" is not valid: it contains a \"..\" "
            "component; write the path without \".\" and \"..\" components");
}

TEST(ConfigErrors, InvalidNamePointsAtTheName) {
  EXPECT_EQ(onlyDiagnostic("repositories:\n"
                           "  - name: Local\n"
                           "    path: /srv/restic\n"
                           "    password: env://PW\n"),
            "zerobyte.yaml:2:11: repositories[0].name \"Local\" is not valid: use 1-63 characters from a-z, 0-9, '_' "
            "and '-', starting with a letter or digit");
}

TEST(ConfigErrors, MissingRequiredKeyPointsAtTheMapThatLacksIt) {
  EXPECT_EQ(onlyDiagnostic("repositories:\n"
                           "  - name: local\n"
                           "    path: /srv/restic\n"),
            "zerobyte.yaml:2:5: repositories[0]: the key \"password\" is missing; expected a password reference "
            "(file:///path, env://NAME or credential://NAME)");
  std::string d = onlyDiagnostic("volumes:\n  - {path: /etc}\n");
  EXPECT_TRUE(d.starts_with("zerobyte.yaml:2:5: volumes[0]: the key \"name\" is missing")) << d;
}

TEST(ConfigErrors, WrongNodeKindsSayWhatWasExpected) {
  EXPECT_EQ(onlyDiagnostic("daemon: yes\n"), "zerobyte.yaml:1:9: daemon: expected a map of daemon settings, got \"yes\"");
  EXPECT_EQ(onlyDiagnostic("volumes:\n  name: etc\n"),
            "zerobyte.yaml:2:3: volumes: expected a list (entries starting with \"- \"), got a map");
  EXPECT_EQ(onlyDiagnostic("volumes:\n  - etc\n"),
            "zerobyte.yaml:2:5: volumes[0]: expected a map describing a volume (with name, type, path, ...), got \"etc\"");
  EXPECT_EQ(onlyDiagnostic("daemon:\n  log_level: [info]\n"),
            "zerobyte.yaml:2:14: daemon.log_level: expected one of debug, info, notice, warning, error, got a list");
  EXPECT_EQ(onlyDiagnostic("just text\n"),
            "zerobyte.yaml:1:1: expected a map with the keys daemon, volumes and repositories at the top level, got "
            "\"just text\"");
  EXPECT_EQ(onlyDiagnostic("daemon:\n  ? [a, b]\n  : c\n"),
            "zerobyte.yaml:2:5: expected a key name in \"daemon\", got a list");
}

TEST(ConfigErrors, UnsupportedTypesNameTheSupportedOne) {
  EXPECT_EQ(onlyDiagnostic("volumes:\n  - {name: n, type: ftp, path: /mnt}\n"),
            "zerobyte.yaml:2:21: volumes[0].type: expected a volume type: directory, sftp, smb, webdav, nfs or rclone, got \"ftp\"");
  EXPECT_EQ(onlyDiagnostic("repositories:\n  - {name: r, type: ftp, path: /r, password: env://P}\n"),
            "zerobyte.yaml:2:21: repositories[0].type: expected a repository type: local, sftp, rest, s3, b2, azure, gcs, swift "
            "or rclone, got \"ftp\"");
}

TEST(ConfigErrors, LogLevelAndAdminGroupAreChecked) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n  log_level: warn\n"),
            "zerobyte.yaml:2:14: daemon.log_level: expected one of debug, info, notice, warning, error, got \"warn\"; "
            "did you mean \"warning\"?");
  EXPECT_TRUE(contains(onlyDiagnostic("daemon:\n  log_level: INFO\n"), "did you mean \"info\"?"));
  EXPECT_TRUE(contains(onlyDiagnostic("daemon:\n  admin_group: Admins\n"),
                       "zerobyte.yaml:2:16: daemon.admin_group: expected a Unix group name"));
  EXPECT_THROW(loadString("daemon: {admin_group: " + std::string(33, 'a') + "}\n", "zerobyte.yaml"), ConfigError);
  EXPECT_EQ(loadString("daemon: {admin_group: _machines$}\n", "z").daemon.adminGroup, "_machines$");
  EXPECT_EQ(loadString("daemon: {admin_group: " + std::string(32, 'a') + "}\n", "z").daemon.adminGroup,
            std::string(32, 'a'));
}

TEST(ConfigLoad, AccessAndAuditSettingsHaveTheirDefaults) {
  DaemonSettings defaults;
  EXPECT_EQ(defaults.authorization, AuthorizationMode::Auto);
  EXPECT_EQ(defaults.viewerGroup, "zerobyte-viewers");
  EXPECT_EQ(defaults.operatorGroup, "zerobyte-operators");
  EXPECT_EQ(defaults.adminGroup, "zerobyte-admins");
  EXPECT_EQ(defaults.auditMaxAgeDays, 180u);
  EXPECT_EQ(defaults.auditMaxEntries, 100000u);
  Config config = loadString("daemon: {log_level: info}\n", "z");
  EXPECT_EQ(config.daemon.authorization, AuthorizationMode::Auto);
  EXPECT_EQ(config.daemon.auditMaxEntries, 100000u);
}

TEST(ConfigLoad, AuthorizationModesAndTheirNames) {
  EXPECT_EQ(loadString("daemon: {authorization: auto}\n", "z").daemon.authorization, AuthorizationMode::Auto);
  EXPECT_EQ(loadString("daemon: {authorization: polkit}\n", "z").daemon.authorization, AuthorizationMode::Polkit);
  EXPECT_EQ(loadString("daemon: {authorization: groups}\n", "z").daemon.authorization, AuthorizationMode::Groups);
  EXPECT_EQ(toString(AuthorizationMode::Auto), "auto");
  EXPECT_EQ(toString(AuthorizationMode::Polkit), "polkit");
  EXPECT_EQ(toString(AuthorizationMode::Groups), "groups");
}

TEST(ConfigErrors, AuthorizationModeIsCheckedAndMisspellingsGuessed) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  authorization: polkitd\n"),
            "zerobyte.yaml:2:18: daemon.authorization: expected one of auto, polkit, groups, got \"polkitd\"; did you "
            "mean \"polkit\"?");
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  authorization: [polkit]\n"),
            "zerobyte.yaml:2:18: daemon.authorization: expected one of auto, polkit, groups, got a list");
  EXPECT_TRUE(contains(onlyDiagnostic("daemon: {authorization: none}\n"),
                       "zerobyte.yaml:1:25: daemon.authorization: expected one of auto, polkit, groups, got \"none\""));
}

TEST(ConfigErrors, RoleGroupsAreCheckedLikeTheAdminGroup) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  viewer_group: Viewers\n"),
            "zerobyte.yaml:2:17: daemon.viewer_group: expected a Unix group name (up to 32 characters from a-z, 0-9, "
            "'_' and '-', starting with a letter or '_'), got \"Viewers\"");
  EXPECT_TRUE(contains(onlyDiagnostic("daemon:\n  operator_group: 1ops\n"),
                       "zerobyte.yaml:2:19: daemon.operator_group: expected a Unix group name"));
  EXPECT_TRUE(contains(onlyDiagnostic("daemon:\n  operator_group:\n"), "daemon.operator_group: expected a Unix group name"));
  Config config = loadString("daemon: {viewer_group: staff, operator_group: backup-ops, admin_group: wheel}\n", "z");
  EXPECT_EQ(config.daemon.viewerGroup, "staff");
  EXPECT_EQ(config.daemon.operatorGroup, "backup-ops");
  EXPECT_EQ(config.daemon.adminGroup, "wheel");
}

TEST(ConfigErrors, AuditBoundsAreCheckedAtTheirLimits) {
  EXPECT_EQ(loadString("daemon: {audit_max_age_days: 1}\n", "z").daemon.auditMaxAgeDays, 1u);
  EXPECT_EQ(loadString("daemon: {audit_max_age_days: 36500}\n", "z").daemon.auditMaxAgeDays, 36500u);
  EXPECT_EQ(loadString("daemon: {audit_max_entries: 100}\n", "z").daemon.auditMaxEntries, 100u);
  EXPECT_EQ(loadString("daemon: {audit_max_entries: 1000000}\n", "z").daemon.auditMaxEntries, 1000000u);
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  audit_max_age_days: 0\n"),
            "zerobyte.yaml:2:23: daemon.audit_max_age_days: expected an integer from 1 to 36500, got \"0\"");
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  audit_max_age_days: 36501\n"),
            "zerobyte.yaml:2:23: daemon.audit_max_age_days: expected an integer from 1 to 36500, got \"36501\"");
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  audit_max_entries: 99\n"),
            "zerobyte.yaml:2:22: daemon.audit_max_entries: expected an integer from 100 to 1000000, got \"99\"");
  for (std::string_view value : {"1000001", "-1", "1e6", "lots", "99999999999"})
    EXPECT_TRUE(contains(onlyDiagnostic("daemon: {audit_max_entries: " + std::string(value) + "}\n"),
                         "zerobyte.yaml:1:29: daemon.audit_max_entries: expected an integer from 100 to 1000000"))
        << value;
}

TEST(ConfigErrors, PasswordMustBeAReferenceAndIsNeverRepeated) {
  std::string d = onlyDiagnostic("repositories:\n"
                                 "  - name: local\n"
                                 "    path: /srv/restic\n"
                                 "    password: hunter2\n");
  EXPECT_TRUE(d.starts_with("zerobyte.yaml:4:15: repositories[0].password: expected a reference to the password"))
      << d;
  EXPECT_FALSE(contains(d, "hunter2")) << d;

  auto refError = [](std::string_view ref) {
    return onlyDiagnostic("repositories: [{name: r, path: /r, password: \"" + std::string(ref) + "\"}]\n");
  };
  EXPECT_TRUE(contains(refError("file://etc/pass"), "it is relative")) << refError("file://etc/pass");
  EXPECT_TRUE(contains(refError("file:///etc/../pass"), "\"..\" component"));
  EXPECT_TRUE(contains(refError("file:///"), "names the root directory"));
  EXPECT_TRUE(contains(refError("env://1PASS"), "environment variable name"));
  EXPECT_TRUE(contains(refError("env://"), "environment variable name"));
  EXPECT_TRUE(contains(refError("credential://a/b"), "no '/'"));
  EXPECT_TRUE(contains(refError("credential://"), "systemd credential"));
}

TEST(ConfigErrors, DuplicateNamesPointAtTheSecondAndNameTheLineOfTheFirst) {
  EXPECT_EQ(onlyDiagnostic("volumes:\n"
                           "  - name: etc\n"
                           "    path: /etc\n"
                           "  - name: etc\n"
                           "    path: /srv/etc\n"),
            "zerobyte.yaml:4:11: volumes[1].name: another volume is already named \"etc\" (line 2); give each volume "
            "its own name");
  // A volume and a repository may share a name: they are different kinds.
  EXPECT_NO_THROW(loadString("volumes: [{name: x, path: /x}]\nrepositories: [{name: x, path: /r, password: env://P}]\n",
                             "zerobyte.yaml"));
  std::string d = onlyDiagnostic("repositories:\n"
                                 "  - {name: r, path: /a, password: env://A}\n"
                                 "  - {name: r, path: /b, password: env://B}\n");
  EXPECT_EQ(d, "zerobyte.yaml:3:12: repositories[1].name: another repository is already named \"r\" (line 2); give each "
               "repository its own name");
}

TEST(ConfigErrors, DuplicateKeyInOneMapIsReported) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  job_history: 10\n"
                           "  job_history: 20\n"),
            "zerobyte.yaml:3:3: the key \"job_history\" appears twice in \"daemon\" (first at line 2); keep one of them");
}

TEST(ConfigErrors, SyntaxErrorGivesItsPosition) {
  EXPECT_EQ(onlyDiagnostic("daemon:\n"
                           "  log_level: info\n"
                           "\tjob_history: 5\n"),
            "zerobyte.yaml:3:1: YAML syntax error: illegal tab when looking for indentation");
  EXPECT_EQ(onlyDiagnostic("volumes: [{name: a, path: /a}\n"),
            "zerobyte.yaml:2:1: YAML syntax error: end of sequence flow not found");
}

TEST(ConfigErrors, SecondDocumentIsReported) {
  EXPECT_EQ(onlyDiagnostic("daemon: {}\n---\nvolumes: []\n"),
            "zerobyte.yaml:3:1: the file holds more than one YAML document (a second '---'); put all settings in one "
            "document");
}

TEST(ConfigErrors, AllProblemsAreReportedTogetherInFileOrder) {
  try {
    loadFile(kDataDir + "/errors.yaml");
    FAIL() << "errors.yaml loaded";
  } catch (const ConfigError& e) {
    std::vector<std::string> lines;
    for (const auto& d : e.diagnostics()) lines.push_back(d.str());
    const std::string f = kDataDir + "/errors.yaml";
    std::vector<std::string> expected = {
        f + ":2:3: unknown key \"stat_directory\" in \"daemon\"; expected one of: state_directory, runtime_directory, "
            "cache_directory, socket, restic, authorization, viewer_group, operator_group, admin_group, job_history, "
            "cancel_grace_seconds, repository_retry_seconds, max_concurrent_jobs, mount_helper_path, mount_timeout_seconds, mount_check_interval_seconds, mount_check_timeout_seconds, mount_options, finished_job_seconds, dbus, log_level, audit_max_age_days, audit_max_entries; did you mean "
            "\"state_directory\"?",
        f + ":3:16: daemon.job_history: expected an integer from 1 to 100000, got \"many\"",
        f + ":4:14: daemon.log_level: expected one of debug, info, notice, warning, error, got \"verbose\"",
        f + ":7:11: volumes[0].path \"etc\" is not valid: it is relative; give an absolute path that starts with '/'",
        f + ":8:11: volumes[1].name: another volume is already named \"etc\" (line 6); give each volume its own name",
        f + ":11:5: repositories[0]: the key \"password\" is missing; expected a password reference (file:///path, "
            "env://NAME or credential://NAME)",
        f + ":11:11: repositories[0].name \"Local\" is not valid: use 1-63 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit",
    };
    EXPECT_EQ(lines, expected);
    // what() is every diagnostic, one per line.
    std::string joined;
    for (const auto& line : expected) joined += (joined.empty() ? "" : "\n") + line;
    EXPECT_EQ(std::string(e.what()), joined);
    EXPECT_EQ(e.code(), ErrorCode::ConfigInvalid);
  }
}

TEST(ConfigErrors, MissingFileGivesLineZeroWithTheSystemError) {
  const std::string path = kDataDir + "/does-not-exist.yaml";
  try {
    loadFile(path);
    FAIL() << "a missing file loaded";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.diagnostics().size(), 1u);
    EXPECT_EQ(e.diagnostics()[0].line, 0);
    EXPECT_EQ(e.diagnostics()[0].str(), path + ": cannot read the configuration file: No such file or directory");
  }
}

TEST(ConfigErrors, DirectoryInsteadOfFileIsReported) {
  try {
    loadFile(kDataDir);
    FAIL() << "a directory loaded";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), kDataDir + ": cannot read the configuration file: Is a directory");
  }
}

TEST(ConfigDiagnostic, FormatsWithAndWithoutPosition) {
  EXPECT_EQ((Diagnostic{"a.yaml", 3, 7, "bad"}.str()), "a.yaml:3:7: bad");
  EXPECT_EQ((Diagnostic{"a.yaml", 0, 0, "cannot read"}.str()), "a.yaml: cannot read");
}

}  // namespace
}  // namespace zerobyte::config
