/* src/ad/reverse.c -- the adjoint sweep [Griewank & Walther, Evaluating
 * Derivatives, ch. 3]: a backwards loop over the tape (operands precede
 * results, so no ordering work is needed).  Instructions whose adjoint
 * lanes are all zero are skipped: their contribution would be exactly 0.
 * Instances (reverse.inc): 8 directions at one point (Jacobian rows); 8
 * points (batch gradients).  Single gradients take the stored-partials
 * path of fused.c instead. */
#include "ad/sweep.h"
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
