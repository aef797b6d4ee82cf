/* tests/colpack/patterns.h -- tapes with known sparsity patterns for the
 * ColPack comparison (recorded in C: the operation macros are C11). */
#ifndef TG_COLPACK_PATTERNS_H
#define TG_COLPACK_PATTERNS_H

#include <stddef.h>

#include <tapegen.h>

#ifdef __cplusplus
extern "C" {
#endif

tg_tape *cp_rosenbrock(size_t n);     /* W1: tridiagonal Hessian */
tg_tape *cp_broyden(size_t n);        /* W4: tridiagonal Jacobian */
/* f = x_0/2 + sum_k sin(x_{a[k]} x_{b[k]}): Hessian pattern = the pairs */
tg_tape *cp_from_pairs(size_t n, size_t npairs, const size_t *a, const size_t *b);
/* y_i = sum_{q in ptr[i]..ptr[i+1]} exp(x_{cols[q]}): Jacobian pattern = rows */
tg_tape *cp_from_rows(size_t n, size_t m, const size_t *ptr, const size_t *cols);

#ifdef __cplusplus
}
#endif
#endif
