/* src/tape/mathx.h -- the exact semantics of every opcode as one inline
 * function, expanded from the opcode table.  The interpreter, the constant
 * folder and the derivative rules all call tape_eval_op, so folding can
 * never disagree with evaluation.  Generated Rust reproduces the mathx_*
 * helpers below literally. */
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

/* pow with a literal exponent: x*x for 2 (the correctly rounded square, so
 * pow(x, 2) and x*x agree bit for bit), libm's pow otherwise. */
static inline double
mathx_powk(double x, double c)
{
    return c == 2.0 ? x * x : pow(x, c);
}

/* min/max ignore a NaN operand like C's fmin/fmax, and return the first
 * operand on ties (fmin/fmax leave +-0 unspecified; we pin it down). */
static inline double
mathx_min(double a, double b)
{
    return (a <= b || isnan(b)) ? a : b;
}

static inline double
mathx_max(double a, double b)
{
    return (a >= b || isnan(b)) ? a : b;
}

/* CppAD's azmul: an exact zero factor wins over Inf and NaN.  The
 * non-short-circuit & lets compilers use compare masks instead of a branch
 * per factor. */
MATHX_INLINE double
mathx_azmul(double a, double b)
{
    return ((a != 0.0) & (b != 0.0)) ? a * b : 0.0;
}

static inline double
mathx_signum(double x)
{
    return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x == 0.0 ? 0.0 : x;
}

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
    case TG_OP_COUNT:
        break;
    }
    return NAN;
}

#endif
