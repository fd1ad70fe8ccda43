// The service layer's per-uid admission: a request whose authorization check never got going (the
// authorizer threw) must not keep counting against its caller.
#include "common/errors.h"
#include "daemon/api/service.h"
#include "daemon/loop/event_loop.h"
#include "daemon/process/process_runner.h"
#include "daemon/secrets/master_key.h"
#include "daemon/secrets/vault.h"
#include "daemon/store/store.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace zerobyte::api {
namespace {

namespace fs = std::filesystem;
using zbtest::unit::TemporaryDirectory;

// A fake: a real polkit client cannot be made to throw on demand. It throws while `failing`, then
// allows everything.
class FlakyAuthorizer : public Authorizer {
 public:
  bool failing = true;
  void check(const Caller&, Action, const Scope&, bool, std::function<void(Decision)> done) override {
    if (failing) throw std::runtime_error("the authorizer broke");
    done(Decision{true, false, {}});
  }
  std::string mode() const override { return "test"; }
  std::string describe() const override { return "test"; }
};

class CapturedRequest : public Request {
 public:
  explicit CapturedRequest(Caller caller) : m_caller(std::move(caller)) {}
  const Caller& caller() const override { return m_caller; }
  bool wantsMore() const override { return false; }
  void replyMore(nlohmann::json) override {}
  void reply(nlohmann::json parameters) override { replied = std::move(parameters); }
  void fail(const Error& error) override { failed = errorName(error.code()); }
  bool alive() const override { return true; }
  void onGone(std::function<void()>) override {}
  std::optional<nlohmann::json> replied;
  std::string failed;

 private:
  Caller m_caller;
};

TEST(ServiceAdmission, ChecksThatThrewDoNotCountAgainstTheCaller) {
  TemporaryDirectory dir{"zerobyte-admission-test"};
  fs::path state = dir.path() / "state";
  fs::create_directory(state);
  fs::permissions(state, fs::perms::owner_all);
  store::Store store(state);
  secrets::Vault vault(secrets::loadOrCreateMasterKey(state));
  loop::EventLoop loop;
  process::ProcessRunner runner(loop);
  FlakyAuthorizer authorizer;
  ServiceSettings settings;
  settings.stateDirectory = state;
  settings.cacheDirectory = dir.path() / "cache";
  settings.resticBinary = "/usr/bin/restic";
  settings.resticVersion = "0.14.0";
  Service service(loop, runner, store, vault, authorizer, settings);

  Caller caller;
  caller.uid = 4242;  // not root: root is never rate-limited
  caller.transport = "varlink";
  // More throws than the 8 checks a uid may have waiting.
  for (int i = 0; i < 12; ++i) {
    auto request = std::make_shared<CapturedRequest>(caller);
    EXPECT_THROW(service.dispatch("GetStatus", nlohmann::json::object(), request), std::runtime_error);
  }
  authorizer.failing = false;
  auto request = std::make_shared<CapturedRequest>(caller);
  service.dispatch("GetStatus", nlohmann::json::object(), request);
  EXPECT_EQ(request->failed, "") << "the caller was refused after checks that never ran";
  EXPECT_TRUE(request->replied.has_value());
}

}  // namespace
}  // namespace zerobyte::api
