/* tests/test_scan_kept.c -- the scan reverse from what the gradient's
 * forward sweep kept (src/ad/xsweep.c, "kept"): in store-all mode the
 * stored-partials forward sweep keeps each step's body partials (a body
 * without loops) or the carries (a body with loops, or partials beyond the
 * 8 MiB budget), and the reverse runs from them instead of the schedule.
 * Oracles: the same tape under a budget that checkpoints (revolve: no
 * record; the same steps in the same order, so the same bits, +-0 and NaN
 * positions included) and the flat (unrolled) recording of the same
 * function (1e-13 relative, the same NaN/Inf pattern).  Budgets 1, 2,
 * steps-1, steps, more than steps and automatic; steps 0 and 1; a scan in
 * a map and a scan in a scan; threads on one tape; out of memory. */
#include <pthread.h>

#include "testutil.h"
#include "tape/alloc.h"

enum { NN = 14, NU = 6 };

/* A straight-line program: inputs 0..nin-1, node j -> value nin + j.  A
 * node of kind 7 runs the inner scan (3 steps, carry vals[a], param
 * vals[b]) when the program has one. */
typedef struct prog {
    int nin, nout, nc;
    int kind[NN], a[NN], b[NN];
    int out[8];
    struct prog *inner;
    tg_tape *inner_tape;
} prog;

static void emit(const prog *p, const tg_var *in, tg_var *out, int flat);

static tg_var
node(const prog *p, int j, const tg_var *v, int flat)
{
    tg_var A = v[p->a[j]], B = v[p->b[j]];
    switch (p->kind[j]) {
    case 0: return tg_add(A, B);
    case 1: return tg_sub(A, B);
    case 2: return tg_mul(A, B);
    case 3: return tg_div(A, tg_add(B, 1.5));
    case 4: return tg_sin(A);
    case 5: return tg_tanh(tg_mul(A, 0.8));
    case 6: return tg_sqrt(A);          /* NaN for negatives: specials flow */
    default: break;
    }
    /* the inner scan */
    tg_var c = A;
    if (flat) {
        for (int k = 0; k < 3; k++) {
            tg_var in2[2] = { c, B }, o2;
            emit(p->inner, in2, &o2, 1);
            c = o2;
        }
        return c;
    }
    tg_var co;
    tg_scan(A.tape, p->inner_tape, 3, &c, NULL, &B, &co, NULL);
    return co;
}

static void
emit(const prog *p, const tg_var *in, tg_var *out, int flat)
{
    tg_var v[NN + 16];
    for (int q = 0; q < p->nin; q++)
        v[q] = in[q];
    for (int j = 0; j < NN; j++)
        v[p->nin + j] = node(p, j, v, flat);
    for (int q = 0; q < p->nout; q++)      /* carries squashed: bounded over steps */
        out[q] = q < p->nc ? tg_tanh(v[p->out[q]]) : v[p->out[q]];
}

/* A body with blocks c[nc], x[nx], p[np] -> cn[nc], y[ny]. */
static tg_tape *
record_body(const prog *p, int nc, int nx, int np, int ny)
{
    tg_tape *t = tg_tape_new_ex("body", TG_NO_CSE);
    tg_var in[16], out[8];
    tg_input_vec(t, "c", (size_t)nc, in);
    tg_input_vec(t, "x", (size_t)nx, in + nc);
    tg_input_vec(t, "p", (size_t)np, in + nc + nx);
    emit(p, in, out, 0);
    tg_output_vec(t, "cn", (size_t)nc, out);
    tg_output_vec(t, "y", (size_t)ny, out + nc);
    cr_assert_eq(tg_tape_status(t), TG_OK, "%s", tg_tape_error(t));
    return t;
}

static prog *
random_prog(tu_rng *r, int nin, int nout, int nc, int nested)
{
    prog *p = calloc(1, sizeof *p);
    cr_assert(p);
    p->nin = nin;
    p->nout = nout;
    p->nc = nc;
    for (int j = 0; j < NN; j++) {
        int nv = nin + j;
        p->kind[j] = (int)tu_rng_below(r, 7);
        p->a[j] = nv ? (int)tu_rng_below(r, (size_t)nv) : 0;
        p->b[j] = nv ? (int)tu_rng_below(r, (size_t)nv) : 0;
        /* values late in the program, so most of it is live */
        if (nv > 2 && tu_rng_below(r, 2))
            p->a[j] = nv - 1;
    }
    if (nested) {
        p->inner = random_prog(r, 2, 1, 1, 0);
        p->inner_tape = record_body(p->inner, 1, 0, 1, 0);
        p->kind[NN / 2] = 7;
    }
    for (int q = 0; q < nout; q++)
        p->out[q] = nin + NN - 1 - (int)tu_rng_below(r, 5);
    return p;
}

static void
prog_free(prog *p)
{
    if (!p)
        return;
    prog_free(p->inner);
    tg_tape_free(p->inner_tape);
    free(p);
}

/* One scan of a body program over `steps` steps on inputs u[NU] (operand
 * choices from the seed), a scalar output mixing carry_out and ys. */
typedef struct scase {
    prog *p;
    tg_tape *body;
    int steps, nc, nx, np, ny;
    int ci[4], xi[4], pi[4];
} scase;

static tg_tape *
record_outer(const scase *s, int flat)
{
    tg_tape *t = tg_tape_new_ex(flat ? "flat" : "looped", TG_NO_CSE);
    tg_var u[NU];
    tg_input_vec(t, "u", NU, u);
    tg_input_vec(t, "p", 0, NULL);     /* so that it may serve as a map's body */
    int nc = s->nc, nx = s->nx, np = s->np, ny = s->ny, n = s->steps;
    tg_var cin[4], par[4], cout[4];
    tg_var *xs = calloc((size_t)n * 4 + 1, sizeof *xs), *ys = calloc((size_t)n * 4 + 1, sizeof *ys);
    cr_assert(xs && ys);
    for (int q = 0; q < nc; q++)
        cin[q] = u[s->ci[q]];
    for (int q = 0; q < np; q++)
        par[q] = u[s->pi[q]];          /* repeats: operands shared with the carry */
    for (int k = 0; k < n; k++)
        for (int q = 0; q < nx; q++)
            xs[k * nx + q] = k % 3 == 0 ? u[s->xi[q]] : tg_mul(u[s->xi[q]], 0.01 * k);
    if (flat) {
        for (int q = 0; q < nc; q++)
            cout[q] = cin[q];
        for (int k = 0; k < n; k++) {
            tg_var in[16], out[8];
            for (int q = 0; q < nc; q++)
                in[q] = cout[q];
            for (int q = 0; q < nx; q++)
                in[nc + q] = xs[k * nx + q];
            for (int q = 0; q < np; q++)
                in[nc + nx + q] = par[q];
            emit(s->p, in, out, 1);
            for (int q = 0; q < nc; q++)
                cout[q] = out[q];
            for (int q = 0; q < ny; q++)
                ys[k * ny + q] = out[nc + q];
        }
    } else {
        tg_scan(t, s->body, (size_t)n, cin, xs, par, cout, ys);
    }
    tg_var f = tg_mul(u[0], 0.25);
    for (int q = 0; q < nc; q++)
        f = tg_add(f, tg_mul(tg_sin(cout[q]), 1.0 + q));
    for (int k = 0; k < n * ny; k++)
        f = tg_add(f, tg_mul(ys[k], 0.5 - 0.01 * k));
    tg_output(t, "f", f);
    free(xs);
    free(ys);
    cr_assert_eq(tg_tape_status(t), TG_OK, "%s", tg_tape_error(t));
    return t;
}

/* nx < 0: drawn at random */
static scase
random_case(tu_rng *r, int steps, int nested, int nx)
{
    scase s = { 0 };
    s.steps = steps;
    s.nc = 1 + (int)tu_rng_below(r, 3);
    s.nx = nx >= 0 ? nx : (int)tu_rng_below(r, 3);
    s.np = (int)tu_rng_below(r, 3);
    s.ny = (int)tu_rng_below(r, 3);
    for (int q = 0; q < 4; q++) {
        s.ci[q] = (int)tu_rng_below(r, NU);
        s.xi[q] = (int)tu_rng_below(r, NU);
        s.pi[q] = (int)tu_rng_below(r, NU);
    }
    s.p = random_prog(r, s.nc + s.nx + s.np, s.nc + s.ny, s.nc, nested);
    s.body = record_body(s.p, s.nc, s.nx, s.np, s.ny);
    return s;
}

static void
case_free(scase *s)
{
    tg_tape_free(s->body);
    prog_free(s->p);
}

/* ------------------------------------------------------------- comparing */

static void
point(tu_rng *r, int specials, double *x)
{
    static const double sp[] = { 0.0, -0.0, INFINITY, -INFINITY, NAN };
    for (int k = 0; k < NU; k++)
        x[k] = tu_rng_range(r, -1.2, 1.2);
    if (specials)
        x[tu_rng_below(r, NU)] = sp[tu_rng_below(r, 5)];
}

#define OK(call) cr_assert_eq((call), TG_OK, "%s: %s", #call, tg_last_error())

/* flat vs looped: 1e-13 relative to the largest finite entry, the same
 * NaN and Inf pattern */
static void
near_flat(const char *what, const char *ctx, const double *got, const double *want, size_t n)
{
    double scale = 0.0;
    for (size_t k = 0; k < n; k++)
        if (isfinite(want[k]))
            scale = fmax(scale, fabs(want[k]));
    for (size_t k = 0; k < n; k++) {
        double a = got[k], b = want[k];
        int ok = isnan(a) || isnan(b) ? isnan(a) && isnan(b)
               : a == b                ? 1
               : isinf(a) || isinf(b)  ? 0
                                       : fabs(a - b) <= 1e-13 * fmax(fmax(fabs(a), fabs(b)), scale);
        cr_assert(ok, "%s [%s] entry %zu: looped %.17g, flat %.17g", what, ctx, k, a, b);
    }
}

static void
same_bits(const char *what, const char *ctx, const double *got, const double *want, size_t n)
{
    for (size_t k = 0; k < n; k++)
        cr_assert(tu_same_bits_nan(got[k], want[k]),
                  "%s [%s] entry %zu: kept %.17g (%a), checkpointed %.17g (%a)", what, ctx, k,
                  got[k], got[k], want[k], want[k]);
}

/* The first-order and second-order paths of tl at x under budget b. */
typedef struct results {
    double g[NU], vjp[NU], gws[NU], hv[NU], H[NU * NU];
} results;

static void
run_all(tg_tape *tl, size_t budget, const double *x, const double *u, results *o)
{
    OK(tg_tape_set_checkpoints(tl, budget));
    OK(tg_gradient(tl, x, o->g));
    double w = -0.75;
    OK(tg_vjp(tl, x, &w, o->vjp));
    tg_workspace *ws = tg_workspace_new(tl);
    cr_assert(ws);
    OK(tg_gradient_ws(tl, ws, x, o->gws));
    tg_workspace_free(ws);
    OK(tg_hvp(tl, x, u, o->hv));
    OK(tg_hessian(tl, x, o->H));
}

static void
compare_case(const scase *s, tu_rng *r, const char *name)
{
    tg_tape *tl = record_outer(s, 0), *tf = record_outer(s, 1);
    tg_tape_set_lazy(tl, 0);
    tg_tape_set_lazy(tf, 0);
    size_t n = (size_t)s->steps;
    size_t budgets[] = { 1, 2, n > 1 ? n - 1 : 1, n, n + 5, 0 };
    for (int pt = 0; pt < 4; pt++) {
        double x[NU], u[NU];
        point(r, pt >= 2, x);
        point(r, 0, u);
        results ref, got, fl;
        /* the reference: budget 1 checkpoints every scan of 2 steps or more */
        run_all(tl, 1, x, u, &ref);
        OK(tg_gradient(tf, x, fl.g));
        double w = -0.75;
        OK(tg_vjp(tf, x, &w, fl.vjp));
        OK(tg_hvp(tf, x, u, fl.hv));
        OK(tg_hessian(tf, x, fl.H));
        for (size_t bi = 0; bi < sizeof budgets / sizeof *budgets; bi++) {
            char ctx[160];
            snprintf(ctx, sizeof ctx, "%s, budget %zu, point %d", name, budgets[bi], pt);
            run_all(tl, budgets[bi], x, u, &got);
            same_bits("gradient", ctx, got.g, ref.g, NU);
            same_bits("vjp", ctx, got.vjp, ref.vjp, NU);
            same_bits("gradient_ws", ctx, got.gws, ref.g, NU);
            same_bits("hvp", ctx, got.hv, ref.hv, NU);
            same_bits("hessian", ctx, got.H, ref.H, NU * NU);
            near_flat("gradient", ctx, got.g, fl.g, NU);
            near_flat("vjp", ctx, got.vjp, fl.vjp, NU);
            near_flat("hvp", ctx, got.hv, fl.hv, NU);
            near_flat("hessian", ctx, got.H, fl.H, NU * NU);
        }
    }
    tg_tape_free(tl);
    tg_tape_free(tf);
}

/* ------------------------------------------------------------------ tests */

Test(scan_kept, kept_partials_vs_checkpoints_vs_flat)
{
    tu_rng r = { 4242 };
    int steps[] = { 0, 1, 2, 3, 5, 17, 40 };
    for (size_t si = 0; si < sizeof steps / sizeof *steps; si++)
        for (int trial = 0; trial < 3; trial++) {
            scase s = random_case(&r, steps[si], 0, -1);
            char name[96];
            snprintf(name, sizeof name, "steps %d trial %d (nc %d nx %d np %d ny %d)", steps[si],
                     trial, s.nc, s.nx, s.np, s.ny);
            compare_case(&s, &r, name);
            case_free(&s);
        }
}

/* A body holding a scan: the outer scan keeps its carries, the inner scan
 * its partials inside each step of the outer reverse. */
Test(scan_kept, scan_in_scan)
{
    tu_rng r = { 977 };
    int steps[] = { 0, 1, 2, 9 };
    for (size_t si = 0; si < sizeof steps / sizeof *steps; si++)
        for (int trial = 0; trial < 2; trial++) {
            scase s = random_case(&r, steps[si], 1, -1);
            char name[96];
            snprintf(name, sizeof name, "nested, steps %d trial %d", steps[si], trial);
            compare_case(&s, &r, name);
            case_free(&s);
        }
}

/* A map whose body holds a scan: each application's body forward sweep
 * keeps the scan's partials for the body's reverse. */
Test(scan_kept, scan_in_map)
{
    tu_rng r = { 31 };
    for (int trial = 0; trial < 3; trial++) {
        scase s = random_case(&r, 4 + trial, 0, -1);
        /* the map's body: x[NU] -> the scalar of record_outer, over 5 rows */
        tg_tape *mb = record_outer(&s, 0);
        tg_tape *tl = tg_tape_new_ex("map", TG_NO_CSE), *tf = tg_tape_new_ex("mapflat", TG_NO_CSE);
        tg_tape *fb = record_outer(&s, 1);
        tg_var ul[NU], uf[NU], xl[5 * NU], yl[5], yf[5];
        tg_input_vec(tl, "u", NU, ul);
        tg_input_vec(tf, "u", NU, uf);
        for (int j = 0; j < 5; j++)
            for (int q = 0; q < NU; q++)
                xl[j * NU + q] = tg_mul(ul[q], 1.0 - 0.1 * j);
        tg_map(tl, mb, 5, xl, NULL, yl);
        tg_output(tl, "f", tg_sum(5, yl));
        for (int j = 0; j < 5; j++) {
            tg_var xj[NU];
            for (int q = 0; q < NU; q++)
                xj[q] = tg_mul(uf[q], 1.0 - 0.1 * j);
            tg_call(tf, fb, xj, &yf[j]);
        }
        tg_output(tf, "f", tg_sum(5, yf));
        cr_assert_eq(tg_tape_status(tl), TG_OK, "%s", tg_tape_error(tl));
        cr_assert_eq(tg_tape_status(tf), TG_OK, "%s", tg_tape_error(tf));
        tg_tape_set_lazy(tl, 0);
        for (int pt = 0; pt < 3; pt++) {
            double x[NU], u[NU], gl[NU], gf[NU], g1[NU], hl[NU], hf[NU];
            point(&r, pt == 2, x);
            point(&r, 0, u);
            OK(tg_tape_set_checkpoints(tl, 1));
            OK(tg_gradient(tl, x, g1));
            OK(tg_tape_set_checkpoints(tl, 0));
            OK(tg_gradient(tl, x, gl));
            OK(tg_gradient(tf, x, gf));
            OK(tg_hvp(tl, x, u, hl));
            OK(tg_hvp(tf, x, u, hf));
            char ctx[64];
            snprintf(ctx, sizeof ctx, "scan in map, trial %d point %d", trial, pt);
            same_bits("gradient", ctx, gl, g1, NU);
            near_flat("gradient", ctx, gl, gf, NU);
            near_flat("hvp", ctx, hl, hf, NU);
        }
        tg_tape_free(tl);
        tg_tape_free(tf);
        tg_tape_free(mb);
        tg_tape_free(fb);
        case_free(&s);
    }
}

/* Partials beyond the 8 MiB budget of a call: the carries are kept. */
Test(scan_kept, long_scan_keeps_carries, .timeout = 120)
{
    tu_rng r = { 5150 };
    /* 45000 * 2 * |body| > 2^20 doubles; xs that differ at every step keep
     * the carries from settling on a fixed point */
    scase s = random_case(&r, 45000, 0, 2);
    tg_tape *tl = record_outer(&s, 0), *tf = record_outer(&s, 1);
    tg_tape_set_lazy(tl, 0);
    tg_tape_set_lazy(tf, 0);
    double x[NU], g[NU], gc[NU], gf[NU];
    point(&r, 0, x);
    OK(tg_gradient(tf, x, gf));
    OK(tg_tape_set_checkpoints(tl, 50));
    OK(tg_gradient(tl, x, gc));
    OK(tg_tape_set_checkpoints(tl, 0));
    OK(tg_gradient(tl, x, g));
    same_bits("gradient", "45000 steps", g, gc, NU);
    near_flat("gradient", "45000 steps", g, gf, NU);
    tg_tape_free(tl);
    tg_tape_free(tf);
    case_free(&s);
}

typedef struct job {
    const tg_tape *t;
    const double *x, *want;
    int bad;
} job;

static void *
worker(void *arg)
{
    job *j = arg;
    double g[NU];
    for (int rep = 0; rep < 50; rep++) {
        if (tg_gradient(j->t, j->x, g) != TG_OK)
            j->bad = 1;
        for (int k = 0; k < NU; k++)
            if (!tu_same_bits_nan(g[k], j->want[k]))
                j->bad = 1;
    }
    return NULL;
}

Test(scan_kept, threads_share_a_tape)
{
    tu_rng r = { 808 };
    scase s = random_case(&r, 60, 0, -1);
    tg_tape *tl = record_outer(&s, 0);
    tg_tape_set_lazy(tl, 0);
    double x[NU], want[NU];
    point(&r, 0, x);
    OK(tg_gradient(tl, x, want));
    enum { NT = 4 };
    pthread_t th[NT];
    job jobs[NT];
    for (int k = 0; k < NT; k++) {
        jobs[k] = (job){ tl, x, want, 0 };
        cr_assert_eq(pthread_create(&th[k], NULL, worker, &jobs[k]), 0);
    }
    for (int k = 0; k < NT; k++) {
        pthread_join(th[k], NULL);
        cr_assert(!jobs[k].bad, "thread %d disagreed", k);
    }
    tg_tape_free(tl);
    case_free(&s);
}

/* Every allocation of a first gradient failing in turn: TG_OK with the
 * same bits, or TG_ERR_NOMEM with a message; never a crash. */
Test(scan_kept, out_of_memory)
{
    tu_rng r = { 99 };
    for (int nested = 0; nested < 2; nested++) {
        scase s = random_case(&r, 30, nested, -1);
        double x[NU], want[NU], g[NU];
        point(&r, 0, x);
        tg_tape *t0 = record_outer(&s, 0);
        OK(tg_gradient(t0, x, want));
        tg_tape_free(t0);
        int nomem = 0;
        for (long k = 0; k < 200; k++) {
            tg_tape *t = record_outer(&s, 0);     /* no pooled workspace yet */
            tg_tape_set_lazy(t, 0);
            mem_fail_after(k);
            tg_status st = tg_gradient(t, x, g);
            long made = mem_fail_after(-1);
            if (st == TG_OK) {
                same_bits("gradient", "out of memory sweep", g, want, NU);
            } else {
                cr_assert_eq(st, TG_ERR_NOMEM, "%s", tg_last_error());
                cr_assert(strlen(tg_last_error()) > 0);
                nomem++;
            }
            tg_tape_free(t);
            if (made <= k)
                break;              /* every allocation succeeded */
        }
        cr_assert_gt(nomem, 0, "no allocation was failed");
        case_free(&s);
    }
}
