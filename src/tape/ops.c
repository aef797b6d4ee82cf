/* src/tape/ops.c -- per-opcode metadata, expanded from the opcode table. */
#include "internal.h"

static const char *const op_names[TG_OP_COUNT] = {
#define LEAF(NAME, name) [TG_OP_##NAME] = #name,
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = #name,
#define XOP(NAME, name, ar, fl) [TG_OP_##NAME] = #name,
#include "tapegen/ops.def"
};

const uint8_t tape_op_arity[TG_OP_COUNT] = {
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = ar,
#define XOP(NAME, name, ar, fl) [TG_OP_##NAME] = ar,
#include "tapegen/ops.def"
};

const uint8_t tape_op_flags[TG_OP_COUNT] = {
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = fl,
#define XOP(NAME, name, ar, fl) [TG_OP_##NAME] = fl,
#include "tapegen/ops.def"
};

_Static_assert(TG_OP_COUNT <= 255, "the opcode column is one byte");
_Static_assert(sizeof op_names / sizeof *op_names == TG_OP_COUNT, "one name per op");

const char *
tg_op_name(tg_opcode op)
{
    return (unsigned)op < TG_OP_COUNT ? op_names[op] : NULL;
}

int
tg_op_arity(tg_opcode op)
{
    return (unsigned)op < TG_OP_COUNT ? tape_op_arity[op] : -1;
}

unsigned
tg_op_flags(tg_opcode op)
{
    return (unsigned)op < TG_OP_COUNT ? tape_op_flags[op] : 0u;
}
