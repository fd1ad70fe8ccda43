// Key bytes in a locked, non-dumpable mapping of their own.
#include "daemon/secrets/key_material.h"

#include "common/errors.h"

#include <openssl/crypto.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace zerobyte::secrets {

KeyMaterial::KeyMaterial(std::string_view bytes) : m_size(bytes.size()) {
  const long pageSize = ::sysconf(_SC_PAGESIZE);
  const size_t page = pageSize > 0 ? static_cast<size_t>(pageSize) : 4096;
  m_mapped = (bytes.size() + page - 1) / page * page;
  if (m_mapped == 0) m_mapped = page;
  m_page = ::mmap(nullptr, m_mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m_page == MAP_FAILED) {
    m_page = nullptr;
    throw Error(ErrorCode::Failed, "cannot map memory for the master key: " + std::generic_category().message(errno));
  }
  // Best effort, in this order: excluded from dumps and children before the bytes arrive.
  ::madvise(m_page, m_mapped, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
  ::madvise(m_page, m_mapped, MADV_WIPEONFORK);
#endif
  m_locked = ::mlock(m_page, m_mapped) == 0;
  if (!bytes.empty()) std::memcpy(m_page, bytes.data(), bytes.size());
  // Nothing writes a key after this: a stray write faults instead of corrupting it.
  ::mprotect(m_page, m_mapped, PROT_READ);
}

KeyMaterial::~KeyMaterial() {
  if (m_page == nullptr) return;
  ::mprotect(m_page, m_mapped, PROT_READ | PROT_WRITE);
  OPENSSL_cleanse(m_page, m_mapped);
  if (m_locked) ::munlock(m_page, m_mapped);
  ::munmap(m_page, m_mapped);
}

}  // namespace zerobyte::secrets
