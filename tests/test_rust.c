/* tests/test_rust.c -- generated Rust, compiled with cargo, against the C
 * interpreter.
 *
 * For each of the four configurations (f64/f32 x std/no_std) ONE crate is
 * generated with tg_rust_builder; it holds
 *   - a kernel per opcode (every opcode with arity > 0, recorded generically
 *     with tg_op1/2/3 on input blocks, on TG_NO_FOLD | TG_NO_CSE tapes), and
 *     a kernel per opcode with literal operands (constant receivers, the
 *     internal constant-exponent pow);
 *   - every row of the "Derivatives at special points" table of docs/conventions.md
 *     (the shared tests/convrows.h):
 *     the expression, its gradient tape and its Hessian tape, recorded on a
 *     default tape and on a TG_NO_FOLD | TG_NO_CSE tape;
 *   - a Rosenbrock function with its gradient and Hessian tapes, a tape of
 *     more than 3000 instructions (split into #[inline(never)] parts), and a
 *     tape of exact constants.
 * A runner binary (src/bin/<crate>_run.rs, written here) reads lines
 * "kernel x1 x2 ..." of 16-hex-digit bit patterns and prints the outputs'
 * bit patterns; every kernel is evaluated at many points (generic ones and
 * +-0, +-Inf, NaN, subnormals, 1e200, domain edges) and compared with
 * tg_eval of the same tape:
 *   f64: bit for bit for kernels made only of + - * / neg sqrt, comparisons,
 *        select, min, max, abs, floor, ceil, round, trunc, fract, signum,
 *        azmul (derivative tapes included); within 2 ulp for one libm call
 *        (measured bounds for the few that exceed it, see LIBM_BOUND);
 *        a documented ulp bound for derivative tapes through libm;
 *   f32: against tg_eval on the f32-rounded inputs: exact (after rounding
 *        the C result to f32) for the exact ops, about 1e-6 relative for
 *        libm calls, a looser relative bound for derivative tapes.
 * The table's own values are checked on the Rust outputs as well.  Then
 * `cargo test` of the crate (its tests/kernels.rs) must pass.
 *
 * Also: determinism of the generated files (same process, fork, re-exec of
 * this binary), Cargo.toml dependencies, exact constants.
 *
 * Cargo runs offline (a .cargo/config.toml is written into every crate
 * replacing crates.io with Debian's /usr/share/cargo/registry), with
 * RUSTFLAGS="-D warnings", and one CARGO_TARGET_DIR under TG_BINARY_DIR so
 * that repeated runs are incremental.  Files are only rewritten when their
 * bytes change.  Without cargo the tests that need it are skipped. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convrows.h"

#define INF INFINITY

/* ============================================================ utilities */

typedef struct sbuf {
    char *buf;
    size_t len, cap;
} sbuf;

static void sb_vprintf(sbuf *s, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    cr_assert(n >= 0, "vsnprintf failed");
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(s->buf, cap);
        cr_assert(p != NULL, "out of memory");
        s->buf = p;
        s->cap = cap;
    }
    vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    s->len += (size_t)n;
}

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(s, fmt, ap);
    va_end(ap);
}

/* snprintf that must not truncate (paths, names). */
static void fmtp(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmtp(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < len, "string too long: %s...", buf);
}

/* snprintf that may truncate (messages). */
static void fmtt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmtt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static const char *sb_str(const sbuf *s)
{
    return s->buf ? s->buf : "";
}

/* Whole file, NUL-terminated (malloc'd), or NULL. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sbuf s = { 0 };
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (s.len + n + 1 > s.cap) {
            size_t cap = s.cap ? s.cap : 65536;
            while (cap < s.len + n + 1)
                cap *= 2;
            char *p = realloc(s.buf, cap);
            cr_assert(p != NULL, "out of memory");
            s.buf = p;
            s.cap = cap;
        }
        memcpy(s.buf + s.len, chunk, n);
        s.len += n;
    }
    fclose(f);
    if (!s.buf) {
        s.buf = malloc(1);
        cr_assert(s.buf != NULL);
    }
    s.buf[s.len] = '\0';
    if (len)
        *len = s.len;
    return s.buf;
}

static void mkdirs(const char *path)
{
    char buf[4096];
    cr_assert(strlen(path) < sizeof buf, "path too long: %s", path);
    fmtp(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            cr_assert(mkdir(buf, 0777) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
                      strerror(errno));
            *p = c;
            if (c == '\0')
                return;
        }
    }
}

/* Writes `text` to dir/rel unless the file already holds exactly these
 * bytes (so that cargo's mtime-based fingerprints stay valid and repeated
 * runs are incremental).  Writes through a temporary file and rename. */
static void write_if_changed(const char *dir, const char *rel, const char *text, size_t len)
{
    char path[4096], tmp[4200];
    fmtp(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdirs(path);
    *slash = '/';
    size_t old_len;
    char *old = read_file(path, &old_len);
    bool same = old && old_len == len && memcmp(old, text, len) == 0;
    free(old);
    if (same)
        return;
    fmtp(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    cr_assert(f != NULL, "cannot write %s: %s", tmp, strerror(errno));
    cr_assert(fwrite(text, 1, len, f) == len, "short write to %s", tmp);
    cr_assert(fclose(f) == 0, "cannot close %s", tmp);
    cr_assert(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
}

static void write_text(const char *dir, const char *rel, const char *text)
{
    write_if_changed(dir, rel, text, strlen(text));
}

/* Copies dir_from/rel to dir_to/rel (only if it changed). */
static void sync_file(const char *from, const char *to, const char *rel)
{
    char path[4096];
    fmtp(path, sizeof path, "%s/%s", from, rel);
    size_t len;
    char *text = read_file(path, &len);
    cr_assert(text != NULL, "generated file %s is missing", path);
    write_if_changed(to, rel, text, len);
    free(text);
}

/* The directory this test suite works in: $TG_BINARY_DIR/rust_test. */
static void work_root(char *buf, size_t len)
{
    const char *b = getenv("TG_BINARY_DIR");
    if (b && *b)
        fmtp(buf, len, "%s/rust_test", b);
    else
        fmtp(buf, len, "/tmp/tapegen_rust_test_%ld", (long)getuid());
    mkdirs(buf);
}

/* ---------------------------------------------------------------- cargo */

static bool is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* cargo from $TG_CARGO if set, else PATH, then $HOME/.cargo/bin, then
 * /root/.cargo/bin; it must answer --version.  false when there is none. */
static bool find_cargo(char *out, size_t len)
{
    /* TG_CARGO overrides the search (an unusable one skips the tests) */
    const char *forced = getenv("TG_CARGO");
    if (forced && *forced) {
        char cmd[4200];
        if (strchr(forced, '\'') || strlen(forced) >= len || !is_exec(forced))
            return false;
        fmtp(cmd, sizeof cmd, "'%s' --version >/dev/null 2>&1", forced);
        if (system(cmd) != 0)
            return false;
        fmtp(out, len, "%s", forced);
        return true;
    }
    char cand[8][4096];
    int nc = 0;
    const char *path = getenv("PATH");
    if (path) {
        const char *p = path;
        while (*p && nc < 6) {
            const char *e = strchr(p, ':');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n > 0 && n < 4000) {
                fmtp(cand[nc], sizeof cand[nc], "%.*s/cargo", (int)n, p);
                if (is_exec(cand[nc]))
                    nc++;
            }
            if (!e)
                break;
            p = e + 1;
        }
    }
    const char *home = getenv("HOME");
    if (home && *home && strlen(home) < 4000)
        fmtp(cand[nc++], sizeof cand[0], "%s/.cargo/bin/cargo", home);
    fmtp(cand[nc++], sizeof cand[0], "/root/.cargo/bin/cargo");
    for (int i = 0; i < nc; i++) {
        if (!is_exec(cand[i]) || strchr(cand[i], '\''))
            continue;
        char cmd[4200];
        fmtp(cmd, sizeof cmd, "'%s' --version >/dev/null 2>&1", cand[i]);
        if (system(cmd) == 0) {
            fmtp(out, len, "%s", cand[i]);
            return true;
        }
    }
    return false;
}

#define REQUIRE_CARGO(buf)                                                                  \
    do {                                                                                    \
        if (!find_cargo((buf), sizeof(buf)))                                                \
            cr_skip_test("cargo not found (searched $TG_CARGO, PATH, $HOME/.cargo/bin, " \
                         "/root/.cargo/bin): the generated Rust is NOT compiled or run");   \
    } while (0)

static const char CARGO_CONFIG[] = "[source.crates-io]\nreplace-with = \"debian\"\n"
                                   "[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n"
                                   "[net]\noffline = true\n";

/* Shows the end of a cargo log and the first few error/warning lines. */
static void show_log(const char *log, const char *what)
{
    char *text = read_file(log, NULL);
    if (!text) {
        cr_log_error("%s: no log at %s", what, log);
        return;
    }
    size_t n = strlen(text);
    const char *tail = n > 12000 ? text + n - 12000 : text;
    cr_log_error("%s failed; log %s (end):\n%s", what, log, tail);
    free(text);
}

/* The first line of the log starting with "error" or "warning" (for the
 * failure message). */
static void first_diag(const char *log, char *out, size_t len)
{
    fmtp(out, len, "(see log)");
    char *text = read_file(log, NULL);
    if (!text)
        return;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "error", 5) == 0 || strncmp(line, "warning", 7) == 0) {
            /* include the location line that follows */
            char *loc = nl ? nl + 1 : NULL;
            char *nl2 = loc ? strchr(loc, '\n') : NULL;
            if (nl2)
                *nl2 = '\0';
            fmtt(out, len, "%s | %s", line, loc ? loc : "");
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
}

/* Runs `cargo ARGS` in crate_dir; output to log.  Returns the exit status. */
static int run_cargo(const char *cargo, const char *crate_dir, const char *target,
                     const char *args, const char *log)
{
    char bindir[4096];
    fmtp(bindir, sizeof bindir, "%s", cargo);
    *strrchr(bindir, '/') = '\0';
    sbuf cmd = { 0 };
    sb_printf(&cmd,
              "cd '%s' && PATH='%s':\"$PATH\" CARGO_TARGET_DIR='%s' RUSTFLAGS='-D warnings' "
              "CARGO_TERM_COLOR=never CARGO_NET_OFFLINE=true '%s' %s --offline >'%s' 2>&1",
              crate_dir, bindir, target, cargo, args, log);
    time_t t0 = time(NULL);
    int st = system(cmd.buf);
    cr_log_info("cargo %s in %s: %lds, status %d", args, crate_dir, (long)(time(NULL) - t0), st);
    free(cmd.buf);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ============================================================== opcodes */

/* Ops whose Rust spelling is exact IEEE arithmetic: bit-for-bit agreement. */
static const char *const EXACT_OPS[] = { "add", "sub", "mul", "div", "neg", "sqrt", "lt",
                                         "le", "gt", "ge", "select", "min", "max", "abs",
                                         "floor", "ceil", "round", "trunc", "fract", "signum",
                                         "azmul" };

/* The Rust spelling column of the opcode table. */
static const char *const OP_RUST[TG_OP_COUNT] = {
#define OP(NAME, name, ar, fl, expr, rs) [TG_OP_##NAME] = rs,
#include "tapegen/ops.def"
};

/* Does the op's Rust spelling compare its operands (so that a NaN literal
 * operand meets rustc's invalid_nan_comparisons lint)? */
static bool op_spelt_as_comparison(int op)
{
    const char *r = OP_RUST[op];
    return r && (strstr(r, " < ") || strstr(r, " <= ") || strstr(r, " > ") || strstr(r, " >= ")
                 || strstr(r, " != ") || strstr(r, " == "));
}

static bool op_is_exact(int op)
{
    const char *n = tg_op_name((tg_opcode)op);
    for (size_t i = 0; i < sizeof EXACT_OPS / sizeof *EXACT_OPS; i++)
        if (n && strcmp(n, EXACT_OPS[i]) == 0)
            return true;
    return false;
}

/* Which opcodes a tape uses (through the public instruction view). */
static void tape_ops(const tg_tape *t, bool used[TG_OP_COUNT])
{
    memset(used, 0, TG_OP_COUNT * sizeof *used);
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_insn in;
        TU_OK(tg_tape_insn(t, i, &in));
        cr_assert((unsigned)in.op < TG_OP_COUNT, "instruction %zu: opcode %d", i, (int)in.op);
        used[in.op] = true;
    }
}

static bool tape_is_exact(const tg_tape *t)
{
    bool used[TG_OP_COUNT];
    tape_ops(t, used);
    for (int op = 0; op < TG_OP_COUNT; op++)
        if (used[op] && tg_op_arity((tg_opcode)op) > 0 && !op_is_exact(op))
            return false;
    return true;
}

/* ================================================== the table's rows */

/* docs/conventions.md's special-points table (tests/convrows.h), expanded once
 * for the whole run (kernels are made and checked per expression). */
static const cv_point *table_points(size_t *n)
{
    static cv_point *all;
    static size_t nall;
    if (!all)
        all = cv_all(&nall);
    *n = nall;
    return all;
}

static bool expr_has_points(int e)
{
    size_t np;
    const cv_point *P = table_points(&np);
    for (size_t p = 0; p < np; p++)
        if (P[p].e == e)
            return true;
    return false;
}

/* ============================================================ kernels */

enum kcls {
    K_EXACT,        /* bit for bit */
    K_LIBM,         /* every output is one libm call (per-op kernels) */
    K_COMPOSITE,    /* several operations, some through libm */
    K_CONSTS        /* constants only: bit for bit, NaN payloads included (f64) */
};

enum kpts {
    PTS_NONE,       /* no inputs: one evaluation */
    PTS_OP,         /* per-op kernels: all special values (and pairs, triples) */
    PTS_ROW,        /* table rows: the row's points plus generic ones */
    PTS_RANDOM,     /* n generic random values */
    PTS_CHAIN,      /* the long tape: inputs in (0, 1) */
    PTS_ONES        /* a few simple points */
};

typedef struct kern {
    char fn[96];                /* function name given to the builder */
    char full[200];             /* <crate>_<fn> */
    tg_tape *t;
    int cls, pts;
    int op;                     /* opcode of a per-op kernel, else -1 */
    bool rows[CV_NEXPR];        /* table expressions whose points it is evaluated at */
    int deriv;                  /* 0 value, 1 gradient, 2 Hessian */
    bool single;                /* every output is one operation on inputs/literals */
    size_t n, m, nib, nob;
    /* points */
    double *X;
    size_t npts;
    /* results */
    double *YC, *YR;            /* C and Rust, npts * m */
    bool *BR;                   /* per point: a branch guard failed (C: TG_ERR_BRANCH) */
} kern;

typedef struct cfg {
    bool f32, no_std;
    const char *crate;
} cfg;

typedef struct kset {
    kern *k;
    size_t n, cap;
} kset;

static kern *kadd(kset *s, const char *crate, const char *fn, tg_tape *t, int cls, int pts)
{
    TU_TAPE_OK(t);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->k = realloc(s->k, s->cap * sizeof *s->k);
        cr_assert(s->k != NULL);
    }
    kern *k = &s->k[s->n++];
    memset(k, 0, sizeof *k);
    fmtp(k->fn, sizeof k->fn, "%s", fn);
    fmtp(k->full, sizeof k->full, "%s_%s", crate, fn);
    k->t = t;
    k->cls = cls;
    k->pts = pts;
    k->op = -1;
    k->n = tg_num_inputs(t);
    k->m = tg_num_outputs(t);
    k->nib = tg_num_input_blocks(t);
    k->nob = tg_num_output_blocks(t);
    return k;
}

static void kset_free(kset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        tg_tape_free(s->k[i].t);
        free(s->k[i].X);
        free(s->k[i].YC);
        free(s->k[i].YR);
        free(s->k[i].BR);
    }
    free(s->k);
    memset(s, 0, sizeof *s);
}

/* Literal operands for the per-op kernels with constants (all exactly
 * representable in f32 too). */
static const double KCONST[] = { -2.5, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, -1.0, 1.5, 0.25,
                                 INF,  -INF, NAN };
#define NKCONST (sizeof KCONST / sizeof *KCONST)

static tg_var op_rec(int op, int ar, const tg_var *v)
{
    if (ar == 1)
        return tg_op1((tg_opcode)op, TG_OPND(v[0]));
    if (ar == 2)
        return tg_op2((tg_opcode)op, TG_OPND(v[0]), TG_OPND(v[1]));
    return tg_op3((tg_opcode)op, TG_OPND(v[0]), TG_OPND(v[1]), TG_OPND(v[2]));
}

/* Per-op kernels: "op_<name>" on input blocks a, b, c; "opk_<name>" on one
 * input x with literal operands in every position. */
/* nan_mode 0: every literal, except NaN for ops spelt as comparisons
 * (those are the NaN-literal suite's); 1: only NaN literals, only for ops
 * spelt as comparisons, and no input-only kernels. */
static void op_kernels(kset *s, const char *crate, int nan_mode)
{
    for (int op = 0; op < TG_OP_COUNT; op++) {
        int ar = tg_op_arity((tg_opcode)op);
        if (ar <= 0 || (tg_op_flags((tg_opcode)op) & (TG_OPF_EXTENDED | TG_OPF_GUARD)))
            continue;   /* a guard fails at most points: test(rust, branch_guards) */
        const char *name = tg_op_name((tg_opcode)op);
        cr_assert(name != NULL);
        int cls = op_is_exact(op) ? K_EXACT : K_LIBM;
        char fn[96];
        bool used[TG_OP_COUNT];
        bool cmp = op_spelt_as_comparison(op);
        if (nan_mode && !cmp)
            continue;
        bool direct = false;
        tg_tape *t;

        /* all operands inputs */
        if (!nan_mode) {
        fmtp(fn, sizeof fn, "op_%s", name);
        t = tu_tape(fn, TG_NO_FOLD | TG_NO_CSE);
        static const char *bn[3] = { "a", "b", "c" };
        tg_var v[3];
        for (int i = 0; i < ar; i++)
            v[i] = tg_input(t, bn[i]);
        tg_output(t, "y", op_rec(op, ar, v));
        TU_TAPE_OK(t);
        tape_ops(t, used);
        direct = used[op];
        if (direct) {
            kern *k = kadd(s, crate, fn, t, cls, PTS_OP);
            k->op = op;
            k->single = true;
        } else {
            tg_tape_free(t);    /* e.g. powk: recorded as pow on a variable exponent */
        }
        }

        /* literal operands (the NaN-literal suite: on a default tape too) */
        for (int pass = nan_mode ? 0 : 1; pass < 2; pass++) {
        fmtp(fn, sizeof fn, "%s_%s", nan_mode ? (pass ? "opnan_nf" : "opnan") : "opk", name);
        t = tu_tape(fn, pass ? TG_NO_FOLD | TG_NO_CSE : 0);
        tg_var x = tg_input(t, "x");
        tg_var y[3 * NKCONST + 1];
        size_t ny = 0;
        y[ny++] = op_rec(op, ar, (tg_var[]){ x, x, x });
        for (size_t c = 0; c < NKCONST; c++) {
            if (isnan(KCONST[c]) != (nan_mode != 0) && cmp)
                continue;
            if (nan_mode && !isnan(KCONST[c]))
                continue;
            tg_var k = tg_const(t, KCONST[c]);
            tg_var k2 = tg_const(t, 7.0);
            if (ar == 1) {
                y[ny++] = op_rec(op, 1, (tg_var[]){ k });
            } else if (ar == 2) {
                y[ny++] = op_rec(op, 2, (tg_var[]){ x, k });
                y[ny++] = op_rec(op, 2, (tg_var[]){ k, x });
            } else {
                y[ny++] = op_rec(op, 3, (tg_var[]){ x, k, k2 });
                y[ny++] = op_rec(op, 3, (tg_var[]){ k, x, k2 });
                y[ny++] = op_rec(op, 3, (tg_var[]){ k, k2, x });
            }
        }
        tg_output_vec(t, "y", ny, y);
        TU_TAPE_OK(t);
        tape_ops(t, used);
        cr_assert(nan_mode || direct || used[op],
                  "opcode %s (%d) is recorded neither on inputs nor with literal operands: "
                  "the Rust test cannot cover it", name, op);
        kern *k = kadd(s, crate, fn, t, cls, PTS_OP);
        k->op = op;
        k->single = true;   /* every output is op on an input and literals */
        }
    }
}

static void add_op_kernels(kset *s, const char *crate)
{
    op_kernels(s, crate, 0);
}

static void add_nan_literal_kernels(kset *s, const char *crate)
{
    op_kernels(s, crate, 1);
}

/* The kernel serving expression e of the table on a default (nf = 0) or
 * TG_NO_FOLD | TG_NO_CSE (nf = 1) tape: its value (d = 0), gradient (1) and
 * Hessian (2) tape.  Tapes with the same instructions share one kernel
 * (sqrt(x) is the same tape with and without folding, pow(x,3L) the same as
 * pow(x,3.0)): the same Rust code would only be compiled twice. */
static char row_kernel[CV_NEXPR][2][3][96];

/* The disassembly without its header line (which names the tape). */
static char *body_of(const tg_tape *t)
{
    char *d = tg_tape_disasm(t);
    cr_assert(d != NULL);
    char *nl = strchr(d, '\n');
    memmove(d, nl ? nl + 1 : d, strlen(nl ? nl + 1 : d) + 1);
    return d;
}

static void add_row_kernels(kset *s, const char *crate)
{
    char *bodies[CV_NEXPR * 6] = { 0 };
    size_t owners[CV_NEXPR * 6];   /* indices into s->k (which kadd reallocates) */
    size_t nb = 0;
    for (int e = 0; e < CV_NEXPR; e++) {
        const cv_expr *E = &cv_exprs[e];
        if (!expr_has_points(e))
            continue;
        for (int nf = 0; nf < 2; nf++) {
            char fn[96];
            fmtp(fn, sizeof fn, "%srow_%s", nf ? "nf_" : "", E->id);
            tg_tape *f = tu_tape(fn, nf ? TG_NO_FOLD | TG_NO_CSE : 0);
            tg_var x[3];
            tg_input_vec(f, "x", E->n, x);
            tg_output(f, "y", E->rec(f, x));
            TU_TAPE_OK(f);
            tg_tape *g = tg_gradient_tape(f, TG_ALL);
            tg_tape *h = tg_hessian_tape(f, TG_ALL);
            cr_assert(g && h);
            TU_TAPE_OK(g);
            TU_TAPE_OK(h);
            tg_tape *tt[3] = { f, g, h };
            static const char *suffix[3] = { "", "_grad", "_hess" };
            for (int d = 0; d < 3; d++) {
                char *body = body_of(tt[d]);
                kern *k = NULL;
                for (size_t b = 0; b < nb && !k; b++)
                    if (strcmp(bodies[b], body) == 0)
                        k = &s->k[owners[b]];
                if (k) {
                    free(body);
                    tg_tape_free(tt[d]);
                } else {
                    char kfn[96];
                    fmtp(kfn, sizeof kfn, "%s%s", fn, suffix[d]);
                    k = kadd(s, crate, kfn, tt[d],
                             tape_is_exact(tt[d]) ? K_EXACT : K_COMPOSITE, PTS_ROW);
                    k->deriv = d;
                    bodies[nb] = body;
                    owners[nb++] = (size_t)(k - s->k);
                }
                k->rows[e] = true;
                fmtp(row_kernel[e][nf][d], sizeof row_kernel[e][nf][d], "%s", k->fn);
            }
        }
    }
    for (size_t b = 0; b < nb; b++)
        free(bodies[b]);
}

static const double CONSTS[] = { 0.1, 1.0 / 3.0, -0.0, 1e-310, 1e300, NAN, INF, -INF, 5e-324,
                                 0.0, -2.5e-5, 1e15, 123456789.0, 0.30000000000000004,
                                 DBL_MAX, -DBL_MIN, 3.4028234663852886e38,
                                 1.401298464324817e-45, 1e-7, -1e22 };
#define NCONSTS (sizeof CONSTS / sizeof *CONSTS)

static double consts_value(size_t i)
{
    if (i < NCONSTS)
        return CONSTS[i];
    if (i == NCONSTS)
        return tu_from_bits(0x7ff8000000000123ull);      /* a NaN payload */
    return tu_from_bits(0xfff8000000000000ull);          /* -NaN */
}
#define NCONSTS_ALL (NCONSTS + 2)

static tg_tape *rosenbrock(const char *name, size_t n)
{
    tg_tape *t = tu_tape(name, 0);
    tg_var x[128];
    cr_assert(n <= 128);
    tg_input_vec(t, "x", n, x);
    tg_var s = tg_const(t, 0.0);
    for (size_t i = 0; i + 1 < n; i++) {
        tg_var a = tg_sub(x[i + 1], tg_pow(x[i], 2));
        tg_var b = tg_sub(1.0, x[i]);
        s = tg_add(s, tg_add(tg_mul(100.0, tg_pow(a, 2)), tg_pow(b, 2)));
    }
    tg_output(t, "f", s);
    TU_TAPE_OK(t);
    return t;
}

/* More than 3000 instructions of exact arithmetic: a contracting map
 * s <- 0.5 s (1 - s) + 0.3 + 0.1 y, with min/max/abs/select mixed in, so
 * that every step is a statement (s is used twice) and the kernel is split
 * into #[inline(never)] parts. */
#define CHAIN_STEPS 1100
static tg_tape *long_tape(void)
{
    tg_tape *t = tu_tape("long", 0);
    tg_var x = tg_input(t, "x"), y = tg_input(t, "y");
    tg_var c = tg_add(0.3, tg_mul(0.1, y));
    tg_var s = x;
    tg_var out[CHAIN_STEPS / 50 + 1];
    size_t no = 0;
    for (int k = 0; k < CHAIN_STEPS; k++) {
        s = tg_add(tg_mul(tg_mul(0.5, s), tg_sub(1.0, s)), c);
        if (k % 7 == 3)
            s = tg_max(s, tg_mul(0.25, tg_abs(x)));
        if (k % 11 == 5)
            s = tg_select(tg_lt(s, 0.4), tg_add(s, 0.01), tg_min(s, 0.9));
        if (k % 50 == 49)
            out[no++] = s;
    }
    tg_output_vec(t, "s", no, out);
    TU_TAPE_OK(t);
    cr_assert(tg_tape_size(t) > 3000, "long tape has only %zu instructions", tg_tape_size(t));
    return t;
}

/* f32 crates: literals multiplied in consts_mul are rounded to f32 first
 * (the f32 kernel computes with the rounded literal; 1e300 becomes inf). */
static bool g_f32;

static void add_other_kernels(kset *s, const char *crate)
{
    /* exact constants: straight to the outputs, and through x * c */
    tg_tape *t = tu_tape("consts", 0);
    tg_var y[NCONSTS_ALL];
    for (size_t i = 0; i < NCONSTS_ALL; i++)
        y[i] = tg_const(t, consts_value(i));
    tg_output_vec(t, "c", NCONSTS_ALL, y);
    kadd(s, crate, "consts", t, K_CONSTS, PTS_NONE)->single = true;

    t = tu_tape("consts_mul", TG_NO_FOLD | TG_NO_CSE);
    tg_var x = tg_input(t, "x");
    for (size_t i = 0; i < NCONSTS_ALL; i++)
        y[i] = tg_mul(x, tg_const(t, g_f32 ? (double)(float)consts_value(i) : consts_value(i)));
    tg_output_vec(t, "c", NCONSTS_ALL, y);
    kadd(s, crate, "consts_mul", t, K_EXACT, PTS_ONES)->single = true;

    /* Rosenbrock and its derivatives */
    tg_tape *f = rosenbrock("rosen", 10);
    tg_tape *g = tg_gradient_tape(f, TG_ALL), *h = tg_hessian_tape(f, TG_ALL);
    cr_assert(g && h);
    kadd(s, crate, "rosen", f, K_EXACT, PTS_RANDOM);
    kadd(s, crate, "rosen_grad", g, tape_is_exact(g) ? K_EXACT : K_COMPOSITE, PTS_RANDOM);
    kadd(s, crate, "rosen_hess", h, tape_is_exact(h) ? K_EXACT : K_COMPOSITE, PTS_RANDOM);
    cr_assert(tape_is_exact(g), "the Rosenbrock gradient tape should need no libm call");

    kadd(s, crate, "long", long_tape(), K_EXACT, PTS_CHAIN);
}

/* ============================================================== points */

static const double SPECIAL1[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 2.5, -2.5, 1.5, -1.5, 3.0, 0.1, -0.1, 8.0,
    INF, -INF, NAN, 5e-324, -5e-324, 1e-310, -1e-310, 2.2250738585072014e-308, 1e-200, -1e-200,
    1e-8, -1e-8, 1e200, -1e200, 1e300, -1e300, DBL_MAX, -DBL_MAX, 710.0, 709.78, -745.2, -800.0,
    20.0, 40.0, 88.0, 89.0, -88.0, -104.0, 0.49999999999999994, -0.49999999999999994,
    4503599627370495.5, 0.9999999999999999, 1.0000000000000002, -0.9999999999999999,
    -1.0000000000000002, 3.141592653589793, 1.5707963267948966, -1.5707963267948966, 100.0,
    1e10, -1e10, 1e-5, 0.7, 6.0, 27.0, -27.0, 1e20, 1e-40, 3.4028234663852886e38,
};
static const double SPECIAL2[] = { 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 2.5, -0.5, 3.0, INF,
                                   -INF, NAN, 5e-324, 1e-200, 1e200, -1e300, 1.5 };
static const double SPECIAL3[] = { 0.0, -0.0, 1.0, -2.0, 0.5, NAN, INF, -INF };
static const double ROWSPECIAL[] = { 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, 8.0, NAN,
                                     INF, -INF, 1e200, -1e200, 1e-200, 5e-324, 710.0, -800.0,
                                     0.1, 2.5, -2.5, 1e-310, 1.5 };
static const double ROWSPECIAL2[] = { 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, NAN, INF, -INF,
                                      1e200, 1e-200, 5e-324, 3.0 };

/* A generic value: moderate, unit, wide-range magnitude or half-integer. */
static double rnd_value(tu_rng *r)
{
    switch (tu_rng_below(r, 5)) {
    case 0:
        return tu_rng_range(r, -4.0, 4.0);
    case 1:
        return tu_rng_range(r, -1.0, 1.0);
    case 2: {
        double m = pow(10.0, tu_rng_range(r, -300.0, 300.0));
        return tu_rng_below(r, 2) ? m : -m;
    }
    case 3:
        return (double)((int)tu_rng_below(r, 41) - 20) * 0.5;
    default:
        return tu_rng_range(r, 0.0, 30.0);
    }
}

typedef struct pts {
    double *X;
    size_t n, cap, dim;
} pts;

static void pt_add(pts *p, const double *x, bool f32, bool moderate)
{
    double v[16];
    cr_assert(p->dim <= 16);
    for (size_t j = 0; j < p->dim; j++) {
        v[j] = f32 ? (double)(float)x[j] : x[j];
        /* f32 composite kernels: intermediate overflow/underflow at other
         * points than in f64 would be a legitimate difference */
        if (moderate && isfinite(v[j]) && v[j] != 0.0 && (fabs(v[j]) > 1e15 || fabs(v[j]) < 1e-15))
            return;
        if (moderate && fabs(v[j]) > 60.0 && isfinite(v[j]))
            return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        p->X = realloc(p->X, p->cap * (p->dim ? p->dim : 1) * sizeof *p->X);
        cr_assert(p->X != NULL);
    }
    memcpy(p->X + p->n * p->dim, v, p->dim * sizeof *v);
    p->n++;
}

static void make_points(kern *k, const cfg *c, uint64_t seed)
{
    pts p = { NULL, 0, 0, k->n };
    tu_rng r = { seed };
    bool f32 = c->f32;
    bool moderate = f32 && k->cls == K_COMPOSITE;
    double x[16] = { 0 };
    size_t n = k->n;
    switch (k->pts) {
    case PTS_NONE:
        pt_add(&p, x, f32, false);
        break;
    case PTS_OP:
        if (n == 1) {
            for (size_t i = 0; i < sizeof SPECIAL1 / sizeof *SPECIAL1; i++) {
                x[0] = SPECIAL1[i];
                pt_add(&p, x, f32, false);
            }
            for (int i = 0; i < 150; i++) {
                x[0] = rnd_value(&r);
                pt_add(&p, x, f32, false);
            }
        } else if (n == 2) {
            for (size_t i = 0; i < sizeof SPECIAL2 / sizeof *SPECIAL2; i++)
                for (size_t j = 0; j < sizeof SPECIAL2 / sizeof *SPECIAL2; j++) {
                    x[0] = SPECIAL2[i];
                    x[1] = SPECIAL2[j];
                    pt_add(&p, x, f32, false);
                }
            for (int i = 0; i < 200; i++) {
                x[0] = rnd_value(&r);
                x[1] = tu_rng_below(&r, 4) == 0 ? x[0] : rnd_value(&r);   /* ties too */
                pt_add(&p, x, f32, false);
            }
        } else {
            for (size_t i = 0; i < sizeof SPECIAL3 / sizeof *SPECIAL3; i++)
                for (size_t j = 0; j < sizeof SPECIAL3 / sizeof *SPECIAL3; j++)
                    for (size_t l = 0; l < sizeof SPECIAL3 / sizeof *SPECIAL3; l++) {
                        x[0] = SPECIAL3[i];
                        x[1] = SPECIAL3[j];
                        x[2] = SPECIAL3[l];
                        pt_add(&p, x, f32, false);
                    }
            for (int i = 0; i < 100; i++) {
                for (size_t j = 0; j < n; j++)
                    x[j] = rnd_value(&r);
                pt_add(&p, x, f32, false);
            }
        }
        break;
    case PTS_ROW: {
        size_t ntp;
        const cv_point *T = table_points(&ntp);
        for (size_t i = 0; i < ntp; i++)
            if (k->rows[T[i].e])
                pt_add(&p, T[i].x, f32, false);     /* the table's points, always */
        if (n == 1) {
            for (size_t i = 0; i < sizeof ROWSPECIAL / sizeof *ROWSPECIAL; i++) {
                x[0] = ROWSPECIAL[i];
                pt_add(&p, x, f32, moderate);
            }
        } else if (n == 2) {
            for (size_t i = 0; i < sizeof ROWSPECIAL2 / sizeof *ROWSPECIAL2; i++)
                for (size_t j = 0; j < sizeof ROWSPECIAL2 / sizeof *ROWSPECIAL2; j++) {
                    x[0] = ROWSPECIAL2[i];
                    x[1] = ROWSPECIAL2[j];
                    pt_add(&p, x, f32, moderate);
                }
        } else {
            for (int i = 0; i < 80; i++) {
                for (size_t j = 0; j < n; j++)
                    x[j] = ROWSPECIAL2[tu_rng_below(&r, sizeof ROWSPECIAL2 / sizeof *ROWSPECIAL2)];
                pt_add(&p, x, f32, moderate);
            }
        }
        for (int i = 0; i < 40; i++) {
            for (size_t j = 0; j < n; j++)
                x[j] = tu_rng_range(&r, -3.0, 3.0);
            pt_add(&p, x, f32, moderate);
        }
        for (int i = 0; i < 20; i++) {
            for (size_t j = 0; j < n; j++)
                x[j] = rnd_value(&r);
            pt_add(&p, x, f32, moderate);
        }
        break;
    }
    case PTS_RANDOM:
        for (int i = 0; i < 30; i++) {
            for (size_t j = 0; j < n; j++)
                x[j] = tu_rng_range(&r, -2.0, 2.0);
            pt_add(&p, x, f32, false);
        }
        for (size_t j = 0; j < n; j++)
            x[j] = 1.0;
        pt_add(&p, x, f32, false);
        for (size_t j = 0; j < n; j++)
            x[j] = 0.0;
        pt_add(&p, x, f32, false);
        x[n / 2] = NAN;
        pt_add(&p, x, f32, false);
        x[n / 2] = -INF;
        pt_add(&p, x, f32, false);
        break;
    case PTS_CHAIN:
        for (int i = 0; i < 30; i++) {
            x[0] = tu_rng_range(&r, 0.0, 1.0);
            x[1] = tu_rng_range(&r, 0.0, 1.0);
            pt_add(&p, x, f32, false);
        }
        break;
    case PTS_ONES:
        for (size_t i = 0; i < 5; i++) {
            static const double v[5] = { 1.0, -1.0, 2.0, 0.5, -0.0 };
            for (size_t j = 0; j < n; j++)
                x[j] = v[i];
            pt_add(&p, x, f32, false);
        }
        break;
    }
    k->X = p.X;
    k->npts = p.n;
    if (!k->X) {            /* dim 0 */
        k->X = malloc(sizeof(double));
        cr_assert(k->X != NULL);
    }
}

/* ============================================================== the runner */

static void upper(char *dst, const char *src, size_t len)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (char)toupper((unsigned char)src[i]);
    dst[i] = '\0';
}

/* src/bin/<crate>_run.rs: reads "kernel x..." lines (16-hex-digit f64 bit
 * patterns; f32 kernels get them converted exactly) and prints "kernel y..."
 * with the outputs as f64 bit patterns.  Uses the crate's INPUTS_, OUTPUTS_
 * and WORK_LEN_ constants. */
static char *runner_source(const cfg *c, const kset *s)
{
    const char *T = c->f32 ? "f32" : "f64";
    sbuf b = { 0 };
    sb_printf(&b,
              "// Written by tests/test_rust.c: evaluates the kernels of `%s` on bit\n"
              "// patterns read from stdin (\"kernel x1 x2 ...\", 16 hex digits of an f64\n"
              "// each) and prints \"kernel y1 y2 ...\" the same way.\n"
              "use std::io::{self, BufRead, Write};\n\nuse %s::*;\n\ntype T = %s;\n\n",
              c->crate, c->crate, T);
    sb_printf(&b,
              "fn blocks<'a>(x: &'a [T], spec: &[(&str, usize)]) -> Vec<&'a [T]> {\n"
              "    let mut v = Vec::new();\n    let mut rest = x;\n"
              "    for &(_, n) in spec {\n        let (a, b) = rest.split_at(n);\n"
              "        v.push(a);\n        rest = b;\n    }\n"
              "    assert!(rest.is_empty(), \"{} inputs too many\", rest.len());\n    v\n}\n\n"
              "fn blocks_mut<'a>(y: &'a mut [T], spec: &[(&str, usize)]) -> Vec<&'a mut [T]> {\n"
              "    let mut v = Vec::new();\n    let mut rest = y;\n"
              "    for &(_, n) in spec {\n"
              "        let (a, b) = std::mem::take(&mut rest).split_at_mut(n);\n"
              "        v.push(a);\n        rest = b;\n    }\n    assert!(rest.is_empty());\n    v\n}\n\n"
              "fn total(spec: &[(&str, usize)]) -> usize {\n    spec.iter().map(|b| b.1).sum()\n}\n\n"
              "fn call(name: &str, x: &[T]) -> Option<Vec<T>> {\n    match name {\n");
    for (size_t i = 0; i < s->n; i++) {
        const kern *k = &s->k[i];
        char U[200];
        upper(U, k->full, sizeof U);
        sb_printf(&b, "        \"%s\" => {\n", k->full);
        if (k->nib)
            sb_printf(&b, "            let i = blocks(x, INPUTS_%s);\n", U);
        else
            sb_printf(&b, "            blocks(x, INPUTS_%s);\n", U);
        sb_printf(&b,
                  "            let mut y = vec![0.0 as T; total(OUTPUTS_%s)];\n"
                  "            let mut work = vec![0.0 as T; WORK_LEN_%s];\n"
                  "            {\n                let mut o = blocks_mut(&mut y, OUTPUTS_%s).into_iter();\n"
                  "                %s(",
                  U, U, U, k->full);
        for (size_t j = 0; j < k->nib; j++)
            sb_printf(&b, "i[%zu], ", j);
        for (size_t j = 0; j < k->nob; j++)
            sb_printf(&b, "o.next().unwrap(), ");
        /* a branch guard that fails: None (printed as "branch") */
        sb_printf(&b, "&mut work).map_err(|e| assert_eq!(e, Error::Branch, \"{}\", e)).ok()?;\n"
                  "            }\n            Some(y)\n        }\n");
    }
    sb_printf(&b, "        _ => panic!(\"unknown kernel {}\", name),\n    }\n}\n\n");
    sb_printf(&b,
              "fn main() {\n    let stdin = io::stdin();\n    let stdout = io::stdout();\n"
              "    let mut out = io::BufWriter::new(stdout.lock());\n"
              "    for line in stdin.lock().lines() {\n        let line = line.unwrap();\n"
              "        let mut tok = line.split_whitespace();\n"
              "        let name = match tok.next() {\n            Some(n) => n,\n"
              "            None => continue,\n        };\n"
              "        let x: Vec<T> = tok\n"
              "            .map(|t| f64::from_bits(u64::from_str_radix(t, 16).unwrap())%s)\n"
              "            .collect();\n"
              "        write!(out, \"{}\", name).unwrap();\n"
              "        let y = match call(name, &x) {\n            Some(y) => y,\n"
              "            None => {\n                writeln!(out, \" branch\").unwrap();\n"
              "                continue;\n            }\n        };\n"
              "        for v in y {\n            write!(out, \" {:016x}\", %s.to_bits()).unwrap();\n        }\n"
              "        writeln!(out).unwrap();\n    }\n}\n",
              c->f32 ? " as f32" : "", c->f32 ? "(v as f64)" : "v");
    return b.buf;
}

/* ========================================================== comparisons */

/* Distance in f32 ulps of two values exactly representable as floats. */
static uint64_t ulp_diff_f32(double a, double b)
{
    if (isnan(a) || isnan(b))
        return UINT64_MAX;
    float fa = (float)a, fb = (float)b;
    if (fa == fb)
        return 0;
    if (isinf(fa) || isinf(fb))
        return UINT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &fa, 4);
    memcpy(&ib, &fb, 4);
    int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return (uint64_t)(la > lb ? la - lb : lb - la);
}

/* Largest ulp distance (f64, or f32 ulps in f32 mode) allowed for ONE libm
 * call, per configuration.  2 unless measured otherwise; every exception
 * is listed in the final report. */
typedef struct bound {
    const char *op;
    bool f32, no_std;
    uint64_t ulps;
    const char *why;
} bound;

static const bound LIBM_BOUND[] = {
    /* measured: glibc's cbrt (the C interpreter's) is 2.6 ulp from the true
     * value at x = 21.90724966886733 (0x4035e84183a9178e); Rust's (std and
     * the libm crate) is 0.4 ulp from it, 3 ulp from glibc's */
    { "cbrt", false, false, 3, "glibc cbrt is up to 2.6 ulp off; Rust's is correct" },
    { "cbrt", false, true, 3, "glibc cbrt is up to 2.6 ulp off; libm crate's is correct" },
    /* the partial-derivative ops are several libm calls each (issue 9):
     * the libm crate's hypot and pow/log each differ from glibc's by up
     * to an ulp, and the quotients carry both (measured: 4 and 3 ulp) */
    { "atan2dx", false, true, 8, "two hypot calls and two divisions (libm crate vs glibc)" },
    { "powdy", false, true, 4, "pow times log (libm crate vs glibc)" },
    { "powdx", false, true, 4, "pow times y (libm crate vs glibc)" },
    { "hypotdx", false, true, 4, "a quotient of two hypot calls (libm crate vs glibc)" },
};

static uint64_t libm_bound(const cfg *c, int op)
{
    const char *name = tg_op_name((tg_opcode)op);
    for (size_t i = 0; i < sizeof LIBM_BOUND / sizeof *LIBM_BOUND; i++)
        if (LIBM_BOUND[i].op && strcmp(LIBM_BOUND[i].op, name) == 0 && LIBM_BOUND[i].f32 == c->f32
            && LIBM_BOUND[i].no_std == c->no_std)
            return LIBM_BOUND[i].ulps;
    return 2;
}

/* Kernels of several operations (derivative tapes) through libm, f64: a
 * difference of an ulp in one libm call grows by the condition of what
 * follows, and by cancellation (the Hessian of hypot is y^2/h^3 computed as
 * 1/h - x^2/h^3).  Accepted: at most COMPOSITE_ULPS_F64 ulps, or an absolute
 * difference of at most COMPOSITE_EPS_F64 times the largest output of the
 * kernel at that point (the scale of the terms that cancelled).
 * f32 kernels of several operations, exact ones included, round at every
 * step while the C interpreter computes in double: relative difference at
 * most COMPOSITE_RTOL_F32 against the largest of 1, |inputs| and |outputs|
 * at that point.  Infinities and NaN must match exactly in every case. */
#define COMPOSITE_ULPS_F64 16
#define COMPOSITE_EPS_F64 (64 * DBL_EPSILON)
#define COMPOSITE_RTOL_F32 4e-6
#define LIBM_RTOL_F32 1e-6

typedef struct worst {
    uint64_t ulps;
    size_t nonfinite;       /* NaN or Inf against a different value */
    double x[3], c, r;
    size_t out;
    bool seen;
} worst;

static void fmt_point(char *buf, size_t len, const double *x, size_t n)
{
    int k = snprintf(buf, len, "(");
    for (size_t j = 0; j < n && j < 10 && (size_t)k < len; j++)
        k += snprintf(buf + k, len - (size_t)k, "%s%.17g [%016" PRIx64 "]", j ? ", " : "", x[j],
                      tu_bits(x[j]));
    if ((size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "%s)", n > 10 ? ", ..." : "");
}

/* ============================================================ one config */

static void log_long(const char *title, const char *text)
{
    /* cr_log_info truncates nothing, but keep lines readable */
    cr_log_info("%s\n%s", title, text);
}

static void check_table(const cfg *c, const kset *s, size_t *nfail);
static const kern *kfind(const kset *s, const char *fn);

typedef void (*add_fn)(kset *s, const char *crate);

static void add_all_kernels(kset *s, const char *crate)
{
    add_op_kernels(s, crate);
    add_row_kernels(s, crate);
    add_other_kernels(s, crate);
}

static void run_suite(bool f32, bool no_std, const char *suffix, add_fn add, bool table)
{
    char cargo[4096];
    REQUIRE_CARGO(cargo);
    cfg c = { f32, no_std, NULL };
    char crate[64];
    fmtp(crate, sizeof crate, "tgrt_%s_%s%s", f32 ? "f32" : "f64", no_std ? "nostd" : "std",
         suffix);
    c.crate = crate;

    char root[4096], stage[4400], dir[4400], target[4400];
    work_root(root, sizeof root);
    fmtp(stage, sizeof stage, "%s/gen/%s", root, crate);
    fmtp(dir, sizeof dir, "%s/crates/%s", root, crate);
    fmtp(target, sizeof target, "%s/target", root);
    mkdirs(target);
    cr_assert(!strchr(root, '\''), "work directory with a quote: %s", root);

    /* ---- kernels and the crate */
    /* static: still reachable (no leak report) when an assertion ends the
     * test early; every test runs in its own process */
    static kset s;
    memset(&s, 0, sizeof s);
    g_f32 = f32;
    add(&s, crate);
    /* in f32 only single operations can agree exactly with the C
     * interpreter (which computes in double): several exact operations in
     * a row round at every step in f32 */
    for (size_t i = 0; i < s.n; i++)
        if (f32 && s.k[i].cls == K_EXACT && !s.k[i].single)
            s.k[i].cls = K_COMPOSITE;

    tg_rust_options o = { crate, NULL, f32, no_std };
    tg_rust_builder *b = tg_rust_builder_new(&o);
    cr_assert(b != NULL);
    for (size_t i = 0; i < s.n; i++) {
        tg_status st = tg_rust_builder_add(b, s.k[i].t, s.k[i].fn);
        cr_assert(st == TG_OK, "tg_rust_builder_add(%s): %s: %s", s.k[i].fn, tg_status_str(st),
                  tg_rust_builder_error(b));
    }
    tg_status st = tg_rust_builder_write(b, stage);
    cr_assert(st == TG_OK, "tg_rust_builder_write: %s: %s", tg_status_str(st),
              tg_rust_builder_error(b));
    tg_rust_builder_free(b);
    static const char *files[] = { "Cargo.toml", "README.md", "src/lib.rs", "tests/kernels.rs" };
    for (size_t i = 0; i < 4; i++)
        sync_file(stage, dir, files[i]);
    write_text(dir, ".cargo/config.toml", CARGO_CONFIG);
    char *run_rs = runner_source(&c, &s);
    char binrel[256];
    fmtp(binrel, sizeof binrel, "src/bin/%s_run.rs", crate);
    write_text(dir, binrel, run_rs);
    free(run_rs);

    /* the generated source: the long kernel is split into parts */
    if (kfind(&s, "long")) {
        char path[4500];
        fmtp(path, sizeof path, "%s/src/lib.rs", dir);
        char *lib = read_file(path, NULL);
        cr_assert(lib != NULL);
        char needle[300];
        fmtp(needle, sizeof needle, "fn %s_long_part1(", crate);
        cr_expect(strstr(lib, needle) != NULL,
                  "the %zu-instruction kernel `%s_long` is not split into #[inline(never)] parts "
                  "(no `%s`)", tg_tape_size(s.k[s.n - 1].t), crate, needle);
        cr_expect(strstr(lib, "#[inline(never)]") != NULL);
        free(lib);
    }

    /* ---- build */
    char log[4600], diag[1000];
    fmtp(log, sizeof log, "%s/%s_build.log", root, crate);
    int rc = run_cargo(cargo, dir, target, "build --bins", log);
    if (rc != 0) {
        show_log(log, "cargo build");
        first_diag(log, diag, sizeof diag);
        cr_assert_fail("cargo build of the generated crate %s failed (status %d; RUSTFLAGS=-D "
                       "warnings): %s", dir, rc, diag);
    }

    /* ---- points, C values, Rust values */
    sbuf in = { 0 };
    for (size_t i = 0; i < s.n; i++) {
        kern *k = &s.k[i];
        make_points(k, &c, 0x5eed0000u + i * 7919u);
        k->YC = calloc(k->npts * k->m + 1, sizeof *k->YC);
        k->YR = calloc(k->npts * k->m + 1, sizeof *k->YR);
        k->BR = calloc(k->npts + 1, sizeof *k->BR);
        cr_assert(k->YC && k->YR && k->BR);
        for (size_t p = 0; p < k->npts; p++) {
            const double *x = k->X + p * k->n;
            tg_status st_ = tg_eval(k->t, x, k->YC + p * k->m);
            k->BR[p] = st_ == TG_ERR_BRANCH;    /* guarded tapes: Rust must say Branch */
            if (!k->BR[p])
                TU_OK(st_);
            sb_printf(&in, "%s", k->full);
            for (size_t j = 0; j < k->n; j++)
                sb_printf(&in, " %016" PRIx64, tu_bits(x[j]));
            sb_printf(&in, "\n");
        }
    }
    char inpath[4600], outpath[4600], errpath[4600];
    fmtp(inpath, sizeof inpath, "%s/%s_points.txt", root, crate);
    fmtp(outpath, sizeof outpath, "%s/%s_values.txt", root, crate);
    fmtp(errpath, sizeof errpath, "%s/%s_run.log", root, crate);
    {
        FILE *f = fopen(inpath, "wb");
        cr_assert(f != NULL);
        cr_assert(fwrite(in.buf, 1, in.len, f) == in.len);
        fclose(f);
    }
    free(in.buf);
    {
        sbuf cmd = { 0 };
        sb_printf(&cmd, "'%s/debug/%s_run' <'%s' >'%s' 2>'%s'", target, crate, inpath, outpath,
                  errpath);
        int st2 = system(cmd.buf);
        free(cmd.buf);
        if (st2 != 0)
            show_log(errpath, "the runner");
        cr_assert(st2 == 0, "the runner %s/debug/%s_run failed (status %d), see %s", target,
                  crate, st2, errpath);
    }
    char *out = read_file(outpath, NULL);
    cr_assert(out != NULL);
    {
        char *line = out;
        for (size_t i = 0; i < s.n; i++) {
            kern *k = &s.k[i];
            for (size_t p = 0; p < k->npts; p++) {
                cr_assert(line && *line, "runner output ends early at kernel %s point %zu",
                          k->full, p);
                char *nl = strchr(line, '\n');
                cr_assert(nl != NULL, "runner output: unterminated line");
                *nl = '\0';
                char *tok = strtok(line, " ");
                cr_assert(tok && strcmp(tok, k->full) == 0, "runner output: expected %s, got %s",
                          k->full, tok ? tok : "(nothing)");
                char *save_ = nl + 1;
                tok = strtok(NULL, " ");
                bool rbr = tok && strcmp(tok, "branch") == 0;
                cr_expect_eq(rbr, k->BR[p], "%s point %zu: Rust %s, the C interpreter %s",
                             k->full, p, rbr ? "Err(Error::Branch)" : "a value",
                             k->BR[p] ? "TG_ERR_BRANCH" : "a value");
                if (rbr || k->BR[p]) {  /* nothing to compare: the outputs agree trivially */
                    memcpy(k->YR + p * k->m, k->YC + p * k->m, k->m * sizeof *k->YR);
                    line = save_;
                    continue;
                }
                for (size_t j = 0; j < k->m; j++) {
                    if (j)
                        tok = strtok(NULL, " ");
                    cr_assert(tok != NULL, "runner output for %s: %zu values, %zu expected",
                              k->full, j, k->m);
                    k->YR[p * k->m + j] = tu_from_bits(strtoull(tok, NULL, 16));
                }
                cr_assert(strtok(NULL, " ") == NULL, "runner output for %s: too many values",
                          k->full);
                line = nl + 1;
            }
        }
    }
    free(out);

    /* ---- compare */
    size_t nfail = 0, ncmp = 0, nshown = 0;
    worst wop[TG_OP_COUNT];
    memset(wop, 0, sizeof wop);
    sbuf comp = { 0 };          /* worst composite kernels */
    double comp_worst_all = 0;
    double *kmetric = calloc(s.n + 1, sizeof *kmetric);   /* per kernel, for the report */
    char **kline = calloc(s.n + 1, sizeof *kline);
    cr_assert(kmetric && kline);
    for (size_t i = 0; i < s.n; i++) {
        kern *k = &s.k[i];
        worst wk = { 0 };
        double wrel = 0.0;
        for (size_t p = 0; p < k->npts; p++) {
            const double *x = k->X + p * k->n;
            for (size_t j = 0; j < k->m; j++) {
                double yc = k->YC[p * k->m + j], yr = k->YR[p * k->m + j];
                double want = f32 ? (double)(float)yc : yc;
                bool ok;
                uint64_t u = 0;
                const char *rule;
                ncmp++;
                if (k->cls == K_EXACT || (k->cls == K_CONSTS && f32)) {
                    ok = tu_same_bits_nan(yr, want);
                    rule = "bit for bit";
                } else if (k->cls == K_CONSTS) {
                    ok = tu_same_bits(yr, want);
                    rule = "bit for bit, NaN payload included";
                } else if (k->cls == K_LIBM) {
                    bool both_nan = isnan(yr) && isnan(want);
                    u = both_nan ? 0 : f32 ? ulp_diff_f32(yr, want) : tu_ulp_diff(yr, want);
                    uint64_t lim = libm_bound(&c, k->op);
                    ok = u <= lim;
                    if (f32 && !ok && u != UINT64_MAX)
                        ok = tu_close(yr, want, LIBM_RTOL_F32, 0.0);
                    rule = f32 ? "f32 ulp bound or 1e-6 relative" : "ulp bound";
                    worst *w = &wop[k->op];
                    if (u == UINT64_MAX)
                        w->nonfinite++;
                    if (u != UINT64_MAX && (!w->seen || u > w->ulps)) {
                        w->seen = true;
                        w->ulps = u;
                        memcpy(w->x, x, k->n * sizeof *x);
                        w->c = want;
                        w->r = yr;
                        w->out = j;
                    }
                    w->seen = true;
                } else {    /* composite */
                    bool both_nan = isnan(yr) && isnan(want);
                    bool finite = isfinite(yr) && isfinite(want);
                    double scale = 0.0;     /* largest finite output at this point */
                    for (size_t jj = 0; jj < k->m; jj++) {
                        double v = k->YC[p * k->m + jj];
                        if (isfinite(v) && fabs(v) > scale)
                            scale = fabs(v);
                    }
                    if (f32) {
                        scale = fmax(scale, 1.0);
                        for (size_t jj = 0; jj < k->n; jj++)
                            if (isfinite(x[jj]))
                                scale = fmax(scale, fabs(x[jj]));
                        double rel = finite ? fabs(yr - want) / scale : 0.0;
                        ok = both_nan || (finite && rel <= COMPOSITE_RTOL_F32)
                          || tu_same_bits(yr, want);
                        if (rel > wrel)
                            wrel = rel;
                        rule = "composite f32 bound";
                    } else {
                        u = both_nan ? 0 : tu_ulp_diff(yr, want);
                        ok = u <= COMPOSITE_ULPS_F64
                          || (finite && fabs(yr - want) <= COMPOSITE_EPS_F64 * scale);
                        rule = "composite ulp bound";
                        if (u != UINT64_MAX && u > wk.ulps) {
                            wk.ulps = u;
                            memcpy(wk.x, x, k->n * sizeof *x);
                            wk.c = want;
                            wk.r = yr;
                            wk.out = j;
                        }
                    }
                }
                if (!ok) {
                    nfail++;
                    if (nshown++ < 40) {
                        char pt[600];
                        fmt_point(pt, sizeof pt, x, k->n);
                        cr_expect(0,
                                  "[%s] kernel %s output %zu at x = %s: C %s, Rust %s (%s; %" PRIu64
                                  " ulp)",
                                  crate, k->full, j, pt, tu_d(want).s, tu_d(yr).s, rule, u);
                    }
                }
            }
        }
        if (k->cls == K_COMPOSITE) {
            sbuf l = { 0 };
            if (f32) {
                sb_printf(&l, "  %-28s %.2e of max(1, |x|, |y|)\n", k->fn, wrel);
                kmetric[i] = wrel;
            } else {
                char pt[600];
                fmt_point(pt, sizeof pt, wk.x, k->n);
                sb_printf(&l, "  %-28s %4" PRIu64 " ulp (output %zu at %s: C %s, Rust %s)\n",
                          k->fn, wk.ulps, wk.out, pt, tu_d(wk.c).s, tu_d(wk.r).s);
                kmetric[i] = (double)wk.ulps;
            }
            kline[i] = l.buf;
            if (kmetric[i] > comp_worst_all)
                comp_worst_all = kmetric[i];
        }
    }
    for (int top = 0; top < 12; top++) {    /* the worst twelve, worst first */
        size_t best = s.n;
        for (size_t i = 0; i < s.n; i++)
            if (kline[i] && kmetric[i] > 0 && (best == s.n || kmetric[i] > kmetric[best]))
                best = i;
        if (best == s.n)
            break;
        sb_printf(&comp, "%s", kline[best]);
        free(kline[best]);
        kline[best] = NULL;
    }
    for (size_t i = 0; i < s.n; i++)
        free(kline[i]);
    free(kline);
    free(kmetric);
    cr_expect(nfail == 0, "[%s] %zu of %zu comparisons between Rust and the C interpreter failed",
              crate, nfail, ncmp);

    /* report: worst ulp per libm op */
    sbuf rep = { 0 };
    for (int op = 0; op < TG_OP_COUNT; op++) {
        if (!wop[op].seen)
            continue;
        worst *w = &wop[op];
        char pt[300];
        fmt_point(pt, sizeof pt, w->x, 1);
        sb_printf(&rep, "  %-7s %3" PRIu64 " %s ulp (bound %" PRIu64 ")", tg_op_name((tg_opcode)op),
                  w->ulps, f32 ? "f32" : "f64", libm_bound(&c, op));
        if (w->nonfinite)
            sb_printf(&rep, " + %zu NaN/Inf mismatches", w->nonfinite);
        if (w->ulps)
            sb_printf(&rep, "  e.g. output %zu at x0 = %s: C %s, Rust %s", w->out, pt,
                      tu_d(w->c).s, tu_d(w->r).s);
        sb_printf(&rep, "\n");
    }
    for (size_t i = 0; i < sizeof LIBM_BOUND / sizeof *LIBM_BOUND; i++)
        if (LIBM_BOUND[i].f32 == f32 && LIBM_BOUND[i].no_std == no_std)
            sb_printf(&rep, "  bound of %s raised to %" PRIu64 " ulp: %s\n", LIBM_BOUND[i].op,
                      LIBM_BOUND[i].ulps, LIBM_BOUND[i].why);
    char title[300];
    fmtt(title, sizeof title, "[%s] %zu kernels, %zu comparisons; worst ulp per libm op:",
             crate, s.n, ncmp);
    log_long(title, sb_str(&rep));
    if (f32)
        fmtt(title, sizeof title,
             "[%s] kernels of several operations, the worst (bound %.0e of max(1, |x|, |y|)):",
             crate, COMPOSITE_RTOL_F32);
    else
        fmtt(title, sizeof title,
             "[%s] kernels of several operations through libm, the worst %.0f ulp (bound %d ulp "
             "or %.0f eps of max |y|):",
             crate, comp_worst_all, COMPOSITE_ULPS_F64, COMPOSITE_EPS_F64 / DBL_EPSILON);
    log_long(title, sb_str(&comp));
    free(rep.buf);
    free(comp.buf);

    /* exact constants (also among the comparisons above) */
    const kern *kc = kfind(&s, "consts");
    if (kc) {
        size_t exact = 0;
        for (size_t j = 0; j < kc->m; j++) {
            double want = f32 ? (double)(float)kc->YC[j] : kc->YC[j];
            exact += f32 ? tu_same_bits_nan(kc->YR[j], want) : tu_same_bits(kc->YR[j], want);
        }
        cr_expect(exact == kc->m, "[%s] only %zu of %zu literal constants came out of Rust bit for "
                  "bit", crate, exact, kc->m);
        cr_log_info("[%s] %zu of %zu literal constants (0.1, 1/3, -0.0, 1e-310, 1e300, NaN, "
                    "+-Inf, 5e-324, NaN payloads, ...) come out of Rust bit for bit%s", crate,
                    exact, kc->m, f32 ? " (after rounding to f32)" : "");
    }

    /* the table itself, on the Rust values */
    if (table)
        check_table(&c, &s, &nfail);

    /* ---- cargo test: the crate's own tests/kernels.rs */
    fmtp(log, sizeof log, "%s/%s_test.log", root, crate);
    rc = run_cargo(cargo, dir, target, "test", log);
    if (rc != 0) {
        show_log(log, "cargo test");
        first_diag(log, diag, sizeof diag);
    }
    cr_expect(rc == 0, "cargo test of the generated crate %s failed (status %d): %s", dir, rc,
              rc ? diag : "");
    if (rc == 0) {
        char *t = read_file(log, NULL);
        cr_expect(t && strstr(t, "test result: ok"), "cargo test ran no test?");
        free(t);
    }
    kset_free(&s);
}

/* Finds the kernel named fn. */
static const kern *kfind(const kset *s, const char *fn)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->k[i].fn, fn) == 0)
            return &s->k[i];
    return NULL;
}

/* The Rust value of kernel k at point x (one of its points). */
static const double *rust_at(const kern *k, const double *x)
{
    for (size_t p = 0; p < k->npts; p++) {
        bool same = true;
        for (size_t j = 0; j < k->n; j++)
            same &= tu_same_bits(k->X[p * k->n + j], x[j]);
        if (same)
            return k->YR + p * k->m;
    }
    return NULL;
}

/* Every row of the table, on the Rust kernels (default and no-fold tapes):
 * value, gradient and (where stated) Hessian.  f32 crates check the points
 * that are representable and far from f32 overflow/underflow. */
static void check_table(const cfg *c, const kset *s, size_t *nfail)
{
    double rtol = c->f32 ? 2e-6 : CV_RTOL;
    size_t nchk = 0, np;
    const cv_point *T = table_points(&np);
    for (size_t r = 0; r < np; r++) {
        const cv_point *P = &T[r];
        const cv_expr *E = &cv_exprs[P->e];
        for (int nf = 0; nf < 2; nf++) {
            double x[3];
            bool skip = false;
            for (size_t j = 0; j < E->n; j++) {
                x[j] = c->f32 ? (double)(float)P->x[j] : P->x[j];
                if (c->f32 && isfinite(P->x[j]) && P->x[j] != 0.0
                    && (fabs(P->x[j]) > 1e30 || fabs(P->x[j]) < 1e-30 || x[j] != P->x[j]))
                    skip = true;
            }
            if (skip)
                continue;
            char where[300], pt[200];
            fmt_point(pt, sizeof pt, x, E->n);
            fmtt(where, sizeof where, "[%s] %s (%s tape) at %s", c->crate, P->label,
                 nf ? "no-fold" : "default", pt);
            const kern *kf = kfind(s, row_kernel[P->e][nf][0]);
            const kern *kg = kfind(s, row_kernel[P->e][nf][1]);
            const kern *kh = kfind(s, row_kernel[P->e][nf][2]);
            cr_assert(kf && kg && kh, "%s: no kernel", where);
            const double *y = rust_at(kf, x), *g = rust_at(kg, x), *h = rust_at(kh, x);
            cr_assert(y && g && h, "%s: point not evaluated", where);
            nchk++;
            if (!tu_close(y[0], P->value, rtol, 0.0)
                || (P->sign && signbit(y[0]) != signbit(P->value))) {
                (*nfail)++;
                cr_expect(0, "%s: Rust value %s, the table says %s", where, tu_d(y[0]).s,
                          tu_d(P->value).s);
            }
            for (size_t j = 0; j < E->n; j++)
                if (!tu_close(g[j], P->grad[j], rtol, 0.0)) {
                    (*nfail)++;
                    cr_expect(0, "%s: Rust d/dx%zu = %s, the table says %s", where, j,
                              tu_d(g[j]).s, tu_d(P->grad[j]).s);
                }
            if (P->has_hess)
                for (size_t j = 0; j < E->n * E->n; j++)
                    if (!tu_close(h[j], P->hess[j], rtol, 0.0)) {
                        (*nfail)++;
                        cr_expect(0, "%s: Rust Hessian[%zu] = %s, the table says %s", where, j,
                                  tu_d(h[j]).s, tu_d(P->hess[j]).s);
                    }
        }
    }
    cr_log_info("[%s] the special-points table: %zu row points checked on the Rust kernels",
                c->crate, nchk);
}

Test(rust, f64_std, .timeout = 590) { run_suite(false, false, "", add_all_kernels, true); }
Test(rust, f64_no_std, .timeout = 590) { run_suite(false, true, "", add_all_kernels, true); }
Test(rust, f32_std, .timeout = 590) { run_suite(true, false, "", add_all_kernels, true); }
Test(rust, f32_no_std, .timeout = 590) { run_suite(true, true, "", add_all_kernels, true); }

/* Comparisons and select against a NaN literal (x < NaN is not folded: it
 * is 0 for every x, but so is the generated code) must build without
 * warnings too: rustc's invalid_nan_comparisons lint fires on `x < f64::NAN`. */
Test(rust, nan_literal_operands, .timeout = 590)
{
    run_suite(false, false, "_nanlit", add_nan_literal_kernels, false);
}

/* Zero-size blocks (issue 9, defect 8): empty input and output blocks are
 * zero-length slices, derivative tapes with respect to an empty block have
 * empty outputs and an empty tangent block, a tape without input scalars
 * still evaluates; the crate builds without warnings and its own tests
 * (which shorten the first non-empty input) pass. */
static tg_tape *empty_block_tape(void)
{
    tg_tape *f = tu_tape("empty", 0);
    tg_var lam[1], x[2];
    tg_input_vec(f, "lam", 0, lam);
    tg_input_vec(f, "x", 2, x);
    tg_input_vec(f, "mu", 0, NULL);
    tg_output_vec(f, "g", 0, NULL);
    tg_output(f, "f", tg_add(tg_mul(x[0], tg_sin(x[1])), tg_dot(0, lam, lam)));
    tg_output_vec(f, "z", 0, NULL);
    TU_TAPE_OK(f);
    return f;
}

static void add_empty_block_kernels(kset *s, const char *crate)
{
    tg_tape *f = empty_block_tape();
    kadd(s, crate, "f", f, K_COMPOSITE, PTS_RANDOM);
    kadd(s, crate, "f_grad", tg_gradient_tape(f, TG_ALL), K_COMPOSITE, PTS_RANDOM);
    kadd(s, crate, "f_jvp_lam", tg_jvp_tape(f, 0), K_EXACT, PTS_RANDOM);
    kadd(s, crate, "f_hess_mu", tg_hessian_tape(f, 2), K_EXACT, PTS_RANDOM);
    kadd(s, crate, "f_vjp", tg_vjp_tape(f, TG_ALL), K_COMPOSITE, PTS_RANDOM);
    kadd(s, crate, "f_jac_x", tg_jacobian_tape(f, 1), K_COMPOSITE, PTS_RANDOM);
    tg_tape *c = tu_tape("consts", 0);
    tg_input_vec(c, "none", 0, NULL);
    tg_output_vec(c, "e", 0, NULL);
    tg_output(c, "k", tg_add(tg_const(c, 2.5), tg_sum(0, NULL)));
    kadd(s, crate, "no_inputs", c, K_EXACT, PTS_NONE);
    /* blocks named like the kernel itself and like the crate tests'
     * helpers: the generated tests must still compile (their locals are
     * the block names, so they call the kernel by its path) */
    char clash[96];
    fmtp(clash, sizeof clash, "%s_clash", crate);
    tg_tape *k = tu_tape("clash", 0);
    tg_var u = tg_input(k, clash), w = tg_input(k, "close");
    tg_output(k, "res", tg_mul(u, tg_exp(w)));
    tg_output(k, "want", tg_sub(u, w));
    kadd(s, crate, "clash", k, K_COMPOSITE, PTS_RANDOM);
}

Test(rust, zero_size_blocks, .timeout = 590)
{
    run_suite(false, false, "_empty", add_empty_block_kernels, false);
}

/* Branch guards (issue 13): a piecewise function recorded on each side of
 * its branch (an if on values, tg_branch), with its derivative tapes (which
 * carry the guards).  At random points on both sides the Rust kernels must
 * return Err(Error::Branch) exactly where tg_eval says TG_ERR_BRANCH, and
 * the C interpreter's values elsewhere; the crate's own tests check that
 * nothing is written on Err(Error::Branch). */
static tg_tape *guarded_tape(double x0)
{
    tg_tape *t = tu_tape(x0 < 1.0 ? "guard_lo" : "guard_hi", 0);
    tg_var x = tg_input_at(t, "x", x0), p = tg_input_at(t, "p", 0.5);
    tg_var y;
    if (tg_branch(tg_lt(x, 1.0)))
        y = tg_add(tg_mul(p, tg_mul(x, x)), tg_sin(x));
    else
        y = tg_add(tg_sub(tg_mul(tg_mul(2.0, p), x), p), tg_cos(x));
    tg_output(t, "y", y);
    TU_TAPE_OK(t);
    return t;
}

static void add_guard_kernels(kset *s, const char *crate)
{
    for (int side = 0; side < 2; side++) {
        tg_tape *f = guarded_tape(side ? 2.0 : 0.5);
        const char *nm = side ? "hi" : "lo";
        char fn[32];
        fmtp(fn, sizeof fn, "pw_%s_grad", nm);
        kadd(s, crate, fn, tg_gradient_tape(f, TG_ALL), K_COMPOSITE, PTS_RANDOM);
        fmtp(fn, sizeof fn, "pw_%s_hess", nm);
        kadd(s, crate, fn, tg_hessian_tape(f, TG_ALL), K_COMPOSITE, PTS_RANDOM);
        fmtp(fn, sizeof fn, "pw_%s", nm);
        kadd(s, crate, fn, f, K_COMPOSITE, PTS_RANDOM);
    }
}

Test(rust, branch_guards, .timeout = 590)
{
    run_suite(false, false, "_guard", add_guard_kernels, false);
}

/* Guards inside loop bodies: a map of the piecewise body over 3
 * applications (and its gradient tape, a map of the body's guarded VJP)
 * returns Err(Error::Branch) exactly where tg_eval says TG_ERR_BRANCH. */
static void add_loop_guard_kernels(kset *s, const char *crate)
{
    for (int side = 0; side < 2; side++) {
        tg_tape *b = guarded_tape(side ? 2.0 : 0.5), *f = tu_tape(side ? "lg_hi" : "lg_lo", 0);
        tg_var xs[3], p, ys[3];
        tg_input_vec(f, "xs", 3, xs);
        p = tg_input(f, "p");
        tg_map(f, b, 3, xs, &p, ys);
        tg_output(f, "y", tg_sum(3, ys));
        TU_TAPE_OK(f);
        tg_tape_free(b);
        const char *nm = side ? "hi" : "lo";
        char fn[32];
        fmtp(fn, sizeof fn, "lpw_%s_grad", nm);
        kadd(s, crate, fn, tg_gradient_tape(f, TG_ALL), K_COMPOSITE, PTS_RANDOM);
        fmtp(fn, sizeof fn, "lpw_%s", nm);
        kadd(s, crate, fn, f, K_COMPOSITE, PTS_RANDOM);
    }
}

Test(rust, loop_branch_guards, .timeout = 590)
{
    run_suite(false, false, "_lguard", add_loop_guard_kernels, false);
}

/* ======================================================== determinism */

/* Generation for the determinism checks, written without Criterion so that
 * it can also run in a re-executed copy of this binary (before main).
 * Returns 0 on success. */
static int det_write(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* A tape with many ops and CSE opportunities, so that derivative tapes are
 * built through the hash-consing recorder. */
static tg_tape *det_tape(void)
{
    tg_tape *t = tg_tape_new("det_f");
    if (!t)
        return NULL;
    tg_var x[4], p = tg_input(t, "p");
    tg_input_vec(t, "x", 4, x);
    tg_var s = tg_mul(p, tg_sum(4, x));
    s = tg_add(s, tg_sin(tg_mul(x[0], x[1])));
    s = tg_add(s, tg_div(tg_exp(tg_neg(x[2])), tg_add(1.0, tg_mul(x[3], x[3]))));
    s = tg_add(s, tg_pow(tg_hypot(x[0], x[2]), 1.5));
    s = tg_add(s, tg_select(tg_gt(x[1], 0.5), tg_log1p(tg_abs(x[1])), tg_atan2(x[3], p)));
    s = tg_add(s, tg_max(tg_cbrt(x[2]), tg_min(x[0], tg_tanh(x[3]))));
    s = tg_add(s, tg_erf(tg_mul(0.1, x[0])));
    s = tg_add(s, tg_mul(tg_norm2(4, x), tg_fract(tg_mul(3.7, p))));
    s = tg_add(s, tg_pow(x[1], x[0]));
    tg_output(t, "f", s);
    return t;
}

/* Writes, for each of the four configurations: tg_rust_source of f and of
 * its Hessian tape, tg_rust_crate of its gradient tape, and a builder crate
 * with the derivative bundle of f. */
static int det_generate(const char *root)
{
    int rc = 0;
    tg_tape *f = det_tape();
    tg_tape *g = f ? tg_gradient_tape(f, TG_ALL) : NULL;
    tg_tape *h = f ? tg_hessian_tape(f, 1) : NULL;
    if (!f || !g || !h || tg_tape_status(f) || tg_tape_status(g) || tg_tape_status(h))
        rc = -1;
    for (int c = 0; c < 4 && rc == 0; c++) {
        tg_rust_options o = { NULL, NULL, c & 1, (c >> 1) & 1 };
        char dir[4096], rel[64], sub[4200];
        char *src = NULL;
        if (snprintf(dir, sizeof dir, "%s/cfg%d", root, c) >= (int)sizeof dir)
            rc = -1;
        const tg_tape *tt[2] = { f, h };
        for (int i = 0; i < 2 && rc == 0; i++) {
            size_t wl;
            if (tg_rust_source(tt[i], &o, &src, &wl) != TG_OK)
                rc = -1;
            snprintf(rel, sizeof rel, "source%d.rs", i);
            if (rc == 0)
                rc = det_write(dir, rel, src);
            free(src);
            src = NULL;
        }
        if (snprintf(sub, sizeof sub, "%s/crate", dir) >= (int)sizeof sub)
            rc = -1;
        if (rc == 0 && tg_rust_crate(g, &o, sub) != TG_OK)
            rc = -1;
        tg_rust_options ob = { "det_bundle", NULL, c & 1, (c >> 1) & 1 };
        tg_rust_builder *b = tg_rust_builder_new(&ob);
        if (!b)
            rc = -1;
        if (rc == 0 && tg_rust_bundle(b, f) != TG_OK)
            rc = -1;
        if (rc == 0 && tg_rust_builder_add(b, h, "hess_p") != TG_OK)
            rc = -1;
        if (snprintf(sub, sizeof sub, "%s/bundle", dir) >= (int)sizeof sub)
            rc = -1;
        if (rc == 0 && tg_rust_builder_write(b, sub) != TG_OK)
            rc = -1;
        tg_rust_builder_free(b);
    }
    tg_tape_free(f);
    tg_tape_free(g);
    tg_tape_free(h);
    return rc;
}

#define DET_ENV "TG_RUST_TEST_DETERMINISM_DIR"

/* The re-executed copy of this binary: generate into $DET_ENV and exit
 * before Criterion's main runs. */
__attribute__((constructor)) static void det_child_main(void)
{
    const char *dir = getenv(DET_ENV);
    if (!dir || !*dir)
        return;
    _exit(det_generate(dir) == 0 ? 0 : 3);
}

static const char *const DET_FILES[] = {
    "source0.rs", "source1.rs", "crate/Cargo.toml", "crate/README.md", "crate/src/lib.rs",
    "crate/tests/kernels.rs", "bundle/Cargo.toml", "bundle/README.md", "bundle/src/lib.rs",
    "bundle/tests/kernels.rs",
};

static void det_compare(const char *a, const char *b, const char *how)
{
    for (int c = 0; c < 4; c++)
        for (size_t i = 0; i < sizeof DET_FILES / sizeof *DET_FILES; i++) {
            char pa[4200], pb[4200];
            fmtp(pa, sizeof pa, "%s/cfg%d/%s", a, c, DET_FILES[i]);
            fmtp(pb, sizeof pb, "%s/cfg%d/%s", b, c, DET_FILES[i]);
            size_t la, lb;
            char *ta = read_file(pa, &la), *tb = read_file(pb, &lb);
            cr_assert(ta && tb, "%s: missing %s or %s", how, pa, pb);
            cr_expect(la == lb && memcmp(ta, tb, la) == 0,
                      "%s: %s and %s differ (%zu and %zu bytes)", how, pa, pb, la, lb);
            if (la == lb && memcmp(ta, tb, la) != 0)
                tu_show_diff(ta, tb);
            free(ta);
            free(tb);
        }
}

Test(rust, deterministic_output)
{
    char root[4096], d[4][4200];
    work_root(root, sizeof root);
    static const char *names[4] = { "first", "second", "fork", "reexec" };
    for (int i = 0; i < 4; i++) {
        fmtp(d[i], sizeof d[i], "%s/determinism/%s", root, names[i]);
        mkdirs(d[i]);
    }
    /* the same process, twice */
    cr_assert(det_generate(d[0]) == 0, "generation failed: %s", tg_last_error());
    cr_assert(det_generate(d[1]) == 0, "generation failed: %s", tg_last_error());
    det_compare(d[0], d[1], "same process");

    /* tg_rust_source twice in a row gives the same string */
    {
        tg_tape *f = det_tape();
        char *s1 = NULL, *s2 = NULL;
        size_t w1, w2;
        TU_OK(tg_rust_source(f, NULL, &s1, &w1));
        TU_OK(tg_rust_source(f, NULL, &s2, &w2));
        cr_expect(strcmp(s1, s2) == 0 && w1 == w2, "tg_rust_source differs between two calls");
        free(s1);
        free(s2);
        tg_tape_free(f);
    }

    /* a forked child */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(det_generate(d[2]) == 0 ? 0 : 3);
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked generation failed (status %d)", st);
    det_compare(d[0], d[2], "forked process");

    /* this binary re-executed (a fresh process: other addresses, ASLR) */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    self[n] = '\0';
    cr_assert(!strchr(self, '\'') && !strchr(d[3], '\''));
    sbuf cmd = { 0 };
    sb_printf(&cmd, "%s='%s' '%s' >/dev/null 2>&1", DET_ENV, d[3], self);
    int rc = system(cmd.buf);
    free(cmd.buf);
    cr_assert(rc == 0, "re-executed generation failed (status %d)", rc);
    det_compare(d[0], d[3], "re-executed process");
}

/* ======================================================= dependencies */

/* The lines of Cargo.toml's [dependencies] table (comments and blank lines
 * dropped), joined by '\n'. */
static void cargo_deps(const char *toml, char *out, size_t len)
{
    out[0] = '\0';
    const char *p = strstr(toml, "\n[dependencies]\n");
    if (!p)
        return;
    p += strlen("\n[dependencies]\n");
    size_t o = 0;
    while (*p && *p != '[') {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l > 0 && p[0] != '#' && o + l + 2 < len) {
            memcpy(out + o, p, l);
            o += l;
            out[o++] = '\n';
            out[o] = '\0';
        }
        p = nl ? nl + 1 : p + l;
    }
}

/* Exactly one dependency, libm. */
static bool libm_only(const char *deps)
{
    const char *nl = strchr(deps, '\n');
    return strncmp(deps, "libm ", 5) == 0 && nl && nl[1] == '\0';
}

static void deps_of(const tg_tape *t, bool f32, bool no_std, const char *tag, char *deps,
                    size_t len)
{
    char root[4096], dir[4400], path[4500];
    work_root(root, sizeof root);
    fmtp(dir, sizeof dir, "%s/deps/%s", root, tag);
    tg_rust_options o = { NULL, NULL, f32, no_std };
    TU_OK(tg_rust_crate(t, &o, dir));
    fmtp(path, sizeof path, "%s/Cargo.toml", dir);
    char *toml = read_file(path, NULL);
    cr_assert(toml != NULL, "no %s", path);
    cr_expect(strstr(toml, "\n[dependencies]\n") != NULL, "%s has no [dependencies] table", path);
    cargo_deps(toml, deps, len);
    free(toml);
}

Test(rust, cargo_dependencies)
{
    tg_tape *plain = tu_tape("deps_plain", 0);
    tg_var x = tg_input(plain, "x");
    tg_output(plain, "y", tg_add(tg_sin(x), tg_mul(tg_tanh(x), tg_pow(x, 2.5))));
    /* std has no erf/erfc, and its asinh/acosh/atanh are inaccurate: these
     * come from the libm crate even in std crates */
    tg_tape *with_erf = tu_tape("deps_erf", 0);
    x = tg_input(with_erf, "x");
    tg_output(with_erf, "y", tg_add(tg_add(tg_erf(x), tg_erfc(x)),
                                    tg_add(tg_asinh(x), tg_add(tg_acosh(x), tg_atanh(x)))));
    char deps[1024];
    for (int f32 = 0; f32 < 2; f32++) {
        const char *T = f32 ? "f32" : "f64";
        char tag[64];
        fmtp(tag, sizeof tag, "std_plain_%s", T);
        deps_of(plain, f32, 0, tag, deps, sizeof deps);
        cr_expect(deps[0] == '\0', "std %s crate without erf/erfc/asinh/acosh/atanh has dependencies:\n%s", T, deps);
        fmtp(tag, sizeof tag, "std_erf_%s", T);
        deps_of(with_erf, f32, 0, tag, deps, sizeof deps);
        cr_expect(libm_only(deps), "std %s crate with erf: dependencies should be libm alone, got:\n%s",
                  T, deps);
        fmtp(tag, sizeof tag, "nostd_plain_%s", T);
        deps_of(plain, f32, 1, tag, deps, sizeof deps);
        cr_expect(libm_only(deps), "no_std %s crate: dependencies should be libm alone, got:\n%s",
                  T, deps);
        fmtp(tag, sizeof tag, "nostd_erf_%s", T);
        deps_of(with_erf, f32, 1, tag, deps, sizeof deps);
        cr_expect(libm_only(deps), "no_std %s crate with erf: dependencies should be libm alone, got:\n%s",
                  T, deps);
    }
    tg_tape_free(plain);
    tg_tape_free(with_erf);
}
