/* tests/recorders.h -- the acceptance-style functions several suites record
 * (plain C, no Criterion: the ColPack comparison in tests/colpack uses them
 * too).  Each records onto t, which the caller made and checks. */
#ifndef TAPEGEN_RECORDERS_H
#define TAPEGEN_RECORDERS_H

#include <stdlib.h>

#include <tapegen.h>

/* W1, chained Rosenbrock: input block x (n), output f =
 * sum_{i<n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2.  Out of memory for the
 * scratch array leaves t without inputs (the caller's check fails). */
static inline void
rec_rosenbrock(tg_tape *t, size_t n)
{
    tg_var *x = malloc((n ? n : 1) * sizeof *x), f = { 0 };
    if (!x)
        return;
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var d = tg_sub(x[i + 1], tg_mul(x[i], x[i])), e = tg_sub(1.0, x[i]);
        tg_var term = tg_add(tg_mul(100.0, tg_mul(d, d)), tg_mul(e, e));
        f = i == 0 ? term : tg_add(f, term);
    }
    tg_output(t, "f", f);
    free(x);
}

/* W4, Broyden tridiagonal: input block x (n), output block r (n) with
 * r_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1. */
static inline void
rec_broyden(tg_tape *t, size_t n)
{
    tg_var *x = malloc((n ? n : 1) * sizeof *x), *r = malloc((n ? n : 1) * sizeof *r);
    if (x && r) {
        tg_input_vec(t, "x", n, x);
        for (size_t i = 0; i < n; i++) {
            tg_var v = tg_mul(tg_sub(3.0, tg_mul(2.0, x[i])), x[i]);
            if (i > 0)
                v = tg_sub(v, x[i - 1]);
            if (i + 1 < n)
                v = tg_sub(v, tg_mul(2.0, x[i + 1]));
            r[i] = tg_add(v, 1.0);
        }
        tg_output_vec(t, "r", n, r);
    }
    free(x);
    free(r);
}

#endif
