/* tests/test_api.c -- blocks and flat order, vector helpers, _Generic
 * operands, workspaces across tapes, tape bytes, deterministic recording. */
#include <criterion/criterion.h>

#include "testutil.h"

/* ------------------------------------------------------------------ blocks */

/* inputs a[3], b, c[2]; outputs u[2], v, w[3] */
static tg_tape *blocks_tape(void)
{
    tg_tape *t = tu_tape("blocks", 0);
    tg_var a[3], c[2];
    tg_input_vec(t, "a", 3, a);
    tg_var b = tg_input(t, "b");
    tg_input_vec(t, "c", 2, c);
    tg_var u[2] = { tg_add(a[0], tg_mul(10.0, c[1])), tg_mul(a[2], b) };
    tg_output_vec(t, "u", 2, u);
    tg_output(t, "v", tg_sub(c[0], a[1]));
    tg_var w[3] = { b, tg_mul(a[0], a[1]), tg_sin(c[1]) };
    tg_output_vec(t, "w", 3, w);
    TU_TAPE_OK(t);
    return t;
}

Test(blocks, queries)
{
    tg_tape *t = blocks_tape();
    cr_expect_str_eq(tg_tape_name(t), "blocks");
    cr_expect_eq(tg_num_inputs(t), 6);
    cr_expect_eq(tg_num_outputs(t), 6);
    cr_expect_eq(tg_num_input_blocks(t), 3);
    cr_expect_eq(tg_num_output_blocks(t), 3);
    const char *in_names[] = { "a", "b", "c" };
    const size_t in_sizes[] = { 3, 1, 2 }, in_offs[] = { 0, 3, 4 };
    for (size_t i = 0; i < 3; i++) {
        cr_expect_str_eq(tg_input_block_name(t, i), in_names[i]);
        cr_expect_eq(tg_input_block_size(t, i), in_sizes[i], "input block %zu size", i);
        cr_expect_eq(tg_input_block_offset(t, i), in_offs[i], "input block %zu offset", i);
        cr_expect_eq(tg_input_block_index(t, in_names[i]), (int)i);
    }
    const char *out_names[] = { "u", "v", "w" };
    const size_t out_sizes[] = { 2, 1, 3 }, out_offs[] = { 0, 2, 3 };
    for (size_t i = 0; i < 3; i++) {
        cr_expect_str_eq(tg_output_block_name(t, i), out_names[i]);
        cr_expect_eq(tg_output_block_size(t, i), out_sizes[i], "output block %zu size", i);
        cr_expect_eq(tg_output_block_offset(t, i), out_offs[i], "output block %zu offset", i);
    }
    cr_expect_eq(tg_input_block_index(t, "zz"), -1);
    cr_expect_eq(tg_input_block_index(t, "u"), -1, "output names are not input blocks");
    cr_expect_eq(tg_input_block_index(t, NULL), -1);
    cr_expect(tg_input_block_name(t, 3) == NULL);
    cr_expect_eq(tg_input_block_size(t, 3), 0);
    cr_expect_eq(tg_input_block_offset(t, 3), 0);
    cr_expect(tg_output_block_name(t, 3) == NULL);
    cr_expect_eq(tg_output_block_size(t, 99), 0);
    cr_expect_eq(tg_output_block_offset(t, (size_t)-1), 0);
    tg_tape_free(t);
}

Test(blocks, flat_concatenation_order)
{
    tg_tape *t = blocks_tape();
    /* a = (1, 2, 3), b = 4, c = (5, 6) */
    double x[6] = { 1, 2, 3, 4, 5, 6 }, y[6], J[36];
    TU_OK(tg_eval(t, x, y));
    const double want[6] = { 1 + 60, 3 * 4, 5 - 2, 4, 1 * 2, sin(6.0) };
    for (int i = 0; i < 6; i++)
        cr_expect(tu_same_bits(y[i], want[i]), "y[%d] = %s, expected %s", i, tu_d(y[i]).s,
                  tu_d(want[i]).s);
    TU_OK(tg_jacobian(t, x, J));
    double Jw[36] = { 0 };
    Jw[0 * 6 + 0] = 1;  Jw[0 * 6 + 5] = 10;          /* u0 = a0 + 10 c1 */
    Jw[1 * 6 + 2] = 4;  Jw[1 * 6 + 3] = 3;           /* u1 = a2 b */
    Jw[2 * 6 + 4] = 1;  Jw[2 * 6 + 1] = -1;          /* v = c0 - a1 */
    Jw[3 * 6 + 3] = 1;                               /* w0 = b */
    Jw[4 * 6 + 0] = 2;  Jw[4 * 6 + 1] = 1;           /* w1 = a0 a1 */
    Jw[5 * 6 + 5] = cos(6.0);                        /* w2 = sin(c1) */
    for (int k = 0; k < 36; k++)
        cr_expect(tu_close(J[k], Jw[k], 1e-15, 0), "J[%d][%d] = %s, expected %s", k / 6, k % 6,
                  tu_d(J[k]).s, tu_d(Jw[k]).s);
    /* jvp / vjp use the same flat order */
    double v[6] = { 0, 0, 0, 0, 0, 1 }, jv[6], w[6] = { 0, 0, 0, 0, 0, 1 }, wj[6];
    TU_OK(tg_jvp(t, x, v, jv));
    for (int i = 0; i < 6; i++)
        cr_expect(tu_close(jv[i], Jw[i * 6 + 5], 1e-15, 0), "jvp along c1: [%d] = %g", i, jv[i]);
    TU_OK(tg_vjp(t, x, w, wj));
    for (int j = 0; j < 6; j++)
        cr_expect(tu_close(wj[j], Jw[5 * 6 + j], 1e-15, 0), "vjp of w2: [%d] = %g", j, wj[j]);
    /* batch: rows are points */
    double X[12], Y[12];
    for (int j = 0; j < 6; j++) {
        X[j] = x[j];
        X[6 + j] = -x[j];
    }
    TU_OK(tg_eval_batch(t, 2, X, Y));
    double y2[6];
    TU_OK(tg_eval(t, X + 6, y2));
    cr_expect(memcmp(Y, y, sizeof y) == 0 && memcmp(Y + 6, y2, sizeof y2) == 0,
              "tg_eval_batch rows differ from tg_eval");
    tg_tape_free(t);
}

Test(blocks, inputs_declared_after_operations)
{
    /* blocks may be declared at any time; the flat order is declaration
     * order, not instruction order */
    tg_tape *t = tu_tape("late", 0);
    tg_var p = tg_input(t, "p");
    tg_var s = tg_sin(p);
    tg_var q = tg_input(t, "q");
    tg_output(t, "y", tg_mul(s, q));
    TU_TAPE_OK(t);
    cr_expect_eq(tg_input_block_offset(t, 1), 1);
    double x[2] = { 0.5, 3.0 }, y, g[2];
    TU_OK(tg_eval(t, x, &y));
    cr_expect(tu_same_bits(y, sin(0.5) * 3.0));
    TU_OK(tg_gradient(t, x, g));
    cr_expect(tu_close(g[0], cos(0.5) * 3.0, 1e-15, 0) && tu_same_bits(g[1], sin(0.5)),
              "gradient (%g, %g)", g[0], g[1]);
    tg_tape_free(t);
}

Test(blocks, output_may_be_an_input_or_constant)
{
    tg_tape *t = tu_tape("io", 0);
    tg_var x = tg_input(t, "x");
    tg_var o[3] = { x, tg_const(t, 2.5), x };
    tg_output_vec(t, "y", 3, o);
    TU_TAPE_OK(t);
    double xv = 7.0, y[3], J[3];
    TU_OK(tg_eval(t, &xv, y));
    cr_expect(y[0] == 7.0 && y[1] == 2.5 && y[2] == 7.0);
    TU_OK(tg_jacobian(t, &xv, J));
    cr_expect(J[0] == 1.0 && J[1] == 0.0 && J[2] == 1.0, "J = (%g, %g, %g)", J[0], J[1], J[2]);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ vector helpers */

#define NV 5

typedef struct vctx {
    int which;
    double p;
} vctx;

/* The C reference of each helper over x[0..NV) (and y = x[NV..2NV) for dot). */
static double vref(const double *x, const void *c)
{
    const vctx *v = c;
    double s = 0.0;
    switch (v->which) {
    case 0: for (int i = 0; i < NV; i++) s = i ? s + x[i] : x[i]; return s;
    case 1: for (int i = 0; i < NV; i++) s = i ? s + x[i] * x[NV + i] : x[i] * x[NV + i]; return s;
    case 2: for (int i = 0; i < NV; i++) s = i ? s + x[i] * x[i] : x[i] * x[i]; return sqrt(s);
    case 3: for (int i = 0; i < NV; i++) s = i ? s + x[i] * x[i] : x[i] * x[i]; return s;
    case 4: for (int i = 0; i < NV; i++) s = i ? s + fabs(x[i]) : fabs(x[i]); return s;
    case 5: for (int i = 0; i < NV; i++) s = fmax(s, fabs(x[i])); return s;
    case 6: for (int i = 0; i < NV; i++) s += pow(fabs(x[i]), v->p); return pow(s, 1.0 / v->p);
    case 7: for (int i = 0; i < NV; i++) s += pow(fabs(x[i]), v->p); return s;
    }
    return NAN;
}

static const char *vnames[] = { "sum", "dot", "norm2", "norm2sq", "norm1", "norm_inf", "norm_p",
                                "norm_p_to_p" };

static tg_var vrec(const vctx *v, const tg_var *x)
{
    switch (v->which) {
    case 0: return tg_sum(NV, x);
    case 1: return tg_dot(NV, x, x + NV);
    case 2: return tg_norm2(NV, x);
    case 3: return tg_norm2sq(NV, x);
    case 4: return tg_norm1(NV, x);
    case 5: return tg_norm_inf(NV, x);
    case 6: return tg_norm_p(NV, x, v->p);
    default: return tg_norm_p_to_p(NV, x, v->p);
    }
}

/* Analytic gradient. */
static void vgrad(const vctx *v, const double *x, double *g)
{
    double f = vref(x, v);
    for (int i = 0; i < 2 * NV; i++)
        g[i] = 0.0;
    for (int i = 0; i < NV; i++) {
        double sg = x[i] > 0 ? 1.0 : x[i] < 0 ? -1.0 : 0.0, ax = fabs(x[i]);
        switch (v->which) {
        case 0: g[i] = 1.0; break;
        case 1: g[i] = x[NV + i]; g[NV + i] = x[i]; break;
        case 2: g[i] = x[i] / f; break;
        case 3: g[i] = 2.0 * x[i]; break;
        case 4: g[i] = sg; break;
        case 5: g[i] = ax == f ? sg : 0.0; break;
        case 6: g[i] = sg * pow(ax, v->p - 1.0) / pow(f, v->p - 1.0); break;
        case 7: g[i] = v->p * sg * pow(ax, v->p - 1.0); break;
        }
    }
}

static void check_helper(int which, double p)
{
    vctx v = { which, p };
    size_t n = which == 1 ? 2 * NV : NV;
    tg_tape *t = tu_tape(vnames[which], 0);
    tg_var x[2 * NV];
    tg_input_vec(t, "x", NV, x);
    if (which == 1)
        tg_input_vec(t, "y", NV, x + NV);
    tg_output(t, "f", vrec(&v, x));
    TU_TAPE_OK(t);
    tu_rng rng = { 900 + (uint64_t)which };
    for (int rep = 0; rep < 6; rep++) {
        double xv[2 * NV], g[2 * NV], ga[2 * NV], gfd[2 * NV], y;
        for (size_t j = 0; j < n; j++) {
            xv[j] = tu_rng_range(&rng, -2, 2);
            if (fabs(xv[j]) < 0.05)
                xv[j] = 0.3; /* away from the kinks of |x| */
        }
        TU_OK(tg_eval(t, xv, &y));
        double want = vref(xv, &v);
        cr_expect(tu_close(y, want, 1e-14, 0), "%s(p=%g): %s, C loop %s", vnames[which], p,
                  tu_d(y).s, tu_d(want).s);
        if (which <= 5)
            cr_expect(tu_same_bits(y, want), "%s: left-to-right sum expected: %s vs %s",
                      vnames[which], tu_d(y).s, tu_d(want).s);
        TU_OK(tg_gradient(t, xv, g));
        vgrad(&v, xv, ga);
        tu_cdiff_grad(vref, &v, n, xv, gfd);
        for (size_t j = 0; j < n; j++) {
            cr_expect(tu_close(g[j], ga[j], 1e-12, 1e-14), "%s(p=%g) d/dx%zu = %s, analytic %s",
                      vnames[which], p, j, tu_d(g[j]).s, tu_d(ga[j]).s);
            cr_expect(tu_close(g[j], gfd[j], 1e-6, 1e-6),
                      "%s(p=%g) d/dx%zu = %s, central difference %s", vnames[which], p, j,
                      tu_d(g[j]).s, tu_d(gfd[j]).s);
        }
        /* Hessian against central differences of the gradient */
        double H[4 * NV * NV];
        TU_OK(tg_hessian(t, xv, H));
        for (size_t j = 0; j < n; j++) {
            double e[2 * NV] = { 0 }, col[2 * NV];
            e[j] = 1.0;
            tu_cdiff_hvp(t, xv, e, col);
            for (size_t i = 0; i < n; i++)
                cr_expect(tu_close(H[i * n + j], col[i], 1e-5, 1e-5),
                          "%s(p=%g) H[%zu][%zu] = %s, central difference %s", vnames[which], p,
                          i, j, tu_d(H[i * n + j]).s, tu_d(col[i]).s);
        }
    }
    tg_tape_free(t);
}

Test(vector, sum) { check_helper(0, 0); }
Test(vector, dot) { check_helper(1, 0); }
Test(vector, norm2) { check_helper(2, 0); }
Test(vector, norm2sq) { check_helper(3, 0); }
Test(vector, norm1) { check_helper(4, 0); }
Test(vector, norm_inf) { check_helper(5, 0); }
Test(vector, norm_p) { check_helper(6, 3.0); check_helper(6, 1.5); check_helper(6, 2.5); }
Test(vector, norm_p_to_p) { check_helper(7, 3.0); check_helper(7, 2.5); check_helper(7, 4.0); }

Test(vector, single_element)
{
    tg_tape *t = tu_tape("one", 0);
    tg_var x[1];
    tg_input_vec(t, "x", 1, x);
    tg_var o[6] = { tg_sum(1, x), tg_norm2(1, x), tg_norm1(1, x), tg_norm_inf(1, x),
                    tg_norm2sq(1, x), tg_dot(1, x, x) };
    tg_output_vec(t, "y", 6, o);
    TU_TAPE_OK(t);
    double xv = -3.0, y[6];
    TU_OK(tg_eval(t, &xv, y));
    cr_expect(y[0] == -3.0 && y[1] == 3.0 && y[2] == 3.0 && y[3] == 3.0 && y[4] == 9.0 &&
                  y[5] == 9.0,
              "(%g %g %g %g %g %g)", y[0], y[1], y[2], y[3], y[4], y[5]);
    tg_tape_free(t);
}

Test(vector, helpers_across_tapes_poison)
{
    tg_tape *a = tu_tape("a", 0), *b = tu_tape("b", 0);
    tg_var x[2];
    x[0] = tg_input(a, "x");
    x[1] = tg_input(b, "x");
    (void)tg_sum(2, x);
    cr_expect_eq(tg_tape_status(a), TG_ERR_ARG, "tg_sum over two tapes must poison the first");
    tg_tape_free(a);
    tg_tape_free(b);
}

/* ----------------------------------------------------------- _Generic mixing */

Test(generic, numbers_in_every_operand_position)
{
    tg_tape *t = tu_tape("gen", 0);
    tg_var x = tg_input(t, "x");
    tg_var o[40];
    double want[40];
    int k = 0;
    const double X = 1.5;
#define CASE(EXPR, WANT) \
    do { o[k] = (EXPR); want[k] = (WANT); k++; } while (0)
    CASE(tg_add(2, x), 2 + X);
    CASE(tg_add(x, 2.5f), X + 2.5);
    CASE(tg_add(x, 3L), X + 3);
    CASE(tg_add(7LL, x), 7 + X);
    CASE(tg_sub(2u, x), 2 - X);
    CASE(tg_sub(x, (short)3), X - 3);
    CASE(tg_mul((char)4, x), 4 * X);
    CASE(tg_mul(x, 0.25f), X * 0.25);
    CASE(tg_div(1, x), 1 / X);
    CASE(tg_div(x, 4L), X / 4);
    CASE(tg_pow(x, 3L), X * X * X);
    CASE(tg_pow(2, x), pow(2, X));
    CASE(tg_pow(x, 0.5f), sqrt(X));
    CASE(tg_min(x, 1), 1.0);
    CASE(tg_min(1.0f, x), 1.0);
    CASE(tg_max(x, 2), 2.0);
    CASE(tg_max(2UL, x), 2.0);
    CASE(tg_atan2(1, x), atan2(1, X));
    CASE(tg_atan2(x, 2.0), atan2(X, 2.0));
    CASE(tg_hypot(x, 2), hypot(X, 2));
    CASE(tg_hypot(2.0f, x), hypot(2, X));
    CASE(tg_azmul(x, 0), 0.0);
    CASE(tg_azmul(3, x), 3 * X);
    CASE(tg_lt(x, 2), 1.0);
    CASE(tg_lt(2, x), 0.0);
    CASE(tg_le(x, 1.5f), 1.0);
    CASE(tg_gt(x, 1L), 1.0);
    CASE(tg_ge(1, x), 0.0);
    CASE(tg_select(tg_gt(x, 0), x, 1), X);
    CASE(tg_select(tg_lt(x, 0), x, 1), 1.0);
    CASE(tg_select(1, x, 2.0), X);
    CASE(tg_select(0, x, 2.0), 2.0);
    CASE(tg_select(x, 3, 4.0f), 3.0);
    CASE(tg_select(x, 3L, x), 3.0);
    CASE(tg_neg(x), -X);
    CASE(tg_sqrt(tg_add(x, 1)), sqrt(X + 1));
#undef CASE
    tg_output_vec(t, "y", (size_t)k, o);
    TU_TAPE_OK(t);
    double y[40];
    TU_OK(tg_eval(t, &X, y));
    for (int i = 0; i < k; i++)
        cr_expect(tu_close(y[i], want[i], 1e-15, 0), "case %d: %s, expected %s", i, tu_d(y[i]).s,
                  tu_d(want[i]).s);
    /* derivative through a literal in the first position */
    double J[40];
    TU_OK(tg_jacobian(t, &X, J));
    cr_expect(tu_close(J[4], -1.0, 0, 0), "d(2u - x)/dx = %g", J[4]);
    cr_expect(tu_close(J[8], -1.0 / (X * X), 1e-15, 0), "d(1/x)/dx = %g", J[8]);
    cr_expect(tu_close(J[11], log(2.0) * pow(2, X), 1e-14, 0), "d(2^x)/dx = %g", J[11]);
    tg_tape_free(t);
}

Test(generic, literal_is_exact_double)
{
    /* a float literal is converted exactly (0.1f is not 0.1) */
    tg_tape *t = tu_tape("lit", 0);
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", tg_add(x, 0.1f));
    TU_TAPE_OK(t);
    double xv = 0.0, y;
    TU_OK(tg_eval(t, &xv, &y));
    cr_expect(tu_same_bits(y, (double)0.1f), "x + 0.1f at 0 = %s, expected %s", tu_d(y).s,
              tu_d((double)0.1f).s);
    tg_tape_free(t);
}

Test(generic, tg_op_functions_directly)
{
    tg_tape *t = tu_tape("ops", 0);
    tg_var x = tg_input(t, "x");
    tg_var a = tg_op1(TG_OP_SIN, tg__opnd_var(x));
    tg_var b = tg_op2(TG_OP_MUL, tg__opnd_num(2.0), tg__opnd_var(a));
    tg_var c = tg_op3(TG_OP_SELECT, tg__opnd_var(x), tg__opnd_var(b), tg__opnd_num(-1.0));
    tg_output(t, "y", c);
    TU_TAPE_OK(t);
    double xv = 0.5, y;
    TU_OK(tg_eval(t, &xv, &y));
    cr_expect(tu_same_bits(y, 2.0 * sin(0.5)));
    xv = 0.0;
    TU_OK(tg_eval(t, &xv, &y));
    cr_expect_eq(y, -1.0);
    tg_tape_free(t);
}

/* ------------------------------------------------------------- workspaces */

static tg_tape *poly_tape(size_t n)
{
    tg_tape *t = tu_tape("poly", 0);
    tg_var x[64];
    tg_input_vec(t, "x", n, x);
    tg_var acc = tg_mul(x[0], x[0]);
    for (size_t i = 1; i < n; i++)
        acc = tg_add(acc, tg_mul(tg_sin(x[i]), x[i - 1]));
    tg_output(t, "f", acc);
    TU_TAPE_OK(t);
    return t;
}

Test(workspace, reuse_across_tapes)
{
    tg_tape *small = poly_tape(3), *big = poly_tape(40), *two = blocks_tape();
    tg_workspace *w = tg_workspace_new(NULL);
    cr_assert(w);
    double x[64], v[64], a[64 * 64], b[64 * 64];
    tu_rng rng = { 31 };
    for (int i = 0; i < 64; i++) {
        x[i] = tu_rng_range(&rng, -1, 1);
        v[i] = tu_rng_range(&rng, -1, 1);
    }
    tg_tape *seq[] = { small, big, small, two, big, two, small };
    for (size_t s = 0; s < sizeof seq / sizeof seq[0]; s++) {
        const tg_tape *t = seq[s];
        size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
        TU_OK(tg_eval(t, x, a));
        TU_OK(tg_eval_ws(t, w, x, b));
        cr_expect(memcmp(a, b, m * sizeof *a) == 0, "step %zu: eval_ws differs", s);
        TU_OK(tg_jacobian(t, x, a));
        TU_OK(tg_jacobian_ws(t, w, x, b));
        cr_expect(memcmp(a, b, m * n * sizeof *a) == 0, "step %zu: jacobian_ws differs", s);
        TU_OK(tg_jvp(t, x, v, a));
        TU_OK(tg_jvp_ws(t, w, x, v, b));
        cr_expect(memcmp(a, b, m * sizeof *a) == 0, "step %zu: jvp_ws differs", s);
        TU_OK(tg_vjp(t, x, v, a));
        TU_OK(tg_vjp_ws(t, w, x, v, b));
        cr_expect(memcmp(a, b, n * sizeof *a) == 0, "step %zu: vjp_ws differs", s);
        if (m == 1) {
            TU_OK(tg_gradient(t, x, a));
            TU_OK(tg_gradient_ws(t, w, x, b));
            cr_expect(memcmp(a, b, n * sizeof *a) == 0, "step %zu: gradient_ws differs", s);
            TU_OK(tg_hvp(t, x, v, a));
            TU_OK(tg_hvp_ws(t, w, x, v, b));
            cr_expect(memcmp(a, b, n * sizeof *a) == 0, "step %zu: hvp_ws differs", s);
            TU_OK(tg_hessian(t, x, a));
            TU_OK(tg_hessian_ws(t, w, x, b));
            cr_expect(memcmp(a, b, n * n * sizeof *a) == 0, "step %zu: hessian_ws differs", s);
        }
    }
    /* after every size has been seen, repeating a call does not grow it */
    size_t bytes = tg_workspace_bytes(w);
    cr_expect(bytes > 0);
    TU_OK(tg_hessian_ws(big, w, x, b));
    TU_OK(tg_jacobian_ws(two, w, x, b));
    cr_expect_eq(tg_workspace_bytes(w), bytes, "workspace grew on a repeated call: %zu -> %zu",
                 bytes, tg_workspace_bytes(w));
    tg_workspace_free(w);
    tg_tape_free(small);
    tg_tape_free(big);
    tg_tape_free(two);
}

Test(workspace, presized_does_not_grow)
{
    tg_tape *t = poly_tape(20);
    tg_workspace *w = tg_workspace_new(t);
    cr_assert(w);
    size_t b0 = tg_workspace_bytes(w);
    cr_expect(b0 > 0);
    double x[20] = { 0 }, v[20] = { 0 }, out[400];
    for (int i = 0; i < 20; i++)
        x[i] = v[i] = 0.1 * i;
    TU_OK(tg_eval_ws(t, w, x, out));
    TU_OK(tg_gradient_ws(t, w, x, out));
    TU_OK(tg_jacobian_ws(t, w, x, out));
    TU_OK(tg_jvp_ws(t, w, x, v, out));
    TU_OK(tg_vjp_ws(t, w, x, v, out));
    TU_OK(tg_hvp_ws(t, w, x, v, out));
    TU_OK(tg_hessian_ws(t, w, x, out));
    cr_expect_eq(tg_workspace_bytes(w), b0, "pre-sized workspace grew: %zu -> %zu", b0,
                 tg_workspace_bytes(w));
    tg_workspace_free(w);
    tg_tape_free(t);
}

/* ---------------------------------------------------------- tape metadata */

Test(tape, bytes_and_size)
{
    tg_tape *t = tu_tape("b", 0);
    size_t b0 = tg_tape_bytes(t);
    cr_expect(b0 > 0, "an empty tape occupies some bytes: %zu", b0);
    cr_expect_eq(tg_tape_size(t), 0);
    tg_var x = tg_input(t, "x");
    for (int i = 0; i < 1000; i++)
        x = tg_sin(x);
    tg_output(t, "y", x);
    cr_expect_eq(tg_tape_size(t), 1001);
    cr_expect(tg_tape_bytes(t) > b0, "1001 instructions must take more bytes than 0");
    cr_expect(tg_tape_bytes(t) >= 1001, "bytes %zu too small for 1001 instructions",
              tg_tape_bytes(t));
    tg_tape_free(t);
}

Test(tape, ids_and_owner)
{
    tg_tape *t = tu_tape("ids", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    cr_expect(x.tape == t && y.tape == t);
    cr_expect_eq(x.id, 0);
    cr_expect_eq(y.id, 1);
    tg_var v[3];
    tg_input_vec(t, "v", 3, v);
    for (uint32_t i = 0; i < 3; i++)
        cr_expect(v[i].tape == t && v[i].id == 2 + i, "v[%u] = {%p, %u}", i, (void *)v[i].tape,
                  v[i].id);
    tg_var s = tg_add(x, y);
    cr_expect(s.tape == t && s.id == 5);
    tg_tape_free(t);
}

Test(tape, new_ex_flags_and_name)
{
    tg_tape *t = tg_tape_new_ex("flags", TG_NO_FOLD | TG_NO_CSE);
    cr_assert(t);
    cr_expect_eq(tg_tape_status(t), TG_OK);
    cr_expect_str_eq(tg_tape_name(t), "flags");
    cr_expect_str_eq(tg_tape_error(t), "");
    tg_tape_free(t);
    char name[] = "copied";
    t = tu_tape(name, 0);
    name[0] = 'X';
    cr_expect_str_eq(tg_tape_name(t), "copied", "the name must be copied");
    tg_tape_free(t);
}

static char *record_disasm(void)
{
    tg_tape *t = blocks_tape();
    tg_var x = tg_input(t, "extra");
    tg_output(t, "z", tg_atan2(tg_pow(x, 2.5), tg_hypot(x, 1e-3)));
    char *d = tg_tape_disasm(t);
    tg_tape_free(t);
    return d;
}

Test(tape, deterministic_disassembly)
{
    char *a = record_disasm(), *b = record_disasm();
    cr_assert(a && b);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}
