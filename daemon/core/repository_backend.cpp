// Repository types: fields, validation and restic's repository string, flags, environment and files per type.
#include "daemon/core/repository_backend.h"

#include "common/errors.h"
#include "daemon/core/mount_plan.h"
#include "daemon/core/remote_fields.h"
#include "daemon/core/validation.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace zerobyte::core {
namespace {

constexpr size_t kMaxCredentialBytes = 4096;
constexpr size_t kMaxServiceAccountBytes = 64 * 1024;
constexpr size_t kMaxPathBytes = 4095;
constexpr uint32_t kMaxLimitKiB = 10u * 1024 * 1024;  // 10 GiB/s: anything above is a typo

bool isHttpBackend(std::string_view type) {
  return type == "rest" || type == "s3" || type == "b2" || type == "azure" || type == "gcs" || type == "swift";
}

std::string credentialOf(const std::map<std::string, std::string>& credentials, const std::string& name,
                         std::string_view type) {
  auto it = credentials.find(name);
  if (it == credentials.end() || it->second.empty())
    throw Error(ErrorCode::SecretUnavailable, "the " + std::string(type) + " repository has no " + name + " set");
  return it->second;
}

std::string optionalCredential(const std::map<std::string, std::string>& credentials, const std::string& name) {
  auto it = credentials.find(name);
  return it == credentials.end() ? std::string() : it->second;
}

// A percent-encoded URL user or password: everything but RFC 3986's unreserved characters.
std::string percentEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// rest:SCHEME://USER:PASSWORD@HOST/PATH: restic 0.14 takes REST credentials only inside the URL. `password` is the
// percent-encoded password, or "***" for people.
std::string restRepository(const RepositoryRemote& r, const std::string& password) {
  if (r.user.empty()) return "rest:" + r.url;
  const size_t hostStart = r.url.find("//") + 2;
  return "rest:" + r.url.substr(0, hostStart) + percentEncode(r.user) + ":" + password + "@" + r.url.substr(hostStart);
}

bool has(const std::vector<std::string>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// A name inside a bucket or container: relative, '/'-separated, no "..", no control characters.
void validatePrefix(const std::string& path) {
  if (path.size() > kMaxPathBytes) invalid("path", "path is longer than 4095 bytes");
  validateRelative(path, "path", "bucket or container");
}

void validateBucket(const std::string& bucket, const char* parameter, std::string_view what, size_t min, size_t max,
                    std::string_view extra, bool lowercase) {
  if (bucket.empty()) invalid(parameter, std::string(parameter) + " is required (the " + std::string(what) + ")");
  const bool caseOk = !lowercase || std::none_of(bucket.begin(), bucket.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  if (bucket.size() < min || bucket.size() > max || !allOf(bucket, extra) || !caseOk ||
      !std::isalnum(static_cast<unsigned char>(bucket.front())))
    invalid(parameter, std::string(parameter) + " " + quoteValue(bucket) + " is not a valid " + std::string(what) + " name; use " +
                           std::to_string(min) + " to " + std::to_string(max) + (lowercase ? " lowercase" : "") +
                           " letters, digits and " + std::string(extra.size() == 1 ? "'-'" : "'-', '.'") +
                           ", starting with a letter or digit");
}

void validatePlainToken(const std::string& value, const char* parameter, std::string_view what, bool required) {
  if (value.empty()) {
    if (required) invalid(parameter, std::string(parameter) + " is required (" + std::string(what) + ")");
    return;
  }
  if (value.size() > 256 || !allOf(value, "-_.+/=:@"))
    invalid(parameter, std::string(parameter) + " " + quoteValue(value) + " is not " + std::string(what) +
                           "; use letters, digits and - _ . + / = : @ (at most 256)");
}

void validateEndpoint(const std::string& endpoint) {
  if (endpoint.empty()) return;  // Amazon S3
  std::string_view rest = endpoint;
  if (rest.starts_with("https://")) rest.remove_prefix(8);
  else if (rest.starts_with("http://")) rest.remove_prefix(7);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos)
    invalid("endpoint", "endpoint must not carry credentials; give the access key id and the secret access key as their own fields");
  if (rest.empty() || rest.size() > 260 || rest.find('/') != std::string_view::npos || !allOf(rest, ".-:[]") ||
      rest.front() == '-' || rest.front() == '.')
    invalid("endpoint", "endpoint " + quoteValue(endpoint) +
                            " is not HOST[:PORT] or http(s)://HOST[:PORT] (no path; the bucket is its own field)");
}

void requireAbsent(const Repository& repo, bool present, const char* parameter) {
  if (present)
    invalid(parameter, std::string(parameter) + " does not apply to a " + repo.type + " repository");
}

}  // namespace

const std::vector<std::string>& repositoryTypes() {
  static const std::vector<std::string> types = {"local", "sftp", "rest", "s3", "b2", "azure", "gcs", "swift", "rclone"};
  return types;
}

bool isRepositoryType(std::string_view type) { return has(repositoryTypes(), type); }

std::vector<std::string> repositoryCredentialsOf(std::string_view type) {
  if (type == "sftp") return {"private_key"};
  if (type == "rest" || type == "swift") return {"server_password"};
  if (type == "s3") return {"secret_access_key"};
  if (type == "b2") return {"account_key"};
  if (type == "azure") return {"account_key", "sas_token"};
  if (type == "gcs") return {"service_account"};
  return {};
}

const std::vector<std::string>& allRepositoryCredentials() {
  static const std::vector<std::string> names = {"private_key", "server_password", "secret_access_key", "account_key",
                                                 "sas_token", "service_account"};
  return names;
}

std::vector<std::string> repositoryFieldsOf(std::string_view type) {
  std::vector<std::string> fields;
  if (type == "local") fields = {"path"};
  else if (type == "sftp") fields = {"host", "port", "user", "path", "known_hosts", "host_key_check"};
  else if (type == "rest") fields = {"url", "user"};
  else if (type == "s3") fields = {"endpoint", "bucket", "path", "region", "access_key_id", "path_style"};
  else if (type == "b2") fields = {"bucket", "path", "account_id"};
  else if (type == "azure") fields = {"account_name", "container", "path", "endpoint_suffix"};
  else if (type == "gcs") fields = {"project_id", "bucket", "path"};
  else if (type == "swift") fields = {"url", "container", "path", "user", "project_name", "region", "user_domain", "project_domain"};
  else if (type == "rclone") fields = {"rclone_type", "rclone_options", "rclone_secret_options", "path"};
  else return {};
  for (const auto& c : repositoryCredentialsOf(type)) {
    fields.push_back(c);
    fields.push_back(c + "_ref");
  }
  fields.insert(fields.end(), {"limit_upload", "limit_download", "compression"});
  if (isHttpBackend(type)) fields.insert(fields.end(), {"ca_cert", "insecure_tls"});
  return fields;
}

bool repositoryFieldApplies(std::string_view type, std::string_view key) {
  // The configuration file's spelling of the secret rclone options.
  if (key == "rclone_secrets") key = "rclone_secret_options";
  return has(repositoryFieldsOf(type), key);
}

void validateRepositoryCredential(std::string_view name, std::string_view value) {
  const std::string parameter(name);
  if (name == "private_key") return validatePrivateKey(value);
  if (value.empty()) invalid(parameter, parameter + " is empty");
  if (name == "service_account") {
    if (value.size() > kMaxServiceAccountBytes) invalid(parameter, "service_account is larger than 64 KiB");
    auto parsed = nlohmann::json::parse(value, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("type"))
      invalid(parameter, "service_account is not a Google service account key (the JSON file with \"type\": "
                         "\"service_account\" that the Cloud console downloads)");
    return;
  }
  if (value.size() > kMaxCredentialBytes) invalid(parameter, parameter + " is longer than 4096 bytes");
  if (hasControl(value))
    invalid(parameter, parameter + " contains a line break or another control character; a file's final newline is removed, "
                                   "any other is refused");
}

void validateRepository(const Repository& repo, const std::vector<std::string>& credentials) {
  if (!isRepositoryType(repo.type)) {
    std::string list;
    for (const auto& t : repositoryTypes()) list += (list.empty() ? "" : ", ") + t;
    invalid("type", "repository type " + quoteValue(repo.type) + " is not supported; use one of " + list);
  }
  const auto& r = repo.remote;
  for (const auto& c : credentials)
    if (!has(repositoryCredentialsOf(repo.type), c)) requireAbsent(repo, true, c.c_str());

  if (r.limitUploadKiB > kMaxLimitKiB) invalid("limit_upload", "limit_upload is in KiB/s and at most 10485760 (10 GiB/s)");
  if (r.limitDownloadKiB > kMaxLimitKiB) invalid("limit_download", "limit_download is in KiB/s and at most 10485760 (10 GiB/s)");
  if (!r.compression.empty()) {
    try {
      validateCompression(r.compression);
    } catch (const Error& e) {
      invalid("compression", e.what());
    }
  }
  if (!isHttpBackend(repo.type)) {
    requireAbsent(repo, !r.caCert.empty(), "ca_cert");
    requireAbsent(repo, r.insecureTls, "insecure_tls");
  }
  if (!r.caCert.empty()) {
    try {
      validateAbsolutePath(r.caCert, "ca_cert");
    } catch (const Error& e) {
      invalid("ca_cert", std::string(e.what()) + " (a PEM file of CA certificates on this machine)");
    }
  }

  if (repo.type == "local") {
    try {
      validateAbsolutePath(repo.path, "repository path");
    } catch (const Error& e) {
      invalid("path", e.what());
    }
    if (repo.path == "/") invalid("path", "repository path cannot be /");
    return;
  }
  if (repo.type == "sftp") {
    validateHost(r.host, "host", "host");
    if (r.port > 65535) invalid("port", "port must be 1 to 65535 (0 or none: 22)");
    validateUser(r.user, "user");
    if (repo.path.empty()) invalid("path", "path is required (the repository's directory on the server, e.g. /srv/restic/host1)");
    validateRemotePathText(repo.path, "path");
    if (repo.path.find_first_of(" \t'\"\\") != std::string::npos)
      invalid("path", "path " + quoteValue(repo.path) + " contains a space, a quote or a backslash; rename the directory");
    if (r.hostKeyCheck) validateKnownHosts(r.knownHosts);
    else if (!r.knownHosts.empty()) invalid("known_hosts", "known_hosts is given but host_key_check is false; drop one of them");
    if (!has(credentials, "private_key"))
      invalid("private_key", "an sftp repository needs private_key (or private_key_ref): restic logs in with a key only");
    return;
  }
  if (repo.type == "rest") {
    validateHttpUrl(r.url, "url", "user and server_password (the password as a secret)");
    if (!repo.path.empty()) invalid("path", "a rest repository's path is part of its url");
    if (!r.user.empty()) validateUser(r.user, "user");
    if (r.user.empty() && has(credentials, "server_password")) invalid("user", "server_password is given without user");
    if (!r.user.empty() && !has(credentials, "server_password"))
      invalid("server_password", "user is given without server_password (or server_password_ref)");
    return;
  }
  if (repo.type == "s3") {
    validateEndpoint(r.endpoint);
    validateBucket(r.bucket, "bucket", "S3 bucket", 3, 63, "-.", true);
    validatePrefix(repo.path);
    validatePlainToken(r.region, "region", "a region name (e.g. us-east-1)", false);
    validatePlainToken(r.accessKeyId, "access_key_id", "an access key id", true);
    if (!has(credentials, "secret_access_key"))
      invalid("secret_access_key", "an s3 repository needs secret_access_key (or secret_access_key_ref)");
    return;
  }
  if (repo.type == "b2") {
    validateBucket(r.bucket, "bucket", "B2 bucket", 6, 50, "-", false);
    validatePrefix(repo.path);
    validatePlainToken(r.account, "account_id", "a B2 account or application key id", true);
    if (!has(credentials, "account_key")) invalid("account_key", "a b2 repository needs account_key (or account_key_ref)");
    return;
  }
  if (repo.type == "azure") {
    if (r.account.empty() || r.account.size() < 3 || r.account.size() > 24 || !allOf(r.account, "") ||
        std::any_of(r.account.begin(), r.account.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }))
      invalid("account_name", "account_name " + quoteValue(r.account) +
                                  " is not an Azure storage account name (3 to 24 lowercase letters and digits)");
    validateBucket(r.bucket, "container", "Azure container", 3, 63, "-", true);
    validatePrefix(repo.path);
    if (!r.endpointSuffix.empty()) validateHost(r.endpointSuffix, "endpoint_suffix", "endpoint_suffix");
    const bool key = has(credentials, "account_key"), sas = has(credentials, "sas_token");
    if (key == sas)
      invalid(key ? "sas_token" : "account_key",
              "an azure repository needs exactly one of account_key and sas_token (or their _ref forms)");
    return;
  }
  if (repo.type == "gcs") {
    validatePlainToken(r.project, "project_id", "a Google Cloud project id", true);
    validateBucket(r.bucket, "bucket", "Cloud Storage bucket", 3, 63, "-._", true);
    validatePrefix(repo.path);
    if (!has(credentials, "service_account"))
      invalid("service_account", "a gcs repository needs service_account (the key JSON, or service_account_ref)");
    return;
  }
  if (repo.type == "swift") {
    validateHttpUrl(r.url, "url", "user and server_password (the password as a secret)");
    validateBucket(r.bucket, "container", "Swift container", 1, 256, "-._", false);
    validatePrefix(repo.path);
    validatePlainToken(r.user, "user", "a Keystone user name", true);
    validatePlainToken(r.project, "project_name", "a project (tenant) name", false);
    validatePlainToken(r.region, "region", "a region name", false);
    validatePlainToken(r.userDomain, "user_domain", "a domain name", false);
    validatePlainToken(r.projectDomain, "project_domain", "a domain name", false);
    if (!has(credentials, "server_password"))
      invalid("server_password", "a swift repository needs server_password (or server_password_ref)");
    return;
  }
  // rclone
  if (r.rcloneType.empty() || r.rcloneType.size() > 32 || !allOf(r.rcloneType, "") ||
      std::any_of(r.rcloneType.begin(), r.rcloneType.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }))
    invalid("rclone_type", "rclone_type " + quoteValue(r.rcloneType) +
                               " is not an rclone backend name (e.g. sftp, webdav, s3, drive; see 'rclone help backends')");
  auto options = r.rcloneOptions;
  validateRcloneOptions(options);
  if (repo.path.size() > kMaxPathBytes || hasControl(repo.path) || repo.path.find(':') != std::string::npos)
    invalid("path", "path " + quoteValue(repo.path) + " has a ':' or a control character, or is over 4095 bytes");
}

std::string describeRepository(const Repository& repo) {
  const auto& r = repo.remote;
  if (repo.type == "local") return repo.path;
  if (repo.type == "sftp")
    // restic's URL form (an absolute path then starts with "//"): its short form sftp:user@host:path splits at the
    // first ':', which an IPv6 address has.
    return "sftp://" + r.user + "@" + hostForUrl(r.host) + (r.port && r.port != 22 ? ":" + std::to_string(r.port) : "") + "/" +
           repo.path;
  if (repo.type == "rest") return restRepository(r, "***");
  if (repo.type == "s3") {
    std::string endpoint = r.endpoint.empty() ? "s3.amazonaws.com" : r.endpoint;
    if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://")) endpoint = "https://" + endpoint;
    if (endpoint.back() == '/') endpoint.pop_back();
    return "s3:" + endpoint + "/" + r.bucket + (repo.path.empty() ? "" : "/" + repo.path);
  }
  if (repo.type == "b2") return "b2:" + r.bucket + ":" + repo.path;
  if (repo.type == "azure") return "azure:" + r.bucket + ":/" + repo.path;
  if (repo.type == "gcs") return "gs:" + r.bucket + ":/" + repo.path;
  if (repo.type == "swift") return "swift:" + r.bucket + ":/" + repo.path;
  if (repo.type == "rclone") return "rclone:(" + r.rcloneType + "):" + repo.path;
  return repo.path;
}

ResticAccess planResticAccess(const Repository& repo, const std::map<std::string, std::string>& credentials,
                              const std::vector<std::pair<std::string, std::string>>& rcloneSecrets,
                              const ResticAccessContext& context) {
  const auto& r = repo.remote;
  ResticAccess access;
  // restic splits sftp.command at whitespace and reads quotes; the file names must have neither.
  if (context.fileDir.find_first_of(" \t\n'\"\\") != std::string::npos)
    throw Error(ErrorCode::Internal, "the credentials directory " + context.fileDir + " has a space or quote in its path");
  auto file = [&](const std::string& name, std::string content) {
    access.files.push_back({name, std::move(content)});
    return context.fileDir + "/" + name;
  };

  if (r.limitUploadKiB) access.args.insert(access.args.end(), {"--limit-upload", std::to_string(r.limitUploadKiB)});
  if (r.limitDownloadKiB) access.args.insert(access.args.end(), {"--limit-download", std::to_string(r.limitDownloadKiB)});
  if (!r.compression.empty()) access.args.insert(access.args.end(), {"--compression", r.compression});
  if (!r.caCert.empty()) access.args.insert(access.args.end(), {"--cacert", r.caCert});
  if (r.insecureTls) access.args.emplace_back("--insecure-tls");

  if (repo.type == "local") {
    access.repository = repo.path;
  } else if (repo.type == "sftp") {
    std::string key = credentialOf(credentials, "private_key", repo.type);
    if (!key.empty() && key.back() != '\n') key += '\n';  // ssh refuses a key file without its final newline
    const std::string keyFile = file("id", key);
    std::string command = context.sshProgram + " -F none -p " + std::to_string(r.port ? r.port : 22) + " -i " + keyFile +
                          " -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15"
                          " -o ServerAliveCountMax=3";
    if (r.hostKeyCheck) {
      std::string knownHosts = r.knownHosts;
      if (!knownHosts.empty() && knownHosts.back() != '\n') knownHosts += '\n';
      command += " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + file("known_hosts", knownHosts);
    } else {
      command += " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null";
    }
    // ssh's complaints (host key, login) go to a file of this child; an empty one is made here, so the name is ours.
    access.helperLog = "ssh.log";
    command += " -E " + file(access.helperLog, "");
    command += " " + r.user + "@" + r.host + " -s sftp";
    access.args.insert(access.args.end(), {"-o", "sftp.command=" + command});
    access.repository = describeRepository(repo);
  } else if (repo.type == "rest") {
    access.repositoryIsSecret = !r.user.empty();
    access.repository =
        restRepository(r, access.repositoryIsSecret ? percentEncode(credentialOf(credentials, "server_password", repo.type)) : "");
  } else if (repo.type == "s3") {
    access.repository = describeRepository(repo);
    access.env.push_back("AWS_ACCESS_KEY_ID=" + r.accessKeyId);
    access.env.push_back("AWS_SECRET_ACCESS_KEY=" + credentialOf(credentials, "secret_access_key", repo.type));
    if (!r.region.empty()) {
      access.args.insert(access.args.end(), {"-o", "s3.region=" + r.region});
      access.env.push_back("AWS_DEFAULT_REGION=" + r.region);
    }
    if (r.pathStyle) access.args.insert(access.args.end(), {"-o", "s3.bucket-lookup=path"});
  } else if (repo.type == "b2") {
    access.repository = describeRepository(repo);
    access.env.push_back("B2_ACCOUNT_ID=" + r.account);
    access.env.push_back("B2_ACCOUNT_KEY=" + credentialOf(credentials, "account_key", repo.type));
  } else if (repo.type == "azure") {
    access.repository = describeRepository(repo);
    access.env.push_back("AZURE_ACCOUNT_NAME=" + r.account);
    const std::string key = optionalCredential(credentials, "account_key");
    if (!key.empty()) access.env.push_back("AZURE_ACCOUNT_KEY=" + key);
    else access.env.push_back("AZURE_ACCOUNT_SAS=" + credentialOf(credentials, "sas_token", repo.type));
    if (!r.endpointSuffix.empty()) access.env.push_back("AZURE_ENDPOINT_SUFFIX=" + r.endpointSuffix);
  } else if (repo.type == "gcs") {
    access.repository = describeRepository(repo);
    access.env.push_back("GOOGLE_PROJECT_ID=" + r.project);
    access.env.push_back("GOOGLE_APPLICATION_CREDENTIALS=" +
                         file("service-account.json", credentialOf(credentials, "service_account", repo.type)));
  } else if (repo.type == "swift") {
    access.repository = describeRepository(repo);
    access.env.push_back("OS_AUTH_URL=" + r.url);
    access.env.push_back("OS_USERNAME=" + r.user);
    access.env.push_back("OS_PASSWORD=" + credentialOf(credentials, "server_password", repo.type));
    if (!r.project.empty()) access.env.push_back("OS_PROJECT_NAME=" + r.project);
    if (!r.region.empty()) access.env.push_back("OS_REGION_NAME=" + r.region);
    if (!r.userDomain.empty()) access.env.push_back("OS_USER_DOMAIN_NAME=" + r.userDomain);
    if (!r.projectDomain.empty()) access.env.push_back("OS_PROJECT_DOMAIN_NAME=" + r.projectDomain);
  } else if (repo.type == "rclone") {
    // rclone (started by restic) reads the remote from a configuration file of its own, never from argv.
    std::string config = "[zerobyte]\ntype = " + r.rcloneType + "\n";
    for (const auto& option : r.rcloneOptions) {
      if (option.secret) continue;
      config += option.name + " = " + option.value + "\n";
    }
    for (const auto& [name, value] : rcloneSecrets) {
      if (hasControl(value)) throw Error(ErrorCode::Internal, "the rclone option " + name + " has a control character");
      config += name + " = " + value + "\n";
    }
    access.env.push_back("RCLONE_CONFIG=" + file("rclone.conf", config));
    access.args.insert(access.args.end(), {"-o", "rclone.program=" + context.rcloneProgram});
    access.repository = "rclone:zerobyte:" + repo.path;
  } else {
    throw Error(ErrorCode::Internal, "no restic access for repository type " + quoteValue(repo.type));
  }
  return access;
}

}  // namespace zerobyte::core
