/* src/ad/lazy.h -- lazily built derivative tapes for the interpreter
 * (issue 12, item 5): after a tape has served AD_LAZY_AFTER simple
 * tg_gradient (or tg_hvp) calls, its gradient (HVP) tape is built once,
 * optimised (TG_OPT_BASIC) and kept on the tape as an attachment; later
 * calls evaluate it with the plain value sweep, which is faster than the
 * stored-partials reverse sweep (or the tangent-over-adjoint sweep);
 * tg_gradient_batch evaluates it with tg_eval_batch.
 * Anything that goes wrong while building (out of memory, a tape above the
 * memory cap) only means the sweeps keep serving: never an error. */
#ifndef TG_AD_LAZY_H
#define TG_AD_LAZY_H

#include "ad/sweep.h"

enum { AD_LAZY_GRAD, AD_LAZY_HVP, AD_LAZY_KINDS };

/* Simple calls served by the sweep before the derivative tape is built.
 * Building and optimising costs about 25-40 sweeps (bench, W1 n = 1000:
 * 0.7 ms + optimisation for the gradient tape against 28 us a sweep), so,
 * as in ski rental, building once the sweeps have cost as much as the
 * build bounds the worst case (a tape used just past the threshold) at
 * about twice the best, and a tape used a handful of times never pays. */
enum { AD_LAZY_AFTER = 32 };

/* The derivative tape of kind k for t as it is now, or NULL (none built,
 * lazy evaluation off, or t changed since).  Never allocates. */
const tg_tape *ad_lazy_get(const tg_tape *t, int k);
/* Counts one simple call of kind k on t and, on the AD_LAZY_AFTER-th call
 * for t's current shape, builds the derivative tape (in the calling thread;
 * the others keep sweeping).  Returns the tape to use, or NULL. */
const tg_tape *ad_lazy_count(const tg_tape *t, int k);
/* Doubles a workspace needs to evaluate derivative tape d of kind k. */
size_t ad_lazy_need(const tg_tape *d, int k);
/* The largest ad_lazy_need over t's built derivative tapes (0: none). */
size_t ad_lazy_need_all(const tg_tape *t);
/* Evaluates d (kind k) at x (and, for HVP, direction v) into out, in w,
 * which holds at least ad_lazy_need(d, k) doubles.  TG_ERR_BRANCH (out
 * untouched; message naming call fn) when a guard of d decides the other
 * way, else TG_OK. */
tg_status ad_lazy_eval(const tg_tape *d, int k, tg_workspace *w, const double *x, const double *v,
                       double *out, const char *fn);

#endif
