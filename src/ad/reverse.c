/* src/ad/reverse.c -- the adjoint sweep [Griewank & Walther, Evaluating
 * Derivatives, ch. 3]: a backwards loop over the tape (operands precede
 * results, so no ordering work is needed).  Instructions whose adjoint
 * lanes are all zero are skipped: their contribution would be exactly 0.
 * Instances (reverse.inc): 8 directions at one point (Jacobian rows); 8
 * points (batch gradients).  Single gradients take the stored-partials
 * path of fused.c instead. */
#include "ad/sweep.h"
#include "ad/call.h"
#include "ad/dispatch.h"
#include "ad/xsweep.h"
#include "ad/ctx_num.h"

#define REV_FN ad_reverse_lanes
#define REV_L  TG_LANES
#define REV_VL 1
#include "ad/reverse.inc"
#undef REV_FN
#undef REV_L
#undef REV_VL

#define REV_FN ad_reverse_points
#define REV_L  TG_LANES
#define REV_VL TG_LANES
#include "ad/reverse.inc"
#undef REV_FN
#undef REV_L
#undef REV_VL

/* AD_MAP_WIDE applications of a map body (xsweep.c map_reverse); an AVX2
 * copy chosen at run time as for the wide value sweep (forward.c: same
 * IEEE operations lane by lane, no FMA) */
static void reverse_wide(const tg_tape *t, const double *restrict v, double *restrict bar);
#define REV_FN reverse_wide
#define REV_L  AD_MAP_WIDE
#define REV_VL AD_MAP_WIDE
#define REV_SHARED_TMP
#include "ad/reverse.inc"
#undef REV_FN

#if defined(__GNUC__) && defined(__x86_64__) && !defined(TG_NO_AVX2_COPY)
#define AD_WIDE_AVX2 1
static void reverse_wide_avx2(const tg_tape *t, const double *restrict v,
                              double *restrict bar);
#define REV_FN reverse_wide_avx2
#define REV_ATTR __attribute__((target("avx2")))
#include "ad/reverse.inc"
#undef REV_FN
#undef REV_ATTR
#endif
#undef REV_SHARED_TMP
#undef REV_L
#undef REV_VL

void
ad_reverse_wide(const tg_tape *t, const double *v, double *bar)
{
#ifdef AD_WIDE_AVX2
    if (ad_has_avx2()) {
        reverse_wide_avx2(t, v, bar);
        return;
    }
#endif
    reverse_wide(t, v, bar);
}
