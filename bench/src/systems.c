/* bench/src/systems.c -- every system on every workload: the hand-written
 * C reference (checked against central differences first), tapegen (simple
 * API, _ws variants, derivative tapes, batches), ADOL-C and central finite
 * differences.  Each system's results are checked against the hand-written
 * ones before anything is timed. */
#define _POSIX_C_SOURCE 200809L
#include "systems.h"
#include "tgcheck.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tapegen.h>

#include "adolc_iface.h"
#include "tgrec.h"
#include "workloads.h"

/* Tolerances.  Every AD system must agree with the hand-written derivatives
 * to 1e-8 (relative entry by entry, see bench_relerr).  Central differences
 * cannot: their error is absolute (rounding of f over the step plus
 * truncation), so everything involving them is compared normwise
 * (bench_normerr): the hand-written derivatives against fourth-order
 * differences with FD_SELF_TOL, the timed FD system against the
 * hand-written derivatives with FD_SYS_TOL. */
#define AD_TOL 1e-8
#define FD_SELF_TOL 1e-5
#define FD_SYS_TOL 1e-5

static short next_tag = 1;

/* --------------------------------------------------- central differences */

typedef double (*scalar_fn)(const void *ctx, const double *x);
typedef void (*vector_fn)(const void *ctx, const double *x, double *y);

/* g[j] for j in idx[0..cnt) (or all n when idx == NULL) by central
 * differences of f; x is modified and restored. */
static void
fd_gradient(scalar_fn f, const void *ctx, size_t n, double *x, double *g, const size_t *idx,
            size_t cnt)
{
    size_t m = idx ? cnt : n;
    for (size_t k = 0; k < m; k++) {
        size_t j = idx ? idx[k] : k;
        double xj = x[j], h = bench_fd_step(xj);
        double xp = xj + h, xm = xj - h;
        x[j] = xp;
        double fp = f(ctx, x);
        x[j] = xm;
        double fm = f(ctx, x);
        x[j] = xj;
        g[idx ? k : j] = (fp - fm) / (xp - xm);
    }
}

/* Fourth-order central differences for the self-checks of the hand-written
 * derivatives: (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h with
 * h = c max(1, |x|).  Each self-check is made with c = eps^(1/5) ~ 7.4e-4
 * (exact up to rounding on polynomials of degree <= 4 such as W1 and W4),
 * 1e-4 and 1.5e-5 and keeps the smallest error (the bottom of the usual
 * truncation/rounding V), so a wrong hand-written derivative, which is
 * wrong at every step, cannot hide, and a right one is not failed by
 * truncation error on the chaotic W3. */
static double fd5_c = 7.4e-4;
static const double fd5_cs[3] = { 7.4e-4, 1e-4, 1.5e-5 };

static double
fd5_step(double x)
{
    return fd5_c * fmax(1.0, fabs(x));
}

static void
fd5_gradient(scalar_fn f, const void *ctx, size_t n, double *x, double *g, const size_t *idx,
             size_t cnt)
{
    size_t m = idx ? cnt : n;
    for (size_t k = 0; k < m; k++) {
        size_t j = idx ? idx[k] : k;
        double xj = x[j], h = fd5_step(xj);
        x[j] = xj + 2 * h;
        double f2p = f(ctx, x);
        x[j] = xj + h;
        double f1p = f(ctx, x);
        x[j] = xj - h;
        double f1m = f(ctx, x);
        x[j] = xj - 2 * h;
        double f2m = f(ctx, x);
        x[j] = xj;
        g[idx ? k : j] = (-f2p + 8.0 * f1p - 8.0 * f1m + f2m) / (12.0 * h);
    }
}

/* Directional derivative of y = G(x) (vector) along v, fourth order;
 * xt: n, tmp: 4*m scratch. */
static void
fd5_directional(vector_fn G, const void *ctx, size_t m, size_t n, const double *x, const double *v,
                double *out, double *xt, double *tmp)
{
    double xs = 0.0, vs = 0.0;
    for (size_t i = 0; i < n; i++) {
        xs = fmax(xs, fabs(x[i]));
        vs = fmax(vs, fabs(v[i]));
    }
    if (vs == 0.0) {
        memset(out, 0, m * sizeof *out);
        return;
    }
    double h = fd5_step(xs) / vs;
    static const double c[4] = { 2.0, 1.0, -1.0, -2.0 };
    for (int q = 0; q < 4; q++) {
        for (size_t i = 0; i < n; i++)
            xt[i] = x[i] + c[q] * h * v[i];
        G(ctx, xt, tmp + (size_t)q * m);
    }
    for (size_t i = 0; i < m; i++)
        out[i] = (-tmp[i] + 8.0 * tmp[m + i] - 8.0 * tmp[2 * m + i] + tmp[3 * m + i]) / (12.0 * h);
}

/* Columns of the Jacobian (m x n, row-major) of y = F(x) by central
 * differences; yp, ym: m doubles of scratch. */
static void
fd_jacobian(vector_fn F, const void *ctx, size_t m, size_t n, double *x, double *J, double *yp,
            double *ym)
{
    for (size_t j = 0; j < n; j++) {
        double xj = x[j], h = bench_fd_step(xj);
        double xp = xj + h, xm = xj - h;
        x[j] = xp;
        F(ctx, x, yp);
        x[j] = xm;
        F(ctx, x, ym);
        x[j] = xj;
        double inv = 1.0 / (xp - xm);
        for (size_t i = 0; i < m; i++)
            J[i * n + j] = (yp[i] - ym[i]) * inv;
    }
}

/* ------------------------------------------------------ scalar workloads */

typedef struct scalar_wl {
    const char *workload;
    char size[24];
    size_t n;
    const double *x;        /* evaluation point */
    const double *x_rec;    /* ADOL-C tapes here */
    int hess;               /* dense Hessian is part of the work */
    int fd;                 /* central-difference gradient is timed */
    int fd_sample;          /* > 0: check the hand gradient on this many coordinates only */
    double (*f)(const void *ctx, const double *x);
    void (*grad)(const void *ctx, const double *x, double *g);
    void (*hvp)(const void *ctx, const double *x, const double *v, double *hv);
    void (*hessf)(const void *ctx, const double *x, double *H);
    const void *ctx;
    tg_tape *(*record)(const void *ctx, unsigned flags);   /* flags of tg_tape_new_ex */
    int (*adolc_tape)(const void *ctx, short tag, const double *x0);
    /* The second tapegen variant with the loop kept in the tape (issue 11;
     * NULL: none): W1 as a map.  Its cases are "tapegen loop" (and
     * "tapegen loop dtape"), next to the flat recording's. */
    tg_tape *(*record_loop)(const void *ctx, unsigned flags);
} scalar_wl;

typedef struct sc_state {
    const scalar_wl *wl;
    size_t n;
    const double *x;
    double *v, *xv, *fdx;
    double y, *g, *hv, *H;
    tg_tape *f, *gt, *ht;
    tg_workspace *ws;
    short tag, tag_rec;
    double **AH;
    /* batch (W1) */
    size_t npts;
    double *X, *G;
    /* loop variant (W1 as a map) and its derivative tapes */
    tg_tape *fl, *glt, *hlt;
} sc_state;

/* hand-written */
static void c_hand_f(void *p) { sc_state *s = p; s->y = s->wl->f(s->wl->ctx, s->x); }
static void c_hand_grad(void *p) { sc_state *s = p; s->wl->grad(s->wl->ctx, s->x, s->g); }
static void c_hand_hvp(void *p) { sc_state *s = p; s->wl->hvp(s->wl->ctx, s->x, s->v, s->hv); }
static void c_hand_hess(void *p) { sc_state *s = p; s->wl->hessf(s->wl->ctx, s->x, s->H); }
/* tapegen, simple API */
static void c_tg_f(void *p) { sc_state *s = p; tg_eval(s->f, s->x, &s->y); }
static void c_tg_grad(void *p) { sc_state *s = p; tg_gradient(s->f, s->x, s->g); }
static void c_tg_hvp(void *p) { sc_state *s = p; tg_hvp(s->f, s->x, s->v, s->hv); }
static void c_tg_hess(void *p) { sc_state *s = p; tg_hessian(s->f, s->x, s->H); }
/* tapegen, caller-owned workspace */
static void c_tgw_f(void *p) { sc_state *s = p; tg_eval_ws(s->f, s->ws, s->x, &s->y); }
static void c_tgw_grad(void *p) { sc_state *s = p; tg_gradient_ws(s->f, s->ws, s->x, s->g); }
static void c_tgw_hvp(void *p) { sc_state *s = p; tg_hvp_ws(s->f, s->ws, s->x, s->v, s->hv); }
static void c_tgw_hess(void *p) { sc_state *s = p; tg_hessian_ws(s->f, s->ws, s->x, s->H); }
/* tapegen derivative tapes */
static void c_dt_grad(void *p) { sc_state *s = p; tg_eval(s->gt, s->x, s->g); }
static void c_dt_hvp(void *p) { sc_state *s = p; tg_eval(s->ht, s->xv, s->hv); }
static void c_tg_record(void *p)
{
    sc_state *s = p;
    tg_tape_free(s->wl->record(s->wl->ctx, 0));
}
static void c_tg_record_nocse(void *p)
{
    sc_state *s = p;
    tg_tape_free(s->wl->record(s->wl->ctx, TG_NO_CSE));
}
static void c_tg_record_at(void *p)
{
    sc_state *s = p;
    tg_tape_free(s->wl->record(s->wl->ctx, TGREC_AT));
}
static void c_tg_record_at_nocse(void *p)
{
    sc_state *s = p;
    tg_tape_free(s->wl->record(s->wl->ctx, TGREC_AT | TG_NO_CSE));
}
static void c_tg_build_grad(void *p) { sc_state *s = p; tg_tape_free(tg_gradient_tape(s->f, TG_ALL)); }
static void c_tg_build_hvp(void *p) { sc_state *s = p; tg_tape_free(tg_hvp_tape(s->f, TG_ALL)); }
/* ADOL-C */
static void c_ad_f(void *p) { sc_state *s = p; adb_function(s->tag, 1, (int)s->n, s->x, &s->y); }
static void c_ad_grad(void *p) { sc_state *s = p; adb_gradient(s->tag, (int)s->n, s->x, s->g); }
static void c_ad_hvp(void *p) { sc_state *s = p; adb_hess_vec(s->tag, (int)s->n, s->x, s->v, s->hv); }
static void c_ad_hess(void *p) { sc_state *s = p; adb_hessian(s->tag, (int)s->n, s->x, s->AH); }
static void c_ad_record(void *p)
{
    sc_state *s = p;
    s->wl->adolc_tape(s->wl->ctx, s->tag_rec, s->wl->x_rec);
}
/* central differences */
static void
c_fd_grad(void *p)
{
    sc_state *s = p;
    fd_gradient(s->wl->f, s->wl->ctx, s->n, s->fdx, s->g, NULL, 0);
}
/* batches (W1 n = 100) */
static void
c_hand_grad_loop(void *p)
{
    sc_state *s = p;
    for (size_t k = 0; k < s->npts; k++)
        s->wl->grad(s->wl->ctx, s->X + k * s->n, s->G + k * s->n);
}
static void
c_tg_grad_loop(void *p)
{
    sc_state *s = p;
    for (size_t k = 0; k < s->npts; k++)
        tg_gradient(s->f, s->X + k * s->n, s->G + k * s->n);
}
static void c_tg_grad_batch(void *p) { sc_state *s = p; tg_gradient_batch(s->f, s->npts, s->X, s->G); }
/* the loop variant */
static void c_lp_f(void *p) { sc_state *s = p; tg_eval(s->fl, s->x, &s->y); }
static void c_lp_grad(void *p) { sc_state *s = p; tg_gradient(s->fl, s->x, s->g); }
static void c_lp_hvp(void *p) { sc_state *s = p; tg_hvp(s->fl, s->x, s->v, s->hv); }
static void c_lp_hess(void *p) { sc_state *s = p; tg_hessian(s->fl, s->x, s->H); }
static void c_lpd_grad(void *p) { sc_state *s = p; tg_eval(s->glt, s->x, s->g); }
static void c_lpd_hvp(void *p) { sc_state *s = p; tg_eval(s->hlt, s->xv, s->hv); }
static void c_lp_record(void *p)
{
    sc_state *s = p;
    tg_tape_free(s->wl->record_loop(s->wl->ctx, 0));
}

/* Dense full matrix from ADOL-C's lower triangle. */
static void
lower_to_full(double **L, size_t n, double *H)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            H[i * n + j] = H[j * n + i] = L[i][j];
}

/* Hand-written gradient/HVP/Hessian against (fourth-order) central
 * differences of the hand-written f and gradient. */
static void
selfcheck_scalar(bench_set *bs, const scalar_wl *wl, sc_state *s)
{
    size_t n = wl->n;
    double *x = xcalloc(n, sizeof *x), *gfd = xcalloc(n, sizeof *gfd);
    double *g = xcalloc(n, sizeof *g), *xt = xcalloc(n, sizeof *xt);
    double *tmp = xcalloc(4 * n, sizeof *tmp), *e = xcalloc(n, sizeof *e);
    double *hv = xcalloc(n, sizeof *hv), *H = wl->hess ? xcalloc(n * n, sizeof *H) : NULL;
    double *Hfd = wl->hess ? xcalloc(n * n, sizeof *Hfd) : NULL;
    size_t cnt = n, *idx = NULL;
    double *gs = g;
    double eg = INFINITY, ehv = INFINITY, eh = INFINITY;
    memcpy(x, wl->x, n * sizeof *x);
    wl->grad(wl->ctx, wl->x, g);
    if (wl->hvp)
        wl->hvp(wl->ctx, wl->x, s->v, hv);
    if (wl->hess)
        wl->hessf(wl->ctx, wl->x, H);
    if (wl->fd_sample > 0 && (size_t)wl->fd_sample < n) {
        cnt = (size_t)wl->fd_sample;
        idx = xcalloc(cnt, sizeof *idx);
        gs = xcalloc(cnt, sizeof *gs);
        for (size_t k = 0; k < cnt; k++) {
            idx[k] = k * (n - 1) / (cnt - 1);
            gs[k] = g[idx[k]];
        }
    }
    for (int q = 0; q < 3; q++) {
        fd5_c = fd5_cs[q];
        fd5_gradient(wl->f, wl->ctx, n, x, gfd, idx, cnt);
        eg = fmin(eg, bench_normerr(gfd, gs, cnt));
        if (wl->hvp) {
            /* HVP: directional difference of the hand gradient */
            fd5_directional(wl->grad, wl->ctx, n, n, wl->x, s->v, gfd, xt, tmp);
            ehv = fmin(ehv, bench_normerr(gfd, hv, n));
        }
        if (wl->hess) {
            for (size_t j = 0; j < n; j++) {
                e[j] = 1.0;
                fd5_directional(wl->grad, wl->ctx, n, n, wl->x, e, gfd, xt, tmp);
                e[j] = 0.0;
                for (size_t i = 0; i < n; i++)
                    Hfd[i * n + j] = gfd[i];
            }
            eh = fmin(eh, bench_normerr(Hfd, H, n * n));
        }
    }
    bench_selfcheck(bs, idx ? "hand grad vs central FD (64 sampled coords; normwise)" : "hand grad vs central FD (normwise)",
                    eg, FD_SELF_TOL);
    if (wl->hvp)
        bench_selfcheck(bs, "hand HVP vs central FD of hand grad (normwise)", ehv, FD_SELF_TOL);
    if (wl->hess)
        bench_selfcheck(bs, "hand Hessian vs central FD of hand grad (normwise)", eh, FD_SELF_TOL);
    if (idx) {
        free(idx);
        free(gs);
    }
    free(x);
    free(gfd);
    free(g);
    free(xt);
    free(tmp);
    free(e);
    free(hv);
    free(H);
    free(Hfd);
}

static void
tape_metrics(bench_set *bs, const char *what, const tg_tape *t, const tg_tape *f)
{
    char name[64];
    snprintf(name, sizeof name, "%s instructions", what);
    bench_metric_add(bs, SYS_TG, name, (double)tg_tape_size(t), "instr", "");
    snprintf(name, sizeof name, "%s bytes/instruction", what);
    bench_metric_add(bs, SYS_TG, name, (double)tg_tape_bytes(t) / (double)tg_tape_size(t), "B",
                     "tg_tape_bytes / tg_tape_size");
    if (f && t != f) {
        snprintf(name, sizeof name, "%s size ratio |%s|/|f|", what, what);
        bench_metric_add(bs, SYS_TG, name, (double)tg_tape_size(t) / (double)tg_tape_size(f), "x",
                         "");
    }
}

static void
opt_metrics(bench_set *bs, const char *what, const tg_tape *t, const tg_tape *f)
{
    tg_tape *c = NULL;
    /* optimise a fresh copy (build again: the timed tape stays as built) */
    if (strcmp(what, "grad tape") == 0)
        c = tg_gradient_tape(f, TG_ALL);
    else if (strcmp(what, "hvp tape") == 0)
        c = tg_hvp_tape(f, TG_ALL);
    else if (strcmp(what, "jvp tape") == 0)
        c = tg_jvp_tape(f, TG_ALL);
    (void)t;
    if (!c || tg_tape_status(c) != TG_OK || tg_tape_optimize(c, TG_OPT_BASIC) != TG_OK) {
        tg_tape_free(c);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "%s (opt BASIC) instructions", what);
    bench_metric_add(bs, SYS_TG, name, (double)tg_tape_size(c), "instr", "");
    snprintf(name, sizeof name, "%s (opt BASIC) size ratio", what);
    bench_metric_add(bs, SYS_TG, name, (double)tg_tape_size(c) / (double)tg_tape_size(f), "x",
                     "|optimised tape| / |f|");
    tg_tape_free(c);
}

static void
adolc_metrics(bench_set *bs, short tag)
{
    size_t ops, locs, vals, tay;
    int disk;
    adb_tape_info(tag, &ops, &locs, &vals, &tay, &disk);
    bench_metric_add(bs, SYS_ADOLC, "tape operations", (double)ops, "ops", "");
    bench_metric_add(bs, SYS_ADOLC, "tape locations", (double)locs, "locs", "");
    bench_metric_add(bs, SYS_ADOLC, "tape values", (double)vals, "vals", "");
    bench_metric_add(bs, SYS_ADOLC, "tape bytes (ops+locs+vals)",
                     (double)(ops + 4 * locs + 8 * vals), "B", "1 B/op + 4 B/loc + 8 B/val");
    bench_metric_add(bs, SYS_ADOLC, "tape kept in memory", disk ? 0.0 : 1.0, "bool",
                     disk ? "NO: some buffer went to a file" : "yes");
    if (disk)
        fprintf(stderr, "warning: %s: ADOL-C tape did not stay in memory\n", bs->workload);
}

/* One call of the loop variant: on success the case is registered and
 * checked against the hand-written result (AD_TOL) and the flat tape's
 * (metric "loop vs flat: OP", the 1e-13 target); on an error status the
 * path is reported as not available (a metric row with the message) and
 * nothing is timed -- a loop path that has not landed is never faked. */
static int
loop_case(bench_set *bs, sc_state *s, const char *sys, const char *op, bench_fn fn,
          tg_status st, const double *got, const double *want, const double *flat, size_t len,
          const char *note, const tg_tape *dtape)
{
    char name[96];
    if (st != TG_OK) {
        snprintf(name, sizeof name, "%s: not available", op);
        char msg[160];
        /* a derivative tape in the error state carries its own message */
        const char *why = dtape && tg_tape_status(dtape) != TG_OK ? tg_tape_error(dtape)
                                                                  : tg_last_error();
        snprintf(msg, sizeof msg, "%s: %s", tg_status_str(st), why);
        bench_metric_add(bs, sys, name, 0.0, "", msg);
        printf("%s %s: %s %s not available: %s\n", bs->workload, bs->size, sys, op, msg);
        return -1;
    }
    int k = bench_add(bs, sys, op, fn, s);
    bench_note(bs, k, "%s", note);
    bench_check(bs, k, got, want, len, AD_TOL, op);
    if (flat) {
        snprintf(name, sizeof name, "loop vs flat: %s", op);
        bench_metric_add(bs, sys, name, bench_relerr(got, flat, len), "relerr",
                         "max relative difference from the flat tape's result (target 1e-13)");
    }
    return k;
}

#define SYS_TG_LOOP "tapegen loop"
#define SYS_TG_LOOP_DTAPE "tapegen loop dtape"

/* The loop variant of a scalar workload (W1 as a map): record, f, gradient,
 * HVP, Hessian (when the workload has one) by the simple API, and the
 * derivative tapes; each result against the hand-written one and the flat
 * tape's; ratios loop / flat. */
static void
add_loop_cases(bench_set *bs, const bench_opts *o, const scalar_wl *wl, sc_state *s,
               double fref, const double *gref, const double *hvref, const double *Href)
{
    size_t n = wl->n;
    s->fl = wl->record_loop(wl->ctx, 0);
    if (!s->fl || tg_tape_status(s->fl) != TG_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s", s->fl ? tg_tape_error(s->fl) : "out of memory");
        bench_metric_add(bs, SYS_TG_LOOP, "record: not available", 0.0, "", msg);
        printf("%s %s: the loop recording is not available: %s\n", bs->workload, bs->size, msg);
        tg_tape_free(s->fl);
        s->fl = NULL;
        return;
    }
    if (o->no_lazy)
        tg_tape_set_lazy(s->fl, 0);
    tape_metrics(bs, "loop f", s->fl, NULL);
    {
        char name[64];
        snprintf(name, sizeof name, "loop f size ratio |loop|/|flat|");
        bench_metric_add(bs, SYS_TG, name, (double)tg_tape_size(s->fl) / (double)tg_tape_size(s->f),
                         "x", "instructions of the loop tape over the flat tape's");
    }
    int k = bench_add(bs, SYS_TG_LOOP, "record", c_lp_record, s);
    bench_set_refs(bs, k, "f", "record");
    bench_note(bs, k, "tg_tape_new + tg_map/tg_scan recording + tg_tape_free");

    double *flat = xcalloc(n * (wl->hess ? n : 1), sizeof *flat);
    double *got = xcalloc(n * (wl->hess ? n : 1), sizeof *got);
    double yf = 0.0, yl = 0.0;
    tg_status st;
    /* flat results (the same tape the "tapegen" cases time) */
    tg_eval(s->f, s->x, &yf);
    st = tg_eval(s->fl, s->x, &yl);
    int kf = loop_case(bs, s, SYS_TG_LOOP, "f", c_lp_f, st, &yl, &fref, &yf, 1, "tg_eval", NULL);
    tg_gradient(s->f, s->x, flat);
    st = tg_gradient(s->fl, s->x, got);
    int kg = loop_case(bs, s, SYS_TG_LOOP, "grad", c_lp_grad, st, got, gref, flat, n,
                       "tg_gradient", NULL);
    int kh = -1;
    if (wl->hvp) {
        tg_hvp(s->f, s->x, s->v, flat);
        st = tg_hvp(s->fl, s->x, s->v, got);
        kh = loop_case(bs, s, SYS_TG_LOOP, "hvp", c_lp_hvp, st, got, hvref, flat, n, "tg_hvp",
                       NULL);
    }
    if (wl->hess) {
        tg_hessian(s->f, s->x, flat);
        st = tg_hessian(s->fl, s->x, got);
        loop_case(bs, s, SYS_TG_LOOP, "hess", c_lp_hess, st, got, Href, flat, n * n,
                  "tg_hessian", NULL);
    }
    /* derivative tapes of the loop tape (they keep loops as loops) */
    s->glt = tg_gradient_tape(s->fl, TG_ALL);
    st = s->glt ? tg_tape_status(s->glt) : TG_ERR_NOMEM;
    if (st == TG_OK) {
        tape_metrics(bs, "loop grad tape", s->glt, s->fl);
        st = tg_eval(s->glt, s->x, got);
    }
    tg_gradient(s->f, s->x, flat);
    int kdg = loop_case(bs, s, SYS_TG_LOOP_DTAPE, "grad", c_lpd_grad, st, got, gref, flat, n,
                        "tg_eval of tg_gradient_tape(loop tape)", s->glt);
    int kdh = -1;
    if (wl->hvp) {
        s->hlt = tg_hvp_tape(s->fl, TG_ALL);
        st = s->hlt ? tg_tape_status(s->hlt) : TG_ERR_NOMEM;
        if (st == TG_OK) {
            tape_metrics(bs, "loop hvp tape", s->hlt, s->fl);
            st = tg_eval(s->hlt, s->xv, got);
        }
        tg_hvp(s->f, s->x, s->v, flat);
        kdh = loop_case(bs, s, SYS_TG_LOOP_DTAPE, "hvp", c_lpd_hvp, st, got, hvref, flat, n,
                        "tg_eval of tg_hvp_tape(loop tape)", s->hlt);
    }
    bench_add_ratio(bs, "loop f / flat f", kf, bench_find(bs, SYS_TG, "f"), 0);
    bench_add_ratio(bs, "loop grad / flat grad", kg, bench_find(bs, SYS_TG, "grad"), 0);
    bench_add_ratio(bs, "loop hvp / flat hvp", kh, bench_find(bs, SYS_TG, "hvp"), 0);
    bench_add_ratio(bs, "loop dtape grad / flat dtape grad", kdg,
                    bench_find(bs, SYS_TG_DTAPE, "grad"), 0);
    bench_add_ratio(bs, "loop dtape hvp / flat dtape hvp", kdh,
                    bench_find(bs, SYS_TG_DTAPE, "hvp"), 0);
    free(flat);
    free(got);
}

/* Registers, checks and runs a scalar workload.  extra(): W1's batch cases. */
static int
run_scalar(const bench_opts *o, scalar_wl *wl, size_t batch_points, FILE *csv)
{
    bench_set bs;
    bench_set_init(&bs, wl->workload, wl->size);
    size_t n = wl->n;
    sc_state s;
    memset(&s, 0, sizeof s);
    s.wl = wl;
    s.n = n;
    s.x = wl->x;
    s.v = xcalloc(n, sizeof *s.v);
    for (size_t i = 0; i < n; i++)
        s.v[i] = 1.0;
    s.xv = xcalloc(2 * n, sizeof *s.xv);
    memcpy(s.xv, wl->x, n * sizeof *s.xv);
    memcpy(s.xv + n, s.v, n * sizeof *s.xv);
    s.fdx = xcalloc(n, sizeof *s.fdx);
    memcpy(s.fdx, wl->x, n * sizeof *s.fdx);
    s.g = xcalloc(n, sizeof *s.g);
    s.hv = xcalloc(n, sizeof *s.hv);
    if (wl->hess)
        s.H = xcalloc(n * n, sizeof *s.H);

    /* ---- the reference: hand-written, checked against central differences */
    selfcheck_scalar(&bs, wl, &s);
    double fref = wl->f(wl->ctx, wl->x);
    double *gref = xcalloc(n, sizeof *gref), *hvref = xcalloc(n, sizeof *hvref);
    double *Href = wl->hess ? xcalloc(n * n, sizeof *Href) : NULL;
    wl->grad(wl->ctx, wl->x, gref);
    if (wl->hvp)
        wl->hvp(wl->ctx, wl->x, s.v, hvref);
    if (wl->hess)
        wl->hessf(wl->ctx, wl->x, Href);

    int k;
    bench_add(&bs, SYS_HAND, "f", c_hand_f, &s);
    bench_add(&bs, SYS_HAND, "grad", c_hand_grad, &s);
    if (wl->hvp)
        bench_add(&bs, SYS_HAND, "hvp", c_hand_hvp, &s);
    if (wl->hess)
        bench_add(&bs, SYS_HAND, "hess", c_hand_hess, &s);

    /* ---- tapegen */
    s.f = wl->record(wl->ctx, 0);
    if (!s.f || tg_tape_status(s.f) != TG_OK) {
        bench_fail(&bs, "tapegen recording failed: %s", s.f ? tg_tape_error(s.f) : "out of memory");
        goto done;
    }
    if (o->no_lazy)
        tg_tape_set_lazy(s.f, 0);
    s.gt = tg_gradient_tape(s.f, TG_ALL);
    s.ht = wl->hvp ? tg_hvp_tape(s.f, TG_ALL) : NULL;
    s.ws = tg_workspace_new(s.f);
    if (!s.gt || (wl->hvp && !s.ht) || !s.ws || tg_tape_status(s.gt) != TG_OK ||
        (wl->hvp && tg_tape_status(s.ht) != TG_OK)) {
        bench_fail(&bs, "tapegen derivative tapes or workspace failed");
        goto done;
    }
    tape_metrics(&bs, "f", s.f, NULL);
    tape_metrics(&bs, "grad tape", s.gt, s.f);
    opt_metrics(&bs, "grad tape", s.gt, s.f);
    if (wl->hvp) {
        tape_metrics(&bs, "hvp tape", s.ht, s.f);
        opt_metrics(&bs, "hvp tape", s.ht, s.f);
    }

    k = bench_add(&bs, SYS_TG, "record", c_tg_record, &s);
    bench_set_refs(&bs, k, "f", "record");
    bench_note(&bs, k, "tg_tape_new + recording + tg_tape_free");
    {
        tg_tape *t2 = wl->record(wl->ctx, 0);
        if (!t2 || tg_tape_size(t2) != tg_tape_size(s.f))
            bench_fail(&bs, "tapegen: a second recording differs in size");
        tg_tape_free(t2);
    }
    {                                       /* recording at a point (issue 13) */
        k = bench_add(&bs, SYS_TG, "record at a point", c_tg_record_at, &s);
        bench_set_refs(&bs, k, "", "record");
        bench_note(&bs, k, "as record, inputs declared with values (tg_input_vec_at): every "
                   "instruction computes its value; target <= 1.3x record");
        k = bench_add(&bs, SYS_TG, "record at a point nocse", c_tg_record_at_nocse, &s);
        bench_set_refs(&bs, k, "", "record");
        bench_note(&bs, k, "as record nocse, with values; compare with record nocse");
        tg_tape *t2 = wl->record(wl->ctx, TGREC_AT);
        if (!t2 || tg_tape_status(t2) != TG_OK || tg_tape_size(t2) != tg_tape_size(s.f))
            bench_fail(&bs, "tapegen: recording at a point changed the tape");
        tg_tape_free(t2);
    }
    k = bench_add(&bs, SYS_TG, "record nocse", c_tg_record_nocse, &s);
    bench_set_refs(&bs, k, "", "record");
    bench_note(&bs, k, "as record, with tg_tape_new_ex(TG_NO_CSE): the fast option");
    {
        tg_tape *t2 = wl->record(wl->ctx, TG_NO_CSE);
        if (!t2 || tg_tape_status(t2) != TG_OK || tg_tape_size(t2) < tg_tape_size(s.f))
            bench_fail(&bs, "tapegen: the TG_NO_CSE recording failed or is smaller");
        tg_tape_free(t2);
    }
    k = bench_add(&bs, SYS_TG, "f", c_tg_f, &s);
    if (tg_ok(&bs, tg_eval(s.f, s.x, &s.y), "tg_eval"))
        bench_check(&bs, k, &s.y, &fref, 1, AD_TOL, "f");
    k = bench_add(&bs, SYS_TG, "grad", c_tg_grad, &s);
    if (tg_ok(&bs, tg_gradient(s.f, s.x, s.g), "tg_gradient")) {
        if (o->inject_mismatch)   /* test of the harness: this must be caught */
            s.g[n - 1] *= 1.0 + 1e-7;
        bench_check(&bs, k, s.g, gref, n, AD_TOL, "gradient");
    }
    if (wl->hvp) {
        k = bench_add(&bs, SYS_TG, "hvp", c_tg_hvp, &s);
        if (tg_ok(&bs, tg_hvp(s.f, s.x, s.v, s.hv), "tg_hvp"))
            bench_check(&bs, k, s.hv, hvref, n, AD_TOL, "HVP");
    }
    if (wl->hess) {
        k = bench_add(&bs, SYS_TG, "hess", c_tg_hess, &s);
        if (tg_ok(&bs, tg_hessian(s.f, s.x, s.H), "tg_hessian"))
            bench_check(&bs, k, s.H, Href, n * n, AD_TOL, "Hessian");
    }
    k = bench_add(&bs, SYS_TG_WS, "f", c_tgw_f, &s);
    if (tg_ok(&bs, tg_eval_ws(s.f, s.ws, s.x, &s.y), "tg_eval_ws"))
        bench_check(&bs, k, &s.y, &fref, 1, AD_TOL, "f");
    k = bench_add(&bs, SYS_TG_WS, "grad", c_tgw_grad, &s);
    if (tg_ok(&bs, tg_gradient_ws(s.f, s.ws, s.x, s.g), "tg_gradient_ws"))
        bench_check(&bs, k, s.g, gref, n, AD_TOL, "gradient");
    if (wl->hvp) {
        k = bench_add(&bs, SYS_TG_WS, "hvp", c_tgw_hvp, &s);
        if (tg_ok(&bs, tg_hvp_ws(s.f, s.ws, s.x, s.v, s.hv), "tg_hvp_ws"))
            bench_check(&bs, k, s.hv, hvref, n, AD_TOL, "HVP");
    }
    if (wl->hess) {
        k = bench_add(&bs, SYS_TG_WS, "hess", c_tgw_hess, &s);
        if (tg_ok(&bs, tg_hessian_ws(s.f, s.ws, s.x, s.H), "tg_hessian_ws"))
            bench_check(&bs, k, s.H, Href, n * n, AD_TOL, "Hessian");
    }
    bench_metric_add(&bs, SYS_TG, "workspace bytes", (double)tg_workspace_bytes(s.ws), "B",
                     "tg_workspace_new(f)");
    k = bench_add(&bs, SYS_TG_DTAPE, "grad", c_dt_grad, &s);
    bench_note(&bs, k, "tg_eval of tg_gradient_tape(f)");
    if (tg_ok(&bs, tg_eval(s.gt, s.x, s.g), "tg_eval(grad tape)"))
        bench_check(&bs, k, s.g, gref, n, AD_TOL, "gradient");
    if (wl->hvp) {
        k = bench_add(&bs, SYS_TG_DTAPE, "hvp", c_dt_hvp, &s);
        bench_note(&bs, k, "tg_eval of tg_hvp_tape(f)");
        if (tg_ok(&bs, tg_eval(s.ht, s.xv, s.hv), "tg_eval(hvp tape)"))
            bench_check(&bs, k, s.hv, hvref, n, AD_TOL, "HVP");
    }
    k = bench_add(&bs, SYS_TG_DTAPE, "grad tape build", c_tg_build_grad, &s);
    bench_set_refs(&bs, k, "", "record");
    bench_note(&bs, k, "tg_gradient_tape + tg_tape_free; x ADOL-C = vs ADOL-C taping");
    if (wl->hvp) {
        k = bench_add(&bs, SYS_TG_DTAPE, "hvp tape build", c_tg_build_hvp, &s);
        bench_set_refs(&bs, k, "", "record");
        bench_note(&bs, k, "tg_hvp_tape + tg_tape_free; x ADOL-C = vs ADOL-C taping");
    }

    /* ---- tapegen, the loop kept in the tape */
    if (wl->record_loop)
        add_loop_cases(&bs, o, wl, &s, fref, gref, hvref, Href);

    /* ---- ADOL-C */
    if (o->adolc && adb_available()) {
        s.tag = next_tag++;
        s.tag_rec = next_tag++;
        adb_set_buffer_size(8 * tg_tape_size(s.f) + 4096);
        if (wl->adolc_tape(wl->ctx, s.tag, wl->x_rec) != 0) {
            bench_fail(&bs, "ADOL-C taping failed");
        } else {
            adolc_metrics(&bs, s.tag);
            k = bench_add(&bs, SYS_ADOLC, "record", c_ad_record, &s);
            bench_set_refs(&bs, k, "f", "record");
            bench_note(&bs, k, "new adouble[] + trace_on..trace_off (retaping one tag)");
            k = bench_add(&bs, SYS_ADOLC, "f", c_ad_f, &s);
            if (adb_function(s.tag, 1, (int)n, s.x, &s.y) < 0)
                bench_fail(&bs, "ADOL-C function() failed");
            else
                bench_check(&bs, k, &s.y, &fref, 1, AD_TOL, "f");
            k = bench_add(&bs, SYS_ADOLC, "grad", c_ad_grad, &s);
            if (adb_gradient(s.tag, (int)n, s.x, s.g) < 0)
                bench_fail(&bs, "ADOL-C gradient() failed");
            else
                bench_check(&bs, k, s.g, gref, n, AD_TOL, "gradient");
            if (wl->hvp) {
                k = bench_add(&bs, SYS_ADOLC, "hvp", c_ad_hvp, &s);
                bench_note(&bs, k, "hess_vec");
                if (adb_hess_vec(s.tag, (int)n, s.x, s.v, s.hv) < 0)
                    bench_fail(&bs, "ADOL-C hess_vec() failed");
                else
                    bench_check(&bs, k, s.hv, hvref, n, AD_TOL, "HVP");
            }
            if (wl->hess) {
                s.AH = adb_alloc2(n, n);
                k = bench_add(&bs, SYS_ADOLC, "hess", c_ad_hess, &s);
                bench_note(&bs, k, "hessian (lower triangle)");
                if (adb_hessian(s.tag, (int)n, s.x, s.AH) < 0) {
                    bench_fail(&bs, "ADOL-C hessian() failed");
                } else {
                    lower_to_full(s.AH, n, s.H);
                    bench_check(&bs, k, s.H, Href, n * n, AD_TOL, "Hessian");
                }
            }
        }
    }

    /* ---- central finite differences */
    if (wl->fd) {
        k = bench_add(&bs, SYS_FD, "grad", c_fd_grad, &s);
        bench_note(&bs, k, "2n evaluations of the hand-written f");
        c_fd_grad(&s);
        bench_check_norm(&bs, k, s.g, gref, n, FD_SYS_TOL, "gradient");
    }

    /* ---- batches (W1 n = 100) */
    if (batch_points > 0) {
        s.npts = batch_points;
        s.X = xcalloc(n * s.npts, sizeof *s.X);
        s.G = xcalloc(n * s.npts, sizeof *s.G);
        double *Gref = xcalloc(n * s.npts, sizeof *Gref);
        for (size_t p = 0; p < s.npts; p++)
            for (size_t i = 0; i < n; i++)
                s.X[p * n + i] = wl->x[i] + 1e-4 * (double)p;
        for (size_t p = 0; p < s.npts; p++)
            wl->grad(wl->ctx, s.X + p * n, Gref + p * n);
        char op[40];
        snprintf(op, sizeof op, "grad loop %zu pts", s.npts);
        k = bench_add(&bs, SYS_HAND, op, c_hand_grad_loop, &s);
        bench_get(&bs, k)->per_call_div = (double)s.npts;
        bench_note(&bs, k, "time per point");
        int kl = bench_add(&bs, SYS_TG, op, c_tg_grad_loop, &s);
        bench_get(&bs, kl)->per_call_div = (double)s.npts;
        bench_set_refs(&bs, kl, op, "");
        bench_note(&bs, kl, "tg_gradient per point; time per point");
        memset(s.G, 0, n * s.npts * sizeof *s.G);
        c_tg_grad_loop(&s);
        bench_check(&bs, kl, s.G, Gref, n * s.npts, AD_TOL, "gradients");
        int kb[2] = { -1, -1 };
        for (int th = 1; th <= 2; th++) {
            char bop[40];
            snprintf(bop, sizeof bop, "grad batch %zu pts %d thr", s.npts, th);
            kb[th - 1] = bench_add(&bs, SYS_TG, bop, c_tg_grad_batch, &s);
            bench_case *c = bench_get(&bs, kb[th - 1]);
            c->per_call_div = (double)s.npts;
            c->threads = th;
            c->process_cpu = 1;
            bench_set_refs(&bs, kb[th - 1], op, "");
            bench_note(&bs, kb[th - 1], "tg_gradient_batch; time per point; process CPU%s",
                       bench_have_openmp() ? "" : "; NO OpenMP in this build");
            bench_set_threads(th);
            memset(s.G, 0, n * s.npts * sizeof *s.G);
            if (tg_ok(&bs, tg_gradient_batch(s.f, s.npts, s.X, s.G), "tg_gradient_batch"))
                bench_check(&bs, kb[th - 1], s.G, Gref, n * s.npts, AD_TOL, "gradients");
        }
        bench_set_threads(bench_max_threads());
        /* CPU time for the one-thread comparison (robust on a busy machine),
         * wall time for the scaling; the CPU ratio of 2 to 1 threads shows
         * the parallel overhead whatever the load. */
        bench_add_ratio(&bs, "batch 1 thr / single calls", kb[0], kl, 0);
        bench_add_ratio(&bs, "batch 1 thr / single calls (wall)", kb[0], kl, 1);
        bench_add_ratio(&bs, "batch speedup 2 thr vs 1 thr", kb[0], kb[1], 1);
        bench_add_ratio(&bs, "batch CPU per point 2 thr / 1 thr", kb[1], kb[0], 0);
        free(Gref);
    }

    if (!bench_run_checked(&bs, o))
        goto done;
    {
        /* FD gradient estimate where it is too slow to time */
        int kf = bench_find(&bs, SYS_HAND, "f");
        if (!wl->fd && kf >= 0 && bs.c[kf].nr > 0) {
            double tf = bs.c[kf].cpu[0];
            bench_metric_add(&bs, SYS_FD, "grad (not timed: estimate 2n x hand f)",
                             2.0 * (double)n * tf, "s", "estimated from the hand-written f");
        }
    }
done:;
    int failed = bench_report(&bs, csv);
    tg_tape_free(s.f);
    tg_tape_free(s.gt);
    tg_tape_free(s.ht);
    tg_tape_free(s.fl);
    tg_tape_free(s.glt);
    tg_tape_free(s.hlt);
    tg_workspace_free(s.ws);
    adb_free2(s.AH);
    free(s.v);
    free(s.xv);
    free(s.fdx);
    free(s.g);
    free(s.hv);
    free(s.H);
    free(s.X);
    free(s.G);
    free(gref);
    free(hvref);
    free(Href);
    bench_set_free(&bs);
    return failed;
}

/* ------------------------------------------------------------------- W1 */

typedef struct w1ctx {
    size_t n;
} w1ctx;

static double w1c_f(const void *c, const double *x) { return w1_f(((const w1ctx *)c)->n, x); }
static void w1c_grad(const void *c, const double *x, double *g) { w1_grad(((const w1ctx *)c)->n, x, g); }
static void w1c_hvp(const void *c, const double *x, const double *v, double *hv)
{
    w1_hvp(((const w1ctx *)c)->n, x, v, hv);
}
static void w1c_hess(const void *c, const double *x, double *H) { w1_hess(((const w1ctx *)c)->n, x, H); }
static tg_tape *w1c_record(const void *c, unsigned fl) { return tgrec_rosenbrock(((const w1ctx *)c)->n, fl); }
static tg_tape *w1c_record_map(const void *c, unsigned fl)
{
    return tgrec_rosenbrock_map(((const w1ctx *)c)->n, fl);
}
static int w1c_adolc(const void *c, short tag, const double *x0)
{
    return adb_tape_rosenbrock(tag, (int)((const w1ctx *)c)->n, x0);
}

int
run_w1(const bench_opts *o, size_t n, size_t batch_points, FILE *csv)
{
    w1ctx c = { n };
    double *x = xcalloc(n, sizeof *x), *xr = xcalloc(n, sizeof *xr);
    w1_eval_point(n, x);
    w1_record_point(n, xr);
    scalar_wl wl = {
        .workload = "W1 rosenbrock", .n = n, .x = x, .x_rec = xr,
        .hess = n <= 1000, .fd = n <= 1000, .fd_sample = n > 1000 ? 64 : 0,
        .f = w1c_f, .grad = w1c_grad, .hvp = w1c_hvp, .hessf = w1c_hess, .ctx = &c,
        .record = w1c_record, .adolc_tape = w1c_adolc,
        .record_loop = o->no_loops ? NULL : w1c_record_map,
    };
    snprintf(wl.size, sizeof wl.size, "n=%zu", n);
    int r = run_scalar(o, &wl, batch_points, csv);
    free(x);
    free(xr);
    return r;
}

/* ------------------------------------------------------------------- W2 */

static double w2c_f(const void *c, const double *x) { return w2_f(c, x); }
static void w2c_grad(const void *c, const double *x, double *g) { w2_grad(c, x, g); }
static void w2c_hvp(const void *c, const double *x, const double *v, double *hv) { w2_hvp(c, x, v, hv); }
static tg_tape *w2c_record(const void *c, unsigned fl) { return tgrec_mlp(c, fl); }
static int w2c_adolc(const void *c, short tag, const double *x0)
{
    const w2_data_t *d = c;
    return adb_tape_mlp(tag, x0, &d->in[0][0], d->t, MLP_S);
}

int
run_w2(const bench_opts *o, FILE *csv)
{
    static w2_data_t d;
    double theta[MLP_NP];
    w2_theta(theta);
    w2_data(&d.in[0][0], d.t);
    scalar_wl wl = {
        .workload = "W2 mlp", .n = MLP_NP, .x = theta, .x_rec = theta,
        .hess = 0, .fd = 1, .fd_sample = 0,
        .f = w2c_f, .grad = w2c_grad, .hvp = w2c_hvp, .hessf = NULL, .ctx = &d,
        .record = w2c_record, .adolc_tape = w2c_adolc,
    };
    snprintf(wl.size, sizeof wl.size, "p=%d", MLP_NP);
    return run_scalar(o, &wl, 0, csv);
}

/* ------------------------------------------------------------------- W3 */

static double w3c_f(const void *c, const double *u) { (void)c; return w3_f(u); }
static void w3c_grad(const void *c, const double *u, double *g) { w3_grad(u, g, (double *)(uintptr_t)c); }
static void w3c_hess(const void *c, const double *u, double *H) { (void)c; w3_hess(u, H); }
static tg_tape *w3c_record(const void *c, unsigned fl) { (void)c; return tgrec_lorenz(fl); }
static int w3c_adolc(const void *c, short tag, const double *x0)
{
    (void)c;
    return adb_tape_lorenz(tag, LORENZ_STEPS, LORENZ_DT, x0);
}

int
run_w3(const bench_opts *o, FILE *csv)
{
    double u[6];
    w3_point(u);
    double *traj = xcalloc(3 * (LORENZ_STEPS + 1), sizeof *traj);
    scalar_wl wl = {
        .workload = "W3 lorenz_rk4", .n = 6, .x = u, .x_rec = u,
        .hess = 1, .fd = 1, .fd_sample = 0,
        .f = w3c_f, .grad = w3c_grad, .hvp = NULL, .hessf = w3c_hess, .ctx = traj,
        .record = w3c_record, .adolc_tape = w3c_adolc,
    };
    snprintf(wl.size, sizeof wl.size, "steps=%d", LORENZ_STEPS);
    int r = run_scalar(o, &wl, 0, csv);
    free(traj);
    return r;
}

/* ------------------------------------------------------------------- W4 */

typedef struct w4_state {
    size_t n;
    double *x, *v, *r, *J, *jv, *fdx, *yp, *ym, *xv;
    tg_tape *f, *jt;
    tg_workspace *ws;
    short tag, tag_rec;
    double **AJ;
} w4_state;

static void w4v_f(const void *c, const double *x, double *y) { w4_f(*(const size_t *)c, x, y); }

static void c4_hand_f(void *p) { w4_state *s = p; w4_f(s->n, s->x, s->r); }
static void c4_hand_jac(void *p) { w4_state *s = p; w4_jac(s->n, s->x, s->J); }
static void c4_hand_jvp(void *p) { w4_state *s = p; w4_jvp(s->n, s->x, s->v, s->jv); }
static void c4_tg_record(void *p) { w4_state *s = p; tg_tape_free(tgrec_broyden(s->n, 0)); }
static void c4_tg_f(void *p) { w4_state *s = p; tg_eval(s->f, s->x, s->r); }
static void c4_tg_jac(void *p) { w4_state *s = p; tg_jacobian(s->f, s->x, s->J); }
static void c4_tg_jvp(void *p) { w4_state *s = p; tg_jvp(s->f, s->x, s->v, s->jv); }
static void c4_tgw_f(void *p) { w4_state *s = p; tg_eval_ws(s->f, s->ws, s->x, s->r); }
static void c4_tgw_jac(void *p) { w4_state *s = p; tg_jacobian_ws(s->f, s->ws, s->x, s->J); }
static void c4_tgw_jvp(void *p) { w4_state *s = p; tg_jvp_ws(s->f, s->ws, s->x, s->v, s->jv); }
static void c4_dt_jvp(void *p) { w4_state *s = p; tg_eval(s->jt, s->xv, s->jv); }
static void c4_build_jvp(void *p) { w4_state *s = p; tg_tape_free(tg_jvp_tape(s->f, TG_ALL)); }
static void c4_ad_record(void *p) { w4_state *s = p; adb_tape_broyden(s->tag_rec, (int)s->n, s->x); }
static void c4_ad_f(void *p) { w4_state *s = p; adb_function(s->tag, (int)s->n, (int)s->n, s->x, s->r); }
static void c4_ad_jac(void *p) { w4_state *s = p; adb_jacobian(s->tag, (int)s->n, (int)s->n, s->x, s->AJ); }
static void c4_ad_jvp(void *p)
{
    w4_state *s = p;
    adb_jac_vec(s->tag, (int)s->n, (int)s->n, s->x, s->v, s->jv);
}
static void c4_fd_jac(void *p)
{
    w4_state *s = p;
    fd_jacobian(w4v_f, &s->n, s->n, s->n, s->fdx, s->J, s->yp, s->ym);
}

int
run_w4(const bench_opts *o, size_t n, FILE *csv)
{
    bench_set bs;
    char size[24];
    snprintf(size, sizeof size, "n=%zu", n);
    bench_set_init(&bs, "W4 broyden_tridiagonal", size);
    w4_state s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.x = xcalloc(n, sizeof *s.x);
    s.v = xcalloc(n, sizeof *s.v);
    s.r = xcalloc(n, sizeof *s.r);
    s.J = xcalloc(n * n, sizeof *s.J);
    s.jv = xcalloc(n, sizeof *s.jv);
    s.fdx = xcalloc(n, sizeof *s.fdx);
    s.yp = xcalloc(n, sizeof *s.yp);
    s.ym = xcalloc(n, sizeof *s.ym);
    s.xv = xcalloc(2 * n, sizeof *s.xv);
    w4_point(n, s.x);
    for (size_t i = 0; i < n; i++)
        s.v[i] = 1.0;
    memcpy(s.fdx, s.x, n * sizeof *s.x);
    memcpy(s.xv, s.x, n * sizeof *s.x);
    memcpy(s.xv + n, s.v, n * sizeof *s.v);

    double *rref = xcalloc(n, sizeof *rref), *Jref = xcalloc(n * n, sizeof *Jref);
    double *jvref = xcalloc(n, sizeof *jvref), *tmp = xcalloc(3 * n, sizeof *tmp);
    w4_f(n, s.x, rref);
    w4_jac(n, s.x, Jref);
    w4_jvp(n, s.x, s.v, jvref);
    /* hand-written vs (fourth-order) central differences */
    {
        double *e = xcalloc(n, sizeof *e), *col = xcalloc(n, sizeof *col);
        double *t4 = xcalloc(4 * n, sizeof *t4);
        double ej = INFINITY, ejv = INFINITY;
        for (int q = 0; q < 3; q++) {
            fd5_c = fd5_cs[q];
            for (size_t j = 0; j < n; j++) {
                e[j] = 1.0;
                fd5_directional(w4v_f, &s.n, n, n, s.x, e, col, tmp, t4);
                e[j] = 0.0;
                for (size_t i = 0; i < n; i++)
                    s.J[i * n + j] = col[i];
            }
            ej = fmin(ej, bench_normerr(s.J, Jref, n * n));
            fd5_directional(w4v_f, &s.n, n, n, s.x, s.v, s.jv, tmp, t4);
            ejv = fmin(ejv, bench_normerr(s.jv, jvref, n));
        }
        bench_selfcheck(&bs, "hand Jacobian vs central FD (normwise)", ej, FD_SELF_TOL);
        bench_selfcheck(&bs, "hand JVP vs central FD (normwise)", ejv, FD_SELF_TOL);
        free(e);
        free(col);
        free(t4);
    }

    int k;
    bench_add(&bs, SYS_HAND, "f", c4_hand_f, &s);
    bench_add(&bs, SYS_HAND, "jac", c4_hand_jac, &s);
    bench_add(&bs, SYS_HAND, "jvp", c4_hand_jvp, &s);

    s.f = tgrec_broyden(n, 0);
    if (!s.f || tg_tape_status(s.f) != TG_OK) {
        bench_fail(&bs, "tapegen recording failed");
        goto done;
    }
    s.jt = tg_jvp_tape(s.f, TG_ALL);
    s.ws = tg_workspace_new(s.f);
    if (!s.jt || !s.ws || tg_tape_status(s.jt) != TG_OK) {
        bench_fail(&bs, "tapegen jvp tape or workspace failed");
        goto done;
    }
    tape_metrics(&bs, "f", s.f, NULL);
    tape_metrics(&bs, "jvp tape", s.jt, s.f);
    opt_metrics(&bs, "jvp tape", s.jt, s.f);
    bench_metric_add(&bs, SYS_TG, "workspace bytes", (double)tg_workspace_bytes(s.ws), "B",
                     "tg_workspace_new(f)");
    k = bench_add(&bs, SYS_TG, "record", c4_tg_record, &s);
    bench_set_refs(&bs, k, "f", "record");
    bench_note(&bs, k, "tg_tape_new + recording + tg_tape_free");
    k = bench_add(&bs, SYS_TG, "f", c4_tg_f, &s);
    if (tg_ok(&bs, tg_eval(s.f, s.x, s.r), "tg_eval"))
        bench_check(&bs, k, s.r, rref, n, AD_TOL, "residuals");
    k = bench_add(&bs, SYS_TG, "jac", c4_tg_jac, &s);
    if (tg_ok(&bs, tg_jacobian(s.f, s.x, s.J), "tg_jacobian"))
        bench_check(&bs, k, s.J, Jref, n * n, AD_TOL, "Jacobian");
    k = bench_add(&bs, SYS_TG, "jvp", c4_tg_jvp, &s);
    if (tg_ok(&bs, tg_jvp(s.f, s.x, s.v, s.jv), "tg_jvp"))
        bench_check(&bs, k, s.jv, jvref, n, AD_TOL, "JVP");
    k = bench_add(&bs, SYS_TG_WS, "f", c4_tgw_f, &s);
    if (tg_ok(&bs, tg_eval_ws(s.f, s.ws, s.x, s.r), "tg_eval_ws"))
        bench_check(&bs, k, s.r, rref, n, AD_TOL, "residuals");
    k = bench_add(&bs, SYS_TG_WS, "jac", c4_tgw_jac, &s);
    if (tg_ok(&bs, tg_jacobian_ws(s.f, s.ws, s.x, s.J), "tg_jacobian_ws"))
        bench_check(&bs, k, s.J, Jref, n * n, AD_TOL, "Jacobian");
    k = bench_add(&bs, SYS_TG_WS, "jvp", c4_tgw_jvp, &s);
    if (tg_ok(&bs, tg_jvp_ws(s.f, s.ws, s.x, s.v, s.jv), "tg_jvp_ws"))
        bench_check(&bs, k, s.jv, jvref, n, AD_TOL, "JVP");
    k = bench_add(&bs, SYS_TG_DTAPE, "jvp", c4_dt_jvp, &s);
    bench_note(&bs, k, "tg_eval of tg_jvp_tape(f)");
    if (tg_ok(&bs, tg_eval(s.jt, s.xv, s.jv), "tg_eval(jvp tape)"))
        bench_check(&bs, k, s.jv, jvref, n, AD_TOL, "JVP");
    k = bench_add(&bs, SYS_TG_DTAPE, "jvp tape build", c4_build_jvp, &s);
    bench_set_refs(&bs, k, "", "record");
    bench_note(&bs, k, "tg_jvp_tape + tg_tape_free; x ADOL-C = vs ADOL-C taping");

    if (o->adolc && adb_available()) {
        s.tag = next_tag++;
        s.tag_rec = next_tag++;
        adb_set_buffer_size(8 * tg_tape_size(s.f) + 4096);
        if (adb_tape_broyden(s.tag, (int)n, s.x) != 0) {
            bench_fail(&bs, "ADOL-C taping failed");
        } else {
            adolc_metrics(&bs, s.tag);
            s.AJ = adb_alloc2(n, n);
            k = bench_add(&bs, SYS_ADOLC, "record", c4_ad_record, &s);
            bench_set_refs(&bs, k, "f", "record");
            bench_note(&bs, k, "new adouble[] + trace_on..trace_off (retaping one tag)");
            k = bench_add(&bs, SYS_ADOLC, "f", c4_ad_f, &s);
            if (adb_function(s.tag, (int)n, (int)n, s.x, s.r) < 0)
                bench_fail(&bs, "ADOL-C function() failed");
            else
                bench_check(&bs, k, s.r, rref, n, AD_TOL, "residuals");
            k = bench_add(&bs, SYS_ADOLC, "jac", c4_ad_jac, &s);
            bench_note(&bs, k, "jacobian");
            if (adb_jacobian(s.tag, (int)n, (int)n, s.x, s.AJ) < 0) {
                bench_fail(&bs, "ADOL-C jacobian() failed");
            } else {
                for (size_t i = 0; i < n; i++)
                    memcpy(s.J + i * n, s.AJ[i], n * sizeof *s.J);
                bench_check(&bs, k, s.J, Jref, n * n, AD_TOL, "Jacobian");
            }
            k = bench_add(&bs, SYS_ADOLC, "jvp", c4_ad_jvp, &s);
            bench_note(&bs, k, "jac_vec");
            if (adb_jac_vec(s.tag, (int)n, (int)n, s.x, s.v, s.jv) < 0)
                bench_fail(&bs, "ADOL-C jac_vec() failed");
            else
                bench_check(&bs, k, s.jv, jvref, n, AD_TOL, "JVP");
        }
    }

    k = bench_add(&bs, SYS_FD, "jac", c4_fd_jac, &s);
    bench_note(&bs, k, "2n evaluations of the hand-written residuals");
    c4_fd_jac(&s);
    bench_check_norm(&bs, k, s.J, Jref, n * n, FD_SYS_TOL, "Jacobian");

    bench_run_checked(&bs, o);
done:;
    int failed = bench_report(&bs, csv);
    tg_tape_free(s.f);
    tg_tape_free(s.jt);
    tg_workspace_free(s.ws);
    adb_free2(s.AJ);
    free(s.x);
    free(s.v);
    free(s.r);
    free(s.J);
    free(s.jv);
    free(s.fdx);
    free(s.yp);
    free(s.ym);
    free(s.xv);
    free(rref);
    free(Jref);
    free(jvref);
    free(tmp);
    bench_set_free(&bs);
    return failed;
}

/* ------------------------------------------------------------ memprobe */

int
run_memprobe(const char *system, size_t n, FILE *csv)
{
    bench_set bs;
    char size[24];
    snprintf(size, sizeof size, "n=%zu", n);
    bench_set_init(&bs, "W1 rosenbrock", size);
    double *x = xcalloc(n, sizeof *x), *xr = xcalloc(n, sizeof *xr);
    double *v = xcalloc(n, sizeof *v), *g = xcalloc(n, sizeof *g), *hv = xcalloc(n, sizeof *hv);
    double *gref = xcalloc(n, sizeof *gref);
    w1_eval_point(n, x);
    w1_record_point(n, xr);
    for (size_t i = 0; i < n; i++)
        v[i] = 1.0;
    w1_grad(n, x, gref);
    /* touch everything, then take the baseline */
    w1_hvp(n, x, v, hv);
    memset(g, 0, n * sizeof *g);
    long base = bench_peak_rss_kib();
    double y = 0.0;
    const char *sys = NULL;
    int ok = 1;
    if (strcmp(system, "tapegen") == 0) {
        sys = SYS_TG;
        tg_tape *f = tgrec_rosenbrock(n, 0);
        ok = f && tg_tape_status(f) == TG_OK && tg_eval(f, x, &y) == TG_OK &&
             tg_gradient(f, x, g) == TG_OK && tg_hvp(f, x, v, hv) == TG_OK;
        if (f) {
            bench_metric_add(&bs, sys, "memprobe tape bytes", (double)tg_tape_bytes(f), "B",
                             "tg_tape_bytes(f)");
            bench_metric_add(&bs, sys, "memprobe bytes/instruction",
                             (double)tg_tape_bytes(f) / (double)tg_tape_size(f), "B", "");
        }
        tg_tape_free(f);
    } else if (strcmp(system, "adolc") == 0) {
        sys = SYS_ADOLC;
        if (!adb_available()) {
            fprintf(stderr, "memprobe: ADOL-C is not built in\n");
            ok = 0;
        } else {
            adb_set_buffer_size(8 * 7 * n + 4096);
            ok = adb_tape_rosenbrock(1, (int)n, xr) == 0 && adb_function(1, 1, (int)n, x, &y) >= 0 &&
                 adb_gradient(1, (int)n, x, g) >= 0 && adb_hess_vec(1, (int)n, x, v, hv) >= 0;
        }
    } else if (strcmp(system, "hand") == 0) {
        sys = SYS_HAND;
        y = w1_f(n, x);
        w1_grad(n, x, g);
        w1_hvp(n, x, v, hv);
    } else {
        fprintf(stderr, "memprobe: unknown system %s (tapegen, adolc, hand)\n", system);
        ok = 0;
    }
    if (ok && bench_relerr(g, gref, n) > AD_TOL) {
        fprintf(stderr, "memprobe: %s gradient differs from the hand-written one\n", system);
        ok = 0;
    }
    long peak = bench_peak_rss_kib();
    if (sys && ok) {
        bench_metric_add(&bs, sys, "memprobe peak RSS", (double)peak * 1024.0, "B",
                         "process running record + f + grad + hvp of this system only");
        bench_metric_add(&bs, sys, "memprobe peak RSS above baseline",
                         (double)(peak - base) * 1024.0, "B",
                         "minus RSS after allocating the point and the result arrays");
        printf("memprobe %s W1 n=%zu: peak RSS %.1f MiB (baseline %.1f MiB)\n", system, n,
               (double)peak / 1024.0, (double)base / 1024.0);
        if (csv)
            bench_write_csv(&bs, csv);
    }
    free(x);
    free(xr);
    free(v);
    free(g);
    free(hv);
    free(gref);
    bench_set_free(&bs);
    return ok ? 0 : 1;
}
