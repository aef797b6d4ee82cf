/* src/tape/verify.c -- the tape invariants of internal.h as one checkable
 * predicate.  The loader runs it on every tape it builds from a file (the
 * file's own checks are only those of its encoding), and in TG_VERIFY
 * builds (Debug and sanitizer builds) every pass that rebuilds a tape runs
 * it on its result.  It must hold against arbitrary columns: it reads
 * in_ref only at indices it has checked. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static int fault(tape_fault *f, int kind, uint32_t index, int field, const char *fmt, ...)
    TAPE_PRINTF(5, 6);

static int
fault(tape_fault *f, int kind, uint32_t index, int field, const char *fmt, ...)
{
    f->kind = kind;
    f->index = index;
    f->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Blocks tile the flat arrays: offsets in order, sizes summing to nin/nout. */
static int
check_blocks(const tg_tape *t, bool in, tape_fault *f)
{
    const tape_block *b = in ? t->inb : t->outb;
    uint32_t nb = in ? t->ninb : t->noutb, total = in ? t->nin : t->nout;
    uint64_t off = 0;
    for (uint32_t i = 0; i < nb; i++) {
        if (!b[i].name || b[i].offset != off)
            return fault(f, TAPE_AT_BLOCK, i, in, "%s block %" PRIu32 " is not where the blocks "
                         "before it end", in ? "input" : "output", i);
        off += b[i].size;
    }
    if (off != total)
        return fault(f, in ? TAPE_AT_INPUTS : TAPE_AT_OUTPUTS, 0, 0,
                     "the %s blocks hold %" PRIu64 " scalars, the tape has %" PRIu32,
                     in ? "input" : "output", off, total);
    return 0;
}

static int
check_inst(const tg_tape *t, uint32_t i, uint32_t *inputs, tape_fault *f)
{
    uint8_t op = t->op[i];
    if (op >= TG_OP_COUNT)
        return fault(f, TAPE_AT_INST, i, 0, "instruction %" PRIu32 ": opcode %u out of range", i, op);
    uint32_t a = t->a[i];
    if (op == TG_OP_CONST && a >= t->nk)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": constant %" PRIu32 " of %"
                     PRIu32, i, a, t->nk);
    if (op == TG_OP_INPUT) {
        if (a != *inputs)
            return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": input index %" PRIu32
                         " out of order", i, a);
        if (a >= t->nin)
            return fault(f, TAPE_AT_INPUTS, i, 1, "%" PRIu32 " input instructions or more, the "
                         "input blocks hold %" PRIu32, a + 1, t->nin);
        if (t->in_ref[a] != i)
            return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": input %" PRIu32
                         " is recorded at instruction %" PRIu32, i, a, t->in_ref[a]);
        ++*inputs;
    }
    const uint32_t opnd[3] = { a, t->b[i], t->c[i] };
    for (int j = 0; j < tape_op_arity[op]; j++)
        if (opnd[j] >= i)
            return fault(f, TAPE_AT_INST, i, j + 1, "instruction %" PRIu32 ": operand %d (%"
                         PRIu32 ") is not earlier", i, j + 1, opnd[j]);
    return 0;
}

int
tape_verify_at(const tg_tape *t, tape_fault *f)
{
    f->kind = TAPE_AT_NONE;
    f->msg[0] = '\0';
    if (check_blocks(t, true, f) || check_blocks(t, false, f))
        return -1;
    uint32_t inputs = 0;
    for (uint32_t i = 0; i < t->n; i++)
        if (check_inst(t, i, &inputs, f))
            return -1;
    if (inputs != t->nin)
        return fault(f, TAPE_AT_INPUTS, t->n, 0, "%" PRIu32 " input instructions, the input "
                     "blocks hold %" PRIu32, inputs, t->nin);
    for (uint32_t j = 0; j < t->nout; j++)
        if (t->out_ref[j] >= t->n)
            return fault(f, TAPE_AT_OUTPUT, j, 0, "output %" PRIu32 " refers to a missing "
                         "instruction", j);
    return 0;
}

int
tape_verify(const tg_tape *t, char *buf, size_t len)
{
    tape_fault f;
    if (tape_verify_at(t, &f) == 0)
        return 0;
    snprintf(buf, len, "%s", f.msg);
    return -1;
}

int
tape_check_pass(tg_tape *t, const char *pass)
{
#ifdef TG_VERIFY
    tape_fault f;
    if (t && t->status == TG_OK && tape_verify_at(t, &f) != 0)
        return tape_fail(t, TG_ERR_ARG, "internal error: tape \"%s\" is broken after %s: %s "
                         "(a tapegen bug; please report it)", t->name, pass, f.msg);
#else
    (void)t;
    (void)pass;
#endif
    return 0;
}
