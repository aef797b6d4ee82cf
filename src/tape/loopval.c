/* src/tape/loopval.c -- recording at a point (values.c) through loops: the
 * values of a new loop's outputs when all its operands have values, so
 * that tg_value and tg_branch work after tg_map / tg_scan.
 *
 * The body is evaluated one application (map) or step (scan) at a time
 * with the interpreter's semantics per instruction (tape_eval_op, the code
 * the folder, the recorder's values and tg_eval's op table share), so the
 * values are those tg_eval gives for the finished tape, bit for bit.  The
 * tape layer cannot call the numeric sweeps of src/ad (layers point one
 * way): this is the plain one-point loop over a body's columns, nested
 * loops by C recursion bounded by the nesting depth (<= TAPE_MAX_DEPTH).
 *
 * A guard of the body (at any depth) that decides the other way at this
 * point means the body was recorded on the other side of a branch than
 * this application takes: the tape would fail tg_eval at its own
 * recording point, so recording fails with TG_ERR_BRANCH. */
#include <inttypes.h>

#include "tape/alloc.h"
#include "tape/mathx.h"
#include "internal.h"

/* Where a body guard failed: the loop instruction of the outermost level
 * and its application / step (the first one). */
typedef struct lv_fail {
    uint64_t j;
    int failed;
} lv_fail;

static int eval_loop(const tg_tape *t, uint32_t i, const double *v, double *out, lv_fail *f);

/* Values v[0..n) of body b at inputs in.  0, 1 when a guard of b (or of
 * a loop inside it) decides the other way, -1 out of memory. */
static int
eval_body(const tg_tape *b, const double *in, double *v)
{
    int bad = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        tg_opcode op = (tg_opcode)b->op[i];
        int ar = tape_op_arity[op];
        switch (op) {
        case TG_OP_CONST:
            v[i] = b->k[b->a[i]];
            break;
        case TG_OP_INPUT:
            v[i] = in[b->a[i]];
            break;
        case TG_OP_XOUT:        /* written by its loop */
            break;
        case TG_OP_MAP:
        case TG_OP_SCAN: {
            lv_fail f = { 0, 0 };
            v[i] = 0.0;
            if (eval_loop(b, i, v, v + i + 1, &f))
                return -1;
            bad |= f.failed;
            break;
        }
        default:                /* CALL cannot be in a body (loop.c) */
            v[i] = tape_eval_op(op, v[b->a[i]], ar >= 2 ? v[b->b[i]] : 0.0,
                                ar >= 3 ? v[b->c[i]] : 0.0);
            break;
        }
    }
    for (uint32_t g = 0; g < b->nguard && !bad; g++)
        bad = v[b->guard[g]] != 1.0;
    return bad;
}

/* The outputs out[0..nout) of loop instruction i of t from the values v
 * of its operands.  0 or -1 (out of memory); f: the first application /
 * step whose body guards failed. */
static int
eval_loop(const tg_tape *t, uint32_t i, const double *v, double *out, lv_fail *f)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    const tg_tape *b = tape_body_of(t, r);
    const uint32_t *o = tape_xops(t, r);
    const bool scan = r->kind == TG_OP_SCAN;
    const uint32_t nc = scan ? r->nc : 0, nx = r->nx, ny = r->ny;
    const uint32_t *xs = o + nc, *ps = xs + r->count * nx;
    double *in = mem_malloc(((size_t)b->nin + b->n + 1) * sizeof *in);
    if (!in)
        return -1;
    double *bv = in + b->nin;
    for (uint32_t q = 0; q < nc; q++)
        in[q] = v[o[q]];
    for (uint32_t q = 0; q < r->np; q++)
        in[nc + nx + q] = v[ps[q]];
    double *y = out + nc;
    int rc = 0;
    for (uint64_t k = 0; k < r->count && rc >= 0; k++) {
        for (uint32_t q = 0; q < nx; q++)
            in[nc + q] = v[xs[k * nx + q]];
        rc = eval_body(b, in, bv);
        if (rc > 0 && !f->failed)
            *f = (lv_fail){ k, 1 };
        for (uint32_t q = 0; q < nc; q++)
            in[q] = bv[b->out_ref[q]];
        for (uint32_t q = 0; q < ny; q++)
            y[k * ny + q] = bv[b->out_ref[nc + q]];
    }
    for (uint32_t q = 0; q < nc; q++)
        out[q] = in[q];
    mem_free(in);
    return rc < 0 ? -1 : 0;
}

void
tape_val_loop(tg_tape *t, uint32_t i)
{
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *o = tape_xops(t, r);
    for (uint64_t q = 0; q < r->nops; q++)
        if (!tape_has_val(t->val[o[q]]))
            return;             /* an operand without value: the outputs have none */
    lv_fail f = { 0, 0 };
    if (eval_loop(t, i, t->val, t->val + i + 1, &f)) {
        for (uint64_t q = 0; q < r->nout; q++)
            t->val[i + 1 + q] = tape_noval();
        tape_fail(t, TG_ERR_NOMEM, "out of memory for the values of a loop of \"%s\"", t->name);
        return;
    }
    t->val[i] = 0.0;
    if (f.failed) {
        bool map = r->kind == TG_OP_MAP;
        tape_fail(t, TG_ERR_BRANCH, "%s: a branch guard in the body \"%s\" decides the other way "
                  "at %s %" PRIu64 " (of %" PRIu64 ") at the recording point: record the body on "
                  "the side this %s takes", map ? "tg_map" : "tg_scan",
                  tape_body_of(t, r)->name, map ? "application" : "step", f.j, r->count,
                  map ? "application" : "step");
    }
}
