/* bench/src/userfn.c -- tguserfn: the cost of a gradient through a user
 * function (tg_call_func, issue 13), against the target
 *   T(tg_gradient through the call) <= 1.2 x (T(hand-written eval + vjp of
 *   the function) + T(tg_gradient of the rest of the tape)).
 * "The rest" is the same tape with the call's outputs made inputs (so its
 * sweep is the rest's sweep, the call cut out), lazy derivative tapes off.  Two workloads:
 *   interp: one call, a 1-D interpolation table (64 knots, binary search)
 *           applied to n = 1000 scalars (1000 -> 1000), inside
 *           t = 0.5 a + 0.1 before and f = sum y^2 after;
 *   rot:    n = 500 calls of a small function (2 -> 2, polar to cartesian)
 *           on pairs, f = sum y0 y1: the per-call overhead.
 * Medians over interleaved rounds, with the range; one thread. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tapegen.h>

#define KNOTS 64

/* The hand-written path calls the very functions the library calls back,
 * not copies the compiler could merge (rot's eval and vjp would share one
 * sincos when inlined together, which no callback interface can offer). */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
#define ROUNDS 15

static double knot_x[KNOTS], knot_y[KNOTS];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* the segment of t (clamped to the table) */
static int seg(double t)
{
    int lo = 0, hi = KNOTS - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (knot_x[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

typedef struct { size_t n; } ictx;

NOINLINE static void interp_eval(void *c, const double *x, double *y)
{
    size_t n = ((const ictx *)c)->n;
    for (size_t i = 0; i < n; i++) {
        int s = seg(x[i]);
        double w = (x[i] - knot_x[s]) / (knot_x[s + 1] - knot_x[s]);
        y[i] = knot_y[s] + w * (knot_y[s + 1] - knot_y[s]);
    }
}

NOINLINE static void interp_jvp(void *c, const double *x, const double *dx, double *dy)
{
    size_t n = ((const ictx *)c)->n;
    for (size_t i = 0; i < n; i++) {
        int s = seg(x[i]);
        dy[i] = dx[i] * (knot_y[s + 1] - knot_y[s]) / (knot_x[s + 1] - knot_x[s]);
    }
}

NOINLINE static void interp_vjp(void *c, const double *x, const double *yb, double *xb)
{
    interp_jvp(c, x, yb, xb);       /* diagonal Jacobian */
}

NOINLINE static void rot_eval(void *c, const double *x, double *y)
{
    (void)c;
    y[0] = x[0] * cos(x[1]);
    y[1] = x[0] * sin(x[1]);
}

NOINLINE static void rot_jvp(void *c, const double *x, const double *dx, double *dy)
{
    (void)c;
    double co = cos(x[1]), si = sin(x[1]);
    dy[0] = co * dx[0] - x[0] * si * dx[1];
    dy[1] = si * dx[0] + x[0] * co * dx[1];
}

NOINLINE static void rot_vjp(void *c, const double *x, const double *u, double *xb)
{
    (void)c;
    double co = cos(x[1]), si = sin(x[1]);
    xb[0] = co * u[0] + si * u[1];
    xb[1] = -x[0] * si * u[0] + x[0] * co * u[1];
}

static void ok(tg_status s, const char *what)
{
    if (s != TG_OK) {
        fprintf(stderr, "tguserfn: %s: %s: %s\n", what, tg_status_str(s), tg_last_error());
        exit(1);
    }
}

typedef struct workload {
    const char *name;
    tg_tape *full, *rest;       /* with the call(s); the call outputs as inputs */
    size_t n, nrest;            /* inputs of full and of rest */
    void (*hand)(const double *x, double *scratch, size_t n);
    size_t scratch;
} workload;

static ictx IC = { 1000 };

/* interp: hand-written value + vjp of the function, at t = 0.5 a + 0.1 */
static void hand_interp(const double *a, double *s, size_t n)
{
    double *t = s, *y = s + n, *yb = s + 2 * n, *tb = s + 3 * n;
    for (size_t i = 0; i < n; i++)
        t[i] = 0.5 * a[i] + 0.1;
    interp_eval(&IC, t, y);
    for (size_t i = 0; i < n; i++)
        yb[i] = 2 * y[i];
    interp_vjp(&IC, t, yb, tb);
}

static void hand_rot(const double *x, double *s, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        double y[2], u[2], xb[2];
        rot_eval(NULL, x + 2 * i, y);
        u[0] = y[1];
        u[1] = y[0];
        rot_vjp(NULL, x + 2 * i, u, xb);
        s[2 * i] = xb[0];
        s[2 * i + 1] = xb[1];
    }
}

/* A recorded tape of w: pass 0 the full function, pass 1 the rest of it
 * (without the call).  Both sweep: a lazy gradient tape would replace the
 * rest's sweep after 32 calls, and tapes with calls always sweep. */
static void keep_tape(workload *w, tg_tape *t, int pass)
{
    ok(tg_tape_status(t), tg_tape_error(t));
    ok(tg_tape_set_lazy(t, 0), "set_lazy");
    if (pass)
        w->rest = t;
    else
        w->full = t;
}

static void build_interp(workload *w, const tg_funcs *fs)
{
    size_t n = IC.n;
    for (int pass = 0; pass < 2; pass++) {
        tg_tape *t = tg_tape_new(pass ? "interp_rest" : "interp");
        tg_var *a = malloc(n * sizeof *a), *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        tg_input_vec(t, "a", n, a);
        if (pass)
            tg_input_vec(t, "y", n, y);
        for (size_t i = 0; i < n; i++)
            x[i] = tg_add(tg_mul(a[i], 0.5), 0.1);
        if (!pass)
            tg_call_func(t, fs, "interp", x, y);
        tg_var f = tg_norm2sq(n, y);
        if (pass)   /* keep the rest's t = 0.5 a + 0.1 live */
            f = tg_add(f, tg_mul(0.0, tg_sum(n, x)));
        tg_output(t, "f", f);
        keep_tape(w, t, pass);
        free(a);
        free(x);
        free(y);
    }
    w->name = "interp (1 call, 1000 -> 1000)";
    w->n = n;
    w->nrest = 2 * n;
    w->hand = hand_interp;
    w->scratch = 4 * n;
}

static void build_rot(workload *w, const tg_funcs *fs)
{
    size_t n = 1000;
    for (int pass = 0; pass < 2; pass++) {
        tg_tape *t = tg_tape_new(pass ? "rot_rest" : "rot");
        tg_var *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *p = malloc(n / 2 * sizeof *p);
        tg_input_vec(t, "x", n, x);
        if (pass)
            tg_input_vec(t, "y", n, y);
        for (size_t i = 0; i < n / 2 && !pass; i++)
            tg_call_func(t, fs, "rot", x + 2 * i, y + 2 * i);
        for (size_t i = 0; i < n / 2; i++)
            p[i] = tg_mul(y[2 * i], y[2 * i + 1]);
        tg_var f = tg_sum(n / 2, p);
        if (pass)
            f = tg_add(f, tg_mul(0.0, tg_sum(n, x)));
        tg_output(t, "f", f);
        keep_tape(w, t, pass);
        free(x);
        free(y);
        free(p);
    }
    w->name = "rot (500 calls, 2 -> 2)";
    w->n = n;
    w->nrest = 2 * n;
    w->hand = hand_rot;
    w->scratch = n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* seconds per call of kind k (0 full gradient, 1 rest gradient, 2 hand) */
static double time_one(const workload *w, int k, const double *x, double *out, double *s)
{
    int reps = 0;
    double t0 = now(), t;
    do {
        for (int r = 0; r < 20; r++) {
            if (k == 0)
                ok(tg_gradient(w->full, x, out), "gradient");
            else if (k == 1)
                ok(tg_gradient(w->rest, x, out), "gradient of the rest");
            else
                w->hand(x, s, w->n);
        }
        reps += 20;
        t = now() - t0;
    } while (t < 0.02);
    return t / reps;
}

static void run(workload *w)
{
    double *x = malloc(w->nrest * sizeof *x), *out = malloc(w->nrest * sizeof *out);
    double *s = malloc(w->scratch * sizeof *s);
    for (size_t i = 0; i < w->nrest; i++)
        x[i] = -1.5 + 3.0 * (double)((i * 7919) % 1000) / 1000.0;
    double tm[3][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)        /* interleaved rounds */
        for (int k = 0; k < 3; k++)
            tm[k][r] = time_one(w, k, x, out, s);
    double med[3];
    for (int k = 0; k < 3; k++) {
        qsort(tm[k], ROUNDS, sizeof tm[k][0], cmp);
        med[k] = tm[k][ROUNDS / 2];
    }
    double budget = med[2] + med[1];
    printf("%-32s gradient %8.2f us [%.2f-%.2f]  hand-written f+vjp %8.2f us [%.2f-%.2f]  "
           "rest %8.2f us [%.2f-%.2f]\n%-32s ratio gradient / (hand + rest) = %.3f (target <= 1.2)"
           "; call part (gradient - rest) / hand = %.3f\n",
           w->name, 1e6 * med[0], 1e6 * tm[0][0], 1e6 * tm[0][ROUNDS - 1], 1e6 * med[2],
           1e6 * tm[2][0], 1e6 * tm[2][ROUNDS - 1], 1e6 * med[1], 1e6 * tm[1][0],
           1e6 * tm[1][ROUNDS - 1], "", med[0] / budget, (med[0] - med[1]) / med[2]);
    free(x);
    free(out);
    free(s);
}

int main(void)
{
    for (int k = 0; k < KNOTS; k++) {
        knot_x[k] = -2.0 + 4.0 * k / (KNOTS - 1);
        knot_y[k] = sin(3.0 * knot_x[k]) + 0.1 * k;
    }
    tg_funcs *fs = tg_funcs_new();
    tg_func_def di = { .name = "interp", .n = IC.n, .k = IC.n, .eval = interp_eval,
                       .jvp = interp_jvp, .vjp = interp_vjp, .ctx = &IC };
    tg_func_def dr = { .name = "rot", .n = 2, .k = 2, .eval = rot_eval, .jvp = rot_jvp,
                       .vjp = rot_vjp };
    ok(tg_func_define(fs, &di), "define interp");
    ok(tg_func_define(fs, &dr), "define rot");
    workload w[2];
    build_interp(&w[0], fs);
    build_rot(&w[1], fs);
    printf("tguserfn: medians of %d interleaved rounds [min-max], one thread\n", ROUNDS);
    for (int i = 0; i < 2; i++) {
        run(&w[i]);
        tg_tape_free(w[i].full);
        tg_tape_free(w[i].rest);
    }
    tg_funcs_free(fs);
    return 0;
}
