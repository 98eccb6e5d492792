# SPDX-License-Identifier: MIT
# doxygen-filter.sed — how Doxygen reads the public headers (its INPUT_FILTER; the files are unchanged).
#
# The headers are commented in plain C, /* ... */, which Doxygen skips. This turns each such comment into
# the Doxygen comment it already is in intent: the file's opening comment documents the file, a comment on
# its own line documents the declaration below it, a comment after code documents that code. Comments
# that already are Doxygen comments (/**, /**<) and license lines are left alone. Line numbers are kept.

# The license line is not documentation.
/^\/\* SPDX-License-Identifier/b

# The file's opening comment: "/*" alone on the first or second line. Its title line "name.h — what"
# loses the file name, which Doxygen prints before it anyway.
1,2s#^/\*$#/** @file#
2,3s#^ \* [a-z_]+\.h — # * #

# A one-line label inside a struct ("/* Beyond Go's hmap: */") heads the fields below it and
# documents none of them.
/^[[:space:]]+\/\* [^*]*: \*\/$/b

# "typedef struct x { /* what x is */": the comment documents the struct, so it goes before it.
s#^(typedef struct [A-Za-z_0-9]+ \{)[[:space:]]+/\*[[:space:]](.*[^[:space:]])[[:space:]]*\*/$#/** \2 */ \1#

# A comment after code on the same line (a struct field, a function's return rule): "x; /* ..." -> "/**<".
s#^([[:space:]]*[^[:space:]/*#].*[^[:space:]])[[:space:]]+/\*([[:space:]])#\1 /**<\2#

# A comment that opens its own line documents what follows it.
s#^([[:space:]]*)/\*([[:space:]]|$)#\1/**\2#

# An '@' inside a comment is text (the resize trace's "@S.SSSSSSs"), not a Doxygen command.
s#@([A-Z])#\\@\1#g
