// Private pieces of the service layer shared by its translation units.
#pragma once

#include "daemon/api/service.h"
#include "daemon/loop/event_loop.h"

#include <memory>
#include <string>
#include <vector>

namespace zerobyte::api {

struct Service::ActiveJob {
  core::Job job;
  core::Repository repository;
  core::RepositoryLocks::Ticket ticket = 0;
  std::shared_ptr<process::Process> process;
  std::vector<RequestPtr> followers;
  uint64_t lastPushUsec = 0;
  std::unique_ptr<loop::TimerSource> pushTimer;
  std::string stderrTail;  // for classifying failures
  std::string output;      // retention: restic's whole stdout (bounded)
  bool outputTruncated = false;
  bool retriedAfterUnlock = false;
  std::string successMessage;  // the message when it succeeds, when its operation's usual one says too little  // restic found the repository locked once: stale locks were removed
  std::string cancelReason;
  std::optional<Error> error;  // why it failed, classified (set when it ends failed)
  std::function<void(ActiveJob&, bool success)> onFinished;
  std::shared_ptr<Task> task;
  // restic retrying a failing server ("... returned error, retrying after ..."): when it last did, the line, and the
  // watch that gives up after repository_retry_seconds. `gaveUp`: the job was stopped for it, with this error.
  uint64_t lastRetryUsec = 0;
  std::string lastRetryLine;
  std::unique_ptr<loop::TimerSource> retryWatch;
  std::optional<Error> gaveUp;
  // Whether restic printed anything yet, and the watch for a server that never answers (remote repositories).
  bool anyOutput = false;
  std::unique_ptr<loop::TimerSource> silenceWatch;
};

struct Service::Task {
  core::Repository repository;
  core::LockMode mode = core::LockMode::Shared;
  std::function<std::vector<std::string>(const restic::RepositoryContext&)> args;
  std::optional<std::string> passwordOverride;
  std::optional<uint32_t> runAsUid;  // default: runAsOf(repository)
  std::function<void(std::string_view)> onStdout;
  std::function<void(std::string_view)> onStderr;
  std::function<void(std::shared_ptr<process::Process>)> onStarted;
  // Exactly once: with the result, or with the error that kept the child from starting.
  std::function<void(const process::ProcessResult*, std::optional<Error>)> onDone;
  // Set when withdrawn before its child started (a granted start that is still posted checks it).
  bool withdrawn = false;
  // A job's restic run counts toward daemon.max_concurrent_jobs (snapshot listings and browsing do not).
  bool countsTowardLimit = false;
  bool holdsSlot = false;
  // A backup of a network volume: mounted (and found healthy) before restic starts, released after it ends.
  std::optional<core::Volume> mountVolume;
  bool holdsMount = false;
  // A restore split in two, for someone who may restore an admin's repository but not read it (an operator):
  // restic runs as root and writes the snapshot as a tar stream (restic dump), and tar extracts it as that user.
  // The repository, its password and its server's credentials stay with root; the files are written only where
  // the user could write them, with the user as their owner.
  struct Extract {
    users::Identity as;
    std::string target;
    std::vector<std::string> members;  // tar member names (paths without the leading "/"); empty: everything
  };
  std::optional<Extract> extract;
};

struct Service::SplitRestore {
  std::optional<process::ProcessResult> restic, tar;
  std::optional<Error> tarError;  // tar could not be started
  std::string tarReason;          // what tar said first (its "Exiting with failure status" comes last)
  bool streamCut = false;         // tar found the stream empty or cut short: restic's failure is the cause
  bool finished = false;
};

// The run of a schedule that has not ended: its job (backup, then retention), or a retry waiting for its time.
struct Service::ScheduleRun {
  uint64_t jobId = 0;  // 0 while a retry waits
  uint32_t attempt = 1;
  std::string trigger;
  std::unique_ptr<loop::TimerSource> retryTimer;
};

// Parameter access after the dispatcher checked types (see MethodSpec).
std::string stringParam(const nlohmann::json& p, const char* key);
std::optional<std::string> optionalStringParam(const nlohmann::json& p, const char* key);
std::vector<std::string> stringListParam(const nlohmann::json& p, const char* key);
std::optional<int64_t> optionalIntParam(const nlohmann::json& p, const char* key);
bool boolParam(const nlohmann::json& p, const char* key);
// Every field of CreateRepository and ImportRepository besides name, type, group and password, in wire names.
const std::vector<std::string>& repositoryParameters();
// Whether the request has `key` with a non-null value.
bool present(const nlohmann::json& p, const std::string& key);
// "name=value" items of rclone_options, or of rclone_secret_options (`secret`: each value a reference).
std::vector<core::RcloneOption> rcloneOptionsParam(const nlohmann::json& p, const char* key, bool secret);

// A request whose final answer is also written to the audit trail ("ok" or "failed: <error>").
RequestPtr auditedRequest(RequestPtr inner, AuditLog& audit, Action action, std::string_view method, std::string resource);

// This machine's host name, as restic records it in snapshots (--host of scheduled backups and their retention).
std::string hostName();

// Random hex id for new resources.
std::string newId();

// mkdir 0700 unless it exists (restic's cache directories). Throws Error(Failed).
void ensureDirectory(const std::string& path);

}  // namespace zerobyte::api
