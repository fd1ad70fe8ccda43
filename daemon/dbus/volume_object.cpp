// org.zerobyte.Daemon1.Volume at /org/zerobyte/Daemon1/volumes/<id>.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/dbus/objects.h"

namespace zerobyte::dbus {

using nlohmann::json;

VolumeObject::VolumeObject(ObjectTree& tree, core::Volume volume)
    : AdaptorInterfaces(tree.connection(), volumePath(volume.id)), m_tree(tree), m_volume(std::move(volume)) {
  registerAdaptor();
}

VolumeObject::~VolumeObject() { unregisterAdaptor(); }

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
