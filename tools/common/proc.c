/* SPDX-License-Identifier: MIT */
/*
 * proc.c — a measurement in another process, read back line by line.
 *
 * Memory figures are only meaningful per process: a fork's RSS starts at the parent's few MB and then is
 * the measured map's alone, and its heap has never seen another map's frees. So every measurement runs
 * in a forked child (or in another program, such as a Go companion) that prints text lines; the parent
 * only parses. A child that crashes or exits non-zero is reported with its status, never silently used.
 */
#define _GNU_SOURCE /* fork, pipe, execve, environ */

#include "tools_common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Feeds every line of fd to on_line, then closes fd. */
static void read_lines(int fd, tc_line_fn on_line, void *ctx) {
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        on_line(ctx, line);
    }
    free(line);
    fclose(in);
}

static bool wait_child(pid_t pid, const char *what, char *why, size_t why_size) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFSIGNALED(status))
        snprintf(why, why_size, "%s was killed by signal %d (%s)", what, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, why_size, "%s exited with status %d", what, WEXITSTATUS(status));
    return false;
}

bool tc_fork_lines(void (*body)(void *arg, FILE *out), void *arg, tc_line_fn on_line, void *ctx, char *why,
                   size_t why_size) {
    int fds[2];
    fflush(NULL);
    if (pipe(fds) != 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        FILE *out = fdopen(fds[1], "w");
        if (!out)
            _exit(120);
        body(arg, out);
        fflush(stdout);
        _exit(fclose(out) == 0 ? 0 : 121);
    }
    close(fds[1]);
    read_lines(fds[0], on_line, ctx);
    return wait_child(pid, "the measuring process", why, why_size);
}

/* environ plus `extra`, an entry of extra replacing one of environ with the same NAME=. */
static char **merged_environment(char *const extra[]) {
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (extra && extra[k])
        k++;
    char **env = tc_xrealloc(NULL, (n + k + 1) * sizeof *env);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t e = 0; e < k && !replaced; e++) {
            const char *eq = strchr(extra[e], '=');
            size_t len = eq ? (size_t)(eq - extra[e]) + 1 : strlen(extra[e]);
            replaced = strncmp(environ[i], extra[e], len) == 0;
        }
        if (!replaced)
            env[out++] = environ[i];
    }
    for (size_t e = 0; e < k; e++)
        env[out++] = extra[e];
    env[out] = NULL;
    return env;
}

bool tc_spawn_lines(char *const argv[], char *const env[], bool merge_stderr, tc_line_fn on_line, void *ctx,
                    char *why, size_t why_size) {
    int fds[2];
    fflush(NULL);
    if (pipe(fds) != 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return false;
    }
    char **full_env = merged_environment(env);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        free(full_env);
        return false;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fds[1], 1);
        if (merge_stderr)
            dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execve(argv[0], argv, full_env);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(full_env);
    close(fds[1]);
    read_lines(fds[0], on_line, ctx);
    char what[256];
    snprintf(what, sizeof what, "%s", argv[0]);
    return wait_child(pid, what, why, why_size);
}
