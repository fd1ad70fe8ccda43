// The objects on the bus, the clients talking to them, and calls waiting for the service layer.
#include "daemon/dbus/object_tree.h"

#include "common/names.h"
#include "daemon/api/service.h"
#include "daemon/dbus/objects.h"
#include "daemon/log/log.h"

#include <algorithm>

namespace zerobyte::dbus {

using nlohmann::json;

namespace {

// A bound on the clients whose identity is remembered (each leaves a NameOwnerChanged we act on;
// this only guards against a bus that never tells).
constexpr size_t kMaxPeers = 4096;
constexpr std::string_view kNoInteraction = "auth.no_user_interaction";
// dbus-daemon disconnects a sender whose message is over its limit (32 MiB by default): one oversized
// reply would take the whole API off the bus. Replies stay well below.
constexpr size_t kMaxReplyBytes = 16 * 1024 * 1024;

// A request of the service layer that came over the bus.
class BusRequest : public api::Request {
 public:
  BusRequest(api::Caller caller, std::weak_ptr<Peers> peers, std::weak_ptr<CallTable> calls, uint64_t id)
      : m_caller(std::move(caller)), m_peers(std::move(peers)), m_calls(std::move(calls)), m_id(id) {}
  // The service lets go of a request it will not answer (its caller left): so does the tree.
  ~BusRequest() override {
    if (auto calls = m_calls.lock()) calls->drop(m_id);
    if (auto peers = m_peers.lock()) peers->forgetGone(m_caller.busName, m_id);
  }
  BusRequest(const BusRequest&) = delete;
  BusRequest& operator=(const BusRequest&) = delete;
  const api::Caller& caller() const override { return m_caller; }
  bool wantsMore() const override { return false; }
  void replyMore(json) override {}
  void reply(json parameters) override {
    if (auto calls = m_calls.lock()) calls->finish(m_id, &parameters, nullptr);
  }
  void fail(const Error& error) override {
    if (auto calls = m_calls.lock()) calls->finish(m_id, nullptr, &error);
  }
  bool alive() const override {
    auto peers = m_peers.lock();
    return peers && m_calls.lock() && peers->present(m_caller.busName);
  }
  void onGone(std::function<void()> callback) override {
    if (auto peers = m_peers.lock()) peers->onGone(m_caller.busName, m_id, std::move(callback));
  }

 private:
  api::Caller m_caller;
  std::weak_ptr<Peers> m_peers;
  std::weak_ptr<CallTable> m_calls;
  uint64_t m_id;
};

}  // namespace

std::string managerPath() { return std::string(kObjectRoot) + "/Manager"; }
std::string volumePath(const std::string& id) { return std::string(kObjectRoot) + "/volumes/" + encodePathElement(id); }
std::string repositoryPath(const std::string& id) { return std::string(kObjectRoot) + "/repositories/" + encodePathElement(id); }
std::string jobPath(uint64_t id) { return std::string(kObjectRoot) + "/jobs/" + std::to_string(id); }
std::string schedulePath(const std::string& id) { return std::string(kObjectRoot) + "/schedules/" + encodePathElement(id); }

sdbus::Error toBusError(const Error& error) { return sdbus::Error(dbusErrorName(error.code()), error.what()); }

// ---- CallTable ----

uint64_t CallTable::add(std::string path, Answer answer) {
  uint64_t id = m_next++;
  m_calls.emplace(id, Pending{std::move(path), std::move(answer)});
  return id;
}

void CallTable::finish(uint64_t id, const json* reply, const Error* error) {
  auto it = m_calls.find(id);
  if (it == m_calls.end()) return;
  Answer answer = std::move(it->second.answer);
  m_calls.erase(it);
  answer(reply, error);
  if (onSettled) onSettled();
}

void CallTable::drop(uint64_t id) {
  if (m_calls.erase(id) && onSettled) onSettled();
}

bool CallTable::pendingOn(const std::string& path) const {
  for (const auto& [id, call] : m_calls)
    if (call.path == path) return true;
  return false;
}

// ---- Peers ----

std::optional<api::Caller> Peers::callerOf(const std::string& sender) const {
  auto it = m_callers.find(sender);
  if (it == m_callers.end()) return std::nullopt;
  return it->second;
}

void Peers::remember(const std::string& sender, api::Caller caller) {
  if (m_callers.size() >= kMaxPeers) m_callers.erase(m_callers.begin());
  m_callers[sender] = std::move(caller);
}

void Peers::onGone(const std::string& sender, uint64_t key, std::function<void()> callback) {
  if (!present(sender)) return callback();
  m_goneCallbacks[sender][key] = std::move(callback);
}

void Peers::forgetGone(const std::string& sender, uint64_t key) {
  auto it = m_goneCallbacks.find(sender);
  if (it == m_goneCallbacks.end()) return;
  it->second.erase(key);
  if (it->second.empty()) m_goneCallbacks.erase(it);
}

void Peers::gone(const std::string& sender) {
  m_callers.erase(sender);
  auto it = m_goneCallbacks.find(sender);
  if (it == m_goneCallbacks.end()) return;
  auto callbacks = std::move(it->second);
  m_goneCallbacks.erase(it);
  for (auto& [key, c] : callbacks) c();
}

// ---- ObjectTree ----

ObjectTree::ObjectTree(sdbus::IConnection& connection, loop::EventLoop& loop, api::Service& service, unsigned finishedJobSeconds)
    : m_connection(connection), m_loop(loop), m_service(service), m_finishedJobSeconds(finishedJobSeconds) {
  m_calls->onSettled = [this] {
    if (!m_retired.empty()) sweepRetired();
  };
  m_manager = std::make_unique<ManagerObject>(*this);
  reconcile();
  // After a reconnect: the jobs that ran on while the bus was away.
  for (const auto& job : m_service.activeJobs()) jobChanged(job);
}

ObjectTree::~ObjectTree() {
  // Calls first: their results refer to the connection and to the objects' method tables.
  m_calls.reset();
  m_retired.clear();
  m_jobRemovals.clear();
  m_jobs.clear();
  m_schedules.clear();
  m_repositories.clear();
  m_volumes.clear();
  m_manager.reset();
}

void ObjectTree::noteIncoming(sdbus::Message& message) {
  std::string sender = message.getSender();
  std::string path = message.getPath();
  m_peers->setCurrent({sender, message.getMemberName(), path});
  m_readDecisions.clear();
  m_viewer.reset();
  if (sender.empty() || m_peers->present(sender)) return;
  // Only calls to our own objects need to know who sends them.
  if (path.rfind(kObjectRoot, 0) != 0) return;
  try {
    api::Caller caller;
    caller.transport = "dbus";
    caller.busName = sender;
    // From the bus daemon, asked once per client: the uid the client connected with (the
    // effective one, as polkit sees it) and its pid. Never the real uid or gid: sd-bus would read
    // those from /proc/PID, and that pid may name another process by now.
    caller.uid = message.getCredsEuid();
    caller.pid = message.getCredsPid();
    m_peers->remember(sender, std::move(caller));
  } catch (const sdbus::Error& e) {
    log::debug("the bus cannot tell who " + sender + " is (" + e.getMessage() + "); its calls are refused");
  }
}

void ObjectTree::nameLost(const std::string& name) {
  for (auto& [id, job] : m_jobs) job->forgetWatcher(name);
  m_peers->gone(name);
}

bool ObjectTree::readableBy(bool allowed) {
  const auto& current = m_peers->current();
  if (!allowed && current.member == "Get")
    throw sdbus::Error(dbusErrorName(ErrorCode::NotFound), "no such object; see Manager.ListVolumes, ListRepositories, ListSchedules and ListJobs");
  return allowed;
}

void ObjectTree::asNobody(const std::function<void()>& emit) {
  Peers::Current saved = m_peers->current();
  auto savedDecisions = std::move(m_readDecisions);
  auto savedViewer = std::move(m_viewer);
  auto restore = [&] {
    m_peers->setCurrent(std::move(saved));
    m_readDecisions = std::move(savedDecisions);
    m_viewer = std::move(savedViewer);
  };
  m_peers->clearCurrent();
  m_readDecisions.clear();
  m_viewer.reset();
  try {
    emit();
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

const api::Service::Viewer* ObjectTree::currentViewer() {
  if (!m_viewer) {
    auto caller = m_peers->callerOf(m_peers->current().sender);
    if (!caller) return nullptr;
    m_viewer = m_service.viewer(*caller);
  }
  return &*m_viewer;
}

template <typename Resource>
bool ObjectTree::decideRead(const std::string& key, const Resource& resource) {
  auto [it, inserted] = m_readDecisions.try_emplace(key, false);
  if (inserted) {
    const api::Service::Viewer* viewer = currentViewer();
    it->second = viewer && m_service.mayViewNow(*viewer, resource);
  }
  return readableBy(it->second);
}

bool ObjectTree::readable(const core::Volume& volume) { return decideRead("volume " + volume.id, volume); }

bool ObjectTree::readable(const core::Repository& repository) { return decideRead("repository " + repository.id, repository); }

bool ObjectTree::readable(const core::Schedule& schedule) { return decideRead("schedule " + schedule.id, schedule); }

bool ObjectTree::readable(const core::Job& job) {
  bool allowed = decideRead("job " + std::to_string(job.id), job);
  if (allowed)
    if (auto it = m_jobs.find(job.id); it != m_jobs.end()) it->second->addWatcher(m_peers->current().sender);
  return allowed;
}

void ObjectTree::callWith(std::string_view method, json params, const Vardict& options, CallTable::Answer answer) {
  const std::string sender = m_peers->current().sender;
  auto caller = m_peers->callerOf(sender);
  if (!caller) throw sdbus::Error(dbusErrorName(ErrorCode::NotAuthorized), "the bus could not tell who is calling");
  bool interactive = true;
  for (const auto& [key, value] : options) {
    if (key == kNoInteraction) {
      json v = fromVariant(value, key);
      if (!v.is_boolean()) throw Error(ErrorCode::InvalidParameter, "option \"auth.no_user_interaction\" must be a boolean (b)", {{"parameter", key}});
      interactive = !v.get<bool>();
      continue;
    }
    if (key == "allow_interactive_authentication" || params.contains(key))
      throw Error(ErrorCode::InvalidParameter, "option \"" + key + "\" is not an option of " + std::string(method), {{"parameter", key}});
    params[key] = fromVariant(value, key);
  }
  params["allow_interactive_authentication"] = interactive;
  uint64_t id = m_calls->add(m_peers->current().path, [answer = std::move(answer), method = std::string(method)](const json* reply,
                                                                                                                const Error* error) {
    if (reply && !error) {
      size_t bytes = reply->dump().size();
      if (bytes > kMaxReplyBytes) {
        Error tooLarge(ErrorCode::MessageTooLarge,
                       "the reply of " + method + " would be " + std::to_string(bytes / (1024 * 1024)) +
                           " MiB, more than the bus carries; ask for less (a path in ListFiles, a limit in ListJobs), or use the socket");
        return answer(nullptr, &tooLarge);
      }
    }
    answer(reply, error);
  });
  auto request = std::make_shared<BusRequest>(*caller, m_peers, m_calls, id);
  try {
    m_service.dispatch(std::string(method), params, request);
  } catch (const Error& e) {
    request->fail(e);
  } catch (const std::exception& e) {
    log::error(std::string("internal error in ") + std::string(method) + " over D-Bus: " + e.what());
    request->fail(Error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
  }
}

void ObjectTree::reconcile() {
  // Volumes
  std::map<std::string, core::Volume> volumes;
  for (auto& v : m_service.volumes()) volumes.emplace(v.id, std::move(v));
  for (auto it = m_volumes.begin(); it != m_volumes.end();) {
    if (volumes.count(it->first)) {
      asNobody([&] { it->second->update(volumes[it->first]); });
      ++it;
      continue;
    }
    asNobody([&] { it->second->emitInterfacesRemovedSignal({org::zerobyte::Daemon1::Volume_adaptor::INTERFACE_NAME}); });
    retire(volumePath(it->first), std::shared_ptr<VolumeObject>(std::move(it->second)));
    it = m_volumes.erase(it);
  }
  for (auto& [id, v] : volumes) {
    if (m_volumes.count(id)) continue;
    auto object = std::make_unique<VolumeObject>(*this, v);
    asNobody([&] { object->emitInterfacesAddedSignal({org::zerobyte::Daemon1::Volume_adaptor::INTERFACE_NAME}); });
    m_volumes.emplace(id, std::move(object));
  }
  // Repositories
  std::map<std::string, core::Repository> repositories;
  for (auto& r : m_service.repositories()) repositories.emplace(r.id, std::move(r));
  for (auto it = m_repositories.begin(); it != m_repositories.end();) {
    if (repositories.count(it->first)) {
      asNobody([&] { it->second->update(repositories[it->first], m_service.snapshotCount(it->first)); });
      ++it;
      continue;
    }
    asNobody([&] { it->second->emitInterfacesRemovedSignal({org::zerobyte::Daemon1::Repository_adaptor::INTERFACE_NAME}); });
    retire(repositoryPath(it->first), std::shared_ptr<RepositoryObject>(std::move(it->second)));
    it = m_repositories.erase(it);
  }
  for (auto& [id, r] : repositories) {
    if (m_repositories.count(id)) continue;
    auto object = std::make_unique<RepositoryObject>(*this, r, m_service.snapshotCount(id));
    asNobody([&] { object->emitInterfacesAddedSignal({org::zerobyte::Daemon1::Repository_adaptor::INTERFACE_NAME}); });
    m_repositories.emplace(id, std::move(object));
  }
  reconcileSchedules();
}

void ObjectTree::reconcileSchedules() {
  std::map<std::string, core::Schedule> schedules;
  for (auto& s : m_service.schedules()) schedules.emplace(s.id, std::move(s));
  for (auto it = m_schedules.begin(); it != m_schedules.end();) {
    if (schedules.count(it->first)) {
      asNobody([&] { it->second->update(schedules[it->first]); });
      ++it;
      continue;
    }
    asNobody([&] { it->second->emitInterfacesRemovedSignal({org::zerobyte::Daemon1::Schedule_adaptor::INTERFACE_NAME}); });
    retire(schedulePath(it->first), std::shared_ptr<ScheduleObject>(std::move(it->second)));
    it = m_schedules.erase(it);
  }
  for (auto& [id, sch] : schedules) {
    if (m_schedules.count(id)) continue;
    auto object = std::make_unique<ScheduleObject>(*this, sch);
    asNobody([&] { object->emitInterfacesAddedSignal({org::zerobyte::Daemon1::Schedule_adaptor::INTERFACE_NAME}); });
    m_schedules.emplace(id, std::move(object));
  }
}

void ObjectTree::jobChanged(const core::Job& job) {
  // A schedule's run: its RunningJob and last run change with the job.
  if (!job.scheduleId.empty())
    if (auto it = m_schedules.find(job.scheduleId); it != m_schedules.end())
      if (auto schedule = m_service.schedule(job.scheduleId)) asNobody([&] { it->second->update(std::move(*schedule)); });
  auto it = m_jobs.find(job.id);
  if (it == m_jobs.end()) {
    auto object = std::make_unique<JobObject>(*this, job);
    asNobody([&] { object->emitInterfacesAddedSignal({org::zerobyte::Daemon1::Job_adaptor::INTERFACE_NAME}); });
    it = m_jobs.emplace(job.id, std::move(object)).first;
  }
  asNobody([&] { it->second->update(job); });
  if (jobEnded(job) && !m_jobRemovals.count(job.id)) {
    uint64_t id = job.id;
    m_jobRemovals[id] = std::make_unique<loop::TimerSource>(m_loop, std::chrono::seconds(m_finishedJobSeconds), [this, id] {
      // Not inside the timer's own handler: it belongs to the removal entry.
      m_loop.post([this, id, calls = std::weak_ptr<CallTable>(m_calls)] {
        if (calls.lock()) removeFinishedJob(id);
      });
    });
  }
}

void ObjectTree::removeFinishedJob(uint64_t id) {
  m_jobRemovals.erase(id);
  auto it = m_jobs.find(id);
  if (it == m_jobs.end()) return;
  asNobody([&] { it->second->emitInterfacesRemovedSignal({org::zerobyte::Daemon1::Job_adaptor::INTERFACE_NAME}); });
  retire(jobPath(id), std::shared_ptr<JobObject>(std::move(it->second)));
  m_jobs.erase(it);
}

void ObjectTree::retire(std::string path, std::shared_ptr<void> object) {
  m_retired.emplace_back(std::move(path), std::move(object));
  sweepRetired();
}

void ObjectTree::sweepRetired() {
  if (m_sweepPosted) return;
  m_sweepPosted = true;
  m_loop.post([this, alive = std::weak_ptr<CallTable>(m_calls)] {
    if (!alive.lock()) return;
    m_sweepPosted = false;
    std::erase_if(m_retired, [this](const auto& retired) { return !m_calls->pendingOn(retired.first); });
  });
}

void ObjectTree::jobsCountChanged() { m_manager->jobsCountChanged(); }

std::string ObjectTree::exportJob(uint64_t id, const std::string& watcher) {
  if (!m_jobs.count(id))
    if (auto job = m_service.job(id)) jobChanged(*job);
  if (auto it = m_jobs.find(id); it != m_jobs.end() && m_peers->present(watcher)) it->second->addStarter(watcher);
  return jobPath(id);
}

sdbus::ObjectPath ObjectTree::jobOfReply(const json& reply, const std::string& watcher) {
  return sdbus::ObjectPath(exportJob(reply.at("job").at("id").get<uint64_t>(), watcher));
}

std::function<void(sdbus::Result<sdbus::ObjectPath>&, const json&)> ObjectTree::jobAnswer() {
  return [this, sender = m_peers->current().sender](sdbus::Result<sdbus::ObjectPath>& r, const json& reply) {
    r.returnResults(jobOfReply(reply, sender));
  };
}

std::string ObjectTree::volumePathByName(const std::string& name) const {
  for (const auto& [id, v] : m_volumes)
    if (v->volume().name == name) return volumePath(id);
  throw Error(ErrorCode::NotFound, "no volume \"" + name + "\"");
}

std::string ObjectTree::repositoryPathByName(const std::string& name) const {
  for (const auto& [id, r] : m_repositories)
    if (r->repository().name == name) return repositoryPath(id);
  throw Error(ErrorCode::NotFound, "no repository \"" + name + "\"");
}

std::optional<std::string> ObjectTree::volumeNameByPath(const std::string& path) const {
  for (const auto& [id, v] : m_volumes)
    if (volumePath(id) == path) return v->volume().name;
  return std::nullopt;
}

std::optional<std::string> ObjectTree::repositoryNameByPath(const std::string& path) const {
  for (const auto& [id, r] : m_repositories)
    if (repositoryPath(id) == path) return r->repository().name;
  return std::nullopt;
}

}  // namespace zerobyte::dbus
