/* src/ad/call.c -- the numeric sweeps at a CALL instruction: the user's
 * callbacks (tg_func_def) per point and per direction, with operands
 * gathered from and results scattered into the sweeps' lane arrays.  A
 * direction or cotangent that is exactly zero skips its callback and
 * contributes exactly zero (absolute zero for the call as a whole). */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "ad/call.h"
#include "tape/alloc.h"
#include "tape/funcs.h"

#define STACK_DOUBLES 512

/* Scratch: a stack buffer, or the heap for big calls. */
typedef struct scratch {
    double *heap;
    double stack[STACK_DOUBLES];
} scratch;

static double *
scratch_get(scratch *s, size_t doubles)
{
    s->heap = NULL;
    if (doubles <= STACK_DOUBLES)
        return s->stack;
    s->heap = mem_malloc(doubles * sizeof(double));
    return s->heap;
}

static void
scratch_done(scratch *s)
{
    mem_free(s->heap);
}

static bool
any(const double *p, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (p[j] != 0.0)
            return true;
    return false;
}

static const tape_func *
func_of(const tg_tape *t, uint32_t i, const uint32_t **ops)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    *ops = tape_xops(t, r);
    return tape_call_func(t, r);
}

tg_status
ad_calls_check(const tg_tape *t, unsigned need, const char *fn)
{
    for (uint32_t c = 0; c < t->ncalls; c++) {
        const tape_func *f = tape_funcs_at(t->funcs, t->calls[c]);
        const char *lack = NULL;
        if ((need & AD_NEED_JVP) && !f->jvp)
            lack = "no jvp callback";
        else if ((need & (AD_NEED_VJP | AD_NEED_HVP)) && !f->vjp)
            lack = "no vjp callback";
        else if ((need & AD_NEED_HVP) && !f->hvp && !f->hvp_numeric)
            lack = "no hvp callback and does not allow numeric second derivatives "
                   "(tg_func_def.hvp_numeric)";
        if (lack)
            return tape_fail_call(TG_ERR_UNSUPPORTED, "%s: tape \"%s\" calls user function "
                                  "'%s', which has %s", fn, t->name, f->name, lack);
    }
    return TG_OK;
}

static void
gather(const double *v, const uint32_t *ops, size_t n, size_t stride, size_t l, double *x)
{
    for (size_t j = 0; j < n; j++)
        x[j] = v[(size_t)ops[j] * stride + l];
}

void
ad_call_forward(const tg_tape *t, uint32_t i, double *v, size_t VL)
{
    const uint32_t *ops;
    const tape_func *f = func_of(t, i, &ops);
    size_t n = f->n, k = f->k;
    scratch s;
    double *x = scratch_get(&s, n + k), *y = x ? x + n : NULL;
    for (size_t l = 0; l < VL; l++) {
        v[(size_t)i * VL + l] = 0.0;
        if (x) {
            gather(v, ops, n, VL, l, x);
            f->eval(f->ctx, x, y);
        }
        for (size_t q = 0; q < k; q++)
            v[(i + 1 + q) * VL + l] = x ? y[q] : NAN;
    }
    scratch_done(&s);
}

void
ad_call_reverse(const tg_tape *t, uint32_t i, const double *v, double *bar, size_t L, size_t VL)
{
    const uint32_t *ops;
    const tape_func *f = func_of(t, i, &ops);
    size_t n = f->n, k = f->k;
    scratch s;
    double *x = scratch_get(&s, 2 * n + k), *yb = x ? x + n : NULL, *xb = x ? yb + k : NULL;
    for (size_t l = 0; l < L; l++) {
        if (!x) {
            for (size_t j = 0; j < n; j++)
                bar[(size_t)ops[j] * L + l] = NAN;
            continue;
        }
        for (size_t q = 0; q < k; q++)
            yb[q] = bar[(i + 1 + q) * L + l];
        if (!any(yb, k))
            continue;
        gather(v, ops, n, VL, VL == 1 ? 0 : l, x);
        f->vjp(f->ctx, x, yb, xb);
        for (size_t j = 0; j < n; j++)
            bar[(size_t)ops[j] * L + l] += xb[j];
    }
    scratch_done(&s);
}

void
ad_call_tangent(const tg_tape *t, uint32_t i, const double *v, double *vd, size_t L)
{
    const uint32_t *ops;
    const tape_func *f = func_of(t, i, &ops);
    size_t n = f->n, k = f->k;
    scratch s;
    double *x = scratch_get(&s, 2 * n + k), *dx = x ? x + n : NULL, *dy = x ? dx + n : NULL;
    if (x)
        gather(v, ops, n, 1, 0, x);
    for (size_t l = 0; l < L; l++) {
        vd[(size_t)i * L + l] = 0.0;
        bool active = false;
        if (x) {
            gather(vd, ops, n, L, l, dx);
            active = any(dx, n);
            if (active)
                f->jvp(f->ctx, x, dx, dy);
        }
        for (size_t q = 0; q < k; q++)
            vd[(i + 1 + q) * L + l] = !x ? NAN : active ? dy[q] : 0.0;
    }
    scratch_done(&s);
}

/* hv = d/dx (ybar . J(x)) u by central differences of the VJP along u
 * (tg_func_def.hvp_numeric; the step is documented in tapegen.h).  tmp:
 * 2n doubles. */
static void
hvp_by_differences(const tape_func *f, const double *x, const double *ybar, const double *u,
                   double *hv, double *tmp)
{
    size_t n = f->n;
    double xm = 1.0, um = 0.0;
    for (size_t j = 0; j < n; j++) {
        xm = fmax(xm, fabs(x[j]));
        um = fmax(um, fabs(u[j]));
    }
    double h = cbrt(DBL_EPSILON) * xm / um;
    double *xs = tmp, *g = tmp + n;
    for (size_t j = 0; j < n; j++)
        xs[j] = x[j] + h * u[j];
    f->vjp(f->ctx, xs, ybar, hv);
    for (size_t j = 0; j < n; j++)
        xs[j] = x[j] - h * u[j];
    f->vjp(f->ctx, xs, ybar, g);
    for (size_t j = 0; j < n; j++)
        hv[j] = (hv[j] - g[j]) / (2.0 * h);
}

static void
hvp_of(const tape_func *f, const double *x, const double *ybar, const double *u, double *hv,
       double *tmp)
{
    if (f->hvp)
        f->hvp(f->ctx, x, ybar, u, hv);
    else if (f->hvp_numeric)
        hvp_by_differences(f, x, ybar, u, hv, tmp);
    else    /* refused by ad_calls_check before any sweep; never silently 0 */
        for (size_t j = 0; j < f->n; j++)
            hv[j] = NAN;
}

void
ad_call_second(const tg_tape *t, uint32_t i, const double *v, const double *vd, double *w,
               double *wd, size_t L, int accw)
{
    const uint32_t *ops;
    const tape_func *f = func_of(t, i, &ops);
    size_t n = f->n, k = f->k;
    scratch s;
    /* x, dx, acc, part, tmp (2n) : n each; ybar, wdo: k each */
    double *x = scratch_get(&s, 6 * n + 2 * k);
    if (!x) {
        for (size_t j = 0; j < n; j++)
            for (size_t l = 0; l < L; l++)
                wd[(size_t)ops[j] * L + l] = NAN;
        return;
    }
    double *dx = x + n, *acc = dx + n, *part = acc + n, *tmp = part + n, *yb = tmp + 2 * n;
    double *wdo = yb + k;
    gather(v, ops, n, 1, 0, x);
    for (size_t q = 0; q < k; q++)
        yb[q] = w[i + 1 + q];
    bool ybar_on = any(yb, k);
    if (accw && ybar_on) {
        f->vjp(f->ctx, x, yb, part);
        for (size_t j = 0; j < n; j++)
            w[ops[j]] += part[j];
    }
    for (size_t l = 0; l < L; l++) {
        gather(vd, ops, n, L, l, dx);
        for (size_t q = 0; q < k; q++)
            wdo[q] = wd[(i + 1 + q) * L + l];
        bool dx_on = ybar_on && any(dx, n), wdo_on = any(wdo, k);
        if (!dx_on && !wdo_on)
            continue;
        for (size_t j = 0; j < n; j++)
            acc[j] = 0.0;
        if (dx_on) {
            hvp_of(f, x, yb, dx, part, tmp);
            for (size_t j = 0; j < n; j++)
                acc[j] += part[j];
        }
        if (wdo_on) {
            f->vjp(f->ctx, x, wdo, part);
            for (size_t j = 0; j < n; j++)
                acc[j] += part[j];
        }
        for (size_t j = 0; j < n; j++)
            wd[(size_t)ops[j] * L + l] += acc[j];
    }
    scratch_done(&s);
}
