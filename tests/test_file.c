/* tests/test_file.c -- tape files (docs/file-format.md, src/tape/file.c).
 *
 *  - save -> load gives the same disassembly and bitwise-equal values,
 *    gradients, Jacobians and Hessians: plain tapes, every kind of
 *    derivative tape, TG_NO_FOLD / TG_NO_CSE tapes (whose flags survive),
 *    NaN (with payloads), -0.0, +-Inf, subnormal and extreme constants,
 *    hundreds of blocks, non-ASCII UTF-8 names, a large tape;
 *  - saving is deterministic, and save(load(file)) == file;
 *  - every truncation of a saved file is TG_ERR_FORMAT "at byte ...",
 *    unreadable paths are TG_ERR_IO;
 *  - 5000 seeded random corruptions (single and multi-byte flips, with and
 *    without the checksums recomputed so that the semantic validators are
 *    reached) give TG_ERR_FORMAT "at byte ..." or, only when the checksums
 *    were recomputed, a valid canonical tape; never a crash (the suite also
 *    runs under ASan/UBSan);
 *  - crafted corruptions, one per validator, each with its message;
 *  - tg_tape_set_limit: TG_ERR_LIMIT, no wrap-around, earlier instructions
 *    intact;
 *  - bounded reading: /dev/zero, /dev/urandom, a 1 GB junk file and 64 MB
 *    of junk behind a valid header are refused quickly, in a child whose peak RSS
 *    stays under 32 MB; a directory says so; a pipe is read up to the size its
 *    header declares;
 *  - zero-size blocks survive files; tape_verify finds each broken
 *    invariant of an in-memory tape. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <float.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tapefile.h"
#include "tape/internal.h"
#include "testutil.h"

/* ------------------------------------------------------------ files */

static char dir[64];

static const char *
tpath(const char *name)
{
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static const char *const scratch[] = { "a.tape", "b.tape", "c.tape", "d.tape", "sub", "fifo" };

static void
setup(void)
{
    /* Thousands of small files are written: prefer a RAM file system. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/tg-test-file-XXXXXX", base);
    cr_assert(mkdtemp(dir) != NULL, "mkdtemp failed");
}

static void
teardown(void)
{
    for (size_t i = 0; i < sizeof scratch / sizeof *scratch; i++) {
        unlink(tpath(scratch[i]));
        rmdir(tpath(scratch[i]));
    }
    rmdir(dir);
}

TestSuite(file, .init = setup, .fini = teardown, .timeout = 300);

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static bytes
read_bytes(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    bytes b = { NULL, 0 };
    size_t cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (b.n == cap) {
            cap = cap ? 2 * cap : 4096;
            b.p = realloc(b.p, cap);
            cr_assert(b.p != NULL);
        }
        b.p[b.n++] = (uint8_t)c;
    }
    fclose(f);
    return b;
}

static void
write_bytes(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "cannot create %s", path);
    cr_assert(n == 0 || fwrite(p, 1, n, f) == n);
    cr_assert(fclose(f) == 0);
}

static bytes
save_bytes(const tg_tape *t, const char *name)
{
    TU_OK(tg_tape_save(t, tpath(name)));
    return read_bytes(tpath(name));
}

static int
same_bytes(bytes a, bytes b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* -------------------------------------------------- the format, by hand */

/* A file taken apart into its section payloads (copies), to be edited and
 * put together again with correct hashes.  Section indices are those of
 * format 2 (the writer's); a format 1 file has no OPNM (nsec 5, and its
 * sections shift down by one from INST on: use f.sec[s - 1]). */
enum { META, BLKS, OPNM, INST, KPOO, OUTS, NSEC_MAX };
static const char tags[NSEC_MAX][5] = { "META", "BLKS", "OPNM", "INST", "KPOO", "OUTS" };

typedef struct tfile {
    uint8_t head[24];
    int nsec;
    uint8_t *sec[NSEC_MAX];
    size_t len[NSEC_MAX];
    char tag[NSEC_MAX][4];
} tfile;

static tfile
tf_parse(bytes b)
{
    tfile f;
    memset(&f, 0, sizeof f);
    cr_assert(b.n >= 32 && memcmp(b.p, "TAPEGEN", 8) == 0, "not a tape file");
    memcpy(f.head, b.p, 24);
    f.nsec = (int)get32(b.p + 12);
    cr_assert(f.nsec == 5 || f.nsec == 6, "%d sections", f.nsec);
    size_t at = 24;
    for (int s = 0; s < f.nsec; s++) {
        const char *want = tags[f.nsec == 5 && s >= OPNM ? s + 1 : s];
        cr_assert(memcmp(b.p + at, want, 4) == 0, "section %s not where expected", want);
        memcpy(f.tag[s], want, 4);
        f.len[s] = (size_t)get64(b.p + at + 4);
        f.sec[s] = malloc(f.len[s] + 64);
        memcpy(f.sec[s], b.p + at + 12, f.len[s]);
        at += 12 + f.len[s] + 8;
    }
    cr_assert(at + 8 == b.n, "unexpected layout");
    return f;
}

/* Puts f together; `extra` bytes of zeros go after the last section. */
static bytes
tf_build(const tfile *f, size_t extra)
{
    size_t n = 24 + 8 + extra;
    for (int s = 0; s < f->nsec; s++)
        n += 20 + f->len[s];
    bytes b = { calloc(n, 1), n };
    memcpy(b.p, f->head, 24);
    size_t at = 24;
    for (int s = 0; s < f->nsec; s++) {
        memcpy(b.p + at, f->tag[s], 4);
        put64(b.p + at + 4, f->len[s]);
        memcpy(b.p + at + 12, f->sec[s], f->len[s]);
        put64(b.p + at + 12 + f->len[s], fnv1a(f->sec[s], f->len[s]));
        at += 20 + f->len[s];
    }
    put64(b.p + 16, n);
    put64(b.p + n - 8, fnv1a(b.p, n - 8));
    return b;
}

static void
tf_free(tfile *f)
{
    for (int s = 0; s < f->nsec; s++)
        free(f->sec[s]);
}

/* Offset of the bytes of op name `name` in the OPNM section. */
static size_t
opnm_at(const tfile *f, const char *name)
{
    size_t n = strlen(name);
    for (size_t at = 4; at + 2 <= f->len[OPNM];) {
        size_t len = f->sec[OPNM][at] | (size_t)f->sec[OPNM][at + 1] << 8;
        if (len == n && memcmp(f->sec[OPNM] + at + 2, name, n) == 0)
            return at + 2;
        at += 2 + len;
    }
    cr_assert_fail("op name %s not in the table", name);
    return 0;
}

/* Inserts k bytes of v at offset off of section s. */
static void
tf_insert(tfile *f, int s, size_t off, size_t k, uint8_t v)
{
    cr_assert(k <= 64 && off <= f->len[s]);
    memmove(f->sec[s] + off + k, f->sec[s] + off, f->len[s] - off);
    memset(f->sec[s] + off, v, k);
    f->len[s] += k;
}

/* INST column offsets of a file with n instructions. */
static size_t inst_op(uint32_t n, uint32_t i) { (void)n; return 4 + i; }
static size_t inst_col(uint32_t n, int c, uint32_t i) { return 4 + n + 4 * ((size_t)c * n + i); }

/* -------------------------------------------------------------- loading */

/* Loads path and asserts the format error carries `want` (NULL: any) and
 * "at byte"; returns nothing, frees the tape. */
static void
expect_format(const char *path, const char *want, const char *what)
{
    tg_tape *t = tg_tape_load(path);
    cr_assert(t != NULL, "%s: tg_tape_load returned NULL", what);
    cr_expect(tg_tape_status(t) == TG_ERR_FORMAT, "%s: status %s (%s), expected TG_ERR_FORMAT", what,
              tg_status_str(tg_tape_status(t)), tg_tape_error(t));
    const char *e = tg_tape_error(t);
    cr_expect(strstr(e, "at byte") != NULL, "%s: message without a byte offset: %s", what, e);
    cr_expect(strstr(e, path) != NULL, "%s: message does not name the file: %s", what, e);
    if (want)
        cr_expect(strstr(e, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, e, want);
    tg_tape_free(t);
}

static void
expect_bytes_format(bytes b, const char *want, const char *what)
{
    write_bytes(tpath("c.tape"), b.p, b.n);
    expect_format(tpath("c.tape"), want, what);
}

/* ------------------------------------------------------------ tapes */

/* A bit of everything: two input blocks, two output blocks, folding-proof
 * literals, every family of ops. */
static tg_tape *
mixed(const char *name, unsigned flags, int scalar)
{
    tg_tape *t = tu_tape(name, flags);
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_var p = tg_input(t, "p");
    tg_var a = tg_add(tg_mul(x[0], tg_sin(x[1])), tg_exp(tg_mul(-0.5, x[2])));
    tg_var b = tg_div(tg_pow(x[1], 3.0), tg_add(1.0, tg_mul(p, p)));
    tg_var c = tg_select(tg_lt(x[0], x[1]), tg_atan2(x[0], p), tg_hypot(x[2], p));
    tg_var d = tg_add(tg_max(x[0], tg_min(x[1], x[2])), tg_log1p(tg_abs(p)));
    tg_var e = tg_mul(tg_tanh(a), tg_sqrt(tg_add(tg_mul(b, b), 1.0)));
    tg_var f = tg_add(tg_erf(c), tg_cbrt(tg_sub(d, 0.25)));
    tg_var g = tg_add(tg_floor(tg_mul(x[0], 3.0)), tg_fract(tg_mul(x[2], 7.0)));
    tg_var h = tg_azmul(tg_signum(tg_sub(p, 0.5)), tg_pow(tg_add(x[0], 2.0), p));
    tg_var all[4] = { e, f, g, h };
    if (scalar) {
        tg_output(t, "f", tg_add(tg_sum(4, all), tg_mul(a, tg_cos(b))));
    } else {
        tg_output_vec(t, "y", 2, all);
        tg_var s[2] = { tg_mul(g, h), tg_sub(a, tg_mul(x[1], 1.0)) };
        tg_output_vec(t, "s", 2, s);
    }
    TU_TAPE_OK(t);
    return t;
}

/* Constants whose bits matter: NaNs with payloads, signed zeros and
 * infinities, subnormals, extremes. */
static const uint64_t special_bits[] = {
    0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7ff8000000000abcULL, 0x7ff4000000000001ULL,
    0x8000000000000000ULL, 0x0000000000000000ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
    0x0000000000000001ULL, 0x8000000000000001ULL, 0x000fffffffffffffULL, 0x0010000000000000ULL,
    0x7fefffffffffffffULL, 0xffefffffffffffffULL, 0x3ff0000000000001ULL, 0x3fb999999999999aULL,
};
#define NSPECIAL (sizeof special_bits / sizeof *special_bits)

static tg_tape *
specials(unsigned flags)
{
    tg_tape *t = tu_tape("specials", flags);
    tg_var x = tg_input(t, "x"), y[2 * NSPECIAL];
    for (size_t i = 0; i < NSPECIAL; i++) {
        tg_var k = tg_const(t, tu_from_bits(special_bits[i]));
        y[i] = k;
        y[NSPECIAL + i] = tg_add(tg_mul(x, k), k);
    }
    tg_output_vec(t, "k", 2 * NSPECIAL, y);
    TU_TAPE_OK(t);
    return t;
}

#define NIN_BLOCKS 300
#define NOUT_BLOCKS 120

static tg_tape *
many_blocks(void)
{
    tg_tape *t = tu_tape("many_blocks", 0);
    tg_var in[NIN_BLOCKS * 2];
    size_t n = 0;
    for (int b = 0; b < NIN_BLOCKS; b++) {
        char name[32];
        snprintf(name, sizeof name, "in_%d", b);
        size_t size = (size_t)(b % 3) + 1;
        tg_var v[3];
        tg_input_vec(t, name, size, v);
        for (size_t k = 0; k < size; k++)
            in[n++] = v[k];
    }
    for (int b = 0; b < NOUT_BLOCKS; b++) {
        char name[32];
        snprintf(name, sizeof name, "out_%d", b);
        tg_var y[2] = { tg_mul(in[b], in[n - 1 - (size_t)b]), tg_sin(in[2 * b]) };
        tg_output_vec(t, name, (size_t)(b % 2) + 1, y);
    }
    TU_TAPE_OK(t);
    return t;
}

static tg_tape *
utf8_names(void)
{
    tg_tape *t = tu_tape("\xe2\x88\x82" "f/\xe2\x88\x82x \xce\xa9mega \xc3\xbc \xf0\x9f\x98\x80", 0);
    tg_var xi = tg_input(t, "\xce\xbe");                                   /* ξ */
    tg_var v[2];
    tg_input_vec(t, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 2, v);        /* 日本語 */
    tg_var z = tg_input(t, "caf\xc3\xa9 \xf0\x9f\x98\x80 [x] = %1");      /* café 😀 [x] = %1 */
    tg_output(t, "\xe2\x88\x91", tg_add(tg_mul(xi, v[0]), tg_mul(v[1], z)));  /* ∑ */
    tg_var w[2] = { tg_exp(xi), tg_div(v[0], z) };
    tg_output_vec(t, "\xd0\xb2\xd1\x8b\xd1\x85\xd0\xbe\xd0\xb4 \"q\"", 2, w);  /* выход "q" */
    TU_TAPE_OK(t);
    return t;
}

/* ------------------------------------------------------ comparisons */

static void
assert_same_shape(const tg_tape *a, const tg_tape *b)
{
    cr_assert_str_eq(tg_tape_name(a), tg_tape_name(b));
    cr_assert_eq(tg_tape_size(a), tg_tape_size(b));
    cr_assert_eq(tg_num_inputs(a), tg_num_inputs(b));
    cr_assert_eq(tg_num_outputs(a), tg_num_outputs(b));
    cr_assert_eq(tg_num_input_blocks(a), tg_num_input_blocks(b));
    cr_assert_eq(tg_num_output_blocks(a), tg_num_output_blocks(b));
    for (size_t i = 0; i < tg_num_input_blocks(a); i++) {
        cr_assert_str_eq(tg_input_block_name(a, i), tg_input_block_name(b, i));
        cr_assert_eq(tg_input_block_size(a, i), tg_input_block_size(b, i));
    }
    for (size_t i = 0; i < tg_num_output_blocks(a); i++) {
        cr_assert_str_eq(tg_output_block_name(a, i), tg_output_block_name(b, i));
        cr_assert_eq(tg_output_block_size(a, i), tg_output_block_size(b, i));
    }
    char *da = tg_tape_disasm(a), *db = tg_tape_disasm(b);
    cr_assert(da && db);
    if (strcmp(da, db) != 0)
        tu_show_diff(db, da);
    cr_assert(strcmp(da, db) == 0, "disassembly differs after save/load");
    free(da);
    free(db);
}

static void
assert_bits_equal(const double *u, const double *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(tu_same_bits(u[i], v[i]), "%s[%zu]: %s vs %s", what, i, tu_d(u[i]).s,
                  tu_d(v[i]).s);
}

typedef tg_status (*numeric_fn)(const tg_tape *, const double *, double *);

static void
assert_same_numbers(const tg_tape *a, const tg_tape *b, numeric_fn f, const double *x, size_t len,
                    const char *what)
{
    double *u = calloc(len + 1, sizeof *u), *v = calloc(len + 1, sizeof *v);
    tg_status sa = f(a, x, u), sb = f(b, x, v);
    cr_assert_eq(sa, sb, "%s: status %s vs %s", what, tg_status_str(sa), tg_status_str(sb));
    if (sa == TG_OK)
        assert_bits_equal(u, v, len, what);
    free(u);
    free(v);
}

/* Same disassembly; bitwise-equal values and derivatives at 3 points. */
static void
assert_same_tape(const tg_tape *a, const tg_tape *b, uint64_t seed)
{
    assert_same_shape(a, b);
    size_t n = tg_num_inputs(a), m = tg_num_outputs(a);
    double *x = calloc(n + 1, sizeof *x);
    tu_rng r = { seed };
    for (int pt = 0; pt < 3; pt++) {
        for (size_t j = 0; j < n; j++)
            x[j] = tu_rng_range(&r, 0.1, 1.9);
        assert_same_numbers(a, b, tg_eval, x, m, "eval");
        if (m * n <= 200000)
            assert_same_numbers(a, b, tg_jacobian, x, m * n, "jacobian");
        if (m == 1) {
            assert_same_numbers(a, b, tg_gradient, x, n, "gradient");
            if (n <= 64)
                assert_same_numbers(a, b, tg_hessian, x, n * n, "hessian");
        }
    }
    free(x);
}

/* save -> load -> same tape; deterministic bytes; save(load(f)) == f. */
static void
round_trip(const tg_tape *t, uint64_t seed)
{
    bytes b1 = save_bytes(t, "a.tape");
    tg_tape *u = tg_tape_load(tpath("a.tape"));
    cr_assert(u != NULL);
    TU_TAPE_OK(u);
    assert_same_tape(t, u, seed);
    bytes b2 = save_bytes(t, "b.tape");
    cr_assert(same_bytes(b1, b2), "saving \"%s\" twice gave different bytes", tg_tape_name(t));
    bytes b3 = save_bytes(u, "b.tape");
    cr_assert(same_bytes(b1, b3), "save(load(file)) != file for \"%s\"", tg_tape_name(t));
    tg_tape_free(u);
    free(b1.p);
    free(b2.p);
    free(b3.p);
}

/* ------------------------------------------------------ round trips */

Test(file, plain_tapes_round_trip)
{
    for (int scalar = 0; scalar < 2; scalar++) {
        tg_tape *t = mixed("mixed", 0, scalar);
        round_trip(t, 11 + (uint64_t)scalar);
        tg_tape_free(t);
    }
    /* No blocks, no instructions (put() skips empty copies: no memcpy
     * from a NULL column). */
    tg_tape *e = tu_tape("empty", 0);
    round_trip(e, 1);
    tg_tape_free(e);
    tg_tape *k = tu_tape("const_only", 0);  /* outputs without inputs */
    tg_var c[2] = { tg_const(k, 2.5), tg_const(k, -1.0) };
    tg_output_vec(k, "c", 2, c);
    round_trip(k, 2);
    tg_tape_free(k);
}

Test(file, derivative_tapes_round_trip)
{
    tg_tape *f = mixed("f", 0, 1), *v = mixed("v", 0, 0);
    tg_tape *d[] = {
        tg_gradient_tape(f, TG_ALL), tg_gradient_tape(f, 1), tg_hessian_tape(f, TG_ALL),
        tg_hvp_tape(f, 0), tg_jacobian_tape(v, TG_ALL), tg_jacobian_tape(v, 0),
        tg_jvp_tape(v, TG_ALL), tg_vjp_tape(v, 1), tg_joint_tape(f, TG_F | TG_GRAD | TG_HESS | TG_HVP, TG_ALL),
        tg_joint_tape(v, TG_F | TG_JAC, 0),
    };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        cr_assert(d[i] != NULL);
        TU_TAPE_OK(d[i]);
        round_trip(d[i], 100 + i);
        TU_OK(tg_tape_optimize(d[i], TG_OPT_MAX));
        round_trip(d[i], 200 + i);
    }
    /* A derivative of a loaded tape equals the derivative of the original. */
    TU_OK(tg_tape_save(f, tpath("d.tape")));
    tg_tape *lf = tg_tape_load(tpath("d.tape"));
    TU_TAPE_OK(lf);
    tg_tape *h1 = tg_hessian_tape(f, TG_ALL), *h2 = tg_hessian_tape(lf, TG_ALL);
    TU_TAPE_OK(h2);
    assert_same_tape(h1, h2, 7);
    tg_tape_free(h1);
    tg_tape_free(h2);
    tg_tape_free(lf);
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        tg_tape_free(d[i]);
    tg_tape_free(f);
    tg_tape_free(v);
}

Test(file, no_fold_no_cse_flags_survive)
{
    unsigned flags[] = { TG_NO_FOLD, TG_NO_CSE, TG_NO_FOLD | TG_NO_CSE };
    for (size_t i = 0; i < 3; i++) {
        tg_tape *t = mixed("nofold", flags[i], 1);
        /* Redundancy the flags keep: x*1 (folding) and a repeated product (CSE). */
        tg_var x = { t, 0 };
        tg_output(t, "extra", tg_add(tg_mul(x, 1.0), tg_mul(tg_mul(x, x), tg_mul(x, x))));
        TU_TAPE_OK(t);
        round_trip(t, 300 + i);
        TU_OK(tg_tape_save(t, tpath("d.tape")));
        tg_tape *u = tg_tape_load(tpath("d.tape"));
        TU_TAPE_OK(u);
        /* Recording into both tapes does the same thing: the loaded tape
         * folds and shares (or not) exactly like the original. */
        tg_var xt = { t, 0 }, xu = { u, 0 };
        tg_var rt = tg_add(tg_mul(xt, 1.0), tg_mul(xt, xt));
        tg_var ru = tg_add(tg_mul(xu, 1.0), tg_mul(xu, xu));
        cr_assert_eq(rt.id, ru.id, "flags 0x%x: recording after load differs", flags[i]);
        cr_assert_eq(tg_tape_size(t), tg_tape_size(u));
        tg_tape_free(u);
        tg_tape_free(t);
    }
}

Test(file, special_constants_keep_their_bits)
{
    unsigned flags[] = { 0, TG_NO_FOLD | TG_NO_CSE };
    for (size_t f = 0; f < 2; f++) {
        tg_tape *t = specials(flags[f]);
        round_trip(t, 400 + f);
        TU_OK(tg_tape_save(t, tpath("d.tape")));
        tg_tape *u = tg_tape_load(tpath("d.tape"));
        TU_TAPE_OK(u);
        double x = 0.75, y[2 * NSPECIAL];
        TU_OK(tg_eval(u, &x, y));
        for (size_t i = 0; i < NSPECIAL; i++)
            cr_assert_eq(tu_bits(y[i]), special_bits[i], "constant %zu: got %s", i, tu_d(y[i]).s);
        tg_tape_free(u);
        tg_tape_free(t);
    }
}

Test(file, many_blocks_and_utf8_names)
{
    tg_tape *t = many_blocks();
    cr_assert_eq(tg_num_input_blocks(t), NIN_BLOCKS);
    round_trip(t, 500);
    tg_tape_free(t);
    t = utf8_names();
    round_trip(t, 501);
    tg_tape *g = tg_jacobian_tape(t, 1);
    TU_TAPE_OK(g);
    round_trip(g, 502);
    tg_tape_free(g);
    tg_tape_free(t);
}

Test(file, large_tape_round_trips)
{
    tg_tape *t = tu_tape("large", 0);
    tg_var x[64];
    tg_input_vec(t, "x", 64, x);
    tg_var acc = x[0];
    for (int i = 0; i < 60000; i++)
        acc = tg_add(tg_mul(acc, x[i % 64]), tg_sin(tg_add(x[(i * 7) % 64], (double)i)));
    tg_output(t, "f", acc);
    TU_TAPE_OK(t);
    cr_assert_gt(tg_tape_size(t), 150000);
    round_trip(t, 600);
    tg_tape_free(t);
}

/* ------------------------------------------------------ truncation, I/O */

static void
every_truncation(const tg_tape *t)
{
    bytes b = save_bytes(t, "a.tape");
    for (size_t len = 0; len < b.n; len++) {
        write_bytes(tpath("c.tape"), b.p, len);
        char what[320];
        snprintf(what, sizeof what, "\"%s\" truncated to %zu of %zu bytes", tg_tape_name(t), len, b.n);
        expect_format(tpath("c.tape"), NULL, what);
    }
    /* One byte more is as bad as one byte less. */
    uint8_t *p = malloc(b.n + 1);
    memcpy(p, b.p, b.n);
    p[b.n] = 0;
    write_bytes(tpath("c.tape"), p, b.n + 1);
    expect_format(tpath("c.tape"), "truncated or extended", "one extra byte");
    free(p);
    free(b.p);
}

Test(file, every_truncation_is_a_format_error)
{
    tg_tape *f = mixed("trunc", 0, 1), *u = utf8_names(), *s = specials(0);
    tg_tape *h = tg_hessian_tape(f, TG_ALL);
    TU_TAPE_OK(h);
    every_truncation(f);
    every_truncation(u);
    every_truncation(s);
    every_truncation(h);
    tg_tape_free(f);
    tg_tape_free(u);
    tg_tape_free(s);
    tg_tape_free(h);
}

static void
expect_io(const char *path)
{
    tg_tape *t = tg_tape_load(path);
    cr_assert(t != NULL);
    cr_expect_eq(tg_tape_status(t), TG_ERR_IO, "%s: status %s (%s)", path,
                 tg_status_str(tg_tape_status(t)), tg_tape_error(t));
    cr_expect(strstr(tg_tape_error(t), path) != NULL, "message does not name %s: %s", path,
              tg_tape_error(t));
    tg_tape_free(t);
}

Test(file, unreadable_paths_are_io_errors)
{
    expect_io(tpath("does-not-exist.tape"));
    expect_io("/nonexistent-dir/f.tape");
    cr_assert(mkdir(tpath("sub"), 0700) == 0);
    expect_io(tpath("sub"));                    /* a directory */
    tg_tape *d = tg_tape_load(tpath("sub"));
    cr_expect(strstr(tg_tape_error(d), "is a directory") != NULL, "%s", tg_tape_error(d));
    tg_tape_free(d);
    if (geteuid() != 0) {                       /* root reads anything */
        tg_tape *f = mixed("f", 0, 1);
        TU_OK(tg_tape_save(f, tpath("d.tape")));
        chmod(tpath("d.tape"), 0);
        expect_io(tpath("d.tape"));
        chmod(tpath("d.tape"), 0600);
        tg_tape_free(f);
    }
    tg_tape *n = tg_tape_load(NULL);
    cr_assert(n != NULL);
    cr_expect_eq(tg_tape_status(n), TG_ERR_ARG);
    tg_tape_free(n);

    tg_tape *f = mixed("f", 0, 1);
    cr_expect_eq(tg_tape_save(f, "/nonexistent-dir/f.tape"), TG_ERR_IO);
    cr_expect(strstr(tg_last_error(), "/nonexistent-dir/f.tape") != NULL, "%s", tg_last_error());
    cr_expect_eq(tg_tape_save(f, tpath("sub")), TG_ERR_IO);
    cr_expect_eq(tg_tape_save(NULL, tpath("d.tape")), TG_ERR_ARG);
    cr_expect_eq(tg_tape_save(f, NULL), TG_ERR_ARG);
    tg_var nil = { NULL, TG_NIL };
    tg_output(f, "bad", nil);                   /* f is now in the error state */
    cr_assert_neq(tg_tape_status(f), TG_OK);
    cr_expect_eq(tg_tape_save(f, tpath("d.tape")), tg_tape_status(f));
    tg_tape_free(f);
}

/* ------------------------------------------------------ random corruption */

typedef struct flip_stats {
    int format, checksum, semantic, valid;
} flip_stats;

/* One corrupted copy of b: 1 byte (mode 0, 2) or 2..8 bytes (1, 3)
 * changed; modes 2 and 3 recompute the checksums afterwards. */
static void
corrupt(tu_rng *r, bytes b, uint8_t *p, int mode)
{
    memcpy(p, b.p, b.n);
    int k = (mode & 1) ? 2 + (int)tu_rng_below(r, 7) : 1;
    for (int i = 0; i < k; i++) {
        size_t at = tu_rng_below(r, b.n);
        uint8_t v = (uint8_t)(1 + tu_rng_below(r, 255));
        if (tu_rng_below(r, 3) == 0)
            v = (uint8_t)(1u << tu_rng_below(r, 8));    /* one bit */
        p[at] ^= v;
    }
    if (mode >= 2)
        fixup(p, b.n);
}

/* A corrupted file loads as a format error, or (checksums recomputed) as a
 * valid tape that is canonical and evaluates. */
static void
check_corrupt(const uint8_t *p, size_t n, int fixed, flip_stats *st, int trial)
{
    write_bytes(tpath("c.tape"), p, n);
    tg_tape *t = tg_tape_load(tpath("c.tape"));
    cr_assert(t != NULL);
    tg_status s = tg_tape_status(t);
    const char *e = tg_tape_error(t);
    if (s == TG_OK) {
        cr_assert(fixed, "trial %d: a corrupted file with bad checksums loaded", trial);
        st->valid++;
        /* Canonical: saving gives the same bytes (the op-name table is
         * sorted by name and lists exactly the ops used). */
        bytes again = save_bytes(t, "d.tape"), orig = { (uint8_t *)p, n };
        cr_assert(same_bytes(again, orig), "trial %d: accepted file is not canonical", trial);
        free(again.p);
        size_t ni = tg_num_inputs(t), m = tg_num_outputs(t);
        double *x = calloc(ni + 1, sizeof *x), *y = calloc(m + 1, sizeof *y);
        cr_assert_eq(tg_eval(t, x, y), TG_OK, "trial %d: %s", trial, tg_last_error());
        free(x);
        free(y);
    } else {
        cr_assert_eq(s, TG_ERR_FORMAT, "trial %d: status %s: %s", trial, tg_status_str(s), e);
        cr_assert(strstr(e, "at byte") != NULL, "trial %d: %s", trial, e);
        st->format++;
        if (strstr(e, "checksum"))
            st->checksum++;
        else if (fixed)
            st->semantic++;
    }
    tg_tape_free(t);
}

#define FLIP_TRIALS 5000

Test(file, random_corruption_never_loads_silently)
{
    tg_tape *v = mixed("flips", 0, 0), *u = utf8_names(), *s = specials(0);
    tg_tape *jac = tg_jacobian_tape(v, TG_ALL);
    TU_TAPE_OK(jac);
    tg_tape *tapes[] = { v, u, s, jac };
    bytes b[4];
    for (int i = 0; i < 4; i++)
        b[i] = save_bytes(tapes[i], "a.tape");
    tu_rng r = { 20240607 };
    flip_stats st[4] = { { 0, 0, 0, 0 } };
    for (int trial = 0; trial < FLIP_TRIALS; trial++) {
        bytes base = b[trial % 4];
        int mode = (trial / 4) % 4;
        uint8_t *p = malloc(base.n);
        corrupt(&r, base, p, mode);
        if (memcmp(p, base.p, base.n) != 0)     /* flips may cancel out */
            check_corrupt(p, base.n, mode >= 2, &st[mode], trial);
        free(p);
    }
    for (int m = 0; m < 4; m++)
        cr_log_info("mode %d (%s, %s): %d format errors (%d checksum, %d semantic), %d valid",
                    m, m & 1 ? "multi-byte" : "single byte", m >= 2 ? "checksums fixed" : "raw",
                    st[m].format, st[m].checksum, st[m].semantic, st[m].valid);
    /* Raw flips are all caught; with the checksums fixed, the validators
     * behind them must have been reached many times. */
    cr_expect_eq(st[0].valid + st[1].valid, 0);
    cr_expect_gt(st[2].semantic + st[3].semantic, FLIP_TRIALS / 8);
    for (int i = 0; i < 4; i++)
        free(b[i].p);
    tg_tape_free(v);
    tg_tape_free(u);
    tg_tape_free(s);
    tg_tape_free(jac);
}

/* ------------------------------------------------------ crafted corruption */

/* A tape with a known layout: inputs a1[2], a2; output y1[2], a1 (an output
 * may share an input's name); instructions
 *   %0 input a1[0], %1 input a1[1], %2 input a2[0], %3 const 3, %4 mul %0 %3,
 *   %5 sin %4, %6 add %5 %2, %7 sub %1 %2. */
static tg_tape *
crafted(void)
{
    tg_tape *t = tu_tape("crafted", 0);
    tg_var a[2];
    tg_input_vec(t, "a1", 2, a);
    tg_var a2 = tg_input(t, "a2");
    tg_var y[2] = { tg_add(tg_sin(tg_mul(a[0], 3.0)), a2), tg_sub(a[1], a2) };
    tg_output_vec(t, "y1", 2, y);
    tg_output(t, "a1", y[1]);
    TU_TAPE_OK(t);
    cr_assert_eq(tg_tape_size(t), 8);
    return t;
}

typedef void (*edit_fn)(tfile *f, uint32_t n);

typedef struct craft {
    const char *what;
    edit_fn edit;
    const char *want;
    size_t extra;           /* zero bytes after the last section */
} craft;

/* Offsets in BLKS of the crafted tape: counts (8), "a1" block at 8
 * (name 2+2, size 4), "a2" at 16, "y1" at 24, "a1" (output) at 32. */
static void e_opcode_count(tfile *f, uint32_t n) { f->sec[INST][inst_op(n, 5)] = (uint8_t)get32(f->sec[OPNM]); }
static void e_opcode_255(tfile *f, uint32_t n) { f->sec[INST][inst_op(n, 6)] = 255; }
static void e_operand_self(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 0, 5), 5); }
static void e_operand_later(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 1, 6), 7); }
static void e_operand_huge(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 1, 4), UINT32_MAX); }
static void e_unused_nonzero(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 1, 5), 1); }
static void e_leaf_b_nonzero(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 2, 0), 1); }
static void e_input_swap(tfile *f, uint32_t n)
{
    put32(f->sec[INST] + inst_col(n, 0, 0), 1);
    put32(f->sec[INST] + inst_col(n, 0, 1), 0);
}
static void e_input_skip(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 0, 2), 3); }
static void e_input_as_const(tfile *f, uint32_t n) { f->sec[INST][inst_op(n, 2)] = TG_OP_CONST; put32(f->sec[INST] + inst_col(n, 0, 2), 0); }
static void e_const_index(tfile *f, uint32_t n) { put32(f->sec[INST] + inst_col(n, 0, 3), 1); }
static void e_output_missing(tfile *f, uint32_t n) { put32(f->sec[OUTS] + 4, n); }
static void e_output_huge(tfile *f, uint32_t n) { (void)n; put32(f->sec[OUTS] + 8, UINT32_MAX); }
static void e_name_overlong(tfile *f, uint32_t n) { (void)n; f->sec[META][6] = 0xc0; f->sec[META][7] = 0xaf; }
static void e_name_control(tfile *f, uint32_t n) { (void)n; f->sec[META][8] = 0x01; }
static void e_name_nul(tfile *f, uint32_t n) { (void)n; f->sec[META][9] = 0x00; }
static void e_name_surrogate(tfile *f, uint32_t n)
{ (void)n; f->sec[META][6] = 0xed; f->sec[META][7] = 0xa0; f->sec[META][8] = 0x80; }
static void e_name_cut_utf8(tfile *f, uint32_t n)
{ (void)n; f->sec[META][11] = 0xe2; f->sec[META][12] = 0x88; }   /* last 2 of "crafted" */
static void e_name_len0(tfile *f, uint32_t n) { (void)n; put16(f->sec[META] + 4, 0); }
static void e_name_len300(tfile *f, uint32_t n) { (void)n; put16(f->sec[META] + 4, 300); }
static void e_name_len_long(tfile *f, uint32_t n) { (void)n; put16(f->sec[META] + 4, 200); }
static void e_block_bad_utf8(tfile *f, uint32_t n) { (void)n; f->sec[BLKS][18] = 0xff; }
static void e_dup_input(tfile *f, uint32_t n) { (void)n; f->sec[BLKS][19] = '1'; }
static void e_dup_output(tfile *f, uint32_t n) { (void)n; memcpy(f->sec[BLKS] + 34, "y1", 2); }
static void e_block_empty(tfile *f, uint32_t n) { (void)n; put32(f->sec[BLKS] + 20, 0); }
static void e_block_bigger(tfile *f, uint32_t n) { (void)n; put32(f->sec[BLKS] + 20, 2); }
static void e_out_block_bigger(tfile *f, uint32_t n) { (void)n; put32(f->sec[BLKS] + 28, 3); }
static void e_blocks_huge(tfile *f, uint32_t n) { (void)n; put32(f->sec[BLKS], UINT32_MAX); }
static void e_scalars_overflow(tfile *f, uint32_t n)
{ (void)n; put32(f->sec[BLKS] + 12, UINT32_MAX - 1); put32(f->sec[BLKS] + 20, UINT32_MAX - 1); }
static void e_inputs_huge(tfile *f, uint32_t n) { (void)n; put32(f->sec[BLKS] + 12, 1000000000); }
static void e_insts_huge(tfile *f, uint32_t n) { (void)n; put32(f->sec[INST], UINT32_MAX); }
static void e_insts_plus1(tfile *f, uint32_t n) { put32(f->sec[INST], n + 1); }
static void e_consts_huge(tfile *f, uint32_t n) { (void)n; put32(f->sec[KPOO], 0x20000000); }
static void e_outputs_plus1(tfile *f, uint32_t n) { (void)n; put32(f->sec[OUTS], 4); }
static void e_flags(tfile *f, uint32_t n) { (void)n; put32(f->sec[META], 4); }
static void e_version(tfile *f, uint32_t n) { (void)n; put32(f->head + 8, 4); }
static void e_version3(tfile *f, uint32_t n) { (void)n; put32(f->head + 8, 3); }
static void e_version1(tfile *f, uint32_t n) { (void)n; put32(f->head + 8, 1); }
/* The op-name table of the crafted tape: add const input mul sin sub. */
static void e_opname_unknown(tfile *f, uint32_t n) { (void)n; memcpy(f->sec[OPNM] + opnm_at(f, "sin"), "sip", 3); }
static void e_opname_order(tfile *f, uint32_t n) { (void)n; memcpy(f->sec[OPNM] + opnm_at(f, "input"), "abput", 5); }
static void e_opname_dup(tfile *f, uint32_t n) { (void)n; memcpy(f->sec[OPNM] + opnm_at(f, "sub"), "sin", 3); }
static void e_opname_unused(tfile *f, uint32_t n)
{ f->sec[INST][inst_op(n, 5)] = f->sec[INST][inst_op(n, 4)]; }   /* sin -> mul: "sin" unused */
static void e_opnames_huge(tfile *f, uint32_t n) { (void)n; put32(f->sec[OPNM], 257); }
static void e_opnames_short(tfile *f, uint32_t n) { (void)n; put32(f->sec[OPNM], 7); }
static void e_nsections(tfile *f, uint32_t n) { (void)n; put32(f->head + 12, 7); }
static void e_magic(tfile *f, uint32_t n) { (void)n; f->head[0] = 't'; }
static void e_tag(tfile *f, uint32_t n) { (void)n; memcpy(f->tag[KPOO], "KPOQ", 4); }
static void e_order(tfile *f, uint32_t n)
{
    (void)n;
    uint8_t *s = f->sec[KPOO];
    size_t l = f->len[KPOO];
    f->sec[KPOO] = f->sec[OUTS];
    f->len[KPOO] = f->len[OUTS];
    f->sec[OUTS] = s;
    f->len[OUTS] = l;
    memcpy(f->tag[KPOO], "OUTS", 4);
    memcpy(f->tag[OUTS], "KPOO", 4);
}
static void e_meta_trailing(tfile *f, uint32_t n) { (void)n; tf_insert(f, META, f->len[META], 3, 0); }
static void e_outs_trailing(tfile *f, uint32_t n) { (void)n; tf_insert(f, OUTS, f->len[OUTS], 4, 0); }
static void e_inst_short(tfile *f, uint32_t n) { (void)n; f->len[INST] -= 1; }
static void e_none(tfile *f, uint32_t n) { (void)f; (void)n; }

static const craft crafts[] = {
    { "opcode = size of the op table", e_opcode_count, "opcode 6 out of range (the file names 6 operations)", 0 },
    { "opcode 255", e_opcode_255, "opcode 255 out of range", 0 },
    { "operand is its own instruction", e_operand_self, "is not earlier", 0 },
    { "operand is a later instruction", e_operand_later, "is not earlier", 0 },
    { "operand beyond the tape", e_operand_huge, "is not earlier", 0 },
    { "unused operand of a unary op", e_unused_nonzero, "unused operand 2 is not 0", 0 },
    { "unused operand of a leaf", e_leaf_b_nonzero, "unused operand 3 is not 0", 0 },
    { "inputs swapped", e_input_swap, "out of order", 0 },
    { "input index skipped", e_input_skip, "out of order", 0 },
    { "an input turned into a constant", e_input_as_const, "input instructions, the input blocks hold", 0 },
    { "constant index out of range", e_const_index, "constant 1 of 1", 0 },
    { "output refers past the tape", e_output_missing, "refers to a missing instruction", 0 },
    { "output refers to 2^32-1", e_output_huge, "refers to a missing instruction", 0 },
    { "tape name with an overlong UTF-8 form", e_name_overlong, "not valid UTF-8", 0 },
    { "tape name with a control character", e_name_control, "not valid UTF-8", 0 },
    { "tape name with a NUL byte", e_name_nul, "not valid UTF-8", 0 },
    { "tape name with a surrogate", e_name_surrogate, "not valid UTF-8", 0 },
    { "tape name ending inside a UTF-8 sequence", e_name_cut_utf8, "not valid UTF-8", 0 },
    { "tape name of length 0", e_name_len0, "has length 0", 0 },
    { "tape name of length 300", e_name_len300, "has length 300", 0 },
    { "tape name longer than its section", e_name_len_long, "truncated tape name", 0 },
    { "block name with a byte 0xff", e_block_bad_utf8, "input block name is not valid UTF-8", 0 },
    { "duplicate input block names", e_dup_input, "duplicate block name \"a1\"", 0 },
    { "duplicate output block names", e_dup_output, "duplicate block name \"y1\"", 0 },
    { "empty block, its input left over", e_block_empty, "input instructions or more, the input blocks hold 2", 0 },
    { "input block larger than its inputs", e_block_bigger, "input instructions, the input blocks hold", 0 },
    { "output block larger than the outputs", e_out_block_bigger, "outputs, the output blocks hold", 0 },
    { "2^32-1 input blocks", e_blocks_huge, "blocks cannot fit", 0 },
    { "input scalars overflow 32 bits", e_scalars_overflow, "too many input or output scalars", 0 },
    { "10^9 input scalars, 8 instructions", e_inputs_huge, "the input blocks hold 1000000001 scalars, more than the 8 instructions", 0 },
    { "2^32-1 instructions", e_insts_huge, "instructions need", 0 },
    { "one instruction more than present", e_insts_plus1, "instructions need", 0 },
    { "2^29 constants", e_consts_huge, "constants do not match", 0 },
    { "one output more than the blocks hold", e_outputs_plus1, "4 outputs, the output blocks hold 3", 0 },
    { "unknown flags", e_flags, "unknown flags 0x4", 0 },
    { "format version 4", e_version, "unsupported format version 4", 0 },
    { "a format 2 file marked format 3", e_version3, "format 3 has 7 sections, the header says 6", 0 },
    { "a format 2 file marked format 1", e_version1, "format 1 has 5 sections, the header says 6", 0 },
    { "unknown op name", e_opname_unknown, "unknown operation \"sip\"", 0 },
    { "op names out of order", e_opname_order, "op name table not in order at \"abput\"", 0 },
    { "duplicate op name", e_opname_dup, "op name table not in order at \"sin\"", 0 },
    { "op name used by no instruction", e_opname_unused, "op name \"sin\" is used by no instruction", 0 },
    { "257 op names", e_opnames_huge, "257 op names (at most 256", 0 },
    { "one op name more than present", e_opnames_short, "truncated op name", 0 },
    { "7 sections", e_nsections, "format 2 has 6 sections, the header says 7", 0 },
    { "bad magic", e_magic, "bad magic", 0 },
    { "misspelt section tag", e_tag, "expected section KPOO", 0 },
    { "sections out of order", e_order, "expected section KPOO", 0 },
    { "bytes after the META fields", e_meta_trailing, "unexpected bytes at the end of section META", 0 },
    { "bytes after the outputs", e_outs_trailing, "output count does not match the section length", 0 },
    { "instruction columns one byte short", e_inst_short, "instructions need", 0 },
    { "data after the last section", e_none, "unexpected data after the last section", 8 },
};

Test(file, crafted_corruptions_name_the_problem)
{
    tg_tape *t = crafted();
    bytes b = save_bytes(t, "a.tape");
    tfile f = tf_parse(b);
    uint32_t n = get32(f.sec[INST]);
    cr_assert_eq(n, 8);
    /* Sanity: the untouched rebuild is the file itself and loads. */
    bytes same = tf_build(&f, 0);
    cr_assert(same_bytes(b, same), "tf_build does not reproduce the file");
    free(same.p);
    for (size_t i = 0; i < sizeof crafts / sizeof *crafts; i++) {
        tfile g = tf_parse(b);
        crafts[i].edit(&g, n);
        bytes bad = tf_build(&g, crafts[i].extra);
        expect_bytes_format(bad, crafts[i].want, crafts[i].what);
        free(bad.p);
        tf_free(&g);
    }
    tf_free(&f);
    free(b.p);
    tg_tape_free(t);
}

/* Raw edits the section builder cannot express. */
Test(file, crafted_lengths_and_checksums)
{
    tg_tape *t = crafted();
    bytes b = save_bytes(t, "a.tape");
    uint8_t *p = malloc(b.n);
    size_t meta_len = (size_t)get64(b.p + 28), blks_at = 24 + 20 + meta_len;

    memcpy(p, b.p, b.n);                        /* section longer than the file */
    put64(p + blks_at + 4, b.n);
    fixup(p, b.n);
    expect_bytes_format((bytes){ p, b.n }, "section BLKS is longer than the file", "long section");

    memcpy(p, b.p, b.n);                        /* section length 2^64-1 */
    put64(p + blks_at + 4, UINT64_MAX);
    fixup(p, b.n);
    expect_bytes_format((bytes){ p, b.n }, "section BLKS is longer than the file", "huge section");

    memcpy(p, b.p, b.n);                        /* section hash wrong, file hash right */
    p[blks_at + 12 + 10] ^= 0x20;               /* "a1" -> "A1" */
    put64(p + b.n - 8, fnv1a(p, b.n - 8));
    expect_bytes_format((bytes){ p, b.n }, "section BLKS checksum mismatch", "section hash");

    memcpy(p, b.p, b.n);                        /* file hash wrong */
    p[b.n - 1] ^= 1;
    expect_bytes_format((bytes){ p, b.n }, "file checksum mismatch", "file hash");

    memcpy(p, b.p, b.n);                        /* declared size wrong */
    put64(p + 16, b.n + 1);
    expect_bytes_format((bytes){ p, b.n }, "truncated or extended", "declared size");

    /* An output sharing an input's name is fine: the original loads. */
    write_bytes(tpath("c.tape"), b.p, b.n);
    tg_tape *u = tg_tape_load(tpath("c.tape"));
    TU_TAPE_OK(u);
    cr_assert_str_eq(tg_output_block_name(u, 1), "a1");
    tg_tape_free(u);
    free(p);
    free(b.p);
    tg_tape_free(t);
}

/* ------------------------------------------------------ instruction limit */

Test(file, instruction_limit_is_a_sticky_error_without_wraparound)
{
    tg_tape *t = tu_tape("limited", TG_NO_CSE), *ref = tu_tape("limited", TG_NO_CSE);
    tg_var x = tg_input(t, "x"), xr = tg_input(ref, "x");
    tg_var acc = x, accr = xr;
    for (int i = 0; i < 10; i++) {
        acc = tg_sin(tg_add(acc, x));
        accr = tg_sin(tg_add(accr, xr));
    }
    size_t before = tg_tape_size(t);
    cr_assert_eq(tg_tape_set_limit(t, before - 1), TG_ERR_ARG, "a limit below the size is refused");
    cr_assert_eq(tg_tape_set_limit(NULL, 10), TG_ERR_ARG);
    TU_OK(tg_tape_set_limit(t, before + 5));
    for (int i = 0; i < 10; i++) {             /* 20 more instructions: 5 fit */
        acc = tg_sin(tg_add(acc, x));
        accr = tg_sin(tg_add(accr, xr));
    }
    cr_assert_eq(tg_tape_status(t), TG_ERR_LIMIT, "status %s: %s", tg_status_str(tg_tape_status(t)),
                 tg_tape_error(t));
    cr_assert(strlen(tg_tape_error(t)) > 0);
    cr_assert_eq(tg_tape_size(t), before + 5, "size %zu, limit %zu", tg_tape_size(t), before + 5);
    cr_assert_eq(acc.id, TG_NIL, "a value past the limit must be nil, not a wrapped id");
    tg_output(t, "f", acc);
    cr_assert_eq(tg_tape_status(t), TG_ERR_LIMIT, "the first error stays");
    cr_assert_eq(tg_tape_size(t), before + 5);
    /* The instructions recorded before the limit are intact. */
    char *dt = tg_tape_disasm(t), *dr = tg_tape_disasm(ref);
    cr_assert(dt && dr);
    const char *lt = strstr(dt, "%0 = "), *lr = strstr(dr, "%0 = ");
    cr_assert(lt && lr);
    char last[32];
    snprintf(last, sizeof last, "%%%zu = ", before + 5);
    const char *end = strstr(lr, last);
    cr_assert(end != NULL);
    size_t len = (size_t)(end - lr);
    cr_assert(strncmp(lt, lr, len) == 0, "instructions before the limit changed:\n%s\nvs\n%.*s", lt,
              (int)len, lr);
    cr_assert(strstr(lt, last) == NULL, "an instruction past the limit was recorded");
    cr_assert_eq(tg_tape_save(t, tpath("a.tape")), TG_ERR_LIMIT);
    double y;
    cr_assert_eq(tg_eval(t, &y, &y), TG_ERR_LIMIT);
    free(dt);
    free(dr);
    tg_tape_free(t);
    tg_tape_free(ref);
}

/* ------------------------------------------------------ bounded reading */

#define RSS_LIMIT_KB (32 * 1024)

/* Loads path in a child (killed after 20 s); its status and message come
 * back through a pipe.  Returns the child's peak RSS in kB. */
static long
load_in_child(const char *path, tg_status *status, char *msg, size_t len, double *seconds)
{
    int fd[2];
    cr_assert(pipe(fd) == 0);
    fflush(NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        alarm(20);
        tg_tape *t = tg_tape_load(path);
        char out[600];
        int n = snprintf(out, sizeof out, "%d %s", t ? (int)tg_tape_status(t) : -1,
                         t ? tg_tape_error(t) : "NULL");
        _exit(write(fd[1], out, (size_t)n) == n ? 0 : 1);
    }
    close(fd[1]);
    char buf[600] = "";
    ssize_t got = read(fd[0], buf, sizeof buf - 1);
    close(fd[0]);
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "loading %s: the child %s %d", path,
              WIFEXITED(st) ? "exited with" : "was killed by signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    buf[got > 0 ? got : 0] = '\0';
    int code = -1, off = 0;
    cr_assert(sscanf(buf, "%d %n", &code, &off) == 1, "child said \"%s\"", buf);
    *status = (tg_status)code;
    snprintf(msg, len, "%s", buf + off);
    struct rusage ru;
    cr_assert(getrusage(RUSAGE_CHILDREN, &ru) == 0);
    return ru.ru_maxrss;    /* the largest child so far: these tests fork only loaders */
}

static void
expect_refused_small(const char *path, tg_status want, const char *msg_part)
{
    tg_status s;
    char msg[600];
    double sec;
    long rss = load_in_child(path, &s, msg, sizeof msg, &sec);
    cr_log_info("%s: %s in %.3f s, child peak RSS %ld kB", path, msg, sec, rss);
    cr_expect_eq(s, want, "%s: status %s (%s)", path, tg_status_str(s), msg);
    cr_expect(strstr(msg, msg_part) != NULL, "%s: \"%s\" lacks \"%s\"", path, msg, msg_part);
    cr_expect_lt(rss, RSS_LIMIT_KB, "%s: the loader's peak RSS was %ld kB", path, rss);
    cr_expect_lt(sec, 10.0, "%s took %.1f s to refuse", path, sec);
}

Test(file, endless_devices_are_refused_at_their_header)
{
    expect_refused_small("/dev/zero", TG_ERR_FORMAT, "at byte 0: not a tapegen tape file (bad magic)");
    expect_refused_small("/dev/urandom", TG_ERR_FORMAT, "bad magic");
    expect_refused_small("/dev/null", TG_ERR_FORMAT, "bad magic");
}

Test(file, a_1GB_junk_file_is_refused_with_little_memory)
{
    /* sparse: costs no disk; on a RAM file system no memory either */
    char big[96];
    snprintf(big, sizeof big, "/tmp/tg-test-junk-%ld.bin", (long)getpid());
    int fd = open(big, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    if (ftruncate(fd, (off_t)1 << 30) != 0) {
        close(fd);
        unlink(big);
        cr_skip_test("cannot make a 1 GB sparse file in /tmp");
    }
    expect_refused_small(big, TG_ERR_FORMAT, "bad magic");
    /* A header claiming another size is refused before the body is read. */
    tg_tape *t = crafted();
    bytes b = save_bytes(t, "a.tape");
    cr_assert(pwrite(fd, b.p, 24, 0) == 24);
    expect_refused_small(big, TG_ERR_FORMAT, "truncated or extended");
    /* A valid header declaring the real size, junk behind it: the file's
     * hash is checked by streaming, before anything of its size is
     * allocated (64 MB here: hashing a gigabyte takes seconds). */
    uint8_t size[8];
    cr_assert(ftruncate(fd, (off_t)64 << 20) == 0);
    put64(size, (uint64_t)64 << 20);
    cr_assert(pwrite(fd, size, 8, 16) == 8);
    expect_refused_small(big, TG_ERR_FORMAT, "at byte 67108856: file checksum mismatch");
    /* So is a header with a format this build does not read. */
    uint8_t v[4];
    put32(v, 99);
    cr_assert(pwrite(fd, v, 4, 8) == 4);
    expect_refused_small(big, TG_ERR_FORMAT, "unsupported format version 99");
    close(fd);
    unlink(big);
    free(b.p);
    tg_tape_free(t);
}

/* Writes p[0..n) into the FIFO from a child, then loads it. */
static tg_tape *
load_through_fifo(const uint8_t *p, size_t n)
{
    unlink(tpath("fifo"));
    cr_assert(mkfifo(tpath("fifo"), 0600) == 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);   /* the reader may stop early */
        int fd = open(tpath("fifo"), O_WRONLY);
        size_t done = 0;
        while (fd >= 0 && done < n) {
            ssize_t w = write(fd, p + done, n - done);
            if (w <= 0)
                break;
            done += (size_t)w;
        }
        _exit(0);
    }
    tg_tape *t = tg_tape_load(tpath("fifo"));
    int st;
    waitpid(pid, &st, 0);
    return t;
}

Test(file, a_stream_is_read_up_to_its_declared_size)
{
    tg_tape *t = mixed("stream", 0, 0);
    bytes b = save_bytes(t, "a.tape");
    tg_tape *u = load_through_fifo(b.p, b.n);
    TU_TAPE_OK(u);
    assert_same_tape(t, u, 9);
    tg_tape_free(u);
    uint8_t *more = calloc(b.n + 100, 1);
    memcpy(more, b.p, b.n);
    u = load_through_fifo(more, b.n + 100);
    cr_expect_eq(tg_tape_status(u), TG_ERR_FORMAT, "%s", tg_tape_error(u));
    cr_expect(strstr(tg_tape_error(u), "the stream has more than") != NULL, "%s", tg_tape_error(u));
    tg_tape_free(u);
    u = load_through_fifo(b.p, b.n - 5);
    cr_expect_eq(tg_tape_status(u), TG_ERR_FORMAT, "%s", tg_tape_error(u));
    cr_expect(strstr(tg_tape_error(u), "truncated") != NULL, "%s", tg_tape_error(u));
    tg_tape_free(u);
    free(more);
    free(b.p);
    tg_tape_free(t);
}

/* ------------------------------------------------------ zero-size blocks */

/* The crafted tape with an empty input block "lambda" after "a2" and an
 * empty output block "none" first, written by hand (tapefile.h). */
Test(file, zero_size_blocks_survive_files)
{
    tg_tape *t = crafted();
    bytes b = save_bytes(t, "a.tape");
    tfile f = tf_parse(b);
    /* BLKS: counts (8), a1 (8), a2 (8) | y1 (8), a1 (8) */
    put32(f.sec[BLKS], 3);
    put32(f.sec[BLKS] + 4, 3);
    size_t at = 8 + 8 + 8;
    uint8_t lambda[12] = { 6, 0, 'l', 'a', 'm', 'b', 'd', 'a', 0, 0, 0, 0 };
    uint8_t none[10] = { 4, 0, 'n', 'o', 'n', 'e', 0, 0, 0, 0 };
    tf_insert(&f, BLKS, at, sizeof lambda, 0);
    memcpy(f.sec[BLKS] + at, lambda, sizeof lambda);
    at += sizeof lambda;
    tf_insert(&f, BLKS, at, sizeof none, 0);
    memcpy(f.sec[BLKS] + at, none, sizeof none);
    bytes z = tf_build(&f, 0);
    write_bytes(tpath("c.tape"), z.p, z.n);
    tg_tape *u = tg_tape_load(tpath("c.tape"));
    TU_TAPE_OK(u);
    cr_assert_eq(tg_num_input_blocks(u), 3);
    cr_assert_eq(tg_num_output_blocks(u), 3);
    cr_assert_str_eq(tg_input_block_name(u, 2), "lambda");
    cr_assert_eq(tg_input_block_size(u, 2), 0);
    cr_assert_eq(tg_input_block_offset(u, 2), 3);
    cr_assert_str_eq(tg_output_block_name(u, 0), "none");
    cr_assert_eq(tg_output_block_size(u, 0), 0);
    cr_assert_eq(tg_output_block_offset(u, 1), 0);
    cr_assert_eq(tg_num_inputs(u), 3);
    cr_assert_eq(tg_num_outputs(u), 3);
    double x[3] = { 0.3, -0.7, 1.9 }, y1[3], y2[3];
    TU_OK(tg_eval(t, x, y1));
    TU_OK(tg_eval(u, x, y2));
    for (int j = 0; j < 3; j++)
        cr_assert(tu_same_bits(y1[j], y2[j]), "output %d", j);
    /* Saved again, the same bytes. */
    bytes again = save_bytes(u, "b.tape");
    cr_assert(same_bytes(z, again), "save(load(file)) != file with empty blocks");
    /* And with the recorder's own empty blocks, when it has them. */
    tg_tape *r = tu_tape("recorded", 0);
    tg_var xr = tg_input(r, "x");
    tg_input_vec(r, "lambda", 0, NULL);
    tg_output(r, "f", tg_sin(xr));
    if (tg_tape_status(r) == TG_OK) {
        round_trip(r, 77);
    } else {
        cr_log_info("the recorder refuses empty blocks (%s): hand-written file only", tg_tape_error(r));
    }
    tg_tape_free(r);
    free(again.p);
    free(z.p);
    tf_free(&f);
    free(b.p);
    tg_tape_free(u);
    tg_tape_free(t);
}

/* ------------------------------------------------------ the verifier */

typedef void (*break_fn)(tg_tape *t);

/* mixed(): inputs x[3] (instructions 0..2), p (3), ... */
static void b_opcode(tg_tape *t) { t->op[t->n - 1] = TG_OP_COUNT; }
static void b_operand(tg_tape *t) { t->a[t->n - 1] = t->n - 1; }
static void b_const(tg_tape *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->op[i] == TG_OP_CONST) {
            t->a[i] = t->nk;
            return;
        }
}
static void b_input_order(tg_tape *t) { t->a[0] = 1; t->a[1] = 0; }
static void b_in_ref(tg_tape *t) { t->in_ref[1] = 0; }
static void b_output(tg_tape *t) { t->out_ref[0] = t->n; }
static void b_block(tg_tape *t) { t->inb[0].size = 2; }
static void b_nin(tg_tape *t) { t->nin = 3; t->inb[1].size = 0; }

Test(file, verifier_finds_each_broken_invariant)
{
    static const struct {
        break_fn brk;
        const char *want;
    } cases[] = {
        { b_opcode, "out of range" }, { b_operand, "is not earlier" }, { b_const, "constant" },
        { b_input_order, "out of order" }, { b_in_ref, "is recorded at instruction" },
        { b_output, "refers to a missing instruction" }, { b_block, "is not where the blocks before it end" },
        { b_nin, "input instructions or more" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tg_tape *t = mixed("verify", TG_NO_CSE, 0);
        char msg[256];
        cr_assert_eq(tape_verify(t, msg, sizeof msg), 0, "a recorded tape: %s", msg);
        cases[c].brk(t);
        cr_expect_eq(tape_verify(t, msg, sizeof msg), -1, "case %zu not caught", c);
        cr_expect(strstr(msg, cases[c].want) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, msg,
                  cases[c].want);
        tg_tape_free(t);
    }
    /* Tapes made by every pass verify. */
    tg_tape *f = mixed("f", 0, 1);
    tg_tape *h = tg_hessian_tape(f, TG_ALL);
    TU_OK(tg_tape_optimize(h, TG_OPT_MAX));
    char msg[256];
    cr_assert_eq(tape_verify(h, msg, sizeof msg), 0, "%s", msg);
    tg_tape_free(h);
    tg_tape_free(f);
}
