/* tests/test_userfn.c -- user-defined functions (tg_call_func, issue 13
 * part 3).  The subject is `rot` (tests/userfn.h): a hand-written C
 * function with hand-written JVP, VJP and HVP.  Every numeric path through
 * a tape calling it is compared with the SAME tape recorded from tapegen's
 * own ops (the independent oracle) and, for first derivatives, with
 * central differences; derivative tapes (CALLs of the derivative functions)
 * with the numeric calls; files with and without the object; the numeric
 * second order (hvp_numeric) with the exact one; missing callbacks give
 * TG_ERR_UNSUPPORTED. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "derivutil.h"
#include "userfn.h"

#define N 3
#define MV 5
#define RTOL 1e-12

static void random_point(tu_rng *r, double *x)
{
    for (int j = 0; j < N; j++)
        x[j] = tu_rng_range(r, -1.5, 1.5);
}

static void assert_close_vec(const double *got, const double *want, size_t n, double rtol,
                             const char *what)
{
    double s = du_scale(want, n);
    for (size_t j = 0; j < n; j++)
        cr_assert(du_close2(got[j], want[j], rtol, s), "%s[%zu]: %.17g, want %.17g", what, j,
                  got[j], want[j]);
}

/* ------------------------------------------------------------ definition */

static void nop_eval(void *ctx, const double *x, double *y)
{
    (void)ctx; (void)x; (void)y;
}

Test(userfn, define_checks_its_arguments)
{
    tg_funcs *fs = tg_funcs_new();
    cr_assert(fs);
    tg_func_def d = { .name = "f", .n = 1, .k = 1, .eval = nop_eval };
    cr_assert_eq(tg_func_define(NULL, &d), TG_ERR_ARG);
    cr_assert_eq(tg_func_define(fs, NULL), TG_ERR_ARG);
    const char *bad[] = { "", "1f", "a-b", "a b", "\xc3\xa9", NULL };
    for (int i = 0; i < 5; i++) {
        d.name = bad[i];
        cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG, "name '%s' accepted", bad[i]);
    }
    d.name = NULL;
    cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG);
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = 0;
    d.name = longname;
    cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG);
    longname[63] = 0;
    TU_OK(tg_func_define(fs, &d));
    d.name = "f";
    d.eval = NULL;
    cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG);
    cr_assert(strstr(tg_last_error(), "eval"), "%s", tg_last_error());
    d.eval = nop_eval;
    d.n = ((size_t)1 << 24) + 1;
    cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG);
    d.n = 1;
    TU_OK(tg_func_define(fs, &d));
    cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG, "duplicate accepted");
    cr_assert(strstr(tg_last_error(), "already"), "%s", tg_last_error());
    cr_assert_eq(tg_funcs_count(fs), 2);
    cr_assert_str_eq(tg_funcs_name(fs, 1), "f");
    cr_assert_null(tg_funcs_name(fs, 2));
    cr_assert_eq(tg_funcs_count(NULL), 0);
    /* sealing freezes the object */
    TU_OK(tg_funcs_seal(fs));
    d.name = "g";
    cr_assert_eq(tg_func_define(fs, &d), TG_ERR_ARG);
    cr_assert(strstr(tg_last_error(), "sealed"), "%s", tg_last_error());
    tg_funcs_free(fs);
    tg_funcs_free(NULL);
}

Test(userfn, sealing_checks_derivative_function_references)
{
    tg_funcs *fs = tg_funcs_new();
    tg_func_def d = { .name = "f", .n = 2, .k = 1, .eval = nop_eval, .jvp_func = "f_jvp" };
    TU_OK(tg_func_define(fs, &d));
    cr_assert_eq(tg_funcs_seal(fs), TG_ERR_ARG, "undefined jvp_func accepted");
    cr_assert(strstr(tg_last_error(), "f_jvp"), "%s", tg_last_error());
    /* wrong shape: a jvp function of f takes 2 + 2 inputs, gives 1 output */
    tg_func_def j = { .name = "f_jvp", .n = 3, .k = 1, .eval = nop_eval };
    TU_OK(tg_func_define(fs, &j));
    tg_tape *t = tu_tape("t", 0);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_var y;
    tg_call_func(t, fs, "f", x, &y);
    cr_assert_eq(tg_tape_status(t), TG_ERR_ARG, "wrong shape accepted");
    cr_assert(strstr(tg_tape_error(t), "3 -> 1"), "%s", tg_tape_error(t));
    cr_assert_eq(y.id, TG_NIL);
    tg_tape_free(t);
    tg_funcs_free(fs);
}

Test(userfn, call_errors_are_sticky)
{
    tg_funcs *fs = ufn_new(UFN_FULL), *other = ufn_new(UFN_FULL);
    tg_tape *t = tu_tape("t", 0), *u = tu_tape("u", 0);
    tg_var x[2], xu = tg_input(u, "x"), y[2];
    tg_input_vec(t, "x", 2, x);
    tg_call_func(t, fs, "nope", x, y);
    cr_assert_eq(tg_tape_status(t), TG_ERR_ARG);
    cr_assert(strstr(tg_tape_error(t), "nope"), "%s", tg_tape_error(t));
    tg_tape_free(t);

    t = tu_tape("t", 0);
    tg_input_vec(t, "x", 2, x);
    tg_var mixed[2] = { x[0], xu };
    tg_call_func(t, fs, "rot", mixed, y);
    cr_assert_eq(tg_tape_status(t), TG_ERR_ARG);
    cr_assert_eq(y[0].id, TG_NIL);
    tg_tape_free(t);

    t = tu_tape("t", 0);
    tg_input_vec(t, "x", 2, x);
    tg_call_func(t, NULL, "rot", x, y);
    cr_assert_eq(tg_tape_status(t), TG_ERR_ARG);
    tg_tape_free(t);

    /* one object per tape */
    t = tu_tape("t", 0);
    tg_input_vec(t, "x", 2, x);
    tg_call_func(t, fs, "rot", x, y);
    TU_TAPE_OK(t);
    tg_call_func(t, other, "rot", x, y);
    cr_assert_eq(tg_tape_status(t), TG_ERR_ARG);
    cr_assert(strstr(tg_tape_error(t), "another tg_funcs"), "%s", tg_tape_error(t));
    tg_tape_free(t);

    /* the tapeless zero is an input */
    t = tu_tape("t", 0);
    tg_var z[2] = { tg_input(t, "a"), TG_ZERO_VAR };
    tg_call_func(t, fs, "rot", z, y);
    tg_output_vec(t, "y", 2, y);
    TU_TAPE_OK(t);
    double a = 1.5, out[2];
    TU_OK(tg_eval(t, &a, out));
    cr_assert(out[0] == 1.5 && out[1] == 0.0);
    tg_tape_free(t);
    tg_tape_free(u);
    tg_funcs_free(fs);
    tg_funcs_free(other);
}

Test(userfn, one_instruction_per_call)
{
    tg_funcs *fs = ufn_new(UFN_FULL);
    tg_tape *t = tu_tape("t", 0);
    tg_var x[2], y[2], y2[2];
    tg_input_vec(t, "x", 2, x);
    size_t before = tg_tape_size(t);
    tg_call_func(t, fs, "rot", x, y);
    cr_assert_eq(tg_tape_size(t), before + 3, "CALL + 2 XOUT, got %zu", tg_tape_size(t) - before);
    /* never merged by CSE */
    tg_call_func(t, fs, "rot", x, y2);
    cr_assert_eq(tg_tape_size(t), before + 6);
    cr_assert_neq(y[0].id, y2[0].id);
    tg_insn in;
    TU_OK(tg_tape_insn(t, before, &in));
    cr_assert_eq(in.op, TG_OP_CALL);
    cr_assert_eq(in.noperands, 2);
    cr_assert_eq(in.operand[0], x[0].id);
    cr_assert_eq(in.operand[1], x[1].id);
    TU_OK(tg_tape_insn(t, y[1].id, &in));
    cr_assert_eq(in.op, TG_OP_XOUT);
    cr_assert_eq(in.operand[0], before);
    tg_tape_free(t);
    tg_funcs_free(fs);
}

/* ------------------------------------------------------------ numeric paths */

typedef struct pair {
    tg_funcs *fs;
    tg_tape *call, *ops;    /* through the user function / from ops */
} pair;

static pair make_pair(int variant, int scalar)
{
    pair p;
    p.fs = ufn_new(variant);
    p.call = ufn_tape(p.fs, scalar);
    p.ops = ufn_tape(NULL, scalar);
    return p;
}

static void free_pair(pair *p)
{
    tg_tape_free(p->call);
    tg_tape_free(p->ops);
    tg_funcs_free(p->fs);
}

Test(userfn, eval_equals_the_op_recording)
{
    pair p = make_pair(UFN_FULL, 0);
    tu_rng r = { 11 };
    for (int k = 0; k < 20; k++) {
        double x[N], a[MV], b[MV];
        random_point(&r, x);
        TU_OK(tg_eval(p.call, x, a));
        TU_OK(tg_eval(p.ops, x, b));
        /* same libm calls, same order: the same bits */
        for (int j = 0; j < MV; j++)
            cr_assert(tu_same_bits(a[j], b[j]), "y[%d]: %.17g vs %.17g", j, a[j], b[j]);
    }
    free_pair(&p);
}

Test(userfn, first_derivatives_equal_the_oracle_and_differences)
{
    pair p = make_pair(UFN_FULL, 0), s = make_pair(UFN_FULL, 1);
    tu_rng r = { 12 };
    for (int k = 0; k < 10; k++) {
        double x[N], v[N], w[MV], a[MV * N], b[MV * N], fd[MV];
        random_point(&r, x);
        random_point(&r, v);
        for (int j = 0; j < MV; j++)
            w[j] = tu_rng_range(&r, -1, 1);
        TU_OK(tg_jacobian(p.call, x, a));
        TU_OK(tg_jacobian(p.ops, x, b));
        assert_close_vec(a, b, MV * N, RTOL, "jacobian");
        for (int i = 0; i < MV; i++)
            for (int j = 0; j < N; j++)
                cr_assert(tu_close(a[i * N + j], tu_cdiff_tape(p.ops, x, (size_t)i, (size_t)j),
                                   1e-6, 1e-7), "J[%d][%d] vs central differences", i, j);
        TU_OK(tg_jvp(p.call, x, v, a));
        TU_OK(tg_jvp(p.ops, x, v, b));
        assert_close_vec(a, b, MV, RTOL, "jvp");
        tu_cdiff_dir(tu_tape_eval_fn, p.call, N, MV, x, v, 1e-6, fd);
        assert_close_vec(a, fd, MV, 1e-6, "jvp vs central differences");
        TU_OK(tg_vjp(p.call, x, w, a));
        TU_OK(tg_vjp(p.ops, x, w, b));
        assert_close_vec(a, b, N, RTOL, "vjp");
        TU_OK(tg_gradient(s.call, x, a));
        TU_OK(tg_gradient(s.ops, x, b));
        assert_close_vec(a, b, N, RTOL, "gradient");
        for (int j = 0; j < N; j++)
            cr_assert(tu_close(a[j], tu_cdiff_tape(s.call, x, 0, (size_t)j), 1e-6, 1e-7),
                      "gradient[%d] vs central differences", j);
    }
    free_pair(&p);
    free_pair(&s);
}

Test(userfn, second_derivatives_equal_the_oracle)
{
    pair s = make_pair(UFN_FULL, 1);
    tu_rng r = { 13 };
    for (int k = 0; k < 10; k++) {
        double x[N], v[N], a[N * N], b[N * N], fd[N];
        random_point(&r, x);
        random_point(&r, v);
        TU_OK(tg_hessian(s.call, x, a));
        TU_OK(tg_hessian(s.ops, x, b));
        assert_close_vec(a, b, N * N, RTOL, "hessian");
        TU_OK(tg_hvp(s.call, x, v, a));
        TU_OK(tg_hvp(s.ops, x, v, b));
        assert_close_vec(a, b, N, RTOL, "hvp");
        tu_cdiff_hvp(s.call, x, v, fd);
        assert_close_vec(a, fd, N, 1e-5, "hvp vs central differences of the gradient");
    }
    free_pair(&s);
}

Test(userfn, numeric_hvp_only_when_allowed)
{
    pair num = make_pair(UFN_NUMERIC_HVP, 1), no = make_pair(UFN_NO_HVP, 1);
    tu_rng r = { 14 };
    for (int k = 0; k < 10; k++) {
        double x[N], v[N], a[N * N], b[N * N];
        random_point(&r, x);
        random_point(&r, v);
        TU_OK(tg_hessian(num.call, x, a));
        TU_OK(tg_hessian(num.ops, x, b));
        /* central differences of the VJP: relative error ~ eps^(2/3) */
        assert_close_vec(a, b, N * N, 1e-7, "hessian by differences of the vjp");
        TU_OK(tg_hvp(num.call, x, v, a));
        TU_OK(tg_hvp(num.ops, x, v, b));
        assert_close_vec(a, b, N, 1e-7, "hvp by differences of the vjp");
    }
    double x[N] = { 0.3, -0.2, 0.9 }, v[N] = { 1, 0, 0 }, out[N * N] = { 42 };
    cr_assert_eq(tg_hvp(no.call, x, v, out), TG_ERR_UNSUPPORTED);
    cr_assert(strstr(tg_last_error(), "rot") && strstr(tg_last_error(), "hvp"), "%s",
              tg_last_error());
    cr_assert_eq(tg_hessian(no.call, x, out), TG_ERR_UNSUPPORTED);
    cr_assert_eq(out[0], 42, "output written on error");
    /* first order still works */
    double g[N];
    TU_OK(tg_gradient(no.call, x, g));
    free_pair(&num);
    free_pair(&no);
}

Test(userfn, missing_jvp_is_unsupported_where_needed)
{
    pair p = make_pair(UFN_NO_JVP, 0);
    double x[N] = { 0.3, -0.2, 0.9 }, v[N] = { 1, 2, 3 }, w[MV] = { 1, 1, 1, 1, 1 }, out[MV];
    cr_assert_eq(tg_jvp(p.call, x, v, out), TG_ERR_UNSUPPORTED);
    cr_assert(strstr(tg_last_error(), "jvp"), "%s", tg_last_error());
    TU_OK(tg_vjp(p.call, x, w, out));
    TU_OK(tg_eval(p.call, x, out));
    free_pair(&p);
}

Test(userfn, zero_directions_skip_the_callbacks)
{
    pair p = make_pair(UFN_FULL, 0);
    double x[N] = { 0.3, -0.2, 0.9 }, v[N] = { 0, 0, 0 }, w[MV] = { 0 }, out[MV];
    long j0 = atomic_load(&ufn_calls[1]), v0 = atomic_load(&ufn_calls[2]);
    TU_OK(tg_jvp(p.call, x, v, out));
    for (int j = 0; j < MV; j++)
        cr_assert(out[j] == 0.0);
    TU_OK(tg_vjp(p.call, x, w, out));
    for (int j = 0; j < N; j++)
        cr_assert(out[j] == 0.0);
    cr_assert_eq(atomic_load(&ufn_calls[1]), j0, "jvp called for a zero direction");
    cr_assert_eq(atomic_load(&ufn_calls[2]), v0, "vjp called for a zero cotangent");
    free_pair(&p);
}

Test(userfn, batch_calls_equal_pointwise_calls)
{
    pair p = make_pair(UFN_FULL, 0), s = make_pair(UFN_FULL, 1);
    enum { NP = 37 };
    double X[NP * N], Y[NP * MV], G[NP * N];
    tu_rng r = { 15 };
    for (int i = 0; i < NP; i++)
        random_point(&r, X + i * N);
    TU_OK(tg_eval_batch(p.call, NP, X, Y));
    TU_OK(tg_gradient_batch(s.call, NP, X, G));
    for (int i = 0; i < NP; i++) {
        double y[MV], g[N];
        TU_OK(tg_eval(p.ops, X + i * N, y));
        TU_OK(tg_gradient(s.ops, X + i * N, g));
        assert_close_vec(Y + i * MV, y, MV, 0.0, "eval_batch");
        assert_close_vec(G + i * N, g, N, RTOL, "gradient_batch");
    }
    free_pair(&p);
    free_pair(&s);
}

Test(userfn, wrt_and_multi_equal_the_oracle)
{
    pair p = make_pair(UFN_FULL, 0), s = make_pair(UFN_FULL, 1);
    double x[N] = { 0.4, -0.7, 1.1 }, V[2 * N] = { 1, 0.5, -1, 0, 2, 1 }, W[2 * MV];
    for (int j = 0; j < 2 * MV; j++)
        W[j] = 0.25 * j - 1;
    double a[2 * MV * N], b[2 * MV * N];
    TU_OK(tg_jvp_multi(p.call, TG_ALL, 2, x, V, a));
    TU_OK(tg_jvp_multi(p.ops, TG_ALL, 2, x, V, b));
    assert_close_vec(a, b, 2 * MV, RTOL, "jvp_multi");
    TU_OK(tg_vjp_multi(p.call, TG_ALL, 2, x, W, a));
    TU_OK(tg_vjp_multi(p.ops, TG_ALL, 2, x, W, b));
    assert_close_vec(a, b, 2 * N, RTOL, "vjp_multi");
    TU_OK(tg_hvp_multi(s.call, TG_ALL, 2, x, V, a));
    TU_OK(tg_hvp_multi(s.ops, TG_ALL, 2, x, V, b));
    assert_close_vec(a, b, 2 * N, RTOL, "hvp_multi");
    TU_OK(tg_jacobian_wrt(p.call, 0, x, a));
    TU_OK(tg_jacobian_wrt(p.ops, 0, x, b));
    assert_close_vec(a, b, MV * N, RTOL, "jacobian_wrt");
    TU_OK(tg_hessian_wrt(s.call, 0, x, a));
    TU_OK(tg_hessian_wrt(s.ops, 0, x, b));
    assert_close_vec(a, b, N * N, RTOL, "hessian_wrt");
    free_pair(&p);
    free_pair(&s);
}

Test(userfn, workspaces_serve_calls)
{
    pair s = make_pair(UFN_FULL, 1);
    tg_workspace *w = tg_workspace_new(s.call);
    cr_assert(w);
    double x[N] = { 0.4, -0.7, 1.1 }, a[N], b[N], v[N] = { 1, 2, 3 };
    for (int rep = 0; rep < 40; rep++) {   /* past the lazy threshold */
        TU_OK(tg_gradient_ws(s.call, w, x, a));
        TU_OK(tg_gradient(s.call, x, a));
        TU_OK(tg_hvp(s.call, x, v, a));
    }
    TU_OK(tg_gradient(s.ops, x, b));
    TU_OK(tg_gradient_ws(s.call, w, x, a));
    assert_close_vec(a, b, N, RTOL, "gradient_ws");
    tg_workspace_free(w);
    free_pair(&s);
}

/* ------------------------------------------------------------ sparsity */

Test(userfn, sparse_patterns_treat_a_call_as_dense)
{
    /* y = rot(x0, x1), plus x2^2: the call's block is dense */
    tg_funcs *fs = ufn_new(UFN_FULL);
    tg_tape *t = tu_tape("sp", 0);
    tg_var x[3], y[2];
    tg_input_vec(t, "x", 3, x);
    tg_call_func(t, fs, "rot", x, y);
    tg_var out[3] = { y[0], y[1], tg_mul(x[2], x[2]) };
    tg_output_vec(t, "y", 3, out);
    TU_TAPE_OK(t);
    tg_sparsity *sj = tg_jacobian_sparsity(t, TG_ALL);
    TU_OK(tg_sparsity_status(sj));
    cr_assert_eq(tg_sparsity_nnz(sj), 5, "nnz %zu", tg_sparsity_nnz(sj));
    double x0[3] = { 0.7, 0.3, -2 }, vals[5], J[9];
    TU_OK(tg_sparse_jacobian(t, sj, x0, vals));
    TU_OK(tg_jacobian(t, x0, J));
    for (size_t e = 0; e < 5; e++) {
        uint32_t i = tg_sparsity_rows(sj)[e], j = tg_sparsity_cols(sj)[e];
        cr_assert(tu_close(vals[e], J[i * 3 + j], RTOL, 0), "J(%u,%u)", i, j);
    }
    tg_sparsity *sh = tg_hessian_sparsity(t, TG_ALL);
    TU_OK(tg_sparsity_status(sh));
    /* lower triangle: (0,0) (1,0) (1,1) from the call, (2,2) */
    cr_assert_eq(tg_sparsity_nnz(sh), 4, "nnz %zu", tg_sparsity_nnz(sh));
    double w[3] = { 0.5, -1.5, 2 }, hv[4];
    TU_OK(tg_sparse_hessian(t, sh, x0, w, hv));
    /* the weighted Hessian by hand: sum w_q H_q */
    double a = x0[0], c = cos(x0[1]), s = sin(x0[1]);
    double want[4] = { 0, -s * w[0] + c * w[1], -a * c * w[0] - a * s * w[1], 2 * w[2] };
    for (int e = 0; e < 4; e++)
        cr_assert(tu_close(hv[e], want[e], RTOL, 1e-15), "H entry %d: %.17g vs %.17g", e, hv[e],
                  want[e]);
    tg_sparsity_free(sj);
    tg_sparsity_free(sh);
    tg_tape_free(t);
    tg_funcs_free(fs);
}

/* ------------------------------------------------------------ derivative tapes */

Test(userfn, derivative_tapes_call_the_derivative_functions)
{
    pair p = make_pair(UFN_FULL, 0), s = make_pair(UFN_FULL, 1);
    tg_tape *gt = tg_gradient_tape(s.call, TG_ALL), *jt = tg_jacobian_tape(p.call, TG_ALL);
    tg_tape *jv = tg_jvp_tape(p.call, TG_ALL), *vj = tg_vjp_tape(p.call, TG_ALL);
    tg_tape *ht = tg_hvp_tape(s.call, TG_ALL), *hs = tg_hessian_tape(s.call, TG_ALL);
    tg_tape *all[] = { gt, jt, jv, vj, ht, hs };
    for (int i = 0; i < 6; i++)
        TU_TAPE_OK(all[i]);
    tu_rng r = { 16 };
    for (int k = 0; k < 10; k++) {
        double x[N], xv[N + MV], a[MV * N], b[MV * N];
        random_point(&r, x);
        TU_OK(tg_eval(gt, x, a));
        TU_OK(tg_gradient(s.ops, x, b));
        assert_close_vec(a, b, N, RTOL, "gradient tape");
        TU_OK(tg_eval(jt, x, a));
        TU_OK(tg_jacobian(p.ops, x, b));
        assert_close_vec(a, b, MV * N, RTOL, "jacobian tape");
        memcpy(xv, x, sizeof x);
        random_point(&r, xv + N);
        TU_OK(tg_eval(jv, xv, a));
        TU_OK(tg_jvp(p.ops, x, xv + N, b));
        assert_close_vec(a, b, MV, RTOL, "jvp tape");
        TU_OK(tg_eval(ht, xv, a));
        TU_OK(tg_hvp(s.ops, x, xv + N, b));
        assert_close_vec(a, b, N, RTOL, "hvp tape");
        TU_OK(tg_eval(hs, x, a));
        TU_OK(tg_hessian(s.ops, x, b));
        assert_close_vec(a, b, N * N, RTOL, "hessian tape");
        for (int j = 0; j < MV; j++)
            xv[N + j] = tu_rng_range(&r, -1, 1);
        TU_OK(tg_eval(vj, xv, a));
        TU_OK(tg_vjp(p.ops, x, xv + N, b));
        assert_close_vec(a, b, N, RTOL, "vjp tape");
        /* a derivative tape is differentiated numerically again: the
         * gradient tape's Jacobian is the Hessian */
        TU_OK(tg_jacobian(gt, x, a));
        TU_OK(tg_hessian(s.ops, x, b));
        assert_close_vec(a, b, N * N, RTOL, "jacobian of the gradient tape");
    }
    for (int i = 0; i < 6; i++)
        tg_tape_free(all[i]);
    free_pair(&p);
    free_pair(&s);
}

Test(userfn, derivative_tapes_without_functions_are_unsupported)
{
    pair s = make_pair(UFN_NO_DERIV_FUNCS, 1);
    tg_tape *gt = tg_gradient_tape(s.call, TG_ALL), *jv = tg_jvp_tape(s.call, TG_ALL);
    cr_assert_eq(tg_tape_status(gt), TG_ERR_UNSUPPORTED);
    cr_assert(strstr(tg_tape_error(gt), "'rot'") && strstr(tg_tape_error(gt), "vjp_func"), "%s",
              tg_tape_error(gt));
    cr_assert_eq(tg_tape_status(jv), TG_ERR_UNSUPPORTED);
    cr_assert(strstr(tg_tape_error(jv), "jvp_func"), "%s", tg_tape_error(jv));
    tg_tape_free(gt);
    tg_tape_free(jv);
    free_pair(&s);
}

/* ------------------------------------------------------------ files */

static char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/tg_userfn_%ld_%s", (long)getpid(), name);
    return buf;
}

Test(userfn, files_need_the_object)
{
    pair s = make_pair(UFN_FULL, 1);
    const char *path = tmp_path("uf.tape");
    TU_OK(tg_tape_save(s.call, path));
    tg_tape *no = tg_tape_load(path);
    cr_assert_eq(tg_tape_status(no), TG_ERR_FORMAT);
    cr_assert(strstr(tg_tape_error(no), "tape uses user function 'rot' (2 -> 2): load it with "
                     "the tg_funcs object that defines it"), "%s", tg_tape_error(no));
    tg_tape_free(no);
    no = tg_tape_load_funcs(path, NULL);
    cr_assert_eq(tg_tape_status(no), TG_ERR_FORMAT);
    tg_tape_free(no);

    /* an object without rot, and one with rot of another shape */
    tg_funcs *empty = tg_funcs_new(), *wrong = tg_funcs_new();
    tg_func_def d = { .name = "rot", .n = 3, .k = 2, .eval = ufn_rotjvp_eval };
    TU_OK(tg_func_define(wrong, &d));
    no = tg_tape_load_funcs(path, empty);
    cr_assert_eq(tg_tape_status(no), TG_ERR_FORMAT);
    cr_assert(strstr(tg_tape_error(no), "'rot'"), "%s", tg_tape_error(no));
    tg_tape_free(no);
    no = tg_tape_load_funcs(path, wrong);
    cr_assert_eq(tg_tape_status(no), TG_ERR_FORMAT);
    cr_assert(strstr(tg_tape_error(no), "3 -> 2"), "%s", tg_tape_error(no));
    tg_tape_free(no);

    /* a fresh object defining the same functions */
    tg_funcs *fs2 = ufn_new(UFN_FULL);
    tg_tape *t = tg_tape_load_funcs(path, fs2);
    TU_TAPE_OK(t);
    char *d1 = tg_tape_disasm(s.call), *d2 = tg_tape_disasm(t);
    cr_assert_str_eq(d1, d2);
    free(d1);
    free(d2);
    double x[N] = { 0.4, -0.7, 1.1 }, a[N * N], b[N * N];
    TU_OK(tg_hessian(t, x, a));
    TU_OK(tg_hessian(s.ops, x, b));
    assert_close_vec(a, b, N * N, RTOL, "hessian of the loaded tape");
    /* saving the loaded tape gives the same bytes */
    const char *path2 = tmp_path("uf2.tape");
    TU_OK(tg_tape_save(t, path2));
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
    int c1, c2;
    do {
        c1 = fgetc(f1);
        c2 = fgetc(f2);
        cr_assert_eq(c1, c2, "saved files differ");
    } while (c1 != EOF);
    fclose(f1);
    fclose(f2);
    /* a derivative tape (CALLs of rot_vjp) round-trips too */
    tg_tape *gt = tg_gradient_tape(t, TG_ALL);
    TU_OK(tg_tape_save(gt, path2));
    tg_tape *gl = tg_tape_load_funcs(path2, fs2);
    TU_TAPE_OK(gl);
    TU_OK(tg_eval(gl, x, a));
    TU_OK(tg_gradient(s.ops, x, b));
    assert_close_vec(a, b, N, RTOL, "loaded gradient tape");
    tg_tape_free(gt);
    tg_tape_free(gl);
    unlink(path);
    unlink(path2);
    tg_tape_free(t);
    tg_funcs_free(fs2);
    tg_funcs_free(empty);
    tg_funcs_free(wrong);
    free_pair(&s);
}

Test(userfn, loading_a_plain_tape_with_an_object_is_fine)
{
    tg_tape *t = tu_tape("plain", 0);
    tg_output(t, "y", tg_sin(tg_input(t, "x")));
    const char *path = tmp_path("plain.tape");
    TU_OK(tg_tape_save(t, path));
    tg_funcs *fs = ufn_new(UFN_FULL);
    tg_tape *l = tg_tape_load_funcs(path, fs);
    TU_TAPE_OK(l);
    tg_tape_free(l);
    unlink(path);
    tg_tape_free(t);
    tg_funcs_free(fs);
}

/* ------------------------------------------------------------ other paths */

Test(userfn, optimise_and_inline_keep_calls)
{
    pair s = make_pair(UFN_FULL, 1);
    double x[N] = { 0.4, -0.7, 1.1 }, a[N], b[N], y0, y1;
    TU_OK(tg_eval(s.call, x, &y0));
    TU_OK(tg_tape_optimize(s.call, TG_OPT_MAX));
    TU_OK(tg_eval(s.call, x, &y1));
    cr_assert(tu_same_bits(y0, y1), "optimisation changed the value");
    TU_OK(tg_gradient(s.call, x, a));
    TU_OK(tg_gradient(s.ops, x, b));
    assert_close_vec(a, b, N, RTOL, "gradient of the optimised tape");
    /* a derivative tape with calls of rot_vjp, optimised */
    tg_tape *gt = tg_gradient_tape(s.call, TG_ALL);
    TU_OK(tg_tape_optimize(gt, TG_OPT_MAX));
    TU_OK(tg_eval(gt, x, a));
    assert_close_vec(a, b, N, RTOL, "optimised gradient tape");
    tg_tape_free(gt);
    /* tg_call inlines a tape with calls */
    tg_tape *g = tu_tape("g", 0);
    tg_var in[N], out;
    tg_input_vec(g, "x", N, in);
    tg_call(g, s.call, in, &out);
    tg_output(g, "f", tg_mul(out, 2.0));
    TU_TAPE_OK(g);
    TU_OK(tg_gradient(g, x, a));
    for (int j = 0; j < N; j++)
        cr_assert(tu_close(a[j], 2 * b[j], RTOL, 1e-15));
    tg_tape_free(g);
    free_pair(&s);
}

Test(userfn, native_compilation_refuses_cleanly)
{
    pair s = make_pair(UFN_FULL, 1);
    cr_assert_null(tg_compile(s.call, NULL));
    cr_assert(strstr(tg_last_error(), "user function"), "%s", tg_last_error());
    cr_assert_eq(tg_tape_compile(s.call, TG_F | TG_GRAD, NULL), TG_ERR_UNSUPPORTED);
    double x[N] = { 0.4, -0.7, 1.1 }, a[N];
    TU_OK(tg_gradient(s.call, x, a));    /* still usable */
    free_pair(&s);
}

/* ------------------------------------------------------------ generated C */

#include <dlfcn.h>

/* The user's C functions of the generated code: rot, rot_jvp, rot_vjp by
 * the formulas of tests/userfn.h (with the prototypes the generated code
 * declares). */
static const char user_c[] =
    "\nvoid rot(const double *x, double *y)\n"
    "{ y[0] = x[0] * cos(x[1]); y[1] = x[0] * sin(x[1]); }\n"
    "void rot_jvp(const double *z, double *y)\n"
    "{\n    double c = cos(z[1]), s = sin(z[1]);\n"
    "    y[0] = c * z[2] - z[0] * s * z[3];\n    y[1] = s * z[2] + z[0] * c * z[3];\n}\n"
    "void rot_vjp(const double *z, double *y)\n"
    "{\n    double c = cos(z[1]), s = sin(z[1]);\n"
    "    y[0] = c * z[2] + s * z[3];\n    y[1] = -z[0] * s * z[2] + z[0] * c * z[3];\n}\n";

typedef int (*ckern)(const double *, double *, double *);

static char *cat(char *a, const char *b)
{
    size_t n = a ? strlen(a) : 0, m = strlen(b);
    a = realloc(a, n + m + 1);
    cr_assert(a);
    memcpy(a + n, b, m + 1);
    return a;
}

Test(userfn, generated_c_calls_the_users_functions, .timeout = 120)
{
    if (system("cc --version > /dev/null 2>&1") != 0) {
        cr_log_warn("no C compiler: the generated C is not compiled");
        return;
    }
    pair p = make_pair(UFN_FULL, 0), s = make_pair(UFN_FULL, 1);
    tg_tape *gt = tg_gradient_tape(s.call, TG_ALL), *jv = tg_jvp_tape(p.call, TG_ALL);
    TU_TAPE_OK(gt);
    TU_TAPE_OK(jv);
    const tg_tape *tp[3] = { p.call, gt, jv };
    const char *names[3] = { "k_f", "k_grad", "k_jvp" };
    size_t work[3], nin[3] = { N, N, 2 * N }, nout[3] = { MV, N, MV };
    char *src = NULL;
    for (int k = 0; k < 3; k++) {
        tg_c_options o = { 0 };
        o.function_name = names[k];
        o.part_size = k == 0 ? 2 : 0;   /* values cross parts through work slots */
        char *one = NULL;
        TU_OK(tg_c_source(tp[k], &o, &one, &work[k]));
        cr_assert(strstr(one, "void rot(const double *x, double *y);"), "no prototype:\n%s", one);
        src = cat(src, one);
        free(one);
    }
    src = cat(src, user_c);
    char dir[] = "/tmp/tg_userfn_c_XXXXXX", path[256], so[256], cmd[1024];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/k.c", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f && fputs(src, f) >= 0 && fclose(f) == 0);
    snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -pedantic -Werror -ffp-contract=off "
             "-O2 -fPIC -shared -o %s %s -lm", so, path);
    cr_assert_eq(system(cmd), 0, "cc failed on the generated C (%s)", path);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "dlopen: %s", dlerror());
    tu_rng r = { 21 };
    for (int rep = 0; rep < 20; rep++) {
        double x[2 * N], got[MV], want[MV];
        for (int j = 0; j < 2 * N; j++)
            x[j] = tu_rng_range(&r, -2, 2);
        for (int k = 0; k < 3; k++) {
            ckern fn;
            *(void **)&fn = dlsym(h, names[k]);
            cr_assert(fn, "dlsym %s", names[k]);
            double *w = calloc(work[k] + 1, sizeof *w);
            cr_assert_eq(fn(x, got, w), 0);
            free(w);
            TU_OK(tg_eval(tp[k], x, want));
            /* the same C arithmetic; libm calls may be merged (sincos) */
            assert_close_vec(got, want, nout[k], 1e-14, names[k]);
            (void)nin;
        }
    }
    dlclose(h);
    remove(path);
    remove(so);
    rmdir(dir);
    free(src);
    tg_tape_free(gt);
    tg_tape_free(jv);
    free_pair(&p);
    free_pair(&s);
}

Test(userfn, generated_c_refuses_bad_user_names)
{
    tg_funcs *fs = tg_funcs_new();
    tg_func_def d = { .name = "sin", .n = 1, .k = 1, .eval = nop_eval };
    TU_OK(tg_func_define(fs, &d));
    tg_tape *t = tu_tape("t", 0);
    tg_var x = tg_input(t, "x"), y;
    tg_call_func(t, fs, "sin", &x, &y);
    tg_output(t, "y", y);
    TU_TAPE_OK(t);
    char *src = NULL;
    cr_assert_eq(tg_c_source(t, NULL, &src, NULL), TG_ERR_NAME);
    cr_assert(strstr(tg_last_error(), "sin"), "%s", tg_last_error());
    tg_tape_free(t);
    tg_funcs_free(fs);
}

/* ------------------------------------------------------------ generated Rust */

static void put_vec(FILE *f, const double *v, size_t n)
{
    fprintf(f, "[");
    for (size_t j = 0; j < n; j++)
        fprintf(f, "%s%.17g_f64", j ? ", " : "", v[j]);
    fprintf(f, "]");
}

/* The user's side of the crate: UserFunctions by the formulas of
 * tests/userfn.h, and the kernels at points against values tg_eval gave. */
static const char user_rs_head[] =
    "use ufcrate::*;\n\nstruct Mine;\n\nimpl UserFunctions for Mine {\n"
    "    fn rot(&self, x: &[f64], y: &mut [f64]) {\n"
    "        y[0] = x[0] * x[1].cos();\n        y[1] = x[0] * x[1].sin();\n    }\n"
    "    fn rot_jvp(&self, z: &[f64], y: &mut [f64]) {\n"
    "        let (c, s) = (z[1].cos(), z[1].sin());\n"
    "        y[0] = c * z[2] - z[0] * s * z[3];\n        y[1] = s * z[2] + z[0] * c * z[3];\n    }\n"
    "    fn rot_vjp(&self, z: &[f64], y: &mut [f64]) {\n"
    "        let (c, s) = (z[1].cos(), z[1].sin());\n"
    "        y[0] = c * z[2] + s * z[3];\n        y[1] = -z[0] * s * z[2] + z[0] * c * z[3];\n    }\n"
    "}\n\nfn close(a: f64, b: f64) -> bool {\n    a == b || (a - b).abs() <= 1e-12 * b.abs().max(1.0)\n}\n";

Test(userfn, generated_rust_calls_the_users_trait, .timeout = 600)
{
    const char *cargo = "/root/.cargo/bin/cargo";
    if (system("cargo --version > /dev/null 2>&1") == 0)
        cargo = "cargo";
    else if (access(cargo, X_OK) != 0) {
        cr_log_warn("cargo not found: the generated Rust is NOT compiled");
        return;
    }
    pair p = make_pair(UFN_FULL, 0), s = make_pair(UFN_FULL, 1);
    tg_tape *gt = tg_gradient_tape(s.call, TG_ALL), *jv = tg_jvp_tape(p.call, TG_ALL);
    TU_TAPE_OK(gt);
    TU_TAPE_OK(jv);
    tg_rust_options o = { 0 };
    o.crate_name = "ufcrate";
    tg_rust_builder *b = tg_rust_builder_new(&o);
    cr_assert(b);
    TU_OK(tg_rust_builder_add(b, p.call, "k_f"));
    TU_OK(tg_rust_builder_add(b, gt, "k_grad"));
    TU_OK(tg_rust_builder_add(b, jv, "k_jvp"));
    char root[512], dir[600], path[700], cmd[2048];
    const char *bin = getenv("TG_BINARY_DIR");
    snprintf(root, sizeof root, "%s/userfn_rust", bin && *bin ? bin : "/tmp");
    snprintf(dir, sizeof dir, "%s/ufcrate", root);
    TU_OK(tg_rust_builder_write(b, dir));
    tg_rust_builder_free(b);
    snprintf(path, sizeof path, "%s/.cargo", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/.cargo/config.toml", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("[source.crates-io]\nreplace-with = \"debian\"\n[source.debian]\n"
          "directory = \"/usr/share/cargo/registry\"\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/tests/user.rs", dir);
    f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(user_rs_head, f);
    fprintf(f, "\n#[test]\nfn kernels_with_user_functions_match_the_interpreter() {\n"
               "    let mut work = vec![0.0_f64; 64];\n");
    tu_rng r = { 31 };
    for (int rep = 0; rep < 5; rep++) {
        double x[2 * N], y[MV], g[N], jvv[MV];
        for (int j = 0; j < 2 * N; j++)
            x[j] = tu_rng_range(&r, -2, 2);
        TU_OK(tg_eval(p.call, x, y));
        TU_OK(tg_eval(gt, x, g));
        TU_OK(tg_eval(jv, x, jvv));
        const struct { const char *k; const char *args; const double *want; size_t m; } c[3] = {
            { "ufcrate_k_f", "&x[..3]", y, MV }, { "ufcrate_k_grad", "&x[..3]", g, N },
            { "ufcrate_k_jvp", "&x[..3], &x[3..]", jvv, MV } };
        fprintf(f, "    let x: [f64; 6] = ");
        put_vec(f, x, 2 * N);
        fprintf(f, ";\n");
        for (int k = 0; k < 3; k++) {
            fprintf(f, "    {\n        let want: [f64; %zu] = ", c[k].m);
            put_vec(f, c[k].want, c[k].m);
            fprintf(f, ";\n        let mut out = [0.0_f64; %zu];\n"
                       "        %s(&Mine, %s, &mut out, &mut work).unwrap();\n"
                       "        for j in 0..out.len() {\n"
                       "            assert!(close(out[j], want[j]), \"%s[{}] = {}, want {}\", j, out[j], want[j]);\n"
                       "        }\n    }\n", c[k].m, c[k].k, c[k].args, c[k].k);
        }
    }
    fprintf(f, "}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd '%s' && CARGO_TARGET_DIR='%s/target' RUSTFLAGS='-D warnings' "
             "CARGO_NET_OFFLINE=true %s test --offline > '%s/cargo.log' 2>&1", dir, root, cargo,
             root);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -30 '%s/cargo.log' >&2", root);
        (void)system(cmd);
    }
    cr_assert_eq(rc, 0, "cargo test of the generated crate failed (log: %s/cargo.log)", root);
    tg_tape_free(gt);
    tg_tape_free(jv);
    free_pair(&p);
    free_pair(&s);
}

Test(userfn, loop_bodies_may_not_call_user_functions)
{
    tg_funcs *fs = ufn_new(UFN_FULL);
    tg_tape *body = tu_tape("body", 0);
    tg_var x[2], p, y[2];
    tg_input_vec(body, "x", 2, x);
    p = tg_input(body, "p");
    (void)p;
    tg_call_func(body, fs, "rot", x, y);
    tg_output_vec(body, "y", 2, y);
    TU_TAPE_OK(body);
    tg_tape *t = tu_tape("t", 0);
    tg_var xs[4], ys[4];
    tg_input_vec(t, "xs", 4, xs);
    tg_map(t, body, 2, xs, NULL, ys);
    cr_assert_eq(tg_tape_status(t), TG_ERR_UNSUPPORTED);
    cr_assert(strstr(tg_tape_error(t), "user functions"), "%s", tg_tape_error(t));
    tg_tape_free(t);
    tg_tape_free(body);
    tg_funcs_free(fs);
}

/* ------------------------------------------------- calls next to loops */

/* A tape with loops and calls side by side (merge of main's loops): a map
 * feeds a call, the call's outputs feed a scan-free second map.  x(3):
 *   m = map over 2 rows of body(x, p) = (x0 p, sin(x1) + p), rows (x0, x1),
 *       (x2, x0 x1), p = x2
 *   (y0, y1) = rot(m0 + m3, m1)
 *   n = map of body over the rows (y0, y1), (m2, y0), p = x1
 *   f = sum(n) + y1 m2 */
static tg_tape *mixed_body(void)
{
    tg_tape *b = tu_tape("mb", 0);
    tg_var x[2], p[1], y[2];
    tg_input_vec(b, "x", 2, x);
    tg_input_vec(b, "p", 1, p);
    y[0] = tg_mul(x[0], p[0]);
    y[1] = tg_add(tg_sin(x[1]), p[0]);
    tg_output_vec(b, "y", 2, y);
    TU_TAPE_OK(b);
    return b;
}

static tg_tape *mixed_tape(const tg_funcs *fs, const tg_tape *body)
{
    tg_tape *t = tu_tape(fs ? "mixc" : "mixo", 0);
    tg_var x[3], m[4], y[2], n[4];
    tg_input_vec(t, "x", 3, x);
    tg_var xs[4] = { x[0], x[1], x[2], tg_mul(x[0], x[1]) };
    tg_map(t, body, 2, xs, &x[2], m);
    ufn_rot(fs, t, tg_add(m[0], m[3]), m[1], y);
    tg_var xs2[4] = { y[0], y[1], m[2], y[0] };
    tg_map(t, body, 2, xs2, &x[1], n);
    tg_output(t, "f", tg_add(tg_sum(4, n), tg_mul(y[1], m[2])));
    TU_TAPE_OK(t);
    return t;
}

Test(userfn, calls_next_to_loops_equal_the_oracle)
{
    tg_funcs *fs = ufn_new(UFN_FULL);
    tg_tape *body = mixed_body();
    tg_tape *c = mixed_tape(fs, body), *o = mixed_tape(NULL, body);
    tu_rng r = { 21 };
    for (int k = 0; k < 5; k++) {
        double x[N], v[N], a[N * N], b[N * N], ya, yb;
        random_point(&r, x);
        random_point(&r, v);
        TU_OK(tg_eval(c, x, &ya));
        TU_OK(tg_eval(o, x, &yb));
        assert_close_vec(&ya, &yb, 1, RTOL, "value");
        TU_OK(tg_gradient(c, x, a));
        TU_OK(tg_gradient(o, x, b));
        assert_close_vec(a, b, N, RTOL, "gradient");
        for (int j = 0; j < N; j++)
            cr_assert(tu_close(a[j], tu_cdiff_tape(o, x, 0, (size_t)j), 1e-6, 1e-7),
                      "gradient[%d] vs central differences", j);
        TU_OK(tg_jvp(c, x, v, a));
        TU_OK(tg_jvp(o, x, v, b));
        assert_close_vec(a, b, 1, RTOL, "jvp");
        TU_OK(tg_jacobian(c, x, a));
        TU_OK(tg_jacobian(o, x, b));
        assert_close_vec(a, b, N, RTOL, "jacobian");
        TU_OK(tg_hessian(c, x, a));
        TU_OK(tg_hessian(o, x, b));
        assert_close_vec(a, b, N * N, RTOL, "hessian");
        TU_OK(tg_hvp(c, x, v, a));
        TU_OK(tg_hvp(o, x, v, b));
        assert_close_vec(a, b, N, RTOL, "hvp");
    }
    double X[4 * N], G[4 * N], g[N];
    for (int p = 0; p < 4; p++)
        random_point(&r, X + p * N);
    TU_OK(tg_gradient_batch(c, 4, X, G));
    for (int p = 0; p < 4; p++) {
        TU_OK(tg_gradient(o, X + p * N, g));
        assert_close_vec(G + p * N, g, N, RTOL, "gradient_batch");
    }
    /* optimised (dead code, merging of loops) and still the same */
    tg_tape *co = mixed_tape(fs, body);
    TU_OK(tg_tape_optimize(co, TG_OPT_MAX));
    for (int k = 0; k < 3; k++) {
        double x[N], a[N], b[N];
        random_point(&r, x);
        TU_OK(tg_gradient(co, x, a));
        TU_OK(tg_gradient(o, x, b));
        assert_close_vec(a, b, N, RTOL, "gradient after tg_tape_optimize");
    }
    /* C source: the calls and the loops lowered together */
    char *src = NULL;
    TU_OK(tg_c_source(c, NULL, &src, NULL));
    cr_assert(strstr(src, "rot(") != NULL, "no call of rot in the C source");
    free(src);
    tg_tape_free(co);
    tg_tape_free(c);
    tg_tape_free(o);
    tg_tape_free(body);
    tg_funcs_free(fs);
}
