/* tests/test_golden.c -- tape files outlive releases.
 *
 * tests/data/golden/ holds tape files of format 1 written by release 0.1.0
 * (make_golden.c there, built against that release's library) and, for
 * each, the values release 0.1.0 computed at fixed points (NAME.expect, hex
 * bit patterns).  Together they use every operation of format 1, blocks of
 * sizes 1, 2, 3 and 5, and constants -0.0, +-Inf, NaNs with payloads,
 * subnormals and DBL_MAX.  This suite checks that the running library
 *  - loads each of them and evaluates them bit for bit as release 0.1.0 did;
 *  - writes them in the current format, which loads back to the same
 *    disassembly and the same bits, and saves to the same bytes again;
 *  - refuses format 1 files whose opcodes lie outside the format 1 table;
 *  - loads the format 3 file loops.tape (loops kept in the tape) likewise. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tapefile.h"
#include "testutil.h"

static const char *const golden[] = { "all_ops", "specials", "model", "model_hess", "all_ops_jac_x" };
#define NGOLDEN (sizeof golden / sizeof *golden)

typedef struct expect {
    size_t n, m;
    int points;
    double *x, *y;          /* points * n, points * m */
} expect;

static char *
golden_path(const char *name, const char *ext)
{
    static char buf[2][1024];
    static int k;
    k ^= 1;
    const char *src = getenv("TG_SOURCE_DIR");
    snprintf(buf[k], sizeof buf[k], "%s/tests/data/golden/%s.%s", src ? src : ".", name, ext);
    return buf[k];
}

static double
hex_double(FILE *f)
{
    uint64_t u = 0;
    cr_assert(fscanf(f, " %" SCNx64, &u) == 1, "bad hex value in an .expect file");
    return tu_from_bits(u);
}

static expect
read_expect(const char *name)
{
    FILE *f = fopen(golden_path(name, "expect"), "r");
    cr_assert(f != NULL, "cannot open %s (TG_SOURCE_DIR unset?)", golden_path(name, "expect"));
    expect e = { 0 };
    char tag[64];
    int version = 0;
    cr_assert(fscanf(f, "tapegen-golden %d tape %63s inputs %zu outputs %zu points %d", &version,
                     tag, &e.n, &e.m, &e.points) == 5 && version == 1, "bad header in %s.expect", name);
    cr_assert_str_eq(tag, name);
    e.x = calloc((size_t)e.points * e.n + 1, sizeof *e.x);
    e.y = calloc((size_t)e.points * e.m + 1, sizeof *e.y);
    for (int p = 0; p < e.points; p++) {
        cr_assert(fscanf(f, " x") == 0);
        for (size_t i = 0; i < e.n; i++)
            e.x[(size_t)p * e.n + i] = hex_double(f);
        cr_assert(fscanf(f, " y") == 0);
        for (size_t j = 0; j < e.m; j++)
            e.y[(size_t)p * e.m + j] = hex_double(f);
    }
    fclose(f);
    return e;
}

/* t evaluates to e's values bit for bit at e's points. */
static void
check_values(const tg_tape *t, const expect *e, const char *what)
{
    cr_assert_eq(tg_num_inputs(t), e->n, "%s: inputs", what);
    cr_assert_eq(tg_num_outputs(t), e->m, "%s: outputs", what);
    double *y = calloc(e->m + 1, sizeof *y);
    for (int p = 0; p < e->points; p++) {
        TU_OK(tg_eval(t, e->x + (size_t)p * e->n, y));
        for (size_t j = 0; j < e->m; j++) {
            double want = e->y[(size_t)p * e->m + j];
            cr_assert(tu_same_bits(y[j], want), "%s: point %d, output %zu: %016" PRIx64
                      " (%s), release 0.1.0 gave %016" PRIx64 " (%s)", what, p, j, tu_bits(y[j]),
                      tu_d(y[j]).s, tu_bits(want), tu_d(want).s);
        }
    }
    free(y);
}

static uint8_t *
slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    uint8_t *p = malloc(1 << 20);
    *n = fread(p, 1, 1 << 20, f);
    fclose(f);
    return p;
}

static char tmp[128];

static void
setup(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/tg-golden-%ld.tape", (long)getpid());
}

static void
teardown(void)
{
    unlink(tmp);
}

TestSuite(golden, .init = setup, .fini = teardown, .timeout = 120);

Test(golden, format1_files_of_release_0_1_0_evaluate_bit_for_bit)
{
    for (size_t g = 0; g < NGOLDEN; g++) {
        size_t n;
        uint8_t *bytes = slurp(golden_path(golden[g], "tape"), &n);
        cr_assert(n > 24 && get32(bytes + 8) == 1, "%s.tape is not a format 1 file", golden[g]);
        free(bytes);
        tg_tape *t = tg_tape_load(golden_path(golden[g], "tape"));
        cr_assert(t != NULL);
        cr_assert_eq(tg_tape_status(t), TG_OK, "%s: %s", golden[g], tg_tape_error(t));
        expect e = read_expect(golden[g]);
        check_values(t, &e, golden[g]);
        tg_tape_free(t);
        free(e.x);
        free(e.y);
    }
}

/* Every format 1 operation is in the golden files: the frozen table is
 * tested entry by entry. */
Test(golden, golden_files_use_every_format1_operation)
{
    bool used[TG_OP_COUNT] = { false };
    for (size_t g = 0; g < NGOLDEN; g++) {
        tg_tape *t = tg_tape_load(golden_path(golden[g], "tape"));
        TU_TAPE_OK(t);
        char *text = tg_tape_disasm(t);
        cr_assert(text != NULL);
        for (int op = 0; op < TG_OP_COUNT; op++) {
            char pat[32];
            snprintf(pat, sizeof pat, " = %s", tg_op_name((tg_opcode)op));
            for (const char *q = strstr(text, pat); q && !used[op]; q = strstr(q + 1, pat))
                used[op] = q[strlen(pat)] == ' ' || q[strlen(pat)] == '\n';
        }
        free(text);
        tg_tape_free(t);
    }
    /* The operations of release 0.1.0 (format 1 numbered 46). */
    static const char *const format1[] = {
        "const", "input", "add", "sub", "mul", "div", "pow", "powk", "min", "max", "atan2", "hypot",
        "azmul", "lt", "le", "gt", "ge", "select", "neg", "sin", "cos", "tan", "asin", "acos", "atan",
        "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp", "expm1", "log", "log1p", "sqrt",
        "cbrt", "erf", "erfc", "abs", "floor", "ceil", "round", "trunc", "fract", "signum",
    };
    for (size_t k = 0; k < sizeof format1 / sizeof *format1; k++) {
        int found = -1;
        for (int op = 0; op < TG_OP_COUNT; op++)
            if (strcmp(tg_op_name((tg_opcode)op), format1[k]) == 0)
                found = op;
        cr_assert(found >= 0, "format 1 operation %s is gone", format1[k]);
        cr_assert(used[found], "no golden file uses %s", format1[k]);
    }
}

Test(golden, format1_files_rewritten_in_the_current_format)
{
    for (size_t g = 0; g < NGOLDEN; g++) {
        tg_tape *t = tg_tape_load(golden_path(golden[g], "tape"));
        TU_TAPE_OK(t);
        TU_OK(tg_tape_save(t, tmp));
        size_t n;
        uint8_t *b1 = slurp(tmp, &n);
        cr_assert(get32(b1 + 8) == 2, "%s: saved as format %u", golden[g], get32(b1 + 8));
        tg_tape *u = tg_tape_load(tmp);
        TU_TAPE_OK(u);
        char *d1 = tg_tape_disasm(t), *d2 = tg_tape_disasm(u);
        cr_assert(d1 && d2 && strcmp(d1, d2) == 0, "%s: disassembly changed", golden[g]);
        expect e = read_expect(golden[g]);
        check_values(u, &e, golden[g]);
        TU_OK(tg_tape_save(u, tmp));
        size_t n2;
        uint8_t *b2 = slurp(tmp, &n2);
        cr_assert(n == n2 && memcmp(b1, b2, n) == 0, "%s: save(load(file)) != file", golden[g]);
        free(b1);
        free(b2);
        free(d1);
        free(d2);
        free(e.x);
        free(e.y);
        tg_tape_free(t);
        tg_tape_free(u);
    }
}

static void
expect_format1_error(const uint8_t *p, size_t n, const char *want)
{
    FILE *f = fopen(tmp, "wb");
    cr_assert(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
    tg_tape *t = tg_tape_load(tmp);
    cr_assert(t != NULL);
    cr_expect_eq(tg_tape_status(t), TG_ERR_FORMAT, "status %s (%s)", tg_status_str(tg_tape_status(t)),
                 tg_tape_error(t));
    cr_expect(strstr(tg_tape_error(t), want) != NULL, "\"%s\" lacks \"%s\"", tg_tape_error(t), want);
    cr_expect(strstr(tg_tape_error(t), "at byte") != NULL, "%s", tg_tape_error(t));
    tg_tape_free(t);
}

/* Format 1 META: u32 opcode count (46 in release 0.1.0), u32 flags, name;
 * its INST section follows BLKS.  Offsets from the file's own layout. */
Test(golden, format1_opcodes_outside_the_frozen_table_are_refused)
{
    size_t n;
    uint8_t *orig = slurp(golden_path("model", "tape"), &n), *p = malloc(n);
    size_t meta = 24 + 12, meta_len = (size_t)get64(orig + 28);
    size_t blks = 24 + 20 + meta_len, inst = blks + 20 + (size_t)get64(orig + blks + 4) + 12;
    cr_assert(memcmp(orig + blks, "BLKS", 4) == 0 && memcmp(orig + inst - 12, "INST", 4) == 0);
    cr_assert_eq(get32(orig + meta), 46);

    memcpy(p, orig, n);                     /* a writer with more ops than format 1 had */
    put32(p + meta, 47);
    fixup(p, n);
    expect_format1_error(p, n, "file uses 47 opcodes, format 1 has 46");

    memcpy(p, orig, n);                     /* opcode 46: past the table */
    p[inst + 4 + get32(orig + inst) - 1] = 46;
    fixup(p, n);
    expect_format1_error(p, n, "opcode 46 out of range (the file names 46 operations)");

    memcpy(p, orig, n);                     /* a writer that knew 3 ops, a file using more */
    put32(p + meta, 3);
    fixup(p, n);
    expect_format1_error(p, n, "out of range (the file names 3 operations)");
    free(p);
    free(orig);
}

/* tests/data/golden/loops.tape: format 3 (loops kept in the tape), written
 * by the first release that writes it (make_golden3.c there): a scan whose
 * body maps a body shared with a top-level map, blocks of size 0, special
 * constants in the bodies.  Every later library loads it, evaluates it bit
 * for bit as that release did, and writes it back to the same bytes. */
Test(golden, format3_looped_file_evaluates_bit_for_bit_and_round_trips)
{
    size_t n;
    uint8_t *orig = slurp(golden_path("loops", "tape"), &n);
    cr_assert(n > 24 && get32(orig + 8) == 3, "loops.tape is not a format 3 file");
    tg_tape *t = tg_tape_load(golden_path("loops", "tape"));
    TU_TAPE_OK(t);
    cr_expect_eq(tg_tape_num_bodies(t), 2u);
    expect e = read_expect("loops");
    check_values(t, &e, "loops");
    TU_OK(tg_tape_save(t, tmp));
    size_t n2;
    uint8_t *again = slurp(tmp, &n2);
    cr_expect(n == n2 && memcmp(orig, again, n) == 0, "loops: save(load(file)) != file");
    free(orig);
    free(again);
    free(e.x);
    free(e.y);
    tg_tape_free(t);
}
