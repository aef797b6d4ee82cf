/* src/ad/sparse/eval.c -- sparse Jacobians and Hessians by compressed
 * sweeps: one value sweep, then one 8-lane sweep per 8 colours (tangent
 * sweeps for column colourings, adjoint sweeps for row colourings,
 * tangent-over-adjoint for Hessians), each followed by direct recovery of
 * that group's entries straight into the pattern's order.  Nothing is
 * dense: the workspace holds the lanes of the tape's instructions and one
 * seed per input, never an m x n or n x n array.  The sparsity object is
 * only read, so one object serves any number of threads. */
#include "ad/call.h"
#include "ad/layout.h"
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
        return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                            t->err);
    tg_status cs = ad_calls_check(t, kind == SP_JAC ? AD_NEED_JVP | AD_NEED_VJP
                                                    : AD_NEED_JVP | AD_NEED_HVP, fn);
    if (cs != TG_OK)
        return cs;
    if (!s)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL sparsity", fn);
    if (s->status != TG_OK)
        return tape_fail_call(s->status, "%s: the sparsity is in the error state: %s", fn, s->err);
    if (s->kind != kind)
        return tape_fail_call(TG_ERR_ARG, "%s: the sparsity was built for a %s", fn,
                            s->kind == SP_JAC ? "Jacobian (tg_jacobian_sparsity)"
                                              : "Hessian (tg_hessian_sparsity)");
    if (s->nin != t->nin || s->nout != t->nout)
        return tape_fail_call(TG_ERR_ARG, "%s: the sparsity was built for a tape with %u inputs and "
                            "%u outputs; \"%s\" has %u and %u", fn, s->nin, s->nout, t->name,
                            t->nin, t->nout);
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

/* Lanes a sweep of group g needs: its colours (1 to 4), else 8 (a
 * tridiagonal pattern's 3 colours sweep 3 lanes, not 8). */
static size_t
group_lanes(const tg_sparsity *s, uint32_t g)
{
    uint32_t c = s->ncolors - g * L8;
    return c >= 5 ? L8 : c;
}

/* seed[k*L + l] = 1 where input k (global) has colour 8g + l; every seed
 * is written once (no clearing pass over the whole array first) */
static void
seed_group(const tg_sparsity *s, uint32_t g, size_t nin, size_t L, double *seed)
{
    size_t lo = s->lo, hi = lo + s->nw;
    memset(seed, 0, lo * L * sizeof *seed);
    memset(seed + hi * L, 0, (nin - hi) * L * sizeof *seed);
    double *p = seed + lo * L;
    for (uint32_t k = 0; k < s->nw; k++, p += L) {
        uint32_t c = s->seed_color[k] - g * L8;     /* wraps for other groups and none */
        for (size_t l = 0; l < L; l++)
            p[l] = c == l ? 1.0 : 0.0;
    }
}

/* The destination of entry e: vals[e], or J[rows[e] * ld + cols[e]]. */
#define DEST(e) (ld ? (size_t)s->rows[e] * ld + s->cols[e] : (size_t)(e))

/* entries of group g, from L lanes read at ref[src[e]]; with one group
 * every entry is in it, in order */
static void
recover(const tg_sparsity *s, uint32_t g, const uint32_t *ref, const double *lanes, size_t L,
        double *out, size_t ld)
{
    const uint32_t *src = s->src, *ec = s->ecolor;
    if (g == 0 && s->ncolors <= L8) {
        for (size_t e = 0; e < s->nnz; e++)
            out[DEST(e)] = lanes[(size_t)ref[src[e]] * L + ec[e]];
        return;
    }
    for (size_t q = s->grp_ptr[g]; q < s->grp_ptr[g + 1]; q++) {
        uint32_t e = s->grp_ent[q];
        out[DEST(e)] = lanes[(size_t)ref[src[e]] * L + ec[e] % L8];
    }
}

/* Group g of the colouring after the value sweep v: one adjoint sweep
 * (row colouring) or tangent sweep (column colouring) of its lanes, and
 * the recovery of its entries into out. */
static void
sweep_group(const tg_tape *t, const tg_sparsity *s, uint32_t g, const double *v, double *lanes,
            double *seed, double *out, size_t ld)
{
    if (s->by_rows) {
        memset(lanes, 0, L8 * (size_t)t->n * sizeof *lanes);
        for (uint32_t i = 0; i < t->nout; i++) {
            uint32_t c = s->seed_color[i];
            if (c != UINT32_MAX && c / L8 == g)
                lanes[(size_t)t->out_ref[i] * L8 + c % L8] += 1.0;
        }
        ad_reverse_lanes(t, v, lanes);
        recover(s, g, t->in_ref + s->lo, lanes, L8, out, ld);
    } else {
        size_t L = group_lanes(s, g);
        seed_group(s, g, t->nin, L, seed);
        ad_tangent_n(t, v, seed, lanes, L);
        recover(s, g, t->out_ref, lanes, L, out, ld);
    }
}

/* A tape with loops: the sweeps of xsweep.c in the loop scratch context
 * (the fused value + tangent sweep of fwdtan.inc knows no loops): values,
 * guards, then one tangent or adjoint sweep per group of 8 colours. */
static tg_status
jacobian_sweeps_x(const tg_tape *t, const tg_sparsity *s, tg_workspace *w, const double *x,
                  double *out, size_t ld, const char *fn)
{
    ad_seeded_layout Ly = ad_layout_seeded(t);
    double *v = AD_F64(w, Ly.v), *lanes = AD_F64(w, Ly.lanes), *seed = AD_F64(w, Ly.seed);
    AD_XBEGIN(w, Ly);
    ad_forward_one(t, x, v);
    AD_XGUARDS(v);
    if (ld)
        memset(out, 0, (size_t)t->nout * ld * sizeof *out);
    for (uint32_t g = 0; g < sp_groups(s); g++)
        sweep_group(t, s, g, v, lanes, seed, out, ld);
    AD_XEND();
    return TG_OK;
}

tg_status
sp_jacobian_sweeps(const tg_tape *t, const tg_sparsity *s, tg_workspace *w, const double *x,
                   double *out, size_t ld, const char *fn)
{
    if (ad_x_has_loops(t))
        return jacobian_sweeps_x(t, s, w, x, out, ld, fn);
    /* the fused sweeps write out as they go: guards first */
    tg_status st = ad_guards_precheck(t, AD_F64(w, ad_layout_seeded(t).v), x, fn);
    if (st != TG_OK)
        return st;
    if (ld)
        memset(out, 0, (size_t)t->nout * ld * sizeof *out);
    size_t nin = t->nin;
    ad_seeded_layout Ly = ad_layout_seeded(t);
    double *v = AD_F64(w, Ly.v), *lanes = AD_F64(w, Ly.lanes), *seed = AD_F64(w, Ly.seed);
    uint32_t G = sp_groups(s);
    if (!s->by_rows && G > 0) {             /* values with the first group's tangents */
        size_t L = group_lanes(s, 0);
        seed_group(s, 0, nin, L, seed);
        sp_forward_tangent(t, x, seed, v, lanes, L);
        recover(s, 0, t->out_ref, lanes, L, out, ld);
    } else {
        ad_forward_one(t, x, v);
    }
    for (uint32_t g = s->by_rows ? 0 : 1; g < G; g++)
        sweep_group(t, s, g, v, lanes, seed, out, ld);
    return TG_OK;
}

tg_status
tg_sparse_jacobian_ws(const tg_tape *t, tg_workspace *w, const tg_sparsity *s, const double *x,
                      double *vals)
{
    const char *fn = "tg_sparse_jacobian";
    CHECK(check(t, s, SP_JAC, fn));
    if ((!x && t->nin) || (!vals && s->nnz))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL %s", fn, !vals && s->nnz ? "vals" : "x");
    CHECK(reserve(w, ad_layout_seeded(t).size, fn));
    return sp_jacobian_sweeps(t, s, w, x, vals, 0, fn);
}

/* A tape with loops: as below, with the sweeps of xsweep.c (no fused
 * value + tangent sweep) in the loop scratch context. */
static tg_status
hessian_sweeps_x(const tg_tape *t, const tg_sparsity *s, tg_workspace *w, const double *x,
                 const double *wt, double *vals, const char *fn)
{
    size_t n = t->n, nin = t->nin;
    ad_hessian_layout Ly = ad_layout_hessian(t);
    double *v = AD_F64(w, Ly.first.v), *wb = AD_F64(w, Ly.first.bar);
    double *vd = AD_F64(w, Ly.vd), *wd = AD_F64(w, Ly.wd);   /* wd holds the seeds first */
    AD_XBEGIN(w, Ly);
    ad_first_order(t, &Ly.first, w, x, wt);
    AD_XGUARDS(v);
    for (uint32_t g = 0; g < sp_groups(s); g++) {
        size_t L = group_lanes(s, g);
        seed_group(s, g, nin, L, wd);
        ad_tangent_n(t, v, wd, vd, L);
        memset(wd, 0, L * n * sizeof *wd);
        ad_second_n(t, v, vd, wb, wd, L);
        recover(s, g, t->in_ref + s->lo, wd, L, vals, 0);
    }
    AD_XEND();
    return TG_OK;
}

tg_status
tg_sparse_hessian_ws(const tg_tape *t, tg_workspace *w, const tg_sparsity *s, const double *x,
                     const double *wt, double *vals)
{
    const char *fn = "tg_sparse_hessian";
    CHECK(check(t, s, SP_HESS, fn));
    if ((!x && t->nin) || (!vals && s->nnz))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL %s", fn, !vals && s->nnz ? "vals" : "x");
    size_t n = t->n, nin = t->nin;
    ad_hessian_layout Ly = ad_layout_hessian(t);
    CHECK(reserve(w, Ly.size, fn));
    double *v = AD_F64(w, Ly.first.v), *wb = AD_F64(w, Ly.first.bar);
    double *vd = AD_F64(w, Ly.vd), *wd = AD_F64(w, Ly.wd);   /* wd holds the seeds first */
    if (ad_x_has_loops(t))
        return hessian_sweeps_x(t, s, w, x, wt, vals, fn);
    /* values and first-order adjoints of w . y (the gradient fast path) */
    ad_first_order(t, &Ly.first, w, x, wt);
    AD_GUARDS(t, v, fn);
    uint32_t G = sp_groups(s);
    for (uint32_t g = 0; g < G; g++) {
        size_t L = group_lanes(s, g);
        seed_group(s, g, nin, L, wd);
        /* the fused sweep recomputes the same values (bit for bit): its
         * threaded dispatch and test-free lanes beat a tangent-only sweep */
        sp_forward_tangent(t, x, wd, v, vd, L);
        memset(wd, 0, L * n * sizeof *wd);
        ad_second_n(t, v, vd, wb, wd, L);
        recover(s, g, t->in_ref + s->lo, wd, L, vals, 0);
    }
    return TG_OK;
}

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
