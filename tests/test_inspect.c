/* tests/test_inspect.c -- the public read view of a tape's instructions:
 * tg_tape_insn, tg_output_ref, tg_input_ref and tg_op_flags.
 *
 * Every opcode recorded on inputs reads back with its opcode, operand count
 * and operand ids; constants read back bit for bit (signed zeros,
 * infinities, NaN payloads, subnormals); INPUT instructions name their flat
 * input index across several blocks; outputs name their instructions
 * (inputs and constants included).  Errors (NULL, index out of range) leave
 * the output untouched.  The flags are checked against what they promise
 * (commutative ops give the same bits with swapped operands, comparisons
 * give 0 or 1 with zero derivative).  Finally an interpreter written over
 * the read view alone reproduces tg_eval bit for bit on ordinary, derivative,
 * optimised and reloaded tapes: the view holds everything a tape means. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <float.h>
#include <unistd.h>

#include "testutil.h"
#include "tape/mathx.h"   /* tape_eval_op: the op semantics, for the interpreter */

/* Reads instruction i, asserting TG_OK. */
static tg_insn insn(const tg_tape *t, size_t i)
{
    tg_insn in;
    memset(&in, 0xA5, sizeof in);
    TU_OK(tg_tape_insn(t, i, &in));
    return in;
}

Test(inspect, every_opcode_reads_back)
{
    for (int op = 0; op < TG_OP_COUNT; op++) {
        int ar = tg_op_arity((tg_opcode)op);
        if (ar <= 0 || (tg_op_flags((tg_opcode)op) & TG_OPF_EXTENDED))
            continue;   /* extended instructions: test_loops.c */
        tg_tape *t = tu_tape(tg_op_name((tg_opcode)op), TG_NO_FOLD | TG_NO_CSE);
        tg_var x[3];
        tg_input_vec(t, "x", 3, x);
        tg_var y;
        if (op == TG_OP_POWK)      /* the internal op: recorded by tg_pow with a literal */
            y = tg_pow(x[0], 2.5);
        else if (ar == 1)
            y = tg_op1((tg_opcode)op, TG_OPND(x[0]));
        else if (ar == 2)
            y = tg_op2((tg_opcode)op, TG_OPND(x[1]), TG_OPND(x[0]));
        else
            y = tg_op3((tg_opcode)op, TG_OPND(x[2]), TG_OPND(x[0]), TG_OPND(x[1]));
        tg_output(t, "y", y);
        TU_TAPE_OK(t);
        const char *name = tg_op_name((tg_opcode)op);
        tg_insn in = insn(t, y.id);
        cr_expect_eq(in.op, (tg_opcode)op, "%s: read back as opcode %d", name, (int)in.op);
        cr_expect_eq(in.noperands, (uint32_t)ar, "%s: %u operands, arity %d", name,
                     (unsigned)in.noperands, ar);
        cr_expect(tu_same_bits(in.value, 0.0), "%s: value %s, expected +0", name, tu_d(in.value).s);
        cr_expect_eq(in.input, TG_NIL, "%s: input %u, expected TG_NIL", name, (unsigned)in.input);
        cr_expect_eq(in.body, TG_NIL, "%s: body %u, expected TG_NIL", name, (unsigned)in.body);
        /* operands in the order given, each an earlier instruction */
        if (op == TG_OP_POWK) {
            cr_expect_eq(in.operand[0], x[0].id, "powk: base %u", (unsigned)in.operand[0]);
            tg_insn k = insn(t, in.operand[1]);
            cr_expect(k.op == TG_OP_CONST && tu_same_bits(k.value, 2.5),
                      "powk: exponent is %s %s, expected const 2.5", tg_op_name(k.op),
                      tu_d(k.value).s);
        } else {
            const uint32_t want[3][3] = { { x[0].id }, { x[1].id, x[0].id },
                                          { x[2].id, x[0].id, x[1].id } };
            /* a commutative op's operands are in canonical (ascending) order */
            int swap = (tg_op_flags((tg_opcode)op) & TG_OPF_COMMUTATIVE) && ar == 2;
            for (int k = 0; k < ar; k++) {
                uint32_t w = want[ar - 1][swap ? 1 - k : k];
                cr_expect_eq(in.operand[k], w, "%s: operand %d is %%%u, expected %%%u", name, k,
                             (unsigned)in.operand[k], (unsigned)w);
            }
        }
        for (int k = 0; k < 3; k++) {
            if (k < ar)
                cr_expect(in.operand[k] < y.id, "%s: operand %d = %u not before %u", name, k,
                          (unsigned)in.operand[k], (unsigned)y.id);
            else
                cr_expect_eq(in.operand[k], TG_NIL, "%s: unused operand %d = %u, expected TG_NIL",
                             name, k, (unsigned)in.operand[k]);
        }
        cr_expect_eq(tg_output_ref(t, 0), y.id);
        tg_tape_free(t);
    }
}

Test(inspect, constants_bit_for_bit)
{
    const double ks[] = { 0.0, -0.0, 1.0, -2.5, 0.1, INFINITY, -INFINITY, NAN, -NAN,
                          tu_from_bits(0x7ff0000000000123ull),     /* signalling payload */
                          tu_from_bits(0xfff8dead0000beefull), 4.9406564584124654e-324,
                          -2.2250738585072009e-308, DBL_MIN, DBL_MAX, -DBL_MAX, 1e-300 };
    const size_t nk = sizeof ks / sizeof ks[0];
    tg_tape *t = tu_tape("k", 0);
    tg_var x = tg_input(t, "x");
    tg_var ids[sizeof ks / sizeof ks[0]];
    for (size_t j = 0; j < nk; j++)
        ids[j] = tg_const(t, ks[j]);
    tg_output_vec(t, "k", nk, ids);
    tg_output(t, "x", x);
    TU_TAPE_OK(t);
    for (size_t j = 0; j < nk; j++) {
        cr_assert_eq(tg_output_ref(t, j), ids[j].id);
        tg_insn in = insn(t, ids[j].id);
        cr_expect_eq(in.op, TG_OP_CONST, "constant %zu read as %s", j, tg_op_name(in.op));
        cr_expect_eq(in.noperands, 0u);
        cr_expect(tu_same_bits(in.value, ks[j]), "constant %zu: %s, recorded %s", j,
                  tu_d(in.value).s, tu_d(ks[j]).s);
        cr_expect_eq(in.input, TG_NIL);
        cr_expect_eq(in.body, TG_NIL);
        for (int k = 0; k < 3; k++)
            cr_expect_eq(in.operand[k], TG_NIL, "constant %zu: operand %d set", j, k);
    }
    /* an output that is an input reads back as that input */
    cr_expect_eq(tg_output_ref(t, nk), x.id);
    tg_tape_free(t);
}

Test(inspect, blocks_inputs_and_outputs)
{
    tg_tape *t = tu_tape("blocks", 0);
    tg_var a[2], p[3];
    tg_input_vec(t, "a", 2, a);
    tg_var s = tg_sin(a[1]);              /* an operation between two input blocks */
    tg_input_vec(t, "p", 3, p);
    tg_var q = tg_input(t, "q");
    tg_var y[4] = { tg_mul(s, p[2]), q, a[0], tg_const(t, 7.0) };
    tg_output_vec(t, "y", 4, y);
    tg_output(t, "z", s);
    TU_TAPE_OK(t);
    const tg_var in[6] = { a[0], a[1], p[0], p[1], p[2], q };
    cr_assert_eq(tg_num_inputs(t), 6);
    for (size_t k = 0; k < 6; k++) {
        cr_expect_eq(tg_input_ref(t, k), in[k].id, "input %zu: ref %u, recorded %u", k,
                     (unsigned)tg_input_ref(t, k), (unsigned)in[k].id);
        tg_insn r = insn(t, in[k].id);
        cr_expect_eq(r.op, TG_OP_INPUT, "input %zu read as %s", k, tg_op_name(r.op));
        cr_expect_eq(r.input, (uint32_t)k, "input %zu: index %u", k, (unsigned)r.input);
        cr_expect(tu_same_bits(r.value, 0.0) && r.noperands == 0 && r.body == TG_NIL);
    }
    /* the flat index against the block layout */
    tg_insn r = insn(t, p[1].id);
    size_t b = (size_t)tg_input_block_index(t, "p");
    cr_expect(r.input >= tg_input_block_offset(t, b) &&
                  r.input - tg_input_block_offset(t, b) == 1,
              "p[1] has flat index %u, block p at %zu", (unsigned)r.input,
              tg_input_block_offset(t, b));
    const uint32_t out[5] = { y[0].id, q.id, a[0].id, y[3].id, s.id };
    cr_assert_eq(tg_num_outputs(t), 5);
    for (size_t j = 0; j < 5; j++)
        cr_expect_eq(tg_output_ref(t, j), out[j], "output %zu: ref %u, recorded %u", j,
                     (unsigned)tg_output_ref(t, j), (unsigned)out[j]);
    cr_expect_eq(tg_output_ref(t, 5), TG_NIL);
    cr_expect_eq(tg_output_ref(t, SIZE_MAX), TG_NIL);
    cr_expect_eq(tg_input_ref(t, 6), TG_NIL);
    cr_expect_eq(tg_input_ref(t, SIZE_MAX), TG_NIL);
    cr_expect_eq(tg_output_ref(NULL, 0), TG_NIL);
    cr_expect_eq(tg_input_ref(NULL, 0), TG_NIL);
    tg_tape_free(t);
}

Test(inspect, errors_leave_output_untouched)
{
    tg_tape *t = tu_tape("err", 0);
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", tg_exp(x));
    TU_TAPE_OK(t);
    tg_insn in, sentinel;
    memset(&sentinel, 0x5A, sizeof sentinel);
    const size_t bad[] = { tg_tape_size(t), tg_tape_size(t) + 1, (size_t)UINT32_MAX, SIZE_MAX };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        in = sentinel;
        cr_expect_eq(tg_tape_insn(t, bad[k], &in), TG_ERR_ARG, "index %zu accepted", bad[k]);
        cr_expect(memcmp(&in, &sentinel, sizeof in) == 0, "index %zu: output written", bad[k]);
        cr_expect(strstr(tg_last_error(), "out of range") != NULL,
                  "index %zu: message \"%s\" does not say out of range", bad[k], tg_last_error());
    }
    in = sentinel;
    cr_expect_eq(tg_tape_insn(NULL, 0, &in), TG_ERR_ARG);
    cr_expect(memcmp(&in, &sentinel, sizeof in) == 0, "NULL tape: output written");
    cr_expect(strstr(tg_last_error(), "NULL") != NULL, "message: %s", tg_last_error());
    cr_expect_eq(tg_tape_insn(t, 0, NULL), TG_ERR_ARG);
    cr_expect(strstr(tg_last_error(), "NULL") != NULL, "message: %s", tg_last_error());
    /* an empty tape has no instruction 0 */
    tg_tape *e = tu_tape("empty", 0);
    in = sentinel;
    cr_expect_eq(tg_tape_insn(e, 0, &in), TG_ERR_ARG);
    cr_expect(memcmp(&in, &sentinel, sizeof in) == 0);
    tg_tape_free(e);
    /* the tape itself is unaffected: still TG_OK and readable */
    TU_TAPE_OK(t);
    cr_expect_eq(insn(t, 1).op, TG_OP_EXP);
    tg_tape_free(t);
}

Test(inspect, tape_in_error_state_stays_readable)
{
    tg_tape *t = tu_tape("sticky", 0);
    tg_var x = tg_input(t, "x");
    tg_var s = tg_sqrt(x);
    tg_input(t, "x");                      /* duplicate block name: sticky TG_ERR_ARG */
    cr_assert_eq(tg_tape_status(t), TG_ERR_ARG);
    cr_assert_eq(tg_tape_size(t), 2);
    cr_expect_eq(insn(t, 0).op, TG_OP_INPUT);
    tg_insn in = insn(t, s.id);
    cr_expect(in.op == TG_OP_SQRT && in.operand[0] == x.id, "sqrt %%0 expected, got %s %u",
              tg_op_name(in.op), (unsigned)in.operand[0]);
    tg_tape_free(t);
}

Test(inspect, op_flags)
{
    for (int op = 0; op < TG_OP_COUNT; op++) {
        unsigned f = tg_op_flags((tg_opcode)op), want = 0;
        switch (op) {
        case TG_OP_ADD: case TG_OP_MUL: case TG_OP_AZMUL:
            want = TG_OPF_COMMUTATIVE;
            break;
        case TG_OP_LT: case TG_OP_LE: case TG_OP_GT: case TG_OP_GE:
            want = TG_OPF_COMPARISON;
            break;
        case TG_OP_POWK: case TG_OP_POWDX: case TG_OP_POWDY: case TG_OP_ATAN2DX:
        case TG_OP_HYPOTDX:
            want = TG_OPF_INTERNAL;
            break;
        case TG_OP_MAP: case TG_OP_SCAN: case TG_OP_CALL:
            want = TG_OPF_EXTENDED | TG_OPF_MULTI;
            break;
        case TG_OP_XOUT:
            want = TG_OPF_EXTENDED | TG_OPF_INTERNAL;
            break;
        case TG_OP_GUARD:
            want = TG_OPF_INTERNAL | TG_OPF_GUARD;
            break;
        default:
            break;
        }
        cr_expect_eq(f, want, "tg_op_flags(%s) = %#x, expected %#x", tg_op_name((tg_opcode)op), f,
                     want);
    }
    cr_expect_eq(tg_op_flags(TG_OP_COUNT), 0u);
    cr_expect_eq(tg_op_flags((tg_opcode)-1), 0u);
    /* the flags are distinct bits, apart from the joint-tape parts' names */
    cr_expect((TG_OPF_COMMUTATIVE & TG_OPF_COMPARISON) == 0 &&
              (TG_OPF_COMMUTATIVE & TG_OPF_INTERNAL) == 0 &&
              (TG_OPF_COMPARISON & TG_OPF_INTERNAL) == 0);

    /* what they promise, at points with signed zeros, infinities and NaN */
    const double pts[] = { 0.0, -0.0, 1.5, -2.0, INFINITY, -INFINITY, NAN, 5e-324 };
    const size_t np = sizeof pts / sizeof pts[0];
    for (int op = 0; op < TG_OP_COUNT; op++) {
        unsigned f = tg_op_flags((tg_opcode)op);
        if (!(f & (TG_OPF_COMMUTATIVE | TG_OPF_COMPARISON)))
            continue;
        tg_tape *t = tu_tape("flag", TG_NO_FOLD | TG_NO_CSE);
        tg_var a = tg_input(t, "a"), b = tg_input(t, "b");
        tg_output(t, "y", tg_op2((tg_opcode)op, TG_OPND(a), TG_OPND(b)));
        TU_TAPE_OK(t);
        for (size_t i = 0; i < np; i++)
            for (size_t j = 0; j < np; j++) {
                double ab[2] = { pts[i], pts[j] }, ba[2] = { pts[j], pts[i] }, y1, y2, g[2];
                TU_OK(tg_eval(t, ab, &y1));
                TU_OK(tg_eval(t, ba, &y2));
                if (f & TG_OPF_COMMUTATIVE)
                    cr_expect(tu_same_bits_nan(y1, y2), "%s(%g, %g) = %s but swapped %s",
                              tg_op_name((tg_opcode)op), ab[0], ab[1], tu_d(y1).s, tu_d(y2).s);
                if (f & TG_OPF_COMPARISON) {
                    cr_expect(tu_same_bits(y1, 0.0) || tu_same_bits(y1, 1.0),
                              "%s(%g, %g) = %s, expected 0 or 1", tg_op_name((tg_opcode)op),
                              ab[0], ab[1], tu_d(y1).s);
                    TU_OK(tg_gradient(t, ab, g));
                    cr_expect(g[0] == 0.0 && g[1] == 0.0, "%s: gradient (%g, %g) at (%g, %g)",
                              tg_op_name((tg_opcode)op), g[0], g[1], ab[0], ab[1]);
                }
            }
        tg_tape_free(t);
    }
}

/* ---------------------------------- an interpreter over the read view */

/* y = t(x) computed from tg_tape_insn and tg_output_ref alone. */
static void view_eval(const tg_tape *t, const double *x, double *y)
{
    size_t n = tg_tape_size(t);
    double *v = malloc((n + 1) * sizeof *v);
    cr_assert(v != NULL);
    for (size_t i = 0; i < n; i++) {
        tg_insn in = insn(t, i);
        cr_assert((unsigned)in.op < TG_OP_COUNT, "instruction %zu: opcode %d", i, (int)in.op);
        if (in.op == TG_OP_CONST) {
            v[i] = in.value;
        } else if (in.op == TG_OP_INPUT) {
            cr_assert(in.input < tg_num_inputs(t));
            v[i] = x[in.input];
        } else {
            double o[3] = { 0, 0, 0 };
            for (uint32_t k = 0; k < in.noperands; k++) {
                cr_assert(in.operand[k] < i, "instruction %zu: operand %u = %u not earlier", i, k,
                          (unsigned)in.operand[k]);
                o[k] = v[in.operand[k]];
            }
            v[i] = tape_eval_op(in.op, o[0], o[1], o[2]);
        }
    }
    for (size_t j = 0; j < tg_num_outputs(t); j++)
        y[j] = v[tg_output_ref(t, j)];
    free(v);
}

static void check_view_eval(const tg_tape *t, const char *what)
{
    TU_TAPE_OK(t);
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *x = malloc((n + 1) * sizeof *x), *y1 = malloc((m + 1) * sizeof *y1);
    double *y2 = malloc((m + 1) * sizeof *y2);
    cr_assert(x && y1 && y2);
    tu_rng rng = { 0x1A5EC7 };
    for (int p = 0; p < 6; p++) {
        for (size_t j = 0; j < n; j++)
            x[j] = p == 5 ? (j % 2 ? -0.0 : 0.0) : tu_rng_range(&rng, -2.0, 2.0);
        TU_OK(tg_eval(t, x, y1));
        view_eval(t, x, y2);
        for (size_t i = 0; i < m; i++)
            cr_expect(tu_same_bits_nan(y1[i], y2[i]), "%s, point %d, output %zu: tg_eval %s, "
                      "interpreter over tg_tape_insn %s", what, p, i, tu_d(y1[i]).s,
                      tu_d(y2[i]).s);
    }
    free(x);
    free(y1);
    free(y2);
}

Test(inspect, interpreter_over_the_view_matches_tg_eval)
{
    tg_tape *f = tu_tape("f", 0);
    tg_var x[3], p[2];
    tg_input_vec(f, "x", 3, x);
    tg_input_vec(f, "p", 2, p);
    tg_var r = tg_add(tg_mul(tg_sin(x[0]), tg_pow(x[1], 3.0)), tg_div(tg_exp(x[2]), 1.5));
    r = tg_add(r, tg_select(tg_gt(x[0], p[0]), tg_hypot(x[1], p[1]), tg_atan2(p[1], x[2])));
    r = tg_add(r, tg_max(tg_abs(x[2]), tg_min(p[0], -0.0)));
    tg_var ys[3] = { r, tg_sqrt(tg_add(tg_mul(x[0], x[0]), 1.0)), tg_const(f, -0.0) };
    tg_output_vec(f, "y", 3, ys);
    tg_output(f, "s", tg_norm2(2, p));
    check_view_eval(f, "recorded tape");

    tg_tape *s = tu_tape("s", 0);
    tg_var xs[2];
    tg_input_vec(s, "x", 2, xs);
    tg_output(s, "y", tg_mul(tg_cos(xs[0]), tg_log1p(tg_mul(xs[0], xs[1]))));
    tg_tape *d[4] = { tg_jacobian_tape(f, TG_ALL), tg_jvp_tape(f, 0), tg_vjp_tape(f, 1),
                      tg_hvp_tape(s, TG_ALL) };
    const char *dn[4] = { "jacobian tape", "jvp tape", "vjp tape", "hvp tape" };
    tg_tape *hs = tg_hessian_tape(s, TG_ALL);
    check_view_eval(hs, "hessian tape");
    for (int k = 0; k < 4; k++)
        check_view_eval(d[k], dn[k]);

    TU_OK(tg_tape_optimize(d[0], TG_OPT_MAX));
    check_view_eval(d[0], "optimised jacobian tape");

    char path[] = "/tmp/tg_inspect_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    TU_OK(tg_tape_save(f, path));
    tg_tape *l = tg_tape_load(path);
    unlink(path);
    cr_assert(l != NULL);
    check_view_eval(l, "reloaded tape");

    tg_tape_free(l);
    for (int k = 0; k < 4; k++)
        tg_tape_free(d[k]);
    tg_tape_free(hs);
    tg_tape_free(s);
    tg_tape_free(f);
}
