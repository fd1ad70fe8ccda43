// org.zerobyte.Daemon1.Repository at /org/zerobyte/Daemon1/repositories/<id>.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/core/repository_backend.h"
#include "daemon/dbus/objects.h"

namespace zerobyte::dbus {

using nlohmann::json;

RepositoryObject::RepositoryObject(ObjectTree& tree, core::Repository repository, std::optional<size_t> snapshotCount)
    : AdaptorInterfaces(tree.connection(), repositoryPath(repository.id)),
      m_tree(tree),
      m_repository(std::move(repository)),
      m_snapshotCount(snapshotCount) {
  registerAdaptor();
}

RepositoryObject::~RepositoryObject() { unregisterAdaptor(); }

void RepositoryObject::update(core::Repository repository, std::optional<size_t> snapshotCount) {
  std::vector<std::string> changed;
  if (snapshotCount != m_snapshotCount) changed.push_back("SnapshotCount");
  if (repository.passwordRef != m_repository.passwordRef) changed.push_back("PasswordSource");
  m_repository = std::move(repository);
  m_snapshotCount = snapshotCount;
  if (!changed.empty()) getObject().emitPropertiesChangedSignal(INTERFACE_NAME, changed);
}

// Each property is readable by those who may view the repository; others see it empty.
std::string RepositoryObject::Id() { return guarded([&] { return m_tree.readable(m_repository) ? m_repository.id : std::string(); }); }
std::string RepositoryObject::Name() {
  return guarded([&] { return m_tree.readable(m_repository) ? m_repository.name : std::string(); });
}
std::string RepositoryObject::Type() {
  return guarded([&] { return m_tree.readable(m_repository) ? m_repository.type : std::string(); });
}
std::string RepositoryObject::Location() {
  return guarded([&] { return m_tree.readable(m_repository) ? core::describeRepository(m_repository) : std::string(); });
}
bool RepositoryObject::Declared() { return guarded([&] { return m_tree.readable(m_repository) && m_repository.declared; }); }
uint32_t RepositoryObject::OwnerUID() { return guarded([&] { return m_tree.readable(m_repository) ? m_repository.ownerUid : 0u; }); }
std::string RepositoryObject::Owner() {
  return guarded([&] { return m_tree.readable(m_repository) ? users::describeUser(m_repository.ownerUid) : std::string(); });
}
std::string RepositoryObject::Group() {
  return guarded([&] {
    return m_tree.readable(m_repository) && m_repository.groupGid ? users::describeGroup(*m_repository.groupGid) : std::string();
  });
}
bool RepositoryObject::Privileged() { return guarded([&] { return m_tree.readable(m_repository) && m_repository.privileged; }); }
std::string RepositoryObject::Created() {
  return guarded([&] { return m_tree.readable(m_repository) ? api::formatTime(m_repository.created) : std::string(); });
}
std::string RepositoryObject::PasswordSource() {
  return guarded([&] {
    if (!m_tree.readable(m_repository)) return std::string();
    return m_repository.passwordRef.empty() ? std::string("stored") : m_repository.passwordRef;
  });
}
int64_t RepositoryObject::SnapshotCount() {
  return guarded([&] {
    return m_tree.readable(m_repository) && m_snapshotCount ? static_cast<int64_t>(*m_snapshotCount) : int64_t{-1};
  });
}

void RepositoryObject::Delete(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("DeleteRepository", {{"name", m_repository.name}}, options, std::move(result),
                  [](auto& r, const json&) { r.returnResults(); });
  });
}

void RepositoryObject::ListSnapshots(sdbus::Result<std::vector<Vardict>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<Vardict>>("ListSnapshots", {{"repository", m_repository.name}}, options, std::move(result),
                                      [](auto& r, const json& reply) { r.returnResults(toVardictList(reply.at("snapshots"))); });
  });
}

void RepositoryObject::ListFiles(sdbus::Result<std::vector<Vardict>>&& result, std::string snapshot, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<Vardict>>("ListFiles", {{"repository", m_repository.name}, {"snapshot", snapshot}}, options,
                                      std::move(result),
                                      [](auto& r, const json& reply) { r.returnResults(toVardictList(reply.at("nodes"))); });
  });
}

void RepositoryObject::Restore(sdbus::Result<sdbus::ObjectPath>&& result, std::string snapshot, std::string target, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("StartRestore", {{"repository", m_repository.name}, {"snapshot", snapshot}, {"target", target}},
                                   options, std::move(result), m_tree.jobAnswer());
  });
}

void RepositoryObject::ForgetSnapshot(sdbus::Result<sdbus::ObjectPath>&& result, std::string snapshot, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("ForgetSnapshot", {{"repository", m_repository.name}, {"snapshot", snapshot}}, options,
                                   std::move(result), m_tree.jobAnswer());
  });
}

void RepositoryObject::Check(sdbus::Result<sdbus::ObjectPath>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("CheckRepository", {{"name", m_repository.name}}, options, std::move(result), m_tree.jobAnswer());
  });
}

void RepositoryObject::ChangePassword(sdbus::Result<sdbus::ObjectPath>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("ChangeRepositoryPassword", {{"name", m_repository.name}}, options, std::move(result),
                                   m_tree.jobAnswer());
  });
}

void RepositoryObject::RevealPassword(sdbus::Result<std::string>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::string>("RevealRepositoryPassword", {{"name", m_repository.name}}, options, std::move(result),
                             [](auto& r, const json& reply) { r.returnResults(reply.at("password").get<std::string>()); });
  });
}

}  // namespace zerobyte::dbus
