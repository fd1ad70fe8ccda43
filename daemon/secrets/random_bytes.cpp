// OpenSSL's RAND_bytes with errors as zerobyte::Error.
#include "daemon/secrets/random_bytes.h"

#include "common/errors.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <array>
#include <string>

namespace zerobyte::secrets {

void fillRandom(unsigned char* data, size_t size) {
  if (RAND_bytes(data, static_cast<int>(size)) == 1) return;
  std::array<char, 256> buffer{};
  ERR_error_string_n(ERR_get_error(), buffer.data(), buffer.size());
  ERR_clear_error();
  throw Error(ErrorCode::Failed, std::string("the random number generator failed: ") + buffer.data());
}

}  // namespace zerobyte::secrets
