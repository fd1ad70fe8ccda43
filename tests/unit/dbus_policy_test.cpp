// The shipped bus policy, bus activation file and unit: on a real dbus-daemon only root takes the
// daemon's name and every user reaches exactly the published interfaces; a real install puts the
// files where dbus-daemon reads them, and the activation file and the unit name each other.
#include "tests/support/polkit_env.h"
#include "tests/unit/test_support.h"

#include <systemd/sd-bus.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using zbtest::unit::readFile;

constexpr const char* kBusName = "org.zerobyte.Daemon1";
constexpr const char* kManagerPath = "/org/zerobyte/Daemon1/Manager";
constexpr const char* kAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
constexpr auto kChildTimeout = std::chrono::seconds(30);

const std::filesystem::path kDbusDir = std::filesystem::path(ZB_SOURCE_DIR) / "dbus";

std::string readSource(const std::string& name) {
  std::ifstream in(kDbusDir / name, std::ios::binary);
  if (!in) throw std::runtime_error("missing " + (kDbusDir / name).string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using BusPtr = std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)>;

// A client connection to the bus at `address` (sd_bus_start says Hello) as this process's user.
BusPtr connectBus(const std::string& address) {
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  if (r < 0) throw std::runtime_error(std::string("sd_bus_new: ") + std::strerror(-r));
  BusPtr bus(raw, &sd_bus_flush_close_unref);
  r = sd_bus_set_address(raw, address.c_str());
  if (r >= 0) r = sd_bus_set_bus_client(raw, 1);
  if (r >= 0) r = sd_bus_start(raw);
  if (r < 0) throw std::runtime_error("cannot connect to " + address + ": " + std::strerror(-r));
  return bus;
}

// What came back: "" for a method return, else the D-Bus error name.
std::string outcome(int r, const sd_bus_error& error) {
  if (r >= 0) return "";
  if (sd_bus_error_is_set(&error)) return error.name;
  return std::string("no reply: ") + std::strerror(-r);
}

// RequestName(org.zerobyte.Daemon1): "" when the caller became its primary owner, else why not.
std::string requestName(sd_bus* bus) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                             &error, &reply, "su", kBusName, 0u);
  uint32_t result = 0;
  if (r >= 0) r = sd_bus_message_read(reply, "u", &result);
  std::string what = outcome(r, error);
  if (what.empty() && result != 1) what = "RequestName replied " + std::to_string(result) + " instead of 1 (primary owner)";
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  return what;
}

// A method call without arguments to the daemon's name: "" for a method return, else the error name.
std::string callDaemon(sd_bus* bus, const std::string& interface, const std::string& member) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus, kBusName, kManagerPath, interface.c_str(), member.c_str(), &error, &reply, "");
  std::string what = outcome(r, error);
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  return what;
}

// Runs `body` in a child process that is `user` (uid, gid and groups) and returns what it returned.
// Meanwhile this process serves `owner` (if given), so calls to the name it owns are answered.
std::string asUser(const zbtest::RoleUser& user, sd_bus* owner, const std::function<std::string()>& body) {
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  while (::getgrouplist(user.name.c_str(), user.gid, groups.data(), &count) < 0) groups.resize(static_cast<size_t>(count));
  groups.resize(static_cast<size_t>(count));

  int result[2];
  if (::pipe2(result, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The test process has no other threads, so the child may allocate and use sd-bus.
    ::close(result[0]);
    std::string text;
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(user.gid, user.gid, user.gid) != 0 ||
        ::setresuid(user.uid, user.uid, user.uid) != 0) {
      text = "cannot become " + user.name + ": " + std::strerror(errno);
    } else {
      try {
        // The mark tells "" (success) from a child that died without answering.
        text = "=" + body();
      } catch (const std::exception& e) {
        text = std::string("failed as ") + user.name + ": " + e.what();
      }
    }
    for (size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(result[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(result[1]);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + kChildTimeout;
  for (;;) {
    if (owner)
      while (sd_bus_process(owner, nullptr) > 0) {
      }
    pollfd fds[2] = {{result[0], POLLIN, 0}, {owner ? sd_bus_get_fd(owner) : -1, static_cast<short>(owner ? sd_bus_get_events(owner) : 0), 0}};
    ::poll(fds, 2, 50);
    if (fds[0].revents != 0) {
      char buffer[4096];
      const ssize_t n = ::read(result[0], buffer, sizeof buffer);
      if (n > 0) text.append(buffer, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR) break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      text += " (the child as " + user.name + " did not finish in time)";
      break;
    }
  }
  ::close(result[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (text.empty() || text[0] != '=')
    return "the child as " + user.name + " gave no answer (status " + std::to_string(status) + "): " + text;
  return text.substr(1);
}

// Records "interface.member" of every method call that reaches the owner's connection, before
// sd-bus answers it: what the bus let through.
int recordCall(sd_bus_message* message, void* userdata, sd_bus_error*) {
  if (sd_bus_message_is_method_call(message, nullptr, nullptr) > 0) {
    const char* interface = sd_bus_message_get_interface(message);
    const char* member = sd_bus_message_get_member(message);
    static_cast<std::vector<std::string>*>(userdata)->push_back(std::string(interface ? interface : "") + "." + (member ? member : ""));
  }
  return 0;
}

zbtest::PolkitEnvironment::Options busOnly() {
  zbtest::PolkitEnvironment::Options options;
  options.startPolkitd = false;
  return options;
}

// The private system bus with the stock policy and the project's dbus/org.zerobyte.Daemon1.conf.
class BusPolicy : public ::testing::Test {
 protected:
  zbtest::PolkitEnvironment m_bus{busOnly()};
};

TEST_F(BusPolicy, DbusDaemonReadsThePolicyWithoutComplaint) {
  auto root = connectBus(m_bus.busAddress());
  // A broken file in an includedir does not stop dbus-daemon: it says so on stderr and leaves the file out.
  EXPECT_FALSE(zbtest::unit::contains(m_bus.log(), "Encountered error")) << m_bus.log();
  EXPECT_FALSE(zbtest::unit::contains(m_bus.log(), "org.zerobyte.Daemon1.conf")) << m_bus.log();
  // The stock policy lets no one own a name; this works only because the project's file was applied.
  EXPECT_EQ(requestName(root.get()), "") << m_bus.log();
}

TEST_F(BusPolicy, OnlyRootMayOwnTheDaemonsName) {
  // The name is still free: a refusal is the policy, not someone else holding the name.
  for (const auto& user : zbtest::roleUsers())
    EXPECT_EQ(asUser(user, nullptr, [&] { return requestName(connectBus(m_bus.busAddress()).get()); }), kAccessDenied)
        << user.name << " (role " << user.role << ") must not own " << kBusName;
  auto root = connectBus(m_bus.busAddress());
  EXPECT_EQ(requestName(root.get()), "");
}

TEST(BusPolicyMissing, WithoutTheProjectsPolicyNotEvenRootMayOwnTheName) {
  zbtest::unit::TemporaryDirectory scratch("zb-dbus-policy");
  const auto empty = scratch.path() / "empty.conf";
  zbtest::unit::writeFile(empty,
                          "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                          " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig/>\n");
  auto options = busOnly();
  options.busPolicyFile = empty;
  zbtest::PolkitEnvironment bus(options);
  auto root = connectBus(bus.busAddress());
  // (The test bus never reads an installed copy of the policy: see PolkitEnvironment.)
  EXPECT_EQ(requestName(root.get()), kAccessDenied);
}

TEST_F(BusPolicy, AnyUserReachesThePublishedInterfacesAndNothingElse) {
  auto owner = connectBus(m_bus.busAddress());
  ASSERT_EQ(requestName(owner.get()), "") << m_bus.log();
  std::vector<std::string> delivered;
  ASSERT_GE(sd_bus_add_filter(owner.get(), nullptr, recordCall, &delivered), 0);
  const auto& user = zbtest::roleUser("none");

  // sd-bus answers Peer.Ping on every connection: a real round trip through the bus.
  EXPECT_EQ(asUser(user, owner.get(), [&] { return callDaemon(connectBus(m_bus.busAddress()).get(), "org.freedesktop.DBus.Peer", "Ping"); }), "");

  // The daemon's own answer to an unknown member is not AccessDenied: each of these reached it.
  const std::vector<std::string> published = {
      "org.zerobyte.Daemon1.Manager",       "org.zerobyte.Daemon1.Volume",          "org.zerobyte.Daemon1.Repository",
      "org.zerobyte.Daemon1.Schedule",      "org.zerobyte.Daemon1.Job",             "org.freedesktop.DBus.Properties",
      "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.ObjectManager",
  };
  for (const auto& interface : published)
    EXPECT_NE(asUser(user, owner.get(), [&] { return callDaemon(connectBus(m_bus.busAddress()).get(), interface, "Probe"); }), kAccessDenied)
        << interface;

  EXPECT_EQ(asUser(user, owner.get(), [&] { return callDaemon(connectBus(m_bus.busAddress()).get(), "org.zerobyte.Daemon1.Secret", "Reveal"); }),
            kAccessDenied);

  std::vector<std::string> expected = {"org.freedesktop.DBus.Peer.Ping"};
  for (const auto& interface : published) expected.push_back(interface + ".Probe");
  EXPECT_EQ(delivered, expected) << "the bus must deliver the published interfaces and refuse the rest itself";
}

// ---------------------------------------------------------------------------------------------

// Key=value lines of one [Section] of a unit or D-Bus service file; a repeated key keeps every value.
std::map<std::string, std::vector<std::string>> section(const std::string& text, const std::string& name) {
  std::map<std::string, std::vector<std::string>> keys;
  std::istringstream lines(text);
  bool inside = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      inside = line == "[" + name + "]";
      continue;
    }
    const auto equals = line.find('=');
    if (inside && equals != std::string::npos) keys[line.substr(0, equals)].push_back(line.substr(equals + 1));
  }
  return keys;
}

// Runs `cmake --install` of the whole build tree into `destdir`, as a package build does; the
// output goes to `log`. Returns the exit status.
int installInto(const std::filesystem::path& destdir, const std::filesystem::path& log) {
  const std::vector<std::string> argv = {ZB_CMAKE_COMMAND, "--install", ZB_BINARY_DIR, "--prefix", "/usr/local"};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string destdirEntry = "DESTDIR=" + destdir.string();
  const int logFd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error("cannot open " + log.string());
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(logFd, STDOUT_FILENO);
    ::dup2(logFd, STDERR_FILENO);
    ::putenv(const_cast<char*>(destdirEntry.c_str()));
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(logFd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A dbus-daemon started on a config of its own; stopped (by pid) and reaped at the end of the scope.
class ScratchBus {
 public:
  // Starts dbus-daemon on `config` and waits until it prints its address (it is then listening);
  // throws with what it printed when it does not get that far.
  ScratchBus(const std::filesystem::path& config, const std::filesystem::path& log) {
    int address[2];
    if (::pipe2(address, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    const int logFd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logFd < 0) throw std::runtime_error("cannot open " + log.string());
    const std::vector<std::string> argv = {"/usr/bin/dbus-daemon", "--config-file=" + config.string(), "--nofork", "--nopidfile",
                                           "--print-address=3"};
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (m_pid == 0) {
      ::dup2(logFd, STDOUT_FILENO);
      ::dup2(logFd, STDERR_FILENO);
      ::dup2(address[1], 3);  // dup2 clears close-on-exec on the copy
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(logFd);
    ::close(address[1]);
    pollfd ready{address[0], POLLIN, 0};
    // EOF without an address: dbus-daemon refused the config and exited.
    if (::poll(&ready, 1, 20000) > 0) {
      char buffer[512];
      const ssize_t n = ::read(address[0], buffer, sizeof buffer);
      if (n > 0) m_address.assign(buffer, static_cast<size_t>(n));
    }
    ::close(address[0]);
    if (auto end = m_address.find('\n'); end != std::string::npos) m_address.resize(end);
    if (m_address.empty()) {
      stop();
      throw std::runtime_error("dbus-daemon did not start on " + config.string() + ":\n" + readFile(log));
    }
  }
  ~ScratchBus() { stop(); }
  ScratchBus(const ScratchBus&) = delete;
  ScratchBus& operator=(const ScratchBus&) = delete;

  const std::string& address() const { return m_address; }

 private:
  void stop() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGTERM);
    while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    m_pid = -1;
  }

  pid_t m_pid = -1;
  std::string m_address;
};

// The names dbus-daemon could start on demand (ListActivatableNames).
std::vector<std::string> activatableNames(sd_bus* bus) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ListActivatableNames",
                             &error, &reply, "");
  char** names = nullptr;
  if (r >= 0) r = sd_bus_message_read_strv(reply, &names);
  const std::string what = outcome(r, error);
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  if (!what.empty()) throw std::runtime_error("ListActivatableNames: " + what);
  std::vector<std::string> out;
  for (char** name = names; name && *name; ++name) {
    out.emplace_back(*name);
    std::free(*name);
  }
  std::free(names);
  return out;
}

// dbus-daemon reads policies and activation files only below /usr/share/dbus-1: an install under
// another prefix must still put them there, and the activation file must name the unit's alias.
class BusInstall : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto log = m_scratch.path() / "install.log";
    ASSERT_EQ(installInto(m_destdir, log), 0) << readFile(log);
  }
  zbtest::unit::TemporaryDirectory m_scratch{"zb-dbus-install"};
  std::filesystem::path m_destdir = m_scratch.path() / "root";
};

TEST_F(BusInstall, PutsThePolicyAndActivationFileWhereDbusDaemonReadsThemWhateverThePrefix) {
  const auto root = m_destdir / "usr/share/dbus-1";
  EXPECT_EQ(readFile(root / "system.d/org.zerobyte.Daemon1.conf"), readSource("org.zerobyte.Daemon1.conf"));
  EXPECT_EQ(readFile(root / "system-services/org.zerobyte.Daemon1.service"), readSource("org.zerobyte.Daemon1.service"));
  EXPECT_FALSE(std::filesystem::exists(m_destdir / "usr/local/share/dbus-1/system.d"));
  EXPECT_FALSE(std::filesystem::exists(m_destdir / "usr/local/share/dbus-1/system-services"));
  for (const char* interface : {"Manager", "Volume", "Repository", "Job"}) {
    const std::string name = std::string("org.zerobyte.Daemon1.") + interface + ".xml";
    EXPECT_EQ(readFile(m_destdir / "usr/local/share/dbus-1/interfaces" / name), readSource(name)) << name;
  }
}

// What dbus-daemon makes of the installed files: the policy is <include>d, where a file it cannot
// use stops the bus (an includedir would only log it), and the activation file is in a servicedir.
TEST_F(BusInstall, DbusDaemonLoadsTheInstalledPolicyAndOffersTheNameForActivation) {
  const auto dbus = m_destdir / "usr/share/dbus-1";
  const auto config = m_scratch.path() / "bus.conf";
  zbtest::unit::writeFile(config, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                                  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                                  "  <type>system</type>\n"
                                  "  <listen>unix:path=" + (m_scratch.path() / "bus_socket").string() + "</listen>\n"
                                  "  <auth>EXTERNAL</auth>\n"
                                  "  <servicedir>" + (dbus / "system-services").string() + "</servicedir>\n"
                                  "  <policy context=\"default\">\n"
                                  "    <allow user=\"*\"/>\n"
                                  "    <allow send_destination=\"org.freedesktop.DBus\"/>\n"
                                  "    <allow receive_sender=\"org.freedesktop.DBus\"/>\n"
                                  "  </policy>\n"
                                  "  <include>" + (dbus / "system.d/org.zerobyte.Daemon1.conf").string() + "</include>\n"
                                  "</busconfig>\n");
  ScratchBus bus(config, m_scratch.path() / "dbus-daemon.log");
  auto client = connectBus(bus.address());
  const auto names = activatableNames(client.get());
  std::string listed;
  for (const auto& name : names) listed += " " + name;
  EXPECT_NE(std::find(names.begin(), names.end(), kBusName), names.end())
      << "activatable:" << listed << "\n" << readFile(m_scratch.path() / "dbus-daemon.log");
}

TEST_F(BusInstall, BusActivationStartsTheDaemonsUnitThroughItsAlias) {
  std::vector<std::filesystem::path> units;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(m_destdir))
    if (entry.path().filename() == "zerobyted.service" && entry.path().parent_path().filename() == "system") units.push_back(entry.path());
  ASSERT_EQ(units.size(), 1u) << "expected one installed zerobyted.service below " << m_destdir;
  const std::string unitText = readFile(units[0]);
  const auto service = section(unitText, "Service");
  const auto install = section(unitText, "Install");
  const auto activation = section(readFile(m_destdir / "usr/share/dbus-1/system-services/org.zerobyte.Daemon1.service"), "D-BUS Service");

  using Values = std::vector<std::string>;
  EXPECT_EQ(service.count("BusName") ? service.at("BusName") : Values{}, Values{kBusName}) << unitText;
  // Readiness still comes from the daemon's own notification, not from the name appearing.
  EXPECT_EQ(service.count("Type") ? service.at("Type") : Values{}, Values{"notify"}) << unitText;
  EXPECT_EQ(install.count("Alias") ? install.at("Alias") : Values{}, Values{"dbus-org.zerobyte.Daemon1.service"}) << unitText;

  EXPECT_EQ(activation.count("Name") ? activation.at("Name") : Values{}, Values{kBusName});
  EXPECT_EQ(activation.count("User") ? activation.at("User") : Values{}, Values{"root"});
  EXPECT_EQ(activation.count("Exec") ? activation.at("Exec") : Values{}, Values{"/bin/false"});
  ASSERT_TRUE(activation.count("SystemdService"));
  ASSERT_TRUE(install.count("Alias"));
  EXPECT_EQ(activation.at("SystemdService"), install.at("Alias"));
}

}  // namespace
