// The error table and its name mappings.
#include "common/errors.h"

#include "common/names.h"

#include <array>

namespace zerobyte {
namespace {

constexpr std::array kErrors = {
#define ZEROBYTE_ERROR_INFO(name, exitCode, text) ErrorInfo{ErrorCode::name, #name, exitCode, text},
    ZEROBYTE_ERRORS(ZEROBYTE_ERROR_INFO)
#undef ZEROBYTE_ERROR_INFO
};

bool isVarlinkServiceError(ErrorCode code) {
  switch (code) {
    case ErrorCode::InterfaceNotFound:
    case ErrorCode::MethodNotFound:
    case ErrorCode::InvalidParameter:
    case ErrorCode::ExpectedMore:
      return true;
    default:
      return false;
  }
}

}  // namespace

const ErrorInfo& errorInfo(ErrorCode code) { return kErrors.at(static_cast<size_t>(code)); }

std::string_view errorName(ErrorCode code) { return errorInfo(code).name; }

std::string varlinkErrorName(ErrorCode code) {
  std::string prefix = isVarlinkServiceError(code) ? std::string(kVarlinkServiceInterface) : std::string(kVarlinkInterface);
  return prefix + "." + std::string(errorName(code));
}

std::string dbusErrorName(ErrorCode code) { return std::string(kDBusErrorPrefix) + std::string(errorName(code)); }

std::optional<ErrorCode> errorFromName(std::string_view name) {
  for (std::string_view prefix : {kVarlinkInterface, kVarlinkServiceInterface, kDBusErrorPrefix}) {
    std::string p(prefix);
    if (p.back() != '.') p += '.';
    if (name.substr(0, p.size()) == p) {
      name.remove_prefix(p.size());
      break;
    }
  }
  for (const auto& e : kErrors)
    if (e.name == name) return e.code;
  return std::nullopt;
}

Error::Error(ErrorCode code, std::string message, nlohmann::json details)
    : std::runtime_error(std::move(message)), m_code(code), m_details(std::move(details)) {}

}  // namespace zerobyte
