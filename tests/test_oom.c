/* tests/test_oom.c -- out of memory everywhere.
 *
 * Every library allocation goes through mem_malloc & co. (src/tape/alloc.h);
 * mem_fail_after(k) lets k more succeed and fails every one after.
 * For each operation below the test first counts its allocations (the
 * hook's counter, read before and after an unarmed run), then runs it once
 * for every k in 0..count-1, so that the (k+1)-th allocation and all later
 * ones fail.  Each run must return TG_ERR_NOMEM (or put its tape in the
 * sticky TG_ERR_NOMEM state, or return NULL where tapegen.h documents it),
 * or succeed with the right result where a failure is recoverable; never
 * crash; leak nothing (LeakSanitizer in the ASan build); leave the outputs
 * untouched on error and everything made before intact (a tape recorded
 * before a failing optimisation still evaluates to the same bits).
 *
 * Each test logs "oom: <case>: <count> k values (<nomem> TG_ERR_NOMEM)";
 * run `test_oom --verbose` to see them. */
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tape/alloc.h"
#include "testutil.h"
#include "userfn.h"

#define N 4             /* inputs of f: x[3], p */
#define NPTS 16         /* batch points */

static const double X0[N] = { 0.7, -0.4, 1.3, 0.55 };

/* f: scalar; g: 3 outputs in two blocks.  Every family of ops. */
static void
record_body(tg_tape *t, int vector)
{
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_var p = tg_input(t, "p");
    tg_var a = tg_add(tg_mul(x[0], tg_sin(x[1])), tg_exp(tg_mul(-0.5, x[2])));
    tg_var b = tg_div(tg_pow(x[1], 3.0), tg_add(1.0, tg_mul(p, p)));
    tg_var c = tg_select(tg_lt(x[0], x[1]), tg_atan2(x[0], p), tg_hypot(x[2], p));
    tg_var d = tg_mul(tg_tanh(a), tg_sqrt(tg_add(tg_mul(b, b), 1.0)));
    tg_var e = tg_add(tg_norm2(3, x), tg_div(tg_log1p(tg_abs(c)), 4.0));
    if (vector) {
        tg_var y[2] = { d, tg_sub(e, a) };
        tg_output_vec(t, "y", 2, y);
        tg_output(t, "z", tg_mul(tg_neg(b), tg_neg(c)));
    } else {
        tg_output(t, "f", tg_add(tg_add(d, e), tg_mul(tg_cos(b), c)));
    }
}

static tg_tape *
record(int vector)
{
    tg_tape *t = tg_tape_new(vector ? "g" : "f");
    cr_assert(t != NULL);
    record_body(t, vector);
    TU_TAPE_OK(t);
    return t;
}

/* ------------------------------------------------------------ the sweep */

/* The state of one run: made by prepare (unarmed), used by run (armed),
 * checked by check (unarmed), freed by release. */
typedef struct st {
    int kind;                       /* the variant of the case */
    long k;                         /* allocations allowed before failing; -1 unarmed */
    tg_tape *f, *out;
    tg_workspace *w;
    tg_funcs *fs;                   /* user functions (the userfn cases) */
    char *before, *src;
    char path[128];
    double y[4096], ref[4096];
    size_t ny;
} st;

typedef struct oom_case {
    const char *name;
    void (*prepare)(st *);
    tg_status (*run)(st *);
    void (*check)(st *, tg_status);
} oom_case;

static void
release(st *s)
{
    tg_tape_free(s->f);
    tg_tape_free(s->out);
    tg_workspace_free(s->w);
    tg_funcs_free(s->fs);
    free(s->before);
    free(s->src);
    if (s->path[0])
        unlink(s->path);
    memset(s, 0, sizeof *s);
}

static tg_status
one_run(const oom_case *c, st *s, int kind, long k)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->k = k;
    if (c->prepare)
        c->prepare(s);
    mem_fail_after(k);
    tg_status r = c->run(s);
    long made = mem_fail_after(-1);
    (void)made;
    return r;
}

/* Counts the allocations of case c (variant kind), then fails each one in
 * turn.  Returns the number of k values swept. */
static long
sweep(const oom_case *c, int kind)
{
    st *s = calloc(1, sizeof *s);
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->k = -1;
    if (c->prepare)
        c->prepare(s);
    mem_fail_after(-1);               /* resets the counter */
    tg_status r = c->run(s);
    long count = mem_fail_after(-1);
    cr_assert_eq(r, TG_OK, "%s/%d: unarmed run failed: %s", c->name, kind, tg_last_error());
    c->check(s, r);
    release(s);
    cr_assert_gt(count, 0, "%s/%d allocates nothing", c->name, kind);

    long nomem = 0;
    for (long k = 0; k < count; k++) {
        r = one_run(c, s, kind, k);
        cr_assert(r == TG_OK || r == TG_ERR_NOMEM, "%s/%d, allocation %ld of %ld failing: status %s (%s)",
                  c->name, kind, k + 1, count, tg_status_str(r), tg_last_error());
        nomem += r == TG_ERR_NOMEM;
        c->check(s, r);
        release(s);
    }
    cr_log_info("oom: %s/%d: %ld k values (%ld TG_ERR_NOMEM)\n", c->name, kind, count, nomem);
    cr_assert_gt(nomem, 0, "%s/%d: no allocation failure was reported", c->name, kind);
    free(s);
    return count;
}

static long
sweep_kinds(const oom_case *c, int nkinds)
{
    long total = 0;
    for (int kind = 0; kind < nkinds; kind++)
        total += sweep(c, kind);
    cr_log_info("oom: %s: %ld k values in all\n", c->name, total);
    return total;
}

/* Reference values of f or g at X0, computed unarmed. */
static void
reference(const tg_tape *t, double *y)
{
    TU_OK(tg_eval(t, X0, y));
}

static void
assert_values(const tg_tape *t, const double *want, const char *what)
{
    size_t m = tg_num_outputs(t);
    double *y = calloc(m + 1, sizeof *y);
    TU_OK(tg_eval(t, X0, y));
    for (size_t i = 0; i < m; i++)
        cr_assert(tu_same_bits(y[i], want[i]), "%s: output %zu changed: %s vs %s", what, i,
                  tu_d(y[i]).s, tu_d(want[i]).s);
    free(y);
}

/* ------------------------------------------------------------ recording */

static tg_status
run_record(st *s)
{
    s->out = tg_tape_new_ex("rec", s->kind == 2 ? TG_NO_CSE : 0);
    if (!s->out)
        return TG_ERR_NOMEM;                /* documented: NULL only when out of memory */
    record_body(s->out, s->kind == 1);
    return tg_tape_status(s->out);
}

static void
check_record(st *s, tg_status r)
{
    if (r == TG_OK) {
        tg_tape *want = record(s->kind == 1);
        double y[8];
        reference(want, y);
        assert_values(s->out, y, "recorded tape");
        tg_tape_free(want);
    } else if (s->out) {
        cr_assert_eq(tg_tape_status(s->out), TG_ERR_NOMEM, "sticky status");
        cr_assert(strlen(tg_tape_error(s->out)) > 0, "no message");
        double y[8];
        cr_assert_eq(tg_eval(s->out, X0, y), TG_ERR_NOMEM, "a failed tape evaluates");
    }
}

static const oom_case c_record = { "record", NULL, run_record, check_record };

Test(oom, recording)
{
    sweep_kinds(&c_record, 3);
}

/* ------------------------------------------------------ derivative tapes */

static void
prepare_f(st *s)
{
    s->f = record(s->kind >= 6);
    reference(s->f, s->ref);
}

/* kinds 0..5 on scalar f: grad, hess, hvp, jvp, vjp, joint(F|GRAD|HESS|HVP);
 * 6..8 on vector g: jac, jac wrt block 0, joint(F|JAC). */
static tg_tape *
derive(const tg_tape *f, int kind)
{
    switch (kind) {
    case 0: return tg_gradient_tape(f, TG_ALL);
    case 1: return tg_hessian_tape(f, TG_ALL);
    case 2: return tg_hvp_tape(f, TG_ALL);
    case 3: return tg_jvp_tape(f, 0);
    case 4: return tg_vjp_tape(f, TG_ALL);
    case 5: return tg_joint_tape(f, TG_F | TG_GRAD | TG_HESS | TG_HVP, TG_ALL);
    case 6: return tg_jacobian_tape(f, TG_ALL);
    case 7: return tg_jacobian_tape(f, 0);
    default: return tg_joint_tape(f, TG_F | TG_JAC, 1);
    }
}

static tg_status
run_derive(st *s)
{
    s->out = derive(s->f, s->kind);
    return s->out ? tg_tape_status(s->out) : TG_ERR_NOMEM;
}

static void
check_derive(st *s, tg_status r)
{
    assert_values(s->f, s->ref, "f after a derivative tape");
    if (r == TG_OK) {
        tg_tape *want = derive(s->f, s->kind);
        TU_TAPE_OK(want);
        char *a = tg_tape_disasm(want), *b = tg_tape_disasm(s->out);
        cr_assert(a && b && strcmp(a, b) == 0, "kind %d: derivative tape differs", s->kind);
        free(a);
        free(b);
        tg_tape_free(want);
    } else if (s->out) {
        cr_assert_eq(tg_tape_status(s->out), TG_ERR_NOMEM);
    }
}

static const oom_case c_derive = { "derivative_tape", prepare_f, run_derive, check_derive };

Test(oom, derivative_tapes, .timeout = 600)
{
    sweep_kinds(&c_derive, 9);
}

/* ------------------------------------------------------------ optimise */

/* The Hessian tape of f (plenty to optimise), at each level. */
static void
prepare_opt(st *s)
{
    tg_tape *f = record(0);
    s->f = tg_hessian_tape(f, TG_ALL);
    tg_tape_free(f);
    TU_TAPE_OK(s->f);
    reference(s->f, s->ref);
    s->before = tg_tape_disasm(s->f);
    cr_assert(s->before != NULL);
}

static tg_status
run_opt(st *s)
{
    return tg_tape_optimize(s->f, (tg_opt_level)s->kind);
}

/* tapegen.h: "On error (out of memory) t is unchanged" -- the same
 * instructions, not only the same values. */
static void
check_opt(st *s, tg_status r)
{
    /* Exact rewrites: the same bits either way. */
    assert_values(s->f, s->ref, "the tape after tg_tape_optimize");
    if (r != TG_OK) {
        cr_assert_eq(tg_tape_status(s->f), TG_OK, "a failed optimisation left the tape in error");
        char *now = tg_tape_disasm(s->f);
        cr_assert(now != NULL);
        if (strcmp(now, s->before) != 0)
            tu_show_diff(now, s->before);
        cr_assert(strcmp(now, s->before) == 0,
                  "level %d, allocation %ld failing: a failed optimisation changed the tape",
                  s->kind, s->k + 1);
        free(now);
    }
}

static const oom_case c_opt = { "optimize", prepare_opt, run_opt, check_opt };

Test(oom, optimize, .timeout = 600)
{
    sweep_kinds(&c_opt, 5);
}

/* ------------------------------------------------------------ evaluation */

/* kinds: 0 eval, 1 gradient, 2 hessian, 3 jacobian, 4 hvp (pool);
 * 5..9 the same with a workspace made armed; 10 eval_batch, 11
 * gradient_batch (pool, OpenMP when built with it). */
static size_t
eval_len(int kind)
{
    switch (kind % 5) {
    case 0: return 1;
    case 1: return N;
    case 2: return N * N;
    case 3: return N;
    default: return N;
    }
}

static void
prepare_eval(st *s)
{
    s->f = record(0);
    s->ny = s->kind >= 10 ? (s->kind == 10 ? NPTS : NPTS * N) : eval_len(s->kind);
    for (size_t i = 0; i < s->ny; i++)
        s->y[i] = s->ref[i] = -12345.0;         /* sentinels: untouched on error */
}

static tg_status
numeric(const tg_tape *t, tg_workspace *w, int kind, const double *x, double *y)
{
    static const double v[N] = { 0.3, -1.0, 0.25, 2.0 };
    switch (kind % 5) {
    case 0: return w ? tg_eval_ws(t, w, x, y) : tg_eval(t, x, y);
    case 1: return w ? tg_gradient_ws(t, w, x, y) : tg_gradient(t, x, y);
    case 2: return w ? tg_hessian_ws(t, w, x, y) : tg_hessian(t, x, y);
    case 3: return w ? tg_jacobian_ws(t, w, x, y) : tg_jacobian(t, x, y);
    default: return w ? tg_hvp_ws(t, w, x, v, y) : tg_hvp(t, x, v, y);
    }
}

static void
batch_points(double *X)
{
    for (size_t p = 0; p < NPTS; p++)
        for (size_t j = 0; j < N; j++)
            X[p * N + j] = X0[j] + 0.01 * (double)p;
}

static tg_status
run_eval(st *s)
{
    if (s->kind >= 10) {
        double X[NPTS * N];
        batch_points(X);
        return s->kind == 10 ? tg_eval_batch(s->f, NPTS, X, s->y)
                             : tg_gradient_batch(s->f, NPTS, X, s->y);
    }
    if (s->kind >= 5) {
        s->w = tg_workspace_new(s->kind == 5 ? NULL : s->f);
        if (!s->w)
            return TG_ERR_NOMEM;            /* documented: NULL when out of memory */
    }
    return numeric(s->f, s->w, s->kind, X0, s->y);
}

static void
check_eval(st *s, tg_status r)
{
    double want[NPTS * N];
    if (s->kind >= 10) {
        double X[NPTS * N];
        batch_points(X);
        TU_OK(s->kind == 10 ? tg_eval_batch(s->f, NPTS, X, want) : tg_gradient_batch(s->f, NPTS, X, want));
    } else {
        TU_OK(numeric(s->f, NULL, s->kind, X0, want));    /* the pool still works */
    }
    for (size_t i = 0; i < s->ny; i++) {
        double expect = r == TG_OK ? want[i] : s->ref[i];
        cr_assert(tu_same_bits(s->y[i], expect), "kind %d, %s: y[%zu] = %s, expected %s", s->kind,
                  r == TG_OK ? "success" : "failure (outputs must be untouched)", i,
                  tu_d(s->y[i]).s, tu_d(expect).s);
    }
}

static const oom_case c_eval = { "evaluate", prepare_eval, run_eval, check_eval };

Test(oom, evaluation, .timeout = 600)
{
    sweep_kinds(&c_eval, 12);
}

/* ------------------------------------------------- recording at a point */

/* The same family of ops recorded at X0 with values, an if on a value and
 * a loop whose trip count depends on values (branch guards). */
static void
record_at_body(tg_tape *t)
{
    tg_var x[3];
    tg_input_vec_at(t, "x", 3, X0, x);
    tg_var p = tg_input_at(t, "p", X0[3]);
    tg_var a = tg_add(tg_mul(x[0], tg_sin(x[1])), tg_exp(tg_mul(-0.5, x[2])));
    tg_var b = tg_branch(tg_lt(x[0], x[1])) ? tg_atan2(x[0], p) : tg_hypot(x[2], p);
    tg_var c = a;
    while (tg_branch(tg_gt(c, 0.1)))
        c = tg_mul(c, tg_add(0.5, tg_mul(0.01, b)));
    tg_output(t, "f", tg_add(tg_mul(c, b), tg_sqrt(tg_add(tg_mul(a, a), 1.0))));
}

static tg_tape *
record_at(void)
{
    tg_tape *t = tg_tape_new("at");
    cr_assert(t != NULL);
    record_at_body(t);
    TU_TAPE_OK(t);
    return t;
}

static tg_status
run_record_at(st *s)
{
    s->out = tg_tape_new_ex("at", s->kind == 1 ? TG_NO_CSE : 0);
    if (!s->out)
        return TG_ERR_NOMEM;
    record_at_body(s->out);
    return tg_tape_status(s->out);
}

static void
check_record_at(st *s, tg_status r)
{
    if (r == TG_OK) {
        tg_tape *want = record_at();
        double y[1];
        reference(want, y);
        assert_values(s->out, y, "tape recorded at a point");
        cr_assert_eq(tg_num_guards(s->out), tg_num_guards(want));
        cr_assert(tu_same_bits(tg_value((tg_var){ s->out, tg_output_ref(s->out, 0) }), y[0]),
                  "the value while recording is tg_eval's");
        tg_tape_free(want);
    } else if (s->out) {
        cr_assert_eq(tg_tape_status(s->out), TG_ERR_NOMEM, "sticky status");
        double y[1];
        cr_assert_eq(tg_eval(s->out, X0, y), TG_ERR_NOMEM, "a failed tape evaluates");
    }
}

static const oom_case c_record_at = { "record_at", NULL, run_record_at, check_record_at };

Test(oom, recording_at_a_point)
{
    sweep_kinds(&c_record_at, 2);
}

/* Guarded evaluation: points on both sides of the recorded branch.  The
 * expected TG_ERR_BRANCH counts as success (run returns TG_OK for it). */
static void
guard_points(double *X)
{
    for (size_t p = 0; p < NPTS; p++)
        for (size_t j = 0; j < N; j++)
            X[p * N + j] = X0[j] - (j == 0 ? 0.25 * (double)p : 0.0);   /* x0 < x1 flips */
}

static void
prepare_guard(st *s)
{
    s->f = record_at();
    s->ny = s->kind == 1 ? NPTS * N : s->kind == 0 ? NPTS : s->kind == 2 ? N : N * N;
    for (size_t i = 0; i < s->ny; i++)
        s->y[i] = s->ref[i] = -12345.0;
}

static tg_status
guard_call(const tg_tape *f, int kind, double *y, tg_status *stp)
{
    double X[NPTS * N];
    guard_points(X);
    const double *far = X + (NPTS - 1) * N;     /* the other branch */
    switch (kind) {
    case 0: return tg_eval_batch_status(f, NPTS, X, y, stp);
    case 1: return tg_gradient_batch_status(f, NPTS, X, y, stp);
    case 2: return tg_gradient(f, far, y);
    default: return tg_hessian(f, far, y);
    }
}

static tg_status
run_guard(st *s)
{
    tg_status stp[NPTS];
    tg_status r = guard_call(s->f, s->kind, s->y, stp);
    return r == TG_ERR_BRANCH ? TG_OK : r == TG_OK ? TG_ERR_ARG : r;
}

static void
check_guard(st *s, tg_status r)
{
    double want[NPTS * N];
    for (size_t i = 0; i < s->ny; i++)
        want[i] = -12345.0;
    tg_status stp[NPTS];
    cr_assert_eq(guard_call(s->f, s->kind, want, stp), TG_ERR_BRANCH);
    for (size_t i = 0; i < s->ny; i++) {
        double expect = r == TG_OK ? want[i] : s->ref[i];
        cr_assert(tu_same_bits(s->y[i], expect), "kind %d, %s: y[%zu] = %s, expected %s", s->kind,
                  r == TG_OK ? "success" : "failure", i, tu_d(s->y[i]).s, tu_d(expect).s);
    }
}

static const oom_case c_guard = { "guarded_evaluation", prepare_guard, run_guard, check_guard };

Test(oom, guarded_evaluation, .timeout = 600)
{
    sweep_kinds(&c_guard, 4);
}

/* ------------------------------------------------------------ files */

static void
prepare_file(st *s)
{
    s->f = record(s->kind == 1);
    reference(s->f, s->ref);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->path, sizeof s->path, "%s/tg-test-oom-%ld.tape", base, (long)getpid());
    unlink(s->path);
    if (s->kind >= 2) {                     /* load: the file exists */
        TU_OK(tg_tape_save(s->f, s->path));
        s->before = tg_tape_disasm(s->f);
    }
}

/* kinds 0, 1: save f, g; 2, 3: load them. */
static tg_status
run_file(st *s)
{
    if (s->kind < 2)
        return tg_tape_save(s->f, s->path);
    s->out = tg_tape_load(s->path);
    return s->out ? tg_tape_status(s->out) : TG_ERR_NOMEM;
}

static void
check_file(st *s, tg_status r)
{
    assert_values(s->f, s->ref, "the tape after a save or load");
    struct stat sb;
    if (s->kind < 2 && r != TG_OK)
        cr_assert(stat(s->path, &sb) != 0, "a failed save left a file behind");
    if (s->kind < 2 && r == TG_OK) {
        tg_tape *u = tg_tape_load(s->path);
        TU_TAPE_OK(u);
        assert_values(u, s->ref, "the saved tape");
        tg_tape_free(u);
    }
    if (s->kind >= 2 && r == TG_OK) {
        char *now = tg_tape_disasm(s->out);
        cr_assert(now && strcmp(now, s->before) == 0, "the loaded tape differs");
        free(now);
    } else if (s->kind >= 2 && s->out) {
        cr_assert_eq(tg_tape_status(s->out), TG_ERR_NOMEM, "load: %s", tg_tape_error(s->out));
    }
}

static const oom_case c_file = { "save_load", prepare_file, run_file, check_file };

Test(oom, save_and_load)
{
    sweep_kinds(&c_file, 4);
}

/* ------------------------------------------------------- text and Rust */

/* kinds: 0 disasm, 1 Rust f64, 2 Rust f32 no_std (vector tape), 3 Rust of
 * the Hessian tape. */
static void
prepare_text(st *s)
{
    tg_tape *f = record(s->kind == 2);
    if (s->kind == 3) {
        s->f = tg_hessian_tape(f, TG_ALL);
        tg_tape_free(f);
        TU_TAPE_OK(s->f);
    } else {
        s->f = f;
    }
}

static tg_status
text(const tg_tape *t, int kind, char **out, size_t *work)
{
    if (kind == 0) {
        *out = tg_tape_disasm(t);
        return *out ? TG_OK : TG_ERR_NOMEM;     /* documented: NULL when out of memory */
    }
    tg_rust_options o = { NULL, NULL, kind == 2, kind == 2 };
    return tg_rust_source(t, &o, out, work);
}

static tg_status
run_text(st *s)
{
    size_t work = 0;
    return text(s->f, s->kind, &s->src, &work);
}

static void
check_text(st *s, tg_status r)
{
    if (r != TG_OK) {
        cr_assert(s->src == NULL, "kind %d: output set on failure", s->kind);
        return;
    }
    char *want = NULL;
    size_t work = 0;
    TU_OK(text(s->f, s->kind, &want, &work));
    cr_assert(want && s->src && strcmp(want, s->src) == 0, "kind %d: the text differs", s->kind);
    free(want);
}

static const oom_case c_text = { "disasm_rust", prepare_text, run_text, check_text };

Test(oom, disassembly_and_rust_source, .timeout = 600)
{
    sweep_kinds(&c_text, 4);
}

/* ------------------------------------------------------------ crates */

/* kinds: 0 tg_rust_crate; 1 a builder with two kernels; 2 tg_rust_bundle. */
static void
prepare_crate(st *s)
{
    s->f = record(0);
    s->out = record(1);
    reference(s->f, s->ref);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->path, sizeof s->path, "%s/tg-test-oom-crate-XXXXXX", base);
    cr_assert(mkdtemp(s->path) != NULL);
}

static tg_status
run_crate(st *s)
{
    if (s->kind == 0)
        return tg_rust_crate(s->f, NULL, s->path);
    tg_rust_builder *b = tg_rust_builder_new(NULL);
    if (!b)
        return TG_ERR_NOMEM;                /* documented: NULL when out of memory */
    tg_status r = s->kind == 1 ? tg_rust_builder_add(b, s->f, NULL) : tg_rust_bundle(b, s->f);
    if (r == TG_OK && s->kind == 1)
        r = tg_rust_builder_add(b, s->out, NULL);
    if (r == TG_OK)
        r = tg_rust_builder_write(b, s->path);
    tg_rust_builder_free(b);
    return r;
}

static void
remove_crate(const char *dir)
{
    static const char *const files[] = { "Cargo.toml", "README.md", "src/lib.rs",
                                         "tests/kernels.rs", "src", "tests" };
    char p[256];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

static void
check_crate(st *s, tg_status r)
{
    char lib[256];
    snprintf(lib, sizeof lib, "%s/src/lib.rs", s->path);
    struct stat sb;
    if (r == TG_OK)
        cr_assert(stat(lib, &sb) == 0 && sb.st_size > 0, "no lib.rs after success");
    assert_values(s->f, s->ref, "f after writing a crate");
    remove_crate(s->path);
    s->path[0] = '\0';
}

static const oom_case c_crate = { "rust_crate", prepare_crate, run_crate, check_crate };

Test(oom, rust_crates, .timeout = 600)
{
    sweep_kinds(&c_crate, 3);
}

/* ------------------------------------------------------- user functions */

/* rot (tests/userfn.h) defined without asserting (the define may fail). */
static tg_status
define_rot(tg_funcs *fs)
{
    tg_func_def d = { .name = "rot", .n = 2, .k = 2, .eval = ufn_rot_eval, .jvp = ufn_rot_jvp,
                      .vjp = ufn_rot_vjp, .hvp = ufn_rot_hvp, .vjp_func = "rot_vjp" };
    tg_func_def v = { .name = "rot_vjp", .n = 4, .k = 2, .eval = ufn_rotvjp_eval,
                      .jvp = ufn_rotvjp_jvp, .vjp = ufn_rotvjp_vjp };
    tg_status r = tg_func_define(fs, &d);
    return r != TG_OK ? r : tg_func_define(fs, &v);
}

/* f recorded with two calls of rot: (y0, y1) = rot(x0 x1, x2), f = y0 y1 + p. */
static void
record_calls(tg_tape *t, const tg_funcs *fs)
{
    tg_var x[3], y[2], z[2];
    tg_input_vec(t, "x", 3, x);
    tg_var p = tg_input(t, "p");
    tg_var a[2] = { tg_mul(x[0], x[1]), x[2] };
    tg_call_func(t, fs, "rot", a, y);
    tg_call_func(t, fs, "rot", y, z);
    tg_output(t, "f", tg_add(tg_mul(z[0], z[1]), p));
}

static void
prepare_uf(st *s)
{
    if (s->kind == 0)
        return;                 /* everything is made armed */
    s->fs = tg_funcs_new();
    cr_assert(s->fs && define_rot(s->fs) == TG_OK);
    s->f = tg_tape_new("uf");
    record_calls(s->f, s->fs);
    TU_TAPE_OK(s->f);
    reference(s->f, s->ref);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->path, sizeof s->path, "%s/tg-test-oom-uf-%ld.tape", base, (long)getpid());
    unlink(s->path);
    if (s->kind == 3) {
        TU_OK(tg_tape_save(s->f, s->path));
        s->before = tg_tape_disasm(s->f);
    }
}

/* kinds: 0 the object, its definitions and a recording; 1 the gradient
 * tape (CALLs of rot_vjp); 2 save; 3 load with the object; 4 gradient and
 * Hessian (the numeric callbacks); 5 the C source. */
static tg_status
run_uf(st *s)
{
    tg_status r;
    double g[N * N];
    switch (s->kind) {
    case 0:
        s->fs = tg_funcs_new();
        if (!s->fs)
            return TG_ERR_NOMEM;
        if ((r = define_rot(s->fs)) != TG_OK)
            return r;
        s->out = tg_tape_new("uf");
        if (!s->out)
            return TG_ERR_NOMEM;
        record_calls(s->out, s->fs);
        return tg_tape_status(s->out);
    case 1:
        s->out = tg_gradient_tape(s->f, TG_ALL);
        return s->out ? tg_tape_status(s->out) : TG_ERR_NOMEM;
    case 2:
        return tg_tape_save(s->f, s->path);
    case 3:
        s->out = tg_tape_load_funcs(s->path, s->fs);
        return s->out ? tg_tape_status(s->out) : TG_ERR_NOMEM;
    case 4:
        if ((r = tg_gradient(s->f, X0, g)) != TG_OK)
            return r;
        r = tg_hessian(s->f, X0, g);
        if (r == TG_OK)
            memcpy(s->y, g, sizeof g);
        return r;
    default:
        return tg_c_source(s->f, NULL, &s->src, NULL);
    }
}

static void
check_uf(st *s, tg_status r)
{
    if (s->kind != 0)
        assert_values(s->f, s->ref, "the tape with calls");
    if (r != TG_OK) {
        if (s->out)
            cr_assert_eq(tg_tape_status(s->out), TG_ERR_NOMEM, "kind %d: %s", s->kind,
                         tg_tape_error(s->out));
        return;
    }
    if (s->kind == 0) {         /* the recording computes what an unarmed one does */
        tg_funcs *fs = tg_funcs_new();
        cr_assert(fs && define_rot(fs) == TG_OK);
        tg_tape *want = tg_tape_new("uf");
        record_calls(want, fs);
        double y[1];
        reference(want, y);
        assert_values(s->out, y, "recorded with calls");
        tg_tape_free(want);
        tg_funcs_free(fs);
    } else if (s->kind == 1) {
        double g[N], h[N];
        TU_OK(tg_eval(s->out, X0, g));
        TU_OK(tg_gradient(s->f, X0, h));
        for (int j = 0; j < N; j++)
            cr_assert(tu_close(g[j], h[j], 1e-12, 1e-15), "gradient tape [%d]", j);
    } else if (s->kind == 3) {
        char *now = tg_tape_disasm(s->out);
        cr_assert(now && strcmp(now, s->before) == 0, "the loaded tape differs");
        free(now);
    } else if (s->kind == 4) {
        double h[N * N];
        TU_OK(tg_hessian(s->f, X0, h));
        for (int j = 0; j < N * N; j++)
            cr_assert(tu_same_bits(h[j], s->y[j]), "hessian [%d]", j);
    } else if (s->kind == 5) {
        cr_assert(s->src && strstr(s->src, "void rot(const double *x, double *y);"));
    }
}

static const oom_case c_uf = { "user_functions", prepare_uf, run_uf, check_uf };

Test(oom, user_functions, .timeout = 600)
{
    sweep_kinds(&c_uf, 6);
}

/* ------------------------------------------------ loops kept in the tape */

#define NL 10           /* inputs of the looped tape: xs[9], p */
static const double XL[NL] = { 0.7, -0.4, 1.3, 0.55, 0.1, -2.0, 0.3, 0.9, -0.6, 0.25 };

/* A map of f (record_body: blocks x[3], p -> f) over 3 rows, and a scan
 * over its results with a body recorded here. */
static tg_tape *
looped(const tg_tape *f)
{
    tg_tape *t = tg_tape_new("loops");
    tg_tape *s = tg_tape_new("step");
    if (!t || !s) {
        tg_tape_free(t);
        tg_tape_free(s);
        return NULL;
    }
    tg_var c = tg_input(s, "c"), x = tg_input(s, "x");
    tg_input_vec(s, "p", 0, NULL);
    tg_output(s, "cn", tg_add(tg_mul(c, x), tg_sin(c)));
    tg_output_vec(s, "y", 0, NULL);
    tg_var xs[9], p, ys[3], cout;
    tg_input_vec(t, "xs", 9, xs);
    p = tg_input(t, "p");
    tg_map(t, f, 3, xs, &p, ys);
    tg_scan(t, s, 3, &p, ys, NULL, &cout, NULL);
    tg_output_vec(t, "ys", 3, ys);
    tg_output(t, "c", cout);
    if (tg_tape_status(s) != TG_OK && tg_tape_status(t) == TG_OK)   /* the body failed first */
        tg_map(t, s, 1, NULL, NULL, NULL);          /* puts t in the body's error state */
    tg_tape_free(s);
    return t;
}

static void
loop_values(const tg_tape *t, double *y)
{
    TU_OK(tg_eval(t, XL, y));
}

/* kinds: 0 record, 1 eval, 2 eval_batch, 3 optimize, 4 save, 5 load, 6 tg_call. */
static void
prepare_loops(st *s)
{
    tg_tape *f = record(0), *t = looped(f);
    TU_TAPE_OK(t);
    s->f = t;
    s->out = s->kind == 0 || s->kind == 6 ? f : NULL;
    /* the reference from a twin, so that s->f has no pooled workspace yet */
    tg_tape *twin = looped(f);
    loop_values(twin, s->ref);
    tg_tape_free(twin);
    if (!s->out)
        tg_tape_free(f);
    s->before = tg_tape_disasm(t);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->path, sizeof s->path, "%s/tg-test-oom-loops-%ld.tape", base, (long)getpid());
    unlink(s->path);
    if (s->kind == 5)
        TU_OK(tg_tape_save(t, s->path));
}

static tg_status
run_loops(st *s)
{
    tg_tape *u = NULL;
    tg_status r = TG_OK;
    switch (s->kind) {
    case 0:                                     /* record with the body s->out */
        u = looped(s->out);
        r = u ? tg_tape_status(u) : TG_ERR_NOMEM;
        break;
    case 1:                                     /* a fresh workspace: its allocation fails too */
        s->w = tg_workspace_new(s->f);
        return s->w ? tg_eval_ws(s->f, s->w, XL, s->y) : TG_ERR_NOMEM;
    case 2: {
        double X[3 * NL], Y[3 * 4];
        for (int p = 0; p < 3; p++)
            memcpy(X + p * NL, XL, sizeof XL);
        r = tg_eval_batch(s->f, 3, X, Y);
        if (r == TG_OK)
            memcpy(s->y, Y + 8, 4 * sizeof *Y);
        return r;
    }
    case 3:
        return tg_tape_optimize(s->f, TG_OPT_MAX);
    case 4:
        return tg_tape_save(s->f, s->path);
    case 5:
        u = tg_tape_load(s->path);
        r = u ? tg_tape_status(u) : TG_ERR_NOMEM;
        break;
    default: {
        u = tg_tape_new("caller");
        if (!u)
            return TG_ERR_NOMEM;
        tg_var in[NL], out[4];
        tg_input_vec(u, "in", NL, in);
        tg_call(u, s->f, in, out);
        tg_output_vec(u, "out", 4, out);
        r = tg_tape_status(u);
        break;
    }
    }
    if (u && s->kind != 0 && s->kind != 6) {
        tg_tape_free(s->out);
        s->out = u;
    } else if (u) {
        tg_tape_free(s->out);       /* the body f is not needed any more */
        s->out = u;
    }
    return r;
}

static void
check_loops(st *s, tg_status r)
{
    char *now = tg_tape_disasm(s->f);
    cr_assert(now != NULL);
    cr_assert(s->kind == 3 || strcmp(now, s->before) == 0, "kind %d: the looped tape changed",
              s->kind);
    free(now);
    double y[4];
    loop_values(s->f, y);
    for (int j = 0; j < 4; j++)
        cr_assert(tu_same_bits(y[j], s->ref[j]), "kind %d: output %d changed", s->kind, j);
    if (r == TG_OK && (s->kind == 1 || s->kind == 2))
        for (int j = 0; j < 4; j++)
            cr_assert(tu_same_bits(s->y[j], s->ref[j]), "kind %d: output %d", s->kind, j);
    if (r == TG_OK && (s->kind == 0 || s->kind == 5 || s->kind == 6)) {
        loop_values(s->out, y);
        for (int j = 0; j < 4; j++)
            cr_assert(tu_same_bits(y[j], s->ref[j]), "kind %d: output %d of the new tape", s->kind, j);
    } else if (r != TG_OK && s->out && s->kind != 0 && s->kind != 6) {
        cr_assert_eq(tg_tape_status(s->out), TG_ERR_NOMEM, "%s", tg_tape_error(s->out));
    }
    if (s->kind == 4 && r == TG_OK) {
        tg_tape *u = tg_tape_load(s->path);
        TU_TAPE_OK(u);
        loop_values(u, y);
        cr_assert(tu_same_bits(y[3], s->ref[3]));
        tg_tape_free(u);
    }
}

static const oom_case c_loops = { "loops", prepare_loops, run_loops, check_loops };

Test(oom, loops, .timeout = 600)
{
    sweep_kinds(&c_loops, 7);
}
