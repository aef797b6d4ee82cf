/* src/ad/sparse/pattern.c -- structural Jacobian and Hessian patterns.
 *
 * Jacobian: forward index-set propagation [Griewank & Walther, Evaluating
 * Derivatives, 2nd ed., sec. 7.1]: X_i, the wrt inputs instruction i
 * depends on through partials that are not the literal 0, is the union of
 * its operands' sets; row r of J is X of output r.
 *
 * Hessian: the nonlinear interaction domains of Walther, "Computing sparse
 * Hessians with automatic differentiation", ACM TOMS 34(1), 2008: at every
 * instruction that has an operand pair (p, q) with a structurally nonzero
 * second partial, every j in X_p interacts with every k in X_q.  Walther
 * propagates at every instruction; here only where the result matters: an
 * instruction counts when it reaches an output through nonzero partials
 * (its adjoint can be nonzero for some weights, so the union over all
 * weights is exact), and X is formed only for instructions that feed such
 * a nonlinear operand, so a running sum of n terms costs nothing.
 *
 * Both sweeps are single loops over the tape (no recursion over
 * instructions).  Work is linear in the tape size times the set sizes: a
 * set lives until its last reader, a unary op shares its operand's set,
 * and a binary op whose operand dies there grows that operand's set in
 * place (after its interactions were recorded from the operands' sets).
 * A loop (MAP, SCAN) is one compound instruction whose dependencies and
 * interactions come from its body's own patterns (ploop.c: the same
 * sweeps run on the body, so C recursion only as deep as loops nest). */
#include "tape/alloc.h"
#include "ad/sparse/pat.h"

static inline uint32_t
operand(const tg_tape *t, uint32_t i, int p)
{
    return p == 0 ? t->a[i] : p == 1 ? t->b[i] : t->c[i];
}

/* operand p of op carries a derivative: mask SP_D1 (Jacobian) or SP_NZ.
 * An XOUT is its CALL's output: a plain edge to the CALL. */
static inline int
edge(unsigned mask, uint8_t op, int p)
{
    if (op == TG_OP_XOUT)
        return p == 0;
    return p < tape_op_arity[op] && (sp_edge[op][p] & mask);
}

/* A user-function CALL (tg_call_func) is opaque: every output depends on
 * every operand and every pair of operands may interact.  Its own set is
 * the union of its operands' (each XOUT shares it), and when an output
 * is live every pair in that union interacts (Hessian). */
static const uint32_t *
call_ops(const tg_tape *t, uint32_t i, uint32_t *n)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    *n = (uint32_t)r->nops;
    return tape_xops(t, r);
}

/* pairs[p] bit q: operands p <= q interact in second order */
static unsigned
pairs(uint8_t op, unsigned pr[3])
{
    int ar = tape_op_arity[op];
    unsigned any = 0;
    for (int p = 0; p < 3; p++)
        pr[p] = 0;
    for (int p = 0; p < ar; p++) {
        if (!edge(SP_NZ, op, p))
            continue;
        for (int q = 0; q < ar; q++)
            if ((sp_edge[op][p] >> q & 1) && edge(SP_NZ, op, q)) {
                pr[p < q ? p : q] |= 1u << (p < q ? q : p);
                any = 1;
            }
    }
    return any;
}

static void
pat_free(pat *P)
{
    sp_sets_free(&P->S);
    mem_free(P->set);
    mem_free(P->last);
    mem_free(P->mark);
    mem_free(P->N);
    mem_free(P->bufq);
    if (P->ids)
        for (uint32_t r = 0; r < P->t->nxr; r++)
            mem_free(P->ids[r]);
    mem_free(P->ids);
}

static int
pat_init(pat *P, const tg_tape *t, uint32_t lo, uint32_t nw, unsigned mask, int hessian)
{
    memset(P, 0, sizeof *P);
    P->t = t;
    P->lo = lo;
    P->nw = nw;
    P->mask = mask;
    P->hessian = hessian;
    size_t n = t->n ? t->n : 1;
    P->set = mem_calloc(n, sizeof *P->set);
    P->last = mem_calloc(n, sizeof *P->last);
    P->mark = mem_calloc(n, 1);
    if (hessian) {
        P->N = mem_calloc(nw ? nw : 1, sizeof *P->N);
        P->bufq = mem_malloc(((size_t)nw + 1) * sizeof *P->bufq);
        P->ids = t->nxr ? mem_calloc(t->nxr, sizeof *P->ids) : NULL;
    }
    if (sp_sets_init(&P->S, nw) || !P->set || !P->last || !P->mark
        || (hessian && (!P->N || !P->bufq || (t->nxr && !P->ids))))
        return -1;
    return 0;
}

/* a loop kept as a loop (ploop.c), not a CALL */
static inline int
is_loop(uint8_t op)
{
    return op == TG_OP_MAP || op == TG_OP_SCAN;
}

/* LIVE: reaches an output through nonzero partials.  Hessian: NONLIN on
 * live ops with interacting operands, NEED on what feeds those operands;
 * Jacobian: NEED = LIVE. */
static void
mark(pat *P, int hessian)
{
    const tg_tape *t = P->t;
    for (uint32_t r = 0; r < t->nout; r++)
        if (!P->outlive || P->outlive[r])
            P->mark[t->out_ref[r]] |= LIVE | (hessian ? 0 : NEED);
    for (uint32_t i = t->n; i-- > 0 && !P->S.oom;) {
        uint8_t op = t->op[i], m = P->mark[i];
        unsigned pr[3];
        if (is_loop(op)) {          /* its XOUTs are marked: through the body */
            sp_loop_mark(P, i);
            continue;
        }
        if (op == TG_OP_CALL) {
            uint32_t no;
            const uint32_t *o = call_ops(t, i, &no);
            if (hessian && (m & LIVE) && no)
                P->mark[i] = m = (uint8_t)(m | NONLIN | NEED);
            for (uint32_t j = 0; j < no; j++)
                P->mark[o[j]] |= (m & LIVE) | (m & NEED);
            continue;
        }
        if (hessian && (m & LIVE) && pairs(op, pr)) {
            P->mark[i] |= NONLIN;
            for (int p = 0; p < 3; p++)
                for (int q = p; q < 3; q++)
                    if (pr[p] >> q & 1)
                        P->mark[operand(t, i, p)] |= NEED, P->mark[operand(t, i, q)] |= NEED;
        }
        m = P->mark[i];
        for (int p = 0; p < 3; p++)
            if (edge(P->mask, op, p))
                P->mark[operand(t, i, p)] |= (m & LIVE) | (m & NEED);
    }
    /* last readers: instructions forming X (NEED) or interactions (NONLIN) */
    for (uint32_t i = 0; i < t->n; i++) {
        if (!(P->mark[i] & (NEED | NONLIN)))
            continue;
        uint8_t op = t->op[i];
        if (tape_is_x(op)) {
            uint32_t no;
            const uint32_t *o = call_ops(t, i, &no);
            for (uint32_t j = 0; j < no; j++)
                P->last[o[j]] = i;
            continue;
        }
        if (op == TG_OP_XOUT && is_loop(t->op[t->a[i]]))
            continue;               /* its set was made at its loop */
        for (int p = 0; p < 3; p++)
            if (edge(P->mask, op, p))
                P->last[operand(t, i, p)] = i;
    }
    if (!hessian)
        for (uint32_t r = 0; r < t->nout; r++)
            P->last[t->out_ref[r]] = UINT32_MAX;
}

/* X of a CALL: a fresh union of its operands' sets */
static void
form_call(pat *P, uint32_t i)
{
    uint32_t no;
    const uint32_t *o = call_ops(P->t, i, &no);
    sp_set *s = NULL;
    for (uint32_t j = 0; j < no && !P->S.oom; j++) {
        const sp_set *in = P->set[o[j]];
        if (!in || in == s)
            continue;
        if (!s) {
            s = sp_set_copy(&P->S, in);
            if (!s)
                return;
        } else {
            sp_set_union(&P->S, s, in);
        }
    }
    P->set[i] = s;
}

/* X_i from the operands' sets */
static void
form(pat *P, uint32_t i)
{
    const tg_tape *t = P->t;
    uint8_t op = t->op[i];
    if (op == TG_OP_CALL) {
        form_call(P, i);
        return;
    }
    if (op == TG_OP_INPUT) {
        uint32_t k = t->a[i];
        if (k >= P->lo && k - P->lo < P->nw && (P->set[i] = sp_set_new(&P->S))) {
            k -= P->lo;
            sp_set_add(&P->S, P->set[i], &k, 1);
        }
        return;
    }
    sp_set *in[3];
    uint32_t owner[3];
    int cnt = 0;
    for (int p = 0; p < 3; p++) {
        if (!edge(P->mask, op, p))
            continue;
        uint32_t o = operand(t, i, p);
        sp_set *s = P->set[o];
        int dup = !s;
        for (int q = 0; q < cnt; q++)
            dup |= in[q] == s;
        if (!dup) {
            in[cnt] = s;
            owner[cnt++] = o;
        }
    }
    if (cnt == 0)
        return;
    if (cnt == 1) {
        in[0]->refs++;
        P->set[i] = in[0];
        return;
    }
    /* grow in place a set whose only holder dies here, else copy the largest */
    int base = -1;
    for (int q = 0; q < cnt; q++)
        if (in[q]->refs == 1 && P->last[owner[q]] == i && (base < 0 || in[q]->len > in[base]->len))
            base = q;
    sp_set *s;
    if (base >= 0) {
        s = in[base];
        s->refs++;
    } else {
        base = 0;
        for (int q = 1; q < cnt; q++)
            if (in[q]->len > in[base]->len)
                base = q;
        if (!(s = sp_set_copy(&P->S, in[base])))
            return;
    }
    for (int q = 0; q < cnt; q++)
        if (q != base)
            sp_set_union(&P->S, s, in[q]);
    P->set[i] = s;
}

void
sp_interact_one(pat *P, const uint32_t *rl, uint32_t rn, const uint32_t *cl, uint32_t cn)
{
    for (uint32_t k = 0; k < rn && !P->S.oom; k++) {
        uint32_t r = rl[k], upto = 0;
        while (upto < cn && cl[upto] <= r)        /* lists are short where it matters */
            upto++;
        if (upto == 0)
            continue;
        if (!P->N[r] && !(P->N[r] = sp_set_new(&P->S)))
            return;
        sp_set_add(&P->S, P->N[r], cl, upto);
    }
}

static void
interact(pat *P, uint32_t i)
{
    const tg_tape *t = P->t;
    unsigned pr[3];
    if (t->op[i] == TG_OP_CALL) {   /* every pair in the call's set */
        const sp_set *U = P->set[i];
        if (U) {
            const uint32_t *ul = sp_set_list(U, P->bufq);
            sp_interact_one(P, ul, U->len, ul, U->len);
        }
        return;
    }
    pairs(t->op[i], pr);
    for (int p = 0; p < 3; p++)
        for (int q = p; q < 3; q++) {
            if (!(pr[p] >> q & 1))
                continue;
            const sp_set *A = P->set[operand(t, i, p)], *B = P->set[operand(t, i, q)];
            if (!A || !B)
                continue;
            const uint32_t *al = sp_set_list(A, P->S.scratch);
            if (A == B) {
                sp_interact_one(P, al, A->len, al, A->len);
                continue;
            }
            const uint32_t *bl = sp_set_list(B, P->bufq);
            sp_interact_one(P, al, A->len, bl, B->len);
            sp_interact_one(P, bl, B->len, al, A->len);
        }
}

static void
release_operands(pat *P, uint32_t i)
{
    const tg_tape *t = P->t;
    uint8_t op = t->op[i];
    if (tape_is_x(op)) {
        uint32_t no;
        const uint32_t *o = call_ops(t, i, &no);
        for (uint32_t j = 0; j < no; j++)
            if (P->last[o[j]] == i && P->set[o[j]]) {
                sp_set_release(&P->S, P->set[o[j]]);
                P->set[o[j]] = NULL;
            }
        return;
    }
    for (int p = 0; p < 3; p++) {
        if (!edge(P->mask, op, p))
            continue;
        uint32_t o = operand(t, i, p);
        if (P->last[o] == i && P->set[o]) {
            sp_set_release(&P->S, P->set[o]);
            P->set[o] = NULL;
        }
    }
}

static void
sweep(pat *P)
{
    const tg_tape *t = P->t;
    for (uint32_t i = 0; i < t->n && !P->S.oom; i++) {
        uint8_t m = P->mark[i], op = t->op[i];
        if (is_loop(op)) {
            if (m & (NEED | NONLIN)) {
                sp_loop_sweep(P, i);
                release_operands(P, i);
            }
            continue;
        }
        if (op == TG_OP_XOUT && is_loop(t->op[t->a[i]]))
            continue;               /* made at its loop */
        /* interactions read the operands' sets before form() may grow
         * one of them in place (a CALL's read its own, formed first) */
        if ((m & NONLIN) && op != TG_OP_CALL)
            interact(P, i);
        if (m & NEED)
            form(P, i);
        if ((m & NONLIN) && op == TG_OP_CALL)
            interact(P, i);
        if (m & (NEED | NONLIN))
            release_operands(P, i);
    }
}

void
sp_csr_free(sp_csr *c)
{
    mem_free(c->ptr);
    mem_free(c->cols);
    memset(c, 0, sizeof *c);
}

/* rows from sets: row r is s(r) */
static int
to_csr(pat *P, uint32_t nrows, sp_set *(*row)(pat *, uint32_t), sp_csr *out)
{
    memset(out, 0, sizeof *out);
    out->nrows = nrows;
    out->ncols = P->nw;
    out->ptr = mem_malloc(((size_t)nrows + 1) * sizeof *out->ptr);
    if (!out->ptr)
        return -1;
    out->ptr[0] = 0;
    for (uint32_t r = 0; r < nrows; r++) {
        sp_set *s = row(P, r);
        out->ptr[r + 1] = out->ptr[r] + (s ? s->len : 0);
    }
    out->cols = mem_malloc((out->ptr[nrows] ? out->ptr[nrows] : 1) * sizeof *out->cols);
    if (!out->cols)
        return sp_csr_free(out), -1;
    for (uint32_t r = 0; r < nrows; r++) {
        sp_set *s = row(P, r);
        if (s && s->len)
            memcpy(out->cols + out->ptr[r], sp_set_list(s, P->S.scratch),
                   (size_t)s->len * sizeof *out->cols);
    }
    return 0;
}

static sp_set *
jac_row(pat *P, uint32_t r)
{
    return P->set[P->t->out_ref[r]];
}

static sp_set *
hess_row(pat *P, uint32_t r)
{
    return P->N[r];
}

int
sp_pattern_run(const tg_tape *t, uint32_t lo, uint32_t nw, unsigned mask, int hessian,
               const uint8_t *outlive, sp_cache *cache, sp_csr *out)
{
    pat P;
    int rc = -1;
    if (pat_init(&P, t, lo, nw, mask, hessian) == 0) {
        P.outlive = outlive;
        P.cache = cache;
        mark(&P, hessian);
        sweep(&P);
        if (!P.S.oom)
            rc = to_csr(&P, hessian ? nw : t->nout, hessian ? hess_row : jac_row, out);
    }
    pat_free(&P);
    return rc;
}

int
sp_jacobian_pattern(const tg_tape *t, uint32_t lo, uint32_t nw, sp_csr *out)
{
    sp_cache c = { 0 };
    int rc = sp_pattern_run(t, lo, nw, SP_D1, 0, NULL, &c, out);
    sp_cache_free(&c);
    return rc;
}

int
sp_hessian_pattern(const tg_tape *t, uint32_t lo, uint32_t nw, sp_csr *out)
{
    sp_cache c = { 0 };
    int rc = sp_pattern_run(t, lo, nw, SP_NZ, 1, NULL, &c, out);
    sp_cache_free(&c);
    return rc;
}

int
sp_csr_transpose(const sp_csr *a, sp_csr *out)
{
    memset(out, 0, sizeof *out);
    out->nrows = a->ncols;
    out->ncols = a->nrows;
    size_t nnz = a->ptr[a->nrows];
    out->ptr = mem_calloc((size_t)a->ncols + 1, sizeof *out->ptr);
    out->cols = mem_malloc((nnz ? nnz : 1) * sizeof *out->cols);
    if (!out->ptr || !out->cols)
        return sp_csr_free(out), -1;
    for (size_t e = 0; e < nnz; e++)
        out->ptr[a->cols[e] + 1]++;
    for (uint32_t c = 0; c < a->ncols; c++)
        out->ptr[c + 1] += out->ptr[c];
    /* rows ascending, so each transposed row comes out sorted; the row
     * pointers are advanced as a cursor and shifted back after */
    for (uint32_t r = 0; r < a->nrows; r++)
        for (size_t e = a->ptr[r]; e < a->ptr[r + 1]; e++)
            out->cols[out->ptr[a->cols[e]]++] = r;
    for (uint32_t c = a->ncols; c > 0; c--)
        out->ptr[c] = out->ptr[c - 1];
    out->ptr[0] = 0;
    return 0;
}
