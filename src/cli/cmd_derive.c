/* src/cli/cmd_derive.c -- `tapegen derive FILE --KIND -o OUT`: a derivative
 * tape (tg_*_tape, tg_sparse_*_tape), optimised, saved as a tape file. */
#include <string.h>

#include "cli/cli.h"

enum { O_GRAD, O_JAC, O_HESS, O_JVP, O_VJP, O_HVP, O_SJAC, O_SHESS, O_WRT, O_OPT, O_LEVEL, O_OUT };

static const cli_opt opts[] = {
    { "--grad", NULL, NULL },
    { "--jac", NULL, NULL },
    { "--hess", NULL, NULL },
    { "--jvp", NULL, NULL },
    { "--vjp", NULL, NULL },
    { "--hvp", NULL, NULL },
    { "--sparse-jac", NULL, NULL },
    { "--sparse-hess", NULL, NULL },
    { "--wrt", NULL, "BLOCK" },
    { "--opt", NULL, "LEVEL" },
    { "--level", NULL, "LEVEL" },
    { "--output", "-o", "OUT" },
    { NULL, NULL, NULL },
};

typedef tg_tape *(*derive_fn)(const tg_tape *, int);

static const derive_fn kinds[] = {
    tg_gradient_tape, tg_jacobian_tape, tg_hessian_tape,
    tg_jvp_tape, tg_vjp_tape, tg_hvp_tape,
    tg_sparse_jacobian_tape, tg_sparse_hessian_tape,
};

/* The one --KIND flag given, or a usage error. */
static int
kind(const cli_args *a, int *k)
{
    *k = -1;
    for (int i = O_GRAD; i <= O_SHESS; i++) {
        if (!a->val[i])
            continue;
        if (*k >= 0)
            return cli_usage(a, "give one of --grad, --jac, --hess, --jvp, --vjp, --hvp, "
                             "--sparse-jac, --sparse-hess (got %s and %s)",
                             opts[*k].name, opts[i].name);
        *k = i;
    }
    if (*k < 0)
        return cli_usage(a, "missing the derivative: --grad, --jac, --hess, --jvp, --vjp, --hvp, "
                         "--sparse-jac or --sparse-hess");
    return CLI_OK;
}

static int
derive(const cli_args *a, const tg_tape *f, int k, int wrt, tg_opt_level level, const char *out)
{
    tg_tape *d = kinds[k](f, wrt);
    if (!d)
        return cli_fail(a, "out of memory");
    int rc;
    if (tg_tape_status(d) != TG_OK) {
        rc = cli_fail(a, "%s of \"%s\": %s", opts[k].name + 2, tg_tape_name(f), tg_tape_error(d));
    } else if (tg_tape_optimize(d, level) != TG_OK) {
        rc = cli_fail(a, "optimising \"%s\": %s", tg_tape_name(d), tg_last_error());
    } else {
        rc = cli_save(a, d, out);
        if (rc == CLI_OK)
            cli_describe(out, d);
    }
    tg_tape_free(d);
    return rc;
}

static int
run(const cli_args *a)
{
    int rc, k, wrt;
    tg_opt_level level = TG_OPT_BASIC;
    const char *out = cli_required(a, O_OUT, &rc);
    if (!out || (rc = kind(a, &k)) != CLI_OK)
        return rc;
    if (a->val[O_OPT] && a->val[O_LEVEL])
        return cli_usage(a, "give --opt or --level, not both");
    if ((rc = cli_level(a, "--opt", a->val[O_OPT], &level)) != CLI_OK
        || (rc = cli_level(a, "--level", a->val[O_LEVEL], &level)) != CLI_OK)
        return rc;
    tg_tape *f = cli_load(a, a->pos[0], &rc);
    if (!f)
        return rc;
    rc = cli_wrt(a, f, a->val[O_WRT], &wrt);
    if (rc == CLI_OK && (k == O_GRAD || k == O_HESS || k == O_HVP) && tg_num_outputs(f) != 1)
        rc = cli_usage(a, "%s needs a tape with one output; \"%s\" has %zu (use --jac or --vjp)",
                       opts[k].name, tg_tape_name(f), tg_num_outputs(f));
    if (rc == CLI_OK)
        rc = derive(a, f, k, wrt, level, out);
    tg_tape_free(f);
    return rc;
}

const cli_cmd cli_cmd_derive = {
    "derive", "derive FILE --grad|--jac|--hess|--jvp|--vjp|--hvp|--sparse-jac|--sparse-hess "
    "[--wrt BLOCK] [--opt LEVEL] -o OUT",
    "write a derivative tape (gradient, Jacobian, Hessian, JVP, VJP, HVP, sparse Jacobian or Hessian)",
    "Builds the derivative tape of FILE and saves it to OUT:\n"
    "  --grad   gradient, n_w outputs (the tape must have one output)\n"
    "  --jac    Jacobian, m*n_w outputs, row-major\n"
    "  --hess   Hessian, n_w*n_w outputs, row-major (one output)\n"
    "  --jvp    Jacobian-vector product: an extra input block \"v\" (n_w), m outputs\n"
    "  --vjp    vector-Jacobian product: an extra input block \"w\" (m), n_w outputs\n"
    "  --hvp    Hessian-vector product: an extra input block \"v\" (n_w), n_w outputs\n"
    "  --sparse-jac   the Jacobian's structural nonzeros only: one output block\n"
    "           \"jac\" of nnz values, sorted by row then column (the order of\n"
    "           tg_jacobian_sparsity; `tapegen info FILE --sparsity` shows it)\n"
    "  --sparse-hess  the lower triangle of the Hessian of w . y: an extra input\n"
    "           block \"w\" (m weights) and one output block \"hess\" of nnz\n"
    "           values in tg_hessian_sparsity's order (any number of outputs)\n"
    "  --wrt BLOCK   differentiate with respect to one input block, by name or\n"
    "                0-based index (default: all inputs; n_w is its size)\n"
    "  --opt LEVEL   none, basic (default), medium, high or max (tg_tape_optimize;\n"
    "                --level is the same option)\n"
    "  -o, --output OUT   the tape file to write\n"
    "The new tape keeps FILE's input blocks, has one output block and is named\n"
    "after FILE's tape with a suffix (_grad, _jac, ..., _sjac, _shess).  The\n"
    "sparse tapes grow with the number of nonzeros, not with n_w^2.\n"
    "\n"
    "Example:\n"
    "  tapegen derive f.tape --grad -o f_grad.tape\n"
    "  tapegen derive f.tape --sparse-hess -o f_shess.tape\n",
    opts, 1, 1, run,
};
