/* src/ad/dispatch.h -- instruction dispatch for the sweep templates
 * (forward.inc, reverse.inc).  With GCC or clang: threaded code, every
 * handler ends in its own indirect jump through a table built from the
 * opcode table, which the branch predictor learns per handler (measured
 * 1.3-1.8x faster than a single switch on the Rosenbrock tape).  Elsewhere,
 * or with -DTG_NO_COMPUTED_GOTO: a for loop around a switch.
 *
 * A template includes ad/labels.inc at the top of its function (the jump
 * table), defines its loop with SWEEP_FWD_LOOP / SWEEP_REV_LOOP, labels
 * handlers with SWEEP_CASE(NAME) and ends each with SWEEP_NEXT_FWD or
 * SWEEP_NEXT_REV (the reverse one skips instructions whose adjoint lanes
 * are all zero, `skip(i)` being supplied by the template). */
#ifndef TG_AD_DISPATCH_H
#define TG_AD_DISPATCH_H

#if defined(__GNUC__) && !defined(TG_NO_COMPUTED_GOTO)
#define SWEEP_THREADED 1
/* computed goto is a GNU extension; it is the point of this file */
#pragma GCC diagnostic ignored "-Wpedantic"
#endif

#ifdef SWEEP_THREADED

#define SWEEP_CASE(NAME)    L_##NAME:
#define SWEEP_FWD_LOOP(n)                                                   \
    uint32_t i = 0;                                                         \
    if ((n) == 0)                                                           \
        return;                                                             \
    goto *sweep_tab_[op[0]];
#define SWEEP_NEXT_FWD                                                      \
    do {                                                                    \
        if (++i == n_)                                                      \
            return;                                                         \
        goto *sweep_tab_[op[i]];                                            \
    } while (0)
#define SWEEP_REV_LOOP(n)                                                   \
    uint32_t i = (n);                                                       \
    SWEEP_NEXT_REV;
#define SWEEP_NEXT_REV                                                      \
    do {                                                                    \
        do {                                                                \
            if (i == 0)                                                     \
                return;                                                     \
            --i;                                                            \
        } while (skip(i));                                                  \
        goto *sweep_tab_[op[i]];                                            \
    } while (0)
#define SWEEP_END

#else /* portable switch */

#define SWEEP_CASE(NAME)    case TG_OP_##NAME:
#define SWEEP_FWD_LOOP(n)   for (uint32_t i = 0; i < (n); i++) switch ((tg_opcode)op[i]) {
#define SWEEP_NEXT_FWD      continue
#define SWEEP_REV_LOOP(n)   for (uint32_t i = (n); i-- > 0;) if (!skip(i)) switch ((tg_opcode)op[i]) {
#define SWEEP_NEXT_REV      continue
#define SWEEP_END           case TG_OP_COUNT: break; }

#endif

#endif
