/* src/ad/reverse.c -- the adjoint sweep [Griewank & Walther, ch. 3]: a
 * backwards loop over the tape (operands precede results, so no ordering
 * work is needed), recomputing each op's local partials from the stored
 * values (rules.def, numeric context) and accumulating absolute-zero
 * products into the operands' adjoints.  Instructions whose adjoint lanes
 * are all zero are skipped: their contribution would be exactly 0. */
#include "ad/sweep.h"
#include "ad/ctx_num.h"

/* L adjoint lanes; VL value lanes (1: one point, shared by the lanes; L:
 * one point per lane). */
AD_INLINE void
reverse(const tg_tape *t, const double *restrict v, double *restrict bar, int L, int VL)
{
    const uint8_t *op = t->op;
    const uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    double pa[TG_LANES], pb[TG_LANES], pc[TG_LANES];
    for (uint32_t i = t->n; i-- > 0;) {
        const double *w = bar + (size_t)i * L;
        if (!ad_any(w, L))
            continue;
        const double *va = v + (size_t)ca[i] * VL, *vb = v + (size_t)cb[i] * VL;
        const double *vc = v + (size_t)cc[i] * VL, *vz = v + (size_t)i * VL;
        double *ba = bar + (size_t)ca[i] * L, *bb = bar + (size_t)cb[i] * L;
        double *bc = bar + (size_t)cc[i] * L;
        (void)vb; (void)vc; (void)vz; (void)pb; (void)pc;
#define PARTIALS(stmts)                                                 \
        for (int l = 0; l < VL; l++) {                                  \
            double A = va[l], B = vb[l], C = vc[l], Z = vz[l];          \
            (void)A; (void)B; (void)C; (void)Z;                         \
            stmts;                                                      \
        }
#define PULL(dst, p)                                                    \
        for (int l = 0; l < L; l++)                                     \
            dst[l] += tg__azmul(p[VL == 1 ? 0 : l], w[l]);
        switch ((tg_opcode)op[i]) {
#define D1(OP, da)                                                      \
        case TG_OP_##OP:                                                \
            PARTIALS(pa[l] = (da)) PULL(ba, pa) break;
#define D2(OP, da, db)                                                  \
        case TG_OP_##OP:                                                \
            PARTIALS(pa[l] = (da); pb[l] = (db)) PULL(ba, pa) PULL(bb, pb) break;
#define D3(OP, da, db, dc)                                              \
        case TG_OP_##OP:                                                \
            PARTIALS(pa[l] = (da); pb[l] = (db); pc[l] = (dc))          \
            PULL(ba, pa) PULL(bb, pb) PULL(bc, pc) break;
#include "ad/rules.def"
#undef PARTIALS
#undef PULL
        case TG_OP_CONST:
        case TG_OP_INPUT:
        case TG_OP_COUNT:
            break;
        }
    }
}

void ad_reverse1(const tg_tape *t, const double *v, double *bar) { reverse(t, v, bar, 1, 1); }
void ad_reverseD(const tg_tape *t, const double *v, double *bar) { reverse(t, v, bar, TG_LANES, 1); }
void ad_reverseP(const tg_tape *t, const double *v, double *bar)
{
    reverse(t, v, bar, TG_LANES, TG_LANES);
}
