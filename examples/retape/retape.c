/* examples/retape/retape.c -- recording C code as it is written.
 *
 * The model below is ordinary C: a controller that saturates its command
 * (ifs on values) and an inner fixed-point solve that runs until it has
 * converged (a while loop whose trip count depends on the values).  It is
 * written once, over a scalar type `num` that is either double (the plain
 * program) or tg_var (recording at a point): the ifs become tg_branch,
 * which tells the C code which way to go AND records a guard.
 *
 * The retape loop (retape_gradient): evaluate with the tape recorded at
 * an earlier point; when a guard decides differently here (TG_ERR_BRANCH,
 * nothing written), record again at this point and evaluate that.  The
 * derivatives are those of the branch taken at the point (ADOL-C's
 * retaping on a zos_forward return code, CppAD's compare_change).
 *
 * The program walks the gain k over [0.05, 2] and the setpoint r over
 * [-3, 3] (an optimiser's path would move less between calls), checks every gradient against central differences of the
 * double version (away from the kinks that tg_kinks reports), and prints
 * how many recordings the walk needed.  Exit status 0 when all agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tapegen.h"

/* ------------------------------------------------ the model, written twice
 * (the same text over two scalar types: MODEL(double) and MODEL(tg_var)) */

static int    dbl_if(double c) { return c != 0.0; }
static double dbl_lt(double a, double b) { return a < b; }
static double dbl_gt(double a, double b) { return a > b; }

/* u = sat(k (r - y)), the plant y' = -y + u integrated with steps that
 * each solve y+ = y + h (u - y+^3 / 3) by Newton's method until the
 * correction is below 1e-12 (tested as dz^2 1e24 < 1, so that the
 * comparison is not within any small tolerance of its tie once
 * converged); the cost is the tracking error plus effort. */
#define MODEL(num, ADD, SUB, MUL, DIV, LT, GT, IF, K)                        \
    static num model_##num(num k, num r)                                         \
    {                                                                            \
        num y = K(0.0), cost = K(0.0);                                           \
        for (int step = 0; step < 8; step++) {                                   \
            num u = MUL(k, SUB(r, y));                                           \
            if (IF(GT(u, K(1.0))))            /* saturation */                   \
                u = K(1.0);                                                      \
            else if (IF(LT(u, K(-1.0))))                                         \
                u = K(-1.0);                                                     \
            num z = y;                          /* Newton until converged */    \
            for (int it = 0; it < 50; it++) {                                    \
                num F = SUB(SUB(z, y), MUL(K(0.25), SUB(u, DIV(MUL(z, MUL(z, z)), K(3.0))))); \
                num dz = DIV(F, ADD(K(1.0), MUL(K(0.25), MUL(z, z))));          \
                z = SUB(z, dz);                                                  \
                if (IF(LT(MUL(MUL(dz, dz), K(1e24)), K(1.0))))  /* |dz| < 1e-12 */ \
                    break;                                                       \
            }                                                                    \
            y = z;                                                               \
            num e = SUB(r, y);                                                   \
            cost = ADD(cost, ADD(MUL(e, e), MUL(K(0.1), MUL(u, u))));           \
        }                                                                        \
        return cost;                                                             \
    }

static double d_add(double a, double b) { return a + b; }
static double d_sub(double a, double b) { return a - b; }
static double d_mul(double a, double b) { return a * b; }
static double d_div(double a, double b) { return a / b; }
static double d_k(double c) { return c; }
MODEL(double, d_add, d_sub, d_mul, d_div, dbl_lt, dbl_gt, dbl_if, d_k)

/* tg_var literals need a tape: the model's tape is set before recording */
static tg_tape *rec_tape;
static tg_var v_add(tg_var a, tg_var b) { return tg_add(a, b); }
static tg_var v_sub(tg_var a, tg_var b) { return tg_sub(a, b); }
static tg_var v_mul(tg_var a, tg_var b) { return tg_mul(a, b); }
static tg_var v_div(tg_var a, tg_var b) { return tg_div(a, b); }
static tg_var v_lt(tg_var a, tg_var b) { return tg_lt(a, b); }
static tg_var v_gt(tg_var a, tg_var b) { return tg_gt(a, b); }
static tg_var v_k(double c) { return tg_const(rec_tape, c); }
MODEL(tg_var, v_add, v_sub, v_mul, v_div, v_lt, v_gt, tg_branch, v_k)

/* ------------------------------------------------------------- recording */

/* The model recorded at x = (k, r); NULL when recording failed. */
static tg_tape *
record_at(const double *x)
{
    tg_tape *t = tg_tape_new("controller");
    if (!t)
        return NULL;
    rec_tape = t;
    tg_var in[2];
    tg_input_vec_at(t, "x", 2, x, in);
    tg_var cost = model_tg_var(in[0], in[1]);
    tg_output(t, "cost", cost);
    if (tg_tape_status(t) != TG_OK) {
        fprintf(stderr, "recording failed: %s\n", tg_tape_error(t));
        tg_tape_free(t);
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------- the retape loop */

/* g = grad f(x) with the tape *t, recorded again at x when a guard of *t
 * decides differently here.  *recordings counts the recordings. */
static tg_status
retape_gradient(tg_tape **t, const double *x, double *g, int *recordings)
{
    tg_status s = *t ? tg_gradient(*t, x, g) : TG_ERR_BRANCH;
    if (s != TG_ERR_BRANCH)
        return s;
    tg_tape_free(*t);
    *t = record_at(x);
    ++*recordings;
    if (!*t)
        return TG_ERR_NOMEM;
    return tg_gradient(*t, x, g);   /* recorded here: its guards hold here */
}

/* ------------------------------------------------------------------ main */

int
main(void)
{
    tg_tape *t = NULL;
    int recordings = 0, checked = 0, bad = 0, points = 0, near_kink = 0;
    for (int i = 0; i <= 20; i++) {
        for (int j = 0; j <= 12; j++) {
            double x[2] = { 0.05 + 1.95 * i / 20.0, -3.0 + 6.0 * j / 12.0 + 0.013 };
            double g[2];
            tg_status s = retape_gradient(&t, x, g, &recordings);
            if (s != TG_OK) {
                fprintf(stderr, "gradient at (%g, %g): %s: %s\n", x[0], x[1],
                        tg_status_str(s), tg_last_error());
                return 1;
            }
            points++;
            /* the value is the double program's, bit for bit */
            double y = 0.0, yd = model_double(x[0], x[1]);
            if (tg_eval(t, x, &y) != TG_OK || y != yd) {
                fprintf(stderr, "value at (%g, %g): tape %.17g, C %.17g\n", x[0], x[1], y, yd);
                bad++;
            }
            /* derivatives are one-sided near a kink: check the others */
            size_t nk = 0;
            if (tg_kinks(t, x, 1e-4, NULL, 0, &nk) != TG_OK)
                return 1;
            if (nk) {
                near_kink++;
                continue;
            }
            for (int c = 0; c < 2; c++) {
                double h = 1e-6, xp[2] = { x[0], x[1] }, xm[2] = { x[0], x[1] };
                xp[c] += h;
                xm[c] -= h;
                double cd = (model_double(xp[0], xp[1]) - model_double(xm[0], xm[1])) / (2 * h);
                if (fabs(cd - g[c]) > 1e-5 * fmax(1.0, fabs(cd))) {
                    fprintf(stderr, "d/dx%d at (%g, %g): tape %.12g, differences %.12g\n", c,
                            x[0], x[1], g[c], cd);
                    bad++;
                }
                checked++;
            }
        }
    }
    /* the saturation is active somewhere: kinks are reported there */
    double xs[2] = { 2.0, 3.0 };
    tg_tape_free(t);
    t = record_at(xs);
    size_t nk = 0;
    tg_kink kk[64];
    if (!t || tg_kinks(t, xs, INFINITY, kk, 64, &nk) != TG_OK || nk == 0) {
        fprintf(stderr, "no kinks reported on the saturated recording\n");
        bad++;
    }
    printf("%d points, %d recordings (the retape loop reused a tape at the other %d), "
           "%d guards on the last tape,\n%d derivatives checked against differences, %d points "
           "within 1e-4 of a kink skipped, %d mismatches\n",
           points, recordings, points - recordings, t ? (int)tg_num_guards(t) : -1, checked,
           near_kink, bad);
    tg_tape_free(t);
    if (recordings < 2 || recordings >= points) {
        fprintf(stderr, "the walk should need several recordings and reuse tapes\n");
        bad++;
    }
    return bad ? 1 : 0;
}
