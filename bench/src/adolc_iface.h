/* bench/src/adolc_iface.h -- the C side's view of the ADOL-C benchmark code
 * (adolc_bench.cpp when CMake finds ADOL-C, else adolc_stub.c, where every
 * call reports that ADOL-C is not available).
 *
 * Each adb_tape_* function tapes one workload with trace_on/trace_off at
 * the given point, writing exactly the same operations as the hand-written
 * C function and the tapegen recording.  Drivers return ADOL-C's return
 * code (negative: error).  Matrices from adb_alloc2 are row pointers into
 * one block (ADOL-C's myalloc2). */
#ifndef BENCH_ADOLC_IFACE_H
#define BENCH_ADOLC_IFACE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int         adb_available(void);
const char *adb_version(void);

/* Buffer sizes (elements) for the next trace_on: large enough that the
 * whole tape stays in memory (ADOL-C's best case). */
void adb_set_buffer_size(size_t elements);

int adb_tape_rosenbrock(short tag, int n, const double *x0);
int adb_tape_mlp(short tag, const double *theta0, const double *inputs, const double *targets,
                 int nsamples);
int adb_tape_lorenz(short tag, int steps, double dt, const double *u0);
int adb_tape_broyden(short tag, int n, const double *x0);

/* tapestats: operations, locations, values, and 1 if any of the tape's
 * buffers went to a file (then the in-memory assumption does not hold). */
void adb_tape_info(short tag, size_t *ops, size_t *locs, size_t *vals, size_t *taylor_stack,
                   int *on_disk);

int adb_function(short tag, int m, int n, const double *x, double *y);
int adb_gradient(short tag, int n, const double *x, double *g);
int adb_hess_vec(short tag, int n, const double *x, const double *v, double *hv);
/* Lower triangle of H in H[i][j], j <= i (ADOL-C's convention). */
int adb_hessian(short tag, int n, const double *x, double **H);
int adb_jacobian(short tag, int m, int n, const double *x, double **J);
int adb_jac_vec(short tag, int m, int n, const double *x, const double *v, double *jv);

double **adb_alloc2(size_t rows, size_t cols);
void     adb_free2(double **a);

#ifdef __cplusplus
}
#endif
#endif
