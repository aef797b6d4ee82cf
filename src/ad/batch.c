/* src/ad/batch.c -- many points: chunks of TG_LANES points share each
 * instruction dispatch (the lane loops vectorise), and chunks are spread
 * over threads with OpenMP.  Each thread borrows its own workspace. */
#include <stdio.h>

#include "tape/alloc.h"
#include "ad/call.h"
#include "ad/layout.h"
#include "ad/lazy.h"
#include "ad/native.h"

enum { L8 = TG_LANES };

typedef enum { BATCH_EVAL, BATCH_GRAD } batch_kind;

/* Branch guards per point: st[p] (when st) says which points failed;
 * their rows stay untouched.  Counted per thread, merged at the end. */
typedef struct batch_fails {
    size_t count, first;
} batch_fails;

static void
point_failed(batch_fails *f, tg_status *st, size_t p)
{
    if (st)
        st[p] = TG_ERR_BRANCH;
    if (f->count++ == 0 || p < f->first)
        f->first = p;
}

/* Points p0..p0+L8 (full chunk) or one point (p0 only, a tail). */
static tg_status
chunk(const tg_tape *t, tg_workspace *w, batch_kind kind, size_t p0, int full,
      const double *X, double *Out, tg_status *st, batch_fails *f)
{
    size_t nin = t->nin, n = t->n;
    if (!full) {
        tg_status s = kind == BATCH_EVAL ? tg_eval_ws(t, w, X + p0 * nin, Out + p0 * t->nout)
                                         : tg_gradient_ws(t, w, X + p0 * nin, Out + p0 * nin);
        if (s == TG_ERR_BRANCH) {
            point_failed(f, st, p0);
            return TG_OK;
        }
        if (st && s == TG_OK)
            st[p0] = TG_OK;
        return s;
    }
    ad_batch_layout L = ad_layout_batch(t);
    if (ad_ws_reserve(w, L.size))
        return tape_fail_call(TG_ERR_NOMEM, "batch: out of memory for a workspace");
    double *v = AD_F64(w, L.v), *bar = AD_F64(w, L.bar);
    ad_forward_points(t, X + p0 * nin, nin, v);
    int hold[L8];
    for (size_t l = 0; l < L8; l++) {
        hold[l] = !ad_guarded(t) || ad_guards_hold(t, v, L8, l);
        if (!hold[l])
            point_failed(f, st, p0 + l);
        else if (st)
            st[p0 + l] = TG_OK;
    }
    if (kind == BATCH_EVAL) {
        for (size_t l = 0; l < L8; l++)
            for (uint32_t j = 0; j < t->nout && hold[l]; j++)
                Out[(p0 + l) * t->nout + j] = v[(size_t)t->out_ref[j] * L8 + l];
        return TG_OK;
    }
    memset(bar, 0, L8 * n * sizeof *bar);
    for (size_t l = 0; l < L8; l++)
        bar[(size_t)t->out_ref[0] * L8 + l] = 1.0;
    ad_xctx xc;     /* the loop handlers' scratch (xsweep.h) */
    ad_xctx_begin(&xc, t, AD_F64(w, L.x), L.xn);
    ad_reverse_points(t, v, bar);
    tg_status s = ad_xctx_end(&xc, "tg_gradient_batch");
    if (s != TG_OK)
        return s;
    for (size_t l = 0; l < L8; l++)
        for (size_t k = 0; k < nin && hold[l]; k++)
            Out[(p0 + l) * nin + k] = bar[(size_t)t->in_ref[k] * L8 + l];
    return TG_OK;
}

/* TG_ERR_BRANCH for count of npts points, with the reason of the first
 * (which guard, or which loop and application: tg_eval at that point --
 * the failure path only). */
static tg_status
batch_branch(const tg_tape *t, size_t count, size_t npts, size_t first, const double *X,
             const char *fn)
{
    char why[512] = "";
    tg_workspace *w = ad_ws_borrow(t);
    double *y = w && t->nout ? mem_calloc(t->nout, sizeof *y) : NULL;
    if (w && (y || !t->nout)
        && tg_eval_ws(t, w, X + first * t->nin, y) == TG_ERR_BRANCH)
        snprintf(why, sizeof why, ": %s", tg_last_error());
    mem_free(y);
    if (w)
        ad_ws_return(t, w);
    return tape_fail_call(TG_ERR_BRANCH, "%s: a branch guard of tape \"%s\" decides the other way "
                          "at %zu of %zu points (the first is point %zu%s): their rows are "
                          "untouched", fn, t->name, count, npts, first, why);
}

static tg_status
run_batch(const tg_tape *t, batch_kind kind, size_t npts, const double *X, double *Out,
          tg_status *st, const char *fn)
{
    size_t nfull = npts / L8, nchunks = nfull + npts % L8;
    tg_status status = TG_OK;
    batch_fails all = { 0, 0 };
    /* a parallel region costs tens of microseconds: only for real work */
    int parallel = nchunks > 1 && (double)npts * t->n >= 65536.0;
    (void)parallel;
#if defined(TG_HAVE_OPENMP)
#pragma omp parallel if (parallel)
#endif
    {
        tg_workspace *w = ad_ws_borrow(t);
        tg_status s = w ? TG_OK : tape_fail_call(TG_ERR_NOMEM, "batch: out of memory");
        batch_fails mine = { 0, 0 };
#if defined(TG_HAVE_OPENMP)
#pragma omp for schedule(static)
#endif
        for (size_t c = 0; c < nchunks; c++) {
            if (s != TG_OK)
                continue;
            int full = c < nfull;
            s = chunk(t, w, kind, full ? c * L8 : nfull * L8 + (c - nfull), full, X, Out, st,
                      &mine);
        }
        if (w)
            ad_ws_return(t, w);
#if defined(TG_HAVE_OPENMP)
#pragma omp critical
#endif
        {
            if (s != TG_OK)
                status = s;
            if (mine.count && (all.count == 0 || mine.first < all.first))
                all.first = mine.first;
            all.count += mine.count;
        }
    }
    if (status == TG_OK && all.count)
        return batch_branch(t, all.count, npts, all.first, X, fn);
    return status;
}

static tg_status
eval_batch(const tg_tape *t, size_t npts, const double *X, double *Y, tg_status *st,
           const char *fn)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape in the error state: %s", fn, t->err);
    if (npts == 0)
        return TG_OK;
    if ((!X && t->nin) || (!Y && t->nout))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL array", fn);
    const ad_route *r = ad_route_of(t, AD_ROUTE_F);
    if (r)
        return ad_route_batch(t, r, npts, X, Y, t->nout, st, fn);
    return run_batch(t, BATCH_EVAL, npts, X, Y, st, fn);
}

static tg_status
gradient_batch(const tg_tape *t, size_t npts, const double *X, double *G, tg_status *st,
               const char *fn)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape in the error state: %s", fn, t->err);
    tg_status cs = ad_calls_check(t, AD_NEED_VJP, fn);
    if (cs != TG_OK)
        return cs;
    if (t->nout != 1)
        return tape_fail_call(TG_ERR_SHAPE, "%s: tape has %u outputs, not 1", fn, t->nout);
    if (npts == 0)
        return TG_OK;
    if ((!X && t->nin) || (!G && t->nin))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL array", fn);
    const ad_route *r = ad_route_of(t, AD_ROUTE_GRAD);
    if (r)
        return ad_route_batch(t, r, npts, X, G, t->nin, st, fn);
    /* the lazy gradient tape (lazy.h; a batch counts as one call): its
     * outputs are the gradient, so its batch values are G row by row (its
     * guards are t's); if that fails (out of memory), the sweeps redo
     * every point */
    const tg_tape *d = ad_lazy_count(t, AD_LAZY_GRAD);
    if (d) {
        tg_status s = eval_batch(d, npts, X, G, st, fn);
        if (s == TG_OK || s == TG_ERR_BRANCH)
            return s;
    }
    return run_batch(t, BATCH_GRAD, npts, X, G, st, fn);
}

tg_status
tg_eval_batch(const tg_tape *t, size_t npts, const double *X, double *Y)
{
    return eval_batch(t, npts, X, Y, NULL, "tg_eval_batch");
}

tg_status
tg_eval_batch_status(const tg_tape *t, size_t npts, const double *X, double *Y, tg_status *st)
{
    if (!st && npts)
        return tape_fail_call(TG_ERR_ARG, "tg_eval_batch_status: NULL status array");
    return eval_batch(t, npts, X, Y, st, "tg_eval_batch_status");
}

tg_status
tg_gradient_batch(const tg_tape *t, size_t npts, const double *X, double *G)
{
    return gradient_batch(t, npts, X, G, NULL, "tg_gradient_batch");
}

tg_status
tg_gradient_batch_status(const tg_tape *t, size_t npts, const double *X, double *G,
                         tg_status *st)
{
    if (!st && npts)
        return tape_fail_call(TG_ERR_ARG, "tg_gradient_batch_status: NULL status array");
    return gradient_batch(t, npts, X, G, st, "tg_gradient_batch_status");
}
