// String forms of job operations and states.
#include "daemon/core/model.h"

#include "daemon/core/validation.h"

#include <array>
#include <utility>

namespace zerobyte::core {
namespace {

constexpr std::array<std::pair<JobOperation, std::string_view>, 12> kOperations{{
    {JobOperation::Backup, "backup"},
    {JobOperation::Restore, "restore"},
    {JobOperation::Forget, "forget"},
    {JobOperation::Init, "init"},
    {JobOperation::Import, "import"},
    {JobOperation::Unlock, "unlock"},
    {JobOperation::ChangePassword, "change-password"},
    {JobOperation::Check, "check"},
    {JobOperation::CheckConnection, "check-connection"},
    {JobOperation::Retention, "retention"},
    {JobOperation::Prune, "prune"},
    {JobOperation::UnlockAll, "unlock-all"},
}};

constexpr std::array<std::pair<ScheduleKind, std::string_view>, 3> kScheduleKinds{{
    {ScheduleKind::Backup, "backup"},
    {ScheduleKind::Check, "check"},
    {ScheduleKind::Prune, "prune"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 8> kStates{{
    {JobState::Queued, "queued"},
    {JobState::Running, "running"},
    {JobState::Succeeded, "succeeded"},
    {JobState::Warning, "warning"},
    {JobState::Failed, "failed"},
    {JobState::Cancelled, "cancelled"},
    {JobState::Interrupted, "interrupted"},
    {JobState::Skipped, "skipped"},
}};

template <typename Table, typename E>
std::string_view nameOf(const Table& table, E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "unknown";
}

template <typename E, typename Table>
std::optional<E> valueOf(const Table& table, std::string_view s) {
  for (const auto& [v, name] : table)
    if (name == s) return v;
  return std::nullopt;
}

}  // namespace

std::string_view toString(JobOperation op) { return nameOf(kOperations, op); }
std::string_view toString(JobState state) { return nameOf(kStates, state); }
std::optional<JobOperation> jobOperationFromString(std::string_view s) { return valueOf<JobOperation>(kOperations, s); }
std::optional<JobState> jobStateFromString(std::string_view s) { return valueOf<JobState>(kStates, s); }
std::string_view toString(ScheduleKind kind) { return nameOf(kScheduleKinds, kind); }
std::optional<ScheduleKind> scheduleKindFromString(std::string_view s) { return valueOf<ScheduleKind>(kScheduleKinds, s); }

bool isFinished(JobState state) { return state != JobState::Queued && state != JobState::Running; }

bool needsExclusiveLock(JobOperation op) {
  return op == JobOperation::Forget || op == JobOperation::Unlock || op == JobOperation::ChangePassword || op == JobOperation::Check ||
         op == JobOperation::Retention || op == JobOperation::Prune || op == JobOperation::UnlockAll;
}

std::string scheduleTag(const Schedule& schedule) { return std::string(kScheduleTagPrefix) + schedule.name; }

}  // namespace zerobyte::core
