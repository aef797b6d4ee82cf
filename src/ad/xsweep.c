/* src/ad/xsweep.c -- loops in the numeric derivative sweeps (xsweep.h).
 *
 * Every handler recomputes what it needs of the body from the loop's
 * operand values: a map application's body values from its xs and params
 * (one more body value sweep per application than the value sweep did),
 * a scan step's from its carry, which is stored or recomputed from
 * checkpoints by the binomial schedule of revolve.h.  So the memory of a
 * derivative sweep through a loop is that of one body (per nesting level)
 * plus the checkpoints, never count * |body|. */
#include <float.h>
#include <math.h>

#include "tape/alloc.h"
#include "tape/mathx.h"
#include "ad/revolve.h"
#include "ad/xsweep.h"
#include "ad/call.h"

enum { L8 = TG_LANES };

/* Automatic budget (tg_tape_set_checkpoints(t, 0)): every carry is stored
 * while the states take at most this many doubles (8 MiB), else as many
 * snapshots as fit in it: a scan of 10^6 steps of a carry of 8 doubles
 * then recomputes each step at most twice. */
#define AUTO_STATE_DOUBLES ((uint64_t)1 << 20)

/* ------------------------------------------------------------ the context */

static _Thread_local ad_xctx *cur_ctx;

static void kept_drop_all(ad_xctx *c);

void
ad_xctx_begin(ad_xctx *c, const tg_tape *t, double *buf, size_t cap)
{
    c->buf = buf;
    c->cap = buf ? cap : 0;
    c->used = 0;
    c->snaps = t ? ad_x_snaps(t) : 0;
    c->failed = 0;
    c->kept = NULL;
    c->keptn = 0;
    c->prev = cur_ctx;
    cur_ctx = c;
}

tg_status
ad_xctx_end(ad_xctx *c, const char *fn)
{
    kept_drop_all(c);       /* records no reverse sweep took (a guard failed) */
    cur_ctx = c->prev;
    if (c->failed)
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for the scratch of a loop", fn);
    return TG_OK;
}

static uint64_t
ctx_snaps(void)
{
    return cur_ctx ? cur_ctx->snaps : 0;
}

/* n doubles of scratch: from the context (LIFO), else the heap (*heap set).
 * NULL when out of memory (the context records the failure). */
static double *
take(size_t n, int *heap)
{
    *heap = 0;
    if (n == 0)
        n = 1;
    ad_xctx *c = cur_ctx;
    if (c && c->cap - c->used >= n) {
        double *p = c->buf + c->used;
        c->used += n;
        return p;
    }
    double *p = n <= SIZE_MAX / sizeof(double) ? mem_malloc(n * sizeof *p) : NULL;
    if (!p) {
        if (c)
            c->failed = 1;
        return NULL;
    }
    *heap = 1;
    return p;
}

static void
give(double *p, size_t n, int heap)
{
    if (heap) {
        mem_free(p);
        return;
    }
    if (n == 0)
        n = 1;
    cur_ctx->used -= n;
}

/* ---------------------------------------------------------------- budget */

/* Snapshots for a scan of `steps` steps whose state is `state` doubles. */
static uint64_t
snaps_for(uint64_t steps, uint64_t state, uint64_t budget)
{
    if (steps == 0)
        return 1;
    if (budget != 0)
        return budget < steps ? budget : steps;
    if (state == 0 || steps <= AUTO_STATE_DOUBLES / state)
        return steps;
    uint64_t s = AUTO_STATE_DOUBLES / state;
    return s < 2 ? 2 : s;
}

bool
ad_x_has_loops(const tg_tape *t)
{
    return t->nxr != 0;
}

/* ----------------------------------------------------------------- sizes */

/* The arrays each handler takes (kept in one place so that ad_x_need and
 * the handlers agree): a body's inputs, values (with the scratch of its
 * own value sweep), lanes of tangents or adjoints, stored partials, and for
 * a scan the checkpoints and the schedule's frames. */
typedef struct xsizes {
    size_t in, vals, seed, lanes, w, wd, stored, carry, snaps, frames, chunk, total;
} xsizes;

/* Applications per dispatch in a map's reverse sweep: AD_MAP_WIDE for a
 * small body without loops (ad_map_chunk, as the value sweep), else 8. */
static size_t
map_rev_width(const tg_tape *b)
{
    return b->nxr == 0 && ad_map_chunk(b) == AD_MAP_WIDE ? AD_MAP_WIDE : L8;
}

static size_t
u32s(size_t n)
{
    return (n + 1) / 2;
}

static xsizes
sizes(const tg_tape *t, const tape_xrec *r, int kind, size_t L, uint64_t budget)
{
    const tg_tape *b = tape_body_of(t, r);
    size_t bn = b->n, bin = b->nin, nc = r->nc;
    xsizes z = { 0 };
    z.in = bin;
    z.vals = ad_values_len(b, 1);
    if (kind == AD_X_TANGENT) {
        z.seed = bin * L;
        z.lanes = bn * L;
    } else if (kind == AD_X_REVERSE) {
        z.lanes = bn * L;
        z.stored = L == 1 ? 2 * bn + 2 * u32s(bn) : 0;
        z.carry = nc * L;
        if (r->kind == TG_OP_MAP && L == 1) {  /* C applications per dispatch */
            size_t C = map_rev_width(b);
            z.chunk = C * bin + ad_values_len(b, C) + C * bn;
        }
    } else {
        z.seed = bin * L;
        z.lanes = bn * L;                       /* tangents */
        z.w = bn;
        z.wd = bn * L;
        z.stored = 2 * bn + 2 * u32s(bn);
        z.carry = nc * (1 + L);                 /* carry adjoint and its tangents */
    }
    if (r->kind == TG_OP_SCAN) {
        size_t state = kind == AD_X_REVERSE ? nc : nc * (1 + L);
        uint64_t s = snaps_for(r->count, state, budget);
        z.snaps = (size_t)s * state;
        z.frames = rv_frames(r->count, s) * (sizeof(rv_frame) / sizeof(double) + 1);
    }
    z.total = z.in + z.vals + z.seed + z.lanes + z.w + z.wd + z.stored + z.carry + z.snaps
            + z.frames + z.chunk;
    return z;
}

static size_t
need_budget(const tg_tape *t, int kind, size_t L, uint64_t budget)
{
    size_t need = 0;
    for (uint32_t k = 0; k < t->nxr; k++) {
        const tape_xrec *r = &t->xr[k];
        if (r->kind != TG_OP_MAP && r->kind != TG_OP_SCAN)
            continue;
        size_t s = sizes(t, r, kind, L, budget).total;
        const tg_tape *b = tape_body_of(t, r);
        /* the body's own loops run while this handler holds its arrays;
         * first-order sweeps inside a second-order handler need theirs */
        size_t inner = need_budget(b, kind, L, budget);
        if (kind == AD_X_SECOND) {
            size_t i2 = need_budget(b, AD_X_REVERSE, 1, budget);
            size_t i3 = need_budget(b, AD_X_TANGENT, L, budget);
            inner = inner > i2 ? inner : i2;
            inner = inner > i3 ? inner : i3;
        }
        if (kind == AD_X_REVERSE && L != 1) {
            size_t i2 = need_budget(b, AD_X_REVERSE, 1, budget);
            inner = inner > i2 ? inner : i2;
        }
        s += inner;
        if (s > need)
            need = s;
    }
    return need;
}

static size_t kept_need(const tg_tape *t, uint64_t budget);

size_t
ad_x_need(const tg_tape *t, int kind, size_t lanes)
{
    if (!t->nxr)
        return 0;
    uint64_t budget = ad_x_snaps(t);
    size_t need = need_budget(t, kind, lanes, budget);
    /* the records of the stored-partials forward sweep ("kept"): first
     * order at one point, and the first-order part of second-order calls */
    if ((kind == AD_X_REVERSE && lanes == 1) || kind == AD_X_SECOND)
        need += kept_need(t, budget);
    return need;
}

/* One handler's arrays, carved from one piece of scratch. */
typedef struct xmem {
    double *base;
    size_t len;
    int heap;
    double *in, *vals, *seed, *lanes, *w, *wd, *pa, *pb, *carry, *snaps, *chunk;
    uint32_t *ta, *tb;
    rv_frame *frames;
} xmem;

static int
xmem_take(xmem *m, const xsizes *z, size_t bn)
{
    m->len = z->total;
    m->base = take(z->total, &m->heap);
    if (!m->base)
        return -1;
    double *p = m->base;
#define CARVE(f, n) (m->f = p, p += (n))
    CARVE(in, z->in);
    CARVE(vals, z->vals);
    CARVE(seed, z->seed);
    CARVE(lanes, z->lanes);
    CARVE(w, z->w);
    CARVE(wd, z->wd);
    CARVE(carry, z->carry);
    CARVE(snaps, z->snaps);
    CARVE(chunk, z->chunk);
#undef CARVE
    m->pa = m->pb = NULL;
    m->ta = m->tb = NULL;
    if (z->stored) {
        m->pa = p;
        m->pb = p + bn;
        m->ta = (uint32_t *)(void *)(p + 2 * bn);
        m->tb = (uint32_t *)(void *)(p + 2 * bn + u32s(bn));
        p += z->stored;
    }
    m->frames = (rv_frame *)(void *)p;
    return 0;
}

static void
xmem_give(xmem *m)
{
    give(m->base, m->len, m->heap);
}

/* ------------------------------------------------ kept for the reverse
 *
 * The gradient's forward sweep (ad_forward_partials, fused.c, through
 * ad_x_values) meets a scan whose every carry its reverse would store
 * anyway (snaps_for gives all the steps).  Rather than its values only,
 * it keeps for the reverse sweep
 *   KEEP_PARTIALS  (a body without loops or calls) the body's stored
 *                  partials of every step (2 doubles per body instruction
 *                  and step, the slots once: they do not depend on the
 *                  values): the reverse is then one stored-partials sweep
 *                  of the body per step, as the flat tape's, and no body
 *                  forward sweep at all;
 *   KEEP_CARRIES   else the carry before every step: the reverse then
 *                  skips the schedule's forward pass that stores them.
 * Records form a stack in the call's context, keyed by (tape, loop,
 * value array): ad_reverse_stored_x meets the loops of a tape in reverse
 * order, so the record of the scan it is at is on top (records of the
 * body's own scans are pushed and popped inside, by the body's sweeps).
 * All records of a call together take at most KEEP_DOUBLES; a scan that
 * does not fit, or whose memory cannot be had, is reversed from
 * checkpoints as before: keeping never fails a call.  Adjoints are summed
 * in the same order either way (the same steps, last to first), so the
 * results are the same bits. */
#define KEEP_DOUBLES AUTO_STATE_DOUBLES
enum { KEEP_CARRIES = 1, KEEP_PARTIALS = 2 };

typedef struct ad_xkept {
    const tg_tape *t;
    const double *v;
    uint32_t i;
    int mode, heap;
    size_t len;                 /* doubles, this header included */
    struct ad_xkept *prev;
} ad_xkept;

#define KEPT_HDR ((sizeof(ad_xkept) + sizeof(double) - 1) / sizeof(double))

static double *
kept_data(ad_xkept *k)
{
    return (double *)(void *)k + KEPT_HDR;
}

/* Doubles of a record of `mode` for scan r (header included), or
 * SIZE_MAX when it would exceed KEEP_DOUBLES. */
static size_t
kept_len(const tg_tape *t, const tape_xrec *r, int mode)
{
    size_t bn = tape_body_of(t, r)->n;
    uint64_t per = mode == KEEP_PARTIALS ? 2 * (uint64_t)bn : r->nc;
    uint64_t fix = KEPT_HDR + (mode == KEEP_PARTIALS ? 2 * (uint64_t)u32s(bn) : 0);
    if (fix > KEEP_DOUBLES || (per && r->count > (KEEP_DOUBLES - fix) / per))
        return SIZE_MAX;
    return (size_t)(fix + r->count * per);
}

/* What to keep of scan r with `room` doubles left (0: nothing); *len: its
 * record's doubles. */
static int
kept_mode(const tg_tape *t, const tape_xrec *r, uint64_t budget, size_t room, size_t *len)
{
    if (r->count == 0 || snaps_for(r->count, r->nc, budget) < r->count)
        return 0;
    if (!tape_body_of(t, r)->nxr && (*len = kept_len(t, r, KEEP_PARTIALS)) <= room)
        return KEEP_PARTIALS;
    *len = kept_len(t, r, KEEP_CARRIES);
    return *len <= room ? KEEP_CARRIES : 0;
}

/* Scratch for the records of a gradient of t: the largest record of each
 * scan, of its body's scans below it (pushed while it is reversed), all
 * at most KEEP_DOUBLES together. */
static size_t
kept_need(const tg_tape *t, uint64_t budget)
{
    size_t need = 0;
    for (uint32_t k = 0; k < t->nxr && need < KEEP_DOUBLES; k++) {
        const tape_xrec *r = &t->xr[k];
        if (r->kind != TG_OP_MAP && r->kind != TG_OP_SCAN)
            continue;
        size_t len = 0;
        if (r->kind == TG_OP_SCAN && !kept_mode(t, r, budget, KEEP_DOUBLES, &len))
            len = 0;
        need += len + kept_need(tape_body_of(t, r), budget);
    }
    return need < KEEP_DOUBLES ? need : KEEP_DOUBLES;
}

static void
kept_give(ad_xctx *c, ad_xkept *k)
{
    c->keptn -= k->len;
    if (k->heap)
        mem_free(k);
    else
        c->used -= k->len;
}

static void
kept_drop_all(ad_xctx *c)
{
    while (c->kept) {
        ad_xkept *k = c->kept;
        c->kept = k->prev;
        kept_give(c, k);
    }
}

/* A new record on top (NULL: no memory; the context is not failed). */
static ad_xkept *
kept_push(ad_xctx *c, const tg_tape *t, uint32_t i, const double *v, int mode, size_t len)
{
    /* records of an earlier forward sweep over the same values that no
     * reverse sweep took */
    while (c->kept && c->kept->t == t && c->kept->v == v && c->kept->i >= i) {
        ad_xkept *k = c->kept;
        c->kept = k->prev;
        kept_give(c, k);
    }
    double *p;
    int heap = 0;
    if (c->cap - c->used >= len) {
        p = c->buf + c->used;
        c->used += len;
    } else {
        p = len <= SIZE_MAX / sizeof(double) ? mem_malloc(len * sizeof *p) : NULL;
        if (!p)
            return NULL;
        heap = 1;
    }
    ad_xkept *k = (ad_xkept *)(void *)p;
    *k = (ad_xkept){ t, v, i, mode, heap, len, c->kept };
    c->kept = k;
    c->keptn += len;
    return k;
}

/* The record of loop i of t at values v, taken off the stack (the caller
 * gives it back with kept_give once its own scratch is given), or NULL. */
static ad_xkept *
kept_pop(const tg_tape *t, uint32_t i, const double *v)
{
    ad_xctx *c = cur_ctx;
    ad_xkept *k = c ? c->kept : NULL;
    if (!k || k->t != t || k->i != i || k->v != v)
        return NULL;
    c->kept = k->prev;
    return k;
}

/* Scan i's values at one point (VL = 1) as xforward.c's scan_lane, keeping
 * what kept_mode says.  0: nothing kept, nothing done. */
static int
scan_values_kept(const tg_tape *t, const tape_xrec *r, uint32_t i, double *v, double *s)
{
    ad_xctx *c = cur_ctx;
    size_t len;
    int mode = c ? kept_mode(t, r, c->snaps, KEEP_DOUBLES - c->keptn, &len) : 0;
    ad_xkept *kp = mode ? kept_push(c, t, i, v, mode, len) : NULL;
    if (!kp)
        return 0;
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *o = tape_xops(t, r);
    const uint32_t nc = r->nc, nx = r->nx, ny = r->ny;
    const uint32_t *xs = o + nc, *ps = xs + r->count * nx;
    size_t bn = b->n;
    double *in = s, *bv = s + b->nin, *d = kept_data(kp);
    const bool guarded = ad_guarded(b);
    uint32_t *ta = NULL, *tb = NULL;
    if (mode == KEEP_PARTIALS) {
        ta = (uint32_t *)(void *)(d + r->count * 2 * bn);
        tb = ta + 2 * u32s(bn);
    }
    v[i] = 0.0;
    for (uint32_t q = 0; q < nc; q++)
        in[q] = v[o[q]];
    for (uint32_t q = 0; q < r->np; q++)
        in[nc + nx + q] = v[ps[q]];
    double *y = v + i + 1 + nc;
    for (uint64_t k = 0; k < r->count; k++) {
        for (uint32_t q = 0; q < nx; q++)
            in[nc + q] = v[xs[k * nx + q]];
        if (mode == KEEP_PARTIALS) {
            double *pa = d + k * 2 * bn;
            ad_forward_partials(b, in, bv, pa, pa + bn, ta, tb);
        } else {
            memcpy(d + k * nc, in, nc * sizeof(double));
            ad_forward_one(b, in, bv);
        }
        if (guarded && v[i] == 0.0 && !ad_guards_hold(b, bv, 1, 0))
            v[i] = (double)(k + 1);     /* a body guard failed: as ad_forward_x (guards.c) */
        for (uint32_t q = 0; q < nc; q++)
            in[q] = bv[b->out_ref[q]];
        for (uint32_t q = 0; q < ny; q++)
            y[k * ny + q] = bv[b->out_ref[nc + q]];
    }
    memcpy(v + i + 1, in, nc * sizeof(double));
    /* a constant's adjoint is never read: its users' contributions go to
     * their own slots instead (dead after the user's own adjoint is read,
     * as the unused pairs of fused.c), which takes the constant off the
     * chain of additions through one memory location */
    for (uint32_t j = 0; mode == KEEP_PARTIALS && j < bn; j++) {
        if (b->op[ta[j]] == TG_OP_CONST)
            ta[j] = j;
        if (b->op[tb[j]] == TG_OP_CONST)
            tb[j] = j;
    }
    return 1;
}

/* ------------------------------------------------------------- body calls */

/* Tangents of body b at values bv with explicit seeds, L lanes. */
static void
body_tangent(const tg_tape *b, const double *bv, const double *seed, double *vd, size_t L)
{
    if (L == L8)
        ad_tangent_lanes(b, bv, seed, 0, vd);
    else
        ad_tangent_n(b, bv, seed, vd, L);
}

/* Values and first-order adjoints of b at inputs `in`: the adjoints of its
 * outputs are seeded by the caller through `seed_out` into bar (n), then
 * the stored-partials reverse sweep runs. */
static void
body_forward_partials(const tg_tape *b, const double *in, xmem *m)
{
    ad_forward_partials(b, in, m->vals, m->pa, m->pb, m->ta, m->tb);
}

static void
body_reverse1(const tg_tape *b, xmem *m, double *bar)
{
    ad_reverse_stored_x(b, m->vals, m->pa, m->pb, m->ta, m->tb, bar);
}

static void
zero(double *p, size_t n)
{
    memset(p, 0, n * sizeof *p);
}

/* ---------------------------------------------- accumulation order
 *
 * An operand's adjoint gathers the contributions of its users in the
 * order the reverse sweep meets them.  A body's sweep would sum an
 * application's contributions locally (from 0) and the handler add the sum
 * to the operand: the same terms grouped otherwise, so the rounding would
 * differ from the flat (unrolled) tape's.  Instead the body's input slots
 * start from the operands' adjoints so far and are copied back: the flat
 * tape's order exactly, for an operand met once per application (one met
 * twice starts from the accumulator once and adds its other slots).
 * Lists longer than XSEED (no quadratic search for repeats) are added. */
enum { XSEED = 64 };

typedef struct xrefs {
    uint32_t ref[XSEED];
    uint32_t slot[XSEED];   /* the body's input instruction */
    uint8_t first[XSEED];   /* the first occurrence of its ref in the list */
    uint32_t n;
    int on;
} xrefs;

static void
xrefs_add(xrefs *x, uint32_t ref, uint32_t slot)
{
    if (x->n == XSEED) {
        x->on = 0;
        return;
    }
    x->ref[x->n] = ref;
    x->slot[x->n] = slot;
    x->first[x->n] = 1;
    for (uint32_t p = 0; p < x->n; p++)
        if (x->ref[p] == ref)
            x->first[x->n] = 0;
    x->n++;
}

/* lanes[slot] = acc[ref] for first occurrences (nl lanes; acc stride as) */
static void
xrefs_seed(const xrefs *x, const double *acc, size_t as, double *lanes, size_t nl)
{
    if (!x->on)
        return;
    for (uint32_t q = 0; q < x->n; q++)
        if (x->first[q])
            memcpy(lanes + (size_t)x->slot[q] * nl, acc + (size_t)x->ref[q] * as,
                   nl * sizeof(double));
}

/* back into the accumulators (x->on): copied (first occurrences) or added */
static void
xrefs_back(const xrefs *x, double *acc, size_t as, const double *lanes, size_t nl)
{
    for (uint32_t q = 0; q < x->n; q++) {
        const double *s = lanes + (size_t)x->slot[q] * nl;
        double *d = acc + (size_t)x->ref[q] * as;
        if (x->first[q])
            memcpy(d, s, nl * sizeof(double));
        else
            for (size_t l = 0; l < nl; l++)
                d[l] += s[l];
    }
}

/* The operands of map application j / scan step k other than the carry:
 * xs then params, with the body's input slots from in0 on. */
static void
xrefs_app(xrefs *x, const tg_tape *b, uint32_t in0, const uint32_t *xs, uint32_t nx,
          const uint32_t *ps, uint32_t np)
{
    x->n = 0;
    x->on = 1;
    for (uint32_t q = 0; q < nx; q++)
        xrefs_add(x, xs[q], b->in_ref[in0 + q]);
    for (uint32_t q = 0; q < np; q++)
        xrefs_add(x, ps[q], b->in_ref[in0 + nx + q]);
}

/* NaN into every output lane of a handler that could not run. */
static void
poison(const tape_xrec *r, uint32_t i, double *lanes, size_t bs, size_t nl)
{
    for (uint64_t k = 0; k < r->nout; k++)
        for (size_t l = 0; l < nl; l++)
            lanes[(size_t)(i + 1 + k) * bs + l] = NAN;
}

/* --------------------------------------------------------------- tangents */

static void
map_tangent(const tg_tape *t, const tape_xrec *r, uint32_t i, const double *v, double *vd,
            size_t L, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *xs = tape_xops(t, r), *ps = xs + r->count * r->nx;
    const uint32_t nx = r->nx, ny = r->ny;
    for (uint32_t q = 0; q < r->np; q++) {
        m->in[nx + q] = v[ps[q]];
        memcpy(m->seed + (size_t)(nx + q) * L, vd + (size_t)ps[q] * L, L * sizeof(double));
    }
    int pactive = ad_any(m->seed + (size_t)nx * L, (size_t)r->np * L);
    for (uint64_t j = 0; j < r->count; j++) {
        double *y = vd + (size_t)(i + 1 + j * ny) * L;
        int active = pactive;
        for (uint32_t q = 0; q < nx; q++) {
            const double *s = vd + (size_t)xs[j * nx + q] * L;
            memcpy(m->seed + (size_t)q * L, s, L * sizeof(double));
            active |= ad_any(s, L);
            m->in[q] = v[xs[j * nx + q]];
        }
        if (!active) {              /* absolute zero in, absolute zero out */
            zero(y, (size_t)ny * L);
            continue;
        }
        ad_forward_one(b, m->in, m->vals);
        body_tangent(b, m->vals, m->seed, m->lanes, L);
        for (uint32_t q = 0; q < ny; q++)
            memcpy(y + (size_t)q * L, m->lanes + (size_t)b->out_ref[q] * L, L * sizeof(double));
    }
}

static void
scan_tangent(const tg_tape *t, const tape_xrec *r, uint32_t i, const double *v, double *vd,
             size_t L, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *o = tape_xops(t, r);
    const uint32_t nc = r->nc, nx = r->nx, ny = r->ny;
    const uint32_t *xs = o + nc, *ps = xs + r->count * nx;
    /* the carry and its tangents live in the body's input and seed arrays */
    for (uint32_t q = 0; q < nc; q++) {
        m->in[q] = v[o[q]];
        memcpy(m->seed + (size_t)q * L, vd + (size_t)o[q] * L, L * sizeof(double));
    }
    for (uint32_t q = 0; q < r->np; q++) {
        m->in[nc + nx + q] = v[ps[q]];
        memcpy(m->seed + (size_t)(nc + nx + q) * L, vd + (size_t)ps[q] * L, L * sizeof(double));
    }
    double *out = vd + (size_t)(i + 1) * L, *y = out + (size_t)nc * L;
    for (uint64_t k = 0; k < r->count; k++) {
        for (uint32_t q = 0; q < nx; q++) {
            m->in[nc + q] = v[xs[k * nx + q]];
            memcpy(m->seed + (size_t)(nc + q) * L, vd + (size_t)xs[k * nx + q] * L,
                   L * sizeof(double));
        }
        ad_forward_one(b, m->in, m->vals);
        body_tangent(b, m->vals, m->seed, m->lanes, L);
        for (uint32_t q = 0; q < nc; q++) {
            m->in[q] = m->vals[b->out_ref[q]];
            memcpy(m->seed + (size_t)q * L, m->lanes + (size_t)b->out_ref[q] * L,
                   L * sizeof(double));
        }
        for (uint32_t q = 0; q < ny; q++)
            memcpy(y + (size_t)(k * ny + q) * L, m->lanes + (size_t)b->out_ref[nc + q] * L,
                   L * sizeof(double));
    }
    memcpy(out, m->seed, (size_t)nc * L * sizeof(double));
}

void
ad_x_tangent(const tg_tape *t, uint32_t i, const double *v, double *vd, size_t L)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    zero(vd + (size_t)i * L, L);
    if (r->kind != TG_OP_MAP && r->kind != TG_OP_SCAN) {
        poison(r, i, vd, L, L);         /* CALL: refused before the sweep (issue 13) */
        return;
    }
    xsizes z = sizes(t, r, AD_X_TANGENT, L, ctx_snaps());
    xmem m;
    if (xmem_take(&m, &z, tape_body_of(t, r)->n)) {
        poison(r, i, vd, L, L);
        return;
    }
    if (r->kind == TG_OP_MAP)
        map_tangent(t, r, i, v, vd, L, &m);
    else
        scan_tangent(t, r, i, v, vd, L, &m);
    xmem_give(&m);
}

/* ---------------------------------------------------------------- adjoints */

/* Adjoint view: value of ref q at v[q*vs], adjoint lanes at bar[q*bs ..+nl). */
typedef struct aview {
    const double *v;
    size_t vs;
    double *bar;
    size_t bs, nl;
} aview;

/* The body's adjoints (lanes) after seeding its outputs [o0, o0 + no) from
 * outer lanes src (stride bs) and running its reverse sweep at m->in. */
static void
body_adjoint(const tg_tape *b, const aview *a, xmem *m, uint32_t o0, uint32_t no,
             const double *src, size_t sbs, const double *carry_bar, uint32_t nc,
             const xrefs *x)
{
    size_t nl = a->nl, bn = b->n;
    if (nl == 1)
        body_forward_partials(b, m->in, m);
    else
        ad_forward_one(b, m->in, m->vals);
    zero(m->lanes, bn * nl);
    xrefs_seed(x, a->bar, a->bs, m->lanes, nl);
    for (uint32_t q = 0; q < nc; q++)          /* scan: carry_next */
        for (size_t l = 0; l < nl; l++)
            m->lanes[(size_t)b->out_ref[q] * nl + l] += carry_bar[(size_t)q * nl + l];
    for (uint32_t q = 0; q < no; q++)
        for (size_t l = 0; l < nl; l++)
            m->lanes[(size_t)b->out_ref[o0 + q] * nl + l] += src[(size_t)q * sbs + l];
    if (nl == 1)
        body_reverse1(b, m, m->lanes);
    else
        ad_reverse_lanes(b, m->vals, m->lanes);
}

/* bar[ref] += the body's input adjoint k, every lane */
static inline void
pull(const aview *a, uint32_t ref, const double *lanes, const tg_tape *b, uint32_t k)
{
    const double *s = lanes + (size_t)b->in_ref[k] * a->nl;
    double *d = a->bar + (size_t)ref * a->bs;
    for (size_t l = 0; l < a->nl; l++)
        d[l] += s[l];
}

/* C applications j0 .. j0+C-1 of a map (C = 8, or AD_MAP_WIDE for a
 * small body without loops) as the lanes of one body sweep (the
 * batch-gradient sweeps: one dispatch per body instruction for all C). */
static void
map_reverse_chunk(const tg_tape *t, const tape_xrec *r, uint32_t i, const aview *a, uint64_t j0,
                  size_t C, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *xs = tape_xops(t, r), *ps = xs + r->count * r->nx;
    const uint32_t nx = r->nx, ny = r->ny, np = r->np, bin = b->nin;
    size_t bn = b->n;
    double *X = m->chunk, *bv = X + C * bin, *bb = bv + ad_values_len(b, C);
    for (size_t l = 0; l < C; l++) {
        double *x = X + l * bin;
        for (uint32_t q = 0; q < nx; q++)
            x[q] = a->v[(size_t)xs[(j0 + l) * nx + q] * a->vs];
        for (uint32_t q = 0; q < np; q++)
            x[nx + q] = a->v[(size_t)ps[q] * a->vs];
    }
    ad_forward_chunk(b, X, bin, bv, C);
    zero(bb, bn * C);
    for (size_t l = 0; l < C; l++)
        for (uint32_t q = 0; q < ny; q++)
            bb[(size_t)b->out_ref[q] * C + l] += a->bar[(size_t)(i + 1 + (j0 + l) * ny + q) * a->bs];
    if (C == AD_MAP_WIDE)
        ad_reverse_wide(b, bv, bb);
    else
        ad_reverse_points(b, bv, bb);
    /* last application first, as the flat tape's reverse sweep adds them
     * (each application's contributions to one operand are summed first
     * here, so sums may round otherwise than the flat tape's; the same
     * order and grouping at any C) */
    for (size_t l = C; l-- > 0;) {
        for (uint32_t q = 0; q < nx; q++)
            a->bar[(size_t)xs[(j0 + l) * nx + q] * a->bs] += bb[(size_t)b->in_ref[q] * C + l];
        for (uint32_t q = 0; q < np; q++)
            a->bar[(size_t)ps[q] * a->bs] += bb[(size_t)b->in_ref[nx + q] * C + l];
    }
}

static void
map_reverse(const tg_tape *t, const tape_xrec *r, uint32_t i, const aview *a, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *xs = tape_xops(t, r), *ps = xs + r->count * r->nx;
    const uint32_t nx = r->nx, ny = r->ny;
    size_t nl = a->nl;
    for (uint32_t q = 0; q < r->np; q++)
        m->in[nx + q] = a->v[(size_t)ps[q] * a->vs];
    /* applications last to first (the order in which the flat tape's reverse
     * sweep meets them, so sums over applications round the same way):
     * whole chunks of 8 from the end, then one by one */
    uint64_t j = r->count;
    if (nl == 1 && m->chunk) {
        size_t C = map_rev_width(b);
        for (; j >= C; j -= C)
            map_reverse_chunk(t, r, i, a, j - C, C, m);
        for (; j >= L8; j -= L8)
            map_reverse_chunk(t, r, i, a, j - L8, L8, m);
    }
    while (j-- > 0) {
        const double *src = a->bar + (size_t)(i + 1 + j * ny) * a->bs;
        int active = 0;
        for (uint32_t q = 0; q < ny; q++)
            active |= ad_any(src + (size_t)q * a->bs, nl);
        if (!active)
            continue;               /* the application's adjoints are absolute zeros */
        for (uint32_t q = 0; q < nx; q++)
            m->in[q] = a->v[(size_t)xs[j * nx + q] * a->vs];
        xrefs x;
        xrefs_app(&x, b, 0, xs + j * nx, nx, ps, r->np);
        body_adjoint(b, a, m, 0, ny, src, a->bs, NULL, 0, &x);
        if (x.on) {
            xrefs_back(&x, a->bar, a->bs, m->lanes, nl);
            continue;
        }
        for (uint32_t q = 0; q < nx; q++)
            pull(a, xs[j * nx + q], m->lanes, b, q);
        for (uint32_t q = 0; q < r->np; q++)
            pull(a, ps[q], m->lanes, b, nx + q);
    }
}

/* The carry after steps [from, to) from the carry in m->in (values only). */
static void
scan_advance(const tg_tape *t, const tape_xrec *r, const double *v, size_t vs, uint64_t from,
             uint64_t to, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t nc = r->nc, nx = r->nx;
    const uint32_t *xs = tape_xops(t, r) + nc;
    for (uint64_t k = from; k < to; k++) {
        for (uint32_t q = 0; q < nx; q++)
            m->in[nc + q] = v[(size_t)xs[k * nx + q] * vs];
        ad_forward_one(b, m->in, m->vals);
        for (uint32_t q = 0; q < nc; q++)
            m->in[q] = m->vals[b->out_ref[q]];
    }
}

/* Step k's adjoint: the carry before it in m->in, the carry's adjoint in
 * m->carry. */
static void
scan_step_reverse(const tg_tape *t, const tape_xrec *r, uint32_t i, const aview *a, xmem *m,
                  uint64_t k)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t nc = r->nc, nx = r->nx, ny = r->ny;
    const uint32_t *xs = tape_xops(t, r) + nc, *ps = xs + r->count * nx;
    size_t nl = a->nl;
    double *cbar = m->carry;
    for (uint32_t q = 0; q < nx; q++)
        m->in[nc + q] = a->v[(size_t)xs[k * nx + q] * a->vs];
    const double *src = a->bar + (size_t)(i + 1 + nc + k * ny) * a->bs;
    xrefs x;
    xrefs_app(&x, b, nc, xs + k * nx, nx, ps, r->np);
    body_adjoint(b, a, m, nc, ny, src, a->bs, cbar, nc, &x);
    for (uint32_t q = 0; q < nc; q++)
        memcpy(cbar + (size_t)q * nl, m->lanes + (size_t)b->in_ref[q] * nl, nl * sizeof(double));
    if (x.on) {
        xrefs_back(&x, a->bar, a->bs, m->lanes, nl);
        return;
    }
    for (uint32_t q = 0; q < nx; q++)
        pull(a, xs[k * nx + q], m->lanes, b, nc + q);
    for (uint32_t q = 0; q < r->np; q++)
        pull(a, ps[q], m->lanes, b, nc + nx + q);
}

/* The body's leading inputs and constants: their stored partials are
 * zeros on their own slots, so the reverse sweep can stop before them. */
static uint32_t
body_leaves(const tg_tape *b)
{
    uint32_t lo = 0;
    while (lo < b->n && (b->op[lo] == TG_OP_INPUT || b->op[lo] == TG_OP_CONST))
        lo++;
    return lo;
}

/* The steps last to first from what the forward sweep kept: one lane at
 * one point (ad_reverse_stored_x).  As scan_step_reverse step by step, in
 * the same order of operations, with the body's forward sweep replaced by
 * the kept partials, or the schedule by the kept carries. */
static void
scan_reverse_kept(const tg_tape *t, const tape_xrec *r, uint32_t i, const aview *a, xmem *m,
                  ad_xkept *kp)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t nc = r->nc, nx = r->nx, ny = r->ny, np = r->np;
    const uint32_t *xs = tape_xops(t, r) + nc, *ps = xs + r->count * nx;
    const uint32_t *in_ref = b->in_ref, *out_ref = b->out_ref;
    size_t bn = b->n;
    double *d = kept_data(kp), *cbar = m->carry, *bb = m->lanes, *bar = a->bar;
    int part = kp->mode == KEEP_PARTIALS;
    const uint32_t *ta = NULL, *tb = NULL;
    uint32_t lo = 0;
    if (part) {
        ta = (const uint32_t *)(void *)(d + r->count * 2 * bn);
        tb = ta + 2 * u32s(bn);
        lo = body_leaves(b);
    }
    xrefs x;
    if (nx == 0)                /* the same operands at every step */
        xrefs_app(&x, b, nc, xs, 0, ps, np);
    for (uint64_t k = r->count; k-- > 0;) {
        const uint32_t *xk = xs + k * nx;
        const double *src = bar + i + 1 + nc + k * ny;
        if (nx)
            xrefs_app(&x, b, nc, xk, nx, ps, np);
        if (part) {
            zero(bb, bn);
            xrefs_seed(&x, bar, 1, bb, 1);
            for (uint32_t q = 0; q < nc; q++)
                bb[out_ref[q]] += cbar[q];
            for (uint32_t q = 0; q < ny; q++)
                bb[out_ref[nc + q]] += src[q];
            const double *pa = d + k * 2 * bn;
            ad_reverse_stored_range(lo, (uint32_t)bn, pa, pa + bn, ta, tb, bb);
        } else {
            memcpy(m->in, d + k * nc, nc * sizeof(double));
            for (uint32_t q = 0; q < nx; q++)
                m->in[nc + q] = a->v[xk[q]];
            body_adjoint(b, a, m, nc, ny, src, 1, cbar, nc, &x);
        }
        for (uint32_t q = 0; q < nc; q++)
            cbar[q] = bb[in_ref[q]];
        if (x.on) {
            xrefs_back(&x, bar, 1, bb, 1);
            continue;
        }
        for (uint32_t q = 0; q < nx; q++)
            bar[xk[q]] += bb[in_ref[nc + q]];
        for (uint32_t q = 0; q < np; q++)
            bar[ps[q]] += bb[in_ref[nc + nx + q]];
    }
}

static void
scan_reverse(const tg_tape *t, const tape_xrec *r, uint32_t i, const aview *a, xmem *m,
             uint64_t snaps, ad_xkept *kp)
{
    const uint32_t *o = tape_xops(t, r);
    const uint32_t nc = r->nc, nx = r->nx;
    const uint32_t *ps = o + nc + r->count * nx;
    size_t nl = a->nl;
    double *cbar = m->carry;
    for (uint32_t q = 0; q < nc; q++) {
        m->in[q] = a->v[(size_t)o[q] * a->vs];
        memcpy(cbar + (size_t)q * nl, a->bar + (size_t)(i + 1 + q) * a->bs, nl * sizeof(double));
    }
    for (uint32_t q = 0; q < r->np; q++)
        m->in[nc + nx + q] = a->v[(size_t)ps[q] * a->vs];
    if (kp) {
        scan_reverse_kept(t, r, i, a, m, kp);
    } else {
        rv_sched s;
        rv_init(&s, r->count, snaps, m->frames);
        for (rv_action act; (act = rv_next(&s)) != RV_TERMINATE;) {
            switch (act) {
            case RV_ADVANCE:
                scan_advance(t, r, a->v, a->vs, s.from, s.to, m);
                break;
            case RV_TAKESHOT:
                memcpy(m->snaps + s.slot * nc, m->in, nc * sizeof(double));
                break;
            case RV_RESTORE:
                memcpy(m->in, m->snaps + s.slot * nc, nc * sizeof(double));
                break;
            case RV_FIRSTURN:
            case RV_YOUTURN:
                scan_step_reverse(t, r, i, a, m, s.step);
                break;
            case RV_TERMINATE:
                break;
            }
        }
    }
    for (uint32_t q = 0; q < nc; q++) {
        double *d = a->bar + (size_t)o[q] * a->bs;
        for (size_t l = 0; l < nl; l++)
            d[l] += cbar[(size_t)q * nl + l];
    }
}

/* ad_x_reverse, with the record the forward sweep kept of scan i (or NULL) */
static void
x_reverse(const tg_tape *t, uint32_t i, const double *v, size_t vs, double *bar, size_t bs,
          size_t nl, ad_xkept *kp)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    zero(bar + (size_t)i * bs, nl);     /* the XOUTs' marker (reverse.inc) */
    if (r->kind != TG_OP_MAP && r->kind != TG_OP_SCAN)
        return;                         /* CALL: refused before the sweep (issue 13) */
    int active = 0;
    for (uint64_t k = 0; k < r->nout && !active; k++)
        active = ad_any(bar + (size_t)(i + 1 + k) * bs, nl);
    if (!active)
        return;                         /* absolute zeros: nothing flows back */
    uint64_t budget = ctx_snaps();
    xsizes z = sizes(t, r, AD_X_REVERSE, nl, budget);
    if (vs != 1)
        z.total -= z.chunk, z.chunk = 0;    /* a lane of a batch: one application at a time */
    if (kp)                                 /* the carries are kept: no schedule */
        z.total -= z.snaps + z.frames, z.snaps = z.frames = 0;
    xmem m;
    const tg_tape *b = tape_body_of(t, r);
    if (xmem_take(&m, &z, b->n)) {
        for (uint64_t k = 0; k < r->nops; k++)      /* the loop's operands get NaN */
            for (size_t l = 0; l < nl; l++)
                bar[(size_t)tape_xops(t, r)[k] * bs + l] = NAN;
        return;
    }
    if (!z.chunk)
        m.chunk = NULL;
    aview a = { v, vs, bar, bs, nl };
    if (r->kind == TG_OP_MAP)
        map_reverse(t, r, i, &a, &m);
    else
        scan_reverse(t, r, i, &a, &m, snaps_for(r->count, r->nc, budget), kp);
    xmem_give(&m);
}

void
ad_x_reverse(const tg_tape *t, uint32_t i, const double *v, size_t vs, double *bar, size_t bs,
             size_t nl)
{
    x_reverse(t, i, v, vs, bar, bs, nl, NULL);
}

/* ------------------------------------------------------ values, fast path */

void
ad_x_values(const tg_tape *t, uint32_t i, double *v, double *scratch)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    if (r->kind == TG_OP_SCAN && scan_values_kept(t, r, i, v, scratch))
        return;
    /* the value sweep's own handler: a map's applications in chunks of up
     * to AD_MAP_WIDE lanes (xforward.c), the same bits as one at a time */
    ad_forward_x(t, i, v, 1, scratch);
}

/* ------------------------------------------------ stored-partials segments */

void
ad_reverse_stored_range(uint32_t lo, uint32_t hi, const double *pa, const double *pb,
                        const uint32_t *ta, const uint32_t *tb, double *bar)
{
    /* the same loop as ad_reverse_stored (fused.c) over a range */
    for (uint32_t i = hi; i-- > lo;) {
        double w = bar[i];
        if (w == 0.0)
            continue;
        if (fabs(w) <= DBL_MAX) {
            bar[ta[i]] += pa[i] * w;
            bar[tb[i]] += pb[i] * w;
        } else {
            bar[ta[i]] += mathx_azmul(pa[i], w);
            bar[tb[i]] += mathx_azmul(pb[i], w);
        }
    }
}

void
ad_reverse_stored_x(const tg_tape *t, const double *v, const double *pa, const double *pb,
                    const uint32_t *ta, const uint32_t *tb, double *bar)
{
    if (!t->nxr) {
        ad_reverse_stored(t->n, pa, pb, ta, tb, bar);
        return;
    }
    uint32_t hi = t->n;
    for (uint32_t k = t->nxr; k-- > 0;) {
        const tape_xrec *r = &t->xr[k];
        uint32_t i = r->inst;
        /* its XOUT rows: no partials (a map's or scan's are not even
         * stored, fused.c; a call's are 0 into themselves, exact no-ops for
         * a nonzero adjoint), so the segment starts after them */
        uint32_t seg = i + 1 + (uint32_t)r->nout;
        ad_reverse_stored_range(seg < hi ? seg : hi, hi, pa, pb, ta, tb, bar);
        if (r->kind == TG_OP_CALL) {    /* a user function: its vjp (call.c) */
            ad_call_reverse(t, i, v, bar, 1, 1);
            hi = i;
            continue;
        }
        ad_xkept *kp = kept_pop(t, i, v);
        int active = 0;
        for (uint64_t q = 0; q < r->nout; q++)
            active |= bar[i + 1 + q] != 0.0;
        if (active)
            x_reverse(t, i, v, 1, bar, 1, 1, kp);
        if (kp)
            kept_give(cur_ctx, kp);
        hi = i;
    }
    ad_reverse_stored_range(0, hi, pa, pb, ta, tb, bar);
}

/* ------------------------------------------------------------ second order */

static void
map_second(const tg_tape *t, const tape_xrec *r, uint32_t i, const double *v, const double *vd,
           double *w, double *wd, size_t L, int accw, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *xs = tape_xops(t, r), *ps = xs + r->count * r->nx;
    const uint32_t nx = r->nx, ny = r->ny, np = r->np;
    size_t bn = b->n;
    for (uint32_t q = 0; q < np; q++) {
        m->in[nx + q] = v[ps[q]];
        memcpy(m->seed + (size_t)(nx + q) * L, vd + (size_t)ps[q] * L, L * sizeof(double));
    }
    for (uint64_t j = r->count; j-- > 0;) {     /* last to first, as in map_reverse */
        uint32_t y0 = i + 1 + (uint32_t)(j * ny);
        int active = 0;
        for (uint32_t q = 0; q < ny; q++)
            active |= w[y0 + q] != 0.0 || ad_any(wd + (size_t)(y0 + q) * L, L);
        if (!active)
            continue;
        for (uint32_t q = 0; q < nx; q++) {
            m->in[q] = v[xs[j * nx + q]];
            memcpy(m->seed + (size_t)q * L, vd + (size_t)xs[j * nx + q] * L, L * sizeof(double));
        }
        body_forward_partials(b, m->in, m);
        body_tangent(b, m->vals, m->seed, m->lanes, L);
        zero(m->w, bn);
        zero(m->wd, bn * L);
        xrefs x;
        xrefs_app(&x, b, 0, xs + j * nx, nx, ps, np);
        if (accw)
            xrefs_seed(&x, w, 1, m->w, 1);
        xrefs_seed(&x, wd, L, m->wd, L);
        for (uint32_t q = 0; q < ny; q++) {
            uint32_t o = b->out_ref[q];
            m->w[o] += w[y0 + q];
            for (size_t l = 0; l < L; l++)
                m->wd[(size_t)o * L + l] += wd[(size_t)(y0 + q) * L + l];
        }
        body_reverse1(b, m, m->w);
        ad_second_w(b, m->vals, m->lanes, m->w, m->wd, L);
        if (x.on) {
            if (accw)
                xrefs_back(&x, w, 1, m->w, 1);
            xrefs_back(&x, wd, L, m->wd, L);
            continue;
        }
        for (uint32_t k = 0; k < nx + np; k++) {
            uint32_t ref = k < nx ? xs[j * nx + k] : ps[k - nx];
            uint32_t s = b->in_ref[k];
            if (accw)
                w[ref] += m->w[s];
            for (size_t l = 0; l < L; l++)
                wd[(size_t)ref * L + l] += m->wd[(size_t)s * L + l];
        }
    }
}

/* the carry and its tangents (state of a second-order scan) */
static void
scan_advance2(const tg_tape *t, const tape_xrec *r, const double *v, const double *vd, size_t L,
              uint64_t from, uint64_t to, xmem *m)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t nc = r->nc, nx = r->nx;
    const uint32_t *xs = tape_xops(t, r) + nc;
    for (uint64_t k = from; k < to; k++) {
        for (uint32_t q = 0; q < nx; q++) {
            m->in[nc + q] = v[xs[k * nx + q]];
            memcpy(m->seed + (size_t)(nc + q) * L, vd + (size_t)xs[k * nx + q] * L,
                   L * sizeof(double));
        }
        ad_forward_one(b, m->in, m->vals);
        body_tangent(b, m->vals, m->seed, m->lanes, L);
        for (uint32_t q = 0; q < nc; q++) {
            m->in[q] = m->vals[b->out_ref[q]];
            memcpy(m->seed + (size_t)q * L, m->lanes + (size_t)b->out_ref[q] * L,
                   L * sizeof(double));
        }
    }
}

static void
scan_second(const tg_tape *t, const tape_xrec *r, uint32_t i, const double *v, const double *vd,
            double *w, double *wd, size_t L, int accw, xmem *m, uint64_t snaps)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *o = tape_xops(t, r);
    const uint32_t nc = r->nc, nx = r->nx, ny = r->ny, np = r->np;
    const uint32_t *xs = o + nc, *ps = xs + r->count * nx;
    size_t bn = b->n, state = (size_t)nc * (1 + L);
    double *cw = m->carry, *cwd = cw + nc;
    for (uint32_t q = 0; q < nc; q++) {
        m->in[q] = v[o[q]];
        memcpy(m->seed + (size_t)q * L, vd + (size_t)o[q] * L, L * sizeof(double));
        cw[q] = w[i + 1 + q];
        memcpy(cwd + (size_t)q * L, wd + (size_t)(i + 1 + q) * L, L * sizeof(double));
    }
    for (uint32_t q = 0; q < np; q++) {
        m->in[nc + nx + q] = v[ps[q]];
        memcpy(m->seed + (size_t)(nc + nx + q) * L, vd + (size_t)ps[q] * L, L * sizeof(double));
    }
    rv_sched s;
    rv_init(&s, r->count, snaps, m->frames);
    for (rv_action act; (act = rv_next(&s)) != RV_TERMINATE;) {
        double *snap = m->snaps + s.slot * state;
        switch (act) {
        case RV_ADVANCE:
            scan_advance2(t, r, v, vd, L, s.from, s.to, m);
            break;
        case RV_TAKESHOT:
            memcpy(snap, m->in, nc * sizeof(double));
            memcpy(snap + nc, m->seed, (size_t)nc * L * sizeof(double));
            break;
        case RV_RESTORE:
            memcpy(m->in, snap, nc * sizeof(double));
            memcpy(m->seed, snap + nc, (size_t)nc * L * sizeof(double));
            break;
        case RV_FIRSTURN:
        case RV_YOUTURN: {
            uint64_t k = s.step;
            for (uint32_t q = 0; q < nx; q++) {
                m->in[nc + q] = v[xs[k * nx + q]];
                memcpy(m->seed + (size_t)(nc + q) * L, vd + (size_t)xs[k * nx + q] * L,
                       L * sizeof(double));
            }
            body_forward_partials(b, m->in, m);
            body_tangent(b, m->vals, m->seed, m->lanes, L);
            zero(m->w, bn);
            zero(m->wd, bn * L);
            xrefs x;
            xrefs_app(&x, b, nc, xs + k * nx, nx, ps, np);
            if (accw)
                xrefs_seed(&x, w, 1, m->w, 1);
            xrefs_seed(&x, wd, L, m->wd, L);
            uint32_t y0 = i + 1 + nc + (uint32_t)(k * ny);
            for (uint32_t q = 0; q < nc + ny; q++) {
                uint32_t ob = b->out_ref[q];
                m->w[ob] += q < nc ? cw[q] : w[y0 + q - nc];
                const double *src = q < nc ? cwd + (size_t)q * L : wd + (size_t)(y0 + q - nc) * L;
                for (size_t l = 0; l < L; l++)
                    m->wd[(size_t)ob * L + l] += src[l];
            }
            body_reverse1(b, m, m->w);
            ad_second_w(b, m->vals, m->lanes, m->w, m->wd, L);
            for (uint32_t q = 0; q < nc; q++) {
                cw[q] = m->w[b->in_ref[q]];
                memcpy(cwd + (size_t)q * L, m->wd + (size_t)b->in_ref[q] * L, L * sizeof(double));
            }
            if (x.on) {
                if (accw)
                    xrefs_back(&x, w, 1, m->w, 1);
                xrefs_back(&x, wd, L, m->wd, L);
                break;
            }
            for (uint32_t kk = 0; kk < nx + np; kk++) {
                uint32_t ref = kk < nx ? xs[k * nx + kk] : ps[kk - nx];
                uint32_t sref = b->in_ref[nc + kk];
                if (accw)
                    w[ref] += m->w[sref];
                for (size_t l = 0; l < L; l++)
                    wd[(size_t)ref * L + l] += m->wd[(size_t)sref * L + l];
            }
            break;
        }
        case RV_TERMINATE:
            break;
        }
    }
    for (uint32_t q = 0; q < nc; q++) {
        if (accw)
            w[o[q]] += cw[q];
        for (size_t l = 0; l < L; l++)
            wd[(size_t)o[q] * L + l] += cwd[(size_t)q * L + l];
    }
}

void
ad_x_second(const tg_tape *t, uint32_t i, const double *v, const double *vd, double *w,
            double *wd, size_t L, int accw)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    if (r->kind != TG_OP_MAP && r->kind != TG_OP_SCAN)
        return;                         /* CALL: refused before the sweep (issue 13) */
    int active = 0;
    for (uint64_t k = 0; k < r->nout; k++)
        active |= w[i + 1 + k] != 0.0 || ad_any(wd + (size_t)(i + 1 + k) * L, L);
    if (!active)
        return;
    uint64_t budget = ctx_snaps();
    xsizes z = sizes(t, r, AD_X_SECOND, L, budget);
    xmem m;
    if (xmem_take(&m, &z, tape_body_of(t, r)->n)) {
        for (uint64_t k = 0; k < r->nops; k++)
            for (size_t l = 0; l < L; l++)
                wd[(size_t)tape_xops(t, r)[k] * L + l] = NAN;
        return;
    }
    if (r->kind == TG_OP_MAP)
        map_second(t, r, i, v, vd, w, wd, L, accw, &m);
    else
        scan_second(t, r, i, v, vd, w, wd, L, accw, &m,
                    snaps_for(r->count, (uint64_t)r->nc * (1 + L), budget));
    xmem_give(&m);
}
