// org.zerobyte.Daemon1.Manager at /org/zerobyte/Daemon1/Manager.
#include "common/version.h"
#include "daemon/api/service.h"
#include "daemon/dbus/objects.h"

namespace zerobyte::dbus {

using nlohmann::json;

namespace {

std::vector<sdbus::ObjectPath> pathsOf(const json& records, std::string (*pathOf)(const std::string&)) {
  std::vector<sdbus::ObjectPath> paths;
  for (const auto& r : records) paths.emplace_back(pathOf(r.at("id").get<std::string>()));
  return paths;
}

}  // namespace

ManagerObject::ManagerObject(ObjectTree& tree) : AdaptorInterfaces(tree.connection(), managerPath()), m_tree(tree) {
  m_running = static_cast<uint32_t>(tree.service().runningJobs());
  m_queued = static_cast<uint32_t>(tree.service().queuedJobs());
  registerAdaptor();
}

ManagerObject::~ManagerObject() { unregisterAdaptor(); }

void ManagerObject::jobsCountChanged() {
  auto running = static_cast<uint32_t>(m_tree.service().runningJobs());
  auto queued = static_cast<uint32_t>(m_tree.service().queuedJobs());
  std::vector<std::string> changed;
  if (running != m_running) changed.push_back("RunningJobs");
  if (queued != m_queued) changed.push_back("QueuedJobs");
  m_running = running;
  m_queued = queued;
  if (!changed.empty()) getObject().emitPropertiesChangedSignal(INTERFACE_NAME, changed);
}

// Public: the same for everyone, like the socket's GetStatus without the master key.
std::string ManagerObject::Version() { return guarded([] { return std::string(kVersion); }); }
std::string ManagerObject::ResticVersion() { return guarded([&] { return m_tree.service().settings().resticVersion; }); }
std::string ManagerObject::AuthorizationMode() { return guarded([&] { return m_tree.service().authorizer().mode(); }); }
uint32_t ManagerObject::RunningJobs() { return guarded([&] { return static_cast<uint32_t>(m_tree.service().runningJobs()); }); }
uint32_t ManagerObject::QueuedJobs() { return guarded([&] { return static_cast<uint32_t>(m_tree.service().queuedJobs()); }); }

void ManagerObject::GetStatus(sdbus::Result<Vardict>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<Vardict>("GetStatus", json::object(), options, std::move(result),
                         [](auto& r, const json& reply) { r.returnResults(toVardict(reply)); });
  });
}

void ManagerObject::CreateVolume(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, std::string type,
                                 std::string path, Vardict options) {
  guarded([&] {
    // Network volumes have no path ("" here): their fields come in the options.
    json params = {{"name", name}, {"type", type}};
    if (!path.empty() || type == "directory") params["path"] = path;
    m_tree.call<sdbus::ObjectPath>(
        "CreateVolume", std::move(params), options, std::move(result),
        [](auto& r, const json& reply) { r.returnResults(sdbus::ObjectPath(volumePath(reply.at("volume").at("id").get<std::string>()))); });
  });
}

void ManagerObject::ListVolumes(sdbus::Result<std::vector<sdbus::ObjectPath>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<sdbus::ObjectPath>>("ListVolumes", json::object(), options, std::move(result),
                                                [](auto& r, const json& reply) { r.returnResults(pathsOf(reply.at("volumes"), volumePath)); });
  });
}

void ManagerObject::FindVolume(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>(
        "GetVolume", {{"name", name}}, options, std::move(result),
        [](auto& r, const json& reply) { r.returnResults(sdbus::ObjectPath(volumePath(reply.at("volume").at("id").get<std::string>()))); });
  });
}

void ManagerObject::CreateSchedule(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, std::string volume,
                                   std::string repository, std::string cron, Vardict options) {
  guarded([&] {
    json params = {{"name", name}, {"repository", repository}, {"cron", cron}};
    if (!volume.empty()) params["volume"] = volume;
    m_tree.call<sdbus::ObjectPath>("CreateSchedule", std::move(params), options, std::move(result), [](auto& r, const json& reply) {
      r.returnResults(sdbus::ObjectPath(schedulePath(reply.at("schedule").at("id").get<std::string>())));
    });
  });
}

void ManagerObject::ListSchedules(sdbus::Result<std::vector<sdbus::ObjectPath>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<sdbus::ObjectPath>>("ListSchedules", json::object(), options, std::move(result),
                                                [](auto& r, const json& reply) { r.returnResults(pathsOf(reply.at("schedules"), schedulePath)); });
  });
}

void ManagerObject::FindSchedule(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("GetSchedule", {{"name", name}}, options, std::move(result), [](auto& r, const json& reply) {
      r.returnResults(sdbus::ObjectPath(schedulePath(reply.at("schedule").at("id").get<std::string>())));
    });
  });
}

void ManagerObject::CreateRepository(sdbus::Result<sdbus::ObjectPath, sdbus::ObjectPath>&& result, std::string name,
                                     std::string type, std::string path, Vardict options) {
  guarded([&] {
    std::string sender = m_tree.peers().current().sender;
    // Remote repositories take their fields (and credentials) in the options; their path may be empty.
    json params = {{"name", name}, {"type", type}};
    if (!path.empty() || type == "local") params["path"] = path;
    m_tree.call<sdbus::ObjectPath, sdbus::ObjectPath>(
        "CreateRepository", std::move(params), options, std::move(result),
        [this, sender](auto& r, const json& reply) {
          r.returnResults(sdbus::ObjectPath(repositoryPath(reply.at("repository").at("id").get<std::string>())),
                          m_tree.jobOfReply(reply, sender));
        });
  });
}

void ManagerObject::ImportRepository(sdbus::Result<sdbus::ObjectPath, sdbus::ObjectPath>&& result, std::string name,
                                     std::string type, std::string path, std::string password, Vardict options) {
  guarded([&] {
    std::string sender = m_tree.peers().current().sender;
    json params = {{"name", name}, {"type", type}, {"password", password}};
    if (!path.empty() || type == "local") params["path"] = path;
    m_tree.call<sdbus::ObjectPath, sdbus::ObjectPath>(
        "ImportRepository", std::move(params), options, std::move(result),
        [this, sender](auto& r, const json& reply) {
          r.returnResults(sdbus::ObjectPath(repositoryPath(reply.at("repository").at("id").get<std::string>())),
                          m_tree.jobOfReply(reply, sender));
        });
  });
}

void ManagerObject::ListRepositories(sdbus::Result<std::vector<sdbus::ObjectPath>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<sdbus::ObjectPath>>(
        "ListRepositories", json::object(), options, std::move(result),
        [](auto& r, const json& reply) { r.returnResults(pathsOf(reply.at("repositories"), repositoryPath)); });
  });
}

void ManagerObject::FindRepository(sdbus::Result<sdbus::ObjectPath>&& result, std::string name, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>(
        "GetRepository", {{"name", name}}, options, std::move(result),
        [](auto& r, const json& reply) { r.returnResults(sdbus::ObjectPath(repositoryPath(reply.at("repository").at("id").get<std::string>()))); });
  });
}

void ManagerObject::StartBackup(sdbus::Result<sdbus::ObjectPath>&& result, std::string volume, std::string repository,
                                Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("StartBackup", {{"volume", volume}, {"repository", repository}}, options, std::move(result),
                                   m_tree.jobAnswer());
  });
}

void ManagerObject::StartRestore(sdbus::Result<sdbus::ObjectPath>&& result, std::string repository, std::string snapshot,
                                 std::string target, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("StartRestore", {{"repository", repository}, {"snapshot", snapshot}, {"target", target}},
                                   options, std::move(result), m_tree.jobAnswer());
  });
}

void ManagerObject::ListJobs(sdbus::Result<std::vector<Vardict>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<Vardict>>("ListJobs", json::object(), options, std::move(result),
                                      [](auto& r, const json& reply) { r.returnResults(toVardictList(reply.at("jobs"))); });
  });
}

void ManagerObject::RotateMasterKey(sdbus::Result<Vardict>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<Vardict>("RotateMasterKey", json::object(), options, std::move(result),
                         [](auto& r, const json& reply) { r.returnResults(toVardict(reply)); });
  });
}

void ManagerObject::ListAudit(sdbus::Result<std::vector<Vardict>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<Vardict>>("ListAudit", json::object(), options, std::move(result),
                                      [](auto& r, const json& reply) { r.returnResults(toVardictList(reply.at("entries"))); });
  });
}

}  // namespace zerobyte::dbus
