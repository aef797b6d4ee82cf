/* tests/test_loops_ad.c -- numeric derivatives through loops (issue 11,
 * part 3).  Oracle: the same function recorded flat (every loop unrolled
 * into scalar instructions by the same generator), whose derivatives the
 * rest of the suite checks against central differences and analytic
 * formulas.  Every numeric path -- gradient, VJP, JVP, Jacobian (forward
 * and reverse sweeps), HVP, Hessian, batch gradients, the _wrt and _multi
 * calls, the _ws variants -- on the looped tape must agree with the flat
 * tape to 1e-13 relative (NaN with NaN, Inf with the same Inf), on random
 * bodies (maps and scans, nested loops, size-0 blocks, operands shared
 * between applications), at ordinary points and at points with +-0,
 * +-Inf and NaN, and for scans under every checkpoint budget from one
 * snapshot to store-all; and several threads calling on one tape get the
 * results of a single thread. */
#include <pthread.h>

#include "testutil.h"

/* ---------------------------------------------------------- random bodies */

enum { MAXN = 96, MAXOUT = 24 };

struct lspec;

/* A straight-line program over values 0..nin-1 (its inputs) and its own
 * results: node j computes vals[nin + j]; a NEST node runs a loop (its
 * outputs are appended to vals: carry_out, then ys). */
typedef struct pnode {
    int kind;               /* 1: unary, 2: binary, 3: binary with a literal, 4: nested loop */
    tg_opcode op;
    int a, b;
    double k;
    struct lspec *loop;
    int *ops;               /* NEST: carry_in, xs, params (indices into vals) */
} pnode;

typedef struct prog {
    int nin, nnodes, nvals;
    pnode node[MAXN];
    int nout;
    int out[MAXOUT];
    int squash[MAXOUT];     /* wrap the output in tanh (scan carries stay bounded) */
} prog;

typedef struct lspec {
    int scan;
    int count, nc, nx, np, ny;
    prog *body;
    tg_tape *tape;          /* the body recorded with its loops kept */
} lspec;

static const tg_opcode unary[] = { TG_OP_SIN, TG_OP_COS, TG_OP_TANH, TG_OP_ATAN, TG_OP_SQRT,
                                   TG_OP_LOG, TG_OP_ABS, TG_OP_NEG, TG_OP_ASINH, TG_OP_CBRT,
                                   TG_OP_ERF, TG_OP_EXP };
static const tg_opcode binary[] = { TG_OP_ADD, TG_OP_SUB, TG_OP_MUL, TG_OP_DIV, TG_OP_MIN,
                                    TG_OP_MAX, TG_OP_HYPOT, TG_OP_ATAN2, TG_OP_MUL, TG_OP_ADD };

static void emit(const prog *p, tg_tape *t, const tg_var *in, tg_var *out, int flat);

/* Records loop L on t (flat: unrolled) -- the one generator of both. */
static void
emit_loop(const lspec *L, tg_tape *t, const tg_var *cin, const tg_var *xs, const tg_var *ps,
          tg_var *cout, tg_var *ys, int flat)
{
    if (!flat) {
        if (L->scan)
            tg_scan(t, L->tape, (size_t)L->count, cin, xs, ps, cout, ys);
        else
            tg_map(t, L->tape, (size_t)L->count, xs, ps, ys);
        return;
    }
    tg_var in[MAXN], out[MAXOUT], c[MAXOUT];
    for (int q = 0; q < L->nc; q++)
        c[q] = cin[q];
    for (int j = 0; j < L->count; j++) {
        int m = 0;
        for (int q = 0; q < L->nc; q++)
            in[m++] = c[q];
        for (int q = 0; q < L->nx; q++)
            in[m++] = xs[j * L->nx + q];
        for (int q = 0; q < L->np; q++)
            in[m++] = ps[q];
        emit(L->body, t, in, out, 1);
        for (int q = 0; q < L->nc; q++)
            c[q] = out[q];
        for (int q = 0; q < L->ny; q++)
            ys[j * L->ny + q] = out[L->nc + q];
    }
    for (int q = 0; q < L->nc; q++)
        cout[q] = c[q];
}

static void
emit(const prog *p, tg_tape *t, const tg_var *in, tg_var *out, int flat)
{
    tg_var *vals = malloc((size_t)p->nvals * sizeof *vals);
    cr_assert(vals);
    for (int q = 0; q < p->nin; q++)
        vals[q] = in[q];
    int at = p->nin;
    for (int j = 0; j < p->nnodes; j++) {
        const pnode *n = &p->node[j];
        switch (n->kind) {
        case 1:
            vals[at++] = tg_op1(n->op, TG_OPND(vals[n->a]));
            break;
        case 2:
            vals[at++] = tg_op2(n->op, TG_OPND(vals[n->a]), TG_OPND(vals[n->b]));
            break;
        case 3:
            vals[at++] = tg_op2(n->op, TG_OPND(vals[n->a]), TG_OPND(n->k));
            break;
        default: {
            const lspec *L = n->loop;
            int nci = L->scan ? L->nc : 0, nxs = L->count * L->nx;
            tg_var cin[MAXOUT], *xs = malloc(((size_t)nxs + 1) * sizeof *xs), ps[MAXOUT];
            tg_var *ys = malloc(((size_t)L->count * L->ny + 1) * sizeof *ys);
            cr_assert(xs && ys);
            for (int q = 0; q < nci; q++)
                cin[q] = vals[n->ops[q]];
            for (int q = 0; q < nxs; q++)
                xs[q] = vals[n->ops[nci + q]];
            for (int q = 0; q < L->np; q++)
                ps[q] = vals[n->ops[nci + nxs + q]];
            emit_loop(L, t, cin, xs, ps, vals + at, ys, flat);
            at += nci;
            for (int q = 0; q < L->count * L->ny; q++)
                vals[at++] = ys[q];
            free(xs);
            free(ys);
            break;
        }
        }
    }
    for (int q = 0; q < p->nout; q++)
        out[q] = p->squash[q] ? tg_tanh(vals[p->out[q]]) : vals[p->out[q]];
    free(vals);
}

/* Outputs of a NEST node: carry_out and ys. */
static int
loop_nout(const lspec *L)
{
    return (L->scan ? L->nc : 0) + L->count * L->ny;
}

static prog *
random_prog(tu_rng *r, int nin, int nout, int nsquash, int nodes, lspec *nest)
{
    prog *p = calloc(1, sizeof *p);
    cr_assert(p);
    p->nin = nin;
    int nv = nin;
    for (int j = 0; j < nodes; j++) {
        pnode *n = &p->node[p->nnodes++];
        /* operands favour recent values, so chains are deep */
        int span = nv < 6 ? nv : 6;
        if (nv == 0) {
            n->kind = 4;        /* impossible below: nin + nodes keep nv > 0 */
        }
        n->a = nv - 1 - (int)tu_rng_below(r, (size_t)span);
        n->b = (int)tu_rng_below(r, (size_t)nv);
        switch (tu_rng_below(r, 3)) {
        case 0:
            n->kind = 1;
            n->op = unary[tu_rng_below(r, sizeof unary / sizeof *unary)];
            if (n->op == TG_OP_EXP) {   /* exp of an unbounded value: squash first */
                n->kind = 1;
                n->op = TG_OP_TANH;
            }
            break;
        case 1:
            n->kind = 2;
            n->op = binary[tu_rng_below(r, sizeof binary / sizeof *binary)];
            break;
        default:
            n->kind = 3;
            n->op = tu_rng_below(r, 2) ? TG_OP_MUL : TG_OP_ADD;
            n->k = tu_rng_range(r, -1.5, 1.5);
            break;
        }
        nv++;
    }
    if (nest) {
        pnode *n = &p->node[p->nnodes++];
        n->kind = 4;
        n->loop = nest;
        int nci = nest->scan ? nest->nc : 0;
        int nops = nci + nest->count * nest->nx + nest->np;
        n->ops = calloc((size_t)nops + 1, sizeof *n->ops);
        cr_assert(n->ops);
        for (int q = 0; q < nops; q++)
            n->ops[q] = (int)tu_rng_below(r, (size_t)nv);
        nv += loop_nout(nest);
    }
    p->nvals = nv;
    p->nout = nout;
    for (int q = 0; q < nout; q++) {
        /* the last values first: they depend on the most */
        p->out[q] = nv > nin ? nv - 1 - (int)tu_rng_below(r, (size_t)(nv - nin < 8 ? nv - nin : 8))
                             : (int)tu_rng_below(r, (size_t)nv);
        p->squash[q] = q < nsquash;
    }
    return p;
}

static void
prog_free(prog *p)
{
    for (int j = 0; j < p->nnodes; j++)
        free(p->node[j].ops);
    free(p);
}

/* Records L's body as a tape with its blocks (map: x, p -> y; scan: c, x,
 * p -> cn, y), its own loops kept. */
static void
build_body(lspec *L)
{
    /* no CSE here nor on the outer tapes: the flat recording would merge
     * equal work across applications (e.g. of params only), so adjoints
     * would meet in another order ((w1 + w2) p against w1 p + w2 p, which
     * differ for p = Inf, w1 = -w2) */
    tg_tape *b = tg_tape_new_ex("body", TG_NO_CSE);
    tg_var in[MAXN], out[MAXOUT];
    int m = 0;
    if (L->scan) {
        tg_input_vec(b, "c", (size_t)L->nc, in);
        m += L->nc;
    }
    tg_input_vec(b, "x", (size_t)L->nx, in + m);
    m += L->nx;
    tg_input_vec(b, "p", (size_t)L->np, in + m);
    emit(L->body, b, in, out, 0);
    if (L->scan)
        tg_output_vec(b, "cn", (size_t)L->nc, out);
    tg_output_vec(b, "y", (size_t)L->ny, out + (L->scan ? L->nc : 0));
    cr_assert_eq(tg_tape_status(b), TG_OK, "body: %s", tg_tape_error(b));
    L->tape = b;
}

static lspec *
random_loop(tu_rng *r, int scan, int count, int nc, int nx, int np, int ny, int nodes,
            lspec *nest)
{
    lspec *L = calloc(1, sizeof *L);
    cr_assert(L);
    L->scan = scan;
    L->count = count;
    L->nc = scan ? nc : 0;
    L->nx = nx;
    L->np = np;
    L->ny = ny;
    int nin = L->nc + nx + np, nout = L->nc + ny;
    if (nin == 0 && nodes > 0)
        nodes = 0;              /* nothing to compute from: outputs are inputs (none) */
    if (nin == 0 && nout > 0) {
        /* a body with no inputs: constants only */
        prog *p = calloc(1, sizeof *p);
        cr_assert(p);
        L->body = p;
        build_body(L);
        return L;
    }
    L->body = random_prog(r, nin, nout, L->nc, nodes, nest);
    build_body(L);
    return L;
}

static void
loop_free(lspec *L)
{
    if (!L)
        return;
    tg_tape_free(L->tape);
    prog_free(L->body);
    free(L);
}

/* ----------------------------------------------------------- outer tapes */

/* The outer function: inputs a[na], b[nb] (two blocks, for _wrt); the
 * loop's operands are drawn from them (with repeats); outputs either the
 * loop's outputs plus two mixed ones (vector) or one scalar mixing them
 * nonlinearly (scalar). */
typedef struct outer {
    lspec *L;
    int na, nb;
    int *ops;               /* carry_in, xs, params: indices into the inputs */
    double *wts;
} outer;

static tg_tape *
record_outer(const outer *o, int scalar, int flat)
{
    const lspec *L = o->L;
    tg_tape *t = tg_tape_new_ex(flat ? "flat" : "looped", TG_NO_CSE);
    int nin = o->na + o->nb;
    tg_var *x = malloc(((size_t)nin + 1) * sizeof *x);
    int nci = L->scan ? L->nc : 0, nxs = L->count * L->nx, ny = L->count * L->ny;
    tg_var *xs = malloc(((size_t)nxs + 1) * sizeof *xs), *ys = malloc(((size_t)ny + 1) * sizeof *ys);
    tg_var cin[MAXOUT], cout[MAXOUT], ps[MAXOUT];
    cr_assert(x && xs && ys);
    tg_input_vec(t, "a", (size_t)o->na, x);
    tg_input_vec(t, "b", (size_t)o->nb, x + o->na);
    /* operands through a cheap op sometimes, so not only INPUT refs */
    for (int q = 0; q < nci; q++)
        cin[q] = x[o->ops[q]];
    for (int q = 0; q < nxs; q++)
        xs[q] = q % 3 == 1 ? tg_mul(x[o->ops[nci + q]], 1.25) : x[o->ops[nci + q]];
    for (int q = 0; q < L->np; q++)
        ps[q] = x[o->ops[nci + nxs + q]];
    emit_loop(L, t, cin, xs, ps, cout, ys, flat);
    int nres = nci + ny;
    tg_var *res = malloc(((size_t)nres + 3) * sizeof *res);
    cr_assert(res);
    for (int q = 0; q < nci; q++)
        res[q] = cout[q];
    for (int q = 0; q < ny; q++)
        res[nci + q] = ys[q];
    if (scalar) {
        /* f = sum w_k r_k + 0.5 (sum u_k r_k)^2 + 0.01 sum x^2 + r_0 * x_0 */
        tg_var lin = tg_const(t, 0.0), quad = tg_const(t, 0.0);
        for (int q = 0; q < nres; q++) {
            lin = tg_add(lin, tg_mul(res[q], o->wts[q]));
            quad = tg_add(quad, tg_mul(res[q], o->wts[nres + q]));
        }
        tg_var f = tg_add(lin, tg_mul(0.5, tg_mul(quad, quad)));
        if (nin > 0)
            f = tg_add(f, tg_mul(0.01, tg_norm2sq((size_t)nin, x)));
        if (nin > 0 && nres > 0)
            f = tg_add(f, tg_mul(res[0], x[0]));
        tg_output(t, "f", f);
    } else {
        /* the loop's outputs, a product of two of them, and an input */
        int m = nres;
        if (nres >= 2)
            res[m++] = tg_mul(res[0], res[nres - 1]);
        if (nin > 0)
            res[m++] = tg_sin(x[nin - 1]);
        tg_output_vec(t, "y", (size_t)m, res);
    }
    cr_assert_eq(tg_tape_status(t), TG_OK, "outer: %s", tg_tape_error(t));
    /* the flat tape's oracle is its own sweeps: no lazily built (and
     * optimised) derivative tape after 32 calls */
    if (flat)
        cr_assert_eq(tg_tape_set_lazy(t, 0), TG_OK);
    free(x);
    free(xs);
    free(ys);
    free(res);
    return t;
}

static outer
random_outer(tu_rng *r, lspec *L, int na, int nb)
{
    outer o = { L, na, nb, NULL, NULL };
    int nin = na + nb;
    int nops = (L->scan ? L->nc : 0) + L->count * L->nx + L->np;
    o.ops = calloc((size_t)nops + 1, sizeof *o.ops);
    int nres = (L->scan ? L->nc : 0) + L->count * L->ny;
    o.wts = calloc(2 * (size_t)nres + 1, sizeof *o.wts);
    cr_assert(o.ops && o.wts);
    for (int q = 0; q < nops; q++)
        o.ops[q] = nin ? (int)tu_rng_below(r, (size_t)nin) : 0;
    for (int q = 0; q < 2 * nres; q++)
        o.wts[q] = tu_rng_range(r, -1.0, 1.0);
    return o;
}

/* ------------------------------------------------------------- comparing */

/* 1e-13 relative, an entry formed by cancellation relative to the largest
 * finite entry of its result (scale: normwise in the max norm): a loop's
 * contributions to a shared operand reach it in another order than the
 * flat tape's, so sums round differently */
static int
agree(double a, double b, double scale)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return 1;
    if (isinf(a) || isinf(b))
        return 0;
    return fabs(a - b) <= 1e-13 * fmax(fmax(fabs(a), fabs(b)), scale);
}

static void
same(const char *what, const char *ctx, const double *got, const double *want, size_t n)
{
    double scale = 0.0;
    for (size_t k = 0; k < n; k++)
        if (isfinite(want[k]))
            scale = fmax(scale, fabs(want[k]));
    for (size_t k = 0; k < n; k++)
        cr_assert(agree(got[k], want[k], scale), "%s [%s] entry %zu: looped %.17g, flat %.17g",
                  what, ctx, k, got[k], want[k]);
}

#define OK(call) cr_assert_eq((call), TG_OK, "%s: %s", #call, tg_last_error())

static double *
dalloc(size_t n)
{
    double *p = calloc(n + 1, sizeof *p);
    cr_assert(p);
    return p;
}

/* Every vector-output path on looped (tl) and flat (tf) tapes at x. */
static void
check_vector(const tg_tape *tl, const tg_tape *tf, const double *x, tu_rng *r, const char *ctx)
{
    size_t n = tg_num_inputs(tl), m = tg_num_outputs(tl);
    cr_assert_eq(n, tg_num_inputs(tf));
    cr_assert_eq(m, tg_num_outputs(tf));
    double *a = dalloc(n * m + n + m), *b = dalloc(n * m + n + m);
    double *u = dalloc(10 * (n + m)), *wv = dalloc(10 * (n + m));
    for (size_t k = 0; k < 10 * (n + m); k++) {
        u[k] = tu_rng_range(r, -1, 1);
        wv[k] = tu_rng_range(r, -1, 1);
    }
    OK(tg_eval(tl, x, a));
    OK(tg_eval(tf, x, b));
    same("eval", ctx, a, b, m);
    OK(tg_jacobian(tl, x, a));
    OK(tg_jacobian(tf, x, b));
    same("jacobian", ctx, a, b, n * m);
    OK(tg_jvp(tl, x, u, a));
    OK(tg_jvp(tf, x, u, b));
    same("jvp", ctx, a, b, m);
    OK(tg_vjp(tl, x, wv, a));
    OK(tg_vjp(tf, x, wv, b));
    same("vjp", ctx, a, b, n);
    for (int blk = 0; blk < 2; blk++) {
        size_t nw = tg_input_block_size(tl, (size_t)blk);
        OK(tg_jacobian_wrt(tl, blk, x, a));
        OK(tg_jacobian_wrt(tf, blk, x, b));
        same("jacobian_wrt", ctx, a, b, nw * m);
        OK(tg_jvp_wrt(tl, blk, x, u, a));
        OK(tg_jvp_wrt(tf, blk, x, u, b));
        same("jvp_wrt", ctx, a, b, m);
        OK(tg_vjp_wrt(tl, blk, x, wv, a));
        OK(tg_vjp_wrt(tf, blk, x, wv, b));
        same("vjp_wrt", ctx, a, b, nw);
    }
    double *A = dalloc(10 * (n + m)), *B = dalloc(10 * (n + m));
    OK(tg_jvp_multi(tl, TG_ALL, 10, x, u, A));
    OK(tg_jvp_multi(tf, TG_ALL, 10, x, u, B));
    same("jvp_multi", ctx, A, B, 10 * m);
    OK(tg_vjp_multi(tl, TG_ALL, 10, x, wv, A));
    OK(tg_vjp_multi(tf, TG_ALL, 10, x, wv, B));
    same("vjp_multi", ctx, A, B, 10 * n);
    /* the _ws variants in a workspace sized for the tape */
    tg_workspace *w = tg_workspace_new(tl);
    cr_assert(w);
    OK(tg_jacobian_ws(tl, w, x, a));
    OK(tg_jacobian(tf, x, b));
    same("jacobian_ws", ctx, a, b, n * m);
    tg_workspace_free(w);
    free(A);
    free(B);
    free(a);
    free(b);
    free(u);
    free(wv);
}

/* Every scalar-output path. */
static void
check_scalar(const tg_tape *tl, const tg_tape *tf, const double *x, tu_rng *r, const char *ctx)
{
    size_t n = tg_num_inputs(tl);
    double *a = dalloc(n * n + n), *b = dalloc(n * n + n), *u = dalloc(3 * n);
    for (size_t k = 0; k < 3 * n; k++)
        u[k] = tu_rng_range(r, -1, 1);
    OK(tg_eval(tl, x, a));
    OK(tg_eval(tf, x, b));
    same("eval", ctx, a, b, 1);
    OK(tg_gradient(tl, x, a));
    OK(tg_gradient(tf, x, b));
    same("gradient", ctx, a, b, n);
    double one = 0.75;
    OK(tg_vjp(tl, x, &one, a));
    OK(tg_vjp(tf, x, &one, b));
    same("vjp (scalar)", ctx, a, b, n);
    OK(tg_hvp(tl, x, u, a));
    OK(tg_hvp(tf, x, u, b));
    same("hvp", ctx, a, b, n);
    OK(tg_hessian(tl, x, a));
    OK(tg_hessian(tf, x, b));
    same("hessian", ctx, a, b, n * n);
    for (int blk = 0; blk < 2; blk++) {
        size_t nw = tg_input_block_size(tl, (size_t)blk);
        OK(tg_gradient_wrt(tl, blk, x, a));
        OK(tg_gradient_wrt(tf, blk, x, b));
        same("gradient_wrt", ctx, a, b, nw);
        OK(tg_hvp_wrt(tl, blk, x, u, a));
        OK(tg_hvp_wrt(tf, blk, x, u, b));
        same("hvp_wrt", ctx, a, b, nw);
        OK(tg_hessian_wrt(tl, blk, x, a));
        OK(tg_hessian_wrt(tf, blk, x, b));
        same("hessian_wrt", ctx, a, b, nw * nw);
    }
    OK(tg_hvp_multi(tl, TG_ALL, 3, x, u, a));
    OK(tg_hvp_multi(tf, TG_ALL, 3, x, u, b));
    same("hvp_multi", ctx, a, b, 3 * n);
    /* batches: 11 points (a chunk of 8 and 3 single points) */
    size_t np = 11;
    double *X = dalloc(np * n), *GA = dalloc(np * n), *GB = dalloc(np * n);
    for (size_t p = 0; p < np; p++)
        for (size_t k = 0; k < n; k++)
            X[p * n + k] = p == 0 ? x[k] : x[k] + 0.1 * tu_rng_range(r, -1, 1);
    OK(tg_gradient_batch(tl, np, X, GA));
    OK(tg_gradient_batch(tf, np, X, GB));
    for (size_t p = 0; p < np; p++) {
        OK(tg_gradient(tl, X + p * n, a));
        same("gradient_batch vs gradient (looped)", ctx, GA + p * n, a, n);
        OK(tg_gradient(tf, X + p * n, b));
        same("gradient_batch vs gradient (flat)", ctx, GB + p * n, b, n);
    }
    same("gradient_batch", ctx, GA, GB, np * n);
    OK(tg_eval_batch(tl, np, X, GA));
    OK(tg_eval_batch(tf, np, X, GB));
    same("eval_batch", ctx, GA, GB, np);
    /* _ws in a workspace sized for the tape */
    tg_workspace *w = tg_workspace_new(tl);
    cr_assert(w);
    OK(tg_gradient_ws(tl, w, x, a));
    OK(tg_gradient(tf, x, b));
    same("gradient_ws", ctx, a, b, n);
    OK(tg_hvp_ws(tl, w, x, u, a));
    OK(tg_hvp(tf, x, u, b));
    same("hvp_ws", ctx, a, b, n);
    OK(tg_hessian_ws(tl, w, x, a));
    OK(tg_hessian(tf, x, b));
    same("hessian_ws", ctx, a, b, n * n);
    tg_workspace_free(w);
    free(X);
    free(GA);
    free(GB);
    free(a);
    free(b);
    free(u);
}

/* A point: moderate values, or with specials mixed in. */
static void
point(tu_rng *r, size_t n, int specials, double *x)
{
    static const double sp[] = { 0.0, -0.0, INFINITY, -INFINITY, NAN };
    for (size_t k = 0; k < n; k++)
        x[k] = tu_rng_range(r, -1.2, 1.2);
    if (specials && n > 0) {
        size_t cnt = 1 + tu_rng_below(r, 2);
        for (size_t c = 0; c < cnt; c++)
            x[tu_rng_below(r, n)] = sp[tu_rng_below(r, sizeof sp / sizeof *sp)];
    }
}

/* Both tapes of an outer function, every path, several points; scans
 * under several checkpoint budgets. */
static void
check_outer(const outer *o, tu_rng *r, const char *name)
{
    size_t n = (size_t)(o->na + o->nb);
    double *x = dalloc(n);
    for (int scalar = 0; scalar < 2; scalar++) {
        tg_tape *tl = record_outer(o, scalar, 0), *tf = record_outer(o, scalar, 1);
        /* the loop stays one instruction: the looped tape does not grow
         * with count * |body| */
        if (o->L->count > 4 && tg_tape_size(o->L->tape) > 8)
            cr_assert_lt(tg_tape_size(tl), tg_tape_size(tf), "%s: looped tape not smaller", name);
        uint64_t steps = (uint64_t)o->L->count;
        size_t budgets[] = { 0, 1, 2, 3, (size_t)(steps / 2 + 1), (size_t)steps, (size_t)steps + 5 };
        size_t nb = o->L->scan ? sizeof budgets / sizeof *budgets : 1;
        for (size_t bi = 0; bi < nb; bi++) {
            OK(tg_tape_set_checkpoints(tl, budgets[bi]));
            for (int pt = 0; pt < 3; pt++) {
                char ctx[160];
                snprintf(ctx, sizeof ctx, "%s, %s, budget %zu, point %d%s", name,
                         scalar ? "scalar" : "vector", budgets[bi], pt, pt == 2 ? " (specials)" : "");
                point(r, n, pt == 2, x);
                if (scalar)
                    check_scalar(tl, tf, x, r, ctx);
                else
                    check_vector(tl, tf, x, r, ctx);
            }
        }
        tg_tape_free(tl);
        tg_tape_free(tf);
    }
    free(x);
}

static void
outer_free(outer *o)
{
    free(o->ops);
    free(o->wts);
}

/* ------------------------------------------------------------------ tests */

Test(loops_ad, random_maps)
{
    tu_rng r = { 11 };
    for (int trial = 0; trial < 12; trial++) {
        int nx = (int)tu_rng_below(&r, 3) + (trial % 4 == 3 ? 0 : 1);
        int np = (int)tu_rng_below(&r, 3), ny = 1 + (int)tu_rng_below(&r, 2);
        int count = trial == 0 ? 0 : 1 + (int)tu_rng_below(&r, 19);
        lspec *L = random_loop(&r, 0, count, 0, nx, np, ny, 4 + (int)tu_rng_below(&r, 8), NULL);
        outer o = random_outer(&r, L, 3 + (int)tu_rng_below(&r, 5), 1 + (int)tu_rng_below(&r, 3));
        char name[64];
        snprintf(name, sizeof name, "map trial %d (count %d, nx %d, np %d, ny %d)", trial, count,
                 nx, np, ny);
        check_outer(&o, &r, name);
        outer_free(&o);
        loop_free(L);
    }
}

/* Maps long enough for the wide chunks of the sweeps (64 applications per
 * body dispatch in values and adjoints, 8 and single ones for the rest, a
 * remainder as an overlapping full chunk): counts at and around the chunk
 * boundaries, params, ny > 1, specials (check_outer). */
Test(loops_ad, wide_maps)
{
    tu_rng r = { 29 };
    static const int counts[] = { 63, 64, 65, 80, 129, 1000 };
    for (int trial = 0; trial < 6; trial++) {
        int count = counts[trial];
        int nx = 1 + (int)tu_rng_below(&r, 2), np = (int)tu_rng_below(&r, 3);
        int ny = 1 + (int)tu_rng_below(&r, 2);
        lspec *L = random_loop(&r, 0, count, 0, nx, np, ny, 4 + (int)tu_rng_below(&r, 8), NULL);
        outer o = random_outer(&r, L, 3 + (int)tu_rng_below(&r, 3), 1 + (int)tu_rng_below(&r, 2));
        char name[64];
        snprintf(name, sizeof name, "wide map %d (count %d, nx %d, np %d, ny %d)", trial, count,
                 nx, np, ny);
        check_outer(&o, &r, name);
        outer_free(&o);
        loop_free(L);
    }
}

Test(loops_ad, random_scans)
{
    tu_rng r = { 23 };
    for (int trial = 0; trial < 10; trial++) {
        int nc = 1 + (int)tu_rng_below(&r, 3), nx = (int)tu_rng_below(&r, 3);
        int np = (int)tu_rng_below(&r, 3), ny = (int)tu_rng_below(&r, 2);
        int steps = trial == 0 ? 0 : trial == 1 ? 1 : 2 + (int)tu_rng_below(&r, 24);
        lspec *L = random_loop(&r, 1, steps, nc, nx, np, ny, 4 + (int)tu_rng_below(&r, 8), NULL);
        outer o = random_outer(&r, L, 3 + (int)tu_rng_below(&r, 4), 1 + (int)tu_rng_below(&r, 3));
        char name[80];
        snprintf(name, sizeof name, "scan trial %d (steps %d, nc %d, nx %d, np %d, ny %d)", trial,
                 steps, nc, nx, np, ny);
        check_outer(&o, &r, name);
        outer_free(&o);
        loop_free(L);
    }
}

Test(loops_ad, size_zero_blocks)
{
    tu_rng r = { 5 };
    /* map with no x (params only), map with no params, scan with no x and
     * no y, scan with an empty carry */
    int shapes[][6] = {
        /* scan, count, nc, nx, np, ny */
        { 0, 5, 0, 0, 2, 1 }, { 0, 6, 0, 2, 0, 2 }, { 1, 7, 2, 0, 1, 0 }, { 1, 4, 0, 1, 1, 1 },
        { 1, 0, 2, 1, 1, 1 }, { 0, 3, 0, 1, 1, 0 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int *sh = shapes[s];
        lspec *L = random_loop(&r, sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 6, NULL);
        outer o = random_outer(&r, L, 4, 2);
        char name[64];
        snprintf(name, sizeof name, "size-0 shape %zu", s);
        check_outer(&o, &r, name);
        outer_free(&o);
        loop_free(L);
    }
}

Test(loops_ad, nested_loops)
{
    tu_rng r = { 77 };
    /* scan of a body holding a map; map of a body holding a scan; a scan
     * in a scan in a map (three levels) */
    lspec *inner_map = random_loop(&r, 0, 3, 0, 1, 1, 1, 5, NULL);
    lspec *scan_of_map = random_loop(&r, 1, 9, 2, 1, 1, 1, 5, inner_map);
    outer o1 = random_outer(&r, scan_of_map, 5, 2);
    check_outer(&o1, &r, "scan of a map");
    outer_free(&o1);

    lspec *inner_scan = random_loop(&r, 1, 4, 2, 1, 1, 1, 5, NULL);
    lspec *map_of_scan = random_loop(&r, 0, 6, 0, 2, 1, 1, 5, inner_scan);
    outer o2 = random_outer(&r, map_of_scan, 5, 2);
    check_outer(&o2, &r, "map of a scan");
    outer_free(&o2);

    lspec *lvl3 = random_loop(&r, 1, 5, 1, 1, 1, 1, 4, inner_scan);
    lspec *lvl2 = random_loop(&r, 0, 4, 0, 1, 1, 1, 4, lvl3);
    outer o3 = random_outer(&r, lvl2, 4, 2);
    check_outer(&o3, &r, "map of a scan of a scan");
    outer_free(&o3);

    loop_free(lvl2);
    loop_free(lvl3);
    loop_free(map_of_scan);
    loop_free(inner_scan);
    loop_free(scan_of_map);
    loop_free(inner_map);
}

/* A long scan: a checkpointed gradient equals the store-all one and the
 * flat tape's, for budgets 1 .. store-all. */
Test(loops_ad, long_scan_budgets)
{
    tu_rng r = { 99 };
    lspec *L = random_loop(&r, 1, 300, 2, 1, 1, 1, 8, NULL);
    outer o = random_outer(&r, L, 5, 2);
    tg_tape *tl = record_outer(&o, 1, 0), *tf = record_outer(&o, 1, 1);
    size_t n = 7;
    double x[7], gl[7], gf[7], hl[49], hf[49];
    point(&r, n, 0, x);
    OK(tg_gradient(tf, x, gf));
    OK(tg_hessian(tf, x, hf));
    size_t budgets[] = { 1, 2, 3, 4, 7, 10, 17, 50, 299, 300, 1000, 0 };
    for (size_t bi = 0; bi < sizeof budgets / sizeof *budgets; bi++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "300 steps, budget %zu", budgets[bi]);
        OK(tg_tape_set_checkpoints(tl, budgets[bi]));
        OK(tg_gradient(tl, x, gl));
        same("gradient", ctx, gl, gf, n);
        OK(tg_hessian(tl, x, hl));
        same("hessian", ctx, hl, hf, n * n);
    }
    tg_tape_free(tl);
    tg_tape_free(tf);
    outer_free(&o);
    loop_free(L);
}

Test(loops_ad, checkpoint_option_errors)
{
    cr_assert_eq(tg_tape_set_checkpoints(NULL, 3), TG_ERR_ARG);
}

/* --------------------------------------------------------------- threads */

typedef struct job {
    const tg_tape *t;
    const double *x, *u, *g_ref, *h_ref;
    size_t n;
    int bad;
} job;

static void *
worker(void *arg)
{
    job *j = arg;
    double g[64], h[64];
    tg_workspace *w = tg_workspace_new(j->t);
    for (int it = 0; it < 20 && w; it++) {
        int use_ws = it % 2;
        tg_status s1 = use_ws ? tg_gradient_ws(j->t, w, j->x, g) : tg_gradient(j->t, j->x, g);
        tg_status s2 = use_ws ? tg_hvp_ws(j->t, w, j->x, j->u, h) : tg_hvp(j->t, j->x, j->u, h);
        if (s1 != TG_OK || s2 != TG_OK)
            j->bad = 1;
        for (size_t k = 0; k < j->n; k++)
            if (!agree(g[k], j->g_ref[k], 1.0) || !agree(h[k], j->h_ref[k], 1.0))
                j->bad = 1;
    }
    if (!w)
        j->bad = 1;
    tg_workspace_free(w);
    return NULL;
}

Test(loops_ad, threads_share_a_tape)
{
    tu_rng r = { 4242 };
    lspec *inner = random_loop(&r, 0, 5, 0, 1, 1, 1, 5, NULL);
    lspec *L = random_loop(&r, 1, 40, 2, 1, 1, 1, 6, inner);
    outer o = random_outer(&r, L, 6, 2);
    tg_tape *tl = record_outer(&o, 1, 0), *tf = record_outer(&o, 1, 1);
    OK(tg_tape_set_checkpoints(tl, 4));
    double x[8], u[8], g[8], h[8];
    point(&r, 8, 0, x);
    point(&r, 8, 0, u);
    OK(tg_gradient(tf, x, g));
    OK(tg_hvp(tf, x, u, h));
    enum { NT = 4 };
    pthread_t th[NT];
    job jobs[NT];
    for (int k = 0; k < NT; k++) {
        jobs[k] = (job){ tl, x, u, g, h, 8, 0 };
        cr_assert_eq(pthread_create(&th[k], NULL, worker, &jobs[k]), 0);
    }
    for (int k = 0; k < NT; k++) {
        pthread_join(th[k], NULL);
        cr_assert(!jobs[k].bad, "thread %d disagreed with the flat tape", k);
    }
    tg_tape_free(tl);
    tg_tape_free(tf);
    outer_free(&o);
    loop_free(L);
    loop_free(inner);
}

/* ------------------------------------------------- workspace sizing */

/* A workspace from tg_workspace_new(t) holds the loops' scratch too: no
 * _ws call on a looped tape allocates (the allocation funnel fails every
 * allocation after tg_workspace_new), for each checkpoint budget. */
#include "tape/alloc.h"

Test(loops_ad, workspace_covers_loops)
{
    tu_rng r = { 31337 };
    lspec *inner = random_loop(&r, 1, 3, 1, 1, 1, 1, 4, NULL);
    lspec *L = random_loop(&r, 1, 30, 2, 1, 1, 1, 6, inner);
    lspec *M = random_loop(&r, 0, 20, 0, 2, 1, 1, 6, NULL);
    lspec *loops[] = { L, M };
    for (int li = 0; li < 2; li++) {
        outer o = random_outer(&r, loops[li], 6, 2);
        tg_tape *ts = record_outer(&o, 1, 0), *tv = record_outer(&o, 0, 0);
        size_t n = tg_num_inputs(ts), m = tg_num_outputs(tv);
        double x[8], u[16], g[8], H[64], J[8 * 64], y[64], Wm[64];
        point(&r, n, 0, x);
        point(&r, n, 0, u);
        memcpy(u + n, u, n * sizeof *u);    /* tg_hvp_multi's second direction */
        for (size_t k = 0; k < m && k < 64; k++)
            Wm[k] = 0.5;
        size_t budgets[] = { 0, 1, 3, 30 };
        for (size_t bi = 0; bi < 4; bi++) {
            OK(tg_tape_set_checkpoints(ts, budgets[bi]));
            OK(tg_tape_set_checkpoints(tv, budgets[bi]));
            tg_workspace *ws = tg_workspace_new(ts), *wv = tg_workspace_new(tv);
            cr_assert(ws && wv);
            mem_fail_after(0);
            tg_status st[10] = {
                tg_gradient_ws(ts, ws, x, g), tg_hvp_ws(ts, ws, x, u, g),
                tg_hessian_ws(ts, ws, x, H), tg_vjp_ws(tv, wv, x, Wm, g),
                tg_jvp_ws(tv, wv, x, u, y), tg_jacobian_ws(tv, wv, x, J),
                tg_gradient_wrt_ws(ts, ws, 0, x, g), tg_hvp_multi_ws(ts, ws, TG_ALL, 2, x, u, H),
                tg_jvp_multi_ws(tv, wv, TG_ALL, 1, x, u, y), tg_vjp_multi_ws(tv, wv, TG_ALL, 1, x, Wm, g),
            };
            long made = mem_fail_after(-1);
            for (int k = 0; k < 10; k++)
                cr_assert_eq(st[k], TG_OK, "loop %d budget %zu call %d: %s", li, budgets[bi], k,
                             tg_last_error());
            cr_assert_eq(made, 0, "%ld allocations", made);
            tg_workspace_free(ws);
            tg_workspace_free(wv);
        }
        tg_tape_free(ts);
        tg_tape_free(tv);
        outer_free(&o);
    }
    loop_free(M);
    loop_free(L);
    loop_free(inner);
}
