// Integration tests of the Varlink socket protocol: hostile input, errors of org.varlink.service, streams, pipelining,
// introspection, concurrency and the limits per user and per connection (as real test users), against a real zerobyted
// while another client keeps being served.
#include "tests/integration/harness.h"

#include "common/errors.h"
#include "common/varlink_client.h"
#include "common/varlink_wire.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using zerobyte::Error;
using zerobyte::ErrorCode;
using zerobyte::varlink::CallMessage;
using zerobyte::varlink::Client;
using zerobyte::varlink::ReplyMessage;
using namespace std::chrono_literals;

constexpr const char* kDaemon = "org.zerobyte.Daemon.";

// No read or write on a test connection may block for ever.
void boundIo(Client& client, int seconds = 30) {
  timeval tv{seconds, 0};
  setsockopt(client.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(client.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string encodeCall(const std::string& method, const json& parameters = json::object(), bool more = false, bool oneway = false) {
  return zerobyte::varlink::encode(CallMessage{method, parameters, more, oneway});
}

// The error name of a reply ("" when it is not an error).
std::string errorOf(const ReplyMessage& reply) { return reply.error.value_or(""); }

// Reads until the daemon closes the connection; true when it did (and no further reply came).
bool closedByDaemon(Client& client) {
  try {
    ReplyMessage extra = client.readReply();
    ADD_FAILURE() << "expected the connection to be closed, got a reply: " << extra.parameters.dump()
                  << " error " << errorOf(extra);
    return false;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Unavailable) << e.what();
    // "closed the connection" or a reset: both end the connection; a timeout does not.
    return std::string(e.what()).find("temporarily unavailable") == std::string::npos;
  }
}

std::string readSourceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

class VarlinkProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    m_daemon.start();
    m_other = connect();
    expectOtherServed();
  }

  void TearDown() override {
    expectOtherServed();
    EXPECT_TRUE(m_daemon.running()) << "zerobyted died";
    std::string log = m_daemon.log();
    EXPECT_EQ(log.find("internal error"), std::string::npos) << log;
    EXPECT_EQ(log.find("zerobyted: error:"), std::string::npos) << log;
  }

  std::unique_ptr<Client> connect() {
    auto c = m_daemon.client();
    boundIo(*c);
    return c;
  }

  // The bystander connection, opened before the hostile act, still gets answers.
  void expectOtherServed() {
    try {
      json status = m_other->call(std::string(kDaemon) + "GetStatus");
      EXPECT_TRUE(status.contains("version")) << status.dump();
      EXPECT_TRUE(status.contains("uptime_seconds")) << status.dump();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the other client is no longer served: " << e.what();
    }
  }

  // A volume of `files` small files in one directory, backed up once into repository "repo".
  // Returns the snapshot id; the volume's path is in *volumePath.
  std::string prepareSnapshot(size_t files, std::string* volumePath) {
    std::string data = m_daemon.dir() + "/data";
    EXPECT_EQ(mkdir(data.c_str(), 0755), 0);
    for (size_t i = 0; i < files; ++i) writeFile(data + "/file-" + std::to_string(i) + ".txt", "content " + std::to_string(i) + "\n");
    *volumePath = data;
    auto c = connect();
    c->call(std::string(kDaemon) + "CreateVolume", {{"name", "data"}, {"type", "directory"}, {"path", data}});
    c->call(std::string(kDaemon) + "CreateRepository", {{"name", "repo"}, {"type", "local"}, {"path", m_daemon.dir() + "/repo"}});
    json started = c->call(std::string(kDaemon) + "StartBackup", {{"volume", "data"}, {"repository", "repo"}});
    uint64_t id = started.at("job").at("id").get<uint64_t>();
    json job = m_daemon.waitForJob(id);
    EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
    json snapshots = c->call(std::string(kDaemon) + "ListSnapshots", {{"repository", "repo"}}).at("snapshots");
    EXPECT_EQ(snapshots.size(), 1U) << snapshots.dump();
    return snapshots.empty() ? std::string() : snapshots.at(0).at("id").get<std::string>();
  }

  bool waitForNoChildren(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!m_daemon.childPids().empty()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
    return true;
  }

  zbtest::Daemon m_daemon;
  std::unique_ptr<Client> m_other;
};

// ---- hostile input ----

TEST_F(VarlinkProtocol, TwoMebibyteMessageWithoutNulGetsMessageTooLargeAndTheConnectionCloses) {
  auto c = connect();
  std::string huge(2 * 1024 * 1024, 'x');
  try {
    c->sendRaw(huge);
  } catch (const Error& e) {
    // The daemon may close before it has read everything: the rest of the write then fails.
    EXPECT_EQ(e.code(), ErrorCode::Unavailable) << e.what();
  }
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.zerobyte.Daemon.MessageTooLarge");
  EXPECT_NE(reply.parameters.value("message", "").find("1048576"), std::string::npos) << reply.parameters.dump();
  EXPECT_TRUE(closedByDaemon(*c));
  expectOtherServed();
}

TEST_F(VarlinkProtocol, MessageOfExactlyTheLimitIsServedAndOneByteMoreIsNot) {
  // The limit (1 MiB) counts the terminating NUL; JSON whitespace pads a valid call to the size wanted.
  const size_t limit = 1024 * 1024;
  const std::string call = R"({"method":"org.zerobyte.Daemon.GetStatus"})";
  auto c = connect();
  c->sendRaw(call + std::string(limit - 1 - call.size(), ' ') + '\0');
  ReplyMessage fits = c->readReply();
  EXPECT_EQ(errorOf(fits), "") << fits.parameters.dump();
  EXPECT_TRUE(fits.parameters.contains("version"));

  try {
    c->sendRaw(call + std::string(limit - call.size(), ' ') + '\0');
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Unavailable) << e.what();
  }
  EXPECT_EQ(errorOf(c->readReply()), "org.zerobyte.Daemon.MessageTooLarge");
  EXPECT_TRUE(closedByDaemon(*c));
  expectOtherServed();
}

// Any local user can send this (the socket is 0666): without a nesting limit the parser's recursion overflowed the stack.
TEST_F(VarlinkProtocol, DeeplyNestedParametersGetAnErrorInsteadOfCrashingTheDaemon) {
  const size_t depth = 100000;  // 200 KB: far below the message limit
  auto c = connect();
  c->sendRaw(R"({"method":"org.zerobyte.Daemon.GetStatus","parameters":{"a":)" + std::string(depth, '[') + std::string(depth, ']') +
             "}}" + '\0');
  ReplyMessage reply = c->readReply();
  EXPECT_TRUE(errorOf(reply) == "org.zerobyte.Daemon.InvalidRequest" || errorOf(reply) == "org.varlink.service.InvalidParameter")
      << errorOf(reply);
  EXPECT_TRUE(m_daemon.running());
  expectOtherServed();
}

TEST_F(VarlinkProtocol, MalformedJsonGetsInvalidRequestAndTheSameConnectionStillAnswers) {
  auto c = connect();
  c->sendRaw(std::string("{\"method\": \"org.zerobyte.Daemon.GetStatus\", ") + '\0');
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.zerobyte.Daemon.InvalidRequest");
  EXPECT_NE(reply.parameters.value("message", "").find("JSON"), std::string::npos) << reply.parameters.dump();
  expectOtherServed();

  json status = c->call(std::string(kDaemon) + "GetStatus");
  EXPECT_TRUE(status.contains("version"));
}

TEST_F(VarlinkProtocol, CallThatIsAnArrayOrHasNoMethodGetsInvalidRequestAndTheConnectionGoesOn) {
  auto c = connect();
  const std::vector<std::string> bad = {
      R"([{"method":"org.zerobyte.Daemon.GetStatus"}])",
      R"({"parameters":{}})",
      R"({"method":""})",
      R"({"method":42})",
      R"("org.zerobyte.Daemon.GetStatus")",
      R"({"method":"org.zerobyte.Daemon.GetStatus","more":true,"oneway":true})",
      R"({"method":"org.zerobyte.Daemon.GetStatus","sneaky":1})",
      "\xff\xfe\xfd",
  };
  for (const auto& text : bad) {
    c->sendRaw(text + '\0');
    ReplyMessage reply = c->readReply();
    EXPECT_EQ(errorOf(reply), "org.zerobyte.Daemon.InvalidRequest") << text;
    EXPECT_FALSE(reply.parameters.value("message", "").empty()) << text;
    expectOtherServed();
  }
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
}

TEST_F(VarlinkProtocol, UnknownMethodGetsMethodNotFound) {
  auto c = connect();
  c->sendRaw(encodeCall(std::string(kDaemon) + "DestroyEverything"));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.varlink.service.MethodNotFound");
  EXPECT_EQ(reply.parameters.value("method", ""), "org.zerobyte.Daemon.DestroyEverything") << reply.parameters.dump();

  c->sendRaw(encodeCall("org.varlink.service.Shutdown"));
  reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.varlink.service.MethodNotFound");
  EXPECT_EQ(reply.parameters.value("method", ""), "org.varlink.service.Shutdown");

  // Case matters.
  c->sendRaw(encodeCall(std::string(kDaemon) + "getstatus"));
  EXPECT_EQ(errorOf(c->readReply()), "org.varlink.service.MethodNotFound");
  expectOtherServed();
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
}

TEST_F(VarlinkProtocol, UnknownInterfaceGetsInterfaceNotFound) {
  auto c = connect();
  c->sendRaw(encodeCall("com.example.Elsewhere.GetStatus"));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.varlink.service.InterfaceNotFound");
  EXPECT_EQ(reply.parameters.value("interface", ""), "com.example.Elsewhere") << reply.parameters.dump();

  // A prefix of the real interface is another interface.
  c->sendRaw(encodeCall("org.zerobyte.Daemon1.GetStatus"));
  EXPECT_EQ(errorOf(c->readReply()), "org.varlink.service.InterfaceNotFound");
  // No interface at all.
  c->sendRaw(encodeCall("GetStatus"));
  EXPECT_EQ(errorOf(c->readReply()), "org.varlink.service.InterfaceNotFound");
  expectOtherServed();
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
}

TEST_F(VarlinkProtocol, WrongUnknownOrMissingParametersGetInvalidParameterNamingThem) {
  struct Case {
    std::string method;
    json parameters;
    std::string parameter;
  };
  const std::string dir = m_daemon.dir();
  const std::vector<Case> cases = {
      {"GetVolume", {{"name", 5}}, "name"},
      {"GetVolume", json::object(), "name"},
      {"GetVolume", {{"name", nullptr}}, "name"},
      {"GetVolume", {{"name", "x"}, {"colour", "blue"}}, "colour"},
      {"GetStatus", {{"verbose", true}}, "verbose"},
      {"CreateVolume", {{"name", "v"}, {"type", "directory"}}, "path"},
      {"CreateVolume", {{"name", "v"}, {"type", "directory"}, {"path", json::array({dir})}}, "path"},
      {"GetJob", {{"id", "7"}}, "id"},
      {"GetJob", {{"id", 1.5}}, "id"},
      {"StartBackup", {{"volume", "v"}, {"repository", "r"}, {"tags", json::array({1, 2})}}, "tags"},
      {"StartBackup", {{"volume", "v"}, {"repository", "r"}, {"excludes", "*.tmp"}}, "excludes"},
      {"ListSnapshots", {{"repository", "r"}, {"refresh", "yes"}}, "refresh"},
      {"ListJobs", {{"limit", "ten"}}, "limit"},
  };
  auto c = connect();
  for (const auto& k : cases) {
    SCOPED_TRACE(k.method + " " + k.parameters.dump());
    c->sendRaw(encodeCall(kDaemon + k.method, k.parameters));
    ReplyMessage reply = c->readReply();
    EXPECT_EQ(errorOf(reply), "org.varlink.service.InvalidParameter");
    EXPECT_EQ(reply.parameters.value("parameter", ""), k.parameter) << reply.parameters.dump();
  }
  // org.varlink.service checks its parameters too.
  c->sendRaw(encodeCall("org.varlink.service.GetInterfaceDescription", {{"interface", 3}}));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.varlink.service.InvalidParameter");
  EXPECT_EQ(reply.parameters.value("parameter", ""), "interface");
  expectOtherServed();
  // Nothing was created by the rejected calls.
  EXPECT_TRUE(c->call(std::string(kDaemon) + "ListVolumes").at("volumes").empty());
}

TEST_F(VarlinkProtocol, FollowJobWithoutMoreGetsExpectedMore) {
  auto c = connect();
  c->sendRaw(encodeCall(std::string(kDaemon) + "FollowJob", {{"id", 1}}));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.varlink.service.ExpectedMore");
  EXPECT_FALSE(reply.continues);
  expectOtherServed();
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
}

TEST_F(VarlinkProtocol, MoreOnAMethodThatDoesNotStreamGetsOneFinalReply) {
  auto c = connect();
  c->sendRaw(encodeCall(std::string(kDaemon) + "GetStatus", json::object(), /*more=*/true));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "");
  EXPECT_FALSE(reply.continues);
  EXPECT_TRUE(reply.parameters.contains("version"));
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
}

// ---- streams and clients that go away ----

TEST_F(VarlinkProtocol, ClientClosingMidStreamOfListFilesLeavesTheDaemonServing) {
  std::string volumePath;
  std::string snapshot = prepareSnapshot(3000, &volumePath);
  ASSERT_FALSE(snapshot.empty());
  {
    auto c = connect();
    c->sendRaw(encodeCall(std::string(kDaemon) + "ListFiles", {{"repository", "repo"}, {"snapshot", snapshot}, {"path", volumePath}},
                          /*more=*/true));
    ReplyMessage first = c->readReply();
    ASSERT_EQ(errorOf(first), "") << first.parameters.dump();
    EXPECT_TRUE(first.continues) << "3000 entries come in several replies";
    EXPECT_FALSE(first.parameters.at("nodes").empty());
    // Gone without reading the rest.
  }
  expectOtherServed();
  EXPECT_TRUE(waitForNoChildren(20s)) << "restic ls kept running for a client that left";
  expectOtherServed();

  // The repository is not left locked: the whole listing works for the next client.
  json all = m_other->call(std::string(kDaemon) + "ListFiles", {{"repository", "repo"}, {"snapshot", snapshot}, {"path", volumePath}});
  size_t files = 0;
  for (const auto& node : all.at("nodes"))
    if (node.value("type", "") == "file") ++files;
  EXPECT_EQ(files, 3000U);

  // The streamed form delivers all of it to a client that stays.
  size_t streamed = 0, replies = 0;
  auto c = connect();
  c->callMore(std::string(kDaemon) + "ListFiles", {{"repository", "repo"}, {"snapshot", snapshot}, {"path", volumePath}},
              [&](const json& r) {
                ++replies;
                for (const auto& node : r.at("nodes"))
                  if (node.value("type", "") == "file") ++streamed;
                return true;
              });
  EXPECT_EQ(streamed, 3000U);
  EXPECT_GE(replies, 2U);
}

TEST_F(VarlinkProtocol, FollowerClosingAfterTheFirstReplyDoesNotDisturbTheBackup) {
  std::string volumePath;
  std::string snapshot = prepareSnapshot(200, &volumePath);
  ASSERT_FALSE(snapshot.empty());
  // Enough data that the second backup is still running when the follower arrives.
  {
    std::ofstream big(volumePath + "/big.bin", std::ios::binary);
    std::ifstream random("/dev/urandom", std::ios::binary);
    std::vector<char> buffer(1 << 20);
    for (int i = 0; i < 96; ++i) {
      random.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      big.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    }
  }
  json started = m_other->call(std::string(kDaemon) + "StartBackup", {{"volume", "data"}, {"repository", "repo"}});
  uint64_t id = started.at("job").at("id").get<uint64_t>();
  std::string firstState;
  {
    auto c = connect();
    c->sendRaw(encodeCall(std::string(kDaemon) + "FollowJob", {{"id", id}}, /*more=*/true));
    ReplyMessage first = c->readReply();
    ASSERT_EQ(errorOf(first), "") << first.parameters.dump();
    firstState = first.parameters.at("job").value("state", "");
  }
  expectOtherServed();
  json job = m_daemon.waitForJob(id);
  EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump();
  EXPECT_TRUE(firstState == "queued" || firstState == "running") << "the backup ended before it was followed: " << firstState;
  json snapshots = m_other->call(std::string(kDaemon) + "ListSnapshots", {{"repository", "repo"}}).at("snapshots");
  EXPECT_EQ(snapshots.size(), 2U);
}

TEST_F(VarlinkProtocol, HalfClosedClientStillGetsItsReplies) {
  auto c = connect();
  c->sendRaw(encodeCall(std::string(kDaemon) + "GetStatus") + encodeCall(std::string(kDaemon) + "ListVolumes"));
  ASSERT_EQ(::shutdown(c->fd(), SHUT_WR), 0);
  ReplyMessage status = c->readReply();
  EXPECT_TRUE(status.parameters.contains("version")) << status.parameters.dump();
  ReplyMessage volumes = c->readReply();
  EXPECT_TRUE(volumes.parameters.contains("volumes")) << volumes.parameters.dump();
  EXPECT_TRUE(closedByDaemon(*c));
  expectOtherServed();
}

// ---- pipelining ----

// Call i of a pipelined series: even ones succeed, odd ones fail naming i, so the order of replies is visible.
std::string pipelinedCall(size_t i) {
  if (i % 2 == 0) return encodeCall(std::string(kDaemon) + "GetStatus");
  return encodeCall(std::string(kDaemon) + "GetVolume", {{"name", "missing-" + std::to_string(i)}});
}

void expectPipelinedReply(const ReplyMessage& reply, size_t i) {
  if (i % 2 == 0) {
    EXPECT_EQ(errorOf(reply), "") << "reply " << i << ": " << reply.parameters.dump();
    EXPECT_TRUE(reply.parameters.contains("version")) << "reply " << i;
  } else {
    EXPECT_EQ(errorOf(reply), "org.zerobyte.Daemon.NotFound") << "reply " << i;
    EXPECT_NE(reply.parameters.value("message", "").find("\"missing-" + std::to_string(i) + "\""), std::string::npos)
        << "reply " << i << " is " << reply.parameters.dump();
  }
}

TEST_F(VarlinkProtocol, HundredPipelinedCallsGetHundredRepliesInOrder) {
  // Pipelined with up to 32 calls in flight, below the daemon's limit of 64 queued calls.
  auto c = connect();
  const size_t total = 100, window = 32;
  size_t sent = 0;
  std::string batch;
  for (; sent < window; ++sent) batch += pipelinedCall(sent);
  c->sendRaw(batch);
  for (size_t received = 0; received < total; ++received) {
    ReplyMessage reply = c->readReply();
    expectPipelinedReply(reply, received);
    if (sent < total) c->sendRaw(pipelinedCall(sent++));
  }
  expectOtherServed();
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
}

TEST_F(VarlinkProtocol, SixtyFourCallsInOneWriteAllGetRepliesInOrder) {
  auto c = connect();
  std::string burst;
  for (size_t i = 0; i < 64; ++i) burst += pipelinedCall(i);
  c->sendRaw(burst);
  for (size_t i = 0; i < 64; ++i) expectPipelinedReply(c->readReply(), i);
  EXPECT_TRUE(c->call(std::string(kDaemon) + "GetStatus").contains("version"));
  expectOtherServed();
}

TEST_F(VarlinkProtocol, BurstBeyondSixtyFourQueuedCallsIsSlowedDownNotRefused) {
  // Beyond 64 parsed calls the daemon stops reading the connection until it catches up
  // (backpressure): every call is answered, in order, and each took effect.
  std::string dir = m_daemon.dir() + "/volume-dir";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  auto c = connect();
  std::string burst;
  for (size_t i = 0; i < 100; ++i)
    burst += encodeCall(std::string(kDaemon) + "CreateVolume", {{"name", "v" + std::to_string(i)}, {"type", "directory"}, {"path", dir}});
  c->sendRaw(burst);
  std::set<std::string> answered;
  for (size_t i = 0; i < 100; ++i) {
    ReplyMessage reply = c->readReply();
    ASSERT_EQ(errorOf(reply), "") << "reply " << i << ": " << reply.parameters.dump();
    EXPECT_EQ(reply.parameters.at("volume").value("name", ""), "v" + std::to_string(i));
    answered.insert("v" + std::to_string(i));
  }
  expectOtherServed();
  std::set<std::string> created;
  json listed = m_other->call(std::string(kDaemon) + "ListVolumes");
  for (const auto& v : listed.at("volumes")) created.insert(v.value("name", ""));
  EXPECT_EQ(created, answered);
}

// While one call runs, 65 more arrive: none of their replies (nor any error) may overtake the first call's reply.
TEST_F(VarlinkProtocol, BusyNeverOvertakesTheReplyOfAnEarlierCall) {
  auto c = connect();
  c->sendRaw(encodeCall(std::string(kDaemon) + "CreateRepository",
                        {{"name", "slow"}, {"type", "local"}, {"path", m_daemon.dir() + "/slow-repo"}}));
  // restic init is running: the call is active, not queued.
  for (int i = 0; i < 200 && m_daemon.childPids().empty(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(m_daemon.childPids().empty()) << "restic init did not start";
  std::string burst;
  for (int i = 0; i < 65; ++i) burst += encodeCall(std::string(kDaemon) + "GetStatus");
  c->sendRaw(burst);
  ReplyMessage first = c->readReply();
  ASSERT_TRUE(waitForNoChildren(60s));
  json repositories = m_other->call(std::string(kDaemon) + "ListRepositories").at("repositories");
  if (errorOf(first).empty())
    EXPECT_TRUE(first.parameters.contains("repository")) << "the first reply answers the first call: " << first.parameters.dump();
  else
    EXPECT_TRUE(repositories.empty()) << "the first call was answered " << errorOf(first) << " but took effect: " << repositories.dump();
}

TEST_F(VarlinkProtocol, ConnectionsBeyondTheLimitAreRefusedAndServiceResumes) {
  // The daemon serves at most 512 connections; more are closed at once instead of exhausting its descriptors.
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 600; ++i) clients.push_back(connect());
  size_t served = 0, refused = 0;
  for (auto& c : clients) {
    try {
      c->sendRaw(encodeCall(std::string(kDaemon) + "GetStatus"));
      if (c->readReply().parameters.contains("version")) ++served;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find("temporarily unavailable"), std::string::npos) << "a refused client waited: " << e.what();
      ++refused;
    }
  }
  EXPECT_EQ(served + refused, 600U);
  EXPECT_GE(refused, 600U - 512U);
  EXPECT_GE(served, 500U);
  expectOtherServed();
  clients.clear();
  // Once they are gone, new clients are served again.
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    try {
      ok = connect()->call(std::string(kDaemon) + "GetStatus").contains("version");
    } catch (const Error&) {
      std::this_thread::sleep_for(20ms);
    }
  }
  EXPECT_TRUE(ok);
}

// ---- introspection ----

TEST_F(VarlinkProtocol, GetInfoListsBothInterfaces) {
  auto c = connect();
  json info = c->call("org.varlink.service.GetInfo");
  EXPECT_EQ(info.value("product", ""), "zerobyted");
  EXPECT_FALSE(info.value("version", "").empty());
  EXPECT_FALSE(info.value("vendor", "").empty());
  std::set<std::string> interfaces;
  for (const auto& i : info.at("interfaces")) interfaces.insert(i.get<std::string>());
  EXPECT_EQ(interfaces, (std::set<std::string>{"org.varlink.service", "org.zerobyte.Daemon"}));
  json status = c->call(std::string(kDaemon) + "GetStatus");
  EXPECT_EQ(info.value("version", ""), status.value("version", "-"));
}

TEST_F(VarlinkProtocol, GetInterfaceDescriptionReturnsTheInterfaceFile) {
  std::string expected = readSourceFile(std::string(ZB_TEST_DATA_DIR) + "/../../common/org.zerobyte.Daemon.varlink");
  ASSERT_NE(expected.find("interface org.zerobyte.Daemon"), std::string::npos);
  auto c = connect();
  json d = c->call("org.varlink.service.GetInterfaceDescription", {{"interface", "org.zerobyte.Daemon"}});
  EXPECT_EQ(d.value("description", ""), expected);

  json service = c->call("org.varlink.service.GetInterfaceDescription", {{"interface", "org.varlink.service"}});
  EXPECT_EQ(service.value("description", "").rfind("interface org.varlink.service\n", 0), 0U) << service.dump();

  c->sendRaw(encodeCall("org.varlink.service.GetInterfaceDescription", {{"interface", "com.example.Nope"}}));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "org.varlink.service.InterfaceNotFound");
  EXPECT_EQ(reply.parameters.value("interface", ""), "com.example.Nope");
}

TEST_F(VarlinkProtocol, EveryMethodOfTheInterfaceFileIsServed) {
  // Each method the contract declares exists: called without parameters it fails on its parameters, not as unknown.
  std::string idl = readSourceFile(std::string(ZB_TEST_DATA_DIR) + "/../../common/org.zerobyte.Daemon.varlink");
  std::istringstream lines(idl);
  auto c = connect();
  size_t methods = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("method ", 0) != 0) continue;
    std::string name = line.substr(7, line.find('(') - 7);
    ++methods;
    // "more" so that FollowJob gets past ExpectedMore; parameters that point nowhere.
    c->sendRaw(encodeCall(kDaemon + name, {{"zz_unknown", 1}}, /*more=*/true));
    ReplyMessage reply = c->readReply();
    EXPECT_EQ(errorOf(reply), "org.varlink.service.InvalidParameter") << name << ": " << reply.parameters.dump();
  }
  EXPECT_GE(methods, 20U);
}

// ---- oneway and concurrency ----

TEST_F(VarlinkProtocol, OnewayCallGetsNoReply) {
  auto c = connect();
  // Would fail with NotFound if it were answered; the next reply must be the GetStatus one.
  c->sendRaw(encodeCall(std::string(kDaemon) + "GetVolume", {{"name", "oneway-missing"}}, false, /*oneway=*/true));
  c->sendRaw(encodeCall(std::string(kDaemon) + "GetStatus"));
  ReplyMessage reply = c->readReply();
  EXPECT_EQ(errorOf(reply), "") << reply.parameters.dump();
  EXPECT_TRUE(reply.parameters.contains("version")) << reply.parameters.dump();

  // A oneway call still takes effect.
  std::string dir = m_daemon.dir() + "/oneway-dir";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  c->sendRaw(encodeCall(std::string(kDaemon) + "CreateVolume", {{"name", "oneway"}, {"type", "directory"}, {"path", dir}}, false, true));
  json volumes = c->call(std::string(kDaemon) + "ListVolumes").at("volumes");
  ASSERT_EQ(volumes.size(), 1U);
  EXPECT_EQ(volumes[0].value("name", ""), "oneway");
  expectOtherServed();
}

TEST_F(VarlinkProtocol, FiftyConcurrentClientsAllGetAnswers) {
  constexpr int kClients = 50, kCallsEach = 5;
  std::atomic<int> answered{0};
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < kClients; ++i) {
    results.push_back(std::async(std::launch::async, [this, &answered]() -> std::string {
      try {
        auto c = m_daemon.client();
        boundIo(*c, 20);
        for (int k = 0; k < kCallsEach; ++k) {
          json status = c->call(std::string(kDaemon) + "GetStatus");
          if (!status.contains("version")) return "a reply without version: " + status.dump();
          ++answered;
        }
        return "";
      } catch (const std::exception& e) {
        return e.what();
      }
    }));
  }
  for (auto& r : results) {
    ASSERT_EQ(r.wait_for(60s), std::future_status::ready) << "a client hung";
    EXPECT_EQ(r.get(), "");
  }
  EXPECT_EQ(answered.load(), kClients * kCallsEach);
  expectOtherServed();
}

TEST_F(VarlinkProtocol, ManyIdleConnectionsDoNotStopOthersFromBeingServed) {
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(connect());
  // Half of them with an incomplete message.
  for (size_t i = 0; i < idle.size(); i += 2) idle[i]->sendRaw("{\"method\":\"org.zerobyte.Daem");
  expectOtherServed();
  auto fresh = connect();
  EXPECT_TRUE(fresh->call(std::string(kDaemon) + "GetStatus").contains("version"));
  // Completing the message later still works.
  idle[0]->sendRaw(std::string("on.GetStatus\"}") + '\0');
  EXPECT_TRUE(idle[0]->readReply().parameters.contains("version"));
}

// ---- limits per user and per connection ----

struct TestUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// A user without home or login shell, created when missing (useradd waits for nobody: others may hold the lock a moment).
TestUser ensureUser(const std::string& name) {
  for (int attempt = 0; attempt < 20 && !getpwnam(name.c_str()); ++attempt) {
    zbtest::CommandResult r = zbtest::run({"/usr/sbin/useradd", "-M", "-s", "/usr/sbin/nologin", name});
    if (r.exitCode != 0 && r.exitCode != 9) std::this_thread::sleep_for(250ms);
  }
  passwd* pw = getpwnam(name.c_str());
  if (!pw) throw std::runtime_error("cannot create the test user " + name);
  return TestUser{name, pw->pw_uid, pw->pw_gid};
}

// Connections made by a process running as `user`: SO_PEERCRED is taken at connect time, so the daemon sees that
// user. The process hands each socket to the test (SCM_RIGHTS) and stays alive until the end of the scope, because
// the daemon only serves callers whose process still exists.
class ConnectionsAs {
 public:
  ConnectionsAs(const std::string& socketPath, const TestUser& user, size_t count) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socketPath.c_str(), socketPath.size() + 1);
    int channel[2], hold[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0 || ::pipe2(hold, O_CLOEXEC) != 0)
      throw std::runtime_error("socketpair/pipe2 failed");
    m_pid = ::fork();
    if (m_pid < 0) throw std::runtime_error("fork failed");
    if (m_pid == 0) {
      // Only system calls from here on.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::alarm(300);
      ::close(channel[0]);
      ::close(hold[1]);
      // No copy of the test's other sockets may stay open here: closing one in the test must end that connection.
      const unsigned low = static_cast<unsigned>(std::min(channel[1], hold[0])), high = static_cast<unsigned>(std::max(channel[1], hold[0]));
      ::close_range(3, low - 1, 0);
      ::close_range(low + 1, high - 1, 0);
      ::close_range(high + 1, ~0U, 0);
      if (::setgroups(0, nullptr) != 0 || ::setresgid(user.gid, user.gid, user.gid) != 0 || ::setresuid(user.uid, user.uid, user.uid) != 0)
        ::_exit(2);
      for (size_t i = 0; i < count; ++i) {
        int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = s >= 0 && ::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
        char flag = ok ? 'y' : 'n';
        iovec iov{&flag, 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (ok) {
          msg.msg_control = control;
          msg.msg_controllen = sizeof(control);
          cmsghdr* cm = CMSG_FIRSTHDR(&msg);
          cm->cmsg_level = SOL_SOCKET;
          cm->cmsg_type = SCM_RIGHTS;
          cm->cmsg_len = CMSG_LEN(sizeof(int));
          std::memcpy(CMSG_DATA(cm), &s, sizeof(int));
        }
        if (::sendmsg(channel[1], &msg, 0) != 1) ::_exit(3);
        if (s >= 0) ::close(s);
      }
      ::close(channel[1]);
      char c;
      while (::read(hold[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    zbtest::ownProcess(m_pid);  // the harness must not take it for an orphan of a daemon
    ::close(channel[1]);
    ::close(hold[0]);
    m_hold = hold[1];
    zerobyte::FileDescriptor fromChild(channel[0]);
    timeval tv{30, 0};
    setsockopt(fromChild.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t i = 0; i < count; ++i) {
      char flag = 0;
      iovec iov{&flag, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      if (::recvmsg(fromChild.get(), &msg, MSG_CMSG_CLOEXEC) != 1) throw std::runtime_error("the process of " + user.name + " did not hand over its sockets");
      if (flag != 'y') throw std::runtime_error(user.name + " could not connect to " + socketPath);
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      if (!cm || cm->cmsg_type != SCM_RIGHTS) throw std::runtime_error("no socket came with the message");
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
      auto client = std::make_unique<Client>(zerobyte::FileDescriptor(fd));
      boundIo(*client, 10);
      m_clients.push_back(std::move(client));
    }
  }
  ~ConnectionsAs() {
    m_clients.clear();
    if (m_hold >= 0) ::close(m_hold);
    if (m_pid > 0) {
      ::waitpid(m_pid, nullptr, 0);
      zbtest::disownProcess(m_pid);
    }
  }
  ConnectionsAs(const ConnectionsAs&) = delete;
  ConnectionsAs& operator=(const ConnectionsAs&) = delete;

  std::vector<std::unique_ptr<Client>>& clients() { return m_clients; }

 private:
  pid_t m_pid = -1;
  int m_hold = -1;
  std::vector<std::unique_ptr<Client>> m_clients;
};

size_t countOccurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

// True when GetStatus on `client` is answered; false when the daemon closed the connection. A wait that runs into
// the client's timeout is neither: it fails the test (a refused client must not be left hanging).
bool getStatusAnswered(Client& client) {
  try {
    client.sendRaw(encodeCall(std::string(kDaemon) + "GetStatus"));
    ReplyMessage reply = client.readReply();
    EXPECT_EQ(errorOf(reply), "") << reply.parameters.dump();
    return reply.parameters.contains("version");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("temporarily unavailable"), std::string::npos) << "a refused client waited: " << e.what();
    return false;
  }
}

TEST_F(VarlinkProtocol, UserBeyondThirtyTwoConnectionsGetsTheExtraOnesClosedWhileAnotherUserIsServed) {
  const TestUser a = ensureUser("zbt-rate-a"), b = ensureUser("zbt-rate-b");
  ConnectionsAs many(m_daemon.socketPath(), a, 40);
  size_t served = 0, closed = 0;
  for (auto& c : many.clients()) (getStatusAnswered(*c) ? served : closed)++;
  EXPECT_EQ(served, 32U);
  EXPECT_EQ(closed, 8U);

  // The limit is per user: another user, and root, are served while the first holds all of its connections.
  ConnectionsAs other(m_daemon.socketPath(), b, 1);
  EXPECT_TRUE(getStatusAnswered(*other.clients().at(0)));
  expectOtherServed();

  // One line in the log for the eight refusals (at most one a minute per user).
  const std::string refusal = "uid " + std::to_string(a.uid) + " has 32 connections";
  EXPECT_EQ(countOccurrences(m_daemon.log(), refusal), 1U) << m_daemon.log();

  // A connection that ends frees its place.
  auto& clients = many.clients();
  auto servedOne = std::find_if(clients.begin(), clients.end(), [](const auto& c) { return getStatusAnswered(*c); });
  ASSERT_NE(servedOne, clients.end());
  clients.erase(servedOne);
  bool again = false;
  for (int attempt = 0; attempt < 50 && !again; ++attempt) {
    ConnectionsAs one(m_daemon.socketPath(), a, 1);
    again = getStatusAnswered(*one.clients().at(0));
    if (!again) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(again) << "a closed connection still counted against the user";
}

TEST_F(VarlinkProtocol, FloodOfCallsFromOneUserIsSlowedToTheRateWhileAnotherClientIsAnsweredPromptly) {
  // 100 calls a second per connection after a burst of 200: 500 calls take at least 3 s, all are answered.
  constexpr size_t kCalls = 500;
  const TestUser a = ensureUser("zbt-rate-a"), b = ensureUser("zbt-rate-b");
  ConnectionsAs flooder(m_daemon.socketPath(), a, 1);
  ConnectionsAs bystander(m_daemon.socketPath(), b, 1);
  Client& flood = *flooder.clients().at(0);
  Client& other = *bystander.clients().at(0);
  boundIo(flood, 60);

  std::atomic<bool> floodDone{false};
  auto bystanderCalls = std::async(std::launch::async, [&]() -> std::vector<double> {
    std::vector<double> latencies;
    const auto limit = std::chrono::steady_clock::now() + 60s;
    while (!floodDone && std::chrono::steady_clock::now() < limit) {
      auto start = std::chrono::steady_clock::now();
      try {
        if (!other.call(std::string(kDaemon) + "GetStatus").contains("version")) return {};
      } catch (const std::exception&) {
        return {};
      }
      latencies.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      std::this_thread::sleep_for(50ms);
    }
    return latencies;
  });

  std::string burst;
  for (size_t i = 0; i < kCalls; ++i) burst += encodeCall(std::string(kDaemon) + "GetStatus");
  const auto start = std::chrono::steady_clock::now();
  flood.sendRaw(burst);
  size_t answered = 0;
  try {
    for (; answered < kCalls; ++answered) {
      ReplyMessage reply = flood.readReply();
      ASSERT_EQ(errorOf(reply), "") << "reply " << answered << ": " << reply.parameters.dump();
      ASSERT_TRUE(reply.parameters.contains("version")) << "reply " << answered;
    }
  } catch (const Error& e) {
    ADD_FAILURE() << "the flooding client lost its connection after " << answered << " replies: " << e.what();
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  floodDone = true;
  std::vector<double> latencies = bystanderCalls.get();

  EXPECT_EQ(answered, kCalls) << "nothing is dropped";
  EXPECT_GE(took, 2.7) << "(500 - 200) calls at 100/s cannot take less than 3 s";
  EXPECT_LT(took, 30.0);
  ASSERT_GE(latencies.size(), 10U) << "the other client was not served during the flood";
  const double slowest = *std::max_element(latencies.begin(), latencies.end());
  EXPECT_LT(slowest, 1.0) << "the other client waited " << slowest << " s for one GetStatus";
  // The slowed connection is still a normal one afterwards (its bucket refills).
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(flood.call(std::string(kDaemon) + "GetStatus").contains("version"));
  expectOtherServed();
}

}  // namespace
