/* src/ad/multi.c -- derivatives with respect to one input block (the other
 * blocks are parameters, held fixed: CppAD's dynamic parameters, ADOL-C's
 * mkparam) and with many directions per call (k directions swept
 * TG_LANES at a time over one value sweep).  The same sweeps as api.c;
 * results agree with the calls without wrt on the selected columns (up to
 * the sign of zeros where the sweep differs: the multi-direction VJP runs
 * the dispatching adjoint sweep, tg_vjp the stored-partials one). */
#include "ad/layout.h"

enum { L8 = TG_LANES };


#define CHECK(expr)                                                             \
    do {                                                                        \
        tg_status s_ = (expr);                                                  \
        if (s_ != TG_OK)                                                        \
            return s_;                                                          \
    } while (0)

/* A NULL array is an error unless it would hold no element. */
#define NEED(p, count)                                                          \
    do {                                                                        \
        if (!(p) && (count) != 0)                                               \
            return tape_fail_call(TG_ERR_ARG, "%s: argument '%s' is NULL", fn, #p); \
    } while (0)

/* The tape is usable, wrt names a block (or TG_ALL): [lo, lo + nw). */
static tg_status
prologue(const tg_tape *t, tg_workspace *w, int wrt, int scalar, const char *fn, uint32_t *lo,
         uint32_t *nw)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                            t->err);
    if (!w)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL workspace", fn);
    if (wrt == TG_ALL) {
        *lo = 0;
        *nw = t->nin;
    } else if (wrt >= 0 && (uint32_t)wrt < t->ninb) {
        *lo = t->inb[wrt].offset;
        *nw = t->inb[wrt].size;
    } else {
        return tape_fail_call(TG_ERR_ARG, "%s: wrt %d is not an input block of \"%s\" (it has %u)",
                            fn, wrt, t->name, t->ninb);
    }
    if (scalar && t->nout != 1)
        return tape_fail_call(TG_ERR_SHAPE, "%s: tape \"%s\" has %u outputs, not 1", fn, t->name,
                            t->nout);
    return TG_OK;
}

static tg_status
reserve(tg_workspace *w, size_t doubles, const char *fn)
{
    if (ad_ws_reserve(w, doubles))
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for a workspace of %zu doubles", fn,
                            doubles);
    return TG_OK;
}

void
ad_first_order(const tg_tape *t, const ad_reverse_layout *L, tg_workspace *w, const double *x,
               const double *wout)
{
    double *v = AD_F64(w, L->v), *bar = AD_F64(w, L->bar), *pa = AD_F64(w, L->pa);
    double *pb = AD_F64(w, L->pb);
    uint32_t *ta = AD_U32(w, L->ta), *tb = AD_U32(w, L->tb);
    ad_forward_partials(t, x, v, pa, pb, ta, tb);
    memset(bar, 0, t->n * sizeof *bar);
    for (uint32_t j = 0; j < t->nout; j++)
        bar[t->out_ref[j]] += wout ? wout[j] : 1.0;
    ad_reverse_stored_x(t, v, pa, pb, ta, tb, bar);
}

/* ------------------------------------------------------------ one block */

/* gradient: the scalar output seeded with 1; else cotangents wout[m] */
static tg_status
vjp_wrt(const tg_tape *t, tg_workspace *w, int wrt, const double *x, const double *wout,
        double *wj, int gradient, const char *fn)
{
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, gradient, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(wj, nw);
    if (!gradient)
        NEED(wout, t->nout);
    ad_reverse_layout L = ad_layout_reverse(t);
    CHECK(reserve(w, L.size, fn));
    AD_XBEGIN(w, L);
    ad_first_order(t, &L, w, x, wout);
    AD_XEND();
    AD_GUARDS(t, AD_F64(w, L.v), fn);
    const double *bar = AD_F64(w, L.bar);
    for (uint32_t k = 0; k < nw; k++)
        wj[k] = bar[t->in_ref[lo + k]];
    return TG_OK;
}

tg_status
tg_gradient_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x, double *g)
{
    return vjp_wrt(t, w, wrt, x, NULL, g, 1, "tg_gradient_wrt");
}

tg_status
tg_vjp_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x, const double *w_,
              double *wj)
{
    return vjp_wrt(t, w, wrt, x, w_, wj, 0, "tg_vjp_wrt");
}

/* seed[k*L + l] over all inputs: zero outside [lo, lo + nw) */
static void
seed_block(size_t nin, uint32_t lo, uint32_t nw, size_t L, const double *V, size_t ldv, size_t k,
           double *seed)
{
    memset(seed, 0, nin * L * sizeof *seed);
    for (size_t l = 0; l < k; l++)
        for (uint32_t j = 0; j < nw; j++)
            seed[((size_t)lo + j) * L + l] = V[l * ldv + j];
}

tg_status
tg_jvp_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x, const double *v_,
              double *jv)
{
    const char *fn = "tg_jvp_wrt";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 0, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(v_, nw);
    NEED(jv, t->nout);
    ad_seeded_layout L = ad_layout_seeded(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *vd = AD_F64(w, L.lanes), *seed = AD_F64(w, L.seed);
    seed_block(t->nin, lo, nw, 1, v_, 0, 1, seed);
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    ad_tangent_one(t, v, seed, vd);
    AD_XEND();
    for (uint32_t j = 0; j < t->nout; j++)
        jv[j] = vd[t->out_ref[j]];
    return TG_OK;
}

tg_status
tg_hvp_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x, const double *v_,
              double *hv)
{
    const char *fn = "tg_hvp_wrt";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 1, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(v_, nw);
    NEED(hv, nw);
    size_t n = t->n;
    ad_hvp_wrt_layout L = ad_layout_hvp_wrt(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.hvp.v), *vd = AD_F64(w, L.hvp.vd), *wb = AD_F64(w, L.hvp.w);
    double *wd = AD_F64(w, L.hvp.wd), *seed = AD_F64(w, L.seed);
    seed_block(t->nin, lo, nw, 1, v_, 0, 1, seed);
    AD_XBEGIN(w, L.hvp);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    ad_tangent_one(t, v, seed, vd);
    memset(wb, 0, n * sizeof *wb);
    memset(wd, 0, n * sizeof *wd);
    wb[t->out_ref[0]] = 1.0;
    ad_second_one(t, v, vd, wb, wd);
    AD_XEND();
    for (uint32_t k = 0; k < nw; k++)
        hv[k] = wd[t->in_ref[lo + k]];
    return TG_OK;
}

tg_status
tg_jacobian_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x, double *J)
{
    const char *fn = "tg_jacobian_wrt";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 0, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(J, (size_t)t->nout * nw);
    size_t n = t->n, m = t->nout;
    ad_jacobian_layout L = ad_layout_jacobian(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *lanes = AD_F64(w, L.lanes);
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    if (nw <= m) {          /* ceil(nw/8) tangent sweeps, unit seeds from lo + j0 */
        for (size_t j0 = 0; j0 < nw; j0 += L8) {
            size_t cnt = nw - j0 < L8 ? nw - j0 : L8;
            ad_tangent_lanes(t, v, NULL, lo + j0, lanes);
            for (size_t i = 0; i < m; i++)
                for (size_t l = 0; l < cnt; l++)
                    J[i * nw + j0 + l] = lanes[(size_t)t->out_ref[i] * L8 + l];
        }
        AD_XEND();
        return TG_OK;
    }
    for (size_t i0 = 0; i0 < m; i0 += L8) {     /* ceil(m/8) adjoint sweeps */
        size_t cnt = m - i0 < L8 ? m - i0 : L8;
        memset(lanes, 0, L8 * n * sizeof *lanes);
        for (size_t l = 0; l < cnt; l++)
            lanes[(size_t)t->out_ref[i0 + l] * L8 + l] += 1.0;
        ad_reverse_lanes(t, v, lanes);
        for (size_t l = 0; l < cnt; l++)
            for (size_t k = 0; k < nw; k++)
                J[(i0 + l) * nw + k] = lanes[(size_t)t->in_ref[lo + k] * L8 + l];
    }
    AD_XEND();
    return TG_OK;
}

tg_status
tg_hessian_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x, double *H)
{
    const char *fn = "tg_hessian_wrt";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 1, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(H, (size_t)nw * nw);
    size_t n = t->n;
    ad_hessian_layout L = ad_layout_hessian(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.first.v), *wb = AD_F64(w, L.first.bar);
    double *vd = AD_F64(w, L.vd), *wd = AD_F64(w, L.wd);
    AD_XBEGIN(w, L);
    ad_first_order(t, &L.first, w, x, NULL);
    AD_XGUARDS(v);
    for (size_t j0 = 0; j0 < nw; j0 += L8) {
        size_t cnt = nw - j0 < L8 ? nw - j0 : L8;
        ad_tangent_lanes(t, v, NULL, lo + j0, vd);
        memset(wd, 0, L8 * n * sizeof *wd);
        ad_second_lanes(t, v, vd, wb, wd);
        for (size_t k = 0; k < nw; k++)
            for (size_t l = 0; l < cnt; l++)
                H[k * nw + j0 + l] = wd[(size_t)t->in_ref[lo + k] * L8 + l];
    }
    AD_XEND();
    return TG_OK;
}

/* -------------------------------------------------------- many directions */

tg_status
tg_jvp_multi_ws(const tg_tape *t, tg_workspace *w, int wrt, size_t k, const double *x,
                const double *V, double *JV)
{
    const char *fn = "tg_jvp_multi";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 0, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(V, k * nw);
    NEED(JV, k * t->nout);
    size_t m = t->nout;
    ad_seeded_layout L = ad_layout_seeded(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *lanes = AD_F64(w, L.lanes), *seed = AD_F64(w, L.seed);
    if (k == 0)
        return TG_OK;
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    for (size_t d0 = 0; d0 < k; d0 += L8) {
        size_t cnt = k - d0 < L8 ? k - d0 : L8;
        seed_block(t->nin, lo, nw, L8, V + d0 * nw, nw, cnt, seed);
        ad_tangent_lanes(t, v, seed, 0, lanes);
        for (size_t l = 0; l < cnt; l++)
            for (size_t i = 0; i < m; i++)
                JV[(d0 + l) * m + i] = lanes[(size_t)t->out_ref[i] * L8 + l];
    }
    AD_XEND();
    return TG_OK;
}

tg_status
tg_vjp_multi_ws(const tg_tape *t, tg_workspace *w, int wrt, size_t k, const double *x,
                const double *W, double *WJ)
{
    const char *fn = "tg_vjp_multi";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 0, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(W, k * t->nout);
    NEED(WJ, k * nw);
    size_t n = t->n, m = t->nout;
    ad_jacobian_layout L = ad_layout_jacobian(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *bar = AD_F64(w, L.lanes);
    if (k == 0)
        return TG_OK;
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    for (size_t d0 = 0; d0 < k; d0 += L8) {
        size_t cnt = k - d0 < L8 ? k - d0 : L8;
        memset(bar, 0, L8 * n * sizeof *bar);
        for (size_t l = 0; l < cnt; l++)
            for (size_t i = 0; i < m; i++)
                bar[(size_t)t->out_ref[i] * L8 + l] += W[(d0 + l) * m + i];
        ad_reverse_lanes(t, v, bar);
        for (size_t l = 0; l < cnt; l++)
            for (uint32_t j = 0; j < nw; j++)
                WJ[(d0 + l) * nw + j] = bar[(size_t)t->in_ref[lo + j] * L8 + l];
    }
    AD_XEND();
    return TG_OK;
}

tg_status
tg_hvp_multi_ws(const tg_tape *t, tg_workspace *w, int wrt, size_t k, const double *x,
                const double *V, double *HV)
{
    const char *fn = "tg_hvp_multi";
    uint32_t lo = 0, nw = 0;
    CHECK(prologue(t, w, wrt, 1, fn, &lo, &nw));
    NEED(x, t->nin);
    NEED(V, k * nw);
    NEED(HV, k * nw);
    size_t n = t->n;
    ad_hessian_layout L = ad_layout_hessian(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.first.v), *wb = AD_F64(w, L.first.bar);
    double *vd = AD_F64(w, L.vd), *wd = AD_F64(w, L.wd);
    if (k == 0)
        return TG_OK;
    AD_XBEGIN(w, L);
    ad_first_order(t, &L.first, w, x, NULL);
    AD_XGUARDS(v);
    for (size_t d0 = 0; d0 < k; d0 += L8) {
        size_t cnt = k - d0 < L8 ? k - d0 : L8;
        seed_block(t->nin, lo, nw, L8, V + d0 * nw, nw, cnt, wd);   /* seeds: nin*8 <= 8n */
        ad_tangent_lanes(t, v, wd, 0, vd);
        memset(wd, 0, L8 * n * sizeof *wd);
        ad_second_lanes(t, v, vd, wb, wd);
        for (size_t l = 0; l < cnt; l++)
            for (uint32_t j = 0; j < nw; j++)
                HV[(d0 + l) * nw + j] = wd[(size_t)t->in_ref[lo + j] * L8 + l];
    }
    AD_XEND();
    return TG_OK;
}

/* ------------------------------------------------- pooled-workspace calls */

#define POOLED(fn, call)                                                        \
    do {                                                                        \
        if (!t)                                                                 \
            return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);               \
        tg_workspace *w = ad_ws_borrow(t);                                      \
        if (!w)                                                                 \
            return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for a workspace", fn); \
        tg_status st = (call);                                                  \
        ad_ws_return(t, w);                                                     \
        return st;                                                              \
    } while (0)

tg_status tg_gradient_wrt(const tg_tape *t, int wrt, const double *x, double *g)
{ POOLED("tg_gradient_wrt", tg_gradient_wrt_ws(t, w, wrt, x, g)); }
tg_status tg_jacobian_wrt(const tg_tape *t, int wrt, const double *x, double *J)
{ POOLED("tg_jacobian_wrt", tg_jacobian_wrt_ws(t, w, wrt, x, J)); }
tg_status tg_jvp_wrt(const tg_tape *t, int wrt, const double *x, const double *v, double *jv)
{ POOLED("tg_jvp_wrt", tg_jvp_wrt_ws(t, w, wrt, x, v, jv)); }
tg_status tg_vjp_wrt(const tg_tape *t, int wrt, const double *x, const double *w_, double *wj)
{ POOLED("tg_vjp_wrt", tg_vjp_wrt_ws(t, w, wrt, x, w_, wj)); }
tg_status tg_hessian_wrt(const tg_tape *t, int wrt, const double *x, double *H)
{ POOLED("tg_hessian_wrt", tg_hessian_wrt_ws(t, w, wrt, x, H)); }
tg_status tg_hvp_wrt(const tg_tape *t, int wrt, const double *x, const double *v, double *hv)
{ POOLED("tg_hvp_wrt", tg_hvp_wrt_ws(t, w, wrt, x, v, hv)); }
tg_status tg_jvp_multi(const tg_tape *t, int wrt, size_t k, const double *x, const double *V,
                       double *JV)
{ POOLED("tg_jvp_multi", tg_jvp_multi_ws(t, w, wrt, k, x, V, JV)); }
tg_status tg_vjp_multi(const tg_tape *t, int wrt, size_t k, const double *x, const double *W,
                       double *WJ)
{ POOLED("tg_vjp_multi", tg_vjp_multi_ws(t, w, wrt, k, x, W, WJ)); }
tg_status tg_hvp_multi(const tg_tape *t, int wrt, size_t k, const double *x, const double *V,
                       double *HV)
{ POOLED("tg_hvp_multi", tg_hvp_multi_ws(t, w, wrt, k, x, V, HV)); }
