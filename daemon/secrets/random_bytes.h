// Random bytes from OpenSSL's generator, shared by the vault and the master key files.
#pragma once

#include <cstddef>

namespace zerobyte::secrets {

// Throws Error(Failed) when the generator fails.
void fillRandom(unsigned char* data, size_t size);

}  // namespace zerobyte::secrets
