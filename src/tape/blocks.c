/* src/tape/blocks.c -- named input and output blocks.  Input scalars are
 * INPUT instructions numbered in declaration order; output scalars are
 * references to instructions.  Names are unique within inputs and within
 * outputs. */
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

static int
find_block(const tape_block *b, uint32_t nb, const char *name)
{
    for (uint32_t i = 0; i < nb; i++)
        if (strcmp(b[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Validates a block of n scalars named `name` before anything is read,
 * written or allocated: 0, or -1 with t failed. */
static int
check_block(tg_tape *t, bool input, const char *name, size_t n)
{
    const char *kind = input ? "input" : "output";
    uint64_t have = input ? t->nin : t->nout;
    if (!tape_name_ok(name))
        return tape_fail(t, TG_ERR_ARG, "%s block name must be 1..%d bytes of UTF-8", kind,
                         TAPE_NAME_MAX);
    if (n >= UINT32_MAX || have + n >= UINT32_MAX)
        return tape_fail(t, TG_ERR_LIMIT, "%s block \"%s\" of %zu scalars: a tape holds at "
                         "most %u %s scalars", kind, name, n, UINT32_MAX - 1, kind);
    if (find_block(input ? t->inb : t->outb, input ? t->ninb : t->noutb, name) >= 0)
        return tape_fail(t, TG_ERR_ARG, "duplicate %s block name \"%s\"", kind, name);
    return 0;
}

/* Appends the record of a block checked by check_block; returns it, or
 * NULL with t failed (out of memory). */
static tape_block *
add_block(tg_tape *t, bool input, const char *name, size_t n)
{
    const char *kind = input ? "input" : "output";
    tape_block **bp = input ? &t->inb : &t->outb;
    uint32_t *nb = input ? &t->ninb : &t->noutb, *cap = input ? &t->inbcap : &t->outbcap;
    char *copy = tg__malloc(strlen(name) + 1);
    if (!copy || tape_grow((void **)bp, cap, (uint64_t)*nb + 1, sizeof **bp)) {
        tg__free(copy);
        tape_fail(t, TG_ERR_NOMEM, "out of memory declaring %s block \"%s\"", kind, name);
        return NULL;
    }
    strcpy(copy, name);
    tape_block *b = &(*bp)[*nb];
    b->name = copy;
    b->offset = input ? t->nin : t->nout;
    b->size = (uint32_t)n;
    return b;
}

/* The x array on failure: placeholders {t, TG_NIL}, which every operation
 * accepts and ignores, so code that goes on recording after an error
 * never reads garbage -- unless n itself is impossible (no tape holds that
 * many scalars), where x cannot be such an array and is left alone. */
static void
poison(tg_tape *t, size_t n, tg_var *x)
{
    if (!x || n >= UINT32_MAX)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = (tg_var){ t, TG_NIL };
}

void
tg_input_vec(tg_tape *t, const char *name, size_t n, tg_var *x)
{
    if (!t || t->status != TG_OK) {
        poison(t, n, x);
        return;
    }
    if (!x && n > 0) {
        tape_fail(t, TG_ERR_ARG, "tg_input_vec: NULL array for %zu scalars", n);
        return;
    }
    if (check_block(t, true, name, n)) {
        poison(t, n, x);
        return;
    }
    uint32_t n0 = t->n, nin0 = t->nin;
    if (!add_block(t, true, name, n))
        goto fail;
    if (tape_reserve(t, (uint64_t)t->n + n)
        || tape_grow((void **)&t->in_ref, &t->nincap, (uint64_t)t->nin + n, sizeof *t->in_ref))
        goto undo;
    for (size_t i = 0; i < n; i++) {
        x[i].tape = t;
        x[i].id = tape_input(t);
        if (x[i].id == TG_NIL)
            goto undo;
    }
    t->ninb++;
    return;
undo:
    /* all-or-nothing: forget the half-declared block */
    if (t->status == TG_OK)
        tape_fail(t, TG_ERR_NOMEM, "out of memory declaring input block \"%s\"", name);
    tg__free(t->inb[t->ninb].name);
    t->n = n0;
    t->nin = nin0;
fail:
    poison(t, n, x);
}

tg_var
tg_input(tg_tape *t, const char *name)
{
    tg_var v = { t, TG_NIL };
    tg_input_vec(t, name, 1, &v);
    return v;
}

void
tg_output_vec(tg_tape *t, const char *name, size_t n, const tg_var *y)
{
    if (!t || t->status != TG_OK)
        return;
    if (!y && n > 0) {
        tape_fail(t, TG_ERR_ARG, "tg_output_vec: NULL array for %zu scalars", n);
        return;
    }
    /* name and size first: y is read only for a block that can exist */
    if (check_block(t, false, name, n))
        return;
    bool zero = false;
    for (size_t i = 0; i < n; i++) {
        if (!tape_var_ok(t, y[i])) {
            tape_fail(t, TG_ERR_ARG, "element %zu of output \"%s\" is not a value of tape \"%s\"",
                      i, name, t->name);
            return;
        }
        zero |= y[i].id == TG_ZERO;
    }
    /* the tapeless zero becomes a constant; all else is checked: no change
     * to t below can fail halfway except by running out of memory */
    uint32_t k0 = zero ? tape_const(t, 0.0) : TG_NIL;
    if (t->status != TG_OK)
        return;
    if (tape_grow((void **)&t->out_ref, &t->noutcap, (uint64_t)t->nout + n, sizeof *t->out_ref)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory declaring output \"%s\"", name);
        return;
    }
    if (!add_block(t, false, name, n))
        return;
    for (size_t i = 0; i < n; i++)
        t->out_ref[t->nout++] = y[i].id == TG_ZERO ? k0 : y[i].id;
    t->noutb++;
}

void
tg_output(tg_tape *t, const char *name, tg_var y)
{
    tg_output_vec(t, name, 1, &y);
}

/* --------------------------------------------------------------- queries */

uint32_t
tape_block_of(const tape_block *b, uint32_t nb, uint32_t k, uint32_t *elem)
{
    uint32_t lo = 0, hi = nb;      /* blocks are sorted by offset */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b[mid].offset <= k)
            lo = mid;
        else
            hi = mid;
    }
    *elem = k - b[lo].offset;
    return lo;
}

static const tape_block *
block_at(const tg_tape *t, bool input, size_t i)
{
    if (!t)
        return NULL;
    if (input)
        return i < t->ninb ? &t->inb[i] : NULL;
    return i < t->noutb ? &t->outb[i] : NULL;
}

size_t tg_num_input_blocks(const tg_tape *t)  { return t ? t->ninb : 0; }
size_t tg_num_output_blocks(const tg_tape *t) { return t ? t->noutb : 0; }

const char *
tg_input_block_name(const tg_tape *t, size_t i)
{
    const tape_block *b = block_at(t, true, i);
    return b ? b->name : NULL;
}

size_t
tg_input_block_size(const tg_tape *t, size_t i)
{
    const tape_block *b = block_at(t, true, i);
    return b ? b->size : 0;
}

size_t
tg_input_block_offset(const tg_tape *t, size_t i)
{
    const tape_block *b = block_at(t, true, i);
    return b ? b->offset : 0;
}

const char *
tg_output_block_name(const tg_tape *t, size_t i)
{
    const tape_block *b = block_at(t, false, i);
    return b ? b->name : NULL;
}

size_t
tg_output_block_size(const tg_tape *t, size_t i)
{
    const tape_block *b = block_at(t, false, i);
    return b ? b->size : 0;
}

size_t
tg_output_block_offset(const tg_tape *t, size_t i)
{
    const tape_block *b = block_at(t, false, i);
    return b ? b->offset : 0;
}

int
tg_input_block_index(const tg_tape *t, const char *name)
{
    return t && name ? find_block(t->inb, t->ninb, name) : -1;
}
