// Resolving command-line paths against the current directory.
#include "ctl/paths.h"

#include "common/errors.h"

#include <filesystem>
#include <system_error>

namespace zerobyte::ctl {

std::string absolutePath(std::string_view path, std::string_view base) {
  if (path.empty()) throw Error(ErrorCode::InvalidArgument, "the path is empty; give a directory");
  std::filesystem::path p(path);
  if (p.is_relative()) {
    std::filesystem::path from(base);
    if (base.empty()) {
      std::error_code error;
      from = std::filesystem::current_path(error);
      if (error)
        throw Error(ErrorCode::InvalidArgument, "cannot resolve the relative path " + std::string(path) +
                                                    ": the current directory is unknown (" + error.message() +
                                                    "); give an absolute path");
    }
    p = from / p;
  }
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace zerobyte::ctl
