/* tests/test_cse.c -- the recorder's hash-consing (src/tape/cse.c) gives
 * exactly the tape of a reference CSE, and the fast option (TG_NO_CSE, CSE
 * deferred to tg_tape_optimize) gives the same optimised tape.
 *
 * Oracle: each function is recorded twice, with the defaults and with
 * TG_NO_CSE.  A naive quadratic value numbering written here (no hashing:
 * a linear search over the instructions kept so far) is applied to the
 * TG_NO_CSE tape, in order; its result must equal the default recording
 * instruction by instruction (op, operand ids, constant bits) and output by
 * output.  The functions: the benchmark workloads at small sizes (W1
 * Rosenbrock, a W2-like MLP, W3 Lorenz RK4) -- large enough that the
 * tables grow several times -- and two that stress the table's layout: a
 * value that is the newest operand of hundreds of instructions (its probe
 * window overflows to the global table), and many distinct constants,
 * each recorded twice so both lookups hit.  No select(c, b, b) appears:
 * that fold depends on CSE having merged b with its duplicate. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegen.h"

typedef struct ref_insn {
    tg_opcode op;
    uint32_t a, b, c;
    uint64_t kbits;
} ref_insn;

static uint64_t
bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static ref_insn
insn_of(const tg_tape *t, size_t i)
{
    tg_insn in;
    cr_assert_eq(tg_tape_insn(t, i, &in), TG_OK);
    ref_insn r = { in.op, TG_NIL, TG_NIL, TG_NIL, 0 };
    if (in.noperands > 0) r.a = in.operand[0];
    if (in.noperands > 1) r.b = in.operand[1];
    if (in.noperands > 2) r.c = in.operand[2];
    if (in.op == TG_OP_CONST) r.kbits = bits(in.value);
    if (in.op == TG_OP_INPUT) r.a = in.input;
    return r;
}

static bool
same(ref_insn x, ref_insn y)
{
    return x.op == y.op && x.a == y.a && x.b == y.b && x.c == y.c && x.kbits == y.kbits;
}

/* Reference CSE of a tape recorded without it: map[i] is the id of u's
 * instruction i in the result. */
static void
reference_cse(const tg_tape *u, ref_insn **out, size_t *nout, uint32_t *map)
{
    size_t n = tg_tape_size(u), m = 0;
    ref_insn *r = malloc((n ? n : 1) * sizeof *r);
    cr_assert_not_null(r);
    for (size_t i = 0; i < n; i++) {
        ref_insn x = insn_of(u, i);
        if (x.op != TG_OP_CONST && x.op != TG_OP_INPUT) {
            if (x.a != TG_NIL) x.a = map[x.a];
            if (x.b != TG_NIL) x.b = map[x.b];
            if (x.c != TG_NIL) x.c = map[x.c];
            if ((tg_op_flags(x.op) & TG_OPF_COMMUTATIVE) && x.b < x.a) {
                uint32_t s = x.a;
                x.a = x.b;
                x.b = s;
            }
        }
        size_t j = 0;
        if (x.op != TG_OP_INPUT)
            while (j < m && !same(r[j], x))
                j++;
        else
            j = m;
        if (j == m)
            r[m++] = x;
        map[i] = (uint32_t)j;
    }
    *out = r;
    *nout = m;
}

typedef tg_tape *(*recorder)(unsigned flags);

static void
check_against_reference(recorder rec, const char *what)
{
    tg_tape *t = rec(0), *u = rec(TG_NO_CSE);
    cr_assert(t && u && tg_tape_status(t) == TG_OK && tg_tape_status(u) == TG_OK, "%s", what);
    uint32_t *map = malloc(tg_tape_size(u) * sizeof *map);
    cr_assert_not_null(map);
    ref_insn *r;
    size_t m;
    reference_cse(u, &r, &m, map);
    cr_assert_eq(tg_tape_size(t), m, "%s: %zu instructions, the reference has %zu", what,
                 tg_tape_size(t), m);
    for (size_t i = 0; i < m; i++) {
        ref_insn x = insn_of(t, i);
        cr_assert(same(x, r[i]), "%s: instruction %zu: op %d (%u %u %u) vs reference op %d "
                  "(%u %u %u)", what, i, (int)x.op, x.a, x.b, x.c, (int)r[i].op, r[i].a,
                  r[i].b, r[i].c);
    }
    cr_assert_eq(tg_num_outputs(t), tg_num_outputs(u));
    for (size_t j = 0; j < tg_num_outputs(t); j++)
        cr_assert_eq(tg_output_ref(t, j), map[tg_output_ref(u, j)], "%s: output %zu", what, j);
    free(r);
    free(map);
    tg_tape_free(t);
    tg_tape_free(u);
}

/* ------------------------------------------------------------ functions */

static tg_tape *
rosenbrock(unsigned flags)
{
    enum { N = 700 };
    tg_tape *t = tg_tape_new_ex("rosenbrock", flags);
    tg_var x[N];
    tg_input_vec(t, "x", N, x);
    tg_var acc = x[0];
    for (size_t i = 0; i + 1 < N; i++) {
        tg_var d = tg_sub(x[i + 1], tg_mul(x[i], x[i]));
        tg_var e = tg_sub(1.0, x[i]);
        tg_var term = tg_add(tg_mul(tg_mul(100.0, d), d), tg_mul(e, e));
        acc = i == 0 ? term : tg_add(acc, term);
    }
    tg_output(t, "f", acc);
    return t;
}

static tg_tape *
mlp(unsigned flags)
{
    enum { S = 6, IN = 4, H = 12 };
    tg_tape *t = tg_tape_new_ex("mlp", flags);
    tg_var w1[H * IN], w2[H * H], w3[H], h1[H], h2[H], loss = { NULL, TG_NIL };
    tg_input_vec(t, "w1", H * IN, w1);
    tg_input_vec(t, "w2", H * H, w2);
    tg_input_vec(t, "w3", H, w3);
    for (int s = 0; s < S; s++) {
        for (int i = 0; i < H; i++) {
            tg_var a = tg_mul(w1[i * IN], 0.25 * s - 0.5);
            for (int j = 1; j < IN; j++)
                a = tg_add(a, tg_mul(w1[i * IN + j], (double)((s * 7 + j * 3) % 5) - 2.0));
            h1[i] = tg_tanh(a);
        }
        for (int i = 0; i < H; i++) {
            tg_var a = tg_mul(w2[i * H], h1[0]);
            for (int j = 1; j < H; j++)
                a = tg_add(a, tg_mul(w2[i * H + j], h1[j]));
            h2[i] = tg_tanh(a);
        }
        tg_var y = tg_mul(w3[0], h2[0]);
        for (int j = 1; j < H; j++)
            y = tg_add(y, tg_mul(w3[j], h2[j]));
        tg_var e = tg_sub(y, 0.1 * s);
        loss = s == 0 ? tg_mul(e, e) : tg_add(loss, tg_mul(e, e));
    }
    tg_output(t, "loss", tg_mul(loss, 1.0 / S));
    return t;
}

static tg_tape *
lorenz(unsigned flags)
{
    tg_tape *t = tg_tape_new_ex("lorenz", flags);
    const double dt = 0.01, h2 = 0.005, h6 = dt / 6.0;
    tg_var u[6];
    tg_input_vec(t, "u", 6, u);
    tg_var x = u[0], y = u[1], z = u[2], sig = u[3], rho = u[4], beta = u[5];
    for (int k = 0; k < 40; k++) {
        tg_var kx[4], ky[4], kz[4], tx = x, ty = y, tz = z;
        for (int s = 0; s < 4; s++) {
            kx[s] = tg_mul(sig, tg_sub(ty, tx));
            ky[s] = tg_sub(tg_mul(tx, tg_sub(rho, tz)), ty);
            kz[s] = tg_sub(tg_mul(tx, ty), tg_mul(beta, tz));
            double h = s < 2 ? h2 : dt;
            if (s < 3) {
                tx = tg_add(x, tg_mul(h, kx[s]));
                ty = tg_add(y, tg_mul(h, ky[s]));
                tz = tg_add(z, tg_mul(h, kz[s]));
            }
        }
        x = tg_add(x, tg_mul(h6, tg_add(tg_add(tg_add(kx[0], tg_mul(2.0, kx[1])),
                                               tg_mul(2.0, kx[2])), kx[3])));
        y = tg_add(y, tg_mul(h6, tg_add(tg_add(tg_add(ky[0], tg_mul(2.0, ky[1])),
                                               tg_mul(2.0, ky[2])), ky[3])));
        z = tg_add(z, tg_mul(h6, tg_add(tg_add(tg_add(kz[0], tg_mul(2.0, kz[1])),
                                               tg_mul(2.0, kz[2])), kz[3])));
    }
    tg_output(t, "f", tg_add(tg_add(tg_mul(x, x), tg_mul(y, y)), tg_mul(z, z)));
    return t;
}

/* z is the newest operand of 3 * 400 instructions, each recorded twice:
 * its window holds 16 of them, the rest go to the global table. */
static tg_tape *
fanout(unsigned flags)
{
    enum { N = 400 };
    tg_tape *t = tg_tape_new_ex("fanout", flags);
    tg_var x[N], y[3 * N];
    tg_input_vec(t, "x", N, x);
    tg_var z = tg_sin(x[0]);
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < N; i++) {
            y[3 * i] = tg_mul(x[i], z);
            y[3 * i + 1] = tg_sub(x[(i * 7) % N], z);
            y[3 * i + 2] = tg_select(x[i], z, x[(i + 1) % N]);
        }
    tg_output_vec(t, "y", 3 * N, y);
    return t;
}

/* 3000 distinct constants (and +-0, NaN), each used twice. */
static tg_tape *
constants(unsigned flags)
{
    enum { N = 3000 };
    tg_tape *t = tg_tape_new_ex("constants", flags);
    tg_var x, acc;
    tg_input_vec(t, "x", 1, &x);
    acc = x;
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < N; i++) {
            double k = i == 0 ? 0.0 : i == 1 ? -0.0 : i == 2 ? NAN : 1.0 + i / 4096.0;
            acc = tg_add(tg_mul(acc, x), tg_const(t, k));
        }
    tg_output(t, "acc", acc);
    return t;
}

Test(cse, rosenbrock_equals_reference) { check_against_reference(rosenbrock, "rosenbrock"); }
Test(cse, mlp_equals_reference)        { check_against_reference(mlp, "mlp"); }
Test(cse, lorenz_equals_reference)     { check_against_reference(lorenz, "lorenz"); }
Test(cse, fanout_equals_reference)     { check_against_reference(fanout, "fanout"); }
Test(cse, constants_equal_reference)   { check_against_reference(constants, "constants"); }

/* The fast option: recording with TG_NO_CSE and then tg_tape_optimize at
 * TG_OPT_BASIC (which re-records through the recorder with CSE) gives the
 * disassembly of the default recording optimised the same way, and, as
 * these functions have no dead code, as many instructions as the default
 * recording itself. */
static void
check_deferred(recorder rec, const char *what)
{
    tg_tape *t = rec(0), *u = rec(TG_NO_CSE);
    cr_assert(t && u);
    size_t n = tg_tape_size(t);
    cr_assert_geq(tg_tape_size(u), n, "%s", what);
    cr_assert_eq(tg_tape_optimize(t, TG_OPT_BASIC), TG_OK);
    cr_assert_eq(tg_tape_optimize(u, TG_OPT_BASIC), TG_OK);
    cr_assert_eq(tg_tape_size(u), n, "%s: %zu after optimising, %zu recorded with CSE", what,
                 tg_tape_size(u), n);
    char *dt = tg_tape_disasm(t), *du = tg_tape_disasm(u);
    cr_assert(dt && du);
    cr_assert_str_eq(du, dt, "%s", what);
    free(dt);
    free(du);
    tg_tape_free(t);
    tg_tape_free(u);
}

Test(cse, deferred_rosenbrock) { check_deferred(rosenbrock, "rosenbrock"); }
Test(cse, deferred_mlp)        { check_deferred(mlp, "mlp"); }
Test(cse, deferred_lorenz)     { check_deferred(lorenz, "lorenz"); }
Test(cse, deferred_fanout)     { check_deferred(fanout, "fanout"); }
