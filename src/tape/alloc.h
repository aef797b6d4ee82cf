/* src/tape/alloc.h -- the memory funnel (prefix mem_): every allocation of
 * the library goes through these, so that tests can count allocations and
 * make the k-th one fail (out-of-memory sweeps). */
#ifndef TG_TAPE_ALLOC_H
#define TG_TAPE_ALLOC_H

#include <stddef.h>

void *mem_malloc(size_t n);
void *mem_calloc(size_t count, size_t n);
void *mem_realloc(void *p, size_t n);
void  mem_free(void *p);

/* Test hook: after k more successful allocations, every allocation fails
 * (k < 0: never, the default).  Returns the number of allocations made
 * since the last call.  Process-wide; not for production use. */
long  mem_fail_after(long k);

#endif
