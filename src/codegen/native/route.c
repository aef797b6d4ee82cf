/* src/codegen/native/route.c -- tg_tape_compile: the derivative tapes a
 * tape's numeric calls need, each built once, optimised and compiled, then
 * attached to the tape as plain function pointers (src/ad/native.h), which
 * the numeric entry points call instead of sweeping. */
#include "ad/native.h"
#include "codegen/native/native.h"
#include "tape/alloc.h"

/* The routes plus the kernels behind their function pointers. */
typedef struct nat_routes {
    ad_routes base;             /* first: ad_routes * <-> nat_routes * */
    tg_kernel *k[AD_NROUTES];
} nat_routes;

static void
release(ad_routes *r)
{
    nat_routes *nr = (nat_routes *)r;
    for (int p = 0; p < AD_NROUTES; p++)
        tg_kernel_free(nr->k[p]);
    mem_free(nr);
}

static const unsigned part_bit[AD_NROUTES] = { TG_F, TG_GRAD, TG_JAC, TG_HVP };

/* The tape whose kernel serves part p of t: the derivative tape, optimised
 * (NULL for TG_F: t itself is compiled; the translator drops dead code). */
static tg_tape *
part_tape(const tg_tape *t, int p, tg_status *st, const char *fn)
{
    tg_tape *d = NULL;
    switch (p) {
    case AD_ROUTE_F:    *st = TG_OK; return NULL;
    case AD_ROUTE_GRAD: d = tg_gradient_tape(t, TG_ALL); break;
    case AD_ROUTE_JAC:  d = tg_jacobian_tape(t, TG_ALL); break;
    case AD_ROUTE_HVP:  d = tg_hvp_tape(t, TG_ALL); break;
    }
    if (!d) {
        *st = tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    *st = tg_tape_status(d);
    if (*st == TG_OK)
        *st = tg_tape_optimize(d, TG_OPT_MAX);
    if (*st != TG_OK) {
        *st = tape_fail_call(*st, "%s: derivative tape of \"%s\": %s", fn, t->name,
                           tg_tape_error(d)[0] ? tg_tape_error(d) : tg_status_str(*st));
        tg_tape_free(d);
        return NULL;
    }
    return d;
}

static tg_status
check(const tg_tape *t, unsigned parts, const char *fn)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "%s: NULL tape", fn);
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "%s: tape \"%s\" is in the error state: %s", fn, t->name,
                            t->err);
    if (t->xkinds & TAPE_XK_CALL)     /* the user's C functions cannot be linked in */
        return tape_refuse_call(t, fn);
    if (parts == 0 || (parts & ~(TG_F | TG_GRAD | TG_JAC | TG_HVP)))
        return tape_fail_call(TG_ERR_ARG, "%s: parts 0x%x: expected a combination of TG_F, "
                            "TG_GRAD, TG_JAC, TG_HVP", fn, parts);
    if ((parts & (TG_GRAD | TG_HVP)) && t->nout != 1)
        return tape_fail_call(TG_ERR_SHAPE, "%s: gradient or HVP of tape \"%s\" with %u outputs, "
                            "not 1", fn, t->name, t->nout);
    return TG_OK;
}

/* The parts' tapes translated to C, compiled all at once (the compilers
 * run in parallel), loaded as kernels into nr. */
static tg_status
compile_parts(tg_tape *t, unsigned parts, const nat_opts *o, nat_routes *nr, const char *fn)
{
    tg_tape *d[AD_NROUTES] = { NULL };
    nat_job jobs[2 * AD_NROUTES];
    size_t first[AD_NROUTES], count[AD_NROUTES] = { 0 }, work[AD_NROUTES], nj = 0;
    tg_status st = TG_OK;
    for (int p = 0; p < AD_NROUTES && st == TG_OK; p++) {
        if (!(parts & part_bit[p]))
            continue;
        d[p] = part_tape(t, p, &st, fn);
        if (st != TG_OK)
            break;
        /* batch variants serve tg_eval_batch and tg_gradient_batch */
        int batch = (o->flags & TG_COMPILE_BATCH) && (p == AD_ROUTE_F || p == AD_ROUTE_GRAD);
        first[p] = nj;
        count[p] = nat_kernel_jobs(d[p] ? d[p] : t, o, batch, fn, jobs + nj, &work[p], &st);
        nj += count[p];
    }
    if (st == TG_OK)
        st = nat_build_jobs(jobs, nj);
    for (int p = 0; p < AD_NROUTES && st == TG_OK; p++)
        if (count[p])
            nr->k[p] = nat_kernel_make(d[p] ? d[p] : t, jobs + first[p], count[p], work[p], fn,
                                       &st);
    nat_kernel_jobs_free(jobs, nj);
    for (int p = 0; p < AD_NROUTES; p++)
        tg_tape_free(d[p]);
    return st;
}

tg_status
tg_tape_compile_ex(tg_tape *t, unsigned parts, const tg_compile_options_ex *o)
{
    const char *fn = "tg_tape_compile";
    tg_status st = check(t, parts, fn);
    if (st != TG_OK)
        return st;
    nat_opts no;
    nat_opts_from(&no, o ? &o->base : NULL, o ? o->flags : 0);
    nat_routes *nr = mem_calloc(1, sizeof *nr);
    if (!nr)
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
    nr->base.release = release;
    st = compile_parts(t, parts, &no, nr, fn);
    if (st != TG_OK) {
        release(&nr->base);     /* t unchanged */
        return st;
    }
    /* parts compiled before (and still valid) stay */
    nat_routes *old = (nat_routes *)ad_routes_get(t);
    for (int p = 0; p < AD_NROUTES && old; p++)
        if (!nr->k[p] && old->k[p]) {
            nr->k[p] = old->k[p];
            old->k[p] = NULL;
        }
    nr->base.n = t->n;
    nr->base.nin = t->nin;
    nr->base.nout = t->nout;
    for (int p = 0; p < AD_NROUTES; p++) {
        tg_kernel *k = nr->k[p];
        if (!k)
            continue;
        ad_route *r = &nr->base.r[p];
        r->fn = k->fn;
        r->batch = k->batch;
        r->work = k->work;
        r->batch_work = k->batch_work;
        r->nin = k->nin;
    }
    if (ad_routes_set(t, &nr->base)) {
        for (int p = 0; p < AD_NROUTES && old; p++)     /* give the old kernels back */
            if (nr->k[p] && !(parts & part_bit[p])) {
                old->k[p] = nr->k[p];
                nr->k[p] = NULL;
            }
        release(&nr->base);
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
    }
    return TG_OK;
}

tg_status
tg_tape_compile(tg_tape *t, unsigned parts, const tg_compile_options *o)
{
    if (!o)
        return tg_tape_compile_ex(t, parts, NULL);
    tg_compile_options_ex ex = { *o, 0 };
    return tg_tape_compile_ex(t, parts, &ex);
}
