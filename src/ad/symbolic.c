/* src/ad/symbolic.c -- the symbolic context of the rule language and the
 * symbolic sweeps (see symbolic.h).  A partial p meets a tangent or
 * adjoint w in scale(): exact zeros are dropped, 1 and -1 pass w through,
 * a finite nonzero constant multiplies plainly, select(c, 1, 0) routes w to
 * the taken branch only, and anything else becomes an explicit
 * absolute-zero product (AZMUL), because such a partial can be Inf or NaN
 * where w is 0 (docs/conventions.md rule 1). */
#include <math.h>

#include "ad/symbolic.h"
#include "ad/rules.h"

static tape_opnd
sym_rec(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c)
{
    return tape_rec_opnd(t, op, a, b, c);
}

#define K(c)            tape_lit((double)(c))
#define F1(OP, x)       sym_rec(t, TG_OP_##OP, (x), tape_lit(0), tape_lit(0))
#define F2(OP, x, y)    sym_rec(t, TG_OP_##OP, (x), (y), tape_lit(0))
#define F3(OP, x, y, z) sym_rec(t, TG_OP_##OP, (x), (y), (z))
#define A               tape_ref(ia)
#define B               tape_ref(ib)
#define C               tape_ref(ic)
#define Z               tape_ref(i)

static bool
opnd_value(const tg_tape *t, tape_opnd o, double *v)
{
    if (o.ref == TG_NIL) {
        *v = o.k;
        return true;
    }
    return tape_is_const(t, o.ref, v);
}

/* select(c, x, y) with x, y the constants kx, ky: its condition, else NIL */
static uint32_t
select_of(const tg_tape *t, tape_opnd p, double kx, double ky)
{
    double x, y;
    if (p.ref == TG_NIL || t->op[p.ref] != TG_OP_SELECT)
        return TG_NIL;
    if (!tape_is_const(t, t->b[p.ref], &x) || !tape_is_const(t, t->c[p.ref], &y))
        return TG_NIL;
    return (x == kx && y == ky) ? t->a[p.ref] : TG_NIL;
}

/* The product of partial p and derivative w, or TG_NIL for an exact 0. */
static uint32_t
scale(tg_tape *t, tape_opnd p, uint32_t w)
{
    double k, kw;
    if (t->status != TG_OK)
        return TG_NIL;
    if (opnd_value(t, p, &k)) {
        if (k == 0.0)
            return TG_NIL;
        if (k == 1.0)
            return w;
        if (k == -1.0)
            return tape_rec(t, TG_OP_NEG, tape_ref(w), tape_lit(0), tape_lit(0));
        if (isfinite(k))
            return tape_rec(t, TG_OP_MUL, p, tape_ref(w), tape_lit(0));
    }
    uint32_t cond;
    if ((cond = select_of(t, p, 1.0, 0.0)) != TG_NIL)
        return tape_rec(t, TG_OP_SELECT, tape_ref(cond), tape_ref(w), tape_lit(0.0));
    if ((cond = select_of(t, p, 0.0, 1.0)) != TG_NIL)
        return tape_rec(t, TG_OP_SELECT, tape_ref(cond), tape_lit(0.0), tape_ref(w));
    if (tape_is_const(t, w, &kw) && isfinite(kw) && kw != 0.0)
        return tape_rec(t, TG_OP_MUL, p, tape_ref(w), tape_lit(0));
    return tape_rec(t, TG_OP_AZMUL, p, tape_ref(w), tape_lit(0));
}

/* *acc += term, where TG_NIL stands for an exact zero. */
static void
accumulate(tg_tape *t, uint32_t *acc, uint32_t term)
{
    if (term == TG_NIL)
        return;
    *acc = *acc == TG_NIL ? term : tape_rec(t, TG_OP_ADD, tape_ref(*acc), tape_ref(term), tape_lit(0));
}

int
ad_sym_tangent(tg_tape *t, uint32_t n, uint32_t *tan)
{
    return ad_sym_tangent_live(t, n, tan, NULL);
}

int
ad_sym_tangent_live(tg_tape *t, uint32_t n, uint32_t *tan, const uint8_t *live)
{
    for (uint32_t i = 0; i < n && t->status == TG_OK; i++) {
        uint8_t op = t->op[i];
        if (op == TG_OP_INPUT)
            continue;
        if (live && !live[i]) {
            tan[i] = TG_NIL;
            continue;
        }
        uint32_t ia = t->a[i], ib = t->b[i], ic = t->c[i], sum = TG_NIL;
#define PUSH(k, p) if (tan[k] != TG_NIL) accumulate(t, &sum, scale(t, (p), tan[k]));
        switch ((tg_opcode)op) {
#define D1(OP, da)          case TG_OP_##OP: PUSH(ia, da) break;
#define D2(OP, da, db)      case TG_OP_##OP: PUSH(ia, da) PUSH(ib, db) break;
#define D3(OP, da, db, dc)  case TG_OP_##OP: PUSH(ia, da) PUSH(ib, db) PUSH(ic, dc) break;
#include "ad/rules.def"
#undef PUSH
        case TG_OP_CONST:
        case TG_OP_INPUT:
        case TG_OP_MAP:     /* extended: refused before (tape_refuse_x) */
        case TG_OP_SCAN:
        case TG_OP_CALL:
        case TG_OP_XOUT:
        case TG_OP_COUNT:
            break;
        }
        (void)ib; (void)ic;
        tan[i] = sum;
    }
    return t->status == TG_OK ? 0 : -1;
}

int
ad_sym_adjoint(tg_tape *t, uint32_t n, uint32_t *adj, const uint8_t *active)
{
    for (uint32_t i = n; i-- > 0 && t->status == TG_OK;) {
        uint32_t w = adj[i];
        if (w == TG_NIL)
            continue;
        uint32_t ia = t->a[i], ib = t->b[i], ic = t->c[i];
#define PULL(k, p) if (active[k]) accumulate(t, &adj[k], scale(t, (p), w));
        switch ((tg_opcode)t->op[i]) {
#define D1(OP, da)          case TG_OP_##OP: PULL(ia, da) break;
#define D2(OP, da, db)      case TG_OP_##OP: PULL(ia, da) PULL(ib, db) break;
#define D3(OP, da, db, dc)  case TG_OP_##OP: PULL(ia, da) PULL(ib, db) PULL(ic, dc) break;
#include "ad/rules.def"
#undef PULL
        case TG_OP_CONST:
        case TG_OP_INPUT:
        case TG_OP_MAP:     /* extended: refused before (tape_refuse_x) */
        case TG_OP_SCAN:
        case TG_OP_CALL:
        case TG_OP_XOUT:
        case TG_OP_COUNT:
            break;
        }
        (void)ib; (void)ic;
    }
    return t->status == TG_OK ? 0 : -1;
}

void
ad_activity(const tg_tape *t, uint32_t n, uint32_t lo, uint32_t hi, uint8_t *active)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t op = t->op[i];
        int ar = tape_op_arity[op];
        if (op == TG_OP_INPUT)
            active[i] = t->a[i] >= lo && t->a[i] < hi;
        else
            active[i] = (ar >= 1 && active[t->a[i]]) | (ar >= 2 && active[t->b[i]])
                      | (ar >= 3 && active[t->c[i]]);
    }
}
