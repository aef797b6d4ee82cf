/* tests/fuzz/fuzz_load.c -- libFuzzer target for tg_tape_load.
 *
 * Each input is loaded twice through a file (the library reads files only):
 *  1. as it is, which mostly exercises the header and the checksums;
 *  2. with the header's size, every section hash and the file hash
 *     recomputed by the harness, so that mutations reach the semantic
 *     validators (opcodes, operands, input order, names, counts, ...).
 * A load must give a tape in the error state with TG_ERR_FORMAT and an
 * "at byte" message, or a valid tape.  A valid tape must then
 *  - save back to exactly the same bytes (the format is canonical),
 *  - disassemble, evaluate, and give its gradient / Jacobian / Hessian,
 *  - evaluate bit for bit the same after tg_tape_optimize(TG_OPT_MAX)
 *    (any two NaNs are equal: payloads may differ),
 *  - give a derivative tape, and Rust source, without crashing.
 * Files are loaded with a tg_funcs object defining the user functions of
 * the committed seed v3_call.tape (rot 2 -> 2, rot_jvp 4 -> 2, rot_vjp
 * 4 -> 2), so format 3 files with calls reach every property; a tape with
 * calls may refuse optimisation (TG_ERR_UNSUPPORTED), and its derivative
 * tapes may (a function without derivative functions).
 * Any violation aborts (a crash for libFuzzer), with a message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tapegen.h"
#include "tapefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIG 4096            /* skip the costly properties above this size */

static char path_in[96], path_out[96];

/* ------------------------------------------------------ user functions */

static void
rot_eval(void *c, const double *x, double *y)
{
    (void)c;
    y[0] = x[0] * cos(x[1]);
    y[1] = x[0] * sin(x[1]);
}

static void
rot_jvp(void *c, const double *x, const double *dx, double *dy)
{
    (void)c;
    dy[0] = cos(x[1]) * dx[0] - x[0] * sin(x[1]) * dx[1];
    dy[1] = sin(x[1]) * dx[0] + x[0] * cos(x[1]) * dx[1];
}

static void
rot_vjp(void *c, const double *x, const double *u, double *xb)
{
    (void)c;
    xb[0] = cos(x[1]) * u[0] + sin(x[1]) * u[1];
    xb[1] = -x[0] * sin(x[1]) * u[0] + x[0] * cos(x[1]) * u[1];
}

static void
rot_hvp(void *c, const double *x, const double *u, const double *v, double *hv)
{
    (void)c;
    double g = -sin(x[1]) * u[0] + cos(x[1]) * u[1];
    hv[0] = g * v[1];
    hv[1] = g * v[0] - x[0] * (cos(x[1]) * u[0] + sin(x[1]) * u[1]) * v[1];
}

static void
pair_eval(void *c, const double *z, double *y)      /* rot_jvp and rot_vjp */
{
    (void)c;
    y[0] = z[0] * z[2] + z[1] * z[3];
    y[1] = z[0] * z[3] - z[1] * z[2];
}

static void
pair_jvp(void *c, const double *z, const double *d, double *y)
{
    (void)c;
    y[0] = d[0] * z[2] + z[0] * d[2] + d[1] * z[3] + z[1] * d[3];
    y[1] = d[0] * z[3] + z[0] * d[3] - d[1] * z[2] - z[1] * d[2];
}

static void
pair_vjp(void *c, const double *z, const double *u, double *zb)
{
    (void)c;
    zb[0] = u[0] * z[2] + u[1] * z[3];
    zb[1] = u[0] * z[3] - u[1] * z[2];
    zb[2] = u[0] * z[0] - u[1] * z[1];
    zb[3] = u[0] * z[1] + u[1] * z[0];
}

static void
pair_hvp(void *c, const double *z, const double *u, const double *v, double *hv)
{
    (void)c;
    (void)z;
    hv[0] = u[0] * v[2] + u[1] * v[3];
    hv[1] = u[0] * v[3] - u[1] * v[2];
    hv[2] = u[0] * v[0] - u[1] * v[1];
    hv[3] = u[0] * v[1] + u[1] * v[0];
}

static const tg_funcs *
fuzz_funcs(void)
{
    static tg_funcs *fs;
    if (fs)
        return fs;
    fs = tg_funcs_new();
    tg_func_def rot = { .name = "rot", .n = 2, .k = 2, .eval = rot_eval, .jvp = rot_jvp,
                        .vjp = rot_vjp, .hvp = rot_hvp, .jvp_func = "rot_jvp",
                        .vjp_func = "rot_vjp" };
    tg_func_def j = { .name = "rot_jvp", .n = 4, .k = 2, .eval = pair_eval, .jvp = pair_jvp,
                      .vjp = pair_vjp, .hvp = pair_hvp };
    tg_func_def v = j;
    v.name = "rot_vjp";
    if (!fs || tg_func_define(fs, &rot) != TG_OK || tg_func_define(fs, &j) != TG_OK
        || tg_func_define(fs, &v) != TG_OK || tg_funcs_seal(fs) != TG_OK)
        abort();
    return fs;
}

/* the tape calls user functions (some instruction is a CALL) */
static int
has_calls(const tg_tape *t)
{
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_insn in;
        if (tg_tape_insn(t, i, &in) == TG_OK && in.op == TG_OP_CALL)
            return 1;
    }
    return 0;
}

static void
cleanup(void)
{
    unlink(path_in);
    unlink(path_out);
}

static void
init_paths(void)
{
    if (path_in[0])
        return;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path_in, sizeof path_in, "%s/tg-fuzz-%ld-in.tape", dir, (long)getpid());
    snprintf(path_out, sizeof path_out, "%s/tg-fuzz-%ld-out.tape", dir, (long)getpid());
    atexit(cleanup);
}

static void
die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_load: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    cleanup();
    abort();
}

/* ------------------------------------------------------------ bytes */

static void
write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die("cannot write", path);
}

static uint8_t *
read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len)
        die("cannot read", path);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* ------------------------------------------------------------ properties */

static int
same_value(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static void
fill_x(double *x, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        double g = 0.6180339887498949 * (double)(k + 1);
        x[k] = 0.25 + 0.5 * (g - floor(g));
    }
}

static void
ok_or_die(tg_status s, const char *what)
{
    if (s != TG_OK)
        die(what, tg_last_error());
}

/* A file of the current format saves back to the same bytes (the format is
 * canonical); a format 1 file saves in the current format, which loads to
 * the same disassembly. */
static void
round_trip(const tg_tape *t, const uint8_t *p, size_t n)
{
    ok_or_die(tg_tape_save(t, path_out), "tg_tape_save of a loaded tape");
    size_t m;
    uint8_t *q = read_file(path_out, &m);
    if (get32(p + 8) != 1) {
        if (m != n || memcmp(p, q, n) != 0)
            die("save(load(file)) differs from file", NULL);
    } else {
        tg_tape *u = tg_tape_load_funcs(path_out, fuzz_funcs());
        char *a = tg_tape_disasm(t), *b = u ? tg_tape_disasm(u) : NULL;
        if (!u || tg_tape_status(u) != TG_OK || !a || !b || strcmp(a, b) != 0)
            die("a format 1 file rewritten in the current format differs", NULL);
        free(a);
        free(b);
        tg_tape_free(u);
    }
    free(q);
}

/* A path that does not handle loops yet refuses a looped tape with
 * TG_ERR_UNSUPPORTED (issue 11); anything else must succeed. */
static void
ok_or_refused(const tg_tape *t, tg_status s, const char *what)
{
    if (s == TG_ERR_UNSUPPORTED && tg_tape_num_bodies(t) > 0)
        return;
    ok_or_die(s, what);
}

/* A branch guard (tg_branch) that decides the other way at x: every call
 * says so, and none writes its output. */
static void
branch_everywhere(const tg_tape *t, const double *x)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    if (m * n > BIG)
        return;
    double *J = malloc(m * n * sizeof *J + 1);
    for (size_t i = 0; i < m * n; i++)
        J[i] = 77.0;
    if (tg_jacobian(t, x, J) != TG_ERR_BRANCH || (m == 1 && tg_gradient(t, x, J) != TG_ERR_BRANCH))
        die("a guard failed for tg_eval but not for the derivatives", tg_last_error());
    for (size_t i = 0; i < m * n; i++)
        if (J[i] != 77.0)
            die("a failing guard wrote a result", NULL);
    free(J);
}

/* Returns 1 when a guard of t fails at x (TG_ERR_BRANCH everywhere). */
static int
numbers(const tg_tape *t, double *x, double *y)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    tg_status s0 = tg_eval(t, x, y);
    if (s0 == TG_ERR_BRANCH && tg_num_guards(t) > 0) {
        branch_everywhere(t, x);
        return 1;
    }
    ok_or_die(s0, "tg_eval");
    /* A tape without instructions: tg_jacobian, tg_jvp and tg_vjp compute
     * NULL + 0 on their empty workspace (src/ad/api.c), which clang's UBSan
     * reports; skipped until the library avoids it (there is nothing to
     * differentiate anyway). */
    if (m * n > BIG || tg_tape_size(t) == 0)
        return 0;
    double *J = malloc(m * n * sizeof *J + 1);
    ok_or_refused(t, tg_jacobian(t, x, J), "tg_jacobian");
    if (m == 1) {
        ok_or_refused(t, tg_gradient(t, x, J), "tg_gradient");
        if (n * n <= BIG) {
            double *H = malloc(n * n * sizeof *H + 1);
            ok_or_refused(t, tg_hessian(t, x, H), "tg_hessian");
            free(H);
        }
    }
    free(J);
    return 0;
}

/* A second copy, optimised, computes the same values. */
static void
optimised(const double *x, const double *y, size_t m, int branch)
{
    tg_tape *o = tg_tape_load_funcs(path_in, fuzz_funcs());
    if (!o || tg_tape_status(o) != TG_OK)
        die("second load failed", o ? tg_tape_error(o) : "NULL");
    tg_status os = tg_tape_optimize(o, TG_OPT_MAX);
    if (os == TG_ERR_UNSUPPORTED && has_calls(o)) {
        tg_tape_free(o);
        return;
    }
    ok_or_die(os, "tg_tape_optimize");
    double *y2 = malloc(m * sizeof *y2 + 1);
    tg_status s = tg_eval(o, x, y2);
    if (branch) {           /* guards are never optimised away */
        if (s != TG_ERR_BRANCH)
            die("tg_tape_optimize changed a guard's decision", tg_last_error());
        free(y2);
        tg_tape_free(o);
        return;
    }
    ok_or_die(s, "tg_eval after optimize");
    for (size_t i = 0; i < m; i++)
        if (!same_value(y[i], y2[i]))
            die("tg_tape_optimize changed a result", NULL);
    free(y2);
    tg_tape_free(o);
}

static void
derived(const tg_tape *t)
{
    tg_tape *d = tg_num_outputs(t) == 1 ? tg_gradient_tape(t, TG_ALL) : tg_jacobian_tape(t, TG_ALL);
    /* No inputs or no outputs: nothing to differentiate (TG_ERR_SHAPE). */
    int empty = tg_num_inputs(t) == 0 || tg_num_outputs(t) == 0;
    int loops = tg_tape_num_bodies(t) > 0;
    int calls = has_calls(t) && d && tg_tape_status(d) == TG_ERR_UNSUPPORTED;
    if (!d || (tg_tape_status(d) != TG_OK && !calls
               && !(empty && tg_tape_status(d) == TG_ERR_SHAPE)
               && !(loops && tg_tape_status(d) == TG_ERR_UNSUPPORTED)))
        die("derivative tape of a valid tape failed", d ? tg_tape_error(d) : "NULL");
    tg_tape_free(d);
    char *src = NULL;
    size_t work = 0;
    tg_status s = tg_rust_source(t, NULL, &src, &work);
    if (s != TG_OK && s != TG_ERR_NAME && !(loops && s == TG_ERR_UNSUPPORTED))
        die("tg_rust_source", tg_last_error());
    free(src);
}

/* A loop of more than BIG * 64 applications (a small file can ask for
 * 2^32 - 1 steps of a scan without x or y): too slow to evaluate here. */
static int
long_loop(const char *text)
{
    static const char *const keys[] = { " count=", " steps=" };
    for (int k = 0; k < 2; k++)
        for (const char *q = text; (q = strstr(q, keys[k])) != NULL; q += 7)
            if (strtoull(q + 7, NULL, 10) > (unsigned long long)BIG * 64)
                return 1;
    return 0;
}

static void
valid(const tg_tape *t, const uint8_t *p, size_t n)
{
    round_trip(t, p, n);
    char *text = tg_tape_disasm(t);
    if (!text)
        die("tg_tape_disasm returned NULL", NULL);
    int skip = tg_tape_size(t) > BIG || long_loop(text);
    free(text);
    if (skip)
        return;
    size_t ni = tg_num_inputs(t), m = tg_num_outputs(t);
    double *x = malloc(ni * sizeof *x + 1), *y = malloc(m * sizeof *y + 1);
    fill_x(x, ni);
    int branch = numbers(t, x, y);
    optimised(x, y, m, branch);
    derived(t);
    free(x);
    free(y);
}

static void
load(const uint8_t *p, size_t n)
{
    write_file(path_in, p, n);
    tg_tape *t = tg_tape_load_funcs(path_in, fuzz_funcs());
    if (!t)
        die("tg_tape_load returned NULL", NULL);
    tg_status s = tg_tape_status(t);
    if (s == TG_OK)
        valid(t, p, n);
    else if (s != TG_ERR_FORMAT)
        die("a bad file gave a status other than TG_ERR_FORMAT", tg_tape_error(t));
    else if (!strstr(tg_tape_error(t), "at byte"))
        die("a format error without a byte offset", tg_tape_error(t));
    tg_tape_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_paths();
    load(data, size);
    if (size >= 32) {
        uint8_t *p = malloc(size);
        memcpy(p, data, size);
        fixup(p, size);
        if (memcmp(p, data, size) != 0)
            load(p, size);
        free(p);
    }
    return 0;
}
