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
