/* src/ad/xsweep.h -- loops (MAP, SCAN: docs in /XIR.md and tapegen.h) in
 * the numeric derivative sweeps.  Each sweep meets an extended instruction
 * i with outputs i+1 .. i+nout (XOUT, no-ops in every derivative sweep) and
 * hands it to one of the handlers below, which run the body's own sweeps
 * application by application (map) or step by step (scan):
 *   tangent: a map's tangent is a map of the body's tangent; a scan's runs
 *            the body's tangent along the steps, the carry's tangent with
 *            the carry;
 *   adjoint: a map's is a map of the body's adjoint with the params'
 *            adjoints summed over applications; a scan's runs the body's
 *            adjoint backwards over the steps, the carries stored or
 *            recomputed from checkpoints (binomial, revolve.h) within the
 *            budget of tg_tape_set_checkpoints;
 *   second:  tangent over adjoint, both as above, the checkpointed state
 *            being the carry with its tangents.
 * A body's sweeps meet the body's own loops the same way, so nesting costs
 * C recursion as deep as the loops are nested, never more.
 *
 * Scratch: a handler takes its arrays from the call context of the thread
 * (ad_xctx: the part of the caller's workspace sized by ad_x_need for the
 * sweep kind), else from the heap.  Out of memory is recorded in the
 * context and the call returns TG_ERR_NOMEM (ad_xctx_end). */
#ifndef TG_AD_XSWEEP_H
#define TG_AD_XSWEEP_H

#include "ad/sweep.h"

/* Sweep kinds for ad_x_need: doubles of scratch the handlers of a sweep of
 * t take at most (0 for a tape without loops). */
enum { AD_X_TANGENT, AD_X_REVERSE, AD_X_SECOND };
size_t ad_x_need(const tg_tape *t, int kind, size_t lanes);
/* Does t hold loops (MAP or SCAN)? */
bool ad_x_has_loops(const tg_tape *t);

/* The per-call context: scratch, the checkpoint budget of the tape called
 * (0: automatic), a failure flag, and what the stored-partials forward
 * sweep kept of its scans for the reverse sweep (a stack of records in
 * the scratch or on the heap, `keptn` doubles; xsweep.c "kept").
 * Contexts nest (a call from inside a call, e.g. batch points through the
 * single-point path). */
typedef struct ad_xctx {
    double *buf;
    size_t cap, used;
    uint64_t snaps;
    int failed;
    struct ad_xkept *kept;
    size_t keptn;
    struct ad_xctx *prev;
} ad_xctx;
void      ad_xctx_begin(ad_xctx *c, const tg_tape *t, double *buf, size_t cap);
/* Ends c: TG_OK, or TG_ERR_NOMEM (with the thread's message) when a
 * handler ran out of memory; fn names the call. */
tg_status ad_xctx_end(ad_xctx *c, const char *fn);

/* The scratch context of one numeric call on a tape t (in scope as `t`,
 * the call's name as `fn`): AD_XBEGIN(w, L) before the sweeps, with the
 * layout's x region of workspace w; AD_XEND() after them, returning
 * TG_ERR_NOMEM if a handler ran out of memory anyway; AD_XGUARDS(v)
 * between them checks the branch guards (AD_GUARDS) and ends the context
 * before a failing guard returns -- it is thread-local state. */
#define AD_XBEGIN(w, L)                                                         \
    ad_xctx xc_;                                                                \
    ad_xctx_begin(&xc_, t, AD_F64(w, (L).x), (L).xn)
#define AD_XEND()                                                               \
    do {                                                                        \
        tg_status xs_ = ad_xctx_end(&xc_, fn);                                  \
        if (xs_ != TG_OK)                                                       \
            return xs_;                                                         \
    } while (0)
#define AD_XGUARDS(v)                                                           \
    do {                                                                        \
        if (ad_guarded(t)) {                                                    \
            tg_status g_ = ad_guards_fail(t, (v), 1, 0, fn);                    \
            if (g_ != TG_OK) {                                                  \
                (void)ad_xctx_end(&xc_, fn);                                    \
                return g_;                                                      \
            }                                                                   \
        }                                                                       \
    } while (0)

/* The snapshot budget set on t (0: automatic). */
uint64_t ad_x_snaps(const tg_tape *t);

/* Handlers.  Values v (one point, stride vs between instructions), and
 * lanes of tangents / adjoints with bs doubles per instruction. */
void ad_x_tangent(const tg_tape *t, uint32_t i, const double *v, double *vd, size_t L);
/* Adjoints: nl lanes (1 or TG_LANES) at bar[r*bs .. r*bs + nl); with
 * nl = 1, vs and bs may be TG_LANES (one lane of a batch of points). */
void ad_x_reverse(const tg_tape *t, uint32_t i, const double *v, size_t vs, double *bar,
                  size_t bs, size_t nl);
/* Second order: w one lane (accumulated into the operands when accw),
 * wd and vd L lanes. */
void ad_x_second(const tg_tape *t, uint32_t i, const double *v, const double *vd, double *w,
                 double *wd, size_t L, int accw);

/* Values of loop i at one point (the stored-partials forward sweep of
 * fused.c): ad_forward_x (xforward.c), a map's applications up to
 * AD_MAP_WIDE at a time as the lanes of its body's value sweep. */
void ad_x_values(const tg_tape *t, uint32_t i, double *v, double *scratch);

/* The reverse sweep over stored partials (fused.c) on a tape with loops:
 * the stored-partials segments between loops and calls, each loop by
 * ad_x_reverse, each call of a user function by its vjp (ad_call_reverse). */
void ad_reverse_stored_x(const tg_tape *t, const double *v, const double *pa, const double *pb,
                         const uint32_t *ta, const uint32_t *tb, double *bar);
/* ad_reverse_stored over instructions [lo, hi) only. */
void ad_reverse_stored_range(uint32_t lo, uint32_t hi, const double *pa, const double *pb,
                             const uint32_t *ta, const uint32_t *tb, double *bar);

#endif
