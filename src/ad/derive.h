/* src/ad/derive.h -- the derivative-tape builder of derive.c, for the
 * other files that record derivative tapes (src/ad/sparse/stape.c).  A
 * derive starts as a new tape with f's input blocks (plus an extra block),
 * f replayed onto it; symbolic sweeps then record after it. */
#ifndef TG_AD_DERIVE_H
#define TG_AD_DERIVE_H

#include "tape/internal.h"

typedef struct derive {
    const tg_tape *f;
    tg_tape *t;
    uint32_t lo, nw;        /* differentiated inputs [lo, lo + nw) */
    uint32_t extra;         /* first input index of the extra block, or TG_NIL */
    uint32_t *map;          /* f instruction -> t ref */
    uint32_t *fout;         /* f's outputs as t refs */
    uint32_t *d, *d2;       /* derivative refs over t's instructions */
    uint8_t *active;
} derive;

/* New tape "<f>_<suffix>" (see derive_begin): 0, or -1 with D->t in the
 * error state (or NULL when out of memory). */
int       ad_derive_begin(derive *D, const tg_tape *f, const char *suffix, int wrt,
                          uint32_t extra_size, const char *extra_base);
/* Frees buf and D's scratch; returns D->t. */
tg_tape  *ad_derive_end(derive *D, uint32_t *buf);
/* calloc that puts D->t in TG_ERR_NOMEM on failure */
void     *ad_derive_zalloc(tg_tape *t, size_t count, size_t size);
/* Tangent sweep over t's first n instructions, wrt inputs seeded with
 * seed[nw] (refs or TG_NIL); tangents of y[0..m) into out. */
int       ad_derive_tangent(derive *D, uint32_t n, const uint32_t *seed, const uint32_t *y,
                            uint32_t m, uint32_t *out);
/* Adjoint sweep over t's first n instructions seeded with refs w[j] on f's
 * output j; the wrt inputs' adjoints into out[nw].  Once per derive. */
int       ad_derive_vjp(derive *D, uint32_t n, const uint32_t *w, uint32_t *out);
/* Output block `name` of refs r[0..count) (TG_NIL: the constant 0). */
void      ad_derive_output(tg_tape *t, const char *name, const uint32_t *r, size_t count);

#endif
