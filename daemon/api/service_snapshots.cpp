// The service layer: the snapshot cache and browsing snapshots.
#include "daemon/api/json_mapping.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/core/validation.h"
#include "daemon/log/log.h"
#include "daemon/store/store.h"

namespace zerobyte::api {

using nlohmann::json;

namespace {
constexpr size_t kMaxSnapshotListBytes = 256 * 1024 * 1024;
constexpr size_t kBatchSize = 500;
constexpr size_t kMaxUnstreamedNodes = 200000;
}  // namespace

void Service::invalidateSnapshots(const std::string& repositoryId, bool refreshNow) {
  auto cache = m_store.snapshotCache(repositoryId);
  if (cache && cache->refreshed != 0) {
    // refreshed == 0 marks the cache stale (kept across restarts).
    cache->refreshed = 0;
    auto txn = m_store.begin();
    txn.put(*cache);
    txn.commit();
  }
  if (!refreshNow) return;
  for (const auto& repo : allRepositories()) {
    if (repo.id != repositoryId) continue;
    refreshSnapshots(repo, [this, name = repo.name](std::optional<Error> error, const std::vector<core::Snapshot>&) {
      // A refresh cut short by shutdown is expected; the stale mark makes the next start refresh.
      if (error && !m_stopping) log::warning("cannot refresh the snapshot list of repository \"" + name + "\": " + error->what());
    });
  }
}

void Service::refreshSnapshots(const core::Repository& repository,
                               std::function<void(std::optional<Error>, const std::vector<core::Snapshot>&)> done) {
  auto& waiters = m_snapshotRefreshes[repository.id];
  waiters.push_back(std::move(done));
  if (waiters.size() > 1) return;  // one restic run serves everyone who asked meanwhile
  std::string id = repository.id;
  auto args = [](const restic::RepositoryContext& ctx) { return restic::snapshotsArgs(ctx); };
  runQuery(repository, args, [this, id](std::optional<Error> failure, const std::string& output) {
    std::vector<core::Snapshot> snapshots;
    std::optional<Error> error = failure;
    if (!error) {
      try {
        snapshots = restic::parseSnapshots(output);
        core::SnapshotCache cache;
        cache.repositoryId = id;
        cache.refreshed = now();
        cache.snapshots = snapshots;
        // The repository may have been removed meanwhile: do not resurrect its cache.
        bool exists = false;
        for (const auto& repo : allRepositories()) exists = exists || repo.id == id;
        if (exists) {
          auto txn = m_store.begin();
          txn.put(cache);
          txn.commit();
        }
      } catch (const Error& e) {
        error = e;
      }
    }
    auto waiting = std::move(m_snapshotRefreshes[id]);
    m_snapshotRefreshes.erase(id);
    if (!error) resourcesChanged();
    for (auto& w : waiting) w(error, snapshots);
  }, kMaxSnapshotListBytes);
}

void Service::listSnapshots(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "repository"));
  bool refresh = boolParam(p, "refresh");
  if (!refresh) {
    auto cache = m_store.snapshotCache(repo.id);
    if (cache && cache->refreshed != 0) {
      json list = json::array();
      for (const auto& s : cache->snapshots) list.push_back(toJson(s));
      r->reply({{"snapshots", list}, {"cached", true}});
      return;
    }
  }
  refreshSnapshots(repo, [r](std::optional<Error> error, const std::vector<core::Snapshot>& snapshots) {
    if (error) return r->fail(*error);
    json list = json::array();
    for (const auto& s : snapshots) list.push_back(toJson(s));
    r->reply({{"snapshots", list}, {"cached", false}});
  });
}

void Service::listFiles(const json& p, const RequestPtr& r) {
  auto repo = requireRepository(stringParam(p, "repository"));
  std::string snapshot = stringParam(p, "snapshot");
  core::validateSnapshotId(snapshot);
  auto requestedPath = optionalStringParam(p, "path");
  std::string path = requestedPath.value_or("/");
  if (!requestedPath) {
    // Without a path, show the backed-up directory itself rather than the first component of its path.
    if (auto cache = m_store.snapshotCache(repo.id)) {
      const core::Snapshot* match = nullptr;
      for (const auto& s : cache->snapshots)
        if (snapshot == "latest" ? true : s.id.rfind(snapshot, 0) == 0) match = &s;
      if (match && match->paths.size() == 1) path = match->paths.front();
    }
  }
  core::validateSnapshotPath(path, "path");

  struct State {
    json header = nullptr;
    json batch = json::array();
    size_t total = 0;
    bool overflow = false;
    std::string stderrText;
    std::shared_ptr<process::Process> child;
  };
  auto state = std::make_shared<State>();
  auto task = std::make_shared<Task>();
  task->repository = repo;
  task->mode = core::LockMode::Shared;
  task->args = [snapshot, path](const restic::RepositoryContext& ctx) { return restic::lsArgs(ctx, snapshot, path); };
  task->onStdout = [state, r](std::string_view line) {
    auto item = restic::parseLsLine(line);
    if (auto* s = std::get_if<core::Snapshot>(&item)) {
      state->header = toJson(*s);
      return;
    }
    auto* node = std::get_if<core::Node>(&item);
    if (!node || state->overflow) return;
    state->batch.push_back(toJson(*node));
    ++state->total;
    if (r->wantsMore() && state->batch.size() >= kBatchSize) {
      r->replyMore({{"snapshot", state->header}, {"nodes", std::move(state->batch)}});
      state->batch = json::array();
    } else if (!r->wantsMore() && state->total > kMaxUnstreamedNodes) {
      state->overflow = true;
      if (state->child) state->child->cancel();
    }
  };
  task->onStderr = [state](std::string_view line) {
    if (state->stderrText.size() < 16384) {
      state->stderrText.append(line);
      state->stderrText.push_back('\n');
    }
  };
  task->onStarted = [state, r](std::shared_ptr<process::Process> child) {
    state->child = child;
    // A caller that goes away mid-stream: stop restic instead of listing for nobody.
    r->onGone([weak = std::weak_ptr<process::Process>(child)] {
      if (auto c = weak.lock()) c->cancel();
    });
  };
  std::string name = repo.name;
  task->onDone = [state, r, name, snapshot, path](const process::ProcessResult* result, std::optional<Error> failure) {
    state->child.reset();
    if (!r->alive()) return;
    if (state->overflow)
      return r->fail(Error(ErrorCode::InvalidArgument, "more than " + std::to_string(kMaxUnstreamedNodes) +
                                                           " entries: call ListFiles with \"more\" to stream them"));
    if (failure) return r->fail(*failure);
    if (result && !result->success()) {
      if (state->stderrText.find("no matching ID found") != std::string::npos ||
          state->stderrText.find("invalid id") != std::string::npos)
        return r->fail(Error(ErrorCode::NotFound, "no snapshot \"" + snapshot + "\" in repository \"" + name + "\""));
      return r->fail(restic::classifyFailure(result->signal ? 128 + result->signal : result->exitCode, state->stderrText, name));
    }
    // restic 0.14 exits 0 for an unknown snapshot ("Ignoring ...: no matching ID found"): no header line then.
    if (state->header.is_null())
      return r->fail(Error(ErrorCode::NotFound, "no snapshot \"" + snapshot + "\" in repository \"" + name + "\""));
    if (state->total == 0 && path != "/")
      return r->fail(Error(ErrorCode::NotFound, "no path " + path + " in snapshot " + snapshot + " of repository \"" + name + "\""));
    r->reply({{"snapshot", state->header}, {"nodes", std::move(state->batch)}});
  };
  runTask(task);
}

}  // namespace zerobyte::api
