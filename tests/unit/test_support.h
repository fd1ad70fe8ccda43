// Helpers shared by the unit tests: temporary directories, scoped environment variables, files, errors.
#pragma once

#include "common/errors.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <stdexcept>
#include <string>
#include <sstream>
#include <string_view>
#include <system_error>
#include <vector>

namespace zbtest::unit {

// A fresh directory `<temp>/<prefix>-XXXXXX`, removed with everything in it at the end of the scope.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(std::string_view prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    m_path = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

// Sets (or, with nullopt, unsets) an environment variable for one scope and restores the old state afterwards.
class ScopedEnvironment {
 public:
  ScopedEnvironment(std::string name, const std::optional<std::string>& value) : m_name(std::move(name)) {
    if (const char* old = std::getenv(m_name.c_str())) m_old = old;
    const int rc = value ? ::setenv(m_name.c_str(), value->c_str(), 1) : ::unsetenv(m_name.c_str());
    if (rc != 0) throw std::runtime_error("cannot set the environment variable " + m_name);
  }
  ~ScopedEnvironment() {
    if (m_old) ::setenv(m_name.c_str(), m_old->c_str(), 1);
    else ::unsetenv(m_name.c_str());
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  std::string m_name;
  std::optional<std::string> m_old;
};

// Replaces the file's content with `content` (bytes as they are).
inline void writeFile(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Replaces the file's content and sets its permission bits (chmod, so the umask does not apply).
inline void writeFile(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  writeFile(path, content);
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error("chmod failed for " + path.string());
}

// The whole file as bytes; empty when it cannot be read (tests compare against the expected content).
inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A file below tests/data, e.g. "restic-0.14/key-list.json"; a missing one is an error, not an empty text.
inline std::string readTestData(const std::filesystem::path& relative) {
  const auto path = std::filesystem::path(ZB_TEST_DATA_DIR) / relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing test data " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

// Runs `body` and returns the zerobyte::Error it throws (failing the test if it throws nothing).
template <class Body>
zerobyte::Error thrownError(Body&& body) {
  try {
    body();
  } catch (const zerobyte::Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected zerobyte::Error";
  return zerobyte::Error(zerobyte::ErrorCode::Internal, "nothing thrown");
}

// The field an Error(InvalidArgument) names (details {"parameter": ...}), "" when none.
inline std::string parameterOf(const zerobyte::Error& e) { return e.details().value("parameter", ""); }

// The message of the Error(InvalidArgument) that `body` throws (failing the test on another error or none).
template <class Body>
std::string rejection(Body&& body) {
  zerobyte::Error e = thrownError(std::forward<Body>(body));
  EXPECT_EQ(e.code(), zerobyte::ErrorCode::InvalidArgument) << e.what();
  return e.what();
}

// Writes raw bytes into a table of the LMDB environment in `directory`, past the Store, to plant records the
// Store would never write. The Store must be closed: LMDB forbids opening one environment twice in a process.
inline void putRawLmdbRecord(const std::filesystem::path& directory, const std::string& table, std::string_view key,
                             std::string_view value) {
  MDB_env* rawEnv = nullptr;
  ASSERT_EQ(mdb_env_create(&rawEnv), 0);
  const std::unique_ptr<MDB_env, decltype(&mdb_env_close)> env(rawEnv, &mdb_env_close);
  mdb_env_set_maxdbs(env.get(), 8);
  mdb_env_set_mapsize(env.get(), size_t{1} << 30);  // the Store's own map size
  ASSERT_EQ(mdb_env_open(env.get(), directory.c_str(), MDB_NOTLS, 0600), 0);
  MDB_txn* rawTxn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env.get(), nullptr, 0, &rawTxn), 0);
  std::unique_ptr<MDB_txn, decltype(&mdb_txn_abort)> txn(rawTxn, &mdb_txn_abort);
  MDB_dbi dbi = 0;
  ASSERT_EQ(mdb_dbi_open(txn.get(), table.c_str(), 0, &dbi), 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  ASSERT_EQ(mdb_put(txn.get(), dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn.release()), 0);  // commit frees the transaction, even when it fails
}

// The numbers of a line like "1000 27 100" (the output of `id -G`), sorted.
inline std::vector<gid_t> sortedIds(const std::string& line) {
  std::vector<gid_t> ids;
  std::istringstream in(line);
  for (unsigned long n; in >> n;) ids.push_back(static_cast<gid_t>(n));
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The "Name:\tvalue" lines of a /proc/PID/status text, by name.
inline std::map<std::string, std::string> procStatusFields(const std::vector<std::string>& lines) {
  std::map<std::string, std::string> fields;
  for (const auto& line : lines) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t value = line.find_first_not_of(" \t", colon + 1);
    size_t last = line.find_last_not_of(" \t");  // "Groups:\t65534 " ends in a space
    fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value, last + 1 - value);
  }
  return fields;
}

}  // namespace zbtest::unit
