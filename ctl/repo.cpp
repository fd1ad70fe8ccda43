// zerobytectl repo: create, import, list, show and delete restic repositories; reveal and change their passwords.
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/password.h"
#include "ctl/paths.h"
#include "ctl/progress.h"
#include "ctl/record_format.h"

#include <string.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <vector>

namespace zerobyte::ctl {
namespace {

// The credentials of remote repositories, as options --NAME-file FILE and --NAME-ref REF (wire name NAME with '_').
constexpr const char* kCredentials[] = {"private-key", "server-password", "secret-access-key", "account-key", "sas-token",
                                        "service-account"};

struct RepoOptions {
  std::string name;
  std::string type = "local";
  std::string path;
  std::string passwordFile;
  std::string group;  // shared with this Unix group; "" for the owner alone
  // Remote repositories
  std::string host, user, url, endpoint, bucket, container, region, accessKeyId, accountId, accountName, endpointSuffix,
      projectId, projectName, userDomain, projectDomain, knownHostsFile, rcloneType, caCert, compression;
  int port = 0, limitUpload = 0, limitDownload = 0;
  bool pathStyle = false, noHostKeyCheck = false, insecureTls = false;
  std::vector<std::string> rcloneOptions, rcloneSecretOptions;
  std::map<std::string, std::string> credentialFiles, credentialRefs;  // by option stem ("private-key")
};

std::string wireName(std::string stem) {
  for (char& c : stem)
    if (c == '-') c = '_';
  return stem;
}

void setIf(nlohmann::json& p, const char* key, const std::string& value) {
  if (!value.empty()) p[key] = value;
}

// The parameters that say where a repository is, how restic reaches it, and whom it is shared with. Credentials are
// read here from files the caller can read and sent once; they are never command-line values.
nlohmann::json locationParameters(const RepoOptions& o) {
  nlohmann::json p = {{"name", o.name}, {"type", o.type}};
  if (o.type == "local") {
    if (o.path.empty()) throw Error(ErrorCode::InvalidArgument, "a local repository needs --path DIR");
    p["path"] = absolutePath(o.path);
  } else {
    setIf(p, "path", o.path);
  }
  setIf(p, "group", o.group);
  setIf(p, "host", o.host);
  if (o.port) p["port"] = o.port;
  setIf(p, "user", o.user);
  setIf(p, "url", o.url);
  setIf(p, "endpoint", o.endpoint);
  setIf(p, "bucket", o.bucket);
  setIf(p, "container", o.container);
  setIf(p, "region", o.region);
  setIf(p, "access_key_id", o.accessKeyId);
  if (o.pathStyle) p["path_style"] = true;
  setIf(p, "account_id", o.accountId);
  setIf(p, "account_name", o.accountName);
  setIf(p, "endpoint_suffix", o.endpointSuffix);
  setIf(p, "project_id", o.projectId);
  setIf(p, "project_name", o.projectName);
  setIf(p, "user_domain", o.userDomain);
  setIf(p, "project_domain", o.projectDomain);
  if (!o.knownHostsFile.empty()) p["known_hosts"] = readSecretFile(o.knownHostsFile, "--known-hosts-file", false);
  if (o.noHostKeyCheck) p["host_key_check"] = false;
  setIf(p, "rclone_type", o.rcloneType);
  if (!o.rcloneOptions.empty()) p["rclone_options"] = o.rcloneOptions;
  if (!o.rcloneSecretOptions.empty()) p["rclone_secret_options"] = o.rcloneSecretOptions;
  if (!o.caCert.empty()) p["ca_cert"] = absolutePath(o.caCert);
  if (o.insecureTls) p["insecure_tls"] = true;
  if (o.limitUpload) p["limit_upload"] = o.limitUpload;
  if (o.limitDownload) p["limit_download"] = o.limitDownload;
  setIf(p, "compression", o.compression);
  for (const auto& [stem, file] : o.credentialFiles) {
    if (file.empty()) continue;
    const bool keepsNewlines = stem == "private-key" || stem == "service-account";
    p[wireName(stem)] = readSecretFile(file, "--" + stem + "-file", !keepsNewlines);
  }
  for (const auto& [stem, ref] : o.credentialRefs)
    if (!ref.empty()) p[wireName(stem) + "_ref"] = ref;
  return p;
}

// Where it is, as people read it: the directory, or restic's repository string with any password masked.
std::string locationText(const nlohmann::json& repository) {
  std::string location = field(repository, "location");
  return location.empty() ? field(repository, "path") : location;
}

std::string snapshotCountText(const nlohmann::json& repository) {
  auto count = optionalIntField(repository, "snapshot_count");
  return count ? std::to_string(*count) : "?";
}

void announce(Context& ctx, const std::string& text) {
  if (!ctx.json && ctx.stdoutIsTerminal()) std::cerr << sanitize(text) << std::endl;
}

int createRepo(Context& ctx, const RepoOptions& options) {
  const nlohmann::json parameters = locationParameters(options);
  announce(ctx, "Initialising restic repository " + options.name + "…");
  const nlohmann::json reply = ctx.call("CreateRepository", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& repository = objectField(reply, "repository");
  std::cout << sanitize("Created repository " + field(repository, "name", options.name) + " (" +
                        field(repository, "type", options.type) + " " + locationText(repository) + ").")
            << "\n"
            << "Its password was generated by zerobyted and is stored encrypted; no command shows it.\n";
  return 0;
}

int importRepo(Context& ctx, const RepoOptions& options) {
  nlohmann::json parameters = locationParameters(options);
  const std::string password = readRepositoryPassword(options.passwordFile, options.name);
  announce(ctx, "Checking the password of the restic repository " + options.name + "…");
  parameters["password"] = password;
  const nlohmann::json reply = ctx.call("ImportRepository", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& repository = objectField(reply, "repository");
  std::cout << sanitize("Imported repository " + field(repository, "name", options.name) + " (" +
                        field(repository, "type", options.type) + " " + locationText(repository) + ").")
            << "\n"
            << "The password was verified and is stored encrypted by zerobyted.\n";
  return 0;
}

int listRepos(Context& ctx) {
  const nlohmann::json reply = ctx.call("ListRepositories");
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& repositories = arrayField(reply, "repositories");
  if (repositories.empty()) {
    std::cout << "No repositories. Create one with: zerobytectl repo create NAME --path DIR\n";
    return 0;
  }
  Table table({"name", "type", "location", "snapshots", "password", "origin", "owner"});
  table.alignRight(3);
  for (const auto& repository : repositories)
    table.addRow({field(repository, "name"), field(repository, "type"), locationText(repository),
                  snapshotCountText(repository), secretStateText(objectField(repository, "password")),
                  boolField(repository, "declared") ? "config" : "api", userName(intField(repository, "owner_uid"))});
  std::cout << table.render() << "\n" << countOf(repositories.size(), "repository", "repositories") << " listed.\n";
  return 0;
}

int showRepo(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("GetRepository", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& repository = objectField(reply, "repository");
  auto count = optionalIntField(repository, "snapshot_count");
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Name", field(repository, "name")},
      {"ID", field(repository, "id")},
      {"Type", field(repository, "type")},
      {"Location", locationText(repository)},
      {"Password", secretStateText(objectField(repository, "password"))},
  };
  // A remote repository's settings and, for each credential, whether it is set and where it comes from.
  static const std::pair<const char*, const char*> kRemoteFields[] = {
      {"user", "User"}, {"access_key_id", "Access key id"}, {"region", "Region"}, {"account_id", "Account id"},
      {"account_name", "Account name"}, {"project_id", "Project id"}, {"project_name", "Project"},
      {"rclone_type", "rclone backend"}, {"ca_cert", "CA certificate"}, {"compression", "Compression"}};
  for (const auto& [key, label] : kRemoteFields)
    if (repository.contains(key) && repository[key].is_string() && !repository[key].get<std::string>().empty())
      fields.emplace_back(label, repository[key].get<std::string>());
  if (repository.contains("host_key_check") && repository["host_key_check"].is_boolean())
    fields.emplace_back("Host key check", repository["host_key_check"].get<bool>() ? "yes (known_hosts)" : "no (unsafe)");
  if (repository.contains("insecure_tls") && repository["insecure_tls"] == true)
    fields.emplace_back("TLS", "certificate NOT verified (insecure_tls)");
  for (const char* limit : {"limit_upload", "limit_download"})
    if (repository.contains(limit) && repository[limit].is_number() && repository[limit].get<int64_t>() > 0)
      fields.emplace_back(std::string(limit) == "limit_upload" ? "Upload limit" : "Download limit",
                          std::to_string(repository[limit].get<int64_t>()) + " KiB/s");
  if (repository.contains("credentials") && repository["credentials"].is_object())
    for (const auto& [name, state] : repository["credentials"].items())
      if (state.is_object()) fields.emplace_back("Credential " + name, secretStateText(state));
  fields.insert(fields.end(), {
      {"Snapshots", count ? std::to_string(*count)
                          : "not read yet (zerobytectl snapshot list " + field(repository, "name", name) + " --refresh)"},
      {"Origin", boolField(repository, "declared") ? "configuration file (read-only here)" : "created through the API"},
      {"Owner", ownerText(repository)},
      {"Shared", sharingText(repository)},
      {"restic runs as", runsAsText(repository)},
      {"Created", localTimeField(repository, "created")},
  });
  std::cout << formatFields(fields);
  return 0;
}

int deleteRepo(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("DeleteRepository", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << sanitize("Removed repository " + name + " from zerobyted; its data and snapshots are not touched.") << "\n"
            << sanitize("To use it again: zerobytectl repo import " + name + " --path DIR") << "\n";
  return 0;
}

struct PasswordOptions {
  std::string name;
  bool reveal = false;
  bool follow = false;
};

int revealPassword(Context& ctx, const PasswordOptions& options) {
  if (!options.reveal) {
    std::cerr << sanitize("'zerobytectl repo password " + options.name +
                          "' prints the repository's password in clear text (for restic used by hand). "
                          "Add --reveal to do that; every reveal is recorded in zerobyted's journal.")
              << "\n";
    return 2;
  }
  nlohmann::json reply = ctx.call("RevealRepositoryPassword", {{"name", options.name}});
  if (ctx.json) {
    ctx.printJson(reply);
  } else {
    // Exactly the password and a newline, so that it can be piped (never sanitized: it must be exact).
    std::cout << field(reply, "password") << "\n" << std::flush;
  }
  if (auto it = reply.find("password"); it != reply.end() && it->is_string()) {
    auto& text = it->get_ref<std::string&>();
    explicit_bzero(text.data(), text.size());
  }
  return 0;
}

int changePassword(Context& ctx, const PasswordOptions& options) {
  announce(ctx, "Changing the password of repository " + options.name + "…");
  return reportStartedJob(ctx, ctx.call("ChangeRepositoryPassword", {{"name", options.name}}), options.follow);
}

struct CheckOptions {
  std::string name;
  bool connection = false;
  std::string readDataSubset;
};

int checkRepo(Context& ctx, const CheckOptions& options) {
  nlohmann::json parameters = {{"name", options.name}, {"connection", options.connection}};
  if (!options.readDataSubset.empty()) parameters["read_data_subset"] = options.readDataSubset;
  const nlohmann::json started = ctx.call("CheckRepository", parameters);
  return awaitJob(ctx, started, [&options](const nlohmann::json& job) {
    return std::string(options.connection ? "Repository " : "Checked repository ") + options.name + ": " + field(job, "message") +
           " (job " + std::to_string(intField(job, "id")) + ").";
  });
}

int pruneRepo(Context& ctx, const std::string& name) {
  announce(ctx, "Pruning repository " + name + " (backups to it wait until this ends)…");
  return awaitJob(ctx, ctx.call("PruneRepository", {{"name", name}}), [&name](const nlohmann::json& job) {
    return "Pruned repository " + name + ": " + field(job, "message") + " (job " + std::to_string(intField(job, "id")) + ").";
  });
}

int unlockRepo(Context& ctx, const std::string& name, bool removeAll) {
  if (!removeAll)
    return awaitJob(ctx, ctx.call("UnlockRepository", {{"name", name}}), [&name](const nlohmann::json& job) {
      return "Removed the stale locks of repository " + name + " (locks of live processes stay) (job " +
             std::to_string(intField(job, "id")) + ").";
    });
  const nlohmann::json started = ctx.call("RemoveAllRepositoryLocks", {{"name", name}});
  if (!ctx.json) {
    const auto& locks = arrayField(started, "locks");
    if (locks.empty()) std::cerr << sanitize("Repository " + name + " has no locks.") << "\n";
    for (const auto& lock : locks) std::cerr << sanitize("Removing the " + lock.get<std::string>() + ".") << "\n";
  }
  return awaitJob(ctx, started, [&name](const nlohmann::json& job) {
    return "Removed every lock of repository " + name + " (job " + std::to_string(intField(job, "id")) + ").";
  });
}

int repoStats(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("GetRepositoryStats", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  // restic reports no uncompressed size (0) for a repository without compressed data (format version 1).
  const bool compressed = countField(reply, "total_uncompressed_size") > 0;
  char ratio[64];
  std::snprintf(ratio, sizeof(ratio), "%.2fx (%.1f%% saved)", numberField(reply, "compression_ratio"),
                numberField(reply, "compression_space_saving"));
  std::cout << formatFields({
      {"Repository", field(reply, "repository", name)},
      {"Stored size", formatBytes(countField(reply, "total_size"))},
      {"Uncompressed", compressed ? formatBytes(countField(reply, "total_uncompressed_size")) : "-"},
      {"Compression", compressed ? std::string(ratio) : "none reported"},
      {"Blobs", std::to_string(countField(reply, "blob_count"))},
      {"Snapshots", std::to_string(countField(reply, "snapshot_count"))},
  });
  return 0;
}

void addLocationOptions(CLI::App& command, RepoOptions& o) {
  command.add_option("NAME", o.name, "Repository name ([a-z0-9][a-z0-9_-]*)")->type_name("")->required();
  command.add_option("--type", o.type, "Repository type: local, sftp, rest, s3, b2, azure, gcs, swift or rclone")
      ->type_name("TYPE")
      ->capture_default_str();
  command.add_option("--path", o.path,
                     "local: the directory (a relative path is resolved here); sftp: the directory on the server; "
                     "s3, b2, azure, gcs, swift: the prefix in the bucket; rclone: the path in the remote")
      ->type_name("PATH");
  command.add_option("--host", o.host, "sftp: the server")->type_name("HOST");
  command.add_option("--port", o.port, "sftp: the server's port (default 22)")->type_name("N");
  command.add_option("--user", o.user, "sftp, rest, swift: the user to log in as")->type_name("USER");
  command.add_option("--url", o.url, "rest: the server's URL; swift: the auth URL (without credentials)")->type_name("URL");
  command.add_option("--endpoint", o.endpoint, "s3: HOST[:PORT] or https://HOST[:PORT] (default: Amazon S3)")->type_name("URL");
  command.add_option("--bucket", o.bucket, "s3, b2, gcs: the bucket")->type_name("BUCKET");
  command.add_option("--container", o.container, "azure, swift: the container")->type_name("NAME");
  command.add_option("--region", o.region, "s3, swift: the region")->type_name("REGION");
  command.add_option("--access-key-id", o.accessKeyId, "s3: the access key id")->type_name("ID");
  command.add_flag("--path-style", o.pathStyle, "s3: path-style bucket lookup (MinIO, Ceph and most self-hosted servers)");
  command.add_option("--account-id", o.accountId, "b2: the account or application key id")->type_name("ID");
  command.add_option("--account-name", o.accountName, "azure: the storage account")->type_name("NAME");
  command.add_option("--endpoint-suffix", o.endpointSuffix, "azure: the cloud's endpoint suffix (restic 0.16+)")->type_name("SUFFIX");
  command.add_option("--project-id", o.projectId, "gcs: the project id")->type_name("ID");
  command.add_option("--project-name", o.projectName, "swift: the project (tenant)")->type_name("NAME");
  command.add_option("--user-domain", o.userDomain, "swift: the user's domain")->type_name("DOMAIN");
  command.add_option("--project-domain", o.projectDomain, "swift: the project's domain")->type_name("DOMAIN");
  command.add_option("--known-hosts-file", o.knownHostsFile, "sftp: a file with the server's known_hosts line(s) (ssh-keyscan -p PORT HOST)")
      ->type_name("FILE");
  command.add_flag("--no-host-key-check", o.noHostKeyCheck, "sftp: do not check the server's key (unsafe)");
  command.add_option("--rclone-type", o.rcloneType, "rclone: the backend (sftp, webdav, s3, ...)")->type_name("TYPE");
  command.add_option("--rclone-option", o.rcloneOptions, "rclone: a backend option NAME=VALUE (repeatable)")->type_name("NAME=VALUE");
  command.add_option("--rclone-secret", o.rcloneSecretOptions, "rclone: a secret backend option NAME=REFERENCE (repeatable)")
      ->type_name("NAME=REF");
  command.add_option("--ca-cert", o.caCert, "HTTPS backends: a PEM file of CA certificates to trust (restic --cacert)")->type_name("FILE");
  command.add_flag("--insecure-tls", o.insecureTls, "HTTPS backends: do not verify the server's certificate (unsafe; warned about)");
  command.add_option("--limit-upload", o.limitUpload, "Upload limit in KiB/s")->type_name("KIB");
  command.add_option("--limit-download", o.limitDownload, "Download limit in KiB/s")->type_name("KIB");
  command.add_option("--compression", o.compression, "auto, off or max (repository format 2)")->type_name("MODE");
  for (const char* stem : kCredentials) {
    const std::string name(stem);
    command.add_option("--" + name + "-file", o.credentialFiles[name], "A file holding the " + name + " ('-': stdin); stored encrypted")
        ->type_name("FILE");
    command.add_option("--" + name + "-ref", o.credentialRefs[name], "Where the " + name + " is: file:///path, env://NAME or credential://NAME")
        ->type_name("REF");
  }
  command
      .add_option("--group", o.group,
                  "Share the repository with this Unix group (one you are in): its members may use and manage it")
      ->type_name("GROUP");
}

}  // namespace

void addRepoCommands(CLI::App& app, Context& ctx) {
  CLI::App* repo = addCommand(app, ctx, "repo", "Manage restic repositories: where backups go");
  repo->require_subcommand(1);

  auto create = std::make_shared<RepoOptions>();
  CLI::App* createCommand =
      addCommand(*repo, ctx, "create", "Initialise a new restic repository with a generated password");
  addLocationOptions(*createCommand, *create);
  createCommand->callback([&ctx, create] { ctx.action = [&ctx, create] { return createRepo(ctx, *create); }; });

  auto import = std::make_shared<RepoOptions>();
  CLI::App* importCommand =
      addCommand(*repo, ctx, "import", "Adopt an existing restic repository (its password is verified)");
  addLocationOptions(*importCommand, *import);
  importCommand
      ->add_option("--password-file", import->passwordFile,
                   "Read the password from FILE ('-' for stdin); without it, stdin is read "
                   "(with a prompt on a terminal)")
      ->type_name("FILE");
  importCommand->footer(
      "The password is never a command-line value.\n"
      "Example:\n"
      "  zerobytectl repo import old --path /srv/restic/old --password-file /root/old.pw");
  importCommand->callback([&ctx, import] { ctx.action = [&ctx, import] { return importRepo(ctx, *import); }; });

  CLI::App* list = addCommand(*repo, ctx, "list", "List repositories");
  list->callback([&ctx] { ctx.action = [&ctx] { return listRepos(ctx); }; });

  auto name = std::make_shared<std::string>();
  CLI::App* show = addCommand(*repo, ctx, "show", "Show one repository (never its password)");
  show->add_option("NAME", *name, "Repository name")->type_name("")->required();
  show->callback([&ctx, name] { ctx.action = [&ctx, name] { return showRepo(ctx, *name); }; });

  CLI::App* remove =
      addCommand(*repo, ctx, "delete", "Remove a repository from zerobyted (its data is not touched)");
  remove->add_option("NAME", *name, "Repository name")->type_name("")->required();
  remove->callback([&ctx, name] { ctx.action = [&ctx, name] { return deleteRepo(ctx, *name); }; });

  auto reveal = std::make_shared<PasswordOptions>();
  CLI::App* password = addCommand(*repo, ctx, "password", "Print a repository's password (needs --reveal; audited)");
  password->add_option("NAME", reveal->name, "Repository name")->type_name("")->required();
  password->add_flag("--reveal", reveal->reveal,
                     "Print the password in clear text on stdout, followed by a newline and nothing else");
  password->footer(
      "Needs the action org.zerobyte.daemon1.export-secret (root or the admin group); every\n"
      "reveal, and every refused attempt, is recorded in zerobyted's journal.\n"
      "Example, running restic by hand:\n"
      "  zerobytectl repo password main --reveal | restic -r /srv/backup/main --password-file /dev/stdin snapshots");
  password->callback([&ctx, reveal] { ctx.action = [&ctx, reveal] { return revealPassword(ctx, *reveal); }; });

  auto check = std::make_shared<CheckOptions>();
  CLI::App* checkCommand = addCommand(*repo, ctx, "check", "Check a repository's integrity (restic check), or with --connection only that it opens");
  checkCommand->add_option("NAME", check->name, "Repository name")->type_name("")->required();
  checkCommand->add_flag("--connection", check->connection,
                         "Only open the repository with its password (quick; a password reference that does not resolve is named)");
  checkCommand
      ->add_option("--read-data-subset", check->readDataSubset,
                   "Also read and verify this part of the data: n/t (e.g. 1/5), a percentage (10%) or a size (2G)")
      ->type_name("SUBSET");
  checkCommand->footer(
      "A full check takes the repository exclusively: backups to it wait until it ends.\n"
      "Exit status: 0 when the check passed; when it failed, the status of the cause: 9 wrong password, no\n"
      "repository or a password reference that does not resolve, 11 the server cannot be reached, 6 locked,\n"
      "1 anything else (restic's errors; the message says why).");
  checkCommand->callback([&ctx, check] { ctx.action = [&ctx, check] { return checkRepo(ctx, *check); }; });

  auto maintained = std::make_shared<std::string>();
  CLI::App* prune = addCommand(*repo, ctx, "prune", "Remove data no snapshot refers to (restic prune; takes the repository exclusively)");
  prune->add_option("NAME", *maintained, "Repository name")->type_name("")->required();
  prune->callback([&ctx, maintained] { ctx.action = [&ctx, maintained] { return pruneRepo(ctx, *maintained); }; });

  auto removeAll = std::make_shared<bool>(false);
  CLI::App* unlock = addCommand(*repo, ctx, "unlock", "Remove stale restic locks (of dead processes, or too old)");
  unlock->add_option("NAME", *maintained, "Repository name")->type_name("")->required();
  unlock->add_flag("--remove-all", *removeAll,
                   "Remove every lock, also those of running processes (admin only, audited; names whose locks go)");
  unlock->footer(
      "zerobyted runs the stale-only unlock by itself when restic finds a repository locked, and tries once more.\n"
      "--remove-all is the escape hatch for a lock whose holder is known to be gone but restic cannot tell\n"
      "(another host): removing a live lock lets two processes change the repository at once.");
  unlock->callback([&ctx, maintained, removeAll] { ctx.action = [&ctx, maintained, removeAll] { return unlockRepo(ctx, *maintained, *removeAll); }; });

  CLI::App* stats = addCommand(*repo, ctx, "stats", "Show a repository's stored size, compression and counts");
  stats->add_option("NAME", *maintained, "Repository name")->type_name("")->required();
  stats->callback([&ctx, maintained] { ctx.action = [&ctx, maintained] { return repoStats(ctx, *maintained); }; });

  auto change = std::make_shared<PasswordOptions>();
  CLI::App* changeCommand = addCommand(*repo, ctx, "change-password",
                                       "Give a repository a new generated password (restic key add, then key remove; starts a job)");
  changeCommand->add_option("NAME", change->name, "Repository name")->type_name("")->required();
  changeCommand->add_flag("--follow,-f", change->follow, "Show progress until the job ends; exit status from its outcome");
  changeCommand->footer(
      "The new password is 256 random bits, stored encrypted; the old key is removed only after the\n"
      "new password was proven to open the repository. Declared repositories are read-only here.");
  changeCommand->callback([&ctx, change] { ctx.action = [&ctx, change] { return changePassword(ctx, *change); }; });
}

}  // namespace zerobyte::ctl
