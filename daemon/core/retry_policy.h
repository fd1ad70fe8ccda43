// When a failed scheduled run is tried again.
#pragma once

#include <algorithm>
#include <cstdint>

namespace zerobyte::core {

// The longest wait between two attempts of a schedule's run.
inline constexpr uint64_t kMaxRetryDelaySeconds = 6 * 3600;

// Seconds before attempt `attempt + 1` of a run whose attempt `attempt` (1 for the first) failed. A repository whose
// server could not be reached backs off: the schedule's delay doubles with each attempt (delay, 2×, 4×, ... at most
// six hours), so a server that is down for a while is not hammered and a short outage is still bridged soon. Any
// other failure waits the schedule's delay each time.
inline uint64_t retryDelaySeconds(uint32_t delaySeconds, uint32_t attempt, bool unreachable) {
  if (!unreachable || attempt <= 1) return std::min<uint64_t>(delaySeconds, kMaxRetryDelaySeconds);
  const uint32_t doublings = std::min<uint32_t>(attempt - 1, 20);
  return std::min<uint64_t>(static_cast<uint64_t>(delaySeconds) << doublings, kMaxRetryDelaySeconds);
}

}  // namespace zerobyte::core
