/* ipopt_nlp: Ipopt on the Hock-Schittkowski problems and on Luksan-Vlcek 1
 * at n = 10^3, 10^4, 10^5, with every derivative from tapegen (gradient,
 * sparse constraint Jacobian, sparse Lagrangian Hessian).  Prints one table
 * row per problem and exits 1 when a problem does not reach its published
 * optimum within 1e-6 (relative; absolute when the optimum is below 1 in
 * size) or, with --check, when a derivative callback disagrees with its
 * oracle (check.h). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check.h"
#include "nlp.h"
#include "problems.h"

#define TOL_OPT 1e-6
#define MAX_SIZES 8

typedef struct options {
    int check;                 /* derivative checks before each solve */
    nlp_mode mode;             /* sparse calls (default) or sparse derivative tapes */
    int print_level;           /* Ipopt's */
    const char *only;          /* one problem name, or NULL */
    size_t sizes[MAX_SIZES];   /* LV1 sizes */
    size_t nsizes;
    const char *csv;           /* also write the table here */
} options;

static void usage(FILE *f)
{
    fputs("usage: ipopt_nlp [--check] [--tapes] [-v] [--only NAME] [--lv1 N[,N...]] [--csv FILE]\n"
          "Solves Hock-Schittkowski problems 6, 7, 10, 14, 35, 39, 40, 43, 46, 71, 78\n"
          "and Luksan-Vlcek problem 1 with Ipopt, every derivative from tapegen.\n"
          "  --check       check each derivative callback against central differences\n"
          "                and the dense calls first (n <= 2000)\n"
          "  --tapes       Jacobian and Hessian from sparse derivative tapes built once\n"
          "                (tg_sparse_jacobian_tape, tg_sparse_hessian_tape) instead of\n"
          "                the numeric tg_sparse_jacobian_ws / tg_sparse_hessian_ws\n"
          "  -v            Ipopt's iteration log (print_level 5)\n"
          "  --only NAME   one problem (HS071, LV1, ...)\n"
          "  --lv1 LIST    LV1 sizes (default 1000,10000,100000; 0 for none)\n"
          "  --csv FILE    also write the table as CSV\n"
          "Exit status: 0 all solved to the published optimum (and checks passed),\n"
          "1 otherwise, 2 usage.\n", f);
}

static int parse_sizes(const char *s, options *o)
{
    o->nsizes = 0;
    while (*s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || errno || (*end && *end != ','))
            return -1;
        if (v != 0) {
            if (v < 3 || o->nsizes == MAX_SIZES)
                return -1;
            o->sizes[o->nsizes++] = (size_t)v;
        }
        s = *end ? end + 1 : end;
    }
    /* Increasing n: the process's peak RSS after each run is that run's. */
    for (size_t i = 1; i < o->nsizes; i++)
        for (size_t j = i; j > 0 && o->sizes[j - 1] > o->sizes[j]; j--) {
            size_t t = o->sizes[j];
            o->sizes[j] = o->sizes[j - 1];
            o->sizes[j - 1] = t;
        }
    return 0;
}

static int parse(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->sizes[0] = 1000;
    o->sizes[1] = 10000;
    o->sizes[2] = 100000;
    o->nsizes = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check") == 0)
            o->check = 1;
        else if (strcmp(a, "--tapes") == 0)
            o->mode = NLP_TAPES;
        else if (strcmp(a, "-v") == 0)
            o->print_level = 5;
        else if (strcmp(a, "--only") == 0 && i + 1 < argc)
            o->only = argv[++i];
        else if (strcmp(a, "--lv1") == 0 && i + 1 < argc) {
            if (parse_sizes(argv[++i], o) != 0) {
                fprintf(stderr, "ipopt_nlp: --lv1 wants sizes >= 3 separated by commas "
                                "(at most %d)\n", MAX_SIZES);
                return -1;
            }
        } else if (strcmp(a, "--csv") == 0 && i + 1 < argc)
            o->csv = argv[++i];
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "ipopt_nlp: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static double peak_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return NAN;
    return (double)ru.ru_maxrss / 1024.0;   /* Linux: kilobytes */
}

/* A start point moved by up to 10% (and 0.1) in each coordinate. */
static void perturbed(const nlp_problem *p, unsigned seed, double *x)
{
    for (size_t j = 0; j < p->n; j++) {
        seed = seed * 1664525u + 1013904223u;
        double u = (double)(seed >> 8) / 8388608.0 - 1.0;
        x[j] = p->x0[j] + 0.1 * u * (1.0 + fabs(p->x0[j]));
    }
}

static long run_checks(nlp_ctx *c)
{
    const nlp_problem *p = c->p;
    double *x = malloc(p->n * sizeof *x);
    if (x == NULL)
        return -1;
    long bad = nlp_check(c, p->x0, 7u, stderr);
    if (bad >= 0) {
        perturbed(p, 12345u, x);
        long b2 = nlp_check(c, x, 99u, stderr);
        bad = b2 < 0 ? -1 : bad + b2;
    }
    free(x);
    return bad;
}

/* What the tables print about one solve (kept after its tapes are freed). */
typedef struct row {
    char name[32];
    size_t n, m;
    double f_star;
    int status, iter;
    double obj, solve_s;
    nlp_clock clock;
    double record_s, pattern_s;
    size_t jac_nnz, jac_colors, hess_nnz, hess_colors;
    int tapes;           /* derivatives from sparse derivative tapes */
    double tape_mb, ws_mb; /* tapes and workspaces held after the solve */
    long check;          /* -2: not run, -1: could not run, else disagreements */
    double err;
    double peak;         /* MB, LV1 only (NAN otherwise) */
    int ok;
} row;

static void print_header(void)
{
    printf("%-7s %7s %7s  %-20s %5s %20s %20s %9s %10s %6s %9s %8s\n", "problem", "n", "m",
           "status", "iter", "objective", "optimum", "rel.err", "deriv ms", "share",
           "setup ms", "peak MB");
}

static void print_row(const row *w, FILE *csv)
{
    const nlp_clock *k = &w->clock;
    double deriv = k->grad + k->jac + k->hess;
    double share = w->solve_s > 0 ? 100.0 * deriv / w->solve_s : 0.0;
    double setup = w->record_s + w->pattern_s;
    char peak[32] = "-";
    if (!isnan(w->peak))
        snprintf(peak, sizeof peak, "%.1f", w->peak);
    printf("%-7s %7zu %7zu  %-20s %5d %20.12g %20.12g %9.1e %10.2f %5.1f%% %9.2f %8s%s\n",
           w->name, w->n, w->m, nlp_status_name(w->status), w->iter, w->obj, w->f_star, w->err, 1e3 * deriv, share, 1e3 * setup, peak,
           w->ok ? "" : "  <- MISSED");
    if (csv)
        fprintf(csv, "%s,%zu,%zu,%s,%d,%.17g,%.17g,%.3e,%.6f,%.6f,%.2f,%.6f,%.6f,%zu,%zu,%zu,%zu,"
                     "%s,%ld,%s\n",
                w->name, w->n, w->m, nlp_status_name(w->status), w->iter, w->obj, w->f_star,
                w->err, deriv, w->solve_s, share, w->record_s, w->pattern_s, w->jac_nnz,
                w->jac_colors, w->hess_nnz, w->hess_colors, peak, w->check,
                w->tapes ? "tapes" : "calls");
}

static void print_detail(const row *w)
{
    const nlp_clock *k = &w->clock;
    printf("  %-7s %7zu  J nnz %8zu colours %3zu  H nnz %8zu colours %3zu  "
           "per call: grad %8.1f us  jac %8.1f us  hess %8.1f us  (%ld/%ld/%ld calls)  "
           "tapes %.1f MB, workspaces %.1f MB%s\n",
           w->name, w->n, w->jac_nnz, w->jac_colors, w->hess_nnz, w->hess_colors,
           k->ngrad ? 1e6 * k->grad / (double)k->ngrad : 0.0,
           k->njac ? 1e6 * k->jac / (double)k->njac : 0.0,
           k->nhess ? 1e6 * k->hess / (double)k->nhess : 0.0, k->ngrad, k->njac, k->nhess,
           w->tape_mb, w->ws_mb,
           w->check >= 0 ? (w->check == 0 ? "  checks passed" : "  CHECKS FAILED")
                         : (w->check == -1 ? "  check could not run" : ""));
}

/* Prepares, optionally checks, and solves one problem; fills w.  Returns
 * -1 when the problem could not be set up or handed to Ipopt. */
static int run_one(const options *o, const nlp_problem *p, row *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", p->name);
    w->n = p->n;
    w->m = p->m;
    w->f_star = p->f_star;
    w->check = -2;
    w->peak = NAN;
    w->tapes = o->mode == NLP_TAPES;
    nlp_ctx c;
    nlp_result r = { 0 };
    int rc = -1;
    if (nlp_prepare(&c, p, o->mode) != 0)
        goto out;
    w->record_s = c.record_s;
    w->pattern_s = c.pattern_s + c.dtape_s;
    w->jac_nnz = tg_sparsity_nnz(c.jac);
    w->jac_colors = tg_sparsity_colors(c.jac);
    w->hess_nnz = tg_sparsity_nnz(c.hess);
    w->hess_colors = tg_sparsity_colors(c.hess);
    if (o->check)
        w->check = run_checks(&c);
    if (nlp_solve(&c, o->print_level, &r) != 0)
        goto out;
    if (c.failed)
        fprintf(stderr, "ipopt_nlp: %s: a callback failed: %s\n", p->name, c.err);
    w->status = r.status;
    w->iter = r.iter;
    w->obj = r.obj;
    w->solve_s = r.solve_s;
    w->clock = c.clock;
    w->tape_mb = (double)(tg_tape_bytes(c.tf) + tg_tape_bytes(c.tg) + tg_tape_bytes(c.tl) +
                          (c.tjac ? tg_tape_bytes(c.tjac) : 0) +
                          (c.thess ? tg_tape_bytes(c.thess) : 0)) / 1048576.0;
    w->ws_mb = (double)(tg_workspace_bytes(c.wsf) + tg_workspace_bytes(c.wsg) +
                        tg_workspace_bytes(c.wsl)) / 1048576.0;
    w->err = fabs(r.obj - p->f_star) / fmax(1.0, fabs(p->f_star));
    w->ok = (r.status == Solve_Succeeded || r.status == Solved_To_Acceptable_Level) &&
            w->err <= TOL_OPT && !c.failed && (w->check == -2 || w->check == 0);
    if (strcmp(p->name, "LV1") == 0)
        w->peak = peak_mb();
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "ipopt_nlp: %s\n", c.err);
    nlp_result_free(&r);
    nlp_release(&c);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o) != 0)
        return 2;
    FILE *csv = NULL;
    if (o.csv) {
        csv = fopen(o.csv, "w");
        if (csv == NULL) {
            fprintf(stderr, "ipopt_nlp: cannot write %s: %s\n", o.csv, strerror(errno));
            return 2;
        }
        fputs("problem,n,m,status,iter,objective,optimum,rel_err,deriv_s,solve_s,deriv_share_pct,"
              "record_s,pattern_s,jac_nnz,jac_colors,hess_nnz,hess_colors,peak_mb,check,derivs\n", csv);
    }

    size_t total = nlp_hs_count() + o.nsizes, done = 0, missed = 0;
    row *rows = calloc(total, sizeof *rows);
    if (rows == NULL) {
        fprintf(stderr, "ipopt_nlp: out of memory\n");
        return 1;
    }

    printf("Ipopt with tapegen derivatives.  rel.err = |f - f*| / max(1, |f*|).  Times are CPU\n"
           "times of the process: deriv ms in eval_grad_f + eval_jac_g + eval_h, share of\n"
           "IpoptSolve's; setup: recording the tapes + sparsity patterns and colouring (+ the\n"
           "derivative tapes with --tapes).  peak MB: getrusage max RSS of the process (LV1\n"
           "runs in increasing n: that run's peak).  Jacobian and Hessian: %s.\n\n",
           o.mode == NLP_TAPES ? "sparse derivative tapes (tg_sparse_*_tape, built in the setup)"
                               : "tg_sparse_jacobian_ws, tg_sparse_hessian_ws");
    print_header();
    fflush(stdout);
    for (size_t k = 0; k < total; k++) {
        nlp_problem p;
        int made;
        if (k < nlp_hs_count()) {
            if (o.only && strcmp(o.only, nlp_hs_name(k)) != 0)
                continue;
            made = nlp_problem_hs(nlp_hs_name(k), &p);
        } else {
            if (o.only && strcmp(o.only, "LV1") != 0)
                continue;
            made = nlp_problem_lv1(o.sizes[k - nlp_hs_count()], &p);
        }
        if (made != 0) {
            fprintf(stderr, "ipopt_nlp: cannot set up problem %zu (out of memory)\n", k);
            missed++;
            continue;
        }
        row *w = &rows[done];
        if (run_one(&o, &p, w) != 0) {
            missed++;
        } else {
            print_row(w, csv);
            fflush(stdout);
            missed += !w->ok;
            done++;
        }
        nlp_problem_free(&p);
    }
    if (done == 0 && o.only) {
        fprintf(stderr, "ipopt_nlp: no problem named '%s'\n", o.only);
        missed++;
    }
    printf("\nSparsity and derivative calls:\n");
    for (size_t k = 0; k < done; k++)
        print_detail(&rows[k]);
    printf("\n%zu problems run, %zu missed (not solved to the published optimum within %.0e,\n"
           "a failed check, or not set up).\n", done, missed, TOL_OPT);
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "ipopt_nlp: cannot write %s\n", o.csv);
        missed++;
    }
    free(rows);
    return missed ? 1 : 0;
}
