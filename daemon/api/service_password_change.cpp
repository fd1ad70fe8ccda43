// The service layer: changing a repository's password with restic key add/remove, in an order that always leaves a known working key.
//
// The steps, under one exclusive repository lock:
//   1. a new 256-bit password is generated and stored, sealed, as the record's pendingPassword;
//   2. `restic key list` with the old password names the old key (the one marked current);
//   3. `restic key add` with the old password on fd 3 and the new one on fd 4;
//   4. `restic cat config` with the new password proves that it opens the repository;
//   5. one transaction makes the new password the password and drops the pending one;
//   6. `restic key remove <old key>` with the new password.
// Until 5 the stored password is the old one, whose key is still there; from 5 on it is the new
// one, proven by 4. A restart in between finds the pending password and resumes at 4 (a "resume"
// job): if the new password opens the repository it is finished (5, 6), else it is dropped.
#include "daemon/api/json_mapping.h"
#include "daemon/api/master_key_rotation.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/repository_backend.h"
#include "daemon/log/log.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"

namespace zerobyte::api {

namespace {

constexpr size_t kMaxStepOutput = 1024 * 1024;
constexpr size_t kStepStderrTail = 16 * 1024;
constexpr int kOldPasswordFd = 3;
constexpr int kNewPasswordFd = 4;

bool wasCancelled(const process::ProcessResult* result, const std::optional<Error>& failure) {
  return (result && result->cancelled) || (failure && failure->code() == ErrorCode::Cancelled);
}

}  // namespace

struct Service::PasswordChange {
  uint64_t jobId = 0;
  core::RepositoryLocks::Ticket ticket = 0;
  core::Repository repository;
  bool resume = false;
  secrets::SecretString oldPassword;  // empty when a resume cannot open it
  secrets::SecretString newPassword;
  std::string oldKeyId;
  bool oldKeyGone = false;  // resume: the old password opens nothing any more
  std::optional<Error> keyAddError;
  std::string output;  // the running step's stdout
  std::string stderrTail;

  std::string step(int number, const std::string& text) const {
    return resume ? text : "step " + std::to_string(number) + "/6: " + text;
  }
  Error classify(const process::ProcessResult& result) const {
    int code = result.signal ? 128 + result.signal : result.exitCode;
    return restic::classifyFailure(code, stderrTail, repository.name);
  }
};

uint64_t Service::submitPasswordChange(core::Job job, const core::Repository& repository, bool resume) {
  job.operation = core::JobOperation::ChangePassword;
  job.runAsUid = runAsOf(repository);
  ActiveJob& active = registerJob(std::move(job), repository, nullptr);
  auto change = std::make_shared<PasswordChange>();
  change->jobId = active.job.id;
  change->repository = repository;
  change->resume = resume;
  // The task only carries "withdrawn" for a cancel or a shutdown while the job waits for the lock.
  auto task = std::make_shared<Task>();
  task->repository = repository;
  task->mode = core::LockMode::Exclusive;
  active.task = task;
  active.ticket = m_locks.acquire(repository.id, core::LockMode::Exclusive, [this, task, change](core::RepositoryLocks::Ticket ticket) {
    // Start on the next iteration: never inside acquire()/release() of the lock table.
    m_loop.post([this, task, change, ticket] {
      if (task->withdrawn) return;
      change->ticket = ticket;
      beginPasswordChange(change);
    });
  });
  if (onJobsChanged) onJobsChanged();
  return change->jobId;
}

void Service::passwordChangeLog(const std::shared_ptr<PasswordChange>& change, const std::string& line) {
  if (auto it = m_jobs.find(change->jobId); it != m_jobs.end()) appendLog(it->second->job, line);
}

void Service::beginPasswordChange(const std::shared_ptr<PasswordChange>& change) {
  auto it = m_jobs.find(change->jobId);
  if (it == m_jobs.end()) {
    m_locks.release(change->ticket);
    return;
  }
  if (m_stopping) return endPasswordChange(change, core::JobState::Cancelled, "cancelled before it started: zerobyted is stopping");
  ActiveJob& a = *it->second;
  a.job.state = core::JobState::Running;
  a.job.started = now();
  persist(a.job);
  log::info("job " + std::to_string(a.job.id) + " (change-password, repository \"" + a.job.repositoryName + "\") started" +
            (change->resume ? ": finishing a password change zerobyted was stopped in" : ""));
  pushProgress(a, true);
  if (onJobsChanged) onJobsChanged();

  try {
    auto stored = m_store.repository(change->repository.id);
    if (!stored) throw Error(ErrorCode::NotFound, "repository \"" + change->repository.name + "\" was removed");
    change->repository = *stored;
    if (change->resume) {
      if (stored->pendingPassword.empty())
        return endPasswordChange(change, core::JobState::Succeeded, "no password change was pending");
      change->newPassword = m_vault.open(stored->pendingPassword, pendingPasswordRecord(*stored));
      try {
        change->oldPassword = m_vault.open(stored->password, passwordRecord(*stored));
      } catch (const Error& e) {
        passwordChangeLog(change, std::string("the old password cannot be read, so its key cannot be removed: ") + e.what());
      }
      passwordChangeLog(change, "resuming a password change zerobyted was stopped in: does the new password open the repository?");
      return passwordChangeVerify(change);
    }
    change->oldPassword = m_vault.open(stored->password, passwordRecord(*stored));
    change->newPassword = secrets::randomPassword();
    stored->pendingPassword = m_vault.seal(change->newPassword.value(), pendingPasswordRecord(*stored));
    auto txn = m_store.begin();
    txn.put(*stored);
    txn.commit();
    change->repository = *stored;
  } catch (const Error& e) {
    return endPasswordChange(change, core::JobState::Failed, e.what(), e);
  }
  passwordChangeLog(change, change->step(1, "generated a new 256-bit password and stored it, sealed, as the pending password"));
  passwordChangeKeyList(change);
}

void Service::runPasswordChangeStep(const std::shared_ptr<PasswordChange>& change, ArgsBuilder args,
                                    std::vector<std::pair<int, std::string>> secrets, bool logStdout, StepDone done) {
  auto it = m_jobs.find(change->jobId);
  if (it == m_jobs.end()) return;
  if (m_stopping) return done(nullptr, Error(ErrorCode::Cancelled, "zerobyted is stopping"));
  change->output.clear();
  change->stderrTail.clear();
  std::shared_ptr<process::Process> child;
  try {
    const uint32_t runAs = runAsOf(change->repository);
    process::ProcessSpec spec;
    spec.secrets = std::move(secrets);
    auto launch = prepareRestic(change->repository, runAs, spec);
    spec.argv = args(launch.ctx);
    spec.killGrace = std::chrono::seconds(m_settings.cancelGraceSeconds);
    process::ProcessCallbacks callbacks;
    callbacks.onStdoutLine = [this, change, logStdout](std::string_view line) {
      if (change->output.size() + line.size() < kMaxStepOutput) {
        change->output.append(line);
        change->output.push_back('\n');
      }
      if (logStdout) passwordChangeLog(change, std::string(line));
    };
    auto onStderr = [this, change](std::string_view line) {
      change->stderrTail.append(line);
      change->stderrTail.push_back('\n');
      if (change->stderrTail.size() > kStepStderrTail)
        change->stderrTail.erase(0, change->stderrTail.size() - kStepStderrTail);
      passwordChangeLog(change, std::string(line));
    };
    callbacks.onStderrLine = onStderr;
    callbacks.onExit = [this, done, onStderr, files = launch.files, log = launch.helperLog](const process::ProcessResult& result) {
      replayHelperLog(log, onStderr);
      // The next step starts on the next iteration, not inside the runner's exit handling.
      m_loop.post([this, done, result] {
        done(&result, std::nullopt);
        checkShutdownDone();
      });
    };
    child = m_runner.start(std::move(spec), std::move(callbacks));
  } catch (const Error& e) {
    return done(nullptr, e);
  }
  ActiveJob& a = *it->second;
  a.process = child;
  a.job.childPid = child->pid();
  persist(a.job);
}

void Service::passwordChangeKeyList(const std::shared_ptr<PasswordChange>& change) {
  runPasswordChangeStep(
      change, [](const restic::RepositoryContext& ctx) { return restic::keyListArgs(ctx); }, {{kOldPasswordFd, change->oldPassword.value()}}, false,
      [this, change](const process::ProcessResult* result, std::optional<Error> failure) {
        std::optional<Error> error = failure;
        std::optional<std::string> keyId;
        size_t keyCount = 0;
        if (!error && result && !result->cancelled && !result->success()) error = change->classify(*result);
        if (!error && result && !result->cancelled) {
          try {
            auto keys = restic::parseKeyList(change->output);
            keyCount = keys.size();
            keyId = restic::currentKeyId(keys);
            if (!keyId) error = Error(ErrorCode::Failed, "restic key list marks no key as the current one");
          } catch (const Error& e) {
            error = e;
          }
        }
        if (change->resume) {
          // The change itself is done: the list only names the key to remove.
          if (wasCancelled(result, failure))
            return endPasswordChange(change, core::JobState::Cancelled,
                                     "cancelled: zerobyted is stopping; it finishes the password change at its next start");
          if (keyId) {
            change->oldKeyId = *keyId;
            passwordChangeLog(change, "restic key list with the old password: its key is " + *keyId);
          } else if (error && error->code() == ErrorCode::WrongPassword) {
            change->oldKeyGone = true;
            passwordChangeLog(change, "the old password opens the repository no more: its key is gone");
          } else if (error) {
            passwordChangeLog(change, std::string("cannot tell the old key: ") + error->what());
          }
          return passwordChangeSwitch(change);
        }
        if (wasCancelled(result, failure)) {
          dropPendingPassword(change);
          return endPasswordChange(change, core::JobState::Cancelled, "cancelled before the repository was changed: zerobyted is stopping");
        }
        if (error) {
          dropPendingPassword(change);
          return endPasswordChange(change, core::JobState::Failed, error->what(), error);
        }
        change->oldKeyId = *keyId;
        passwordChangeLog(change, change->step(2, "restic key list: the current key is " + *keyId + " (" +
                                                      std::to_string(keyCount) + " key(s))"));
        passwordChangeKeyAdd(change);
      });
}

void Service::passwordChangeKeyAdd(const std::shared_ptr<PasswordChange>& change) {
  runPasswordChangeStep(
      change, [](const restic::RepositoryContext& ctx) { return restic::keyAddArgs(ctx, kNewPasswordFd); },
      {{kOldPasswordFd, change->oldPassword.value()}, {kNewPasswordFd, change->newPassword.value()}}, true,
      [this, change](const process::ProcessResult* result, std::optional<Error> failure) {
        if (wasCancelled(result, failure))
          return endPasswordChange(change, core::JobState::Cancelled,
                                   "cancelled while restic key add ran: zerobyted is stopping; at its next start it "
                                   "checks which password opens the repository");
        if (!result) {
          // restic never ran: the repository is as it was.
          dropPendingPassword(change);
          return endPasswordChange(change, core::JobState::Failed, failure ? failure->what() : "restic did not start", failure);
        }
        if (!result->success()) {
          change->keyAddError = change->classify(*result);
          passwordChangeLog(change, std::string("restic key add failed: ") + change->keyAddError->what());
        } else {
          passwordChangeLog(change, change->step(3, "restic key add: the new key was added"));
        }
        // Whatever key add said, the repository decides: does the new password open it?
        passwordChangeVerify(change);
      });
}

void Service::passwordChangeVerify(const std::shared_ptr<PasswordChange>& change) {
  runPasswordChangeStep(
      change, [](const restic::RepositoryContext& ctx) { return restic::catConfigArgs(ctx); }, {{kOldPasswordFd, change->newPassword.value()}}, false,
      [this, change](const process::ProcessResult* result, std::optional<Error> failure) {
        const std::string later = "; zerobyted checks again at its next start";
        if (wasCancelled(result, failure))
          return endPasswordChange(change, core::JobState::Cancelled,
                                   "cancelled: zerobyted is stopping; at its next start it checks which password opens "
                                   "the repository");
        if (!result)
          return endPasswordChange(change, core::JobState::Failed,
                                   std::string("cannot check the new password: ") + (failure ? failure->what() : "") + later,
                                   failure);
        if (!result->success()) {
          Error e = change->classify(*result);
          if (e.code() != ErrorCode::WrongPassword)
            return endPasswordChange(change, core::JobState::Failed,
                                     std::string("cannot check whether the new password opens the repository: ") + e.what() + later, e);
          // The new key is not in the repository: the old password stays, the new one is dropped.
          dropPendingPassword(change);
          if (change->resume)
            return endPasswordChange(change, core::JobState::Succeeded,
                                     "the password change zerobyted was stopped in had not reached the repository; "
                                     "its password is unchanged");
          Error reason = change->keyAddError ? *change->keyAddError : e;
          return endPasswordChange(change, core::JobState::Failed,
                                   std::string("the new key was not added; the password is unchanged: ") + reason.what(), reason);
        }
        passwordChangeLog(change, change->step(4, "the new password opens the repository (restic cat config)"));
        if (change->resume && !change->oldPassword.empty()) return passwordChangeKeyList(change);
        passwordChangeSwitch(change);
      });
}

void Service::passwordChangeSwitch(const std::shared_ptr<PasswordChange>& change) {
  try {
    auto stored = m_store.repository(change->repository.id);
    if (!stored) throw Error(ErrorCode::NotFound, "repository \"" + change->repository.name + "\" was removed");
    stored->password = m_vault.seal(change->newPassword.value(), passwordRecord(*stored));
    stored->pendingPassword = {};
    auto txn = m_store.begin();
    txn.put(*stored);
    txn.commit();
    change->repository = *stored;
  } catch (const Error& e) {
    return endPasswordChange(change, core::JobState::Failed,
                             std::string("the new password opens the repository, but storing it failed: ") + e.what() +
                                 "; zerobyted finishes the change at its next start",
                             e);
  }
  passwordChangeLog(change, change->step(5, "the new password is now the repository's password"));
  passwordChangeRemoveOldKey(change);
}

void Service::passwordChangeRemoveOldKey(const std::shared_ptr<PasswordChange>& change) {
  const std::string done = change->resume ? "finished the password change zerobyted was stopped in" : "password changed";
  if (change->oldKeyId.empty()) {
    if (change->oldKeyGone || !change->resume)
      return endPasswordChange(change, core::JobState::Succeeded, done + "; the old key was already gone");
    return endPasswordChange(change, core::JobState::Warning,
                             done + "; the old key could not be identified and may remain in the repository: see "
                                    "'restic key list'");
  }
  const std::string keyId = change->oldKeyId;
  runPasswordChangeStep(
      change, [keyId](const restic::RepositoryContext& ctx) { return restic::keyRemoveArgs(ctx, keyId); }, {{kOldPasswordFd, change->newPassword.value()}}, true,
      [this, change, done, keyId](const process::ProcessResult* result, std::optional<Error> failure) {
        if (result && result->success()) {
          passwordChangeLog(change, change->step(6, "restic key remove " + keyId + ": the old key was removed"));
          return endPasswordChange(change, core::JobState::Succeeded, done + "; the old key " + keyId + " was removed");
        }
        std::string why = wasCancelled(result, failure) ? std::string("interrupted: zerobyted is stopping")
                          : result                      ? std::string(change->classify(*result).what())
                          : failure                     ? std::string(failure->what())
                                                        : std::string("restic did not start");
        passwordChangeLog(change, "restic key remove " + keyId + " failed: " + why);
        endPasswordChange(change, core::JobState::Warning,
                          done + ", but the old key " + keyId + " remains in the repository (" + why +
                              "); remove it with 'restic -r " + core::describeRepository(change->repository) + " key remove " + keyId +
                              "' and the password 'zerobytectl repo password " + change->repository.name + " --reveal' prints");
      });
}

void Service::dropPendingPassword(const std::shared_ptr<PasswordChange>& change) {
  try {
    auto stored = m_store.repository(change->repository.id);
    if (!stored || stored->pendingPassword.empty()) return;
    stored->pendingPassword = {};
    auto txn = m_store.begin();
    txn.put(*stored);
    txn.commit();
    passwordChangeLog(change, "the new password was dropped; the repository keeps its password");
  } catch (const Error& e) {
    // It stays pending: the next start checks it again.
    log::error("repository \"" + change->repository.name + "\": cannot drop the pending password: " + e.what());
  }
}

void Service::endPasswordChange(const std::shared_ptr<PasswordChange>& change, core::JobState state, std::string message,
                                std::optional<Error> error) {
  m_locks.release(change->ticket);
  auto it = m_jobs.find(change->jobId);
  if (it == m_jobs.end()) return;
  ActiveJob& a = *it->second;
  a.job.state = state;
  a.job.message = std::move(message);
  a.error = std::move(error);
  completeJob(change->jobId);
}

}  // namespace zerobyte::api
