/* src/ad/call_sym.h -- the symbolic sweeps' CALL case (call_sym.c). */
#ifndef TG_AD_CALL_SYM_H
#define TG_AD_CALL_SYM_H

#include "tape/internal.h"

/* Tangent sweep at CALL i: tan[i+1+q] = the q-th output of a recorded CALL
 * of the jvp function on (x, tangents of x) (TG_NIL when every operand's
 * tangent is TG_NIL); tan[i] = TG_NIL.  0, or -1 with t failed
 * (TG_ERR_UNSUPPORTED when the function names no jvp_func). */
int ad_sym_call_tangent(tg_tape *t, uint32_t i, uint32_t *tan);
/* Adjoint sweep at CALL i: with the outputs' adjoints adj[i+1 ..] (TG_NIL:
 * 0), records the vjp function on (x, ybar) and accumulates its outputs
 * into the active operands' adjoints.  0, or -1 with t failed. */
int ad_sym_call_adjoint(tg_tape *t, uint32_t i, uint32_t *adj, const uint8_t *active);

#endif
