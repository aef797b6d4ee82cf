/* src/cli/cmd_info.c -- `tapegen info FILE`: what a tape file holds. */
#include <stdlib.h>
#include <sys/stat.h>

#include "cli/cli.h"

static void
print_blocks(const tg_tape *t, int in)
{
    size_t nb = in ? tg_num_input_blocks(t) : tg_num_output_blocks(t);
    size_t ns = in ? tg_num_inputs(t) : tg_num_outputs(t);
    printf("%-15s%zu %s in %zu %s\n", in ? "inputs:" : "outputs:", ns,
           cli_plural(ns, "scalar", "scalars"), nb, cli_plural(nb, "block", "blocks"));
    for (size_t i = 0; i < nb; i++) {
        const char *name = in ? tg_input_block_name(t, i) : tg_output_block_name(t, i);
        size_t size = in ? tg_input_block_size(t, i) : tg_output_block_size(t, i);
        size_t off = in ? tg_input_block_offset(t, i) : tg_output_block_offset(t, i);
        printf("  %zu: %s[%zu] at %zu\n", i, name, size, off);
    }
}

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    const char *path = a->pos[0];
    tg_tape *t = cli_load(a, path, &rc);
    if (!t)
        return rc;
    /* The op histogram, through the public instruction view. */
    size_t n = tg_tape_size(t), hist[TG_OP_COUNT] = { 0 };
    for (size_t i = 0; i < n; i++) {
        tg_insn in;
        if (tg_tape_insn(t, i, &in) != TG_OK) {
            tg_tape_free(t);
            return cli_fail(a, "%s: %s", path, tg_last_error());
        }
        if ((unsigned)in.op < TG_OP_COUNT)
            hist[in.op]++;
    }

    struct stat st;
    long long fsize = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    printf("%-15s%s\n", "file:", path);
    printf("%-15s%lld\n", "file bytes:", fsize);
    printf("%-15s%s\n", "tape:", tg_tape_name(t));
    print_blocks(t, 1);
    print_blocks(t, 0);
    printf("%-15s%zu\n", "instructions:", n);
    printf("%-15s%zu\n", "memory bytes:", tg_tape_bytes(t));
    printf("ops:\n");
    for (int op = 0; op < TG_OP_COUNT; op++)
        if (hist[op])
            printf("  %-8s %zu\n", tg_op_name((tg_opcode)op), hist[op]);
    tg_tape_free(t);
    return CLI_OK;
}

static const cli_opt opts[] = { { NULL, NULL, NULL } };

const cli_cmd cli_cmd_info = {
    "info", "info FILE",
    "describe a tape file: name, blocks, instruction count, op histogram, size",
    "Prints the tape's name, its input and output blocks (index, name[size] and\n"
    "offset in the flat array), the number of instructions, how many there are of\n"
    "each op, the bytes the loaded tape occupies (tg_tape_bytes) and the file size.\n"
    "\n"
    "Example:\n"
    "  tapegen example rosenbrock --n 3 -o f.tape && tapegen info f.tape\n",
    opts, 1, 1, run,
};
