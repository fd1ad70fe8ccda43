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

}  // namespace zerobyte::core
