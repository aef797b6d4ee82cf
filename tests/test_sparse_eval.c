/* tests/test_sparse_eval.c -- the numeric side of issue 10 against older,
 * independent paths: derivatives with respect to one block (tg_*_wrt) and
 * with many directions (tg_*_multi) against the full calls on padded
 * vectors; parameters (a Lagrangian whose multipliers are an input block)
 * against weights; sparse derivative tapes against tg_sparse_*; no
 * allocation in the _ws calls after tg_workspace_new; threads sharing one
 * tape and sparsity; and out-of-memory sweeps over the new constructors. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "sparseutil.h"
#include "tape/alloc.h"

#define TOL_OK(a, b, scale) su_agree((a), (b), (scale))

/* -------------------------------------------------------- one block, k dirs */

Test(sparse_eval, wrt_matches_full_calls)
{
    tg_tape *t = su_mlp();                    /* m = 3, blocks x (3), theta */
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double x[64], v[64], vp[64], w[3] = { 0.5, -2.0, 1.25 }, full[64 * 64], got[64 * 64], ref[64];
    su_point(5, n, -1.0, 1.0, x);
    su_point(6, n, -1.0, 1.0, v);
    for (int wrt = TG_ALL; wrt < 2; wrt++) {
        size_t lo, nw;
        su_wrt_range(t, wrt, &lo, &nw);
        memset(vp, 0, sizeof vp);
        memcpy(vp + lo, v, nw * sizeof *v);   /* the direction, padded with zeros */
        cr_assert_eq(tg_jacobian(t, x, full), TG_OK);
        cr_assert_eq(tg_jacobian_wrt(t, wrt, x, got), TG_OK, "%s", tg_last_error());
        double sc = su_maxabs(full, m * n);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < nw; j++)
                cr_assert(TOL_OK(got[i * nw + j], full[i * n + lo + j], 1e-3 * sc), "jac (%zu,%zu)", i, j);
        cr_assert_eq(tg_jvp(t, x, vp, ref), TG_OK);
        cr_assert_eq(tg_jvp_wrt(t, wrt, x, v, got), TG_OK);
        for (size_t i = 0; i < m; i++)
            cr_assert(TOL_OK(got[i], ref[i], 1e-3 * sc), "jvp %zu", i);
        cr_assert_eq(tg_vjp(t, x, w, ref), TG_OK);
        cr_assert_eq(tg_vjp_wrt(t, wrt, x, w, got), TG_OK);
        for (size_t j = 0; j < nw; j++)
            cr_assert_eq(got[j], ref[lo + j], "vjp %zu", j);
    }
    cr_expect_eq(tg_gradient_wrt(t, 0, x, got), TG_ERR_SHAPE);
    cr_expect_eq(tg_jvp_wrt(t, 2, x, v, got), TG_ERR_ARG);
    cr_expect_eq(tg_vjp_wrt(t, 0, x, NULL, got), TG_ERR_ARG);
    tg_tape_free(t);

    /* scalar: gradient, Hessian, HVP of the Lagrangian w.r.t. x only */
    t = su_luksan(12, 1);
    n = tg_num_inputs(t);
    su_point(8, n, -1.0, 1.0, x);
    su_point(9, n, -1.0, 1.0, v);
    size_t nx = 12;
    cr_assert_eq(tg_gradient(t, x, full), TG_OK);
    cr_assert_eq(tg_gradient_wrt(t, 0, x, got), TG_OK);
    for (size_t j = 0; j < nx; j++)
        cr_assert_eq(got[j], full[j]);
    cr_assert_eq(tg_gradient_wrt(t, 2, x, got), TG_OK);     /* w.r.t. lambda: the constraints */
    for (size_t j = 0; j < nx - 2; j++)
        cr_assert_eq(got[j], full[nx + 1 + j]);
    cr_assert_eq(tg_hessian(t, x, full), TG_OK);
    cr_assert_eq(tg_hessian_wrt(t, 0, x, got), TG_OK);
    double sc = su_maxabs(full, n * n);
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < nx; j++)
            cr_assert(TOL_OK(got[i * nx + j], full[i * n + j], 1e-3 * sc), "hess (%zu,%zu)", i, j);
    memset(vp, 0, sizeof vp);
    memcpy(vp, v, nx * sizeof *v);
    cr_assert_eq(tg_hvp(t, x, vp, ref), TG_OK);
    cr_assert_eq(tg_hvp_wrt(t, 0, x, v, got), TG_OK);
    for (size_t j = 0; j < nx; j++)
        cr_assert(TOL_OK(got[j], ref[j], 1e-3 * sc), "hvp %zu", j);
    tg_tape_free(t);
}

Test(sparse_eval, multi_directions_match_single_calls)
{
    tg_tape *t = su_broyden(13);
    size_t n = 13, m = 13;
    double x[13], V[19 * 13], W[19 * 13], out[19 * 13], ref[13];
    su_point(11, n, -1.0, 1.0, x);
    su_point(12, 19 * n, -1.0, 1.0, V);
    su_point(13, 19 * m, -1.0, 1.0, W);
    static const size_t ks[2] = { 0, 19 };                 /* none; 2 full groups + 3 */
    for (int q = 0; q < 2; q++) {
        size_t k = ks[q];
        cr_assert_eq(tg_jvp_multi(t, TG_ALL, k, x, V, out), TG_OK, "%s", tg_last_error());
        for (size_t d = 0; d < k; d++) {
            cr_assert_eq(tg_jvp(t, x, V + d * n, ref), TG_OK);
            for (size_t i = 0; i < m; i++)
                cr_assert(TOL_OK(out[d * m + i], ref[i], 1e-13), "jvp dir %zu out %zu", d, i);
        }
        cr_assert_eq(tg_vjp_multi(t, TG_ALL, k, x, W, out), TG_OK);
        for (size_t d = 0; d < k; d++) {
            cr_assert_eq(tg_vjp(t, x, W + d * m, ref), TG_OK);
            for (size_t j = 0; j < n; j++)
                cr_assert(TOL_OK(out[d * n + j], ref[j], 1e-13), "vjp dir %zu in %zu", d, j);
        }
    }
    tg_tape_free(t);
    t = su_rosenbrock(11);
    n = 11;
    cr_assert_eq(tg_hvp_multi(t, TG_ALL, 19, x, V, out), TG_OK);
    for (size_t d = 0; d < 19; d++) {
        cr_assert_eq(tg_hvp(t, x, V + d * n, ref), TG_OK);
        for (size_t j = 0; j < n; j++)
            cr_assert(TOL_OK(out[d * n + j], ref[j], 1e-13), "hvp dir %zu in %zu", d, j);
    }
    cr_expect_eq(tg_hvp_multi(t, TG_ALL, 3, x, NULL, out), TG_ERR_ARG);
    cr_expect_eq(tg_hvp_multi(t, TG_ALL, 0, x, NULL, NULL), TG_OK);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ parameters */

/* sigma and lambda as parameter blocks of a scalar Lagrangian give the same
 * sparse Hessian as weights on the vector tape [f, c] */
Test(sparse_eval, lagrangian_parameters_equal_weights)
{
    enum { N = 30 };
    tg_tape *vec = su_luksan(N, 0), *lag = su_luksan(N, 1);
    double x[N + 1 + N], wts[N - 1];
    su_point(21, N, -1.0, 1.0, x);
    su_point(22, N - 1, -2.0, 2.0, wts);
    memcpy(x + N, wts, (N - 1) * sizeof *wts);         /* sigma, lambda after x */
    tg_sparsity *sv = su_check(vec, 1, TG_ALL, wts, 2, -1.0, 1.0, "lv1 weights");
    tg_sparsity *sl = tg_hessian_sparsity(lag, 0);      /* w.r.t. x only */
    cr_assert_eq(tg_sparsity_status(sl), TG_OK);
    cr_assert_eq(tg_sparsity_nnz(sl), tg_sparsity_nnz(sv));
    size_t nnz = tg_sparsity_nnz(sv);
    for (size_t e = 0; e < nnz; e++)
        cr_assert(tg_sparsity_rows(sl)[e] == tg_sparsity_rows(sv)[e]
                  && tg_sparsity_cols(sl)[e] == tg_sparsity_cols(sv)[e]);
    double a[4 * N], b[4 * N];
    cr_assert_eq(tg_sparse_hessian(vec, sv, x, wts, a), TG_OK);
    cr_assert_eq(tg_sparse_hessian(lag, sl, x, NULL, b), TG_OK, "%s", tg_last_error());
    double sc = su_maxabs(a, nnz);
    for (size_t e = 0; e < nnz; e++)
        cr_assert(TOL_OK(b[e], a[e], 1e-3 * sc), "entry %zu: %.17g vs %.17g", e, b[e], a[e]);
    /* the constraint Jacobian w.r.t. x, with the multipliers present */
    tg_sparsity *sj = su_check(vec, 0, TG_ALL, NULL, 2, -1.0, 1.0, "lv1 jac");
    tg_sparsity_free(sj);
    tg_sparsity_free(sv);
    tg_sparsity_free(sl);
    tg_tape_free(vec);
    tg_tape_free(lag);
}

/* --------------------------------------------------- sparse derivative tapes */

static void
check_tape(const tg_tape *f, int hessian, int wrt, const double *w, const char *what)
{
    tg_sparsity *s = hessian ? tg_hessian_sparsity(f, wrt) : tg_jacobian_sparsity(f, wrt);
    tg_tape *d = hessian ? tg_sparse_hessian_tape(f, wrt) : tg_sparse_jacobian_tape(f, wrt);
    cr_assert(d != NULL);
    cr_assert_eq(tg_tape_status(d), TG_OK, "%s: %s", what, tg_tape_error(d));
    size_t n = tg_num_inputs(f), m = tg_num_outputs(f), nnz = tg_sparsity_nnz(s);
    char name[300];
    snprintf(name, sizeof name, "%s_%s", tg_tape_name(f), hessian ? "shess" : "sjac");
    cr_expect_str_eq(tg_tape_name(d), name);
    cr_assert_eq(tg_num_outputs(d), nnz);
    cr_expect_str_eq(tg_output_block_name(d, 0), hessian ? "hess" : "jac");
    cr_assert_eq(tg_num_inputs(d), n + (hessian ? m : 0));
    if (hessian)
        cr_expect_str_eq(tg_input_block_name(d, tg_num_input_blocks(d) - 1), "w");
    double *x = malloc((n + m + 1) * sizeof *x), *a = malloc((nnz + 1) * sizeof *a);
    double *b = malloc((nnz + 1) * sizeof *b);
    for (int p = 0; p < 3; p++) {
        su_point(40 + (uint64_t)p, n, -1.2, 1.2, x);
        for (size_t j = 0; j < m && hessian; j++)
            x[n + j] = w ? w[j] : 1.0;
        cr_assert_eq(hessian ? tg_sparse_hessian(f, s, x, w, a) : tg_sparse_jacobian(f, s, x, a), TG_OK);
        cr_assert_eq(tg_eval(d, x, b), TG_OK);
        double sc = su_maxabs(a, nnz);
        for (size_t e = 0; e < nnz; e++)
            cr_assert(TOL_OK(b[e], a[e], 1e-3 * sc), "%s: entry %zu: tape %.17g, sweep %.17g", what,
                      e, b[e], a[e]);
    }
    free(x);
    free(a);
    free(b);
    tg_sparsity_free(s);
    tg_tape_free(d);
}

Test(sparse_eval, sparse_tapes_match_sweeps)
{
    tg_tape *t = su_rosenbrock(40);
    check_tape(t, 1, TG_ALL, NULL, "rosenbrock shess");
    check_tape(t, 0, TG_ALL, NULL, "rosenbrock sjac");
    tg_tape_free(t);
    t = su_broyden(40);
    check_tape(t, 0, TG_ALL, NULL, "broyden sjac");
    double w[64];
    su_point(3, 40, -1.0, 1.0, w);
    check_tape(t, 1, TG_ALL, w, "broyden shess");
    tg_tape_free(t);
    t = su_luksan(30, 0);
    check_tape(t, 0, TG_ALL, NULL, "lv1 sjac");
    check_tape(t, 1, TG_ALL, w, "lv1 shess");
    tg_tape_free(t);
    t = su_mlp();
    check_tape(t, 0, 1, NULL, "mlp sjac theta");
    check_tape(t, 1, 1, w, "mlp shess theta");
    check_tape(t, 1, 0, NULL, "mlp shess x");
    tg_tape_free(t);
    t = su_branchy(10);
    check_tape(t, 0, TG_ALL, NULL, "branchy sjac");
    check_tape(t, 1, TG_ALL, w, "branchy shess");
    tg_tape_free(t);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        t = su_random_dag(seed, 8 + seed, 60, 1 + seed % 4);
        check_tape(t, 0, TG_ALL, NULL, "dag sjac");
        check_tape(t, 1, TG_ALL, w, "dag shess");
        tg_tape_free(t);
    }
}

/* the sparse Hessian tape grows with n (nnz and colours fixed), not n^2 */
Test(sparse_eval, sparse_tape_size_linear)
{
    size_t sz[2];
    for (int k = 0; k < 2; k++) {
        tg_tape *t = su_rosenbrock(k ? 800 : 400);
        tg_tape *d = tg_sparse_hessian_tape(t, TG_ALL);
        TU_TAPE_OK(d);
        sz[k] = tg_tape_size(d);
        tg_tape_free(d);
        tg_tape_free(t);
    }
    cr_expect(sz[1] < 2.1 * sz[0], "sizes %zu (n=400), %zu (n=800)", sz[0], sz[1]);
    cr_expect(sz[1] < 60 * 800, "size %zu at n=800", sz[1]);
}

Test(sparse_eval, sparse_tape_errors)
{
    tg_tape *d = tg_sparse_jacobian_tape(NULL, TG_ALL);
    cr_assert(d != NULL);
    cr_expect_eq(tg_tape_status(d), TG_ERR_ARG);
    tg_tape_free(d);
    tg_tape *t = su_rosenbrock(4);
    d = tg_sparse_hessian_tape(t, 5);
    cr_expect_eq(tg_tape_status(d), TG_ERR_ARG);
    tg_tape_free(d);
    tg_tape_free(t);
}

/* ---------------------------------------------------- workspaces, threads */

Test(sparse_eval, ws_calls_do_not_allocate)
{
    tg_tape *t = su_luksan(25, 0), *s1 = su_rosenbrock(25);
    tg_sparsity *sj = tg_jacobian_sparsity(t, TG_ALL), *sh = tg_hessian_sparsity(t, TG_ALL);
    tg_sparsity *sr = tg_hessian_sparsity(s1, TG_ALL);
    tg_workspace *w = tg_workspace_new(t), *w1 = tg_workspace_new(s1);
    double x[32], wt[32], vals[256], V[16 * 25], out[32 * 32];
    su_point(1, 25, -1.0, 1.0, x);
    su_point(2, 24, -1.0, 1.0, wt);
    su_point(3, 16 * 25, -1.0, 1.0, V);
    mem_fail_after(0);
    tg_status st[8] = {
        tg_sparse_jacobian_ws(t, w, sj, x, vals),
        tg_sparse_hessian_ws(t, w, sh, x, wt, vals),
        tg_sparse_hessian_ws(s1, w1, sr, x, NULL, vals),
        tg_jvp_multi_ws(t, w, TG_ALL, 16, x, V, out),
        tg_vjp_multi_ws(t, w, TG_ALL, 10, x, V, out),
        tg_hvp_multi_ws(s1, w1, TG_ALL, 16, x, V, out),
        tg_hessian_wrt_ws(s1, w1, 0, x, out),
        tg_jacobian_wrt_ws(t, w, 0, x, out),
    };
    mem_fail_after(-1);
    for (int k = 0; k < 8; k++)
        cr_expect_eq(st[k], TG_OK, "call %d allocated (status %d)", k, st[k]);
    tg_workspace_free(w);
    tg_workspace_free(w1);
    tg_sparsity_free(sj);
    tg_sparsity_free(sh);
    tg_sparsity_free(sr);
    tg_tape_free(t);
    tg_tape_free(s1);
}

typedef struct job {
    const tg_tape *t;
    const tg_sparsity *s;
    const double *x, *w;
    double vals[256];
    tg_status st;
} job;

static void *
run_job(void *p)
{
    job *j = p;
    for (int r = 0; r < 50 && j->st == TG_OK; r++)
        j->st = tg_sparse_hessian(j->t, j->s, j->x, j->w, j->vals);
    return NULL;
}

Test(sparse_eval, threads_share_tape_and_sparsity)
{
    tg_tape *t = su_luksan(40, 0);
    tg_sparsity *s = tg_hessian_sparsity(t, TG_ALL);
    double x[40], w[39], ref[256];
    su_point(4, 40, -1.0, 1.0, x);
    su_point(5, 39, -1.0, 1.0, w);
    cr_assert_eq(tg_sparse_hessian(t, s, x, w, ref), TG_OK);
    job jobs[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (job){ t, s, x, w, { 0 }, TG_OK };
        cr_assert_eq(pthread_create(&th[k], NULL, run_job, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        cr_assert_eq(jobs[k].st, TG_OK);
        for (size_t e = 0; e < tg_sparsity_nnz(s); e++)
            cr_assert(tu_same_bits(jobs[k].vals[e], ref[e]), "thread %d entry %zu", k, e);
    }
    tg_sparsity_free(s);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ out of memory */

/* Each constructor with its (k+1)-th allocation and all later ones failing:
 * NULL only where documented (sparsity objects), else an error state or
 * TG_ERR_NOMEM; success gives the unarmed result. */
Test(sparse_eval, out_of_memory)
{
    tg_tape *t = su_luksan(12, 0);
    double x[12], w[11], ref[128], got[128];
    su_point(1, 12, -1.0, 1.0, x);
    su_point(2, 11, -1.0, 1.0, w);
    tg_sparsity *s0 = tg_hessian_sparsity(t, TG_ALL);
    cr_assert_eq(tg_sparse_hessian(t, s0, x, w, ref), TG_OK);
    size_t nnz = tg_sparsity_nnz(s0);
    for (int kind = 0; kind < 5; kind++) {
        mem_fail_after(-1);
        long count = 0;
        for (long k = -1; k < count; k++) {
            mem_fail_after(k < 0 ? -1 : k);
            tg_sparsity *s = NULL;
            tg_tape *d = NULL;
            tg_status st = TG_OK;
            switch (kind) {
            case 0: s = tg_jacobian_sparsity(t, TG_ALL); break;
            case 1: s = tg_hessian_sparsity(t, 0); break;
            case 2: d = tg_sparse_jacobian_tape(t, TG_ALL); break;
            case 3: d = tg_sparse_hessian_tape(t, TG_ALL); break;
            default: {
                tg_tape *fresh = su_luksan(12, 0);          /* empty workspace pool */
                mem_fail_after(k < 0 ? -1 : k);
                memset(got, 0, sizeof got);
                st = tg_sparse_hessian(fresh, s0, x, w, got);
                mem_fail_after(-1);
                if (st == TG_OK)
                    for (size_t e = 0; e < nnz; e++)
                        cr_assert(tu_same_bits(got[e], ref[e]));
                else
                    cr_assert_eq(st, TG_ERR_NOMEM);
                tg_tape_free(fresh);
            } break;
            }
            long made = mem_fail_after(-1);
            if (k < 0)
                count = made;                               /* allocations of a clean run */
            if (kind <= 1 && s)
                cr_assert(tg_sparsity_status(s) == TG_OK || tg_sparsity_status(s) == TG_ERR_NOMEM);
            if (kind <= 1 && k < 0)
                cr_assert(s && tg_sparsity_status(s) == TG_OK);
            if (kind == 2 || kind == 3) {
                cr_assert(d || k >= 0, "NULL tape from a clean run");
                if (d && k >= 0)
                    cr_assert(tg_tape_status(d) == TG_OK || tg_tape_status(d) == TG_ERR_NOMEM,
                              "status %d", tg_tape_status(d));
                if (d && k < 0)
                    TU_TAPE_OK(d);
            }
            tg_sparsity_free(s);
            tg_tape_free(d);
        }
        cr_log_info("oom: kind %d: %ld k values", kind, count);
    }
    tg_sparsity_free(s0);
    tg_tape_free(t);
}
