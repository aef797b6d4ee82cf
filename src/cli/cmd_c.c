/* src/cli/cmd_c.c -- `tapegen c TAPE_FILE... -o DIR`: one C file and one
 * header per tape (tg_c_files). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

enum { O_OUT, O_F32, O_BATCH, O_PART, O_NAME };

static const cli_opt opts[] = {
    { "--output", "-o", "DIR" },
    { "--f32", NULL, NULL },
    { "--batch", NULL, NULL },
    { "--part-size", NULL, "N" },
    { "--name", NULL, "NAME" },
    { NULL, NULL, NULL },
};

static int
run(const cli_args *a)
{
    int rc;
    const char *dir = cli_required(a, O_OUT, &rc);
    if (!dir)
        return rc;
    size_t part = 0;
    if (a->val[O_PART] && (rc = cli_count(a, "--part-size", a->val[O_PART], 1, UINT32_MAX, &part)) != CLI_OK)
        return rc;
    if (a->val[O_NAME] && a->npos != 1)
        return cli_usage(a, "--name needs exactly one tape file");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return cli_fail(a, "cannot create directory %s: %s", dir, strerror(errno));
    rc = CLI_OK;
    char **names = cli_alloc((size_t)a->npos, sizeof *names);
    for (int i = 0; i < a->npos && rc == CLI_OK; i++) {
        tg_tape *t = cli_load(a, a->pos[i], &rc);
        if (!t)
            break;
        names[i] = cli_alloc(strlen(tg_tape_name(t)) + 1, 1);
        strcpy(names[i], tg_tape_name(t));
        for (int j = 0; j < i && rc == CLI_OK; j++)     /* one pair of files per tape */
            if (strcmp(names[i], names[j]) == 0)
                rc = cli_fail(a, "%s and %s hold tapes of the same name \"%s\": their files would collide",
                              a->pos[j], a->pos[i], names[i]);
        tg_c_options o = { a->val[O_NAME], a->val[O_F32] != NULL, a->val[O_BATCH] != NULL, (unsigned)part };
        if (rc == CLI_OK && tg_c_files(t, &o, dir) != TG_OK)
            rc = cli_fail(a, "%s: %s", a->pos[i], tg_last_error());
        if (rc == CLI_OK)
            printf("%s: %s/%s.c and .h (%s%s)\n", a->pos[i], dir,
                   a->val[O_NAME] ? a->val[O_NAME] : tg_tape_name(t), o.f32 ? "float" : "double",
                   o.batch ? ", with the batch variant" : "");
        tg_tape_free(t);
    }
    for (int i = 0; i < a->npos; i++)
        free(names[i]);
    free(names);
    return rc;
}

const cli_cmd cli_cmd_c = {
    "c", "c TAPE_FILE... -o DIR [--f32] [--batch] [--part-size N] [--name NAME]",
    "write a C11 function and header per tape file",
    "Translates each tape file to DIR/NAME.c and DIR/NAME.h (DIR is created if\n"
    "needed, not its parents), NAME being the tape's name as a C identifier:\n"
    "  int NAME(const double *x, double *y, double *work);\n"
    "which computes what `tapegen eval` computes, bit for bit, when compiled\n"
    "with -ffp-contract=off and without -ffast-math.\n"
    "  -o, --output DIR     the output directory\n"
    "  --f32                compute in float instead of double (close, not equal)\n"
    "  --batch              also NAME_batch(npts, X, Y, work) over many points\n"
    "  --part-size N        statements per non-inlined function (default 1000)\n"
    "  --name NAME          the function name (one tape file only)\n"
    "\n"
    "Example:\n"
    "  tapegen c f_grad.tape -o gen && cc -O2 -ffp-contract=off -c gen/*.c\n",
    opts, 1, -1, run,
};
