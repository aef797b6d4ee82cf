/* src/ad/sparsity.c -- Jacobian seed compression inside tg_jacobian
 * [Curtis, Powell & Reid, IMA J. Appl. Math. 13 (1974); Gebremedhin, Manne
 * & Pothen, SIAM Review 47(4), 2005], by the machinery of src/ad/sparse:
 * the structural pattern and its distance-2 colouring (columns or rows,
 * whichever needs fewer colours) are those of tg_jacobian_sparsity, and the
 * compressed sweeps those of tg_sparse_jacobian, scattered into the dense
 * J.  The pattern is structural, so the result equals the uncompressed one
 * (up to the sign of zeros).
 *
 * The coloured pattern is made once per tape and kept on it as an
 * attachment (made by tg_workspace_new(t) or the first tg_jacobian), so a
 * call costs only its sweeps and never allocates after tg_workspace_new.
 * It is keyed by the tape's instruction and scalar counts: recording more
 * makes it stale and the next call rebuilds it (recording is never
 * concurrent with calls, so no call can be using the stale one then;
 * optimisation changes no structure the pattern could miss).  A pattern
 * whose colouring would visit more pairs of entries than the dense sweeps
 * do work is left uncoloured: compression cannot pay there. */
#include "tape/alloc.h"
#include "ad/layout.h"
#include "ad/sparse/sparse.h"

enum { L8 = TG_LANES };

typedef struct jac_cache {
    _Atomic(tg_sparsity *) s;
} jac_cache;

static void *
cache_make(void)
{
    jac_cache *c = mem_calloc(1, sizeof *c);
    if (c)
        atomic_init(&c->s, NULL);
    return c;
}

static void
cache_destroy(void *obj)
{
    jac_cache *c = obj;
    tg_sparsity_free(atomic_load(&c->s));
    mem_free(c);
}

static const tape_key cache_key = { cache_make, cache_destroy };

/* Dense sweeps of 8 lanes a Jacobian of t takes: by columns or by rows. */
static size_t
sweeps(const tg_tape *t)
{
    size_t nin = t->nin, m = t->nout;
    return ((nin < m ? nin : m) + L8 - 1) / L8;
}

static int
current(const tg_sparsity *s, const tg_tape *t)
{
    return s && s->ninst == t->n && s->nin == t->nin && s->nout == t->nout;
}

/* t's coloured Jacobian pattern, or NULL when compression cannot pay (one
 * sweep anyway, too dense, too many colours) or memory ran out. */
static const tg_sparsity *
pattern(const tg_tape *t)
{
    if (sweeps(t) <= 1)
        return NULL;
    jac_cache *c = tape_attachment(t, &cache_key);
    if (!c)
        return NULL;
    tg_sparsity *s = atomic_load(&c->s);
    if (!current(s, t)) {
        tg_sparsity *fresh = sp_build(t, SP_JAC, TG_ALL, (double)t->n * (double)t->nin);
        if (!fresh)
            return NULL;
        if (atomic_compare_exchange_strong(&c->s, &s, fresh)) {
            tg_sparsity_free(s);            /* stale: the tape has grown since */
            s = fresh;
        } else {
            tg_sparsity_free(fresh);        /* another thread was first: take its */
        }
    }
    if (s->status != TG_OK || s->ncolors == UINT32_MAX || (s->ncolors + L8 - 1) / L8 >= sweeps(t))
        return NULL;
    return s;
}

int
ad_jacobian_need(const tg_tape *t, tg_workspace *w, size_t *need)
{
    (void)w;
    /* the seeded layout is one of AD_LAYOUTS, so the workspace covers the
     * compressed sweeps whether or not the pattern could be made here (out
     * of memory: the first call will try again) */
    *need = ad_layout_jacobian(t).size;
    if (pattern(t) && ad_layout_seeded(t).size > *need)
        *need = ad_layout_seeded(t).size;
    return 0;
}

int
ad_jacobian_compressed(const tg_tape *t, tg_workspace *w, const double *x, double *J,
                       const char *fn, tg_status *st)
{
    const tg_sparsity *s = pattern(t);
    if (!s || ad_ws_reserve(w, ad_layout_seeded(t).size))
        return 1;                                   /* sweep densely */
    *st = sp_jacobian_sweeps(t, s, w, x, J, t->nin, fn);
    return 0;
}
