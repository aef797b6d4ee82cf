/* bench/src/loops.c -- W3 (Lorenz RK4) with the time loop kept in the tape
 * (issue 11): "W3 lorenz_rk4 scan", one tg_scan of one RK4 step, next to
 * the hand-written discrete adjoint (workloads.c), the flat (unrolled)
 * recording of the same operations (up to W3S_FLAT_MAX steps), and the
 * scan adjoint with every carry stored against binomial checkpointing
 * limited to W3S_SNAPSHOTS snapshots.
 *
 * The time span is fixed (dt = W3S_SPAN / steps): 10^3 steps are W3's
 * dt = 0.01 exactly, and 10^5 steps integrate the same trajectory more
 * finely.  (10^5 steps of dt = 0.01 would run the chaotic system for 1000
 * time units: its gradient, ~e^(0.9 t), overflows.)
 *
 * Peak memory: each configuration runs once in a child process of its own
 * (`tgbench --loopmem MODE --n STEPS`, this same executable), which records
 * the tape and computes one gradient; its memory is the growth of the
 * resident set's high-water mark (VmHWM, reset through /proc/self/clear_refs
 * where the kernel allows it) over the resident set before the tape was
 * recorded, after a warm-up run of the same configuration at 10 steps (so
 * that code pages faulted in and the allocator's first arenas, which do not
 * grow with the steps, are not counted).  A child of its own because a process's peak RSS never goes
 * down, and freed memory that a later allocation reuses would hide. */
#define _POSIX_C_SOURCE 200809L
#include "systems.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tapegen.h>

#include "tgcheck.h"
#include "tgrec.h"
#include "workloads.h"

#define AD_TOL 1e-8
#define FD_SELF_TOL 1e-5
#define W3S_SPAN 10.0          /* time span: dt = W3S_SPAN / steps */
#define W3S_FLAT_MAX 10000     /* the flat recording alongside, up to this many steps */
#define W3S_SNAPSHOTS 100      /* the checkpointing budget of the target */

#define SYS_TG_LOOP "tapegen loop"
#define SYS_TG_LOOP_OPT "tapegen loop opt"
#define SYS_TG_LOOP_DTAPE "tapegen loop dtape"
#define SYS_TG_STORE "tapegen scan store-all"
#define SYS_TG_CKPT "tapegen scan ckpt100"

double
w3s_dt(size_t steps)
{
    return W3S_SPAN / (double)(steps ? steps : 1);
}

/* Why a path is not available when the library's message does not say
 * (set by set_snapshots). */
static const char *why_not;

/* The snapshot budget of the scan adjoints of t: k = 0 stores every carry
 * of a scan of `steps` steps, k > 0 = binomial checkpointing with at most
 * k snapshots (revolve). */
static tg_status
set_snapshots(tg_tape *t, size_t k, size_t steps)
{
    /* tg_tape_set_checkpoints: 0 is automatic, s >= steps stores every carry */
    return tg_tape_set_checkpoints(t, k ? k : steps + 1);
}

typedef struct w3s_state {
    size_t steps;
    double dt;
    double u[6], v[6], uv[12];
    double y, g[6], hv[6];
    double *traj;
    tg_tape *flat, *loop, *lopt, *store, *ckpt, *glt, *hlt;
} w3s_state;

static void c_hand_f(void *p) { w3s_state *s = p; s->y = w3_f_steps(s->u, s->steps, s->dt); }
static void c_hand_grad(void *p)
{
    w3s_state *s = p;
    w3_grad_steps(s->u, s->steps, s->dt, s->g, s->traj);
}
static void c_flat_record(void *p)
{
    w3s_state *s = p;
    tg_tape_free(tgrec_lorenz_steps(s->steps, s->dt, 0));
}
static void c_flat_f(void *p) { w3s_state *s = p; tg_eval(s->flat, s->u, &s->y); }
static void c_flat_grad(void *p) { w3s_state *s = p; tg_gradient(s->flat, s->u, s->g); }
static void c_flat_hvp(void *p) { w3s_state *s = p; tg_hvp(s->flat, s->u, s->v, s->hv); }
static void c_loop_record(void *p)
{
    w3s_state *s = p;
    tg_tape_free(tgrec_lorenz_scan(s->steps, s->dt, 0));
}
static void c_loop_f(void *p) { w3s_state *s = p; tg_eval(s->loop, s->u, &s->y); }
static void c_loop_grad(void *p) { w3s_state *s = p; tg_gradient(s->loop, s->u, s->g); }
static void c_lopt_grad(void *p) { w3s_state *s = p; tg_gradient(s->lopt, s->u, s->g); }
static void c_loop_hvp(void *p) { w3s_state *s = p; tg_hvp(s->loop, s->u, s->v, s->hv); }
static void c_dt_grad(void *p) { w3s_state *s = p; tg_eval(s->glt, s->u, s->g); }
static void c_dt_hvp(void *p) { w3s_state *s = p; tg_eval(s->hlt, s->uv, s->hv); }
static void c_store_grad(void *p) { w3s_state *s = p; tg_gradient(s->store, s->u, s->g); }
static void c_ckpt_grad(void *p) { w3s_state *s = p; tg_gradient(s->ckpt, s->u, s->g); }

/* Registers case (sys, op) when st is TG_OK and checks got against want
 * (AD_TOL) and against flat (metric "loop vs flat: OP", the 1e-13
 * target); otherwise reports the path as not available and registers
 * nothing: a loop path that has not landed is never timed or faked. */
static int
checked_case(bench_set *bs, w3s_state *s, const char *sys, const char *op, bench_fn fn,
             tg_status st, const double *got, const double *want, const double *flat,
             size_t len, const char *note)
{
    if (st != TG_OK) {
        char name[96], msg[160];
        snprintf(name, sizeof name, "%s: not available", op);
        snprintf(msg, sizeof msg, "%s: %s", tg_status_str(st), why_not ? why_not : tg_last_error());
        why_not = NULL;
        bench_metric_add(bs, sys, name, 0.0, "", msg);
        printf("%s %s: %s %s not available: %s\n", bs->workload, bs->size, sys, op, msg);
        return -1;
    }
    int k = bench_add(bs, sys, op, fn, s);
    bench_note(bs, k, "%s", note);
    bench_check(bs, k, got, want, len, AD_TOL, op);
    if (flat) {
        char name[96];
        snprintf(name, sizeof name, "loop vs flat: %s", op);
        bench_metric_add(bs, sys, name, bench_relerr(got, flat, len), "relerr",
                         "max relative difference from the flat tape's result (target 1e-13)");
    }
    return k;
}

static void
tape_rows(bench_set *bs, const char *sys, const char *what, const tg_tape *t)
{
    char name[96];
    snprintf(name, sizeof name, "%s instructions", what);
    bench_metric_add(bs, sys, name, (double)tg_tape_size(t), "instr", "tg_tape_size");
    snprintf(name, sizeof name, "%s bytes", what);
    bench_metric_add(bs, sys, name, (double)tg_tape_bytes(t), "B", "tg_tape_bytes");
}

/* Fourth-order central differences of the hand-written f, three step
 * sizes, best kept (as systems.c's self-checks): normwise error of g. */
static double
selfcheck_grad(const w3s_state *s, const double *g)
{
    static const double cs[3] = { 7.4e-4, 1e-4, 1.5e-5 };
    double best = INFINITY, u[6], gfd[6];
    for (int q = 0; q < 3; q++) {
        for (int j = 0; j < 6; j++) {
            memcpy(u, s->u, sizeof u);
            double h = cs[q] * fmax(1.0, fabs(u[j])), f[4];
            static const double c[4] = { 2.0, 1.0, -1.0, -2.0 };
            for (int k = 0; k < 4; k++) {
                u[j] = s->u[j] + c[k] * h;
                f[k] = w3_f_steps(u, s->steps, s->dt);
            }
            gfd[j] = (-f[0] + 8.0 * f[1] - 8.0 * f[2] + f[3]) / (12.0 * h);
        }
        best = fmin(best, bench_normerr(gfd, g, 6));
    }
    return best;
}

/* ---------------------------------------------------- peak memory probes */

/* A line "Key: value kB" of /proc/self/status, KiB, or -1. */
static long
proc_status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); 0 on success. */
static int
reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* One record + gradient of MODE at `steps` steps; g: the gradient; *size:
 * the tape's instructions.  TG_ERR_ARG for an unknown mode. */
static tg_status
loopmem_once(const char *mode, size_t steps, const double *u, double *g, size_t *size)
{
    double dt = w3s_dt(steps);
    tg_status st = TG_OK;
    tg_tape *t = NULL;
    *size = 0;
    if (strcmp(mode, "hand") == 0) {
        double *tr = xcalloc(3 * (steps + 1), sizeof *tr);
        w3_grad_steps(u, steps, dt, g, tr);
        free(tr);
        return TG_OK;
    }
    if (strcmp(mode, "flat") == 0) {
        t = tgrec_lorenz_steps(steps, dt, 0);
    } else if (strcmp(mode, "store") == 0 || strncmp(mode, "ckpt", 4) == 0) {
        t = tgrec_lorenz_scan(steps, dt, 0);
        size_t k = mode[0] == 's' ? 0 : (size_t)strtoull(mode + 4, NULL, 10);
        if (t && tg_tape_status(t) == TG_OK && (st = set_snapshots(t, k, steps)) != TG_OK) {
            tg_tape_free(t);
            return st;
        }
    } else {
        return TG_ERR_ARG;
    }
    if (!t)
        return TG_ERR_NOMEM;
    tg_tape_set_lazy(t, 0);   /* the sweeps: a lazy gradient tape stores every step */
    st = tg_tape_status(t);
    if (st == TG_OK)
        st = tg_gradient(t, u, g);
    *size = tg_tape_size(t);
    tg_tape_free(t);
    return st;
}

int
run_loopmem(const char *mode, size_t steps)
{
    double u[6], g[6], gref[6];
    size_t size = 0;
    w3_point(u);
    double *traj = xcalloc(3 * (steps + 1), sizeof *traj);
    w3_grad_steps(u, steps, w3s_dt(steps), gref, traj);
    /* A warm-up of the same configuration at 10 steps, so that the code
     * pages and the allocator's first arenas are not counted: what is
     * measured is the memory that grows with the problem. */
    tg_status st = loopmem_once(mode, 10, u, g, &size);
    if (st == TG_ERR_ARG) {
        fprintf(stderr, "loopmem: unknown mode %s (hand, flat, store, ckptK)\n", mode);
        free(traj);
        return 2;
    }
    long base = proc_status_kib("VmRSS");
    int reset = reset_hwm() == 0;
    if (!reset)   /* without a reset the high-water mark includes the setup above */
        base = proc_status_kib("VmHWM");
    double t0 = bench_wall();
    if (st == TG_OK)
        st = loopmem_once(mode, steps, u, g, &size);
    double secs = bench_wall() - t0;
    long hwm = proc_status_kib("VmHWM");
    double err = st == TG_OK ? bench_relerr(g, gref, 6) : NAN;
    if (st != TG_OK)
        printf("loopmem %s fail %s: %s\n", mode, tg_status_str(st),
               why_not ? why_not : tg_last_error());
    else
        printf("loopmem %s ok %ld %ld %.6f %.3e %zu %s\n", mode, base, hwm, secs, err, size,
               reset ? "reset" : "noreset");
    free(traj);
    return st == TG_OK && err <= AD_TOL ? 0 : 1;
}

/* Runs `tgbench --loopmem MODE --n STEPS` and adds its rows to bs: the
 * growth of the peak RSS, the time of record + one gradient. */
static double
memprobe_child(bench_set *bs, const char *mode, size_t steps, const char *sys)
{
    char cmd[4096], self[3000];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        bench_metric_add(bs, sys, "peak RSS growth: not measured", 0, "", "no /proc/self/exe");
        return NAN;
    }
    self[len] = 0;
    snprintf(cmd, sizeof cmd, "'%s' --loopmem %s --n %zu 2>&1", self, mode, steps);
    FILE *p = popen(cmd, "r");
    char line[512], st[16] = "";
    long base = -1, hwm = -1;
    double secs = NAN, err = NAN;
    size_t size = 0;
    int got = 0;
    while (p && fgets(line, sizeof line, p)) {
        char m[32];
        if (sscanf(line, "loopmem %31s %15s %ld %ld %lf %lf %zu", m, st, &base, &hwm, &secs, &err,
                   &size) >= 2)
            got = strcmp(st, "ok") == 0;
        if (!got)
            fputs(line, stdout);
    }
    int rc = p ? pclose(p) : -1;
    char name[96], note[160];
    if (!got || rc != 0) {
        snprintf(name, sizeof name, "peak RSS growth (%s): not available", mode);
        snprintf(note, sizeof note, "tgbench --loopmem %s --n %zu failed (status %d)", mode, steps,
                 rc);
        bench_metric_add(bs, sys, name, 0, "", note);
        if (got && rc != 0)
            bench_fail(bs, "--loopmem %s: the gradient differs from the hand-written one", mode);
        return NAN;
    }
    double grow = (double)(hwm - base) * 1024.0;
    snprintf(name, sizeof name, "peak RSS growth (%s)", mode);
    snprintf(note, sizeof note, "child process: VmHWM - VmRSS before recording; record + 1 gradient "
             "in %.3g s; grad rel err %.1e", secs, err);
    bench_metric_add(bs, sys, name, grow, "B", note);
    printf("%s %s: memprobe %-8s peak RSS growth %8.1f KiB (record + gradient %.3g s)\n",
           bs->workload, bs->size, mode, grow / 1024.0, secs);
    return grow;
}

/* ---------------------------------------------------------------- W3 scan */

int
run_w3_scan(const bench_opts *o, size_t steps, FILE *csv)
{
    bench_set bs;
    char size[32];
    snprintf(size, sizeof size, "steps=%zu", steps);
    bench_set_init(&bs, "W3 lorenz_rk4 scan", size);
    w3s_state s;
    memset(&s, 0, sizeof s);
    s.steps = steps;
    s.dt = w3s_dt(steps);
    w3_point(s.u);
    for (int i = 0; i < 6; i++)
        s.v[i] = 1.0;
    memcpy(s.uv, s.u, sizeof s.u);
    memcpy(s.uv + 6, s.v, sizeof s.v);
    s.traj = xcalloc(3 * (steps + 1), sizeof *s.traj);
    int flat_on = steps <= W3S_FLAT_MAX;

    /* Memory first, each in a child of its own (before this process grows). */
    double m_store = memprobe_child(&bs, "store", steps, SYS_TG_STORE);
    char ck[32];
    snprintf(ck, sizeof ck, "ckpt%d", W3S_SNAPSHOTS);
    double m_ckpt = memprobe_child(&bs, ck, steps, SYS_TG_CKPT);
    memprobe_child(&bs, "hand", steps, SYS_HAND);
    if (flat_on)
        memprobe_child(&bs, "flat", steps, SYS_TG);
    if (m_store > 0 && !isnan(m_ckpt))
        bench_metric_add(&bs, SYS_TG_CKPT, "peak RSS growth ckpt / store-all", m_ckpt / m_store,
                         "x", "target <= 1/20 at 10^5 steps");

    /* ---- the reference, checked against central differences */
    double fref = w3_f_steps(s.u, steps, s.dt), gref[6], H[36], hvref[6];
    w3_grad_steps(s.u, steps, s.dt, gref, s.traj);
    w3_hess_steps(s.u, steps, s.dt, H);
    for (int i = 0; i < 6; i++) {
        hvref[i] = 0.0;
        for (int j = 0; j < 6; j++)
            hvref[i] += H[i * 6 + j] * s.v[j];
    }
    bench_selfcheck(&bs, "hand grad vs central FD (normwise)", selfcheck_grad(&s, gref),
                    FD_SELF_TOL);
    bench_add(&bs, SYS_HAND, "f", c_hand_f, &s);
    bench_add(&bs, SYS_HAND, "grad", c_hand_grad, &s);

    double got[6], yf = 0.0, y = 0.0, fh[6] = { 0 }, gh[6] = { 0 };
    tg_status st;
    int k;
    /* ---- flat (unrolled) recording */
    if (flat_on) {
        s.flat = tgrec_lorenz_steps(steps, s.dt, 0);
        if (!s.flat || tg_tape_status(s.flat) != TG_OK) {
            bench_fail(&bs, "flat recording failed");
            goto done;
        }
        if (o->no_lazy)
            tg_tape_set_lazy(s.flat, 0);
        tape_rows(&bs, SYS_TG, "f", s.flat);
        k = bench_add(&bs, SYS_TG, "record", c_flat_record, &s);
        bench_set_refs(&bs, k, "f", "");
        k = checked_case(&bs, &s, SYS_TG, "f", c_flat_f, tg_eval(s.flat, s.u, &yf), &yf, &fref,
                         NULL, 1, "tg_eval, flat tape");
        k = checked_case(&bs, &s, SYS_TG, "grad", c_flat_grad, tg_gradient(s.flat, s.u, fh), fh,
                         gref, NULL, 6, "tg_gradient, flat tape");
        k = checked_case(&bs, &s, SYS_TG, "hvp", c_flat_hvp, tg_hvp(s.flat, s.u, s.v, gh), gh,
                         hvref, NULL, 6, "tg_hvp, flat tape; checked against the hand Hessian x v");
        if (k >= 0)
            bench_set_refs(&bs, k, "", "");
    }

    /* ---- the scan */
    s.loop = tgrec_lorenz_scan(steps, s.dt, 0);
    if (!s.loop || tg_tape_status(s.loop) != TG_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s", s.loop ? tg_tape_error(s.loop) : "out of memory");
        bench_metric_add(&bs, SYS_TG_LOOP, "record: not available", 0.0, "", msg);
        printf("%s %s: the scan recording is not available: %s\n", bs.workload, bs.size, msg);
        goto run;
    }
    if (o->no_lazy)
        tg_tape_set_lazy(s.loop, 0);
    tape_rows(&bs, SYS_TG_LOOP, "loop f", s.loop);
    k = bench_add(&bs, SYS_TG_LOOP, "record", c_loop_record, &s);
    bench_set_refs(&bs, k, "f", "");
    bench_note(&bs, k, "tg_tape_new + tg_scan + tg_tape_free");
    int kf = checked_case(&bs, &s, SYS_TG_LOOP, "f", c_loop_f, tg_eval(s.loop, s.u, &y), &y,
                          &fref, flat_on ? &yf : NULL, 1, "tg_eval");
    int kg = checked_case(&bs, &s, SYS_TG_LOOP, "grad", c_loop_grad,
                          tg_gradient(s.loop, s.u, got), got, gref, flat_on ? fh : NULL, 6,
                          "tg_gradient (default snapshot budget)");
    st = tg_hvp(s.loop, s.u, s.v, got);
    int kh = checked_case(&bs, &s, SYS_TG_LOOP, "hvp", c_loop_hvp, st, got, hvref,
                          flat_on ? gh : NULL, 6, "tg_hvp; checked against the hand Hessian x v");
    if (kh >= 0)
        bench_set_refs(&bs, kh, "", "");
    /* the scan after one tg_tape_optimize(TG_OPT_BASIC), as a user would
     * run it once after recording: the body is re-recorded in the order
     * the optimiser leaves it (the flat tape's lazy gradient tape, the
     * "flat grad" row, is optimised the same way inside the library) */
    int ko = -1;
    s.lopt = tgrec_lorenz_scan(steps, s.dt, 0);
    st = s.lopt ? tg_tape_optimize(s.lopt, TG_OPT_BASIC) : TG_ERR_NOMEM;
    if (st == TG_OK) {
        if (o->no_lazy)
            tg_tape_set_lazy(s.lopt, 0);
        st = tg_gradient(s.lopt, s.u, got);
    }
    why_not = s.lopt && st != TG_OK ? tg_tape_error(s.lopt) : NULL;
    ko = checked_case(&bs, &s, SYS_TG_LOOP_OPT, "grad", c_lopt_grad, st, got, gref,
                      flat_on ? fh : NULL, 6, "tg_gradient after tg_tape_optimize(TG_OPT_BASIC)");
    /* derivative tapes of the scan (forward scan + reverse scan of the VJP) */
    s.glt = tg_gradient_tape(s.loop, TG_ALL);
    st = s.glt ? tg_tape_status(s.glt) : TG_ERR_NOMEM;
    why_not = s.glt && st != TG_OK ? tg_tape_error(s.glt) : NULL;
    if (st == TG_OK) {
        tape_rows(&bs, SYS_TG_LOOP_DTAPE, "loop grad tape", s.glt);
        st = tg_eval(s.glt, s.u, got);
    }
    int kdg = checked_case(&bs, &s, SYS_TG_LOOP_DTAPE, "grad", c_dt_grad, st, got, gref,
                           flat_on ? fh : NULL, 6, "tg_eval of tg_gradient_tape(scan tape)");
    s.hlt = tg_hvp_tape(s.loop, TG_ALL);
    st = s.hlt ? tg_tape_status(s.hlt) : TG_ERR_NOMEM;
    why_not = s.hlt && st != TG_OK ? tg_tape_error(s.hlt) : NULL;
    if (st == TG_OK) {
        tape_rows(&bs, SYS_TG_LOOP_DTAPE, "loop hvp tape", s.hlt);
        st = tg_eval(s.hlt, s.uv, got);
    }
    k = checked_case(&bs, &s, SYS_TG_LOOP_DTAPE, "hvp", c_dt_hvp, st, got, hvref,
                     flat_on ? gh : NULL, 6, "tg_eval of tg_hvp_tape(scan tape)");
    if (k >= 0)
        bench_set_refs(&bs, k, "", "");
    (void)kdg;

    /* ---- checkpointing: every carry stored vs at most W3S_SNAPSHOTS snapshots */
    s.store = tgrec_lorenz_scan(steps, s.dt, 0);
    s.ckpt = tgrec_lorenz_scan(steps, s.dt, 0);
    int ks = -1, kc = -1;
    if (s.store && s.ckpt) {
        tg_tape_set_lazy(s.store, 0);
        tg_tape_set_lazy(s.ckpt, 0);
        st = set_snapshots(s.store, 0, steps);
        if (st == TG_OK)
            st = tg_gradient(s.store, s.u, got);
        ks = checked_case(&bs, &s, SYS_TG_STORE, "grad", c_store_grad, st, got, gref,
                          flat_on ? fh : NULL, 6, "tg_gradient, every carry stored; lazy off");
        st = set_snapshots(s.ckpt, W3S_SNAPSHOTS, steps);
        if (st == TG_OK)
            st = tg_gradient(s.ckpt, s.u, got);
        kc = checked_case(&bs, &s, SYS_TG_CKPT, "grad", c_ckpt_grad, st, got, gref,
                          flat_on ? fh : NULL, 6,
                          "tg_gradient, binomial checkpointing, <= 100 snapshots; lazy off");
    }
    if (flat_on) {
        bench_add_ratio(&bs, "loop f / flat f", kf, bench_find(&bs, SYS_TG, "f"), 0);
        bench_add_ratio(&bs, "loop grad / flat grad", kg, bench_find(&bs, SYS_TG, "grad"), 0);
        bench_add_ratio(&bs, "loop opt grad / flat grad", ko, bench_find(&bs, SYS_TG, "grad"), 0);
        bench_add_ratio(&bs, "loop hvp / flat hvp", kh, bench_find(&bs, SYS_TG, "hvp"), 0);
    }
    bench_add_ratio(&bs, "ckpt100 grad / store-all grad", kc, ks, 0);

run:
    bench_run_checked(&bs, o);
done:;
    int failed = bench_report(&bs, csv);
    tg_tape_free(s.flat);
    tg_tape_free(s.loop);
    tg_tape_free(s.lopt);
    tg_tape_free(s.store);
    tg_tape_free(s.ckpt);
    tg_tape_free(s.glt);
    tg_tape_free(s.hlt);
    free(s.traj);
    bench_set_free(&bs);
    return failed;
}
