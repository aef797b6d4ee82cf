/* src/ad/kinks.c -- where the recorded function is not smooth (issue 13,
 * echidna's kink detection): after a value sweep at x, every instruction
 * whose derivative is one-sided or jumps near x, with how far its
 * argument is from the kink.
 *
 * Distances, in the units of the op's argument:
 *   abs, signum            |a|                 (kink / jump at a = 0)
 *   min, max, lt, le, gt, ge   |a - b|         (the operands tie)
 *   floor, ceil, trunc, fract  |a - nearest integer|
 *   round                  |a - nearest half-integer|
 *   select                 |c| when the condition c is not itself a
 *                          comparison (a comparison reports its own tie);
 *                          a select on a comparison reports that distance
 * NaN distances (NaN operands) are never reported. */
#include <math.h>

#include "ad/layout.h"

static bool
is_comparison(uint8_t op)
{
    return op == TG_OP_LT || op == TG_OP_LE || op == TG_OP_GT || op == TG_OP_GE;
}

/* The distance of instruction i to its kink, or NaN when i has none. */
static double
kink_dist(const tg_tape *t, const double *v, uint32_t i)
{
    uint8_t op = t->op[i];
    double a = v[t->a[i]];
    switch (op) {
    case TG_OP_ABS:
    case TG_OP_SIGNUM:
        return fabs(a);
    case TG_OP_MIN:
    case TG_OP_MAX:
    case TG_OP_LT:
    case TG_OP_LE:
    case TG_OP_GT:
    case TG_OP_GE:
        return fabs(a - v[t->b[i]]);
    case TG_OP_FLOOR:
    case TG_OP_CEIL:
    case TG_OP_TRUNC:
    case TG_OP_FRACT:
        return fabs(a - nearbyint(a));
    case TG_OP_ROUND:
        return fabs(a - (floor(a) + 0.5));
    case TG_OP_SELECT:
        if (is_comparison(t->op[t->a[i]]))
            return kink_dist(t, v, t->a[i]);
        return fabs(a);
    default:
        return NAN;
    }
}

tg_status
tg_kinks(const tg_tape *t, const double *x, double tol, tg_kink *out, size_t cap, size_t *n)
{
    const char *fn = "tg_kinks";
    if (!t || (!x && t->nin) || !n || (!out && cap))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL argument", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn,
                              t->name, t->err);
    if (!(tol >= 0.0))
        return tape_fail_call(TG_ERR_ARG, "%s: tol must be >= 0 (got %g)", fn, tol);
    tg_workspace *w = ad_ws_borrow(t);
    if (!w || ad_ws_reserve(w, ad_layout_eval(t).size)) {
        if (w)
            ad_ws_return(t, w);
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for a workspace", fn);
    }
    double *v = AD_F64(w, ad_layout_eval(t).v);
    ad_forward_one(t, x, v);
    size_t found = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        double d = kink_dist(t, v, i);
        if (!(d <= tol))
            continue;
        if (found < cap)
            out[found] = (tg_kink){ i, (tg_opcode)t->op[i], d };
        found++;
    }
    ad_ws_return(t, w);
    *n = found;
    return TG_OK;
}
