/* tests/colpack/patterns.c -- see patterns.h. */
#include <stdlib.h>

#include "patterns.h"
#include "../recorders.h"

tg_tape *
cp_rosenbrock(size_t n)
{
    tg_tape *t = tg_tape_new("rosen");
    rec_rosenbrock(t, n);
    return t;
}

tg_tape *
cp_broyden(size_t n)
{
    tg_tape *t = tg_tape_new("broyden");
    rec_broyden(t, n);
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
