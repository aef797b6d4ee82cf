/* tests/test_call.c -- tg_call: inlining a tape into the tape being
 * recorded (symbolic composition).  Values equal evaluating f directly;
 * every inlined instruction goes through dst's recorder, so CSE and folding
 * work across the boundary (calling twice adds nothing, and a call equals
 * recording the same operations by hand); several input and output blocks
 * flatten in declaration order; derivative tapes of a composed tape obey
 * the chain rule; errors are sticky on dst; f may be dst itself. */
#include <criterion/criterion.h>

#include "derivutil.h"

/* f: blocks x(2), p(1) -> y(2), z(1)
 *   y0 = sin(x0) * p,  y1 = x0 / x1 + p,  z = hypot(x0, x1) - exp(p) */
static tg_tape *make_f(unsigned flags)
{
    tg_tape *f = tu_tape("f", flags);
    tg_var x[2], p;
    tg_input_vec(f, "x", 2, x);
    p = tg_input(f, "p");
    tg_var y[2] = { tg_mul(tg_sin(x[0]), p), tg_add(tg_div(x[0], x[1]), p) };
    tg_output_vec(f, "y", 2, y);
    tg_output(f, "z", tg_sub(tg_hypot(x[0], x[1]), tg_exp(p)));
    TU_TAPE_OK(f);
    return f;
}

static void f_ref(const double *u, double *out)
{
    out[0] = sin(u[0]) * u[2];
    out[1] = u[0] / u[1] + u[2];
    out[2] = hypot(u[0], u[1]) - exp(u[2]);
}

Test(call, values_equal_direct_evaluation)
{
    for (int fl = 0; fl < 2; fl++) {
        unsigned flags = fl ? TG_NO_FOLD | TG_NO_CSE : 0;
        tg_tape *f = make_f(flags);
        tg_tape *g = tu_tape("g", flags);
        tg_var a[3];
        tg_input_vec(g, "a", 3, a);
        /* arguments are expressions of g's inputs */
        tg_var args[3] = { tg_mul(a[0], 2.0), a[1], tg_exp(a[2]) }, r[3];
        tg_call(g, f, args, r);
        TU_TAPE_OK(g);
        for (int j = 0; j < 3; j++)
            cr_assert(r[j].tape == g && r[j].id < tg_tape_size(g), "result %d is not a value of g", j);
        tg_output_vec(g, "r", 3, r);
        tg_output(g, "extra", tg_add(r[0], r[2]));
        TU_TAPE_OK(g);
        tu_rng rng = { 17 };
        for (int p = 0; p < 20; p++) {
            double in[3], u[3], yf[3], yg[4], want[3];
            for (int j = 0; j < 3; j++)
                in[j] = tu_rng_range(&rng, -2, 2);
            u[0] = in[0] * 2.0;
            u[1] = in[1];
            u[2] = exp(in[2]);
            du_eval(f, u, yf);
            du_eval(g, in, yg);
            f_ref(u, want);
            for (int j = 0; j < 3; j++) {
                cr_expect(tu_same_bits(yg[j], yf[j]), "%s: g output %d = %s, f at the arguments %s",
                          fl ? "no-fold" : "default", j, tu_d(yg[j]).s, tu_d(yf[j]).s);
                cr_expect(tu_same_bits(yg[j], want[j]), "g output %d = %s, C %s", j,
                          tu_d(yg[j]).s, tu_d(want[j]).s);
            }
            cr_expect(tu_same_bits(yg[3], yf[0] + yf[2]));
        }
        tg_tape_free(f);
        tg_tape_free(g);
    }
}

/* The inputs map across f's blocks in declaration order and the outputs
 * across its output blocks: a permutation test with distinguishable values. */
Test(call, blocks_flatten_in_declaration_order)
{
    tg_tape *f = tu_tape("perm", 0);
    tg_var a = tg_input(f, "a"), b[2], c;
    tg_input_vec(f, "b", 2, b);
    c = tg_input(f, "c");
    tg_output(f, "o1", tg_add(tg_mul(a, 1000.0), c));
    tg_var o2[2] = { tg_sub(b[1], b[0]), tg_mul(b[0], 10.0) };
    tg_output_vec(f, "o2", 2, o2);
    TU_TAPE_OK(f);
    tg_tape *g = tu_tape("g", 0);
    tg_var x[4];
    tg_input_vec(g, "x", 4, x);
    tg_var args[4] = { x[3], x[2], x[1], x[0] }, r[3];
    tg_call(g, f, args, r);
    tg_output_vec(g, "r", 3, r);
    TU_TAPE_OK(g);
    double in[4] = { 1.0, 2.0, 3.0, 4.0 }, out[3];
    du_eval(g, in, out);
    /* a = 4, b = (3, 2), c = 1 */
    cr_expect(out[0] == 4001.0 && out[1] == -1.0 && out[2] == 30.0,
              "flattening: (%g, %g, %g), expected (4001, -1, 30)", out[0], out[1], out[2]);
    tg_tape_free(f);
    tg_tape_free(g);
}

/* ------------------------------------------------------------ CSE and folding */

Test(call, cse_across_the_boundary)
{
    tg_tape *f = make_f(0);
    tg_tape *g = tu_tape("g", 0);
    tg_var a[3];
    tg_input_vec(g, "a", 3, a);
    tg_var r1[3], r2[3];
    tg_call(g, f, a, r1);
    TU_TAPE_OK(g);
    size_t s1 = tg_tape_size(g);
    tg_call(g, f, a, r2);
    TU_TAPE_OK(g);
    cr_expect_eq(tg_tape_size(g), s1, "calling f again with the same arguments added %zu "
                 "instructions", tg_tape_size(g) - s1);
    for (int j = 0; j < 3; j++)
        cr_expect_eq(r2[j].id, r1[j].id, "result %d: second call gives %%%u, first %%%u", j,
                     r2[j].id, r1[j].id);
    /* the call of f on g's inputs is exactly f: same instruction count */
    cr_expect_eq(s1, tg_tape_size(f), "inlined f has %zu instructions, f %zu", s1,
                 tg_tape_size(f));
    /* recording the same operations by hand after the call adds nothing */
    tg_var y0 = tg_mul(tg_sin(a[0]), a[2]);
    tg_var z = tg_sub(tg_hypot(a[0], a[1]), tg_exp(a[2]));
    cr_expect_eq(y0.id, r1[0].id, "sin(a0)*a2 by hand is %%%u, the call's %%%u", y0.id, r1[0].id);
    cr_expect_eq(z.id, r1[2].id, "hypot(a0,a1)-exp(a2) by hand is %%%u, the call's %%%u", z.id,
                 r1[2].id);
    cr_expect_eq(tg_tape_size(g), s1);
    tg_tape_free(g);

    /* and the other way: operations recorded before the call are reused */
    g = tu_tape("g2", 0);
    tg_input_vec(g, "a", 3, a);
    tg_var s = tg_sin(a[0]), e = tg_exp(a[2]);
    size_t s0 = tg_tape_size(g);
    tg_call(g, f, a, r1);
    TU_TAPE_OK(g);
    /* f has 3 inputs + sin, mul, div, add, hypot, exp, sub = 10; sin and exp exist */
    cr_expect_eq(tg_tape_size(g) - s0, tg_tape_size(f) - 3 - 2,
                 "the call added %zu instructions; sin(a0) and exp(a2) should be shared",
                 tg_tape_size(g) - s0);
    du_prog p = du_parse(g);
    cr_expect_eq(du_count_op(&p, TG_OP_SIN), 1, "sin duplicated:\n%s", p.text);
    cr_expect_eq(du_count_op(&p, TG_OP_EXP), 1, "exp duplicated:\n%s", p.text);
    du_prog_free(&p);
    (void)s;
    (void)e;
    tg_tape_free(g);

    /* calling with different arguments does add instructions */
    g = tu_tape("g3", 0);
    tg_input_vec(g, "a", 3, a);
    tg_call(g, f, a, r1);
    s1 = tg_tape_size(g);
    tg_var b[3] = { a[1], a[0], a[2] };
    tg_call(g, f, b, r2);
    TU_TAPE_OK(g);
    cr_expect(tg_tape_size(g) > s1);
    cr_expect(r2[0].id != r1[0].id);
    /* exp(a2) depends on the unchanged third argument only: shared */
    tg_tape_free(g);
    tg_tape_free(f);
}

Test(call, folding_across_the_boundary)
{
    /* f(x, y) = sin(x) + x*y - (x - y*0.5)*1 ... with y = 1 and literal args */
    tg_tape *f = tu_tape("fold", 0);
    tg_var x = tg_input(f, "x"), y = tg_input(f, "y");
    tg_output(f, "o", tg_add(tg_sin(x), tg_mul(x, y)));
    tg_output(f, "k", tg_mul(y, 3.0));
    TU_TAPE_OK(f);
    tg_tape *g = tu_tape("g", 0);
    tg_var a = tg_input(g, "a");
    tg_var args[2] = { a, tg_const(g, 1.0) }, r[2];
    tg_call(g, f, args, r);
    tg_output_vec(g, "r", 2, r);
    TU_TAPE_OK(g);
    /* a*1 folds to a; 1*3 folds to the constant 3 */
    tu_assert_disasm(g, "tape \"g\": 1 inputs, 2 outputs, 5 instructions\n"
                        "in  a[1]\n"
                        "out r[2]\n"
                        "%0 = input a[0]\n"
                        "%1 = const 1\n"
                        "%2 = sin %0\n"
                        "%3 = add %0 %2\n"
                        "%4 = const 3\n"
                        "r[0] = %3\n"
                        "r[1] = %4\n");
    tg_tape_free(g);
    /* unsafe identities are not folded across the boundary either: x*0 */
    tg_tape *h = tu_tape("h", 0);
    x = tg_input(h, "x");
    y = tg_input(h, "y");
    tg_output(h, "o", tg_mul(x, y));
    g = tu_tape("g", 0);
    a = tg_input(g, "a");
    tg_var args2[2] = { a, tg_const(g, 0.0) }, r2[1];
    tg_call(g, h, args2, r2);
    tg_output(g, "r", r2[0]);
    TU_TAPE_OK(g);
    double out, inf = INFINITY;
    du_eval(g, &inf, &out);
    cr_expect(isnan(out), "x*0 inlined at x = inf: %s, expected NaN (never folded)", tu_d(out).s);
    tg_tape_free(g);
    tg_tape_free(h);
    tg_tape_free(f);
}

/* ---------------------------------------------------- chain rule */

/* h: R^2 -> R^3, u = (x0*x1, sin(x0), exp(x1) / (1 + x0^2)) */
static tg_tape *make_h(void)
{
    tg_tape *h = tu_tape("h", 0);
    tg_var x[2];
    tg_input_vec(h, "x", 2, x);
    tg_var u[3] = { tg_mul(x[0], x[1]), tg_sin(x[0]),
                    tg_div(tg_exp(x[1]), tg_add(1.0, tg_mul(x[0], x[0]))) };
    tg_output_vec(h, "u", 3, u);
    TU_TAPE_OK(h);
    return h;
}

/* F: R^3 -> R (scalar) or R^2: s = u0*u1 + u2^2 + cos(u0 - u2); second
 * output atan2(u1, 2 + u2) */
static tg_tape *make_F(int vector)
{
    tg_tape *F = tu_tape(vector ? "Fv" : "F", 0);
    tg_var u[3];
    tg_input_vec(F, "u", 3, u);
    tg_var s = tg_add(tg_add(tg_mul(u[0], u[1]), tg_mul(u[2], u[2])), tg_cos(tg_sub(u[0], u[2])));
    if (vector) {
        tg_var y[2] = { s, tg_atan2(u[1], tg_add(u[2], 2.0)) };
        tg_output_vec(F, "y", 2, y);
    } else {
        tg_output(F, "s", s);
    }
    TU_TAPE_OK(F);
    return F;
}

/* g = F(h(x)) through tg_call, and the same recorded by hand */
static tg_tape *compose(const tg_tape *F, const tg_tape *h, int by_hand)
{
    tg_tape *g = tu_tape("g", 0);
    tg_var x[2], u[3], y[2];
    tg_input_vec(g, "x", 2, x);
    size_t m = tg_num_outputs(F);
    if (by_hand) {
        u[0] = tg_mul(x[0], x[1]);
        u[1] = tg_sin(x[0]);
        u[2] = tg_div(tg_exp(x[1]), tg_add(1.0, tg_mul(x[0], x[0])));
        y[0] = tg_add(tg_add(tg_mul(u[0], u[1]), tg_mul(u[2], u[2])), tg_cos(tg_sub(u[0], u[2])));
        if (m == 2)
            y[1] = tg_atan2(u[1], tg_add(u[2], 2.0));
    } else {
        tg_call(g, h, x, u);
        tg_call(g, F, u, y);
    }
    tg_output_vec(g, "y", m, y);
    TU_TAPE_OK(g);
    return g;
}

Test(call, derivative_tapes_of_a_composition_obey_the_chain_rule)
{
    tg_tape *h = make_h(), *F = make_F(0), *Fv = make_F(1);
    tg_tape *g = compose(F, h, 0), *gh = compose(F, h, 1);
    tg_tape *gv = compose(Fv, h, 0);
    /* the composition is the hand-recorded tape, instruction for instruction */
    {
        char *a = du_disasm(g), *b = du_disasm(gh);
        cr_expect_str_eq(a, b, "tg_call composition differs from recording by hand");
        free(a);
        free(b);
    }
    tg_tape *G = tg_gradient_tape(g, TG_ALL), *Gh = tg_gradient_tape(gh, TG_ALL);
    tg_tape *H = tg_hessian_tape(g, TG_ALL), *JV = tg_jvp_tape(g, TG_ALL);
    tg_tape *J = tg_jacobian_tape(gv, TG_ALL), *HV = tg_hvp_tape(g, TG_ALL);
    du_check_layout(G, g, "grad", NULL, 0, "grad", 2);
    du_check_layout(H, g, "hess", NULL, 0, "hess", 4);
    du_check_layout(JV, g, "jvp", "v", 2, "jvp", 1);
    du_check_layout(J, gv, "jac", NULL, 0, "jac", 4);
    du_check_layout(HV, g, "hvp", "v", 2, "hvp", 2);
    tu_rng rng = { 5 };
    for (int p = 0; p < 10; p++) {
        double x[2] = { tu_rng_range(&rng, -1.5, 1.5), tu_rng_range(&rng, -1.5, 1.5) };
        double u[3], Jh[6], gF[3], JF[6], gt[2], ghand[2];
        du_eval(h, x, u);
        TU_OK(tg_jacobian(h, x, Jh));
        TU_OK(tg_gradient(F, u, gF));
        TU_OK(tg_jacobian(Fv, u, JF));
        du_eval(G, x, gt);
        du_eval(Gh, x, ghand);
        /* grad g = Jh^T grad F(h(x)) */
        for (int j = 0; j < 2; j++) {
            double want = 0.0, scale = 0.0;
            for (int i = 0; i < 3; i++) {
                want += gF[i] * Jh[i * 2 + j];
                scale += fabs(gF[i] * Jh[i * 2 + j]);
            }
            cr_expect(tu_close(gt[j], want, 1e-12, 1e-14 * scale),
                      "gradient tape of F(h(x)) [%d] = %s, chain rule %s", j, tu_d(gt[j]).s,
                      tu_d(want).s);
            cr_expect(tu_same_value(gt[j], ghand[j]), "gradient tape [%d]: composed %s, by hand %s",
                      j, tu_d(gt[j]).s, tu_d(ghand[j]).s);
            double fd = tu_cdiff_tape(g, x, 0, (size_t)j);
            cr_expect(tu_close(gt[j], fd, 1e-6, 1e-6), "gradient tape [%d] = %s, central "
                      "difference %s", j, tu_d(gt[j]).s, tu_d(fd).s);
        }
        /* Jacobian of the vector composition: JF Jh */
        double Jt[4];
        du_eval(J, x, Jt);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                double want = 0.0, scale = 0.0;
                for (int k = 0; k < 3; k++) {
                    want += JF[i * 3 + k] * Jh[k * 2 + j];
                    scale += fabs(JF[i * 3 + k] * Jh[k * 2 + j]);
                }
                cr_expect(tu_close(Jt[i * 2 + j], want, 1e-12, 1e-14 * scale),
                          "jacobian tape of F(h(x)) [%d][%d] = %s, JF Jh = %s", i, j,
                          tu_d(Jt[i * 2 + j]).s, tu_d(want).s);
            }
        /* JVP: grad F . (Jh v) */
        double v[2] = { tu_rng_range(&rng, -1, 1), tu_rng_range(&rng, -1, 1) }, in[4], jv;
        du_concat(in, x, 2, v, 2);
        du_eval(JV, in, &jv);
        double want = 0.0;
        for (int i = 0; i < 3; i++)
            want += gF[i] * (Jh[i * 2] * v[0] + Jh[i * 2 + 1] * v[1]);
        cr_expect(tu_close(jv, want, 1e-12, 1e-13), "jvp tape of F(h(x)) = %s, chain rule %s",
                  tu_d(jv).s, tu_d(want).s);
        /* Hessian and HVP: against tg_hessian and central differences of
         * the gradient tape */
        double Ht[4], Hn[4], hv[2];
        du_eval(H, x, Ht);
        TU_OK(tg_hessian(g, x, Hn));
        du_eval(HV, in, hv);
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 2; j++) {
                cr_expect(tu_close(Ht[i * 2 + j], Hn[i * 2 + j], 1e-12, 1e-12),
                          "hessian tape [%d][%d] = %s, tg_hessian %s", i, j,
                          tu_d(Ht[i * 2 + j]).s, tu_d(Hn[i * 2 + j]).s);
                double fd = tu_cdiff_tape(G, x, (size_t)i, (size_t)j);
                cr_expect(tu_close(Ht[i * 2 + j], fd, 1e-5, 1e-5),
                          "hessian tape [%d][%d] = %s, central difference of the gradient tape %s",
                          i, j, tu_d(Ht[i * 2 + j]).s, tu_d(fd).s);
            }
            double hvw = Hn[i * 2] * v[0] + Hn[i * 2 + 1] * v[1];
            cr_expect(tu_close(hv[i], hvw, 1e-11, 1e-12), "hvp tape [%d] = %s, H v %s", i,
                      tu_d(hv[i]).s, tu_d(hvw).s);
        }
    }
    tg_tape *all[] = { h, F, Fv, g, gh, gv, G, Gh, H, JV, J, HV };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        tg_tape_free(all[k]);
}

/* A derivative tape can be called like any tape: Newton's step
 * x - f'(x)/f''(x) built from the gradient and Hessian tapes of f. */
Test(call, calling_derivative_tapes)
{
    tg_tape *f = tu_tape("f", 0);
    tg_var x = tg_input(f, "x");
    tg_output(f, "y", tg_sub(tg_mul(tg_mul(x, x), x), tg_mul(2.0, x)));   /* x^3 - 2x */
    TU_TAPE_OK(f);
    tg_tape *G = tg_gradient_tape(f, TG_ALL), *H = tg_hessian_tape(f, TG_ALL);
    tg_tape *n = tu_tape("newton", 0);
    tg_var z = tg_input(n, "z"), gz, hz;
    tg_call(n, G, &z, &gz);
    tg_call(n, H, &z, &hz);
    tg_output(n, "next", tg_sub(z, tg_div(gz, hz)));
    TU_TAPE_OK(n);
    double zz = 1.5, out;
    du_eval(n, &zz, &out);
    double want = 1.5 - (3 * 1.5 * 1.5 - 2) / (6 * 1.5);
    cr_expect(tu_close(out, want, 1e-15, 0), "newton step %s, expected %s", tu_d(out).s,
              tu_d(want).s);
    /* G and H share f's replay: the inlined f part is CSE'd between them */
    du_prog p = du_parse(n);
    cr_expect(du_count_op(&p, TG_OP_DIV) == 1, "one div expected:\n%s", p.text);
    du_prog_free(&p);
    tg_tape_free(f);
    tg_tape_free(G);
    tg_tape_free(H);
    tg_tape_free(n);
}

/* ---------------------------------------------------------- errors */

static void expect_nil_results(const tg_var *r, size_t m, const tg_tape *dst, const char *what)
{
    for (size_t j = 0; j < m; j++)
        cr_expect(r[j].id == TG_NIL && r[j].tape == dst, "%s: result %zu is {%p, %u}, expected "
                  "{dst, TG_NIL}", what, j, (void *)r[j].tape, r[j].id);
}

Test(call, errors_are_sticky_on_dst)
{
    tg_tape *f = make_f(0);
    /* args of another tape */
    {
        tg_tape *g = tu_tape("g", 0), *o = tu_tape("other", 0);
        tg_var a[3], b[3], r[3];
        tg_input_vec(g, "a", 3, a);
        tg_input_vec(o, "b", 3, b);
        tg_var args[3] = { a[0], b[1], a[2] };
        size_t s = tg_tape_size(g);
        tg_call(g, f, args, r);
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG, "args of another tape: status %d",
                     (int)tg_tape_status(g));
        cr_expect(strlen(tg_tape_error(g)) > 0);
        expect_nil_results(r, 3, g, "args of another tape");
        TU_TAPE_OK(o);
        /* sticky: later recording does nothing */
        tg_var late = tg_sin(a[0]);
        cr_expect_eq(late.id, TG_NIL);
        tg_call(g, f, a, r);
        expect_nil_results(r, 3, g, "call on a tape in error");
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG);
        cr_expect_eq(tg_tape_size(g), s, "failed calls recorded %zu instructions",
                     tg_tape_size(g) - s);
        double y[3], x[3] = { 0 };
        cr_expect_eq(tg_eval(g, x, y), TG_ERR_ARG);
        tg_tape_free(g);
        tg_tape_free(o);
    }
    /* a forged id and a poisoned {NULL, TG_NIL} argument */
    {
        tg_tape *g = tu_tape("g", 0);
        tg_var a[3], r[3];
        tg_input_vec(g, "a", 3, a);
        tg_var args[3] = { a[0], { g, 12345 }, a[2] };
        tg_call(g, f, args, r);
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG, "forged id: status %d", (int)tg_tape_status(g));
        expect_nil_results(r, 3, g, "forged id");
        tg_tape_free(g);
        g = tu_tape("g", 0);
        tg_input_vec(g, "a", 3, a);
        tg_var nil = { NULL, TG_NIL };
        tg_var args2[3] = { a[0], a[1], nil };
        tg_call(g, f, args2, r);
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG, "nil argument: status %d",
                     (int)tg_tape_status(g));
        expect_nil_results(r, 3, g, "nil argument");
        tg_tape_free(g);
    }
    /* NULL f, NULL args, NULL results */
    {
        tg_tape *g = tu_tape("g", 0);
        tg_var a[3], r[3];
        tg_input_vec(g, "a", 3, a);
        tg_call(g, NULL, a, r);
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG, "NULL f: status %d", (int)tg_tape_status(g));
        tg_tape_free(g);
        g = tu_tape("g", 0);
        tg_input_vec(g, "a", 3, a);
        tg_call(g, f, NULL, r);
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG, "NULL args: status %d", (int)tg_tape_status(g));
        expect_nil_results(r, 3, g, "NULL args");
        tg_tape_free(g);
        g = tu_tape("g", 0);
        tg_input_vec(g, "a", 3, a);
        tg_call(g, f, a, NULL);
        cr_expect_eq(tg_tape_status(g), TG_ERR_ARG, "NULL results: status %d",
                     (int)tg_tape_status(g));
        tg_tape_free(g);
        /* NULL dst: nothing to record on, no crash */
        tg_call(NULL, f, a, r);
        for (int j = 0; j < 3; j++)
            cr_expect_eq(r[j].id, TG_NIL, "NULL dst: result %d not NIL", j);
    }
    /* f in the error state */
    {
        tg_tape *bad = tu_tape("bad", 0);
        cr_assert_eq(tg_tape_set_limit(bad, 3), TG_OK);
        tg_var x = tg_input(bad, "x");
        tg_output(bad, "y", tg_sin(x));
        (void)tg_cos(tg_exp(x));
        cr_assert_eq(tg_tape_status(bad), TG_ERR_LIMIT);
        cr_assert_eq(tg_num_outputs(bad), 1);
        tg_tape *g = tu_tape("g", 0);
        tg_var a = tg_input(g, "a"), r[1];
        tg_call(g, bad, &a, r);
        cr_expect_neq(tg_tape_status(g), TG_OK, "calling a tape in error left dst OK");
        cr_expect(r[0].id == TG_NIL, "calling a tape in error: result %u", r[0].id);
        tg_tape_free(g);
        tg_tape_free(bad);
    }
    TU_TAPE_OK(f);
    tg_tape_free(f);
}

/* ------------------------------------------------------- f == dst */

Test(call, dst_calls_itself)
{
    tg_tape *t = tu_tape("self", 0);
    tg_var x = tg_input(t, "x");
    tg_var y = tg_mul(tg_sin(x), x);
    tg_output(t, "y", y);
    TU_TAPE_OK(t);
    size_t s0 = tg_tape_size(t);
    /* t on its own input: exactly its output, nothing new */
    tg_var r0;
    tg_call(t, t, &x, &r0);
    TU_TAPE_OK(t);
    cr_expect_eq(r0.id, y.id, "t(x) is %%%u, t's output %%%u", r0.id, y.id);
    cr_expect_eq(tg_tape_size(t), s0);
    /* t(t(x)) and t(t(t(x))) */
    tg_var r1, r2;
    tg_call(t, t, &y, &r1);
    TU_TAPE_OK(t);
    cr_expect(tg_tape_size(t) > s0);
    tg_output(t, "z", r1);
    /* t now has 2 outputs: calling it maps its one input, returns both */
    tg_var both[2];
    tg_call(t, t, &r1, both);
    TU_TAPE_OK(t);
    r2 = both[0];
    tg_output(t, "w", r2);
    TU_TAPE_OK(t);
    cr_assert_eq(tg_num_outputs(t), 3);
    double in = 0.8, out[3];
    du_eval(t, &in, out);
    double a = sin(0.8) * 0.8, b = sin(a) * a, c = sin(b) * b;
    cr_expect(tu_same_bits(out[0], a) && tu_same_bits(out[1], b) && tu_same_bits(out[2], c),
              "self calls: (%s, %s, %s), expected (%s, %s, %s)", tu_d(out[0]).s, tu_d(out[1]).s,
              tu_d(out[2]).s, tu_d(a).s, tu_d(b).s, tu_d(c).s);
    /* the second result of the last call is t's "z" output applied to r1: t(t(r1)) */
    double d = sin(c) * c;
    tg_output(t, "v", both[1]);
    double out4[4];
    du_eval(t, &in, out4);
    cr_expect(tu_same_bits(out4[3], d), "self call second output %s, expected %s",
              tu_d(out4[3]).s, tu_d(d).s);
    /* derivative of the self-composed tape: chain rule of g(x) = x sin x */
    tg_tape *G = tg_jacobian_tape(t, TG_ALL);
    TU_TAPE_OK(G);
    double J[4], Jn[4];
    du_eval(G, &in, J);
    TU_OK(tg_jacobian(t, &in, Jn));
    for (int i = 0; i < 4; i++)
        cr_expect(tu_same_value(J[i], Jn[i]), "jacobian tape of self-composition [%d] = %s, "
                  "tg_jacobian %s", i, tu_d(J[i]).s, tu_d(Jn[i]).s);
    double gp = sin(0.8) + 0.8 * cos(0.8);
    cr_expect(tu_close(J[0], gp, 1e-14, 0), "d y / d x = %s, expected %s", tu_d(J[0]).s,
              tu_d(gp).s);
    tg_tape_free(G);
    tg_tape_free(t);
}

/* A tape with TG_NO_CSE: the second call records everything again, and the
 * values still agree. */
Test(call, no_cse_dst_duplicates_but_agrees)
{
    tg_tape *f = make_f(0);
    tg_tape *g = tu_tape("g", TG_NO_FOLD | TG_NO_CSE);
    tg_var a[3], r1[3], r2[3];
    tg_input_vec(g, "a", 3, a);
    tg_call(g, f, a, r1);
    size_t s1 = tg_tape_size(g);
    tg_call(g, f, a, r2);
    TU_TAPE_OK(g);
    cr_expect(tg_tape_size(g) > s1, "no CSE on dst, yet the second call added nothing");
    tg_output_vec(g, "r1", 3, r1);
    tg_output_vec(g, "r2", 3, r2);
    double in[3] = { 0.3, -1.7, 0.9 }, out[6], yf[3];
    du_eval(g, in, out);
    du_eval(f, in, yf);
    for (int j = 0; j < 3; j++)
        cr_expect(tu_same_bits(out[j], yf[j]) && tu_same_bits(out[3 + j], yf[j]),
                  "output %d: %s / %s, f %s", j, tu_d(out[j]).s, tu_d(out[3 + j]).s,
                  tu_d(yf[j]).s);
    tg_tape_free(g);
    tg_tape_free(f);
}
