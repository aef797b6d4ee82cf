/* src/ad/sparse/eval.c -- sparse Jacobians and Hessians by compressed
 * sweeps: one value sweep, then one 8-lane sweep per 8 colours (tangent
 * sweeps for column colourings, adjoint sweeps for row colourings,
 * tangent-over-adjoint for Hessians), each followed by direct recovery of
 * that group's entries straight into the pattern's order.  Nothing is
 * dense: the workspace holds the lanes of the tape's instructions and one
 * seed per input, never an m x n or n x n array.  The sparsity object is
 * only read, so one object serves any number of threads. */
#include "ad/sweep.h"
#include "ad/sparse/sparse.h"

enum { L8 = TG_LANES };

#define CHECK(expr)                                                             \
    do {                                                                        \
        tg_status s_ = (expr);                                                  \
        if (s_ != TG_OK)                                                        \
            return s_;                                                          \
    } while (0)

static tg_status
check(const tg_tape *t, const tg_sparsity *s, int kind, const char *fn)
{
    if (!t)
        return tg__api_fail(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tg__api_fail(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                            t->err);
    if (!s)
        return tg__api_fail(TG_ERR_ARG, "%s: NULL sparsity", fn);
    if (s->status != TG_OK)
        return tg__api_fail(s->status, "%s: the sparsity is in the error state: %s", fn, s->err);
    if (s->kind != kind)
        return tg__api_fail(TG_ERR_ARG, "%s: the sparsity was built for a %s", fn,
                            s->kind == SP_JAC ? "Jacobian (tg_jacobian_sparsity)"
                                              : "Hessian (tg_hessian_sparsity)");
    if (s->nin != t->nin || s->nout != t->nout)
        return tg__api_fail(TG_ERR_ARG, "%s: the sparsity was built for a tape with %u inputs and "
                            "%u outputs; \"%s\" has %u and %u", fn, s->nin, s->nout, t->name,
                            t->nin, t->nout);
    return TG_OK;
}

static tg_status
reserve(tg_workspace *w, size_t doubles, const char *fn)
{
    if (!w)
        return tg__api_fail(TG_ERR_ARG, "%s: NULL workspace", fn);
    if (ad_ws_reserve(w, doubles))
        return tg__api_fail(TG_ERR_NOMEM, "%s: out of memory for a workspace of %zu doubles", fn,
                            doubles);
    return TG_OK;
}

/* Lanes a sweep of group g needs: its colours rounded up to 1, 2, 4, 8
 * (a tridiagonal pattern's 3 colours sweep 4 lanes, not 8). */
static int
group_lanes(const tg_sparsity *s, uint32_t g)
{
    uint32_t c = s->ncolors - g * L8;
    return c >= 5 ? L8 : c >= 3 ? 4 : (int)c;
}

/* seed[k*L + l] = 1 where input k (global) has colour 8g + l */
static void
seed_group(const tg_sparsity *s, uint32_t g, size_t nin, int L, double *seed)
{
    memset(seed, 0, nin * (size_t)L * sizeof *seed);
    for (uint32_t k = 0; k < s->nw; k++) {
        uint32_t c = s->seed_color[k];
        if (c != UINT32_MAX && c / L8 == g)
            seed[((size_t)s->lo + k) * L + c % L8] = 1.0;
    }
}

/* vals[e] for the entries of group g, from L lanes read at ref[src[e]] */
static void
recover(const tg_sparsity *s, uint32_t g, const uint32_t *ref, const double *lanes, int L,
        double *vals)
{
    for (size_t q = s->grp_ptr[g]; q < s->grp_ptr[g + 1]; q++) {
        uint32_t e = s->grp_ent[q];
        vals[e] = lanes[(size_t)ref[s->src[e]] * L + s->ecolor[e] % L8];
    }
}

/* Doubles a sparse call needs on t: the Hessian's layout (v, w, partials
 * and slots: 5n; tangents 8n; adjoint tangents 8n, which hold the seeds
 * first) bounds the Jacobian's (v, 8n lanes, 8 nin seeds; nin <= n), and
 * equals what tg_workspace_new(t) reserves: no call allocates after it. */
static size_t
sparse_ws_doubles(const tg_tape *t)
{
    return (5 + 2 * (size_t)L8) * t->n;
}

tg_status
tg_sparse_jacobian_ws(const tg_tape *t, tg_workspace *w, const tg_sparsity *s, const double *x,
                      double *vals)
{
    const char *fn = "tg_sparse_jacobian";
    CHECK(check(t, s, SP_JAC, fn));
    if ((!x && t->nin) || (!vals && s->nnz))
        return tg__api_fail(TG_ERR_ARG, "%s: NULL %s", fn, !vals && s->nnz ? "vals" : "x");
    size_t n = t->n, nin = t->nin;
    CHECK(reserve(w, sparse_ws_doubles(t), fn));
    double *v = w->buf, *lanes = v + n, *seed = lanes + L8 * n;
    uint32_t G = sp_groups(s);
    ad_forward1(t, x, v);
    for (uint32_t g = 0; g < G; g++) {
        if (s->by_rows) {
            memset(lanes, 0, L8 * n * sizeof *lanes);
            for (uint32_t i = 0; i < t->nout; i++) {
                uint32_t c = s->seed_color[i];
                if (c != UINT32_MAX && c / L8 == g)
                    lanes[(size_t)t->out_ref[i] * L8 + c % L8] += 1.0;
            }
            ad_reverseD(t, v, lanes);
            recover(s, g, t->in_ref + s->lo, lanes, L8, vals);
        } else {
            int L = group_lanes(s, g);
            seed_group(s, g, nin, L, seed);
            ad_tangent_n(t, v, seed, lanes, L);
            recover(s, g, t->out_ref, lanes, L, vals);
        }
    }
    return TG_OK;
}

tg_status
tg_sparse_hessian_ws(const tg_tape *t, tg_workspace *w, const tg_sparsity *s, const double *x,
                     const double *wt, double *vals)
{
    const char *fn = "tg_sparse_hessian";
    CHECK(check(t, s, SP_HESS, fn));
    if ((!x && t->nin) || (!vals && s->nnz))
        return tg__api_fail(TG_ERR_ARG, "%s: NULL %s", fn, !vals && s->nnz ? "vals" : "x");
    size_t n = t->n, nin = t->nin;
    CHECK(reserve(w, sparse_ws_doubles(t), fn));
    double *v = w->buf, *wb = v + n, *pa = wb + n, *pb = pa + n;
    uint32_t *ta = (uint32_t *)(void *)(pb + n), *tb = ta + n;
    double *vd = pb + 2 * n, *wd = vd + L8 * n;
    /* values and first-order adjoints of w . y (the gradient fast path) */
    ad_forward_partials(t, x, v, pa, pb, ta, tb);
    memset(wb, 0, n * sizeof *wb);
    for (uint32_t j = 0; j < t->nout; j++)
        wb[t->out_ref[j]] += wt ? wt[j] : 1.0;
    ad_reverse_stored(t->n, pa, pb, ta, tb, wb);
    uint32_t G = sp_groups(s);
    for (uint32_t g = 0; g < G; g++) {
        int L = group_lanes(s, g);
        seed_group(s, g, nin, L, wd);
        ad_tangent_n(t, v, wd, vd, L);
        memset(wd, 0, (size_t)L * n * sizeof *wd);
        ad_second_n(t, v, vd, wb, wd, L);
        recover(s, g, t->in_ref + s->lo, wd, L, vals);
    }
    return TG_OK;
}

#define POOLED(fn, call)                                                        \
    do {                                                                        \
        if (!t)                                                                 \
            return tg__api_fail(TG_ERR_ARG, "%s: NULL tape", fn);               \
        tg_workspace *w = ad_ws_borrow(t);                                      \
        if (!w)                                                                 \
            return tg__api_fail(TG_ERR_NOMEM, "%s: out of memory for a workspace", fn); \
        tg_status st = (call);                                                  \
        ad_ws_return(t, w);                                                     \
        return st;                                                              \
    } while (0)

tg_status
tg_sparse_jacobian(const tg_tape *t, const tg_sparsity *s, const double *x, double *vals)
{
    POOLED("tg_sparse_jacobian", tg_sparse_jacobian_ws(t, w, s, x, vals));
}

tg_status
tg_sparse_hessian(const tg_tape *t, const tg_sparsity *s, const double *x, const double *wt,
                  double *vals)
{
    POOLED("tg_sparse_hessian", tg_sparse_hessian_ws(t, w, s, x, wt, vals));
}
