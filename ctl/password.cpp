// Repository passwords from a file, stdin or a prompt without echo.
#include "ctl/password.h"
#include "common/file_descriptor.h"

#include "common/errors.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

namespace zerobyte::ctl {
namespace {

// restic passwords are short; a bigger input is a wrong file, not a password.
constexpr size_t kMaxPasswordBytes = 64 * 1024;

volatile std::sig_atomic_t g_promptInterrupted = 0;

extern "C" void onPromptInterrupt(int) { g_promptInterrupted = 1; }

// Ctrl-C at the prompt must not leave the terminal without echo: the handler only sets a
// flag (and, without SA_RESTART, ends the read), the destructors put everything back.
class PromptInterruptGuard {
 public:
  PromptInterruptGuard() {
    g_promptInterrupted = 0;
    struct sigaction action {};
    action.sa_handler = onPromptInterrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &m_previous);
  }
  ~PromptInterruptGuard() { ::sigaction(SIGINT, &m_previous, nullptr); }
  PromptInterruptGuard(const PromptInterruptGuard&) = delete;
  PromptInterruptGuard& operator=(const PromptInterruptGuard&) = delete;

 private:
  struct sigaction m_previous {};
};

class EchoOff {
 public:
  explicit EchoOff(int fd) : m_fd(fd) {
    if (::tcgetattr(fd, &m_saved) != 0)
      throw Error(ErrorCode::Failed, std::string("cannot read the terminal settings: ") + std::strerror(errno));
    termios quiet = m_saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  ~EchoOff() { ::tcsetattr(m_fd, TCSAFLUSH, &m_saved); }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int m_fd;
  termios m_saved{};
};

// Reads until EOF, or until the first newline when stopAtNewline (a terminal line).
std::string readFrom(int fd, std::string_view source, bool stopAtNewline) {
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, stopAtNewline ? 1 : sizeof buffer);
    if (n < 0 && errno == EINTR) {
      if (g_promptInterrupted) throw Error(ErrorCode::Cancelled, "the password prompt was interrupted; nothing was changed");
      continue;
    }
    if (n < 0)
      throw Error(ErrorCode::InvalidArgument,
                  "cannot read the password from " + std::string(source) + ": " + std::strerror(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxPasswordBytes)
      throw Error(ErrorCode::InvalidArgument, "the password read from " + std::string(source) +
                                                  " is longer than 64 KiB; is it the right file?");
    if (stopAtNewline && text.back() == '\n') break;
  }
  return text;
}

std::string prompt(const std::string& repositoryName) {
  PromptInterruptGuard interruptGuard;
  EchoOff echoOff(STDIN_FILENO);
  std::cerr << "Password for repository " << repositoryName << ": " << std::flush;
  try {
    return readFrom(STDIN_FILENO, "the terminal", true);
  } catch (const Error&) {
    std::cerr << "\n";  // the error goes on its own line, not after the prompt
    throw;
  }
}

}  // namespace

std::string passwordFromText(std::string text, std::string_view source) {
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
  }
  if (text.empty())
    throw Error(ErrorCode::InvalidArgument, "the password read from " + std::string(source) +
                                                " is empty; a restic repository always has a password");
  return text;
}

std::string readSecretFile(const std::string& path, std::string_view what, bool stripNewline) {
  std::string text;
  if (path == "-") {
    text = readFrom(STDIN_FILENO, "stdin", false);
  } else {
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0)
      throw Error(ErrorCode::InvalidArgument, "cannot open " + path + ": " + std::strerror(errno) + "; check " + std::string(what));
    text = readFrom(fd.get(), path, false);
  }
  if (stripNewline && !text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
  }
  if (text.empty()) throw Error(ErrorCode::InvalidArgument, "the file given with " + std::string(what) + " is empty");
  return text;
}

std::string readRepositoryPassword(const std::string& passwordFile, const std::string& repositoryName) {
  if (passwordFile.empty() || passwordFile == "-") {
    if (::isatty(STDIN_FILENO) == 1) return passwordFromText(prompt(repositoryName), "the prompt");
    return passwordFromText(readFrom(STDIN_FILENO, "stdin", false), "stdin");
  }
  FileDescriptor fd(::open(passwordFile.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0)
    throw Error(ErrorCode::InvalidArgument,
                "cannot open the password file " + passwordFile + ": " + std::strerror(errno) + "; check --password-file");
  return passwordFromText(readFrom(fd.get(), passwordFile, false), passwordFile);
}

}  // namespace zerobyte::ctl
