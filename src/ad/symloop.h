/* src/ad/symloop.h -- the symbolic sweeps of symbolic.c at a loop (MAP,
 * SCAN): derivative code that keeps loops as loops.  Each builds a derived
 * body tape from the loop's body (recursively: a body's own loops go
 * through the same functions, so the recursion is bounded by the nesting
 * depth of bodies, TAPE_MAX_DEPTH) and records one or two new loops on t
 * whose size is O(|body|) plus their operand lists.
 *
 *   tangent of a map:   a map of the body's JVP over the applications whose
 *                       tangents are not all zero
 *   tangent of a scan:  a scan of the body's JVP, carrying (c, dc)
 *   adjoint of a map:   a map of the body's VJP over the applications with a
 *                       nonzero cotangent, then a reverse scan summing the
 *                       params' adjoint contributions
 *   adjoint of a scan:  a forward scan saving the carry at each step (its
 *                       ys), then a reverse scan of the body's VJP whose
 *                       carry is (carry adjoint, params' adjoint
 *                       accumulator) and whose xs are the saved carries and
 *                       step inputs in reverse order (a reversed operand
 *                       list: no copies).
 * The JVP/VJP bodies recompute the body's values (no values cross the loop
 * boundary but the saved carries), which is what keeps the size independent
 * of the trip count. */
#ifndef TG_AD_SYMLOOP_H
#define TG_AD_SYMLOOP_H

#include "tape/internal.h"

/* Tangent sweep at extended instruction i of t: tan[] of its operands
 * (TG_NIL: exact zero) -> tan[i+1 .. i+nout] of its outputs (and tan[i] =
 * TG_NIL).  0, or -1 with t failed. */
int  ad_sym_tangent_x(tg_tape *t, uint32_t i, uint32_t *tan);
/* Adjoint sweep at extended instruction i: the adjoints adj[i+1 ..
 * i+nout] of its outputs are propagated (accumulated) into adj[] of its
 * active operands.  0, or -1 with t failed. */
int  ad_sym_adjoint_x(tg_tape *t, uint32_t i, uint32_t *adj, const uint8_t *active);
/* Activity at extended instruction i: active[] of its operands ->
 * active[i] (any operand active) and active[i+1 .. i+nout], per output
 * from the body's dependences (a superset when memory runs out). */
void ad_activity_x(const tg_tape *t, uint32_t i, uint8_t *active);

#endif
