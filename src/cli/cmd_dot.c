/* src/cli/cmd_dot.c -- `tapegen dot FILE`: the tape as a Graphviz digraph.
 * One node per instruction (inputs as boxes, constants as plain text,
 * operations as ellipses), edges operand -> result (numbered when the
 * operand order matters), one node per output scalar.  Deterministic:
 * everything is ordered by instruction index. */
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

static void
node(const cli_prog *p, size_t i)
{
    unsigned op = p->op[i];
    printf("  n%zu [label=", i);
    quoted(p->label[i] ? p->label[i] : tg_op_name((tg_opcode)op));
    if (op == TG_OP_INPUT)
        printf(", shape=box, style=filled, fillcolor=\"#dbe9f6\"");
    else if (op == TG_OP_CONST)
        printf(", shape=plaintext");
    printf(", tooltip=\"%%%zu\"];\n", i);
}

static void
edges(const cli_prog *p, size_t i)
{
    int ar = tg_op_arity((tg_opcode)p->op[i]);
    int ordered = ar > 1 && !(cli_op_flags(p->op[i]) & TG_F_COMM);
    for (int k = 0; k < ar; k++) {
        printf("  n%u -> n%zu", (unsigned)p->opnd[i][k], i);
        if (ordered)
            printf(" [label=\"%d\"]", k + 1);
        printf(";\n");
    }
}

static void
graph(const tg_tape *t, const cli_prog *p)
{
    printf("digraph ");
    quoted(tg_tape_name(t));
    printf(" {\n  graph [label=");
    quoted(tg_tape_name(t));
    printf(", labelloc=t];\n  node [fontname=\"Helvetica\", shape=ellipse];\n"
           "  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (size_t i = 0; i < p->n; i++)
        node(p, i);
    for (size_t i = 0; i < p->n; i++)
        edges(p, i);
    for (size_t j = 0; j < p->nout; j++) {
        printf("  out%zu [label=", j);
        quoted(p->out_label[j]);
        printf(", shape=doubleoctagon, style=filled, fillcolor=\"#fbe3c5\"];\n");
        printf("  n%u -> out%zu;\n", (unsigned)p->out[j], j);
    }
    printf("}\n");
}

static int
run(const cli_args *a)
{
    int rc = CLI_OK;
    tg_tape *t = cli_load(a, a->pos[0], &rc);
    if (!t)
        return rc;
    cli_prog p;
    int got = cli_prog_read(&p, t);
    if (got != 0) {
        tg_tape_free(t);
        return cli_fail(a, "%s: %s", a->pos[0], got == CLI_PROG_NOMEM
                        ? "out of memory reading the tape's instructions"
                        : "cannot read the tape's disassembly");
    }
    graph(t, &p);
    cli_prog_free(&p);
    tg_tape_free(t);
    return CLI_OK;
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
