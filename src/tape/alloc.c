/* src/tape/alloc.c -- the allocation funnel and its fault-injection hook. */
#include <stdatomic.h>
#include <stdlib.h>

#include "tape/alloc.h"

static atomic_long budget = -1;     /* allocations left before failing; < 0: unlimited */
static atomic_long count;

static int
allowed(void)
{
    atomic_fetch_add(&count, 1);
    long b = atomic_load(&budget);
    if (b < 0)
        return 1;
    while (b > 0)
        if (atomic_compare_exchange_weak(&budget, &b, b - 1))
            return 1;
    return 0;
}

void *mem_malloc(size_t n)               { return allowed() ? malloc(n) : NULL; }
void *mem_calloc(size_t count_, size_t n) { return allowed() ? calloc(count_, n) : NULL; }
void *mem_realloc(void *p, size_t n)     { return allowed() ? realloc(p, n) : NULL; }
void  mem_free(void *p)                  { free(p); }

long
mem_fail_after(long k)
{
    atomic_store(&budget, k);
    return atomic_exchange(&count, 0);
}
