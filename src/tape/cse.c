/* src/tape/cse.c -- hash-consing: an open-addressing table of instruction
 * ids keyed on (op, a, b, c), or on the bit pattern of a constant (so 0.0
 * and -0.0 stay apart and a NaN matches itself).  Equality compares the
 * columns, never just the hash.  Kept at most half full. */
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

static uint64_t
mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t
key_hash(uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k)
{
    if (op == TG_OP_CONST)
        return mix(tape_bits(k) ^ 0x9e3779b97f4a7c15ULL);
    return mix(((uint64_t)op << 56) ^ ((uint64_t)a << 24) ^ mix(((uint64_t)b << 32) | c));
}

static uint64_t
inst_hash(const tg_tape *t, uint32_t i)
{
    double k = t->op[i] == TG_OP_CONST ? t->k[t->a[i]] : 0.0;
    return key_hash(t->op[i], t->a[i], t->b[i], t->c[i], k);
}

static bool
inst_eq(const tg_tape *t, uint32_t i, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k)
{
    if (t->op[i] != op)
        return false;
    if (op == TG_OP_CONST)
        return tape_bits(t->k[t->a[i]]) == tape_bits(k);
    return t->a[i] == a && t->b[i] == b && t->c[i] == c;
}

/* A slot holds the instruction id in its low half and the upper 32 bits of
 * the key's hash in its high half, so probing and rehashing compare hashes
 * without touching the columns (a cache miss each on large tapes). */
#define SLOT_EMPTY UINT64_MAX

static uint64_t
slot_of(uint64_t hash, uint32_t i)
{
    return (hash & 0xffffffff00000000ULL) | i;
}

uint32_t
tape_cse_find(const tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k)
{
    if (t->hcap == 0 || op == TG_OP_INPUT)
        return TG_NIL;
    uint64_t hash = key_hash(op, a, b, c, k), tag = hash & 0xffffffff00000000ULL;
    uint32_t mask = t->hcap - 1;
    for (uint32_t h = (uint32_t)(hash >> 32) & mask;; h = (h + 1) & mask) {
        uint64_t e = t->ht[h];
        if (e == SLOT_EMPTY)
            return TG_NIL;
        uint32_t i = (uint32_t)e;
        if ((e & 0xffffffff00000000ULL) == tag && inst_eq(t, i, op, a, b, c, k))
            return i;
    }
}

static void
place(uint64_t *ht, uint32_t mask, uint64_t slot)
{
    uint32_t h = (uint32_t)(slot >> 32) & mask;
    while (ht[h] != SLOT_EMPTY)
        h = (h + 1) & mask;
    ht[h] = slot;
}

/* Makes room for one more entry (rehashing into a table twice as large). */
int
tape_cse_reserve(tg_tape *t)
{
    if (t->flags & TG_NO_CSE)
        return 0;
    if ((uint64_t)(t->hcount + 1) * 2 <= t->hcap)
        return 0;
    uint64_t cap = t->hcap ? (uint64_t)t->hcap * 2 : 256;
    if (cap > ((uint64_t)1 << 31) || cap > SIZE_MAX / sizeof(uint64_t))
        return tape_fail(t, TG_ERR_LIMIT, "CSE table of tape \"%s\" is full", t->name);
    uint64_t *ht = mem_malloc((size_t)cap * sizeof *ht);
    if (!ht)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory growing the CSE table of \"%s\"", t->name);
    memset(ht, 0xff, (size_t)cap * sizeof *ht);
    uint32_t mask = (uint32_t)(cap - 1);
    for (uint32_t h = 0; h < t->hcap; h++)
        if (t->ht[h] != SLOT_EMPTY)
            place(ht, mask, t->ht[h]);
    mem_free(t->ht);
    t->ht = ht;
    t->hcap = (uint32_t)cap;
    return 0;
}

/* Registers instruction i (room was reserved by tape_cse_reserve). */
int
tape_cse_insert(tg_tape *t, uint32_t i)
{
    if ((t->flags & TG_NO_CSE) || t->op[i] == TG_OP_INPUT)
        return 0;
    place(t->ht, t->hcap - 1, slot_of(inst_hash(t, i), i));
    t->hcount++;
    return 0;
}

/* Drops and rebuilds the table over all instructions (after a pass that
 * recorded without CSE). */
int
tape_cse_rebuild(tg_tape *t)
{
    mem_free(t->ht);
    t->ht = NULL;
    t->hcap = t->hcount = 0;
    for (uint32_t i = 0; i < t->n; i++)
        if (tape_cse_reserve(t) || tape_cse_insert(t, i))
            return -1;
    return 0;
}
