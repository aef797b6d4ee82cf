/* src/ad/sparse/colour.c -- colourings for compressed derivatives
 * [Gebremedhin, Manne & Pothen, "What color is your Jacobian? Graph
 * coloring for computing derivatives", SIAM Review 47(4), 2005].
 *
 * Jacobians: partial distance-2 colouring of the columns (two columns
 * sharing a row get different colours: the Curtis-Powell-Reid grouping),
 * greedy over a vertex ordering.
 *
 * Hessians: star colouring (a distance-1 colouring in which every path on
 * four vertices uses at least three colours), which allows direct
 * recovery: every entry h_ij is read off one compressed product without
 * arithmetic, so the sparse Hessian carries no more rounding than the
 * dense one.  Acyclic colouring with substitution would need fewer colours
 * on some patterns (never on the banded and arrowhead patterns of the
 * targets, where star colouring is already optimal: 3 for a tridiagonal
 * Hessian, 2 for an arrowhead) but its recovery solves triangular systems
 * whose rounding error grows with the substitution chains; we chose exact.
 * The greedy star colouring keeps, for every pair of colours, the
 * two-coloured subgraph a forest of stars (the bookkeeping of Gebremedhin,
 * Tarafdar, Manne & Pothen, SIAM J. Sci. Comput. 29(3), 2007): a vertex v
 * may take colour k unless, for some neighbour w of colour c, the k-c
 * component of w would stop being a star -- when v has another neighbour
 * of colour c and w has a neighbour of colour k, or when that component is
 * a star centred on a k-coloured vertex.
 *
 * Each colouring tries several orderings (natural, largest first, smallest
 * last) and keeps the one with fewest colours.  Work: O(sum over vertices
 * of their distance-2 neighbourhoods); memory O(nnz). */
#include "tape/alloc.h"
#include "ad/sparse/sparse.h"

#define NONE UINT32_MAX

/* ------------------------------------------------------------ orderings */

/* order[] by key descending (counting sort, stable) */
static int
order_by_key_desc(const uint32_t *key, uint32_t n, uint32_t *order)
{
    uint32_t kmax = 0;
    for (uint32_t v = 0; v < n; v++)
        kmax = key[v] > kmax ? key[v] : kmax;
    size_t *cnt = mem_calloc((size_t)kmax + 2, sizeof *cnt);
    if (!cnt)
        return -1;
    for (uint32_t v = 0; v < n; v++)
        cnt[kmax - key[v] + 1]++;
    for (uint32_t k = 0; k <= kmax; k++)
        cnt[k + 1] += cnt[k];
    for (uint32_t v = 0; v < n; v++)
        order[cnt[kmax - key[v]]++] = v;
    mem_free(cnt);
    return 0;
}

/* Smallest last [Matula & Beck 1983]: repeatedly remove a vertex of least
 * remaining degree; colour in the reverse order of removal.  Bucket lists
 * give O(V + E). */
static int
order_smallest_last(const sp_csr *adj, uint32_t *order)
{
    uint32_t n = adj->nrows, dmax = 0;
    uint32_t *deg = mem_malloc(((size_t)n + 1) * sizeof *deg);
    uint32_t *head = NULL, *next = mem_malloc(((size_t)n + 1) * sizeof *next);
    uint32_t *prev = mem_malloc(((size_t)n + 1) * sizeof *prev);
    uint8_t *gone = mem_calloc((size_t)n + 1, 1);
    int rc = -1;
    if (!deg || !next || !prev || !gone)
        goto out;
    for (uint32_t v = 0; v < n; v++) {
        deg[v] = (uint32_t)(adj->ptr[v + 1] - adj->ptr[v]);
        dmax = deg[v] > dmax ? deg[v] : dmax;
    }
    if (!(head = mem_malloc(((size_t)dmax + 1) * sizeof *head)))
        goto out;
    for (uint32_t d = 0; d <= dmax; d++)
        head[d] = NONE;
    for (uint32_t v = 0; v < n; v++) {
        next[v] = head[deg[v]];
        prev[v] = NONE;
        if (head[deg[v]] != NONE)
            prev[head[deg[v]]] = v;
        head[deg[v]] = v;
    }
    uint32_t dmin = 0;
    for (uint32_t k = n; k-- > 0;) {
        while (head[dmin] == NONE)
            dmin++;
        uint32_t v = head[dmin];
        head[dmin] = next[v];
        if (next[v] != NONE)
            prev[next[v]] = NONE;
        gone[v] = 1;
        order[k] = v;
        for (size_t e = adj->ptr[v]; e < adj->ptr[v + 1]; e++) {
            uint32_t u = adj->cols[e];
            if (gone[u])
                continue;
            /* unlink u from bucket deg[u], relink in deg[u] - 1 */
            if (prev[u] != NONE)
                next[prev[u]] = next[u];
            else
                head[deg[u]] = next[u];
            if (next[u] != NONE)
                prev[next[u]] = prev[u];
            deg[u]--;
            next[u] = head[deg[u]];
            prev[u] = NONE;
            if (head[deg[u]] != NONE)
                prev[head[deg[u]]] = u;
            head[deg[u]] = u;
            if (deg[u] < dmin)
                dmin = deg[u];
        }
    }
    rc = 0;
out:
    mem_free(deg);
    mem_free(head);
    mem_free(next);
    mem_free(prev);
    mem_free(gone);
    return rc;
}

/* ------------------------------------------------- distance-2 (columns) */

static uint32_t
greedy_d2(const sp_csr *a, const sp_csr *at, const uint32_t *order, uint32_t *color,
          uint32_t *stamp)
{
    uint32_t n = at->nrows, ncolors = 0;
    for (uint32_t j = 0; j < n; j++) {
        color[j] = NONE;
        stamp[j] = NONE;
    }
    for (uint32_t k = 0; k < n; k++) {
        uint32_t j = order[k];
        if (at->ptr[j] == at->ptr[j + 1])
            continue;                       /* an empty column needs no colour */
        for (size_t e = at->ptr[j]; e < at->ptr[j + 1]; e++) {
            uint32_t r = at->cols[e];
            for (size_t f = a->ptr[r]; f < a->ptr[r + 1]; f++) {
                uint32_t c = color[a->cols[f]];
                if (c != NONE)
                    stamp[c] = k;
            }
        }
        uint32_t c = 0;
        while (stamp[c] == k)
            c++;
        color[j] = c;
        ncolors = c + 1 > ncolors ? c + 1 : ncolors;
    }
    return ncolors;
}

uint32_t
sp_colour_columns(const sp_csr *a, const sp_csr *at, uint32_t *color)
{
    uint32_t n = at->nrows, best = NONE;
    uint32_t *order = mem_malloc(((size_t)n + 1) * sizeof *order);
    uint32_t *key = mem_malloc(((size_t)n + 1) * sizeof *key);
    uint32_t *stamp = mem_malloc(((size_t)n + 1) * sizeof *stamp);
    uint32_t *tmp = mem_malloc(((size_t)n + 1) * sizeof *tmp);
    if (!order || !key || !stamp || !tmp)
        goto out;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            for (uint32_t j = 0; j < n; j++)
                order[j] = j;
        } else {
            /* largest first by the size of the distance-2 neighbourhood
             * (with multiplicity: cheap and close) */
            for (uint32_t j = 0; j < n; j++) {
                size_t d = 0;
                for (size_t e = at->ptr[j]; e < at->ptr[j + 1]; e++)
                    d += a->ptr[at->cols[e] + 1] - a->ptr[at->cols[e]];
                key[j] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            }
            if (order_by_key_desc(key, n, order))
                goto out;
        }
        uint32_t c = greedy_d2(a, at, order, tmp, stamp);
        if (best == NONE || c < best) {
            best = c;
            memcpy(color, tmp, (size_t)n * sizeof *color);
        }
    }
out:
    mem_free(order);
    mem_free(key);
    mem_free(stamp);
    mem_free(tmp);
    return best;
}

int
sp_check_columns(const sp_csr *a, const sp_csr *at, const uint32_t *color)
{
    for (uint32_t j = 0; j < at->nrows; j++)
        if ((at->ptr[j] < at->ptr[j + 1]) != (color[j] != NONE))
            return 0;
    for (uint32_t r = 0; r < a->nrows; r++)
        for (size_t e = a->ptr[r]; e < a->ptr[r + 1]; e++)
            for (size_t f = e + 1; f < a->ptr[r + 1]; f++)
                if (color[a->cols[e]] == color[a->cols[f]])
                    return 0;
    return 1;
}

/* --------------------------------------------------------------- star */

/* The adjacency graph of a symmetric pattern given by its lower triangle:
 * both directions, no diagonal; mirror[e] is the position of the reverse
 * of edge e.  need[v]: v has any entry (so it needs a colour). */
typedef struct graph {
    sp_csr adj;
    size_t *mirror;
    uint8_t *need;
} graph;

static void
graph_free(graph *g)
{
    sp_csr_free(&g->adj);
    mem_free(g->mirror);
    mem_free(g->need);
}

static int
graph_make(const sp_csr *low, graph *g)
{
    uint32_t n = low->nrows;
    memset(g, 0, sizeof *g);
    g->adj.nrows = g->adj.ncols = n;
    g->adj.ptr = mem_calloc((size_t)n + 2, sizeof *g->adj.ptr);
    g->need = mem_calloc((size_t)n + 1, 1);
    size_t *fill = mem_malloc(((size_t)n + 1) * sizeof *fill);
    if (!g->adj.ptr || !g->need || !fill)
        goto fail;
    for (uint32_t r = 0; r < n; r++)
        for (size_t e = low->ptr[r]; e < low->ptr[r + 1]; e++) {
            uint32_t c = low->cols[e];
            g->need[r] = g->need[c] = 1;
            if (c < r) {
                g->adj.ptr[r + 1]++;
                g->adj.ptr[c + 1]++;
            }
        }
    for (uint32_t v = 0; v < n; v++)
        g->adj.ptr[v + 1] += g->adj.ptr[v];
    size_t m2 = g->adj.ptr[n];
    g->adj.cols = mem_malloc((m2 ? m2 : 1) * sizeof *g->adj.cols);
    g->mirror = mem_malloc((m2 ? m2 : 1) * sizeof *g->mirror);
    if (!g->adj.cols || !g->mirror)
        goto fail;
    memcpy(fill, g->adj.ptr, (size_t)n * sizeof *fill);
    for (uint32_t r = 0; r < n; r++)
        for (size_t e = low->ptr[r]; e < low->ptr[r + 1]; e++) {
            uint32_t c = low->cols[e];
            if (c >= r)
                continue;
            size_t p = fill[r]++, q = fill[c]++;
            g->adj.cols[p] = c;
            g->adj.cols[q] = r;
            g->mirror[p] = q;
            g->mirror[q] = p;
        }
    mem_free(fill);
    return 0;
fail:
    mem_free(fill);
    graph_free(g);
    return -1;
}

typedef struct star_ws {
    uint32_t *forbid, *seen, *count;    /* per colour, stamped by vertex */
    uint32_t *pairstar, *pairstamp;     /* per colour: the star v hubs for it */
    uint32_t *star, *hub;               /* per edge (min of the two positions), per star */
} star_ws;

static uint32_t
greedy_star(const graph *g, const uint32_t *order, uint32_t *color, star_ws *W)
{
    const sp_csr *A = &g->adj;
    uint32_t n = A->nrows, ncolors = 0, nstars = 0;
    for (uint32_t v = 0; v < n; v++) {
        color[v] = NONE;
        W->forbid[v] = W->seen[v] = W->pairstamp[v] = NONE;
    }
#define EDGE(e) (W->star[(e) < g->mirror[e] ? (e) : g->mirror[e]])
    for (uint32_t k = 0; k < n; k++) {
        uint32_t v = order[k];
        if (!g->need[v])
            continue;
        /* neighbours' colours are forbidden; count them per colour */
        for (size_t e = A->ptr[v]; e < A->ptr[v + 1]; e++) {
            uint32_t c = color[A->cols[e]];
            if (c == NONE)
                continue;
            W->forbid[c] = k;
            if (W->seen[c] != k) {
                W->seen[c] = k;
                W->count[c] = 0;
            }
            W->count[c]++;
        }
        for (size_t e = A->ptr[v]; e < A->ptr[v + 1]; e++) {
            uint32_t w = A->cols[e], cw = color[w];
            if (cw == NONE)
                continue;
            int multi = W->count[cw] >= 2;
            for (size_t f = A->ptr[w]; f < A->ptr[w + 1]; f++) {
                uint32_t x = A->cols[f], cx = color[x];
                if (x == v || cx == NONE || W->forbid[cx] == k)
                    continue;
                if (multi || W->hub[EDGE(f)] == x)
                    W->forbid[cx] = k;
            }
        }
        uint32_t c = 0;
        while (W->forbid[c] == k)
            c++;
        color[v] = c;
        ncolors = c + 1 > ncolors ? c + 1 : ncolors;
        /* the stars v joins or starts */
        for (size_t e = A->ptr[v]; e < A->ptr[v + 1]; e++) {
            uint32_t w = A->cols[e], cw = color[w];
            if (cw == NONE)
                continue;
            if (W->count[cw] >= 2) {            /* v hubs a new star of colours c, cw */
                if (W->pairstamp[cw] != k) {
                    W->pairstamp[cw] = k;
                    W->pairstar[cw] = nstars;
                    W->hub[nstars++] = v;
                }
                EDGE(e) = W->pairstar[cw];
                continue;
            }
            uint32_t s = NONE;
            for (size_t f = A->ptr[w]; f < A->ptr[w + 1] && s == NONE; f++)
                if (A->cols[f] != v && color[A->cols[f]] == c)
                    s = EDGE(f);
            if (s != NONE) {
                W->hub[s] = w;                  /* v joins w's star as a leaf */
            } else {
                s = nstars++;                   /* a lone edge: no hub yet */
                W->hub[s] = NONE;
            }
            EDGE(e) = s;
        }
    }
#undef EDGE
    return ncolors;
}

uint32_t
sp_colour_star(const sp_csr *low, uint32_t *color)
{
    uint32_t n = low->nrows, best = NONE;
    graph g;
    star_ws W;
    memset(&W, 0, sizeof W);
    uint32_t *order = NULL, *key = NULL, *tmp = NULL;
    if (graph_make(low, &g))
        return NONE;
    size_t m2 = g.adj.ptr[n], nv = (size_t)n + 1;
    order = mem_malloc(nv * sizeof *order);
    key = mem_malloc(nv * sizeof *key);
    tmp = mem_malloc(nv * sizeof *tmp);
    W.forbid = mem_malloc(nv * sizeof *W.forbid);
    W.seen = mem_malloc(nv * sizeof *W.seen);
    W.count = mem_malloc(nv * sizeof *W.count);
    W.pairstar = mem_malloc(nv * sizeof *W.pairstar);
    W.pairstamp = mem_malloc(nv * sizeof *W.pairstamp);
    W.star = mem_malloc((m2 + 1) * sizeof *W.star);
    W.hub = mem_malloc((m2 + 1) * sizeof *W.hub);
    if (!order || !key || !tmp || !W.forbid || !W.seen || !W.count || !W.pairstar
        || !W.pairstamp || !W.star || !W.hub)
        goto out;
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 0) {
            for (uint32_t v = 0; v < n; v++)
                order[v] = v;
        } else if (pass == 1) {
            for (uint32_t v = 0; v < n; v++)
                key[v] = (uint32_t)(g.adj.ptr[v + 1] - g.adj.ptr[v]);
            if (order_by_key_desc(key, n, order))
                goto fail;
        } else if (order_smallest_last(&g.adj, order)) {
            goto fail;
        }
        uint32_t c = greedy_star(&g, order, tmp, &W);
        if (best == NONE || c < best) {
            best = c;
            memcpy(color, tmp, (size_t)n * sizeof *color);
        }
    }
    goto out;
fail:
    best = NONE;
out:
    graph_free(&g);
    mem_free(order);
    mem_free(key);
    mem_free(tmp);
    mem_free(W.forbid);
    mem_free(W.seen);
    mem_free(W.count);
    mem_free(W.pairstar);
    mem_free(W.pairstamp);
    mem_free(W.star);
    mem_free(W.hub);
    return best;
}

/* Symmetric orthogonality [Coleman & More, SIAM J. Numer. Anal. 20(1),
 * 1983], which is what direct recovery needs: for each entry h_ij, column j
 * is the only one of its colour with a nonzero in row i, or column i the
 * only one of its colour in row j. */
int
sp_check_star(const sp_csr *low, const uint32_t *color)
{
    graph g;
    if (graph_make(low, &g))
        return 0;
    uint32_t n = low->nrows;
    int ok = 1;
    for (uint32_t v = 0; v < n && ok; v++)
        ok = !g.need[v] || color[v] != NONE;
    /* count[v][c] is computed on the fly by scanning v's row */
    for (uint32_t r = 0; r < n && ok; r++)
        for (size_t e = g.adj.ptr[r]; e < g.adj.ptr[r + 1] && ok; e++) {
            uint32_t c = g.adj.cols[e], in_r = 0, in_c = 0;
            if (color[r] == color[c]) {
                ok = 0;
                break;
            }
            for (size_t f = g.adj.ptr[r]; f < g.adj.ptr[r + 1]; f++)
                in_r += color[g.adj.cols[f]] == color[c];
            for (size_t f = g.adj.ptr[c]; f < g.adj.ptr[c + 1]; f++)
                in_c += color[g.adj.cols[f]] == color[r];
            ok = in_r == 1 || in_c == 1;
        }
    graph_free(&g);
    return ok;
}
