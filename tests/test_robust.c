/* tests/test_robust.c -- issue 9 (robustness), defects 3-8, each through
 * every path it concerns:
 *  - limits checked first: derivative tapes whose output count exceeds a
 *    tape's limit fail at once with TG_ERR_LIMIT (a 70000-input Hessian,
 *    4.9e9 outputs, used to run for minutes and take gigabytes), and block
 *    declarations check their size before touching the caller's array;
 *  - symmetric Hessians at extreme arguments of pow, atan2 and hypot: the
 *    two mixed partials agree bit for bit and equal the analytic value, in
 *    the numeric sweeps (tg_hessian, tg_hvp, their _ws twins) and in the
 *    Hessian and HVP tapes;
 *  - the hypot gradient at subnormal and huge points, within 1 ulp of the
 *    exact value;
 *  - zero-size input and output blocks and the tapeless zero of empty
 *    reductions, through numeric calls, derivative tapes, optimisation,
 *    tg_call and the block queries (Rust: tests/test_rust.c). */
#include <criterion/criterion.h>
#include <float.h>

#include "testutil.h"

/* ============================================================ limits */

/* f(x) = (sum x)^2 over one block of n inputs */
static tg_tape *sum_squared(size_t n)
{
    tg_tape *t = tu_tape("l", 0);
    tg_var *x = malloc(n * sizeof *x);
    cr_assert(x);
    tg_input_vec(t, "x", n, x);
    tg_var s = tg_sum(n, x);
    tg_output(t, "y", tg_mul(s, s));
    free(x);
    TU_TAPE_OK(t);
    return t;
}

static void expect_limit(tg_tape *d, const char *what, const char *needle)
{
    cr_assert(d != NULL, "%s: NULL", what);
    cr_expect_eq(tg_tape_status(d), TG_ERR_LIMIT, "%s: status %s (%s), expected TG_ERR_LIMIT",
                 what, tg_status_str(tg_tape_status(d)), tg_tape_error(d));
    cr_expect(strstr(tg_tape_error(d), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
              tg_tape_error(d), needle);
    cr_expect_eq(tg_num_inputs(d), 0, "%s: the refused tape must be empty (no work done)", what);
    tg_tape_free(d);
}

/* The timeout is the oracle for "at once": before the fix this ran for
 * minutes and grew past 4.5 GB. */
Test(limits, hessian_of_70000_inputs_is_refused_at_once, .timeout = 20)
{
    tg_tape *f = sum_squared(70000);
    expect_limit(tg_hessian_tape(f, TG_ALL), "tg_hessian_tape", "would have 4900000000 outputs");
    expect_limit(tg_hessian_tape(f, 0), "tg_hessian_tape wrt 0", "4900000000");
    expect_limit(tg_joint_tape(f, TG_F | TG_HESS, TG_ALL), "tg_joint_tape(F|HESS)",
                 "4900000001 outputs");
    /* the parts that fit are still built */
    tg_tape *g = tg_joint_tape(f, TG_F | TG_GRAD, TG_ALL);
    TU_TAPE_OK(g);
    cr_expect_eq(tg_num_outputs(g), 70001);
    tg_tape_free(g);
    tg_tape_free(f);
}

Test(limits, jacobian_over_the_limit_is_refused_at_once, .timeout = 20)
{
    /* 70000 inputs, 70000 outputs: m * n = 4.9e9 */
    size_t n = 70000;
    tg_tape *f = tu_tape("wide", 0);
    tg_var *x = malloc(n * sizeof *x);
    cr_assert(x);
    tg_input_vec(f, "x", n, x);
    tg_output_vec(f, "y", n, x);
    free(x);
    TU_TAPE_OK(f);
    expect_limit(tg_jacobian_tape(f, TG_ALL), "tg_jacobian_tape", "would have 4900000000 outputs");
    expect_limit(tg_joint_tape(f, TG_JAC, TG_ALL), "tg_joint_tape(JAC)", "4900000000");
    tg_tape_free(f);
}

Test(limits, block_size_checked_before_the_array)
{
    /* an impossible n with a one-element array: nothing may be read or
     * written past it (ASan would report it), and the tape says why */
    tg_var one[1] = { { NULL, 7 } };
    tg_tape *t = tu_tape("b", 0);
    tg_input_vec(t, "x", (size_t)UINT32_MAX + 5, one);
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT, "%s", tg_tape_error(t));
    cr_expect(strstr(tg_tape_error(t), "at most 4294967294 input scalars") != NULL, "%s",
              tg_tape_error(t));
    cr_expect(one[0].tape == NULL && one[0].id == 7, "x was written for an impossible n");
    tg_tape_free(t);

    t = tu_tape("b", 0);
    one[0] = tg_input(t, "x");
    tg_output_vec(t, "y", (size_t)UINT32_MAX + 5, one);
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT, "%s", tg_tape_error(t));
    tg_tape_free(t);

    /* a bad name is reported before y is read (y is too short to read) */
    t = tu_tape("b", 0);
    one[0] = tg_input(t, "x");
    tg_output_vec(t, "", 1000, one);
    cr_expect_eq(tg_tape_status(t), TG_ERR_ARG);
    cr_expect(strstr(tg_tape_error(t), "name") != NULL, "%s", tg_tape_error(t));
    tg_tape_free(t);

    /* a possible n on a failed tape: x gets the documented placeholders */
    tg_var x[3] = { { NULL, 1 }, { NULL, 2 }, { NULL, 3 } };
    t = tu_tape("b", 0);
    tg_input_vec(t, "x", 3, x);
    tg_input_vec(t, "x", 3, x);    /* duplicate name */
    cr_expect_eq(tg_tape_status(t), TG_ERR_ARG);
    for (int i = 0; i < 3; i++)
        cr_expect(x[i].tape == t && x[i].id == TG_NIL, "x[%d] = {%p, %u}", i, (void *)x[i].tape,
                  x[i].id);
    tg_tape_free(t);
}

/* ============================================= symmetric Hessians (defect 4) */

typedef tg_var (*rec2_fn)(tg_var, tg_var);
static tg_var r_pow(tg_var a, tg_var b) { return tg_pow(a, b); }
static tg_var r_atan2(tg_var a, tg_var b) { return tg_atan2(a, b); }
static tg_var r_hypot(tg_var a, tg_var b) { return tg_hypot(a, b); }

static tg_tape *rec2(const char *name, rec2_fn f, unsigned flags)
{
    tg_tape *t = tu_tape(name, flags);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_output(t, "y", f(x[0], x[1]));
    TU_TAPE_OK(t);
    return t;
}

/* The Hessian of t at x by every path: [0] tg_hessian, [1] tg_hessian_ws,
 * [2] tg_hvp columns, [3] the Hessian tape, [4] the HVP tape. */
#define NPATH 5
static const char *const PATH[NPATH] = { "tg_hessian", "tg_hessian_ws", "tg_hvp",
                                         "tg_hessian_tape", "tg_hvp_tape" };

static void hessians(const tg_tape *t, const double *x, double H[NPATH][4])
{
    TU_OK(tg_hessian(t, x, H[0]));
    tg_workspace *w = tg_workspace_new(t);
    cr_assert(w);
    TU_OK(tg_hessian_ws(t, w, x, H[1]));
    tg_workspace_free(w);
    for (int j = 0; j < 2; j++) {
        double v[2] = { j == 0, j == 1 }, hv[2];
        TU_OK(tg_hvp(t, x, v, hv));
        H[2][0 * 2 + j] = hv[0];
        H[2][1 * 2 + j] = hv[1];
    }
    tg_tape *h = tg_hessian_tape(t, TG_ALL);
    TU_TAPE_OK(h);
    TU_OK(tg_eval(h, x, H[3]));
    tg_tape_free(h);
    h = tg_hvp_tape(t, TG_ALL);
    TU_TAPE_OK(h);
    for (int j = 0; j < 2; j++) {
        double in[4] = { x[0], x[1], j == 0, j == 1 }, hv[2];
        TU_OK(tg_eval(h, in, hv));
        H[4][0 * 2 + j] = hv[0];
        H[4][1 * 2 + j] = hv[1];
    }
    tg_tape_free(h);
}

/* Same value: equal (+0 == -0), or both NaN. */
static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Mixed partials equal in every path and to `mixed` (NaN: must be NaN),
 * within rtol; H01 and H10 the same value in each path. */
static void check_mixed(const char *name, rec2_fn f, double x0, double x1, double mixed,
                        double rtol)
{
    for (int k = 0; k < 2; k++) {
        tg_tape *t = rec2(name, f, k ? TG_NO_FOLD | TG_NO_CSE : 0);
        double x[2] = { x0, x1 }, H[NPATH][4];
        hessians(t, x, H);
        for (int p = 0; p < NPATH; p++) {
            cr_expect(same(H[p][1], H[p][2]), "%s(%a, %a) [%s, %s tape]: H01 = %s but H10 = %s",
                      name, x0, x1, PATH[p], k ? "no-fold" : "default", tu_d(H[p][1]).s,
                      tu_d(H[p][2]).s);
            int ok = isnan(mixed) ? isnan(H[p][1])
                   : (isinf(mixed) || mixed == 0.0) ? H[p][1] == mixed
                   : tu_close(H[p][1], mixed, rtol, 0.0);
            cr_expect(ok, "%s(%a, %a) [%s, %s tape]: mixed partial %s, expected %s", name, x0, x1,
                      PATH[p], k ? "no-fold" : "default", tu_d(H[p][1]).s, tu_d(mixed).s);
        }
        tg_tape_free(t);
    }
}

/* d2 pow / dx dy = x^(y-1) (1 + y log x), computed in long double */
static double pow_mixed(double x, double y)
{
    long double p = powl(x, (long double)y - 1.0L);
    return (double)(p * (1.0L + (long double)y * logl(x)));
}

Test(symmetric, pow_at_extreme_arguments)
{
    /* the points of the issue */
    check_mixed("pow", r_pow, 5e-324, 1.0, 1.0 + log(5e-324), 1e-13);   /* H10 was +inf */
    check_mixed("pow", r_pow, DBL_MIN, 5e-324, pow_mixed(DBL_MIN, 5e-324), 1e-13); /* H01 was -inf */
    /* x = 0: 0^(y-1) (1 + y log 0) */
    check_mixed("pow", r_pow, 0.0, 0.5, -INFINITY, 0);                 /* H01 was NaN */
    check_mixed("pow", r_pow, 0.0, 1.0, -INFINITY, 0);
    check_mixed("pow", r_pow, 0.0, 2.0, 0.0, 0);
    check_mixed("pow", r_pow, 0.0, 0.0, INFINITY, 0);
    /* ordinary points, subnormal and huge ones */
    check_mixed("pow", r_pow, 2.0, 3.0, pow_mixed(2.0, 3.0), 1e-14);
    check_mixed("pow", r_pow, 1e-310, 0.5, pow_mixed(1e-310, 0.5), 1e-13);
    check_mixed("pow", r_pow, 1e300, 1.01, pow_mixed(1e300, 1.01), 1e-13);
    check_mixed("pow", r_pow, 0.5, -1000.0, pow_mixed(0.5, -1000.0), 1e-12);
    check_mixed("pow", r_pow, -2.0, 3.0, NAN, 0);   /* log of a negative base: NaN both ways */
}

Test(symmetric, atan2_at_extreme_arguments)
{
    /* (+-inf, finite): atan2 is flat there; every second derivative -> 0 */
    check_mixed("atan2", r_atan2, INFINITY, 1.0, 0.0, 0);
    check_mixed("atan2", r_atan2, -INFINITY, 1.0, 0.0, 0);
    check_mixed("atan2", r_atan2, INFINITY, -3.0, 0.0, 0);
    check_mixed("atan2", r_atan2, 1.0, INFINITY, 0.0, 0);
    /* (0, +-subnormal): (a^2 - b^2) / h^4 = -1/b^2, beyond DBL_MAX */
    check_mixed("atan2", r_atan2, 0.0, 5e-324, -INFINITY, 0);
    check_mixed("atan2", r_atan2, 0.0, -5e-324, -INFINITY, 0);
    check_mixed("atan2", r_atan2, -0.0, 1e-310, -INFINITY, 0);
    check_mixed("atan2", r_atan2, 5e-324, 0.0, INFINITY, 0);
    check_mixed("atan2", r_atan2, 1e-310, 1e-310, 0.0, 0);
    /* ordinary: (a^2 - b^2)/(a^2 + b^2)^2 */
    check_mixed("atan2", r_atan2, 1.0, 2.0, -3.0 / 25.0, 1e-14);
    check_mixed("atan2", r_atan2, 1e100, 3e100, -8.0 / 100.0 * 1e-200, 1e-13);
}

Test(symmetric, hypot_at_extreme_arguments)
{
    /* -ab / h^3 */
    check_mixed("hypot", r_hypot, 3.0, 4.0, -12.0 / 125.0, 1e-14);
    check_mixed("hypot", r_hypot, 1e-310, 1e-310, -INFINITY, 0);    /* was -inf, diagonal NaN */
    check_mixed("hypot", r_hypot, 0.0, 0.0, 0.0, 0);
    check_mixed("hypot", r_hypot, 1e300, 1e300, -1.0 / (2.0 * 1.4142135623730951e300), 1e-14);
    /* the diagonal at a subnormal point: b^2/h^3 -> +inf, not NaN */
    tg_tape *t = rec2("hypot", r_hypot, 0);
    double x[2] = { 1e-310, 1e-310 }, H[NPATH][4];
    hessians(t, x, H);
    for (int p = 0; p < NPATH; p++)
        cr_expect(H[p][0] == INFINITY && H[p][3] == INFINITY, "hypot(1e-310, 1e-310) [%s]: "
                  "diagonal %s, %s, expected +inf", PATH[p], tu_d(H[p][0]).s, tu_d(H[p][3]).s);
    tg_tape_free(t);
}

/* Bit-for-bit symmetry over a grid of ordinary and extreme points: the
 * mixed partial is one expression (rules.def), whichever side computes it. */
Test(symmetric, mixed_partials_same_bits_on_a_grid)
{
    static const double v[] = { 0.0, -0.0, 5e-324, -5e-324, 1e-310, DBL_MIN, 1e-200, 0.3, 1.0,
                                -1.0, 2.5, -7.0, 1e200, 1.5e308, DBL_MAX, INFINITY, -INFINITY,
                                NAN };
    const size_t nv = sizeof v / sizeof *v;
    rec2_fn fs[3] = { r_pow, r_atan2, r_hypot };
    const char *names[3] = { "pow", "atan2", "hypot" };
    size_t checked = 0;
    for (int fi = 0; fi < 3; fi++) {
        tg_tape *t = rec2(names[fi], fs[fi], 0);
        tg_tape *ht = tg_hessian_tape(t, TG_ALL);
        TU_TAPE_OK(ht);
        for (size_t i = 0; i < nv; i++)
            for (size_t j = 0; j < nv; j++) {
                double x[2] = { v[i], v[j] }, H[4], Ht[4];
                TU_OK(tg_hessian(t, x, H));
                TU_OK(tg_eval(ht, x, Ht));
                cr_expect(tu_same_bits_nan(H[1], H[2]) || (H[1] == 0 && H[2] == 0),
                          "%s(%a, %a): tg_hessian H01 %s, H10 %s", names[fi], x[0], x[1],
                          tu_d(H[1]).s, tu_d(H[2]).s);
                cr_expect(same(Ht[1], Ht[2]), "%s(%a, %a): Hessian tape H01 %s, H10 %s",
                          names[fi], x[0], x[1], tu_d(Ht[1]).s, tu_d(Ht[2]).s);
                cr_expect(same(H[1], Ht[1]), "%s(%a, %a): tg_hessian H01 %s, tape %s", names[fi],
                          x[0], x[1], tu_d(H[1]).s, tu_d(Ht[1]).s);
                checked++;
            }
        tg_tape_free(ht);
        tg_tape_free(t);
    }
    cr_expect_eq(checked, 3 * nv * nv);
}

/* ===================================== hypot gradient at subnormals (defect 5) */

/* gradient of hypot at (a, b) by tg_gradient, tg_gradient_ws, the
 * gradient tape and tg_jvp, each within `ulps` of want[] */
static void check_hypot_grad(double a, double b, const double *want, uint64_t ulps)
{
    tg_tape *t = rec2("hypot", r_hypot, 0);
    double x[2] = { a, b }, g[4][2];
    TU_OK(tg_gradient(t, x, g[0]));
    tg_workspace *w = tg_workspace_new(t);
    TU_OK(tg_gradient_ws(t, w, x, g[1]));
    tg_workspace_free(w);
    tg_tape *gt = tg_gradient_tape(t, TG_ALL);
    TU_TAPE_OK(gt);
    TU_OK(tg_eval(gt, x, g[2]));
    tg_tape_free(gt);
    for (int j = 0; j < 2; j++) {
        double v[2] = { j == 0, j == 1 };
        TU_OK(tg_jvp(t, x, v, &g[3][j]));
    }
    static const char *path[4] = { "tg_gradient", "tg_gradient_ws", "gradient tape", "tg_jvp" };
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 2; j++)
            cr_expect(tu_ulp_diff(g[p][j], want[j]) <= ulps,
                      "d hypot(%a, %a) / dx%d [%s] = %a, expected %a within %llu ulp", a, b, j,
                      path[p], g[p][j], want[j], (unsigned long long)ulps);
    tg_tape_free(t);
}

Test(hypot_gradient, subnormal_and_huge_points_within_one_ulp)
{
    const double r = 0x1.6a09e667f3bcdp-1;    /* 1/sqrt(2), correctly rounded */
    const double d[2] = { r, r };
    check_hypot_grad(1e-310, 1e-310, d, 1);   /* was 38 ulp off */
    check_hypot_grad(5e-324, 5e-324, d, 1);
    check_hypot_grad(-0x1p-1060, -0x1p-1060, (const double[2]){ -r, -r }, 1);
    check_hypot_grad(1.5e308, 1.5e308, d, 1); /* the hypot overflows: was (0, 0) */
    check_hypot_grad(DBL_MAX, DBL_MAX, d, 1);
    /* 3-4-5 triangles scaled to the subnormal and to the huge range */
    const double t345[2] = { 0.6, 0.8 };
    check_hypot_grad(3 * 0x1p-1072, 4 * 0x1p-1072, t345, 1);
    check_hypot_grad(3e-310, 4e-310, t345, 1);
    check_hypot_grad(3e307, 4e307, t345, 1);
    /* one operand subnormal, the other ordinary: x/h is then subnormal
     * itself, exact to its grid */
    const double one[2] = { 0x1p-1040 / 2.0, 1.0 };
    check_hypot_grad(0x1p-1040, 2.0, one, 0);
}

/* ======================================== zero-size blocks (defect 8) */

/* inputs lam[0], x[2], mu[0]; outputs g[0], f = x0 * x1 + dot(lam, lam)
 * (+ the tapeless zero), z[0] */
static tg_tape *empty_blocks(unsigned flags)
{
    tg_tape *t = tu_tape("e", flags);
    tg_var lam[1], x[2];
    tg_input_vec(t, "lam", 0, lam);
    tg_input_vec(t, "x", 2, x);
    tg_input_vec(t, "mu", 0, NULL);
    tg_var c = tg_dot(0, lam, lam);
    cr_expect(c.tape == NULL && c.id == TG_ZERO, "tg_dot(0) = {%p, %u}", (void *)c.tape, c.id);
    tg_output_vec(t, "g", 0, NULL);
    tg_output(t, "f", tg_add(tg_mul(x[0], tg_sin(x[1])), c));
    tg_output_vec(t, "z", 0, lam);
    TU_TAPE_OK(t);
    return t;
}

static void expect_blocks(const tg_tape *t, const char *what, size_t nin, size_t nout)
{
    static const char *in[] = { "lam", "x", "mu" }, *out[] = { "g", "f", "z" };
    static const size_t insz[] = { 0, 2, 0 }, inoff[] = { 0, 0, 2 };
    static const size_t outsz[] = { 0, 1, 0 }, outoff[] = { 0, 0, 1 };
    cr_assert_eq(tg_num_input_blocks(t), nin, "%s: %zu input blocks", what, tg_num_input_blocks(t));
    cr_assert_eq(tg_num_output_blocks(t), nout, "%s: %zu output blocks", what,
                 tg_num_output_blocks(t));
    for (size_t b = 0; b < 3 && b < nin; b++) {
        cr_expect_str_eq(tg_input_block_name(t, b), in[b], "%s", what);
        cr_expect_eq(tg_input_block_size(t, b), insz[b], "%s: input block %zu size", what, b);
        cr_expect_eq(tg_input_block_offset(t, b), inoff[b], "%s: input block %zu offset", what, b);
        cr_expect_eq(tg_input_block_index(t, in[b]), (int)b, "%s", what);
    }
    for (size_t b = 0; b < 3 && b < nout && nout == 3; b++) {
        cr_expect_str_eq(tg_output_block_name(t, b), out[b], "%s", what);
        cr_expect_eq(tg_output_block_size(t, b), outsz[b], "%s: output block %zu size", what, b);
        cr_expect_eq(tg_output_block_offset(t, b), outoff[b], "%s: output block %zu offset", what,
                     b);
    }
}

Test(empty_blocks, declared_counted_and_listed)
{
    tg_tape *t = empty_blocks(0);
    cr_expect_eq(tg_num_inputs(t), 2);
    cr_expect_eq(tg_num_outputs(t), 1, "a size-0 output block and a scalar one: m == 1");
    expect_blocks(t, "recorded", 3, 3);
    char *dis = tg_tape_disasm(t);
    cr_assert(dis);
    cr_expect(strstr(dis, "lam") && strstr(dis, "mu") && strstr(dis, "z"),
              "empty blocks missing from the disassembly:\n%s", dis);
    free(dis);
    /* duplicate names are still refused, empty or not */
    tg_input_vec(t, "lam", 0, NULL);
    cr_expect_eq(tg_tape_status(t), TG_ERR_ARG);
    tg_tape_free(t);
}

Test(empty_blocks, numeric_calls)
{
    for (int k = 0; k < 2; k++) {
        tg_tape *t = empty_blocks(k ? TG_NO_FOLD | TG_NO_CSE : 0);
        double x[2] = { 1.5, 0.25 }, y[1], g[2], J[2], H[4], hv[2], jv[1], wj[2];
        double f = 1.5 * sin(0.25), d0 = sin(0.25), d1 = 1.5 * cos(0.25);
        TU_OK(tg_eval(t, x, y));
        cr_expect(tu_close(y[0], f, 1e-15, 0), "eval %s", tu_d(y[0]).s);
        TU_OK(tg_gradient(t, x, g));     /* m == 1 although there are three output blocks */
        cr_expect(tu_close(g[0], d0, 1e-15, 0) && tu_close(g[1], d1, 1e-15, 0));
        TU_OK(tg_jacobian(t, x, J));
        cr_expect(tu_same_bits(J[0], g[0]) && tu_same_bits(J[1], g[1]));
        double v[2] = { 1.0, 0.0 }, w[1] = { 1.0 };
        TU_OK(tg_jvp(t, x, v, jv));
        cr_expect(tu_same_bits(jv[0], g[0]));
        TU_OK(tg_vjp(t, x, w, wj));
        cr_expect(tu_same_bits(wj[0], g[0]) && tu_same_bits(wj[1], g[1]));
        TU_OK(tg_hessian(t, x, H));
        cr_expect(H[0] == 0.0 && tu_close(H[1], cos(0.25), 1e-15, 0)
                  && tu_close(H[3], -1.5 * sin(0.25), 1e-15, 0) && H[1] == H[2]);
        TU_OK(tg_hvp(t, x, v, hv));
        cr_expect(tu_same_bits(hv[0], H[0]) && tu_same_bits(hv[1], H[2]));
        double X[4] = { 1.5, 0.25, 1.5, 0.25 }, Y[2], G[4];
        TU_OK(tg_eval_batch(t, 2, X, Y));
        TU_OK(tg_gradient_batch(t, 2, X, G));
        cr_expect(tu_same_bits(Y[1], y[0]) && tu_same_bits(G[3], g[1]));
        tg_tape_free(t);
    }
}

Test(empty_blocks, no_inputs_or_no_outputs)
{
    /* n == 0: every derivative is empty, arrays may be NULL */
    tg_tape *t = tu_tape("n0", 0);
    tg_input_vec(t, "p", 0, NULL);
    tg_output(t, "c", tg_const(t, 2.5));
    TU_TAPE_OK(t);
    double y[1];
    TU_OK(tg_eval(t, NULL, y));
    cr_expect_eq(y[0], 2.5);
    TU_OK(tg_gradient(t, NULL, NULL));
    TU_OK(tg_jacobian(t, NULL, NULL));
    TU_OK(tg_hessian(t, NULL, NULL));
    TU_OK(tg_hvp(t, NULL, NULL, NULL));
    double w[1] = { 1.0 };
    TU_OK(tg_vjp(t, NULL, w, NULL));
    TU_OK(tg_jvp(t, NULL, NULL, y));
    cr_expect_eq(y[0], 0.0, "jvp of a tape without inputs: %s", tu_d(y[0]).s);
    tg_tape *d[4] = { tg_gradient_tape(t, TG_ALL), tg_hessian_tape(t, 0), tg_jvp_tape(t, 0),
                      tg_hvp_tape(t, TG_ALL) };
    size_t want_out[4] = { 0, 0, 1, 0 };
    for (int k = 0; k < 4; k++) {
        TU_TAPE_OK(d[k]);
        cr_expect_eq(tg_num_outputs(d[k]), want_out[k], "derivative %d", k);
        cr_expect_eq(tg_num_output_blocks(d[k]), 1, "derivative %d keeps its (empty) block", k);
        tg_tape_free(d[k]);
    }
    tg_tape_free(t);

    /* m == 0: the Jacobian is 0 x n; gradients need m == 1 */
    t = tu_tape("m0", 0);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_output_vec(t, "none", 0, NULL);
    TU_TAPE_OK(t);
    double xx[2] = { 1, 2 }, wj[2] = { 7, 7 };
    TU_OK(tg_eval(t, xx, NULL));
    TU_OK(tg_jacobian(t, xx, NULL));
    TU_OK(tg_vjp(t, xx, NULL, wj));
    cr_expect(wj[0] == 0.0 && wj[1] == 0.0, "vjp with no outputs is the zero vector");
    cr_expect_eq(tg_gradient(t, xx, wj), TG_ERR_SHAPE, "m == 0 has no gradient");
    tg_tape *jt = tg_jacobian_tape(t, TG_ALL), *vt = tg_vjp_tape(t, TG_ALL);
    TU_TAPE_OK(jt);
    TU_TAPE_OK(vt);
    cr_expect_eq(tg_num_outputs(jt), 0);
    cr_expect_eq(tg_input_block_size(vt, 1), 0, "the cotangent block w is empty");
    TU_OK(tg_eval(vt, xx, wj));
    cr_expect(wj[0] == 0.0 && wj[1] == 0.0);
    tg_tape_free(jt);
    tg_tape_free(vt);
    tg_tape *gt = tg_gradient_tape(t, TG_ALL);
    cr_expect_eq(tg_tape_status(gt), TG_ERR_SHAPE);
    tg_tape_free(gt);
    tg_tape_free(t);
}

Test(empty_blocks, derivative_tapes)
{
    tg_tape *f = empty_blocks(0);
    double x[2] = { 1.5, 0.25 }, g[2];
    TU_OK(tg_gradient(f, x, g));
    /* wrt the empty block lam (0) and mu (2): n_w = 0 */
    for (int wrt = 0; wrt <= 2; wrt += 2) {
        tg_tape *d[6] = { tg_gradient_tape(f, wrt), tg_jacobian_tape(f, wrt), tg_hessian_tape(f, wrt),
                          tg_jvp_tape(f, wrt), tg_vjp_tape(f, wrt), tg_hvp_tape(f, wrt) };
        const size_t nout[6] = { 0, 0, 0, 1, 0, 0 };
        for (int k = 0; k < 6; k++) {
            TU_TAPE_OK(d[k]);
            cr_expect_eq(tg_num_outputs(d[k]), nout[k], "kind %d wrt %d: %zu outputs", k, wrt,
                         tg_num_outputs(d[k]));
            cr_expect_eq(tg_num_output_blocks(d[k]), 1);
            expect_blocks(d[k], "derivative tape", k >= 3 ? 4 : 3, 1);
        }
        /* the tangent block v of the JVP tape is empty: J v = 0 */
        cr_expect_str_eq(tg_input_block_name(d[3], 3), "v");
        cr_expect_eq(tg_input_block_size(d[3], 3), 0);
        double jv[1] = { 9 };
        TU_OK(tg_eval(d[3], x, jv));
        cr_expect_eq(jv[0], 0.0, "J v with an empty v: %s", tu_d(jv[0]).s);
        cr_expect_eq(tg_input_block_size(d[5], 3), 0, "hvp tape: empty v");
        for (int k = 0; k < 6; k++)
            tg_tape_free(d[k]);
    }
    /* wrt x and TG_ALL: the empty blocks are carried along, values agree */
    int wrts[2] = { 1, TG_ALL };
    for (int i = 0; i < 2; i++) {
        tg_tape *gt = tg_gradient_tape(f, wrts[i]);
        TU_TAPE_OK(gt);
        expect_blocks(gt, "gradient tape", 3, 1);
        double gg[2];
        TU_OK(tg_eval(gt, x, gg));
        cr_expect(tu_same_bits(gg[0], g[0]) && tu_same_bits(gg[1], g[1]));
        tg_tape *jt = tg_jvp_tape(f, wrts[i]);
        TU_TAPE_OK(jt);
        cr_expect_eq(tg_input_block_size(jt, 3), 2);
        tg_tape_free(jt);
        tg_tape_free(gt);
    }
    /* the joint tape with every part wrt an empty block */
    tg_tape *jt = tg_joint_tape(f, TG_F | TG_GRAD | TG_JAC | TG_HESS | TG_HVP, 0);
    TU_TAPE_OK(jt);
    cr_expect_eq(tg_num_outputs(jt), 1, "f (1) + grad (0) + jac (1 x 0) + hess (0) + hvp (0)");
    cr_expect_eq(tg_num_output_blocks(jt), 5, "every part keeps its block, empty or not");
    cr_expect_eq(tg_input_block_size(jt, 3), 0, "the tangent block v is empty");
    tg_tape_free(jt);
    tg_tape_free(f);
}

Test(empty_blocks, optimise_call_and_replay)
{
    tg_tape *f = empty_blocks(TG_NO_FOLD | TG_NO_CSE);
    for (int level = TG_OPT_NONE; level <= TG_OPT_MAX; level++) {
        tg_tape *u = empty_blocks(TG_NO_FOLD | TG_NO_CSE);
        TU_OK(tg_tape_optimize(u, (tg_opt_level)level));
        expect_blocks(u, "optimised", 3, 3);
        double x[2] = { -0.5, 3.0 }, a[1], b[1];
        TU_OK(tg_eval(f, x, a));
        TU_OK(tg_eval(u, x, b));
        cr_expect(tu_same_bits(a[0], b[0]), "level %d: %s vs %s", level, tu_d(a[0]).s,
                  tu_d(b[0]).s);
        tg_tape_free(u);
    }
    /* tg_call: f has 2 input scalars (the empty blocks take none); args
     * may hold the tapeless zero */
    tg_tape *t = tu_tape("caller", 0);
    tg_var p = tg_input(t, "p"), args[2] = { p, TG_ZERO_VAR }, res[1];
    tg_call(t, f, args, res);
    tg_output(t, "y", res[0]);
    TU_TAPE_OK(t);
    double y[1], pp[1] = { 2.0 };
    TU_OK(tg_eval(t, pp, y));
    cr_expect_eq(y[0], 0.0, "p * sin(0) + 0 = %s", tu_d(y[0]).s);
    /* a callee with no inputs at all: args may be NULL */
    tg_tape *k = tu_tape("k", 0);
    tg_input_vec(k, "none", 0, NULL);
    tg_output(k, "c", tg_const(k, 4.0));
    tg_call(t, k, NULL, res);
    tg_output(t, "c", res[0]);
    TU_TAPE_OK(t);
    tg_tape_free(k);
    tg_tape_free(t);
    tg_tape_free(f);
}

Test(empty_blocks, empty_reductions_are_zero)
{
    tg_var none[1] = { { NULL, 0 } };
    tg_var r[8] = { tg_sum(0, NULL), tg_dot(0, NULL, NULL), tg_norm2(0, none), tg_norm2sq(0, NULL),
                    tg_norm1(0, NULL), tg_norm_inf(0, NULL), tg_norm_p(0, NULL, 3.0),
                    tg_norm_p_to_p(0, none, -1.0) };
    for (int i = 0; i < 8; i++)
        cr_expect(r[i].tape == NULL && r[i].id == TG_ZERO, "reduction %d of n = 0: {%p, %u}", i,
                  (void *)r[i].tape, r[i].id);
    /* the tapeless zero as an operand and an output: the literal +0.0 */
    tg_tape *t = tu_tape("z", 0);
    tg_var x = tg_input(t, "x");
    tg_var ys[6] = { tg_add(x, r[0]), tg_mul(r[1], x), tg_select(r[2], x, 5.0),
                     tg_sub(r[3], r[4]), r[5], tg_sum(2, (tg_var[2]){ x, r[6] }) };
    tg_output_vec(t, "y", 6, ys);
    TU_TAPE_OK(t);
    double in[1] = { -0.0 }, y[6];
    TU_OK(tg_eval(t, in, y));
    cr_expect(tu_same_bits(y[0], 0.0), "-0 + 0 = +0: %s", tu_d(y[0]).s);
    cr_expect(tu_same_bits(y[1], -0.0), "0 * -0 = -0: %s", tu_d(y[1]).s);
    cr_expect_eq(y[2], 5.0);
    cr_expect(tu_same_bits(y[3], 0.0) && tu_same_bits(y[4], 0.0) && tu_same_bits(y[5], 0.0));
    double g[1];
    TU_OK(tg_vjp(t, in, (double[6]){ 1, 1, 1, 1, 1, 1 }, g));
    cr_expect_eq(g[0], 1.0 + 0.0 + 0.0 + 0.0 + 0.0 + 1.0, "d/dx: %s", tu_d(g[0]).s);
    tg_tape_free(t);
    /* operations with no tape: +0.0 stays the tapeless zero, else nil */
    tg_var a = tg_add(r[0], r[1]), b = tg_exp(r[0]), c = tg_neg(r[0]);
    cr_expect(a.tape == NULL && a.id == TG_ZERO);
    cr_expect(b.tape == NULL && b.id == TG_NIL, "exp(0) = 1 has no tape to live on");
    cr_expect(c.tape == NULL && c.id == TG_NIL, "-0.0 is not the tapeless +0");
    /* a vector of tapeless zeros only */
    tg_var zz[2] = { r[0], r[1] };
    tg_var s = tg_norm2(2, zz);
    cr_expect(s.tape == NULL && s.id == TG_ZERO);
}
