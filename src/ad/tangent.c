/* src/ad/tangent.c -- the forward tangent sweep: L directional derivatives
 * at one point, each op's tangent the sum of absolute-zero products of its
 * partials (rules.def, numeric context) with its operands' tangents, in
 * operand order. */
#include "ad/sweep.h"
#include "ad/ctx_num.h"

AD_INLINE void
tangent(const tg_tape *t, const double *restrict v, const double *restrict seed, size_t j0,
        double *restrict vd, size_t L)
{
    const uint8_t *op = t->op;
    const uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    for (uint32_t i = 0; i < t->n; i++) {
        double *zd = vd + (size_t)i * L;
        const double *ad = vd + (size_t)ca[i] * L, *bd = vd + (size_t)cb[i] * L;
        const double *cd = vd + (size_t)cc[i] * L;
        double A = v[ca[i]], B = v[cb[i]], C = v[cc[i]], Z = v[i];
        (void)A; (void)B; (void)C; (void)Z; (void)bd; (void)cd;
        switch ((tg_opcode)op[i]) {
        case TG_OP_CONST:
            for (size_t l = 0; l < L; l++)
                zd[l] = 0.0;
            break;
        case TG_OP_INPUT:
            for (size_t l = 0; l < L; l++)
                zd[l] = seed ? seed[(size_t)ca[i] * L + l] : (ca[i] == j0 + (size_t)l ? 1.0 : 0.0);
            break;
/* all operand tangents exactly zero: so is this one (absolute zero), and
 * its partials need not be computed -- the common case in the 8-direction
 * sweeps of a sparse Jacobian or Hessian */
#define ZERO_IF_INACTIVE(any)                                           \
            if (!(any)) {                                               \
                for (size_t l = 0; l < L; l++)                             \
                    zd[l] = 0.0;                                        \
                break;                                                  \
            }
#define D1(OP, da)                                                      \
        case TG_OP_##OP: {                                              \
            ZERO_IF_INACTIVE(ad_any(ad, L))                             \
            double pa = (da);                                           \
            for (size_t l = 0; l < L; l++)                                 \
                zd[l] = mathx_azmul(pa, ad[l]);                           \
            break;                                                      \
        }
#define D2(OP, da, db)                                                  \
        case TG_OP_##OP: {                                              \
            ZERO_IF_INACTIVE(ad_any(ad, L) || ad_any(bd, L))            \
            double pa = (da), pb = (db);                                \
            for (size_t l = 0; l < L; l++)                                 \
                zd[l] = mathx_azmul(pa, ad[l]) + mathx_azmul(pb, bd[l]);    \
            break;                                                      \
        }
#define D3(OP, da, db, dc)                                              \
        case TG_OP_##OP: {                                              \
            ZERO_IF_INACTIVE(ad_any(ad, L) || ad_any(bd, L) || ad_any(cd, L)) \
            double pa = (da), pb = (db), pc = (dc);                     \
            for (size_t l = 0; l < L; l++)                                 \
                zd[l] = mathx_azmul(pa, ad[l]) + mathx_azmul(pb, bd[l])     \
                      + mathx_azmul(pc, cd[l]);                           \
            break;                                                      \
        }
#include "ad/rules.def"
        case TG_OP_MAP:     /* extended: refused before (tape_refuse_x) */
        case TG_OP_SCAN:
        case TG_OP_CALL:
        case TG_OP_XOUT:
        case TG_OP_COUNT:
            break;
        }
    }
}

void
ad_tangent_one(const tg_tape *t, const double *v, const double *seed, double *vd)
{
    tangent(t, v, seed, 0, vd, 1);
}

void
ad_tangent_lanes(const tg_tape *t, const double *v, const double *seed, size_t j0, double *vd)
{
    tangent(t, v, seed, j0, vd, TG_LANES);
}

void
ad_tangent_n(const tg_tape *t, const double *v, const double *seed, double *vd, size_t L)
{
    /* a constant L per instance: the lane loops unroll and vectorise */
    if (L <= 1)
        tangent(t, v, seed, 0, vd, 1);
    else if (L == 2)
        tangent(t, v, seed, 0, vd, 2);
    else if (L == 3)
        tangent(t, v, seed, 0, vd, 3);
    else if (L == 4)
        tangent(t, v, seed, 0, vd, 4);
    else
        tangent(t, v, seed, 0, vd, TG_LANES);
}
