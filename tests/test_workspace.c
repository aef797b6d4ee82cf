/* tests/test_workspace.c -- a workspace from tg_workspace_new(t) is sized
 * for every call on t: no _ws call allocates afterwards (counted through
 * the allocation funnel, src/tape/alloc.h), on tapes of every shape.  The
 * results are checked against other paths of the library: the Jacobian
 * against JVPs and VJPs (and, where both exist, the compressed sweeps
 * against the dense ones), the Hessian against HVPs. */
#include <criterion/criterion.h>

#include "tape/alloc.h"
#include "testutil.h"


typedef enum { WIDE, TALL, DENSE, BANDED, SCALAR, ONE_INPUT, REPEATED, TINY } shape;

static const char *shape_name[] = { "wide", "tall", "dense", "banded", "scalar (m = 1)",
                                    "one input (n = 1)", "repeated outputs", "1x1" };

/* Records a tape of the given shape: nin inputs, m outputs. */
static tg_tape *
make(shape s, size_t *nin, size_t *m)
{
    static const size_t dims[][2] = {
        [WIDE] = { 60, 3 }, [TALL] = { 3, 60 }, [DENSE] = { 100, 100 }, [BANDED] = { 40, 40 },
        [SCALAR] = { 30, 1 }, [ONE_INPUT] = { 1, 20 }, [REPEATED] = { 2, 30 }, [TINY] = { 1, 1 },
    };
    *nin = dims[s][0];
    *m = dims[s][1];
    tg_tape *t = tg_tape_new(shape_name[s][0] == '1' ? "tiny" : "shape");
    tg_var x[100], y[100];
    tg_input_vec(t, "x", *nin, x);
    tg_var sum = tg_sum(*nin, x);
    for (size_t i = 0; i < *m; i++) {
        switch (s) {
        case DENSE:         /* every output depends on every input */
        case WIDE:
            y[i] = tg_mul(tg_sin(x[i % *nin]), tg_add(sum, (double)i));
            break;
        case BANDED:        /* tridiagonal: compressed sweeps pay */
            y[i] = tg_add(tg_mul(x[i], x[(i + 1) % *nin]), tg_exp(x[(i + *nin - 1) % *nin]));
            break;
        case TALL:
        case ONE_INPUT:
            y[i] = tg_pow(tg_add(x[i % *nin], 2.0), (double)(i % 4 + 1));
            break;
        case REPEATED:      /* more outputs than instructions */
            y[i] = i % 2 ? sum : tg_mul(x[0], x[1]);
            break;
        case SCALAR:
        case TINY:
            y[i] = tg_mul(tg_dot(*nin, x, x), tg_cos(sum));
            break;
        }
    }
    tg_output_vec(t, "y", *m, y);
    cr_assert_eq(tg_tape_status(t), TG_OK, "%s: %s", shape_name[s], tg_tape_error(t));
    return t;
}

static void
fill(double *p, size_t count, double base)
{
    for (size_t i = 0; i < count; i++)
        p[i] = base + 0.37 * (double)(i % 7) - 0.05 * (double)i;
}

/* Every _ws call on t, with the allocation count and the workspace size
 * taken before and after. */
static void
check_shape(shape s)
{
    size_t nin, m;
    tg_tape *t = make(s, &nin, &m);
    double *x = malloc(nin * sizeof *x), *v = malloc(nin * sizeof *v), *u = malloc(m * sizeof *u);
    double *J = malloc(nin * m * sizeof *J), *H = malloc(nin * nin * sizeof *H);
    double *y = malloc(m * sizeof *y), *jv = malloc(m * sizeof *jv), *uj = malloc(nin * sizeof *uj);
    double *g = malloc(nin * sizeof *g), *hv = malloc(nin * sizeof *hv);
    fill(x, nin, 0.3);
    fill(v, nin, -0.2);
    fill(u, m, 0.9);

    tg_workspace *w = tg_workspace_new(t);
    cr_assert_not_null(w);
    size_t bytes = tg_workspace_bytes(w);
    mem_fail_after(-1);                        /* reset the allocation count */
    TU_OK(tg_eval_ws(t, w, x, y));
    TU_OK(tg_jacobian_ws(t, w, x, J));
    TU_OK(tg_jvp_ws(t, w, x, v, jv));
    TU_OK(tg_vjp_ws(t, w, x, u, uj));
    if (m == 1) {
        TU_OK(tg_gradient_ws(t, w, x, g));
        TU_OK(tg_hessian_ws(t, w, x, H));
        TU_OK(tg_hvp_ws(t, w, x, v, hv));
    }
    long made = mem_fail_after(-1);
    cr_expect_eq(made, 0, "%s: %ld allocations after tg_workspace_new", shape_name[s], made);
    cr_expect_eq(tg_workspace_bytes(w), bytes, "%s: the workspace grew from %zu to %zu bytes",
                 shape_name[s], bytes, tg_workspace_bytes(w));

    /* the Jacobian against one JVP per column and one VJP per row */
    double *e = calloc(nin > m ? nin : m, sizeof *e), *col = malloc((nin > m ? nin : m) * sizeof *col);
    for (size_t j = 0; j < nin; j++) {
        e[j] = 1.0;
        TU_OK(tg_jvp(t, x, e, col));
        e[j] = 0.0;
        for (size_t i = 0; i < m; i++)
            cr_expect(tu_close(J[i * nin + j], col[i], 1e-13, 1e-13), "%s: J[%zu][%zu] = %.17g, JVP %.17g",
                      shape_name[s], i, j, J[i * nin + j], col[i]);
    }
    for (size_t i = 0; i < m; i++) {
        e[i] = 1.0;
        TU_OK(tg_vjp(t, x, e, col));
        e[i] = 0.0;
        for (size_t j = 0; j < nin; j++)
            cr_expect(tu_close(J[i * nin + j], col[j], 1e-14, 1e-14),
                      "%s: J[%zu][%zu] = %.17g, VJP %.17g", shape_name[s], i, j, J[i * nin + j],
                      col[j]);
    }
    /* Jv and u^T J from J itself */
    for (size_t i = 0; i < m; i++) {
        double acc = 0;
        for (size_t j = 0; j < nin; j++)
            acc += J[i * nin + j] * v[j];
        cr_expect(tu_close(jv[i], acc, 1e-13, 1e-13), "%s: (Jv)[%zu]", shape_name[s], i);
    }
    for (size_t j = 0; j < nin; j++) {
        double acc = 0;
        for (size_t i = 0; i < m; i++)
            acc += u[i] * J[i * nin + j];
        cr_expect(tu_close(uj[j], acc, 1e-13, 1e-13), "%s: (u^T J)[%zu]", shape_name[s], j);
    }
    if (m == 1) {
        for (size_t j = 0; j < nin; j++) {
            cr_expect(tu_close(g[j], J[j], 1e-14, 1e-14), "%s: gradient[%zu]", shape_name[s], j);
            e[j] = 1.0;
            TU_OK(tg_hvp(t, x, e, col));
            e[j] = 0.0;
            for (size_t k = 0; k < nin; k++)
                cr_expect(tu_close(H[k * nin + j], col[k], 1e-13, 1e-13),
                          "%s: H[%zu][%zu] = %.17g, HVP %.17g", shape_name[s], k, j,
                          H[k * nin + j], col[k]);
        }
    }
    free(e);
    free(col);
    tg_workspace_free(w);
    tg_tape_free(t);
    free(x); free(v); free(u); free(J); free(H); free(y); free(jv); free(uj); free(g); free(hv);
}

Test(workspace, wide_does_not_allocate)      { check_shape(WIDE); }
Test(workspace, tall_does_not_allocate)      { check_shape(TALL); }
Test(workspace, dense_does_not_allocate)     { check_shape(DENSE); }
Test(workspace, banded_does_not_allocate)    { check_shape(BANDED); }
Test(workspace, scalar_does_not_allocate)    { check_shape(SCALAR); }
Test(workspace, one_input_does_not_allocate) { check_shape(ONE_INPUT); }
Test(workspace, repeated_outputs_do_not_allocate) { check_shape(REPEATED); }
Test(workspace, tiny_does_not_allocate)      { check_shape(TINY); }

/* A workspace that starts empty grows on the first call of each kind and
 * never again: the second round of calls allocates nothing. */
Test(workspace, grown_once_then_stable)
{
    size_t nin, m;
    tg_tape *t = make(BANDED, &nin, &m);
    tg_tape *f = make(SCALAR, &nin, &m);
    double x[100], v[100], out[100 * 100];
    fill(x, 100, 0.1);
    fill(v, 100, 0.4);
    tg_workspace *w = tg_workspace_new(NULL);
    for (int round = 0; round < 2; round++) {
        mem_fail_after(-1);
        TU_OK(tg_jacobian_ws(t, w, x, out));
        TU_OK(tg_eval_ws(t, w, x, out));
        TU_OK(tg_hessian_ws(f, w, x, out));
        TU_OK(tg_hvp_ws(f, w, x, v, out));
        TU_OK(tg_gradient_ws(f, w, x, out));
        long made = mem_fail_after(-1);
        if (round == 1)
            cr_expect_eq(made, 0, "%ld allocations on the second round", made);
    }
    tg_workspace_free(w);
    tg_tape_free(t);
    tg_tape_free(f);
}

/* The compressed and the dense Jacobian agree (the banded tape colours
 * into 3 directions; a tape of 8 outputs is swept densely). */
Test(workspace, compressed_jacobian_matches_dense_columns)
{
    size_t nin, m;
    tg_tape *t = make(BANDED, &nin, &m);
    double x[40], J[40 * 40], Jd[40 * 40];
    fill(x, nin, -0.6);
    TU_OK(tg_jacobian(t, x, J));
    /* the same function as 5 tapes of 8 outputs: each swept densely */
    for (size_t r0 = 0; r0 < m; r0 += 8) {
        tg_tape *p = tg_tape_new("part");
        tg_var xs[40], ys[8];
        tg_input_vec(p, "x", nin, xs);
        for (size_t i = r0; i < r0 + 8; i++)
            ys[i - r0] = tg_add(tg_mul(xs[i], xs[(i + 1) % nin]), tg_exp(xs[(i + nin - 1) % nin]));
        tg_output_vec(p, "y", 8, ys);
        TU_OK(tg_jacobian(p, x, Jd + r0 * nin));
        tg_tape_free(p);
    }
    for (size_t k = 0; k < m * nin; k++)
        cr_expect(tu_same_bits(J[k], Jd[k]), "J[%zu][%zu]: %.17g vs %.17g", k / nin, k % nin,
                  J[k], Jd[k]);
    tg_tape_free(t);
}
