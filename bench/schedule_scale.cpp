// bench_schedule_scale: what many schedules cost zerobyted. Two private daemons side by side, one with no schedule
// and one with N (default 10,000) that are not due during the run: start time until the socket answers, wake-ups
// while idle (context switches per minute, from /proc/PID/status), resident memory, and how fast schedules are
// created and listed. Prints each number for both and the ratio.
#include "common/errors.h"
#include "common/names.h"
#include "common/varlink_client.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kMaxCount = 200000;
constexpr int kStartTimeoutMs = 600000;

std::string method(const char* name) { return std::string(zerobyte::kVarlinkInterface) + "." + name; }

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Daemon {
  std::string dir;
  std::string zerobyted;
  pid_t pid = -1;

  std::string socket() const { return dir + "/run/zerobyted.sock"; }

  // Starts zerobyted; returns the seconds until GetStatus answers.
  double start() {
    auto begin = Clock::now();
    pid = fork();
    if (pid == 0) {
      std::string log = dir + "/zerobyted.log";
      FILE* out = std::freopen(log.c_str(), "a", stderr);
      (void)out;
      execl(zerobyted.c_str(), zerobyted.c_str(), "--config", (dir + "/zerobyte.yaml").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int waited = 0; waited < kStartTimeoutMs; waited += 5) {
      try {
        zerobyte::varlink::Client client(socket());
        client.call(method("GetStatus"));
        return seconds(Clock::now() - begin);
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) throw std::runtime_error("zerobyted exited at start; see " + dir + "/zerobyted.log");
    }
    throw std::runtime_error("zerobyted did not answer within 600 s");
  }

  void stop() {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
  }

  // voluntary + involuntary context switches so far: each wake-up of the loop is at least one.
  long contextSwitches() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    long total = 0;
    while (std::getline(in, line))
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        total += std::stol(line.substr(line.find(':') + 1));
    return total;
  }

  double rssMiB() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
  }
};

Daemon makeDaemon(const std::string& root, const std::string& name, const std::string& zerobyted) {
  Daemon d{root + "/" + name, zerobyted};
  fs::create_directories(d.dir + "/data");
  std::ofstream(d.dir + "/data/file") << "bench";
  std::ofstream config(d.dir + "/zerobyte.yaml");
  config << "daemon:\n  state_directory: " << d.dir << "/state\n  runtime_directory: " << d.dir << "/run\n  cache_directory: " << d.dir
         << "/cache\n  authorization: groups\n  dbus: off\n  log_level: warning\n";
  return d;
}

void prepare(Daemon& d, int count) {
  zerobyte::varlink::Client client(d.socket());
  client.call(method("CreateVolume"), {{"name", "data"}, {"type", "directory"}, {"path", d.dir + "/data"}});
  client.call(method("CreateRepository"), {{"name", "repo"}, {"type", "local"}, {"path", d.dir + "/repo"}});
  // Fire times spread over the year's first days in three zones: none is due while the bench runs (unless it runs
  // on January 1st-28th at those hours, which it says).
  const char* zones[] = {"UTC", "Europe/Berlin", "America/New_York"};
  for (int i = 0; i < count; ++i) {
    std::string cron = std::to_string(i % 60) + " " + std::to_string((i / 60) % 24) + " " + std::to_string(1 + (i / 1440) % 28) + " 1 *";
    client.call(method("CreateSchedule"), {{"name", "s" + std::to_string(i)},
                                           {"volume", "data"},
                                           {"repository", "repo"},
                                           {"cron", cron},
                                           {"timezone", zones[i % 3]},
                                           {"keep_daily", 7}});
  }
}

void row(const std::string& what, double none, double many, const std::string& unit) {
  char line[256];
  std::snprintf(line, sizeof(line), "%-38s %12.3f %12.3f %-8s ratio %.2f", what.c_str(), none, many, unit.c_str(),
                none > 0 ? many / none : 0.0);
  std::cout << line << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string zerobyted = "build/daemon/zerobyted";
  int count = 10000;
  int idleSeconds = 60;
  bool keep = false;
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key == "--keep") {
      keep = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "bench_schedule_scale: " << key << " needs a value\n";
      return 2;
    }
    std::string value = argv[i + 1];
    if (key == "--zerobyted") zerobyted = value;
    else if (key == "--count") count = std::stoi(value);
    else if (key == "--idle-seconds") idleSeconds = std::stoi(value);
    else {
      std::cerr << "usage: bench_schedule_scale [--zerobyted PATH] [--count N] [--idle-seconds S] [--keep]\n";
      return 2;
    }
  }
  if (count < 1 || count > kMaxCount || idleSeconds < 5 || idleSeconds > 3600) {
    std::cerr << "--count is 1-200000, --idle-seconds 5-3600\n";
    return 2;
  }
  zerobyted = fs::absolute(zerobyted).string();
  char pattern[] = "/var/tmp/zerobyte-bench-schedules-XXXXXX";
  if (!mkdtemp(pattern)) return 1;
  const std::string root = pattern;
  try {
    Daemon none = makeDaemon(root, "none", zerobyted), many = makeDaemon(root, "many", zerobyted);
    none.start();
    prepare(none, 0);
    many.start();
    auto createBegin = Clock::now();
    prepare(many, count);
    double createSeconds = seconds(Clock::now() - createBegin);
    none.stop();
    many.stop();

    // Start times: each daemon with its store already on disk (the page cache warm for both alike).
    double startNone = none.start(), startMany = many.start();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    double rssNone = none.rssMiB(), rssMany = many.rssMiB();
    auto listBegin = Clock::now();
    auto list = zerobyte::varlink::Client(many.socket()).call(method("ListSchedules"));
    double listSeconds = seconds(Clock::now() - listBegin);
    if (list.at("schedules").size() != static_cast<size_t>(count)) throw std::runtime_error("ListSchedules did not list every schedule");

    std::this_thread::sleep_for(std::chrono::seconds(2));  // the start's own work settles
    long switchesNone = none.contextSwitches(), switchesMany = many.contextSwitches();
    std::this_thread::sleep_for(std::chrono::seconds(idleSeconds));
    double perMinute = 60.0 / idleSeconds;
    double wakeNone = static_cast<double>(none.contextSwitches() - switchesNone) * perMinute;
    double wakeMany = static_cast<double>(many.contextSwitches() - switchesMany) * perMinute;

    std::cout << "zerobyted with 0 and with " << count << " schedules (none due), idle for " << idleSeconds << " s\n";
    std::cout << "                                       0 schedules  " << count << " schedules\n";
    row("start until the socket answers", startNone, startMany, "s");
    row("idle wake-ups (context switches)/min", wakeNone, wakeMany, "/min");
    row("resident memory after start (VmRSS)", rssNone, rssMany, "MiB");
    row("resident memory after ListSchedules", none.rssMiB(), many.rssMiB(), "MiB");
    std::printf("creating %d schedules over the socket: %.2f s (%.0f per second)\n", count, createSeconds, count / createSeconds);
    std::printf("ListSchedules of %d schedules: %.3f s\n", count, listSeconds);
    std::cout << "target: idle wake-ups only when something is due (0/min for both), start under 2 s\n";
    none.stop();
    many.stop();
    if (keep) {
      std::cout << "kept " << root << " (start a daemon on it: zerobyted --config " << root << "/many/zerobyte.yaml)\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_schedule_scale: " << e.what() << "\n";
    fs::remove_all(root);
    return 1;
  }
  fs::remove_all(root);
  return 0;
}
