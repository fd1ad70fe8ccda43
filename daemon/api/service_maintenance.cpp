// The service layer: repository maintenance on demand (prune, unlock, remove every lock, stats) and the short
// restic queries behind them and the retention preview.
#include "daemon/api/json_mapping.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/log/log.h"
#include "daemon/store/store.h"

namespace zerobyte::api {

using nlohmann::json;

namespace {
constexpr size_t kMaxQueryStderrBytes = 16 * 1024;
constexpr size_t kMaxLocksDescribed = 50;
}  // namespace

void Service::runQuery(const core::Repository& repository, std::function<std::vector<std::string>(const restic::RepositoryContext&)> args,
                       std::function<void(std::optional<Error>, const std::string&)> done, size_t maxOutputBytes) {
  auto output = std::make_shared<std::string>();
  auto stderrText = std::make_shared<std::string>();
  auto task = std::make_shared<Task>();
  task->repository = repository;
  task->mode = core::LockMode::Shared;
  task->args = std::move(args);
  task->onStdout = [output, maxOutputBytes](std::string_view line) {
    if (output->size() + line.size() < maxOutputBytes) {
      output->append(line);
      output->push_back('\n');
    }
  };
  task->onStderr = [stderrText](std::string_view line) {
    if (stderrText->size() < kMaxQueryStderrBytes) {
      stderrText->append(line);
      stderrText->push_back('\n');
    }
  };
  std::string name = repository.name;
  task->onDone = [output, stderrText, name, done = std::move(done)](const process::ProcessResult* result, std::optional<Error> failure) {
    if (failure) return done(failure, *output);
    if (!result->success())
      return done(restic::classifyFailure(result->signal ? 128 + result->signal : result->exitCode, *stderrText, name), *output);
    done(std::nullopt, *output);
  };
  runTask(task);
}

void Service::pruneRepository(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  core::Job job;
  job.operation = core::JobOperation::Prune;
  job.startedByUid = r->caller().uid;
  uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
  r->reply({{"job", toJson(*findJob(id))}});
}

void Service::unlockRepository(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  core::Job job;
  job.operation = core::JobOperation::Unlock;
  job.startedByUid = r->caller().uid;
  uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
  r->reply({{"job", toJson(*findJob(id))}});
}

// The escape hatch: every lock goes, live ones too. Whose they are is read first (restic list locks, cat lock),
// named in the reply, the job's message and the audit trail.
void Service::removeAllRepositoryLocks(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  runQuery(repo, [](const restic::RepositoryContext& ctx) { return restic::listLocksArgs(ctx); },
           [this, r, repo](std::optional<Error> error, const std::string& output) {
             if (error) {
               m_audit.record(r->caller(), Action::Admin, "RemoveAllRepositoryLocks", "repository \"" + repo.name + "\"",
                              "failed: " + std::string(errorName(error->code())));
               return r->fail(*error);
             }
             auto ids = restic::parseLockIds(output);
             auto holders = std::make_shared<std::vector<std::string>>();
             describeLocks(repo, std::make_shared<std::vector<std::string>>(std::move(ids)), 0, holders,
                           [this, r, repo, holders] {
                             core::Job job;
                             job.operation = core::JobOperation::UnlockAll;
                             job.startedByUid = r->caller().uid;
                             for (const auto& h : *holders) appendLog(job, "lock: " + h);
                             std::string whose = holders->empty() ? std::string("there were no locks")
                                                                  : std::to_string(holders->size()) + " lock(s): ";
                             for (size_t i = 0; i < holders->size(); ++i) whose += (i ? "; " : "") + (*holders)[i];
                             uint64_t id = submitJob(std::move(job), repo, std::nullopt, nullptr);
                             if (auto it = m_jobs.find(id); it != m_jobs.end())
                               it->second->successMessage = "removed every lock of repository \"" + repo.name + "\": " + whose;
                             log::notice("uid " + std::to_string(r->caller().uid) + " removes every lock of repository \"" +
                                         repo.name + "\": " + whose);
                             m_audit.record(r->caller(), Action::Admin, "RemoveAllRepositoryLocks",
                                            "repository \"" + repo.name + "\"", "removing " + whose + " (job " + std::to_string(id) + ")");
                             r->reply({{"job", toJson(*findJob(id))}, {"locks", *holders}});
                           });
           });
}

void Service::describeLocks(const core::Repository& repo, std::shared_ptr<std::vector<std::string>> ids, size_t index,
                            std::shared_ptr<std::vector<std::string>> holders, std::function<void()> done) {
  if (index >= ids->size() || index >= kMaxLocksDescribed) {
    if (ids->size() > kMaxLocksDescribed)
      holders->push_back("and " + std::to_string(ids->size() - kMaxLocksDescribed) + " more");
    return done();
  }
  std::string id = (*ids)[index];
  runQuery(repo, [id](const restic::RepositoryContext& ctx) { return restic::catLockArgs(ctx, id); },
           [this, repo, ids, index, holders, done, id](std::optional<Error> error, const std::string& output) {
             // A lock removed meanwhile (its holder ended) cannot be read: it is no longer there to remove.
             if (!error) {
               try {
                 holders->push_back(restic::describeLock(restic::parseLock(output)));
               } catch (const Error& e) {
                 holders->push_back("lock " + id.substr(0, 8) + " (unreadable: " + e.what() + ")");
               }
             }
             describeLocks(repo, ids, index + 1, holders, done);
           });
}

void Service::getRepositoryStats(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "name"));
  runQuery(repo, [](const restic::RepositoryContext& ctx) { return restic::statsArgs(ctx); },
           [r, name = repo.name](std::optional<Error> error, const std::string& output) {
             if (!r->alive()) return;
             if (error) return r->fail(*error);
             restic::RepositoryStats stats;
             try {
               stats = restic::parseStats(output);
             } catch (const Error& e) {
               return r->fail(e);
             }
             r->reply({{"repository", name},
                       {"total_size", stats.totalSize},
                       {"total_uncompressed_size", stats.totalUncompressedSize},
                       {"compression_ratio", stats.compressionRatio},
                       {"compression_space_saving", stats.compressionSpaceSaving},
                       {"blob_count", stats.blobCount},
                       {"snapshot_count", stats.snapshotsCount}});
           });
}

}  // namespace zerobyte::api
