/* bench/src/report.c -- tgbench --report OUTDIR FILE.csv...: merges the raw
 * rows of the per-workload processes (and of the Rust runner and run.sh)
 * into OUTDIR/results.csv, and writes OUTDIR/results.md (targets met or
 * missed, one table per workload, tapes, memory, generated Rust) and
 * OUTDIR/results.svg (time ratio to the hand-written code, log scale). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "systems.h"

enum {
    F_KIND, F_WL, F_SIZE, F_SYS, F_OP, F_UNIT, F_ROUNDS, F_CALLS, F_MED, F_MIN, F_MAX,
    F_WMED, F_WMIN, F_WMAX, F_XN_MED, F_XN_MIN, F_XN_MAX, F_XA_MED, F_XA_MIN, F_XA_MAX,
    F_CERR, F_CHECK, F_NOTE, NF
};

typedef struct row {
    char *line;         /* the original line (for results.csv) */
    char *f[NF];        /* fields (into a private copy) */
    char *buf;
} row;

typedef struct table {
    row *r;
    int n, cap;
} table;

static int
read_rows(table *t, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 || strncmp(line, "kind,", 5) == 0)
            continue;
        if (t->n == t->cap) {
            t->cap = t->cap ? 2 * t->cap : 256;
            t->r = realloc(t->r, (size_t)t->cap * sizeof *t->r);
            if (!t->r) {
                fprintf(stderr, "report: out of memory\n");
                exit(2);
            }
        }
        row *r = &t->r[t->n++];
        r->line = strdup(line);
        r->buf = strdup(line);
        if (!r->line || !r->buf) {
            fprintf(stderr, "report: out of memory\n");
            exit(2);
        }
        char *p = r->buf;
        for (int i = 0; i < NF; i++) {
            r->f[i] = p;
            char *c = p ? strchr(p, ',') : NULL;
            if (c) {
                *c = 0;
                p = c + 1;
            } else {
                p = NULL;
            }
            if (!r->f[i])
                r->f[i] = "";
        }
    }
    free(line);
    fclose(f);
    return 0;
}

static double
num(const row *r, int field)
{
    const char *s = r->f[field];
    if (!s || !*s)
        return NAN;
    char *end;
    double v = strtod(s, &end);
    return end == s ? NAN : v;
}

static int
eq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static const row *
find(const table *t, const char *kind, const char *wl, const char *size, const char *sys,
     const char *op)
{
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        if (eq(r->f[F_KIND], kind) && (!wl || eq(r->f[F_WL], wl)) &&
            (!size || eq(r->f[F_SIZE], size)) && (!sys || eq(r->f[F_SYS], sys)) &&
            (!op || eq(r->f[F_OP], op)))
            return r;
    }
    return NULL;
}

static const char *
info(const table *t, const char *key)
{
    const row *r = find(t, "info", NULL, NULL, key, NULL);
    return r ? r->f[F_NOTE] : NULL;
}

static const char *
fmt_time(double s, char *buf, size_t cap)
{
    if (isnan(s))
        snprintf(buf, cap, "-");
    else if (s < 1e-6)
        snprintf(buf, cap, "%.1f ns", s * 1e9);
    else if (s < 1e-3)
        snprintf(buf, cap, "%.2f µs", s * 1e6);
    else if (s < 1.0)
        snprintf(buf, cap, "%.2f ms", s * 1e3);
    else
        snprintf(buf, cap, "%.2f s", s);
    return buf;
}

static const char *
fmt_ratio3(double med, double lo, double hi, char *buf, size_t cap)
{
    if (isnan(med))
        snprintf(buf, cap, "-");
    else if (isnan(lo) || isnan(hi))
        snprintf(buf, cap, "%.3g", med);
    else
        snprintf(buf, cap, "%.3g [%.3g–%.3g]", med, lo, hi);
    return buf;
}

static const char *
fmt_bytes(double b, char *buf, size_t cap)
{
    if (isnan(b))
        snprintf(buf, cap, "-");
    else if (b >= 1024.0 * 1024.0)
        snprintf(buf, cap, "%.1f MiB", b / (1024.0 * 1024.0));
    else if (b >= 1024.0)
        snprintf(buf, cap, "%.1f KiB", b / 1024.0);
    else
        snprintf(buf, cap, "%.0f B", b);
    return buf;
}

/* ------------------------------------------------------------- targets */

typedef struct tstate {
    FILE *md;
    int met, missed, na;
} tstate;

/* One target line: value (median [range]) against a threshold; le: the
 * value must be <= thr (else >=). */
static void
target_line(tstate *ts, const char *target, const char *where, double med, double lo, double hi,
            double thr, int le, const char *extra)
{
    char v[96];
    const char *status;
    if (isnan(med)) {
        snprintf(v, sizeof v, "not measured");
        status = "n/a";
        ts->na++;
    } else {
        fmt_ratio3(med, lo, hi, v, sizeof v);
        int ok = le ? med <= thr : med >= thr;
        int straddle = !isnan(lo) && !isnan(hi) && (le ? (lo <= thr) != (hi <= thr)
                                                       : (lo >= thr) != (hi >= thr));
        status = ok ? (straddle ? "met (range crosses)" : "met")
                    : (straddle ? "**MISSED** (range crosses)" : "**MISSED**");
        if (ok)
            ts->met++;
        else
            ts->missed++;
    }
    fprintf(ts->md, "| %s | %s | %s | %s %.3g | %s | %s |\n", target, where, v, le ? "≤" : "≥", thr,
            status, extra ? extra : "");
}

static void
target_vs_adolc(tstate *ts, const table *t, const char *target, const char *wl, const char *size,
                const char *op, double thr)
{
    char where[96], extra[160] = "";
    snprintf(where, sizeof where, "%s %s", wl, size);
    const row *r = find(t, "time", wl, size, "tapegen", op);
    const row *w = find(t, "time", wl, size, "tapegen ws", op);
    const row *a = find(t, "time", wl, size, "ADOL-C", op);
    if (r && a) {
        char b1[32], b2[32];
        snprintf(extra, sizeof extra, "tapegen %s vs ADOL-C %s",
                 fmt_time(num(r, F_MED), b1, sizeof b1), fmt_time(num(a, F_MED), b2, sizeof b2));
        if (w && !isnan(num(w, F_XA_MED))) {
            size_t l = strlen(extra);
            snprintf(extra + l, sizeof extra - l, "; _ws variant %.3g", num(w, F_XA_MED));
        }
    } else if (r && !a) {
        snprintf(extra, sizeof extra, "ADOL-C not measured");
    }
    target_line(ts, target, where, r ? num(r, F_XA_MED) : NAN, r ? num(r, F_XA_MIN) : NAN,
                r ? num(r, F_XA_MAX) : NAN, thr, 1, extra);
}

/* Distinct (workload, size) pairs in order of appearance. */
typedef struct wlsize {
    const char *wl, *size;
} wlsize;

static int cmp_set(const void *a, const void *b);

static int
list_sets(const table *t, wlsize *out, int max)
{
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        if (!eq(r->f[F_KIND], "time") && !eq(r->f[F_KIND], "metric"))
            continue;
        if (!*r->f[F_WL])
            continue;
        int seen = 0;
        for (int k = 0; k < n; k++)
            if (eq(out[k].wl, r->f[F_WL]) && eq(out[k].size, r->f[F_SIZE]))
                seen = 1;
        if (!seen && n < max) {
            out[n].wl = r->f[F_WL];
            out[n].size = r->f[F_SIZE];
            n++;
        }
    }
    qsort(out, (size_t)n, sizeof *out, cmp_set);
    return n;
}

static double
size_value(const char *size)
{
    const char *eqs = strchr(size, '=');
    return eqs ? strtod(eqs + 1, NULL) : 0.0;
}

static int
cmp_set(const void *a, const void *b)
{
    const wlsize *x = a, *y = b;
    int c = strcmp(x->wl, y->wl);
    if (c)
        return c;
    double u = size_value(x->size), v = size_value(y->size);
    return (u > v) - (u < v);
}

/* ------------------------------------------- sparse derivatives (issue 10) */

static double metric(const table *t, const char *wl, const char *size, const char *sys,
                     const char *name);

#define SW1 "sparse W1 rosenbrock"
#define SW4 "sparse W4 broyden"

static const char *const sparse_sizes[3] = { "n=1000", "n=10000", "n=100000" };

/* A ratio row (name) of set (wl, size) against thr; sizes not run are
 * skipped, except the first (then "not measured"). */
static void
ratio_target(tstate *ts, const table *t, const char *target, const char *wl, const char *size,
             const char *name, double thr, int must)
{
    char where[96];
    snprintf(where, sizeof where, "%s %s", wl, size);
    const row *r = find(t, "ratio", wl, size, name, NULL);
    if (!r && !must)
        return;
    target_line(ts, target, where, r ? num(r, F_MED) : NAN, r ? num(r, F_MIN) : NAN,
                r ? num(r, F_MAX) : NAN, thr, 1, r ? r->f[F_OP] : "size not run (quick mode?)");
}

/* Linear in n: CPU time per call per n at 10^5 over the same at 10^3. */
static void
linear_target(tstate *ts, const table *t, const char *target, const char *wl, const char *sys,
              const char *op)
{
    const row *a = find(t, "time", wl, "n=1000", sys, op);
    const row *b = find(t, "time", wl, "n=100000", sys, op);
    double v = a && b ? (num(b, F_MED) / 1e5) / (num(a, F_MED) / 1e3) : NAN;
    char extra[160], t1[32], t2[32];
    snprintf(extra, sizeof extra, "%s per call: %s at n=1000, %s at n=100000", op,
             fmt_time(a ? num(a, F_MED) : NAN, t1, sizeof t1),
             fmt_time(b ? num(b, F_MED) : NAN, t2, sizeof t2));
    target_line(ts, target, wl, v, NAN, NAN, 2.0, 1, extra);
}

static void
write_sparse_targets(tstate *ts, const table *t)
{
    for (int k = 0; k < 3; k++)
        ratio_target(ts, t, "tg_sparse_hessian time / tg_gradient time", SW1, sparse_sizes[k],
                     "tg_sparse_hessian / tg_gradient", 6.0, k == 0);
    linear_target(ts, t, "tg_sparse_hessian linear in n: time/n at 1e5 over 1e3", SW1, "tapegen",
                  "sparse hess");
    for (int k = 0; k < 3; k++)
        ratio_target(ts, t, "tg_sparse_jacobian time / tg_eval time", SW4, sparse_sizes[k],
                     "tg_sparse_jacobian / tg_eval", 4.0, k == 0);
    linear_target(ts, t, "tg_sparse_jacobian linear in n: time/n at 1e5 over 1e3", SW4, "tapegen",
                  "sparse jac");
    {   /* CppAD 2024 sparse_hes on this machine: 0.84 ms; at least 2x faster */
        const row *r = find(t, "time", SW1, "n=1000", "tapegen", "sparse hess");
        target_line(ts, "tg_sparse_hessian CPU time, ms (CppAD sparse_hes: 0.84 ms)",
                    SW1 " n=1000", r ? 1e3 * num(r, F_MED) : NAN, r ? 1e3 * num(r, F_MIN) : NAN,
                    r ? 1e3 * num(r, F_MAX) : NAN, 0.42, 1, "at least 2x faster than CppAD");
    }
    static const struct {
        const char *wl, *op, *metric;
    } pat[2] = {
        { SW1, "hessian pattern", "Hessian pattern" },
        { SW4, "jacobian pattern", "Jacobian pattern" },
    };
    for (int k = 0; k < 2; k++) {
        char name[96], where[96], extra[200];
        snprintf(where, sizeof where, "%s n=100000", pat[k].wl);
        const row *r = find(t, "time", pat[k].wl, "n=100000", "tapegen", pat[k].op);
        snprintf(name, sizeof name, "%s + colouring, wall s", pat[k].metric);
        target_line(ts, name, where, r ? num(r, F_WMED) : NAN, r ? num(r, F_WMIN) : NAN,
                    r ? num(r, F_WMAX) : NAN, 0.5, 1, r ? "" : "size not run (quick mode?)");
        snprintf(name, sizeof name, "%s colours", pat[k].metric);
        double colours = metric(t, pat[k].wl, "n=100000", "tapegen sparse", name);
        snprintf(name, sizeof name, "%s colours (tridiagonal)", pat[k].metric);
        target_line(ts, name, where, colours, NAN, NAN, 3.0, 1, "");
        snprintf(name, sizeof name, "%s peak RSS growth", pat[k].metric);
        double grow = metric(t, pat[k].wl, "n=100000", "tapegen sparse", name);
        snprintf(name, sizeof name, "%s nnz", pat[k].metric);
        double nnz = metric(t, pat[k].wl, "n=100000", "tapegen sparse", name);
        snprintf(extra, sizeof extra, "peak RSS growth while building: %.1f MiB for %.0f nonzeros "
                 "(O(nnz): a dense n x n would need %.0f GiB)", grow / 1048576.0, nnz,
                 1e10 * 8.0 / 1073741824.0);
        snprintf(name, sizeof name, "%s working memory, bytes per nonzero", pat[k].metric);
        target_line(ts, name, where, nnz > 0 ? grow / nnz : NAN, NAN, NAN, 256.0, 1, extra);
    }
    {
        const row *r = find(t, "time", SW1, "n=10000", "tapegen dtape", "sparse hess tape build");
        target_line(ts, "tg_sparse_hessian_tape build, wall s", SW1 " n=10000",
                    r ? num(r, F_WMED) : NAN, r ? num(r, F_WMIN) : NAN, r ? num(r, F_WMAX) : NAN,
                    1.0, 1, r ? "tg_sparse_hessian_tape + tg_tape_free" : "size not run (quick mode?)");
        ratio_target(ts, t, "sparse Hessian tape eval / tg_gradient (O(n))", SW1, "n=10000",
                     "sparse Hessian tape eval / tg_gradient", 6.0, 1);
    }
    {   /* Ipopt on LV1 */
        const char *wl = "Ipopt LV1", *sz = "n=100000";
        double solved = metric(t, wl, sz, "tapegen", "solved");
        const row *st = find(t, "metric", wl, sz, "tapegen", "solved");
        target_line(ts, "Ipopt LV1 solves (1 = solved to its known optimum's tolerance)",
                    "Ipopt LV1 n=100000", solved, NAN, NAN, 1.0, 0, st ? st->f[F_NOTE] : info(t, "ipopt"));
        double share = metric(t, wl, sz, "tapegen", "derivative share");
        const row *d = find(t, "metric", wl, sz, "tapegen", "derivative callbacks");
        const row *ip = find(t, "metric", wl, sz, "tapegen", "IpoptSolve");
        char extra[200], b1[32], b2[32];
        snprintf(extra, sizeof extra, "derivative callbacks %s of IpoptSolve %s",
                 fmt_time(d ? num(d, F_MED) : NAN, b1, sizeof b1),
                 fmt_time(ip ? num(ip, F_MED) : NAN, b2, sizeof b2));
        target_line(ts, "Ipopt LV1 derivative callbacks, % of IpoptSolve (CPU)", "Ipopt LV1 n=100000",
                    share, NAN, NAN, 20.0, 1, extra);
        const row *dt = find(t, "metric", "Ipopt LV1 tapes", sz, "tapegen", "derivative callbacks");
        const row *it = find(t, "metric", "Ipopt LV1 tapes", sz, "tapegen", "IpoptSolve");
        snprintf(extra, sizeof extra, "with sparse derivative tapes (--tapes): callbacks %s of "
                 "IpoptSolve %s", fmt_time(dt ? num(dt, F_MED) : NAN, b1, sizeof b1),
                 fmt_time(it ? num(it, F_MED) : NAN, b2, sizeof b2));
        target_line(ts, "Ipopt LV1 derivative callbacks, % of IpoptSolve (CPU), --tapes",
                    "Ipopt LV1 tapes n=100000",
                    metric(t, "Ipopt LV1 tapes", sz, "tapegen", "derivative share"), NAN, NAN, 20.0,
                    1, extra);
        double p4 = metric(t, wl, "n=10000", "tapegen", "peak RSS");
        double p5 = metric(t, wl, sz, "tapegen", "peak RSS");
        snprintf(extra, sizeof extra, "peak RSS %s at n=10^5, %s at n=10^4 (per n, 10^5 over 10^4)",
                 fmt_bytes(p5, b1, sizeof b1), fmt_bytes(p4, b2, sizeof b2));
        target_line(ts, "Ipopt LV1 peak memory linear in n", "Ipopt LV1 n=100000",
                    p4 > 0 ? (p5 / 1e5) / (p4 / 1e4) : NAN, NAN, NAN, 1.5, 1, extra);
    }
}

/* The Ipopt LV1 runs, one row per derivative source and size. */
static void
write_ipopt(FILE *md, const table *t)
{
    static const char *const wls[2] = { "Ipopt LV1", "Ipopt LV1 tapes" };
    int any = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < t->n; i++) {
            const row *r = &t->r[i];
            const char *wl = wls[k];
            if (!eq(r->f[F_KIND], "metric") || !eq(r->f[F_WL], wl) || !eq(r->f[F_OP], "solved"))
                continue;
            const char *sz = r->f[F_SIZE];
            if (!any)
                fputs("| derivatives | size | status | objective | derivative callbacks (CPU) | "
                      "IpoptSolve (CPU) | share | setup | peak RSS | patterns |\n"
                      "|---|---|---|---|---|---|---|---|---|---|\n", md);
            any = 1;
            const row *o = find(t, "metric", wl, sz, "tapegen", "objective");
            const row *p = find(t, "metric", wl, sz, "tapegen", "pattern sizes");
            char b1[32], b2[32], b3[32], b4[32];
            fprintf(md, "| %s | %s | %s | %.12g (%s) | %s | %s | %.1f%% | %s | %s | %s |\n",
                    k ? "sparse derivative tapes" : "tg_sparse_jacobian_ws / tg_sparse_hessian_ws",
                    sz, r->f[F_NOTE], o ? num(o, F_MED) : NAN, o ? o->f[F_NOTE] : "",
                    fmt_time(metric(t, wl, sz, "tapegen", "derivative callbacks"), b1, sizeof b1),
                    fmt_time(metric(t, wl, sz, "tapegen", "IpoptSolve"), b2, sizeof b2),
                    metric(t, wl, sz, "tapegen", "derivative share"),
                    fmt_time(metric(t, wl, sz, "tapegen", "setup"), b3, sizeof b3),
                    fmt_bytes(metric(t, wl, sz, "tapegen", "peak RSS"), b4, sizeof b4),
                    p ? p->f[F_NOTE] : "");
        }
    if (!any) {
        const char *v = info(t, "ipopt");
        fprintf(md, "%s\n", v ? v : "Not run.");
    }
}

static void
write_targets(tstate *ts, const table *t, const wlsize *sets, int ns)
{
    FILE *md = ts->md;
    fputs("| target | where | measured: median [min–max over rounds] | threshold | status | "
          "details |\n|---|---|---|---|---|---|\n",
          md);
    /* gradient */
    for (int i = 0; i < ns; i++) {
        if (strncmp(sets[i].wl, "W1", 2) && strncmp(sets[i].wl, "W2", 2) &&
            strncmp(sets[i].wl, "W3", 2))
            continue;
        if (!find(t, "time", sets[i].wl, sets[i].size, "tapegen", "grad"))
            continue;
        target_vs_adolc(ts, t, "tg_gradient time / ADOL-C gradient", sets[i].wl, sets[i].size,
                        "grad", 0.25);
        if (eq(sets[i].wl, "W1 rosenbrock") && eq(sets[i].size, "n=2"))
            target_vs_adolc(ts, t, "tg_gradient time / ADOL-C gradient (n = 2)", sets[i].wl,
                            sets[i].size, "grad", 0.05);
    }
    /* HVP */
    for (int i = 0; i < ns; i++)
        if (find(t, "time", sets[i].wl, sets[i].size, "tapegen", "hvp"))
            target_vs_adolc(ts, t, "tg_hvp time / ADOL-C hess_vec", sets[i].wl, sets[i].size,
                            "hvp", 0.25);
    /* Hessian W1 n=1000 */
    if (find(t, "time", "W1 rosenbrock", "n=1000", "tapegen", "hess"))
        target_vs_adolc(ts, t, "tg_hessian time / ADOL-C hessian", "W1 rosenbrock", "n=1000",
                        "hess", 0.05);
    else
        target_line(ts, "tg_hessian time / ADOL-C hessian", "W1 rosenbrock n=1000", NAN, NAN, NAN,
                    0.05, 1, "size not run (quick mode?)");
    /* Jacobian W4 n=1000 */
    if (find(t, "time", "W4 broyden_tridiagonal", "n=1000", "tapegen", "jac"))
        target_vs_adolc(ts, t, "tg_jacobian time / ADOL-C jacobian", "W4 broyden_tridiagonal",
                        "n=1000", "jac", 0.25);
    else
        target_line(ts, "tg_jacobian time / ADOL-C jacobian", "W4 broyden_tridiagonal n=1000",
                    NAN, NAN, NAN, 0.25, 1, "size not run (quick mode?)");
    /* recording */
    for (int i = 0; i < ns; i++)
        if (find(t, "time", sets[i].wl, sets[i].size, "tapegen", "record"))
            target_vs_adolc(ts, t, "recording time / ADOL-C taping", sets[i].wl, sets[i].size,
                            "record", 0.5);
    /* batches */
    {
        const row *r = find(t, "ratio", "W1 rosenbrock", "n=100", "batch 1 thr / single calls", NULL);
        const row *s = find(t, "ratio", "W1 rosenbrock", "n=100", "batch speedup 2 thr vs 1 thr", NULL);
        char extra[160] = "";
        if (r)
            snprintf(extra, sizeof extra, "%s, per point", r->f[F_OP]);
        target_line(ts, "tg_gradient_batch 1 thread / single tg_gradient calls, per point",
                    "W1 rosenbrock n=100", r ? num(r, F_MED) : NAN, r ? num(r, F_MIN) : NAN,
                    r ? num(r, F_MAX) : NAN, 0.5, 1, extra);
        const char *cores = info(t, "cores"), *load = info(t, "load");
        const row *c = find(t, "ratio", "W1 rosenbrock", "n=100", "batch CPU per point 2 thr / 1 thr",
                            NULL);
        char extra2[400];
        snprintf(extra2, sizeof extra2,
                 "wall(1 thread) / wall(2 threads); CPU per point 2 thr / 1 thr = %.3g; %s cores; "
                 "%s (other load on the machine takes cores away from the second thread)",
                 c ? num(c, F_MED) : NAN, cores ? cores : "?", load ? load : "load unknown");
        (void)extra;
        target_line(ts, "tg_gradient_batch speedup on 2 threads", "W1 rosenbrock n=100",
                    s ? num(s, F_MED) : NAN, s ? num(s, F_MIN) : NAN, s ? num(s, F_MAX) : NAN, 1.8,
                    0, extra2);
    }
    /* generated Rust */
    {
        static const char *wl[2] = { "W1 rosenbrock", "W2 mlp" };
        for (int k = 0; k < 2; k++) {
            const row *r = find(t, "ratio", wl[k], NULL, "Rust generated / hand-written Rust", NULL);
            const row *fail = NULL;
            for (int i = 0; i < t->n; i++)
                if (eq(t->r[i].f[F_KIND], "metric") && eq(t->r[i].f[F_WL], wl[k]) &&
                    eq(t->r[i].f[F_SYS], "Rust generated") && eq(t->r[i].f[F_OP], "cargo build") &&
                    strstr(t->r[i].f[F_NOTE], "FAILED"))
                    fail = &t->r[i];
            char where[64];
            snprintf(where, sizeof where, "%s %s", wl[k], r ? r->f[F_SIZE] : "");
            if (fail && !r) {
                fprintf(ts->md, "| generated Rust gradient / hand-written Rust | %s | did not "
                        "compile | ≤ 1.2 | **MISSED** | %s |\n", wl[k], fail->f[F_NOTE]);
                ts->missed++;
            } else {
                target_line(ts, "generated Rust gradient / hand-written Rust", where,
                            r ? num(r, F_MED) : NAN, r ? num(r, F_MIN) : NAN,
                            r ? num(r, F_MAX) : NAN, 1.2, 1,
                            r ? "CPU time per call, cargo --release" : info(t, "rust"));
            }
        }
    }
    write_sparse_targets(ts, t);
}

/* ------------------------------------- loops kept in the tape (issue 11) */

#define WL_W1 "W1 rosenbrock"
#define WL_W3S "W3 lorenz_rk4 scan"

/* Time row (sys, op) of (wl, size): its ratio to the hand-written case. */
static void
xnative_target(tstate *ts, const table *t, const char *target, const char *wl, const char *size,
               const char *sys, const char *op, double thr)
{
    char where[96], extra[200] = "size not run (quick mode?)";
    snprintf(where, sizeof where, "%s %s", wl, size);
    const row *r = find(t, "time", wl, size, sys, op);
    const row *h = find(t, "time", wl, size, "hand C", op);
    const row *na = NULL;
    char name[96];
    snprintf(name, sizeof name, "%s: not available", op);
    na = find(t, "metric", wl, size, sys, name);
    if (r && h) {
        char b1[32], b2[32];
        snprintf(extra, sizeof extra, "%s %s vs hand-written %s", sys,
                 fmt_time(num(r, F_MED), b1, sizeof b1), fmt_time(num(h, F_MED), b2, sizeof b2));
    } else if (na) {
        snprintf(extra, sizeof extra, "not available: %s", na->f[F_NOTE]);
    }
    target_line(ts, target, where, r ? num(r, F_XN_MED) : NAN, r ? num(r, F_XN_MIN) : NAN,
                r ? num(r, F_XN_MAX) : NAN, thr, 1, extra);
}

/* A ratio row by name. */
static void
named_ratio_target(tstate *ts, const table *t, const char *target, const char *wl,
                   const char *size, const char *name, double thr, const char *why)
{
    char where[96];
    snprintf(where, sizeof where, "%s %s", wl, size);
    const row *r = find(t, "ratio", wl, size, name, NULL);
    target_line(ts, target, where, r ? num(r, F_MED) : NAN, r ? num(r, F_MIN) : NAN,
                r ? num(r, F_MAX) : NAN, thr, 1, r ? r->f[F_OP] : why);
}

/* The largest "loop vs flat: ..." metric over every row. */
static double
loop_flat_max(const table *t, char *where, size_t cap)
{
    double m = NAN;
    snprintf(where, cap, "-");
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        if (!eq(r->f[F_KIND], "metric") || strncmp(r->f[F_OP], "loop vs flat: ", 14) != 0)
            continue;
        double v = num(r, F_MED);
        if (isnan(m) || v > m || isnan(v)) {
            m = v;
            snprintf(where, cap, "%s %s %s %s", r->f[F_WL], r->f[F_SIZE], r->f[F_SYS],
                     r->f[F_OP] + 14);
        }
    }
    return m;
}

static void
write_loop_targets(tstate *ts, const table *t)
{
    FILE *md = ts->md;
    fputs("| target | where | measured: median [min–max over rounds] | threshold | status | "
          "details |\n|---|---|---|---|---|---|\n",
          md);
    static const char *const w1s[2] = { "n=1000", "n=100000" };
    for (int k = 0; k < 2; k++)
        xnative_target(ts, t, "W1 as a map: tg_gradient / hand-written gradient", WL_W1, w1s[k],
                       "tapegen loop", "grad", 5.0);
    for (int k = 0; k < 2; k++)
        xnative_target(ts, t, "W1 as a map: tg_hvp / hand-written HVP", WL_W1, w1s[k],
                       "tapegen loop", "hvp", 10.0);
    {   /* O(n + |body|): instructions per n at 10^5 */
        double li = metric(t, WL_W1, "n=100000", "tapegen", "loop f instructions");
        double fi = metric(t, WL_W1, "n=100000", "tapegen", "f instructions");
        char extra[160] = "size not run (quick mode?)";
        if (!isnan(li))
            snprintf(extra, sizeof extra, "%.0f instructions at n = 10^5 (flat: %.0f = %.1f per n)",
                     li, fi, fi / 1e5);
        target_line(ts, "W1 as a map: tape instructions per n (O(n + |body|))", WL_W1 " n=100000",
                    li / 1e5, NAN, NAN, 4.0, 1, extra);
    }
    {   /* W3: size independent of the steps */
        double a = metric(t, WL_W3S, "steps=1000", "tapegen loop", "loop f instructions");
        double b = metric(t, WL_W3S, "steps=100000", "tapegen loop", "loop f instructions");
        char extra[160] = "sizes not run (quick mode?)";
        if (!isnan(a) && !isnan(b))
            snprintf(extra, sizeof extra, "%.0f instructions at 10^3 steps, %.0f at 10^5 (flat at "
                     "10^3: %.0f)", a, b,
                     metric(t, WL_W3S, "steps=1000", "tapegen", "f instructions"));
        target_line(ts, "W3 as a scan: tape size at 10^5 steps / at 10^3 (independent)", WL_W3S,
                    b / a, NAN, NAN, 1.0, 1, extra);
    }
    named_ratio_target(ts, t, "W3 as a scan: tg_gradient / the flat tape's", WL_W3S, "steps=1000",
                       "loop grad / flat grad", 1.0, "not measured");
    {
        double r = metric(t, WL_W3S, "steps=100000", "tapegen scan ckpt100",
                          "peak RSS growth ckpt / store-all");
        double c = metric(t, WL_W3S, "steps=100000", "tapegen scan ckpt100", "peak RSS growth (ckpt100)");
        double st = metric(t, WL_W3S, "steps=100000", "tapegen scan store-all", "peak RSS growth (store)");
        char extra[200], b1[32], b2[32];
        snprintf(extra, sizeof extra, "peak RSS growth of record + one gradient: %s with <= 100 "
                 "snapshots, %s storing every carry (child processes)",
                 fmt_bytes(c, b1, sizeof b1), fmt_bytes(st, b2, sizeof b2));
        target_line(ts, "W3 scan, 10^5 steps: peak memory, 100 snapshots / store-all",
                    WL_W3S " steps=100000", r, NAN, NAN, 0.05, 1, extra);
    }
    named_ratio_target(ts, t, "W3 scan, 10^5 steps: gradient time, 100 snapshots / store-all",
                       WL_W3S, "steps=100000", "ckpt100 grad / store-all grad", 3.0, "not measured");
    static const char *const w3s[2] = { "steps=1000", "steps=100000" };
    for (int k = 0; k < 2; k++) {
        char where[96];
        snprintf(where, sizeof where, "%s %s", WL_W3S, w3s[k]);
        const row *b = find(t, "metric", WL_W3S, w3s[k], "Rust generated loop", "cargo build crate");
        const row *na = find(t, "metric", WL_W3S, w3s[k], "Rust generated loop", "crate: not available");
        target_line(ts, "W3 scan gradient crate: clean cargo build --release, s", where,
                    b && eq(b->f[F_UNIT], "s") ? num(b, F_MED) : NAN, NAN, NAN, 10.0, 1,
                    b ? b->f[F_NOTE] : na ? na->f[F_NOTE] : info(t, "rust"));
    }
    for (int k = 0; k < 2; k++)
        named_ratio_target(ts, t, "W3 scan: generated Rust gradient / hand-written Rust adjoint",
                           WL_W3S, w3s[k], "Rust generated loop / hand-written Rust", 1.5,
                           "generated crate not built (see the rows below)");
    named_ratio_target(ts, t, "W1 as a map: generated Rust gradient / hand-written Rust", WL_W1,
                       "n=1000", "Rust generated loop / hand-written Rust", 1.3,
                       "generated crate not built (see the rows below)");
    {
        char where[200];
        double m = loop_flat_max(t, where, sizeof where);
        target_line(ts, "loops vs flat recordings: max relative difference, every path measured",
                    where, m, NAN, NAN, 1e-13, 1, "over the \"loop vs flat\" rows: f, grad, hvp, "
                    "hess, derivative tapes, checkpointing");
    }
}

/* Rows about the loop variants: sizes, memory, paths not available. */
static void
write_loops(FILE *md, const table *t)
{
    fputs("| workload | system | quantity | value | notes |\n|---|---|---|---|---|\n", md);
    int any = 0;
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        if (!eq(r->f[F_KIND], "metric"))
            continue;
        const char *sys = r->f[F_SYS], *op = r->f[F_OP];
        int loopish = strstr(sys, "loop") || strstr(sys, "scan") ||
                      (eq(r->f[F_WL], WL_W3S) && strstr(op, "peak RSS growth")) ||
                      strncmp(op, "loop ", 5) == 0;
        if (!loopish)
            continue;
        any = 1;
        char v[48];
        if (eq(r->f[F_UNIT], "B"))
            fmt_bytes(num(r, F_MED), v, sizeof v);
        else if (strstr(op, "not available"))
            snprintf(v, sizeof v, "NOT AVAILABLE");
        else
            snprintf(v, sizeof v, "%.4g %s", num(r, F_MED), r->f[F_UNIT]);
        fprintf(md, "| %s %s | %s | %s | %s | %s |\n", r->f[F_WL], r->f[F_SIZE], sys, op, v,
                r->f[F_NOTE]);
    }
    if (!any)
        fputs("| - | - | not run | - | - |\n", md);
}

/* ---------------------------------------------------------- per workload */

static void
write_workload(FILE *md, const table *t, const wlsize *s)
{
    fprintf(md, "\n### %s %s\n\n", s->wl, s->size);
    fputs("| system | op | CPU / call | wall / call | × hand-written (median [range]) | "
          "× ADOL-C (median [range]) | check (max rel err) | notes |\n"
          "|---|---|---|---|---|---|---|---|\n",
          md);
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        if (!eq(r->f[F_KIND], "time") || !eq(r->f[F_WL], s->wl) || !eq(r->f[F_SIZE], s->size))
            continue;
        char c[32], w[32], xn[64], xa[64], ck[48];
        fmt_ratio3(num(r, F_XN_MED), num(r, F_XN_MIN), num(r, F_XN_MAX), xn, sizeof xn);
        fmt_ratio3(num(r, F_XA_MED), num(r, F_XA_MIN), num(r, F_XA_MAX), xa, sizeof xa);
        if (eq(r->f[F_SYS], "hand C") || eq(r->f[F_SYS], "Rust hand"))
            snprintf(ck, sizeof ck, "reference");
        else if (eq(r->f[F_CHECK], "n/a") || !*r->f[F_CHECK])
            snprintf(ck, sizeof ck, "-");
        else
            snprintf(ck, sizeof ck, "%s (%.1e)", r->f[F_CHECK], num(r, F_CERR));
        fprintf(md, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r->f[F_SYS], r->f[F_OP],
                fmt_time(num(r, F_MED), c, sizeof c), fmt_time(num(r, F_WMED), w, sizeof w), xn,
                xa, ck, r->f[F_NOTE]);
    }
    int any = 0;
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        if (!eq(r->f[F_KIND], "ratio") || !eq(r->f[F_WL], s->wl) || !eq(r->f[F_SIZE], s->size))
            continue;
        if (!any)
            fputs("\n| ratio | of | median [range] |\n|---|---|---|\n", md);
        any = 1;
        char v[64];
        fprintf(md, "| %s | %s | %s |\n", r->f[F_SYS], r->f[F_OP],
                fmt_ratio3(num(r, F_MED), num(r, F_MIN), num(r, F_MAX), v, sizeof v));
    }
    const row *fd = find(t, "metric", s->wl, s->size, "central FD", NULL);
    if (fd) {
        char b[32];
        fprintf(md, "\ncentral FD %s: %s (%s)\n", fd->f[F_OP], fmt_time(num(fd, F_MED), b, sizeof b),
                fd->f[F_NOTE]);
    }
}

static double
metric(const table *t, const char *wl, const char *size, const char *sys, const char *name)
{
    const row *r = find(t, "metric", wl, size, sys, name);
    return r ? num(r, F_MED) : NAN;
}

static void
write_tapes(FILE *md, const table *t, const wlsize *sets, int ns)
{
    fputs("| workload | tapegen f instr | bytes/instr | |grad tape|/|f| (opt) | |hvp tape|/|f| (opt) "
          "| grad tape build | hvp tape build | ADOL-C ops | ADOL-C tape bytes | tapegen tape bytes "
          "| peak RSS (process) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
          md);
    for (int i = 0; i < ns; i++) {
        const char *wl = sets[i].wl, *sz = sets[i].size;
        double fi = metric(t, wl, sz, "tapegen", "f instructions");
        if (isnan(fi))
            continue;
        double bpi = metric(t, wl, sz, "tapegen", "f bytes/instruction");
        double gr = metric(t, wl, sz, "tapegen", "grad tape size ratio |grad tape|/|f|");
        double gro = metric(t, wl, sz, "tapegen", "grad tape (opt BASIC) size ratio");
        double hr = metric(t, wl, sz, "tapegen", "hvp tape size ratio |hvp tape|/|f|");
        double hro = metric(t, wl, sz, "tapegen", "hvp tape (opt BASIC) size ratio");
        if (isnan(gr)) {   /* W4: the JVP tape */
            gr = metric(t, wl, sz, "tapegen", "jvp tape size ratio |jvp tape|/|f|");
            gro = metric(t, wl, sz, "tapegen", "jvp tape (opt BASIC) size ratio");
        }
        const row *gb = find(t, "time", wl, sz, "tapegen dtape", "grad tape build");
        if (!gb)
            gb = find(t, "time", wl, sz, "tapegen dtape", "jvp tape build");
        const row *hb = find(t, "time", wl, sz, "tapegen dtape", "hvp tape build");
        char b1[32], b2[32], b3[32], b4[32], b5[32], g[48], h[48];
        snprintf(g, sizeof g, isnan(gr) ? "-" : "%.2f (%.2f)", gr, gro);
        snprintf(h, sizeof h, isnan(hr) ? "-" : "%.2f (%.2f)", hr, hro);
        double ops = metric(t, wl, sz, "ADOL-C", "tape operations");
        double abytes = metric(t, wl, sz, "ADOL-C", "tape bytes (ops+locs+vals)");
        char ops_s[32] = "-", rss[32];
        if (!isnan(ops))
            snprintf(ops_s, sizeof ops_s, "%.0f", ops);
        (void)b3;
        fmt_bytes(metric(t, wl, sz, "process", "peak RSS"), rss, sizeof rss);
        fprintf(md, "| %s %s%s | %.0f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n", wl, sz,
                find(t, "time", wl, sz, "tapegen dtape", "jvp tape build") ? " (jvp tape)" : "", fi,
                bpi, g, h, gb ? fmt_time(num(gb, F_MED), b1, sizeof b1) : "-",
                hb ? fmt_time(num(hb, F_MED), b2, sizeof b2) : "-", ops_s,
                fmt_bytes(abytes, b4, sizeof b4), fmt_bytes(fi * bpi, b5, sizeof b5), rss);
    }
}

static void
write_memory(FILE *md, const table *t)
{
    static const char *sys[3] = { "hand C", "tapegen", "ADOL-C" };
    int any = 0;
    for (int k = 0; k < 3; k++) {
        const row *r = find(t, "metric", "W1 rosenbrock", NULL, sys[k], "memprobe peak RSS");
        if (!r)
            continue;
        if (!any)
            fputs("| system | W1 size | peak RSS | above baseline | notes |\n|---|---|---|---|---|\n",
                  md);
        any = 1;
        double above = metric(t, "W1 rosenbrock", r->f[F_SIZE], sys[k],
                              "memprobe peak RSS above baseline");
        char b1[32], b2[32];
        fprintf(md, "| %s | %s | %s | %s | %s |\n", sys[k], r->f[F_SIZE],
                fmt_bytes(num(r, F_MED), b1, sizeof b1), fmt_bytes(above, b2, sizeof b2),
                r->f[F_NOTE]);
    }
    if (!any)
        fputs("(memory probes not run)\n", md);
    const row *b = find(t, "metric", "W1 rosenbrock", "n=100000", "tapegen", "f bytes/instruction");
    const row *ws = find(t, "metric", "W1 rosenbrock", "n=100000", "tapegen", "workspace bytes");
    const row *fi = find(t, "metric", "W1 rosenbrock", "n=100000", "tapegen", "f instructions");
    if (b && fi) {
        char b1[32], b2[32];
        fprintf(md, "\nW1 n=100000: tapegen tape %.0f instructions, %.1f bytes/instruction "
                    "(tg_tape_bytes %s); tg_workspace_new(f) holds %s.\n",
                num(fi, F_MED), num(b, F_MED), fmt_bytes(num(fi, F_MED) * num(b, F_MED), b1, sizeof b1),
                ws ? fmt_bytes(num(ws, F_MED), b2, sizeof b2) : "-");
    }
}

static void
write_rust(FILE *md, const table *t)
{
    static const char *wl[2] = { "W1 rosenbrock", "W2 mlp" };
    fputs("| workload | generated / hand-written Rust (CPU, median [range]) | generated / call | "
          "hand-written / call | generation (C side) | lines of Rust | work_len | instructions "
          "(grad tape, opt) | work_len / instr | cargo build --release |\n"
          "|---|---|---|---|---|---|---|---|---|---|\n",
          md);
    for (int k = 0; k < 2; k++) {
        const row *gen = find(t, "metric", wl[k], NULL, "Rust generated", "lines of Rust (src/lib.rs)");
        if (!gen)
            continue;
        const char *sz = gen->f[F_SIZE];
        const row *r = find(t, "ratio", wl[k], sz, "Rust generated / hand-written Rust", NULL);
        const row *tg = find(t, "time", wl[k], sz, "Rust generated", "grad");
        const row *th = find(t, "time", wl[k], sz, "Rust hand", "grad");
        const row *cb = find(t, "metric", wl[k], sz, "Rust generated", "cargo build");
        char v[64], b1[32], b2[32], b3[32], cbs[200];
        if (cb && strstr(cb->f[F_NOTE], "FAILED"))
            snprintf(cbs, sizeof cbs, "%s", cb->f[F_NOTE]);
        else if (cb)
            snprintf(cbs, sizeof cbs, "%.1f s (%s)", num(cb, F_MED), cb->f[F_NOTE]);
        else
            snprintf(cbs, sizeof cbs, "-");
        fprintf(md, "| %s %s | %s | %s | %s | %s | %.0f | %.0f | %.0f | %.3f | %s |\n", wl[k], sz,
                r ? fmt_ratio3(num(r, F_MED), num(r, F_MIN), num(r, F_MAX), v, sizeof v) : "not measured",
                tg ? fmt_time(num(tg, F_MED), b1, sizeof b1) : "-",
                th ? fmt_time(num(th, F_MED), b2, sizeof b2) : "-",
                fmt_time(metric(t, wl[k], sz, "Rust generated", "gen: total"), b3, sizeof b3),
                num(gen, F_MED), metric(t, wl[k], sz, "Rust generated", "work_len"),
                metric(t, wl[k], sz, "Rust generated", "grad tape instructions (opt BASIC)"),
                metric(t, wl[k], sz, "Rust generated", "work_len / instructions"), cbs);
    }
    const char *note = info(t, "rust");
    if (note)
        fprintf(md, "\n%s\n", note);
}

static void
write_selfchecks(FILE *md, const table *t, const wlsize *sets, int ns)
{
    fputs("| workload | check | max rel err | status |\n|---|---|---|---|\n", md);
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < t->n; i++) {
            const row *r = &t->r[i];
            if (eq(r->f[F_KIND], "metric") && eq(r->f[F_UNIT], "relerr") &&
                eq(r->f[F_WL], sets[k].wl) && eq(r->f[F_SIZE], sets[k].size))
                fprintf(md, "| %s %s | %s | %.2e | %s |\n", r->f[F_WL], r->f[F_SIZE], r->f[F_OP],
                        num(r, F_MED), r->f[F_NOTE]);
        }
}

/* ----------------------------------------------------------------- SVG */

static void
svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

static void
write_svg(FILE *f, const table *t, const wlsize *sets, int ns)
{
    static const char *sys[5] = { "tapegen", "tapegen ws", "tapegen dtape", "ADOL-C", "central FD" };
    static const char *col[5] = { "#1f77b4", "#aec7e8", "#2ca02c", "#d62728", "#7f7f7f" };
    static const char *ops[6] = { "f", "grad", "hvp", "hess", "jac", "jvp" };
    /* groups: (set, op) with a hand-written reference */
    typedef struct grp {
        int set;
        const char *op;
    } grp;
    grp g[256];
    int ng = 0;
    double lo = 1.0, hi = 1.0;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < 6; k++) {
            if (!find(t, "time", sets[i].wl, sets[i].size, "hand C", ops[k]))
                continue;
            int any = 0;
            for (int s = 0; s < 5; s++) {
                const row *r = find(t, "time", sets[i].wl, sets[i].size, sys[s], ops[k]);
                double v = r ? num(r, F_XN_MED) : NAN;
                if (!isnan(v) && v > 0) {
                    any = 1;
                    lo = fmin(lo, v);
                    hi = fmax(hi, v);
                }
            }
            if (any && ng < 256) {
                g[ng].set = i;
                g[ng].op = ops[k];
                ng++;
            }
        }
    double l0 = floor(log10(lo)), l1 = ceil(log10(hi));
    if (l1 <= l0)
        l1 = l0 + 1;
    const int left = 250, width = 640, bar = 9, gap = 8, top = 70;
    int height = top + ng * (5 * bar + gap) + 60;
    /* second panel: tapegen / ADOL-C against the targets */
    grp g2[256];
    double thr2[256];
    int ng2 = 0;
    double lo2 = 0.01, hi2 = 1.0;
    static const char *ops2[5] = { "grad", "hvp", "hess", "jac", "record" };
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < 5; k++) {
            const row *r = find(t, "time", sets[i].wl, sets[i].size, "tapegen", ops2[k]);
            double v = r ? num(r, F_XA_MED) : NAN;
            if (isnan(v) || v <= 0 || ng2 >= 256)
                continue;
            double thr = NAN;
            const char *wl = sets[i].wl, *sz = sets[i].size;
            if (eq(ops2[k], "grad") && strncmp(wl, "W4", 2))
                thr = eq(wl, "W1 rosenbrock") && eq(sz, "n=2") ? 0.05 : 0.25;
            else if (eq(ops2[k], "hvp"))
                thr = 0.25;
            else if (eq(ops2[k], "hess") && eq(wl, "W1 rosenbrock") && eq(sz, "n=1000"))
                thr = 0.05;
            else if (eq(ops2[k], "jac") && eq(wl, "W4 broyden_tridiagonal") && eq(sz, "n=1000"))
                thr = 0.25;
            else if (eq(ops2[k], "record"))
                thr = 0.5;
            g2[ng2].set = i;
            g2[ng2].op = ops2[k];
            thr2[ng2] = thr;
            ng2++;
            lo2 = fmin(lo2, fmin(v, num(r, F_XA_MIN)));
            hi2 = fmax(hi2, fmax(v, num(r, F_XA_MAX)));
        }
    const int bar2 = 12, top2 = height + 50;
    int height2 = ng2 ? 50 + ng2 * (bar2 + 4) + 60 : 0;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n",
            left + width + 40, height + height2);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Time per call "
               "relative to hand-written C (log scale, median over rounds; 1 = hand-written)</text>\n");
    for (int s = 0; s < 5; s++) {
        fprintf(f, "<rect x=\"%d\" y=\"32\" width=\"12\" height=\"10\" fill=\"%s\"/>", 10 + s * 130,
                col[s]);
        fprintf(f, "<text x=\"%d\" y=\"41\">%s</text>\n", 26 + s * 130, sys[s]);
    }
    double span = l1 - l0;
    for (double e = l0; e <= l1 + 1e-9; e += 1.0) {
        double x = left + (e - l0) / span * width;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", x, top - 8,
                x, height - 50, fabs(e) < 1e-9 ? "black" : "#dddddd");
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", x, height - 35,
                pow(10.0, e));
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">× hand-written C time</text>\n",
            left + width / 2, height - 15);
    int y = top;
    for (int k = 0; k < ng; k++) {
        const wlsize *s = &sets[g[k].set];
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + 5 * bar / 2 + 4);
        svg_text(f, s->wl);
        fputc(' ', f);
        svg_text(f, s->size);
        fprintf(f, " %s</text>\n", g[k].op);
        for (int q = 0; q < 5; q++) {
            const row *r = find(t, "time", s->wl, s->size, sys[q], g[k].op);
            double v = r ? num(r, F_XN_MED) : NAN;
            if (!isnan(v) && v > 0) {
                double x1 = left + (log10(v) - l0) / span * width;
                double x0 = left + (0.0 - l0) / span * width;
                double xa = fmin(x0, x1), w = fabs(x1 - x0);
                fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
                           "<title>%s: %.3g x</title></rect>\n",
                        xa, y + q * bar, w < 1 ? 1 : w, bar - 1, col[q], sys[q], v);
            }
        }
        y += 5 * bar + gap;
    }
    if (ng2) {
        double m0 = floor(log10(lo2)), m1 = ceil(log10(hi2));
        if (m1 <= m0)
            m1 = m0 + 1;
        double sp = m1 - m0;
        int bottom = top2 + ng2 * (bar2 + 4) + 8;
        fprintf(f, "<text x=\"10\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">tapegen "
                   "(simple API) time / ADOL-C time, log scale: bar = median, line = min-max over "
                   "rounds, black tick = target</text>\n",
                top2 - 30);
        fprintf(f, "<text x=\"10\" y=\"%d\">green: target met, red: missed, grey: no target "
                   "for this size</text>\n",
                top2 - 14);
        for (double e = m0; e <= m1 + 1e-9; e += 1.0) {
            double x = left + (e - m0) / sp * width;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", x,
                    top2 - 4, x, bottom, fabs(e) < 1e-9 ? "black" : "#dddddd");
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", x,
                    bottom + 15, pow(10.0, e));
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">× ADOL-C time</text>\n",
                left + width / 2, bottom + 35);
        for (int k = 0; k < ng2; k++) {
            const wlsize *s2 = &sets[g2[k].set];
            const row *r = find(t, "time", s2->wl, s2->size, "tapegen", g2[k].op);
            double v = num(r, F_XA_MED), a = num(r, F_XA_MIN), b = num(r, F_XA_MAX);
            int yy = top2 + k * (bar2 + 4);
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, yy + bar2 - 2);
            svg_text(f, s2->wl);
            fputc(' ', f);
            svg_text(f, s2->size);
            fprintf(f, " %s</text>\n", g2[k].op);
            const char *c = isnan(thr2[k]) ? "#999999" : v <= thr2[k] ? "#2ca02c" : "#d62728";
            double x0 = left + (0.0 - m0) / sp * width, x1 = left + (log10(v) - m0) / sp * width;
            double xa = fmin(x0, x1), w = fabs(x1 - x0);
            fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
                       "<title>%.3g x ADOL-C</title></rect>\n",
                    xa, yy, w < 1 ? 1 : w, bar2, c, v);
            if (!isnan(a) && !isnan(b) && a > 0 && b > 0)
                fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>\n",
                        left + (log10(a) - m0) / sp * width, yy + bar2 / 2,
                        left + (log10(b) - m0) / sp * width, yy + bar2 / 2);
            if (!isnan(thr2[k])) {
                double xt = left + (log10(thr2[k]) - m0) / sp * width;
                fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\" "
                           "stroke-width=\"2\"/>\n",
                        xt, yy - 2, xt, yy + bar2 + 2);
            }
        }
    }
    fputs("</svg>\n", f);
}

/* ---------------------------------------------------------------- main */

int
run_report(const char *outdir, int nfiles, char **files)
{
    table t = { 0 };
    for (int i = 0; i < nfiles; i++)
        if (read_rows(&t, files[i]))
            return 1;
    if (t.n == 0) {
        fprintf(stderr, "report: no rows\n");
        return 1;
    }
    mkdir(outdir, 0777);
    char path[4096];

    /* results.csv */
    snprintf(path, sizeof path, "%s/results.csv", outdir);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    bench_write_csv_header(csv);
    for (int i = 0; i < t.n; i++)
        fprintf(csv, "%s\n", t.r[i].line);
    fclose(csv);

    wlsize sets[64];
    int ns = list_sets(&t, sets, 64);

    /* results.svg */
    snprintf(path, sizeof path, "%s/results.svg", outdir);
    FILE *svg = fopen(path, "w");
    if (!svg) {
        perror(path);
        return 1;
    }
    write_svg(svg, &t, sets, ns);
    fclose(svg);

    /* results.md */
    snprintf(path, sizeof path, "%s/results.md", outdir);
    FILE *md = fopen(path, "w");
    if (!md) {
        perror(path);
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < t.n; i++)
        if (strstr(t.r[i].f[F_CHECK], "FAILED") || strstr(t.r[i].f[F_NOTE], "FAILED"))
            failures++;
    fputs("# tapegen benchmark results\n\n", md);
    const char *keys[] = { "date", "mode", "command", "cpu", "cores", "load", "compiler", "tapegen",
                           "adolc", "openmp", "rustc" };
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v = info(&t, keys[k]);
        if (v)
            fprintf(md, "- %s: %s\n", keys[k], v);
    }
    fputs("\nMethod: one process per workload and size runs every system side by side; each "
          "system's results are checked against the hand-written derivatives (relative 1e-8; "
          "central differences normwise 1e-5) before anything is timed; the systems are measured in "
          "interleaved rounds (rotating order), each measurement repeating the call until it "
          "lasts the minimum time; medians over rounds of CPU time (thread CPU; process CPU for "
          "the multi-threaded batch) and wall time per call.  Ratios (× columns) are taken round "
          "by round between measurements made moments apart, from CPU time, and shown as median "
          "[min–max over rounds].  See bench/README.md.\n\n",
          md);
    if (failures)
        fprintf(md, "**%d FAILURE(S) (a system disagreeing with the hand-written derivatives, or a "
                    "generated crate that does not compile): see the rows marked FAILED below.**\n\n",
                failures);

    fputs("## Targets\n\n", md);
    tstate ts = { md, 0, 0, 0 };
    write_targets(&ts, &t, sets, ns);
    fprintf(md, "\n%d met, %d missed, %d not measured.  The memory target (W1 n = 100000) is "
                "reported below.\n",
            ts.met, ts.missed, ts.na);
    {
        const row *c = find(&t, "ratio", "W1 rosenbrock", "n=100", "batch CPU per point 2 thr / 1 thr",
                            NULL);
        if (c && num(c, F_MED) > 1.1)
            fprintf(md, "\nNote: with 2 threads the batch used %.2f× the CPU time per point of 1 "
                        "thread, so its threads waited for each other (spinning at the barrier): "
                        "either the machine was busy during this run (see the load average "
                        "above) or the batch has parallel overhead.  Rerun `tgbench --workload w1 "
                        "--n 100` on a quiet machine before reading the 2-thread speedup.\n",
                    num(c, F_MED));
    }

    fputs("\n## Loops kept in the tape (issue 11)\n\n"
          "W1 as a map of the term over i plus tg_sum (system `tapegen loop`, in the W1 tables), "
          "W3 as a scan of one RK4 step (`W3 lorenz_rk4 scan`: 10^3 and 10^5 steps over the same "
          "time span, dt = 10 / steps), next to the flat recordings; checkpointing with at most "
          "100 snapshots against storing every carry; the generated Rust of their gradient tapes "
          "against hand-written Rust.  A path that is not available in this build is reported as "
          "such, never timed.\n\n",
          md);
    {
        tstate tl = { md, 0, 0, 0 };
        write_loop_targets(&tl, &t);
        fprintf(md, "\n%d met, %d missed, %d not measured.\n\n", tl.met, tl.missed, tl.na);
        write_loops(md, &t);
        tstate so = { stdout, 0, 0, 0 };
        printf("\nLoops kept in the tape (issue 11): targets\n");
        write_loop_targets(&so, &t);
        printf("(%d met, %d missed, %d not measured)\n\n", so.met, so.missed, so.na);
        ts.met += tl.met;
        ts.missed += tl.missed;
        ts.na += tl.na;
    }

    fputs("\n## Memory (W1 rosenbrock)\n\n", md);
    write_memory(md, &t);

    fputs("\n## Ipopt on Luksan-Vlcek 1 (examples/ipopt_nlp)\n\n"
          "Every derivative from tapegen: tg_gradient, tg_sparse_jacobian (constraints), "
          "tg_sparse_hessian of (f, g) with weights (sigma, lambda); tapes recorded once.  "
          "The known optimum is the local minimiser Ipopt reaches from the standard start.\n\n",
          md);
    write_ipopt(md, &t);

    fputs("\n## Results by workload\n\n"
          "`hand C`: hand-written function and analytic derivatives (the reference, 1×).  "
          "`tapegen`: the simple API (tg_eval, tg_gradient, ...).  `tapegen ws`: the _ws "
          "variants with a caller-owned workspace.  `tapegen dtape`: tg_eval of a derivative "
          "tape (tg_gradient_tape, tg_hvp_tape, tg_jvp_tape), and building one.  `ADOL-C`: "
          "function, gradient, hess_vec, hessian, jacobian, jac_vec on a tape kept in memory.  "
          "`central FD`: central finite differences of the hand-written function.  `sparse ...`: "
          "tg_sparse_hessian / tg_sparse_jacobian with a pattern built once, against the "
          "hand-written nonzeros (`hessian pattern`/`jacobian pattern`: building the pattern "
          "and colouring it).  `record`: "
          "recording (tapegen) or taping (ADOL-C); its × hand-written is relative to one "
          "hand-written evaluation of f.\n",
          md);
    for (int i = 0; i < ns; i++) {
        int has = 0;
        for (int k = 0; k < t.n; k++)
            if (eq(t.r[k].f[F_KIND], "time") && eq(t.r[k].f[F_WL], sets[i].wl) &&
                eq(t.r[k].f[F_SIZE], sets[i].size) && !strstr(t.r[k].f[F_SYS], "Rust"))
                has = 1;
        if (has)
            write_workload(md, &t, &sets[i]);
    }

    fputs("\n## Tapes\n\n", md);
    write_tapes(md, &t, sets, ns);

    fputs("\n## Generated Rust\n\n", md);
    write_rust(md, &t);

    fputs("\n## Hand-written derivatives vs central differences\n\n", md);
    write_selfchecks(md, &t, sets, ns);
    fputs("\nPlot: results.svg (time relative to hand-written C, log scale).  Raw rows: "
          "results.csv.\n",
          md);
    fclose(md);
    printf("report: %s/results.md, results.csv, results.svg (%d rows; targets: %d met, %d missed, "
           "%d not measured%s)\n",
           outdir, t.n, ts.met, ts.missed, ts.na, failures ? "; CHECK FAILURES" : "");
    for (int i = 0; i < t.n; i++) {
        free(t.r[i].line);
        free(t.r[i].buf);
    }
    free(t.r);
    return failures ? 1 : 0;
}
