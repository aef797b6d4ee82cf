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
 *    interpreter's code. */
#ifndef TG_CODEGEN_LOWER_H
#define TG_CODEGEN_LOWER_H

#include "tape/internal.h"

/* Where a value lives. */
enum {
    CG_AT_CONST = 1,    /* a constant (of the pool, or an op of constants folded
                           by the lowering), spelt as a literal: kval */
    CG_AT_INPUT,        /* x[...], an input read where used */
    CG_AT_LOCAL,        /* a local of the part that defines it */
    CG_AT_WORK          /* work[slot] */
};

/* How an AZMUL instruction may be spelt (cg_lowered.mul). */
enum {
    CG_AZ_GUARD = 0,    /* the mathx_azmul helper */
    CG_AZ_PLAIN,        /* a * b: both factors are never +-0 */
    CG_AZ_PLUS0         /* a * b + 0.0: one factor is a constant with 1 <= |c| < Inf */
};

/* One statement: the definition of value `ref`, or (out != TG_NIL) the
 * store of value `ref` into output `out`, or (out == CG_OUT_GUARD) the
 * check of branch guard `ref` (tg_branch): the kernel returns the branch
 * error when its value is not 1.  Guards and their checks come first, so
 * a failing kernel has written no output. */
#define CG_OUT_GUARD (TG_NIL - 1)
typedef struct cg_stmt {
    uint32_t ref;
    uint32_t out;
} cg_stmt;

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
    uint32_t work_len;  /* work slots used */
} cg_lowered;

/* Lowers t (status TG_OK) with parts of at most part_size >= 1 statements.
 * Linear time and memory, no recursion.  TG_ERR_NOMEM leaves L freeable. */
tg_status cg_lower(cg_lowered *L, const tg_tape *t, uint32_t part_size);
void      cg_lowered_free(cg_lowered *L);

/* Operands of instruction i as an array (arity from tape_op_arity). */
static inline void
cg_operands(const tg_tape *t, uint32_t i, uint32_t opnd[3])
{
    opnd[0] = t->a[i];
    opnd[1] = t->b[i];
    opnd[2] = t->c[i];
}

#endif
