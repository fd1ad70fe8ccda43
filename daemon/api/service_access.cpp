// The service layer's access control: scopes from ownership, polkit checks in order, denials
// (audited, rate-limited), and audited answers of every request that may change something.
#include "common/users.h"
#include "daemon/api/service.h"
#include "daemon/api/service_internal.h"
#include "daemon/log/log.h"

#include <algorithm>

namespace zerobyte::api {

using nlohmann::json;

namespace {

// Denials per uid: a burst of this many, then one more every kDenialRefillSeconds.
constexpr double kDenialBurst = 10;
constexpr double kDenialRefillPerSecond = 0.5;
constexpr size_t kMaxTrackedUids = 4096;
// Requests that may change something, per uid (each is audited: a flood would bury the trail): a burst of this
// many, then this many a second.
constexpr double kChangeBurst = 60;
constexpr double kChangeRefillPerSecond = 2;
// Requests of one uid waiting for polkit at once (one waiting at a password prompt for minutes must not hold
// the slots everyone's checks share).
constexpr unsigned kMaxChecksInFlightPerUid = 8;

class AuditedRequest : public Request {
 public:
  AuditedRequest(RequestPtr inner, AuditLog& audit, Action action, std::string_view method, std::string resource)
      : m_inner(std::move(inner)), m_audit(audit), m_action(action), m_method(method), m_resource(std::move(resource)) {}
  const Caller& caller() const override { return m_inner->caller(); }
  bool wantsMore() const override { return m_inner->wantsMore(); }
  void replyMore(json parameters) override { m_inner->replyMore(std::move(parameters)); }
  void reply(json parameters) override {
    record("ok");
    m_inner->reply(std::move(parameters));
  }
  void fail(const Error& error) override {
    record("failed: " + std::string(errorName(error.code())));
    m_inner->fail(error);
  }
  bool alive() const override { return m_inner->alive(); }
  void onGone(std::function<void()> callback) override { m_inner->onGone(std::move(callback)); }

 private:
  void record(const std::string& result) {
    if (m_recorded) return;
    m_recorded = true;
    m_audit.record(m_inner->caller(), m_action, m_method, m_resource, result);
  }
  RequestPtr m_inner;
  AuditLog& m_audit;
  Action m_action;
  std::string m_method;
  std::string m_resource;
  bool m_recorded = false;
};

std::string quoted(const std::string& kind, const std::string& name) { return kind + " \"" + name + "\""; }

}  // namespace

RequestPtr auditedRequest(RequestPtr inner, AuditLog& audit, Action action, std::string_view method, std::string resource) {
  return std::make_shared<AuditedRequest>(std::move(inner), audit, action, method, std::move(resource));
}

Scope Service::scopeOf(const core::Volume& v, const Caller& caller, const std::vector<gid_t>& groups) const {
  return resourceScope(quoted("volume", v.name), v.ownerUid, v.groupGid, caller.uid, groups);
}

Scope Service::scopeOf(const core::Repository& r, const Caller& caller, const std::vector<gid_t>& groups) const {
  return resourceScope(quoted("repository", r.name), r.ownerUid, r.groupGid, caller.uid, groups);
}

Scope Service::scopeOf(const core::Schedule& s, const Caller& caller, const std::vector<gid_t>& groups) const {
  return resourceScope(quoted("schedule", s.name), s.ownerUid, s.groupGid, caller.uid, groups);
}

// A job is the caller's when they started it or own (or share) its repository or volume.
Scope Service::scopeOf(const core::Job& j, const Caller& caller, const std::vector<gid_t>& groups) const {
  Scope scope = resourceScope("job " + std::to_string(j.id), j.startedByUid, std::nullopt, caller.uid, groups);
  if (!scope.callerOwns)
    if (auto repo = findRepository(j.repositoryName); repo && repo->id == j.repositoryId)
      scope.callerOwns = scopeOf(*repo, caller, groups).callerOwns;
  if (!scope.callerOwns && !j.volumeName.empty())
    if (auto volume = findVolume(j.volumeName); volume && volume->id == j.volumeId)
      scope.callerOwns = scopeOf(*volume, caller, groups).callerOwns;
  return scope;
}

void Service::authorizeAll(const Caller& caller, std::shared_ptr<std::vector<AccessCheck>> checks, size_t index, bool interactive,
                           std::function<void(const AccessCheck*, const Decision&)> done) {
  if (index >= checks->size()) return done(nullptr, Decision{true, false, {}});
  const AccessCheck& check = (*checks)[index];
  m_authorizer.check(caller, check.action, check.scope, interactive,
                     [this, caller, checks, index, interactive, done = std::move(done)](Decision decision) mutable {
                       if (!decision.allowed) return done(&(*checks)[index], decision);
                       authorizeAll(caller, checks, index + 1, interactive, std::move(done));
                     });
}

void Service::answerDenied(std::string_view method, const AccessCheck& check, const Decision& decision, bool interactive,
                           const RequestPtr& r) {
  const Caller& caller = r->caller();
  countDenial(caller.uid);
  m_audit.record(caller, check.action, method, check.scope.resource,
                 decision.reason.empty() ? std::string("denied") : "denied: " + decision.reason);
  if (!r->alive()) return;
  // What the caller may not see does not exist for them.
  if (check.action == Action::View && check.scope.ownerUid && !check.scope.resource.empty())
    return r->fail(Error(ErrorCode::NotFound, "no " + check.scope.resource +
                                                  (caller.transport == "dbus" ? "; see Manager.ListVolumes, ListRepositories and ListJobs"
                                                                              : "; see 'zerobytectl --help' for the list commands")));
  std::string what = std::string(actionName(check.action)) + (check.scope.resource.empty() ? "" : " " + check.scope.resource);
  std::string how;
  if (!decision.reason.empty())
    how = decision.reason;
  else if (decision.challenge && caller.transport == "dbus")
    how = "authentication is required: call without the option auth.no_user_interaction, from a session with a polkit agent";
  else if (decision.challenge)
    how = "authentication is required: run zerobytectl from a terminal (without --no-ask-password) to authenticate";
  else if (interactive)
    how = "authentication did not succeed, or it is not enough for this; ask an administrator for a role (the groups "
          "zerobyte-viewers, zerobyte-operators, zerobyte-admins)";
  else
    how = "ask an administrator for a role (the groups zerobyte-viewers, zerobyte-operators, zerobyte-admins)";
  r->fail(Error(ErrorCode::NotAuthorized, "not authorized to " + what + " (polkit action " + actionId(check.action) + "); " + how,
                {{"action", actionId(check.action)}}));
}

uint64_t Service::denialRetryAfter(uid_t uid) {
  if (uid == 0) return 0;
  auto it = m_denials.find(uid);
  if (it == m_denials.end()) return 0;
  uint64_t wait = it->second.waitUsec(loop::EventLoop::nowUsec());
  return wait == 0 ? 0 : (wait + 999999) / 1000000;
}

void Service::admitRequest(uid_t uid, bool changes) {
  if (uid == 0) return;
  auto refuse = [uid](const std::string& why, uint64_t retry) {
    throw Error(ErrorCode::RateLimited, why + " from uid " + std::to_string(uid) + "; try again in " + std::to_string(retry) + " s",
                {{"retry_after", retry}});
  };
  if (uint64_t retry = denialRetryAfter(uid)) refuse("too many denied requests", retry);
  if (auto it = m_checksInFlight.find(uid); it != m_checksInFlight.end() && it->second >= kMaxChecksInFlightPerUid)
    refuse("too many requests waiting for authorization", 1);
  if (!changes) return;
  uint64_t now = loop::EventLoop::nowUsec();
  if (m_changes.size() >= kMaxTrackedUids)
    for (auto it = m_changes.begin(); it != m_changes.end();) it = it->second.full(now) ? m_changes.erase(it) : std::next(it);
  auto [it, inserted] = m_changes.try_emplace(uid, kChangeBurst, kChangeRefillPerSecond, now);
  if (!it->second.take(now)) refuse("too many changes", (it->second.waitUsec(now) + 999999) / 1000000);
}

void Service::countDenial(uid_t uid) {
  if (uid == 0) return;
  uint64_t now = loop::EventLoop::nowUsec();
  if (m_denials.size() >= kMaxTrackedUids)
    for (auto it = m_denials.begin(); it != m_denials.end();) it = it->second.full(now) ? m_denials.erase(it) : std::next(it);
  auto [it, inserted] = m_denials.try_emplace(uid, kDenialBurst, kDenialRefillPerSecond, now);
  // Logged when the bucket runs dry, not for every refusal that follows.
  if (it->second.take(now) && it->second.waitUsec(now) > 0)
    log::notice("uid " + std::to_string(uid) + " is refused for a while after repeated denied requests");
}

void Service::whenAllowed(const RequestPtr& r, Action action, const Scope& scope, std::function<void(bool)> then) {
  m_authorizer.check(r->caller(), action, scope, false, [r, then = std::move(then)](Decision d) {
    if (!r->alive()) return;
    try {
      then(d.allowed);
    } catch (const Error& e) {
      r->fail(e);
    } catch (const std::exception& e) {
      log::error(std::string("internal error: ") + e.what());
      r->fail(Error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
    }
  });
}

}  // namespace zerobyte::api
