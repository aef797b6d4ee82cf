/* tests/test_fold.c -- global rule 2 (IEEE-sound folding) and CSE.
 *
 *  - Random DAGs over every op (with literal constants 0, -0.0, 1, -1, 2,
 *    0.5, NaN, +-Inf, ...) recorded on an optimising tape and on
 *    TG_NO_FOLD | TG_NO_CSE tapes evaluate to the same bits on random inputs
 *    and on +-0, +-Inf, NaN, subnormals and huge values (NaN payloads may
 *    differ); their derivatives agree as values.
 *  - Golden disassembly (whole-string compare) of the identities that fold
 *    and of the ones that must not.
 *  - CSE: commutative operands ordered, constants keyed by bit pattern,
 *    nothing shared under TG_NO_CSE. */
#include <criterion/criterion.h>

#include "testutil.h"

/* ------------------------------------------------------ random expressions */

static const double literals[] = { 0.0, -0.0, 1.0, -1.0, 2.0, 0.5, NAN, INFINITY, -INFINITY,
                                   3.0, -2.5, 1e-300, 1e300, 0.1 };
#define N_LIT (sizeof literals / sizeof literals[0])
#define N_IDLIT 6 /* the first 6 literals are the ones identities are about */

/* Ops the folder has rules for get picked more often. */
static const char *core_ops[] = { "add", "sub", "mul", "div", "neg", "powk", "select",
                                  "azmul", "lt", "ge", "min", "max" };
#define N_CORE (sizeof core_ops / sizeof core_ops[0])

#define NIN 3
#define NNODES 24
#define NOUT 8

static tg_opcode op_named(const char *name)
{
    for (int op = 0; op < (int)TG_OP_COUNT; op++)
        if (strcmp(tg_op_name((tg_opcode)op), name) == 0)
            return (tg_opcode)op;
    cr_assert_fail("no op named %s", name);
    return TG_OP_COUNT;
}

static double pick_literal(tu_rng *r)
{
    return tu_rng_below(r, 2) ? literals[tu_rng_below(r, N_IDLIT)]
                              : literals[tu_rng_below(r, N_LIT)];
}

/* Records random expression number `seed` on t.  The sequence of random
 * draws never depends on the tape, so every tape gets the same program. */
static void build_random(tg_tape *t, uint64_t seed)
{
    tu_rng r = { seed * 0x9E3779B97F4A7C15ull + 1 };
    tg_var pool[NIN + 4 + NNODES];
    size_t np = 0;
    tg_input_vec(t, "x", NIN, pool);
    np = NIN;
    /* a few tg_const values, so constant-constant folding happens */
    for (int k = 0; k < 4; k++)
        pool[np++] = tg_const(t, pick_literal(&r));
    for (int k = 0; k < NNODES; k++) {
        tg_opcode op;
        int ar;
        if (tu_rng_below(&r, 2)) {
            op = op_named(core_ops[tu_rng_below(&r, N_CORE)]);
            ar = tg_op_arity(op);
        } else {
            do {
                op = (tg_opcode)tu_rng_below(&r, (size_t)TG_OP_COUNT);
                ar = tg_op_arity(op);
            } while (ar <= 0 || (tg_op_flags(op) & (TG_OPF_EXTENDED | TG_OPF_GUARD))); /* guards: test_values */
        }
        tg_operand o[3];
        int any_var = 0;
        for (int j = 0; j < ar; j++) {
            if (tu_rng_below(&r, 3) == 0) {
                o[j] = tg__opnd_num(pick_literal(&r));
            } else {
                /* prefer recent values so the DAG gets deep; sometimes
                 * repeat the previous operand (x-x, x/x, lt(x,x), ...) */
                size_t span = np < 6 ? np : 6;
                size_t i = tu_rng_below(&r, 2) ? np - 1 - tu_rng_below(&r, span)
                                                : tu_rng_below(&r, np);
                if (j > 0 && o[j - 1].tape && tu_rng_below(&r, 4) == 0)
                    o[j] = o[j - 1];
                else
                    o[j] = tg__opnd_var(pool[i]);
                any_var = 1;
            }
        }
        if (!any_var)
            o[0] = tg__opnd_var(pool[np - 1]);
        tg_var v;
        if (strcmp(tg_op_name(op), "powk") == 0) {
            /* the constant-exponent op is reached through tg_pow(x, literal) */
            double lit = pick_literal(&r);
            tg_var base = o[0].tape ? (tg_var){ o[0].tape, o[0].id } : pool[np - 1];
            v = tg_pow(base, lit);
        } else if (ar == 1) {
            v = tg_op1(op, o[0]);
        } else if (ar == 2) {
            v = tg_op2(op, o[0], o[1]);
        } else {
            v = tg_op3(op, o[0], o[1], o[2]);
        }
        pool[np++] = v;
    }
    /* outputs: every third node and the last one */
    tg_var out[NOUT];
    for (int i = 0; i < NOUT; i++)
        out[i] = pool[NIN + 4 + (size_t)i * 3 + 2];
    out[NOUT - 1] = pool[np - 1];
    tg_output_vec(t, "y", NOUT, out);
}

static const double specials[] = { 0.0,  -0.0,    INFINITY, -INFINITY, NAN,   5e-324, -5e-324,
                                   2.2e-308, -2.2e-308, 1e308, -1e308, 1.0, -1.0, 0.5,
                                   2.0,  1e-300, 3.0,    -2.5,     1e154, 0.1 };
#define N_SPEC (sizeof specials / sizeof specials[0])

#define NPTS_RAND 24
#define NPTS_SPEC 48
#define NPTS (NPTS_RAND + NPTS_SPEC + N_SPEC)

static void make_points(uint64_t seed, double *pts)
{
    tu_rng r = { seed ^ 0xabcdef12345ull };
    size_t p = 0;
    for (; p < NPTS_RAND; p++)
        for (size_t j = 0; j < NIN; j++)
            pts[p * NIN + j] = tu_rng_range(&r, -3, 3);
    for (; p < NPTS_RAND + NPTS_SPEC; p++)
        for (size_t j = 0; j < NIN; j++)
            pts[p * NIN + j] = tu_rng_below(&r, 3) ? specials[tu_rng_below(&r, N_SPEC)]
                                                   : tu_rng_range(&r, -3, 3);
    for (size_t s = 0; s < N_SPEC; s++, p++)
        for (size_t j = 0; j < NIN; j++)
            pts[p * NIN + j] = specials[s];
}

/* Derivatives of two equivalent tapes agree as values: == or both NaN, up
 * to the rounding of a different summation order (folding x*1 -> x or
 * sharing a subexpression changes the order in which adjoints of one value
 * are accumulated, and pow(x,2) -> x*x rounds 2*(a*x) instead of a*(2*x)),
 * i.e. within 1e-9 relative.  Infinities and NaNs must match exactly. */
static int deriv_match(double a, double b)
{
    return tu_same_value(a, b) || tu_close(a, b, 1e-9, 1e-290);
}

static void compare_tapes(const tg_tape *a, const tg_tape *b, const char *what, uint64_t seed)
{
    double pts[NPTS * NIN];
    make_points(seed, pts);
    size_t m = tg_num_outputs(a);
    cr_assert_eq(m, tg_num_outputs(b));
    cr_assert_eq(tg_num_inputs(a), (size_t)NIN);
    cr_assert_eq(tg_num_inputs(b), (size_t)NIN);
    double ya[NOUT], yb[NOUT], Ja[NOUT * NIN], Jb[NOUT * NIN];
    for (size_t p = 0; p < NPTS; p++) {
        const double *x = pts + p * NIN;
        TU_OK(tg_eval(a, x, ya));
        TU_OK(tg_eval(b, x, yb));
        for (size_t i = 0; i < m; i++)
            cr_expect(tu_same_bits_nan(ya[i], yb[i]),
                      "expr %" PRIu64 " (%s) at (%.17g, %.17g, %.17g): y[%zu] = %s vs %s", seed,
                      what, x[0], x[1], x[2], i, tu_d(ya[i]).s, tu_d(yb[i]).s);
        TU_OK(tg_jacobian(a, x, Ja));
        TU_OK(tg_jacobian(b, x, Jb));
        for (size_t k = 0; k < m * NIN; k++)
            cr_expect(deriv_match(Ja[k], Jb[k]),
                      "expr %" PRIu64 " (%s) at (%.17g, %.17g, %.17g): J[%zu][%zu] = %s vs %s",
                      seed, what, x[0], x[1], x[2], k / NIN, k % NIN, tu_d(Ja[k]).s,
                      tu_d(Jb[k]).s);
        /* reverse mode: one vjp per output */
        for (size_t i = 0; i < m; i++) {
            double w[NOUT] = { 0 }, ga[NIN], gb[NIN];
            w[i] = 1.0;
            TU_OK(tg_vjp(a, x, w, ga));
            TU_OK(tg_vjp(b, x, w, gb));
            for (size_t j = 0; j < NIN; j++)
                cr_expect(deriv_match(ga[j], gb[j]),
                          "expr %" PRIu64 " (%s) at (%.17g, %.17g, %.17g): vjp e%zu [%zu] = %s "
                          "vs %s",
                          seed, what, x[0], x[1], x[2], i, j, tu_d(ga[j]).s, tu_d(gb[j]).s);
        }
    }
    /* batches agree with each other too */
    double *Ya = malloc(NPTS * m * sizeof *Ya), *Yb = malloc(NPTS * m * sizeof *Yb);
    cr_assert(Ya && Yb);
    TU_OK(tg_eval_batch(a, NPTS, pts, Ya));
    TU_OK(tg_eval_batch(b, NPTS, pts, Yb));
    for (size_t k = 0; k < NPTS * m; k++)
        cr_expect(tu_same_bits_nan(Ya[k], Yb[k]), "expr %" PRIu64 " (%s) batch [%zu]: %s vs %s",
                  seed, what, k, tu_d(Ya[k]).s, tu_d(Yb[k]).s);
    free(Ya);
    free(Yb);
}

#define N_EXPR 150

Test(fold, random_expressions_bitwise_equal_to_unoptimised, .timeout = 60)
{
    size_t folded = 0, total_opt = 0, total_raw = 0;
    for (uint64_t s = 0; s < N_EXPR; s++) {
        tg_tape *opt = tu_tape("opt", 0);
        tg_tape *nocse = tu_tape("nocse", TG_NO_CSE);
        tg_tape *nofold = tu_tape("nofold", TG_NO_FOLD);
        tg_tape *raw = tu_tape("raw", TG_NO_FOLD | TG_NO_CSE);
        build_random(opt, s);
        build_random(nocse, s);
        build_random(nofold, s);
        build_random(raw, s);
        TU_TAPE_OK(opt);
        TU_TAPE_OK(nocse);
        TU_TAPE_OK(nofold);
        TU_TAPE_OK(raw);
        cr_expect(tg_tape_size(opt) <= tg_tape_size(raw),
                  "expr %" PRIu64 ": optimised tape (%zu) larger than unoptimised (%zu)", s,
                  tg_tape_size(opt), tg_tape_size(raw));
        folded += tg_tape_size(opt) < tg_tape_size(raw);
        total_opt += tg_tape_size(opt);
        total_raw += tg_tape_size(raw);
        /* values bit for bit in every combination; derivatives as values */
        compare_tapes(opt, raw, "fold+cse vs none", s);
        compare_tapes(nocse, raw, "fold vs none", s);
        compare_tapes(nofold, raw, "cse vs none", s);
        tg_tape_free(opt);
        tg_tape_free(nocse);
        tg_tape_free(nofold);
        tg_tape_free(raw);
    }
    /* the generator must actually exercise the optimiser */
    cr_expect(folded >= N_EXPR / 4, "only %zu of %d random expressions were optimised at all",
              folded, N_EXPR);
    cr_log_info("random expressions: %zu instructions optimised vs %zu unoptimised", total_opt,
                total_raw);
}

/* tg_tape_optimize at every level keeps every bit of every value, and
 * optimising twice gives the same tape as optimising once. */
Test(fold, tape_optimize_exact_and_idempotent, .timeout = 60)
{
    const tg_opt_level levels[] = { TG_OPT_NONE, TG_OPT_BASIC, TG_OPT_MEDIUM, TG_OPT_HIGH,
                                    TG_OPT_MAX };
    for (uint64_t s = 0; s < 16; s++) {
        tg_tape *raw = tu_tape("raw", TG_NO_FOLD | TG_NO_CSE);
        build_random(raw, s);
        TU_TAPE_OK(raw);
        for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
            for (unsigned flags = 0; flags < 2; flags++) {
                tg_tape *t = tu_tape("opt", flags ? TG_NO_FOLD | TG_NO_CSE : 0);
                build_random(t, s);
                size_t before = tg_tape_size(t);
                TU_OK(tg_tape_optimize(t, levels[l]));
                TU_TAPE_OK(t);
                cr_expect(tg_tape_size(t) <= before,
                          "expr %" PRIu64 " level %d: optimise grew the tape %zu -> %zu", s,
                          (int)levels[l], before, tg_tape_size(t));
                char *once = tg_tape_disasm(t);
                TU_OK(tg_tape_optimize(t, levels[l]));
                char *twice = tg_tape_disasm(t);
                cr_assert(once && twice);
                cr_expect_str_eq(twice, once,
                                 "expr %" PRIu64 " level %d (flags %u): optimising twice "
                                 "differs from once",
                                 s, (int)levels[l], flags);
                free(once);
                free(twice);
                char what[64];
                snprintf(what, sizeof what, "tg_tape_optimize level %d", (int)levels[l]);
                compare_tapes(t, raw, what, s);
                tg_tape_free(t);
            }
        }
        tg_tape_free(raw);
    }
}

/* Recording the same program twice (optimised) gives identical tapes. */
Test(fold, optimised_recording_is_deterministic)
{
    for (uint64_t s = 0; s < 10; s++) {
        tg_tape *a = tu_tape("d", 0), *b = tu_tape("d", 0);
        build_random(a, s);
        build_random(b, s);
        char *da = tg_tape_disasm(a), *db = tg_tape_disasm(b);
        cr_assert(da && db);
        cr_expect_str_eq(da, db, "expr %" PRIu64 " recorded twice differs", s);
        free(da);
        free(db);
        tg_tape_free(a);
        tg_tape_free(b);
    }
}

/* ------------------------------------------------------ golden disassembly */

#define HDR1(n) "tape \"f\": 1 inputs, 1 outputs, " #n " instructions\nin  x[1]\nout y[1]\n"

typedef tg_var (*unary_rec)(tg_tape *t, tg_var x);

static void golden1(unary_rec rec, const char *want)
{
    tg_tape *t = tu_tape("f", 0);
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", rec(t, x));
    TU_TAPE_OK(t);
    tu_assert_disasm(t, want);
    tg_tape_free(t);
}

#define G(NAME, EXPR) \
    static tg_var NAME(tg_tape *t, tg_var x) { (void)t; return (EXPR); }

G(g_x_mul_1, tg_mul(x, 1.0))
G(g_1_mul_x, tg_mul(1.0, x))
G(g_x_mul_1i, tg_mul(x, 1))
G(g_x_div_1, tg_div(x, 1.0))
G(g_x_add_m0, tg_add(x, -0.0))
G(g_m0_add_x, tg_add(-0.0, x))
G(g_x_sub_0, tg_sub(x, 0.0))
G(g_pow_1, tg_pow(x, 1.0))
G(g_neg_neg, tg_neg(tg_neg(x)))
G(g_pow_2, tg_pow(x, 2.0))
G(g_pow_2i, tg_pow(x, 2))
G(g_x_mul_0, tg_mul(x, 0.0))
G(g_0_mul_x, tg_mul(0.0, x))
G(g_x_sub_x, tg_sub(x, x))
G(g_x_div_x, tg_div(x, x))
G(g_x_add_0, tg_add(x, 0.0))
G(g_0_add_x, tg_add(0.0, x))
G(g_x_sub_m0, tg_sub(x, -0.0))
G(g_lt_xx, tg_lt(x, x))
G(g_le_xx, tg_le(x, x))
G(g_gt_xx, tg_gt(x, x))
G(g_ge_xx, tg_ge(x, x))
G(g_x_mul_m1, tg_mul(x, -1.0))
G(g_1_div_x, tg_div(1.0, x))
G(g_x_mul_1_const, tg_mul(x, tg_const(t, 1.0)))
G(g_example, tg_sin(tg_mul(x, 2.0)))
G(g_powk, tg_pow(x, 3))
G(g_powk_const, tg_pow(x, tg_const(t, 3.0)))
G(g_powk_half, tg_pow(x, 0.5))
G(g_const_fold, tg_mul(x, tg_add(tg_const(t, 2), 3.0)))
G(g_const_fold2, tg_add(x, tg_mul(tg_sin(tg_const(t, 0.5)), 2.0)))
G(g_const_fold_chain, tg_mul(x, tg_sqrt(tg_add(tg_const(t, 7.0), 9))))
G(g_sub_lit_first, tg_sub(2.0, x))
G(g_select_lits, tg_select(x, 1.0, 2.5))
G(g_neg_x, tg_neg(x))
G(g_azmul_lit, tg_azmul(3.0, x))
G(g_mul_twice, tg_add(tg_mul(x, 2.0), tg_mul(2.0, x)))
G(g_lit_reuse, tg_add(tg_mul(x, 2.0), 2.0))

Test(golden, brief_example)
{
    golden1(g_example, "tape \"f\": 1 inputs, 1 outputs, 4 instructions\nin  x[1]\nout y[1]\n"
                       "%0 = input x[0]\n%1 = const 2\n%2 = mul %0 %1\n%3 = sin %2\ny[0] = %3\n");
}

Test(golden, identities_fold)
{
    const char *id = HDR1(1) "%0 = input x[0]\ny[0] = %0\n";
    golden1(g_x_mul_1, id);
    golden1(g_1_mul_x, id);
    golden1(g_x_mul_1i, id);
    golden1(g_x_div_1, id);
    golden1(g_x_add_m0, id);
    golden1(g_m0_add_x, id);
    golden1(g_x_sub_0, id);
    golden1(g_pow_1, id);
}

Test(golden, double_negation_folds)
{
    /* the inner neg was recorded by the user; the outer one folds to x */
    golden1(g_neg_neg, HDR1(2) "%0 = input x[0]\n%1 = neg %0\ny[0] = %0\n");
    golden1(g_neg_x, HDR1(2) "%0 = input x[0]\n%1 = neg %0\ny[0] = %1\n");
}

Test(golden, pow_2_is_mul)
{
    golden1(g_pow_2, HDR1(2) "%0 = input x[0]\n%1 = mul %0 %0\ny[0] = %1\n");
    golden1(g_pow_2i, HDR1(2) "%0 = input x[0]\n%1 = mul %0 %0\ny[0] = %1\n");
}

Test(golden, constant_exponent_is_powk)
{
    const char *k3 = HDR1(3) "%0 = input x[0]\n%1 = const 3\n%2 = powk %0 %1\ny[0] = %2\n";
    golden1(g_powk, k3);
    golden1(g_powk_const, k3);
    golden1(g_powk_half, HDR1(3) "%0 = input x[0]\n%1 = const 0.5\n%2 = powk %0 %1\ny[0] = %2\n");
}

Test(golden, pow_with_input_exponent)
{
    tg_tape *t = tu_tape("f", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_output(t, "z", tg_pow(x, y));
    tu_assert_disasm(t, "tape \"f\": 2 inputs, 1 outputs, 3 instructions\nin  x[1]\nin  y[1]\n"
                        "out z[1]\n%0 = input x[0]\n%1 = input y[0]\n%2 = pow %0 %1\nz[0] = %2\n");
    tg_tape_free(t);
}

Test(golden, constant_constant_folds)
{
    /* tg_const(t, 2) is recorded by the user; 2 + 3.0 folds to const 5 and
     * the literal 3 is never materialised */
    golden1(g_const_fold, HDR1(4) "%0 = input x[0]\n%1 = const 2\n%2 = const 5\n"
                                  "%3 = mul %0 %2\ny[0] = %3\n");
    golden1(g_const_fold_chain, HDR1(5) "%0 = input x[0]\n%1 = const 7\n%2 = const 16\n"
                                        "%3 = const 4\n%4 = mul %0 %3\ny[0] = %4\n");
    char want[512], k[64];
    tu_fmt_const(k, sizeof k, sin(0.5));
    double k2 = sin(0.5) * 2.0;
    char kk[64];
    tu_fmt_const(kk, sizeof kk, k2);
    snprintf(want, sizeof want,
             HDR1(5) "%%0 = input x[0]\n%%1 = const 0.5\n%%2 = const %s\n%%3 = const %s\n"
                     "%%4 = add %%0 %%3\ny[0] = %%4\n",
             k, kk);
    golden1(g_const_fold2, want);
}

Test(golden, not_folded)
{
    const char *mul0 = HDR1(3) "%0 = input x[0]\n%1 = const 0\n%2 = mul %0 %1\ny[0] = %2\n";
    golden1(g_x_mul_0, mul0);
    golden1(g_0_mul_x, mul0);
    golden1(g_x_sub_x, HDR1(2) "%0 = input x[0]\n%1 = sub %0 %0\ny[0] = %1\n");
    golden1(g_x_div_x, HDR1(2) "%0 = input x[0]\n%1 = div %0 %0\ny[0] = %1\n");
    const char *add0 = HDR1(3) "%0 = input x[0]\n%1 = const 0\n%2 = add %0 %1\ny[0] = %2\n";
    golden1(g_x_add_0, add0);
    golden1(g_0_add_x, add0);
    golden1(g_x_sub_m0, HDR1(3) "%0 = input x[0]\n%1 = const -0\n%2 = sub %0 %1\ny[0] = %2\n");
    golden1(g_lt_xx, HDR1(2) "%0 = input x[0]\n%1 = lt %0 %0\ny[0] = %1\n");
    golden1(g_le_xx, HDR1(2) "%0 = input x[0]\n%1 = le %0 %0\ny[0] = %1\n");
    golden1(g_gt_xx, HDR1(2) "%0 = input x[0]\n%1 = gt %0 %0\ny[0] = %1\n");
    golden1(g_ge_xx, HDR1(2) "%0 = input x[0]\n%1 = ge %0 %0\ny[0] = %1\n");
    golden1(g_x_mul_m1, HDR1(3) "%0 = input x[0]\n%1 = const -1\n%2 = mul %0 %1\ny[0] = %2\n");
    golden1(g_1_div_x, HDR1(3) "%0 = input x[0]\n%1 = const 1\n%2 = div %1 %0\ny[0] = %2\n");
}

Test(golden, explicit_const_one_is_folded_but_kept)
{
    /* x * tg_const(t, 1): the identity folds; the user's const stays */
    golden1(g_x_mul_1_const, HDR1(2) "%0 = input x[0]\n%1 = const 1\ny[0] = %0\n");
}

Test(golden, literals_in_operand_order)
{
    golden1(g_sub_lit_first, HDR1(3) "%0 = input x[0]\n%1 = const 2\n%2 = sub %1 %0\ny[0] = %2\n");
    golden1(g_select_lits, HDR1(4) "%0 = input x[0]\n%1 = const 1\n%2 = const 2.5\n"
                                   "%3 = select %0 %1 %2\ny[0] = %3\n");
    golden1(g_azmul_lit, HDR1(3) "%0 = input x[0]\n%1 = const 3\n%2 = azmul %0 %1\ny[0] = %2\n");
    /* CSE of the literal and of the commuted product */
    golden1(g_mul_twice, HDR1(4) "%0 = input x[0]\n%1 = const 2\n%2 = mul %0 %1\n"
                                 "%3 = add %2 %2\ny[0] = %3\n");
    golden1(g_lit_reuse, HDR1(4) "%0 = input x[0]\n%1 = const 2\n%2 = mul %0 %1\n"
                                 "%3 = add %1 %2\ny[0] = %3\n");
}

Test(golden, commutative_operands_ordered)
{
    tg_tape *t = tu_tape("c", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_var o[5] = { tg_add(y, x), tg_mul(y, x), tg_azmul(y, x), tg_sub(y, x), tg_div(y, x) };
    tg_output_vec(t, "o", 5, o);
    TU_TAPE_OK(t);
    tu_assert_disasm(t, "tape \"c\": 2 inputs, 5 outputs, 7 instructions\nin  x[1]\nin  y[1]\n"
                        "out o[5]\n%0 = input x[0]\n%1 = input y[0]\n%2 = add %0 %1\n"
                        "%3 = mul %0 %1\n%4 = azmul %0 %1\n%5 = sub %1 %0\n%6 = div %1 %0\n"
                        "o[0] = %2\no[1] = %3\no[2] = %4\no[3] = %5\no[4] = %6\n");
    tg_tape_free(t);
}

Test(golden, blocks_and_outputs)
{
    tg_tape *t = tu_tape("blk", 0);
    tg_var a[3], b;
    tg_input_vec(t, "a", 3, a);
    b = tg_input(t, "b");
    tg_var o[2] = { tg_add(a[0], b), a[2] };
    tg_output_vec(t, "o", 2, o);
    tg_output(t, "p", a[1]);
    TU_TAPE_OK(t);
    tu_assert_disasm(t, "tape \"blk\": 4 inputs, 3 outputs, 5 instructions\nin  a[3]\nin  b[1]\n"
                        "out o[2]\nout p[1]\n%0 = input a[0]\n%1 = input a[1]\n"
                        "%2 = input a[2]\n%3 = input b[0]\n%4 = add %0 %3\n"
                        "o[0] = %4\no[1] = %2\np[0] = %1\n");
    tg_tape_free(t);
}

/* Constants print so that they read back to the same bits. */
Test(golden, constant_spelling)
{
    const uint64_t nan1 = 0x7ff8000000000001ull, negnan = 0xfff8000000000000ull,
                   snan = 0x7ff0000000000001ull;
    const double ks[] = { 0.1, 1.0 / 3.0, 5e-324, 1e300, 1e-200, -0.0, 0.0, INFINITY, -INFINITY,
                          NAN, tu_from_bits(nan1), tu_from_bits(negnan), tu_from_bits(snan),
                          123456.0, 1234567.0, 1e-5, 2.2250738585072014e-308, -1.5,
                          1.7976931348623157e308, 100.0 };
    const char *spelled[] = { "0.1", "0.3333333333333333", "5e-324", "1e+300", "1e-200", "-0",
                              "0", "inf", "-inf", "nan", "nan:0x7ff8000000000001",
                              "nan:0xfff8000000000000", "nan:0x7ff0000000000001", "123456",
                              "1234567", "1e-05", "2.2250738585072014e-308", "-1.5",
                              "1.7976931348623157e+308", "1e+02" };
    size_t nk = sizeof ks / sizeof ks[0];
    tg_tape *t = tu_tape("k", 0);
    tg_var v[32];
    for (size_t i = 0; i < nk; i++)
        v[i] = tg_const(t, ks[i]);
    tg_output_vec(t, "y", nk, v);
    TU_TAPE_OK(t);
    char want[4096];
    int n = snprintf(want, sizeof want, "tape \"k\": 0 inputs, %zu outputs, %zu instructions\nout y[%zu]\n",
                     nk, nk, nk);
    for (size_t i = 0; i < nk; i++) {
        char k[64];
        tu_fmt_const(k, sizeof k, ks[i]);
        cr_assert_str_eq(k, spelled[i], "test's own formatter: %s vs %s", k, spelled[i]);
        n += snprintf(want + n, sizeof want - (size_t)n, "%%%zu = const %s\n", i, spelled[i]);
    }
    for (size_t i = 0; i < nk; i++)
        n += snprintf(want + n, sizeof want - (size_t)n, "y[%zu] = %%%zu\n", i, i);
    tu_assert_disasm(t, want);
    /* and evaluating gives back the exact bits (NaN payloads may change) */
    double y[32];
    double none[1] = { 0.0 };
    TU_OK(tg_eval(t, none, y));
    for (size_t i = 0; i < nk; i++)
        cr_expect(tu_same_bits_nan(y[i], ks[i]), "const %s evaluates to %s", spelled[i],
                  tu_d(y[i]).s);
    tg_tape_free(t);
}

/* Every op name appears in the disassembly as tg_op_name spells it. */
Test(golden, every_op_mnemonic)
{
    for (int op = 0; op < (int)TG_OP_COUNT; op++) {
        int ar = tg_op_arity((tg_opcode)op);
        const char *name = tg_op_name((tg_opcode)op);
        if (ar <= 0 || strcmp(name, "powk") == 0 || (tg_op_flags((tg_opcode)op) & TG_OPF_EXTENDED))
            continue; /* leaves and powk are covered by the tests above, loops by test_loops */
        tg_tape *t = tu_tape("f", TG_NO_FOLD | TG_NO_CSE);
        tg_var x[3];
        tg_input_vec(t, "x", 3, x);
        tg_var y = ar == 1   ? tg_op1((tg_opcode)op, tg__opnd_var(x[0]))
                   : ar == 2 ? tg_op2((tg_opcode)op, tg__opnd_var(x[0]), tg__opnd_var(x[1]))
                             : tg_op3((tg_opcode)op, tg__opnd_var(x[0]), tg__opnd_var(x[1]),
                                      tg__opnd_var(x[2]));
        tg_output(t, "y", y);
        TU_TAPE_OK(t);
        char want[512];
        snprintf(want, sizeof want,
                 "tape \"f\": 3 inputs, 1 outputs, 4 instructions\nin  x[3]\nout y[1]\n"
                 "%%0 = input x[0]\n%%1 = input x[1]\n%%2 = input x[2]\n%%3 = %s%s%s%s\n"
                 "y[0] = %%3\n",
                 name, " %0", ar >= 2 ? " %1" : "", ar >= 3 ? " %2" : "");
        tu_assert_disasm(t, want);
        tg_tape_free(t);
    }
}

/* ---------------------------------------------------------------------- CSE */

Test(cse, commutative_product_shared)
{
    tg_tape *t = tu_tape("f", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    size_t n0 = tg_tape_size(t);
    tg_var a = tg_mul(x, y), b = tg_mul(y, x);
    cr_expect_eq(a.id, b.id, "mul(x,y) id %u, mul(y,x) id %u", a.id, b.id);
    cr_expect_eq(tg_tape_size(t), n0 + 1, "one instruction for both products, size %zu",
                 tg_tape_size(t));
    tg_var c = tg_add(x, y), d = tg_add(y, x), e = tg_add(x, y);
    cr_expect(c.id == d.id && d.id == e.id, "add ids %u %u %u", c.id, d.id, e.id);
    tg_var f = tg_azmul(x, y), g = tg_azmul(y, x);
    cr_expect_eq(f.id, g.id);
    tg_var s1 = tg_sub(x, y), s2 = tg_sub(y, x), s3 = tg_sub(x, y);
    cr_expect_neq(s1.id, s2.id, "sub(x,y) and sub(y,x) must differ");
    cr_expect_eq(s1.id, s3.id, "sub(x,y) twice must be shared");
    tg_var d1 = tg_div(x, y), d2 = tg_div(y, x);
    cr_expect_neq(d1.id, d2.id);
    tg_var p1 = tg_pow(x, y), p2 = tg_pow(y, x);
    cr_expect_neq(p1.id, p2.id);
    tg_var m1 = tg_max(x, y), m2 = tg_max(y, x);
    cr_expect_neq(m1.id, m2.id, "max is not bitwise commutative (ties, +-0, NaN): no swap");
    tg_var u1 = tg_sin(x), u2 = tg_sin(x), u3 = tg_cos(x);
    cr_expect_eq(u1.id, u2.id);
    cr_expect_neq(u1.id, u3.id);
    tg_var q1 = tg_select(x, y, 2.0), q2 = tg_select(x, y, 2.0), q3 = tg_select(y, x, 2.0);
    cr_expect_eq(q1.id, q2.id);
    cr_expect_neq(q1.id, q3.id);
    TU_TAPE_OK(t);
    tg_tape_free(t);
}

Test(cse, constants_keyed_by_bits)
{
    tg_tape *t = tu_tape("f", 0);
    tg_var z = tg_const(t, 0.0), mz = tg_const(t, -0.0), z2 = tg_const(t, 0.0);
    cr_expect_neq(z.id, mz.id, "0.0 and -0.0 must be different constants");
    cr_expect_eq(z.id, z2.id, "0.0 twice must be shared");
    tg_var n1 = tg_const(t, NAN), n2 = tg_const(t, NAN);
    cr_expect_eq(n1.id, n2.id, "two NaN constants with the same bits must be shared");
    tg_var n3 = tg_const(t, tu_from_bits(0x7ff8000000000001ull));
    cr_expect_neq(n1.id, n3.id, "NaNs with different payloads are different constants");
    tg_var o1 = tg_const(t, 1.0), o2 = tg_const(t, 1.0);
    cr_expect_eq(o1.id, o2.id);
    size_t before = tg_tape_size(t);
    /* a literal operand reuses the existing constant */
    tg_var x = tg_input(t, "x");
    tg_var a = tg_add(x, 0.0);
    cr_expect_eq(tg_tape_size(t), before + 2, "input + add; literal 0 reuses const: size %zu",
                 tg_tape_size(t));
    tg_var b = tg_add(x, z);
    cr_expect_eq(a.id, b.id);
    tg_var c = tg_add(x, -0.0);
    cr_expect_eq(c.id, x.id, "x + -0.0 folds to x");
    TU_TAPE_OK(t);
    tg_tape_free(t);
}

Test(cse, nothing_shared_without_cse)
{
    tg_tape *t = tu_tape("f", TG_NO_CSE);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_var a = tg_mul(x, y), b = tg_mul(y, x), c = tg_mul(x, y);
    cr_expect(a.id != b.id && a.id != c.id && b.id != c.id, "mul ids %u %u %u", a.id, b.id, c.id);
    tg_var s1 = tg_sin(x), s2 = tg_sin(x);
    cr_expect_neq(s1.id, s2.id);
    tg_var k1 = tg_const(t, 1.5), k2 = tg_const(t, 1.5);
    cr_expect_neq(k1.id, k2.id, "TG_NO_CSE: constants are not shared either");
    size_t n = tg_tape_size(t);
    cr_expect_eq(n, 9, "2 inputs + 3 mul + 2 sin + 2 const = 9, got %zu", n);
    TU_TAPE_OK(t);
    tg_tape_free(t);
}

Test(cse, no_fold_keeps_identities)
{
    tg_tape *t = tu_tape("f", TG_NO_FOLD);
    tg_var x = tg_input(t, "x");
    tg_var a = tg_mul(x, 1.0), b = tg_add(x, -0.0), c = tg_neg(tg_neg(x));
    cr_expect(a.id != x.id && b.id != x.id && c.id != x.id,
              "TG_NO_FOLD must keep x*1, x+(-0), -(-x)");
    tg_var k = tg_add(tg_const(t, 2.0), 3.0);
    double y;
    tg_output(t, "k", k);
    TU_TAPE_OK(t);
    TU_OK(tg_eval(t, (double[]){ 0.0 }, &y));
    cr_expect_eq(y, 5.0);
    /* 2 + 3 stays an add of two constants; no instruction is the constant 5 */
    tg_insn in;
    TU_OK(tg_tape_insn(t, k.id, &in));
    cr_expect(in.op == TG_OP_ADD, "TG_NO_FOLD folded 2 + 3 into %s", tg_op_name(in.op));
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        TU_OK(tg_tape_insn(t, i, &in));
        cr_expect(!(in.op == TG_OP_CONST && in.value == 5.0), "TG_NO_FOLD folded 2 + 3: %%%zu "
                  "is the constant 5", i);
    }
    tg_tape_free(t);
}
