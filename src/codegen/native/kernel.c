/* src/codegen/native/kernel.c -- tg_compile and evaluating its kernels: the
 * tape translated to C (tg_c_source, with the batch variant), built by
 * build.c, the two entry points looked up. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdlib.h>

#include "codegen/native/native.h"
#include "tape/alloc.h"
#include "tape/internal.h"

/* The kernel's C name (any name: each object is loaded RTLD_LOCAL). */
#define NAT_SYM "tg_native_kernel"

void
nat_opts_from(nat_opts *n, const tg_compile_options *o, unsigned flags)
{
    memset(n, 0, sizeof *n);
    if (o) {
        n->cc = o->cc;
        n->cache_dir = o->cache_dir;
        n->opt_level = o->opt_level;
    }
    n->flags = flags;
}

static tg_kernel *
load_kernel(void *so, const tg_tape *t, size_t work, const char *fn, tg_status *st)
{
    tg_kernel *k = tg__calloc(1, sizeof *k);
    if (!k) {
        dlclose(so);
        *st = tg__api_fail(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    k->so = so;
    /* POSIX: a function pointer converts from dlsym's void * */
    *(void **)&k->fn = dlsym(so, NAT_SYM);
    *(void **)&k->batch = dlsym(so, NAT_SYM "_batch");
    if (!k->fn || !k->batch) {
        tg_kernel_free(k);
        *st = tg__api_fail(TG_ERR_UNSUPPORTED, "%s: the compiled object lacks %s", fn, NAT_SYM);
        return NULL;
    }
    k->nin = t->nin;
    k->nout = t->nout;
    k->work = work;
    k->batch_work = TG_C_BATCH_BLOCK * (work + t->nin + t->nout);
    k->ninst = t->n;
    return k;
}

tg_kernel *
nat_compile(const tg_tape *t, const nat_opts *o, const char *fn, tg_status *st)
{
    if (!t) {
        *st = tg__api_fail(TG_ERR_ARG, "%s: NULL tape", fn);
        return NULL;
    }
    if (t->status != TG_OK) {
        *st = tg__api_fail(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                           t->err);
        return NULL;
    }
    tg_c_options co = { 0 };
    co.function_name = NAT_SYM;
    co.batch = 1;
    char *src = NULL;
    size_t work = 0;
    if ((*st = tg_c_source(t, &co, &src, &work)) != TG_OK)
        return NULL;            /* message already in tg_last_error */
    nat_source s = { src, strlen(src) };
    nat_how how = 0;
    void *so = nat_build(&s, 1, o, fn, st, &how);
    free(src);
    if (!so)
        return NULL;
    tg_kernel *k = load_kernel(so, t, work, fn, st);
    if (k)
        k->how = how;
    return k;
}

tg_kernel *
tg_compile_ex(const tg_tape *t, const tg_compile_options_ex *o)
{
    nat_opts n;
    nat_opts_from(&n, o ? &o->base : NULL, o ? o->flags : 0);
    tg_status st;
    return nat_compile(t, &n, "tg_compile", &st);
}

tg_kernel *
tg_compile(const tg_tape *t, const tg_compile_options *o)
{
    nat_opts n;
    nat_opts_from(&n, o, 0);
    tg_status st;
    return nat_compile(t, &n, "tg_compile", &st);
}

void
tg_kernel_free(tg_kernel *k)
{
    if (!k)
        return;
    if (k->so)
        dlclose(k->so);
    tg__free(k);
}

size_t tg_kernel_num_inputs(const tg_kernel *k)  { return k ? k->nin : 0; }
size_t tg_kernel_num_outputs(const tg_kernel *k) { return k ? k->nout : 0; }

/* Work arrays up to this many doubles live on the stack. */
enum { STACK_WORK = 1024 };

static tg_status
branch_error(const char *fn)
{
    return tg__api_fail(TG_ERR_BRANCH, "%s: a recorded branch goes the other way at this point",
                        fn);
}

tg_status
tg_kernel_eval(const tg_kernel *k, const double *x, double *y)
{
    const char *fn = "tg_kernel_eval";
    if (!k)
        return tg__api_fail(TG_ERR_ARG, "%s: NULL kernel", fn);
    if ((!x && k->nin) || (!y && k->nout))
        return tg__api_fail(TG_ERR_ARG, "%s: NULL array", fn);
    double stack[STACK_WORK];
    double *w = stack;
    if (k->work > STACK_WORK && !(w = tg__malloc(k->work * sizeof *w)))
        return tg__api_fail(TG_ERR_NOMEM, "%s: out of memory for %zu work values", fn, k->work);
    int r = k->fn(x, y, w);
    if (w != stack)
        tg__free(w);
    return r ? branch_error(fn) : TG_OK;
}

/* Points per call of the batch variant: a multiple of its block. */
enum { CHUNK = 8 * TG_C_BATCH_BLOCK };

tg_status
tg_kernel_eval_batch(const tg_kernel *k, size_t npts, const double *X, double *Y)
{
    const char *fn = "tg_kernel_eval_batch";
    if (!k)
        return tg__api_fail(TG_ERR_ARG, "%s: NULL kernel", fn);
    if (npts == 0)
        return TG_OK;
    if ((!X && k->nin) || (!Y && k->nout))
        return tg__api_fail(TG_ERR_ARG, "%s: NULL array", fn);
    size_t nchunks = (npts + CHUNK - 1) / CHUNK;
    tg_status status = TG_OK;
    int parallel = nchunks > 1 && (double)npts * (double)k->ninst >= 65536.0;
    (void)parallel;
#if defined(TG_HAVE_OPENMP)
#pragma omp parallel if (parallel)
#endif
    {
        double *w = tg__malloc((k->batch_work ? k->batch_work : 1) * sizeof *w);
        tg_status s = w ? TG_OK : tg__api_fail(TG_ERR_NOMEM, "%s: out of memory", fn);
#if defined(TG_HAVE_OPENMP)
#pragma omp for schedule(static)
#endif
        for (size_t c = 0; c < nchunks; c++) {
            if (s != TG_OK)
                continue;
            size_t p0 = c * CHUNK, np = npts - p0 < CHUNK ? npts - p0 : CHUNK;
            if (k->batch(np, X + p0 * k->nin, Y + p0 * k->nout, w))
                s = branch_error(fn);
        }
        tg__free(w);
        if (s != TG_OK) {
#if defined(TG_HAVE_OPENMP)
#pragma omp critical(tg_kernel_status)
#endif
            status = s;
        }
    }
    return status;
}
