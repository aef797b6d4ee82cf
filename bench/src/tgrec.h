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

#endif
