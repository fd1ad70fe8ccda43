// The service layer: revealing a repository password (audited), starting a password change, rotating the master key.
#include "daemon/api/audit.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

namespace zerobyte::api {

using nlohmann::json;

void Service::revealRepositoryPassword(const json& p, const RequestPtr& r) {
  const std::string name = stringParam(p, "name");
  try {
    secrets::SecretString password = passwordOf(requireRepository(name));
    m_audit.record(r->caller(), Action::ExportSecret, "RevealRepositoryPassword", "repository \"" + name + "\"", "revealed the password");
    r->reply({{"password", password.value()}});
  } catch (const Error& e) {
    m_audit.record(r->caller(), Action::ExportSecret, "RevealRepositoryPassword", "repository \"" + name + "\"", "not revealed: " + std::string(errorName(e.code())));
    throw;
  }
}

void Service::changeRepositoryPassword(const json& p, const RequestPtr& r) {
  auto repository = requireRepository(stringParam(p, "name"));
  if (repository.declared)
    throw Error(ErrorCode::ReadOnly, "repository \"" + repository.name + "\" is declared in the configuration file and its password comes from " +
                                         repository.passwordRef + "; change it there (restic key add and key remove by hand)");
  core::Job job;
  job.operation = core::JobOperation::ChangePassword;
  job.startedByUid = r->caller().uid;
  uint64_t id = submitPasswordChange(std::move(job), repository, false);
  r->reply({{"job", toJson(*findJob(id))}});
}

void Service::rotateMasterKey(const json& p, const RequestPtr& r) {
  const std::string source = optionalStringParam(p, "source").value_or("generate");
  const auto path = optionalStringParam(p, "path");
  const auto credential = optionalStringParam(p, "credential");
  const auto unexpected = [&](const char* parameter) {
    return Error(ErrorCode::InvalidArgument, std::string("parameter \"") + parameter + "\" does not go with source \"" + source + "\"",
                 {{"parameter", parameter}});
  };
  RotationRequest request;
  if (source == "generate") {
    if (path) throw unexpected("path");
    if (credential) throw unexpected("credential");
  } else if (source == "file") {
    if (!path) throw Error(ErrorCode::InvalidArgument, "source \"file\" needs \"path\": the key file to read", {{"parameter", "path"}});
    if (credential) throw unexpected("credential");
    core::validateAbsolutePath(*path, "key file");
    request.source = KeySource::File;
    request.path = *path;
  } else if (source == "credential") {
    if (!credential)
      throw Error(ErrorCode::InvalidArgument, "source \"credential\" needs \"credential\": the name of a credential of zerobyted.service",
                  {{"parameter", "credential"}});
    if (path) throw unexpected("path");
    request.source = KeySource::Credential;
    request.credential = *credential;
  } else {
    throw Error(ErrorCode::InvalidArgument, "unknown key source " + core::quoteValue(source) + "; use generate, file or credential",
                {{"parameter", "source"}});
  }
  const uint32_t previous = m_vault.keyId();
  try {
    RotationResult result = rotateKeyring(m_store, m_vault, m_settings.stateDirectory, request);
    m_audit.record(r->caller(), Action::Admin, "RotateMasterKey", "",
          "rotated the master key from " + secrets::hexKeyId(previous) + " to " + secrets::hexKeyId(result.keyId) + " (" +
              m_vault.source() + "); " + std::to_string(result.secrets) + " secret(s) re-sealed");
    r->reply({{"key_id", secrets::hexKeyId(result.keyId)}, {"secrets", result.secrets}});
  } catch (const Error& e) {
    m_audit.record(r->caller(), Action::Admin, "RotateMasterKey", "", "master key rotation failed: " + std::string(e.what()));
    throw;
  }
}

}  // namespace zerobyte::api
