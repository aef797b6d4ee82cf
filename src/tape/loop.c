/* src/tape/loop.c -- recording loops kept in the tape: tg_map and tg_scan
 * check their arguments, store a copy of the body (xtab.c) and append ONE
 * extended instruction with its XOUT outputs.  The tape grows by the
 * operand and output lists, never by count * |body|. */
#include <inttypes.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "internal.h"

/* What a loop call needs to know about its body's blocks. */
typedef struct loop_shape {
    const char *fn;
    uint8_t kind;
    uint64_t count;
    uint32_t nc, nx, np, ny;
} loop_shape;

/* Checks body's block structure against the loop kind; fills the sizes.
 * MAP: inputs (x, p), outputs (y).  SCAN: inputs (carry, x, p), outputs
 * (carry_next, y) with |carry_next| = |carry|. */
static int
check_body(tg_tape *t, const tg_tape *body, loop_shape *s)
{
    if (!body)
        return tape_fail(t, TG_ERR_ARG, "%s: NULL body", s->fn);
    if (body == t)
        return tape_fail(t, TG_ERR_ARG, "%s: tape \"%s\" cannot be its own body", s->fn, t->name);
    if (body->status != TG_OK)
        return tape_fail(t, body->status, "%s: body \"%s\" is in the error state: %s", s->fn,
                         body->name, body->err);
    bool map = s->kind == TG_OP_MAP;
    uint32_t nin = map ? 2 : 3, nout = map ? 1 : 2;
    if (body->ninb != nin || body->noutb != nout)
        return tape_fail(t, TG_ERR_SHAPE, "%s: body \"%s\" has %" PRIu32 " input and %" PRIu32
                         " output blocks; a %s body has %" PRIu32 " (%s) and %" PRIu32 " (%s)",
                         s->fn, body->name, body->ninb, body->noutb, map ? "map" : "scan", nin,
                         map ? "x, p" : "carry, x, p", nout, map ? "y" : "carry_next, y");
    const tape_block *in = body->inb, *out = body->outb;
    s->nc = map ? 0 : in[0].size;
    s->nx = in[map ? 0 : 1].size;
    s->np = in[map ? 1 : 2].size;
    s->ny = out[map ? 0 : 1].size;
    if (!map && out[0].size != s->nc)
        return tape_fail(t, TG_ERR_SHAPE, "%s: body \"%s\" takes a carry of %" PRIu32 " scalars "
                         "and returns one of %" PRIu32, s->fn, body->name, s->nc, out[0].size);
    if (body->xkinds & TAPE_XK_CALL)   /* user functions: not inside loops (issue 13) */
        return tape_fail(t, TG_ERR_UNSUPPORTED, "%s: body \"%s\" calls user functions "
                         "(tg_call_func), which loop bodies may not", s->fn, body->name);
    if (body->depth + 1 > TAPE_MAX_DEPTH)
        return tape_fail(t, TG_ERR_LIMIT, "%s: body \"%s\" nests loops %" PRIu32 " deep; at most "
                         "%d levels are allowed", s->fn, body->name, body->depth + 1,
                         TAPE_MAX_DEPTH);
    return 0;
}

/* count * n, or UINT64_MAX on overflow. */
static uint64_t
mul_sat(uint64_t count, uint64_t n)
{
    return n && count > UINT64_MAX / n ? UINT64_MAX : count * n;
}

/* Checks a list of m values of t (NULL allowed only when m == 0). */
static int
check_vars(tg_tape *t, const loop_shape *s, const char *what, const tg_var *v, uint64_t m)
{
    if (m && !v)
        return tape_fail(t, TG_ERR_ARG, "%s: argument '%s' is NULL but %" PRIu64 " values are "
                         "needed", s->fn, what, m);
    for (uint64_t j = 0; j < m; j++)
        if (!tape_var_ok(t, v[j]))
            return tape_fail(t, TG_ERR_ARG, "%s: %s[%" PRIu64 "] is not a value of tape \"%s\"",
                             s->fn, what, j, t->name);
    return 0;
}

/* Appends the refs of m values (the tapeless zero becomes a constant). */
static void
put_refs(tg_tape *t, uint32_t *ops, uint64_t *at, const tg_var *v, uint64_t m)
{
    for (uint64_t j = 0; j < m; j++)
        ops[(*at)++] = tape_var_ref(t, v[j]);
}

/* The operand lists, in XIR order (carry_in for SCAN, xs, params). */
typedef struct loop_args {
    const tg_var *carry, *xs, *params;
    const tg_var *carry_out, *ys;   /* only checked for NULL here */
} loop_args;

/* Records the loop; returns its instruction or TG_NIL with t failed. */
static uint32_t
record_loop(tg_tape *t, const tg_tape *body, loop_shape *s, const loop_args *a)
{
    if (check_body(t, body, s))
        return TG_NIL;
    if (s->count > TAPE_MAX_COUNT)
        return tape_fail(t, TG_ERR_LIMIT, "%s: %" PRIu64 " applications (at most %" PRIu64 ")",
                         s->fn, s->count, (uint64_t)TAPE_MAX_COUNT), TG_NIL;
    uint64_t nxs = mul_sat(s->count, s->nx), nys = mul_sat(s->count, s->ny);
    uint64_t nops = nxs + s->nc + s->np, nout = nys + s->nc;
    if (nxs >= (uint64_t)1 << 40 || nys >= TAPE_MAX_INSTS || nout >= TAPE_MAX_INSTS)
        return tape_fail(t, TG_ERR_LIMIT, "%s: %" PRIu64 " applications of body \"%s\" are too "
                         "many for one tape", s->fn, s->count, body->name), TG_NIL;
    if (check_vars(t, s, "carry_in", a->carry, s->nc) || check_vars(t, s, "xs", a->xs, nxs)
        || check_vars(t, s, "params", a->params, s->np))
        return TG_NIL;
    if ((!a->ys && nys) || (!a->carry_out && s->nc))
        return tape_fail(t, TG_ERR_ARG, "%s: argument '%s' is NULL", s->fn,
                         a->ys || !nys ? "carry_out" : "ys"), TG_NIL;
    uint32_t *ops = mem_malloc((size_t)(nops ? nops : 1) * sizeof *ops);
    if (!ops)
        return tape_fail(t, TG_ERR_NOMEM, "%s: out of memory for %" PRIu64 " operands", s->fn,
                         nops), TG_NIL;
    uint64_t at = 0;
    put_refs(t, ops, &at, a->carry, s->nc);
    put_refs(t, ops, &at, a->xs, nxs);
    put_refs(t, ops, &at, a->params, s->np);
    uint32_t i = TG_NIL;
    uint32_t bi = t->status == TG_OK ? tape_add_body(t, body) : UINT32_MAX;
    if (bi != UINT32_MAX) {
        tape_xrec r = { .kind = s->kind, .body = bi, .count = s->count, .nc = s->nc,
                        .nx = s->nx, .np = s->np, .ny = s->ny, .nops = nops, .nout = nout };
        i = tape_append_x(t, s->kind, &r, ops);
        if (i != TG_NIL && t->val) {    /* recording at a point (loopval.c) */
            tape_val_loop(t, i);
            if (t->status != TG_OK)
                i = TG_NIL;
        }
    }
    mem_free(ops);
    return i;
}

/* The outputs: out[j] = XOUT (first + j), or {t, TG_NIL} after an error. */
static void
fill_outs(tg_tape *t, uint32_t i, uint64_t first, tg_var *out, uint64_t m)
{
    if (!out)
        return;
    for (uint64_t j = 0; j < m; j++)
        out[j] = (tg_var){ t, i == TG_NIL ? TG_NIL : i + 1 + (uint32_t)(first + j) };
}

/* Block sizes of a body for poisoning outputs after an early error. */
static void
poison_sizes(const tg_tape *body, bool map, uint64_t count, uint64_t *nc, uint64_t *nys)
{
    *nc = *nys = 0;
    if (!body || body->noutb != (map ? 1u : 2u))
        return;
    *nc = map ? 0 : body->outb[0].size;
    *nys = mul_sat(count, body->outb[map ? 0 : 1].size);
}

void
tg_map(tg_tape *t, const tg_tape *body, size_t count, const tg_var *xs, const tg_var *params,
       tg_var *ys)
{
    uint32_t i = TG_NIL;
    if (t && t->status == TG_OK) {
        loop_shape s = { .fn = "tg_map", .kind = TG_OP_MAP, .count = count };
        i = record_loop(t, body, &s, &(loop_args){ NULL, xs, params, NULL, ys });
    }
    uint64_t nc, nys;
    poison_sizes(body, true, count, &nc, &nys);
    if (nys < TAPE_MAX_INSTS)
        fill_outs(t, i, 0, ys, nys);
}

void
tg_scan(tg_tape *t, const tg_tape *body, size_t steps, const tg_var *carry_in, const tg_var *xs,
        const tg_var *params, tg_var *carry_out, tg_var *ys)
{
    uint32_t i = TG_NIL;
    if (t && t->status == TG_OK) {
        loop_shape s = { .fn = "tg_scan", .kind = TG_OP_SCAN, .count = steps };
        i = record_loop(t, body, &s, &(loop_args){ carry_in, xs, params, carry_out, ys });
    }
    uint64_t nc, nys;
    poison_sizes(body, false, steps, &nc, &nys);
    fill_outs(t, i, 0, carry_out, nc);
    if (nys < TAPE_MAX_INSTS)
        fill_outs(t, i, nc, ys, nys);
}
