/* SPDX-License-Identifier: MIT */
/*
 * hmap_version.h — the version of the hmap headers, and hmap_version() for the library's.
 *
 * The three numbers below are the project's one record of its version: CMakeLists.txt reads them from
 * this file to set project(VERSION), and from that the shared library's soname, the CMake package's
 * version and the pkg-config file's are made. To release, change them here and add a CHANGELOG.md entry.
 *
 * Two versions can differ in one program: the macros are those of the headers it was compiled against,
 * hmap_version() is that of the library it runs with (a shared library may have been upgraded since).
 * Within one soname, a newer library serves older programs; see "Versions and ABI" in the README.
 */
#ifndef HMAP_VERSION_H
#define HMAP_VERSION_H

#define HMAP_VERSION_MAJOR 0
#define HMAP_VERSION_MINOR 1
#define HMAP_VERSION_PATCH 0

/** The headers' version as one integer, major * 10000 + minor * 100 + patch (0.1.0 is 100, 1.2.3 is
 * 10203), so that `#if HMAP_VERSION >= 10200` tests for a feature. Minor and patch stay below 100. */
#define HMAP_VERSION (HMAP_VERSION_MAJOR * 10000 + HMAP_VERSION_MINOR * 100 + HMAP_VERSION_PATCH)

#define HMAP_VERSION_STR_(x) #x
#define HMAP_VERSION_XSTR_(x) HMAP_VERSION_STR_(x)
/** The headers' version as a string, "major.minor.patch". */
#define HMAP_VERSION_STRING                                                                                  \
    HMAP_VERSION_XSTR_(HMAP_VERSION_MAJOR)                                                                   \
    "." HMAP_VERSION_XSTR_(HMAP_VERSION_MINOR) "." HMAP_VERSION_XSTR_(HMAP_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the library the program runs with, in HMAP_VERSION's form. A program built against
 * headers of version H may check at start that hmap_version() / 10000 == H / 10000 (same major version,
 * same ABI) and hmap_version() >= H (no older than the headers it was compiled with). */
int hmap_version(void);

#ifdef __cplusplus
}
#endif
#endif /* HMAP_VERSION_H */
