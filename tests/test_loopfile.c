/* tests/test_loopfile.c -- looped tapes in files (format 3) and the
 * invariants of extended instructions (tape_verify).
 *
 * Round trips: a nested looped tape saved and loaded has the same
 * disassembly and evaluates bit for bit as before; saving it again gives
 * the same bytes; a tape without loops is still written as format 2.
 * Broken looped tapes (each invariant of internal.h about extended
 * instructions broken in memory) fail tape_verify with the right message,
 * and, written to a file by the unvalidating writer, fail to load with
 * TG_ERR_FORMAT.  Crafted format 3 files (a body shared by two tapes, a
 * body that is no later tape, too many tapes for the bytes, bodies nested
 * too deep) are refused. */
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tapefile.h"
#include "tape/internal.h"

static char tmpdir[256];

static const char *path_of(const char *name)
{
    static char p[512];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/tg_loopfile_%ld", (long)getpid());
        mkdir(tmpdir, 0700);
    }
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* map body: x[1], p[1] -> y[1] */
static tg_tape *body_m(void)
{
    tg_tape *b = tu_tape("m", 0);
    tg_var x = tg_input(b, "x"), p = tg_input(b, "p");
    tg_output(b, "y", tg_mul(tg_sin(x), tg_add(p, -0.0)));
    return b;
}

/* scan body with a map inside: c[1], x[2], p[1] -> cn[1], y[2] */
static tg_tape *body_s(const tg_tape *m)
{
    tg_tape *b = tu_tape("s", 0);
    tg_var c = tg_input(b, "c"), x[2], p, y[2];
    tg_input_vec(b, "x", 2, x);
    p = tg_input(b, "p");
    tg_var q = tg_mul(c, p);
    tg_map(b, m, 2, x, &q, y);
    tg_output(b, "cn", tg_add(c, tg_add(y[0], y[1])));
    tg_output_vec(b, "y", 2, y);
    return b;
}

/* outer: a scan of s (which maps m) and a map of m. */
static tg_tape *looped(void)
{
    tg_tape *m = body_m(), *s = body_s(m);
    tg_tape *t = tu_tape("looped", 0);
    tg_var x[6], p = tg_input(t, "p"), c, ys[6], ym[6];
    tg_input_vec(t, "x", 6, x);
    tg_scan(t, s, 3, &p, x, &p, &c, ys);
    tg_map(t, m, 6, ys, &p, ym);
    tg_output(t, "c", tg_mul(c, c));
    tg_output_vec(t, "ym", 6, ym);
    TU_TAPE_OK(t);
    tg_tape_free(m);
    tg_tape_free(s);
    return t;
}

static void same_eval(const tg_tape *a, const tg_tape *b)
{
    double x[7] = { 0.5, -1.0, 2.0, -0.0, INFINITY, 3.0, NAN }, ya[7], yb[7];
    for (int rep = 0; rep < 3; rep++) {
        x[0] = 0.25 * rep - 0.3;
        TU_OK(tg_eval(a, x, ya));
        TU_OK(tg_eval(b, x, yb));
        for (int j = 0; j < 7; j++)
            cr_expect(tu_same_bits_nan(ya[j], yb[j]), "output %d: %.17g vs %.17g", j, ya[j], yb[j]);
    }
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    cr_assert(p && fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL);
    cr_assert(fwrite(p, 1, len, f) == len);
    fclose(f);
}

Test(loopfile, round_trip)
{
    tg_tape *t = looped();
    const char *p1 = path_of("a.tape");
    TU_OK(tg_tape_save(t, p1));
    tg_tape *u = tg_tape_load(p1);
    TU_TAPE_OK(u);
    char *d1 = tg_tape_disasm(t), *d2 = tg_tape_disasm(u);
    cr_assert(d1 && d2);
    cr_expect_str_eq(d2, d1);
    same_eval(t, u);
    char msg[256];
    cr_expect_eq(tape_verify(u, msg, sizeof msg), 0, "%s", msg);
    cr_expect_eq(u->depth, 2u);
    /* canonical: saving the loaded tape gives the same bytes */
    const char *p2 = path_of("b.tape");
    TU_OK(tg_tape_save(u, p2));
    size_t l1, l2;
    uint8_t *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    cr_expect(l1 == l2 && memcmp(b1, b2, l1) == 0, "re-saved file differs");
    cr_expect_eq(get32(b1 + 8), 3u, "a looped tape is written as format 3");
    /* the loaded tape records on: another loop, then evaluation */
    tg_var y[6], x = { u, tg_input_ref(u, 1) }, xs[6] = { x, x, x, x, x, x }, pu = { u, tg_input_ref(u, 0) };
    const tg_tape *m = tg_tape_body(u, 1);
    cr_assert(m != NULL && tg_num_input_blocks(m) == 2);
    tg_map(u, m, 6, xs, &pu, y);
    TU_TAPE_OK(u);
    cr_expect_eq(tg_tape_num_bodies(u), 2u, "the same body is found, not stored again");
    free(b1);
    free(b2);
    free(d1);
    free(d2);
    tg_tape_free(t);
    tg_tape_free(u);
}

Test(loopfile, loop_free_tapes_stay_format_2)
{
    tg_tape *t = tu_tape("plain", 0);
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", tg_exp(x));
    const char *p = path_of("plain.tape");
    TU_OK(tg_tape_save(t, p));
    size_t len;
    uint8_t *b = slurp(p, &len);
    cr_expect_eq(get32(b + 8), 2u);
    free(b);
    tg_tape_free(t);
}

/* ------------------------------------------------ broken invariants */

typedef void (*break_fn)(tg_tape *t);

/* looped(): p = %0, x = %1..%6, scan at %7 (record 0), its XOUTs %8..%14,
 * map at %15 (record 1), XOUTs %16..%21, then c*c (the last instruction). */
static uint32_t scan_at(const tg_tape *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->op[i] == TG_OP_SCAN)
            return i;
    return 0;
}
static void b_xop_late(tg_tape *t) { t->xops[0] = scan_at(t) + 1; }
static void b_xop_loop(tg_tape *t) { t->xops[t->nxops - 1] = scan_at(t); }
static void b_xout_index(tg_tape *t) { t->b[scan_at(t) + 2] = 7; }
static void b_xout_stray(tg_tape *t) { t->op[1] = TG_OP_XOUT; t->a[1] = 0; }
static void b_record(tg_tape *t) { t->a[scan_at(t)] = 1; }
static void b_body_index(tg_tape *t) { t->xr[0].body = 9; }
static void b_shape(tg_tape *t) { t->xr[0].nx = 1; }
static void b_count(tg_tape *t) { t->xr[1].nout = 5; }
static void b_operand_is_loop(tg_tape *t) { t->a[t->n - 1] = scan_at(t); t->op[t->n - 1] = TG_OP_SIN; }
static void b_output_loop(tg_tape *t) { t->out_ref[0] = scan_at(t); }
static void b_depth(tg_tape *t) { t->depth = 5; }
static void b_body_broken(tg_tape *t) { t->bodies[0]->out_ref[0] = 999; }

Test(loopfile, verifier_finds_each_broken_invariant)
{
    static const struct {
        break_fn brk;
        const char *want;
    } cases[] = {
        { b_xop_late, "is not an earlier value" }, { b_xop_loop, "is not an earlier value" },
        { b_xout_index, "is missing" }, { b_xout_stray, "xout not right after" },
        { b_record, "is not the next" }, { b_body_index, "body 9 of" },
        { b_shape, "do not match" }, { b_count, "operand or output count" },
        { b_operand_is_loop, "which has no value" }, { b_output_loop, "missing instruction" },
        { b_depth, "nesting depth" }, { b_body_broken, "body 0:" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tg_tape *t = looped();
        char msg[256];
        cr_assert_eq(tape_verify(t, msg, sizeof msg), 0, "a recorded tape: %s", msg);
        cases[c].brk(t);
        cr_expect_eq(tape_verify(t, msg, sizeof msg), -1, "case %zu not caught", c);
        cr_expect(strstr(msg, cases[c].want) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, msg,
                  cases[c].want);
        tg_tape_free(t);
    }
}

/* Broken tapes written without validation load as TG_ERR_FORMAT.  The
 * writer is the library's (it does not validate); breaks that the writer
 * cannot express (depth, the body pointer) are left out. */
Test(loopfile, broken_files_do_not_load)
{
    static const break_fn brk[] = { b_xop_late, b_xop_loop, b_xout_index, b_record, b_shape,
                                    b_count, b_operand_is_loop, b_output_loop };
    for (size_t c = 0; c < sizeof brk / sizeof *brk; c++) {
        tg_tape *t = looped();
        brk[c](t);
        const char *p = path_of("broken.tape");
        TU_OK(tg_tape_save(t, p));
        tg_tape *u = tg_tape_load(p);
        cr_expect_eq(tg_tape_status(u), TG_ERR_FORMAT, "case %zu: %s", c, tg_tape_error(u));
        cr_expect(strstr(tg_tape_error(u), "at byte") != NULL, "case %zu: %s", c, tg_tape_error(u));
        tg_tape_free(u);
        tg_tape_free(t);
    }
}

/* The file offsets of a format 3 file: the XREC section of tape k. */
static size_t find_tag(const uint8_t *p, size_t len, const char *tag, int nth)
{
    for (size_t at = 24; at + 12 <= len;) {
        if (memcmp(p + at, tag, 4) == 0 && nth-- == 0)
            return at;
        at += 12 + (size_t)get64(p + at + 4) + 8;
    }
    cr_assert_fail("no section %s", tag);
    return 0;
}

static void expect_load_error(uint8_t *b, size_t len, const char *want)
{
    fixup(b, len);
    const char *p = path_of("crafted.tape");
    spit(p, b, len);
    tg_tape *u = tg_tape_load(p);
    cr_expect_eq(tg_tape_status(u), TG_ERR_FORMAT, "%s", tg_tape_error(u));
    cr_expect(strstr(tg_tape_error(u), want) != NULL, "\"%s\" lacks \"%s\"", tg_tape_error(u), want);
    tg_tape_free(u);
}

Test(loopfile, crafted_files)
{
    tg_tape *t = looped();
    const char *p = path_of("c.tape");
    TU_OK(tg_tape_save(t, p));
    size_t len;
    uint8_t *orig = slurp(p, &len), *b = malloc(len);
    cr_assert(b != NULL);
    /* tape 0's bodies are tapes 1 (s) and 3 (m); s's body is tape 2 */
    size_t x0 = find_tag(orig, len, "XREC", 0) + 12, x1 = find_tag(orig, len, "XREC", 1) + 12;
    cr_assert_eq(get32(orig + x0), 2u);
    cr_assert_eq(get32(orig + x0 + 4), 1u);
    cr_assert_eq(get32(orig + x0 + 8), 3u);
    memcpy(b, orig, len);
    put32(b + x0 + 8, 2);                       /* tape 2 the body of tapes 0 and 1 */
    expect_load_error(b, len, "the body of two tapes");
    memcpy(b, orig, len);
    put32(b + x1 + 4, 1);                       /* s is its own body */
    expect_load_error(b, len, "not a later tape");
    memcpy(b, orig, len);
    put32(b + x0 + 8, 9);                       /* beyond the file's tapes */
    expect_load_error(b, len, "not a later tape");
    memcpy(b, orig, len);
    put32(b + find_tag(orig, len, "TAPS", 0) + 12, 100000);
    expect_load_error(b, len, "tapes cannot fit");
    memcpy(b, orig, len);
    put32(b + find_tag(orig, len, "TAPS", 0) + 12, 3);   /* fewer tapes than tape 0 names */
    expect_load_error(b, len, "not a later tape");
    memcpy(b, orig, len);
    put32(b + x0 + 12, 100000);                 /* record count beyond the section */
    expect_load_error(b, len, "records cannot fit");
    free(orig);
    free(b);
    tg_tape_free(t);
}

/* 32 levels of nesting load; the recorder refuses a 33rd. */
Test(loopfile, nesting_depth)
{
    tg_tape *b = tu_tape("lvl", 0);
    tg_var x = tg_input(b, "x");
    tg_input_vec(b, "p", 0, NULL);
    tg_output(b, "y", tg_add(x, 1.0));
    for (int d = 1; d <= 32; d++) {
        tg_tape *n = tu_tape("lvl", 0);
        tg_var nx = tg_input(n, "x"), y;
        tg_input_vec(n, "p", 0, NULL);
        tg_map(n, b, 1, &nx, NULL, &y);
        tg_output(n, "y", tg_add(y, 1.0));
        TU_TAPE_OK(n);
        tg_tape_free(b);
        b = n;
    }
    cr_expect_eq(b->depth, 32u);
    const char *p = path_of("deep.tape");
    TU_OK(tg_tape_save(b, p));
    tg_tape *u = tg_tape_load(p);
    TU_TAPE_OK(u);
    double x0 = 0.5, y0;
    TU_OK(tg_eval(u, &x0, &y0));
    cr_expect_eq(y0, 0.5 + 33.0);
    tg_tape *n = tu_tape("lvl", 0);
    tg_var nx = tg_input(n, "x"), y;
    tg_input_vec(n, "p", 0, NULL);
    tg_map(n, b, 1, &nx, NULL, &y);
    cr_expect_eq(tg_tape_status(n), TG_ERR_LIMIT, "%s", tg_tape_error(n));
    tg_tape_free(n);
    tg_tape_free(u);
    tg_tape_free(b);
}
