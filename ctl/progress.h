// Following a job to its end: the live progress line, the final summary and the exit status.
#pragma once

#include "ctl/context.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace zerobyte::ctl {

// The one updating line shown on a terminal, at most `width` columns:
// "[=====>      ]  45.3%  1.2 GiB / 2.5 GiB  120/560 files  12.3 MiB/s  ETA 1m 05s  /path".
// Less important parts (current file, then the bar) give way on narrow terminals.
std::string progressLine(const nlohmann::json& job, size_t width);
// The line printed when a job has ended, e.g. "Job 12 (backup home → main) succeeded in
// 4.2s: snapshot 5c62b13c, files 6 new / 0 changed / 0 unmodified, 28.9 MiB added."
std::string jobSummaryLine(const nlohmann::json& job);
// succeeded 0, warning 3, failed 1, cancelled and interrupted 8 (0 while not finished).
int jobExitCode(const nlohmann::json& job);
bool isFinishedState(const std::string& state);

struct FollowResult {
  nlohmann::json job;          // the last state seen
  bool stoppedByUser = false;  // Ctrl-C: the job keeps running in the daemon
};

// Follows a job with FollowJob until it ends or the user presses Ctrl-C (which only stops
// following). With showProgress: --json prints every reply as one line; a terminal gets
// one updating line; anything else one line per state change. Without it nothing is
// printed while the job runs.
FollowResult followJob(Context& ctx, int64_t id, bool showProgress);

// followJob with progress, then the summary, the unreadable paths and, after Ctrl-C, how
// to cancel the job. Returns the exit status.
int followAndReport(Context& ctx, int64_t id);

// For commands that start a job (backup, restore): "Started job N (backup home → main)."
// then either the job followed to its end or how to follow it. Returns the exit status.
int reportStartedJob(Context& ctx, const nlohmann::json& reply, bool follow);

// After Ctrl-C: tells on stderr that the job keeps running and how to cancel it; returns 8.
int reportStoppedFollowing(int64_t id);

// For short jobs a command waits for: follows the started job quietly to its end, then prints
// `successText(job)` on success (or the job's summary line on stderr) and returns the exit code.
int awaitJob(Context& ctx, const nlohmann::json& startedReply, const std::function<std::string(const nlohmann::json& job)>& successText);

}  // namespace zerobyte::ctl
