/* src/ad/fused.c -- the gradient fast path.  The forward sweep stores each
 * instruction's local partials (rules.def, numeric context) next to its
 * value, so the reverse sweep becomes a multiply-accumulate loop with no
 * instruction dispatch and no partials to recompute (Adept-style storage
 * [Hogan, ACM TOMS 40(4), 2014]).  Results are bit-identical to
 * ad_forward1 + ad_reverse1: same partials, same accumulation order. */
#include "ad/sweep.h"
#include "ad/dispatch.h"
#include "ad/ctx_num.h"

/* v[i] = value; pa[i], pb[i] = dZ/dA, dZ/dB (for select: dZ/dB, with
 * dZ/dC = 1 - dZ/dB; leaves and unary ops: unused slots 0). */
void
ad_forward_partials(const tg_tape *t, const double *restrict x, double *restrict v,
                    double *restrict pa, double *restrict pb)
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
        SWEEP_NEXT_FWD;
    SWEEP_CASE(INPUT)
        v[i] = x[ca[i]];
        pa[i] = pb[i] = 0.0;
        SWEEP_NEXT_FWD;
#define D1(OP, da)                                                      \
    SWEEP_CASE(OP) {                                                    \
        double Z = tape_eval_op(TG_OP_##OP, A, 0.0, 0.0);               \
        v[i] = Z;                                                       \
        pa[i] = (da);                                                   \
        pb[i] = 0.0;                                                    \
        SWEEP_NEXT_FWD;                                                 \
    }
#define D2(OP, da, db)                                                  \
    SWEEP_CASE(OP) {                                                    \
        double Z = tape_eval_op(TG_OP_##OP, A, B, 0.0);                 \
        v[i] = Z;                                                       \
        pa[i] = (da);                                                   \
        pb[i] = (db);                                                   \
        SWEEP_NEXT_FWD;                                                 \
    }
#define D3(OP, da, db, dc)                                              \
    SWEEP_CASE(OP) {                                                    \
        double Z = tape_eval_op(TG_OP_##OP, A, B, C);                   \
        v[i] = Z;                                                       \
        pa[i] = (db);                                                   \
        pb[i] = (dc);                                                   \
        (void)(da);                                                     \
        SWEEP_NEXT_FWD;                                                 \
    }
#include "ad/rules.def"
    SWEEP_END
#undef A
#undef B
#undef C
}

/* The reverse sweep over stored partials.  Only select, whose adjoint goes
 * to operands b and c, needs to look at the opcode. */
void
ad_reverse_stored(const tg_tape *t, const double *restrict pa, const double *restrict pb,
                  double *restrict bar)
{
    const uint8_t *op = t->op;
    const uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    for (uint32_t i = t->n; i-- > 0;) {
        double w = bar[i];
        uint8_t o = op[i];
        if (w == 0.0 || o == TG_OP_CONST || o == TG_OP_INPUT)
            continue;
        if (o == TG_OP_SELECT) {
            bar[cb[i]] += tg__azmul(pa[i], w);
            bar[cc[i]] += tg__azmul(pb[i], w);
            continue;
        }
        bar[ca[i]] += tg__azmul(pa[i], w);
        if (tape_op_arity[o] == 2)      /* not into slot 0 for unary ops: a false dependency */
            bar[cb[i]] += tg__azmul(pb[i], w);
    }
}
