/* bench/src/tgrec.h -- the four workloads recorded on tapegen tapes with
 * the tg_* macros (the same operations as workloads.c).  Recording is
 * symbolic: no point is needed.  flags go to tg_tape_new_ex (0: the
 * defaults; TG_NO_CSE: the fast recording option), except TGREC_AT: the
 * inputs are declared with values (tg_input_vec_at, at the workloads'
 * benchmark point), i.e. recording at a point (issue 13). */
#ifndef BENCH_TGREC_H
#define BENCH_TGREC_H

#include <tapegen.h>

#include "workloads.h"

#define TGREC_AT (1u << 16)   /* not a tape flag: tg_tape_new_ex ignores it */

tg_tape *tgrec_rosenbrock(size_t n, unsigned flags);
tg_tape *tgrec_mlp(const w2_data_t *d, unsigned flags);
tg_tape *tgrec_lorenz(unsigned flags);
tg_tape *tgrec_broyden(size_t n, unsigned flags);
/* W3 flat (unrolled) at any number of steps and step size; tgrec_lorenz
 * is LORENZ_STEPS, LORENZ_DT. */
tg_tape *tgrec_lorenz_steps(size_t steps, double dt, unsigned flags);

/* Loops kept in the tape (issue 11): the same operations as the flat
 * recordings above, with the loop recorded once.
 *   tgrec_rosenbrock_map: W1 as tg_map of the term over i = 0..n-2 (body
 *     input blocks x = (x[i], x[i+1]) and an empty p; output y = the term),
 *     then tg_sum of the n-1 terms.
 *   tgrec_lorenz_scan: W3 as tg_scan of one RK4 step (carry (x, y, z),
 *     empty per-step x, params (sigma, rho, beta); carry_next and an empty
 *     y), then x^2 + y^2 + z^2 of the final carry.
 * The bodies alone (tgrec_*_body) are for the Rust emission and tests. */
tg_tape *tgrec_rosenbrock_map(size_t n, unsigned flags);
tg_tape *tgrec_lorenz_scan(size_t steps, double dt, unsigned flags);
tg_tape *tgrec_rosenbrock_body(void);
tg_tape *tgrec_lorenz_body(double dt);

#endif
