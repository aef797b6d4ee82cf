/* src/ad/batch.c -- many points: chunks of TG_LANES points share each
 * instruction dispatch (the lane loops vectorise), and chunks are spread
 * over threads with OpenMP.  Each thread borrows its own workspace. */
#include "ad/layout.h"
#include "ad/lazy.h"
#include "ad/native.h"

enum { L8 = TG_LANES };

typedef enum { BATCH_EVAL, BATCH_GRAD } batch_kind;

/* Points p0..p0+L8 (full chunk) or one point (p0 only, a tail). */
static tg_status
chunk(const tg_tape *t, tg_workspace *w, batch_kind kind, size_t p0, int full,
      const double *X, double *Out)
{
    size_t nin = t->nin, n = t->n;
    if (!full)
        return kind == BATCH_EVAL ? tg_eval_ws(t, w, X + p0 * nin, Out + p0 * t->nout)
                                  : tg_gradient_ws(t, w, X + p0 * nin, Out + p0 * nin);
    ad_batch_layout L = ad_layout_batch(t);
    if (ad_ws_reserve(w, L.size))
        return tape_fail_call(TG_ERR_NOMEM, "batch: out of memory for a workspace");
    double *v = AD_F64(w, L.v), *bar = AD_F64(w, L.bar);
    ad_forward_points(t, X + p0 * nin, nin, v);
    if (kind == BATCH_EVAL) {
        for (size_t l = 0; l < L8; l++)
            for (uint32_t j = 0; j < t->nout; j++)
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
        for (size_t k = 0; k < nin; k++)
            Out[(p0 + l) * nin + k] = bar[(size_t)t->in_ref[k] * L8 + l];
    return TG_OK;
}

static tg_status
run_batch(const tg_tape *t, batch_kind kind, size_t npts, const double *X, double *Out)
{
    size_t nfull = npts / L8, nchunks = nfull + npts % L8;
    tg_status status = TG_OK;
    /* a parallel region costs tens of microseconds: only for real work */
    int parallel = nchunks > 1 && (double)npts * t->n >= 65536.0;
    (void)parallel;
#if defined(TG_HAVE_OPENMP)
#pragma omp parallel if (parallel)
#endif
    {
        tg_workspace *w = ad_ws_borrow(t);
        tg_status s = w ? TG_OK : tape_fail_call(TG_ERR_NOMEM, "batch: out of memory");
#if defined(TG_HAVE_OPENMP)
#pragma omp for schedule(static)
#endif
        for (size_t c = 0; c < nchunks; c++) {
            if (s != TG_OK)
                continue;
            int full = c < nfull;
            s = chunk(t, w, kind, full ? c * L8 : nfull * L8 + (c - nfull), full, X, Out);
        }
        if (w)
            ad_ws_return(t, w);
        if (s != TG_OK) {
#if defined(TG_HAVE_OPENMP)
#pragma omp critical
#endif
            status = s;
        }
    }
    return status;
}

tg_status
tg_eval_batch(const tg_tape *t, size_t npts, const double *X, double *Y)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "tg_eval_batch: NULL tape");
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "tg_eval_batch: tape in the error state: %s", t->err);
    if (tape_refuse_call(t, "tg_eval_batch") != TG_OK)
        return TG_ERR_UNSUPPORTED;
    if (npts == 0)
        return TG_OK;
    if ((!X && t->nin) || (!Y && t->nout))
        return tape_fail_call(TG_ERR_ARG, "tg_eval_batch: NULL array");
    const ad_route *r = ad_route_of(t, AD_ROUTE_F);
    if (r)
        return ad_route_batch(t, r, npts, X, Y, t->nout, "tg_eval_batch");
    return run_batch(t, BATCH_EVAL, npts, X, Y);
}

tg_status
tg_gradient_batch(const tg_tape *t, size_t npts, const double *X, double *G)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "tg_gradient_batch: NULL tape");
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "tg_gradient_batch: tape in the error state: %s", t->err);
    if (t->nout != 1)
        return tape_fail_call(TG_ERR_SHAPE, "tg_gradient_batch: tape has %u outputs, not 1", t->nout);
    if (npts == 0)
        return TG_OK;
    if ((!X && t->nin) || (!G && t->nin))
        return tape_fail_call(TG_ERR_ARG, "tg_gradient_batch: NULL array");
    const ad_route *r = ad_route_of(t, AD_ROUTE_GRAD);
    if (r)
        return ad_route_batch(t, r, npts, X, G, t->nin, "tg_gradient_batch");
    /* the lazy gradient tape (lazy.h; a batch counts as one call): its
     * outputs are the gradient, so its batch values are G row by row; if
     * that fails (out of memory), the sweeps redo every point */
    const tg_tape *d = ad_lazy_count(t, AD_LAZY_GRAD);
    if (d && tg_eval_batch(d, npts, X, G) == TG_OK)
        return TG_OK;
    return run_batch(t, BATCH_GRAD, npts, X, G);
}
