# SPDX-License-Identifier: MIT
# check_format.cmake — every C and C++ file of the project follows the committed .clang-format.
#
#   cmake -DSOURCE_DIR=<repo> -DCLANG_FORMAT=<clang-format> -P check_format.cmake
#
# Fails with the list of files that clang-format would change (fix them with `clang-format -i FILE`).
foreach(var SOURCE_DIR CLANG_FORMAT)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check_format.cmake: -D${var}=... is required")
    endif()
endforeach()
set(files)
foreach(dir src include tests bench tools examples)
    file(GLOB_RECURSE found ${SOURCE_DIR}/${dir}/*.c ${SOURCE_DIR}/${dir}/*.h ${SOURCE_DIR}/${dir}/*.cc)
    list(APPEND files ${found})
endforeach()
list(LENGTH files n)
if(n LESS 50)
    message(FATAL_ERROR "check_format.cmake: only ${n} C files found under ${SOURCE_DIR}")
endif()
set(unformatted)
foreach(f IN LISTS files)
    execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${f}
        RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT rc EQUAL 0)
        list(APPEND unformatted ${f})
    endif()
endforeach()
if(unformatted)
    string(REPLACE ";" "\n  " list "${unformatted}")
    message(FATAL_ERROR "not formatted as .clang-format says (clang-format -i FILE):\n  ${list}")
endif()
message(STATUS "${n} files follow .clang-format")
