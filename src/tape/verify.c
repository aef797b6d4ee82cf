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
    for (int j = 0; j < tape_op_arity[op]; j++) {
        if (opnd[j] >= i)
            return fault(f, TAPE_AT_INST, i, j + 1, "instruction %" PRIu32 ": operand %d (%"
                         PRIu32 ") is not earlier", i, j + 1, opnd[j]);
        if (op != TG_OP_XOUT && tape_is_x(t->op[opnd[j]]))
            return fault(f, TAPE_AT_INST, i, j + 1, "instruction %" PRIu32 ": operand %d is "
                         "the %s at %" PRIu32 ", which has no value", i, j + 1,
                         tg_op_name((tg_opcode)t->op[opnd[j]]), opnd[j]);
    }
    return 0;
}

/* count * n + extra, saturating. */
static uint64_t
span(uint64_t count, uint64_t n, uint64_t extra)
{
    if (n && count > (UINT64_MAX - extra) / n)
        return UINT64_MAX;
    return count * n + extra;
}

/* A loop's body has the block structure its record says. */
static int
check_body_shape(const tg_tape *t, uint32_t i, const tape_xrec *r, tape_fault *f)
{
    if (r->body >= t->nbodies)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": body %" PRIu32 " of %"
                     PRIu32, i, r->body, t->nbodies);
    const tg_tape *b = t->bodies[r->body];
    bool map = r->kind == TG_OP_MAP;
    uint32_t want_in[3], want_out[2], nin = map ? 2 : 3, nout = map ? 1 : 2;
    if (map) {
        want_in[0] = r->nx, want_in[1] = r->np, want_out[0] = r->ny;
    } else {
        want_in[0] = r->nc, want_in[1] = r->nx, want_in[2] = r->np;
        want_out[0] = r->nc, want_out[1] = r->ny;
    }
    bool ok = b->ninb == nin && b->noutb == nout;
    for (uint32_t k = 0; ok && k < nin; k++)
        ok = b->inb[k].size == want_in[k];
    for (uint32_t k = 0; ok && k < nout; k++)
        ok = b->outb[k].size == want_out[k];
    if (!ok)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": the blocks of body %"
                     PRIu32 " do not match the %s's sizes", i, r->body, tg_op_name(r->kind));
    if (map && r->nc != 0)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": a map has no carry", i);
    if (r->nops != span(r->count, r->nx, (uint64_t)r->nc + r->np)
        || r->nout != span(r->count, r->ny, r->nc))
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": operand or output count "
                     "does not match %" PRIu64 " applications", i, r->count);
    return 0;
}

/* Extended instruction i (record *xi, the next one in order) and its
 * XOUTs, which must follow it. */
static int
check_x(const tg_tape *t, uint32_t i, uint32_t *xi, tape_fault *f)
{
    uint32_t a = t->a[i];
    if (a != *xi || a >= t->nxr)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": record %" PRIu32 " is not "
                     "the next of %" PRIu32, i, a, t->nxr);
    const tape_xrec *r = &t->xr[a];
    if (r->kind != t->op[i] || r->inst != i || t->b[i] != 0 || t->c[i] != 0)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": record %" PRIu32
                     " belongs to another instruction", i, a);
    if (r->op0 > t->nxops || r->nops > t->nxops - r->op0)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": operand list beyond the "
                     "%" PRIu64 " operands", i, t->nxops);
    if (r->nout > t->n - i - 1)
        return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": %" PRIu64 " outputs past "
                     "the end of the tape", i, r->nout);
    const uint32_t *o = tape_xops(t, r);
    for (uint64_t k = 0; k < r->nops; k++)
        if (o[k] >= i || tape_is_x(t->op[o[k]]))
            return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": operand %" PRIu64
                         " (%" PRIu32 ") is not an earlier value", i, k, o[k]);
    if (r->kind == TG_OP_CALL) {
        if (r->count != 1 || r->nc || r->np || r->nops != r->nx || r->nout != r->ny)
            return fault(f, TAPE_AT_INST, i, 1, "instruction %" PRIu32 ": malformed call", i);
    } else if (check_body_shape(t, i, r, f)) {
        return -1;
    }
    for (uint64_t k = 0; k < r->nout; k++) {
        uint32_t j = i + 1 + (uint32_t)k;
        if (t->op[j] != TG_OP_XOUT || t->a[j] != i || t->b[j] != k || t->c[j] != 0)
            return fault(f, TAPE_AT_INST, j, 0, "instruction %" PRIu32 ": output %" PRIu64
                         " of the %s at %" PRIu32 " is missing", j, k, tg_op_name(r->kind), i);
    }
    ++*xi;
    return 0;
}

/* Every body is a valid tape and nests less deep than t. */
static int
check_bodies(const tg_tape *t, tape_fault *f)
{
    uint32_t depth = 0;
    for (uint32_t j = 0; j < t->nbodies; j++) {
        const tg_tape *b = t->bodies[j];
        if (!b || b->depth >= t->depth || b->status != TG_OK)
            return fault(f, TAPE_AT_INST, 0, 0, "body %" PRIu32 " is missing, nests too deep "
                         "or is in the error state", j);
        tape_fault g;
        if (tape_verify_at(b, &g))
            return fault(f, TAPE_AT_INST, 0, 0, "body %" PRIu32 ": %s", j, g.msg);
        if (b->depth + 1 > depth)
            depth = b->depth + 1;
    }
    if (depth != t->depth || t->depth > TAPE_MAX_DEPTH)
        return fault(f, TAPE_AT_INST, 0, 0, "nesting depth %" PRIu32 " recorded, %" PRIu32
                     " found (at most %d)", t->depth, depth, TAPE_MAX_DEPTH);
    return 0;
}

int
tape_verify_at(const tg_tape *t, tape_fault *f)
{
    f->kind = TAPE_AT_NONE;
    f->msg[0] = '\0';
    if (check_blocks(t, true, f) || check_blocks(t, false, f))
        return -1;
    if (t->depth > TAPE_MAX_DEPTH || check_bodies(t, f))
        return t->depth > TAPE_MAX_DEPTH ? fault(f, TAPE_AT_INST, 0, 0, "bodies nest too deep")
                                         : -1;
    uint32_t inputs = 0, xi = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        if (check_inst(t, i, &inputs, f))
            return -1;
        uint8_t op = t->op[i];
        if (tape_is_x(op)) {
            if (check_x(t, i, &xi, f))
                return -1;
            i += (uint32_t)t->xr[xi - 1].nout;  /* its XOUTs were checked */
        } else if (op == TG_OP_XOUT) {
            return fault(f, TAPE_AT_INST, i, 0, "instruction %" PRIu32 ": xout not right after "
                         "its extended instruction", i);
        }
    }
    if (xi != t->nxr)
        return fault(f, TAPE_AT_INST, t->n, 0, "%" PRIu32 " extended-instruction records, %"
                     PRIu32 " instructions", t->nxr, xi);
    if (inputs != t->nin)
        return fault(f, TAPE_AT_INPUTS, t->n, 0, "%" PRIu32 " input instructions, the input "
                     "blocks hold %" PRIu32, inputs, t->nin);
    for (uint32_t j = 0; j < t->nout; j++)
        if (t->out_ref[j] >= t->n || tape_is_x(t->op[t->out_ref[j]]))
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
