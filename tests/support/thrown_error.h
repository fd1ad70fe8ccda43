// Unit-test helpers for code that refuses with zerobyte::Error.
#pragma once

#include "common/errors.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace zbtest {

// The Error `f` throws, or a test failure (and an Internal error) when it throws none.
inline zerobyte::Error thrown(const std::function<void()>& f) {
  try {
    f();
  } catch (const zerobyte::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error thrown";
  return zerobyte::Error(zerobyte::ErrorCode::Internal, "none");
}

// The field an InvalidArgument error names (details {"parameter": ...}), "" when none.
inline std::string parameterOf(const zerobyte::Error& e) { return e.details().value("parameter", ""); }

}  // namespace zbtest
