/* src/ad/lazy.c -- the lazily built derivative tapes of lazy.h.
 *
 * State lives in a tape attachment: an on/off switch and a list of entries,
 * one per shape of the tape (size, inputs, output instruction) met so far,
 * each with a call counter and the derivative tape of each kind.  The list
 * only grows (pushed by compare-and-swap, like attach.c), so a reader never
 * sees an entry freed under it; entries of shapes the tape has left (it
 * was recorded into or optimised) stay until the tape is freed.  Why the
 * shape is a sound key: a tape with one output cannot have that output
 * replaced (the recorder only appends), and recording changes n while
 * optimisation is exact, so two states of one tape with the same inputs
 * and one output compute the same function; the shape check only keeps a
 * derivative tape from being used with a tape whose inputs changed, and
 * keeps the workspace sizes in step.   Exactly
 * one caller builds each derivative tape: the one whose increment of the
 * counter reaches AD_LAZY_AFTER (atomic fetch-add hands out each count
 * once); it publishes the tape by compare-and-swap (a loser, which cannot
 * occur with the counter but costs nothing to handle, frees its own). */
#include "ad/lazy.h"
#include "ad/layout.h"
#include "tape/alloc.h"

/* Memory cap: a derivative tape is kept only when it has at most
 * LAZY_RATIO times the instructions of f (plus a few) and occupies at most
 * LAZY_MAX_BYTES (tg_tape_bytes: ~40 bytes an instruction with the CSE
 * table; the W1 n = 1000 gradient tape, 13k instructions after
 * optimisation, ~0.5 MB). */
#define LAZY_RATIO 8u
#define LAZY_MAX_BYTES ((size_t)64 << 20)

typedef struct lazy_entry {
    uint32_t n, nin, out0;                  /* the shape of f it was built for */
    _Atomic unsigned long calls[AD_LAZY_KINDS];
    _Atomic(tg_tape *) tape[AD_LAZY_KINDS];
    struct lazy_entry *next;
} lazy_entry;

typedef struct lazy_slot {
    atomic_int off;
    _Atomic(lazy_entry *) head;
} lazy_slot;

static void *
slot_make(void)
{
    lazy_slot *s = mem_malloc(sizeof *s);
    if (s) {
        atomic_init(&s->off, 0);
        atomic_init(&s->head, NULL);
    }
    return s;
}

static void
slot_destroy(void *p)
{
    lazy_slot *s = p;
    lazy_entry *e = atomic_load(&s->head);
    while (e) {
        lazy_entry *next = e->next;
        for (int k = 0; k < AD_LAZY_KINDS; k++)
            tg_tape_free(atomic_load(&e->tape[k]));
        mem_free(e);
        e = next;
    }
    mem_free(s);
}

static const tape_key lazy_key = { slot_make, slot_destroy };

static int
same_shape(const lazy_entry *e, const tg_tape *t)
{
    return e->n == t->n && e->nin == t->nin && e->out0 == t->out_ref[0];
}

static lazy_entry *
find(lazy_entry *e, const tg_tape *t)
{
    for (; e; e = e->next)
        if (same_shape(e, t))
            return e;
    return NULL;
}

/* t's entry for its current shape, made when missing (NULL: out of memory). */
static lazy_entry *
entry(lazy_slot *s, const tg_tape *t)
{
    lazy_entry *head = atomic_load(&s->head), *mine = NULL;
    for (;;) {
        lazy_entry *e = find(head, t);
        if (e) {
            mem_free(mine);
            return e;
        }
        if (!mine) {
            mine = mem_malloc(sizeof *mine);
            if (!mine)
                return NULL;
            mine->n = t->n;
            mine->nin = t->nin;
            mine->out0 = t->out_ref[0];
            for (int k = 0; k < AD_LAZY_KINDS; k++) {
                atomic_init(&mine->calls[k], 0);
                atomic_init(&mine->tape[k], NULL);
            }
        }
        mine->next = head;
        if (atomic_compare_exchange_strong(&s->head, &head, mine))
            return mine;
    }
}

/* The optimised derivative tape of kind k, or NULL when it cannot be had
 * within the cap or the memory. */
static tg_tape *
build(const tg_tape *t, int k)
{
    /* a gradient tape is 3-4x f: refuse before spending anything on one
     * that would surely exceed the cap */
    if (tg_tape_bytes(t) > LAZY_MAX_BYTES / 3)
        return NULL;
    tg_tape *d = k == AD_LAZY_GRAD ? tg_gradient_tape(t, TG_ALL) : tg_hvp_tape(t, TG_ALL);
    if (d && d->status == TG_OK && tg_tape_optimize(d, TG_OPT_BASIC) == TG_OK
        && d->n <= (uint64_t)LAZY_RATIO * t->n + 64 && tg_tape_bytes(d) <= LAZY_MAX_BYTES)
        return d;
    tg_tape_free(d);
    return NULL;
}

const tg_tape *
ad_lazy_get(const tg_tape *t, int k)
{
    if (t->nout != 1)
        return NULL;
    lazy_slot *s = tape_attachment_find(t, &lazy_key);
    if (!s || atomic_load_explicit(&s->off, memory_order_relaxed))
        return NULL;
    lazy_entry *e = find(atomic_load(&s->head), t);
    return e ? atomic_load(&e->tape[k]) : NULL;
}

const tg_tape *
ad_lazy_count(const tg_tape *t, int k)
{
    if (t->xkinds & TAPE_XK_CALL)  /* user functions: the sweeps serve (no derivative tape) */
        return NULL;
    lazy_slot *s = tape_attachment(t, &lazy_key);
    if (!s || atomic_load_explicit(&s->off, memory_order_relaxed))
        return NULL;
    lazy_entry *e = entry(s, t);
    if (!e)
        return NULL;
    tg_tape *d = atomic_load(&e->tape[k]);
    if (d)
        return d;
    /* saturate well below wrap-around: a declined kind counts forever */
    if (atomic_load_explicit(&e->calls[k], memory_order_relaxed) > AD_LAZY_AFTER)
        return NULL;
    if (atomic_fetch_add(&e->calls[k], 1) + 1 != AD_LAZY_AFTER)
        return NULL;
    d = build(t, k);
    if (!d)
        return NULL;
    tg_tape *none = NULL;
    if (!atomic_compare_exchange_strong(&e->tape[k], &none, d)) {
        tg_tape_free(d);
        d = none;
    }
    return d;
}

size_t
ad_lazy_need(const tg_tape *d, int k)
{
    return ad_layout_eval(d).size + (k == AD_LAZY_HVP ? d->nin : 0);
}

size_t
ad_lazy_need_all(const tg_tape *t)
{
    size_t need = 0;
    for (int k = 0; k < AD_LAZY_KINDS; k++) {
        const tg_tape *d = ad_lazy_get(t, k);
        if (d && ad_lazy_need(d, k) > need)
            need = ad_lazy_need(d, k);
    }
    return need;
}

tg_status
ad_lazy_eval(const tg_tape *d, int k, tg_workspace *w, const double *x, const double *v,
             double *out, const char *fn)
{
    ad_eval_layout L = ad_layout_eval(d);
    double *val = AD_F64(w, L.v);
    const double *in = x;
    if (k == AD_LAZY_HVP) {     /* the HVP tape's inputs are (x, v) */
        double *xv = w->buf + L.size;
        size_t n = d->nin / 2;
        memcpy(xv, x, n * sizeof *xv);
        memcpy(xv + n, v, n * sizeof *xv);
        in = xv;
    }
    ad_forward_one(d, in, val);
    AD_GUARDS(d, val, fn);      /* the derivative tape carries the guards */
    for (uint32_t j = 0; j < d->nout; j++)
        out[j] = val[d->out_ref[j]];
    return TG_OK;
}

tg_status
tg_tape_set_lazy(tg_tape *t, int on)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_set_lazy: NULL tape");
    lazy_slot *s = tape_attachment(t, &lazy_key);
    if (!s)
        return tape_fail_call(TG_ERR_NOMEM, "tg_tape_set_lazy: out of memory");
    atomic_store(&s->off, !on);
    return TG_OK;
}
