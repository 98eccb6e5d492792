# SPDX-License-Identifier: MIT
# test_standalone.cmake — the build of the library on its own (ctest library_alone, subproject).
#
# Run with cmake -P. Both configure from scratch under WORK_DIR with CMAKE_CXX_COMPILER set to a path that
# does not exist, so that any enable_language(CXX) or project(... CXX) fails the test:
#   KIND=library_alone  hmap as the top-level project with every HMAP_BUILD_* option OFF: configure, build,
#                       and then C++ must not have been enabled and only the two libraries built
#   KIND=subproject     cmake/subproject/, which does add_subdirectory(hmap) and links a consumer: the
#                       defaults must build only the static library (no tests, tools, examples, no shared
#                       variant), without -Werror, and the consumer must run
cmake_policy(VERSION 3.20) # script mode: IN_LIST and the other modern if() operators
foreach(var KIND SOURCE_DIR WORK_DIR C_COMPILER)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "test_standalone.cmake: -D${var}=... is required")
    endif()
endforeach()

function(run_step what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common_args -B ${build} -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${WORK_DIR}/no-such-c++)
if(GENERATOR)
    list(APPEND common_args -G ${GENERATOR})
endif()

if(KIND STREQUAL "library_alone")
    run_step("configure the library alone" ${CMAKE_COMMAND} -S ${SOURCE_DIR} ${common_args}
        -DHMAP_BUILD_TESTS=OFF -DHMAP_BUILD_BENCH=OFF -DHMAP_BUILD_LAB=OFF -DHMAP_BUILD_EXAMPLES=OFF)
elseif(KIND STREQUAL "subproject")
    run_step("configure the subproject consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/cmake/subproject
        ${common_args} -DHMAP_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
else()
    message(FATAL_ERROR "unknown KIND ${KIND}")
endif()
run_step("build" ${CMAKE_COMMAND} --build ${build} --parallel 2)

# C++ was never enabled: CMake writes CMakeCXXCompiler.cmake when it enables the language.
file(GLOB_RECURSE cxx_files ${build}/CMakeFiles/CMakeCXXCompiler.cmake)
if(cxx_files)
    message(FATAL_ERROR "C++ was enabled: ${cxx_files}")
endif()

# What was built: the libraries and the executables (files without a dot that are executable).
file(GLOB_RECURSE built LIST_DIRECTORIES false ${build}/*)
set(products)
foreach(f IN LISTS built)
    get_filename_component(name ${f} NAME)
    if(f MATCHES "/CMakeFiles/")
        continue()
    elseif(name MATCHES "^lib.*[.](a|so)")
        list(APPEND products ${name})
    elseif(NOT name MATCHES "[.]" AND NOT name STREQUAL "Makefile")
        execute_process(COMMAND test -x ${f} RESULT_VARIABLE not_executable)
        if(not_executable EQUAL 0)
            list(APPEND products ${name})
        endif()
    endif()
endforeach()
list(SORT products)
message("built: ${products}")

if(KIND STREQUAL "library_alone")
    set(expected libhmap.a libhmap.so)
else()
    set(expected consumer libhmap.a)
endif()
foreach(name IN LISTS products)
    if(name MATCHES "^libhmap\\.so")
        set(name libhmap.so)
    endif()
    if(NOT name IN_LIST expected)
        message(FATAL_ERROR "built ${name}, which this build should not have: built ${products}")
    endif()
endforeach()
foreach(name IN LISTS expected)
    if(NOT "${products}" MATCHES "(^|;)${name}")
        message(FATAL_ERROR "did not build ${name}: built ${products}")
    endif()
endforeach()

if(KIND STREQUAL "subproject")
    file(READ ${build}/compile_commands.json commands)
    if(commands MATCHES "-Werror")
        message(FATAL_ERROR "a subproject build compiles with -Werror:\n${commands}")
    endif()
    run_step("run consumer" ${build}/consumer)
    message("${step_output}")
endif()
