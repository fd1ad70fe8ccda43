// zerobyted: the composition root — arguments, configuration, state, the loop, the socket, sd_notify.
#include "common/names.h"
#include "common/version.h"
#include "daemon/api/authorizer.h"
#include "daemon/api/polkit_authorizer.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service.h"
#include "daemon/config/config.h"
#include "daemon/log/log.h"
#include "daemon/loop/event_loop.h"
#include "daemon/mount/mounter.h"
#include "daemon/process/process_runner.h"
#include "daemon/restic/restic.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"
#include "daemon/dbus/bus_service.h"
#include "daemon/dbus/sleep_inhibitor.h"
#include "daemon/varlink/server.h"

#include <systemd/sd-daemon.h>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

using namespace zerobyte;

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitConfig = 78;  // EX_CONFIG

struct Options {
  std::string configPath = std::string(kDefaultConfigPath);
  bool configGiven = false;
};

void usage(std::ostream& out) {
  out << "Usage: zerobyted [--config FILE]\n"
         "\n"
         "The zerobyte backup daemon. It is normally started by systemd (zerobyted.service)\n"
         "and driven with zerobytectl.\n"
         "\n"
         "  -c, --config FILE   configuration file (default " << kDefaultConfigPath << ")\n"
         "      --version       print the version and exit\n"
         "  -h, --help          this help\n"
         "\n"
         "Environment: STATE_DIRECTORY, RUNTIME_DIRECTORY, CACHE_DIRECTORY (set by systemd) are used\n"
         "when the configuration does not name the directories; NOTIFY_SOCKET for sd_notify.\n"
         "Signals: SIGTERM stops (running jobs are cancelled), SIGHUP reloads the configuration.\n";
}

std::optional<Options> parseArguments(int argc, char** argv, int& exitCode) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(std::cout);
      exitCode = 0;
      return std::nullopt;
    }
    if (a == "--version") {
      std::cout << "zerobyted " << kVersion << "\n";
      exitCode = 0;
      return std::nullopt;
    }
    if (a == "-c" || a == "--config") {
      if (i + 1 >= argc) {
        std::cerr << "zerobyted: " << a << " needs a file name\n";
        exitCode = kExitUsage;
        return std::nullopt;
      }
      o.configPath = argv[++i];
      o.configGiven = true;
    } else if (a.rfind("--config=", 0) == 0) {
      o.configPath = a.substr(9);
      o.configGiven = true;
    } else {
      std::cerr << "zerobyted: unknown argument \"" << log::sanitize(a) << "\"; see zerobyted --help\n";
      exitCode = kExitUsage;
      return std::nullopt;
    }
  }
  return o;
}

// systemd passes colon-separated lists when a unit names several directories: use the first.
std::string fromEnvironment(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return {};
  std::string s(v);
  return s.substr(0, s.find(':'));
}

std::string pick(const std::string& configured, const char* envName, std::string_view fallback) {
  if (!configured.empty()) return configured;
  if (auto env = fromEnvironment(envName); !env.empty()) return env;
  return std::string(fallback);
}

void ensureDirectory(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) < 0 && errno != EEXIST)
    throw Error(ErrorCode::Failed, "cannot create directory " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (stat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) throw Error(ErrorCode::Failed, path + " is not a directory");
}

// Mounts under <runtime>/mounts, credentials files in <runtime>/mount-credentials, helper caches in <cache>/mounts.
mount::MounterSettings mountSettingsOf(const config::DaemonSettings& d, const std::string& runtimeDir, const std::string& cacheDir) {
  mount::MounterSettings m;
  m.mountDirectory = runtimeDir + "/mounts";
  m.credentialsDirectory = runtimeDir + "/mount-credentials";
  m.cacheDirectory = cacheDir + "/mounts";
  m.helperPath = d.mountHelperPath;
  m.timeout = std::chrono::seconds(d.mountTimeoutSeconds);
  m.checkInterval = std::chrono::seconds(d.mountCheckIntervalSeconds);
  m.checkTimeout = std::chrono::seconds(d.mountCheckTimeoutSeconds);
  m.optionPolicy = d.mountOptions;
  return m;
}

api::RoleGroups roleGroupsOf(const config::DaemonSettings& d) {
  api::RoleGroups groups;
  groups.viewers = d.viewerGroup;
  groups.operators = d.operatorGroup;
  groups.admins = d.adminGroup;
  return groups;
}

// What the configuration loader may ask of this machine.
config::LoadOptions machineProbes() {
  config::LoadOptions probes;
  probes.kernelCanMount = [](const std::string& fileSystem) { return mount::kernelCanMount(fileSystem); };
  return probes;
}

config::Config loadConfiguration(const Options& options) {
  struct stat st {};
  if (!options.configGiven && stat(options.configPath.c_str(), &st) < 0 && errno == ENOENT) {
    log::notice("no configuration file at " + options.configPath + "; using the defaults");
    config::Config defaults;
    defaults.sourcePath = options.configPath;
    return defaults;
  }
  return config::loadFile(options.configPath, machineProbes());
}

void notify(const std::string& state) { sd_notify(0, state.c_str()); }

}  // namespace

int main(int argc, char** argv) {
  int exitCode = 0;
  auto options = parseArguments(argc, argv, exitCode);
  if (!options) return exitCode;
  umask(0077);
  // Secrets live in this process: no core dumps, no ptrace by non-root.
  prctl(PR_SET_DUMPABLE, 0);
  struct rlimit noCore {0, 0};
  setrlimit(RLIMIT_CORE, &noCore);

  config::Config config;
  try {
    config = loadConfiguration(*options);
  } catch (const config::ConfigError& e) {
    for (const auto& d : e.diagnostics()) log::error(d.str());
    log::error("the configuration is not valid; fix it and start again ('zerobytectl config check " + options->configPath + "')");
    return kExitConfig;
  }
  log::setLevel(config.daemon.logLevel);

  try {
    const std::string stateDir = pick(config.daemon.stateDirectory, "STATE_DIRECTORY", kDefaultStateDirectory);
    const std::string runtimeDir = pick(config.daemon.runtimeDirectory, "RUNTIME_DIRECTORY", kDefaultRuntimeDirectory);
    const std::string cacheDir = pick(config.daemon.cacheDirectory, "CACHE_DIRECTORY", kDefaultCacheDirectory);
    const std::string socketPath = config.daemon.socketPath.empty() ? runtimeDir + "/" + std::string(kSocketFileName) : config.daemon.socketPath;
    ensureDirectory(stateDir, 0700);
    ensureDirectory(runtimeDir, 0755);
    chmod(runtimeDir.c_str(), 0755);  // clients must reach the socket inside
    ensureDirectory(cacheDir, 0700);

    // restic: found and understood before anything is served.
    std::string restic = config.daemon.resticBinary.empty()
                             ? process::findExecutable("restic", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                             : config.daemon.resticBinary;
    if (restic.empty() || access(restic.c_str(), X_OK) != 0)
      throw Error(ErrorCode::Failed, "restic not found" + (restic.empty() ? std::string() : " at " + restic) +
                                         "; install the restic package or set daemon.restic in " + config.sourcePath);
    auto versionRun = process::runSync(restic::versionArgs(restic), {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "LANG=C.UTF-8"});
    auto version = restic::parseVersion(versionRun.output);
    if (versionRun.exitCode != 0 || !version)
      throw Error(ErrorCode::Failed, "cannot read the version of " + restic + " (exit " + std::to_string(versionRun.exitCode) + ")");
    log::info("zerobyted " + std::string(kVersion) + " starting; restic " + version->text + " at " + restic);

    // The state directory holds the master key and the sealed secrets: nobody else may look in.
    secrets::checkStateDirectory(stateDir);
    store::Store store(stateDir);
    // A store that holds sealed secrets needs the key that sealed them, never a freshly generated one.
    secrets::Vault vault(secrets::loadMasterKey(stateDir, store.masterKeyCredential(), !api::storeHoldsSealedSecrets(store)));
    api::reconcileKeyring(store, vault, stateDir);
    log::info("master key: " + vault.source() + " (key id " + secrets::hexKeyId(vault.keyId()) + ")" +
              (vault.locked() ? "" : "; its memory could not be locked against swapping (RLIMIT_MEMLOCK)"));

    loop::blockSignals();
    loop::EventLoop loop;
    process::ProcessRunner runner(loop);
    // polkit when it is there (or required); else the same rule decided here from Unix groups.
    std::unique_ptr<api::Authorizer> authorizer;
    api::GroupAuthorizer* groupAuthorizer = nullptr;
    if (config.daemon.authorization != config::AuthorizationMode::Groups) {
      std::string whyNot;
      authorizer = api::PolkitAuthorizer::connect(loop, whyNot);
      if (!authorizer && config.daemon.authorization == config::AuthorizationMode::Polkit)
        throw Error(ErrorCode::Failed, "the configuration sets \"authorization: polkit\" but polkit cannot be used: " + whyNot +
                                           "; start the system bus and polkit, or set \"authorization: groups\" in " + options->configPath);
      if (!authorizer) log::notice("polkit cannot be used (" + whyNot + "); deciding by Unix groups");
    }
    if (!authorizer) {
      auto groups = std::make_unique<api::GroupAuthorizer>(roleGroupsOf(config.daemon));
      groupAuthorizer = groups.get();
      authorizer = std::move(groups);
    }
    api::ServiceSettings settings{stateDir,
                                  cacheDir,
                                  restic,
                                  version->text,
                                  config.daemon.jobHistory,
                                  config.daemon.cancelGraceSeconds,
                                  config.daemon.maxConcurrentJobs,
                                  mountSettingsOf(config.daemon, runtimeDir, cacheDir),
                                  runtimeDir + "/repository-credentials"};
    settings.repositoryRetrySeconds = config.daemon.repositoryRetrySeconds;
    api::Service service(loop, runner, store, vault, *authorizer, settings);
    service.setDeclared(config);
    service.setRoleGroups(roleGroupsOf(config.daemon));
    service.auditLog().setLimits(config.daemon.auditMaxAgeDays, config.daemon.auditMaxEntries);
    log::info("authorization: " + authorizer->describe());
    // The D-Bus API: the same service layer as the socket, on its own connection (started below).
    dbus::BusService bus(loop, service, config.daemon.finishedJobSeconds);

    int listenFd = -1;
    bool ownSocket = false;
    int n = sd_listen_fds(1);
    if (n > 1) throw Error(ErrorCode::Failed, "systemd passed " + std::to_string(n) + " sockets; zerobyted takes one");
    if (n == 1) {
      listenFd = SD_LISTEN_FDS_START;
      if (sd_is_socket_unix(listenFd, SOCK_STREAM, 1, nullptr, 0) <= 0)
        throw Error(ErrorCode::Failed, "the socket systemd passed is not a listening Unix stream socket");
      // The loop accepts until EAGAIN: the passed socket must not block.
      fcntl(listenFd, F_SETFL, fcntl(listenFd, F_GETFL) | O_NONBLOCK);
      fcntl(listenFd, F_SETFD, FD_CLOEXEC);
      log::info("serving the socket passed by systemd");
    } else {
      listenFd = varlink::Server::createSocket(socketPath, 0666);
      ownSocket = true;
      log::info("listening on " + socketPath);
    }
    varlink::Server::Limits limits{kMaxMessageSize};
    varlink::Server server(
        loop, listenFd,
        [&service](const std::string& method, const nlohmann::json& parameters, api::RequestPtr request) {
          service.dispatch(method, parameters, std::move(request));
        },
        limits);

    auto updateStatus = [&service] {
      size_t running = service.runningJobs(), queued = service.queuedJobs();
      std::string status = running == 0 && queued == 0 ? "Idle"
                                                       : "Running " + std::to_string(running) + " job(s), " + std::to_string(queued) + " queued";
      notify("STATUS=" + status);
    };
    // While restic runs, the machine does not go to sleep (where logind is there to ask).
    dbus::SleepInhibitor inhibitor(loop);
    service.onJobsChanged = [&] {
      updateStatus();
      bus.jobsChanged();
      const size_t running = service.runningJobs();
      inhibitor.setActive(running > 0, "zerobyted runs restic (backup, restore or maintenance)");
    };

    bool stopping = false;
    std::unique_ptr<loop::TimerSource> forceExit;
    auto stop = [&](const char* why) {
      if (stopping) return;
      stopping = true;
      log::info(std::string("stopping (") + why + "): cancelling running jobs");
      notify("STOPPING=1\nSTATUS=Stopping: cancelling running jobs");
      server.stopListening();
      service.shutdown([&loop] { loop.exit(0); });
      // restic normally ends within the grace period; never hang forever.
      forceExit = std::make_unique<loop::TimerSource>(loop, std::chrono::seconds(config.daemon.cancelGraceSeconds + 15), [&loop] {
        log::error("children did not stop in time; exiting anyway");
        loop.exit(1);
      });
    };
    loop::SignalSource onTerm(loop, SIGTERM, [&] { stop("SIGTERM"); });
    loop::SignalSource onInt(loop, SIGINT, [&] { stop("SIGINT"); });
    loop::SignalSource onHup(loop, SIGHUP, [&] {
      notify("RELOADING=1\nSTATUS=Reloading the configuration");
      try {
        config::Config fresh = config::loadFile(options->configPath, machineProbes());
        service.setDeclared(fresh);
        service.setSettings(fresh.daemon.jobHistory, fresh.daemon.cancelGraceSeconds, fresh.daemon.maxConcurrentJobs,
                            fresh.daemon.repositoryRetrySeconds);
        service.setMountSettings(mountSettingsOf(fresh.daemon, runtimeDir, cacheDir));
        if (groupAuthorizer) groupAuthorizer->setGroups(roleGroupsOf(fresh.daemon));
        service.setRoleGroups(roleGroupsOf(fresh.daemon));
        bus.setFinishedJobSeconds(fresh.daemon.finishedJobSeconds);
        if (fresh.daemon.dbus != config.daemon.dbus) log::notice("the dbus setting takes effect at the next start");
        service.auditLog().setLimits(fresh.daemon.auditMaxAgeDays, fresh.daemon.auditMaxEntries);
        if (fresh.daemon.authorization != config.daemon.authorization)
          log::notice("the authorization mode takes effect at the next start");
        log::setLevel(fresh.daemon.logLevel);
        if (fresh.daemon.socketPath != config.daemon.socketPath || fresh.daemon.stateDirectory != config.daemon.stateDirectory ||
            fresh.daemon.runtimeDirectory != config.daemon.runtimeDirectory || fresh.daemon.cacheDirectory != config.daemon.cacheDirectory ||
            fresh.daemon.resticBinary != config.daemon.resticBinary)
          log::notice("directory, socket and restic settings take effect at the next start");
        config = std::move(fresh);
        log::info("configuration reloaded from " + options->configPath + ": " + std::to_string(config.volumes.size()) +
                  " declared volume(s), " + std::to_string(config.repositories.size()) + " declared repository(ies)");
      } catch (const config::ConfigError& e) {
        for (const auto& d : e.diagnostics()) log::error(d.str());
        log::error("the new configuration is not valid; keeping the running one");
      } catch (const Error& e) {
        log::error(std::string("reload failed: ") + e.what() + "; keeping the running configuration");
      }
      notify("READY=1");
      updateStatus();
    });

    service.recover();
    // What the last run left mounted is unmounted (or kept, for volumes kept mounted) before any job.
    service.startMounts();
    // After recover(): the stale-lock removals it queued come before any catch-up run.
    service.startScheduler();
    if (config.daemon.dbus)
      bus.start();
    else
      log::info("the D-Bus API is off (daemon.dbus: off in " + options->configPath + ")");
    notify("READY=1");
    updateStatus();
    int r = loop.run();
    if (ownSocket) ::unlink(socketPath.c_str());
    log::info("stopped");
    return r < 0 ? 1 : r;
  } catch (const Error& e) {
    log::error(e.what());
    notify("STATUS=Failed to start: " + std::string(e.what()));
    return 1;
  }
}
