// The service layer: method table, dispatch (parse → authorize → act), volumes, repositories, status.
#include "daemon/api/service.h"

#include "common/version.h"
#include "daemon/api/audit.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace zerobyte::api {

using nlohmann::json;

enum class ParamType { String, Int, Bool, StringList };

struct ParamSpec {
  const char* name;
  ParamType type;
  bool required;
};

struct Service::MethodSpec {
  std::string_view name;
  Action action;
  std::vector<ParamSpec> params;
  void (Service::*handler)(const json&, const RequestPtr&);
  bool requiresMore = false;
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

}  // namespace

const std::vector<Service::MethodSpec>& Service::methods() {
  // The one place that says which action each method needs.
  static const std::vector<MethodSpec> table = {
      {"GetStatus", Action::View, {}, &Service::getStatus},
      {"CreateVolume", Action::Manage, {{"name", S, true}, {"type", S, true}, {"path", S, true}}, &Service::createVolume},
      {"ListVolumes", Action::View, {}, &Service::listVolumes},
      {"GetVolume", Action::View, {{"name", S, true}}, &Service::getVolume},
      {"DeleteVolume", Action::Manage, {{"name", S, true}}, &Service::deleteVolume},
      {"CreateRepository", Action::Manage, {{"name", S, true}, {"type", S, true}, {"path", S, true}}, &Service::createRepository},
      {"ImportRepository", Action::Manage, {{"name", S, true}, {"type", S, true}, {"path", S, true}, {"password", S, true}},
       &Service::importRepository},
      {"ListRepositories", Action::View, {}, &Service::listRepositories},
      {"GetRepository", Action::View, {{"name", S, true}}, &Service::getRepository},
      {"DeleteRepository", Action::Manage, {{"name", S, true}}, &Service::deleteRepository},
      {"StartBackup", Action::Backup, {{"volume", S, true}, {"repository", S, true}, {"tags", L, false}, {"excludes", L, false}},
       &Service::startBackup},
      {"StartRestore", Action::Restore,
       {{"repository", S, true}, {"snapshot", S, true}, {"target", S, true}, {"includes", L, false}}, &Service::startRestore},
      {"ForgetSnapshot", Action::Manage, {{"repository", S, true}, {"snapshot", S, true}}, &Service::forgetSnapshot},
      {"ListJobs", Action::View, {{"limit", I, false}, {"state", S, false}}, &Service::listJobs},
      {"GetJob", Action::View, {{"id", I, true}}, &Service::getJob},
      {"FollowJob", Action::View, {{"id", I, true}}, &Service::followJob, true},
      {"GetJobLog", Action::View, {{"id", I, true}}, &Service::getJobLog},
      {"CancelJob", Action::Backup, {{"id", I, true}}, &Service::cancelJob},
      {"ListSnapshots", Action::View, {{"repository", S, true}, {"refresh", B, false}}, &Service::listSnapshots},
      {"ListFiles", Action::View, {{"repository", S, true}, {"snapshot", S, true}, {"path", S, false}}, &Service::listFiles},
      {"RevealRepositoryPassword", Action::ExportSecret, {{"name", S, true}}, &Service::revealRepositoryPassword},
      {"ChangeRepositoryPassword", Action::Manage, {{"name", S, true}}, &Service::changeRepositoryPassword},
      {"CheckRepository", Action::Manage, {{"name", S, true}, {"connection", B, false}}, &Service::checkRepository},
      {"RotateMasterKey", Action::Admin, {{"source", S, false}, {"path", S, false}, {"credential", S, false}},
       &Service::rotateMasterKey},
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
      m_settings(std::move(settings)),
      m_startTime(now()) {}

Service::~Service() = default;

void Service::dispatch(const std::string& method, const json& parameters, RequestPtr request) {
  const auto& table = methods();
  auto spec = std::find_if(table.begin(), table.end(), [&](const MethodSpec& m) { return m.name == method; });
  if (spec == table.end()) {
    std::string full = "org.zerobyte.Daemon." + method;
    throw Error(ErrorCode::MethodNotFound, "no method " + full + "; see 'varlinkctl introspect' or zerobytectl --help",
                {{"method", full}});
  }
  checkParameters(*spec, parameters);
  if (spec->requiresMore && !request->wantsMore())
    throw Error(ErrorCode::ExpectedMore, std::string(spec->name) + " streams its replies: call it with \"more\": true");
  if (m_stopping && spec->action != Action::View) throw Error(ErrorCode::Busy, "zerobyted is stopping; try again when it is back");
  Action action = spec->action;
  auto handler = spec->handler;
  m_authorizer.check(request->caller(), action, [this, action, handler, parameters, request](bool allowed) {
    if (!request->alive()) return;
    if (!allowed) {
      log::notice("denied " + actionId(action) + " to uid " + std::to_string(request->caller().uid) + " (pid " +
                  std::to_string(request->caller().pid) + ")");
      // Every attempt to read a secret is audited, refused ones too.
      if (action == Action::ExportSecret) {
        auto name = parameters.find("name");
        audit(request->caller(), action, name != parameters.end() && name->is_string() ? name->get<std::string>() : "",
              "denied");
      }
      request->fail(Error(ErrorCode::NotAuthorized,
                          "not authorized to " + std::string(actionName(action)) + " (action " + actionId(action) +
                              "); ask an administrator, or run as root or as a member of the admin group",
                          {{"action", actionId(action)}}));
      return;
    }
    try {
      (this->*handler)(parameters, request);
    } catch (const Error& e) {
      request->fail(e);
    } catch (const std::exception& e) {
      log::error(std::string("internal error: ") + e.what());
      request->fail(Error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
    }
  });
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
}

void Service::setSettings(unsigned jobHistory, unsigned cancelGraceSeconds) {
  m_settings.jobHistory = jobHistory;
  m_settings.cancelGraceSeconds = cancelGraceSeconds;
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
                {"authorization", m_authorizer.mode()}};
  // Where the master key comes from is for administrators: the same check as any admin action.
  m_authorizer.check(r->caller(), Action::Admin, [this, r, reply = std::move(reply)](bool admin) mutable {
    if (!r->alive()) return;
    reply["master_key"] = admin ? json{{"source", m_vault.source()}, {"key_id", secrets::hexKeyId(m_vault.keyId())}}
                                : json(nullptr);
    r->reply(std::move(reply));
  });
}

// ---- volumes ----

void Service::createVolume(const json& p, const RequestPtr& r) {
  std::string name = stringParam(p, "name"), type = stringParam(p, "type"), path = stringParam(p, "path");
  core::validateName(name, "volume name");
  if (type != "directory")
    throw Error(ErrorCode::InvalidArgument, "volume type \"" + log::sanitize(type) + "\" is not supported; use \"directory\"",
                {{"parameter", "type"}});
  core::validateAbsolutePath(path, "volume path");
  struct stat st {};
  if (stat(path.c_str(), &st) < 0)
    throw Error(ErrorCode::InvalidArgument, "volume path " + path + " cannot be used: " + std::strerror(errno), {{"parameter", "path"}});
  if (!S_ISDIR(st.st_mode))
    throw Error(ErrorCode::InvalidArgument, "volume path " + path + " is not a directory", {{"parameter", "path"}});
  if (findVolume(name)) throw Error(ErrorCode::AlreadyExists, "a volume named \"" + name + "\" exists already");
  core::Volume v;
  v.id = newId();
  v.name = name;
  v.type = type;
  v.path = path;
  v.ownerUid = r->caller().uid;
  v.created = now();
  auto txn = m_store.begin();
  txn.put(v);
  txn.commit();
  log::info("volume \"" + name + "\" (" + path + ") created by uid " + std::to_string(r->caller().uid));
  r->reply({{"volume", toJson(v)}});
}

void Service::listVolumes(const json&, const RequestPtr& r) {
  json list = json::array();
  for (const auto& v : allVolumes()) list.push_back(toJson(v));
  r->reply({{"volumes", list}});
}

void Service::getVolume(const json& p, const RequestPtr& r) { r->reply({{"volume", toJson(requireVolume(stringParam(p, "name")))}}); }

void Service::deleteVolume(const json& p, const RequestPtr& r) {
  auto v = requireVolume(stringParam(p, "name"));
  if (v.declared)
    throw Error(ErrorCode::ReadOnly, "volume \"" + v.name + "\" is declared in the configuration file; remove it there and reload");
  for (const auto& [id, job] : m_jobs)
    if (job->job.volumeId == v.id)
      throw Error(ErrorCode::Conflict, "volume \"" + v.name + "\" is used by job " + std::to_string(id) + "; wait for it or cancel it");
  auto txn = m_store.begin();
  txn.eraseVolume(v.id);
  txn.commit();
  log::info("volume \"" + v.name + "\" deleted by uid " + std::to_string(r->caller().uid));
  r->reply(json::object());
}

// ---- repositories ----

namespace {

void validateRepositoryFields(const std::string& name, const std::string& type, const std::string& path) {
  core::validateName(name, "repository name");
  if (type != "local")
    throw Error(ErrorCode::InvalidArgument, "repository type \"" + log::sanitize(type) + "\" is not supported; use \"local\"",
                {{"parameter", "type"}});
  core::validateAbsolutePath(path, "repository path");
  if (path == "/") throw Error(ErrorCode::InvalidArgument, "repository path cannot be /", {{"parameter", "path"}});
}

}  // namespace

void Service::createRepository(const json& p, const RequestPtr& r) {
  std::string name = stringParam(p, "name"), type = stringParam(p, "type"), path = stringParam(p, "path");
  validateRepositoryFields(name, type, path);
  struct stat st {};
  if (stat((path + "/config").c_str(), &st) == 0)
    throw Error(ErrorCode::AlreadyExists, "there is a restic repository at " + path + " already; adopt it with 'zerobytectl repo import " + name +
                                              " --path " + path + "'");
  auto password = secrets::randomPassword();
  addRepository(name, type, path, password.value(), core::JobOperation::Init, r);
}

void Service::importRepository(const json& p, const RequestPtr& r) {
  std::string name = stringParam(p, "name"), type = stringParam(p, "type"), path = stringParam(p, "path");
  std::string password = stringParam(p, "password");
  validateRepositoryFields(name, type, path);
  if (password.empty()) throw Error(ErrorCode::InvalidArgument, "the repository password is empty", {{"parameter", "password"}});
  if (password.size() > 4096) throw Error(ErrorCode::InvalidArgument, "the repository password is longer than 4096 bytes", {{"parameter", "password"}});
  addRepository(name, type, path, password, core::JobOperation::Import, r);
}

// Init (a new repository) or import (an existing one): the record is stored only when restic
// succeeded with the password, together with the job, in one transaction.
void Service::addRepository(const std::string& name, const std::string& type, const std::string& path, const std::string& password,
                            core::JobOperation operation, const RequestPtr& r) {
  if (findRepository(name) || m_pendingNames.count(name))
    throw Error(ErrorCode::AlreadyExists, "a repository named \"" + name + "\" exists already");
  core::Repository repo;
  repo.id = newId();
  repo.name = name;
  repo.type = type;
  repo.path = path;
  repo.ownerUid = r->caller().uid;
  repo.created = now();
  repo.password = m_vault.seal(password, passwordRecord(repo));
  m_pendingNames.insert(name);

  core::Job job;
  job.operation = operation;
  job.startedByUid = r->caller().uid;
  bool created = operation == core::JobOperation::Init;
  submitJob(job, repo, password, [this, r, name, created](ActiveJob& active, bool success) {
    m_pendingNames.erase(name);
    const char* verb = created ? "create" : "import";
    if (!success) {
      // A classified restic error names the repository already.
      if (active.error && active.error->code() != ErrorCode::Failed) return r->fail(*active.error);
      r->fail(Error(ErrorCode::Failed, std::string("cannot ") + verb + " repository \"" + name + "\": " + active.job.message));
      return;
    }
    auto txn = m_store.begin();
    txn.put(active.repository);
    txn.put(active.job);
    txn.commit();
    log::info("repository \"" + name + "\" (" + active.repository.path + ") " + (created ? "created" : "imported") + " by uid " +
              std::to_string(active.job.startedByUid));
    if (!created) invalidateSnapshots(active.repository.id, true);
    r->reply({{"repository", toJson(active.repository, created ? std::optional<size_t>(0) : std::nullopt)}, {"job", toJson(active.job)}});
  });
}

void Service::listRepositories(const json&, const RequestPtr& r) {
  json list = json::array();
  for (const auto& repo : allRepositories()) list.push_back(toJson(repo, cachedSnapshotCount(repo.id)));
  r->reply({{"repositories", list}});
}

void Service::getRepository(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  r->reply({{"repository", toJson(repo, cachedSnapshotCount(repo.id))}});
}

void Service::deleteRepository(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  if (repo.declared)
    throw Error(ErrorCode::ReadOnly, "repository \"" + repo.name + "\" is declared in the configuration file; remove it there and reload");
  if (repositoryHasActiveJobs(repo.id))
    throw Error(ErrorCode::Conflict, "repository \"" + repo.name + "\" has running or queued jobs; wait for them or cancel them");
  auto txn = m_store.begin();
  txn.eraseRepository(repo.id);
  txn.commit();
  log::info("repository \"" + repo.name + "\" removed by uid " + std::to_string(r->caller().uid) + "; its data at " + repo.path + " is untouched");
  r->reply(json::object());
}

bool Service::repositoryHasActiveJobs(const std::string& repositoryId) const {
  return std::any_of(m_jobs.begin(), m_jobs.end(), [&](const auto& j) { return j.second->job.repositoryId == repositoryId; });
}

}  // namespace zerobyte::api
