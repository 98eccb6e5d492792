# SPDX-License-Identifier: MIT
# expect_compile_errors.cmake — a test that code does NOT compile (ctest typed_wrong_types).
#   cmake -DC_COMPILER=cc -DSOURCE=file.c -DINCLUDE_DIR=include [-DFLAGS="..."] -P expect_compile_errors.cmake
# SOURCE holds cases `#ifdef MISUSE_<name>`, each with the comment /* MISUSE_<name> */ on the line that
# must be rejected. The file must first compile as it is (-fsyntax-only, with FLAGS); then for each case,
# compiling with -DMISUSE_<name> must fail with an error reported at SOURCE:<that line>, so that the test
# fails both when a misuse compiles and when the file fails for another reason.
cmake_policy(VERSION 3.20) # script mode: IN_LIST and the other modern if() operators
foreach(var C_COMPILER SOURCE INCLUDE_DIR)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "expect_compile_errors.cmake: -D${var}=... is required")
    endif()
endforeach()
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
set(compile ${C_COMPILER} ${flags} -I${INCLUDE_DIR} -fsyntax-only ${SOURCE})

execute_process(COMMAND ${compile} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} without a MISUSE_ case must compile, and does not:\n${out}${err}")
endif()

file(READ ${SOURCE} text)
string(REGEX MATCHALL "/\\* MISUSE_[A-Za-z0-9_]+ \\*/" markers "${text}")
set(cases 0)
foreach(marker IN LISTS markers)
    # The marker's line number: one more than the newlines before it.
    string(FIND "${text}" "${marker}" offset)
    string(SUBSTRING "${text}" 0 ${offset} before)
    string(REGEX MATCHALL "\n" newlines "${before}")
    list(LENGTH newlines line_no)
    math(EXPR line_no "${line_no} + 1")
    string(REGEX MATCH "MISUSE_[A-Za-z0-9_]+" case "${marker}")
    math(EXPR cases "${cases} + 1")
    execute_process(COMMAND ${compile} -D${case} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    get_filename_component(name ${SOURCE} NAME)
    if(rc EQUAL 0)
        message(FATAL_ERROR "${case} compiled, and must not:\n${out}${err}")
    endif()
    if(NOT "${out}${err}" MATCHES "${name}:${line_no}:[0-9]+: error")
        message(FATAL_ERROR "${case} failed, but not with an error on line ${line_no}:\n${out}${err}")
    endif()
    string(REGEX MATCH "${name}:${line_no}:[0-9]+: error[^\n]*" diagnostic "${out}${err}")
    message("${case}: rejected: ${diagnostic}")
endforeach()
if(cases LESS 1)
    message(FATAL_ERROR "no MISUSE_ case found in ${SOURCE}")
endif()
message("${cases} misuses rejected")
