/* src/ad/sparsity.c -- Jacobian seed compression [Curtis, Powell & Reid,
 * IMA J. Appl. Math. 13 (1974); Gebremedhin, Manne & Pothen, SIAM Review
 * 47(4), 2005].  The structural pattern of J (which outputs depend on which
 * inputs) is propagated through the tape 64 inputs at a time as bit masks;
 * columns that share no row get the same colour (greedy, in column order);
 * one tangent direction per colour then yields every entry of J.  The
 * pattern is structural (both branches of a select count), so it contains
 * every entry that can be nonzero and the result equals the uncompressed
 * one.  All scratch lives in the caller's workspace, in the compressed
 * layout of layout.h. */
#include "ad/layout.h"

enum { L8 = TG_LANES };

static uint32_t
ctz64(uint64_t x)
{
#if defined(__GNUC__)
    return (uint32_t)__builtin_ctzll(x);
#else
    uint32_t k = 0;
    while (!(x & 1)) {
        x >>= 1;
        k++;
    }
    return k;
#endif
}

static uint32_t
popcount64(uint64_t x)
{
#if defined(__GNUC__)
    return (uint32_t)__builtin_popcountll(x);
#else
    uint32_t c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
#endif
}

/* Masks of instruction dependence on inputs j0 .. j0+63. */
static void
chunk_masks(const tg_tape *t, uint32_t j0, uint64_t *mask)
{
    for (uint32_t i = 0; i < t->n; i++) {
        uint8_t op = t->op[i];
        int ar = tape_op_arity[op];
        uint64_t mk = 0;
        if (op == TG_OP_INPUT)
            mk = (t->a[i] >= j0 && t->a[i] - j0 < 64) ? (uint64_t)1 << (t->a[i] - j0) : 0;
        else if (op != TG_OP_CONST)
            mk = mask[t->a[i]] | (ar >= 2 ? mask[t->b[i]] : 0) | (ar >= 3 ? mask[t->c[i]] : 0);
        mask[i] = mk;
    }
}

/* Counts J's nonzeros by rows: rowptr[r] = first entry of row r (m + 1
 * prefix sums).  mask: n scratch masks.  Returns nnz. */
static size_t
count_rows(const tg_tape *t, uint64_t *mask, uint32_t *rowptr)
{
    memset(rowptr, 0, ((size_t)t->nout + 1) * sizeof *rowptr);
    for (uint32_t j0 = 0; j0 < t->nin; j0 += 64) {
        chunk_masks(t, j0, mask);
        for (uint32_t r = 0; r < t->nout; r++)
            rowptr[r + 1] += popcount64(mask[t->out_ref[r]]);
    }
    for (uint32_t r = 0; r < t->nout; r++)
        rowptr[r + 1] += rowptr[r];
    return rowptr[t->nout];
}

/* The columns of each row, ascending, into cols (rowptr from count_rows).
 * mask: n + m scratch words (m row cursors, then n masks). */
static void
fill_cols(const tg_tape *t, uint64_t *mask, const uint32_t *rowptr, uint32_t *cols)
{
    uint32_t *fill = (uint32_t *)(void *)mask;
    memcpy(fill, rowptr, (size_t)t->nout * sizeof *fill);
    for (uint32_t j0 = 0; j0 < t->nin; j0 += 64) {
        chunk_masks(t, j0, mask + t->nout);
        for (uint32_t r = 0; r < t->nout; r++)
            for (uint64_t mk = mask[t->nout + t->out_ref[r]]; mk; mk &= mk - 1)
                cols[fill[r]++] = j0 + ctz64(mk);
    }
}

/* Greedy colouring of the columns: color[j], returns the number of
 * colours.  colptr/rows: the transpose; stamp: nin scratch. */
static uint32_t
colour(const tg_tape *t, const uint32_t *rowptr, const uint32_t *cols, uint32_t *colptr,
       uint32_t *rows, uint32_t *stamp, uint32_t *color)
{
    uint32_t nin = t->nin, m = t->nout, ncolors = 0;
    memset(colptr, 0, ((size_t)nin + 1) * sizeof *colptr);
    for (uint32_t e = 0; e < rowptr[m]; e++)
        colptr[cols[e] + 1]++;
    for (uint32_t j = 0; j < nin; j++)
        colptr[j + 1] += colptr[j];
    for (uint32_t j = 0; j < nin; j++)
        stamp[j] = colptr[j];
    for (uint32_t r = 0; r < m; r++)
        for (uint32_t e = rowptr[r]; e < rowptr[r + 1]; e++)
            rows[stamp[cols[e]]++] = r;
    for (uint32_t j = 0; j < nin; j++)
        stamp[j] = UINT32_MAX;
    for (uint32_t j = 0; j < nin; j++) {
        for (uint32_t e = colptr[j]; e < colptr[j + 1]; e++) {
            uint32_t r = rows[e];
            for (uint32_t f = rowptr[r]; f < rowptr[r + 1] && cols[f] < j; f++)
                stamp[color[cols[f]]] = j;          /* colour used by a neighbour */
        }
        uint32_t c = 0;
        while (stamp[c] == j)
            c++;
        color[j] = c;
        if (c + 1 > ncolors)
            ncolors = c + 1;
    }
    return ncolors;
}

/* Work units: colouring visits every pair of nonzeros in a row. */
static double
colouring_cost(const tg_tape *t, const uint32_t *rowptr)
{
    double s = 0;
    for (uint32_t r = 0; r < t->nout; r++) {
        double len = rowptr[r + 1] - rowptr[r];
        s += len * len;
    }
    return s;
}

/* Dense sweeps of 8 lanes a Jacobian of t takes: by columns or by rows. */
static size_t
sweeps(const tg_tape *t)
{
    size_t nin = t->nin, m = t->nout;
    return ((nin < m ? nin : m) + L8 - 1) / L8;
}

/* Whether compression can pay on t: 1 when it cannot (one sweep either
 * way, or a pattern too dense to colour cheaply), 0 with the pattern
 * counted into the layout of nnz = 0 (*nnz set), -1 out of memory. */
static int
plan(const tg_tape *t, tg_workspace *w, size_t *nnz)
{
    if (sweeps(t) <= 1)
        return 1;
    ad_compressed_layout L0 = ad_layout_compressed(t, 0);
    if (ad_ws_reserve(w, L0.size))
        return -1;
    uint32_t *rowptr = AD_U32(w, L0.rowptr);
    *nnz = count_rows(t, AD_U64(w, L0.mask), rowptr);
    if (colouring_cost(t, rowptr) > (double)t->n * (double)t->nin)
        return 1;                                   /* denser than worth colouring */
    return 0;
}

/* The largest of what tg_jacobian_ws reserves on t: the dense layout,
 * the counting layout (nnz = 0) when plan counts, the full one when it
 * goes on to colour. */
size_t
ad_jacobian_need(const tg_tape *t, tg_workspace *w)
{
    size_t need = ad_layout_jacobian(t).size, nnz = 0;
    size_t counting = ad_layout_compressed(t, 0).size;
    int r = plan(t, w, &nnz);
    if (r < 0)
        return 0;
    if (sweeps(t) > 1 && counting > need)          /* plan counted the pattern */
        need = counting;
    if (r == 0 && ad_layout_compressed(t, nnz).size > need)
        need = ad_layout_compressed(t, nnz).size;
    return need;
}

int
ad_jacobian_compressed(const tg_tape *t, tg_workspace *w, const double *x, double *J)
{
    size_t nin = t->nin, m = t->nout, nnz = 0;
    if (plan(t, w, &nnz))
        return 1;                                   /* nothing to gain, or no memory */
    ad_compressed_layout L = ad_layout_compressed(t, nnz);
    const double *counted_in = w->buf;
    if (ad_ws_reserve(w, L.size))
        return 1;
    uint64_t *mask = AD_U64(w, L.mask);
    uint32_t *rowptr = AD_U32(w, L.rowptr), *cols = AD_U32(w, L.cols);
    if (w->buf != counted_in)                       /* the workspace grew: count again */
        count_rows(t, mask, rowptr);
    fill_cols(t, mask, rowptr, cols);
    uint32_t *color = AD_U32(w, L.color);
    uint32_t ncolors = colour(t, rowptr, cols, AD_U32(w, L.colptr), AD_U32(w, L.rows),
                              AD_U32(w, L.stamp), color);
    if ((ncolors + L8 - 1) / L8 >= sweeps(t))
        return 1;
    double *v = AD_F64(w, L.dense.v), *lanes = AD_F64(w, L.dense.lanes);
    double *seed = AD_F64(w, L.seed);
    ad_forward_one(t, x, v);
    memset(J, 0, m * nin * sizeof *J);
    for (uint32_t c0 = 0; c0 < ncolors; c0 += L8) {
        for (size_t k = 0; k < nin; k++)
            for (size_t l = 0; l < L8; l++)
                seed[k * L8 + l] = color[k] == c0 + l ? 1.0 : 0.0;
        ad_tangent_lanes(t, v, seed, 0, lanes);
        for (uint32_t r = 0; r < m; r++)
            for (uint32_t e = rowptr[r]; e < rowptr[r + 1]; e++)
                if (color[cols[e]] - c0 < (uint32_t)L8)
                    J[r * nin + cols[e]] = lanes[(size_t)t->out_ref[r] * L8 + (color[cols[e]] - c0)];
    }
    return 0;
}
