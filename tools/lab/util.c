/*
 * util.c — measuring, keys, formatting, and running a measurement in a child process.
 *
 * RSS is read from /proc/self/statm (resident pages × page size), the figure the brief asks for and the
 * one `ps` and `top` show. A measurement runs in a forked child and sends its result struct back through a
 * pipe: fork keeps the parent's RSS out of the child's figures (the parent is small when it forks) and
 * gives each implementation a fresh heap.
 */
#define _GNU_SOURCE /* fork, pipe, getpagesize */

#include "lab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LAB_DEFAULT_OUTPUT_DIR
#define LAB_DEFAULT_OUTPUT_DIR "build/lab"
#endif

uint64_t lab_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t lab_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64's finalizer: distinct, well-mixed keys; tools/lab/go/main.go uses the same function so that
 * both maps see the same keys. */
uint64_t lab_key(uint64_t i)
{
    uint64_t z = i + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

bool lab_survives(uint64_t i) { return i % 100 == 0; }

const char *lab_fmt_bytes(uint64_t bytes, char buf[32])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, 32, v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

const char *lab_fmt_count(uint64_t n, char buf[32])
{
    if (n >= 1000000 && n % 100000 == 0)
        snprintf(buf, 32, n % 1000000 ? "%.1fM" : "%.0fM", (double)n / 1e6);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, 32, "%lluk", (unsigned long long)(n / 1000));
    else
        snprintf(buf, 32, "%llu", (unsigned long long)n);
    return buf;
}

const char *lab_phase_name(hmap_phase phase)
{
    switch (phase) {
    case HMAP_STEADY: return "steady";
    case HMAP_GROWING: return "growing";
    case HMAP_SAME_SIZE_GROWING: return "same-size grow";
    case HMAP_SHRINKING: return "shrinking";
    }
    return "?";
}

hmap *lab_new_u64_map(size_t hint, bool no_shrink)
{
    static const hmap_type u64_to_u64 = {.key_size = sizeof(uint64_t), .val_size = sizeof(uint64_t)};
    hmap_options opts = {.no_shrink = no_shrink, .name = no_shrink ? "lab-no-shrink" : "lab"};
    hmap *m = hmap_new_opts(&u64_to_u64, hint, &opts);
    if (!m) {
        fprintf(stderr, "hmap-lab: hmap_new_opts: %s\n", strerror(errno));
        exit(1);
    }
    return m;
}

void lab_put(hmap *m, uint64_t i)
{
    uint64_t key = lab_key(i);
    int rc = hmap_put(m, &key, &i);
    if (rc < 0) {
        fprintf(stderr, "hmap-lab: hmap_put: %s\n", strerror(-rc));
        exit(1);
    }
}

void lab_del(hmap *m, uint64_t i)
{
    uint64_t key = lab_key(i);
    if (!hmap_del(m, &key)) {
        fprintf(stderr, "hmap-lab: hmap_del: key %llu missing (library bug?)\n", (unsigned long long)i);
        exit(1);
    }
}

/* ---- latency histogram ---- */

/* Bin of ns: 4 per power of two, from the position of the top bit and the two bits after it. */
static unsigned hist_bin(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned top = 63u - (unsigned)__builtin_clzll(ns);
    return top * 4 + (unsigned)((ns >> (top - 2)) & 3);
}

/* The largest ns that falls in bin b. */
static uint64_t hist_bin_upper(unsigned b)
{
    if (b < 4)
        return b;
    unsigned top = b / 4, frac = b % 4;
    return ((uint64_t)(4 + frac + 1) << (top - 2)) - 1;
}

void lab_hist_add(lab_hist *h, uint64_t ns)
{
    h->bins[hist_bin(ns)]++;
    h->total++;
    h->sum += ns;
    if (ns > h->max)
        h->max = ns;
}

uint64_t lab_hist_quantile(const lab_hist *h, double q)
{
    uint64_t rank = (uint64_t)(q * (double)h->total), seen = 0;
    for (unsigned b = 0; b < 256; b++) {
        seen += h->bins[b];
        if (seen > rank)
            return hist_bin_upper(b) < h->max ? hist_bin_upper(b) : h->max;
    }
    return h->max;
}

void lab_noise_floor(lab_hist *h, uint64_t count, uint64_t spin_ns)
{
    for (uint64_t i = 0; i < count; i++) {
        uint64_t t0 = lab_now_ns(), t;
        do
            t = lab_now_ns();
        while (t - t0 < spin_ns);
        lab_hist_add(h, t - t0);
    }
}

/* ---- running a measurement in a child ---- */

static bool write_all(int fd, const void *buf, size_t size)
{
    const char *p = buf;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= (size_t)n;
    }
    return true;
}

static size_t read_all(int fd, void *buf, size_t size)
{
    char *p = buf;
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, p + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

bool lab_run_in_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t out_size)
{
    int fds[2];
    fflush(stdout); /* else the child would print the parent's buffered output again */
    if (pipe(fds) != 0) {
        perror("hmap-lab: pipe");
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("hmap-lab: fork");
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        fn(arg, out);
        fflush(stdout);
        _exit(write_all(fds[1], out, out_size) ? 0 : 1);
    }
    close(fds[1]);
    size_t got = read_all(fds[0], out, out_size);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != out_size || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "hmap-lab: measurement child failed (status %d, %zu of %zu bytes)\n", status, got,
                out_size);
        return false;
    }
    return true;
}

const char *lab_output_dir(void)
{
    const char *dir = getenv("LAB_OUT");
    if (!dir || !*dir)
        dir = LAB_DEFAULT_OUTPUT_DIR;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        fprintf(stderr, "hmap-lab: cannot create %s: %s\n", dir, strerror(errno));
    return dir;
}
