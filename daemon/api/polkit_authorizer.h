// Authorization through polkit: CheckAuthorization on the system bus, answered on the daemon's loop.
#pragma once

#include "daemon/api/authorizer.h"
#include "daemon/loop/event_loop.h"

#include <systemd/sd-bus.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace zerobyte::api {

class PolkitAuthorizer : public Authorizer {
 public:
  // More checks than this wait in the authorizer's queue: the system bus lets one connection wait
  // for at most 128 replies (max_replies_per_connection) and fails further calls at once.
  static constexpr std::size_t kMaxInFlight = 64;

  // Opens the system bus (DBUS_SYSTEM_BUS_ADDRESS when set) on `loop` and makes sure
  // org.freedesktop.PolicyKit1 runs there or can be activated. Blocks for at most a few seconds,
  // so call it at start, before the loop serves clients. nullptr, with `whyNot` saying why, when
  // polkit cannot be used.
  static std::unique_ptr<PolkitAuthorizer> connect(loop::EventLoop& loop, std::string& whyNot);

 private:
  struct BusUnref {
    void operator()(sd_bus* bus) const noexcept;
  };
  using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
  // Only connect() makes one (std::make_unique needs a public constructor).
  struct ConnectKey {
    explicit ConnectKey() = default;
  };

 public:
  PolkitAuthorizer(ConnectKey, loop::EventLoop& loop, std::string address, BusPtr bus);

  // Checks still waiting for polkit are abandoned: their `done` is never called.
  ~PolkitAuthorizer() override;
  PolkitAuthorizer(const PolkitAuthorizer&) = delete;
  PolkitAuthorizer& operator=(const PolkitAuthorizer&) = delete;

  // `done` runs at once for root and for a caller or bus that cannot be checked, otherwise later
  // on the loop with polkit's answer.
  void check(const Caller& caller, Action action, const Scope& scope, bool interactive,
             std::function<void(Decision)> done) override;
  std::string mode() const override { return "polkit"; }
  std::string describe() const override;

  // Checks not yet answered (sent to polkit or queued behind kMaxInFlight).
  std::size_t pendingChecks() const { return m_inFlight.size() + m_queued.size(); }

 private:
  struct PendingCheck;

  // The bus, or a new connection when the previous one was lost; nullptr with `whyNot`.
  sd_bus* liveBus(std::string& whyNot);
  // Sends queued checks while there is room; a check that cannot be sent is denied (posted).
  void sendQueued();
  // Sends one check; false with `whyNot` when the call could not be made.
  bool send(PendingCheck& pending, std::string& whyNot);
  static int onReply(sd_bus_message* reply, void* userdata, sd_bus_error* error);

  loop::EventLoop& m_loop;
  std::string m_address;
  BusPtr m_bus;
  uint64_t m_nextId = 1;
  std::map<uint64_t, std::unique_ptr<PendingCheck>> m_inFlight;
  std::deque<std::unique_ptr<PendingCheck>> m_queued;
  // Expires with the authorizer: a denial posted to the loop is then not delivered.
  std::shared_ptr<const bool> m_alive = std::make_shared<const bool>(true);
};

}  // namespace zerobyte::api
