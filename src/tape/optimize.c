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
        tg_var *v = tg__calloc(b->size, sizeof *v);
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

static tg_status
pass(tg_tape *t, tg_opt_level level)
{
    tg_tape *u = rebuild(t, level);
    if (!u)
        return TG_ERR_NOMEM;
    tg_status s = u->status;
    if (s == TG_OK)
        take_content(t, u);
    else
        tg_tape_free(u);
    return s;
}

tg_status
tg_tape_optimize(tg_tape *t, tg_opt_level level)
{
    if (!t || (unsigned)level > TG_OPT_MAX)
        return tg__api_fail(TG_ERR_ARG, "tg_tape_optimize: %s", t ? "bad level" : "NULL tape");
    if (t->status != TG_OK)
        return tg__api_fail(t->status, "tg_tape_optimize: tape in the error state: %s", t->err);
    for (int round = 0; round < 64; round++) {
        uint32_t before = t->n;
        tg_status s = level == TG_OPT_NONE ? TG_OK
                    : pass(t, level == TG_OPT_MAX ? TG_OPT_HIGH : level);
        if (s == TG_OK)
            s = pass(t, TG_OPT_NONE);
        if (s != TG_OK)
            return tg__api_fail(s, "tg_tape_optimize: %s", tg_status_str(s));
        if (level != TG_OPT_MAX || t->n >= before)
            break;
    }
    return TG_OK;
}
