/* tests/userfn.h -- the user functions of the tests (tg_call_func), hand
 * written in C with hand-written derivatives, and the same functions
 * recorded from tapegen's own ops (the independent oracle).
 *
 *   rot(a, b)            = (a cos b, a sin b)                        2 -> 2
 *   rot_jvp(a, b, da, db) = J(a, b) (da, db)                          4 -> 2
 *   rot_vjp(a, b, u0, u1) = J(a, b)^T (u0, u1)                        4 -> 2
 *   rot_vjp_jvp(z, dz)   = d rot_vjp(z) dz (z, dz of 4)               8 -> 2
 *   rot_jvp_vjp(z, w)    = w^T d rot_jvp (z)    (z of 4, w of 2)      6 -> 4
 * with J = [[cos b, -a sin b], [sin b, a cos b]].  rot names rot_jvp and
 * rot_vjp as its derivative functions (so derivative tapes work);
 * rot_vjp names rot_vjp_jvp (HVP tapes: tangent over adjoint), rot_jvp
 * names rot_jvp_vjp. */
#ifndef TAPEGEN_USERFN_H
#define TAPEGEN_USERFN_H

#include <math.h>
#include <stdatomic.h>

#include "testutil.h"

/* calls of the callbacks (all functions), for the "skipped for zero
 * directions" checks; relaxed: only read when no sweep runs */
static atomic_long ufn_calls[4];    /* eval, jvp, vjp, hvp */

static void ufn_rot_eval(void *ctx, const double *x, double *y)
{
    (void)ctx;
    atomic_fetch_add_explicit(&ufn_calls[0], 1, memory_order_relaxed);
    y[0] = x[0] * cos(x[1]);
    y[1] = x[0] * sin(x[1]);
}

static void ufn_rot_jvp(void *ctx, const double *x, const double *dx, double *dy)
{
    (void)ctx;
    atomic_fetch_add_explicit(&ufn_calls[1], 1, memory_order_relaxed);
    double c = cos(x[1]), s = sin(x[1]);
    dy[0] = c * dx[0] - x[0] * s * dx[1];
    dy[1] = s * dx[0] + x[0] * c * dx[1];
}

static void ufn_rot_vjp(void *ctx, const double *x, const double *u, double *xb)
{
    (void)ctx;
    atomic_fetch_add_explicit(&ufn_calls[2], 1, memory_order_relaxed);
    double c = cos(x[1]), s = sin(x[1]);
    xb[0] = c * u[0] + s * u[1];
    xb[1] = -x[0] * s * u[0] + x[0] * c * u[1];
}

static void ufn_rot_hvp(void *ctx, const double *x, const double *u, const double *v, double *hv)
{
    (void)ctx;
    atomic_fetch_add_explicit(&ufn_calls[3], 1, memory_order_relaxed);
    double c = cos(x[1]), s = sin(x[1]), g = -s * u[0] + c * u[1];
    hv[0] = g * v[1];
    hv[1] = g * v[0] + (-x[0] * c * u[0] - x[0] * s * u[1]) * v[1];
}

/* rot_jvp: z = (a, b, da, db) -> J (da, db) */
static void ufn_rotjvp_eval(void *ctx, const double *z, double *y)
{
    ufn_rot_jvp(ctx, z, z + 2, y);
}

static void ufn_rotjvp_jvp(void *ctx, const double *z, const double *t, double *dy)
{
    (void)ctx;
    double a = z[0], c = cos(z[1]), s = sin(z[1]), da = z[2], db = z[3];
    dy[0] = -s * t[1] * da + c * t[2] - t[0] * s * db - a * c * t[1] * db - a * s * t[3];
    dy[1] = c * t[1] * da + s * t[2] + t[0] * c * db - a * s * t[1] * db + a * c * t[3];
}

static void ufn_rotjvp_vjp(void *ctx, const double *z, const double *w, double *zb)
{
    (void)ctx;
    double a = z[0], c = cos(z[1]), s = sin(z[1]), da = z[2], db = z[3];
    zb[0] = -s * db * w[0] + c * db * w[1];
    zb[1] = (-s * da - a * c * db) * w[0] + (c * da - a * s * db) * w[1];
    zb[2] = c * w[0] + s * w[1];
    zb[3] = -a * s * w[0] + a * c * w[1];
}

/* rot_jvp_vjp: (z[4], w[2]) -> zbar[4] */
static void ufn_rotjvpvjp_eval(void *ctx, const double *zw, double *zb)
{
    ufn_rotjvp_vjp(ctx, zw, zw + 4, zb);
}

/* rot_vjp: z = (a, b, u0, u1) -> J^T u */
static void ufn_rotvjp_eval(void *ctx, const double *z, double *y)
{
    ufn_rot_vjp(ctx, z, z + 2, y);
}

static void ufn_rotvjp_jvp(void *ctx, const double *z, const double *t, double *dy)
{
    (void)ctx;
    double a = z[0], c = cos(z[1]), s = sin(z[1]), u0 = z[2], u1 = z[3];
    dy[0] = -s * t[1] * u0 + c * t[2] + c * t[1] * u1 + s * t[3];
    dy[1] = -t[0] * s * u0 - a * c * t[1] * u0 - a * s * t[2] + t[0] * c * u1
          - a * s * t[1] * u1 + a * c * t[3];
}

static void ufn_rotvjp_vjp(void *ctx, const double *z, const double *w, double *zb)
{
    (void)ctx;
    double a = z[0], c = cos(z[1]), s = sin(z[1]), u0 = z[2], u1 = z[3];
    zb[0] = (-s * u0 + c * u1) * w[1];
    zb[1] = (-s * u0 + c * u1) * w[0] + (-a * c * u0 - a * s * u1) * w[1];
    zb[2] = c * w[0] - a * s * w[1];
    zb[3] = s * w[0] + a * c * w[1];
}

/* rot_vjp_jvp: (z[4], dz[4]) -> d rot_vjp */
static void ufn_rotvjpjvp_eval(void *ctx, const double *zt, double *y)
{
    ufn_rotvjp_jvp(ctx, zt, zt + 4, y);
}

/* Which variant of rot to define. */
enum {
    UFN_FULL = 0,       /* eval, jvp, vjp, hvp, derivative functions */
    UFN_NUMERIC_HVP,    /* no hvp, hvp_numeric = 1 */
    UFN_NO_HVP,         /* no hvp, no numeric second order */
    UFN_NO_JVP,         /* no jvp callback */
    UFN_NO_DERIV_FUNCS  /* no jvp_func / vjp_func */
};

/* Defines rot (as `variant`) and its derivative functions in fs. */
TU_UNUSED static void ufn_define(tg_funcs *fs, int variant)
{
    tg_func_def d = { 0 };
    d.name = "rot";
    d.n = 2;
    d.k = 2;
    d.eval = ufn_rot_eval;
    d.jvp = variant == UFN_NO_JVP ? NULL : ufn_rot_jvp;
    d.vjp = ufn_rot_vjp;
    d.hvp = variant == UFN_FULL || variant == UFN_NO_JVP ? ufn_rot_hvp : NULL;
    d.hvp_numeric = variant == UFN_NUMERIC_HVP;
    d.jvp_func = variant == UFN_NO_DERIV_FUNCS ? NULL : "rot_jvp";
    d.vjp_func = variant == UFN_NO_DERIV_FUNCS ? NULL : "rot_vjp";
    TU_OK(tg_func_define(fs, &d));
    tg_func_def j = { .name = "rot_jvp", .n = 4, .k = 2, .eval = ufn_rotjvp_eval,
                      .jvp = ufn_rotjvp_jvp, .vjp = ufn_rotjvp_vjp, .vjp_func = "rot_jvp_vjp" };
    TU_OK(tg_func_define(fs, &j));
    tg_func_def jv = { .name = "rot_jvp_vjp", .n = 6, .k = 4, .eval = ufn_rotjvpvjp_eval };
    TU_OK(tg_func_define(fs, &jv));
    tg_func_def v = { .name = "rot_vjp", .n = 4, .k = 2, .eval = ufn_rotvjp_eval,
                      .jvp = ufn_rotvjp_jvp, .vjp = ufn_rotvjp_vjp, .jvp_func = "rot_vjp_jvp" };
    TU_OK(tg_func_define(fs, &v));
    tg_func_def vj = { .name = "rot_vjp_jvp", .n = 8, .k = 2, .eval = ufn_rotvjpjvp_eval };
    TU_OK(tg_func_define(fs, &vj));
}

TU_UNUSED static tg_funcs *ufn_new(int variant)
{
    tg_funcs *fs = tg_funcs_new();
    cr_assert(fs != NULL, "out of memory");
    ufn_define(fs, variant);
    return fs;
}

/* y = rot(a, b): by the user function (fs != NULL) or by ops. */
TU_UNUSED static void ufn_rot(const tg_funcs *fs, tg_tape *t, tg_var a, tg_var b, tg_var *y)
{
    if (fs) {
        tg_var x[2] = { a, b };
        tg_call_func(t, fs, "rot", x, y);
    } else {
        y[0] = tg_mul(a, tg_cos(b));
        y[1] = tg_mul(a, tg_sin(b));
    }
}

/* The test tapes, inputs x(3), p = x0 x1 + 1:
 *   (y0, y1) = rot(p, x2), (z0, z1) = rot(y1, x0)      (two calls)
 * scalar: f = y0 z1 + sin(y1) + z0 z0 x2
 * vector: (y0, y1, z0, z1 x1, x0)                       */
TU_UNUSED static tg_tape *ufn_tape(const tg_funcs *fs, int scalar)
{
    tg_tape *t = tu_tape(scalar ? "uf" : "ufv", 0);
    tg_var x[3], y[2], z[2];
    tg_input_vec(t, "x", 3, x);
    ufn_rot(fs, t, tg_add(tg_mul(x[0], x[1]), 1.0), x[2], y);
    ufn_rot(fs, t, y[1], x[0], z);
    if (scalar) {
        tg_var f = tg_add(tg_add(tg_mul(y[0], z[1]), tg_sin(y[1])),
                          tg_mul(tg_mul(z[0], z[0]), x[2]));
        tg_output(t, "f", f);
    } else {
        tg_var out[5] = { y[0], y[1], z[0], tg_mul(z[1], x[1]), x[0] };
        tg_output_vec(t, "y", 5, out);
    }
    TU_TAPE_OK(t);
    return t;
}

#endif
