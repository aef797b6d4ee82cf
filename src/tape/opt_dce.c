/* src/tape/opt_dce.c -- optimisation pass: the live part of a tape (what
 * the outputs depend on), copied into a new tape verbatim (level NONE:
 * dead-code elimination and compaction) or re-recorded through the
 * recorder (fold, CSE and the level's rewrites, opt_rewrite.c).  Inputs
 * are declared first, so the form is canonical. */
#include "tape/alloc.h"
#include "tape/opt.h"

/* live[]: what the outputs depend on.  A live loop gets its plan (the
 * outputs it keeps, opt_loops.c), which marks only the operands those need;
 * plans[] is indexed by the loop's record.  -1 when out of memory. */
static int
mark_live(const tg_tape *t, uint8_t *live, tape_xplan *plans)
{
    memset(live, 0, t->n);
    for (uint32_t j = 0; j < t->nout; j++)
        live[t->out_ref[j]] = 1;
    for (uint32_t g = 0; g < t->nguard; g++)     /* branch guards are roots */
        live[t->guard[g]] = 1;
    int rc = 0;
    for (uint32_t i = t->n; i-- > 0;) {
        if (!live[i])
            continue;
        if (t->op[i] == TG_OP_CALL) {   /* live when one of its XOUTs is */
            const tape_xrec *r = tape_xrec_of(t, i);
            const uint32_t *o = tape_xops(t, r);
            for (uint64_t k = 0; k < r->nops; k++)
                live[o[k]] = 1;
            continue;
        }
        if (tape_is_x(t->op[i])) {
            rc |= tape_xplan_make(t, i, live, &plans[t->a[i]]);
            continue;
        }
        int ar = tape_op_arity[t->op[i]];
        const uint32_t opnd[3] = { t->a[i], t->b[i], t->c[i] };
        for (int j = 0; j < ar; j++)
            live[opnd[j]] = 1;
    }
    return rc;
}

uint32_t
tape_opt_copy_call(tg_tape *u, const tg_tape *t, uint32_t i, uint32_t *map)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *o = tape_xops(t, r);
    uint32_t *ops = mem_malloc((size_t)(r->nops ? r->nops : 1) * sizeof *ops);
    uint32_t j = TG_NIL;
    if (!ops) {
        tape_fail(u, TG_ERR_NOMEM, "out of memory copying a CALL");
    } else {    /* the same function, in u's call table */
        for (uint64_t k = 0; k < r->nops; k++)
            ops[k] = map[o[k]];
        j = tape_rec_call(u, t->funcs, t->calls[r->body], ops);
    }
    mem_free(ops);
    map[i] = j;
    for (uint64_t k = 0; k < r->nout; k++)
        map[i + 1 + k] = j == TG_NIL ? TG_NIL : j + 1 + (uint32_t)k;
    return j;
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
tape_opt_dce(const tg_tape *t0, tg_opt_level level)
{
    tg_tape *merged = tape_opt_merge_loops(t0);
    const tg_tape *t = merged ? merged : t0;
    /* NONE copies verbatim: no folding or CSE may change what it keeps */
    tg_tape *u = tg_tape_new_ex(t->name, level == TG_OPT_NONE ? TG_NO_FOLD | TG_NO_CSE : 0);
    uint8_t *live = mem_malloc((size_t)t->n + 1);
    uint32_t *map = mem_malloc(((size_t)t->n + 1) * sizeof *map);
    tape_xplan *plans = mem_calloc((size_t)t->nxr + 1, sizeof *plans);
    if (!u || !live || !map || !plans || mark_live(t, live, plans)) {
        tg_tape_free(u);
        u = NULL;
        goto out;
    }
    copy_blocks(u, t, true, NULL);
    for (uint32_t k = 0; k < t->nin && u->status == TG_OK; k++)
        map[t->in_ref[k]] = u->in_ref[k];
    for (uint32_t i = 0; i < t->n && u->status == TG_OK; i++) {
        uint8_t op = t->op[i];
        if (!live[i] || op == TG_OP_INPUT || op == TG_OP_XOUT)   /* XOUTs: at their loop */
            continue;
        if (op == TG_OP_CALL)
            tape_opt_copy_call(u, t, i, map);
        else if (tape_is_x(op))
            map[i] = tape_xplan_apply(u, t, i, &plans[t->a[i]], map, level);
        else
            map[i] = copy_inst(u, t, i, map, level);
    }
    copy_blocks(u, t, false, map);
    u->flags = t->flags;
    u->limit = t->limit;
    if (u->status == TG_OK && !(u->flags & TG_NO_CSE))
        tape_cse_rebuild(u);    /* so that recording can go on sharing */
out:
    for (uint32_t r = 0; plans && r < t->nxr; r++)
        tape_xplan_free(&plans[r]);
    mem_free(plans);
    mem_free(live);
    mem_free(map);
    tg_tape_free(merged);
    return u;
}

