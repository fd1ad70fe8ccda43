// How the daemon's records (jobs, snapshot entries, secret states) read in zerobytectl's human output.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zerobyte::ctl {

// Tolerant field access: a missing field, null or a value of another type gives the
// fallback, so a reply from a newer or older daemon still prints.
std::string field(const nlohmann::json& record, std::string_view key, std::string_view fallback = "");
int64_t intField(const nlohmann::json& record, std::string_view key, int64_t fallback = 0);
// A count or size: never negative.
uint64_t countField(const nlohmann::json& record, std::string_view key);
double numberField(const nlohmann::json& record, std::string_view key, double fallback = 0);
bool boolField(const nlohmann::json& record, std::string_view key, bool fallback = false);
std::optional<int64_t> optionalIntField(const nlohmann::json& record, std::string_view key);
// The object under key, or an empty object.
const nlohmann::json& objectField(const nlohmann::json& record, std::string_view key);
// The array under key, or an empty array.
const nlohmann::json& arrayField(const nlohmann::json& record, std::string_view key);
// ", "-joined strings of an array field ("" when empty or missing).
std::string joinedField(const nlohmann::json& record, std::string_view key, std::string_view separator = ", ");

// An RFC 3339 field shown in local time ("-" when missing or null).
std::string localTimeField(const nlohmann::json& record, std::string_view key);

// A 64-character snapshot id shortened to restic's 8; anything else as it is.
std::string shortSnapshotId(std::string_view id);

// What a job does, in a few words: "backup home → main", "restore main 5c62b13c → /srv/x",
// "forget main 5c62b13c", "init main".
std::string describeJob(const nlohmann::json& job);
// The state column of a job: "running 45%" while running, else the state.
std::string jobStateText(const nlohmann::json& job);
// Seconds the job ran (or has run so far, compared with `now`): the restic summary's
// duration, else finished − started, else the progress's elapsed seconds.
std::optional<double> jobDuration(const nlohmann::json& job, double now);

// "set (stored)", "set (file:///etc/zerobyte/main.pw)", "not set".
std::string secretStateText(const nlohmann::json& secretState);

// The owner of a volume or repository: "alice (1000)", or the uid alone when unknown.
std::string ownerText(const nlohmann::json& resource);
// "with group staff" or "not shared".
std::string sharingText(const nlohmann::json& resource);
// Whose identity restic takes for the resource: "root (created by an admin)" or "its owner".
std::string runsAsText(const nlohmann::json& resource);

// The permission column of `ls -l` ("drwxr-xr-x", "lrwxrwxrwx", "-rwsr-xr-x", "drwxrwxrwt")
// from a node's type and mode. The mode may be restic's (Go's os.FileMode, special bits
// above 16 bits) or a POSIX st_mode.
std::string lsPermissions(std::string_view type, int64_t mode);

// One snapshot entry like `ls -l`: permissions, uid/gid, size in bytes, local mtime,
// path and "-> target" for a symbolic link.
std::string nodeLine(const nlohmann::json& node);

}  // namespace zerobyte::ctl
