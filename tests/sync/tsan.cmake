# SPDX-License-Identifier: MIT
# tsan.cmake — configure a ThreadSanitizer build of the listed tests, build them, run each (ctest -P).
#
# In: SOURCE_DIR, BUILD_DIR, C_COMPILER, TESTS (a list of test targets). Only those targets are built, so
# the bench, the lab and the other tests cost nothing here. TSAN_OPTIONS makes the first report fail.
foreach(var SOURCE_DIR BUILD_DIR C_COMPILER TESTS)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "tsan.cmake: ${var} is not set")
    endif()
endforeach()

execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BUILD_DIR} -DCMAKE_BUILD_TYPE=RelWithDebInfo
            -DCMAKE_C_COMPILER=${C_COMPILER} -DHMAP_TSAN=ON
    RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tsan.cmake: configuring ${BUILD_DIR} failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} -j2 --target ${TESTS} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tsan.cmake: building ${TESTS} failed (${rc})")
endif()

set(ENV{TSAN_OPTIONS} "halt_on_error=1:abort_on_error=0:second_deadlock_stack=1")
foreach(t ${TESTS})
    execute_process(COMMAND ${BUILD_DIR}/tests/sync/${t} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "tsan.cmake: ${t} failed under ThreadSanitizer (${rc})")
    endif()
    message(STATUS "tsan.cmake: ${t} passed under ThreadSanitizer")
endforeach()
