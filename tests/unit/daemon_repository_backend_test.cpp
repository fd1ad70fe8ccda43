// Repository types: what restic is given for each (repository string, global flags, environment, credential files),
// that no secret reaches argv or the shown repository (REST's password-bearing string excepted, flagged secret), and
// that validation names the field at fault. Pure functions: no restic and no server is run here.
#include "common/errors.h"
#include "daemon/core/model.h"
#include "daemon/core/repository_backend.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace zerobyte;
using core::Repository;
using core::ResticAccess;
using core::ResticAccessContext;

namespace {

const ResticAccessContext kContext{"/run/zerobyte/restic-credentials/r1-x", "/usr/bin/ssh", "/usr/bin/rclone"};
const std::string kDir = "/run/zerobyte/restic-credentials/r1-x";

const std::string kPrivateKey =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAsecretKeyMaterial\n-----END OPENSSH PRIVATE KEY-----";
const std::string kKnownHosts = "backup.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTest";
const std::string kRestPassword = "rest-Pass,1:x@/";
const std::string kS3Secret = "s3-Secret/Key+wJalrXUtnFEMI";
const std::string kB2Key = "b2-K005secretApplicationKey";
const std::string kAzureKey = "azure-AccountKey==secret";
const std::string kAzureSas = "sv=2021-06-08&ss=b&sig=azure-sas-secret%3D";
const std::string kServiceAccount =
    R"({"type": "service_account", "project_id": "zerobyte-project", "private_key": "gcs-secret-private-key"})";
const std::string kSwiftPassword = "swift-Pass word!";
const std::string kRcloneObscured = "rclone-obscured-secret-value";

Repository repository(const std::string& type) {
  Repository repo;
  repo.id = "r1";
  repo.name = "offsite";
  repo.type = type;
  auto& r = repo.remote;
  if (type == "local") {
    repo.path = "/srv/backup/restic";
  } else if (type == "sftp") {
    r.host = "backup.example";
    r.user = "backup";
    r.knownHosts = kKnownHosts;
    repo.path = "/srv/restic/host1";
  } else if (type == "rest") {
    r.url = "https://rest.example:8000/host1";
    r.user = "backup";
  } else if (type == "s3") {
    r.endpoint = "http://minio.example:9000";
    r.bucket = "zerobyte-backups";
    repo.path = "hosts/host1";
    r.region = "eu-central-1";
    r.accessKeyId = "AKIAEXAMPLE";
    r.pathStyle = true;
  } else if (type == "b2") {
    r.bucket = "zerobyte-b2";
    repo.path = "host1";
    r.account = "0012345abcdef";
  } else if (type == "azure") {
    r.account = "zerobytestore";
    r.bucket = "backups";
    repo.path = "host1";
  } else if (type == "gcs") {
    r.project = "zerobyte-project";
    r.bucket = "zerobyte-gcs";
    repo.path = "host1";
  } else if (type == "swift") {
    r.url = "https://keystone.example:5000/v3";
    r.bucket = "backups";
    repo.path = "host1";
    r.user = "backup";
    r.project = "tenant1";
    r.region = "RegionOne";
    r.userDomain = "Default";
    r.projectDomain = "Default";
  } else if (type == "rclone") {
    r.rcloneType = "webdav";
    r.rcloneOptions = {{"url", "https://dav.example/remote.php/dav", false},
                       {"vendor", "nextcloud", false},
                       {"user", "backup", false},
                       {"pass", "credential://dav-pass", true}};
    repo.path = "restic/host1";
  }
  return repo;
}

// The credential values a valid repository of `type` has (azure: the account key).
std::map<std::string, std::string> credentials(const std::string& type) {
  if (type == "sftp") return {{"private_key", kPrivateKey}};
  if (type == "rest") return {{"server_password", kRestPassword}};
  if (type == "s3") return {{"secret_access_key", kS3Secret}};
  if (type == "b2") return {{"account_key", kB2Key}};
  if (type == "azure") return {{"account_key", kAzureKey}};
  if (type == "gcs") return {{"service_account", kServiceAccount}};
  if (type == "swift") return {{"server_password", kSwiftPassword}};
  return {};
}

std::vector<std::string> namesOf(const std::map<std::string, std::string>& values) {
  std::vector<std::string> names;
  for (const auto& [name, value] : values) names.push_back(name);
  return names;
}

std::vector<std::pair<std::string, std::string>> rcloneSecrets(const std::string& type) {
  if (type == "rclone") return {{"pass", kRcloneObscured}};
  return {};
}

ResticAccess plan(const Repository& repo, const std::map<std::string, std::string>& values) {
  return core::planResticAccess(repo, values, rcloneSecrets(repo.type), kContext);
}

ResticAccess validatedPlan(const std::string& type) {
  const Repository repo = repository(type);
  core::validateRepository(repo, namesOf(credentials(type)));
  return plan(repo, credentials(type));
}

std::string fileContent(const ResticAccess& access, const std::string& name) {
  for (const auto& f : access.files)
    if (f.name == name) return f.content;
  return "<missing " + name + ">";
}

std::vector<std::string> fileNames(const ResticAccess& access) {
  std::vector<std::string> names;
  for (const auto& f : access.files) names.push_back(f.name);
  return names;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

using zbtest::unit::parameterOf;
using zbtest::unit::thrownError;

// validateRepository's error for `repo` with `names` credentials: InvalidArgument expected.
Error refusal(const Repository& repo, const std::vector<std::string>& names) {
  Error e = thrownError([&] { core::validateRepository(repo, names); });
  EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
  return e;
}

Error credentialRefusal(const std::string& name, const std::string& value) {
  Error e = thrownError([&] { core::validateRepositoryCredential(name, value); });
  EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
  EXPECT_EQ(parameterOf(e), name) << e.what();
  return e;
}

bool mentions(const Error& e, const std::string& text) { return std::string(e.what()).find(text) != std::string::npos; }

// restic 0.14's sftp ParseConfig (internal/backend/sftp/config.go), for the directory part only: "sftp://" is a URL
// (the path after the authority, less its first '/'); "sftp:" splits user@host from the path at the first ':'.
std::string resticSftpDirectory(const std::string& repository) {
  if (repository.rfind("sftp://", 0) == 0) {
    const std::string rest = repository.substr(7);
    const size_t slash = rest.find('/');
    return slash == std::string::npos ? "" : rest.substr(slash + 1);
  }
  const std::string rest = repository.substr(5);
  const size_t colon = rest.find(':');
  return colon == std::string::npos ? "" : rest.substr(colon + 1);
}

const std::vector<std::string> kAllTypes = {"local", "sftp", "rest", "s3", "b2", "azure", "gcs", "swift", "rclone"};
const std::vector<std::string> kHttpTypes = {"rest", "s3", "b2", "azure", "gcs", "swift"};
const std::vector<std::string> kNonHttpTypes = {"local", "sftp", "rclone"};

}  // namespace

// ---- The types and their fields -------------------------------------------------------------------------------

TEST(RepositoryBackend, TheNineTypesAreKnownAndNothingElse) {
  EXPECT_EQ(core::repositoryTypes(), kAllTypes);
  for (const auto& t : kAllTypes) EXPECT_TRUE(core::isRepositoryType(t)) << t;
  for (const char* t : {"", "ftp", "S3", "gs", "directory", "local "}) EXPECT_FALSE(core::isRepositoryType(t)) << t;
}

TEST(RepositoryBackend, EachTypeTakesItsOwnCredentials) {
  EXPECT_TRUE(core::repositoryCredentialsOf("local").empty());
  EXPECT_EQ(core::repositoryCredentialsOf("sftp"), std::vector<std::string>{"private_key"});
  EXPECT_EQ(core::repositoryCredentialsOf("rest"), std::vector<std::string>{"server_password"});
  EXPECT_EQ(core::repositoryCredentialsOf("s3"), std::vector<std::string>{"secret_access_key"});
  EXPECT_EQ(core::repositoryCredentialsOf("b2"), std::vector<std::string>{"account_key"});
  EXPECT_EQ(core::repositoryCredentialsOf("azure"), (std::vector<std::string>{"account_key", "sas_token"}));
  EXPECT_EQ(core::repositoryCredentialsOf("gcs"), std::vector<std::string>{"service_account"});
  EXPECT_EQ(core::repositoryCredentialsOf("swift"), std::vector<std::string>{"server_password"});
  EXPECT_TRUE(core::repositoryCredentialsOf("rclone").empty());
  for (const auto& t : kAllTypes)
    for (const auto& c : core::repositoryCredentialsOf(t)) EXPECT_TRUE(contains(core::allRepositoryCredentials(), c)) << c;
}

TEST(RepositoryBackend, FieldsApplyOnlyToTheTypesThatUseThem) {
  EXPECT_TRUE(core::repositoryFieldApplies("s3", "bucket"));
  EXPECT_FALSE(core::repositoryFieldApplies("sftp", "bucket"));
  EXPECT_TRUE(core::repositoryFieldApplies("sftp", "private_key"));
  EXPECT_TRUE(core::repositoryFieldApplies("sftp", "private_key_ref"));
  EXPECT_FALSE(core::repositoryFieldApplies("s3", "private_key_ref"));
  EXPECT_TRUE(core::repositoryFieldApplies("s3", "ca_cert"));
  EXPECT_FALSE(core::repositoryFieldApplies("local", "ca_cert"));
  EXPECT_TRUE(core::repositoryFieldApplies("rclone", "rclone_secrets"));  // the configuration file's spelling
  EXPECT_TRUE(core::repositoryFieldApplies("rclone", "rclone_secret_options"));
  EXPECT_FALSE(core::repositoryFieldApplies("s3", "rclone_secrets"));
  EXPECT_TRUE(core::repositoryFieldApplies("azure", "container"));
  EXPECT_TRUE(core::repositoryFieldApplies("azure", "sas_token_ref"));
  EXPECT_FALSE(core::repositoryFieldApplies("azure", "bucket"));
  EXPECT_TRUE(core::repositoryFieldApplies("sftp", "known_hosts"));
  EXPECT_TRUE(core::repositoryFieldApplies("sftp", "host_key_check"));
  EXPECT_FALSE(core::repositoryFieldApplies("rest", "known_hosts"));
  EXPECT_TRUE(core::repositoryFieldApplies("s3", "path_style"));
  EXPECT_TRUE(core::repositoryFieldApplies("gcs", "service_account_ref"));
  EXPECT_FALSE(core::repositoryFieldApplies("local", "url"));
  EXPECT_FALSE(core::repositoryFieldApplies("ftp", "path"));
  EXPECT_TRUE(core::repositoryFieldsOf("ftp").empty());
}

TEST(RepositoryBackend, CommonOptionsApplyToEveryTypeAndTlsOptionsOnlyToHttpBackends) {
  for (const auto& t : kAllTypes) {
    for (const char* key : {"limit_upload", "limit_download", "compression"})
      EXPECT_TRUE(core::repositoryFieldApplies(t, key)) << t << " " << key;
    for (const auto& c : core::repositoryCredentialsOf(t)) {
      EXPECT_TRUE(core::repositoryFieldApplies(t, c)) << t << " " << c;
      EXPECT_TRUE(core::repositoryFieldApplies(t, c + "_ref")) << t << " " << c;
    }
  }
  for (const auto& t : kHttpTypes) {
    EXPECT_TRUE(core::repositoryFieldApplies(t, "ca_cert")) << t;
    EXPECT_TRUE(core::repositoryFieldApplies(t, "insecure_tls")) << t;
  }
  for (const auto& t : kNonHttpTypes) {
    EXPECT_FALSE(core::repositoryFieldApplies(t, "ca_cert")) << t;
    EXPECT_FALSE(core::repositoryFieldApplies(t, "insecure_tls")) << t;
  }
}

// ---- What restic gets, per type ---------------------------------------------------------------------------------

TEST(RepositoryBackendAccess, LocalIsThePathAndNothingElse) {
  const ResticAccess a = validatedPlan("local");
  EXPECT_EQ(a.repository, "/srv/backup/restic");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_TRUE(a.args.empty());
  EXPECT_TRUE(a.env.empty());
  EXPECT_TRUE(a.files.empty());
  EXPECT_EQ(core::describeRepository(repository("local")), "/srv/backup/restic");
}

TEST(RepositoryBackendAccess, SftpRunsSshWithTheKeyAndKnownHostsAsFilesAndNoneOfRootsSshConfig) {
  Repository repo = repository("sftp");
  repo.remote.port = 2222;
  core::validateRepository(repo, {"private_key"});
  const ResticAccess a = plan(repo, credentials("sftp"));
  EXPECT_EQ(a.repository, "sftp://backup@backup.example:2222//srv/restic/host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  const std::vector<std::string> expected = {
      "-o", "sftp.command=/usr/bin/ssh -F none -p 2222 -i " + kDir +
                "/id -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15"
                " -o ServerAliveCountMax=3 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + kDir +
                "/known_hosts -E " + kDir + "/ssh.log backup@backup.example -s sftp"};
  EXPECT_EQ(a.args, expected);
  EXPECT_TRUE(a.env.empty());
  EXPECT_EQ(fileNames(a), (std::vector<std::string>{"id", "known_hosts", "ssh.log"}));
  EXPECT_EQ(fileContent(a, "ssh.log"), "") << "made empty by zerobyted; ssh appends why it failed";
  EXPECT_EQ(a.helperLog, "ssh.log");
  EXPECT_EQ(fileContent(a, "id"), kPrivateKey + "\n");  // ssh refuses a key without its final newline
  EXPECT_EQ(fileContent(a, "known_hosts"), kKnownHosts + "\n");
}

TEST(RepositoryBackendAccess, SftpOnTheDefaultPortIsShownInResticsShortForm) {
  const ResticAccess a = validatedPlan("sftp");
  EXPECT_NE(a.args.at(1).find(" -p 22 "), std::string::npos) << a.args.at(1);
  EXPECT_EQ(core::describeRepository(repository("sftp")), "sftp://backup@backup.example//srv/restic/host1");
}

TEST(RepositoryBackendAccess, SftpWithoutHostKeyCheckTrustsAnyKeyAndWritesNoKnownHosts) {
  Repository repo = repository("sftp");
  repo.remote.knownHosts.clear();
  repo.remote.hostKeyCheck = false;
  core::validateRepository(repo, {"private_key"});
  const ResticAccess a = plan(repo, credentials("sftp"));
  ASSERT_EQ(a.args.size(), 2u);
  EXPECT_NE(a.args[1].find(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -E " + kDir + "/ssh.log backup@backup.example -s sftp"),
            std::string::npos)
      << a.args[1];
  EXPECT_EQ(fileNames(a), (std::vector<std::string>{"id", "ssh.log"}));
}

TEST(RepositoryBackendAccess, RestWithAUserPutsThePercentEncodedPasswordInASecretRepositoryString) {
  const ResticAccess a = validatedPlan("rest");
  EXPECT_EQ(a.repository, "rest:https://backup:rest-Pass%2C1%3Ax%40%2F@rest.example:8000/host1");
  EXPECT_TRUE(a.repositoryIsSecret);
  EXPECT_TRUE(a.args.empty());
  EXPECT_TRUE(a.env.empty());
  EXPECT_TRUE(a.files.empty());
  EXPECT_EQ(core::describeRepository(repository("rest")), "rest:https://backup:***@rest.example:8000/host1");
}

TEST(RepositoryBackendAccess, RestPercentEncodesTheUserToo) {
  Repository repo = repository("rest");
  repo.remote.user = "back$up";
  core::validateRepository(repo, {"server_password"});
  const ResticAccess a = plan(repo, credentials("rest"));
  EXPECT_EQ(a.repository, "rest:https://back%24up:rest-Pass%2C1%3Ax%40%2F@rest.example:8000/host1");
  EXPECT_EQ(core::describeRepository(repo), "rest:https://back%24up:***@rest.example:8000/host1");
}

TEST(RepositoryBackendAccess, RestWithoutAUserIsThePlainUrlAndNotSecret) {
  Repository repo = repository("rest");
  repo.remote.user.clear();
  repo.remote.url = "http://[fd00::7]:8000/";
  core::validateRepository(repo, {});
  const ResticAccess a = plan(repo, {});
  EXPECT_EQ(a.repository, "rest:http://[fd00::7]:8000/");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_EQ(core::describeRepository(repo), "rest:http://[fd00::7]:8000/");
}

TEST(RepositoryBackendAccess, S3GetsTheKeysInTheEnvironmentAndRegionAndPathStyleAsBackendOptions) {
  const ResticAccess a = validatedPlan("s3");
  EXPECT_EQ(a.repository, "s3:http://minio.example:9000/zerobyte-backups/hosts/host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_EQ(a.args, (std::vector<std::string>{"-o", "s3.region=eu-central-1", "-o", "s3.bucket-lookup=path"}));
  EXPECT_EQ(a.env, (std::vector<std::string>{"AWS_ACCESS_KEY_ID=AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=" + kS3Secret,
                                             "AWS_DEFAULT_REGION=eu-central-1"}));
  EXPECT_TRUE(a.files.empty());
  EXPECT_EQ(core::describeRepository(repository("s3")), a.repository);
}

TEST(RepositoryBackendAccess, S3WithoutEndpointIsAmazonAndTakesNoRegionOrPathStyleUnlessGiven) {
  Repository repo = repository("s3");
  repo.remote.endpoint.clear();
  repo.remote.region.clear();
  repo.remote.pathStyle = false;
  repo.path.clear();
  core::validateRepository(repo, {"secret_access_key"});
  const ResticAccess a = plan(repo, credentials("s3"));
  EXPECT_EQ(a.repository, "s3:https://s3.amazonaws.com/zerobyte-backups");
  EXPECT_TRUE(a.args.empty());
  EXPECT_EQ(a.env, (std::vector<std::string>{"AWS_ACCESS_KEY_ID=AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=" + kS3Secret}));
}

TEST(RepositoryBackendAccess, S3EndpointWithoutSchemeIsHttpsAndATrailingSlashIsDropped) {
  Repository repo = repository("s3");
  repo.remote.endpoint = "minio.example:9000/";
  core::validateRepository(repo, {"secret_access_key"});
  EXPECT_EQ(plan(repo, credentials("s3")).repository, "s3:https://minio.example:9000/zerobyte-backups/hosts/host1");
}

// No server for this backend can run on this machine: repository string, environment and validation only.
TEST(RepositoryBackendAccess, B2RepositoryStringAndEnvironmentOnly) {
  const ResticAccess a = validatedPlan("b2");
  EXPECT_EQ(a.repository, "b2:zerobyte-b2:host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_TRUE(a.args.empty());
  EXPECT_EQ(a.env, (std::vector<std::string>{"B2_ACCOUNT_ID=0012345abcdef", "B2_ACCOUNT_KEY=" + kB2Key}));
  EXPECT_TRUE(a.files.empty());
  EXPECT_EQ(core::describeRepository(repository("b2")), a.repository);
}

// No server for this backend can run on this machine: repository string, environment and validation only.
TEST(RepositoryBackendAccess, AzureWithAnAccountKeyRepositoryStringAndEnvironmentOnly) {
  const ResticAccess a = validatedPlan("azure");
  EXPECT_EQ(a.repository, "azure:backups:/host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_TRUE(a.args.empty());
  EXPECT_EQ(a.env, (std::vector<std::string>{"AZURE_ACCOUNT_NAME=zerobytestore", "AZURE_ACCOUNT_KEY=" + kAzureKey}));
  EXPECT_TRUE(a.files.empty());
  EXPECT_EQ(core::describeRepository(repository("azure")), a.repository);
}

// No server for this backend can run on this machine: repository string, environment and validation only.
TEST(RepositoryBackendAccess, AzureWithASasTokenAndEndpointSuffixRepositoryStringAndEnvironmentOnly) {
  Repository repo = repository("azure");
  repo.remote.endpointSuffix = "core.chinacloudapi.cn";
  core::validateRepository(repo, {"sas_token"});
  const ResticAccess a = plan(repo, {{"sas_token", kAzureSas}});
  EXPECT_EQ(a.repository, "azure:backups:/host1");
  EXPECT_EQ(a.env, (std::vector<std::string>{"AZURE_ACCOUNT_NAME=zerobytestore", "AZURE_ACCOUNT_SAS=" + kAzureSas,
                                             "AZURE_ENDPOINT_SUFFIX=core.chinacloudapi.cn"}));
}

// No server for this backend can run on this machine: repository string, environment and validation only.
TEST(RepositoryBackendAccess, GcsRepositoryStringEnvironmentAndServiceAccountFileOnly) {
  const ResticAccess a = validatedPlan("gcs");
  EXPECT_EQ(a.repository, "gs:zerobyte-gcs:/host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_TRUE(a.args.empty());
  EXPECT_EQ(a.env, (std::vector<std::string>{"GOOGLE_PROJECT_ID=zerobyte-project",
                                             "GOOGLE_APPLICATION_CREDENTIALS=" + kDir + "/service-account.json"}));
  EXPECT_EQ(fileNames(a), std::vector<std::string>{"service-account.json"});
  EXPECT_EQ(fileContent(a, "service-account.json"), kServiceAccount);
  EXPECT_EQ(core::describeRepository(repository("gcs")), a.repository);
}

// No server for this backend can run on this machine: repository string, environment and validation only.
TEST(RepositoryBackendAccess, SwiftRepositoryStringAndEnvironmentOnly) {
  const ResticAccess a = validatedPlan("swift");
  EXPECT_EQ(a.repository, "swift:backups:/host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_TRUE(a.args.empty());
  EXPECT_EQ(a.env, (std::vector<std::string>{"OS_AUTH_URL=https://keystone.example:5000/v3", "OS_USERNAME=backup",
                                             "OS_PASSWORD=" + kSwiftPassword, "OS_PROJECT_NAME=tenant1",
                                             "OS_REGION_NAME=RegionOne", "OS_USER_DOMAIN_NAME=Default",
                                             "OS_PROJECT_DOMAIN_NAME=Default"}));
  EXPECT_TRUE(a.files.empty());
  EXPECT_EQ(core::describeRepository(repository("swift")), a.repository);
}

// No server for this backend can run on this machine: repository string, environment and validation only.
TEST(RepositoryBackendAccess, SwiftWithoutTheOptionalKeystoneFieldsSetsOnlyTheRequiredVariables) {
  Repository repo = repository("swift");
  repo.remote.project.clear();
  repo.remote.region.clear();
  repo.remote.userDomain.clear();
  repo.remote.projectDomain.clear();
  core::validateRepository(repo, {"server_password"});
  EXPECT_EQ(plan(repo, credentials("swift")).env,
            (std::vector<std::string>{"OS_AUTH_URL=https://keystone.example:5000/v3", "OS_USERNAME=backup",
                                      "OS_PASSWORD=" + kSwiftPassword}));
}

TEST(RepositoryBackendAccess, RcloneGetsItsRemoteFromAConfigurationFileOfItsOwn) {
  const ResticAccess a = validatedPlan("rclone");
  EXPECT_EQ(a.repository, "rclone:zerobyte:restic/host1");
  EXPECT_FALSE(a.repositoryIsSecret);
  EXPECT_EQ(a.args, (std::vector<std::string>{"-o", "rclone.program=/usr/bin/rclone"}));
  EXPECT_EQ(a.env, std::vector<std::string>{"RCLONE_CONFIG=" + kDir + "/rclone.conf"});
  EXPECT_EQ(fileNames(a), std::vector<std::string>{"rclone.conf"});
  // The secret option's reference never reaches the file; its resolved (obscured) value does.
  EXPECT_EQ(fileContent(a, "rclone.conf"),
            "[zerobyte]\ntype = webdav\nurl = https://dav.example/remote.php/dav\nvendor = nextcloud\nuser = backup\npass = " +
                kRcloneObscured + "\n");
  EXPECT_EQ(core::describeRepository(repository("rclone")), "rclone:(webdav):restic/host1");
}

// ---- Secrets ----------------------------------------------------------------------------------------------------

TEST(RepositoryBackendSecrets, NoSecretIsOnArgvOrInTheShownRepositoryForAnyType) {
  const std::vector<std::string> secrets = {kPrivateKey, "secretKeyMaterial", kRestPassword, "rest-Pass", kS3Secret, kB2Key,
                                            kAzureKey, kAzureSas, "gcs-secret-private-key", kSwiftPassword,
                                            kRcloneObscured, "credential://dav-pass"};
  for (const auto& type : kAllTypes) {
    const Repository repo = repository(type);
    const ResticAccess a = validatedPlan(type);
    const std::string shown = core::describeRepository(repo);
    for (const auto& secret : secrets) {
      for (const auto& arg : a.args) EXPECT_EQ(arg.find(secret), std::string::npos) << type << ": " << arg;
      EXPECT_EQ(shown.find(secret), std::string::npos) << type << ": " << shown;
      if (type != "rest") {
        EXPECT_EQ(a.repository.find(secret), std::string::npos) << type << ": " << a.repository;
      }
    }
    // Only REST's repository string carries a password, and it says so.
    EXPECT_EQ(a.repositoryIsSecret, type == "rest") << type;
  }
  // The percent-encoded form of the REST password is not shown either.
  EXPECT_EQ(core::describeRepository(repository("rest")).find("rest-Pass%2C1"), std::string::npos);
}

TEST(RepositoryBackendSecrets, AzureSasTokenIsNeverOnArgvOrShown) {
  Repository repo = repository("azure");
  const ResticAccess a = plan(repo, {{"sas_token", kAzureSas}});
  for (const auto& arg : a.args) EXPECT_EQ(arg.find("azure-sas-secret"), std::string::npos) << arg;
  EXPECT_EQ(a.repository.find("azure-sas-secret"), std::string::npos);
  EXPECT_EQ(core::describeRepository(repo).find("azure-sas-secret"), std::string::npos);
}

TEST(RepositoryBackendSecrets, AMissingCredentialIsSecretUnavailableAtPlanTime) {
  for (const auto& type : kAllTypes) {
    if (core::repositoryCredentialsOf(type).empty()) continue;
    Error e = thrownError([&] { plan(repository(type), {}); });
    EXPECT_EQ(e.code(), ErrorCode::SecretUnavailable) << type << ": " << e.what();
    e = thrownError([&] {
      std::map<std::string, std::string> empty;
      for (const auto& c : core::repositoryCredentialsOf(type)) empty[c] = "";
      plan(repository(type), empty);
    });
    EXPECT_EQ(e.code(), ErrorCode::SecretUnavailable) << type << ": " << e.what();
  }
}

TEST(RepositoryBackendSecrets, ACredentialDirectoryWithASpaceOrQuoteIsRefused) {
  for (const char* dir : {"/run/zero byte/r1", "/run/zerobyte/r'1", "/run/zerobyte/r\"1", "/run/zerobyte/r\t1"}) {
    ResticAccessContext context = kContext;
    context.fileDir = dir;
    Error e = thrownError([&] { core::planResticAccess(repository("sftp"), credentials("sftp"), {}, context); });
    EXPECT_EQ(e.code(), ErrorCode::Internal) << dir;
  }
}

TEST(RepositoryBackendSecrets, AnRcloneSecretWithALineBreakCannotAddLinesToTheConfiguration) {
  Error e = thrownError([&] {
    core::planResticAccess(repository("rclone"), {}, {{"pass", "x\n[other]\ntype = local"}}, kContext);
  });
  EXPECT_EQ(e.code(), ErrorCode::Internal);
  EXPECT_EQ(std::string(e.what()).find("[other]"), std::string::npos) << e.what();
}

// ---- Common flags -----------------------------------------------------------------------------------------------

TEST(RepositoryBackendFlags, LimitsAndCompressionGoToEveryType) {
  for (const auto& type : kAllTypes) {
    Repository repo = repository(type);
    repo.remote.limitUploadKiB = 1024;
    repo.remote.limitDownloadKiB = 10485760;
    repo.remote.compression = "max";
    core::validateRepository(repo, namesOf(credentials(type)));
    const ResticAccess a = plan(repo, credentials(type));
    ASSERT_GE(a.args.size(), 6u) << type;
    EXPECT_EQ(std::vector<std::string>(a.args.begin(), a.args.begin() + 6),
              (std::vector<std::string>{"--limit-upload", "1024", "--limit-download", "10485760", "--compression", "max"}))
        << type;
    EXPECT_FALSE(contains(a.args, "--cacert")) << type;
    EXPECT_FALSE(contains(a.args, "--insecure-tls")) << type;
  }
}

TEST(RepositoryBackendFlags, NoFlagsWhenTheCommonOptionsAreUnset) {
  for (const auto& type : kAllTypes) {
    const ResticAccess a = validatedPlan(type);
    for (const char* flag : {"--limit-upload", "--limit-download", "--compression", "--cacert", "--insecure-tls"})
      EXPECT_FALSE(contains(a.args, flag)) << type << " " << flag;
  }
}

TEST(RepositoryBackendFlags, CaCertAndInsecureTlsGoToHttpBackends) {
  for (const auto& type : kHttpTypes) {
    Repository repo = repository(type);
    repo.remote.caCert = "/etc/zerobyte/private-ca.pem";
    repo.remote.insecureTls = true;
    core::validateRepository(repo, namesOf(credentials(type)));
    const ResticAccess a = plan(repo, credentials(type));
    ASSERT_GE(a.args.size(), 3u) << type;
    EXPECT_EQ(std::vector<std::string>(a.args.begin(), a.args.begin() + 3),
              (std::vector<std::string>{"--cacert", "/etc/zerobyte/private-ca.pem", "--insecure-tls"}))
        << type;
  }
}

TEST(RepositoryBackendFlags, CaCertAndInsecureTlsAreRefusedForLocalSftpAndRclone) {
  for (const auto& type : kNonHttpTypes) {
    Repository repo = repository(type);
    repo.remote.caCert = "/etc/zerobyte/private-ca.pem";
    Error e = refusal(repo, namesOf(credentials(type)));
    EXPECT_EQ(parameterOf(e), "ca_cert") << type << ": " << e.what();
    EXPECT_TRUE(mentions(e, "ca_cert")) << e.what();

    repo = repository(type);
    repo.remote.insecureTls = true;
    e = refusal(repo, namesOf(credentials(type)));
    EXPECT_EQ(parameterOf(e), "insecure_tls") << type << ": " << e.what();
    EXPECT_TRUE(mentions(e, "insecure_tls")) << e.what();
  }
}

TEST(RepositoryBackendFlags, CaCertMustBeAnAbsolutePath) {
  Repository repo = repository("s3");
  repo.remote.caCert = "certs/ca.pem";
  Error e = refusal(repo, {"secret_access_key"});
  EXPECT_EQ(parameterOf(e), "ca_cert") << e.what();
}

TEST(RepositoryBackendFlags, CompressionIsAutoOffOrMax) {
  for (const char* ok : {"auto", "off", "max"}) {
    Repository repo = repository("local");
    repo.remote.compression = ok;
    EXPECT_NO_THROW(core::validateRepository(repo, {})) << ok;
  }
  for (const char* bad : {"fast", "AUTO", "on", "max "}) {
    Repository repo = repository("s3");
    repo.remote.compression = bad;
    Error e = refusal(repo, {"secret_access_key"});
    EXPECT_EQ(parameterOf(e), "compression") << bad << ": " << e.what();
    EXPECT_TRUE(mentions(e, "compression")) << e.what();
  }
}

TEST(RepositoryBackendFlags, LimitsAboveTenGiBPerSecondAreRefused) {
  Repository repo = repository("local");
  repo.remote.limitUploadKiB = 10485760;
  repo.remote.limitDownloadKiB = 10485760;
  EXPECT_NO_THROW(core::validateRepository(repo, {}));
  repo.remote.limitUploadKiB = 10485761;
  Error e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "limit_upload") << e.what();
  EXPECT_TRUE(mentions(e, "limit_upload")) << e.what();
  repo.remote.limitUploadKiB = 0;
  repo.remote.limitDownloadKiB = 4000000000u;
  e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "limit_download") << e.what();
  EXPECT_TRUE(mentions(e, "limit_download")) << e.what();
}

// ---- Validation -------------------------------------------------------------------------------------------------

TEST(RepositoryBackendValidation, EveryExampleRepositoryIsValid) {
  for (const auto& type : kAllTypes)
    EXPECT_NO_THROW(core::validateRepository(repository(type), namesOf(credentials(type)))) << type;
}

TEST(RepositoryBackendValidation, AnUnknownTypeIsRefusedListingTheTypes) {
  Repository repo = repository("local");
  repo.type = "ftp";
  Error e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "type");
  for (const auto& t : kAllTypes) EXPECT_TRUE(mentions(e, t)) << t << " not in: " << e.what();
  EXPECT_TRUE(mentions(e, "\"ftp\"")) << e.what();
}

TEST(RepositoryBackendValidation, ACredentialOfAnotherTypeIsRefusedByName) {
  Error e = refusal(repository("local"), {"private_key"});
  EXPECT_EQ(parameterOf(e), "private_key") << e.what();
  e = refusal(repository("s3"), {"secret_access_key", "account_key"});
  EXPECT_EQ(parameterOf(e), "account_key") << e.what();
  e = refusal(repository("rclone"), {"server_password"});
  EXPECT_EQ(parameterOf(e), "server_password") << e.what();
}

TEST(RepositoryBackendValidation, MissingCredentialsAreNamedPerType) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"sftp", "private_key"},
                                                                  {"s3", "secret_access_key"},
                                                                  {"b2", "account_key"},
                                                                  {"gcs", "service_account"},
                                                                  {"swift", "server_password"}};
  for (const auto& [type, credential] : cases) {
    Error e = refusal(repository(type), {});
    EXPECT_EQ(parameterOf(e), credential) << type << ": " << e.what();
    EXPECT_TRUE(mentions(e, credential)) << e.what();
  }
}

// No server for this backend can run on this machine: validation only.
TEST(RepositoryBackendValidation, AzureNeedsExactlyOneOfAccountKeyAndSasToken) {
  EXPECT_NO_THROW(core::validateRepository(repository("azure"), {"account_key"}));
  EXPECT_NO_THROW(core::validateRepository(repository("azure"), {"sas_token"}));
  Error neither = refusal(repository("azure"), {});
  EXPECT_EQ(parameterOf(neither), "account_key") << neither.what();
  EXPECT_TRUE(mentions(neither, "account_key") && mentions(neither, "sas_token")) << neither.what();
  Error both = refusal(repository("azure"), {"account_key", "sas_token"});
  EXPECT_EQ(parameterOf(both), "sas_token") << both.what();
  EXPECT_TRUE(mentions(both, "exactly one")) << both.what();
}

TEST(RepositoryBackendValidation, RestUserAndPasswordGoTogether) {
  Repository repo = repository("rest");
  Error e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "server_password") << e.what();
  repo.remote.user.clear();
  EXPECT_NO_THROW(core::validateRepository(repo, {}));
  e = refusal(repo, {"server_password"});
  EXPECT_EQ(parameterOf(e), "user") << e.what();
}

TEST(RepositoryBackendValidation, RestUrlMustNotCarryCredentialsAndTheErrorDoesNotRepeatThem) {
  Repository repo = repository("rest");
  repo.remote.user.clear();
  repo.remote.url = "https://backup:url-Secret-pw@rest.example:8000/host1";
  Error e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "url") << e.what();
  EXPECT_FALSE(mentions(e, "url-Secret-pw")) << e.what();
  for (const char* bad : {"", "ftp://rest.example/", "https://", "https://rest example/"}) {
    repo.remote.url = bad;
    e = refusal(repo, {});
    EXPECT_EQ(parameterOf(e), "url") << bad << ": " << e.what();
  }
}

TEST(RepositoryBackendValidation, RestHasNoSeparatePath) {
  Repository repo = repository("rest");
  repo.path = "/host1";
  Error e = refusal(repo, {"server_password"});
  EXPECT_EQ(parameterOf(e), "path") << e.what();
}

TEST(RepositoryBackendValidation, S3EndpointIsHostAndPortOnly) {
  for (const char* ok : {"minio.example", "minio.example:9000", "https://minio.example:9000/", "[fd00::9]:9000", ""}) {
    Repository repo = repository("s3");
    repo.remote.endpoint = ok;
    EXPECT_NO_THROW(core::validateRepository(repo, {"secret_access_key"})) << ok;
  }
  for (const char* bad : {"https://minio.example:9000/zerobyte-backups", "http://key:secret@minio.example", "https://",
                          "-minio.example", "minio example"}) {
    Repository repo = repository("s3");
    repo.remote.endpoint = bad;
    Error e = refusal(repo, {"secret_access_key"});
    EXPECT_EQ(parameterOf(e), "endpoint") << bad << ": " << e.what();
    EXPECT_TRUE(mentions(e, "endpoint")) << e.what();
  }
}

TEST(RepositoryBackendValidation, S3NeedsAnAccessKeyIdAndAPlainRegion) {
  Repository repo = repository("s3");
  repo.remote.accessKeyId.clear();
  Error e = refusal(repo, {"secret_access_key"});
  EXPECT_EQ(parameterOf(e), "access_key_id") << e.what();
  repo = repository("s3");
  repo.remote.region = "eu central";
  e = refusal(repo, {"secret_access_key"});
  EXPECT_EQ(parameterOf(e), "region") << e.what();
}

TEST(RepositoryBackendValidation, BadBucketAndContainerNamesAreRefusedPerType) {
  struct Case {
    std::string type;
    std::string name;
    std::string parameter;
  };
  const std::vector<Case> cases = {
      {"s3", "", "bucket"},         {"s3", "ab", "bucket"},           {"s3", "My-Bucket", "bucket"},
      {"s3", "my_bucket", "bucket"}, {"s3", "-bucket", "bucket"},      {"s3", std::string(64, 'a'), "bucket"},
      {"b2", "short", "bucket"},    {"b2", "zerobyte.b2", "bucket"},  {"b2", std::string(51, 'b'), "bucket"},
      {"azure", "Backups", "container"}, {"azure", "ba", "container"}, {"azure", "back_ups", "container"},
      {"gcs", "-zerobyte", "bucket"}, {"gcs", "Zerobyte", "bucket"},  {"gcs", "zb", "bucket"},
      {"swift", "", "container"},   {"swift", "back ups", "container"}, {"swift", std::string(257, 'c'), "container"},
  };
  for (const auto& c : cases) {
    Repository repo = repository(c.type);
    repo.remote.bucket = c.name;
    Error e = refusal(repo, namesOf(credentials(c.type)));
    EXPECT_EQ(parameterOf(e), c.parameter) << c.type << " \"" << c.name << "\": " << e.what();
    EXPECT_TRUE(mentions(e, c.parameter)) << e.what();
  }
  // And some that are fine.
  const std::vector<std::pair<std::string, std::string>> good = {
      {"s3", "zerobyte.backups-1"}, {"b2", "Zerobyte-B2"}, {"azure", "zb-backups"}, {"gcs", "zerobyte_gcs.example"},
      {"swift", "Backups_2024.daily"}};
  for (const auto& [type, name] : good) {
    Repository repo = repository(type);
    repo.remote.bucket = name;
    EXPECT_NO_THROW(core::validateRepository(repo, namesOf(credentials(type)))) << type << " " << name;
  }
}

TEST(RepositoryBackendValidation, APrefixInsideABucketIsRelativeWithoutDotDot) {
  for (const auto& type : {"s3", "b2", "azure", "gcs", "swift"}) {
    for (const char* bad : {"/host1", "hosts/../other", "host\\1", "host\n1"}) {
      Repository repo = repository(type);
      repo.path = bad;
      Error e = refusal(repo, namesOf(credentials(type)));
      EXPECT_EQ(parameterOf(e), "path") << type << " " << bad << ": " << e.what();
    }
  }
}

// No server for this backend can run on this machine: validation only.
TEST(RepositoryBackendValidation, AzureAccountNameAndEndpointSuffix) {
  for (const char* bad : {"", "ab", "ZeroByte", "zero-byte", "abcdefghijklmnopqrstuvwxy"}) {
    Repository repo = repository("azure");
    repo.remote.account = bad;
    Error e = refusal(repo, {"account_key"});
    EXPECT_EQ(parameterOf(e), "account_name") << bad << ": " << e.what();
  }
  Repository repo = repository("azure");
  repo.remote.endpointSuffix = "core.windows.net/x";
  Error e = refusal(repo, {"account_key"});
  EXPECT_EQ(parameterOf(e), "endpoint_suffix") << e.what();
}

// No server for this backend can run on this machine: validation only.
TEST(RepositoryBackendValidation, B2GcsAndSwiftRequiredFields) {
  Repository b2 = repository("b2");
  b2.remote.account.clear();
  EXPECT_EQ(parameterOf(refusal(b2, {"account_key"})), "account_id");
  Repository gcs = repository("gcs");
  gcs.remote.project.clear();
  EXPECT_EQ(parameterOf(refusal(gcs, {"service_account"})), "project_id");
  Repository swift = repository("swift");
  swift.remote.user.clear();
  EXPECT_EQ(parameterOf(refusal(swift, {"server_password"})), "user");
  swift = repository("swift");
  swift.remote.url = "keystone.example:5000";
  EXPECT_EQ(parameterOf(refusal(swift, {"server_password"})), "url");
  swift = repository("swift");
  swift.remote.url = "https://user:pw@keystone.example/v3";
  EXPECT_EQ(parameterOf(refusal(swift, {"server_password"})), "url");
  swift = repository("swift");
  swift.remote.userDomain = "De fault";
  EXPECT_EQ(parameterOf(refusal(swift, {"server_password"})), "user_domain");
}

TEST(RepositoryBackendValidation, SftpNeedsKnownHostsUnlessHostKeyCheckIsOff) {
  Repository repo = repository("sftp");
  repo.remote.knownHosts.clear();
  Error e = refusal(repo, {"private_key"});
  EXPECT_EQ(parameterOf(e), "known_hosts") << e.what();
  EXPECT_TRUE(mentions(e, "host_key_check")) << e.what();  // says how to skip it

  repo.remote.knownHosts = "backup.example ssh-ed25519";  // no key
  EXPECT_EQ(parameterOf(refusal(repo, {"private_key"})), "known_hosts");

  repo.remote.knownHosts.clear();
  repo.remote.hostKeyCheck = false;
  EXPECT_NO_THROW(core::validateRepository(repo, {"private_key"}));

  repo.remote.knownHosts = kKnownHosts;  // both: one of them is a mistake
  EXPECT_EQ(parameterOf(refusal(repo, {"private_key"})), "known_hosts");
}

TEST(RepositoryBackendValidation, SftpHostUserPortAndPath) {
  struct Case {
    std::function<void(Repository&)> change;
    std::string parameter;
  };
  const std::vector<Case> cases = {
      {[](Repository& r) { r.remote.host.clear(); }, "host"},
      {[](Repository& r) { r.remote.host = "-oProxyCommand=x"; }, "host"},
      {[](Repository& r) { r.remote.host = "backup example"; }, "host"},
      {[](Repository& r) { r.remote.user.clear(); }, "user"},
      {[](Repository& r) { r.remote.user = "-oProxyCommand"; }, "user"},
      {[](Repository& r) { r.remote.user = "back up"; }, "user"},
      {[](Repository& r) { r.remote.port = 65536; }, "port"},
      {[](Repository& r) { r.path.clear(); }, "path"},
      {[](Repository& r) { r.path = "/srv/my backups"; }, "path"},
      {[](Repository& r) { r.path = "/srv/it's"; }, "path"},
      {[](Repository& r) { r.path = "/srv/a\nb"; }, "path"},
  };
  for (const auto& c : cases) {
    Repository repo = repository("sftp");
    c.change(repo);
    Error e = refusal(repo, {"private_key"});
    EXPECT_EQ(parameterOf(e), c.parameter) << e.what();
  }
}

TEST(RepositoryBackendValidation, LocalPathIsAbsoluteAndNotTheRoot) {
  Repository repo = repository("local");
  repo.path = "/";
  Error e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "path") << e.what();
  for (const char* bad : {"", "srv/restic", "/srv/../etc", "/srv/restic/"}) {
    repo.path = bad;
    Error relative = refusal(repo, {});
    EXPECT_TRUE(mentions(relative, "path")) << bad << ": " << relative.what();
  }
}

TEST(RepositoryBackendValidation, RcloneSecretOptionsMustBeReferencesAndPasswordsSecret) {
  Repository repo = repository("rclone");
  repo.remote.rcloneOptions[3].value = "plain-dav-password";  // the secret "pass" given as a value
  Error e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "rclone_options") << e.what();
  EXPECT_FALSE(mentions(e, "plain-dav-password")) << e.what();
  EXPECT_TRUE(mentions(e, "reference")) << e.what();

  for (const char* ref : {"file:///etc/zerobyte/dav-pass", "env://DAV_PASS", "credential://dav-pass"}) {
    repo = repository("rclone");
    repo.remote.rcloneOptions[3].value = ref;
    EXPECT_NO_THROW(core::validateRepository(repo, {})) << ref;
  }

  repo = repository("rclone");
  repo.remote.rcloneOptions[3].secret = false;  // a password as a plain option
  repo.remote.rcloneOptions[3].value = "plain-dav-password";
  e = refusal(repo, {});
  EXPECT_EQ(parameterOf(e), "rclone_options") << e.what();
  EXPECT_FALSE(mentions(e, "plain-dav-password")) << e.what();
}

TEST(RepositoryBackendValidation, RcloneTypeOptionsAndPath) {
  struct Case {
    std::function<void(Repository&)> change;
    std::string parameter;
  };
  const std::vector<Case> cases = {
      {[](Repository& r) { r.remote.rcloneType.clear(); }, "rclone_type"},
      {[](Repository& r) { r.remote.rcloneType = "WebDAV"; }, "rclone_type"},
      {[](Repository& r) { r.remote.rcloneType = "web dav"; }, "rclone_type"},
      {[](Repository& r) { r.remote.rcloneOptions.push_back({"type", "local", false}); }, "rclone_options"},
      {[](Repository& r) { r.remote.rcloneOptions.push_back({"url", "https://other.example", false}); }, "rclone_options"},
      {[](Repository& r) { r.remote.rcloneOptions.push_back({"Bad-Name", "x", false}); }, "rclone_options"},
      {[](Repository& r) { r.remote.rcloneOptions.push_back({"headers", "a\nb", false}); }, "rclone_options"},
      {[](Repository& r) { r.path = "other:restic"; }, "path"},
      {[](Repository& r) { r.path = "restic\nhost1"; }, "path"},
  };
  for (const auto& c : cases) {
    Repository repo = repository("rclone");
    c.change(repo);
    Error e = refusal(repo, {});
    EXPECT_EQ(parameterOf(e), c.parameter) << e.what();
  }
}

// ---- Credential values ------------------------------------------------------------------------------------------

TEST(RepositoryBackendCredential, PrivateKeyMustBeAPemOrOpenSshPrivateKey) {
  EXPECT_NO_THROW(core::validateRepositoryCredential("private_key", kPrivateKey));
  EXPECT_NO_THROW(core::validateRepositoryCredential(
      "private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"));
  EXPECT_NO_THROW(core::validateRepositoryCredential(
      "private_key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n"));
  credentialRefusal("private_key", "");
  credentialRefusal("private_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake backup@host");  // the .pub
  credentialRefusal("private_key", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  credentialRefusal("private_key", std::string("-----BEGIN OPENSSH PRIVATE KEY-----\n") + '\0' + "\n-----END OPENSSH PRIVATE KEY-----");
}

TEST(RepositoryBackendCredential, ServiceAccountMustBeAJsonObjectWithType) {
  EXPECT_NO_THROW(core::validateRepositoryCredential("service_account", kServiceAccount));
  EXPECT_NO_THROW(core::validateRepositoryCredential("service_account", "{\n  \"type\": \"service_account\"\n}\n"));
  credentialRefusal("service_account", "");
  credentialRefusal("service_account", "not json");
  credentialRefusal("service_account", R"(["type"])");
  credentialRefusal("service_account", R"({"project_id": "zerobyte-project"})");
  credentialRefusal("service_account", R"({"type": "service_account")");
}

TEST(RepositoryBackendCredential, OtherCredentialsRefuseControlCharactersAndMoreThan4096Bytes) {
  for (const char* name : {"server_password", "secret_access_key", "account_key", "sas_token"}) {
    EXPECT_NO_THROW(core::validateRepositoryCredential(name, "p@ss w0rd,:/\"'$"));
    EXPECT_NO_THROW(core::validateRepositoryCredential(name, std::string(4096, 'x'))) << name;
    credentialRefusal(name, std::string(4097, 'x'));
    credentialRefusal(name, "");
    credentialRefusal(name, "line\nbreak");
    credentialRefusal(name, "trailing\n");
    credentialRefusal(name, "tab\there");
    credentialRefusal(name, "carriage\rreturn");
    credentialRefusal(name, "delete\x7f");
    // The refusal does not repeat the value.
    Error e = credentialRefusal(name, "cred-Secret-value\n");
    EXPECT_FALSE(mentions(e, "cred-Secret-value")) << e.what();
  }
}

// ---- Edge cases found while writing these tests ------------------------------------------------------------------

// restic 0.14 splits the short "sftp:" form at the first ':' (internal/backend/sftp/config.go): with an IPv6 host,
// "sftp:backup@[fd00::10]:/srv/restic/host1" would give the directory ":10]:/srv/restic/host1", and as sftp.command
// ignores the host, restic would create or open the repository there (checked with restic 0.14.0 and sftp-server as
// the command). The URL form "sftp://backup@[fd00::10]//srv/restic/host1" parses right, and is the one used.
TEST(RepositoryBackendEdges, SftpRepositoryStringForAnIpv6HostGivesResticTheRightDirectory) {
  Repository repo = repository("sftp");
  repo.remote.host = "fd00::10";
  repo.remote.knownHosts = "fd00::10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTest";
  core::validateRepository(repo, {"private_key"});
  const ResticAccess a = plan(repo, credentials("sftp"));
  EXPECT_EQ(resticSftpDirectory(a.repository), "/srv/restic/host1") << a.repository;
  // For comparison, a host name is fine:
  EXPECT_EQ(resticSftpDirectory(validatedPlan("sftp").repository), "/srv/restic/host1");
}

// Every refusal of a local repository's path names the parameter (relative, "..", trailing '/', empty, "/").
TEST(RepositoryBackendEdges, LocalPathRefusalsNameTheParameter) {
  Repository repo = repository("local");
  for (const char* bad : {"", "srv/restic", "/srv/../etc", "/srv/restic/"}) {
    repo.path = bad;
    Error e = refusal(repo, {});
    EXPECT_EQ(parameterOf(e), "path") << "\"" << bad << "\": " << e.what();
  }
}

// An s3 endpoint that carries credentials is refused without repeating them.
TEST(RepositoryBackendEdges, S3EndpointRefusalDoesNotRepeatTheCredentialsInIt) {
  Repository repo = repository("s3");
  repo.remote.endpoint = "https://AKIAEXAMPLE:endpoint-Secret@minio.example:9000";
  Error e = refusal(repo, {"secret_access_key"});
  EXPECT_EQ(parameterOf(e), "endpoint");
  EXPECT_FALSE(mentions(e, "endpoint-Secret")) << e.what();
}

// Path refusals name the repository's field, path (not the volumes' remote_path).
TEST(RepositoryBackendEdges, PathRefusalMessagesNameTheRepositoryField) {
  Repository s3 = repository("s3");
  s3.path = "hosts/../other";
  Error e = refusal(s3, {"secret_access_key"});
  EXPECT_EQ(parameterOf(e), "path");
  EXPECT_FALSE(mentions(e, "remote_path")) << e.what();
  Repository sftp = repository("sftp");
  sftp.path = "/srv/a\nb";
  e = refusal(sftp, {"private_key"});
  EXPECT_EQ(parameterOf(e), "path");
  EXPECT_FALSE(mentions(e, "remote_path")) << e.what();
}
