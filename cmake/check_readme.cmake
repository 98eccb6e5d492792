# SPDX-License-Identifier: MIT
# check_readme.cmake — a README code block must be an example file, so that the code people copy from the
# README is the code `make check` compiles and runs. The file's leading one-line comments (license line,
# what the file is) are not part of the block.
#   cmake -DREADME=README.md -DEXAMPLE=examples/quickstart.c -P check_readme.cmake
file(READ ${README} readme)
file(READ ${EXAMPLE} body)
while(body MATCHES "^/\\*[^\n]*\\*/\n")
    string(FIND "${body}" "\n" first_newline)
    math(EXPR body_start "${first_newline} + 1")
    string(SUBSTRING "${body}" ${body_start} -1 body)
endwhile()
string(FIND "${readme}" "```c\n${body}```" found)
if(found EQUAL -1)
    message(FATAL_ERROR "README.md has no ```c block equal to ${EXAMPLE} (after its leading one-line "
                        "comments): copy the file's code into the README's block.")
endif()
message("README.md shows ${EXAMPLE}")
