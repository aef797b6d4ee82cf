/* bench/src/rustgen.c -- the C side of the generated-Rust comparison.
 *
 * For W1 (n = 1000 by default) and W2 it builds the gradient tape
 * (tg_gradient_tape), optimises it (tg_tape_optimize, TG_OPT_BASIC) and
 * writes a Cargo crate with tg_rust_crate: dir/w1_grad and dir/w2_grad,
 * kernel `grad` in each.  dir/data/ receives the evaluation points, the MLP
 * data and the hand-written C gradients, which the Rust runner
 * (bench/rust/runner) checks both Rust gradients against before timing.
 * Rows: generation times, lines of Rust, work_len vs instruction count. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tapegen.h>

#include "bench.h"
#include "systems.h"
#include "tgrec.h"
#include "workloads.h"

static int
write_vec(const char *dir, const char *name, const double *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, "%zu\n", n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.17g\n", v[i]);
    return fclose(f) == 0 ? 0 : -1;
}

static long
count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long lines = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

/* Gradient kernel crate for tape f into dir/crate; rows into bs. */
static int
gen_one(bench_set *bs, const tg_tape *f, const char *dir, const char *crate)
{
    double t0 = bench_wall();
    tg_tape *g = tg_gradient_tape(f, TG_ALL);
    double t_tape = bench_wall() - t0;
    if (!g || tg_tape_status(g) != TG_OK) {
        bench_fail(bs, "tg_gradient_tape failed: %s", g ? tg_tape_error(g) : "out of memory");
        tg_tape_free(g);
        return -1;
    }
    size_t raw = tg_tape_size(g);
    t0 = bench_wall();
    tg_status st = tg_tape_optimize(g, TG_OPT_BASIC);
    double t_opt = bench_wall() - t0;
    if (st != TG_OK) {
        bench_fail(bs, "tg_tape_optimize failed: %s", tg_last_error());
        tg_tape_free(g);
        return -1;
    }
    tg_rust_options ro;
    memset(&ro, 0, sizeof ro);
    ro.crate_name = crate;
    ro.function_name = "grad";
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, crate);
    t0 = bench_wall();
    st = tg_rust_crate(g, &ro, path);
    double t_crate = bench_wall() - t0;
    if (st != TG_OK) {
        bench_fail(bs, "tg_rust_crate failed: %s", tg_last_error());
        tg_tape_free(g);
        return -1;
    }
    char *src = NULL;
    size_t work_len = 0;
    if (tg_rust_source(g, &ro, &src, &work_len) != TG_OK) {
        bench_fail(bs, "tg_rust_source failed: %s", tg_last_error());
        tg_tape_free(g);
        return -1;
    }
    free(src);
    snprintf(path, sizeof path, "%s/%s/src/lib.rs", dir, crate);
    long lines = count_lines(path);
    const char *sys = "Rust generated";
    bench_metric_add(bs, sys, "f instructions", (double)tg_tape_size(f), "instr", "");
    bench_metric_add(bs, sys, "grad tape instructions", (double)raw, "instr", "tg_gradient_tape");
    bench_metric_add(bs, sys, "grad tape instructions (opt BASIC)", (double)tg_tape_size(g), "instr",
                     "the tape translated");
    bench_metric_add(bs, sys, "work_len", (double)work_len, "doubles", "kernel scratch length");
    bench_metric_add(bs, sys, "work_len / instructions", (double)work_len / (double)tg_tape_size(g),
                     "x", "");
    bench_metric_add(bs, sys, "lines of Rust (src/lib.rs)", (double)lines, "lines", "");
    bench_metric_add(bs, sys, "gen: tg_gradient_tape", t_tape, "s", "wall; C side");
    bench_metric_add(bs, sys, "gen: tg_tape_optimize BASIC", t_opt, "s", "wall; C side");
    bench_metric_add(bs, sys, "gen: tg_rust_crate", t_crate, "s", "wall; C side");
    bench_metric_add(bs, sys, "gen: total", t_tape + t_opt + t_crate, "s", "wall; C side");
    tg_tape_free(g);
    return 0;
}

int
run_rust_gen(const char *dir, size_t w1_n, FILE *csv)
{
    char path[4096];
    int failed = 0;
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/data", dir);
    mkdir(path, 0777);

    /* W1 */
    {
        bench_set bs;
        char size[24];
        snprintf(size, sizeof size, "n=%zu", w1_n);
        bench_set_init(&bs, "W1 rosenbrock", size);
        double *x = calloc(w1_n, sizeof *x), *g = calloc(w1_n, sizeof *g);
        tg_tape *f = tgrec_rosenbrock(w1_n, 0);
        if (!x || !g || !f) {
            fprintf(stderr, "rust-gen: out of memory\n");
            return 1;
        }
        w1_eval_point(w1_n, x);
        w1_grad(w1_n, x, g);
        if (gen_one(&bs, f, dir, "w1_grad") == 0 &&
            (write_vec(dir, "w1_x.txt", x, w1_n) || write_vec(dir, "w1_grad.txt", g, w1_n)))
            bench_fail(&bs, "cannot write the W1 data files");
        bench_print(&bs, stdout);
        if (csv)
            bench_write_csv(&bs, csv);
        failed |= bs.failed;
        bench_set_free(&bs);
        tg_tape_free(f);
        free(x);
        free(g);
    }
    /* W2 */
    {
        bench_set bs;
        char size[24];
        snprintf(size, sizeof size, "p=%d", MLP_NP);
        bench_set_init(&bs, "W2 mlp", size);
        static w2_data_t d;
        double theta[MLP_NP], g[MLP_NP];
        w2_theta(theta);
        w2_data(&d.in[0][0], d.t);
        w2_grad(&d, theta, g);
        tg_tape *f = tgrec_mlp(&d, 0);
        if (!f) {
            fprintf(stderr, "rust-gen: out of memory\n");
            return 1;
        }
        if (gen_one(&bs, f, dir, "w2_grad") == 0 &&
            (write_vec(dir, "w2_theta.txt", theta, MLP_NP) ||
             write_vec(dir, "w2_grad.txt", g, MLP_NP) ||
             write_vec(dir, "w2_inputs.txt", &d.in[0][0], MLP_S * MLP_IN) ||
             write_vec(dir, "w2_targets.txt", d.t, MLP_S)))
            bench_fail(&bs, "cannot write the W2 data files");
        bench_print(&bs, stdout);
        if (csv)
            bench_write_csv(&bs, csv);
        failed |= bs.failed;
        bench_set_free(&bs);
        tg_tape_free(f);
    }
    return failed;
}
