/* tests/test_revolve.c -- the binomial checkpointing schedule (src/ad/revolve.h)
 * run against a simulated loop: every step is reversed exactly once, in
 * decreasing order, from the right state; restores give back the state
 * stored; no more than the budget of states is ever held; and the number
 * of forward steps is the optimum -- checked against an independent
 * dynamic programme over all splits for small loops (the recursion of
 * Griewank & Walther 2000, eq. (1)) and against the closed form
 * r*l - C(s+r, s+1) computed here in floating point for large ones. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "ad/revolve.h"

typedef struct sim {
    uint64_t advances, turns, max_slot_plus1, peak_live;
} sim;

/* Runs the schedule of `steps` steps and `snaps` states, checking every
 * action against the simulated state. */
static sim
simulate(uint64_t steps, uint64_t snaps)
{
    size_t nf = rv_frames(steps, snaps);
    rv_frame *stack = malloc(nf * sizeof *stack);
    uint64_t *slot_state = malloc((nf + 1) * sizeof *slot_state);
    int *slot_live = calloc(nf + 1, sizeof *slot_live);
    cr_assert(stack && slot_state && slot_live);
    uint64_t budget = snaps == 0 ? 1 : snaps;
    rv_sched r;
    rv_init(&r, steps, snaps, stack);
    sim s = { 0, 0, 0, 0 };
    uint64_t cur = 0, expect = steps;       /* next step to reverse: expect - 1 */
    int have_cur = 1;
    for (;;) {
        rv_action a = rv_next(&r);
        if (a == RV_TERMINATE)
            break;
        switch (a) {
        case RV_ADVANCE:
            cr_assert(have_cur && r.from == cur && r.to > r.from && r.to < steps,
                      "advance %llu..%llu from state %llu", (unsigned long long)r.from,
                      (unsigned long long)r.to, (unsigned long long)cur);
            s.advances += r.to - r.from;
            cur = r.to;
            break;
        case RV_TAKESHOT: {
            cr_assert(have_cur && r.step == cur);
            cr_assert_lt(r.slot, nf, "slot %zu of %zu", r.slot, nf);
            slot_state[r.slot] = cur;
            slot_live[r.slot] = 1;
            uint64_t live = 0;
            for (size_t k = 0; k < nf; k++)
                live += (uint64_t)slot_live[k];
            if (live > s.peak_live)
                s.peak_live = live;
            if (r.slot + 1 > s.max_slot_plus1)
                s.max_slot_plus1 = r.slot + 1;
            break;
        }
        case RV_RESTORE:
            cr_assert_lt(r.slot, nf);
            cr_assert(slot_live[r.slot] && slot_state[r.slot] == r.step,
                      "restore of slot %zu: holds %llu, said %llu", r.slot,
                      (unsigned long long)slot_state[r.slot], (unsigned long long)r.step);
            /* slots above it are never read again */
            for (size_t k = r.slot + 1; k < nf; k++)
                slot_live[k] = 0;
            cur = r.step;
            have_cur = 1;
            break;
        case RV_FIRSTURN:
        case RV_YOUTURN:
            cr_assert_eq(a == RV_FIRSTURN, s.turns == 0, "firsturn must come first, once");
            cr_assert(expect > 0 && r.step == expect - 1, "reversed step %llu, expected %llu",
                      (unsigned long long)r.step, (unsigned long long)(expect - 1));
            cr_assert(have_cur && cur == r.step, "step %llu reversed from state %llu",
                      (unsigned long long)r.step, (unsigned long long)cur);
            expect--;
            s.turns++;
            have_cur = 0;
            break;
        case RV_TERMINATE:
            break;
        }
        cr_assert_leq(s.advances, steps * steps, "runaway schedule");
    }
    cr_assert_eq(expect, 0, "%llu steps never reversed", (unsigned long long)expect);
    cr_assert_eq(s.turns, steps);
    cr_assert_leq(s.peak_live, budget, "%llu states held, budget %llu",
                  (unsigned long long)s.peak_live, (unsigned long long)budget);
    free(stack);
    free(slot_state);
    free(slot_live);
    return s;
}

enum { LMAX = 48 };
static uint64_t dp[LMAX + 1][LMAX + 1];

/* t(l, s): fewest forward steps to reverse l steps holding at most s states
 * (state 0's included): split at m, advance m steps, reverse the right
 * part with s - 1 states (a single step needs none), then the left part
 * with s.  Exhaustive over m. */
static void
fill_dp(void)
{
    for (int s = 0; s <= LMAX; s++) {
        dp[0][s] = 0;
        dp[1][s] = 0;
    }
    for (int l = 2; l <= LMAX; l++) {
        dp[l][0] = UINT64_MAX;
        for (int s = 1; s <= LMAX; s++) {
            uint64_t best = UINT64_MAX;
            for (int m = 1; m < l; m++) {
                uint64_t right = dp[l - m][s - 1], left = dp[m][s];
                if (right == UINT64_MAX || left == UINT64_MAX)
                    continue;
                uint64_t c = (uint64_t)m + right + left;
                if (c < best)
                    best = c;
            }
            dp[l][s] = best;
        }
    }
}

Test(revolve, optimal_against_exhaustive_recursion)
{
    fill_dp();
    for (uint64_t l = 0; l <= LMAX; l++)
        for (uint64_t s = 1; s <= l + 2; s++) {
            uint64_t want = dp[l][s > LMAX ? LMAX : s];
            cr_assert_eq(rv_forward_count(l, s), want, "formula l=%llu s=%llu: %llu, dp %llu",
                         (unsigned long long)l, (unsigned long long)s,
                         (unsigned long long)rv_forward_count(l, s), (unsigned long long)want);
            sim m = simulate(l, s);
            cr_assert_eq(m.advances, want, "schedule l=%llu s=%llu: %llu advances, optimum %llu",
                         (unsigned long long)l, (unsigned long long)s,
                         (unsigned long long)m.advances, (unsigned long long)want);
        }
}

/* C(n, k) in floating point (exact below 2^53 for the sizes used here) */
static double
binom(double n, double k)
{
    double c = 1.0;
    for (double j = 1.0; j <= k; j += 1.0)
        c = c * (n - k + j) / j;
    return c;
}

Test(revolve, closed_form_on_long_loops)
{
    static const uint64_t L[] = { 100, 1000, 4097, 20000 };
    static const uint64_t S[] = { 1, 2, 3, 5, 10, 32, 100, 999, 5000, 20000, 30000 };
    for (size_t i = 0; i < sizeof L / sizeof *L; i++)
        for (size_t j = 0; j < sizeof S / sizeof *S; j++) {
            uint64_t l = L[i], s = S[j] < l ? S[j] : l;
            if (s == 1 && l > 4097)
                continue;           /* l^2/2 simulated steps: long enough at 4097 */
            double r = 0.0;
            while (binom((double)s + r, (double)s) < (double)l)
                r += 1.0;
            double want = r * (double)l - binom((double)s + r, (double)s + 1.0);
            sim m = simulate(l, S[j]);
            cr_assert_eq((double)m.advances, want, "l=%llu s=%llu: %llu advances, optimum %.0f",
                         (unsigned long long)l, (unsigned long long)S[j],
                         (unsigned long long)m.advances, want);
            cr_assert_eq(rv_forward_count(l, S[j]), m.advances);
            if (S[j] >= l)
                cr_assert_eq(m.advances, l - 1, "store-all advances each step once");
        }
}

Test(revolve, repetitions_and_beta)
{
    cr_assert_eq(rv_beta(3, 2), 10);
    cr_assert_eq(rv_beta(100, 3), 176851);
    cr_assert_eq(rv_beta(0, 7), 1);
    cr_assert_eq(rv_beta(200, 200), UINT64_MAX, "saturates");
    cr_assert_eq(rv_repetitions(100000, 100), 3);
    cr_assert_eq(rv_repetitions(1, 5), 0);
    /* 10^5 steps with 100 states: every step recomputed at most 3 times */
    uint64_t t = rv_forward_count(100000, 100);
    cr_assert(t <= 3 * 100000 && t >= 2 * 100000, "%llu", (unsigned long long)t);
    sim m = simulate(100000, 100);
    cr_assert_eq(m.advances, t);
    cr_assert_leq(m.max_slot_plus1, 100);
}
