/* src/tape/vector.c -- vector helpers, recorded as ordinary instructions
 * (left-to-right accumulation, like the C loop a user would write).  The
 * derivative conventions then come for free: at the zero vector
 * norm2 = sqrt(sum x_i^2) has gradient 0 because the Inf partial of sqrt
 * meets exact zeros (absolute-zero products). */
#include <math.h>

#include "mathx.h"
#include "internal.h"

static const tg_var nil_var = { NULL, TG_NIL };
static const tg_var zero_var = { NULL, TG_ZERO };

/* The tape of x[0..n) (and y[0..n)): the one their values are on, NULL if
 * every element is the tapeless zero.  *bad is set (and the tape failed)
 * when an element is not a value of that tape. */
static tg_tape *
vec_tape(size_t n, const tg_var *x, const tg_var *y, const char *what, bool *bad)
{
    tg_tape *t = NULL;
    *bad = false;
    for (size_t i = 0; i < n && !t; i++)
        t = x[i].tape ? x[i].tape : (y && y[i].tape) ? y[i].tape : NULL;
    for (size_t i = 0; i < n; i++) {
        bool ok = t ? tape_var_ok(t, x[i]) && (!y || tape_var_ok(t, y[i]))
                    : x[i].id == TG_ZERO && (!y || y[i].id == TG_ZERO);
        if (!ok) {
            if (t)
                tape_fail(t, TG_ERR_ARG, "%s: element %zu is not a value of tape \"%s\"", what,
                          i, t->name);
            *bad = true;
            return t;
        }
    }
    return t;
}

static tg_var
wrap(tg_tape *t, uint32_t r)
{
    tg_var v = { t, r };
    return v;
}

/* An element as an operand: the tapeless zero is the literal 0. */
static tape_opnd
elem(tg_var v)
{
    return v.id == TG_ZERO ? tape_lit(0.0) : tape_ref(v.id);
}

/* op on t, or on literals when there is no tape (then computed here). */
static tape_opnd
vop(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b)
{
    if (t)
        return tape_rec_opnd(t, op, a, b, tape_ref(0));
    return tape_lit(tape_eval_op(op, a.k, b.k, 0.0));
}

/* The result r as a tg_var: a literal becomes a constant of t, or with no
 * tape the tapeless zero if it is +0.0 (else there is nowhere to put it). */
static tg_var
result(tg_tape *t, tape_opnd r)
{
    if (t) {
        uint32_t id = t->status == TG_OK ? (r.ref != TG_NIL ? r.ref : tape_const(t, r.k)) : TG_NIL;
        return wrap(t, t->status == TG_OK ? id : TG_NIL);
    }
    return r.k == 0.0 && !signbit(r.k) ? zero_var : nil_var;
}

/* Folds acc = acc (+|max) term(x_i) over i, where term is op1 applied to
 * x_i (op1 == TG_OP_COUNT: x_i itself; TG_OP_MUL: x_i * y_i), then applies
 * `post` (TG_OP_COUNT: none) with literal second operand q.  n == 0 gives
 * the constant 0, whatever the reduction (issue 9: an empty block needs no
 * special case in the caller). */
static tg_var
reduce(size_t n, const tg_var *x, const tg_var *y, tg_opcode term, tg_opcode acc_op,
       double p, tg_opcode post, double q, const char *what)
{
    if (n == 0)
        return zero_var;
    if (!x)
        return nil_var;
    bool bad;
    tg_tape *t = vec_tape(n, x, y, what, &bad);
    if (bad || (t && t->status != TG_OK))
        return wrap(t, TG_NIL);
    tape_opnd acc = tape_ref(TG_NIL);
    bool first = true;
    for (size_t i = 0; i < n && (!t || t->status == TG_OK); i++) {
        tape_opnd v = elem(x[i]);
        if (term == TG_OP_MUL)
            v = vop(t, TG_OP_MUL, v, y ? elem(y[i]) : v);
        else if (term == TG_OP_ABS)
            v = vop(t, TG_OP_ABS, v, tape_ref(0));
        else if (term == TG_OP_POWK)
            v = vop(t, TG_OP_POWK, vop(t, TG_OP_ABS, v, tape_ref(0)), tape_lit(p));
        acc = first ? v : vop(t, acc_op, acc, v);
        first = false;
    }
    if (post != TG_OP_COUNT)
        acc = vop(t, post, acc, post == TG_OP_SQRT ? tape_ref(0) : tape_lit(q));
    return result(t, acc);
}

tg_var tg_sum(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_COUNT, TG_OP_ADD, 0, TG_OP_COUNT, 0, "tg_sum"); }

tg_var tg_dot(size_t n, const tg_var *x, const tg_var *y)
{
    if (n && !y)
        return nil_var;
    return reduce(n, x, y, TG_OP_MUL, TG_OP_ADD, 0, TG_OP_COUNT, 0, "tg_dot");
}

tg_var tg_norm2sq(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_MUL, TG_OP_ADD, 0, TG_OP_COUNT, 0, "tg_norm2sq"); }

tg_var tg_norm1(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_ABS, TG_OP_ADD, 0, TG_OP_COUNT, 0, "tg_norm1"); }

tg_var tg_norm_inf(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_ABS, TG_OP_MAX, 0, TG_OP_COUNT, 0, "tg_norm_inf"); }

tg_var tg_norm_p_to_p(size_t n, const tg_var *x, double p)
{ return reduce(n, x, NULL, TG_OP_POWK, TG_OP_ADD, p, TG_OP_COUNT, 0, "tg_norm_p_to_p"); }

tg_var tg_norm2(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_MUL, TG_OP_ADD, 0, TG_OP_SQRT, 0, "tg_norm2"); }

tg_var tg_norm_p(size_t n, const tg_var *x, double p)
{ return reduce(n, x, NULL, TG_OP_POWK, TG_OP_ADD, p, TG_OP_POWK, 1.0 / p, "tg_norm_p"); }
