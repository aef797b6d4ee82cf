/* src/tape/call.c -- recording a call of a user function (tg_call_func):
 * one CALL instruction whose operand list is the n inputs, followed by its
 * k XOUT outputs (the extended-instruction IR of src/tape/internal.h).  The
 * tape keeps a table of the functions it calls (t->calls: indices into its
 * one tg_funcs object t->funcs); the CALL's record points into it. */
#include <stdio.h>
#include <string.h>

#include "tape/alloc.h"
#include "tape/funcs.h"
#include "internal.h"

uint32_t
tape_call_entry(tg_tape *t, const tg_funcs *fs, uint32_t fn)
{
    if (t->funcs && t->funcs != fs) {
        tape_fail(t, TG_ERR_ARG, "tape \"%s\" already calls functions of another tg_funcs "
                  "object (a tape uses one)", t->name);
        return TG_NIL;
    }
    for (uint32_t c = 0; c < t->ncalls; c++)
        if (t->calls[c] == fn)
            return c;
    if (tape_grow((void **)&t->calls, &t->callcap, (uint64_t)t->ncalls + 1, sizeof *t->calls)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory recording a call");
        return TG_NIL;
    }
    t->funcs = fs;
    t->calls[t->ncalls] = fn;
    return t->ncalls++;
}

uint32_t
tape_rec_call(tg_tape *t, const tg_funcs *fs, uint32_t fn, const uint32_t *x)
{
    const tape_func *f = tape_funcs_at(fs, fn);
    uint32_t c = tape_call_entry(t, fs, fn);
    if (c == TG_NIL)
        return TG_NIL;
    tape_xrec r = { 0 };
    r.kind = TG_OP_CALL;
    r.body = c;
    r.count = 1;
    r.nx = f->n;
    r.ny = f->k;
    r.nops = f->n;
    r.nout = f->k;
    return tape_append_x(t, TG_OP_CALL, &r, x);
}

/* x's refs on t into ref (the tapeless zero becomes the constant 0); 0, or
 * -1 with t failed. */
static int
take_inputs(tg_tape *t, const char *name, const tg_var *x, uint32_t n, uint32_t *ref)
{
    for (uint32_t j = 0; j < n; j++) {
        if (!tape_var_ok(t, x[j]))
            return tape_fail(t, TG_ERR_ARG, "tg_call_func: input %u of '%s' is not a value "
                             "of tape \"%s\"", j, name, t->name);
        ref[j] = tape_var_ref(t, x[j]);
        if (ref[j] == TG_NIL)
            return -1;
    }
    return 0;
}

void
tg_call_func(tg_tape *t, const tg_funcs *fs, const char *name, const tg_var *x, tg_var *y)
{
    if (!t)
        return;
    uint32_t fn = tape_funcs_find(fs, name);
    const tape_func *f = fn == TAPE_FUNC_NONE ? NULL : tape_funcs_at(fs, fn);
    if (t->status == TG_OK) {
        char err[200];
        if (!fs || !name)
            tape_fail(t, TG_ERR_ARG, "tg_call_func: NULL %s", fs ? "name" : "tg_funcs object");
        else if (!f)
            tape_fail(t, TG_ERR_ARG, "tg_call_func: no user function '%s' in this tg_funcs "
                      "object", name);
        else if (!x && f->n)
            tape_fail(t, TG_ERR_ARG, "tg_call_func: '%s' takes %u inputs and x is NULL", name,
                      f->n);
        else if (!y && f->k)
            tape_fail(t, TG_ERR_ARG, "tg_call_func: '%s' has %u outputs and y is NULL", name,
                      f->k);
        else if (tape_funcs_seal(fs, err, sizeof err))
            tape_fail(t, TG_ERR_ARG, "tg_call_func: %s", err);
    }
    uint32_t id = TG_NIL;
    if (t->status == TG_OK) {
        uint32_t *ref = mem_malloc(((size_t)f->n + 1) * sizeof *ref);
        if (!ref)
            tape_fail(t, TG_ERR_NOMEM, "out of memory recording a call of '%s'", name);
        else if (!take_inputs(t, name, x, f->n, ref))
            id = tape_rec_call(t, fs, fn, ref);
        mem_free(ref);
    }
    for (uint32_t q = 0; f && y && q < f->k; q++) {
        y[q].tape = t;
        y[q].id = id == TG_NIL || t->status != TG_OK ? TG_NIL : id + 1 + q;
    }
}

tg_status
tg_funcs_seal(tg_funcs *fs)
{
    char err[200];
    if (!fs)
        return tape_fail_call(TG_ERR_ARG, "tg_funcs_seal: NULL object");
    if (tape_funcs_seal(fs, err, sizeof err))
        return tape_fail_call(TG_ERR_ARG, "tg_funcs_seal: %s", err);
    return TG_OK;
}

int
tape_copy_calls(tg_tape *dst, const tg_tape *src)
{
    if (src->ncalls == 0)
        return 0;
    if (tape_grow((void **)&dst->calls, &dst->callcap, src->ncalls, sizeof *dst->calls))
        return tape_fail(dst, TG_ERR_NOMEM, "out of memory copying the call table");
    memcpy(dst->calls, src->calls, src->ncalls * sizeof *dst->calls);
    dst->ncalls = src->ncalls;
    dst->funcs = src->funcs;
    return 0;
}
