/* src/cli/opts.c -- the option parser shared by every subcommand, and the
 * parsers of option values (number lists, optimisation levels, blocks).
 *
 * Options are "--name VALUE", "--name=VALUE" or "-o VALUE"; flags take no
 * value; "--" ends the options; "-h"/"--help" anywhere asks for the
 * command's help.  A value option given twice is a usage error. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int
find_opt(const cli_cmd *c, const char *word, size_t len)
{
    for (int i = 0; c->opts && c->opts[i].name; i++) {
        const cli_opt *o = &c->opts[i];
        if ((strlen(o->name) == len && strncmp(o->name, word, len) == 0)
            || (o->alias && strlen(o->alias) == len && strncmp(o->alias, word, len) == 0))
            return i;
    }
    return -1;
}

/* One option word at argv[*i]; advances *i past its value. */
static int
parse_opt(cli_args *a, int argc, char **argv, int *i)
{
    const char *w = argv[*i];
    const char *eq = strncmp(w, "--", 2) == 0 ? strchr(w, '=') : NULL;
    size_t len = eq ? (size_t)(eq - w) : strlen(w);
    int k = find_opt(a->cmd, w, len);
    if (k < 0)
        return cli_usage(a, "unknown option '%.*s'", (int)len, w);
    const cli_opt *o = &a->cmd->opts[k];
    if (!o->metavar) {
        if (eq)
            return cli_usage(a, "option '%s' takes no value", o->name);
        a->val[k] = "";
        return CLI_OK;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (!v) {
        if (*i + 1 >= argc)
            return cli_usage(a, "option '%s' needs a value (%s)", o->name, o->metavar);
        v = argv[++*i];
    }
    if (a->val[k])
        return cli_usage(a, "option '%s' given twice", o->name);
    a->val[k] = v;
    return CLI_OK;
}

int
cli_parse(const cli_cmd *c, int argc, char **argv, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = c;
    a->pos = cli_alloc((size_t)argc + 1, sizeof *a->pos);
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return -1;
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!only_pos && strcmp(w, "--") == 0) {
            only_pos = 1;
        } else if (!only_pos && w[0] == '-' && w[1] != '\0') {
            int rc = parse_opt(a, argc, argv, &i);
            if (rc != CLI_OK)
                return rc;
        } else {
            a->pos[a->npos++] = w;
        }
    }
    if (a->npos < c->min_pos)
        return cli_usage(a, "missing argument");
    if (c->max_pos >= 0 && a->npos > c->max_pos)
        return cli_usage(a, "unexpected argument '%s'", a->pos[c->max_pos]);
    return CLI_OK;
}

/* ------------------------------------------------------------ values */

enum { NUM_OK, NUM_BAD, NUM_OVERFLOW, NUM_UNDERFLOW };

/* One number of s[0..len): NUM_OK, or why not.  `inf` and `nan` spelt out
 * are numbers; a finite literal beyond DBL_MAX, or a nonzero one that
 * rounds to 0, is refused rather than silently changed (a subnormal
 * result is kept: it is the nearest double, not a different number). */
static int
parse_number(const char *s, size_t len, double *v)
{
    char buf[64];
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof buf)
        return NUM_BAD;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    *v = strtod(buf, &end);
    if (*end != '\0' || end == buf)
        return NUM_BAD;
    if (errno == ERANGE && isinf(*v))
        return NUM_OVERFLOW;
    if (errno == ERANGE && *v == 0.0)
        return NUM_UNDERFLOW;
    return NUM_OK;
}

int
cli_numbers(const cli_args *a, const char *opt, const char *s, double **v, size_t *n)
{
    size_t count = *s ? 1 : 0;
    for (const char *p = s; *p; p++)
        count += *p == ',';
    *v = cli_alloc(count + 1, sizeof **v);
    *n = count;
    const char *p = s;
    for (size_t i = 0; i < count; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int why = parse_number(p, len, &(*v)[i]);
        if (why != NUM_OK) {
            static const char *const what[] = {
                [NUM_BAD] = "is not a number",
                [NUM_OVERFLOW] = "is out of range (beyond the largest double; write inf for "
                                 "infinity)",
                [NUM_UNDERFLOW] = "is out of range (nonzero, but below the smallest double; "
                                  "write 0 for zero)",
            };
            int rc = cli_usage(a, "%s: '%.*s' %s (value %zu of '%s')", opt, (int)len, p,
                               what[why], i + 1, s);
            free(*v);
            *v = NULL;
            return rc;
        }
        p = e ? e + 1 : p + len;
    }
    return CLI_OK;
}

int
cli_vector(const cli_args *a, const char *opt, const char *s, const tg_tape *t, size_t want,
           const char *what, double **v)
{
    size_t n;
    int rc = cli_numbers(a, opt, s, v, &n);
    if (rc != CLI_OK)
        return rc;
    if (n != want) {
        free(*v);
        *v = NULL;
        return cli_usage(a, "%s has %zu %s; tape \"%s\" has %zu %s", opt, n,
                         cli_plural(n, "value", "values"), tg_tape_name(t), want, what);
    }
    return CLI_OK;
}

int
cli_level(const cli_args *a, const char *opt, const char *s, tg_opt_level *level)
{
    static const char *const names[] = { "none", "basic", "medium", "high", "max" };
    if (!s)
        return CLI_OK;
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0 || (s[0] == '0' + i && s[1] == '\0')) {
            *level = (tg_opt_level)i;
            return CLI_OK;
        }
    }
    return cli_usage(a, "%s: unknown level '%s' (none, basic, medium, high or max)", opt, s);
}

int
cli_count(const cli_args *a, const char *opt, const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return cli_usage(a, "%s: '%s' is not an integer in %zu..%zu", opt, s, lo, hi);
    *out = (size_t)v;
    return CLI_OK;
}

int
cli_wrt(const cli_args *a, const tg_tape *t, const char *s, int *wrt)
{
    *wrt = TG_ALL;
    if (!s)
        return CLI_OK;
    int k = tg_input_block_index(t, s);
    if (k >= 0) {
        *wrt = k;
        return CLI_OK;
    }
    size_t nb = tg_num_input_blocks(t), idx;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    idx = (size_t)v;
    if (s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 && idx < nb) {
        *wrt = (int)idx;
        return CLI_OK;
    }
    char names[400] = "";
    size_t len = 0;
    for (size_t i = 0; i < nb && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%zu '%s'", i ? ", " : "", i,
                                tg_input_block_name(t, i));
    return cli_usage(a, "--wrt: tape \"%s\" has no input block '%s' (blocks: %s)",
                     tg_tape_name(t), s, names);
}
