/* src/tape/alloc.h -- every allocation of the library goes through these,
 * so that tests can make the k-th allocation fail (out-of-memory sweeps). */
#ifndef TG_TAPE_ALLOC_H
#define TG_TAPE_ALLOC_H

#include <stddef.h>

void *tg__malloc(size_t n);
void *tg__calloc(size_t count, size_t n);
void *tg__realloc(void *p, size_t n);
void  tg__free(void *p);

/* Test hook: after k more successful allocations, every allocation fails
 * (k < 0: never, the default).  Returns the number of allocations made
 * since the last call.  Process-wide; not for production use. */
long  tg__alloc_fail_after(long k);

#endif
