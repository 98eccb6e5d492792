/* SPDX-License-Identifier: MIT */
/*
 * pprof_util.h — what the diag tests share: running `go tool pprof` on a profile and reading its -top table.
 *
 * The tests check hmap's profiles with the real reader, the one Go programmers use. `go` comes from Debian's
 * golang-go (scripts/deps installs it); when it is absent the tests that need it are skipped with a message.
 * go writes a build cache and pprof may write under $HOME, so both point into a scratch directory.
 */
#ifndef HMAP_TESTS_PPROF_UTIL_H
#define HMAP_TESTS_PPROF_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A scratch directory for this process, created once: profiles, GOCACHE and HOME live there. */
static inline const char *scratch_dir(void) {
    static char dir[256];
    if (dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/hmap-diag-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

/* Removes the scratch directory (go's cache included). */
static inline void scratch_remove(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_dir());
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch_dir());
}

/* True when `go` is on PATH; points GOCACHE and HOME at the scratch directory. */
static inline bool go_available(void) {
    if (system("command -v go >/dev/null 2>&1") != 0)
        return false;
    char path[512];
    snprintf(path, sizeof path, "%s/gocache", scratch_dir());
    setenv("GOCACHE", path, 1);
    setenv("HOME", scratch_dir(), 1);
    setenv("PPROF_TMPDIR", scratch_dir(), 1);
    unsetenv("PPROF_BINARY_PATH");
    return true;
}

/*
 * Runs `go tool pprof <args> <binary> <profile>` and returns its stdout+stderr (malloc'd), or NULL.
 * pprof symbolizes from the binary, so "/proc/self/exe" is resolved here: in pprof's process it would
 * name pprof itself.
 */
static inline char *pprof_run(const char *args, const char *binary, const char *profile) {
    char self[1024];
    if (strcmp(binary, "/proc/self/exe") == 0) {
        ssize_t n = readlink(binary, self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        binary = self;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "go tool pprof %s '%s' '%s' 2>&1", args, binary, profile);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t n;
    while (out != NULL && (n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *grown = realloc(out, cap * 2);
            if (grown == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = grown;
            cap *= 2;
        }
    }
    int status = pclose(p);
    if (out != NULL)
        out[len] = '\0';
    if (status != 0 && out != NULL) {
        fprintf(stderr, "go tool pprof failed (%d):\n%s\n", status, out);
        free(out);
        return NULL;
    }
    return out;
}

/* The -top table of one sample index, every node, exact byte/count values. */
static inline char *pprof_top(const char *binary, const char *profile, const char *sample_index) {
    char args[256];
    snprintf(args, sizeof args,
             "-top -nodefraction=0 -edgefraction=0 -nodecount=1000 -unit=B -sample_index=%s", sample_index);
    return pprof_run(args, binary, profile);
}

/* Parses a -top value such as "104857600B", "123" or "0". */
static inline int64_t top_value(const char *field) { return (int64_t)strtoll(field, NULL, 10); }

/*
 * The cumulative value of `function` in a -top table ("flat flat% sum% cum cum% name" rows), or -1 when
 * no row names it. A row matches when its name is `function` or starts with `function.` (a compiler clone
 * such as build_big_map.constprop.0).
 */
static inline int64_t top_cum(const char *top, const char *function) {
    size_t flen = strlen(function);
    for (const char *line = top; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char row[1024];
        if (len < sizeof row) {
            memcpy(row, line, len);
            row[len] = '\0';
            char flat[64], flatp[64], sum[64], cum[64], cump[64], name[512];
            if (sscanf(row, "%63s %63s %63s %63s %63s %511s", flat, flatp, sum, cum, cump, name) == 6 &&
                strncmp(name, function, flen) == 0 && (name[flen] == '\0' || name[flen] == '.'))
                return top_value(cum);
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

#endif /* HMAP_TESTS_PPROF_UTIL_H */
