// Paths given on the command line, made absolute before they are sent to the daemon.
#pragma once

#include <string>
#include <string_view>

namespace zerobyte::ctl {

// The daemon works in its own directory, so a relative path means nothing to it: resolve
// it against `base` (the current directory when empty) and normalise it ("a/../b/" → "/cwd/b").
std::string absolutePath(std::string_view path, std::string_view base = {});

}  // namespace zerobyte::ctl
