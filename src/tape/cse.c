/* src/tape/cse.c -- hash-consing: the instructions of a tape keyed on
 * (op, a, b, c), or on the bit pattern of a constant (so 0.0 and -0.0 stay
 * apart and a NaN matches itself).  Equality compares the columns, never
 * just the hash.  A slot holds the upper 32 bits of the key's hash (the
 * tag) and the instruction id, so probes compare tags without touching the
 * columns.
 *
 * Why two tables.  With one table indexed by a hash of the whole key, every
 * probe of a large tape is a cache miss (the table outgrows the caches at
 * about 10^5 instructions, and recording became 7x slower than ADOL-C's
 * taping at W1 n = 10^5).  But the operands of a new instruction are almost
 * always recent values, so the LOCAL table places a key near twice its
 * anchor, the largest of its operand ids (2 * anchor + 0..WIN-1 by hash):
 * consecutive instructions probe neighbouring cache lines, and growing it
 * re-inserts the instructions in id order, again a sweep.  A value that is
 * the anchor of many instructions (a constant used by every term) would
 * make a long cluster there, so a probe looks at WIN slots at most: a key
 * whose window is full goes to the GLOBAL table, an ordinary hashed table
 * kept at most half full (constants always go there: they have no
 * operands).  Invariant: a key is in the global table only if its window
 * was full when it was inserted; nothing is ever removed, so it still is,
 * and a lookup that finds an empty slot in the window may stop.
 *
 * Results do not depend on the layout: among equal keys (a tape recorded
 * without CSE and rebuilt) the first inserted, i.e. the lowest id, is met
 * first by every probe sequence, as before.  The CSE deferred to
 * tg_tape_optimize (TG_NO_CSE) is the other way to record cheaply; it
 * gives the same tape once optimised (tests/test_recspeed.c). */
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

#define SLOT_EMPTY UINT64_MAX
#define TAG_MASK   0xffffffff00000000ULL
#define WIN        16u          /* local probe window (two cache lines) */

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

/* Operands hashed by independent multiplies (they overlap in the
 * pipeline), then one multiply to spread them into the upper half. */
static uint64_t
key_hash(uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k)
{
    if (op == TG_OP_CONST)
        return mix(tape_bits(k) ^ 0x9e3779b97f4a7c15ULL);
    uint64_t h = (a + 1) * 0x9e3779b97f4a7c15ULL ^ (b + 1) * 0xc2b2ae3d27d4eb4fULL
               ^ (((uint64_t)op << 32) | c) * 0x165667b19e3779f9ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
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

/* The first slot of a key's window (unused operand columns hold 0). */
static uint32_t
win_start(uint32_t a, uint32_t b, uint32_t c, uint64_t hash)
{
    uint32_t m = a > b ? a : b;
    m = m > c ? m : c;
    return 2u * m + (uint32_t)(hash & (WIN - 1));
}

/* A probe sequence: first the window (op != CONST), then, if the window is
 * full, the global table.  Returns the id found, or TG_NIL with *slot the
 * empty slot where the key belongs. */
static uint32_t
probe(const tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k,
      uint64_t hash, uint64_t **slot)
{
    uint64_t tag = hash & TAG_MASK;
    if (op != TG_OP_CONST) {
        uint32_t mask = t->hcap - 1, h = win_start(a, b, c, hash);
        for (uint32_t j = 0; j < WIN; j++) {
            uint64_t *s = &t->ht[(h + j) & mask];
            if (*s == SLOT_EMPTY) {
                *slot = s;
                return TG_NIL;
            }
            if ((*s & TAG_MASK) == tag && inst_eq(t, (uint32_t)*s, op, a, b, c, k))
                return (uint32_t)*s;
        }
    }
    uint32_t mask = t->hgcap - 1;
    for (uint32_t h = (uint32_t)(hash >> 32) & mask;; h = (h + 1) & mask) {
        uint64_t *s = &t->hg[h];
        if (*s == SLOT_EMPTY) {
            *slot = s;
            return TG_NIL;
        }
        if ((*s & TAG_MASK) == tag && inst_eq(t, (uint32_t)*s, op, a, b, c, k))
            return (uint32_t)*s;
    }
}

uint32_t
tape_cse_find(const tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k)
{
    if (t->hcap == 0 || op == TG_OP_INPUT)
        return TG_NIL;
    uint64_t *slot;
    return probe(t, op, a, b, c, k, key_hash(op, a, b, c, k), &slot);
}

static uint64_t *
new_table(uint64_t cap)
{
    if (cap > ((uint64_t)1 << 32) || cap > SIZE_MAX / sizeof(uint64_t))
        return NULL;
    uint64_t *ht = mem_malloc((size_t)cap * sizeof *ht);
    if (ht)
        memset(ht, 0xff, (size_t)cap * sizeof *ht);
    return ht;
}

/* Room for one more entry in the global table (rehashing its entries into
 * a table twice as large keeps the invariant: the windows are unchanged). */
static int
global_room(tg_tape *t)
{
    if ((uint64_t)(t->hgcount + 1) * 2 <= t->hgcap)
        return 0;
    uint64_t cap = t->hgcap ? (uint64_t)t->hgcap * 2 : 256;
    uint64_t *hg = cap > ((uint64_t)1 << 31) ? NULL : new_table(cap);
    if (!hg)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory growing the CSE table of \"%s\"", t->name);
    uint32_t mask = (uint32_t)(cap - 1);
    for (uint32_t h = 0; h < t->hgcap; h++) {
        if (t->hg[h] == SLOT_EMPTY)
            continue;
        uint32_t p = (uint32_t)(t->hg[h] >> 32) & mask;
        while (hg[p] != SLOT_EMPTY)
            p = (p + 1) & mask;
        hg[p] = t->hg[h];
    }
    mem_free(t->hg);
    t->hg = hg;
    t->hgcap = (uint32_t)cap;
    return 0;
}

/* Inserts instruction i at the end of its probe sequence: the first empty
 * slot of its window, else of the global table (room was made).  Equal
 * keys already present (a tape recorded without CSE) stay before it. */
static void
insert(tg_tape *t, uint32_t i)
{
    uint8_t op = t->op[i];
    uint32_t a = t->a[i], b = t->b[i], c = t->c[i];
    uint64_t hash = key_hash(op, a, b, c, op == TG_OP_CONST ? t->k[a] : 0.0);
    uint64_t slot = (hash & TAG_MASK) | i;
    if (op != TG_OP_CONST) {
        uint32_t mask = t->hcap - 1, h = win_start(a, b, c, hash);
        for (uint32_t j = 0; j < WIN; j++)
            if (t->ht[(h + j) & mask] == SLOT_EMPTY) {
                t->ht[(h + j) & mask] = slot;
                return;
            }
    }
    uint32_t mask = t->hgcap - 1, h = (uint32_t)(hash >> 32) & mask;
    while (t->hg[h] != SLOT_EMPTY)
        h = (h + 1) & mask;
    t->hg[h] = slot;
    t->hgcount++;
}

static void
drop_tables(tg_tape *t)
{
    mem_free(t->ht);
    mem_free(t->hg);
    t->ht = t->hg = NULL;
    t->hcap = t->hgcap = t->hgcount = 0;
}

/* Sizes the local table for ids below `n` (2 slots per id, rounded up to
 * a power of two) and inserts instructions 0..n-1 in id order: a sweep over
 * the columns whose writes follow the ids.  On failure the tables are
 * dropped (the tape is in error then, and finds nothing). */
static int
rebuild(tg_tape *t, uint32_t n, uint32_t upto)
{
    uint64_t cap = 256;
    while (cap < 2 * (uint64_t)n + WIN)
        cap *= 2;
    drop_tables(t);
    t->ht = new_table(cap);
    if (!t->ht)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory growing the CSE table of \"%s\"", t->name);
    t->hcap = (uint32_t)cap;
    for (uint32_t i = 0; i < upto; i++) {
        if (t->op[i] == TG_OP_INPUT)
            continue;
        if (global_room(t)) {
            drop_tables(t);
            return -1;
        }
        insert(t, i);
    }
    return global_room(t);
}

/* Makes room for one more instruction (id t->n): the local table covers
 * twice the ids plus a window, the global one is at most half full. */
int
tape_cse_reserve(tg_tape *t)
{
    if (t->flags & TG_NO_CSE)
        return 0;
    if (2 * (uint64_t)(t->n + 1) + WIN > t->hcap)
        return rebuild(t, t->n < 64 ? 64 : 2 * t->n, t->n);
    return global_room(t);
}

/* Registers instruction i (room was reserved by tape_cse_reserve). */
int
tape_cse_insert(tg_tape *t, uint32_t i)
{
    if ((t->flags & TG_NO_CSE) || t->op[i] == TG_OP_INPUT)
        return 0;
    insert(t, i);
    return 0;
}

/* Drops and rebuilds the tables over all instructions (after a pass that
 * recorded without CSE). */
int
tape_cse_rebuild(tg_tape *t)
{
    return rebuild(t, t->n, t->n);
}
