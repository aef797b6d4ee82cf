/* src/ad/call_sym.c -- the symbolic sweeps (symbolic.h) at a CALL: the
 * derivative of a user function is a CALL of the function the user named
 * for it (tg_func_def.jvp_func / vjp_func), recorded on the same tape.
 * Without one the derivative tape cannot be built: TG_ERR_UNSUPPORTED. */
#include "ad/call_sym.h"
#include "tape/alloc.h"
#include "tape/funcs.h"

/* The derivative function of call i (jvp or vjp), or TAPE_FUNC_NONE with t
 * failed. */
static uint32_t
deriv_fn(tg_tape *t, const tape_func *f, int vjp)
{
    uint32_t g = vjp ? f->vjp_fn : f->jvp_fn;
    if (g == TAPE_FUNC_NONE)
        tape_fail(t, TG_ERR_UNSUPPORTED, "derivative tape \"%s\": user function '%s' (%u -> %u) "
                  "has no %s (name a function computing its %s in tg_func_def.%s)", t->name,
                  f->name, f->n, f->k, vjp ? "vjp_func" : "jvp_func", vjp ? "VJP" : "JVP",
                  vjp ? "vjp_func" : "jvp_func");
    return g;
}

/* Records g(x, d) with x the call's n operands and d the refs (TG_NIL: 0);
 * returns the CALL's id or TG_NIL with t failed. */
static uint32_t
call_with(tg_tape *t, uint32_t i, uint32_t g, const uint32_t *d, uint32_t nd)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    uint32_t n = r->nx, zero = TG_NIL;
    uint32_t *ref = mem_malloc(((size_t)n + nd + 1) * sizeof *ref);
    if (!ref) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory building derivative tape \"%s\"", t->name);
        return TG_NIL;
    }
    /* copy the operands first: recording may move t's operand lists */
    memcpy(ref, tape_xops(t, r), (size_t)n * sizeof *ref);
    for (uint32_t j = 0; j < nd; j++) {
        if (d[j] == TG_NIL && zero == TG_NIL)
            zero = tape_const(t, 0.0);
        ref[n + j] = d[j] == TG_NIL ? zero : d[j];
    }
    uint32_t id = t->status == TG_OK ? tape_rec_call(t, t->funcs, g, ref) : TG_NIL;
    mem_free(ref);
    return id;
}

int
ad_sym_call_tangent(tg_tape *t, uint32_t i, uint32_t *tan)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    const tape_func *f = tape_call_func(t, r);
    uint32_t n = r->nx, k = r->ny;
    const uint32_t *ops = tape_xops(t, r);
    tan[i] = TG_NIL;
    for (uint32_t q = 0; q < k; q++)
        tan[i + 1 + q] = TG_NIL;
    bool any = false;
    for (uint32_t j = 0; j < n; j++)
        any |= tan[ops[j]] != TG_NIL;
    if (!any || k == 0)
        return 0;       /* structurally zero tangents */
    uint32_t g = deriv_fn(t, f, 0);
    uint32_t *d = g == TAPE_FUNC_NONE ? NULL : mem_malloc(((size_t)n + 1) * sizeof *d);
    if (!d)
        return g == TAPE_FUNC_NONE ? -1 : tape_fail(t, TG_ERR_NOMEM, "out of memory");
    for (uint32_t j = 0; j < n; j++)
        d[j] = tan[ops[j]];
    uint32_t id = call_with(t, i, g, d, n);
    mem_free(d);
    if (id == TG_NIL)
        return -1;
    for (uint32_t q = 0; q < k; q++)
        tan[i + 1 + q] = id + 1 + q;
    return 0;
}

int
ad_sym_call_adjoint(tg_tape *t, uint32_t i, uint32_t *adj, const uint8_t *active)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    const tape_func *f = tape_call_func(t, r);
    uint32_t n = r->nx, k = r->ny;
    bool any_w = false, any_active = false;
    for (uint32_t q = 0; q < k; q++)
        any_w |= adj[i + 1 + q] != TG_NIL;
    const uint32_t *ops = tape_xops(t, r);
    for (uint32_t j = 0; j < n; j++)
        any_active |= active[ops[j]] != 0;
    if (!any_w || !any_active)
        return 0;
    uint32_t g = deriv_fn(t, f, 1);
    if (g == TAPE_FUNC_NONE)
        return -1;
    uint32_t id = call_with(t, i, g, adj + i + 1, k);
    if (id == TG_NIL)
        return -1;
    ops = tape_xops(t, tape_xrec_of(t, i));     /* the lists may have moved */
    for (uint32_t j = 0; j < n && t->status == TG_OK; j++) {
        uint32_t o = ops[j], term = id + 1 + j;
        if (!active[o])
            continue;
        adj[o] = adj[o] == TG_NIL ? term
               : tape_rec(t, TG_OP_ADD, tape_ref(adj[o]), tape_ref(term), tape_lit(0));
        ops = tape_xops(t, tape_xrec_of(t, i));
    }
    return t->status == TG_OK ? 0 : -1;
}
