/* src/tape/record.c -- recording: the public operation entry points, and
 * tape_rec, the single path every instruction takes (used by the symbolic
 * sweeps too): canonicalise, fold, materialise literals, CSE, append. */
#include <math.h>
#include <stdlib.h>

#include "mathx.h"

#include "internal.h"

uint32_t
tape_const(tg_tape *t, double k)
{
    if (t->status != TG_OK)
        return TG_NIL;
    uint32_t r = (t->flags & TG_NO_CSE) ? TG_NIL : tape_cse_find(t, TG_OP_CONST, 0, 0, 0, k);
    if (r != TG_NIL)
        return r;
    if (tape_grow((void **)&t->k, &t->kcap, (uint64_t)t->nk + 1, sizeof *t->k)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory growing the constant pool of \"%s\"", t->name);
        return TG_NIL;
    }
    t->k[t->nk] = k;
    r = tape_append(t, TG_OP_CONST, t->nk, 0, 0);
    if (r != TG_NIL) {
        t->nk++;
        if (t->val)
            t->val[r] = k;
    }
    return r;
}

uint32_t
tape_var_ref(tg_tape *t, tg_var v)
{
    return v.id == TG_ZERO ? tape_const(t, 0.0) : v.id;
}

uint32_t
tape_input(tg_tape *t)
{
    if (tape_grow((void **)&t->in_ref, &t->nincap, (uint64_t)t->nin + 1, sizeof *t->in_ref)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory declaring an input of \"%s\"", t->name);
        return TG_NIL;
    }
    uint32_t r = tape_append(t, TG_OP_INPUT, t->nin, 0, 0);
    if (r != TG_NIL) {
        t->in_ref[t->nin++] = r;
        if (t->val)     /* tg_input_vec_at sets it */
            t->val[r] = tape_noval();
    }
    return r;
}

static uint32_t rec_new(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c);

static uint32_t
materialise(tg_tape *t, tape_opnd o)
{
    return o.ref != TG_NIL ? o.ref : tape_const(t, o.k);
}

/* pow with a constant exponent is its own op (never exp(c log x)); pow(x, 2)
 * is x*x exactly (mathx_powk), so it is recorded as the product. */
static tg_opcode
canon_pow(const tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd *b)
{
    double e;
    bool k = b->ref == TG_NIL ? (e = b->k, true) : tape_is_const(t, b->ref, &e);
    if (!k)
        return TG_OP_POW;
    if (e == 2.0 && !(t->flags & TG_NO_FOLD)) {
        *b = a;
        return TG_OP_MUL;
    }
    (void)op;
    return TG_OP_POWK;
}

tape_opnd
tape_rec_opnd(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c)
{
    if (t->status != TG_OK)
        return tape_ref(TG_NIL);
    if (op == TG_OP_POW || op == TG_OP_POWK)
        op = canon_pow(t, op, a, &b);
    tape_opnd out;
    if (tape_fold(t, op, &a, &b, &c, &out))
        return out;
    return tape_ref(rec_new(t, op, a, b, c));
}

uint32_t
tape_rec(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c)
{
    tape_opnd o = tape_rec_opnd(t, op, a, b, c);
    return t->status == TG_OK ? materialise(t, o) : TG_NIL;
}

/* rec_refs for a tape recording at a point (a new instruction computes its
 * value) or for a guard (appended through tape_append, which keeps the
 * guard index): out of line, so that the common path stays small. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static uint32_t
rec_refs_at(tg_tape *t, tg_opcode op, uint32_t ra, uint32_t rb, uint32_t rc)
{
    uint32_t n0 = t->n, r;
    if (op == TG_OP_GUARD && !(t->flags & TG_NO_CSE))
        r = tape_cse_find(t, (uint8_t)op, ra, rb, rc, 0.0);
    else
        r = TG_NIL;
    if (r == TG_NIL)
        r = (t->flags & TG_NO_CSE) || op == TG_OP_GUARD ? tape_append(t, (uint8_t)op, ra, rb, rc)
                                                        : tape_cse_append(t, (uint8_t)op, ra, rb, rc);
    if (t->val && t->n != n0)     /* a new instruction: its value */
        tape_val_set(t, r);
    return r;
}

/* An operation on instructions of t that no fold applies to: order, CSE,
 * append. */
static inline uint32_t
rec_refs(tg_tape *t, tg_opcode op, uint32_t ra, uint32_t rb, uint32_t rc)
{
    if ((tape_op_flags[op] & TG_OPF_COMMUTATIVE) && rb < ra) {
        uint32_t s = ra;
        ra = rb;
        rb = s;
    }
    if (TAPE_UNLIKELY(t->val != NULL || op == TG_OP_GUARD))
        return rec_refs_at(t, op, ra, rb, rc);
    if (t->flags & TG_NO_CSE)
        return tape_append(t, (uint8_t)op, ra, rb, rc);
    return tape_cse_append(t, (uint8_t)op, ra, rb, rc);
}

/* The unfolded case of tape_rec: materialise, then rec_refs. */
static uint32_t
rec_new(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c)
{
    int ar = tape_op_arity[op];
    uint32_t ra = materialise(t, a);
    uint32_t rb = ar >= 2 ? materialise(t, b) : 0;
    uint32_t rc = ar >= 3 ? materialise(t, c) : 0;
    if (t->status != TG_OK)
        return TG_NIL;
    return rec_refs(t, op, ra, rb, rc);
}

/* ------------------------------------------------------------ public API */

static tg_tape *
tape_of(const tg_operand *o, int n)
{
    for (int i = 0; i < n; i++)
        if (o[i].tape)
            return o[i].tape;
    return NULL;
}

/* o is the tapeless zero (on no tape, or named on t). */
static bool
is_zero_var(const tg_operand *o)
{
    return o->is_var && o->id == TG_ZERO;
}

/* An operation none of whose operands is on a tape: literals and tapeless
 * zeros.  Its value is computed; +0.0 is the tapeless zero again (so sums
 * and products of empty reductions stay usable), anything else has no tape
 * to live on: {NULL, TG_NIL}. */
static tg_var
record_tapeless(tg_opcode op, int n, const tg_operand *o)
{
    tg_var v = { NULL, TG_NIL };
    double k[3] = { 0.0, 0.0, 0.0 };
    if ((unsigned)op >= TG_OP_COUNT || tape_op_arity[op] != n
        || (tape_op_flags[op] & TG_OPF_EXTENDED))
        return v;
    for (int i = 0; i < n; i++) {
        if (o[i].is_var && !is_zero_var(&o[i]))
            return v;
        k[i] = o[i].is_var ? 0.0 : o[i].k;
    }
    double r = tape_eval_op(op, k[0], k[1], k[2]);
    if (r == 0.0 && !signbit(r))
        v.id = TG_ZERO;
    return v;
}

/* Checks the operands against t and converts them; 0 on success. */
static int
take_operands(tg_tape *t, tg_opcode op, const tg_operand *o, int n, tape_opnd *out)
{
    for (int i = 0; i < n; i++) {
        if (!o[i].is_var) {
            out[i] = tape_lit(o[i].k);
            continue;
        }
        if (is_zero_var(&o[i]) && (!o[i].tape || o[i].tape == t)) {
            out[i] = tape_lit(0.0);
            continue;
        }
        if (!o[i].tape)
            return tape_fail(t, TG_ERR_ARG, "operand %d of %s is not a value (the result of "
                             "a failed call, {NULL, TG_NIL})", i + 1, tg_op_name(op));
        if (o[i].tape != t)
            return tape_fail(t, TG_ERR_ARG, "operand %d of %s is a value of another tape",
                             i + 1, tg_op_name(op));
        if (o[i].id >= t->n || tape_is_x(t->op[o[i].id]))
            return tape_fail(t, TG_ERR_ARG, "operand %d of %s is not a value of tape \"%s\"",
                             i + 1, tg_op_name(op), t->name);
        out[i] = tape_ref(o[i].id);
    }
    for (int i = n; i < 3; i++)
        out[i] = tape_ref(0);
    return 0;
}

static tg_var
record(tg_opcode op, int n, const tg_operand *o)
{
    tg_var v = { tape_of(o, n), TG_NIL };
    tg_tape *t = v.tape;
    if (!t)
        return record_tapeless(op, n, o);
    if (t->status != TG_OK)
        return v;
    if ((unsigned)op >= TG_OP_COUNT || tape_op_arity[op] != n) {
        tape_fail(t, TG_ERR_ARG, "opcode %d does not take %d operands", (int)op, n);
        return v;
    }
    if (tape_op_flags[op] & TG_OPF_EXTENDED) {
        tape_fail(t, TG_ERR_ARG, "%s is an extended instruction: record it with tg_map, "
                  "tg_scan or a call, not tg_op%d", tg_op_name(op), n);
        return v;
    }
    tape_opnd x[3];
    if (take_operands(t, op, o, n, x))
        return v;
    v.id = tape_rec(t, op, x[0], x[1], x[2]);
    return v;
}

tg_var
tg_op1(tg_opcode op, tg_operand a)
{
    tg_operand o[1] = { a };
    return record(op, 1, o);
}

tg_var
tg_op2(tg_opcode op, tg_operand a, tg_operand b)
{
    tg_operand o[2] = { a, b };
    return record(op, 2, o);
}

static tg_operand
unpack(tg_tape *t, uint64_t i, double k)
{
    tg_operand o = { t, (uint32_t)i, (uint32_t)(i >> 32), k };
    return o;
}

/* The recorder's fast path, taken by most operations of a long recording:
 * operands that are instructions of one healthy tape, none of them a
 * constant.  Then no fold applies (every fold in fold.c needs a constant
 * operand, except neg(neg x), excluded here), pow needs no
 * canonicalisation (excluded too), and the operation goes straight to
 * ordering, CSE and append -- the same result as record(), without
 * converting operands twice.  false: take the general path. */
static inline bool
fast_opnd(const tg_tape *t, uint64_t i, uint32_t *r)
{
    uint32_t id = (uint32_t)i;
    if (!(i >> 32) || id >= t->n || t->op[id] == TG_OP_CONST || tape_is_x(t->op[id]))
        return false;
    *r = id;
    return true;
}

static inline bool
plain_literal(double k)
{
    return k != 0.0 && k != 1.0 && k == k;
}

/* op(r, k) (k_first: op(k, r)) with r a non-constant instruction and k a
 * plain literal. */
static uint32_t
rec_lit(tg_tape *t, tg_opcode op, uint32_t r, double k, bool k_first)
{
    uint32_t rk = tape_const(t, k);
    if (rk == TG_NIL)
        return TG_NIL;
    return k_first ? rec_refs(t, op, rk, r, 0) : rec_refs(t, op, r, rk, 0);
}

static inline bool
fast_op(tg_tape *t, tg_opcode op, int n)
{
    return t && t->status == TG_OK && (unsigned)op < TG_OP_COUNT && tape_op_arity[op] == n
           && op != TG_OP_POW && op != TG_OP_POWK && !(tape_op_flags[op] & TG_OPF_EXTENDED);
}

tg_var
tg_op1_unpacked(tg_opcode op, tg_tape *ta, uint64_t ia, double ka)
{
    uint32_t ra;
    if (fast_op(ta, op, 1) && fast_opnd(ta, ia, &ra)
        && !(op == TG_OP_NEG && ta->op[ra] == TG_OP_NEG)) {
        tg_var v = { ta, rec_refs(ta, op, ra, 0, 0) };
        return v;
    }
    tg_operand o[1] = { unpack(ta, ia, ka) };
    return record(op, 1, o);
}

tg_var
tg_op2_unpacked(tg_opcode op, tg_tape *ta, uint64_t ia, double ka,
                tg_tape *tb, uint64_t ib, double kb)
{
    uint32_t ra, rb;
    if (ta == tb && fast_op(ta, op, 2) && fast_opnd(ta, ia, &ra) && fast_opnd(ta, ib, &rb)) {
        tg_var v = { ta, rec_refs(ta, op, ra, rb, 0) };
        return v;
    }
    /* One operand a literal that no fold looks at (fold.c: only 0, 1 and
     * NaN are special): materialised, then the same fast path. */
    if (ta && !tb && !(ib >> 32) && plain_literal(kb) && fast_op(ta, op, 2)
        && fast_opnd(ta, ia, &ra)) {
        tg_var v = { ta, rec_lit(ta, op, ra, kb, false) };
        return v;
    }
    if (tb && !ta && !(ia >> 32) && plain_literal(ka) && fast_op(tb, op, 2)
        && fast_opnd(tb, ib, &rb)) {
        tg_var v = { tb, rec_lit(tb, op, rb, ka, true) };
        return v;
    }
    tg_operand o[2] = { unpack(ta, ia, ka), unpack(tb, ib, kb) };
    return record(op, 2, o);
}

tg_var
tg_op3(tg_opcode op, tg_operand a, tg_operand b, tg_operand c)
{
    tg_operand o[3] = { a, b, c };
    return record(op, 3, o);
}

tg_var
tg_const(tg_tape *t, double c)
{
    tg_var v = { t, TG_NIL };
    if (t)
        v.id = tape_const(t, c);
    return v;
}
