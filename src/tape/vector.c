/* src/tape/vector.c -- vector helpers, recorded as ordinary instructions
 * (left-to-right accumulation, like the C loop a user would write).  The
 * derivative conventions then come for free: at the zero vector
 * norm2 = sqrt(sum x_i^2) has gradient 0 because the Inf partial of sqrt
 * meets exact zeros (absolute-zero products). */
#include <math.h>

#include "internal.h"

static const tg_var nil_var = { NULL, TG_NIL };

/* The tape of x[0..n), after checking that every element is on it. */
static tg_tape *
vec_tape(size_t n, const tg_var *x, const tg_var *y, const char *what)
{
    if (n == 0 || !x || !x[0].tape)
        return NULL;
    tg_tape *t = x[0].tape;
    for (size_t i = 0; i < n; i++) {
        if (x[i].tape != t || x[i].id >= t->n || (y && (y[i].tape != t || y[i].id >= t->n))) {
            tape_fail(t, TG_ERR_ARG, "%s: element %zu is not a value of tape \"%s\"", what, i, t->name);
            return NULL;
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

static uint32_t
rec1(tg_tape *t, tg_opcode op, uint32_t a)
{
    return tape_rec(t, op, tape_ref(a), tape_ref(0), tape_ref(0));
}

static uint32_t
rec2(tg_tape *t, tg_opcode op, uint32_t a, tape_opnd b)
{
    return tape_rec(t, op, tape_ref(a), b, tape_ref(0));
}

/* Folds acc = acc (+|max) term(x_i) over i, where term is op1 applied to
 * x_i (op1 == TG_OP_COUNT: x_i itself; TG_OP_MUL: x_i * y_i). */
static tg_var
reduce(size_t n, const tg_var *x, const tg_var *y, tg_opcode term, tg_opcode acc_op,
       double p, const char *what)
{
    tg_tape *t = vec_tape(n, x, y, what);
    if (!t)
        return x && n && x[0].tape ? wrap(x[0].tape, TG_NIL) : nil_var;
    uint32_t acc = TG_NIL;
    for (size_t i = 0; i < n && t->status == TG_OK; i++) {
        uint32_t v = x[i].id;
        if (term == TG_OP_MUL)
            v = rec2(t, TG_OP_MUL, v, tape_ref(y ? y[i].id : v));
        else if (term == TG_OP_ABS)
            v = rec1(t, TG_OP_ABS, v);
        else if (term == TG_OP_POWK)
            v = rec2(t, TG_OP_POWK, rec1(t, TG_OP_ABS, v), tape_lit(p));
        acc = acc == TG_NIL ? v : rec2(t, acc_op, acc, tape_ref(v));
    }
    return wrap(t, t->status == TG_OK ? acc : TG_NIL);
}

tg_var tg_sum(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_COUNT, TG_OP_ADD, 0, "tg_sum"); }

tg_var tg_dot(size_t n, const tg_var *x, const tg_var *y)
{
    if (!y)
        return nil_var;
    return reduce(n, x, y, TG_OP_MUL, TG_OP_ADD, 0, "tg_dot");
}

tg_var tg_norm2sq(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_MUL, TG_OP_ADD, 0, "tg_norm2sq"); }

tg_var tg_norm1(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_ABS, TG_OP_ADD, 0, "tg_norm1"); }

tg_var tg_norm_inf(size_t n, const tg_var *x)
{ return reduce(n, x, NULL, TG_OP_ABS, TG_OP_MAX, 0, "tg_norm_inf"); }

tg_var tg_norm_p_to_p(size_t n, const tg_var *x, double p)
{ return reduce(n, x, NULL, TG_OP_POWK, TG_OP_ADD, p, "tg_norm_p_to_p"); }

tg_var
tg_norm2(size_t n, const tg_var *x)
{
    tg_var s = tg_norm2sq(n, x);
    return s.id == TG_NIL ? s : wrap(s.tape, rec1(s.tape, TG_OP_SQRT, s.id));
}

tg_var
tg_norm_p(size_t n, const tg_var *x, double p)
{
    tg_var s = tg_norm_p_to_p(n, x, p);
    if (s.id == TG_NIL)
        return s;
    return wrap(s.tape, rec2(s.tape, TG_OP_POWK, s.id, tape_lit(1.0 / p)));
}
