// The shared options and the lazily opened daemon connection.
#include "ctl/context.h"

#include "common/names.h"
#include "ctl/output.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

namespace zerobyte::ctl {

namespace {

// The parameter every method of the daemon accepts: polkit may ask this caller's agent for a password.
constexpr const char* kInteractiveParameter = "allow_interactive_authentication";

}  // namespace

Context::Context() {
  const char* fromEnvironment = std::getenv(std::string(kSocketEnvironmentVariable).c_str());
  socketPath = fromEnvironment && *fromEnvironment ? fromEnvironment : std::string(kDefaultSocketPath);
}

bool Context::stdoutIsTerminal() const { return ::isatty(STDOUT_FILENO) == 1; }

bool Context::stdinIsTerminal() const { return ::isatty(STDIN_FILENO) == 1; }

varlink::Client& Context::client() {
  if (!m_client) m_client = std::make_unique<varlink::Client>(socketPath);
  return *m_client;
}

void Context::prepareAuthorization() {
  if (m_authorizationPrepared) return;
  m_authorizationPrepared = true;
  if (noAskPassword || !stdinIsTerminal()) return;
  m_agent = std::make_unique<PolkitAgent>();
  m_agent->start();
}

nlohmann::json Context::withAuthorization(const nlohmann::json& parameters) {
  prepareAuthorization();
  if (!m_agent || !m_agent->running() || !parameters.is_object()) return parameters;
  nlohmann::json interactive = parameters;
  interactive[kInteractiveParameter] = true;
  return interactive;
}

nlohmann::json Context::call(std::string_view method, const nlohmann::json& parameters) {
  // Connect first: an unreachable daemon is reported without starting an agent.
  varlink::Client& connection = client();
  return connection.call(std::string(kVarlinkInterface) + "." + std::string(method), withAuthorization(parameters));
}

void Context::callMore(std::string_view method, const nlohmann::json& parameters,
                       const std::function<bool(const nlohmann::json&)>& onReply) {
  varlink::Client& connection = client();
  connection.callMore(std::string(kVarlinkInterface) + "." + std::string(method), withAuthorization(parameters), onReply);
}

void Context::printJson(const nlohmann::json& reply) const {
  std::cout << jsonText(reply, stdoutIsTerminal()) << std::endl;
}

void Context::printJsonLine(const nlohmann::json& reply) const { std::cout << jsonText(reply, false) << std::endl; }

void addCommonOptions(CLI::App& app, Context& ctx) {
  const std::string group = "Common options";
  app.add_flag("--json", ctx.json,
               "Print the reply as JSON (one object per line for streams)")
      ->group(group);
  app.add_option("--socket", ctx.socketPath,
                 "Daemon socket (default: $" + std::string(kSocketEnvironmentVariable) + " or " +
                     std::string(kDefaultSocketPath) + ")")
      ->type_name("PATH")
      ->group(group);
  app.add_flag("--no-ask-password", ctx.noAskPassword,
               "Never ask for a password: no polkit agent, no interactive authentication")
      ->group(group);
}

CLI::App* addCommand(CLI::App& parent, Context& ctx, const std::string& name, const std::string& description) {
  CLI::App* command = parent.add_subcommand(name, description);
  addCommonOptions(*command, ctx);
  return command;
}

}  // namespace zerobyte::ctl
