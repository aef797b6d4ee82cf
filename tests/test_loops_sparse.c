/* tests/test_loops_sparse.c -- the sparse calls on tapes with loops (issue
 * 11, build item 3): tg_jacobian_sparsity, tg_hessian_sparsity,
 * tg_sparse_jacobian(_ws), tg_sparse_hessian(_ws), tg_sparse_jacobian_tape
 * and tg_sparse_hessian_tape.  Oracles: the same function recorded flat
 * (every loop unrolled by the same generator, loopgen.h), whose patterns
 * test_sparse_pattern.c checks against dense derivatives -- the looped
 * tape's pattern must be identical (rows, columns, colour count), its
 * sparse values equal to the flat tape's (1e-13 relative) and to the dense
 * tg_jacobian / tg_hessian of the looped tape, and the sparse derivative
 * tapes' values equal to the same.  Also: no finite nonzero of the dense
 * derivative lies outside the pattern.  Shapes: W1 Rosenbrock as a map,
 * a Lorenz RK4 scan, a map with a parameter block, random maps and scans,
 * nested loops, size-0 blocks; wrt every block and TG_ALL. */
#include "loopgen.h"

static void
same_pattern(const tg_sparsity *sl, const tg_sparsity *sf, const char *ctx)
{
    cr_assert_eq(tg_sparsity_status(sl), TG_OK, "%s: %s", ctx, tg_sparsity_error(sl));
    cr_assert_eq(tg_sparsity_status(sf), TG_OK, "%s: %s", ctx, tg_sparsity_error(sf));
    size_t nnz = tg_sparsity_nnz(sl);
    cr_assert_eq(nnz, tg_sparsity_nnz(sf), "%s: nnz looped %zu, flat %zu", ctx, nnz,
                 tg_sparsity_nnz(sf));
    const uint32_t *rl = tg_sparsity_rows(sl), *cl = tg_sparsity_cols(sl);
    const uint32_t *rf = tg_sparsity_rows(sf), *cf = tg_sparsity_cols(sf);
    for (size_t e = 0; e < nnz; e++)
        cr_assert(rl[e] == rf[e] && cl[e] == cf[e], "%s: entry %zu is (%u, %u) looped, (%u, %u) flat",
                  ctx, e, rl[e], cl[e], rf[e], cf[e]);
    cr_assert_eq(tg_sparsity_colors(sl), tg_sparsity_colors(sf), "%s: colours %zu looped, %zu flat",
                 ctx, tg_sparsity_colors(sl), tg_sparsity_colors(sf));
}

/* The dense matrix (rows x nw, row-major) against the sparse entries:
 * equal on the pattern, no finite nonzero off it (lower: only c <= r). */
static void
against_dense(const tg_sparsity *s, const double *vals, const double *M, size_t rows, size_t nw,
              int lower, const char *what, const char *ctx)
{
    size_t nnz = tg_sparsity_nnz(s);
    const uint32_t *r = tg_sparsity_rows(s), *c = tg_sparsity_cols(s);
    double *on = dalloc(nnz), *mask = dalloc(rows * nw);
    for (size_t e = 0; e < nnz; e++) {
        on[e] = M[(size_t)r[e] * nw + c[e]];
        mask[(size_t)r[e] * nw + c[e]] = 1.0;
    }
    same(what, ctx, vals, on, nnz);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < (lower ? i + 1 : nw); j++) {
            double v = M[i * nw + j];
            cr_assert(mask[i * nw + j] != 0.0 || !isfinite(v) || v == 0.0,
                      "%s [%s]: (%zu, %zu) = %g is outside the pattern", what, ctx, i, j, v);
        }
    free(on);
    free(mask);
}

/* An input vector for a sparse derivative tape: x, then w (Hessian). */
static double *
dtape_input(const tg_tape *dt, const double *x, size_t n, const double *w, size_t m)
{
    double *in = dalloc(tg_num_inputs(dt));
    memcpy(in, x, n * sizeof *x);
    if (w)
        memcpy(in + n, w, m * sizeof *w);
    return in;
}

/* Everything sparse on looped tl and flat tf at x, wrt TG_ALL and each
 * block; Hessians of the weighted output sum with weights w[m];
 * dense: also compare with the dense derivatives of tl (no specials). */
static void
check_sparse(const tg_tape *tl, const tg_tape *tf, const double *x, const double *w, int dense,
             int tapes, const char *name)
{
    size_t n = tg_num_inputs(tl), m = tg_num_outputs(tl);
    cr_assert_eq(n, tg_num_inputs(tf));
    cr_assert_eq(m, tg_num_outputs(tf));
    int nb = (int)tg_num_input_blocks(tl);
    for (int wrt = -1; wrt < nb; wrt++) {
        int wb = wrt < 0 ? TG_ALL : wrt;
        size_t nw = wrt < 0 ? n : tg_input_block_size(tl, (size_t)wrt);
        char ctx[200];
        /* Jacobian */
        snprintf(ctx, sizeof ctx, "%s, jacobian, wrt %d", name, wrt);
        tg_sparsity *sl = tg_jacobian_sparsity(tl, wb), *sf = tg_jacobian_sparsity(tf, wb);
        cr_assert(sl && sf);
        same_pattern(sl, sf, ctx);
        size_t nnz = tg_sparsity_nnz(sl);
        double *vl = dalloc(nnz), *vf = dalloc(nnz), *M = dalloc(m * nw + n * n);
        OK(tg_sparse_jacobian(tl, sl, x, vl));
        OK(tg_sparse_jacobian(tf, sf, x, vf));
        same("sparse jacobian", ctx, vl, vf, nnz);
        tg_workspace *ws = tg_workspace_new(tl);
        cr_assert(ws);
        OK(tg_sparse_jacobian_ws(tl, ws, sl, x, vl));
        same("sparse jacobian (ws)", ctx, vl, vf, nnz);
        if (dense) {
            OK(tg_jacobian_wrt(tl, wb, x, M));
            against_dense(sl, vl, M, m, nw, 0, "sparse jacobian vs dense", ctx);
            if (wrt < 0) {      /* tg_jacobian itself compresses by the same pattern */
                OK(tg_jacobian_ws(tl, ws, x, M));
                against_dense(sl, vl, M, m, nw, 0, "tg_jacobian (compressed) vs sparse", ctx);
            }
        }
        if (tapes) {
            tg_tape *dt = tg_sparse_jacobian_tape(tl, wb);
            cr_assert(dt);
            cr_assert_eq(tg_tape_status(dt), TG_OK, "%s: %s", ctx, tg_tape_error(dt));
            cr_assert_eq(tg_num_outputs(dt), nnz);
            double *in = dtape_input(dt, x, n, NULL, 0);
            OK(tg_eval(dt, in, vl));
            same("sparse jacobian tape", ctx, vl, vf, nnz);
            free(in);
            tg_tape_free(dt);
        }
        tg_sparsity_free(sl);
        tg_sparsity_free(sf);
        free(vl);
        free(vf);
        /* Hessian of w . y */
        snprintf(ctx, sizeof ctx, "%s, hessian, wrt %d", name, wrt);
        sl = tg_hessian_sparsity(tl, wb);
        sf = tg_hessian_sparsity(tf, wb);
        cr_assert(sl && sf);
        same_pattern(sl, sf, ctx);
        nnz = tg_sparsity_nnz(sl);
        vl = dalloc(nnz);
        vf = dalloc(nnz);
        OK(tg_sparse_hessian(tl, sl, x, w, vl));
        OK(tg_sparse_hessian(tf, sf, x, w, vf));
        same("sparse hessian", ctx, vl, vf, nnz);
        OK(tg_sparse_hessian_ws(tl, ws, sl, x, w, vl));
        same("sparse hessian (ws)", ctx, vl, vf, nnz);
        if (dense && m == 1) {
            double *H = dalloc(nw * nw);
            OK(tg_hessian_wrt(tl, wb, x, H));
            for (size_t k = 0; k < nw * nw; k++)
                H[k] *= w[0];
            against_dense(sl, vl, H, nw, nw, 1, "sparse hessian vs dense", ctx);
            free(H);
        }
        if (tapes) {
            tg_tape *dt = tg_sparse_hessian_tape(tl, wb);
            cr_assert(dt);
            cr_assert_eq(tg_tape_status(dt), TG_OK, "%s: %s", ctx, tg_tape_error(dt));
            cr_assert_eq(tg_num_outputs(dt), nnz);
            double *in = dtape_input(dt, x, n, w, m);
            OK(tg_eval(dt, in, vl));
            same("sparse hessian tape", ctx, vl, vf, nnz);
            free(in);
            tg_tape_free(dt);
        }
        tg_workspace_free(ws);
        tg_sparsity_free(sl);
        tg_sparsity_free(sf);
        free(vl);
        free(vf);
        free(M);
    }
}

/* Both outer tapes (vector and scalar) of o, at three points (the last
 * with specials: flat comparison only). */
static void
check_outer_sparse(const outer *o, tu_rng *r, const char *name)
{
    size_t n = (size_t)(o->na + o->nb);
    double *x = dalloc(n);
    for (int scalar = 0; scalar < 2; scalar++) {
        tg_tape *tl = record_outer(o, scalar, 0), *tf = record_outer(o, scalar, 1);
        size_t m = tg_num_outputs(tl);
        double *w = dalloc(m);
        for (size_t k = 0; k < m; k++)
            w[k] = tu_rng_range(r, -1, 1);
        for (int pt = 0; pt < 3; pt++) {
            char ctx[160];
            snprintf(ctx, sizeof ctx, "%s, %s, point %d%s", name, scalar ? "scalar" : "vector", pt,
                     pt == 2 ? " (specials)" : "");
            point(r, n, pt == 2, x);
            check_sparse(tl, tf, x, w, pt < 2, pt == 0, ctx);
        }
        free(w);
        tg_tape_free(tl);
        tg_tape_free(tf);
    }
    free(x);
}

/* ------------------------------------------------------------- shapes */

/* W1 as a map: (x_i, x_{i+1}) -> 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2,
 * summed; with a parameter block p = (a, b): a (x_{i+1} - x_i^2)^2 +
 * (b - x_i)^2 (params: one block the applications share). */
static tg_tape *
w1_body(int params)
{
    tg_tape *b = tg_tape_new("w1_term");
    tg_var x[2], p[2];
    tg_input_vec(b, "x", 2, x);
    tg_input_vec(b, "p", params ? 2 : 0, p);
    tg_var d = tg_sub(x[1], tg_mul(x[0], x[0]));
    tg_var e = params ? tg_sub(p[1], x[0]) : tg_sub(1.0, x[0]);
    tg_var a = params ? tg_mul(p[0], d) : tg_mul(100.0, d);
    tg_output(b, "y", tg_add(tg_mul(a, d), tg_mul(e, e)));
    TU_TAPE_OK(b);
    return b;
}

static tg_tape *
w1(size_t n, int params, int looped)
{
    tg_tape *t = tg_tape_new(looped ? "w1_map" : "w1_flat");
    tg_var *x = calloc(n, sizeof *x), *xs = calloc(2 * n, sizeof *xs), *ys = calloc(n, sizeof *ys);
    tg_var p[2];
    cr_assert(x && xs && ys);
    tg_input_vec(t, "x", n, x);
    if (params)
        tg_input_vec(t, "p", 2, p);
    for (size_t i = 0; i + 1 < n; i++) {
        xs[2 * i] = x[i];
        xs[2 * i + 1] = x[i + 1];
    }
    if (looped) {
        tg_tape *b = w1_body(params);
        tg_map(t, b, n - 1, xs, params ? p : NULL, ys);
        tg_tape_free(b);
    } else {
        for (size_t i = 0; i + 1 < n; i++) {
            tg_var d = tg_sub(x[i + 1], tg_mul(x[i], x[i]));
            tg_var e = params ? tg_sub(p[1], x[i]) : tg_sub(1.0, x[i]);
            tg_var a = params ? tg_mul(p[0], d) : tg_mul(100.0, d);
            ys[i] = tg_add(tg_mul(a, d), tg_mul(e, e));
        }
    }
    tg_output(t, "f", tg_sum(n - 1, ys));
    TU_TAPE_OK(t);
    free(x);
    free(xs);
    free(ys);
    return t;
}

Test(loops_sparse, w1_map)
{
    tu_rng r = { 101 };
    size_t sizes[] = { 2, 3, 10, 1000 };
    for (size_t si = 0; si < 4; si++) {
        size_t n = sizes[si];
        for (int params = 0; params < 2; params++) {
            tg_tape *tl = w1(n, params, 1), *tf = w1(n, params, 0);
            size_t nin = tg_num_inputs(tl);
            double *x = dalloc(nin), w = 0.75;
            point(&r, nin, 0, x);
            char name[64];
            snprintf(name, sizeof name, "w1 n=%zu%s", n, params ? " with params" : "");
            check_sparse(tl, tf, x, &w, n <= 10 || !params, n <= 10, name);
            /* the tridiagonal Hessian: 2n - 1 entries, 3 colours */
            tg_sparsity *s = tg_hessian_sparsity(tl, 0);
            cr_assert_eq(tg_sparsity_nnz(s), 2 * n - 1, "%s", name);
            cr_assert_eq(tg_sparsity_colors(s), n <= 3 ? 2 : 3, "%s", name);
            tg_sparsity_free(s);
            if (n == 1000 && !params) {
                /* the sparse Hessian tape keeps the map: smaller than the flat one's */
                tg_tape *hl = tg_sparse_hessian_tape(tl, TG_ALL), *hf = tg_sparse_hessian_tape(tf, TG_ALL);
                TU_TAPE_OK(hl);
                TU_TAPE_OK(hf);
                cr_assert_lt(tg_tape_size(hl), tg_tape_size(hf), "%zu vs %zu", tg_tape_size(hl),
                             tg_tape_size(hf));
                size_t nnz = tg_num_outputs(hf);
                double *in = dalloc(n + 1), *a = dalloc(nnz), *b = dalloc(nnz);
                memcpy(in, x, n * sizeof *x);
                in[n] = 0.75;
                OK(tg_eval(hl, in, a));
                OK(tg_eval(hf, in, b));
                same("sparse hessian tape", name, a, b, nnz);
                free(in);
                free(a);
                free(b);
                tg_tape_free(hl);
                tg_tape_free(hf);
            }
            free(x);
            tg_tape_free(tl);
            tg_tape_free(tf);
        }
    }
}

/* Lorenz RK4 as a scan: carry (x, y, z), params (sigma, rho, beta), the
 * step's y = x * z; outer outputs the final carry and the ys (vector) or
 * the sum of their squares (scalar). */
static void
lorenz_rhs(tg_var x, tg_var y, tg_var z, const tg_var *p, tg_var *d)
{
    d[0] = tg_mul(p[0], tg_sub(y, x));
    d[1] = tg_sub(tg_mul(x, tg_sub(p[1], z)), y);
    d[2] = tg_sub(tg_mul(x, y), tg_mul(p[2], z));
}

static void
lorenz_step(const tg_var *c, const tg_var *p, tg_var *cn, tg_var *y)
{
    const double h = 0.01;
    tg_var k[4][3], s[3];
    lorenz_rhs(c[0], c[1], c[2], p, k[0]);
    for (int stage = 1; stage < 4; stage++) {
        double a = stage == 3 ? h : h / 2;
        for (int j = 0; j < 3; j++)
            s[j] = tg_add(c[j], tg_mul(a, k[stage - 1][j]));
        lorenz_rhs(s[0], s[1], s[2], p, k[stage]);
    }
    for (int j = 0; j < 3; j++) {
        tg_var sum = tg_add(tg_add(k[0][j], tg_mul(2.0, k[1][j])),
                            tg_add(tg_mul(2.0, k[2][j]), k[3][j]));
        cn[j] = tg_add(c[j], tg_mul(h / 6, sum));
    }
    *y = tg_mul(c[0], c[2]);
}

static tg_tape *
lorenz(int steps, int scalar, int looped)
{
    tg_tape *t = tg_tape_new(looped ? "lorenz_scan" : "lorenz_flat");
    tg_var c[3], p[3], cn[3], *ys = calloc((size_t)steps + 1, sizeof *ys);
    cr_assert(ys);
    tg_input_vec(t, "c0", 3, c);
    tg_input_vec(t, "p", 3, p);
    if (looped) {
        tg_tape *b = tg_tape_new("lorenz_step");
        tg_var bc[3], bp[3], bcn[3], by;
        tg_input_vec(b, "c", 3, bc);
        tg_input_vec(b, "x", 0, NULL);
        tg_input_vec(b, "p", 3, bp);
        lorenz_step(bc, bp, bcn, &by);
        tg_output_vec(b, "cn", 3, bcn);
        tg_output(b, "y", by);
        TU_TAPE_OK(b);
        tg_scan(t, b, (size_t)steps, c, NULL, p, cn, ys);
        tg_tape_free(b);
    } else {
        for (int j = 0; j < 3; j++)
            cn[j] = c[j];
        for (int s = 0; s < steps; s++) {
            tg_var nx[3];
            lorenz_step(cn, p, nx, &ys[s]);
            for (int j = 0; j < 3; j++)
                cn[j] = nx[j];
        }
    }
    if (scalar) {
        tg_var f = tg_norm2sq(3, cn);
        for (int s = 0; s < steps; s++)
            f = tg_add(f, tg_mul(ys[s], ys[s]));
        tg_output(t, "f", f);
    } else {
        tg_output_vec(t, "cn", 3, cn);
        tg_output_vec(t, "y", (size_t)steps, ys);
    }
    TU_TAPE_OK(t);
    free(ys);
    return t;
}

Test(loops_sparse, lorenz_scan)
{
    tu_rng r = { 202 };
    int steps[] = { 0, 1, 2, 7 };
    for (size_t si = 0; si < 4; si++)
        for (int scalar = 0; scalar < 2; scalar++) {
            tg_tape *tl = lorenz(steps[si], scalar, 1), *tf = lorenz(steps[si], scalar, 0);
            size_t m = tg_num_outputs(tl);
            double x[6] = { 1.0, 0.5, -0.3, 10.0, 28.0, 8.0 / 3.0 }, *w = dalloc(m);
            for (size_t k = 0; k < m; k++)
                w[k] = tu_rng_range(&r, -1, 1);
            char name[64];
            snprintf(name, sizeof name, "lorenz %d steps %s", steps[si], scalar ? "scalar" : "vector");
            check_sparse(tl, tf, x, w, 1, 1, name);
            free(w);
            tg_tape_free(tl);
            tg_tape_free(tf);
        }
}

Test(loops_sparse, random_maps)
{
    tu_rng r = { 303 };
    random_map_trials(&r, 10, 12, check_outer_sparse);
}

Test(loops_sparse, random_scans)
{
    tu_rng r = { 404 };
    random_scan_trials(&r, 10, 12, check_outer_sparse);
}

Test(loops_sparse, size_zero_blocks)
{
    tu_rng r = { 505 };
    each_size0_shape(&r, check_outer_sparse);
}

Test(loops_sparse, nested_loops)
{
    tu_rng r = { 606 };
    each_nesting(&r, check_outer_sparse);
}

/* Outputs of a loop that reach nothing, or reach the result only
 * linearly: the unrolled instructions behind them are not live, so their
 * nonlinearities add nothing to the Hessian (the looped pattern must not
 * keep them either).  Map: y0 = x0 * x1 (dead), y1 = x0 + sin(x1); scan:
 * carries (c0 * c1, c1 + x), y = c0 * x, only y and the final c1 used. */
static tg_tape *
dead_outputs(int scan, int looped)
{
    tg_tape *t = tg_tape_new(looped ? "dead_looped" : "dead_flat");
    enum { N = 6 };
    tg_var x[N], ys[2 * N], c[2], cn[2];
    tg_input_vec(t, "x", N, x);
    if (!scan) {
        if (looped) {
            tg_tape *b = tg_tape_new("dead_map_body");
            tg_var bx[2], by[2];
            tg_input_vec(b, "x", 2, bx);
            tg_input_vec(b, "p", 0, NULL);
            by[0] = tg_mul(bx[0], bx[1]);
            by[1] = tg_add(bx[0], tg_sin(bx[1]));
            tg_output_vec(b, "y", 2, by);
            TU_TAPE_OK(b);
            tg_map(t, b, N / 2, x, NULL, ys);
            tg_tape_free(b);
        } else {
            for (int i = 0; i < N / 2; i++) {
                ys[2 * i] = tg_mul(x[2 * i], x[2 * i + 1]);
                ys[2 * i + 1] = tg_add(x[2 * i], tg_sin(x[2 * i + 1]));
            }
        }
        tg_var f = ys[1];
        for (int i = 1; i < N / 2; i++)
            f = tg_add(f, ys[2 * i + 1]);
        tg_output(t, "f", f);
    } else {
        c[0] = x[0];
        c[1] = x[1];
        if (looped) {
            tg_tape *b = tg_tape_new("dead_scan_body");
            tg_var bc[2], bx, bn[3];
            tg_input_vec(b, "c", 2, bc);
            tg_input_vec(b, "x", 1, &bx);
            tg_input_vec(b, "p", 0, NULL);
            bn[0] = tg_mul(bc[0], bc[1]);
            bn[1] = tg_add(bc[1], bx);
            bn[2] = tg_mul(bc[0], bx);
            tg_output_vec(b, "cn", 2, bn);
            tg_output(b, "y", bn[2]);
            TU_TAPE_OK(b);
            tg_scan(t, b, N - 2, c, x + 2, NULL, cn, ys);
            tg_tape_free(b);
        } else {
            cn[0] = c[0];
            cn[1] = c[1];
            for (int s = 0; s < N - 2; s++) {
                tg_var a = tg_mul(cn[0], cn[1]), bb = tg_add(cn[1], x[2 + s]);
                ys[s] = tg_mul(cn[0], x[2 + s]);
                cn[0] = a;
                cn[1] = bb;
            }
        }
        /* only the last y and the final c1 (linearly) */
        tg_output(t, "f", tg_add(ys[N - 3], cn[1]));
    }
    TU_TAPE_OK(t);
    return t;
}

Test(loops_sparse, dead_outputs)
{
    for (int scan = 0; scan < 2; scan++) {
        tg_tape *tl = dead_outputs(scan, 1), *tf = dead_outputs(scan, 0);
        double x[6] = { 0.3, -0.7, 1.1, 0.4, -0.2, 0.9 }, w = 1.5;
        check_sparse(tl, tf, x, &w, 1, 1, scan ? "dead scan outputs" : "dead map outputs");
        tg_tape_free(tl);
        tg_tape_free(tf);
    }
}

/* Broyden tridiagonal (W4) as a map over windows (x_{i-1}, x_i, x_{i+1})
 * of a padded vector: a Jacobian large enough for tg_jacobian to compress
 * it (3 colours instead of n/8 sweeps) through the loop.  And a workspace
 * made by tg_workspace_new covers the loops' scratch: the compressed and
 * sparse _ws calls do not allocate. */
#include "tape/alloc.h"

static tg_tape *
broyden(size_t n, int looped)
{
    tg_tape *t = tg_tape_new(looped ? "broyden_map" : "broyden_flat");
    tg_var *x = calloc(n + 2, sizeof *x), *xs = calloc(3 * n, sizeof *xs), *r = calloc(n, sizeof *r);
    cr_assert(x && xs && r);
    tg_input_vec(t, "x", n, x + 1);
    x[0] = x[n + 1] = tg_const(t, 0.0);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            xs[3 * i + (size_t)k] = x[i + (size_t)k];
    if (looped) {
        tg_tape *b = tg_tape_new("broyden_term");
        tg_var w[3];
        tg_input_vec(b, "x", 3, w);
        tg_input_vec(b, "p", 0, NULL);
        tg_var v = tg_sub(tg_sub(tg_mul(tg_sub(3.0, tg_mul(2.0, w[1])), w[1]), w[0]),
                          tg_mul(2.0, w[2]));
        tg_output(b, "y", tg_add(v, 1.0));
        TU_TAPE_OK(b);
        tg_map(t, b, n, xs, NULL, r);
        tg_tape_free(b);
    } else {
        for (size_t i = 0; i < n; i++) {
            const tg_var *w = xs + 3 * i;
            tg_var v = tg_sub(tg_sub(tg_mul(tg_sub(3.0, tg_mul(2.0, w[1])), w[1]), w[0]),
                              tg_mul(2.0, w[2]));
            r[i] = tg_add(v, 1.0);
        }
    }
    tg_output_vec(t, "r", n, r);
    TU_TAPE_OK(t);
    free(x);
    free(xs);
    free(r);
    return t;
}

Test(loops_sparse, broyden_map_compressed)
{
    tu_rng r = { 707 };
    size_t n = 50;
    tg_tape *tl = broyden(n, 1), *tf = broyden(n, 0);
    double *x = dalloc(n), *w = dalloc(n), *Jl = dalloc(n * n), *Jf = dalloc(n * n);
    point(&r, n, 0, x);
    for (size_t k = 0; k < n; k++)
        w[k] = tu_rng_range(&r, -1, 1);
    check_sparse(tl, tf, x, w, 1, 1, "broyden map");
    OK(tg_jacobian(tl, x, Jl));
    OK(tg_jacobian(tf, x, Jf));
    same("tg_jacobian", "broyden map", Jl, Jf, n * n);
    tg_sparsity *sj = tg_jacobian_sparsity(tl, TG_ALL), *sh = tg_hessian_sparsity(tl, TG_ALL);
    cr_assert_eq(tg_sparsity_nnz(sj), 3 * n - 2);
    cr_assert_eq(tg_sparsity_colors(sj), 3);
    double *vj = dalloc(tg_sparsity_nnz(sj)), *vh = dalloc(tg_sparsity_nnz(sh));
    tg_workspace *ws = tg_workspace_new(tl);
    cr_assert(ws);
    mem_fail_after(0);
    tg_status st[3] = { tg_jacobian_ws(tl, ws, x, Jl), tg_sparse_jacobian_ws(tl, ws, sj, x, vj),
                        tg_sparse_hessian_ws(tl, ws, sh, x, w, vh) };
    long made = mem_fail_after(-1);
    for (int k = 0; k < 3; k++)
        cr_assert_eq(st[k], TG_OK, "call %d: %s", k, tg_last_error());
    cr_assert_eq(made, 0, "%ld allocations", made);
    same("tg_jacobian_ws", "broyden map", Jl, Jf, n * n);
    tg_workspace_free(ws);
    tg_sparsity_free(sj);
    tg_sparsity_free(sh);
    free(vj);
    free(vh);
    free(x);
    free(w);
    free(Jl);
    free(Jf);
    tg_tape_free(tl);
    tg_tape_free(tf);
}

/* W1 as a map of 10^5 - 1 applications: the tridiagonal pattern without
 * unrolling (the looped tape holds one loop; tgsparse times it against
 * the flat tape's). */
Test(loops_sparse, w1_map_large)
{
    size_t n = 100000;
    tg_tape *t = w1(n, 0, 1);
    cr_assert_lt(tg_tape_size(t), 3 * n + 64);     /* inputs, ys, their sum; flat: ~9n */
    tg_sparsity *s = tg_hessian_sparsity(t, TG_ALL);
    cr_assert_eq(tg_sparsity_status(s), TG_OK, "%s", tg_sparsity_error(s));
    cr_assert_eq(tg_sparsity_nnz(s), 2 * n - 1);
    cr_assert_eq(tg_sparsity_colors(s), 3);
    const uint32_t *R = tg_sparsity_rows(s), *C = tg_sparsity_cols(s);
    for (size_t i = 0, e = 0; i < n; i++) {
        if (i > 0) {
            cr_assert(R[e] == i && C[e] == i - 1, "entry %zu", e);
            e++;
        }
        cr_assert(R[e] == i && C[e] == i, "entry %zu", e);
        e++;
    }
    tg_sparsity *j = tg_jacobian_sparsity(t, TG_ALL);
    cr_assert_eq(tg_sparsity_nnz(j), n);
    cr_assert_eq(tg_sparsity_colors(j), 1);
    tg_sparsity_free(j);
    tg_sparsity_free(s);
    tg_tape_free(t);
}

/* Out of memory at every allocation of a pattern through nested loops:
 * NULL (nothing leaks: LeakSanitizer), or the full pattern. */
Test(loops_sparse, out_of_memory)
{
    tu_rng r = { 808 };
    lspec *inner = random_loop(&r, 0, 3, 0, 1, 1, 1, 5, NULL);
    lspec *L = random_loop(&r, 1, 5, 2, 1, 1, 1, 5, inner);
    outer o = random_outer(&r, L, 5, 2);
    for (int scalar = 0; scalar < 2; scalar++) {
        tg_tape *t = record_outer(&o, scalar, 0);
        for (int hess = 0; hess < 2; hess++) {
            tg_sparsity *ref = hess ? tg_hessian_sparsity(t, TG_ALL) : tg_jacobian_sparsity(t, TG_ALL);
            cr_assert_eq(tg_sparsity_status(ref), TG_OK);
            for (long k = 0;; k++) {
                mem_fail_after(k);
                tg_sparsity *s = hess ? tg_hessian_sparsity(t, TG_ALL) : tg_jacobian_sparsity(t, TG_ALL);
                long made = mem_fail_after(-1);
                if (!s)
                    continue;
                cr_assert_eq(tg_sparsity_status(s), TG_OK, "%s", tg_sparsity_error(s));
                cr_assert_eq(tg_sparsity_nnz(s), tg_sparsity_nnz(ref));
                tg_sparsity_free(s);
                if (made < k)
                    break;
            }
            tg_sparsity_free(ref);
        }
        tg_tape_free(t);
    }
    outer_free(&o);
    loop_free(L);
    loop_free(inner);
}

/* Two maps of one body (stored once on the tape, so the summaries are
 * shared), the second over the first's outputs, and only some of the
 * second's outputs used: z_i = term(x_i, x_{i+1}), u_j = term(z_{2j},
 * z_{2j+1}), f = sum of u_j over even j. */
static tg_var
w1_term(tg_var a, tg_var b)
{
    tg_var d = tg_sub(b, tg_mul(a, a)), e = tg_sub(1.0, a);
    return tg_add(tg_mul(tg_mul(100.0, d), d), tg_mul(e, e));
}

static tg_tape *
two_maps(size_t n, int looped)
{
    tg_tape *t = tg_tape_new(looped ? "two_maps" : "two_maps_flat");
    size_t nz = n - 1, nu = nz / 2;
    tg_var *x = calloc(n, sizeof *x), *xs = calloc(2 * n, sizeof *xs), *z = calloc(n, sizeof *z);
    tg_var *u = calloc(n, sizeof *u);
    cr_assert(x && xs && z && u);
    tg_input_vec(t, "x", n, x);
    tg_tape *b = w1_body(0);
    for (size_t i = 0; i < nz; i++) {
        xs[2 * i] = x[i];
        xs[2 * i + 1] = x[i + 1];
    }
    if (looped)
        tg_map(t, b, nz, xs, NULL, z);
    else
        for (size_t i = 0; i < nz; i++)
            z[i] = w1_term(x[i], x[i + 1]);
    if (looped)
        tg_map(t, b, nu, z, NULL, u);
    else
        for (size_t j = 0; j < nu; j++)
            u[j] = w1_term(z[2 * j], z[2 * j + 1]);
    tg_var f = u[0];
    for (size_t j = 2; j < nu; j += 2)
        f = tg_add(f, u[j]);
    tg_output(t, "f", f);
    TU_TAPE_OK(t);
    tg_tape_free(b);
    free(x);
    free(xs);
    free(z);
    free(u);
    return t;
}

Test(loops_sparse, two_maps_one_body)
{
    tu_rng r = { 909 };
    size_t sizes[] = { 5, 9, 14 };
    for (size_t si = 0; si < 3; si++) {
        size_t n = sizes[si];
        tg_tape *tl = two_maps(n, 1), *tf = two_maps(n, 0);
        double *x = dalloc(n), w = -0.5;
        point(&r, n, 0, x);
        char name[48];
        snprintf(name, sizeof name, "two maps n=%zu", n);
        check_sparse(tl, tf, x, &w, 1, 1, name);
        free(x);
        tg_tape_free(tl);
        tg_tape_free(tf);
    }
}
