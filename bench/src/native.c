/* bench/src/native.c -- tgbench_native: native code at run time, measured.
 *
 *   tgbench_native [--quick] [--growth-max N] [--cache DIR]
 *                  [--sections growth,deriv,cache,batch]
 *
 * Prints a Markdown report on stdout:
 *  1. compiled gradients (tg_tape_compile(t, TG_GRAD) then tg_gradient)
 *     against the hand-written gradients of workloads.c and the interpreter,
 *     on W1 n = 1000, W2 and W3 (flat); the compiled HVP on W1 n = 1000;
 *  2. compile time with a cold cache (CPU of this process plus its children,
 *     the compiler, from getrusage) for the W1 n = 1000 gradient, and its
 *     growth over tapes of 10^3 .. N instructions (W1 gradient tapes,
 *     optimised), with the compiler's peak memory;
 *  3. the time of a cache hit (tg_compile again, same process);
 *  4. tg_kernel_eval_batch per point against one tg_kernel_eval call (W1 n =
 *     100: the function and its gradient tape).
 * Every compiled result is checked against the hand-written one first.
 * Times are medians of rounds of thread CPU time, compiled and hand-written
 * calls interleaved round by round. */
#define _GNU_SOURCE 1
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <tapegen.h>

#include "bench.h"
#include "tgrec.h"
#include "workloads.h"

typedef struct nb_opts {
    const char *sections;       /* comma list of growth,deriv,cache,batch */
    int quick;
    size_t growth_max;
    const char *cache;
} nb_opts;

/* ------------------------------------------------------------ timing */

typedef struct timed {
    void (*fn)(void *);
    void *ctx;
    size_t reps;
    double t[16];
} timed;

static void
calibrate(timed *c, double target)
{
    c->reps = 1;
    for (;;) {
        double t0 = bench_cpu_thread();
        for (size_t r = 0; r < c->reps; r++)
            c->fn(c->ctx);
        double dt = bench_cpu_thread() - t0;
        if (dt >= target || c->reps > ((size_t)1 << 40))
            return;
        c->reps = dt > 0 ? (size_t)(c->reps * fmin(10.0, 1.2 * target / dt)) + 1 : c->reps * 10;
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median per-call CPU times of k cases, measured in interleaved rounds. */
static void
measure(timed *c, int k, int rounds, double target, double *median)
{
    for (int i = 0; i < k; i++)
        calibrate(&c[i], target);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < k; i++) {
            double t0 = bench_cpu_thread();
            for (size_t q = 0; q < c[i].reps; q++)
                c[i].fn(c[i].ctx);
            c[i].t[r] = (bench_cpu_thread() - t0) / (double)c[i].reps;
        }
    for (int i = 0; i < k; i++) {
        double s[16];
        memcpy(s, c[i].t, (size_t)rounds * sizeof *s);
        qsort(s, (size_t)rounds, sizeof *s, cmp_double);
        median[i] = s[rounds / 2];
    }
}

/* CPU seconds of this process and of its reaped children so far, and the
 * peak RSS of the largest child (KiB). */
static void
cpu_now(double *self, double *children, long *child_rss)
{
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    *self = (double)s.ru_utime.tv_sec + 1e-6 * (double)s.ru_utime.tv_usec +
            (double)s.ru_stime.tv_sec + 1e-6 * (double)s.ru_stime.tv_usec;
    *children = (double)c.ru_utime.tv_sec + 1e-6 * (double)c.ru_utime.tv_usec +
                (double)c.ru_stime.tv_sec + 1e-6 * (double)c.ru_stime.tv_usec;
    *child_rss = c.ru_maxrss;
}

static void
die(const char *what)
{
    fprintf(stderr, "tgbench_native: %s: %s\n", what, tg_last_error());
    exit(1);
}

/* --------------------------------------------------------- call contexts */

typedef struct gctx {
    const tg_tape *t;
    size_t n;
    const double *x, *v;
    double *g;
    const w2_data_t *d;
    double *scratch;
} gctx;

static void call_tg_gradient(void *p) { gctx *c = p; tg_gradient(c->t, c->x, c->g); }
static void call_tg_hvp(void *p) { gctx *c = p; tg_hvp(c->t, c->x, c->v, c->g); }
static void call_w1_grad(void *p) { gctx *c = p; w1_grad(c->n, c->x, c->g); }
static void call_w1_hvp(void *p) { gctx *c = p; w1_hvp(c->n, c->x, c->v, c->g); }
static void call_w2_grad(void *p) { gctx *c = p; w2_grad(c->d, c->x, c->g); }
static void call_w2_hvp(void *p) { gctx *c = p; w2_hvp(c->d, c->x, c->v, c->g); }
static void call_w3_grad(void *p) { gctx *c = p; w3_grad(c->x, c->g, c->scratch); }

static double
max_relerr(const double *a, const double *b, size_t n)
{
    double e = 0, scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-6 * scale + 1e-300));
    return e;
}

/* ------------------------------------------------- 1. compiled derivatives */

typedef struct row {
    const char *workload, *op;
    double hand, interp, compiled, compile_cpu, err;
} row;

/* Times `what` (TG_GRAD or TG_HVP) on t: interpreter, then compiled, against
 * the hand-written call. */
static row
derivative_row(const char *wl, tg_tape *t, unsigned what, void (*hand)(void *), gctx *hc,
               const nb_opts *o)
{
    row r = { wl, what == TG_GRAD ? "gradient" : "HVP", 0, 0, 0, 0, 0 };
    size_t n = tg_num_inputs(t);
    double *want = calloc(n, sizeof *want), *got = calloc(n, sizeof *got);
    hc->g = want;
    hand(hc);
    gctx tc = *hc;
    tc.t = t;
    tc.g = got;
    void (*tgcall)(void *) = what == TG_GRAD ? call_tg_gradient : call_tg_hvp;
    int rounds = o->quick ? 3 : 7;
    double target = o->quick ? 0.02 : 0.1, med[2];
    timed before[2] = { { hand, hc, 0, { 0 } }, { tgcall, &tc, 0, { 0 } } };
    measure(before, 2, rounds, target, med);        /* hand vs interpreter */
    r.interp = med[1];
    double s0, c0, s1, c1;
    long rss;
    cpu_now(&s0, &c0, &rss);
    tg_compile_options_ex ex = { { NULL, o->cache, 0 }, TG_COMPILE_NO_CACHE };
    if (tg_tape_compile_ex(t, what, &ex) != TG_OK)
        die("tg_tape_compile");
    cpu_now(&s1, &c1, &rss);
    r.compile_cpu = (s1 - s0) + (c1 - c0);
    tgcall(&tc);
    r.err = max_relerr(got, want, n);
    timed after[2] = { { hand, hc, 0, { 0 } }, { tgcall, &tc, 0, { 0 } } };
    measure(after, 2, rounds, target, med);         /* hand vs compiled */
    r.hand = med[0];
    r.compiled = med[1];
    free(want);
    free(got);
    return r;
}

static void
section_derivatives(const nb_opts *o)
{
    row rows[5];
    int nr = 0;
    /* W1 n = 1000 */
    size_t n = 1000;
    double *x = malloc(n * sizeof *x), *v = malloc(n * sizeof *v);
    w1_eval_point(n, x);
    for (size_t i = 0; i < n; i++)
        v[i] = 1.0;
    tg_tape *t = tgrec_rosenbrock(n);
    gctx hc = { NULL, n, x, v, NULL, NULL, NULL };
    rows[nr++] = derivative_row("W1 n=1000", t, TG_GRAD, call_w1_grad, &hc, o);
    rows[nr++] = derivative_row("W1 n=1000", t, TG_HVP, call_w1_hvp, &hc, o);
    tg_tape_free(t);
    free(x);
    free(v);
    /* W2 */
    static w2_data_t d;
    w2_data(&d.in[0][0], d.t);
    double th[MLP_NP], v2[MLP_NP];
    w2_theta(th);
    for (size_t i = 0; i < MLP_NP; i++)
        v2[i] = 1.0;
    t = tgrec_mlp(&d);
    gctx h2 = { NULL, MLP_NP, th, v2, NULL, &d, NULL };
    rows[nr++] = derivative_row("W2", t, TG_GRAD, call_w2_grad, &h2, o);
    rows[nr++] = derivative_row("W2", t, TG_HVP, call_w2_hvp, &h2, o);
    tg_tape_free(t);
    /* W3 flat */
    double u[6], traj[3 * (LORENZ_STEPS + 1)];
    w3_point(u);
    t = tgrec_lorenz();
    gctx h3 = { NULL, 6, u, NULL, NULL, NULL, traj };
    rows[nr++] = derivative_row("W3 flat", t, TG_GRAD, call_w3_grad, &h3, o);
    tg_tape_free(t);

    printf("## Compiled derivatives vs hand-written C\n\n"
           "| workload | op | hand C | interpreter | compiled | compiled / hand | "
           "interpreter / compiled | compile CPU (cold) | max rel. err vs hand |\n"
           "|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nr; i++)
        printf("| %s | %s | %.3g us | %.3g us | %.3g us | %.2fx | %.1fx | %.2f s | %.1e |\n",
               rows[i].workload, rows[i].op, 1e6 * rows[i].hand, 1e6 * rows[i].interp,
               1e6 * rows[i].compiled, rows[i].compiled / rows[i].hand,
               rows[i].interp / rows[i].compiled, rows[i].compile_cpu, rows[i].err);
    printf("\n");
}

/* ------------------------------------------------ 2. compile time growth */

static void
section_growth(const nb_opts *o)
{
    printf("## Compile time (cache cold), W1 gradient tapes (optimised)\n\n"
           "| n | instructions | translate+load CPU | compiler CPU | total CPU | wall | "
           "compiler peak RSS | CPU per 1000 instr. |\n|---|---|---|---|---|---|---|---|\n");
    size_t sizes[] = { 80, 800, 8000, 80000 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        tg_tape *f = tgrec_rosenbrock(sizes[k]);
        tg_tape *g = tg_gradient_tape(f, TG_ALL);
        tg_tape_optimize(g, TG_OPT_MAX);
        size_t ni = tg_tape_size(g);
        if (ni > o->growth_max) {
            tg_tape_free(f);
            tg_tape_free(g);
            break;
        }
        double s0, c0, s1, c1, w0 = bench_wall();
        long rss;
        cpu_now(&s0, &c0, &rss);
        tg_compile_options_ex ex = { { NULL, o->cache, 0 }, TG_COMPILE_NO_CACHE };
        tg_kernel *kern = tg_compile_ex(g, &ex);
        if (!kern)
            die("tg_compile");
        cpu_now(&s1, &c1, &rss);
        double w = bench_wall() - w0;
        printf("| %zu | %zu | %.2f s | %.2f s | %.2f s | %.2f s | %ld MiB | %.3f s |\n", sizes[k],
               ni, s1 - s0, c1 - c0, (s1 - s0) + (c1 - c0), w, rss / 1024,
               1000.0 * ((s1 - s0) + (c1 - c0)) / (double)ni);
        fflush(stdout);
        tg_kernel_free(kern);
        tg_tape_free(f);
        tg_tape_free(g);
    }
    printf("\nCompiler peak RSS: the largest child process so far (getrusage "
           "RUSAGE_CHILDREN), i.e. of this row's compile as sizes grow.\n\n");
}

/* ------------------------------------------------------- 3. cache hits */

/* Wall and process CPU of one call of tg_compile_ex that hits the cache. */
static void
hit_times(const tg_tape *g, const tg_compile_options_ex *ex, double *wall, double *cpu)
{
    *wall = 1e9;
    *cpu = 1e9;
    tg_kernel *k = tg_compile_ex(g, ex);        /* fills the cache (or hits it) */
    if (!k)
        die("tg_compile");
    tg_kernel_free(k);
    for (int r = 0; r < 7; r++) {
        double w0 = bench_wall(), c0 = bench_cpu_process();
        k = tg_compile_ex(g, ex);
        double c = bench_cpu_process() - c0, w = bench_wall() - w0;
        if (!k)
            die("tg_compile (hit)");
        tg_kernel_free(k);
        *wall = fmin(*wall, w);
        *cpu = fmin(*cpu, c);
    }
}

static void
section_cache(const nb_opts *o)
{
    tg_tape *f = tgrec_rosenbrock(1000);
    tg_tape *g = tg_gradient_tape(f, TG_ALL);
    tg_tape_optimize(g, TG_OPT_MAX);
    tg_compile_options_ex ex = { { NULL, o->cache, 0 }, 0 };
    double w1, c1, w2, c2;
    hit_times(g, &ex, &w1, &c1);
    ex.flags = TG_COMPILE_BATCH;
    hit_times(g, &ex, &w2, &c2);
    double s0, c0, s1, cc1;
    long rss;
    tg_tape *t = tgrec_rosenbrock(1000);
    tg_compile_options co = { NULL, o->cache, 0 };
    cpu_now(&s0, &c0, &rss);
    double w0 = bench_wall();
    if (tg_tape_compile(t, TG_GRAD, &co) != TG_OK)
        die("tg_tape_compile (hit)");
    double wt = bench_wall() - w0;
    cpu_now(&s1, &cc1, &rss);
    printf("## Cache hit (W1 n = 1000 gradient tape, %zu instructions; best of 7)\n\n"
           "| call | CPU | wall |\n|---|---|---|\n"
           "| tg_compile_ex, kernel only | %.1f ms | %.1f ms |\n"
           "| tg_compile (kernel + batch variant) | %.1f ms | %.1f ms |\n"
           "| tg_tape_compile(TG_GRAD) from the function tape (once) | %.1f ms | %.1f ms |\n\n"
           "A hit translates the tape to C (the key is a hash of the source), checks the "
           "entry's checksum and dlopens it; tg_tape_compile also builds and optimises the "
           "gradient tape.  Compiler runs during the hits: %s.\n\n",
           tg_tape_size(g), 1e3 * c1, 1e3 * w1, 1e3 * c2, 1e3 * w2, 1e3 * (s1 - s0), 1e3 * wt,
           cc1 - c0 > 0.001 ? "SOME (not a hit)" : "none");
    tg_tape_free(t);
    tg_tape_free(f);
    tg_tape_free(g);
}

/* ------------------------------------------------------- 4. batches */

typedef struct kctx {
    tg_kernel *k;
    size_t n, m, npts;
    double *X, *Y;
} kctx;

static void call_single(void *p) { kctx *c = p; tg_kernel_eval(c->k, c->X, c->Y); }
static void call_batch(void *p) { kctx *c = p; tg_kernel_eval_batch(c->k, c->npts, c->X, c->Y); }

static void
batch_line(const char *what, tg_tape *t, const nb_opts *o)
{
    tg_compile_options co = { NULL, o->cache, 0 };
    tg_kernel *k = tg_compile(t, &co);     /* with the batch variant */
    if (!k)
        die("tg_compile");
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t), npts = 1024;
    double *X = malloc(npts * n * sizeof *X), *Y = malloc(npts * m * sizeof *Y);
    for (size_t p = 0; p < npts; p++) {
        w1_eval_point(n, X + p * n);
        for (size_t i = 0; i < n; i++)
            X[p * n + i] += 1e-4 * (double)p;
    }
    kctx single = { k, n, m, 1, X, Y }, batch = { k, n, m, npts, X, Y };
    timed c[2] = { { call_single, &single, 0, { 0 } }, { call_batch, &batch, 0, { 0 } } };
    double med[2];
    bench_set_threads(1);
    measure(c, 2, o->quick ? 3 : 7, o->quick ? 0.02 : 0.1, med);
    double per = med[1] / (double)npts;
    printf("| %s | %.3g us | %.3g us | %.2fx |\n", what, 1e6 * med[0], 1e6 * per, per / med[0]);
    free(X);
    free(Y);
    tg_kernel_free(k);
}

static void
section_batch(const nb_opts *o)
{
    printf("## tg_kernel_eval_batch vs tg_kernel_eval (W1 n = 100, 1024 points, 1 thread)\n\n"
           "| kernel | single call | batch, per point | batch / single |\n|---|---|---|---|\n");
    tg_tape *f = tgrec_rosenbrock(100);
    batch_line("f", f, o);
    tg_tape *g = tg_gradient_tape(f, TG_ALL);
    tg_tape_optimize(g, TG_OPT_MAX);
    batch_line("gradient tape", g, o);
    tg_tape_free(g);
    tg_tape_free(f);
    printf("\n");
}

int
main(int argc, char **argv)
{
    nb_opts o = { "growth,deriv,cache,batch", 0, 1100000, NULL };
    char cache[4096];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            o.quick = 1;
        else if (strcmp(argv[i], "--growth-max") == 0 && i + 1 < argc)
            o.growth_max = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc)
            o.cache = argv[++i];
        else if (strcmp(argv[i], "--sections") == 0 && i + 1 < argc)
            o.sections = argv[++i];
        else {
            fprintf(stderr, "usage: tgbench_native [--quick] [--growth-max N] [--cache DIR] "
                            "[--sections growth,deriv,cache,batch]\n");
            return 2;
        }
    }
    if (!o.cache) {
        snprintf(cache, sizeof cache, "/tmp/tgbench-native-%ld", (long)getpid());
        o.cache = cache;
    }
    if (o.quick && o.growth_max > 20000)
        o.growth_max = 20000;
    printf("# Native code at run time (tgbench_native%s)\n\n", o.quick ? " --quick" : "");
    /* growth first: the compiler's peak RSS is a maximum over all children */
    if (strstr(o.sections, "growth"))
        section_growth(&o);
    if (strstr(o.sections, "deriv"))
        section_derivatives(&o);
    if (strstr(o.sections, "cache"))
        section_cache(&o);
    if (strstr(o.sections, "batch"))
        section_batch(&o);
    return 0;
}
