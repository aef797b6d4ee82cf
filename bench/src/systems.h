/* bench/src/systems.h -- one bench_set per workload and size: every system
 * registered, checked and timed side by side (systems.c). */
#ifndef BENCH_SYSTEMS_H
#define BENCH_SYSTEMS_H

#include <stdio.h>

#include "bench.h"

/* Each returns 0 when every check passed, 1 otherwise; rows go to csv (may
 * be NULL) and a summary to stdout. */
int run_w1(const bench_opts *o, size_t n, size_t batch_points, FILE *csv);
int run_w2(const bench_opts *o, FILE *csv);
int run_w3(const bench_opts *o, FILE *csv);
int run_w4(const bench_opts *o, size_t n, FILE *csv);

/* Sparse derivatives (sparse.c): W1's Hessian and W4's Jacobian at size n,
 * tg_sparse_* against tg_gradient / tg_eval and hand-written entries. */
int run_w1_sparse(const bench_opts *o, size_t n, FILE *csv);
int run_w4_sparse(const bench_opts *o, size_t n, FILE *csv);

/* Loops kept in the tape (issue 11; loops.c).  W1 as a map is part of
 * run_w1 (systems "tapegen loop", "tapegen loop dtape").  run_w3_scan: W3
 * as a scan of one RK4 step at `steps` steps over a fixed time span
 * (dt = w3s_dt(steps) = 10 / steps), against the hand-written adjoint and
 * the flat recording (up to 10^4 steps), with every carry stored vs
 * checkpointing limited to 100 snapshots (time, and peak memory of child
 * processes running `tgbench --loopmem`).  run_loopmem: one such child:
 * MODE hand|flat|store|ckptK records and computes one gradient, prints a
 * "loopmem" line; exit status 0 when the gradient is right. */
int run_w3_scan(const bench_opts *o, size_t steps, FILE *csv);
int run_loopmem(const char *mode, size_t steps);
double w3s_dt(size_t steps);

/* W1 at size n with one system only ("tapegen", "adolc" or "hand"):
 * record, f, gradient and HVP once; prints and writes peak RSS rows. */
int run_memprobe(const char *system, size_t n, FILE *csv);

/* Generated Rust: writes the crates for the W1 n=1000 and W2 gradient
 * kernels under dir (dir/w1_grad, dir/w2_grad) plus the inputs and the
 * hand-written gradients the Rust runner checks against (dir/data/); rows
 * about generation go to csv. */
int run_rust_gen(const char *dir, size_t w1_n, FILE *csv);

/* The report: reads the raw CSV files, writes outdir/results.md,
 * results.csv and results.svg. */
int run_report(const char *outdir, int nfiles, char **files);

#endif
