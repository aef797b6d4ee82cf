/* fit.c -- the residual tape of a NIST model, and its fit with lmder.
 *
 * lmder (cminpack) asks for residuals (iflag 1) or the Jacobian (iflag 2)
 * through one callback; both are tapegen sweeps over the recorded tape with
 * the problem's own workspace.  cminpack stores fjac column-major with
 * leading dimension ldfjac, tapegen returns J row-major: the callback
 * transposes the first k columns.
 */
#include "fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NIST_NO_LMDER          /* defined by a test built without cminpack */
#include <cminpack.h>
#endif

/* Stopping tolerances: iterate as long as lmder can make progress.  With
 * ftol = 0 the sum of squares is never "reduced enough"; lmder stops when
 * successive iterates agree to xtol, or answers info 6/7 ("ftol/xtol is too
 * small") when no further reduction is possible in double precision, which
 * is exactly where we want it to stop.  Over the 50 fits this gains a few
 * tenths of a digit of LRE over ftol = 1e-15 for 5% more evaluations. */
#define FIT_FTOL 0.0
#define FIT_XTOL 1e-15
#define FIT_GTOL 0.0
#define FIT_MAXFEV_PER_PARAM 10000
#define FIT_OK_LRE 4.0

/* Stand-in for a residual that is not finite (a trial step into a region
 * where the model is undefined, e.g. a negative base of a real power): a
 * huge but finite value makes lmder reject the step and shrink its trust
 * region, where NaN would poison its norms. */
#define HUGE_RESIDUAL 1e100

tg_tape *
nist_record(const nist_model *model, size_t n)
{
    tg_tape *t = tg_tape_new(model->name);
    tg_var b[NIST_MAXP];
    tg_var *x = malloc(3 * n * sizeof *x), *y = x + n, *r = x + 2 * n;

    if (!t || !x) {
        free(x);
        tg_tape_free(t);
        return NULL;
    }
    tg_input_vec(t, "b", (size_t)model->k, b);
    tg_input_vec(t, "x", n, x);
    tg_input_vec(t, "y", n, y);
    for (size_t i = 0; i < n; i++)
        r[i] = tg_sub(y[i], model->fn(b, x[i]));
    tg_output_vec(t, "r", n, r);
    free(x);
    return t;
}

void
nist_problem_free(nist_problem *p)
{
    tg_tape_free(p->tape);
    tg_workspace_free(p->ws);
    free(p->in);
    free(p->J);
    free(p->fvec);
    free(p->ipvt);
    memset(p, 0, sizeof *p);
}

int
nist_problem_init(nist_problem *p, const nist_dataset *d,
                  const nist_model *model, char *err, size_t errlen)
{
    size_t n = d->n, k = (size_t)d->k;

    memset(p, 0, sizeof *p);
    if (model->k != d->k) {
        snprintf(err, errlen, "%s: the file has %d parameters, the model %d",
                 d->name, d->k, model->k);
        return -1;
    }
    p->d = d;
    p->model = model;
    p->nin = k + 2 * n;
    p->tape = nist_record(model, n);
    if (p->tape && tg_tape_status(p->tape) != TG_OK) {
        snprintf(err, errlen, "%s: recording failed: %s", d->name,
                 tg_tape_error(p->tape));
        nist_problem_free(p);
        return -1;
    }
    p->ws = p->tape ? tg_workspace_new(p->tape) : NULL;
    p->in = malloc(p->nin * sizeof *p->in);
    p->J = malloc(n * p->nin * sizeof *p->J);
    /* fvec n, fjac n*k, diag qtf wa1 wa2 wa3 k each, wa4 n */
    p->fvec = malloc((2 * n + n * k + 5 * k) * sizeof *p->fvec);
    p->ipvt = malloc(k * sizeof *p->ipvt);
    if (!p->ws || !p->in || !p->J || !p->fvec || !p->ipvt) {
        snprintf(err, errlen, "%s: out of memory", d->name);
        nist_problem_free(p);
        return -1;
    }
    p->fjac = p->fvec + n;
    p->diag = p->fjac + n * k;
    p->qtf = p->diag + k;
    p->wa1 = p->qtf + k;
    p->wa2 = p->wa1 + k;
    p->wa3 = p->wa2 + k;
    p->wa4 = p->wa3 + k;
    memcpy(p->in + k, d->x, n * sizeof *d->x);
    memcpy(p->in + k + n, d->y, n * sizeof *d->y);
    return 0;
}

tg_status
nist_residuals(nist_problem *p, const double *b, double *r)
{
    memcpy(p->in, b, (size_t)p->d->k * sizeof *b);
    return tg_eval_ws(p->tape, p->ws, p->in, r);
}

/* p->J = the full n x (k + 2n) Jacobian at b (and the data). */
static tg_status
full_jacobian(nist_problem *p, const double *b)
{
    memcpy(p->in, b, (size_t)p->d->k * sizeof *b);
    return tg_jacobian_ws(p->tape, p->ws, p->in, p->J);
}

tg_status
nist_jacobian_b(nist_problem *p, const double *b, double *Jb)
{
    size_t n = p->d->n, k = (size_t)p->d->k;
    tg_status s = full_jacobian(p, b);

    if (s != TG_OK)
        return s;
    for (size_t i = 0; i < n; i++)
        memcpy(Jb + i * k, p->J + i * p->nin, k * sizeof *Jb);
    return TG_OK;
}

double
nist_lre(double v, double cert, int digits)
{
    double lre;

    if (!isfinite(v))
        return 0.0;
    if (v == cert)
        return digits;
    lre = cert != 0.0 ? -log10(fabs(v - cert) / fabs(cert)) : -log10(fabs(v));
    return lre < 0.0 ? 0.0 : lre > digits ? digits : lre;
}

#ifndef NIST_NO_LMDER

/* lmder's callback: iflag 1 residuals, 2 Jacobian (column-major), 0 print. */
static int
fcn(void *vp, int m, int n, const double *b, double *fvec, double *fjac,
    int ldfjac, int iflag)
{
    nist_problem *p = vp;
    tg_status s = TG_OK;

    if (iflag == 1) {
        s = nist_residuals(p, b, fvec);
        int bad = 0;
        for (int i = 0; s == TG_OK && i < m; i++)
            if (!isfinite(fvec[i])) {
                fvec[i] = HUGE_RESIDUAL;
                bad = 1;
            }
        p->nonfinite += bad;
    } else if (iflag == 2) {
        s = full_jacobian(p, b);
        for (int i = 0; s == TG_OK && i < m; i++)
            for (int j = 0; j < n; j++)
                fjac[(size_t)j * (size_t)ldfjac + (size_t)i] =
                    p->J[(size_t)i * p->nin + (size_t)j];
    }
    if (s != TG_OK) {
        if (p->err == TG_OK)
            p->err = s;
        return -1;                  /* stops lmder (info < 0) */
    }
    return 0;
}

const char *
nist_lmder_info_str(int info)
{
    static const char *const s[] = {
        "bad input", "ftol", "xtol", "ftol+xtol", "gtol", "maxfev",
        "ftol<eps", "xtol<eps", "gtol<eps"
    };
    if (info < 0)
        return "stopped";
    return info < 9 ? s[info] : "?";
}

static double
sum_squares(const double *r, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += r[i] * r[i];
    return s;
}

/* One lmder call from b (updated in place).  Returns info. */
static int
lmder_run(nist_problem *p, double *b, nist_fit_result *res)
{
    int m = (int)p->d->n, n = p->d->k, nfev = 0, njev = 0, info;

    info = lmder(fcn, p, m, n, b, p->fvec, p->fjac, m, FIT_FTOL, FIT_XTOL,
                 FIT_GTOL, FIT_MAXFEV_PER_PARAM * (n + 1), p->diag, 1, 100.0, 0,
                 &nfev, &njev, p->ipvt, p->qtf, p->wa1, p->wa2, p->wa3, p->wa4);
    res->nfev += nfev;
    res->njev += njev;
    res->info[res->runs++] = info;
    return info;
}

static void
grade(nist_problem *p, nist_fit_result *res)
{
    const nist_dataset *d = p->d;

    res->min_lre = INFINITY;
    for (int j = 0; j < d->k; j++) {
        res->lre[j] = nist_lre(res->b[j], d->cert[j], d->cert_digits[j]);
        if (res->lre[j] < res->min_lre)
            res->min_lre = res->lre[j];
    }
    res->lre_rss = nist_lre(res->rss, d->rss, d->rss_digits);
    if (res->min_lre >= FIT_OK_LRE) {
        res->status = NIST_FIT_OK;
        return;
    }
    res->status = NIST_FIT_STALLED;
    if (res->info[res->runs - 1] == 5)
        snprintf(res->why, sizeof res->why, "maxfev reached");
    else if (res->rss > d->rss * (1.0 + 1e-6))
        snprintf(res->why, sizeof res->why, "stuck at RSS %.4g (local minimum or flat region)",
                 res->rss);
    else
        snprintf(res->why, sizeof res->why, "RSS matches the certified RSS, parameters do not");
}

/* First lmder from start; then restarts from the result (each restart
 * re-scales and resets the trust region) while they still lower the RSS. */
int
nist_fit(nist_problem *p, const double *start, nist_fit_result *res)
{
    const nist_dataset *d = p->d;
    double prev = INFINITY;

    memset(res, 0, sizeof *res);
    memcpy(res->b, start, (size_t)d->k * sizeof *start);
    p->err = TG_OK;
    p->nonfinite = 0;
    while (res->runs < NIST_FIT_RUNS) {
        int info = lmder_run(p, res->b, res);
        if (info <= 0)
            break;
        double rss = sum_squares(p->fvec, d->n);
        if (!(rss < prev))
            break;
        prev = rss;
    }
    if (p->err == TG_OK)
        p->err = nist_residuals(p, res->b, p->fvec);
    if (p->err != TG_OK) {
        res->status = NIST_FIT_FAILED;
        snprintf(res->why, sizeof res->why, "tapegen: %s: %s",
                 tg_status_str(p->err), tg_last_error());
        return res->status;
    }
    res->rss = sum_squares(p->fvec, d->n);
    if (res->info[res->runs - 1] <= 0 || !isfinite(res->rss)) {
        res->status = NIST_FIT_FAILED;
        snprintf(res->why, sizeof res->why, "lmder info %d, RSS %g",
                 res->info[res->runs - 1], res->rss);
        return res->status;
    }
    grade(p, res);
    return res->status;
}

#endif /* NIST_NO_LMDER */
