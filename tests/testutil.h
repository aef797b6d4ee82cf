/* tests/testutil.h -- shared helpers for the Criterion tests.
 *
 * Central differences, relative/absolute and ulp comparisons, NaN-aware
 * equality, bit equality, a seeded RNG, the shortest round-trip %g
 * formatting used by the disassembler, and small wrappers around the numeric
 * API that assert TG_OK.  Everything is static so each test executable gets
 * its own copy. */
#ifndef TAPEGEN_TESTUTIL_H
#define TAPEGEN_TESTUTIL_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegen.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_E
#define M_E 2.7182818284590452354
#endif

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#else
#define TU_UNUSED
#endif

/* ------------------------------------------------------------ bits */

TU_UNUSED static uint64_t tu_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

TU_UNUSED static double tu_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Bit-for-bit equality. */
TU_UNUSED static int tu_same_bits(double a, double b)
{
    return tu_bits(a) == tu_bits(b);
}

/* Bit equality, except that any two NaNs are equal (payloads may differ). */
TU_UNUSED static int tu_same_bits_nan(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return tu_same_bits(a, b);
}

/* a == b, or both NaN (so +0 == -0). */
TU_UNUSED static int tu_same_value(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* Distance in ulps between two finite doubles of any signs (+0 and -0 are 0
 * apart); UINT64_MAX if either is NaN or exactly one is infinite. */
TU_UNUSED static uint64_t tu_ulp_diff(double a, double b)
{
    if (isnan(a) || isnan(b))
        return UINT64_MAX;
    if (a == b)
        return 0;
    if (isinf(a) || isinf(b))
        return UINT64_MAX;
    int64_t ia = (int64_t)tu_bits(a), ib = (int64_t)tu_bits(b);
    if (ia < 0)
        ia = INT64_MIN - ia;
    if (ib < 0)
        ib = INT64_MIN - ib;
    return ia > ib ? (uint64_t)ia - (uint64_t)ib : (uint64_t)ib - (uint64_t)ia;
}

/* |a - b| <= atol + rtol * max(|a|, |b|); NaN matches only NaN and an
 * infinity only the same infinity. */
TU_UNUSED static int tu_close(double a, double b, double rtol, double atol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    double d = fabs(a - b), s = fmax(fabs(a), fabs(b));
    return d <= atol + rtol * s;
}

/* CppAD's absolute-zero product: 0 if either factor is exactly 0. */
TU_UNUSED static double tu_azmul(double a, double b)
{
    return (a == 0.0 || b == 0.0) ? 0.0 : a * b;
}

/* ------------------------------------------------------ finite differences */

/* A vector function y = F(x) with a context pointer (the one shape every
 * central difference below goes through). */
typedef void (*tu_vfn)(const double *x, double *y, const void *ctx);

/* THE central difference of the tests: d[0..m) = (F(x + h v) - F(x - h v))
 * / s, where s is the step actually taken, measured on the largest
 * component v_k of v: s = ((x_k + h v_k) - (x_k - h v_k)) / v_k (for a unit
 * vector e_k exactly the representable step (x_k + h) - (x_k - h)).
 * x, v: n doubles; d: m doubles.  A zero v gives d = 0. */
TU_UNUSED static void tu_cdiff_dir(tu_vfn F, const void *ctx, size_t n, size_t m,
                                   const double *x, const double *v, double h, double *d)
{
    double *xp = malloc((n + 1) * sizeof *xp), *xm = malloc((n + 1) * sizeof *xm);
    double *yp = malloc((m + 1) * sizeof *yp), *ym = malloc((m + 1) * sizeof *ym);
    cr_assert(xp && xm && yp && ym, "tu_cdiff_dir: out of memory");
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        xp[j] = x[j] + h * v[j];
        xm[j] = x[j] - h * v[j];
        if (fabs(v[j]) > fabs(v[k]))
            k = j;
    }
    if (n == 0 || v[k] == 0.0) {
        for (size_t i = 0; i < m; i++)
            d[i] = 0.0;
    } else {
        double s = (xp[k] - xm[k]) / v[k];
        F(xp, yp, ctx);
        F(xm, ym, ctx);
        for (size_t i = 0; i < m; i++)
            d[i] = (yp[i] - ym[i]) / s;
    }
    free(xp);
    free(xm);
    free(yp);
    free(ym);
}

/* The step for a partial derivative at x: h = 1e-6 * max(1, |x|). */
TU_UNUSED static double tu_fd_step(double x)
{
    return 1e-6 * fmax(1.0, fabs(x));
}

/* A scalar function of n variables with a context pointer. */
typedef double (*tu_fn)(const double *x, const void *ctx);

typedef struct tu_scalar_ctx {
    tu_fn f;
    const void *ctx;
} tu_scalar_ctx;

TU_UNUSED static void tu_scalar_as_vfn(const double *x, double *y, const void *ctx)
{
    const tu_scalar_ctx *c = ctx;
    y[0] = c->f(x, c->ctx);
}

/* d f / d x_j by central differences with step tu_fd_step(x_j). */
TU_UNUSED static double tu_cdiff(tu_fn f, const void *ctx, size_t n, const double *x, size_t j)
{
    double *e = calloc(n + 1, sizeof *e), d;
    cr_assert(e != NULL, "tu_cdiff: out of memory");
    e[j] = 1.0;
    tu_scalar_ctx c = { f, ctx };
    tu_cdiff_dir(tu_scalar_as_vfn, &c, n, 1, x, e, tu_fd_step(x[j]), &d);
    free(e);
    return d;
}

/* Gradient of f by central differences. */
TU_UNUSED static void tu_cdiff_grad(tu_fn f, const void *ctx, size_t n, const double *x, double *g)
{
    for (size_t j = 0; j < n; j++)
        g[j] = tu_cdiff(f, ctx, n, x, j);
}

/* A tape as a tu_vfn: tg_eval (y: m doubles) and tg_gradient (y: n
 * doubles), asserting TG_OK. */
TU_UNUSED static void tu_tape_eval_fn(const double *x, double *y, const void *tape)
{
    tg_status s = tg_eval(tape, x, y);
    cr_assert(s == TG_OK, "tg_eval for a central difference: %s: %s", tg_status_str(s),
              tg_last_error());
}

TU_UNUSED static void tu_tape_grad_fn(const double *x, double *y, const void *tape)
{
    tg_status s = tg_gradient(tape, x, y);
    cr_assert(s == TG_OK, "tg_gradient for a central difference: %s: %s", tg_status_str(s),
              tg_last_error());
}

/* d y_i / d x_j of the tape t at x (all n inputs) by central differences
 * of tg_eval, step tu_fd_step(x_j). */
TU_UNUSED static double tu_cdiff_tape(const tg_tape *t, const double *x, size_t i, size_t j)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    double *e = calloc(n + 1, sizeof *e), *d = malloc((m + 1) * sizeof *d);
    cr_assert(e && d, "tu_cdiff_tape: out of memory");
    e[j] = 1.0;
    tu_cdiff_dir(tu_tape_eval_fn, t, n, m, x, e, tu_fd_step(x[j]), d);
    double r = d[i];
    free(e);
    free(d);
    return r;
}

/* Central differences of the tape's own gradient (tg_gradient) in direction
 * v: approximately H(x) v.  The step is 1e-6 * max(1, |x|_inf) / |v|_inf. */
TU_UNUSED static void tu_cdiff_hvp(const tg_tape *t, const double *x, const double *v, double *hv)
{
    size_t n = tg_num_inputs(t);
    double xmax = 0.0, vmax = 0.0;
    for (size_t j = 0; j < n; j++) {
        xmax = fmax(xmax, fabs(x[j]));
        vmax = fmax(vmax, fabs(v[j]));
    }
    if (vmax == 0.0)
        vmax = 1.0;
    tu_cdiff_dir(tu_tape_grad_fn, t, n, n, x, v, 1e-6 * fmax(1.0, xmax) / vmax, hv);
}

/* ----------------------------------------------------------------- RNG */

/* splitmix64: deterministic, seeded. */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;

TU_UNUSED static uint64_t tu_rng_next(tu_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
TU_UNUSED static double tu_rng_unit(tu_rng *r)
{
    return (double)(tu_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi). */
TU_UNUSED static double tu_rng_range(tu_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * tu_rng_unit(r);
}

/* Uniform integer in [0, n). */
TU_UNUSED static size_t tu_rng_below(tu_rng *r, size_t n)
{
    return (size_t)(tu_rng_next(r) % (uint64_t)n);
}

/* ------------------------------------------------------------ formatting */

/* The disassembler's spelling of a constant: shortest %.{1..17}g that reads
 * back to the same bits; inf, -inf, nan (the default quiet NaN, NAN's bits),
 * nan:0x<16 hex digits> for any other NaN, -0 for negative zero. */
TU_UNUSED static void tu_fmt_const(char *buf, size_t len, double c)
{
    if (isnan(c)) {
        if (tu_bits(c) == tu_bits(NAN))
            snprintf(buf, len, "nan");
        else
            snprintf(buf, len, "nan:0x%016" PRIx64, tu_bits(c));
        return;
    }
    if (isinf(c)) {
        snprintf(buf, len, c > 0 ? "inf" : "-inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, c);
        if (tu_same_bits(strtod(buf, NULL), c))
            return;
    }
}

/* Prints the two strings and the first differing line (for golden tests). */
TU_UNUSED static void tu_show_diff(const char *got, const char *want)
{
    size_t line = 1;
    const char *g = got, *w = want;
    while (*g && *w && *g == *w) {
        if (*g == '\n')
            line++;
        g++;
        w++;
    }
    cr_log_error("golden mismatch at line %zu\n--- got ---\n%s--- want ---\n%s", line, got, want);
}

/* Asserts that tg_tape_disasm(t) is exactly `want` (whole-string compare). */
#define tu_assert_disasm(t, want)                                                   \
    do {                                                                            \
        char *tu_d_ = tg_tape_disasm(t);                                            \
        cr_assert(tu_d_ != NULL, "tg_tape_disasm returned NULL");                   \
        int tu_eq_ = strcmp(tu_d_, (want)) == 0;                                    \
        if (!tu_eq_)                                                                \
            tu_show_diff(tu_d_, (want));                                            \
        cr_expect(tu_eq_, "disassembly differs:\n--- got ---\n%s--- want ---\n%s", \
                  tu_d_, (want));                                                   \
        free(tu_d_);                                                                \
    } while (0)

/* ------------------------------------------------------------- API wrappers */

#define TU_OK(call)                                                              \
    do {                                                                         \
        tg_status tu_s_ = (call);                                                \
        cr_assert(tu_s_ == TG_OK, "%s returned %d (%s): %s", #call, (int)tu_s_, \
                  tg_status_str(tu_s_), tg_last_error());                        \
    } while (0)

/* A fresh tape that must be valid. */
TU_UNUSED static tg_tape *tu_tape(const char *name, unsigned flags)
{
    tg_tape *t = flags ? tg_tape_new_ex(name, flags) : tg_tape_new(name);
    cr_assert(t != NULL, "tape allocation failed");
    cr_assert(tg_tape_status(t) == TG_OK, "new tape in error: %s", tg_tape_error(t));
    return t;
}

/* Asserts the tape recorded without error. */
#define TU_TAPE_OK(t)                                                                   \
    cr_assert(tg_tape_status(t) == TG_OK, "tape \"%s\" in error state %d: %s",         \
              tg_tape_name(t) ? tg_tape_name(t) : "?", (int)tg_tape_status(t), \
              tg_tape_error(t))

/* Short description of a double for messages: %.17g plus the bits. */
typedef struct tu_dstr {
    char s[64];
} tu_dstr;

TU_UNUSED static tu_dstr tu_d(double v)
{
    tu_dstr r;
    snprintf(r.s, sizeof r.s, "%.17g [0x%016" PRIx64 "]", v, tu_bits(v));
    return r;
}

#endif /* TAPEGEN_TESTUTIL_H */
