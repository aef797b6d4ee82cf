/* tests/test_derive.c -- derivative tapes (tg_gradient_tape, tg_jacobian_tape,
 * tg_hessian_tape, tg_jvp_tape, tg_vjp_tape, tg_hvp_tape, tg_joint_tape).
 *
 * For every opcode of include/tapegen/ops.def (the parameter list is
 * expanded from it, so a new op is tested automatically and an op without
 * a row in the shared table tests/optable.h fails), f = op(inputs) is
 * recorded in four shapes
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
 * table (tests/convrows.h) through derivative tapes, the azmul/select
 * structure of the generated code, determinism, a 10^6-deep chain in a
 * 1 MiB stack, and the size of Rosenbrock's gradient and HVP tapes. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <limits.h>

#include "convrows.h"
#include "derivutil.h"
#include "optable.h"

#define DMAX 160     /* room for every array below (n <= 5, m <= 4) */
#define NPTS 9       /* points per case: forced ones first, then random */

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
                double fd = tu_cdiff_tape(f, x, i, lo + j);
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
                double fd = tu_cdiff_tape(D->JV, in, i, k);
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
            double fd = tu_cdiff_tape(f, x, 0, lo + j);
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
                double fd = tu_cdiff_tape(D->G, x, i, lo + j);
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
        ot_fmt_point(where, sizeof where, label, n, pts + p * n);
        check_point(f, wrt, &D, pts + p * n, where, opts[p], rng);
    }
    free_dtapes(&D);
}

/* ------------------------------------------------------- one op, 4 shapes */

enum { SHAPE_SCALAR, SHAPE_TALL, SHAPE_WIDE, SHAPE_SCALAR2 };

/* f in one of four shapes:
 *   scalar : x(nin)        -> y = op(x)
 *   tall   : x(nin)        -> y(4) = [op, op*x0, op + x_last, sin(x0)*op]   (m >= n)
 *   wide   : x(nin), p(2)  -> y(2) = [op*p0 + p1, exp(p1)*op - p0]          (m < n)
 *   scalar2: x(nin), p(2)  -> s = op*(p0 + p1*p1) + p1 */
static tg_tape *record_shape(const ot_case *c, int shape)
{
    static const char *names[] = { "f", "ft", "fw", "fs" };
    tg_tape *t = tu_tape(names[shape], 0);
    size_t nin = ot_nin(c);
    tg_var x[3], p[2];
    tg_input_vec(t, "x", nin, x);
    if (shape == SHAPE_WIDE || shape == SHAPE_SCALAR2)
        tg_input_vec(t, "p", 2, p);
    tg_var y = ot_apply(c, x);
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
    ot_expect_on_tape(t, c, y, x);   /* the op under test must really be on the tape */
    return t;
}

static void run_case(const ot_case *c, size_t row)
{
    size_t nin = ot_nin(c);
    tu_rng rng = { 0xde71e000u + (uint64_t)c->op * 131u + row };
    double pts[NPTS * 3], pts2[NPTS * 5];
    unsigned opts[NPTS], opts1[NPTS];
    ot_sample(c, &rng, pts, NPTS);
    int is_select = c->op == TG_OP_SELECT;
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
    ot_label(label, sizeof label, c, row);

    char lab[160];
    for (int shape = SHAPE_SCALAR; shape <= SHAPE_SCALAR2; shape++) {
        tg_tape *f = record_shape(c, shape);
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
    ot_check_rows("test_derive");
}

ParameterizedTestParameters(derive, every_op)
{
    return cr_make_param_array(int, (int *)ot_all_ops, OT_NOPS);
}

ParameterizedTest(int *opp, derive, every_op)
{
    tg_opcode op = (tg_opcode)*opp;
    const char *name = tg_op_name(op);
    int ar = tg_op_arity(op);
    cr_assert(name != NULL, "opcode %d has no name", (int)op);
    if (tg_op_flags(op) & TG_OPF_EXTENDED)
        return;     /* map, scan, call, xout: tests/test_loops.c */
    if (ar == 0) {
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

/* One row of the table at one point, on a default and on a TG_NO_FOLD |
 * TG_NO_CSE f: the gradient, Jacobian, JVP (unit tangents), VJP (w = 1)
 * and joint (F|GRAD) tapes give the row's value and derivative; with hess,
 * the Hessian tape, the HVP tape (unit tangents), the Jacobian of the
 * gradient tape and the joint HESS|HVP give the second derivatives.  Each
 * also equals the numeric sweep as a value. */
static void row(const char *label, size_t n, cv_rec rec, const double *x, double value,
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
            cr_expect(cv_match(out[j], grad[j]), "%s: gradient tape d/dx%zu = %s, expected %s",
                      where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
            cr_expect(tu_same_value(out[j], gn[j]), "%s: gradient tape d/dx%zu = %s, "
                      "tg_gradient %s", where, j, tu_d(out[j]).s, tu_d(gn[j]).s);
        }
        tg_tape *J = tg_jacobian_tape(f, TG_ALL);
        du_check_layout(J, f, "jac", NULL, 0, "jac", n);
        du_eval(J, x, out);
        for (size_t j = 0; j < n; j++)
            cr_expect(cv_match(out[j], grad[j]), "%s: jacobian tape d/dx%zu = %s, expected %s",
                      where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
        tg_tape *JV = tg_jvp_tape(f, TG_ALL);
        du_check_layout(JV, f, "jvp", "v", n, "jvp", 1);
        for (size_t d = 0; d < n; d++) {
            double e[NMAX] = { 0 };
            e[d] = 1.0;
            du_concat(in, x, n, e, n);
            du_eval(JV, in, out);
            cr_expect(cv_match(out[0], grad[d]), "%s: jvp tape along e%zu = %s, expected %s",
                      where, d, tu_d(out[0]).s, tu_d(grad[d]).s);
        }
        tg_tape *VJ = tg_vjp_tape(f, TG_ALL);
        du_check_layout(VJ, f, "vjp", "w", 1, "vjp", n);
        {
            double one = 1.0;
            du_concat(in, x, n, &one, 1);
            du_eval(VJ, in, out);
            for (size_t j = 0; j < n; j++)
                cr_expect(cv_match(out[j], grad[j]), "%s: vjp tape (w = 1) d/dx%zu = %s, "
                          "expected %s", where, j, tu_d(out[j]).s, tu_d(grad[j]).s);
        }
        tg_tape *JF = tg_joint_tape(f, TG_F | TG_GRAD, TG_ALL);
        TU_TAPE_OK(JF);
        du_eval(JF, x, out);
        cr_expect(cv_match(out[0], value), "%s: joint tape f = %s, expected %s", where,
                  tu_d(out[0]).s, tu_d(value).s);
        for (size_t j = 0; j < n; j++)
            cr_expect(cv_match(out[1 + j], grad[j]), "%s: joint tape grad[%zu] = %s, expected %s",
                      where, j, tu_d(out[1 + j]).s, tu_d(grad[j]).s);

        if (hess) {
            double Hn[NMAX * NMAX];
            TU_OK(tg_hessian(f, x, Hn));
            tg_tape *H = tg_hessian_tape(f, TG_ALL);
            du_check_layout(H, f, "hess", NULL, 0, "hess", n * n);
            du_eval(H, x, out);
            for (size_t k = 0; k < n * n; k++) {
                cr_expect(cv_match(out[k], hess[k]), "%s: hessian tape [%zu][%zu] = %s, "
                          "expected %s", where, k / n, k % n, tu_d(out[k]).s, tu_d(hess[k]).s);
                cr_expect(cv_match(out[k], Hn[k]) || (isinf(Hn[k]) && out[k] == Hn[k]),
                          "%s: hessian tape [%zu][%zu] = %s, tg_hessian %s", where, k / n, k % n,
                          tu_d(out[k]).s, tu_d(Hn[k]).s);
            }
            tg_tape *JG = tg_jacobian_tape(G, TG_ALL);
            du_check_layout(JG, G, "jac", NULL, 0, "jac", n * n);
            du_eval(JG, x, out);
            for (size_t k = 0; k < n * n; k++)
                cr_expect(cv_match(out[k], hess[k]), "%s: jacobian of the gradient tape "
                          "[%zu][%zu] = %s, expected %s", where, k / n, k % n, tu_d(out[k]).s,
                          tu_d(hess[k]).s);
            if (n == 1) {
                tg_tape *GG = tg_gradient_tape(G, TG_ALL);
                du_check_layout(GG, G, "grad", NULL, 0, "grad", 1);
                du_eval(GG, x, out);
                cr_expect(cv_match(out[0], hess[0]), "%s: gradient of the gradient tape = %s, "
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
                    cr_expect(cv_match(out[i], hess[i * n + d]), "%s: hvp tape along e%zu: "
                              "[%zu] = %s, expected %s", where, d, i, tu_d(out[i]).s,
                              tu_d(hess[i * n + d]).s);
                du_eval(JH, in, out);
                /* f | grad (n) | hess (n*n) | hvp (n) */
                for (size_t i = 0; i < n; i++)
                    cr_expect(cv_match(out[1 + n + n * n + i], hess[i * n + d]),
                              "%s: joint hvp along e%zu: [%zu] = %s, expected %s", where, d, i,
                              tu_d(out[1 + n + n * n + i]).s, tu_d(hess[i * n + d]).s);
                for (size_t k = 0; k < n * n; k++)
                    cr_expect(cv_match(out[1 + n + k], hess[k]), "%s: joint hess [%zu] = %s, "
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

/* Every point of every expression of the shared table (tests/convrows.h),
 * one test per expression. */
ParameterizedTestParameters(derive_conventions, every_row)
{
    return cr_make_param_array(int, (int *)cv_expr_ids, CV_NEXPR);
}

ParameterizedTest(int *ep, derive_conventions, every_row)
{
    const cv_expr *e = &cv_exprs[*ep];
    size_t np, rows = 0;
    cv_point *all = cv_all(&np);
    for (size_t p = 0; p < np; p++) {
        const cv_point *P = &all[p];
        if (P->e != *ep)
            continue;
        row(P->label, e->n, e->rec, P->x, P->value, P->grad, P->has_hess ? P->hess : NULL);
        rows++;
    }
    free(all);
    cr_expect(rows > 0, "expression %s has no point in the table", e->id);
}

/* ------------------------------------------------ structure of the code */

/* Instruction r of p is select(c, const 1, const 0) (a select partial). */
static int is_select_partial(const du_prog *p, uint32_t r)
{
    const tg_insn *in = &p->inst[r];
    return in->op == TG_OP_SELECT && in->noperands == 3 && du_is_const(p, in->operand[1], 1.0) &&
           du_is_const(p, in->operand[2], 0.0);
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
    cr_expect(du_count_op(&p, TG_OP_AZMUL) >= 1, "gradient tape of sqrt(x)*y has no azmul:\n%s",
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
            const tg_insn *in = &p.inst[i];
            /* (in the Hessian tape a unit seed makes select(c, 1, 0) the
             * routed tangent itself, which may then meet a partial) */
            if (k < 2 && (in->op == TG_OP_AZMUL || in->op == TG_OP_MUL))
                for (int a = 0; a < 2; a++)
                    cr_expect(!is_select_partial(&p, in->operand[a]),
                              "%s: %%%zu = %s of a select(c, 1, 0) partial: adjoints must be "
                              "routed by select\n%s", tg_tape_name(D), i, tg_op_name(in->op), p.text);
            /* select(c, %y, 0) or select(c, 0, %y): y is instruction 1 */
            if (in->op == TG_OP_SELECT && in->noperands == 3 &&
                ((in->operand[1] == 1 && du_is_const(&p, in->operand[2], 0.0)) ||
                 (in->operand[2] == 1 && du_is_const(&p, in->operand[1], 0.0))))
                routed++;
        }
        cr_expect(routed >= 2, "%s: adjoint y not routed to both branches by select "
                  "(%zu found)\n%s", tg_tape_name(D), routed, p.text);
        cr_expect(du_count_op(&p, TG_OP_AZMUL) >= 1, "%s: no azmul for the sqrt/log partials\n%s",
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
    cr_expect(g[0] == INFINITY && g[1] == -INFINITY, "gradient at (0, 2): (%g, %g): the log branch is taken: "
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
    cr_expect(du_count_op(&p, TG_OP_AZMUL) == 0, "gradient of 3x + 2y needs no azmul:\n%s", p.text);
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
