/* tests/derivutil.h -- helpers for the derivative-tape, optimiser and
 * tg_call tests (test_derive.c, test_optimize.c, test_call.c), on top of
 * testutil.h: evaluation wrappers that assert TG_OK, the block layout a
 * derivative tape must have (include/tapegen.h, section "derivative
 * tapes"), the instructions a tape holds (through tg_tape_insn), and a
 * runner for a function in a
 * thread with a small stack (global rule 4).  Everything is static. */
#ifndef TAPEGEN_DERIVUTIL_H
#define TAPEGEN_DERIVUTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <pthread.h>

#include "testutil.h"

/* ------------------------------------------------------------ evaluation */

/* y = t(x), asserting TG_OK. */
#define du_eval(t, x, y) TU_OK(tg_eval((t), (x), (y)))

/* x ++ e: the first n scalars of x then the e scalars of e, into out. */
TU_UNUSED static void du_concat(double *out, const double *x, size_t n, const double *e, size_t ne)
{
    memcpy(out, x, n * sizeof *x);
    if (ne)
        memcpy(out + n, e, ne * sizeof *e);
}

/* Second-order agreement: within rtol relative, plus an absolute slack of
 * rtol * scale for sums that cancel (scale: the magnitude of the terms).
 * NaN matches only NaN and an infinity only the same infinity. */
TU_UNUSED static int du_close2(double a, double b, double rtol, double scale)
{
    return tu_close(a, b, rtol, rtol * scale + 1e-300);
}

/* Largest finite magnitude in v[0..n) (at least 1). */
TU_UNUSED static double du_scale(const double *v, size_t n)
{
    double s = 1.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            s = fmax(s, fabs(v[i]));
    return s;
}

/* ---------------------------------------------------------- wrt and layout */

/* The input scalars [*lo, *lo + *nw) that wrt selects in f. */
TU_UNUSED static void du_wrt_range(const tg_tape *f, int wrt, size_t *lo, size_t *nw)
{
    if (wrt == TG_ALL) {
        *lo = 0;
        *nw = tg_num_inputs(f);
    } else {
        *lo = tg_input_block_offset(f, (size_t)wrt);
        *nw = tg_input_block_size(f, (size_t)wrt);
    }
}

/* The documented name of the extra block: base, or base_2, base_3, ... if
 * f already has an input block of that name. */
TU_UNUSED static void du_extra_name(const tg_tape *f, const char *base, char *buf, size_t len)
{
    snprintf(buf, len, "%s", base);
    for (int k = 2; tg_input_block_index(f, buf) >= 0; k++)
        snprintf(buf, len, "%s_%d", base, k);
}

/* Asserts the layout of a derivative tape d of f: status OK, named
 * "<f>_<suffix>", f's input blocks first (same names, sizes, offsets), then
 * the extra block (extra_base != NULL: named per du_extra_name, extra_size
 * scalars), and exactly one output block out_name of out_size scalars. */
TU_UNUSED static void du_check_layout(const tg_tape *d, const tg_tape *f, const char *suffix,
                                      const char *extra_base, size_t extra_size,
                                      const char *out_name, size_t out_size)
{
    cr_assert(d != NULL, "derivative tape %s of \"%s\" is NULL", suffix, tg_tape_name(f));
    cr_assert(tg_tape_status(d) == TG_OK, "derivative tape %s of \"%s\" in error %d: %s", suffix,
              tg_tape_name(f), (int)tg_tape_status(d), tg_tape_error(d));
    char want[600];
    snprintf(want, sizeof want, "%s_%s", tg_tape_name(f), suffix);
    cr_expect_str_eq(tg_tape_name(d), want, "derivative tape name \"%s\", expected \"%s\"",
                     tg_tape_name(d), want);
    size_t nb = tg_num_input_blocks(f);
    cr_assert_eq(tg_num_input_blocks(d), nb + (extra_base ? 1 : 0),
                 "%s: %zu input blocks, expected %zu", want, tg_num_input_blocks(d),
                 nb + (extra_base ? 1 : 0));
    for (size_t b = 0; b < nb; b++) {
        cr_expect_str_eq(tg_input_block_name(d, b), tg_input_block_name(f, b),
                         "%s: input block %zu is \"%s\", f's is \"%s\"", want, b,
                         tg_input_block_name(d, b), tg_input_block_name(f, b));
        cr_expect_eq(tg_input_block_size(d, b), tg_input_block_size(f, b),
                     "%s: input block %zu has %zu scalars, f's %zu", want, b,
                     tg_input_block_size(d, b), tg_input_block_size(f, b));
        cr_expect_eq(tg_input_block_offset(d, b), tg_input_block_offset(f, b),
                     "%s: input block %zu at offset %zu, f's at %zu", want, b,
                     tg_input_block_offset(d, b), tg_input_block_offset(f, b));
    }
    size_t n = tg_num_inputs(f);
    if (extra_base) {
        char en[300];
        du_extra_name(f, extra_base, en, sizeof en);
        cr_expect_str_eq(tg_input_block_name(d, nb), en, "%s: extra block \"%s\", expected \"%s\"",
                         want, tg_input_block_name(d, nb), en);
        cr_expect_eq(tg_input_block_size(d, nb), extra_size,
                     "%s: extra block has %zu scalars, expected %zu", want,
                     tg_input_block_size(d, nb), extra_size);
        cr_expect_eq(tg_input_block_offset(d, nb), n, "%s: extra block at %zu, expected %zu",
                     want, tg_input_block_offset(d, nb), n);
        n += extra_size;
    }
    cr_expect_eq(tg_num_inputs(d), n, "%s: %zu inputs, expected %zu", want, tg_num_inputs(d), n);
    cr_assert_eq(tg_num_output_blocks(d), 1, "%s: %zu output blocks, expected exactly 1", want,
                 tg_num_output_blocks(d));
    cr_expect_str_eq(tg_output_block_name(d, 0), out_name, "%s: output block \"%s\", expected \"%s\"",
                     want, tg_output_block_name(d, 0), out_name);
    cr_expect_eq(tg_output_block_size(d, 0), out_size, "%s: output block has %zu scalars, expected %zu",
                 want, tg_output_block_size(d, 0), out_size);
    cr_expect_eq(tg_num_outputs(d), out_size, "%s: %zu outputs, expected %zu", want,
                 tg_num_outputs(d), out_size);
}

/* Two tapes have the same input and output blocks (names, sizes, offsets). */
TU_UNUSED static void du_check_same_blocks(const tg_tape *a, const tg_tape *b, const char *what)
{
    cr_assert_eq(tg_num_input_blocks(a), tg_num_input_blocks(b), "%s: input block count", what);
    cr_assert_eq(tg_num_output_blocks(a), tg_num_output_blocks(b), "%s: output block count", what);
    cr_expect_eq(tg_num_inputs(a), tg_num_inputs(b), "%s: input count", what);
    cr_expect_eq(tg_num_outputs(a), tg_num_outputs(b), "%s: output count", what);
    for (size_t i = 0; i < tg_num_input_blocks(a); i++) {
        cr_expect_str_eq(tg_input_block_name(a, i), tg_input_block_name(b, i),
                         "%s: input block %zu name", what, i);
        cr_expect_eq(tg_input_block_size(a, i), tg_input_block_size(b, i),
                     "%s: input block %zu size", what, i);
        cr_expect_eq(tg_input_block_offset(a, i), tg_input_block_offset(b, i),
                     "%s: input block %zu offset", what, i);
    }
    for (size_t i = 0; i < tg_num_output_blocks(a); i++) {
        cr_expect_str_eq(tg_output_block_name(a, i), tg_output_block_name(b, i),
                         "%s: output block %zu name", what, i);
        cr_expect_eq(tg_output_block_size(a, i), tg_output_block_size(b, i),
                     "%s: output block %zu size", what, i);
        cr_expect_eq(tg_output_block_offset(a, i), tg_output_block_offset(b, i),
                     "%s: output block %zu offset", what, i);
    }
}

/* ------------------------------------------------------- instructions */

/* The instructions of a tape, read through the public instruction view
 * (tg_tape_insn, tg_output_ref), and its disassembly for messages. */
typedef struct du_prog {
    size_t n, nout;
    tg_insn *inst;
    uint32_t *out;     /* the instruction of every output scalar */
    char *text;        /* the disassembly (malloc'd), for messages only */
} du_prog;

TU_UNUSED static du_prog du_parse(const tg_tape *t)
{
    du_prog p;
    memset(&p, 0, sizeof p);
    p.text = tg_tape_disasm(t);
    cr_assert(p.text != NULL, "tg_tape_disasm returned NULL");
    p.n = tg_tape_size(t);
    p.nout = tg_num_outputs(t);
    p.inst = calloc(p.n + 1, sizeof *p.inst);
    p.out = calloc(p.nout + 1, sizeof *p.out);
    cr_assert(p.inst && p.out, "out of memory");
    for (size_t i = 0; i < p.n; i++)
        TU_OK(tg_tape_insn(t, i, &p.inst[i]));
    for (size_t j = 0; j < p.nout; j++) {
        p.out[j] = tg_output_ref(t, j);
        cr_assert(p.out[j] < p.n, "output %zu refers to %" PRIu32 " of %zu instructions", j,
                  p.out[j], p.n);
    }
    return p;
}

TU_UNUSED static void du_prog_free(du_prog *p)
{
    free(p->inst);
    free(p->out);
    free(p->text);
    memset(p, 0, sizeof *p);
}

/* Number of instructions with opcode op. */
TU_UNUSED static size_t du_count_op(const du_prog *p, tg_opcode op)
{
    size_t c = 0;
    for (size_t i = 0; i < p->n; i++)
        c += p->inst[i].op == op;
    return c;
}

/* Instruction i is a constant with value k (bitwise). */
TU_UNUSED static int du_is_const(const du_prog *p, uint32_t i, double k)
{
    return i < p->n && p->inst[i].op == TG_OP_CONST && tu_same_bits(p->inst[i].value, k);
}

/* tg_tape_disasm as a string the caller frees (asserting non-NULL). */
TU_UNUSED static char *du_disasm(const tg_tape *t)
{
    char *d = tg_tape_disasm(t);
    cr_assert(d != NULL, "tg_tape_disasm returned NULL");
    return d;
}

/* ------------------------------------------------------- small stacks */

/* Runs fn(arg) in a thread with a stack of `bytes` (1 MiB: the equivalent
 * of `ulimit -s 1024`). */
TU_UNUSED static void du_run_small_stack(void *(*fn)(void *), void *arg, size_t bytes)
{
    pthread_attr_t a;
    pthread_t th;
    cr_assert_eq(pthread_attr_init(&a), 0);
    cr_assert_eq(pthread_attr_setstacksize(&a, bytes), 0);
    cr_assert_eq(pthread_create(&th, &a, fn, arg), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&a);
}

/* ------------------------------------------------------------ specials */

/* Inputs that stress IEEE semantics: signed zeros, infinities, NaN,
 * subnormals, the extremes of the normal range. */
TU_UNUSED static const double du_specials[] = {
    0.0, -0.0, INFINITY, -INFINITY, NAN, 4.9406564584124654e-324, -4.9406564584124654e-324,
    2.2250738585072009e-308, -1e-310, 2.2250738585072014e-308, 1.7976931348623157e308,
    -1.7976931348623157e308, 1.0, -1.0, 0.5, 2.0, 1e-200, 1e200,
};
#define DU_NSPECIALS (sizeof du_specials / sizeof du_specials[0])

#endif /* TAPEGEN_DERIVUTIL_H */
