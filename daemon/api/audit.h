// Audit records of secret handling: a log line and a structured journal entry for each decision.
#pragma once

#include "daemon/api/authorizer.h"
#include "daemon/api/request.h"

#include <string_view>

namespace zerobyte::api {

// `outcome` says what happened in a few words ("revealed", "denied", "failed: SecretUnavailable").
// Logged with log::notice and sent to the journal with the fields MESSAGE, PRIORITY,
// ZEROBYTE_AUDIT=1, ZEROBYTE_ACTION (the polkit action id), ZEROBYTE_UID, ZEROBYTE_PID,
// ZEROBYTE_REPOSITORY (when there is one) and ZEROBYTE_OUTCOME. Without a reachable journal only
// the log line remains. Never carries a secret.
void audit(const Caller& caller, Action action, std::string_view repository, std::string_view outcome);

}  // namespace zerobyte::api
