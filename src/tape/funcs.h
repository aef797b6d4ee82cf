/* src/tape/funcs.h -- the user-function object (tg_funcs, funcs.c) as the
 * rest of the library sees it: a sealed, immutable array of definitions. */
#ifndef TG_TAPE_FUNCS_H
#define TG_TAPE_FUNCS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tapegen.h"

#define TAPE_FUNC_NAME_MAX  63
#define TAPE_FUNC_DIM_MAX   ((uint32_t)1 << 24)
#define TAPE_FUNC_NONE      UINT32_MAX

/* One function: a copy of the user's tg_func_def with owned strings and
 * the derivative functions resolved to indices when the object is sealed. */
typedef struct tape_func {
    char *name;
    uint32_t n, k;
    tg_func_eval_fn eval;
    tg_func_jvp_fn jvp;
    tg_func_vjp_fn vjp;
    tg_func_hvp_fn hvp;
    int hvp_numeric;
    char *jvp_name, *vjp_name;      /* NULL: none */
    uint32_t jvp_fn, vjp_fn;        /* TAPE_FUNC_NONE until sealed / when none */
    void *ctx;
} tape_func;

struct tg_funcs {
    tape_func *f;
    uint32_t nf, cap;
    atomic_int sealed;              /* 0 while defining; 1 for ever after */
};

/* The index of the function called `name` in fs, or TAPE_FUNC_NONE. */
uint32_t tape_funcs_find(const tg_funcs *fs, const char *name);

/* Seals fs (idempotent, thread-safe): checks that every jvp_func/vjp_func
 * names a function of the right shape and resolves it.  0, or -1 with a
 * message in err (fs then stays open for more definitions). */
int tape_funcs_seal(const tg_funcs *fs, char *err, size_t errlen);

static inline const tape_func *
tape_funcs_at(const tg_funcs *fs, uint32_t i)
{
    return &fs->f[i];
}

#endif
