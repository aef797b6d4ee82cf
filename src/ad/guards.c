/* src/ad/guards.c -- the branch guards of tg_branch at evaluation time:
 * after the value sweep (which computed every GUARD instruction: 1.0 where
 * the condition decides as recorded), one comparison per guard, before
 * any result is written. */
#include <stdio.h>

#include "ad/sweep.h"

tg_status
ad_guards_fail(const tg_tape *t, const double *v, size_t VL, size_t l, const char *fn)
{
    for (uint32_t g = 0; g < t->nguard; g++)
        if (v[(size_t)t->guard[g] * VL + l] != 1.0)
            return tape_fail_call(TG_ERR_BRANCH, "%s: branch guard %u of tape \"%s\" (instruction "
                                  "%u) decides the other way at this point: record the tape "
                                  "again here", fn, g, t->name, t->guard[g]);
    return TG_OK;
}

int
ad_guards_hold(const tg_tape *t, const double *v, size_t VL, size_t l)
{
    for (uint32_t g = 0; g < t->nguard; g++)
        if (v[(size_t)t->guard[g] * VL + l] != 1.0)
            return 0;
    return 1;
}

tg_status
ad_guards_precheck(const tg_tape *t, double *v, const double *x, const char *fn)
{
    if (!t->nguard)
        return TG_OK;
    ad_forward_one(t, x, v);
    return ad_guards_fail(t, v, 1, 0, fn);
}
