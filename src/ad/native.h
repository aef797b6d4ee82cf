/* src/ad/native.h -- native routes: compiled kernels that tg_tape_compile
 * (src/codegen/native) attaches to a tape, and that the numeric entry
 * points call instead of sweeping.  This layer sees plain function
 * pointers and work sizes only; it knows nothing of compilers. */
#ifndef TG_AD_NATIVE_H
#define TG_AD_NATIVE_H

#include <stddef.h>

#include "tape/internal.h"

struct tg_workspace;

/* The C translator's kernel and its batch variant (tg_c_source). */
typedef int (*ad_kernel_fn)(const double *x, double *y, double *work);
typedef int (*ad_kernel_batch_fn)(size_t npts, const double *X, double *Y, double *work);

typedef struct ad_route {
    ad_kernel_fn fn;            /* NULL: this part is interpreted */
    ad_kernel_batch_fn batch;   /* may be NULL */
    size_t work;                /* doubles fn needs */
    size_t batch_work;          /* doubles one batch call needs (any npts) */
    size_t nin;                 /* inputs of the kernel's tape (hvp: 2n) */
} ad_route;

enum { AD_ROUTE_F, AD_ROUTE_GRAD, AD_ROUTE_JAC, AD_ROUTE_HVP, AD_NROUTES };

typedef struct ad_routes {
    ad_route r[AD_NROUTES];
    uint32_t n, nin, nout;      /* the tape's shape when compiled: a change drops the routes */
    void (*release)(struct ad_routes *self);   /* frees the kernels and self */
} ad_routes;

/* The route for part p of t, or NULL (none, or t changed since). */
const ad_route *ad_route_of(const tg_tape *t, int p);
/* The routes attached to t and still valid, or NULL. */
ad_routes *ad_routes_get(const tg_tape *t);
/* Attaches r to t (ownership passes to t), releasing the previous ones.
 * 0, or -1 when out of memory (r untouched, still the caller's). */
int ad_routes_set(tg_tape *t, ad_routes *r);

/* Runs route r on x (and, for HVP, the direction v after x) into out.
 * TG_OK, TG_ERR_NOMEM, or TG_ERR_BRANCH when the kernel reports a guard
 * that decides differently (out untouched then). */
tg_status ad_route_call(const tg_tape *t, const ad_route *r, struct tg_workspace *w,
                        const double *x, const double *v, double *out, const char *fn);
/* As tg_eval_batch / tg_gradient_batch through the batch variant: X
 * npts*nin, Out npts*nout_per_point; st (may be NULL): each point's
 * status (TG_ERR_BRANCH: its row is untouched). */
tg_status ad_route_batch(const tg_tape *t, const ad_route *r, size_t npts, const double *X,
                         double *Out, size_t out_per_point, tg_status *st, const char *fn);

#endif
