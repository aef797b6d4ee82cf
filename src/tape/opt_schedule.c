/* src/tape/opt_schedule.c -- optimisation pass: instruction scheduling.
 * Sweeps are bound by latency: an instruction usually consumes the one
 * recorded just before it, so each step waits for a store to be forwarded
 * to a load (and, in the reverse sweep, for a read-modify-write).  Within
 * windows of SCHED_WINDOW instructions we order by depth in the DAG (stable
 * by index), so consecutive instructions are mostly independent and the
 * CPU overlaps them.  Windows keep operands close by (cache locality).  A
 * permutation within windows: idempotent, deterministic, linear-ish. */
#include <stdlib.h>

#include "tape/alloc.h"
#include "tape/opt.h"

#define SCHED_WINDOW 256

typedef struct sched_key {
    uint32_t level, index;
} sched_key;

static int
sched_cmp(const void *x, const void *y)
{
    const sched_key *p = x, *q = y;
    if (p->level != q->level)
        return p->level < q->level ? -1 : 1;
    return p->index < q->index ? -1 : p->index > q->index;
}

/* The columns (one allocation, see tape.c) change owners. */
static void
swap_columns(tg_tape *t, tg_tape *u)
{
    uint32_t *a = t->a, *b = t->b, *c = t->c, cap = t->cap;
    uint8_t *op = t->op;
    t->a = u->a; t->b = u->b; t->c = u->c; t->op = u->op; t->cap = u->cap;
    u->a = a; u->b = b; u->c = c; u->op = op; u->cap = cap;
}

tg_status
tape_opt_schedule(tg_tape *t)
{
    uint32_t n = t->n;
    uint32_t *level = mem_malloc(((size_t)n + 1) * sizeof *level);
    uint32_t *newid = mem_malloc(((size_t)n + 1) * sizeof *newid);
    sched_key *key = mem_malloc(((size_t)n + 1) * sizeof *key);
    tg_tape *u = tg_tape_new_ex(t->name, TG_NO_FOLD | TG_NO_CSE);
    tg_status s = (level && newid && key && u) ? TG_OK : TG_ERR_NOMEM;
    for (uint32_t i = 0; i < n && s == TG_OK; i++) {
        uint32_t lv = 0;
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < tape_op_arity[t->op[i]]; j++)
            if (level[opnd[j]] + 1 > lv)
                lv = level[opnd[j]] + 1;
        level[i] = lv;
        key[i] = (sched_key){ lv, i };
    }
    /* windows within the runs between extended instructions: a loop and
     * its XOUTs stay where they are, contiguous */
    for (uint32_t r0 = 0; r0 < n && s == TG_OK;) {
        if (tape_is_x(t->op[r0])) {
            uint32_t end = r0 + 1 + (uint32_t)tape_xrec_of(t, r0)->nout;
            for (uint32_t j = r0; j < end; j++)
                newid[j] = j;
            r0 = end;
            continue;
        }
        uint32_t r1 = r0;
        while (r1 < n && !tape_is_x(t->op[r1]))
            r1++;
        for (uint32_t w0 = r0; w0 < r1; w0 += SCHED_WINDOW) {
            uint32_t len = r1 - w0 < SCHED_WINDOW ? r1 - w0 : SCHED_WINDOW;
            qsort(key + w0, len, sizeof *key, sched_cmp);
            for (uint32_t j = w0; j < w0 + len; j++)
                newid[key[j].index] = j;
        }
        r0 = r1;
    }
    /* the permuted tape, built in u, then its columns moved into t */
    if (s == TG_OK && tape_reserve(u, n ? n : 1))
        s = u->status;
    for (uint32_t j = 0; j < n && s == TG_OK; j++) {
        uint32_t i = key[j].index;
        uint8_t op = t->op[i];
        bool leaf = op == TG_OP_CONST || op == TG_OP_INPUT || tape_is_x(op);
        int ar = tape_op_arity[op];
        u->op[j] = op;
        u->a[j] = leaf ? t->a[i] : newid[t->a[i]];
        u->b[j] = ar >= 2 ? newid[t->b[i]] : op == TG_OP_XOUT ? t->b[i] : 0;  /* output index */
        u->c[j] = ar >= 3 ? newid[t->c[i]] : 0;
        if ((tape_op_flags[op] & TG_OPF_COMMUTATIVE) && u->b[j] < u->a[j]) {   /* keep CSE's order */
            uint32_t x = u->a[j];
            u->a[j] = u->b[j];
            u->b[j] = x;
        }
    }
    if (s == TG_OK) {
        u->n = n;
        for (uint32_t k = 0; k < t->nin; k++)
            t->in_ref[k] = newid[t->in_ref[k]];
        for (uint32_t k = 0; k < t->nout; k++)
            t->out_ref[k] = newid[t->out_ref[k]];
        for (uint64_t k = 0; k < t->nxops; k++)    /* loops stay in place, operands move */
            t->xops[k] = newid[t->xops[k]];
        swap_columns(t, u);
        if ((!(t->flags & TG_NO_CSE) && tape_cse_rebuild(t)) || tape_guards_rebuild(t))
            s = TG_ERR_NOMEM;
    }
    tg_tape_free(u);
    mem_free(level);
    mem_free(newid);
    mem_free(key);
    return s;
}

