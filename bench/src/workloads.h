/* bench/src/workloads.h -- the four workloads: sizes, layouts and the
 * hand-written C functions with their analytic derivatives (workloads.c).
 * Every system computes exactly these operations in this order:
 *
 * W1 rosenbrock(n): f = sum_{i=0}^{n-2} [100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2],
 *    each term as d = x[i+1] - x[i]*x[i]; e = 1 - x[i]; 100*d*d + e*e,
 *    summed left to right starting from the first term.
 * W2 mlp: tanh MLP 8 -> 16 -> 16 -> 1 (linear output), loss = (1/16) sum_s
 *    (y_s - t_s)^2; a neuron is b + w_0 u_0 + w_1 u_1 + ... left to right.
 * W3 lorenz_rk4: classic RK4 of the Lorenz system, dt = 0.01, 1000 steps;
 *    output x^2 + y^2 + z^2 at the end.
 * W4 broyden_tridiagonal(n): r_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1
 *    (the boundary terms are left out rather than multiplied by zero). */
#ifndef BENCH_WORKLOADS_H
#define BENCH_WORKLOADS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- W2 layout: theta = W1[16][8] row-major, b1[16], W2[16][16], b2[16],
 * W3[1][16], b3[1] */
#define MLP_IN 8
#define MLP_H 16
#define MLP_S 16
#define MLP_W1 0
#define MLP_B1 (MLP_W1 + MLP_H * MLP_IN)
#define MLP_W2 (MLP_B1 + MLP_H)
#define MLP_B2 (MLP_W2 + MLP_H * MLP_H)
#define MLP_W3 (MLP_B2 + MLP_H)
#define MLP_B3 (MLP_W3 + MLP_H)
#define MLP_NP (MLP_B3 + 1)

/* ---- W3 */
#define LORENZ_STEPS 1000
#define LORENZ_DT 0.01

/* ---- points */
void w1_record_point(size_t n, double *x);   /* -1.2 (even i), 1.0 (odd i) */
void w1_eval_point(size_t n, double *x);     /* 0.5 + 0.001 i */
void w2_theta(double *theta);                /* 0.1 sin(k + 1) */
void w2_data(double *inputs, double *targets); /* cos(0.3 s + 0.7 j), sin(0.5 s) */
void w3_point(double *u);                    /* (1, 1, 1, 10, 28, 8/3) */
void w4_point(size_t n, double *x);          /* -1 */

/* ---- W1 hand-written */
double w1_f(size_t n, const double *x);
void   w1_grad(size_t n, const double *x, double *g);
void   w1_hvp(size_t n, const double *x, const double *v, double *hv);
void   w1_hess(size_t n, const double *x, double *H);      /* dense n x n */

/* ---- W2 hand-written (inputs/targets from w2_data) */
typedef struct w2_data_t {
    double in[MLP_S][MLP_IN];
    double t[MLP_S];
} w2_data_t;
double w2_f(const w2_data_t *d, const double *theta);
void   w2_grad(const w2_data_t *d, const double *theta, double *g);   /* backprop */
void   w2_hvp(const w2_data_t *d, const double *theta, const double *v, double *hv); /* R-op */

/* ---- W3 hand-written: u = (x0, y0, z0, sigma, rho, beta) */
double w3_f(const double *u);
/* adjoint RK4 by hand; traj: 3*(LORENZ_STEPS+1) doubles of scratch */
void   w3_grad(const double *u, double *g, double *traj);
/* The same with any number of steps and step size (W3 as a scan runs
 * 10^3 and 10^5 steps over the same time span, dt = 10 / steps);
 * traj: 3*(steps+1) doubles of scratch.  w3_f/w3_grad are these at
 * LORENZ_STEPS, LORENZ_DT. */
double w3_f_steps(const double *u, size_t steps, double dt);
void   w3_grad_steps(const double *u, size_t steps, double dt, double *g, double *traj);
/* second-order forward sensitivities by hand; H 6 x 6 */
void   w3_hess(const double *u, double *H);
void   w3_hess_steps(const double *u, size_t steps, double dt, double *H);

/* ---- W4 hand-written */
void w4_f(size_t n, const double *x, double *r);
void w4_jac(size_t n, const double *x, double *J);          /* dense n x n */
void w4_jvp(size_t n, const double *x, const double *v, double *jv);

#ifdef __cplusplus
}
#endif
#endif
