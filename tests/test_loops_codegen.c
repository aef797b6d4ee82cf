/* tests/test_loops_codegen.c -- loops (tg_map, tg_scan) through the code
 * generators: the C translator, native kernels and Rust crates keep a loop
 * as a loop (each body one function, called from a `for`).
 *
 * Every case is recorded twice: with loops, and unrolled (the same body
 * function recorded inline once per application/step: the flat recording).
 * Checked, at random points and at points full of specials (+-0, +-Inf,
 * NaN, subnormals):
 *  - tg_eval of the looped tape against tg_eval of the flat one (1e-13);
 *  - the C translation, compiled with every C compiler found (-Wall -Wextra
 *    -pedantic -Werror), against tg_eval of the looped tape BIT FOR BIT, in
 *    one file and cut into tiny parts, its batch variant against it, and
 *    the f32 variant for closeness;
 *  - native kernels (tg_compile) against tg_eval bit for bit, in several
 *    translation units too;
 *  - Rust crates (f64 std, f32 no_std) built offline with cargo, their
 *    kernels run on the same points (1e-13 relative in f64);
 *  - the generated sources of a 10-step and a 100000-step scan are the same
 *    text but for their numbers (size independent of the trip count), and
 *    a body shared by two loops is emitted once.
 * Cases: scans (Lorenz RK4) and maps (Rosenbrock terms on overlapping
 * windows), windows read backwards, x blocks made of several pieces
 * (windows, fixed values, values gathered per step), a map over the ys of
 * a scan, loops nested three deep, size-0 blocks and trip counts 0, a body
 * shared by two loops; C also in translation units of 3 statements. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>

#include <criterion/criterion.h>

#include "testutil.h"
#include "tape/alloc.h"

/* ============================================================== bodies */

/* A body: (c, x, p) -> (cn, y) for a scan, (x, p) -> (y) for a map. */
typedef void (*body_fn)(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                        tg_var *y);

typedef struct body_def {
    const char *name;
    bool scan;
    uint32_t nc, nx, np, ny;
    body_fn f;
} body_def;

/* Nested bodies record loops or, in the flat recording, inline them. */
static bool g_flat;

static tg_tape *make_body(const body_def *d)
{
    tg_tape *b = tu_tape(d->name, 0);
    tg_var c[8], x[8], p[8], cn[8], y[8];
    if (d->scan)
        tg_input_vec(b, "c", d->nc, c);
    tg_input_vec(b, "x", d->nx, x);
    tg_input_vec(b, "p", d->np, p);
    d->f(b, c, x, p, cn, y);
    if (d->scan)
        tg_output_vec(b, "cn", d->nc, cn);
    tg_output_vec(b, "y", d->ny, y);
    TU_TAPE_OK(b);
    return b;
}

/* Records a map of d on t: looped, or inline with g_flat. */
static void rec_map(tg_tape *t, const body_def *d, size_t count, const tg_var *xs,
                    const tg_var *params, tg_var *ys)
{
    if (g_flat) {
        for (size_t i = 0; i < count; i++)
            d->f(t, NULL, xs + i * d->nx, params, NULL, ys + i * d->ny);
        return;
    }
    tg_tape *b = make_body(d);
    tg_map(t, b, count, xs, params, ys);
    tg_tape_free(b);
}

static void rec_scan(tg_tape *t, const body_def *d, size_t steps, const tg_var *c0,
                     const tg_var *xs, const tg_var *params, tg_var *cout, tg_var *ys)
{
    if (g_flat) {
        tg_var c[8], cn[8];
        memcpy(c, c0, d->nc * sizeof *c);
        for (size_t k = 0; k < steps; k++) {
            d->f(t, c, xs ? xs + k * d->nx : NULL, params, cn, ys ? ys + k * d->ny : NULL);
            memcpy(c, cn, d->nc * sizeof *c);
        }
        memcpy(cout, c, d->nc * sizeof *c);
        return;
    }
    tg_tape *b = make_body(d);
    tg_scan(t, b, steps, c0, xs, params, cout, ys);
    tg_tape_free(b);
}

/* Lorenz: c = (x, y, z), p = (sigma, rho, beta, dt); one RK4 step; y = x*z. */
static void lorenz_f(const tg_var *s, const tg_var *p, tg_var *d)
{
    d[0] = tg_mul(p[0], tg_sub(s[1], s[0]));
    d[1] = tg_sub(tg_mul(s[0], tg_sub(p[1], s[2])), s[1]);
    d[2] = tg_sub(tg_mul(s[0], s[1]), tg_mul(p[2], s[2]));
}

static void lorenz_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                        tg_var *y)
{
    (void)t;
    (void)x;
    tg_var k1[3], k2[3], k3[3], k4[3], s[3];
    tg_var h = tg_mul(p[3], 0.5);
    lorenz_f(c, p, k1);
    for (int i = 0; i < 3; i++)
        s[i] = tg_add(c[i], tg_mul(h, k1[i]));
    lorenz_f(s, p, k2);
    for (int i = 0; i < 3; i++)
        s[i] = tg_add(c[i], tg_mul(h, k2[i]));
    lorenz_f(s, p, k3);
    for (int i = 0; i < 3; i++)
        s[i] = tg_add(c[i], tg_mul(p[3], k3[i]));
    lorenz_f(s, p, k4);
    for (int i = 0; i < 3; i++) {
        tg_var sum = tg_add(tg_add(k1[i], tg_mul(2.0, k2[i])), tg_add(tg_mul(2.0, k3[i]), k4[i]));
        cn[i] = tg_add(c[i], tg_mul(tg_div(p[3], 6.0), sum));
    }
    y[0] = tg_mul(cn[0], cn[2]);
}
static const body_def LORENZ = { "lorenz_step", true, 3, 0, 4, 1, lorenz_body };

/* Rosenbrock term: p0 (x1 - x0^2)^2 + (1 - x0)^2. */
static void rosen_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                       tg_var *y)
{
    (void)t;
    (void)c;
    (void)cn;
    tg_var a = tg_sub(x[1], tg_mul(x[0], x[0])), b = tg_sub(1.0, x[0]);
    y[0] = tg_add(tg_mul(p[0], tg_mul(a, a)), tg_mul(b, b));
}
static const body_def ROSEN = { "rosen_term", false, 0, 2, 1, 1, rosen_body };

/* Specials: division, log, sqrt, select, max, azmul, hypot. */
static void special_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                         tg_var *y)
{
    (void)t;
    (void)c;
    (void)cn;
    y[0] = tg_add(tg_div(x[0], x[1]), tg_mul(tg_log(x[0]), p[0]));
    y[1] = tg_select(tg_lt(x[0], x[1]), tg_sqrt(x[1]), tg_max(x[0], p[1]));
    y[2] = tg_add(tg_azmul(x[0], p[1]), tg_hypot(x[1], p[0]));
}
static const body_def SPECIAL = { "special", false, 0, 2, 2, 3, special_body };

/* A damped oscillator step with a forcing x: cn = (c1, c0 p0 + sin x0), y = c0 x0. */
static void damped_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                        tg_var *y)
{
    (void)t;
    cn[0] = c[1];
    cn[1] = tg_add(tg_mul(c[0], p[0]), tg_sin(x[0]));
    y[0] = tg_mul(c[0], x[0]);
}
static const body_def DAMPED = { "damped", true, 2, 1, 1, 1, damped_body };

/* The innermost body: y = tanh(x0 p0 + p1). */
static void inner_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                       tg_var *y)
{
    (void)t;
    (void)c;
    (void)cn;
    y[0] = tg_tanh(tg_add(tg_mul(x[0], p[0]), p[1]));
}
static const body_def INNER = { "inner", false, 0, 1, 2, 1, inner_body };

/* A scan body holding a map over its carry: cn = map(inner, c; x0, p0),
 * y = sum cn. */
static void mid_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                     tg_var *y)
{
    tg_var q[2] = { x[0], p[0] };
    rec_map(t, &INNER, 3, c, q, cn);
    y[0] = tg_sum(3, cn);
}
static const body_def MID = { "mid", true, 3, 1, 1, 1, mid_body };

/* A map body holding a scan of mid (three levels), whose xs are computed
 * in the body (gathered there): y = carry after 3 steps from x. */
static void outer_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                       tg_var *y)
{
    (void)c;
    (void)cn;
    tg_var xs[3] = { p[0], tg_mul(p[0], 2.0), tg_cos(p[1]) }, ys[3];
    rec_scan(t, &MID, 3, x, xs, p + 1, y, ys);  /* ys unused: dead loop outputs */
}
static const body_def OUTER = { "outer", false, 0, 3, 2, 3, outer_body };

/* Size-0 blocks: cn = (c1, c0 - c1/2); no x, no params, no y. */
static void rot_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                     tg_var *y)
{
    (void)t;
    (void)x;
    (void)p;
    (void)y;
    cn[0] = c[1];
    cn[1] = tg_sub(c[0], tg_mul(c[1], 0.5));
}
static const body_def ROT = { "rot", true, 2, 0, 0, 0, rot_body };

/* =============================================================== cases */

typedef tg_tape *(*case_fn)(size_t n);

/* Lorenz RK4: s0[3], p[4] -> final[3], traj[n] (the ys, stored in one copy). */
static tg_tape *case_lorenz(size_t n)
{
    tg_tape *t = tu_tape("lorenz", 0);
    tg_var s[3], p[4], f[3];
    tg_var *y = calloc(n + 1, sizeof *y);
    cr_assert(y != NULL);
    tg_input_vec(t, "s0", 3, s);
    tg_input_vec(t, "p", 4, p);
    rec_scan(t, &LORENZ, n, s, NULL, p, f, y);
    tg_output_vec(t, "last", 3, f);
    tg_output_vec(t, "traj", n, y);
    free(y);
    return t;
}

/* Rosenbrock as a map over the overlapping windows (x_i, x_i+1). */
static tg_tape *case_rosen(size_t n)
{
    tg_tape *t = tu_tape("rosen", 0);
    tg_var *x = calloc(n, sizeof *x), *xs = calloc(2 * n, sizeof *xs), *y = calloc(n, sizeof *y), a;
    cr_assert(x && xs && y);
    tg_input_vec(t, "x", n, x);
    tg_input_vec(t, "a", 1, &a);
    for (size_t i = 0; i + 1 < n; i++) {
        xs[2 * i] = x[i];
        xs[2 * i + 1] = x[i + 1];
    }
    rec_map(t, &ROSEN, n - 1, xs, &a, y);
    tg_output(t, "f", tg_sum(n - 1, y));
    tg_output_vec(t, "terms", n - 1, y);
    free(x);
    free(xs);
    free(y);
    return t;
}

/* Windows forwards, backwards (stride -2), gathered steps and params. */
static tg_tape *case_special(size_t n)
{
    (void)n;
    tg_tape *t = tu_tape("special", 0);
    tg_var u[6], q[2], y0[12], y1[9];
    tg_input_vec(t, "u", 6, u);
    tg_input_vec(t, "q", 2, q);
    tg_var xs0[8] = { u[0], u[1], u[2], u[3], tg_sin(u[4]), u[5], u[1], u[0] };
    rec_map(t, &SPECIAL, 4, xs0, q, y0);
    tg_var xs1[6] = { u[4], u[5], u[2], u[3], u[0], u[1] }, q1[2] = { q[1], q[0] };
    rec_map(t, &SPECIAL, 3, xs1, q1, y1);
    tg_output_vec(t, "y0", 12, y0);
    tg_output_vec(t, "y1", 9, y1);
    return t;
}

/* A scan forced by an input window, then a map over windows of its ys
 * (loop outputs read in place) with a computed (gathered) parameter. */
static tg_tape *case_chain(size_t n)
{
    tg_tape *t = tu_tape("chain", 0);
    tg_var c0[2], p, cf[2];
    tg_var *xs = calloc(n + 1, sizeof *xs), *ys = calloc(n + 1, sizeof *ys);
    tg_var *w = calloc(2 * n + 1, sizeof *w), *z = calloc(n + 1, sizeof *z);
    cr_assert(xs && ys && w && z);
    tg_input_vec(t, "c0", 2, c0);
    tg_input_vec(t, "xs", n, xs);
    tg_input_vec(t, "p", 1, &p);
    rec_scan(t, &DAMPED, n, c0, xs, &p, cf, ys);
    for (size_t i = 0; i + 1 < n; i++) {
        w[2 * i] = ys[i];
        w[2 * i + 1] = ys[i + 1];
    }
    tg_var a = tg_mul(p, 2.0);
    rec_map(t, &ROSEN, n - 1, w, &a, z);
    tg_output_vec(t, "z", n - 1, z);
    tg_output_vec(t, "cf", 2, cf);
    free(xs);
    free(ys);
    free(w);
    free(z);
    return t;
}

/* A scan whose body holds a map (two levels). */
static tg_tape *case_nested(size_t n)
{
    tg_tape *t = tu_tape("nested", 0);
    tg_var s[3], p, f[3];
    tg_var *v = calloc(n + 1, sizeof *v), *y = calloc(n + 1, sizeof *y);
    cr_assert(v && y);
    tg_input_vec(t, "s", 3, s);
    tg_input_vec(t, "v", n, v);
    tg_input_vec(t, "p", 1, &p);
    rec_scan(t, &MID, n, s, v, &p, f, y);
    tg_output_vec(t, "f", 3, f);
    tg_output_vec(t, "y", n, y);
    free(v);
    free(y);
    return t;
}

/* A map whose body holds a scan whose body holds a map (three levels). */
static tg_tape *case_deep(size_t n)
{
    (void)n;
    tg_tape *t = tu_tape("deep", 0);
    tg_var x[6], p[2], y[6];
    tg_input_vec(t, "x", 6, x);
    tg_input_vec(t, "p", 2, p);
    rec_map(t, &OUTER, 2, x, p, y);
    tg_output_vec(t, "y", 6, y);
    return t;
}

/* Size-0 blocks and trip counts 0. */
static tg_tape *case_empty(size_t n)
{
    tg_tape *t = tu_tape("empty", 0);
    tg_var c[2], s[3], p[4], a, f[2], k[3];
    tg_input_vec(t, "c", 2, c);
    tg_input_vec(t, "none", 0, NULL);
    tg_input_vec(t, "s", 3, s);
    tg_input_vec(t, "p", 4, p);
    tg_input_vec(t, "a", 1, &a);
    rec_scan(t, &ROT, n, c, NULL, NULL, f, NULL);
    rec_map(t, &ROSEN, 0, NULL, &a, NULL);
    rec_scan(t, &LORENZ, 0, s, NULL, p, k, NULL);
    tg_output_vec(t, "f", 2, f);
    tg_output_vec(t, "z", 0, NULL);
    tg_output_vec(t, "k", 3, k);
    tg_output(t, "g", tg_add(k[0], a));
    return t;
}

/* One body, two loops: emitted once. */
static tg_tape *case_shared(size_t n)
{
    tg_tape *t = tu_tape("shared", 0);
    tg_var c[2], xs[8], p, c1[2], c2[2], y1[8], y2[8];
    (void)n;
    tg_input_vec(t, "c", 2, c);
    tg_input_vec(t, "xs", 8, xs);
    p = tg_input(t, "p");
    tg_tape *body = g_flat ? NULL : make_body(&DAMPED);
    if (body) {
        tg_scan(t, body, 8, c, xs, &p, c1, y1);
        tg_scan(t, body, 4, c1, xs + 4, &p, c2, y2);
        tg_tape_free(body);
    } else {
        rec_scan(t, &DAMPED, 8, c, xs, &p, c1, y1);
        rec_scan(t, &DAMPED, 4, c1, xs + 4, &p, c2, y2);
    }
    tg_output_vec(t, "y1", 8, y1);
    tg_output_vec(t, "y2", 4, y2);
    tg_output_vec(t, "c2", 2, c2);
    return t;
}

/* x blocks made of pieces: values in no array (gathered per step), fixed
 * values and windows (copied per step into a staging block). */
static tg_tape *case_pieces(size_t n)
{
    (void)n;
    tg_tape *t = tu_tape("pieces", 0);
    tg_var u[5], q[2], y1[15], y2[15], y3[15], c0[2], cf[2], ys[5];
    tg_input_vec(t, "u", 5, u);
    tg_input_vec(t, "q", 2, q);
    tg_var xs1[10], xs2[10], xs3[10], xs4[5];
    for (int k = 0; k < 5; k++) {
        xs1[2 * k] = tg_sin(u[k]);              /* all gathered: one window of the gathers */
        xs1[2 * k + 1] = tg_cos(u[k]);
        xs2[2 * k] = u[k];                      /* a window and a fixed value */
        xs2[2 * k + 1] = tg_const(t, 0.75);
        xs3[2 * k] = u[4 - k];                  /* a window backwards and a gathered value */
        xs3[2 * k + 1] = tg_exp(u[k]);
        xs4[k] = tg_mul(u[k], 2.0);
    }
    rec_map(t, &SPECIAL, 5, xs1, q, y1);
    rec_map(t, &SPECIAL, 5, xs2, q, y2);
    rec_map(t, &SPECIAL, 5, xs3, q, y3);
    c0[0] = q[1];
    c0[1] = u[2];
    rec_scan(t, &DAMPED, 5, c0, xs4, q, cf, ys);
    tg_output_vec(t, "y1", 15, y1);
    tg_output_vec(t, "y2", 15, y2);
    tg_output_vec(t, "y3", 15, y3);
    tg_output_vec(t, "cf", 2, cf);
    tg_output_vec(t, "ys", 5, ys);
    return t;
}

/* W3 of the benchmark as a scan: u = (x, y, z, sigma, rho, beta), dt fixed;
 * f = |state after n RK4 steps|^2 (scalar: its kind 1 is a gradient tape). */
static void w3_body(tg_tape *t, const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn,
                    tg_var *y)
{
    (void)x;
    (void)y;
    tg_var q[4] = { p[0], p[1], p[2], tg_const(t, 0.01) };
    tg_var ignored[1];
    lorenz_body(t, c, NULL, q, cn, ignored);
}
static const body_def W3 = { "w3_step", true, 3, 0, 3, 0, w3_body };

static tg_tape *case_w3(size_t n)
{
    tg_tape *t = tu_tape("w3", 0);
    tg_var u[6], c[3];
    tg_input_vec(t, "u", 6, u);
    rec_scan(t, &W3, n, u, NULL, u + 3, c, NULL);
    tg_output(t, "f", tg_add(tg_add(tg_mul(c[0], c[0]), tg_mul(c[1], c[1])), tg_mul(c[2], c[2])));
    return t;
}

typedef struct lcase {
    const char *name;
    case_fn f;
    size_t n;
} lcase;

static const lcase CASES[] = {
    { "lorenz", case_lorenz, 10 }, { "rosen", case_rosen, 9 },   { "special", case_special, 0 },
    { "chain", case_chain, 6 },    { "nested", case_nested, 4 }, { "deep", case_deep, 0 },
    { "empty", case_empty, 5 },    { "shared", case_shared, 0 },  { "pieces", case_pieces, 0 },
    { "w3", case_w3, 20 },
};
#define NCASES (sizeof CASES / sizeof *CASES)

static tg_tape *build(const lcase *c, bool flat, size_t n)
{
    g_flat = flat;
    tg_tape *t = c->f(n);
    g_flat = false;
    TU_TAPE_OK(t);
    return t;
}

/* ============================================================== points */

#define NRAND 5
#define NSPEC 4
#define NPTS (NRAND + NSPEC)

static const double SPECIALS[] = { 0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-310, -1e-310, 1e300 };

/* Point p of case c: random values in a benign range (Lorenz near its
 * usual parameters), then points with a third of the inputs specials. */
static void point(const lcase *c, size_t nin, size_t p, double *x)
{
    tu_rng r = { 0x1005c0deu + 7919u * p + 104729u * (uint64_t)(c - CASES) };
    for (size_t i = 0; i < nin; i++)
        x[i] = tu_rng_range(&r, 0.2, 1.5);
    if (strcmp(c->name, "lorenz") == 0 || strcmp(c->name, "w3") == 0) {
        x[3] = 10.0 + x[3];
        x[4] = 28.0 * x[4];
        x[5] = 8.0 / 3.0 * x[5];
        if (nin > 6)
            x[6] = 0.01 * x[6];
    }
    if (p < NRAND)
        return;
    for (size_t i = 0; i < nin; i++)
        if (tu_rng_next(&r) % 3 == 0)
            x[i] = SPECIALS[tu_rng_next(&r) % (sizeof SPECIALS / sizeof *SPECIALS)];
}

/* The kernels: every case (kind 0) and its VJP and JVP tapes (kinds 1, 2:
 * derivative tapes keep loops as loops), each looped and flat, with their
 * values at the points. */
#define NKIND 3
#define NK (NCASES * NKIND)
static const char *const KIND[NKIND] = { "", "_vjp", "_jvp" };   /* "_grad" for scalar f */

typedef struct fixture {
    tg_tape *loop[NK], *flat[NK];
    char name[NK][48];
    size_t nin[NK], nout[NK];
    double *X[NK], *Y[NK];      /* NPTS x nin, NPTS x nout: tg_eval of loop */
} fixture;

static tg_tape *derive(const tg_tape *f, int kind)
{
    tg_tape *d = kind == 2 ? tg_jvp_tape(f, TG_ALL)
               : tg_num_outputs(f) == 1 ? tg_gradient_tape(f, TG_ALL) : tg_vjp_tape(f, TG_ALL);
    cr_assert(d != NULL);
    TU_TAPE_OK(d);
    return d;
}

static fixture *fixture_new(void)
{
    fixture *F = calloc(1, sizeof *F);
    cr_assert(F != NULL);
    for (size_t i = 0; i < NK; i++) {
        const lcase *c = &CASES[i / NKIND];
        int kind = (int)(i % NKIND);
        snprintf(F->name[i], sizeof F->name[i], "%s%s", c->name, KIND[kind]);
        if (kind == 1 && tg_num_outputs(F->loop[i - 1]) == 1)
            snprintf(F->name[i], sizeof F->name[i], "%s_grad", c->name);
        if (kind == 0) {
            F->loop[i] = build(c, false, c->n);
            F->flat[i] = build(c, true, c->n);
        } else {
            F->loop[i] = derive(F->loop[i - (size_t)kind], kind);
            F->flat[i] = derive(F->flat[i - (size_t)kind], kind);
        }
        size_t n = tg_num_inputs(F->loop[i]), m = tg_num_outputs(F->loop[i]);
        cr_assert_eq(n, tg_num_inputs(F->flat[i]), "%s: inputs differ", F->name[i]);
        cr_assert_eq(m, tg_num_outputs(F->flat[i]), "%s: outputs differ", F->name[i]);
        cr_assert(kind || tg_tape_size(F->loop[i]) < tg_tape_size(F->flat[i]) || c->n == 0,
                  "%s: the looped tape (%zu) is not smaller than the flat one (%zu)", c->name,
                  tg_tape_size(F->loop[i]), tg_tape_size(F->flat[i]));
        F->nin[i] = n;
        F->nout[i] = m;
        F->X[i] = calloc(NPTS * n + 1, sizeof(double));
        F->Y[i] = calloc(NPTS * m + 1, sizeof(double));
        cr_assert(F->X[i] && F->Y[i]);
        size_t n0 = F->nin[i - (size_t)kind];
        for (size_t p = 0; p < NPTS; p++) {
            double *x = F->X[i] + p * n;
            point(c, n0, p, x);
            tu_rng r = { 0xd1ec7u + 31u * p + i };
            for (size_t k = n0; k < n; k++)     /* the tangent or cotangent */
                x[k] = tu_rng_range(&r, -1.0, 1.0);
            TU_OK(tg_eval(F->loop[i], x, F->Y[i] + p * m));
        }
    }
    return F;
}

static void fixture_free(fixture *F)
{
    for (size_t i = 0; i < NK; i++) {
        tg_tape_free(F->loop[i]);
        tg_tape_free(F->flat[i]);
        free(F->X[i]);
        free(F->Y[i]);
    }
    free(F);
}

static void fmt_x(char *buf, size_t len, const double *x, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 32 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%.17g", i ? ", " : "", x[i]);
}

/* Compares the m values got at point p of case i with want. */
static void check_values(const fixture *F, size_t i, size_t p, const double *got, const double *want,
                         const char *what, double rtol)
{
    size_t n = F->nin[i], m = F->nout[i];
    for (size_t j = 0; j < m; j++) {
        bool ok = rtol == 0.0 ? tu_same_bits_nan(got[j], want[j])
                              : tu_close(got[j], want[j], rtol, 1e-300);
        if (!ok) {
            char xs[2048];
            fmt_x(xs, sizeof xs, F->X[i] + p * n, n);
            cr_assert_fail("%s: kernel %s, point %zu (x = %s), output %zu: %.17g, want %.17g", what,
                           F->name[i], p, xs, j, got[j], want[j]);
        }
    }
}

/* Derivative tapes sum in another order than the flat ones (and meet
 * infinities in another order at the specials): close at the random
 * points.  The values themselves agree everywhere. */
static void check_flat(const fixture *F, size_t i, size_t p, const double *got, const char *what)
{
    double *y = calloc(F->nout[i] + 1, sizeof *y);
    cr_assert(y != NULL);
    TU_OK(tg_eval(F->flat[i], F->X[i] + p * F->nin[i], y));
    if (i % NKIND == 0)
        check_values(F, i, p, got, y, what, 1e-13);
    else if (p < NRAND)
        for (size_t j = 0; j < F->nout[i]; j++)
            cr_assert(tu_close(got[j], y[j], 1e-11, 1e-12), "%s: kernel %s, point %zu, output %zu: "
                      "%.17g, flat %.17g", what, F->name[i], p, j, got[j], y[j]);
    free(y);
}

Test(loops_codegen, looped_equals_flat)
{
    fixture *F = fixture_new();
    for (size_t i = 0; i < NK; i++)
        for (size_t p = 0; p < NPTS; p++)
            check_flat(F, i, p, F->Y[i] + p * F->nout[i], "looped tg_eval vs flat tg_eval");
    fixture_free(F);
}

/* ================================================================== C */

typedef int (*kern_fn)(const double *, double *, double *);
typedef int (*batch_fn)(size_t, const double *, double *, double *);
typedef int (*kern32_fn)(const float *, float *, float *);

static bool have_compiler(const char *cc)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "%s --version > /dev/null 2>&1", cc);
    return system(cmd) == 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

/* Compiles src into a shared object with cc and opens it (compiler errors
 * fail the test). */
static void *compile_c(const char *cc, const char *src)
{
    char dir[] = "/tmp/tg_loops_c_XXXXXX", path[256], so[256], cmd[1024];
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/k.c", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    cr_assert(fputs(src, f) >= 0);
    cr_assert(fclose(f) == 0);
    snprintf(cmd, sizeof cmd, "%s -std=c11 -Wall -Wextra -pedantic -Werror -ffp-contract=off "
             "-fno-fast-math -O1 -fPIC -shared -o %s %s -lm 2> %s/err.txt", cc, so, path, dir);
    if (system(cmd) != 0) {
        snprintf(path, sizeof path, "%s/err.txt", dir);
        char *err = read_all(path);
        cr_assert_fail("%s failed on the generated C (kept in %s):\n%.3000s", cc, dir,
                       err ? err : "");
    }
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h != NULL, "dlopen: %s", dlerror());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
    return h;
}

/* Appends the C translation of every looped case (names NAME<tag>) to *src. */
static void c_sources(const fixture *F, const char *tag, int f32, unsigned part, char **src,
                      size_t *work)
{
    size_t len = *src ? strlen(*src) : 0;
    for (size_t i = 0; i < NK; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s%s", F->name[i], tag);
        tg_c_options o = { name, f32, !f32, part, 0 };
        char *s = NULL;
        TU_OK(tg_c_source(F->loop[i], &o, &s, &work[i]));
        cr_expect(strstr(s, "; k_++) {") != NULL, "%s: no loop in the C code", name);
        size_t n = strlen(s);
        *src = realloc(*src, len + n + 1);
        cr_assert(*src != NULL);
        memcpy(*src + len, s, n + 1);
        len += n;
        free(s);
    }
}

static void run_c(const char *cc)
{
    if (!have_compiler(cc)) {
        cr_log_warn("%s not found: the generated C is not compiled with it", cc);
        return;
    }
    fixture *F = fixture_new();
    char *src = NULL;
    size_t work[NK], work3[NK], work32[NK];
    c_sources(F, "", 0, 0, &src, work);
    c_sources(F, "_tiny", 0, 3, &src, work3);   /* values cross parts, bodies in parts */
    c_sources(F, "_f", 1, 0, &src, work32);
    const char *dump = getenv("TG_LOOPS_DUMP");    /* a file to keep the C in (debugging) */
    if (dump) {
        FILE *df = fopen(dump, "w");
        if (df) {
            fputs(src, df);
            fclose(df);
        }
    }
    void *h = compile_c(cc, src);
    free(src);
    for (size_t i = 0; i < NK; i++) {
        size_t n = F->nin[i], m = F->nout[i];
        for (int v = 0; v < 2; v++) {
            char name[100];
            snprintf(name, sizeof name, "%s%s", F->name[i], v ? "_tiny" : "");
            kern_fn f = (kern_fn)(uintptr_t)dlsym(h, name);
            snprintf(name + strlen(name), sizeof name - strlen(name), "_batch");
            batch_fn fb = (batch_fn)(uintptr_t)dlsym(h, name);
            cr_assert(f && fb, "%s: symbol missing", name);
            size_t wl = v ? work3[i] : work[i];
            double *w = calloc(16 * (wl + n + m) + 1, sizeof *w), *y = calloc(NPTS * m + 1, sizeof *y);
            cr_assert(w && y);
            for (size_t p = 0; p < NPTS; p++) {
                cr_assert_eq(f(F->X[i] + p * n, y + p * m, w), 0);
                check_values(F, i, p, y + p * m, F->Y[i] + p * m, v ? "C (tiny parts)" : "C", 0.0);
                check_flat(F, i, p, y + p * m, "C vs the flat recording");
            }
            double *yb = calloc(NPTS * m + 1, sizeof *yb);
            cr_assert(yb != NULL);
            cr_assert_eq(fb(NPTS, F->X[i], yb, w), 0);
            for (size_t p = 0; p < NPTS; p++)
                check_values(F, i, p, yb + p * m, y + p * m, "C batch vs C", 0.0);
            free(yb);
            free(w);
            free(y);
        }
        /* f32: close to the double values at the benign points (the
         * derivatives, with their cancellations, are only run) */
        char name[100];
        snprintf(name, sizeof name, "%s_f", F->name[i]);
        kern32_fn f32 = (kern32_fn)(uintptr_t)dlsym(h, name);
        cr_assert(f32 != NULL);
        float *xf = calloc(n + 1, sizeof *xf), *yf = calloc(m + 1, sizeof *yf);
        float *wf = calloc(work32[i] + 1, sizeof *wf);
        double *yd = calloc(m + 1, sizeof *yd);
        cr_assert(xf && yf && wf && yd);
        for (size_t p = 0; p < NRAND; p++) {
            for (size_t k = 0; k < n; k++)
                xf[k] = (float)F->X[i][p * n + k];
            cr_assert_eq(f32(xf, yf, wf), 0);
            for (size_t j = 0; j < m; j++)
                yd[j] = yf[j];
            if (i % NKIND == 0)
                check_values(F, i, p, yd, F->Y[i] + p * m, "C f32", 2e-3);
        }
        free(xf);
        free(yf);
        free(wf);
        free(yd);
    }
    dlclose(h);
    fixture_free(F);
}

Test(loops_codegen, c_gcc, .timeout = 300) { run_c("gcc"); }

/* tg_c_files in translation units of 3 statements (parts of 2): bodies in
 * the first unit with hidden external linkage, called from parts in the
 * others; all compiled and linked into one object. */
Test(loops_codegen, c_units, .timeout = 300)
{
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (!have_compiler(cc))
        cr_skip_test("no C compiler: the translation units are not compiled");
    fixture *F = fixture_new();
    char dir[] = "/tmp/tg_loops_units_XXXXXX", cmd[8192];
    cr_assert(mkdtemp(dir) != NULL);
    for (size_t i = 0; i < NK; i++) {
        tg_c_options o = { F->name[i], 0, 1, 2, 3 };
        TU_OK(tg_c_files(F->loop[i], &o, dir));
    }
    snprintf(cmd, sizeof cmd, "cd %s && ls *.c | wc -l > n.txt && %s -std=c11 -Wall -Wextra -pedantic "
             "-Werror -ffp-contract=off -O1 -fPIC -shared -o k.so *.c -lm 2> err.txt", dir, cc);
    int rc = system(cmd);
    char path[256];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    char *err = read_all(path);
    cr_assert(rc == 0, "%s failed on the units in %s:\n%.3000s", cc, dir, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/n.txt", dir);
    char *nu = read_all(path);
    cr_assert(nu && atoi(nu) > 2 * (int)NK, "expected several units per kernel, got %s files", nu ? nu : "?");
    free(nu);
    snprintf(path, sizeof path, "%s/k.so", dir);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h != NULL, "dlopen: %s", dlerror());
    for (size_t i = 0; i < NK; i++) {
        size_t n = F->nin[i], m = F->nout[i], wl;
        char *src = NULL;
        tg_c_options o = { F->name[i], 0, 1, 2, 3 };
        TU_OK(tg_c_source(F->loop[i], &o, &src, &wl));
        free(src);
        kern_fn f = (kern_fn)(uintptr_t)dlsym(h, F->name[i]);
        cr_assert(f != NULL);
        double *w = calloc(wl + 1, sizeof *w), *y = calloc(m + 1, sizeof *y);
        cr_assert(w && y);
        for (size_t p = 0; p < NPTS; p++) {
            cr_assert_eq(f(F->X[i] + p * n, y, w), 0);
            check_values(F, i, p, y, F->Y[i] + p * m, "C units", 0.0);
        }
        free(w);
        free(y);
    }
    dlclose(h);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
    fixture_free(F);
}
Test(loops_codegen, c_clang, .timeout = 300) { run_c("clang"); }

/* ============================================================== native */

static void cache_dir(char *buf, size_t len)
{
    const char *b = getenv("TG_BINARY_DIR");
    snprintf(buf, len, "%s/loops_codegen_cache", b && *b ? b : "/tmp");
}

Test(loops_codegen, native, .timeout = 300)
{
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (!have_compiler(cc))
        cr_skip_test("no C compiler (\"%s --version\" does not run): native kernels not tested", cc);
    fixture *F = fixture_new();
    char dir[4096];
    cache_dir(dir, sizeof dir);
    for (size_t i = 0; i < NK; i++) {
        size_t n = F->nin[i], m = F->nout[i];
        tg_compile_options_ex o = { { NULL, dir, 0 }, i == 0 ? TG_COMPILE_BATCH : 0 };
        tg_kernel *k = tg_compile_ex(F->loop[i], &o);
        cr_assert(k != NULL, "tg_compile_ex(%s): %s", F->name[i], tg_last_error());
        double *y = calloc(NPTS * m + 1, sizeof *y);
        cr_assert(y != NULL);
        for (size_t p = 0; p < NPTS; p++) {
            TU_OK(tg_kernel_eval(k, F->X[i] + p * n, y + p * m));
            check_values(F, i, p, y + p * m, F->Y[i] + p * m, "native kernel", 0.0);
        }
        TU_OK(tg_kernel_eval_batch(k, NPTS, F->X[i], y));
        for (size_t p = 0; p < NPTS; p++)
            check_values(F, i, p, y + p * m, F->Y[i] + p * m, "native batch", 0.0);
        tg_kernel_free(k);
        free(y);
    }
    fixture_free(F);
}

/* tg_tape_compile on a tape with loops: tg_eval routed to the compiled
 * kernel (bit for bit), the gradient tape (a loop too) compiled; tg_gradient
 * is routed once the numeric sweeps take loops (until then it refuses). */
Test(loops_codegen, tape_compile, .timeout = 300)
{
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (!have_compiler(cc))
        cr_skip_test("no C compiler: tg_tape_compile not tested");
    fixture *F = fixture_new();
    size_t i = (NCASES - 1) * NKIND;    /* w3 */
    cr_assert_str_eq(F->name[i], "w3");
    cr_assert_str_eq(F->name[i + 1], "w3_grad");
    char dir[4096];
    cache_dir(dir, sizeof dir);
    tg_compile_options o = { NULL, dir, 0 };
    tg_tape *t = F->loop[i];
    TU_OK(tg_tape_compile(t, TG_F | TG_GRAD, &o));
    size_t n = F->nin[i];
    double y, g[6], gw[6];
    for (size_t p = 0; p < NPTS; p++) {
        TU_OK(tg_eval(t, F->X[i] + p * n, &y));
        check_values(F, i, p, &y, F->Y[i] + p, "tg_eval routed to native code", 0.0);
        tg_status st = tg_gradient(t, F->X[i] + p * n, g);
        if (st == TG_ERR_UNSUPPORTED) {     /* said once: the route is not reached yet */
            if (p == 0)
                cr_log_info("tg_gradient of a tape with loops: %s (the route is not reached)",
                            tg_last_error());
            continue;
        }
        TU_OK(st);
        TU_OK(tg_eval(F->loop[i + 1], F->X[i] + p * n, gw));
        for (size_t j = 0; j < n; j++)
            cr_assert(tu_same_bits_nan(g[j], gw[j]), "routed gradient %zu: %.17g, gradient tape %.17g",
                      j, g[j], gw[j]);
    }
    fixture_free(F);
}

/* Out of memory at every allocation of tg_c_source and tg_rust_source of
 * looped tapes (nested loops, pieces, a gradient tape): TG_ERR_NOMEM and
 * nothing leaked (the sanitizer build checks), or the same text. */
static tg_status gen(const tg_tape *t, int rust, char **src)
{
    *src = NULL;
    return rust ? tg_rust_source(t, NULL, src, NULL) : tg_c_source(t, NULL, src, NULL);
}

Test(loops_codegen, out_of_memory, .timeout = 300)
{
    fixture *F = fixture_new();
    static const char *const which[] = { "nested", "pieces", "deep_vjp", "w3_grad" };
    for (size_t w = 0; w < sizeof which / sizeof *which; w++) {
        size_t i = 0;
        while (i < NK && strcmp(F->name[i], which[w]) != 0)
            i++;
        cr_assert(i < NK, "no kernel %s", which[w]);
        for (int rust = 0; rust < 2; rust++) {
            char *want = NULL, *got = NULL;
            mem_fail_after(-1);
            TU_OK(gen(F->loop[i], rust, &want));
            long count = mem_fail_after(-1), nomem = 0;
            for (long k = 0; k < count; k++) {
                mem_fail_after(k);
                tg_status st = gen(F->loop[i], rust, &got);
                mem_fail_after(-1);
                cr_assert(st == TG_OK || st == TG_ERR_NOMEM, "%s %s, allocation %ld of %ld failing: %s",
                          which[w], rust ? "Rust" : "C", k + 1, count, tg_status_str(st));
                if (st == TG_OK)
                    cr_assert_str_eq(got, want);
                nomem += st == TG_ERR_NOMEM;
                free(got);
            }
            cr_assert_gt(nomem, 0);
            cr_log_info("%s %s: %ld allocations swept", which[w], rust ? "Rust" : "C", count);
            free(want);
        }
    }
    fixture_free(F);
}

/* ================================================== size vs trip count */

/* s with every run of digits replaced by one '#'. */
static char *squash_digits(const char *s)
{
    char *o = malloc(strlen(s) + 1), *q = o;
    cr_assert(o != NULL);
    for (const char *p = s; *p;) {
        if (*p >= '0' && *p <= '9') {
            *q++ = '#';
            while (*p >= '0' && *p <= '9')
                p++;
        } else {
            *q++ = *p++;
        }
    }
    *q = '\0';
    return o;
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(loops_codegen, size_independent_of_trip_count)
{
    static const case_fn fs[] = { case_lorenz, case_chain };
    static const char *const names[] = { "lorenz", "chain" };
    for (size_t c = 0; c < 2; c++) {
        char *rs[2], *cs[2];
        size_t steps[2] = { 10, 100000 };
        for (int v = 0; v < 2; v++) {
            g_flat = false;
            tg_tape *t = fs[c](steps[v]);
            TU_TAPE_OK(t);
            tg_rust_options ro = { NULL, NULL, 0, 0 };
            TU_OK(tg_rust_source(t, &ro, &rs[v], NULL));
            tg_c_options co = { NULL, 0, 1, 0, 0 };
            TU_OK(tg_c_source(t, &co, &cs[v], NULL));
            tg_tape_free(t);
        }
        cr_log_info("%s: Rust %zu / %zu bytes, C %zu / %zu bytes at 10 / 100000 steps", names[c],
                    strlen(rs[0]), strlen(rs[1]), strlen(cs[0]), strlen(cs[1]));
        for (int l = 0; l < 2; l++) {
            char **s = l ? cs : rs;
            char *a = squash_digits(s[0]), *b = squash_digits(s[1]);
            cr_expect(strcmp(a, b) == 0, "%s: the %s sources at 10 and 100000 steps differ in more "
                      "than their numbers (%zu vs %zu bytes)", names[c], l ? "C" : "Rust",
                      strlen(s[0]), strlen(s[1]));
            size_t d = strlen(s[1]) - strlen(s[0]);
            cr_expect(d < 400, "%s: %s source grows by %zu bytes", names[c], l ? "C" : "Rust", d);
            free(a);
            free(b);
        }
        cr_expect(strstr(rs[1], "for k_ in 0..100000usize") != NULL, "no Rust loop over the steps");
        cr_expect(strstr(cs[1], "k_ < 100000;") != NULL, "no C loop over the steps");
        for (int v = 0; v < 2; v++) {
            free(rs[v]);
            free(cs[v]);
        }
    }
    /* one body for two loops: one function */
    g_flat = false;
    tg_tape *t = case_shared(0);
    TU_TAPE_OK(t);
    char *r = NULL, *cs = NULL;
    TU_OK(tg_rust_source(t, NULL, &r, NULL));
    TU_OK(tg_c_source(t, NULL, &cs, NULL));
    cr_expect_eq(count_of(r, "fn shared_l0("), 1, "Rust: the shared body is not emitted exactly once");
    cr_expect_eq(count_of(r, "fn shared_l1("), 0);
    cr_expect_eq(count_of(cs, "\nshared_l0("), 1, "C: the shared body is not emitted exactly once");
    cr_expect_eq(count_of(r, "shared_l0("), 3, "Rust: two calls and one definition expected");
    free(r);
    free(cs);
    tg_tape_free(t);
}

/* ================================================================ Rust */

/* snprintf for paths and commands (truncation is checked, not warned on). */
static void fmtp(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmtp(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < len, "path or command too long");
}

static void mkdirs(const char *path)
{
    char buf[4096];
    fmtp(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0777);
            *p = '/';
        }
    mkdir(buf, 0777);
}

static void write_text(const char *dir, const char *rel, const char *text)
{
    char path[4600];
    fmtp(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdirs(path);
    *slash = '/';
    char *old = read_all(path);
    bool same = old && strcmp(old, text) == 0;  /* unchanged: cargo need not rebuild */
    free(old);
    if (same)
        return;
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "cannot write %s", path);
    cr_assert(fputs(text, f) >= 0);
    cr_assert(fclose(f) == 0);
}

static bool find_cargo(char *out, size_t len)
{
    const char *env = getenv("TG_CARGO");
    const char *home = getenv("HOME");
    char cand[3][4096];
    int nc = 0;
    if (env && *env)
        fmtp(cand[nc++], sizeof cand[0], "%s", env);
    FILE *p = popen("command -v cargo 2>/dev/null", "r");
    if (p) {
        if (fgets(cand[nc], sizeof cand[0], p)) {
            cand[nc][strcspn(cand[nc], "\n")] = '\0';
            nc++;
        }
        pclose(p);
    }
    if (home && *home)
        fmtp(cand[nc++], sizeof cand[0], "%s/.cargo/bin/cargo", home);
    for (int i = 0; i < nc; i++) {
        if (!cand[i][0] || strchr(cand[i], '\'') || access(cand[i], X_OK) != 0)
            continue;
        char cmd[4200];
        fmtp(cmd, sizeof cmd, "'%s' --version >/dev/null 2>&1", cand[i]);
        if (system(cmd) == 0) {
            fmtp(out, len, "%s", cand[i]);
            return true;
        }
    }
    return false;
}

static const char CARGO_CONFIG[] = "[source.crates-io]\nreplace-with = \"debian\"\n"
                                   "[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n"
                                   "[net]\noffline = true\n";

/* src/bin/run.rs: "kernel x..." lines (f64 bit patterns in hex) in,
 * "y..." lines out. */
static char *runner(const fixture *F, const char *crate, bool f32)
{
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    cr_assert(s != NULL);
#define PUT(...) do { len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__); cr_assert(len < cap); } while (0)
    PUT("use std::io::{self, BufRead, Write};\nuse %s::*;\ntype T = %s;\n\n"
        "fn split<'a>(x: &'a [T], spec: &[(&str, usize)]) -> Vec<&'a [T]> {\n"
        "    let mut v = Vec::new();\n    let mut rest = x;\n"
        "    for &(_, n) in spec {\n        let (a, b) = rest.split_at(n);\n        v.push(a);\n        rest = b;\n    }\n    v\n}\n\n"
        "fn split_mut<'a>(y: &'a mut [T], spec: &[(&str, usize)]) -> Vec<&'a mut [T]> {\n"
        "    let mut v = Vec::new();\n    let mut rest = y;\n"
        "    for &(_, n) in spec {\n        let (a, b) = std::mem::take(&mut rest).split_at_mut(n);\n"
        "        v.push(a);\n        rest = b;\n    }\n    v\n}\n\n"
        "fn total(spec: &[(&str, usize)]) -> usize {\n    spec.iter().map(|b| b.1).sum()\n}\n\n"
        "fn call(name: &str, x: &[T]) -> Vec<T> {\n    match name {\n", crate, f32 ? "f32" : "f64");
    for (size_t i = 0; i < NK; i++) {
        const tg_tape *t = F->loop[i];
        char full[128], U[128];     /* the builder names kernels <crate>_<name> */
        fmtp(full, sizeof full, "%s_%s", crate, F->name[i]);
        size_t k = 0;
        for (; full[k]; k++)
            U[k] = (char)(full[k] - 32 * (full[k] >= 'a' && full[k] <= 'z'));
        U[k] = '\0';
        PUT("        \"%s\" => {\n            let i = split(x, INPUTS_%s);\n"
            "            let mut y = vec![0.0 as T; total(OUTPUTS_%s)];\n"
            "            let mut work = vec![0.0 as T; WORK_LEN_%s];\n"
            "            {\n                let o = split_mut(&mut y, OUTPUTS_%s);\n"
            "                let mut o = o.into_iter();\n                %s(", F->name[i], U, U, U, U,
            full);
        for (size_t b = 0; b < tg_num_input_blocks(t); b++)
            PUT("i[%zu], ", b);
        for (size_t b = 0; b < tg_num_output_blocks(t); b++)
            PUT("o.next().unwrap(), ");
        PUT("&mut work).unwrap();\n            }\n            y\n        }\n");
    }
    PUT("        _ => panic!(\"unknown kernel {}\", name),\n    }\n}\n\n"
        "fn main() {\n    let stdin = io::stdin();\n    let mut out = io::BufWriter::new(io::stdout().lock());\n"
        "    for line in stdin.lock().lines() {\n        let line = line.unwrap();\n"
        "        let mut tok = line.split_whitespace();\n        let name = tok.next().unwrap();\n"
        "        let x: Vec<T> = tok.map(|t| f64::from_bits(u64::from_str_radix(t, 16).unwrap()) as T).collect();\n"
        "        for v in call(name, &x) {\n            write!(out, \"{:016x} \", (v as f64).to_bits()).unwrap();\n        }\n"
        "        writeln!(out).unwrap();\n    }\n}\n");
#undef PUT
    return s;
}

static void run_rust(bool f32, bool no_std)
{
    char cargo[4096];
    if (!find_cargo(cargo, sizeof cargo))
        cr_skip_test("cargo not found ($TG_CARGO, PATH, $HOME/.cargo/bin): the generated Rust is "
                     "NOT compiled or run");
    fixture *F = fixture_new();
    char crate[64], root[4096], dir[4200], target[4200];
    fmtp(crate, sizeof crate, "tgloops_%s_%s", f32 ? "f32" : "f64", no_std ? "nostd" : "std");
    const char *b = getenv("TG_BINARY_DIR");
    fmtp(root, sizeof root, "%s/rust_test", b && *b ? b : "/tmp");
    fmtp(dir, sizeof dir, "%s/crates/%s", root, crate);
    fmtp(target, sizeof target, "%s/target", root);
    mkdirs(dir);
    mkdirs(target);

    tg_rust_options o = { crate, NULL, f32, no_std };
    tg_rust_builder *rb = tg_rust_builder_new(&o);
    cr_assert(rb != NULL);
    for (size_t i = 0; i < NK; i++)
        cr_assert_eq(tg_rust_builder_add(rb, F->loop[i], F->name[i]), TG_OK, "%s: %s",
                     F->name[i], tg_rust_builder_error(rb));
    char stage[4300];
    fmtp(stage, sizeof stage, "%s/gen/%s", root, crate);
    cr_assert_eq(tg_rust_builder_write(rb, stage), TG_OK, "%s", tg_rust_builder_error(rb));
    tg_rust_builder_free(rb);
    static const char *const files[] = { "Cargo.toml", "src/lib.rs", "tests/kernels.rs" };
    for (size_t i = 0; i < 3; i++) {
        char path[4600];
        fmtp(path, sizeof path, "%s/%s", stage, files[i]);
        char *text = read_all(path);
        cr_assert(text != NULL, "missing %s", path);
        write_text(dir, files[i], text);
        free(text);
    }
    write_text(dir, ".cargo/config.toml", CARGO_CONFIG);
    char *run = runner(F, crate, f32);
    write_text(dir, "src/bin/run.rs", run);
    free(run);

    char cmd[16384], log[4400];
    fmtp(log, sizeof log, "%s/%s.log", root, crate);
    char bindir[4096];
    fmtp(bindir, sizeof bindir, "%s", cargo);
    *strrchr(bindir, '/') = '\0';
    fmtp(cmd, sizeof cmd, "cd '%s' && PATH='%s':\"$PATH\" CARGO_TARGET_DIR='%s' RUSTFLAGS='-D warnings' "
             "CARGO_TERM_COLOR=never '%s' %s --offline >'%s' 2>&1", dir, bindir, target, cargo,
             "test", log);
    time_t t0 = time(NULL);
    int rc = system(cmd);
    cr_log_info("cargo test of %s: %lds", crate, (long)(time(NULL) - t0));
    if (rc != 0) {
        char *text = read_all(log);
        size_t n = text ? strlen(text) : 0;
        cr_assert_fail("cargo test of the generated crate %s failed (RUSTFLAGS=-D warnings); log "
                       "%s:\n%s", dir, log, text ? text + (n > 6000 ? n - 6000 : 0) : "");
    }
    /* run on the points */
    char in[4400], out[4400];
    fmtp(in, sizeof in, "%s/%s_points.txt", root, crate);
    fmtp(out, sizeof out, "%s/%s_values.txt", root, crate);
    FILE *f = fopen(in, "w");
    cr_assert(f != NULL);
    for (size_t i = 0; i < NK; i++)
        for (size_t p = 0; p < NPTS; p++) {
            fprintf(f, "%s", F->name[i]);
            for (size_t k = 0; k < F->nin[i]; k++) {
                double v = F->X[i][p * F->nin[i] + k];
                fprintf(f, " %016" PRIx64, tu_bits(f32 ? (double)(float)v : v));
            }
            fprintf(f, "\n");
        }
    cr_assert(fclose(f) == 0);
    fmtp(cmd, sizeof cmd, "'%s/debug/run' <'%s' >'%s'", target, in, out);
    cr_assert(system(cmd) == 0, "the runner failed");
    char *text = read_all(out);
    cr_assert(text != NULL);
    char *line = text;
    for (size_t i = 0; i < NK; i++) {
        size_t m = F->nout[i];
        double *y = calloc(m + 1, sizeof *y);
        for (size_t p = 0; p < NPTS; p++) {
            char *nl = strchr(line, '\n');
            cr_assert(nl != NULL, "runner output ends early");
            *nl = '\0';
            char *save = NULL, *tok = strtok_r(line, " ", &save);
            for (size_t j = 0; j < m; j++, tok = strtok_r(NULL, " ", &save)) {
                cr_assert(tok != NULL, "%s: too few values", F->name[i]);
                y[j] = tu_from_bits(strtoull(tok, NULL, 16));
            }
            line = nl + 1;
            if (f32) {
                if (p < NRAND && i % NKIND == 0)
                    check_values(F, i, p, y, F->Y[i] + p * m, "Rust f32", 2e-3);
                continue;
            }
            check_values(F, i, p, y, F->Y[i] + p * m, "Rust", 1e-13);
        }
        free(y);
    }
    free(text);
    fixture_free(F);
}

Test(loops_codegen, rust_f64_std, .timeout = 600) { run_rust(false, false); }
Test(loops_codegen, rust_f32_no_std, .timeout = 600) { run_rust(true, true); }
