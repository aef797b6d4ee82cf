/* tests/test_loop_guards.c -- branch guards inside loop bodies (issues 11
 * and 13).  A piecewise body recorded at a point with tg_branch,
 *   f(u, p) = u < 0 ? -p u^2 : p sin(u),
 * used in a map (u = x_j), a scan (u = c/2 + x_k, carry c' = f) and a map
 * of scans (nested), is evaluated where every application is on the
 * recorded side -- every numeric call then equals the flat recording of
 * the same C code (each application taking its own branch: the oracle) --
 * and where one application or step crosses: every numeric call returns
 * TG_ERR_BRANCH naming the loop and the application / step and writes
 * nothing, as for a guard of the outer tape.  Likewise batch calls per
 * point, derivative tapes, files (format 3), the optimiser, generated C
 * (compiled and run) and native kernels; generated Rust in test_rust.c
 * (loop_branch_guards).  Then values of loop outputs while recording at a
 * point (loop_values). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <unistd.h>

#include "testutil.h"

enum { N = 11, NS = 9, NR = 4, RL = 3 };    /* map count, scan steps, rows x row length */

/* The body's function on values, branching as C does: the oracle. */
static tg_var
piece(tg_var u, tg_var p)
{
    if (tg_branch(tg_lt(u, 0.0)))
        return tg_neg(tg_mul(p, tg_mul(u, u)));
    return tg_mul(p, tg_sin(u));
}

/* Map body (x; p) -> y = piece(x, p), recorded at x0 (p0 = 1.3). */
static tg_tape *
map_body(double x0)
{
    tg_tape *b = tg_tape_new("pw_map");
    tg_var x = tg_input_at(b, "x", x0), p = tg_input_at(b, "p", 1.3);
    tg_output(b, "y", piece(x, p));
    TU_TAPE_OK(b);
    cr_assert_eq(tg_num_guards(b), 1);
    return b;
}

/* Scan body (c, x; p) -> (c' = piece(0.3 tanh(c) + x, p), y = c'): the
 * sign of u = 0.3 tanh(c) + x is the sign of x when |x| > 0.3. */
static tg_var
scan_step(tg_var c, tg_var x, tg_var p)
{
    return piece(tg_add(tg_mul(tg_tanh(c), 0.3), x), p);
}

static tg_tape *
scan_body(double c0, double x0)
{
    tg_tape *b = tg_tape_new("pw_scan");
    tg_var c = tg_input_at(b, "c", c0), x = tg_input_at(b, "x", x0);
    tg_var p = tg_input_at(b, "p", 1.3);
    tg_var cn = scan_step(c, x, p);
    tg_output(b, "c", cn);
    tg_output(b, "y", cn);
    TU_TAPE_OK(b);
    return b;
}

/* Row body for the nested case: (x[RL]; p) -> y = carry after a scan of
 * pw_scan over the row from carry 0. */
static tg_tape *
row_body(const tg_tape *sb)
{
    tg_tape *b = tg_tape_new("pw_row");
    tg_var x[RL], p, c0 = tg_const(b, 0.0), cout, ys[RL];
    tg_input_vec(b, "x", RL, x);
    p = tg_input(b, "p");
    tg_scan(b, sb, RL, &c0, x, &p, &cout, ys);
    tg_output(b, "y", cout);
    TU_TAPE_OK(b);
    return b;
}

typedef enum { K_MAP, K_SCAN, K_NEST } kind;
static const char *const kname[] = { "map", "scan", "map of scans" };

static size_t
nin_of(kind k)
{
    return (k == K_MAP ? N : k == K_SCAN ? NS : NR * RL) + 1;
}

/* The outer function of kind k over inputs x (xs then p), scalar output
 * sum(ys) (+ the final carry for a scan).  Looped (loop != 0: the body
 * recorded at `side`'s point, x unvalued) or flat (each application's own
 * branch at the values x: recorded at a point). */
static tg_tape *
outer(kind k, int looped, double side, const double *x)
{
    size_t nin = nin_of(k), nx = nin - 1;
    tg_tape *t = tg_tape_new("outer");
    tg_var in[NR * RL + 1];
    if (looped)
        tg_input_vec(t, "xs", nx, in);
    else
        tg_input_vec_at(t, "xs", nx, x, in);
    tg_var p = looped ? tg_input(t, "p") : tg_input_at(t, "p", x[nx]);
    tg_var y;
    if (k == K_MAP) {
        tg_var ys[N];
        if (looped) {
            tg_tape *b = map_body(side);
            tg_map(t, b, N, in, &p, ys);
            tg_tape_free(b);
        } else {
            for (int j = 0; j < N; j++)
                ys[j] = piece(in[j], p);
        }
        y = tg_sum(N, ys);
    } else if (k == K_SCAN) {
        tg_var ys[NS], c = tg_const(t, 0.25), cout;
        if (looped) {
            tg_tape *b = scan_body(0.0, side);
            tg_scan(t, b, NS, &c, in, &p, &cout, ys);
            tg_tape_free(b);
        } else {
            for (int j = 0; j < NS; j++)
                c = ys[j] = scan_step(c, in[j], p);
            cout = c;
        }
        y = tg_add(tg_sum(NS, ys), cout);
    } else {
        tg_var ys[NR];
        if (looped) {
            tg_tape *sb = scan_body(0.0, side), *rb = row_body(sb);
            tg_map(t, rb, NR, in, &p, ys);
            tg_tape_free(rb);
            tg_tape_free(sb);
        } else {
            for (int r = 0; r < NR; r++) {
                tg_var c = tg_const(t, 0.0);
                for (int j = 0; j < RL; j++)
                    c = scan_step(c, in[r * RL + j], p);
                ys[r] = c;
            }
        }
        y = tg_sum(NR, ys);
    }
    tg_output(t, "y", y);
    TU_TAPE_OK(t);
    return t;
}

/* A point whose every application is on side s (-1: u < 0, +1: u >= 0),
 * or with exactly one crossing at position `cross` (>= 0): |x_j| >= 0.9,
 * so the scans' u has the sign of x_j. */
static void
point(kind k, int s, int cross, double *x)
{
    size_t nx = nin_of(k) - 1;
    for (size_t j = 0; j < nx; j++)
        x[j] = s * (0.9 + 0.13 * (double)(j % 5));
    if (cross >= 0)
        x[cross] = -x[cross];
    x[nx] = k == K_MAP ? 1.17 : 0.65;
}

#define SENT 12345.0
#define FILL(a, n) for (size_t k_ = 0; k_ < (n); k_++) (a)[k_] = SENT

static int
close_rel(double a, double b, double tol)
{
    return fabs(a - b) <= tol * fmax(1.0, fabs(b));
}

/* Every numeric call of tape t at x against the flat tape f at x: both
 * succeed with the same results (same side), or t fails with
 * TG_ERR_BRANCH, a message naming the loop and `where`, nothing written. */
static void
every_call(const tg_tape *t, const tg_tape *f, const double *x, size_t nin, const char *where,
           const char *what)
{
    int ok = where == NULL;
    double *a = malloc(sizeof *a * nin * nin), *b = malloc(sizeof *b * nin * nin);
    double *v = malloc(sizeof *v * 2 * nin), w1[1] = { 1.7 };
    cr_assert(a && b && v);
    for (size_t k = 0; k < 2 * nin; k++)
        v[k] = 0.3 - 0.11 * (double)k;
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws);
#define CALL(cnt, tol, call_t, call_f)                                          \
    do {                                                                        \
        FILL(a, (cnt));                                                         \
        const tg_tape *tp_ = t;                                                 \
        tg_status s_ = (call_t);                                                \
        if (ok) {                                                               \
            cr_expect_eq(s_, TG_OK, "%s: %s: %s", what, #call_t, tg_last_error()); \
            tp_ = f;                                                            \
            (void)tp_;                                                          \
            TU_OK(call_f);                                                      \
            for (size_t k_ = 0; k_ < (cnt); k_++)                               \
                cr_expect(close_rel(a[k_], b[k_], (tol)), "%s: %s [%zu]: loop %.17g flat %.17g", \
                          what, #call_t, k_, a[k_], b[k_]);                     \
        } else {                                                                \
            cr_expect_eq(s_, TG_ERR_BRANCH, "%s: %s returned %s (%s)", what, #call_t, \
                         tg_status_str(s_), tg_last_error());                   \
            const char *m_ = tg_last_error();                                   \
            cr_expect(strstr(m_, where) && strstr(m_, "pw_"), "%s: %s: message \"%s\" " \
                      "does not name the loop and \"%s\"", what, #call_t, m_, where); \
            for (size_t k_ = 0; k_ < (cnt); k_++)                               \
                cr_expect_eq(a[k_], SENT, "%s: %s wrote [%zu]", what, #call_t, k_); \
        }                                                                       \
    } while (0)
    CALL(1, 0, tg_eval(t, x, a), tg_eval(f, x, b));
    CALL(1, 0, tg_eval_ws(t, ws, x, a), tg_eval(f, x, b));
    CALL(nin, 1e-13, tg_gradient(t, x, a), tg_gradient(f, x, b));
    CALL(nin, 1e-13, tg_gradient_ws(t, ws, x, a), tg_gradient(f, x, b));
    CALL(nin, 1e-13, tg_jacobian(t, x, a), tg_jacobian(f, x, b));
    CALL(nin, 1e-13, tg_jacobian_ws(t, ws, x, a), tg_jacobian(f, x, b));
    CALL(1, 1e-13, tg_jvp(t, x, v, a), tg_jvp(f, x, v, b));
    CALL(1, 1e-13, tg_jvp_ws(t, ws, x, v, a), tg_jvp(f, x, v, b));
    CALL(nin, 1e-13, tg_vjp(t, x, w1, a), tg_vjp(f, x, w1, b));
    CALL(nin, 1e-13, tg_vjp_ws(t, ws, x, w1, a), tg_vjp(f, x, w1, b));
    CALL(nin, 1e-12, tg_hvp(t, x, v, a), tg_hvp(f, x, v, b));
    CALL(nin, 1e-12, tg_hvp_ws(t, ws, x, v, a), tg_hvp(f, x, v, b));
    CALL(nin * nin, 1e-12, tg_hessian(t, x, a), tg_hessian(f, x, b));
    CALL(nin * nin, 1e-12, tg_hessian_ws(t, ws, x, a), tg_hessian(f, x, b));
    CALL(nin - 1, 1e-13, tg_gradient_wrt(t, 0, x, a), tg_gradient_wrt(f, 0, x, b));
    CALL(1, 1e-13, tg_jacobian_wrt(t, 1, x, a), tg_jacobian_wrt(f, 1, x, b));
    CALL(1, 1e-13, tg_jvp_wrt(t, 0, x, v, a), tg_jvp_wrt(f, 0, x, v, b));
    CALL(1, 1e-13, tg_vjp_wrt(t, 1, x, w1, a), tg_vjp_wrt(f, 1, x, w1, b));
    CALL(1, 1e-12, tg_hvp_wrt(t, 1, x, v, a), tg_hvp_wrt(f, 1, x, v, b));
    CALL(nin * nin, 1e-12, tg_hessian_wrt(t, TG_ALL, x, a), tg_hessian_wrt(f, TG_ALL, x, b));
    CALL(2, 1e-13, tg_jvp_multi(t, TG_ALL, 2, x, v, a), tg_jvp_multi(f, TG_ALL, 2, x, v, b));
    CALL(nin, 1e-13, tg_vjp_multi(t, TG_ALL, 1, x, w1, a), tg_vjp_multi(f, TG_ALL, 1, x, w1, b));
    CALL(2 * nin, 1e-12, tg_hvp_multi(t, TG_ALL, 2, x, v, a),
         tg_hvp_multi(f, TG_ALL, 2, x, v, b));
    /* the sparse calls: the looped tape's patterns against the flat tape's */
    tg_sparsity *sj = tg_jacobian_sparsity(t, TG_ALL), *sh = tg_hessian_sparsity(t, TG_ALL);
    cr_assert(sj && sh && tg_sparsity_status(sj) == TG_OK && tg_sparsity_status(sh) == TG_OK,
              "%s: sparsity of the looped tape: %s %s", what, tg_sparsity_error(sj),
              tg_sparsity_error(sh));
    tg_sparsity *fj = f ? tg_jacobian_sparsity(f, TG_ALL) : NULL;
    tg_sparsity *fh = f ? tg_hessian_sparsity(f, TG_ALL) : NULL;
    if (f)
        cr_expect(tg_sparsity_nnz(sj) == tg_sparsity_nnz(fj) && tg_sparsity_nnz(sh) == tg_sparsity_nnz(fh),
                  "%s: patterns differ from the flat tape's", what);
    size_t nj = tg_sparsity_nnz(sj), nh = tg_sparsity_nnz(sh);
    CALL(nj, 1e-13, tg_sparse_jacobian(t, sj, x, a), tg_sparse_jacobian(f, fj, x, b));
    CALL(nj, 1e-13, tg_sparse_jacobian_ws(t, ws, sj, x, a), tg_sparse_jacobian(f, fj, x, b));
    CALL(nh, 1e-12, tg_sparse_hessian(t, sh, x, w1, a), tg_sparse_hessian(f, fh, x, w1, b));
    CALL(nh, 1e-12, tg_sparse_hessian_ws(t, ws, sh, x, w1, a), tg_sparse_hessian(f, fh, x, w1, b));
    tg_sparsity_free(sj);
    tg_sparsity_free(sh);
    tg_sparsity_free(fj);
    tg_sparsity_free(fh);
#undef CALL
    tg_workspace_free(ws);
    free(a);
    free(b);
    free(v);
}

/* The position that crosses and how the message names it. */
static void
crossing(kind k, int *cross, char *where, size_t n)
{
    if (k == K_MAP) {
        *cross = 7;
        snprintf(where, n, "map at instruction");
    } else if (k == K_SCAN) {
        *cross = 5;
        snprintf(where, n, "scan at instruction");
    } else {
        *cross = 2 * RL + 1;        /* row 2, step 1: the outer map's application 2 */
        snprintf(where, n, "application 2");
    }
}

Test(loop_guards, every_numeric_call)
{
    for (int k = 0; k < 3; k++)
        for (int side = -1; side <= 1; side += 2) {
            double x[NR * RL + 1];
            size_t nin = nin_of((kind)k);
            tg_tape *t = outer((kind)k, 1, side * 0.8, NULL);
            for (int rep = 0; rep < 10; rep++) {     /* repeated: lazy derivative tapes */
                point((kind)k, side, -1, x);
                tg_tape *f = outer((kind)k, 0, 0, x);
                char what[96];
                snprintf(what, sizeof what, "%s recorded at %+d, same side", kname[k], side);
                every_call(t, f, x, nin, NULL, what);
                /* one application / step crosses */
                int cross;
                char where[64];
                crossing((kind)k, &cross, where, sizeof where);
                point((kind)k, side, cross, x);
                snprintf(what, sizeof what, "%s recorded at %+d, one crossing", kname[k], side);
                every_call(t, NULL, x, nin, where, what);
                tg_tape_free(f);
            }
            tg_tape_free(t);
        }
}

/* The message says which application / step failed. */
Test(loop_guards, message_names_application)
{
    double x[NR * RL + 1], y, g[NR * RL + 1];
    tg_tape *t = outer(K_MAP, 1, 0.8, NULL);
    point(K_MAP, 1, 7, x);
    cr_expect_eq(tg_eval(t, x, &y), TG_ERR_BRANCH);
    cr_expect(strstr(tg_last_error(), "application 7 (of 11)") && strstr(tg_last_error(), "pw_map"),
              "%s", tg_last_error());
    x[7] = -x[7];
    x[3] = -x[3];
    x[9] = -x[9];
    cr_expect_eq(tg_eval(t, x, &y), TG_ERR_BRANCH);     /* the first crossing is named */
    cr_expect(strstr(tg_last_error(), "application 3 (of 11)"), "%s", tg_last_error());
    tg_tape_free(t);
    t = outer(K_SCAN, 1, -0.8, NULL);
    point(K_SCAN, -1, 4, x);
    cr_expect_eq(tg_gradient(t, x, g), TG_ERR_BRANCH);
    cr_expect(strstr(tg_last_error(), "step 4 (of 9)") && strstr(tg_last_error(), "pw_scan"),
              "%s", tg_last_error());
    tg_tape_free(t);
}

/* A map over many applications: the chunked and threaded value sweeps
 * (64 applications per dispatch, OpenMP over chunks) report the first
 * failing application wherever it lies. */
Test(loop_guards, wide_map)
{
    enum { M = 20000 };
    tg_tape *b = map_body(0.5), *t = tg_tape_new("wide");
    tg_var *xs = malloc(sizeof *xs * M), *ys = malloc(sizeof *ys * M);
    double *x = malloc(sizeof *x * (M + 1)), *g = malloc(sizeof *g * (M + 1));
    cr_assert(xs && ys && x && g);
    tg_input_vec(t, "xs", M, xs);
    tg_var p = tg_input(t, "p");
    tg_map(t, b, M, xs, &p, ys);
    tg_output(t, "y", tg_sum(M, ys));
    TU_TAPE_OK(t);
    for (size_t j = 0; j < M; j++)
        x[j] = 0.5 + 1e-4 * (double)j;
    x[M] = 1.1;
    double y, ref = 0;
    TU_OK(tg_eval(t, x, &y));
    for (size_t j = 0; j < M; j++)
        ref += 1.1 * sin(x[j]);
    cr_expect(close_rel(y, ref, 1e-10));
    TU_OK(tg_gradient(t, x, g));
    size_t at[] = { 0, 63, 64, 12345, M - 1 };
    for (size_t q = 0; q < sizeof at / sizeof *at; q++) {
        x[at[q]] = -0.5;
        char want[64];
        snprintf(want, sizeof want, "application %zu (of %d)", at[q], M);
        y = SENT;
        cr_expect_eq(tg_eval(t, x, &y), TG_ERR_BRANCH);
        cr_expect(strstr(tg_last_error(), want), "want %s: %s", want, tg_last_error());
        cr_expect_eq(y, SENT);
        g[0] = SENT;
        cr_expect_eq(tg_gradient(t, x, g), TG_ERR_BRANCH);
        cr_expect(strstr(tg_last_error(), want), "want %s: %s", want, tg_last_error());
        cr_expect_eq(g[0], SENT);
        x[at[q]] = 0.5;
    }
    free(xs);
    free(ys);
    free(x);
    free(g);
    tg_tape_free(b);
    tg_tape_free(t);
}

/* Batch calls: per-point status, failing rows untouched, the others equal
 * to the single-point calls. */
Test(loop_guards, batch_per_point)
{
    enum { NP = 29 };
    for (int k = 0; k < 3; k++) {
        size_t nin = nin_of((kind)k);
        tg_tape *t = outer((kind)k, 1, 0.8, NULL);
        double *X = malloc(sizeof *X * NP * nin), *Y = malloc(sizeof *Y * NP);
        double *G = malloc(sizeof *G * NP * nin), *g = malloc(sizeof *g * nin);
        tg_status st[NP];
        cr_assert(X && Y && G && g);
        int cross;
        char where[64];
        crossing((kind)k, &cross, where, sizeof where);
        for (int p = 0; p < NP; p++) {
            point((kind)k, 1, p % 4 == 3 ? cross : -1, X + p * nin);
            X[p * nin] += 0.01 * p;
        }
        for (int kd = 0; kd < 2; kd++) {
            FILL(Y, (size_t)NP);
            FILL(G, (size_t)NP * nin);
            tg_status s = kd == 0 ? tg_eval_batch_status(t, NP, X, Y, st)
                                  : tg_gradient_batch_status(t, NP, X, G, st);
            cr_expect_eq(s, TG_ERR_BRANCH, "%s: %s", kname[k], tg_status_str(s));
            cr_expect(strstr(tg_last_error(), "the first is point 3") && strstr(tg_last_error(), where),
                      "%s: %s", kname[k], tg_last_error());
            for (int p = 0; p < NP; p++) {
                int bad = p % 4 == 3;
                cr_expect_eq(st[p], bad ? TG_ERR_BRANCH : TG_OK, "%s point %d", kname[k], p);
                if (kd == 0) {
                    double y;
                    if (bad) {
                        cr_expect_eq(Y[p], SENT);
                    } else {
                        TU_OK(tg_eval(t, X + p * nin, &y));
                        cr_expect_eq(Y[p], y, "%s point %d", kname[k], p);
                    }
                } else {
                    if (!bad)
                        TU_OK(tg_gradient(t, X + p * nin, g));
                    for (size_t q = 0; q < nin; q++)
                        if (bad)
                            cr_expect_eq(G[p * nin + q], SENT);
                        else
                            cr_expect(close_rel(G[p * nin + q], g[q], 1e-13), "%s point %d [%zu]",
                                      kname[k], p, q);
                }
            }
        }
        cr_expect_eq(tg_eval_batch(t, NP, X, Y), TG_ERR_BRANCH);
        cr_expect_eq(tg_gradient_batch(t, NP, X, G), TG_ERR_BRANCH);
        cr_expect_eq(tg_eval_batch(t, 3, X, Y), TG_OK);
        free(X);
        free(Y);
        free(G);
        free(g);
        tg_tape_free(t);
    }
}

/* Derivative tapes keep the body guards: evaluating them fails the same
 * way, and where they succeed they equal the numeric calls. */
Test(loop_guards, derivative_tapes)
{
    tg_tape *(*mk[])(const tg_tape *, int) = { tg_gradient_tape, tg_jacobian_tape,
                                               tg_hessian_tape, tg_jvp_tape, tg_vjp_tape,
                                               tg_hvp_tape };
    static const char *const mkname[] = { "gradient", "jacobian", "hessian", "jvp", "vjp", "hvp" };
    for (int k = 0; k < 3; k++) {
        size_t nin = nin_of((kind)k);
        tg_tape *t = outer((kind)k, 1, 0.8, NULL);
        for (size_t m = 0; m < sizeof mk / sizeof *mk; m++) {
            tg_tape *d = mk[m](t, TG_ALL);
            TU_TAPE_OK(d);
            size_t din = tg_num_inputs(d), dout = tg_num_outputs(d);
            double *in = malloc(sizeof *in * din), *o1 = malloc(sizeof *o1 * dout);
            double *o2 = malloc(sizeof *o2 * dout);
            cr_assert(in && o1 && o2);
            for (int opt = 0; opt < 2; opt++) {
                for (int c = 0; c < 2; c++) {
                    int cross;
                    char where[64];
                    crossing((kind)k, &cross, where, sizeof where);
                    point((kind)k, 1, c ? cross : -1, in);
                    for (size_t q = nin; q < din; q++)
                        in[q] = 0.2 + 0.05 * (double)q;
                    FILL(o1, dout);
                    tg_status s = tg_eval(d, in, o1);
                    if (!c) {
                        cr_expect_eq(s, TG_OK, "%s %s tape: %s", kname[k], mkname[m],
                                     tg_last_error());
                        continue;
                    }
                    cr_expect_eq(s, TG_ERR_BRANCH, "%s %s tape (opt %d): %s", kname[k],
                                 mkname[m], opt, tg_status_str(s));
                    cr_expect(strstr(tg_last_error(), "pw_"), "%s", tg_last_error());
                    for (size_t q = 0; q < dout; q++)
                        cr_expect_eq(o1[q], SENT, "%s %s tape wrote [%zu]", kname[k], mkname[m], q);
                    (void)o2;
                }
                TU_OK(tg_tape_optimize(d, TG_OPT_MAX));
            }
            free(in);
            free(o1);
            free(o2);
            tg_tape_free(d);
        }
        /* the gradient tape against the numeric gradient */
        tg_tape *d = tg_gradient_tape(t, TG_ALL);
        double x[NR * RL + 1], g1[NR * RL + 1], g2[NR * RL + 1];
        point((kind)k, 1, -1, x);
        TU_OK(tg_eval(d, x, g1));
        TU_OK(tg_gradient(t, x, g2));
        for (size_t q = 0; q < nin; q++)
            cr_expect(close_rel(g1[q], g2[q], 1e-13), "%s: gradient tape [%zu]", kname[k], q);
        tg_tape_free(d);
        tg_tape_free(t);
    }
}

/* Files (format 3) and the optimiser keep the guards of bodies. */
Test(loop_guards, files_and_optimiser)
{
    for (int k = 0; k < 3; k++) {
        tg_tape *t = outer((kind)k, 1, -0.8, NULL);
        char path[] = "/tmp/tg_loop_guards_XXXXXX";
        int fd = mkstemp(path);
        cr_assert(fd >= 0);
        close(fd);
        TU_OK(tg_tape_save(t, path));
        tg_tape *l = tg_tape_load(path);
        unlink(path);
        TU_TAPE_OK(l);
        double x[NR * RL + 1], y1, y2 = SENT;
        int cross;
        char where[64];
        crossing((kind)k, &cross, where, sizeof where);
        for (int lev = -1; lev <= TG_OPT_MAX; lev++) {
            if (lev >= 0)
                TU_OK(tg_tape_optimize(l, (tg_opt_level)lev));
            point((kind)k, -1, -1, x);
            TU_OK(tg_eval(t, x, &y1));
            TU_OK(tg_eval(l, x, &y2));
            cr_expect_eq(y1, y2, "%s level %d", kname[k], lev);
            point((kind)k, -1, cross, x);
            y2 = SENT;
            cr_expect_eq(tg_eval(l, x, &y2), TG_ERR_BRANCH, "%s level %d", kname[k], lev);
            cr_expect(strstr(tg_last_error(), where), "%s", tg_last_error());
            cr_expect_eq(y2, SENT);
        }
        tg_tape_free(l);
        tg_tape_free(t);
    }
}

static bool
have_cc(const char *cc)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "%s --version > /dev/null 2>&1", cc);
    return system(cmd) == 0;
}

typedef int (*kern_fn)(const double *x, double *y, double *work);
typedef int (*kern_batch_fn)(size_t npts, const double *X, double *Y, double *work);

/* Generated C checks the guards of loop bodies: the body function returns
 * 8 (TG_ERR_BRANCH), the loop returns it at once, before any store; where
 * every application is on the recorded side, the results equal tg_eval's
 * bit for bit.  Batch: failing rows untouched, the call returns 8. */
Test(loop_guards, generated_c, .timeout = 300)
{
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (!have_cc(cc))
        cr_skip_test("no C compiler (%s): generated C not compiled", cc);
    for (int k = 0; k < 4; k++) {
        /* k == 3: the map with a first output that does not depend on the
         * loop (computed first), which must stay unwritten all the same */
        tg_tape *t = k < 3 ? outer((kind)k, 1, 0.8, NULL) : NULL;
        size_t nin = nin_of(k < 3 ? (kind)k : K_MAP), nout = k < 3 ? 1 : 2;
        if (k == 3) {
            tg_tape *b = map_body(0.8);
            tg_var in[N + 1], ys[N];
            t = tg_tape_new("two");
            tg_input_vec(t, "xs", N, in);
            in[N] = tg_input(t, "p");
            tg_var y[2] = { tg_mul(in[N], 2.0), TG_ZERO_VAR };
            tg_map(t, b, N, in, &in[N], ys);
            y[1] = tg_sum(N, ys);
            tg_output_vec(t, "y", 2, y);
            TU_TAPE_OK(t);
            tg_tape_free(b);
        }
        kind kk = k < 3 ? (kind)k : K_MAP;
        char name[32], *src = NULL;
        snprintf(name, sizeof name, "lg%d", k);
        tg_c_options o = { name, 0, 1, 0, 0 };
        size_t wl;
        TU_OK(tg_c_source(t, &o, &src, &wl));
        cr_expect(strstr(src, "return 8") != NULL);
        char dir[] = "/tmp/tg_loop_guards_c_XXXXXX", path[256], so[256], cmd[1024];
        cr_assert(mkdtemp(dir) != NULL);
        snprintf(path, sizeof path, "%s/k.c", dir);
        snprintf(so, sizeof so, "%s/k.so", dir);
        FILE *f = fopen(path, "w");
        cr_assert(f != NULL);
        fputs(src, f);
        fclose(f);
        free(src);
        snprintf(cmd, sizeof cmd, "%s -std=c11 -Wall -Wextra -pedantic -Werror -ffp-contract=off "
                 "-O1 -fPIC -shared -o %s %s -lm", cc, so, path);
        cr_assert(system(cmd) == 0, "%s failed on the generated C (kept in %s)", cc, dir);
        void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        cr_assert(h != NULL, "dlopen: %s", dlerror());
        kern_fn fn = (kern_fn)dlsym(h, name);
        char bname[48];
        snprintf(bname, sizeof bname, "%s_batch", name);
        kern_batch_fn bfn = (kern_batch_fn)dlsym(h, bname);
        cr_assert(fn && bfn);
        double *work = calloc(wl * 8 + 64 * (nin + 1) + 1, sizeof *work);
        double x[NR * RL + 1], y[2], ye[2], X[4 * (NR * RL + 1)], Y[8];
        int cross;
        char where[64];
        crossing(kk, &cross, where, sizeof where);
        for (int c = 0; c < 2; c++) {
            point(kk, 1, c ? cross : -1, x);
            memcpy(X + c * nin, x, nin * sizeof *x);
            memcpy(X + (2 + c) * nin, x, nin * sizeof *x);
            FILL(y, nout);
            int rc = fn(x, y, work);
            if (c) {
                cr_expect_eq(rc, 8, "case %d: generated C returned %d at a crossing", k, rc);
                for (size_t q = 0; q < nout; q++)
                    cr_expect_eq(y[q], SENT, "case %d: generated C wrote y[%zu]", k, q);
            } else {
                cr_expect_eq(rc, 0);
                TU_OK(tg_eval(t, x, ye));
                cr_expect(memcmp(y, ye, nout * sizeof *y) == 0, "case %d: C %.17g tg_eval %.17g", k,
                          y[nout - 1], ye[nout - 1]);
            }
        }
        FILL(Y, (size_t)8);
        cr_expect_eq(bfn(4, X, Y, work), 8);
        TU_OK(tg_eval(t, X, ye));
        for (size_t q = 0; q < nout; q++) {
            cr_expect_eq(Y[q], ye[q]);
            cr_expect_eq(Y[2 * nout + q], ye[q]);
            cr_expect_eq(Y[nout + q], SENT);
            cr_expect_eq(Y[3 * nout + q], SENT);
        }
        free(work);
        dlclose(h);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        cr_assert(system(cmd) == 0);
        tg_tape_free(t);
    }
}

/* Native kernels (the same C, compiled and loaded by tapegen) and the
 * routes of tg_tape_compile: TG_ERR_BRANCH, nothing written. */
Test(loop_guards, native_kernels, .timeout = 300)
{
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (!have_cc(cc))
        cr_skip_test("no C compiler (%s): native kernels not tested", cc);
    tg_tape *t = outer(K_SCAN, 1, -0.8, NULL);
    tg_kernel *kn = tg_compile(t, NULL);
    cr_assert(kn != NULL, "tg_compile: %s", tg_last_error());
    double x[NS + 1], y = SENT, ye, X[3 * (NS + 1)], Y[3], g[NS + 1], ge[NS + 1];
    point(K_SCAN, -1, -1, x);
    TU_OK(tg_kernel_eval(kn, x, &y));
    TU_OK(tg_eval(t, x, &ye));
    cr_expect(memcmp(&y, &ye, sizeof y) == 0);
    TU_OK(tg_gradient(t, x, ge));
    memcpy(X, x, sizeof x);
    memcpy(X + 2 * (NS + 1), x, sizeof x);
    point(K_SCAN, -1, 5, x);
    memcpy(X + (NS + 1), x, sizeof x);
    y = SENT;
    cr_expect_eq(tg_kernel_eval(kn, x, &y), TG_ERR_BRANCH);
    cr_expect_eq(y, SENT);
    FILL(Y, (size_t)3);
    cr_expect_eq(tg_kernel_eval_batch(kn, 3, X, Y), TG_ERR_BRANCH);
    cr_expect_eq(Y[0], ye);
    cr_expect_eq(Y[1], SENT);
    cr_expect_eq(Y[2], ye);
    tg_kernel_free(kn);
    /* routed: tg_eval and tg_gradient through compiled kernels */
    TU_OK(tg_tape_compile(t, TG_F | TG_GRAD, NULL));
    FILL(g, (size_t)(NS + 1));
    y = SENT;
    cr_expect_eq(tg_eval(t, x, &y), TG_ERR_BRANCH);
    cr_expect_eq(y, SENT);
    cr_expect_eq(tg_gradient(t, x, g), TG_ERR_BRANCH);
    for (size_t q = 0; q < NS + 1; q++)
        cr_expect_eq(g[q], SENT);
    point(K_SCAN, -1, -1, x);
    TU_OK(tg_gradient(t, x, g));
    for (size_t q = 0; q < NS + 1; q++)
        cr_expect(close_rel(g[q], ge[q], 1e-13));
    tg_tape_free(t);
}

/* ------------------------------------------------ values at a point */

#include "ad/sweep.h"

/* Every instruction's value while recording equals the value sweep's
 * (ad_forward_one, behind tg_eval) bit for bit; every instruction has
 * one (all inputs were declared with values). */
static void
expect_values_match(const tg_tape *t, const double *x, const char *what)
{
    double *v = calloc(ad_values_len(t, 1) + 1, sizeof *v);
    cr_assert(v);
    ad_forward_one(t, x, v);
    for (uint32_t i = 0; i < t->n; i++) {
        double r = tg_value((tg_var){ (tg_tape *)t, i });
        cr_expect(memcmp(&r, &v[i], sizeof r) == 0, "%s: instruction %u (%s): value while "
                  "recording %.17g, tg_eval's %.17g", what, i, tg_op_name((tg_opcode)t->op[i]),
                  r, v[i]);
    }
    free(v);
}

/* Values of loop outputs while recording at a point: the three kinds of
 * outer function above, at points on either side, against tg_eval. */
Test(loop_values, outputs_have_values)
{
    for (int k = 0; k < 3; k++)
        for (int side = -1; side <= 1; side += 2) {
            double x[NR * RL + 1];
            point((kind)k, side, -1, x);
            size_t nin = nin_of((kind)k);
            tg_tape *t = tg_tape_new("at");
            tg_var in[NR * RL + 1], y;
            tg_input_vec_at(t, "xs", nin - 1, x, in);
            tg_var p = tg_input_at(t, "p", x[nin - 1]);
            if (k == K_MAP) {
                tg_var ys[N];
                tg_tape *b = map_body(side * 0.8);
                tg_map(t, b, N, in, &p, ys);
                tg_tape_free(b);
                for (int j = 0; j < N; j++)     /* the flat recording's values */
                    cr_expect_eq(tg_value(ys[j]), x[j] < 0 ? -(x[N] * (x[j] * x[j]))
                                                           : x[N] * sin(x[j]));
                y = tg_sum(N, ys);
            } else if (k == K_SCAN) {
                tg_var ys[NS], c = tg_const(t, 0.25), cout;
                tg_tape *b = scan_body(0.0, side * 0.8);
                tg_scan(t, b, NS, &c, in, &p, &cout, ys);
                tg_tape_free(b);
                cr_expect_eq(tg_value(cout), tg_value(ys[NS - 1]));
                y = tg_add(tg_sum(NS, ys), cout);
            } else {
                tg_var ys[NR];
                tg_tape *sb = scan_body(0.0, side * 0.8), *rb = row_body(sb);
                tg_map(t, rb, NR, in, &p, ys);
                tg_tape_free(rb);
                tg_tape_free(sb);
                y = tg_sum(NR, ys);
            }
            cr_expect(!isnan(tg_value(y)), "%s: the loop's outputs have values", kname[k]);
            /* a branch on a loop's output: a guard of the outer tape */
            double y0 = tg_value(y);
            tg_var z = tg_branch(tg_gt(y, 0.0)) ? tg_mul(y, 2.0) : tg_neg(y);
            tg_output(t, "y", z);
            TU_TAPE_OK(t);
            cr_expect_eq(tg_num_guards(t), 1);
            expect_values_match(t, x, kname[k]);
            double out;
            TU_OK(tg_eval(t, x, &out));
            cr_expect_eq(out, y0 > 0 ? 2 * y0 : -y0);
            /* the flat recording agrees bit for bit */
            tg_tape *f = outer((kind)k, 0, 0, x);
            double fy;
            TU_OK(tg_eval(f, x, &fy));
            cr_expect_eq(fy, y0, "%s: looped %.17g flat %.17g", kname[k], y0, fy);
            tg_tape_free(f);
            tg_tape_free(t);
        }
}

/* Size-0 blocks: no applications, no steps, bodies without xs or ys. */
Test(loop_values, empty_blocks)
{
    tg_tape *t = tg_tape_new("empty");
    double x0[2] = { 0.7, -1.1 };
    tg_var x[2];
    tg_input_vec_at(t, "x", 2, x0, x);
    /* a map of 0 applications, and a scan of 0 steps: carry_out = carry_in */
    tg_tape *mb = map_body(0.5), *sb = scan_body(0.0, 0.5);
    tg_map(t, mb, 0, NULL, &x[1], NULL);
    tg_var c0 = x[0], cout;
    tg_scan(t, sb, 0, &c0, NULL, &x[1], &cout, NULL);
    TU_TAPE_OK(t);
    cr_expect_eq(tg_value(cout), 0.7);
    /* a map body with no x (params only) and a scan body with no x, no y */
    tg_tape *pb = tg_tape_new("ponly");
    tg_input_vec(pb, "x", 0, NULL);
    tg_var pp = tg_input(pb, "p");
    tg_output(pb, "y", tg_exp(pp));
    tg_var ys[3];
    tg_map(t, pb, 3, NULL, &x[1], ys);
    tg_tape *cb = tg_tape_new("carryonly");
    tg_var cc = tg_input(cb, "c");
    tg_input_vec(cb, "x", 0, NULL);
    tg_var cp = tg_input(cb, "p");
    tg_output(cb, "c", tg_add(tg_mul(cc, cp), 1.0));
    tg_output_vec(cb, "y", 0, NULL);
    tg_var c2;
    tg_scan(t, cb, 4, &x[0], NULL, &x[1], &c2, NULL);
    TU_TAPE_OK(t);
    for (int j = 0; j < 3; j++)
        cr_expect_eq(tg_value(ys[j]), exp(-1.1));
    double c = 0.7;
    for (int s = 0; s < 4; s++)
        c = c * -1.1 + 1.0;
    cr_expect_eq(tg_value(c2), c);
    tg_output(t, "y", tg_add(tg_sum(3, ys), tg_add(c2, cout)));
    TU_TAPE_OK(t);
    expect_values_match(t, x0, "empty blocks");
    tg_tape_free(pb);
    tg_tape_free(cb);
    tg_tape_free(mb);
    tg_tape_free(sb);
    tg_tape_free(t);
}

/* A body recorded on one side used where an application takes the other
 * side at the recording point: recording fails with TG_ERR_BRANCH (the
 * finished tape would fail tg_eval at its own point). */
Test(loop_values, body_guard_fails_at_the_point)
{
    double x[N + 1];
    point(K_MAP, 1, 6, x);
    tg_tape *t = tg_tape_new("wrong"), *b = map_body(0.8);
    tg_var in[N], ys[N];
    tg_input_vec_at(t, "xs", N, x, in);
    tg_var p = tg_input_at(t, "p", x[N]);
    tg_map(t, b, N, in, &p, ys);
    cr_expect_eq(tg_tape_status(t), TG_ERR_BRANCH);
    cr_expect(strstr(tg_tape_error(t), "application 6 (of 11)") && strstr(tg_tape_error(t), "pw_map"),
              "%s", tg_tape_error(t));
    tg_tape_free(t);
    /* without values nothing is checked while recording */
    t = tg_tape_new("novalues");
    tg_input_vec(t, "xs", N, in);
    p = tg_input(t, "p");
    tg_map(t, b, N, in, &p, ys);
    TU_TAPE_OK(t);
    cr_expect(isnan(tg_value(ys[0])));
    tg_tape_free(t);
    tg_tape_free(b);
}
