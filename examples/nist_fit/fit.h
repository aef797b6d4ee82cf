/* fit.h -- fitting a NIST StRD dataset with MINPACK's lmder on a tapegen tape.
 *
 * The tape of a dataset with k parameters and n observations has three input
 * blocks and one output block:
 *
 *     inputs   "b" (k)  parameters b1..bk
 *              "x" (n)  predictor values
 *              "y" (n)  observed responses
 *     output   "r" (n)  residuals r_i = y_i - f(b, x_i)
 *
 * The data are inputs, not constants baked into the tape, so one recording
 * serves any data set of the same model and size.  lmder minimises sum r_i^2;
 * its Jacobian dr/db is the first k columns of the tape's n x (k + 2n)
 * Jacobian, computed by tg_jacobian_ws with a workspace owned by the problem,
 * so the fit loop allocates nothing.
 */
#ifndef NIST_FIT_H
#define NIST_FIT_H

#include <stddef.h>
#include <tapegen.h>

#include "models.h"
#include "nist.h"

typedef struct nist_problem {
    const nist_dataset *d;
    const nist_model *model;
    tg_tape *tape;
    tg_workspace *ws;
    size_t nin;             /* k + 2n                                         */
    double *in;             /* nin: [b | x | y]                               */
    double *J;              /* n * nin, row-major                             */
    /* lmder's arrays */
    double *fvec, *fjac, *diag, *qtf, *wa1, *wa2, *wa3, *wa4;
    int *ipvt;
    tg_status err;          /* first tapegen error met inside the callback    */
    long nonfinite;         /* residual vectors with a NaN/inf entry (see fit.c) */
} nist_problem;

/* Records the residual tape of model for n observations (named after the
 * model).  NULL when out of memory; check tg_tape_status otherwise. */
tg_tape *nist_record(const nist_model *model, size_t n);

/* Records the tape and allocates everything the fit needs.  Returns 0, or -1
 * with a message in err. */
int nist_problem_init(nist_problem *p, const nist_dataset *d,
                      const nist_model *model, char *err, size_t errlen);
void nist_problem_free(nist_problem *p);

/* r = y - f(b, x) at b (n values). */
tg_status nist_residuals(nist_problem *p, const double *b, double *r);
/* Jb = dr/db at b, n x k row-major. */
tg_status nist_jacobian_b(nist_problem *p, const double *b, double *Jb);

enum { NIST_FIT_OK, NIST_FIT_STALLED, NIST_FIT_FAILED };

#define NIST_FIT_RUNS 4     /* lmder from the start, then restarts to polish */

typedef struct nist_fit_result {
    double b[NIST_MAXP];
    double rss;
    int runs;               /* lmder calls made (1..NIST_FIT_RUNS)            */
    int info[NIST_FIT_RUNS];/* lmder's info of each call                      */
    int nfev, njev;         /* totals over all calls                          */
    double lre[NIST_MAXP];  /* log relative error of each parameter           */
    double min_lre;         /* the smallest of lre[]                          */
    double lre_rss;         /* log relative error of rss                      */
    int status;             /* NIST_FIT_OK (min_lre >= 4), _STALLED, _FAILED  */
    char why[96];           /* the reason, for a stall or failure             */
} nist_fit_result;

/* Fits p's dataset from start (k values) and grades the result against the
 * certified values.  Returns the status. */
int nist_fit(nist_problem *p, const double *start, nist_fit_result *res);

/* -log10(|v - cert| / |cert|), clamped to [0, digits]; digits when equal. */
double nist_lre(double v, double cert, int digits);

/* A short name for lmder's info code ("xtol", "maxfev", ...). */
const char *nist_lmder_info_str(int info);

#endif /* NIST_FIT_H */
