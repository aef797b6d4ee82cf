/* bench/src/bench.c -- measurement engine, checks and CSV output. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(BENCH_HAVE_OPENMP)
#include <omp.h>
#endif

/* ------------------------------------------------------------------ timers */

static double
clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_wall(void) { return clock_s(CLOCK_MONOTONIC); }
double bench_cpu_thread(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }
double bench_cpu_process(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

long
bench_peak_rss_kib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;   /* KiB on Linux */
}

/* ---------------------------------------------------------------- OpenMP */

void
bench_set_threads(int n)
{
#if defined(BENCH_HAVE_OPENMP)
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int
bench_have_openmp(void)
{
#if defined(BENCH_HAVE_OPENMP)
    return 1;
#else
    return 0;
#endif
}

int
bench_max_threads(void)
{
#if defined(BENCH_HAVE_OPENMP)
    return omp_get_num_procs();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------ sets */

static void *
xrealloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    if (!q) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    return q;
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void
bench_set_init(bench_set *s, const char *workload, const char *size)
{
    memset(s, 0, sizeof *s);
    copy_str(s->workload, sizeof s->workload, workload);
    copy_str(s->size, sizeof s->size, size);
}

void
bench_set_free(bench_set *s)
{
    free(s->c);
    free(s->r);
    free(s->m);
    memset(s, 0, sizeof *s);
}

int
bench_add(bench_set *s, const char *system, const char *op, bench_fn fn, void *ctx)
{
    if (s->nc == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->c = xrealloc(s->c, (size_t)s->cap * sizeof *s->c);
    }
    bench_case *c = &s->c[s->nc];
    memset(c, 0, sizeof *c);
    copy_str(c->system, sizeof c->system, system);
    copy_str(c->op, sizeof c->op, op);
    copy_str(c->nat_op, sizeof c->nat_op, op);
    copy_str(c->adolc_op, sizeof c->adolc_op, op);
    c->fn = fn;
    c->ctx = ctx;
    c->per_call_div = 1.0;
    c->check_err = NAN;
    c->check_ok = 1;
    return s->nc++;
}

bench_case *
bench_get(bench_set *s, int idx)
{
    return &s->c[idx];
}

void
bench_set_refs(bench_set *s, int idx, const char *nat_op, const char *adolc_op)
{
    copy_str(s->c[idx].nat_op, sizeof s->c[idx].nat_op, nat_op);
    copy_str(s->c[idx].adolc_op, sizeof s->c[idx].adolc_op, adolc_op);
}

int
bench_find(const bench_set *s, const char *system, const char *op)
{
    if (!op || !*op)
        return -1;
    for (int i = 0; i < s->nc; i++)
        if (strcmp(s->c[i].system, system) == 0 && strcmp(s->c[i].op, op) == 0)
            return i;
    return -1;
}

void
bench_add_ratio(bench_set *s, const char *name, int num, int den, int wall)
{
    if (num < 0 || den < 0)
        return;
    if (s->nrat == s->rcap) {
        s->rcap = s->rcap ? 2 * s->rcap : 8;
        s->r = xrealloc(s->r, (size_t)s->rcap * sizeof *s->r);
    }
    bench_ratio *r = &s->r[s->nrat++];
    copy_str(r->name, sizeof r->name, name);
    r->num = num;
    r->den = den;
    r->wall = wall;
}

void
bench_metric_add(bench_set *s, const char *system, const char *name, double value,
                 const char *unit, const char *note)
{
    if (s->nmet == s->mcap) {
        s->mcap = s->mcap ? 2 * s->mcap : 16;
        s->m = xrealloc(s->m, (size_t)s->mcap * sizeof *s->m);
    }
    bench_metric *m = &s->m[s->nmet++];
    copy_str(m->system, sizeof m->system, system);
    copy_str(m->name, sizeof m->name, name);
    copy_str(m->unit, sizeof m->unit, unit);
    copy_str(m->note, sizeof m->note, note);
    m->value = value;
}

void
bench_note(bench_set *s, int idx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->c[idx].note, sizeof s->c[idx].note, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- checks */

double
bench_relerr(const double *got, const double *want, size_t len)
{
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < len; i++)
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    for (size_t i = 0; i < len; i++) {
        double d = fabs(got[i] - want[i]);
        double den = fmax(fabs(want[i]), 1e-6 * scale);
        den = fmax(den, 1e-300);
        double e = d / den;
        if (!(e <= err))   /* NaN propagates */
            err = e;
        if (isnan(got[i]) != isnan(want[i]))
            err = INFINITY;
    }
    return err;
}

double
bench_normerr(const double *got, const double *want, size_t len)
{
    double scale = 0.0, d = 0.0;
    for (size_t i = 0; i < len; i++) {
        scale = fmax(scale, fabs(want[i]));
        double e = fabs(got[i] - want[i]);
        if (!(e <= d))
            d = e;
    }
    return d / fmax(scale, 1e-300);
}

static int check_err(bench_set *s, int idx, double e, double tol, const char *what);

int
bench_check(bench_set *s, int idx, const double *got, const double *want, size_t len, double tol,
            const char *what)
{
    return check_err(s, idx, bench_relerr(got, want, len), tol, what);
}

int
bench_check_norm(bench_set *s, int idx, const double *got, const double *want, size_t len,
                 double tol, const char *what)
{
    return check_err(s, idx, bench_normerr(got, want, len), tol, what);
}

static int
check_err(bench_set *s, int idx, double e, double tol, const char *what)
{
    bench_case *c = &s->c[idx];
    c->checked = 1;
    c->check_tol = tol;
    if (!(e <= c->check_err))
        c->check_err = e;
    if (isnan(c->check_err))
        c->check_err = e;
    int ok = e <= tol;
    if (!ok) {
        c->check_ok = 0;
        s->failed = 1;
        fprintf(stderr,
                "CHECK FAILED: %s %s: %s %s: %s differs from the hand-written result: "
                "max rel err %.3g > tol %.1g\n",
                s->workload, s->size, c->system, c->op, what ? what : "result", e, tol);
    }
    return ok;
}

int
bench_selfcheck(bench_set *s, const char *what, double err, double tol)
{
    int ok = err <= tol;
    if (!ok) {
        s->failed = 1;
        fprintf(stderr, "CHECK FAILED: %s %s: %s: max rel err %.3g > tol %.1g\n", s->workload,
                s->size, what, err, tol);
    }
    bench_metric_add(s, SYS_HAND, what, err, "relerr", ok ? "ok" : "FAILED");
    return ok;
}

void
bench_fail(bench_set *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "CHECK FAILED: %s %s: ", s->workload, s->size);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    s->failed = 1;
}

double
bench_fd_step(double x)
{
    return cbrt(DBL_EPSILON) * fmax(1.0, fabs(x));
}

/* ------------------------------------------------------------ measuring */

static void
time_calls(bench_case *c, size_t reps, double *cpu, double *wall)
{
    double c0 = c->process_cpu ? bench_cpu_process() : bench_cpu_thread();
    double w0 = bench_wall();
    for (size_t i = 0; i < reps; i++)
        c->fn(c->ctx);
    *wall = bench_wall() - w0;
    *cpu = (c->process_cpu ? bench_cpu_process() : bench_cpu_thread()) - c0;
}

/* Calls per batch so that a batch lasts about target/4. */
static void
calibrate(bench_case *c, double target)
{
    size_t reps = 1;
    double cpu, wall;
    if (c->threads > 0)
        bench_set_threads(c->threads);
    for (;;) {
        time_calls(c, reps, &cpu, &wall);
        if (wall >= target / 16 || reps >= ((size_t)1 << 40))
            break;
        reps *= wall > 0 ? (size_t)fmin(16.0, fmax(2.0, target / 16 / wall * 2)) : 16;
    }
    double per = wall / (double)reps;
    double want = per > 0 ? target / 4 / per : (double)reps;
    c->reps = want < 1.0 ? 1 : (size_t)want;
}

/* One measurement: batches of c->reps calls until at least `target` s of
 * wall time have passed; per-call (per-point) CPU and wall time. */
static void
measure(bench_case *c, double target, double *cpu, double *wall)
{
    if (c->threads > 0)
        bench_set_threads(c->threads);
    size_t calls = 0;
    double c0 = c->process_cpu ? bench_cpu_process() : bench_cpu_thread();
    double w0 = bench_wall(), w1;
    do {
        for (size_t i = 0; i < c->reps; i++)
            c->fn(c->ctx);
        calls += c->reps;
        w1 = bench_wall();
    } while (w1 - w0 < target);
    double c1 = c->process_cpu ? bench_cpu_process() : bench_cpu_thread();
    c->calls_total += calls;
    *wall = (w1 - w0) / (double)calls / c->per_call_div;
    *cpu = (c1 - c0) / (double)calls / c->per_call_div;
}

/* --only: a case is timed when its op begins with the given prefix. */
static int
timed(const bench_case *c, const bench_opts *o)
{
    return !o->only || strncmp(c->op, o->only, strlen(o->only)) == 0;
}

void
bench_run(bench_set *s, const bench_opts *o)
{
    int rounds = o->rounds < 1 ? 1 : o->rounds > BENCH_MAX_ROUNDS ? BENCH_MAX_ROUNDS : o->rounds;
    double t0 = bench_wall();
    for (int i = 0; i < s->nc; i++)
        if (timed(&s->c[i], o))
            calibrate(&s->c[i], o->min_time);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < s->nc; k++) {
            bench_case *c = &s->c[(k + r) % s->nc];   /* rotate the order */
            if (!timed(c, o))
                continue;
            measure(c, o->min_time, &c->cpu[r], &c->wall[r]);
            c->nr = r + 1;
        }
        if (o->verbose)
            fprintf(stderr, "  %s %s: round %d/%d done (%.1f s)\n", s->workload, s->size, r + 1,
                    rounds, bench_wall() - t0);
    }
    bench_set_threads(bench_max_threads());
}

/* ---------------------------------------------------------------- stats */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stat3 {
    double med, min, max;
} stat3;

static stat3
stats(const double *v, int n)
{
    stat3 st = { NAN, NAN, NAN };
    if (n <= 0)
        return st;
    double tmp[BENCH_MAX_ROUNDS];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    st.min = tmp[0];
    st.max = tmp[n - 1];
    st.med = n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
    return st;
}

/* Round-by-round ratio num/den (CPU or wall). */
static stat3
ratio_stats(const bench_case *num, const bench_case *den, int wall)
{
    double r[BENCH_MAX_ROUNDS];
    int n = num->nr < den->nr ? num->nr : den->nr;
    for (int i = 0; i < n; i++)
        r[i] = wall ? num->wall[i] / den->wall[i] : num->cpu[i] / den->cpu[i];
    return stats(r, n);
}

static void
put_num(FILE *f, double v)
{
    if (isnan(v))
        fputs(",", f);
    else
        fprintf(f, ",%.6g", v);
}

static void
put_stat(FILE *f, stat3 st)
{
    put_num(f, st.med);
    put_num(f, st.min);
    put_num(f, st.max);
}

/* CSV fields never contain commas or quotes: replace them. */
static void
put_field(FILE *f, const char *str, int first)
{
    if (!first)
        fputc(',', f);
    for (const char *p = str; *p; p++)
        fputc(*p == ',' ? ';' : *p == '"' ? '\'' : *p == '\n' ? ' ' : *p, f);
}

void
bench_write_csv_header(FILE *f)
{
    fputs("kind,workload,size,system,op,unit,rounds,calls,med,min,max,wall_med,wall_min,wall_max,"
          "x_native_med,x_native_min,x_native_max,x_adolc_med,x_adolc_min,x_adolc_max,"
          "check_err,check,note\n",
          f);
}

static void
row_head(FILE *f, const char *kind, const bench_set *s, const char *system, const char *op,
         const char *unit)
{
    put_field(f, kind, 1);
    put_field(f, s->workload, 0);
    put_field(f, s->size, 0);
    put_field(f, system, 0);
    put_field(f, op, 0);
    put_field(f, unit, 0);
}

void
bench_write_csv(const bench_set *s, FILE *f)
{
    static const stat3 none = { NAN, NAN, NAN };
    for (int i = 0; i < s->nc; i++) {
        const bench_case *c = &s->c[i];
        row_head(f, "time", s, c->system, c->op, "s");
        fprintf(f, ",%d,%zu", c->nr, c->calls_total);
        put_stat(f, stats(c->cpu, c->nr));
        put_stat(f, stats(c->wall, c->nr));
        int nat = bench_find(s, SYS_HAND, c->nat_op);
        int ado = bench_find(s, SYS_ADOLC, c->adolc_op);
        put_stat(f, nat >= 0 ? ratio_stats(c, &s->c[nat], 0) : none);
        put_stat(f, ado >= 0 ? ratio_stats(c, &s->c[ado], 0) : none);
        put_num(f, c->checked ? c->check_err : NAN);
        put_field(f, !c->checked ? "n/a" : c->check_ok ? "ok" : "FAILED", 0);
        put_field(f, c->note, 0);
        fputc('\n', f);
    }
    for (int i = 0; i < s->nrat; i++) {
        const bench_ratio *r = &s->r[i];
        char desc[160];
        snprintf(desc, sizeof desc, "%s %s / %s %s (%s)", s->c[r->num].system, s->c[r->num].op,
                 s->c[r->den].system, s->c[r->den].op, r->wall ? "wall" : "cpu");
        row_head(f, "ratio", s, r->name, desc, "x");
        stat3 st = ratio_stats(&s->c[r->num], &s->c[r->den], r->wall);
        fprintf(f, ",%d,", s->c[r->num].nr);
        put_stat(f, st);
        fputs(",,,,,,,,,,,,\n", f);
    }
    for (int i = 0; i < s->nmet; i++) {
        const bench_metric *m = &s->m[i];
        row_head(f, "metric", s, m->system, m->name, m->unit);
        fputs(",,", f);
        put_num(f, m->value);
        fputs(",,,,,,,,,,,,,", f);
        put_field(f, m->note, 0);
        fputc('\n', f);
    }
    fflush(f);
}

static const char *
fmt_time(double t, char *buf, size_t cap)
{
    if (isnan(t))
        snprintf(buf, cap, "-");
    else if (t < 1e-6)
        snprintf(buf, cap, "%.1f ns", t * 1e9);
    else if (t < 1e-3)
        snprintf(buf, cap, "%.2f us", t * 1e6);
    else if (t < 1.0)
        snprintf(buf, cap, "%.2f ms", t * 1e3);
    else
        snprintf(buf, cap, "%.2f s", t);
    return buf;
}

void
bench_print(const bench_set *s, FILE *f)
{
    fprintf(f, "\n== %s %s\n", s->workload, s->size);
    fprintf(f, "%-16s %-24s %12s %12s %10s %10s %9s\n", "system", "op", "cpu/call", "wall/call",
            "x native", "x ADOL-C", "check");
    for (int i = 0; i < s->nc; i++) {
        const bench_case *c = &s->c[i];
        char b1[32], b2[32], r1[32] = "-", r2[32] = "-", ck[32] = "-";
        stat3 cpu = stats(c->cpu, c->nr), wall = stats(c->wall, c->nr);
        int nat = bench_find(s, SYS_HAND, c->nat_op);
        int ado = bench_find(s, SYS_ADOLC, c->adolc_op);
        if (nat >= 0 && c->nr)
            snprintf(r1, sizeof r1, "%.3g", ratio_stats(c, &s->c[nat], 0).med);
        if (ado >= 0 && c->nr)
            snprintf(r2, sizeof r2, "%.3g", ratio_stats(c, &s->c[ado], 0).med);
        if (c->checked)
            snprintf(ck, sizeof ck, "%s %.0e", c->check_ok ? "ok" : "FAIL", c->check_err);
        fprintf(f, "%-16s %-24s %12s %12s %10s %10s %9s\n", c->system, c->op,
                fmt_time(cpu.med, b1, sizeof b1), fmt_time(wall.med, b2, sizeof b2), r1, r2, ck);
    }
    for (int i = 0; i < s->nrat; i++) {
        stat3 st = ratio_stats(&s->c[s->r[i].num], &s->c[s->r[i].den], s->r[i].wall);
        fprintf(f, "ratio %-40s %.3g (%.3g-%.3g)\n", s->r[i].name, st.med, st.min, st.max);
    }
    for (int i = 0; i < s->nmet; i++)
        fprintf(f, "metric %-12s %-36s %.6g %s %s\n", s->m[i].system, s->m[i].name,
                s->m[i].value, s->m[i].unit, s->m[i].note);
    fflush(f);
}

int
bench_run_checked(bench_set *s, const bench_opts *o)
{
    if (s->failed) {
        fprintf(stderr, "%s %s: checks failed; not timing\n", s->workload, s->size);
        return 0;
    }
    bench_run(s, o);
    return 1;
}

int
bench_report(bench_set *s, FILE *csv)
{
    bench_metric_add(s, "process", "peak RSS", (double)bench_peak_rss_kib() * 1024.0, "B",
                     "getrusage ru_maxrss at the end of this workload");
    bench_print(s, stdout);
    if (csv)
        bench_write_csv(s, csv);
    return s->failed;
}
