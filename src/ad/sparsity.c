/* src/ad/sparsity.c -- Jacobian seed compression [Curtis, Powell & Reid,
 * IMA J. Appl. Math. 13 (1974); Gebremedhin, Manne & Pothen, SIAM Review
 * 47(4), 2005].  The structural pattern of J (which outputs depend on which
 * inputs) is propagated through the tape 64 inputs at a time as bit masks;
 * columns that share no row get the same colour (greedy, in column order);
 * one tangent direction per colour then yields every entry of J.  The
 * pattern is structural (both branches of a select count), so it contains
 * every entry that can be nonzero and the result equals the uncompressed
 * one.  All scratch lives in the caller's workspace (sized on the first
 * call, reused after). */
#include "ad/sweep.h"

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

/* Nonzeros of J by rows into rowptr[m+1] / cols (cols NULL: count only). */
static size_t
pattern(const tg_tape *t, uint64_t *mask, uint32_t *rowptr, uint32_t *cols)
{
    size_t nnz = 0;
    if (rowptr)
        memset(rowptr, 0, ((size_t)t->nout + 1) * sizeof *rowptr);
    for (uint32_t j0 = 0; j0 < t->nin; j0 += 64) {       /* counts per row */
        chunk_masks(t, j0, mask);
        for (uint32_t r = 0; r < t->nout; r++) {
            uint32_t c = popcount64(mask[t->out_ref[r]]);
            nnz += c;
            if (rowptr)
                rowptr[r + 1] += c;
        }
    }
    if (!cols)
        return nnz;
    for (uint32_t r = 0; r < t->nout; r++)
        rowptr[r + 1] += rowptr[r];
    uint32_t *fill = (uint32_t *)(void *)mask;          /* reuse as a cursor */
    for (uint32_t j0 = 0; j0 < t->nin; j0 += 64) {       /* columns, ascending */
        chunk_masks(t, j0, mask + t->nout);
        for (uint32_t r = 0; r < t->nout; r++) {
            if (j0 == 0)
                fill[r] = rowptr[r];
            for (uint64_t mk = mask[t->nout + t->out_ref[r]]; mk; mk &= mk - 1)
                cols[fill[r]++] = j0 + ctz64(mk);
        }
    }
    return nnz;
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

static size_t
words(size_t count)
{
    return (count + 1) / 2;     /* uint32 counts in doubles */
}

int
ad_jacobian_compressed(const tg_tape *t, tg_workspace *w, const double *x, double *J)
{
    size_t n = t->n, nin = t->nin, m = t->nout;
    size_t sweeps = (nin < m ? nin : m);
    sweeps = (sweeps + L8 - 1) / L8;
    if (sweeps <= 1 || ad_ws_reserve(w, n + m + 1))
        return 1;                                   /* nothing to gain, or no memory */
    size_t nnz = pattern(t, (uint64_t *)(void *)w->buf, NULL, NULL);
    /* v | lanes | mask | seed | rowptr | cols | colptr | rows | stamp | color */
    size_t need = n + L8 * n + (n + m) + L8 * nin + words(m + 1) + words(nnz)
                + words(nin + 1) + words(nnz) + words(nin) + words(nin);
    if (ad_ws_reserve(w, need))
        return 1;
    double *v = w->buf, *lanes = v + n, *seed = lanes + L8 * n + (n + m);
    uint64_t *mask = (uint64_t *)(void *)(lanes + L8 * n);
    uint32_t *rowptr = (uint32_t *)(void *)(seed + L8 * nin);
    uint32_t *cols = rowptr + 2 * words(m + 1), *colptr = cols + 2 * words(nnz);
    uint32_t *rows = colptr + 2 * words(nin + 1), *stamp = rows + 2 * words(nnz);
    uint32_t *color = stamp + 2 * words(nin);
    pattern(t, mask, rowptr, cols);
    if (colouring_cost(t, rowptr) > (double)n * (double)nin)
        return 1;                                   /* denser than worth colouring */
    uint32_t ncolors = colour(t, rowptr, cols, colptr, rows, stamp, color);
    if ((ncolors + L8 - 1) / L8 >= sweeps)
        return 1;
    ad_forward1(t, x, v);
    memset(J, 0, m * nin * sizeof *J);
    for (uint32_t c0 = 0; c0 < ncolors; c0 += L8) {
        for (size_t k = 0; k < nin; k++)
            for (int l = 0; l < L8; l++)
                seed[k * L8 + l] = color[k] == c0 + (uint32_t)l ? 1.0 : 0.0;
        ad_tangentD(t, v, seed, 0, lanes);
        for (uint32_t r = 0; r < m; r++)
            for (uint32_t e = rowptr[r]; e < rowptr[r + 1]; e++)
                if (color[cols[e]] - c0 < (uint32_t)L8)
                    J[r * nin + cols[e]] = lanes[(size_t)t->out_ref[r] * L8 + (color[cols[e]] - c0)];
    }
    return 0;
}
