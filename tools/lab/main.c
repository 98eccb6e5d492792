/*
 * main.c — hmap-lab: the seed article's experiments, with measured numbers, as Markdown on stdout.
 *
 *   hmap-lab [--n N]... [--state-n N] [--only state|release|churn]
 *
 * --n (repeatable, or a comma list; else $LAB_N, else 1M) sets the entries of section 2's experiment;
 * each N gets its table and plot. --state-n sets section 1's map size (default 1M). Sections:
 *   1 state    the article's state table while growing, shrinking, compacting   (state_table.c)
 *   2 release  fill, delete 99%, delete all: hmap vs no_shrink vs Go's map      (release.c)
 *   3          its plot, an SVG file in the build directory's lab/              (svg.c)
 *   4 churn    resizes and evacuation work under churn                          (churn.c)
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r */

#include "lab.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_NS = 8 };

typedef struct options {
    uint64_t ns[MAX_NS];
    size_t nns;
    uint64_t state_n;
    const char *only;
} options;

static void usage_to(FILE *out, int status)
{
    fprintf(out, "usage: hmap-lab [--n N[,N...]]... [--state-n N] [--only state|release|churn]\n"
                 "       N may be written 1000000, 1M or 10M; $LAB_N is used when --n is absent\n");
    exit(status);
}
static void usage(void) { usage_to(stderr, 2); }

/* "10M", "500k", "1000000" */
static uint64_t parse_count(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1e6, end++;
    if (end == s || *end != '\0' || v < 100 || v > 1e9) {
        fprintf(stderr, "hmap-lab: bad count '%s' (100 to 1e9)\n", s);
        usage();
    }
    return (uint64_t)v;
}

/* Adds each count of a list separated by commas or spaces. */
static void add_counts(options *o, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (o->nns == MAX_NS)
            usage();
        o->ns[o->nns++] = parse_count(tok);
    }
}

static options parse_options(int argc, char **argv)
{
    options o = {.state_n = 1000000};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc)
            add_counts(&o, argv[++i]);
        else if (!strcmp(argv[i], "--state-n") && i + 1 < argc)
            o.state_n = parse_count(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            o.only = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            usage_to(stdout, 0);
        else {
            fprintf(stderr, "hmap-lab: unknown option '%s' (or its value is missing)\n", argv[i]);
            usage();
        }
    }
    if (o.nns == 0 && getenv("LAB_N") && *getenv("LAB_N"))
        add_counts(&o, getenv("LAB_N"));
    if (o.nns == 0)
        o.ns[o.nns++] = 1000000;
    return o;
}

static bool wanted(const options *o, const char *section) { return !o->only || !strcmp(o->only, section); }

int main(int argc, char **argv)
{
    options o = parse_options(argc, argv);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    uint64_t start = lab_now_ns();
    printf("# hmap-lab: the seed article's experiments, measured\n");
    if (wanted(&o, "state"))
        lab_state_table(o.state_n);
    if (wanted(&o, "release"))
        for (size_t i = 0; i < o.nns; i++)
            lab_release(o.ns[i]);
    if (wanted(&o, "churn"))
        lab_churn();
    printf("\n(hmap-lab took %.1f s)\n", (double)(lab_now_ns() - start) / 1e9);
    return 0;
}
