/* src/codegen/emit.c -- the Rust backend: one lowered tape (lower.h) as one
 * Rust kernel.
 *
 * The lowering decides the statements (depth-first from the outputs),
 * their parts (at most CG_PART_STMTS statements per #[inline(never)]
 * function, so rustc's time grows linearly with tape size), which values
 * are `let` locals of a part and which cross parts in `work` slots, and
 * which absolute-zero products are plain ones.  This file only spells
 * them; op spellings come from the opcode table's Rust column. */
#include <ctype.h>
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
    bool inline_parts;              /* a body of one part: rustc may inline it */
    const char *root;               /* the kernel's name: bodies are <root>_l<id> */
    uint32_t *seq;                  /* the kernel's next body id */
    uint32_t *bid;                  /* per body of t: its id (emit_bodies) */
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
    if (op == TG_OP_XOUT) {         /* output b of the CALL at a (emit_call) */
        tape_sb_printf(sb, "work[%" PRIu64 "]", (uint64_t)e->L->slot[t->a[i]] + t->b[i]);
        return;
    }
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
    tape_sb_printf(p, "\n#[inline%s]\n#[allow(unused_variables)]\nfn %s_part%" PRIu32 "%s(",
                   e->inline_parts ? "" : "(never)", e->k->fname, e->npart,
                   t->ncalls ? "<U: UserFunctions + ?Sized>" : "");
    if (t->ncalls)
        tape_sb_printf(p, "user: &U, ");
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(p, "%s: &[%s; %" PRIu32 "], ", e->k->in[b], e->T, t->inb[b].size);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(p, "%s: &mut [%s; %" PRIu32 "], ", e->k->out[b], e->T, t->outb[b].size);
    if (cg_guarded(t))  /* guards (own or in loop bodies) return early: the part says so */
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

/* A user-function CALL: the operands gathered into an array, the user's
 * method of the UserFunctions trait writing the k outputs to their slots
 * (which the XOUTs read). */
static void
emit_call(emit *e, tape_sb *sb, uint32_t i)
{
    const tg_tape *t = e->t;
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *o = tape_xops(t, r);
    uint32_t s = e->L->slot[i];
    tape_sb_printf(sb, "    {\n        let x_: [%s; %" PRIu64 "] = [", e->T, r->nops);
    for (uint64_t k = 0; k < r->nops; k++) {
        tape_sb_printf(sb, "%s", k ? ", " : "");
        put_opnd(e, sb, o[k], CTX_BARE);
    }
    tape_sb_printf(sb, "];\n        user.%s(&x_, &mut work[%" PRIu32 "..%" PRIu64 "]);\n    }\n",
                   tape_call_func(t, r)->name, s, (uint64_t)s + r->nout);
}
static void emit_loop(emit *e, const cg_loop *lp);

static void
emit_stmt(emit *e, const cg_stmt *st)
{
    const tg_tape *t = e->t;
    tape_sb *sb = &e->body;
    if (st->out == TG_NIL && e->L->where[st->ref] == CG_AT_CALL) {
        emit_call(e, sb, st->ref);
        return;
    }
    if (st->out == CG_OUT_GUARD) {     /* a branch guard: 1 where it holds */
        tape_sb_printf(sb, "    if ");
        put_opnd(e, sb, st->ref, CTX_BARE);
        tape_sb_printf(sb, " != 1.0 {\n        return Err(Error::Branch);\n    }\n");
        return;
    }
    if (st->out != TG_NIL && st->nout > 1) {    /* loop outputs, one copy */
        uint32_t el, b = tape_block_of(t->outb, t->noutb, st->out, &el), w = e->L->slot[st->ref];
        tape_sb_printf(sb, "    %s[%" PRIu32 "..%" PRIu32 "].copy_from_slice(&work[%" PRIu32 "..%" PRIu32 "]);\n",
                       e->k->out[b], el, el + st->nout, w, w + st->nout);
        return;
    }
    if (st->out == TG_NIL && e->L->where[st->ref] == CG_AT_LOOP) {
        emit_loop(e, &e->L->loop[e->L->slot[st->ref]]);
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

static void emit_bodies(emit *e);

static void
emit_statements(emit *e)
{
    const cg_lowered *L = e->L;
    emit_bodies(e);
    for (uint32_t p = 0; p < L->npart && !e->oom; p++) {
        for (uint32_t s = L->part[p]; s < L->part[p + 1]; s++)
            emit_stmt(e, &L->stmt[s]);
        part_flush(e);
    }
}

/* ------------------------------------------------------------- loops */

/* Loop code (the lowering's cg_loop): the gathers, then, in a block of its
 * own, the work array split once into the regions the calls use (disjoint
 * `&mut` slices: the borrow checker sees them apart), then one `for` per
 * segment calling the body's function with fixed-size windows (tg_ro,
 * tg_rw), swapping the carry and the next carry after each step. */

static void
gather_one(void *ctx, uint64_t slot, uint32_t ref)
{
    emit *e = ctx;
    tape_sb_printf(&e->body, "    work[%" PRIu64 "] = ", slot);
    put_opnd(e, &e->body, ref, CTX_BARE);
    tape_sb_printf(&e->body, ";\n");
}

/* The index pos + (k_ - k0) * stride of step k_ into buf. */
static void
fmt_index(char *buf, size_t len, uint64_t pos, uint64_t k0, int64_t stride)
{
    if (stride == 0) {
        snprintf(buf, len, "%" PRIu64, pos);
        return;
    }
    uint64_t a = (uint64_t)(stride < 0 ? -stride : stride);
    char k[48] = "k_";
    if (k0)
        snprintf(k, sizeof k, "(k_ - %" PRIu64 ")", k0);
    snprintf(buf, len, "%" PRIu64 " %c %s * %" PRIu64, pos, stride < 0 ? '-' : '+', k, a);
}

/* The array of window w: an input block or a region's slice; *base: the
 * index of its first element. */
static void
put_array(emit *e, const cg_win *w, uint64_t *base)
{
    if (w->src == CG_SRC_INPUT) {
        tape_sb_printf(&e->body, "%s", e->k->in[w->blk]);
        *base = 0;
    } else {
        tape_sb_printf(&e->body, "r%" PRIu32 "_", w->reg);
        *base = e->L->reg[w->reg].base;
    }
}

/* A read-only window of n values: piece p at step k_ of segment g (p
 * NULL: params window w), or nothing. */
static void
put_win(emit *e, const cg_win *w, const cg_piece *p, const cg_seg *g, uint32_t n)
{
    tape_sb *sb = &e->body;
    if (w->src == CG_SRC_NONE || n == 0) {
        tape_sb_printf(sb, "tg_ro(&[])");
        return;
    }
    uint64_t base;
    char idx[128];
    tape_sb_printf(sb, "tg_ro(&");
    put_array(e, w, &base);
    fmt_index(idx, sizeof idx, w->pos - base, g ? g->k0 : 0, p ? p->stride : 0);
    tape_sb_printf(sb, "[%s..])", idx);
}

/* The copies of step k_'s window pieces into the segment's staging region. */
static void
put_staging(emit *e, const cg_seg *g)
{
    tape_sb *sb = &e->body;
    for (uint32_t i = 0; i < g->npc; i++) {
        const cg_piece *p = &g->pc[i];
        if (p->w.src == CG_SRC_REF)
            continue;           /* stored before the loop */
        uint64_t base;
        char idx[128];
        if (p->len == 1) {
            tape_sb_printf(sb, "            r%" PRIu32 "_[%" PRIu32 "] = ", g->rx, p->e);
            put_array(e, &p->w, &base);
            fmt_index(idx, sizeof idx, p->w.pos - base, g->k0, p->stride);
            tape_sb_printf(sb, "[%s];\n", idx);
            continue;
        }
        tape_sb_printf(sb, "            r%" PRIu32 "_[%" PRIu32 "..%" PRIu32 "].copy_from_slice(&", g->rx,
                       p->e, p->e + p->len);
        put_array(e, &p->w, &base);
        fmt_index(idx, sizeof idx, p->w.pos - base, g->k0, p->stride);
        tape_sb_printf(sb, "[(%s)..(%s) + %" PRIu32 "]);\n", idx, idx, p->len);
    }
}

static void
put_call(emit *e, const cg_loop *lp, const cg_seg *g)
{
    tape_sb *sb = &e->body;
    const cg_lowered *L = e->L;
    char idx[128];
    if (g->rx != TG_NIL)
        put_staging(e, g);
    tape_sb_printf(sb, "            %s_l%" PRIu32 "(", e->root, e->bid[lp->body]);
    if (lp->op == TG_OP_SCAN)
        tape_sb_printf(sb, lp->nc ? "tg_ro(&*c_), " : "tg_ro(&[]), ");
    if (g->rx != TG_NIL)
        tape_sb_printf(sb, "tg_ro(&r%" PRIu32 "_[..])", g->rx);
    else if (g->npc)
        put_win(e, &g->pc[0].w, &g->pc[0], g, lp->nx);
    else
        tape_sb_printf(sb, "tg_ro(&[])");
    tape_sb_printf(sb, ", ");
    put_win(e, &lp->p, NULL, NULL, lp->np);
    tape_sb_printf(sb, ", ");
    if (lp->op == TG_OP_SCAN)
        tape_sb_printf(sb, lp->nc ? "tg_rw(&mut *n_), " : "tg_rw(&mut []), ");
    if (lp->ny) {
        fmt_index(idx, sizeof idx, g->k0 * lp->ny, g->k0, (int64_t)lp->ny);
        tape_sb_printf(sb, "tg_rw(&mut r%" PRIu32 "_[%s..]), ", lp->ry, idx);
    } else {
        tape_sb_printf(sb, "tg_rw(&mut []), ");
    }
    const char *q = cg_guarded(L->body[lp->body].t) ? "?" : "";  /* a failed body guard */
    if (L->body[lp->body].work_len)
        tape_sb_printf(sb, "tg_rw(&mut *r%" PRIu32 "_))%s;\n", L->rs, q);
    else
        tape_sb_printf(sb, "tg_rw(&mut []))%s;\n", q);
}

/* Whether the calls of segment g index with the step. */
static bool
uses_step(const cg_loop *lp, const cg_seg *g)
{
    bool k = lp->ny != 0;
    for (uint32_t i = 0; i < g->npc; i++)
        k |= g->pc[i].w.src != CG_SRC_REF && g->pc[i].stride != 0;
    return k;
}

static void
emit_loop(emit *e, const cg_loop *lp)
{
    const cg_lowered *L = e->L;
    tape_sb *sb = &e->body;
    tape_sb_printf(sb, "    // %s of %s_l%" PRIu32 ", %" PRIu64 " %s\n", lp->op == TG_OP_SCAN ? "scan" : "map",
                   e->root, lp->count ? e->bid[lp->body] : 0, lp->count, lp->op == TG_OP_SCAN ? "steps" : "applications");
    cg_loop_gathers(L, lp, gather_one, e);
    if (lp->nseg == 0)
        return;
    e->k->needs |= CG_NEED_LOOP;
    uint32_t *rg = mem_malloc(cg_loop_nregions(lp) * sizeof *rg);
    if (!rg) {
        e->oom = true;
        return;
    }
    uint32_t nr = cg_loop_regions(L, lp, rg);
    tape_sb_printf(sb, "    {\n");
    if (nr)
        tape_sb_printf(sb, "        let w_: &mut [%s] = &mut work[..];\n", e->T);
    uint64_t at = 0;
    for (uint32_t i = 0; i < nr; i++) {
        const cg_region *r = &L->reg[rg[i]];
        if (r->base > at)
            tape_sb_printf(sb, "        let (_, w_) = w_.split_at_mut(%" PRIu64 ");\n", r->base - at);
        tape_sb_printf(sb, "        let (r%" PRIu32 "_, %s) = w_.split_at_mut(%" PRIu64 ");\n", rg[i],
                       i + 1 < nr ? "w_" : "_", r->len);
        at = r->base + r->len;
    }
    mem_free(rg);
    bool carry = lp->op == TG_OP_SCAN && lp->nc;
    if (carry)
        tape_sb_printf(sb, "        let (mut c_, mut n_) = (r%" PRIu32 "_, r%" PRIu32 "_);\n", lp->rc, lp->rn);
    for (uint64_t s = 0; s < lp->nseg; s++) {
        const cg_seg *g = &lp->seg[s];
        bool uses_k = uses_step(lp, g);
        tape_sb_printf(sb, "        for %s in %" PRIu64 "..%" PRIu64 "usize {\n", uses_k ? "k_" : "_",
                       g->k0, g->k1);
        put_call(e, lp, g);
        if (carry)
            tape_sb_printf(sb, "            core::mem::swap(&mut c_, &mut n_);\n");
        tape_sb_printf(sb, "        }\n");
    }
    tape_sb_printf(sb, "    }\n");
}

/* Body j of e's tape as the function `<kernel>_l<j>` (nested bodies:
 * `<kernel>_l<j>_l<k>`) taking its blocks as arrays -- i0.. for the inputs
 * (carry, x, params), o0.. for the outputs (next carry, y) -- and its own
 * work; its statements are parts like a kernel's.  Emitted once, however
 * many loops call it. */
static void
emit_body(emit *e, uint32_t j)
{
    const cg_lowered *B = &e->L->body[j];
    const tg_tape *t = B->t;
    char in[3][CG_IDENT_MAX] = { "i0", "i1", "i2" }, out[2][CG_IDENT_MAX] = { "o0", "o1" };
    cg_kernel k;
    memset(&k, 0, sizeof k);
    k.t = t;
    k.in = in;
    k.out = out;
    k.work_len = B->work_len;
    uint32_t id = (*e->seq)++;
    e->bid[j] = id;
    snprintf(k.fname, sizeof k.fname, "%.200s_l%" PRIu32, e->root, id);
    for (size_t i = 0; i < sizeof k.uname; i++)
        k.uname[i] = (char)toupper((unsigned char)k.fname[i]);
    emit sub;
    memset(&sub, 0, sizeof sub);
    sub.t = t;
    sub.L = B;
    sub.o = e->o;
    sub.k = &k;
    sub.T = e->T;
    sub.inline_parts = B->npart == 1;
    sub.root = e->root;
    sub.seq = e->seq;
    emit_statements(&sub);
    mem_free(sub.bid);
    tape_sb *p = &e->parts;
    bool snake = true;
    for (const char *c = k.fname; *c; c++)
        snake &= !(*c >= 'A' && *c <= 'Z');
    tape_sb_printf(p, "\nconst WORK_LEN_%s: usize = %" PRIu32 ";\n\n/// A loop body of `%s` (tape \"%s\"): "
                   "one application or step.\n#[inline]\n%sfn %s(", k.uname, B->work_len, e->k->fname,
                   t->name, snake ? "" : "#[allow(non_snake_case)]\n", k.fname);
    for (uint32_t b = 0; b < t->ninb; b++)
        tape_sb_printf(p, "%s: &[%s; %" PRIu32 "], ", in[b], e->T, t->inb[b].size);
    for (uint32_t b = 0; b < t->noutb; b++)
        tape_sb_printf(p, "%s: &mut [%s; %" PRIu32 "], ", out[b], e->T, t->outb[b].size);
    bool gd = cg_guarded(t);    /* a failed guard: Err(Error::Branch) up to the kernel */
    tape_sb_printf(p, "work: &mut [%s; WORK_LEN_%s])%s {\n", e->T, k.uname,
                   gd ? " -> Result<(), Error>" : "");
    for (uint32_t q = 0; q < sub.npart; q++) {
        tape_sb_printf(p, "    %s_part%" PRIu32 "(", k.fname, q);
        for (uint32_t b = 0; b < t->ninb; b++)
            tape_sb_printf(p, "%s, ", in[b]);
        for (uint32_t b = 0; b < t->noutb; b++)
            tape_sb_printf(p, "%s, ", out[b]);
        tape_sb_printf(p, gd ? "work)?;\n" : "work);\n");
    }
    tape_sb_printf(p, "%s}\n%s", gd ? "    Ok(())\n" : "", sub.parts.buf ? sub.parts.buf : "");
    e->k->needs |= k.needs;
    e->oom |= sub.oom || sub.parts.failed;
    mem_free(sub.body.buf);
    mem_free(sub.parts.buf);
}

static void
emit_bodies(emit *e)
{
    if (!e->L->nbody)
        return;
    e->bid = mem_calloc(e->L->nbody, sizeof *e->bid);
    if (!e->bid) {
        e->oom = true;
        return;
    }
    for (uint32_t j = 0; j < e->L->nbody && !e->oom; j++)
        if (e->L->used[j])
            emit_body(e, j);
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
    if (t->ncalls)
        tape_sb_printf(sb, "///\n/// `user`: your implementation of [`UserFunctions`], whose methods "
                       "this kernel calls\n/// (the tape calls user functions).\n");
    tape_sb_printf(sb, "///\n/// `work`: scratch space of at least [`WORK_LEN_%s`] = %" PRIu32
                   " values.\n///\n/// # Errors\n/// [`Error`] when a slice is shorter than stated; "
                   "nothing is written then.\n", e->k->uname, e->k->work_len);
    if (cg_guarded(t))
        tape_sb_printf(sb, "/// [`Error::Branch`] when one of the tape's branch guards (recorded by "
                       "`tg_branch`, %" PRIu32 " here\n/// and any in its loop bodies) decides the other "
                       "way at this point: nothing is\n/// written then either; record the tape again "
                       "at this point.\n", t->nguard);
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
    tape_sb_printf(sb, "%spub fn %s%s(", snake ? "" : "#[allow(non_snake_case)]\n", f,
                   t->ncalls ? "<U: UserFunctions + ?Sized>" : "");
    if (t->ncalls)
        tape_sb_printf(sb, "user: &U, ");
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
        tape_sb_printf(sb, "    %s_part%" PRIu32 "(%s", f, p, t->ncalls ? "user, " : "");
        for (uint32_t b = 0; b < t->ninb; b++)
            tape_sb_printf(sb, "%s, ", e->k->in[b]);
        for (uint32_t b = 0; b < t->noutb; b++)
            tape_sb_printf(sb, "%s, ", e->k->out[b]);
        tape_sb_printf(sb, "%s%s;\n", e->k->work_len ? "work)" : "&mut work)", cg_guarded(t) ? "?" : "");
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
    uint32_t seq = 0;
    e.root = k->fname;
    e.seq = &seq;
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
    mem_free(e.bid);
    mem_free(e.body.buf);
    mem_free(e.parts.buf);
    return s;
}
