/* bench/src/tgcheck.h -- small helpers every workload runner shares:
 * allocation that ends the benchmark on failure, and tapegen status checks
 * that fail the set with tapegen's message. */
#ifndef BENCH_TGCHECK_H
#define BENCH_TGCHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <tapegen.h>

#include "bench.h"

/* calloc that never returns NULL (a benchmark cannot go on without its
 * arrays): exits with status 2 and a message instead. */
static inline void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    return p;
}

/* 1 when st is TG_OK; else fails the set, naming the call `what`. */
static inline int
tg_ok(bench_set *bs, tg_status st, const char *what)
{
    if (st != TG_OK) {
        bench_fail(bs, "%s failed: %s (%s)", what, tg_status_str(st), tg_last_error());
        return 0;
    }
    return 1;
}

#endif
