// org.zerobyte.Daemon1.Job at /org/zerobyte/Daemon1/jobs/<id>.
#include "daemon/api/json_mapping.h"
#include "daemon/dbus/objects.h"

#include <algorithm>

namespace zerobyte::dbus {

using nlohmann::json;

namespace {

// Completed goes to at most this many clients per job (the starter and readers).
constexpr size_t kMaxWatchers = 64;
constexpr uint64_t kUsecPerSecond = 1000000;
constexpr size_t kMaxDetailsListItems = 100;

uint64_t usec(core::Timestamp seconds) { return seconds > 0 ? static_cast<uint64_t>(seconds) * kUsecPerSecond : 0; }

bool progressValid(const core::Job& j) {
  return j.state == core::JobState::Running && (j.progress.percent > 0 || j.progress.bytesTotal > 0 || j.progress.filesTotal > 0);
}

uint64_t rateOf(const core::Job& j) {
  return j.progress.secondsElapsed > 0 ? static_cast<uint64_t>(static_cast<double>(j.progress.bytesDone) / j.progress.secondsElapsed) : 0;
}

uint64_t expectedEnd(const core::Job& j) {
  if (j.state != core::JobState::Running || !j.progress.secondsRemaining || j.started <= 0) return 0;
  return usec(j.started) + static_cast<uint64_t>(j.progress.secondsElapsed * kUsecPerSecond) + *j.progress.secondsRemaining * kUsecPerSecond;
}

}  // namespace

bool jobEnded(const core::Job& job) { return job.state != core::JobState::Queued && job.state != core::JobState::Running; }

JobObject::JobObject(ObjectTree& tree, core::Job job)
    : AdaptorInterfaces(tree.connection(), jobPath(job.id)), m_tree(tree), m_job(std::move(job)) {
  registerAdaptor();
}

JobObject::~JobObject() { unregisterAdaptor(); }

void JobObject::update(core::Job job) {
  const core::Job old = std::move(m_job);
  m_job = std::move(job);
  std::vector<std::string> changed;
  auto note = [&](bool differs, const char* name) {
    if (differs) changed.emplace_back(name);
  };
  note(old.state != m_job.state, "State");
  note(old.progress.percent != m_job.progress.percent, "Progress");
  note(progressValid(old) != progressValid(m_job), "ProgressValid");
  note(old.progress.bytesDone != m_job.progress.bytesDone, "BytesDone");
  note(old.progress.bytesTotal != m_job.progress.bytesTotal, "BytesTotal");
  note(old.progress.filesDone != m_job.progress.filesDone, "FilesDone");
  note(old.progress.filesTotal != m_job.progress.filesTotal, "FilesTotal");
  note(rateOf(old) != rateOf(m_job), "Rate");
  note(old.started != m_job.started, "StartTime");
  note(expectedEnd(old) != expectedEnd(m_job), "ExpectedEndTime");
  note(old.finished != m_job.finished, "EndTime");
  note(jobEnded(old) != jobEnded(m_job), "Cancelable");
  note(old.message != m_job.message, "Message");
  if (!changed.empty()) {
    changed.emplace_back("Details");
    getObject().emitPropertiesChangedSignal(INTERFACE_NAME, changed);
  }
  if (jobEnded(m_job) && !m_completedSent) sendCompleted();
}

void JobObject::addWatcher(const std::string& sender) {
  if (sender.empty() || m_watchers.size() >= kMaxWatchers) return;
  m_watchers.insert(sender);
}

void JobObject::addStarter(const std::string& sender) {
  if (sender.empty() || m_watchers.count(sender)) return;
  addWatcher(sender);
  if (m_completedSent) sendCompletedTo(sender);
}

// Sent to each watcher alone: a job's outcome is for those who may see the job.
void JobObject::sendCompleted() {
  m_completedSent = true;
  for (const auto& watcher : m_watchers) sendCompletedTo(watcher);
}

void JobObject::sendCompletedTo(const std::string& destination) {
  bool success = m_job.state == core::JobState::Succeeded || m_job.state == core::JobState::Warning;
  auto signal = getObject().createSignal(INTERFACE_NAME, "Completed");
  signal << success << m_job.message;
  signal.setDestination(destination);
  getObject().emitSignal(signal);
}

bool JobObject::visible() { return m_tree.readable(m_job); }

uint64_t JobObject::Id() { return guarded([&] { return visible() ? m_job.id : uint64_t{0}; }); }
std::string JobObject::Operation() {
  return guarded([&] { return visible() ? std::string(core::toString(m_job.operation)) : std::string(); });
}
std::string JobObject::State() { return guarded([&] { return visible() ? std::string(core::toString(m_job.state)) : std::string(); }); }
sdbus::ObjectPath JobObject::Repository() {
  return guarded([&] { return sdbus::ObjectPath(visible() ? repositoryPath(m_job.repositoryId) : std::string("/")); });
}
sdbus::ObjectPath JobObject::Volume() {
  return guarded([&] { return sdbus::ObjectPath(visible() && !m_job.volumeId.empty() ? volumePath(m_job.volumeId) : std::string("/")); });
}
double JobObject::Progress() { return guarded([&] { return visible() ? std::clamp(m_job.progress.percent / 100.0, 0.0, 1.0) : 0.0; }); }
bool JobObject::ProgressValid() { return guarded([&] { return visible() && progressValid(m_job); }); }
uint64_t JobObject::BytesDone() { return guarded([&] { return visible() ? m_job.progress.bytesDone : uint64_t{0}; }); }
uint64_t JobObject::BytesTotal() { return guarded([&] { return visible() ? m_job.progress.bytesTotal : uint64_t{0}; }); }
uint64_t JobObject::FilesDone() { return guarded([&] { return visible() ? m_job.progress.filesDone : uint64_t{0}; }); }
uint64_t JobObject::FilesTotal() { return guarded([&] { return visible() ? m_job.progress.filesTotal : uint64_t{0}; }); }
uint64_t JobObject::Rate() { return guarded([&] { return visible() ? rateOf(m_job) : uint64_t{0}; }); }
uint64_t JobObject::StartTime() { return guarded([&] { return visible() ? usec(m_job.started) : uint64_t{0}; }); }
uint64_t JobObject::ExpectedEndTime() { return guarded([&] { return visible() ? expectedEnd(m_job) : uint64_t{0}; }); }
uint64_t JobObject::EndTime() { return guarded([&] { return visible() ? usec(m_job.finished) : uint64_t{0}; }); }
uint32_t JobObject::StartedByUID() { return guarded([&] { return visible() ? m_job.startedByUid : 0u; }); }
uint32_t JobObject::RunAsUID() { return guarded([&] { return visible() ? m_job.runAsUid : 0u; }); }
bool JobObject::Cancelable() { return guarded([&] { return visible() && !jobEnded(m_job); }); }
std::string JobObject::Message() { return guarded([&] { return visible() ? m_job.message : std::string(); }); }
// The whole record, but never big enough to strain a reply that holds many jobs (GetManagedObjects):
// long lists are cut, and "truncated" says so (GetJob on the socket has them all).
Vardict JobObject::Details() {
  return guarded([&] {
    if (!visible()) return Vardict{};
    json record = api::toJson(m_job);
    bool truncated = false;
    for (const char* list : {"warnings", "excludes", "includes", "tags"}) {
      auto it = record.find(list);
      if (it != record.end() && it->is_array() && it->size() > kMaxDetailsListItems) {
        it->erase(it->begin() + static_cast<std::ptrdiff_t>(kMaxDetailsListItems), it->end());
        truncated = true;
      }
    }
    if (truncated) record["truncated"] = true;
    return toVardict(record);
  });
}

void JobObject::Cancel(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("CancelJob", {{"id", m_job.id}}, options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void JobObject::GetLog(sdbus::Result<std::vector<std::string>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<std::string>>("GetJobLog", {{"id", m_job.id}}, options, std::move(result), [](auto& r, const json& reply) {
      r.returnResults(reply.at("lines").get<std::vector<std::string>>());
    });
  });
}

}  // namespace zerobyte::dbus
