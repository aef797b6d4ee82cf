// bench/src/adolc_bench.cpp -- the four workloads taped with ADOL-C
// (trace_on/trace_off over adoubles), and thin C wrappers around its
// drivers.  Built only when CMake finds ADOL-C.  The operations and their
// order are the ones of the hand-written C functions (workloads.c).
#include "adolc_iface.h"
#include "workloads.h"

#include <adolc/adolc.h>

#include <cstdio>
#include <vector>

#ifndef BENCH_ADOLC_VERSION
#define BENCH_ADOLC_VERSION "unknown"
#endif

namespace {

unsigned buffer_elems = 524288;   // ADOL-C's compiled-in default (usrparms.h)

void begin(short tag)
{
    // keepTaylors = 0; buffers big enough to keep the tape in memory.
    trace_on(tag, 0, buffer_elems, buffer_elems, buffer_elems, buffer_elems);
}

}  // namespace

extern "C" {

int adb_available(void) { return 1; }

const char *adb_version(void) { return BENCH_ADOLC_VERSION; }

void adb_set_buffer_size(size_t elements)
{
    if (elements < 524288)
        elements = 524288;
    if (elements > 0x7fffffffu)
        elements = 0x7fffffffu;
    buffer_elems = (unsigned)elements;
}

int adb_tape_rosenbrock(short tag, int n, const double *x0)
{
    if (n < 2)
        return -1;
    adouble *x = new adouble[n];
    adouble acc;
    double y;
    begin(tag);
    for (int i = 0; i < n; i++)
        x[i] <<= x0[i];
    for (int i = 0; i + 1 < n; i++) {
        adouble d = x[i + 1] - x[i] * x[i];
        adouble e = 1.0 - x[i];
        adouble term = 100.0 * d * d + e * e;
        if (i == 0)
            acc = term;
        else
            acc = acc + term;
    }
    acc >>= y;
    trace_off();
    delete[] x;
    return 0;
}

int adb_tape_mlp(short tag, const double *theta0, const double *inputs, const double *targets,
                 int nsamples)
{
    adouble *th = new adouble[MLP_NP];
    adouble loss;
    double out;
    begin(tag);
    for (int k = 0; k < MLP_NP; k++)
        th[k] <<= theta0[k];
    for (int s = 0; s < nsamples; s++) {
        const double *in = inputs + s * MLP_IN;
        adouble h1[MLP_H], h2[MLP_H];
        for (int i = 0; i < MLP_H; i++) {
            adouble a = th[MLP_B1 + i];
            for (int j = 0; j < MLP_IN; j++)
                a = a + th[MLP_W1 + i * MLP_IN + j] * in[j];
            h1[i] = tanh(a);
        }
        for (int i = 0; i < MLP_H; i++) {
            adouble a = th[MLP_B2 + i];
            for (int j = 0; j < MLP_H; j++)
                a = a + th[MLP_W2 + i * MLP_H + j] * h1[j];
            h2[i] = tanh(a);
        }
        adouble y = th[MLP_B3];
        for (int j = 0; j < MLP_H; j++)
            y = y + th[MLP_W3 + j] * h2[j];
        adouble e = y - targets[s];
        if (s == 0)
            loss = e * e;
        else
            loss = loss + e * e;
    }
    loss = loss * (1.0 / MLP_S);
    loss >>= out;
    trace_off();
    delete[] th;
    return 0;
}

int adb_tape_lorenz(short tag, int steps, double dt, const double *u0)
{
    const double h2 = 0.5 * dt, h6 = dt / 6.0;
    adouble u[6];
    double out;
    begin(tag);
    for (int k = 0; k < 6; k++)
        u[k] <<= u0[k];
    adouble x = u[0], y = u[1], z = u[2];
    const adouble &sig = u[3], &rho = u[4], &beta = u[5];
    for (int k = 0; k < steps; k++) {
        adouble k1x = sig * (y - x), k1y = x * (rho - z) - y, k1z = x * y - beta * z;
        adouble tx = x + h2 * k1x, ty = y + h2 * k1y, tz = z + h2 * k1z;
        adouble k2x = sig * (ty - tx), k2y = tx * (rho - tz) - ty, k2z = tx * ty - beta * tz;
        tx = x + h2 * k2x;
        ty = y + h2 * k2y;
        tz = z + h2 * k2z;
        adouble k3x = sig * (ty - tx), k3y = tx * (rho - tz) - ty, k3z = tx * ty - beta * tz;
        tx = x + dt * k3x;
        ty = y + dt * k3y;
        tz = z + dt * k3z;
        adouble k4x = sig * (ty - tx), k4y = tx * (rho - tz) - ty, k4z = tx * ty - beta * tz;
        x = x + h6 * (((k1x + 2.0 * k2x) + 2.0 * k3x) + k4x);
        y = y + h6 * (((k1y + 2.0 * k2y) + 2.0 * k3y) + k4y);
        z = z + h6 * (((k1z + 2.0 * k2z) + 2.0 * k3z) + k4z);
    }
    adouble f = x * x + y * y + z * z;
    f >>= out;
    trace_off();
    return 0;
}

int adb_tape_broyden(short tag, int n, const double *x0)
{
    adouble *x = new adouble[n];
    double yi;
    begin(tag);
    for (int i = 0; i < n; i++)
        x[i] <<= x0[i];
    for (int i = 0; i < n; i++) {
        adouble r = (3.0 - 2.0 * x[i]) * x[i];
        if (i > 0)
            r = r - x[i - 1];
        if (i + 1 < n)
            r = r - 2.0 * x[i + 1];
        r = r + 1.0;
        r >>= yi;
    }
    trace_off();
    delete[] x;
    return 0;
}

void adb_tape_info(short tag, size_t *ops, size_t *locs, size_t *vals, size_t *taylor_stack,
                   int *on_disk)
{
    size_t st[STAT_SIZE];
    tapestats(tag, st);
    *ops = st[NUM_OPERATIONS];
    *locs = st[NUM_LOCATIONS];
    *vals = st[NUM_VALUES];
    *taylor_stack = st[TAY_STACK_SIZE];
    *on_disk = st[OP_FILE_ACCESS] || st[LOC_FILE_ACCESS] || st[VAL_FILE_ACCESS] ||
               st[TAY_STACK_SIZE] > st[TAY_BUFFER_SIZE];
}

int adb_function(short tag, int m, int n, const double *x, double *y)
{
    return function(tag, m, n, const_cast<double *>(x), y);
}

int adb_gradient(short tag, int n, const double *x, double *g)
{
    return gradient(tag, n, x, g);
}

int adb_hess_vec(short tag, int n, const double *x, const double *v, double *hv)
{
    return hess_vec(tag, n, const_cast<double *>(x), const_cast<double *>(v), hv);
}

int adb_hessian(short tag, int n, const double *x, double **H)
{
    return hessian(tag, n, const_cast<double *>(x), H);
}

int adb_jacobian(short tag, int m, int n, const double *x, double **J)
{
    return jacobian(tag, m, n, x, J);
}

int adb_jac_vec(short tag, int m, int n, const double *x, const double *v, double *jv)
{
    return jac_vec(tag, m, n, const_cast<double *>(x), const_cast<double *>(v), jv);
}

double **adb_alloc2(size_t rows, size_t cols) { return myalloc2(rows, cols); }

void adb_free2(double **a)
{
    if (a)
        myfree2(a);
}

}  // extern "C"
