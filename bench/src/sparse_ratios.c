/* bench/src/sparse_ratios.c -- tgsparse: the issue-10 targets of the sparse
 * core in one short run (the full comparison tables live in tgbench):
 *   - pattern + colouring time of W1 (Hessian) and W4 (Jacobian), colours;
 *   - tg_sparse_hessian(W1) / tg_gradient and tg_sparse_jacobian(W4) /
 *     tg_eval, per call, for each n (targets <= 6 and <= 4);
 *   - tg_sparse_hessian_tape(W1) build time and size (target < 1 s at 1e4);
 *   - W1 recorded as a map of its term (tgrec_rosenbrock_map, issue 11):
 *     the same pattern, sparse Hessian and tape, with the ratios
 *     loop / flat of the pattern time and of the sparse Hessian time.
 * The workloads are tgbench's recordings (tgrec.c) at its evaluation points,
 * optimised at TG_OPT_BASIC like tgbench's tapegen rows.  Times are thread
 * CPU seconds (the machine may be shared), the median of 5 rounds of at
 * least 0.05 s each.  Every sparse value is checked against the dense call
 * (n <= 1000) before anything is timed.
 *
 *   tgsparse [N...]        default: 1000 10000 100000 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tapegen.h>

#include "tgrec.h"
#include "workloads.h"

static double
cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct job {
    const tg_tape *t;
    const tg_sparsity *s;
    tg_workspace *w;
    const double *x;
    double *out;
    int kind;               /* 0 eval, 1 gradient, 2 sparse jac, 3 sparse hess, 4 pattern */
} job;

static int
run(const job *j)
{
    switch (j->kind) {
    case 0: return tg_eval_ws(j->t, j->w, j->x, j->out);
    case 1: return tg_gradient_ws(j->t, j->w, j->x, j->out);
    case 2: return tg_sparse_jacobian_ws(j->t, j->w, j->s, j->x, j->out);
    case 3: return tg_sparse_hessian_ws(j->t, j->w, j->s, j->x, NULL, j->out);
    default: break;
    }
    return 0;
}

/* median over 5 rounds of the time per call */
static double
per_call(const job *j)
{
    double r[5];
    for (int k = 0; k < 5; k++) {
        long reps = 1;
        for (;;) {
            double t0 = cpu_now();
            for (long q = 0; q < reps; q++)
                if (run(j) != TG_OK) {
                    fprintf(stderr, "tgsparse: call failed: %s\n", tg_last_error());
                    exit(1);
                }
            double el = cpu_now() - t0;
            if (el >= 0.05) {
                r[k] = el / (double)reps;
                break;
            }
            reps *= 2;
        }
    }
    for (int a = 0; a < 5; a++)
        for (int b = a + 1; b < 5; b++)
            if (r[b] < r[a]) {
                double x = r[a]; r[a] = r[b]; r[b] = x;
            }
    return r[2];
}

static void
check(const tg_sparsity *s, const double *vals, const double *dense, size_t n, const char *what)
{
    const uint32_t *R = tg_sparsity_rows(s), *C = tg_sparsity_cols(s);
    double err = 0;
    for (size_t e = 0; e < tg_sparsity_nnz(s); e++) {
        double want = dense[(size_t)R[e] * n + C[e]];
        double d = fabs(vals[e] - want) / (fabs(want) > 1 ? fabs(want) : 1);
        err = d > err ? d : err;
    }
    if (err > 1e-13) {
        fprintf(stderr, "tgsparse: %s differs from the dense call by %g\n", what, err);
        exit(1);
    }
}

/* W4 (kind 0), W1 flat (1), W1 as a map (2); the pattern time and the
 * sparse call's time into tp[0], tp[1] */
static void
workload(size_t n, int kind, double *tp)
{
    int hessian = kind != 0;
    tg_tape *t = kind == 2 ? tgrec_rosenbrock_map(n, 0)
               : hessian ? tgrec_rosenbrock(n, 0) : tgrec_broyden(n, 0);
    if (!t || tg_tape_optimize(t, TG_OPT_BASIC) != TG_OK) {
        fprintf(stderr, "tgsparse: recording failed\n");
        exit(1);
    }
    double *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out);
    hessian ? w1_eval_point(n, x) : w4_point(n, x);
    double t0 = cpu_now();
    tg_sparsity *s = hessian ? tg_hessian_sparsity(t, TG_ALL) : tg_jacobian_sparsity(t, TG_ALL);
    double tpat = cpu_now() - t0;
    if (!s || tg_sparsity_status(s) != TG_OK) {
        fprintf(stderr, "tgsparse: sparsity failed\n");
        exit(1);
    }
    double *vals = malloc(tg_sparsity_nnz(s) * sizeof *vals);
    tg_workspace *w = tg_workspace_new(t);
    job base = { t, s, w, x, out, hessian ? 1 : 0 }, sp = { t, s, w, x, vals, hessian ? 3 : 2 };
    if (run(&sp) != TG_OK)
        exit(1);
    if (n <= 1000) {
        double *D = malloc(n * n * sizeof *D);
        if ((hessian ? tg_hessian(t, x, D) : tg_jacobian(t, x, D)) != TG_OK)
            exit(1);
        check(s, vals, D, n, hessian ? "W1 sparse Hessian" : "W4 sparse Jacobian");
        free(D);
    }
    double tb = per_call(&base), ts = per_call(&sp);
    tp[0] = tpat;
    tp[1] = ts;
    printf("%-4s n=%-7zu nnz %7zu colours %2zu  pattern+colouring %8.2f ms  %s %9.2f us  %s %9.2f us  ratio %5.2f (target <= %d)\n",
           kind == 2 ? "W1m" : hessian ? "W1" : "W4", n, tg_sparsity_nnz(s), tg_sparsity_colors(s), 1e3 * tpat,
           hessian ? "gradient" : "eval    ", 1e6 * tb,
           hessian ? "sparse_hessian " : "sparse_jacobian", 1e6 * ts, ts / tb, hessian ? 6 : 4);
    if (hessian && n == 10000) {
        t0 = cpu_now();
        tg_tape *h = tg_sparse_hessian_tape(t, TG_ALL);
        double tt = cpu_now() - t0;
        if (!h || tg_tape_status(h) != TG_OK)
            exit(1);
        printf("%-4s n=%-7zu sparse Hessian tape: built in %.3f s (target < 1 s), %zu instructions (%.1f per input)\n",
               kind == 2 ? "W1m" : "W1", n, tt, tg_tape_size(h), (double)tg_tape_size(h) / (double)n);
        tg_tape_free(h);
    }
    tg_workspace_free(w);
    tg_sparsity_free(s);
    tg_tape_free(t);
    free(x);
    free(out);
    free(vals);
}

int
main(int argc, char **argv)
{
    size_t def[3] = { 1000, 10000, 100000 }, *ns = def, cnt = 3;
    size_t *args = NULL;
    if (argc > 1) {
        args = malloc((size_t)(argc - 1) * sizeof *args);
        for (int k = 1; k < argc; k++)
            args[k - 1] = (size_t)strtoull(argv[k], NULL, 10);
        ns = args;
        cnt = (size_t)(argc - 1);
    }
    for (size_t k = 0; k < cnt; k++) {
        if (ns[k] < 3) {
            fprintf(stderr, "usage: tgsparse [N >= 3 ...]\n");
            return 2;
        }
        double flat[2], map[2], w4[2];
        workload(ns[k], 1, flat);
        workload(ns[k], 2, map);
        printf("W1m  n=%-7zu loop / flat: pattern+colouring %.2f, sparse_hessian %.2f\n", ns[k],
               map[0] / flat[0], map[1] / flat[1]);
        workload(ns[k], 0, w4);
    }
    free(args);
    return 0;
}
