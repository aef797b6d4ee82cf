/* src/ad/guards.c -- the branch guards of tg_branch at evaluation time:
 * after the value sweep (which computed every GUARD instruction: 1.0 where
 * the condition decides as recorded), one comparison per guard, before
 * any result is written.
 *
 * Guards inside loop bodies are checked by the value sweep of the loop
 * (xforward.c: ad_body_fail per chunk of applications or per step), which
 * writes the first failing application / step j as j + 1 into the loop
 * instruction's own value slot (0.0 otherwise).  So a loop whose body holds
 * guards is one more guard here: its slot must be 0.  Nested loops work the
 * same way one level down.  A tape without guarded bodies (TAPE_XK_BGUARD
 * clear) never looks at its loops. */
#include <inttypes.h>
#include <stdio.h>

#include "ad/sweep.h"

/* Does loop record r of t have a body holding guards (at any depth)? */
static int
body_guarded(const tg_tape *t, const tape_xrec *r)
{
    return r->kind != TG_OP_CALL && (tape_xk_body(tape_body_of(t, r)) & TAPE_XK_BGUARD);
}

/* The first loop of t whose body's guards failed in lane l: its record,
 * or NULL. */
static const tape_xrec *
loop_failed(const tg_tape *t, const double *v, size_t VL, size_t l)
{
    if (!(t->xkinds & TAPE_XK_BGUARD))
        return NULL;
    for (uint32_t k = 0; k < t->nxr; k++) {
        const tape_xrec *r = &t->xr[k];
        if (v[(size_t)r->inst * VL + l] != 0.0 && body_guarded(t, r))
            return r;
    }
    return NULL;
}

tg_status
ad_guards_fail(const tg_tape *t, const double *v, size_t VL, size_t l, const char *fn)
{
    for (uint32_t g = 0; g < t->nguard; g++)
        if (v[(size_t)t->guard[g] * VL + l] != 1.0)
            return tape_fail_call(TG_ERR_BRANCH, "%s: branch guard %u of tape \"%s\" (instruction "
                                  "%u) decides the other way at this point: record the tape "
                                  "again here", fn, g, t->name, t->guard[g]);
    const tape_xrec *r = loop_failed(t, v, VL, l);
    if (r) {
        bool map = r->kind == TG_OP_MAP;
        uint64_t j = (uint64_t)v[(size_t)r->inst * VL + l] - 1;
        return tape_fail_call(TG_ERR_BRANCH, "%s: a branch guard in the body \"%s\" of the %s at "
                              "instruction %" PRIu32 " of tape \"%s\" decides the other way at %s "
                              "%" PRIu64 " (of %" PRIu64 "): record the tape again here", fn,
                              tape_body_of(t, r)->name, map ? "map" : "scan", r->inst, t->name,
                              map ? "application" : "step", j, r->count);
    }
    return TG_OK;
}

int
ad_guards_hold(const tg_tape *t, const double *v, size_t VL, size_t l)
{
    for (uint32_t g = 0; g < t->nguard; g++)
        if (v[(size_t)t->guard[g] * VL + l] != 1.0)
            return 0;
    return loop_failed(t, v, VL, l) == NULL;
}

tg_status
ad_guards_precheck(const tg_tape *t, double *v, const double *x, const char *fn)
{
    if (!ad_guarded(t))
        return TG_OK;
    ad_forward_one(t, x, v);
    return ad_guards_fail(t, v, 1, 0, fn);
}

size_t
ad_body_fail(const tg_tape *b, const double *bv, size_t C)
{
    for (size_t k = 0; k < C; k++)
        if (!ad_guards_hold(b, bv, C, k))
            return k;
    return C;
}
