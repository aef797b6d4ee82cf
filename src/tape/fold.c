/* src/tape/fold.c -- record-time folding.  Only rewrites that are exact for
 * every input, +-0, +-Inf and NaN included.  The folds, and the ones
 * refused on purpose, are listed once, in docs/conventions.md (rule 2):
 * fold_consts is its first entry (constant op constant, evaluated by
 * tape_eval_op, the interpreter's own semantics), fold_identity has one
 * case per identity.  Change the list and this file together.
 *
 * Every fold here needs a constant operand, except neg(neg x), and a
 * binary fold with one constant operand needs it to be +-0, 1 or NaN: the
 * recorder's fast paths (record.c, fast_op and plain_literal) rely on both
 * and skip this file for other operations.  A new fold outside these
 * rules must be excluded there too. */
#include <math.h>

#include "internal.h"
#include "mathx.h"

static bool
opnd_const(const tg_tape *t, tape_opnd o, double *v)
{
    if (o.ref == TG_NIL) {
        *v = o.k;
        return true;
    }
    return tape_is_const(t, o.ref, v);
}

static bool
is_k(const tg_tape *t, tape_opnd o, double k)
{
    double v;
    return opnd_const(t, o, &v) && tape_bits(v) == tape_bits(k);
}

static bool
same_opnd(tape_opnd x, tape_opnd y)
{
    return x.ref == y.ref && (x.ref != TG_NIL || tape_bits(x.k) == tape_bits(y.k));
}

static bool
fold_consts(const tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c,
            tape_opnd *out)
{
    int ar = tape_op_arity[op];
    double A = 0, B = 0, C = 0;
    if (!opnd_const(t, a, &A) || (ar >= 2 && !opnd_const(t, b, &B))
        || (ar >= 3 && !opnd_const(t, c, &C)))
        return false;
    *out = tape_lit(tape_eval_op(op, A, B, C));
    return true;
}

static bool
fold_identity(const tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c,
              tape_opnd *out)
{
    double v;
    switch (op) {
    case TG_OP_MUL:
        if (is_k(t, b, 1.0)) { *out = a; return true; }
        if (is_k(t, a, 1.0)) { *out = b; return true; }
        return false;
    case TG_OP_DIV:
        if (is_k(t, b, 1.0)) { *out = a; return true; }
        return false;
    case TG_OP_ADD:
        if (is_k(t, b, -0.0)) { *out = a; return true; }
        if (is_k(t, a, -0.0)) { *out = b; return true; }
        return false;
    case TG_OP_SUB:
        if (is_k(t, b, 0.0)) { *out = a; return true; }
        return false;
    case TG_OP_POWK:                                   /* pow(x, +-0) = 1, even for NaN */
        if (is_k(t, b, 1.0)) { *out = a; return true; }
        if (opnd_const(t, b, &v) && v == 0.0) { *out = tape_lit(1.0); return true; }
        return false;
    case TG_OP_NEG:
        if (a.ref != TG_NIL && t->op[a.ref] == TG_OP_NEG) {
            *out = tape_ref(t->a[a.ref]);
            return true;
        }
        return false;
    case TG_OP_SELECT:
        if (opnd_const(t, a, &v)) { *out = v != 0.0 ? b : c; return true; }
        if (same_opnd(b, c)) { *out = b; return true; }
        return false;
    case TG_OP_LT:                                     /* x < NaN etc.: always false */
    case TG_OP_LE:
    case TG_OP_GT:
    case TG_OP_GE:
        if ((opnd_const(t, a, &v) && isnan(v)) || (opnd_const(t, b, &v) && isnan(v))) {
            *out = tape_lit(0.0);
            return true;
        }
        return false;
    case TG_OP_AZMUL:
        if ((opnd_const(t, a, &v) && v == 0.0) || (opnd_const(t, b, &v) && v == 0.0)) {
            *out = tape_lit(0.0);
            return true;
        }
        return false;
    default:
        return false;
    }
}

bool
tape_fold(tg_tape *t, tg_opcode op, tape_opnd *a, tape_opnd *b, tape_opnd *c, tape_opnd *out)
{
    if (t->flags & TG_NO_FOLD)
        return false;
    return fold_consts(t, op, *a, *b, *c, out) || fold_identity(t, op, *a, *b, *c, out);
}
