/* nist.c -- a line-oriented reader for NIST StRD nonlinear regression files.
 *
 * The file is read whole, split into lines, and each line is classified by
 * its leading words ("Dataset Name:", "b3 =", "Residual Sum of Squares:",
 * "Data:  y  x", ...).  Nothing is assumed about line numbers.  Whatever is
 * missing or malformed is an error naming the file and line.
 */
#include "nist.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} reader;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
fail(reader *r, int line, const char *fmt, ...)
{
    va_list ap;
    int off;

    if (r->failed)
        return;
    r->failed = 1;
    if (r->errlen == 0)
        return;
    off = line > 0 ? snprintf(r->err, r->errlen, "%s:%d: ", r->path, line)
                   : snprintf(r->err, r->errlen, "%s: ", r->path);
    if (off < 0 || (size_t)off >= r->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(r->err + off, r->errlen - (size_t)off, fmt, ap);
    va_end(ap);
}

/* The whole file as a NUL-terminated string, or NULL. */
static char *
slurp(reader *r)
{
    FILE *f = fopen(r->path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, got;

    if (!f) {
        fail(r, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    do {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap ? 2 * cap : 16384);
            if (!nb) {
                fail(r, 0, "out of memory");
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = cap ? 2 * cap : 16384;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        fail(r, 0, "read error");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        fail(r, 0, "file contains NUL bytes");
        free(buf);
        return NULL;
    }
    return buf;
}

static const char *
skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Does s start with prefix (case-insensitive)? */
static int
starts_with(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix))
            return 0;
    return 1;
}

/* Parses one whitespace-delimited number at *s; advances *s past it.
 * Returns 0 on success; *digits (if non-NULL) gets the significant digits
 * of the mantissa as printed. */
static int
parse_number(const char **s, double *v, int *digits)
{
    const char *p = skip_space(*s), *q;
    char *end;
    int nd = 0, leading = 1;

    if (*p == '\0')
        return -1;
    errno = 0;
    *v = strtod(p, &end);
    if (end == p || errno == ERANGE || !isfinite(*v))
        return -1;
    if (*end != '\0' && *end != ' ' && *end != '\t')
        return -1;
    for (q = p; q < end && *q != 'e' && *q != 'E'; q++) {
        if (!isdigit((unsigned char)*q))
            continue;
        if (*q != '0')
            leading = 0;
        if (!leading)
            nd++;
    }
    if (digits)
        *digits = nd;
    *s = end;
    return 0;
}

/* The number after the first ':' of line. */
static int
number_after_colon(const char *line, double *v, int *digits)
{
    const char *p = strchr(line, ':');

    if (!p)
        return -1;
    p++;
    if (parse_number(&p, v, digits) != 0)
        return -1;
    return *skip_space(p) == '\0' ? 0 : -1;
}

/* Copies the words of src into dst joined by single spaces (appending). */
static void
append_words(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(dst);

    for (;;) {
        size_t w;
        src = skip_space(src);
        if (*src == '\0')
            break;
        for (w = 0; src[w] && src[w] != ' ' && src[w] != '\t'; w++)
            ;
        if (len + (len > 0) + w + 1 > cap)
            break;
        if (len > 0)
            dst[len++] = ' ';
        memcpy(dst + len, src, w);
        len += w;
        dst[len] = '\0';
        src += w;
    }
}

/* "b<i> = s1 s2 cert sd": returns the parameter index i >= 1, 0 if the line
 * is not a parameter row, -1 if it is one but malformed. */
static int
parse_param_row(const char *line, double v[4], int *cert_digits)
{
    const char *p = skip_space(line);
    long idx;
    char *end;

    if (*p != 'b' || !isdigit((unsigned char)p[1]))
        return 0;
    idx = strtol(p + 1, &end, 10);
    p = skip_space(end);
    if (*p != '=')
        return 0;
    p++;
    if (idx < 1 || idx > 1000)
        return -1;
    for (int j = 0; j < 4; j++)
        if (parse_number(&p, &v[j], j == 2 ? cert_digits : NULL) != 0)
            return -1;
    if (*skip_space(p) != '\0')
        return -1;
    return (int)idx;
}

/* "Data:  y  x" (column names, not "Data:  1 Response"): the number of
 * columns, with the positions of y and x; 0 if the line is not such a
 * header. */
static int
parse_data_header(const char *line, int *ycol, int *xcol)
{
    const char *p = skip_space(line);
    int ncol = 0;

    if (!starts_with(p, "Data:"))
        return 0;
    p += 5;
    *ycol = *xcol = -1;
    for (;;) {
        size_t w = 0;
        p = skip_space(p);
        if (*p == '\0')
            break;
        if (!isalpha((unsigned char)*p))
            return 0;
        while (isalnum((unsigned char)p[w]) || p[w] == '_')
            w++;
        if (p[w] != '\0' && p[w] != ' ' && p[w] != '\t')
            return 0;
        if (w == 1 && *p == 'y')
            *ycol = ncol;
        if (w == 1 && *p == 'x')
            *xcol = ncol;
        ncol++;
        p += w;
    }
    return ncol;
}

/* Reads the data rows from line index i on. */
static void
read_data(reader *r, nist_dataset *d, char **lines, size_t nlines, size_t i,
          int ncol, int ycol, int xcol)
{
    size_t cap = 0;

    for (; i < nlines && !r->failed; i++) {
        const char *p = skip_space(lines[i]);
        double v[8];

        if (*p == '\0')
            continue;
        for (int c = 0; c < ncol; c++)
            if (parse_number(&p, &v[c], NULL) != 0) {
                fail(r, (int)i + 1, "expected %d numbers in a data row", ncol);
                return;
            }
        if (*skip_space(p) != '\0') {
            fail(r, (int)i + 1, "more than %d columns in a data row", ncol);
            return;
        }
        if (d->n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            double *nx = realloc(d->x, nc * sizeof *nx);
            double *ny = nx ? realloc(d->y, nc * sizeof *ny) : NULL;
            if (nx)
                d->x = nx;
            if (!ny) {
                fail(r, 0, "out of memory");
                return;
            }
            d->y = ny;
            cap = nc;
        }
        d->x[d->n] = v[xcol];
        d->y[d->n] = v[ycol];
        d->n++;
    }
}

/* Model formula: "y = ..." plus continuation lines up to a blank line,
 * without the trailing "+ e" error term. */
static size_t
read_model(nist_dataset *d, char **lines, size_t nlines, size_t i)
{
    size_t len;

    d->model[0] = '\0';
    for (; i < nlines && *skip_space(lines[i]) != '\0'; i++)
        append_words(d->model, sizeof d->model, lines[i]);
    len = strlen(d->model);
    if (len >= 3 && strcmp(d->model + len - 3, "+ e") == 0) {
        d->model[len - 3] = '\0';
        while (len > 3 && d->model[len - 4] == ' ')
            d->model[--len - 3] = '\0';
    }
    return i;
}

static int
is_model_start(const char *line)
{
    const char *p = skip_space(line);
    return p[0] == 'y' && *skip_space(p + 1) == '=';
}

static void
parse_lines(reader *r, nist_dataset *d, char **lines, size_t nlines)
{
    int nobs = -1, have_rss = 0, in_model = 0;
    int seen[NIST_MAXP] = {0};

    for (size_t i = 0; i < nlines && !r->failed; i++) {
        const char *line = lines[i], *p = skip_space(line);
        double v[4];
        int idx, digits = 0, ncol, ycol, xcol;

        if (starts_with(p, "Dataset Name:")) {
            char tmp[sizeof d->name] = "";
            append_words(tmp, sizeof tmp, p + 13);
            tmp[strcspn(tmp, " ")] = '\0';
            memcpy(d->name, tmp, sizeof d->name);
        } else if (strstr(p, "Level of Difficulty")) {
            size_t w = strcspn(p, " \t");
            if (w >= sizeof d->difficulty)
                w = sizeof d->difficulty - 1;
            memcpy(d->difficulty, p, w);
            d->difficulty[w] = '\0';
        } else if (starts_with(p, "Model:")) {
            in_model = 1;
        } else if (in_model && is_model_start(p)) {
            i = read_model(d, lines, nlines, i);
            in_model = 0;
        } else if ((idx = parse_param_row(p, v, &digits)) != 0) {
            if (idx < 0 || idx > NIST_MAXP) {
                fail(r, (int)i + 1, "malformed parameter row (want: bI = start1 start2 certified sd)");
                return;
            }
            if (seen[idx - 1]++) {
                fail(r, (int)i + 1, "parameter b%d given twice", idx);
                return;
            }
            d->start1[idx - 1] = v[0];
            d->start2[idx - 1] = v[1];
            d->cert[idx - 1] = v[2];
            d->sd[idx - 1] = v[3];
            d->cert_digits[idx - 1] = digits;
            if (idx > d->k)
                d->k = idx;
        } else if (starts_with(p, "Residual Sum of Squares:")) {
            if (number_after_colon(p, &d->rss, &d->rss_digits) != 0) {
                fail(r, (int)i + 1, "bad residual sum of squares");
                return;
            }
            have_rss = 1;
        } else if (starts_with(p, "Number of Observations:")) {
            double n;
            if (number_after_colon(p, &n, NULL) != 0 || n < 1 || n > 1e7 || n != floor(n)) {
                fail(r, (int)i + 1, "bad number of observations");
                return;
            }
            nobs = (int)n;
        } else if ((ncol = parse_data_header(p, &ycol, &xcol)) > 0) {
            if (ycol < 0 || xcol < 0 || ncol > 8) {
                fail(r, (int)i + 1, "data header must name columns y and x (at most 8 columns)");
                return;
            }
            read_data(r, d, lines, nlines, i + 1, ncol, ycol, xcol);
            break;
        }
    }
    if (r->failed)
        return;
    if (d->k == 0)
        fail(r, 0, "no parameter rows (bI = start1 start2 certified sd)");
    for (int j = 0; j < d->k && !r->failed; j++)
        if (!seen[j])
            fail(r, 0, "parameter b%d is missing", j + 1);
    if (!have_rss)
        fail(r, 0, "no \"Residual Sum of Squares:\" line");
    else if (d->model[0] == '\0')
        fail(r, 0, "no model formula (\"y = ...\" after \"Model:\")");
    else if (d->n == 0)
        fail(r, 0, "no data (a \"Data:  y  x\" header followed by rows)");
    else if (nobs >= 0 && (size_t)nobs != d->n)
        fail(r, 0, "%zu data rows but \"Number of Observations: %d\"", d->n, nobs);
}

/* Splits buf in place into lines (CR LF or LF), returning a malloc'd array. */
static char **
split_lines(char *buf, size_t *nlines)
{
    size_t n = 1, i = 0;
    char **lines;

    for (char *p = buf; *p; p++)
        n += *p == '\n';
    lines = malloc(n * sizeof *lines);
    if (!lines)
        return NULL;
    for (char *p = buf; p; i++) {
        char *nl = strchr(p, '\n');
        lines[i] = p;
        if (nl)
            *nl = '\0';
        size_t len = strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            p[len - 1] = '\0';
        p = nl ? nl + 1 : NULL;
    }
    *nlines = i;
    return lines;
}

int
nist_load(const char *path, nist_dataset *d, char *err, size_t errlen)
{
    reader r = { path, err, errlen, 0 };
    char *buf, **lines;
    size_t nlines = 0;

    memset(d, 0, sizeof *d);
    if (errlen)
        err[0] = '\0';
    buf = slurp(&r);
    if (!buf)
        return -1;
    lines = split_lines(buf, &nlines);
    if (!lines)
        fail(&r, 0, "out of memory");
    else
        parse_lines(&r, d, lines, nlines);
    free(lines);
    free(buf);
    if (r.failed) {
        nist_free(d);
        return -1;
    }
    if (d->name[0] == '\0') {          /* fall back on the file's stem */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t w = strcspn(base, ".");
        if (w >= sizeof d->name)
            w = sizeof d->name - 1;
        memcpy(d->name, base, w);
        d->name[w] = '\0';
    }
    return 0;
}

int
nist_load_named(const char *dir, const char *name, nist_dataset *d,
                char *err, size_t errlen)
{
    size_t len = strlen(dir) + strlen(name) + 6;
    char *path = malloc(len);
    int rc;

    if (!path) {
        memset(d, 0, sizeof *d);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(path, len, "%s/%s.dat", dir, name);
    rc = nist_load(path, d, err, errlen);
    free(path);
    return rc;
}

void
nist_free(nist_dataset *d)
{
    free(d->x);
    free(d->y);
    d->x = d->y = NULL;
    d->n = 0;
}
