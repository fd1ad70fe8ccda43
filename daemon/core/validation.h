// Validation of names, paths, tags and patterns that come from requests and the config file.
#pragma once

#include <string>
#include <string_view>

namespace zerobyte::core {

// `value` in double quotes for an error message: control characters, '"', '\\' and bytes
// that are not UTF-8 are escaped (so a value cannot forge log lines), and long values are
// shortened. Shared by every message that repeats what the caller sent.
std::string quoteValue(std::string_view value);

// Resource names: [a-z0-9][a-z0-9_-]{0,62}. `what` names the field in the message
// ("volume name"). Throws Error(InvalidArgument) saying what is wrong and how to fix it.
void validateName(std::string_view name, std::string_view what);
bool isValidName(std::string_view name);

// An absolute, normalised path: starts with '/', no "." or ".." components, no empty
// components ("//"), no trailing '/' (except "/" itself), no control characters, at most
// 4095 bytes. Throws Error(InvalidArgument).
void validateAbsolutePath(std::string_view path, std::string_view what);

// A restic tag: 1-128 bytes, no ',' (restic splits on it), no control characters.
void validateTag(std::string_view tag);
// A restic exclude pattern: 1-4095 bytes, no control characters.
void validateExcludePattern(std::string_view pattern);
// A path inside a snapshot used for restore --include / ls: like validateAbsolutePath,
// but may end in '/'.
void validateSnapshotPath(std::string_view path, std::string_view what);
// A snapshot id: 8-64 lowercase hex characters, or "latest".
void validateSnapshotId(std::string_view id);

// Schedule fields. Each throws Error(InvalidArgument) with details {"parameter": <wire name>}.
// A path inside a volume, relative to its root, without ".." ("Documents", "photos/2024"): parameter includes.
void validateIncludePath(std::string_view path);
// A file name that marks a directory to skip (restic --exclude-if-present): parameter exclude_if_present.
void validateMarkerName(std::string_view name);
// A tag a user may give: validateTag, and not the reserved "zerobyte-schedule:" prefix (`parameter`).
void validateUserTag(std::string_view tag, const char* parameter);
// restic check --read-data-subset: n/t (1 <= n <= t), a percentage above 0 and at most 100 ("10%", "2.5%") or a
// size ("500M", "2G": K, M, G, T): parameter read_data_subset.
void validateReadDataSubset(std::string_view subset);
// "auto", "off" or "max": parameter compression.
void validateCompression(std::string_view compression);

// The tag every snapshot of a schedule carries starts with this; users may not give such tags.
inline constexpr std::string_view kScheduleTagPrefix = "zerobyte-schedule:";

}  // namespace zerobyte::core
