/* src/tape/optimize.c -- the optimisation pipeline over a finished tape;
 * one_round() shows the order of the passes (one per opt_*.c file):
 *
 *   tape_opt_dce(level)   re-record the live instructions: fold, CSE and
 *                         the level's exact rewrites (opt_rewrite.c)
 *   tape_opt_dce(NONE)    dead-code elimination and compaction
 *   tape_opt_schedule     reorder within windows for latency
 *
 * Each pass is one linear loop into a fresh tape (or a permutation in
 * place of a tape the pipeline owns), so a failure leaves t untouched; the
 * result is swapped into t at the end.  Optimising twice gives the same
 * tape as optimising once. */
#include "tape/opt.h"

static void
swap_bytes(void *x, void *y, size_t n)
{
    unsigned char *p = x, *q = y;
    for (size_t i = 0; i < n; i++) {
        unsigned char s = p[i];
        p[i] = q[i];
        q[i] = s;
    }
}

/* Moves u's content into t (t keeps its name, status and attachments);
 * frees u. */
static void
take_content(tg_tape *t, tg_tape *u)
{
#define SWAP(f) swap_bytes(&t->f, &u->f, sizeof t->f)
    SWAP(n); SWAP(cap); SWAP(a); SWAP(b); SWAP(c); SWAP(op);
    SWAP(k); SWAP(nk); SWAP(kcap);
    SWAP(inb); SWAP(outb); SWAP(ninb); SWAP(inbcap); SWAP(noutb); SWAP(outbcap);
    SWAP(in_ref); SWAP(nin); SWAP(nincap); SWAP(out_ref); SWAP(nout); SWAP(noutcap);
    SWAP(ht); SWAP(hg); SWAP(hcap); SWAP(hgcap); SWAP(hgcount); SWAP(hpend);
    SWAP(xr); SWAP(nxr); SWAP(xrcap); SWAP(xops); SWAP(nxops); SWAP(xopscap);
    SWAP(bodies); SWAP(nbodies); SWAP(bodiescap); SWAP(depth); SWAP(xkinds);
    SWAP(funcs); SWAP(calls); SWAP(ncalls); SWAP(callcap);
    SWAP(val); SWAP(guard); SWAP(nguard); SWAP(guardcap);   /* values are dropped */
#undef SWAP
    tg_tape_free(u);
}

/* One round on a tape the caller owns: re-record at `level`, compact, and
 * schedule.  Returns a new tape (or NULL: out of memory). */
static tg_tape *
one_round(const tg_tape *t, tg_opt_level level)
{
    tg_tape *u = level == TG_OPT_NONE ? NULL : tape_opt_dce(t, level);
    if (level != TG_OPT_NONE && (!u || u->status != TG_OK)) {
        tg_tape_free(u);
        return NULL;
    }
    tg_tape *v = tape_opt_dce(u ? u : t, TG_OPT_NONE);
    tg_tape_free(u);
    if (v && v->status == TG_OK && level != TG_OPT_NONE && tape_opt_schedule(v) != TG_OK)
        tape_fail(v, TG_ERR_NOMEM, "out of memory scheduling \"%s\"", t->name);
    if (v && v->status != TG_OK) {
        tg_tape_free(v);
        return NULL;
    }
    return v;
}

tg_status
tg_tape_optimize(tg_tape *t, tg_opt_level level)
{
    if (!t || (unsigned)level > TG_OPT_MAX)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_optimize: %s", t ? "bad level" : "NULL tape");
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "tg_tape_optimize: tape in the error state: %s", t->err);
    /* work on copies; t changes only at the end, so a failure leaves it as it was */
    tg_tape *cur = NULL;
    for (int round = 0; round < 64; round++) {
        const tg_tape *src = cur ? cur : t;
        tg_tape *next = one_round(src, level == TG_OPT_MAX ? TG_OPT_HIGH : level);
        if (!next) {
            tg_tape_free(cur);
            return tape_fail_call(TG_ERR_NOMEM, "tg_tape_optimize: out of memory");
        }
        bool shrank = next->n < src->n;
        tg_tape_free(cur);
        cur = next;
        if (level != TG_OPT_MAX || !shrank)
            break;
    }
    if (tape_check_pass(cur, "optimisation") != 0) {     /* t stays as it was */
        tg_status s = tape_fail_call(cur->status, "tg_tape_optimize: %s", cur->err);
        tg_tape_free(cur);
        return s;
    }
    take_content(t, cur);
    return TG_OK;
}
