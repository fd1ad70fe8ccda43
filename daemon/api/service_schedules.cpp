// The service layer: schedules (create, edit, list, fire times, retention preview) and the scheduler that runs them.
//
// The scheduler keeps one wall-clock timer for the schedule due first (an ordered set of fire instants), so
// 10,000 schedules cost one armed timer and no wake-up until something is due. A fire time that passed while
// zerobyted was stopped or the machine slept runs once, however many were missed; a run that is due while the
// schedule's previous run has not ended is recorded as skipped.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/cron.h"
#include "daemon/core/retry_policy.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/store/store.h"

#include <date/tz.h>
#include <set>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace zerobyte::api {

using nlohmann::json;

namespace {

constexpr int64_t kMaxJitterSeconds = 86400;
constexpr int64_t kMaxRetries = 100;
constexpr int64_t kMaxRetryDelaySeconds = 86400;
constexpr size_t kMaxListEntries = 100;  // includes, excludes, markers, tags of one schedule
constexpr size_t kMaxPathLength = 4096;
// A run that starts this much after its fire instant (the machine slept, the clock jumped) is a catch-up.
constexpr core::Timestamp kLateSeconds = 60;
constexpr size_t kHistoryEntries = 20;
constexpr int64_t kDefaultFireTimes = 5;
constexpr size_t kFailureLines = 5;

[[noreturn]] void invalid(const std::string& message, const char* parameter) {
  throw Error(ErrorCode::InvalidArgument, message, {{"parameter", parameter}});
}

std::vector<std::string> listParam(const json& p, const char* key) {
  auto values = stringListParam(p, key);
  if (values.size() > kMaxListEntries) invalid(std::string(key) + " has more than 100 entries", key);
  return values;
}

int64_t intInRange(const json& p, const char* key, int64_t low, int64_t high) {
  int64_t value = p.at(key).get<int64_t>();
  if (value < low || value > high)
    invalid(std::string(key) + " must be from " + std::to_string(low) + " to " + std::to_string(high), key);
  return value;
}

uint32_t randomBelow(uint32_t bound) {
  if (bound == 0) return 0;
  uint32_t value = 0;
  if (getrandom(&value, sizeof(value), 0) != sizeof(value)) return 0;
  return value % bound;
}

core::JobOperation operationOf(core::ScheduleKind kind) {
  switch (kind) {
    case core::ScheduleKind::Backup: return core::JobOperation::Backup;
    case core::ScheduleKind::Check: return core::JobOperation::Check;
    case core::ScheduleKind::Prune: return core::JobOperation::Prune;
  }
  return core::JobOperation::Backup;
}

std::chrono::sys_seconds seconds(core::Timestamp t) { return std::chrono::sys_seconds(std::chrono::seconds(t)); }

std::string firstLines(const std::string& text, size_t count) {
  size_t pos = 0;
  for (size_t i = 0; i < count && pos != std::string::npos; ++i) {
    pos = text.find('\n', pos);
    if (pos != std::string::npos) ++pos;
  }
  std::string out = pos == std::string::npos ? text : text.substr(0, pos);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string localTime(std::chrono::sys_seconds t, const std::string& zone) {
  try {
    return date::format("%Y-%m-%d %H:%M:%S %Z", date::make_zoned(zone, t));
  } catch (const std::exception&) {
    return date::format("%Y-%m-%d %H:%M:%S UTC", t);
  }
}

}  // namespace

std::string hostName() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "localhost";
  return buffer;
}

// ---- lookups ----

// The schedules table, kept in memory as well: a lookup by name must not decode every record (10,000 schedules).
void Service::loadSchedules() {
  m_schedules.clear();
  m_scheduleIds.clear();
  for (auto& s : m_store.schedules()) {
    m_scheduleIds[s.name] = s.id;
    m_schedules[s.id] = std::move(s);
  }
}

std::vector<core::Schedule> Service::allSchedules() const {
  std::vector<core::Schedule> out;
  out.reserve(m_schedules.size());
  for (const auto& [name, id] : m_scheduleIds) out.push_back(m_schedules.at(id));  // by name
  return out;
}

std::optional<core::Schedule> Service::findSchedule(const std::string& name) const {
  auto it = m_scheduleIds.find(name);
  if (it == m_scheduleIds.end()) return std::nullopt;
  return m_schedules.at(it->second);
}

std::optional<core::Schedule> Service::schedule(const std::string& id) const {
  auto it = m_schedules.find(id);
  if (it == m_schedules.end()) return std::nullopt;
  return it->second;
}

core::Schedule Service::requireSchedule(const std::string& name) const {
  core::validateName(name, "schedule name");
  auto s = findSchedule(name);
  if (!s) throw Error(ErrorCode::NotFound, "no schedule named \"" + name + "\"; see 'zerobytectl schedule list'");
  return *s;
}

std::vector<std::string> Service::schedulesUsing(const std::string& volumeName, const std::string& repositoryName) const {
  std::vector<std::string> names;
  for (const auto& s : allSchedules())
    if ((!volumeName.empty() && s.volumeName == volumeName) || (!repositoryName.empty() && s.repositoryName == repositoryName))
      names.push_back(s.name);
  return names;
}

std::pair<core::Volume, core::Repository> Service::scheduleResources(const core::Schedule& s) const {
  auto repo = findRepository(s.repositoryName);
  if (!repo)
    throw Error(ErrorCode::NotFound, "repository \"" + s.repositoryName + "\" of schedule \"" + s.name + "\" no longer exists");
  if (s.kind != core::ScheduleKind::Backup) return {core::Volume{}, *repo};
  auto volume = findVolume(s.volumeName);
  if (!volume) throw Error(ErrorCode::NotFound, "volume \"" + s.volumeName + "\" of schedule \"" + s.name + "\" no longer exists");
  requireSameIdentity(*volume, *repo, "schedule backups");
  return {*volume, *repo};
}

void Service::putSchedule(const core::Schedule& s) {
  auto txn = m_store.begin();
  txn.put(s);
  txn.commit();
  if (auto old = m_schedules.find(s.id); old != m_schedules.end() && old->second.name != s.name) m_scheduleIds.erase(old->second.name);
  m_schedules[s.id] = s;
  m_scheduleIds[s.name] = s.id;
}

void Service::syncDeclaredSchedules(const config::Config& config) {
  const auto stored = allSchedules();
  const core::Timestamp t = now();
  auto txn = m_store.begin();
  std::set<std::string> declaredIds;
  for (core::Schedule d : config.schedules) {
    auto clash = std::find_if(stored.begin(), stored.end(), [&](const core::Schedule& s) { return s.name == d.name && !s.declared; });
    if (clash != stored.end()) {
      log::error("schedule \"" + d.name + "\" is declared in " + config.sourcePath +
                 " but a schedule of that name was created through the API; the declared one is not used until one of them is renamed "
                 "or deleted ('zerobytectl schedule delete " + d.name + "')");
      continue;
    }
    declaredIds.insert(d.id);
    auto old = std::find_if(stored.begin(), stored.end(), [&](const core::Schedule& s) { return s.id == d.id; });
    if (old == stored.end()) {
      d.created = t;
      d.lastSlot = t;
    } else {
      d.created = old->created;
      d.lastJobId = old->lastJobId;
      d.lastSuccess = old->lastSuccess;
      d.lastSuccessJobId = old->lastSuccessJobId;
      d.lastFailure = old->lastFailure;
      d.lastFailureJobId = old->lastFailureJobId;
      d.lastFailureMessage = old->lastFailureMessage;
      // A changed timetable starts from now, as an edit through the API does.
      const bool sameTiming = d.cron == old->cron && d.timeZone == old->timeZone && d.enabled == old->enabled;
      d.lastSlot = sameTiming ? old->lastSlot : t;
    }
    if (!findRepository(d.repositoryName))
      log::warning("schedule \"" + d.name + "\" in " + config.sourcePath + " names repository \"" + d.repositoryName +
                   "\", which does not exist; its runs fail until it does");
    if (d.kind == core::ScheduleKind::Backup && !findVolume(d.volumeName))
      log::warning("schedule \"" + d.name + "\" in " + config.sourcePath + " names volume \"" + d.volumeName +
                   "\", which does not exist; its runs fail until it does");
    txn.put(d);
  }
  for (const auto& s : stored)
    if (s.declared && !declaredIds.count(s.id)) {
      txn.eraseSchedule(s.id);
      log::info("schedule \"" + s.name + "\" is no longer in " + config.sourcePath + "; removed (its snapshots are kept)");
    }
  txn.commit();
  loadSchedules();
  // At start the scheduler is not running yet: startScheduler() arms everything.
  if (m_scheduleTimer) rescheduleAll("after the configuration was reloaded");
}

// ---- parameters ----

void Service::applyScheduleParameters(const json& p, core::Schedule& s) const {
  if (p.contains("cron") && !p["cron"].is_null()) {
    std::string cron = stringParam(p, "cron");
    try {
      core::CronExpression::parse(cron);
    } catch (const Error& e) {
      invalid(e.what(), "cron");
    }
    s.cron = cron;
  }
  if (auto zone = optionalStringParam(p, "timezone")) {
    try {
      core::validateTimeZone(*zone);
    } catch (const Error& e) {
      invalid(e.what(), "timezone");
    }
    s.timeZone = *zone;
  }
  if (optionalIntParam(p, "jitter_seconds")) s.jitterSeconds = static_cast<uint32_t>(intInRange(p, "jitter_seconds", 0, kMaxJitterSeconds));
  if (p.contains("enabled") && p["enabled"].is_boolean()) s.enabled = p["enabled"].get<bool>();
  if (p.contains("includes") && !p["includes"].is_null()) {
    auto includes = listParam(p, "includes");
    for (auto& include : includes) {
      while (include.size() > 1 && include.back() == '/') include.pop_back();
      core::validateIncludePath(include);
    }
    s.includes = includes;
  }
  if (p.contains("excludes") && !p["excludes"].is_null()) {
    auto excludes = listParam(p, "excludes");
    for (const auto& e : excludes) core::validateExcludePattern(e);
    s.excludes = excludes;
  }
  if (p.contains("exclude_if_present") && !p["exclude_if_present"].is_null()) {
    auto markers = listParam(p, "exclude_if_present");
    for (const auto& m : markers) core::validateMarkerName(m);
    s.excludeIfPresent = markers;
  }
  if (p.contains("one_file_system") && p["one_file_system"].is_boolean()) s.oneFileSystem = p["one_file_system"].get<bool>();
  if (p.contains("tags") && !p["tags"].is_null()) {
    auto tags = listParam(p, "tags");
    for (const auto& t : tags) core::validateUserTag(t, "tags");
    s.tags = tags;
  }
  if (auto compression = optionalStringParam(p, "compression")) {
    if (*compression == "default") {
      s.compression.clear();
    } else {
      core::validateCompression(*compression);
      s.compression = *compression;
    }
  }
  if (optionalIntParam(p, "retries")) s.retries = static_cast<uint32_t>(intInRange(p, "retries", 0, kMaxRetries));
  if (optionalIntParam(p, "retry_delay_seconds"))
    s.retryDelaySeconds = static_cast<uint32_t>(intInRange(p, "retry_delay_seconds", 1, kMaxRetryDelaySeconds));
  // keep_*: 0 removes the rule (so that EditSchedule can drop one); validateRetention checks the rest.
  core::RetentionPolicy& policy = s.retention;
  std::pair<const char*, std::optional<unsigned>*> counts[] = {
      {"keep_last", &policy.keepLast},       {"keep_hourly", &policy.keepHourly}, {"keep_daily", &policy.keepDaily},
      {"keep_weekly", &policy.keepWeekly},   {"keep_monthly", &policy.keepMonthly}, {"keep_yearly", &policy.keepYearly}};
  for (auto& [key, field] : counts) {
    if (!optionalIntParam(p, key)) continue;
    int64_t value = intInRange(p, key, 0, core::kMaxRetentionCount);
    if (value == 0)
      field->reset();
    else
      *field = static_cast<unsigned>(value);
  }
  if (auto within = optionalStringParam(p, "keep_within")) policy.keepWithin = *within;
  if (p.contains("keep_tags") && !p["keep_tags"].is_null()) policy.keepTags = listParam(p, "keep_tags");
  core::validateRetention(policy);
  if (auto subset = optionalStringParam(p, "read_data_subset")) {
    if (s.kind != core::ScheduleKind::Check)
      invalid("read_data_subset is for check schedules; schedule \"" + s.name + "\" runs " + std::string(core::toString(s.kind)),
              "read_data_subset");
    if (!subset->empty()) core::validateReadDataSubset(*subset);
    s.readDataSubset = *subset;
  }
  if (s.kind != core::ScheduleKind::Backup) {
    // What only a backup uses would be silently ignored: refused instead.
    for (const char* key : {"includes", "excludes", "exclude_if_present", "one_file_system", "tags", "compression", "keep_last",
                            "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within", "keep_tags"})
      if (p.contains(key) && !p[key].is_null())
        invalid(std::string(key) + " is for backup schedules; schedule \"" + s.name + "\" runs " +
                    std::string(core::toString(s.kind)) + " of repository \"" + s.repositoryName + "\"",
                key);
  }
}

// ---- replies ----

json Service::scheduleJson(const core::Schedule& s) const {
  auto time = [](core::Timestamp t) { return t ? json(formatTime(t)) : json(nullptr); };
  auto id = [](uint64_t v) { return v ? json(v) : json(nullptr); };
  json retention = json::object();
  for (const auto& [name, value] : core::retentionCounts(s.retention))
    retention["keep_" + std::string(name)] = value ? json(*value) : json(nullptr);
  retention["keep_within"] = s.retention.keepWithin.empty() ? json(nullptr) : json(s.retention.keepWithin);
  retention["keep_tags"] = s.retention.keepTags;
  json next = nullptr;
  if (auto it = m_armed.find(s.id); it != m_armed.end() && s.enabled) next = formatTime(it->second.slot);
  json running = nullptr;
  if (auto it = m_scheduleRuns.find(s.id); it != m_scheduleRuns.end() && it->second->jobId) running = it->second->jobId;
  std::string group;
  if (s.groupGid) group = users::groupName(*s.groupGid).value_or(std::to_string(*s.groupGid));
  return {{"id", s.id},
          {"name", s.name},
          {"kind", std::string(core::toString(s.kind))},
          {"read_data_subset", s.readDataSubset.empty() ? json(nullptr) : json(s.readDataSubset)},
          {"volume", s.volumeName.empty() ? json(nullptr) : json(s.volumeName)},
          {"repository", s.repositoryName},
          {"cron", s.cron},
          {"timezone", s.timeZone},
          {"jitter_seconds", s.jitterSeconds},
          {"enabled", s.enabled},
          {"includes", s.includes},
          {"excludes", s.excludes},
          {"exclude_if_present", s.excludeIfPresent},
          {"one_file_system", s.oneFileSystem},
          {"tags", s.tags},
          {"snapshot_tag", core::scheduleTag(s)},
          {"compression", s.compression.empty() ? json(nullptr) : json(s.compression)},
          {"retries", s.retries},
          {"retry_delay_seconds", s.retryDelaySeconds},
          {"retention", retention},
          {"retention_text", core::describeRetention(s.retention)},
          {"owner_uid", s.ownerUid},
          {"group", s.groupGid ? json(group) : json(nullptr)},
          {"group_gid", s.groupGid ? json(*s.groupGid) : json(nullptr)},
          {"declared", s.declared},
          {"created", formatTime(s.created)},
          {"next_run", next},
          {"running_job", running},
          {"last_run_job", id(s.lastJobId)},
          {"last_success", time(s.lastSuccess)},
          {"last_success_job", id(s.lastSuccessJobId)},
          {"last_failure", time(s.lastFailure)},
          {"last_failure_job", id(s.lastFailureJobId)},
          {"last_failure_message", s.lastFailureMessage.empty() ? json(nullptr) : json(s.lastFailureMessage)}};
}

// ---- methods ----

void Service::createSchedule(const json& p, const RequestPtr& r) {
  std::string name = stringParam(p, "name");
  core::validateName(name, "schedule name");
  if (findSchedule(name)) throw Error(ErrorCode::AlreadyExists, "a schedule named \"" + name + "\" exists already");
  core::Schedule s;
  s.id = newId();
  s.name = name;
  if (auto kind = optionalStringParam(p, "kind")) {
    auto parsed = core::scheduleKindFromString(*kind);
    if (!parsed) invalid("schedule kind \"" + log::sanitize(*kind) + "\" is not one of backup, check, prune", "kind");
    s.kind = *parsed;
  }
  auto volumeName = optionalStringParam(p, "volume");
  if (s.kind == core::ScheduleKind::Backup && !volumeName)
    invalid("a backup schedule needs the volume to back up (parameter \"volume\")", "volume");
  if (s.kind != core::ScheduleKind::Backup && volumeName)
    invalid("a " + std::string(core::toString(s.kind)) + " schedule is about the repository alone; give no volume", "volume");
  s.volumeName = volumeName.value_or("");
  s.repositoryName = stringParam(p, "repository");
  s.timeZone = core::systemTimeZone();
  applyScheduleParameters(p, s);
  auto [volume, repo] = scheduleResources(s);
  // Members of the group the resources are shared with see and manage the schedule too.
  if (s.kind != core::ScheduleKind::Backup)
    s.groupGid = repo.groupGid;
  else if (volume.groupGid && volume.groupGid == repo.groupGid)
    s.groupGid = volume.groupGid;
  s.ownerUid = r->caller().uid;
  s.created = now();
  s.lastSlot = s.created;  // nothing before its creation is missed
  putSchedule(s);
  if (s.enabled) armSchedule(s, s.created);
  armTimer();
  log::info("schedule \"" + name + "\" (" + s.cron + " " + s.timeZone + ": " +
            (s.kind == core::ScheduleKind::Backup ? "volume \"" + s.volumeName + "\" into repository \"" + s.repositoryName + "\""
                                                  : std::string(core::toString(s.kind)) + " of repository \"" + s.repositoryName + "\"") +
            ") created by uid " + std::to_string(r->caller().uid));
  resourcesChanged();
  r->reply({{"schedule", scheduleJson(s)}});
}

void Service::listSchedules(const json&, const RequestPtr& r) {
  whenAllowed(r, Action::View, everyoneScope(), [this, r](bool all) {
    auto groups = users::groupsOf(r->caller().uid);
    json list = json::array();
    for (const auto& s : allSchedules())
      if (all || scopeOf(s, r->caller(), groups).callerOwns) list.push_back(scheduleJson(s));
    r->reply({{"schedules", list}});
  });
}

void Service::getSchedule(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  json history = json::array();
  std::map<uint64_t, core::Job, std::greater<>> jobs;
  for (auto& j : m_store.jobs())
    if (j.scheduleId == s.id) jobs[j.id] = std::move(j);
  for (const auto& [id, a] : m_jobs)
    if (a->job.scheduleId == s.id) jobs[id] = a->job;
  for (const auto& [id, j] : jobs) {
    if (history.size() >= kHistoryEntries) break;
    history.push_back(toJson(j));
  }
  r->reply({{"schedule", scheduleJson(s)}, {"history", history}});
}

void Service::editSchedule(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  if (s.declared)
    throw Error(ErrorCode::ReadOnly, "schedule \"" + s.name + "\" is declared in the configuration file; change it there and reload");
  const core::Schedule before = s;
  applyScheduleParameters(p, s);
  const bool timing = s.cron != before.cron || s.timeZone != before.timeZone || s.enabled != before.enabled ||
                      s.jitterSeconds != before.jitterSeconds;
  // A changed timetable starts from now: fire times of the old one are not caught up.
  if (timing) s.lastSlot = now();
  putSchedule(s);
  if (timing) {
    disarmSchedule(s.id);
    if (s.enabled) armSchedule(s, now());
    armTimer();
  }
  log::info("schedule \"" + s.name + "\" edited by uid " + std::to_string(r->caller().uid));
  resourcesChanged();
  r->reply({{"schedule", scheduleJson(s)}});
}

void Service::deleteSchedule(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  if (s.declared)
    throw Error(ErrorCode::ReadOnly, "schedule \"" + s.name + "\" is declared in the configuration file; remove it there and reload");
  if (auto it = m_scheduleRuns.find(s.id); it != m_scheduleRuns.end()) {
    if (it->second->jobId)
      throw Error(ErrorCode::Conflict, "schedule \"" + s.name + "\" is running (job " + std::to_string(it->second->jobId) +
                                           "); wait for it or cancel it with 'zerobytectl job cancel " +
                                           std::to_string(it->second->jobId) + "'");
    m_scheduleRuns.erase(it);  // a retry that waits is dropped with the schedule
  }
  auto txn = m_store.begin();
  txn.eraseSchedule(s.id);
  txn.commit();
  m_schedules.erase(s.id);
  m_scheduleIds.erase(s.name);
  disarmSchedule(s.id);
  armTimer();
  log::info("schedule \"" + s.name + "\" deleted by uid " + std::to_string(r->caller().uid) + "; its snapshots are kept");
  resourcesChanged();
  r->reply(json::object());
}

void Service::enableSchedule(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  if (s.declared)
    throw Error(ErrorCode::ReadOnly, "schedule \"" + s.name + "\" is declared in the configuration file; set \"enabled\" there and reload");
  if (!s.enabled) {
    s.enabled = true;
    s.lastSlot = now();  // fire times while it was disabled are not caught up
    putSchedule(s);
    armSchedule(s, s.lastSlot);
    armTimer();
    log::info("schedule \"" + s.name + "\" enabled by uid " + std::to_string(r->caller().uid));
    resourcesChanged();
  }
  r->reply({{"schedule", scheduleJson(s)}});
}

void Service::disableSchedule(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  if (s.declared)
    throw Error(ErrorCode::ReadOnly, "schedule \"" + s.name + "\" is declared in the configuration file; set \"enabled\" there and reload");
  if (s.enabled) {
    s.enabled = false;
    putSchedule(s);
    disarmSchedule(s.id);
    armTimer();
    if (auto it = m_scheduleRuns.find(s.id); it != m_scheduleRuns.end() && !it->second->jobId) m_scheduleRuns.erase(it);
    log::info("schedule \"" + s.name + "\" disabled by uid " + std::to_string(r->caller().uid));
    resourcesChanged();
  }
  r->reply({{"schedule", scheduleJson(s)}});
}

void Service::runSchedule(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  if (auto it = m_scheduleRuns.find(s.id); it != m_scheduleRuns.end() && it->second->jobId)
    throw Error(ErrorCode::Conflict, "schedule \"" + s.name + "\" is running already (job " + std::to_string(it->second->jobId) +
                                         "); follow it with 'zerobytectl job show " + std::to_string(it->second->jobId) + " --follow'");
  // The same checks a scheduled run meets, answered to the caller instead of recorded as a failed run.
  scheduleResources(s);
  m_scheduleRuns.erase(s.id);  // a manual run replaces a retry that waits
  auto id = runScheduleNow(s.id, "manual", 0, 1);
  if (!id) throw Error(ErrorCode::Failed, "schedule \"" + s.name + "\" could not start; see 'zerobytectl schedule show " + s.name + "'");
  r->reply({{"job", toJson(*findJob(*id))}});
}

void Service::getScheduleFireTimes(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  int64_t count = optionalIntParam(p, "count") ? intInRange(p, "count", 1, static_cast<int64_t>(core::kMaxFireTimes)) : kDefaultFireTimes;
  auto expression = core::CronExpression::parse(s.cron);
  auto times = core::nextFireTimes(expression, s.timeZone, seconds(now()), static_cast<size_t>(count));
  json list = json::array();
  for (auto t : times) list.push_back({{"time", formatTime(t.time_since_epoch().count())}, {"local", localTime(t, s.timeZone)}});
  r->reply({{"schedule", s.name}, {"cron", s.cron}, {"timezone", s.timeZone}, {"enabled", s.enabled}, {"fire_times", list}});
}

void Service::previewRetention(const json& p, const RequestPtr& r) {
  auto s = requireSchedule(stringParam(p, "name"));
  if (s.kind != core::ScheduleKind::Backup)
    throw Error(ErrorCode::InvalidArgument, "schedule \"" + s.name + "\" runs " + std::string(core::toString(s.kind)) +
                                                " and has no retention policy; retention belongs to backup schedules");
  if (s.retention.empty())
    throw Error(ErrorCode::InvalidArgument, "schedule \"" + s.name +
                                                "\" has no retention policy, so it keeps every snapshot; set one with "
                                                "'zerobytectl schedule edit " + s.name + " --keep-daily 7' (or another --keep-*)");
  auto repo = requireRepository(s.repositoryName);
  auto policy = s.retention;
  auto tag = core::scheduleTag(s), host = hostName();
  auto args = [policy, tag, host](const restic::RepositoryContext& ctx) { return restic::forgetPolicyArgs(ctx, policy, tag, host, true); };
  std::string repoName = repo.name, repoId = repo.id;
  runQuery(repo, args, [this, r, s, repoName, repoId](std::optional<Error> failure, const std::string& output) {
    if (!r->alive()) return;
    if (failure) return r->fail(*failure);
    std::vector<restic::ForgetGroupResult> groups;
    try {
      groups = restic::parseForgetOutput(output);
    } catch (const Error& e) {
      return r->fail(e);
    }
    // Times and paths from the cached list where it has them (the preview names snapshots by id only).
    std::map<std::string, core::Snapshot> known;
    if (auto cache = m_store.snapshotCache(repoId))
      for (const auto& snap : cache->snapshots) known[snap.id] = snap;
    auto describe = [&known](const std::string& id) {
      json entry = {{"id", id}, {"short_id", id.substr(0, 8)}, {"time", nullptr}};
      if (auto it = known.find(id); it != known.end()) entry["time"] = it->second.time;
      return entry;
    };
    json keep = json::array(), remove = json::array();
    for (const auto& g : groups) {
      for (const auto& id : g.keep) keep.push_back(describe(id));
      for (const auto& id : g.remove) remove.push_back(describe(id));
    }
    r->reply({{"schedule", s.name},
              {"repository", repoName},
              {"policy", core::describeRetention(s.retention)},
              {"snapshot_tag", core::scheduleTag(s)},
              {"host", hostName()},
              {"keep", keep},
              {"remove", remove}});
  });
}

// ---- the scheduler ----

void Service::startScheduler() {
  m_scheduleTimer = std::make_unique<loop::WallClockTimer>(m_loop, [this] { onScheduleTimer(); });
  try {
    m_clockChange = std::make_unique<loop::ClockChangeSource>(m_loop, [this] { onClockChanged(); });
  } catch (const std::exception& e) {
    log::warning(std::string("cannot watch for changes of the wall clock (") + e.what() +
                 "); schedules are computed again only when they fire");
  }
  rescheduleAll("at start");
}

void Service::rescheduleAll(const char* why) {
  m_due.clear();
  m_armed.clear();
  const core::Timestamp t = now();
  for (const auto& s : allSchedules()) {
    if (!s.enabled) continue;
    try {
      auto expression = core::CronExpression::parse(s.cron);
      // The first fire time after the last one handled: if it has passed, the schedule missed at least one run.
      auto missed = core::nextFireTimes(expression, s.timeZone, seconds(std::max(s.lastSlot, s.created)), 1);
      if (!missed.empty() && missed.front().time_since_epoch().count() <= t) {
        log::notice("schedule \"" + s.name + "\" missed its run of " + formatTime(missed.front().time_since_epoch().count()) +
                    " (" + why + "); running it once now");
        runScheduleNow(s.id, "catch-up", t, 1);
      }
      if (auto fresh = schedule(s.id)) armSchedule(*fresh, t);
    } catch (const std::exception& e) {
      log::error("schedule \"" + s.name + "\" cannot be armed: " + e.what());
    }
  }
  armTimer();
}

void Service::onClockChanged() {
  log::notice("the wall clock was set; computing the schedules' next runs again");
  rescheduleAll("after the clock was set");
}

void Service::armSchedule(const core::Schedule& s, core::Timestamp after) {
  disarmSchedule(s.id);
  if (!s.enabled) return;
  auto times = core::nextFireTimes(core::CronExpression::parse(s.cron), s.timeZone, seconds(after), 1);
  if (times.empty()) return;
  Armed armed;
  armed.slot = times.front().time_since_epoch().count();
  armed.fireAt = armed.slot + randomBelow(s.jitterSeconds + 1);
  m_armed[s.id] = armed;
  m_due.emplace(armed.fireAt, s.id);
}

void Service::disarmSchedule(const std::string& id) {
  auto it = m_armed.find(id);
  if (it == m_armed.end()) return;
  m_due.erase({it->second.fireAt, id});
  m_armed.erase(it);
}

void Service::armTimer() {
  if (!m_scheduleTimer) return;
  if (m_due.empty()) {
    m_scheduleTimer->disarm();
    return;
  }
  m_scheduleTimer->armAt(static_cast<uint64_t>(m_due.begin()->first) * 1000000ULL);
}

void Service::onScheduleTimer() {
  const core::Timestamp t = now();
  // Everything due now: each schedule once, however long the machine slept past its fire time.
  std::vector<std::pair<std::string, Armed>> due;
  while (!m_due.empty() && m_due.begin()->first <= t) {
    const std::string id = m_due.begin()->second;
    due.emplace_back(id, m_armed[id]);
    disarmSchedule(id);
  }
  for (const auto& [id, armed] : due) {
    auto s = schedule(id);
    if (!s || !s->enabled) continue;
    const bool late = t - armed.fireAt > kLateSeconds;
    try {
      runScheduleNow(id, late ? "catch-up" : "scheduled", armed.slot, 1);
      if (auto fresh = schedule(id)) armSchedule(*fresh, std::max(armed.slot, t));
    } catch (const std::exception& e) {
      log::error("schedule \"" + s->name + "\": " + e.what());
    }
  }
  armTimer();
}

uint64_t Service::recordUnstartedRun(const core::Schedule& s, core::JobState state, const std::string& trigger,
                                     const std::string& message) {
  core::Job job;
  job.operation = operationOf(s.kind);
  job.state = state;
  job.volumeName = s.volumeName;
  job.repositoryName = s.repositoryName;
  if (auto repo = findRepository(s.repositoryName)) job.repositoryId = repo->id;
  if (auto volume = findVolume(s.volumeName)) job.volumeId = volume->id;
  job.scheduleId = s.id;
  job.scheduleName = s.name;
  job.trigger = trigger;
  job.startedByUid = s.ownerUid;
  job.created = job.finished = now();
  job.message = message;
  {
    auto txn = m_store.begin();
    job.id = txn.allocateJobId();
    txn.put(job);
    txn.commit();
  }
  log::warning("schedule \"" + s.name + "\": run " + std::string(core::toString(state)) + ": " + message);
  if (onJobChanged) onJobChanged(job);
  return job.id;
}

std::optional<uint64_t> Service::runScheduleNow(const std::string& scheduleId, const std::string& trigger, core::Timestamp slot,
                                                uint32_t attempt) {
  auto stored = schedule(scheduleId);
  if (!stored) return std::nullopt;
  // While stopping nothing starts, and the fire time stays unhandled: the next start catches it up.
  if (m_stopping) return std::nullopt;
  core::Schedule s = *stored;
  if (slot) s.lastSlot = std::max(s.lastSlot, slot);
  // Never two runs of one schedule at once: a run due while the previous one runs (or waits to be retried) is
  // recorded as skipped.
  if (auto it = m_scheduleRuns.find(s.id); it != m_scheduleRuns.end()) {
    std::string why = it->second->jobId ? "its previous run (job " + std::to_string(it->second->jobId) + ") had not ended"
                                        : "its previous run is waiting to be retried";
    uint64_t id = recordUnstartedRun(s, core::JobState::Skipped, trigger,
                                     "skipped: the run " + (slot ? "due " + formatTime(slot) : std::string("asked for")) +
                                         " did not start because " + why);
    s.lastJobId = id;
    putSchedule(s);
    return id;
  }
  core::Volume volume;
  core::Repository repo;
  try {
    std::tie(volume, repo) = scheduleResources(s);
  } catch (const Error& e) {
    uint64_t id = recordUnstartedRun(s, core::JobState::Failed, trigger, e.what());
    s.lastJobId = s.lastFailureJobId = id;
    s.lastFailure = now();
    s.lastFailureMessage = e.what();
    putSchedule(s);
    m_scheduleRuns.erase(s.id);
    return id;
  }
  core::Job job;
  job.operation = operationOf(s.kind);
  if (s.kind == core::ScheduleKind::Backup) {
    job.volumeId = volume.id;
    job.volumeName = volume.name;
    job.tags = s.tags;
    job.tags.insert(job.tags.begin(), core::scheduleTag(s));
    job.excludes = s.excludes;
    job.includes = s.includes;
    job.runAsUid = readsAsOf(volume);
  }
  job.readDataSubset = s.readDataSubset;
  job.startedByUid = s.ownerUid;
  job.scheduleId = s.id;
  job.scheduleName = s.name;
  job.trigger = trigger;
  job.attempt = attempt;
  putSchedule(s);  // the fire time is handled before the job exists: a crash now never runs it twice
  const std::string id = s.id;
  uint64_t jobId = submitJob(std::move(job), repo, std::nullopt,
                             [this, id](ActiveJob& active, bool success) { scheduledBackupFinished(id, active, success); });
  // The job ends later, on the loop: only then can the run end.
  auto run = std::make_unique<ScheduleRun>();
  run->attempt = attempt;
  run->trigger = trigger;
  run->jobId = jobId;
  m_scheduleRuns[id] = std::move(run);
  s.lastJobId = jobId;
  putSchedule(s);
  return jobId;
}

void Service::scheduledBackupFinished(const std::string& scheduleId, ActiveJob& active, bool success) {
  auto s = schedule(scheduleId);
  if (!s || !success || s->kind != core::ScheduleKind::Backup || s->retention.empty() || m_stopping)
    return scheduleRunEnded(scheduleId, active.job, success);
  // The backup is saved: the schedule's retention policy now, under the repository's exclusive lock.
  core::Job job;
  job.operation = core::JobOperation::Retention;
  job.startedByUid = s->ownerUid;
  job.scheduleId = s->id;
  job.scheduleName = s->name;
  job.trigger = active.job.trigger;
  job.attempt = active.job.attempt;
  core::Job backup = active.job;
  try {
    auto repo = requireRepository(s->repositoryName);
    uint64_t id = submitJob(std::move(job), repo, std::nullopt, [this, scheduleId, backup](ActiveJob& retention, bool ok) {
      if (ok) return scheduleRunEnded(scheduleId, backup, true);
      core::Job failed = retention.job;
      failed.message = "snapshot " + backup.snapshot + " saved, but applying the retention policy failed: " + retention.job.message;
      scheduleRunEnded(scheduleId, failed, false);
    });
    if (auto it = m_scheduleRuns.find(scheduleId); it != m_scheduleRuns.end()) it->second->jobId = id;
  } catch (const Error& e) {
    core::Job failed = backup;
    failed.message = "snapshot " + backup.snapshot + " saved, but the retention policy could not run: " + e.what();
    scheduleRunEnded(scheduleId, failed, false);
  }
}

void Service::scheduleRunEnded(const std::string& scheduleId, const core::Job& job, bool success) {
  auto it = m_scheduleRuns.find(scheduleId);
  uint32_t attempt = it != m_scheduleRuns.end() ? it->second->attempt : job.attempt;
  std::string trigger = it != m_scheduleRuns.end() ? it->second->trigger : job.trigger;
  if (it != m_scheduleRuns.end()) m_scheduleRuns.erase(it);
  auto s = schedule(scheduleId);
  if (!s) return;
  if (success) {
    s->lastSuccess = now();
    s->lastSuccessJobId = job.id;
  } else {
    s->lastFailure = now();
    s->lastFailureJobId = job.id;
    s->lastFailureMessage = firstLines(job.message, kFailureLines);
  }
  putSchedule(*s);
  resourcesChanged();
  // A failed backup is tried again after the delay, up to `retries` more times; a cancelled one, or a backup
  // that was saved but whose retention failed, is not.
  if (success || job.operation != operationOf(s->kind) || job.state != core::JobState::Failed || m_stopping ||
      attempt > s->retries || !s->enabled)
    return;
  const uint64_t delay = core::retryDelaySeconds(s->retryDelaySeconds, attempt, job.error == "Unreachable");
  log::notice("schedule \"" + s->name + "\": attempt " + std::to_string(attempt) + " failed; trying again in " +
              std::to_string(delay) + " s" + (job.error == "Unreachable" ? " (the repository's server could not be reached: backing off)" : ""));
  auto run = std::make_unique<ScheduleRun>();
  run->attempt = attempt + 1;
  run->trigger = trigger;
  run->retryTimer = std::make_unique<loop::TimerSource>(m_loop, std::chrono::seconds(delay), [this, scheduleId] {
    auto found = m_scheduleRuns.find(scheduleId);
    if (found == m_scheduleRuns.end() || found->second->jobId) return;
    uint32_t next = found->second->attempt;
    // The timer that runs this is owned by the run: hand it to the loop's next iteration before it goes.
    m_loop.post([this, scheduleId, next] {
      auto again = m_scheduleRuns.find(scheduleId);
      if (again == m_scheduleRuns.end() || again->second->jobId) return;
      m_scheduleRuns.erase(again);
      runScheduleNow(scheduleId, "retry", 0, next);
    });
  });
  m_scheduleRuns[scheduleId] = std::move(run);
}

}  // namespace zerobyte::api
