/* src/tape/tape.c -- tape lifetime, the sticky error funnel, and column
 * growth.  Growth is all-or-nothing: a failed allocation or a limit leaves
 * every instruction recorded so far intact and puts the tape in error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

/* The one place recording errors pass through; the first error wins. */
int
tape_fail(tg_tape *t, tg_status s, const char *fmt, ...)
{
    if (t->status != TG_OK)
        return -1;
    t->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Grows a plain array to hold `need` elements (doubling). */
int
tape_grow(void **p, uint32_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint64_t nc = *cap ? *cap : 8;
    while (nc < need)
        nc *= 2;
    if (nc > UINT32_MAX)
        nc = UINT32_MAX;
    if (nc < need || nc > SIZE_MAX / elem)
        return -1;
    void *q = mem_realloc(*p, (size_t)nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = (uint32_t)nc;
    return 0;
}

/* Column layout in one block: a, b, c (uint32) then op (uint8). */
enum { COL_BYTES = 3 * sizeof(uint32_t) + sizeof(uint8_t) };

int
tape_reserve(tg_tape *t, uint64_t need)
{
    if (need > t->limit)
        return tape_fail(t, TG_ERR_LIMIT,
                         "tape \"%s\" exceeds its limit of %llu instructions",
                         t->name, (unsigned long long)t->limit);
    if (need <= t->cap)
        return 0;
    uint64_t cap = t->cap ? (uint64_t)t->cap * 2 : 64;
    if (cap < need)
        cap = need;
    if (cap > t->limit)
        cap = t->limit;
    if (cap > SIZE_MAX / COL_BYTES)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory growing tape \"%s\"", t->name);
    char *blk = mem_malloc((size_t)cap * COL_BYTES);
    if (!blk)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory growing tape \"%s\" to %llu instructions",
                         t->name, (unsigned long long)cap);
    if (t->val) {       /* values grow with the columns, all or nothing */
        double *nv = mem_realloc(t->val, (size_t)cap * sizeof *nv);
        if (!nv) {
            mem_free(blk);
            return tape_fail(t, TG_ERR_NOMEM, "out of memory growing the values of tape \"%s\"",
                             t->name);
        }
        t->val = nv;
    }
    uint32_t *a = (uint32_t *)blk, *b = a + cap, *c = b + cap;
    uint8_t *op = (uint8_t *)(c + cap);
    if (t->n) {
        memcpy(a, t->a, t->n * sizeof *a);
        memcpy(b, t->b, t->n * sizeof *b);
        memcpy(c, t->c, t->n * sizeof *c);
        memcpy(op, t->op, t->n);
    }
    mem_free(t->a);
    t->a = a; t->b = b; t->c = c; t->op = op;
    t->cap = (uint32_t)cap;
    return 0;
}

/* Appends an instruction; the caller has checked operands and CSE.
 * Reserves columns and the hash table first so a failure changes nothing. */
uint32_t
tape_append(tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c)
{
    uint64_t need = (uint64_t)t->n + 1;
    if ((need > t->cap || need > t->limit) && tape_reserve(t, need))
        return TG_NIL;
    if (!tape_cse_has_room(t) && tape_cse_reserve(t))
        return TG_NIL;
    if (TAPE_UNLIKELY(op == TG_OP_GUARD) && t->nguard == t->guardcap
        && tape_grow((void **)&t->guard, &t->guardcap, (uint64_t)t->nguard + 1, sizeof *t->guard)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory recording a branch guard on \"%s\"", t->name);
        return TG_NIL;
    }
    /* Column pointers loaded before the stores: a store through the
     * uint8_t opcode column may alias anything and would force reloads. */
    uint32_t i = t->n;
    uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    uint8_t *co = t->op;
    ca[i] = a;
    cb[i] = b;
    cc[i] = c;
    co[i] = op;
    t->n = i + 1;
    if (TAPE_UNLIKELY(op == TG_OP_GUARD))   /* the guard index (tg_branch) */
        t->guard[t->nguard++] = i;
    if (TAPE_UNLIKELY(t->val != NULL))      /* no value unless the recorder sets one */
        t->val[i] = tape_noval();
    tape_cse_insert(t, i);
    return i;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points
 * above U+10FFFF; control characters are refused too. */
static bool
valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > len)
            return false;
        uint32_t cp = n == 1 ? c : c & (0x7Fu >> n);
        for (size_t j = 1; j < n; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3Fu);
        }
        static const uint32_t min_cp[5] = { 0, 0x20, 0x80, 0x800, 0x10000 };
        if (cp < min_cp[n] || cp == 0x7F || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/* 1..TAPE_NAME_MAX bytes of UTF-8 without control characters. */
bool
tape_name_ok(const char *s)
{
    if (!s)
        return false;
    size_t len = strlen(s);
    return len >= 1 && len <= TAPE_NAME_MAX && valid_utf8(s, len);
}

tg_tape *
tg_tape_new_ex(const char *name, unsigned flags)
{
    tg_tape *t = mem_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    const char *nm = name ? name : "f";
    t->name = mem_malloc(strlen(nm) + 1);
    if (!t->name) {
        mem_free(t);
        return NULL;
    }
    strcpy(t->name, nm);
    t->flags = flags & (TG_NO_FOLD | TG_NO_CSE);
    t->limit = TAPE_MAX_INSTS;
    atomic_init(&t->attached, NULL);
    if (!tape_name_ok(nm))
        tape_fail(t, TG_ERR_ARG, "tape name must be 1..%d bytes of UTF-8", TAPE_NAME_MAX);
    return t;
}

tg_tape *
tg_tape_new(const char *name)
{
    return tg_tape_new_ex(name, 0);
}

void
tg_tape_free(tg_tape *t)
{
    if (!t)
        return;
    tape_detach_all(t);
    tape_free_x(t);
    for (uint32_t i = 0; i < t->ninb; i++)
        mem_free(t->inb[i].name);
    for (uint32_t i = 0; i < t->noutb; i++)
        mem_free(t->outb[i].name);
    mem_free(t->inb);
    mem_free(t->outb);
    mem_free(t->in_ref);
    mem_free(t->out_ref);
    mem_free(t->a);
    mem_free(t->k);
    mem_free(t->ht);
    mem_free(t->hg);
    mem_free(t->val);
    mem_free(t->guard);
    mem_free(t->name);
    mem_free(t);
}

tg_status
tg_tape_status(const tg_tape *t)
{
    return t ? t->status : TG_ERR_ARG;
}

const char *
tg_tape_error(const tg_tape *t)
{
    return t ? t->err : "NULL tape";
}

const char *
tg_tape_name(const tg_tape *t)
{
    return t ? t->name : "";
}

tg_status
tg_tape_set_limit(tg_tape *t, uint64_t max_instructions)
{
    if (!t || max_instructions < t->n || max_instructions > TAPE_MAX_INSTS)
        return TG_ERR_ARG;
    t->limit = max_instructions;
    return TG_OK;
}

size_t tg_num_inputs(const tg_tape *t)  { return t ? t->nin : 0; }
size_t tg_num_outputs(const tg_tape *t) { return t ? t->nout : 0; }
size_t tg_tape_size(const tg_tape *t)   { return t ? t->n : 0; }

size_t
tg_tape_bytes(const tg_tape *t)
{
    if (!t)
        return 0;
    size_t s = sizeof *t + (size_t)t->cap * COL_BYTES + (size_t)t->kcap * sizeof(double)
             + ((size_t)t->hcap + t->hgcap) * sizeof(uint64_t)
             + (size_t)(t->nincap + t->noutcap + t->guardcap) * sizeof(uint32_t)
             + (t->val ? (size_t)t->cap * sizeof(double) : 0)
             + (size_t)(t->inbcap + t->outbcap) * sizeof(tape_block) + strlen(t->name) + 1
             + tape_x_bytes(t);
    for (uint32_t i = 0; i < t->ninb; i++)
        s += strlen(t->inb[i].name) + 1;
    for (uint32_t i = 0; i < t->noutb; i++)
        s += strlen(t->outb[i].name) + 1;
    return s;
}
