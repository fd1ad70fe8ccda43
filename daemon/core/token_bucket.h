// A token bucket: a burst of `capacity` events, then `refillPerSecond` on average (rate limits).
#pragma once

#include <algorithm>
#include <cstdint>

namespace zerobyte::core {

class TokenBucket {
 public:
  TokenBucket(double capacity, double refillPerSecond, uint64_t nowUsec)
      : m_capacity(capacity), m_refill(refillPerSecond), m_tokens(capacity), m_lastUsec(nowUsec) {}

  // Takes one token if there is one.
  bool take(uint64_t nowUsec) {
    refill(nowUsec);
    if (m_tokens < 1.0) return false;
    m_tokens -= 1.0;
    return true;
  }
  // Microseconds until a token is available (0 if one is now).
  uint64_t waitUsec(uint64_t nowUsec) {
    refill(nowUsec);
    if (m_tokens >= 1.0 || m_refill <= 0) return 0;
    return static_cast<uint64_t>((1.0 - m_tokens) / m_refill * 1e6) + 1;
  }
  bool full(uint64_t nowUsec) {
    refill(nowUsec);
    return m_tokens >= m_capacity;
  }

 private:
  void refill(uint64_t nowUsec) {
    if (nowUsec > m_lastUsec) {
      m_tokens = std::min(m_capacity, m_tokens + static_cast<double>(nowUsec - m_lastUsec) / 1e6 * m_refill);
      m_lastUsec = nowUsec;
    }
  }
  double m_capacity;
  double m_refill;
  double m_tokens;
  uint64_t m_lastUsec;
};

}  // namespace zerobyte::core
