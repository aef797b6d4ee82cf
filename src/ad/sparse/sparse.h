/* src/ad/sparse/sparse.h -- sparsity: structural patterns, colourings and
 * compressed sweeps.  The file group:
 *   rule.c     which operand edges of an op carry a derivative, and which
 *              operand pairs have a nonzero second derivative (from rules.def)
 *   iset.c     index sets: sorted lists or bitsets, whichever is smaller
 *   pattern.c  Jacobian and Hessian patterns by forward index-set propagation
 *   ploop.c    the same through loops (MAP, SCAN) from their bodies' patterns
 *   colour.c   distance-2 (Jacobian) and star (Hessian) colourings
 *   sparsity.c the tg_sparsity object: construction, recovery maps, accessors
 *   eval.c     tg_sparse_jacobian / tg_sparse_hessian: compressed sweeps
 *   stape.c    sparse derivative tapes: compressed symbolic sweeps
 * src/ad/sparsity.c (seed compression inside tg_jacobian) uses this group. */
#ifndef TG_AD_SPARSE_H
#define TG_AD_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "tape/internal.h"

/* ------------------------------------------------------------- rule.c */

/* sp_edge[op][p]: bit 3 (SP_D1) set when the partial of op with respect to
 * operand p is not the literal 0 (comparisons and a select's condition have
 * none); bit 4 (SP_NZ) set when it can be a nonzero number (clear for the
 * steps floor, ceil, round, trunc, signum, whose partial is 0 or NaN);
 * bits 0..2: the operands q whose value that partial depends on, i.e. the
 * q with d2 op / dp dq structurally nonzero.  Piecewise-constant functions
 * count as constants for second order, so min, max, abs, select are
 * linear.  Jacobian patterns follow SP_D1 edges (a NaN partial reaches the
 * compressed sums exactly as the dense ones), Hessian patterns SP_NZ. */
#define SP_D1 8u
#define SP_NZ 16u
extern const uint8_t sp_edge[TG_OP_COUNT][3];

/* ------------------------------------------------------------- iset.c */

/* A set of indices in [0, U): a sorted list when that is smaller than a
 * bitset of U bits, else the bitset (32-bit words).  refs counts holders:
 * instructions may share one set (a unary op keeps its operand's set). */
typedef struct sp_set {
    uint32_t *p;
    uint32_t len, cap;      /* elements; capacity of p in words */
    uint32_t refs;
    uint8_t bits;
    struct sp_set *next;    /* free list */
} sp_set;

typedef struct sp_sets {
    uint32_t U, words;      /* universe; words of a bitset */
    int oom;                /* sticky: an allocation failed */
    sp_set *free;           /* recycled sets (buffers kept) */
    void **slabs;           /* set structs, allocated in slabs */
    uint32_t nslabs, slabcap, slabused;
    uint32_t *scratch;      /* U + 1 words */
} sp_sets;

int      sp_sets_init(sp_sets *S, uint32_t U);
void     sp_sets_free(sp_sets *S);
sp_set  *sp_set_new(sp_sets *S);
void     sp_set_release(sp_sets *S, sp_set *s);
sp_set  *sp_set_copy(sp_sets *S, const sp_set *s);
/* s |= the sorted, duplicate-free src[0..n) */
void     sp_set_add(sp_sets *S, sp_set *s, const uint32_t *src, uint32_t n);
/* s |= t */
void     sp_set_union(sp_sets *S, sp_set *s, const sp_set *t);
/* the elements in ascending order: s->p itself, or out[] (U words) */
const uint32_t *sp_set_list(const sp_set *s, uint32_t *out);

/* ---------------------------------------------------------- pattern.c */

/* A pattern by rows: row r holds cols[ptr[r] .. ptr[r+1]), ascending. */
typedef struct sp_csr {
    uint32_t nrows, ncols;
    size_t *ptr;
    uint32_t *cols;
} sp_csr;

void sp_csr_free(sp_csr *c);
/* Jacobian of t's outputs w.r.t. inputs [lo, lo+nw): m x nw.  Hessian of
 * the weighted output sum w.r.t. the same: lower triangle, nw x nw.
 * 0, or -1 when out of memory. */
int  sp_jacobian_pattern(const tg_tape *t, uint32_t lo, uint32_t nw, sp_csr *out);
int  sp_hessian_pattern(const tg_tape *t, uint32_t lo, uint32_t nw, sp_csr *out);
/* The transpose of a (ncols x nrows). */
int  sp_csr_transpose(const sp_csr *a, sp_csr *out);

/* ----------------------------------------------------------- colour.c */

/* Distance-2 colouring of the columns of a (CPR: columns sharing no row
 * share a colour); at is a's transpose.  color[ncols] (UINT32_MAX for an
 * empty column); returns the number of colours, or UINT32_MAX when out of
 * memory.  The best of several greedy vertex orderings. */
uint32_t sp_colour_columns(const sp_csr *a, const sp_csr *at, uint32_t *color);
/* Star colouring of the symmetric pattern whose lower triangle is low
 * (diagonal included or not); color[nrows].  UINT32_MAX: out of memory. */
uint32_t sp_colour_star(const sp_csr *low, uint32_t *color);
/* Checks (for tests): 1 if color is a valid distance-2 column colouring /
 * star colouring of the pattern. */
int      sp_check_columns(const sp_csr *a, const sp_csr *at, const uint32_t *color);
int      sp_check_star(const sp_csr *low, const uint32_t *color);

/* ----------------------------------------------------------- fwdtan.c */

/* Values v[n] and L tangent lanes vd[n*L] (L in 1, 2, 3, 4, TG_LANES; 5..7
 * run as TG_LANES) in one sweep; input k's seeds are seed[k*L .. k*L + L). */
void sp_forward_tangent(const tg_tape *t, const double *x, const double *seed, double *v,
                        double *vd, size_t L);

/* --------------------------------------------------------- sparsity.c */

enum { SP_JAC = 1, SP_HESS = 2 };

struct tg_sparsity {
    tg_status status;
    uint32_t ninst;         /* the tape's instruction count (tg_jacobian's cache key) */
    char err[256];
    int kind;               /* SP_JAC, SP_HESS */
    int by_rows;            /* Jacobian by adjoint sweeps over row colours */
    uint32_t nin, nout;     /* the tape's dimensions */
    uint32_t lo, nw;        /* differentiated inputs [lo, lo + nw) */
    size_t nnz;
    uint32_t *rows, *cols;  /* nnz each */
    uint32_t ncolors;
    /* seeding: colour of each seeded scalar (wrt input k for column and
     * Hessian colourings, output i for row colourings); UINT32_MAX: none */
    uint32_t nseed;
    uint32_t *seed_color;
    /* recovery: entry e is lane (ecolor[e] % 8) of the compressed result
     * of colour group ecolor[e] / 8, read at scalar src[e] (an output
     * index for column colourings, a wrt input index otherwise); grp_ent
     * lists the entries of group g in grp_ptr[g] .. grp_ptr[g+1] */
    uint32_t *src, *ecolor;
    size_t *grp_ptr;
    uint32_t *grp_ent;
};

/* Pattern + colouring + recovery for t (the public constructors and the
 * Jacobian compression inside tg_jacobian).  NULL only when out of memory.
 * budget < 0: always colour; else a Jacobian whose greedy colouring would
 * visit more than budget pairs of entries is left uncoloured (ncolors =
 * UINT32_MAX, no recovery map: compression cannot pay there). */
tg_sparsity *sp_build(const tg_tape *t, int kind, int wrt, double budget);
uint32_t     sp_groups(const tg_sparsity *s);

/* ------------------------------------------------------------- eval.c */

/* The compressed Jacobian sweeps of s (a coloured Jacobian sparsity of t)
 * in w's seeded layout (already reserved): entry e into out[e], or, with
 * ld > 0, into out[rows[e] * ld + cols[e]] (a dense J, zeroed here once
 * the branch guards hold).  TG_OK, a failing guard's status, or
 * TG_ERR_NOMEM (a loop's scratch); fn names the call. */
tg_status sp_jacobian_sweeps(const tg_tape *t, const tg_sparsity *s, tg_workspace *w,
                             const double *x, double *out, size_t ld, const char *fn);

#endif
