/* tests/test_ops.c -- every opcode of include/tapegen/ops.def, through every
 * numeric path, against libm and central differences.
 *
 * The parameter list is expanded from ops.def itself, so an op added later
 * gets a test automatically; an op with no row in the shared table
 * (tests/optable.h) fails (nothing is skipped silently).  For each op: y = op(x...) is recorded from
 * generic points of its domain and checked through tg_eval (against the C
 * formula), tg_gradient, tg_jvp, tg_vjp, tg_jacobian (also of a 2-output tape
 * [y, y*x0]), tg_hvp, tg_hessian (against central differences of the
 * gradient), the *_ws variants (bitwise against the plain calls, one shared
 * workspace), and tg_eval_batch / tg_gradient_batch (bitwise against single
 * calls).  Composite expressions get the same treatment. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "optable.h"

/* f(x) * x0: the second output of the 2-output tape of a row. */
static double case_f_x0(const double *x, const void *ctx)
{
    return ot_f(x, ctx) * x[0];
}

/* ------------------------------------------------- checks of any tape */

/* A vector function y = F(x) for the generic checkers. */
typedef struct vfun {
    size_t n, m;
    tu_fn f[4];          /* one scalar function per output */
    const void *ctx;
    double ulps;         /* eval tolerance for output 0; others: 1e-13 rel */
    int exact0;          /* output 0 must equal f[0] exactly (same_value) */
} vfun;

#define NMAX 8

/* ------------------------------------------------- checks of one tape */

/* Central differences of every output, J_fd: m x n. */
static void fd_jacobian(const vfun *F, const double *x, double *J)
{
    for (size_t i = 0; i < F->m; i++)
        for (size_t j = 0; j < F->n; j++)
            J[i * F->n + j] = tu_cdiff(F->f[i], F->ctx, F->n, x, j);
}

/* Checks tg_eval against F: output 0 exact (or within F->ulps), the others
 * within 1e-13 relative. */
static void check_eval(const tg_tape *t, const vfun *F, const double *x, const char *where,
                       double *y_out)
{
    double y[4];
    TU_OK(tg_eval(t, x, y));
    for (size_t i = 0; i < F->m; i++) {
        double want = F->f[i](x, F->ctx);
        int ok;
        if (i == 0 && F->exact0)
            ok = tu_same_value(y[i], want);
        else if (i == 0)
            ok = tu_same_value(y[i], want) || tu_ulp_diff(y[i], want) <= (uint64_t)F->ulps;
        else
            ok = tu_close(y[i], want, 1e-13, 1e-300);
        cr_expect(ok, "tg_eval %s: y[%zu] = %s, expected (C formula) %s", where, i,
                  tu_d(y[i]).s, tu_d(want).s);
    }
    if (y_out)
        memcpy(y_out, y, F->m * sizeof *y);
}

/* First-order paths of any tape against central differences of F and
 * against each other: tg_jacobian, tg_jvp (unit and random directions, and
 * v = 0), tg_vjp (unit and random weights, and w = 0); plus the _ws variants
 * bitwise. */
static void check_first_order(const tg_tape *t, const vfun *F, const double *x, const char *where,
                              tg_workspace *ws, tu_rng *rng, int fd_ok)
{
    size_t n = F->n, m = F->m;
    double J[4 * NMAX], Jfd[4 * NMAX], Jws[4 * NMAX];
    cr_assert(n <= NMAX && m <= 4);
    fd_jacobian(F, x, Jfd);
    TU_OK(tg_jacobian(t, x, J));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n && fd_ok; j++)
            cr_expect(tu_close(J[i * n + j], Jfd[i * n + j], 1e-6, 1e-6),
                      "tg_jacobian %s: J[%zu][%zu] = %s, central difference %s", where, i, j,
                      tu_d(J[i * n + j]).s, tu_d(Jfd[i * n + j]).s);
    TU_OK(tg_jacobian_ws(t, ws, x, Jws));
    for (size_t k = 0; k < m * n; k++)
        cr_expect(tu_same_bits_nan(Jws[k], J[k]), "tg_jacobian_ws %s: [%zu] = %s, tg_jacobian %s",
                  where, k, tu_d(Jws[k]).s, tu_d(J[k]).s);

    /* jvp: unit vectors give columns, a random v gives J v, v = 0 gives 0 */
    for (size_t d = 0; d <= n + 1; d++) {
        double v[NMAX], jv[4], jvws[4];
        for (size_t j = 0; j < n; j++)
            v[j] = d < n ? (j == d ? 1.0 : 0.0) : d == n ? tu_rng_range(rng, -2, 2) : 0.0;
        TU_OK(tg_jvp(t, x, v, jv));
        TU_OK(tg_jvp_ws(t, ws, x, v, jvws));
        for (size_t i = 0; i < m; i++) {
            double want = 0.0, scale = 0.0;
            for (size_t j = 0; j < n; j++) {
                want += tu_azmul(J[i * n + j], v[j]);
                scale += fabs(tu_azmul(J[i * n + j], v[j]));
            }
            if (d < n)
                cr_expect(tu_same_value(jv[i], J[i * n + d]) ||
                              tu_close(jv[i], J[i * n + d], 1e-12, 1e-300),
                          "tg_jvp %s, v = e%zu: jv[%zu] = %s, J column %s", where, d, i,
                          tu_d(jv[i]).s, tu_d(J[i * n + d]).s);
            else if (d == n)
                cr_expect(tu_close(jv[i], want, 1e-11, 1e-13 * scale + 1e-300),
                          "tg_jvp %s, random v: jv[%zu] = %s, J v = %s", where, i, tu_d(jv[i]).s,
                          tu_d(want).s);
            else
                cr_expect(jv[i] == 0.0, "tg_jvp %s, v = 0: jv[%zu] = %s, expected 0", where, i,
                          tu_d(jv[i]).s);
            cr_expect(tu_same_bits_nan(jvws[i], jv[i]), "tg_jvp_ws %s: %s vs tg_jvp %s", where,
                      tu_d(jvws[i]).s, tu_d(jv[i]).s);
        }
    }

    /* vjp: unit weights give rows, random w gives w^T J, w = 0 gives 0 */
    for (size_t d = 0; d <= m + 1; d++) {
        double w[4], wj[NMAX], wjws[NMAX];
        for (size_t i = 0; i < m; i++)
            w[i] = d < m ? (i == d ? 1.0 : 0.0) : d == m ? tu_rng_range(rng, -2, 2) : 0.0;
        TU_OK(tg_vjp(t, x, w, wj));
        TU_OK(tg_vjp_ws(t, ws, x, w, wjws));
        for (size_t j = 0; j < n; j++) {
            double want = 0.0, scale = 0.0;
            for (size_t i = 0; i < m; i++) {
                want += tu_azmul(w[i], J[i * n + j]);
                scale += fabs(tu_azmul(w[i], J[i * n + j]));
            }
            if (d < m)
                cr_expect(tu_same_value(wj[j], J[d * n + j]) ||
                              tu_close(wj[j], J[d * n + j], 1e-12, 1e-300),
                          "tg_vjp %s, w = e%zu: wj[%zu] = %s, J row %s", where, d, j,
                          tu_d(wj[j]).s, tu_d(J[d * n + j]).s);
            else if (d == m)
                cr_expect(tu_close(wj[j], want, 1e-11, 1e-13 * scale + 1e-300),
                          "tg_vjp %s, random w: wj[%zu] = %s, w^T J = %s", where, j,
                          tu_d(wj[j]).s, tu_d(want).s);
            else
                cr_expect(wj[j] == 0.0, "tg_vjp %s, w = 0: wj[%zu] = %s, expected 0", where, j,
                          tu_d(wj[j]).s);
            cr_expect(tu_same_bits_nan(wjws[j], wj[j]), "tg_vjp_ws %s: %s vs tg_vjp %s", where,
                      tu_d(wjws[j]).s, tu_d(wj[j]).s);
        }
    }
}

/* Scalar tape: tg_gradient and the second-order paths. */
static void check_scalar(const tg_tape *t, const vfun *F, const double *x, const char *where,
                         int step, tg_workspace *ws, tu_rng *rng)
{
    size_t n = F->n;
    double g[NMAX], gws[NMAX], gfd[NMAX];
    cr_assert(tg_num_inputs(t) == n && tg_num_outputs(t) == 1, "%s: tape shape", where);
    check_eval(t, F, x, where, NULL);
    {
        double y1[1], y2[1];
        TU_OK(tg_eval(t, x, y1));
        TU_OK(tg_eval_ws(t, ws, x, y2));
        cr_expect(tu_same_bits_nan(y1[0], y2[0]), "tg_eval_ws %s: %s vs tg_eval %s", where,
                  tu_d(y2[0]).s, tu_d(y1[0]).s);
    }
    TU_OK(tg_gradient(t, x, g));
    TU_OK(tg_gradient_ws(t, ws, x, gws));
    tu_cdiff_grad(F->f[0], F->ctx, n, x, gfd);
    for (size_t j = 0; j < n; j++) {
        cr_expect(tu_close(g[j], gfd[j], 1e-6, 1e-6),
                  "tg_gradient %s: g[%zu] = %s, central difference %s", where, j, tu_d(g[j]).s,
                  tu_d(gfd[j]).s);
        if (step)
            cr_expect(g[j] == 0.0, "tg_gradient %s: g[%zu] = %s, piecewise constant op needs 0",
                      where, j, tu_d(g[j]).s);
        cr_expect(tu_same_bits_nan(gws[j], g[j]), "tg_gradient_ws %s: g[%zu] = %s vs %s", where,
                  j, tu_d(gws[j]).s, tu_d(g[j]).s);
    }
    check_first_order(t, F, x, where, ws, rng, 1);

    /* Hessian: against central differences of the gradient, symmetric,
     * hvp equal to H v, _ws variants bitwise. */
    double H[NMAX * NMAX], Hws[NMAX * NMAX];
    TU_OK(tg_hessian(t, x, H));
    TU_OK(tg_hessian_ws(t, ws, x, Hws));
    for (size_t j = 0; j < n; j++) {
        double e[NMAX] = { 0 }, col[NMAX];
        e[j] = 1.0;
        tu_cdiff_hvp(t, x, e, col);
        for (size_t i = 0; i < n; i++) {
            double h = H[i * n + j];
            cr_expect(tu_close(h, col[i], 1e-5, 1e-5),
                      "tg_hessian %s: H[%zu][%zu] = %s, central difference of gradient %s",
                      where, i, j, tu_d(h).s, tu_d(col[i]).s);
            cr_expect(tu_close(h, H[j * n + i], 1e-10, 1e-12),
                      "tg_hessian %s not symmetric: H[%zu][%zu] = %s, H[%zu][%zu] = %s", where, i,
                      j, tu_d(h).s, j, i, tu_d(H[j * n + i]).s);
            if (step)
                cr_expect(h == 0.0, "tg_hessian %s: H[%zu][%zu] = %s, piecewise constant op",
                          where, i, j, tu_d(h).s);
            cr_expect(tu_same_bits_nan(Hws[i * n + j], h), "tg_hessian_ws %s: [%zu][%zu] %s vs %s",
                      where, i, j, tu_d(Hws[i * n + j]).s, tu_d(h).s);
        }
    }
    for (int rep = 0; rep < 2; rep++) {
        double v[NMAX], hv[NMAX], hvws[NMAX], hfd[NMAX];
        for (size_t j = 0; j < n; j++)
            v[j] = rep == 0 ? tu_rng_range(rng, -2, 2) : 0.0;
        TU_OK(tg_hvp(t, x, v, hv));
        TU_OK(tg_hvp_ws(t, ws, x, v, hvws));
        if (rep == 0)
            tu_cdiff_hvp(t, x, v, hfd);
        for (size_t i = 0; i < n; i++) {
            double want = 0.0, scale = 0.0;
            for (size_t j = 0; j < n; j++) {
                want += H[i * n + j] * v[j];
                scale += fabs(H[i * n + j] * v[j]);
            }
            if (rep == 0) {
                cr_expect(tu_close(hv[i], hfd[i], 1e-5, 1e-5),
                          "tg_hvp %s: hv[%zu] = %s, central difference of gradient %s", where, i,
                          tu_d(hv[i]).s, tu_d(hfd[i]).s);
                cr_expect(tu_close(hv[i], want, 1e-10, 1e-12 * scale + 1e-300),
                          "tg_hvp %s: hv[%zu] = %s, H v = %s", where, i, tu_d(hv[i]).s,
                          tu_d(want).s);
            } else {
                cr_expect(hv[i] == 0.0, "tg_hvp %s, v = 0: hv[%zu] = %s, expected 0", where, i,
                          tu_d(hv[i]).s);
            }
            cr_expect(tu_same_bits_nan(hvws[i], hv[i]), "tg_hvp_ws %s: %s vs %s", where,
                      tu_d(hvws[i]).s, tu_d(hv[i]).s);
        }
    }
}

/* tg_eval_batch and (for m == 1) tg_gradient_batch against single calls,
 * bitwise; a 13-point batch exercises any blocking remainder. */
static void check_batch(const tg_tape *t, const double *pts, size_t npts, const char *label)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *X = malloc(npts * n * sizeof *X + 1), *Y = malloc(npts * m * sizeof *Y + 1);
    double *G = malloc(npts * n * sizeof *G + 1), *y = malloc(m * sizeof *y + 1);
    double *g = malloc(n * sizeof *g + 1);
    cr_assert(X && Y && G && y && g);
    memcpy(X, pts, npts * n * sizeof *X);
    TU_OK(tg_eval_batch(t, npts, X, Y));
    for (size_t p = 0; p < npts; p++) {
        TU_OK(tg_eval(t, X + p * n, y));
        for (size_t i = 0; i < m; i++)
            cr_expect(tu_same_bits_nan(Y[p * m + i], y[i]),
                      "tg_eval_batch %s point %zu output %zu: %s, tg_eval %s", label, p, i,
                      tu_d(Y[p * m + i]).s, tu_d(y[i]).s);
    }
    if (m == 1) {
        TU_OK(tg_gradient_batch(t, npts, X, G));
        for (size_t p = 0; p < npts; p++) {
            TU_OK(tg_gradient(t, X + p * n, g));
            for (size_t j = 0; j < n; j++)
                cr_expect(tu_same_bits_nan(G[p * n + j], g[j]),
                          "tg_gradient_batch %s point %zu, d/dx%zu: %s, tg_gradient %s", label, p,
                          j, tu_d(G[p * n + j]).s, tu_d(g[j]).s);
        }
    }
    free(X);
    free(Y);
    free(G);
    free(y);
    free(g);
}

/* ----------------------------------------------------- one op, all paths */

#define NPTS 13   /* points per case: forced ones first, then random */

/* Records the row's op on a fresh tape: 1 output [y] or 2 outputs [y, y*x0]. */
static tg_tape *record_case(const ot_case *c, int two_outputs)
{
    tg_tape *t = tu_tape(ot_name(c), 0);
    tg_var x[3];
    tg_input_vec(t, "x", ot_nin(c), x);
    tg_var y = ot_apply(c, x);
    if (two_outputs) {
        tg_var ys[2] = { y, tg_mul(y, x[0]) };
        tg_output_vec(t, "y", 2, ys);
    } else {
        tg_output(t, "y", y);
    }
    TU_TAPE_OK(t);
    ot_expect_on_tape(t, c, y, x);   /* the op under test must really be on the tape */
    return t;
}

static void run_case(const ot_case *c, size_t row)
{
    size_t nin = ot_nin(c);
    tu_rng rng = { 0x5eed0000u + (uint64_t)c->op * 131u + row };
    double pts[NPTS * 3];
    ot_sample(c, &rng, pts, NPTS);

    tg_tape *t1 = record_case(c, 0), *t2 = record_case(c, 1);
    cr_assert_eq(tg_num_inputs(t1), nin);
    cr_assert_eq(tg_num_outputs(t2), 2);
    tg_workspace *ws = tg_workspace_new(NULL);
    cr_assert(ws != NULL);

    vfun F1 = { nin, 1, { ot_f }, c, c->ulps, c->ulps == 0 };
    vfun F2 = { nin, 2, { ot_f, case_f_x0 }, c, c->ulps, c->ulps == 0 };
    char label[64], where[256];
    ot_label(label, sizeof label, c, row);

    for (size_t p = 0; p < NPTS; p++) {
        const double *x = pts + p * nin;
        ot_fmt_point(where, sizeof where, label, nin, x);
        check_scalar(t1, &F1, x, where, c->step, ws, &rng);
        /* 2-output tape [y, y*x0]: y[1] must be exactly y[0]*x0 */
        double y[2];
        check_eval(t2, &F2, x, where, y);
        cr_expect(tu_same_bits_nan(y[1], y[0] * x[0]), "tg_eval %s: y*x0 = %s, expected %s",
                  where, tu_d(y[1]).s, tu_d(y[0] * x[0]).s);
        /* select(c, a, b) * c at c = 0 exactly: the convention gives the
         * untaken-branch-free derivative b, while the product happens to be
         * differentiable there with derivative a, so central differences
         * do not apply; the product rule below still checks that row */
        int fd_ok = !(c->op == TG_OP_SELECT && x[0] == 0.0);
        check_first_order(t2, &F2, x, where, ws, &rng, fd_ok);
        {
            double J[2 * 3], g[3];
            TU_OK(tg_jacobian(t2, x, J));
            TU_OK(tg_gradient(t1, x, g));
            for (size_t j = 0; j < nin; j++) {
                double want = x[0] * g[j] + (j == 0 ? y[0] : 0.0);
                cr_expect(tu_close(J[j], g[j], 1e-12, 1e-300),
                          "tg_jacobian %s row 0: J[0][%zu] = %s, tg_gradient %s", where, j,
                          tu_d(J[j]).s, tu_d(g[j]).s);
                cr_expect(tu_close(J[nin + j], want, 1e-10, 1e-12),
                          "tg_jacobian %s row 1 (y*x0): J[1][%zu] = %s, product rule %s", where,
                          j, tu_d(J[nin + j]).s, tu_d(want).s);
            }
        }
        /* both tapes through the same workspace, interleaved */
        double yws[2];
        TU_OK(tg_eval_ws(t2, ws, x, yws));
        cr_expect(tu_same_bits_nan(yws[0], y[0]) && tu_same_bits_nan(yws[1], y[1]),
                  "tg_eval_ws %s (2 outputs): (%s, %s) vs (%s, %s)", where, tu_d(yws[0]).s,
                  tu_d(yws[1]).s, tu_d(y[0]).s, tu_d(y[1]).s);
    }
    check_batch(t1, pts, NPTS, label);
    check_batch(t2, pts, NPTS, label);
    check_batch(t1, pts, 1, label);

    tg_workspace_free(ws);
    tg_tape_free(t1);
    tg_tape_free(t2);
}

/* ------------------------------------------------------------------ tests */

Test(ops, table_is_complete)
{
    ot_check_rows("test_ops");
    for (size_t i = 0; i < OT_NOPS; i++) {
        const char *name = tg_op_name((tg_opcode)i);
        int ar = tg_op_arity((tg_opcode)i);
        cr_assert(name != NULL && *name, "tg_op_name(%zu) is empty", i);
        cr_assert(ar >= 0 && ar <= 3, "tg_op_arity(%s) = %d", name, ar);
        if (ar == 0 && !(tg_op_flags((tg_opcode)i) & TG_OPF_EXTENDED))
            cr_expect(strcmp(name, "const") == 0 || strcmp(name, "input") == 0,
                      "unexpected leaf %s", name);
    }
    /* names are distinct and lowercase */
    for (size_t i = 0; i < OT_NOPS; i++)
        for (size_t j = i + 1; j < OT_NOPS; j++)
            cr_expect(strcmp(tg_op_name((tg_opcode)i), tg_op_name((tg_opcode)j)) != 0,
                      "ops %zu and %zu share the name %s", i, j, tg_op_name((tg_opcode)i));
    for (size_t i = 0; i < OT_NOPS; i++)
        for (const char *p = tg_op_name((tg_opcode)i); *p; p++)
            cr_expect(!(*p >= 'A' && *p <= 'Z'), "op name %s is not lowercase",
                      tg_op_name((tg_opcode)i));
    cr_expect(tg_op_name(TG_OP_COUNT) == NULL, "tg_op_name(TG_OP_COUNT) must be NULL");
    cr_expect(tg_op_arity(TG_OP_COUNT) == -1, "tg_op_arity(TG_OP_COUNT) must be -1");
    cr_expect(tg_op_name((tg_opcode)-1) == NULL, "tg_op_name(-1) must be NULL");
    cr_expect(tg_op_arity((tg_opcode)-1) == -1, "tg_op_arity(-1) must be -1");
    /* spot checks of the mnemonics used by the disassembly format */
    cr_expect_str_eq(tg_op_name(TG_OP_ADD), "add");
    cr_expect_str_eq(tg_op_name(TG_OP_POWK), "powk");
    cr_expect_str_eq(tg_op_name(TG_OP_SELECT), "select");
    cr_expect_str_eq(tg_op_name(TG_OP_SIGNUM), "signum");
    cr_expect_eq(tg_op_arity(TG_OP_SELECT), 3);
    cr_expect_eq(tg_op_arity(TG_OP_CONST), 0);
    cr_expect_eq(tg_op_arity(TG_OP_INPUT), 0);
}

ParameterizedTestParameters(ops, every_op_every_path)
{
    return cr_make_param_array(int, (int *)ot_all_ops, OT_NOPS);
}

ParameterizedTest(int *opp, ops, every_op_every_path, .timeout = 60)
{
    tg_opcode op = (tg_opcode)*opp;
    const char *name = tg_op_name(op);
    int ar = tg_op_arity(op);
    cr_assert(name != NULL, "opcode %d has no name", (int)op);
    if (tg_op_flags(op) & TG_OPF_EXTENDED)
        return;     /* map, scan, call, xout: tests/test_loops.c */
    if (ar == 0) {
        /* leaves: exercised by every tape below; check they are leaves */
        cr_assert(strcmp(name, "const") == 0 || strcmp(name, "input") == 0,
                  "opcode %d (%s) has arity 0 but is not a leaf", (int)op, name);
        return;
    }
    size_t rows = 0;
    for (size_t k = 0; k < OT_NCASES; k++) {
        if (ot_cases[k].op != op)
            continue;
        run_case(&ot_cases[k], k);
        rows++;
    }
    cr_assert(rows > 0, "op %s (opcode %d, arity %d) has no row in the test case table: add one",
              name, (int)op, ar);
}

/* ------------------------------------------------------------ composites */

static double comp2(const double *x, const void *ctx)
{
    (void)ctx;
    return sin(x[0] * x[1]) + exp(x[0]) / x[1];
}

static double comp3(const double *x, const void *ctx)
{
    (void)ctx;
    double a = x[0], b = x[1], c = x[2];
    double r = a * b * c;
    r = r + sin(a) * cos(c);
    r = r + log(1.0 + b * b);
    r = r + hypot(b, c);
    r = r + atan2(a, c + 5.0);
    r = r + sqrt(a * a + b * b + 1.0) * tanh(c);
    r = r + pow(b * b + 1.0, c);
    r = r + exp(a * c) / (2.0 + cos(b));
    return r;
}

static tg_var rec_comp3(const tg_var *x)
{
    tg_var a = x[0], b = x[1], c = x[2];
    tg_var r = tg_mul(tg_mul(a, b), c);
    r = tg_add(r, tg_mul(tg_sin(a), tg_cos(c)));
    r = tg_add(r, tg_log(tg_add(1.0, tg_mul(b, b))));
    r = tg_add(r, tg_hypot(b, c));
    r = tg_add(r, tg_atan2(a, tg_add(c, 5.0)));
    r = tg_add(r, tg_mul(tg_sqrt(tg_add(tg_add(tg_mul(a, a), tg_mul(b, b)), 1.0)), tg_tanh(c)));
    r = tg_add(r, tg_pow(tg_add(tg_mul(b, b), 1.0), c));
    r = tg_add(r, tg_div(tg_exp(tg_mul(a, c)), tg_add(2.0, tg_cos(b))));
    return r;
}

/* Outputs of a 3-output composite (for the Jacobian paths). */
static double vec3_0(const double *x, const void *ctx) { (void)ctx; return x[0] * x[1] + sin(x[2]); }
static double vec3_1(const double *x, const void *ctx) { (void)ctx; return exp(x[0] - x[2]) / (1.0 + x[1] * x[1]); }
static double vec3_2(const double *x, const void *ctx) { (void)ctx; return comp3(x, NULL); }

static void composite_points(size_t n, size_t npts, double *pts, uint64_t seed)
{
    tu_rng rng = { seed };
    for (size_t k = 0; k < npts * n; k++)
        pts[k] = tu_rng_range(&rng, -1.5, 1.5);
    /* keep the divisor of comp2 away from 0 */
    if (n == 2)
        for (size_t p = 0; p < npts; p++)
            pts[p * n + 1] = copysign(0.5 + fabs(pts[p * n + 1]), pts[p * n + 1]);
}

Test(composite, sin_xy_plus_exp_x_over_y)
{
    tg_tape *t = tu_tape("comp2", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_output(t, "f", tg_add(tg_sin(tg_mul(x, y)), tg_div(tg_exp(x), y)));
    TU_TAPE_OK(t);
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws != NULL);
    tu_rng rng = { 42 };
    double pts[8 * 2];
    composite_points(2, 8, pts, 7);
    vfun F = { 2, 1, { comp2 }, NULL, 4, 0 };
    char where[256];
    for (size_t p = 0; p < 8; p++) {
        ot_fmt_point(where, sizeof where, "sin(x*y)+exp(x)/y", 2, pts + 2 * p);
        check_scalar(t, &F, pts + 2 * p, where, 0, ws, &rng);
        /* analytic gradient and Hessian */
        double a = pts[2 * p], b = pts[2 * p + 1], g[2], H[4];
        TU_OK(tg_gradient(t, pts + 2 * p, g));
        TU_OK(tg_hessian(t, pts + 2 * p, H));
        double ga = b * cos(a * b) + exp(a) / b, gb = a * cos(a * b) - exp(a) / (b * b);
        double haa = -b * b * sin(a * b) + exp(a) / b;
        double hab = cos(a * b) - a * b * sin(a * b) - exp(a) / (b * b);
        double hbb = -a * a * sin(a * b) + 2 * exp(a) / (b * b * b);
        cr_expect(tu_close(g[0], ga, 1e-12, 1e-14) && tu_close(g[1], gb, 1e-12, 1e-14),
                  "%s: gradient (%s, %s), analytic (%s, %s)", where, tu_d(g[0]).s, tu_d(g[1]).s,
                  tu_d(ga).s, tu_d(gb).s);
        cr_expect(tu_close(H[0], haa, 1e-11, 1e-13) && tu_close(H[1], hab, 1e-11, 1e-13) &&
                      tu_close(H[2], hab, 1e-11, 1e-13) && tu_close(H[3], hbb, 1e-11, 1e-13),
                  "%s: Hessian [%g %g; %g %g], analytic [%g %g; %g %g]", where, H[0], H[1], H[2],
                  H[3], haa, hab, hab, hbb);
    }
    check_batch(t, pts, 8, "comp2");
    tg_workspace_free(ws);
    tg_tape_free(t);
}

Test(composite, three_inputs)
{
    tg_tape *t = tu_tape("comp3", 0);
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_output(t, "f", rec_comp3(x));
    TU_TAPE_OK(t);
    tg_workspace *ws = tg_workspace_new(NULL);
    cr_assert(ws != NULL);
    tu_rng rng = { 43 };
    double pts[9 * 3];
    composite_points(3, 9, pts, 11);
    vfun F = { 3, 1, { comp3 }, NULL, 64, 0 };
    char where[256];
    for (size_t p = 0; p < 9; p++) {
        ot_fmt_point(where, sizeof where, "comp3", 3, pts + 3 * p);
        /* the C reference sums in the same order but through different
         * libm paths only for pow; allow 64 ulps on the value */
        check_scalar(t, &F, pts + 3 * p, where, 0, ws, &rng);
    }
    check_batch(t, pts, 9, "comp3");
    tg_workspace_free(ws);
    tg_tape_free(t);
}

/* The Hessian equals the Jacobian of the gradient (central differences of
 * tg_gradient, i.e. of the reverse sweep, column by column). */
Test(composite, hessian_is_jacobian_of_gradient)
{
    tg_tape *t = tu_tape("comp3h", 0);
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_output(t, "f", rec_comp3(x));
    TU_TAPE_OK(t);
    double pts[5 * 3];
    composite_points(3, 5, pts, 99);
    for (size_t p = 0; p < 5; p++) {
        const double *xp = pts + 3 * p;
        double H[9];
        TU_OK(tg_hessian(t, xp, H));
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 3; j++) {
                cr_expect(tu_close(H[i * 3 + j], H[j * 3 + i], 1e-12, 1e-13),
                          "Hessian not symmetric at point %zu: H[%zu][%zu] = %s, H[%zu][%zu] = %s",
                          p, i, j, tu_d(H[i * 3 + j]).s, j, i, tu_d(H[j * 3 + i]).s);
            }
        for (size_t j = 0; j < 3; j++) {
            /* column j of the Jacobian of g: central differences of tg_gradient */
            double e[3] = { 0, 0, 0 }, col[3];
            e[j] = 1.0;
            tu_cdiff_dir(tu_tape_grad_fn, t, 3, 3, xp, e, tu_fd_step(xp[j]), col);
            for (size_t i = 0; i < 3; i++)
                cr_expect(tu_close(H[i * 3 + j], col[i], 1e-5, 1e-5),
                          "point %zu: H[%zu][%zu] = %s, d g_%zu / d x_%zu by central "
                          "differences = %s",
                          p, i, j, tu_d(H[i * 3 + j]).s, i, j, tu_d(col[i]).s);
        }
    }
    tg_tape_free(t);
}

Test(composite, three_outputs_jacobian)
{
    tg_tape *t = tu_tape("vec3", 0);
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_var y[3];
    y[0] = tg_add(tg_mul(x[0], x[1]), tg_sin(x[2]));
    y[1] = tg_div(tg_exp(tg_sub(x[0], x[2])), tg_add(1.0, tg_mul(x[1], x[1])));
    y[2] = rec_comp3(x);
    tg_output_vec(t, "y", 3, y);
    TU_TAPE_OK(t);
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws != NULL);
    tu_rng rng = { 44 };
    double pts[6 * 3];
    composite_points(3, 6, pts, 5);
    vfun F = { 3, 3, { vec3_0, vec3_1, vec3_2 }, NULL, 4, 0 };
    char where[256];
    for (size_t p = 0; p < 6; p++) {
        ot_fmt_point(where, sizeof where, "vec3", 3, pts + 3 * p);
        check_eval(t, &F, pts + 3 * p, where, NULL);
        check_first_order(t, &F, pts + 3 * p, where, ws, &rng, 1);
    }
    check_batch(t, pts, 6, "vec3");
    /* scalar-only calls on m = 3 give TG_ERR_SHAPE */
    double g[3], H[9], v[3] = { 1, 1, 1 };
    cr_expect_eq(tg_gradient(t, pts, g), TG_ERR_SHAPE);
    cr_expect_eq(tg_hessian(t, pts, H), TG_ERR_SHAPE);
    cr_expect_eq(tg_hvp(t, pts, v, g), TG_ERR_SHAPE);
    tg_workspace_free(ws);
    tg_tape_free(t);
}

/* A Jacobian wide enough to need several blocks of 8 directions/outputs:
 * 11 inputs -> 19 outputs (forward blocks) and 19 inputs -> 11 outputs
 * (reverse blocks), against the analytic matrix. */
static void wide_jacobian(size_t n, size_t m)
{
    tg_tape *t = tu_tape("wide", 0);
    tg_var x[32], y[32];
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < m; i++) {
        /* y_i = sin(x_{i mod n}) * x_{(i+1) mod n} + (i+1) * x_{(3i) mod n}^2 */
        tg_var a = x[i % n], b = x[(i + 1) % n], c = x[(3 * i) % n];
        y[i] = tg_add(tg_mul(tg_sin(a), b), tg_mul((double)(i + 1), tg_mul(c, c)));
    }
    tg_output_vec(t, "y", m, y);
    TU_TAPE_OK(t);
    double xv[32], J[32 * 32], Jws[32 * 32];
    tu_rng rng = { 77 };
    for (size_t j = 0; j < n; j++)
        xv[j] = tu_rng_range(&rng, -2, 2);
    TU_OK(tg_jacobian(t, xv, J));
    tg_workspace *ws = tg_workspace_new(NULL);
    cr_assert(ws != NULL);
    TU_OK(tg_jacobian_ws(t, ws, xv, Jws));
    for (size_t i = 0; i < m; i++) {
        double want[32] = { 0 };
        size_t ia = i % n, ib = (i + 1) % n, ic = (3 * i) % n;
        want[ia] += cos(xv[ia]) * xv[ib];
        want[ib] += sin(xv[ia]);
        want[ic] += 2.0 * (double)(i + 1) * xv[ic];
        for (size_t j = 0; j < n; j++) {
            cr_expect(tu_close(J[i * n + j], want[j], 1e-12, 1e-14),
                      "%zux%zu Jacobian: J[%zu][%zu] = %s, analytic %s", m, n, i, j,
                      tu_d(J[i * n + j]).s, tu_d(want[j]).s);
            cr_expect(tu_same_bits_nan(Jws[i * n + j], J[i * n + j]),
                      "tg_jacobian_ws differs at [%zu][%zu]", i, j);
        }
    }
    tg_workspace_free(ws);
    tg_tape_free(t);
}

Test(composite, jacobian_more_outputs_than_inputs) { wide_jacobian(11, 19); }
Test(composite, jacobian_more_inputs_than_outputs) { wide_jacobian(19, 11); }

/* A Hessian of size 13 x 13 (more than 8 HVPs per sweep) against the
 * analytic one: f = sum_i c_i x_i^2 x_{i+1} + prod-like coupling. */
Test(composite, hessian_wider_than_one_sweep)
{
    enum { N = 13 };
    tg_tape *t = tu_tape("h13", 0);
    tg_var x[N], terms[N];
    tg_input_vec(t, "x", N, x);
    for (size_t i = 0; i < N; i++)
        terms[i] = tg_mul(tg_mul((double)(i + 1), tg_mul(x[i], x[i])), x[(i + 1) % N]);
    tg_output(t, "f", tg_sum(N, terms));
    TU_TAPE_OK(t);
    double xv[N], H[N * N], Hws[N * N];
    tu_rng rng = { 78 };
    for (size_t j = 0; j < N; j++)
        xv[j] = tu_rng_range(&rng, -2, 2);
    TU_OK(tg_hessian(t, xv, H));
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws != NULL);
    TU_OK(tg_hessian_ws(t, ws, xv, Hws));
    double want[N * N] = { 0 };
    for (size_t i = 0; i < N; i++) {
        size_t k = (i + 1) % N;
        double c = (double)(i + 1);
        want[i * N + i] += 2 * c * xv[k];
        want[i * N + k] += 2 * c * xv[i];
        want[k * N + i] += 2 * c * xv[i];
    }
    for (size_t i = 0; i < N * N; i++) {
        cr_expect(tu_close(H[i], want[i], 1e-12, 1e-13), "H[%zu][%zu] = %s, analytic %s", i / N,
                  i % N, tu_d(H[i]).s, tu_d(want[i]).s);
        cr_expect(tu_same_bits_nan(Hws[i], H[i]), "tg_hessian_ws differs at %zu", i);
    }
    tg_workspace_free(ws);
    tg_tape_free(t);
}
