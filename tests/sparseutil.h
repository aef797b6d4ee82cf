/* tests/sparseutil.h -- shared by the tests/test_sparse_*.c suites: the
 * acceptance-style functions (chained Rosenbrock W1, Broyden tridiagonal
 * W4, a tanh MLP, the Luksan-Vlcek 1 problem with its constraints, a
 * function full of select/min/max/abs, random sparse DAGs) and the dense
 * oracles the sparse results are checked against (tg_jacobian, and
 * tg_hessian of a wrapper tape computing w . y). */
#ifndef TAPEGEN_SPARSEUTIL_H
#define TAPEGEN_SPARSEUTIL_H

#include "recorders.h"
#include "testutil.h"

/* ------------------------------------------------------------ functions */

/* W1 and W4 (recorders.h), checked */
TU_UNUSED static tg_tape *su_rosenbrock(size_t n)
{
    tg_tape *t = tu_tape("rosen", 0);
    rec_rosenbrock(t, n);
    TU_TAPE_OK(t);
    return t;
}

TU_UNUSED static tg_tape *su_broyden(size_t n)
{
    tg_tape *t = tu_tape("broyden", 0);
    rec_broyden(t, n);
    TU_TAPE_OK(t);
    return t;
}

/* A tanh MLP 3 -> 5 -> 2 with blocks "x" (3) and "theta" (weights, biases);
 * outputs the 2 network outputs plus a scalar loss-like sum of squares. */
enum { SU_MLP_IN = 3, SU_MLP_H = 5, SU_MLP_OUT = 2,
       SU_MLP_NP = SU_MLP_H * SU_MLP_IN + SU_MLP_H + SU_MLP_OUT * SU_MLP_H + SU_MLP_OUT };
TU_UNUSED static tg_tape *su_mlp(void)
{
    tg_tape *t = tu_tape("mlp", 0);
    tg_var x[SU_MLP_IN], th[SU_MLP_NP], h[SU_MLP_H], y[SU_MLP_OUT + 1];
    tg_input_vec(t, "x", SU_MLP_IN, x);
    tg_input_vec(t, "theta", SU_MLP_NP, th);
    size_t k = 0;
    for (int i = 0; i < SU_MLP_H; i++) {
        tg_var s = th[SU_MLP_H * SU_MLP_IN + i];
        for (int j = 0; j < SU_MLP_IN; j++)
            s = tg_add(s, tg_mul(th[k++], x[j]));
        h[i] = tg_tanh(s);
    }
    k = SU_MLP_H * SU_MLP_IN + SU_MLP_H;
    for (int o = 0; o < SU_MLP_OUT; o++) {
        tg_var s = th[SU_MLP_NP - SU_MLP_OUT + o];
        for (int i = 0; i < SU_MLP_H; i++)
            s = tg_add(s, tg_mul(th[k++], h[i]));
        y[o] = s;
    }
    y[SU_MLP_OUT] = tg_add(tg_mul(y[0], y[0]), tg_mul(y[1], y[1]));
    tg_output_vec(t, "y", SU_MLP_OUT + 1, y);
    TU_TAPE_OK(t);
    return t;
}

/* Luksan-Vlcek 1 (Ipopt's LuksanVlcek1): objective and its n-2 equality
 * constraints as outputs [f, c_0 .. c_{n-3}] of one tape (block "x").  With
 * lagrangian != 0: one scalar output sigma f + lambda . c, blocks "x",
 * "sigma" (1) and "lambda" (n-2), so sigma and lambda are parameters. */
TU_UNUSED static tg_tape *su_luksan(size_t n, int lagrangian)
{
    tg_tape *t = tu_tape(lagrangian ? "lv1_lag" : "lv1", 0);
    tg_var *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *lam = malloc(n * sizeof *lam);
    tg_var sigma = { 0 };
    tg_input_vec(t, "x", n, x);
    if (lagrangian) {
        sigma = tg_input(t, "sigma");
        tg_input_vec(t, "lambda", n - 2, lam);
    }
    tg_var f = { 0 };
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var a = tg_sub(tg_mul(x[i], x[i]), x[i + 1]), b = tg_sub(x[i], 1.0);
        tg_var term = tg_add(tg_mul(100.0, tg_mul(a, a)), tg_mul(b, b));
        f = i == 0 ? term : tg_add(f, term);
    }
    y[0] = f;
    for (size_t k = 0; k + 2 < n; k++) {
        tg_var x1 = x[k + 1], x2 = x[k + 2];
        tg_var c = tg_add(tg_mul(3.0, tg_mul(x1, tg_mul(x1, x1))), tg_mul(2.0, x2));
        c = tg_sub(c, 5.0);
        c = tg_add(c, tg_mul(tg_sin(tg_sub(x1, x2)), tg_sin(tg_add(x1, x2))));
        c = tg_add(c, tg_mul(4.0, x1));
        c = tg_sub(c, tg_mul(x[k], tg_exp(tg_sub(x[k], x1))));
        y[k + 1] = tg_sub(c, 3.0);
    }
    if (lagrangian) {
        tg_var L = tg_mul(sigma, y[0]);
        for (size_t k = 0; k + 2 < n; k++)
            L = tg_add(L, tg_mul(lam[k], y[k + 1]));
        tg_output(t, "L", L);
    } else {
        tg_output_vec(t, "y", n - 1, y);
    }
    free(x);
    free(y);
    free(lam);
    TU_TAPE_OK(t);
    return t;
}

/* Branches and kinks: select (both branches structural), comparisons
 * (no derivative), min, max, abs, floor, hypot, atan2, pow, division. */
TU_UNUSED static tg_tape *su_branchy(size_t n)
{
    tg_tape *t = tu_tape("branchy", 0);
    tg_var *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < n; i++) {
        tg_var a = x[i], b = x[(i + 1) % n], c = x[(i + 3) % n];
        tg_var s = tg_select(tg_gt(a, b), tg_mul(a, c), tg_exp(b));
        tg_var m = tg_add(tg_min(a, tg_mul(b, b)), tg_max(tg_abs(c), tg_sin(a)));
        tg_var k = tg_mul(tg_lt(c, 0.0), tg_floor(tg_mul(a, 3.0)));   /* no second order */
        tg_var h = tg_add(tg_hypot(a, c), tg_atan2(b, tg_add(tg_abs(a), 1.0)));
        tg_var p = tg_div(tg_pow(tg_add(tg_mul(a, a), 1.0), tg_mul(0.5, b)), tg_add(tg_mul(c, c), 2.0));
        y[i] = tg_add(tg_add(tg_mul(s, m), k), tg_add(h, p));
    }
    tg_output_vec(t, "y", n, y);
    free(x);
    free(y);
    TU_TAPE_OK(t);
    return t;
}

/* A random sparse DAG over n inputs: each node applies a random op to
 * nearby earlier nodes (so the derivatives stay sparse), with safe domains
 * (logs and roots of positive arguments); m outputs from the last nodes. */
TU_UNUSED static tg_tape *su_random_dag(uint64_t seed, size_t n, size_t nodes, size_t m)
{
    tu_rng r = { seed };
    tg_tape *t = tu_tape("dag", 0);
    tg_var *v = malloc((n + nodes) * sizeof *v);
    tg_input_vec(t, "x", n, v);
    for (size_t k = n; k < n + nodes; k++) {
        size_t win = 6;
        tg_var a = v[k - 1 - tu_rng_below(&r, k < win ? k : win)];
        tg_var b = v[tu_rng_below(&r, k)];
        if (tu_rng_below(&r, 3))
            b = v[k - 1 - tu_rng_below(&r, k < win ? k : win)];
        tg_var z;
        switch (tu_rng_below(&r, 14)) {
        case 0: z = tg_add(a, b); break;
        case 1: z = tg_sub(a, b); break;
        case 2: z = tg_mul(a, b); break;
        case 3: z = tg_div(a, tg_add(tg_mul(b, b), 1.0)); break;
        case 4: z = tg_sin(a); break;
        case 5: z = tg_exp(tg_mul(0.1, a)); break;
        case 6: z = tg_log(tg_add(tg_mul(a, a), 1.0)); break;
        case 7: z = tg_select(tg_lt(a, b), tg_mul(a, 2.0), tg_mul(b, a)); break;
        case 8: z = tg_max(a, b); break;
        case 9: z = tg_tanh(tg_add(a, b)); break;
        case 10: z = tg_mul(a, 0.5); break;
        case 11: z = tg_hypot(a, b); break;
        case 12: z = tg_sqrt(tg_add(tg_mul(a, a), 1.0)); break;
        default: z = tg_abs(tg_sub(a, b)); break;
        }
        v[k] = z;
    }
    tg_output_vec(t, "y", m, v + n + nodes - m);
    free(v);
    TU_TAPE_OK(t);
    return t;
}

/* --------------------------------------------------------------- oracles */

/* Dense Jacobian of t w.r.t. inputs [lo, lo+nw) at x: m x nw. */
TU_UNUSED static double *su_dense_jacobian(const tg_tape *t, size_t lo, size_t nw, const double *x)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *J = malloc((n * m + 1) * sizeof *J), *Jw = malloc((nw * m + 1) * sizeof *Jw);
    cr_assert(J && Jw);
    cr_assert_eq(tg_jacobian(t, x, J), TG_OK, "%s", tg_last_error());
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < nw; j++)
            Jw[i * nw + j] = J[i * n + lo + j];
    free(J);
    return Jw;
}

/* Dense Hessian of w . y (w NULL: ones) w.r.t. inputs [lo, lo+nw) at x:
 * tg_hessian of a wrapper tape that calls t and dots its outputs with a
 * weight block (for m == 1 and w NULL, tg_hessian of t itself). */
TU_UNUSED static double *su_dense_hessian(const tg_tape *t, size_t lo, size_t nw, const double *x,
                                          const double *w)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *H = malloc(((n + m) * (n + m) + 1) * sizeof *H), *Hw = malloc((nw * nw + 1) * sizeof *Hw);
    cr_assert(H && Hw);
    size_t nn = n;
    if (m == 1 && !w) {
        cr_assert_eq(tg_hessian(t, x, H), TG_OK, "%s", tg_last_error());
    } else {
        tg_tape *d = tu_tape("weighted", 0);
        tg_var *in = malloc((n + 1) * sizeof *in), *y = malloc((m + 1) * sizeof *y);
        tg_var *wv = malloc((m + 1) * sizeof *wv);
        tg_input_vec(d, "in", n, in);
        tg_input_vec(d, "wts", m, wv);
        tg_call(d, t, in, y);
        tg_output(d, "s", tg_dot(m, wv, y));
        TU_TAPE_OK(d);
        double *xw = malloc((n + m) * sizeof *xw);
        memcpy(xw, x, n * sizeof *xw);
        for (size_t j = 0; j < m; j++)
            xw[n + j] = w ? w[j] : 1.0;
        cr_assert_eq(tg_hessian(d, xw, H), TG_OK, "%s", tg_last_error());
        nn = n + m;
        free(xw);
        free(in);
        free(y);
        free(wv);
        tg_tape_free(d);
    }
    for (size_t i = 0; i < nw; i++)
        for (size_t j = 0; j < nw; j++)
            Hw[i * nw + j] = H[(lo + i) * nn + lo + j];
    free(H);
    return Hw;
}

/* |a - b| <= 1e-13 max(|b|, scale): relative to the entry, or to the
 * matrix's magnitude for entries that are zero up to cancellation */
TU_UNUSED static int su_agree(double a, double b, double scale)
{
    if (a == b)
        return 1;
    if (isnan(a) || isnan(b) || isinf(a) || isinf(b))
        return isnan(a) && isnan(b);
    double s = fabs(b) > scale ? fabs(b) : scale;
    return fabs(a - b) <= 1e-13 * s;
}

TU_UNUSED static double su_maxabs(const double *a, size_t len)
{
    double mx = 0;
    for (size_t k = 0; k < len; k++)
        mx = fabs(a[k]) > mx ? fabs(a[k]) : mx;
    return mx;
}

TU_UNUSED static void su_point(uint64_t seed, size_t n, double lo, double hi, double *x)
{
    tu_rng r = { seed };
    for (size_t k = 0; k < n; k++)
        x[k] = tu_rng_range(&r, lo, hi);
}

/* ------------------------------------------------------------- checkers */

/* [lo, lo + nw) selected by wrt */
TU_UNUSED static void su_wrt_range(const tg_tape *t, int wrt, size_t *lo, size_t *nw)
{
    *lo = wrt == TG_ALL ? 0 : tg_input_block_offset(t, (size_t)wrt);
    *nw = wrt == TG_ALL ? tg_num_inputs(t) : tg_input_block_size(t, (size_t)wrt);
}

/* Checks s against the dense oracle at npts random points (inputs drawn
 * from [xlo, xhi)): entries sorted by row then column, unique, in range
 * (lower triangle for Hessians); no dense nonzero outside the pattern;
 * sparse values equal to the dense ones to 1e-13 relative.  w: weights
 * for Hessians (NULL: ones).  Returns the sparsity (caller frees). */
TU_UNUSED static tg_sparsity *su_check(const tg_tape *t, int hessian, int wrt, const double *w,
                                       int npts, double xlo, double xhi, const char *what)
{
    size_t lo, nw, n = tg_num_inputs(t), m = tg_num_outputs(t);
    su_wrt_range(t, wrt, &lo, &nw);
    tg_sparsity *s = hessian ? tg_hessian_sparsity(t, wrt) : tg_jacobian_sparsity(t, wrt);
    cr_assert(s != NULL);
    cr_assert_eq(tg_sparsity_status(s), TG_OK, "%s: %s", what, tg_sparsity_error(s));
    cr_assert_str_eq(tg_sparsity_error(s), "");
    size_t nnz = tg_sparsity_nnz(s), nr = hessian ? nw : m;
    const uint32_t *R = tg_sparsity_rows(s), *C = tg_sparsity_cols(s);
    cr_assert(R && C, "%s: NULL rows/cols", what);
    unsigned char *in = calloc(nr * nw + 1, 1);
    for (size_t e = 0; e < nnz; e++) {
        cr_assert(R[e] < nr && C[e] < nw, "%s: entry %zu (%u, %u) out of range", what, e, R[e], C[e]);
        if (hessian)
            cr_assert(R[e] >= C[e], "%s: entry (%u, %u) above the diagonal", what, R[e], C[e]);
        if (e > 0)
            cr_assert(R[e - 1] < R[e] || (R[e - 1] == R[e] && C[e - 1] < C[e]),
                      "%s: entries %zu, %zu not sorted/unique", what, e - 1, e);
        in[(size_t)R[e] * nw + C[e]] = 1;
    }
    double *x = malloc((n + 1) * sizeof *x), *vals = malloc((nnz + 1) * sizeof *vals);
    for (int p = 0; p < npts; p++) {
        su_point(1000 + (uint64_t)p, n, xlo, xhi, x);
        double *D = hessian ? su_dense_hessian(t, lo, nw, x, w) : su_dense_jacobian(t, lo, nw, x);
        double scale = su_maxabs(D, nr * nw);
        for (size_t i = 0; i < nr; i++)
            for (size_t j = 0; j < (hessian ? i + 1 : nw); j++)
                cr_assert(D[i * nw + j] == 0.0 || in[i * nw + j],
                          "%s: dense (%zu, %zu) = %g is missing from the pattern", what, i, j,
                          D[i * nw + j]);
        tg_status st = hessian ? tg_sparse_hessian(t, s, x, w, vals) : tg_sparse_jacobian(t, s, x, vals);
        cr_assert_eq(st, TG_OK, "%s: %s", what, tg_last_error());
        for (size_t e = 0; e < nnz; e++) {
            double want = D[(size_t)R[e] * nw + C[e]];
            cr_assert(su_agree(vals[e], want, 1e-3 * scale),
                      "%s: point %d entry (%u, %u): sparse %.17g, dense %.17g", what, p, R[e], C[e],
                      vals[e], want);
        }
        free(D);
    }
    free(x);
    free(vals);
    free(in);
    return s;
}

#endif
