/* src/cli/cmd_info.c -- `tapegen info FILE`: what a tape file holds, and
 * with --sparsity the structural Jacobian and Hessian patterns. */
#include <stdlib.h>
#include <sys/stat.h>

#include "cli/cli.h"

enum { O_SPARSITY, O_SVG, O_WRT };

static const cli_opt opts[] = {
    { "--sparsity", NULL, NULL },
    { "--svg", NULL, "FILE" },
    { "--wrt", NULL, "BLOCK" },
    { NULL, NULL, NULL },
};

#define PICTURE_W 64
#define PICTURE_H 32

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

/* A pattern's construction status, as a CLI_FAIL message. */
static int
pattern_ok(const cli_args *a, const tg_sparsity *s, const char *what)
{
    if (!s)
        return cli_fail(a, "%s pattern: out of memory", what);
    if (tg_sparsity_status(s) != TG_OK)
        return cli_fail(a, "%s pattern: %s", what, tg_sparsity_error(s));
    return CLI_OK;
}

static void
print_pattern(const char *label, const tg_sparsity *s, size_t rows, size_t cols, int symmetric)
{
    size_t nnz = tg_sparsity_nnz(s);
    double full = symmetric ? (double)rows * (double)(rows + 1) / 2.0 : (double)rows * (double)cols;
    printf("%-15s%zu x %zu%s, nnz %zu (%.3g%% of %s), colours %zu\n", label, rows, cols,
           symmetric ? " (lower triangle stored)" : "", nnz,
           full > 0 ? 100.0 * (double)nnz / full : 0.0,
           symmetric ? "the lower triangle" : "the matrix", tg_sparsity_colors(s));
    cli_pattern_ascii(stdout, s, rows, cols, symmetric, PICTURE_W, PICTURE_H);
}

/* --sparsity / --svg: the Jacobian pattern of t and the pattern of the
 * Hessian of w . y (any weights), with respect to --wrt. */
static int
sparsity(const cli_args *a, const tg_tape *t, int wrt)
{
    int rc;
    size_t nw = wrt == TG_ALL ? tg_num_inputs(t) : tg_input_block_size(t, (size_t)wrt);
    size_t m = tg_num_outputs(t);
    tg_sparsity *jac = tg_jacobian_sparsity(t, wrt);
    tg_sparsity *hess = tg_hessian_sparsity(t, wrt);
    if ((rc = pattern_ok(a, jac, "Jacobian")) == CLI_OK &&
        (rc = pattern_ok(a, hess, "Hessian")) == CLI_OK) {
        if (wrt == TG_ALL)
            printf("%-15sall inputs (%zu)\n", "sparsity wrt:", nw);
        else
            printf("%-15sblock %d \"%s\" (%zu)\n", "sparsity wrt:", wrt,
                   tg_input_block_name(t, (size_t)wrt), nw);
        print_pattern("jacobian:", jac, m, nw, 0);
        print_pattern("hessian:", hess, nw, nw, 1);
        if (a->val[O_SVG]) {
            char why[512];
            cli_pattern p[2] = {
                { "Jacobian", jac, m, nw, 0 },
                { "Hessian of w.y", hess, nw, nw, 1 },
            };
            if (cli_pattern_svg(a->val[O_SVG], p, 2, why, sizeof why) != 0)
                rc = cli_fail(a, "%s", why);
            else
                printf("%-15s%s\n", "svg:", a->val[O_SVG]);
        }
    }
    tg_sparsity_free(jac);
    tg_sparsity_free(hess);
    return rc;
}

/* The loops (issue 11): each map or scan with its body, operand and output
 * counts, then the bodies (nested ones indented; recursion as deep as
 * bodies nest, at most 32). */
static void
print_bodies(const tg_tape *t, int indent)
{
    for (size_t j = 0; j < tg_tape_num_bodies(t); j++) {
        const tg_tape *b = tg_tape_body(t, j);
        printf("%*sbody%zu: \"%s\", %zu instructions, blocks", indent, "", j, tg_tape_name(b),
               tg_tape_size(b));
        for (size_t k = 0; k < tg_num_input_blocks(b); k++)
            printf(" %s[%zu]", tg_input_block_name(b, k), tg_input_block_size(b, k));
        printf(" ->");
        for (size_t k = 0; k < tg_num_output_blocks(b); k++)
            printf(" %s[%zu]", tg_output_block_name(b, k), tg_output_block_size(b, k));
        printf("\n");
        print_bodies(b, indent + 2);
    }
}

static void
print_loops(const tg_tape *t)
{
    if (tg_tape_num_bodies(t) == 0)
        return;
    printf("loops:\n");
    size_t n = tg_tape_size(t);
    for (size_t i = 0; i < n; i++) {
        tg_insn in;
        if (tg_tape_insn(t, i, &in) != TG_OK || !(tg_op_flags(in.op) & TG_OPF_MULTI))
            continue;
        size_t nout = 0;
        tg_insn o;
        while (i + 1 + nout < n && tg_tape_insn(t, i + 1 + nout, &o) == TG_OK
               && o.op == TG_OP_XOUT && o.operand[0] == i)
            nout++;
        printf("  %%%zu %s body%u: %u operands, %zu outputs\n", i, tg_op_name(in.op),
               (unsigned)in.body, (unsigned)in.noperands, nout);
    }
    printf("bodies:\n");
    print_bodies(t, 2);
}

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    const char *path = a->pos[0];
    if (a->val[O_WRT] && !a->val[O_SPARSITY] && !a->val[O_SVG])
        return cli_usage(a, "--wrt applies to --sparsity and --svg");
    tg_tape *t = cli_load(a, path, &rc);
    if (!t)
        return rc;
    int wrt = TG_ALL;
    if ((rc = cli_wrt(a, t, a->val[O_WRT], &wrt)) != CLI_OK) {
        tg_tape_free(t);
        return rc;
    }
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
    print_loops(t);
    if (a->val[O_SPARSITY] || a->val[O_SVG])
        rc = sparsity(a, t, wrt);
    tg_tape_free(t);
    return rc;
}

const cli_cmd cli_cmd_info = {
    "info", "info FILE [--sparsity] [--svg SVG] [--wrt BLOCK]",
    "describe a tape file: name, blocks, instruction count, op histogram, size, sparsity",
    "Prints the tape's name, its input and output blocks (index, name[size] and\n"
    "offset in the flat array), the number of instructions, how many there are of\n"
    "each op, the bytes the loaded tape occupies (tg_tape_bytes) and the file size;\n"
    "for a tape with loops, each map and scan (its body, operand and output\n"
    "counts) and the bodies with their blocks, nested bodies indented.\n"
    "  --sparsity    also the structural sparsity patterns (tg_jacobian_sparsity,\n"
    "                tg_hessian_sparsity): the m x n_w Jacobian and the lower\n"
    "                triangle of the Hessian of w . y (any weights w), each with\n"
    "                its nnz, the colours (sweeps) one evaluation needs and an\n"
    "                ASCII picture of at most 64 x 32 characters ('#' nonzero;\n"
    "                larger matrices are downsampled, a character per block)\n"
    "  --svg SVG     also draw both patterns into the SVG file SVG (implies\n"
    "                --sparsity; at most 400 x 400 cells per pattern)\n"
    "  --wrt BLOCK   the patterns with respect to one input block, by name or\n"
    "                0-based index (default: all inputs; n_w is its size)\n"
    "\n"
    "Examples:\n"
    "  tapegen example rosenbrock --n 3 -o f.tape && tapegen info f.tape\n"
    "  tapegen example broyden --n 1000 -o b.tape && tapegen info b.tape --sparsity\n",
    opts, 1, 1, run,
};
