// KeyMaterial: master key bytes in memory that is never swapped, never dumped and wiped on release.
#pragma once

#include <cstddef>
#include <string_view>

namespace zerobyte::secrets {

// Holds key bytes in their own anonymous mapping: MADV_DONTDUMP keeps them out of core dumps,
// MADV_WIPEONFORK out of forked children, mlock out of swap (each best effort: mlock needs
// CAP_IPC_LOCK or RLIMIT_MEMLOCK room). The page is read-only once filled, and wiped
// (OPENSSL_cleanse) before it is unmapped.
class KeyMaterial {
 public:
  // Throws Error(Failed) when no memory can be mapped.
  explicit KeyMaterial(std::string_view bytes);
  ~KeyMaterial();
  KeyMaterial(const KeyMaterial&) = delete;
  KeyMaterial& operator=(const KeyMaterial&) = delete;

  const unsigned char* data() const noexcept { return static_cast<const unsigned char*>(m_page); }
  size_t size() const noexcept { return m_size; }
  std::string_view view() const noexcept { return {static_cast<const char*>(m_page), m_size}; }
  // Whether mlock succeeded (the bytes cannot reach swap).
  bool locked() const noexcept { return m_locked; }

 private:
  void* m_page = nullptr;
  size_t m_mapped = 0;
  size_t m_size = 0;
  bool m_locked = false;
};

}  // namespace zerobyte::secrets
