/* SPDX-License-Identifier: MIT */
/*
 * report.c — the closing summary of every claim, and the report: one self-contained HTML page.
 *
 * The page holds everything the terminal shows and what did not fit there: the machine and the versions
 * at the top, the definition of "fresh map", the verdict table, then each section with its tables and its
 * plots as inline SVG. No script, no font, no image file, no network: it can be mailed or archived as is.
 */
#define _GNU_SOURCE

#include "lab.h"

#include <gnu/libc-version.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef LAB_HMAP_VERSION
#define LAB_HMAP_VERSION "?"
#endif

/* ---- the summary ---- */

static tc_table *summary_table(lab_section *const sections[], size_t n) {
    static const char *const head[] = {"#", "claim", "verdict", "why"};
    tc_table *t = tc_table_new("", 4, head, "llll");
    tc_table_wrap(t, 1);
    tc_table_wrap(t, 3);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < sections[i]->nclaims; c++) {
            const lab_claim *cl = &sections[i]->claims[c];
            char num[48];
            snprintf(num, sizeof num, "%d.%zu", sections[i]->exp->number, c + 1);
            tc_table_addf(t, num, cl->text, lab_verdict_name(cl->verdict), cl->reason);
        }
    return t;
}

void lab_print_summary(FILE *out, lab_section *const sections[], size_t n) {
    size_t counts[4] = {0}, total = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < sections[i]->nclaims; c++, total++)
            counts[sections[i]->claims[c].verdict]++;
    fprintf(out, "\nSummary: %zu claims — %zu hold, %zu do not hold, %zu partly, %zu not measured\n", total,
            counts[LAB_HOLDS], counts[LAB_DOES_NOT_HOLD], counts[LAB_PARTLY], counts[LAB_UNTESTED]);
    fputs("════════\n", out);
    tc_table *t = summary_table(sections, n);
    tc_table_print(t, out, LAB_WIDTH);
    tc_table_free(t);
}

void lab_summary_json(tc_json *j, lab_section *const sections[], size_t n) {
    tc_json_array(j, "summary");
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < sections[i]->nclaims; c++) {
            tc_json_object(j, NULL);
            tc_json_str(j, "experiment", sections[i]->exp->name);
            tc_json_str(j, "claim", sections[i]->claims[c].text);
            tc_json_str(j, "verdict", lab_verdict_name(sections[i]->claims[c].verdict));
            tc_json_end(j, '}');
        }
    tc_json_end(j, ']');
}

/* ---- the machine ---- */

static void machine_rows(tc_table *t, const lab_ctx *ctx, const char *command, double seconds) {
    char cpu[256], b[64], mem[64];
    struct utsname u;
    uname(&u);
    tc_cpu_model(cpu, sizeof cpu);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    snprintf(b, sizeof b, "%ld online", sysconf(_SC_NPROCESSORS_ONLN));
    tc_table_addf(t, "CPU", cpu);
    tc_table_addf(t, "cores", b);
    tc_table_addf(t, "memory", tc_fmt_bytes((uint64_t)pages * (uint64_t)page, mem));
    char kernel[400];
    snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    tc_table_addf(t, "kernel", kernel);
    char libc[128];
    snprintf(libc, sizeof libc, "glibc %s", gnu_get_libc_version());
    tc_table_addf(t, "C library", libc);
    tc_table_addf(t, "compiler", "cc " __VERSION__);
    tc_table_addf(t, "hmap", LAB_HMAP_VERSION);
    tc_table_addf(t, "Go", ctx->go_ok ? ctx->go_version : ctx->go_why);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", localtime(&now));
    tc_table_addf(t, "run", when);
    char took[64];
    snprintf(took, sizeof took, "%.1f s: %s", seconds, command);
    tc_table_addf(t, "command", took);
}

static const char *const css =
    "body{font-family:sans-serif;max-width:1060px;margin:24px auto;padding:0 "
    "16px;color:#222;line-height:1.45}"
    "h1{font-size:24px}h2{font-size:19px;margin-top:40px;border-bottom:2px solid #ccd;padding-bottom:4px}"
    "table{border-collapse:collapse;margin:12px 0;font-size:13px}"
    "caption{text-align:left;font-weight:bold;padding:4px 0}"
    "th,td{border:1px solid #ccd;padding:3px 7px;vertical-align:top}th{background:#eef0f6}"
    "td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}"
    "td.v{font-weight:bold;white-space:nowrap}.holds{background:#dff3df}.nothold{background:#f8d9d6}"
    ".partly{background:#fcefd0}.untested{background:#e8e8e8}"
    "figure{margin:16px 0}figcaption{font-size:13px;color:#444}svg{max-width:100%;height:auto}"
    "pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}.meta,.cap{color:#555;font-size:13px}";

int lab_write_report(const char *path, const lab_ctx *ctx, lab_section *const sections[], size_t n,
                     const char *command, double seconds) {
    tc_buf o = {0};
    tc_buf_printf(&o,
                  "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
                  "<title>hmap-lab report</title>\n<style>%s</style>\n</head>\n<body>\n",
                  css);
    tc_buf_put(
        &o, "<h1>hmap-lab: Go's map and hmap, measured</h1>\n"
            "<p>Each section runs one experiment on Go's real map (read through its runtime header) and on "
            "hmap, each implementation in its own process, and gives the claims it tests a verdict.</p>\n");
    static const char *const head[] = {"", ""};
    tc_table *m = tc_table_new("Machine and versions", 2, head, "ll");
    machine_rows(m, ctx, command, seconds);
    tc_table_html(m, &o);
    tc_table_free(m);
    tc_buf_put(&o, "<p><b>Ratios.</b> ");
    tc_buf_html(&o, LAB_FRESH_MAP);
    tc_buf_put(&o, " RSS is /proc/self/statm's resident size of the measuring process.</p>\n");
    tc_table *sum = summary_table(sections, n);
    tc_buf_put(&o, "<h2>Verdicts</h2>\n");
    tc_table_html(sum, &o);
    tc_table_free(sum);
    for (size_t i = 0; i < n; i++)
        lab_section_html(sections[i], &o);
    tc_buf_put(&o, "</body>\n</html>\n");
    FILE *f = fopen(path, "w");
    if (!f) {
        tc_buf_free(&o);
        return -1;
    }
    fputs(o.p, f);
    tc_buf_free(&o);
    return fclose(f) == 0 ? 0 : -1;
}
