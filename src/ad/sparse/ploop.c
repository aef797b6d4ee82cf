/* src/ad/sparse/ploop.c -- the pattern sweeps of pattern.c at a loop (MAP,
 * SCAN), giving exactly the pattern of the unrolled tape without unrolling.
 *
 * A loop application is a compound instruction whose inputs are the body's
 * inputs (bound to the loop's operands, for a scan the carries of the step
 * before) and whose outputs are the body's outputs.  Two summaries of the
 * body, each computed once per call by the same sweeps run on the body
 * (recursively for nested loops: C recursion as deep as the nesting, at
 * most TAPE_MAX_DEPTH) and kept in the call's sp_cache:
 *
 *  - its dependency pattern D (outputs on inputs, along the same edges as
 *    the sweep: SP_D1 for Jacobians, SP_NZ for Hessians).  Index-set
 *    propagation through an application is then X(y_k) = union of X(u)
 *    over the inputs u in D(k): exactly the set the unrolled instructions
 *    would form, since sets only ever combine by union.
 *  - for Hessians, for each set M of live outputs met (usually one or two
 *    per body), Walther's interaction pattern H(M) of the body over its
 *    own inputs with only the outputs in M live, and which inputs reach a
 *    live output.  An unrolled nonlinear instruction with operands p, q
 *    contributes X(p) x X(q), with X(p) the union of X(u) over u in D(p);
 *    the union of those products over the body is the union of
 *    X(u) x X(v) over the pairs (u, v) of H(M).  The liveness of the
 *    unrolled instructions is that of the body's with the application's
 *    live outputs, so the result equals the flat tape's.
 *
 * A scan steps its carry sets through the steps (the marking pass steps
 * the carries' liveness backwards the same way).  Work per application is
 * the size of the summaries times the set sizes, never count x count. */
#include "tape/alloc.h"
#include "ad/sparse/pat.h"

#define NONE UINT32_MAX

/* A loop's record, its body and the positions of its operands/outputs. */
typedef struct lview {
    const tg_tape *b;
    const uint32_t *ops;
    uint32_t i, r;
    uint64_t count;
    uint32_t nc, nx, np, ny, nin, nbout;
} lview;

static void
view(const tg_tape *t, uint32_t i, lview *L)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    L->b = tape_body_of(t, r);
    L->ops = tape_xops(t, r);
    L->i = i;
    L->r = t->a[i];
    L->count = r->count;
    L->nc = t->op[i] == TG_OP_SCAN ? r->nc : 0;
    L->nx = r->nx;
    L->np = r->np;
    L->ny = r->ny;
    L->nin = L->nc + L->nx + L->np;
    L->nbout = L->nc + L->ny;
}

/* the operand bound to body input u >= nc at application a */
static uint32_t
in_ref(const lview *L, uint64_t a, uint32_t u)
{
    u -= L->nc;
    if (u < L->nx)
        return L->ops[L->nc + a * L->nx + u];
    return L->ops[L->nc + L->count * L->nx + (u - L->nx)];
}

/* the XOUT of body output k >= nc (a y) at application a */
static uint32_t
y_ref(const lview *L, uint64_t a, uint32_t k)
{
    return L->i + 1 + L->nc + (uint32_t)(a * L->ny) + (k - L->nc);
}

/* ---------------------------------------------------------- summaries */

static int
grow(void **p, uint32_t *cap, uint32_t need)
{
    if (need <= *cap)
        return 0;
    uint32_t nc = *cap ? 2 * *cap : 8;
    void *q = mem_realloc(*p, (size_t)nc * sizeof(void *));
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static const sp_dep *
dep_of(pat *P, const tg_tape *b)
{
    sp_cache *c = P->cache;
    for (uint32_t k = 0; k < c->ndep; k++)
        if (c->dep[k]->b == b && c->dep[k]->mask == P->mask)
            return c->dep[k];
    sp_dep *d = mem_calloc(1, sizeof *d);
    if (!d || sp_pattern_run(b, 0, b->nin, P->mask, 0, NULL, c, &d->D)
        || grow((void **)&c->dep, &c->depcap, c->ndep + 1)) {
        if (d)
            sp_csr_free(&d->D);
        mem_free(d);
        P->S.oom = 1;
        return NULL;
    }
    d->b = b;
    d->mask = P->mask;
    c->dep[c->ndep++] = d;
    return d;
}

/* full symmetric rows from a lower triangle (rows unsorted) */
static int
symmetric(const sp_csr *low, sp_csr *out)
{
    uint32_t n = low->nrows;
    memset(out, 0, sizeof *out);
    out->nrows = out->ncols = n;
    out->ptr = mem_calloc((size_t)n + 2, sizeof *out->ptr);
    size_t tot = 0;
    for (uint32_t r = 0; r < n && out->ptr; r++)
        for (size_t e = low->ptr[r]; e < low->ptr[r + 1]; e++) {
            uint32_t c = low->cols[e];
            out->ptr[r + 2]++;
            tot++;
            if (c != r) {
                out->ptr[c + 2]++;
                tot++;
            }
        }
    out->cols = mem_malloc((tot ? tot : 1) * sizeof *out->cols);
    if (!out->ptr || !out->cols)
        return sp_csr_free(out), -1;
    for (uint32_t r = 0; r < n; r++)
        out->ptr[r + 2] += out->ptr[r + 1];
    for (uint32_t r = 0; r < n; r++)        /* ptr[r + 1] is row r's cursor */
        for (size_t e = low->ptr[r]; e < low->ptr[r + 1]; e++) {
            uint32_t c = low->cols[e];
            out->cols[out->ptr[r + 1]++] = c;
            if (c != r)
                out->cols[out->ptr[c + 1]++] = r;
        }
    return 0;
}

static uint64_t
fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < n; k++)
        h = (h ^ p[k]) * 1099511628211ull;
    return h;
}

static void
hent_free(sp_hent *e)
{
    if (!e)
        return;
    mem_free(e->live);
    mem_free(e->inlive);
    sp_csr_free(&e->H);
    mem_free(e);
}

/* The summary of body b with live outputs live[b->nout]; its index in the
 * cache, or NONE when out of memory (P->S.oom set). */
static uint32_t
hent_of(pat *P, const tg_tape *b, const sp_dep *d, const uint8_t *live)
{
    sp_cache *c = P->cache;
    uint64_t h = fnv(live, b->nout);
    for (uint32_t k = c->nh; k-- > 0;) {
        const sp_hent *e = c->h[k];
        if (e->b == b && e->hash == h && memcmp(e->live, live, b->nout) == 0)
            return k;
    }
    sp_hent *e = mem_calloc(1, sizeof *e);
    sp_csr low = { 0 };
    if (!e || !(e->live = mem_malloc((size_t)b->nout + 1))
        || !(e->inlive = mem_calloc((size_t)b->nin + 1, 1))
        || sp_pattern_run(b, 0, b->nin, SP_NZ, 1, live, c, &low) || symmetric(&low, &e->H)
        || grow((void **)&c->h, &c->hcap, c->nh + 1)) {
        sp_csr_free(&low);
        hent_free(e);
        P->S.oom = 1;
        return NONE;
    }
    sp_csr_free(&low);
    e->b = b;
    e->hash = h;
    memcpy(e->live, live, b->nout);
    for (uint32_t k = 0; k < b->nout; k++)
        if (live[k])
            for (size_t q = d->D.ptr[k]; q < d->D.ptr[k + 1]; q++)
                e->inlive[d->D.cols[q]] = 1;
    c->h[c->nh] = e;
    return c->nh++;
}

void
sp_cache_free(sp_cache *c)
{
    for (uint32_t k = 0; k < c->ndep; k++) {
        sp_csr_free(&c->dep[k]->D);
        mem_free(c->dep[k]);
    }
    for (uint32_t k = 0; k < c->nh; k++)
        hent_free(c->h[k]);
    mem_free(c->dep);
    mem_free(c->h);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ marking */

/* Marks (LIVE, NEED) of the body inputs of one application from those of
 * its outputs ob[]: through D; for a Hessian, the live outputs' summary
 * (its id into *id, NONE without live outputs) adds NEED on the inputs
 * that interact.  Returns the NONLIN bit when some pair interacts. */
static uint8_t
mark_app(pat *P, const lview *L, const sp_dep *d, const uint8_t *ob, uint8_t *ib, uint8_t *lm,
         uint8_t *prev, uint32_t *id)
{
    const sp_csr *D = &d->D;
    int anylive = 0;
    memset(ib, 0, L->nin);
    for (uint32_t k = 0; k < L->nbout; k++) {
        uint8_t m = ob[k] & (LIVE | NEED);
        lm[k] = (ob[k] & LIVE) != 0;
        anylive |= lm[k];
        if (m)
            for (size_t q = D->ptr[k]; q < D->ptr[k + 1]; q++)
                ib[D->cols[q]] |= m;
    }
    if (!P->hessian)
        return 0;
    if (!anylive) {
        *id = NONE;
        return 0;
    }
    if (*id == NONE || memcmp(lm, prev, L->nbout) != 0) {    /* not the last one's */
        *id = hent_of(P, L->b, d, lm);
        if (*id == NONE)
            return 0;
        memcpy(prev, lm, L->nbout);
    }
    const sp_csr *H = &P->cache->h[*id]->H;
    uint8_t nl = 0;
    for (uint32_t u = 0; u < L->nin; u++)
        if (H->ptr[u + 1] > H->ptr[u]) {
            ib[u] |= NEED;
            nl = NONLIN;
        }
    return nl;
}

void
sp_loop_mark(pat *P, uint32_t i)
{
    const tg_tape *t = P->t;
    lview L;
    view(t, i, &L);
    uint8_t self = 0;
    for (uint64_t k = 0; k < tape_xrec_of(t, i)->nout; k++)
        self |= P->mark[i + 1 + k] & NEED;
    if (!(self | (P->mark[i] & LIVE)))
        return;                         /* nothing it computes matters */
    const sp_dep *d = dep_of(P, L.b);
    uint8_t *buf = mem_calloc(2 * (size_t)L.nbout + 2 * (size_t)L.nin + 1, 1);
    uint32_t *ids = P->hessian && L.count ? mem_malloc(L.count * sizeof *ids) : NULL;
    if (!d || !buf || (P->hessian && L.count && !ids)) {
        mem_free(buf);
        mem_free(ids);
        P->S.oom = 1;
        return;
    }
    if (P->hessian)
        P->ids[L.r] = ids;
    uint8_t *ob = buf, *lm = ob + L.nbout, *ib = lm + L.nbout, *prev = ib + L.nin;
    /* ob[0..nc): the carries out of the step (the scan's own outputs
     * after the last), which become the carries into the step before */
    for (uint32_t k = 0; k < L.nc; k++)
        ob[k] = P->mark[i + 1 + k];
    uint32_t id = NONE;
    for (uint64_t a = L.count; a-- > 0 && !P->S.oom;) {   /* backwards: scans' carries */
        for (uint32_t k = L.nc; k < L.nbout; k++)
            ob[k] = P->mark[y_ref(&L, a, k)];
        self |= mark_app(P, &L, d, ob, ib, lm, prev, &id);
        if (ids)
            ids[a] = id;
        for (uint32_t u = 0; u < L.nc; u++)
            ob[u] = ib[u];
        for (uint32_t u = L.nc; u < L.nin; u++)
            P->mark[in_ref(&L, a, u)] |= ib[u];
    }
    for (uint32_t k = 0; k < L.nc; k++)
        P->mark[L.ops[k]] |= ob[k] & (LIVE | NEED);
    P->mark[i] |= self;
    mem_free(buf);
}

/* ------------------------------------------------------------ sweeping */

/* The union of in[idx[0..n)] (NULL: empty): a holder of an input's set
 * when it is the only one, else a new set; the caller releases it. */
static sp_set *
unite(pat *P, sp_set *const *in, const uint32_t *idx, size_t n)
{
    sp_set *big = NULL;
    int more = 0;
    for (size_t q = 0; q < n; q++) {
        sp_set *s = in[idx[q]];
        if (!s || s == big)
            continue;
        if (big)
            more = 1;
        if (!big || s->len > big->len)
            big = s;
    }
    if (!big)
        return NULL;
    if (!more) {
        big->refs++;
        return big;
    }
    sp_set *u = sp_set_copy(&P->S, big);
    for (size_t q = 0; q < n && u; q++)
        if (in[idx[q]] != big)
            sp_set_union(&P->S, u, in[idx[q]]);
    return u;
}

/* The interactions of one application: X(u) x X(v) over the pairs (u, v)
 * of H, as X(u) x (union of X(v) over u's row); each pair is met from
 * both ends, so keeping c <= r (sp_interact_one) covers both triangles. */
static void
interact_app(pat *P, const sp_csr *H, sp_set *const *in, uint32_t nin)
{
    for (uint32_t u = 0; u < nin && !P->S.oom; u++) {
        if (!in[u] || H->ptr[u + 1] == H->ptr[u])
            continue;
        sp_set *S = unite(P, in, H->cols + H->ptr[u], H->ptr[u + 1] - H->ptr[u]);
        if (!S)
            continue;
        const uint32_t *ul = sp_set_list(in[u], P->S.scratch);
        const uint32_t *sl = sp_set_list(S, P->bufq);
        sp_interact_one(P, ul, in[u]->len, sl, S->len);
        sp_set_release(&P->S, S);
    }
}

void
sp_loop_sweep(pat *P, uint32_t i)
{
    const tg_tape *t = P->t;
    lview L;
    view(t, i, &L);
    const sp_dep *d = dep_of(P, L.b);
    sp_set **in = mem_calloc((size_t)L.nin + 2 * (size_t)L.nc + 1, sizeof *in);
    if (!d || !in) {
        mem_free(in);
        P->S.oom = 1;
        return;
    }
    sp_set **cc = in + L.nin, **cn = cc + L.nc;     /* carries into / out of a step */
    const sp_csr *D = &d->D;
    const uint32_t *ids = P->hessian ? P->ids[L.r] : NULL;
    for (uint32_t k = 0; k < L.nc; k++)
        if ((cc[k] = P->set[L.ops[k]]))
            cc[k]->refs++;
    for (uint64_t a = 0; a < L.count && !P->S.oom; a++) {
        for (uint32_t u = 0; u < L.nc; u++)
            in[u] = cc[u];
        for (uint32_t u = L.nc; u < L.nin; u++)
            in[u] = P->set[in_ref(&L, a, u)];
        for (uint32_t k = 0; k < L.nc; k++)
            cn[k] = unite(P, in, D->cols + D->ptr[k], D->ptr[k + 1] - D->ptr[k]);
        for (uint32_t k = L.nc; k < L.nbout; k++) {
            uint32_t x = y_ref(&L, a, k);
            if (P->mark[x] & NEED)
                P->set[x] = unite(P, in, D->cols + D->ptr[k], D->ptr[k + 1] - D->ptr[k]);
        }
        if (ids && ids[a] != NONE)
            interact_app(P, &P->cache->h[ids[a]]->H, in, L.nin);
        for (uint32_t k = 0; k < L.nc; k++) {
            sp_set_release(&P->S, cc[k]);
            cc[k] = cn[k];
        }
    }
    for (uint32_t k = 0; k < L.nc; k++) {
        if (P->mark[i + 1 + k] & NEED)
            P->set[i + 1 + k] = cc[k];
        else
            sp_set_release(&P->S, cc[k]);
    }
    mem_free(in);
}
