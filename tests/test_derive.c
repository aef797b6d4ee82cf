/* tests/test_derive.c -- derivative tapes (tg_gradient_tape, tg_jacobian_tape,
 * tg_hessian_tape, tg_jvp_tape, tg_vjp_tape, tg_hvp_tape, tg_joint_tape).
 *
 * For every opcode of include/tapegen/ops.def (the parameter list is
 * expanded from it, so a new op is tested automatically and an op without
 * a row in the case table fails), f = op(inputs) is recorded in four shapes
 * (scalar; tall, m >= n; wide with a second input block "p"; scalar with
 * blocks "x" and "p") and every derivative tape of it, for wrt = TG_ALL and
 * each block, is evaluated with tg_eval and compared with
 *   - the numeric sweeps (tg_gradient, tg_jacobian, tg_jvp, tg_vjp: equal as
 *     values -- == or both NaN; tg_hessian, tg_hvp: 1e-12 relative, the
 *     second-order code associates differently),
 *   - central differences of f (first order) and of the gradient tape
 *     (second order), with the tolerances of tests/test_ops.c,
 *   - second order by composition: the Jacobian (and, for one variable, the
 *     gradient) of the gradient tape, the JVP of the VJP tape, the Jacobian
 *     of the JVP tape, the JVP and VJP of the gradient tape.
 * The block layout and names of every tape are checked against include/tapegen.h.
 * Then: a composite multi-output f, errors, joint tapes, docs/conventions.md's
 * table through derivative tapes, the azmul/select structure of the
 * generated code, determinism, a 10^6-deep chain in a 1 MiB stack, and the
 * size of Rosenbrock's gradient and HVP tapes. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <limits.h>

#include "derivutil.h"

/* ------------------------------------------------------------ the op list */

static const int all_ops[] = {
#define LEAF(NAME, name) TG_OP_##NAME,
#define OP(NAME, ...) TG_OP_##NAME,
#include "tapegen/ops.def"
};
#define N_ALL_OPS (sizeof all_ops / sizeof all_ops[0])

/* Distances to the nearest point where the op jumps or kinks. */
static double d_int(const double *x) { return fabs(x[0] - nearbyint(x[0])); }
static double d_half(const double *x) { return fabs(x[0] - floor(x[0]) - 0.5); }
static double d_zero(const double *x) { return fabs(x[0]); }
static double d_tie(const double *x) { return fabs(x[0] - x[1]); }
static double d_cond(const double *x) { return x[0] == 0.0 ? 1.0 : fabs(x[0]); }

/* One row per op (several for ops with distinct regimes): the domain of
 * each operand, literal operands, and where the op jumps (points are
 * sampled at least `mind` away), as in tests/test_ops.c. */
typedef struct op_case {
    const char *name;    /* tg_op_name of the op under test */
    int arity;
    double lo[3], hi[3];
    int is_k[3];         /* operand is the literal k[j] (not an input) */
    double k[3];
    int step;            /* piecewise constant: every derivative is exactly 0 */
    double (*jump)(const double *x);
    double mind;
    int powk;            /* record as tg_pow(x, literal) */
    double forced[3][3]; /* extra points, used when nforced > 0 */
    int nforced;
} op_case;

#define U(lo_, hi_) { lo_ }, { hi_ }
#define B(lo0, hi0, lo1, hi1) { lo0, lo1 }, { hi0, hi1 }
#define T3(lo0, hi0, lo1, hi1, lo2, hi2) { lo0, lo1, lo2 }, { hi0, hi1, hi2 }

static const op_case cases[] = {
    { "add", 2, B(-3, 3, -3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "sub", 2, B(-3, 3, -3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "mul", 2, B(-3, 3, -3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "div", 2, B(-3, 3, 0.3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "div", 2, B(-3, 3, -3, -0.3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "pow", 2, B(0.3, 3, -2, 2.5), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "powk", 2, B(0.3, 3, 0, 0), {0, 1}, {0, 2.7}, 0, NULL, 0, 1, {{0}}, 0 },
    { "powk", 2, B(-3, 3, 0, 0), {0, 1}, {0, 3.0}, 0, NULL, 0, 1, {{0}}, 0 },
    { "powk", 2, B(-3, 3, 0, 0), {0, 1}, {0, -2.0}, 0, d_zero, 0.4, 1, {{0}}, 0 },
    { "powk", 2, B(0.2, 3, 0, 0), {0, 1}, {0, 0.5}, 0, NULL, 0, 1, {{0}}, 0 },
    { "powk", 2, B(0.3, 3, 0, 0), {0, 1}, {0, -1.5}, 0, NULL, 0, 1, {{0}}, 0 },
    { "powk", 2, B(-1.5, 1.5, 0, 0), {0, 1}, {0, 7.0}, 0, NULL, 0, 1, {{0}}, 0 },
    { "min", 2, B(-3, 3, -3, 3), {0}, {0}, 0, d_tie, 1e-2, 0, {{0}}, 0 },
    { "max", 2, B(-3, 3, -3, 3), {0}, {0}, 0, d_tie, 1e-2, 0, {{0}}, 0 },
    { "atan2", 2, B(-3, 3, 0.3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "atan2", 2, B(0.3, 3, -3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "hypot", 2, B(0.3, 3, -3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "azmul", 2, B(-3, 3, -3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "lt", 2, B(-3, 3, -3, 3), {0}, {0}, 1, d_tie, 1e-2, 0, {{0}}, 0 },
    { "le", 2, B(-3, 3, -3, 3), {0}, {0}, 1, d_tie, 1e-2, 0, {{0}}, 0 },
    { "gt", 2, B(-3, 3, -3, 3), {0}, {0}, 1, d_tie, 1e-2, 0, {{0}}, 0 },
    { "ge", 2, B(-3, 3, -3, 3), {0}, {0}, 1, d_tie, 1e-2, 0, {{0}}, 0 },
    { "select", 3, T3(-2, 2, -3, 3, -3, 3), {0}, {0}, 0, d_cond, 1e-2, 0,
      { { 0.0, 1.25, -0.5 }, { -0.0, 2.0, 0.75 }, { 1.0, -1.5, 2.5 } }, 3 },
    { "neg", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "sin", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "cos", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "tan", 1, U(-1.3, 1.3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "asin", 1, U(-0.9, 0.9), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "acos", 1, U(-0.9, 0.9), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "atan", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "sinh", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "cosh", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "tanh", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "asinh", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "acosh", 1, U(1.1, 4), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "atanh", 1, U(-0.9, 0.9), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "exp", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "expm1", 1, U(-3, 3), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "log", 1, U(0.1, 5), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "log1p", 1, U(-0.9, 4), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "sqrt", 1, U(0.1, 5), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "cbrt", 1, U(-3, 3), {0}, {0}, 0, d_zero, 0.2, 0, {{0}}, 0 },
    { "erf", 1, U(-2.5, 2.5), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "erfc", 1, U(-2.5, 2.5), {0}, {0}, 0, NULL, 0, 0, {{0}}, 0 },
    { "abs", 1, U(-3, 3), {0}, {0}, 0, d_zero, 1e-2, 0, {{0}}, 0 },
    { "floor", 1, U(-3.5, 3.5), {0}, {0}, 1, d_int, 1e-2, 0, {{0}}, 0 },
    { "ceil", 1, U(-3.5, 3.5), {0}, {0}, 1, d_int, 1e-2, 0, {{0}}, 0 },
    { "round", 1, U(-3.5, 3.5), {0}, {0}, 1, d_half, 1e-2, 0, {{0}}, 0 },
    { "trunc", 1, U(-3.5, 3.5), {0}, {0}, 1, d_int, 1e-2, 0, {{0}}, 0 },
    { "fract", 1, U(-3.5, 3.5), {0}, {0}, 0, d_int, 1e-2, 0, {{0}}, 0 },
    { "signum", 1, U(-3, 3), {0}, {0}, 1, d_zero, 1e-2, 0, {{0}}, 0 },
};
#define N_CASES (sizeof cases / sizeof cases[0])

#define DMAX 160     /* room for every array below (n <= 5, m <= 4) */
#define NPTS 9       /* points per case: forced ones first, then random */

static size_t case_nin(const op_case *c)
{
    size_t n = 0;
    for (int j = 0; j < c->arity; j++)
        n += !c->is_k[j];
    return n;
}

static void fmt_point(char *buf, size_t len, const char *label, size_t n, const double *x)
{
    int k = snprintf(buf, len, "%s at (", label);
    for (size_t j = 0; j < n && k > 0 && (size_t)k < len; j++)
        k += snprintf(buf + k, len - (size_t)k, "%s%.17g", j ? ", " : "", x[j]);
    if (k > 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, ")");
}

/* ---------------------------------------------- the derivative tapes of f */

typedef struct dtapes {
    tg_tape *J, *JV, *VJ;      /* any m */
    tg_tape *G, *H, *HV;       /* m == 1 */
    tg_tape *JG;               /* jacobian_tape(G, wrt): the Hessian */
    tg_tape *GG;               /* gradient_tape(G, wrt) when n_w == 1 */
    tg_tape *JVV;              /* jvp_tape(VJ, TG_ALL): H v (w = 1) */
    tg_tape *JJV;              /* jacobian_tape(JV, TG_ALL): [d(Jv)/dx | J] */
    tg_tape *JVG, *VJG;        /* jvp_tape(G, wrt), vjp_tape(G, wrt): H v, H^T w */
} dtapes;

static void build_dtapes(const tg_tape *f, int wrt, dtapes *D)
{
    memset(D, 0, sizeof *D);
    size_t n = tg_num_inputs(f), m = tg_num_outputs(f), lo, nw;
    du_wrt_range(f, wrt, &lo, &nw);
    D->J = tg_jacobian_tape(f, wrt);
    du_check_layout(D->J, f, "jac", NULL, 0, "jac", m * nw);
    D->JV = tg_jvp_tape(f, wrt);
    du_check_layout(D->JV, f, "jvp", "v", nw, "jvp", m);
    D->VJ = tg_vjp_tape(f, wrt);
    du_check_layout(D->VJ, f, "vjp", "w", m, "vjp", nw);
    D->JJV = tg_jacobian_tape(D->JV, TG_ALL);
    du_check_layout(D->JJV, D->JV, "jac", NULL, 0, "jac", m * (n + nw));
    if (m != 1)
        return;
    D->G = tg_gradient_tape(f, wrt);
    du_check_layout(D->G, f, "grad", NULL, 0, "grad", nw);
    D->H = tg_hessian_tape(f, wrt);
    du_check_layout(D->H, f, "hess", NULL, 0, "hess", nw * nw);
    D->HV = tg_hvp_tape(f, wrt);
    du_check_layout(D->HV, f, "hvp", "v", nw, "hvp", nw);
    D->JG = tg_jacobian_tape(D->G, wrt);
    du_check_layout(D->JG, D->G, "jac", NULL, 0, "jac", nw * nw);
    if (nw == 1) {
        D->GG = tg_gradient_tape(D->G, wrt);
        du_check_layout(D->GG, D->G, "grad", NULL, 0, "grad", 1);
    }
    D->JVV = tg_jvp_tape(D->VJ, TG_ALL);
    du_check_layout(D->JVV, D->VJ, "jvp", "v", n + 1, "jvp", nw);
    D->JVG = tg_jvp_tape(D->G, wrt);
    du_check_layout(D->JVG, D->G, "jvp", "v", nw, "jvp", nw);
    D->VJG = tg_vjp_tape(D->G, wrt);
    du_check_layout(D->VJG, D->G, "vjp", "w", nw, "vjp", nw);
}

static void free_dtapes(dtapes *D)
{
    tg_tape **all[] = { &D->J, &D->JV, &D->VJ, &D->G, &D->H, &D->HV, &D->JG, &D->GG,
                        &D->JVV, &D->JJV, &D->JVG, &D->VJG };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tg_tape_free(*all[i]);
        *all[i] = NULL;
    }
}

/* Options of check_point. */
enum {
    CP_FD = 1,      /* central differences are valid at this point */
    CP_STEP = 2,    /* f is piecewise constant in the wrt variables: derivatives exactly 0 */
    CP_EXACT = 4,   /* first order equal to the numeric sweeps as values (f recorded with
                     * CSE: a TG_NO_CSE f has duplicate instructions that the derivative
                     * tape's recorder merges, which reassociates adjoint sums) */
};

/* First-order agreement: as values, or within 1e-12 (see CP_EXACT). */
static int first_eq(double a, double b, unsigned opts)
{
    return (opts & CP_EXACT) ? tu_same_value(a, b) : tu_close(a, b, 1e-12, 1e-300);
}

/* Every derivative tape of f for wrt, at one point x, against the numeric
 * sweeps, central differences and each other. */
static void check_point(const tg_tape *f, int wrt, const dtapes *D, const double *x,
                        const char *where, unsigned opts, tu_rng *rng)
{
    size_t n = tg_num_inputs(f), m = tg_num_outputs(f), lo, nw;
    du_wrt_range(f, wrt, &lo, &nw);
    cr_assert(n <= 8 && m <= 4, "test arrays too small");
    double in[DMAX], out[DMAX], Jn[DMAX], tmp[DMAX];
    double vfull[DMAX] = { 0 }, v[DMAX], w[DMAX];

    /* ---- Jacobian tape: as values equal to the sweep of the same direction,
     * within 1e-12 of tg_jacobian (which may sweep the other way), and
     * close to central differences */
    TU_OK(tg_jacobian(f, x, Jn));
    du_eval(D->J, x, out);
    int fwd_tape = nw <= m, fwd_num = n <= m;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < nw; j++) {
            double got = out[i * nw + j], num = Jn[i * n + lo + j];
            if (fwd_tape == fwd_num)
                cr_expect(first_eq(got, num, opts),
                          "%s wrt %d: jacobian tape J[%zu][%zu] = %s, tg_jacobian %s", where, wrt,
                          i, j, tu_d(got).s, tu_d(num).s);
            else
                cr_expect(tu_close(got, num, 1e-12, 1e-300),
                          "%s wrt %d: jacobian tape J[%zu][%zu] = %s, tg_jacobian %s (other "
                          "sweep direction)", where, wrt, i, j, tu_d(got).s, tu_d(num).s);
            if (opts & CP_FD) {
                double fd = du_fd(f, x, i, lo + j);
                cr_expect(tu_close(got, fd, 1e-6, 1e-6),
                          "%s wrt %d: jacobian tape J[%zu][%zu] = %s, central difference %s",
                          where, wrt, i, j, tu_d(got).s, tu_d(fd).s);
            }
        }
    if (fwd_tape) {
        /* built by n_w tangent sweeps: column j is tg_jvp along e_{lo+j} */
        for (size_t j = 0; j < nw; j++) {
            double e[DMAX] = { 0 };
            e[lo + j] = 1.0;
            TU_OK(tg_jvp(f, x, e, tmp));
            for (size_t i = 0; i < m; i++)
                cr_expect(first_eq(out[i * nw + j], tmp[i], opts),
                          "%s wrt %d: jacobian tape (forward) J[%zu][%zu] = %s, tg_jvp e%zu %s",
                          where, wrt, i, j, tu_d(out[i * nw + j]).s, lo + j, tu_d(tmp[i]).s);
        }
    } else {
        /* built by m adjoint sweeps: row i is tg_vjp with e_i */
        for (size_t i = 0; i < m; i++) {
            double e[8] = { 0 };
            e[i] = 1.0;
            TU_OK(tg_vjp(f, x, e, tmp));
            for (size_t j = 0; j < nw; j++)
                cr_expect(first_eq(out[i * nw + j], tmp[lo + j], opts),
                          "%s wrt %d: jacobian tape (reverse) J[%zu][%zu] = %s, tg_vjp e%zu %s",
                          where, wrt, i, j, tu_d(out[i * nw + j]).s, i, tu_d(tmp[lo + j]).s);
        }
    }

    /* ---- JVP tape against tg_jvp (tangent 0 outside the wrt block) */
    for (size_t j = 0; j < nw; j++)
        vfull[lo + j] = v[j] = tu_rng_range(rng, -2, 2);
    du_concat(in, x, n, v, nw);
    du_eval(D->JV, in, out);
    TU_OK(tg_jvp(f, x, vfull, tmp));
    for (size_t i = 0; i < m; i++)
        cr_expect(first_eq(out[i], tmp[i], opts), "%s wrt %d: jvp tape [%zu] = %s, tg_jvp %s",
                  where, wrt, i, tu_d(out[i]).s, tu_d(tmp[i]).s);

    /* ---- VJP tape against tg_vjp */
    for (size_t i = 0; i < m; i++)
        w[i] = tu_rng_range(rng, -2, 2);
    du_concat(in, x, n, w, m);
    du_eval(D->VJ, in, out);
    TU_OK(tg_vjp(f, x, w, tmp));
    for (size_t j = 0; j < nw; j++)
        cr_expect(first_eq(out[j], tmp[lo + j], opts), "%s wrt %d: vjp tape [%zu] = %s, tg_vjp %s",
                  where, wrt, j, tu_d(out[j]).s, tu_d(tmp[lo + j]).s);

    /* ---- Jacobian of the JVP tape: d(J v)/dx (second order) and J */
    {
        du_concat(in, x, n, v, nw);
        double JJ[DMAX];
        du_eval(D->JJV, in, JJ);
        size_t nn = n + nw;
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < nw; j++)
                cr_expect(tu_close(JJ[i * nn + n + j], Jn[i * n + lo + j], 1e-12, 1e-300),
                          "%s wrt %d: jacobian of the jvp tape, d jv_%zu / d v_%zu = %s, "
                          "J entry %s", where, wrt, i, j, tu_d(JJ[i * nn + n + j]).s,
                          tu_d(Jn[i * n + lo + j]).s);
            for (size_t k = 0; k < n && (opts & CP_FD); k++) {
                double fd = du_fd(D->JV, in, i, k);
                cr_expect(tu_close(JJ[i * nn + k], fd, 1e-5, 1e-5),
                          "%s wrt %d: jacobian of the jvp tape, d jv_%zu / d x_%zu = %s, central "
                          "difference of the jvp tape %s", where, wrt, i, k,
                          tu_d(JJ[i * nn + k]).s, tu_d(fd).s);
            }
        }
    }
    if (m != 1)
        return;

    /* ---- gradient tape: tg_gradient, central differences */
    double gn[DMAX], g[DMAX], Hn[DMAX], Ht[DMAX], hvn[DMAX];
    TU_OK(tg_gradient(f, x, gn));
    du_eval(D->G, x, g);
    for (size_t j = 0; j < nw; j++) {
        cr_expect(first_eq(g[j], gn[lo + j], opts), "%s wrt %d: gradient tape [%zu] = %s, "
                  "tg_gradient %s", where, wrt, j, tu_d(g[j]).s, tu_d(gn[lo + j]).s);
        if (opts & CP_FD) {
            double fd = du_fd(f, x, 0, lo + j);
            cr_expect(tu_close(g[j], fd, 1e-6, 1e-6),
                      "%s wrt %d: gradient tape [%zu] = %s, central difference %s", where, wrt,
                      j, tu_d(g[j]).s, tu_d(fd).s);
        }
        if (opts & CP_STEP)
            cr_expect(g[j] == 0.0, "%s wrt %d: gradient tape [%zu] = %s of a piecewise constant "
                      "op, expected 0", where, wrt, j, tu_d(g[j]).s);
    }

    /* ---- Hessian tape: tg_hessian (1e-12), central differences of the
     * gradient tape, the Jacobian (and gradient) of the gradient tape */
    TU_OK(tg_hessian(f, x, Hn));
    du_eval(D->H, x, Ht);
    double hs = du_scale(Hn, n * n);
    for (size_t i = 0; i < nw; i++)
        for (size_t j = 0; j < nw; j++) {
            double got = Ht[i * nw + j], num = Hn[(lo + i) * n + lo + j];
            cr_expect(du_close2(got, num, 1e-12, hs),
                      "%s wrt %d: hessian tape H[%zu][%zu] = %s, tg_hessian %s", where, wrt, i, j,
                      tu_d(got).s, tu_d(num).s);
            if (opts & CP_FD) {
                double fd = du_fd(D->G, x, i, lo + j);
                cr_expect(tu_close(got, fd, 1e-5, 1e-5),
                          "%s wrt %d: hessian tape H[%zu][%zu] = %s, central difference of the "
                          "gradient tape %s", where, wrt, i, j, tu_d(got).s, tu_d(fd).s);
            }
            if (opts & CP_STEP)
                cr_expect(got == 0.0, "%s wrt %d: hessian tape H[%zu][%zu] = %s of a piecewise "
                          "constant op, expected 0", where, wrt, i, j, tu_d(got).s);
        }
    du_eval(D->JG, x, out);
    for (size_t k = 0; k < nw * nw; k++)
        cr_expect(du_close2(out[k], Ht[k], 1e-12, hs),
                  "%s wrt %d: jacobian of the gradient tape [%zu][%zu] = %s, hessian tape %s",
                  where, wrt, k / nw, k % nw, tu_d(out[k]).s, tu_d(Ht[k]).s);
    if (D->GG) {
        du_eval(D->GG, x, out);
        cr_expect(du_close2(out[0], Ht[0], 1e-12, hs) &&
                      du_close2(out[0], Hn[lo * n + lo], 1e-12, hs),
                  "%s wrt %d: gradient of the gradient tape = %s, hessian tape %s, tg_hessian %s",
                  where, wrt, tu_d(out[0]).s, tu_d(Ht[0]).s, tu_d(Hn[lo * n + lo]).s);
    }
    /* the numeric sweeps on the gradient tape: its Jacobian is the Hessian */
    {
        double JGn[DMAX];
        TU_OK(tg_jacobian(D->G, x, JGn));
        for (size_t i = 0; i < nw; i++)
            for (size_t k = 0; k < n; k++)
                cr_expect(du_close2(JGn[i * n + k], Hn[(lo + i) * n + k], 1e-12, hs),
                          "%s wrt %d: tg_jacobian of the gradient tape [%zu][%zu] = %s, "
                          "tg_hessian %s", where, wrt, i, k, tu_d(JGn[i * n + k]).s,
                          tu_d(Hn[(lo + i) * n + k]).s);
    }

    /* ---- HVP tape and its compositions: H v with v zero outside wrt */
    TU_OK(tg_hvp(f, x, vfull, hvn));
    double hvs = 1.0;
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < n; j++)
            s += fabs(Hn[i * n + j] * vfull[j]);
        if (isfinite(s))
            hvs = fmax(hvs, s);
    }
    du_concat(in, x, n, v, nw);
    du_eval(D->HV, in, out);
    for (size_t i = 0; i < nw; i++) {
        double hv = 0.0;
        for (size_t j = 0; j < nw; j++)
            hv += Ht[i * nw + j] * v[j];
        cr_expect(du_close2(out[i], hvn[lo + i], 1e-12, hvs),
                  "%s wrt %d: hvp tape [%zu] = %s, tg_hvp %s", where, wrt, i, tu_d(out[i]).s,
                  tu_d(hvn[lo + i]).s);
        cr_expect(du_close2(out[i], hv, 1e-10, hvs),
                  "%s wrt %d: hvp tape [%zu] = %s, hessian tape times v %s", where, wrt, i,
                  tu_d(out[i]).s, tu_d(hv).s);
    }
    du_eval(D->JVG, in, out);
    for (size_t i = 0; i < nw; i++)
        cr_expect(du_close2(out[i], hvn[lo + i], 1e-12, hvs),
                  "%s wrt %d: jvp of the gradient tape [%zu] = %s, tg_hvp %s", where, wrt, i,
                  tu_d(out[i]).s, tu_d(hvn[lo + i]).s);
    {
        /* Jacobian of the JVP tape, x part: (H v)^T over all n inputs */
        double JJ[DMAX];
        du_eval(D->JJV, in, JJ);
        for (size_t k = 0; k < n; k++)
            cr_expect(du_close2(JJ[k], hvn[k], 1e-12, hvs),
                      "%s wrt %d: jacobian of the jvp tape, d(Jv)/dx_%zu = %s, tg_hvp %s", where,
                      wrt, k, tu_d(JJ[k]).s, tu_d(hvn[k]).s);
        for (size_t j = 0; j < nw; j++)
            cr_expect(tu_close(JJ[n + j], gn[lo + j], 1e-12, 1e-300),
                      "%s wrt %d: jacobian of the jvp tape, d(Jv)/dv_%zu = %s, tg_gradient %s",
                      where, wrt, j, tu_d(JJ[n + j]).s, tu_d(gn[lo + j]).s);
    }
    {
        /* JVP of the VJP tape at w = 1, tangent (v on x, 0 on w): H v */
        double xin[DMAX], tan[DMAX] = { 0 };
        double one = 1.0;
        du_concat(xin, x, n, &one, 1);
        memcpy(tan, vfull, n * sizeof *tan);
        du_concat(in, xin, n + 1, tan, n + 1);
        du_eval(D->JVV, in, out);
        for (size_t i = 0; i < nw; i++)
            cr_expect(du_close2(out[i], hvn[lo + i], 1e-12, hvs),
                      "%s wrt %d: jvp of the vjp tape [%zu] = %s, tg_hvp %s", where, wrt, i,
                      tu_d(out[i]).s, tu_d(hvn[lo + i]).s);
    }
    {
        /* VJP of the gradient tape: H^T w = H w */
        double ww[DMAX];
        for (size_t i = 0; i < nw; i++)
            ww[i] = tu_rng_range(rng, -2, 2);
        du_concat(in, x, n, ww, nw);
        du_eval(D->VJG, in, out);
        for (size_t j = 0; j < nw; j++) {
            double want = 0.0, s = 1.0;
            for (size_t i = 0; i < nw; i++) {
                want += ww[i] * Hn[(lo + i) * n + lo + j];
                s += fabs(ww[i] * Hn[(lo + i) * n + lo + j]);
            }
            cr_expect(du_close2(out[j], want, 1e-10, isfinite(s) ? s : 1.0),
                      "%s wrt %d: vjp of the gradient tape [%zu] = %s, w^T H %s", where, wrt, j,
                      tu_d(out[j]).s, tu_d(want).s);
        }
    }
}

/* All derivative tapes of f for wrt, checked at npts points (n each). */
static void check_all(const tg_tape *f, int wrt, const double *pts, size_t npts,
                      const char *label, const unsigned *opts, tu_rng *rng)
{
    dtapes D;
    build_dtapes(f, wrt, &D);
    size_t n = tg_num_inputs(f);
    char where[300];
    for (size_t p = 0; p < npts; p++) {
        fmt_point(where, sizeof where, label, n, pts + p * n);
        check_point(f, wrt, &D, pts + p * n, where, opts[p], rng);
    }
    free_dtapes(&D);
}

/* ------------------------------------------------------- one op, 4 shapes */

static void sample_points(const op_case *c, size_t nin, tu_rng *rng, double *pts)
{
    for (size_t p = 0; p < NPTS; p++) {
        double *x = pts + p * nin;
        if ((int)p < c->nforced) {
            memcpy(x, c->forced[p], nin * sizeof *x);
            continue;
        }
        for (int tries = 0;; tries++) {
            size_t i = 0;
            for (int j = 0; j < c->arity; j++)
                if (!c->is_k[j])
                    x[i++] = tu_rng_range(rng, c->lo[j], c->hi[j]);
            if (!c->jump || c->jump(x) >= c->mind)
                break;
            cr_assert(tries < 1000, "cannot sample a point for %s", c->name);
        }
    }
}

/* op applied to the inputs x (literals filled in). */
static tg_var apply_case(const op_case *c, tg_opcode op, const tg_var *x)
{
    tg_operand o[3];
    size_t i = 0;
    for (int j = 0; j < c->arity; j++)
        o[j] = c->is_k[j] ? TG_OPND(c->k[j]) : TG_OPND(x[i++]);
    if (c->powk)
        return tg_pow(x[0], c->k[1]);
    if (c->arity == 1)
        return tg_op1(op, o[0]);
    if (c->arity == 2)
        return tg_op2(op, o[0], o[1]);
    return tg_op3(op, o[0], o[1], o[2]);
}

enum { SHAPE_SCALAR, SHAPE_TALL, SHAPE_WIDE, SHAPE_SCALAR2 };

/* f in one of four shapes:
 *   scalar : x(nin)        -> y = op(x)
 *   tall   : x(nin)        -> y(4) = [op, op*x0, op + x_last, sin(x0)*op]   (m >= n)
 *   wide   : x(nin), p(2)  -> y(2) = [op*p0 + p1, exp(p1)*op - p0]          (m < n)
 *   scalar2: x(nin), p(2)  -> s = op*(p0 + p1*p1) + p1 */
static tg_tape *record_shape(const op_case *c, tg_opcode op, int shape)
{
    static const char *names[] = { "f", "ft", "fw", "fs" };
    tg_tape *t = tu_tape(names[shape], 0);
    size_t nin = case_nin(c);
    tg_var x[3], p[2];
    tg_input_vec(t, "x", nin, x);
    if (shape == SHAPE_WIDE || shape == SHAPE_SCALAR2)
        tg_input_vec(t, "p", 2, p);
    tg_var y = apply_case(c, op, x);
    if (shape == SHAPE_SCALAR) {
        tg_output(t, "y", y);
    } else if (shape == SHAPE_TALL) {
        tg_var ys[4] = { y, tg_mul(y, x[0]), tg_add(y, x[nin - 1]), tg_mul(tg_sin(x[0]), y) };
        tg_output_vec(t, "y", 4, ys);
    } else if (shape == SHAPE_WIDE) {
        tg_var ys[2] = { tg_add(tg_mul(y, p[0]), p[1]), tg_sub(tg_mul(tg_exp(p[1]), y), p[0]) };
        tg_output_vec(t, "y", 2, ys);
    } else {
        tg_output(t, "s", tg_add(tg_mul(y, tg_add(p[0], tg_mul(p[1], p[1]))), p[1]));
    }
    TU_TAPE_OK(t);
    char *d = du_disasm(t), pat[64];
    snprintf(pat, sizeof pat, " = %s %%", c->name);
    cr_expect(strstr(d, pat) != NULL, "recording %s did not put a \"%s\" instruction on the "
              "tape:\n%s", c->name, c->name, d);
    free(d);
    return t;
}

static void run_case(const op_case *c, tg_opcode op, size_t row)
{
    size_t nin = case_nin(c);
    tu_rng rng = { 0xde71e000u + (uint64_t)op * 131u + row };
    double pts[NPTS * 3], pts2[NPTS * 5];
    unsigned opts[NPTS], opts1[NPTS];
    sample_points(c, nin, &rng, pts);
    int is_select = strcmp(c->name, "select") == 0;
    for (size_t p = 0; p < NPTS; p++) {
        const double *x = pts + p * nin;
        /* select(c, a, b) at c = 0 exactly: the convention's derivative is
         * not the limit of difference quotients in c */
        opts[p] = CP_EXACT | ((is_select && x[0] == 0.0) ? 0u : CP_FD);
        opts1[p] = opts[p] | (c->step ? CP_STEP : 0u);
        memcpy(pts2 + p * (nin + 2), x, nin * sizeof *x);
        pts2[p * (nin + 2) + nin] = tu_rng_range(&rng, 0.5, 2.0) * (p % 2 ? -1.0 : 1.0);
        pts2[p * (nin + 2) + nin + 1] = tu_rng_range(&rng, -1.5, 1.5);
    }
    char label[96];
    if (c->powk)
        snprintf(label, sizeof label, "%s(x, %g) [row %zu]", c->name, c->k[1], row);
    else
        snprintf(label, sizeof label, "%s [row %zu]", c->name, row);

    char lab[160];
    for (int shape = SHAPE_SCALAR; shape <= SHAPE_SCALAR2; shape++) {
        tg_tape *f = record_shape(c, op, shape);
        int two = shape == SHAPE_WIDE || shape == SHAPE_SCALAR2;
        const double *P = two ? pts2 : pts;
        const unsigned *O = shape == SHAPE_SCALAR ? opts1 : opts;
        const int wrts[3] = { TG_ALL, 0, 1 };
        for (int k = 0; k < (two ? 3 : 2); k++) {
            snprintf(lab, sizeof lab, "%s [%s]", label, tg_tape_name(f));
            check_all(f, wrts[k], P, NPTS, lab, O, &rng);
        }
        tg_tape_free(f);
    }
}

Test(derive, case_table_is_complete)
{
    cr_assert_eq(N_ALL_OPS, (size_t)TG_OP_COUNT);
    for (size_t i = 0; i < N_ALL_OPS; i++) {
        const char *name = tg_op_name((tg_opcode)i);
        int ar = tg_op_arity((tg_opcode)i);
        cr_assert(name != NULL);
        if (ar <= 0)
            continue;
        size_t rows = 0;
        for (size_t k = 0; k < N_CASES; k++)
            if (strcmp(cases[k].name, name) == 0) {
                rows++;
                cr_expect_eq(cases[k].arity, ar, "op %s: table arity %d, tg_op_arity %d", name,
                             cases[k].arity, ar);
            }
        cr_expect(rows > 0, "op %s has no row in test_derive's case table", name);
    }
}

ParameterizedTestParameters(derive, every_op)
{
    return cr_make_param_array(int, (int *)all_ops, N_ALL_OPS);
}

ParameterizedTest(int *opp, derive, every_op)
{
    tg_opcode op = (tg_opcode)*opp;
    const char *name = tg_op_name(op);
    int ar = tg_op_arity(op);
    cr_assert(name != NULL, "opcode %d has no name", (int)op);
    if (ar == 0) {
        cr_assert(strcmp(name, "const") == 0 || strcmp(name, "input") == 0,
                  "opcode %d (%s) has arity 0 but is not a leaf", (int)op, name);
        return;
    }
    size_t rows = 0;
    for (size_t k = 0; k < N_CASES; k++) {
        if (strcmp(cases[k].name, name) != 0)
            continue;
        run_case(&cases[k], op, k);
        rows++;
    }
    cr_assert(rows > 0, "op %s (opcode %d) has no row in the case table: add one", name, (int)op);
}

/* ------------------------------------------------------------ composites */

/* Blocks x(3), p(2).  Scalar: a mix of most ops.  Vector: 3 outputs. */
static tg_var rec_comp(const tg_var *x, const tg_var *p)
{
    tg_var a = x[0], b = x[1], c = x[2];
    tg_var r = tg_mul(tg_mul(a, b), p[0]);
    r = tg_add(r, tg_mul(tg_sin(a), tg_cos(p[1])));
    r = tg_add(r, tg_log(tg_add(1.0, tg_mul(b, b))));
    r = tg_add(r, tg_hypot(c, p[0]));
    r = tg_add(r, tg_atan2(a, tg_add(p[1], 5.0)));
    r = tg_add(r, tg_mul(tg_sqrt(tg_add(tg_add(tg_mul(a, a), tg_mul(b, b)), 1.0)), tg_tanh(c)));
    r = tg_add(r, tg_pow(tg_add(tg_mul(b, b), 1.0), p[1]));
    r = tg_add(r, tg_div(tg_exp(tg_mul(a, p[1])), tg_add(2.0, tg_cos(c))));
    r = tg_add(r, tg_mul(tg_max(a, c), tg_min(b, p[0])));
    r = tg_add(r, tg_select(tg_gt(c, 0.0), tg_pow(c, 3.0), tg_mul(c, p[1])));
    r = tg_sub(r, tg_div(tg_erf(b), tg_add(tg_cosh(p[0]), 0.5)));
    return r;
}

static tg_tape *record_comp(const char *name, int vector, unsigned flags)
{
    tg_tape *t = tu_tape(name, flags);
    tg_var x[3], p[2];
    tg_input_vec(t, "x", 3, x);
    tg_input_vec(t, "p", 2, p);
    tg_var s = rec_comp(x, p);
    if (vector) {
        tg_var y[3] = { tg_add(tg_mul(x[0], x[1]), tg_sin(tg_mul(x[2], p[0]))),
                        tg_div(tg_exp(tg_sub(x[0], p[1])), tg_add(1.0, tg_mul(x[1], x[1]))), s };
        tg_output_vec(t, "y", 3, y);
    } else {
        tg_output(t, "f", s);
    }
    TU_TAPE_OK(t);
    return t;
}

static void comp_points(double *pts, size_t npts, uint64_t seed)
{
    tu_rng rng = { seed };
    for (size_t k = 0; k < npts; k++)
        for (size_t j = 0; j < 5; j++) {
            double v;
            do /* away from the kinks of max(a, c), min(b, p0) and the branch at c = 0 */
                v = tu_rng_range(&rng, -1.5, 1.5);
            while (fabs(v) < 0.05);
            pts[k * 5 + j] = v;
        }
    for (size_t k = 0; k < npts; k++) {
        double *x = pts + k * 5;
        if (fabs(x[0] - x[2]) < 0.05)
            x[2] += x[2] > 0 ? -0.2 : 0.2;
        if (fabs(x[1] - x[3]) < 0.05)
            x[3] += x[3] > 0 ? -0.2 : 0.2;
    }
}

Test(derive, composite_scalar_and_multi_output)
{
    enum { NP = 6 };
    double pts[NP * 5];
    unsigned opts[NP];
    comp_points(pts, NP, 1234);
    tu_rng rng = { 99 };
    const int wrts[3] = { TG_ALL, 0, 1 };
    for (int vector = 0; vector < 2; vector++)
        for (int nf = 0; nf < 2; nf++) {
            tg_tape *f = record_comp(vector ? "vec" : "comp", vector, nf ? TG_NO_FOLD | TG_NO_CSE : 0);
            for (size_t p = 0; p < NP; p++)
                opts[p] = CP_FD | (nf ? 0u : CP_EXACT);
            char label[64];
            snprintf(label, sizeof label, "composite%s [%s f]", vector ? " 3 outputs" : "",
                     nf ? "no-fold/no-CSE" : "default");
            for (int k = 0; k < 3; k++)
                check_all(f, wrts[k], pts, NP, label, opts, &rng);
            tg_tape_free(f);
        }
}

/* Tall (m >= n) and wide (m < n) Jacobian tapes with more than 8 columns
 * or rows: forward and reverse construction against the analytic matrix. */
static void wide_jacobian(size_t n, size_t m)
{
    tg_tape *t = tu_tape("wide", 0);
    tg_var x[32], y[32];
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < m; i++) {
        tg_var a = x[i % n], b = x[(i + 1) % n], c = x[(3 * i) % n];
        y[i] = tg_add(tg_mul(tg_sin(a), b), tg_mul((double)(i + 1), tg_mul(c, c)));
    }
    tg_output_vec(t, "y", m, y);
    TU_TAPE_OK(t);
    tg_tape *J = tg_jacobian_tape(t, TG_ALL);
    du_check_layout(J, t, "jac", NULL, 0, "jac", m * n);
    double xv[32], Jt[32 * 32], Jn[32 * 32];
    tu_rng rng = { 77 };
    for (size_t j = 0; j < n; j++)
        xv[j] = tu_rng_range(&rng, -2, 2);
    du_eval(J, xv, Jt);
    TU_OK(tg_jacobian(t, xv, Jn));
    for (size_t i = 0; i < m; i++) {
        double want[32] = { 0 };
        size_t ia = i % n, ib = (i + 1) % n, ic = (3 * i) % n;
        want[ia] += cos(xv[ia]) * xv[ib];
        want[ib] += sin(xv[ia]);
        want[ic] += 2.0 * (double)(i + 1) * xv[ic];
        for (size_t j = 0; j < n; j++) {
            cr_expect(tu_close(Jt[i * n + j], want[j], 1e-12, 1e-14),
                      "%zux%zu jacobian tape [%zu][%zu] = %s, analytic %s", m, n, i, j,
                      tu_d(Jt[i * n + j]).s, tu_d(want[j]).s);
            cr_expect(tu_same_value(Jt[i * n + j], Jn[i * n + j]),
                      "%zux%zu jacobian tape [%zu][%zu] = %s, tg_jacobian %s", m, n, i, j,
                      tu_d(Jt[i * n + j]).s, tu_d(Jn[i * n + j]).s);
        }
    }
    tg_tape_free(J);
    tg_tape_free(t);
}

Test(derive, jacobian_tape_tall_and_wide)
{
    wide_jacobian(11, 19);
    wide_jacobian(19, 11);
    wide_jacobian(1, 1);
}

/* ------------------------------------------------------ layout and names */

Test(derive, extra_block_renamed_when_f_has_v_or_w)
{
    tg_tape *f = tu_tape("vw", 0);
    tg_var v[2], w;
    tg_input_vec(f, "v", 2, v);
    w = tg_input(f, "w");
    tg_output(f, "y", tg_mul(tg_sin(v[0]), tg_add(v[1], w)));
    TU_TAPE_OK(f);
    const int wrts[3] = { TG_ALL, 0, 1 };
    for (int k = 0; k < 3; k++) {
        size_t lo, nw;
        du_wrt_range(f, wrts[k], &lo, &nw);
        tg_tape *jv = tg_jvp_tape(f, wrts[k]), *vj = tg_vjp_tape(f, wrts[k]);
        tg_tape *hv = tg_hvp_tape(f, wrts[k]), *jo = tg_joint_tape(f, TG_F | TG_HVP, wrts[k]);
        du_check_layout(jv, f, "jvp", "v", nw, "jvp", 1);
        du_check_layout(vj, f, "vjp", "w", 1, "vjp", nw);
        du_check_layout(hv, f, "hvp", "v", nw, "hvp", nw);
        cr_expect_str_eq(tg_input_block_name(jv, 2), "v_2");
        cr_expect_str_eq(tg_input_block_name(vj, 2), "w_2");
        cr_expect_str_eq(tg_input_block_name(hv, 2), "v_2");
        cr_assert_eq(tg_tape_status(jo), TG_OK, "joint: %s", tg_tape_error(jo));
        cr_expect_str_eq(tg_input_block_name(jo, 2), "v_2");
        cr_expect_eq(tg_input_block_size(jo, 2), nw);
        tg_tape_free(jv);
        tg_tape_free(vj);
        tg_tape_free(hv);
        tg_tape_free(jo);
    }
    tg_tape_free(f);

    /* "v" and "v_2" both taken: "v_3" */
    f = tu_tape("vv", 0);
    tg_var a = tg_input(f, "v"), b = tg_input(f, "v_2"), c = tg_input(f, "w_2");
    tg_output(f, "y", tg_mul(tg_mul(a, b), c));
    TU_TAPE_OK(f);
    tg_tape *jv = tg_jvp_tape(f, TG_ALL), *vj = tg_vjp_tape(f, 1);
    du_check_layout(jv, f, "jvp", "v", 3, "jvp", 1);
    du_check_layout(vj, f, "vjp", "w", 1, "vjp", 1);
    cr_expect_str_eq(tg_input_block_name(jv, 3), "v_3");
    cr_expect_str_eq(tg_input_block_name(vj, 3), "w");
    /* the renamed tangent block is really the tangent */
    double in[6] = { 2.0, 3.0, 5.0, 1.0, 0.0, 0.0 }, out[1];
    du_eval(jv, in, out);
    cr_expect(out[0] == 15.0, "jvp along v = e0 of v*v_2*w_2 at (2,3,5): %s, expected 15",
              tu_d(out[0]).s);
    tg_tape_free(jv);
    tg_tape_free(vj);
    tg_tape_free(f);
}

Test(derive, names_follow_f_and_wrt_selects_one_block)
{
    tg_tape *f = tu_tape("model", 0);
    tg_var x[3], p[2];
    tg_input_vec(f, "x", 3, x);
    tg_input_vec(f, "p", 2, p);
    /* f = sum x_i^2 * p0 + p1 * x0 */
    tg_var s = tg_add(tg_mul(tg_norm2sq(3, x), p[0]), tg_mul(p[1], x[0]));
    tg_output(f, "loss", s);
    TU_TAPE_OK(f);
    struct { tg_tape *(*fn)(const tg_tape *, int); const char *suffix; } fns[] = {
        { tg_gradient_tape, "grad" }, { tg_jacobian_tape, "jac" }, { tg_hessian_tape, "hess" },
        { tg_jvp_tape, "jvp" },       { tg_vjp_tape, "vjp" },      { tg_hvp_tape, "hvp" },
    };
    for (size_t k = 0; k < 6; k++) {
        tg_tape *d = fns[k].fn(f, 1);
        char want[64];
        snprintf(want, sizeof want, "model_%s", fns[k].suffix);
        cr_assert_eq(tg_tape_status(d), TG_OK, "%s: %s", want, tg_tape_error(d));
        cr_expect_str_eq(tg_tape_name(d), want);
        cr_expect_str_eq(tg_output_block_name(d, 0), fns[k].suffix);
        tg_tape_free(d);
    }
    tg_tape *j = tg_joint_tape(f, TG_F | TG_GRAD, 1);
    cr_expect_str_eq(tg_tape_name(j), "model_joint");
    tg_tape_free(j);

    /* wrt = 1: only p.  d/dp0 = |x|^2, d/dp1 = x0; Hessian in p is 0 */
    double in[5] = { 1.0, 2.0, -3.0, 0.5, 4.0 }, g[2], H[4];
    tg_tape *G = tg_gradient_tape(f, 1), *Hh = tg_hessian_tape(f, 1);
    du_check_layout(G, f, "grad", NULL, 0, "grad", 2);
    du_check_layout(Hh, f, "hess", NULL, 0, "hess", 4);
    du_eval(G, in, g);
    du_eval(Hh, in, H);
    cr_expect(g[0] == 14.0 && g[1] == 1.0, "gradient wrt p: (%g, %g), expected (14, 1)", g[0], g[1]);
    for (int k = 0; k < 4; k++)
        cr_expect(H[k] == 0.0, "hessian wrt p [%d] = %g, expected 0", k, H[k]);
    tg_tape_free(G);
    tg_tape_free(Hh);
    /* wrt = 0: only x.  d/dx = 2 p0 x + (p1, 0, 0); Hessian 2 p0 I */
    double gx[3], Hx[9];
    G = tg_gradient_tape(f, 0);
    Hh = tg_hessian_tape(f, 0);
    du_check_layout(G, f, "grad", NULL, 0, "grad", 3);
    du_check_layout(Hh, f, "hess", NULL, 0, "hess", 9);
    du_eval(G, in, gx);
    du_eval(Hh, in, Hx);
    cr_expect(gx[0] == 5.0 && gx[1] == 2.0 && gx[2] == -3.0, "gradient wrt x: (%g, %g, %g), "
              "expected (5, 2, -3)", gx[0], gx[1], gx[2]);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            cr_expect(Hx[i * 3 + k] == (i == k ? 1.0 : 0.0), "hessian wrt x [%d][%d] = %g", i, k,
                      Hx[i * 3 + k]);
    tg_tape_free(G);
    tg_tape_free(Hh);
    tg_tape_free(f);
}

/* ---------------------------------------------------------------- errors */

typedef tg_tape *(*derive_fn)(const tg_tape *, int);
static const derive_fn all_fns[6] = { tg_gradient_tape, tg_jacobian_tape, tg_hessian_tape,
                                      tg_jvp_tape,      tg_vjp_tape,      tg_hvp_tape };
static const char *fn_names[6] = { "gradient", "jacobian", "hessian", "jvp", "vjp", "hvp" };
static const int needs_scalar[6] = { 1, 0, 1, 0, 0, 1 };

static void expect_error(tg_tape *d, tg_status want, const char *what)
{
    cr_assert(d != NULL, "%s: NULL tape (only allowed when out of memory)", what);
    cr_expect_eq(tg_tape_status(d), want, "%s: status %d (%s), expected %d (%s)", what,
                 (int)tg_tape_status(d), tg_status_str(tg_tape_status(d)), (int)want,
                 tg_status_str(want));
    cr_expect(strlen(tg_tape_error(d)) > 0, "%s: empty error message", what);
    /* an error tape evaluates to its status and records nothing */
    double x[8] = { 0 }, y[8];
    cr_expect_eq(tg_eval(d, x, y), want, "%s: tg_eval on the error tape", what);
    tg_var v = tg_input(d, "late");
    (void)v;
    cr_expect_eq(tg_tape_status(d), want, "%s: status not sticky", what);
    tg_tape_free(d);
}

Test(derive, null_tape_gives_arg_error_tape)
{
    for (int k = 0; k < 6; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s_tape(NULL)", fn_names[k]);
        expect_error(all_fns[k](NULL, TG_ALL), TG_ERR_ARG, what);
        expect_error(all_fns[k](NULL, 0), TG_ERR_ARG, what);
    }
    expect_error(tg_joint_tape(NULL, TG_F | TG_GRAD, TG_ALL), TG_ERR_ARG, "joint_tape(NULL)");
}

Test(derive, bad_wrt_gives_arg_error)
{
    tg_tape *f = tu_tape("f", 0);
    tg_var x[2], p;
    tg_input_vec(f, "x", 2, x);
    p = tg_input(f, "p");
    tg_output(f, "y", tg_mul(tg_add(x[0], x[1]), p));
    TU_TAPE_OK(f);
    const int bad[] = { 2, 3, -2, 1000, INT_MAX, INT_MIN };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (int k = 0; k < 6; k++) {
            char what[64];
            snprintf(what, sizeof what, "%s_tape(f, wrt = %d)", fn_names[k], bad[b]);
            expect_error(all_fns[k](f, bad[b]), TG_ERR_ARG, what);
        }
        char what[64];
        snprintf(what, sizeof what, "joint_tape(f, F|GRAD, wrt = %d)", bad[b]);
        expect_error(tg_joint_tape(f, TG_F | TG_GRAD, bad[b]), TG_ERR_ARG, what);
    }
    /* f is untouched */
    TU_TAPE_OK(f);
    tg_tape_free(f);
}

Test(derive, scalar_only_tapes_of_vector_f_give_shape_error)
{
    tg_tape *f = tu_tape("vec", 0);
    tg_var x[2];
    tg_input_vec(f, "x", 2, x);
    tg_var y[2] = { tg_sin(x[0]), tg_mul(x[0], x[1]) };
    tg_output_vec(f, "y", 2, y);
    TU_TAPE_OK(f);
    for (int k = 0; k < 6; k++) {
        tg_tape *d = all_fns[k](f, TG_ALL);
        char what[64];
        snprintf(what, sizeof what, "%s_tape of a 2-output tape", fn_names[k]);
        if (needs_scalar[k]) {
            expect_error(d, TG_ERR_SHAPE, what);
        } else {
            cr_expect_eq(tg_tape_status(d), TG_OK, "%s: %s", what, tg_tape_error(d));
            tg_tape_free(d);
        }
    }
    /* two output blocks of one scalar each: m = 2 as well */
    tg_tape *f2 = tu_tape("two", 0);
    tg_var a = tg_input(f2, "a");
    tg_output(f2, "u", tg_sin(a));
    tg_output(f2, "w", tg_cos(a));
    TU_TAPE_OK(f2);
    expect_error(tg_gradient_tape(f2, TG_ALL), TG_ERR_SHAPE, "gradient of 2 output blocks");
    expect_error(tg_hessian_tape(f2, 0), TG_ERR_SHAPE, "hessian of 2 output blocks");
    expect_error(tg_hvp_tape(f2, 0), TG_ERR_SHAPE, "hvp of 2 output blocks");
    /* joint tapes: GRAD, HESS, HVP need m == 1; F and JAC do not */
    for (unsigned parts = 1; parts < 32; parts++) {
        tg_tape *j = tg_joint_tape(f, parts, TG_ALL);
        char what[64];
        snprintf(what, sizeof what, "joint_tape(parts = %u) of a 2-output tape", parts);
        if (parts & (TG_GRAD | TG_HESS | TG_HVP)) {
            expect_error(j, TG_ERR_SHAPE, what);
        } else {
            cr_expect_eq(tg_tape_status(j), TG_OK, "%s: %s", what, tg_tape_error(j));
            tg_tape_free(j);
        }
    }
    tg_tape_free(f);
    tg_tape_free(f2);
}

Test(derive, f_in_error_state_gives_error_tape)
{
    /* TG_ERR_LIMIT: distinct from the ARG of a bad call */
    tg_tape *f = tu_tape("lim", 0);
    cr_assert_eq(tg_tape_set_limit(f, 4), TG_OK);
    tg_var x = tg_input(f, "x");
    tg_var y = tg_sin(tg_cos(tg_exp(tg_log(x))));
    tg_output(f, "y", y);
    cr_assert_eq(tg_tape_status(f), TG_ERR_LIMIT, "premise: the limit puts f in TG_ERR_LIMIT");
    for (int k = 0; k < 6; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s_tape of a TG_ERR_LIMIT tape", fn_names[k]);
        expect_error(all_fns[k](f, TG_ALL), TG_ERR_LIMIT, what);
    }
    expect_error(tg_joint_tape(f, TG_F | TG_GRAD | TG_HVP, TG_ALL), TG_ERR_LIMIT, "joint_tape");
    tg_tape_free(f);

    /* TG_ERR_ARG: a value of another tape */
    tg_tape *a = tu_tape("a", 0), *b = tu_tape("b", 0);
    tg_var xa = tg_input(a, "x"), xb = tg_input(b, "x");
    tg_output(a, "y", tg_add(xa, xb));
    cr_assert_eq(tg_tape_status(a), TG_ERR_ARG);
    for (int k = 0; k < 6; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s_tape of a TG_ERR_ARG tape", fn_names[k]);
        expect_error(all_fns[k](a, TG_ALL), TG_ERR_ARG, what);
    }
    tg_tape_free(a);
    tg_tape_free(b);
}

Test(derive, joint_bad_parts_give_arg_error)
{
    tg_tape *f = tu_tape("f", 0);
    tg_var x = tg_input(f, "x");
    tg_output(f, "y", tg_sin(x));
    TU_TAPE_OK(f);
    expect_error(tg_joint_tape(f, 0, TG_ALL), TG_ERR_ARG, "joint_tape(parts = 0)");
    expect_error(tg_joint_tape(f, 32, TG_ALL), TG_ERR_ARG, "joint_tape(parts = 32)");
    expect_error(tg_joint_tape(f, TG_F | 64, TG_ALL), TG_ERR_ARG, "joint_tape(parts = F|64)");
    expect_error(tg_joint_tape(f, ~0u, TG_ALL), TG_ERR_ARG, "joint_tape(parts = ~0)");
    tg_tape_free(f);
}

/* ------------------------------------------------------------ joint tapes */

static void check_joint(const tg_tape *f, int wrt, const double *pts, size_t npts)
{
    static const unsigned bit[5] = { TG_F, TG_GRAD, TG_JAC, TG_HESS, TG_HVP };
    static const char *bname[5] = { "f", "grad", "jac", "hess", "hvp" };
    size_t n = tg_num_inputs(f), m = tg_num_outputs(f), lo, nw;
    du_wrt_range(f, wrt, &lo, &nw);
    cr_assert_eq(m, 1);
    tg_tape *sep[5] = { NULL, tg_gradient_tape(f, wrt), tg_jacobian_tape(f, wrt),
                        tg_hessian_tape(f, wrt), tg_hvp_tape(f, wrt) };
    size_t size[5] = { m, nw, m * nw, nw * nw, nw };
    for (int k = 1; k < 5; k++)
        TU_TAPE_OK(sep[k]);
    tu_rng rng = { 4242 + (uint64_t)(wrt + 1) };
    for (unsigned parts = 1; parts < 32; parts++) {
        tg_tape *j = tg_joint_tape(f, parts, wrt);
        cr_assert(j != NULL);
        cr_assert_eq(tg_tape_status(j), TG_OK, "joint parts %u wrt %d: %s", parts, wrt,
                     tg_tape_error(j));
        char want[300];
        snprintf(want, sizeof want, "%s_joint", tg_tape_name(f));
        cr_expect_str_eq(tg_tape_name(j), want);
        /* inputs: f's blocks, then "v" (n_w) only for TG_HVP */
        size_t nb = tg_num_input_blocks(f), hv = (parts & TG_HVP) != 0;
        cr_assert_eq(tg_num_input_blocks(j), nb + hv, "joint parts %u: %zu input blocks", parts,
                     tg_num_input_blocks(j));
        for (size_t b = 0; b < nb; b++) {
            cr_expect_str_eq(tg_input_block_name(j, b), tg_input_block_name(f, b));
            cr_expect_eq(tg_input_block_size(j, b), tg_input_block_size(f, b));
        }
        if (hv) {
            char en[64];
            du_extra_name(f, "v", en, sizeof en);
            cr_expect_str_eq(tg_input_block_name(j, nb), en);
            cr_expect_eq(tg_input_block_size(j, nb), nw);
        }
        cr_expect_eq(tg_num_inputs(j), n + (hv ? nw : 0));
        /* outputs: the requested parts in the order f, grad, jac, hess, hvp */
        size_t ob = 0, off = 0, offs[5] = { 0 };
        for (int k = 0; k < 5; k++) {
            if (!(parts & bit[k]))
                continue;
            cr_assert(ob < tg_num_output_blocks(j), "joint parts %u: only %zu output blocks",
                      parts, tg_num_output_blocks(j));
            cr_expect_str_eq(tg_output_block_name(j, ob), bname[k], "joint parts %u: output "
                             "block %zu is \"%s\", expected \"%s\"", parts, ob,
                             tg_output_block_name(j, ob), bname[k]);
            cr_expect_eq(tg_output_block_size(j, ob), size[k], "joint parts %u: block %s has "
                         "%zu scalars, expected %zu", parts, bname[k],
                         tg_output_block_size(j, ob), size[k]);
            cr_expect_eq(tg_output_block_offset(j, ob), off);
            offs[k] = off;
            off += size[k];
            ob++;
        }
        cr_expect_eq(tg_num_output_blocks(j), ob, "joint parts %u: %zu output blocks, expected %zu",
                     parts, tg_num_output_blocks(j), ob);
        cr_expect_eq(tg_num_outputs(j), off);
        /* values: equal to the separate tapes */
        for (size_t p = 0; p < npts; p++) {
            const double *x = pts + p * n;
            double in[DMAX], out[DMAX], ref[DMAX], v[DMAX];
            for (size_t k = 0; k < nw; k++)
                v[k] = tu_rng_range(&rng, -2, 2);
            du_concat(in, x, n, v, hv ? nw : 0);
            du_eval(j, in, out);
            for (int k = 0; k < 5; k++) {
                if (!(parts & bit[k]))
                    continue;
                if (k == 0) {
                    du_eval(f, x, ref);
                } else if (k == 4) {
                    double in2[DMAX];
                    du_concat(in2, x, n, v, nw);
                    du_eval(sep[4], in2, ref);
                } else {
                    du_eval(sep[k], x, ref);
                }
                for (size_t e = 0; e < size[k]; e++)
                    cr_expect(tu_same_value(out[offs[k] + e], ref[e]),
                              "joint parts %u wrt %d point %zu: %s[%zu] = %s, separate tape %s",
                              parts, wrt, p, bname[k], e, tu_d(out[offs[k] + e]).s,
                              tu_d(ref[e]).s);
            }
        }
        /* sharing: f, gradient and HVP in one tape cost less than separately */
        if ((parts & (TG_F | TG_GRAD | TG_HVP)) == (TG_F | TG_GRAD | TG_HVP)) {
            size_t sj = tg_tape_size(j), sf = tg_tape_size(f), sg = tg_tape_size(sep[1]);
            size_t sh = tg_tape_size(sep[4]);
            cr_expect(sj < sf + sg + sh, "joint parts %u: %zu instructions, separate f %zu + grad "
                      "%zu + hvp %zu", parts, sj, sf, sg, sh);
            if (parts == (TG_F | TG_GRAD | TG_HVP))
                cr_expect(sj < sg + sh, "joint f+grad+hvp: %zu instructions, not less than grad "
                          "%zu + hvp %zu: the gradient is not shared", sj, sg, sh);
        }
        tg_tape_free(j);
    }
    for (int k = 1; k < 5; k++)
        tg_tape_free(sep[k]);
}

Test(derive, joint_every_combination)
{
    enum { NP = 3 };
    double pts[NP * 5];
    comp_points(pts, NP, 555);
    tg_tape *f = record_comp("comp", 0, 0);
    check_joint(f, TG_ALL, pts, NP);
    check_joint(f, 0, pts, NP);
    check_joint(f, 1, pts, NP);
    tg_tape_free(f);
    /* an f with a block named v: the joint tangent block is v_2 */
    tg_tape *g = tu_tape("g", 0);
    tg_var v[2];
    tg_input_vec(g, "v", 2, v);
    tg_output(g, "y", tg_mul(tg_exp(v[0]), tg_sin(v[1])));
    TU_TAPE_OK(g);
    double gp[4] = { 0.3, -1.2, 1.1, 0.7 };
    check_joint(g, TG_ALL, gp, 2);
    tg_tape_free(g);
}

Test(derive, joint_vector_f_and_jacobian)
{
    enum { NP = 3 };
    double pts[NP * 5];
    comp_points(pts, NP, 556);
    tg_tape *f = record_comp("vec", 1, 0);
    const int wrts[3] = { TG_ALL, 0, 1 };
    for (int k = 0; k < 3; k++) {
        tg_tape *j = tg_joint_tape(f, TG_F | TG_JAC, wrts[k]), *J = tg_jacobian_tape(f, wrts[k]);
        TU_TAPE_OK(j);
        TU_TAPE_OK(J);
        size_t lo, nw;
        du_wrt_range(f, wrts[k], &lo, &nw);
        cr_assert_eq(tg_num_output_blocks(j), 2);
        cr_expect_str_eq(tg_output_block_name(j, 0), "f");
        cr_expect_str_eq(tg_output_block_name(j, 1), "jac");
        cr_expect_eq(tg_output_block_size(j, 0), 3);
        cr_expect_eq(tg_output_block_size(j, 1), 3 * nw);
        for (size_t p = 0; p < NP; p++) {
            double out[DMAX], y[3], Jt[DMAX];
            du_eval(j, pts + 5 * p, out);
            du_eval(f, pts + 5 * p, y);
            du_eval(J, pts + 5 * p, Jt);
            for (size_t i = 0; i < 3; i++)
                cr_expect(tu_same_value(out[i], y[i]), "joint f[%zu] = %s, f %s", i,
                          tu_d(out[i]).s, tu_d(y[i]).s);
            for (size_t e = 0; e < 3 * nw; e++)
                cr_expect(tu_same_value(out[3 + e], Jt[e]), "joint jac[%zu] = %s, jacobian tape %s",
                          e, tu_d(out[3 + e]).s, tu_d(Jt[e]).s);
        }
        tg_tape_free(j);
        tg_tape_free(J);
    }
    tg_tape_free(f);
}

/* ------------------------------------ docs/conventions.md through derivative tapes */

#define NMAX 4

typedef tg_var (*rec_fn)(tg_tape *t, const tg_var *x);

/* NaN matches NaN, an infinity the same infinity, 0 matches +-0, anything
 * else within 1e-12 relative. */
static int want_match(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want) || want == 0.0)
        return got == want;
    return tu_close(got, want, 1e-12, 0.0);
}

/* One row of the table at one point, on a default and on a TG_NO_FOLD |
 * TG_NO_CSE f: the gradient, Jacobian, JVP (unit tangents), VJP (w = 1)
 * and joint (F|GRAD) tapes give the row's value and derivative; with hess,
 * the Hessian tape, the HVP tape (unit tangents), the Jacobian of the
 * gradient tape and the joint HESS|HVP give the second derivatives.  Each
 * also equals the numeric sweep as a value. */
static void row(const char *label, size_t n, rec_fn rec, const double *x, double value,
                const double *grad, const double *hess)
{
    static const unsigned flags[2] = { 0, TG_NO_FOLD | TG_NO_CSE };
    for (int fl = 0; fl < 2; fl++) {
        tg_tape *f = tu_tape("row", flags[fl]);
        tg_var xv[NMAX];
        tg_input_vec(f, "x", n, xv);
        tg_output(f, "y", rec(f, xv));
        TU_TAPE_OK(f);
        char where[200];
        {
            int k = snprintf(where, sizeof where, "%s [%s f] at (", label,
                             fl ? "no-fold" : "default");
            for (size_t j = 0; j < n; j++)
                k += snprintf(where + k, sizeof where - (size_t)k, "%s%.17g", j ? ", " : "", x[j]);
            snprintf(where + k, sizeof where - (size_t)k, ")");
        }
        double out[16], in[16], gn[NMAX];
        TU_OK(tg_gradient(f, x, gn));

        tg_tape *G = tg_gradient_tape(f, TG_ALL);
        du_check_layout(G, f, "grad", NULL, 0, "grad", n);
        du_eval(G, x, out);
        for (size_t j = 0; j < n; j++) {
            cr_expect(want_match(out[j], grad[j]), "%s: gradient tape d/dx%zu = %s, expected %s",
                      where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
            cr_expect(tu_same_value(out[j], gn[j]), "%s: gradient tape d/dx%zu = %s, "
                      "tg_gradient %s", where, j, tu_d(out[j]).s, tu_d(gn[j]).s);
        }
        tg_tape *J = tg_jacobian_tape(f, TG_ALL);
        du_check_layout(J, f, "jac", NULL, 0, "jac", n);
        du_eval(J, x, out);
        for (size_t j = 0; j < n; j++)
            cr_expect(want_match(out[j], grad[j]), "%s: jacobian tape d/dx%zu = %s, expected %s",
                      where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
        tg_tape *JV = tg_jvp_tape(f, TG_ALL);
        du_check_layout(JV, f, "jvp", "v", n, "jvp", 1);
        for (size_t d = 0; d < n; d++) {
            double e[NMAX] = { 0 };
            e[d] = 1.0;
            du_concat(in, x, n, e, n);
            du_eval(JV, in, out);
            cr_expect(want_match(out[0], grad[d]), "%s: jvp tape along e%zu = %s, expected %s",
                      where, d, tu_d(out[0]).s, tu_d(grad[d]).s);
        }
        tg_tape *VJ = tg_vjp_tape(f, TG_ALL);
        du_check_layout(VJ, f, "vjp", "w", 1, "vjp", n);
        {
            double one = 1.0;
            du_concat(in, x, n, &one, 1);
            du_eval(VJ, in, out);
            for (size_t j = 0; j < n; j++)
                cr_expect(want_match(out[j], grad[j]), "%s: vjp tape (w = 1) d/dx%zu = %s, "
                          "expected %s", where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
        }
        tg_tape *JF = tg_joint_tape(f, TG_F | TG_GRAD, TG_ALL);
        TU_TAPE_OK(JF);
        du_eval(JF, x, out);
        cr_expect(want_match(out[0], value), "%s: joint tape f = %s, expected %s", where,
                  tu_d(out[0]).s, tu_d(value).s);
        for (size_t j = 0; j < n; j++)
            cr_expect(want_match(out[1 + j], grad[j]), "%s: joint tape grad[%zu] = %s, expected %s",
                      where, j, tu_d(out[1 + j]).s, tu_d(grad[j]).s);

        if (hess) {
            double Hn[NMAX * NMAX];
            TU_OK(tg_hessian(f, x, Hn));
            tg_tape *H = tg_hessian_tape(f, TG_ALL);
            du_check_layout(H, f, "hess", NULL, 0, "hess", n * n);
            du_eval(H, x, out);
            for (size_t k = 0; k < n * n; k++) {
                cr_expect(want_match(out[k], hess[k]), "%s: hessian tape [%zu][%zu] = %s, "
                          "expected %s", where, k / n, k % n, tu_d(out[k]).s, tu_d(hess[k]).s);
                cr_expect(want_match(out[k], Hn[k]) || (isinf(Hn[k]) && out[k] == Hn[k]),
                          "%s: hessian tape [%zu][%zu] = %s, tg_hessian %s", where, k / n, k % n,
                          tu_d(out[k]).s, tu_d(Hn[k]).s);
            }
            tg_tape *JG = tg_jacobian_tape(G, TG_ALL);
            du_check_layout(JG, G, "jac", NULL, 0, "jac", n * n);
            du_eval(JG, x, out);
            for (size_t k = 0; k < n * n; k++)
                cr_expect(want_match(out[k], hess[k]), "%s: jacobian of the gradient tape "
                          "[%zu][%zu] = %s, expected %s", where, k / n, k % n, tu_d(out[k]).s,
                          tu_d(hess[k]).s);
            if (n == 1) {
                tg_tape *GG = tg_gradient_tape(G, TG_ALL);
                du_check_layout(GG, G, "grad", NULL, 0, "grad", 1);
                du_eval(GG, x, out);
                cr_expect(want_match(out[0], hess[0]), "%s: gradient of the gradient tape = %s, "
                          "expected %s", where, tu_d(out[0]).s, tu_d(hess[0]).s);
                tg_tape_free(GG);
            }
            tg_tape *HV = tg_hvp_tape(f, TG_ALL);
            du_check_layout(HV, f, "hvp", "v", n, "hvp", n);
            tg_tape *JH = tg_joint_tape(f, TG_F | TG_GRAD | TG_HESS | TG_HVP, TG_ALL);
            TU_TAPE_OK(JH);
            for (size_t d = 0; d < n; d++) {
                double e[NMAX] = { 0 };
                e[d] = 1.0;
                du_concat(in, x, n, e, n);
                du_eval(HV, in, out);
                for (size_t i = 0; i < n; i++)
                    cr_expect(want_match(out[i], hess[i * n + d]), "%s: hvp tape along e%zu: "
                              "[%zu] = %s, expected %s", where, d, i, tu_d(out[i]).s,
                              tu_d(hess[i * n + d]).s);
                du_eval(JH, in, out);
                /* f | grad (n) | hess (n*n) | hvp (n) */
                for (size_t i = 0; i < n; i++)
                    cr_expect(want_match(out[1 + n + n * n + i], hess[i * n + d]),
                              "%s: joint hvp along e%zu: [%zu] = %s, expected %s", where, d, i,
                              tu_d(out[1 + n + n * n + i]).s, tu_d(hess[i * n + d]).s);
                for (size_t k = 0; k < n * n; k++)
                    cr_expect(want_match(out[1 + n + k], hess[k]), "%s: joint hess [%zu] = %s, "
                              "expected %s", where, k, tu_d(out[1 + n + k]).s, tu_d(hess[k]).s);
            }
            tg_tape_free(H);
            tg_tape_free(JG);
            tg_tape_free(HV);
            tg_tape_free(JH);
        }
        tg_tape_free(G);
        tg_tape_free(J);
        tg_tape_free(JV);
        tg_tape_free(VJ);
        tg_tape_free(JF);
        tg_tape_free(f);
    }
}

static void row1(const char *label, rec_fn rec, double x, double value, double d)
{
    row(label, 1, rec, &x, value, &d, NULL);
}
static void row1h(const char *label, rec_fn rec, double x, double value, double d, double dd)
{
    row(label, 1, rec, &x, value, &d, &dd);
}

#define REC(NAME, EXPR) \
    static tg_var NAME(tg_tape *t, const tg_var *x) { (void)t; return (EXPR); }

REC(r_sqrt, tg_sqrt(x[0]))
REC(r_sqrt_xx, tg_sqrt(tg_mul(x[0], x[0])))
REC(r_sqrt_sumsq, tg_sqrt(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1]))))
REC(r_x_sqrt_x, tg_mul(x[0], tg_sqrt(x[0])))
REC(r_pow_15, tg_pow(x[0], 1.5))
REC(r_abs, tg_abs(x[0]))
REC(r_signum, tg_signum(x[0]))
REC(r_floor, tg_floor(x[0]))
REC(r_ceil, tg_ceil(x[0]))
REC(r_round, tg_round(x[0]))
REC(r_trunc, tg_trunc(x[0]))
REC(r_fract, tg_fract(x[0]))
REC(r_max, tg_max(x[0], x[1]))
REC(r_min, tg_min(x[0], x[1]))
REC(r_max_self, tg_max(x[0], x[0]))
REC(r_pow_0, tg_pow(x[0], 0.0))
REC(r_pow_1, tg_pow(x[0], 1.0))
REC(r_pow_2, tg_pow(x[0], 2))
REC(r_xx, tg_mul(x[0], x[0]))
REC(r_pow_25, tg_pow(x[0], 2.5))
REC(r_pow_05, tg_pow(x[0], 0.5))
REC(r_pow_3, tg_pow(x[0], 3.0))
REC(r_pow_xy, tg_pow(x[0], x[1]))
REC(r_exp, tg_exp(x[0]))
REC(r_log, tg_log(x[0]))
REC(r_log1p, tg_log1p(x[0]))
REC(r_div, tg_div(x[0], x[1]))
REC(r_x_over_x, tg_div(x[0], x[0]))
REC(r_hypot, tg_hypot(x[0], x[1]))
REC(r_norm2, tg_norm2(3, x))
REC(r_norm2sq, tg_norm2sq(3, x))
REC(r_norm2_pow2, tg_pow(tg_norm2(3, x), 2))
REC(r_atan2, tg_atan2(x[0], x[1]))
REC(r_asin, tg_asin(x[0]))
REC(r_acos, tg_acos(x[0]))
REC(r_atanh, tg_atanh(x[0]))
REC(r_acosh, tg_acosh(x[0]))
REC(r_cbrt, tg_cbrt(x[0]))
REC(r_sel_sqrt, tg_select(tg_gt(x[0], 0), tg_sqrt(x[0]), 0))
REC(r_sel_log, tg_select(tg_gt(x[0], 0.0), tg_log(x[0]), 0.0))
REC(r_max_eps, tg_max(tg_sqrt(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1]))), 1e-12))
REC(r_sqrt_exp, tg_sqrt(tg_exp(x[0])))
REC(r_plus_zero, tg_add(x[0], 0.0))

static const double INF = INFINITY;

Test(derive_conventions, sqrt_rows)
{
    row1("sqrt(x) @ +0", r_sqrt, 0.0, 0.0, INF);
    row1("sqrt(x) @ -1", r_sqrt, -1.0, NAN, NAN);
    row1("sqrt(x*x) @ 0", r_sqrt_xx, 0.0, 0.0, 0.0);
    row("sqrt(x*x+y*y) @ (0,0)", 2, r_sqrt_sumsq, (double[]){ 0.0, 0.0 }, 0.0,
        (double[]){ 0.0, 0.0 }, NULL);
    row1("x*sqrt(x) @ 0", r_x_sqrt_x, 0.0, 0.0, 0.0);
    row1("pow(x,1.5) @ 0", r_pow_15, 0.0, 0.0, 0.0);
}

Test(derive_conventions, abs_at_zero)
{
    row1h("abs(x) @ +0", r_abs, 0.0, 0.0, 0.0, 0.0);
    row1h("abs(x) @ -0", r_abs, -0.0, 0.0, 0.0, 0.0);
    row1h("abs(x) @ -2", r_abs, -2.0, 2.0, -1.0, 0.0);
}

static double c_signum(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; }

Test(derive_conventions, steps_derivative_zero_nan_for_nan)
{
    struct { const char *name; rec_fn rec; double (*ref)(double); } s[] = {
        { "signum", r_signum, c_signum }, { "floor", r_floor, floor }, { "ceil", r_ceil, ceil },
        { "round", r_round, round },      { "trunc", r_trunc, trunc },
    };
    const double pts[] = { -2.0, -1.5, -0.5, -0.0, 0.0, 0.5, 1.0, 2.5, 3.7, 1e-300, INF, -INF };
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
        char label[64];
        snprintf(label, sizeof label, "%s(x)", s[k].name);
        for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++)
            row1h(label, s[k].rec, pts[p], s[k].ref(pts[p]), 0.0, 0.0);
        snprintf(label, sizeof label, "%s(x) @ NaN", s[k].name);
        row1(label, s[k].rec, NAN, NAN, NAN);
    }
}

Test(derive_conventions, fract_derivative_one)
{
    const double pts[] = { -2.5, -1.0, -0.0, 0.0, 0.25, 1.0, 2.0, 3.75 };
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++)
        row1h("fract(x)", r_fract, pts[p], pts[p] - trunc(pts[p]), 1.0, 0.0);
}

Test(derive_conventions, max_min_ties_half_each)
{
    double g[2] = { 0.5, 0.5 }, h0[4] = { 0, 0, 0, 0 };
    row("max(a,b) @ a == b", 2, r_max, (double[]){ 1.0, 1.0 }, 1.0, g, h0);
    row("min(a,b) @ a == b", 2, r_min, (double[]){ 1.0, 1.0 }, 1.0, g, h0);
    row("max(+0,-0)", 2, r_max, (double[]){ 0.0, -0.0 }, 0.0, g, h0);
    row("min(-3,-3)", 2, r_min, (double[]){ -3.0, -3.0 }, -3.0, g, h0);
    row1("max(x,x)", r_max_self, 1.5, 1.5, 1.0);
    row("max(a,b) @ (1,2)", 2, r_max, (double[]){ 1.0, 2.0 }, 2.0, (double[]){ 0.0, 1.0 }, h0);
    row("min(a,b) @ (1,2)", 2, r_min, (double[]){ 1.0, 2.0 }, 1.0, (double[]){ 1.0, 0.0 }, h0);
}

Test(derive_conventions, pow_constant_exponent_rows)
{
    row1h("pow(x,0) @ 0", r_pow_0, 0.0, 1.0, 0.0, 0.0);
    row1h("pow(x,1) @ 0", r_pow_1, 0.0, 0.0, 1.0, 0.0);
    row1h("pow(x,2) @ 0", r_pow_2, 0.0, 0.0, 0.0, 2.0);
    row1h("x*x @ 0", r_xx, 0.0, 0.0, 0.0, 2.0);
    row1h("pow(x,2) @ -3", r_pow_2, -3.0, 9.0, -6.0, 2.0);
    row1("pow(x,1.5) @ 0", r_pow_15, 0.0, 0.0, 0.0);
    row1("pow(x,2.5) @ 0", r_pow_25, 0.0, 0.0, 0.0);
    row1("pow(x,0.5) @ 0", r_pow_05, 0.0, 0.0, INF);
    row1h("pow(x,3) @ -2", r_pow_3, -2.0, -8.0, 12.0, -12.0);
    row1h("pow(x,3) @ -0.5", r_pow_3, -0.5, -0.125, 0.75, -3.0);
}

Test(derive_conventions, pow_both_inputs)
{
    struct { double y, dx; } r[] = { { 2.5, 0.0 }, { 1.0, 1.0 }, { 2.0, 0.0 }, { 3.0, 0.0 },
                                     { 0.5, INF } };
    for (size_t k = 0; k < sizeof r / sizeof r[0]; k++) {
        char label[64];
        snprintf(label, sizeof label, "pow(x,y) @ (0, %g)", r[k].y);
        row(label, 2, r_pow_xy, (double[]){ 0.0, r[k].y }, 0.0, (double[]){ r[k].dx, 0.0 }, NULL);
    }
    row("pow(x,y) @ (-2,3)", 2, r_pow_xy, (double[]){ -2.0, 3.0 }, -8.0, (double[]){ 12.0, NAN },
        NULL);
    row("pow(x,y) @ (-2,2)", 2, r_pow_xy, (double[]){ -2.0, 2.0 }, 4.0, (double[]){ -4.0, NAN },
        NULL);
    row("pow(x,y) @ (-2,0.5)", 2, r_pow_xy, (double[]){ -2.0, 0.5 }, NAN, (double[]){ NAN, NAN },
        NULL);
}

Test(derive_conventions, exp_log_rows)
{
    row1h("exp(x) @ 710", r_exp, 710.0, INF, INF, INF);
    row1("log(x) @ +0", r_log, 0.0, -INF, INF);
    row1("log(x) @ -1", r_log, -1.0, NAN, NAN);
    row1("log1p(x) @ -1", r_log1p, -1.0, -INF, INF);
}

Test(derive_conventions, division_rows)
{
    double a = 1e-200, b = 1e-200;
    double g[2] = { 1.0 / b, -(a / b) / b };
    cr_assert(isfinite(g[1]) && !isfinite(a / (b * b)), "premise: a/b^2 overflows");
    row("a/b @ (1e-200, 1e-200)", 2, r_div, (double[]){ a, b }, 1.0, g, NULL);
    row1("x/x @ 0", r_x_over_x, 0.0, NAN, NAN);
    row1("x/x @ 3", r_x_over_x, 3.0, 1.0, 0.0);
}

Test(derive_conventions, hypot_atan2_rows)
{
    row("hypot @ (0,0)", 2, r_hypot, (double[]){ 0.0, 0.0 }, 0.0, (double[]){ 0.0, 0.0 }, NULL);
    row("hypot @ (1e200,1e200)", 2, r_hypot, (double[]){ 1e200, 1e200 }, hypot(1e200, 1e200),
        (double[]){ 0.70710678118654752, 0.70710678118654752 }, NULL);
    row("atan2(y,x) @ (0,1)", 2, r_atan2, (double[]){ 0.0, 1.0 }, 0.0, (double[]){ 1.0, 0.0 },
        NULL);
    row("atan2(y,x) @ (0,0)", 2, r_atan2, (double[]){ 0.0, 0.0 }, 0.0, (double[]){ 0.0, 0.0 },
        NULL);
    double h = hypot(1e200, 1e200);
    double g[2] = { (1e200 / h) / h, (-1e200 / h) / h };
    cr_assert(tu_close(g[0], 5e-201, 1e-12, 0) && isfinite(g[0]));
    row("atan2(y,x) @ (1e200,1e200)", 2, r_atan2, (double[]){ 1e200, 1e200 }, atan2(1e200, 1e200),
        g, NULL);
}

Test(derive_conventions, norm2_at_zero)
{
    double z[3] = { 0.0, 0.0, 0.0 }, g0[3] = { 0.0, 0.0, 0.0 };
    row("norm2(x) @ 0", 3, r_norm2, z, 0.0, g0, NULL);
    row("norm2sq(x) @ 0", 3, r_norm2sq, z, 0.0, g0, NULL);
    row("pow(norm2(x),2) @ 0", 3, r_norm2_pow2, z, 0.0, g0, NULL);
    double I2[9] = { 2, 0, 0, 0, 2, 0, 0, 0, 2 };
    row("norm2sq(x) @ 0 (Hessian 2I)", 3, r_norm2sq, z, 0.0, g0, I2);
}

Test(derive_conventions, inverse_trig_hyperbolic_edges)
{
    row1("asin(x) @ 1", r_asin, 1.0, asin(1.0), INF);
    row1("asin(x) @ -1", r_asin, -1.0, asin(-1.0), INF);
    row1("asin(x) @ 1.5", r_asin, 1.5, NAN, NAN);
    row1("acos(x) @ 1", r_acos, 1.0, 0.0, -INF);
    row1("acos(x) @ -1", r_acos, -1.0, acos(-1.0), -INF);
    row1("acos(x) @ -1.5", r_acos, -1.5, NAN, NAN);
    row1("atanh(x) @ 1", r_atanh, 1.0, INF, INF);
    row1("atanh(x) @ -1", r_atanh, -1.0, -INF, INF);
    row1("atanh(x) @ 2", r_atanh, 2.0, NAN, NAN);
    row1("acosh(x) @ 1", r_acosh, 1.0, 0.0, INF);
    row1("acosh(x) @ 0.5", r_acosh, 0.5, NAN, NAN);
}

Test(derive_conventions, cbrt_rows)
{
    row1("cbrt(x) @ 0", r_cbrt, 0.0, 0.0, INF);
    const double pts[] = { 8.0, -8.0, 0.001, -27.0, 2.0 };
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
        double r = cbrt(pts[p]);
        row1h("cbrt(x) elsewhere", r_cbrt, pts[p], r, 1.0 / (3.0 * r * r),
              -2.0 / (9.0 * r * r * r * r * r));
    }
}

Test(derive_conventions, select_untaken_branch)
{
    row1h("select(x>0, sqrt(x), 0) @ -1", r_sel_sqrt, -1.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, sqrt(x), 0) @ 0", r_sel_sqrt, 0.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, sqrt(x), 0) @ -0", r_sel_sqrt, -0.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, sqrt(x), 0) @ 4", r_sel_sqrt, 4.0, 2.0, 0.25, -1.0 / 32.0);
    row1h("select(x>0, log(x), 0) @ 0", r_sel_log, 0.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, log(x), 0) @ -1", r_sel_log, -1.0, 0.0, 0.0, 0.0);
    row1h("select(x>0, log(x), 0) @ -inf", r_sel_log, -INF, 0.0, 0.0, 0.0);
}

Test(derive_conventions, max_norm_eps_and_underflow)
{
    row("max(sqrt(x^2+y^2), eps) @ (0,0)", 2, r_max_eps, (double[]){ 0.0, 0.0 }, 1e-12,
        (double[]){ 0.0, 0.0 }, NULL);
    row1("sqrt(exp(x)) @ -800", r_sqrt_exp, -800.0, 0.0, 0.0);
    row1("x + 0.0 @ -0.0", r_plus_zero, -0.0, 0.0, 1.0);
}

/* ------------------------------------------------ structure of the code */

/* Instruction r of p is select(c, const 1, const 0) (a select partial). */
static int is_select_partial(const du_prog *p, uint32_t r)
{
    const du_inst *in = &p->inst[r];
    return strcmp(in->op, "select") == 0 && in->nargs == 3 && du_is_const(p, in->arg[1], 1.0) &&
           du_is_const(p, in->arg[2], 0.0);
}

Test(derive, azmul_for_unbounded_partials_and_select_routing)
{
    /* sqrt: the partial 0.5/sqrt(x) is Inf at 0, so the product with the
     * adjoint must be an azmul */
    tg_tape *f = tu_tape("s", 0);
    tg_var x = tg_input(f, "x"), y = tg_input(f, "y");
    tg_output(f, "f", tg_mul(tg_sqrt(x), y));
    TU_TAPE_OK(f);
    tg_tape *G = tg_gradient_tape(f, TG_ALL);
    TU_TAPE_OK(G);
    du_prog p = du_parse(G);
    cr_expect(du_count_op(&p, "azmul") >= 1, "gradient tape of sqrt(x)*y has no azmul:\n%s",
              p.text);
    du_prog_free(&p);
    tg_tape_free(G);
    tg_tape_free(f);

    /* f = select(x > 0, sqrt(x), log(x)) * y: the adjoint y of the select
     * goes to the taken branch through select(c, y, 0) / select(c, 0, y), not
     * as a product with a select(c, 1, 0) partial */
    f = tu_tape("sel", 0);
    x = tg_input(f, "x");
    y = tg_input(f, "y");
    tg_var c = tg_gt(x, 0.0);
    tg_output(f, "f", tg_mul(tg_select(c, tg_sqrt(x), tg_log(x)), y));
    TU_TAPE_OK(f);
    for (int k = 0; k < 3; k++) {
        tg_tape *D = k == 0 ? tg_gradient_tape(f, TG_ALL)
                   : k == 1 ? tg_hvp_tape(f, TG_ALL) : tg_hessian_tape(f, TG_ALL);
        TU_TAPE_OK(D);
        p = du_parse(D);
        size_t routed = 0;
        for (size_t i = 0; i < p.n; i++) {
            const du_inst *in = &p.inst[i];
            /* (in the Hessian tape a unit seed makes select(c, 1, 0) the
             * routed tangent itself, which may then meet a partial) */
            if (k < 2 && (strcmp(in->op, "azmul") == 0 || strcmp(in->op, "mul") == 0))
                for (int a = 0; a < 2; a++)
                    cr_expect(!is_select_partial(&p, in->arg[a]),
                              "%s: %%%zu = %s of a select(c, 1, 0) partial: adjoints must be "
                              "routed by select\n%s", tg_tape_name(D), i, in->op, p.text);
            /* select(c, %y, 0) or select(c, 0, %y): y is instruction 1 */
            if (strcmp(in->op, "select") == 0 && in->nargs == 3 &&
                ((in->arg[1] == 1 && du_is_const(&p, in->arg[2], 0.0)) ||
                 (in->arg[2] == 1 && du_is_const(&p, in->arg[1], 0.0))))
                routed++;
        }
        cr_expect(routed >= 2, "%s: adjoint y not routed to both branches by select "
                  "(%zu found)\n%s", tg_tape_name(D), routed, p.text);
        cr_expect(du_count_op(&p, "azmul") >= 1, "%s: no azmul for the sqrt/log partials\n%s",
                  tg_tape_name(D), p.text);
        du_prog_free(&p);
        tg_tape_free(D);
    }
    /* and the values: at x = -1, y = 2 the taken branch is log (NaN), the
     * untaken sqrt must not poison; at x = 0 the sqrt partial is Inf but
     * untaken */
    tg_tape *G2 = tg_gradient_tape(f, TG_ALL);
    double g[2];
    du_eval(G2, ((double[]){ 4.0, 2.0 }), g);
    cr_expect(g[0] == 0.5 && g[1] == 2.0, "gradient at (4, 2): (%g, %g), expected (0.5, 2)", g[0],
              g[1]);
    du_eval(G2, ((double[]){ 0.0, 2.0 }), g);
    cr_expect(g[0] == INF && g[1] == -INF, "gradient at (0, 2): (%g, %g): the log branch is taken: "
              "(2/0, log 0) = (inf, -inf)", g[0], g[1]);
    tg_tape_free(G2);
    tg_tape_free(f);

    /* a partial that is a finite literal needs no azmul: d(3x + 2y) */
    f = tu_tape("lin", 0);
    x = tg_input(f, "x");
    y = tg_input(f, "y");
    tg_output(f, "f", tg_add(tg_mul(3.0, x), tg_mul(y, 2.0)));
    G = tg_gradient_tape(f, TG_ALL);
    TU_TAPE_OK(G);
    p = du_parse(G);
    cr_expect(du_count_op(&p, "azmul") == 0, "gradient of 3x + 2y needs no azmul:\n%s", p.text);
    du_prog_free(&p);
    tg_tape_free(G);
    tg_tape_free(f);
}

Test(derive, building_twice_gives_identical_tapes)
{
    for (int vector = 0; vector < 2; vector++) {
        tg_tape *f = record_comp(vector ? "vec" : "comp", vector, 0);
        const int wrts[3] = { TG_ALL, 0, 1 };
        for (int w = 0; w < 3; w++)
            for (int k = 0; k < 7; k++) {
                if (vector && (k == 0 || k == 2 || k == 5))
                    continue;
                tg_tape *a, *b;
                if (k < 6) {
                    a = all_fns[k](f, wrts[w]);
                    b = all_fns[k](f, wrts[w]);
                } else {
                    unsigned parts = vector ? TG_F | TG_JAC : TG_F | TG_GRAD | TG_JAC | TG_HESS | TG_HVP;
                    a = tg_joint_tape(f, parts, wrts[w]);
                    b = tg_joint_tape(f, parts, wrts[w]);
                }
                TU_TAPE_OK(a);
                TU_TAPE_OK(b);
                char *da = du_disasm(a), *db = du_disasm(b);
                cr_expect(strcmp(da, db) == 0, "%s (wrt %d) built twice differs", tg_tape_name(a),
                          wrts[w]);
                free(da);
                free(db);
                tg_tape_free(a);
                tg_tape_free(b);
            }
        tg_tape_free(f);
    }
}

/* ------------------------------------------- 10^6-deep chain, 1 MiB stack */

#define DEPTH 1000000

typedef struct deep_run {
    int hvp;            /* 0: gradient tape, 1: HVP tape */
    int ok_f, ok_d;
    char err[256];
    size_t size_f, size_d;
    tg_status st[2];
    double tape, num;
} deep_run;

static void *deep_main(void *arg)
{
    deep_run *r = arg;
    tg_tape *f = tg_tape_new("deep");
    if (!f)
        return NULL;
    tg_var x = tg_input(f, "x");
    for (long k = 0; k < DEPTH; k++)
        x = tg_add(tg_sin(x), x);
    tg_output(f, "y", x);
    r->ok_f = tg_tape_status(f) == TG_OK;
    r->size_f = tg_tape_size(f);
    if (!r->ok_f) {
        snprintf(r->err, sizeof r->err, "f: %s", tg_tape_error(f));
        tg_tape_free(f);
        return NULL;
    }
    double x0[1] = { 1.0 }, xv[2] = { 1.0, 1.0 }, one[1] = { 1.0 };
    r->st[0] = r->hvp ? tg_hvp(f, x0, one, &r->num) : tg_gradient(f, x0, &r->num);
    tg_tape *D = r->hvp ? tg_hvp_tape(f, TG_ALL) : tg_gradient_tape(f, TG_ALL);
    r->ok_d = D && tg_tape_status(D) == TG_OK;
    if (r->ok_d) {
        r->size_d = tg_tape_size(D);
        r->st[1] = tg_eval(D, r->hvp ? xv : x0, &r->tape);
    } else if (D) {
        snprintf(r->err, sizeof r->err, "%s tape: %s", r->hvp ? "hvp" : "gradient",
                 tg_tape_error(D));
    }
    tg_tape_free(D);
    tg_tape_free(f);
    return NULL;
}

/* The chain's first and second derivative at 1 by a C loop. */
static void deep_reference(double *d1, double *d2)
{
    double x = 1.0, d = 1.0, s = 0.0;
    for (long k = 0; k < DEPTH; k++) {
        double fp = cos(x) + 1.0, fpp = -sin(x);
        s = fpp * d * d + fp * s;
        d = fp * d;
        x = sin(x) + x;
    }
    *d1 = d;
    *d2 = s;
}

static void deep_check(int hvp)
{
    static deep_run r;
    memset(&r, 0, sizeof r);
    r.hvp = hvp;
    const char *what = hvp ? "hvp tape" : "gradient tape";
    du_run_small_stack(deep_main, &r, 1 << 20);
    cr_assert(r.ok_f && r.ok_d, "deep chain: f %d, %s %d: %s", r.ok_f, what, r.ok_d, r.err);
    for (int i = 0; i < 2; i++)
        cr_expect_eq(r.st[i], TG_OK, "deep chain: call %d returned %s", i, tg_status_str(r.st[i]));
    cr_log_info("deep chain: |f| = %zu, |%s| = %zu", r.size_f, what, r.size_d);
    double d1, d2;
    deep_reference(&d1, &d2);
    if (!hvp) {
        cr_expect(tu_same_value(r.tape, r.num), "deep chain: gradient tape %s, tg_gradient %s",
                  tu_d(r.tape).s, tu_d(r.num).s);
        cr_expect(tu_close(r.tape, d1, 1e-9, 1e-300), "deep chain: gradient tape %s, C loop %s",
                  tu_d(r.tape).s, tu_d(d1).s);
        cr_expect(r.size_d <= 4 * r.size_f, "deep chain: |gradient tape| %zu > 4 |f| = %zu",
                  r.size_d, 4 * r.size_f);
    } else {
        cr_expect(tu_close(r.tape, r.num, 1e-9, 1e-300), "deep chain: hvp tape %s, tg_hvp %s",
                  tu_d(r.tape).s, tu_d(r.num).s);
        cr_expect(tu_close(r.tape, d2, 1e-8, 1e-300), "deep chain: hvp tape %s, C loop %s",
                  tu_d(r.tape).s, tu_d(d2).s);
        cr_expect(r.size_d <= 10 * r.size_f, "deep chain: |hvp tape| %zu > 10 |f| = %zu",
                  r.size_d, 10 * r.size_f);
    }
}

Test(derive, deep_chain_gradient_tape_in_1MiB_stack) { deep_check(0); }
Test(derive, deep_chain_hvp_tape_in_1MiB_stack) { deep_check(1); }

/* ------------------------------------------------------- Rosenbrock sizes */

static tg_tape *rosenbrock(size_t n)
{
    char name[32];
    snprintf(name, sizeof name, "rosen%zu", n);
    tg_tape *t = tu_tape(name, 0);
    tg_var *x = malloc(n * sizeof *x);
    cr_assert(x != NULL);
    tg_input_vec(t, "x", n, x);
    tg_var acc = tg_const(t, 0.0);
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var d = tg_sub(x[i + 1], tg_mul(x[i], x[i]));
        tg_var e = tg_sub(1.0, x[i]);
        tg_var term = tg_add(tg_mul(100.0, tg_mul(d, d)), tg_mul(e, e));
        acc = i == 0 ? term : tg_add(acc, term);
    }
    tg_output(t, "f", acc);
    TU_TAPE_OK(t);
    free(x);
    return t;
}

static void rosen_sizes(size_t n)
{
    tg_tape *f = rosenbrock(n);
    size_t sf = tg_tape_size(f);
    tg_tape *G = tg_gradient_tape(f, TG_ALL), *HV = tg_hvp_tape(f, TG_ALL);
    TU_TAPE_OK(G);
    TU_TAPE_OK(HV);
    size_t sg0 = tg_tape_size(G), shv0 = tg_tape_size(HV);
    /* values before optimisation, at a random point */
    double *x = malloc(n * sizeof *x), *v = malloc(n * sizeof *v), *in = malloc(2 * n * sizeof *in);
    double *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    double *h1 = malloc(n * sizeof *h1), *h2 = malloc(n * sizeof *h2);
    cr_assert(x && v && in && g1 && g2 && h1 && h2);
    tu_rng rng = { 31 + n };
    for (size_t i = 0; i < n; i++) {
        x[i] = tu_rng_range(&rng, -2, 2);
        v[i] = tu_rng_range(&rng, -1, 1);
    }
    du_concat(in, x, n, v, n);
    TU_OK(tg_tape_optimize(G, TG_OPT_BASIC));
    TU_OK(tg_tape_optimize(HV, TG_OPT_BASIC));
    size_t sg = tg_tape_size(G), shv = tg_tape_size(HV);
    double rg = (double)sg / (double)sf, rh = (double)shv / (double)sf;
    cr_log_info("Rosenbrock n=%zu: |f| = %zu, |grad| = %zu (%zu before optimize) ratio %.3f, "
                "|hvp| = %zu (%zu before) ratio %.3f", n, sf, sg, sg0, rg, shv, shv0, rh);
    fprintf(stderr, "Rosenbrock n=%zu: |f| = %zu, |grad| = %zu (%zu unoptimised) ratio %.3f, "
            "|hvp| = %zu (%zu unoptimised) ratio %.3f\n", n, sf, sg, sg0, rg, shv, shv0, rh);
    cr_expect(sg <= 4 * sf, "Rosenbrock n=%zu: |gradient tape| = %zu > 4 |f| = %zu", n, sg, 4 * sf);
    cr_expect(shv <= 10 * sf, "Rosenbrock n=%zu: |hvp tape| = %zu > 10 |f| = %zu", n, shv, 10 * sf);
    /* the optimised tapes still compute the gradient and H v */
    du_eval(G, x, g1);
    TU_OK(tg_gradient(f, x, g2));
    du_eval(HV, in, h1);
    TU_OK(tg_hvp(f, x, v, h2));
    for (size_t i = 0; i < n; i++) {
        cr_expect(tu_same_value(g1[i], g2[i]), "Rosenbrock n=%zu: gradient tape [%zu] = %s, "
                  "tg_gradient %s", n, i, tu_d(g1[i]).s, tu_d(g2[i]).s);
        cr_expect(tu_close(h1[i], h2[i], 1e-12, 1e-12 * (1 + fabs(h2[i]))),
                  "Rosenbrock n=%zu: hvp tape [%zu] = %s, tg_hvp %s", n, i, tu_d(h1[i]).s,
                  tu_d(h2[i]).s);
    }
    free(x);
    free(v);
    free(in);
    free(g1);
    free(g2);
    free(h1);
    free(h2);
    tg_tape_free(G);
    tg_tape_free(HV);
    tg_tape_free(f);
}

Test(derive, rosenbrock_tape_sizes)
{
    rosen_sizes(10);
    rosen_sizes(1000);
}
