# check_readme.cmake — the README's quickstart must be examples/quickstart.c (minus its first comment line),
# so that the code people copy from the README is the code `make check` compiles and runs.
#   cmake -DREADME=README.md -DEXAMPLE=examples/quickstart.c -P check_readme.cmake
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${example}" "\n" first_newline)
math(EXPR body_start "${first_newline} + 1")
string(SUBSTRING "${example}" ${body_start} -1 body)
string(FIND "${readme}" "```c\n${body}```" found)
if(found EQUAL -1)
    message(FATAL_ERROR "README.md's quickstart block differs from ${EXAMPLE} (after its first line): "
                        "copy the file's code into the README's ```c block.")
endif()
message("README quickstart matches ${EXAMPLE}")
