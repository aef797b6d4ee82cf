/* src/tape/disasm.c -- the disassembler: the canonical text form of a tape,
 * compared whole by the golden tests.  Stable spelling, constants that read
 * back to the same bits, order by instruction index only. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"
#include "tape/fmt.h"

/* Shortest %.Ng that reads back to the same bits; specials spelt out. */
void
tape_fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        uint64_t bits = tape_bits(v);
        if (bits == tape_bits(NAN))
            snprintf(buf, len, "nan");
        else
            snprintf(buf, len, "nan:0x%016" PRIx64, bits);
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "inf" : "-inf");
        return;
    }
    if (v == 0.0) {
        snprintf(buf, len, signbit(v) ? "-0" : "0");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (tape_bits(strtod(buf, NULL)) == tape_bits(v))
            return;
    }
}

void
tape_sb_printf(tape_sb *sb, const char *fmt, ...)
{
    if (sb->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = sb->cap - sb->len;
        int n = vsnprintf(sb->buf ? sb->buf + sb->len : NULL, sb->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->failed = true;
            return;
        }
        if (sb->buf && (size_t)n < room) {
            sb->len += (size_t)n;
            return;
        }
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap - sb->len <= (size_t)n)
            cap *= 2;
        char *p = mem_realloc(sb->buf, cap);
        if (!p) {
            sb->failed = true;
            return;
        }
        sb->buf = p;
        sb->cap = cap;
    }
}

static void
print_inst(tape_sb *sb, const tg_tape *t, uint32_t i)
{
    uint8_t op = t->op[i];
    tape_sb_printf(sb, "%%%" PRIu32 " = %s", i, tg_op_name((tg_opcode)op));
    if (op == TG_OP_CONST) {
        char num[48];
        tape_fmt_double(num, sizeof num, t->k[t->a[i]]);
        tape_sb_printf(sb, " %s", num);
    } else if (op == TG_OP_INPUT) {
        uint32_t e;
        const tape_block *b = &t->inb[tape_block_of(t->inb, t->ninb, t->a[i], &e)];
        tape_sb_printf(sb, " %s[%" PRIu32 "]", b->name, e);
    } else {
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[op]; j++)
            tape_sb_printf(sb, " %%%" PRIu32, opnd[j]);
    }
    tape_sb_printf(sb, "\n");
}

void
tape_disasm_to(tape_sb *sb, const tg_tape *t)
{
    tape_sb_printf(sb, "tape \"%s\": %" PRIu32 " inputs, %" PRIu32 " outputs, %" PRIu32
                   " instructions\n", t->name, t->nin, t->nout, t->n);
    for (uint32_t i = 0; i < t->ninb; i++)
        tape_sb_printf(sb, "in  %s[%" PRIu32 "]\n", t->inb[i].name, t->inb[i].size);
    for (uint32_t i = 0; i < t->noutb; i++)
        tape_sb_printf(sb, "out %s[%" PRIu32 "]\n", t->outb[i].name, t->outb[i].size);
    for (uint32_t i = 0; i < t->n; i++)
        print_inst(sb, t, i);
    for (uint32_t j = 0; j < t->nout; j++) {
        uint32_t e;
        const tape_block *b = &t->outb[tape_block_of(t->outb, t->noutb, j, &e)];
        tape_sb_printf(sb, "%s[%" PRIu32 "] = %%%" PRIu32 "\n", b->name, e, t->out_ref[j]);
    }
}

char *
tg_tape_disasm(const tg_tape *t)
{
    tape_sb sb = { 0 };
    if (!t)
        tape_sb_printf(&sb, "(null tape)\n");
    else
        tape_disasm_to(&sb, t);
    if (sb.failed) {
        mem_free(sb.buf);
        return NULL;
    }
    return sb.buf;
}
