/* src/ad/second.c -- the second-order sweep: tangent over adjoint
 * [Griewank & Walther, ch. 5].  With values v and tangents vd (direction
 * u) from the forward sweeps, and the adjoints w from a first-order reverse
 * sweep, a backwards sweep carries the adjoints' tangents wd:
 * wd_a += pdot*w_i + p*wd_i,  where p is a local partial and pdot its
 * directional derivative.  An instruction whose wd lanes and operand
 * tangents are all exactly zero contributes nothing and is skipped (so a
 * dense Hessian of a sparse problem costs little more than its nonzeros).
 *
 * pdot = sum_j q_j * (tangent of x_j), x_j in (A, B, C, Z): q is the
 * gradient of the partial expression, computed once per instruction by
 * evaluating rules.def over dual numbers with 4 derivative components
 * (one per A, B, C, Z) and reused for every lane. */
#include <float.h>
#include <math.h>

#include "ad/sweep.h"
#include "ad/call.h"
#include "ad/xsweep.h"
#include "ad/partials.h"

typedef struct d4 {
    double v, d[4];
} d4;

static inline d4
d4_k(double c)
{
    d4 r = { c, { 0.0, 0.0, 0.0, 0.0 } };
    return r;
}

static inline d4
d4_seed(double v, int j)
{
    d4 r = d4_k(v);
    r.d[j] = 1.0;
    return r;
}

/* op over dual numbers: value by the interpreter's semantics, derivative
 * by the chain rule with the numeric partials and absolute-zero products. */
static inline d4
d4_op(tg_opcode op, d4 a, d4 b, d4 c)
{
    double p[3];
    d4 r;
    r.v = tape_eval_op(op, a.v, b.v, c.v);
    ad_partials(op, a.v, b.v, c.v, r.v, p);
    for (int j = 0; j < 4; j++)
        r.d[j] = mathx_azmul(p[0], a.d[j]) + mathx_azmul(p[1], b.d[j]) + mathx_azmul(p[2], c.d[j]);
    return r;
}

#include "ad/rules.h"
#define K(c)            d4_k((double)(c))
#define F1(OP, x)       d4_op(TG_OP_##OP, (x), d4_k(0), d4_k(0))
#define F2(OP, x, y)    d4_op(TG_OP_##OP, (x), (y), d4_k(0))
#define F3(OP, x, y, z) d4_op(TG_OP_##OP, (x), (y), (z))

/* FAST (the compressed sweeps of src/ad/sparse): when the partial, its
 * derivatives and the adjoint are all finite, the absolute-zero products
 * become plain ones -- a zero factor's term is left out (it is exactly 0
 * even against an infinite tangent), a nonzero finite one multiplies as
 * azmul does up to the sign of a zero -- so the lane loop has no tests. */
static inline int
fast_factors(const d4 *p, double wi)
{
    int ok = fabs(wi) <= DBL_MAX && fabs(p->v) <= DBL_MAX;
    for (int j = 0; j < 4; j++)
        ok &= fabs(p->d[j]) <= DBL_MAX;
    return ok;
}

static const double zero_lanes[TG_LANES];

AD_INLINE void
hpull_fast(const d4 *p, double wi, const double *const td[4], const double *restrict wdi,
           double *restrict dst, size_t L)
{
    const double *z[4];
    for (int j = 0; j < 4; j++)
        z[j] = p->d[j] != 0.0 ? td[j] : zero_lanes;
    double d0 = p->d[0], d1 = p->d[1], d2 = p->d[2], d3 = p->d[3], pv = p->v;
    if (wi != 0.0 && pv != 0.0) {
        for (size_t l = 0; l < L; l++)
            dst[l] += (d0 * z[0][l] + d1 * z[1][l] + d2 * z[2][l] + d3 * z[3][l]) * wi
                    + pv * wdi[l];
    } else if (wi != 0.0) {
        for (size_t l = 0; l < L; l++)
            dst[l] += (d0 * z[0][l] + d1 * z[1][l] + d2 * z[2][l] + d3 * z[3][l]) * wi;
    } else if (pv != 0.0) {
        for (size_t l = 0; l < L; l++)
            dst[l] += pv * wdi[l];
    }
}

/* ACCW: accumulate the first-order adjoints w in the same sweep (one HVP,
 * w seeded on the output) or take them precomputed (the L-direction
 * Hessian sweeps, which then skip every instruction whose tangent inputs
 * are zero). */
AD_INLINE void
second(const tg_tape *t, const double *restrict v, const double *restrict vd,
       double *restrict w, double *restrict wd, size_t L, int ACCW, int FAST)
{
    const uint8_t *op = t->op;
    const uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    for (uint32_t i = t->n; i-- > 0;) {
        if (op[i] == TG_OP_CALL) {  /* a user function (call.c) */
            ad_call_second(t, i, v, vd, w, wd, L, ACCW);
            continue;
        }
        if (tape_is_x(op[i])) {         /* a loop (xsweep.c) */
            ad_x_second(t, i, v, vd, w, wd, L, ACCW);
            continue;
        }
        if (op[i] == TG_OP_XOUT)        /* handled by its loop */
            continue;
        double wi = w[i];
        const double *wdi = wd + (size_t)i * L;
        const double *td[4] = { vd + (size_t)ca[i] * L, vd + (size_t)cb[i] * L,
                                vd + (size_t)cc[i] * L, vd + (size_t)i * L };
        int ar = tape_op_arity[op[i]];
        if (!ad_any(wdi, L) && (wi == 0.0 || ar == 0 || (!ACCW && !ad_any(td[0], L)
            && (ar < 2 || !ad_any(td[1], L)) && (ar < 3 || !ad_any(td[2], L)))))
            continue;
        d4 A = d4_seed(v[ca[i]], 0), B = d4_seed(v[cb[i]], 1);
        d4 C = d4_seed(v[cc[i]], 2), Z = d4_seed(v[i], 3);
        (void)A; (void)B; (void)C; (void)Z;
#define HPULL(k, p)                                                             \
        do {                                                                    \
            d4 p_ = (p);                                                        \
            if (ACCW)                                                           \
                w[k] += mathx_azmul(p_.v, wi);                                    \
            double *dst = wd + (size_t)(k) * L;                                 \
            if (FAST && fast_factors(&p_, wi)) {                                \
                hpull_fast(&p_, wi, td, wdi, dst, L);                           \
                break;                                                          \
            }                                                                   \
            for (size_t l = 0; l < L; l++) {                                    \
                double pd = mathx_azmul(p_.d[0], td[0][l]) + mathx_azmul(p_.d[1], td[1][l]) \
                          + mathx_azmul(p_.d[2], td[2][l]) + mathx_azmul(p_.d[3], td[3][l]); \
                dst[l] += mathx_azmul(pd, wi) + mathx_azmul(p_.v, wdi[l]);      \
            }                                                                   \
        } while (0)
        switch ((tg_opcode)op[i]) {
#define D1(OP, da)          case TG_OP_##OP: HPULL(ca[i], da); break;
#define D2(OP, da, db)      case TG_OP_##OP: HPULL(ca[i], da); HPULL(cb[i], db); break;
#define D3(OP, da, db, dc)  case TG_OP_##OP: HPULL(ca[i], da); HPULL(cb[i], db); HPULL(cc[i], dc); break;
#include "ad/rules.def"
#undef HPULL
        case TG_OP_CONST:
        case TG_OP_INPUT:
        case TG_OP_MAP:     /* handled above */
        case TG_OP_SCAN:
        case TG_OP_CALL:    /* handled above */
        case TG_OP_XOUT:
        case TG_OP_COUNT:
            break;
        }
    }
}

void
ad_second_one(const tg_tape *t, const double *v, const double *vd, double *w, double *wd)
{
    second(t, v, vd, w, wd, 1, 1, 0);
}

void
ad_second_lanes(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd)
{
    /* w is only read when ACCW == 0 */
    second(t, v, vd, (double *)(uintptr_t)w, wd, TG_LANES, 0, 0);
}

/* second() at a lane count L <= TG_LANES, with the lane count a constant
 * in each call so that the sweep is specialised for it; FAST is a
 * constant at every call site too (this is inlined). */
static inline void
second_at(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd,
          size_t L, int FAST)
{
    double *wm = (double *)(uintptr_t)w;     /* only read when ACCW == 0 */
    if (L <= 1)
        second(t, v, vd, wm, wd, 1, 0, FAST);
    else if (L == 2)
        second(t, v, vd, wm, wd, 2, 0, FAST);
    else if (L == 3)
        second(t, v, vd, wm, wd, 3, 0, FAST);
    else if (L == 4)
        second(t, v, vd, wm, wd, 4, 0, FAST);
    else
        second(t, v, vd, wm, wd, TG_LANES, 0, FAST);
}

void
ad_second_n(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd,
            size_t L)
{
    second_at(t, v, vd, w, wd, L, 1);
}

void
ad_second_w(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd,
            size_t L)
{
    second_at(t, v, vd, w, wd, L, 0);
}
