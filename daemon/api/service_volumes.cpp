// The service layer: creating volumes (directories and network volumes), mounting, unmounting and testing them.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/mount_plan.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/mount/mounter.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace zerobyte::api {

using nlohmann::json;

namespace {

constexpr size_t kTestListLimit = 50;

// Every network field of CreateVolume, in wire names (the type says which of them it takes).
const std::vector<std::string>& networkParameters() {
  static const std::vector<std::string> names = {
      "driver",      "host",          "port",           "user",        "remote_path",     "share",
      "domain",      "smb_version",   "guest",          "url",         "tls_verify",      "nfs_version",
      "known_hosts", "host_key_check", "password",      "password_ref", "private_key",    "private_key_ref",
      "rclone_type", "rclone_options", "rclone_secret_options", "mount_options", "read_write", "auto_remount",
      "keep_mounted"};
  return names;
}

uint32_t portParam(const json& p) {
  auto port = optionalIntParam(p, "port");
  if (!port) return 0;
  if (*port < 1 || *port > 65535)
    throw Error(ErrorCode::InvalidArgument, "port " + std::to_string(*port) + " is not from 1 to 65535", {{"parameter", "port"}});
  return static_cast<uint32_t>(*port);
}

}  // namespace

bool present(const json& p, const std::string& key) { return p.contains(key) && !p[key].is_null(); }

// "name=value" items of rclone_options / rclone_secret_options.
std::vector<core::RcloneOption> rcloneOptionsParam(const json& p, const char* key, bool secret) {
  std::vector<core::RcloneOption> out;
  for (const auto& item : stringListParam(p, key)) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ErrorCode::InvalidArgument, std::string(key) + " item " + core::quoteValue(secret ? item.substr(0, eq) : item) +
                                                  " is not NAME=" + (secret ? "REFERENCE" : "VALUE"),
                  {{"parameter", key}});
    core::RcloneOption o;
    o.name = item.substr(0, eq);
    o.value = item.substr(eq + 1);
    o.secret = secret;
    if (secret) secrets::validateReference(o.value);
    out.push_back(std::move(o));
  }
  return out;
}

std::string Service::volumeRoot(const core::Volume& volume) const {
  return volume.isNetwork() ? m_mounter->pathOf(volume) : volume.path;
}

json Service::volumeJson(const core::Volume& v) const {
  json out = toJson(v);
  if (!v.isNetwork()) return out;
  const auto& r = v.remote;
  json rclone = json::array();
  for (const auto& o : r.rcloneOptions) rclone.push_back({{"name", o.name}, {"value", o.value}, {"secret", o.secret}});
  out["remote"] = core::describeRemote(v);
  out["driver"] = r.driver;
  out["host"] = r.host;
  out["port"] = r.port ? json(r.port) : json(nullptr);
  out["user"] = r.user;
  out["remote_path"] = r.remotePath;
  out["share"] = r.share;
  out["domain"] = r.domain;
  out["smb_version"] = r.smbVersion;
  out["guest"] = r.guest;
  out["url"] = r.url;
  out["tls_verify"] = r.tlsVerify;
  out["nfs_version"] = r.nfsVersion;
  out["known_hosts"] = r.knownHosts;
  out["host_key_check"] = r.hostKeyCheck;
  out["rclone_type"] = r.rcloneType;
  out["rclone_options"] = rclone;
  out["mount_options"] = r.mountOptions;
  out["read_write"] = r.readWrite;
  out["auto_remount"] = r.autoRemount;
  out["keep_mounted"] = r.keepMounted;
  // Never a secret: whether one is set, and where it comes from.
  out["password"] = {{"set", !v.passwordRef.empty() || !v.password.empty()},
                     {"source", v.passwordRef.empty() ? (v.password.empty() ? "" : "stored") : v.passwordRef}};
  out["private_key"] = {{"set", !v.privateKeyRef.empty() || !v.privateKey.empty()},
                        {"source", v.privateKeyRef.empty() ? (v.privateKey.empty() ? "" : "stored") : v.privateKeyRef}};
  const mount::MountStatus s = m_mounter->status(v.id);
  out["mount"] = {{"state", s.state},
                  {"path", s.path.empty() ? json(nullptr) : json(s.path)},
                  {"mounted_at", s.mountedAt ? json(formatTime(s.mountedAt)) : json(nullptr)},
                  {"last_check", s.lastCheck ? json(formatTime(s.lastCheck)) : json(nullptr)},
                  {"last_check_ok", s.lastCheck ? json(s.lastCheckOk) : json(nullptr)},
                  {"last_error", s.lastError.empty() ? json(nullptr) : json(s.lastError)},
                  {"last_error_at", s.lastErrorAt ? json(formatTime(s.lastErrorAt)) : json(nullptr)},
                  {"jobs", s.users}};
  return out;
}

core::MountSecrets Service::volumeSecrets(const core::Volume& volume) const {
  // As stored now: a master key rotation may have re-sealed them since `volume` was copied.
  std::optional<core::Volume> stored = volume.declared ? std::nullopt : m_store.volume(volume.id);
  const core::Volume& v = stored ? *stored : volume;
  core::MountSecrets out;
  if (!v.passwordRef.empty()) out.password = secrets::resolveReference(v.passwordRef).value();
  else if (!v.password.empty()) out.password = m_vault.open(v.password, volumePasswordRecord(v)).value();
  if (!v.privateKeyRef.empty()) out.privateKey = secrets::resolveReference(v.privateKeyRef).value();
  else if (!v.privateKey.empty()) out.privateKey = m_vault.open(v.privateKey, volumePrivateKeyRecord(v)).value();
  if (!out.password.empty()) core::validateMountPassword(out.password);
  if (!out.privateKey.empty()) core::validatePrivateKey(out.privateKey);
  for (const auto& o : v.remote.rcloneOptions)
    if (o.secret) out.rcloneOptions.emplace_back(o.name, secrets::resolveReference(o.value).value());
  return out;
}

void Service::createVolume(const json& p, const RequestPtr& r) {
  std::string name = stringParam(p, "name"), type = stringParam(p, "type");
  core::validateName(name, "volume name");
  if (!core::isVolumeType(type))
    throw Error(ErrorCode::InvalidArgument,
                "volume type \"" + log::sanitize(type) + "\" is not supported; use directory, sftp, smb, webdav, nfs or rclone",
                {{"parameter", "type"}});
  auto group = sharedGroup(p, r->caller());
  if (findVolume(name)) throw Error(ErrorCode::AlreadyExists, "a volume named \"" + name + "\" exists already");

  if (type != "directory") {
    // Network volumes: the dispatcher asked for mount as well as manage. They are mounted and read as root.
    if (present(p, "path"))
      throw Error(ErrorCode::InvalidArgument, "a " + type + " volume has no path; zerobyted mounts it under its own directory "
                                              "(use remote_path for the path on the server)",
                  {{"parameter", "path"}});
    for (const auto& key : networkParameters()) {
      if (!present(p, key) || core::appliesTo(type, key)) continue;
      std::string list;
      for (const auto& f : core::fieldsOf(type)) list += (list.empty() ? "" : ", ") + f;
      throw Error(ErrorCode::InvalidArgument, "\"" + key + "\" does not apply to a " + type + " volume (it takes " + list + ")",
                  {{"parameter", key}});
    }
    core::Volume v;
    v.name = name;
    v.type = type;
    auto& remote = v.remote;
    remote.driver = optionalStringParam(p, "driver").value_or("");
    // smb: the kernel's cifs where this kernel has it, else rclone's smb backend.
    if (type == "smb" && remote.driver.empty()) remote.driver = mount::kernelCanMount("cifs") ? "cifs" : "rclone";
    remote.host = optionalStringParam(p, "host").value_or("");
    remote.port = portParam(p);
    remote.user = optionalStringParam(p, "user").value_or("");
    remote.remotePath = optionalStringParam(p, "remote_path").value_or("");
    remote.share = optionalStringParam(p, "share").value_or("");
    remote.domain = optionalStringParam(p, "domain").value_or("");
    remote.smbVersion = optionalStringParam(p, "smb_version").value_or("");
    remote.guest = present(p, "guest") && boolParam(p, "guest");
    remote.url = optionalStringParam(p, "url").value_or("");
    remote.tlsVerify = !present(p, "tls_verify") || boolParam(p, "tls_verify");
    remote.nfsVersion = optionalStringParam(p, "nfs_version").value_or("");
    remote.knownHosts = optionalStringParam(p, "known_hosts").value_or("");
    remote.hostKeyCheck = !present(p, "host_key_check") || boolParam(p, "host_key_check");
    remote.rcloneType = optionalStringParam(p, "rclone_type").value_or("");
    remote.rcloneOptions = rcloneOptionsParam(p, "rclone_options", false);
    auto secretOptions = rcloneOptionsParam(p, "rclone_secret_options", true);
    remote.rcloneOptions.insert(remote.rcloneOptions.end(), secretOptions.begin(), secretOptions.end());
    remote.mountOptions = stringListParam(p, "mount_options");
    remote.readWrite = present(p, "read_write") && boolParam(p, "read_write");
    remote.autoRemount = !present(p, "auto_remount") || boolParam(p, "auto_remount");
    remote.keepMounted = present(p, "keep_mounted") && boolParam(p, "keep_mounted");

    const auto password = optionalStringParam(p, "password");
    const auto privateKey = optionalStringParam(p, "private_key");
    v.passwordRef = optionalStringParam(p, "password_ref").value_or("");
    v.privateKeyRef = optionalStringParam(p, "private_key_ref").value_or("");
    if (password && !v.passwordRef.empty())
      throw Error(ErrorCode::InvalidArgument, "give the password or a reference to it, not both", {{"parameter", "password_ref"}});
    if (privateKey && !v.privateKeyRef.empty())
      throw Error(ErrorCode::InvalidArgument, "give the private key or a reference to it, not both",
                  {{"parameter", "private_key_ref"}});
    if (!v.passwordRef.empty()) secrets::validateReference(v.passwordRef);
    if (!v.privateKeyRef.empty()) secrets::validateReference(v.privateKeyRef);
    if (password) core::validateMountPassword(*password);
    if (privateKey) core::validatePrivateKey(*privateKey);
    core::VolumeSecretsPresent has{password.has_value() || !v.passwordRef.empty(),
                                   privateKey.has_value() || !v.privateKeyRef.empty()};
    core::validateRemote(type, remote, has, m_mounter->settings().optionPolicy);

    v.id = newId();
    v.ownerUid = r->caller().uid;
    v.groupGid = group;
    v.privileged = true;
    v.created = now();
    if (password) v.password = m_vault.seal(*password, volumePasswordRecord(v));
    if (privateKey) v.privateKey = m_vault.seal(*privateKey, volumePrivateKeyRecord(v));
    auto txn = m_store.begin();
    txn.put(v);
    txn.commit();
    log::info("volume \"" + name + "\" (" + type + ", " + core::describeRemote(v) + ", driver " + remote.driver +
              ") created by uid " + std::to_string(r->caller().uid));
    resourcesChanged();
    if (remote.keepMounted)
      m_mounter->mount(v, [name](std::optional<Error> error) {
        if (error) log::warning("volume \"" + name + "\" is kept mounted but could not be mounted: " + error->what());
      });
    r->reply({{"volume", volumeJson(v)}});
    return;
  }

  for (const auto& key : networkParameters())
    if (present(p, key))
      throw Error(ErrorCode::InvalidArgument, "\"" + key + "\" does not apply to a directory volume (it takes path)",
                  {{"parameter", key}});
  if (!present(p, "path"))
    throw Error(ErrorCode::InvalidParameter, "parameter \"path\" of CreateVolume is missing (a directory volume needs it)",
                {{"parameter", "path"}});
  std::string path = stringParam(p, "path");
  core::validateAbsolutePath(path, "volume path");
  // An admin's volume is backed up as root; anyone else's as its owner, and only what they can read. What a
  // non-admin learns about the path comes from their own attempt, never from root's view of it.
  whenAllowed(r, Action::Admin, ownScope(), [this, r, name, type, path, group](bool admin) {
    if (admin) {
      struct stat st {};
      if (stat(path.c_str(), &st) < 0)
        throw Error(ErrorCode::InvalidArgument, "volume path " + path + " cannot be used: " + std::strerror(errno), {{"parameter", "path"}});
      if (!S_ISDIR(st.st_mode))
        throw Error(ErrorCode::InvalidArgument, "volume path " + path + " is not a directory", {{"parameter", "path"}});
    } else {
      requireAccessAs(r->caller().uid, path, process::AccessKind::ReadDirectory, "volume path", "path");
    }
    if (findVolume(name)) throw Error(ErrorCode::AlreadyExists, "a volume named \"" + name + "\" exists already");
    core::Volume v;
    v.id = newId();
    v.name = name;
    v.type = type;
    v.path = path;
    v.ownerUid = r->caller().uid;
    v.groupGid = group;
    v.privileged = admin;
    v.created = now();
    auto txn = m_store.begin();
    txn.put(v);
    txn.commit();
    log::info("volume \"" + name + "\" (" + path + ") created by uid " + std::to_string(r->caller().uid));
    resourcesChanged();
    r->reply({{"volume", volumeJson(v)}});
  });
}

namespace {
core::Volume requireNetwork(core::Volume v, const char* verb) {
  if (!v.isNetwork())
    throw Error(ErrorCode::InvalidArgument, "volume \"" + v.name + "\" is a directory on this machine; only network volumes are " +
                                                verb);
  return v;
}
}  // namespace

void Service::mountVolume(const json& p, const RequestPtr& r) {
  auto v = requireNetwork(requireVolume(stringParam(p, "name")), "mounted");
  m_mounter->mount(v, [this, r, v](std::optional<Error> error) {
    if (!r->alive()) return;
    if (error) return r->fail(*error);
    r->reply({{"volume", volumeJson(v)}});
  });
}

void Service::unmountVolume(const json& p, const RequestPtr& r) {
  auto v = requireNetwork(requireVolume(stringParam(p, "name")), "unmounted");
  m_mounter->unmount(v, [this, r, v](std::optional<Error> error) {
    if (!r->alive()) return;
    if (error) return r->fail(*error);
    r->reply({{"volume", volumeJson(v)}});
  });
}

void Service::testVolume(const json& p, const RequestPtr& r) {
  auto v = requireNetwork(requireVolume(stringParam(p, "name")), "tested");
  m_mounter->test(v, kTestListLimit, [r, v](std::optional<Error> error, std::vector<std::string> names) {
    if (!r->alive()) return;
    if (error) return r->fail(*error);
    r->reply({{"volume", v.name}, {"remote", core::describeRemote(v)}, {"driver", v.remote.driver}, {"entries", names},
              {"message", "mounted " + core::describeRemote(v) + " with " + v.remote.driver + ", listed its root (" +
                              std::to_string(names.size()) + " entries shown) and unmounted it"}});
  });
}

void Service::startMounts() {
  m_mounter->resolveSecrets = [this](const core::Volume& v) { return volumeSecrets(v); };
  m_mounter->findVolume = [this](const std::string& id) -> std::optional<core::Volume> {
    for (auto& v : allVolumes())
      if (v.id == id) return v;
    return std::nullopt;
  };
  m_mounter->onChanged = [this](const std::string&) { resourcesChanged(); };
  m_mounter->onHelperEnded = [this] { checkShutdownDone(); };
  m_mounter->start(allVolumes());
}

void Service::setMountSettings(mount::MounterSettings settings) {
  m_settings.mount = settings;
  m_mounter->setSettings(std::move(settings));
}

}  // namespace zerobyte::api
