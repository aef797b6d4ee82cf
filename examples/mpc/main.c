/* examples/mpc/main.c -- horizon-N nonlinear MPC of a kinematic bicycle with
 * the horizon kept as one loop in the tape (tg_scan, issue 11).
 *
 *   mpc [--N N] [--iters K] [--rust DIR] [--fd M] [-q] [--require-loops]
 *
 * 1. Records the cost J(u, x0, xref) (model.h) twice: as one tg_scan of the
 *    stage (state = the carry, controls and reference point = the per-step
 *    xs, stage costs = the ys, summed with tg_sum, plus a terminal cost),
 *    and unrolled ("flat"), the same operations in the same order.
 * 2. Checks at a point inside the bounds: J from both tapes against the
 *    plain-C cost; tg_gradient of the scan against the flat tape's (the
 *    issue's 1e-13 target), against central differences of the plain-C cost
 *    (M control coordinates, default all up to 200, else 64 spread out), and
 *    against tg_eval of the scan's gradient tape.
 * 3. Solves the box-constrained problem min_u J, |a| <= amax, |delta| <=
 *    dmax, by projected gradient with an Armijo backtracking line search
 *    (Bertsekas, Nonlinear Programming, 3rd ed., sec. 2.3) from u = 0 for K
 *    iterations, printing the cost decrease; the gradients are tg_gradient
 *    of the scan tape.  Times tg_gradient on the scan and on the flat tape.
 * 4. With --rust DIR: the scan's gradient tape as a Rust kernel
 *    (tg_rust_crate), built with cargo offline and run at the solution,
 *    against C.  Where the looped gradient tape cannot be translated yet,
 *    says so and checks the flat tape's gradient kernel instead (labelled).
 *
 * A loop path that is not available in the build at hand (an operation
 * returning TG_ERR_UNSUPPORTED: the numeric gradient of the scan, its
 * gradient tape, its Rust translation) is reported as NOT AVAILABLE and the
 * flat tape stands in, labelled; --require-loops makes that a failure.
 *
 * Exit status: 0 when every check passed and the cost decreased, 1 on a
 * check failure (or a missing loop path with --require-loops), 3 when the Rust kernel failed or disagreed, 77 when Rust
 * was asked for and cargo is missing (everything else passed). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tapegen.h>

#include "model.h"
#include "rust.h"

#define TOL_F 1e-12          /* J: scan vs flat vs plain C */
#define TOL_LOOP_FLAT 1e-13  /* gradient: scan vs flat (the target) */
#define TOL_FD 1e-6          /* gradient vs central differences, normwise */
#define TOL_RUST 1e-10       /* Rust vs C: libm may differ by an ulp */

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "mpc: out of memory\n");
        exit(1);
    }
    return p;
}

/* max_i |a_i - b_i| / max(|b_i|, 1e-6 max|b|): relative, floored. */
static double
relerr(const double *a, const double *b, size_t n)
{
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / fmax(fmax(fabs(b[i]), 1e-6 * scale), 1e-300);
        if (!(e <= err))
            err = e;
    }
    return err;
}

static double
clamp(double v, double lim)
{
    return v > lim ? lim : v < -lim ? -lim : v;
}

/* Projection onto the control box. */
static void
project(const mpc_problem *p, double *u)
{
    for (size_t k = 0; k < p->N; k++) {
        u[2 * k] = clamp(u[2 * k], p->amax);
        u[2 * k + 1] = clamp(u[2 * k + 1], p->dmax);
    }
}

typedef struct ctx {
    const mpc_problem *p;
    const tg_tape *t;
    double *x, *g;    /* packed inputs and the full gradient (n) */
    size_t n;
    int failed;
} ctx;

static double
cost_at(ctx *c, const double *u)
{
    double J = NAN;
    mpc_pack(c->p, u, c->x);
    if (tg_eval(c->t, c->x, &J) != TG_OK) {
        printf("mpc: tg_eval failed: %s\n", tg_last_error());
        c->failed = 1;
    }
    return J;
}

/* J and its gradient with respect to u (the first 2N entries of g). */
static double
grad_at(ctx *c, const double *u)
{
    double J = cost_at(c, u);
    if (tg_gradient(c->t, c->x, c->g) != TG_OK) {
        printf("mpc: tg_gradient failed: %s\n", tg_last_error());
        c->failed = 1;
    }
    return J;
}

/* Projected gradient with Armijo backtracking along the projection arc:
 * u+ = P(u - alpha g), accepted when J(u+) <= J(u) + sigma g.(u+ - u)
 * (Bertsekas, Nonlinear Programming, 3rd ed., sec. 2.3); the first trial
 * step is the Barzilai-Borwein step s.s / s.y of the last move (Birgin,
 * Martinez & Raydan, SIAM J. Optim. 10, 2000), else twice the last accepted
 * step.  Returns 0 when the cost decreased at every accepted step and
 * overall. */
static int
solve(ctx *c, double *u, int iters, int quiet, double *J0out, double *J1out)
{
    const mpc_problem *p = c->p;
    size_t m = 2 * p->N;
    double *ut = xcalloc(m, sizeof *ut), *gold = xcalloc(m, sizeof *gold);
    double alpha = 1e-2, sigma = 1e-4;
    double J = grad_at(c, u), J0 = J;
    int monotone = 1;
    printf("\nprojected gradient (Armijo), from u = 0:\n  iter %14s %12s %10s %s\n", "J",
           "|P(u-g)-u|", "step", "evals");
    for (int it = 0; it < iters && !c->failed; it++) {
        double pg = 0.0;
        for (size_t i = 0; i < m; i++) {
            double lim = i % 2 ? p->dmax : p->amax;
            pg = fmax(pg, fabs(clamp(u[i] - c->g[i], lim) - u[i]));
        }
        if (!quiet || it % 10 == 0 || it == iters - 1)
            printf("  %4d %14.8g %12.4g %10.3g", it, J, pg, alpha);
        int evals = 0, accepted = 0;
        double Jt = J;
        for (; evals < 60; evals++) {
            double slope = 0.0;
            for (size_t i = 0; i < m; i++)
                ut[i] = u[i] - alpha * c->g[i];
            project(p, ut);
            for (size_t i = 0; i < m; i++)
                slope += c->g[i] * (ut[i] - u[i]);
            Jt = cost_at(c, ut);
            if (Jt <= J + sigma * slope) {
                accepted = 1;
                break;
            }
            alpha *= 0.5;
        }
        if (!quiet || it % 10 == 0 || it == iters - 1)
            printf(" %d\n", evals + 1);
        if (!accepted)
            break;   /* no decrease found: stationary to rounding */
        if (!(Jt <= J))
            monotone = 0;
        /* s = ut - u (kept in ut), y = g(ut) - g(u) */
        memcpy(gold, c->g, m * sizeof *gold);
        for (size_t i = 0; i < m; i++) {
            double si = ut[i] - u[i];
            u[i] = ut[i];
            ut[i] = si;
        }
        J = grad_at(c, u);
        double ss = 0.0, sy = 0.0;
        for (size_t i = 0; i < m; i++) {
            ss += ut[i] * ut[i];
            sy += ut[i] * (c->g[i] - gold[i]);
        }
        alpha = sy > 0.0 ? ss / sy : 2.0 * alpha;
    }
    printf("  cost %.10g -> %.10g (%.1f%% of the start)\n", J0, J, 100.0 * J / J0);
    *J0out = J0;
    *J1out = J;
    free(ut);
    free(gold);
    return monotone && J < J0 ? 0 : 1;
}

/* Seconds per tg_gradient call (best of 5 batches of >= 0.05 s). */
static double
time_gradient(const tg_tape *t, const double *x, double *g)
{
    double best = INFINITY;
    for (int r = 0; r < 5; r++) {
        size_t reps = 0;
        double t0 = now(), el;
        do {
            tg_gradient(t, x, g);
            reps++;
            el = now() - t0;
        } while (el < 0.05);
        best = fmin(best, el / (double)reps);
    }
    return best;
}

static int
check(const char *what, double err, double tol)
{
    int ok = err <= tol;
    printf("  %-58s %.2e  (tol %.0e) %s\n", what, err, tol, ok ? "ok" : "FAILED");
    return ok;
}

int
main(int argc, char **argv)
{
    size_t N = 200;
    int iters = 30, quiet = 0, require_loops = 0;
    long fd_coords = -1;
    const char *rust_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--N") == 0 && i + 1 < argc)
            N = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rust") == 0 && i + 1 < argc)
            rust_dir = argv[++i];
        else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc)
            fd_coords = atol(argv[++i]);
        else if (strcmp(argv[i], "-q") == 0)
            quiet = 1;
        else if (strcmp(argv[i], "--require-loops") == 0)
            require_loops = 1;
        else {
            fprintf(stderr, "usage: mpc [--N N] [--iters K] [--rust DIR] [--fd M] [-q] "
                            "[--require-loops]\n");
            return 2;
        }
    }
    if (N < 1) {
        fprintf(stderr, "mpc: N must be at least 1\n");
        return 2;
    }
    mpc_problem p;
    if (mpc_problem_init(&p, N) != 0) {
        fprintf(stderr, "mpc: out of memory\n");
        return 1;
    }
    int ok = 1, rust_code = 0, scan_grad = 0, missing = 0;
    size_t n = mpc_num_inputs(&p), m = 2 * N;
    printf("MPC of a kinematic bicycle: horizon N = %zu (dt = %g s, %g s), %zu controls, "
           "tracking a circle of radius %g m at %g m/s\n",
           N, p.dt, p.dt * (double)N, m, p.R, p.vref);

    /* ---- 1. the two recordings */
    double t0 = now();
    tg_tape *ts = mpc_record_scan(&p);
    double t_scan = now() - t0;
    if (!ts || tg_tape_status(ts) != TG_OK) {
        printf("mpc: recording the scan failed: %s\n", ts ? tg_tape_error(ts) : "out of memory");
        tg_tape_free(ts);
        mpc_problem_free(&p);
        return 1;
    }
    t0 = now();
    tg_tape *tf = mpc_record_flat(&p);
    double t_flat = now() - t0;
    if (!tf || tg_tape_status(tf) != TG_OK) {
        printf("mpc: recording the flat tape failed: %s\n", tf ? tg_tape_error(tf) : "out of memory");
        ok = 0;
        goto out;
    }
    printf("tapes: scan %zu instructions (%zu bytes, recorded in %.2f ms); flat %zu instructions "
           "(%zu bytes, %.2f ms)\n",
           tg_tape_size(ts), tg_tape_bytes(ts), 1e3 * t_scan, tg_tape_size(tf), tg_tape_bytes(tf),
           1e3 * t_flat);

    /* ---- 2. checks at a point inside the box */
    double *u = xcalloc(m, sizeof *u), *x = xcalloc(n, sizeof *x);
    double *gs = xcalloc(n, sizeof *gs), *gf = xcalloc(n, sizeof *gf), *gd = xcalloc(n, sizeof *gd);
    for (size_t k = 0; k < N; k++) {
        u[2 * k] = 0.5 * p.amax * sin(0.7 * (double)k);
        u[2 * k + 1] = 0.5 * p.dmax * cos(0.3 * (double)k);
    }
    mpc_pack(&p, u, x);
    double Js = NAN, Jf = NAN, Jc = mpc_cost(&p, u);
    printf("\nchecks at u_k = (%.2g sin 0.7k, %.2g cos 0.3k):\n", 0.5 * p.amax, 0.5 * p.dmax);
    if (tg_eval(ts, x, &Js) != TG_OK || tg_eval(tf, x, &Jf) != TG_OK ||
        tg_gradient(tf, x, gf) != TG_OK) {
        printf("mpc: evaluation failed: %s\n", tg_last_error());
        ok = 0;
        goto out2;
    }
    ok &= check("J: scan vs plain C", fabs(Js - Jc) / fabs(Jc), TOL_F);
    ok &= check("J: flat vs plain C", fabs(Jf - Jc) / fabs(Jc), TOL_F);
    {
        tg_status sg = tg_gradient(ts, x, gs);
        scan_grad = sg == TG_OK;
        if (scan_grad) {
            ok &= check("tg_gradient: scan vs flat (all 4N+4 entries)", relerr(gs, gf, n),
                        TOL_LOOP_FLAT);
        } else {
            printf("  tg_gradient of the scan: NOT AVAILABLE in this build (%s: %s);\n"
                   "  the checks, the solve and the timing below use the flat tape's gradient\n",
                   tg_status_str(sg), tg_last_error());
            missing++;
            memcpy(gs, gf, n * sizeof *gs);
        }
    }
    const tg_tape *tg = scan_grad ? ts : tf;   /* the tape whose gradient is used */
    {   /* central differences of the plain-C cost, on control coordinates */
        size_t cnt = fd_coords >= 0 ? (size_t)fd_coords : m <= 200 ? m : 64;
        if (cnt > m)
            cnt = m;
        double *gfd = xcalloc(cnt ? cnt : 1, sizeof *gfd), *gsub = xcalloc(cnt ? cnt : 1, sizeof *gsub);
        double *up = xcalloc(m, sizeof *up);
        for (size_t q = 0; q < cnt; q++) {
            size_t j = cnt == m ? q : q * (m - 1) / (cnt > 1 ? cnt - 1 : 1);
            double h = cbrt(2.2e-16) * fmax(1.0, fabs(u[j]));
            memcpy(up, u, m * sizeof *up);
            up[j] = u[j] + h;
            double fp = mpc_cost(&p, up);
            up[j] = u[j] - h;
            double fm = mpc_cost(&p, up);
            gfd[q] = (fp - fm) / (2.0 * h);
            gsub[q] = gs[j];
        }
        double scale = 0.0, d = 0.0;
        for (size_t q = 0; q < cnt; q++) {
            scale = fmax(scale, fabs(gsub[q]));
            d = fmax(d, fabs(gfd[q] - gsub[q]));
        }
        char what[96];
        snprintf(what, sizeof what, "tg_gradient (%s) vs central differences, %zu coords",
                 scan_grad ? "scan" : "flat", cnt);
        ok &= check(what, cnt ? d / fmax(scale, 1e-300) : 0.0, TOL_FD);
        free(gfd);
        free(gsub);
        free(up);
    }
    {   /* the scan's gradient tape (a forward scan + a reverse scan) */
        tg_tape *gt = tg_gradient_tape(ts, TG_ALL);
        tg_status st = gt ? tg_tape_status(gt) : TG_ERR_NOMEM;
        if (st == TG_OK)
            st = tg_eval(gt, x, gd);
        if (st == TG_OK) {
            printf("  gradient tape of the scan: %zu instructions (flat's: ", tg_tape_size(gt));
            tg_tape *gft = tg_gradient_tape(tf, TG_ALL);
            printf("%zu)\n", gft ? tg_tape_size(gft) : (size_t)0);
            tg_tape_free(gft);
            ok &= check(scan_grad ? "tg_eval(gradient tape of the scan) vs tg_gradient (scan)"
                                  : "tg_eval(gradient tape of the scan) vs tg_gradient (flat)",
                        relerr(gd, gs, n), TOL_LOOP_FLAT);
        } else {
            printf("  gradient tape of the scan: NOT AVAILABLE in this build (%s: %s)\n",
                   tg_status_str(st), gt ? tg_tape_error(gt) : "out of memory");
            missing++;
        }
        tg_tape_free(gt);
    }
    if (!ok)
        goto out2;

    /* ---- 3. projected gradient descent from u = 0 */
    {
        memset(u, 0, m * sizeof *u);
        ctx c = { &p, tg, x, gs, n, 0 };
        if (!scan_grad)
            printf("\n(solving with the flat tape's gradient: the scan's is not available)");
        double J0, J1;
        if (solve(&c, u, iters, quiet, &J0, &J1) != 0 || c.failed) {
            printf("mpc: FAILED: the cost did not decrease\n");
            ok = 0;
            goto out2;
        }
        mpc_pack(&p, u, x);
        double tfg = time_gradient(tf, x, gf);
        if (scan_grad) {
            double tsg = time_gradient(ts, x, gs);
            printf("tg_gradient per call: scan %.1f us, flat %.1f us (scan/flat %.2f)\n",
                   1e6 * tsg, 1e6 * tfg, tsg / tfg);
        } else {
            printf("tg_gradient per call: flat %.1f us (the scan's: not available)\n", 1e6 * tfg);
        }
        tg_gradient(tg, x, gs);
    }

    /* ---- 4. the gradient as a Rust kernel */
    if (rust_dir) {
        printf("\n");
        int rc = mpc_rust_check(ts, x, gs, n, rust_dir, TOL_RUST);
        if (rc == MPC_RUST_UNAVAILABLE) {
            missing++;
            printf("Rust: the gradient of the looped tape is NOT AVAILABLE as a Rust kernel in "
                   "this build; checking the flat (unrolled) tape's gradient kernel instead\n");
            rc = mpc_rust_check(tf, x, gs, n, rust_dir, TOL_RUST);
            if (rc == MPC_RUST_OK)
                printf("Rust: (flat fallback) agrees; the looped kernel is still missing\n");
        }
        if (rc == MPC_RUST_NO_CARGO) {
            rust_code = 77;
        } else if (rc != MPC_RUST_OK) {
            printf("mpc: FAILED: the Rust kernel\n");
            rust_code = 3;
        }
    }
out2:
    free(u);
    free(x);
    free(gs);
    free(gf);
    free(gd);
out:
    tg_tape_free(ts);
    tg_tape_free(tf);
    mpc_problem_free(&p);
    if (missing)
        printf("\nmpc: %d loop path%s NOT AVAILABLE in this build (see above)%s\n", missing,
               missing > 1 ? "s" : "", require_loops ? ": FAILED (--require-loops)" : "");
    if (missing && require_loops)
        ok = 0;
    printf("\nmpc: %s\n", !ok ? "FAILED" : rust_code == 3 ? "FAILED (Rust)" : "ok");
    return !ok ? 1 : rust_code;
}
