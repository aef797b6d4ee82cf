/* src/ad/layout.h -- the workspace layouts, one per sweep kind, in one
 * place.  A layout places a kind's arrays one after another in the
 * workspace buffer: each field is an offset in doubles, `size` the doubles
 * the kind needs in all.  The call that runs the sweeps takes its pointers
 * from the layout (AD_F64 / AD_U32), and tg_workspace_new sizes a workspace
 * by the same functions, so the two cannot disagree.
 *
 * To add a kind: a struct and an ad_layout_<kind> function below (and in
 * layout.c), and, if its size follows from the tape alone, a line in
 * AD_LAYOUTS so that tg_workspace_new covers it. */
#ifndef TG_AD_LAYOUT_H
#define TG_AD_LAYOUT_H

#include <stddef.h>

#include "ad/sweep.h"
#include "ad/xsweep.h"

/* Doubles taken by `count` uint32 (two per double) and uint64 values. */
static inline size_t ad_u32s(size_t count) { return (count + 1) / 2; }
static inline size_t ad_u64s(size_t count) { return count; }

/* Places an array of `doubles` at the end of a layout being built. */
static inline size_t
ad_place(size_t *size, size_t doubles)
{
    size_t at = *size;
    *size += doubles;
    return at;
}

/* Loops: every layout but eval's ends with the scratch (x, xn doubles)
 * that the derivative sweeps' loop handlers run in (xsweep.h: ad_x_need
 * for the sweeps the kind runs; 0 without loops). */

/* Typed views of a workspace at a layout offset. */
#define AD_F64(w, off) ((w)->buf + (off))
#define AD_U32(w, off) ((uint32_t *)(void *)((w)->buf + (off)))
#define AD_U64(w, off) ((uint64_t *)(void *)((w)->buf + (off)))

/* tg_eval: the values v[n]. */
typedef struct ad_eval_layout {
    size_t v, size;
} ad_eval_layout;

/* tg_gradient, tg_vjp (the stored-partials path of fused.c): values,
 * adjoints, the partials pa/pb and the adjoint slots ta/tb (uint32), n each. */
typedef struct ad_reverse_layout {
    size_t v, bar, pa, pb, ta, tb, x, xn, size;
} ad_reverse_layout;

/* tg_jvp: values and one lane of tangents. */
typedef struct ad_jvp_layout {
    size_t v, vd, x, xn, size;
} ad_jvp_layout;

/* tg_hvp: values, tangents, adjoints and their tangents, one lane each. */
typedef struct ad_hvp_layout {
    size_t v, vd, w, wd, x, xn, size;
} ad_hvp_layout;

/* tg_hessian: a first-order reverse sweep (its fields as in `reverse`, with
 * bar the adjoints w kept for the second-order sweeps), then TG_LANES
 * lanes of tangents vd and of adjoint tangents wd. */
typedef struct ad_hessian_layout {
    ad_reverse_layout first;
    size_t vd, wd, x, xn, size;
} ad_hessian_layout;

/* tg_jacobian by dense 8-lane sweeps: values and TG_LANES lanes of
 * tangents or adjoints. */
typedef struct ad_jacobian_layout {
    size_t v, lanes, x, xn, size;
} ad_jacobian_layout;

/* Batches of TG_LANES points (batch.c): values and adjoints, TG_LANES
 * lanes each. */
typedef struct ad_batch_layout {
    size_t v, bar, x, xn, size;
} ad_batch_layout;

/* Seeded tangent sweeps (tg_sparse_jacobian, tg_jacobian's compressed
 * sweeps, tg_jvp_multi, tg_jvp_wrt):
 * values, TG_LANES lanes of tangents, and TG_LANES seeds per input
 * (seed[k*L + l], L <= TG_LANES lanes in use).  The sparse Hessian,
 * tg_hvp_multi and tg_hessian_wrt run in the Hessian layout, whose wd
 * holds the seeds until the tangent sweep has read them. */
typedef struct ad_seeded_layout {
    size_t v, lanes, seed, x, xn, size;
} ad_seeded_layout;

/* tg_hvp_wrt: the HVP's arrays and one seed per input. */
typedef struct ad_hvp_wrt_layout {
    ad_hvp_layout hvp;
    size_t seed, size;
} ad_hvp_wrt_layout;

ad_eval_layout       ad_layout_eval(const tg_tape *t);
ad_reverse_layout    ad_layout_reverse(const tg_tape *t);
ad_jvp_layout        ad_layout_jvp(const tg_tape *t);
ad_hvp_layout        ad_layout_hvp(const tg_tape *t);
ad_hessian_layout    ad_layout_hessian(const tg_tape *t);
ad_jacobian_layout   ad_layout_jacobian(const tg_tape *t);
ad_batch_layout      ad_layout_batch(const tg_tape *t);
ad_seeded_layout     ad_layout_seeded(const tg_tape *t);
ad_hvp_wrt_layout    ad_layout_hvp_wrt(const tg_tape *t);

/* Values and first-order adjoints of w . y (wout NULL: all ones) by the
 * stored-partials path, in a reverse layout: v and bar (multi.c). */
void ad_first_order(const tg_tape *t, const ad_reverse_layout *L, tg_workspace *w,
                    const double *x, const double *wout);

/* The kinds whose size follows from the tape alone (all of them: the
 * compressed Jacobian runs in the seeded layout; ad_jacobian_need of
 * sparsity.c also makes its pattern, which lives on the tape). */
#define AD_LAYOUTS(X) X(eval) X(reverse) X(jvp) X(hvp) X(hessian) X(jacobian) X(batch) \
    X(seeded) X(hvp_wrt)

#endif
