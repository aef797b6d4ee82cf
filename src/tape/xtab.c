/* src/tape/xtab.c -- the side tables of extended instructions (loops and
 * calls): records, operand lists and the owned body tapes.  Appending is
 * all or nothing; bodies are copies, stored once per tape (structurally
 * identical bodies share one copy).  Recursion here follows the nesting
 * of bodies, which is at most TAPE_MAX_DEPTH deep. */
#include <inttypes.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

/* Grows a uint32 array with a 64-bit count (operand lists may hold more
 * than 2^32 refs in principle; memory is the real bound). */
static int
grow64(uint32_t **p, uint64_t *cap, uint64_t need)
{
    if (need <= *cap)
        return 0;
    uint64_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / sizeof **p)
        return -1;
    uint32_t *q = mem_realloc(*p, (size_t)nc * sizeof **p);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

uint32_t
tape_append_x(tg_tape *t, uint8_t op, const tape_xrec *rec, const uint32_t *ops)
{
    if (t->status != TG_OK)
        return TG_NIL;
    uint64_t need = (uint64_t)t->n + 1 + rec->nout;
    if (rec->nout >= TAPE_MAX_INSTS || need > t->limit) {
        tape_fail(t, TG_ERR_LIMIT, "%s of %llu outputs: tape \"%s\" exceeds its limit of %llu "
                  "instructions", tg_op_name((tg_opcode)op), (unsigned long long)rec->nout,
                  t->name, (unsigned long long)t->limit);
        return TG_NIL;
    }
    if (tape_reserve(t, need))
        return TG_NIL;
    if (tape_grow((void **)&t->xr, &t->xrcap, (uint64_t)t->nxr + 1, sizeof *t->xr)
        || grow64(&t->xops, &t->xopscap, t->nxops + rec->nops)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory recording a %s on tape \"%s\"",
                  tg_op_name((tg_opcode)op), t->name);
        return TG_NIL;
    }
    uint32_t i = t->n;
    tape_xrec *r = &t->xr[t->nxr];
    *r = *rec;
    r->kind = op;
    r->op0 = t->nxops;
    r->inst = i;
    if (rec->nops)
        memcpy(t->xops + t->nxops, ops, (size_t)rec->nops * sizeof *ops);
    t->op[i] = op;
    t->a[i] = t->nxr;
    t->b[i] = t->c[i] = 0;
    for (uint64_t k = 0; k < rec->nout; k++) {
        uint32_t j = i + 1 + (uint32_t)k;
        t->op[j] = TG_OP_XOUT;
        t->a[j] = i;
        t->b[j] = (uint32_t)k;
        t->c[j] = 0;
    }
    t->n = (uint32_t)need;
    for (uint32_t j = i; t->val && j < t->n; j++)   /* recording at a point: loops have no value */
        t->val[j] = tape_noval();
    t->nxr++;
    t->nxops += rec->nops;
    t->hpend.where = 0;         /* extended instructions never enter the CSE tables */
    t->xkinds |= tape_xk_bit(op);
    if (op != TG_OP_CALL) {
        const tg_tape *b = t->bodies[rec->body];
        t->xkinds |= tape_xk_body(b);
        if (b->depth + 1 > t->depth)
            t->depth = b->depth + 1;
    }
    return i;
}

/* ----------------------------------------------------------- comparison */

static bool
same_blocks(const tape_block *a, const tape_block *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].size != b[i].size || strcmp(a[i].name, b[i].name) != 0)
            return false;
    return true;
}

static bool
same_xrecs(const tape_xrec *a, const tape_xrec *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].kind != b[i].kind || a[i].body != b[i].body || a[i].count != b[i].count
            || a[i].nc != b[i].nc || a[i].nx != b[i].nx || a[i].np != b[i].np
            || a[i].ny != b[i].ny || a[i].op0 != b[i].op0 || a[i].nops != b[i].nops
            || a[i].nout != b[i].nout || a[i].inst != b[i].inst)
            return false;
    return true;
}

bool
tape_same(const tg_tape *a, const tg_tape *b)
{
    if (a == b)
        return true;
    if (a->n != b->n || a->nk != b->nk || a->nin != b->nin || a->nout != b->nout
        || a->ninb != b->ninb || a->noutb != b->noutb || a->nxr != b->nxr
        || a->nxops != b->nxops || a->nbodies != b->nbodies || strcmp(a->name, b->name) != 0)
        return false;
    size_t n = a->n;
    if ((n && (memcmp(a->op, b->op, n) || memcmp(a->a, b->a, n * sizeof *a->a)
               || memcmp(a->b, b->b, n * sizeof *a->b) || memcmp(a->c, b->c, n * sizeof *a->c)))
        || (a->nk && memcmp(a->k, b->k, a->nk * sizeof *a->k))     /* bits: -0.0, NaNs */
        || (a->nout && memcmp(a->out_ref, b->out_ref, a->nout * sizeof *a->out_ref))
        || !same_blocks(a->inb, b->inb, a->ninb) || !same_blocks(a->outb, b->outb, a->noutb)
        || !same_xrecs(a->xr, b->xr, a->nxr)
        || (a->nxops && memcmp(a->xops, b->xops, (size_t)a->nxops * sizeof *a->xops))
        || a->funcs != b->funcs || a->ncalls != b->ncalls
        || (a->ncalls && memcmp(a->calls, b->calls, a->ncalls * sizeof *a->calls)))
        return false;
    for (uint32_t j = 0; j < a->nbodies; j++)
        if (!tape_same(a->bodies[j], b->bodies[j]))
            return false;
    return true;
}

/* --------------------------------------------------------------- copies */

static int
copy_blocks(tape_block **dst, uint32_t *cap, const tape_block *src, uint32_t n)
{
    if (n == 0)
        return 0;
    if (tape_grow((void **)dst, cap, n, sizeof **dst))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        (*dst)[i] = src[i];
        (*dst)[i].name = mem_malloc(strlen(src[i].name) + 1);
        if (!(*dst)[i].name) {
            while (i-- > 0)
                mem_free((*dst)[i].name);
            return -1;
        }
        strcpy((*dst)[i].name, src[i].name);
    }
    return 0;
}

/* Copies into a fresh tape c (counts are set only once their arrays are
 * complete, so tg_tape_free cleans up a half-made copy). */
static int
clone_into(tg_tape *c, const tg_tape *t)
{
    if (t->n && tape_reserve(c, t->n))
        return -1;
    if (t->n) {
        memcpy(c->op, t->op, t->n);
        memcpy(c->a, t->a, t->n * sizeof *c->a);
        memcpy(c->b, t->b, t->n * sizeof *c->b);
        memcpy(c->c, t->c, t->n * sizeof *c->c);
        c->n = t->n;
    }
    if (tape_grow((void **)&c->k, &c->kcap, t->nk, sizeof *c->k)
        || tape_grow((void **)&c->in_ref, &c->nincap, t->nin, sizeof *c->in_ref)
        || tape_grow((void **)&c->out_ref, &c->noutcap, t->nout, sizeof *c->out_ref)
        || tape_grow((void **)&c->xr, &c->xrcap, t->nxr, sizeof *c->xr)
        || grow64(&c->xops, &c->xopscap, t->nxops)
        || tape_grow((void **)&c->bodies, &c->bodiescap, t->nbodies, sizeof *c->bodies))
        return -1;
    if (t->nk)
        memcpy(c->k, t->k, t->nk * sizeof *c->k);
    c->nk = t->nk;
    if (t->nin)
        memcpy(c->in_ref, t->in_ref, t->nin * sizeof *c->in_ref);
    c->nin = t->nin;
    if (t->nout)
        memcpy(c->out_ref, t->out_ref, t->nout * sizeof *c->out_ref);
    c->nout = t->nout;
    if (t->nxr)
        memcpy(c->xr, t->xr, t->nxr * sizeof *c->xr);
    c->nxr = t->nxr;
    if (t->nxops)
        memcpy(c->xops, t->xops, (size_t)t->nxops * sizeof *c->xops);
    c->nxops = t->nxops;
    if (copy_blocks(&c->inb, &c->inbcap, t->inb, t->ninb))
        return -1;
    c->ninb = t->ninb;
    if (copy_blocks(&c->outb, &c->outbcap, t->outb, t->noutb))
        return -1;
    c->noutb = t->noutb;
    for (uint32_t j = 0; j < t->nbodies; j++) {
        tg_tape *b = tape_clone(t->bodies[j]);
        if (!b)
            return -1;
        c->bodies[c->nbodies++] = b;
    }
    if (tape_copy_calls(c, t))
        return -1;
    if (t->nguard && tape_guards_rebuild(c))    /* the guards' index, as tape_append's */
        return -1;
    c->depth = t->depth;
    c->xkinds = t->xkinds;
    c->limit = t->limit;
    return 0;
}

tg_tape *
tape_clone(const tg_tape *t)
{
    tg_tape *c = tg_tape_new_ex(t->name, t->flags);
    if (!c)
        return NULL;
    if (c->status != TG_OK || clone_into(c, t)) {
        tg_tape_free(c);
        return NULL;
    }
    c->status = t->status;
    memcpy(c->err, t->err, sizeof c->err);
    return c;
}

uint32_t
tape_add_body(tg_tape *t, const tg_tape *b)
{
    for (uint32_t j = 0; j < t->nbodies; j++)
        if (tape_same(t->bodies[j], b))
            return j;
    if (t->nbodies >= UINT32_MAX - 1
        || tape_grow((void **)&t->bodies, &t->bodiescap, (uint64_t)t->nbodies + 1,
                     sizeof *t->bodies)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory storing a loop body on tape \"%s\"", t->name);
        return UINT32_MAX;
    }
    tg_tape *c = tape_clone(b);
    if (!c) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory copying loop body \"%s\" onto tape \"%s\"",
                  b->name, t->name);
        return UINT32_MAX;
    }
    t->bodies[t->nbodies] = c;
    return t->nbodies++;
}

uint32_t
tape_adopt_body(tg_tape *t, tg_tape *b)
{
    for (uint32_t j = 0; j < t->nbodies; j++)
        if (tape_same(t->bodies[j], b)) {
            tg_tape_free(b);
            return j;
        }
    if (t->nbodies >= UINT32_MAX - 1
        || tape_grow((void **)&t->bodies, &t->bodiescap, (uint64_t)t->nbodies + 1,
                     sizeof *t->bodies)) {
        tg_tape_free(b);
        tape_fail(t, TG_ERR_NOMEM, "out of memory storing a loop body on tape \"%s\"", t->name);
        return UINT32_MAX;
    }
    t->bodies[t->nbodies] = b;
    return t->nbodies++;
}

void
tape_free_x(tg_tape *t)
{
    for (uint32_t j = 0; j < t->nbodies; j++)
        tg_tape_free(t->bodies[j]);
    mem_free(t->bodies);
    mem_free(t->xr);
    mem_free(t->xops);
    mem_free(t->calls);
    t->calls = NULL;
    t->ncalls = t->callcap = 0;
    t->funcs = NULL;
    t->bodies = NULL;
    t->xr = NULL;
    t->xops = NULL;
    t->nbodies = t->bodiescap = t->nxr = t->xrcap = 0;
    t->nxops = t->xopscap = 0;
}

size_t
tape_x_bytes(const tg_tape *t)
{
    size_t s = (size_t)t->xrcap * sizeof *t->xr + (size_t)t->xopscap * sizeof *t->xops
             + (size_t)t->bodiescap * sizeof *t->bodies;
    for (uint32_t j = 0; j < t->nbodies; j++)
        s += tg_tape_bytes(t->bodies[j]);
    return s;
}

tg_status
tape_refuse_x(const tg_tape *t, const char *fn)
{
    if (!t || !tape_has_loops(t))   /* user-function calls are handled */
        return TG_OK;
    return tape_fail_call(TG_ERR_UNSUPPORTED, "%s does not support loops yet (tape \"%s\" has "
                          "%" PRIu32 " extended instructions)", fn, t->name, t->nxr);
}

tg_status
tape_refuse_call(const tg_tape *t, const char *fn)
{
    if (!t || !(t->xkinds & TAPE_XK_CALL))
        return TG_OK;
    return tape_fail_call(TG_ERR_UNSUPPORTED, "%s does not support user function calls "
                          "(tape \"%s\" calls user functions, tg_call_func)", fn, t->name);
}

tg_status
tape_refuse_xc(const tg_tape *t, const char *fn)
{
    tg_status s = tape_refuse_x(t, fn);
    return s != TG_OK ? s : tape_refuse_call(t, fn);
}
