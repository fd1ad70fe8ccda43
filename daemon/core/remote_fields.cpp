// Field checks shared by network volumes and remote repositories.
#include "daemon/core/remote_fields.h"

#include "common/errors.h"
#include "daemon/core/validation.h"

#include <algorithm>
#include <cctype>

namespace zerobyte::core {
namespace {

constexpr size_t kMaxHostLength = 253;
constexpr size_t kMaxUserLength = 64;
constexpr size_t kMaxRemotePathLength = 4095;
constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxKnownHostsBytes = 16 * 1024;
constexpr size_t kMaxRcloneOptions = 64;
constexpr size_t kMaxOptionValueBytes = 1024;

bool isControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

}  // namespace

[[noreturn]] void invalid(const std::string& parameter, const std::string& message) {
  throw Error(ErrorCode::InvalidArgument, message, {{"parameter", parameter}});
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return isControl(static_cast<unsigned char>(c)); });
}
bool allOf(std::string_view s, std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

// A value that ends up inside a comma-separated option string (-o a=b,c=d) or a line of a file.
void requireOptionSafe(std::string_view value, const std::string& parameter, std::string_view what) {
  if (value.find(',') != std::string_view::npos || hasControl(value))
    invalid(parameter, std::string(what) + " " + quoteValue(value) +
                           " contains a comma or a control character, which would end up in a mount option string; "
                           "remove it");
}

bool isIpv6Literal(std::string_view host) { return host.find(':') != std::string_view::npos; }

void validateHost(const std::string& host, const char* parameter, std::string_view what) {
  if (host.empty()) invalid(parameter, std::string(what) + " is required");
  if (host.size() > kMaxHostLength) invalid(parameter, std::string(what) + " is longer than 253 characters");
  if (isIpv6Literal(host)) {
    if (!allOf(host, ":.") || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos)
      invalid(parameter, std::string(what) + " " + quoteValue(host) + " is not an IPv6 address (give it without brackets)");
    return;
  }
  if (!allOf(host, ".-") || host.front() == '-' || host.front() == '.')
    invalid(parameter, std::string(what) + " " + quoteValue(host) +
                           " is not a host name or address; use letters, digits, '.' and '-' (or an IPv6 address)");
}

void validateUser(const std::string& user, const char* parameter) {
  if (user.empty()) invalid(parameter, "user is required");
  if (user.size() > kMaxUserLength || !allOf(user, "._-$") || user.front() == '-')
    invalid(parameter, "user " + quoteValue(user) +
                           " is not a user name; use up to 64 letters, digits, '.', '_', '-' or '$', not starting with '-'");
}

void validateRemotePathText(const std::string& path, const char* parameter) {
  if (path.size() > kMaxRemotePathLength) invalid(parameter, std::string(parameter) + " is longer than 4095 bytes");
  if (hasControl(path)) invalid(parameter, std::string(parameter) + " " + quoteValue(path) + " contains a control character");
}

void validateRelative(const std::string& path, const char* parameter, std::string_view inside) {
  validateRemotePathText(path, parameter);
  if (path.empty()) return;
  if (path.front() == '/' || path.find('\\') != std::string::npos)
    invalid(parameter, std::string(parameter) + " " + quoteValue(path) + " must be relative to the " + std::string(inside) +
                           " and use '/' (e.g. \"photos/2024\")");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part == "..") invalid(parameter, std::string(parameter) + " " + quoteValue(path) + " must not contain \"..\"");
    start = end + 1;
  }
}

void validateHttpUrl(const std::string& url, const std::string& parameter, std::string_view credentialsAs) {
  if (url.empty()) invalid(parameter, parameter + " is required (http://host/path or https://host/path)");
  if (url.size() > kMaxUrlLength) invalid(parameter, parameter + " is longer than 2048 characters");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    invalid(parameter, parameter + " " + quoteValue(url) + " must start with http:// or https://");
  if (hasControl(url) || url.find(' ') != std::string::npos || url.find('"') != std::string::npos)
    invalid(parameter, parameter + " " + quoteValue(url) + " contains a space, a quote or a control character; percent-encode it");
  const size_t hostStart = url.find("//") + 2;
  const size_t hostEnd = url.find('/', hostStart);
  std::string_view authority(url.data() + hostStart, (hostEnd == std::string::npos ? url.size() : hostEnd) - hostStart);
  if (authority.empty()) invalid(parameter, parameter + " " + quoteValue(url) + " has no host");
  if (authority.find('@') != std::string_view::npos)
    invalid(parameter, parameter + " must not carry a user or password; give them as " + std::string(credentialsAs));
}

void validateShare(const std::string& share) {
  if (share.empty()) invalid("share", "share is required (the SMB share name)");
  if (share.size() > 80 || hasControl(share) || share.find_first_of("/\\[]:|<>+=;,*?\"") != std::string::npos)
    invalid("share", "share " + quoteValue(share) + " is not a share name; use up to 80 characters without / \\ [ ] : | < > + = ; , * ? \"");
}

void validateKnownHosts(const std::string& knownHosts) {
  if (knownHosts.size() > kMaxKnownHostsBytes) invalid("known_hosts", "known_hosts is larger than 16 KiB");
  bool any = false;
  size_t start = 0;
  while (start < knownHosts.size()) {
    size_t end = knownHosts.find('\n', start);
    if (end == std::string::npos) end = knownHosts.size();
    std::string_view line(knownHosts.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (hasControl(line)) invalid("known_hosts", "known_hosts has a control character in a line");
    if (!line.empty() && line.front() != '#') {
      // host[,host] keytype base64 [comment]
      size_t fields = 0;
      bool inField = false;
      for (char c : line) {
        if (c == ' ' || c == '\t') {
          inField = false;
        } else if (!inField) {
          inField = true;
          ++fields;
        }
      }
      if (fields < 3)
        invalid("known_hosts", "known_hosts line " + quoteValue(line) +
                                   " is not \"HOST KEYTYPE KEY\"; copy it from ssh-keyscan or ~/.ssh/known_hosts");
      any = true;
    }
    start = end + 1;
  }
  if (!any)
    invalid("known_hosts", "known_hosts has no entry; give the server's key (ssh-keyscan -p PORT HOST), or set "
                           "host_key_check to false to skip the check (not recommended)");
}

bool isReference(std::string_view value) {
  return value.rfind("file://", 0) == 0 || value.rfind("env://", 0) == 0 || value.rfind("credential://", 0) == 0;
}

void validateRcloneOptions(std::vector<RcloneOption>& options) {
  if (options.size() > kMaxRcloneOptions) invalid("rclone_options", "at most 64 rclone options");
  std::vector<std::string> seen;
  for (const auto& o : options) {
    if (o.name.empty() || o.name.size() > 64 || !allOf(o.name, "_") ||
        std::any_of(o.name.begin(), o.name.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }))
      invalid("rclone_options", "rclone option name " + quoteValue(o.name) +
                                    " is not one; use rclone's names (lowercase letters, digits and '_', e.g. \"host\", \"key_file\")");
    if (o.name == "type") invalid("rclone_options", "the backend is rclone_type, not an option \"type\"");
    if (std::find(seen.begin(), seen.end(), o.name) != seen.end())
      invalid("rclone_options", "rclone option \"" + o.name + "\" is given twice");
    seen.push_back(o.name);
    if (o.value.size() > kMaxOptionValueBytes || hasControl(o.value) ||
        (!o.value.empty() && (o.value.front() == ' ' || o.value.back() == ' ')))
      invalid("rclone_options", "rclone option \"" + o.name +
                                    "\" has a value with a control character, leading or trailing space, or over 1 KiB");
    if (o.secret && !isReference(o.value))
      invalid("rclone_options", "rclone secret option \"" + o.name +
                                    "\" must be a reference (file:///path, env://NAME or credential://NAME), never the value");
    if (!o.secret && rcloneWantsObscured(o.name))
      invalid("rclone_options", "rclone option \"" + o.name + "\" is a password: give it as a secret reference (" + o.name +
                                    "=file:///path), never as a plain value");
  }
}

bool rcloneWantsObscured(std::string_view name) {
  return name == "pass" || name == "password" || name.ends_with("_pass") || name.ends_with("_password");
}

std::string hostForUrl(const std::string& host) { return isIpv6Literal(host) ? "[" + host + "]" : host; }

}  // namespace zerobyte::core
