/* src/tape/optimize.c -- the optimisation pipeline over a finished tape:
 *
 *   rebuild(level)   replay the live instructions through the recorder
 *                    (fold, CSE, and the level's exact rewrites)
 *   rebuild(NONE)    dead-code elimination and compaction
 *
 * Each pass is one linear loop into a fresh tape, so a failure leaves t
 * untouched; the result is swapped into t at the end.  Inputs are declared
 * first in the new tape, so the form is canonical and optimising twice
 * gives the same tape as optimising once. */
#include <math.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

static bool
is_neg(const tg_tape *u, uint32_t r, uint32_t *x)
{
    if (r == TG_NIL || u->op[r] != TG_OP_NEG)    /* TG_NIL: a literal */
        return false;
    *x = u->a[r];
    return true;
}

/* c = +-2^k with 1/c exactly representable and normal */
static bool
exact_reciprocal(double c, double *inv)
{
    int e;
    if (!isfinite(c) || c == 0.0 || fabs(frexp(c, &e)) != 0.5)
        return false;
    *inv = 1.0 / c;
    return isnormal(*inv) && *inv * c == 1.0;
}

/* One exact rewrite of level >= MEDIUM on an instruction about to be
 * recorded on u (operands already mapped); returns op unchanged if none
 * applies. */
static tg_opcode
rewrite_once(tg_tape *u, tg_opcode op, tape_opnd *a, tape_opnd *b, tg_opt_level level)
{
    uint32_t x, y;
    double k, inv;
    if (level < TG_OPT_MEDIUM)
        return op;
    switch (op) {
    case TG_OP_ADD:                                 /* x + (-y) = x - y */
        if (is_neg(u, b->ref, &y)) {
            *b = tape_ref(y);
            return TG_OP_SUB;
        }
        if (is_neg(u, a->ref, &x)) {                /* (-x) + y = y - x */
            *a = *b;
            *b = tape_ref(x);
            return TG_OP_SUB;
        }
        return op;
    case TG_OP_SUB:                                 /* x - (-y) = x + y */
        if (is_neg(u, b->ref, &y)) {
            *b = tape_ref(y);
            return TG_OP_ADD;
        }
        return op;
    case TG_OP_MUL:
    case TG_OP_DIV:                                 /* (-x) op (-y) = x op y */
        if (is_neg(u, a->ref, &x) && is_neg(u, b->ref, &y)) {
            *a = tape_ref(x);
            *b = tape_ref(y);
        }
        if (op == TG_OP_DIV && level >= TG_OPT_HIGH && b->ref != TG_NIL && tape_is_const(u, b->ref, &k)
            && exact_reciprocal(k, &inv)) {
            *b = tape_lit(inv);                     /* x / 2^k = x * 2^-k */
            return TG_OP_MUL;
        }
        return op;
    default:
        return op;
    }
}

static void
mark_live(const tg_tape *t, uint8_t *live)
{
    memset(live, 0, t->n);
    for (uint32_t j = 0; j < t->nout; j++)
        live[t->out_ref[j]] = 1;
    for (uint32_t i = t->n; i-- > 0;) {
        if (!live[i])
            continue;
        int ar = tape_op_arity[t->op[i]];
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < ar; j++)
            live[opnd[j]] = 1;
    }
}

/* All rewrites that apply, to a fixed point (each one removes a negation
 * or a division, so this ends), so that a second pass finds nothing:
 * (-x) - (-y) -> (-x) + y -> y - x. */
static tg_opcode
rewrite(tg_tape *u, tg_opcode op, tape_opnd *a, tape_opnd *b, tg_opt_level level)
{
    for (;;) {
        tape_opnd a0 = *a, b0 = *b;
        tg_opcode op1 = rewrite_once(u, op, a, b, level);
        if (op1 == op && a0.ref == a->ref && b0.ref == b->ref
            && tape_bits(a0.k) == tape_bits(a->k) && tape_bits(b0.k) == tape_bits(b->k))
            return op;
        op = op1;
    }
}

/* One instruction of t onto u: verbatim (NONE) or through the recorder. */
static uint32_t
copy_inst(tg_tape *u, const tg_tape *t, uint32_t i, const uint32_t *map, tg_opt_level level)
{
    tg_opcode op = (tg_opcode)t->op[i];
    int ar = tape_op_arity[op];
    if (op == TG_OP_CONST)
        return tape_const(u, t->k[t->a[i]]);
    uint32_t a = map[t->a[i]], b = ar >= 2 ? map[t->b[i]] : 0, c = ar >= 3 ? map[t->c[i]] : 0;
    if (level == TG_OPT_NONE)
        return tape_append(u, (uint8_t)op, a, b, c);
    tape_opnd oa = tape_ref(a), ob = tape_ref(b);
    op = rewrite(u, op, &oa, &ob, level);
    return tape_rec(u, op, oa, ob, tape_ref(c));
}

static void
copy_blocks(tg_tape *u, const tg_tape *t, bool input, const uint32_t *map)
{
    uint32_t nb = input ? t->ninb : t->noutb;
    for (uint32_t bi = 0; bi < nb && u->status == TG_OK; bi++) {
        const tape_block *b = input ? &t->inb[bi] : &t->outb[bi];
        tg_var *v = tg__calloc(b->size ? b->size : 1, sizeof *v);   /* empty blocks too */
        if (!v) {
            tape_fail(u, TG_ERR_NOMEM, "out of memory optimising \"%s\"", t->name);
            return;
        }
        if (input) {
            tg_input_vec(u, b->name, b->size, v);
        } else {
            for (uint32_t j = 0; j < b->size; j++)
                v[j] = (tg_var){ u, map[t->out_ref[b->offset + j]] };
            tg_output_vec(u, b->name, b->size, v);
        }
        tg__free(v);
    }
}

/* The live part of t, rebuilt at `level` into a new tape (NULL: no memory). */
static tg_tape *
rebuild(const tg_tape *t, tg_opt_level level)
{
    /* NONE copies verbatim: no folding or CSE may change what it keeps */
    tg_tape *u = tg_tape_new_ex(t->name, level == TG_OPT_NONE ? TG_NO_FOLD | TG_NO_CSE : 0);
    uint8_t *live = tg__malloc((size_t)t->n + 1);
    uint32_t *map = tg__malloc(((size_t)t->n + 1) * sizeof *map);
    if (!u || !live || !map) {
        tg_tape_free(u);
        u = NULL;
        goto out;
    }
    mark_live(t, live);
    copy_blocks(u, t, true, NULL);
    for (uint32_t k = 0; k < t->nin && u->status == TG_OK; k++)
        map[t->in_ref[k]] = u->in_ref[k];
    for (uint32_t i = 0; i < t->n && u->status == TG_OK; i++)
        if (live[i] && t->op[i] != TG_OP_INPUT)
            map[i] = copy_inst(u, t, i, map, level);
    copy_blocks(u, t, false, map);
    u->flags = t->flags;
    u->limit = t->limit;
    if (u->status == TG_OK && !(u->flags & TG_NO_CSE))
        tape_cse_rebuild(u);    /* so that recording can go on sharing */
out:
    tg__free(live);
    tg__free(map);
    return u;
}

static void
swap_bytes(void *x, void *y, size_t n)
{
    unsigned char *p = x, *q = y;
    for (size_t i = 0; i < n; i++) {
        unsigned char s = p[i];
        p[i] = q[i];
        q[i] = s;
    }
}

/* Moves u's content into t (t keeps its name, status and workspace pool);
 * frees u. */
static void
take_content(tg_tape *t, tg_tape *u)
{
#define SWAP(f) swap_bytes(&t->f, &u->f, sizeof t->f)
    SWAP(n); SWAP(cap); SWAP(a); SWAP(b); SWAP(c); SWAP(op);
    SWAP(k); SWAP(nk); SWAP(kcap);
    SWAP(inb); SWAP(outb); SWAP(ninb); SWAP(inbcap); SWAP(noutb); SWAP(outbcap);
    SWAP(in_ref); SWAP(nin); SWAP(nincap); SWAP(out_ref); SWAP(nout); SWAP(noutcap);
    SWAP(ht); SWAP(hcap); SWAP(hcount);
#undef SWAP
    tg_tape_free(u);
}

/* ------------------------------------------------------------ scheduling
 * Sweeps are bound by latency: an instruction usually consumes the one
 * recorded just before it, so each step waits for a store to be forwarded
 * to a load (and, in the reverse sweep, for a read-modify-write).  Within
 * windows of SCHED_WINDOW instructions we order by depth in the DAG (stable
 * by index), so consecutive instructions are mostly independent and the
 * CPU overlaps them.  Windows keep operands close by (cache locality).  A
 * permutation within windows: idempotent, deterministic, linear-ish. */
#define SCHED_WINDOW 256

typedef struct sched_key {
    uint32_t level, index;
} sched_key;

static int
sched_cmp(const void *x, const void *y)
{
    const sched_key *p = x, *q = y;
    if (p->level != q->level)
        return p->level < q->level ? -1 : 1;
    return p->index < q->index ? -1 : p->index > q->index;
}

static tg_status
schedule(tg_tape *t)
{
    uint32_t n = t->n;
    uint32_t *level = tg__malloc(((size_t)n + 1) * sizeof *level);
    uint32_t *newid = tg__malloc(((size_t)n + 1) * sizeof *newid);
    sched_key *key = tg__malloc(((size_t)n + 1) * sizeof *key);
    tg_tape *u = tg_tape_new_ex(t->name, TG_NO_FOLD | TG_NO_CSE);
    tg_status s = (level && newid && key && u) ? TG_OK : TG_ERR_NOMEM;
    for (uint32_t i = 0; i < n && s == TG_OK; i++) {
        uint32_t lv = 0;
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[t->op[i]]; j++)
            if (level[opnd[j]] + 1 > lv)
                lv = level[opnd[j]] + 1;
        level[i] = lv;
        key[i] = (sched_key){ lv, i };
    }
    for (uint32_t w0 = 0; w0 < n && s == TG_OK; w0 += SCHED_WINDOW) {
        uint32_t len = n - w0 < SCHED_WINDOW ? n - w0 : SCHED_WINDOW;
        qsort(key + w0, len, sizeof *key, sched_cmp);
        for (uint32_t j = w0; j < w0 + len; j++)
            newid[key[j].index] = j;
    }
    /* the permuted tape, built in u, then its columns moved into t */
    if (s == TG_OK && tape_reserve(u, n ? n : 1))
        s = u->status;
    for (uint32_t j = 0; j < n && s == TG_OK; j++) {
        uint32_t i = key[j].index;
        uint8_t op = t->op[i];
        bool leaf = op == TG_OP_CONST || op == TG_OP_INPUT;
        int ar = tape_op_arity[op];
        u->op[j] = op;
        u->a[j] = leaf ? t->a[i] : newid[t->a[i]];
        u->b[j] = ar >= 2 ? newid[t->b[i]] : 0;
        u->c[j] = ar >= 3 ? newid[t->c[i]] : 0;
        if ((tape_op_flags[op] & TG_F_COMM) && u->b[j] < u->a[j]) {   /* keep CSE's order */
            uint32_t x = u->a[j];
            u->a[j] = u->b[j];
            u->b[j] = x;
        }
    }
    if (s == TG_OK) {
        u->n = n;
        for (uint32_t k = 0; k < t->nin; k++)
            t->in_ref[k] = newid[t->in_ref[k]];
        for (uint32_t k = 0; k < t->nout; k++)
            t->out_ref[k] = newid[t->out_ref[k]];
        swap_bytes(&t->op, &u->op, sizeof t->op);
        swap_bytes(&t->a, &u->a, sizeof t->a);
        swap_bytes(&t->b, &u->b, sizeof t->b);
        swap_bytes(&t->c, &u->c, sizeof t->c);
        swap_bytes(&t->cap, &u->cap, sizeof t->cap);
        if (!(t->flags & TG_NO_CSE) && tape_cse_rebuild(t))
            s = TG_ERR_NOMEM;
    }
    tg_tape_free(u);
    tg__free(level);
    tg__free(newid);
    tg__free(key);
    return s;
}

/* One round on a tape the caller owns: rebuild at `level`, compact, and
 * schedule.  Returns a new tape (or NULL: out of memory). */
static tg_tape *
round_of(const tg_tape *t, tg_opt_level level)
{
    tg_tape *u = level == TG_OPT_NONE ? NULL : rebuild(t, level);
    if (level != TG_OPT_NONE && (!u || u->status != TG_OK)) {
        tg_tape_free(u);
        return NULL;
    }
    tg_tape *v = rebuild(u ? u : t, TG_OPT_NONE);
    tg_tape_free(u);
    if (v && v->status == TG_OK && level != TG_OPT_NONE && schedule(v) != TG_OK)
        tape_fail(v, TG_ERR_NOMEM, "out of memory scheduling \"%s\"", t->name);
    if (v && v->status != TG_OK) {
        tg_tape_free(v);
        return NULL;
    }
    return v;
}

tg_status
tg_tape_optimize(tg_tape *t, tg_opt_level level)
{
    if (!t || (unsigned)level > TG_OPT_MAX)
        return tg__api_fail(TG_ERR_ARG, "tg_tape_optimize: %s", t ? "bad level" : "NULL tape");
    if (t->status != TG_OK)
        return tg__api_fail(t->status, "tg_tape_optimize: tape in the error state: %s", t->err);
    /* work on copies; t changes only at the end, so a failure leaves it as it was */
    tg_tape *cur = NULL;
    for (int round = 0; round < 64; round++) {
        const tg_tape *src = cur ? cur : t;
        tg_tape *next = round_of(src, level == TG_OPT_MAX ? TG_OPT_HIGH : level);
        if (!next) {
            tg_tape_free(cur);
            return tg__api_fail(TG_ERR_NOMEM, "tg_tape_optimize: out of memory");
        }
        bool shrank = next->n < src->n;
        tg_tape_free(cur);
        cur = next;
        if (level != TG_OPT_MAX || !shrank)
            break;
    }
    take_content(t, cur);
    return TG_OK;
}
