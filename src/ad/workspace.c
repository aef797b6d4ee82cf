/* src/ad/workspace.c -- caller-owned scratch memory, and the small pool
 * of workspaces each tape keeps for the simple (non-_ws) calls.  The pool
 * is a fixed array of atomic slots: taking is an exchange with NULL, giving
 * back a compare-and-swap into an empty slot, so concurrent callers never
 * share a workspace and no lock is needed. */
#include <inttypes.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "ad/sweep.h"

int
ad_ws_reserve(tg_workspace *w, size_t doubles)
{
    if (doubles == 0)
        doubles = 1;                /* never a NULL buffer, even for an empty tape */
    if (doubles <= w->cap)
        return 0;
    if (doubles > SIZE_MAX / sizeof(double))
        return -1;
    double *p = tg__malloc(doubles * sizeof *p);
    if (!p)
        return -1;
    tg__free(w->buf);
    w->buf = p;
    w->cap = doubles;
    return 0;
}

tg_workspace *
tg_workspace_new(const tg_tape *t)
{
    /* enough for every call on t, the 8-lane Hessian being the largest
     * (5 + 2*TG_LANES arrays of n); pages are only touched when used.  The
     * size is checked before anything is allocated. */
    const size_t arrays = 5 + 2 * (size_t)TG_LANES;
    if (t && t->n > SIZE_MAX / sizeof(double) / arrays) {
        tg__api_fail(TG_ERR_LIMIT, "tg_workspace_new: a workspace for tape \"%s\" (%" PRIu32
                     " instructions) needs more memory than this machine can address",
                     t->name, t->n);
        return NULL;
    }
    tg_workspace *w = tg__calloc(1, sizeof *w);
    if (!w || (t && ad_ws_reserve(w, arrays * t->n))) {
        tg__free(w);
        tg__api_fail(TG_ERR_NOMEM, "tg_workspace_new: out of memory");
        return NULL;
    }
    return w;
}

void
tg_workspace_free(tg_workspace *w)
{
    if (!w)
        return;
    tg__free(w->buf);
    tg__free(w);
}

size_t
tg_workspace_bytes(const tg_workspace *w)
{
    return w ? sizeof *w + w->cap * sizeof(double) : 0;
}

tg_workspace *
ad_ws_borrow(const tg_tape *t)
{
    tg_tape *mt = (tg_tape *)(uintptr_t)t;   /* the pool is internally synchronised */
    for (int i = 0; i < TAPE_POOL; i++) {
        tg_workspace *w = atomic_exchange(&mt->pool[i], NULL);
        if (w)
            return w;
    }
    return tg_workspace_new(NULL);
}

void
ad_ws_return(const tg_tape *t, tg_workspace *w)
{
    tg_tape *mt = (tg_tape *)(uintptr_t)t;
    for (int i = 0; i < TAPE_POOL; i++) {
        tg_workspace *empty = NULL;
        if (atomic_compare_exchange_strong(&mt->pool[i], &empty, w))
            return;
    }
    tg_workspace_free(w);
}

void tape_pool_drain(tg_tape *t);

void
tape_pool_drain(tg_tape *t)
{
    for (int i = 0; i < TAPE_POOL; i++)
        tg_workspace_free(atomic_exchange(&t->pool[i], NULL));
}
