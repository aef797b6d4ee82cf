/* src/ad/workspace.c -- caller-owned scratch memory, sized by the layouts
 * of layout.h, and the small pool of workspaces kept on each tape (as a
 * tape attachment) for the simple (non-_ws) calls.  The pool is a fixed
 * array of atomic slots: taking is an exchange with NULL, giving back a
 * compare-and-swap into an empty slot, so concurrent callers never share a
 * workspace and no lock is needed. */
#include <stdlib.h>

#include "tape/alloc.h"
#include "ad/layout.h"

int
ad_ws_reserve(tg_workspace *w, size_t doubles)
{
    if (doubles == 0)
        doubles = 1;                /* never a NULL buffer, even for an empty tape */
    if (doubles <= w->cap)
        return 0;
    if (doubles > SIZE_MAX / sizeof(double))
        return -1;
    double *p = mem_malloc(doubles * sizeof *p);
    if (!p)
        return -1;
    mem_free(w->buf);
    w->buf = p;
    w->cap = doubles;
    return 0;
}

/* The doubles a workspace needs for every call on t: the largest layout. */
static size_t
need_for(const tg_tape *t, tg_workspace *scratch)
{
    size_t need = 0;
#define AD_NEED(kind)                                                           \
    if (ad_layout_##kind(t).size > need)                                        \
        need = ad_layout_##kind(t).size;
    AD_LAYOUTS(AD_NEED)
#undef AD_NEED
    /* the Jacobian's counting pass runs in the scratch, sized as above */
    if (ad_ws_reserve(scratch, need))
        return 0;
    size_t jac = ad_jacobian_need(t, scratch);
    if (jac == 0)
        return 0;
    return jac > need ? jac : need;
}

tg_workspace *
tg_workspace_new(const tg_tape *t)
{
    tg_workspace *w = mem_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (t && t->status == TG_OK) {
        size_t need = need_for(t, w);
        if (need == 0 || ad_ws_reserve(w, need)) {
            tg_workspace_free(w);
            return NULL;
        }
    }
    return w;
}

void
tg_workspace_free(tg_workspace *w)
{
    if (!w)
        return;
    mem_free(w->buf);
    mem_free(w);
}

size_t
tg_workspace_bytes(const tg_workspace *w)
{
    return w ? sizeof *w + w->cap * sizeof(double) : 0;
}

/* ------------------------------------------------ the per-tape pool */

enum { POOL_SLOTS = 8 };

typedef struct ws_pool {
    _Atomic(tg_workspace *) slot[POOL_SLOTS];
} ws_pool;

static void *
pool_make(void)
{
    ws_pool *p = mem_malloc(sizeof *p);
    if (p)
        for (int i = 0; i < POOL_SLOTS; i++)
            atomic_init(&p->slot[i], NULL);
    return p;
}

static void
pool_destroy(void *obj)
{
    ws_pool *p = obj;
    for (int i = 0; i < POOL_SLOTS; i++)
        tg_workspace_free(atomic_load(&p->slot[i]));
    mem_free(p);
}

static const tape_key pool_key = { pool_make, pool_destroy };

tg_workspace *
ad_ws_borrow(const tg_tape *t)
{
    ws_pool *p = tape_attachment(t, &pool_key);
    for (int i = 0; p && i < POOL_SLOTS; i++) {
        tg_workspace *w = atomic_exchange(&p->slot[i], NULL);
        if (w)
            return w;
    }
    return tg_workspace_new(NULL);
}

void
ad_ws_return(const tg_tape *t, tg_workspace *w)
{
    ws_pool *p = tape_attachment(t, &pool_key);
    for (int i = 0; p && i < POOL_SLOTS; i++) {
        tg_workspace *empty = NULL;
        if (atomic_compare_exchange_strong(&p->slot[i], &empty, w))
            return;
    }
    tg_workspace_free(w);
}
