// Well-known names shared by zerobyted and zerobytectl: interfaces, paths, defaults.
#pragma once

#include <string_view>

namespace zerobyte {

inline constexpr std::string_view kVarlinkInterface = "org.zerobyte.Daemon";
inline constexpr std::string_view kVarlinkServiceInterface = "org.varlink.service";
inline constexpr std::string_view kBusName = "org.zerobyte.Daemon1";
inline constexpr std::string_view kObjectRoot = "/org/zerobyte/Daemon1";
inline constexpr std::string_view kDBusErrorPrefix = "org.zerobyte.Daemon1.Error.";

inline constexpr std::string_view kDefaultConfigPath = "/etc/zerobyte/zerobyte.yaml";
inline constexpr std::string_view kDefaultStateDirectory = "/var/lib/zerobyte";
inline constexpr std::string_view kDefaultRuntimeDirectory = "/run/zerobyte";
inline constexpr std::string_view kDefaultCacheDirectory = "/var/cache/zerobyte";
inline constexpr std::string_view kSocketFileName = "zerobyted.sock";
inline constexpr std::string_view kDefaultSocketPath = "/run/zerobyte/zerobyted.sock";
// zerobytectl reads this when --socket is not given.
inline constexpr std::string_view kSocketEnvironmentVariable = "ZEROBYTE_SOCKET";

// Largest Varlink message either side accepts, including the terminating NUL.
inline constexpr size_t kMaxMessageSize = 1024 * 1024;

}  // namespace zerobyte
