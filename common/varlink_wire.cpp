// Varlink framing and message (de)serialisation.
#include "common/varlink_wire.h"

namespace zerobyte::varlink {

using nlohmann::json;

Framer::Framer(size_t maxMessageSize) : m_max(maxMessageSize) {}

void Framer::feed(std::string_view bytes) {
  if (m_overflowed) return;
  if (m_consumed > 0 && m_consumed == m_buffer.size()) {
    m_buffer.clear();
    m_consumed = m_scanned = 0;
  } else if (m_consumed > 64 * 1024) {
    m_buffer.erase(0, m_consumed);
    m_scanned -= m_consumed;
    m_consumed = 0;
  }
  m_buffer.append(bytes);
  // Only check the limit when no terminator is pending: a full message in the buffer is fine.
  if (m_buffer.find('\0', m_scanned) == std::string::npos && m_buffer.size() - m_consumed >= m_max) m_overflowed = true;
}

std::optional<std::string> Framer::next() {
  if (m_overflowed) return std::nullopt;
  size_t end = m_buffer.find('\0', std::max(m_scanned, m_consumed));
  if (end == std::string::npos) {
    m_scanned = m_buffer.size();
    if (m_buffer.size() - m_consumed >= m_max) m_overflowed = true;
    return std::nullopt;
  }
  if (end - m_consumed >= m_max) {
    m_overflowed = true;
    return std::nullopt;
  }
  std::string message = m_buffer.substr(m_consumed, end - m_consumed);
  m_consumed = end + 1;
  m_scanned = m_consumed;
  return message;
}

namespace {

// Deeper than any message of the interface needs; the parser and json's copies recurse, so
// a hostile nesting depth would otherwise overflow the stack.
constexpr int kMaxNestingDepth = 64;

bool nestedTooDeep(std::string_view text) {
  int depth = 0;
  bool inString = false, escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') inString = false;
      continue;
    }
    if (c == '"') inString = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxNestingDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

json parseObject(std::string_view text) {
  if (nestedTooDeep(text))
    throw Error(ErrorCode::InvalidRequest, "the message nests objects or arrays deeper than " + std::to_string(kMaxNestingDepth) + " levels");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw Error(ErrorCode::InvalidRequest, "the message is not valid JSON; send one JSON object terminated by a NUL byte");
  if (!j.is_object()) throw Error(ErrorCode::InvalidRequest, "the message must be a JSON object");
  return j;
}

bool optionalBool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    throw Error(ErrorCode::InvalidRequest, std::string("\"") + key + "\" must be a boolean");
  return it->get<bool>();
}

}  // namespace

CallMessage parseCall(std::string_view text) {
  json j = parseObject(text);
  CallMessage call;
  auto method = j.find("method");
  if (method == j.end() || !method->is_string() || method->get_ref<const std::string&>().empty())
    throw Error(ErrorCode::InvalidRequest, "the message has no \"method\" string; a call looks like {\"method\":\"org.zerobyte.Daemon.GetStatus\"}");
  call.method = method->get<std::string>();
  auto params = j.find("parameters");
  if (params != j.end() && !params->is_null()) {
    if (!params->is_object()) throw Error(ErrorCode::InvalidRequest, "\"parameters\" must be a JSON object");
    call.parameters = *params;
  }
  call.more = optionalBool(j, "more");
  call.oneway = optionalBool(j, "oneway");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    if (k != "method" && k != "parameters" && k != "more" && k != "oneway" && k != "upgrade")
      throw Error(ErrorCode::InvalidRequest, "unknown key \"" + k + "\" in the call; expected method, parameters, more, oneway");
  }
  if (optionalBool(j, "upgrade")) throw Error(ErrorCode::InvalidRequest, "protocol upgrades are not supported");
  if (call.more && call.oneway) throw Error(ErrorCode::InvalidRequest, "\"more\" and \"oneway\" cannot both be set");
  return call;
}

ReplyMessage parseReply(std::string_view text) {
  json j = parseObject(text);
  ReplyMessage reply;
  auto params = j.find("parameters");
  if (params != j.end() && !params->is_null()) {
    if (!params->is_object()) throw Error(ErrorCode::InvalidRequest, "reply \"parameters\" must be a JSON object");
    reply.parameters = *params;
  }
  auto err = j.find("error");
  if (err != j.end() && !err->is_null()) {
    if (!err->is_string()) throw Error(ErrorCode::InvalidRequest, "reply \"error\" must be a string");
    reply.error = err->get<std::string>();
  }
  reply.continues = optionalBool(j, "continues");
  return reply;
}

std::string encode(const CallMessage& call) {
  json j = {{"method", call.method}};
  if (!call.parameters.empty()) j["parameters"] = call.parameters;
  if (call.more) j["more"] = true;
  if (call.oneway) j["oneway"] = true;
  std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.push_back('\0');
  return out;
}

std::string encode(const ReplyMessage& reply) {
  json j = json::object();
  j["parameters"] = reply.parameters.is_null() ? json::object() : reply.parameters;
  if (reply.error) j["error"] = *reply.error;
  if (reply.continues) j["continues"] = true;
  // Invalid UTF-8 (file names are bytes) is replaced rather than throwing.
  std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.push_back('\0');
  return out;
}

ReplyMessage errorReply(const Error& error) {
  ReplyMessage reply;
  reply.error = varlinkErrorName(error.code());
  reply.parameters = error.details().is_object() ? error.details() : json::object();
  reply.parameters["message"] = error.what();
  return reply;
}

Error errorFromReply(const ReplyMessage& reply) {
  std::string message;
  if (auto it = reply.parameters.find("message"); it != reply.parameters.end() && it->is_string()) message = it->get<std::string>();
  auto code = reply.error ? errorFromName(*reply.error) : std::nullopt;
  if (!code) {
    std::string name = reply.error.value_or("unknown error");
    if (message.empty() && reply.parameters.contains("parameter") && reply.parameters["parameter"].is_string())
      message = "parameter " + reply.parameters["parameter"].get<std::string>();
    return Error(ErrorCode::Failed, name + (message.empty() ? "" : ": " + message), reply.parameters);
  }
  if (message.empty()) {
    if (auto it = reply.parameters.find("parameter"); it != reply.parameters.end() && it->is_string())
      message = "parameter \"" + it->get<std::string>() + "\" is missing, unknown or of the wrong type";
    else
      message = std::string(errorInfo(*code).description);
  }
  json details = reply.parameters;
  details.erase("message");
  return Error(*code, message, details);
}

}  // namespace zerobyte::varlink
