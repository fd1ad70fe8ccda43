// A request as the service layer sees it, whatever transport it came over.
#pragma once

#include "common/errors.h"
#include "common/file_descriptor.h"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

namespace zerobyte::api {

// Who is asking, from the kernel (SO_PEERCRED, bus credentials), never from the request.
struct Caller {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::string transport;  // "varlink", "dbus"
  std::string busName;    // D-Bus: the sender's unique name (polkit subject "system-bus-name")
  // Taken when the connection was accepted: the process's start time (field 22 of
  // /proc/PID/stat, for polkit's unix-process subject) and a pidfd (SO_PEERPIDFD, or pidfd_open
  // right after accept) that tells whether that very process still exists.
  uint64_t startTime = 0;
  std::shared_ptr<FileDescriptor> pidfd;
  // False once the process that connected has exited: its pid may now name another process, so
  // a decision about that pid must not be used.
  bool processAlive() const;
};

class Request {
 public:
  virtual ~Request() = default;
  virtual const Caller& caller() const = 0;
  // The caller wants a stream of replies (Varlink "more").
  virtual bool wantsMore() const = 0;
  // One reply of a stream; only when wantsMore().
  virtual void replyMore(nlohmann::json parameters) = 0;
  // The final reply. Exactly one of reply()/fail() ends a request.
  virtual void reply(nlohmann::json parameters) = 0;
  virtual void fail(const Error& error) = 0;
  // False once the caller has gone away; work done only for it can stop.
  virtual bool alive() const = 0;
  // Called once if the caller goes away before the final reply.
  virtual void onGone(std::function<void()> callback) = 0;
};

using RequestPtr = std::shared_ptr<Request>;

}  // namespace zerobyte::api
