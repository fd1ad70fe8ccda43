// The D-Bus shapes of the service layer's JSON replies and of D-Bus options.
#include "common/errors.h"
#include "daemon/dbus/variant_json.h"

#include <gtest/gtest.h>

#include <cctype>
#include <limits>

using nlohmann::json;
using zerobyte::Error;
using zerobyte::ErrorCode;
namespace dbus = zerobyte::dbus;

TEST(DbusVariant, RecordsBecomeVardictsWithTheSocketsKeysAndNullsLeftOut) {
  json job = {{"id", 7},
              {"state", "running"},
              {"volume", nullptr},
              {"tags", json::array({"nightly", "home"})},
              {"warnings", json::array()},
              {"progress", {{"percent", 12.5}, {"bytes_done", 1024}}},
              {"summary", nullptr},
              {"big", std::numeric_limits<uint64_t>::max()}};
  auto dict = dbus::toVardict(job);
  EXPECT_EQ(dict.count("volume"), 0u);
  EXPECT_EQ(dict.count("summary"), 0u);
  EXPECT_EQ(dict.at("id").peekValueType(), "x");
  EXPECT_EQ(dict.at("id").get<int64_t>(), 7);
  EXPECT_EQ(dict.at("state").get<std::string>(), "running");
  EXPECT_EQ(dict.at("tags").peekValueType(), "as");
  EXPECT_EQ(dict.at("tags").get<std::vector<std::string>>(), (std::vector<std::string>{"nightly", "home"}));
  EXPECT_EQ(dict.at("warnings").peekValueType(), "as");
  EXPECT_EQ(dict.at("big").peekValueType(), "t");
  EXPECT_EQ(dict.at("big").get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  ASSERT_EQ(dict.at("progress").peekValueType(), "a{sv}");
  auto progress = dict.at("progress").get<dbus::Vardict>();
  EXPECT_DOUBLE_EQ(progress.at("percent").get<double>(), 12.5);
  EXPECT_EQ(progress.at("bytes_done").get<int64_t>(), 1024);
}

TEST(DbusVariant, ListsOfRecordsAreArraysOfVardicts) {
  json snapshots = json::array({{{"id", "a1"}, {"paths", json::array({"/home"})}}, {{"id", "b2"}, {"parent", nullptr}}});
  auto list = dbus::toVardictList(snapshots);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("id").get<std::string>(), "a1");
  EXPECT_EQ(list[1].count("parent"), 0u);
  EXPECT_EQ(dbus::toVariant(snapshots).peekValueType(), "aa{sv}");
  EXPECT_EQ(dbus::toVariant(json::array({1, "x"})).peekValueType(), "av");
}

TEST(DbusVariant, OptionsOfEveryPlainTypeBecomeJson) {
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(std::string("x")), "k"), json("x"));
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(true), "k"), json(true));
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(int32_t{-3}), "k"), json(-3));
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(uint32_t{3}), "k"), json(3));
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(int64_t{-5}), "k"), json(-5));
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(uint64_t{5}), "k"), json(5));
  EXPECT_EQ(dbus::fromVariant(sdbus::Variant(std::vector<std::string>{"a", "b"}), "k"), json::array({"a", "b"}));
}

TEST(DbusVariant, AnOptionOfAnotherTypeIsRefusedNamingIt) {
  try {
    dbus::fromVariant(sdbus::Variant(dbus::Vardict{}), "tags");
    FAIL() << "a dictionary was accepted as an option value";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidParameter);
    EXPECT_NE(std::string(e.what()).find("\"tags\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a{sv}"), std::string::npos) << e.what();
  }
}

TEST(DbusVariant, IdsBecomeValidObjectPathElements) {
  EXPECT_EQ(dbus::encodePathElement("4f049f27"), "4f049f27");
  EXPECT_EQ(dbus::encodePathElement("cfg-home"), "cfg_2dhome");
  EXPECT_EQ(dbus::encodePathElement("a_b"), "a_5fb");
  EXPECT_EQ(dbus::encodePathElement(""), "_");
  // Distinct ids stay distinct: "_" itself is escaped.
  EXPECT_NE(dbus::encodePathElement("a-b"), dbus::encodePathElement("a_2db"));
  // Only the bytes an object path element may hold.
  for (char c : dbus::encodePathElement("cfg-home.x/../\xff"))
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_') << "byte " << int(c);
}
