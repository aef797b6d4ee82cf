/* src/ad/xforward.c -- values of extended instructions (loops) inside the
 * value sweeps of forward.inc.  A map runs its body over its applications
 * as lanes: each body instruction is dispatched once per chunk of C
 * applications and computes C values in a row (the forward.inc sweep
 * instantiated for C lanes, which the compiler vectorises); chunks are
 * spread over OpenMP threads when the work is large.  A scan runs its
 * body step by step, the carry in the body's input buffer.  Outer lanes
 * (batch points) are taken one at a time.  Inputs and values of a body
 * live in the scratch after the caller's values (ad_values_len); nested
 * loops use the scratch after that.  The C recursion follows the nesting
 * of bodies (<= TAPE_MAX_DEPTH levels).  Results are the same bits as the
 * unrolled tape's: each lane computes the same expression.  A body with
 * branch guards is checked after each chunk / step: the first failing
 * application or step j is written as j + 1 into the loop instruction's
 * own value slot, which ad_guards_fail (guards.c) reads. */
#include <math.h>
#include <string.h>

#include "ad/sweep.h"
#include "ad/call.h"

#if defined(TG_HAVE_OPENMP)
#include <omp.h>
#endif

/* Applications per dispatch for a map of body b: its C lanes of values
 * (C * n doubles) should stay in cache (256 kB), and no chunk should be
 * absurdly large (8 lanes up to 8 MB, then one application at a time). */
size_t
ad_map_chunk(const tg_tape *b)
{
    size_t n = (size_t)b->n + b->nin;
    if (n * AD_MAP_WIDE * sizeof(double) <= ((size_t)256 << 10))
        return AD_MAP_WIDE;
    if (n * TG_LANES * sizeof(double) <= ((size_t)8 << 20))
        return TG_LANES;
    return 1;
}

/* The scratch one loop over body b needs: C lanes of inputs, then the
 * body's values over C lanes with their own scratch (a scan uses C = 1,
 * a map ad_map_chunk(b): the larger is taken, a body may serve both). */
static size_t
body_need(const tg_tape *b)
{
    size_t C = ad_map_chunk(b);
    return C * ((size_t)b->nin + b->n) + ad_x_scratch(b);
}

size_t
ad_x_scratch(const tg_tape *t)
{
    size_t need = 0;
    for (uint32_t j = 0; j < t->nbodies; j++) {
        size_t s = body_need(t->bodies[j]);
        if (s > need)
            need = s;
    }
    return need;
}

/* One map, one outer lane l: what every chunk shares. */
typedef struct map_job {
    const tg_tape *b;
    const uint32_t *xs;
    uint64_t count;
    uint32_t nx, np, ny, nin;
    size_t C, VL, l;        /* C: the widest chunk (ad_map_chunk) */
    const double *v;        /* the outer values (operands) */
    double *y;              /* output 0 of the map in lane l: y[k * VL] is output k */
    bool guarded;           /* the body holds guards (ad_guarded): check each chunk */
} map_job;

/* No application failed a guard of the body (else: the first that did). */
#define NO_FAIL UINT64_MAX

/* Applications j0..j1-1 ((j1 - j0) a multiple of C) in chunks of C, with
 * inputs X (C * nin, params filled) and body values bv.  Returns the first
 * application whose body guards failed, or NO_FAIL. */
static uint64_t
map_run(const map_job *m, uint64_t j0, uint64_t j1, size_t C, double *X, double *bv)
{
    const size_t VL = m->VL, l = m->l;
    const uint32_t nx = m->nx, ny = m->ny, nin = m->nin;
    const uint32_t *out = m->b->out_ref;
    uint64_t fail = NO_FAIL;
    for (uint64_t j = j0; j < j1; j += C) {
        const uint32_t *xj = m->xs + j * nx;
        if (VL == 1)        /* one outer point (the common case): unit strides */
            for (size_t k = 0; k < C; k++)
                for (uint32_t q = 0; q < nx; q++)
                    X[k * nin + q] = m->v[xj[k * nx + q]];
        else
            for (size_t k = 0; k < C; k++)
                for (uint32_t q = 0; q < nx; q++)
                    X[k * nin + q] = m->v[(size_t)xj[k * nx + q] * VL + l];
        ad_forward_chunk(m->b, X, nin, bv, C);
        if (m->guarded && fail == NO_FAIL) {
            size_t k = ad_body_fail(m->b, bv, C);
            if (k < C)
                fail = j + k;
        }
        double *y = m->y + (size_t)j * ny * VL;
        if (VL == 1 && ny == 1) {
            memcpy(y, bv + (size_t)out[0] * C, C * sizeof *y);
            continue;
        }
        for (uint32_t q = 0; q < ny; q++) {
            const double *src = bv + (size_t)out[q] * C;
            for (size_t k = 0; k < C; k++)
                y[(k * ny + q) * VL] = src[k];
        }
    }
    return fail;
}

/* Applications j0.. to the end: chunks of m->C, then of TG_LANES, then
 * one by one, so that no lane computes an application twice (a nested
 * map in a padded lane would multiply the work at every level). */
static uint64_t
map_tail(const map_job *m, uint64_t j0, double *X, double *bv)
{
    static const size_t widths[] = { AD_MAP_WIDE, TG_LANES, 1 };
    uint64_t fail = NO_FAIL;
    /* a large remainder (a quarter chunk or more) after full chunks, in a
     * body without loops: one more full chunk ending at the last
     * application, overlapping ones already computed (they get the same
     * bits again, each lane computing the same expression) -- cheaper than
     * narrower chunks, which dispatch each instruction more often for
     * fewer lanes.  Not for bodies with loops: their recomputation would
     * multiply at every level.  The first failing application is the
     * smaller of the two runs' (the overlap recomputes the same ones). */
    if (m->C > TG_LANES && m->b->nxr == 0 && m->count >= m->C) {
        uint64_t j1 = j0 + (m->count - j0) / m->C * m->C;
        if (m->count - j1 >= m->C / 4) {
            fail = map_run(m, j0, j1, m->C, X, bv);
            uint64_t f = map_run(m, m->count - m->C, m->count, m->C, X, bv);
            return f < fail ? f : fail;
        }
    }
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        size_t C = widths[w];
        if (C > m->C)
            continue;
        uint64_t j1 = j0 + (m->count - j0) / C * C;
        uint64_t f = map_run(m, j0, j1, C, X, bv);
        if (f < fail)
            fail = f;
        j0 = j1;
    }
    return fail;
}

static void
fill_params(const map_job *m, const uint32_t *ps, double *X)
{
    for (size_t k = 0; k < m->C; k++)
        for (uint32_t q = 0; q < m->np; q++)
            X[k * m->nin + m->nx + q] = m->v[(size_t)ps[q] * m->VL + m->l];
}

#if defined(TG_HAVE_OPENMP)
/* The first nchunks chunks of m->C applications spread over threads, each
 * in a workspace borrowed from the body's pool.  Returns 0, or -1 when a
 * thread had no memory (nothing is lost: the caller then runs every
 * chunk itself).  *gfail: the first application failing a body guard. */
static int
map_parallel(const map_job *m, const uint32_t *ps, uint64_t nchunks, uint64_t *gfail)
{
    int failed = 0;
    uint64_t gf = NO_FAIL;
    size_t need = m->C * m->nin + ad_values_len(m->b, m->C);
#pragma omp parallel
    {
        tg_workspace *w = ad_ws_borrow(m->b);
        int ok = w && ad_ws_reserve(w, need) == 0;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        } else {
            fill_params(m, ps, w->buf);
        }
#pragma omp for schedule(static) reduction(min : gf)
        for (uint64_t c = 0; c < nchunks; c++)
            if (ok) {
                uint64_t f = map_run(m, c * m->C, (c + 1) * m->C, m->C, w->buf,
                                     w->buf + m->C * m->nin);
                gf = f < gf ? f : gf;
            }
        if (w)
            ad_ws_return(m->b, w);
    }
    *gfail = gf;
    return failed ? -1 : 0;
}
#endif

/* Lane l of map instruction i: ys[j] = body(xs[j], params), C
 * applications per dispatch of each body instruction; over threads when
 * the work is large (as batch.c: a parallel region costs tens of
 * microseconds), never inside another parallel region. */
static void
map_lane(const tg_tape *t, const tape_xrec *r, uint32_t i, double *v, size_t VL, size_t l,
         double *s)
{
    const tg_tape *b = tape_body_of(t, r);
    map_job m = { b, tape_xops(t, r), r->count, r->nx, r->np, r->ny, b->nin, ad_map_chunk(b),
                  VL, l, v, v + (size_t)(i + 1) * VL + l, ad_guarded(b) };
    const uint32_t *ps = m.xs + r->count * r->nx;
    uint64_t j0 = 0, fail = NO_FAIL;
    if (r->ny == 0 && !m.guarded)
        return;                 /* no outputs: nothing to compute */
    (void)j0;
#if defined(TG_HAVE_OPENMP)
    uint64_t nfull = r->count / m.C;
    if (nfull > 1 && (double)r->count * b->n >= 65536.0 && !omp_in_parallel()
        && omp_get_max_threads() > 1 && map_parallel(&m, ps, nfull, &fail) == 0)
        j0 = nfull * m.C;
#endif
    fill_params(&m, ps, s);
    uint64_t f = map_tail(&m, j0, s, s + m.C * m.nin);
    fail = f < fail ? f : fail;
    if (fail != NO_FAIL)        /* for ad_guards_fail: application fail + 1 */
        v[(size_t)i * VL + l] = (double)(fail + 1);
}

/* Lane l of scan instruction i: the carry lives in the body's input
 * buffer, replaced by carry_next after each step. */
static void
scan_lane(const tg_tape *t, const tape_xrec *r, uint32_t i, double *v, size_t VL, size_t l,
          double *s)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *o = tape_xops(t, r);
    const uint32_t nc = r->nc, nx = r->nx, ny = r->ny;
    const uint32_t *xs = o + nc, *ps = xs + r->count * nx;
    double *in = s, *bv = s + b->nin;
    for (uint32_t q = 0; q < nc; q++)
        in[q] = v[(size_t)o[q] * VL + l];
    for (uint32_t q = 0; q < r->np; q++)
        in[nc + nx + q] = v[(size_t)ps[q] * VL + l];
    double *out = v + (size_t)(i + 1) * VL + l, *y = out + (size_t)nc * VL;
    const bool guarded = ad_guarded(b);
    for (uint64_t k = 0; k < r->count; k++) {
        for (uint32_t q = 0; q < nx; q++)
            in[nc + q] = v[(size_t)xs[k * nx + q] * VL + l];
        ad_forward_one(b, in, bv);
        if (guarded && v[(size_t)i * VL + l] == 0.0 && !ad_guards_hold(b, bv, 1, 0))
            v[(size_t)i * VL + l] = (double)(k + 1);    /* for ad_guards_fail */
        for (uint32_t q = 0; q < nc; q++)
            in[q] = bv[b->out_ref[q]];
        for (uint32_t q = 0; q < ny; q++)
            y[(k * ny + q) * VL] = bv[b->out_ref[nc + q]];
    }
    for (uint32_t q = 0; q < nc; q++)
        out[(size_t)q * VL] = in[q];
}

void
ad_forward_x(const tg_tape *t, uint32_t i, double *v, size_t VL, double *scratch)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    if (r->kind == TG_OP_CALL) {    /* a user function (call.c) */
        ad_call_forward(t, i, v, VL);
        return;
    }
    for (size_t l = 0; l < VL; l++) {
        v[(size_t)i * VL + l] = 0.0;
        if (r->kind == TG_OP_MAP)
            map_lane(t, r, i, v, VL, l, scratch);
        else
            scan_lane(t, r, i, v, VL, l, scratch);
    }
}
