// Times given on zerobytectl's command line ("2024-05-01", "2024-05-01 10:30", "2h" ago) as seconds since the epoch.
#pragma once

#include <ctime>
#include <optional>
#include <string_view>

namespace zerobyte::ctl {

// "YYYY-MM-DD" (midnight), "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" in the local time zone
// (a 'T' may stand for the space), or a span before `now`: a number and s, m, h, d or w
// ("30m", "2h", "7d"). Nothing else, and no impossible date (2024-02-30): nullopt.
std::optional<std::time_t> parseTimeArgument(std::string_view text, std::time_t now);

// What parseTimeArgument accepts, for usage errors and --help.
inline constexpr std::string_view kTimeArgumentForms =
    "YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\" (local time) or a time ago such as 30m, 2h, 7d";

}  // namespace zerobyte::ctl
