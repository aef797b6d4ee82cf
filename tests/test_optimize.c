/* tests/test_optimize.c -- tg_tape_optimize (docs/conventions.md global rule 2,
 * IEEE-sound folding; rule 4, no recursion; the header's level contract).
 *
 * Random expression DAGs (seeded; every opcode; literals 0, -0.0, 1, -1, 2,
 * 0.5, 4, 0.25, NaN, +-Inf, 3, ...; patterns that the MEDIUM/HIGH rewrites
 * match) and derivative tapes of them are optimised at every level and must
 * give BIT-FOR-BIT the outputs of the unoptimised tape (recorded with
 * TG_NO_FOLD | TG_NO_CSE) on random inputs plus +-0, +-Inf, NaN and
 * subnormals (NaN against NaN compares NaN-ness only); the tape never
 * grows; optimising twice gives exactly the disassembly of optimising once;
 * blocks are unchanged.  Then: dead code elimination, golden disassembly of
 * the MEDIUM/HIGH rewrites, recording on an optimised tape, errors, and a
 * 10^6-deep chain optimised in a 1 MiB stack. */
#include <criterion/criterion.h>

#include "derivutil.h"

static const tg_opt_level levels[] = { TG_OPT_NONE, TG_OPT_BASIC, TG_OPT_MEDIUM, TG_OPT_HIGH,
                                       TG_OPT_MAX };
static const char *level_names[] = { "NONE", "BASIC", "MEDIUM", "HIGH", "MAX" };
#define NLEVELS 5

/* ------------------------------------------------------- random DAGs */

static const double literals[] = {
    0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 4.0, 0.25, NAN, INFINITY, -INFINITY, 3.0, -2.0, -4.0,
    0.75, 1e-310, -0.5, 8.0, 0.125,
};
#define NLIT (sizeof literals / sizeof literals[0])

/* Divisors for x / c: powers of two (HIGH rewrites them), others (never). */
static const double divisors[] = { 2.0, 4.0, 0.25, -0.5, -8.0, 3.0, 0.1, 1.0, -1.0, 0.0, -0.0,
                                   1e-310, 0x1p-1022, 0x1p1023, INFINITY, NAN };
#define NDIV (sizeof divisors / sizeof divisors[0])

#define POOL 512

typedef struct dag {
    tu_rng rng;
    tg_var pool[POOL];
    size_t n;
} dag;

static void push(dag *d, tg_var v)
{
    if (d->n < POOL)
        d->pool[d->n++] = v;
}

static tg_var pick(dag *d)
{
    if (d->n > 6 && tu_rng_unit(&d->rng) < 0.5)
        return d->pool[d->n - 1 - tu_rng_below(&d->rng, 6)];
    return d->pool[tu_rng_below(&d->rng, d->n)];
}

static double pick_lit(dag *d)
{
    /* NaN and the infinities at a lower rate, so that most outputs stay finite */
    for (;;) {
        double k = literals[tu_rng_below(&d->rng, NLIT)];
        if (isfinite(k) || tu_rng_unit(&d->rng) < 0.3)
            return k;
    }
}

static tg_operand operand(dag *d)
{
    if (tu_rng_unit(&d->rng) < 0.25)
        return TG_OPND(pick_lit(d));
    return TG_OPND(pick(d));
}

/* One random operation (or a rewrite pattern) appended to the pool. */
static void step(dag *d)
{
    double r = tu_rng_unit(&d->rng);
    if (r < 0.3) {
        tg_var a = pick(d), b = pick(d);
        tg_var v;
        switch (tu_rng_below(&d->rng, 7)) {
        case 0: v = tg_add(a, tg_neg(b)); break;
        case 1: v = tg_add(tg_neg(a), b); break;
        case 2: v = tg_sub(a, tg_neg(b)); break;
        case 3: v = tg_mul(tg_neg(a), tg_neg(b)); break;
        case 4: v = tg_div(tg_neg(a), tg_neg(b)); break;
        case 5: v = tg_div(a, divisors[tu_rng_below(&d->rng, NDIV)]); break;
        default: v = tg_neg(tg_neg(a)); break;
        }
        push(d, v);
        return;
    }
    tg_opcode op;
    do
        op = (tg_opcode)tu_rng_below(&d->rng, TG_OP_COUNT);
    while (tg_op_arity(op) <= 0 || (tg_op_flags(op) & (TG_OPF_EXTENDED | TG_OPF_GUARD)));  /* guards: test_values */
    int ar = tg_op_arity(op);
    tg_operand o[3];
    int nvar = 0;
    for (int j = 0; j < ar; j++) {
        o[j] = operand(d);
        nvar += o[j].is_var != 0;
    }
    if (nvar == 0) /* a var is needed to know the tape */
        o[tu_rng_below(&d->rng, (size_t)ar)] = TG_OPND(pick(d));
    tg_var v = ar == 1 ? tg_op1(op, o[0]) : ar == 2 ? tg_op2(op, o[0], o[1])
             : tg_op3(op, o[0], o[1], o[2]);
    push(d, v);
}

/* A random DAG: inputs x(3), p(2), nops operations; outputs "y" (3 values)
 * or, scalar, "s" (1).  The same seed gives the same tape. */
static tg_tape *build_dag(uint64_t seed, unsigned flags, size_t nops, int scalar)
{
    dag *d = calloc(1, sizeof *d);
    cr_assert(d != NULL);
    d->rng.s = seed;
    char name[32];
    snprintf(name, sizeof name, "dag%" PRIu64, seed);
    tg_tape *t = tu_tape(name, flags);
    tg_var x[3], p[2];
    tg_input_vec(t, "x", 3, x);
    tg_input_vec(t, "p", 2, p);
    for (int i = 0; i < 3; i++)
        push(d, x[i]);
    for (int i = 0; i < 2; i++)
        push(d, p[i]);
    for (size_t k = 0; k < nops; k++)
        step(d);
    if (scalar) {
        /* combine a few values so that most of the DAG is live */
        tg_var s = d->pool[d->n - 1];
        for (int k = 0; k < 3; k++)
            s = tg_add(s, tg_mul(pick(d), 0.5));
        tg_output(t, "s", s);
    } else {
        tg_var y[3] = { d->pool[d->n - 1], pick(d), d->pool[5 + tu_rng_below(&d->rng, d->n - 5)] };
        tg_output_vec(t, "y", 3, y);
    }
    TU_TAPE_OK(t);
    free(d);
    return t;
}

/* ------------------------------------------------------------- points */

#define NPTS 24

/* npts points of n inputs: random, random with specials mixed in, and
 * all-special points. */
static double *make_points(size_t n, uint64_t seed)
{
    double *P = malloc(NPTS * n * sizeof *P + 1);
    cr_assert(P != NULL);
    tu_rng rng = { seed };
    for (size_t p = 0; p < NPTS; p++)
        for (size_t j = 0; j < n; j++) {
            double v = tu_rng_range(&rng, -2.5, 2.5);
            if ((p >= 8 && tu_rng_unit(&rng) < 0.4) || p >= 20)
                v = du_specials[tu_rng_below(&rng, DU_NSPECIALS)];
            P[p * n + j] = v;
        }
    return P;
}

/* Outputs of a and b agree bit for bit (NaN: NaN-ness only) at every point. */
static void expect_same_outputs(const tg_tape *a, const tg_tape *b, const double *P,
                                const char *what)
{
    size_t n = tg_num_inputs(a), m = tg_num_outputs(a);
    cr_assert_eq(tg_num_inputs(b), n, "%s: input counts differ", what);
    cr_assert_eq(tg_num_outputs(b), m, "%s: output counts differ", what);
    double *ya = malloc(m * sizeof *ya + 1), *yb = malloc(m * sizeof *yb + 1);
    cr_assert(ya && yb);
    size_t bad = 0;
    for (size_t p = 0; p < NPTS && bad < 5; p++) {
        const double *x = P + p * n;
        du_eval(a, x, ya);
        du_eval(b, x, yb);
        for (size_t i = 0; i < m; i++)
            if (!tu_same_bits_nan(ya[i], yb[i])) {
                char where[400];
                int k = snprintf(where, sizeof where, "(");
                for (size_t j = 0; j < n && k > 0 && (size_t)k < sizeof where; j++)
                    k += snprintf(where + k, sizeof where - (size_t)k, "%s%.17g", j ? ", " : "",
                                  x[j]);
                cr_expect(0, "%s: output %zu at %s) = %s, expected %s", what, i, where,
                          tu_d(yb[i]).s, tu_d(ya[i]).s);
                bad++;
            }
    }
    free(ya);
    free(yb);
}

/* Optimises a fresh tape (make()) at each level, against the reference ref
 * (unoptimised) on the points: bitwise outputs, no growth, same blocks and
 * name, idempotent disassembly. */
typedef tg_tape *(*maker)(const void *ctx);

static void check_levels(maker make, const void *ctx, const tg_tape *ref, const double *P,
                         const char *label)
{
    char what[200];
    for (int l = 0; l < NLEVELS; l++) {
        snprintf(what, sizeof what, "%s optimised at %s", label, level_names[l]);
        tg_tape *t = make(ctx);
        TU_TAPE_OK(t);
        size_t before = tg_tape_size(t);
        char name[300];
        snprintf(name, sizeof name, "%s", tg_tape_name(t));
        TU_OK(tg_tape_optimize(t, levels[l]));
        TU_TAPE_OK(t);
        cr_expect_str_eq(tg_tape_name(t), name, "%s: name changed", what);
        cr_expect(tg_tape_size(t) <= before, "%s: the tape grew from %zu to %zu instructions",
                  what, before, tg_tape_size(t));
        du_check_same_blocks(t, ref, what);
        expect_same_outputs(ref, t, P, what);
        char *once = du_disasm(t);
        TU_OK(tg_tape_optimize(t, levels[l]));
        char *twice = du_disasm(t);
        int same = strcmp(once, twice) == 0;
        if (!same)
            tu_show_diff(twice, once);
        cr_expect(same, "%s: optimising twice differs from optimising once", what);
        free(once);
        free(twice);
        tg_tape_free(t);
    }
}

typedef struct dag_ctx {
    uint64_t seed;
    unsigned flags;
    size_t nops;
    int scalar;
    int deriv;      /* 0: f itself; 1..6: a derivative tape of f (see make_deriv) */
    int wrt;
} dag_ctx;

static tg_tape *derive_of(const tg_tape *f, int deriv, int wrt)
{
    switch (deriv) {
    case 1: return tg_gradient_tape(f, wrt);
    case 2: return tg_hvp_tape(f, wrt);
    case 3: return tg_hessian_tape(f, wrt);
    case 4: return tg_jacobian_tape(f, wrt);
    case 5: return tg_jvp_tape(f, wrt);
    case 6: return tg_vjp_tape(f, wrt);
    default: return tg_joint_tape(f, TG_F | TG_GRAD | TG_HVP, wrt);
    }
}

static tg_tape *make_dag(const void *vctx)
{
    const dag_ctx *c = vctx;
    tg_tape *f = build_dag(c->seed, c->flags, c->nops, c->scalar);
    if (c->deriv == 0)
        return f;
    tg_tape *d = derive_of(f, c->deriv, c->wrt);
    tg_tape_free(f);
    return d;
}

static const char *deriv_names[] = { "f", "gradient tape", "hvp tape", "hessian tape",
                                     "jacobian tape", "jvp tape", "vjp tape", "joint tape" };

/* One seed: f (default and unfolded recording) and its derivative tapes. */
static void check_seed(uint64_t seed, size_t nops, int scalar, int with_derivs)
{
    char label[160];
    dag_ctx raw = { seed, TG_NO_FOLD | TG_NO_CSE, nops, scalar, 0, TG_ALL };
    dag_ctx dflt = { seed, 0, nops, scalar, 0, TG_ALL };
    tg_tape *ref = make_dag(&raw), *rec = make_dag(&dflt);
    double *P = make_points(5, seed * 7 + 1);
    /* recording with folding and CSE is already exact */
    snprintf(label, sizeof label, "dag seed %" PRIu64 ": default recording", seed);
    expect_same_outputs(ref, rec, P, label);
    cr_expect(tg_tape_size(rec) <= tg_tape_size(ref), "%s: folding made the tape grow", label);
    snprintf(label, sizeof label, "dag seed %" PRIu64 " (%s)", seed, scalar ? "scalar" : "3 outputs");
    check_levels(make_dag, &dflt, ref, P, label);
    snprintf(label, sizeof label, "dag seed %" PRIu64 " (%s, recorded unfolded)", seed,
             scalar ? "scalar" : "3 outputs");
    check_levels(make_dag, &raw, ref, P, label);
    free(P);
    if (with_derivs) {
        const int sc[] = { 1, 2, 3, 7 }, vec[] = { 4, 5, 6 };
        const int *list = scalar ? sc : vec;
        size_t nl = scalar ? 4 : 3;
        for (size_t k = 0; k < nl; k++) {
            dag_ctx dc = dflt;
            dc.deriv = list[k];
            dc.wrt = (int)(seed % 3) - 1;   /* TG_ALL, 0 or 1 */
            tg_tape *d0 = make_dag(&dc);
            TU_TAPE_OK(d0);
            double *Q = make_points(tg_num_inputs(d0), seed * 13 + (uint64_t)k);
            snprintf(label, sizeof label, "dag seed %" PRIu64 ": %s (wrt %d)", seed,
                     deriv_names[list[k]], dc.wrt);
            check_levels(make_dag, &dc, d0, Q, label);
            free(Q);
            tg_tape_free(d0);
        }
    }
    tg_tape_free(ref);
    tg_tape_free(rec);
}

Test(optimize, random_dags_bit_for_bit_every_level)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        check_seed(seed, 20 + (seed % 5) * 15, 0, 0);
        check_seed(seed + 1000, 20 + (seed % 4) * 12, 1, 0);
    }
}

Test(optimize, derivative_tapes_of_random_dags_bit_for_bit)
{
    for (uint64_t seed = 100; seed < 118; seed++) {
        check_seed(seed, 25 + (seed % 3) * 10, 1, 1);
        check_seed(seed + 1000, 25 + (seed % 3) * 10, 0, 1);
    }
}

/* A long DAG: more rewrite opportunities per tape (and MAX's repetition). */
Test(optimize, long_random_dags)
{
    for (uint64_t seed = 500; seed < 504; seed++) {
        check_seed(seed, 400, 0, 0);
        check_seed(seed, 300, 1, 1);
    }
}

/* Every level on a tape holding every special literal, fed every special
 * input: the folds of constant operations must equal evaluation. */
Test(optimize, all_special_literals_and_inputs)
{
    for (int flags = 0; flags < 2; flags++) {
        for (int l = 0; l < NLEVELS; l++) {
            tg_tape *ref = NULL, *t = NULL;
            for (int rep = 0; rep < 2; rep++) {
                tg_tape *u = tu_tape("lits", flags ? TG_NO_FOLD | TG_NO_CSE : 0);
                tg_var x = tg_input(u, "x");
                tg_var outs[256];
                size_t m = 0;
                for (size_t i = 0; i < NLIT && m + 8 <= 256; i++) {
                    double k = literals[i];
                    outs[m++] = tg_add(x, k);
                    outs[m++] = tg_sub(x, k);
                    outs[m++] = tg_mul(x, k);
                    outs[m++] = tg_div(x, k);
                    outs[m++] = tg_div(k, x);
                    outs[m++] = tg_pow(x, k);
                    outs[m++] = tg_max(x, k);
                    outs[m++] = tg_select(x, k, tg_neg(x));
                }
                for (size_t i = 0; i < NDIV && m < 256; i++)
                    outs[m++] = tg_div(tg_neg(x), divisors[i]);
                tg_output_vec(u, "y", m, outs);
                TU_TAPE_OK(u);
                if (rep == 0)
                    ref = u;
                else
                    t = u;
            }
            TU_OK(tg_tape_optimize(t, levels[l]));
            double P[NPTS];
            for (size_t p = 0; p < NPTS; p++)
                P[p] = du_specials[p % DU_NSPECIALS];
            char what[64];
            snprintf(what, sizeof what, "special literals at %s (%s)", level_names[l],
                     flags ? "unfolded" : "default");
            expect_same_outputs(ref, t, P, what);
            cr_expect(tg_tape_size(t) <= tg_tape_size(ref), "%s: grew", what);
            tg_tape_free(ref);
            tg_tape_free(t);
        }
    }
}

/* ------------------------------------------------------- dead code */

Test(optimize, dead_code_removed_blocks_kept)
{
    tg_tape *t = tu_tape("dce", 0);
    tg_var x[2], z, q[3];
    tg_input_vec(t, "x", 2, x);
    z = tg_input(t, "unused");
    tg_input_vec(t, "q", 3, q);
    tg_var a = tg_sin(x[0]);
    tg_var dead1 = tg_exp(tg_cos(x[1]));
    tg_var dead2 = tg_mul(dead1, z);
    (void)tg_add(dead2, 7.0);
    (void)tg_log(q[2]);
    tg_var y[2] = { tg_mul(a, x[1]), tg_add(q[0], 1.0) };
    tg_output_vec(t, "y", 2, y);
    tg_output(t, "a", a);
    TU_TAPE_OK(t);
    size_t before = tg_tape_size(t);
    char *d0 = du_disasm(t);
    TU_OK(tg_tape_optimize(t, TG_OPT_NONE));
    TU_TAPE_OK(t);
    cr_expect(tg_tape_size(t) < before, "dead code not removed: %zu -> %zu instructions", before,
              tg_tape_size(t));
    /* inputs x(2) unused(1) q(3): 6 input instructions; live: sin, mul, const 1, add */
    cr_expect_eq(tg_tape_size(t), 10, "after DCE: %zu instructions, expected 10", tg_tape_size(t));
    cr_expect_eq(tg_num_inputs(t), 6);
    cr_expect_eq(tg_num_outputs(t), 3);
    cr_assert_eq(tg_num_input_blocks(t), 3);
    cr_expect_str_eq(tg_input_block_name(t, 0), "x");
    cr_expect_str_eq(tg_input_block_name(t, 1), "unused");
    cr_expect_str_eq(tg_input_block_name(t, 2), "q");
    cr_expect_eq(tg_input_block_size(t, 2), 3);
    cr_assert_eq(tg_num_output_blocks(t), 2);
    cr_expect_str_eq(tg_output_block_name(t, 0), "y");
    cr_expect_str_eq(tg_output_block_name(t, 1), "a");
    tu_assert_disasm(t, "tape \"dce\": 6 inputs, 3 outputs, 10 instructions\n"
                        "in  x[2]\n"
                        "in  unused[1]\n"
                        "in  q[3]\n"
                        "out y[2]\n"
                        "out a[1]\n"
                        "%0 = input x[0]\n"
                        "%1 = input x[1]\n"
                        "%2 = input unused[0]\n"
                        "%3 = input q[0]\n"
                        "%4 = input q[1]\n"
                        "%5 = input q[2]\n"
                        "%6 = sin %0\n"
                        "%7 = mul %1 %6\n"
                        "%8 = const 1\n"
                        "%9 = add %3 %8\n"
                        "y[0] = %7\n"
                        "y[1] = %9\n"
                        "a[0] = %6\n");
    double in[6] = { 0.5, -2.0, 3.0, 4.0, 5.0, -1.0 }, out[3];
    du_eval(t, in, out);
    cr_expect(tu_same_bits(out[0], sin(0.5) * -2.0) && out[1] == 5.0 && tu_same_bits(out[2], sin(0.5)),
              "values after DCE: (%g, %g, %g)", out[0], out[1], out[2]);
    free(d0);
    tg_tape_free(t);
}

/* NONE is dead-code elimination only: no folding, no CSE, even on a
 * TG_NO_FOLD | TG_NO_CSE tape; BASIC re-folds and re-CSEs it. */
Test(optimize, none_keeps_structure_basic_refolds)
{
    for (int l = 0; l < 2; l++) {
        tg_tape *t = tu_tape("nf", TG_NO_FOLD | TG_NO_CSE);
        tg_var x = tg_input(t, "x");
        tg_var a = tg_sin(x), b = tg_sin(x);           /* CSE candidates */
        tg_var c = tg_mul(tg_add(a, b), 1.0);          /* x*1 fold candidate */
        tg_var d = tg_add(tg_const(t, 2.0), tg_const(t, 3.0)); /* constant fold */
        tg_output(t, "y", tg_mul(c, d));
        TU_TAPE_OK(t);
        size_t before = tg_tape_size(t);
        TU_OK(tg_tape_optimize(t, l ? TG_OPT_BASIC : TG_OPT_NONE));
        if (l == 0) {
            cr_expect_eq(tg_tape_size(t), before, "NONE changed a tape with no dead code: %zu -> %zu",
                         before, tg_tape_size(t));
        } else {
            /* x, sin, add, const 5, mul */
            tu_assert_disasm(t, "tape \"nf\": 1 inputs, 1 outputs, 5 instructions\n"
                                "in  x[1]\n"
                                "out y[1]\n"
                                "%0 = input x[0]\n"
                                "%1 = const 5\n"     /* scheduled: depth order */
                                "%2 = sin %0\n"
                                "%3 = add %2 %2\n"
                                "%4 = mul %1 %3\n"
                                "y[0] = %4\n");
        }
        tg_tape_free(t);
    }
}

/* Never folded at any level: x*0, x-x, x/x, x+0.0, comparisons of a value
 * with itself (docs/conventions.md rule 2). */
Test(optimize, unsafe_identities_never_folded)
{
    for (int l = 0; l < NLEVELS; l++) {
        tg_tape *t = tu_tape("unsafe", 0);
        tg_var x = tg_input(t, "x");
        tg_var y[7] = { tg_mul(x, 0.0), tg_sub(x, x), tg_div(x, x), tg_add(x, 0.0),
                        tg_ge(x, x),    tg_lt(x, x),  tg_mul(x, -1.0) };
        tg_output_vec(t, "y", 7, y);
        TU_TAPE_OK(t);
        size_t before = tg_tape_size(t);
        TU_OK(tg_tape_optimize(t, levels[l]));
        cr_expect_eq(tg_tape_size(t), before, "%s: %zu -> %zu instructions: an unsafe identity "
                     "was folded", level_names[l], before, tg_tape_size(t));
        const double pts[] = { NAN, INFINITY, -INFINITY, -0.0, 0.0, 2.0 };
        for (size_t p = 0; p < 6; p++) {
            double o[7];
            du_eval(t, &pts[p], o);
            double X = pts[p];
            double want[7] = { X * 0.0, X - X, X / X, X + 0.0, X >= X ? 1.0 : 0.0,
                               X < X ? 1.0 : 0.0, X * -1.0 };
            for (int i = 0; i < 7; i++)
                cr_expect(tu_same_bits_nan(o[i], want[i]), "%s: output %d at %g = %s, expected %s",
                          level_names[l], i, X, tu_d(o[i]).s, tu_d(want[i]).s);
        }
        tg_tape_free(t);
    }
}

/* -------------------------------------------------- golden rewrites */

/* f(x, y) = [e] recorded on a fresh tape, optimised at level. */
static tg_tape *golden(tg_var (*e)(tg_var, tg_var), tg_opt_level level)
{
    tg_tape *t = tu_tape("g", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_output(t, "f", e(x, y));
    TU_TAPE_OK(t);
    TU_OK(tg_tape_optimize(t, level));
    return t;
}

static tg_var e_add_neg(tg_var x, tg_var y) { return tg_add(x, tg_neg(y)); }
static tg_var e_neg_add(tg_var x, tg_var y) { return tg_add(tg_neg(x), y); }
static tg_var e_sub_neg(tg_var x, tg_var y) { return tg_sub(x, tg_neg(y)); }
static tg_var e_mul_negs(tg_var x, tg_var y) { return tg_mul(tg_neg(x), tg_neg(y)); }
static tg_var e_div_negs(tg_var x, tg_var y) { return tg_div(tg_neg(x), tg_neg(y)); }
static tg_var e_div4(tg_var x, tg_var y) { (void)y; return tg_div(x, 4.0); }
static tg_var e_div3(tg_var x, tg_var y) { (void)y; return tg_div(x, 3.0); }
static tg_var e_div_quarter(tg_var x, tg_var y) { (void)y; return tg_div(x, 0.25); }
static tg_var e_div_m2(tg_var x, tg_var y) { (void)y; return tg_div(x, -2.0); }
static tg_var e_div_tiny(tg_var x, tg_var y) { (void)y; return tg_div(x, 0x1p-1060); }
static tg_var e_div_huge(tg_var x, tg_var y) { (void)y; return tg_div(x, 0x1p1023); }

#define HDR "tape \"g\": 2 inputs, 1 outputs, "
#define BLK "in  x[1]\nin  y[1]\nout f[1]\n%0 = input x[0]\n%1 = input y[0]\n"

Test(optimize, golden_sign_normalisation_medium)
{
    /* BASIC leaves them alone */
    tg_tape *t = golden(e_add_neg, TG_OPT_BASIC);
    tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = neg %1\n%3 = add %0 %2\nf[0] = %3\n");
    tg_tape_free(t);
    for (int l = 2; l < NLEVELS; l++) {
        t = golden(e_add_neg, levels[l]);
        tu_assert_disasm(t, HDR "3 instructions\n" BLK "%2 = sub %0 %1\nf[0] = %2\n");
        tg_tape_free(t);
        t = golden(e_neg_add, levels[l]);
        tu_assert_disasm(t, HDR "3 instructions\n" BLK "%2 = sub %1 %0\nf[0] = %2\n");
        tg_tape_free(t);
        t = golden(e_sub_neg, levels[l]);
        tu_assert_disasm(t, HDR "3 instructions\n" BLK "%2 = add %0 %1\nf[0] = %2\n");
        tg_tape_free(t);
        t = golden(e_mul_negs, levels[l]);
        tu_assert_disasm(t, HDR "3 instructions\n" BLK "%2 = mul %0 %1\nf[0] = %2\n");
        tg_tape_free(t);
        t = golden(e_div_negs, levels[l]);
        tu_assert_disasm(t, HDR "3 instructions\n" BLK "%2 = div %0 %1\nf[0] = %2\n");
        tg_tape_free(t);
    }
}

Test(optimize, golden_exact_reciprocal_high_only)
{
    for (int l = 0; l < NLEVELS; l++) {
        tg_tape *t = golden(e_div4, levels[l]);
        if (levels[l] >= TG_OPT_HIGH)
            tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const 0.25\n%3 = mul %0 %2\nf[0] = %3\n");
        else
            tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const 4\n%3 = div %0 %2\nf[0] = %3\n");
        tg_tape_free(t);
        /* x/3: 1/3 is not exact, never rewritten */
        t = golden(e_div3, levels[l]);
        tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const 3\n%3 = div %0 %2\nf[0] = %3\n");
        tg_tape_free(t);
        t = golden(e_div_quarter, levels[l]);
        if (levels[l] >= TG_OPT_HIGH)
            tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const 4\n%3 = mul %0 %2\nf[0] = %3\n");
        else
            tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const 0.25\n%3 = div %0 %2\nf[0] = %3\n");
        tg_tape_free(t);
        t = golden(e_div_m2, levels[l]);
        if (levels[l] >= TG_OPT_HIGH)
            tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const -0.5\n%3 = mul %0 %2\nf[0] = %3\n");
        else
            tu_assert_disasm(t, HDR "4 instructions\n" BLK "%2 = const -2\n%3 = div %0 %2\nf[0] = %3\n");
        tg_tape_free(t);
        /* 2^-1060 is subnormal: its reciprocal 2^1060 overflows; 2^1023's
         * reciprocal 2^-1023 is subnormal: neither is rewritten */
        for (int k = 0; k < 2; k++) {
            char num[48], want[300];
            tu_fmt_const(num, sizeof num, k ? 0x1p1023 : 0x1p-1060);
            snprintf(want, sizeof want, "%s%s%%2 = const %s\n%%3 = div %%0 %%2\nf[0] = %%3\n",
                     HDR "4 instructions\n", BLK, num);
            t = golden(k ? e_div_huge : e_div_tiny, levels[l]);
            tu_assert_disasm(t, want);
            tg_tape_free(t);
        }
    }
    /* and the rewrite is exact, subnormals included */
    tg_tape *a = golden(e_div4, TG_OPT_NONE), *b = golden(e_div4, TG_OPT_HIGH);
    const double xs[] = { 5e-324, 1.5e-323, 3e-308, -7e-309, 1.7976931348623157e308, 1.0 / 3.0,
                          -0.0, INFINITY, NAN, 0x1.fffffffffffffp-1020 };
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double in[2] = { xs[i], 0.0 }, ya, yb;
        du_eval(a, in, &ya);
        du_eval(b, in, &yb);
        cr_expect(tu_same_bits_nan(ya, yb), "x/4 vs x*0.25 at %a: %s vs %s", xs[i], tu_d(ya).s,
                  tu_d(yb).s);
    }
    tg_tape_free(a);
    tg_tape_free(b);
}

/* A chain of rewrites in one tape: neg of neg, neg feeding several ops. */
Test(optimize, golden_combined_rewrites)
{
    tg_tape *t = tu_tape("c", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_var nx = tg_neg(x), ny = tg_neg(y);
    tg_var o[5] = { tg_add(x, ny), tg_sub(x, ny), tg_mul(nx, ny), tg_div(tg_add(nx, y), 8.0), ny };
    tg_output_vec(t, "o", 5, o);
    TU_TAPE_OK(t);
    TU_OK(tg_tape_optimize(t, TG_OPT_MAX));
    /* ny stays (an output); the rewritten ops use y directly */
    tu_assert_disasm(t, "tape \"c\": 2 inputs, 5 outputs, 9 instructions\n"
                        "in  x[1]\n"
                        "in  y[1]\n"
                        "out o[5]\n"
                        "%0 = input x[0]\n"     /* scheduled: depth order */
                        "%1 = input y[0]\n"
                        "%2 = const 0.125\n"
                        "%3 = neg %1\n"
                        "%4 = sub %0 %1\n"
                        "%5 = add %0 %1\n"
                        "%6 = mul %0 %1\n"
                        "%7 = sub %1 %0\n"
                        "%8 = mul %2 %7\n"
                        "o[0] = %4\n"
                        "o[1] = %5\n"
                        "o[2] = %6\n"
                        "o[3] = %8\n"
                        "o[4] = %3\n");
    tg_tape_free(t);
}

/* A rewrite whose result is itself rewritable: (-x) - (-y) becomes
 * (-x) + y by x - (-y) -> x + y, which (-x) + y -> y - x rewrites further.
 * Whatever the level does, optimising twice must give the tape optimising
 * once gave (the header's idempotence promise). */
static tg_var e_negsub_negs(tg_var x, tg_var y) { return tg_sub(tg_neg(x), tg_neg(y)); }
static tg_var e_negadd_neg(tg_var x, tg_var y) { return tg_add(tg_neg(x), tg_neg(y)); }
static tg_var e_sub_neg_neg(tg_var x, tg_var y) { return tg_sub(x, tg_neg(tg_mul(tg_neg(x), tg_neg(y)))); }
static tg_var e_div_negs4(tg_var x, tg_var y) { return tg_div(tg_add(tg_neg(x), y), -4.0); }

Test(optimize, rewrite_chains_idempotent)
{
    tg_var (*es[])(tg_var, tg_var) = { e_negsub_negs, e_negadd_neg, e_sub_neg_neg, e_div_negs4 };
    const char *names[] = { "(-x) - (-y)", "(-x) + (-y)", "x - (-((-x) * (-y)))",
                            "((-x) + y) / -4" };
    for (size_t e = 0; e < sizeof es / sizeof es[0]; e++)
        for (int l = 0; l < NLEVELS; l++) {
            tg_tape *t = golden(es[e], levels[l]);
            tg_tape *ref = golden(es[e], TG_OPT_NONE);
            char *once = du_disasm(t);
            TU_OK(tg_tape_optimize(t, levels[l]));
            char *twice = du_disasm(t);
            cr_expect(strcmp(once, twice) == 0, "%s at %s: optimising twice differs from once:\n"
                      "--- once ---\n%s--- twice ---\n%s", names[e], level_names[l], once, twice);
            const double pts[][2] = { { 1.5, -2.25 }, { -0.0, 0.0 }, { 0.0, -0.0 },
                                      { INFINITY, 1.0 }, { NAN, 2.0 }, { 5e-324, -5e-324 } };
            for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
                double ya, yb;
                du_eval(ref, pts[p], &ya);
                du_eval(t, pts[p], &yb);
                cr_expect(tu_same_bits_nan(ya, yb), "%s at %s, (%g, %g): %s, unoptimised %s",
                          names[e], level_names[l], pts[p][0], pts[p][1], tu_d(yb).s, tu_d(ya).s);
            }
            free(once);
            free(twice);
            tg_tape_free(t);
            tg_tape_free(ref);
        }
}

/* ------------------------------------- recording on an optimised tape */

static uint32_t find_inst(const du_prog *p, tg_opcode op, uint32_t nargs, uint32_t a0, uint32_t a1)
{
    for (size_t i = 0; i < p->n; i++) {
        const tg_insn *in = &p->inst[i];
        if (in->op != op || in->noperands != nargs)
            continue;
        if (in->operand[0] == a0 && (nargs < 2 || in->operand[1] == a1))
            return (uint32_t)i;
    }
    return TG_NIL;
}

Test(optimize, recording_continues_after_optimisation)
{
    for (int l = 0; l < NLEVELS; l++) {
        tg_tape *t = tu_tape("cont", 0);
        tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
        (void)tg_exp(y); /* dead */
        tg_var s = tg_sin(x);
        tg_var b = tg_mul(s, y);
        tg_output(t, "f", tg_add(b, 1.0));
        TU_TAPE_OK(t);
        TU_OK(tg_tape_optimize(t, levels[l]));
        /* inputs come first */
        du_prog p = du_parse(t);
        cr_assert(p.inst[0].op == TG_OP_INPUT && p.inst[1].op == TG_OP_INPUT,
                  "%s: inputs not first:\n%s", level_names[l], p.text);
        uint32_t isin = find_inst(&p, TG_OP_SIN, 1, 0, 0);
        cr_assert(isin != TG_NIL, "%s: no sin %%0:\n%s", level_names[l], p.text);
        uint32_t imul = find_inst(&p, TG_OP_MUL, 2, isin < 1 ? isin : 1, isin < 1 ? 1 : isin);
        cr_assert(imul != TG_NIL, "%s: no mul of sin and y:\n%s", level_names[l], p.text);
        uint32_t iout = p.out[0];
        du_prog_free(&p);
        size_t size = tg_tape_size(t);
        tg_var X = { t, 0 }, Y = { t, 1 };
        /* the same operations again: CSE with the optimised instructions */
        tg_var s2 = tg_sin(X);
        tg_var b2 = tg_mul(Y, s2);
        tg_var o2 = tg_add(b2, 1.0);
        TU_TAPE_OK(t);
        cr_expect_eq(s2.id, isin, "%s: sin(x) recorded again is %%%u, not the optimised %%%u",
                     level_names[l], s2.id, isin);
        cr_expect_eq(b2.id, imul, "%s: sin(x)*y recorded again is %%%u, not %%%u", level_names[l],
                     b2.id, imul);
        cr_expect_eq(o2.id, iout, "%s: the output expression recorded again is %%%u, not %%%u",
                     level_names[l], o2.id, iout);
        cr_expect_eq(tg_tape_size(t), size, "%s: re-recording existing operations added %zu "
                     "instructions", level_names[l], tg_tape_size(t) - size);
        /* new work is appended and usable */
        tg_var c = tg_cos(X);
        tg_output(t, "g", tg_mul(c, o2));
        TU_TAPE_OK(t);
        cr_expect_eq(tg_tape_size(t), size + 2);
        double in[2] = { 0.7, -1.3 }, out[2];
        du_eval(t, in, out);
        double f = sin(0.7) * -1.3 + 1.0;
        cr_expect(tu_same_bits(out[0], f) && tu_same_bits(out[1], cos(0.7) * f),
                  "%s: values after recording on the optimised tape: (%s, %s)", level_names[l],
                  tu_d(out[0]).s, tu_d(out[1]).s);
        /* and it can be optimised again */
        TU_OK(tg_tape_optimize(t, levels[l]));
        double out2[2];
        du_eval(t, in, out2);
        cr_expect(tu_same_bits(out2[0], out[0]) && tu_same_bits(out2[1], out[1]));
        tg_tape_free(t);
    }
}

/* ---------------------------------------------------------------- errors */

Test(optimize, errors)
{
    cr_expect_eq(tg_tape_optimize(NULL, TG_OPT_BASIC), TG_ERR_ARG);
    tg_tape *t = tu_tape("e", 0);
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", tg_sin(x));
    char *before = du_disasm(t);
    cr_expect_eq(tg_tape_optimize(t, (tg_opt_level)5), TG_ERR_ARG);
    cr_expect_eq(tg_tape_optimize(t, (tg_opt_level)-1), TG_ERR_ARG);
    char *after = du_disasm(t);
    cr_expect_str_eq(after, before, "a failed tg_tape_optimize changed the tape");
    TU_TAPE_OK(t);
    free(before);
    free(after);
    tg_tape_free(t);
    /* a tape in the error state: its status, tape unchanged */
    t = tu_tape("lim", 0);
    cr_assert_eq(tg_tape_set_limit(t, 3), TG_OK);
    x = tg_input(t, "x");
    tg_output(t, "y", tg_sin(tg_cos(tg_exp(x))));
    cr_assert_eq(tg_tape_status(t), TG_ERR_LIMIT);
    size_t size = tg_tape_size(t);
    cr_expect_eq(tg_tape_optimize(t, TG_OPT_MAX), TG_ERR_LIMIT);
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT);
    cr_expect_eq(tg_tape_size(t), size);
    tg_tape_free(t);
}

/* ------------------------------------------- 10^6-deep chain, 1 MiB stack */

#define DEPTH 1000000

typedef struct deep_opt {
    int ok;
    char err[256];
    size_t size0, size1, size2;
    tg_status st[2];
    double y0, y1, y2;
} deep_opt;

static void *deep_main(void *arg)
{
    deep_opt *r = arg;
    tg_tape *t = tg_tape_new("deep");
    if (!t)
        return NULL;
    tg_var x = tg_input(t, "x");
    for (long k = 0; k < DEPTH; k++) {
        x = tg_add(tg_sin(x), x);
        if (k % 1000 == 0)
            (void)tg_cos(x);    /* dead code along the chain */
    }
    tg_output(t, "y", x);
    r->ok = tg_tape_status(t) == TG_OK;
    if (!r->ok) {
        snprintf(r->err, sizeof r->err, "%s", tg_tape_error(t));
        tg_tape_free(t);
        return NULL;
    }
    double x0 = 0.5;
    r->size0 = tg_tape_size(t);
    tg_eval(t, &x0, &r->y0);
    r->st[0] = tg_tape_optimize(t, TG_OPT_NONE);
    r->size1 = tg_tape_size(t);
    tg_eval(t, &x0, &r->y1);
    r->st[1] = tg_tape_optimize(t, TG_OPT_MAX);
    r->size2 = tg_tape_size(t);
    tg_eval(t, &x0, &r->y2);
    r->ok = tg_tape_status(t) == TG_OK;
    tg_tape_free(t);
    return NULL;
}

Test(optimize, deep_chain_in_1MiB_stack)
{
    static deep_opt r;
    memset(&r, 0, sizeof r);
    du_run_small_stack(deep_main, &r, 1 << 20);
    cr_assert(r.ok, "deep chain: %s", r.err);
    cr_expect_eq(r.st[0], TG_OK, "deep chain: optimise NONE returned %s", tg_status_str(r.st[0]));
    cr_expect_eq(r.st[1], TG_OK, "deep chain: optimise MAX returned %s", tg_status_str(r.st[1]));
    size_t live = 1 + 2 * (size_t)DEPTH;
    cr_expect_eq(r.size0, live + DEPTH / 1000, "deep chain: recorded %zu instructions", r.size0);
    cr_expect_eq(r.size1, live, "deep chain: after NONE %zu instructions, expected %zu", r.size1,
                 live);
    cr_expect_eq(r.size2, live, "deep chain: after MAX %zu instructions, expected %zu", r.size2,
                 live);
    cr_expect(tu_same_bits(r.y1, r.y0) && tu_same_bits(r.y2, r.y0),
              "deep chain: values %s / %s after optimising, %s before", tu_d(r.y1).s,
              tu_d(r.y2).s, tu_d(r.y0).s);
}
