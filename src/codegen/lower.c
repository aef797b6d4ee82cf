/* src/codegen/lower.c -- a tape to ordered statements, parts and slots
 * (see lower.h).  Four linear passes, explicit stacks only (a chain of a
 * million instructions lowers under a small C stack):
 *  1. depth-first post-order from each output, operands a, b, c in turn;
 *  2. statement index of each definition and of each value's last use;
 *  3. local or work slot: a work slot when the last use is in a later part;
 *     slots freed after their last use and reused LIFO;
 *  4. sign facts, forwards, to spell AZMUL without its guard where exact. */
#include <float.h>
#include <math.h>

#include "codegen/lower.h"
#include "tape/alloc.h"
#include "tape/mathx.h"

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
        if (op == TG_OP_INPUT)
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
    uint8_t next;       /* next operand to visit */
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
        uint32_t i = top->ref, opnd[3];
        cg_operands(t, i, opnd);
        if (top->next < tape_op_arity[t->op[i]]) {
            uint32_t o = opnd[top->next++];
            if (!done[o] && !no_stmt(L, o)) {
                done[o] = 1;
                stack[sp++] = (dfs){ o, 0 };
            }
            continue;
        }
        L->stmt[L->nstmt++] = (cg_stmt){ i, TG_NIL };
        sp--;
    }
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
        visit(L, done, stack, t->guard[g]);
        L->stmt[L->nstmt++] = (cg_stmt){ t->guard[g], CG_OUT_GUARD };
    }
    for (uint32_t j = 0; j < t->nout; j++) {
        visit(L, done, stack, t->out_ref[j]);
        L->stmt[L->nstmt++] = (cg_stmt){ t->out_ref[j], j };
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
        uint32_t opnd[3];
        cg_operands(t, r, opnd);
        for (int k = 0; k < tape_op_arity[t->op[r]]; k++)
            last[opnd[k]] = s;
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
        if (t->op[i] == TG_OP_INPUT)
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
    memset(L, 0, sizeof *L);
}
