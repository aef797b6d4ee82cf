/* src/tape/opt.h -- the optimisation passes, one per file, in the order
 * optimize.c runs them. */
#ifndef TG_TAPE_OPT_H
#define TG_TAPE_OPT_H

#include "tape/internal.h"

/* opt_dce.c: the live part of t in a new tape, copied verbatim (NONE) or
 * re-recorded at `level`; NULL when out of memory (the result may also be
 * in the error state). */
tg_tape  *tape_opt_dce(const tg_tape *t, tg_opt_level level);

/* opt_rewrite.c: the exact rewrites of `level` that apply to op(a, b)
 * about to be recorded on u (operands already mapped), to a fixed point;
 * returns the new opcode (a and b updated). */
tg_opcode tape_opt_rewrite(tg_tape *u, tg_opcode op, tape_opnd *a, tape_opnd *b,
                           tg_opt_level level);

/* opt_schedule.c: permutes t's instructions within windows by depth;
 * TG_OK or TG_ERR_NOMEM (t unchanged). */
tg_status tape_opt_schedule(tg_tape *t);

#endif
