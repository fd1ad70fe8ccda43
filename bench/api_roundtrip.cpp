// bench_api_roundtrip: the same questions asked over D-Bus and over the Varlink socket, side by side: a Manager
// property Get against GetStatus, and ListVolumes on both.
#include "common/errors.h"
#include "common/names.h"
#include "common/varlink_client.h"

#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr int kDefaultCalls = 2000;
constexpr int kMaxCalls = 1'000'000;
constexpr int kWarmUpCalls = 20;

using Clock = std::chrono::steady_clock;

double medianUs(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// Times `calls` calls of `once` (after a few untimed ones), in microseconds.
std::vector<double> time(int calls, const std::function<void()>& once) {
  for (int i = 0; i < kWarmUpCalls; ++i) once();
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    auto start = Clock::now();
    once();
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return samples;
}

int usage() {
  std::cerr << "Usage: bench_api_roundtrip SOCKET BUS_ADDRESS [N]\n"
               "Against a running zerobyted that serves SOCKET and org.zerobyte.Daemon1 on the bus at BUS_ADDRESS\n"
               "(e.g. unix:path=/run/dbus/system_bus_socket), times N calls (default "
            << kDefaultCalls << ") of each and prints the medians side by side.\n"
               "bench/api_roundtrip runs it against a private bus and daemon.\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) return usage();
  const std::string socketPath = argv[1];
  int calls = kDefaultCalls;
  if (argc == 4) {
    char* end = nullptr;
    long value = std::strtol(argv[3], &end, 10);
    if (end == argv[3] || *end != '\0' || value < 10 || value > kMaxCalls) {
      std::cerr << "bench_api_roundtrip: N must be a whole number from 10 to " << kMaxCalls << ", not \"" << argv[3] << "\"\n";
      return 2;
    }
    calls = static_cast<int>(value);
  }
  try {
    // sd-bus takes the system bus's address from here.
    setenv("DBUS_SYSTEM_BUS_ADDRESS", argv[2], 1);
    auto connection = sdbus::createSystemBusConnection();
    auto manager = sdbus::createProxy(*connection, std::string(zerobyte::kBusName), std::string(zerobyte::kObjectRoot) + "/Manager");
    const std::string managerInterface = std::string(zerobyte::kBusName) + ".Manager";
    const std::map<std::string, sdbus::Variant> noOptions;

    size_t volumesOnBus = 0, volumesOnSocket = 0;
    auto busGet = time(calls, [&] {
      std::string version = manager->getProperty("Version").onInterface(managerInterface).get<std::string>();
      if (version.empty()) throw zerobyte::Error(zerobyte::ErrorCode::Failed, "Manager.Version is empty");
    });
    auto busList = time(calls, [&] {
      std::vector<sdbus::ObjectPath> paths;
      manager->callMethod("ListVolumes").onInterface(managerInterface).withArguments(noOptions).storeResultsTo(paths);
      volumesOnBus = paths.size();
    });

    zerobyte::varlink::Client client(socketPath);
    const std::string prefix = std::string(zerobyte::kVarlinkInterface) + ".";
    auto socketStatus = time(calls, [&] {
      auto reply = client.call(prefix + "GetStatus");
      if (!reply.contains("version")) throw zerobyte::Error(zerobyte::ErrorCode::Failed, "GetStatus replied without version");
    });
    auto socketList = time(calls, [&] { volumesOnSocket = client.call(prefix + "ListVolumes").at("volumes").size(); });
    if (volumesOnBus != volumesOnSocket)
      throw zerobyte::Error(zerobyte::ErrorCode::Failed, "D-Bus lists " + std::to_string(volumesOnBus) + " volumes, the socket " +
                                                             std::to_string(volumesOnSocket));

    std::cout << std::fixed << std::setprecision(1);
    std::cout << "median round trip, " << calls << " calls each (" << volumesOnBus << " volumes)\n";
    std::cout << "                       D-Bus (us)   socket (us)   D-Bus/socket\n";
    auto row = [](const char* what, const std::vector<double>& bus, const std::vector<double>& socket) {
      double b = medianUs(bus), s = medianUs(socket);
      std::cout << std::left << std::setw(22) << what << std::right << std::setw(11) << b << std::setw(14) << s << std::setw(15)
                << (s > 0 ? b / s : 0) << "\n";
    };
    row("status (Get / GetStatus)", busGet, socketStatus);
    row("ListVolumes", busList, socketList);
  } catch (const zerobyte::Error& e) {
    std::cerr << "bench_api_roundtrip: " << zerobyte::errorName(e.code()) << ": " << e.what() << "\n";
    return 1;
  } catch (const sdbus::Error& e) {
    std::cerr << "bench_api_roundtrip: " << e.getName() << ": " << e.getMessage() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_api_roundtrip: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
