// The reply shapes of org.zerobyte.Daemon: domain records as JSON (never a secret).
#pragma once

#include "daemon/core/model.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace zerobyte::api {

// RFC 3339 in UTC, e.g. "2026-11-22T06:14:34Z".
std::string formatTime(core::Timestamp t);
core::Timestamp now();

nlohmann::json toJson(const core::Volume& volume);
nlohmann::json toJson(const core::Repository& repository, std::optional<size_t> snapshotCount);
nlohmann::json toJson(const core::Job& job);
nlohmann::json toJson(const core::Snapshot& snapshot);
nlohmann::json toJson(const core::Node& node);

}  // namespace zerobyte::api
