#include "lab.h"
static void run(lab_section *s, const lab_ctx *ctx) { (void)s; (void)ctx; }
const lab_experiment lab_release_exp = {.name = "release", .number = 7, .title = "todo", .help = "todo", .default_n = 1000, .quick_n = 100, .n_means = "entries", .run = run};
