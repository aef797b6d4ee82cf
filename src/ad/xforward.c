/* src/ad/xforward.c -- values of extended instructions (loops) inside the
 * value sweeps of forward.inc.  A loop evaluates its body once per
 * application with the body's own value sweep, lane by lane; the body's
 * inputs and values live in the scratch that follows the caller's values
 * (ad_values_len), and nested loops use the scratch after that.  The C
 * recursion follows the nesting of bodies (<= TAPE_MAX_DEPTH levels). */
#include <math.h>

#include "ad/sweep.h"

size_t
ad_x_scratch(const tg_tape *t)
{
    size_t need = 0;
    for (uint32_t j = 0; j < t->nbodies; j++) {
        const tg_tape *b = t->bodies[j];
        size_t s = (size_t)b->nin + b->n + ad_x_scratch(b);
        if (s > need)
            need = s;
    }
    return need;
}

/* Lane l of map instruction i: ys[j] = body(xs[j], params). */
static void
map_lane(const tg_tape *t, const tape_xrec *r, uint32_t i, double *v, size_t VL, size_t l,
         double *s)
{
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *xs = tape_xops(t, r), *ps = xs + r->count * r->nx;
    const uint32_t nx = r->nx, ny = r->ny;
    double *in = s, *bv = s + b->nin;
    for (uint32_t q = 0; q < r->np; q++)
        in[nx + q] = v[(size_t)ps[q] * VL + l];
    double *y = v + (size_t)(i + 1) * VL + l;
    for (uint64_t j = 0; j < r->count; j++) {
        for (uint32_t q = 0; q < nx; q++)
            in[q] = v[(size_t)xs[j * nx + q] * VL + l];
        ad_forward_one(b, in, bv);
        for (uint32_t q = 0; q < ny; q++)
            y[(j * ny + q) * VL] = bv[b->out_ref[q]];
    }
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
    for (uint64_t k = 0; k < r->count; k++) {
        for (uint32_t q = 0; q < nx; q++)
            in[nc + q] = v[(size_t)xs[k * nx + q] * VL + l];
        ad_forward_one(b, in, bv);
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
    for (size_t l = 0; l < VL; l++) {
        v[(size_t)i * VL + l] = 0.0;
        if (r->kind == TG_OP_MAP)
            map_lane(t, r, i, v, VL, l, scratch);
        else if (r->kind == TG_OP_SCAN)
            scan_lane(t, r, i, v, VL, l, scratch);
        else    /* CALL: refused before any sweep (tape_refuse_x), issue 13 fills it in */
            for (uint64_t k = 0; k < r->nout; k++)
                v[(size_t)(i + 1 + k) * VL + l] = NAN;
    }
}
