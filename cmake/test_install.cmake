# test_install.cmake — the packaging tests (ctest install_find_package, install_pkgconfig).
#
# Run with cmake -P. Installs the already-built tree BUILD_DIR into a scratch prefix under WORK_DIR, then
# builds cmake/consumer/consumer.c against that prefix the way a user would:
#   KIND=find_package  a CMake project doing find_package(hmap CONFIG) + target_link_libraries(hmap::hmap)
#   KIND=pkgconfig     C_COMPILER consumer.c $(pkg-config --cflags --libs --static hmap)
# and runs it; the consumer prints "consumer: ok". EXTRA_FLAGS (the sanitizer flags of an instrumented
# build) are passed to the consumer's compile and link, since an instrumented libhmap needs its runtime.
foreach(var KIND BUILD_DIR WORK_DIR CONSUMER_DIR C_COMPILER)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "test_install.cmake: -D${var}=... is required")
    endif()
endforeach()

function(run_step what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
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
set(ENV{LD_LIBRARY_PATH} "${lib_dir}:$ENV{LD_LIBRARY_PATH}") # for a shared libhmap

set(exe ${WORK_DIR}/consumer)
if(KIND STREQUAL "find_package")
    run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build
        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER}
        "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
    run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
    set(exe ${WORK_DIR}/build/consumer)
elseif(KIND STREQUAL "pkgconfig")
    find_program(PKG_CONFIG pkg-config REQUIRED)
    set(ENV{PKG_CONFIG_PATH} ${pc_dir})
    run_step("pkg-config" ${PKG_CONFIG} --cflags --libs --static hmap)
    string(STRIP "${step_output}" pc_flags)
    message(STATUS "pkg-config --cflags --libs --static hmap: ${pc_flags}")
    separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
    separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")
    run_step("compile consumer" ${C_COMPILER} -std=c11 ${extra} ${CONSUMER_DIR}/consumer.c -o ${exe} ${pc_flags})
else()
    message(FATAL_ERROR "unknown KIND ${KIND}")
endif()

run_step("run consumer" ${exe} ${WORK_DIR}/heap.pb.gz)
message("${step_output}")
