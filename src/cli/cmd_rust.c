/* src/cli/cmd_rust.c -- `tapegen rust TAPE_FILE... -o DIR`: one Cargo crate
 * with one kernel per tape file (tg_rust_builder_*). */
#include <stdlib.h>

#include "cli/cli.h"

enum { O_OUT, O_F32, O_NOSTD, O_CRATE };

static const cli_opt opts[] = {
    { "--output", "-o", "DIR" },
    { "--f32", NULL, NULL },
    { "--no-std", NULL, NULL },
    { "--crate-name", NULL, "NAME" },
    { NULL, NULL, NULL },
};

static int
ident_chars(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_'))
            return 0;
    return 1;
}

static int
write_crate(const cli_args *a, tg_tape **t, const char *dir)
{
    tg_rust_options o = { a->val[O_CRATE], NULL, a->val[O_F32] != NULL, a->val[O_NOSTD] != NULL };
    tg_rust_builder *b = tg_rust_builder_new(&o);
    if (!b)
        return cli_fail(a, "out of memory");
    int rc = CLI_OK;
    for (int i = 0; i < a->npos && rc == CLI_OK; i++)
        if (tg_rust_builder_add(b, t[i], NULL) != TG_OK)
            rc = cli_fail(a, "%s: %s", a->pos[i], tg_rust_builder_error(b));
    if (rc == CLI_OK && tg_rust_builder_write(b, dir) != TG_OK)
        rc = cli_fail(a, "%s", tg_rust_builder_error(b));
    if (rc == CLI_OK)
        printf("%s: crate with %d %s (%s, %s)\n", dir, a->npos,
               cli_plural((size_t)a->npos, "kernel", "kernels"), o.f32 ? "f32" : "f64",
               o.no_std ? "no_std" : "std");
    tg_rust_builder_free(b);
    return rc;
}

static int
run(const cli_args *a)
{
    int rc;
    const char *dir = cli_required(a, O_OUT, &rc);
    if (!dir)
        return rc;
    if (a->val[O_CRATE] && !ident_chars(a->val[O_CRATE]))
        return cli_usage(a, "--crate-name: '%s' is not a Rust identifier ([A-Za-z_][A-Za-z0-9_]*)",
                         a->val[O_CRATE]);
    tg_tape **t = cli_alloc((size_t)a->npos, sizeof *t);
    rc = CLI_OK;
    for (int i = 0; i < a->npos && rc == CLI_OK; i++)
        t[i] = cli_load(a, a->pos[i], &rc);
    if (rc == CLI_OK)
        rc = write_crate(a, t, dir);
    for (int i = 0; i < a->npos; i++)
        tg_tape_free(t[i]);
    free(t);
    return rc;
}

const cli_cmd cli_cmd_rust = {
    "rust", "rust TAPE_FILE... -o DIR [--f32] [--no-std] [--crate-name NAME]",
    "write a Rust crate with one kernel per tape file",
    "Translates each tape file to a Rust kernel and writes one Cargo crate to DIR\n"
    "(created if needed): Cargo.toml, README.md, src/lib.rs and tests/kernels.rs\n"
    "(a test of every kernel against values computed here).\n"
    "  -o, --output DIR     the crate's directory\n"
    "  --f32                compute in f32 instead of f64\n"
    "  --no-std             #![no_std]; math through the libm crate\n"
    "  --crate-name NAME    the crate's name (default: the first tape's name)\n"
    "Kernels are named <crate>_<tape name> (sanitised to snake_case), e.g.\n"
    "rosenbrock_rosenbrock_grad; each takes one slice per input block, one per\n"
    "output block and a work slice of WORK_LEN_<KERNEL> values.\n"
    "\n"
    "Example:\n"
    "  tapegen rust f.tape f_grad.tape -o f_crate && (cd f_crate && cargo test)\n",
    opts, 1, -1, run,
};
