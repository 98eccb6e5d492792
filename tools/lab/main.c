/* SPDX-License-Identifier: MIT */
/*
 * main.c — hmap-lab: Go's map and hmap side by side, one experiment per claim people make about Go's map
 * memory, each with a verdict.
 *
 *   hmap-lab [--quick] [--json FILE] [--report FILE]      the whole tour (experiments 1-9)
 *   hmap-lab EXPERIMENT [--n N] [--json FILE] [--report FILE]
 *   hmap-lab --help
 *
 * The tour prints every section, then the summary of all claims, and writes the HTML report (default: the
 * build directory's lab/report.html, or $LAB_OUT/report.html). An experiment alone prints its section
 * and writes report-EXPERIMENT.html. --json writes the figures of every implementation, the tables and the
 * verdicts. --quick runs the tour at each experiment's small size (what the smoke test does).
 *
 * Go's side is the companion program built from tools/lab/go (path compiled in, $LAB_GO overrides); when
 * it is missing the lab says why and shows hmap's columns alone.
 */
#define _GNU_SOURCE

#include "lab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef LAB_GO_BINARY
#define LAB_GO_BINARY ""
#endif
#ifndef LAB_GO_MISSING
#define LAB_GO_MISSING "the Go companion was not built"
#endif
#ifndef LAB_GO_TOOL
#define LAB_GO_TOOL ""
#endif
#ifndef LAB_DEFAULT_OUTPUT_DIR
#define LAB_DEFAULT_OUTPUT_DIR "build/lab"
#endif

/* The experiments in tour order. */
static const lab_experiment *const experiments[] = {
    &lab_grow,    &lab_delete,      &lab_tophash, &lab_values, &lab_iterate,
    &lab_signals, &lab_release_exp, &lab_pool,    &lab_sync,
};
enum { NEXP = sizeof experiments / sizeof experiments[0] };

typedef struct options {
    const lab_experiment *only; /* NULL: the tour */
    uint64_t n;                 /* 0: the experiment's default */
    const char *json, *report;
    bool quick;
} options;

static void usage(FILE *out) {
    fprintf(out, "usage: hmap-lab [--quick] [--json FILE] [--report FILE]\n"
                 "       hmap-lab EXPERIMENT [--n N] [--json FILE] [--report FILE]\n\n"
                 "With no experiment, runs the whole tour and writes the HTML report. Experiments:\n");
    for (size_t i = 0; i < NEXP; i++)
        fprintf(out, "  %-9s %s (--n: %s, default %llu)\n", experiments[i]->name, experiments[i]->help,
                experiments[i]->n_means, (unsigned long long)experiments[i]->default_n);
    fprintf(out,
            "\n"
            "  --n N         size of the experiment (1000, 10k, 1M, 10M)\n"
            "  --json FILE   every figure, table and verdict as JSON\n"
            "  --report FILE the HTML report (default: %s/report.html, or report-EXPERIMENT.html)\n"
            "  --quick       the tour at small sizes (seconds; what the smoke test runs)\n"
            "  --help        this text\n"
            "Environment: LAB_OUT (output directory), LAB_GO (the Go companion program).\n",
            LAB_DEFAULT_OUTPUT_DIR);
}

static void die_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "hmap-lab: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (hmap-lab --help lists the options)\n");
    exit(2);
}

static uint64_t parse_count(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1e6, end++;
    if (end == s || *end || errno || v < 1 || v > 1e9)
        die_usage("bad count '%s': a number from 1 to 1e9, e.g. 1000, 10k, 1M", s);
    return (uint64_t)v;
}

static const lab_experiment *find_experiment(const char *name) {
    for (size_t i = 0; i < NEXP; i++)
        if (!strcmp(experiments[i]->name, name))
            return experiments[i];
    return NULL;
}

static const char *value_of(int argc, char **argv, int *i) {
    if (*i + 1 >= argc)
        die_usage("%s needs a value", argv[*i]);
    return argv[++*i];
}

static options parse_options(int argc, char **argv) {
    options o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--n")) {
            o.n = parse_count(value_of(argc, argv, &i));
        } else if (!strcmp(a, "--json")) {
            o.json = value_of(argc, argv, &i);
        } else if (!strcmp(a, "--report")) {
            o.report = value_of(argc, argv, &i);
        } else if (!strcmp(a, "--quick")) {
            o.quick = true;
        } else if (a[0] == '-') {
            die_usage("unknown option '%s'", a);
        } else if (o.only || i != 1) {
            die_usage("unexpected argument '%s'", a);
        } else if (!(o.only = find_experiment(a))) {
            die_usage("unknown experiment '%s'", a);
        }
    }
    if (o.n && !o.only)
        die_usage("%s: --n belongs to one experiment (the tour uses each one's default, or --quick)", "--n");
    return o;
}

/* ---- Go's side ---- */

static void go_version_line(void *ctx, char *line) {
    lab_ctx *c = ctx;
    if (!strncmp(line, "s version ", 10))
        snprintf(c->go_version, sizeof c->go_version, "%s", line + 10);
}

static void find_go(lab_ctx *c) {
    const char *env = getenv("LAB_GO");
    c->go_binary = env && *env ? env : LAB_GO_BINARY;
    const char *tool = getenv("LAB_GO_TOOL");
    c->go_tool = tool ? tool : LAB_GO_TOOL;
    if (!*c->go_binary) {
        snprintf(c->go_why, sizeof c->go_why, "%s", LAB_GO_MISSING);
        return;
    }
    if (access(c->go_binary, X_OK) != 0) {
        snprintf(c->go_why, sizeof c->go_why, "%s is missing: %s", c->go_binary, LAB_GO_MISSING);
        return;
    }
    char *argv[] = {(char *)c->go_binary, "version", NULL};
    char why[160];
    if (!tc_spawn_lines(argv, NULL, false, go_version_line, c, why, sizeof why) || !*c->go_version) {
        snprintf(c->go_why, sizeof c->go_why, "the Go companion's version failed: %s", why);
        return;
    }
    c->go_ok = true;
}

/* ---- running ---- */

static lab_section *run_experiment(const lab_experiment *e, uint64_t n, const lab_ctx *ctx) {
    lab_section *s = tc_xrealloc(NULL, sizeof *s);
    *s = (lab_section){.exp = e, .n = n};
    uint64_t t0 = tc_now_ns();
    e->run(s, ctx);
    lab_progress_done();
    s->seconds = (double)(tc_now_ns() - t0) / 1e9;
    return s;
}

static const char *output_dir(void) {
    const char *dir = getenv("LAB_OUT");
    if (!dir || !*dir)
        dir = LAB_DEFAULT_OUTPUT_DIR;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        fprintf(stderr, "hmap-lab: cannot create %s: %s\n", dir, strerror(errno));
    return dir;
}

static int write_json(const char *path, const lab_ctx *ctx, lab_section *const sections[], size_t n,
                      double secs) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hmap-lab: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    tc_json j;
    tc_json_start(&j, f);
    tc_json_str(&j, "program", "hmap-lab");
#ifdef LAB_SANITIZED
    tc_json_bool(&j, "sanitized", true); /* RSS figures are the sanitizer's, not the map's */
#else
    tc_json_bool(&j, "sanitized", false);
#endif
    tc_json_bool(&j, "go", ctx->go_ok);
    tc_json_str(&j, "go_version", ctx->go_ok ? ctx->go_version : NULL);
    tc_json_str(&j, "go_missing", ctx->go_ok ? NULL : ctx->go_why);
    tc_json_str(&j, "fresh_map", LAB_FRESH_MAP);
    tc_json_num(&j, "seconds", secs);
    tc_json_object(&j, "experiments");
    for (size_t i = 0; i < n; i++)
        lab_section_json(sections[i], &j, sections[i]->exp->name);
    tc_json_end(&j, '}');
    lab_summary_json(&j, sections, n);
    tc_json_finish(&j);
    return fclose(f) == 0 ? 0 : -1;
}

static void command_line(int argc, char **argv, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && len + 2 < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? " " : "", i ? argv[i] : "hmap-lab");
}

static int child_main(int argc, char **argv) {
    const lab_experiment *e = argc == 4 ? find_experiment(argv[2]) : NULL;
    if (!e || !e->child) {
        fprintf(stderr, "hmap-lab: __child EXPERIMENT N is for the lab itself\n");
        return 2;
    }
    e->child(parse_count(argv[3]), stdout);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "__child"))
        return child_main(argc, argv);
    options o = parse_options(argc, argv);
    lab_progress_enable(isatty(2));
    setvbuf(stdout, NULL, _IOLBF, 0);
    lab_ctx ctx = {.out_dir = output_dir(), .quick = o.quick};
    find_go(&ctx);

    uint64_t t0 = tc_now_ns();
    lab_section *sections[NEXP];
    size_t nsec = 0;
    printf("hmap-lab: Go's map and hmap, measured on this machine\n");
    printf("Go: %s\n", ctx.go_ok ? ctx.go_version : ctx.go_why);
    lab_print_wrapped(stdout, "Ratios: " LAB_FRESH_MAP);
    for (size_t i = 0; i < NEXP; i++) {
        const lab_experiment *e = experiments[i];
        if (o.only && o.only != e)
            continue;
        uint64_t n = o.n ? o.n : o.quick ? e->quick_n : e->default_n;
        sections[nsec] = run_experiment(e, n, &ctx);
        lab_section_print(sections[nsec], stdout);
        nsec++;
    }
    double secs = (double)(tc_now_ns() - t0) / 1e9;
    lab_print_summary(stdout, sections, nsec);

    char cmd[1024], report[4096];
    command_line(argc, argv, cmd, sizeof cmd);
    if (o.report)
        snprintf(report, sizeof report, "%s", o.report);
    else if (o.only)
        snprintf(report, sizeof report, "%s/report-%s.html", ctx.out_dir, o.only->name);
    else
        snprintf(report, sizeof report, "%s/report.html", ctx.out_dir);
    int rc = 0;
    if (lab_write_report(report, &ctx, sections, nsec, cmd, secs) != 0) {
        fprintf(stderr, "hmap-lab: cannot write %s: %s\n", report, strerror(errno));
        rc = 1;
    }
    if (o.json && write_json(o.json, &ctx, sections, nsec, secs) != 0)
        rc = 1;
    printf("\nhmap-lab took %.1f s. Report: %s\n", secs, report);
    if (o.json)
        printf("JSON: %s\n", o.json);
    for (size_t i = 0; i < nsec; i++)
        lab_section_free(sections[i]);
    return rc;
}
