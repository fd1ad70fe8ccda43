// Erasing secret bytes from std::string buffers (shared by the vault and the reference resolver).
#pragma once

#include <openssl/crypto.h>

#include <string>

namespace zerobyte::secrets {

// Enough capacity to keep a string out of the small-string buffer: moving a heap-backed string
// hands over the pointer, while moving a short one copies its bytes and leaves them behind.
inline constexpr size_t kHeapBackedCapacity = 32;

// Wipes the whole buffer, not only size() bytes: a string shrunk earlier (a stripped newline,
// a moved-from short string) still holds old bytes past its end. resize() within the capacity
// never reallocates, and OPENSSL_cleanse is not optimised away.
inline void wipe(std::string& s) noexcept {
  s.resize(s.capacity());
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// An empty string whose bytes will live on the heap (see kHeapBackedCapacity).
inline std::string heapBackedString(size_t capacity = 0) {
  std::string s;
  s.reserve(capacity < kHeapBackedCapacity ? kHeapBackedCapacity : capacity);
  return s;
}

}  // namespace zerobyte::secrets
