// bench_status_roundtrip: how long one GetStatus call takes, on a kept connection and with a new connection per call.
#include "common/errors.h"
#include "common/names.h"
#include "common/varlink_client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr int kDefaultCalls = 2000;
// Large enough to measure, small enough that a mistyped count cannot run for hours.
constexpr int kMaxCalls = 10'000'000;
// A few calls first so that page faults and the daemon's first-call allocations are not timed.
constexpr int kWarmUpCalls = 20;

using Clock = std::chrono::steady_clock;

const std::string kGetStatus = std::string(zerobyte::kVarlinkInterface) + ".GetStatus";

struct Summary {
  double medianUs = 0;
  double p99Us = 0;
  double minUs = 0;
  double maxUs = 0;
};

double microseconds(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Nearest-rank percentile: with few samples the p99 is an observed value, not an interpolation.
Summary summarize(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto rank = [&samples](double fraction) {
    size_t index = static_cast<size_t>(fraction * static_cast<double>(samples.size()) + 0.999999);
    return samples[std::clamp<size_t>(index, 1, samples.size()) - 1];
  };
  return {rank(0.5), rank(0.99), samples.front(), samples.back()};
}

// The reply is checked so that a daemon answering errors quickly cannot pass for a fast one.
void checkStatusReply(const nlohmann::json& reply) {
  if (!reply.is_object() || !reply.contains("version") || !reply.contains("uptime_seconds"))
    throw zerobyte::Error(zerobyte::ErrorCode::Failed, "GetStatus replied without version or uptime_seconds: " + reply.dump());
}

std::vector<double> timeOneConnection(const std::string& socketPath, int calls) {
  zerobyte::varlink::Client client(socketPath);
  for (int i = 0; i < kWarmUpCalls; ++i) checkStatusReply(client.call(kGetStatus));
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    auto start = Clock::now();
    auto reply = client.call(kGetStatus);
    samples.push_back(microseconds(Clock::now() - start));
    checkStatusReply(reply);
  }
  return samples;
}

// Connect, call, close: what one `zerobytectl status` costs apart from process start-up.
std::vector<double> timeFreshConnections(const std::string& socketPath, int calls) {
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    nlohmann::json reply;
    auto start = Clock::now();
    {
      zerobyte::varlink::Client client(socketPath);
      reply = client.call(kGetStatus);
    }
    samples.push_back(microseconds(Clock::now() - start));
    checkStatusReply(reply);
  }
  return samples;
}

void print(const char* label, const Summary& s, size_t count) {
  std::cout.setf(std::ios::fixed);
  std::cout.precision(1);
  std::cout << "status round trip (" << label << "): median " << s.medianUs << " us, p99 " << s.p99Us
            << " us (target < 1 ms); min " << s.minUs << " us, max " << s.maxUs << " us, " << count << " calls\n";
}

int usage() {
  std::cerr << "Usage: bench_status_roundtrip SOCKET [N]\n"
               "Calls " << kGetStatus << " N times (default " << kDefaultCalls
            << ") on one connection, then N/10 times with a new connection each,\n"
               "and prints the median and p99 round trip in microseconds.\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) return usage();
  const std::string socketPath = argv[1];
  int calls = kDefaultCalls;
  if (argc == 3) {
    char* end = nullptr;
    long value = std::strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || value < 10 || value > kMaxCalls) {
      std::cerr << "bench_status_roundtrip: N must be a whole number from 10 to " << kMaxCalls << ", not \"" << argv[2] << "\"\n";
      return 2;
    }
    calls = static_cast<int>(value);
  }
  try {
    auto kept = timeOneConnection(socketPath, calls);
    print("one connection", summarize(kept), kept.size());
    auto fresh = timeFreshConnections(socketPath, calls / 10);
    print("new connection each", summarize(fresh), fresh.size());
  } catch (const zerobyte::Error& e) {
    std::cerr << "bench_status_roundtrip: " << zerobyte::errorName(e.code()) << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_status_roundtrip: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
