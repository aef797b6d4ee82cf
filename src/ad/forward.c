/* src/ad/forward.c -- the value sweep: the interpreter.  One switch per
 * instruction over the SoA columns, VL points per dispatch.  The per-op
 * expression is the opcode table's C semantics column, the same code the
 * constant folder runs. */
#include "ad/sweep.h"
#include "tape/mathx.h"

AD_INLINE void
forward(const tg_tape *t, const double *restrict x, size_t ldx, double *restrict v, int VL)
{
    const uint8_t *op = t->op;
    const uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    const double *k = t->k;
    for (uint32_t i = 0; i < t->n; i++) {
        double *z = v + (size_t)i * VL;
        const double *va = v + (size_t)ca[i] * VL;
        const double *vb = v + (size_t)cb[i] * VL;
        const double *vc = v + (size_t)cc[i] * VL;
        (void)vb;
        (void)vc;
        switch ((tg_opcode)op[i]) {
        case TG_OP_CONST:
            for (int l = 0; l < VL; l++)
                z[l] = k[ca[i]];
            break;
        case TG_OP_INPUT:
            for (int l = 0; l < VL; l++)
                z[l] = x[(size_t)l * ldx + ca[i]];
            break;
#define OP(NAME, name, ar, fl, expr)                        \
        case TG_OP_##NAME:                                  \
            for (int l = 0; l < VL; l++) {                  \
                double A = va[l], B = vb[l], C = vc[l];     \
                (void)B; (void)C;                           \
                z[l] = (expr);                              \
            }                                               \
            break;
#include "tapegen/ops.def"
        case TG_OP_COUNT:
            break;
        }
    }
}

void
ad_forward1(const tg_tape *t, const double *x, double *v)
{
    forward(t, x, 0, v, 1);
}

void
ad_forwardN(const tg_tape *t, const double *x, size_t ldx, double *v)
{
    forward(t, x, ldx, v, TG_LANES);
}
