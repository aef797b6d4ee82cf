/* src/tape/replay.c -- records one tape's instructions onto another (or onto
 * itself), with its inputs mapped to given values.  Every instruction goes
 * through tape_rec, so folding and CSE apply across the boundary.  This is
 * symbolic composition (tg_call), the first step of every derivative tape,
 * and the re-CSE/fold pass of the optimiser. */
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

/* Extended instruction i of f onto t: its body stored on t (shared when
 * t already has it), its operands mapped, its XOUTs mapped in order.
 * Returns the number of XOUTs (skipped by the caller).  f may be t: the
 * record and operands are copied before t grows. */
static uint64_t
replay_x(tg_tape *t, const tg_tape *f, uint32_t i, uint32_t *map)
{
    tape_xrec r = *tape_xrec_of(f, i);
    if (r.kind == TG_OP_CALL) {     /* issue 13 (userfn) replays calls */
        tape_fail(t, TG_ERR_UNSUPPORTED, "replaying a user-defined function call is not "
                  "supported yet");
        return r.nout;
    }
    uint32_t *ops = mem_malloc((size_t)(r.nops ? r.nops : 1) * sizeof *ops);
    if (!ops) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory replaying a %s", tg_op_name(r.kind));
        return r.nout;
    }
    const uint32_t *o = tape_xops(f, &r);
    for (uint64_t k = 0; k < r.nops; k++)
        ops[k] = map[o[k]];
    uint32_t b = tape_add_body(t, tape_body_of(f, &r));
    uint32_t j = TG_NIL;
    if (b != UINT32_MAX) {
        r.body = b;
        j = tape_append_x(t, r.kind, &r, ops);
    }
    mem_free(ops);
    map[i] = j;
    for (uint64_t k = 0; k < r.nout; k++)
        map[i + 1 + k] = j == TG_NIL ? TG_NIL : j + 1 + (uint32_t)k;
    return r.nout;
}

int
tape_replay(tg_tape *t, const tg_tape *f, const uint32_t *in, uint32_t *map)
{
    uint32_t n = f->n;      /* f may be t itself and grow while we read */
    for (uint32_t i = 0; i < n && t->status == TG_OK; i++) {
        uint8_t op = f->op[i];
        if (tape_is_x(op)) {
            i += (uint32_t)replay_x(t, f, i, map);
        } else if (op == TG_OP_CONST) {
            map[i] = tape_const(t, f->k[f->a[i]]);
        } else if (op == TG_OP_INPUT) {
            map[i] = in[f->a[i]];
        } else {
            int ar = tape_op_arity[op];
            tape_opnd a = tape_ref(map[f->a[i]]);
            tape_opnd b = tape_ref(ar >= 2 ? map[f->b[i]] : 0);
            tape_opnd c = tape_ref(ar >= 3 ? map[f->c[i]] : 0);
            map[i] = tape_rec(t, (tg_opcode)op, a, b, c);
        }
    }
    tape_check_pass(t, "a replay");
    return t->status == TG_OK ? 0 : -1;
}

void
tg_call(tg_tape *dst, const tg_tape *f, const tg_var *args, tg_var *results)
{
    if (!dst || dst->status != TG_OK)
        goto poison;
    if (!f || (!args && f->nin) || (!results && f->nout)) {
        tape_fail(dst, TG_ERR_ARG, "tg_call: NULL argument");
        goto poison;
    }
    if (f->status != TG_OK) {
        tape_fail(dst, f->status, "tg_call: tape \"%s\" is in the error state: %s", f->name, f->err);
        goto poison;
    }
    uint32_t *in = mem_malloc(((size_t)f->nin + 1) * sizeof *in);
    uint32_t *map = mem_malloc(((size_t)f->n + 1) * sizeof *map);
    if (!in || !map) {
        tape_fail(dst, TG_ERR_NOMEM, "tg_call: out of memory");
        mem_free(in);
        mem_free(map);
        goto poison;
    }
    for (uint32_t k = 0; k < f->nin; k++) {
        if (!tape_var_ok(dst, args[k])) {
            tape_fail(dst, TG_ERR_ARG, "tg_call: argument %u is not a value of tape \"%s\"", k,
                      dst->name);
            break;
        }
    }
    for (uint32_t k = 0; k < f->nin && dst->status == TG_OK; k++)
        in[k] = tape_var_ref(dst, args[k]);
    uint32_t nout = f->nout;    /* f == dst is allowed: read before recording */
    if (dst->status == TG_OK && tape_replay(dst, f, in, map) == 0)
        for (uint32_t j = 0; j < nout; j++)
            results[j] = (tg_var){ dst, map[f->out_ref[j]] };
    mem_free(in);
    mem_free(map);
    if (dst->status == TG_OK)
        return;
poison:
    if (results && f)
        for (uint32_t j = 0; j < f->nout; j++)
            results[j] = (tg_var){ dst, TG_NIL };
}
