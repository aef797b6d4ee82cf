/* Hock & Schittkowski, "Test Examples for Nonlinear Programming Codes",
 * Lecture Notes in Economics and Mathematical Systems 187, Springer 1981:
 * problems 6, 7, 10, 14, 35, 39, 40, 43, 46, 71 and 78, each with the book's
 * start point, bounds and optimal objective.  Constraints keep the book's
 * form: an equality h(x) = 0 has gl = gu = 0, an inequality g(x) >= 0 has
 * gl = 0, gu = +inf.
 *
 * Luksan & Vlcek, "Sparse and partially separable test problems for
 * unconstrained and equality constrained optimization", Tech. Rep. 767,
 * ICS Prague 1999, problem 5.1 (as in Ipopt's ScalableProblems
 * LuksanVlcek1 with g_l = g_u = 0): the chained Rosenbrock function under
 * n-2 trigonometric-exponential equality constraints. */
#include "problems.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_MAXN 5
#define HS_MAXM 3

typedef struct hs_data {
    const char *name;
    size_t n, m;
    double x0[HS_MAXN], xl[HS_MAXN], xu[HS_MAXN];
    double gl[HS_MAXM], gu[HS_MAXM];
    double f_star;           /* the book's optimal objective */
    nlp_model *model;
} hs_data;

/* Shorthands for the models below. */
#define SQ(a) tg_mul((a), (a))
#define PW(a, k) tg_pow((a), (double)(k))

/* HS006: min (1 - x1)^2  s.t.  10 (x2 - x1^2) = 0.  f* = 0 at (1, 1). */
static void hs006(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = SQ(tg_sub(1.0, x[0]));
    g[0] = tg_mul(10.0, tg_sub(x[1], SQ(x[0])));
}

/* HS007: min log(1 + x1^2) - x2  s.t.  (1 + x1^2)^2 + x2^2 - 4 = 0.
 * f* = -sqrt(3) at (0, sqrt(3)). */
static void hs007(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    tg_var a = tg_add(1.0, SQ(x[0]));
    *f = tg_sub(tg_log(a), x[1]);
    g[0] = tg_sub(tg_add(SQ(a), SQ(x[1])), 4.0);
}

/* HS010: min x1 - x2  s.t.  -3 x1^2 + 2 x1 x2 - x2^2 + 1 >= 0.
 * f* = -1 at (0, 1). */
static void hs010(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_sub(x[0], x[1]);
    g[0] = tg_add(tg_sub(tg_add(tg_mul(-3.0, SQ(x[0])), tg_mul(2.0, tg_mul(x[0], x[1]))),
                         SQ(x[1])), 1.0);
}

/* HS014: min (x1 - 2)^2 + (x2 - 1)^2  s.t.  -x1^2/4 - x2^2 + 1 >= 0,
 * x1 - 2 x2 + 1 = 0.  f* = 9 - 23/8 sqrt(7) at ((sqrt7 - 1)/2, (sqrt7 + 1)/4). */
static void hs014(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_add(SQ(tg_sub(x[0], 2.0)), SQ(tg_sub(x[1], 1.0)));
    g[0] = tg_add(tg_sub(tg_mul(-0.25, SQ(x[0])), SQ(x[1])), 1.0);
    g[1] = tg_add(tg_sub(x[0], tg_mul(2.0, x[1])), 1.0);
}

/* HS035: min 9 - 8 x1 - 6 x2 - 4 x3 + 2 x1^2 + 2 x2^2 + x3^2 + 2 x1 x2 + 2 x1 x3
 * s.t. 3 - x1 - x2 - 2 x3 >= 0, x >= 0.  f* = 1/9 at (4/3, 7/9, 4/9). */
static void hs035(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    tg_var lin = tg_sub(tg_sub(tg_sub(9.0, tg_mul(8.0, x[0])), tg_mul(6.0, x[1])),
                        tg_mul(4.0, x[2]));
    tg_var sq = tg_add(tg_add(tg_mul(2.0, SQ(x[0])), tg_mul(2.0, SQ(x[1]))), SQ(x[2]));
    tg_var cross = tg_add(tg_mul(2.0, tg_mul(x[0], x[1])), tg_mul(2.0, tg_mul(x[0], x[2])));
    *f = tg_add(tg_add(lin, sq), cross);
    g[0] = tg_sub(tg_sub(tg_sub(3.0, x[0]), x[1]), tg_mul(2.0, x[2]));
}

/* HS039: min -x1  s.t.  x2 - x1^3 - x3^2 = 0,  x1^2 - x2 - x4^2 = 0.
 * f* = -1 at (1, 1, 0, 0). */
static void hs039(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_neg(x[0]);
    g[0] = tg_sub(tg_sub(x[1], PW(x[0], 3)), SQ(x[2]));
    g[1] = tg_sub(tg_sub(SQ(x[0]), x[1]), SQ(x[3]));
}

/* HS040: min -x1 x2 x3 x4  s.t.  x1^3 + x2^2 - 1 = 0,  x1^2 x4 - x3 = 0,
 * x4^2 - x2 = 0.  f* = -0.25 at (2^-1/3, 2^-1/2, 2^-11/12, 2^-1/4). */
static void hs040(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_neg(tg_mul(tg_mul(tg_mul(x[0], x[1]), x[2]), x[3]));
    g[0] = tg_sub(tg_add(PW(x[0], 3), SQ(x[1])), 1.0);
    g[1] = tg_sub(tg_mul(SQ(x[0]), x[3]), x[2]);
    g[2] = tg_sub(SQ(x[3]), x[1]);
}

/* HS043 (Rosen-Suzuki):
 * min x1^2 + x2^2 + 2 x3^2 + x4^2 - 5 x1 - 5 x2 - 21 x3 + 7 x4  s.t.
 *   8 - x1^2 - x2^2 - x3^2 - x4^2 - x1 + x2 - x3 + x4 >= 0,
 *  10 - x1^2 - 2 x2^2 - x3^2 - 2 x4^2 + x1 + x4 >= 0,
 *   5 - 2 x1^2 - x2^2 - x3^2 - 2 x1 + x2 + x4 >= 0.
 * f* = -44 at (0, 1, 2, -1). */
static void hs043(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    tg_var s1 = SQ(x[0]), s2 = SQ(x[1]), s3 = SQ(x[2]), s4 = SQ(x[3]);
    tg_var q = tg_add(tg_add(tg_add(s1, s2), tg_mul(2.0, s3)), s4);
    tg_var l = tg_add(tg_sub(tg_sub(tg_mul(-5.0, x[0]), tg_mul(5.0, x[1])),
                             tg_mul(21.0, x[2])), tg_mul(7.0, x[3]));
    *f = tg_add(q, l);
    /* 8 - (x1^2 + x2^2 + x3^2 + x4^2) - x1 + x2 - x3 + x4 */
    tg_var r0 = tg_sub(8.0, tg_add(tg_add(tg_add(s1, s2), s3), s4));
    g[0] = tg_add(tg_sub(tg_add(tg_sub(r0, x[0]), x[1]), x[2]), x[3]);
    /* 10 - (x1^2 + 2 x2^2 + x3^2 + 2 x4^2) + x1 + x4 */
    tg_var r1 = tg_sub(10.0, tg_add(tg_add(tg_add(s1, tg_mul(2.0, s2)), s3), tg_mul(2.0, s4)));
    g[1] = tg_add(tg_add(r1, x[0]), x[3]);
    /* 5 - (2 x1^2 + x2^2 + x3^2) - 2 x1 + x2 + x4 */
    tg_var r2 = tg_sub(5.0, tg_add(tg_add(tg_mul(2.0, s1), s2), s3));
    g[2] = tg_add(tg_add(tg_sub(r2, tg_mul(2.0, x[0])), x[1]), x[3]);
}

/* HS046: min (x1 - x2)^2 + (x3 - 1)^2 + (x4 - 1)^4 + (x5 - 1)^6  s.t.
 * x1^2 x4 + sin(x4 - x5) - 1 = 0,  x2 + x3^4 x4^2 - 2 = 0.
 * f* = 0 at (1, 1, 1, 1, 1). */
static void hs046(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_add(tg_add(tg_add(SQ(tg_sub(x[0], x[1])), SQ(tg_sub(x[2], 1.0))),
                       PW(tg_sub(x[3], 1.0), 4)), PW(tg_sub(x[4], 1.0), 6));
    g[0] = tg_sub(tg_add(tg_mul(SQ(x[0]), x[3]), tg_sin(tg_sub(x[3], x[4]))), 1.0);
    g[1] = tg_sub(tg_add(x[1], tg_mul(PW(x[2], 4), SQ(x[3]))), 2.0);
}

/* HS071: min x1 x4 (x1 + x2 + x3) + x3  s.t.  x1 x2 x3 x4 - 25 >= 0,
 * x1^2 + x2^2 + x3^2 + x4^2 - 40 = 0,  1 <= x <= 5.  f* = 17.0140173. */
static void hs071(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_add(tg_mul(tg_mul(x[0], x[3]), tg_add(tg_add(x[0], x[1]), x[2])), x[2]);
    g[0] = tg_sub(tg_mul(tg_mul(tg_mul(x[0], x[1]), x[2]), x[3]), 25.0);
    g[1] = tg_sub(tg_add(tg_add(tg_add(SQ(x[0]), SQ(x[1])), SQ(x[2])), SQ(x[3])), 40.0);
}

/* HS078: min x1 x2 x3 x4 x5  s.t.  x1^2 + ... + x5^2 - 10 = 0,
 * x2 x3 - 5 x4 x5 = 0,  x1^3 + x2^3 + 1 = 0.  f* = -2.91970041. */
static void hs078(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    (void)n;
    *f = tg_mul(tg_mul(tg_mul(tg_mul(x[0], x[1]), x[2]), x[3]), x[4]);
    g[0] = tg_sub(tg_add(tg_add(tg_add(tg_add(SQ(x[0]), SQ(x[1])), SQ(x[2])), SQ(x[3])),
                         SQ(x[4])), 10.0);
    g[1] = tg_sub(tg_mul(x[1], x[2]), tg_mul(5.0, tg_mul(x[3], x[4])));
    g[2] = tg_add(tg_add(PW(x[0], 3), PW(x[1], 3)), 1.0);
}

#define I NLP_INF
#define FREE5 { -I, -I, -I, -I, -I }, { I, I, I, I, I }
static const hs_data hs_table[] = {
    { "HS006", 2, 1, { -1.2, 1.0 }, FREE5, { 0 }, { 0 },
      0.0, hs006 },
    { "HS007", 2, 1, { 2.0, 2.0 }, FREE5, { 0 }, { 0 },
      -1.7320508075688772 /* -sqrt(3) */, hs007 },
    { "HS010", 2, 1, { -10.0, 10.0 }, FREE5, { 0 }, { I },
      -1.0, hs010 },
    { "HS014", 2, 2, { 2.0, 2.0 }, FREE5, { 0, 0 }, { I, 0 },
      1.393464980689302 /* 9 - 23/8 sqrt(7) */, hs014 },
    { "HS035", 3, 1, { 0.5, 0.5, 0.5 }, { 0, 0, 0 }, { I, I, I }, { 0 }, { I },
      0.1111111111111111 /* 1/9 */, hs035 },
    { "HS039", 4, 2, { 2, 2, 2, 2 }, FREE5, { 0, 0 }, { 0, 0 },
      -1.0, hs039 },
    { "HS040", 4, 3, { 0.8, 0.8, 0.8, 0.8 }, FREE5, { 0, 0, 0 }, { 0, 0, 0 },
      -0.25, hs040 },
    { "HS043", 4, 3, { 0, 0, 0, 0 }, FREE5, { 0, 0, 0 }, { I, I, I },
      -44.0, hs043 },
    { "HS046", 5, 2, { 0.7071067811865476 /* sqrt(2)/2 */, 1.75, 0.5, 2.0, 2.0 }, FREE5,
      { 0, 0 }, { 0, 0 },
      0.0, hs046 },
    { "HS071", 4, 2, { 1, 5, 5, 1 }, { 1, 1, 1, 1 }, { 5, 5, 5, 5 },
      { 0, 0 }, { I, 0 },
      17.0140173, hs071 },
    { "HS078", 5, 3, { -2.0, 1.5, 2.0, -1.0, -1.0 }, FREE5, { 0, 0, 0 }, { 0, 0, 0 },
      -2.91970041, hs078 },
};
#undef FREE5
#undef I

size_t nlp_hs_count(void)
{
    return sizeof hs_table / sizeof hs_table[0];
}

const char *nlp_hs_name(size_t k)
{
    return k < nlp_hs_count() ? hs_table[k].name : NULL;
}

static int problem_alloc(nlp_problem *p, size_t n, size_t m)
{
    p->n = n;
    p->m = m;
    p->x0 = malloc(n * sizeof *p->x0);
    p->xl = malloc(n * sizeof *p->xl);
    p->xu = malloc(n * sizeof *p->xu);
    p->gl = malloc((m ? m : 1) * sizeof *p->gl);
    p->gu = malloc((m ? m : 1) * sizeof *p->gu);
    if (!p->x0 || !p->xl || !p->xu || !p->gl || !p->gu) {
        nlp_problem_free(p);
        return -1;
    }
    return 0;
}

int nlp_problem_hs(const char *name, nlp_problem *p)
{
    memset(p, 0, sizeof *p);
    for (size_t k = 0; k < sizeof hs_table / sizeof hs_table[0]; k++) {
        const hs_data *d = &hs_table[k];
        if (strcmp(d->name, name) != 0)
            continue;
        if (problem_alloc(p, d->n, d->m) != 0)
            return -1;
        snprintf(p->name, sizeof p->name, "%s", d->name);
        memcpy(p->x0, d->x0, d->n * sizeof *p->x0);
        memcpy(p->xl, d->xl, d->n * sizeof *p->xl);
        memcpy(p->xu, d->xu, d->n * sizeof *p->xu);
        memcpy(p->gl, d->gl, d->m * sizeof *p->gl);
        memcpy(p->gu, d->gu, d->m * sizeof *p->gu);
        p->f_star = d->f_star;
        p->model = d->model;
        return 0;
    }
    return -1;
}

/* f = sum_{i<n-1} 100 (x_i^2 - x_{i+1})^2 + (x_i - 1)^2;
 * g_i = 3 x_{i+1}^3 + 2 x_{i+2} - 5 + sin(x_{i+1} - x_{i+2}) sin(x_{i+1} + x_{i+2})
 *       + 4 x_{i+1} - x_i exp(x_i - x_{i+1}) - 3 = 0,  i < n-2.
 * x = (1, ..., 1) is feasible (g_i = 0 + 0 + 4 - 1 - 3) with f = 0, the
 * global minimum; but from the standard start (-1.2, 1, -1.2, ...) Ipopt
 * and other interior-point codes reach the local minimiser with
 * f = 6.2324586324 (x_0 ~ -0.9506, x_1 ~ 0.9139, then x_i -> 1), the same
 * for every n >= ~20: that is the known optimum this example compares with
 * (JuliaSmoothOptimizers' ADNLPModels/Ipopt tutorial reports
 * 6.232458632437464 for the same problem and start). */
#define LV1_LOCAL_OPTIMUM 6.2324586324
static void lv1(size_t n, const tg_var *x, tg_var *f, tg_var *g)
{
    tg_var acc = tg_const(x[0].tape, 0.0);
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var a = tg_sub(SQ(x[i]), x[i + 1]);
        tg_var b = tg_sub(x[i], 1.0);
        acc = tg_add(acc, tg_add(tg_mul(100.0, SQ(a)), SQ(b)));
    }
    *f = acc;
    for (size_t i = 0; i + 2 < n; i++) {
        tg_var u = x[i + 1], v = x[i + 2];
        tg_var poly = tg_sub(tg_add(tg_mul(3.0, PW(u, 3)), tg_mul(2.0, v)), 5.0);
        tg_var trig = tg_mul(tg_sin(tg_sub(u, v)), tg_sin(tg_add(u, v)));
        tg_var ex = tg_mul(x[i], tg_exp(tg_sub(x[i], u)));
        g[i] = tg_sub(tg_sub(tg_add(tg_add(poly, trig), tg_mul(4.0, u)), ex), 3.0);
    }
}

int nlp_problem_lv1(size_t n, nlp_problem *p)
{
    memset(p, 0, sizeof *p);
    if (n < 3 || problem_alloc(p, n, n - 2) != 0)
        return -1;
    snprintf(p->name, sizeof p->name, "LV1");
    for (size_t i = 0; i < n; i++) {
        p->x0[i] = (i % 2 == 0) ? -1.2 : 1.0;   /* Ipopt's start; odd n ends on -1.2 */
        p->xl[i] = -NLP_INF;
        p->xu[i] = NLP_INF;
    }
    for (size_t i = 0; i < n - 2; i++)
        p->gl[i] = p->gu[i] = 0.0;
    p->f_star = LV1_LOCAL_OPTIMUM;
    p->model = lv1;
    return 0;
}

void nlp_problem_free(nlp_problem *p)
{
    free(p->x0);
    free(p->xl);
    free(p->xu);
    free(p->gl);
    free(p->gu);
    p->x0 = p->xl = p->xu = p->gl = p->gu = NULL;
}
