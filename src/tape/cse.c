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
 * consecutive instructions probe neighbouring cache lines, and as no probe
 * wraps around, growing it moves nothing (grow_local).  A value that is
 * the anchor of many instructions (a constant used by every term) would
 * make a long cluster there, so a probe looks at WIN slots at most; a key
 * whose window is full tries a second window at its oldest operand (in
 * W1 every 1 - x[i] has the constant 1 as newest operand, but x[i] is
 * new to it), and a key whose windows are both full goes to the GLOBAL
 * table, an ordinary hashed table kept at most half full (constants always
 * go there: they have no operands).  Invariant: a key is in a later place
 * of its sequence (second window, global table) only if the earlier
 * windows were full when it was inserted; nothing is ever removed, so they
 * still are, and a lookup that finds an empty slot may stop.
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
#define WIN        TAPE_CSE_WIN /* local probe window (two cache lines) */

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

/* The windows of a key: w = 0 at twice its newest operand, w = 1 at twice
 * its oldest one (binary and ternary ops only: a unary op has one operand,
 * a constant none), with different hash bits for the offset.  Returns the
 * number of windows (unused operand columns hold 0). */
static int
windows(uint8_t op, uint32_t a, uint32_t b, uint32_t c, uint64_t hash, uint32_t start[2])
{
    int ar = tape_op_arity[op];
    if (ar == 0)
        return 0;
    uint32_t hi = a > b ? a : b, lo = a < b ? a : b;
    hi = hi > c ? hi : c;
    lo = ar == 3 && c < lo ? c : lo;
    start[0] = 2u * hi + (uint32_t)(hash & (WIN - 1));
    start[1] = 2u * lo + (uint32_t)((hash >> 8) & (WIN - 1));
    return ar == 1 || lo == hi ? 1 : 2;
}

/* A probe sequence: each window of the key in turn, the next one only if
 * this one is full, then the global table.  Returns the id found, or
 * TG_NIL with the empty slot where the key belongs in *where (1 local, 2
 * global) and *idx. */
static uint32_t
probe(const tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k,
      uint64_t hash, uint8_t *where, uint32_t *idx)
{
    uint64_t tag = hash & TAG_MASK;
    uint32_t start[2];
    int nw = windows(op, a, b, c, hash, start);
    for (int w = 0; w < nw; w++) {
        uint32_t mask = t->hcap - 1, h = start[w];
        for (uint32_t j = 0; j < WIN; j++) {
            uint64_t *s = &t->ht[(h + j) & mask];
            if (*s == SLOT_EMPTY) {
                *where = 1;
                *idx = (h + j) & mask;
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
            *where = 2;
            *idx = h;
            return TG_NIL;
        }
        if ((*s & TAG_MASK) == tag && inst_eq(t, (uint32_t)*s, op, a, b, c, k))
            return (uint32_t)*s;
    }
}

/* A find that misses remembers where the key would go, so that the
 * append that follows (record.c: find, then append the same key) inserts
 * without hashing and probing again.  The memo is checked against the
 * key and dropped whenever a table is rebuilt or grown. */
uint32_t
tape_cse_find(tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k)
{
    if (t->hcap == 0 || t->hgcap == 0 || op == TG_OP_INPUT)
        return TG_NIL;
    uint64_t hash = key_hash(op, a, b, c, k);
    uint8_t where = 0;
    uint32_t idx = 0;
    uint32_t r = probe(t, op, a, b, c, k, hash, &where, &idx);
    if (r == TG_NIL)
        t->hpend = (struct tape_cse_pending){ tape_bits(k), hash, a, b, c, idx, op, where };
    return r;
}

/* tape_cse_find and tape_append in one probe sequence, for the common case
 * where the columns and the tables have room (so nothing moves between the
 * probe and the write): the empty slot the probe ended on takes the new
 * instruction.  Otherwise the two steps, as before. */
uint32_t
tape_cse_append(tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c)
{
    uint64_t need = (uint64_t)t->n + 1;
    if (need > t->cap || need > t->limit || !tape_cse_has_room(t) || t->hgcap == 0) {
        uint32_t r = tape_cse_find(t, op, a, b, c, 0.0);
        return r != TG_NIL ? r : tape_append(t, op, a, b, c);
    }
    uint64_t hash = key_hash(op, a, b, c, 0.0);
    uint8_t where = 0;
    uint32_t idx = 0;
    uint32_t r = probe(t, op, a, b, c, 0.0, hash, &where, &idx);
    if (r != TG_NIL)
        return r;
    uint32_t i = t->n;
    uint32_t *ca = t->a, *cb = t->b, *cc = t->c;
    uint8_t *co = t->op;
    ca[i] = a;
    cb[i] = b;
    cc[i] = c;
    co[i] = op;
    t->n = i + 1;
    if (where == 1) {
        t->ht[idx] = (hash & TAG_MASK) | i;
    } else {
        t->hg[idx] = (hash & TAG_MASK) | i;
        t->hgcount++;
    }
    return i;
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
    t->hpend.where = 0;
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
    double k = op == TG_OP_CONST ? t->k[a] : 0.0;
    struct tape_cse_pending *p = &t->hpend;
    if (p->where && p->op == op && (op == TG_OP_CONST ? p->kbits == tape_bits(k)
                                    : p->a == a && p->b == b && p->c == c)) {
        uint64_t *s = p->where == 1 ? &t->ht[p->idx] : &t->hg[p->idx];
        bool global = p->where == 2;
        p->where = 0;
        if (*s == SLOT_EMPTY) {     /* still the first empty slot of the sequence */
            *s = (p->hash & TAG_MASK) | i;
            t->hgcount += global;
            return;
        }
    }
    uint64_t hash = key_hash(op, a, b, c, k);
    uint64_t slot = (hash & TAG_MASK) | i;
    uint32_t start[2];
    int nw = windows(op, a, b, c, hash, start);
    for (int w = 0; w < nw; w++) {
        uint32_t mask = t->hcap - 1, h = start[w];
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
    t->hpend.where = 0;
}

/* Grows the local table to cover ids below n.  A window starts at
 * 2 * anchor + (0..WIN-1) and spans WIN slots, so with hcap >= 2 n + 2 WIN
 * no probe wraps around: every entry keeps its slot in a larger table, and
 * growing is a realloc and clearing the new part (no rehash), while the
 * global table and its invariant are untouched. */
static int
grow_local(tg_tape *t, uint64_t n)
{
    uint64_t cap = t->hcap ? t->hcap : 256;
    while (cap < 2 * n + 2 * WIN)
        cap *= 2;
    if (cap > ((uint64_t)1 << 31) || cap > SIZE_MAX / sizeof(uint64_t))
        return tape_fail(t, TG_ERR_LIMIT, "CSE table of tape \"%s\" is full", t->name);
    uint64_t *ht = mem_realloc(t->ht, (size_t)cap * sizeof *ht);
    if (!ht)
        return tape_fail(t, TG_ERR_NOMEM, "out of memory growing the CSE table of \"%s\"", t->name);
    memset(ht + t->hcap, 0xff, (size_t)(cap - t->hcap) * sizeof *ht);
    t->ht = ht;
    t->hcap = (uint32_t)cap;
    t->hpend.where = 0;
    return 0;
}

/* Sizes the local table for ids below n and inserts instructions
 * 0..upto-1 in id order: a sweep over the columns whose writes follow the
 * ids.  On failure the tables are
 * dropped (the tape is in error then, and finds nothing). */
static int
rebuild(tg_tape *t, uint64_t n, uint32_t upto)
{
    drop_tables(t);
    if (grow_local(t, n))
        return -1;
    for (uint32_t i = 0; i < upto; i++) {
        if (t->op[i] == TG_OP_INPUT || (tape_op_flags[t->op[i]] & TG_OPF_EXTENDED))
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
 * twice the ids plus two windows (doubling: 16-32 bytes per instruction,
 * as the single table before), the global one is at most half full. */
int
tape_cse_reserve(tg_tape *t)
{
    if (t->flags & TG_NO_CSE)
        return 0;
    if (2 * (uint64_t)(t->n + 1) + 2 * WIN > t->hcap && grow_local(t, (uint64_t)t->n + 1))
        return -1;
    return global_room(t);
}

/* Registers instruction i (room was reserved by tape_cse_reserve). */
int
tape_cse_insert(tg_tape *t, uint32_t i)
{
    if ((t->flags & TG_NO_CSE) || t->op[i] == TG_OP_INPUT
        || (tape_op_flags[t->op[i]] & TG_OPF_EXTENDED))  /* never merged (XIR) */
        return 0;
    insert(t, i);
    return 0;
}

/* Drops and rebuilds the tables over all instructions (after a pass that
 * recorded without CSE). */
int
tape_cse_rebuild(tg_tape *t)
{
    return rebuild(t, (uint64_t)t->n + 1, t->n);
}
