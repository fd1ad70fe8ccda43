// The polkit text agent zerobytectl runs for itself, so that zerobyted's polkit checks can ask for a password on the terminal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace zerobyte::ctl {

// pkttyagent registered for this process only (--process <own pid>), like fwupdmgr and systemctl
// do: other processes of the user keep their own agents, and nothing outlives zerobytectl.
class PolkitAgent {
 public:
  PolkitAgent() = default;
  ~PolkitAgent() { stop(); }
  PolkitAgent(const PolkitAgent&) = delete;
  PolkitAgent& operator=(const PolkitAgent&) = delete;

  // Starts `pkttyagent --process <own pid> --notify-fd N` (with --fallback inside a logind session,
  // so that a desktop's own agent keeps precedence there) and waits until it has
  // registered with polkit (it closes N then). False, quietly, when pkttyagent is not on PATH,
  // fails (no polkit, no controlling terminal) or takes longer than `timeout`: authorization
  // then simply happens without a password prompt.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Ends the agent (SIGTERM, then SIGKILL if it lingers) and reaps it.
  void stop();
  bool running() const noexcept { return m_pid > 0; }
  pid_t pid() const noexcept { return m_pid; }

 private:
  pid_t m_pid = -1;
};

// The first executable `name` in the directories of $PATH ("" when none).
std::string findInPath(const std::string& name);

}  // namespace zerobyte::ctl
