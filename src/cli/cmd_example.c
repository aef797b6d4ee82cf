/* src/cli/cmd_example.c -- `tapegen example NAME -o FILE`: a few built-in
 * tapes, to try the other commands on and for tests. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { O_OUT, O_N, O_NAME };

static const cli_opt opts[] = {
    { "--output", "-o", "FILE" },
    { "--n", NULL, "N" },
    { "--name", NULL, "TAPE_NAME" },
    { NULL, NULL, NULL },
};

/* f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, x of n >= 2. */
static void
rosenbrock(tg_tape *t, size_t n)
{
    tg_var *x = cli_alloc(n, sizeof *x), *terms = cli_alloc(2 * n, sizeof *terms);
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var a = tg_sub(x[i + 1], tg_mul(x[i], x[i])), b = tg_sub(1.0, x[i]);
        terms[2 * i] = tg_mul(100.0, tg_mul(a, a));
        terms[2 * i + 1] = tg_mul(b, b);
    }
    tg_output(t, "f", tg_sum(2 * (n - 1), terms));
    free(x);
    free(terms);
}

/* (r, theta) -> (r cos theta, r sin theta): two input blocks, two outputs. */
static void
polar(tg_tape *t, size_t n)
{
    (void)n;
    tg_var r = tg_input(t, "r"), th = tg_input(t, "theta");
    tg_var xy[2] = { tg_mul(r, tg_cos(th)), tg_mul(r, tg_sin(th)) };
    tg_output_vec(t, "xy", 2, xy);
}

/* f(x) = log(sum_i exp(x_i)), x of n >= 1. */
static void
logsumexp(tg_tape *t, size_t n)
{
    tg_var *x = cli_alloc(n, sizeof *x);
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < n; i++)
        x[i] = tg_exp(x[i]);
    tg_output(t, "f", tg_log(tg_sum(n, x)));
    free(x);
}

/* Broyden's tridiagonal system: y_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1
 * (x_{-1} = x_n = 0), x of n >= 1, outputs y of n: a tridiagonal Jacobian. */
static void
broyden(tg_tape *t, size_t n)
{
    tg_var *x = cli_alloc(n, sizeof *x), *y = cli_alloc(n, sizeof *y);
    tg_input_vec(t, "x", n, x);
    for (size_t i = 0; i < n; i++) {
        tg_var r = tg_add(tg_mul(tg_sub(3.0, tg_mul(2.0, x[i])), x[i]), 1.0);
        if (i > 0)
            r = tg_sub(r, x[i - 1]);
        if (i + 1 < n)
            r = tg_sub(r, tg_mul(2.0, x[i + 1]));
        y[i] = r;
    }
    tg_output_vec(t, "y", n, y);
    free(x);
    free(y);
}

typedef struct example {
    const char *name;
    void (*record)(tg_tape *, size_t);
    size_t n, min_n;        /* default and least --n; 0: no --n */
} example;

static const example examples[] = {
    { "rosenbrock", rosenbrock, 2, 2 },
    { "polar", polar, 0, 0 },
    { "logsumexp", logsumexp, 3, 1 },
    { "broyden", broyden, 4, 1 },
};

static int
run(const cli_args *a)
{
    int rc;
    const char *out = cli_required(a, O_OUT, &rc);
    if (!out)
        return rc;
    const example *e = NULL;
    for (size_t i = 0; i < sizeof examples / sizeof *examples; i++)
        if (strcmp(examples[i].name, a->pos[0]) == 0)
            e = &examples[i];
    if (!e)
        return cli_usage(a, "unknown example '%s' (rosenbrock, polar, logsumexp or broyden)", a->pos[0]);
    size_t n = e->n;
    if (a->val[O_N] && !e->min_n)
        return cli_usage(a, "example '%s' takes no --n", e->name);
    if (a->val[O_N] && (rc = cli_count(a, "--n", a->val[O_N], e->min_n, 1000000, &n)) != CLI_OK)
        return rc;
    tg_tape *t = tg_tape_new(a->val[O_NAME] ? a->val[O_NAME] : e->name);
    if (!t)
        return cli_fail(a, "out of memory");
    e->record(t, n);
    if (tg_tape_status(t) != TG_OK)
        rc = cli_fail(a, "recording \"%s\": %s", e->name, tg_tape_error(t));
    else if ((rc = cli_save(a, t, out)) == CLI_OK)
        cli_describe(out, t);
    tg_tape_free(t);
    return rc;
}

const cli_cmd cli_cmd_example = {
    "example", "example NAME [--n N] [--name TAPE_NAME] -o FILE",
    "write a built-in example tape file",
    "Records a built-in function and saves it as a tape file:\n"
    "  rosenbrock   f(x) = sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2; input block\n"
    "               x of --n N scalars (default 2), output f\n"
    "  polar        (r, theta) -> xy = (r cos theta, r sin theta); input blocks r\n"
    "               and theta, output block xy of 2\n"
    "  logsumexp    f(x) = log(sum exp(x[i])); input block x of --n N (default 3)\n"
    "  broyden      Broyden's tridiagonal system y[i] = (3 - 2 x[i]) x[i] - x[i-1]\n"
    "               - 2 x[i+1] + 1; input block x and output block y of --n N\n"
    "               (default 4): a sparse (tridiagonal) Jacobian\n"
    "  --name TAPE_NAME   the tape's name (default: the example's)\n"
    "  -o, --output FILE  the tape file to write\n"
    "\n"
    "Example:\n"
    "  tapegen example rosenbrock --n 10 -o f.tape\n",
    opts, 1, 1, run,
};
