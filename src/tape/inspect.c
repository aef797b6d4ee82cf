/* src/tape/inspect.c -- the public read view of a tape's instructions
 * (tg_tape_insn, tg_output_ref, tg_input_ref): the one way tools outside
 * the tape layer (the CLI's dot and info, tests) see opcodes, operands,
 * constants and inputs, instead of reading the disassembly back. */
#include <inttypes.h>

#include "internal.h"

tg_status
tg_tape_insn(const tg_tape *t, size_t i, tg_insn *out)
{
    if (!t || !out)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_insn: NULL %s", t ? "output" : "tape");
    if (i >= t->n)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_insn: instruction %zu out of range (tape \"%s\" "
                            "has %" PRIu32 ")", i, t->name, t->n);
    uint8_t op = t->op[i];
    tg_insn r = { .op = (tg_opcode)op, .noperands = tape_op_arity[op],
                  .operand = { TG_NIL, TG_NIL, TG_NIL }, .value = 0.0, .input = TG_NIL,
                  .body = TG_NIL };
    if (op == TG_OP_CONST) {
        r.value = t->k[t->a[i]];
    } else if (op == TG_OP_INPUT) {
        r.input = t->a[i];
    } else if (tape_is_x(op)) {
        const tape_xrec *x = tape_xrec_of(t, (uint32_t)i);
        const uint32_t *o = tape_xops(t, x);
        r.noperands = x->nops > UINT32_MAX ? UINT32_MAX : (uint32_t)x->nops;
        for (uint32_t k = 0; k < 3 && k < x->nops; k++)
            r.operand[k] = o[k];
        r.body = x->body;
    } else if (op == TG_OP_XOUT) {
        r.operand[0] = t->a[i];
        r.input = t->b[i];
    } else {
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (uint32_t k = 0; k < r.noperands; k++)
            r.operand[k] = opnd[k];
    }
    *out = r;
    return TG_OK;
}

uint32_t
tg_output_ref(const tg_tape *t, size_t j)
{
    return t && j < t->nout ? t->out_ref[j] : TG_NIL;
}

uint32_t
tg_input_ref(const tg_tape *t, size_t k)
{
    return t && k < t->nin ? t->in_ref[k] : TG_NIL;
}

tg_status
tg_tape_insn_operands(const tg_tape *t, size_t i, size_t first, size_t n, uint32_t *out)
{
    if (!t || (!out && n))
        return tape_fail_call(TG_ERR_ARG, "tg_tape_insn_operands: NULL %s", t ? "output" : "tape");
    if (i >= t->n)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_insn_operands: instruction %zu out of range "
                              "(tape \"%s\" has %" PRIu32 ")", i, t->name, t->n);
    uint8_t op = t->op[i];
    const uint32_t col[3] = { t->a[i], t->b[i], t->c[i] };
    const uint32_t *o = col;
    uint64_t nops = tape_op_arity[op];
    if (tape_is_x(op)) {
        const tape_xrec *x = tape_xrec_of(t, (uint32_t)i);
        o = tape_xops(t, x);
        nops = x->nops;
    }
    if (first > nops || n > nops - first)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_insn_operands: operands %zu..%zu of "
                              "instruction %zu, which has %" PRIu64, first, first + n, i, nops);
    for (size_t k = 0; k < n; k++)
        out[k] = o[first + k];
    return TG_OK;
}

size_t
tg_tape_num_bodies(const tg_tape *t)
{
    return t ? t->nbodies : 0;
}

const tg_tape *
tg_tape_body(const tg_tape *t, size_t j)
{
    return t && j < t->nbodies ? t->bodies[j] : NULL;
}
