/* tests/test_sparse.c -- Jacobians by seed compression (src/ad/sparsity.c)
 * against an independent path: one tg_jvp per unit direction.  Patterns:
 * tridiagonal (3 colours), arrowhead (dense last row), block-diagonal with
 * a select (structural pattern covers both branches), and dense (no
 * compression). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include <tapegen.h>

#include "testutil.h"

/* J by columns from tg_jvp; compared with tg_jacobian entry by entry. */
static void
check_against_jvp(const tg_tape *t, const double *x, const char *what)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *J = calloc(n * m, sizeof *J), *e = calloc(n, sizeof *e), *col = calloc(m, sizeof *col);
    cr_assert(J && e && col);
    cr_assert_eq(tg_jacobian(t, x, J), TG_OK, "%s: %s", what, tg_last_error());
    for (size_t j = 0; j < n; j++) {
        e[j] = 1.0;
        cr_assert_eq(tg_jvp(t, x, e, col), TG_OK);
        e[j] = 0.0;
        for (size_t i = 0; i < m; i++)
            cr_expect(tu_same_value(J[i * n + j], col[i]),
                      "%s: J[%zu][%zu] = %.17g, JVP gives %.17g", what, i, j, J[i * n + j], col[i]);
    }
    free(J);
    free(e);
    free(col);
}

Test(sparse, tridiagonal_broyden)
{
    enum { N = 100 };
    tg_tape *t = tg_tape_new("broyden");
    tg_var x[N], r[N];
    tg_input_vec(t, "x", N, x);
    for (int i = 0; i < N; i++) {
        tg_var v = tg_sub(tg_mul(tg_sub(3.0, tg_mul(2.0, x[i])), x[i]), 0.0);
        if (i > 0)
            v = tg_sub(v, x[i - 1]);
        if (i < N - 1)
            v = tg_sub(v, tg_mul(2.0, x[i + 1]));
        r[i] = tg_add(v, 1.0);
    }
    tg_output_vec(t, "r", N, r);
    double xv[N];
    for (int i = 0; i < N; i++)
        xv[i] = -1.0 + 0.01 * i;
    check_against_jvp(t, xv, "tridiagonal");
    tg_tape_free(t);
}

Test(sparse, arrowhead_and_select_blocks)
{
    enum { N = 40 };
    tg_tape *t = tg_tape_new("arrow");
    tg_var x[N], y[N + 1];
    tg_input_vec(t, "x", N, x);
    for (int i = 0; i < N; i++) {          /* y_i depends on x_i and, by a select, x_(i^1) */
        tg_var other = x[i ^ 1];
        y[i] = tg_select(tg_gt(x[i], 0.0), tg_sin(tg_mul(x[i], other)), tg_exp(x[i]));
    }
    y[N] = tg_norm2sq(N, x);               /* a dense row */
    tg_output_vec(t, "y", N + 1, y);
    double xv[N];
    for (int i = 0; i < N; i++)
        xv[i] = (i % 3 == 0 ? -0.5 : 0.7) + 0.01 * i;
    check_against_jvp(t, xv, "arrowhead");
    tg_tape_free(t);
}

Test(sparse, dense_and_workspace_reuse)
{
    enum { N = 24 };
    tg_tape *t = tg_tape_new("dense");
    tg_var x[N], y[N];
    tg_input_vec(t, "x", N, x);
    tg_var s = tg_sum(N, x);
    for (int i = 0; i < N; i++)
        y[i] = tg_mul(tg_cos(x[i]), s);
    tg_output_vec(t, "y", N, y);
    double xv[N];
    for (int i = 0; i < N; i++)
        xv[i] = 0.1 * i;
    check_against_jvp(t, xv, "dense");
    /* a workspace sized by the first call is reused without growing */
    tg_workspace *w = tg_workspace_new(NULL);
    double J[N * N];
    cr_assert_eq(tg_jacobian_ws(t, w, xv, J), TG_OK);
    size_t bytes = tg_workspace_bytes(w);
    cr_assert_eq(tg_jacobian_ws(t, w, xv, J), TG_OK);
    cr_expect_eq(tg_workspace_bytes(w), bytes);
    tg_workspace_free(w);
    tg_tape_free(t);
}
