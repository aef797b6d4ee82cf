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
