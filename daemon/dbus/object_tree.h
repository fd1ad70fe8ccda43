// The objects zerobyted exports on the bus, the bus clients it talks to, and the calls they are waiting on.
// One ObjectTree lives exactly as long as one bus connection.
#pragma once

#include "daemon/api/request.h"
#include "daemon/api/service.h"
#include "daemon/core/model.h"
#include "daemon/dbus/variant_json.h"
#include "daemon/loop/event_loop.h"

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace zerobyte::dbus {

class ManagerObject;
class VolumeObject;
class RepositoryObject;
class JobObject;
class ScheduleObject;

// Object paths: /org/zerobyte/Daemon1/{Manager,volumes/<id>,repositories/<id>,jobs/<id>}.
std::string managerPath();
std::string volumePath(const std::string& id);
std::string repositoryPath(const std::string& id);
std::string jobPath(uint64_t id);
std::string schedulePath(const std::string& id);

// Calls waiting for the service layer's answer. Owned by the tree, so that every sdbus::Result
// (which refers to the connection) is gone before the connection is; a request that outlives the
// tree finds its call gone and drops the answer.
class CallTable {
 public:
  using Answer = std::function<void(const nlohmann::json* reply, const Error* error)>;
  // `path`: the object the call was made on.
  uint64_t add(std::string path, Answer answer);
  // Runs and forgets the call's answer; nothing when it is gone.
  void finish(uint64_t id, const nlohmann::json* reply, const Error* error);
  // Forgets a call nobody will answer (its request is gone: the caller left).
  void drop(uint64_t id);
  bool pendingOn(const std::string& path) const;
  // Called after a call is finished or dropped.
  std::function<void()> onSettled;

 private:
  struct Pending {
    std::string path;
    Answer answer;
  };
  uint64_t m_next = 1;
  std::map<uint64_t, Pending> m_calls;
};

// Bus clients: who they are (from the bus, cached per unique name) and what to do when they leave.
class Peers {
 public:
  struct Current {
    std::string sender;
    std::string member;  // e.g. "Get", "GetAll", "GetManagedObjects", "StartBackup"
    std::string path;    // the object called
  };
  // Set from a match on every incoming method call, before sd-bus dispatches it (property getters
  // learn who reads only this way), and cleared after.
  void setCurrent(Current current) { m_current = std::move(current); }
  void clearCurrent() { m_current = {}; }
  const Current& current() const { return m_current; }

  // The caller behind a unique name; nullopt when the bus could not tell (the client left).
  std::optional<api::Caller> callerOf(const std::string& sender) const;
  void remember(const std::string& sender, api::Caller caller);
  bool present(const std::string& sender) const { return m_callers.count(sender) != 0; }
  // `key` identifies the callback for forgetGone (a request's call id).
  void onGone(const std::string& sender, uint64_t key, std::function<void()> callback);
  void forgetGone(const std::string& sender, uint64_t key);
  // The name has left the bus: forget it and run its callbacks.
  void gone(const std::string& sender);
  size_t size() const { return m_callers.size(); }

 private:
  Current m_current;
  std::map<std::string, api::Caller> m_callers;
  std::map<std::string, std::map<uint64_t, std::function<void()>>> m_goneCallbacks;
};

class ObjectTree {
 public:
  ObjectTree(sdbus::IConnection& connection, loop::EventLoop& loop, api::Service& service, unsigned finishedJobSeconds);
  ~ObjectTree();
  ObjectTree(const ObjectTree&) = delete;
  ObjectTree& operator=(const ObjectTree&) = delete;

  // From the match on incoming method calls: remember who sends it (asks the bus once per client).
  void noteIncoming(sdbus::Message& message);
  void nameLost(const std::string& name);
  // After each dispatched message.
  void peersClearCurrent() {
    m_peers->clearCurrent();
    m_readDecisions.clear();
    m_viewer.reset();
  }

  // Mirror the service's state.
  void reconcile();
  void jobChanged(const core::Job& job);
  void jobsCountChanged();
  void setFinishedJobSeconds(unsigned seconds) { m_finishedJobSeconds = seconds; }

  // Runs a method of the service layer (the Varlink method `method`) for the D-Bus call being
  // dispatched now, and answers it with `answer(result, reply)` or with the error as
  // org.zerobyte.Daemon1.Error.<Name>. `options` are merged into the parameters; the key
  // "auth.no_user_interaction" decides whether polkit may ask for authentication.
  template <typename... R>
  void call(std::string_view method, nlohmann::json params, const Vardict& options, sdbus::Result<R...>&& result,
            std::type_identity_t<std::function<void(sdbus::Result<R...>&, const nlohmann::json& reply)>> answer);

  // For property getters: whether the client reading now may view `resource`. A single Get of
  // what it may not view is refused as NotFound (thrown as sdbus::Error); GetAll, GetManagedObjects
  // and signals show such objects with empty properties.
  bool readable(const core::Volume& volume);
  bool readable(const core::Repository& repository);
  bool readable(const core::Job& job);
  bool readable(const core::Schedule& schedule);

  api::Service& service() { return m_service; }
  sdbus::IConnection& connection() { return m_connection; }
  const Peers& peers() const { return *m_peers; }
  std::string volumePathByName(const std::string& name) const;
  std::string repositoryPathByName(const std::string& name) const;
  std::optional<std::string> volumeNameByPath(const std::string& path) const;
  std::optional<std::string> repositoryNameByPath(const std::string& path) const;
  // The job's object (created if the job is known but not exported yet); `watcher`, the client
  // whose call started it, hears how it ends (Completed).
  std::string exportJob(uint64_t id, const std::string& watcher);
  // The object of the job in a reply's "job" record, watched by `watcher`.
  sdbus::ObjectPath jobOfReply(const nlohmann::json& reply, const std::string& watcher);
  // The answer of a method that starts a job: the job's object, watched by the client calling now.
  // It holds the tree, never the object called (which may be gone by the time the answer comes).
  std::function<void(sdbus::Result<sdbus::ObjectPath>&, const nlohmann::json&)> jobAnswer();

 private:
  bool readableBy(bool allowed);
  // Runs `emit` as if nobody were reading: signals go to everyone, so the getters they call must
  // not answer with what the client being served right now may see.
  void asNobody(const std::function<void()>& emit);
  // Decides once per object and message (GetAll and GetManagedObjects call every getter).
  template <typename Resource>
  bool decideRead(const std::string& key, const Resource& resource);
  void callWith(std::string_view method, nlohmann::json params, const Vardict& options, CallTable::Answer answer);
  void removeFinishedJob(uint64_t id);
  void reconcileSchedules();
  // An object leaves the bus at once, but is destroyed only outside sd-bus's callbacks (it may be
  // the object whose method is running) and once no call made on it waits for an answer (its reply
  // refers to the object's method table).
  void retire(std::string path, std::shared_ptr<void> object);
  void sweepRetired();
  // Once per message: the reader's groups and role.
  const api::Service::Viewer* currentViewer();

  sdbus::IConnection& m_connection;
  loop::EventLoop& m_loop;
  api::Service& m_service;
  unsigned m_finishedJobSeconds;
  std::shared_ptr<Peers> m_peers = std::make_shared<Peers>();
  std::shared_ptr<CallTable> m_calls = std::make_shared<CallTable>();
  std::unique_ptr<ManagerObject> m_manager;
  std::map<std::string, std::unique_ptr<VolumeObject>> m_volumes;
  std::map<std::string, std::unique_ptr<RepositoryObject>> m_repositories;
  std::map<uint64_t, std::unique_ptr<JobObject>> m_jobs;
  std::map<std::string, std::unique_ptr<ScheduleObject>> m_schedules;
  std::map<uint64_t, std::unique_ptr<loop::TimerSource>> m_jobRemovals;
  std::map<std::string, bool> m_readDecisions;
  std::optional<api::Service::Viewer> m_viewer;
  std::vector<std::pair<std::string, std::shared_ptr<void>>> m_retired;
  bool m_sweepPosted = false;
};

// sdbus::Error for one of the table's errors: org.zerobyte.Daemon1.Error.<Name>.
sdbus::Error toBusError(const Error& error);

template <typename... R>
void ObjectTree::call(std::string_view method, nlohmann::json params, const Vardict& options, sdbus::Result<R...>&& result,
                      std::type_identity_t<std::function<void(sdbus::Result<R...>&, const nlohmann::json& reply)>> answer) {
  auto shared = std::make_shared<sdbus::Result<R...>>(std::move(result));
  callWith(method, std::move(params), options, [shared, answer = std::move(answer)](const nlohmann::json* reply, const Error* error) {
    if (error) return shared->returnError(toBusError(*error));
    try {
      answer(*shared, *reply);
    } catch (const Error& e) {
      shared->returnError(toBusError(e));
    } catch (const sdbus::Error& e) {
      shared->returnError(e);
    } catch (const std::exception& e) {
      shared->returnError(toBusError(Error(ErrorCode::Internal, std::string("internal error: ") + e.what())));
    }
  });
}

}  // namespace zerobyte::dbus
