// Names, paths, tags, patterns and snapshot ids: what is accepted, what is refused, and what the message says.
#include "daemon/core/validation.h"

#include "common/errors.h"

#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace zerobyte::core {
namespace {

using zbtest::unit::rejection;

std::string nameRejection(std::string_view name) {
  return rejection([&] { validateName(name, "volume name"); });
}

std::string pathRejection(std::string_view path) {
  return rejection([&] { validateAbsolutePath(path, "volume path"); });
}

TEST(ValidateName, AcceptsLowercaseLettersDigitsUnderscoreAndDash) {
  for (std::string_view name : {"a", "0", "etc", "home-2", "my_data", "9lives", "a-_-b"}) {
    EXPECT_TRUE(isValidName(name)) << name;
    EXPECT_NO_THROW(validateName(name, "volume name")) << name;
  }
}

TEST(ValidateName, Accepts63CharactersAndRefuses64) {
  std::string name(63, 'a');
  EXPECT_NO_THROW(validateName(name, "volume name"));
  name += 'a';
  EXPECT_FALSE(isValidName(name));
  EXPECT_NE(nameRejection(name).find("64 bytes long"), std::string::npos);
}

TEST(ValidateName, RefusesEmptyNameSayingItIsEmpty) {
  EXPECT_FALSE(isValidName(""));
  EXPECT_EQ(nameRejection(""),
            "volume name \"\" is not valid: it is empty; use 1-63 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit");
}

TEST(ValidateName, RefusesUppercaseWithTheRuleInTheMessage) {
  EXPECT_FALSE(isValidName("Home"));
  EXPECT_EQ(nameRejection("Home"),
            "volume name \"Home\" is not valid: use 1-63 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit");
}

TEST(ValidateName, RefusesLeadingDashOrUnderscore) {
  EXPECT_FALSE(isValidName("-etc"));
  EXPECT_FALSE(isValidName("_etc"));
  EXPECT_NE(nameRejection("-etc").find("starting with a letter or digit"), std::string::npos);
}

TEST(ValidateName, RefusesDotsSlashesSpacesAndUnicode) {
  for (std::string_view name : {"a.b", "a/b", "a b", "..", "h\xc3\xa4user", "caf\xc3\xa9"}) EXPECT_FALSE(isValidName(name)) << name;
  // Valid UTF-8 is shown as it is, so the user recognises what they typed.
  EXPECT_NE(nameRejection("h\xc3\xa4user").find("\"h\xc3\xa4user\""), std::string::npos);
}

TEST(ValidateName, EscapesNewlineSoTheMessageStaysOnOneLine) {
  std::string message = nameRejection("etc\nzerobyted: forged log line");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find("\"etc\\nzerobyted: forged log line\""), std::string::npos) << message;
}

TEST(ValidateName, UsesTheFieldNameGivenByTheCaller) {
  std::string message = rejection([] { validateName("Bad", "repository name"); });
  EXPECT_TRUE(message.starts_with("repository name \"Bad\" is not valid")) << message;
}

TEST(ValidateAbsolutePath, AcceptsRootAndNormalisedPaths) {
  for (std::string_view path : {"/", "/etc", "/srv/backup/restic", "/a/.hidden/b", "/a/...", "/with space/x",
                                "/h\xc3\xa4user"})
    EXPECT_NO_THROW(validateAbsolutePath(path, "volume path")) << path;
}

TEST(ValidateAbsolutePath, RefusesRelativePathSayingToStartWithSlash) {
  EXPECT_EQ(pathRejection("srv/data"),
            "volume path \"srv/data\" is not valid: it is relative; give an absolute path that starts with '/'");
}

TEST(ValidateAbsolutePath, RefusesEmptyPath) {
  EXPECT_NE(pathRejection("").find("it is empty"), std::string::npos);
}

TEST(ValidateAbsolutePath, RefusesDotAndDotDotComponents) {
  EXPECT_NE(pathRejection("/srv/../etc").find("contains a \"..\" component"), std::string::npos);
  EXPECT_NE(pathRejection("/srv/..").find("\"..\" component"), std::string::npos);
  EXPECT_NE(pathRejection("/./srv").find("contains a \".\" component"), std::string::npos);
  EXPECT_NE(pathRejection("/srv/.").find("\".\" component"), std::string::npos);
}

TEST(ValidateAbsolutePath, RefusesEmptyComponents) {
  EXPECT_NE(pathRejection("//srv").find("empty component (\"//\")"), std::string::npos);
  EXPECT_NE(pathRejection("/srv//data").find("empty component"), std::string::npos);
  EXPECT_NE(pathRejection("//").find("empty component"), std::string::npos);
}

TEST(ValidateAbsolutePath, RefusesTrailingSlashSayingToRemoveIt) {
  EXPECT_EQ(pathRejection("/srv/"), "volume path \"/srv/\" is not valid: it ends with '/'; remove the trailing '/'");
}

TEST(ValidateAbsolutePath, RefusesNulAndControlCharactersShowingThemEscaped) {
  using namespace std::string_literals;
  std::string nul = pathRejection("/srv\0/etc"s);
  EXPECT_NE(nul.find("\"/srv\\x00/etc\""), std::string::npos) << nul;
  EXPECT_NE(nul.find("control character \\x00; remove it"), std::string::npos) << nul;
  EXPECT_EQ(nul.find('\0'), std::string::npos);

  std::string newline = pathRejection("/srv\n/etc");
  EXPECT_EQ(newline.find('\n'), std::string::npos) << newline;
  EXPECT_NE(newline.find("control character \\n"), std::string::npos) << newline;

  EXPECT_NE(pathRejection("/srv\t").find("\\t"), std::string::npos);
  EXPECT_NE(pathRejection("/srv\x1b[31m").find("\\x1b"), std::string::npos);
  EXPECT_NE(pathRejection("/srv\x7f").find("\\x7f"), std::string::npos);
}

TEST(ValidateAbsolutePath, Accepts4095BytesAndRefuses4096WithAShortenedQuote) {
  std::string path = "/" + std::string(4094, 'a');
  EXPECT_NO_THROW(validateAbsolutePath(path, "volume path"));
  path += 'a';
  std::string message = pathRejection(path);
  EXPECT_NE(message.find("it is 4096 bytes long; the limit is 4095"), std::string::npos);
  EXPECT_LT(message.size(), 300u) << "the whole path was repeated in the message";
  EXPECT_NE(message.find("(4096 bytes in all)"), std::string::npos);
}

TEST(ValidateSnapshotPath, AcceptsTrailingSlashButNotOtherMistakes) {
  EXPECT_NO_THROW(validateSnapshotPath("/", "include path"));
  EXPECT_NO_THROW(validateSnapshotPath("/etc/", "include path"));
  EXPECT_NO_THROW(validateSnapshotPath("/etc/ssh", "include path"));
  EXPECT_THROW(validateSnapshotPath("/etc//", "include path"), Error);
  EXPECT_THROW(validateSnapshotPath("//", "include path"), Error);
  EXPECT_THROW(validateSnapshotPath("etc/", "include path"), Error);
  EXPECT_THROW(validateSnapshotPath("/etc/../", "include path"), Error);
  std::string message = rejection([] { validateSnapshotPath("/etc/../root", "include path"); });
  EXPECT_TRUE(message.starts_with("include path \"/etc/../root\" is not valid")) << message;
}

TEST(ValidateTag, AcceptsOrdinaryTags) {
  for (std::string_view tag : {"daily", "host=web1", "a b", "x", "t\xc3\xa4glich"}) EXPECT_NO_THROW(validateTag(tag)) << tag;
  EXPECT_NO_THROW(validateTag(std::string(128, 't')));
}

TEST(ValidateTag, RefusesCommaExplainingWhy) {
  std::string message = rejection([] { validateTag("daily,weekly"); });
  EXPECT_EQ(message,
            "tag \"daily,weekly\" is not valid: it contains ','; restic splits tags at commas, so give each tag on its own");
}

TEST(ValidateTag, RefusesEmptyTooLongAndControlCharacters) {
  EXPECT_NE(rejection([] { validateTag(""); }).find("it is empty"), std::string::npos);
  EXPECT_NE(rejection([] { validateTag(std::string(129, 't')); }).find("129 bytes long; the limit is 128"),
            std::string::npos);
  EXPECT_NE(rejection([] { validateTag("a\nb"); }).find("control character \\n"), std::string::npos);
}

TEST(ValidateExcludePattern, AcceptsGlobsAndRefusesEmptyControlAndTooLong) {
  EXPECT_NO_THROW(validateExcludePattern("*.tmp"));
  EXPECT_NO_THROW(validateExcludePattern("/home/*/.cache"));
  EXPECT_NO_THROW(validateExcludePattern(std::string(4095, '*')));
  EXPECT_NE(rejection([] { validateExcludePattern(""); }).find("exclude pattern \"\" is not valid: it is empty"),
            std::string::npos);
  EXPECT_NE(rejection([] { validateExcludePattern("*.tmp\r"); }).find("\\r"), std::string::npos);
  EXPECT_NE(rejection([] { validateExcludePattern(std::string(4096, '*')); }).find("the limit is 4095"),
            std::string::npos);
}

TEST(ValidateSnapshotId, AcceptsShortAndLongHexIdsAndLatest) {
  EXPECT_NO_THROW(validateSnapshotId("latest"));
  EXPECT_NO_THROW(validateSnapshotId("0123abcd"));
  EXPECT_NO_THROW(validateSnapshotId(std::string(64, 'f')));
}

TEST(ValidateSnapshotId, RefusesSevenCharactersAndSixtyFive) {
  std::string message = rejection([] { validateSnapshotId("0123abc"); });
  EXPECT_TRUE(message.starts_with("snapshot id \"0123abc\" is not valid")) << message;
  EXPECT_NE(message.find("8-64 lowercase hexadecimal characters"), std::string::npos) << message;
  EXPECT_THROW(validateSnapshotId(std::string(65, 'f')), Error);
}

TEST(ValidateSnapshotId, RefusesUppercaseSayingToWriteItInLowercase) {
  std::string message = rejection([] { validateSnapshotId("0123ABCD"); });
  EXPECT_NE(message.find("write it in lowercase"), std::string::npos) << message;
}

TEST(ValidateSnapshotId, RefusesNonHexAndOtherWords) {
  for (std::string_view id : {"", "0123abcg", "Latest", "LATEST", "latest\n", "0123abc ", "--latest"})
    EXPECT_THROW(validateSnapshotId(id), Error) << id;
}

TEST(QuoteValue, EscapesQuotesBackslashesControlsAndInvalidUtf8) {
  EXPECT_EQ(quoteValue("plain"), "\"plain\"");
  EXPECT_EQ(quoteValue("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(quoteValue("a\r\n\tb\x01"), "\"a\\r\\n\\tb\\x01\"");
  EXPECT_EQ(quoteValue("\xff\xc3"), "\"\\xff\\xc3\"");
  // An overlong encoding of '/' and a UTF-16 surrogate are not UTF-8 either.
  EXPECT_EQ(quoteValue("\xc0\xaf"), "\"\\xc0\\xaf\"");
  EXPECT_EQ(quoteValue("\xed\xa0\x80"), "\"\\xed\\xa0\\x80\"");
  // NEL (U+0085) is a line break to some terminals.
  EXPECT_EQ(quoteValue("a\xc2\x85"), "\"a\\u0085\"");
  EXPECT_EQ(quoteValue("\xe2\x82\xac"), "\"\xe2\x82\xac\"");
}

TEST(ValidateScheduleFields, IncludePathsStayInsideTheVolume) {
  for (const char* ok : {"Documents", "photos/2024", "a..b", ".hidden", "x/.../y"}) EXPECT_NO_THROW(validateIncludePath(ok)) << ok;
  EXPECT_TRUE(rejection([] { validateIncludePath(""); }).find("empty") != std::string::npos);
  EXPECT_TRUE(rejection([] { validateIncludePath("/etc"); }).find("absolute") != std::string::npos);
  for (const char* escape : {"..", "../etc", "a/../../b", "a/.."})
    EXPECT_TRUE(rejection([escape] { validateIncludePath(escape); }).find("leaves the volume") != std::string::npos) << escape;
  EXPECT_TRUE(rejection([] { validateIncludePath("a\nb"); }).find("control") != std::string::npos);
}

TEST(ValidateScheduleFields, MarkersAreFileNames) {
  EXPECT_NO_THROW(validateMarkerName(".nobackup"));
  for (const char* bad : {"", ".", "..", "a/b", "x\ty"}) EXPECT_THROW(validateMarkerName(bad), Error) << bad;
  EXPECT_THROW(validateMarkerName(std::string(256, 'a')), Error);
}

TEST(ValidateScheduleFields, TheScheduleTagPrefixIsReserved) {
  EXPECT_NO_THROW(validateUserTag("zerobyte", "tags"));
  EXPECT_NO_THROW(validateUserTag("schedule:nightly", "tags"));
  EXPECT_TRUE(rejection([] { validateUserTag("zerobyte-schedule:nightly", "tags"); }).find("reserved") != std::string::npos);
  EXPECT_THROW(validateUserTag("a,b", "tags"), Error);
}

TEST(ValidateScheduleFields, ReadDataSubsetIsAPartAPercentageOrASize) {
  for (const char* ok : {"1/5", "5/5", "10%", "2.5%", "100%", "0.1%", "500M", "2G", "1T", "7K"})
    EXPECT_NO_THROW(validateReadDataSubset(ok)) << ok;
  for (const char* bad : {"", "0/5", "6/5", "1/0", "0%", "101%", "100.5%", "%", "1.%", "abc", "5", "0G", "2X", "1/5/7", "-1/5", "1e3%"})
    EXPECT_TRUE(rejection([bad] { validateReadDataSubset(bad); }).find("read-data subset") != std::string::npos) << bad;
}

TEST(ValidateScheduleFields, CompressionIsOneOfResticsModes) {
  for (const char* ok : {"auto", "off", "max"}) EXPECT_NO_THROW(validateCompression(ok));
  for (const char* bad : {"", "fastest", "MAX"}) EXPECT_THROW(validateCompression(bad), Error) << bad;
}

}  // namespace
}  // namespace zerobyte::core
