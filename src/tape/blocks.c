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

/* Validates and appends a block record; returns it or NULL (tape failed). */
static tape_block *
add_block(tg_tape *t, bool input, const char *name, size_t n)
{
    const char *kind = input ? "input" : "output";
    tape_block **bp = input ? &t->inb : &t->outb;
    uint32_t *nb = input ? &t->ninb : &t->noutb, *cap = input ? &t->inbcap : &t->outbcap;
    uint64_t total = (uint64_t)(input ? t->nin : t->nout) + n;
    if (!tape_name_ok(name)) {
        tape_fail(t, TG_ERR_ARG, "%s block name must be 1..%d bytes of UTF-8", kind, TAPE_NAME_MAX);
        return NULL;
    }
    if (n == 0) {
        tape_fail(t, TG_ERR_ARG, "%s block \"%s\" has no elements", kind, name);
        return NULL;
    }
    if (find_block(*bp, *nb, name) >= 0) {
        tape_fail(t, TG_ERR_ARG, "duplicate %s block name \"%s\"", kind, name);
        return NULL;
    }
    if (total >= UINT32_MAX) {
        tape_fail(t, TG_ERR_LIMIT, "too many %s scalars", kind);
        return NULL;
    }
    char *copy = mem_malloc(strlen(name) + 1);
    if (!copy || tape_grow((void **)bp, cap, (uint64_t)*nb + 1, sizeof **bp)) {
        mem_free(copy);
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

/* The recorder's entry point for inputs: n INPUT instructions in a new
 * block, t->in_ref[nin0 ..] afterwards.  All or nothing. */
int
tape_input_block(tg_tape *t, const char *name, size_t n)
{
    if (t->status != TG_OK)
        return -1;
    uint32_t n0 = t->n, nin0 = t->nin;
    if (!add_block(t, true, name, n))
        return -1;
    if (tape_reserve(t, (uint64_t)t->n + n)
        || tape_grow((void **)&t->in_ref, &t->nincap, (uint64_t)t->nin + n, sizeof *t->in_ref))
        goto undo;
    for (size_t i = 0; i < n; i++)
        if (tape_input(t) == TG_NIL)
            goto undo;
    t->ninb++;
    return 0;
undo:
    /* forget the half-declared block */
    tape_fail(t, TG_ERR_NOMEM, "out of memory declaring input block \"%s\"", name);
    mem_free(t->inb[t->ninb].name);
    t->n = n0;
    t->nin = nin0;
    return -1;
}

void
tg_input_vec(tg_tape *t, const char *name, size_t n, tg_var *x)
{
    if (!t || t->status != TG_OK)
        goto poison;
    if (!x) {
        tape_fail(t, TG_ERR_ARG, "tg_input_vec: NULL array");
        return;
    }
    uint32_t nin0 = t->nin;
    if (tape_input_block(t, name, n))
        goto poison;
    for (size_t i = 0; i < n; i++)
        x[i] = (tg_var){ t, t->in_ref[nin0 + i] };
    return;
poison:
    if (x)
        for (size_t i = 0; i < n; i++)
            x[i] = (tg_var){ t, TG_NIL };
}

tg_var
tg_input(tg_tape *t, const char *name)
{
    tg_var v = { t, TG_NIL };
    tg_input_vec(t, name, 1, &v);
    return v;
}

/* The recorder's entry point for outputs: a new block of n scalars whose
 * instructions the caller writes into the returned slots (before recording
 * anything else), or NULL with the tape failed.  The caller has checked
 * that the refs it writes are instructions of t. */
uint32_t *
tape_output_block(tg_tape *t, const char *name, size_t n)
{
    if (t->status != TG_OK)
        return NULL;
    if (tape_grow((void **)&t->out_ref, &t->noutcap, (uint64_t)t->nout + n, sizeof *t->out_ref)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory declaring output \"%s\"", name ? name : "");
        return NULL;
    }
    if (!add_block(t, false, name, n))
        return NULL;
    uint32_t *slots = t->out_ref + t->nout;
    t->nout += (uint32_t)n;     /* add_block keeps the total below UINT32_MAX */
    t->noutb++;
    return slots;
}

void
tg_output_vec(tg_tape *t, const char *name, size_t n, const tg_var *y)
{
    if (!t || t->status != TG_OK)
        return;
    if (!y) {
        tape_fail(t, TG_ERR_ARG, "tg_output_vec: NULL array");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (y[i].tape != t || y[i].id >= t->n) {
            tape_fail(t, TG_ERR_ARG, "element %zu of output \"%s\" is not a value of tape \"%s\"",
                      i, name ? name : "(null)", t->name);
            return;
        }
    }
    uint32_t *slots = tape_output_block(t, name, n);
    for (size_t i = 0; slots && i < n; i++)
        slots[i] = y[i].id;
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
