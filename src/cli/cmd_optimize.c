/* src/cli/cmd_optimize.c -- `tapegen optimize FILE -o OUT`: tg_tape_optimize. */
#include "cli/cli.h"

enum { O_LEVEL, O_OPT, O_OUT };

static const cli_opt opts[] = {
    { "--level", NULL, "LEVEL" },
    { "--opt", NULL, "LEVEL" },
    { "--output", "-o", "OUT" },
    { NULL, NULL, NULL },
};

static int
run(const cli_args *a)
{
    int rc;
    tg_opt_level level = TG_OPT_MAX;
    const char *out = cli_required(a, O_OUT, &rc);
    if (!out)
        return rc;
    if (a->val[O_OPT] && a->val[O_LEVEL])
        return cli_usage(a, "give --level or --opt, not both");
    if ((rc = cli_level(a, "--level", a->val[O_LEVEL], &level)) != CLI_OK
        || (rc = cli_level(a, "--opt", a->val[O_OPT], &level)) != CLI_OK)
        return rc;
    tg_tape *t = cli_load(a, a->pos[0], &rc);
    if (!t)
        return rc;
    size_t before = tg_tape_size(t);
    if (tg_tape_optimize(t, level) != TG_OK) {
        rc = cli_fail(a, "%s", tg_last_error());
    } else if ((rc = cli_save(a, t, out)) == CLI_OK) {
        printf("%s: tape \"%s\", %zu -> %zu instructions\n", out, tg_tape_name(t), before,
               tg_tape_size(t));
    }
    tg_tape_free(t);
    return rc;
}

const cli_cmd cli_cmd_optimize = {
    "optimize", "optimize FILE [--level LEVEL] -o OUT",
    "optimise a tape file (exact rewrites only) and save the result",
    "Runs tg_tape_optimize and saves the tape to OUT.  Levels (every rewrite is\n"
    "exact for all inputs, +-0, +-inf and NaN included):\n"
    "  none     dead-code elimination and compaction\n"
    "  basic    + common subexpressions and constant folding again\n"
    "  medium   + sign normalisation (x+(-y) -> x-y, ...)\n"
    "  high     + x/c -> x*(1/c) for c a power of two\n"
    "  max      high, repeated until the tape stops shrinking (default)\n"
    "--opt is the same option as --level.\n"
    "\n"
    "Example:\n"
    "  tapegen optimize f_hess.tape --level max -o f_hess_opt.tape\n",
    opts, 1, 1, run,
};
