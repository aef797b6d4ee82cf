/* Checks the Ipopt callbacks of a prepared problem against independent
 * oracles, at a given point:
 *  - eval_grad_f against central differences of eval_f;
 *  - eval_jac_g's triplets against the dense tg_jacobian of the g tape
 *    (1e-12 relative; no nonzero outside the pattern) and that dense
 *    Jacobian against central differences of eval_g;
 *  - eval_h's triplets (random sigma, lambda) against the dense tg_hessian of
 *    sigma f + lambda . g recorded as one scalar tape (1e-12 relative; no
 *    nonzero outside the lower-triangle pattern) and against central
 *    differences of the Lagrangian's gradient (one reverse sweep, tg_vjp).
 * Central differences use h = cbrt(eps) max(1, |x_j|) and allow their
 * truncation plus rounding error: 1e-6 (1 + |d|) + 8 eps (1 + |F|) / h,
 * where F is the size of the values differenced.
 * The dense parts are O(n^2): the check refuses n > NLP_CHECK_MAX_N. */
#ifndef IPOPT_NLP_CHECK_H
#define IPOPT_NLP_CHECK_H

#include <stdio.h>

#include "nlp.h"

#define NLP_CHECK_MAX_N 2000

/* Returns the number of disagreements (each printed to out), or -1 when
 * the check could not run (n too large, out of memory, a failed call). */
long nlp_check(nlp_ctx *c, const double *x, unsigned seed, FILE *out);

#endif
