/* src/ad/forward.c -- the interpreter: value sweeps for one point and for
 * TG_LANES points per instruction dispatch (forward.inc). */
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

/* map bodies over AD_MAP_WIDE applications per dispatch (xforward.c) */
static void forward_wide(const tg_tape *t, const double *restrict x, size_t ldx,
                         double *restrict v);
#define FWD_FN forward_wide
#define FWD_VL AD_MAP_WIDE
#include "ad/forward.inc"
#undef FWD_FN
#undef FWD_VL

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
        forward_wide(t, x, ldx, v);
    else if (C == TG_LANES)
        forward_lanes(t, x, ldx, v);
    else
        forward_one(t, x, 0, v);
}
