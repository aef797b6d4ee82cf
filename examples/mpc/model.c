/* examples/mpc/model.c -- the bicycle MPC cost: the scan body, the looped
 * and the unrolled recordings, and the plain-C cost (see model.h). */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int
mpc_problem_init(mpc_problem *p, size_t N)
{
    memset(p, 0, sizeof *p);
    p->N = N;
    p->dt = 0.05;
    p->L = 2.5;
    p->qp = 1.0;
    p->qv = 0.1;
    p->ra = 0.01;
    p->rd = 0.1;
    p->qf = 10.0;
    p->vref = 5.0;
    p->R = 10.0;
    p->amax = 3.0;
    p->dmax = 0.5;
    /* at rest at the origin, heading along +x: the circle's first point */
    p->ref = malloc(2 * (N ? N : 1) * sizeof *p->ref);
    if (!p->ref)
        return -1;
    double w = p->vref / p->R;
    for (size_t k = 0; k < N; k++) {
        double t = p->dt * (double)(k + 1);
        p->ref[2 * k] = p->R * sin(w * t);
        p->ref[2 * k + 1] = p->R * (1.0 - cos(w * t));
    }
    return 0;
}

void
mpc_problem_free(mpc_problem *p)
{
    free(p->ref);
    p->ref = NULL;
}

size_t
mpc_num_inputs(const mpc_problem *p)
{
    return 4 * p->N + 4;
}

void
mpc_pack(const mpc_problem *p, const double *u, double *x)
{
    memcpy(x, u, 2 * p->N * sizeof *x);
    memcpy(x + 2 * p->N, p->x0, 4 * sizeof *x);
    memcpy(x + 2 * p->N + 4, p->ref, 2 * p->N * sizeof *x);
}

/* One stage on tape values: s (4) is updated, the stage cost returned. */
static tg_var
stage(const mpc_problem *p, tg_var *s, tg_var a, tg_var delta, tg_var xr, tg_var yr)
{
    tg_var px = tg_add(s[0], tg_mul(p->dt, tg_mul(s[3], tg_cos(s[2]))));
    tg_var py = tg_add(s[1], tg_mul(p->dt, tg_mul(s[3], tg_sin(s[2]))));
    tg_var psi = tg_add(s[2], tg_mul(p->dt, tg_mul(tg_div(s[3], p->L), tg_tan(delta))));
    tg_var v = tg_add(s[3], tg_mul(p->dt, a));
    tg_var ex = tg_sub(px, xr), ey = tg_sub(py, yr), ev = tg_sub(v, p->vref);
    tg_var l = tg_mul(p->qp, tg_add(tg_mul(ex, ex), tg_mul(ey, ey)));
    l = tg_add(l, tg_mul(p->qv, tg_mul(ev, ev)));
    l = tg_add(l, tg_mul(p->ra, tg_mul(a, a)));
    l = tg_add(l, tg_mul(p->rd, tg_mul(delta, delta)));
    s[0] = px;
    s[1] = py;
    s[2] = psi;
    s[3] = v;
    return l;
}

static tg_var
terminal(const mpc_problem *p, const tg_var *s, tg_var xr, tg_var yr)
{
    tg_var ex = tg_sub(s[0], xr), ey = tg_sub(s[1], yr);
    return tg_mul(p->qf, tg_add(tg_mul(ex, ex), tg_mul(ey, ey)));
}

tg_tape *
mpc_stage_body(const mpc_problem *p)
{
    tg_tape *b = tg_tape_new("bicycle_stage");
    if (!b)
        return NULL;
    tg_var c[4], x[4];
    tg_input_vec(b, "c", 4, c);
    tg_input_vec(b, "x", 4, x);
    tg_input_vec(b, "p", 0, NULL);
    tg_var l = stage(p, c, x[0], x[1], x[2], x[3]);
    tg_output_vec(b, "c_next", 4, c);
    tg_output(b, "y", l);
    return b;
}

/* Declares the inputs of the cost tapes. */
static int
inputs(tg_tape *t, const mpc_problem *p, tg_var **u, tg_var *s0, tg_var **ref)
{
    size_t N = p->N;
    *u = malloc(2 * N * sizeof **u);
    *ref = malloc(2 * N * sizeof **ref);
    if (!*u || !*ref)
        return -1;
    tg_input_vec(t, "u", 2 * N, *u);
    tg_input_vec(t, "x0", 4, s0);
    tg_input_vec(t, "xref", 2 * N, *ref);
    return 0;
}

tg_tape *
mpc_record_scan(const mpc_problem *p)
{
    size_t N = p->N;
    if (N == 0)
        return NULL;
    tg_tape *t = tg_tape_new("bicycle_mpc");
    tg_tape *body = mpc_stage_body(p);
    tg_var *u = NULL, *ref = NULL, s0[4], s[4];
    tg_var *xs = malloc(4 * N * sizeof *xs), *ys = malloc(N * sizeof *ys);
    if (!t || !body || !xs || !ys || inputs(t, p, &u, s0, &ref) != 0) {
        tg_tape_free(t);
        t = NULL;
        goto out;
    }
    for (size_t k = 0; k < N; k++) {   /* per-step xs: the controls and the reference point */
        xs[4 * k] = u[2 * k];
        xs[4 * k + 1] = u[2 * k + 1];
        xs[4 * k + 2] = ref[2 * k];
        xs[4 * k + 3] = ref[2 * k + 1];
    }
    tg_scan(t, body, N, s0, xs, NULL, s, ys);
    tg_output(t, "J", tg_add(tg_sum(N, ys), terminal(p, s, ref[2 * N - 2], ref[2 * N - 1])));
out:
    tg_tape_free(body);   /* tg_scan copied it */
    free(u);
    free(ref);
    free(xs);
    free(ys);
    return t;
}

tg_tape *
mpc_record_flat(const mpc_problem *p)
{
    size_t N = p->N;
    if (N == 0)
        return NULL;
    tg_tape *t = tg_tape_new("bicycle_mpc_flat");
    tg_var *u = NULL, *ref = NULL, s[4];
    tg_var *ys = malloc(N * sizeof *ys);
    if (!t || !ys || inputs(t, p, &u, s, &ref) != 0) {
        tg_tape_free(t);
        t = NULL;
        goto out;
    }
    for (size_t k = 0; k < N; k++)
        ys[k] = stage(p, s, u[2 * k], u[2 * k + 1], ref[2 * k], ref[2 * k + 1]);
    tg_output(t, "J", tg_add(tg_sum(N, ys), terminal(p, s, ref[2 * N - 2], ref[2 * N - 1])));
out:
    free(u);
    free(ref);
    free(ys);
    return t;
}

double
mpc_cost(const mpc_problem *p, const double *u)
{
    double s[4] = { p->x0[0], p->x0[1], p->x0[2], p->x0[3] }, J = 0.0;
    for (size_t k = 0; k < p->N; k++) {
        double a = u[2 * k], delta = u[2 * k + 1];
        double px = s[0] + p->dt * (s[3] * cos(s[2]));
        double py = s[1] + p->dt * (s[3] * sin(s[2]));
        double psi = s[2] + p->dt * ((s[3] / p->L) * tan(delta));
        double v = s[3] + p->dt * a;
        double ex = px - p->ref[2 * k], ey = py - p->ref[2 * k + 1], ev = v - p->vref;
        double l = p->qp * (ex * ex + ey * ey) + p->qv * (ev * ev) + p->ra * (a * a) +
                   p->rd * (delta * delta);
        J = k == 0 ? l : J + l;
        s[0] = px;
        s[1] = py;
        s[2] = psi;
        s[3] = v;
    }
    double ex = s[0] - p->ref[2 * p->N - 2], ey = s[1] - p->ref[2 * p->N - 1];
    return J + p->qf * (ex * ex + ey * ey);
}
