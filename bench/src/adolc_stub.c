/* bench/src/adolc_stub.c -- stands in for adolc_bench.cpp when CMake did
 * not find ADOL-C: every call reports that it is not available. */
#include "adolc_iface.h"

int adb_available(void) { return 0; }
const char *adb_version(void) { return "not built (libadolc-dev not found)"; }
void adb_set_buffer_size(size_t elements) { (void)elements; }

int adb_tape_rosenbrock(short tag, int n, const double *x0)
{ (void)tag; (void)n; (void)x0; return -1; }
int adb_tape_mlp(short tag, const double *theta0, const double *inputs, const double *targets,
                 int nsamples)
{ (void)tag; (void)theta0; (void)inputs; (void)targets; (void)nsamples; return -1; }
int adb_tape_lorenz(short tag, int steps, double dt, const double *u0)
{ (void)tag; (void)steps; (void)dt; (void)u0; return -1; }
int adb_tape_broyden(short tag, int n, const double *x0)
{ (void)tag; (void)n; (void)x0; return -1; }
void adb_tape_info(short tag, size_t *ops, size_t *locs, size_t *vals, size_t *taylor_stack,
                   int *on_disk)
{ (void)tag; *ops = *locs = *vals = *taylor_stack = 0; *on_disk = 0; }
int adb_function(short tag, int m, int n, const double *x, double *y)
{ (void)tag; (void)m; (void)n; (void)x; (void)y; return -1; }
int adb_gradient(short tag, int n, const double *x, double *g)
{ (void)tag; (void)n; (void)x; (void)g; return -1; }
int adb_hess_vec(short tag, int n, const double *x, const double *v, double *hv)
{ (void)tag; (void)n; (void)x; (void)v; (void)hv; return -1; }
int adb_hessian(short tag, int n, const double *x, double **H)
{ (void)tag; (void)n; (void)x; (void)H; return -1; }
int adb_jacobian(short tag, int m, int n, const double *x, double **J)
{ (void)tag; (void)m; (void)n; (void)x; (void)J; return -1; }
int adb_jac_vec(short tag, int m, int n, const double *x, const double *v, double *jv)
{ (void)tag; (void)m; (void)n; (void)x; (void)v; (void)jv; return -1; }
double **adb_alloc2(size_t rows, size_t cols) { (void)rows; (void)cols; return 0; }
void adb_free2(double **a) { (void)a; }
