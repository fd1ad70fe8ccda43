// Network and FUSE volumes: drivers, field validation and the helper invocation that mounts one.
#include "daemon/core/mount_plan.h"

#include "common/errors.h"
#include "daemon/core/remote_fields.h"
#include "daemon/core/validation.h"

#include <algorithm>
#include <cctype>

namespace zerobyte::core {
namespace {

constexpr size_t kMaxPasswordBytes = 1024;
constexpr size_t kMaxPrivateKeyBytes = 64 * 1024;
constexpr size_t kMaxMountOptions = 32;

void validateMountOptions(const std::vector<std::string>& options, const std::string& driver, const MountOptionPolicy& policy) {
  if (options.size() > kMaxMountOptions) invalid("mount_options", "at most 32 mount options");
  auto allowedIt = policy.find(driver);
  const std::vector<std::string> none;
  const auto& allowed = allowedIt == policy.end() ? none : allowedIt->second;
  for (const auto& option : options) {
    const size_t eq = option.find('=');
    const std::string name = option.substr(0, eq);
    if (name.empty() || !allOf(name, "_-"))
      invalid("mount_options", "mount option " + quoteValue(option) + " is not NAME or NAME=VALUE");
    if (eq != std::string::npos) {
      std::string_view value(option.data() + eq + 1, option.size() - eq - 1);
      if (value.empty() || value.find(' ') != std::string_view::npos)
        invalid("mount_options", "mount option " + quoteValue(option) + " has an empty value or a space in it");
      requireOptionSafe(value, "mount_options", "mount option value");
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      invalid("mount_options", "mount option \"" + name + "\" is not allowed for the " + driver + " driver (allowed: " +
                                   (list.empty() ? std::string("none") : list) +
                                   "); an administrator can allow more under daemon.mount_options in the configuration");
    }
  }
}

std::string joinOptions(const std::vector<std::string>& options) {
  std::string out;
  for (const auto& o : options) out += (out.empty() ? "" : ",") + o;
  return out;
}

// davfs2's secrets and configuration files: a field in double quotes; '"', '\'' and '\\' are escaped with '\\'
// even inside them.
std::string davfsQuote(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> commonFlags(const VolumeRemote& remote) {
  std::vector<std::string> flags = {remote.readWrite ? "rw" : "ro", "nodev", "nosuid", "noexec"};
  return flags;
}

}  // namespace

bool isVolumeType(std::string_view type) {
  return type == "directory" || type == "sftp" || type == "smb" || type == "webdav" || type == "nfs" || type == "rclone";
}

std::vector<std::string> driversFor(std::string_view type) {
  if (type == "sftp") return {"sshfs"};
  if (type == "smb") return {"cifs", "rclone"};
  // rclone first: davfs2 1.6 cannot list directories on recent kernels (readdir fails with EINVAL on 6.18).
  if (type == "webdav") return {"rclone", "davfs"};
  if (type == "nfs") return {"nfs"};
  if (type == "rclone") return {"rclone"};
  return {};
}

bool appliesTo(std::string_view type, std::string_view key) {
  static constexpr std::string_view kCommon[] = {"driver", "mount_options", "read_write", "auto_remount", "keep_mounted"};
  if (std::find(std::begin(kCommon), std::end(kCommon), key) != std::end(kCommon)) return !driversFor(type).empty();
  const std::string_view base = key == "password_ref"                                      ? "password"
                                : key == "private_key_ref"                                 ? "private_key"
                                : key == "rclone_secret_options" || key == "rclone_secrets" ? "rclone_options"
                                                                                            : key;
  const auto fields = fieldsOf(type);
  return std::find(fields.begin(), fields.end(), base) != fields.end();
}

std::vector<std::string> fieldsOf(std::string_view type) {
  if (type == "sftp") return {"host", "port", "user", "remote_path", "known_hosts", "host_key_check", "password", "private_key"};
  if (type == "smb") return {"host", "port", "user", "share", "remote_path", "domain", "smb_version", "guest", "password"};
  if (type == "webdav") return {"url", "user", "tls_verify", "password"};
  if (type == "nfs") return {"host", "port", "remote_path", "nfs_version"};
  if (type == "rclone") return {"rclone_type", "rclone_options", "remote_path"};
  return {};
}

MountOptionPolicy defaultMountOptionPolicy() {
  return {
      {"sshfs", {"Compression", "ServerAliveInterval", "ServerAliveCountMax", "ConnectTimeout", "Ciphers", "max_conns",
                 "follow_symlinks"}},
      {"davfs", {"dir_mode", "file_mode"}},
      {"rclone", {"bwlimit", "buffer-size", "dir-cache-time", "vfs-cache-mode", "vfs-read-chunk-size", "timeout",
                  "contimeout", "low-level-retries", "transfers", "checkers"}},
      {"cifs", {"cache", "actimeo", "rsize", "wsize", "sec", "seal", "nounix", "noserverino", "iocharset", "echo_interval"}},
      {"nfs", {"soft", "hard", "timeo", "retrans", "rsize", "wsize", "proto", "nconnect", "actimeo", "noac", "sec"}},
  };
}

void validateMountPassword(std::string_view password) {
  if (password.empty()) invalid("password", "the password is empty");
  if (password.size() > kMaxPasswordBytes) invalid("password", "the password is longer than 1024 bytes");
  if (password.find('\n') != std::string_view::npos || password.find('\r') != std::string_view::npos ||
      password.find('\0') != std::string_view::npos)
    invalid("password", "the password contains a line break or NUL, which no mount helper can take; a file's final newline is "
                        "removed, any other is refused");
}

void validatePrivateKey(std::string_view key) {
  if (key.empty()) invalid("private_key", "the private key is empty");
  if (key.size() > kMaxPrivateKeyBytes) invalid("private_key", "the private key is larger than 64 KiB");
  if (key.find('\0') != std::string_view::npos) invalid("private_key", "the private key contains a NUL byte");
  if (key.find("-----BEGIN ") == std::string_view::npos || key.find("PRIVATE KEY-----") == std::string_view::npos)
    invalid("private_key", "the private key is not in OpenSSH or PEM form (-----BEGIN ... PRIVATE KEY-----); give the key "
                           "file, not the .pub");
}

void validateRemote(std::string_view type, VolumeRemote& remote, const VolumeSecretsPresent& secrets,
                    const MountOptionPolicy& policy) {
  const auto drivers = driversFor(type);
  if (drivers.empty()) invalid("type", "volume type " + quoteValue(type) + " is not a network volume type");
  if (remote.driver.empty()) remote.driver = drivers.front();
  if (std::find(drivers.begin(), drivers.end(), remote.driver) == drivers.end()) {
    std::string list;
    for (const auto& d : drivers) list += (list.empty() ? "" : ", ") + d;
    invalid("driver", "driver " + quoteValue(remote.driver) + " cannot mount a " + std::string(type) + " volume; use " + list);
  }
  if (remote.port > 65535) invalid("port", "port " + std::to_string(remote.port) + " is not from 1 to 65535");

  if (type == "sftp") {
    validateHost(remote.host, "host", "host");
    validateUser(remote.user, "user");
    validateRemotePathText(remote.remotePath, "remote_path");
    if (remote.hostKeyCheck) validateKnownHosts(remote.knownHosts);
    else if (!remote.knownHosts.empty())
      invalid("known_hosts", "known_hosts is given but host_key_check is false; drop one of them");
    if (!secrets.password && !secrets.privateKey)
      invalid("private_key", "an sftp volume needs a private key or a password (as a file or a secret reference)");
    if (secrets.password && secrets.privateKey)
      invalid("password", "give a private key or a password for an sftp volume, not both");
  } else if (type == "smb") {
    validateHost(remote.host, "host", "host (the SMB server)");
    validateShare(remote.share);
    validateRelative(remote.remotePath, "remote_path", "share");
    if (!remote.domain.empty() && (remote.domain.size() > 255 || !allOf(remote.domain, ".-")))
      invalid("domain", "domain " + quoteValue(remote.domain) + " is not a domain name; use letters, digits, '.' and '-'");
    static constexpr std::string_view kVersions[] = {"", "2.0", "2.1", "3.0", "3.02", "3.1.1"};
    if (std::find(std::begin(kVersions), std::end(kVersions), remote.smbVersion) == std::end(kVersions))
      invalid("smb_version", "smb_version " + quoteValue(remote.smbVersion) + " is not one of 2.0, 2.1, 3.0, 3.02, 3.1.1");
    if (!remote.smbVersion.empty() && remote.driver != "cifs")
      invalid("smb_version", "smb_version applies to the cifs driver only (rclone negotiates the version)");
    if (remote.guest) {
      if (!remote.user.empty() || secrets.password)
        invalid("guest", "a guest mount takes no user and no password; drop them or guest");
    } else {
      validateUser(remote.user, "user");
      if (!secrets.password) invalid("password", "an smb volume needs a password (or guest: true)");
    }
  } else if (type == "webdav") {
    validateHttpUrl(remote.url, "url", "user and password (the password as a secret)");
    if (!remote.user.empty()) validateUser(remote.user, "user");
    if (secrets.password && remote.user.empty()) invalid("user", "a webdav password needs a user");
    if (!remote.tlsVerify && remote.driver == "davfs")
      invalid("tls_verify", "tls_verify false needs the rclone driver (davfs2 always verifies); set driver rclone");
    if (!remote.tlsVerify && remote.url.rfind("https://", 0) != 0)
      invalid("tls_verify", "tls_verify false applies to https URLs only");
  } else if (type == "nfs") {
    validateHost(remote.host, "host", "host (the NFS server)");
    if (remote.remotePath.empty()) invalid("remote_path", "remote_path is required: the export, e.g. /srv/nfs/data");
    validateAbsolutePath(remote.remotePath, "remote_path (the export)");
    requireOptionSafe(remote.remotePath, "remote_path", "remote_path");
    static constexpr std::string_view kVersions[] = {"", "3", "4", "4.0", "4.1", "4.2"};
    if (std::find(std::begin(kVersions), std::end(kVersions), remote.nfsVersion) == std::end(kVersions))
      invalid("nfs_version", "nfs_version " + quoteValue(remote.nfsVersion) + " is not one of 3, 4, 4.1, 4.2");
  } else if (type == "rclone") {
    if (remote.rcloneType.empty() || remote.rcloneType.size() > 32 || !allOf(remote.rcloneType, "") ||
        std::any_of(remote.rcloneType.begin(), remote.rcloneType.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }))
      invalid("rclone_type", "rclone_type " + quoteValue(remote.rcloneType) +
                                 " is not an rclone backend name (lowercase letters and digits: sftp, webdav, s3, ...)");
    validateRcloneOptions(remote.rcloneOptions);
    validateRemotePathText(remote.remotePath, "remote_path");
  }
  validateMountOptions(remote.mountOptions, remote.driver, policy);
}

MountPlan planMount(const Volume& volume, const MountSecrets& secrets, const MountContext& context) {
  for (const auto* path : {&context.target, &context.fileDir, &context.cacheDir})
    if (path->find(',') != std::string::npos || hasControl(*path) || path->empty() || path->front() != '/')
      throw Error(ErrorCode::InvalidArgument, "mount directory " + quoteValue(*path) +
                                                  " cannot be used in mount options (a comma or control character); "
                                                  "choose another runtime_directory or cache_directory");
  const VolumeRemote& r = volume.remote;
  MountPlan plan;
  std::vector<std::string> options = commonFlags(r);
  const std::string& driver = r.driver;

  if (driver == "sshfs") {
    plan.helper = "sshfs";
    plan.fuse = true;
    std::string source = r.user + "@" + hostForUrl(r.host) + ":" + r.remotePath;
    if (r.port) options.push_back("port=" + std::to_string(r.port));
    options.insert(options.end(), {"ServerAliveInterval=15", "ServerAliveCountMax=3", "ConnectTimeout=20"});
    if (r.hostKeyCheck) {
      plan.files.push_back({"known_hosts", r.knownHosts + (r.knownHosts.empty() || r.knownHosts.back() == '\n' ? "" : "\n")});
      options.insert(options.end(), {"StrictHostKeyChecking=yes", "UserKnownHostsFile=" + context.fileDir + "/known_hosts",
                                     "GlobalKnownHostsFile=/dev/null"});
    } else {
      options.insert(options.end(), {"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "GlobalKnownHostsFile=/dev/null"});
    }
    if (!secrets.privateKey.empty()) {
      std::string key = secrets.privateKey;
      if (key.back() != '\n') key += '\n';
      plan.files.push_back({"id_key", std::move(key)});
      options.insert(options.end(), {"IdentityFile=" + context.fileDir + "/id_key", "IdentitiesOnly=yes", "BatchMode=yes",
                                     "PasswordAuthentication=no", "KbdInteractiveAuthentication=no"});
    } else {
      plan.stdinSecret = secrets.password + "\n";
      options.insert(options.end(), {"password_stdin", "PubkeyAuthentication=no", "PreferredAuthentications=password",
                                     "NumberOfPasswordPrompts=1"});
    }
    options.insert(options.end(), r.mountOptions.begin(), r.mountOptions.end());
    // -F /dev/null: none of root's ssh configuration (ProxyCommand, LocalCommand, ...) applies.
    // Not in the foreground: sshfs -f mounts first and starts ssh with the first request, after the key file is gone.
    plan.args = {source, context.target, "-F", "/dev/null", "-o", joinOptions(options)};
  } else if (driver == "davfs") {
    plan.helper = "mount.davfs";
    plan.fuse = true;
    // The secrets file is keyed by the mount point (davfs2 accepts either it or the URL).
    if (!r.user.empty())
      plan.files.push_back({"davfs2.secrets", context.target + " " + davfsQuote(r.user) + " " + davfsQuote(secrets.password) + "\n"});
    std::string conf = "cache_dir " + context.cacheDir + "\nuse_locks 0\nask_auth 0\n";
    if (!r.user.empty()) conf += "secrets " + context.fileDir + "/davfs2.secrets\n";
    plan.files.push_back({"davfs2.conf", conf});
    options.push_back("conf=" + context.fileDir + "/davfs2.conf");
    options.insert(options.end(), r.mountOptions.begin(), r.mountOptions.end());
    plan.args = {r.url, context.target, "-o", joinOptions(options)};
  } else if (driver == "rclone") {
    plan.helper = "rclone";
    plan.fuse = true;
    std::string conf = "[zerobyte]\n";
    std::string path = r.remotePath;
    auto line = [&conf](const std::string& name, const std::string& value) { conf += name + " = " + value + "\n"; };
    if (volume.type == "webdav") {
      line("type", "webdav");
      line("url", r.url);
      line("vendor", "other");
      if (!r.user.empty()) line("user", r.user);
      if (!secrets.obscuredPassword.empty()) line("pass", secrets.obscuredPassword);
    } else if (volume.type == "smb") {
      line("type", "smb");
      line("host", r.host);
      if (r.port) line("port", std::to_string(r.port));
      if (!r.guest) {
        line("user", r.user);
        line("pass", secrets.obscuredPassword);
      }
      if (!r.domain.empty()) line("domain", r.domain);
      path = r.share + (r.remotePath.empty() ? "" : "/" + r.remotePath);
    } else {
      line("type", r.rcloneType);
      for (const auto& o : r.rcloneOptions)
        if (!o.secret) line(o.name, o.value);
      for (const auto& [name, value] : secrets.rcloneOptions) line(name, value);
      // rclone's sftp backend probes the server's shell and writes what it found back into the configuration file,
      // secrets included, after zerobyted removed it: "none" runs no remote command and writes nothing.
      const bool shellGiven = std::any_of(r.rcloneOptions.begin(), r.rcloneOptions.end(),
                                          [](const RcloneOption& o) { return o.name == "shell_type"; });
      if (r.rcloneType == "sftp" && !shellGiven) line("shell_type", "none");
    }
    plan.files.push_back({"rclone.conf", conf});
    plan.serverHelper = "rclone";
    plan.serverArgs = {"serve", "sftp", "--stdio", "zerobyte:" + path, "--config", context.fileDir + "/rclone.conf",
                       "--cache-dir", context.cacheDir, "--log-level", "NOTICE"};
    if (!r.readWrite) plan.serverArgs.push_back("--read-only");
    if (volume.type == "webdav" && !r.tlsVerify) plan.serverArgs.push_back("--no-check-certificate");
    for (const auto& option : r.mountOptions) plan.serverArgs.push_back("--" + option);
    plan.helper = "sshfs";
    plan.args = {"zerobyte:", context.target, "-f", "-o", "passive," + joinOptions(options)};
    plan.foreground = true;
  } else if (driver == "cifs") {
    plan.helper = "mount.cifs";
    plan.kernelFileSystem = "cifs";
    std::string source = "//" + hostForUrl(r.host) + "/" + r.share + (r.remotePath.empty() ? "" : "/" + r.remotePath);
    if (r.guest) {
      options.push_back("guest");
    } else {
      std::string credentials = "username=" + r.user + "\npassword=" + secrets.password + "\n";
      if (!r.domain.empty()) credentials += "domain=" + r.domain + "\n";
      plan.files.push_back({"cifs.credentials", credentials});
      options.push_back("credentials=" + context.fileDir + "/cifs.credentials");
    }
    if (r.port) options.push_back("port=" + std::to_string(r.port));
    if (!r.smbVersion.empty()) options.push_back("vers=" + r.smbVersion);
    options.insert(options.end(), r.mountOptions.begin(), r.mountOptions.end());
    plan.args = {source, context.target, "-o", joinOptions(options)};
  } else if (driver == "nfs") {
    plan.helper = "mount.nfs";
    plan.kernelFileSystem = "nfs";
    options.push_back("vers=" + (r.nfsVersion.empty() ? std::string("4.1") : r.nfsVersion));
    if (r.port) options.push_back("port=" + std::to_string(r.port));
    options.insert(options.end(), r.mountOptions.begin(), r.mountOptions.end());
    plan.args = {hostForUrl(r.host) + ":" + r.remotePath, context.target, "-o", joinOptions(options)};
  } else {
    throw Error(ErrorCode::InvalidArgument, "volume \"" + volume.name + "\" has no known driver (" + quoteValue(driver) + ")");
  }
  return plan;
}

std::string describeRemote(const Volume& volume) {
  const VolumeRemote& r = volume.remote;
  const std::string port = r.port ? ":" + std::to_string(r.port) : "";
  if (volume.type == "sftp") {
    std::string path = r.remotePath;
    if (!path.empty() && path.front() != '/') path = "/~/" + path;
    return "sftp://" + r.user + "@" + hostForUrl(r.host) + port + path;
  }
  if (volume.type == "smb")
    return "//" + hostForUrl(r.host) + port + "/" + r.share + (r.remotePath.empty() ? "" : "/" + r.remotePath);
  if (volume.type == "webdav") return r.url;
  if (volume.type == "nfs") return hostForUrl(r.host) + port + ":" + r.remotePath;
  if (volume.type == "rclone") return ":" + r.rcloneType + ":" + r.remotePath;
  return volume.path;
}

}  // namespace zerobyte::core
