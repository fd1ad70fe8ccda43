// The service layer: method table, dispatch (parse → authorize → act), volumes, repositories, status.
#include "daemon/api/service.h"

#include "common/users.h"

#include "common/version.h"
#include "daemon/api/audit.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/process/run_as.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace zerobyte::api {

using nlohmann::json;

enum class ParamType { String, Int, Bool, StringList };

struct ParamSpec {
  const char* name;
  ParamType type;
  bool required;
};

// What a method is about, for its authorization scope (service_access.cpp).
enum class Target {
  Daemon,      // the daemon as a whole, or the caller's own new resource
  Volume,      // the volume named by `targetParam`
  Repository,  // the repository named by `targetParam`
  Backup,      // the volume "volume" and the repository "repository"
  Job,         // the job "id"
  Schedule,    // the schedule named by `targetParam`
  NewSchedule, // the repository "repository", and the volume "volume" when given (a backup schedule)
  NewVolume,   // the caller's own new volume; a network volume needs mount as well
};

struct Service::MethodSpec {
  std::string_view name;
  Action action;
  std::vector<ParamSpec> params;
  void (Service::*handler)(const json&, const RequestPtr&);
  bool requiresMore = false;
  Target target = Target::Daemon;
  const char* targetParam = nullptr;
  // The handler writes its own audit record (with a more telling event); no generic "ok" one.
  bool auditsItself = false;
};

namespace {

constexpr ParamType S = ParamType::String, I = ParamType::Int, B = ParamType::Bool, L = ParamType::StringList;

const char* typeName(ParamType t) {
  switch (t) {
    case ParamType::String: return "a string";
    case ParamType::Int: return "an integer";
    case ParamType::Bool: return "a boolean";
    case ParamType::StringList: return "an array of strings";
  }
  return "?";
}

bool hasType(const json& v, ParamType t) {
  switch (t) {
    case ParamType::String: return v.is_string();
    case ParamType::Int: return v.is_number_integer();
    case ParamType::Bool: return v.is_boolean();
    case ParamType::StringList:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
  }
  return false;
}

// The shape of the parameters: unknown, missing and mistyped ones are InvalidParameter.
void checkParameters(const Service::MethodSpec& spec, const json& p) {
  for (auto it = p.begin(); it != p.end(); ++it) {
    auto found = std::find_if(spec.params.begin(), spec.params.end(), [&](const ParamSpec& s) { return it.key() == s.name; });
    if (found == spec.params.end()) {
      std::string allowed;
      for (const auto& s : spec.params) allowed += (allowed.empty() ? "" : ", ") + std::string(s.name);
      throw Error(ErrorCode::InvalidParameter,
                  "unknown parameter \"" + it.key() + "\" for " + std::string(spec.name) +
                      (allowed.empty() ? "; it takes none" : "; it takes: " + allowed),
                  {{"parameter", it.key()}});
    }
    if (it->is_null() && !found->required) continue;
    if (!hasType(*it, found->type))
      throw Error(ErrorCode::InvalidParameter,
                  "parameter \"" + it.key() + "\" of " + std::string(spec.name) + " must be " + typeName(found->type),
                  {{"parameter", it.key()}});
  }
  for (const auto& s : spec.params)
    if (s.required && (!p.contains(s.name) || p[s.name].is_null()))
      throw Error(ErrorCode::InvalidParameter, "parameter \"" + std::string(s.name) + "\" of " + std::string(spec.name) + " is missing",
                  {{"parameter", s.name}});
}

// CreateVolume: a directory takes a path; network types their fields (service_volumes.cpp checks which apply).
std::vector<ParamSpec> volumeParams() {
  return {{"name", S, true},          {"type", S, true},           {"path", S, false},
          {"group", S, false},        {"driver", S, false},        {"host", S, false},
          {"port", I, false},         {"user", S, false},          {"remote_path", S, false},
          {"share", S, false},        {"domain", S, false},        {"smb_version", S, false},
          {"guest", B, false},        {"url", S, false},           {"tls_verify", B, false},
          {"nfs_version", S, false},  {"known_hosts", S, false},   {"host_key_check", B, false},
          {"password", S, false},     {"password_ref", S, false},  {"private_key", S, false},
          {"private_key_ref", S, false}, {"rclone_type", S, false}, {"rclone_options", L, false},
          {"rclone_secret_options", L, false}, {"mount_options", L, false}, {"read_write", B, false},
          {"auto_remount", B, false}, {"keep_mounted", B, false}};
}

// CreateRepository and ImportRepository (which also takes the password): a local repository takes a path, remote
// types their fields (service_repositories.cpp checks which apply).
std::vector<ParamSpec> repositoryParams(bool import) {
  std::vector<ParamSpec> params = {{"name", S, true}, {"type", S, true}, {"group", S, false}};
  if (import) params.push_back({"password", S, true});
  for (const auto& key : repositoryParameters()) {
    ParamType type = S;
    if (key == "port" || key == "limit_upload" || key == "limit_download") type = I;
    else if (key == "path_style" || key == "host_key_check" || key == "insecure_tls") type = B;
    else if (key == "rclone_options" || key == "rclone_secret_options") type = L;
    params.push_back({key.c_str(), type, false});
  }
  return params;
}

// CreateSchedule (name, volume, repository and cron required) and EditSchedule (name required; volume and
// repository cannot change: a schedule's snapshots and retention belong to them).
std::vector<ParamSpec> scheduleParams(bool create) {
  std::vector<ParamSpec> params = {{"name", S, true}};
  // kind: backup (the default; needs a volume), check or prune (of the repository alone).
  if (create) params.insert(params.end(), {{"kind", S, false}, {"volume", S, false}, {"repository", S, true}});
  params.push_back({"read_data_subset", S, false});
  params.insert(params.end(), {{"cron", S, create},
                               {"timezone", S, false},
                               {"jitter_seconds", I, false},
                               {"enabled", B, false},
                               {"includes", L, false},
                               {"excludes", L, false},
                               {"exclude_if_present", L, false},
                               {"one_file_system", B, false},
                               {"tags", L, false},
                               {"compression", S, false},
                               {"retries", I, false},
                               {"retry_delay_seconds", I, false},
                               {"keep_last", I, false},
                               {"keep_hourly", I, false},
                               {"keep_daily", I, false},
                               {"keep_weekly", I, false},
                               {"keep_monthly", I, false},
                               {"keep_yearly", I, false},
                               {"keep_within", S, false},
                               {"keep_tags", L, false}});
  return params;
}

}  // namespace

const std::vector<Service::MethodSpec>& Service::methods() {
  // The one place that says which action each method needs.
  static const std::vector<MethodSpec> table = {
      {"GetStatus", Action::View, {}, &Service::getStatus},
      // Network volumes need mount as well (checksOnTarget): they are mounted as root.
      {"CreateVolume", Action::Manage, volumeParams(), &Service::createVolume, false, Target::NewVolume},
      {"ListVolumes", Action::View, {}, &Service::listVolumes},
      {"GetVolume", Action::View, {{"name", S, true}}, &Service::getVolume, false, Target::Volume, "name"},
      {"DeleteVolume", Action::Manage, {{"name", S, true}}, &Service::deleteVolume, false, Target::Volume, "name"},
      {"MountVolume", Action::Mount, {{"name", S, true}}, &Service::mountVolume, false, Target::Volume, "name"},
      {"UnmountVolume", Action::Mount, {{"name", S, true}}, &Service::unmountVolume, false, Target::Volume, "name"},
      {"TestVolume", Action::Mount, {{"name", S, true}}, &Service::testVolume, false, Target::Volume, "name"},
      {"CreateRepository", Action::Manage, repositoryParams(false), &Service::createRepository},
      {"ImportRepository", Action::Manage, repositoryParams(true), &Service::importRepository},
      {"ListRepositories", Action::View, {}, &Service::listRepositories},
      {"GetRepository", Action::View, {{"name", S, true}}, &Service::getRepository, false, Target::Repository, "name"},
      {"DeleteRepository", Action::Manage, {{"name", S, true}}, &Service::deleteRepository, false, Target::Repository, "name"},
      {"StartBackup", Action::Backup, {{"volume", S, true}, {"repository", S, true}, {"tags", L, false}, {"excludes", L, false}},
       &Service::startBackup, false, Target::Backup},
      {"StartRestore", Action::Restore,
       {{"repository", S, true}, {"snapshot", S, true}, {"target", S, true}, {"includes", L, false}}, &Service::startRestore,
       false, Target::Repository, "repository"},
      {"ForgetSnapshot", Action::Manage, {{"repository", S, true}, {"snapshot", S, true}}, &Service::forgetSnapshot, false,
       Target::Repository, "repository"},
      {"ListJobs", Action::View, {{"limit", I, false}, {"state", S, false}}, &Service::listJobs},
      {"GetJob", Action::View, {{"id", I, true}}, &Service::getJob, false, Target::Job, "id"},
      {"FollowJob", Action::View, {{"id", I, true}}, &Service::followJob, true, Target::Job, "id"},
      {"GetJobLog", Action::View, {{"id", I, true}}, &Service::getJobLog, false, Target::Job, "id"},
      // Backup for one's own jobs; admin for other users' (scopesFor).
      {"CancelJob", Action::Backup, {{"id", I, true}}, &Service::cancelJob, false, Target::Job, "id"},
      {"ListSnapshots", Action::View, {{"repository", S, true}, {"refresh", B, false}}, &Service::listSnapshots, false,
       Target::Repository, "repository"},
      {"ListFiles", Action::View, {{"repository", S, true}, {"snapshot", S, true}, {"path", S, false}}, &Service::listFiles,
       false, Target::Repository, "repository"},
      {"RevealRepositoryPassword", Action::ExportSecret, {{"name", S, true}}, &Service::revealRepositoryPassword, false,
       Target::Repository, "name", true},
      {"ChangeRepositoryPassword", Action::Manage, {{"name", S, true}}, &Service::changeRepositoryPassword, false,
       Target::Repository, "name"},
      {"CheckRepository", Action::Manage, {{"name", S, true}, {"connection", B, false}, {"read_data_subset", S, false}},
       &Service::checkRepository, false, Target::Repository, "name"},
      {"PruneRepository", Action::Manage, {{"name", S, true}}, &Service::pruneRepository, false, Target::Repository, "name"},
      // Stale locks only (dead processes on this host, or older than restic's limit).
      {"UnlockRepository", Action::Manage, {{"name", S, true}}, &Service::unlockRepository, false, Target::Repository, "name"},
      // Every lock, live ones too: an admin's escape hatch, audited with whose locks they were.
      {"RemoveAllRepositoryLocks", Action::Admin, {{"name", S, true}}, &Service::removeAllRepositoryLocks, false,
       Target::Repository, "name", true},
      {"GetRepositoryStats", Action::View, {{"name", S, true}}, &Service::getRepositoryStats, false, Target::Repository, "name"},
      {"RotateMasterKey", Action::Admin, {{"source", S, false}, {"path", S, false}, {"credential", S, false}},
       &Service::rotateMasterKey, false, Target::Daemon, nullptr, true},
      // Schedules: creating one needs manage on its volume and repository (its retention forgets snapshots).
      {"CreateSchedule", Action::Manage, scheduleParams(true), &Service::createSchedule, false, Target::NewSchedule},
      {"ListSchedules", Action::View, {}, &Service::listSchedules},
      {"GetSchedule", Action::View, {{"name", S, true}}, &Service::getSchedule, false, Target::Schedule, "name"},
      {"EditSchedule", Action::Manage, scheduleParams(false), &Service::editSchedule, false, Target::Schedule, "name"},
      {"DeleteSchedule", Action::Manage, {{"name", S, true}}, &Service::deleteSchedule, false, Target::Schedule, "name"},
      {"EnableSchedule", Action::Manage, {{"name", S, true}}, &Service::enableSchedule, false, Target::Schedule, "name"},
      {"DisableSchedule", Action::Manage, {{"name", S, true}}, &Service::disableSchedule, false, Target::Schedule, "name"},
      {"RunSchedule", Action::Backup, {{"name", S, true}}, &Service::runSchedule, false, Target::Schedule, "name"},
      {"GetScheduleFireTimes", Action::View, {{"name", S, true}, {"count", I, false}}, &Service::getScheduleFireTimes, false,
       Target::Schedule, "name"},
      {"PreviewRetention", Action::Manage, {{"name", S, true}}, &Service::previewRetention, false, Target::Schedule, "name"},
      {"ListAudit", Action::Admin, {{"since", I, false}, {"user", S, false}, {"action", S, false}, {"limit", I, false}},
       &Service::listAudit},
  };

  return table;
}

Service::Service(loop::EventLoop& loop, process::ProcessRunner& runner, store::Store& store, secrets::Vault& vault,
                 Authorizer& authorizer, ServiceSettings settings)
    : m_loop(loop),
      m_runner(runner),
      m_store(store),
      m_vault(vault),
      m_authorizer(authorizer),
      m_audit(store),
      m_settings(std::move(settings)),
      m_startTime(now()),
      m_mounter(std::make_unique<mount::Mounter>(loop, runner, store, m_settings.mount)) {
  loadSchedules();
}

Service::~Service() = default;

// The caller allows an authentication dialog for this request (zerobytectl sets it when it runs
// a polkit agent). Every method accepts it.
constexpr const char* kInteractiveParam = "allow_interactive_authentication";

void Service::dispatch(const std::string& method, const json& parameters, RequestPtr request) {
  const auto& table = methods();
  auto spec = std::find_if(table.begin(), table.end(), [&](const MethodSpec& m) { return m.name == method; });
  if (spec == table.end()) {
    std::string full = "org.zerobyte.Daemon." + method;
    throw Error(ErrorCode::MethodNotFound, "no method " + full + "; see 'varlinkctl introspect' or zerobytectl --help",
                {{"method", full}});
  }
  json params = parameters;
  bool interactive = false;
  if (auto it = params.find(kInteractiveParam); it != params.end()) {
    if (!it->is_boolean() && !it->is_null())
      throw Error(ErrorCode::InvalidParameter, std::string("parameter \"") + kInteractiveParam + "\" must be a boolean",
                  {{"parameter", kInteractiveParam}});
    interactive = it->is_boolean() && it->get<bool>();
    params.erase(it);
  }
  checkParameters(*spec, params);
  if (spec->requiresMore && !request->wantsMore())
    throw Error(ErrorCode::ExpectedMore, std::string(spec->name) + " streams its replies: call it with \"more\": true");
  if (m_stopping && spec->action != Action::View) throw Error(ErrorCode::Busy, "zerobyted is stopping; try again when it is back");
  const Caller& caller = request->caller();
  admitRequest(caller.uid, spec->action != Action::View);
  auto checks = std::make_shared<std::vector<AccessCheck>>(checksFor(*spec, params, caller));
  const MethodSpec* specPtr = &*spec;
  const uid_t uid = caller.uid;
  ++m_checksInFlight[uid];
  // The count of checks in flight goes down exactly once, whether the decision comes or the authorizer throws.
  auto settled = std::make_shared<bool>(false);
  auto settle = [this, uid, settled] {
    if (std::exchange(*settled, true)) return;
    if (auto it = m_checksInFlight.find(uid); it != m_checksInFlight.end() && --it->second == 0) m_checksInFlight.erase(it);
  };
  try {
    authorizeDispatch(specPtr, std::move(params), request, checks, interactive, settle);
  } catch (...) {
    settle();
    throw;
  }
}

void Service::authorizeDispatch(const MethodSpec* specPtr, json params, const RequestPtr& request,
                                std::shared_ptr<std::vector<AccessCheck>> checks, bool interactive, std::function<void()> settle) {
  authorizeAll(request->caller(), checks, 0, interactive,
               [this, specPtr, params = std::move(params), request, checks, interactive, settle](const AccessCheck* denied,
                                                                                                const Decision& decision) {
                 settle();
                 // A denial is audited and counted even when the caller has gone meanwhile.
                 if (denied) return answerDenied(specPtr->name, *denied, decision, interactive, request);
                 if (!request->alive()) return;
                 // The resources were looked up by name before the decision, which may have taken minutes (a
                 // password prompt): what the handler acts on must be what was authorized.
                 try {
                   if (!sameResources(checksFor(*specPtr, params, request->caller()), *checks))
                     throw Error(ErrorCode::Conflict, "the resource changed owner or sharing while the request waited for "
                                                      "authorization; try again");
                 } catch (const Error& e) {
                   return request->fail(e);
                 }
                 RequestPtr r = request;
                 // Every request that may change something is audited with its outcome.
                 // The action the method needs is the last check (a view of the resource comes first).
                 const AccessCheck& last = checks->back();
                 if (specPtr->action != Action::View && !specPtr->auditsItself) {
                   std::string resource = checks->front().scope.resource;
                   auto name = params.find("name");
                   // A new schedule is the resource, not the volume it backs up (its first check).
                   if (specPtr->name == "CreateSchedule") resource.clear();
                   if (resource.empty() && name != params.end() && name->is_string()) {
                     const char* kind = specPtr->name == "CreateVolume"     ? "volume"
                                        : specPtr->name == "CreateSchedule" ? "schedule"
                                                                            : "repository";
                     resource = std::string(kind) + " \"" + name->get<std::string>() + "\"";
                   }
                   r = auditedRequest(request, m_audit, last.action, specPtr->name, resource);
                 }
                 try {
                   (this->*(specPtr->handler))(params, r);
                 } catch (const Error& e) {
                   r->fail(e);
                 } catch (const std::exception& e) {
                   log::error(std::string("internal error: ") + e.what());
                   r->fail(Error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
                 }
               });
}

bool Service::sameResources(const std::vector<AccessCheck>& a, const std::vector<AccessCheck>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const Scope &x = a[i].scope, &y = b[i].scope;
    if (a[i].action != b[i].action || x.resource != y.resource || x.ownerUid != y.ownerUid || x.groupGid != y.groupGid ||
        x.callerOwns != y.callerOwns)
      return false;
  }
  return true;
}

std::vector<Service::AccessCheck> Service::checksFor(const MethodSpec& spec, const json& p, const Caller& caller) const {
  std::vector<AccessCheck> checks = checksOnTarget(spec, p, caller);
  // What the caller may not see is not there for them: every other action on a resource is asked after `view`
  // of it, so that a refusal never tells that someone else's resource of that name exists.
  if (spec.target == Target::Daemon) return checks;
  std::vector<AccessCheck> out;
  for (const auto& check : checks) {
    if (check.action != Action::View) out.push_back({Action::View, check.scope});
    out.push_back(check);
  }
  return out;
}

std::vector<Service::AccessCheck> Service::checksOnTarget(const MethodSpec& spec, const json& p, const Caller& caller) const {
  std::vector<gid_t> groups = caller.uid == 0 ? std::vector<gid_t>{} : users::groupsOf(caller.uid);
  switch (spec.target) {
    case Target::Daemon: return {{spec.action, ownScope()}};
    case Target::NewVolume: {
      std::vector<AccessCheck> checks = {{spec.action, ownScope()}};
      if (auto type = optionalStringParam(p, "type"); type && *type != "directory") {
        Scope scope = ownScope();
        scope.resource = "volume " + optionalStringParam(p, "name").value_or("");
        checks.push_back({Action::Mount, scope});
      }
      return checks;
    }
    case Target::Volume: return {{spec.action, scopeOf(requireVolume(stringParam(p, spec.targetParam)), caller, groups)}};
    case Target::Repository:
      return {{spec.action, scopeOf(requireRepository(stringParam(p, spec.targetParam)), caller, groups)}};
    case Target::Backup:
      return {{spec.action, scopeOf(requireVolume(stringParam(p, "volume")), caller, groups)},
              {spec.action, scopeOf(requireRepository(stringParam(p, "repository")), caller, groups)}};
    case Target::Schedule:
      return {{spec.action, scopeOf(requireSchedule(stringParam(p, spec.targetParam)), caller, groups)}};
    case Target::NewSchedule: {
      std::vector<AccessCheck> checks;
      if (auto volume = optionalStringParam(p, "volume"))
        checks.push_back({spec.action, scopeOf(requireVolume(*volume), caller, groups)});
      checks.push_back({spec.action, scopeOf(requireRepository(stringParam(p, "repository")), caller, groups)});
      return checks;
    }
    case Target::Job: {
      int64_t id = p.at(spec.targetParam).get<int64_t>();
      auto job = id > 0 ? findJob(static_cast<uint64_t>(id)) : std::nullopt;
      if (!job) throw Error(ErrorCode::NotFound, "no job " + std::to_string(id) + "; see 'zerobytectl job list'");
      Scope scope = scopeOf(*job, caller, groups);
      // Cancelling another user's job is an admin's.
      Action action = spec.action == Action::Backup && !scope.callerOwns ? Action::Admin : spec.action;
      return {{action, scope}};
    }
  }
  return {{spec.action, ownScope()}};
}

// ---- parameters ----

std::string stringParam(const json& p, const char* key) { return p.at(key).get<std::string>(); }

std::optional<std::string> optionalStringParam(const json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

std::vector<std::string> stringListParam(const json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return {};
  return it->get<std::vector<std::string>>();
}

std::optional<int64_t> optionalIntParam(const json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return std::nullopt;
  return it->get<int64_t>();
}

bool boolParam(const json& p, const char* key) {
  auto it = p.find(key);
  return it != p.end() && it->is_boolean() && it->get<bool>();
}

std::string newId() {
  unsigned char bytes[4];
  if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) throw Error(ErrorCode::Internal, "getrandom failed");
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(hex[b >> 4]);
    id.push_back(hex[b & 15]);
  }
  return id;
}

// ---- lookups ----

void Service::setDeclared(const config::Config& config) {
  // A declared network volume that a reload removed or changed is unmounted (when no job uses it).
  for (const auto& old : m_declaredVolumes) {
    if (!old.isNetwork()) continue;
    auto kept = std::find_if(config.volumes.begin(), config.volumes.end(), [&](const core::Volume& v) { return v.id == old.id; });
    if (kept == config.volumes.end() || kept->type != old.type || kept->remote.url != old.remote.url ||
        kept->remote.host != old.remote.host || kept->remote.remotePath != old.remote.remotePath || !kept->remote.keepMounted)
      m_mounter->forget(old);
  }
  m_declaredVolumes = config.volumes;
  m_declaredRepositories = config.repositories;
  for (const auto& v : m_store.volumes())
    for (const auto& d : m_declaredVolumes)
      if (d.name == v.name)
        log::warning("volume \"" + v.name + "\" is declared in " + config.sourcePath +
                     " and also exists in the state directory; the declared one is used");
  for (const auto& r : m_store.repositories())
    for (const auto& d : m_declaredRepositories)
      if (d.name == r.name)
        log::warning("repository \"" + r.name + "\" is declared in " + config.sourcePath +
                     " and also exists in the state directory; the declared one is used");
  syncDeclaredSchedules(config);
  resourcesChanged();
}

void Service::resourcesChanged() {
  if (onResourcesChanged) onResourcesChanged();
}

void Service::setRoleGroups(RoleGroups groups) { m_roleGroups = std::move(groups); }

Service::Viewer Service::viewer(const Caller& caller) const {
  Viewer v{caller, {}, Role::Admin};
  if (caller.uid == 0) return v;
  v.groups = users::groupsOf(caller.uid);
  v.role = roleOfUser(caller.uid, m_roleGroups);
  return v;
}

template <typename Resource>
bool Service::mayViewNowOf(const Viewer& viewer, const Resource& resource) const {
  if (viewer.caller.uid == 0 || viewer.role >= Role::Viewer) return true;
  return allowedByRole(viewer.role, Action::View, scopeOf(resource, viewer.caller, viewer.groups));
}

bool Service::mayViewNow(const Viewer& viewer, const core::Volume& v) const { return mayViewNowOf(viewer, v); }
bool Service::mayViewNow(const Viewer& viewer, const core::Repository& r) const { return mayViewNowOf(viewer, r); }
bool Service::mayViewNow(const Viewer& viewer, const core::Job& j) const { return mayViewNowOf(viewer, j); }
bool Service::mayViewNow(const Viewer& viewer, const core::Schedule& s) const { return mayViewNowOf(viewer, s); }

void Service::setSettings(unsigned jobHistory, unsigned cancelGraceSeconds, unsigned maxConcurrentJobs, unsigned repositoryRetrySeconds) {
  m_settings.repositoryRetrySeconds = repositoryRetrySeconds;
  m_settings.jobHistory = jobHistory;
  m_settings.cancelGraceSeconds = cancelGraceSeconds;
  m_settings.maxConcurrentJobs = maxConcurrentJobs;
  startWaitingJobs();  // a higher limit starts waiting jobs at once
}

std::vector<core::Volume> Service::allVolumes() const {
  std::vector<core::Volume> out = m_declaredVolumes;
  for (auto& v : m_store.volumes())
    if (std::none_of(out.begin(), out.end(), [&](const core::Volume& d) { return d.name == v.name; })) out.push_back(std::move(v));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<core::Repository> Service::allRepositories() const {
  std::vector<core::Repository> out = m_declaredRepositories;
  for (auto& r : m_store.repositories())
    if (std::none_of(out.begin(), out.end(), [&](const core::Repository& d) { return d.name == r.name; })) out.push_back(std::move(r));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::optional<core::Volume> Service::findVolume(const std::string& name) const {
  for (auto& v : allVolumes())
    if (v.name == name) return v;
  return std::nullopt;
}

std::optional<core::Repository> Service::findRepository(const std::string& name) const {
  for (auto& r : allRepositories())
    if (r.name == name) return r;
  return std::nullopt;
}

core::Volume Service::requireVolume(const std::string& name) const {
  core::validateName(name, "volume name");
  auto v = findVolume(name);
  if (!v) throw Error(ErrorCode::NotFound, "no volume named \"" + name + "\"; see 'zerobytectl volume list'");
  return *v;
}

core::Repository Service::requireRepository(const std::string& name) const {
  core::validateName(name, "repository name");
  auto r = findRepository(name);
  if (!r) throw Error(ErrorCode::NotFound, "no repository named \"" + name + "\"; see 'zerobytectl repo list'");
  return *r;
}

std::optional<size_t> Service::cachedSnapshotCount(const std::string& repositoryId) const {
  auto cache = m_store.snapshotCache(repositoryId);
  if (!cache) return std::nullopt;
  return cache->snapshots.size();
}

// ---- status ----

void Service::getStatus(const json&, const RequestPtr& r) {
  json reply = {{"version", kVersion},
                {"restic_version", m_settings.resticVersion},
                {"uptime_seconds", now() - m_startTime},
                {"running_jobs", runningJobs()},
                {"queued_jobs", queuedJobs()},
                {"volumes", allVolumes().size()},
                {"repositories", allRepositories().size()},
                {"authorization", m_authorizer.mode()},
                {"authorization_detail", m_authorizer.describe()}};
  // Where the master key comes from is for administrators: the same check as any admin action.
  whenAllowed(r, Action::Admin, ownScope(), [this, r, reply = std::move(reply)](bool admin) mutable {
    reply["master_key"] = admin ? json{{"source", m_vault.source()}, {"key_id", secrets::hexKeyId(m_vault.keyId())}}
                                : json(nullptr);
    r->reply(std::move(reply));
  });
}

// ---- ownership ----

std::optional<uint32_t> Service::sharedGroup(const json& p, const Caller& caller) const {
  auto name = optionalStringParam(p, "group");
  if (!name) return std::nullopt;
  core::validateName(*name, "group name");
  auto gid = users::groupId(*name);
  if (!gid)
    throw Error(ErrorCode::InvalidArgument, "there is no group \"" + *name + "\" (see getent group)", {{"parameter", "group"}});
  if (caller.uid != 0 && !users::isInGroup(caller.uid, *gid))
    throw Error(ErrorCode::NotAuthorized,
                "you are not a member of group \"" + *name + "\"; a resource can be shared only with a group one is in",
                {{"parameter", "group"}});
  return *gid;
}

void Service::requireAccessAs(uid_t uid, const std::string& path, process::AccessKind kind, const char* what,
                              const char* parameter) const {
  auto identity = users::lookup(uid);
  if (!identity)
    throw Error(ErrorCode::NotAuthorized, "uid " + std::to_string(uid) + " has no entry in the user database",
                {{"parameter", parameter}});
  auto result = process::checkAccessAs(*identity, path, kind);
  if (!result.allowed)
    throw Error(ErrorCode::NotAuthorized,
                std::string(what) + " " + path + " is not " +
                    (kind == process::AccessKind::ReadDirectory ? "readable" : "writable") + " by " + identity->name + ": " +
                    result.reason + "; zerobyted acts for you only where you could act yourself",
                {{"parameter", parameter}});
}

// ---- volumes ----

void Service::listVolumes(const json&, const RequestPtr& r) {
  whenAllowed(r, Action::View, everyoneScope(), [this, r](bool all) {
    auto groups = users::groupsOf(r->caller().uid);
    json list = json::array();
    for (const auto& v : allVolumes())
      if (all || scopeOf(v, r->caller(), groups).callerOwns) list.push_back(volumeJson(v));
    r->reply({{"volumes", list}});
  });
}

void Service::getVolume(const json& p, const RequestPtr& r) { r->reply({{"volume", volumeJson(requireVolume(stringParam(p, "name")))}}); }

void Service::deleteVolume(const json& p, const RequestPtr& r) {
  auto v = requireVolume(stringParam(p, "name"));
  if (v.declared)
    throw Error(ErrorCode::ReadOnly, "volume \"" + v.name + "\" is declared in the configuration file; remove it there and reload");
  if (auto users = schedulesUsing(v.name, ""); !users.empty())
    throw Error(ErrorCode::Conflict, "volume \"" + v.name + "\" is backed up by schedule \"" + users.front() +
                                         "\"; delete the schedule first ('zerobytectl schedule delete " + users.front() + "')");
  for (const auto& [id, job] : m_jobs)
    if (job->job.volumeId == v.id)
      throw Error(ErrorCode::Conflict, "volume \"" + v.name + "\" is used by job " + std::to_string(id) + "; wait for it or cancel it");
  if (m_mounter->inUse(v.id))
    throw Error(ErrorCode::Busy, "volume \"" + v.name + "\" is being mounted or checked; try again in a moment");
  m_mounter->forget(v);
  auto txn = m_store.begin();
  txn.eraseVolume(v.id);
  txn.commit();
  log::info("volume \"" + v.name + "\" deleted by uid " + std::to_string(r->caller().uid));
  resourcesChanged();
  r->reply(json::object());
}

bool Service::repositoryHasActiveJobs(const std::string& repositoryId) const {
  return std::any_of(m_jobs.begin(), m_jobs.end(), [&](const auto& j) { return j.second->job.repositoryId == repositoryId; });
}

}  // namespace zerobyte::api
