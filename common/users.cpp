// NSS lookups with the reentrant calls and buffers that grow as needed.
#include "common/users.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cerrno>

namespace zerobyte::users {

namespace {

std::optional<Identity> fromPasswd(const passwd& pw) {
  Identity id;
  id.uid = pw.pw_uid;
  id.gid = pw.pw_gid;
  id.name = pw.pw_name ? pw.pw_name : "";
  id.home = pw.pw_dir ? pw.pw_dir : "";
  int count = 32;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  for (int attempt = 0; attempt < 4; ++attempt) {
    int n = count;
    if (getgrouplist(id.name.c_str(), id.gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<size_t>(n));
      id.groups = std::move(groups);
      return id;
    }
    count = std::max(n, count * 2);
    groups.resize(static_cast<size_t>(count));
  }
  id.groups = {id.gid};
  return id;
}

template <typename Lookup>
std::optional<Identity> lookupWith(Lookup call) {
  std::vector<char> buf(4096);
  for (int attempt = 0; attempt < 6; ++attempt) {
    passwd pw{};
    passwd* found = nullptr;
    int rc = call(&pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 || !found) return std::nullopt;
    return fromPasswd(pw);
  }
  return std::nullopt;
}

template <typename Lookup>
std::optional<group> groupWith(Lookup call, std::vector<char>& buf) {
  buf.resize(4096);
  for (int attempt = 0; attempt < 6; ++attempt) {
    group gr{};
    group* found = nullptr;
    int rc = call(&gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 || !found) return std::nullopt;
    return gr;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Identity> lookup(uid_t uid) {
  return lookupWith([uid](passwd* pw, char* b, size_t n, passwd** r) { return getpwuid_r(uid, pw, b, n, r); });
}

std::optional<Identity> lookup(const std::string& name) {
  return lookupWith([&name](passwd* pw, char* b, size_t n, passwd** r) { return getpwnam_r(name.c_str(), pw, b, n, r); });
}

std::optional<std::string> userName(uid_t uid) {
  auto id = lookup(uid);
  if (!id) return std::nullopt;
  return id->name;
}

std::optional<std::string> groupName(gid_t gid) {
  std::vector<char> buf;
  auto gr = groupWith([gid](group* g, char* b, size_t n, group** r) { return getgrgid_r(gid, g, b, n, r); }, buf);
  if (!gr || !gr->gr_name) return std::nullopt;
  return std::string(gr->gr_name);
}

std::optional<gid_t> groupId(const std::string& name) {
  std::vector<char> buf;
  auto gr = groupWith([&name](group* g, char* b, size_t n, group** r) { return getgrnam_r(name.c_str(), g, b, n, r); }, buf);
  if (!gr) return std::nullopt;
  return gr->gr_gid;
}

std::vector<gid_t> groupsOf(uid_t uid) {
  auto id = lookup(uid);
  if (!id) return {};
  return id->groups;
}

bool isInGroup(uid_t uid, gid_t gid) {
  auto groups = groupsOf(uid);
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

std::string describeUser(uid_t uid) {
  auto name = userName(uid);
  return name ? *name : "uid " + std::to_string(uid);
}

std::string describeGroup(gid_t gid) {
  auto name = groupName(gid);
  return name ? *name : "gid " + std::to_string(gid);
}

}  // namespace zerobyte::users
