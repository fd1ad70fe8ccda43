// Domain records → reply JSON.
#include "daemon/api/json_mapping.h"

#include "daemon/core/repository_backend.h"

#include "common/users.h"

#include <ctime>

namespace zerobyte::api {

using nlohmann::json;

std::string formatTime(core::Timestamp t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

core::Timestamp now() { return static_cast<core::Timestamp>(std::time(nullptr)); }

json toJson(const core::Volume& v) {
  return {{"id", v.id},           {"name", v.name},         {"type", v.type},
          {"path", v.path},       {"declared", v.declared}, {"owner_uid", v.ownerUid},
          {"owner", users::describeUser(v.ownerUid)},
          {"group_gid", v.groupGid ? json(*v.groupGid) : json(nullptr)},
          {"group", v.groupGid ? json(users::describeGroup(*v.groupGid)) : json(nullptr)},
          {"privileged", v.privileged},
          {"created", formatTime(v.created)}};
}

json toJson(const core::Repository& r, std::optional<size_t> snapshotCount) {
  json password = {{"set", !r.passwordRef.empty() || !r.password.empty()},
                   {"source", r.passwordRef.empty() ? std::string("stored") : r.passwordRef}};
  json out = {{"id", r.id},
          {"name", r.name},
          {"type", r.type},
          {"path", r.path},
          {"declared", r.declared},
          {"owner_uid", r.ownerUid},
          {"owner", users::describeUser(r.ownerUid)},
          {"group_gid", r.groupGid ? json(*r.groupGid) : json(nullptr)},
          {"group", r.groupGid ? json(users::describeGroup(*r.groupGid)) : json(nullptr)},
          {"privileged", r.privileged},
          {"created", formatTime(r.created)},
          {"password", password},
          {"location", core::describeRepository(r)},
          {"snapshot_count", snapshotCount ? json(*snapshotCount) : json(nullptr)}};
  if (!r.isRemote()) return out;
  // The fields of its type (never a secret); for each credential whether it is set and where it comes from.
  const auto& m = r.remote;
  const json fields = {{"host", m.host},
                       {"port", m.port ? json(m.port) : json(nullptr)},
                       {"user", m.user},
                       {"url", m.url},
                       {"endpoint", m.endpoint},
                       {"bucket", m.bucket},
                       {"container", m.bucket},
                       {"region", m.region},
                       {"access_key_id", m.accessKeyId},
                       {"path_style", m.pathStyle},
                       {"account_id", m.account},
                       {"account_name", m.account},
                       {"endpoint_suffix", m.endpointSuffix},
                       {"project_id", m.project},
                       {"project_name", m.project},
                       {"user_domain", m.userDomain},
                       {"project_domain", m.projectDomain},
                       {"known_hosts", m.knownHosts},
                       {"host_key_check", m.hostKeyCheck},
                       {"rclone_type", m.rcloneType},
                       {"ca_cert", m.caCert},
                       {"insecure_tls", m.insecureTls},
                       {"limit_upload", m.limitUploadKiB},
                       {"limit_download", m.limitDownloadKiB},
                       {"compression", m.compression}};
  for (const auto& key : core::repositoryFieldsOf(r.type))
    if (fields.contains(key)) out[key] = fields[key];
  if (r.type == "rclone") {
    json rclone = json::array();
    for (const auto& o : m.rcloneOptions) rclone.push_back({{"name", o.name}, {"value", o.value}, {"secret", o.secret}});
    out["rclone_options"] = rclone;
  }
  json credentials = json::object();
  for (const auto& name : core::repositoryCredentialsOf(r.type)) {
    auto it = std::find_if(r.credentials.begin(), r.credentials.end(), [&](const auto& c) { return c.name == name; });
    const bool set = it != r.credentials.end() && (!it->ref.empty() || !it->sealed.empty());
    credentials[name] = {{"set", set}, {"source", !set ? "" : it->ref.empty() ? "stored" : it->ref}};
  }
  out["credentials"] = credentials;
  return out;
}

json toJson(const core::Job& j) {
  const auto& p = j.progress;
  double rate = p.secondsElapsed > 0 ? static_cast<double>(p.bytesDone) / p.secondsElapsed : 0.0;
  json progress = {{"percent", p.percent},
                   {"bytes_done", p.bytesDone},
                   {"bytes_total", p.bytesTotal},
                   {"files_done", p.filesDone},
                   {"files_total", p.filesTotal},
                   {"rate", rate},
                   {"seconds_elapsed", static_cast<int64_t>(p.secondsElapsed)},
                   {"seconds_remaining", p.secondsRemaining ? json(*p.secondsRemaining) : json(nullptr)},
                   {"current_files", p.currentFiles}};
  json summary = nullptr;
  if (j.summary) {
    const auto& s = *j.summary;
    summary = {{"snapshot_id", s.snapshotId},
               {"files_new", s.filesNew},
               {"files_changed", s.filesChanged},
               {"files_unmodified", s.filesUnmodified},
               {"dirs_new", s.dirsNew},
               {"dirs_changed", s.dirsChanged},
               {"dirs_unmodified", s.dirsUnmodified},
               {"data_added", s.dataAdded},
               {"total_files_processed", s.totalFilesProcessed},
               {"total_bytes_processed", s.totalBytesProcessed},
               {"total_duration", s.totalDuration}};
  }
  auto optional = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"id", j.id},
          {"operation", std::string(core::toString(j.operation))},
          {"state", std::string(core::toString(j.state))},
          {"repository", j.repositoryName},
          {"volume", optional(j.volumeName)},
          {"snapshot", optional(j.snapshot)},
          {"target", optional(j.target)},
          {"tags", j.tags},
          {"excludes", j.excludes},
          {"includes", j.includes},
          {"started_by_uid", j.startedByUid},
          {"run_as_uid", j.runAsUid},
          {"created", formatTime(j.created)},
          {"started", j.started ? json(formatTime(j.started)) : json(nullptr)},
          {"finished", j.finished ? json(formatTime(j.finished)) : json(nullptr)},
          {"progress", progress},
          {"message", j.message},
          {"error", j.error.empty() ? json(nullptr) : json(j.error)},
          {"warnings", j.warnings},
          {"summary", summary},
          {"schedule", optional(j.scheduleName)},
          {"trigger", optional(j.trigger)},
          {"attempt", j.attempt}};
}

json toJson(const core::Snapshot& s) {
  return {{"id", s.id},
          {"short_id", s.shortId},
          {"time", s.time},
          {"hostname", s.hostname},
          {"username", s.username},
          {"paths", s.paths},
          {"tags", s.tags},
          {"parent", s.parent.empty() ? json(nullptr) : json(s.parent)},
          {"tree", s.tree}};
}

json toJson(const core::Node& n) {
  return {{"name", n.name},
          {"type", n.type},
          {"path", n.path},
          {"size", n.size ? json(*n.size) : json(nullptr)},
          {"mode", n.mode},
          {"permissions", n.permissions},
          {"uid", n.uid},
          {"gid", n.gid},
          {"mtime", n.mtime},
          {"link_target", n.linkTarget.empty() ? json(nullptr) : json(n.linkTarget)}};
}

}  // namespace zerobyte::api
