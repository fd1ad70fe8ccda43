# Read by ctest after the discovered tests (TEST_INCLUDE_FILES). These integration tests wait on the
# wall clock (fire times, a restart across a schedule's slot) or repeat one operation a hundred times;
# they run in the default build, and under the sanitizers they add minutes without reaching code the
# other tests leave out. The asan test preset excludes the label "not-sanitized".
foreach(name
    Schedule.MissedRunsWhileStoppedRunOnceAfterRestart
    Schedule.ARunDueWhileThePreviousRunsIsSkippedAndRecorded
    Secrets.RotationResealsAHundredRepositoriesAndReplacesTheKeyFile)
  set_tests_properties(${name} PROPERTIES LABELS "integration;not-sanitized")
endforeach()
