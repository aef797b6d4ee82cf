#include "check.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct chk {
    FILE *out;
    const char *name;
    long bad;
} chk;

/* Uniform in [-1, 1): a small LCG, so that a check is reproducible. */
static double uniform(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (double)(*s >> 8) / 8388608.0 - 1.0;
}

static double fd_step(double xj)
{
    return cbrt(DBL_EPSILON) * fmax(1.0, fabs(xj));
}

/* Central difference d against the AD value a: truncation O(h^2) plus the
 * rounding of F (the size of the differenced values) divided by h. */
static int fd_agrees(double a, double d, double F, double h)
{
    return fabs(a - d) <= 1e-6 * (1.0 + fabs(d)) + 8.0 * DBL_EPSILON * (1.0 + F) / h;
}

/* Two derivative paths of the library: equal up to rounding. */
static int paths_agree(double a, double d)
{
    return fabs(a - d) <= 1e-12 * (1.0 + fabs(d));
}

static void disagree(chk *k, const char *what, size_t i, size_t j, double got, double want)
{
    if (k->bad < 10)
        fprintf(k->out, "  %s: %s (%zu, %zu) = %.17g, expected %.17g\n", k->name, what, i, j,
                got, want);
    k->bad++;
}

/* Entries strictly increasing by (row, col), inside the matrix. */
static void check_order(chk *k, const char *what, const Index *ir, const Index *jc,
                        size_t nnz, size_t rows, size_t cols)
{
    for (size_t e = 0; e < nnz; e++) {
        if (ir[e] < 0 || (size_t)ir[e] >= rows || jc[e] < 0 || (size_t)jc[e] >= cols)
            disagree(k, what, (size_t)ir[e], (size_t)jc[e], NAN, NAN);
        else if (e > 0 && (ir[e] < ir[e - 1] || (ir[e] == ir[e - 1] && jc[e] <= jc[e - 1])))
            disagree(k, what, (size_t)ir[e], (size_t)jc[e], NAN, NAN);
    }
}

static int check_gradient(nlp_ctx *c, double *x, chk *k)
{
    size_t n = c->p->n;
    double *g = malloc(n * sizeof *g);
    int rc = -1;
    if (g == NULL || !nlp_eval_grad_f((Index)n, x, TRUE, g, c))
        goto out;
    for (size_t j = 0; j < n; j++) {
        double xj = x[j], h = fd_step(xj), fp, fm;
        x[j] = xj + h;
        Bool ok = nlp_eval_f((Index)n, x, TRUE, &fp, c);
        double hp = x[j];
        x[j] = xj - h;
        ok = ok && nlp_eval_f((Index)n, x, TRUE, &fm, c);
        double hm = x[j];
        x[j] = xj;
        if (!ok)
            goto out;
        double d = (fp - fm) / (hp - hm);
        if (!fd_agrees(g[j], d, fmax(fabs(fp), fabs(fm)), h))
            disagree(k, "gradient vs central differences", 0, j, g[j], d);
    }
    rc = 0;
out:
    free(g);
    return rc;
}

static int check_jacobian(nlp_ctx *c, double *x, chk *k)
{
    size_t n = c->p->n, m = c->p->m, nnz = tg_sparsity_nnz(c->jac);
    Index *ir = malloc(nnz * sizeof *ir), *jc = malloc(nnz * sizeof *jc);
    double *v = malloc(nnz * sizeof *v), *J = malloc(m * n * sizeof *J);
    double *gp = malloc(m * sizeof *gp), *gm = malloc(m * sizeof *gm);
    unsigned char *in = calloc(m * n, 1);
    int rc = -1;
    if (!ir || !jc || !v || !J || !gp || !gm || !in)
        goto out;
    if (!nlp_eval_jac_g((Index)n, x, TRUE, (Index)m, (Index)nnz, ir, jc, NULL, c) ||
        !nlp_eval_jac_g((Index)n, x, TRUE, (Index)m, (Index)nnz, NULL, NULL, v, c))
        goto out;
    if (tg_jacobian(c->tg, x, J) != TG_OK) {
        fprintf(k->out, "  %s: tg_jacobian: %s\n", k->name, tg_last_error());
        goto out;
    }
    check_order(k, "Jacobian entry out of order or range", ir, jc, nnz, m, n);
    if (k->bad)
        goto done;
    for (size_t e = 0; e < nnz; e++) {
        size_t at = (size_t)ir[e] * n + (size_t)jc[e];
        in[at] = 1;
        if (!paths_agree(v[e], J[at]))
            disagree(k, "sparse Jacobian vs tg_jacobian", (size_t)ir[e], (size_t)jc[e], v[e], J[at]);
    }
    for (size_t at = 0; at < m * n; at++)
        if (!in[at] && J[at] != 0.0)
            disagree(k, "Jacobian nonzero outside the pattern", at / n, at % n, 0.0, J[at]);
    for (size_t j = 0; j < n; j++) {
        double xj = x[j], h = fd_step(xj);
        x[j] = xj + h;
        Bool ok = nlp_eval_g((Index)n, x, TRUE, (Index)m, gp, c);
        double hp = x[j];
        x[j] = xj - h;
        ok = ok && nlp_eval_g((Index)n, x, TRUE, (Index)m, gm, c);
        double hm = x[j];
        x[j] = xj;
        if (!ok)
            goto out;
        for (size_t i = 0; i < m; i++) {
            double d = (gp[i] - gm[i]) / (hp - hm);
            if (!fd_agrees(J[i * n + j], d, fmax(fabs(gp[i]), fabs(gm[i])), h))
                disagree(k, "Jacobian vs central differences", i, j, J[i * n + j], d);
        }
    }
done:
    rc = 0;
out:
    free(ir);
    free(jc);
    free(v);
    free(J);
    free(gp);
    free(gm);
    free(in);
    return rc;
}

/* x -> w . (f, g) with the weights as constants: a scalar tape whose dense
 * Hessian (tg_hessian, Hessian-vector products) is the oracle for eval_h. */
static tg_tape *weighted_lagrangian(const tg_tape *L, const double *w)
{
    size_t n = tg_num_inputs(L), mo = tg_num_outputs(L);
    tg_tape *t = tg_tape_new("lagrangian");
    tg_var *x = malloc(n * sizeof *x), *y = malloc(mo * sizeof *y);
    if (t == NULL || x == NULL || y == NULL) {
        tg_tape_free(t);
        t = NULL;
    } else {
        tg_input_vec(t, "x", n, x);
        tg_call(t, L, x, y);
        tg_var s = tg_mul(w[0], y[0]);
        for (size_t k = 1; k < mo; k++)
            s = tg_add(s, tg_mul(w[k], y[k]));
        tg_output(t, "L", s);
    }
    free(x);
    free(y);
    return t;
}

static int check_hessian(nlp_ctx *c, double *x, unsigned *seed, chk *k)
{
    size_t n = c->p->n, m = c->p->m, nnz = tg_sparsity_nnz(c->hess);
    Index *ir = malloc(nnz * sizeof *ir), *jc = malloc(nnz * sizeof *jc);
    double *v = malloc(nnz * sizeof *v), *H = malloc(n * n * sizeof *H);
    double *S = calloc(n * n, sizeof *S), *w = malloc((m + 1) * sizeof *w);
    double *gp = malloc(n * sizeof *gp), *gm = malloc(n * sizeof *gm);
    unsigned char *in = calloc(n * n, 1);
    tg_tape *lw = NULL;
    int rc = -1;
    if (!ir || !jc || !v || !H || !S || !w || !gp || !gm || !in)
        goto out;
    w[0] = 1.0 + 0.5 * uniform(seed);
    for (size_t i = 1; i <= m; i++)
        w[i] = uniform(seed);
    if (!nlp_eval_h((Index)n, x, TRUE, w[0], (Index)m, w + 1, TRUE, (Index)nnz, ir, jc, NULL, c) ||
        !nlp_eval_h((Index)n, x, TRUE, w[0], (Index)m, w + 1, TRUE, (Index)nnz, NULL, NULL, v, c))
        goto out;
    lw = weighted_lagrangian(c->tl, w);
    if (lw == NULL || tg_tape_status(lw) != TG_OK || tg_hessian(lw, x, H) != TG_OK) {
        fprintf(k->out, "  %s: dense Lagrangian Hessian failed\n", k->name);
        goto out;
    }
    check_order(k, "Hessian entry out of order or range", ir, jc, nnz, n, n);
    for (size_t e = 0; e < nnz; e++)
        if (ir[e] < jc[e])
            disagree(k, "Hessian entry above the diagonal", (size_t)ir[e], (size_t)jc[e], v[e], 0);
    if (k->bad)
        goto done;
    for (size_t e = 0; e < nnz; e++) {
        size_t at = (size_t)ir[e] * n + (size_t)jc[e];
        in[at] = 1;
        S[at] = v[e];
        if (!paths_agree(v[e], H[at]))
            disagree(k, "sparse Hessian vs tg_hessian", (size_t)ir[e], (size_t)jc[e], v[e], H[at]);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            if (!in[i * n + j] && H[i * n + j] != 0.0)
                disagree(k, "Hessian nonzero outside the pattern", i, j, 0.0, H[i * n + j]);
    /* Columns of the Hessian by central differences of grad L = w^T J. */
    for (size_t j = 0; j < n; j++) {
        double xj = x[j], h = fd_step(xj);
        x[j] = xj + h;
        int ok = tg_vjp(c->tl, x, w, gp) == TG_OK;
        double hp = x[j];
        x[j] = xj - h;
        ok = ok && tg_vjp(c->tl, x, w, gm) == TG_OK;
        double hm = x[j];
        x[j] = xj;
        if (!ok)
            goto out;
        for (size_t i = j; i < n; i++) {
            double d = (gp[i] - gm[i]) / (hp - hm);
            if (!fd_agrees(S[i * n + j], d, fmax(fabs(gp[i]), fabs(gm[i])), h))
                disagree(k, "Hessian vs central differences", i, j, S[i * n + j], d);
        }
    }
done:
    rc = 0;
out:
    tg_tape_free(lw);
    free(ir);
    free(jc);
    free(v);
    free(H);
    free(S);
    free(w);
    free(gp);
    free(gm);
    free(in);
    return rc;
}

long nlp_check(nlp_ctx *c, const double *x0, unsigned seed, FILE *out)
{
    size_t n = c->p->n;
    if (n > NLP_CHECK_MAX_N) {
        fprintf(out, "  %s: n = %zu is too large for the dense check (at most %d)\n",
                c->p->name, n, NLP_CHECK_MAX_N);
        return -1;
    }
    chk k = { out, c->p->name, 0 };
    double *x = malloc(n * sizeof *x);
    if (x == NULL)
        return -1;
    memcpy(x, x0, n * sizeof *x);
    int rc = check_gradient(c, x, &k);
    if (rc == 0)
        rc = check_jacobian(c, x, &k);
    if (rc == 0)
        rc = check_hessian(c, x, &seed, &k);
    free(x);
    if (rc != 0) {
        fprintf(out, "  %s: the check could not run: %s\n", c->p->name,
                c->failed ? c->err : "out of memory or a failed call");
        return -1;
    }
    return k.bad;
}
