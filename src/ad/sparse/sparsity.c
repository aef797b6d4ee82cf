/* src/ad/sparse/sparsity.c -- the tg_sparsity object: pattern (pattern.c),
 * colouring (colour.c) and the recovery map the compressed sweeps follow,
 * all computed once; afterwards the object is immutable and may be shared
 * by any number of threads. */
#include <stdio.h>

#include "tape/alloc.h"
#include "ad/sparse/sparse.h"

#define NONE UINT32_MAX
enum { L8 = 8 };

static int
fail(tg_sparsity *s, tg_status st, const char *msg, const char *detail)
{
    s->status = st;
    snprintf(s->err, sizeof s->err, "%s%s", msg, detail ? detail : "");
    return -1;
}

static void
sp_release(tg_sparsity *s)
{
    mem_free(s->rows);
    mem_free(s->cols);
    mem_free(s->seed_color);
    mem_free(s->src);
    mem_free(s->ecolor);
    mem_free(s->grp_ptr);
    mem_free(s->grp_ent);
    s->rows = s->cols = s->seed_color = s->src = s->ecolor = s->grp_ent = NULL;
    s->grp_ptr = NULL;
}

uint32_t
sp_groups(const tg_sparsity *s)
{
    return (s->ncolors + L8 - 1) / L8;
}

/* rows[], cols[] from a CSR, and the per-entry arrays */
static int
entries(tg_sparsity *s, const sp_csr *p)
{
    size_t nnz = p->ptr[p->nrows], cnt = nnz ? nnz : 1;
    if (nnz > UINT32_MAX)               /* entries are numbered by uint32 */
        return fail(s, TG_ERR_LIMIT, "the pattern has more than 2^32 - 1 entries", NULL), -2;
    s->nnz = nnz;
    s->rows = mem_malloc(cnt * sizeof *s->rows);
    s->cols = mem_malloc(cnt * sizeof *s->cols);
    s->src = mem_malloc(cnt * sizeof *s->src);
    s->ecolor = mem_malloc(cnt * sizeof *s->ecolor);
    s->grp_ent = mem_malloc(cnt * sizeof *s->grp_ent);
    if (!s->rows || !s->cols || !s->src || !s->ecolor || !s->grp_ent)
        return -1;
    for (uint32_t r = 0; r < p->nrows; r++)
        for (size_t e = p->ptr[r]; e < p->ptr[r + 1]; e++) {
            s->rows[e] = r;
            s->cols[e] = p->cols[e];
        }
    return 0;
}

/* entries grouped by colour group (counting sort on ecolor / 8) */
static int
group(tg_sparsity *s)
{
    uint32_t G = sp_groups(s);
    s->grp_ptr = mem_calloc((size_t)G + 2, sizeof *s->grp_ptr);
    if (!s->grp_ptr)
        return -1;
    for (size_t e = 0; e < s->nnz; e++)
        s->grp_ptr[s->ecolor[e] / L8 + 2]++;
    for (uint32_t g = 0; g < G; g++)
        s->grp_ptr[g + 2] += s->grp_ptr[g + 1];
    for (size_t e = 0; e < s->nnz; e++)
        s->grp_ent[s->grp_ptr[s->ecolor[e] / L8 + 1]++] = (uint32_t)e;
    return 0;
}

/* the longest row of a */
static uint32_t
max_len(const sp_csr *a)
{
    size_t mx = 0;
    for (uint32_t r = 0; r < a->nrows; r++)
        mx = a->ptr[r + 1] - a->ptr[r] > mx ? a->ptr[r + 1] - a->ptr[r] : mx;
    return (uint32_t)mx;
}

/* Jacobian: columns or rows, whichever needs fewer colours (columns on a
 * tie: tangent sweeps need no adjoint bookkeeping). */
/* pairs of entries a greedy distance-2 colouring of a's columns visits */
static double
pair_cost(const sp_csr *a)
{
    double c = 0;
    for (uint32_t r = 0; r < a->nrows; r++) {
        double len = (double)(a->ptr[r + 1] - a->ptr[r]);
        c += len * len;
    }
    return c;
}

static int
jacobian(tg_sparsity *s, const tg_tape *t, double budget)
{
    sp_csr J, JT;
    uint32_t *cc = NULL, *rc = NULL;
    int ok = -1;
    memset(&JT, 0, sizeof JT);
    if (sp_jacobian_pattern(t, s->lo, s->nw, &J))
        return -1;
    if (sp_csr_transpose(&J, &JT) || (ok = entries(s, &J)) != 0)
        goto out;
    ok = -1;
    cc = mem_malloc(((size_t)s->nw + 1) * sizeof *cc);
    rc = mem_malloc(((size_t)t->nout + 1) * sizeof *rc);
    if (!cc || !rc)
        goto out;
    /* a colouring needs at least its longest row (columns) or column
     * (rows) colours, at most its vertex count: skip the side that cannot
     * win (a dense row makes column colouring quadratic and useless) */
    uint32_t ncc = NONE, nrc = NONE;
    int try_rows = max_len(&JT) < s->nw;
    int try_cols = max_len(&J) < t->nout || !try_rows;
    if (budget >= 0) {
        try_cols &= pair_cost(&J) <= budget;
        try_rows &= pair_cost(&JT) <= budget;
        if (!try_cols && !try_rows) {       /* too dense to pay: leave uncoloured */
            s->ncolors = NONE;
            ok = 0;
            goto out;
        }
    }
    if (try_cols && (ncc = sp_colour_columns(&J, &JT, cc)) == NONE)
        goto out;
    if (try_rows && (nrc = sp_colour_columns(&JT, &J, rc)) == NONE)
        goto out;
    s->by_rows = nrc < ncc;
    s->ncolors = s->by_rows ? nrc : ncc;
    s->nseed = s->by_rows ? t->nout : s->nw;
    s->seed_color = s->by_rows ? rc : cc;
    if (s->by_rows)
        rc = NULL;
    else
        cc = NULL;
    for (size_t e = 0; e < s->nnz; e++) {
        /* column colouring: lane of colour(col) at output row;
         * row colouring: lane of colour(row) at input col */
        s->src[e] = s->by_rows ? s->cols[e] : s->rows[e];
        s->ecolor[e] = s->seed_color[s->by_rows ? s->rows[e] : s->cols[e]];
    }
    ok = group(s);
out:
    mem_free(cc);
    mem_free(rc);
    sp_csr_free(&J);
    sp_csr_free(&JT);
    return ok;
}

/* Hessian: star colouring, direct recovery.  Entry (r, c), c < r, is read
 * in row r at colour(c) when c is r's only neighbour of that colour, else
 * in row c at colour(r) (then r is c's only one: the star property). */
static int
hessian(tg_sparsity *s, const tg_tape *t)
{
    sp_csr H, HT;
    uint32_t *cnt = NULL, *stamp = NULL;
    int ok = -1;
    memset(&HT, 0, sizeof HT);
    if (sp_hessian_pattern(t, s->lo, s->nw, &H))
        return -1;
    size_t nv = (size_t)s->nw + 1;
    s->seed_color = mem_malloc(nv * sizeof *s->seed_color);
    cnt = mem_malloc(nv * sizeof *cnt);
    stamp = mem_malloc(nv * sizeof *stamp);
    if (!s->seed_color || !cnt || !stamp || sp_csr_transpose(&H, &HT)
        || (ok = entries(s, &H)) != 0)
        goto out;
    ok = -1;
    s->nseed = s->nw;
    if ((s->ncolors = sp_colour_star(&H, s->seed_color)) == NONE)
        goto out;
    const uint32_t *color = s->seed_color;
    for (uint32_t c = 0; c < s->nw; c++)
        stamp[c] = NONE;
    for (uint32_t r = 0; r < s->nw; r++) {
        /* neighbours of r per colour: its row (c < r) and column (c > r) */
        for (int side = 0; side < 2; side++) {
            const sp_csr *P = side ? &HT : &H;
            for (size_t e = P->ptr[r]; e < P->ptr[r + 1]; e++) {
                uint32_t c = P->cols[e], k = color[c];
                if (c == r)
                    continue;
                if (stamp[k] != r) {
                    stamp[k] = r;
                    cnt[k] = 0;
                }
                cnt[k]++;
            }
        }
        for (size_t e = H.ptr[r]; e < H.ptr[r + 1]; e++) {
            uint32_t c = H.cols[e];
            int here = c == r || cnt[color[c]] == 1;
            s->src[e] = here ? r : c;
            s->ecolor[e] = here ? color[c] : color[r];
        }
    }
    ok = group(s);
out:
    mem_free(cnt);
    mem_free(stamp);
    sp_csr_free(&H);
    sp_csr_free(&HT);
    return ok;
}

tg_sparsity *
sp_build(const tg_tape *t, int kind, int wrt, double budget)
{
    tg_sparsity *s = mem_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    const char *what = kind == SP_JAC ? "tg_jacobian_sparsity: " : "tg_hessian_sparsity: ";
    if (!t) {
        fail(s, TG_ERR_ARG, what, "NULL tape");
        return s;
    }
    if (t->status != TG_OK) {
        s->status = t->status;
        snprintf(s->err, sizeof s->err, "%stape \"%.64s\" is in the error state: %.120s", what,
                 t->name, t->err);
        return s;
    }
    s->nin = t->nin;
    s->nout = t->nout;
    s->ninst = t->n;
    if (wrt == TG_ALL) {
        s->lo = 0;
        s->nw = t->nin;
    } else if (wrt >= 0 && (uint32_t)wrt < t->ninb) {
        s->lo = t->inb[wrt].offset;
        s->nw = t->inb[wrt].size;
    } else {
        s->status = TG_ERR_ARG;
        snprintf(s->err, sizeof s->err, "%swrt %d is not an input block of \"%.64s\" (it has %u)",
                 what, wrt, t->name, t->ninb);
        return s;
    }
    int rc = kind == SP_JAC ? jacobian(s, t, budget) : hessian(s, t);
    if (rc == 0 || rc == -2) {          /* done, or an error state (a limit) */
        if (rc) {
            sp_release(s);
            s->nnz = s->ncolors = 0;
        }
        return s;
    }
    sp_release(s);
    mem_free(s);
    return NULL;
}

/* ------------------------------------------------------------ public */

tg_sparsity *
tg_jacobian_sparsity(const tg_tape *t, int wrt)
{
    return sp_build(t, SP_JAC, wrt, -1.0);
}

tg_sparsity *
tg_hessian_sparsity(const tg_tape *t, int wrt)
{
    return sp_build(t, SP_HESS, wrt, -1.0);
}

tg_status
tg_sparsity_status(const tg_sparsity *s)
{
    return s ? s->status : TG_ERR_ARG;
}

const char *
tg_sparsity_error(const tg_sparsity *s)
{
    return s ? s->err : "NULL sparsity";
}

size_t
tg_sparsity_nnz(const tg_sparsity *s)
{
    return s && s->status == TG_OK ? s->nnz : 0;
}

const uint32_t *
tg_sparsity_rows(const tg_sparsity *s)
{
    return s && s->status == TG_OK ? s->rows : NULL;
}

const uint32_t *
tg_sparsity_cols(const tg_sparsity *s)
{
    return s && s->status == TG_OK ? s->cols : NULL;
}

size_t
tg_sparsity_colors(const tg_sparsity *s)
{
    return s && s->status == TG_OK ? s->ncolors : 0;
}

void
tg_sparsity_free(tg_sparsity *s)
{
    if (!s)
        return;
    sp_release(s);
    mem_free(s);
}
