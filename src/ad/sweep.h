/* src/ad/sweep.h -- the numeric sweeps over a tape and the workspace they
 * run in.  A "lane" array holds L doubles per instruction, X[i*L + l].
 * Value sweeps run VL points at once (VL in {1, TG_LANES}); tangent and
 * adjoint sweeps run L directions at once over one point, or L points at
 * once (batch gradients).  Names say which: _one (one point, one
 * direction), _lanes (TG_LANES directions at one point), _points
 * (TG_LANES points).  Where each array lives in a workspace: layout.h. */
#ifndef TG_AD_SWEEP_H
#define TG_AD_SWEEP_H

#include <stddef.h>

#include "tape/internal.h"

#define TG_LANES 8

/* The sweeps are written once with the lane counts as parameters and
 * instantiated with constants; forcing the inlining lets the compiler
 * specialise (unroll, vectorise) each instance. */
#if defined(__GNUC__)
#define AD_INLINE static inline __attribute__((always_inline))
#else
#define AD_INLINE static inline
#endif

/* True if any of the L lanes at p is nonzero. */
AD_INLINE int
ad_any(const double *p, size_t L)
{
    int nz = 0;
    for (size_t l = 0; l < L; l++)
        nz |= p[l] != 0.0;
    return nz;
}

struct tg_workspace {
    double *buf;
    size_t cap;     /* doubles */
};

/* Makes w hold at least `doubles`; 0 or -1 (out of memory). */
int  ad_ws_reserve(tg_workspace *w, size_t doubles);
/* Borrow from / return to the tape's pool (allocating when it is empty). */
tg_workspace *ad_ws_borrow(const tg_tape *t);
void          ad_ws_return(const tg_tape *t, tg_workspace *w);

/* Loops (xforward.c).  The value array of a value sweep over VL lanes
 * holds ad_values_len(t, VL) doubles: the n*VL values, then the scratch
 * that loop bodies are evaluated in (ad_x_scratch(t) doubles, 0 for a tape
 * without loops).  Every workspace layout places its values array with
 * this length.  ad_forward_x computes extended instruction i's outputs
 * for VL lanes (the handler of MAP/SCAN/CALL in forward.inc). */
size_t ad_x_scratch(const tg_tape *t);
/* A map evaluates its body over C applications at once (C lanes per
 * instruction dispatch, lane c = application j0 + c): C = AD_MAP_WIDE
 * for small bodies, TG_LANES for larger ones, 1 (one application at a
 * time) for huge ones, so that a chunk's values stay in cache. */
#define AD_MAP_WIDE 64
size_t ad_map_chunk(const tg_tape *body);
/* The value sweep over C in {1, TG_LANES, AD_MAP_WIDE} points, point l's
 * inputs at x[l*ldx ..) (v: ad_values_len(t, C) doubles). */
void ad_forward_chunk(const tg_tape *t, const double *x, size_t ldx, double *v, size_t C);
static inline size_t
ad_values_len(const tg_tape *t, size_t VL)
{
    return VL * (size_t)t->n + (t->nbodies ? ad_x_scratch(t) : 0);
}
void ad_forward_x(const tg_tape *t, uint32_t i, double *v, size_t VL, double *scratch);

/* v[i*VL + l] = value of instruction i at point l; point l's inputs are
 * x[l*ldx .. l*ldx + n).  _one: VL = 1; _points: VL = TG_LANES.  v holds
 * ad_values_len(t, VL) doubles. */
void ad_forward_one(const tg_tape *t, const double *x, double *v);
void ad_forward_points(const tg_tape *t, const double *x, size_t ldx, double *v);

/* Branch guards (guards.c).  ad_guards_fail: TG_OK when every guard of t
 * holds in the values v (lane l of VL), else TG_ERR_BRANCH with the
 * message of a call named fn.  ad_guards_hold: 1 / 0, no message.
 * ad_guards_precheck: a value sweep into v (n doubles) and the check, for
 * the paths whose fused sweeps write results as they go (only when t has
 * guards: else TG_OK at once).  AD_GUARDS returns the error from the
 * calling function (a tg_status one with `fn` in scope).  ad_guarded: t
 * has guards to check, its own or in loop bodies (the loops' value sweeps
 * mark a failing application: guards.c).  ad_body_fail: the first lane
 * of lanes [0, C) of body values bv (C lanes) whose guards fail, or C. */
static inline bool
ad_guarded(const tg_tape *t)
{
    return t->nguard || (t->xkinds & TAPE_XK_BGUARD);
}
tg_status ad_guards_fail(const tg_tape *t, const double *v, size_t VL, size_t l, const char *fn);
int       ad_guards_hold(const tg_tape *t, const double *v, size_t VL, size_t l);
size_t    ad_body_fail(const tg_tape *b, const double *bv, size_t C);
tg_status ad_guards_precheck(const tg_tape *t, double *v, const double *x, const char *fn);
#define AD_GUARDS(t, v, fn)                                                     \
    do {                                                                        \
        if (ad_guarded(t)) {                                                    \
            tg_status g_ = ad_guards_fail((t), (v), 1, 0, (fn));                \
            if (g_ != TG_OK)                                                    \
                return g_;                                                      \
        }                                                                       \
    } while (0)

/* Adjoints: bar holds L lanes per instruction, seeded by the caller on the
 * output instructions (accumulate), zero elsewhere; the sweep accumulates
 * into operands.  _lanes: L = TG_LANES directions over one point (v has
 * 1 lane); _points: TG_LANES points (v has TG_LANES). */
void ad_reverse_lanes(const tg_tape *t, const double *v, double *bar);
void ad_reverse_points(const tg_tape *t, const double *v, double *bar);
/* _points over AD_MAP_WIDE points (a map's applications, xsweep.c), for a
 * tape without extended instructions. */
void ad_reverse_wide(const tg_tape *t, const double *v, double *bar);
/* Does the CPU run the AVX2 copies of the wide sweeps (forward.c; 0 when
 * none were compiled)?  Asked once. */
int ad_has_avx2(void);

/* The gradient fast path (fused.c): values and local partials in one
 * forward sweep, then a reverse sweep over the stored partials; the same
 * values as the dispatching sweep of reverse.inc (up to the sign of
 * zeros). */
void ad_forward_partials(const tg_tape *t, const double *x, double *v, double *pa, double *pb,
                         uint32_t *ta, uint32_t *tb);
void ad_reverse_stored(uint32_t n, const double *pa, const double *pb, const uint32_t *ta,
                       const uint32_t *tb, double *bar);

/* The Jacobian by seed compression (sparsity.c): 0 when done (*st: TG_OK
 * with J written, or TG_ERR_BRANCH with J untouched), 1
 * when compression would not save sweeps (the caller then sweeps densely).
 * ad_jacobian_need: the doubles tg_jacobian_ws needs on t into *need; it
 * makes t's coloured pattern (kept on the tape) as the call would (w:
 * unused).  0, or -1 when out of memory. */
int ad_jacobian_compressed(const tg_tape *t, tg_workspace *w, const double *x, double *J,
                           const char *fn, tg_status *st);
int ad_jacobian_need(const tg_tape *t, tg_workspace *w, size_t *need);

/* Tangents over one point: vd[i*L + l].  Input k's seed in lane l is
 * seed[k*L + l], or, with seed == NULL, 1 if k == j0 + l else 0.
 * _one: L = 1; _lanes: L = TG_LANES. */
void ad_tangent_one(const tg_tape *t, const double *v, const double *seed, double *vd);
void ad_tangent_lanes(const tg_tape *t, const double *v, const double *seed, size_t j0, double *vd);

/* Second order (tangent over adjoint) over one point: given values v and
 * tangents vd (L lanes), accumulates the adjoints' tangents wd (L lanes,
 * zero on entry) into the operands.  Then wd at input k, lane l, is
 * (H seed_l)_k for a scalar output.  _one (one direction) accumulates
 * the first-order adjoints w as it goes (w seeded with 1 on the output,
 * zero elsewhere); _lanes (TG_LANES directions) takes every instruction's w
 * precomputed and skips instructions whose tangent inputs are all zero. */
void ad_second_one(const tg_tape *t, const double *v, const double *vd, double *w, double *wd);
void ad_second_lanes(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd);

/* The same with L in {1, 2, 3, 4, TG_LANES} lanes (5..7: TG_LANES), seeds from
 * seed[k*L + l] (tangent) and precomputed first-order adjoints (second):
 * the compressed sweeps of src/ad/sparse use as many lanes as colours. */
void ad_tangent_n(const tg_tape *t, const double *v, const double *seed, double *vd, size_t L);
void ad_second_n(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd,
                 size_t L);
/* As ad_second_n without the fast products (the same operations as
 * ad_second_lanes): the second-order sweeps through loop bodies (xsweep.c). */
void ad_second_w(const tg_tape *t, const double *v, const double *vd, const double *w, double *wd,
                 size_t L);

#endif
