/* src/cli/cmd_check.c -- `tapegen check FILE --x LIST`: the tape's Jacobian
 * (tg_jacobian) against central differences of tg_eval.
 *
 * For input j the step is h = 1e-6 * max(1, |x_j|) and the difference
 * D_ij = (f_i(x + h e_j) - f_i(x - h e_j)) / (2h), with 2h taken as the
 * difference of the two representable points.  Its own error is O(h^2)
 * (truncation) plus O(eps |f| / h) (rounding), around 1e-9 to 1e-10 for a
 * well-scaled function.  The error of entry (i, j) is
 *     |J_ij - D_ij| / max(1, |J_ij|, |D_ij|)
 * (relative for large entries, absolute for small ones); two NaNs or two
 * equal infinities agree; a NaN against a number is a NaN error (worse
 * than any other, and reported as nan), any other non-finite disagreement
 * is infinite.  The check fails (exit 1) when the worst error exceeds the tolerance,
 * 1e-6 unless --tol says otherwise. */
#include <math.h>
#include <stdlib.h>

#include "cli/cli.h"

enum { O_X, O_TOL };

static const cli_opt opts[] = {
    { "--x", NULL, "X1,X2,..." },
    { "--tol", NULL, "TOL" },
    { NULL, NULL, NULL },
};

#define DEFAULT_TOL 1e-6

typedef struct worst {
    double err, tape, fd;
    size_t i, j;
} worst;

static double
entry_error(double j, double d)
{
    if (isnan(j) || isnan(d))
        return isnan(j) && isnan(d) ? 0.0 : NAN;
    if (isinf(j) || isinf(d))
        return j == d ? 0.0 : INFINITY;
    return fabs(j - d) / fmax(1.0, fmax(fabs(j), fabs(d)));
}

/* Error e is worse than error cur: NaN is the worst of all. */
static int
worse(double e, double cur)
{
    return isnan(e) ? !isnan(cur) : e > cur;
}

/* %.*g, but NaN as "nan" whatever its sign bit (printf may say "-nan"). */
static void
print_g(int prec, double v)
{
    if (isnan(v))
        printf("nan");
    else
        printf("%.*g", prec, v);
}

/* Column j of the central-difference Jacobian into the worst error. */
static int
column(const tg_tape *t, const double *x, const double *J, size_t j, double *xs, double *yp,
       double *ym, worst *w)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double h = 1e-6 * fmax(1.0, fabs(x[j]));
    for (size_t k = 0; k < n; k++)
        xs[k] = x[k];
    xs[j] = x[j] + h;
    double hi = xs[j];
    if (tg_eval(t, xs, yp) != TG_OK)
        return -1;
    xs[j] = x[j] - h;
    double lo = xs[j];
    if (tg_eval(t, xs, ym) != TG_OK)
        return -1;
    for (size_t i = 0; i < m; i++) {
        double d = (yp[i] - ym[i]) / (hi - lo), e = entry_error(J[i * n + j], d);
        if (w->i == (size_t)-1 || worse(e, w->err)) {
            worst nw = { e, J[i * n + j], d, i, j };
            *w = nw;
        }
    }
    return 0;
}

/* "block[k]" of flat index k. */
static void
where(const tg_tape *t, int in, size_t k)
{
    size_t nb = in ? tg_num_input_blocks(t) : tg_num_output_blocks(t);
    for (size_t b = 0; b < nb; b++) {
        size_t off = in ? tg_input_block_offset(t, b) : tg_output_block_offset(t, b);
        size_t size = in ? tg_input_block_size(t, b) : tg_output_block_size(t, b);
        if (k >= off && k < off + size) {
            printf("%s[%zu]", in ? tg_input_block_name(t, b) : tg_output_block_name(t, b), k - off);
            return;
        }
    }
}

static int
compare(const cli_args *a, const tg_tape *t, const double *x, double tol)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *J = cli_alloc(m * n, sizeof *J), *xs = cli_alloc(n, sizeof *xs);
    double *yp = cli_alloc(m, sizeof *yp), *ym = cli_alloc(m, sizeof *ym);
    worst w = { 0.0, 0.0, 0.0, (size_t)-1, (size_t)-1 };
    int rc = tg_jacobian(t, x, J) == TG_OK ? 0 : -1;
    for (size_t j = 0; j < n && rc == 0; j++)
        rc = column(t, x, J, j, xs, yp, ym, &w);
    if (rc != 0) {
        rc = cli_fail(a, "%s", tg_last_error());
    } else {
        printf("check \"%s\": %zu x %zu Jacobian against central differences\n", tg_tape_name(t),
               m, n);
        if (w.i != (size_t)-1) {
            printf("worst error ");
            print_g(3, w.err);
            printf(" at output %zu (", w.i);
            where(t, 0, w.i);
            printf("), input %zu (", w.j);
            where(t, 1, w.j);
            printf("): tape ");
            print_g(17, w.tape);
            printf(", central difference ");
            print_g(17, w.fd);
            printf("\n");
        }
        int ok = w.err <= tol;
        printf("tolerance %.3g: %s\n", tol, ok ? "ok" : "FAILED");
        rc = ok ? CLI_OK : CLI_FAIL;
    }
    free(J);
    free(xs);
    free(yp);
    free(ym);
    return rc;
}

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    double tol = DEFAULT_TOL, *x = NULL;
    if (a->val[O_TOL]) {
        double *v;
        size_t nv;
        if ((rc = cli_numbers(a, "--tol", a->val[O_TOL], &v, &nv)) != CLI_OK)
            return rc;
        tol = nv == 1 ? v[0] : -1.0;
        free(v);
        if (!(tol >= 0.0))
            return cli_usage(a, "--tol: '%s' is not one non-negative number", a->val[O_TOL]);
    }
    tg_tape *t = cli_load(a, a->pos[0], &rc);
    if (!t)
        return rc;
    size_t n = tg_num_inputs(t);
    if (!a->val[O_X] && n > 0)
        rc = cli_usage(a, "option '--x' is required (tape \"%s\" has %zu %s)", tg_tape_name(t), n,
                       cli_plural(n, "input", "inputs"));
    else
        rc = cli_vector(a, "--x", a->val[O_X] ? a->val[O_X] : "", t, n, "inputs", &x);
    if (rc == CLI_OK)
        rc = compare(a, t, x, tol);
    free(x);
    tg_tape_free(t);
    return rc;
}

const cli_cmd cli_cmd_check = {
    "check", "check FILE --x X1,X2,... [--tol TOL]",
    "check a tape's derivatives against central differences at a point",
    "Compares the tape's Jacobian (tg_jacobian; the gradient of a scalar tape) at\n"
    "x with central differences of its values: for input j the step is\n"
    "h = 1e-6 * max(1, |x_j|), and entry (i, j) has the error\n"
    "  |J_ij - D_ij| / max(1, |J_ij|, |D_ij|)\n"
    "(relative for large entries, absolute for small ones; a NaN against a\n"
    "number is an error of nan, the worst; the differences\n"
    "themselves are good to about 1e-9 on a well-scaled smooth function).  Prints\n"
    "the worst error and where it is (output i, input j, with block names), and\n"
    "exits with 1 when it is above the tolerance (default 1e-6, --tol TOL).\n"
    "Near a kink or a discontinuity central differences are meaningless: choose a\n"
    "point where the function is smooth.\n"
    "\n"
    "Example:\n"
    "  tapegen check f.tape --x -1.2,1\n",
    opts, 1, 1, run,
};
