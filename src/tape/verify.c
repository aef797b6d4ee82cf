/* src/tape/verify.c -- the tape invariants as a checkable predicate (for
 * tests, debug builds, and later for files read from disk). */
#include <inttypes.h>
#include <stdio.h>

#include "internal.h"

int
tape_verify(const tg_tape *t, char *buf, size_t len)
{
    for (uint32_t i = 0; i < t->n; i++) {
        uint8_t op = t->op[i];
        if (op >= TG_OP_COUNT)
            return snprintf(buf, len, "instruction %" PRIu32 ": bad opcode %u", i, op), -1;
        if (op == TG_OP_CONST && t->a[i] >= t->nk)
            return snprintf(buf, len, "instruction %" PRIu32 ": constant index out of range", i), -1;
        if (op == TG_OP_INPUT && (t->a[i] >= t->nin || t->in_ref[t->a[i]] != i))
            return snprintf(buf, len, "instruction %" PRIu32 ": bad input index", i), -1;
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[op]; j++)
            if (opnd[j] >= i)
                return snprintf(buf, len, "instruction %" PRIu32 ": operand %d not earlier", i, j + 1), -1;
    }
    for (uint32_t j = 0; j < t->nout; j++)
        if (t->out_ref[j] >= t->n)
            return snprintf(buf, len, "output %" PRIu32 " out of range", j), -1;
    return 0;
}
