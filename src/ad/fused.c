/* src/ad/fused.c -- the gradient fast path.  The forward sweep stores each
 * instruction's local partials (rules.def, numeric context) next to its
 * value, so the reverse sweep becomes a multiply-accumulate loop with no
 * instruction dispatch and no partials to recompute (Adept-style storage
 * [Hogan, ACM TOMS 40(4), 2014]).  Same partials and accumulation order as
 * the dispatching sweep of reverse.inc, so the same values (up to the sign
 * of zeros, see ad_reverse_stored). */
#include <float.h>
#include <math.h>

#include "ad/sweep.h"
#include "ad/call.h"
#include "ad/dispatch.h"
#include "ad/xsweep.h"
#include "ad/ctx_num.h"

/* v[i] = value; (ta[i], pa[i]) and (tb[i], pb[i]) = the adjoint slots the
 * reverse sweep feeds and their partials: (a, dZ/dA), (b, dZ/dB); select
 * feeds b and c; an unused pair points at i itself with partial 0, so the
 * reverse sweep needs no branch and no slot is a shared sink (a sink would
 * chain every update through one memory location). */
void
ad_forward_partials(const tg_tape *t, const double *restrict x, double *restrict v,
                    double *restrict pa, double *restrict pb, uint32_t *restrict ta,
                    uint32_t *restrict tb)
{
    const uint8_t *op = t->op;
    const uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    const uint32_t n_ = t->n;
#include "ad/labels.inc"
#define A v[ca[i]]
#define B v[cb[i]]
#define C v[cc[i]]
    SWEEP_FWD_LOOP(n_)
    SWEEP_CASE(CONST)
        v[i] = t->k[ca[i]];
        pa[i] = pb[i] = 0.0;
        ta[i] = tb[i] = i;
        SWEEP_NEXT_FWD;
    SWEEP_CASE(INPUT)
        v[i] = x[ca[i]];
        pa[i] = pb[i] = 0.0;
        ta[i] = tb[i] = i;
        SWEEP_NEXT_FWD;
    /* a loop: its outputs' values (xforward.c, in the scratch after the n
     * values); no stored partials -- the reverse sweep hands loops to
     * ad_x_reverse (ad_reverse_stored_x) */
    SWEEP_CASE(MAP)
    SWEEP_CASE(SCAN) {
        ad_x_values(t, i, v, v + n_);
        /* its XOUTs were written by it; no partials are stored for the
         * loop and its XOUT rows: ad_reverse_stored_x, the only reader of
         * a tape with loops, skips those rows */
        pa[i] = pb[i] = 0.0;
        ta[i] = tb[i] = i;
        i += (uint32_t)tape_xrec_of(t, i)->nout;
        SWEEP_NEXT_FWD;
    }
    /* a user function (call.c): its values now; its adjoints are pulled
     * by ad_reverse_stored_x, which stops at each call.  The call and its
     * XOUTs store no partials (slots pointing at themselves, partial 0). */
    SWEEP_CASE(CALL)
        ad_call_forward(t, i, v, 1);
        pa[i] = pb[i] = 0.0;
        ta[i] = tb[i] = i;
        SWEEP_NEXT_FWD;
    SWEEP_CASE(XOUT)
        pa[i] = pb[i] = 0.0;
        ta[i] = tb[i] = i;
        SWEEP_NEXT_FWD;
#define D1(OP, da)                                                      \
    SWEEP_CASE(OP) {                                                    \
        double Z = tape_eval_op(TG_OP_##OP, A, 0.0, 0.0);               \
        v[i] = Z;                                                       \
        pa[i] = (da);                                                   \
        pb[i] = 0.0;                                                    \
        ta[i] = ca[i];                                                  \
        tb[i] = i;                                                      \
        SWEEP_NEXT_FWD;                                                 \
    }
#define D2(OP, da, db)                                                  \
    SWEEP_CASE(OP) {                                                    \
        double Z = tape_eval_op(TG_OP_##OP, A, B, 0.0);                 \
        v[i] = Z;                                                       \
        pa[i] = (da);                                                   \
        pb[i] = (db);                                                   \
        ta[i] = ca[i];                                                  \
        tb[i] = cb[i];                                                  \
        SWEEP_NEXT_FWD;                                                 \
    }
#define D3(OP, da, db, dc)                                              \
    SWEEP_CASE(OP) {                                                    \
        double Z = tape_eval_op(TG_OP_##OP, A, B, C);                   \
        v[i] = Z;                                                       \
        pa[i] = (db);                                                   \
        pb[i] = (dc);                                                   \
        ta[i] = cb[i];                                                  \
        tb[i] = cc[i];                                                  \
        (void)(da);                                                     \
        SWEEP_NEXT_FWD;                                                 \
    }
#include "ad/rules.def"
    SWEEP_END
#undef A
#undef B
#undef C
}

/* The reverse sweep over stored partials and slots: no dispatch.  The
 * absolute-zero product needs care only when the adjoint w is 0 (nothing
 * to do) or not finite; for a finite nonzero w, azmul(p, w) and p*w are
 * equal as values (a zero partial gives a zero, maybe -0), so the common
 * case is a plain multiply-add (the zero tests cost more than the work). */
static inline void
reverse_stored_range(uint32_t lo, uint32_t hi, const double *restrict pa,
                     const double *restrict pb, const uint32_t *restrict ta,
                     const uint32_t *restrict tb, double *restrict bar)
{
    for (uint32_t i = hi; i-- > lo;) {
        double w = bar[i];
        if (w == 0.0)
            continue;
        if (fabs(w) <= DBL_MAX) {
            bar[ta[i]] += pa[i] * w;
            bar[tb[i]] += pb[i] * w;
        } else {
            bar[ta[i]] += mathx_azmul(pa[i], w);
            bar[tb[i]] += mathx_azmul(pb[i], w);
        }
    }
}

void
ad_reverse_stored(uint32_t n, const double *restrict pa, const double *restrict pb,
                  const uint32_t *restrict ta, const uint32_t *restrict tb, double *restrict bar)
{
    reverse_stored_range(0, n, pa, pb, ta, tb, bar);
}
