// zerobytectl volume: create, list, show and delete volumes (the data to back up).
#include "common/errors.h"
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/password.h"
#include "ctl/paths.h"
#include "ctl/record_format.h"

#include <iostream>
#include <memory>

namespace zerobyte::ctl {
namespace {

struct VolumeOptions {
  std::string name;
  std::string type = "directory";
  std::string path;
  std::string group;  // shared with this Unix group; "" for the owner alone
  // Network volumes
  std::string driver, host, user, remotePath, share, domain, smbVersion, url, nfsVersion, rcloneType;
  int port = 0;
  bool guest = false, noTlsVerify = false, noHostKeyCheck = false, readWrite = false, noAutoRemount = false,
       keepMounted = false;
  std::string passwordFile, passwordRef, privateKeyFile, privateKeyRef, knownHostsFile;
  std::vector<std::string> rcloneOptions, rcloneSecretOptions, mountOptions;
};

std::string origin(const nlohmann::json& resource) { return boolField(resource, "declared") ? "config" : "api"; }

void setIf(nlohmann::json& p, const char* key, const std::string& value) {
  if (!value.empty()) p[key] = value;
}

nlohmann::json createParameters(const VolumeOptions& o) {
  if (o.type == "directory" && o.path.empty())
    throw Error(ErrorCode::InvalidArgument, "a directory volume needs --path DIR (the directory to back up)");
  nlohmann::json p = {{"name", o.name}, {"type", o.type}};
  if (o.type == "directory" || !o.path.empty()) p["path"] = o.path.empty() ? o.path : absolutePath(o.path);
  setIf(p, "group", o.group);
  if (o.type == "directory") return p;
  setIf(p, "driver", o.driver);
  setIf(p, "host", o.host);
  if (o.port) p["port"] = o.port;
  setIf(p, "user", o.user);
  setIf(p, "remote_path", o.remotePath);
  setIf(p, "share", o.share);
  setIf(p, "domain", o.domain);
  setIf(p, "smb_version", o.smbVersion);
  if (o.guest) p["guest"] = true;
  setIf(p, "url", o.url);
  if (o.noTlsVerify) p["tls_verify"] = false;
  setIf(p, "nfs_version", o.nfsVersion);
  if (!o.knownHostsFile.empty()) p["known_hosts"] = readSecretFile(o.knownHostsFile, "--known-hosts-file", false);
  if (o.noHostKeyCheck) p["host_key_check"] = false;
  // Secrets: read here from files the caller can read, sent once, never on a command line.
  if (!o.passwordFile.empty()) p["password"] = readSecretFile(o.passwordFile, "--password-file", true);
  setIf(p, "password_ref", o.passwordRef);
  if (!o.privateKeyFile.empty()) p["private_key"] = readSecretFile(o.privateKeyFile, "--private-key-file", false);
  setIf(p, "private_key_ref", o.privateKeyRef);
  setIf(p, "rclone_type", o.rcloneType);
  if (!o.rcloneOptions.empty()) p["rclone_options"] = o.rcloneOptions;
  if (!o.rcloneSecretOptions.empty()) p["rclone_secret_options"] = o.rcloneSecretOptions;
  if (!o.mountOptions.empty()) p["mount_options"] = o.mountOptions;
  if (o.readWrite) p["read_write"] = true;
  if (o.noAutoRemount) p["auto_remount"] = false;
  if (o.keepMounted) p["keep_mounted"] = true;
  return p;
}

// Where the data is: a directory, or a network volume's remote and driver.
std::string locationOf(const nlohmann::json& volume) {
  if (field(volume, "type") == "directory") return field(volume, "path");
  return field(volume, "remote") + " (" + field(volume, "driver") + ")";
}

int createVolume(Context& ctx, const VolumeOptions& options) {
  const nlohmann::json reply = ctx.call("CreateVolume", createParameters(options));
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& volume = objectField(reply, "volume");
  std::cout << sanitize("Created volume " + field(volume, "name", options.name) + " (" + field(volume, "type") + " " +
                        locationOf(volume) + ").")
            << "\n";
  return 0;
}

int listVolumes(Context& ctx) {
  const nlohmann::json reply = ctx.call("ListVolumes");
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const nlohmann::json& volumes = arrayField(reply, "volumes");
  if (volumes.empty()) {
    std::cout << "No volumes. Create one with: zerobytectl volume create NAME --path DIR\n";
    return 0;
  }
  Table table({"name", "type", "location", "mount", "origin", "owner", "created"});
  for (const auto& volume : volumes) {
    std::string mount = "-";
    if (volume.contains("mount") && volume["mount"].is_object()) mount = field(volume["mount"], "state");
    table.addRow({field(volume, "name"), field(volume, "type"), locationOf(volume), mount, origin(volume),
                  userName(intField(volume, "owner_uid")), localTimeField(volume, "created")});
  }
  std::cout << table.render() << "\n" << countOf(volumes.size(), "volume") << " listed.\n";
  return 0;
}

int showVolume(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("GetVolume", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  const auto& volume = objectField(reply, "volume");
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Name", field(volume, "name")},
      {"ID", field(volume, "id")},
      {"Type", field(volume, "type")},
  };
  if (field(volume, "type") == "directory") {
    fields.push_back({"Path", field(volume, "path")});
  } else {
    auto secretText = [&volume](const char* key) {
      if (!volume.contains(key) || !volume[key].is_object() || !boolField(volume[key], "set")) return std::string("not set");
      return "set (" + field(volume[key], "source") + ")";
    };
    fields.push_back({"Remote", field(volume, "remote")});
    fields.push_back({"Driver", field(volume, "driver")});
    fields.push_back({"Password", secretText("password")});
    if (field(volume, "type") == "sftp") {
      fields.push_back({"Private key", secretText("private_key")});
      fields.push_back({"Host key check", boolField(volume, "host_key_check") ? "yes (known_hosts given)" : "OFF"});
    }
    std::string flags = boolField(volume, "read_write") ? "read-write" : "read-only";
    flags += boolField(volume, "auto_remount") ? ", remounted when dead" : ", not remounted automatically";
    flags += boolField(volume, "keep_mounted") ? ", kept mounted" : ", mounted for each backup";
    fields.push_back({"Mounting", flags});
    if (volume.contains("mount") && volume["mount"].is_object()) {
      const auto& m = volume["mount"];
      std::string state = field(m, "state");
      if (state == "mounted") state += " at " + field(m, "path") + " since " + localTimeField(m, "mounted_at");
      fields.push_back({"Mount", state});
      if (!m.value("last_check", nlohmann::json()).is_null())
        fields.push_back({"Last check", localTimeField(m, "last_check") + (boolField(m, "last_check_ok") ? " (ok)" : " (failed)")});
      if (!m.value("last_error", nlohmann::json()).is_null())
        fields.push_back({"Last error", localTimeField(m, "last_error_at") + ": " + field(m, "last_error")});
    }
  }
  fields.insert(fields.end(), {
      {"Origin", boolField(volume, "declared") ? "configuration file (read-only here)" : "created through the API"},
      {"Owner", ownerText(volume)},
      {"Shared", sharingText(volume)},
      {"restic runs as", runsAsText(volume)},
      {"Created", localTimeField(volume, "created")},
  });
  std::cout << formatFields(fields);
  return 0;
}

int deleteVolume(Context& ctx, const std::string& name) {
  const nlohmann::json reply = ctx.call("DeleteVolume", {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << sanitize("Deleted volume " + name + "; the data in it and its snapshots are not touched.") << "\n";
  return 0;
}

int mountCommand(Context& ctx, const std::string& method, const std::string& name) {
  const nlohmann::json reply = ctx.call(method, {{"name", name}});
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  if (method == "TestVolume") {
    std::cout << sanitize(field(reply, "message")) << "\n";
    for (const auto& entry : arrayField(reply, "entries")) std::cout << "  " << sanitize(entry.get<std::string>()) << "\n";
    return 0;
  }
  const auto& volume = objectField(reply, "volume");
  const auto& m = objectField(volume, "mount");
  if (method == "MountVolume")
    std::cout << sanitize("Mounted volume " + name + " (" + field(volume, "remote") + ") at " + field(m, "path") +
                          "; it stays mounted until 'zerobytectl volume unmount " + name + "'.")
              << "\n";
  else
    std::cout << sanitize("Unmounted volume " + name + ".") << "\n";
  return 0;
}

}  // namespace

void addVolumeCommands(CLI::App& app, Context& ctx) {
  CLI::App* volume = addCommand(app, ctx, "volume", "Manage volumes: the data to back up");
  volume->require_subcommand(1);

  auto create = std::make_shared<VolumeOptions>();
  CLI::App* createCommand =
      addCommand(*volume, ctx, "create", "Declare the data to back up: a directory here, or a share that zerobyted mounts");
  createCommand->add_option("NAME", create->name, "Volume name ([a-z0-9][a-z0-9_-]*)")->type_name("")->required();
  createCommand->add_option("--type", create->type, "Volume type: directory, sftp, smb, webdav, nfs or rclone")
      ->type_name("TYPE")
      ->capture_default_str();
  createCommand->add_option("--path", create->path, "directory: the directory to back up (a relative path is resolved here)")
      ->type_name("DIR");
  createCommand->add_option("--driver", create->driver, "How to mount it: sftp sshfs; smb cifs|rclone; webdav davfs|rclone; nfs nfs; rclone rclone")
      ->type_name("DRIVER");
  createCommand->add_option("--host", create->host, "sftp, smb, nfs: the server")->type_name("HOST");
  createCommand->add_option("--port", create->port, "The server's port (default: the protocol's)")->type_name("N");
  createCommand->add_option("--user", create->user, "sftp, smb, webdav: the user to log in as")->type_name("USER");
  createCommand->add_option("--remote-path", create->remotePath,
                            "sftp: path on the server; smb: path inside the share; nfs: the export; rclone: path in the remote")
      ->type_name("PATH");
  createCommand->add_option("--share", create->share, "smb: the share")->type_name("SHARE");
  createCommand->add_option("--domain", create->domain, "smb: the user's domain")->type_name("DOMAIN");
  createCommand->add_option("--smb-version", create->smbVersion, "smb with cifs: 2.0, 2.1, 3.0, 3.02 or 3.1.1")->type_name("V");
  createCommand->add_flag("--guest", create->guest, "smb: log in as guest (no user, no password)");
  createCommand->add_option("--url", create->url, "webdav: the URL (http:// or https://, without credentials)")->type_name("URL");
  createCommand->add_flag("--no-tls-verify", create->noTlsVerify, "webdav over https with the rclone driver: do not verify the certificate (unsafe)");
  createCommand->add_option("--nfs-version", create->nfsVersion, "nfs: 3, 4, 4.1 (default) or 4.2")->type_name("V");
  createCommand->add_option("--known-hosts-file", create->knownHostsFile,
                            "sftp: a file with the server's known_hosts line(s) (ssh-keyscan -p PORT HOST)")
      ->type_name("FILE");
  createCommand->add_flag("--no-host-key-check", create->noHostKeyCheck, "sftp: do not check the server's key (unsafe)");
  createCommand->add_option("--password-file", create->passwordFile, "A file holding the password ('-': stdin); stored encrypted")
      ->type_name("FILE");
  createCommand->add_option("--password-ref", create->passwordRef, "Where the password is: file:///path, env://NAME or credential://NAME")
      ->type_name("REF");
  createCommand->add_option("--private-key-file", create->privateKeyFile, "sftp: the private key file; stored encrypted")
      ->type_name("FILE");
  createCommand->add_option("--private-key-ref", create->privateKeyRef, "sftp: where the private key is (a reference)")
      ->type_name("REF");
  createCommand->add_option("--rclone-type", create->rcloneType, "rclone: the backend (sftp, webdav, s3, ...)")->type_name("TYPE");
  createCommand->add_option("--rclone-option", create->rcloneOptions, "rclone: a backend option NAME=VALUE (repeatable)")
      ->type_name("NAME=VALUE");
  createCommand->add_option("--rclone-secret", create->rcloneSecretOptions,
                            "rclone: a secret backend option NAME=REFERENCE (repeatable), e.g. pass=file:///etc/zerobyte/nas.pw")
      ->type_name("NAME=REF");
  createCommand->add_option("--mount-option", create->mountOptions,
                            "An extra mount option NAME[=VALUE] the configuration allows for the driver (repeatable)")
      ->type_name("OPT");
  createCommand->add_flag("--read-write", create->readWrite, "Mount read-write (default: read-only; a backup only reads)");
  createCommand->add_flag("--no-auto-remount", create->noAutoRemount, "Do not remount a dead mount by itself");
  createCommand->add_flag("--keep-mounted", create->keepMounted, "Keep it mounted between backups (and mount it at start)");
  createCommand
      ->add_option("--group", create->group,
                   "Share the volume with this Unix group (one you are in): its members may use and manage it")
      ->type_name("GROUP");
  createCommand->callback([&ctx, create] { ctx.action = [&ctx, create] { return createVolume(ctx, *create); }; });

  CLI::App* list = addCommand(*volume, ctx, "list", "List volumes");
  list->callback([&ctx] { ctx.action = [&ctx] { return listVolumes(ctx); }; });

  auto name = std::make_shared<std::string>();
  CLI::App* show = addCommand(*volume, ctx, "show", "Show one volume");
  show->add_option("NAME", *name, "Volume name")->type_name("")->required();
  show->callback([&ctx, name] { ctx.action = [&ctx, name] { return showVolume(ctx, *name); }; });

  CLI::App* remove = addCommand(*volume, ctx, "delete", "Delete a volume (its data and snapshots are not touched)");
  remove->add_option("NAME", *name, "Volume name")->type_name("")->required();
  remove->callback([&ctx, name] { ctx.action = [&ctx, name] { return deleteVolume(ctx, *name); }; });

  struct MountVerb {
    const char* verb;
    const char* method;
    const char* help;
  };
  static const MountVerb kVerbs[] = {
      {"mount", "MountVolume", "Mount a network volume and keep it mounted until 'volume unmount'"},
      {"unmount", "UnmountVolume", "Unmount a network volume (refused while a job uses it)"},
      {"test", "TestVolume", "Mount a network volume in a directory of its own, list its root, unmount it"},
  };
  for (const auto& v : kVerbs) {
    CLI::App* command = addCommand(*volume, ctx, v.verb, v.help);
    command->add_option("NAME", *name, "Volume name")->type_name("")->required();
    std::string method = v.method;
    command->callback([&ctx, name, method] { ctx.action = [&ctx, name, method] { return mountCommand(ctx, method, *name); }; });
  }
}

}  // namespace zerobyte::ctl
