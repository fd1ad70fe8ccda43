// SecretString: a string holder that wipes its bytes when it goes away.
#pragma once

#include "daemon/secrets/wipe.h"

#include <string>
#include <utility>

namespace zerobyte::secrets {

// A std::string-like holder that wipes its bytes (OPENSSL_cleanse) when destroyed.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) : m_value(std::move(value)) {}
  ~SecretString() { wipe(m_value); }
  SecretString(const SecretString&) = default;
  SecretString& operator=(const SecretString&) = default;
  SecretString(SecretString&&) noexcept = default;
  SecretString& operator=(SecretString&&) noexcept = default;
  const std::string& value() const noexcept { return m_value; }
  bool empty() const noexcept { return m_value.empty(); }

 private:
  std::string m_value;
};

}  // namespace zerobyte::secrets
