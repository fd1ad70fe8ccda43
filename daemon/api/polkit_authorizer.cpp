// polkit's CheckAuthorization over sd-bus, attached to the daemon's sd-event loop.
#include "daemon/api/polkit_authorizer.h"

#include "common/users.h"
#include "daemon/log/log.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

namespace zerobyte::api {
namespace {

constexpr const char* kPolkitService = "org.freedesktop.PolicyKit1";
constexpr const char* kAuthorityPath = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* kAuthorityInterface = "org.freedesktop.PolicyKit1.Authority";
constexpr uint32_t kAllowUserInteraction = 1;
// polkit's own clients wait 25 s; a person at a password prompt gets minutes.
constexpr uint64_t kCheckTimeoutUsec = 25ULL * 1000 * 1000;
constexpr uint64_t kInteractiveCheckTimeoutUsec = 5ULL * 60 * 1000 * 1000;
constexpr uint64_t kProbeTimeoutUsec = 5ULL * 1000 * 1000;

struct MessageUnref {
  void operator()(sd_bus_message* m) const noexcept { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

struct SlotUnref {
  void operator()(sd_bus_slot* s) const noexcept { sd_bus_slot_unref(s); }
};
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;

class BusError {
 public:
  BusError() = default;
  ~BusError() { sd_bus_error_free(&m_error); }
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  sd_bus_error* get() { return &m_error; }
  std::string text(int r) const {
    if (sd_bus_error_is_set(&m_error))
      return std::string(m_error.name) + (m_error.message ? std::string(": ") + m_error.message : std::string());
    return std::strerror(-r);
  }

 private:
  sd_bus_error m_error = SD_BUS_ERROR_NULL;
};

// sd_bus_open_system() follows DBUS_SYSTEM_BUS_ADDRESS; this names the same place in messages.
std::string systemBusAddress() {
  const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
  return env && *env ? env : "unix:path=/run/dbus/system_bus_socket";
}

// Calls a method of the bus driver, waiting for the answer (only at start).
int callBusDriver(sd_bus* bus, const char* member, const char* arg, BusError& error, MessagePtr& reply) {
  sd_bus_message* rawCall = nullptr;
  int r = sd_bus_message_new_method_call(bus, &rawCall, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", member);
  MessagePtr call(rawCall);
  if (r >= 0 && arg) r = sd_bus_message_append(call.get(), "s", arg);
  sd_bus_message* rawReply = nullptr;
  if (r >= 0) r = sd_bus_call(bus, call.get(), kProbeTimeoutUsec, error.get(), &rawReply);
  reply.reset(rawReply);
  return r;
}

// 1 when polkit runs on the bus or the bus can start it, 0 when neither, < 0 when the bus fails.
int polkitAvailable(sd_bus* bus, std::string& whyNot) {
  BusError error;
  MessagePtr reply;
  int r = callBusDriver(bus, "NameHasOwner", kPolkitService, error, reply);
  int owned = 0;
  if (r >= 0) r = sd_bus_message_read(reply.get(), "b", &owned);
  if (r < 0) {
    whyNot = error.text(r);
    return r;
  }
  if (owned) return 1;

  BusError listError;
  r = callBusDriver(bus, "ListActivatableNames", nullptr, listError, reply);
  if (r >= 0) r = sd_bus_message_enter_container(reply.get(), 'a', "s");
  if (r < 0) {
    whyNot = listError.text(r);
    return r;
  }
  const char* name = nullptr;
  while ((r = sd_bus_message_read(reply.get(), "s", &name)) > 0)
    if (std::strcmp(name, kPolkitService) == 0) return 1;
  if (r < 0) {
    whyNot = std::strerror(-r);
    return r;
  }
  return 0;
}

std::string cancellationId(uint64_t id) { return "zerobyte-check-" + std::to_string(id); }

// What polkit substitutes into messages and what the shipped rules read (action.lookup()).
std::vector<std::pair<std::string, std::string>> detailsOf(const Scope& scope) {
  std::vector<std::pair<std::string, std::string>> details;
  if (!scope.resource.empty()) details.emplace_back("zerobyte.resource", scope.resource);
  if (scope.ownerUid) details.emplace_back("zerobyte.owner", users::describeUser(static_cast<uid_t>(*scope.ownerUid)));
  if (scope.groupGid) details.emplace_back("zerobyte.group", users::describeGroup(static_cast<gid_t>(*scope.groupGid)));
  details.emplace_back("zerobyte.caller_owns", scope.callerOwns ? "true" : "false");
  return details;
}

Decision denial(std::string reason) {
  Decision d;
  d.reason = std::move(reason);
  return d;
}

// The decision in a CheckAuthorization reply: (b is_authorized, b is_challenge, a{ss} details).
Decision decisionFrom(sd_bus_message* reply) {
  if (sd_bus_message_is_method_error(reply, nullptr)) {
    const sd_bus_error* error = sd_bus_message_get_error(reply);
    std::string name = error && error->name ? error->name : "unknown error";
    std::string text = name + (error && error->message ? std::string(": ") + error->message : std::string());
    if (name == "org.freedesktop.PolicyKit1.Error.Cancelled") return denial("the authorization check was cancelled");
    // polkit answered, but not with a decision (e.g. an action it does not know).
    if (name.rfind("org.freedesktop.PolicyKit1.", 0) == 0) return denial("polkit could not decide: " + text);
    return denial("polkit is unreachable: " + text);
  }
  int authorized = 0;
  int challenge = 0;
  int r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
  if (r >= 0) r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
  if (r >= 0) r = sd_bus_message_enter_container(reply, 'a', "{ss}");
  bool dismissed = false;
  const char* key = nullptr;
  const char* value = nullptr;
  while (r >= 0 && (r = sd_bus_message_read(reply, "{ss}", &key, &value)) > 0)
    if (std::strcmp(key, "polkit.dismissed") == 0 && std::strcmp(value, "true") == 0) dismissed = true;
  if (r < 0) return denial(std::string("polkit's answer cannot be read: ") + std::strerror(-r));

  Decision d;
  d.allowed = authorized != 0;
  d.challenge = !d.allowed && challenge != 0;
  if (!d.allowed && dismissed) d.reason = "the authentication dialog was dismissed";
  return d;
}

void deliver(const std::function<void(Decision)>& done, Decision decision) {
  // An exception must not unwind through sd-bus's C frames.
  try {
    done(std::move(decision));
  } catch (const std::exception& e) {
    log::error(std::string("internal error after a polkit decision: ") + e.what());
  } catch (...) {
    log::error("internal error after a polkit decision");
  }
}

}  // namespace

struct PolkitAuthorizer::PendingCheck {
  PolkitAuthorizer* owner = nullptr;
  uint64_t id = 0;
  Caller caller;
  std::string actionId;
  std::vector<std::pair<std::string, std::string>> details;
  bool interactive = false;
  std::function<void(Decision)> done;
  // While sent: dropping it means the reply callback never runs. It holds a reference to the
  // connection it was sent on, which keeps a lost connection alive until sd-bus has failed the call.
  SlotPtr slot;
};

void PolkitAuthorizer::BusUnref::operator()(sd_bus* bus) const noexcept { sd_bus_flush_close_unref(bus); }

std::unique_ptr<PolkitAuthorizer> PolkitAuthorizer::connect(loop::EventLoop& loop, std::string& whyNot) {
  const std::string address = systemBusAddress();
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  BusPtr bus(raw);
  if (r < 0) {
    whyNot = "there is no system bus at " + address + ": " + std::strerror(-r);
    return nullptr;
  }
  sd_bus_set_description(bus.get(), "polkit");
  std::string probeError;
  r = polkitAvailable(bus.get(), probeError);
  if (r < 0) {
    whyNot = "the system bus at " + address + " does not answer: " + probeError;
    return nullptr;
  }
  if (r == 0) {
    whyNot = std::string("polkit (") + kPolkitService + ") is neither running nor activatable on the system bus at " + address;
    return nullptr;
  }
  r = sd_bus_attach_event(bus.get(), loop.get(), SD_EVENT_PRIORITY_NORMAL);
  if (r < 0) {
    whyNot = std::string("cannot attach the system bus to the event loop: ") + std::strerror(-r);
    return nullptr;
  }
  return std::make_unique<PolkitAuthorizer>(ConnectKey{}, loop, address, std::move(bus));
}

PolkitAuthorizer::PolkitAuthorizer(ConnectKey, loop::EventLoop& loop, std::string address, BusPtr bus)
    : m_loop(loop), m_address(std::move(address)), m_bus(std::move(bus)) {}

PolkitAuthorizer::~PolkitAuthorizer() {
  // Authentication dialogs for requests no one will answer any more are withdrawn.
  std::vector<std::string> withdrawn;
  for (const auto& [id, pending] : m_inFlight)
    if (pending->interactive) withdrawn.push_back(cancellationId(id));
  m_queued.clear();
  m_inFlight.clear();
  if (m_bus && sd_bus_is_open(m_bus.get()) > 0)
    for (const auto& id : withdrawn)
      sd_bus_call_method_async(m_bus.get(), nullptr, kPolkitService, kAuthorityPath, kAuthorityInterface,
                               "CancelCheckAuthorization", nullptr, nullptr, "s", id.c_str());
  m_bus.reset();  // flushes the cancellations
}

std::string PolkitAuthorizer::describe() const {
  return "polkit on the system bus at " + m_address +
         ": actions org.zerobyte.daemon1.*, roles from the polkit rules (50-zerobyte.rules: zerobyte-viewers, "
         "zerobyte-operators, zerobyte-admins)";
}

void PolkitAuthorizer::check(const Caller& caller, Action action, const Scope& scope, bool interactive,
                             std::function<void(Decision)> done) {
  // polkitd itself authorizes uid 0 for every action without looking at rules; asking would only
  // make root wait for polkit (or fail while polkit restarts).
  if (caller.uid == 0) {
    Decision allowed;
    allowed.allowed = true;
    done(allowed);
    return;
  }
  if (caller.busName.empty() && (caller.pid <= 0 || caller.uid == static_cast<uid_t>(-1))) {
    done(denial("the caller's process is not known, so polkit cannot be asked"));
    return;
  }

  auto pending = std::make_unique<PendingCheck>();
  pending->owner = this;
  pending->id = m_nextId++;
  pending->caller = caller;
  pending->actionId = actionId(action);
  pending->details = detailsOf(scope);
  pending->interactive = interactive;
  pending->done = std::move(done);

  if (m_inFlight.size() >= kMaxInFlight) {
    m_queued.push_back(std::move(pending));
    return;
  }
  std::string whyNot;
  if (!send(*pending, whyNot)) {
    deliver(pending->done, denial(whyNot));
    return;
  }
  const uint64_t id = pending->id;
  m_inFlight.emplace(id, std::move(pending));
}

void PolkitAuthorizer::sendQueued() {
  while (!m_queued.empty() && m_inFlight.size() < kMaxInFlight) {
    std::unique_ptr<PendingCheck> pending = std::move(m_queued.front());
    m_queued.pop_front();
    std::string whyNot;
    if (send(*pending, whyNot)) {
      const uint64_t id = pending->id;
      m_inFlight.emplace(id, std::move(pending));
      continue;
    }
    // Answered on a later iteration: this runs inside another check's reply, whose caller may
    // destroy the authorizer.
    m_loop.post([alive = std::weak_ptr<const bool>(m_alive), done = std::move(pending->done), d = denial(whyNot)]() {
      if (!alive.expired()) done(d);
    });
  }
}

sd_bus* PolkitAuthorizer::liveBus(std::string& whyNot) {
  if (m_bus && sd_bus_is_open(m_bus.get()) > 0) return m_bus.get();
  // The connection was lost (the bus restarted). Only our reference goes: calls still in flight
  // on it hold their own and get sd-bus's "connection terminated" error on the loop. Closing it
  // here would drop them without an answer.
  sd_bus_unref(m_bus.release());
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  BusPtr bus(raw);
  if (r >= 0) {
    sd_bus_set_description(bus.get(), "polkit");
    r = sd_bus_attach_event(bus.get(), m_loop.get(), SD_EVENT_PRIORITY_NORMAL);
  }
  if (r < 0) {
    whyNot = "polkit is unreachable: cannot connect to the system bus at " + m_address + ": " + std::strerror(-r);
    return nullptr;
  }
  log::notice("reconnected to the system bus at " + m_address + " for polkit");
  m_bus = std::move(bus);
  return m_bus.get();
}

bool PolkitAuthorizer::send(PendingCheck& pending, std::string& whyNot) {
  sd_bus* bus = liveBus(whyNot);
  if (!bus) return false;

  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus, &raw, kPolkitService, kAuthorityPath, kAuthorityInterface,
                                         "CheckAuthorization");
  MessagePtr call(raw);
  sd_bus_message* m = call.get();
  const Caller& c = pending.caller;
  if (r >= 0) r = sd_bus_message_open_container(m, 'r', "sa{sv}");
  if (r >= 0) {
    if (c.busName.empty())
      // The uid is the kernel's (SO_PEERCRED): polkit believes what a root caller says.
      r = sd_bus_message_append(m, "sa{sv}", "unix-process", 3, "pid", "u", static_cast<uint32_t>(c.pid), "start-time", "t",
                                static_cast<uint64_t>(c.startTime), "uid", "i", static_cast<int32_t>(c.uid));
    else
      r = sd_bus_message_append(m, "sa{sv}", "system-bus-name", 1, "name", "s", c.busName.c_str());
  }
  if (r >= 0) r = sd_bus_message_close_container(m);
  if (r >= 0) r = sd_bus_message_append(m, "s", pending.actionId.c_str());
  if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{ss}");
  for (const auto& [key, value] : pending.details)
    if (r >= 0) r = sd_bus_message_append(m, "{ss}", key.c_str(), value.c_str());
  if (r >= 0) r = sd_bus_message_close_container(m);
  // A cancellation id only where there is something to cancel: an authentication dialog.
  const std::string cancelId = pending.interactive ? cancellationId(pending.id) : std::string();
  if (r >= 0) r = sd_bus_message_append(m, "us", pending.interactive ? kAllowUserInteraction : 0U, cancelId.c_str());
  if (r < 0) {
    whyNot = std::string("cannot build the polkit request: ") + std::strerror(-r);
    return false;
  }

  sd_bus_slot* slot = nullptr;
  r = sd_bus_call_async(bus, &slot, m, &PolkitAuthorizer::onReply, &pending,
                        pending.interactive ? kInteractiveCheckTimeoutUsec : kCheckTimeoutUsec);
  if (r < 0) {
    whyNot = "polkit is unreachable: cannot send to the system bus at " + m_address + ": " + std::strerror(-r);
    return false;
  }
  pending.slot.reset(slot);
  return true;
}

int PolkitAuthorizer::onReply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
  auto* raw = static_cast<PendingCheck*>(userdata);
  PolkitAuthorizer* self = raw->owner;
  auto node = self->m_inFlight.extract(raw->id);
  if (node.empty()) return 0;
  std::unique_ptr<PendingCheck> pending = std::move(node.mapped());

  Decision decision;
  try {
    decision = decisionFrom(reply);
    // polkit decided about a pid; if that process has gone, the pid may already name another one
    // (a bus name is never reused, so a system-bus-name subject needs no such guard).
    if (pending->caller.busName.empty() && !pending->caller.processAlive())
      decision = denial("the client process exited before the decision");
  } catch (const std::exception& e) {
    decision = denial(std::string("internal error while reading polkit's answer: ") + e.what());
  }

  std::function<void(Decision)> done = std::move(pending->done);
  pending.reset();  // drops the slot; sd-bus holds its own reference while this callback runs
  try {
    self->sendQueued();
  } catch (const std::exception& e) {
    log::error(std::string("cannot send queued polkit checks: ") + e.what());
  }
  // Last: `done` may destroy the authorizer.
  deliver(done, std::move(decision));
  return 0;
}

}  // namespace zerobyte::api
