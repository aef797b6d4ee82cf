/* src/cli/cmd_eval.c -- `tapegen eval FILE --x LIST [...]`: values and
 * derivatives at one point, printed with %.17g (round-trip exact). */
#include <stdlib.h>

#include "cli/cli.h"

enum { O_X, O_GRAD, O_JAC, O_HESS, O_HVP, O_JVP, O_VJP };

static const cli_opt opts[] = {
    { "--x", NULL, "X1,X2,..." },
    { "--grad", NULL, NULL },
    { "--jac", NULL, NULL },
    { "--hess", NULL, NULL },
    { "--hvp", NULL, "V1,V2,..." },
    { "--jvp", NULL, "V1,V2,..." },
    { "--vjp", NULL, "W1,W2,..." },
    { NULL, NULL, NULL },
};

typedef struct point {
    const tg_tape *t;
    size_t n, m;
    double *x, *vh, *vj, *wv;     /* --x, --hvp, --jvp, --vjp */
} point;

typedef tg_status (*deriv_fn)(const tg_tape *, const double *, const double *, double *);

static tg_status grad2(const tg_tape *t, const double *x, const double *v, double *o)
{ (void)v; return tg_gradient(t, x, o); }
static tg_status jac2(const tg_tape *t, const double *x, const double *v, double *o)
{ (void)v; return tg_jacobian(t, x, o); }
static tg_status hess2(const tg_tape *t, const double *x, const double *v, double *o)
{ (void)v; return tg_hessian(t, x, o); }

/* The values, one line per output block: "name = y1 y2 ...". */
static int
values(const cli_args *a, const point *p)
{
    double *y = cli_alloc(p->m, sizeof *y);
    if (tg_eval(p->t, p->x, y) != TG_OK) {
        free(y);
        return cli_fail(a, "%s", tg_last_error());
    }
    for (size_t b = 0; b < tg_num_output_blocks(p->t); b++) {
        printf("%s = ", tg_output_block_name(p->t, b));
        cli_print_row(stdout, y + tg_output_block_offset(p->t, b), tg_output_block_size(p->t, b));
        putchar('\n');
    }
    free(y);
    return CLI_OK;
}

/* One derivative from call(v): a row of cols numbers, or a rows x cols
 * matrix when rows > 0. */
static int
derivative(const cli_args *a, const point *p, const char *title, deriv_fn call, const double *v,
           size_t rows, size_t cols)
{
    size_t len = rows ? rows * cols : cols;
    double *o = cli_alloc(len, sizeof *o);
    if (call(p->t, p->x, v, o) != TG_OK) {
        free(o);
        return cli_fail(a, "%s", tg_last_error());
    }
    if (rows) {
        printf("%s (%zu x %zu) =\n", title, rows, cols);
        cli_print_matrix(stdout, o, rows, cols);
    } else {
        printf("%s = ", title);
        cli_print_row(stdout, o, cols);
        putchar('\n');
    }
    free(o);
    return CLI_OK;
}

/* Every option against the tape, before anything is computed. */
static int
validate(const cli_args *a, point *p)
{
    static const int scalar_only[] = { O_GRAD, O_HESS, O_HVP };
    for (int k = 0; k < 3; k++)
        if (a->val[scalar_only[k]] && p->m != 1)
            return cli_usage(a, "%s needs a tape with one output; \"%s\" has %zu (use --jac)",
                             opts[scalar_only[k]].name, tg_tape_name(p->t), p->m);
    int rc;
    if (!a->val[O_X] && p->n > 0)
        return cli_usage(a, "option '--x' is required (tape \"%s\" has %zu %s)",
                         tg_tape_name(p->t), p->n, cli_plural(p->n, "input", "inputs"));
    if ((rc = cli_vector(a, "--x", a->val[O_X] ? a->val[O_X] : "", p->t, p->n, "inputs", &p->x)))
        return rc;
    if (a->val[O_HVP] && (rc = cli_vector(a, "--hvp", a->val[O_HVP], p->t, p->n, "inputs", &p->vh)))
        return rc;
    if (a->val[O_JVP] && (rc = cli_vector(a, "--jvp", a->val[O_JVP], p->t, p->n, "inputs", &p->vj)))
        return rc;
    if (a->val[O_VJP] && (rc = cli_vector(a, "--vjp", a->val[O_VJP], p->t, p->m, "outputs", &p->wv)))
        return rc;
    return CLI_OK;
}

static int
all(const cli_args *a, const point *p)
{
    int rc = values(a, p);
    if (rc == CLI_OK && a->val[O_GRAD])
        rc = derivative(a, p, "gradient", grad2, NULL, 0, p->n);
    if (rc == CLI_OK && a->val[O_JAC])
        rc = derivative(a, p, "jacobian", jac2, NULL, p->m, p->n);
    if (rc == CLI_OK && a->val[O_HESS])
        rc = derivative(a, p, "hessian", hess2, NULL, p->n, p->n);
    if (rc == CLI_OK && a->val[O_HVP])
        rc = derivative(a, p, "hvp", tg_hvp, p->vh, 0, p->n);
    if (rc == CLI_OK && a->val[O_JVP])
        rc = derivative(a, p, "jvp", tg_jvp, p->vj, 0, p->m);
    if (rc == CLI_OK && a->val[O_VJP])
        rc = derivative(a, p, "vjp", tg_vjp, p->wv, 0, p->n);
    return rc;
}

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    tg_tape *t = cli_load(a, a->pos[0], &rc);
    if (!t)
        return rc;
    point p = { t, tg_num_inputs(t), tg_num_outputs(t), NULL, NULL, NULL, NULL };
    rc = validate(a, &p);
    if (rc == CLI_OK)
        rc = all(a, &p);
    free(p.x);
    free(p.vh);
    free(p.vj);
    free(p.wv);
    tg_tape_free(t);
    return rc;
}

const cli_cmd cli_cmd_eval = {
    "eval", "eval FILE --x X1,X2,... [--grad] [--jac] [--hess] [--hvp V] [--jvp V] [--vjp W]",
    "evaluate a tape and its derivatives at a point",
    "Evaluates the tape at x (its inputs, blocks concatenated) and prints one line\n"
    "per output block (\"name = y1 y2 ...\"), then each requested derivative:\n"
    "  --grad       gradient (n numbers; the tape must have one output)\n"
    "  --jac        Jacobian, m x n, one row per line\n"
    "  --hess       Hessian, n x n, one row per line (one output)\n"
    "  --hvp V      Hessian-vector product H v (one output; V has n numbers)\n"
    "  --jvp V      Jacobian-vector product J v (V has n numbers)\n"
    "  --vjp W      vector-Jacobian product w^T J (W has m numbers)\n"
    "Numbers print with %.17g, so they read back to the same double; lists are\n"
    "comma-separated (inf, nan and -0 are accepted).\n"
    "\n"
    "Example:\n"
    "  tapegen eval f.tape --x -1.2,1 --grad --hess\n",
    opts, 1, 1, run,
};
