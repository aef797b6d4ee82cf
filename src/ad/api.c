/* src/ad/api.c -- the numeric entry points: argument checks, seeding and
 * read-out around the sweeps in forward.c, reverse.c, tangent.c and
 * second.c, in the workspace layouts of layout.h.  Outputs are written only after every check has
 * passed and the workspace is in place, so an error leaves them untouched. */
#include "ad/call.h"
#include "ad/layout.h"
#include "ad/lazy.h"
#include "ad/native.h"

enum { L8 = TG_LANES };

static tg_status
check_tape(const tg_tape *t, const char *fn)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                            t->err);
    return TG_OK;
}

/* A NULL array is an error unless it would hold no element. */
#define NEED(p, count)                                                          \
    do {                                                                        \
        if (!(p) && (count) != 0)                                               \
            return tape_fail_call(TG_ERR_ARG, "%s: argument '%s' is NULL", fn, #p); \
    } while (0)

#define CHECK(expr)                                                             \
    do {                                                                        \
        tg_status s_ = (expr);                                                  \
        if (s_ != TG_OK)                                                        \
            return s_;                                                          \
    } while (0)


/* Compiled by tg_tape_compile: the kernel instead of the sweeps. */
#define ROUTE(part, v, out)                                                     \
    do {                                                                        \
        const ad_route *r_ = ad_route_of(t, part);                              \
        if (r_)                                                                 \
            return ad_route_call(t, r_, w, x, v, out, fn);                      \
    } while (0)

static tg_status
scalar_output(const tg_tape *t, const char *fn)
{
    if (t->nout != 1)
        return tape_fail_call(TG_ERR_SHAPE, "%s: tape \"%s\" has %u outputs, not 1", fn, t->name,
                            t->nout);
    return TG_OK;
}

static tg_status
reserve(tg_workspace *w, size_t doubles, const char *fn)
{
    if (!w)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL workspace", fn);
    if (ad_ws_reserve(w, doubles))
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for a workspace of %zu doubles", fn,
                            doubles);
    return TG_OK;
}

static void
zero(double *p, size_t count)
{
    memset(p, 0, count * sizeof *p);
}

tg_status
tg_eval_ws(const tg_tape *t, tg_workspace *w, const double *x, double *y)
{
    const char *fn = "tg_eval";
    CHECK(check_tape(t, fn));
    NEED(x, t->nin);
    NEED(y, t->nout);
    ROUTE(AD_ROUTE_F, NULL, y);
    ad_eval_layout L = ad_layout_eval(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v);
    ad_forward_one(t, x, v);
    AD_GUARDS(t, v, fn);
    for (uint32_t j = 0; j < t->nout; j++)
        y[j] = v[t->out_ref[j]];
    return TG_OK;
}

/* One reverse sweep from output cotangent wout (NULL: the single output
 * seeded with 1); result into wj (n). */
static tg_status
reverse_one(const tg_tape *t, tg_workspace *w, const double *x, const double *wout, double *wj,
            const char *fn)
{
    ad_reverse_layout L = ad_layout_reverse(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *bar = AD_F64(w, L.bar), *pa = AD_F64(w, L.pa);
    double *pb = AD_F64(w, L.pb);
    uint32_t *ta = AD_U32(w, L.ta), *tb = AD_U32(w, L.tb);
    AD_XBEGIN(w, L);
    ad_forward_partials(t, x, v, pa, pb, ta, tb);
    AD_XGUARDS(v);
    zero(bar, t->n);
    for (uint32_t j = 0; j < t->nout; j++)
        bar[t->out_ref[j]] += wout ? wout[j] : 1.0;
    ad_reverse_stored_x(t, v, pa, pb, ta, tb, bar);
    AD_XEND();
    for (uint32_t k = 0; k < t->nin; k++)
        wj[k] = bar[t->in_ref[k]];
    return TG_OK;
}

/* The lazily built derivative tape (lazy.h) of kind k, when t has one and
 * w already holds what it needs: a _ws call never allocates for it (too
 * small a workspace just means the sweep).  1 when it has written out. */
static int
lazy_fits(const tg_tape *t, int k, tg_workspace *w, const double *x, const double *v,
          double *out, tg_status *st, const char *fn)
{
    const tg_tape *d = w ? ad_lazy_get(t, k) : NULL;
    if (!d || w->cap < ad_lazy_need(d, k))
        return 0;
    *st = ad_lazy_eval(d, k, w, x, v, out, fn);
    return 1;
}

tg_status
tg_gradient_ws(const tg_tape *t, tg_workspace *w, const double *x, double *g)
{
    const char *fn = "tg_gradient";
    CHECK(check_tape(t, fn));
    CHECK(ad_calls_check(t, AD_NEED_VJP, fn));
    CHECK(scalar_output(t, fn));
    NEED(x, t->nin);
    NEED(g, t->nin);
    ROUTE(AD_ROUTE_GRAD, NULL, g);
    tg_status st;
    if (lazy_fits(t, AD_LAZY_GRAD, w, x, NULL, g, &st, fn))
        return st;
    return reverse_one(t, w, x, NULL, g, fn);
}

tg_status
tg_vjp_ws(const tg_tape *t, tg_workspace *w, const double *x, const double *w_, double *wj)
{
    const char *fn = "tg_vjp";
    CHECK(check_tape(t, fn));
    CHECK(ad_calls_check(t, AD_NEED_VJP, fn));
    NEED(x, t->nin);
    NEED(w_, t->nout);
    NEED(wj, t->nin);
    return reverse_one(t, w, x, w_, wj, fn);
}

tg_status
tg_jvp_ws(const tg_tape *t, tg_workspace *w, const double *x, const double *v_, double *jv)
{
    const char *fn = "tg_jvp";
    CHECK(check_tape(t, fn));
    CHECK(ad_calls_check(t, AD_NEED_JVP, fn));
    NEED(x, t->nin);
    NEED(v_, t->nin);
    NEED(jv, t->nout);
    ad_jvp_layout L = ad_layout_jvp(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *vd = AD_F64(w, L.vd);
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    ad_tangent_one(t, v, v_, vd);
    AD_XEND();
    for (uint32_t j = 0; j < t->nout; j++)
        jv[j] = vd[t->out_ref[j]];
    return TG_OK;
}

/* Columns j0.. of J by one 8-lane tangent sweep. */
static void
jacobian_fwd_block(const tg_tape *t, const double *v, double *vd, size_t j0, double *J)
{
    size_t nin = t->nin, lanes = nin - j0 < L8 ? nin - j0 : L8;
    ad_tangent_lanes(t, v, NULL, j0, vd);
    for (uint32_t i = 0; i < t->nout; i++)
        for (size_t l = 0; l < lanes; l++)
            J[i * nin + j0 + l] = vd[(size_t)t->out_ref[i] * L8 + l];
}

/* Rows i0.. of J by one 8-lane adjoint sweep. */
static void
jacobian_rev_block(const tg_tape *t, const double *v, double *bar, size_t i0, double *J)
{
    size_t nin = t->nin, lanes = t->nout - i0 < L8 ? t->nout - i0 : L8;
    zero(bar, (size_t)t->n * L8);
    for (size_t l = 0; l < lanes; l++)
        bar[(size_t)t->out_ref[i0 + l] * L8 + l] += 1.0;
    ad_reverse_lanes(t, v, bar);
    for (size_t l = 0; l < lanes; l++)
        for (size_t k = 0; k < nin; k++)
            J[(i0 + l) * nin + k] = bar[(size_t)t->in_ref[k] * L8 + l];
}

tg_status
tg_jacobian_ws(const tg_tape *t, tg_workspace *w, const double *x, double *J)
{
    const char *fn = "tg_jacobian";
    CHECK(check_tape(t, fn));
    CHECK(ad_calls_check(t, AD_NEED_JVP | AD_NEED_VJP, fn));
    NEED(x, t->nin);
    NEED(J, (size_t)t->nin * t->nout);
    ROUTE(AD_ROUTE_JAC, NULL, J);
    if (!w)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL workspace", fn);
    /* structurally orthogonal columns share a sweep (CPR compression) */
    tg_status st;
    if (ad_jacobian_compressed(t, w, x, J, fn, &st) == 0)
        return st;
    ad_jacobian_layout L = ad_layout_jacobian(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *lanes = AD_F64(w, L.lanes);
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    /* fewer sweeps wins: ceil(n_in/8) tangent sweeps or ceil(m/8) adjoint sweeps */
    if (t->nin <= t->nout) {
        for (size_t j0 = 0; j0 < t->nin; j0 += L8)
            jacobian_fwd_block(t, v, lanes, j0, J);
    } else {
        for (size_t i0 = 0; i0 < t->nout; i0 += L8)
            jacobian_rev_block(t, v, lanes, i0, J);
    }
    AD_XEND();
    return TG_OK;
}

/* Values v and first-order adjoints (bar) of a scalar output at x, by the
 * gradient fast path, in the reverse layout L. */
static void
first_order(const tg_tape *t, const ad_reverse_layout *L, tg_workspace *ws, const double *x)
{
    double *v = AD_F64(ws, L->v), *w = AD_F64(ws, L->bar), *pa = AD_F64(ws, L->pa);
    double *pb = AD_F64(ws, L->pb);
    uint32_t *ta = AD_U32(ws, L->ta), *tb = AD_U32(ws, L->tb);
    ad_forward_partials(t, x, v, pa, pb, ta, tb);
    zero(w, t->n);
    w[t->out_ref[0]] = 1.0;
    ad_reverse_stored_x(t, v, pa, pb, ta, tb, w);
}

tg_status
tg_hvp_ws(const tg_tape *t, tg_workspace *w, const double *x, const double *v_, double *hv)
{
    const char *fn = "tg_hvp";
    CHECK(check_tape(t, fn));
    CHECK(ad_calls_check(t, AD_NEED_JVP | AD_NEED_HVP, fn));
    CHECK(scalar_output(t, fn));
    NEED(x, t->nin);
    NEED(v_, t->nin);
    NEED(hv, t->nin);
    ROUTE(AD_ROUTE_HVP, v_, hv);
    tg_status st;
    if (lazy_fits(t, AD_LAZY_HVP, w, x, v_, hv, &st, fn))
        return st;
    ad_hvp_layout L = ad_layout_hvp(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.v), *vd = AD_F64(w, L.vd), *wb = AD_F64(w, L.w);
    double *wd = AD_F64(w, L.wd);
    AD_XBEGIN(w, L);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    ad_tangent_one(t, v, v_, vd);
    zero(wb, t->n);
    zero(wd, t->n);
    wb[t->out_ref[0]] = 1.0;
    ad_second_one(t, v, vd, wb, wd);
    AD_XEND();
    for (uint32_t k = 0; k < t->nin; k++)
        hv[k] = wd[t->in_ref[k]];
    return TG_OK;
}

tg_status
tg_hessian_ws(const tg_tape *t, tg_workspace *w, const double *x, double *H)
{
    const char *fn = "tg_hessian";
    CHECK(check_tape(t, fn));
    CHECK(ad_calls_check(t, AD_NEED_JVP | AD_NEED_HVP, fn));
    CHECK(scalar_output(t, fn));
    NEED(x, t->nin);
    NEED(H, (size_t)t->nin * t->nin);
    size_t n = t->n, nin = t->nin;
    ad_hessian_layout L = ad_layout_hessian(t);
    CHECK(reserve(w, L.size, fn));
    double *v = AD_F64(w, L.first.v), *wb = AD_F64(w, L.first.bar);
    double *vd = AD_F64(w, L.vd), *wd = AD_F64(w, L.wd);
    AD_XBEGIN(w, L);
    first_order(t, &L.first, w, x);
    AD_XGUARDS(v);
    for (size_t j0 = 0; j0 < nin; j0 += L8) {
        size_t lanes = nin - j0 < L8 ? nin - j0 : L8;
        ad_tangent_lanes(t, v, NULL, j0, vd);
        zero(wd, L8 * n);
        ad_second_lanes(t, v, vd, wb, wd);
        for (size_t k = 0; k < nin; k++)
            for (size_t l = 0; l < lanes; l++)
                H[k * nin + j0 + l] = wd[(size_t)t->in_ref[k] * L8 + l];
    }
    AD_XEND();
    return TG_OK;
}

/* ------------------------------------------- simple calls: pooled workspace */

#define POOLED(call)                                                            \
    do {                                                                        \
        if (!t)                                                                 \
            return tape_fail_call(TG_ERR_ARG, "NULL tape");                       \
        tg_workspace *w = ad_ws_borrow(t);                                      \
        if (!w)                                                                 \
            return tape_fail_call(TG_ERR_NOMEM, "out of memory for a workspace"); \
        tg_status s = (call);                                                   \
        ad_ws_return(t, w);                                                     \
        return s;                                                               \
    } while (0)

tg_status tg_eval(const tg_tape *t, const double *x, double *y)
{ POOLED(tg_eval_ws(t, w, x, y)); }
/* The simple calls count towards building the lazy derivative tape and
 * grow the pooled workspace for it (the _ws calls only use it). */
#define LAZY_POOLED(kind, call)                                                 \
    do {                                                                        \
        if (!t)                                                                 \
            return tape_fail_call(TG_ERR_ARG, "NULL tape");                       \
        tg_workspace *w = ad_ws_borrow(t);                                      \
        if (!w)                                                                 \
            return tape_fail_call(TG_ERR_NOMEM, "out of memory for a workspace"); \
        if (t->status == TG_OK && t->nout == 1 && !ad_route_of(t, kind == AD_LAZY_GRAD \
                                                                ? AD_ROUTE_GRAD : AD_ROUTE_HVP)) { \
            const tg_tape *d_ = ad_lazy_count(t, kind);                          \
            if (d_)                                                             \
                (void)ad_ws_reserve(w, ad_lazy_need(d_, kind)); /* fails: sweep */ \
        }                                                                       \
        tg_status s = (call);                                                   \
        ad_ws_return(t, w);                                                     \
        return s;                                                               \
    } while (0)

tg_status tg_gradient(const tg_tape *t, const double *x, double *g)
{ LAZY_POOLED(AD_LAZY_GRAD, tg_gradient_ws(t, w, x, g)); }
tg_status tg_jacobian(const tg_tape *t, const double *x, double *J)
{ POOLED(tg_jacobian_ws(t, w, x, J)); }
tg_status tg_jvp(const tg_tape *t, const double *x, const double *v, double *jv)
{ POOLED(tg_jvp_ws(t, w, x, v, jv)); }
tg_status tg_vjp(const tg_tape *t, const double *x, const double *w_, double *wj)
{ POOLED(tg_vjp_ws(t, w, x, w_, wj)); }
tg_status tg_hessian(const tg_tape *t, const double *x, double *H)
{ POOLED(tg_hessian_ws(t, w, x, H)); }
tg_status tg_hvp(const tg_tape *t, const double *x, const double *v, double *hv)
{ LAZY_POOLED(AD_LAZY_HVP, tg_hvp_ws(t, w, x, v, hv)); }
