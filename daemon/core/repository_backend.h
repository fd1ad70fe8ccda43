// Repository types: which fields and credentials each takes, their validation, and how one restic child reaches
// the repository (its repository string, global flags, environment and credential files). Pure: no I/O; the
// service writes the files and starts restic. One place per type.
#pragma once

#include "daemon/core/model.h"

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerobyte::core {

// local, sftp, rest, s3, b2, azure, gcs, swift, rclone.
bool isRepositoryType(std::string_view type);
const std::vector<std::string>& repositoryTypes();
// The request and configuration fields a repository type takes besides name, type and group, in wire names:
// its own fields, its credentials (and their *_ref forms), rclone_secret_options for rclone, and the common
// options (limit_upload, limit_download, compression; ca_cert and insecure_tls for the HTTP(S) backends).
std::vector<std::string> repositoryFieldsOf(std::string_view type);
bool repositoryFieldApplies(std::string_view type, std::string_view key);
// The credentials a type takes, in wire names (sftp: private_key; rest: server_password; s3: secret_access_key;
// b2: account_key; azure: account_key, sas_token; gcs: service_account; swift: server_password).
std::vector<std::string> repositoryCredentialsOf(std::string_view type);
// Every credential name of every type.
const std::vector<std::string>& allRepositoryCredentials();

// Checks every field of `repo` for its type and that the credentials it needs are there (`credentials`: the names
// given, stored or referenced). Throws Error(InvalidArgument) naming the field ({"parameter": wire name}) and how to
// fix it.
void validateRepository(const Repository& repo, const std::vector<std::string>& credentials);
// A credential's value, before it is sealed: size, control characters, and form (a PEM private key, a JSON
// service account).
void validateRepositoryCredential(std::string_view name, std::string_view value);

// The repository as shown to people and logs: restic's repository string with any password masked
// ("rest:https://backup:***@host:8000/repo"), never a secret.
std::string describeRepository(const Repository& repo);

// What restic needs besides the repository record.
struct ResticAccessContext {
  std::string fileDir;        // a directory of its own for the files below (no whitespace or quote in it)
  std::string sshProgram;     // absolute path of ssh (sftp)
  std::string rcloneProgram;  // absolute path of rclone (rclone)
};
struct CredentialFile {
  std::string name;  // a plain file name inside fileDir (written 0600, removed when the child ends)
  std::string content;
};
// How one restic child reaches the repository.
struct ResticAccess {
  std::string repository;        // the repository string
  bool repositoryIsSecret = false;  // it holds a password (REST): never on argv; restic reads it from a file descriptor
  std::vector<std::string> args;    // global flags: -o backend options, --cacert, --insecure-tls, --limit-*, --compression
  std::vector<std::string> env;     // NAME=value for this child only (credentials restic reads only from its environment)
  std::vector<CredentialFile> files;
  // A file in fileDir where a helper under restic logs why it failed (ssh -E: restic 0.14 passes ssh's stderr on
  // from a goroutine that loses the race with its own exit), read once the child has ended; empty: none.
  std::string helperLog;
};
// `credentials`: name -> value of the repository's credentials; `rcloneSecrets`: the secret rclone options'
// values, already obscured where rclone wants them. Throws Error(Internal) if something validateRepository
// refuses slipped through, Error(SecretUnavailable) if a needed credential is missing.
ResticAccess planResticAccess(const Repository& repo, const std::map<std::string, std::string>& credentials,
                              const std::vector<std::pair<std::string, std::string>>& rcloneSecrets,
                              const ResticAccessContext& context);

}  // namespace zerobyte::core
