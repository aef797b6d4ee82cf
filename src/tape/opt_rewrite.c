/* src/tape/opt_rewrite.c -- optimisation pass: the exact algebraic
 * rewrites of levels MEDIUM and HIGH (listed with tg_opt_level in
 * include/tapegen.h), applied to each instruction as opt_dce.c re-records
 * it.  Each holds for every double, NaN, Inf and signed zeros included. */
#include <math.h>

#include "tape/opt.h"

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

/* All rewrites that apply, to a fixed point (each one removes a negation
 * or a division, so this ends), so that a second pass finds nothing:
 * (-x) - (-y) -> (-x) + y -> y - x. */
tg_opcode
tape_opt_rewrite(tg_tape *u, tg_opcode op, tape_opnd *a, tape_opnd *b, tg_opt_level level)
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

