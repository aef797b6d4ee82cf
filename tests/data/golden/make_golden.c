/* tests/data/golden/make_golden.c -- writes the golden tape files of format
 * version 1 and their expected values.  Built ONCE against the library of
 * release 0.1.0 (the last release whose files store raw opcode numbers):
 *
 *   cc -std=c11 -ffp-contract=off -I RELEASE0/include make_golden.c \
 *      RELEASE0/libtapegen.a -lm -lpthread -fopenmp -o make_golden
 *   ./make_golden tests/data/golden
 *
 * It is not part of the build: the point of the golden files is that they
 * were written by an old release, and tests/test_golden.c checks that every
 * later library loads them and evaluates them bit for bit as that release
 * did.  For each tape NAME it writes NAME.tape and NAME.expect:
 *
 *   tapegen-golden 1
 *   tape NAME inputs N outputs M points P
 *   x <N hex bit patterns>      (one x line and one y line per point)
 *   y <M hex bit patterns>
 *
 * (the y values are tg_eval of the tape at x, computed by release 0.1.0). */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegen.h"

static uint64_t
bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double
from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void
die(const char *what, const tg_tape *t)
{
    fprintf(stderr, "make_golden: %s: %s\n", what, t ? tg_tape_error(t) : tg_last_error());
    exit(1);
}

/* Every user-facing op on inputs in (0.25, 0.75) (acosh on 1 + x),
 * recorded without folding or sharing so that each op stays on the tape;
 * blocks of sizes 1, 2, 3 and 5. */
static tg_tape *
all_ops(void)
{
    tg_tape *t = tg_tape_new_ex("all ops \xce\xa9", TG_NO_FOLD | TG_NO_CSE);
    tg_var x[3], q[2], w[5];
    tg_input_vec(t, "x", 3, x);
    tg_var p = tg_input(t, "p");
    tg_input_vec(t, "q", 2, q);
    tg_input_vec(t, "w", 5, w);
    tg_var u[] = {
        tg_neg(x[0]), tg_sin(x[1]), tg_cos(x[2]), tg_tan(p), tg_asin(q[0]), tg_acos(q[1]),
        tg_atan(x[0]), tg_sinh(x[1]), tg_cosh(x[2]), tg_tanh(p), tg_asinh(q[0]),
        tg_acosh(tg_add(q[1], 1.0)), tg_atanh(x[0]), tg_exp(x[1]), tg_expm1(x[2]), tg_log(p),
        tg_log1p(q[0]), tg_sqrt(q[1]), tg_cbrt(tg_sub(x[0], 0.5)), tg_erf(x[1]), tg_erfc(x[2]),
        tg_abs(tg_sub(p, 0.5)), tg_floor(tg_mul(q[0], 7.0)), tg_ceil(tg_mul(q[1], 7.0)),
        tg_round(tg_mul(x[0], 9.0)), tg_trunc(tg_mul(x[1], -9.0)), tg_fract(tg_mul(x[2], 5.5)),
        tg_signum(tg_sub(p, 0.5)),
    };
    tg_var b[] = {
        tg_add(x[0], x[1]), tg_sub(x[1], x[2]), tg_mul(x[2], p), tg_div(p, q[0]),
        tg_pow(q[0], q[1]), tg_pow(x[0], 3.0), tg_pow(x[1], -2.5), tg_min(x[0], x[1]),
        tg_max(x[1], x[2]), tg_atan2(x[2], tg_neg(p)), tg_hypot(q[0], q[1]),
        tg_azmul(x[0], tg_floor(q[1])), tg_lt(x[0], x[1]), tg_le(x[1], x[1]), tg_gt(x[2], p),
        tg_ge(q[0], q[1]), tg_select(tg_lt(x[0], p), tg_exp(q[0]), tg_log(q[1])),
        tg_dot(5, w, w), tg_norm2(5, w), tg_norm_inf(5, w),
    };
    size_t nu = sizeof u / sizeof *u, nb = sizeof b / sizeof *b;
    tg_output_vec(t, "unary", nu, u);
    tg_output_vec(t, "binary", nb, b);
    tg_output(t, "total", tg_add(tg_sum(nu, u), tg_sum(nb, b)));
    return t;
}

/* Constants whose bits matter, passed through and combined with x. */
static const uint64_t special_bits[] = {
    0x8000000000000000ULL,  /* -0.0 */
    0x0000000000000000ULL,  /* +0.0 */
    0x7ff0000000000000ULL,  /* +Inf */
    0xfff0000000000000ULL,  /* -Inf */
    0x7ff8000000000000ULL,  /* NaN */
    0x7ff8000000000abcULL,  /* NaN with a payload */
    0xfff8000000000001ULL,  /* negative NaN with a payload */
    0x0000000000000001ULL,  /* smallest subnormal */
    0x800fffffffffffffULL,  /* largest negative subnormal */
    0x0010000000000000ULL,  /* DBL_MIN */
    0x7fefffffffffffffULL,  /* DBL_MAX */
    0x3fb999999999999aULL,  /* 0.1 */
};
#define NSPECIAL (sizeof special_bits / sizeof *special_bits)

static tg_tape *
specials(void)
{
    tg_tape *t = tg_tape_new("specials");
    tg_var x = tg_input(t, "x"), k[NSPECIAL], y[NSPECIAL];
    for (size_t i = 0; i < NSPECIAL; i++) {
        k[i] = tg_const(t, from_bits(special_bits[i]));
        y[i] = tg_add(tg_mul(x, k[i]), k[i]);
    }
    tg_output_vec(t, "k", NSPECIAL, k);
    tg_output_vec(t, "xk", NSPECIAL, y);
    return t;
}

/* A small function with a vector output and its optimised Hessian tape
 * (the AD layer's own instructions: azmul, select, comparisons). */
static tg_tape *
model(void)
{
    tg_tape *t = tg_tape_new("model");
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_var s = tg_input(t, "scale");
    tg_var r = tg_hypot(x[0], x[1]);
    tg_var f = tg_add(tg_mul(s, tg_exp(tg_neg(tg_mul(r, r)))),
                      tg_max(tg_mul(x[0], x[1]), tg_pow(r, 2.0)));
    tg_output(t, "f", tg_add(f, tg_mul(tg_atan2(x[1], x[0]), tg_abs(x[0]))));
    return t;
}

static void
write_expect(const char *dir, const char *name, const tg_tape *t)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.tape", dir, name);
    if (tg_tape_save(t, path) != TG_OK)
        die(path, NULL);
    /* Read it back: the expected values are those of the file. */
    tg_tape *l = tg_tape_load(path);
    if (!l || tg_tape_status(l) != TG_OK)
        die(path, l);
    snprintf(path, sizeof path, "%s/%s.expect", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, NULL);
    size_t n = tg_num_inputs(l), m = tg_num_outputs(l);
    const int P = 3;
    fprintf(f, "tapegen-golden 1\ntape %s inputs %zu outputs %zu points %d\n", name, n, m, P);
    double *x = calloc(n + 1, sizeof *x), *y = calloc(m + 1, sizeof *y);
    for (int pt = 0; pt < P; pt++) {
        for (size_t i = 0; i < n; i++) {
            double g = 0.6180339887498949 * (double)(i + 1) + 0.2 * pt;
            x[i] = 0.25 + 0.5 * (g - floor(g));
        }
        if (tg_eval(l, x, y) != TG_OK)
            die("tg_eval", NULL);
        fputs("x", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, " %016" PRIx64, bits(x[i]));
        fputs("\ny", f);
        for (size_t j = 0; j < m; j++)
            fprintf(f, " %016" PRIx64, bits(y[j]));
        fputs("\n", f);
    }
    fclose(f);
    free(x);
    free(y);
    tg_tape_free(l);
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    tg_tape *a = all_ops(), *s = specials(), *m = model();
    for (tg_tape **t = (tg_tape *[]){ a, s, m, NULL }; *t; t++)
        if (tg_tape_status(*t) != TG_OK)
            die("recording", *t);
    tg_tape *h = tg_hessian_tape(m, TG_ALL), *g = tg_jacobian_tape(a, 0);
    if (!h || tg_tape_status(h) != TG_OK || tg_tape_optimize(h, TG_OPT_MAX) != TG_OK)
        die("hessian", h);
    if (!g || tg_tape_status(g) != TG_OK)
        die("jacobian", g);
    write_expect(dir, "all_ops", a);
    write_expect(dir, "specials", s);
    write_expect(dir, "model", m);
    write_expect(dir, "model_hess", h);
    write_expect(dir, "all_ops_jac_x", g);
    tg_tape *ts[] = { a, s, m, h, g };
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        tg_tape_free(ts[i]);
    return 0;
}
