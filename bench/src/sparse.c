/* bench/src/sparse.c -- the sparse derivatives of issue 10 side by side with
 * the dense calls and hand-written code:
 *
 *  "sparse W1 rosenbrock"  the Hessian's lower triangle (tridiagonal):
 *      tg_sparse_hessian (and _ws) against tg_gradient of the same tape
 *      (target <= 6x) and hand-written entries; tg_hessian_sparsity (pattern + colouring);
 *      tg_sparse_hessian_tape: build time and evaluation (n <= 10^4); the
 *      dense tg_hessian for n <= 1000.
 *  "sparse W4 broyden"  the tridiagonal Jacobian:
 *      tg_sparse_jacobian (and _ws) against tg_eval (target <= 4x) and hand-written
 *      entries; tg_jacobian_sparsity; tg_sparse_jacobian_tape (n <= 10^4).
 *
 * Every value is checked against the hand-written entries (1e-8 relative,
 * as the dense systems) and the pattern against the known tridiagonal one
 * before anything is timed.  Memory: the growth of the peak RSS while one
 * pattern is built (an upper bound of its working memory: the RSS before
 * is subtracted, whatever was freed earlier may be reused) next to the
 * pattern's own size (8 bytes per entry for rows and columns). */
#define _POSIX_C_SOURCE 200809L
#include "systems.h"
#include "tgcheck.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tapegen.h>

#include "tgrec.h"
#include "workloads.h"

#define AD_TOL 1e-8
#define SPARSE_DTAPE_MAX_N 10000   /* sparse derivative tapes: built and timed up to here */
#define SPARSE_DENSE_MAX_N 1000    /* the dense tg_hessian alongside, up to here */

#define SYS_TG_SPARSE "tapegen sparse"

/* Resident set now, KiB (/proc/self/statm), or -1. */
static long
rss_now_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * 4;   /* 4 KiB pages on the machines this runs on */
}

/* Poisons an output array before a call is checked, so that a call that
 * writes nothing cannot pass on an earlier call's values. */
static void
poison(double *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        v[i] = NAN;
}

static int
pattern_ok(bench_set *bs, const tg_sparsity *s, const char *what)
{
    if (!s) {
        bench_fail(bs, "%s: out of memory", what);
        return 0;
    }
    if (tg_sparsity_status(s) != TG_OK) {
        bench_fail(bs, "%s failed: %s", what, tg_sparsity_error(s));
        return 0;
    }
    return 1;
}

/* The pattern s against the expected (rows, cols) lists. */
static int
pattern_is(bench_set *bs, const tg_sparsity *s, const uint32_t *r, const uint32_t *c, size_t nnz,
           const char *what)
{
    if (tg_sparsity_nnz(s) != nnz) {
        bench_fail(bs, "%s: %zu entries, expected %zu", what, tg_sparsity_nnz(s), nnz);
        return 0;
    }
    const uint32_t *sr = tg_sparsity_rows(s), *sc = tg_sparsity_cols(s);
    for (size_t e = 0; e < nnz; e++)
        if (sr[e] != r[e] || sc[e] != c[e]) {
            bench_fail(bs, "%s: entry %zu is (%u, %u), expected (%u, %u)", what, e, sr[e], sc[e],
                       r[e], c[e]);
            return 0;
        }
    return 1;
}

/* Builds a pattern once more, outside the timed runs, for its memory. */
static void
pattern_memory(bench_set *bs, tg_sparsity *(*build)(const tg_tape *, int), const tg_tape *t,
               const char *what)
{
    long before = rss_now_kib(), peak0 = bench_peak_rss_kib();
    tg_sparsity *s = build(t, TG_ALL);
    long peak1 = bench_peak_rss_kib();
    if (!s)
        return;
    char note[160], name[64];
    double grow = before >= 0 && peak1 > peak0 ? (double)(peak1 - before) * 1024.0 : 0.0;
    snprintf(note, sizeof note, "%s: peak RSS growth while building it (0: below the earlier peak); "
             "the pattern itself holds %zu entries", what, tg_sparsity_nnz(s));
    snprintf(name, sizeof name, "%s peak RSS growth", what);
    bench_metric_add(bs, SYS_TG_SPARSE, name, grow, "B", note);
    snprintf(name, sizeof name, "%s nnz", what);
    bench_metric_add(bs, SYS_TG_SPARSE, name, (double)tg_sparsity_nnz(s), "", what);
    snprintf(name, sizeof name, "%s colours", what);
    bench_metric_add(bs, SYS_TG_SPARSE, name, (double)tg_sparsity_colors(s), "",
                     "sweep directions one evaluation needs");
    tg_sparsity_free(s);
}

/* A sparse derivative tape (tg_sparse_hessian_tape or _jacobian_tape, as
 * `build`) side by side with the call: its size and first build time as
 * metrics, its evaluation at `in` as case (SYS_TG_DTAPE, op) by eval_fn and
 * its rebuild by build_fn (both on ctx), the values checked against ref.
 * Returns the case of the evaluation with *out the tape (the caller frees
 * it), or -1 with the set failed. */
typedef struct sparse_dtape {
    const char *kind;                       /* "hessian" or "jacobian" */
    const char *op;                         /* the case's name, e.g. "sparse hess" */
    tg_tape *(*build)(const tg_tape *, int);
    bench_fn eval_fn, build_fn;
    void *ctx;
} sparse_dtape;

static int
time_sparse_tape(bench_set *bs, const sparse_dtape *d, const tg_tape *f, const double *in,
                 double *vals, const double *ref, size_t nnz, tg_tape **out)
{
    char what[64], name[96];
    double t0 = bench_wall();
    tg_tape *dt = d->build(f, TG_ALL);
    double built = bench_wall() - t0;
    *out = dt;
    snprintf(what, sizeof what, "tg_sparse_%s_tape", d->kind);
    if (!dt || tg_tape_status(dt) != TG_OK) {
        bench_fail(bs, "%s failed: %s", what, dt ? tg_tape_error(dt) : "out of memory");
        return -1;
    }
    snprintf(name, sizeof name, "sparse %s tape instructions", d->kind);
    bench_metric_add(bs, SYS_TG_DTAPE, name, (double)tg_tape_size(dt), "", "as built");
    snprintf(name, sizeof name, "sparse %s tape first build", d->kind);
    bench_metric_add(bs, SYS_TG_DTAPE, name, built, "s", "wall time of the first build");
    int kt = bench_add(bs, SYS_TG_DTAPE, d->op, d->eval_fn, d->ctx);
    bench_note(bs, kt, "tg_eval of %s(f)", what);
    poison(vals, nnz);
    if (tg_ok(bs, tg_eval(dt, in, vals), "tg_eval(sparse derivative tape)"))
        bench_check(bs, kt, vals, ref, nnz, AD_TOL, what);
    snprintf(name, sizeof name, "%s tape build", d->op);
    int k = bench_add(bs, SYS_TG_DTAPE, name, d->build_fn, d->ctx);
    bench_set_refs(bs, k, "", "");
    bench_note(bs, k, "%s + tg_tape_free", what);
    return kt;
}

/* ------------------------------------------------------------ W1 Hessian */

typedef struct s1_state {
    size_t n, nnz;
    double *x, *g, *vals, *H, *xw;
    tg_tape *f, *ht;
    tg_sparsity *sp;
    tg_workspace *ws;
} s1_state;

/* The lower triangle of W1's Hessian in row-major order: row i holds
 * (i, i-1) then (i, i).  With f = sum_{i<n-1} 100 (x_{i+1} - x_i^2)^2 +
 * (1 - x_i)^2: H_ii = [i < n-1] (1200 x_i^2 - 400 x_{i+1} + 2) + [i > 0] 200,
 * H_{i,i-1} = -400 x_{i-1}. */
static void
w1_sparse_hess(size_t n, const double *x, double *vals)
{
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            vals[e++] = -400.0 * x[i - 1];
        double d = i > 0 ? 200.0 : 0.0;
        if (i + 1 < n)
            d += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        vals[e++] = d;
    }
}

static void
tridiag_lower(size_t n, uint32_t *r, uint32_t *c)
{
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            r[e] = (uint32_t)i;
            c[e++] = (uint32_t)(i - 1);
        }
        r[e] = (uint32_t)i;
        c[e++] = (uint32_t)i;
    }
}

static void c1_hand_grad(void *p) { s1_state *s = p; w1_grad(s->n, s->x, s->g); }
static void c1_hand_shess(void *p) { s1_state *s = p; w1_sparse_hess(s->n, s->x, s->vals); }
static void c1_tg_grad(void *p) { s1_state *s = p; tg_gradient(s->f, s->x, s->g); }
static void c1_tg_shess(void *p) { s1_state *s = p; tg_sparse_hessian(s->f, s->sp, s->x, NULL, s->vals); }
static void c1_tgw_shess(void *p)
{
    s1_state *s = p;
    tg_sparse_hessian_ws(s->f, s->ws, s->sp, s->x, NULL, s->vals);
}
static void c1_tg_hess(void *p) { s1_state *s = p; tg_hessian(s->f, s->x, s->H); }
static void c1_tg_pattern(void *p) { s1_state *s = p; tg_sparsity_free(tg_hessian_sparsity(s->f, TG_ALL)); }
static void c1_dt_shess(void *p) { s1_state *s = p; tg_eval(s->ht, s->xw, s->vals); }
static void c1_dt_build(void *p) { s1_state *s = p; tg_tape_free(tg_sparse_hessian_tape(s->f, TG_ALL)); }

int
run_w1_sparse(const bench_opts *o, size_t n, FILE *csv)
{
    bench_set bs;
    char size[24];
    snprintf(size, sizeof size, "n=%zu", n);
    bench_set_init(&bs, "sparse W1 rosenbrock", size);
    s1_state s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.nnz = 2 * n - 1;
    s.x = xcalloc(n, sizeof *s.x);
    s.g = xcalloc(n, sizeof *s.g);
    s.vals = xcalloc(s.nnz, sizeof *s.vals);
    s.xw = xcalloc(n + 1, sizeof *s.xw);
    w1_eval_point(n, s.x);
    memcpy(s.xw, s.x, n * sizeof *s.x);
    s.xw[n] = 1.0;                       /* the sparse Hessian tape's weight block "w" */

    double *gref = xcalloc(n, sizeof *gref), *href = xcalloc(s.nnz, sizeof *href);
    uint32_t *pr = xcalloc(s.nnz, sizeof *pr), *pc = xcalloc(s.nnz, sizeof *pc);
    w1_grad(n, s.x, gref);
    w1_sparse_hess(n, s.x, href);
    tridiag_lower(n, pr, pc);
    /* The hand-written entries against the hand-written dense Hessian. */
    if (n <= SPARSE_DENSE_MAX_N) {
        double *H = xcalloc(n * n, sizeof *H), *hd = xcalloc(s.nnz, sizeof *hd);
        w1_hess(n, s.x, H);
        for (size_t e = 0; e < s.nnz; e++)
            hd[e] = H[(size_t)pr[e] * n + pc[e]];
        bench_selfcheck(&bs, "hand sparse Hessian vs hand dense Hessian", bench_relerr(href, hd, s.nnz),
                        1e-14);
        free(H);
        free(hd);
    }

    int k, kg, ks, kd = -1, kt = -1;
    bench_add(&bs, SYS_HAND, "grad", c1_hand_grad, &s);
    k = bench_add(&bs, SYS_HAND, "sparse hess", c1_hand_shess, &s);
    bench_note(&bs, k, "the 2n-1 entries of the lower triangle, written out");

    s.f = tgrec_rosenbrock(n, 0);
    if (!s.f || tg_tape_status(s.f) != TG_OK) {
        bench_fail(&bs, "tapegen recording failed");
        goto done;
    }
    s.sp = tg_hessian_sparsity(s.f, TG_ALL);
    if (!pattern_ok(&bs, s.sp, "tg_hessian_sparsity") ||
        !pattern_is(&bs, s.sp, pr, pc, s.nnz, "W1 Hessian pattern"))
        goto done;
    pattern_memory(&bs, tg_hessian_sparsity, s.f, "Hessian pattern");

    kg = bench_add(&bs, SYS_TG, "grad", c1_tg_grad, &s);
    poison(s.g, n);
    if (tg_ok(&bs, tg_gradient(s.f, s.x, s.g), "tg_gradient"))
        bench_check(&bs, kg, s.g, gref, n, AD_TOL, "gradient");
    ks = bench_add(&bs, SYS_TG, "sparse hess", c1_tg_shess, &s);
    bench_note(&bs, ks, "tg_sparse_hessian, %zu colours", tg_sparsity_colors(s.sp));
    poison(s.vals, s.nnz);
    if (tg_ok(&bs, tg_sparse_hessian(s.f, s.sp, s.x, NULL, s.vals), "tg_sparse_hessian"))
        bench_check(&bs, ks, s.vals, href, s.nnz, AD_TOL, "sparse Hessian");
    s.ws = tg_workspace_new(s.f);
    if (!s.ws) {
        bench_fail(&bs, "tg_workspace_new: out of memory");
        goto done;
    }
    k = bench_add(&bs, SYS_TG_WS, "sparse hess", c1_tgw_shess, &s);
    bench_note(&bs, k, "tg_sparse_hessian_ws");
    poison(s.vals, s.nnz);
    if (tg_ok(&bs, tg_sparse_hessian_ws(s.f, s.ws, s.sp, s.x, NULL, s.vals), "tg_sparse_hessian_ws"))
        bench_check(&bs, k, s.vals, href, s.nnz, AD_TOL, "sparse Hessian");
    k = bench_add(&bs, SYS_TG, "hessian pattern", c1_tg_pattern, &s);
    bench_set_refs(&bs, k, "", "");
    bench_note(&bs, k, "tg_hessian_sparsity (pattern + star colouring) + free");
    if (n <= SPARSE_DENSE_MAX_N) {
        s.H = xcalloc(n * n, sizeof *s.H);
        kd = bench_add(&bs, SYS_TG, "hess", c1_tg_hess, &s);
        bench_set_refs(&bs, kd, "", "");
        bench_note(&bs, kd, "dense tg_hessian (n x n)");
    }
    if (n <= SPARSE_DTAPE_MAX_N) {
        const sparse_dtape d = { "hessian", "sparse hess", tg_sparse_hessian_tape,
                                 c1_dt_shess, c1_dt_build, &s };
        kt = time_sparse_tape(&bs, &d, s.f, s.xw, s.vals, href, s.nnz, &s.ht);
        if (kt < 0)
            goto done;
    }
    bench_add_ratio(&bs, "tg_sparse_hessian / tg_gradient", ks, kg, 0);
    if (kd >= 0)
        bench_add_ratio(&bs, "tg_hessian / tg_sparse_hessian", kd, ks, 0);
    if (kt >= 0)
        bench_add_ratio(&bs, "sparse Hessian tape eval / tg_gradient", kt, kg, 0);

    bench_run_checked(&bs, o);
done:;
    int failed = bench_report(&bs, csv);
    tg_sparsity_free(s.sp);
    tg_workspace_free(s.ws);
    tg_tape_free(s.f);
    tg_tape_free(s.ht);
    free(s.x);
    free(s.g);
    free(s.vals);
    free(s.H);
    free(s.xw);
    free(gref);
    free(href);
    free(pr);
    free(pc);
    bench_set_free(&bs);
    return failed;
}

/* ----------------------------------------------------------- W4 Jacobian */

typedef struct s4_state {
    size_t n, nnz;
    double *x, *r, *vals;
    tg_tape *f, *jt;
    tg_sparsity *sp;
    tg_workspace *ws;
} s4_state;

/* W4's Jacobian row by row: (i, i-1) = -1, (i, i) = 3 - 4 x_i, (i, i+1) = -2. */
static void
w4_sparse_jac(size_t n, const double *x, double *vals)
{
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            vals[e++] = -1.0;
        vals[e++] = 3.0 - 4.0 * x[i];
        if (i + 1 < n)
            vals[e++] = -2.0;
    }
}

static void
tridiag_full(size_t n, uint32_t *r, uint32_t *c)
{
    size_t e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i > 0 ? i - 1 : 0; j <= i + 1 && j < n; j++) {
            r[e] = (uint32_t)i;
            c[e++] = (uint32_t)j;
        }
}

static void c4_hand_f(void *p) { s4_state *s = p; w4_f(s->n, s->x, s->r); }
static void c4_hand_sjac(void *p) { s4_state *s = p; w4_sparse_jac(s->n, s->x, s->vals); }
static void c4_tg_f(void *p) { s4_state *s = p; tg_eval(s->f, s->x, s->r); }
static void c4_tg_sjac(void *p) { s4_state *s = p; tg_sparse_jacobian(s->f, s->sp, s->x, s->vals); }
static void c4_tgw_sjac(void *p)
{
    s4_state *s = p;
    tg_sparse_jacobian_ws(s->f, s->ws, s->sp, s->x, s->vals);
}
static void c4_tg_pattern(void *p) { s4_state *s = p; tg_sparsity_free(tg_jacobian_sparsity(s->f, TG_ALL)); }
static void c4_dt_sjac(void *p) { s4_state *s = p; tg_eval(s->jt, s->x, s->vals); }
static void c4_dt_build(void *p) { s4_state *s = p; tg_tape_free(tg_sparse_jacobian_tape(s->f, TG_ALL)); }

int
run_w4_sparse(const bench_opts *o, size_t n, FILE *csv)
{
    bench_set bs;
    char size[24];
    snprintf(size, sizeof size, "n=%zu", n);
    bench_set_init(&bs, "sparse W4 broyden", size);
    s4_state s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.nnz = n == 1 ? 1 : 3 * n - 2;
    s.x = xcalloc(n, sizeof *s.x);
    s.r = xcalloc(n, sizeof *s.r);
    s.vals = xcalloc(s.nnz, sizeof *s.vals);
    w4_point(n, s.x);

    double *rref = xcalloc(n, sizeof *rref), *jref = xcalloc(s.nnz, sizeof *jref);
    uint32_t *pr = xcalloc(s.nnz, sizeof *pr), *pc = xcalloc(s.nnz, sizeof *pc);
    w4_f(n, s.x, rref);
    w4_sparse_jac(n, s.x, jref);
    tridiag_full(n, pr, pc);
    if (n <= SPARSE_DENSE_MAX_N) {
        double *J = xcalloc(n * n, sizeof *J), *jd = xcalloc(s.nnz, sizeof *jd);
        w4_jac(n, s.x, J);
        for (size_t e = 0; e < s.nnz; e++)
            jd[e] = J[(size_t)pr[e] * n + pc[e]];
        bench_selfcheck(&bs, "hand sparse Jacobian vs hand dense Jacobian",
                        bench_relerr(jref, jd, s.nnz), 1e-14);
        free(J);
        free(jd);
    }

    int k, kf, kj, kt = -1;
    bench_add(&bs, SYS_HAND, "f", c4_hand_f, &s);
    k = bench_add(&bs, SYS_HAND, "sparse jac", c4_hand_sjac, &s);
    bench_note(&bs, k, "the 3n-2 entries, written out");

    s.f = tgrec_broyden(n, 0);
    if (!s.f || tg_tape_status(s.f) != TG_OK) {
        bench_fail(&bs, "tapegen recording failed");
        goto done;
    }
    s.sp = tg_jacobian_sparsity(s.f, TG_ALL);
    if (!pattern_ok(&bs, s.sp, "tg_jacobian_sparsity") ||
        !pattern_is(&bs, s.sp, pr, pc, s.nnz, "W4 Jacobian pattern"))
        goto done;
    pattern_memory(&bs, tg_jacobian_sparsity, s.f, "Jacobian pattern");

    kf = bench_add(&bs, SYS_TG, "f", c4_tg_f, &s);
    poison(s.r, n);
    if (tg_ok(&bs, tg_eval(s.f, s.x, s.r), "tg_eval"))
        bench_check(&bs, kf, s.r, rref, n, AD_TOL, "residuals");
    kj = bench_add(&bs, SYS_TG, "sparse jac", c4_tg_sjac, &s);
    bench_note(&bs, kj, "tg_sparse_jacobian, %zu colours", tg_sparsity_colors(s.sp));
    poison(s.vals, s.nnz);
    if (tg_ok(&bs, tg_sparse_jacobian(s.f, s.sp, s.x, s.vals), "tg_sparse_jacobian"))
        bench_check(&bs, kj, s.vals, jref, s.nnz, AD_TOL, "sparse Jacobian");
    s.ws = tg_workspace_new(s.f);
    if (!s.ws) {
        bench_fail(&bs, "tg_workspace_new: out of memory");
        goto done;
    }
    k = bench_add(&bs, SYS_TG_WS, "sparse jac", c4_tgw_sjac, &s);
    bench_note(&bs, k, "tg_sparse_jacobian_ws");
    poison(s.vals, s.nnz);
    if (tg_ok(&bs, tg_sparse_jacobian_ws(s.f, s.ws, s.sp, s.x, s.vals), "tg_sparse_jacobian_ws"))
        bench_check(&bs, k, s.vals, jref, s.nnz, AD_TOL, "sparse Jacobian");
    k = bench_add(&bs, SYS_TG, "jacobian pattern", c4_tg_pattern, &s);
    bench_set_refs(&bs, k, "", "");
    bench_note(&bs, k, "tg_jacobian_sparsity (pattern + colouring) + free");
    if (n <= SPARSE_DTAPE_MAX_N) {
        const sparse_dtape d = { "jacobian", "sparse jac", tg_sparse_jacobian_tape,
                                 c4_dt_sjac, c4_dt_build, &s };
        kt = time_sparse_tape(&bs, &d, s.f, s.x, s.vals, jref, s.nnz, &s.jt);
        if (kt < 0)
            goto done;
    }
    bench_add_ratio(&bs, "tg_sparse_jacobian / tg_eval", kj, kf, 0);
    if (kt >= 0)
        bench_add_ratio(&bs, "sparse Jacobian tape eval / tg_eval", kt, kf, 0);

    bench_run_checked(&bs, o);
done:;
    int failed = bench_report(&bs, csv);
    tg_sparsity_free(s.sp);
    tg_workspace_free(s.ws);
    tg_tape_free(s.f);
    tg_tape_free(s.jt);
    free(s.x);
    free(s.r);
    free(s.vals);
    free(rref);
    free(jref);
    free(pr);
    free(pc);
    bench_set_free(&bs);
    return failed;
}
