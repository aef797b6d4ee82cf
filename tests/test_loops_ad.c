/* tests/test_loops_ad.c -- numeric derivatives through loops (issue 11,
 * part 3).  Oracle: the same function recorded flat (every loop unrolled
 * into scalar instructions by the same generator), whose derivatives the
 * rest of the suite checks against central differences and analytic
 * formulas.  Every numeric path -- gradient, VJP, JVP, Jacobian (forward
 * and reverse sweeps), HVP, Hessian, batch gradients, the _wrt and _multi
 * calls, the _ws variants -- on the looped tape must agree with the flat
 * tape to 1e-13 relative (NaN with NaN, Inf with the same Inf), on random
 * bodies (maps and scans, nested loops, size-0 blocks, operands shared
 * between applications), at ordinary points and at points with +-0,
 * +-Inf and NaN, and for scans under every checkpoint budget from one
 * snapshot to store-all; and several threads calling on one tape get the
 * results of a single thread. */
#include <pthread.h>

#include "testutil.h"

#include "loopgen.h"

/* Every vector-output path on looped (tl) and flat (tf) tapes at x. */
static void
check_vector(const tg_tape *tl, const tg_tape *tf, const double *x, tu_rng *r, const char *ctx)
{
    size_t n = tg_num_inputs(tl), m = tg_num_outputs(tl);
    cr_assert_eq(n, tg_num_inputs(tf));
    cr_assert_eq(m, tg_num_outputs(tf));
    double *a = dalloc(n * m + n + m), *b = dalloc(n * m + n + m);
    double *u = dalloc(10 * (n + m)), *wv = dalloc(10 * (n + m));
    for (size_t k = 0; k < 10 * (n + m); k++) {
        u[k] = tu_rng_range(r, -1, 1);
        wv[k] = tu_rng_range(r, -1, 1);
    }
    OK(tg_eval(tl, x, a));
    OK(tg_eval(tf, x, b));
    same("eval", ctx, a, b, m);
    OK(tg_jacobian(tl, x, a));
    OK(tg_jacobian(tf, x, b));
    same("jacobian", ctx, a, b, n * m);
    OK(tg_jvp(tl, x, u, a));
    OK(tg_jvp(tf, x, u, b));
    same("jvp", ctx, a, b, m);
    OK(tg_vjp(tl, x, wv, a));
    OK(tg_vjp(tf, x, wv, b));
    same("vjp", ctx, a, b, n);
    for (int blk = 0; blk < 2; blk++) {
        size_t nw = tg_input_block_size(tl, (size_t)blk);
        OK(tg_jacobian_wrt(tl, blk, x, a));
        OK(tg_jacobian_wrt(tf, blk, x, b));
        same("jacobian_wrt", ctx, a, b, nw * m);
        OK(tg_jvp_wrt(tl, blk, x, u, a));
        OK(tg_jvp_wrt(tf, blk, x, u, b));
        same("jvp_wrt", ctx, a, b, m);
        OK(tg_vjp_wrt(tl, blk, x, wv, a));
        OK(tg_vjp_wrt(tf, blk, x, wv, b));
        same("vjp_wrt", ctx, a, b, nw);
    }
    double *A = dalloc(10 * (n + m)), *B = dalloc(10 * (n + m));
    OK(tg_jvp_multi(tl, TG_ALL, 10, x, u, A));
    OK(tg_jvp_multi(tf, TG_ALL, 10, x, u, B));
    same("jvp_multi", ctx, A, B, 10 * m);
    OK(tg_vjp_multi(tl, TG_ALL, 10, x, wv, A));
    OK(tg_vjp_multi(tf, TG_ALL, 10, x, wv, B));
    same("vjp_multi", ctx, A, B, 10 * n);
    /* the _ws variants in a workspace sized for the tape */
    tg_workspace *w = tg_workspace_new(tl);
    cr_assert(w);
    OK(tg_jacobian_ws(tl, w, x, a));
    OK(tg_jacobian(tf, x, b));
    same("jacobian_ws", ctx, a, b, n * m);
    tg_workspace_free(w);
    free(A);
    free(B);
    free(a);
    free(b);
    free(u);
    free(wv);
}

/* Every scalar-output path. */
static void
check_scalar(const tg_tape *tl, const tg_tape *tf, const double *x, tu_rng *r, const char *ctx)
{
    size_t n = tg_num_inputs(tl);
    double *a = dalloc(n * n + n), *b = dalloc(n * n + n), *u = dalloc(3 * n);
    for (size_t k = 0; k < 3 * n; k++)
        u[k] = tu_rng_range(r, -1, 1);
    OK(tg_eval(tl, x, a));
    OK(tg_eval(tf, x, b));
    same("eval", ctx, a, b, 1);
    OK(tg_gradient(tl, x, a));
    OK(tg_gradient(tf, x, b));
    same("gradient", ctx, a, b, n);
    double one = 0.75;
    OK(tg_vjp(tl, x, &one, a));
    OK(tg_vjp(tf, x, &one, b));
    same("vjp (scalar)", ctx, a, b, n);
    OK(tg_hvp(tl, x, u, a));
    OK(tg_hvp(tf, x, u, b));
    same("hvp", ctx, a, b, n);
    OK(tg_hessian(tl, x, a));
    OK(tg_hessian(tf, x, b));
    same("hessian", ctx, a, b, n * n);
    for (int blk = 0; blk < 2; blk++) {
        size_t nw = tg_input_block_size(tl, (size_t)blk);
        OK(tg_gradient_wrt(tl, blk, x, a));
        OK(tg_gradient_wrt(tf, blk, x, b));
        same("gradient_wrt", ctx, a, b, nw);
        OK(tg_hvp_wrt(tl, blk, x, u, a));
        OK(tg_hvp_wrt(tf, blk, x, u, b));
        same("hvp_wrt", ctx, a, b, nw);
        OK(tg_hessian_wrt(tl, blk, x, a));
        OK(tg_hessian_wrt(tf, blk, x, b));
        same("hessian_wrt", ctx, a, b, nw * nw);
    }
    OK(tg_hvp_multi(tl, TG_ALL, 3, x, u, a));
    OK(tg_hvp_multi(tf, TG_ALL, 3, x, u, b));
    same("hvp_multi", ctx, a, b, 3 * n);
    /* batches: 11 points (a chunk of 8 and 3 single points) */
    size_t np = 11;
    double *X = dalloc(np * n), *GA = dalloc(np * n), *GB = dalloc(np * n);
    for (size_t p = 0; p < np; p++)
        for (size_t k = 0; k < n; k++)
            X[p * n + k] = p == 0 ? x[k] : x[k] + 0.1 * tu_rng_range(r, -1, 1);
    OK(tg_gradient_batch(tl, np, X, GA));
    OK(tg_gradient_batch(tf, np, X, GB));
    for (size_t p = 0; p < np; p++) {
        OK(tg_gradient(tl, X + p * n, a));
        same("gradient_batch vs gradient (looped)", ctx, GA + p * n, a, n);
        OK(tg_gradient(tf, X + p * n, b));
        same("gradient_batch vs gradient (flat)", ctx, GB + p * n, b, n);
    }
    same("gradient_batch", ctx, GA, GB, np * n);
    OK(tg_eval_batch(tl, np, X, GA));
    OK(tg_eval_batch(tf, np, X, GB));
    same("eval_batch", ctx, GA, GB, np);
    /* _ws in a workspace sized for the tape */
    tg_workspace *w = tg_workspace_new(tl);
    cr_assert(w);
    OK(tg_gradient_ws(tl, w, x, a));
    OK(tg_gradient(tf, x, b));
    same("gradient_ws", ctx, a, b, n);
    OK(tg_hvp_ws(tl, w, x, u, a));
    OK(tg_hvp(tf, x, u, b));
    same("hvp_ws", ctx, a, b, n);
    OK(tg_hessian_ws(tl, w, x, a));
    OK(tg_hessian(tf, x, b));
    same("hessian_ws", ctx, a, b, n * n);
    tg_workspace_free(w);
    free(X);
    free(GA);
    free(GB);
    free(a);
    free(b);
    free(u);
}

/* Both tapes of an outer function, every path, several points; scans
 * under several checkpoint budgets. */
static void
check_outer(const outer *o, tu_rng *r, const char *name)
{
    size_t n = (size_t)(o->na + o->nb);
    double *x = dalloc(n);
    for (int scalar = 0; scalar < 2; scalar++) {
        tg_tape *tl = record_outer(o, scalar, 0), *tf = record_outer(o, scalar, 1);
        /* the loop stays one instruction: the looped tape does not grow
         * with count * |body| */
        if (o->L->count > 4 && tg_tape_size(o->L->tape) > 8)
            cr_assert_lt(tg_tape_size(tl), tg_tape_size(tf), "%s: looped tape not smaller", name);
        uint64_t steps = (uint64_t)o->L->count;
        size_t budgets[] = { 0, 1, 2, 3, (size_t)(steps / 2 + 1), (size_t)steps, (size_t)steps + 5 };
        size_t nb = o->L->scan ? sizeof budgets / sizeof *budgets : 1;
        for (size_t bi = 0; bi < nb; bi++) {
            OK(tg_tape_set_checkpoints(tl, budgets[bi]));
            for (int pt = 0; pt < 3; pt++) {
                char ctx[160];
                snprintf(ctx, sizeof ctx, "%s, %s, budget %zu, point %d%s", name,
                         scalar ? "scalar" : "vector", budgets[bi], pt, pt == 2 ? " (specials)" : "");
                point(r, n, pt == 2, x);
                if (scalar)
                    check_scalar(tl, tf, x, r, ctx);
                else
                    check_vector(tl, tf, x, r, ctx);
            }
        }
        tg_tape_free(tl);
        tg_tape_free(tf);
    }
    free(x);
}

/* ------------------------------------------------------------------ tests */

Test(loops_ad, random_maps)
{
    tu_rng r = { 11 };
    random_map_trials(&r, 12, 19, check_outer);
}

/* Maps long enough for the wide chunks of the sweeps (64 applications per
 * body dispatch in values and adjoints, 8 and single ones for the rest, a
 * remainder as an overlapping full chunk): counts at and around the chunk
 * boundaries, params, ny > 1, specials (check_outer). */
Test(loops_ad, wide_maps)
{
    tu_rng r = { 29 };
    static const int counts[] = { 63, 64, 65, 80, 129, 1000 };
    for (int trial = 0; trial < 6; trial++) {
        int count = counts[trial];
        int nx = 1 + (int)tu_rng_below(&r, 2), np = (int)tu_rng_below(&r, 3);
        int ny = 1 + (int)tu_rng_below(&r, 2);
        lspec *L = random_loop(&r, 0, count, 0, nx, np, ny, 4 + (int)tu_rng_below(&r, 8), NULL);
        outer o = random_outer(&r, L, 3 + (int)tu_rng_below(&r, 3), 1 + (int)tu_rng_below(&r, 2));
        char name[64];
        snprintf(name, sizeof name, "wide map %d (count %d, nx %d, np %d, ny %d)", trial, count,
                 nx, np, ny);
        check_outer(&o, &r, name);
        outer_free(&o);
        loop_free(L);
    }
}

Test(loops_ad, random_scans)
{
    tu_rng r = { 23 };
    random_scan_trials(&r, 10, 24, check_outer);
}

Test(loops_ad, size_zero_blocks)
{
    tu_rng r = { 5 };
    each_size0_shape(&r, check_outer);
}

Test(loops_ad, nested_loops)
{
    tu_rng r = { 77 };
    each_nesting(&r, check_outer);
}

/* A long scan: a checkpointed gradient equals the store-all one and the
 * flat tape's, for budgets 1 .. store-all. */
Test(loops_ad, long_scan_budgets)
{
    tu_rng r = { 99 };
    lspec *L = random_loop(&r, 1, 300, 2, 1, 1, 1, 8, NULL);
    outer o = random_outer(&r, L, 5, 2);
    tg_tape *tl = record_outer(&o, 1, 0), *tf = record_outer(&o, 1, 1);
    size_t n = 7;
    double x[7], gl[7], gf[7], hl[49], hf[49];
    point(&r, n, 0, x);
    OK(tg_gradient(tf, x, gf));
    OK(tg_hessian(tf, x, hf));
    size_t budgets[] = { 1, 2, 3, 4, 7, 10, 17, 50, 299, 300, 1000, 0 };
    for (size_t bi = 0; bi < sizeof budgets / sizeof *budgets; bi++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "300 steps, budget %zu", budgets[bi]);
        OK(tg_tape_set_checkpoints(tl, budgets[bi]));
        OK(tg_gradient(tl, x, gl));
        same("gradient", ctx, gl, gf, n);
        OK(tg_hessian(tl, x, hl));
        same("hessian", ctx, hl, hf, n * n);
    }
    tg_tape_free(tl);
    tg_tape_free(tf);
    outer_free(&o);
    loop_free(L);
}

Test(loops_ad, checkpoint_option_errors)
{
    cr_assert_eq(tg_tape_set_checkpoints(NULL, 3), TG_ERR_ARG);
}

/* --------------------------------------------------------------- threads */

typedef struct job {
    const tg_tape *t;
    const double *x, *u, *g_ref, *h_ref;
    size_t n;
    int bad;
} job;

static void *
worker(void *arg)
{
    job *j = arg;
    double g[64], h[64];
    tg_workspace *w = tg_workspace_new(j->t);
    for (int it = 0; it < 20 && w; it++) {
        int use_ws = it % 2;
        tg_status s1 = use_ws ? tg_gradient_ws(j->t, w, j->x, g) : tg_gradient(j->t, j->x, g);
        tg_status s2 = use_ws ? tg_hvp_ws(j->t, w, j->x, j->u, h) : tg_hvp(j->t, j->x, j->u, h);
        if (s1 != TG_OK || s2 != TG_OK)
            j->bad = 1;
        for (size_t k = 0; k < j->n; k++)
            if (!agree(g[k], j->g_ref[k], 1.0) || !agree(h[k], j->h_ref[k], 1.0))
                j->bad = 1;
    }
    if (!w)
        j->bad = 1;
    tg_workspace_free(w);
    return NULL;
}

Test(loops_ad, threads_share_a_tape)
{
    tu_rng r = { 4242 };
    lspec *inner = random_loop(&r, 0, 5, 0, 1, 1, 1, 5, NULL);
    lspec *L = random_loop(&r, 1, 40, 2, 1, 1, 1, 6, inner);
    outer o = random_outer(&r, L, 6, 2);
    tg_tape *tl = record_outer(&o, 1, 0), *tf = record_outer(&o, 1, 1);
    OK(tg_tape_set_checkpoints(tl, 4));
    double x[8], u[8], g[8], h[8];
    point(&r, 8, 0, x);
    point(&r, 8, 0, u);
    OK(tg_gradient(tf, x, g));
    OK(tg_hvp(tf, x, u, h));
    enum { NT = 4 };
    pthread_t th[NT];
    job jobs[NT];
    for (int k = 0; k < NT; k++) {
        jobs[k] = (job){ tl, x, u, g, h, 8, 0 };
        cr_assert_eq(pthread_create(&th[k], NULL, worker, &jobs[k]), 0);
    }
    for (int k = 0; k < NT; k++) {
        pthread_join(th[k], NULL);
        cr_assert(!jobs[k].bad, "thread %d disagreed with the flat tape", k);
    }
    tg_tape_free(tl);
    tg_tape_free(tf);
    outer_free(&o);
    loop_free(L);
    loop_free(inner);
}

/* ------------------------------------------------- workspace sizing */

/* A workspace from tg_workspace_new(t) holds the loops' scratch too: no
 * _ws call on a looped tape allocates (the allocation funnel fails every
 * allocation after tg_workspace_new), for each checkpoint budget. */
#include "tape/alloc.h"

Test(loops_ad, workspace_covers_loops)
{
    tu_rng r = { 31337 };
    lspec *inner = random_loop(&r, 1, 3, 1, 1, 1, 1, 4, NULL);
    lspec *L = random_loop(&r, 1, 30, 2, 1, 1, 1, 6, inner);
    lspec *M = random_loop(&r, 0, 20, 0, 2, 1, 1, 6, NULL);
    lspec *loops[] = { L, M };
    for (int li = 0; li < 2; li++) {
        outer o = random_outer(&r, loops[li], 6, 2);
        tg_tape *ts = record_outer(&o, 1, 0), *tv = record_outer(&o, 0, 0);
        size_t n = tg_num_inputs(ts), m = tg_num_outputs(tv);
        double x[8], u[16], g[8], H[64], J[8 * 64], y[64], Wm[64];
        point(&r, n, 0, x);
        point(&r, n, 0, u);
        memcpy(u + n, u, n * sizeof *u);    /* tg_hvp_multi's second direction */
        for (size_t k = 0; k < m && k < 64; k++)
            Wm[k] = 0.5;
        size_t budgets[] = { 0, 1, 3, 30 };
        for (size_t bi = 0; bi < 4; bi++) {
            OK(tg_tape_set_checkpoints(ts, budgets[bi]));
            OK(tg_tape_set_checkpoints(tv, budgets[bi]));
            tg_workspace *ws = tg_workspace_new(ts), *wv = tg_workspace_new(tv);
            cr_assert(ws && wv);
            mem_fail_after(0);
            tg_status st[10] = {
                tg_gradient_ws(ts, ws, x, g), tg_hvp_ws(ts, ws, x, u, g),
                tg_hessian_ws(ts, ws, x, H), tg_vjp_ws(tv, wv, x, Wm, g),
                tg_jvp_ws(tv, wv, x, u, y), tg_jacobian_ws(tv, wv, x, J),
                tg_gradient_wrt_ws(ts, ws, 0, x, g), tg_hvp_multi_ws(ts, ws, TG_ALL, 2, x, u, H),
                tg_jvp_multi_ws(tv, wv, TG_ALL, 1, x, u, y), tg_vjp_multi_ws(tv, wv, TG_ALL, 1, x, Wm, g),
            };
            long made = mem_fail_after(-1);
            for (int k = 0; k < 10; k++)
                cr_assert_eq(st[k], TG_OK, "loop %d budget %zu call %d: %s", li, budgets[bi], k,
                             tg_last_error());
            cr_assert_eq(made, 0, "%ld allocations", made);
            tg_workspace_free(ws);
            tg_workspace_free(wv);
        }
        tg_tape_free(ts);
        tg_tape_free(tv);
        outer_free(&o);
    }
    loop_free(M);
    loop_free(L);
    loop_free(inner);
}
