/* bench/src/tgrec.c -- tapegen recordings of the workloads. */
#include "tgrec.h"

#include <stdlib.h>

/* The inputs of a recording: plain, or at a point x0 (TGREC_AT). */
static void
inputs(tg_tape *t, unsigned flags, const char *name, size_t n, const double *x0, tg_var *x)
{
    if (flags & TGREC_AT)
        tg_input_vec_at(t, name, n, x0, x);
    else
        tg_input_vec(t, name, n, x);
}

tg_tape *
tgrec_rosenbrock(size_t n, unsigned flags)
{
    tg_tape *t = tg_tape_new_ex("rosenbrock", flags);
    tg_var *x = malloc(n * sizeof *x);
    double *x0 = malloc(n * sizeof *x0);
    if (!t || !x || !x0 || n < 2) {
        free(x);
        free(x0);
        tg_tape_free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        x0[i] = i % 2 ? 1.2 : -0.8;
    inputs(t, flags, "x", n, x0, x);
    free(x0);
    tg_var acc = x[0];
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var d = tg_sub(x[i + 1], tg_mul(x[i], x[i]));
        tg_var e = tg_sub(1.0, x[i]);
        tg_var term = tg_add(tg_mul(tg_mul(100.0, d), d), tg_mul(e, e));
        acc = i == 0 ? term : tg_add(acc, term);
    }
    tg_output(t, "f", acc);
    free(x);
    return t;
}

tg_tape *
tgrec_mlp(const w2_data_t *d, unsigned flags)
{
    tg_tape *t = tg_tape_new_ex("mlp", flags);
    if (!t)
        return NULL;
    tg_var th[MLP_NP], h1[MLP_H], h2[MLP_H], loss = { NULL, TG_NIL };
    double th0[MLP_NP];
    for (int i = 0; i < MLP_NP; i++)
        th0[i] = 0.1 * (double)((i * 7) % 11) - 0.5;
    inputs(t, flags, "theta", MLP_NP, th0, th);
    for (int s = 0; s < MLP_S; s++) {
        const double *in = d->in[s];
        for (int i = 0; i < MLP_H; i++) {
            tg_var a = th[MLP_B1 + i];
            for (int j = 0; j < MLP_IN; j++)
                a = tg_add(a, tg_mul(th[MLP_W1 + i * MLP_IN + j], in[j]));
            h1[i] = tg_tanh(a);
        }
        for (int i = 0; i < MLP_H; i++) {
            tg_var a = th[MLP_B2 + i];
            for (int j = 0; j < MLP_H; j++)
                a = tg_add(a, tg_mul(th[MLP_W2 + i * MLP_H + j], h1[j]));
            h2[i] = tg_tanh(a);
        }
        tg_var y = th[MLP_B3];
        for (int j = 0; j < MLP_H; j++)
            y = tg_add(y, tg_mul(th[MLP_W3 + j], h2[j]));
        tg_var e = tg_sub(y, d->t[s]);
        loss = s == 0 ? tg_mul(e, e) : tg_add(loss, tg_mul(e, e));
    }
    tg_output(t, "loss", tg_mul(loss, 1.0 / MLP_S));
    return t;
}

/* One RK4 step of the Lorenz system on (x, y, z) with parameters
 * (sig, rho, beta): the operations of workloads.c's rk4_step, in order.
 * Shared by the flat recording (called steps times) and the scan body
 * (called once). */
static void
lorenz_step(tg_var *x, tg_var *y, tg_var *z, tg_var sig, tg_var rho, tg_var beta, double dt)
{
    const double h2 = 0.5 * dt, h6 = dt / 6.0;
    tg_var k1x = tg_mul(sig, tg_sub(*y, *x));
    tg_var k1y = tg_sub(tg_mul(*x, tg_sub(rho, *z)), *y);
    tg_var k1z = tg_sub(tg_mul(*x, *y), tg_mul(beta, *z));
    tg_var tx = tg_add(*x, tg_mul(h2, k1x));
    tg_var ty = tg_add(*y, tg_mul(h2, k1y));
    tg_var tz = tg_add(*z, tg_mul(h2, k1z));
    tg_var k2x = tg_mul(sig, tg_sub(ty, tx));
    tg_var k2y = tg_sub(tg_mul(tx, tg_sub(rho, tz)), ty);
    tg_var k2z = tg_sub(tg_mul(tx, ty), tg_mul(beta, tz));
    tx = tg_add(*x, tg_mul(h2, k2x));
    ty = tg_add(*y, tg_mul(h2, k2y));
    tz = tg_add(*z, tg_mul(h2, k2z));
    tg_var k3x = tg_mul(sig, tg_sub(ty, tx));
    tg_var k3y = tg_sub(tg_mul(tx, tg_sub(rho, tz)), ty);
    tg_var k3z = tg_sub(tg_mul(tx, ty), tg_mul(beta, tz));
    tx = tg_add(*x, tg_mul(dt, k3x));
    ty = tg_add(*y, tg_mul(dt, k3y));
    tz = tg_add(*z, tg_mul(dt, k3z));
    tg_var k4x = tg_mul(sig, tg_sub(ty, tx));
    tg_var k4y = tg_sub(tg_mul(tx, tg_sub(rho, tz)), ty);
    tg_var k4z = tg_sub(tg_mul(tx, ty), tg_mul(beta, tz));
    *x = tg_add(*x, tg_mul(h6, tg_add(tg_add(tg_add(k1x, tg_mul(2.0, k2x)), tg_mul(2.0, k3x)), k4x)));
    *y = tg_add(*y, tg_mul(h6, tg_add(tg_add(tg_add(k1y, tg_mul(2.0, k2y)), tg_mul(2.0, k3y)), k4y)));
    *z = tg_add(*z, tg_mul(h6, tg_add(tg_add(tg_add(k1z, tg_mul(2.0, k2z)), tg_mul(2.0, k3z)), k4z)));
}

tg_tape *
tgrec_lorenz(unsigned flags)
{
    return tgrec_lorenz_steps(LORENZ_STEPS, LORENZ_DT, flags);
}

tg_tape *
tgrec_lorenz_steps(size_t steps, double dt, unsigned flags)
{
    tg_tape *t = tg_tape_new_ex("lorenz_rk4", flags);
    if (!t)
        return NULL;
    tg_var u[6];
    static const double u0[6] = { 1.0, 1.0, 1.0, 10.0, 28.0, 8.0 / 3.0 };
    inputs(t, flags, "u", 6, u0, u);
    tg_var x = u[0], y = u[1], z = u[2];
    for (size_t k = 0; k < steps; k++)
        lorenz_step(&x, &y, &z, u[3], u[4], u[5], dt);
    tg_output(t, "f", tg_add(tg_add(tg_mul(x, x), tg_mul(y, y)), tg_mul(z, z)));
    return t;
}

/* ------------------------------------------------ loops kept in the tape */

tg_tape *
tgrec_rosenbrock_body(void)
{
    tg_tape *b = tg_tape_new("rosenbrock_term");
    if (!b)
        return NULL;
    tg_var x[2];
    tg_input_vec(b, "x", 2, x);
    tg_input_vec(b, "p", 0, NULL);
    tg_var d = tg_sub(x[1], tg_mul(x[0], x[0]));
    tg_var e = tg_sub(1.0, x[0]);
    tg_output(b, "y", tg_add(tg_mul(tg_mul(100.0, d), d), tg_mul(e, e)));
    return b;
}

tg_tape *
tgrec_rosenbrock_map(size_t n, unsigned flags)
{
    if (n < 2)
        return NULL;
    tg_tape *t = tg_tape_new_ex("rosenbrock_map", flags);
    tg_tape *body = tgrec_rosenbrock_body();
    tg_var *x = malloc(n * sizeof *x);
    tg_var *xs = malloc(2 * (n - 1) * sizeof *xs);
    tg_var *ys = malloc((n - 1) * sizeof *ys);
    if (!t || !body || !x || !xs || !ys) {
        free(x);
        free(xs);
        free(ys);
        tg_tape_free(body);
        tg_tape_free(t);
        return NULL;
    }
    tg_input_vec(t, "x", n, x);
    /* application i reads (x[i], x[i+1]) */
    for (size_t i = 0; i + 1 < n; i++) {
        xs[2 * i] = x[i];
        xs[2 * i + 1] = x[i + 1];
    }
    tg_map(t, body, n - 1, xs, NULL, ys);
    tg_output(t, "f", tg_sum(n - 1, ys));
    tg_tape_free(body);   /* tg_map copied it */
    free(x);
    free(xs);
    free(ys);
    return t;
}

tg_tape *
tgrec_lorenz_body(double dt)
{
    tg_tape *b = tg_tape_new("lorenz_rk4_step");
    if (!b)
        return NULL;
    tg_var c[3], p[3];
    tg_input_vec(b, "c", 3, c);
    tg_input_vec(b, "x", 0, NULL);
    tg_input_vec(b, "p", 3, p);
    lorenz_step(&c[0], &c[1], &c[2], p[0], p[1], p[2], dt);
    tg_output_vec(b, "c_next", 3, c);
    tg_output_vec(b, "y", 0, NULL);
    return b;
}

tg_tape *
tgrec_lorenz_scan(size_t steps, double dt, unsigned flags)
{
    tg_tape *t = tg_tape_new_ex("lorenz_rk4_scan", flags);
    tg_tape *body = tgrec_lorenz_body(dt);
    if (!t || !body) {
        tg_tape_free(body);
        tg_tape_free(t);
        return NULL;
    }
    tg_var u[6], c[3];
    tg_input_vec(t, "u", 6, u);
    tg_scan(t, body, steps, u, NULL, u + 3, c, NULL);
    tg_output(t, "f", tg_add(tg_add(tg_mul(c[0], c[0]), tg_mul(c[1], c[1])), tg_mul(c[2], c[2])));
    tg_tape_free(body);
    return t;
}

tg_tape *
tgrec_broyden(size_t n, unsigned flags)
{
    tg_tape *t = tg_tape_new_ex("broyden_tridiagonal", flags);
    tg_var *x = malloc(2 * n * sizeof *x);
    if (!t || !x || n < 1) {
        free(x);
        tg_tape_free(t);
        return NULL;
    }
    tg_var *r = x + n;
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < n; i++) {
        tg_var ri = tg_mul(tg_sub(3.0, tg_mul(2.0, x[i])), x[i]);
        if (i > 0)
            ri = tg_sub(ri, x[i - 1]);
        if (i + 1 < n)
            ri = tg_sub(ri, tg_mul(2.0, x[i + 1]));
        r[i] = tg_add(ri, 1.0);
    }
    tg_output_vec(t, "r", n, r);
    free(x);
    return t;
}
