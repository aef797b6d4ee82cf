/* src/tape/values.c -- recording at a point (CONTRACT.md, "Recording at a
 * point"; issue 13): inputs declared with values, the values every
 * instruction recorded from them carries (computed by record.c with the
 * interpreter's own semantics, tape_eval_op), and branch guards.
 *
 * Values live in a side array t->val allocated by the first valued input:
 * a tape recorded without values never pays for them.  They never decide
 * what is recorded (docs/conventions.md rule 3): folding and CSE look at
 * the instructions only.  The one thing values add to a tape is the
 * guards of tg_branch. */
#include <math.h>

#include "tape/alloc.h"
#include "tape/mathx.h"
#include "internal.h"

/* The value of new instruction i at the recording point: the interpreter's
 * semantics (tape_eval_op, as tg_eval and the folder), none when an
 * operand has none.  A CSE hit or a fold needs nothing: the instruction
 * it returns already has its value.  Out of line, so that the recorder's
 * hot path stays small for tapes without values. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
void
tape_val_set(tg_tape *t, uint32_t i)
{
    tg_opcode op = (tg_opcode)t->op[i];
    int ar = tape_op_arity[op];
    const double *v = t->val;
    double A = v[t->a[i]], B = ar >= 2 ? v[t->b[i]] : 0.0, C = ar >= 3 ? v[t->c[i]] : 0.0;
    if (!tape_has_val(A) || !tape_has_val(B) || !tape_has_val(C))
        t->val[i] = tape_noval();
    else
        t->val[i] = tape_eval_op(op, A, B, C);
}

int
tape_val_enable(tg_tape *t)
{
    if (t->val)
        return 0;
    size_t cap = t->cap ? t->cap : 1;
    t->val = mem_malloc(cap * sizeof *t->val);
    if (!t->val)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory for the values of tape \"%s\"", t->name);
    for (uint32_t i = 0; i < t->n; i++)     /* recorded before any value: none */
        t->val[i] = t->op[i] == TG_OP_CONST ? t->k[t->a[i]] : tape_noval();
    return 0;
}

int
tape_guards_rebuild(tg_tape *t)
{
    uint32_t ng = 0;
    for (uint32_t i = 0; i < t->n; i++)
        ng += t->op[i] == TG_OP_GUARD;
    if (ng > t->guardcap
        && tape_grow((void **)&t->guard, &t->guardcap, ng, sizeof *t->guard))
        return tape_fail(t, TG_ERR_NOMEM, "out of memory indexing the guards of \"%s\"",
                         t->name);
    t->nguard = 0;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->op[i] == TG_OP_GUARD)
            t->guard[t->nguard++] = i;
    return 0;
}

/* ------------------------------------------------------------ public API */

void
tg_input_vec_at(tg_tape *t, const char *name, size_t n, const double *x0, tg_var *x)
{
    if (t && t->status == TG_OK && !x0 && n > 0) {
        tape_fail(t, TG_ERR_ARG, "tg_input_vec_at: NULL values for %zu scalars", n);
        if (x && n < UINT32_MAX)
            for (size_t i = 0; i < n; i++)
                x[i] = (tg_var){ t, TG_NIL };
        return;
    }
    /* values first: the block then grows the value array with the columns */
    if (t && t->status == TG_OK && tape_val_enable(t) && x && n < UINT32_MAX) {
        for (size_t i = 0; i < n; i++)
            x[i] = (tg_var){ t, TG_NIL };
        return;
    }
    tg_input_vec(t, name, n, x);
    if (!t || t->status != TG_OK)
        return;
    uint32_t nin0 = t->nin - (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        t->val[t->in_ref[nin0 + i]] = x0[i];
}

tg_var
tg_input_at(tg_tape *t, const char *name, double x0)
{
    tg_var v = { t, TG_NIL };
    tg_input_vec_at(t, name, 1, &x0, &v);
    return v;
}

double
tg_value(tg_var v)
{
    if (v.id == TG_ZERO)
        return 0.0;
    const tg_tape *t = v.tape;
    if (!t || !t->val || v.id >= t->n || !tape_has_val(t->val[v.id]))
        return NAN;
    return t->val[v.id];
}

int
tg_branch(tg_var c)
{
    if (c.id == TG_ZERO)
        return 0;                       /* the tapeless zero: a constant, no guard */
    tg_tape *t = c.tape;
    if (!t || t->status != TG_OK)
        return 0;
    if (c.id >= t->n) {
        tape_fail(t, TG_ERR_ARG, "tg_branch: the condition is not a value of tape \"%s\"",
                  t->name);
        return 0;
    }
    if (!t->val || !tape_has_val(t->val[c.id])) {
        tape_fail(t, TG_ERR_ARG, "tg_branch: the condition (instruction %u) has no value: "
                  "declare the inputs it depends on with tg_input_at or tg_input_vec_at",
                  c.id);
        return 0;
    }
    int d = t->val[c.id] != 0.0;
    /* a constant condition folds away (nothing to check); else the guard */
    tape_rec(t, TG_OP_GUARD, tape_ref(c.id), tape_lit(d ? 1.0 : 0.0), tape_ref(0));
    return t->status == TG_OK ? d : 0;
}

size_t
tg_num_guards(const tg_tape *t)
{
    return t ? t->nguard : 0;
}

uint32_t
tg_guard_ref(const tg_tape *t, size_t k)
{
    return t && k < t->nguard ? t->guard[k] : TG_NIL;
}
