/* src/codegen/c.c -- the C backend: prints a lowered tape (lower.h) as one
 * C11 file, and its header.
 *
 * Nothing here decides what is computed: each op is its C expression from
 * the opcode table (ops.def's expr column, stringified), the helpers are
 * the text of src/tape/mathx.def (stringified), so the generated code is
 * the interpreter's own source.  The backend only substitutes operands
 * (a literal, x[k], a local vN or a work slot) for A, B, C.
 *
 * Two variants of one lowering:
 *  - NAME(x, y, work): one point; locals `const T vN = ...;`;
 *  - NAME_batch(npts, X, Y, work): blocks of CG_B points; each part is one
 *    loop over the block's points (inner, vectorisable) around the same
 *    statements; values crossing parts are small arrays work[slot*CG_B + p];
 *    inputs and outputs are transposed through work so that every loop has
 *    the constant trip count CG_B. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen/cg.h"
#include "codegen/lower.h"
#include "tape/alloc.h"

#define CG_B TG_C_BATCH_BLOCK
#define CG_C_PART 1000u

static const char *const op_c[TG_OP_COUNT] = {
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = #expr,
#include "tapegen/ops.def"
};

static const char *const c_helpers[] = {
#define HELPER(name, ...) #__VA_ARGS__,
#include "tape/mathx.def"
};

static const char *const c_helper_names[] = {
#define HELPER(name, ...) #name,
#include "tape/mathx.def"
};

#define C_NHELPERS (sizeof c_helpers / sizeof *c_helpers)

typedef struct cgen {
    const tg_tape *t;
    const cg_lowered *L;
    const char *name;       /* the C function */
    const char *T;          /* "double" or "float" */
    bool f32, batch;        /* float arithmetic; the variant being printed */
    bool blocks;            /* a loop body: blocks i0.., o0.. instead of x, y */
    const char *root;       /* the kernel's name: bodies are <root>_l<id> */
    uint32_t *seq;          /* the kernel's next body id */
    uint32_t *bid;          /* per body of t: its id (put_bodies; freed by c_emit) */
    tape_sb *sb;
    unsigned needs;         /* bit h: c_helpers[h] is called */
    bool oom;
} cgen;

/* ------------------------------------------------------------ names */

static const char *const c_keywords[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_Bool",
    "_Complex", "_Generic", "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
    /* C23 and the generated code's own parameters */
    "alignas", "alignof", "bool", "constexpr", "false", "nullptr", "static_assert",
    "thread_local", "true", "typeof", "typeof_unqual", "x", "y", "work", "npts", "X", "Y",
    "p", "k", "j", "i0", "nb", "xt", "yt",
};

/* Whether s is called as a function in an op's expression or a helper
 * (sin, fabs, mathx_min...) or is such a function's float variant: a kernel
 * of that name would collide with <math.h> or the helpers. */
static bool
is_math_name(const char *s)
{
    size_t n = strlen(s);
    if (strncmp(s, "mathx_", 6) == 0 || strcmp(s, "isnan") == 0)
        return true;
    for (int op = 0; op < TG_OP_COUNT; op++) {
        const char *e = op_c[op];
        for (const char *p = e ? e : ""; *p; p++) {
            size_t m = n > 1 && s[n - 1] == 'f' ? n - 1 : n;   /* sinf -> sin */
            for (size_t k = m; k <= n && n; k++)
                if (strncmp(p, s, k) == 0 && p[k] == '(' && (p == e || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')))
                    return true;
        }
    }
    return false;
}

/* TG_OK, or TG_ERR_NAME with a message in err. */
static tg_status
c_check_name(const char *s, char *err, size_t len)
{
    bool ok = s && *s && strlen(s) < CG_IDENT_MAX && (isalpha((unsigned char)s[0]) || s[0] == '_');
    for (const char *p = s; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_';
    for (size_t i = 0; ok && i < sizeof c_keywords / sizeof *c_keywords; i++)
        ok = strcmp(s, c_keywords[i]) != 0;
    if (!ok) {
        snprintf(err, len, "\"%s\" is not a C function name ([A-Za-z_][A-Za-z0-9_]*, no keyword)",
                 s ? s : "");
        return TG_ERR_NAME;
    }
    if (is_math_name(s)) {
        snprintf(err, len, "function name \"%s\" collides with a <math.h> function or a helper", s);
        return TG_ERR_NAME;
    }
    return TG_OK;
}

/* ----------------------------------------------------------- operands */

/* Shortest decimal that reads back to the same value (float for f32). */
static void
c_const(char *buf, size_t len, double v, bool f32)
{
    if (isnan(v)) {
        snprintf(buf, len, "%s", signbit(v) ? "(-NAN)" : "NAN");
        return;
    }
    if (f32)
        v = (double)(float)v;
    if (isinf(v)) {
        snprintf(buf, len, "%s", v > 0 ? "INFINITY" : "(-INFINITY)");
        return;
    }
    char num[48];
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, v < 0 ? "(%.0f.0%s)" : "%.0f.0%s", v, f32 ? "f" : "");
        if (v == 0.0)
            snprintf(buf, len, "%s%s", signbit(v) ? "(-0.0" : "0.0", f32 ? (signbit(v) ? "f)" : "f") : (signbit(v) ? ")" : ""));
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(num, sizeof num, "%.*g", p, v);
        if (f32 ? strtof(num, NULL) == (float)v : strtod(num, NULL) == v)
            break;
    }
    bool real = strpbrk(num, ".eEn") != NULL;
    snprintf(buf, len, "%s%s%s%s%s", num[0] == '-' ? "(" : "", num, real ? "" : ".0",
             f32 ? "f" : "", num[0] == '-' ? ")" : "");
}

static void
put_opnd(cgen *g, uint32_t r)
{
    const tg_tape *t = g->t;
    const char *pt = g->batch ? " + p]" : "]";
    switch (g->L->where[r]) {
    case CG_AT_CONST: {
        char num[64];
        c_const(num, sizeof num, g->L->kval[r], g->f32);
        tape_sb_printf(g->sb, "%s", num);
        break;
    }
    case CG_AT_INPUT:
        if (g->blocks) {
            uint32_t el, b = tape_block_of(t->inb, t->ninb, t->a[r], &el);
            tape_sb_printf(g->sb, "i%" PRIu32 "[%" PRIu32 "]", b, el);
            break;
        }
        tape_sb_printf(g->sb, "x[%" PRIu64 "%s", (uint64_t)t->a[r] * (g->batch ? CG_B : 1), pt);
        break;
    case CG_AT_WORK:
        tape_sb_printf(g->sb, "work[%" PRIu64 "%s", (uint64_t)g->L->slot[r] * (g->batch ? CG_B : 1), pt);
        break;
    default:
        tape_sb_printf(g->sb, "v%" PRIu32, r);
        break;
    }
}

/* work[slot] of the current variant (the batch one interleaves points). */
static void
put_work(cgen *g, uint64_t slot)
{
    tape_sb_printf(g->sb, "work[%" PRIu64 "%s", slot * (g->batch ? CG_B : 1),
                   g->batch ? " + p]" : "]");
}

/* A user-function CALL (tg_call_func): its operands gathered into x_, the
 * user's C function NAME(const T *x, T *y) (declared at the top), its k
 * outputs copied to their slots, which the XOUT statements read. */
static void
put_call(cgen *g, uint32_t i, const char *ind)
{
    const tg_tape *t = g->t;
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *o = tape_xops(t, r);
    tape_sb_printf(g->sb, "%s{\n%s    const %s x_[%" PRIu64 "] = {", ind, ind, g->T,
                   r->nops ? r->nops : 1);
    for (uint64_t k = 0; k < r->nops; k++) {
        tape_sb_printf(g->sb, "%s", k ? ", " : " ");
        put_opnd(g, o[k]);
    }
    tape_sb_printf(g->sb, "%s };\n%s    %s y_[%" PRIu64 "];\n%s    %s(x_, y_);\n",
                   r->nops ? "" : " 0", ind, g->T, r->nout ? r->nout : 1, ind,
                   tape_call_func(t, r)->name);
    for (uint64_t k = 0; k < r->nout; k++) {
        tape_sb_printf(g->sb, "%s    ", ind);
        put_work(g, (uint64_t)g->L->slot[i] + k);
        tape_sb_printf(g->sb, " = y_[%" PRIu64 "];\n", k);
    }
    tape_sb_printf(g->sb, "%s}\n", ind);
}

/* Whether constant operand r of instruction i must be hidden from the C
 * compiler: it rewrites libm calls with constant arguments (gcc turns
 * pow(x, -1.0) into 1.0 / x, correctly rounded, where glibc's pow is not),
 * which would break bit-equality with tg_eval.  Ops of constants only are
 * folded by the lowering; this covers the binary libm ops with one
 * constant operand (pow and powk, except powk's exact x*x for 2, and the
 * partial-derivative helpers built on pow and hypot). */
static bool
opaque_const(const cgen *g, uint32_t i, uint32_t r)
{
    uint8_t op = g->t->op[i];
    if (g->L->where[r] != CG_AT_CONST)
        return false;
    if (op == TG_OP_POWK)
        return g->L->kval[r] != 2.0 || r != g->t->b[i];
    return op == TG_OP_POW || op == TG_OP_ATAN2 || op == TG_OP_HYPOT || op == TG_OP_POWDX
        || op == TG_OP_POWDY || op == TG_OP_ATAN2DX || op == TG_OP_HYPOTDX;
}

/* The expression of instruction i: its op's C text with A, B, C replaced
 * by the operands; for f32, libm calls get their float names (sin ->
 * sinf); the mathx_* helpers stay (double, exact for float operands). */
static void
put_expr(cgen *g, uint32_t i)
{
    const tg_tape *t = g->t;
    uint8_t op = t->op[i];
    const char *e = op_c[op];
    if (op == TG_OP_XOUT) {         /* output b of the CALL at a (put_call) */
        put_work(g, (uint64_t)g->L->slot[t->a[i]] + t->b[i]);
        return;
    }
    if (op == TG_OP_AZMUL && g->L->mul[i] != CG_AZ_GUARD)
        e = g->L->mul[i] == CG_AZ_PLAIN ? "A * B" : "A * B + 0.0";   /* "0.0f" in f32 */
    uint32_t opnd[3];
    cg_operands(t, i, opnd);
    for (const char *p = e; *p;) {
        if (isalpha((unsigned char)*p) || *p == '_') {
            const char *q = p;
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            if (q - p == 1 && *p >= 'A' && *p <= 'C') {
                uint32_t r = opnd[*p - 'A'];
                if (opaque_const(g, i, r)) {
                    tape_sb_printf(g->sb, "tapegen_opaque(");
                    put_opnd(g, r);
                    tape_sb_printf(g->sb, ")");
                    g->needs |= 1u << C_NHELPERS;
                } else {
                    put_opnd(g, r);
                }
            } else {
                tape_sb_printf(g->sb, "%.*s", (int)(q - p), p);
                for (size_t h = 0; h < C_NHELPERS; h++)
                    if (strlen(c_helper_names[h]) == (size_t)(q - p) && !strncmp(p, c_helper_names[h], (size_t)(q - p)))
                        g->needs |= 1u << h;
                if (g->f32 && *q == '(' && strncmp(p, "mathx_", 6) != 0)
                    tape_sb_printf(g->sb, "f");
            }
            p = q;
        } else if (isdigit((unsigned char)*p) || *p == '.') {
            const char *q = p;
            while (isalnum((unsigned char)*q) || *q == '.')
                q++;
            tape_sb_printf(g->sb, "%.*s%s", (int)(q - p), p, g->f32 && memchr(p, '.', (size_t)(q - p)) ? "f" : "");
            p = q;
        } else {
            tape_sb_printf(g->sb, "%c", *p++);
        }
    }
}

/* ------------------------------------------------------------- parts */

static void put_loop(cgen *g, const cg_loop *lp);

/* Output out (and the nout - 1 after it) as an lvalue prefix: "y[" or
 * "oB[" for a body; the caller appends the index. */
static void
put_out(cgen *g, uint32_t out, uint32_t *index)
{
    if (g->blocks) {
        uint32_t el, b = tape_block_of(g->t->outb, g->t->noutb, out, &el);
        tape_sb_printf(g->sb, "o%" PRIu32 "[", b);
        *index = el;
    } else {
        tape_sb_printf(g->sb, "y[");
        *index = out;
    }
}

/* the generated code returns the status as a plain int */
_Static_assert(TG_ERR_BRANCH == 8, "the C kernels' comments say 8");

static void
put_stmt(cgen *g, const cg_stmt *s)
{
    const cg_lowered *L = g->L;
    const char *ind = g->batch ? "        " : "    ";
    if (s->out == TG_NIL && L->where[s->ref] == CG_AT_CALL) {
        put_call(g, s->ref, ind);
        return;
    }
    if (s->out == CG_OUT_GUARD) {      /* a branch guard: 1 where it holds */
        tape_sb_printf(g->sb, "%sif (", ind);
        put_opnd(g, s->ref);
        tape_sb_printf(g->sb, " != 1.0%s)\n%s    return %d; /* TG_ERR_BRANCH */\n", g->f32 ? "f" : "",
                       ind, (int)TG_ERR_BRANCH);
        return;
    }
    if (s->out != TG_NIL && s->nout > 1) {      /* loop outputs, one copy */
        uint32_t at;
        tape_sb_printf(g->sb, "    for (size_t j_ = 0; j_ < %" PRIu32 "; j_++)\n        ", s->nout);
        put_out(g, s->out, &at);
        tape_sb_printf(g->sb, "%" PRIu32 " + j_] = work[%" PRIu32 " + j_];\n", at, L->slot[s->ref]);
        return;
    }
    if (s->out == TG_NIL && L->where[s->ref] == CG_AT_LOOP) {
        put_loop(g, &L->loop[L->slot[s->ref]]);
        return;
    }
    if (s->out != TG_NIL && g->blocks) {
        uint32_t at;
        tape_sb_printf(g->sb, "%s", ind);
        put_out(g, s->out, &at);
        tape_sb_printf(g->sb, "%" PRIu32 "] = ", at);
        put_opnd(g, s->ref);
    } else if (s->out != TG_NIL) {
        tape_sb_printf(g->sb, "%sy[%" PRIu64 "%s = ", ind, (uint64_t)s->out * (g->batch ? CG_B : 1),
                       g->batch ? " + p]" : "]");
        put_opnd(g, s->ref);
    } else if (L->where[s->ref] == CG_AT_WORK) {
        tape_sb_printf(g->sb, "%s", ind);
        put_opnd(g, s->ref);
        tape_sb_printf(g->sb, " = ");
        put_expr(g, s->ref);
    } else {
        tape_sb_printf(g->sb, "%sconst %s v%" PRIu32 " = ", ind, g->T, s->ref);
        put_expr(g, s->ref);
    }
    tape_sb_printf(g->sb, ";\n");
}

/* The signature of part p of the current variant. */
/* The parameters of a body's functions: its blocks, then work. */
static void
put_block_params(cgen *g)
{
    for (uint32_t b = 0; b < g->t->ninb; b++)
        tape_sb_printf(g->sb, "const %s *restrict i%" PRIu32 ", ", g->T, b);
    for (uint32_t b = 0; b < g->t->noutb; b++)
        tape_sb_printf(g->sb, "%s *restrict o%" PRIu32 ", ", g->T, b);
    tape_sb_printf(g->sb, "%s *restrict work", g->T);
}

static void
put_part_sig(cgen *g, uint32_t p)
{
    if (g->blocks) {
        tape_sb_printf(g->sb, "%s_p%" PRIu32 "(", g->name, p);
        put_block_params(g);
        tape_sb_printf(g->sb, ")");
        return;
    }
    tape_sb_printf(g->sb, "%s_%c%" PRIu32 "(const %s *restrict x, %s *restrict y, %s *restrict work)",
                   g->name, g->batch ? 'b' : 'p', p, g->T, g->T, g->T);
}

/* Prototypes of parts p0 .. p1 (defined in other translation units, or
 * about to be defined with external linkage). */
static void
put_part_decls(cgen *g, uint32_t p0, uint32_t p1)
{
    for (uint32_t p = p0; p < p1; p++) {
        tape_sb_printf(g->sb, "%sTG_HIDDEN %s ", p == p0 ? "\n" : "", cg_guarded(g->t) ? "int" : "void");
        put_part_sig(g, p);
        tape_sb_printf(g->sb, ";\n");
    }
}

/* One function per part, parts p0 .. p1: static in the unit of the entry
 * point (ext false), hidden external functions in the other units.  In
 * the batch variant the part's statements are the body of one loop over
 * the block's points (the innermost loop, with the constant trip count
 * CG_B): locals stay scalars, so compile time is that of the single
 * variant; values crossing parts are work arrays. */
static void
put_parts(cgen *g, uint32_t p0, uint32_t p1, bool ext)
{
    const cg_lowered *L = g->L;
    if (ext)
        put_part_decls(g, p0, p1);
    for (uint32_t p = p0; p < p1; p++) {
        bool inl = g->blocks && L->npart == 1;      /* a small body: the loop may inline it */
        const char *ret = cg_guarded(g->t) ? "int" : "void";
        tape_sb_printf(g->sb, ext ? "\nTG_NOINLINE TG_HIDDEN %s\n" : inl ? "\nstatic %s\n"
                                  : "\nTG_NOINLINE static %s\n", ret);
        put_part_sig(g, p);
        if (g->blocks) {
            tape_sb_printf(g->sb, "\n{\n");
            for (uint32_t b = 0; b < g->t->ninb; b++)
                tape_sb_printf(g->sb, "    (void)i%" PRIu32 ";\n", b);
            for (uint32_t b = 0; b < g->t->noutb; b++)
                tape_sb_printf(g->sb, "    (void)o%" PRIu32 ";\n", b);
            tape_sb_printf(g->sb, "    (void)work;\n");
        } else
            tape_sb_printf(g->sb, "\n{\n    (void)x;\n    (void)y;\n    (void)work;\n");
        if (g->batch)
            tape_sb_printf(g->sb, "    for (int p = 0; p < %d; p++) {\n", CG_B);
        for (uint32_t s = L->part[p]; s < L->part[p + 1]; s++)
            put_stmt(g, &L->stmt[s]);
        tape_sb_printf(g->sb, g->batch ? "    }\n%s}\n" : "%s}\n",
                       cg_guarded(g->t) ? "    return 0;\n" : "");
    }
}

/* ------------------------------------------------------------- loops */

/* A loop (the lowering's cg_loop): the gathers, then one `for` per segment
 * calling the body's function with pointers to its windows, swapping the
 * carry and the next carry after each step. */

static void
gather_one(void *ctx, uint64_t slot, uint32_t ref)
{
    cgen *g = ctx;
    tape_sb_printf(g->sb, "    work[%" PRIu64 "] = ", slot);
    put_opnd(g, ref);
    tape_sb_printf(g->sb, ";\n");
}

/* The array of window w ("work", "x" or a body's "iB") and the index of
 * its element pos into idx; stride per step from k0 (0: fixed). */
static const char *
win_array(cgen *g, const cg_win *w, uint64_t k0, int64_t stride, char *idx, size_t len,
          char *arr, size_t alen)
{
    uint64_t pos = w->pos;
    if (w->src == CG_SRC_WORK)
        snprintf(arr, alen, "work");
    else if (g->blocks)
        snprintf(arr, alen, "i%" PRIu32, w->blk);
    else {
        snprintf(arr, alen, "x");
        pos += g->t->inb[w->blk].offset;
    }
    char k[48] = "k_";
    if (k0)
        snprintf(k, sizeof k, "(k_ - %" PRIu64 ")", k0);
    if (stride == 0)
        snprintf(idx, len, "%" PRIu64, pos);
    else
        snprintf(idx, len, "%" PRIu64 " %c %s * %" PRIu64, pos, stride < 0 ? '-' : '+', k,
                 (uint64_t)(stride < 0 ? -stride : stride));
    return arr;
}

/* A pointer to a window of n values (piece p of segment sg at step k_, or
 * the fixed window w). */
static void
put_win(cgen *g, const cg_win *w, const cg_piece *p, const cg_seg *sg, uint32_t n)
{
    if (w->src == CG_SRC_NONE || n == 0) {
        tape_sb_printf(g->sb, "NULL");
        return;
    }
    char idx[128], arr[32];
    win_array(g, w, sg ? sg->k0 : 0, p ? p->stride : 0, idx, sizeof idx, arr, sizeof arr);
    tape_sb_printf(g->sb, "%s + (%s)", arr, idx);
}

/* Step k_'s window pieces copied into the segment's staging region. */
static void
put_staging(cgen *g, const cg_seg *sg)
{
    uint64_t rx = g->L->reg[sg->rx].base;
    for (uint32_t i = 0; i < sg->npc; i++) {
        const cg_piece *p = &sg->pc[i];
        if (p->w.src == CG_SRC_REF)
            continue;           /* stored before the loop */
        char idx[128], arr[32];
        win_array(g, &p->w, sg->k0, p->stride, idx, sizeof idx, arr, sizeof arr);
        if (p->len == 1)
            tape_sb_printf(g->sb, "            work[%" PRIu64 "] = %s[%s];\n", rx + p->e, arr, idx);
        else
            tape_sb_printf(g->sb, "            for (size_t j_ = 0; j_ < %" PRIu32 "; j_++)\n"
                           "                work[%" PRIu64 " + j_] = %s[%s + j_];\n", p->len, rx + p->e,
                           arr, idx);
    }
}

static void
put_loop(cgen *g, const cg_loop *lp)
{
    const cg_lowered *L = g->L;
    bool scan = lp->op == TG_OP_SCAN, carry = scan && lp->nc;
    if (!g->bid) {              /* put_bodies ran out of memory */
        g->oom = true;
        return;
    }
    tape_sb_printf(g->sb, "    /* %s of %s_l%" PRIu32 ", %" PRIu64 " %s */\n", scan ? "scan" : "map",
                   g->root, lp->count ? g->bid[lp->body] : 0, lp->count, scan ? "steps" : "applications");
    cg_loop_gathers(L, lp, gather_one, g);
    if (lp->nseg == 0)
        return;
    tape_sb_printf(g->sb, "    {\n");
    if (carry)
        tape_sb_printf(g->sb, "        %s *c_ = work + %" PRIu64 ", *n_ = work + %" PRIu64 ", *s_;\n", g->T,
                       L->reg[lp->rc].base, L->reg[lp->rn].base);
    for (uint64_t q = 0; q < lp->nseg; q++) {
        const cg_seg *sg = &lp->seg[q];
        tape_sb_printf(g->sb, "        for (size_t k_ = %" PRIu64 "; k_ < %" PRIu64 "; k_++) {\n", sg->k0,
                       sg->k1);
        if (sg->rx != TG_NIL)
            put_staging(g, sg);
        bool gb = cg_guarded(L->body[lp->body].t);  /* the body returns a failed guard */
        tape_sb_printf(g->sb, gb ? "            if (%s_l%" PRIu32 "(" : "            %s_l%" PRIu32 "(",
                       g->root, g->bid[lp->body]);
        if (scan)
            tape_sb_printf(g->sb, carry ? "c_, " : "NULL, ");
        if (sg->rx != TG_NIL)
            tape_sb_printf(g->sb, "work + %" PRIu64, L->reg[sg->rx].base);
        else if (sg->npc)
            put_win(g, &sg->pc[0].w, &sg->pc[0], sg, lp->nx);
        else
            tape_sb_printf(g->sb, "NULL");
        tape_sb_printf(g->sb, ", ");
        put_win(g, &lp->p, NULL, NULL, lp->np);
        tape_sb_printf(g->sb, ", ");
        if (scan)
            tape_sb_printf(g->sb, carry ? "n_, " : "NULL, ");
        if (lp->ny)
            tape_sb_printf(g->sb, "work + (%" PRIu64 " + k_ * %" PRIu32 "), ", L->reg[lp->ry].base, lp->ny);
        else
            tape_sb_printf(g->sb, "NULL, ");
        if (L->body[lp->body].work_len)
            tape_sb_printf(g->sb, "work + %" PRIu64 ")", L->reg[L->rs].base);
        else
            tape_sb_printf(g->sb, "NULL)");
        tape_sb_printf(g->sb, gb ? ")\n                return %d; /* TG_ERR_BRANCH: nothing stored yet */\n"
                       : ";\n", (int)TG_ERR_BRANCH);
        if (carry)
            tape_sb_printf(g->sb, "            s_ = c_;\n            c_ = n_;\n            n_ = s_;\n");
        tape_sb_printf(g->sb, "        }\n");
    }
    tape_sb_printf(g->sb, "    }\n");
}

/* Every body g's loops call, nested ones first, each once: static
 * functions NAME_lJ (parts NAME_lJ_pQ) taking the body's blocks; with
 * ext, the top-level ones have external (hidden) linkage, for parts in
 * other translation units. */
static void
put_bodies(cgen *g, bool ext)
{
    if (g->L->nbody && !(g->bid = mem_calloc(g->L->nbody, sizeof *g->bid))) {
        g->oom = true;
        return;
    }
    for (uint32_t j = 0; j < g->L->nbody; j++) {
        if (!g->L->used[j])
            continue;
        char name[CG_IDENT_MAX + 16];
        g->bid[j] = (*g->seq)++;
        snprintf(name, sizeof name, "%s_l%" PRIu32, g->root, g->bid[j]);
        cgen b = *g;
        b.t = g->L->body[j].t;
        b.L = &g->L->body[j];
        b.name = name;
        b.blocks = true;
        b.batch = false;
        b.needs = 0;
        b.bid = NULL;
        put_bodies(&b, false);
        put_parts(&b, 0, b.L->npart, false);
        /* a body with guards returns 8 (TG_ERR_BRANCH) when one fails */
        const char *ret = cg_guarded(b.t) ? "int" : "void";
        tape_sb_printf(b.sb, "\n%s%s %s(", ext ? "TG_HIDDEN " : "static ", ret, name);
        put_block_params(&b);
        tape_sb_printf(b.sb, ");\n\n%s%s\n%s(", ext ? "TG_HIDDEN " : "static ", ret, name);
        put_block_params(&b);
        tape_sb_printf(b.sb, ")\n{\n");
        for (uint32_t q = 0; q < b.L->npart; q++) {
            tape_sb_printf(b.sb, cg_guarded(b.t) ? "    if (%s_p%" PRIu32 "(" : "    %s_p%" PRIu32 "(",
                           name, q);
            for (uint32_t k = 0; k < b.t->ninb; k++)
                tape_sb_printf(b.sb, "i%" PRIu32 ", ", k);
            for (uint32_t k = 0; k < b.t->noutb; k++)
                tape_sb_printf(b.sb, "o%" PRIu32 ", ", k);
            tape_sb_printf(b.sb, cg_guarded(b.t) ? "work))\n        return %d;\n" : "work);\n",
                           (int)TG_ERR_BRANCH);
        }
        tape_sb_printf(b.sb, cg_guarded(b.t) ? "    return 0;\n}\n" : "}\n");
        mem_free(b.bid);
        g->needs |= b.needs;
        g->oom |= b.oom;
    }
}

/* Prototypes of g's top-level bodies (for the other translation units). */
static void
put_body_decls(cgen *g)
{
    for (uint32_t j = 0; g->bid && j < g->L->nbody; j++) {
        if (!g->L->used[j])
            continue;
        cgen b = *g;
        b.t = g->L->body[j].t;
        tape_sb_printf(g->sb, "\nTG_HIDDEN %s %s_l%" PRIu32 "(", cg_guarded(b.t) ? "int" : "void",
                       g->root, g->bid[j]);
        put_block_params(&b);
        tape_sb_printf(g->sb, ");\n");
    }
}

/* --------------------------------------------------------- the file */

/* A user's name inside a comment: a star-slash would end it, so it is broken up. */
static const char *
comment_safe(const char *name, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 3 < len; p++) {
        buf[o++] = *p;
        if (p[0] == '*' && p[1] == '/')
            buf[o++] = ' ';
    }
    buf[o] = '\0';
    return buf;
}

static void
put_blocks(tape_sb *sb, const tape_block *b, uint32_t nb, const char *arr)
{
    char buf[2 * TAPE_NAME_MAX + 4];
    for (uint32_t i = 0; i < nb; i++)
        tape_sb_printf(sb, " *   %s[%" PRIu32 " .. %" PRIu64 "): block \"%s\" (%" PRIu32 " values)\n", arr,
                       b[i].offset, (uint64_t)b[i].offset + b[i].size, comment_safe(b[i].name, buf, sizeof buf),
                       b[i].size);
}

static void
put_head(cgen *g, tape_sb *sb, bool batch, size_t nu)
{
    const tg_tape *t = g->t;
    char buf[2 * TAPE_NAME_MAX + 4];
    const char *T = g->T;
    tape_sb_printf(sb, "/* Generated by tapegen %s from tape \"%s\" (%" PRIu32 " instructions, %s).\n"
                   " * Do not edit: regenerate from the tape.\n *\n"
                   " * int %s(const %s *x, %s *y, %s *work);\n"
                   " *   y = f(x), returns 0%s.  x: %" PRIu32 " values, y: %" PRIu32 " values, work: %" PRIu32
                   " values\n *   (x, y, work must not overlap).\n",
                   TG_VERSION_STRING, comment_safe(t->name, buf, sizeof buf), t->n, T, g->name, T, T, T,
                   cg_guarded(t) ? ", or 8 (TG_ERR_BRANCH) writing nothing when one of its\n *   "
                   "branch guards (tg_branch, in loop bodies too) decides the other way at x" : "",
                   t->nin, t->nout, g->L->work_len);
    put_blocks(sb, t->inb, t->ninb, "x");
    put_blocks(sb, t->outb, t->noutb, "y");
    if (batch)
        tape_sb_printf(sb, " * int %s_batch(size_t npts, const %s *X, %s *Y, %s *work);\n"
                       " *   the same at npts points: X npts x %" PRIu32 ", Y npts x %" PRIu32
                       ", row-major; work: %" PRIu64 " values.%s\n",
                       g->name, T, T, T, t->nin, t->nout,
                       (uint64_t)CG_B * ((uint64_t)g->L->work_len + t->nin + t->nout),
                       cg_guarded(t) ? "\n *   Returns 8 (TG_ERR_BRANCH) when a guard failed at some "
                       "point: those rows\n *   are untouched, the others written" : "");
    if (nu > 1)
        tape_sb_printf(sb, " *\n * One of %zu translation units: %s.c, %s_1.c .. %s_%zu.c; compile each\n"
                       " * and link them together.\n", nu, g->name, g->name, g->name, nu - 1);
    tape_sb_printf(sb, " *\n * Compile WITHOUT floating-point contraction or fast-math, e.g.\n"
                   " *   cc -std=c11 -O2 -ffp-contract=off -c %s.c      (link with -lm)\n"
                   " * %s\n */\n", g->name,
                   g->f32 ? "In float: close to, not equal to, tapegen's tg_eval."
                          : "Then, with the same libm, results equal tapegen's tg_eval bit for bit.");
}

/* The helpers the code calls, each guarded so that generated files may be
 * concatenated into one translation unit. */
static void
put_helpers(tape_sb *sb, unsigned needs)
{
    tape_sb_printf(sb, "\n#include <math.h>\n#include <stddef.h>\n\n"
                   "#ifndef TAPEGEN_C_MACROS\n#define TAPEGEN_C_MACROS\n"
                   "#if defined(__GNUC__)\n"
                   "#define MATHX_INLINE static inline __attribute__((always_inline))\n"
                   "#define TG_NOINLINE __attribute__((noinline))\n"
                   "#define TG_HIDDEN __attribute__((visibility(\"hidden\")))\n"
                   "#else\n#define MATHX_INLINE static inline\n#define TG_NOINLINE\n#define TG_HIDDEN\n"
                   "#endif\n#endif\n");
    if (needs)
        tape_sb_printf(sb, "\n/* tapegen's op helpers (src/tape/mathx.def), verbatim. */\n");
    for (size_t h = 0; h < C_NHELPERS; h++)
        if (needs & (1u << h))
            tape_sb_printf(sb, "#ifndef TAPEGEN_C_%s\n#define TAPEGEN_C_%s\n%s\n#endif\n",
                           c_helper_names[h], c_helper_names[h], c_helpers[h]);
    if (needs & (1u << C_NHELPERS))     /* see opaque_const */
        tape_sb_printf(sb, "\n/* A constant the compiler cannot see: it would rewrite pow(x, -1.0) &c. */\n"
                       "#ifndef TAPEGEN_C_opaque\n#define TAPEGEN_C_opaque\n"
                       "static inline double tapegen_opaque(double v) { volatile double k = v; return k; }\n"
                       "#endif\n");
}

/* The user functions t calls (tg_call_func), as C prototypes the user's
 * code defines: void NAME(const T *x, T *y), x: n values, y: k values. */
static void
put_user_protos(const tg_tape *t, tape_sb *sb, const char *T)
{
    if (t->ncalls == 0)
        return;
    tape_sb_printf(sb, "\n/* User functions (tg_call_func), defined by your code: x holds n values,\n"
                   " * y receives k values. */\n");
    for (uint32_t c = 0; c < t->ncalls; c++) {
        const tape_func *f = tape_funcs_at(t->funcs, t->calls[c]);
        tape_sb_printf(sb, "void %s(const %s *x, %s *y);   /* %" PRIu32 " -> %" PRIu32 " */\n",
                       f->name, T, T, f->n, f->k);
    }
}

/* Unit 0's single variant: prototypes of the parts in other units, parts
 * 0 .. n0, the entry point. */
static void
put_single(cgen *g, tape_sb *sb, uint32_t n0)
{
    g->sb = sb;
    g->batch = false;
    put_bodies(g, n0 < g->L->npart);
    put_part_decls(g, n0, g->L->npart);
    put_parts(g, 0, n0, false);
    tape_sb_printf(sb, "\nint %s(const %s *x, %s *y, %s *work);\n\nint\n%s(const %s *x, %s *y, %s *work)\n{\n",
                   g->name, g->T, g->T, g->T, g->name, g->T, g->T, g->T);
    for (uint32_t p = 0; p < g->L->npart; p++)
        tape_sb_printf(sb, cg_guarded(g->t) ? "    if (%s_p%" PRIu32 "(x, y, work))\n        return %d; "
                       "/* TG_ERR_BRANCH: nothing written */\n" : "    %s_p%" PRIu32 "(x, y, work);\n",
                       g->name, p, (int)TG_ERR_BRANCH);
    tape_sb_printf(sb, "    return 0;\n}\n");
}

static void
put_batch(cgen *g, tape_sb *sb, uint32_t n0)
{
    const tg_tape *t = g->t;
    g->sb = sb;
    g->batch = true;
    if (g->L->nloop) {          /* loops: one point after the other */
        tape_sb_printf(sb, "\nint %s_batch(size_t npts, const %s *X, %s *Y, %s *work);\n\n"
                       "int\n%s_batch(size_t npts, const %s *X, %s *Y, %s *work)\n{\n"
                       "    int ret = 0;\n"
                       "    for (size_t i0 = 0; i0 < npts; i0++)\n"
                       "        if (%s(X + i0 * %" PRIu32 ", Y + i0 * %" PRIu32 ", work))\n"
                       "            ret = %d; /* TG_ERR_BRANCH: that point's row untouched */\n"
                       "    return ret;\n}\n",
                       g->name, g->T, g->T, g->T, g->name, g->T, g->T, g->T, g->name, t->nin, t->nout,
                       (int)TG_ERR_BRANCH);
        return;
    }
    put_part_decls(g, n0, g->L->npart);
    put_parts(g, 0, n0, false);
    uint64_t W = (uint64_t)CG_B * g->L->work_len, NI = (uint64_t)CG_B * t->nin;
    tape_sb_printf(sb, "\nint %s_batch(size_t npts, const %s *X, %s *Y, %s *work);\n\n"
                   "int\n%s_batch(size_t npts, const %s *X, %s *Y, %s *work)\n{\n"
                   "    %s *xt = work + %" PRIu64 ", *yt = work + %" PRIu64 ";%s\n"
                   "    for (size_t i0 = 0; i0 < npts; i0 += %d) {\n"
                   "        size_t nb = npts - i0 < %d ? npts - i0 : %d;\n"
                   "        (void)X;\n        (void)Y;\n        (void)nb;\n",
                   g->name, g->T, g->T, g->T, g->name, g->T, g->T, g->T, g->T, W, W + NI,
                   t->nguard ? "\n    int ret = 0;" : "", CG_B, CG_B, CG_B);
    if (t->nguard)
        tape_sb_printf(sb, "        (void)ret;\n");
    if (t->nin)     /* a partial block repeats its first point */
        tape_sb_printf(sb, "        for (size_t k = 0; k < %" PRIu32 "; k++)\n"
                       "            for (size_t p = 0; p < %d; p++)\n"
                       "                xt[k * %d + p] = X[(i0 + (p < nb ? p : 0)) * %" PRIu32 " + k];\n",
                       t->nin, CG_B, CG_B, t->nin);
    if (t->nguard) {    /* a guard failed in the block: point by point, its rows untouched */
        tape_sb_printf(sb, "        if (0");
        for (uint32_t p = 0; p < g->L->npart; p++)
            tape_sb_printf(sb, " || %s_b%" PRIu32 "(xt, yt, work)", g->name, p);
        tape_sb_printf(sb, ") {\n            for (size_t p = 0; p < nb; p++)\n"
                       "                if (%s(X + (i0 + p) * %" PRIu32 ", Y + (i0 + p) * %" PRIu32
                       ", work))\n                    ret = %d; /* TG_ERR_BRANCH */\n"
                       "            continue;\n        }\n", g->name, t->nin, t->nout,
                       (int)TG_ERR_BRANCH);
    } else {
        for (uint32_t p = 0; p < g->L->npart; p++)
            tape_sb_printf(sb, "        %s_b%" PRIu32 "(xt, yt, work);\n", g->name, p);
    }
    if (t->nout)
        tape_sb_printf(sb, "        for (size_t p = 0; p < nb; p++)\n"
                       "            for (size_t j = 0; j < %" PRIu32 "; j++)\n"
                       "                Y[(i0 + p) * %" PRIu32 " + j] = yt[j * %d + p];\n",
                       t->nout, t->nout, CG_B);
    tape_sb_printf(sb, t->nguard ? "    }\n    return ret;\n}\n" : "    }\n    return 0;\n}\n");
}

/* One translation to do: c_prepare's checked options. */
typedef struct c_job {
    char name[CG_IDENT_MAX];
    bool f32, batch;
    uint32_t part;
    uint32_t unit;              /* statements per translation unit; 0: one unit */
} c_job;

/* The translation units of t: unit 0 holds the file comment, the first
 * parts and the entry points; unit u >= 1 the parts u*ppu .. (u+1)*ppu of
 * both variants, with external linkage (hidden).  unit == 0: one unit.
 * *units: nunits malloc'd strings in a malloc'd array.  Sets *work_len. */
static tg_status
c_emit(const tg_tape *t, const c_job *j, char ***units, size_t *nunits, uint32_t *work_len)
{
    cg_lowered L;
    tg_status s = cg_lower(&L, t, j->part);
    uint32_t ppu = j->unit ? j->unit / j->part : L.npart;
    ppu = ppu == 0 ? 1 : ppu > L.npart ? L.npart : ppu;
    size_t nu = s == TG_OK ? (L.npart + ppu - 1) / ppu : 0;
    tape_sb *body = nu ? mem_calloc(nu, sizeof *body) : NULL;
    char **out = nu ? mem_calloc(nu, sizeof *out) : NULL;
    if (s == TG_OK && (!body || !out))
        s = TG_ERR_NOMEM;
    if (s == TG_OK) {
        uint32_t seq = 0;
        cgen g = { .t = t, .L = &L, .name = j->name, .T = j->f32 ? "float" : "double",
                   .f32 = j->f32, .sb = &body[0], .root = j->name, .seq = &seq };
        put_single(&g, &body[0], ppu);
        if (j->batch)
            put_batch(&g, &body[0], ppu);
        for (size_t u = 1; u < nu; u++) {
            uint32_t p0 = (uint32_t)u * ppu, p1 = p0 + ppu < L.npart ? p0 + ppu : L.npart;
            g.sb = &body[u];
            if (L.nloop)
                put_body_decls(&g);
            for (int b = 0; b <= (j->batch && !L.nloop); b++) {
                g.batch = b;
                put_parts(&g, p0, p1, true);
            }
        }
        for (size_t u = 0; u < nu; u++) {
            tape_sb sb = { 0 };
            if (u == 0)
                put_head(&g, &sb, j->batch, nu);
            else
                tape_sb_printf(&sb, "/* Generated by tapegen %s: unit %zu of %zu of %s (see %s.c).\n"
                               " * Compile as %s.c: without contraction or fast-math. */\n",
                               TG_VERSION_STRING, u, nu, j->name, j->name, j->name);
            put_helpers(&sb, g.needs);
            put_user_protos(t, &sb, g.T);
            tape_sb_printf(&sb, "%s", body[u].buf ? body[u].buf : "");
            if (sb.failed || body[u].failed)
                s = TG_ERR_NOMEM;
            out[u] = sb.buf;
        }
        if (g.oom)
            s = TG_ERR_NOMEM;
        mem_free(g.bid);
        *work_len = L.work_len;
    }
    for (size_t u = 0; u < nu; u++) {
        if (body)               /* NULL when its allocation failed */
            mem_free(body[u].buf);
        if (s != TG_OK && out)
            mem_free(out[u]);
    }
    mem_free(body);
    cg_lowered_free(&L);
    if (s != TG_OK) {
        mem_free(out);
        return s;
    }
    *units = out;
    *nunits = nu;
    return TG_OK;
}

/* ----------------------------------------------------------- the API */

static tg_status
c_prepare(const char *fn, const tg_tape *t, const tg_c_options *o, c_job *j)
{
    tg_c_options z = { 0 };
    if (!o)
        o = &z;
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name, t->err);
    char err[256];
    for (uint32_t c = 0; c < t->ncalls; c++) {     /* the user's names are C names too */
        const char *un = tape_funcs_at(t->funcs, t->calls[c])->name;
        if (c_check_name(un, err, sizeof err) != TG_OK)
            return tape_fail_call(TG_ERR_NAME, "%s: user function: %s", fn, err);
    }
    if (o->function_name)
        snprintf(j->name, sizeof j->name, "%s", o->function_name);
    else
        cg_sanitize(t->name, j->name, sizeof j->name);
    if (c_check_name(o->function_name ? o->function_name : j->name, err, sizeof err) != TG_OK)
        return tape_fail_call(TG_ERR_NAME, "%s: %s%s", fn, err,
                            o->function_name ? "" : " (from the tape name; give function_name)");
    j->f32 = o->f32 != 0;
    j->batch = o->batch != 0;
    j->part = o->part_size ? o->part_size : CG_C_PART;
    j->unit = o->unit_size;
    return TG_OK;
}

static void
units_free(char **u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mem_free(u[i]);
    mem_free(u);
}

tg_status
tg_c_source(const tg_tape *t, const tg_c_options *o, char **src, size_t *work_len)
{
    if (!t || !src)
        return tape_fail_call(TG_ERR_ARG, "tg_c_source: NULL argument");
    c_job j;
    tg_status s = c_prepare("tg_c_source", t, o, &j);
    uint32_t w = 0;
    char **u = NULL;
    size_t nu = 0;
    j.unit = 0;                 /* one file */
    if (s == TG_OK && (s = c_emit(t, &j, &u, &nu, &w)) != TG_OK)
        return tape_fail_call(s, "tg_c_source: %s", cg_lower_why(s));
    if (s == TG_OK) {
        *src = u[0];
        mem_free(u);
        if (work_len)
            *work_len = w;
    }
    return s;
}

tg_status
cg_c_units(const tg_tape *t, const tg_c_options *o, char ***units, size_t *nunits,
           size_t *work_len)
{
    c_job j;
    tg_status s = c_prepare("tg_c_source", t, o, &j);
    uint32_t w = 0;
    if (s == TG_OK && (s = c_emit(t, &j, units, nunits, &w)) != TG_OK)
        return tape_fail_call(s, "tg_c_source: %s", cg_lower_why(s));
    if (s == TG_OK && work_len)
        *work_len = w;
    return s;
}

void
cg_c_units_free(char **units, size_t nunits)
{
    units_free(units, nunits);
}

static void
put_header(tape_sb *sb, const tg_tape *t, const c_job *j, uint32_t work_len)
{
    char U[CG_IDENT_MAX];
    for (size_t i = 0; i < sizeof U; i++)
        U[i] = (char)toupper((unsigned char)j->name[i]);
    const char *T = j->f32 ? "float" : "double";
    char buf[2 * TAPE_NAME_MAX + 4];
    tape_sb_printf(sb, "/* Generated by tapegen %s from tape \"%s\": the interface of %s.c. */\n"
                   "#ifndef %s_TAPEGEN_H\n#define %s_TAPEGEN_H\n\n#include <stddef.h>\n\n"
                   "#define %s_N_IN %" PRIu32 "\n#define %s_N_OUT %" PRIu32 "\n#define %s_WORK_LEN %" PRIu32 "\n",
                   TG_VERSION_STRING, comment_safe(t->name, buf, sizeof buf), j->name, U, U, U, t->nin, U,
                   t->nout, U, work_len);
    if (j->batch)
        tape_sb_printf(sb, "#define %s_BATCH_WORK_LEN %" PRIu64 "\n", U,
                       (uint64_t)CG_B * ((uint64_t)work_len + t->nin + t->nout));
    tape_sb_printf(sb, "\n/* y = f(x); x: %s_N_IN values, y: %s_N_OUT, work: %s_WORK_LEN (no overlap). Returns 0. */\n"
                   "int %s(const %s *x, %s *y, %s *work);\n", U, U, U, j->name, T, T, T);
    if (j->batch)
        tape_sb_printf(sb, "/* The same at npts points: X npts x %s_N_IN, Y npts x %s_N_OUT (row-major),\n"
                       " * work: %s_BATCH_WORK_LEN values. Returns 0. */\n"
                       "int %s_batch(size_t npts, const %s *X, %s *Y, %s *work);\n", U, U, U, j->name, T, T, T);
    put_user_protos(t, sb, T);
    tape_sb_printf(sb, "\n#endif\n");
}

/* Writes the header and every unit together through tape_write_files
 * (temporary files, fsync, renames only once all are written): a failure
 * leaves the previous files intact. */
static tg_status
write_group(const char *dir, const char *name, const char *h, char **u, size_t nu)
{
    char err[512];
    size_t n = nu + 1;
    char (*path)[4200] = mem_malloc(n * sizeof *path);
    tape_wfile *f = mem_malloc(n * sizeof *f);
    tg_status s = TG_OK;
    if (!path || !f) {
        s = tape_fail_call(TG_ERR_NOMEM, "tg_c_files: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int len;
        if (i == 0)
            len = snprintf(path[i], sizeof path[i], "%s/%s.h", dir, name);
        else if (i == 1)
            len = snprintf(path[i], sizeof path[i], "%s/%s.c", dir, name);
        else
            len = snprintf(path[i], sizeof path[i], "%s/%s_%zu.c", dir, name, i - 1);
        if (len < 0 || (size_t)len >= sizeof path[i]) {
            s = tape_fail_call(TG_ERR_IO, "tg_c_files: path too long: %s/%s", dir, name);
            goto out;
        }
        const char *text = i == 0 ? h : u[i - 1];
        f[i].path = path[i];
        f[i].data = text;
        f[i].len = strlen(text);
    }
    s = tape_write_files(f, n, err, sizeof err);
    if (s != TG_OK)
        s = tape_fail_call(s, "tg_c_files: %s", err);
out:
    mem_free(path);
    mem_free(f);
    return s;
}

tg_status
tg_c_files(const tg_tape *t, const tg_c_options *o, const char *dir)
{
    if (!t || !dir)
        return tape_fail_call(TG_ERR_ARG, "tg_c_files: NULL argument");
    c_job j;
    tg_status s = c_prepare("tg_c_files", t, o, &j);
    if (s != TG_OK)
        return s;
    char **u = NULL;
    size_t nu = 0;
    uint32_t w = 0;
    tape_sb h = { 0 };
    s = c_emit(t, &j, &u, &nu, &w);
    if (s == TG_OK) {
        put_header(&h, t, &j, w);
        s = h.failed ? TG_ERR_NOMEM : TG_OK;
    }
    if (s != TG_OK) {
        units_free(u, nu);
        mem_free(h.buf);
        return tape_fail_call(s, "tg_c_files: %s", cg_lower_why(s));
    }
    s = write_group(dir, j.name, h.buf, u, nu);
    units_free(u, nu);
    mem_free(h.buf);
    return s;
}
