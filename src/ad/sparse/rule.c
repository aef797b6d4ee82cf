/* src/ad/sparse/rule.c -- the structural context of the rule language:
 * rules.def expanded once more, now over "which operands does this
 * expression depend on" (bits 0..2 for A, B, C; Z depends on all of them)
 * plus whether it is the literal 0 (SP_D1 clear) and whether it is 0
 * wherever it is a number (SP_NZ clear: the steps' 0 * signum(x)).  So the sparsity code
 * reads the same table as the sweeps and cannot disagree with them about
 * which partials vanish or which ops are nonlinear.  Everything is a
 * constant expression: the table is built by the compiler. */
#include <math.h>

#include "ad/sparse/sparse.h"
#include "ad/rules.h"

/* piecewise constant: derivative 0 (NaN at NaN), no second order */
#define SP_FLAT(op)                                                             \
    ((op) == TG_OP_LT || (op) == TG_OP_LE || (op) == TG_OP_GT || (op) == TG_OP_GE \
     || (op) == TG_OP_FLOOR || (op) == TG_OP_CEIL || (op) == TG_OP_ROUND         \
     || (op) == TG_OP_TRUNC || (op) == TG_OP_SIGNUM || (op) == TG_OP_GUARD)
/* a select depends on its branches only (the condition's partial is 0);
 * a product with a factor that is 0 wherever it is a number is such a 0 */
#define SP_DEPS(op, x, y, z)                                                    \
    (SP_FLAT(op) ? 0u                                                           \
                 : (op) == TG_OP_SELECT ? (((y) | (z)) & 7u)                    \
                                        : (((x) | (y) | (z)) & 7u))
#define SP_NZOF(op, x, y, z)                                                    \
    (((op) == TG_OP_MUL || (op) == TG_OP_AZMUL) ? ((x) & (y) & SP_NZ)           \
     : (op) == TG_OP_SELECT ? (((y) | (z)) & SP_NZ) : SP_NZ)
#define SP_F(op, x, y, z)   (SP_D1 | SP_NZOF(op, x, y, z) | SP_DEPS(op, x, y, z))

#define K(c)            ((double)(c) == 0.0 ? 0u : (SP_D1 | SP_NZ))
#define F1(OP, x)       SP_F(TG_OP_##OP, (x), 0u, 0u)
#define F2(OP, x, y)    SP_F(TG_OP_##OP, (x), (y), 0u)
#define F3(OP, x, y, z) SP_F(TG_OP_##OP, (x), (y), (z))
#define A               (SP_D1 | SP_NZ | 1u)
#define B               (SP_D1 | SP_NZ | 2u)
#define C               (SP_D1 | SP_NZ | 4u)
#define Z               (SP_D1 | SP_NZ | 7u)

const uint8_t sp_edge[TG_OP_COUNT][3] = {
#define D1(OP, da)         [TG_OP_##OP] = { (uint8_t)((da) & (SP_D1 | SP_NZ | 1u)), 0, 0 },
#define D2(OP, da, db)     [TG_OP_##OP] = { (uint8_t)((da) & (SP_D1 | SP_NZ | 3u)), \
                                            (uint8_t)((db) & (SP_D1 | SP_NZ | 3u)), 0 },
#define D3(OP, da, db, dc) [TG_OP_##OP] = { (uint8_t)((da) & (SP_D1 | SP_NZ | 7u)), \
                                            (uint8_t)((db) & (SP_D1 | SP_NZ | 7u)), \
                                            (uint8_t)((dc) & (SP_D1 | SP_NZ | 7u)) },
#include "ad/rules.def"
};
