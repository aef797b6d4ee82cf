/* src/codegen/emit.c -- one tape to one Rust kernel.
 *
 * Analysis, three linear passes over the live instructions:
 *  1. use counts; a value used once is inlined into its user's expression,
 *     unless the expression would exceed CG_INLINE_NODES nodes (deep
 *     nesting slows rustc down and, unbounded, overflows its stack);
 *  2. emit points (backwards): an inlined expression is evaluated where the
 *     statement that finally contains it runs;
 *  3. slots (forwards): values used more than once live in `work` slots,
 *     freed after the last statement that reads them and reused LIFO.
 * Statements then go into #[inline(never)] parts of at most CG_PART_STMTS
 * statements sharing `work`, so rustc's time grows linearly with tape size.
 * Everything is ordered by instruction index: the output is deterministic.
 * Op spellings come from the opcode table's Rust column. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen/cg.h"
#include "tape/alloc.h"

#define CG_INLINE_NODES 16
#define CG_PART_STMTS   200

static const char *const op_rust[TG_OP_COUNT] = {
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = rs,
#include "tapegen/ops.def"
};

enum ctx { CTX_BARE, CTX_WRAP, CTX_RECV };

typedef struct emit {
    const tg_tape *t;
    const cg_opts *o;
    cg_kernel *k;
    const char *T;                  /* "f64" or "f32" */
    uint8_t *live, *mat;
    uint32_t *uses, *consumer, *nodes, *emitpt, *last, *slot;
    uint32_t *bucket, *bnext;       /* materialised values by last use */
    uint32_t *ohead, *onext;        /* outputs by instruction */
    uint32_t *free_slots, nfree;
    char **text;                    /* pending inlined expressions */
    uint8_t *atomic;
    /* the part being emitted */
    tape_sb body;
    uint32_t nstmt, npart;
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

/* ------------------------------------------------------------ analysis */

static bool
is_leaf(uint8_t op)
{
    return op == TG_OP_CONST || op == TG_OP_INPUT;
}

static void
count_uses(emit *e)
{
    const tg_tape *t = e->t;
    for (uint32_t j = 0; j < t->nout; j++) {
        e->live[t->out_ref[j]] = 1;
        e->uses[t->out_ref[j]]++;
        e->consumer[t->out_ref[j]] = TG_NIL;
    }
    for (uint32_t i = t->n; i-- > 0;) {
        if (!e->live[i] || is_leaf(t->op[i]))
            continue;
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[t->op[i]]; j++) {
            e->live[opnd[j]] = 1;
            e->uses[opnd[j]]++;
            e->consumer[opnd[j]] = i;
        }
    }
}

static void
choose_inlining(emit *e)
{
    const tg_tape *t = e->t;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!e->live[i] || is_leaf(t->op[i]))
            continue;
        uint32_t nodes = 1;
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[t->op[i]]; j++)
            nodes += e->nodes[opnd[j]];
        e->mat[i] = e->uses[i] > 1 || nodes > CG_INLINE_NODES;
        e->nodes[i] = e->mat[i] ? 0 : nodes;
    }
}

static void
place_statements(emit *e)
{
    const tg_tape *t = e->t;
    for (uint32_t i = t->n; i-- > 0;) {
        if (!e->live[i] || is_leaf(t->op[i]))
            continue;
        uint32_t c = e->consumer[i];
        e->emitpt[i] = (e->mat[i] || c == TG_NIL) ? i : e->emitpt[c];
    }
    for (uint32_t i = 0; i < t->n; i++)
        e->last[i] = i;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!e->live[i] || is_leaf(t->op[i]))
            continue;
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[t->op[i]]; j++)
            if (e->mat[opnd[j]] && e->last[opnd[j]] < e->emitpt[i])
                e->last[opnd[j]] = e->emitpt[i];
    }
    for (uint32_t i = 0; i < t->n; i++)
        e->bucket[i] = TG_NIL;
    for (uint32_t i = t->n; i-- > 0;)
        if (e->live[i] && e->mat[i]) {
            e->bnext[i] = e->bucket[e->last[i]];
            e->bucket[e->last[i]] = i;
        }
    for (uint32_t i = 0; i < t->n; i++)
        e->ohead[i] = TG_NIL;
    for (uint32_t j = t->nout; j-- > 0;) {
        e->onext[j] = e->ohead[t->out_ref[j]];
        e->ohead[t->out_ref[j]] = j;
    }
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

/* Appends the text of value r used in context ctx (consuming a pending
 * inlined expression). */
static void
put_opnd(emit *e, tape_sb *sb, uint32_t r, enum ctx ctx)
{
    const tg_tape *t = e->t;
    uint8_t op = t->op[r];
    if (op == TG_OP_CONST) {
        put_const(e, sb, t->k[t->a[r]], ctx);
    } else if (op == TG_OP_INPUT) {
        uint32_t el, b = tape_block_of(t->inb, t->ninb, t->a[r], &el);
        tape_sb_printf(sb, "%s[%" PRIu32 "]", e->k->in[b], el);
    } else if (e->mat[r]) {
        tape_sb_printf(sb, "work[%" PRIu32 "]", e->slot[r]);
    } else {
        bool wrap = ctx != CTX_BARE && !e->atomic[r];
        tape_sb_printf(sb, wrap ? "(%s)" : "%s", e->text[r] ? e->text[r] : "");
        mem_free(e->text[r]);
        e->text[r] = NULL;
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
    };
    for (size_t i = 0; i < sizeof h / sizeof *h; i++)
        if (strncmp(tpl, h[i].name, strlen(h[i].name)) == 0)
            return h[i].need;
    return 0;
}

/* The expression of instruction i; *atomic tells whether it can be used
 * as an operand without parentheses. */
static char *
expr_text(emit *e, uint32_t i, uint8_t *atomic)
{
    const tg_tape *t = e->t;
    uint8_t op = t->op[i];
    const char *tpl = op_rust[op];
    const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
    tape_sb sb = { 0 };
    *atomic = tpl[0] == '@' || tpl[0] == '!' || strncmp(tpl, "tg_", 3) == 0;
    if (tpl[0] == '@' || tpl[0] == '!') {
        put_math(e, &sb, tpl, opnd, tape_op_arity[op]);
    } else {
        e->k->needs |= helper_need(tpl);
        for (const char *p = tpl; *p; p++) {
            if (p[0] == '{' && p[1] >= 'a' && p[1] <= 'c' && p[2] == '}') {
                bool bare = p == tpl ? false : (p[-1] == '(' || (p - tpl >= 2 && (p[-2] == ',' || p[-2] == '{') && p[-1] == ' '));
                put_opnd(e, &sb, opnd[p[1] - 'a'], bare ? CTX_BARE : CTX_WRAP);
                p += 2;
            } else {
                tape_sb_printf(&sb, "%c", *p);
            }
        }
    }
    if (sb.failed)
        e->oom = true;
    return sb.buf;
}

static void
part_flush(emit *e)
{
    const tg_tape *t = e->t;
    tape_sb *p = &e->parts;
    /* every part takes every slice: an expression built in one part may be
     * spliced into a statement of a later one */
    tape_sb_printf(p, "\n#[inline(never)]\n#[allow(unused_variables)]\nfn %s_part%" PRIu32 "(",
                   e->k->fname, e->npart);
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(p, "%s: &[%s; %" PRIu32 "], ", e->k->in[b], e->T, t->inb[b].size);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(p, "%s: &mut [%s; %" PRIu32 "], ", e->k->out[b], e->T, t->outb[b].size);
    tape_sb_printf(p, "work: &mut [%s; WORK_LEN_%s]) {\n%s}\n", e->T, e->k->uname,
                   e->body.buf ? e->body.buf : "");
    if (e->body.failed)
        e->oom = true;
    mem_free(e->body.buf);
    memset(&e->body, 0, sizeof e->body);
    e->nstmt = 0;
    e->npart++;
}

static void
stmt_end(emit *e)
{
    tape_sb_printf(&e->body, ";\n");
    if (++e->nstmt == CG_PART_STMTS)
        part_flush(e);
}

static void
emit_outputs(emit *e, uint32_t i)
{
    const tg_tape *t = e->t;
    for (uint32_t j = e->ohead[i]; j != TG_NIL; j = e->onext[j]) {
        uint32_t el, b = tape_block_of(t->outb, t->noutb, j, &el);
        tape_sb_printf(&e->body, "    %s[%" PRIu32 "] = ", e->k->out[b], el);
        put_opnd(e, &e->body, i, CTX_BARE);
        stmt_end(e);
    }
}

static void
emit_statements(emit *e)
{
    const tg_tape *t = e->t;
    for (uint32_t i = 0; i < t->n && !e->oom; i++) {
        if (!e->live[i])
            continue;
        if (!is_leaf(t->op[i]) && e->mat[i]) {
            char *x = expr_text(e, i, &e->atomic[i]);
            uint32_t s = e->nfree ? e->free_slots[--e->nfree] : e->k->work_len++;
            e->slot[i] = s;
            tape_sb_printf(&e->body, "    work[%" PRIu32 "] = %s", s, x ? x : "");
            mem_free(x);
            stmt_end(e);
        } else if (!is_leaf(t->op[i])) {
            e->text[i] = expr_text(e, i, &e->atomic[i]);
        }
        emit_outputs(e, i);
        for (uint32_t v = e->bucket[i]; v != TG_NIL; v = e->bnext[v])
            e->free_slots[e->nfree++] = e->slot[v];
    }
    if (e->nstmt || e->npart == 0)
        part_flush(e);
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
    tape_sb_printf(sb, "%swork: &mut [%s]", (borrowed && e->k->work_len) ? "" : "_", e->T);
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
    else
        tape_sb_printf(sb, "    let mut work: [%s; 0] = [];\n", e->T);
    for (uint32_t p = 0; p < e->npart; p++) {
        tape_sb_printf(sb, "    %s_part%" PRIu32 "(", f, p);
        for (uint32_t b = 0; b < t->ninb; b++)
            tape_sb_printf(sb, "%s, ", e->k->in[b]);
        for (uint32_t b = 0; b < t->noutb; b++)
            tape_sb_printf(sb, "%s, ", e->k->out[b]);
        tape_sb_printf(sb, e->k->work_len ? "work);\n" : "&mut work);\n");
    }
    tape_sb_printf(sb, "    Ok(())\n}\n%s", e->parts.buf ? e->parts.buf : "");
}

static int
emit_alloc(emit *e, const tg_tape *t)
{
    size_t n = (size_t)t->n + 1;
    e->live = mem_calloc(n, 1);
    e->mat = mem_calloc(n, 1);
    e->atomic = mem_calloc(n, 1);
    e->uses = mem_calloc(n, sizeof *e->uses);
    e->consumer = mem_calloc(n, sizeof *e->consumer);
    e->nodes = mem_calloc(n, sizeof *e->nodes);
    e->emitpt = mem_calloc(n, sizeof *e->emitpt);
    e->last = mem_calloc(n, sizeof *e->last);
    e->slot = mem_calloc(n, sizeof *e->slot);
    e->bucket = mem_calloc(n, sizeof *e->bucket);
    e->bnext = mem_calloc(n, sizeof *e->bnext);
    e->ohead = mem_calloc(n, sizeof *e->ohead);
    e->onext = mem_calloc((size_t)t->nout + 1, sizeof *e->onext);
    e->free_slots = mem_calloc(n, sizeof *e->free_slots);
    e->text = mem_calloc(n, sizeof *e->text);
    return e->live && e->mat && e->atomic && e->uses && e->consumer && e->nodes && e->emitpt
        && e->last && e->slot && e->bucket && e->bnext && e->ohead && e->onext && e->free_slots
        && e->text ? 0 : -1;
}

static void
emit_free(emit *e)
{
    if (e->text)
        for (uint32_t i = 0; i < e->t->n; i++)
            mem_free(e->text[i]);
    void *p[] = { e->live, e->mat, e->atomic, e->uses, e->consumer, e->nodes, e->emitpt,
                  e->last, e->slot, e->bucket, e->bnext, e->ohead, e->onext, e->free_slots,
                  e->text, e->body.buf, e->parts.buf };
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        mem_free(p[i]);
}

tg_status
cg_emit_kernel(tape_sb *sb, cg_kernel *k, const cg_opts *o)
{
    emit e;
    memset(&e, 0, sizeof e);
    e.t = k->t;
    e.o = o;
    e.k = k;
    e.T = o->f32 ? "f32" : "f64";
    k->work_len = 0;
    k->needs = 0;
    tg_status s = TG_OK;
    if (emit_alloc(&e, k->t) == 0) {
        count_uses(&e);
        choose_inlining(&e);
        place_statements(&e);
        emit_statements(&e);
        if (!e.oom)
            emit_kernel_fn(&e, sb);
    }
    if (e.oom || !e.live || sb->failed)
        s = TG_ERR_NOMEM;
    emit_free(&e);
    return s;
}
