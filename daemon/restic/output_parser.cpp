// restic output parsing: version, backup events, snapshot lists, forget groups, ls lines and failures (0.14 to 0.18 formats).
#include "daemon/restic/restic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace zerobyte::restic {
namespace {

using nlohmann::json;

// Longest piece of restic's text that goes into an error message (a job message is one line).
constexpr size_t kMaxQuotedText = 500;

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.push_back(trim(text.substr(0, end)));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::string truncated(std::string_view s) {
  if (s.size() <= kMaxQuotedText) return std::string(s);
  return std::string(s.substr(0, kMaxQuotedText)) + "...";
}

// One JSON object per line, or nothing: restic mixes text warnings into the same streams.
std::optional<json> parseObject(std::string_view line) {
  line = trim(line);
  if (line.empty() || line.front() != '{') return std::nullopt;
  json value = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// Lenient field readers for streamed lines: a missing or odd field gives the default.
std::string stringOr(const json& object, const char* key, std::string fallback = {}) {
  const json* value = member(object, key);
  return value && value->is_string() ? value->get<std::string>() : fallback;
}

double doubleOr(const json& object, const char* key, double fallback = 0) {
  const json* value = member(object, key);
  return value && value->is_number() ? value->get<double>() : fallback;
}

std::optional<uint64_t> optionalCount(const json& object, const char* key) {
  const json* value = member(object, key);
  if (!value) return std::nullopt;
  if (value->is_number_unsigned()) return value->get<uint64_t>();
  if (value->is_number_integer()) {
    const auto n = value->get<int64_t>();
    return n < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(n));
  }
  if (value->is_number_float()) {
    const auto d = value->get<double>();
    // Outside [0, 2^64) the conversion is undefined; such a value is no count anyway.
    if (d >= 0 && d < 18446744073709551616.0) return static_cast<uint64_t>(d);
  }
  return std::nullopt;
}

uint64_t countOr(const json& object, const char* key) { return optionalCount(object, key).value_or(0); }

std::vector<std::string> stringsOf(const json& object, const char* key) {
  std::vector<std::string> out;
  const json* value = member(object, key);
  if (!value || !value->is_array()) return out;
  for (const auto& item : *value)
    if (item.is_string()) out.push_back(item.get<std::string>());
  return out;
}

// Strict readers for the snapshot list, where a wrong type means the output is not what we think it is.
class FieldError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string strictString(const json& object, const char* key) {
  const json* value = member(object, key);
  if (!value) return {};
  if (!value->is_string()) throw FieldError(std::string("\"") + key + "\" is not a string");
  return value->get<std::string>();
}

std::vector<std::string> strictStrings(const json& object, const char* key) {
  std::vector<std::string> out;
  const json* value = member(object, key);  // restic 0.14 prints "tags": null for no tags
  if (!value) return out;
  if (!value->is_array()) throw FieldError(std::string("\"") + key + "\" is not a list");
  for (const auto& item : *value) {
    if (!item.is_string()) throw FieldError(std::string("\"") + key + "\" holds something other than strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

core::Snapshot snapshotFromJson(const json& object) {
  if (!object.is_object()) throw FieldError("not a JSON object");
  core::Snapshot snapshot;
  snapshot.id = strictString(object, "id");
  if (snapshot.id.empty()) throw FieldError("missing \"id\"");
  snapshot.shortId = strictString(object, "short_id");
  // short_id is deprecated upstream; restic's own short form is the first 8 hex digits.
  if (snapshot.shortId.empty()) snapshot.shortId = snapshot.id.substr(0, 8);
  snapshot.time = strictString(object, "time");
  snapshot.hostname = strictString(object, "hostname");
  snapshot.username = strictString(object, "username");
  snapshot.paths = strictStrings(object, "paths");
  snapshot.tags = strictStrings(object, "tags");
  snapshot.parent = strictString(object, "parent");
  snapshot.tree = strictString(object, "tree");
  return snapshot;
}

core::JobProgress progressFromJson(const json& object) {
  core::JobProgress progress;
  // restic reports a fraction; the daemon's JobProgress.percent is 0-100.
  progress.percent = std::clamp(doubleOr(object, "percent_done") * 100.0, 0.0, 100.0);
  progress.bytesDone = countOr(object, "bytes_done");
  progress.bytesTotal = countOr(object, "total_bytes");
  progress.filesDone = countOr(object, "files_done");
  progress.filesTotal = countOr(object, "total_files");
  progress.secondsElapsed = std::max(0.0, doubleOr(object, "seconds_elapsed"));
  progress.secondsRemaining = optionalCount(object, "seconds_remaining");
  progress.currentFiles = stringsOf(object, "current_files");
  return progress;
}

core::BackupSummary summaryFromJson(const json& object) {
  core::BackupSummary summary;
  summary.snapshotId = stringOr(object, "snapshot_id");  // 0.14: the short id; 0.17+: the full id
  summary.filesNew = countOr(object, "files_new");
  summary.filesChanged = countOr(object, "files_changed");
  summary.filesUnmodified = countOr(object, "files_unmodified");
  summary.dirsNew = countOr(object, "dirs_new");
  summary.dirsChanged = countOr(object, "dirs_changed");
  summary.dirsUnmodified = countOr(object, "dirs_unmodified");
  summary.dataAdded = countOr(object, "data_added");
  summary.totalFilesProcessed = countOr(object, "total_files_processed");
  summary.totalBytesProcessed = countOr(object, "total_bytes_processed");
  summary.totalDuration = doubleOr(object, "total_duration");
  return summary;
}

BackupError errorFromJson(const json& object) {
  BackupError error;
  error.during = stringOr(object, "during");
  error.item = stringOr(object, "item");
  // 0.14 serialises the Go error value as it is: mostly an empty object, for an *os.PathError
  // {"Op":"read","Path":...,"Err":{}} (the cause is lost either way); 0.16+ as {"message": "..."}.
  std::string operation = "read";
  if (const json* inner = member(object, "error")) {
    if (inner->is_object()) {
      error.message = stringOr(*inner, "message");
      const std::string op = stringOr(*inner, "Op");
      if (!op.empty() && op.size() <= 16 && std::all_of(op.begin(), op.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
        operation = op;
    } else if (inner->is_string()) {
      error.message = inner->get<std::string>();
    }
  }
  if (error.message.empty()) error.message = stringOr(object, "message");
  if (error.message.empty()) {
    error.message = "could not " + operation + " " + (error.item.empty() ? std::string("an item") : error.item);
    if (!error.during.empty()) error.message += " during " + error.during;
  }
  return error;
}

core::Node nodeFromJson(const json& object) {
  core::Node node;
  node.path = stringOr(object, "path");
  node.name = stringOr(object, "name");
  if (node.name.empty()) {
    const auto slash = node.path.rfind('/');
    node.name = slash == std::string::npos ? node.path : node.path.substr(slash + 1);
  }
  node.type = stringOr(object, "type");
  // Only files have a meaningful size; restic prints "size": 0 for empty files.
  if (node.type == "file") node.size = countOr(object, "size");
  // Go's os.FileMode: permission bits plus type bits (1<<31 dir, 1<<27 symlink); it fits 32 bits.
  node.mode = static_cast<uint32_t>(countOr(object, "mode") & 0xffffffffu);
  node.permissions = stringOr(object, "permissions");
  node.uid = static_cast<uint32_t>(countOr(object, "uid") & 0xffffffffu);
  node.gid = static_cast<uint32_t>(countOr(object, "gid") & 0xffffffffu);
  node.mtime = stringOr(object, "mtime");
  // Neither 0.14 nor 0.18 print a symlink's target in `ls --json`; `find --json` calls it
  // "linktarget" in 0.14 and the documentation "link_target": take either if it ever appears.
  node.linkTarget = stringOr(object, "link_target", stringOr(object, "linktarget"));
  return node;
}

// "rest:https://user:secret@host/" -> "rest:https://user:***@host/". restic strips passwords
// from locations it prints, but a message we build must never depend on that.
std::string redactUrlPasswords(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const auto scheme = text.find("://", pos);
    if (scheme == std::string_view::npos) break;
    const auto authorityStart = scheme + 3;
    const auto authorityEnd = text.find_first_of("/ \t", authorityStart);
    const auto authority = text.substr(authorityStart, authorityEnd == std::string_view::npos
                                                           ? std::string_view::npos
                                                           : authorityEnd - authorityStart);
    const auto at = authority.rfind('@');
    const auto colon = at == std::string_view::npos ? std::string_view::npos : authority.substr(0, at).find(':');
    if (colon == std::string_view::npos) {
      out.append(text.substr(pos, authorityStart - pos));
      pos = authorityStart;
      continue;
    }
    out.append(text.substr(pos, authorityStart + colon + 1 - pos));
    out.append("***");
    pos = authorityStart + at;
  }
  out.append(text.substr(pos));
  return out;
}

// restic's stderr as plain lines: 0.17+ with --json wraps fatal errors into
// {"message_type":"exit_error","message":"Fatal: ...\n..."} and file errors into "error" lines.
std::vector<std::string> stderrLines(std::string_view stderrText) {
  std::vector<std::string> lines;
  for (const auto line : splitLines(stderrText)) {
    if (line.empty()) continue;
    if (const auto object = parseObject(line)) {
      const std::string type = stringOr(*object, "message_type");
      if (type == "exit_error") {
        const std::string message = stringOr(*object, "message");  // outlives the views splitLines returns
        for (const auto part : splitLines(message))
          if (!part.empty()) lines.push_back(redactUrlPasswords(part));
      } else if (type == "error") {
        lines.push_back(redactUrlPasswords(errorFromJson(*object).message));
      }
      continue;
    }
    lines.push_back(redactUrlPasswords(line));
  }
  return lines;
}

bool anyContains(const std::vector<std::string>& lines, std::string_view needle) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

std::string repositoryPrefix(std::string_view repositoryName) {
  return "repository \"" + std::string(repositoryName) + "\"";
}

constexpr std::string_view kNoRepositoryQuestion = "Is there a repository at the following location?";
constexpr std::string_view kWrongPassword = "wrong password or no key found";
constexpr std::string_view kAlreadyLocked = "repository is already locked";

// restic 0.18+ exit codes (0.14 uses 1 for all of these and needs its stderr read).
constexpr int kExitNoRepository = 10;
constexpr int kExitLocked = 11;
constexpr int kExitWrongPassword = 12;

Error noRepository(const std::vector<std::string>& lines, std::string_view repositoryName) {
  std::string location;
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    if (lines[i].find(kNoRepositoryQuestion) != std::string::npos) {
      location = lines[i + 1];
      break;
    }
  return Error(ErrorCode::NoRepository,
               repositoryPrefix(repositoryName) + ": there is no restic repository at " +
                   (location.empty() ? std::string("its location") : truncated(location)));
}

// What restic (and the ssh, rclone or HTTP client under it) prints when the server is not there, not trusted or
// refuses the login, and what that means for the user. restic 0.14 exits 1 for all of them and often adds its
// "Is there a repository" question too: these are looked for first.
struct UnreachableCause {
  std::string_view needle;
  std::string_view cause;
};
constexpr UnreachableCause kUnreachableCauses[] = {
    {"connection refused", "the server refused the connection (is it running, and is the port right?)"},
    {"Connection refused", "the server refused the connection (is it running, and is the port right?)"},
    {"no such host", "the server's name does not resolve"},
    {"Could not resolve hostname", "the server's name does not resolve"},
    {"network is unreachable", "the network is unreachable"},
    {"no route to host", "there is no route to the server"},
    {"No route to host", "there is no route to the server"},
    {"i/o timeout", "the server did not answer in time"},
    {"Connection timed out", "the server did not answer in time"},
    {"context deadline exceeded", "the server did not answer in time"},
    {"TLS handshake timeout", "the server did not answer in time"},
    {"connection reset by peer", "the server closed the connection"},
    {"Connection closed by", "the server closed the connection"},
    {"x509: certificate signed by unknown authority", "the server's TLS certificate is not trusted (give ca_cert)"},
    {"x509:", "the server's TLS certificate does not verify"},
    {"server gave HTTP response to HTTPS client", "the server speaks HTTP, not HTTPS"},
    {"Host key verification failed", "the server's host key does not match known_hosts"},
    {"REMOTE HOST IDENTIFICATION HAS CHANGED", "the server's host key does not match known_hosts"},
    {"Permission denied (", "the server refused the login (user or private key)"},
    {"SignatureDoesNotMatch", "the server refused the credentials (secret access key)"},
    {"The request signature we calculated does not match", "the server refused the credentials (secret access key)"},
    {"InvalidAccessKeyId", "the server refused the credentials (access key id)"},
    {"The AWS Access Key Id you provided does not exist", "the server refused the credentials (access key id)"},
    {"Access Denied", "the server denied access with these credentials"},
    {"AccessDenied", "the server denied access with these credentials"},
    {"401 Unauthorized", "the server refused the user or password"},
    {"unexpected HTTP response (401)", "the server refused the user or password"},
    {"403 Forbidden", "the server denied access with these credentials"},
    {"unexpected HTTP response (403)", "the server denied access with these credentials"},
    {"unable to start the sftp session", "the SFTP session could not be started"},
    {"error talking HTTP to rclone", "rclone could not reach the remote"},
};

std::optional<Error> unreachable(const std::vector<std::string>& lines, std::string_view repositoryName) {
  for (const auto& cause : kUnreachableCauses)
    for (const auto& line : lines)
      if (line.find(cause.needle) != std::string::npos) {
        const auto fatal = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return startsWith(l, "Fatal:"); });
        const std::string& said = line.find("Fatal:") == 0 || fatal == lines.end() ? line : *fatal;
        std::string detail = truncated(said);
        if (&said != &line) detail += " (" + truncated(line) + ")";
        return Error(ErrorCode::Unreachable,
                     repositoryPrefix(repositoryName) + ": cannot reach the repository: " + std::string(cause.cause) + "; restic: " + detail);
      }
  return std::nullopt;
}

Error locked(const std::vector<std::string>& lines, std::string_view repositoryName) {
  std::string lockLine = "the repository is locked";
  for (const auto& line : lines)
    if (const auto at = line.find(kAlreadyLocked); at != std::string::npos) {
      // Drop restic's "Fatal: unable to create lock in backend: " lead-in; keep who holds the lock.
      lockLine = truncated(std::string_view(line).substr(at));
      break;
    }
  return Error(ErrorCode::RepositoryLocked, repositoryPrefix(repositoryName) + " is locked by another process: " +
                                                lockLine + "; if that process is gone, run 'zerobytectl repo unlock " +
                                                std::string(repositoryName) + "'");
}

// The whole of `text` as one JSON document; `fail` turns the reason into the Error to throw.
template <typename Fail>
json parseDocument(std::string_view text, const Fail& fail) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag: it means nothing to a reader.
    std::string_view what = e.what();
    if (const auto close = what.find("] "); startsWith(what, "[json.exception") && close != std::string_view::npos)
      what.remove_prefix(close + 2);
    throw fail(what);
  }
}

// The full ids of one "keep" or "remove" list of a forget group. restic always prints both keys,
// null for an empty list; requiring them tells a group from, say, a snapshot list.
std::vector<std::string> forgetSnapshotIds(const json& group, const char* key) {
  std::vector<std::string> ids;
  if (!group.contains(key)) throw FieldError(std::string("missing \"") + key + "\"");
  const json* list = member(group, key);
  if (!list) return ids;
  if (!list->is_array()) throw FieldError(std::string("\"") + key + "\" is not a list");
  for (size_t i = 0; i < list->size(); ++i) {
    const json& snapshot = (*list)[i];
    const std::string where = std::string("\"") + key + "\" entry " + std::to_string(i + 1);
    if (!snapshot.is_object()) throw FieldError(where + " is not a JSON object");
    std::string id;
    try {
      id = strictString(snapshot, "id");
    } catch (const FieldError& e) {
      throw FieldError(where + ": " + e.what());
    }
    // The ids go back to restic and into job records: anything but hex means the output is not what we think.
    const bool hex = !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    if (!hex) throw FieldError(where + " has no hexadecimal \"id\"");
    ids.push_back(std::move(id));
  }
  return ids;
}

}  // namespace

std::optional<Version> parseVersion(std::string_view output) {
  for (const auto line : splitLines(output)) {
    if (!startsWith(line, "restic ")) continue;
    const std::string_view rest = line.substr(7);
    const char* p = rest.data();
    const char* const end = rest.data() + rest.size();
    int parts[3] = {0, 0, 0};
    int count = 0;
    while (count < 3 && p != end && *p >= '0' && *p <= '9') {
      const auto result = std::from_chars(p, end, parts[count]);
      if (result.ec != std::errc()) break;
      ++count;
      p = result.ptr;
      if (p == end || *p != '.') break;
      ++p;
    }
    // A missing patch number counts as 0; a lone number is not a version.
    if (count < 2) continue;
    Version version{parts[0], parts[1], parts[2], {}};
    version.text = std::to_string(version.major) + "." + std::to_string(version.minor) + "." + std::to_string(version.patch);
    return version;
  }
  return std::nullopt;
}

BackupEvent parseBackupLine(std::string_view line) {
  try {
    const auto object = parseObject(line);
    if (!object) return std::monostate{};
    const std::string type = stringOr(*object, "message_type");
    if (type == "status") {
      // 0.14 with --verbose also labels its "scan_finished" verbose line "status"; it carries no
      // progress and would reset the bar to zero.
      if (object->contains("action")) return std::monostate{};
      return progressFromJson(*object);
    }
    if (type == "summary") return summaryFromJson(*object);
    if (type == "error") return errorFromJson(*object);
  } catch (const std::exception&) {
    // Out of memory while copying strings, or a JSON oddity nlohmann rejects: the line is skipped.
  }
  return std::monostate{};
}

std::vector<core::Snapshot> parseSnapshots(std::string_view text) {
  const auto fail = [](std::string_view why) {
    return Error(ErrorCode::Failed, "cannot parse the snapshot list from restic: " + truncated(why));
  };
  if (trim(text).empty()) throw fail("the output is empty");
  const json document = parseDocument(text, fail);
  if (!document.is_array()) throw fail("expected a JSON list of snapshots, got " + std::string(document.type_name()));
  std::vector<core::Snapshot> snapshots;
  snapshots.reserve(document.size());
  for (size_t i = 0; i < document.size(); ++i) {
    try {
      snapshots.push_back(snapshotFromJson(document[i]));
    } catch (const FieldError& e) {
      throw fail("entry " + std::to_string(i + 1) + ": " + e.what());
    }
  }
  return snapshots;
}

std::vector<ForgetGroupResult> parseForgetOutput(std::string_view text) {
  const auto fail = [](std::string_view why) {
    return Error(ErrorCode::Failed, "cannot parse the output of restic forget: " + truncated(why));
  };
  // restic 0.14 prints nothing when no snapshot matches --tag and --host (a schedule's first run
  // on this host, or after its snapshots were forgotten by hand).
  if (trim(text).empty()) return {};
  const json document = parseDocument(text, fail);
  if (!document.is_array()) throw fail("expected a JSON list of groups, got " + std::string(document.type_name()));
  std::vector<ForgetGroupResult> groups;
  groups.reserve(document.size());
  for (size_t i = 0; i < document.size(); ++i) {
    try {
      if (!document[i].is_object()) throw FieldError("not a JSON object");
      groups.push_back(ForgetGroupResult{forgetSnapshotIds(document[i], "keep"), forgetSnapshotIds(document[i], "remove")});
    } catch (const FieldError& e) {
      throw fail("group " + std::to_string(i + 1) + ": " + e.what());
    }
  }
  return groups;
}

// One JSON object, or Error(Failed) saying what (`what`: "the output of restic stats") was not.
static json parseObjectDocument(std::string_view text, const std::string& what) {
  const auto fail = [&what](std::string_view why) { return Error(ErrorCode::Failed, "cannot parse " + what + ": " + truncated(why)); };
  json document = parseDocument(trim(text), fail);
  if (!document.is_object()) throw fail("expected a JSON object, got " + std::string(document.type_name()));
  return document;
}

RepositoryStats parseStats(std::string_view text) {
  const json document = parseObjectDocument(text, "the output of restic stats");
  RepositoryStats stats;
  stats.totalSize = countOr(document, "total_size");
  stats.totalUncompressedSize = countOr(document, "total_uncompressed_size");
  stats.compressionRatio = doubleOr(document, "compression_ratio");
  stats.compressionSpaceSaving = doubleOr(document, "compression_space_saving");
  stats.blobCount = countOr(document, "total_blob_count");
  stats.snapshotsCount = countOr(document, "snapshots_count");
  return stats;
}

std::vector<std::string> parseLockIds(std::string_view text) {
  std::vector<std::string> ids;
  for (auto line : splitLines(text)) {
    line = trim(line);
    if (line.size() == 64 && std::all_of(line.begin(), line.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
      ids.emplace_back(line);
  }
  return ids;
}

LockInfo parseLock(std::string_view text) {
  const json document = parseObjectDocument(text, "a restic lock");
  LockInfo lock;
  lock.time = stringOr(document, "time");
  const json* exclusive = member(document, "exclusive");
  lock.exclusive = exclusive && exclusive->is_boolean() && exclusive->get<bool>();
  lock.hostname = stringOr(document, "hostname");
  lock.username = stringOr(document, "username");
  lock.pid = static_cast<int64_t>(countOr(document, "pid"));
  return lock;
}

std::string describeLock(const LockInfo& lock) {
  return std::string(lock.exclusive ? "exclusive" : "shared") + " lock of pid " + std::to_string(lock.pid) + " on host " +
         truncated(lock.hostname.empty() ? "?" : lock.hostname) + " by " + truncated(lock.username.empty() ? "?" : lock.username) +
         " since " + truncated(lock.time.substr(0, 19));
}

std::variant<std::monostate, core::Snapshot, core::Node> parseLsLine(std::string_view line) {
  try {
    const auto object = parseObject(line);
    if (!object) return std::monostate{};
    // 0.14-0.16 name the kind in "struct_type"; 0.17+ add "message_type" (and keep struct_type).
    std::string kind = stringOr(*object, "message_type");
    if (kind.empty()) kind = stringOr(*object, "struct_type");
    if (kind == "snapshot") return snapshotFromJson(*object);
    if (kind == "node") {
      auto node = nodeFromJson(*object);
      if (node.path.empty()) return std::monostate{};
      return node;
    }
  } catch (const std::exception&) {
    // A snapshot header with wrong field types, or out of memory: not a line we can use.
  }
  return std::monostate{};
}

Error classifyFailure(int exitCode, std::string_view stderrText, std::string_view repositoryName) {
  const auto lines = stderrLines(stderrText);

  if (anyContains(lines, "config file already exists"))
    return Error(ErrorCode::AlreadyExists, repositoryPrefix(repositoryName) +
                                               ": there is a restic repository at that location already; adopt it with "
                                               "'zerobytectl repo import' and its password");
  if (exitCode != kExitNoRepository && exitCode != kExitWrongPassword && exitCode != kExitLocked)
    if (auto error = unreachable(lines, repositoryName)) return *error;
  if (exitCode == kExitNoRepository || anyContains(lines, kNoRepositoryQuestion))
    return noRepository(lines, repositoryName);
  if (exitCode == kExitWrongPassword || anyContains(lines, kWrongPassword))
    return Error(ErrorCode::WrongPassword,
                 repositoryPrefix(repositoryName) + ": the password is wrong (restic: wrong password or no key found)");
  if (exitCode == kExitLocked || anyContains(lines, kAlreadyLocked)) return locked(lines, repositoryName);

  std::string quoted;
  const auto fatal = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return startsWith(l, "Fatal:"); });
  if (fatal != lines.end()) quoted = *fatal;
  else if (!lines.empty()) quoted = lines.back();

  std::string message = repositoryName.empty() ? std::string() : repositoryPrefix(repositoryName) + ": ";
  message += "restic failed (exit " + std::to_string(exitCode) + ")";
  message += quoted.empty() ? std::string(" without a message") : ": " + truncated(quoted);
  return Error(ErrorCode::Failed, message);
}

}  // namespace zerobyte::restic
