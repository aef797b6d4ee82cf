/* src/codegen/lower.h -- one tape lowered for the code generators.
 *
 * The lowering is the only place that decides WHAT code is generated: the
 * order of the statements, where each value lives, how the statements are
 * cut into parts, and which products need no absolute-zero guard.  The
 * backends (rust.c via emit.c, c.c) only spell it.
 *
 *  - Statements come in depth-first order from the branch guards, each
 *    followed by its check, then from the outputs (output 0 first):
 *    each value is defined just before its first use, so values live short
 *    and the C/Rust compilers' register allocation stays local.
 *  - Statements are cut into parts of at most part_size statements; each
 *    part becomes one non-inlined function, so compile time grows linearly.
 *  - A value used only inside the part that defines it is a local there; a
 *    value read in a later part lives in a work slot, slots being reused
 *    once their value is dead (liveness, LIFO).
 *  - Inputs and constants are no statements: backends spell them where
 *    they are used.  Ops of constants only are evaluated here, by the
 *    interpreter's code.
 *  - A loop (MAP, SCAN) is one statement; its body is lowered once, on its
 *    own (L->body), and becomes one function of the backend, which the
 *    loop statement calls once per application/step (cg_loop).  Loop data
 *    lives in work REGIONS that are never reused: the carry and the next
 *    carry (swapped after every step), the ys, the xs and params that had
 *    to be gathered, and one scratch region shared by every loop of the
 *    tape for the body's own work.  The outputs (XOUT) of a loop are no
 *    statements: work slots in its regions.  So the code of a loop does not
 *    grow with its trip count: the xs of consecutive steps are read where
 *    they already are (an input block, the ys of an earlier loop) whenever
 *    they form windows at a constant stride (segments), and consecutive
 *    outputs of a loop stored to consecutive outputs are one copy. */
#ifndef TG_CODEGEN_LOWER_H
#define TG_CODEGEN_LOWER_H

#include "tape/internal.h"

/* Where a value lives. */
enum {
    CG_AT_CONST = 1,    /* a constant (of the pool, or an op of constants folded
                           by the lowering), spelt as a literal: kval */
    CG_AT_INPUT,        /* x[...], an input read where used */
    CG_AT_LOCAL,        /* a local of the part that defines it */
    CG_AT_WORK,         /* work[slot] */
    CG_AT_CALL,         /* a user-function CALL statement: it writes its k outputs
                           to work[slot .. slot + k), which its XOUTs read */
    CG_AT_LOOP          /* a MAP/SCAN statement: slot = its index in L->loop */
};

/* How an AZMUL instruction may be spelt (cg_lowered.mul). */
enum {
    CG_AZ_GUARD = 0,    /* the mathx_azmul helper */
    CG_AZ_PLAIN,        /* a * b: both factors are never +-0 */
    CG_AZ_PLUS0         /* a * b + 0.0: one factor is a constant with 1 <= |c| < Inf */
};

/* One statement: the definition of value `ref`, or (out != TG_NIL) the
 * store of value `ref` into output `out`; with nout > 1, the store of the
 * nout loop outputs in consecutive work slots from slot[ref] into outputs
 * out .. out + nout - 1 (one output block); or (out == CG_OUT_GUARD) the
 * check of branch guard `ref` (tg_branch): the kernel returns the branch
 * error when its value is not 1.  Guards and their checks come first, so
 * a failing kernel has written no output. */
#define CG_OUT_GUARD (TG_NIL - 1)
typedef struct cg_stmt {
    uint32_t ref;
    uint32_t out;
    uint32_t nout;
} cg_stmt;

/* Where loop data is read from (cg_win.src, cg_piece.src). */
enum {
    CG_SRC_NONE = 0,    /* an empty block */
    CG_SRC_INPUT,       /* input block blk of the tape, from element pos */
    CG_SRC_WORK,        /* work[pos ..], inside region reg */
    CG_SRC_REF          /* one value, the same at every step: ref */
};

/* A window: the elements pos, pos + 1, ... of one array. */
typedef struct cg_win {
    uint8_t src;        /* CG_SRC_NONE, CG_SRC_INPUT, CG_SRC_WORK */
    uint32_t blk;       /* CG_SRC_INPUT: the input block */
    uint32_t reg;       /* CG_SRC_WORK: the region holding the window */
    uint64_t pos;       /* CG_SRC_INPUT: element of the block; CG_SRC_WORK: work slot */
} cg_win;

/* Elements e .. e + len - 1 of a step's x block: a window moving by
 * stride per step (w.pos at the segment's first step), or (CG_SRC_REF)
 * one value. */
typedef struct cg_piece {
    cg_win w;           /* w.src CG_SRC_REF: the value is ref */
    uint32_t ref;
    uint32_t e, len;
    int64_t stride;
    bool gathered;      /* a window of rv filled by the gathers */
    bool vary;          /* planning: a CG_SRC_REF whose value changes between steps */
} cg_piece;

/* Steps k0 .. k1 - 1 of a loop, whose x blocks have the same pieces.
 * rx == TG_NIL: the block is one window (pc[0]; no piece: nx == 0), passed
 * in place.  Otherwise each step copies its window pieces into region rx
 * (nx slots, the fixed values already there) and passes rx.  Values that
 * are in no array are gathered into region rv, nv per step. */
typedef struct cg_seg {
    uint64_t k0, k1;
    cg_piece *pc;
    uint32_t npc;
    uint32_t rx, rv, nv;
} cg_seg;

/* A range of work slots kept for loop data (never reused). */
typedef struct cg_region {
    uint64_t base, len;
} cg_region;

/* One MAP/SCAN statement. */
typedef struct cg_loop {
    uint32_t inst;      /* the instruction */
    uint32_t body;      /* index of the body (t's table, L->body) */
    uint8_t op;         /* TG_OP_MAP or TG_OP_SCAN */
    uint64_t count;     /* applications / steps */
    uint32_t nc, nx, np, ny;
    const uint32_t *ops;        /* the operand list (tape_xops) */
    uint32_t rc, rn;    /* regions of the carry and the next carry (scan), else TG_NIL */
    uint32_t ry;        /* region of the ys */
    uint32_t rp;        /* region of the gathered params, TG_NIL if none */
    cg_win p;           /* the params (in rp when gathered) */
    cg_seg *seg;        /* the steps in order, in segments */
    uint64_t nseg;
} cg_loop;

typedef struct cg_lowered {
    const tg_tape *t;
    cg_stmt *stmt;
    uint32_t nstmt;
    uint32_t *part;     /* npart + 1 entries: part p is stmt[part[p] .. part[p+1]) */
    uint32_t npart;     /* >= 1 (an empty kernel has one empty part) */
    uint8_t *where;     /* per instruction: CG_AT_*, 0 for dead instructions */
    uint8_t *mul;       /* per instruction: CG_AZ_* for AZMUL instructions */
    uint32_t *slot;     /* per instruction: the work slot when CG_AT_WORK */
    double *kval;       /* per instruction: the value when CG_AT_CONST */
    uint32_t work_len;  /* work slots used (scalars, then regions, then scratch) */
    /* loops (all empty for a tape without any) */
    cg_loop *loop;
    uint32_t nloop;
    cg_region *reg;
    uint32_t nreg;
    uint32_t rs;        /* the scratch region of the bodies (TG_NIL: no loop) */
    struct cg_lowered *body;    /* per body of t: its lowering (used[j] set) */
    uint8_t *used;      /* per body: called by a live loop */
    uint32_t nbody;
} cg_lowered;

/* Lowers t (status TG_OK) with parts of at most part_size >= 1 statements,
 * and its used bodies likewise.  Linear time and memory, no recursion but
 * over the nesting of bodies.  TG_ERR_NOMEM (TG_ERR_LIMIT: work beyond
 * 2^32 - 1 slots) leaves L freeable. */
tg_status cg_lower(cg_lowered *L, const tg_tape *t, uint32_t part_size);
void      cg_lowered_free(cg_lowered *L);
/* Why cg_lower returned s, for messages. */
const char *cg_lower_why(tg_status s);

/* t's generated code can fail a branch guard (TG_ERR_BRANCH): its own
 * guards, or guards inside its loop bodies at any depth (the body
 * function then returns the failure, and its loop returns it at once).
 * The lowering orders such loops with the guards, before any store. */
static inline bool
cg_guarded(const tg_tape *t)
{
    return t->nguard || (t->xkinds & TAPE_XK_BGUARD);
}

/* The values loop lp copies into its regions before its first step (the
 * carry in, params that are no window, the fixed and the gathered values
 * of the x blocks): f(ctx, slot, ref) for each, in order. */
typedef void (*cg_gather_fn)(void *ctx, uint64_t slot, uint32_t ref);
void cg_loop_gathers(const cg_lowered *L, const cg_loop *lp, cg_gather_fn f, void *ctx);

/* The non-empty regions the steps of lp read or write, ascending (so
 * disjoint), into out (room for cg_loop_nregions(lp)): returns how many. */
uint64_t cg_loop_nregions(const cg_loop *lp);
uint32_t cg_loop_regions(const cg_lowered *L, const cg_loop *lp, uint32_t *out);

/* The operands a statement of instruction i reads: a CALL's operand list,
 * an XOUT's CALL, else tape_op_arity[op] of a, b, c. */
static inline uint32_t
cg_nopnd(const tg_tape *t, uint32_t i)
{
    uint8_t op = t->op[i];
    return op == TG_OP_CALL ? (uint32_t)tape_xrec_of(t, i)->nops : (uint32_t)tape_op_arity[op];
}

static inline uint32_t
cg_opnd(const tg_tape *t, uint32_t i, uint32_t k)
{
    if (t->op[i] == TG_OP_CALL)
        return tape_xops(t, tape_xrec_of(t, i))[k];
    return k == 0 ? t->a[i] : k == 1 ? t->b[i] : t->c[i];
}

/* Operands of instruction i as an array (arity from tape_op_arity). */
static inline void
cg_operands(const tg_tape *t, uint32_t i, uint32_t opnd[3])
{
    opnd[0] = t->a[i];
    opnd[1] = t->b[i];
    opnd[2] = t->c[i];
}

#endif
