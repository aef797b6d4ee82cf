/* tests/test_sparse_pattern.c -- structural patterns and colourings
 * (src/ad/sparse/) against dense Jacobians and Hessians evaluated at random
 * points: no nonzero may be missing, entries are sorted and unique,
 * Hessians give the lower triangle, colourings are valid distance-2 / star
 * colourings, and the acceptance patterns get their optimal colour counts
 * (3 for the tridiagonal Hessian of W1 and the tridiagonal Jacobian of W4).
 * Values are checked as well (su_check); test_sparse_eval.c has the rest. */
#include <criterion/criterion.h>

#include "sparseutil.h"
#include "ad/sparse/sparse.h"

/* The pattern as a CSR (rows x ncols), for the colouring checks. */
static sp_csr
csr_of(const tg_sparsity *s, uint32_t nrows, uint32_t ncols)
{
    sp_csr c = { nrows, ncols, calloc(nrows + 1, sizeof(size_t)), malloc((s->nnz + 1) * sizeof(uint32_t)) };
    for (size_t e = 0; e < s->nnz; e++) {
        c.ptr[s->rows[e] + 1]++;
        c.cols[e] = s->cols[e];
    }
    for (uint32_t r = 0; r < nrows; r++)
        c.ptr[r + 1] += c.ptr[r];
    return c;
}

static void
check_colouring(const tg_sparsity *s)
{
    if (s->kind == SP_HESS) {
        sp_csr H = csr_of(s, s->nw, s->nw);
        cr_assert(sp_check_star(&H, s->seed_color), "not a star colouring");
        free(H.ptr);
        free(H.cols);
        return;
    }
    sp_csr J = csr_of(s, s->nout, s->nw), JT;
    cr_assert_eq(sp_csr_transpose(&J, &JT), 0);
    if (s->by_rows)
        cr_assert(sp_check_columns(&JT, &J, s->seed_color), "not a distance-2 row colouring");
    else
        cr_assert(sp_check_columns(&J, &JT, s->seed_color), "not a distance-2 column colouring");
    free(J.ptr);
    free(J.cols);
    sp_csr_free(&JT);
}

static tg_sparsity *
check(const tg_tape *t, int hessian, int wrt, const double *w, const char *what)
{
    tg_sparsity *s = su_check(t, hessian, wrt, w, 3, -1.5, 1.5, what);
    check_colouring(s);
    return s;
}

Test(sparse_pattern, rosenbrock_hessian_tridiagonal)
{
    for (size_t n = 2; n <= 60; n += 29) {
        tg_tape *t = su_rosenbrock(n);
        tg_sparsity *s = check(t, 1, TG_ALL, NULL, "rosenbrock");
        cr_expect_eq(tg_sparsity_nnz(s), 2 * n - 1);
        cr_expect_eq(tg_sparsity_colors(s), n == 2 ? 2 : 3);
        tg_sparsity_free(s);
        /* the gradient is one dense row: colour the rows (1 colour) */
        s = check(t, 0, TG_ALL, NULL, "rosenbrock gradient");
        cr_expect_eq(tg_sparsity_nnz(s), n);
        cr_expect_eq(tg_sparsity_colors(s), 1);
        tg_sparsity_free(s);
        tg_tape_free(t);
    }
}

Test(sparse_pattern, broyden_jacobian_tridiagonal)
{
    tg_tape *t = su_broyden(50);
    tg_sparsity *s = check(t, 0, TG_ALL, NULL, "broyden");
    cr_expect_eq(tg_sparsity_nnz(s), 3 * 50 - 2);
    cr_expect_eq(tg_sparsity_colors(s), 3);
    tg_sparsity_free(s);
    /* Hessian of sum r_i: the diagonal only (x_i^2 terms), 1 colour */
    s = check(t, 1, TG_ALL, NULL, "broyden hessian");
    cr_expect_eq(tg_sparsity_nnz(s), 50);
    cr_expect_eq(tg_sparsity_colors(s), 1);
    tg_sparsity_free(s);
    tg_tape_free(t);
}

Test(sparse_pattern, luksan_vlcek_jacobian_and_lagrangian)
{
    enum { N = 40 };
    tg_tape *t = su_luksan(N, 0);
    tg_sparsity *s = check(t, 0, TG_ALL, NULL, "lv1 jacobian");
    /* objective row dense, constraint rows 3 wide */
    cr_expect_eq(tg_sparsity_nnz(s), N + 3 * (N - 2));
    tg_sparsity_free(s);
    double w[N - 1];
    su_point(7, N - 1, -2.0, 2.0, w);
    s = check(t, 1, TG_ALL, w, "lv1 lagrangian");
    cr_expect_eq(tg_sparsity_nnz(s), 2 * N - 1);        /* tridiagonal */
    cr_expect_eq(tg_sparsity_colors(s), 3);
    tg_sparsity_free(s);
    tg_tape_free(t);
}

Test(sparse_pattern, mlp_blocks)
{
    tg_tape *t = su_mlp();
    for (int wrt = TG_ALL; wrt < 2; wrt++) {
        tg_sparsity *s = check(t, 0, wrt, NULL, "mlp jacobian");
        tg_sparsity_free(s);
        double w[SU_MLP_OUT + 1] = { 0.5, -1.25, 2.0 };
        s = check(t, 1, wrt, w, "mlp hessian");
        tg_sparsity_free(s);
    }
    tg_tape_free(t);
}

Test(sparse_pattern, branches_and_kinks)
{
    tg_tape *t = su_branchy(12);
    tg_sparsity *s = check(t, 0, TG_ALL, NULL, "branchy jacobian");
    /* y_i reads x_i, x_{i+1}, x_{i+3}: both select branches count */
    cr_expect_eq(tg_sparsity_nnz(s), 3 * 12);
    tg_sparsity_free(s);
    s = check(t, 1, TG_ALL, NULL, "branchy hessian");
    tg_sparsity_free(s);
    tg_tape_free(t);
}

/* select's condition, comparisons and piecewise-constant functions carry
 * no second order; a select's branches keep theirs */
Test(sparse_pattern, structural_zeros)
{
    tg_tape *t = tu_tape("zeros", 0);
    tg_var x[4];
    tg_input_vec(t, "x", 4, x);
    tg_var c = tg_lt(tg_mul(x[0], x[1]), 1.0);           /* no derivative at all */
    tg_var f = tg_select(c, tg_mul(x[2], x[2]), x[3]);    /* x2^2 only */
    f = tg_add(f, tg_abs(tg_mul(x[3], 2.0)));             /* linear */
    f = tg_add(f, tg_floor(tg_mul(x[1], x[3])));          /* first order only */
    tg_output(t, "f", f);
    TU_TAPE_OK(t);
    tg_sparsity *s = check(t, 1, TG_ALL, NULL, "zeros hessian");
    cr_assert_eq(tg_sparsity_nnz(s), 1);
    cr_expect_eq(tg_sparsity_rows(s)[0], 2);
    cr_expect_eq(tg_sparsity_cols(s)[0], 2);
    tg_sparsity_free(s);
    s = check(t, 0, TG_ALL, NULL, "zeros jacobian");
    cr_expect_eq(tg_sparsity_nnz(s), 3);                  /* x1 (floor), x2, x3 */
    tg_sparsity_free(s);
    tg_tape_free(t);
}

Test(sparse_pattern, arrowhead_and_banded)
{
    enum { N = 30 };
    tg_tape *t = tu_tape("arrow", 0);
    tg_var x[N], f = { 0 };
    tg_input_vec(t, "x", N, x);
    for (int i = 1; i < N; i++) {                         /* x0 interacts with all */
        tg_var term = tg_add(tg_mul(x[0], x[i]), tg_mul(x[i], x[i]));
        f = i == 1 ? term : tg_add(f, term);
    }
    tg_output(t, "f", f);
    tg_sparsity *s = check(t, 1, TG_ALL, NULL, "arrowhead");
    cr_expect_eq(tg_sparsity_nnz(s), 2 * N - 2);
    cr_expect_eq(tg_sparsity_colors(s), 2);
    tg_sparsity_free(s);
    tg_tape_free(t);

    t = tu_tape("band", 0);                               /* bandwidth 2: 5 colours */
    tg_input_vec(t, "x", N, x);
    for (int i = 0; i + 2 < N; i++) {
        tg_var term = tg_sin(tg_add(tg_add(x[i], x[i + 1]), x[i + 2]));
        f = i == 0 ? term : tg_add(f, term);
    }
    tg_output(t, "f", f);
    s = check(t, 1, TG_ALL, NULL, "banded");
    cr_expect_eq(tg_sparsity_colors(s), 5);
    tg_sparsity_free(s);
    tg_tape_free(t);
}

Test(sparse_pattern, random_dags)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        size_t n = 5 + seed * 3, nodes = 40 + seed * 10, m = 1 + seed % 7;
        tg_tape *t = su_random_dag(seed, n, nodes, m);
        char what[64];
        snprintf(what, sizeof what, "dag %u jacobian", (unsigned)seed);
        tg_sparsity_free(check(t, 0, TG_ALL, NULL, what));
        snprintf(what, sizeof what, "dag %u hessian", (unsigned)seed);
        double w[8] = { 1.5, -0.5, 2.0, 0.25, -3.0, 1.0, 0.75, -1.0 };
        tg_sparsity_free(check(t, 1, TG_ALL, w, what));
        tg_tape_free(t);
    }
}

/* Colourings straight on random symmetric and rectangular patterns. */
Test(sparse_pattern, random_colourings)
{
    tu_rng r = { 99 };
    for (int k = 0; k < 20; k++) {
        uint32_t n = 20 + (uint32_t)tu_rng_below(&r, 200), per = 1 + (uint32_t)tu_rng_below(&r, 6);
        sp_csr a = { n, n, calloc(n + 1, sizeof(size_t)), malloc((size_t)n * (per + 1) * sizeof(uint32_t)) };
        for (uint32_t i = 0; i < n; i++) {   /* lower triangle: diagonal + per random cols */
            uint32_t row[16], len = 0;
            for (uint32_t q = 0; q < per; q++)
                row[len++] = (uint32_t)tu_rng_below(&r, i + 1);
            row[len++] = i;
            for (uint32_t p = 1; p < len; p++)   /* sort, unique */
                for (uint32_t q = p; q > 0 && row[q - 1] > row[q]; q--) {
                    uint32_t tmp = row[q]; row[q] = row[q - 1]; row[q - 1] = tmp;
                }
            size_t at = a.ptr[i];
            for (uint32_t p = 0; p < len; p++)
                if (p == 0 || row[p] != row[p - 1])
                    a.cols[at++] = row[p];
            a.ptr[i + 1] = at;
        }
        uint32_t *color = malloc(n * sizeof *color);
        uint32_t nc = sp_colour_star(&a, color);
        cr_assert(nc != UINT32_MAX && sp_check_star(&a, color), "star colouring %d invalid", k);
        sp_csr at;
        cr_assert_eq(sp_csr_transpose(&a, &at), 0);
        nc = sp_colour_columns(&a, &at, color);
        cr_assert(nc != UINT32_MAX && sp_check_columns(&a, &at, color), "column colouring %d invalid", k);
        sp_csr_free(&at);
        free(color);
        free(a.ptr);
        free(a.cols);
    }
}

Test(sparse_pattern, errors)
{
    tg_sparsity *s = tg_jacobian_sparsity(NULL, TG_ALL);
    cr_assert(s != NULL);
    cr_expect_eq(tg_sparsity_status(s), TG_ERR_ARG);
    cr_expect_neq(strlen(tg_sparsity_error(s)), 0);
    cr_expect_eq(tg_sparsity_nnz(s), 0);
    cr_expect_eq(tg_sparsity_colors(s), 0);
    cr_expect_null(tg_sparsity_rows(s));
    cr_expect_null(tg_sparsity_cols(s));
    tg_sparsity_free(s);
    tg_tape *t = su_rosenbrock(5);
    s = tg_hessian_sparsity(t, 3);
    cr_expect_eq(tg_sparsity_status(s), TG_ERR_ARG);
    cr_expect(strstr(tg_sparsity_error(s), "wrt 3") != NULL, "%s", tg_sparsity_error(s));
    double x[5] = { 0 }, vals[64];
    cr_expect_eq(tg_sparse_hessian(t, s, x, NULL, vals), TG_ERR_ARG);
    tg_sparsity_free(s);
    /* the wrong kind, another tape's dimensions, NULL arguments */
    tg_sparsity *sj = tg_jacobian_sparsity(t, TG_ALL), *sh = tg_hessian_sparsity(t, 0);
    cr_expect_eq(tg_sparse_hessian(t, sj, x, NULL, vals), TG_ERR_ARG);
    cr_expect(strstr(tg_last_error(), "Jacobian") != NULL, "%s", tg_last_error());
    cr_expect_eq(tg_sparse_jacobian(t, sh, x, vals), TG_ERR_ARG);
    tg_tape *t6 = su_rosenbrock(6);
    double x6[6] = { 0 };
    cr_expect_eq(tg_sparse_hessian(t6, sh, x6, NULL, vals), TG_ERR_ARG);
    cr_expect_eq(tg_sparse_hessian(t, NULL, x, NULL, vals), TG_ERR_ARG);
    cr_expect_eq(tg_sparse_hessian(NULL, sh, x, NULL, vals), TG_ERR_ARG);
    cr_expect_eq(tg_sparse_hessian(t, sh, NULL, NULL, vals), TG_ERR_ARG);
    cr_expect_eq(tg_sparse_hessian(t, sh, x, NULL, NULL), TG_ERR_ARG);
    cr_expect_eq(tg_sparse_hessian_ws(t, NULL, sh, x, NULL, vals), TG_ERR_ARG);
    tg_sparsity_free(sj);
    tg_sparsity_free(sh);
    tg_tape_free(t6);
    /* a tape in the error state: its status */
    tg_var v = tg_input(t, "x");                          /* duplicate block name */
    (void)v;
    cr_assert_neq(tg_tape_status(t), TG_OK);
    s = tg_jacobian_sparsity(t, TG_ALL);
    cr_expect_eq(tg_sparsity_status(s), tg_tape_status(t));
    tg_sparsity_free(s);
    tg_sparsity_free(NULL);
    cr_expect_eq(tg_sparsity_status(NULL), TG_ERR_ARG);
    tg_tape_free(t);
}

/* Infinite partials and tangents meet exact zeros in the compressed sums as
 * in the dense sweeps (absolute-zero products): sqrt at 0 */
Test(sparse_pattern, infinite_partials)
{
    enum { N = 12 };
    tg_tape *t = tu_tape("inf", 0);
    tg_var x[N], y[N];
    tg_input_vec(t, "x", N, x);
    for (int i = 0; i < N; i++)
        y[i] = tg_add(tg_mul(x[i], tg_sqrt(x[(i + 1) % N])), tg_sqrt(x[i]));
    tg_output_vec(t, "y", N, y);
    TU_TAPE_OK(t);
    tg_sparsity *s = tg_jacobian_sparsity(t, TG_ALL);
    cr_assert_eq(((const struct tg_sparsity *)s)->by_rows, 0);   /* tangent sweeps */
    double xv[N], J[N * N], vals[4 * N];
    for (int i = 0; i < N; i++)
        xv[i] = (i % 3 != 2) ? 0.0 : 0.25 * i;     /* runs of zeros: 0 * inf */
    cr_assert_eq(tg_jacobian(t, xv, J), TG_OK);
    cr_assert_eq(tg_sparse_jacobian(t, s, xv, vals), TG_OK);
    int infs = 0;
    for (size_t e = 0; e < tg_sparsity_nnz(s); e++) {
        double want = J[tg_sparsity_rows(s)[e] * N + tg_sparsity_cols(s)[e]];
        infs += isinf(want);
        cr_assert(su_agree(vals[e], want, 1.0), "entry (%u, %u): sparse %g, dense %g",
                  tg_sparsity_rows(s)[e], tg_sparsity_cols(s)[e], vals[e], want);
    }
    cr_assert_gt(infs, 0);
    tg_sparsity_free(s);
    /* the Hessian of the sum: second-order terms against infinite ones */
    s = tg_hessian_sparsity(t, TG_ALL);
    double *H = su_dense_hessian(t, 0, N, xv, NULL);
    cr_assert_eq(tg_sparse_hessian(t, s, xv, NULL, vals), TG_OK);
    infs = 0;
    for (size_t e = 0; e < tg_sparsity_nnz(s); e++) {
        double want = H[tg_sparsity_rows(s)[e] * N + tg_sparsity_cols(s)[e]];
        infs += isinf(want) || isnan(want);
        cr_assert(su_agree(vals[e], want, 1.0), "hessian (%u, %u): sparse %g, dense %g",
                  tg_sparsity_rows(s)[e], tg_sparsity_cols(s)[e], vals[e], want);
    }
    cr_assert_gt(infs, 0);
    free(H);
    tg_sparsity_free(s);
    tg_tape_free(t);
}

/* f = x0 x1 (x1 + x2) x3: the operand sets of the middle product both
 * die there, and its own set is needed (for the product with x3), so one
 * is grown in place into it -- after the interaction of the two was
 * recorded, not before (else {0,1,2} x {1,2} would add a (2, 2) that is
 * structurally zero: f is linear in x2). */
Test(sparse_pattern, interaction_before_in_place_growth)
{
    tg_tape *t = tu_tape("grow", 0);
    tg_var x[4];
    tg_input_vec(t, "x", 4, x);
    tg_var r = tg_mul(tg_mul(x[0], x[1]), tg_add(x[1], x[2]));
    tg_output(t, "f", tg_mul(r, x[3]));
    TU_TAPE_OK(t);
    tg_sparsity *s = check(t, 1, TG_ALL, NULL, "x0 x1 (x1 + x2) x3");
    uint32_t want_r[] = { 1, 1, 2, 2, 3, 3, 3 }, want_c[] = { 0, 1, 0, 1, 0, 1, 2 };
    cr_assert_eq(tg_sparsity_nnz(s), 7, "nnz %zu", tg_sparsity_nnz(s));
    for (size_t e = 0; e < 7; e++)
        cr_expect(tg_sparsity_rows(s)[e] == want_r[e] && tg_sparsity_cols(s)[e] == want_c[e],
                  "entry %zu: (%u, %u)", e, tg_sparsity_rows(s)[e], tg_sparsity_cols(s)[e]);
    tg_sparsity_free(s);
    tg_tape_free(t);
}
