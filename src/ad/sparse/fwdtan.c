/* src/ad/sparse/fwdtan.c -- the fused value + tangent sweep (fwdtan.inc)
 * for 1, 2, 3, 4 and TG_LANES lanes (3: the tridiagonal patterns, where a
 * fourth lane would only add memory traffic). */
#include <float.h>
#include <math.h>

#include "ad/sweep.h"
#include "ad/call.h"
#include "ad/dispatch.h"
#include "ad/ctx_num.h"
#include "ad/sparse/sparse.h"

#define FT_FN fwdtan1
#define FT_L 1
static void FT_FN(const tg_tape *, const double *restrict, const double *restrict,
                  double *restrict, double *restrict);
#include "ad/sparse/fwdtan.inc"
#undef FT_FN
#undef FT_L

#define FT_FN fwdtan2
#define FT_L 2
static void FT_FN(const tg_tape *, const double *restrict, const double *restrict,
                  double *restrict, double *restrict);
#include "ad/sparse/fwdtan.inc"
#undef FT_FN
#undef FT_L

#define FT_FN fwdtan3
#define FT_L 3
static void FT_FN(const tg_tape *, const double *restrict, const double *restrict,
                  double *restrict, double *restrict);
#include "ad/sparse/fwdtan.inc"
#undef FT_FN
#undef FT_L

#define FT_FN fwdtan4
#define FT_L 4
static void FT_FN(const tg_tape *, const double *restrict, const double *restrict,
                  double *restrict, double *restrict);
#include "ad/sparse/fwdtan.inc"
#undef FT_FN
#undef FT_L

#define FT_FN fwdtan8
#define FT_L TG_LANES
static void FT_FN(const tg_tape *, const double *restrict, const double *restrict,
                  double *restrict, double *restrict);
#include "ad/sparse/fwdtan.inc"
#undef FT_FN
#undef FT_L

void
sp_forward_tangent(const tg_tape *t, const double *x, const double *seed, double *v, double *vd,
                   size_t L)
{
    if (L <= 1)
        fwdtan1(t, x, seed, v, vd);
    else if (L == 2)
        fwdtan2(t, x, seed, v, vd);
    else if (L == 3)
        fwdtan3(t, x, seed, v, vd);
    else if (L == 4)
        fwdtan4(t, x, seed, v, vd);
    else
        fwdtan8(t, x, seed, v, vd);
}
