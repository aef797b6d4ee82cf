/* bench/src/bench.h -- the benchmark harness: cases, the measurement
 * engine (interleaved rounds, medians), correctness checks and CSV rows.
 *
 * One process runs one workload at one size with every system side by side:
 * each system registers its calls as cases, every case is checked against
 * the hand-written derivatives before it is timed, and then the cases are
 * measured round by round (every case once per round, in a rotating order),
 * so that ratios are taken between measurements made moments apart. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdio.h>

#define BENCH_MAX_ROUNDS 64

/* Options of one run (main.c fills them). */
typedef struct bench_opts {
    int quick;            /* --quick: smallest sizes, 0.02 s, 3 rounds */
    int smoke;            /* --smoke: correctness first, tiny timings */
    int rounds;           /* rounds per case */
    double min_time;      /* each measurement lasts at least this (wall, s) */
    int adolc;            /* use ADOL-C when it was built in */
    int verbose;
    int threads_max;      /* threads for the batch scaling case */
    int inject_mismatch;  /* --inject-mismatch: spoil tapegen's gradient (tests the checks) */
    const char *only;     /* --only OP: time only the cases whose op begins with OP */
    int no_lazy;          /* --no-lazy: tg_tape_set_lazy(f, 0), the sweeps only */
    int no_loops;         /* --no-loops: leave out the loop variants (issue 11) */
} bench_opts;

typedef void (*bench_fn)(void *ctx);

/* Systems, spelled the same everywhere (tables, CSV, plot). */
#define SYS_HAND      "hand C"
#define SYS_TG        "tapegen"
#define SYS_TG_WS     "tapegen ws"
#define SYS_TG_DTAPE  "tapegen dtape"
#define SYS_ADOLC     "ADOL-C"
#define SYS_FD        "central FD"

typedef struct bench_case {
    char system[32];
    char op[40];
    char nat_op[40];        /* op of the hand-written case it is compared to ("" none) */
    char adolc_op[40];      /* op of the ADOL-C case it is compared to ("" none) */
    bench_fn fn;
    void *ctx;
    int process_cpu;        /* 1: process CPU time (multi-threaded case), 0: thread CPU */
    int threads;            /* > 0: omp_set_num_threads(threads) before measuring */
    double per_call_div;    /* per-call time is divided by this (points per call) */
    size_t reps;            /* calls per timed batch (calibrated) */
    size_t calls_total;
    int nr;
    double cpu[BENCH_MAX_ROUNDS], wall[BENCH_MAX_ROUNDS];
    int checked;            /* 1: checked against the hand-written result */
    double check_err;       /* max relative error found */
    double check_tol;
    int check_ok;
    char note[160];
} bench_case;

typedef struct bench_ratio {
    char name[64];
    int num, den;
    int wall;               /* 1: ratio of wall times, 0: of CPU times */
} bench_ratio;

typedef struct bench_metric {
    char system[32];
    char name[64];
    char unit[16];
    double value;
    char note[160];
} bench_metric;

typedef struct bench_set {
    char workload[24];
    char size[24];
    bench_case *c;
    int nc, cap;
    bench_ratio *r;
    int nrat, rcap;
    bench_metric *m;
    int nmet, mcap;
    int failed;             /* a check failed */
} bench_set;

/* ---- timers */
double bench_wall(void);
double bench_cpu_thread(void);
double bench_cpu_process(void);
long   bench_peak_rss_kib(void);

/* ---- sets and cases */
void bench_set_init(bench_set *s, const char *workload, const char *size);
void bench_set_free(bench_set *s);
/* Adds a case; returns its index. */
int  bench_add(bench_set *s, const char *system, const char *op, bench_fn fn, void *ctx);
bench_case *bench_get(bench_set *s, int idx);
/* The reference ops of case idx (default: its own op); "" for none. */
void bench_set_refs(bench_set *s, int idx, const char *nat_op, const char *adolc_op);
/* Index of the case (system, op), or -1. */
int  bench_find(const bench_set *s, const char *system, const char *op);
void bench_add_ratio(bench_set *s, const char *name, int num, int den, int wall);
void bench_metric_add(bench_set *s, const char *system, const char *name, double value,
                      const char *unit, const char *note);
void bench_note(bench_set *s, int idx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- checks */
/* Max over i of |got_i - want_i| / max(|want_i|, floor * ||want||_inf,
 * 1e-300), floor = 1e-6: relative error with a floor for entries that are
 * (nearly) zero by cancellation. */
double bench_relerr(const double *got, const double *want, size_t len);
/* Normwise: max_i |got_i - want_i| / max(||want||_inf, 1e-300).  Used for
 * everything that involves finite differences, whose error is absolute
 * (rounding of f over the step), not relative to each entry. */
double bench_normerr(const double *got, const double *want, size_t len);
/* Records the check of case idx (got vs want, tolerance tol); prints a line
 * on mismatch (and with -v) and marks the set failed.  Returns 1 when ok. */
int  bench_check(bench_set *s, int idx, const double *got, const double *want, size_t len,
                 double tol, const char *what);
/* The same with bench_normerr (central-difference systems). */
int  bench_check_norm(bench_set *s, int idx, const double *got, const double *want, size_t len,
                      double tol, const char *what);
/* A check that is not about one case (hand-written vs finite differences);
 * prints and marks the set failed on mismatch.  Returns 1 when ok. */
int  bench_selfcheck(bench_set *s, const char *what, double err, double tol);
/* Fails the set with a message (e.g. a tapegen or ADOL-C call failed). */
void bench_fail(bench_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- running and output */
void bench_run(bench_set *s, const bench_opts *o);
void bench_write_csv_header(FILE *f);
void bench_write_csv(const bench_set *s, FILE *f);
void bench_print(const bench_set *s, FILE *f);
/* Times the set unless a check failed (then says so on stderr and times
 * nothing).  Returns 1 when it ran. */
int  bench_run_checked(bench_set *s, const bench_opts *o);
/* The end of every workload: adds the process's peak RSS, prints the set
 * and appends it to csv (when not NULL).  Returns s->failed. */
int  bench_report(bench_set *s, FILE *csv);

/* ---- helpers for central differences */
/* Step for a central difference at x: cbrt(eps) * max(1, |x|). */
double bench_fd_step(double x);

/* ---- OpenMP (no-ops without it) */
void bench_set_threads(int n);
int  bench_have_openmp(void);
int  bench_max_threads(void);

#endif
