/* src/cli/cmd_dot.c -- `tapegen dot FILE`: the tape as a Graphviz digraph.
 * One node per instruction (inputs as boxes, constants as plain text,
 * operations as ellipses), edges operand -> result (numbered when the
 * operand order matters), one node per output scalar.  A loop (map, scan)
 * is a 3-d box naming its body, with an edge from each operand (numbered
 * in the operand-list order) and one to each of its outputs (xout k).
 * Deterministic: everything is ordered by instruction index. */
#include <stdlib.h>

#include "cli/cli.h"

/* s as the body of a dot "..." string. */
static void
quoted(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

/* "block[k]" for flat input (or output) scalar k: the block holding it. */
static void
scalar_label(char *buf, size_t len, const tg_tape *t, int input, size_t k)
{
    size_t nb = input ? tg_num_input_blocks(t) : tg_num_output_blocks(t);
    for (size_t b = 0; b < nb; b++) {
        size_t off = input ? tg_input_block_offset(t, b) : tg_output_block_offset(t, b);
        size_t size = input ? tg_input_block_size(t, b) : tg_output_block_size(t, b);
        if (k >= off && k - off < size) {
            snprintf(buf, len, "%s[%zu]", input ? tg_input_block_name(t, b)
                                                : tg_output_block_name(t, b), k - off);
            return;
        }
    }
    snprintf(buf, len, "?[%zu]", k);
}

/* A constant as the disassembly spells it: the shortest %g that reads back
 * to the same double (inf, -inf, nan and -0 as C prints them). */
static void
const_label(char *buf, size_t len, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (v != v || strtod(buf, NULL) == v)
            return;
    }
}

static void
node(const tg_tape *t, size_t i, const tg_insn *in)
{
    char label[600];
    if (in->op == TG_OP_INPUT)
        scalar_label(label, sizeof label, t, 1, in->input);
    else if (in->op == TG_OP_CONST)
        const_label(label, sizeof label, in->value);
    else if (in->op == TG_OP_XOUT)
        snprintf(label, sizeof label, "out %u", (unsigned)in->input);
    else if (tg_op_flags(in->op) & TG_OPF_MULTI)
        snprintf(label, sizeof label, "%s body%u (\"%s\")", tg_op_name(in->op), (unsigned)in->body,
                 tg_tape_name(tg_tape_body(t, in->body)));
    else
        snprintf(label, sizeof label, "%s", tg_op_name(in->op) ? tg_op_name(in->op) : "?");
    printf("  n%zu [label=", i);
    quoted(label);
    if (in->op == TG_OP_INPUT)
        printf(", shape=box, style=filled, fillcolor=\"#dbe9f6\"");
    else if (in->op == TG_OP_CONST)
        printf(", shape=plaintext");
    else if (tg_op_flags(in->op) & TG_OPF_MULTI)
        printf(", shape=box3d, style=filled, fillcolor=\"#e3f0d8\"");
    else if (in->op == TG_OP_XOUT)
        printf(", shape=circle, fontsize=9");
    printf(", tooltip=\"%%%zu\"];\n", i);
}

/* Operand -> result, numbered where the order matters (not commutative);
 * a loop's operand list is read in chunks. */
static int
edges(const tg_tape *t, size_t i, const tg_insn *in)
{
    if (tg_op_flags(in->op) & TG_OPF_MULTI) {
        uint32_t buf[256];
        for (size_t k0 = 0; k0 < in->noperands; k0 += 256) {
            size_t cnt = in->noperands - k0 < 256 ? in->noperands - k0 : 256;
            if (tg_tape_insn_operands(t, i, k0, cnt, buf) != TG_OK)
                return -1;
            for (size_t k = 0; k < cnt; k++)
                printf("  n%u -> n%zu [label=\"%zu\"];\n", (unsigned)buf[k], i, k0 + k + 1);
        }
        return 0;
    }
    int ordered = in->noperands > 1 && !(tg_op_flags(in->op) & TG_OPF_COMMUTATIVE);
    for (uint32_t k = 0; k < in->noperands && k < 3; k++) {
        printf("  n%u -> n%zu", (unsigned)in->operand[k], i);
        if (ordered)
            printf(" [label=\"%u\"]", (unsigned)k + 1);
        printf(";\n");
    }
    return 0;
}

/* 0, or -1 if an instruction cannot be read (tg_last_error says why). */
static int
graph(const tg_tape *t)
{
    size_t n = tg_tape_size(t), m = tg_num_outputs(t);
    tg_insn *ins = cli_alloc(n, sizeof *ins);
    for (size_t i = 0; i < n; i++)
        if (tg_tape_insn(t, i, &ins[i]) != TG_OK) {
            free(ins);
            return -1;
        }
    printf("digraph ");
    quoted(tg_tape_name(t));
    printf(" {\n  graph [label=");
    quoted(tg_tape_name(t));
    printf(", labelloc=t];\n  node [fontname=\"Helvetica\", shape=ellipse];\n"
           "  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (size_t i = 0; i < n; i++)
        node(t, i, &ins[i]);
    for (size_t i = 0; i < n; i++)
        if (edges(t, i, &ins[i]) != 0) {
            free(ins);
            return -1;
        }
    for (size_t j = 0; j < m; j++) {
        char label[600];
        scalar_label(label, sizeof label, t, 0, j);
        printf("  out%zu [label=", j);
        quoted(label);
        printf(", shape=doubleoctagon, style=filled, fillcolor=\"#fbe3c5\"];\n");
        printf("  n%u -> out%zu;\n", (unsigned)tg_output_ref(t, j), j);
    }
    printf("}\n");
    free(ins);
    return 0;
}

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    tg_tape *t = cli_load(a, a->pos[0], &rc);
    if (!t)
        return rc;
    if (graph(t) != 0)
        rc = cli_fail(a, "%s: %s", a->pos[0], tg_last_error());
    tg_tape_free(t);
    return rc;
}

static const cli_opt opts[] = { { NULL, NULL, NULL } };

const cli_cmd cli_cmd_dot = {
    "dot", "dot FILE",
    "print the tape as a Graphviz graph (tapegen dot f.tape | dot -Tsvg > f.svg)",
    "Prints a Graphviz digraph: one node per instruction, labelled with its op,\n"
    "its constant or its input (block[k]); edges from operands to results,\n"
    "numbered 1, 2, 3 where the order matters (sub, div, pow, select, ...); one\n"
    "node per output scalar.  The output is deterministic.\n"
    "\n"
    "Example:\n"
    "  tapegen dot f.tape | dot -Tsvg > f.svg\n",
    opts, 1, 1, run,
};
