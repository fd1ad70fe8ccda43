// Field checks shared by network volumes (mount_plan) and remote repositories (repository_backend): host names,
// users, URLs, known_hosts entries and rclone options. Each throws Error(InvalidArgument) with {"parameter": ...}.
#pragma once

#include "daemon/core/model.h"

#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::core {

[[noreturn]] void invalid(const std::string& parameter, const std::string& message);
bool hasControl(std::string_view s);
// Every character is a letter, a digit or one of `extra`.
bool allOf(std::string_view s, std::string_view extra);
// A value that ends up inside a comma-separated option string (-o a=b,c=d) or a line of a file.
void requireOptionSafe(std::string_view value, const std::string& parameter, std::string_view what);
bool isIpv6Literal(std::string_view host);
// "[::1]" for an IPv6 literal, the host otherwise.
std::string hostForUrl(const std::string& host);
// A host name, IPv4 or IPv6 address (without brackets), required.
void validateHost(const std::string& host, const char* parameter, std::string_view what);
// A user name on a server, required.
void validateUser(const std::string& user, const char* parameter);
void validateRemotePathText(const std::string& path, const char* parameter);
// A path below the share or remote: relative, '/'-separated, no "..".
void validateRelative(const std::string& path, const char* parameter, std::string_view inside);
// http:// or https:// with a host and without credentials (they go as `credentialsAs`, e.g. "user and password").
void validateHttpUrl(const std::string& url, const std::string& parameter, std::string_view credentialsAs);
void validateShare(const std::string& share);
// At least one "HOST KEYTYPE KEY" line, at most 16 KiB.
void validateKnownHosts(const std::string& knownHosts);
// file://, env:// or credential://.
bool isReference(std::string_view value);
// rclone's configuration wants these options obscured (pass, password, *_pass, *_password); it reads any other
// as written.
bool rcloneWantsObscured(std::string_view name);
// rclone's option names and values; secret ones are references; passwords are never plain values.
void validateRcloneOptions(std::vector<RcloneOption>& options);

}  // namespace zerobyte::core
