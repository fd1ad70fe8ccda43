// The service layer: repositories of every type (local and remote), created with restic init or imported.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/repository_backend.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/process/run_as.h"
#include "daemon/secrets/random_bytes.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <limits>

namespace zerobyte::api {

using nlohmann::json;

// Every field of CreateRepository and ImportRepository besides name, type, group and password, in wire names
// (the type says which of them it takes: core::repositoryFieldsOf).
const std::vector<std::string>& repositoryParameters() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all = {"path",        "host",           "port",         "user",          "url",
                                    "endpoint",    "bucket",         "container",    "region",        "access_key_id",
                                    "path_style",  "account_id",     "account_name", "endpoint_suffix", "project_id",
                                    "project_name", "user_domain",   "project_domain", "known_hosts", "host_key_check",
                                    "rclone_type", "rclone_options", "rclone_secret_options", "ca_cert", "insecure_tls",
                                    "limit_upload", "limit_download", "compression"};
    for (const auto& c : core::allRepositoryCredentials()) {
      all.push_back(c);
      all.push_back(c + "_ref");
    }
    return all;
  }();
  return names;
}

namespace {

std::string dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

uint32_t limitParam(const json& p, const char* key) {
  auto value = optionalIntParam(p, key);
  if (!value) return 0;
  if (*value < 0 || *value > std::numeric_limits<uint32_t>::max())
    throw Error(ErrorCode::InvalidArgument, std::string(key) + " must be a number of KiB/s (0: unlimited)", {{"parameter", key}});
  return static_cast<uint32_t>(*value);
}

}  // namespace

Service::NewRepository Service::repositoryFromRequest(const json& p) const {
  NewRepository draft;
  core::Repository& repo = draft.repository;
  repo.name = stringParam(p, "name");
  repo.type = stringParam(p, "type");
  core::validateName(repo.name, "repository name");
  // An unknown type is refused (naming the types there are) before its fields are looked at.
  if (!core::isRepositoryType(repo.type)) core::validateRepository(repo, {});
  for (const auto& key : repositoryParameters()) {
    if (!present(p, key) || core::repositoryFieldApplies(repo.type, key)) continue;
    std::string list;
    for (const auto& f : core::repositoryFieldsOf(repo.type)) list += (list.empty() ? "" : ", ") + f;
    throw Error(ErrorCode::InvalidArgument, "\"" + key + "\" does not apply to a " + repo.type + " repository (it takes " + list + ")",
                {{"parameter", key}});
  }
  if (repo.type == "local" && !present(p, "path"))
    throw Error(ErrorCode::InvalidParameter, "parameter \"path\" is missing (a local repository needs it)", {{"parameter", "path"}});
  auto& r = repo.remote;
  auto text = [&p](const char* key) { return optionalStringParam(p, key).value_or(""); };
  repo.path = text("path");
  r.host = text("host");
  if (auto port = optionalIntParam(p, "port")) {
    if (*port < 1 || *port > 65535)
      throw Error(ErrorCode::InvalidArgument, "port " + std::to_string(*port) + " is not from 1 to 65535", {{"parameter", "port"}});
    r.port = static_cast<uint32_t>(*port);
  }
  r.user = text("user");
  r.url = text("url");
  r.endpoint = text("endpoint");
  r.bucket = present(p, "container") ? text("container") : text("bucket");
  r.region = text("region");
  r.accessKeyId = text("access_key_id");
  r.pathStyle = present(p, "path_style") && boolParam(p, "path_style");
  r.account = present(p, "account_name") ? text("account_name") : text("account_id");
  r.endpointSuffix = text("endpoint_suffix");
  r.project = present(p, "project_name") ? text("project_name") : text("project_id");
  r.userDomain = text("user_domain");
  r.projectDomain = text("project_domain");
  r.knownHosts = text("known_hosts");
  r.hostKeyCheck = !present(p, "host_key_check") || boolParam(p, "host_key_check");
  r.rcloneType = text("rclone_type");
  r.rcloneOptions = rcloneOptionsParam(p, "rclone_options", false);
  auto secretOptions = rcloneOptionsParam(p, "rclone_secret_options", true);
  r.rcloneOptions.insert(r.rcloneOptions.end(), secretOptions.begin(), secretOptions.end());
  r.caCert = text("ca_cert");
  r.insecureTls = present(p, "insecure_tls") && boolParam(p, "insecure_tls");
  r.limitUploadKiB = limitParam(p, "limit_upload");
  r.limitDownloadKiB = limitParam(p, "limit_download");
  r.compression = text("compression");

  std::vector<std::string> given;
  for (const auto& name : core::repositoryCredentialsOf(repo.type)) {
    auto value = optionalStringParam(p, name.c_str());
    auto ref = optionalStringParam(p, (name + "_ref").c_str());
    if (value && ref)
      throw Error(ErrorCode::InvalidArgument, "give " + name + " or a reference to it (" + name + "_ref), not both",
                  {{"parameter", name + "_ref"}});
    if (!value && !ref) continue;
    core::RepositoryCredential credential;
    credential.name = name;
    if (ref) {
      secrets::validateReference(*ref);
      credential.ref = *ref;
    } else {
      std::string v = *value;
      // A file's final newline belongs to the file, not to a password or token (a key keeps its own).
      if (name != "private_key" && name != "service_account")
        while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
      core::validateRepositoryCredential(name, v);
      draft.credentialValues.emplace_back(name, std::move(v));
    }
    repo.credentials.push_back(std::move(credential));
    given.push_back(name);
  }
  core::validateRepository(repo, given);
  if (!r.endpointSuffix.empty() && m_settings.resticVersion.rfind("0.14", 0) == 0)
    throw Error(ErrorCode::InvalidArgument,
                "restic " + m_settings.resticVersion + " has no setting for an Azure endpoint suffix (restic 0.16 and later read "
                "AZURE_ENDPOINT_SUFFIX); leave endpoint_suffix out for Azure's public cloud, or install a newer restic",
                {{"parameter", "endpoint_suffix"}});
  if (r.insecureTls)
    log::warning("repository \"" + repo.name + "\" is configured with insecure_tls: restic will not verify the server's "
                 "certificate, so anyone on the path can read and change what it sends");
  return draft;
}

void Service::createRepository(const json& p, const RequestPtr& r) {
  auto draft = repositoryFromRequest(p);
  auto password = secrets::randomPassword();
  draft.repository.groupGid = sharedGroup(p, r->caller());
  addRepository(std::move(draft), password.value(), core::JobOperation::Init, r);
}

void Service::importRepository(const json& p, const RequestPtr& r) {
  auto draft = repositoryFromRequest(p);
  std::string password = stringParam(p, "password");
  if (password.empty()) throw Error(ErrorCode::InvalidArgument, "the repository password is empty", {{"parameter", "password"}});
  if (password.size() > 4096) throw Error(ErrorCode::InvalidArgument, "the repository password is longer than 4096 bytes", {{"parameter", "password"}});
  draft.repository.groupGid = sharedGroup(p, r->caller());
  addRepository(std::move(draft), password, core::JobOperation::Import, r);
}

// Init (a new repository) or import (an existing one): the record is stored only when restic
// succeeded with the password, together with the job, in one transaction.
void Service::addRepository(NewRepository draft, const std::string& password, core::JobOperation operation, const RequestPtr& r) {
  const std::string name = draft.repository.name;
  if (findRepository(name) || m_pendingNames.count(name))
    throw Error(ErrorCode::AlreadyExists, "a repository named \"" + name + "\" exists already");
  // An admin's repository is used as root; anyone else's as its owner, and a local one only where they can write.
  auto shared = std::make_shared<NewRepository>(std::move(draft));
  whenAllowed(r, Action::Admin, ownScope(), [this, shared, password, operation, r](bool admin) {
    const core::Repository& repo = shared->repository;
    // zerobyted resolves references as root: a non-admin's repository (whose restic runs as them) could otherwise
    // carry a file only root may read to their own restic. Their credentials come as values.
    if (!admin) {
      for (const auto& c : repo.credentials)
        if (!c.ref.empty())
          throw Error(ErrorCode::NotAuthorized,
                      c.name + "_ref: only an admin may give a credential as a reference (zerobyted resolves it as root); "
                               "give the value instead (zerobytectl --" + dashed(c.name) + "-file FILE)",
                      {{"action", actionId(Action::Admin)}, {"parameter", c.name + "_ref"}});
      for (const auto& o : repo.remote.rcloneOptions)
        if (o.secret)
          throw Error(ErrorCode::NotAuthorized,
                      "rclone_secret_options: only an admin may give rclone secrets as references (zerobyted resolves them "
                      "as root); ask an admin to create the repository",
                      {{"action", actionId(Action::Admin)}, {"parameter", "rclone_secret_options"}});
    }
    if (repo.type == "local") {
      if (!admin) requireAccessAs(r->caller().uid, repo.path, process::AccessKind::WriteDirectory, "repository path", "path");
      // Looked at only after the caller's own access check: no peeking through root at other places.
      struct stat st {};
      if (operation == core::JobOperation::Init && stat((repo.path + "/config").c_str(), &st) == 0)
        throw Error(ErrorCode::AlreadyExists, "there is a restic repository at " + repo.path +
                                                  " already; adopt it with 'zerobytectl repo import " + repo.name +
                                                  " --path " + repo.path + "'");
    }
    submitRepository(std::move(*shared), password, admin, operation, r);
  });
}

void Service::submitRepository(NewRepository draft, const std::string& password, bool privileged, core::JobOperation operation,
                               const RequestPtr& r) {
  core::Repository repo = std::move(draft.repository);
  const std::string name = repo.name;
  if (findRepository(name) || m_pendingNames.count(name))
    throw Error(ErrorCode::AlreadyExists, "a repository named \"" + name + "\" exists already");
  repo.privileged = privileged;
  repo.id = newId();
  repo.ownerUid = r->caller().uid;
  repo.created = now();
  repo.password = m_vault.seal(password, passwordRecord(repo));
  for (const auto& [credentialName, value] : draft.credentialValues)
    for (auto& c : repo.credentials)
      if (c.name == credentialName) c.sealed = m_vault.seal(value, repositoryCredentialRecord(repo, c.name));
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
    log::info("repository \"" + name + "\" (" + core::describeRepository(active.repository) + ") " +
              (created ? "created" : "imported") + " by uid " + std::to_string(active.job.startedByUid));
    if (!created) invalidateSnapshots(active.repository.id, true);
    r->reply({{"repository", toJson(active.repository, created ? std::optional<size_t>(0) : std::nullopt)}, {"job", toJson(active.job)}});
  });
}

void Service::listRepositories(const json&, const RequestPtr& r) {
  whenAllowed(r, Action::View, everyoneScope(), [this, r](bool all) {
    auto groups = users::groupsOf(r->caller().uid);
    json list = json::array();
    for (const auto& repo : allRepositories())
      if (all || scopeOf(repo, r->caller(), groups).callerOwns) list.push_back(toJson(repo, cachedSnapshotCount(repo.id)));
    r->reply({{"repositories", list}});
  });
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
  if (auto users = schedulesUsing("", repo.name); !users.empty())
    throw Error(ErrorCode::Conflict, "repository \"" + repo.name + "\" is backed up into by schedule \"" + users.front() +
                                         "\"; delete the schedule first ('zerobytectl schedule delete " + users.front() + "')");
  auto txn = m_store.begin();
  txn.eraseRepository(repo.id);
  txn.commit();
  log::info("repository \"" + repo.name + "\" removed by uid " + std::to_string(r->caller().uid) + "; its data at " +
            core::describeRepository(repo) + " is untouched");
  resourcesChanged();
  r->reply(json::object());
}

}  // namespace zerobyte::api
