/* src/codegen/emit.c -- the Rust backend: one lowered tape (lower.h) as one
 * Rust kernel.
 *
 * The lowering decides the statements (depth-first from the outputs),
 * their parts (at most CG_PART_STMTS statements per #[inline(never)]
 * function, so rustc's time grows linearly with tape size), which values
 * are `let` locals of a part and which cross parts in `work` slots, and
 * which absolute-zero products are plain ones.  This file only spells
 * them; op spellings come from the opcode table's Rust column. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen/cg.h"
#include "codegen/lower.h"
#include "tape/alloc.h"

/* One statement is one op now (no inlined expressions): 1000 of them ran
 * faster than 200 and cost rustc about the same (W1/W2 gradients: 11.4 s
 * CPU vs 9.3 s; the former inlined parts of 200 took 18.4 s). */
#define CG_PART_STMTS   1000

static const char *const op_rust[TG_OP_COUNT] = {
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = rs,
#include "tapegen/ops.def"
};

enum ctx { CTX_BARE, CTX_WRAP, CTX_RECV };

typedef struct emit {
    const tg_tape *t;
    const cg_lowered *L;
    const cg_opts *o;
    cg_kernel *k;
    const char *T;                  /* "f64" or "f32" */
    tape_sb body;                   /* the part being emitted */
    uint32_t npart;
    tape_sb parts;                  /* finished part functions */
    bool oom;
} emit;

void
cg_fmt_const(char *buf, size_t len, double v, bool f32)
{
    const char *T = f32 ? "f32" : "f64";
    if (f32 && !isnan(v))
        v = (double)(float)v;           /* the value the f32 kernel computes with */
    if (isnan(v)) {
        if (tape_bits(v) == tape_bits(NAN))
            snprintf(buf, len, "%s::NAN", T);
        else if (f32) {
            float fv = (float)v;
            uint32_t b;
            memcpy(&b, &fv, sizeof b);
            snprintf(buf, len, "f32::from_bits(0x%08" PRIx32 ")", b);
        } else
            snprintf(buf, len, "f64::from_bits(0x%016" PRIx64 ")", tape_bits(v));
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, "%s::%s", T, v > 0 ? "INFINITY" : "NEG_INFINITY");
        return;
    }
    char num[48];
    if (f32) {          /* shortest text that reads back to the same float */
        float fv = (float)v;
        for (int p = 1; p <= 9; p++) {
            snprintf(num, sizeof num, "%.*g", p, (double)fv);
            if (strtof(num, NULL) == fv)
                break;
        }
        if (fv == 0.0f)
            snprintf(num, sizeof num, signbit(fv) ? "-0" : "0");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(num, sizeof num, "%.0f", v);   /* 100.0, not 1.0e+02 */
        if (v == 0.0 && signbit(v))
            snprintf(num, sizeof num, "-0");
    } else {
        tape_fmt_double(num, sizeof num, v);
    }
    /* Rust float literals need a '.' or an exponent */
    bool has_dot = strpbrk(num, ".eE") != NULL;
    char *e = strpbrk(num, "eE");
    if (e && !strchr(num, '.')) {       /* 1e300 -> 1.0e300 */
        char tail[48];
        snprintf(tail, sizeof tail, "%s", e);
        *e = '\0';
        snprintf(buf, len, "%s.0%s", num, tail);
        return;
    }
    snprintf(buf, len, "%s%s", num, has_dot ? "" : ".0");
}

/* ------------------------------------------------------------- emission */

static void
put_const(emit *e, tape_sb *sb, double v, enum ctx ctx)
{
    char num[64];
    cg_fmt_const(num, sizeof num, v, e->o->f32);
    bool neg = num[0] == '-';
    bool path = strchr(num, ':') != NULL;
    if (ctx == CTX_RECV && !path)       /* a method needs a typed receiver */
        tape_sb_printf(sb, neg ? "(%s_%s)" : "%s_%s", num, e->T);
    else if (ctx != CTX_BARE && neg)
        tape_sb_printf(sb, "(%s)", num);
    else
        tape_sb_printf(sb, "%s", num);
}

/* Appends the text of value r used in context ctx: a literal, an input
 * element, a local or a work slot (all atomic but negative literals). */
static void
put_opnd(emit *e, tape_sb *sb, uint32_t r, enum ctx ctx)
{
    const tg_tape *t = e->t;
    switch (e->L->where[r]) {
    case CG_AT_CONST:
        put_const(e, sb, e->L->kval[r], ctx);
        break;
    case CG_AT_INPUT: {
        uint32_t el, b = tape_block_of(t->inb, t->ninb, t->a[r], &el);
        tape_sb_printf(sb, "%s[%" PRIu32 "]", e->k->in[b], el);
        break;
    }
    case CG_AT_WORK:
        tape_sb_printf(sb, "work[%" PRIu32 "]", e->L->slot[r]);
        break;
    default:
        tape_sb_printf(sb, "v%" PRIu32, r);
        break;
    }
}

/* Math function "@method|libmname" or "!libmname" applied to operands. */
static void
put_math(emit *e, tape_sb *sb, const char *spec, const uint32_t *opnd, int ar)
{
    char method[32], libm[32];
    const char *bar = strchr(spec + 1, '|');
    if (bar) {
        snprintf(method, sizeof method, "%.*s", (int)(bar - spec - 1), spec + 1);
        snprintf(libm, sizeof libm, "%s", bar + 1);
    } else {
        snprintf(method, sizeof method, "%s", spec + 1);
        snprintf(libm, sizeof libm, "%s", spec + 1);
    }
    if (spec[0] == '@' && !e->o->no_std) {
        put_opnd(e, sb, opnd[0], CTX_RECV);
        tape_sb_printf(sb, ".%s(", method);
        if (ar == 2)
            put_opnd(e, sb, opnd[1], CTX_BARE);
        tape_sb_printf(sb, ")");
        return;
    }
    e->k->needs |= CG_NEED_LIBM;
    tape_sb_printf(sb, "libm::%s%s(", libm, e->o->f32 ? "f" : "");
    put_opnd(e, sb, opnd[0], CTX_BARE);
    if (ar == 2) {
        tape_sb_printf(sb, ", ");
        put_opnd(e, sb, opnd[1], CTX_BARE);
    }
    tape_sb_printf(sb, ")");
}

static unsigned
helper_need(const char *tpl)
{
    static const struct { const char *name; unsigned need; } h[] = {
        { "tg_min(", CG_NEED_MIN }, { "tg_max(", CG_NEED_MAX }, { "tg_azmul(", CG_NEED_AZMUL },
        { "tg_signum(", CG_NEED_SIGNUM }, { "tg_fract(", CG_NEED_FRACT },
        { "tg_powk(", CG_NEED_POWK }, { "tg_acosh(", CG_NEED_ACOSH | CG_NEED_LIBM },
        { "tg_powdx(", CG_NEED_POWDX }, { "tg_powdy(", CG_NEED_POWDY },
        { "tg_hypotdx(", CG_NEED_HYPOTDX }, { "tg_atan2dx(", CG_NEED_ATAN2DX },
    };
    for (size_t i = 0; i < sizeof h / sizeof *h; i++)
        if (strncmp(tpl, h[i].name, strlen(h[i].name)) == 0)
            return h[i].need;
    return 0;
}

/* The expression of instruction i into sb.  An AZMUL the lowering proved
 * equal to a plain product is spelt as one. */
static void
expr_text(emit *e, tape_sb *sb, uint32_t i)
{
    const tg_tape *t = e->t;
    uint8_t op = t->op[i];
    const char *tpl = op_rust[op];
    if (op == TG_OP_AZMUL && e->L->mul[i] != CG_AZ_GUARD)
        tpl = e->L->mul[i] == CG_AZ_PLAIN ? "{a} * {b}" : "{a} * {b} + 0.0";
    uint32_t opnd[3];
    cg_operands(t, i, opnd);
    if (tpl[0] == '@' || tpl[0] == '!') {
        put_math(e, sb, tpl, opnd, tape_op_arity[op]);
        return;
    }
    e->k->needs |= cg_partial_needs(helper_need(tpl), e->o);
    for (const char *p = tpl; *p; p++) {
        if (p[0] == '{' && p[1] >= 'a' && p[1] <= 'c' && p[2] == '}') {
            bool bare = p == tpl ? false : (p[-1] == '(' || (p - tpl >= 2 && (p[-2] == ',' || p[-2] == '{') && p[-1] == ' '));
            put_opnd(e, sb, opnd[p[1] - 'a'], bare ? CTX_BARE : CTX_WRAP);
            p += 2;
        } else {
            tape_sb_printf(sb, "%c", *p);
        }
    }
}

static void
part_flush(emit *e)
{
    const tg_tape *t = e->t;
    tape_sb *p = &e->parts;
    /* every part takes every slice (simple, and rustc drops the unused) */
    tape_sb_printf(p, "\n#[inline(never)]\n#[allow(unused_variables)]\nfn %s_part%" PRIu32 "(",
                   e->k->fname, e->npart);
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(p, "%s: &[%s; %" PRIu32 "], ", e->k->in[b], e->T, t->inb[b].size);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(p, "%s: &mut [%s; %" PRIu32 "], ", e->k->out[b], e->T, t->outb[b].size);
    if (t->nguard)      /* guards return early: the part says so */
        tape_sb_printf(p, "work: &mut [%s; WORK_LEN_%s]) -> Result<(), Error> {\n%s    Ok(())\n}\n",
                       e->T, e->k->uname, e->body.buf ? e->body.buf : "");
    else
        tape_sb_printf(p, "work: &mut [%s; WORK_LEN_%s]) {\n%s}\n", e->T, e->k->uname,
                       e->body.buf ? e->body.buf : "");
    if (e->body.failed)
        e->oom = true;
    mem_free(e->body.buf);
    memset(&e->body, 0, sizeof e->body);
    e->npart++;
}

static void
emit_stmt(emit *e, const cg_stmt *st)
{
    const tg_tape *t = e->t;
    tape_sb *sb = &e->body;
    if (st->out == CG_OUT_GUARD) {     /* a branch guard: 1 where it holds */
        tape_sb_printf(sb, "    if ");
        put_opnd(e, sb, st->ref, CTX_BARE);
        tape_sb_printf(sb, " != 1.0 {\n        return Err(Error::Branch);\n    }\n");
        return;
    }
    if (st->out != TG_NIL) {
        uint32_t el, b = tape_block_of(t->outb, t->noutb, st->out, &el);
        tape_sb_printf(sb, "    %s[%" PRIu32 "] = ", e->k->out[b], el);
        put_opnd(e, sb, st->ref, CTX_BARE);
    } else if (e->L->where[st->ref] == CG_AT_WORK) {
        tape_sb_printf(sb, "    work[%" PRIu32 "] = ", e->L->slot[st->ref]);
        expr_text(e, sb, st->ref);
    } else {
        tape_sb_printf(sb, "    let v%" PRIu32 ": %s = ", st->ref, e->T);
        expr_text(e, sb, st->ref);
    }
    tape_sb_printf(sb, ";\n");
}

static void
emit_statements(emit *e)
{
    const cg_lowered *L = e->L;
    for (uint32_t p = 0; p < L->npart && !e->oom; p++) {
        for (uint32_t s = L->part[p]; s < L->part[p + 1]; s++)
            emit_stmt(e, &L->stmt[s]);
        part_flush(e);
    }
}

/* ------------------------------------------------------------ the kernel */

static void
emit_signature(emit *e, tape_sb *sb, bool borrowed)
{
    const tg_tape *t = e->t;
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(sb, "%s: &[%s], ", e->k->in[b], e->T);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(sb, "%s: &mut [%s], ", e->k->out[b], e->T);
    tape_sb_printf(sb, "%swork: &mut [%s]", borrowed ? "" : "_", e->T);
}

static void
emit_doc(emit *e, tape_sb *sb)
{
    const tg_tape *t = e->t;
    tape_sb_printf(sb, "\n/// Kernel generated from tape `%s` (%" PRIu32 " instructions).\n///\n"
                   "/// Inputs (read-only slices, at least as long as stated):\n", t->name, t->n);
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(sb, "/// - `%s`: %" PRIu32 " values, block \"%s\" of the tape\n", e->k->in[b],
                       t->inb[b].size, t->inb[b].name);
    tape_sb_printf(sb, "///\n/// Outputs (written):\n");
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(sb, "/// - `%s`: %" PRIu32 " values, block \"%s\" of the tape\n", e->k->out[b],
                       t->outb[b].size, t->outb[b].name);
    tape_sb_printf(sb, "///\n/// `work`: scratch space of at least [`WORK_LEN_%s`] = %" PRIu32
                   " values.\n///\n/// # Errors\n/// [`Error`] when a slice is shorter than stated; "
                   "nothing is written then.\n", e->k->uname, e->k->work_len);
    if (t->nguard)
        tape_sb_printf(sb, "/// [`Error::Branch`] when one of the tape's %" PRIu32 " branch guards (recorded "
                       "by `tg_branch`)\n/// decides the other way at this point: nothing is written "
                       "then either; record the\n/// tape again at this point.\n", t->nguard);
}

static void
emit_kernel_fn(emit *e, tape_sb *sb)
{
    const tg_tape *t = e->t;
    const char *f = e->k->fname, *U = e->k->uname;
    tape_sb_printf(sb, "\n/// Scratch length needed by [`%s`].\npub const WORK_LEN_%s: usize = %" PRIu32
                   ";\n/// Input blocks of [`%s`]: (name, length).\npub const INPUTS_%s: &[(&str, usize)] = &[",
                   f, U, e->k->work_len, f, U);
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(sb, "%s(\"%s\", %" PRIu32 ")", b ? ", " : "", e->k->in[b], t->inb[b].size);
    tape_sb_printf(sb, "];\n/// Output blocks of [`%s`]: (name, length).\npub const OUTPUTS_%s: &[(&str, usize)] = &[", f, U);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(sb, "%s(\"%s\", %" PRIu32 ")", b ? ", " : "", e->k->out[b], t->outb[b].size);
    tape_sb_printf(sb, "];\n");
    emit_doc(e, sb);
    bool snake = true;
    for (const char *p = f; *p; p++)
        snake &= !(*p >= 'A' && *p <= 'Z');
    tape_sb_printf(sb, "%spub fn %s(", snake ? "" : "#[allow(non_snake_case)]\n", f);
    emit_signature(e, sb, true);
    tape_sb_printf(sb, ") -> Result<(), Error> {\n");
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(sb, "    let %s: &[%s; %" PRIu32 "] = tg_in(%s, \"%s\")?;\n", e->k->in[b],
                       e->T, t->inb[b].size, e->k->in[b], e->k->in[b]);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(sb, "    let %s: &mut [%s; %" PRIu32 "] = tg_out(%s, \"%s\")?;\n",
                       e->k->out[b], e->T, t->outb[b].size, e->k->out[b], e->k->out[b]);
    if (e->k->work_len)
        tape_sb_printf(sb, "    let work: &mut [%s; WORK_LEN_%s] = tg_work(work)?;\n", e->T, U);
    else    /* all values are locals: the slice is unused */
        tape_sb_printf(sb, "    let _ = work;\n    let mut work: [%s; 0] = [];\n", e->T);
    for (uint32_t p = 0; p < e->npart; p++) {
        tape_sb_printf(sb, "    %s_part%" PRIu32 "(", f, p);
        for (uint32_t b = 0; b < t->ninb; b++)
            tape_sb_printf(sb, "%s, ", e->k->in[b]);
        for (uint32_t b = 0; b < t->noutb; b++)
            tape_sb_printf(sb, "%s, ", e->k->out[b]);
        tape_sb_printf(sb, "%s%s;\n", e->k->work_len ? "work)" : "&mut work)", t->nguard ? "?" : "");
    }
    tape_sb_printf(sb, "    Ok(())\n}\n%s", e->parts.buf ? e->parts.buf : "");
}

tg_status
cg_emit_kernel(tape_sb *sb, cg_kernel *k, const cg_opts *o)
{
    cg_lowered L;
    emit e;
    memset(&e, 0, sizeof e);
    e.t = k->t;
    e.L = &L;
    e.o = o;
    e.k = k;
    e.T = o->f32 ? "f32" : "f64";
    k->work_len = 0;
    k->needs = 0;
    tg_status s = cg_lower(&L, k->t, CG_PART_STMTS);
    if (s == TG_OK) {
        k->work_len = L.work_len;
        emit_statements(&e);
        if (!e.oom)
            emit_kernel_fn(&e, sb);
    }
    if (s == TG_OK && (e.oom || sb->failed))
        s = TG_ERR_NOMEM;
    cg_lowered_free(&L);
    mem_free(e.body.buf);
    mem_free(e.parts.buf);
    return s;
}
