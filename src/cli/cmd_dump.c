/* src/cli/cmd_dump.c -- `tapegen dump FILE`: the disassembly. */
#include <stdlib.h>

#include "cli/cli.h"

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    tg_tape *t = cli_load(a, a->pos[0], &rc);
    if (!t)
        return rc;
    char *text = tg_tape_disasm(t);
    tg_tape_free(t);
    if (!text)
        return cli_fail(a, "%s: out of memory", a->pos[0]);
    fputs(text, stdout);
    free(text);
    return CLI_OK;
}

static const cli_opt opts[] = { { NULL, NULL, NULL } };

const cli_cmd cli_cmd_dump = {
    "dump", "dump FILE",
    "print the disassembly of a tape file (one line per instruction)",
    "Prints a header naming the tape and its blocks, one line per instruction\n"
    "(\"%3 = mul %1 %2\"; constants read back to the same bits) and one line per\n"
    "output scalar (\"f[0] = %7\").  Loops print as \"%5 = map body0 count=100\n"
    "xs=[...] params=[...]\" with their outputs as \"%6 = xout %5 0\"; the bodies\n"
    "follow, each under \"body0:\" and indented.\n",
    opts, 1, 1, run,
};
