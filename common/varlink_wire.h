// Varlink wire format: NUL-terminated JSON messages, their framing and validation.
#pragma once

#include "common/errors.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zerobyte::varlink {

struct CallMessage {
  std::string method;  // fully qualified, e.g. "org.zerobyte.Daemon.GetStatus"
  nlohmann::json parameters = nlohmann::json::object();
  bool more = false;
  bool oneway = false;
};

struct ReplyMessage {
  nlohmann::json parameters = nlohmann::json::object();
  std::optional<std::string> error;  // fully qualified error name
  bool continues = false;
};

// Splits a byte stream into messages. Feed what read() returned, then take messages
// until none is left. A message longer than the limit (without its NUL) puts the framer
// into the overflowed state: the connection cannot be resynchronised and must be closed.
class Framer {
 public:
  explicit Framer(size_t maxMessageSize);
  void feed(std::string_view bytes);
  std::optional<std::string> next();
  bool overflowed() const noexcept { return m_overflowed; }
  size_t buffered() const noexcept { return m_buffer.size() - m_consumed; }

 private:
  std::string m_buffer;
  size_t m_consumed = 0;
  size_t m_scanned = 0;
  size_t m_max;
  bool m_overflowed = false;
};

// Parses one call; throws zerobyte::Error (InvalidRequest) naming what is wrong.
CallMessage parseCall(std::string_view text);
// Parses one reply; throws zerobyte::Error (InvalidRequest).
ReplyMessage parseReply(std::string_view text);

// Serialise with the terminating NUL.
std::string encode(const CallMessage& call);
std::string encode(const ReplyMessage& reply);
// An error reply for an Error: {"error": name, "parameters": {"message": ..., details...}}.
ReplyMessage errorReply(const Error& error);
// The Error carried by an error reply (unknown names become Failed with the name in the message).
Error errorFromReply(const ReplyMessage& reply);

}  // namespace zerobyte::varlink
