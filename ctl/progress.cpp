// Following jobs: progress line, summary, Ctrl-C handling.
#include "ctl/progress.h"

#include "common/errors.h"
#include "ctl/output.h"
#include "ctl/record_format.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <vector>

namespace zerobyte::ctl {
namespace {

constexpr size_t kBarCells = 20;
constexpr size_t kMinimumFileColumns = 12;

// Ctrl-C while following must end the blocking read at once: the client retries reads
// interrupted by signals, so the handler shuts the socket down instead.
volatile std::sig_atomic_t g_interrupted = 0;
std::atomic<int> g_followedFd{-1};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

extern "C" void onInterrupt(int) {
  g_interrupted = 1;
  int fd = g_followedFd.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

class InterruptGuard {
 public:
  explicit InterruptGuard(int fd) {
    g_interrupted = 0;
    g_followedFd.store(fd);
    struct sigaction action {};
    action.sa_handler = onInterrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &m_previous);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &m_previous, nullptr);
    g_followedFd.store(-1);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  bool interrupted() const noexcept { return g_interrupted != 0; }

 private:
  struct sigaction m_previous {};
};

size_t terminalWidth() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// Cuts text to `width` columns at a code point boundary, marking the cut with "…".
std::string fitToWidth(const std::string& text, size_t width) {
  if (displayWidth(text) <= width) return text;
  if (width == 0) return "";
  std::string out;
  size_t columns = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bool starts = (static_cast<unsigned char>(text[i]) & 0xc0) != 0x80;
    if (starts && ++columns > width - 1) break;
    out += text[i];
  }
  return out + "…";
}

// Keeps the end of a path, which says more than its start: "…/photos/2024/img_0042.jpg".
std::string fitPathToWidth(const std::string& path, size_t width) {
  if (displayWidth(path) <= width) return path;
  if (width == 0) return "";
  size_t keep = width - 1;
  size_t start = path.size();
  size_t columns = 0;
  while (start > 0 && columns < keep) {
    --start;
    if ((static_cast<unsigned char>(path[start]) & 0xc0) != 0x80) ++columns;
  }
  return "…" + path.substr(start);
}

std::string joinParts(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) {
    if (part.empty()) continue;
    if (!out.empty()) out += "  ";
    out += part;
  }
  return out;
}

std::string bar(double percent) {
  auto filled = static_cast<size_t>(std::floor(percent / 100.0 * kBarCells));
  filled = std::min(filled, kBarCells);
  std::string out = "[" + std::string(filled, '=');
  if (filled < kBarCells) out += ">" + std::string(kBarCells - filled - 1, ' ');
  return out + "]";
}

std::string backupOutcome(const nlohmann::json& job) {
  const auto& summary = objectField(job, "summary");
  if (summary.empty()) return "";
  std::string out;
  std::string snapshot = shortSnapshotId(field(summary, "snapshot_id"));
  if (!snapshot.empty()) out += "snapshot " + snapshot + ", ";
  out += "files " + std::to_string(intField(summary, "files_new")) + " new / " +
         std::to_string(intField(summary, "files_changed")) + " changed / " +
         std::to_string(intField(summary, "files_unmodified")) + " unmodified, " +
         formatBytes(countField(summary, "data_added")) + " added";
  return out;
}

}  // namespace

bool isFinishedState(const std::string& state) {
  return state == "succeeded" || state == "warning" || state == "failed" || state == "cancelled" ||
         state == "interrupted" || state == "skipped";
}

int jobExitCode(const nlohmann::json& job) {
  const std::string state = field(job, "state");
  if (state == "warning") return 3;
  // The error's own exit status (Unreachable 11, WrongPassword 9, ...) when the daemon named it; else 1.
  if (state == "failed") {
    const auto code = errorFromName(field(job, "error"));
    return code ? errorInfo(*code).exitCode : 1;
  }
  if (state == "cancelled" || state == "interrupted" || state == "skipped") return 8;
  return 0;
}

std::string progressLine(const nlohmann::json& job, size_t width) {
  const std::string state = field(job, "state");
  if (state == "queued") return fitToWidth("Queued: waiting for the repository or a free slot…", width);
  if (state != "running") return fitToWidth(jobStateText(job), width);

  const auto& progress = objectField(job, "progress");
  const double percent = std::clamp(numberField(progress, "percent"), 0.0, 100.0);
  const uint64_t bytesDone = countField(progress, "bytes_done");
  const uint64_t bytesTotal = countField(progress, "bytes_total");
  const uint64_t filesDone = countField(progress, "files_done");
  const uint64_t filesTotal = countField(progress, "files_total");
  const double rate = numberField(progress, "rate");
  const auto remaining = optionalIntField(progress, "seconds_remaining");
  const int64_t elapsed = intField(progress, "seconds_elapsed");

  const bool known = percent > 0 || bytesDone > 0 || bytesTotal > 0 || filesDone > 0 || filesTotal > 0;
  if (!known) {
    const std::string elapsedText = elapsed > 0 ? formatDuration(static_cast<double>(elapsed)) + " elapsed" : "";
    return fitToWidth(joinParts({"Running", elapsedText}), width);
  }

  char percentText[16];
  std::snprintf(percentText, sizeof percentText, "%5.1f%%", percent);
  std::string bytes;
  if (bytesTotal > 0)
    bytes = formatBytes(bytesDone) + " / " + formatBytes(bytesTotal);
  else if (bytesDone > 0)
    bytes = formatBytes(bytesDone);
  std::string files;
  if (filesTotal > 0)
    files = std::to_string(filesDone) + "/" + std::to_string(filesTotal) + " files";
  else if (filesDone > 0)
    files = countOf(filesDone, "file");
  std::string timing;
  if (remaining)
    timing = "ETA " + formatDuration(static_cast<double>(*remaining));
  else if (elapsed > 0)
    timing = formatDuration(static_cast<double>(elapsed)) + " elapsed";

  std::string withBar = joinParts({bar(percent), percentText, bytes, files, rate > 0 ? formatRate(rate) : "", timing});
  std::string line = displayWidth(withBar) <= width
                         ? withBar
                         : joinParts({percentText, bytes, files, rate > 0 ? formatRate(rate) : "", timing});
  if (displayWidth(line) > width) return fitToWidth(line, width);

  const auto& currentFiles = arrayField(progress, "current_files");
  const size_t room = width - displayWidth(line);
  if (!currentFiles.empty() && currentFiles.front().is_string() && room >= 2 + kMinimumFileColumns)
    line += "  " + fitPathToWidth(sanitize(currentFiles.front().get<std::string>()), room - 2);
  return line;
}

std::string jobSummaryLine(const nlohmann::json& job) {
  const std::string state = field(job, "state", "unknown");
  std::string head = "Job " + std::to_string(intField(job, "id")) + " (" + describeJob(job) + ")";
  const auto duration = jobDuration(job, static_cast<double>(std::time(nullptr)));
  const std::string took = duration ? formatDuration(*duration) : "";
  const std::string outcome = backupOutcome(job);
  const std::string message = field(job, "message");
  const size_t warnings = arrayField(job, "warnings").size();

  std::string line;
  if (state == "succeeded") {
    line = head + " succeeded" + (took.empty() ? "" : " in " + took);
    if (!outcome.empty()) line += ": " + outcome;
    // A password change says what became of the old key.
    else if (field(job, "operation") == "change-password" && !message.empty()) line += ": " + message;
  } else if (state == "warning") {
    line = head + " finished with warnings" + (took.empty() ? "" : " in " + took);
    if (!outcome.empty()) line += ": " + outcome;
    if (warnings > 0)
      line += (outcome.empty() ? ": " : "; ") + countOf(warnings, "path") + " could not be read";
    else if (!message.empty())
      line += (outcome.empty() ? ": " : "; ") + message;
  } else if (state == "failed") {
    line = head + " failed" + (took.empty() ? "" : " after " + took) + (message.empty() ? "" : ": " + message);
  } else if (state == "cancelled") {
    line = head + " was cancelled" + (took.empty() ? "" : " after " + took);
  } else if (state == "interrupted") {
    line = head + " was interrupted: zerobyted stopped while it ran";
  } else {
    line = head + " is " + state;
  }
  if (line.back() != '.' && line.back() != '!' && line.back() != '?') line += ".";
  return sanitize(line);
}

FollowResult followJob(Context& ctx, int64_t id, bool showProgress) {
  FollowResult result;
  varlink::Client& client = ctx.client();  // connect first: the handler needs the socket
  InterruptGuard guard(client.fd());
  const bool asJson = showProgress && ctx.json;
  const bool liveLine = showProgress && !ctx.json && ctx.stdoutIsTerminal();
  const bool stateLines = showProgress && !ctx.json && !liveLine;
  std::string lastState;
  bool lineShown = false;
  auto clearLine = [&] {
    if (lineShown) std::cout << "\r\033[K" << std::flush;
    lineShown = false;
  };

  try {
    ctx.callMore("FollowJob", {{"id", id}}, [&](const nlohmann::json& reply) {
      if (guard.interrupted()) return false;
      result.job = objectField(reply, "job");
      const std::string state = field(result.job, "state");
      if (asJson) {
        ctx.printJsonLine(reply);
      } else if (liveLine && !isFinishedState(state)) {
        std::cout << "\r\033[K" << progressLine(result.job, terminalWidth() - 1) << std::flush;
        lineShown = true;
      } else if (stateLines && state != lastState && !isFinishedState(state)) {
        std::cout << sanitize("Job " + std::to_string(id) + " (" + describeJob(result.job) + "): " + state) << std::endl;
      }
      lastState = state;
      return true;
    });
  } catch (const Error&) {
    clearLine();
    if (!guard.interrupted()) throw;
  }
  clearLine();
  result.stoppedByUser = guard.interrupted() && !isFinishedState(field(result.job, "state"));
  return result;
}

int reportStoppedFollowing(int64_t id) {
  const std::string n = std::to_string(id);
  std::cerr << "Stopped following job " << n << "; it keeps running in zerobyted.\n"
            << "Follow it again with: zerobytectl job follow " << n << "\n"
            << "Cancel it with:       zerobytectl job cancel " << n << std::endl;
  return 8;
}

int followAndReport(Context& ctx, int64_t id) {
  FollowResult result = followJob(ctx, id, true);
  if (result.stoppedByUser) return reportStoppedFollowing(id);
  const std::string state = field(result.job, "state");
  if (!isFinishedState(state))
    throw Error(ErrorCode::Unavailable, "zerobyted stopped sending updates for job " + std::to_string(id) +
                                            " while it was " + (state.empty() ? "in an unknown state" : state) +
                                            "; see its state with: zerobytectl job show " + std::to_string(id));
  if (ctx.json) return jobExitCode(result.job);

  const std::string summary = jobSummaryLine(result.job);
  if (state == "succeeded" || state == "warning")
    std::cout << summary << "\n";
  else
    std::cerr << summary << "\n";
  const auto& warnings = arrayField(result.job, "warnings");
  if (!warnings.empty()) {
    std::cout << "Could not read " << countOf(warnings.size(), "path") << ":\n";
    for (const auto& path : warnings)
      if (path.is_string()) std::cout << "  " << sanitize(path.get<std::string>()) << "\n";
  }
  std::cout << std::flush;
  return jobExitCode(result.job);
}

int reportStartedJob(Context& ctx, const nlohmann::json& reply, bool follow) {
  const auto& job = objectField(reply, "job");
  const int64_t id = intField(job, "id");
  if (ctx.json) {
    if (!follow) {
      ctx.printJson(reply);
      return 0;
    }
    ctx.printJsonLine(reply);
    return followAndReport(ctx, id);
  }
  std::cout << sanitize("Started job " + std::to_string(id) + " (" + describeJob(job) + ").") << std::endl;
  if (follow) return followAndReport(ctx, id);
  std::cout << "Follow it with: zerobytectl job follow " << id << "\n";
  return 0;
}

int awaitJob(Context& ctx, const nlohmann::json& startedReply, const std::function<std::string(const nlohmann::json& job)>& successText) {
  const int64_t id = intField(objectField(startedReply, "job"), "id");
  FollowResult result = followJob(ctx, id, false);
  if (result.stoppedByUser) return reportStoppedFollowing(id);
  if (ctx.json) {
    ctx.printJson({{"job", result.job}});
    return jobExitCode(result.job);
  }
  const std::string state = field(result.job, "state");
  if (state == "succeeded" || state == "warning")
    std::cout << sanitize(successText(result.job)) << "\n";
  else
    std::cerr << jobSummaryLine(result.job) << "\n";
  return jobExitCode(result.job);
}

}  // namespace zerobyte::ctl
