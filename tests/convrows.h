/* tests/convrows.h -- docs/conventions.md's table "Derivatives at special
 * points", once, for every test that checks it: test_conventions.c (every
 * numeric path), test_derive.c (every derivative tape) and test_rust.c (the
 * generated Rust kernels).
 *
 * The table is a list of expressions (cv_exprs, each a recorder of n <= 3
 * inputs with an identifier used for Rust kernel names) and a list of
 * points (cv_points, designated initialisers): an expression, a point, the
 * value there, the gradient, and where the row states it the Hessian
 * (row-major) and whether the sign bit of the value matters.  Families of
 * points whose expected values are computed (floor & co. at many points,
 * fract, cbrt away from 0) are cv_families; cv_all() expands everything
 * into one array.  Expected values match per cv_match: NaN only NaN, an
 * infinity only the same infinity, 0 either zero, anything else within
 * CV_RTOL relative.  Everything is static; include after testutil.h. */
#ifndef TAPEGEN_CONVROWS_H
#define TAPEGEN_CONVROWS_H

#include "testutil.h"

#define CV_NMAX 3           /* inputs of the widest expression */
#define CV_RTOL 1e-12

/* got matches the table's want (see above). */
TU_UNUSED static int cv_match(double got, double want)
{
    return tu_close(got, want, CV_RTOL, 0.0);
}

/* ----------------------------------------------------------- expressions */

typedef tg_var (*cv_rec)(tg_tape *t, const tg_var *x);

typedef struct cv_expr {
    const char *id;     /* a lowercase identifier (Rust kernels row_<id>) */
    size_t n;           /* inputs (one block "x") */
    cv_rec rec;         /* records the expression on the inputs x[0..n) */
} cv_expr;

/*  X(id, n, expression over the inputs x[]) */
#define CV_EXPRS(X)                                                              \
    X(sqrt, 1, tg_sqrt(x[0]))                                                    \
    X(sqrt_xx, 1, tg_sqrt(tg_mul(x[0], x[0])))                                   \
    X(sqrt_x2, 1, tg_sqrt(tg_pow(x[0], 2)))                                      \
    X(sqrt_sumsq, 2, tg_sqrt(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1]))))    \
    X(sqrt_sumsq_pow, 2, tg_sqrt(tg_add(tg_pow(x[0], 2), tg_pow(x[1], 2.0))))    \
    X(x_sqrt_x, 1, tg_mul(x[0], tg_sqrt(x[0])))                                  \
    X(pow_15, 1, tg_pow(x[0], 1.5))                                              \
    X(abs, 1, tg_abs(x[0]))                                                      \
    X(signum, 1, tg_signum(x[0]))                                                \
    X(floor, 1, tg_floor(x[0]))                                                  \
    X(ceil, 1, tg_ceil(x[0]))                                                    \
    X(round, 1, tg_round(x[0]))                                                  \
    X(trunc, 1, tg_trunc(x[0]))                                                  \
    X(fract, 1, tg_fract(x[0]))                                                  \
    X(max, 2, tg_max(x[0], x[1]))                                                \
    X(min, 2, tg_min(x[0], x[1]))                                                \
    X(max_self, 1, tg_max(x[0], x[0]))                                           \
    X(min_self, 1, tg_min(x[0], x[0]))                                           \
    X(max_2, 1, tg_max(x[0], 2.0))                                               \
    X(min_2, 1, tg_min(2.0, x[0]))                                               \
    X(pow_0, 1, tg_pow(x[0], 0.0))                                               \
    X(pow_1, 1, tg_pow(x[0], 1.0))                                               \
    X(pow_2, 1, tg_pow(x[0], 2.0))                                               \
    X(pow_2i, 1, tg_pow(x[0], 2))                                                \
    X(xx, 1, tg_mul(x[0], x[0]))                                                 \
    X(pow_25, 1, tg_pow(x[0], 2.5))                                              \
    X(pow_37, 1, tg_pow(x[0], 3.7))                                              \
    X(pow_05, 1, tg_pow(x[0], 0.5))                                              \
    X(pow_025, 1, tg_pow(x[0], 0.25))                                            \
    X(pow_3, 1, tg_pow(x[0], 3.0))                                               \
    X(pow_3l, 1, tg_pow(x[0], 3L))                                               \
    X(pow_m3, 1, tg_pow(x[0], -3.0))                                             \
    X(pow_4, 1, tg_pow(x[0], 4))                                                 \
    X(pow_xy, 2, tg_pow(x[0], x[1]))                                             \
    X(exp, 1, tg_exp(x[0]))                                                      \
    X(log, 1, tg_log(x[0]))                                                      \
    X(log1p, 1, tg_log1p(x[0]))                                                  \
    X(div, 2, tg_div(x[0], x[1]))                                                \
    X(x_over_x, 1, tg_div(x[0], x[0]))                                           \
    X(hypot, 2, tg_hypot(x[0], x[1]))                                            \
    X(norm2, 3, tg_norm2(3, x))                                                  \
    X(norm2sq, 3, tg_norm2sq(3, x))                                              \
    X(norm2_pow2, 3, tg_pow(tg_norm2(3, x), 2))                                  \
    X(norm2_mul, 3, tg_mul(tg_norm2(3, x), tg_norm2(3, x)))                      \
    X(atan2, 2, tg_atan2(x[0], x[1]))                                            \
    X(asin, 1, tg_asin(x[0]))                                                    \
    X(acos, 1, tg_acos(x[0]))                                                    \
    X(atanh, 1, tg_atanh(x[0]))                                                  \
    X(acosh, 1, tg_acosh(x[0]))                                                  \
    X(cbrt, 1, tg_cbrt(x[0]))                                                    \
    X(sel_sqrt, 1, tg_select(tg_gt(x[0], 0), tg_sqrt(x[0]), 0))                  \
    X(sel_log, 1, tg_select(tg_gt(x[0], 0.0), tg_log(x[0]), 0.0))                \
    X(max_eps, 2, tg_max(tg_sqrt(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1]))), 1e-12)) \
    X(max_eps_pow, 2, tg_max(tg_sqrt(tg_add(tg_pow(x[0], 2), tg_pow(x[1], 2))), 1e-12))  \
    X(sqrt_exp, 1, tg_sqrt(tg_exp(x[0])))                                        \
    X(plus_zero, 1, tg_add(x[0], 0.0))                                           \
    X(zero_plus, 1, tg_add(0.0, x[0]))

#define CV_REC(ID, N, EXPR) \
    static tg_var cv_rec_##ID(tg_tape *t, const tg_var *x) { (void)t; return (EXPR); }
CV_EXPRS(CV_REC)
#undef CV_REC

enum {
#define CV_ENUM(ID, N, EXPR) CV_##ID,
    CV_EXPRS(CV_ENUM)
#undef CV_ENUM
    CV_NEXPR
};

TU_UNUSED static const cv_expr cv_exprs[CV_NEXPR] = {
#define CV_ENTRY(ID, N, EXPR) [CV_##ID] = { #ID, N, cv_rec_##ID },
    CV_EXPRS(CV_ENTRY)
#undef CV_ENTRY
};

/* 0 .. CV_NEXPR-1: the parameters of the per-expression tests. */
TU_UNUSED static const int cv_expr_ids[CV_NEXPR] = {
#define CV_ID(ID, N, EXPR) CV_##ID,
    CV_EXPRS(CV_ID)
#undef CV_ID
};

/* ---------------------------------------------------------------- points */

typedef struct cv_point {
    int e;                   /* the expression, CV_<id> */
    const char *label;       /* the row's wording, with the point */
    double x[CV_NMAX];
    double value;
    double grad[CV_NMAX];
    int has_hess;            /* the row states the Hessian */
    double hess[CV_NMAX * CV_NMAX];
    int sign;                /* the sign bit of the value is part of the row */
} cv_point;

#define CV_H1(dd) .has_hess = 1, .hess = { dd }
#define CV_H0_2 .has_hess = 1, .hess = { 0, 0, 0, 0 }
#define CV_HALF .grad = { 0.5, 0.5 }
static const double CV_INF = INFINITY;

/* a/b at b = 1e-200: the partial d/db is -(a/b)/b, finite where a/b^2 overflows */
#define CV_DIV(a, b) .x = { a, b }, .value = (a) / (b), .grad = { 1.0 / (b), -((a) / (b)) / (b) }

TU_UNUSED static const cv_point cv_points[] = {
    /* sqrt */
    { CV_sqrt, "sqrt(x) @ +0", .x = { 0.0 }, .value = 0.0, .grad = { CV_INF }, .sign = 1 },
    { CV_sqrt, "sqrt(x) @ -1", .x = { -1.0 }, .value = NAN, .grad = { NAN } },
    { CV_sqrt, "sqrt(x) @ -1e-300", .x = { -1e-300 }, .value = NAN, .grad = { NAN } },
    { CV_sqrt_xx, "sqrt(x*x) @ 0", .x = { 0.0 } },
    { CV_sqrt_xx, "sqrt(x*x) @ -0", .x = { -0.0 } },
    { CV_sqrt_x2, "sqrt(pow(x,2)) @ 0", .x = { 0.0 } },
    { CV_sqrt_sumsq, "sqrt(x*x+y*y) @ (0,0)", .x = { 0.0, 0.0 } },
    { CV_sqrt_sumsq_pow, "sqrt(x^2+y^2) @ (0,0)", .x = { 0.0, 0.0 } },
    { CV_x_sqrt_x, "x*sqrt(x) @ 0", .x = { 0.0 } },
    { CV_x_sqrt_x, "x*sqrt(x) @ 2.25", .x = { 2.25 }, .value = 3.375, .grad = { 2.25 } },
    { CV_pow_15, "pow(x,1.5) @ 0", .x = { 0.0 } },
    { CV_pow_15, "pow(x,1.5) @ 2.25", .x = { 2.25 }, .value = 3.375, .grad = { 2.25 } },
    /* abs */
    { CV_abs, "abs(x) @ +0", .x = { 0.0 }, CV_H1(0.0) },
    { CV_abs, "abs(x) @ -0", .x = { -0.0 }, CV_H1(0.0) },
    { CV_abs, "abs(x) @ -0 is +0", .x = { -0.0 }, .sign = 1 },
    { CV_abs, "abs(x) @ -2", .x = { -2.0 }, .value = 2.0, .grad = { -1.0 }, CV_H1(0.0) },
    { CV_abs, "abs(x) @ 3", .x = { 3.0 }, .value = 3.0, .grad = { 1.0 } },
    /* signum, round: values (derivatives everywhere: the step family) */
    { CV_signum, "signum(+0)", .x = { 0.0 } },
    { CV_signum, "signum(-0)", .x = { -0.0 } },
    { CV_signum, "signum(2)", .x = { 2.0 }, .value = 1.0 },
    { CV_signum, "signum(2.5)", .x = { 2.5 }, .value = 1.0 },
    { CV_signum, "signum(-1e-310)", .x = { -1e-310 }, .value = -1.0 },
    { CV_signum, "signum(NaN)", .x = { NAN }, .value = NAN, .grad = { NAN } },
    { CV_signum, "signum(-inf)", .x = { -CV_INF }, .value = -1.0 },
    { CV_round, "round(2.5)", .x = { 2.5 }, .value = 3.0 },
    { CV_round, "round(-2.5)", .x = { -2.5 }, .value = -3.0 },
    { CV_round, "round(0.5)", .x = { 0.5 }, .value = 1.0 },
    { CV_round, "round(-0.5)", .x = { -0.5 }, .value = -1.0 },
    { CV_round, "round(1.5)", .x = { 1.5 }, .value = 2.0 },
    { CV_round, "round(0.49999999999999994)", .x = { 0.49999999999999994 }, .value = 0.0 },
    { CV_round, "round(-1.4)", .x = { -1.4 }, .value = -1.0 },
    { CV_fract, "fract(2.5) = 0.5", .x = { 2.5 }, .value = 0.5, .grad = { 1.0 } },
    { CV_fract, "fract(-2.5) = -0.5", .x = { -2.5 }, .value = -0.5, .grad = { 1.0 } },
    /* max/min: ties 1/2 each (+0 == -0 is a tie: the value is the first
     * operand), one operand twice 1/2 + 1/2, all to the winner elsewhere */
    { CV_max, "max(a,b) @ a == b", .x = { 1.0, 1.0 }, .value = 1.0, CV_HALF, CV_H0_2 },
    { CV_min, "min(a,b) @ a == b", .x = { 1.0, 1.0 }, .value = 1.0, CV_HALF, CV_H0_2 },
    { CV_max, "max(a,b) @ a == b = -3", .x = { -3.0, -3.0 }, .value = -3.0, CV_HALF },
    { CV_min, "min(-3,-3)", .x = { -3.0, -3.0 }, .value = -3.0, CV_HALF, CV_H0_2 },
    { CV_min, "min(a,b) @ a == b = 0", .x = { 0.0, 0.0 }, CV_HALF },
    { CV_max, "max(+0,-0)", .x = { 0.0, -0.0 }, CV_HALF, CV_H0_2, .sign = 1 },
    { CV_max, "max(-0,+0)", .x = { -0.0, 0.0 }, .value = -0.0, CV_HALF, .sign = 1 },
    { CV_min, "min(+0,-0)", .x = { 0.0, -0.0 }, CV_HALF, .sign = 1 },
    { CV_min, "min(-0,+0)", .x = { -0.0, 0.0 }, .value = -0.0, CV_HALF, .sign = 1 },
    { CV_max_self, "max(x,x)", .x = { 1.5 }, .value = 1.5, .grad = { 1.0 } },
    { CV_min_self, "min(x,x)", .x = { -1.5 }, .value = -1.5, .grad = { 1.0 } },
    { CV_max_2, "max(x,2) @ 2", .x = { 2.0 }, .value = 2.0, .grad = { 0.5 } },
    { CV_min_2, "min(2,x) @ 2", .x = { 2.0 }, .value = 2.0, .grad = { 0.5 } },
    { CV_max, "max(a,b) @ (1,2)", .x = { 1.0, 2.0 }, .value = 2.0, .grad = { 0.0, 1.0 }, CV_H0_2 },
    { CV_max, "max(a,b) @ (3,2)", .x = { 3.0, 2.0 }, .value = 3.0, .grad = { 1.0, 0.0 } },
    { CV_min, "min(a,b) @ (1,2)", .x = { 1.0, 2.0 }, .value = 1.0, .grad = { 1.0, 0.0 }, CV_H0_2 },
    { CV_min, "min(a,b) @ (3,2)", .x = { 3.0, 2.0 }, .value = 2.0, .grad = { 0.0, 1.0 } },
    { CV_max_2, "max(x,2) @ 1", .x = { 1.0 }, .value = 2.0, .grad = { 0.0 } },
    { CV_max_2, "max(x,2) @ 3", .x = { 3.0 }, .value = 3.0, .grad = { 1.0 } },
    /* pow with a constant exponent (never through exp/log) */
    { CV_pow_0, "pow(x,0) @ 0", .x = { 0.0 }, .value = 1.0, CV_H1(0.0) },
    { CV_pow_0, "pow(x,0) @ -0", .x = { -0.0 }, .value = 1.0 },
    { CV_pow_0, "pow(x,0) @ 3", .x = { 3.0 }, .value = 1.0 },
    { CV_pow_1, "pow(x,1) @ 0", .x = { 0.0 }, .grad = { 1.0 }, CV_H1(0.0) },
    { CV_pow_1, "pow(x,1) @ -2", .x = { -2.0 }, .value = -2.0, .grad = { 1.0 } },
    { CV_pow_2, "pow(x,2.0) @ 0", .x = { 0.0 }, CV_H1(2.0) },
    { CV_pow_2i, "pow(x,2) @ 0", .x = { 0.0 }, CV_H1(2.0) },
    { CV_xx, "x*x @ 0", .x = { 0.0 }, CV_H1(2.0) },
    { CV_pow_2i, "pow(x,2) @ -3", .x = { -3.0 }, .value = 9.0, .grad = { -6.0 }, CV_H1(2.0) },
    { CV_pow_25, "pow(x,2.5) @ 0", .x = { 0.0 } },
    { CV_pow_37, "pow(x,3.7) @ 0", .x = { 0.0 } },
    { CV_pow_05, "pow(x,0.5) @ 0", .x = { 0.0 }, .grad = { CV_INF } },
    { CV_pow_025, "pow(x,0.25) @ 0", .x = { 0.0 }, .grad = { CV_INF } },
    { CV_pow_3, "pow(x,3) @ -2", .x = { -2.0 }, .value = -8.0, .grad = { 12.0 }, CV_H1(-12.0) },
    { CV_pow_3l, "pow(x,3L) @ -2", .x = { -2.0 }, .value = -8.0, .grad = { 12.0 }, CV_H1(-12.0) },
    { CV_pow_m3, "pow(x,-3) @ -2", .x = { -2.0 }, .value = -0.125, .grad = { -0.1875 },
      CV_H1(-0.375) },
    { CV_pow_4, "pow(x,4) @ -2", .x = { -2.0 }, .value = 16.0, .grad = { -32.0 }, CV_H1(48.0) },
    { CV_pow_3, "pow(x,3) @ -0.5", .x = { -0.5 }, .value = -0.125, .grad = { 0.75 }, CV_H1(-3.0) },
    /* pow with both inputs: at x = 0, y > 0; at x < 0 (integer y: d/dy NaN only) */
    { CV_pow_xy, "pow(x,y) @ (0, 2.5)", .x = { 0.0, 2.5 } },
    { CV_pow_xy, "pow(x,y) @ (0, 1)", .x = { 0.0, 1.0 }, .grad = { 1.0, 0.0 } },
    { CV_pow_xy, "pow(x,y) @ (0, 2)", .x = { 0.0, 2.0 } },
    { CV_pow_xy, "pow(x,y) @ (0, 3)", .x = { 0.0, 3.0 } },
    { CV_pow_xy, "pow(x,y) @ (0, 0.5)", .x = { 0.0, 0.5 }, .grad = { CV_INF, 0.0 } },
    { CV_pow_xy, "pow(x,y) @ (-2,3)", .x = { -2.0, 3.0 }, .value = -8.0, .grad = { 12.0, NAN } },
    { CV_pow_xy, "pow(x,y) @ (-2,2)", .x = { -2.0, 2.0 }, .value = 4.0, .grad = { -4.0, NAN } },
    { CV_pow_xy, "pow(x,y) @ (-0.5,-1)", .x = { -0.5, -1.0 }, .value = -2.0, .grad = { -4.0, NAN } },
    { CV_pow_xy, "pow(x,y) @ (-2,0.5)", .x = { -2.0, 0.5 }, .value = NAN, .grad = { NAN, NAN } },
    /* exp, log */
    { CV_exp, "exp(x) @ 710", .x = { 710.0 }, .value = CV_INF, .grad = { CV_INF }, CV_H1(CV_INF) },
    { CV_exp, "exp(x) @ -inf", .x = { -CV_INF } },
    { CV_log, "log(x) @ +0", .x = { 0.0 }, .value = -CV_INF, .grad = { CV_INF } },
    { CV_log, "log(x) @ -1", .x = { -1.0 }, .value = NAN, .grad = { NAN } },
    { CV_log1p, "log1p(x) @ -1", .x = { -1.0 }, .value = -CV_INF, .grad = { CV_INF } },
    { CV_log1p, "log1p(x) @ -2", .x = { -2.0 }, .value = NAN, .grad = { NAN } },
    /* division by a tiny divisor; x/x never folded to 1 */
    { CV_div, "a/b @ (1e-200, 1e-200)", CV_DIV(1e-200, 1e-200) },
    { CV_div, "a/b @ (-3e-200, 1e-200)", CV_DIV(-3e-200, 1e-200) },
    { CV_div, "a/b @ (1e-300, 1e-200)", CV_DIV(1e-300, 1e-200) },
    { CV_x_over_x, "x/x @ 0", .x = { 0.0 }, .value = NAN, .grad = { NAN } },
    { CV_x_over_x, "x/x @ inf", .x = { CV_INF }, .value = NAN, .grad = { NAN } },
    { CV_x_over_x, "x/x @ NaN", .x = { NAN }, .value = NAN, .grad = { NAN } },
    { CV_x_over_x, "x/x @ 3", .x = { 3.0 }, .value = 1.0 },
    /* hypot, norms */
    { CV_hypot, "hypot @ (0,0)", .x = { 0.0, 0.0 } },
    { CV_hypot, "hypot @ (1e200,1e200)", .x = { 1e200, 1e200 }, .value = 1.4142135623730951e200,
      .grad = { 0.70710678118654752, 0.70710678118654752 } },
    { CV_hypot, "hypot @ (3,-4)", .x = { 3.0, -4.0 }, .value = 5.0, .grad = { 0.6, -0.8 } },
    { CV_norm2, "norm2(x) @ 0", .x = { 0.0, 0.0, 0.0 } },
    { CV_norm2sq, "norm2sq(x) @ 0 (Hessian 2I)", .x = { 0.0, 0.0, 0.0 }, .has_hess = 1,
      .hess = { 2, 0, 0, 0, 2, 0, 0, 0, 2 } },
    { CV_norm2_pow2, "pow(norm2(x),2) @ 0", .x = { 0.0, 0.0, 0.0 } },
    { CV_norm2_mul, "norm2(x)*norm2(x) @ 0", .x = { 0.0, 0.0, 0.0 } },
    { CV_norm2_pow2, "pow(norm2(x),2) @ -0", .x = { -0.0, 0.0, -0.0 } },
    { CV_norm2, "norm2(x) @ (1,-2,2)", .x = { 1.0, -2.0, 2.0 }, .value = 3.0,
      .grad = { 1.0 / 3, -2.0 / 3, 2.0 / 3 } },
    { CV_norm2_pow2, "pow(norm2(x),2) @ (1,-2,2)", .x = { 1.0, -2.0, 2.0 }, .value = 9.0,
      .grad = { 2.0, -4.0, 4.0 } },
    /* atan2: partials b/h/h and -a/h/h, never b/(a^2+b^2) (which overflows) */
    { CV_atan2, "atan2(y,x) @ (0,1)", .x = { 0.0, 1.0 }, .grad = { 1.0, 0.0 } },
    { CV_atan2, "atan2(y,x) @ (0,0)", .x = { 0.0, 0.0 } },
    { CV_atan2, "atan2(y,x) @ (1e200,1e200)", .x = { 1e200, 1e200 }, .value = M_PI / 4,
      .grad = { 5e-201, -5e-201 } },
    { CV_atan2, "atan2(y,x) @ (1e-200,1e-200)", .x = { 1e-200, 1e-200 }, .value = M_PI / 4,
      .grad = { 5e199, -5e199 } },
    /* inverse trigonometric and hyperbolic functions at the edges */
    { CV_asin, "asin(x) @ 1", .x = { 1.0 }, .value = M_PI / 2, .grad = { CV_INF } },
    { CV_asin, "asin(x) @ -1", .x = { -1.0 }, .value = -M_PI / 2, .grad = { CV_INF } },
    { CV_asin, "asin(x) @ 1.5", .x = { 1.5 }, .value = NAN, .grad = { NAN } },
    { CV_asin, "asin(x) @ -1.5", .x = { -1.5 }, .value = NAN, .grad = { NAN } },
    { CV_acos, "acos(x) @ 1", .x = { 1.0 }, .grad = { -CV_INF } },
    { CV_acos, "acos(x) @ -1", .x = { -1.0 }, .value = M_PI, .grad = { -CV_INF } },
    { CV_acos, "acos(x) @ 1.5", .x = { 1.5 }, .value = NAN, .grad = { NAN } },
    { CV_acos, "acos(x) @ -1.5", .x = { -1.5 }, .value = NAN, .grad = { NAN } },
    { CV_acos, "acos(x) @ -2", .x = { -2.0 }, .value = NAN, .grad = { NAN } },
    { CV_atanh, "atanh(x) @ 1", .x = { 1.0 }, .value = CV_INF, .grad = { CV_INF } },
    { CV_atanh, "atanh(x) @ -1", .x = { -1.0 }, .value = -CV_INF, .grad = { CV_INF } },
    { CV_atanh, "atanh(x) @ 2", .x = { 2.0 }, .value = NAN, .grad = { NAN } },
    { CV_acosh, "acosh(x) @ 1", .x = { 1.0 }, .grad = { CV_INF } },
    { CV_acosh, "acosh(x) @ 0.5", .x = { 0.5 }, .value = NAN, .grad = { NAN } },
    { CV_cbrt, "cbrt(x) @ 0", .x = { 0.0 }, .grad = { CV_INF } },
    /* select routes derivatives to the taken branch only */
    { CV_sel_sqrt, "select(x>0, sqrt(x), 0) @ -1", .x = { -1.0 }, CV_H1(0.0) },
    { CV_sel_sqrt, "select(x>0, sqrt(x), 0) @ 0", .x = { 0.0 }, CV_H1(0.0) },
    { CV_sel_sqrt, "select(x>0, sqrt(x), 0) @ -0", .x = { -0.0 }, CV_H1(0.0) },
    { CV_sel_sqrt, "select(x>0, sqrt(x), 0) @ 4", .x = { 4.0 }, .value = 2.0, .grad = { 0.25 },
      CV_H1(-1.0 / 32.0) },
    { CV_sel_log, "select(x>0, log(x), 0) @ -1", .x = { -1.0 }, CV_H1(0.0) },
    { CV_sel_log, "select(x>0, log(x), 0) @ 0", .x = { 0.0 }, CV_H1(0.0) },
    { CV_sel_log, "select(x>0, log(x), 0) @ -0", .x = { -0.0 }, CV_H1(0.0) },
    { CV_sel_log, "select(x>0, log(x), 0) @ -inf", .x = { -CV_INF }, CV_H1(0.0) },
    { CV_sel_log, "select(x>0, log(x), 0) @ e", .x = { M_E }, .value = 1.0, .grad = { 1.0 / M_E },
      CV_H1(-1.0 / (M_E * M_E)) },
    /* max(norm, eps), underflow, x + 0.0 */
    { CV_max_eps, "max(sqrt(x^2+y^2), eps) @ (0,0)", .x = { 0.0, 0.0 }, .value = 1e-12 },
    { CV_max_eps, "max(sqrt(x^2+y^2), eps) @ (3,4)", .x = { 3.0, 4.0 }, .value = 5.0,
      .grad = { 0.6, 0.8 } },
    { CV_max_eps_pow, "max(sqrt(pow(x,2)+pow(y,2)), eps) @ (0,0)", .x = { 0.0, 0.0 },
      .value = 1e-12 },
    { CV_sqrt_exp, "sqrt(exp(x)) @ -800", .x = { -800.0 } },
    { CV_sqrt_exp, "sqrt(exp(x)) @ -inf", .x = { -CV_INF } },
    { CV_plus_zero, "x + 0.0 @ -0.0", .x = { -0.0 }, .grad = { 1.0 }, .sign = 1 },
    { CV_zero_plus, "0.0 + x @ -0.0", .x = { -0.0 }, .grad = { 1.0 }, .sign = 1 },
    { CV_plus_zero, "x + 0.0 @ +0.0", .x = { 0.0 }, .grad = { 1.0 }, .sign = 1 },
};
#define CV_NPOINTS (sizeof cv_points / sizeof cv_points[0])
#undef CV_H1
#undef CV_H0_2
#undef CV_HALF
#undef CV_DIV

/* -------------------------------------------------------------- families */

/* Rows of one-input expressions at many points: value(x), derivative
 * d1(x) and second derivative d2(x) (d2 NULL: not stated); with nan_row,
 * also NaN in -> NaN value and derivative. */
typedef struct cv_family {
    int e;
    const char *label;
    double (*value)(double);
    double (*d1)(double);
    double (*d2)(double);
    const double *pts;
    size_t npts;
    int nan_row;
} cv_family;

static double cv_zero(double x) { (void)x; return 0.0; }
static double cv_one(double x) { (void)x; return 1.0; }
static double cv_signum(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; }
static double cv_fract(double x) { return x - trunc(x); }
static double cv_cbrt_d1(double x) { double r = cbrt(x); return 1.0 / (3.0 * r * r); }
static double cv_cbrt_d2(double x) { double r = cbrt(x); return -2.0 / (9.0 * r * r * r * r * r); }

/* signum, floor, ceil, round, trunc: derivative 0 everywhere, also at the
 * jumps; NaN in gives NaN out */
static const double cv_step_pts[] = { -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0,
                                      1.5, 2.0, 2.5, 3.0, 3.7, -3.7, 1e-300, -1e-300, 1e300,
                                      INFINITY, -INFINITY };
static const double cv_fract_pts[] = { -2.5, -1.0, -0.0, 0.0, 0.25, 1.0, 2.0, 2.5, 3.0, 3.75,
                                       -3.75 };
static const double cv_cbrt_pts[] = { 8.0, -8.0, 0.001, -27.0, 2.0, 1e-9 };
#define CV_PTS(a) a, sizeof a / sizeof a[0]

TU_UNUSED static const cv_family cv_families[] = {
    { CV_signum, "signum(x)", cv_signum, cv_zero, cv_zero, CV_PTS(cv_step_pts), 1 },
    { CV_floor, "floor(x)", floor, cv_zero, cv_zero, CV_PTS(cv_step_pts), 1 },
    { CV_ceil, "ceil(x)", ceil, cv_zero, cv_zero, CV_PTS(cv_step_pts), 1 },
    { CV_round, "round(x)", round, cv_zero, cv_zero, CV_PTS(cv_step_pts), 1 },
    { CV_trunc, "trunc(x)", trunc, cv_zero, cv_zero, CV_PTS(cv_step_pts), 1 },
    { CV_fract, "fract(x): derivative 1", cv_fract, cv_one, cv_zero, CV_PTS(cv_fract_pts), 0 },
    { CV_cbrt, "cbrt(x) elsewhere: 1/(3 r^2), -2/(9 r^5)", cbrt, cv_cbrt_d1, cv_cbrt_d2,
      CV_PTS(cv_cbrt_pts), 0 },
};
#undef CV_PTS

/* Every point of the table (cv_points, then the families expanded), in a
 * malloc'd array of *n entries; one free() releases it (family labels,
 * "label @ x", live in the same allocation, after the points). */
TU_UNUSED static cv_point *cv_all(size_t *n)
{
    size_t total = CV_NPOINTS;
    for (size_t f = 0; f < sizeof cv_families / sizeof cv_families[0]; f++)
        total += cv_families[f].npts + (size_t)cv_families[f].nan_row;
    cv_point *all = calloc(1, total * (sizeof(cv_point) + 96));
    cr_assert(all != NULL, "cv_all: out of memory");
    char (*labels)[96] = (char (*)[96])(void *)(all + total);
    memcpy(all, cv_points, sizeof cv_points);
    size_t k = CV_NPOINTS;
    for (size_t f = 0; f < sizeof cv_families / sizeof cv_families[0]; f++) {
        const cv_family *F = &cv_families[f];
        for (size_t p = 0; p <= F->npts; p++) {
            if (p == F->npts && !F->nan_row)
                break;
            double x = p < F->npts ? F->pts[p] : NAN;
            cv_point *P = &all[k];
            P->e = F->e;
            snprintf(labels[k], sizeof labels[k], "%s @ %.17g", F->label, x);
            P->label = labels[k];
            P->x[0] = x;
            P->value = p < F->npts ? F->value(x) : NAN;
            P->grad[0] = p < F->npts ? F->d1(x) : NAN;
            P->has_hess = p < F->npts && F->d2 != NULL;
            P->hess[0] = P->has_hess ? F->d2(x) : 0.0;
            k++;
        }
    }
    cr_assert_eq(k, total);
    *n = total;
    return all;
}

#endif /* TAPEGEN_CONVROWS_H */
