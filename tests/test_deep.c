/* tests/test_deep.c -- global rule 4 (no recursion in any pass).
 *
 * A 10^6-deep chain x = sin(x) + x is recorded, evaluated, differentiated
 * (gradient, JVP, VJP, Jacobian, HVP, Hessian, the _ws variants, batches),
 * disassembled and freed, all inside a thread created with a 1 MiB stack --
 * the equivalent of `ulimit -s 1024`.  A recursive pass would overflow it.
 * Results are checked against C loops: the value bit for bit, the first
 * derivative against prod(cos(x_k) + 1) and the second against its
 * recurrence.  A second chain x = x + 1e-6 sin(x) has a derivative far from
 * 0 and 1, so the product check is not trivial. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include <criterion/criterion.h>

#include "testutil.h"

#define DEPTH 1000000

typedef struct deep_run {
    int chain;          /* 0: x = sin(x) + x; 1: x = x + 1e-6 sin(x) */
    double x0;
    /* results */
    int recorded_ok;
    char error[256];
    size_t size;
    tg_status st[16];
    double y, g, jv, wj, J, hv, H, yws, gws, hvws, Hws, Yb[3], Gb[3];
    int disasm_ok;
    size_t disasm_len;
    char disasm_head[128], disasm_tail[64];
} deep_run;

static void *deep_main(void *arg)
{
    deep_run *r = arg;
    tg_tape *t = tg_tape_new("deep");
    if (!t)
        return NULL;
    tg_var x = tg_input(t, "x");
    for (long k = 0; k < DEPTH; k++)
        x = r->chain == 0 ? tg_add(tg_sin(x), x) : tg_add(x, tg_mul(1e-6, tg_sin(x)));
    tg_output(t, "y", x);
    r->recorded_ok = tg_tape_status(t) == TG_OK;
    snprintf(r->error, sizeof r->error, "%s", tg_tape_error(t));
    r->size = tg_tape_size(t);
    if (!r->recorded_ok) {
        tg_tape_free(t);
        return NULL;
    }
    double x0[1] = { r->x0 }, one[1] = { 1.0 };
    int i = 0;
    r->st[i++] = tg_eval(t, x0, &r->y);
    r->st[i++] = tg_gradient(t, x0, &r->g);
    r->st[i++] = tg_jvp(t, x0, one, &r->jv);
    r->st[i++] = tg_vjp(t, x0, one, &r->wj);
    r->st[i++] = tg_jacobian(t, x0, &r->J);
    r->st[i++] = tg_hvp(t, x0, one, &r->hv);
    r->st[i++] = tg_hessian(t, x0, &r->H);
    tg_workspace *w = tg_workspace_new(t);
    if (w) {
        r->st[i++] = tg_eval_ws(t, w, x0, &r->yws);
        r->st[i++] = tg_gradient_ws(t, w, x0, &r->gws);
        r->st[i++] = tg_hvp_ws(t, w, x0, one, &r->hvws);
        r->st[i++] = tg_hessian_ws(t, w, x0, &r->Hws);
        tg_workspace_free(w);
    } else {
        r->st[i++] = TG_ERR_NOMEM;
    }
    double X[3] = { r->x0, r->x0, r->x0 };
    r->st[i++] = tg_eval_batch(t, 3, X, r->Yb);
    r->st[i++] = tg_gradient_batch(t, 3, X, r->Gb);
    char *d = tg_tape_disasm(t);
    if (d) {
        r->disasm_ok = 1;
        r->disasm_len = strlen(d);
        snprintf(r->disasm_head, sizeof r->disasm_head, "%.*s", 100, d);
        const char *tail = r->disasm_len > 40 ? d + r->disasm_len - 40 : d;
        snprintf(r->disasm_tail, sizeof r->disasm_tail, "%s", tail);
        free(d);
    }
    tg_tape_free(t);
    return NULL;
}

/* Runs fn(arg) in a thread with a 1 MiB stack. */
static void run_small_stack(void *(*fn)(void *), void *arg)
{
    pthread_attr_t a;
    pthread_t th;
    cr_assert_eq(pthread_attr_init(&a), 0);
    cr_assert_eq(pthread_attr_setstacksize(&a, 1 << 20), 0);
    cr_assert_eq(pthread_create(&th, &a, fn, arg), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&a);
}

/* The same chain by a C loop: value, first and second derivative. */
static void reference(int chain, double x0, double *y, double *d1, double *d2)
{
    double x = x0, d = 1.0, s = 0.0;
    const double c = 1e-6;
    for (long k = 0; k < DEPTH; k++) {
        double fp, fpp, nx;
        if (chain == 0) {
            fp = cos(x) + 1.0;
            fpp = -sin(x);
            nx = sin(x) + x;
        } else {
            fp = 1.0 + c * cos(x);
            fpp = -c * sin(x);
            nx = x + c * sin(x);
        }
        s = fpp * d * d + fp * s;
        d = fp * d;
        x = nx;
    }
    *y = x;
    *d1 = d;
    *d2 = s;
}

static void check_run(deep_run *r)
{
    run_small_stack(deep_main, r);
    cr_assert(r->recorded_ok, "chain %d: recording failed: %s", r->chain, r->error);
    size_t per = r->chain == 0 ? 2 : 3;
    size_t want_size = 1 + per * DEPTH + (r->chain == 1);
    cr_expect_eq(r->size, want_size, "chain %d: %zu instructions, expected %zu", r->chain,
                 r->size, want_size);
    for (size_t i = 0; i < 13; i++)
        cr_expect_eq(r->st[i], TG_OK, "chain %d: call #%zu returned %d (%s)", r->chain, i,
                     (int)r->st[i], tg_status_str(r->st[i]));
    double y, d1, d2;
    reference(r->chain, r->x0, &y, &d1, &d2);
    cr_expect(tu_same_bits(r->y, y), "chain %d: value %s, C loop %s", r->chain, tu_d(r->y).s,
              tu_d(y).s);
    /* 10^6 roundings in a different order: 1e-9 relative */
    double atol = 1e-300;
    cr_expect(tu_close(r->g, d1, 1e-9, atol), "chain %d: gradient %s, prod(f') %s", r->chain,
              tu_d(r->g).s, tu_d(d1).s);
    cr_expect(tu_close(r->jv, d1, 1e-9, atol), "chain %d: jvp %s, prod(f') %s", r->chain,
              tu_d(r->jv).s, tu_d(d1).s);
    cr_expect(tu_close(r->wj, d1, 1e-9, atol), "chain %d: vjp %s, prod(f') %s", r->chain,
              tu_d(r->wj).s, tu_d(d1).s);
    cr_expect(tu_close(r->J, d1, 1e-9, atol), "chain %d: jacobian %s, prod(f') %s", r->chain,
              tu_d(r->J).s, tu_d(d1).s);
    cr_expect(tu_close(r->hv, d2, 1e-8, atol), "chain %d: hvp %s, recurrence %s", r->chain,
              tu_d(r->hv).s, tu_d(d2).s);
    cr_expect(tu_close(r->H, d2, 1e-8, atol), "chain %d: hessian %s, recurrence %s", r->chain,
              tu_d(r->H).s, tu_d(d2).s);
    cr_expect(tu_same_bits(r->yws, r->y) && tu_same_bits(r->gws, r->g) &&
                  tu_same_bits(r->hvws, r->hv) && tu_same_bits(r->Hws, r->H),
              "chain %d: _ws variants differ", r->chain);
    for (int p = 0; p < 3; p++)
        cr_expect(tu_same_bits(r->Yb[p], r->y) && tu_same_bits(r->Gb[p], r->g),
                  "chain %d: batch point %d differs: %s / %s", r->chain, p, tu_d(r->Yb[p]).s,
                  tu_d(r->Gb[p]).s);
    cr_expect(r->disasm_ok, "chain %d: tg_tape_disasm returned NULL", r->chain);
    char head[128], tail[64];
    snprintf(head, sizeof head, "tape \"deep\": 1 inputs, 1 outputs, %zu instructions\n"
             "in  x[1]\nout y[1]\n%%0 = input x[0]\n", want_size);
    snprintf(tail, sizeof tail, "\ny[0] = %%%zu\n", want_size - 1);
    cr_expect(strncmp(r->disasm_head, head, strlen(head)) == 0,
              "chain %d: disassembly starts with\n%s\nexpected\n%s", r->chain, r->disasm_head,
              head);
    size_t tl = strlen(tail), dl = strlen(r->disasm_tail);
    cr_expect(dl >= tl && strcmp(r->disasm_tail + dl - tl, tail) == 0,
              "chain %d: disassembly ends with\n%s\nexpected ...%s", r->chain, r->disasm_tail,
              tail);
    cr_expect(r->disasm_len > 10 * want_size, "chain %d: disassembly only %zu bytes", r->chain,
              r->disasm_len);
}

Test(deep, sin_plus_x_chain_in_1MiB_stack, .timeout = 300)
{
    static deep_run r;
    memset(&r, 0, sizeof r);
    r.chain = 0;
    r.x0 = 1.0;
    check_run(&r);
}

Test(deep, slow_chain_nontrivial_derivative_in_1MiB_stack, .timeout = 300)
{
    static deep_run r;
    memset(&r, 0, sizeof r);
    r.chain = 1;
    r.x0 = 1.0;
    check_run(&r);
    double y, d1, d2;
    reference(1, 1.0, &y, &d1, &d2);
    cr_expect(fabs(d1 - 1.0) > 0.05 && fabs(d2) > 1e-3,
              "premise: the slow chain has a nontrivial derivative (%g, %g)", d1, d2);
}

/* Deep chains of every other shape the sweeps handle: a long sum (one
 * value with 10^6 uses is not deep, but a left-leaning sum is), and a deep
 * select/max chain. */
typedef struct deep2 {
    int ok;
    tg_status st[3];
    double y, g[2], hv[2];
} deep2;

static void *deep_mixed(void *arg)
{
    deep2 *r = arg;
    tg_tape *t = tg_tape_new("mixed");
    if (!t)
        return NULL;
    tg_var a = tg_input(t, "a"), b = tg_input(t, "b");
    tg_var acc = a;
    for (long k = 0; k < DEPTH / 2; k++) {
        /* acc = max(acc * 0.999999 + b * 1e-6, select(acc > 0, acc, -acc)) */
        tg_var lin = tg_add(tg_mul(acc, 0.999999), tg_mul(b, 1e-6));
        acc = tg_max(lin, tg_select(tg_gt(acc, 0.0), tg_neg(acc), acc));
    }
    tg_output(t, "y", acc);
    r->ok = tg_tape_status(t) == TG_OK;
    double x[2] = { 0.5, 2.0 }, v[2] = { 1.0, -1.0 };
    r->st[0] = tg_eval(t, x, &r->y);
    r->st[1] = tg_gradient(t, x, r->g);
    r->st[2] = tg_hvp(t, x, v, r->hv);
    tg_tape_free(t);
    return NULL;
}

Test(deep, mixed_ops_chain_in_1MiB_stack, .timeout = 300)
{
    static deep2 r;
    memset(&r, 0, sizeof r);
    run_small_stack(deep_mixed, &r);
    cr_assert(r.ok, "recording failed");
    for (int i = 0; i < 3; i++)
        cr_expect_eq(r.st[i], TG_OK, "call %d returned %d", i, (int)r.st[i]);
    /* C loop: acc stays positive (the select branch is -acc < lin), so
     * acc = acc * 0.999999 + b * 1e-6 throughout */
    double acc = 0.5, da = 1.0, db = 0.0;
    for (long k = 0; k < DEPTH / 2; k++) {
        double lin = acc * 0.999999 + 2.0 * 1e-6;
        double alt = acc > 0.0 ? -acc : acc;
        if (lin > alt) {
            da = da * 0.999999;
            db = db * 0.999999 + 1e-6;
        } else {
            da = -da;
            db = -db;
        }
        acc = lin > alt ? lin : alt;
    }
    cr_expect(tu_same_bits(r.y, acc), "value %s, C loop %s", tu_d(r.y).s, tu_d(acc).s);
    cr_expect(tu_close(r.g[0], da, 1e-9, 1e-300) && tu_close(r.g[1], db, 1e-9, 1e-300),
              "gradient (%s, %s), C loop (%s, %s)", tu_d(r.g[0]).s, tu_d(r.g[1]).s, tu_d(da).s,
              tu_d(db).s);
    cr_expect(r.hv[0] == 0.0 && r.hv[1] == 0.0, "piecewise linear: hvp (%s, %s)",
              tu_d(r.hv[0]).s, tu_d(r.hv[1]).s);
}
