/* src/codegen/builder.c -- the Rust builder: kernels collected one tape at a
 * time (tg_rust_builder_new/add/error/free), and the single-kernel API
 * (tg_rust_source, tg_rust_crate) as a builder of one. */
#include <stdarg.h>
#include <stdio.h>

#include "codegen/cg.h"
#include "tape/alloc.h"

/* The builder's sticky error funnel; the first error wins. */
tg_status
cg_fail(tg_rust_builder *b, tg_status s, const char *fmt, ...)
{
    if (b->status == TG_OK) {
        b->status = s;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err, sizeof b->err, fmt, ap);
        va_end(ap);
    }
    return s;
}

tg_rust_builder *
tg_rust_builder_new(const tg_rust_options *o)
{
    tg_rust_builder *b = mem_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    tg_rust_options z = { 0 };
    if (!o)
        o = &z;
    b->o.f32 = o->f32 != 0;
    b->o.no_std = o->no_std != 0;
    if (o->crate_name) {
        b->crate_explicit = true;
        snprintf(b->crate, sizeof b->crate, "%s", o->crate_name);
        if (!cg_valid_ident(o->crate_name))
            cg_fail(b, TG_ERR_NAME, "crate name \"%s\" is not a valid Rust identifier", o->crate_name);
    }
    return b;
}

void
tg_rust_builder_free(tg_rust_builder *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->nk; i++)
        cg_kernel_free(&b->k[i]);
    for (uint32_t i = 0; i < b->nowned; i++)
        tg_tape_free(b->owned[i]);
    mem_free(b->k);
    mem_free(b->owned);
    mem_free(b);
}

const char *
tg_rust_builder_error(const tg_rust_builder *b)
{
    return b ? b->err : "NULL builder";
}

/* Adds kernel `fname` (already final) for t. */
static tg_status
add_kernel(tg_rust_builder *b, const tg_tape *t, const char *fname)
{
    if (b->status != TG_OK)
        return b->status;
    if (!t)
        return cg_fail(b, TG_ERR_ARG, "%s", "NULL tape");
    if (t->status != TG_OK)
        return cg_fail(b, t->status, "tape \"%s\" is in the error state", t->name);
    for (uint32_t c = 0; c < t->ncalls; c++) {     /* methods of the UserFunctions trait */
        const char *un = tape_funcs_at(t->funcs, t->calls[c])->name;
        if (!cg_valid_ident(un))
            return cg_fail(b, TG_ERR_NAME, "user function \"%s\" is not a valid Rust identifier "
                           "(a keyword?)", un);
    }
    if (!cg_valid_ident(fname))
        return cg_fail(b, TG_ERR_NAME, "function name \"%s\" is not a valid Rust identifier", fname);
    for (uint32_t i = 0; i < b->nk; i++)
        if (strcmp(b->k[i].fname, fname) == 0)
            return cg_fail(b, TG_ERR_NAME, "two kernels are named `%s`", fname);
    if (tape_grow((void **)&b->k, &b->cap, (uint64_t)b->nk + 1, sizeof *b->k))
        return cg_fail(b, TG_ERR_NOMEM, "%s", "out of memory");
    char err[256];
    tg_status s = cg_kernel_names(&b->k[b->nk], t, fname, err, sizeof err);
    if (s != TG_OK) {
        cg_kernel_free(&b->k[b->nk]);
        return cg_fail(b, s, "%s", err);
    }
    b->nk++;
    return TG_OK;
}

tg_status
tg_rust_builder_add(tg_rust_builder *b, const tg_tape *t, const char *function_name)
{
    if (!b)
        return TG_ERR_ARG;
    char fn[CG_IDENT_MAX], full[2 * CG_IDENT_MAX + 2];
    if (function_name) {
        if (!cg_valid_ident(function_name))
            return cg_fail(b, TG_ERR_NAME, "function name \"%s\" is not a valid Rust identifier",
                        function_name);
        snprintf(fn, sizeof fn, "%s", function_name);
    } else {
        cg_sanitize(t ? t->name : "f", fn, sizeof fn);
    }
    if (b->nk == 0 && !b->crate_explicit && t) {
        cg_sanitize(t->name, b->crate, sizeof b->crate);
        if (!cg_valid_ident(b->crate))
            return cg_fail(b, TG_ERR_NAME, "tape name \"%s\" becomes the Rust keyword `%s`; give a crate_name",
                        t->name, b->crate);
    }
    snprintf(full, sizeof full, "%s_%s", b->crate, fn);     /* gradgen's <crate>_<function> */
    return add_kernel(b, t, full);
}

/* ------------------------------------------------- single-kernel API */

static tg_rust_builder *
single(const tg_tape *t, const tg_rust_options *o)
{
    tg_rust_builder *b = tg_rust_builder_new(o);
    if (!b)
        return NULL;
    char fn[CG_IDENT_MAX];
    if (o && o->function_name) {
        if (!cg_valid_ident(o->function_name))
            cg_fail(b, TG_ERR_NAME, "function name \"%s\" is not a valid Rust identifier", o->function_name);
        snprintf(fn, sizeof fn, "%s", o->function_name);
    } else {
        cg_sanitize(t ? t->name : "f", fn, sizeof fn);
    }
    if (!b->crate_explicit && t)
        cg_sanitize(t->name, b->crate, sizeof b->crate);
    if (!b->crate_explicit && cg_is_keyword(b->crate))
        cg_fail(b, TG_ERR_NAME, "tape name \"%s\" becomes a Rust keyword", t ? t->name : "");
    add_kernel(b, t, fn);
    return b;
}

tg_status
tg_rust_source(const tg_tape *t, const tg_rust_options *o, char **src, size_t *work_len)
{
    if (!t || !src)
        return tape_fail_call(TG_ERR_ARG, "tg_rust_source: NULL argument");
    tg_rust_builder *b = single(t, o);
    if (!b)
        return tape_fail_call(TG_ERR_NOMEM, "tg_rust_source: out of memory");
    char *s = NULL;
    tg_status st = b->status == TG_OK ? cg_lib_rs(b, &s) : b->status;
    if (st == TG_OK) {
        *src = s;
        if (work_len)
            *work_len = b->k[0].work_len;
    } else {
        tape_fail_call(st, "tg_rust_source: %s", b->err);
    }
    tg_rust_builder_free(b);
    return st;
}

tg_status
tg_rust_crate(const tg_tape *t, const tg_rust_options *o, const char *dir)
{
    if (!t || !dir)
        return tape_fail_call(TG_ERR_ARG, "tg_rust_crate: NULL argument");
    tg_rust_builder *b = single(t, o);
    if (!b)
        return tape_fail_call(TG_ERR_NOMEM, "tg_rust_crate: out of memory");
    tg_status st = tg_rust_builder_write(b, dir);
    tg_rust_builder_free(b);
    return st;
}
