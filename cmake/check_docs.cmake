# SPDX-License-Identifier: MIT
# check_docs.cmake — the API reference covers the public API (ctest docs_reference, when doxygen is found).
#   cmake -DBUILD_DIR=<build> -DDOCS_DIR=<build>/docs -DHEADERS="a.h;b.h" -DALLOW_UNDOCUMENTED="f;g"
#         -P check_docs.cmake
# Builds the hmap_docs target (Doxygen fails it on any warning), then reads Doxygen's XML: every function
# declared at the start of a line of a public header, and every HMAP_DEFINE* macro, must be in the
# reference, with a description unless it is listed in ALLOW_UNDOCUMENTED; the man pages and the HTML
# index must exist.
cmake_policy(VERSION 3.20) # script mode: IN_LIST and the other modern if() operators
foreach(var BUILD_DIR DOCS_DIR HEADERS)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check_docs.cmake: -D${var}=... is required")
    endif()
endforeach()

execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target hmap_docs
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "building hmap_docs failed (${rc}):\n${out}\n${err}")
endif()
foreach(f html/index.html man/man3/hmap.h.3 man/man3/hmap_typed.h.3 man/man3/hmap_version.h.3 man/man3/hmap_pool.h.3)
    if(NOT EXISTS ${DOCS_DIR}/${f})
        message(FATAL_ERROR "the reference lacks ${DOCS_DIR}/${f}")
    endif()
endforeach()

# The documented members, from every XML file of the headers: name -> has a description.
file(GLOB xml_files ${DOCS_DIR}/xml/*_8h.xml)
set(xml "")
foreach(f IN LISTS xml_files)
    file(READ ${f} text)
    string(APPEND xml "${text}")
endforeach()
string(REPLACE ";" "," xml "${xml}") # a list separator would split the members below
string(REPLACE "</memberdef>" "</memberdef>;" members "${xml}")

set(expected)
foreach(h IN LISTS HEADERS)
    file(STRINGS ${h} lines REGEX "^[a-z].*[ *](hmap_[a-z0-9_]+)\\(")
    foreach(line IN LISTS lines)
        string(REGEX MATCH "(hmap_[a-z0-9_]+)\\(" _ "${line}")
        # A trailing underscore marks what a header needs but callers do not use (EXCLUDE_SYMBOLS *_).
        set(name ${CMAKE_MATCH_1})
        if(NOT name MATCHES "_$")
            list(APPEND expected ${name})
        endif()
    endforeach()
endforeach()
list(APPEND expected HMAP_DEFINE HMAP_DEFINE_SET HMAP_DEFINE_STR HMAP_VERSION HMAP_VERSION_STRING)
list(LENGTH expected n_expected)
if(n_expected LESS 25)
    message(FATAL_ERROR "found only ${n_expected} public declarations in ${HEADERS}: ${expected}")
endif()

set(missing)
set(undocumented)
foreach(name IN LISTS expected)
    set(found OFF)
    foreach(m IN LISTS members)
        if(m MATCHES "<name>${name}</name>")
            set(found ON)
            if(NOT m MATCHES "<briefdescription>[ \n]*<para>" AND NOT m MATCHES "<detaileddescription>[ \n]*<para>")
                list(APPEND undocumented ${name})
            endif()
            break()
        endif()
    endforeach()
    if(NOT found)
        list(APPEND missing ${name})
    endif()
endforeach()
if(missing)
    message(FATAL_ERROR "not in the reference: ${missing}")
endif()
set(unexpected)
foreach(name IN LISTS undocumented)
    if(NOT name IN_LIST ALLOW_UNDOCUMENTED)
        list(APPEND unexpected ${name})
    endif()
endforeach()
if(unexpected)
    message(FATAL_ERROR "in the reference without a description (comment them in the header): ${unexpected}")
endif()
message("reference: ${n_expected} public declarations, all present; without a description: ${undocumented}")
