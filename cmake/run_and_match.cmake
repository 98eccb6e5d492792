# SPDX-License-Identifier: MIT
# run_and_match.cmake — run a program and require BOTH its exit status and output matching a regex.
# (ctest's PASS_REGULAR_EXPRESSION alone ignores the exit status, so a sanitizer report at exit would pass.)
#   cmake -DCMD=<program;args...> -DEXPECT=<regex for stdout> [-DEXPECT_STATUS=<n>, default 0]
#         [-DEXPECT_STDERR=<regex for stderr>] -P run_and_match.cmake
if(NOT DEFINED CMD OR NOT DEFINED EXPECT)
    message(FATAL_ERROR "run_and_match.cmake: -DCMD=... and -DEXPECT=... are required")
endif()
if(NOT DEFINED EXPECT_STATUS)
    set(EXPECT_STATUS 0)
endif()
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc STREQUAL "${EXPECT_STATUS}")
    message(FATAL_ERROR "exit status ${rc}, expected ${EXPECT_STATUS}: ${CMD}")
endif()
if(NOT out MATCHES "${EXPECT}")
    message(FATAL_ERROR "output does not match the expected pattern:\n${EXPECT}")
endif()
if(DEFINED EXPECT_STDERR AND NOT err MATCHES "${EXPECT_STDERR}")
    message(FATAL_ERROR "standard error does not match the expected pattern:\n${EXPECT_STDERR}")
endif()
