/* tests/test_conventions.c -- every row of the table in docs/conventions.md
 * "Derivatives at special points" (the shared table tests/convrows.h, one
 * test per expression), and global rules 1 (absolute zero) and 3
 * (record-time values never decide structure), through every numeric path:
 * tg_eval, tg_gradient, tg_jacobian, tg_jvp, tg_vjp, their _ws variants,
 * tg_eval_batch / tg_gradient_batch, and tg_hvp / tg_hessian where the row
 * states a second derivative; and through the derivative tapes
 * (tg_gradient_tape, tg_jacobian_tape, tg_jvp_tape, tg_vjp_tape,
 * tg_hessian_tape, tg_hvp_tape) evaluated by the interpreter.  Each row is
 * recorded twice: on a default tape (folding + CSE) and on a TG_NO_FOLD |
 * TG_NO_CSE tape; both must obey it. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "convrows.h"

#define NMAX 4

static const double INF = INFINITY;

enum { SIGN = 1 /* also check the sign bit of the value */ };

static tg_tape *record(const char *label, unsigned flags, size_t n, cv_rec rec)
{
    tg_tape *t = tu_tape("row", flags);
    tg_var x[NMAX];
    tg_input_vec(t, "x", n, x);
    tg_output(t, "y", rec(t, x));
    cr_assert(tg_tape_status(t) == TG_OK, "%s: recording failed: %s", label, tg_tape_error(t));
    return t;
}

/* The same row through the derivative tapes (evaluated by the interpreter):
 * tg_gradient_tape, tg_jacobian_tape, tg_jvp_tape, tg_vjp_tape, and
 * tg_hessian_tape / tg_hvp_tape where a second derivative is given. */
static tg_tape *dtape(tg_tape *(*make)(const tg_tape *, int), const tg_tape *t, const char *kind,
                      const char *where)
{
    tg_tape *d = make(t, TG_ALL);
    cr_assert(d != NULL, "%s: %s returned NULL", where, kind);
    cr_assert(tg_tape_status(d) == TG_OK, "%s: %s in error state: %s", where, kind,
              tg_tape_error(d));
    return d;
}

static void check_derivative_tapes(const tg_tape *t, const char *where, size_t n,
                                   const double *x, const double *grad, const double *hess)
{
    double in[2 * NMAX], out[NMAX * NMAX];
    memcpy(in, x, n * sizeof *x);

    tg_tape *g = dtape(tg_gradient_tape, t, "tg_gradient_tape", where);
    TU_OK(tg_eval(g, in, out));
    for (size_t j = 0; j < n; j++)
        cr_expect(cv_match(out[j], grad[j]), "%s: gradient tape d/dx%zu = %s, expected %s",
                  where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
    tg_tape_free(g);

    g = dtape(tg_jacobian_tape, t, "tg_jacobian_tape", where);
    TU_OK(tg_eval(g, in, out));
    for (size_t j = 0; j < n; j++)
        cr_expect(cv_match(out[j], grad[j]), "%s: jacobian tape J[0][%zu] = %s, expected %s",
                  where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
    tg_tape_free(g);

    g = dtape(tg_jvp_tape, t, "tg_jvp_tape", where);
    cr_expect_eq(tg_num_inputs(g), 2 * n);
    for (size_t d = 0; d < n; d++) {
        for (size_t j = 0; j < n; j++)
            in[n + j] = j == d ? 1.0 : 0.0;
        TU_OK(tg_eval(g, in, out));
        cr_expect(cv_match(out[0], grad[d]), "%s: jvp tape with v = e%zu gives %s, expected %s",
                  where, d, tu_d(out[0]).s, tu_d(grad[d]).s);
    }
    tg_tape_free(g);

    g = dtape(tg_vjp_tape, t, "tg_vjp_tape", where);
    cr_expect_eq(tg_num_inputs(g), n + 1);
    for (int rep = 0; rep < 2; rep++) {
        in[n] = rep ? 0.0 : 1.0;
        TU_OK(tg_eval(g, in, out));
        for (size_t j = 0; j < n; j++) {
            double want = rep ? 0.0 : grad[j];
            cr_expect(cv_match(out[j], want), "%s: vjp tape with w = %g: d/dx%zu = %s, "
                      "expected %s", where, in[n], j, tu_d(out[j]).s, tu_d(want).s);
        }
    }
    tg_tape_free(g);

    if (!hess)
        return;
    g = dtape(tg_hessian_tape, t, "tg_hessian_tape", where);
    TU_OK(tg_eval(g, in, out));
    for (size_t k = 0; k < n * n; k++)
        cr_expect(cv_match(out[k], hess[k]), "%s: hessian tape H[%zu][%zu] = %s, expected %s",
                  where, k / n, k % n, tu_d(out[k]).s, tu_d(hess[k]).s);
    tg_tape_free(g);

    g = dtape(tg_hvp_tape, t, "tg_hvp_tape", where);
    for (size_t d = 0; d < n; d++) {
        for (size_t j = 0; j < n; j++)
            in[n + j] = j == d ? 1.0 : 0.0;
        TU_OK(tg_eval(g, in, out));
        for (size_t i = 0; i < n; i++)
            cr_expect(cv_match(out[i], hess[i * n + d]),
                      "%s: hvp tape with v = e%zu: [%zu] = %s, expected %s", where, d, i,
                      tu_d(out[i]).s, tu_d(hess[i * n + d]).s);
    }
    tg_tape_free(g);
}

/* Checks one row at one point on one tape, every path. */
static void check_tape(const tg_tape *t, const char *label, const char *tk, size_t n,
                       const double *x, double value, const double *grad, const double *hess,
                       unsigned opts)
{
    double y[1], yws[1], g[NMAX], gws[NMAX], J[NMAX], jv[1], wj[NMAX];
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws != NULL);
    char where[200];
    {
        int k = snprintf(where, sizeof where, "%s [%s tape] at (", label, tk);
        for (size_t j = 0; j < n; j++)
            k += snprintf(where + k, sizeof where - (size_t)k, "%s%.17g", j ? ", " : "", x[j]);
        snprintf(where + k, sizeof where - (size_t)k, ")");
    }

    TU_OK(tg_eval(t, x, y));
    cr_expect(cv_match(y[0], value), "%s: tg_eval = %s, expected %s", where, tu_d(y[0]).s,
              tu_d(value).s);
    if (opts & SIGN)
        cr_expect(!!signbit(y[0]) == !!signbit(value), "%s: tg_eval = %s has the wrong sign bit",
                  where, tu_d(y[0]).s);
    TU_OK(tg_eval_ws(t, ws, x, yws));
    cr_expect(tu_same_bits_nan(yws[0], y[0]), "%s: tg_eval_ws = %s, tg_eval = %s", where,
              tu_d(yws[0]).s, tu_d(y[0]).s);

    TU_OK(tg_gradient(t, x, g));
    TU_OK(tg_gradient_ws(t, ws, x, gws));
    TU_OK(tg_jacobian(t, x, J));
    for (size_t j = 0; j < n; j++) {
        cr_expect(cv_match(g[j], grad[j]), "%s: tg_gradient d/dx%zu = %s, expected %s", where,
                  j, tu_d(g[j]).s, tu_d(grad[j]).s);
        cr_expect(tu_same_bits_nan(gws[j], g[j]), "%s: tg_gradient_ws d/dx%zu = %s, tg_gradient %s",
                  where, j, tu_d(gws[j]).s, tu_d(g[j]).s);
        cr_expect(cv_match(J[j], grad[j]), "%s: tg_jacobian J[0][%zu] = %s, expected %s", where,
                  j, tu_d(J[j]).s, tu_d(grad[j]).s);
    }
    /* jvp along each unit vector gives that partial alone (zero tangents
     * never mix in the other partials, rule 1) */
    for (size_t d = 0; d < n; d++) {
        double v[NMAX] = { 0 };
        v[d] = 1.0;
        TU_OK(tg_jvp(t, x, v, jv));
        cr_expect(cv_match(jv[0], grad[d]), "%s: tg_jvp with v = e%zu gives %s, expected %s",
                  where, d, tu_d(jv[0]).s, tu_d(grad[d]).s);
        double jvws[1];
        TU_OK(tg_jvp_ws(t, ws, x, v, jvws));
        cr_expect(tu_same_bits_nan(jvws[0], jv[0]), "%s: tg_jvp_ws %s vs tg_jvp %s", where,
                  tu_d(jvws[0]).s, tu_d(jv[0]).s);
    }
    if (n > 1) {
        double v[NMAX], want = 0.0;
        for (size_t j = 0; j < n; j++) {
            v[j] = 1.0;
            want += grad[j];
        }
        TU_OK(tg_jvp(t, x, v, jv));
        cr_expect(cv_match(jv[0], want), "%s: tg_jvp with v = ones gives %s, expected %s",
                  where, tu_d(jv[0]).s, tu_d(want).s);
    }
    /* vjp with w = 1 and w = 2 (exact scaling), w = 0 (all zero) */
    for (int rep = 0; rep < 3; rep++) {
        double w[1] = { rep == 0 ? 1.0 : rep == 1 ? 2.0 : 0.0 }, wjws[NMAX];
        TU_OK(tg_vjp(t, x, w, wj));
        TU_OK(tg_vjp_ws(t, ws, x, w, wjws));
        for (size_t j = 0; j < n; j++) {
            double want = tu_azmul(w[0], grad[j]);
            cr_expect(cv_match(wj[j], want), "%s: tg_vjp with w = %g: d/dx%zu = %s, expected %s",
                      where, w[0], j, tu_d(wj[j]).s, tu_d(want).s);
            cr_expect(tu_same_bits_nan(wjws[j], wj[j]), "%s: tg_vjp_ws %s vs tg_vjp %s", where,
                      tu_d(wjws[j]).s, tu_d(wj[j]).s);
        }
    }
    /* batches of 3 copies of the point, bitwise equal to the single calls
     * (on the default tape only: the batch path is per-tape-independent) */
    if (strcmp(tk, "default") == 0) {
        double X[3 * NMAX], Y[3], G[3 * NMAX];
        for (size_t p = 0; p < 3; p++)
            memcpy(X + p * n, x, n * sizeof *x);
        TU_OK(tg_eval_batch(t, 3, X, Y));
        TU_OK(tg_gradient_batch(t, 3, X, G));
        for (size_t p = 0; p < 3; p++) {
            cr_expect(tu_same_bits_nan(Y[p], y[0]), "%s: tg_eval_batch[%zu] = %s, tg_eval %s",
                      where, p, tu_d(Y[p]).s, tu_d(y[0]).s);
            for (size_t j = 0; j < n; j++)
                cr_expect(tu_same_bits_nan(G[p * n + j], g[j]),
                          "%s: tg_gradient_batch[%zu] d/dx%zu = %s, tg_gradient %s", where, p, j,
                          tu_d(G[p * n + j]).s, tu_d(g[j]).s);
        }
    }
    if (hess) {
        double H[NMAX * NMAX], Hws[NMAX * NMAX], hv[NMAX];
        TU_OK(tg_hessian(t, x, H));
        TU_OK(tg_hessian_ws(t, ws, x, Hws));
        for (size_t k = 0; k < n * n; k++) {
            cr_expect(cv_match(H[k], hess[k]), "%s: tg_hessian H[%zu][%zu] = %s, expected %s",
                      where, k / n, k % n, tu_d(H[k]).s, tu_d(hess[k]).s);
            cr_expect(tu_same_bits_nan(Hws[k], H[k]), "%s: tg_hessian_ws %s vs %s", where,
                      tu_d(Hws[k]).s, tu_d(H[k]).s);
        }
        for (size_t d = 0; d < n; d++) {
            double v[NMAX] = { 0 };
            v[d] = 1.0;
            TU_OK(tg_hvp(t, x, v, hv));
            for (size_t i = 0; i < n; i++)
                cr_expect(cv_match(hv[i], hess[i * n + d]),
                          "%s: tg_hvp with v = e%zu: hv[%zu] = %s, expected %s", where, d, i,
                          tu_d(hv[i]).s, tu_d(hess[i * n + d]).s);
            double hvws[NMAX];
            TU_OK(tg_hvp_ws(t, ws, x, v, hvws));
            for (size_t i = 0; i < n; i++)
                cr_expect(tu_same_bits_nan(hvws[i], hv[i]), "%s: tg_hvp_ws %s vs %s", where,
                          tu_d(hvws[i]).s, tu_d(hv[i]).s);
        }
    }
    check_derivative_tapes(t, where, n, x, grad, hess);
    tg_workspace_free(ws);
}

/* One row at one point: on a default tape and on an unoptimised one. */
static void row(const char *label, size_t n, cv_rec rec, const double *x, double value,
                const double *grad, const double *hess, unsigned opts)
{
    static const unsigned flags[2] = { 0, TG_NO_FOLD | TG_NO_CSE };
    static const char *names[2] = { "default", "no-fold" };
    for (int k = 0; k < 2; k++) {
        tg_tape *t = record(label, flags[k], n, rec);
        check_tape(t, label, names[k], n, x, value, grad, hess, opts);
        tg_tape_free(t);
    }
}

/* Shorthands for 1-input rows. */
static void row1(const char *label, cv_rec rec, double x, double value, double d)
{
    row(label, 1, rec, &x, value, &d, NULL, 0);
}
static void row1h(const char *label, cv_rec rec, double x, double value, double d, double dd)
{
    row(label, 1, rec, &x, value, &d, &dd, 0);
}

/* ------------------------------------------------------------------ rows */

/* Every point of every expression of the shared table (tests/convrows.h),
 * one test per expression. */
ParameterizedTestParameters(conventions, every_row)
{
    return cr_make_param_array(int, (int *)cv_expr_ids, CV_NEXPR);
}

ParameterizedTest(int *ep, conventions, every_row)
{
    const cv_expr *e = &cv_exprs[*ep];
    size_t np, rows = 0;
    cv_point *all = cv_all(&np);
    for (size_t p = 0; p < np; p++) {
        const cv_point *P = &all[p];
        if (P->e != *ep)
            continue;
        row(P->label, e->n, e->rec, P->x, P->value, P->grad, P->has_hess ? P->hess : NULL,
            P->sign ? SIGN : 0);
        rows++;
    }
    free(all);
    cr_expect(rows > 0, "expression %s has no point in the table", e->id);
}

/* The premises some rows rest on. */
Test(conventions, row_premises)
{
    double a = 1e-200, b = 1e-200;
    cr_assert(isfinite(-(a / b) / b) && !isfinite(a / (b * b)), "premise: a/b^2 overflows");
    double h = hypot(1e200, 1e200);
    cr_assert(tu_close(h, 1.4142135623730951e200, 1e-15, 0));
    cr_assert(tu_close((1e200 / h) / h, 5e-201, 1e-12, 0) && isfinite((1e200 / h) / h));
    cr_assert(tu_close(atan2(1e200, 1e200), M_PI / 4, 1e-15, 0));
    double hs = hypot(1e-200, 1e-200);
    cr_assert(tu_close((1e-200 / hs) / hs, 5e199, 1e-12, 0));
    cr_assert(tu_close(asin(1.0), M_PI / 2, 1e-16, 0) && tu_close(acos(-1.0), M_PI, 1e-16, 0));
}

/* x*sqrt(x) and pow(x,1.5) agree away from 0 as well. */
Test(conventions, x_sqrt_x_equals_pow_1_5)
{
    tg_tape *a = record("x*sqrt(x)", 0, 1, cv_exprs[CV_x_sqrt_x].rec);
    tg_tape *b = record("pow(x,1.5)", 0, 1, cv_exprs[CV_pow_15].rec);
    const double pts[] = { 0.0, 1e-300, 0.25, 2.25, 7.0, 1e10 };
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
        double ya, yb, ga, gb;
        TU_OK(tg_eval(a, &pts[p], &ya));
        TU_OK(tg_eval(b, &pts[p], &yb));
        TU_OK(tg_gradient(a, &pts[p], &ga));
        TU_OK(tg_gradient(b, &pts[p], &gb));
        cr_expect(tu_close(ya, yb, 1e-14, 0) && tu_close(ga, gb, 1e-14, 0),
                  "x*sqrt(x) vs pow(x,1.5) at %g: value %s vs %s, derivative %s vs %s", pts[p],
                  tu_d(ya).s, tu_d(yb).s, tu_d(ga).s, tu_d(gb).s);
    }
    tg_tape_free(a);
    tg_tape_free(b);
}

Test(conventions, max_min_ignore_nan_operand)
{
    double y;
    tg_tape *t = record("max", 0, 2, cv_exprs[CV_max].rec);
    TU_OK(tg_eval(t, (double[]){ NAN, 1.0 }, &y));
    cr_expect(y == 1.0, "max(NaN, 1) = %s, expected 1 (fmax)", tu_d(y).s);
    TU_OK(tg_eval(t, (double[]){ 1.0, NAN }, &y));
    cr_expect(y == 1.0, "max(1, NaN) = %s, expected 1 (fmax)", tu_d(y).s);
    tg_tape_free(t);
    t = record("min", 0, 2, cv_exprs[CV_min].rec);
    TU_OK(tg_eval(t, (double[]){ NAN, 1.0 }, &y));
    cr_expect(y == 1.0, "min(NaN, 1) = %s, expected 1 (fmin)", tu_d(y).s);
    TU_OK(tg_eval(t, (double[]){ 1.0, NAN }, &y));
    cr_expect(y == 1.0, "min(1, NaN) = %s, expected 1 (fmin)", tu_d(y).s);
    tg_tape_free(t);
}

/* pow(x,2) equals x*x bit for bit, on both kinds of tape. */
Test(conventions, pow_x_2_equals_x_times_x)
{
    const double pts[] = { 0.0, -0.0, 1e-200, -1e-170, 3.0, -0.1, 1e200, 1.5e154, INF, -INF,
                           NAN, 5e-324, 0.7 };
    for (int k = 0; k < 2; k++) {
        tg_tape *a = record("pow", k ? TG_NO_FOLD | TG_NO_CSE : 0, 1, cv_exprs[CV_pow_2i].rec);
        tg_tape *b = record("x*x", k ? TG_NO_FOLD | TG_NO_CSE : 0, 1, cv_exprs[CV_xx].rec);
        for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
            double ya, yb, ga, gb;
            TU_OK(tg_eval(a, &pts[p], &ya));
            TU_OK(tg_eval(b, &pts[p], &yb));
            TU_OK(tg_gradient(a, &pts[p], &ga));
            TU_OK(tg_gradient(b, &pts[p], &gb));
            cr_expect(tu_same_bits_nan(ya, yb), "pow(x,2) vs x*x at %g (%s tape): %s vs %s",
                      pts[p], k ? "no-fold" : "default", tu_d(ya).s, tu_d(yb).s);
            cr_expect(tu_same_value(ga, gb), "d pow(x,2) vs d x*x at %g (%s tape): %s vs %s",
                      pts[p], k ? "no-fold" : "default", tu_d(ga).s, tu_d(gb).s);
        }
        tg_tape_free(a);
        tg_tape_free(b);
    }
}

/* ------------------------------------------------- recorders of the rules */

#define REC(NAME, EXPR) \
    static tg_var NAME(tg_tape *t, const tg_var *x) { (void)t; return (EXPR); }
REC(r_sel_inv, tg_select(tg_gt(x[0], 0.0), tg_div(1.0, x[0]), 0.0))
REC(r_times_zero, tg_mul(x[0], 0.0))
REC(r_x_minus_x, tg_sub(x[0], x[0]))
REC(r_sqrt_plus_y, tg_add(tg_sqrt(x[0]), x[1]))
/* ------------------------------------------------- rule 1: absolute zero */

/* A zero cotangent weight on an output whose partials are NaN leaves the
 * other outputs' contributions finite. */
Test(rule1, vjp_zero_weight_on_nan_output)
{
    for (int k = 0; k < 2; k++) {
        tg_tape *t = tu_tape("two", k ? TG_NO_FOLD | TG_NO_CSE : 0);
        tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
        tg_var out[3] = { tg_sqrt(x), tg_mul(x, y), tg_log(x) };
        tg_output_vec(t, "f", 3, out);
        TU_TAPE_OK(t);
        double p[2] = { -1.0, 3.0 }, wj[2], J[6];
        TU_OK(tg_vjp(t, p, (double[]){ 0.0, 1.0, 0.0 }, wj));
        cr_expect(wj[0] == 3.0 && wj[1] == -1.0,
                  "vjp w = (0,1,0) at (-1,3): (%s, %s), expected (3, -1): NaN partials of "
                  "sqrt/log must not leak through zero weights",
                  tu_d(wj[0]).s, tu_d(wj[1]).s);
        TU_OK(tg_vjp(t, p, (double[]){ 1.0, 1.0, 0.0 }, wj));
        cr_expect(isnan(wj[0]) && wj[1] == -1.0,
                  "vjp w = (1,1,0) at (-1,3): (%s, %s), expected (NaN, -1)", tu_d(wj[0]).s,
                  tu_d(wj[1]).s);
        TU_OK(tg_jacobian(t, p, J));
        cr_expect(isnan(J[0]) && J[1] == 0.0 && J[2] == 3.0 && J[3] == -1.0 && isnan(J[4]) &&
                      J[5] == 0.0,
                  "Jacobian at (-1,3): [%g %g; %g %g; %g %g], expected [NaN 0; 3 -1; NaN 0]",
                  J[0], J[1], J[2], J[3], J[4], J[5]);
        double jv[3];
        TU_OK(tg_jvp(t, p, (double[]){ 0.0, 1.0 }, jv));
        cr_expect(jv[0] == 0.0 && jv[1] == -1.0 && jv[2] == 0.0,
                  "jvp v = (0,1) at (-1,3): (%s, %s, %s), expected (0, -1, 0)", tu_d(jv[0]).s,
                  tu_d(jv[1]).s, tu_d(jv[2]).s);
        tg_tape_free(t);
    }
}

/* A zero tangent on an input whose partials are NaN does not poison the
 * directional derivative (even though the value is NaN). */
Test(rule1, jvp_zero_tangent_on_nan_partial)
{
    double g[2] = { NAN, 1.0 };
    row("sqrt(x) + y @ (-1, 2)", 2, r_sqrt_plus_y, (double[]){ -1.0, 2.0 }, NAN, g, NULL, 0);
}

/* An untaken branch whose partial is infinite or NaN contributes 0. */
Test(rule1, untaken_branch_never_nan)
{
    row1h("select(x>0, 1/x, 0) @ 0", r_sel_inv, 0.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, 1/x, 0) @ -0", r_sel_inv, -0.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, log(x), 0) @ -1", cv_exprs[CV_sel_log].rec, -1.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, sqrt(x), 0) @ -1", cv_exprs[CV_sel_sqrt].rec, -1.0, 0.0, 0.0, 0.0);
}

/* NaN partial times a nonzero adjoint still propagates. */
Test(rule1, nan_partial_propagates)
{
    row1("sqrt(x) @ -1", cv_exprs[CV_sqrt].rec, -1.0, NAN, NAN);
    row1("log(x) @ -1", cv_exprs[CV_log].rec, -1.0, NAN, NAN);
    row1("asin(x) @ 2", cv_exprs[CV_asin].rec, 2.0, NAN, NAN);
}

/* Underflowed values never poison a derivative. */
Test(rule1, underflow_never_nan)
{
    row1("sqrt(exp(x)) @ -800", cv_exprs[CV_sqrt_exp].rec, -800.0, 0.0, 0.0);
}

/* --------------------------------- rule 3: record-time values decide nothing */

Test(rule3, x_times_zero_not_folded)
{
    row1("x*0 @ inf", r_times_zero, INF, NAN, 0.0);
    row1("x*0 @ -inf", r_times_zero, -INF, NAN, 0.0);
    row1("x*0 @ 5", r_times_zero, 5.0, 0.0, 0.0);
    row("x*0 @ -1 is -0", 1, r_times_zero, (double[]){ -1.0 }, -0.0, (double[]){ 0.0 }, NULL,
        SIGN);
    double y;
    tg_tape *t = record("x*0", 0, 1, r_times_zero);
    TU_OK(tg_eval(t, (double[]){ NAN }, &y));
    cr_expect(isnan(y), "x*0 @ NaN = %s, expected NaN", tu_d(y).s);
    tg_tape_free(t);
}

Test(rule3, x_minus_x_not_folded)
{
    double y;
    const double nanpts[] = { INF, -INF, NAN };
    for (int k = 0; k < 2; k++) {
        tg_tape *t = record("x-x", k ? TG_NO_FOLD : 0, 1, r_x_minus_x);
        for (size_t p = 0; p < 3; p++) {
            TU_OK(tg_eval(t, &nanpts[p], &y));
            cr_expect(isnan(y), "x-x @ %g = %s, expected NaN", nanpts[p], tu_d(y).s);
        }
        TU_OK(tg_eval(t, (double[]){ 5.0 }, &y));
        cr_expect(y == 0.0 && !signbit(y), "x-x @ 5 = %s, expected +0", tu_d(y).s);
        tg_tape_free(t);
    }
    row1("x-x @ 2", r_x_minus_x, 2.0, 0.0, 0.0);
}

Test(rule3, x_over_x_not_folded)
{
    double y;
    const double nanpts[] = { INF, -INF, NAN, 0.0, -0.0 };
    tg_tape *t = record("x/x", 0, 1, cv_exprs[CV_x_over_x].rec);
    for (size_t p = 0; p < 5; p++) {
        TU_OK(tg_eval(t, &nanpts[p], &y));
        cr_expect(isnan(y), "x/x @ %g = %s, expected NaN", nanpts[p], tu_d(y).s);
    }
    tg_tape_free(t);
}

/* The same function recorded on inputs that will later be 0 keeps every
 * operation: the tape does not depend on any value. */
Test(rule3, structure_independent_of_values)
{
    tg_tape *a = record("a", 0, 1, r_times_zero), *b = record("b", 0, 1, r_times_zero);
    cr_expect_eq(tg_tape_size(a), tg_tape_size(b));
    cr_expect_eq(tg_tape_size(a), 3, "x*0 must keep input, const and mul: size %zu",
                 tg_tape_size(a));
    tg_tape_free(a);
    tg_tape_free(b);
}
