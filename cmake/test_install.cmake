# SPDX-License-Identifier: MIT
# test_install.cmake — the install packaging tests (ctest install_contents, install_find_package,
# install_pkgconfig).
#
# Run with cmake -P. Installs the already-built tree BUILD_DIR into a scratch prefix under WORK_DIR, then:
#   KIND=contents      checks the installed files: both libraries, the three headers, LICENSE, the package
#                      files; that libhmap.so's soname is libhmap.so.SOVERSION, that it links libm and zlib
#                      itself, and that it exports exactly the functions the public HEADERS declare
#   KIND=find_package  builds cmake/consumer/ as a CMake project: find_package(hmap <major.minor> CONFIG),
#                      `consumer` with hmap::hmap (shared), `consumer_static` with hmap::hmap_static; runs
#                      both; then requires that find_package(hmap <major+1>.0) is refused
#   KIND=pkgconfig     C_COMPILER consumer.c $(pkg-config --cflags --libs hmap), without --static: the
#                      program must link and load libhmap.so
# A consumer prints "consumer: ok". EXTRA_FLAGS (the sanitizer flags of an instrumented build) are passed
# to the consumers' compile and link, since an instrumented libhmap needs its runtime.
cmake_policy(VERSION 3.20) # script mode: IN_LIST and the other modern if() operators
foreach(var KIND BUILD_DIR WORK_DIR CONSUMER_DIR C_COMPILER READELF NM VERSION SOVERSION HEADERS)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "test_install.cmake: -D${var}=... is required")
    endif()
endforeach()

# run_step(<what> <command...>): runs it, fails the test with its output unless it exits 0.
function(run_step what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
endfunction()

# needed_libs(<binary> <out var>): the DT_NEEDED entries of an ELF file, as a list.
function(needed_libs binary out)
    run_step("readelf -d ${binary}" ${READELF} -d ${binary})
    string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[([^]\n]+)\\]" lines "${step_output}")
    set(libs)
    foreach(line IN LISTS lines)
        string(REGEX REPLACE ".*\\[([^]]+)\\].*" "\\1" lib "${line}")
        list(APPEND libs ${lib})
    endforeach()
    set(${out} "${libs}" PARENT_SCOPE)
endfunction()

function(require_needed binary lib)
    needed_libs(${binary} libs)
    if(NOT "${lib}" IN_LIST libs)
        message(FATAL_ERROR "${binary} does not need ${lib}; its DT_NEEDED: ${libs}")
    endif()
endfunction()

function(require_not_needed binary pattern)
    needed_libs(${binary} libs)
    foreach(lib IN LISTS libs)
        if(lib MATCHES "${pattern}")
            message(FATAL_ERROR "${binary} needs ${lib}, which it should not; its DT_NEEDED: ${libs}")
        endif()
    endforeach()
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(config_args)
if(CONFIG)
    set(config_args --config ${CONFIG})
endif()
run_step("install into ${prefix}" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})

# Where did the library go? (lib or lib/<multiarch>, depending on GNUInstallDirs)
file(GLOB_RECURSE pc_files ${prefix}/*/hmap.pc)
list(LENGTH pc_files n)
if(NOT n EQUAL 1)
    message(FATAL_ERROR "expected exactly one installed hmap.pc under ${prefix}, found: ${pc_files}")
endif()
get_filename_component(pc_dir ${pc_files} DIRECTORY)
get_filename_component(lib_dir ${pc_dir} DIRECTORY)
set(soname libhmap.so.${SOVERSION})
set(ENV{LD_LIBRARY_PATH} "${lib_dir}:$ENV{LD_LIBRARY_PATH}")

string(REGEX MATCH "^[0-9]+" major "${VERSION}")
string(REGEX MATCH "^[0-9]+\\.[0-9]+" major_minor "${VERSION}")
separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")

if(KIND STREQUAL "contents")
    foreach(f include/hmap.h include/hmap_typed.h include/hmap_version.h include/hmap_pool.h share/doc/hmap/LICENSE
              share/doc/hmap/CHANGELOG.md)
        if(NOT EXISTS ${prefix}/${f})
            message(FATAL_ERROR "not installed: ${prefix}/${f}")
        endif()
    endforeach()
    foreach(f libhmap.a libhmap.so ${soname} libhmap.so.${VERSION} cmake/hmap/hmapConfig.cmake
              cmake/hmap/hmapConfigVersion.cmake cmake/hmap/hmapTargets.cmake)
        if(NOT EXISTS ${lib_dir}/${f})
            message(FATAL_ERROR "not installed: ${lib_dir}/${f}")
        endif()
    endforeach()
    run_step("readelf -d" ${READELF} -d ${lib_dir}/libhmap.so.${VERSION})
    if(NOT step_output MATCHES "\\(SONAME\\)[^\n]*\\[${soname}\\]")
        message(FATAL_ERROR "libhmap.so's soname is not ${soname}:\n${step_output}")
    endif()
    require_needed(${lib_dir}/libhmap.so.${VERSION} libm.so.6)
    require_needed(${lib_dir}/libhmap.so.${VERSION} libz.so.1)
    # Exported: exactly the functions the public headers declare (at the start of a line).
    set(declared)
    foreach(h IN LISTS HEADERS)
        file(STRINGS ${h} lines REGEX "^[a-z].*[ *](hmap_[a-z0-9_]+)\\(")
        foreach(line IN LISTS lines)
            string(REGEX MATCH "(hmap_[a-z0-9_]+)\\(" _ "${line}")
            list(APPEND declared ${CMAKE_MATCH_1})
        endforeach()
    endforeach()
    run_step("nm -D" ${NM} -D --defined-only ${lib_dir}/libhmap.so.${VERSION})
    string(REGEX MATCHALL "[^\n]+" symbols "${step_output}")
    set(exported)
    foreach(line IN LISTS symbols)
        # "<address> <type> <name>": code (T) and data (D, B, R) symbols.
        if(line MATCHES " [TDBR] ([^ ]+)$")
            list(APPEND exported ${CMAKE_MATCH_1})
            if(NOT CMAKE_MATCH_1 IN_LIST declared)
                message(FATAL_ERROR "libhmap.so exports ${CMAKE_MATCH_1}, which no public header declares")
            endif()
        endif()
    endforeach()
    foreach(name IN LISTS declared)
        if(NOT name IN_LIST exported)
            message(FATAL_ERROR "libhmap.so does not export ${name}; it exports: ${exported}")
        endif()
    endforeach()
    list(LENGTH exported n_exported)
    message("installed files, soname ${soname}, and the ${n_exported} exported symbols are the declared API: ok")
    return()
elseif(KIND STREQUAL "find_package")
    set(generator_args)
    if(GENERATOR)
        set(generator_args -G ${GENERATOR})
    endif()
    run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build ${generator_args}
        -DHMAP_REQUIRED_VERSION=${major_minor}
        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER}
        "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
    run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
    require_needed(${WORK_DIR}/build/consumer ${soname})
    require_not_needed(${WORK_DIR}/build/consumer_static "^libhmap")
    run_step("run consumer_static" ${WORK_DIR}/build/consumer_static ${WORK_DIR}/heap-static.pb.gz)
    message("consumer_static: ${step_output}")
    set(exe ${WORK_DIR}/build/consumer)

    # A requirement of the next major version must be refused by the version file.
    math(EXPR next_major "${major} + 1")
    execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build-next ${generator_args}
            -DHMAP_REQUIRED_VERSION=${next_major}.0 -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(rc EQUAL 0 OR NOT "${out}${err}" MATCHES "version: ${VERSION}")
        message(FATAL_ERROR "find_package(hmap ${next_major}.0) was not refused for ${VERSION} (${rc}):\n${out}\n${err}")
    endif()
    message("find_package(hmap ${next_major}.0) refused, as it should be")
elseif(KIND STREQUAL "pkgconfig")
    find_program(PKG_CONFIG pkg-config REQUIRED)
    set(ENV{PKG_CONFIG_PATH} ${pc_dir})
    run_step("pkg-config" ${PKG_CONFIG} --cflags --libs hmap)
    string(STRIP "${step_output}" pc_flags)
    message(STATUS "pkg-config --cflags --libs hmap: ${pc_flags}")
    run_step("pkg-config --static" ${PKG_CONFIG} --libs --static hmap)
    foreach(lib -lm -lz -lpthread)
        if(NOT " ${step_output} " MATCHES " ${lib}[ \n]")
            message(FATAL_ERROR "pkg-config --libs --static hmap lacks ${lib}: ${step_output}")
        endif()
    endforeach()
    separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
    set(exe ${WORK_DIR}/consumer)
    run_step("compile consumer" ${C_COMPILER} -std=c11 -Wall -Wextra -Werror ${extra}
        ${CONSUMER_DIR}/consumer.c -o ${exe} ${pc_flags})
    require_needed(${exe} ${soname})
else()
    message(FATAL_ERROR "unknown KIND ${KIND}")
endif()

run_step("run consumer" ${exe} ${WORK_DIR}/heap.pb.gz)
message("${step_output}")
