/* tests/optable.h -- the per-opcode test table, shared by test_ops.c (every
 * numeric path) and test_derive.c (every derivative tape).
 *
 * One row per op (several for ops with distinct regimes, e.g. powk with
 * different exponents): the domain of each operand, literal operands, the C
 * semantics used as reference, whether the op is piecewise constant, and
 * where it jumps or kinks (sample points keep away from those).  Rows use
 * designated initialisers; an omitted field is 0 / NULL.  The list of ops
 * (ot_all_ops) is expanded from ops.def, and ot_check_rows fails for an op
 * without a row, so a new opcode cannot go untested.  Everything is static;
 * include after testutil.h. */
#ifndef TAPEGEN_OPTABLE_H
#define TAPEGEN_OPTABLE_H

#include "testutil.h"

/* Every opcode, in ops.def order: the parameters of the per-op tests. */
TU_UNUSED static const int ot_all_ops[] = {
#define LEAF(NAME, name) TG_OP_##NAME,
#define OP(NAME, ...) TG_OP_##NAME,
#define XOP(NAME, ...) TG_OP_##NAME,
#include "tapegen/ops.def"
};
#define OT_NOPS (sizeof ot_all_ops / sizeof ot_all_ops[0])

/* ------------------------------------------------ C reference semantics */

typedef double (*ot_ref)(double a, double b, double c);

#define OT_R2(NAME, EXPR) \
    static double ot_r_##NAME(double a, double b, double c) { (void)c; return (EXPR); }
#define OT_R1(NAME, EXPR) \
    static double ot_r_##NAME(double a, double b, double c) { (void)b; (void)c; return (EXPR); }
OT_R2(add, a + b)
OT_R2(sub, a - b)
OT_R2(mul, a * b)
OT_R2(div, a / b)
OT_R2(pow, pow(a, b))
OT_R2(min, isnan(a) ? b : isnan(b) ? a : (b < a ? b : a))
OT_R2(max, isnan(a) ? b : isnan(b) ? a : (b > a ? b : a))
OT_R2(atan2, atan2(a, b))
OT_R2(hypot, hypot(a, b))
OT_R2(azmul, tu_azmul(a, b))
/* the partial-derivative ops (issue 9), as their textbook formulas */
OT_R2(powdx, b * pow(a, b - 1.0))
OT_R2(powdy, pow(a, b) * log(a))
OT_R2(atan2dx, b / (a * a + b * b))
OT_R2(hypotdx, a / hypot(a, b))
OT_R2(lt, a < b ? 1.0 : 0.0)
OT_R2(le, a <= b ? 1.0 : 0.0)
OT_R2(gt, a > b ? 1.0 : 0.0)
OT_R2(ge, a >= b ? 1.0 : 0.0)
static double ot_r_select(double a, double b, double c) { return a != 0.0 ? b : c; }
OT_R2(guard, (a != 0.0) == (b != 0.0) ? 1.0 : 0.0)
OT_R1(neg, -a)
OT_R1(sin, sin(a))
OT_R1(cos, cos(a))
OT_R1(tan, tan(a))
OT_R1(asin, asin(a))
OT_R1(acos, acos(a))
OT_R1(atan, atan(a))
OT_R1(sinh, sinh(a))
OT_R1(cosh, cosh(a))
OT_R1(tanh, tanh(a))
OT_R1(asinh, asinh(a))
OT_R1(acosh, acosh(a))
OT_R1(atanh, atanh(a))
OT_R1(exp, exp(a))
OT_R1(expm1, expm1(a))
OT_R1(log, log(a))
OT_R1(log1p, log1p(a))
OT_R1(sqrt, sqrt(a))
OT_R1(cbrt, cbrt(a))
OT_R1(erf, erf(a))
OT_R1(erfc, erfc(a))
OT_R1(abs, fabs(a))
OT_R1(floor, floor(a))
OT_R1(ceil, ceil(a))
OT_R1(round, round(a))
OT_R1(trunc, trunc(a))
OT_R1(fract, a - trunc(a))
OT_R1(signum, a > 0 ? 1.0 : a < 0 ? -1.0 : a == 0 ? 0.0 : a)
#undef OT_R1
#undef OT_R2

/* Distances to the nearest point where the op jumps or kinks. */
static double ot_d_int(const double *x) { return fabs(x[0] - nearbyint(x[0])); }
static double ot_d_half(const double *x) { return fabs(x[0] - floor(x[0]) - 0.5); }
static double ot_d_zero(const double *x) { return fabs(x[0]); }
static double ot_d_tie(const double *x) { return fabs(x[0] - x[1]); }
static double ot_d_cond(const double *x) { return x[0] == 0.0 ? 1.0 : fabs(x[0]); }

/* ------------------------------------------------------------ the table */

typedef struct ot_case {
    tg_opcode op;        /* the op under test; TG_OP_POWK is recorded as tg_pow(x, k[1]) */
    double lo[3], hi[3]; /* domain of each operand that is an input */
    int lit[3];          /* operand j is the literal k[j], not an input */
    double k[3];
    ot_ref f;            /* the C semantics: tg_eval's reference */
    int step;            /* piecewise constant: every derivative is exactly 0 */
    double (*jump)(const double *x);   /* distance to a jump or kink, or NULL */
    double mind;         /* sample points at least this far from a jump */
    double ulps;         /* tg_eval vs f: 0 the same value, else within this many ulps */
    double forced[3][3]; /* the first points (inputs only), when nforced > 0 */
    int nforced;
} ot_case;

#define OT_DOM1(l, h) .lo = { l }, .hi = { h }
#define OT_DOM2(l0, h0, l1, h1) .lo = { l0, l1 }, .hi = { h0, h1 }
/* pow(x, c) with a literal exponent: the internal powk op */
#define OT_POWK(l, h, c) \
    .op = TG_OP_POWK, .lo = { l }, .hi = { h }, .lit = { 0, 1 }, .k = { 0, c }, .f = ot_r_pow, \
    .ulps = 16

TU_UNUSED static const ot_case ot_cases[] = {
    { .op = TG_OP_ADD, OT_DOM2(-3, 3, -3, 3), .f = ot_r_add },
    { .op = TG_OP_SUB, OT_DOM2(-3, 3, -3, 3), .f = ot_r_sub },
    { .op = TG_OP_MUL, OT_DOM2(-3, 3, -3, 3), .f = ot_r_mul },
    { .op = TG_OP_DIV, OT_DOM2(-3, 3, 0.3, 3), .f = ot_r_div },
    { .op = TG_OP_DIV, OT_DOM2(-3, 3, -3, -0.3), .f = ot_r_div },
    { .op = TG_OP_POW, OT_DOM2(0.3, 3, -2, 2.5), .f = ot_r_pow },
    { OT_POWK(0.3, 3, 2.7) },
    { OT_POWK(-3, 3, 3.0) },
    { OT_POWK(-3, 3, -2.0), .jump = ot_d_zero, .mind = 0.4 },
    { OT_POWK(0.2, 3, 0.5) },
    { OT_POWK(0.3, 3, -1.5) },
    { OT_POWK(-1.5, 1.5, 7.0) },
    { .op = TG_OP_MIN, OT_DOM2(-3, 3, -3, 3), .f = ot_r_min, .jump = ot_d_tie, .mind = 1e-2 },
    { .op = TG_OP_MAX, OT_DOM2(-3, 3, -3, 3), .f = ot_r_max, .jump = ot_d_tie, .mind = 1e-2 },
    { .op = TG_OP_ATAN2, OT_DOM2(-3, 3, 0.3, 3), .f = ot_r_atan2 },
    { .op = TG_OP_ATAN2, OT_DOM2(0.3, 3, -3, 3), .f = ot_r_atan2 },
    { .op = TG_OP_HYPOT, OT_DOM2(0.3, 3, -3, 3), .f = ot_r_hypot },
    { .op = TG_OP_AZMUL, OT_DOM2(-3, 3, -3, 3), .f = ot_r_azmul },
    { .op = TG_OP_POWDX, OT_DOM2(0.3, 3, -2, 2.5), .f = ot_r_powdx },
    { .op = TG_OP_POWDY, OT_DOM2(0.3, 3, -2, 2.5), .f = ot_r_powdy },
    { .op = TG_OP_ATAN2DX, OT_DOM2(-3, 3, 0.3, 3), .f = ot_r_atan2dx, .ulps = 4 },
    { .op = TG_OP_HYPOTDX, OT_DOM2(0.3, 3, -3, 3), .f = ot_r_hypotdx },
    { .op = TG_OP_LT, OT_DOM2(-3, 3, -3, 3), .f = ot_r_lt, .step = 1, .jump = ot_d_tie, .mind = 1e-2 },
    { .op = TG_OP_LE, OT_DOM2(-3, 3, -3, 3), .f = ot_r_le, .step = 1, .jump = ot_d_tie, .mind = 1e-2 },
    { .op = TG_OP_GT, OT_DOM2(-3, 3, -3, 3), .f = ot_r_gt, .step = 1, .jump = ot_d_tie, .mind = 1e-2 },
    { .op = TG_OP_GE, OT_DOM2(-3, 3, -3, 3), .f = ot_r_ge, .step = 1, .jump = ot_d_tie, .mind = 1e-2 },
    { .op = TG_OP_SELECT, .lo = { -2, -3, -3 }, .hi = { 2, 3, 3 }, .f = ot_r_select,
      .jump = ot_d_cond, .mind = 1e-2,
      .forced = { { 0.0, 1.25, -0.5 }, { -0.0, 2.0, 0.75 }, { 1.0, -1.5, 2.5 } }, .nforced = 3 },
    /* a branch guard that holds over the whole domain (recorded "taken",
     * the condition never 0): value 1, derivative 0; guards that fail are
     * tests/test_values.c's */
    { .op = TG_OP_GUARD, .lo = { 0.3 }, .hi = { 3 }, .lit = { 0, 1 }, .k = { 0, 1.0 },
      .f = ot_r_guard, .step = 1 },
    { .op = TG_OP_NEG, OT_DOM1(-3, 3), .f = ot_r_neg },
    { .op = TG_OP_SIN, OT_DOM1(-3, 3), .f = ot_r_sin },
    { .op = TG_OP_COS, OT_DOM1(-3, 3), .f = ot_r_cos },
    { .op = TG_OP_TAN, OT_DOM1(-1.3, 1.3), .f = ot_r_tan },
    { .op = TG_OP_ASIN, OT_DOM1(-0.9, 0.9), .f = ot_r_asin },
    { .op = TG_OP_ACOS, OT_DOM1(-0.9, 0.9), .f = ot_r_acos },
    { .op = TG_OP_ATAN, OT_DOM1(-3, 3), .f = ot_r_atan },
    { .op = TG_OP_SINH, OT_DOM1(-3, 3), .f = ot_r_sinh },
    { .op = TG_OP_COSH, OT_DOM1(-3, 3), .f = ot_r_cosh },
    { .op = TG_OP_TANH, OT_DOM1(-3, 3), .f = ot_r_tanh },
    { .op = TG_OP_ASINH, OT_DOM1(-3, 3), .f = ot_r_asinh },
    { .op = TG_OP_ACOSH, OT_DOM1(1.1, 4), .f = ot_r_acosh },
    { .op = TG_OP_ATANH, OT_DOM1(-0.9, 0.9), .f = ot_r_atanh },
    { .op = TG_OP_EXP, OT_DOM1(-3, 3), .f = ot_r_exp },
    { .op = TG_OP_EXPM1, OT_DOM1(-3, 3), .f = ot_r_expm1 },
    { .op = TG_OP_LOG, OT_DOM1(0.1, 5), .f = ot_r_log },
    { .op = TG_OP_LOG1P, OT_DOM1(-0.9, 4), .f = ot_r_log1p },
    { .op = TG_OP_SQRT, OT_DOM1(0.1, 5), .f = ot_r_sqrt },
    { .op = TG_OP_CBRT, OT_DOM1(-3, 3), .f = ot_r_cbrt, .jump = ot_d_zero, .mind = 0.2 },
    { .op = TG_OP_ERF, OT_DOM1(-2.5, 2.5), .f = ot_r_erf },
    { .op = TG_OP_ERFC, OT_DOM1(-2.5, 2.5), .f = ot_r_erfc },
    { .op = TG_OP_ABS, OT_DOM1(-3, 3), .f = ot_r_abs, .jump = ot_d_zero, .mind = 1e-2 },
    { .op = TG_OP_FLOOR, OT_DOM1(-3.5, 3.5), .f = ot_r_floor, .step = 1, .jump = ot_d_int, .mind = 1e-2 },
    { .op = TG_OP_CEIL, OT_DOM1(-3.5, 3.5), .f = ot_r_ceil, .step = 1, .jump = ot_d_int, .mind = 1e-2 },
    { .op = TG_OP_ROUND, OT_DOM1(-3.5, 3.5), .f = ot_r_round, .step = 1, .jump = ot_d_half, .mind = 1e-2 },
    { .op = TG_OP_TRUNC, OT_DOM1(-3.5, 3.5), .f = ot_r_trunc, .step = 1, .jump = ot_d_int, .mind = 1e-2 },
    { .op = TG_OP_FRACT, OT_DOM1(-3.5, 3.5), .f = ot_r_fract, .jump = ot_d_int, .mind = 1e-2 },
    { .op = TG_OP_SIGNUM, OT_DOM1(-3, 3), .f = ot_r_signum, .step = 1, .jump = ot_d_zero, .mind = 1e-2 },
};
#define OT_NCASES (sizeof ot_cases / sizeof ot_cases[0])
#undef OT_DOM1
#undef OT_DOM2
#undef OT_POWK

/* -------------------------------------------------------------- helpers */

TU_UNUSED static const char *ot_name(const ot_case *c)
{
    return tg_op_name(c->op);
}

TU_UNUSED static int ot_arity(const ot_case *c)
{
    return tg_op_arity(c->op);
}

/* Number of tape inputs of a row (operands that are not literals). */
TU_UNUSED static size_t ot_nin(const ot_case *c)
{
    size_t n = 0;
    for (int j = 0; j < ot_arity(c); j++)
        n += !c->lit[j];
    return n;
}

/* The row's op (C semantics) on the tape inputs x, literals filled in. */
TU_UNUSED static double ot_f(const double *x, const void *ctx)
{
    const ot_case *c = ctx;
    double o[3] = { 0, 0, 0 };
    size_t i = 0;
    for (int j = 0; j < ot_arity(c); j++)
        o[j] = c->lit[j] ? c->k[j] : x[i++];
    return c->f(o[0], o[1], o[2]);
}

/* "name [row r]" or "powk(x, c) [row r]" for messages. */
TU_UNUSED static void ot_label(char *buf, size_t len, const ot_case *c, size_t row)
{
    if (c->op == TG_OP_POWK)
        snprintf(buf, len, "%s(x, %g) [row %zu]", ot_name(c), c->k[1], row);
    else
        snprintf(buf, len, "%s [row %zu]", ot_name(c), row);
}

/* "label at (x0, x1, ...)" with every coordinate round-trip exact. */
TU_UNUSED static void ot_fmt_point(char *buf, size_t len, const char *label, size_t n,
                                   const double *x)
{
    int k = snprintf(buf, len, "%s at (", label);
    for (size_t j = 0; j < n && k > 0 && (size_t)k < len; j++)
        k += snprintf(buf + k, len - (size_t)k, "%s%.17g", j ? ", " : "", x[j]);
    if (k > 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, ")");
}

/* npts points of nin inputs each: the row's forced points first, then
 * uniform in the domain, at least c->mind away from any jump. */
TU_UNUSED static void ot_sample(const ot_case *c, tu_rng *rng, double *pts, size_t npts)
{
    size_t nin = ot_nin(c);
    for (size_t p = 0; p < npts; p++) {
        double *x = pts + p * nin;
        if ((int)p < c->nforced) {
            memcpy(x, c->forced[p], nin * sizeof *x);
            continue;
        }
        for (int tries = 0;; tries++) {
            size_t i = 0;
            for (int j = 0; j < ot_arity(c); j++)
                if (!c->lit[j])
                    x[i++] = tu_rng_range(rng, c->lo[j], c->hi[j]);
            if (!c->jump || c->jump(x) >= c->mind)
                break;
            cr_assert(tries < 1000, "cannot sample a point for %s", ot_name(c));
        }
    }
}

/* Records the row's op on the tape inputs x (literals in place). */
TU_UNUSED static tg_var ot_apply(const ot_case *c, const tg_var *x)
{
    if (c->op == TG_OP_POWK)
        return tg_pow(x[0], c->k[1]);
    tg_operand o[3];
    size_t i = 0;
    int ar = ot_arity(c);
    for (int j = 0; j < ar; j++)
        o[j] = c->lit[j] ? tg__opnd_num(c->k[j]) : tg__opnd_var(x[i++]);
    if (ar == 1)
        return tg_op1(c->op, o[0]);
    if (ar == 2)
        return tg_op2(c->op, o[0], o[1]);
    return tg_op3(c->op, o[0], o[1], o[2]);
}

/* The value y recorded by ot_apply really is the row's op on the tape
 * (not folded or rewritten away), with tg_op_arity(op) earlier operands:
 * the inputs x where they are operands and constants holding the literals. */
TU_UNUSED static void ot_expect_on_tape(const tg_tape *t, const ot_case *c, tg_var y,
                                        const tg_var *x)
{
    tg_insn in;
    TU_OK(tg_tape_insn(t, y.id, &in));
    int ar = ot_arity(c);
    cr_expect(in.op == c->op, "recording %s put \"%s\" on the tape", ot_name(c),
              tg_op_name(in.op) ? tg_op_name(in.op) : "?");
    cr_expect(in.noperands == (uint32_t)ar, "%s: %u operands on the tape, tg_op_arity %d",
              ot_name(c), (unsigned)in.noperands, ar);
    if (in.op != c->op || in.noperands != (uint32_t)ar)
        return;
    size_t i = 0;
    int comm = (tg_op_flags(c->op) & TG_OPF_COMMUTATIVE) != 0;
    for (int j = 0; j < ar; j++) {
        if (c->lit[j]) {
            /* a literal operand is a constant instruction with its bits */
            int found = 0;
            for (int q = 0; q < ar; q++) {
                tg_insn k;
                TU_OK(tg_tape_insn(t, in.operand[q], &k));
                found |= k.op == TG_OP_CONST && tu_same_bits(k.value, c->k[j]);
            }
            cr_expect(found, "%s: no operand is the constant %g", ot_name(c), c->k[j]);
            continue;
        }
        uint32_t want = x[i++].id;
        int ok = in.operand[j] == want || (comm && in.operand[1 - j] == want);
        cr_expect(ok, "%s: operand %d is %%%u, expected input %%%u", ot_name(c), j,
                  (unsigned)in.operand[j], (unsigned)want);
    }
}

/* Every op with operands has at least one row, leaves none; every row's
 * op is a real opcode.  who names the test file for the message. */
TU_UNUSED static void ot_check_rows(const char *who)
{
    cr_assert_eq(OT_NOPS, (size_t)TG_OP_COUNT, "ops.def expansion has %zu entries, TG_OP_COUNT %d",
                 OT_NOPS, (int)TG_OP_COUNT);
    for (size_t k = 0; k < OT_NCASES; k++)
        cr_expect((unsigned)ot_cases[k].op < TG_OP_COUNT && tg_op_arity(ot_cases[k].op) > 0,
                  "%s: row %zu has opcode %d, not an op with operands", who, k,
                  (int)ot_cases[k].op);
    for (size_t i = 0; i < OT_NOPS; i++) {
        cr_assert_eq(ot_all_ops[i], (int)i);
        int ar = tg_op_arity((tg_opcode)i);
        if (ar <= 0 || (tg_op_flags((tg_opcode)i) & TG_OPF_EXTENDED))
            continue;   /* extended instructions: tests/test_loops.c */
        size_t rows = 0;
        for (size_t k = 0; k < OT_NCASES; k++)
            rows += ot_cases[k].op == (tg_opcode)i;
        cr_expect(rows > 0, "%s: op %s (arity %d) has no row in tests/optable.h", who,
                  tg_op_name((tg_opcode)i), ar);
    }
}

#endif /* TAPEGEN_OPTABLE_H */
