/* src/ad/sparse/pat.h -- the state of one pattern sweep (pattern.c), shared
 * with its handler of loops (ploop.c).  Private to those two files. */
#ifndef TG_AD_SPARSE_PAT_H
#define TG_AD_SPARSE_PAT_H

#include "ad/sparse/sparse.h"

enum { LIVE = 1, NEED = 2, NONLIN = 4 };

/* A body's dependency pattern: its outputs (rows) on its inputs (cols),
 * along the edges of `mask` (SP_D1 or SP_NZ). */
typedef struct sp_dep {
    const tg_tape *b;
    unsigned mask;
    sp_csr D;
} sp_dep;

/* A body's second-order summary for one set of live outputs (live[k] for
 * body output k): which pairs of its inputs interact (H, symmetric, full
 * rows over the body's inputs) and which inputs reach a live output
 * through nonzero partials (inlive). */
typedef struct sp_hent {
    const tg_tape *b;
    uint64_t hash;
    uint8_t *live, *inlive;
    sp_csr H;
} sp_hent;

/* The summaries of the bodies met during one public call, made on first
 * use (entries are allocated one by one: pointers stay valid while the
 * tables grow under a nested sweep). */
typedef struct sp_cache {
    sp_dep **dep;
    uint32_t ndep, depcap;
    sp_hent **h;
    uint32_t nh, hcap;
} sp_cache;

typedef struct pat {
    const tg_tape *t;
    uint32_t lo, nw;
    sp_sets S;
    unsigned mask;      /* edges followed: SP_D1 (Jacobian) or SP_NZ (Hessian) */
    int hessian;
    const uint8_t *outlive; /* live outputs (Hessian of a body), NULL: all */
    sp_cache *cache;
    sp_set **set;       /* X per instruction */
    uint32_t *last;     /* last instruction reading the set; UINT32_MAX: kept */
    uint8_t *mark;
    sp_set **N;         /* Hessian rows: interactions (lower triangle) */
    uint32_t *bufq;     /* second list buffer (U words) */
    uint32_t **ids;     /* Hessian: per loop record, the sp_hent of each application */
} pat;

/* pattern.c: the pattern sweep on t over inputs [lo, lo + nw), following
 * `mask` edges: the Jacobian of its outputs (hessian == 0) or the lower
 * triangle of the Hessian of its live outputs (outlive, NULL: all).
 * 0, or -1 when out of memory. */
int  sp_pattern_run(const tg_tape *t, uint32_t lo, uint32_t nw, unsigned mask, int hessian,
                    const uint8_t *outlive, sp_cache *cache, sp_csr *out);
/* pattern.c: N_r |= { c in cl[0..cn) : c <= r } for r in rl[0..rn) */
void sp_interact_one(pat *P, const uint32_t *rl, uint32_t rn, const uint32_t *cl, uint32_t cn);

/* ploop.c: a MAP or SCAN at instruction i in the backward marking pass
 * (its XOUTs already marked): marks its operands and itself. */
void sp_loop_mark(pat *P, uint32_t i);
/* ploop.c: the same loop in the forward sweep: the sets of its needed
 * XOUTs and, for a Hessian, the interactions of its applications. */
void sp_loop_sweep(pat *P, uint32_t i);
void sp_cache_free(sp_cache *c);

#endif
