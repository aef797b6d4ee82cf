/* tests/test_lazy.c -- the lazily built derivative tapes of tg_gradient and
 * tg_hvp (src/ad/lazy.h).  The oracle is the sweep itself, reached on the
 * same tape with tg_tape_set_lazy(t, 0): the lazy gradient must equal it up
 * to the sign of zeros (the promise of tapegen.h), the lazy HVP up to
 * rounding, on W1, an MLP, a Lorenz RK4 tape and every row of the
 * conventions table; threads racing to build, out of memory during the
 * build, _ws calls after it and recording after it are checked as well. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "ad/lazy.h"
#include "tape/alloc.h"
#include "testutil.h"
#include "convrows.h"

#define NX 24

/* extended Rosenbrock (W1) on NX inputs */
static tg_tape *
w1(void)
{
    tg_tape *t = tg_tape_new("w1");
    tg_var x[NX], f = { 0 };
    tg_input_vec(t, "x", NX, x);
    for (size_t i = 0; i + 1 < NX; i++) {
        tg_var a = tg_sub(x[i + 1], tg_mul(x[i], x[i])), b = tg_sub(1.0, x[i]);
        tg_var term = tg_add(tg_mul(100.0, tg_mul(a, a)), tg_mul(b, b));
        f = i ? tg_add(f, term) : term;
    }
    tg_output(t, "f", f);
    return t;
}

/* a 2-layer tanh MLP with its weights as inputs: NX = 4*4 + 4 + 4 */
static tg_tape *
mlp(void)
{
    tg_tape *t = tg_tape_new("mlp");
    tg_var p[NX], h[4];
    tg_input_vec(t, "p", NX, p);
    static const double in[4] = { 0.5, -1.25, 2.0, 0.125 };
    for (int j = 0; j < 4; j++) {
        tg_var s = p[16 + j];
        for (int i = 0; i < 4; i++)
            s = tg_add(s, tg_mul(p[4 * j + i], in[i]));
        h[j] = tg_tanh(s);
    }
    tg_output(t, "f", tg_tanh(tg_dot(4, h, p + 20)));
    return t;
}

/* 3 RK4 steps of the Lorenz system; inputs (x, y, z, sigma, rho, beta) */
static void
lorenz(tg_var *s, const tg_var *q, tg_var *d)
{
    d[0] = tg_mul(q[3], tg_sub(s[1], s[0]));
    d[1] = tg_sub(tg_mul(s[0], tg_sub(q[4], s[2])), s[1]);
    d[2] = tg_sub(tg_mul(s[0], s[1]), tg_mul(q[5], s[2]));
}

static tg_tape *
rk4(void)
{
    tg_tape *t = tg_tape_new("lorenz");
    tg_var q[6], s[3], k[4][3], u[3];
    tg_input_vec(t, "q", 6, q);
    for (int i = 0; i < 3; i++)
        s[i] = q[i];
    const double h = 0.01;
    for (int step = 0; step < 3; step++) {
        lorenz(s, q, k[0]);
        for (int st = 1; st < 4; st++) {
            double c = st < 3 ? h / 2 : h;
            for (int i = 0; i < 3; i++)
                u[i] = tg_add(s[i], tg_mul(c, k[st - 1][i]));
            lorenz(u, q, k[st]);
        }
        for (int i = 0; i < 3; i++) {
            tg_var sum = tg_add(tg_add(k[0][i], tg_mul(2.0, k[1][i])),
                                tg_add(tg_mul(2.0, k[2][i]), k[3][i]));
            s[i] = tg_add(s[i], tg_mul(h / 6, sum));
        }
    }
    tg_output(t, "f", tg_add(tg_mul(s[0], s[0]), tg_mul(s[1], s[2])));
    return t;
}

static void
point(size_t n, double *x, double *v, uint64_t seed)
{
    tu_rng r = { seed };
    for (size_t i = 0; i < n; i++) {
        x[i] = tu_rng_range(&r, -1.5, 1.5);
        v[i] = tu_rng_range(&r, -1.0, 1.0);
    }
}

/* Calls tg_gradient and tg_hvp until both lazy tapes exist. */
static void
warm(const tg_tape *t, const double *x, const double *v)
{
    size_t n = tg_num_inputs(t);
    double g[NX], hv[NX];
    for (int c = 0; c < AD_LAZY_AFTER; c++) {
        cr_assert_eq(tg_gradient(t, x, g), TG_OK);
        cr_assert_eq(tg_hvp(t, x, v, hv), TG_OK);
    }
    (void)n;
    cr_assert(ad_lazy_get(t, AD_LAZY_GRAD) != NULL, "no lazy gradient tape on %s",
              tg_tape_name(t));
    cr_assert(ad_lazy_get(t, AD_LAZY_HVP) != NULL, "no lazy HVP tape on %s", tg_tape_name(t));
}

/* The sweeps' results at (x, v), through the same tape with lazy off. */
static void
oracle(tg_tape *t, const double *x, const double *v, double *g, double *hv)
{
    cr_assert_eq(tg_tape_set_lazy(t, 0), TG_OK);
    cr_assert(ad_lazy_get(t, AD_LAZY_GRAD) == NULL);
    cr_assert_eq(tg_gradient(t, x, g), TG_OK);
    cr_assert_eq(tg_hvp(t, x, v, hv), TG_OK);
    cr_assert_eq(tg_tape_set_lazy(t, 1), TG_OK);
}

static void
agree(const char *what, size_t n, const double *g, const double *g0, const double *hv,
      const double *hv0)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert(tu_same_value(g[i], g0[i]), "%s: gradient[%zu] lazy %.17g, sweep %.17g",
                  what, i, g[i], g0[i]);
        cr_assert(tu_close(hv[i], hv0[i], 1e-13, 1e-300), "%s: hvp[%zu] lazy %.17g, sweep %.17g",
                  what, i, hv[i], hv0[i]);
    }
}

static void
check_tape(tg_tape *t)
{
    cr_assert_eq(tg_tape_status(t), TG_OK, "%s", tg_tape_error(t));
    size_t n = tg_num_inputs(t);
    double x[NX], v[NX], g[NX], hv[NX], g0[NX], hv0[NX];
    point(n, x, v, 7);
    warm(t, x, v);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        point(n, x, v, seed);
        oracle(t, x, v, g0, hv0);
        cr_assert_eq(tg_gradient(t, x, g), TG_OK);
        cr_assert_eq(tg_hvp(t, x, v, hv), TG_OK);
        agree(tg_tape_name(t), n, g, g0, hv, hv0);
    }
    tg_tape_free(t);
}

Test(lazy, w1_agrees_with_sweep) { check_tape(w1()); }
Test(lazy, mlp_agrees_with_sweep) { check_tape(mlp()); }
Test(lazy, lorenz_agrees_with_sweep) { check_tape(rk4()); }

/* Every row of the conventions table: lazy == sweep, and both match the
 * row's gradient. */
Test(lazy, conventions_rows)
{
    size_t np;
    cv_point *all = cv_all(&np);
    for (size_t p = 0; p < np; p++) {
        const cv_point *P = &all[p];
        const cv_expr *e = &cv_exprs[P->e];
        tg_tape *t = tg_tape_new("row");
        tg_var x[CV_NMAX];
        tg_input_vec(t, "x", e->n, x);
        tg_output(t, "f", e->rec(t, x));
        cr_assert_eq(tg_tape_status(t), TG_OK, "%s: %s", P->label, tg_tape_error(t));
        double v[CV_NMAX] = { 1.0, -0.5, 0.25 }, g[CV_NMAX], hv[CV_NMAX], g0[CV_NMAX],
               hv0[CV_NMAX];
        warm(t, P->x, v);
        oracle(t, P->x, v, g0, hv0);
        cr_assert_eq(tg_gradient(t, P->x, g), TG_OK);
        cr_assert_eq(tg_hvp(t, P->x, v, hv), TG_OK);
        agree(P->label, e->n, g, g0, hv, hv0);
        for (size_t i = 0; i < e->n; i++)
            cr_assert(cv_match(g[i], P->grad[i]), "%s: lazy gradient[%zu] %.17g, row %.17g",
                      P->label, i, g[i], P->grad[i]);
        tg_tape_free(t);
    }
    free(all);
}

/* Threads racing through the build: every result equals the sweep's. */
typedef struct race {
    const tg_tape *t;
    const double *x, *g0;
    int bad;
} race;

static void *
racer(void *p)
{
    race *r = p;
    double g[NX];
    for (int c = 0; c < 4 * AD_LAZY_AFTER; c++) {
        if (tg_gradient(r->t, r->x, g) != TG_OK)
            r->bad = 1;
        for (size_t i = 0; i < NX; i++)
            if (!tu_same_value(g[i], r->g0[i]))
                r->bad = 1;
    }
    return NULL;
}

Test(lazy, threads_race_to_build)
{
    for (int round = 0; round < 10; round++) {
        tg_tape *t = round % 2 ? mlp() : w1();
        double x[NX], v[NX], g0[NX], hv0[NX];
        point(NX, x, v, 3);
        oracle(t, x, v, g0, hv0);
        enum { T = 4 };
        pthread_t th[T];
        race r[T];
        for (int i = 0; i < T; i++) {
            r[i] = (race){ t, x, g0, 0 };
            cr_assert_eq(pthread_create(&th[i], NULL, racer, &r[i]), 0);
        }
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            cr_assert(!r[i].bad, "thread %d saw a wrong gradient", i);
        }
        cr_assert(ad_lazy_get(t, AD_LAZY_GRAD) != NULL);
        tg_tape_free(t);
    }
}

/* Out of memory at every allocation of the build: the call still succeeds
 * with the sweep's result, and no lazy tape is half made. */
Test(lazy, oom_during_build_falls_back)
{
    double x[NX], v[NX], g0[NX], hv0[NX], g[NX];
    point(NX, x, v, 5);
    int built = 0;
    for (long k = 0; !built; k++) {
        cr_assert(k < 100000, "the build never succeeded");
        tg_tape *t = w1();
        oracle(t, x, v, g0, hv0);
        for (int c = 0; c + 1 < AD_LAZY_AFTER; c++)
            cr_assert_eq(tg_gradient(t, x, g), TG_OK);
        mem_fail_after(k);
        tg_status s = tg_gradient(t, x, g);     /* the call that builds */
        mem_fail_after(-1);
        cr_assert_eq(s, TG_OK, "k = %ld: %s", k, tg_last_error());
        for (size_t i = 0; i < NX; i++)
            cr_assert(tu_same_value(g[i], g0[i]), "k = %ld: gradient[%zu]", k, i);
        built = ad_lazy_get(t, AD_LAZY_GRAD) != NULL;
        /* a failed build is not retried; the sweep keeps serving */
        cr_assert_eq(tg_gradient(t, x, g), TG_OK);
        for (size_t i = 0; i < NX; i++)
            cr_assert(tu_same_value(g[i], g0[i]));
        tg_tape_free(t);
    }
}

/* _ws calls: a workspace made after the build holds the lazy tape, and
 * neither it nor an older, smaller one allocates; results agree. */
Test(lazy, ws_calls_do_not_allocate)
{
    tg_tape *t = w1();
    double x[NX], v[NX], g0[NX], hv0[NX], g[NX], hv[NX];
    point(NX, x, v, 9);
    oracle(t, x, v, g0, hv0);
    tg_workspace *before = tg_workspace_new(t);
    warm(t, x, v);
    tg_workspace *after = tg_workspace_new(t);
    cr_assert(before && after);
    for (int k = 0; k < 2; k++) {
        tg_workspace *w = k ? after : before;
        mem_fail_after(-1);
        cr_assert_eq(tg_gradient_ws(t, w, x, g), TG_OK);
        cr_assert_eq(tg_hvp_ws(t, w, x, v, hv), TG_OK);
        long allocs = mem_fail_after(-1);
        cr_assert_eq(allocs, 0, "workspace %d: %ld allocations", k, allocs);
        agree("ws", NX, g, g0, hv, hv0);
    }
    tg_workspace_free(before);
    tg_workspace_free(after);
    tg_tape_free(t);
}

/* Recording into the tape after the build (or optimising it) changes its
 * shape: the old derivative tape is no longer used and a new one is built
 * for the new shape. */
Test(lazy, recording_invalidates)
{
    tg_tape *t = tg_tape_new("grow");
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_output(t, "f", tg_mul(x[0], tg_sin(x[1])));
    double p[2] = { 0.75, -0.5 }, v[2] = { 1.0, 2.0 }, g[2], g0[2], hv0[2];
    warm(t, p, v);
    const tg_tape *old = ad_lazy_get(t, AD_LAZY_GRAD);
    (void)tg_exp(tg_add(x[0], x[1]));       /* recorded after the build */
    cr_assert_eq(tg_tape_status(t), TG_OK);
    cr_assert(ad_lazy_get(t, AD_LAZY_GRAD) == NULL, "a stale lazy tape is still used");
    cr_assert_eq(tg_gradient(t, p, g), TG_OK);
    cr_assert(tu_close(g[0], sin(p[1]), 1e-15, 0) && tu_close(g[1], p[0] * cos(p[1]), 1e-15, 0));
    warm(t, p, v);
    cr_assert(ad_lazy_get(t, AD_LAZY_GRAD) != old);
    /* optimising drops the dead exp: back to the first shape, whose
     * derivative tape computes the same function (optimisation is exact) */
    cr_assert_eq(tg_tape_optimize(t, TG_OPT_BASIC), TG_OK);
    oracle(t, p, v, g0, hv0);
    warm(t, p, v);
    cr_assert_eq(tg_gradient(t, p, g), TG_OK);
    cr_assert(tu_same_value(g[0], g0[0]) && tu_same_value(g[1], g0[1]));
    tg_tape_free(t);
}

/* tg_gradient_batch through the lazy tape: every row equals the sweep's
 * gradient at that point (and the single-point lazy call bit for bit). */
Test(lazy, gradient_batch)
{
    tg_tape *t = w1();
    enum { P = 37 };
    double X[P * NX], G[P * NX], G0[P * NX], v[NX], g[NX];
    for (size_t p = 0; p < P; p++)
        point(NX, X + p * NX, v, 100 + p);
    cr_assert_eq(tg_tape_set_lazy(t, 0), TG_OK);
    cr_assert_eq(tg_gradient_batch(t, P, X, G0), TG_OK);
    cr_assert_eq(tg_tape_set_lazy(t, 1), TG_OK);
    warm(t, X, v);
    cr_assert_eq(tg_gradient_batch(t, P, X, G), TG_OK);
    for (size_t p = 0; p < P; p++) {
        cr_assert_eq(tg_gradient(t, X + p * NX, g), TG_OK);
        for (size_t i = 0; i < NX; i++) {
            cr_assert(tu_same_value(G[p * NX + i], G0[p * NX + i]), "point %zu [%zu]", p, i);
            cr_assert(tu_same_bits_nan(G[p * NX + i], g[i]), "point %zu [%zu]", p, i);
        }
    }
    tg_tape_free(t);
}
