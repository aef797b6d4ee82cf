/* tests/loopgen.h -- random loop bodies recorded two ways by one
 * generator: with their loops kept (tg_map, tg_scan) and flat (every loop
 * unrolled into scalar instructions), outer tapes around them, and the
 * 1e-13 comparison of results (test_loops_ad.c, test_loops_sparse.c). */
#ifndef TAPEGEN_LOOPGEN_H
#define TAPEGEN_LOOPGEN_H

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

TU_UNUSED static const tg_opcode unary[] = { TG_OP_SIN, TG_OP_COS, TG_OP_TANH, TG_OP_ATAN, TG_OP_SQRT,
                                   TG_OP_LOG, TG_OP_ABS, TG_OP_NEG, TG_OP_ASINH, TG_OP_CBRT,
                                   TG_OP_ERF, TG_OP_EXP };
TU_UNUSED static const tg_opcode binary[] = { TG_OP_ADD, TG_OP_SUB, TG_OP_MUL, TG_OP_DIV, TG_OP_MIN,
                                    TG_OP_MAX, TG_OP_HYPOT, TG_OP_ATAN2, TG_OP_MUL, TG_OP_ADD };

TU_UNUSED static void emit(const prog *p, tg_tape *t, const tg_var *in, tg_var *out, int flat);

/* Records loop L on t (flat: unrolled) -- the one generator of both. */
TU_UNUSED static void
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

TU_UNUSED static void
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
TU_UNUSED static int
loop_nout(const lspec *L)
{
    return (L->scan ? L->nc : 0) + L->count * L->ny;
}

TU_UNUSED static prog *
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

TU_UNUSED static void
prog_free(prog *p)
{
    for (int j = 0; j < p->nnodes; j++)
        free(p->node[j].ops);
    free(p);
}

/* Records L's body as a tape with its blocks (map: x, p -> y; scan: c, x,
 * p -> cn, y), its own loops kept. */
TU_UNUSED static void
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

TU_UNUSED static lspec *
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

TU_UNUSED static void
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

TU_UNUSED static tg_tape *
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

TU_UNUSED static outer
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
TU_UNUSED static int
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

TU_UNUSED static void
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

TU_UNUSED static double *
dalloc(size_t n)
{
    double *p = calloc(n + 1, sizeof *p);
    cr_assert(p);
    return p;
}

/* A point: moderate values, or with specials mixed in. */
TU_UNUSED static void
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

TU_UNUSED static void
outer_free(outer *o)
{
    free(o->ops);
    free(o->wts);
}

/* The checker a suite runs on one random outer tape around a loop. */
typedef void (*outer_check)(const outer *o, tu_rng *r, const char *name);

/* Loops with size-0 blocks: a map with no x (params only), with no
 * params, with count 0, a scan with no x and no y, with an empty carry,
 * with 0 steps. */
TU_UNUSED static void
each_size0_shape(tu_rng *r, outer_check check)
{
    static const int shapes[][6] = {
        /* scan, count, nc, nx, np, ny */
        { 0, 5, 0, 0, 2, 1 }, { 0, 6, 0, 2, 0, 2 }, { 1, 7, 2, 0, 1, 0 }, { 1, 4, 0, 1, 1, 1 },
        { 1, 0, 2, 1, 1, 1 }, { 0, 3, 0, 1, 1, 0 }, { 0, 0, 0, 2, 1, 1 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int *sh = shapes[s];
        lspec *L = random_loop(r, sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 6, NULL);
        outer o = random_outer(r, L, 4, 2);
        char name[64];
        snprintf(name, sizeof name, "size-0 shape %zu", s);
        check(&o, r, name);
        outer_free(&o);
        loop_free(L);
    }
}

/* Nested loops: a scan of a body holding a map, a map of a body holding a
 * scan, a scan in a scan in a map (three levels). */
TU_UNUSED static void
each_nesting(tu_rng *r, outer_check check)
{
    lspec *inner_map = random_loop(r, 0, 3, 0, 1, 1, 1, 5, NULL);
    lspec *scan_of_map = random_loop(r, 1, 7, 2, 1, 1, 1, 5, inner_map);
    outer o1 = random_outer(r, scan_of_map, 5, 2);
    check(&o1, r, "scan of a map");
    outer_free(&o1);

    lspec *inner_scan = random_loop(r, 1, 4, 2, 1, 1, 1, 5, NULL);
    lspec *map_of_scan = random_loop(r, 0, 6, 0, 2, 1, 1, 5, inner_scan);
    outer o2 = random_outer(r, map_of_scan, 5, 2);
    check(&o2, r, "map of a scan");
    outer_free(&o2);

    lspec *lvl3 = random_loop(r, 1, 5, 1, 1, 1, 1, 4, inner_scan);
    lspec *lvl2 = random_loop(r, 0, 4, 0, 1, 1, 1, 4, lvl3);
    outer o3 = random_outer(r, lvl2, 4, 2);
    check(&o3, r, "map of a scan of a scan");
    outer_free(&o3);

    loop_free(lvl2);
    loop_free(lvl3);
    loop_free(map_of_scan);
    loop_free(inner_scan);
    loop_free(scan_of_map);
    loop_free(inner_map);
}

/* Random maps: trial 0 has count 0, every fourth no x; up to maxcount
 * applications, 0-2 params, 1-2 ys per application. */
TU_UNUSED static void
random_map_trials(tu_rng *r, int trials, int maxcount, outer_check check)
{
    for (int trial = 0; trial < trials; trial++) {
        int nx = (int)tu_rng_below(r, 3) + (trial % 4 == 3 ? 0 : 1);
        int np = (int)tu_rng_below(r, 3), ny = 1 + (int)tu_rng_below(r, 2);
        int count = trial == 0 ? 0 : 1 + (int)tu_rng_below(r, (size_t)maxcount);
        lspec *L = random_loop(r, 0, count, 0, nx, np, ny, 4 + (int)tu_rng_below(r, 8), NULL);
        outer o = random_outer(r, L, 3 + (int)tu_rng_below(r, 5), 1 + (int)tu_rng_below(r, 3));
        char name[64];
        snprintf(name, sizeof name, "map trial %d (count %d, nx %d, np %d, ny %d)", trial, count,
                 nx, np, ny);
        check(&o, r, name);
        outer_free(&o);
        loop_free(L);
    }
}

/* Random scans: trials 0 and 1 have 0 and 1 steps, then up to
 * maxsteps + 1; 1-3 carries, 0-2 xs and params, 0-1 ys per step. */
TU_UNUSED static void
random_scan_trials(tu_rng *r, int trials, int maxsteps, outer_check check)
{
    for (int trial = 0; trial < trials; trial++) {
        int nc = 1 + (int)tu_rng_below(r, 3), nx = (int)tu_rng_below(r, 3);
        int np = (int)tu_rng_below(r, 3), ny = (int)tu_rng_below(r, 2);
        int steps = trial == 0 ? 0 : trial == 1 ? 1 : 2 + (int)tu_rng_below(r, (size_t)maxsteps);
        lspec *L = random_loop(r, 1, steps, nc, nx, np, ny, 4 + (int)tu_rng_below(r, 8), NULL);
        outer o = random_outer(r, L, 3 + (int)tu_rng_below(r, 4), 1 + (int)tu_rng_below(r, 3));
        char name[80];
        snprintf(name, sizeof name, "scan trial %d (steps %d, nc %d, nx %d, np %d, ny %d)", trial,
                 steps, nc, nx, np, ny);
        check(&o, r, name);
        outer_free(&o);
        loop_free(L);
    }
}

#endif
