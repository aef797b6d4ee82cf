/* src/tape/opt_loops.c -- optimisation across the loop boundary (opt.h):
 * the dead outputs of a loop are removed, with what only they needed.
 *
 *   map:   y slots dead in every application leave the body; applications
 *          whose outputs are all dead leave the loop (count shrinks);
 *   scan:  y slots dead at every step leave the body; a carry leaves it when
 *          its final value is dead and no live output needs it at a later
 *          step (a fixed point over the body, at most nc + 1 rounds);
 *   both:  x and param slots that the pruned body no longer reads leave the
 *          body and the operand list.
 * The pruned body is the old one replayed with the kept blocks (an unread
 * input becomes the constant 0, which no live instruction reads) and then
 * compacted by tape_opt_dce, which prunes the body's own loops the same
 * way; the recursion is bounded by the nesting depth.  All of it is exact:
 * the kept instructions compute what they computed. */
#include "tape/alloc.h"
#include "tape/opt.h"

#define NONE64 UINT64_MAX

void
tape_xplan_free(tape_xplan *P)
{
    tg_tape_free(P->body);
    mem_free(P->opsel);
    mem_free(P->outmap);
    memset(P, 0, sizeof *P);
}

/* live[] of body B from the outputs out_live[B->nout]: backwards, a loop
 * inside B keeping every operand (tape_opt_dce prunes it afterwards). */
static void
body_live(const tg_tape *B, const uint8_t *out_live, uint8_t *live)
{
    memset(live, 0, B->n);
    for (uint32_t j = 0; j < B->nout; j++)
        if (out_live[j])
            live[B->out_ref[j]] = 1;
    for (uint32_t i = B->n; i-- > 0;) {
        if (!live[i])
            continue;
        if (tape_is_x(B->op[i])) {
            const tape_xrec *r = tape_xrec_of(B, i);
            for (uint64_t k = 0; k < r->nops; k++)
                live[tape_xops(B, r)[k]] = 1;
            continue;
        }
        int ar = tape_op_arity[B->op[i]];
        if (ar >= 1)
            live[B->a[i]] = 1;
        if (ar >= 2)
            live[B->b[i]] = 1;
        if (ar >= 3)
            live[B->c[i]] = 1;
    }
}

/* The body with only the slots in keep_in[] (inputs) and keep_out[]
 * (outputs), blocks named as B's; NULL when out of memory. */
static tg_tape *
pruned_body(const tg_tape *B, const uint8_t *keep_in, const uint8_t *keep_out)
{
    tg_tape *u = tg_tape_new_ex(B->name, B->flags);
    uint32_t *in = mem_malloc(((size_t)B->nin + 1) * sizeof *in);
    uint32_t *map = mem_malloc(((size_t)B->n + 1) * sizeof *map);
    tg_tape *v = NULL;
    if (!u || !in || !map)
        goto out;
    for (uint32_t b = 0; b < B->ninb; b++) {
        uint32_t n = 0;
        for (uint32_t j = 0; j < B->inb[b].size; j++)
            n += keep_in[B->inb[b].offset + j];
        tape_input_block(u, B->inb[b].name, n);
    }
    uint32_t zero = TG_NIL, k = 0;
    for (uint32_t j = 0; j < B->nin && u->status == TG_OK; j++) {
        if (keep_in[j])
            in[j] = u->in_ref[k++];
        else
            in[j] = zero != TG_NIL ? zero : (zero = tape_const(u, 0.0));
    }
    if (u->status != TG_OK || tape_replay(u, B, in, map))
        goto out;
    for (uint32_t b = 0; b < B->noutb; b++) {
        uint32_t n = 0;
        for (uint32_t j = 0; j < B->outb[b].size; j++)
            n += keep_out[B->outb[b].offset + j];
        uint32_t *slots = tape_output_block(u, B->outb[b].name, n);
        for (uint32_t j = 0, q = 0; slots && j < B->outb[b].size; j++)
            if (keep_out[B->outb[b].offset + j])
                slots[q++] = map[B->out_ref[B->outb[b].offset + j]];
    }
    if (u->status == TG_OK)
        v = tape_opt_dce(u, TG_OPT_NONE);
out:
    if (v && v->status != TG_OK) {
        tg_tape_free(v);
        v = NULL;
    }
    tg_tape_free(u);
    mem_free(in);
    mem_free(map);
    return v;
}

/* Which operands and outputs the pruned loop keeps, from live[] of t's
 * outputs; keep_in/keep_out over the body's slots.  Returns false when
 * nothing can be removed. */
static bool
plan_slots(const tg_tape *t, uint32_t i, const tape_xrec *r, const uint8_t *live,
           uint8_t *keep_in, uint8_t *keep_out, uint8_t *app, uint8_t *blive)
{
    const tg_tape *B = tape_body_of(t, r);
    bool scan = r->kind == TG_OP_SCAN;
    uint32_t nc = scan ? r->nc : 0;
    const uint8_t *xout = live + i + 1;
    memset(keep_out, 0, B->nout);
    for (uint32_t j = 0; j < nc; j++)
        keep_out[j] = xout[j];
    for (uint64_t a = 0; a < r->count; a++) {
        app[a] = scan;
        for (uint32_t j = 0; j < r->ny; j++)
            if (xout[nc + a * r->ny + j])
                keep_out[nc + j] = app[a] = 1;
    }
    for (;;) {              /* the carries needed, to a fixed point */
        body_live(B, keep_out, blive);
        bool grew = false;
        for (uint32_t j = 0; j < B->nin; j++)
            keep_in[j] = blive[B->in_ref[j]];
        for (uint32_t j = 0; j < nc; j++) {
            if (keep_in[j] && !keep_out[j])
                keep_out[j] = 1, grew = true;
            keep_in[j] = keep_out[j];   /* a carry is kept in and out */
        }
        if (!grew)
            break;
    }
    bool all = true;
    for (uint32_t j = 0; j < B->nin; j++)
        all &= keep_in[j] != 0;
    for (uint32_t j = 0; j < B->nout; j++)
        all &= keep_out[j] != 0;
    for (uint64_t a = 0; a < r->count; a++)
        all &= app[a] != 0;
    return !all;
}

/* The operand positions and output map of the pruned loop. */
static int
plan_lists(const tape_xrec *r, const uint8_t *keep_in, const uint8_t *keep_out,
           const uint8_t *app, tape_xplan *P)
{
    bool scan = r->kind == TG_OP_SCAN;
    uint32_t nc = scan ? r->nc : 0;
    P->nc = P->nx = P->np = P->ny = 0;
    for (uint32_t j = 0; j < nc; j++)
        P->nc += keep_in[j];
    for (uint32_t j = 0; j < r->nx; j++)
        P->nx += keep_in[nc + j];
    for (uint32_t j = 0; j < r->np; j++)
        P->np += keep_in[nc + r->nx + j];
    for (uint32_t j = 0; j < r->ny; j++)
        P->ny += keep_out[nc + j];
    P->count = 0;
    for (uint64_t a = 0; a < r->count; a++)
        P->count += app[a];
    P->nops = P->nc + P->count * P->nx + P->np;
    P->opsel = mem_malloc((size_t)(P->nops + 1) * sizeof *P->opsel);
    P->outmap = mem_malloc((size_t)(r->nout + 1) * sizeof *P->outmap);
    if (!P->opsel || !P->outmap)
        return -1;
    uint64_t w = 0;
    for (uint32_t j = 0; j < nc; j++)
        if (keep_in[j])
            P->opsel[w++] = j;
    for (uint64_t a = 0; a < r->count; a++)
        for (uint32_t j = 0; app[a] && j < r->nx; j++)
            if (keep_in[nc + j])
                P->opsel[w++] = nc + a * r->nx + j;
    for (uint32_t j = 0; j < r->np; j++)
        if (keep_in[nc + r->nx + j])
            P->opsel[w++] = nc + r->count * r->nx + j;
    uint64_t q = 0;
    for (uint32_t j = 0; j < nc; j++)
        P->outmap[j] = keep_out[j] ? q++ : NONE64;
    for (uint64_t a = 0, s = 0; a < r->count; a++) {
        for (uint32_t j = 0, m = 0; j < r->ny; j++) {
            uint64_t k = nc + a * r->ny + j;
            P->outmap[k] = app[a] && keep_out[nc + j] ? P->nc + s * P->ny + m++ : NONE64;
        }
        s += app[a];
    }
    return 0;
}

int
tape_xplan_make(const tg_tape *t, uint32_t i, uint8_t *live, tape_xplan *P)
{
    memset(P, 0, sizeof *P);
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *ops = tape_xops(t, r);
    int rc = 0;
    if (r->kind == TG_OP_MAP || r->kind == TG_OP_SCAN) {
        const tg_tape *B = tape_body_of(t, r);
        uint8_t *keep_in = mem_calloc((size_t)B->nin + 1, 1);
        uint8_t *keep_out = mem_calloc((size_t)B->nout + 1, 1);
        uint8_t *app = mem_calloc((size_t)r->count + 1, 1);
        uint8_t *blive = mem_calloc((size_t)B->n + 1, 1);
        rc = keep_in && keep_out && app && blive ? 0 : -1;
        if (rc == 0 && plan_slots(t, i, r, live, keep_in, keep_out, app, blive)) {
            rc = plan_lists(r, keep_in, keep_out, app, P);
            if (rc == 0 && !(P->body = pruned_body(B, keep_in, keep_out)))
                rc = -1;
            if (rc == 0)
                for (uint64_t k = 0; k < P->nops; k++)
                    live[ops[P->opsel[k]]] = 1;
        }
        mem_free(keep_in);
        mem_free(keep_out);
        mem_free(app);
        mem_free(blive);
        if (rc)
            tape_xplan_free(P);
        if (P->body)
            return 0;
    }
    /* kept as it is: every operand */
    for (uint64_t k = 0; k < r->nops; k++)
        live[ops[k]] = 1;
    return rc;
}

uint32_t
tape_xplan_apply(tg_tape *u, const tg_tape *t, uint32_t i, const tape_xplan *P,
                 uint32_t *map, tg_opt_level level)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    if (r->kind != TG_OP_MAP && r->kind != TG_OP_SCAN) {
        tape_fail(u, TG_ERR_UNSUPPORTED, "optimising a user-defined function call is not "
                  "supported yet");
        return TG_NIL;
    }
    const uint32_t *ops = tape_xops(t, r);
    uint64_t nops = P->body ? P->nops : r->nops;
    uint32_t *nops_ = mem_malloc((size_t)(nops + 1) * sizeof *nops_);
    if (!nops_) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory optimising a loop of \"%s\"", t->name);
        return TG_NIL;
    }
    for (uint64_t k = 0; k < nops; k++)
        nops_[k] = map[ops[P->body ? P->opsel[k] : k]];
    uint32_t j = P->body
        ? tape_opt_emit_loop(u, r->kind, P->body, P->count, P->nc, P->nx, P->np, P->ny, nops_,
                             nops, level)
        : tape_opt_emit_loop(u, r->kind, tape_body_of(t, r), r->count,
                             r->kind == TG_OP_SCAN ? r->nc : 0, r->nx, r->np, r->ny, nops_, nops,
                             level);
    mem_free(nops_);
    for (uint64_t k = 0; j != TG_NIL && k < r->nout; k++) {
        uint64_t q = P->body ? P->outmap[k] : k;
        if (q != NONE64)
            map[i + 1 + k] = (uint32_t)(j + 1 + q);
    }
    return j;
}

/* ------------------------------------------------------- merging loops */

/* b2 computes what b1 computes and more: the same instructions, constants,
 * loops and input blocks; each output block of b1 is a prefix of b2's. */
static bool
body_extends(const tg_tape *b2, const tg_tape *b1)
{
    if (b1->n != b2->n || b1->nk != b2->nk || b1->ninb != b2->ninb || b1->noutb != b2->noutb
        || b1->nxr != b2->nxr || b1->nxops != b2->nxops || b1->nbodies != b2->nbodies)
        return false;
    size_t n = b1->n;
    if (n && (memcmp(b1->op, b2->op, n) || memcmp(b1->a, b2->a, n * sizeof *b1->a)
              || memcmp(b1->b, b2->b, n * sizeof *b1->b) || memcmp(b1->c, b2->c, n * sizeof *b1->c)))
        return false;
    if (b1->nk && memcmp(b1->k, b2->k, b1->nk * sizeof *b1->k))
        return false;
    if (b1->nxops && memcmp(b1->xops, b2->xops, (size_t)b1->nxops * sizeof *b1->xops))
        return false;
    for (uint32_t r = 0; r < b1->nxr; r++) {
        const tape_xrec *p = &b1->xr[r], *q = &b2->xr[r];
        if (p->kind != q->kind || p->count != q->count || p->nc != q->nc || p->nx != q->nx
            || p->np != q->np || p->ny != q->ny || p->op0 != q->op0 || p->nops != q->nops
            || p->nout != q->nout || !tape_same(tape_body_of(b1, p), tape_body_of(b2, q)))
            return false;
    }
    for (uint32_t j = 0; j < b1->ninb; j++)
        if (b1->inb[j].size != b2->inb[j].size || strcmp(b1->inb[j].name, b2->inb[j].name))
            return false;
    for (uint32_t j = 0; j < b1->noutb; j++) {
        const tape_block *p = &b1->outb[j], *q = &b2->outb[j];
        if (p->size > q->size || strcmp(p->name, q->name))
            return false;
        for (uint32_t e = 0; e < p->size; e++)
            if (b1->out_ref[p->offset + e] != b2->out_ref[q->offset + e])
                return false;
    }
    return true;
}

/* Loop r2 (later) computes every output of loop r1 (earlier): the same
 * kind, trip count, operands and a body that extends r1's in its ys. */
static bool
loop_extends(const tg_tape *t, const tape_xrec *r2, const tape_xrec *r1)
{
    if (r1->kind != r2->kind || (r1->kind != TG_OP_MAP && r1->kind != TG_OP_SCAN)
        || r1->count != r2->count || r1->nc != r2->nc || r1->nx != r2->nx || r1->np != r2->np
        || r1->ny > r2->ny || r1->nops != r2->nops)
        return false;
    if (r1->nops && memcmp(tape_xops(t, r1), tape_xops(t, r2), (size_t)r1->nops * sizeof(uint32_t)))
        return false;
    return r1->body == r2->body || body_extends(tape_body_of(t, r2), tape_body_of(t, r1));
}

/* Output k of loop r1 as an output of r2 (loop_extends(r2, r1)). */
static uint64_t
merged_out(const tape_xrec *r1, const tape_xrec *r2, uint64_t k)
{
    uint64_t nc = r1->kind == TG_OP_SCAN ? r1->nc : 0;
    if (k < nc)
        return k;
    uint64_t step = (k - nc) / r1->ny, j = (k - nc) % r1->ny;
    return nc + step * r2->ny + j;
}

/* Copies instruction i of t verbatim onto u (operands through map[]). */
static uint32_t
copy_scalar(tg_tape *u, const tg_tape *t, uint32_t i, const uint32_t *map)
{
    uint8_t op = t->op[i];
    if (op == TG_OP_CONST)
        return tape_const(u, t->k[t->a[i]]);
    int ar = tape_op_arity[op];
    return tape_append(u, op, map[t->a[i]], ar >= 2 ? map[t->b[i]] : 0, ar >= 3 ? map[t->c[i]] : 0);
}

/* Appends loop r of t onto u (verbatim; operands through map[]). */
static uint32_t
copy_loop_verbatim(tg_tape *u, const tg_tape *t, const tape_xrec *r, const uint32_t *map)
{
    uint32_t *ops = mem_malloc((size_t)(r->nops + 1) * sizeof *ops);
    if (!ops) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory merging the loops of \"%s\"", t->name);
        return TG_NIL;
    }
    for (uint64_t k = 0; k < r->nops; k++)
        ops[k] = map[tape_xops(t, r)[k]];
    tape_xrec rec = *r;
    uint32_t bi = tape_add_body(u, tape_body_of(t, r)), j = TG_NIL;
    if (bi != UINT32_MAX) {
        rec.body = bi;
        j = tape_append_x(u, r->kind, &rec, ops);
    }
    mem_free(ops);
    return j;
}

/* into[r]: the last loop that absorbs loop r (chains followed), or
 * UINT32_MAX; the number of loops absorbed. */
static uint32_t
merge_targets(const tg_tape *t, uint32_t *into)
{
    uint32_t merged = 0;
    for (uint32_t r = 0; r < t->nxr; r++)
        into[r] = UINT32_MAX;
    for (uint32_t r2 = 1; r2 < t->nxr; r2++)
        for (uint32_t r1 = 0; r1 < r2; r1++)
            if (into[r1] == UINT32_MAX && loop_extends(t, &t->xr[r2], &t->xr[r1])) {
                into[r1] = r2;
                merged++;
            }
    for (uint32_t r = t->nxr; r-- > 0;)          /* chains: r -> into[r] -> ... */
        if (into[r] != UINT32_MAX && into[into[r]] != UINT32_MAX)
            into[r] = into[into[r]];
    return merged;
}

tg_tape *
tape_opt_merge_loops(const tg_tape *t)
{
    if (t->nxr < 2)
        return NULL;
    uint32_t *into = mem_malloc((size_t)t->nxr * sizeof *into);
    uint32_t *at = mem_malloc((size_t)t->nxr * sizeof *at);     /* emitted target -> u's loop */
    uint32_t *map = mem_malloc(((size_t)t->n + 1) * sizeof *map);
    tg_tape *u = NULL;
    if (!into || !at || !map || merge_targets(t, into) == 0)
        goto out;
    u = tg_tape_new_ex(t->name, TG_NO_FOLD | TG_NO_CSE);
    if (!u)
        goto out;
    for (uint32_t r = 0; r < t->nxr; r++)
        at[r] = TG_NIL;
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_input_block(u, t->inb[b].name, t->inb[b].size);
    for (uint32_t k = 0; k < t->nin && u->status == TG_OK; k++)
        map[t->in_ref[k]] = u->in_ref[k];
    for (uint32_t i = 0; i < t->n && u->status == TG_OK; i++) {
        uint8_t op = t->op[i];
        if (op == TG_OP_INPUT || op == TG_OP_XOUT)
            continue;
        if (!tape_is_x(op)) {
            map[i] = copy_scalar(u, t, i, map);
            continue;
        }
        /* a loop: emitted as its target (which has the same operands, all
         * earlier), once */
        uint32_t r = t->a[i], g = into[r] != UINT32_MAX ? into[r] : r;
        if (at[g] == TG_NIL)
            at[g] = copy_loop_verbatim(u, t, &t->xr[g], map);
        if (at[g] == TG_NIL)
            break;
        map[i] = at[g];
        for (uint64_t k = 0; k < t->xr[r].nout; k++)
            map[i + 1 + k] = at[g] + 1 + (uint32_t)merged_out(&t->xr[r], &t->xr[g], k);
    }
    for (uint32_t b = 0; b < t->noutb && u->status == TG_OK; b++) {
        uint32_t *slots = tape_output_block(u, t->outb[b].name, t->outb[b].size);
        for (uint32_t j = 0; slots && j < t->outb[b].size; j++)
            slots[j] = map[t->out_ref[t->outb[b].offset + j]];
    }
    u->flags = t->flags;
    u->limit = t->limit;
    if (u->status != TG_OK) {
        tg_tape_free(u);
        u = NULL;
    }
out:
    mem_free(into);
    mem_free(at);
    mem_free(map);
    return u;
}

/* ------------------------------------- rewrites across the loop boundary */

/* The loop being emitted: kind, body and sizes, operands already on u. */
typedef struct xloop {
    uint8_t kind;
    const tg_tape *B;
    uint64_t count;
    uint32_t nc, nx, np, ny;
    const uint32_t *ops;
} xloop;

enum { SLOT_CARRY, SLOT_X, SLOT_PARAM, SLOT_CONST, SLOT_DROP };

/* Scratch of one rewrite. */
typedef struct xrw {
    uint8_t *cls;           /* per body input: SLOT_* */
    uint32_t *pref;         /* SLOT_PARAM: the operand on u */
    double *kv;             /* SLOT_CONST: the value */
    uint8_t *inv, *need;    /* per body instruction: invariant, hoisted */
    uint32_t *hmap, *map, *in, *nops;
} xrw;

static void
xrw_free(xrw *w)
{
    mem_free(w->cls);
    mem_free(w->pref);
    mem_free(w->kv);
    mem_free(w->inv);
    mem_free(w->need);
    mem_free(w->hmap);
    mem_free(w->map);
    mem_free(w->in);
    mem_free(w->nops);
}

/* Body input k as (x slot j of every application): the operand of
 * application a. */
static uint32_t
x_opnd(const xloop *X, uint64_t a, uint32_t j)
{
    return X->ops[X->nc + a * X->nx + j];
}

/* Classifies the body's inputs: an x slot with the same operand in every
 * application becomes a param; a param whose operand is a constant of u
 * becomes that constant inside the body. */
static void
classify(const tg_tape *u, const xloop *X, xrw *w)
{
    for (uint32_t j = 0; j < X->nc; j++)
        w->cls[j] = SLOT_CARRY;
    for (uint32_t j = 0; j < X->nx; j++) {
        bool uniform = X->count >= 1;
        for (uint64_t a = 1; a < X->count && uniform; a++)
            uniform = x_opnd(X, a, j) == x_opnd(X, 0, j);
        w->cls[X->nc + j] = uniform ? SLOT_PARAM : SLOT_X;
        if (uniform)
            w->pref[X->nc + j] = x_opnd(X, 0, j);
    }
    for (uint32_t j = 0; j < X->np; j++) {
        w->cls[X->nc + X->nx + j] = SLOT_PARAM;
        w->pref[X->nc + X->nx + j] = X->ops[X->nc + X->count * X->nx + j];
    }
    for (uint32_t k = 0; k < X->nc + X->nx + X->np; k++)
        if (w->cls[k] == SLOT_PARAM && tape_is_const(u, w->pref[k], &w->kv[k]))
            w->cls[k] = SLOT_CONST;
}

/* inv[i]: body instruction i depends on params and constants only;
 * need[i]: i is invariant and read by variant code or an output (the
 * values to hoist).  Returns their number. */
static uint32_t
invariants(const xloop *X, xrw *w)
{
    const tg_tape *B = X->B;
    for (uint32_t i = 0; i < B->n; i++) {
        uint8_t op = B->op[i];
        if (op == TG_OP_INPUT) {
            w->inv[i] = w->cls[B->a[i]] == SLOT_PARAM || w->cls[B->a[i]] == SLOT_CONST;
        } else if (op == TG_OP_CONST) {
            w->inv[i] = 1;
        } else if (tape_is_x(op)) {
            const tape_xrec *r = tape_xrec_of(B, i);
            uint8_t all = 1;
            for (uint64_t k = 0; k < r->nops; k++)
                all &= w->inv[tape_xops(B, r)[k]];
            w->inv[i] = all;
        } else {
            int ar = tape_op_arity[op];
            w->inv[i] = (ar < 1 || w->inv[B->a[i]]) && (ar < 2 || w->inv[B->b[i]])
                      && (ar < 3 || w->inv[B->c[i]]);
        }
    }
    memset(w->need, 0, B->n);
    uint32_t nh = 0;
#define HOIST(r) do { uint32_t r_ = (r); uint8_t o_ = B->op[r_]; \
        if (w->inv[r_] && o_ != TG_OP_INPUT && o_ != TG_OP_CONST && !w->need[r_]) \
            w->need[r_] = 1, nh++; } while (0)
    for (uint32_t i = 0; i < B->n; i++) {
        uint8_t op = B->op[i];
        if (w->inv[i] || op == TG_OP_XOUT)
            continue;
        if (tape_is_x(op)) {
            const tape_xrec *r = tape_xrec_of(B, i);
            for (uint64_t k = 0; k < r->nops; k++)
                HOIST(tape_xops(B, r)[k]);
            continue;
        }
        int ar = tape_op_arity[op];
        if (ar >= 1)
            HOIST(B->a[i]);
        if (ar >= 2)
            HOIST(B->b[i]);
        if (ar >= 3)
            HOIST(B->c[i]);
    }
    for (uint32_t j = 0; j < B->nout; j++)
        HOIST(B->out_ref[j]);
#undef HOIST
    return nh;
}

/* Replays the instructions of B with keep[i] != 0 (all when keep is NULL)
 * onto v, inputs from in[], map[] filled (loops verbatim, their outputs
 * in order); overridden instructions (ovr[i] != TG_NIL) take that ref. */
static void
replay_some(tg_tape *v, const tg_tape *B, const uint8_t *keep, const uint32_t *in,
            const uint32_t *ovr, uint32_t *map)
{
    for (uint32_t i = 0; i < B->n && v->status == TG_OK; i++) {
        uint8_t op = B->op[i];
        if (ovr && ovr[i] != TG_NIL) {
            map[i] = ovr[i];
            continue;
        }
        if (op == TG_OP_XOUT || (keep && !keep[i]))
            continue;
        if (op == TG_OP_INPUT) {
            map[i] = in[B->a[i]];
        } else if (op == TG_OP_CONST) {
            map[i] = tape_const(v, B->k[B->a[i]]);
        } else if (tape_is_x(op)) {
            const tape_xrec *r = tape_xrec_of(B, i);
            uint32_t j = copy_loop_verbatim(v, B, r, map);
            for (uint64_t k = 0; j != TG_NIL && k < r->nout; k++)
                map[i + 1 + k] = j + 1 + (uint32_t)k;
        } else {
            int ar = tape_op_arity[op];
            map[i] = tape_rec(v, (tg_opcode)op, tape_ref(map[B->a[i]]),
                              tape_ref(ar >= 2 ? map[B->b[i]] : 0),
                              tape_ref(ar >= 3 ? map[B->c[i]] : 0));
        }
    }
}

/* need[] closed over operands within the invariant part (what the hoisted
 * values are computed from). */
static void
close_needed(const tg_tape *B, uint8_t *need)
{
    for (uint32_t i = B->n; i-- > 0;) {
        if (!need[i])
            continue;
        uint8_t op = B->op[i];
        if (op == TG_OP_XOUT) {
            need[B->a[i]] = 1;
        } else if (tape_is_x(op)) {
            const tape_xrec *r = tape_xrec_of(B, i);
            for (uint64_t k = 0; k < r->nops; k++)
                need[tape_xops(B, r)[k]] = 1;
        } else {
            int ar = tape_op_arity[op];
            if (ar >= 1)
                need[B->a[i]] = 1;
            if (ar >= 2)
                need[B->b[i]] = 1;
            if (ar >= 3)
                need[B->c[i]] = 1;
        }
    }
}

/* Drops the x and param slots the body *b no longer reads (after hoisting,
 * a param may be read only by what moved out): the body rebuilt, the
 * operands ops[*nops] compacted in place, X's sizes updated.  0, or -1 out
 * of memory. */
static int
drop_unread(tg_tape **b, xloop *X, uint32_t *ops, uint64_t *nops, bool *changed)
{
    tg_tape *B = *b;
    uint8_t *live = mem_calloc((size_t)B->n + 1, 1);
    uint8_t *keep_in = mem_calloc((size_t)B->nin + 1, 1);
    uint8_t *keep_out = mem_malloc((size_t)B->nout + 1);
    int rc = live && keep_in && keep_out ? 0 : -1;
    uint32_t nc = X->nc, nx = X->nx, nin = B->nin;
    bool all = true;
    if (rc == 0) {
        memset(keep_out, 1, B->nout);
        body_live(B, keep_out, live);
        for (uint32_t k = 0; k < nin; k++) {
            keep_in[k] = k < nc || live[B->in_ref[k]];
            all &= keep_in[k] != 0;
        }
    }
    if (rc == 0 && !all) {
        tg_tape *v = pruned_body(B, keep_in, keep_out);
        if (!v) {
            rc = -1;
        } else {
            uint64_t o = 0, r = nc;
            for (uint64_t a = 0; a < X->count; a++)
                for (uint32_t j = 0; j < nx; j++, r++)
                    if (keep_in[nc + j])
                        ops[nc + o++] = ops[r];
            uint32_t nx2 = 0, np2 = 0;
            for (uint32_t j = 0; j < nx; j++)
                nx2 += keep_in[nc + j];
            for (uint32_t j = 0; j < X->np; j++, r++)
                if (keep_in[nc + nx + j])
                    ops[nc + o++] = ops[r], np2++;
            *nops = nc + o;
            X->nx = nx2;
            X->np = np2;
            tg_tape_free(B);
            *b = v;
            *changed = true;
        }
    }
    mem_free(live);
    mem_free(keep_in);
    mem_free(keep_out);
    return rc;
}

/* One round of the rewrites on loop *X (body X->B optimised at level):
 * the new body (optimised) into *out, its operands into *ops_out (owned)
 * and X's sizes updated; *changed when something moved across the
 * boundary.  0, or -1 with u failed. */
static int
rewrite_once(tg_tape *u, xloop *X, tg_opt_level level, tg_tape **out, uint32_t **ops_out,
             uint64_t *nops_out, bool *changed)
{
    const tg_tape *B = X->B;
    uint8_t kind = X->kind;
    uint64_t count = X->count;
    uint32_t nc = X->nc, nx = X->nx, np = X->np;
    const uint32_t *ops = X->ops;
    uint32_t nin = nc + nx + np;
    int rc = -1;
    *out = NULL;
    *ops_out = NULL;
    xrw w;
    memset(&w, 0, sizeof w);
    w.cls = mem_calloc((size_t)nin + 1, 1);
    w.pref = mem_calloc((size_t)nin + 1, sizeof *w.pref);
    w.kv = mem_calloc((size_t)nin + 1, sizeof *w.kv);
    w.inv = mem_calloc((size_t)B->n + 1, 1);
    w.need = mem_calloc((size_t)B->n + 1, 1);
    w.hmap = mem_malloc(((size_t)B->n + 1) * sizeof *w.hmap);
    w.map = mem_malloc(((size_t)B->n + 1) * sizeof *w.map);
    w.in = mem_malloc(((size_t)nin + 1) * sizeof *w.in);
    tg_tape *v = tg_tape_new_ex(B->name, B->flags), *v2 = NULL;
    if (!w.cls || !w.pref || !w.kv || !w.inv || !w.need || !w.hmap || !w.map || !w.in || !v) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory optimising a loop of \"%s\"", u->name);
        goto out;
    }
    classify(u, X, &w);
    /* hoisting pays from two applications on */
    uint32_t nh = count >= 2 ? invariants(X, &w) : 0;
    for (uint32_t i = 0; i < B->n; i++)
        w.hmap[i] = TG_NIL;
    if (nh) {
        /* the hoisted values, computed once on u */
        uint8_t *keep = mem_malloc((size_t)B->n + 1);
        uint32_t *hin = mem_malloc(((size_t)nin + 1) * sizeof *hin);
        uint32_t *hm = mem_malloc(((size_t)B->n + 1) * sizeof *hm);
        if (keep && hin && hm) {
            memcpy(keep, w.need, B->n);
            close_needed(B, keep);
            for (uint32_t k = 0; k < nin; k++)
                hin[k] = w.cls[k] == SLOT_PARAM ? w.pref[k]
                       : w.cls[k] == SLOT_CONST ? tape_const(u, w.kv[k]) : 0;
            replay_some(u, B, keep, hin, NULL, hm);
            for (uint32_t i = 0; i < B->n; i++)
                if (w.need[i])
                    w.hmap[i] = hm[i];
        } else {
            tape_fail(u, TG_ERR_NOMEM, "out of memory optimising a loop of \"%s\"", u->name);
        }
        mem_free(keep);
        mem_free(hin);
        mem_free(hm);
        if (u->status != TG_OK)
            goto out;
    }
    /* the new body: carries, the varying xs, then the params (kept params,
     * uniform xs, hoisted values; the constant ones inside the body) */
    uint32_t ncx = 0, npp = 0;
    for (uint32_t k = 0; k < nin; k++)
        ncx += w.cls[k] == SLOT_X, npp += w.cls[k] == SLOT_PARAM;
    uint32_t nhp = 0;
    double kh;
    for (uint32_t i = 0; i < B->n; i++)
        nhp += w.hmap[i] != TG_NIL && !tape_is_const(u, w.hmap[i], &kh);
    if (kind == TG_OP_SCAN)
        tape_input_block(v, B->inb[0].name, nc);
    tape_input_block(v, B->inb[kind == TG_OP_SCAN ? 1 : 0].name, ncx);
    tape_input_block(v, B->inb[kind == TG_OP_SCAN ? 2 : 1].name, (size_t)npp + nhp);
    w.nops = mem_malloc((size_t)(nc + count * ncx + npp + nhp + 1) * sizeof *w.nops);
    if (!w.nops || v->status != TG_OK) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory optimising a loop of \"%s\"", u->name);
        goto out;
    }
    uint32_t qc = 0, qx = nc, qp = nc + ncx;
    uint64_t o = 0;
    for (uint32_t k = 0; k < nin; k++) {
        switch (w.cls[k]) {
        case SLOT_CARRY: w.in[k] = v->in_ref[qc++]; break;
        case SLOT_X:     w.in[k] = v->in_ref[qx++]; break;
        case SLOT_PARAM: w.in[k] = v->in_ref[qp++]; break;
        default:         w.in[k] = tape_const(v, w.kv[k]); break;
        }
    }
    for (uint32_t k = 0; k < nc; k++)
        w.nops[o++] = ops[k];
    for (uint64_t a = 0; a < count; a++)
        for (uint32_t k = 0; k < nx; k++)
            if (w.cls[nc + k] == SLOT_X)
                w.nops[o++] = x_opnd(X, a, k);
    for (uint32_t k = 0; k < nin; k++)
        if (w.cls[k] == SLOT_PARAM)
            w.nops[o++] = w.pref[k];
    for (uint32_t i = 0; i < B->n; i++) {
        if (w.hmap[i] == TG_NIL)
            continue;
        if (tape_is_const(u, w.hmap[i], &kh)) {
            w.hmap[i] = tape_const(v, kh);
        } else {
            w.nops[o++] = w.hmap[i];
            w.hmap[i] = v->in_ref[qp++];
        }
    }
    /* the variant part reads the hoisted values through their inputs */
    for (uint32_t i = 0; i < B->n; i++)
        w.inv[i] = !(w.inv[i] && nh) || B->op[i] == TG_OP_INPUT || B->op[i] == TG_OP_CONST;
    replay_some(v, B, w.inv, w.in, w.hmap, w.map);
    for (uint32_t b = 0; b < B->noutb && v->status == TG_OK; b++) {
        uint32_t *slots = tape_output_block(v, B->outb[b].name, B->outb[b].size);
        for (uint32_t e = 0; slots && e < B->outb[b].size; e++)
            slots[e] = w.map[B->out_ref[B->outb[b].offset + e]];
    }
    if (v->status == TG_OK)
        v2 = tape_opt_dce(v, TG_OPT_NONE);
    if (!v2 || v2->status != TG_OK || tg_tape_optimize(v2, level) != TG_OK) {
        tape_fail(u, v2 && v2->status != TG_OK ? v2->status : v->status != TG_OK ? v->status
                  : TG_ERR_NOMEM, "optimising a loop body of \"%s\": %s", u->name,
                  v2 && v2->status != TG_OK ? v2->err : v->err);
        goto out;
    }
    *changed = nh != 0 || npp + nhp != np || ncx != nx;
    for (uint32_t k = 0; k < nin; k++)
        *changed |= w.cls[k] == SLOT_CONST;
    X->nx = ncx;
    X->np = npp + nhp;
    if (drop_unread(&v2, X, w.nops, &o, changed))
        goto out;
    *out = v2;
    v2 = NULL;
    *ops_out = w.nops;
    w.nops = NULL;
    *nops_out = o;
    rc = 0;
out:
    tg_tape_free(v);
    tg_tape_free(v2);
    xrw_free(&w);
    return rc;
}

uint32_t
tape_opt_emit_loop(tg_tape *u, uint8_t kind, const tg_tape *B, uint64_t count, uint32_t nc,
                   uint32_t nx, uint32_t np, uint32_t ny, const uint32_t *ops, uint64_t nops,
                   tg_opt_level level)
{
    tape_xrec rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = kind;
    rec.count = count;
    rec.nout = (kind == TG_OP_SCAN ? nc : 0) + count * ny;
    rec.ny = ny;
    rec.nc = nc;
    rec.nx = nx;
    rec.np = np;
    rec.nops = nops;
    if (level == TG_OPT_NONE) {
        uint32_t bi = tape_add_body(u, B);
        if (bi == UINT32_MAX)
            return TG_NIL;
        rec.body = bi;
        return tape_append_x(u, kind, &rec, ops);
    }
    /* the body optimised, then the rewrites to a fixed point: each one can
     * let the body's optimisation expose more (an inner loop whose
     * varying operands were dead becomes invariant) */
    tg_tape *cur = tape_clone(B);
    uint32_t *cops = NULL, j = TG_NIL;
    if (!cur || tg_tape_optimize(cur, level) != TG_OK) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory optimising a loop body of \"%s\"", u->name);
        goto out;
    }
    xloop X = { kind, cur, count, nc, nx, np, ny, ops };
    for (int round = 0; round < 16; round++) {
        tg_tape *next;
        uint32_t *nops_;
        bool changed = false;
        if (rewrite_once(u, &X, level, &next, &nops_, &rec.nops, &changed))
            goto out;
        tg_tape_free(cur);
        mem_free(cops);
        X.B = cur = next;
        X.ops = cops = nops_;
        if (!changed)
            break;
    }
    uint32_t bi = tape_add_body(u, cur);
    if (bi == UINT32_MAX)
        goto out;
    rec.body = bi;
    rec.nx = X.nx;
    rec.np = X.np;
    j = tape_append_x(u, kind, &rec, cops);
out:
    tg_tape_free(cur);
    mem_free(cops);
    return j;
}
