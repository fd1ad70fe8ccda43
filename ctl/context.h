// The options every zerobytectl command shares, and the daemon connection they lead to.
#pragma once

#include "common/varlink_client.h"
#include "ctl/polkit_agent.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace zerobyte::ctl {

class Context {
 public:
  // The socket starts as $ZEROBYTE_SOCKET or the default path; --socket overrides it.
  Context();

  std::string socketPath;
  bool json = false;
  // --no-ask-password: never start a polkit agent nor let the daemon ask for authentication.
  bool noAskPassword = false;

  // Set by the callback of the subcommand that was chosen and run once parsing is over,
  // so that usage errors and daemon errors never mix. Returns the exit status.
  std::function<int()> action;

  bool stdoutIsTerminal() const;
  bool stdinIsTerminal() const;

  // Connects on first use: commands that never talk to the daemon (config check, --help)
  // work without one. Throws Error(Unavailable) naming the socket.
  varlink::Client& client();
  // Calls "org.zerobyte.Daemon.<method>". Before the first call a polkit agent is started when
  // authentication can be asked for (see prepareAuthorization()); while it runs, every call
  // carries "allow_interactive_authentication": true.
  nlohmann::json call(std::string_view method, const nlohmann::json& parameters = nlohmann::json::object());
  void callMore(std::string_view method, const nlohmann::json& parameters,
                const std::function<bool(const nlohmann::json&)>& onReply);

  // A reply as JSON on stdout: pretty on a terminal, one line otherwise.
  void printJson(const nlohmann::json& reply) const;
  // One reply of a stream: always one line, flushed at once.
  void printJsonLine(const nlohmann::json& reply) const;

 private:
  // Once: with stdin on a terminal and without --no-ask-password, a polkit agent for this
  // process, so that a request polkit would allow after authentication asks for a password
  // instead of failing. Without one (no pkttyagent, no polkit), requests go on non-interactive.
  void prepareAuthorization();
  // `parameters` with the interactive flag when an agent runs.
  nlohmann::json withAuthorization(const nlohmann::json& parameters);

  std::unique_ptr<varlink::Client> m_client;
  bool m_authorizationPrepared = false;
  std::unique_ptr<PolkitAgent> m_agent;
};

// Adds a subcommand that takes the shared options (--json, --socket, --no-ask-password)
// and lists them under their own heading in its --help.
CLI::App* addCommand(CLI::App& parent, Context& ctx, const std::string& name, const std::string& description);
// The shared options alone, for the top-level application.
void addCommonOptions(CLI::App& app, Context& ctx);

}  // namespace zerobyte::ctl
