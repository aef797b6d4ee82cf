/* tests/test_values.c -- recording at a point (issue 13): values while
 * recording equal the interpreter bit for bit (every op of the table, the
 * acceptance-style functions, IEEE specials), values never change the
 * tape, and branch guards in every evaluation path: a piecewise function
 * recorded on each side of its branch and evaluated across it. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "optable.h"
#include "derivutil.h"
#include "ad/sweep.h"

/* Every instruction's value while recording equals the value sweep's
 * (ad_forward_one, the interpreter behind tg_eval), bit for bit,
 * wherever the instruction has a value. */
static void
expect_values_match(const tg_tape *t, const double *x, const char *what)
{
    double *v = calloc(t->n + 1, sizeof *v);
    cr_assert(v);
    ad_forward_one(t, x, v);
    for (uint32_t i = 0; i < t->n; i++) {
        double r = tg_value((tg_var){ (tg_tape *)t, i });
        cr_expect(tu_same_bits(r, v[i]), "%s: instruction %u (%s): value while recording "
                  "%.17g, tg_eval's %.17g", what, i, tg_op_name((tg_opcode)t->op[i]), r, v[i]);
    }
    free(v);
}

/* ------------------------------------------------------- every op */

static void
one_op_at(const ot_case *c, const double *x, unsigned flags, const char *label)
{
    size_t nin = ot_nin(c);
    tg_tape *t = tg_tape_new_ex("op", flags);
    tg_var in[3];
    tg_input_vec_at(t, "x", nin, x, in);
    tg_var y = ot_apply(c, in);
    double vy = tg_value(y);
    tg_output(t, "y", y);
    TU_OK(tg_tape_status(t));
    double e = 0.0;
    TU_OK(tg_eval(t, x, &e));
    cr_expect(tu_same_bits(vy, e), "%s: tg_value %.17g, tg_eval %.17g", label, vy, e);
    expect_values_match(t, x, label);
    /* rule 3: the same tape as recorded without values */
    tg_tape *u = tg_tape_new_ex("op", flags);
    tg_var iu[3];
    tg_input_vec(u, "x", nin, iu);
    tg_output(u, "y", ot_apply(c, iu));
    char *a = du_disasm(t), *b = du_disasm(u);
    cr_expect_str_eq(a, b, "%s: values changed the tape", label);
    free(a);
    free(b);
    tg_tape_free(u);
    tg_tape_free(t);
}

Test(values, every_op_bit_for_bit)
{
    ot_check_rows("test_values");
    tu_rng rng = { 13 };
    for (size_t r = 0; r < OT_NCASES; r++) {
        const ot_case *c = &ot_cases[r];
        size_t nin = ot_nin(c);
        double pts[24 * 3];
        ot_sample(c, &rng, pts, 24);
        char label[64], msg[256];
        ot_label(label, sizeof label, c, r);
        for (size_t p = 0; p < 24; p++) {
            ot_fmt_point(msg, sizeof msg, label, nin, pts + p * nin);
            one_op_at(c, pts + p * nin, 0, msg);
            one_op_at(c, pts + p * nin, TG_NO_FOLD | TG_NO_CSE, msg);
        }
        /* IEEE specials in every operand (guards may then fail: values only) */
        if (c->op == TG_OP_GUARD)
            continue;
        for (size_t s = 0; s < DU_NSPECIALS; s++) {
            double x[3] = { du_specials[s], du_specials[(s + 5) % DU_NSPECIALS],
                            du_specials[(s + 11) % DU_NSPECIALS] };
            ot_fmt_point(msg, sizeof msg, label, nin, x);
            one_op_at(c, x, 0, msg);
        }
    }
}

/* ------------------------------------------- acceptance-style functions */

typedef void (*rec_fn)(size_t n, const tg_var *x, tg_var *y);

static void
rosenbrock(size_t n, const tg_var *x, tg_var *y)
{
    tg_var s = TG_ZERO_VAR;
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var a = tg_sub(x[i + 1], tg_mul(x[i], x[i]));
        tg_var b = tg_sub(1.0, x[i]);
        s = tg_add(s, tg_add(tg_mul(100.0, tg_mul(a, a)), tg_mul(b, b)));
    }
    y[0] = s;
}

/* a 2-layer perceptron with every kind of op: tanh, max (relu), softplus */
static void
mlp(size_t n, const tg_var *x, tg_var *y)
{
    tg_var h[4];
    for (size_t j = 0; j < 4; j++) {
        tg_var s = tg_const(x[0].tape, 0.1 * (double)j);
        for (size_t i = 0; i < n; i++)
            s = tg_add(s, tg_mul(x[i], sin(1.0 + (double)(i * 4 + j))));
        h[j] = j % 2 ? tg_tanh(s) : tg_max(s, 0.0);
    }
    tg_var o = tg_log1p(tg_exp(tg_add(tg_mul(h[0], h[1]), tg_div(h[2], tg_hypot(h[3], 1.0)))));
    y[0] = tg_add(o, tg_mul(1e-3, tg_norm2sq(n, x)));
}

/* Lorenz 63, 5 steps of RK4 (the W3 workload shape) */
static void
lorenz_f(const tg_var *u, tg_var *du)
{
    du[0] = tg_mul(10.0, tg_sub(u[1], u[0]));
    du[1] = tg_sub(tg_mul(u[0], tg_sub(28.0, u[2])), u[1]);
    du[2] = tg_sub(tg_mul(u[0], u[1]), tg_mul(8.0 / 3.0, u[2]));
}

static void
lorenz(size_t n, const tg_var *x, tg_var *y)
{
    (void)n;
    tg_var u[3] = { x[0], x[1], x[2] };
    const double h = 0.01;
    for (int s = 0; s < 5; s++) {
        tg_var k1[3], k2[3], k3[3], k4[3], t[3];
        lorenz_f(u, k1);
        for (int i = 0; i < 3; i++) t[i] = tg_add(u[i], tg_mul(h / 2, k1[i]));
        lorenz_f(t, k2);
        for (int i = 0; i < 3; i++) t[i] = tg_add(u[i], tg_mul(h / 2, k2[i]));
        lorenz_f(t, k3);
        for (int i = 0; i < 3; i++) t[i] = tg_add(u[i], tg_mul(h, k3[i]));
        lorenz_f(t, k4);
        for (int i = 0; i < 3; i++)
            u[i] = tg_add(u[i], tg_mul(h / 6, tg_add(tg_add(k1[i], tg_mul(2.0, k2[i])),
                                                     tg_add(tg_mul(2.0, k3[i]), k4[i]))));
    }
    for (int i = 0; i < 3; i++)
        y[i] = u[i];
}

static void
acceptance(const char *name, rec_fn f, size_t n, size_t m, const double *x)
{
    tg_tape *t = tg_tape_new(name);
    tg_var xv[16], yv[4];
    tg_input_vec_at(t, "x", n, x, xv);
    f(n, xv, yv);
    double vy[4];
    for (size_t j = 0; j < m; j++)
        vy[j] = tg_value(yv[j]);
    tg_output_vec(t, "y", m, yv);
    TU_OK(tg_tape_status(t));
    double e[4];
    TU_OK(tg_eval(t, x, e));
    for (size_t j = 0; j < m; j++)
        cr_expect(tu_same_bits(vy[j], e[j]), "%s: output %zu: value %.17g, tg_eval %.17g",
                  name, j, vy[j], e[j]);
    expect_values_match(t, x, name);
    tg_tape *u = tg_tape_new(name);
    tg_input_vec(u, "x", n, xv);
    f(n, xv, yv);
    tg_output_vec(u, "y", m, yv);
    char *a = du_disasm(t), *b = du_disasm(u);
    cr_expect_str_eq(a, b, "%s: values changed the tape", name);
    free(a);
    free(b);
    tg_tape_free(u);
    tg_tape_free(t);
}

Test(values, acceptance_functions)
{
    tu_rng rng = { 7 };
    for (int trial = 0; trial < 20; trial++) {
        double x[10];
        for (size_t i = 0; i < 10; i++)
            x[i] = tu_rng_range(&rng, -2, 2);
        acceptance("rosenbrock", rosenbrock, 10, 1, x);
        acceptance("mlp", mlp, 6, 1, x);
        acceptance("lorenz", lorenz, 3, 3, x);
    }
    for (size_t s = 0; s < DU_NSPECIALS; s++) {
        double x[10];
        for (size_t i = 0; i < 10; i++)
            x[i] = du_specials[(s + 3 * i) % DU_NSPECIALS];
        acceptance("rosenbrock", rosenbrock, 10, 1, x);
        acceptance("mlp", mlp, 6, 1, x);
        acceptance("lorenz", lorenz, 3, 3, x);
    }
}

/* ---------------------------------------------------- tg_value itself */

Test(values, what_has_a_value)
{
    tg_tape *t = tg_tape_new("v");
    tg_var p = tg_input(t, "p");            /* no value */
    tg_var x = tg_input_at(t, "x", 2.0);
    cr_expect(isnan(tg_value(p)));
    cr_expect_eq(tg_value(x), 2.0);
    cr_expect_eq(tg_value(tg_const(t, -3.5)), -3.5);
    cr_expect(isnan(tg_value(tg_add(x, p))), "an operand without value: none");
    cr_expect_eq(tg_value(tg_mul(x, 3.0)), 6.0);
    cr_expect_eq(tg_value(TG_ZERO_VAR), 0.0);
    cr_expect(tu_same_bits(tg_value(tg_add(x, TG_ZERO_VAR)), 2.0));
    cr_expect(isnan(tg_value((tg_var){ NULL, TG_NIL })));
    cr_expect(isnan(tg_value((tg_var){ t, 12345 })));
    /* a NaN by computation is a value: tg_branch takes NaN != 0 as true */
    tg_var nanv = tg_sqrt(tg_neg(x));
    cr_expect(isnan(tg_value(nanv)));
    cr_expect_eq(tg_branch(nanv), 1);
    TU_OK(tg_tape_status(t));
    /* CSE returns the existing instruction, with its value */
    tg_var a = tg_sin(x), b = tg_sin(x);
    cr_expect_eq(a.id, b.id);
    cr_expect(tu_same_bits(tg_value(b), sin(2.0)));
    /* a branch on a value-less condition: 0 and TG_ERR_ARG */
    cr_expect_eq(tg_branch(tg_gt(p, 0.0)), 0);
    cr_expect_eq(tg_tape_status(t), TG_ERR_ARG);
    tg_tape_free(t);

    /* a tape without valued inputs never allocates values */
    t = tg_tape_new("plain");
    tg_var q = tg_input(t, "q");
    tg_output(t, "y", tg_exp(q));
    size_t bytes = tg_tape_bytes(t);
    tg_tape *u = tg_tape_new("plain");
    tg_var qu = tg_input_at(u, "q", 1.0);
    tg_output(u, "y", tg_exp(qu));
    cr_expect_gt(tg_tape_bytes(u), bytes, "the values are counted in tg_tape_bytes");
    tg_tape_free(u);
    tg_tape_free(t);

    /* argument errors */
    t = tg_tape_new("e");
    tg_var xs[2];
    tg_input_vec_at(t, "x", 2, NULL, xs);
    cr_expect_eq(tg_tape_status(t), TG_ERR_ARG);
    cr_expect_eq(xs[0].id, TG_NIL);
    tg_tape_free(t);
    tg_input_vec_at(NULL, "x", 1, (double[]){ 1 }, xs);
    cr_expect_eq(tg_branch((tg_var){ NULL, TG_NIL }), 0);
    cr_expect_eq(tg_branch(TG_ZERO_VAR), 0);
}

/* values grow with the tape (column reallocation) and survive tg_call */
Test(values, growth_and_call)
{
    tg_tape *f = tg_tape_new("f");
    tg_var a = tg_input(f, "a");
    tg_output(f, "y", tg_add(tg_mul(a, a), tg_sin(a)));
    tg_tape *t = tg_tape_new("t");
    tg_var x = tg_input_at(t, "x", 0.25);
    tg_var s = x;
    for (int i = 0; i < 5000; i++)
        s = tg_add(tg_mul(s, 0.999), tg_cos(tg_mul(s, (double)i)));
    tg_var r;
    tg_call(t, f, &s, &r);
    tg_output(t, "y", r);
    TU_OK(tg_tape_status(t));
    double y, xv = 0.25;
    TU_OK(tg_eval(t, &xv, &y));
    cr_expect(tu_same_bits(tg_value(r), y));
    expect_values_match(t, &xv, "growth");
    tg_tape_free(t);
    tg_tape_free(f);
}

/* ----------------------------------------------------------- guards */

/* The piecewise function, written as C with an if on values:
 *   f(x, p) = x < 1 ? p x^2 + sin(x) : 2 p x - p + sin(x) + exp(-x) */
static tg_tape *
piecewise(double x0, double p0)
{
    tg_tape *t = tg_tape_new("pw");
    tg_var x = tg_input_at(t, "x", x0);
    tg_var p = tg_input_at(t, "p", p0);
    tg_var y;
    if (tg_branch(tg_lt(x, 1.0)))
        y = tg_add(tg_mul(p, tg_mul(x, x)), tg_sin(x));
    else
        y = tg_add(tg_sub(tg_mul(tg_mul(2.0, p), x), p), tg_add(tg_sin(x), tg_exp(tg_neg(x))));
    tg_output(t, "y", y);
    TU_OK(tg_tape_status(t));
    return t;
}

static double
pw_ref(const double *x)
{
    return x[0] < 1.0 ? x[1] * x[0] * x[0] + sin(x[0])
                      : 2 * x[1] * x[0] - x[1] + sin(x[0]) + exp(-x[0]);
}

static double
pw_ref_fn(const double *x, const void *ctx)
{
    (void)ctx;
    return pw_ref(x);
}

#define SENT 12345.0
#define EXPECT_UNTOUCHED(arr, cnt, what)                                        \
    for (size_t k_ = 0; k_ < (cnt); k_++)                                       \
        cr_expect_eq((arr)[k_], SENT, "%s: element %zu written", what, k_)
#define FILL(arr, cnt) for (size_t k_ = 0; k_ < (cnt); k_++) (arr)[k_] = SENT

/* Every numeric call on t at x: TG_OK (results checked against central
 * differences of the recorded branch) or TG_ERR_BRANCH writing nothing. */
static void
every_call(const tg_tape *t, const double *x, int same_side, const char *what)
{
    tg_status want = same_side ? TG_OK : TG_ERR_BRANCH;
    double y[1], g[2], J[2], H[4], hv[2], jv[1], wj[2], v[2] = { 0.3, -0.7 }, w1[1] = { 1.5 };
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws);
#define CALL(expr, arr, cnt)                                                    \
    do {                                                                        \
        FILL(arr, cnt);                                                         \
        tg_status s_ = (expr);                                                  \
        cr_expect_eq(s_, want, "%s: %s returned %s (%s)", what, #expr, tg_status_str(s_), \
                     tg_last_error());                                          \
        if (!same_side) {                                                       \
            EXPECT_UNTOUCHED(arr, cnt, #expr);                                  \
            cr_expect(strstr(tg_last_error(), "branch") != NULL, "message: %s", tg_last_error()); \
        }                                                                       \
    } while (0)
    CALL(tg_eval(t, x, y), y, 1);
    if (same_side)
        cr_expect(fabs(y[0] - pw_ref(x)) <= 1e-13 * fmax(1, fabs(y[0])), "%s: f", what);
    CALL(tg_eval_ws(t, ws, x, y), y, 1);
    CALL(tg_gradient(t, x, g), g, 2);
    if (same_side && fabs(x[0] - 1.0) > 1e-3) {   /* differences stay on one side */
        double cd[2];
        tu_cdiff_grad(pw_ref_fn, NULL, 2, x, cd);
        for (int i = 0; i < 2; i++)
            cr_expect(fabs(g[i] - cd[i]) <= 1e-6 * fmax(1, fabs(cd[i])), "%s: g[%d] %g vs %g",
                      what, i, g[i], cd[i]);
    }
    CALL(tg_gradient_ws(t, ws, x, g), g, 2);
    CALL(tg_jacobian(t, x, J), J, 2);
    CALL(tg_jacobian_ws(t, ws, x, J), J, 2);
    CALL(tg_jvp(t, x, v, jv), jv, 1);
    CALL(tg_jvp_ws(t, ws, x, v, jv), jv, 1);
    CALL(tg_vjp(t, x, w1, wj), wj, 2);
    CALL(tg_vjp_ws(t, ws, x, w1, wj), wj, 2);
    CALL(tg_hessian(t, x, H), H, 4);
    CALL(tg_hessian_ws(t, ws, x, H), H, 4);
    CALL(tg_hvp(t, x, v, hv), hv, 2);
    CALL(tg_hvp_ws(t, ws, x, v, hv), hv, 2);
    CALL(tg_gradient_wrt(t, 0, x, g), g, 1);
    CALL(tg_jacobian_wrt(t, 1, x, J), J, 1);
    CALL(tg_jvp_wrt(t, 0, x, v, jv), jv, 1);
    CALL(tg_vjp_wrt(t, 1, x, w1, wj), wj, 1);
    CALL(tg_hessian_wrt(t, TG_ALL, x, H), H, 4);
    CALL(tg_hvp_wrt(t, 0, x, v, hv), hv, 1);
    CALL(tg_jvp_multi(t, TG_ALL, 1, x, v, jv), jv, 1);
    CALL(tg_vjp_multi(t, TG_ALL, 1, x, w1, wj), wj, 2);
    CALL(tg_hvp_multi(t, TG_ALL, 1, x, v, hv), hv, 2);
    tg_sparsity *sj = tg_jacobian_sparsity(t, TG_ALL), *sh = tg_hessian_sparsity(t, TG_ALL);
    cr_assert(sj && sh);
    double vals[4];
    CALL(tg_sparse_jacobian(t, sj, x, vals), vals, tg_sparsity_nnz(sj));
    CALL(tg_sparse_hessian(t, sh, x, NULL, vals), vals, tg_sparsity_nnz(sh));
    tg_sparsity_free(sj);
    tg_sparsity_free(sh);
#undef CALL
    tg_workspace_free(ws);
}

Test(guards, piecewise_every_numeric_call)
{
    double lo[2] = { 0.5, 1.5 }, hi[2] = { 2.0, -0.5 };
    tg_tape *tl = piecewise(lo[0], lo[1]), *th = piecewise(hi[0], hi[1]);
    cr_expect_eq(tg_num_guards(tl), 1);
    cr_expect_eq(tg_num_guards(th), 1);
    double pts[4][2] = { { 0.2, 1.0 }, { 0.999, -2.0 }, { 1.0, 0.5 }, { 3.0, 2.0 } };
    for (int rep = 0; rep < 12; rep++)      /* repeated: the lazy derivative tapes kick in */
        for (int p = 0; p < 4; p++) {
            int left = pts[p][0] < 1.0;
            every_call(tl, pts[p], left, "recorded left");
            every_call(th, pts[p], !left, "recorded right");
        }
    tg_tape_free(tl);
    tg_tape_free(th);
}

static void
derived_tapes(const tg_tape *t, const double *x, int same)
{
    tg_tape *(*mk[])(const tg_tape *, int) = { tg_gradient_tape, tg_jacobian_tape,
                                               tg_hessian_tape, tg_jvp_tape, tg_vjp_tape,
                                               tg_hvp_tape, tg_sparse_jacobian_tape,
                                               tg_sparse_hessian_tape };
    for (size_t k = 0; k < sizeof mk / sizeof *mk; k++) {
        tg_tape *d = mk[k](t, TG_ALL);
        TU_OK(tg_tape_status(d));
        cr_expect_geq(tg_num_guards(d), 1, "derivative tape %zu carries the guard", k);
        double in[4] = { x[0], x[1], 0.25, -1.0 }, out[8];
        FILL(out, 8);
        tg_status s = tg_eval(d, in, out);
        cr_expect_eq(s, same ? TG_OK : TG_ERR_BRANCH, "derivative tape %zu: %s", k,
                     tg_status_str(s));
        if (!same)
            EXPECT_UNTOUCHED(out, 8, "derivative tape");
        /* optimised (guards are roots) and second-level derivatives too */
        TU_OK(tg_tape_optimize(d, TG_OPT_MAX));
        cr_expect_geq(tg_num_guards(d), 1);
        cr_expect_eq(tg_eval(d, in, out), same ? TG_OK : TG_ERR_BRANCH);
        tg_tape_free(d);
    }
    tg_tape *g = tg_gradient_tape(t, TG_ALL);
    tg_tape *hg = tg_jacobian_tape(g, TG_ALL);
    double J[4];
    cr_expect_eq(tg_eval(hg, x, J), same ? TG_OK : TG_ERR_BRANCH);
    if (same) {
        double H[4];
        TU_OK(tg_hessian(t, x, H));
        for (int i = 0; i < 4; i++)
            cr_expect(fabs(H[i] - J[i]) <= 1e-12 * fmax(1, fabs(H[i])));
    }
    tg_tape_free(hg);
    tg_tape_free(g);
}

Test(guards, derivative_tapes_carry_guards)
{
    tg_tape *tl = piecewise(0.5, 1.5), *th = piecewise(2.0, -0.5);
    double a[2] = { 0.3, 2.0 }, b[2] = { 4.0, 1.0 };
    derived_tapes(tl, a, 1);
    derived_tapes(tl, b, 0);
    derived_tapes(th, a, 0);
    derived_tapes(th, b, 1);
    tg_tape_free(tl);
    tg_tape_free(th);
}

Test(guards, batch_per_point_status)
{
    tg_tape *tl = piecewise(0.5, 1.5);
    enum { NP = 37 };
    double X[NP * 2], Y[NP], G[NP * 2];
    tg_status st[NP];
    for (int p = 0; p < NP; p++) {
        X[2 * p] = -1.0 + 0.1 * p;      /* crosses 1.0 at p = 20 */
        X[2 * p + 1] = 0.5 + 0.01 * p;
    }
    for (int kind = 0; kind < 2; kind++) {
        FILL(Y, NP);
        FILL(G, 2 * NP);
        tg_status s = kind == 0 ? tg_eval_batch_status(tl, NP, X, Y, st)
                                : tg_gradient_batch_status(tl, NP, X, G, st);
        cr_expect_eq(s, TG_ERR_BRANCH);
        cr_expect(strstr(tg_last_error(), "the first is point 20"), "%s", tg_last_error());
        for (int p = 0; p < NP; p++) {
            int left = X[2 * p] < 1.0;
            cr_expect_eq(st[p], left ? TG_OK : TG_ERR_BRANCH, "point %d", p);
            if (kind == 0 && left)
                cr_expect(fabs(Y[p] - pw_ref(X + 2 * p)) <= 1e-13 * fmax(1, fabs(Y[p])));
            if (kind == 0 && !left)
                cr_expect_eq(Y[p], SENT);
            if (kind == 1) {
                double g[2];
                if (left) {
                    TU_OK(tg_gradient(tl, X + 2 * p, g));
                    cr_expect(fabs(G[2 * p] - g[0]) <= 1e-13 * fmax(1, fabs(g[0])));
                } else {
                    cr_expect_eq(G[2 * p], SENT);
                    cr_expect_eq(G[2 * p + 1], SENT);
                }
            }
        }
    }
    /* the plain calls */
    cr_expect_eq(tg_eval_batch(tl, NP, X, Y), TG_ERR_BRANCH);
    cr_expect(strstr(tg_last_error(), "17 of 37 points"), "%s", tg_last_error());
    cr_expect_eq(tg_gradient_batch(tl, NP, X, G), TG_ERR_BRANCH);
    cr_expect_eq(tg_eval_batch(tl, 20, X, Y), TG_OK);
    cr_expect_eq(tg_eval_batch_status(tl, 20, X, Y, st), TG_OK);
    cr_expect_eq(tg_eval_batch_status(tl, 20, X, Y, NULL), TG_ERR_ARG);
    /* many points (the OpenMP path) */
    enum { BIG = 4000 };
    double *XB = malloc(sizeof *XB * 2 * BIG), *YB = malloc(sizeof *YB * BIG);
    tg_status *sb = malloc(sizeof *sb * BIG);
    for (int p = 0; p < BIG; p++) {
        XB[2 * p] = (p % 3 == 0) ? 1.5 : 0.25;
        XB[2 * p + 1] = 1.0;
    }
    cr_expect_eq(tg_eval_batch_status(tl, BIG, XB, YB, sb), TG_ERR_BRANCH);
    for (int p = 0; p < BIG; p++)
        cr_expect_eq(sb[p], p % 3 == 0 ? TG_ERR_BRANCH : TG_OK);
    free(XB);
    free(YB);
    free(sb);
    tg_tape_free(tl);
}

Test(guards, files_and_optimisation)
{
    tg_tape *th = piecewise(2.0, -0.5);
    char path[] = "/tmp/tg_values_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    TU_OK(tg_tape_save(th, path));
    tg_tape *l = tg_tape_load(path);
    TU_OK(tg_tape_status(l));
    cr_expect_eq(tg_num_guards(l), 1);
    char *a = du_disasm(th), *b = du_disasm(l);
    cr_expect_str_eq(a, b);
    cr_expect(strstr(a, "guard") != NULL, "the disassembly shows the guard:\n%s", a);
    free(a);
    free(b);
    double x[2] = { 0.5, 1.0 }, y = SENT;
    cr_expect_eq(tg_eval(l, x, &y), TG_ERR_BRANCH);
    cr_expect_eq(y, SENT);
    x[0] = 3.0;
    TU_OK(tg_eval(l, x, &y));
    cr_expect(fabs(y - pw_ref(x)) < 1e-13);
    for (int lev = TG_OPT_NONE; lev <= TG_OPT_MAX; lev++) {
        TU_OK(tg_tape_optimize(l, (tg_opt_level)lev));
        cr_expect_eq(tg_num_guards(l), 1, "level %d keeps the guard", lev);
        x[0] = 0.5;
        cr_expect_eq(tg_eval(l, x, &y), TG_ERR_BRANCH);
    }
    unlink(path);
    tg_tape_free(l);
    tg_tape_free(th);
}

/* A guard whose condition nothing else uses is still kept: DCE roots. */
Test(guards, dead_condition_kept_and_cse)
{
    tg_tape *t = tg_tape_new("d");
    tg_var x = tg_input_at(t, "x", 3.0);
    cr_expect_eq(tg_branch(tg_gt(tg_sin(x), 0.0)), 1);
    cr_expect_eq(tg_branch(tg_gt(tg_sin(x), 0.0)), 1);      /* the same guard (CSE) */
    cr_expect_eq(tg_branch(tg_const(t, 2.0)), 1);           /* constant: folded away */
    cr_expect_eq(tg_num_guards(t), 1);
    tg_output(t, "y", tg_mul(x, 2.0));
    TU_OK(tg_tape_optimize(t, TG_OPT_MAX));
    cr_expect_eq(tg_num_guards(t), 1);
    double xv = 4.0, y = SENT;                              /* sin(4) < 0 */
    cr_expect_eq(tg_eval(t, &xv, &y), TG_ERR_BRANCH);
    cr_expect_eq(y, SENT);
    xv = 2.0;
    TU_OK(tg_eval(t, &xv, &y));
    cr_expect_eq(y, 4.0);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ kinks */

Test(kinks, which_instructions_are_near_their_kink)
{
    tg_tape *t = tg_tape_new("k");
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_var a = tg_abs(x[0]);                        /* kink at x0 = 0 */
    tg_var m = tg_max(x[1], x[2]);                  /* tie x1 = x2 */
    tg_var f = tg_floor(tg_add(tg_mul(x[2], 2.0), 0.25));  /* jumps at x2 = k/2 - 1/8 */
    tg_var r = tg_round(x[1]);                      /* jumps at half-integers */
    tg_var c = tg_lt(x[0], x[1]);
    tg_var s = tg_select(c, a, m);                  /* reports c's tie */
    tg_var s2 = tg_select(x[2], a, m);              /* a non-comparison condition: |x2| */
    tg_var smooth = tg_sin(x[0]);
    tg_var ys[] = { a, m, f, r, s, s2, smooth };
    tg_output_vec(t, "y", sizeof ys / sizeof *ys, ys);
    TU_OK(tg_tape_status(t));
    tg_kink out[16];
    size_t n = 99;
    /* far from everything: nothing */
    double x1[3] = { 0.3, 1.2, 0.8 };
    TU_OK(tg_kinks(t, x1, 1e-3, out, 16, &n));
    cr_expect_eq(n, 0);
    /* at x0 = 0 (abs), x1 = x2 (max), x1 = 2.5 (round, 1e-9 away) */
    double x2[3] = { 0.0, 2.5 - 1e-9, 2.5 - 1e-9 };
    TU_OK(tg_kinks(t, x2, 1e-6, out, 16, &n));
    int seen_abs = 0, seen_max = 0, seen_round = 0, seen_select = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect(out[i].dist <= 1e-6);
        seen_abs |= out[i].op == TG_OP_ABS && out[i].insn == a.id && out[i].dist == 0.0;
        seen_max |= out[i].op == TG_OP_MAX && out[i].insn == m.id;
        seen_round |= out[i].op == TG_OP_ROUND && out[i].insn == r.id
                      && fabs(out[i].dist - 1e-9) < 1e-12;
        seen_select |= out[i].op == TG_OP_SELECT;
        cr_expect(out[i].insn != smooth.id && out[i].insn != f.id);
    }
    cr_expect(seen_abs && seen_max && seen_round, "abs %d max %d round %d", seen_abs, seen_max,
              seen_round);
    cr_expect(!seen_select, "x0 < x1 is not a tie, x2 is not 0");
    /* the count beyond cap, and cap 0 */
    size_t n2;
    TU_OK(tg_kinks(t, x2, 1e-6, out, 1, &n2));
    cr_expect_eq(n2, n);
    TU_OK(tg_kinks(t, x2, 1e-6, NULL, 0, &n2));
    cr_expect_eq(n2, n);
    /* the comparison under a select, the floor jump, |x2| */
    double x3[3] = { 1.0, 1.0, 0.375 };
    TU_OK(tg_kinks(t, x3, 0.0, out, 16, &n));
    int lt = 0, sel = 0, fl = 0;
    for (size_t i = 0; i < n; i++) {
        lt |= out[i].op == TG_OP_LT;
        sel |= out[i].op == TG_OP_SELECT && out[i].insn == s.id;
        fl |= out[i].op == TG_OP_FLOOR;
    }
    cr_expect(lt && sel && fl, "lt %d select %d floor %d", lt, sel, fl);
    double x4[3] = { 1.0, 3.0, 0.0 };
    TU_OK(tg_kinks(t, x4, 0.0, out, 16, &n));
    sel = 0;
    for (size_t i = 0; i < n; i++)
        sel |= out[i].op == TG_OP_SELECT && out[i].insn == s2.id;
    cr_expect(sel, "select on x2 = 0");
    /* errors */
    cr_expect_eq(tg_kinks(NULL, x1, 0, out, 16, &n), TG_ERR_ARG);
    cr_expect_eq(tg_kinks(t, x1, -1.0, out, 16, &n), TG_ERR_ARG);
    cr_expect_eq(tg_kinks(t, x1, NAN, out, 16, &n), TG_ERR_ARG);
    cr_expect_eq(tg_kinks(t, x1, 0, NULL, 3, &n), TG_ERR_ARG);
    cr_expect_eq(tg_kinks(t, x1, 0, out, 16, NULL), TG_ERR_ARG);
    tg_tape_free(t);
}
