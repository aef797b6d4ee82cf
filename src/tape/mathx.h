/* src/tape/mathx.h -- the exact semantics of every opcode as one inline
 * function, expanded from the opcode table.  The interpreter, the constant
 * folder and the derivative rules all call tape_eval_op, so folding can
 * never disagree with evaluation.  The mathx_* helpers live in mathx.def,
 * whose text generated C copies verbatim; generated Rust reproduces them
 * literally. */
#ifndef TG_TAPE_MATHX_H
#define TG_TAPE_MATHX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tapegen.h"

/* Inlined into every sweep handler so that a rule such as F2(DIV, K(1), B)
 * compiles to one division, not a call through the op switch. */
#if defined(__GNUC__)
#define MATHX_INLINE static inline __attribute__((always_inline))
#else
#define MATHX_INLINE static inline
#endif

/* The helpers (mathx_powk, mathx_min, mathx_max, mathx_azmul, mathx_signum,
 * and the partials mathx_powdx, mathx_powdy, mathx_hypotdx, mathx_atan2dx),
 * shared verbatim with generated C. */
#define HELPER(name, ...) __VA_ARGS__
#include "tape/mathx.def"

/* The value of op on operand values A, B, C (unused ones are ignored).
 * Leaves have no value here; callers handle them. */
MATHX_INLINE double
tape_eval_op(tg_opcode op, double A, double B, double C)
{
    (void)B;
    (void)C;
    switch (op) {
#define OP(NAME, name, ar, fl, expr, rs) case TG_OP_##NAME: return (expr);
#include "tapegen/ops.def"
    case TG_OP_CONST:
    case TG_OP_INPUT:
    case TG_OP_MAP:     /* extended: no scalar expression (ops.def) */
    case TG_OP_SCAN:
    case TG_OP_CALL:
    case TG_OP_XOUT:
    case TG_OP_COUNT:
        break;
    }
    return NAN;
}

#endif
