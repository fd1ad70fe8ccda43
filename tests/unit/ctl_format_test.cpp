// zerobytectl's human output: sizes, durations, times, tables, progress and summary lines,
// snapshot entries, and the text handling of passwords and paths.
#include "common/errors.h"
#include "ctl/output.h"
#include "ctl/password.h"
#include "ctl/paths.h"
#include "ctl/progress.h"
#include "ctl/record_format.h"
#include "tests/unit/test_support.h"

#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>

namespace zerobyte::ctl {
namespace {

using nlohmann::json;
using zbtest::unit::TemporaryDirectory;
using zbtest::unit::writeFile;

// Pins the local time zone for one test: a POSIX TZ string needs no tzdata.
class LocalTimeZone {
 public:
  explicit LocalTimeZone(const char* tz) {
    m_tz.emplace("TZ", tz);
    ::tzset();
  }
  ~LocalTimeZone() {
    m_tz.reset();
    ::tzset();  // only once TZ is back, so the old zone is in force again
  }
  LocalTimeZone(const LocalTimeZone&) = delete;
  LocalTimeZone& operator=(const LocalTimeZone&) = delete;

 private:
  std::optional<zbtest::unit::ScopedEnvironment> m_tz;
};

json runningBackup() {
  return json{{"id", 12},
              {"operation", "backup"},
              {"state", "running"},
              {"repository", "main"},
              {"volume", "home"},
              {"progress",
               {{"percent", 47.5},
                {"bytes_done", 14408776},
                {"bytes_total", 30300011},
                {"files_done", 5},
                {"files_total", 6},
                {"rate", 2097152.0},
                {"seconds_elapsed", 7},
                {"seconds_remaining", 8},
                {"current_files", {"/src/big.bin"}}}}};
}

json finishedBackup(const std::string& state) {
  json job = runningBackup();
  job["state"] = state;
  job["summary"] = {{"snapshot_id", "5c62b13c"}, {"files_new", 6},     {"files_changed", 0},
                    {"files_unmodified", 0},     {"data_added", 30304295}, {"total_duration", 0.450446504}};
  return job;
}

TEST(FormatBytes, ShowsBytesBelowOneKibibyte) {
  EXPECT_EQ(formatBytes(0), "0 B");
  EXPECT_EQ(formatBytes(1023), "1023 B");
}

TEST(FormatBytes, UsesIecUnitsWithOneDecimal) {
  EXPECT_EQ(formatBytes(1024), "1.0 KiB");
  EXPECT_EQ(formatBytes(1536), "1.5 KiB");
  EXPECT_EQ(formatBytes(30300011), "28.9 MiB");
  EXPECT_EQ(formatBytes(5ULL * 1024 * 1024 * 1024), "5.0 GiB");
}

TEST(FormatBytes, MovesToTheNextUnitInsteadOfPrinting1024) {
  EXPECT_EQ(formatBytes(1048575), "1.0 MiB");
  EXPECT_EQ(formatBytes(std::numeric_limits<uint64_t>::max()), "16.0 EiB");
}

TEST(FormatRate, IsBytesPerSecond) {
  EXPECT_EQ(formatRate(0), "0 B/s");
  EXPECT_EQ(formatRate(1572864.0), "1.5 MiB/s");
}

TEST(FormatDuration, ShowsTenthsOnlyForShortFractionalDurations) {
  EXPECT_EQ(formatDuration(0), "0s");
  EXPECT_EQ(formatDuration(0.450446504), "0.5s");
  EXPECT_EQ(formatDuration(4.0), "4s");
  EXPECT_EQ(formatDuration(42.4), "42s");
}

TEST(FormatDuration, UsesTwoUnitsFromAMinuteOn) {
  EXPECT_EQ(formatDuration(59.6), "1m 00s");
  EXPECT_EQ(formatDuration(65), "1m 05s");
  EXPECT_EQ(formatDuration(3725), "1h 02m");
  EXPECT_EQ(formatDuration(3 * 86400 + 4 * 3600 + 59), "3d 04h");
}

TEST(ParseRfc3339, ReadsUtcTimesWithFractions) {
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:00Z"), 0.0);
  auto t = parseRfc3339("2026-11-22T05:02:03.717279196Z");
  ASSERT_TRUE(t);
  EXPECT_NEAR(*t, 1795323723.717279196, 1e-5);
  EXPECT_EQ(parseRfc3339("2000-02-29T23:59:59Z"), 951868799.0);
}

TEST(ParseRfc3339, AppliesTheOffset) {
  EXPECT_EQ(parseRfc3339("2024-05-01T12:00:00+02:00"), 1714557600.0);
  EXPECT_EQ(parseRfc3339("2024-05-01T08:30:00-01:30"), 1714557600.0);
}

TEST(ParseRfc3339, RejectsWhatIsNotATime) {
  EXPECT_FALSE(parseRfc3339(""));
  EXPECT_FALSE(parseRfc3339("yesterday"));
  EXPECT_FALSE(parseRfc3339("2024-05-01T10:00:00"));  // no zone
  EXPECT_FALSE(parseRfc3339("2023-02-29T10:00:00Z"));  // not a leap year
  EXPECT_FALSE(parseRfc3339("2024-05-01T10:00:00Zjunk"));
  EXPECT_FALSE(parseRfc3339("2024-13-01T10:00:00Z"));
}

TEST(FormatLocalTime, ShowsDaemonTimesInTheLocalZone) {
  const json time = "2026-11-22T05:02:03.717279196Z";
  {
    LocalTimeZone utc("UTC0");
    EXPECT_EQ(formatLocalTime(time), "2026-11-22 05:02:03");
  }
  {
    LocalTimeZone plusTwo("XYZ-2");
    EXPECT_EQ(formatLocalTime(time), "2026-11-22 07:02:03");
  }
}

TEST(FormatLocalTime, ShowsADashForNoTimeAndUnparseableTextAsItIs) {
  EXPECT_EQ(formatLocalTime(json(nullptr)), "-");
  EXPECT_EQ(formatLocalTime(json("")), "-");
  EXPECT_EQ(formatLocalTime(json("soon")), "soon");
}

TEST(CountOf, PicksSingularOrPlural) {
  EXPECT_EQ(countOf(1, "volume"), "1 volume");
  EXPECT_EQ(countOf(0, "volume"), "0 volumes");
  EXPECT_EQ(countOf(2, "repository", "repositories"), "2 repositories");
}

TEST(Sanitize, EscapesTerminalControlCharacters) {
  EXPECT_EQ(sanitize("a\x1b[31mred\x07"), "a\\x1b[31mred\\x07");
  EXPECT_EQ(sanitize("line\nbreak\t"), "line\\x0abreak\\x09");
  EXPECT_EQ(sanitize("csi\xc2\x9b" "2J"), "csi\\u009b2J");
}

TEST(Sanitize, KeepsPrintableUtf8) { EXPECT_EQ(sanitize("café → résumé"), "café → résumé"); }

TEST(Table, AlignsColumnsUnderUpperCaseHeadersWithoutTrailingBlanks) {
  Table table({"name", "type", "path"});
  table.addRow({"home", "directory", "/home"});
  table.addRow({"srv-data", "directory", ""});
  EXPECT_EQ(table.render(),
            "NAME      TYPE       PATH\n"
            "home      directory  /home\n"
            "srv-data  directory\n");
}

TEST(Table, AlignsNumbersOnTheRight) {
  Table table({"id", "state"});
  table.alignRight(0);
  table.addRow({"7", "running"});
  table.addRow({"123", "failed"});
  EXPECT_EQ(table.render(),
            " ID  STATE\n"
            "  7  running\n"
            "123  failed\n");
}

TEST(Table, MeasuresUtf8ByCharactersAndEscapesControlCharacters) {
  Table table({"job", "x"});
  table.addRow({"home → main", "1"});
  table.addRow({"bad\x1b", "2"});
  EXPECT_EQ(table.render(false),
            "home → main  1\n"
            "bad\\x1b      2\n");
}

TEST(FormatFields, RightAlignsKeysAndIndentsContinuationLines) {
  EXPECT_EQ(formatFields({{"Name", "main"}, {"Repository", "x"}, {"Warnings", "/a\n/b"}, {"Empty", ""}}),
            "      Name: main\n"
            "Repository: x\n"
            "  Warnings: /a\n"
            "            /b\n"
            "     Empty:\n");
}

TEST(JsonText, IsOneLineUnlessPretty) {
  json value = {{"a", 1}};
  EXPECT_EQ(jsonText(value, false), R"({"a":1})");
  EXPECT_EQ(jsonText(value, true), "{\n  \"a\": 1\n}");
}

TEST(RecordFields, FallBackOnMissingNullOrWronglyTypedFields) {
  json record = {{"name", "x"}, {"count", nullptr}, {"flag", "yes"}, {"n", 3.6}};
  EXPECT_EQ(field(record, "name"), "x");
  EXPECT_EQ(field(record, "missing", "-"), "-");
  EXPECT_EQ(intField(record, "count", -1), -1);
  EXPECT_EQ(intField(record, "n"), 4);
  EXPECT_FALSE(boolField(record, "flag"));
  EXPECT_FALSE(optionalIntField(record, "count"));
  EXPECT_EQ(intField(json(nullptr), "id", 9), 9);
}

TEST(DescribeJob, SaysWhatTheJobDoesInAFewWords) {
  EXPECT_EQ(describeJob(runningBackup()), "backup home → main");
  EXPECT_EQ(describeJob(json{{"operation", "retention"}, {"repository", "main"}, {"schedule", "nightly"}}),
            "retention nightly in main");
  json restore = {{"operation", "restore"},
                  {"repository", "main"},
                  {"snapshot", "6b823dbf5e13e0cd95733934f5d9ffad1cd06b5683a4edbc4b8fafb6e5f5771e"},
                  {"target", "/srv/x"}};
  EXPECT_EQ(describeJob(restore), "restore main 6b823dbf → /srv/x");
  EXPECT_EQ(describeJob(json{{"operation", "forget"}, {"repository", "main"}, {"snapshot", "latest"}}),
            "forget main latest");
  EXPECT_EQ(describeJob(json{{"operation", "init"}, {"repository", "main"}}), "init main");
}

TEST(JobStateText, AddsThePercentageWhileRunning) {
  EXPECT_EQ(jobStateText(runningBackup()), "running 47%");
  EXPECT_EQ(jobStateText(finishedBackup("succeeded")), "succeeded");
}

TEST(JobDuration, PrefersResticsDurationThenTheTimestamps) {
  EXPECT_NEAR(*jobDuration(finishedBackup("succeeded"), 0), 0.450446504, 1e-9);
  json job = {{"state", "failed"}, {"started", "2026-11-22T05:02:00Z"}, {"finished", "2026-11-22T05:02:03.5Z"}};
  EXPECT_NEAR(*jobDuration(job, 0), 3.5, 1e-9);
  json running = {{"state", "running"}, {"started", "1970-01-01T00:01:00Z"}};
  EXPECT_EQ(jobDuration(running, 100.0), 40.0);
  EXPECT_FALSE(jobDuration(json{{"state", "queued"}}, 100.0));
}

TEST(SecretStateText, SaysWhetherAndWhereButNeverWhat) {
  EXPECT_EQ(secretStateText(json{{"set", true}, {"source", "stored"}}), "set (stored)");
  EXPECT_EQ(secretStateText(json{{"set", true}, {"source", "file:///etc/zerobyte/main.pw"}}),
            "set (file:///etc/zerobyte/main.pw)");
  EXPECT_EQ(secretStateText(json{{"set", false}, {"source", ""}}), "not set");
}

TEST(ProgressLine, ShowsBarPercentBytesFilesRateEtaAndCurrentFile) {
  EXPECT_EQ(progressLine(runningBackup(), 200),
            "[=========>          ]   47.5%  13.7 MiB / 28.9 MiB  5/6 files  2.0 MiB/s  ETA 8s  /src/big.bin");
}

TEST(ProgressLine, DropsTheCurrentFileThenTheBarOnNarrowTerminals) {
  EXPECT_EQ(progressLine(runningBackup(), 60), " 47.5%  13.7 MiB / 28.9 MiB  5/6 files  2.0 MiB/s  ETA 8s");
  std::string narrow = progressLine(runningBackup(), 20);
  EXPECT_EQ(displayWidth(narrow), 20u);
  EXPECT_EQ(narrow, " 47.5%  13.7 MiB / …");
}

TEST(ProgressLine, KeepsTheEndOfALongCurrentPath) {
  json job = runningBackup();
  job["progress"]["current_files"] = {"/home/alice/photos/2024/holidays/img_0042.jpg"};
  std::string line = progressLine(job, 110);
  EXPECT_EQ(displayWidth(line), 110u);
  EXPECT_EQ(line.substr(line.size() - std::string("/img_0042.jpg").size()), "/img_0042.jpg");
  EXPECT_NE(line.find("ETA 8s  …"), std::string::npos);
}

TEST(ProgressLine, ShowsElapsedTimeWhenNothingIsKnownYet) {
  json job = {{"state", "running"}, {"progress", {{"percent", 0}, {"seconds_elapsed", 65}}}};
  EXPECT_EQ(progressLine(job, 80), "Running  1m 05s elapsed");
  EXPECT_EQ(progressLine(json{{"state", "queued"}}, 80), "Queued: waiting for the repository or a free slot…");
}

TEST(JobSummaryLine, ReportsSnapshotFilesDataAndDurationOfABackup) {
  EXPECT_EQ(jobSummaryLine(finishedBackup("succeeded")),
            "Job 12 (backup home → main) succeeded in 0.5s: snapshot 5c62b13c, "
            "files 6 new / 0 changed / 0 unmodified, 28.9 MiB added.");
}

TEST(JobSummaryLine, CountsUnreadablePathsOnWarning) {
  json job = finishedBackup("warning");
  job["warnings"] = {"/home/alice/secret", "/home/bob/locked"};
  EXPECT_EQ(jobSummaryLine(job),
            "Job 12 (backup home → main) finished with warnings in 0.5s: snapshot 5c62b13c, "
            "files 6 new / 0 changed / 0 unmodified, 28.9 MiB added; 2 paths could not be read.");
}

TEST(JobSummaryLine, CarriesResticsMessageOnFailure) {
  json job = {{"id", 13},
              {"operation", "restore"},
              {"state", "failed"},
              {"repository", "main"},
              {"snapshot", "6b823dbf"},
              {"target", "/srv/x"},
              {"started", "2026-11-22T05:02:00Z"},
              {"finished", "2026-11-22T05:02:03Z"},
              {"message", "Fatal: wrong password or no key found."}};
  EXPECT_EQ(jobSummaryLine(job),
            "Job 13 (restore main 6b823dbf → /srv/x) failed after 3s: Fatal: wrong password or no key found.");
}

TEST(JobSummaryLine, EscapesControlCharactersInTheMessage) {
  json job = {{"id", 1}, {"operation", "init"}, {"repository", "r"}, {"state", "failed"}, {"message", "bad\x1b]0;x"}};
  EXPECT_EQ(jobSummaryLine(job), "Job 1 (init r) failed: bad\\x1b]0;x.");
}

TEST(JobExitCode, FollowsTheDocumentedExitStatuses) {
  EXPECT_EQ(jobExitCode(json{{"state", "succeeded"}}), 0);
  EXPECT_EQ(jobExitCode(json{{"state", "warning"}}), 3);
  EXPECT_EQ(jobExitCode(json{{"state", "failed"}}), 1);
  EXPECT_EQ(jobExitCode(json{{"state", "cancelled"}}), 8);
  EXPECT_EQ(jobExitCode(json{{"state", "interrupted"}}), 8);
}

TEST(LsPermissions, ReadsGoFileModesAsLsDoes) {
  EXPECT_EQ(lsPermissions("dir", 2147484141), "drwxr-xr-x");
  EXPECT_EQ(lsPermissions("dir", 2148532735), "drwxrwxrwt");  // restic prints "dtrwxrwxrwx"
  EXPECT_EQ(lsPermissions("symlink", 134218239), "lrwxrwxrwx");
  EXPECT_EQ(lsPermissions("file", 420), "-rw-r--r--");
  EXPECT_EQ(lsPermissions("file", (1 << 23) | 0755), "-rwsr-xr-x");
}

TEST(LsPermissions, ReadsPosixModesToo) {
  EXPECT_EQ(lsPermissions("file", 0100644 | 02000), "-rw-r-Sr--");
  EXPECT_EQ(lsPermissions("fifo", 010600), "prw-------");
}

TEST(NodeLine, PrintsLikeLsLong) {
  LocalTimeZone utc("UTC0");
  json file = {{"name", "big.bin"},  {"type", "file"}, {"path", "/src/big.bin"}, {"uid", 0},
               {"gid", 0},           {"size", 30000000}, {"mode", 420},         {"permissions", "-rw-r--r--"},
               {"mtime", "2026-11-22T05:02:02.160814963Z"}};
  EXPECT_EQ(nodeLine(file), "-rw-r--r-- 0/0             30000000 2026-11-22 05:02:02 /src/big.bin");
  json link = {{"name", "dangling"}, {"type", "symlink"}, {"path", "/src/dangling"}, {"uid", 1000},
               {"gid", 1000},        {"size", nullptr},   {"mode", 134218239},       {"permissions", "Lrwxrwxrwx"},
               {"mtime", "2026-11-22T06:23:03.883575844Z"}, {"link_target", "/nowhere"}};
  EXPECT_EQ(nodeLine(link), "lrwxrwxrwx 1000/1000                2026-11-22 06:23:03 /src/dangling -> /nowhere");
}

TEST(NodeLine, EscapesControlCharactersInNames) {
  json node = {{"type", "file"}, {"path", "/evil\x1b[2Jname"}, {"mode", 420}, {"size", 1}, {"mtime", nullptr}};
  EXPECT_NE(nodeLine(node).find("/evil\\x1b[2Jname"), std::string::npos);
}

TEST(PasswordFromText, StripsExactlyOneTrailingNewline) {
  EXPECT_EQ(passwordFromText("secret\n", "f"), "secret");
  EXPECT_EQ(passwordFromText("secret\r\n", "f"), "secret");
  EXPECT_EQ(passwordFromText("secret\n\n", "f"), "secret\n");
  EXPECT_EQ(passwordFromText(" spaced ", "f"), " spaced ");
}

TEST(PasswordFromText, RefusesAnEmptyPassword) {
  for (const char* text : {"", "\n"}) {
    try {
      passwordFromText(text, "/tmp/pw");
      FAIL() << "accepted an empty password";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
      EXPECT_NE(std::string(e.what()).find("/tmp/pw"), std::string::npos);
    }
  }
}

TEST(ReadRepositoryPassword, ReadsTheFileGiven) {
  TemporaryDirectory dir("zb-ctl-pw");
  const auto path = dir.path() / "password";
  writeFile(path, "correct horse\n");
  EXPECT_EQ(readRepositoryPassword(path.string(), "main"), "correct horse");
}

TEST(ReadRepositoryPassword, NamesAMissingFile) {
  try {
    readRepositoryPassword("/nonexistent/zb.pw", "main");
    FAIL() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/zb.pw"), std::string::npos);
  }
}

TEST(AbsolutePath, ResolvesRelativePathsAgainstTheBase) {
  EXPECT_EQ(absolutePath("out", "/home/alice"), "/home/alice/out");
  EXPECT_EQ(absolutePath("../bob/./x/", "/home/alice"), "/home/bob/x");
  EXPECT_EQ(absolutePath("/srv//restore/", "/home/alice"), "/srv/restore");
  EXPECT_EQ(absolutePath("/", "/home/alice"), "/");
}

TEST(AbsolutePath, UsesTheCurrentDirectoryByDefault) {
  EXPECT_EQ(absolutePath("x"), (std::filesystem::current_path() / "x").lexically_normal().string());
}

}  // namespace
}  // namespace zerobyte::ctl
