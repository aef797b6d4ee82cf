/* src/ad/symbolic.h -- symbolic sweeps: tangent and adjoint sweeps over the
 * instructions [0, n) of a tape that record their derivative code onto the
 * same tape (appending after n), through tape_rec so that CSE and folding
 * apply as the code is made.  Derivative refs are TG_NIL for an exact
 * (structural) zero.  The local partials come from rules.def, the same
 * table the numeric sweeps expand. */
#ifndef TG_AD_SYMBOLIC_H
#define TG_AD_SYMBOLIC_H

#include "tape/internal.h"

/* Tangents: tan[i] for INPUT instructions is preset by the caller (a ref,
 * or TG_NIL); the sweep fills tan[i] for every other i < n. */
int ad_sym_tangent(tg_tape *t, uint32_t n, uint32_t *tan);
/* The same, recording only instructions i with live[i] != 0 (the others
 * get TG_NIL): pass the instructions the wanted tangents depend on, so no
 * dead derivative code is recorded. */
int ad_sym_tangent_live(tg_tape *t, uint32_t n, uint32_t *tan, const uint8_t *live);

/* Adjoints: adj[] preset with the seeds (TG_NIL elsewhere); the sweep
 * accumulates adjoints into the operands of every instruction < n whose
 * operand is active (active[k] != 0: k depends on a differentiated input).
 * Afterwards adj[k] of an INPUT instruction is its adjoint (TG_NIL: 0). */
int ad_sym_adjoint(tg_tape *t, uint32_t n, uint32_t *adj, const uint8_t *active);

/* active[i] = instruction i < n depends on an input whose global index is
 * in [lo, hi). */
void ad_activity(const tg_tape *t, uint32_t n, uint32_t lo, uint32_t hi, uint8_t *active);
/* The same with the active inputs given by in_act[input index] != 0. */
void ad_activity_in(const tg_tape *t, uint32_t n, const uint8_t *in_act, uint8_t *active);

#endif
