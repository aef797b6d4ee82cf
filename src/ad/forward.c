/* src/ad/forward.c -- the interpreter: value sweeps for one point and for
 * TG_LANES points per instruction dispatch (forward.inc). */
#include <stdatomic.h>

#include "ad/sweep.h"
#include "ad/dispatch.h"
#include "tape/mathx.h"

static void forward_lanes(const tg_tape *t, const double *restrict x, size_t ldx,
                          double *restrict v);

#define FWD_FN forward_one
#define FWD_VL 1
static void forward_one(const tg_tape *t, const double *restrict x, size_t ldx, double *restrict v);
#include "ad/forward.inc"
#undef FWD_FN
#undef FWD_VL

#define FWD_FN forward_lanes
#define FWD_VL TG_LANES
#include "ad/forward.inc"
#undef FWD_FN
#undef FWD_VL

/* map bodies over AD_MAP_WIDE applications per dispatch (xforward.c).
 * Each handler is a 64-iteration loop the compiler vectorises.  On x86-64
 * with GCC or clang a second copy is compiled for AVX2 (4 lanes per
 * operation instead of SSE2's 2) and chosen at run time when the CPU has
 * it (W1 as a map: its gradient tape's tg_eval ~25% faster).  Same result
 * bits: the same IEEE operations lane by lane, no FMA (-ffp-contract=off,
 * and the avx2 target alone does not enable FMA), libm called per lane. */
static void forward_wide(const tg_tape *t, const double *restrict x, size_t ldx,
                         double *restrict v);
#define FWD_FN forward_wide
#define FWD_VL AD_MAP_WIDE
#include "ad/forward.inc"
#undef FWD_FN
#undef FWD_VL

#if defined(__GNUC__) && defined(__x86_64__) && !defined(TG_NO_AVX2_COPY)
#define AD_WIDE_AVX2 1
static void forward_wide_avx2(const tg_tape *t, const double *restrict x, size_t ldx,
                              double *restrict v);
#define FWD_FN forward_wide_avx2
#define FWD_VL AD_MAP_WIDE
#define FWD_ATTR __attribute__((target("avx2")))
#include "ad/forward.inc"
#undef FWD_FN
#undef FWD_VL
#undef FWD_ATTR
#endif

int
ad_has_avx2(void)
{
#ifdef AD_WIDE_AVX2
    static atomic_int has = -1;     /* -1: not asked yet */
    int h = atomic_load_explicit(&has, memory_order_relaxed);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") ? 1 : 0;
        atomic_store_explicit(&has, h, memory_order_relaxed);
    }
    return h;
#else
    return 0;
#endif
}

static void
wide(const tg_tape *t, const double *x, size_t ldx, double *v)
{
#ifdef AD_WIDE_AVX2
    if (ad_has_avx2()) {
        forward_wide_avx2(t, x, ldx, v);
        return;
    }
#endif
    forward_wide(t, x, ldx, v);
}

void
ad_forward_one(const tg_tape *t, const double *x, double *v)
{
    forward_one(t, x, 0, v);
}

void
ad_forward_points(const tg_tape *t, const double *x, size_t ldx, double *v)
{
    forward_lanes(t, x, ldx, v);
}

void
ad_forward_chunk(const tg_tape *t, const double *x, size_t ldx, double *v, size_t C)
{
    if (C == AD_MAP_WIDE)
        wide(t, x, ldx, v);
    else if (C == TG_LANES)
        forward_lanes(t, x, ldx, v);
    else
        forward_one(t, x, 0, v);
}
