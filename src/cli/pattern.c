/* src/cli/pattern.c -- pictures of a sparsity pattern: ASCII for the
 * terminal and SVG for a file.  Large matrices are downsampled: the picture
 * is a grid of at most w x h cells, each covering a block of rows and
 * columns, marked when any entry of the block is structurally nonzero.
 * Symmetric (Hessian) patterns store the lower triangle; the pictures show
 * the whole matrix (each entry mirrored). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The cells of a rows x cols pattern on a grid of at most maxw x maxh:
 * one cell per entry when the matrix fits, else blocks of equal size. */
typedef struct grid {
    size_t w, h;
    unsigned char *mark;     /* h rows of w cells */
} grid;

static size_t
cells(size_t extent, size_t max)
{
    return extent < max ? extent : max;
}

static void
grid_fill(grid *g, const tg_sparsity *s, size_t rows, size_t cols, int symmetric,
          size_t maxw, size_t maxh)
{
    g->w = cells(cols, maxw);
    g->h = cells(rows, maxh);
    g->mark = cli_alloc(g->w * g->h, 1);
    const uint32_t *r = tg_sparsity_rows(s), *c = tg_sparsity_cols(s);
    for (size_t e = 0, nnz = tg_sparsity_nnz(s); e < nnz; e++) {
        /* Cell of (i, j): floor(i h / rows), exact in 64 bits for any
         * index below 2^32 and grid below 2^31. */
        size_t i = (size_t)((uint64_t)r[e] * g->h / rows);
        size_t j = (size_t)((uint64_t)c[e] * g->w / cols);
        g->mark[i * g->w + j] = 1;
        if (symmetric) {
            i = (size_t)((uint64_t)c[e] * g->h / rows);
            j = (size_t)((uint64_t)r[e] * g->w / cols);
            g->mark[i * g->w + j] = 1;
        }
    }
}

void
cli_pattern_ascii(FILE *f, const tg_sparsity *s, size_t rows, size_t cols, int symmetric,
                  size_t maxw, size_t maxh)
{
    if (rows == 0 || cols == 0) {
        fprintf(f, "  (empty: %zu x %zu)\n", rows, cols);
        return;
    }
    grid g;
    grid_fill(&g, s, rows, cols, symmetric, maxw, maxh);
    if (g.w < cols || g.h < rows)
        fprintf(f, "  (downsampled to %zu x %zu: each character covers about %.3g rows x %.3g "
                   "columns; '#' when any of them is nonzero)\n",
                g.h, g.w, (double)rows / (double)g.h, (double)cols / (double)g.w);
    for (size_t i = 0; i < g.h; i++) {
        fputs("  ", f);
        for (size_t j = 0; j < g.w; j++)
            fputc(g.mark[i * g.w + j] ? '#' : '.', f);
        fputc('\n', f);
    }
    free(g.mark);
}

/* One panel of the SVG: a frame, a title and a square per marked cell. */
static void
svg_panel(FILE *f, const grid *g, double x0, double cell, const char *title,
          size_t rows, size_t cols, size_t nnz, size_t colors)
{
    double y0 = 40.0;
    fprintf(f, "<text x=\"%.1f\" y=\"20\" font-family=\"sans-serif\" font-size=\"13\">"
               "%s: %zu x %zu, nnz %zu, colours %zu</text>\n",
            x0, title, rows, cols, nnz, colors);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.2f\" fill=\"white\" "
               "stroke=\"#888\"/>\n", x0, y0, cell * (double)g->w, cell * (double)g->h);
    fprintf(f, "<g fill=\"#1f4e9c\">\n");
    for (size_t i = 0; i < g->h; i++)
        for (size_t j = 0; j < g->w; j++)
            if (g->mark[i * g->w + j])
                fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                        x0 + cell * (double)j, y0 + cell * (double)i, cell, cell);
    fprintf(f, "</g>\n");
}

int
cli_pattern_svg(const char *path, const cli_pattern *p, size_t np, char *why, size_t why_len)
{
    enum { MAXC = 400 };
    const double side = 400.0, gap = 40.0;
    size_t tmp_len = strlen(path) + 16;
    char *tmp = cli_alloc(tmp_len, 1);
    snprintf(tmp, tmp_len, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(why, why_len, "cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    double width = (side + gap) * (double)np + gap;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\">\n", width, side + 60.0, width, side + 60.0);
    for (size_t k = 0; k < np; k++) {
        grid g;
        grid_fill(&g, p[k].s, p[k].rows, p[k].cols, p[k].symmetric, MAXC, MAXC);
        size_t big = g.w > g.h ? g.w : g.h;
        svg_panel(f, &g, gap + (side + gap) * (double)k, side / (double)(big ? big : 1),
                  p[k].title, p[k].rows, p[k].cols, tg_sparsity_nnz(p[k].s),
                  tg_sparsity_colors(p[k].s));
        free(g.mark);
    }
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(why, why_len, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
