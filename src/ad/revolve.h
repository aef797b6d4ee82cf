/* src/ad/revolve.h -- binomial checkpointing: the schedule of a reversal of
 * `steps` steps of a loop (a scan) within a budget of `snaps` stored states,
 * with the fewest forward recomputations [Griewank & Walther, "Algorithm
 * 799: revolve: an implementation of checkpointing for the reverse or
 * adjoint mode of computational differentiation", ACM TOMS 26(1), 2000;
 * Griewank, "Achieving logarithmic growth of temporal and spatial
 * complexity in reverse automatic differentiation", Optim. Methods Softw.
 * 1 (1992)].
 *
 * Conventions (as in revolve): state k is the carry before step k (state 0
 * is the loop's input, steps-1 the state the last step starts from); the
 * budget counts every stored state, the one of state 0 included, so
 * snaps = 1 recomputes each step from the start (steps(steps-1)/2 forward
 * steps) and snaps >= steps stores every state (steps - 1).  The schedule
 * never holds more than min(snaps, steps) states; snapshot slot d is in use
 * while the schedule is d + 1 segments deep.
 *
 * With r the repetition number, the least r with beta(snaps, r) >= steps,
 * beta(s, r) = C(s + r, s), the number of ADVANCE steps is
 * r * steps - beta(snaps + 1, r - 1) (Griewank & Walther, Prop. 1), which
 * the schedule attains: a segment of l steps with s states is split at m
 * with m <= beta(s, r-1) and l - m <= beta(s-1, r) (and both parts at
 * their own repetition numbers r-1 and r or on their boundaries), the
 * right part reversed first with s - 1 states, the left part after it.
 * Each step is reversed exactly once, in decreasing order.
 *
 * The schedule is a small iterator: no allocation (the caller gives room
 * for rv_frames(steps, snaps) frames), no recursion. */
#ifndef TG_AD_REVOLVE_H
#define TG_AD_REVOLVE_H

#include <stddef.h>
#include <stdint.h>

typedef enum rv_action {
    RV_ADVANCE,     /* run steps [from, to) forward from the current state */
    RV_TAKESHOT,    /* store the current state (= state `step`) in slot `slot` */
    RV_RESTORE,     /* make the state of slot `slot` (= state `step`) current */
    RV_FIRSTURN,    /* the first reversal: the current state is `step`; run step
                       `step` forward and then its adjoint */
    RV_YOUTURN,     /* the same for every later step */
    RV_TERMINATE    /* every step has been reversed */
} rv_action;

typedef struct rv_frame {
    uint64_t a, b;      /* the segment [a, b): state a is in slot `depth` */
    uint64_t s;         /* states it may use, its own included */
} rv_frame;

typedef struct rv_sched {
    uint64_t steps, snaps;
    rv_frame *stack;
    size_t depth;       /* frames in use */
    uint64_t cur;       /* the current state (UINT64_MAX: none yet) */
    int turned;         /* a reversal has happened (FIRSTURN given) */
    int shot0;          /* state 0 stored */
    int pending;        /* a YOUTURN of `next_step` follows the ADVANCE just given */
    uint64_t next_step;
    /* the action just returned */
    uint64_t from, to, step;
    size_t slot;
} rv_sched;

/* Frames the schedule needs: min(snaps, steps) (at least 1). */
size_t rv_frames(uint64_t steps, uint64_t snaps);
/* Starts a schedule; snaps >= 1 (0 is taken as 1), stack: rv_frames()
 * frames.  The current state is state 0. */
void rv_init(rv_sched *r, uint64_t steps, uint64_t snaps, rv_frame *stack);
/* The next action (its arguments in r->from, r->to, r->step, r->slot). */
rv_action rv_next(rv_sched *r);

/* C(s + r, s), saturated at UINT64_MAX. */
uint64_t rv_beta(uint64_t s, uint64_t r);
/* The least r with beta(snaps, r) >= steps (0 for steps <= 1). */
uint64_t rv_repetitions(uint64_t steps, uint64_t snaps);
/* The optimal number of forward steps (ADVANCE) of the reversal. */
uint64_t rv_forward_count(uint64_t steps, uint64_t snaps);

#endif
