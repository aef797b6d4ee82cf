/* src/codegen/native/kernel.c -- tg_compile and evaluating its kernels: the
 * tape translated to C (tg_c_source, with the batch variant), built by
 * build.c, the two entry points looked up. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdlib.h>

#include "codegen/cg.h"
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

/* The C translation units of t (with the batch variant when batch) into
 * one job. */
static tg_status
source_job(const tg_tape *t, const nat_opts *o, int batch, const char *fn, nat_job *j,
           size_t *work)
{
    tg_c_options co = { 0 };
    co.function_name = NAT_SYM;
    co.batch = batch;
    co.unit_size = o->unit_size ? o->unit_size : NAT_UNIT;
    co.part_size = o->part_size;
    /* at most NAT_MAX_UNITS units of whole parts of psz statements; statements <= instructions + outputs */
    uint64_t psz = co.part_size ? co.part_size : 1000;
    uint64_t nparts = ((uint64_t)t->n + t->nout + psz - 1) / psz, ppu = co.unit_size / psz;
    ppu = ppu ? ppu : 1;
    if ((nparts + ppu - 1) / ppu > NAT_MAX_UNITS)
        co.unit_size = (unsigned)(psz * ((nparts + NAT_MAX_UNITS - 1) / NAT_MAX_UNITS));
    char **u = NULL;
    size_t nu = 0;
    memset(j, 0, sizeof *j);
    tg_status st = cg_c_units(t, &co, &u, &nu, work);
    if (st != TG_OK)
        return st;              /* message already in tg_last_error */
    j->src = mem_calloc(nu, sizeof *j->src);
    if (!j->src) {
        cg_c_units_free(u, nu);
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (size_t i = 0; i < nu; i++) {
        j->src[i].text = u[i];
        j->src[i].len = strlen(u[i]);
    }
    mem_free(u);                /* the texts now belong to j->src */
    j->nsrc = nu;
    j->o = *o;
    j->fn = fn;
    if (batch)                  /* -O3: its loops over the points of a block vectorise */
        j->o.opt_level = 3;
    return TG_OK;
}

size_t
nat_kernel_jobs(const tg_tape *t, const nat_opts *o, int batch, const char *fn, nat_job *jobs,
                size_t *work, tg_status *st)
{
    if (!t) {
        *st = tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
        return 0;
    }
    if (t->status != TG_OK) {
        *st = tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                           t->err);
        return 0;
    }
    if (t->xkinds & TAPE_XK_CALL) {     /* the user's C functions cannot be linked in */
        *st = tape_refuse_call(t, fn);
        return 0;
    }
    if (o->opt_level < 0 || o->opt_level > 3) {
        *st = tape_fail_call(TG_ERR_ARG, "%s: opt_level %d is not 0..3", fn, o->opt_level);
        return 0;
    }
    size_t bwork;
    if ((*st = source_job(t, o, 0, fn, &jobs[0], work)) != TG_OK)
        return 0;
    for (uint32_t i = 0; batch && i < t->n; i++)
        if (t->op[i] == TG_OP_MAP || t->op[i] == TG_OP_SCAN)
            batch = 0;          /* its batch variant would only loop over the points: so does
                                   tg_kernel_eval_batch without one, and no -O3 compile is paid */
    if (batch && (*st = source_job(t, o, 1, fn, &jobs[1], &bwork)) != TG_OK) {
        nat_kernel_jobs_free(jobs, 1);
        return 0;
    }
    return batch ? 2 : 1;
}

void
nat_kernel_jobs_free(nat_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t u = 0; jobs[i].src && u < jobs[i].nsrc; u++)
            mem_free((char *)(uintptr_t)jobs[i].src[u].text);     /* cg_c_units' */
        mem_free(jobs[i].src);
        jobs[i].src = NULL;
        jobs[i].nsrc = 0;
        if (jobs[i].so)
            dlclose(jobs[i].so);
        jobs[i].so = NULL;
    }
}

tg_kernel *
nat_kernel_make(const tg_tape *t, nat_job *jobs, size_t n, size_t work, const char *fn,
                tg_status *st)
{
    tg_kernel *k = mem_calloc(1, sizeof *k);
    if (!k) {
        *st = tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    k->so = jobs[0].so;
    jobs[0].so = NULL;
    k->how = jobs[0].how;
    /* POSIX: a function pointer converts from dlsym's void * */
    *(void **)&k->fn = dlsym(k->so, NAT_SYM);
    if (n > 1) {
        k->so_batch = jobs[1].so;
        jobs[1].so = NULL;
        *(void **)&k->batch = dlsym(k->so_batch, NAT_SYM "_batch");
    }
    if (!k->fn || (n > 1 && !k->batch)) {
        tg_kernel_free(k);
        *st = tape_fail_call(TG_ERR_UNSUPPORTED, "%s: the compiled object lacks %s", fn, NAT_SYM);
        return NULL;
    }
    k->nin = t->nin;
    k->nout = t->nout;
    k->work = work;
    k->batch_work = n > 1 ? TG_C_BATCH_BLOCK * (work + t->nin + t->nout) : 0;
    k->ninst = t->n;
    *st = TG_OK;
    return k;
}

/* Both steps for one tape. */
static tg_kernel *
compile_one(const tg_tape *t, const nat_opts *o, int batch, const char *fn)
{
    nat_job jobs[2];
    size_t work = 0;
    tg_status st;
    size_t n = nat_kernel_jobs(t, o, batch, fn, jobs, &work, &st);
    if (n == 0)
        return NULL;
    tg_kernel *k = NULL;
    if (nat_build_jobs(jobs, n) == TG_OK)
        k = nat_kernel_make(t, jobs, n, work, fn, &st);
    nat_kernel_jobs_free(jobs, n);
    return k;
}

tg_kernel *
tg_compile_ex(const tg_tape *t, const tg_compile_options_ex *o)
{
    nat_opts n;
    nat_opts_from(&n, o ? &o->base : NULL, o ? o->flags : 0);
    return compile_one(t, &n, (n.flags & TG_COMPILE_BATCH) != 0, "tg_compile");
}

tg_kernel *
tg_compile(const tg_tape *t, const tg_compile_options *o)
{
    nat_opts n;
    nat_opts_from(&n, o, TG_COMPILE_BATCH);
    return compile_one(t, &n, 1, "tg_compile");
}

void
tg_kernel_free(tg_kernel *k)
{
    if (!k)
        return;
    if (k->so)
        dlclose(k->so);
    if (k->so_batch)
        dlclose(k->so_batch);
    mem_free(k);
}

size_t tg_kernel_num_inputs(const tg_kernel *k)  { return k ? k->nin : 0; }
size_t tg_kernel_num_outputs(const tg_kernel *k) { return k ? k->nout : 0; }

/* Work arrays up to this many doubles live on the stack. */
enum { STACK_WORK = 1024 };

static tg_status
branch_error(const char *fn)
{
    return tape_fail_call(TG_ERR_BRANCH, "%s: a recorded branch goes the other way at this point",
                        fn);
}

tg_status
tg_kernel_eval(const tg_kernel *k, const double *x, double *y)
{
    const char *fn = "tg_kernel_eval";
    if (!k)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL kernel", fn);
    if ((!x && k->nin) || (!y && k->nout))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL array", fn);
    double stack[STACK_WORK];
    double *w = stack;
    if (k->work > STACK_WORK && !(w = mem_malloc(k->work * sizeof *w)))
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory for %zu work values", fn, k->work);
    int r = k->fn(x, y, w);
    if (w != stack)
        mem_free(w);
    return r ? branch_error(fn) : TG_OK;
}

/* Points per call of the batch variant: a multiple of its block. */
enum { CHUNK = 8 * TG_C_BATCH_BLOCK };

tg_status
tg_kernel_eval_batch(const tg_kernel *k, size_t npts, const double *X, double *Y)
{
    const char *fn = "tg_kernel_eval_batch";
    if (!k)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL kernel", fn);
    if (npts == 0)
        return TG_OK;
    if ((!X && k->nin) || (!Y && k->nout))
        return tape_fail_call(TG_ERR_ARG, "%s: NULL array", fn);
    size_t nchunks = (npts + CHUNK - 1) / CHUNK;
    tg_status status = TG_OK;
    int parallel = nchunks > 1 && (double)npts * (double)k->ninst >= 65536.0;
    (void)parallel;
#if defined(TG_HAVE_OPENMP)
#pragma omp parallel if (parallel)
#endif
    {
        size_t need = k->batch ? k->batch_work : k->work;
        double *w = mem_malloc((need ? need : 1) * sizeof *w);
        tg_status s = w ? TG_OK : TG_ERR_NOMEM;
#if defined(TG_HAVE_OPENMP)
#pragma omp for schedule(static)
#endif
        for (size_t c = 0; c < nchunks; c++) {
            if (s != TG_OK)
                continue;
            size_t p0 = c * CHUNK, np = npts - p0 < CHUNK ? npts - p0 : CHUNK;
            const double *Xc = X + p0 * k->nin;
            double *Yc = Y + p0 * k->nout;
            int bad = 0;
            if (k->batch)
                bad = k->batch(np, Xc, Yc, w);
            else
                for (size_t p = 0; p < np; p++)    /* a failing point's row stays untouched */
                    bad |= k->fn(Xc + p * k->nin, Yc + p * k->nout, w) != 0;
            if (bad)
                s = TG_ERR_BRANCH;
        }
        mem_free(w);
        if (s != TG_OK) {
#if defined(TG_HAVE_OPENMP)
#pragma omp critical
#endif
            status = s;
        }
    }
    /* the message on the calling thread (workers have their own) */
    if (status == TG_ERR_NOMEM)
        return tape_fail_call(status, "%s: out of memory for a work array", fn);
    return status == TG_OK ? TG_OK : branch_error(fn);
}
