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

/* " name=[%a %b ...]" for m refs from o. */
static void
print_list(tape_sb *sb, const char *name, const uint32_t *o, uint64_t m)
{
    tape_sb_printf(sb, " %s=[", name);
    for (uint64_t k = 0; k < m; k++)
        tape_sb_printf(sb, k ? " %%%" PRIu32 : "%%%" PRIu32, o[k]);
    tape_sb_printf(sb, "]");
}

/* "map body0 count=3 xs=[..] params=[..]", "scan body1 steps=4
 * carry=[..] xs=[..] params=[..]", "call fn0 args=[..]". */
static void
print_x(tape_sb *sb, const tg_tape *t, uint32_t i)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *o = tape_xops(t, r);
    uint64_t nxs = r->count * r->nx;
    if (r->kind == TG_OP_CALL) {
        tape_sb_printf(sb, " fn%" PRIu32, r->body);
        print_list(sb, "args", o, r->nops);
        return;
    }
    bool scan = r->kind == TG_OP_SCAN;
    tape_sb_printf(sb, " body%" PRIu32 " %s=%" PRIu64, r->body, scan ? "steps" : "count",
                   r->count);
    if (scan)
        print_list(sb, "carry", o, r->nc);
    print_list(sb, "xs", o + r->nc, nxs);
    print_list(sb, "params", o + r->nc + nxs, r->np);
}

static void
print_inst(tape_sb *sb, const tg_tape *t, uint32_t i, int ind)
{
    uint8_t op = t->op[i];
    tape_sb_printf(sb, "%*s%%%" PRIu32 " = %s", ind, "", i, tg_op_name((tg_opcode)op));
    if (op == TG_OP_CONST) {
        char num[48];
        tape_fmt_double(num, sizeof num, t->k[t->a[i]]);
        tape_sb_printf(sb, " %s", num);
    } else if (op == TG_OP_INPUT) {
        uint32_t e;
        const tape_block *b = &t->inb[tape_block_of(t->inb, t->ninb, t->a[i], &e)];
        tape_sb_printf(sb, " %s[%" PRIu32 "]", b->name, e);
    } else if (tape_is_x(op)) {
        print_x(sb, t, i);
    } else if (op == TG_OP_XOUT) {
        tape_sb_printf(sb, " %%%" PRIu32 " %" PRIu32, t->a[i], t->b[i]);
    } else {
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[op]; j++)
            tape_sb_printf(sb, " %%%" PRIu32, opnd[j]);
    }
    tape_sb_printf(sb, "\n");
}

/* One tape at indentation ind, then its bodies ("body0:"), each indented
 * two more spaces (recursion as deep as the bodies nest, <= TAPE_MAX_DEPTH). */
static void
disasm_at(tape_sb *sb, const tg_tape *t, int ind)
{
    tape_sb_printf(sb, "%*stape \"%s\": %" PRIu32 " inputs, %" PRIu32 " outputs, %" PRIu32
                   " instructions\n", ind, "", t->name, t->nin, t->nout, t->n);
    for (uint32_t i = 0; i < t->ninb; i++)
        tape_sb_printf(sb, "%*sin  %s[%" PRIu32 "]\n", ind, "", t->inb[i].name, t->inb[i].size);
    for (uint32_t i = 0; i < t->noutb; i++)
        tape_sb_printf(sb, "%*sout %s[%" PRIu32 "]\n", ind, "", t->outb[i].name, t->outb[i].size);
    for (uint32_t i = 0; i < t->n; i++)
        print_inst(sb, t, i, ind);
    for (uint32_t j = 0; j < t->nout; j++) {
        uint32_t e;
        const tape_block *b = &t->outb[tape_block_of(t->outb, t->noutb, j, &e)];
        tape_sb_printf(sb, "%*s%s[%" PRIu32 "] = %%%" PRIu32 "\n", ind, "", b->name, e,
                       t->out_ref[j]);
    }
    for (uint32_t j = 0; j < t->nbodies; j++) {
        tape_sb_printf(sb, "%*sbody%" PRIu32 ":\n", ind, "", j);
        disasm_at(sb, t->bodies[j], ind + 2);
    }
}

/* The format: a tape without loops prints as before issue 11; a tape with
 * loops lists its bodies after its outputs, each under a "bodyJ:" line and
 * indented by two spaces per nesting level. */
void
tape_disasm_to(tape_sb *sb, const tg_tape *t)
{
    disasm_at(sb, t, 0);
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
