/* tests/data/golden/make_golden3.c -- writes the golden tape file of format
 * version 3 (loops kept in the tape, issue 11) and its expected values.
 * Built ONCE against the first library that writes format 3:
 *
 *   cc -std=c11 -ffp-contract=off -I include tests/data/golden/make_golden3.c \
 *      build/libtapegen.a -lm -fopenmp -o make_golden3
 *   ./make_golden3 tests/data/golden
 *
 * Not part of the build (see make_golden.c): tests/test_golden.c checks
 * that every later library loads loops.tape, evaluates it bit for bit as
 * the writing release did and writes it back to the same bytes.  The tape
 * has a scan whose body maps a body, a map at the top level sharing that
 * body, blocks of size 0, and constants -0.0, NaN with a payload, +Inf and
 * a subnormal inside the bodies.  Same .expect format as make_golden.c. */
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
    fprintf(stderr, "make_golden3: %s: %s\n", what, t ? tg_tape_error(t) : tg_last_error());
    exit(1);
}

/* map body g: x[2], p[1] -> y[1] */
static tg_tape *
body_g(void)
{
    tg_tape *b = tg_tape_new("g");
    tg_var x[2], p;
    tg_input_vec(b, "x", 2, x);
    p = tg_input(b, "p");
    tg_var nan_payload = tg_const(b, from_bits(0x7ff8000000000123ull));
    tg_var a = tg_mul(tg_sin(x[0]), tg_add(p, -0.0));
    tg_var c = tg_max(tg_div(x[1], tg_add(tg_mul(x[0], x[0]), 1.0)), nan_payload);
    tg_output(b, "y", tg_add(a, tg_mul(c, 4.9406564584124654e-324)));
    return b;
}

/* scan body s: c[2], x[2], p[0] -> cn[2], y[1]; maps g over (c, x) pairs */
static tg_tape *
body_s(const tg_tape *g)
{
    tg_tape *b = tg_tape_new("s");
    tg_var c[2], x[2], y[2];
    tg_input_vec(b, "c", 2, c);
    tg_input_vec(b, "x", 2, x);
    tg_input_vec(b, "p", 0, NULL);
    tg_var xs[4] = { c[0], x[0], c[1], x[1] }, q = tg_exp(tg_neg(c[0]));
    tg_map(b, g, 2, xs, &q, y);
    tg_var cn[2] = { tg_add(c[0], y[0]), tg_hypot(c[1], tg_min(y[1], INFINITY)) };
    tg_output_vec(b, "cn", 2, cn);
    tg_output(b, "y", tg_sub(y[0], y[1]));
    return b;
}

static tg_tape *
loops(void)
{
    tg_tape *g = body_g(), *s = body_s(g);
    tg_tape *t = tg_tape_new("loops");
    tg_var c0[2], x[8], p, c[2], ys[4], ym[4];
    tg_input_vec(t, "c0", 2, c0);
    tg_input_vec(t, "x", 8, x);
    p = tg_input(t, "p");
    tg_scan(t, s, 4, c0, x, NULL, c, ys);
    tg_map(t, g, 4, x, &p, ym);
    tg_output_vec(t, "c", 2, c);
    tg_output_vec(t, "ys", 4, ys);
    tg_output(t, "f", tg_add(tg_sum(4, ym), tg_dot(4, ys, ym)));
    tg_output_vec(t, "none", 0, NULL);
    tg_tape_free(g);
    tg_tape_free(s);
    return t;
}

static void
write_expect(const char *dir, const char *name, const tg_tape *t)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.tape", dir, name);
    if (tg_tape_save(t, path) != TG_OK)
        die(path, NULL);
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
    tg_tape *t = loops();
    if (tg_tape_status(t) != TG_OK)
        die("recording", t);
    write_expect(dir, "loops", t);
    tg_tape_free(t);
    return 0;
}
