/* src/tape/opt_dce.c -- optimisation pass: the live part of a tape (what
 * the outputs depend on), copied into a new tape verbatim (level NONE:
 * dead-code elimination and compaction) or re-recorded through the
 * recorder (fold, CSE and the level's rewrites, opt_rewrite.c).  Inputs
 * are declared first, so the form is canonical. */
#include "tape/alloc.h"
#include "tape/opt.h"

static void
mark_live(const tg_tape *t, uint8_t *live)
{
    memset(live, 0, t->n);
    for (uint32_t j = 0; j < t->nout; j++)
        live[t->out_ref[j]] = 1;
    for (uint32_t g = 0; g < t->nguard; g++)     /* branch guards are roots */
        live[t->guard[g]] = 1;
    for (uint32_t i = t->n; i-- > 0;) {
        if (!live[i])
            continue;
        if (tape_is_x(t->op[i])) {     /* live when one of its XOUTs is */
            const tape_xrec *r = tape_xrec_of(t, i);
            const uint32_t *o = tape_xops(t, r);
            for (uint64_t k = 0; k < r->nops; k++)
                live[o[k]] = 1;
            continue;
        }
        int ar = tape_op_arity[t->op[i]];
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < ar; j++)
            live[opnd[j]] = 1;
    }
}

/* The body of record r of t for u: verbatim (NONE) or optimised at
 * `level` (recursively: bodies nest at most TAPE_MAX_DEPTH deep); stored
 * once on u.  UINT32_MAX with u failed. */
static uint32_t
copy_body(tg_tape *u, const tg_tape *t, const tape_xrec *r, tg_opt_level level)
{
    const tg_tape *b = tape_body_of(t, r);
    if (level == TG_OPT_NONE)
        return tape_add_body(u, b);
    tg_tape *c = tape_clone(b);
    if (!c || tg_tape_optimize(c, level) != TG_OK) {
        tg_tape_free(c);
        tape_fail(u, TG_ERR_NOMEM, "out of memory optimising loop body \"%s\"", b->name);
        return UINT32_MAX;
    }
    return tape_adopt_body(u, c);
}

/* Extended instruction i of t onto u with its XOUTs (all of them: they
 * are contiguous); map[] of the XOUTs set.  Returns its XOUT count. */
static uint64_t
copy_x(tg_tape *u, const tg_tape *t, uint32_t i, uint32_t *map, tg_opt_level level)
{
    tape_xrec r = *tape_xrec_of(t, i);
    const uint32_t *o = tape_xops(t, &r);
    uint32_t *ops = mem_malloc((size_t)(r.nops ? r.nops : 1) * sizeof *ops);
    uint32_t j = TG_NIL;
    if (!ops) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory copying a %s", tg_op_name(r.kind));
    } else if (r.kind == TG_OP_CALL) {
        tape_fail(u, TG_ERR_UNSUPPORTED, "optimising user-defined function calls is not "
                  "supported yet");
    } else {
        for (uint64_t k = 0; k < r.nops; k++)
            ops[k] = map[o[k]];
        r.body = copy_body(u, t, &r, level);
        if (r.body != UINT32_MAX)
            j = tape_append_x(u, r.kind, &r, ops);
    }
    mem_free(ops);
    map[i] = j;
    for (uint64_t k = 0; k < r.nout; k++)
        map[i + 1 + k] = j == TG_NIL ? TG_NIL : j + 1 + (uint32_t)k;
    return r.nout;
}

/* One instruction of t onto u: verbatim (NONE) or through the recorder. */
static uint32_t
copy_inst(tg_tape *u, const tg_tape *t, uint32_t i, const uint32_t *map, tg_opt_level level)
{
    tg_opcode op = (tg_opcode)t->op[i];
    int ar = tape_op_arity[op];
    if (op == TG_OP_CONST)
        return tape_const(u, t->k[t->a[i]]);
    uint32_t a = map[t->a[i]], b = ar >= 2 ? map[t->b[i]] : 0, c = ar >= 3 ? map[t->c[i]] : 0;
    if (level == TG_OPT_NONE)
        return tape_append(u, (uint8_t)op, a, b, c);
    tape_opnd oa = tape_ref(a), ob = tape_ref(b);
    op = tape_opt_rewrite(u, op, &oa, &ob, level);
    return tape_rec(u, op, oa, ob, tape_ref(c));
}

static void
copy_blocks(tg_tape *u, const tg_tape *t, bool input, const uint32_t *map)
{
    uint32_t nb = input ? t->ninb : t->noutb;
    for (uint32_t bi = 0; bi < nb && u->status == TG_OK; bi++) {
        const tape_block *b = input ? &t->inb[bi] : &t->outb[bi];
        if (input) {
            tape_input_block(u, b->name, b->size);
            continue;
        }
        uint32_t *slots = tape_output_block(u, b->name, b->size);
        for (uint32_t j = 0; slots && j < b->size; j++)
            slots[j] = map[t->out_ref[b->offset + j]];
    }
}

/* The live part of t, rebuilt at `level` into a new tape (NULL: no memory). */
tg_tape *
tape_opt_dce(const tg_tape *t, tg_opt_level level)
{
    /* NONE copies verbatim: no folding or CSE may change what it keeps */
    tg_tape *u = tg_tape_new_ex(t->name, level == TG_OPT_NONE ? TG_NO_FOLD | TG_NO_CSE : 0);
    uint8_t *live = mem_malloc((size_t)t->n + 1);
    uint32_t *map = mem_malloc(((size_t)t->n + 1) * sizeof *map);
    if (!u || !live || !map) {
        tg_tape_free(u);
        u = NULL;
        goto out;
    }
    mark_live(t, live);
    copy_blocks(u, t, true, NULL);
    for (uint32_t k = 0; k < t->nin && u->status == TG_OK; k++)
        map[t->in_ref[k]] = u->in_ref[k];
    for (uint32_t i = 0; i < t->n && u->status == TG_OK; i++) {
        if (tape_is_x(t->op[i]))
            i += live[i] ? (uint32_t)copy_x(u, t, i, map, level)
                         : (uint32_t)tape_xrec_of(t, i)->nout;
        else if (live[i] && t->op[i] != TG_OP_INPUT)
            map[i] = copy_inst(u, t, i, map, level);
    }
    copy_blocks(u, t, false, map);
    u->flags = t->flags;
    u->limit = t->limit;
    if (u->status == TG_OK && !(u->flags & TG_NO_CSE))
        tape_cse_rebuild(u);    /* so that recording can go on sharing */
out:
    mem_free(live);
    mem_free(map);
    return u;
}

