/* src/codegen/bundle.c -- a function's derivative bundle: its kernel plus
 * gradient (or Jacobian), Hessian and HVP kernels for each input block. */
#include <stdio.h>

#include "codegen/cg.h"
#include "tape/alloc.h"

static tg_status
own(tg_rust_builder *b, tg_tape *t, const char *fn)
{
    if (!t)
        return cg_fail(b, TG_ERR_NOMEM, "%s", "out of memory");
    uint32_t cap = b->nowned;
    if (tape_grow((void **)&b->owned, &cap, (uint64_t)b->nowned + 1, sizeof *b->owned)) {
        tg_tape_free(t);
        return cg_fail(b, TG_ERR_NOMEM, "%s", "out of memory");
    }
    b->owned[b->nowned++] = t;
    if (t->status != TG_OK)
        return cg_fail(b, t->status, "%s", t->err);
    if (tg_tape_optimize(t, TG_OPT_BASIC) != TG_OK)
        return cg_fail(b, TG_ERR_NOMEM, "%s", "out of memory optimising a derivative tape");
    return tg_rust_builder_add(b, t, fn);
}

tg_status
tg_rust_bundle(tg_rust_builder *b, const tg_tape *f)
{
    if (!b || !f)
        return TG_ERR_ARG;
    char base[CG_IDENT_MAX], fn[3 * CG_IDENT_MAX];
    cg_sanitize(f->name, base, sizeof base);
    snprintf(fn, sizeof fn, "%s_f", base);
    tg_rust_builder_add(b, f, fn);
    for (uint32_t i = 0; i < f->ninb && b->status == TG_OK; i++) {
        char blk[CG_IDENT_MAX];
        cg_sanitize(f->inb[i].name, blk, sizeof blk);
        bool scalar = f->nout == 1;
        snprintf(fn, sizeof fn, "%s_%s_%s", base, scalar ? "grad" : "jac", blk);
        own(b, scalar ? tg_gradient_tape(f, (int)i) : tg_jacobian_tape(f, (int)i), fn);
        if (scalar) {
            snprintf(fn, sizeof fn, "%s_hess_%s", base, blk);
            own(b, tg_hessian_tape(f, (int)i), fn);
            snprintf(fn, sizeof fn, "%s_hvp_%s", base, blk);
            own(b, tg_hvp_tape(f, (int)i), fn);
        }
    }
    return b->status;
}
