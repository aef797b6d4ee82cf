/* src/ad/native.c -- calling the native routes of a tape (see native.h):
 * argument layout around the kernels and their work arrays, taken from
 * the caller's workspace (or the tape's pool), so a compiled call
 * allocates no more than an interpreted one. */
#include "ad/native.h"
#include "ad/sweep.h"
#include "tape/alloc.h"

/* The tape's attachment: the routes compiled for it (or none yet). */
typedef struct route_slot {
    ad_routes *r;
} route_slot;

static void *
slot_make(void)
{
    return mem_calloc(1, sizeof(route_slot));
}

static void
slot_destroy(void *p)
{
    route_slot *s = p;
    if (s->r && s->r->release)
        s->r->release(s->r);
    mem_free(s);
}

static const tape_key route_key = { slot_make, slot_destroy };

ad_routes *
ad_routes_get(const tg_tape *t)
{
    route_slot *s = tape_attachment_find(t, &route_key);   /* no allocation per call */
    ad_routes *r = s ? s->r : NULL;
    if (r && (r->n != t->n || r->nin != t->nin || r->nout != t->nout))
        return NULL;            /* recorded into since: interpret again */
    return r;
}

const ad_route *
ad_route_of(const tg_tape *t, int p)
{
    ad_routes *r = ad_routes_get(t);
    return r && r->r[p].fn ? &r->r[p] : NULL;
}

int
ad_routes_set(tg_tape *t, ad_routes *r)
{
    route_slot *s = tape_attachment(t, &route_key);
    if (!s)
        return -1;
    if (s->r && s->r->release)
        s->r->release(s->r);
    s->r = r;
    return 0;
}

tg_status
ad_route_call(const tg_tape *t, const ad_route *r, tg_workspace *w, const double *x,
              const double *v, double *out, const char *fn)
{
    size_t nin = t->nin, extra = v ? 2 * nin : 0;
    if (!w)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL workspace", fn);
    if (ad_ws_reserve(w, r->work + extra))
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for a workspace of %zu doubles", fn,
                            r->work + extra);
    const double *in = x;
    if (v) {                    /* the HVP kernel's inputs are (x, v) */
        double *xv = w->buf + r->work;
        memcpy(xv, x, nin * sizeof *xv);
        memcpy(xv + nin, v, nin * sizeof *xv);
        in = xv;
    }
    if (r->fn(in, out, w->buf) != 0)
        return tape_fail_call(TG_ERR_BRANCH, "%s: tape \"%s\": a recorded branch goes the other "
                            "way at this point", fn, t->name);
    return TG_OK;
}

/* Points per batch call: a multiple of any block size the kernels use. */
enum { CHUNK = 64 };

tg_status
ad_route_batch(const tg_tape *t, const ad_route *r, size_t npts, const double *X, double *Out,
               size_t out_per_point, tg_status *st, const char *fn)
{
    size_t nchunks = (npts + CHUNK - 1) / CHUNK;
    tg_status status = TG_OK;
    size_t nbad = 0, first = 0;
    int parallel = nchunks > 1 && (double)npts * t->n >= 65536.0;
    /* a guarded tape goes point by point: the batch kernel cannot say
     * which point a guard failed at */
    ad_kernel_batch_fn batch = ad_guarded(t) ? NULL : r->batch;
    (void)parallel;
#if defined(TG_HAVE_OPENMP)
#pragma omp parallel if (parallel)
#endif
    {
        tg_workspace *w = ad_ws_borrow(t);
        size_t need = batch ? r->batch_work : r->work;
        tg_status s = TG_OK;
        size_t mybad = 0, myfirst = 0;
        if (!w || ad_ws_reserve(w, need))
            s = tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for a workspace", fn);
#if defined(TG_HAVE_OPENMP)
#pragma omp for schedule(static)
#endif
        for (size_t c = 0; c < nchunks; c++) {
            if (s != TG_OK)
                continue;
            size_t p0 = c * CHUNK, np = npts - p0 < CHUNK ? npts - p0 : CHUNK;
            const double *Xc = X + p0 * t->nin;
            double *Oc = Out + p0 * out_per_point;
            if (batch) {
                if (batch(np, Xc, Oc, w->buf))     /* unguarded: cannot happen */
                    s = tape_fail_call(TG_ERR_BRANCH, "%s: tape \"%s\": a recorded branch goes "
                                       "the other way at a point of the batch", fn, t->name);
                for (size_t p = 0; st && p < np; p++)
                    st[p0 + p] = s;
                continue;
            }
            for (size_t p = 0; p < np; p++) {
                int bad = r->fn(Xc + p * t->nin, Oc + p * out_per_point, w->buf);
                if (st)
                    st[p0 + p] = bad ? TG_ERR_BRANCH : TG_OK;
                if (bad && mybad++ == 0)
                    myfirst = p0 + p;
            }
        }
        if (w)
            ad_ws_return(t, w);
#if defined(TG_HAVE_OPENMP)
#pragma omp critical
#endif
        {
            if (s != TG_OK)
                status = s;
            if (mybad && (nbad == 0 || myfirst < first))
                first = myfirst;
            nbad += mybad;
        }
    }
    if (status == TG_OK && nbad)
        return tape_fail_call(TG_ERR_BRANCH, "%s: a branch guard of tape \"%s\" decides the "
                              "other way at %zu of %zu points (the first is point %zu): their "
                              "rows are untouched", fn, t->name, nbad, npts, first);
    return status;
}
