// Unit tests of the Varlink wire format: framing, call/reply parsing and the error table's mapping onto replies.
#include "common/errors.h"
#include "common/names.h"
#include "common/varlink_wire.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace zerobyte::varlink {
namespace {

using nlohmann::json;
using namespace std::string_literals;

std::vector<std::string> drain(Framer& framer) {
  std::vector<std::string> out;
  while (auto m = framer.next()) out.push_back(*m);
  return out;
}

// ---- Framer ----

TEST(VarlinkFramer, SplitsSeveralMessagesInOneFeed) {
  Framer framer(1024);
  framer.feed("{\"a\":1}\0{\"b\":2}\0{}\0"s);
  EXPECT_EQ(drain(framer), (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{}"}));
  EXPECT_FALSE(framer.overflowed());
  EXPECT_EQ(framer.buffered(), 0U);
}

TEST(VarlinkFramer, KeepsAnUnterminatedTailForTheNextFeed) {
  Framer framer(1024);
  framer.feed("one\0tw"s);
  EXPECT_EQ(framer.next(), "one");
  EXPECT_EQ(framer.next(), std::nullopt);
  EXPECT_EQ(framer.buffered(), 2U);
  framer.feed("o\0thr"s);
  EXPECT_EQ(framer.next(), "two");
  EXPECT_EQ(framer.next(), std::nullopt);
  framer.feed("ee\0"s);
  EXPECT_EQ(framer.next(), "three");
  EXPECT_EQ(framer.buffered(), 0U);
}

TEST(VarlinkFramer, ReassemblesAMessageFedOneByteAtATime) {
  Framer framer(1024);
  const std::string message = R"({"method":"org.zerobyte.Daemon.GetStatus","parameters":{}})";
  for (char c : message) {
    framer.feed(std::string_view(&c, 1));
    EXPECT_EQ(framer.next(), std::nullopt);
  }
  framer.feed("\0"s);
  EXPECT_EQ(framer.next(), message);
  EXPECT_FALSE(framer.overflowed());
}

TEST(VarlinkFramer, EmptyMessageBetweenTwoNulsIsReturnedAsEmpty) {
  Framer framer(64);
  framer.feed("\0x\0"s);
  EXPECT_EQ(drain(framer), (std::vector<std::string>{"", "x"}));
}

// The limit counts the terminating NUL (common/names.h, kMaxMessageSize).
TEST(VarlinkFramer, MessageOfExactlyTheLimitIncludingItsNulIsAccepted) {
  const size_t limit = 4096;
  Framer framer(limit);
  std::string message(limit - 1, 'x');
  framer.feed(message);
  EXPECT_FALSE(framer.overflowed());
  EXPECT_EQ(framer.next(), std::nullopt);
  framer.feed("\0"s);
  EXPECT_EQ(framer.next(), message);
  EXPECT_FALSE(framer.overflowed());
}

TEST(VarlinkFramer, MessageOneByteOverTheLimitOverflows) {
  const size_t limit = 4096;
  Framer framer(limit);
  framer.feed(std::string(limit, 'x') + "\0"s);
  EXPECT_EQ(framer.next(), std::nullopt);
  EXPECT_TRUE(framer.overflowed());
}

TEST(VarlinkFramer, UnterminatedDataReachingTheLimitOverflowsWithoutWaitingForTheNul) {
  const size_t limit = 4096;
  Framer framer(limit);
  framer.feed(std::string(limit - 1, 'x'));
  EXPECT_EQ(framer.next(), std::nullopt);
  EXPECT_FALSE(framer.overflowed());
  framer.feed("x");
  EXPECT_TRUE(framer.overflowed());
}

TEST(VarlinkFramer, OverflowIsStickyAndLaterMessagesAreNotReturned) {
  Framer framer(16);
  framer.feed(std::string(100, 'x'));
  EXPECT_TRUE(framer.overflowed());
  framer.feed("\0{}\0"s);
  EXPECT_EQ(framer.next(), std::nullopt);
  EXPECT_EQ(framer.next(), std::nullopt);
  EXPECT_TRUE(framer.overflowed());
}

TEST(VarlinkFramer, CompleteMessageBeforeAnOversizedOneIsStillDelivered) {
  Framer framer(16);
  framer.feed("ok\0"s + std::string(100, 'y'));
  EXPECT_EQ(framer.next(), "ok");
  EXPECT_EQ(framer.next(), std::nullopt);
  EXPECT_TRUE(framer.overflowed());
}

TEST(VarlinkFramer, ManySmallMessagesTotallingMoreThanTheLimitDoNotOverflow) {
  // Compaction of the consumed prefix must not count against the limit or lose bytes.
  Framer framer(1024);
  std::string pending;
  for (int i = 0; i < 5000; ++i) {
    std::string message = "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(static_cast<size_t>(i % 50), 'p') + "\"}";
    // Feed the first half with the previous message's tail, the second half later.
    std::string chunk = pending + message.substr(0, message.size() / 2);
    pending = message.substr(message.size() / 2) + "\0"s;
    framer.feed(chunk);
    auto got = drain(framer);
    if (i > 0) {
      ASSERT_EQ(got.size(), 1U) << "at message " << i;
      EXPECT_EQ(json::parse(got[0])["n"], i - 1);
    } else {
      EXPECT_TRUE(got.empty());
    }
  }
  framer.feed(pending);
  auto last = drain(framer);
  ASSERT_EQ(last.size(), 1U);
  EXPECT_EQ(json::parse(last[0])["n"], 4999);
  EXPECT_FALSE(framer.overflowed());
  EXPECT_EQ(framer.buffered(), 0U);
}

// ---- parseCall ----

ErrorCode callErrorCode(std::string_view text, std::string* message = nullptr) {
  try {
    parseCall(text);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "parseCall accepted " << text;
  return ErrorCode::Internal;
}

TEST(VarlinkParseCall, ParsesMethodParametersAndFlags) {
  auto call = parseCall(R"({"method":"org.zerobyte.Daemon.ListFiles","parameters":{"repository":"main","path":"/a"},"more":true})");
  EXPECT_EQ(call.method, "org.zerobyte.Daemon.ListFiles");
  EXPECT_EQ(call.parameters, (json{{"repository", "main"}, {"path", "/a"}}));
  EXPECT_TRUE(call.more);
  EXPECT_FALSE(call.oneway);
}

TEST(VarlinkParseCall, MissingOrNullParametersBecomeAnEmptyObject) {
  EXPECT_EQ(parseCall(R"({"method":"a.B"})").parameters, json::object());
  EXPECT_EQ(parseCall(R"({"method":"a.B","parameters":null})").parameters, json::object());
  EXPECT_FALSE(parseCall(R"({"method":"a.B","more":null})").more);
}

TEST(VarlinkParseCall, TextThatIsNotJsonIsInvalidRequest) {
  std::string message;
  EXPECT_EQ(callErrorCode("{\"method\":", &message), ErrorCode::InvalidRequest);
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  EXPECT_EQ(callErrorCode(""), ErrorCode::InvalidRequest);
  EXPECT_EQ(callErrorCode("\xff\xfe"), ErrorCode::InvalidRequest);
}

TEST(VarlinkParseCall, JsonThatIsNotAnObjectIsInvalidRequest) {
  for (const char* text : {R"([{"method":"a.B"}])", "42", R"("a.B")", "null", "true"}) {
    std::string message;
    EXPECT_EQ(callErrorCode(text, &message), ErrorCode::InvalidRequest) << text;
    EXPECT_NE(message.find("object"), std::string::npos) << text << ": " << message;
  }
}

TEST(VarlinkParseCall, CallWithoutAMethodStringIsInvalidRequest) {
  for (const char* text : {R"({})", R"({"parameters":{}})", R"({"method":""})", R"({"method":7})", R"({"method":null})"}) {
    std::string message;
    EXPECT_EQ(callErrorCode(text, &message), ErrorCode::InvalidRequest) << text;
    EXPECT_NE(message.find("method"), std::string::npos) << text << ": " << message;
  }
}

TEST(VarlinkParseCall, MoreTogetherWithOnewayIsInvalidRequest) {
  std::string message;
  EXPECT_EQ(callErrorCode(R"({"method":"a.B","more":true,"oneway":true})", &message), ErrorCode::InvalidRequest);
  EXPECT_NE(message.find("oneway"), std::string::npos) << message;
  // Each alone is fine.
  EXPECT_TRUE(parseCall(R"({"method":"a.B","oneway":true})").oneway);
  EXPECT_TRUE(parseCall(R"({"method":"a.B","more":true,"oneway":false})").more);
}

TEST(VarlinkParseCall, UnknownKeyIsInvalidRequestNamingTheKey) {
  std::string message;
  EXPECT_EQ(callErrorCode(R"({"method":"a.B","surprise":1})", &message), ErrorCode::InvalidRequest);
  EXPECT_NE(message.find("surprise"), std::string::npos) << message;
}

TEST(VarlinkParseCall, WronglyTypedFieldsAreInvalidRequest) {
  std::string message;
  EXPECT_EQ(callErrorCode(R"({"method":"a.B","parameters":[1]})", &message), ErrorCode::InvalidRequest);
  EXPECT_NE(message.find("parameters"), std::string::npos) << message;
  EXPECT_EQ(callErrorCode(R"({"method":"a.B","more":"yes"})", &message), ErrorCode::InvalidRequest);
  EXPECT_NE(message.find("more"), std::string::npos) << message;
  EXPECT_EQ(callErrorCode(R"({"method":"a.B","oneway":1})"), ErrorCode::InvalidRequest);
}

TEST(VarlinkParseCall, ProtocolUpgradeIsRefused) {
  std::string message;
  EXPECT_EQ(callErrorCode(R"({"method":"a.B","upgrade":true})", &message), ErrorCode::InvalidRequest);
  EXPECT_NE(message.find("upgrade"), std::string::npos) << message;
}

// Without a nesting limit the parser and copies of the result recurse until the stack overflows.
TEST(VarlinkParseCall, DeeplyNestedParametersAreInvalidRequestNotAStackOverflow) {
  const size_t depth = 100000;
  std::string text = R"({"method":"a.B","parameters":{"a":)" + std::string(depth, '[') + std::string(depth, ']') + "}}";
  EXPECT_EQ(callErrorCode(text), ErrorCode::InvalidRequest);
}

TEST(VarlinkParseCall, NestingUpToTheLimitIsAcceptedAndBracketsInStringsDoNotCount) {
  std::string nested = std::string(60, '[') + std::string(60, ']');
  EXPECT_NO_THROW(parseCall(R"({"method":"a.B","parameters":{"a":)" + nested + "}}"));
  std::string brackets(1000, '[');
  EXPECT_NO_THROW(parseCall(R"({"method":"a.B","parameters":{"a":")" + brackets + R"(\"["}})"));
}

// ---- encode / parse ----

std::string withoutNul(const std::string& encoded) {
  EXPECT_FALSE(encoded.empty());
  EXPECT_EQ(encoded.back(), '\0');
  EXPECT_EQ(encoded.find('\0'), encoded.size() - 1) << "exactly one NUL, at the end";
  return encoded.substr(0, encoded.size() - 1);
}

TEST(VarlinkEncode, CallRoundTrips) {
  for (bool more : {false, true}) {
    CallMessage call{"org.zerobyte.Daemon.StartBackup", {{"volume", "home"}, {"tags", {"a", "b"}}, {"n", 3}}, more, false};
    auto parsed = parseCall(withoutNul(encode(call)));
    EXPECT_EQ(parsed.method, call.method);
    EXPECT_EQ(parsed.parameters, call.parameters);
    EXPECT_EQ(parsed.more, more);
    EXPECT_FALSE(parsed.oneway);
  }
  CallMessage oneway{"org.zerobyte.Daemon.GetStatus", json::object(), false, true};
  auto parsed = parseCall(withoutNul(encode(oneway)));
  EXPECT_TRUE(parsed.oneway);
  EXPECT_EQ(parsed.parameters, json::object());
}

TEST(VarlinkEncode, ReplyRoundTrips) {
  ReplyMessage reply;
  reply.parameters = {{"job", {{"id", 7}, {"state", "running"}}}, {"unicode", "café 日本語"}};
  reply.continues = true;
  auto parsed = parseReply(withoutNul(encode(reply)));
  EXPECT_EQ(parsed.parameters, reply.parameters);
  EXPECT_TRUE(parsed.continues);
  EXPECT_FALSE(parsed.error.has_value());

  ReplyMessage error;
  error.error = "org.zerobyte.Daemon.NotFound";
  error.parameters = {{"message", "no such thing"}};
  auto parsedError = parseReply(withoutNul(encode(error)));
  EXPECT_EQ(parsedError.error, error.error);
  EXPECT_EQ(parsedError.parameters, error.parameters);
  EXPECT_FALSE(parsedError.continues);
}

TEST(VarlinkEncode, ReplyAlwaysCarriesAParametersObject) {
  ReplyMessage reply;
  reply.parameters = nullptr;
  auto j = json::parse(withoutNul(encode(reply)));
  EXPECT_EQ(j.at("parameters"), json::object());
  EXPECT_FALSE(j.contains("error"));
  EXPECT_FALSE(j.contains("continues"));
}

TEST(VarlinkEncode, InvalidUtf8InAReplyIsReplacedInsteadOfThrowing) {
  ReplyMessage reply;
  reply.parameters = {{"name", "bad\xff\xfename"}};
  std::string text;
  ASSERT_NO_THROW(text = withoutNul(encode(reply)));
  auto parsed = parseReply(text);
  std::string name = parsed.parameters.at("name");
  EXPECT_EQ(name.substr(0, 3), "bad");
  EXPECT_EQ(name.substr(name.size() - 4), "name");
  EXPECT_EQ(name.find('\xff'), std::string::npos);
}

TEST(VarlinkParseReply, MalformedRepliesAreInvalidRequest) {
  for (const char* text : {"nope", "[]", R"({"parameters":1})", R"({"error":5})", R"({"continues":"x"})"}) {
    try {
      parseReply(text);
      ADD_FAILURE() << "parseReply accepted " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidRequest) << text;
    }
  }
}

// ---- errors on the wire ----

struct TableEntry {
  ErrorCode code;
  const char* name;
  int exitCode;
};

std::vector<TableEntry> everyError() {
  return {
#define ZB_TEST_ERROR_ENTRY(name, exitCode, text) TableEntry{ErrorCode::name, #name, exitCode},
      ZEROBYTE_ERRORS(ZB_TEST_ERROR_ENTRY)
#undef ZB_TEST_ERROR_ENTRY
  };
}

TEST(VarlinkErrors, EveryErrorOfTheTableSurvivesAReplyRoundTrip) {
  const auto table = everyError();
  ASSERT_GE(table.size(), 20U);
  for (const auto& entry : table) {
    SCOPED_TRACE(entry.name);
    Error original(entry.code, std::string("something about ") + entry.name + " went wrong", {{"parameter", "path"}, {"extra", 3}});
    ReplyMessage reply = errorReply(original);
    ASSERT_TRUE(reply.error.has_value());
    EXPECT_EQ(*reply.error, varlinkErrorName(entry.code));
    EXPECT_EQ(reply.parameters.at("message"), original.what());
    EXPECT_EQ(reply.parameters.at("parameter"), "path");
    EXPECT_FALSE(reply.continues);

    ReplyMessage onTheWire = parseReply(withoutNul(encode(reply)));
    Error back = errorFromReply(onTheWire);
    EXPECT_EQ(back.code(), entry.code);
    EXPECT_STREQ(back.what(), original.what());
    EXPECT_EQ(back.details(), (json{{"parameter", "path"}, {"extra", 3}}));
    EXPECT_EQ(errorInfo(entry.code).exitCode, entry.exitCode);
    EXPECT_EQ(errorName(entry.code), entry.name);
  }
}

TEST(VarlinkErrors, ErrorReplyWithoutDetailsHasOnlyTheMessage) {
  ReplyMessage reply = errorReply(Error(ErrorCode::NotFound, "no volume named \"x\""));
  EXPECT_EQ(reply.parameters, (json{{"message", "no volume named \"x\""}}));
  Error back = errorFromReply(reply);
  EXPECT_EQ(back.details(), json::object());
}

TEST(VarlinkErrors, ErrorNamesResolveInShortVarlinkAndDBusForms) {
  for (const auto& entry : everyError()) {
    SCOPED_TRACE(entry.name);
    EXPECT_EQ(errorFromName(entry.name), entry.code);
    EXPECT_EQ(errorFromName(varlinkErrorName(entry.code)), entry.code);
    EXPECT_EQ(errorFromName(dbusErrorName(entry.code)), entry.code);
    EXPECT_EQ(dbusErrorName(entry.code), std::string("org.zerobyte.Daemon1.Error.") + entry.name);
  }
  EXPECT_EQ(errorFromName("NoSuchError"), std::nullopt);
  EXPECT_EQ(errorFromName("org.zerobyte.Daemon.NoSuchError"), std::nullopt);
  EXPECT_EQ(errorFromName(""), std::nullopt);
}

TEST(VarlinkErrors, ServiceErrorsUseTheVarlinkServiceInterfaceAndTheRestTheDaemonInterface) {
  // The errors org.varlink.service defines that this daemon uses.
  const std::set<std::string> serviceErrors = {"InterfaceNotFound", "MethodNotFound", "InvalidParameter", "ExpectedMore"};
  for (const auto& entry : everyError()) {
    SCOPED_TRACE(entry.name);
    std::string expected = (serviceErrors.count(entry.name) ? std::string(kVarlinkServiceInterface) : std::string(kVarlinkInterface)) +
                           "." + entry.name;
    EXPECT_EQ(varlinkErrorName(entry.code), expected);
  }
  EXPECT_EQ(varlinkErrorName(ErrorCode::MethodNotFound), "org.varlink.service.MethodNotFound");
  EXPECT_EQ(varlinkErrorName(ErrorCode::MessageTooLarge), "org.zerobyte.Daemon.MessageTooLarge");
}

TEST(VarlinkErrors, UnknownErrorNameBecomesFailedCarryingTheName) {
  ReplyMessage reply;
  reply.error = "com.example.Other.Broken";
  reply.parameters = {{"message", "it broke"}};
  Error e = errorFromReply(reply);
  EXPECT_EQ(e.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(e.what()).find("com.example.Other.Broken"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("it broke"), std::string::npos) << e.what();
}

TEST(VarlinkErrors, ReplyWithoutMessageGetsOneNamingTheParameter) {
  ReplyMessage reply;
  reply.error = "org.varlink.service.InvalidParameter";
  reply.parameters = {{"parameter", "volume"}};
  Error e = errorFromReply(reply);
  EXPECT_EQ(e.code(), ErrorCode::InvalidParameter);
  EXPECT_NE(std::string(e.what()).find("volume"), std::string::npos) << e.what();
  EXPECT_EQ(e.details(), (json{{"parameter", "volume"}}));

  ReplyMessage bare;
  bare.error = "org.zerobyte.Daemon.Busy";
  Error b = errorFromReply(bare);
  EXPECT_EQ(b.code(), ErrorCode::Busy);
  EXPECT_EQ(std::string(b.what()), std::string(errorInfo(ErrorCode::Busy).description));
}

}  // namespace
}  // namespace zerobyte::varlink
