/* src/tape/opt.h -- the optimisation passes, one per file, in the order
 * optimize.c runs them. */
#ifndef TG_TAPE_OPT_H
#define TG_TAPE_OPT_H

#include "tape/internal.h"

/* opt_dce.c: the live part of t in a new tape, copied verbatim (NONE) or
 * re-recorded at `level`; NULL when out of memory (the result may also be
 * in the error state). */
tg_tape  *tape_opt_dce(const tg_tape *t, tg_opt_level level);

/* opt_loops.c: the pruned form of a live loop (dead outputs removed, and
 * the slots, applications and operands only they needed).  body == NULL:
 * the loop stays as it is. */
typedef struct tape_xplan {
    tg_tape *body;          /* the pruned body (owned), or NULL */
    uint64_t count;
    uint32_t nc, nx, np, ny;
    uint64_t nops;
    uint64_t *opsel;        /* kept operand k = old operand opsel[k] */
    uint64_t *outmap;       /* old output k -> new output, UINT64_MAX: dead */
} tape_xplan;
/* For live loop i of t, whose outputs' live[] is final (a backward pass
 * reaches i after them): plans *P and marks live the operands it keeps.
 * 0, or -1 out of memory (then nothing is pruned and every operand is
 * marked). */
int       tape_xplan_make(const tg_tape *t, uint32_t i, uint8_t *live, tape_xplan *P);
/* Appends live loop i of t to u, pruned by P (if P->body) and rewritten
 * at `level` (tape_opt_emit_loop), operands through map[]; maps its kept
 * outputs.  The new instruction, or TG_NIL with u failed. */
uint32_t  tape_xplan_apply(tg_tape *u, const tg_tape *t, uint32_t i, const tape_xplan *P,
                           uint32_t *map, tg_opt_level level);
/* Appends a loop (body B, its sizes, operands ops[nops] of u) to u: at
 * NONE as it is; above, rewritten across its boundary -- an x slot with
 * the same operand in every application becomes a param, a param that is
 * a constant of u becomes that constant inside the body, and (from two
 * applications on) the body's work that depends on params and constants
 * only is hoisted out of the loop onto u, its values passed in as new
 * params -- and the body optimised at `level`.  Outputs are unchanged.
 * The new instruction, or TG_NIL with u failed. */
uint32_t  tape_opt_emit_loop(tg_tape *u, uint8_t kind, const tg_tape *B, uint64_t count,
                             uint32_t nc, uint32_t nx, uint32_t np, uint32_t ny,
                             const uint32_t *ops, uint64_t nops, tg_opt_level level);
void      tape_xplan_free(tape_xplan *P);
/* opt_loops.c: t with every loop whose outputs a later loop also computes
 * (same kind, count, operands; a body that extends its ys, e.g. the
 * carry-saving scan of a derivative tape) replaced by that loop, moved up
 * to the first one's place; NULL when there is none (or no memory: the
 * merge is only an optimisation). */
tg_tape  *tape_opt_merge_loops(const tg_tape *t);

/* opt_rewrite.c: the exact rewrites of `level` that apply to op(a, b)
 * about to be recorded on u (operands already mapped), to a fixed point;
 * returns the new opcode (a and b updated). */
tg_opcode tape_opt_rewrite(tg_tape *u, tg_opcode op, tape_opnd *a, tape_opnd *b,
                           tg_opt_level level);

/* opt_schedule.c: permutes t's instructions within windows by depth;
 * TG_OK or TG_ERR_NOMEM (t unchanged). */
tg_status tape_opt_schedule(tg_tape *t);

#endif
