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

static void
gen_failed(bench_set *bs, const char *sys, int optional, const char *what, const char *msg)
{
    if (!optional) {
        bench_fail(bs, "%s failed: %s", what, msg);
        return;
    }
    char note[160];
    snprintf(note, sizeof note, "%s failed: %s", what, msg);
    bench_metric_add(bs, sys, "crate: not available", 0.0, "", note);
    printf("%s %s: %s crate not available: %s\n", bs->workload, bs->size, sys, note);
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

/* Gradient kernel crate for tape f into dir/crate; rows into bs (system
 * sys).  optional: a failure is reported as "not available" (a metric row
 * and a line) rather than failing the set -- the loop variants, whose
 * emission may not have landed. */
static int
gen_crate(bench_set *bs, const tg_tape *f, const char *dir, const char *crate, const char *sys,
          int optional)
{
    double t0 = bench_wall();
    tg_tape *g = tg_gradient_tape(f, TG_ALL);
    double t_tape = bench_wall() - t0;
    if (!g || tg_tape_status(g) != TG_OK) {
        gen_failed(bs, sys, optional, "tg_gradient_tape", g ? tg_tape_error(g) : "out of memory");
        tg_tape_free(g);
        return -1;
    }
    size_t raw = tg_tape_size(g);
    t0 = bench_wall();
    tg_status st = tg_tape_optimize(g, TG_OPT_BASIC);
    double t_opt = bench_wall() - t0;
    if (st != TG_OK) {
        gen_failed(bs, sys, optional, "tg_tape_optimize", tg_last_error());
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
        gen_failed(bs, sys, optional, "tg_rust_crate", tg_last_error());
        tg_tape_free(g);
        return -1;
    }
    char *src = NULL;
    size_t work_len = 0;
    if (tg_rust_source(g, &ro, &src, &work_len) != TG_OK) {
        gen_failed(bs, sys, optional, "tg_rust_source", tg_last_error());
        tg_tape_free(g);
        return -1;
    }
    free(src);
    snprintf(path, sizeof path, "%s/%s/src/lib.rs", dir, crate);
    long lines = count_lines(path);
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

/* Loops kept in the tape (issue 11): the W1-as-a-map gradient crate
 * (dir/w1m_grad, n = w1_n; its data are W1's), the W3-as-a-scan gradient
 * crates at 10^3 and 10^5 steps (dir/w3s_grad, dir/w3s5_grad), and the W3
 * data: the point, the step counts and the hand-written C gradients, which
 * the runner's hand-written Rust adjoint is checked against in any case. */
static int
rust_gen_loops(const char *dir, size_t w1_n, FILE *csv)
{
    int failed = 0;
    {
        bench_set bs;
        char size[24];
        snprintf(size, sizeof size, "n=%zu", w1_n);
        bench_set_init(&bs, "W1 rosenbrock", size);
        tg_tape *f = tgrec_rosenbrock_map(w1_n, 0);
        if (f && tg_tape_status(f) == TG_OK)
            gen_crate(&bs, f, dir, "w1m_grad", "Rust generated loop", 1);
        else
            gen_failed(&bs, "Rust generated loop", 1, "tgrec_rosenbrock_map",
                       f ? tg_tape_error(f) : "out of memory");
        bench_print(&bs, stdout);
        if (csv)
            bench_write_csv(&bs, csv);
        failed |= bs.failed;
        bench_set_free(&bs);
        tg_tape_free(f);
    }
    static const size_t steps[2] = { 1000, 100000 };
    static const char *const crates[2] = { "w3s_grad", "w3s5_grad" };
    double u[6], g[6], st[2] = { (double)steps[0], (double)steps[1] };
    w3_point(u);
    if (write_vec(dir, "w3_u.txt", u, 6) || write_vec(dir, "w3s_steps.txt", st, 2))
        failed = 1;
    for (int k = 0; k < 2; k++) {
        bench_set bs;
        char size[24], name[64];
        snprintf(size, sizeof size, "steps=%zu", steps[k]);
        bench_set_init(&bs, "W3 lorenz_rk4 scan", size);
        double *traj = calloc(3 * (steps[k] + 1), sizeof *traj);
        if (!traj) {
            fprintf(stderr, "rust-gen: out of memory\n");
            return 1;
        }
        w3_grad_steps(u, steps[k], w3s_dt(steps[k]), g, traj);
        free(traj);
        snprintf(name, sizeof name, "w3s_grad_%zu.txt", steps[k]);
        if (write_vec(dir, name, g, 6))
            bench_fail(&bs, "cannot write the W3 data files");
        tg_tape *f = tgrec_lorenz_scan(steps[k], w3s_dt(steps[k]), 0);
        if (f && tg_tape_status(f) == TG_OK)
            gen_crate(&bs, f, dir, crates[k], "Rust generated loop", 1);
        else
            gen_failed(&bs, "Rust generated loop", 1, "tgrec_lorenz_scan",
                       f ? tg_tape_error(f) : "out of memory");
        bench_print(&bs, stdout);
        if (csv)
            bench_write_csv(&bs, csv);
        failed |= bs.failed;
        bench_set_free(&bs);
        tg_tape_free(f);
    }
    return failed;
}

static int
gen_one(bench_set *bs, const tg_tape *f, const char *dir, const char *crate)
{
    return gen_crate(bs, f, dir, crate, "Rust generated", 0);
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
    failed |= rust_gen_loops(dir, w1_n, csv);
    return failed;
}
