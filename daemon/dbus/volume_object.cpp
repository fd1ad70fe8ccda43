// org.zerobyte.Daemon1.Volume at /org/zerobyte/Daemon1/volumes/<id>.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/service.h"
#include "daemon/core/mount_plan.h"
#include "daemon/dbus/objects.h"

namespace zerobyte::dbus {

using nlohmann::json;

VolumeObject::VolumeObject(ObjectTree& tree, core::Volume volume)
    : AdaptorInterfaces(tree.connection(), volumePath(volume.id)), m_tree(tree), m_volume(std::move(volume)) {
  registerAdaptor();
}

VolumeObject::~VolumeObject() { unregisterAdaptor(); }

void VolumeObject::update(core::Volume volume) {
  m_volume = std::move(volume);
  if (!m_volume.isNetwork()) return;
  json mount = m_tree.service().volumeRecord(m_volume).value("mount", json::object());
  if (mount == m_mount) return;
  m_mount = std::move(mount);
  getObject().emitPropertiesChangedSignal(INTERFACE_NAME, {"MountState", "MountPath", "LastCheck", "LastError"});
}

std::string VolumeObject::mountField(const char* key) {
  if (!m_tree.readable(m_volume) || !m_volume.isNetwork()) return {};
  json mount = m_tree.service().volumeRecord(m_volume).value("mount", json::object());
  const json value = mount.value(key, json());
  return value.is_string() ? value.get<std::string>() : std::string();
}

std::string VolumeObject::Remote() {
  return guarded([&] {
    return m_tree.readable(m_volume) && m_volume.isNetwork() ? core::describeRemote(m_volume) : std::string();
  });
}
std::string VolumeObject::Driver() {
  return guarded([&] { return m_tree.readable(m_volume) && m_volume.isNetwork() ? m_volume.remote.driver : std::string(); });
}
std::string VolumeObject::MountState() { return guarded([&] { return mountField("state"); }); }
std::string VolumeObject::MountPath() { return guarded([&] { return mountField("path"); }); }
std::string VolumeObject::LastCheck() { return guarded([&] { return mountField("last_check"); }); }
std::string VolumeObject::LastError() { return guarded([&] { return mountField("last_error"); }); }

void VolumeObject::Mount(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("MountVolume", {{"name", m_volume.name}}, options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void VolumeObject::Unmount(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("UnmountVolume", {{"name", m_volume.name}}, options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void VolumeObject::Test(sdbus::Result<std::vector<std::string>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<std::string>>("TestVolume", {{"name", m_volume.name}}, options, std::move(result),
                                          [](auto& r, const json& reply) {
                                            std::vector<std::string> entries;
                                            for (const auto& e : reply.value("entries", json::array())) entries.push_back(e.get<std::string>());
                                            r.returnResults(entries);
                                          });
  });
}

// Each property is readable by those who may view the volume; others see it empty.
std::string VolumeObject::Id() { return guarded([&] { return m_tree.readable(m_volume) ? m_volume.id : std::string(); }); }
std::string VolumeObject::Name() { return guarded([&] { return m_tree.readable(m_volume) ? m_volume.name : std::string(); }); }
std::string VolumeObject::Type() { return guarded([&] { return m_tree.readable(m_volume) ? m_volume.type : std::string(); }); }
std::string VolumeObject::Path() { return guarded([&] { return m_tree.readable(m_volume) ? m_volume.path : std::string(); }); }
bool VolumeObject::Declared() { return guarded([&] { return m_tree.readable(m_volume) && m_volume.declared; }); }
uint32_t VolumeObject::OwnerUID() { return guarded([&] { return m_tree.readable(m_volume) ? m_volume.ownerUid : 0u; }); }
std::string VolumeObject::Owner() {
  return guarded([&] { return m_tree.readable(m_volume) ? users::describeUser(m_volume.ownerUid) : std::string(); });
}
std::string VolumeObject::Group() {
  return guarded([&] {
    return m_tree.readable(m_volume) && m_volume.groupGid ? users::describeGroup(*m_volume.groupGid) : std::string();
  });
}
bool VolumeObject::Privileged() { return guarded([&] { return m_tree.readable(m_volume) && m_volume.privileged; }); }
std::string VolumeObject::Created() {
  return guarded([&] { return m_tree.readable(m_volume) ? api::formatTime(m_volume.created) : std::string(); });
}

void VolumeObject::Delete(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("DeleteVolume", {{"name", m_volume.name}}, options, std::move(result),
                  [](auto& r, const json&) { r.returnResults(); });
  });
}

void VolumeObject::Backup(sdbus::Result<sdbus::ObjectPath>&& result, sdbus::ObjectPath repository, Vardict options) {
  guarded([&] {
    auto name = m_tree.repositoryNameByPath(repository);
    if (!name) throw Error(ErrorCode::NotFound, "no repository at " + std::string(repository), {{"parameter", "repository"}});
    m_tree.call<sdbus::ObjectPath>("StartBackup", {{"volume", m_volume.name}, {"repository", *name}}, options, std::move(result),
                                   m_tree.jobAnswer());
  });
}

}  // namespace zerobyte::dbus
