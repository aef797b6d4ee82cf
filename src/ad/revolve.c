/* src/ad/revolve.c -- the binomial checkpointing schedule (revolve.h).
 * Written from the description in Griewank & Walther, ACM TOMS 26(1),
 * 2000, sec. 2-3: the iterator keeps the stack of segments still to be
 * reversed; the top segment [a, b) has state a stored in slot depth-1 and
 * may use s states.  Each call either restores the top segment's state,
 * advances to its split point and stores the state there (a new segment on
 * top), or reverses a single step. */
#include "ad/revolve.h"

enum { PEND_NONE, PEND_TURN, PEND_SHOT };

/* a * b saturated at UINT64_MAX */
static uint64_t
mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* beta * (s + r) / r, exactly (r divides the product: C(s+r, s) =
 * C(s+r-1, s) (s+r)/r), saturated */
static uint64_t
beta_step(uint64_t beta, uint64_t s, uint64_t r)
{
    if (beta == UINT64_MAX)
        return UINT64_MAX;
    uint64_t n = add_sat(s, r);
    uint64_t hi = mul_sat(beta / r, n), lo = mul_sat(beta % r, n);
    if (hi == UINT64_MAX || lo == UINT64_MAX)
        return UINT64_MAX;
    return add_sat(hi, lo / r);
}

uint64_t
rv_beta(uint64_t s, uint64_t r)
{
    /* C(s + r, min(s, r)) built up one factor at a time */
    uint64_t k = s < r ? s : r, other = s < r ? r : s, c = 1;
    for (uint64_t j = 1; j <= k && c != UINT64_MAX; j++)
        c = beta_step(c, other, j);
    return c;
}

uint64_t
rv_repetitions(uint64_t steps, uint64_t snaps)
{
    if (snaps == 0)
        snaps = 1;
    uint64_t r = 0, beta = 1;                  /* beta(snaps, 0) */
    while (beta < steps) {
        r++;
        beta = beta_step(beta, snaps, r);
    }
    return r;
}

uint64_t
rv_forward_count(uint64_t steps, uint64_t snaps)
{
    if (steps <= 1)
        return 0;
    if (snaps == 0)
        snaps = 1;
    if (snaps > steps)
        snaps = steps;
    uint64_t r = rv_repetitions(steps, snaps);
    /* r * steps - beta(snaps + 1, r - 1); r >= 1 here */
    return mul_sat(r, steps) - rv_beta(snaps + 1, r - 1);
}

size_t
rv_frames(uint64_t steps, uint64_t snaps)
{
    uint64_t f = snaps < steps ? snaps : steps;
    return f == 0 ? 1 : (size_t)f;
}

/* The split of a segment of l >= 2 steps with s >= 1 states: the length m
 * of the left part, in [max(1, beta(s, r-2), l - beta(s-1, r)),
 * min(beta(s, r-1), l - beta(s-1, r-1))] (nonempty for beta(s, r-1) < l <=
 * beta(s, r)); every such m attains the optimum.  The largest is taken:
 * the right part, reversed first, is then as short as it may be. */
static uint64_t
split(uint64_t l, uint64_t s)
{
    uint64_t r = rv_repetitions(l, s);
    uint64_t hi = rv_beta(s, r - 1), rb = rv_beta(s - 1, r - 1);
    if (l - rb < hi)
        hi = l - rb;
    return hi;
}

void
rv_init(rv_sched *r, uint64_t steps, uint64_t snaps, rv_frame *stack)
{
    if (snaps == 0)
        snaps = 1;
    r->steps = steps;
    r->snaps = snaps;
    r->stack = stack;
    r->depth = 0;
    r->cur = 0;
    r->turned = 0;
    r->shot0 = 0;
    r->pending = PEND_NONE;
    r->next_step = 0;
    r->from = r->to = r->step = 0;
    r->slot = 0;
    if (steps > 0) {
        stack[0].a = 0;
        stack[0].b = steps;
        stack[0].s = snaps < steps ? snaps : steps;
        r->depth = 1;
    }
}

static rv_action
turn(rv_sched *r, uint64_t step)
{
    r->step = step;
    r->cur = UINT64_MAX;                    /* the step's output state is not kept */
    rv_action a = r->turned ? RV_YOUTURN : RV_FIRSTURN;
    r->turned = 1;
    return a;
}

rv_action
rv_next(rv_sched *r)
{
    if (r->pending == PEND_TURN) {
        r->pending = PEND_NONE;
        return turn(r, r->next_step);
    }
    if (r->pending == PEND_SHOT) {
        /* the state just advanced to starts a new segment in the next slot */
        r->pending = PEND_NONE;
        rv_frame *top = &r->stack[r->depth - 1];
        rv_frame *nf = &r->stack[r->depth];
        nf->a = top->b;
        nf->b = r->next_step;               /* the old end, kept here meanwhile */
        nf->s = top->s - 1;
        r->slot = r->depth;
        r->step = nf->a;
        r->depth++;
        return RV_TAKESHOT;
    }
    while (r->depth > 0) {
        rv_frame *top = &r->stack[r->depth - 1];
        uint64_t l = top->b - top->a;
        if (l == 0) {                       /* done: its state is freed */
            r->depth--;
            continue;
        }
        if (r->depth == 1 && !r->shot0 && l > 1) {
            r->shot0 = 1;                   /* state 0 is needed again later */
            r->slot = 0;
            r->step = 0;
            return RV_TAKESHOT;
        }
        if (r->cur != top->a) {
            r->cur = top->a;
            r->slot = r->depth - 1;
            r->step = top->a;
            return RV_RESTORE;
        }
        if (l == 1) {
            top->b = top->a;                /* emptied: popped on the next call */
            return turn(r, top->a);
        }
        uint64_t m = split(l, top->s), end = top->b;
        r->from = top->a;
        r->to = top->a + m;
        r->cur = r->to;
        top->b = top->a + m;                /* the left part stays, for later */
        if (end - r->to == 1) {
            r->pending = PEND_TURN;         /* one step: reversed at once, no state stored */
            r->next_step = r->to;
        } else {
            r->pending = PEND_SHOT;
            r->next_step = end;
        }
        return RV_ADVANCE;
    }
    return RV_TERMINATE;
}
