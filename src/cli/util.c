/* src/cli/util.c -- messages, tape files and number printing shared by the
 * subcommands.  Every message names the command, and for files the file
 * and the problem (the library's own message, with the byte offset). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void vmessage(const cli_args *a, const char *fmt, va_list ap) CLI_PRINTF(2, 0);

static void
vmessage(const cli_args *a, const char *fmt, va_list ap)
{
    fprintf(stderr, "tapegen %s: ", a->cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int
cli_usage(const cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(a, fmt, ap);
    va_end(ap);
    fprintf(stderr, "usage: tapegen %s\nRun 'tapegen %s --help' for details.\n",
            a->cmd->synopsis, a->cmd->name);
    return CLI_USAGE;
}

int
cli_fail(const cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(a, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

const char *
cli_required(const cli_args *a, int i, int *rc)
{
    const cli_opt *o = &a->cmd->opts[i];
    if (a->val[i])
        return a->val[i];
    *rc = cli_usage(a, "option '%s%s%s' is required", o->alias ? o->alias : o->name,
                    o->alias ? "/" : "", o->alias ? o->name : "");
    return NULL;
}

void *
cli_alloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        fputs("tapegen: out of memory\n", stderr);
        exit(CLI_FAIL);
    }
    return p;
}

tg_tape *
cli_load(const cli_args *a, const char *path, int *rc)
{
    tg_tape *t = tg_tape_load(path);
    if (!t) {
        *rc = cli_fail(a, "%s: out of memory loading the tape", path);
        return NULL;
    }
    if (tg_tape_status(t) == TG_OK)
        return t;
    /* the library's message names the file and the problem (the system's
     * reason, or the byte offset of a format error) */
    *rc = cli_fail(a, "%s", tg_tape_error(t));
    tg_tape_free(t);
    return NULL;
}

/* Saves through the library, which writes atomically: on failure the old
 * file is intact (the message says why, e.g. "file size limit exceeded"). */
int
cli_save(const cli_args *a, const tg_tape *t, const char *path)
{
    if (tg_tape_save(t, path) == TG_OK)
        return CLI_OK;
    return cli_fail(a, "%s", tg_last_error());
}

void
cli_print_row(FILE *f, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.17g", i ? " " : "", v[i]);
}

void
cli_print_matrix(FILE *f, const double *m, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) {
        fputs("  ", f);
        cli_print_row(f, m + i * cols, cols);
        fputc('\n', f);
    }
}

void
cli_describe(const char *path, const tg_tape *t)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t), k = tg_tape_size(t);
    printf("%s: tape \"%s\", %zu %s, %zu %s, %zu %s\n", path, tg_tape_name(t), n,
           cli_plural(n, "input", "inputs"), m, cli_plural(m, "output", "outputs"), k,
           cli_plural(k, "instruction", "instructions"));
}

const char *
cli_plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}
