# run_and_match.cmake — run a program and require BOTH a zero exit status and output matching a regex.
# (ctest's PASS_REGULAR_EXPRESSION alone ignores the exit status, so a sanitizer report at exit would pass.)
#   cmake -DCMD=<program;args...> -DEXPECT=<regex> -P run_and_match.cmake
if(NOT DEFINED CMD OR NOT DEFINED EXPECT)
    message(FATAL_ERROR "run_and_match.cmake: -DCMD=... and -DEXPECT=... are required")
endif()
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "exit status ${rc}: ${CMD}")
endif()
if(NOT out MATCHES "${EXPECT}")
    message(FATAL_ERROR "output does not match the expected pattern:\n${EXPECT}")
endif()
