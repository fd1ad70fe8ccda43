// org.zerobyte.Daemon1.Schedule at /org/zerobyte/Daemon1/schedules/<id>.
#include "common/users.h"
#include "daemon/api/json_mapping.h"
#include "daemon/dbus/objects.h"

namespace zerobyte::dbus {

using nlohmann::json;

ScheduleObject::ScheduleObject(ObjectTree& tree, core::Schedule schedule)
    : AdaptorInterfaces(tree.connection(), schedulePath(schedule.id)), m_tree(tree), m_schedule(std::move(schedule)) {
  m_record = m_tree.service().scheduleRecord(m_schedule);
  registerAdaptor();
}

ScheduleObject::~ScheduleObject() { unregisterAdaptor(); }

void ScheduleObject::update(core::Schedule schedule) {
  json record = m_tree.service().scheduleRecord(schedule);
  std::vector<std::string> changed;
  auto note = [&](const char* field, const char* property) {
    if (record.value(field, json()) != m_record.value(field, json())) changed.push_back(property);
  };
  note("volume", "Volume");
  note("repository", "Repository");
  note("cron", "Cron");
  note("timezone", "TimeZone");
  note("enabled", "Enabled");
  note("next_run", "NextRun");
  note("running_job", "RunningJob");
  note("last_success", "LastSuccess");
  note("last_failure", "LastFailure");
  note("last_failure_message", "LastFailureMessage");
  note("retention_text", "Retention");
  if (record != m_record) changed.push_back("Settings");
  m_schedule = std::move(schedule);
  m_record = std::move(record);
  if (!changed.empty()) getObject().emitPropertiesChangedSignal(INTERFACE_NAME, changed);
}

namespace {
std::string text(const json& record, const char* field) {
  auto it = record.find(field);
  return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

// Each property is readable by those who may view the schedule; others see it empty.
std::string ScheduleObject::Id() { return guarded([&] { return readable() ? m_schedule.id : std::string(); }); }
std::string ScheduleObject::Name() { return guarded([&] { return readable() ? m_schedule.name : std::string(); }); }
std::string ScheduleObject::Kind() {
  return guarded([&] { return readable() ? std::string(core::toString(m_schedule.kind)) : std::string(); });
}
// A volume or repository deleted or not declared yet has no object: "/".
sdbus::ObjectPath ScheduleObject::Volume() {
  return guarded([&] {
    if (!readable() || m_schedule.volumeName.empty()) return sdbus::ObjectPath("/");
    try {
      return sdbus::ObjectPath(m_tree.volumePathByName(m_schedule.volumeName));
    } catch (const Error&) {
      return sdbus::ObjectPath("/");
    }
  });
}
sdbus::ObjectPath ScheduleObject::Repository() {
  return guarded([&] {
    if (!readable()) return sdbus::ObjectPath("/");
    try {
      return sdbus::ObjectPath(m_tree.repositoryPathByName(m_schedule.repositoryName));
    } catch (const Error&) {
      return sdbus::ObjectPath("/");
    }
  });
}
std::string ScheduleObject::Cron() { return guarded([&] { return readable() ? m_schedule.cron : std::string(); }); }
std::string ScheduleObject::TimeZone() { return guarded([&] { return readable() ? m_schedule.timeZone : std::string(); }); }
bool ScheduleObject::Enabled() { return guarded([&] { return readable() && m_schedule.enabled; }); }
std::string ScheduleObject::NextRun() { return guarded([&] { return readable() ? text(m_record, "next_run") : std::string(); }); }
sdbus::ObjectPath ScheduleObject::RunningJob() {
  return guarded([&] {
    auto it = m_record.find("running_job");
    if (!readable() || it == m_record.end() || !it->is_number_unsigned()) return sdbus::ObjectPath("/");
    return sdbus::ObjectPath(jobPath(it->get<uint64_t>()));
  });
}
std::string ScheduleObject::LastSuccess() { return guarded([&] { return readable() ? text(m_record, "last_success") : std::string(); }); }
std::string ScheduleObject::LastFailure() { return guarded([&] { return readable() ? text(m_record, "last_failure") : std::string(); }); }
std::string ScheduleObject::LastFailureMessage() {
  return guarded([&] { return readable() ? text(m_record, "last_failure_message") : std::string(); });
}
std::string ScheduleObject::Retention() { return guarded([&] { return readable() ? text(m_record, "retention_text") : std::string(); }); }
bool ScheduleObject::Declared() { return guarded([&] { return readable() && m_schedule.declared; }); }
uint32_t ScheduleObject::OwnerUID() { return guarded([&] { return readable() ? m_schedule.ownerUid : 0u; }); }
std::string ScheduleObject::Owner() {
  return guarded([&] { return readable() ? users::describeUser(m_schedule.ownerUid) : std::string(); });
}
std::string ScheduleObject::Group() {
  return guarded([&] { return readable() && m_schedule.groupGid ? users::describeGroup(*m_schedule.groupGid) : std::string(); });
}
Vardict ScheduleObject::Settings() { return guarded([&] { return readable() ? toVardict(m_record) : Vardict{}; }); }

bool ScheduleObject::readable() { return m_tree.readable(m_schedule); }

void ScheduleObject::Run(sdbus::Result<sdbus::ObjectPath>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<sdbus::ObjectPath>("RunSchedule", {{"name", m_schedule.name}}, options, std::move(result), m_tree.jobAnswer());
  });
}

void ScheduleObject::Edit(sdbus::Result<>&& result, Vardict changes, Vardict options) {
  guarded([&] {
    json params = {{"name", m_schedule.name}};
    for (const auto& [key, value] : changes) {
      if (key == "name" || key.rfind("auth.", 0) == 0)
        throw Error(ErrorCode::InvalidParameter, "\"" + key + "\" cannot be changed with Edit", {{"parameter", key}});
      params[key] = fromVariant(value, key);
    }
    m_tree.call<>("EditSchedule", std::move(params), options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void ScheduleObject::Enable(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("EnableSchedule", {{"name", m_schedule.name}}, options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void ScheduleObject::Disable(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("DisableSchedule", {{"name", m_schedule.name}}, options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void ScheduleObject::Delete(sdbus::Result<>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<>("DeleteSchedule", {{"name", m_schedule.name}}, options, std::move(result), [](auto& r, const json&) { r.returnResults(); });
  });
}

void ScheduleObject::NextRuns(sdbus::Result<std::vector<std::string>>&& result, uint32_t count, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<std::string>>("GetScheduleFireTimes", {{"name", m_schedule.name}, {"count", count}}, options,
                                          std::move(result), [](auto& r, const json& reply) {
                                            std::vector<std::string> times;
                                            for (const auto& t : reply.at("fire_times")) times.push_back(t.at("time").get<std::string>());
                                            r.returnResults(times);
                                          });
  });
}

void ScheduleObject::PreviewRetention(sdbus::Result<std::vector<std::string>, std::vector<std::string>>&& result, Vardict options) {
  guarded([&] {
    m_tree.call<std::vector<std::string>, std::vector<std::string>>(
        "PreviewRetention", {{"name", m_schedule.name}}, options, std::move(result), [](auto& r, const json& reply) {
          auto ids = [&reply](const char* key) {
            std::vector<std::string> out;
            for (const auto& s : reply.at(key)) out.push_back(s.at("id").get<std::string>());
            return out;
          };
          r.returnResults(ids("keep"), ids("remove"));
        });
  });
}

}  // namespace zerobyte::dbus
