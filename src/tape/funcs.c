/* src/tape/funcs.c -- tg_funcs: the explicit object owning user functions
 * (tenferro's rule: no process-global registry).  Defined while open,
 * sealed by its first use and immutable afterwards, so that tapes can keep
 * plain indices into it and many threads can read it without locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tape/alloc.h"
#include "tape/funcs.h"
#include "internal.h"

static bool
ident_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > TAPE_FUNC_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return false;
    }
    return true;
}

static char *
dup_str(const char *s)
{
    if (!s)
        return NULL;
    char *d = mem_malloc(strlen(s) + 1);
    if (d)
        strcpy(d, s);
    return d;
}

static void
func_clear(tape_func *f)
{
    mem_free(f->name);
    mem_free(f->jvp_name);
    mem_free(f->vjp_name);
}

tg_funcs *
tg_funcs_new(void)
{
    tg_funcs *fs = mem_calloc(1, sizeof *fs);
    if (fs)
        atomic_init(&fs->sealed, 0);
    return fs;
}

void
tg_funcs_free(tg_funcs *fs)
{
    if (!fs)
        return;
    for (uint32_t i = 0; i < fs->nf; i++)
        func_clear(&fs->f[i]);
    mem_free(fs->f);
    mem_free(fs);
}

uint32_t
tape_funcs_find(const tg_funcs *fs, const char *name)
{
    /* linear: objects hold a handful of functions, and lookups happen when
     * recording or loading, never in a sweep */
    for (uint32_t i = 0; fs && name && i < fs->nf; i++)
        if (strcmp(fs->f[i].name, name) == 0)
            return i;
    return TAPE_FUNC_NONE;
}

static tg_status
check_def(const tg_funcs *fs, const tg_func_def *d)
{
    const char *fn = "tg_func_define";
    if (!fs || !d)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL %s", fn, fs ? "definition" : "object");
    if (atomic_load(&fs->sealed))
        return tape_fail_call(TG_ERR_ARG, "%s: the tg_funcs object is sealed (it has been "
                              "used): define every function before the first use", fn);
    if (!d->name || !ident_ok(d->name))
        return tape_fail_call(TG_ERR_ARG, "%s: the name must be 1..%d characters "
                              "[A-Za-z_][A-Za-z0-9_]*", fn, TAPE_FUNC_NAME_MAX);
    if (tape_funcs_find(fs, d->name) != TAPE_FUNC_NONE)
        return tape_fail_call(TG_ERR_ARG, "%s: function '%s' is already defined", fn, d->name);
    if (d->n > TAPE_FUNC_DIM_MAX || d->k > TAPE_FUNC_DIM_MAX)
        return tape_fail_call(TG_ERR_ARG, "%s: '%s' has more than 2^24 inputs or outputs", fn,
                              d->name);
    if (!d->eval)
        return tape_fail_call(TG_ERR_ARG, "%s: '%s' has no eval callback", fn, d->name);
    const char *ref[2] = { d->jvp_func, d->vjp_func };
    for (int j = 0; j < 2; j++)
        if (ref[j] && !ident_ok(ref[j]))
            return tape_fail_call(TG_ERR_ARG, "%s: '%s': %s is not a valid function name", fn,
                                  d->name, j ? "vjp_func" : "jvp_func");
    return TG_OK;
}

tg_status
tg_func_define(tg_funcs *fs, const tg_func_def *d)
{
    tg_status s = check_def(fs, d);
    if (s != TG_OK)
        return s;
    if (fs->nf == fs->cap
        && tape_grow((void **)&fs->f, &fs->cap, (uint64_t)fs->nf + 1, sizeof *fs->f))
        return tape_fail_call(TG_ERR_NOMEM, "tg_func_define: out of memory");
    tape_func f = {
        .name = dup_str(d->name), .n = (uint32_t)d->n, .k = (uint32_t)d->k,
        .eval = d->eval, .jvp = d->jvp, .vjp = d->vjp, .hvp = d->hvp,
        .hvp_numeric = d->hvp_numeric != 0,
        .jvp_name = dup_str(d->jvp_func), .vjp_name = dup_str(d->vjp_func),
        .jvp_fn = TAPE_FUNC_NONE, .vjp_fn = TAPE_FUNC_NONE, .ctx = d->ctx,
    };
    if (!f.name || (d->jvp_func && !f.jvp_name) || (d->vjp_func && !f.vjp_name)) {
        func_clear(&f);
        return tape_fail_call(TG_ERR_NOMEM, "tg_func_define: out of memory");
    }
    fs->f[fs->nf++] = f;
    return TG_OK;
}

size_t
tg_funcs_count(const tg_funcs *fs)
{
    return fs ? fs->nf : 0;
}

const char *
tg_funcs_name(const tg_funcs *fs, size_t i)
{
    return fs && i < fs->nf ? fs->f[i].name : NULL;
}

/* Resolves f's derivative function `name` (jvp: n + n -> k; vjp: n + k ->
 * n) into *out; 0 or -1 with a message. */
static int
resolve(const tg_funcs *fs, const tape_func *f, const char *name, int vjp, uint32_t *out,
        char *err, size_t errlen)
{
    *out = TAPE_FUNC_NONE;
    if (!name)
        return 0;
    uint32_t j = tape_funcs_find(fs, name);
    uint64_t want_n = (uint64_t)f->n + (vjp ? f->k : f->n), want_k = vjp ? f->n : f->k;
    const char *what = vjp ? "vjp_func" : "jvp_func";
    if (j == TAPE_FUNC_NONE) {
        snprintf(err, errlen, "user function '%s': %s '%s' is not defined in the same "
                 "tg_funcs object", f->name, what, name);
        return -1;
    }
    if (fs->f[j].n != want_n || fs->f[j].k != want_k) {
        snprintf(err, errlen, "user function '%s' (%u -> %u): %s '%s' is %u -> %u, not "
                 "%llu -> %llu", f->name, f->n, f->k, what, name, fs->f[j].n, fs->f[j].k,
                 (unsigned long long)want_n, (unsigned long long)want_k);
        return -1;
    }
    *out = j;
    return 0;
}

int
tape_funcs_seal(const tg_funcs *cfs, char *err, size_t errlen)
{
    if (atomic_load_explicit(&cfs->sealed, memory_order_acquire))
        return 0;
    /* Sealing writes the resolved indices once.  The object was created
     * non-const by tg_funcs_new; defining and first use are not concurrent
     * (documented), so this write races with nothing. */
    tg_funcs *fs = (tg_funcs *)(uintptr_t)cfs;
    for (uint32_t i = 0; i < fs->nf; i++) {
        tape_func *f = &fs->f[i];
        if (resolve(fs, f, f->jvp_name, 0, &f->jvp_fn, err, errlen)
            || resolve(fs, f, f->vjp_name, 1, &f->vjp_fn, err, errlen))
            return -1;
    }
    atomic_store_explicit(&fs->sealed, 1, memory_order_release);
    return 0;
}
