# Read by ctest after the discovered tests (TEST_INCLUDE_FILES). These integration tests wait on the
# wall clock (fire times, a restart across a schedule's slot), repeat one operation a hundred times,
# or kill and restart the daemon dozens of times; they run in the default build, and under the
# sanitizers they add minutes (up to 12 for one) without reaching code the other tests leave out
# (rotation, password changes and recovery at start run sanitized in the Secrets and Jobs tests).
# The asan test preset excludes the label "not-sanitized".
foreach(name
    Schedule.MissedRunsWhileStoppedRunOnceAfterRestart
    Schedule.ARunDueWhileThePreviousRunsIsSkippedAndRecorded
    Secrets.RotationResealsAHundredRepositoriesAndReplacesTheKeyFile
    Secrets.RotationKilledAtAnyMomentLeavesEveryRepositoryReadable
    Secrets.ChangePasswordKilledAtAnyMomentAlwaysLeavesTheRevealedPasswordWorking
    # Uploads at a limited rate and waits repository_retry_seconds on the wall clock.
    RemoteRepositories.AServerStoppedDuringABackupFailsTheJobWithTheCauseAndTheNextOneSucceeds)
  set_tests_properties(${name} PROPERTIES LABELS "integration;not-sanitized")
endforeach()
