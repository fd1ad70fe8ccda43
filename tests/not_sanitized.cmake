# Read by ctest after the discovered tests (TEST_INCLUDE_FILES). Labels and costs of a few integration tests.
#
# These integration tests wait on the
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

# Long tests start first. ctest orders tests by their COST (until it has measured them itself, as on a fresh
# clone), and one of these started last leaves the other core idle for minutes at the end of the run. Seconds
# measured in the default build.
foreach(entry
    Schedule.MissedRunsWhileStoppedRunOnceAfterRestart=130
    Secrets.ChangePasswordKilledAtAnyMomentAlwaysLeavesTheRevealedPasswordWorking=110
    Secrets.RotationKilledAtAnyMomentLeavesEveryRepositoryReadable=105
    Schedule.ARunDueWhileThePreviousRunsIsSkippedAndRecorded=60
    Secrets.RotationResealsAHundredRepositoriesAndReplacesTheKeyFile=60
    Secrets.RepositoryPasswordsAppearInNoFileLogReplyOrChildProcess=40
    Schedule.RetentionForgetsOnlyTheSchedulesOwnSnapshotsOfThisHost=30
    RemoteRepositories.AServerStoppedDuringABackupFailsTheJobWithTheCauseAndTheNextOneSucceeds=27
    Secrets.TamperedCiphertextFailsAtUseNamingTheRecordAndSparesTheOthers=25
    DbusApi.EveryMethodWorksAndFailsWithTheDaemonsErrorNames=20)
  string(REPLACE "=" ";" pair "${entry}")
  list(GET pair 0 name)
  list(GET pair 1 cost)
  set_tests_properties(${name} PROPERTIES COST ${cost})
endforeach()
