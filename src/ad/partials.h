/* src/ad/partials.h -- ad_partials: the local partials of one instruction as
 * doubles, from rules.def in the numeric context.  Used where a generic
 * (opcode-indexed) partial is needed, e.g. by dual numbers. */
#ifndef TG_AD_PARTIALS_H
#define TG_AD_PARTIALS_H

#include "ad/ctx_num.h"

static inline void
ad_partials(tg_opcode op, double A, double B, double C, double Z, double p[3])
{
    (void)A; (void)B; (void)C; (void)Z;
    p[0] = p[1] = p[2] = 0.0;
    switch (op) {
#define D1(OP, da)          case TG_OP_##OP: p[0] = (da); return;
#define D2(OP, da, db)      case TG_OP_##OP: p[0] = (da); p[1] = (db); return;
#define D3(OP, da, db, dc)  case TG_OP_##OP: p[0] = (da); p[1] = (db); p[2] = (dc); return;
#include "ad/rules.def"
    case TG_OP_CONST:
    case TG_OP_INPUT:
    case TG_OP_MAP:     /* extended: refused before (tape_refuse_x) */
    case TG_OP_SCAN:
    case TG_OP_CALL:
    case TG_OP_XOUT:
    case TG_OP_COUNT:
        return;
    }
}

#include "ad/ctx_end.h"
#endif
