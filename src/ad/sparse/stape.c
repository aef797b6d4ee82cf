/* src/ad/sparse/stape.c -- sparse derivative tapes: the compressed sweeps
 * of eval.c, recorded symbolically.  One symbolic tangent sweep per colour
 * (seeded with the constant 1 on the inputs of that colour) or, for a
 * row-coloured Jacobian, one adjoint sweep per colour; each records only
 * the instructions its seeds reach, so the tape grows with the number of
 * colours times the active part of f, and the outputs are exactly the nnz
 * recovered entries.  The Hessian tape first records the gradient of the
 * weighted sum w . y (weights from the input block "w"), then differentiates
 * f and that gradient code by tangent sweeps over the colours. */
#include <stdio.h>

#include "tape/alloc.h"
#include "ad/derive.h"
#include "ad/symbolic.h"
#include "ad/sparse/sparse.h"

#define NONE UINT32_MAX

/* The pattern of f for a derive, or -1 with D->t failed. */
static tg_sparsity *
pattern_of(derive *D, const tg_tape *f, int kind, int wrt)
{
    tg_sparsity *s = sp_build(f, kind, wrt, -1.0);
    if (!s) {
        tape_fail(D->t, TG_ERR_NOMEM, "out of memory computing the sparsity of \"%s\"", f->name);
        return NULL;
    }
    if (s->status != TG_OK) {
        tape_fail(D->t, s->status, "%s", s->err);
        tg_sparsity_free(s);
        return NULL;
    }
    return s;
}

/* seed[k] = 1 (a constant ref) where colour(k) == c, else TG_NIL */
static void
colour_seed(tg_tape *t, const tg_sparsity *s, uint32_t c, uint32_t *seed)
{
    uint32_t one = tape_const(t, 1.0);
    for (uint32_t k = 0; k < s->nseed; k++)
        seed[k] = s->seed_color[k] == c ? one : TG_NIL;
}

/* out[e] = vec[src[e]] for the entries of colour c */
static void
take(const tg_sparsity *s, uint32_t c, const uint32_t *vec, uint32_t *out)
{
    uint32_t g = c / 8;
    for (size_t q = s->grp_ptr[g]; q < s->grp_ptr[g + 1]; q++) {
        uint32_t e = s->grp_ent[q];
        if (s->ecolor[e] == c)
            out[e] = vec[s->src[e]];
    }
}

/* live[i]: instruction i < n is one of the refs y[0..m) or an operand of
 * a live instruction (one backward pass) */
static void
live_from(const tg_tape *t, uint32_t n, const uint32_t *y, uint32_t m, uint8_t *live)
{
    for (uint32_t r = 0; r < m; r++)
        if (y[r] != TG_NIL)
            live[y[r]] = 1;
    for (uint32_t i = n; i-- > 0;) {
        if (!live[i])
            continue;
        if (tape_is_x(t->op[i])) {      /* live through any output: all operands */
            const tape_xrec *r = tape_xrec_of(t, i);
            for (uint64_t k = 0; k < r->nops; k++)
                live[tape_xops(t, r)[k]] = 1;
            continue;
        }
        int ar = tape_op_arity[t->op[i]];
        if (ar >= 1)
            live[t->a[i]] = 1;
        if (ar >= 2)
            live[t->b[i]] = 1;
        if (ar >= 3)
            live[t->c[i]] = 1;
    }
}

/* Row colouring: one adjoint sweep per colour, seeds on f's outputs. */
static int
jacobian_by_rows(derive *D, const tg_sparsity *s, uint32_t n0, uint32_t *jac)
{
    tg_tape *t = D->t;
    const tg_tape *f = D->f;
    uint8_t *active = ad_derive_zalloc(t, n0, 1);
    uint32_t *adj = ad_derive_zalloc(t, n0, sizeof *adj);
    uint32_t *col = ad_derive_zalloc(t, s->nw, sizeof *col);
    int rc = (!active || !adj || !col) ? -1 : 0;
    if (rc == 0)
        ad_activity(t, n0, D->lo, D->lo + D->nw, active);
    for (uint32_t c = 0; c < s->ncolors && rc == 0; c++) {
        memset(adj, 0xff, (size_t)n0 * sizeof *adj);
        uint32_t one = tape_const(t, 1.0);
        for (uint32_t i = 0; i < f->nout; i++) {
            if (s->seed_color[i] != c)
                continue;
            uint32_t *a = &adj[D->fout[i]];
            *a = *a == TG_NIL ? one : tape_rec(t, TG_OP_ADD, tape_ref(*a), tape_ref(one), tape_lit(0));
        }
        rc = ad_sym_adjoint(t, n0, adj, active);
        for (uint32_t k = 0; k < s->nw && rc == 0; k++)
            col[k] = adj[t->in_ref[D->lo + k]];
        if (rc == 0)
            take(s, c, col, jac);
    }
    mem_free(active);
    mem_free(adj);
    mem_free(col);
    return rc;
}

tg_tape *
tg_sparse_jacobian_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *buf = NULL;
    tg_sparsity *s = NULL;
    if (ad_derive_begin(&D, f, "sjac", wrt, 0, NULL) || !(s = pattern_of(&D, f, SP_JAC, wrt)))
        goto out;
    tg_tape *t = D.t;
    uint32_t n0 = t->n, m = f->nout;
    /* jac[nnz] | seed[nseed] | col[m] */
    buf = ad_derive_zalloc(t, s->nnz + s->nseed + m, sizeof *buf);
    if (!buf)
        goto out;
    uint32_t *jac = buf, *seed = jac + s->nnz, *col = seed + s->nseed;
    memset(jac, 0xff, s->nnz * sizeof *jac);
    if (s->by_rows) {
        if (jacobian_by_rows(&D, s, n0, jac))
            goto out;
    } else {
        for (uint32_t c = 0; c < s->ncolors; c++) {
            colour_seed(t, s, c, seed);
            if (ad_derive_tangent(&D, n0, seed, D.fout, m, col))
                goto out;
            take(s, c, col, jac);
        }
    }
    ad_derive_output(t, "jac", jac, s->nnz);
out:
    tg_sparsity_free(s);
    return ad_derive_end(&D, buf);
}

tg_tape *
tg_sparse_hessian_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *buf = NULL;
    tg_sparsity *s = NULL;
    if (ad_derive_begin(&D, f, "shess", wrt, f ? f->nout : 0, "w")
        || !(s = pattern_of(&D, f, SP_HESS, wrt)))
        goto out;
    tg_tape *t = D.t;
    uint32_t nw = D.nw;
    /* hess[nnz] | grad[nw] | seed[nw] | col[nw] */
    buf = ad_derive_zalloc(t, s->nnz + 3 * (size_t)nw, sizeof *buf);
    if (!buf)
        goto out;
    uint32_t *hess = buf, *g = hess + s->nnz, *seed = g + nw, *col = seed + nw;
    memset(hess, 0xff, s->nnz * sizeof *hess);
    /* the gradient of w . y, then tangents of that code, one per colour,
     * over the instructions the gradient depends on only */
    if (ad_derive_vjp(&D, t->n, t->in_ref + D.extra, g))
        goto out;
    uint32_t n1 = t->n;
    uint8_t *live = ad_derive_zalloc(t, n1, 1);
    uint32_t *tan = ad_derive_zalloc(t, n1, sizeof *tan);
    int rc = live && tan ? 0 : -1;
    if (rc == 0)
        live_from(t, n1, g, nw, live);
    for (uint32_t c = 0; c < s->ncolors && rc == 0; c++) {
        colour_seed(t, s, c, seed);
        memset(tan, 0xff, (size_t)n1 * sizeof *tan);
        for (uint32_t k = 0; k < nw; k++)
            tan[t->in_ref[D.lo + k]] = seed[k];
        rc = ad_sym_tangent_live(t, n1, tan, live);
        for (uint32_t r = 0; r < nw && rc == 0; r++)
            col[r] = g[r] == TG_NIL ? TG_NIL : tan[g[r]];
        if (rc == 0)
            take(s, c, col, hess);
    }
    mem_free(live);
    mem_free(tan);
    if (rc)
        goto out;
    ad_derive_output(t, "hess", hess, s->nnz);
out:
    tg_sparsity_free(s);
    return ad_derive_end(&D, buf);
}
