/* examples/mpc/model.h -- the horizon-N MPC cost of a kinematic bicycle.
 *
 * State s = (px, py, psi, v) (rear-axle position, heading, speed), control
 * u_k = (a_k, delta_k) (acceleration, steering angle), explicit Euler with
 * step dt and wheelbase L:
 *     px' = px + dt v cos psi      psi' = psi + dt (v / L) tan delta
 *     py' = py + dt v sin psi      v'   = v + dt a
 * Stage cost after step k, tracking the reference point r_k = (xr_k, yr_k):
 *     l_k = qp ((px' - xr_k)^2 + (py' - yr_k)^2) + qv (v' - vref)^2
 *           + ra a_k^2 + rd delta_k^2
 * Terminal cost on the final state s_N:
 *     qf ((px_N - xr_{N-1})^2 + (py_N - yr_{N-1})^2)
 * Cost J(u, s_0, r) = sum_k l_k + terminal.  The reference is a circle of
 * radius R run at speed vref.  Controls are bounded: |a| <= amax,
 * |delta| <= dmax.
 *
 * Tapes: input blocks "u" (2N: a_0, delta_0, a_1, ...), "x0" (4), "xref"
 * (2N: xr_0, yr_0, ...; "ref" is a Rust keyword); one output "J".
 * mpc_record_scan keeps the horizon as one tg_scan (carry = the state, per-step xs = (a, delta, xr,
 * yr), ys = the stage cost, summed with tg_sum); mpc_record_flat unrolls
 * the same operations in the same order; mpc_cost is the plain-C cost
 * (the independent oracle of the central differences). */
#ifndef MPC_MODEL_H
#define MPC_MODEL_H

#include <stddef.h>

#include <tapegen.h>

typedef struct mpc_problem {
    size_t N;               /* horizon (stages) */
    double dt, L;           /* step (s), wheelbase (m) */
    double qp, qv, ra, rd, qf;
    double vref, R;         /* reference speed (m/s) and circle radius (m) */
    double amax, dmax;      /* control bounds */
    double x0[4];
    double *ref;            /* 2N: the reference points */
} mpc_problem;

/* Fills p with the example's problem at horizon N (p->ref malloc'd; NULL
 * on out of memory).  mpc_problem_free releases it. */
int  mpc_problem_init(mpc_problem *p, size_t N);
void mpc_problem_free(mpc_problem *p);

/* n = 4N + 4 inputs of the tapes: x = [u, x0, ref] (u first). */
size_t mpc_num_inputs(const mpc_problem *p);
void   mpc_pack(const mpc_problem *p, const double *u, double *x);

/* The body of the scan: blocks c (4), x (4), p (0) -> c_next (4), y (1). */
tg_tape *mpc_stage_body(const mpc_problem *p);
tg_tape *mpc_record_scan(const mpc_problem *p);
tg_tape *mpc_record_flat(const mpc_problem *p);
double   mpc_cost(const mpc_problem *p, const double *u);

#endif
