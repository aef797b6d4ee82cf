/* src/cli/prog.c -- a tape's instructions for `info` and `dot`, read back
 * from tg_tape_disasm (the public API's one view of them).  The text is
 * read by position: a header line, one line per input block and per output
 * block, one per instruction ("%i = op ..."), one per output scalar
 * ("block[k] = %i"); the counts come from the API, so block names holding
 * spaces, '=' or '%' cannot confuse it. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const unsigned op_flags[TG_OP_COUNT] = {
#define LEAF(NAME, name) 0,
#define OP(NAME, name, arity, flags, expr, rust) flags,
#include "tapegen/ops.def"
};

unsigned
cli_op_flags(unsigned op)
{
    return op < TG_OP_COUNT ? op_flags[op] : 0;
}

static int
op_code(const char *name, size_t len)
{
    for (int op = 0; op < TG_OP_COUNT; op++) {
        const char *s = tg_op_name((tg_opcode)op);
        if (s && strlen(s) == len && strncmp(s, name, len) == 0)
            return op;
    }
    return -1;
}

/* "%<digits>" at *s; advances past it. */
static int
ref(const char **s, uint32_t *out)
{
    const char *p = *s;
    if (*p++ != '%' || *p < '0' || *p > '9')
        return -1;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9' && v <= UINT32_MAX)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    *s = p;
    return 0;
}

/* "%i = op[ rest]" for instruction i. */
static int
inst(cli_prog *p, size_t i, const char *line)
{
    uint32_t id;
    if (ref(&line, &id) || id != i || strncmp(line, " = ", 3) != 0)
        return -1;
    line += 3;
    size_t len = strcspn(line, " ");
    int op = op_code(line, len);
    if (op < 0)
        return -1;
    p->op[i] = (uint8_t)op;
    line += len;
    if (op == TG_OP_CONST || op == TG_OP_INPUT) {
        if (*line++ != ' ')
            return -1;
        p->label[i] = line;
        return 0;
    }
    int ar = tg_op_arity((tg_opcode)op);
    for (int k = 0; k < ar; k++)
        if (*line++ != ' ' || ref(&line, &p->opnd[i][k]) || p->opnd[i][k] >= i)
            return -1;
    return *line == '\0' ? 0 : -1;
}

/* "block[k] = %i": the last " = %" ends the label. */
static int
output(cli_prog *p, size_t j, char *line)
{
    char *sep = NULL;
    for (char *q = strstr(line, " = %"); q; q = strstr(q + 1, " = %"))
        sep = q;
    if (!sep)
        return -1;
    const char *r = sep + 3;
    if (ref(&r, &p->out[j]) || *r != '\0' || p->out[j] >= p->n)
        return -1;
    *sep = '\0';
    p->out_label[j] = line;
    return 0;
}

static int
parse(cli_prog *p, const tg_tape *t)
{
    size_t nlines = 1 + tg_num_input_blocks(t) + tg_num_output_blocks(t) + p->n + p->nout;
    char *line = p->text;
    for (size_t k = 0; k < nlines; k++) {
        char *nl = strchr(line, '\n');
        if (!nl)
            return -1;
        *nl = '\0';
        size_t first_inst = 1 + tg_num_input_blocks(t) + tg_num_output_blocks(t);
        if (k >= first_inst && k < first_inst + p->n && inst(p, k - first_inst, line))
            return -1;
        if (k >= first_inst + p->n && output(p, k - first_inst - p->n, line))
            return -1;
        line = nl + 1;
    }
    return *line == '\0' ? 0 : -1;
}

int
cli_prog_read(cli_prog *p, const tg_tape *t)
{
    memset(p, 0, sizeof *p);
    p->text = tg_tape_disasm(t);
    if (!p->text)
        return CLI_PROG_NOMEM;
    p->n = tg_tape_size(t);
    p->nout = tg_num_outputs(t);
    p->op = cli_alloc(p->n, sizeof *p->op);
    p->opnd = cli_alloc(p->n, sizeof *p->opnd);
    p->label = cli_alloc(p->n, sizeof *p->label);
    p->out = cli_alloc(p->nout, sizeof *p->out);
    p->out_label = cli_alloc(p->nout, sizeof *p->out_label);
    if (parse(p, t) != 0) {
        cli_prog_free(p);
        return -1;
    }
    return 0;
}

void
cli_prog_free(cli_prog *p)
{
    free(p->text);
    free(p->op);
    free(p->opnd);
    free(p->label);
    free(p->out);
    free(p->out_label);
    memset(p, 0, sizeof *p);
}
