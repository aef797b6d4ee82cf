/* src/ad/ctx_num.h -- the numeric context of the rule language: every
 * expression is a double computed with the interpreter's own semantics.
 * Include before expanding rules.def; include ctx_end.h after. */
#include "ad/rules.h"
#include "tape/mathx.h"

#define K(c)            ((double)(c))
#define F1(OP, x)       tape_eval_op(TG_OP_##OP, (x), 0.0, 0.0)
#define F2(OP, x, y)    tape_eval_op(TG_OP_##OP, (x), (y), 0.0)
#define F3(OP, x, y, z) tape_eval_op(TG_OP_##OP, (x), (y), (z))
