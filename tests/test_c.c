/* tests/test_c.c -- the C translator (tg_c_source, tg_c_files): generated
 * code compiled by the C compilers on this machine and compared with the
 * interpreter.
 *
 * Every test concatenates the sources of many kernels into ONE file (the
 * helpers are guarded for that), compiles it once per compiler found (gcc,
 * clang; a missing one is skipped with a warning) with
 *   -std=c11 -Wall -Wextra -pedantic -Werror -ffp-contract=off
 * into a shared object, dlopens it and checks, at points full of specials
 * (+-0, +-Inf, NaN, subnormals, huge values):
 *  - NAME(x) against tg_eval BIT FOR BIT (NaN payloads aside);
 *  - NAME_batch over all points (a partial last block included) against
 *    NAME bit for bit;
 * for every opcode (the list is expanded from ops.def: an op added later is
 * tested automatically), with input and constant operands; every recorder of
 * the CONVENTIONS rows (tests/convrows.h), on default and no-fold
 * tapes, and their gradient and Hessian tapes; random tapes with special
 * constants and their gradient tapes, cut into tiny parts so that values
 * cross parts through work slots; a deep chain.  The f32 option is compiled
 * and compared for closeness.  A 10^6-deep chain is translated inside a
 * thread with a 1 MiB stack. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "testutil.h"
#include "convrows.h"

typedef int (*kern_fn)(const double *, double *, double *);
typedef int (*batch_fn)(size_t, const double *, double *, double *);
typedef int (*kern32_fn)(const float *, float *, float *);

/* ---------------------------------------------------------- kernel sets */

typedef struct kcase {
    char name[48];
    tg_tape *t;
    size_t work;
    int batch;          /* NAME_batch compiled and checked too */
    int close_only;     /* f32: compared for closeness at benign points */
} kcase;

typedef struct kset {
    kcase k[1024];
    size_t n;
    char *src;
    size_t len, cap;
    int f32;
} kset;

static void append(kset *s, const char *text)
{
    size_t n = strlen(text);
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->src = realloc(s->src, s->cap);
        cr_assert(s->src != NULL);
    }
    memcpy(s->src + s->len, text, n + 1);
    s->len += n;
}

/* Adds tape t (owned by the set) as kernel "<tag><index>", with its batch
 * variant when batch is set (compile time: not for every kernel). */
static void add_b(kset *s, tg_tape *t, const char *tag, unsigned part, int batch)
{
    cr_assert(t != NULL && tg_tape_status(t) == TG_OK, "%s: tape in error: %s", tag,
              t ? tg_tape_error(t) : "NULL");
    cr_assert(s->n < sizeof s->k / sizeof *s->k);
    kcase *k = &s->k[s->n];
    snprintf(k->name, sizeof k->name, "%s%zu", tag, s->n);
    k->t = t;
    k->batch = batch;
    tg_c_options o = { k->name, s->f32, batch, part, 0 };
    char *src = NULL;
    tg_status st = tg_c_source(t, &o, &src, &k->work);
    cr_assert(st == TG_OK, "tg_c_source(%s): %s", k->name, tg_last_error());
    append(s, src);
    free(src);
    s->n++;
}

static void add(kset *s, tg_tape *t, const char *tag, unsigned part)
{
    add_b(s, t, tag, part, 1);
}

static void kset_free(kset *s)
{
    for (size_t i = 0; i < s->n; i++)
        tg_tape_free(s->k[i].t);
    free(s->src);
}

/* ------------------------------------------------------------ compilers */

static int have_compiler(const char *cc)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "%s --version > /dev/null 2>&1", cc);
    return system(cmd) == 0;
}

/* Compiles src with cc into a shared object and opens it; NULL when cc is
 * missing (a warning says so).  Compiler errors fail the test. */
static void *compile(const char *cc, const char *src, const char *opt, char *dir, size_t dirlen)
{
    if (!have_compiler(cc)) {
        cr_log_warn("%s not found: the generated C is not compiled with it", cc);
        return NULL;
    }
    snprintf(dir, dirlen, "/tmp/tg_test_c_XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    char path[256], so[256], cmd[1024];
    snprintf(path, sizeof path, "%s/k.c", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    cr_assert(fputs(src, f) >= 0);
    cr_assert(fclose(f) == 0);
    snprintf(cmd, sizeof cmd, "%s -std=c11 -Wall -Wextra -pedantic -Werror -ffp-contract=off "
             "-fno-fast-math %s -fPIC -shared -o %s %s -lm 2> %s/err.txt", cc, opt, so, path, dir);
    int rc = system(cmd);
    if (getenv("TG_TEST_C_KEEP"))
        cr_log_warn("kept %s (%zu bytes)", path, strlen(src));
    if (rc != 0) {
        char err[2048] = "";
        snprintf(path, sizeof path, "%s/err.txt", dir);
        f = fopen(path, "r");
        if (f) {
            size_t n = fread(err, 1, sizeof err - 1, f);
            err[n] = '\0';
            fclose(f);
        }
        cr_assert_fail("%s failed on the generated C (kept in %s):\n%s", cc, dir, err);
    }
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h != NULL, "dlopen: %s", dlerror());
    return h;
}

static void cleanup(void *h, const char *dir)
{
    char path[256];
    dlclose(h);
    if (getenv("TG_TEST_C_KEEP"))
        return;
    const char *files[] = { "k.c", "k.so", "err.txt" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
}

/* --------------------------------------------------------------- points */

static const double specials[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.5, 3.7, 0.25, 0.9999, 100.0, 1e-8,
    4.9e-324, -2.2e-310, 1e308, -1.7e308, INFINITY, -INFINITY, NAN,
};
#define NSPECIAL (sizeof specials / sizeof *specials)

/* npts points of n inputs: the whole grid of specials for n <= 2, random
 * picks of specials and random numbers otherwise; then the points of the
 * CONVENTIONS table (tests/convrows.h, first n coordinates).  Caller frees. */
static double *points(size_t n, size_t *npts, unsigned seed)
{
    size_t np = n == 0 ? 1 : n == 1 ? NSPECIAL : n == 2 ? NSPECIAL * NSPECIAL : 300;
    size_t nt = n && n <= CV_NMAX ? CV_NPOINTS : 0;
    double *X = malloc(((np + nt) * (n ? n : 1)) * sizeof *X);
    cr_assert(X != NULL);
    tu_rng r = { 0x9e3779b97f4a7c15ull ^ seed };
    for (size_t p = 0; p < np; p++)
        for (size_t i = 0; i < n; i++) {
            size_t idx = n == 1 ? p : n == 2 ? (i == 0 ? p / NSPECIAL : p % NSPECIAL) : tu_rng_below(&r, NSPECIAL + 6);
            X[p * n + i] = idx < NSPECIAL ? specials[idx] : tu_rng_range(&r, -3.0, 3.0);
        }
    for (size_t q = 0; q < nt; q++)
        for (size_t i = 0; i < n; i++)
            X[(np + q) * n + i] = cv_points[q].x[i];
    *npts = np + nt;
    return X;
}

/* The kernels of s in shared object h against tg_eval, and the batch
 * variant against the single one, bit for bit. */
static void check_exact(const kset *s, void *h, const char *cc)
{
    for (size_t i = 0; i < s->n; i++) {
        const kcase *k = &s->k[i];
        char bname[64];
        snprintf(bname, sizeof bname, "%s_batch", k->name);
        kern_fn f = (kern_fn)(uintptr_t)dlsym(h, k->name);
        batch_fn fb = k->batch ? (batch_fn)(uintptr_t)dlsym(h, bname) : NULL;
        cr_assert(f && (fb || !k->batch), "%s: %s or its batch variant missing", cc, k->name);
        size_t n = tg_num_inputs(k->t), m = tg_num_outputs(k->t), np;
        double *X = points(n, &np, (unsigned)i);
        double *yr = calloc(m + 1, sizeof *yr), *Y = calloc(np * m + 1, sizeof *Y);
        double *Yb = calloc(np * m + 1, sizeof *Yb);
        double *w = calloc(k->work + 1, sizeof *w);
        double *wb = calloc(TG_C_BATCH_BLOCK * (k->work + n + m) + 1, sizeof *wb);
        cr_assert(yr && Y && Yb && w && wb);
        for (size_t p = 0; p < np; p++) {
            cr_assert(tg_eval(k->t, X + p * n, yr) == TG_OK);
            cr_assert(f(X + p * n, Y + p * m, w) == 0);
            for (size_t j = 0; j < m; j++)
                cr_assert(tu_same_bits_nan(Y[p * m + j], yr[j]),
                          "%s, kernel %s (tape \"%s\"), point %zu (x0 = %a), output %zu: compiled %a, "
                          "tg_eval %a", cc, k->name, tg_tape_name(k->t), p, n ? X[p * n] : 0.0, j,
                          Y[p * m + j], yr[j]);
        }
        size_t nb = np > 3 ? np - 3 : np;      /* a partial block, then the rest */
        if (fb) {
            cr_assert(fb(nb, X, Yb, wb) == 0);
            cr_assert(fb(np - nb, X + nb * n, Yb + nb * m, wb) == 0);
        }
        for (size_t q = 0; fb && q < np * m; q++)
            cr_assert(tu_same_bits_nan(Yb[q], Y[q]) && (isnan(Y[q]) || tu_same_bits(Yb[q], Y[q])),
                      "%s, %s: batch value %zu is %a, single %a", cc, bname, q, Yb[q], Y[q]);
        free(X);
        free(yr);
        free(Y);
        free(Yb);
        free(w);
        free(wb);
    }
}

/* Compiles s with every compiler present and checks it; gcc at -O2 when o2
 * (vectorised batch loops). */
static void run_exact_o(kset *s, int o2)
{
    static const char *cc[] = { "gcc", "clang" };
    static const char *opt[] = { "-O1", "-O1" };
    int ran = 0;
    for (int c = 0; c < 2; c++) {
        char dir[64];
        void *h = compile(cc[c], s->src, o2 && c == 0 ? "-O2" : opt[c], dir, sizeof dir);
        if (!h)
            continue;
        check_exact(s, h, cc[c]);
        cleanup(h, dir);
        ran++;
    }
    if (!ran)
        cr_skip_test("no C compiler (gcc, clang) found: generated C not compiled");
}

static void run_exact(kset *s)
{
    run_exact_o(s, 0);
}

/* ------------------------------------------------------------ the ops */

static const int all_ops[] = {
#define OP(NAME, name, arity, flags, expr, rust) TG_OP_##NAME,
#include "tapegen/ops.def"
};
#define N_OPS (sizeof all_ops / sizeof *all_ops)

static const double kconsts[] = { 2.0, -0.0, -1.0, 1e-300, INFINITY, NAN };
#define NK (sizeof kconsts / sizeof *kconsts)

/* op on inputs and constants: mask bit k set = operand k is constant c. */
static tg_tape *op_tape(int op, unsigned mask, double c)
{
    tg_tape *t = tu_tape(tg_op_name((tg_opcode)op), TG_NO_FOLD | TG_NO_CSE);
    int ar = tg_op_arity((tg_opcode)op);
    tg_var x[3];
    tg_input_vec(t, "x", (size_t)ar, x);
    tg_operand o[3];
    for (int k = 0; k < ar; k++)
        o[k] = (mask >> k) & 1 ? tg__opnd_var(tg_const(t, c)) : tg__opnd_var(x[k]);
    tg_var y = ar == 1 ? tg_op1((tg_opcode)op, o[0])
             : ar == 2 ? tg_op2((tg_opcode)op, o[0], o[1]) : tg_op3((tg_opcode)op, o[0], o[1], o[2]);
    tg_output(t, "y", y);
    return t;
}

static void add_ops(kset *s)
{
    for (size_t i = 0; i < N_OPS; i++) {
        int op = all_ops[i], ar = tg_op_arity((tg_opcode)op);
        if (tg_op_flags((tg_opcode)op) & TG_OPF_GUARD)
            continue;   /* fails at most points: test(c, branch_guards) */
        add(s, op_tape(op, 0, 0.0), "op", 0);
        for (unsigned mask = 1; mask < (1u << ar); mask++)      /* constant operands */
            for (size_t c = 0; c < NK; c += mask + 1 == 1u << ar ? 2 : 1)  /* all: folded */
                add_b(s, op_tape(op, mask, kconsts[c]), "opk", 0, 0);
    }
}

Test(c, every_opcode_bit_for_bit)
{
    kset *s = calloc(1, sizeof *s);
    add_ops(s);
    /* AZMUL spelt without its guard: both factors provably nonzero, and a
     * constant factor 1 <= |c| < Inf (c*b + 0.0) */
    tg_tape *t = tu_tape("azmul_forms", TG_NO_FOLD | TG_NO_CSE);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_var ys[] = {
        tg_azmul(tg_cosh(x[0]), tg_add(tg_exp(x[1]), 1.0)), tg_azmul(-3.0, x[0]),
        tg_azmul(x[1], 1.0), tg_azmul(tg_sqrt(tg_add(tg_mul(x[0], x[0]), 2.0)), x[1]),
        tg_azmul(tg_hypot(x[0], 0.5), tg_signum(tg_cosh(x[1]))), tg_azmul(0.5, x[1]),
        tg_azmul(1e300, x[0]), tg_azmul(tg_abs(x[0]), tg_select(x[1], 2.0, -1.0)),
    };
    tg_output_vec(t, "y", sizeof ys / sizeof *ys, ys);
    add(s, t, "az", 0);
    run_exact(s);
    kset_free(s);
    free(s);
}

/* -------------------------------------------------- CONVENTIONS rows */

/* A row's expression (tests/convrows.h) on a tape with the given flags. */
static tg_tape *row_tape(const cv_expr *r, unsigned flags)
{
    tg_tape *t = tu_tape(r->id, flags);
    tg_var x[CV_NMAX];
    tg_input_vec(t, "x", r->n, x);
    tg_output(t, "y", r->rec(t, x));
    return t;
}

Test(c, conventions_rows_values_gradients_hessians)
{
    kset *s = calloc(1, sizeof *s);
    static const unsigned flags[2] = { 0, TG_NO_FOLD | TG_NO_CSE };
    for (size_t i = 0; i < CV_NEXPR; i++)
        for (int f = 0; f < 2; f++) {
            tg_tape *t = row_tape(&cv_exprs[i], flags[f]);
            add_b(s, tg_gradient_tape(t, TG_ALL), "grad", 0, f);
            add_b(s, tg_hessian_tape(t, TG_ALL), "hess", 0, f);
            add(s, t, "row", 0);
        }
    run_exact(s);
    kset_free(s);
    free(s);
}

/* -------------------------------------------------------- random tapes */

static const double rconsts[] = { 0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 3.0, -7.25, 1e-310, 1e300,
                                  INFINITY, -INFINITY, NAN, 1e-20 };

/* A random DAG of ~n ops over 3 inputs and special constants, 3 outputs. */
_Static_assert(N_OPS + 1 == TG_OP_GUARD, "guard is the last op of the table (after the two leaves)");

static tg_tape *random_tape(tu_rng *r, size_t n)
{
    tg_tape *t = tu_tape("random", TG_NO_FOLD | TG_NO_CSE);
    tg_var v[256];
    size_t nv = 0;
    tg_input_vec(t, "x", 3, v);
    nv = 3;
    for (size_t i = 0; i < 4; i++)
        v[nv++] = tg_const(t, rconsts[tu_rng_below(r, sizeof rconsts / sizeof *rconsts)]);
    while (nv < n && nv < 256) {
        /* every op but the guard, the table's last (it fails at most
         * points: test(c, branch_guards)) */
        int op = all_ops[tu_rng_below(r, N_OPS - 1)];
        tg_operand o[3];
        for (int k = 0; k < 3; k++)     /* recent values mostly: deep chains */
            o[k] = tg__opnd_var(v[nv - 1 - tu_rng_below(r, tu_rng_below(r, 4) ? (nv < 6 ? nv : 6) : nv)]);
        int ar = tg_op_arity((tg_opcode)op);
        v[nv++] = ar == 1 ? tg_op1((tg_opcode)op, o[0])
                : ar == 2 ? tg_op2((tg_opcode)op, o[0], o[1]) : tg_op3((tg_opcode)op, o[0], o[1], o[2]);
    }
    tg_var y[3] = { v[nv - 1], v[nv / 2], tg_add(v[nv - 2], v[nv - 3]) };
    tg_output_vec(t, "y", 3, y);
    return t;
}

Test(c, random_tapes_with_specials_and_tiny_parts)
{
    kset *s = calloc(1, sizeof *s);
    tu_rng r = { 12345 };
    for (int i = 0; i < 40; i++) {
        tg_tape *t = random_tape(&r, 20 + tu_rng_below(&r, 60));
        tg_tape *sum = tu_tape("random_sum", 0);        /* a scalar for its gradient tape */
        tg_var x[3], y[3];
        tg_input_vec(sum, "x", 3, x);
        tg_call(sum, t, x, y);
        tg_output(sum, "s", tg_add(tg_mul(y[0], y[1]), y[2]));
        add(s, tg_gradient_tape(sum, TG_ALL), "rgrad", 1 + (unsigned)tu_rng_below(&r, 9));
        add(s, t, "rand", 1 + (unsigned)tu_rng_below(&r, 9));
        tg_tape_free(sum);
    }
    run_exact(s);
    kset_free(s);
    free(s);
}

/* --------------------------------------------------------- deep chains */

typedef struct deep {
    size_t depth;
    unsigned part;
    tg_status st;
    char *src;
    size_t work;
    tg_tape *t;
} deep;

static tg_tape *chain(size_t depth)
{
    tg_tape *t = tu_tape("deep", 0);
    tg_var x = tg_input(t, "x"), z = x;
    for (size_t k = 0; k < depth; k++)
        z = tg_add(tg_sin(z), tg_mul(x, 1e-3));
    tg_output(t, "y", z);
    return t;
}

static void *deep_main(void *arg)
{
    deep *d = arg;
    tg_c_options o = { "deep", 0, 1, d->part, 0 };
    d->st = tg_c_source(d->t, &o, &d->src, &d->work);
    return NULL;
}

Test(c, million_deep_chain_translates_under_1MiB_stack)
{
    deep d = { 1000000, 0, TG_OK, NULL, 0, chain(1000000) };
    pthread_attr_t a;
    pthread_t th;
    cr_assert_eq(pthread_attr_init(&a), 0);
    cr_assert_eq(pthread_attr_setstacksize(&a, 1 << 20), 0);
    cr_assert_eq(pthread_create(&th, &a, deep_main, &d), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(d.st, TG_OK, "%s", tg_last_error());
    /* 2 statements per link, parts of 1000: each part hands one value on */
    cr_assert(strstr(d.src, "deep_p1999(x, y, work);") != NULL);
    cr_assert(strstr(d.src, "deep_p2000(x, y, work);") != NULL);
    cr_assert(strstr(d.src, "deep_p2001(") == NULL);
    cr_expect_eq(d.work, 2, "work slots: %zu", d.work);
    free(d.src);
    tg_tape_free(d.t);
}

Test(c, deep_chain_compiled_across_parts)
{
    kset *s = calloc(1, sizeof *s);
    add(s, chain(3000), "deep", 0);
    add(s, chain(500), "deep", 7);
    run_exact_o(s, 1);
    kset_free(s);
    free(s);
}

/* ----------------------------------------------------------------- f32 */

Test(c, f32_option_compiles_and_is_close)
{
    kset *s = calloc(1, sizeof *s);
    s->f32 = 1;
    for (size_t i = 0; i < N_OPS; i++)
        if (!(tg_op_flags((tg_opcode)all_ops[i]) & TG_OPF_GUARD))
            add(s, op_tape(all_ops[i], 0, 0.0), "op", 0);
    for (size_t i = 0; i < CV_NEXPR; i++) {
        tg_tape *t = row_tape(&cv_exprs[i], 0);
        add(s, tg_gradient_tape(t, TG_ALL), "grad", 3);
        add(s, t, "row", 3);
    }
    static const float pts[] = { 0.375f, 0.75f, 1.25f, -0.625f, 2.5f };
    int ran = 0;
    for (int c = 0; c < 2; c++) {
        const char *cc = c ? "clang" : "gcc";
        char dir[64];
        void *h = compile(cc, s->src, "-O1", dir, sizeof dir);
        if (!h)
            continue;
        ran++;
        for (size_t i = 0; i < s->n; i++) {
            const kcase *k = &s->k[i];
            kern32_fn f = (kern32_fn)(uintptr_t)dlsym(h, k->name);
            cr_assert(f != NULL);
            size_t n = tg_num_inputs(k->t), m = tg_num_outputs(k->t);
            for (size_t p = 0; p < 5; p++) {
                float xf[4], yf[16], wf[256];
                double xd[4], yd[16];
                cr_assert(n <= 4 && m <= 16 && k->work <= 256);
                for (size_t j = 0; j < n; j++)
                    xd[j] = xf[j] = pts[(p + j) % 5];
                cr_assert(tg_eval(k->t, xd, yd) == TG_OK);
                cr_assert(f(xf, yf, wf) == 0);
                for (size_t j = 0; j < m; j++)
                    cr_assert((isnan(yd[j]) && isnan(yf[j])) || (isinf(yd[j]) && yd[j] == yf[j])
                                  || fabs(yf[j] - yd[j]) <= 1e-4 * fmax(1.0, fabs(yd[j])),
                              "%s f32 %s (\"%s\") at %g: %g, tg_eval %g", cc, k->name,
                              tg_tape_name(k->t), (double)xf[0], (double)yf[j], yd[j]);
            }
        }
        cleanup(h, dir);
    }
    if (!ran)
        cr_skip_test("no C compiler (gcc, clang) found: generated C not compiled");
    kset_free(s);
    free(s);
}

/* ------------------------------------------------- API, names, files */

Test(c, errors_names_and_determinism)
{
    tg_tape *t = tu_tape("rosen", 0);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_output(t, "y", tg_add(tg_mul(100.0, tg_pow(tg_sub(x[1], tg_mul(x[0], x[0])), 2)),
                             tg_pow(tg_sub(1.0, x[0]), 2)));
    char *src = NULL, *src2 = NULL;
    size_t w;
    cr_expect_eq(tg_c_source(NULL, NULL, &src, &w), TG_ERR_ARG);
    cr_expect_eq(tg_c_source(t, NULL, NULL, &w), TG_ERR_ARG);
    cr_expect_eq(tg_c_files(t, NULL, NULL), TG_ERR_ARG);
    static const char *bad[] = { "int", "1abc", "a-b", "", "sin", "expm1f", "mathx_min", "work", "_Bool" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tg_c_options o = { bad[i], 0, 0, 0, 0 };
        cr_expect_eq(tg_c_source(t, &o, &src, &w), TG_ERR_NAME, "name \"%s\" accepted", bad[i]);
        cr_expect(strstr(tg_last_error(), bad[i]) != NULL, "message: %s", tg_last_error());
    }
    tg_tape *odd = tu_tape("a */ b", 0);    /* names inside comments */
    tg_var xo = tg_input(odd, "in */ put");
    tg_output(odd, "y */", tg_mul(xo, xo));
    tg_c_options oo = { "odd", 0, 1, 0, 0 };
    cr_assert_eq(tg_c_source(odd, &oo, &src, &w), TG_OK);
    cr_expect(strstr(src, "*/ b") == NULL && strstr(src, "a * / b") != NULL, "%.400s", src);
    free(src);
    tg_tape_free(odd);
    tg_tape *kw = tu_tape("double", 0);     /* a keyword from the tape name */
    tg_output(kw, "y", tg_input(kw, "x"));
    cr_expect_eq(tg_c_source(kw, NULL, &src, &w), TG_ERR_NAME);
    cr_expect(strstr(tg_last_error(), "function_name") != NULL, "%s", tg_last_error());
    tg_tape_free(kw);
    tg_tape *broken = tu_tape("broken", 0);
    tg_var nil = { NULL, TG_NIL };
    tg_output(broken, "y", tg_add(tg_input(broken, "x"), nil));
    cr_expect_neq(tg_c_source(broken, NULL, &src, &w), TG_OK);
    tg_tape_free(broken);
    /* deterministic */
    static const char *good[] = { "f", "A", "_k", "erf_grad", "sinh2", "Kernel9" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        tg_c_options o = { good[i], 0, 0, 0, 0 };
        cr_expect_eq(tg_c_source(t, &o, &src, &w), TG_OK, "name \"%s\": %s", good[i], tg_last_error());
        free(src);
    }
    cr_assert_eq(tg_c_source(t, NULL, &src, &w), TG_OK);
    cr_assert_eq(tg_c_source(t, NULL, &src2, NULL), TG_OK);
    cr_expect_str_eq(src, src2);
    cr_expect(strstr(src, "int rosen(const double *x, double *y, double *work)") != NULL);
    cr_expect(strstr(src, "-ffp-contract=off") != NULL);
    cr_expect(strstr(src, "rosen_batch") == NULL);
    free(src);
    free(src2);
    /* files: into a missing directory, then a real one */
    cr_expect_eq(tg_c_files(t, NULL, "/nonexistent/dir"), TG_ERR_IO);
    char dir[] = "/tmp/tg_test_cfiles_XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    tg_c_options o = { "rosen_k", 0, 1, 0, 0 };
    cr_assert_eq(tg_c_files(t, &o, dir), TG_OK, "%s", tg_last_error());
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/rosen_k.h", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL);
    char head[4096];
    size_t n = fread(head, 1, sizeof head - 1, f);
    head[n] = '\0';
    fclose(f);
    cr_expect(strstr(head, "#define ROSEN_K_N_IN 2") && strstr(head, "#define ROSEN_K_N_OUT 1")
              && strstr(head, "#define ROSEN_K_WORK_LEN 0") && strstr(head, "ROSEN_K_BATCH_WORK_LEN 24")
              && strstr(head, "int rosen_k_batch(size_t npts"), "%s", head);
    /* the header's prototypes agree with the definitions */
    if (have_compiler("cc")) {
        snprintf(cmd, sizeof cmd, "cd %s && printf '#include \"rosen_k.h\"\\n#include \"rosen_k.c\"\\n' | "
                 "cc -std=c11 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c -", dir);
        cr_expect_eq(system(cmd), 0, "the header does not match the source");
    }
    snprintf(cmd, sizeof cmd, "rm -f %s/rosen_k.c %s/rosen_k.h && rmdir %s", dir, dir, dir);
    cr_expect_eq(system(cmd), 0, "only rosen_k.c and rosen_k.h were written (no temporary left)");
    tg_tape_free(t);
}

/* ---------------------------------------------------- translation units */

/* tg_c_files with tiny parts and units: every unit file compiled on its own
 * (warnings as errors) and the objects linked; values cross units through
 * work slots; the part functions stay hidden; results equal tg_eval bit
 * for bit, batch variant included. */
Test(c, units_compiled_separately_and_linked, .timeout = 120)
{
    if (!have_compiler("gcc"))
        cr_skip_test("gcc not found: the unit files are not compiled");
    char dir[64], cmd[1024], path[256];
    snprintf(dir, sizeof dir, "/tmp/tg_test_cu_XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    kset *s = calloc(1, sizeof *s);
    cr_assert(s != NULL);
    tu_rng r = { 4242 };
    for (int i = 0; i < 6; i++) {
        tg_tape *t = random_tape(&r, 30 + tu_rng_below(&r, 60));
        tg_tape *sum = tu_tape("random_sum", 0);
        tg_var x[3], y[3];
        tg_input_vec(sum, "x", 3, x);
        tg_call(sum, t, x, y);
        tg_output(sum, "s", tg_add(tg_mul(y[0], y[1]), y[2]));
        tg_tape *g = i % 2 ? tg_gradient_tape(sum, TG_ALL) : t;
        if (g != t)
            tg_tape_free(t);
        tg_tape_free(sum);
        kcase *k = &s->k[s->n++];
        snprintf(k->name, sizeof k->name, "unit%d", i);
        k->t = g;
        k->batch = 1;
        unsigned part = 1 + (unsigned)tu_rng_below(&r, 4);
        tg_c_options o = { k->name, 0, 1, part, part * (1 + (unsigned)tu_rng_below(&r, 3)) };
        TU_OK(tg_c_files(g, &o, dir));
        char *src = NULL;
        TU_OK(tg_c_source(g, &o, &src, &k->work));     /* one file, the same work length */
        cr_assert(strstr(src, "_1.c") == NULL && strstr(src, "TG_HIDDEN void") == NULL,
                  "%s: tg_c_source is not one file", k->name);
        free(src);
        snprintf(path, sizeof path, "%s/%s_2.c", dir, k->name);
        cr_assert(access(path, R_OK) == 0, "%s: fewer than 3 translation units", k->name);
    }
    snprintf(cmd, sizeof cmd, "cd %s && for f in *.c; do gcc -std=c11 -Wall -Wextra -pedantic "
             "-Werror -ffp-contract=off -fno-fast-math -O1 -fPIC -c \"$f\" -o \"${f%%.c}.o\" "
             "|| exit 1; done 2> err.txt && gcc -shared -o k.so *.o -lm 2>> err.txt", dir);
    cr_assert(system(cmd) == 0, "the unit files do not compile separately (see %s/err.txt)", dir);
    snprintf(path, sizeof path, "%s/k.so", dir);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h != NULL, "dlopen: %s", dlerror());
    cr_assert(dlsym(h, "unit0_p1") == NULL, "a part function is exported");
    check_exact(s, h, "gcc, unit by unit");
    dlclose(h);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert(system(cmd) == 0);
    kset_free(s);
    free(s);
}

/* ---------------------------------------------------- branch guards */

/* f(x, p) = x < 1 ? p x^2 + sin x : 2 p x - p + cos x, recorded at x0 with
 * its branch as an if (tg_branch); compiled in several parts so the guard
 * check and the stores sit in different part functions. */
static tg_tape *guarded_tape(double x0)
{
    tg_tape *t = tu_tape("guarded", 0);
    tg_var x = tg_input_at(t, "x", x0), p = tg_input_at(t, "p", 0.75);
    tg_var y;
    if (tg_branch(tg_lt(x, 1.0)))
        y = tg_add(tg_mul(p, tg_mul(x, x)), tg_sin(x));
    else
        y = tg_add(tg_sub(tg_mul(tg_mul(2.0, p), x), p), tg_cos(x));
    tg_var ys[2] = { y, tg_mul(y, x) };
    tg_output_vec(t, "y", 2, ys);
    return t;
}

Test(c, branch_guards)
{
    kset *s = calloc(1, sizeof *s);
    tg_tape *tl = guarded_tape(0.5), *th = guarded_tape(2.0);
    add(s, tl, "gl", 1);                            /* one statement per part */
    add(s, th, "gh", 0);
    add(s, tg_jacobian_tape(tl, TG_ALL), "gj", 2);  /* the derivative tape's guards */
    static const char *cc[] = { "gcc", "clang" };
    int ran = 0;
    for (int c = 0; c < 2; c++) {
        char dir[64];
        void *h = compile(cc[c], s->src, "-O2", dir, sizeof dir);
        if (!h)
            continue;
        ran++;
        for (size_t i = 0; i < s->n; i++) {
            const kcase *k = &s->k[i];
            char bname[64];
            snprintf(bname, sizeof bname, "%s_batch", k->name);
            kern_fn f = (kern_fn)(uintptr_t)dlsym(h, k->name);
            batch_fn fb = (batch_fn)(uintptr_t)dlsym(h, bname);
            cr_assert(f && fb);
            size_t n = tg_num_inputs(k->t), m = tg_num_outputs(k->t);
            enum { NP = 29 };
            double X[NP * 2], Y[NP * 4], Yb[NP * 4], yr[4], w[256], wb[4096];
            cr_assert(m <= 4 && k->work <= 256 && TG_C_BATCH_BLOCK * (k->work + n + m) <= 4096);
            int nfail = 0;
            for (size_t p = 0; p < NP; p++) {
                X[p * n] = -0.5 + 0.1 * (double)p;  /* crosses 1 */
                X[p * n + 1] = 1.25;
            }
            for (size_t q = 0; q < NP * m; q++)
                Y[q] = Yb[q] = 777.0;
            for (size_t p = 0; p < NP; p++) {
                tg_status st = tg_eval(k->t, X + p * n, yr);
                int r = f(X + p * n, Y + p * m, w);
                cr_expect_eq(r, st == TG_OK ? 0 : (int)TG_ERR_BRANCH, "%s %s point %zu: %d vs %s",
                             cc[c], k->name, p, r, tg_status_str(st));
                nfail += st != TG_OK;
                for (size_t j = 0; j < m; j++)
                    cr_expect(st == TG_OK ? tu_same_bits(Y[p * m + j], yr[j])
                                          : Y[p * m + j] == 777.0,
                              "%s %s point %zu output %zu", cc[c], k->name, p, j);
            }
            cr_expect(nfail > 0 && nfail < NP, "%s: both sides of the branch", k->name);
            cr_expect_eq(fb(NP, X, Yb, wb), (int)TG_ERR_BRANCH);
            for (size_t q = 0; q < NP * m; q++)
                cr_expect(tu_same_bits(Yb[q], Y[q]), "%s %s batch value %zu", cc[c], bname, q);
        }
        cleanup(h, dir);
    }
    kset_free(s);
    free(s);
    if (!ran)
        cr_skip_test("no C compiler (gcc, clang) found");
}
