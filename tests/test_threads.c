/* tests/test_threads.c -- functions taking `const tg_tape *` are safe to call
 * concurrently: 8 threads on one tape (Rosenbrock n = 200 plus sin/exp
 * terms), each computing eval / gradient / Jacobian / JVP / VJP / HVP /
 * Hessian at the same and at different points many times, with the tape's
 * pooled workspaces and with a workspace of its own; every result is
 * bitwise identical to a single-threaded run.  Batches likewise. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include <criterion/criterion.h>

#include "testutil.h"

#define N 200
#define NR (2 * (N - 1) + N)  /* residuals: 2 per Rosenbrock term + N sin/exp terms */
#define NPT 4
#define NTHREADS 8
#define REPS 3

static tg_tape *F;  /* scalar: sum of squares of the residuals + coupling terms */
static tg_tape *R;  /* the residual vector */

static void record(void)
{
    F = tu_tape("rosen", 0);
    R = tu_tape("resid", 0);
    tg_var x[N], xr[N], r[NR], terms[NR];
    tg_input_vec(F, "x", N, x);
    tg_input_vec(R, "x", N, xr);
    for (size_t i = 0; i + 1 < N; i++) {
        /* 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 */
        tg_var a = tg_sub(x[i + 1], tg_mul(x[i], x[i]));
        tg_var b = tg_sub(1.0, x[i]);
        terms[2 * i] = tg_mul(100.0, tg_mul(a, a));
        terms[2 * i + 1] = tg_mul(b, b);
        r[2 * i] = tg_mul(10.0, tg_sub(xr[i + 1], tg_mul(xr[i], xr[i])));
        r[2 * i + 1] = tg_sub(1.0, xr[i]);
    }
    for (size_t i = 0; i < N; i++) {
        /* sin(x_i) * exp(-0.1 x_i^2) + 0.01 * cos(x_i x_{(i+7) mod N}) */
        tg_var s = tg_mul(tg_sin(x[i]), tg_exp(tg_mul(-0.1, tg_mul(x[i], x[i]))));
        terms[2 * (N - 1) + i] =
            tg_add(s, tg_mul(0.01, tg_cos(tg_mul(x[i], x[(i + 7) % N]))));
        r[2 * (N - 1) + i] = tg_mul(tg_sin(xr[i]), tg_exp(tg_mul(-0.1, tg_mul(xr[i], xr[i]))));
    }
    tg_output(F, "f", tg_sum(NR, terms));
    tg_output_vec(R, "r", NR, r);
    TU_TAPE_OK(F);
    TU_TAPE_OK(R);
}

typedef struct results {
    double y[1], g[N], jF[N], hv[N], H[N * N];
    double r[NR], JR[NR * N], jv[NR], wj[N];
} results;

static double pts[NPT][N], vdir[N], wdir[NR];
static results ref[NPT];

static void make_inputs(void)
{
    tu_rng rng = { 2024 };
    for (size_t p = 0; p < NPT; p++)
        for (size_t j = 0; j < N; j++)
            pts[p][j] = tu_rng_range(&rng, -1.5, 1.5);
    for (size_t j = 0; j < N; j++)
        vdir[j] = tu_rng_range(&rng, -1, 1);
    for (size_t i = 0; i < NR; i++)
        wdir[i] = tu_rng_range(&rng, -1, 1);
}

/* Computes everything at point p, with workspace w (NULL: plain calls).
 * Returns the number of calls that did not return TG_OK. */
static int compute(size_t p, tg_workspace *w, results *o)
{
    int bad = 0;
    const double *x = pts[p];
    if (w) {
        bad += tg_eval_ws(F, w, x, o->y) != TG_OK;
        bad += tg_gradient_ws(F, w, x, o->g) != TG_OK;
        bad += tg_jacobian_ws(F, w, x, o->jF) != TG_OK;
        bad += tg_hvp_ws(F, w, x, vdir, o->hv) != TG_OK;
        bad += tg_hessian_ws(F, w, x, o->H) != TG_OK;
        bad += tg_eval_ws(R, w, x, o->r) != TG_OK;
        bad += tg_jacobian_ws(R, w, x, o->JR) != TG_OK;
        bad += tg_jvp_ws(R, w, x, vdir, o->jv) != TG_OK;
        bad += tg_vjp_ws(R, w, x, wdir, o->wj) != TG_OK;
    } else {
        bad += tg_eval(F, x, o->y) != TG_OK;
        bad += tg_gradient(F, x, o->g) != TG_OK;
        bad += tg_jacobian(F, x, o->jF) != TG_OK;
        bad += tg_hvp(F, x, vdir, o->hv) != TG_OK;
        bad += tg_hessian(F, x, o->H) != TG_OK;
        bad += tg_eval(R, x, o->r) != TG_OK;
        bad += tg_jacobian(R, x, o->JR) != TG_OK;
        bad += tg_jvp(R, x, vdir, o->jv) != TG_OK;
        bad += tg_vjp(R, x, wdir, o->wj) != TG_OK;
    }
    return bad;
}

typedef struct job {
    int id;
    int use_ws;       /* 0: plain, 1: own workspace, 2: alternate */
    int same_point;   /* 1: always point 0; 0: rotate through the points */
    int errors;       /* calls that failed */
    int mismatches;   /* results that differ from the reference */
    char first[200];  /* first mismatch, for the message */
} job;

static void *worker(void *arg)
{
    job *jb = arg;
    results *o = malloc(sizeof *o);
    tg_workspace *w = jb->use_ws ? tg_workspace_new(jb->id & 1 ? F : NULL) : NULL;
    if (!o || (jb->use_ws && !w)) {
        jb->errors++;
        free(o);
        return NULL;
    }
    for (int rep = 0; rep < REPS; rep++) {
        for (size_t k = 0; k < NPT; k++) {
            size_t p = jb->same_point ? 0 : (k + (size_t)jb->id) % NPT;
            tg_workspace *use = jb->use_ws == 2 ? ((rep + k) & 1 ? w : NULL) : w;
            memset(o, 0, sizeof *o);
            jb->errors += compute(p, use, o);
            if (memcmp(o, &ref[p], sizeof *o) != 0) {
                if (jb->mismatches++ == 0) {
                    const double *a = (const double *)o, *b = (const double *)&ref[p];
                    size_t i = 0;
                    while (i < sizeof *o / sizeof(double) && tu_same_bits(a[i], b[i]))
                        i++;
                    snprintf(jb->first, sizeof jb->first,
                             "thread %d rep %d point %zu: double #%zu of the results = %.17g, "
                             "single-threaded %.17g",
                             jb->id, rep, p, i, a[i], b[i]);
                }
            }
        }
    }
    tg_workspace_free(w);
    free(o);
    return NULL;
}

static void run_threads(int use_ws, int same_point)
{
    record();
    make_inputs();
    for (size_t p = 0; p < NPT; p++)
        cr_assert_eq(compute(p, NULL, &ref[p]), 0, "single-threaded reference failed: %s",
                     tg_last_error());
    pthread_t th[NTHREADS];
    job jobs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i] = (job){ i, use_ws, same_point, 0, 0, "" };
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++) {
        cr_expect_eq(jobs[i].errors, 0, "thread %d: %d calls failed", i, jobs[i].errors);
        cr_expect_eq(jobs[i].mismatches, 0, "thread %d: %d results differ from the "
                     "single-threaded run; first: %s", i, jobs[i].mismatches, jobs[i].first);
    }
    /* the reference itself is sane: gradient matches a central difference
     * in one coordinate, Hessian symmetric */
    double fd = tu_cdiff_tape(F, pts[1], 0, 17);
    cr_expect(tu_close(ref[1].g[17], fd, 1e-6, 1e-6), "gradient[17] = %g, central difference %g",
              ref[1].g[17], fd);
    for (size_t i = 0; i < N; i += 13)
        for (size_t j = 0; j < N; j += 7)
            cr_expect(tu_close(ref[1].H[i * N + j], ref[1].H[j * N + i], 1e-10, 1e-12));
    tg_tape_free(F);
    tg_tape_free(R);
}

Test(threads, different_points_plain_calls, .timeout = 120) { run_threads(0, 0); }
Test(threads, same_point_plain_calls, .timeout = 120) { run_threads(0, 1); }
Test(threads, different_points_own_workspaces, .timeout = 120) { run_threads(1, 0); }
Test(threads, same_point_mixed_workspaces, .timeout = 120) { run_threads(2, 1); }

/* --------------------------------------------------------------- batches */

#define NB 97

typedef struct bjob {
    const double *X;
    double *Y, *G;
    int err;
} bjob;

static void *batch_worker(void *arg)
{
    bjob *b = arg;
    b->err += tg_eval_batch(F, NB, b->X, b->Y) != TG_OK;
    b->err += tg_gradient_batch(F, NB, b->X, b->G) != TG_OK;
    return NULL;
}

Test(threads, batches_bitwise_equal_to_single_calls, .timeout = 120)
{
    record();
    double *X = malloc(NB * N * sizeof *X), *Y1 = malloc(NB * sizeof *Y1),
           *G1 = malloc(NB * N * sizeof *G1);
    cr_assert(X && Y1 && G1);
    tu_rng rng = { 555 };
    for (size_t k = 0; k < NB * N; k++)
        X[k] = tu_rng_range(&rng, -2, 2);
    for (size_t p = 0; p < NB; p++) {
        TU_OK(tg_eval(F, X + p * N, Y1 + p));
        TU_OK(tg_gradient(F, X + p * N, G1 + p * N));
    }
    /* one batch call */
    double *Y = malloc(NB * sizeof *Y), *G = malloc(NB * N * sizeof *G);
    cr_assert(Y && G);
    TU_OK(tg_eval_batch(F, NB, X, Y));
    TU_OK(tg_gradient_batch(F, NB, X, G));
    cr_expect(memcmp(Y, Y1, NB * sizeof *Y) == 0, "tg_eval_batch differs from tg_eval");
    cr_expect(memcmp(G, G1, NB * N * sizeof *G) == 0,
              "tg_gradient_batch differs from tg_gradient");
    /* several batch calls at once from several threads */
    pthread_t th[4];
    bjob jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].X = X;
        jobs[i].Y = malloc(NB * sizeof *Y);
        jobs[i].G = malloc(NB * N * sizeof *G);
        jobs[i].err = 0;
        cr_assert(jobs[i].Y && jobs[i].G);
        cr_assert_eq(pthread_create(&th[i], NULL, batch_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(jobs[i].err, 0);
        cr_expect(memcmp(jobs[i].Y, Y1, NB * sizeof *Y) == 0,
                  "concurrent tg_eval_batch %d differs from tg_eval", i);
        cr_expect(memcmp(jobs[i].G, G1, NB * N * sizeof *G) == 0,
                  "concurrent tg_gradient_batch %d differs from tg_gradient", i);
        free(jobs[i].Y);
        free(jobs[i].G);
    }
    /* batch sizes around any internal blocking: 1..17 and the remainder */
    for (size_t np = 1; np <= 17; np++) {
        TU_OK(tg_eval_batch(F, np, X + 3 * N, Y));
        TU_OK(tg_gradient_batch(F, np, X + 3 * N, G));
        cr_expect(memcmp(Y, Y1 + 3, np * sizeof *Y) == 0, "tg_eval_batch npts=%zu differs", np);
        cr_expect(memcmp(G, G1 + 3 * N, np * N * sizeof *G) == 0,
                  "tg_gradient_batch npts=%zu differs", np);
    }
    free(X);
    free(Y1);
    free(G1);
    free(Y);
    free(G);
    tg_tape_free(F);
    tg_tape_free(R);
}

/* ------------------------------------------------- first calls on a tape */

/* The pool of workspaces is attached to a tape on its first plain call:
 * threads that make their first calls on a fresh tape at the same moment
 * race to attach it (src/tape/attach.c); exactly one attachment must win,
 * the others' be released, and every result be right. */
#define NRACE 40

static tg_tape *race_tape;
static atomic_int race_go;

typedef struct rjob {
    double x[N], g[N];
    int err;
} rjob;

static void *race_worker(void *arg)
{
    rjob *j = arg;
    while (!atomic_load(&race_go))
        ;
    j->err += tg_gradient(race_tape, j->x, j->g) != TG_OK;
    return NULL;
}

Test(threads, first_calls_race_to_attach_the_pool, .timeout = 120)
{
    record();
    make_inputs();
    rjob jobs[NTHREADS];
    double want[NTHREADS][N];
    tg_workspace *w = tg_workspace_new(NULL);
    cr_assert(w != NULL);
    for (int i = 0; i < NTHREADS; i++) {
        memcpy(jobs[i].x, pts[i % NPT], sizeof jobs[i].x);
        TU_OK(tg_gradient_ws(F, w, jobs[i].x, want[i]));   /* not through the pool */
    }
    tg_workspace_free(w);
    tg_tape_free(F);
    tg_tape_free(R);
    for (int rep = 0; rep < NRACE; rep++) {
        record();                   /* a fresh tape: no pool attached yet */
        race_tape = F;
        atomic_store(&race_go, 0);
        pthread_t th[NTHREADS];
        for (int i = 0; i < NTHREADS; i++) {
            jobs[i].err = 0;
            cr_assert_eq(pthread_create(&th[i], NULL, race_worker, &jobs[i]), 0);
        }
        atomic_store(&race_go, 1);
        for (int i = 0; i < NTHREADS; i++) {
            pthread_join(th[i], NULL);
            cr_expect_eq(jobs[i].err, 0, "rep %d thread %d failed", rep, i);
            cr_expect(memcmp(jobs[i].g, want[i], sizeof want[i]) == 0,
                      "rep %d thread %d: gradient differs from tg_gradient_ws", rep, i);
        }
        tg_tape_free(F);
        tg_tape_free(R);
    }
}
