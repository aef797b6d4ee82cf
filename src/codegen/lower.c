/* src/codegen/lower.c -- a tape to ordered statements, parts and slots
 * (see lower.h).  Four linear passes, explicit stacks only (a chain of a
 * million instructions lowers under a small C stack):
 *  1. depth-first post-order from each output, operands a, b, c in turn;
 *  2. statement index of each definition and of each value's last use;
 *  3. local or work slot: a work slot when the last use is in a later part;
 *     slots freed after their last use and reused LIFO;
 *  4. sign facts, forwards, to spell AZMUL without its guard where exact;
 * then, for the loops, their regions, windows and segments (loop_plans)
 * and the lowering of each body they call. */
#include <float.h>
#include <math.h>

#include "codegen/lower.h"
#include "tape/alloc.h"
#include "tape/mathx.h"

static bool
is_loop(uint8_t op)
{
    return op == TG_OP_MAP || op == TG_OP_SCAN;
}

/* Operands of instruction i: a loop's operand list, else arity's. */
static uint64_t
n_opnd(const tg_tape *t, uint32_t i)
{
    uint8_t op = t->op[i];
    return tape_is_x(op) ? tape_xrec_of(t, i)->nops : tape_op_arity[op];
}

static uint32_t
opnd_at(const tg_tape *t, uint32_t i, uint64_t k)
{
    if (tape_is_x(t->op[i]))
        return tape_xops(t, tape_xrec_of(t, i))[k];
    return k == 0 ? t->a[i] : k == 1 ? t->b[i] : t->c[i];
}

/* The statement that defines value r: a loop output is defined by its
 * loop; a user-function CALL's outputs are statements of their own (XOUTs
 * reading the call's work slots). */
static uint32_t
stmt_of(const tg_tape *t, uint32_t r)
{
    return t->op[r] == TG_OP_XOUT && is_loop(t->op[t->a[r]]) ? t->a[r] : r;
}

/* r is an output of a loop (not of a user-function CALL). */
static bool
loop_out(const tg_tape *t, uint32_t r)
{
    return t->op[r] == TG_OP_XOUT && is_loop(t->op[t->a[r]]);
}

/* No statement: an input, or a constant (of the pool or folded here). */
static bool
no_stmt(const cg_lowered *L, uint32_t r)
{
    return L->where[r] == CG_AT_CONST || L->t->op[r] == TG_OP_INPUT;
}

/* Instructions whose operands are all constants become constants, computed
 * here by the interpreter's own tape_eval_op: the C compiler would
 * otherwise fold such libm calls itself, correctly rounded (MPFR), which
 * may differ from the libm that tg_eval calls at run time. */
static void
fold_constants(cg_lowered *L)
{
    const tg_tape *t = L->t;
    for (uint32_t i = 0; i < t->n; i++) {
        uint8_t op = t->op[i];
        if (op == TG_OP_CONST) {
            L->where[i] = CG_AT_CONST;
            L->kval[i] = t->k[t->a[i]];
            continue;
        }
        if (op == TG_OP_INPUT || tape_is_x(op) || op == TG_OP_XOUT)
            continue;
        uint32_t o[3];
        cg_operands(t, i, o);
        bool all = true;
        for (int k = 0; k < tape_op_arity[op]; k++)
            all &= L->where[o[k]] == CG_AT_CONST;
        if (all) {
            L->where[i] = CG_AT_CONST;
            L->kval[i] = tape_eval_op((tg_opcode)op, L->kval[o[0]],
                                      tape_op_arity[op] > 1 ? L->kval[o[1]] : 0.0,
                                      tape_op_arity[op] > 2 ? L->kval[o[2]] : 0.0);
        }
    }
}

/* ------------------------------------------------------------- order */

typedef struct dfs {
    uint32_t ref;
    uint64_t next;      /* next operand to visit */
} dfs;

/* Appends the definitions of r's not yet defined dependencies, then r's. */
static void
visit(cg_lowered *L, uint8_t *done, dfs *stack, uint32_t r)
{
    const tg_tape *t = L->t;
    if (done[r] || no_stmt(L, r))
        return;
    uint32_t sp = 0;
    stack[sp++] = (dfs){ r, 0 };
    done[r] = 1;
    while (sp) {
        dfs *top = &stack[sp - 1];
        uint32_t i = top->ref;
        if (top->next < n_opnd(t, i)) {
            uint32_t o = stmt_of(t, opnd_at(t, i, top->next++));
            if (!done[o] && !no_stmt(L, o)) {
                done[o] = 1;
                stack[sp++] = (dfs){ o, 0 };
            }
            continue;
        }
        L->stmt[L->nstmt++] = (cg_stmt){ i, TG_NIL, 0 };
        sp--;
    }
}

/* How many outputs from j on store consecutive outputs of one loop that
 * lie in consecutive slots of one region (the ys, or the carry), within
 * one output block: one copy (1 for any other value). */
static uint32_t
out_run(const tg_tape *t, uint32_t j)
{
    uint32_t r = t->out_ref[j], el;
    if (!loop_out(t, r))
        return 1;
    uint32_t i = t->a[r], blk = tape_block_of(t->outb, t->noutb, j, &el);
    uint64_t end = (uint64_t)t->outb[blk].offset + t->outb[blk].size;
    const tape_xrec *x = tape_xrec_of(t, i);
    uint32_t nc = x->kind == TG_OP_SCAN ? x->nc : 0;
    bool carry = t->b[r] < nc;
    uint32_t n = 1;
    while (j + n < end && t->out_ref[j + n] == r + n && r + n <= i + x->nout
           && (t->b[r + n] < nc) == carry)
        n++;
    return n;
}

static int
order(cg_lowered *L)
{
    const tg_tape *t = L->t;
    uint8_t *done = mem_calloc((size_t)t->n + 1, 1);
    dfs *stack = mem_malloc(((size_t)t->n + 1) * sizeof *stack);
    if (!done || !stack) {
        mem_free(done);
        mem_free(stack);
        return -1;
    }
    for (uint32_t g = 0; g < t->nguard; g++) {     /* checked before any store */
        visit(L, done, stack, stmt_of(t, t->guard[g]));
        L->stmt[L->nstmt++] = (cg_stmt){ t->guard[g], CG_OUT_GUARD, 1 };
    }
    for (uint32_t k = 0; k < t->nxr && (t->xkinds & TAPE_XK_BGUARD); k++) {
        const tape_xrec *x = &t->xr[k];     /* loops whose bodies check guards: likewise */
        if (x->kind != TG_OP_CALL && cg_guarded(tape_body_of(t, x)))
            visit(L, done, stack, stmt_of(t, x->inst));
    }
    for (uint32_t j = 0; j < t->nout;) {
        uint32_t r = t->out_ref[j], n = out_run(t, j);
        visit(L, done, stack, stmt_of(t, r));
        L->stmt[L->nstmt++] = (cg_stmt){ r, j, n };
        j += n;
    }
    mem_free(done);
    mem_free(stack);
    return 0;
}

/* ------------------------------------------------------------- places */

/* def[i]: statement defining i; last[i]: last statement reading i. */
static void
def_and_last(const cg_lowered *L, uint32_t *def, uint32_t *last)
{
    const tg_tape *t = L->t;
    for (uint32_t s = 0; s < L->nstmt; s++) {
        uint32_t r = L->stmt[s].ref;
        if (L->stmt[s].out != TG_NIL) {
            last[r] = s;
            continue;
        }
        def[r] = s;
        for (uint64_t k = 0, n = n_opnd(t, r); k < n; k++)
            last[opnd_at(t, r, k)] = s;
    }
}

static int
places(cg_lowered *L, uint32_t part_size)
{
    const tg_tape *t = L->t;
    size_t n = (size_t)t->n + 1;
    uint32_t *def = mem_malloc(n * sizeof *def), *last = mem_malloc(n * sizeof *last);
    uint32_t *head = mem_malloc(((size_t)L->nstmt + 1) * sizeof *head);
    uint32_t *next = mem_malloc(n * sizeof *next), *freed = mem_malloc(n * sizeof *freed);
    if (!def || !last || !head || !next || !freed) {
        void *p[] = { def, last, head, next, freed };
        for (size_t i = 0; i < sizeof p / sizeof *p; i++)
            mem_free(p[i]);
        return -1;
    }
    def_and_last(L, def, last);
    for (uint32_t s = 0; s < L->nstmt; s++)
        head[s] = TG_NIL;
    for (uint32_t s = 0; s < L->nstmt; s++) {
        uint32_t r = L->stmt[s].ref;
        if (L->stmt[s].out != TG_NIL)
            continue;
        if (t->op[r] == TG_OP_CALL) {   /* its outputs: k slots of its own, below */
            L->where[r] = CG_AT_CALL;
            continue;
        }
        if (is_loop(t->op[r])) {
            L->where[r] = CG_AT_LOOP;
            continue;
        }
        bool crosses = last[r] / part_size != s / part_size;    /* >: uses follow the def */
        L->where[r] = crosses ? CG_AT_WORK : CG_AT_LOCAL;
        if (crosses) {
            next[r] = head[last[r]];
            head[last[r]] = r;
        }
    }
    /* slots: a value's slot is free after its last reading statement; a
     * statement may write the slot its own operand just released */
    uint32_t nfree = 0;
    for (uint32_t s = 0; s < L->nstmt; s++) {
        for (uint32_t v = head[s]; v != TG_NIL; v = next[v])
            freed[nfree++] = L->slot[v];
        uint32_t r = L->stmt[s].ref;
        if (L->stmt[s].out == TG_NIL && L->where[r] == CG_AT_WORK)
            L->slot[r] = nfree ? freed[--nfree] : L->work_len++;
        else if (L->stmt[s].out == TG_NIL && L->where[r] == CG_AT_CALL) {
            /* fresh slots, never recycled (a tape has few calls) */
            L->slot[r] = L->work_len;
            L->work_len += (uint32_t)tape_xrec_of(t, r)->nout;
        }
    }
    for (uint32_t i = 0; i < t->n; i++)
        if (t->op[i] == TG_OP_INPUT)
            L->where[i] = CG_AT_INPUT;
    mem_free(def);
    mem_free(last);
    mem_free(head);
    mem_free(next);
    mem_free(freed);
    return 0;
}

/* --------------------------------------------------------- sign facts */

enum { F_NZ = 1,        /* never +0 or -0 (NaN and Inf allowed) */
       F_NN = 2 };      /* never < 0 (+-0, NaN and +Inf allowed) */

/* Facts about op(a, b, c) from facts of its operands; conservative: an op
 * not listed proves nothing.  Every rule holds for all IEEE inputs in
 * round-to-nearest, underflow and overflow included. */
static uint8_t
fact_of(const cg_lowered *L, uint32_t i, const uint8_t *f)
{
    const tg_tape *t = L->t;
    uint32_t o[3];
    cg_operands(t, i, o);
    if (L->where[i] == CG_AT_CONST) {   /* nonzero in float too (the f32 kernels) */
        double v = L->kval[i];
        return (uint8_t)(((float)v != 0.0f ? F_NZ : 0) | (!(v < 0.0) ? F_NN : 0));
    }
    uint8_t fa = f[o[0]], fb = f[o[1]], fc = f[o[2]];
    const uint8_t POS = F_NZ | F_NN;
    switch ((tg_opcode)t->op[i]) {
    case TG_OP_ADD:     /* x > 0 plus y >= 0 is >= x; NaN stays NaN */
        if (((fa & POS) == POS && (fb & F_NN)) || ((fb & POS) == POS && (fa & F_NN)))
            return POS;
        return (fa & fb & F_NN);
    case TG_OP_MUL:     /* may underflow to 0: sign only */
        return (uint8_t)((o[0] == o[1] ? F_NN : 0) | (fa & fb & F_NN));
    case TG_OP_AZMUL:   /* +0 or a*b */
        return fa & fb & F_NN;
    case TG_OP_MIN:
    case TG_OP_MAX:     /* one of the operands */
        return fa & fb;
    case TG_OP_SELECT:
        return fb & fc;
    case TG_OP_NEG:
        return fa & F_NZ;
    case TG_OP_ABS:
        return (fa & F_NZ) | F_NN;
    case TG_OP_SIGNUM:  /* +-1 or NaN for a nonzero operand */
        return fa;
    case TG_OP_SQRT:    /* sqrt(-0) = -0, sqrt(tiny > 0) > 0 */
        return ((fa & POS) == POS) ? POS : F_NN;
    case TG_OP_COSH:    /* >= 1 or NaN */
        return POS;
    case TG_OP_HYPOT:   /* >= max(|a|, |b|) */
        return ((fa | fb) & F_NZ) ? POS : F_NN;
    case TG_OP_POWK:    /* x*x for 2, pow otherwise (may underflow) */
        return (L->where[o[1]] == CG_AT_CONST && L->kval[o[1]] == 2.0) ? F_NN : 0;
    case TG_OP_EXP:
    case TG_OP_ERFC:
    case TG_OP_ACOS:
    case TG_OP_ACOSH:
    case TG_OP_LT:
    case TG_OP_LE:
    case TG_OP_GT:
    case TG_OP_GE:
        return F_NN;
    default:
        return 0;
    }
}

/* A constant c with 1 <= |c| <= FLT_MAX (finite in float too): c*b is
 * never a zero unless b is one, so c*b + 0.0 changes only the zero
 * products, whose sign it makes azmul's +0 (NaN and Inf pass unchanged). */
static bool
big_const(const cg_lowered *L, uint32_t r)
{
    double v = L->kval[r];
    return L->where[r] == CG_AT_CONST && fabs(v) >= 1.0 && fabs(v) <= FLT_MAX;
}

static int
products(cg_lowered *L)
{
    const tg_tape *t = L->t;
    uint8_t *f = mem_calloc((size_t)t->n + 1, 1);
    if (!f)
        return -1;
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->op[i] == TG_OP_INPUT || tape_is_x(t->op[i]) || t->op[i] == TG_OP_XOUT)
            continue;
        f[i] = fact_of(L, i, f);
        if (t->op[i] != TG_OP_AZMUL || L->where[i] == CG_AT_CONST)
            continue;
        uint32_t a = t->a[i], b = t->b[i];
        if ((f[a] & f[b] & F_NZ))
            L->mul[i] = CG_AZ_PLAIN;
        else if (big_const(L, a) || big_const(L, b))
            L->mul[i] = CG_AZ_PLUS0;
    }
    mem_free(f);
    return 0;
}

/* ------------------------------------------------------------- loops */

/* A new region of len slots at the end of the work array so far. */
static uint32_t
new_region(cg_lowered *L, uint64_t *end, uint64_t len, uint32_t *cap)
{
    if (tape_grow((void **)&L->reg, cap, (uint64_t)L->nreg + 1, sizeof *L->reg))
        return TG_NIL;
    L->reg[L->nreg] = (cg_region){ *end, len };
    *end += len;
    return L->nreg++;
}

/* The region holding work slot p (regions ascend and are contiguous). */
static uint32_t
region_of(const cg_lowered *L, uint64_t p)
{
    uint32_t lo = 0, hi = L->nreg;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (L->reg[mid].base <= p)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Whether the n values refs[0 .. n) are elements pos .. pos + n - 1 of one
 * array: an input block, or one region of loop outputs. */
static bool
window(const cg_lowered *L, const uint32_t *refs, uint32_t n, cg_win *w)
{
    const tg_tape *t = L->t;
    memset(w, 0, sizeof *w);
    if (n == 0)
        return true;            /* CG_SRC_NONE */
    uint32_t r0 = refs[0];
    if (t->op[r0] == TG_OP_INPUT) {
        uint32_t el, blk = tape_block_of(t->inb, t->ninb, t->a[r0], &el);
        if ((uint64_t)el + n > t->inb[blk].size)
            return false;
        for (uint32_t e = 1; e < n; e++)
            if (t->op[refs[e]] != TG_OP_INPUT || t->a[refs[e]] != t->a[r0] + e)
                return false;
        *w = (cg_win){ CG_SRC_INPUT, blk, 0, el };
        return true;
    }
    if (!loop_out(t, r0) || L->where[r0] != CG_AT_WORK)
        return false;
    uint32_t reg = region_of(L, L->slot[r0]);
    if ((uint64_t)L->slot[r0] + n > L->reg[reg].base + L->reg[reg].len)
        return false;
    for (uint32_t e = 1; e < n; e++)
        if (!loop_out(t, refs[e]) || L->where[refs[e]] != CG_AT_WORK
            || L->slot[refs[e]] != L->slot[r0] + e)
            return false;
    *w = (cg_win){ CG_SRC_WORK, 0, reg, L->slot[r0] };
    return true;
}

/* The array position of value r (an input, or a loop output in a region):
 * w, or false. */
static bool
place_of(const cg_lowered *L, uint32_t r, cg_win *w)
{
    const tg_tape *t = L->t;
    if (t->op[r] == TG_OP_INPUT) {
        uint32_t el, blk = tape_block_of(t->inb, t->ninb, t->a[r], &el);
        *w = (cg_win){ CG_SRC_INPUT, blk, 0, el };
        return true;
    }
    if (loop_out(t, r) && L->where[r] == CG_AT_WORK) {
        *w = (cg_win){ CG_SRC_WORK, 0, region_of(L, L->slot[r]), L->slot[r] };
        return true;
    }
    return false;
}

/* The n refs of one step's block as pieces, in block order, into pc:
 * maximal runs of consecutive elements of one array, single other
 * values.  Returns the number of pieces. */
static uint32_t
decompose(const cg_lowered *L, const uint32_t *refs, uint32_t n, cg_piece *pc)
{
    uint32_t np = 0;
    for (uint32_t e = 0; e < n; e++) {
        cg_win w;
        if (!place_of(L, refs[e], &w)) {
            pc[np++] = (cg_piece){ .w = { CG_SRC_REF, 0, 0, 0 }, .ref = refs[e], .e = e, .len = 1 };
            continue;
        }
        cg_piece *q = np ? &pc[np - 1] : NULL;
        if (q && q->w.src == w.src && q->w.blk == w.blk && q->w.reg == w.reg
            && q->w.pos + q->len == w.pos) {
            q->len++;
            continue;
        }
        pc[np++] = (cg_piece){ .w = w, .ref = refs[e], .e = e, .len = 1 };
    }
    return np;
}

/* Step k (pieces pc) joins segment g: the same pieces, windows moving by
 * a constant stride; a value that changes is marked to be gathered. */
static bool
joins(cg_seg *g, const cg_piece *pc, uint32_t npc, uint64_t k)
{
    if (npc != g->npc)
        return false;
    for (uint32_t i = 0; i < npc; i++) {
        const cg_piece *a = &g->pc[i], *b = &pc[i];
        if (a->w.src != b->w.src || a->len != b->len || a->e != b->e || a->w.blk != b->w.blk
            || a->w.reg != b->w.reg)
            return false;
        if (a->w.src != CG_SRC_REF && g->k1 - g->k0 > 1
            && (int64_t)b->w.pos - (int64_t)a->w.pos != a->stride * (int64_t)(k - g->k0))
            return false;
    }
    for (uint32_t i = 0; i < npc; i++) {
        cg_piece *a = &g->pc[i];
        if (a->w.src == CG_SRC_REF)
            a->vary |= a->ref != pc[i].ref;
        else if (g->k1 - g->k0 == 1)
            a->stride = (int64_t)pc[i].w.pos - (int64_t)a->w.pos;
    }
    g->k1 = k + 1;
    return true;
}

/* Segment g's regions: its varying values gathered into rv (nv per step,
 * as windows of stride nv), adjacent windows merged, and a staging region
 * when the block is not one window. */
static int
seg_finish(cg_lowered *L, cg_seg *g, uint32_t nx, uint64_t *end, uint32_t *cap)
{
    g->rx = g->rv = TG_NIL;
    g->nv = 0;
    for (uint32_t i = 0; i < g->npc; i++)
        g->nv += g->pc[i].vary;
    if (g->nv && (g->rv = new_region(L, end, (g->k1 - g->k0) * g->nv, cap)) == TG_NIL)
        return -1;
    uint32_t v = 0, n = 0;
    for (uint32_t i = 0; i < g->npc; i++) {
        cg_piece p = g->pc[i];
        if (p.vary)
            p = (cg_piece){ .w = { CG_SRC_WORK, 0, g->rv, L->reg[g->rv].base + v++ }, .e = p.e,
                            .len = 1, .stride = g->nv, .gathered = true };
        cg_piece *q = n ? &g->pc[n - 1] : NULL;
        if (q && p.w.src != CG_SRC_REF && q->w.src == p.w.src && q->w.blk == p.w.blk
            && q->w.reg == p.w.reg && q->stride == p.stride && q->w.pos + q->len == p.w.pos) {
            q->len += p.len;
            continue;
        }
        g->pc[n++] = p;
    }
    g->npc = n;
    bool direct = n == 0 || (n == 1 && g->pc[0].w.src != CG_SRC_REF && g->pc[0].len == nx);
    if (!direct && (g->rx = new_region(L, end, nx, cap)) == TG_NIL)
        return -1;
    return 0;
}

/* The segments of loop lp's x blocks (xs at operand xoff). */
static int
segments(cg_lowered *L, cg_loop *lp, uint64_t xoff, uint64_t *end, uint32_t *cap)
{
    uint64_t segcap = 0;
    cg_piece *pc = mem_malloc(((size_t)lp->nx + 1) * sizeof *pc);
    if (!pc)
        return -1;
    lp->nseg = 0;
    for (uint64_t k = 0; k < lp->count; k++) {
        uint32_t npc = decompose(L, lp->ops + xoff + k * lp->nx, lp->nx, pc);
        if (lp->nseg && joins(&lp->seg[lp->nseg - 1], pc, npc, k))
            continue;
        if (lp->nseg == segcap) {
            segcap = segcap ? 2 * segcap : 4;
            cg_seg *ns = mem_realloc(lp->seg, segcap * sizeof *ns);
            if (!ns)
                return mem_free(pc), -1;
            lp->seg = ns;
        }
        cg_seg *g = &lp->seg[lp->nseg];
        *g = (cg_seg){ k, k + 1, mem_malloc(((size_t)npc + 1) * sizeof *pc), npc, TG_NIL, TG_NIL, 0 };
        if (!g->pc)
            return mem_free(pc), -1;
        lp->nseg++;
        memcpy(g->pc, pc, npc * sizeof *pc);
    }
    mem_free(pc);
    for (uint64_t s = 0; s < lp->nseg; s++)
        if (seg_finish(L, &lp->seg[s], lp->nx, end, cap))
            return -1;
    return 0;
}

/* The plan of the loop at instruction i: regions, params, segments; and
 * its outputs' slots. */
static int
loop_plan(cg_lowered *L, uint32_t i, cg_loop *lp, uint64_t *end, uint32_t *cap)
{
    const tg_tape *t = L->t;
    const tape_xrec *x = tape_xrec_of(t, i);
    bool scan = x->kind == TG_OP_SCAN;
    memset(lp, 0, sizeof *lp);
    *lp = (cg_loop){ .inst = i, .body = x->body, .op = x->kind, .count = x->count,
                     .nc = scan ? x->nc : 0, .nx = x->nx, .np = x->np, .ny = x->ny,
                     .ops = tape_xops(t, x), .rc = TG_NIL, .rn = TG_NIL, .rp = TG_NIL };
    if (scan && ((lp->rc = new_region(L, end, lp->nc, cap)) == TG_NIL
                 || (lp->rn = new_region(L, end, lp->nc, cap)) == TG_NIL))
        return -1;
    if ((lp->ry = new_region(L, end, lp->count * lp->ny, cap)) == TG_NIL)
        return -1;
    uint64_t xoff = lp->nc, poff = xoff + lp->count * lp->nx;
    if (!window(L, lp->ops + poff, lp->np, &lp->p)) {
        if ((lp->rp = new_region(L, end, lp->np, cap)) == TG_NIL)
            return -1;
        lp->p = (cg_win){ CG_SRC_WORK, 0, lp->rp, L->reg[lp->rp].base };
    }
    if (segments(L, lp, xoff, end, cap))
        return -1;
    /* the final carry is where the last swap left it */
    uint64_t c = lp->nc ? L->reg[lp->count % 2 ? lp->rn : lp->rc].base : 0;
    for (uint64_t k = 0; k < x->nout; k++) {
        uint32_t o = i + 1 + (uint32_t)k;
        L->where[o] = CG_AT_WORK;
        L->slot[o] = (uint32_t)(k < lp->nc ? c + k : L->reg[lp->ry].base + (k - lp->nc));
    }
    return 0;
}

/* Whether body tape b has the blocks a loop calls it with. */
static bool
body_fits(const tg_tape *b, const cg_loop *lp)
{
    bool scan = lp->op == TG_OP_SCAN;
    uint32_t in[3] = { lp->nc, lp->nx, lp->np }, out[2] = { lp->nc, lp->ny };
    const uint32_t *wi = scan ? in : in + 1, *wo = scan ? out : out + 1;
    if (b->ninb != (scan ? 3u : 2u) || b->noutb != (scan ? 2u : 1u))
        return false;
    for (uint32_t k = 0; k < b->ninb; k++)
        if (b->inb[k].size != wi[k])
            return false;
    for (uint32_t k = 0; k < b->noutb; k++)
        if (b->outb[k].size != wo[k])
            return false;
    return true;
}

/* Plans every loop statement in statement order (an operand's loop comes
 * first, so its outputs' slots are known), lowers the bodies they call,
 * and lays the regions out after the scalar slots, the bodies' scratch
 * last. */
static tg_status
loop_plans(cg_lowered *L, uint32_t part_size)
{
    const tg_tape *t = L->t;
    uint32_t nl = 0, regcap = 0;
    for (uint32_t s = 0; s < L->nstmt; s++)
        nl += L->stmt[s].out == TG_NIL && L->where[L->stmt[s].ref] == CG_AT_LOOP;
    L->rs = TG_NIL;
    if (nl == 0)
        return TG_OK;
    L->nbody = t->nbodies;
    L->loop = mem_calloc(nl, sizeof *L->loop);
    L->body = mem_calloc((size_t)L->nbody + 1, sizeof *L->body);
    L->used = mem_calloc((size_t)L->nbody + 1, 1);
    if (!L->loop || !L->body || !L->used)
        return TG_ERR_NOMEM;
    uint64_t end = L->work_len, scratch = 0;
    for (uint32_t s = 0; s < L->nstmt; s++) {
        uint32_t r = L->stmt[s].ref;
        if (L->stmt[s].out != TG_NIL || L->where[r] != CG_AT_LOOP)
            continue;
        cg_loop *lp = &L->loop[L->nloop];
        L->slot[r] = L->nloop++;
        if (loop_plan(L, r, lp, &end, &regcap))
            return TG_ERR_NOMEM;
        const tg_tape *b = lp->body < L->nbody ? t->bodies[lp->body] : NULL;
        if (!b || !body_fits(b, lp))
            return TG_ERR_UNSUPPORTED;
        if (lp->count == 0)     /* never called: no function (no unused code) */
            continue;
        if (!L->used[lp->body]) {
            tg_status st = cg_lower(&L->body[lp->body], b, part_size);
            L->used[lp->body] = 1;
            if (st != TG_OK)
                return st;
        }
        if (L->body[lp->body].work_len > scratch)
            scratch = L->body[lp->body].work_len;
    }
    if ((L->rs = new_region(L, &end, scratch, &regcap)) == TG_NIL)
        return TG_ERR_NOMEM;
    if (end > UINT32_MAX - 1)
        return TG_ERR_LIMIT;
    L->work_len = (uint32_t)end;
    return TG_OK;
}

/* ----------------------------------------------------- loops: queries */

void
cg_loop_gathers(const cg_lowered *L, const cg_loop *lp, cg_gather_fn f, void *ctx)
{
    for (uint32_t e = 0; e < lp->nc; e++)
        f(ctx, L->reg[lp->rc].base + e, lp->ops[e]);
    uint64_t xoff = lp->nc, poff = xoff + lp->count * lp->nx;
    if (lp->rp != TG_NIL)
        for (uint32_t e = 0; e < lp->np; e++)
            f(ctx, L->reg[lp->rp].base + e, lp->ops[poff + e]);
    for (uint64_t s = 0; s < lp->nseg; s++) {
        const cg_seg *g = &lp->seg[s];
        for (uint32_t i = 0; i < g->npc; i++) {
            const cg_piece *p = &g->pc[i];
            if (p->w.src == CG_SRC_REF)
                f(ctx, L->reg[g->rx].base + p->e, p->ref);
            for (uint64_t k = g->k0; p->gathered && k < g->k1; k++)
                for (uint32_t j = 0; j < p->len; j++)
                    f(ctx, p->w.pos + (uint64_t)p->stride * (k - g->k0) + j,
                      lp->ops[xoff + k * lp->nx + p->e + j]);
        }
    }
}

static void
add_reg(const cg_lowered *L, uint32_t r, uint32_t *out, uint32_t *n)
{
    if (r == TG_NIL || L->reg[r].len == 0)
        return;
    for (uint32_t i = 0; i < *n; i++)
        if (out[i] == r)
            return;
    uint32_t i = (*n)++;
    while (i > 0 && out[i - 1] > r) {   /* regions ascend with their index */
        out[i] = out[i - 1];
        i--;
    }
    out[i] = r;
}

uint64_t
cg_loop_nregions(const cg_loop *lp)
{
    uint64_t n = 6;
    for (uint64_t s = 0; s < lp->nseg; s++)
        n += 1 + lp->seg[s].npc;
    return n;
}

uint32_t
cg_loop_regions(const cg_lowered *L, const cg_loop *lp, uint32_t *out)
{
    uint32_t n = 0;
    add_reg(L, lp->rc, out, &n);
    add_reg(L, lp->rn, out, &n);
    add_reg(L, lp->ry, out, &n);
    if (L->body[lp->body].work_len)
        add_reg(L, L->rs, out, &n);
    if (lp->p.src == CG_SRC_WORK)
        add_reg(L, lp->p.reg, out, &n);
    for (uint64_t s = 0; s < lp->nseg; s++) {
        const cg_seg *g = &lp->seg[s];
        add_reg(L, g->rx, out, &n);
        for (uint32_t i = 0; i < g->npc; i++)
            if (g->pc[i].w.src == CG_SRC_WORK)
                add_reg(L, g->pc[i].w.reg, out, &n);
    }
    return n;
}

/* ------------------------------------------------------------- entry */

tg_status
cg_lower(cg_lowered *L, const tg_tape *t, uint32_t part_size)
{
    memset(L, 0, sizeof *L);
    L->t = t;
    if (part_size == 0)
        part_size = 1;
    size_t n = (size_t)t->n + 1, ns = (size_t)t->n + t->nout + t->nguard + 1;
    L->stmt = mem_malloc(ns * sizeof *L->stmt);
    L->where = mem_calloc(n, 1);
    L->mul = mem_calloc(n, 1);
    L->slot = mem_calloc(n, sizeof *L->slot);
    L->kval = mem_calloc(n, sizeof *L->kval);
    if (!L->stmt || !L->where || !L->mul || !L->slot || !L->kval)
        return TG_ERR_NOMEM;
    fold_constants(L);
    if (order(L) || places(L, part_size) || products(L))
        return TG_ERR_NOMEM;
    tg_status st = loop_plans(L, part_size);
    if (st != TG_OK)
        return st;
    L->npart = L->nstmt ? (L->nstmt + part_size - 1) / part_size : 1;
    L->part = mem_malloc(((size_t)L->npart + 1) * sizeof *L->part);
    if (!L->part)
        return TG_ERR_NOMEM;
    for (uint32_t p = 0; p < L->npart; p++)
        L->part[p] = p * part_size;
    L->part[L->npart] = L->nstmt;
    return TG_OK;
}

void
cg_lowered_free(cg_lowered *L)
{
    mem_free(L->stmt);
    mem_free(L->part);
    mem_free(L->where);
    mem_free(L->mul);
    mem_free(L->slot);
    mem_free(L->kval);
    for (uint32_t j = 0; L->body && L->used && j < L->nbody; j++)
        if (L->used[j])
            cg_lowered_free(&L->body[j]);
    for (uint32_t l = 0; l < L->nloop; l++) {
        for (uint64_t g = 0; L->loop[l].seg && g < L->loop[l].nseg; g++)
            mem_free(L->loop[l].seg[g].pc);
        mem_free(L->loop[l].seg);
    }
    mem_free(L->loop);
    mem_free(L->reg);
    mem_free(L->body);
    mem_free(L->used);
    memset(L, 0, sizeof *L);
}

const char *
cg_lower_why(tg_status s)
{
    switch (s) {
    case TG_ERR_LIMIT:
        return "the work array would exceed 2^32 - 2 values";
    case TG_ERR_UNSUPPORTED:
        return "a loop body lacks the blocks of its loop";
    default:
        return "out of memory";
    }
}
