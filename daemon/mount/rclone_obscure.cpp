// rclone's "obscured" form of a password.
#include "daemon/mount/rclone_obscure.h"

#include "common/errors.h"
#include "daemon/secrets/random_bytes.h"

#include <openssl/evp.h>

#include <array>
#include <memory>

namespace zerobyte::mount {
namespace {

// rclone's published key for obscuring config values (fs/config/obscure).
constexpr std::array<unsigned char, 32> kKey = {0x9c, 0x93, 0x5b, 0x48, 0x73, 0x0a, 0x55, 0x4d, 0x6b, 0xfd, 0x7c,
                                                0x63, 0xc8, 0x86, 0xa9, 0x2b, 0xd3, 0x90, 0x19, 0x8e, 0xb8, 0x12,
                                                0x8a, 0xfb, 0xf4, 0xde, 0x16, 0x2b, 0x8b, 0x95, 0xf6, 0x38};

std::string base64UrlUnpadded(const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  auto at = [&bytes](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 0x3f];
  }
  if (bytes.size() - i == 1) {
    uint32_t v = at(i) << 16;
    out += kAlphabet[(v >> 18) & 0x3f];
    out += kAlphabet[(v >> 12) & 0x3f];
  } else if (bytes.size() - i == 2) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    for (int shift : {18, 12, 6}) out += kAlphabet[(v >> shift) & 0x3f];
  }
  return out;
}

}  // namespace

std::string rcloneObscure(std::string_view plain) {
  std::string iv(16, '\0');
  secrets::fillRandom(reinterpret_cast<unsigned char*>(iv.data()), iv.size());
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (!ctx) throw Error(ErrorCode::Internal, "cannot allocate a cipher context");
  std::string out = iv;
  out.resize(iv.size() + plain.size());
  int written = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, kKey.data(), reinterpret_cast<const unsigned char*>(iv.data())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data() + iv.size()), &written,
                        reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size())) != 1 ||
      static_cast<size_t>(written) != plain.size())
    throw Error(ErrorCode::Internal, "obscuring a value for rclone failed");
  return base64UrlUnpadded(out);
}

}  // namespace zerobyte::mount
