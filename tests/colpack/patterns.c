/* tests/colpack/patterns.c -- see patterns.h. */
#include <stdlib.h>

#include "patterns.h"

tg_tape *
cp_rosenbrock(size_t n)
{
    tg_tape *t = tg_tape_new("rosen");
    tg_var *x = malloc(n * sizeof *x), f = { 0 };
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var d = tg_sub(x[i + 1], tg_mul(x[i], x[i])), e = tg_sub(1.0, x[i]);
        tg_var term = tg_add(tg_mul(100.0, tg_mul(d, d)), tg_mul(e, e));
        f = i == 0 ? term : tg_add(f, term);
    }
    tg_output(t, "f", f);
    free(x);
    return t;
}

tg_tape *
cp_broyden(size_t n)
{
    tg_tape *t = tg_tape_new("broyden");
    tg_var *x = malloc(n * sizeof *x), *r = malloc(n * sizeof *r);
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
    free(x);
    free(r);
    return t;
}

tg_tape *
cp_from_pairs(size_t n, size_t npairs, const size_t *a, const size_t *b)
{
    tg_tape *t = tg_tape_new("pairs");
    tg_var *x = malloc(n * sizeof *x);
    tg_input_vec(t, "x", n, x);
    tg_var f = tg_mul(x[0], 0.5);
    for (size_t k = 0; k < npairs; k++)
        f = tg_add(f, tg_sin(tg_mul(x[a[k]], x[b[k]])));
    tg_output(t, "f", f);
    free(x);
    return t;
}

tg_tape *
cp_from_rows(size_t n, size_t m, const size_t *ptr, const size_t *cols)
{
    tg_tape *t = tg_tape_new("rows");
    tg_var *x = malloc(n * sizeof *x), *y = malloc(m * sizeof *y);
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < m; i++) {
        tg_var s = tg_exp(x[cols[ptr[i]]]);
        for (size_t q = ptr[i] + 1; q < ptr[i + 1]; q++)
            s = tg_add(s, tg_exp(x[cols[q]]));
        y[i] = s;
    }
    tg_output_vec(t, "y", m, y);
    free(x);
    free(y);
    return t;
}
