/* tests/test_errors.c -- sticky recording errors, argument checks of the
 * numeric functions, shapes, batch edge cases and the instruction limit. */
#include <criterion/criterion.h>

#include "testutil.h"

#define SENT 12345.678 /* sentinel: outputs must stay untouched on error */

static void fill(double *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = SENT;
}

static int untouched(const double *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!tu_same_bits(a[i], SENT))
            return 0;
    return 1;
}

/* A valid tape f(x, y) = x*y + sin(x) with outputs as given. */
static tg_tape *valid_tape(size_t nout)
{
    tg_tape *t = tu_tape("v", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_var f = tg_add(tg_mul(x, y), tg_sin(x));
    if (nout == 1) {
        tg_output(t, "f", f);
    } else if (nout > 1) {
        tg_var o[4] = { f, tg_cos(y), tg_exp(x), y };
        tg_output_vec(t, "f", nout, o);
    }
    TU_TAPE_OK(t);
    return t;
}

/* Checks that t is in error state `want`, with a non-empty message, and
 * that recording further does nothing. */
static void assert_sticky(tg_tape *t, tg_status want, const char *what)
{
    cr_assert_eq(tg_tape_status(t), want, "%s: status %d (%s), expected %d (%s); message: %s",
                 what, (int)tg_tape_status(t), tg_status_str(tg_tape_status(t)), (int)want,
                 tg_status_str(want), tg_tape_error(t));
    const char *msg = tg_tape_error(t);
    cr_assert(msg != NULL && *msg, "%s: tg_tape_error is empty in the error state", what);
    char first[512];
    snprintf(first, sizeof first, "%s", msg);
    size_t n = tg_tape_size(t), nin = tg_num_inputs(t), nout = tg_num_outputs(t);
    size_t nib = tg_num_input_blocks(t), nob = tg_num_output_blocks(t);
    /* every kind of recording call now does nothing */
    tg_var z = tg_input(t, "late_input");
    tg_var zs[2];
    tg_input_vec(t, "late_vec", 2, zs);
    tg_var k = tg_const(t, 42.0);
    (void)tg_add(z, k);
    (void)tg_sin(k);
    (void)tg_select(k, z, 1.0);
    tg_output(t, "late_out", k);
    tg_output_vec(t, "late_outs", 2, zs);
    (void)tg_input(t, NULL);   /* a second, different error */
    (void)tg_input(t, "");
    cr_expect_eq(tg_tape_size(t), n, "%s: recording after the error changed the size %zu -> %zu",
                 what, n, tg_tape_size(t));
    cr_expect_eq(tg_num_inputs(t), nin, "%s: inputs changed after the error", what);
    cr_expect_eq(tg_num_outputs(t), nout, "%s: outputs changed after the error", what);
    cr_expect_eq(tg_num_input_blocks(t), nib, "%s: input blocks changed", what);
    cr_expect_eq(tg_num_output_blocks(t), nob, "%s: output blocks changed", what);
    cr_expect_eq(tg_tape_status(t), want, "%s: the first error must stay", what);
    cr_expect_str_eq(tg_tape_error(t), first, "%s: the first error message must stay", what);
}

/* Numeric calls on an errored tape return its status, outputs untouched. */
static void assert_numeric_refused(const tg_tape *t, tg_status want, const char *what)
{
    double x[16], v[16], out[256];
    for (int i = 0; i < 16; i++)
        x[i] = v[i] = 0.5;
    tg_workspace *ws = tg_workspace_new(NULL);
    cr_assert(ws);
#define REFUSED(call)                                                                      \
    do {                                                                                   \
        fill(out, 256);                                                                    \
        tg_status s_ = (call);                                                             \
        cr_expect_eq(s_, want, "%s: %s returned %d (%s), expected the tape's status %d",   \
                     what, #call, (int)s_, tg_status_str(s_), (int)want);                  \
        cr_expect(untouched(out, 256), "%s: %s wrote to its output", what, #call);         \
    } while (0)
    REFUSED(tg_eval(t, x, out));
    REFUSED(tg_gradient(t, x, out));
    REFUSED(tg_jacobian(t, x, out));
    REFUSED(tg_jvp(t, x, v, out));
    REFUSED(tg_vjp(t, x, v, out));
    REFUSED(tg_hessian(t, x, out));
    REFUSED(tg_hvp(t, x, v, out));
    REFUSED(tg_eval_batch(t, 2, x, out));
    REFUSED(tg_gradient_batch(t, 2, x, out));
    REFUSED(tg_eval_ws(t, ws, x, out));
    REFUSED(tg_gradient_ws(t, ws, x, out));
    REFUSED(tg_jacobian_ws(t, ws, x, out));
    REFUSED(tg_jvp_ws(t, ws, x, v, out));
    REFUSED(tg_vjp_ws(t, ws, x, v, out));
    REFUSED(tg_hessian_ws(t, ws, x, out));
    REFUSED(tg_hvp_ws(t, ws, x, v, out));
#undef REFUSED
    tg_workspace_free(ws);
}

/* ------------------------------------------------------- sticky recording */

Test(sticky, var_of_another_tape)
{
    tg_tape *a = tu_tape("a", 0), *b = tu_tape("b", 0);
    tg_var x = tg_input(a, "x"), y = tg_input(b, "y");
    tg_var s = tg_sin(x);
    size_t na = tg_tape_size(a), nb = tg_tape_size(b);
    (void)tg_add(s, y);
    assert_sticky(a, TG_ERR_ARG, "operand of another tape");
    cr_expect_eq(tg_tape_size(a), na);
    cr_expect_eq(tg_tape_status(b), TG_OK, "the other tape must be unaffected: %s",
                 tg_tape_error(b));
    cr_expect_eq(tg_tape_size(b), nb);
    assert_numeric_refused(a, TG_ERR_ARG, "operand of another tape");
    tg_tape_free(a);
    tg_tape_free(b);
}

Test(sticky, var_of_another_tape_in_second_or_third_position)
{
    for (int pos = 1; pos < 3; pos++) {
        tg_tape *a = tu_tape("a", 0), *b = tu_tape("b", 0);
        tg_var x = tg_input(a, "x"), y = tg_input(b, "y");
        if (pos == 1)
            (void)tg_select(x, x, y);
        else
            (void)tg_select(x, y, x);
        cr_expect_eq(tg_tape_status(a), TG_ERR_ARG, "select with a foreign operand %d", pos + 1);
        cr_expect_eq(tg_tape_status(b), TG_OK);
        tg_tape_free(a);
        tg_tape_free(b);
    }
}

Test(sticky, output_of_another_tape)
{
    tg_tape *a = tu_tape("a", 0), *b = tu_tape("b", 0);
    (void)tg_input(a, "x");
    tg_var y = tg_input(b, "y");
    tg_output(a, "o", y);
    assert_sticky(a, TG_ERR_ARG, "output var of another tape");
    cr_expect_eq(tg_tape_status(b), TG_OK);
    tg_tape_free(a);
    tg_tape_free(b);
}

Test(sticky, null_names)
{
    tg_tape *t = tu_tape("n", 0);
    (void)tg_input(t, NULL);
    assert_sticky(t, TG_ERR_ARG, "tg_input(NULL name)");
    tg_tape_free(t);

    t = tu_tape("n", 0);
    tg_var x[2];
    tg_input_vec(t, NULL, 2, x);
    assert_sticky(t, TG_ERR_ARG, "tg_input_vec(NULL name)");
    tg_tape_free(t);

    t = tu_tape("n", 0);
    tg_var v = tg_input(t, "x");
    tg_output(t, NULL, v);
    assert_sticky(t, TG_ERR_ARG, "tg_output(NULL name)");
    tg_tape_free(t);

    t = tu_tape("n", 0);
    v = tg_input(t, "x");
    tg_output_vec(t, NULL, 1, &v);
    assert_sticky(t, TG_ERR_ARG, "tg_output_vec(NULL name)");
    tg_tape_free(t);
}

Test(sticky, null_arrays)
{
    tg_tape *t = tu_tape("n", 0);
    tg_input_vec(t, "x", 3, NULL);
    assert_sticky(t, TG_ERR_ARG, "tg_input_vec(NULL array)");
    tg_tape_free(t);

    t = tu_tape("n", 0);
    (void)tg_input(t, "x");
    tg_output_vec(t, "y", 2, NULL);
    assert_sticky(t, TG_ERR_ARG, "tg_output_vec(NULL array)");
    tg_tape_free(t);
}

Test(sticky, duplicate_block_names)
{
    tg_tape *t = tu_tape("d", 0);
    (void)tg_input(t, "x");
    size_t n = tg_tape_size(t);
    (void)tg_input(t, "x");
    assert_sticky(t, TG_ERR_ARG, "duplicate input name");
    cr_expect_eq(tg_tape_size(t), n);
    cr_expect_eq(tg_num_inputs(t), 1);
    tg_tape_free(t);

    t = tu_tape("d", 0);
    tg_var a[2];
    tg_input_vec(t, "a", 2, a);
    tg_input_vec(t, "a", 2, a);
    assert_sticky(t, TG_ERR_ARG, "duplicate input vector name");
    tg_tape_free(t);

    t = tu_tape("d", 0);
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", x);
    tg_output(t, "y", x);
    assert_sticky(t, TG_ERR_ARG, "duplicate output name");
    cr_expect_eq(tg_num_outputs(t), 1);
    tg_tape_free(t);

    /* an input and an output may share a name: not an error */
    t = tu_tape("d", 0);
    x = tg_input(t, "x");
    tg_output(t, "x", tg_sin(x));
    TU_TAPE_OK(t);
    tg_tape_free(t);
}

Test(sticky, invalid_names)
{
    char long_name[300];
    memset(long_name, 'a', sizeof long_name);
    long_name[256] = '\0'; /* 256 bytes: too long */
    const char *bad[] = { "", long_name, "\xff", "a\xc3", "\xc0\xaf" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_tape *t = tu_tape("n", 0);
        (void)tg_input(t, bad[i]);
        char what[64];
        snprintf(what, sizeof what, "tg_input with bad name #%zu", i);
        assert_sticky(t, TG_ERR_ARG, what);
        tg_tape_free(t);

        t = tu_tape("n", 0);
        tg_var x = tg_input(t, "x");
        tg_output(t, bad[i], x);
        snprintf(what, sizeof what, "tg_output with bad name #%zu", i);
        assert_sticky(t, TG_ERR_ARG, what);
        tg_tape_free(t);

        t = tg_tape_new(bad[i]);
        cr_assert(t != NULL);
        cr_expect_neq(tg_tape_status(t), TG_OK, "tg_tape_new with bad name #%zu must be in error",
                      i);
        cr_expect(*tg_tape_error(t), "tg_tape_new with bad name #%zu: empty message", i);
        tg_tape_free(t);
    }
    /* 255 bytes and multi-byte UTF-8 are fine */
    long_name[255] = '\0';
    tg_tape *t = tg_tape_new(long_name);
    cr_assert(t);
    cr_expect_eq(tg_tape_status(t), TG_OK, "255-byte tape name: %s", tg_tape_error(t));
    (void)tg_input(t, long_name);
    (void)tg_input(t, "\xc3\xa9t\xc3\xa9"); /* "été" */
    cr_expect_eq(tg_tape_status(t), TG_OK, "valid names: %s", tg_tape_error(t));
    cr_expect_str_eq(tg_input_block_name(t, 1), "\xc3\xa9t\xc3\xa9");
    tg_tape_free(t);
}

Test(sticky, null_tape_name_is_f)
{
    tg_tape *t = tg_tape_new(NULL);
    cr_assert(t);
    cr_expect_eq(tg_tape_status(t), TG_OK);
    cr_expect_str_eq(tg_tape_name(t), "f");
    cr_expect_str_eq(tg_tape_error(t), "");
    tg_tape_free(t);
    t = tg_tape_new_ex(NULL, TG_NO_FOLD);
    cr_assert(t);
    cr_expect_str_eq(tg_tape_name(t), "f");
    tg_tape_free(t);
}

Test(sticky, zero_length_vectors)
{
    /* empty blocks are blocks (issue 9, defect 8); NULL arrays only for n > 0 */
    tg_var x[2];
    tg_tape *t = tu_tape("z", 0);
    tg_input_vec(t, "x", 0, x);
    tg_input_vec(t, "e", 0, NULL);
    x[0] = tg_input(t, "s");
    tg_output_vec(t, "y", 0, x);
    tg_output_vec(t, "w", 0, NULL);
    cr_expect_eq(tg_tape_status(t), TG_OK, "empty blocks: %s", tg_tape_error(t));
    cr_expect_eq(tg_num_input_blocks(t), 3);
    cr_expect_eq(tg_num_output_blocks(t), 2);
    cr_expect_eq(tg_num_inputs(t), 1);
    cr_expect_eq(tg_num_outputs(t), 0);
    tg_input_vec(t, "n", 2, NULL);
    assert_sticky(t, TG_ERR_ARG, "tg_input_vec with n == 2 and NULL");
    tg_tape_free(t);

    t = tu_tape("z", 0);
    x[0] = tg_input(t, "x");
    tg_output_vec(t, "y", 1, NULL);
    assert_sticky(t, TG_ERR_ARG, "tg_output_vec with n == 1 and NULL");
    tg_tape_free(t);
}

Test(sticky, vector_helpers_without_tape_poison)
{
    typedef tg_var (*vh)(size_t, const tg_var *);
    vh helpers[] = { tg_sum, tg_norm2, tg_norm2sq, tg_norm1, tg_norm_inf };
    for (size_t h = 0; h < sizeof helpers / sizeof helpers[0]; h++) {
        tg_tape *t = tu_tape("z", 0);
        tg_var x[2];
        tg_input_vec(t, "x", 2, x);
        tg_var a = helpers[h](0, x), b = helpers[h](2, NULL);
        cr_expect(a.tape == NULL && a.id == TG_ZERO, "helper %zu with n == 0: {%p, %u}", h,
                  (void *)a.tape, a.id);
        cr_expect(b.tape == NULL && b.id == TG_NIL, "helper %zu with NULL: {%p, %u}", h,
                  (void *)b.tape, b.id);
        cr_expect_eq(tg_tape_status(t), TG_OK, "the nil result itself records nothing");
        (void)tg_add(x[0], a);
        cr_expect_eq(tg_tape_status(t), TG_OK, "helper %zu: the tapeless zero is a value", h);
        (void)tg_add(x[0], b);
        cr_expect_eq(tg_tape_status(t), TG_ERR_ARG, "helper %zu: using {NULL, TG_NIL} must "
                     "poison the tape", h);
        tg_tape_free(t);
    }
    tg_tape *t = tu_tape("z", 0);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_var d = tg_dot(0, x, x), e = tg_dot(2, x, NULL), p = tg_norm_p(0, x, 3.0),
           q = tg_norm_p_to_p(2, NULL, 3.0);
    cr_expect(d.tape == NULL && e.tape == NULL && p.tape == NULL && q.tape == NULL);
    cr_expect(d.id == TG_ZERO && p.id == TG_ZERO && e.id == TG_NIL && q.id == TG_NIL);
    tg_output(t, "y", q);
    assert_sticky(t, TG_ERR_ARG, "output of {NULL, TG_NIL}");
    tg_tape_free(t);
}

Test(sticky, op_without_tape_poisons)
{
    tg_var nil = tg_op2(TG_OP_ADD, tg__opnd_num(1.0), tg__opnd_num(2.0));
    cr_expect(nil.tape == NULL && nil.id == TG_NIL, "op of two numbers: {%p, %u}",
              (void *)nil.tape, nil.id);
    tg_var nil1 = tg_op1(TG_OP_SIN, tg__opnd_num(1.0));
    cr_expect(nil1.tape == NULL && nil1.id == TG_NIL);
    tg_var nil3 = tg_op3(TG_OP_SELECT, tg__opnd_num(1.0), tg__opnd_num(2.0), tg__opnd_num(3.0));
    cr_expect(nil3.tape == NULL && nil3.id == TG_NIL);
    /* used on a tape, in every position */
    for (int pos = 0; pos < 3; pos++) {
        tg_tape *t = tu_tape("p", 0);
        tg_var x = tg_input(t, "x");
        size_t n = tg_tape_size(t);
        tg_var r = pos == 0 ? tg_select(nil, x, x) : pos == 1 ? tg_select(x, nil, x)
                                                               : tg_select(x, x, nil);
        (void)r;
        cr_expect_eq(tg_tape_status(t), TG_ERR_ARG, "{NULL, TG_NIL} as operand %d", pos + 1);
        cr_expect_eq(tg_tape_size(t), n);
        assert_sticky(t, TG_ERR_ARG, "nil operand");
        tg_tape_free(t);
    }
    tg_tape *t = tu_tape("p", 0);
    tg_var x = tg_input(t, "x");
    (void)tg_mul(x, nil);
    assert_sticky(t, TG_ERR_ARG, "tg_mul(x, nil)");
    tg_tape_free(t);
    t = tu_tape("p", 0);
    x = tg_input(t, "x");
    (void)tg_sin(nil);   /* no tape to record on: t stays OK */
    cr_expect_eq(tg_tape_status(t), TG_OK);
    tg_output(t, "y", nil);
    assert_sticky(t, TG_ERR_ARG, "tg_output(nil)");
    tg_tape_free(t);
    /* an output vector containing a nil */
    t = tu_tape("p", 0);
    x = tg_input(t, "x");
    tg_var ys[2] = { x, nil };
    tg_output_vec(t, "y", 2, ys);
    assert_sticky(t, TG_ERR_ARG, "tg_output_vec with a nil element");
    tg_tape_free(t);
}

Test(sticky, bogus_var_id)
{
    tg_tape *t = tu_tape("p", 0);
    tg_var x = tg_input(t, "x");
    tg_var bogus = { t, 1000 };
    (void)tg_add(x, bogus);
    assert_sticky(t, TG_ERR_ARG, "var id past the end of the tape");
    tg_tape_free(t);
}

Test(sticky, first_error_wins)
{
    tg_tape *t = tu_tape("f", 0);
    tg_var x = tg_input(t, "x");
    cr_assert_eq(tg_tape_set_limit(t, 3), TG_OK);
    tg_var y = tg_sin(x);
    y = tg_cos(y);
    y = tg_exp(y); /* fourth instruction: TG_ERR_LIMIT */
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT, "status %d: %s", (int)tg_tape_status(t),
                 tg_tape_error(t));
    char first[512];
    snprintf(first, sizeof first, "%s", tg_tape_error(t));
    (void)tg_input(t, NULL);         /* TG_ERR_ARG, ignored */
    (void)tg_input(t, "x");          /* duplicate, ignored */
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT, "the first error must stay");
    cr_expect_str_eq(tg_tape_error(t), first);
    assert_sticky(t, TG_ERR_LIMIT, "limit then other errors");
    assert_numeric_refused(t, TG_ERR_LIMIT, "limit");
    tg_tape_free(t);
}

Test(sticky, errored_tape_refuses_numeric_calls)
{
    tg_tape *t = tu_tape("e", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_output(t, "f", tg_mul(x, y));
    (void)tg_input(t, "x"); /* duplicate after a complete function */
    assert_sticky(t, TG_ERR_ARG, "duplicate after outputs");
    assert_numeric_refused(t, TG_ERR_ARG, "errored complete tape");
    tg_tape_free(t);
}

/* ------------------------------------------------------- numeric arguments */

Test(args, null_pointers)
{
    tg_tape *t = valid_tape(1);
    tg_tape *t2 = valid_tape(2);
    tg_workspace *ws = tg_workspace_new(t);
    cr_assert(ws);
    double x[2] = { 0.5, 1.5 }, v[2] = { 1, 1 }, out[16];
#define ARGERR(call)                                                                      \
    do {                                                                                  \
        fill(out, 16);                                                                    \
        tg_status s_ = (call);                                                            \
        cr_expect_eq(s_, TG_ERR_ARG, "%s returned %d (%s), expected TG_ERR_ARG", #call,   \
                     (int)s_, tg_status_str(s_));                                         \
        const char *m_ = tg_last_error();                                                 \
        cr_expect(m_ != NULL && *m_, "%s: tg_last_error() is empty", #call);              \
        cr_expect(untouched(out, 16), "%s wrote to its output", #call);                   \
    } while (0)
    ARGERR(tg_eval(NULL, x, out));
    ARGERR(tg_eval(t, NULL, out));
    ARGERR(tg_eval(t, x, NULL));
    ARGERR(tg_gradient(NULL, x, out));
    ARGERR(tg_gradient(t, NULL, out));
    ARGERR(tg_gradient(t, x, NULL));
    ARGERR(tg_jacobian(NULL, x, out));
    ARGERR(tg_jacobian(t2, NULL, out));
    ARGERR(tg_jacobian(t2, x, NULL));
    ARGERR(tg_jvp(NULL, x, v, out));
    ARGERR(tg_jvp(t2, NULL, v, out));
    ARGERR(tg_jvp(t2, x, NULL, out));
    ARGERR(tg_jvp(t2, x, v, NULL));
    ARGERR(tg_vjp(NULL, x, v, out));
    ARGERR(tg_vjp(t2, NULL, v, out));
    ARGERR(tg_vjp(t2, x, NULL, out));
    ARGERR(tg_vjp(t2, x, v, NULL));
    ARGERR(tg_hessian(NULL, x, out));
    ARGERR(tg_hessian(t, NULL, out));
    ARGERR(tg_hessian(t, x, NULL));
    ARGERR(tg_hvp(NULL, x, v, out));
    ARGERR(tg_hvp(t, NULL, v, out));
    ARGERR(tg_hvp(t, x, NULL, out));
    ARGERR(tg_hvp(t, x, v, NULL));
    ARGERR(tg_eval_batch(NULL, 1, x, out));
    ARGERR(tg_eval_batch(t, 1, NULL, out));
    ARGERR(tg_eval_batch(t, 1, x, NULL));
    ARGERR(tg_gradient_batch(NULL, 1, x, out));
    ARGERR(tg_gradient_batch(t, 1, NULL, out));
    ARGERR(tg_gradient_batch(t, 1, x, NULL));
    ARGERR(tg_eval_ws(t, NULL, x, out));
    ARGERR(tg_eval_ws(NULL, ws, x, out));
    ARGERR(tg_eval_ws(t, ws, NULL, out));
    ARGERR(tg_eval_ws(t, ws, x, NULL));
    ARGERR(tg_gradient_ws(t, NULL, x, out));
    ARGERR(tg_gradient_ws(t, ws, NULL, out));
    ARGERR(tg_jacobian_ws(t, NULL, x, out));
    ARGERR(tg_jacobian_ws(t, ws, x, NULL));
    ARGERR(tg_jvp_ws(t, NULL, x, v, out));
    ARGERR(tg_jvp_ws(t, ws, x, NULL, out));
    ARGERR(tg_vjp_ws(t, NULL, x, v, out));
    ARGERR(tg_vjp_ws(t, ws, x, NULL, out));
    ARGERR(tg_hessian_ws(t, NULL, x, out));
    ARGERR(tg_hessian_ws(t, ws, NULL, out));
    ARGERR(tg_hvp_ws(t, NULL, x, v, out));
    ARGERR(tg_hvp_ws(t, ws, x, v, NULL));
#undef ARGERR
    /* the tapes themselves are unaffected */
    cr_expect_eq(tg_tape_status(t), TG_OK);
    TU_OK(tg_eval(t, x, out));
    tg_workspace_free(ws);
    tg_tape_free(t);
    tg_tape_free(t2);
}

Test(args, last_error_is_per_thread_and_set_on_failure)
{
    tg_tape *t = valid_tape(1);
    double x[2] = { 1, 2 }, y[1];
    TU_OK(tg_eval(t, x, y));
    cr_expect_eq(tg_eval(t, NULL, y), TG_ERR_ARG);
    const char *m = tg_last_error();
    cr_assert(m != NULL && *m, "message after a failure");
    tg_tape *t2 = valid_tape(2);
    double g[2];
    cr_expect_eq(tg_gradient(t2, x, g), TG_ERR_SHAPE);
    cr_expect(*tg_last_error(), "message after a shape error");
    tg_tape_free(t);
    tg_tape_free(t2);
}

Test(args, scalar_only_calls_need_one_output)
{
    for (size_t m = 0; m <= 3; m++) {
        if (m == 1)
            continue;
        tg_tape *t = valid_tape(m);
        cr_assert_eq(tg_num_outputs(t), m);
        tg_workspace *ws = tg_workspace_new(t);
        cr_assert(ws);
        double x[4] = { 0.5, 1.5, 0.5, 1.5 }, v[2] = { 1, 1 }, out[32];
#define SHAPE(call)                                                                         \
    do {                                                                                    \
        fill(out, 32);                                                                      \
        tg_status s_ = (call);                                                              \
        cr_expect_eq(s_, TG_ERR_SHAPE, "m = %zu: %s returned %d (%s), expected TG_ERR_SHAPE", \
                     m, #call, (int)s_, tg_status_str(s_));                                 \
        cr_expect(untouched(out, 32), "m = %zu: %s wrote to its output", m, #call);         \
        cr_expect(*tg_last_error(), "m = %zu: %s: empty tg_last_error", m, #call);         \
    } while (0)
        SHAPE(tg_gradient(t, x, out));
        SHAPE(tg_hessian(t, x, out));
        SHAPE(tg_hvp(t, x, v, out));
        SHAPE(tg_gradient_batch(t, 2, x, out));
        SHAPE(tg_gradient_ws(t, ws, x, out));
        SHAPE(tg_hessian_ws(t, ws, x, out));
        SHAPE(tg_hvp_ws(t, ws, x, v, out));
#undef SHAPE
        /* the general calls work for any m */
        if (m > 0) {
            TU_OK(tg_eval(t, x, out));
            TU_OK(tg_jacobian(t, x, out));
        }
        cr_expect_eq(tg_tape_status(t), TG_OK, "a shape error is not sticky");
        tg_workspace_free(ws);
        tg_tape_free(t);
    }
}

Test(args, batch_with_zero_points)
{
    tg_tape *t = valid_tape(1);
    double X[4] = { SENT, SENT, SENT, SENT }, Y[4], G[4];
    fill(Y, 4);
    fill(G, 4);
    cr_expect_eq(tg_eval_batch(t, 0, X, Y), TG_OK);
    cr_expect_eq(tg_gradient_batch(t, 0, X, G), TG_OK);
    cr_expect(untouched(Y, 4) && untouched(G, 4) && untouched(X, 4), "npts == 0 touched memory");
    tg_tape_free(t);
    /* also on a tape with m != 1, gradient_batch with 0 points is not an
     * error worth reporting: it does nothing and returns TG_OK or
     * TG_ERR_SHAPE, but never writes */
    t = valid_tape(2);
    fill(Y, 4);
    cr_expect_eq(tg_eval_batch(t, 0, X, Y), TG_OK);
    tg_status s = tg_gradient_batch(t, 0, X, G);
    cr_expect(s == TG_OK || s == TG_ERR_SHAPE, "gradient_batch(m=2, npts=0) returned %d", (int)s);
    cr_expect(untouched(Y, 4) && untouched(G, 4));
    tg_tape_free(t);
}

/* -------------------------------------------------------------- the limit */

Test(limit, small_limit_keeps_earlier_instructions)
{
    tg_tape *t = tu_tape("lim", 0);
    tg_var x = tg_input(t, "x");
    cr_assert_eq(tg_tape_set_limit(t, 5), TG_OK);
    tg_var y = x;
    for (int i = 0; i < 10; i++)
        y = tg_sin(y);
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT, "status %d (%s)", (int)tg_tape_status(t),
                 tg_tape_error(t));
    cr_expect_eq(tg_tape_size(t), 5, "size %zu, expected the limit 5 (no wrap-around)",
                 tg_tape_size(t));
    cr_expect(*tg_tape_error(t));
    /* the first 5 instructions are intact */
    char *d = tg_tape_disasm(t);
    cr_assert(d);
    cr_expect_str_eq(d, "tape \"lim\": 1 inputs, 0 outputs, 5 instructions\nin  x[1]\n"
                        "%0 = input x[0]\n%1 = sin %0\n%2 = sin %1\n%3 = sin %2\n%4 = sin %3\n");
    free(d);
    assert_numeric_refused(t, TG_ERR_LIMIT, "limit");
    tg_tape_free(t);
}

Test(limit, literal_constant_counts_against_the_limit)
{
    tg_tape *t = tu_tape("lim", 0);
    tg_var x = tg_input(t, "x");
    cr_assert_eq(tg_tape_set_limit(t, 2), TG_OK);
    (void)tg_mul(x, 2.0); /* const 2 fits, mul does not */
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT);
    cr_expect(tg_tape_size(t) <= 2, "size %zu above the limit 2", tg_tape_size(t));
    tg_tape_free(t);
}

Test(limit, limit_arguments)
{
    tg_tape *t = tu_tape("lim", 0);
    tg_var x = tg_input(t, "x");
    (void)tg_sin(x);
    cr_expect_eq(tg_tape_set_limit(t, 1), TG_ERR_ARG, "limit below the current size");
    cr_expect_eq(tg_tape_set_limit(NULL, 10), TG_ERR_ARG);
    cr_expect_eq(tg_tape_set_limit(t, 2), TG_OK, "limit equal to the size");
    (void)tg_cos(x);
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT);
    cr_expect_eq(tg_tape_size(t), 2);
    tg_tape_free(t);
    /* raising the limit back to the default works on a healthy tape */
    t = tu_tape("lim", 0);
    x = tg_input(t, "x");
    cr_expect_eq(tg_tape_set_limit(t, 3), TG_OK);
    cr_expect_eq(tg_tape_set_limit(t, UINT32_MAX), TG_ERR_ARG, "TG_ZERO and TG_NIL are not ids");
    cr_expect_eq(tg_tape_set_limit(t, UINT32_MAX - 1), TG_OK);
    for (int i = 0; i < 10; i++)
        x = tg_sin(x);
    cr_expect_eq(tg_tape_status(t), TG_OK);
    cr_expect_eq(tg_tape_size(t), 11);
    tg_tape_free(t);
}

Test(limit, input_vec_over_the_limit)
{
    tg_tape *t = tu_tape("lim", 0);
    cr_assert_eq(tg_tape_set_limit(t, 4), TG_OK);
    tg_var x[8];
    tg_input_vec(t, "x", 8, x);
    cr_expect_eq(tg_tape_status(t), TG_ERR_LIMIT);
    cr_expect(tg_tape_size(t) <= 4, "size %zu above the limit", tg_tape_size(t));
    tg_tape_free(t);
}

/* ------------------------------------------------------------- misc. */

Test(misc, free_null_and_null_queries)
{
    tg_tape_free(NULL);
    tg_workspace_free(NULL);
    cr_expect_eq(tg_tape_status(NULL), TG_ERR_ARG);
    cr_expect_eq(tg_num_inputs(NULL), 0);
    cr_expect_eq(tg_num_outputs(NULL), 0);
    cr_expect_eq(tg_tape_size(NULL), 0);
    cr_expect_eq(tg_num_input_blocks(NULL), 0);
    cr_expect_eq(tg_num_output_blocks(NULL), 0);
    cr_expect(tg_input_block_name(NULL, 0) == NULL);
    cr_expect_eq(tg_input_block_index(NULL, "x"), -1);
    (void)tg_tape_error(NULL); /* must not crash */
    /* recording on a NULL tape does nothing and does not crash */
    tg_var v = tg_input(NULL, "x");
    cr_expect(v.id == TG_NIL, "tg_input(NULL, ...) id %u", v.id);
    tg_var c = tg_const(NULL, 1.0);
    cr_expect(c.id == TG_NIL);
    tg_output(NULL, "y", v);
    tg_var xs[2];
    tg_input_vec(NULL, "x", 2, xs);
}

Test(misc, status_strings)
{
    const tg_status all[] = { TG_OK,        TG_ERR_NOMEM,  TG_ERR_ARG,  TG_ERR_SHAPE,
                              TG_ERR_IO,    TG_ERR_FORMAT, TG_ERR_NAME, TG_ERR_LIMIT };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *s = tg_status_str(all[i]);
        cr_expect(s != NULL && *s, "tg_status_str(%d) is empty", (int)all[i]);
        for (size_t j = 0; j < i; j++)
            cr_expect(strcmp(s, tg_status_str(all[j])) != 0, "codes %d and %d share \"%s\"",
                      (int)all[i], (int)all[j], s);
    }
    cr_expect_eq(TG_OK, 0);
    cr_expect(tg_status_str((tg_status)99) != NULL, "out-of-range code must give a string");
    cr_expect(tg_status_str((tg_status)-1) != NULL);
}

Test(misc, workspace_new_null_tape)
{
    tg_workspace *w = tg_workspace_new(NULL);
    cr_assert(w);
    tg_workspace_free(w);
    tg_tape *t = valid_tape(1);
    w = tg_workspace_new(t);
    cr_assert(w);
    cr_expect(tg_workspace_bytes(w) > 0, "a workspace pre-sized for a tape holds memory");
    tg_workspace_free(w);
    tg_tape_free(t);
}

Test(misc, tape_with_no_outputs)
{
    tg_tape *t = tu_tape("none", 0);
    tg_var x = tg_input(t, "x");
    (void)tg_sin(x);
    double xv[1] = { 1.0 }, y[1] = { SENT }, J[1] = { SENT };
    cr_expect_eq(tg_eval(t, xv, y), TG_OK);
    cr_expect_eq(tg_jacobian(t, xv, J), TG_OK);
    cr_expect(untouched(y, 1) && untouched(J, 1), "m == 0 wrote outputs");
    tg_tape_free(t);
}
