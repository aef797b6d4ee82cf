/* src/ad/call.h -- the numeric semantics of CALL (a user function,
 * tg_call_func): what every numeric sweep does at a CALL instruction i.
 * The sweeps call these from their one extended-instruction case; the
 * lane conventions are theirs (sweep.h): v holds VL value lanes per
 * instruction, tangents/adjoints L lanes.  The outputs of call i are the
 * XOUT instructions i+1 .. i+k; its operands are the x refs of its operand
 * list (tape_xops).  Callbacks cannot fail; scratch beyond the stack
 * buffer is allocated per call, and if that fails the call's results are
 * NaN (visible, never silently wrong). */
#ifndef TG_AD_CALL_H
#define TG_AD_CALL_H

#include "ad/sweep.h"

/* Capabilities a numeric call needs from every user function of a tape. */
enum {
    AD_NEED_JVP = 1u,       /* tangent sweeps */
    AD_NEED_VJP = 2u,       /* adjoint sweeps */
    AD_NEED_HVP = 4u        /* second order: vjp and hvp (or hvp_numeric) */
};

/* TG_OK when every user function t calls has what `need` asks for (always
 * for a tape without calls), else TG_ERR_UNSUPPORTED with a message naming
 * the function and the missing callback (tg_last_error), prefixed by fn. */
tg_status ad_calls_check(const tg_tape *t, unsigned need, const char *fn);

/* Value lanes: v[(i+1+q)*VL + l] = f(x at lane l)_q; v[i*VL + l] = 0. */
void ad_call_forward(const tg_tape *t, uint32_t i, double *v, size_t VL);
/* Adjoint lanes: bar[x_j*L + l] += (J^T ybar_l)_j with ybar_l the outputs'
 * lane-l adjoints; values at lane (VL == 1 ? 0 : l). */
void ad_call_reverse(const tg_tape *t, uint32_t i, const double *v, double *bar, size_t L,
                     size_t VL);
/* Tangent lanes at one point: vd[(i+1+q)*L + l] = (J dx_l)_q. */
void ad_call_tangent(const tg_tape *t, uint32_t i, const double *v, double *vd, size_t L);
/* Tangent over adjoint at one point (second.c): with ybar = w at the
 * outputs, wd_x += H(ybar) dx_l + J^T wd_out_l per lane; accw: also
 * w_x += J^T ybar (the one-direction HVP accumulates w as it goes). */
void ad_call_second(const tg_tape *t, uint32_t i, const double *v, const double *vd, double *w,
                    double *wd, size_t L, int accw);

#endif
