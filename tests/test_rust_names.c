/* tests/test_rust_names.c -- the Rust translator's naming rules and the
 * shape of the generated source, without compiling it (no cargo needed).
 *
 *  - tape and block names are sanitised to snake_case identifiers
 *    ("my block" -> my_block, "X" -> x, "2d" -> v2d, non-ASCII -> '_');
 *  - two blocks that sanitise to the same identifier, a block that becomes
 *    a keyword, or `work`, give TG_ERR_NAME (with a message);
 *  - explicit crate and function names are validated strictly and used
 *    verbatim;
 *  - builder kernels are "<crate>_<function>", duplicates are refused;
 *  - the source: #![forbid(unsafe_code)], #![no_std] only in no_std mode,
 *    `pub fn NAME(` with one slice per block in declaration order and the
 *    work slice last, no `unsafe`, no `.signum()`, f32 throughout in f32
 *    mode, WORK_LEN_ equal to the work length returned. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* ------------------------------------------------------------ helpers */

/* A tape named `name` with scalar input blocks in[0..nin) and scalar output
 * blocks out[0..nout); every output uses every input, and one value is used
 * twice (so that the kernel needs work). */
static tg_tape *blocks_tape(const char *name, const char *const *in, size_t nin,
                            const char *const *out, size_t nout)
{
    tg_tape *t = tu_tape(name, 0);
    tg_var s = tg_const(t, 0.5);
    for (size_t i = 0; i < nin; i++)
        s = tg_add(s, tg_input(t, in[i]));
    tg_var u = tg_sin(s);
    for (size_t j = 0; j < nout; j++)
        tg_output(t, out[j], tg_mul(tg_add(u, (double)j), u));
    return t;
}

static tg_status source(const tg_tape *t, const tg_rust_options *o, char **src, size_t *wl)
{
    *src = NULL;
    return tg_rust_source(t, o, src, wl);
}

/* The generated source of t with default options (must succeed). */
static char *source_ok(const tg_tape *t, const tg_rust_options *o, size_t *wl)
{
    char *s = NULL;
    tg_status st = tg_rust_source(t, o, &s, wl);
    cr_assert(st == TG_OK, "tg_rust_source(\"%s\"): %s: %s", tg_tape_name(t), tg_status_str(st),
              tg_last_error());
    cr_assert(s != NULL);
    return s;
}

/* The line of src containing `needle` (malloc'd), or NULL. */
static char *line_with(const char *src, const char *needle)
{
    const char *p = strstr(src, needle);
    if (!p)
        return NULL;
    const char *b = p;
    while (b > src && b[-1] != '\n')
        b--;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - b) : strlen(b);
    char *l = malloc(n + 1);
    cr_assert(l != NULL);
    memcpy(l, b, n);
    l[n] = '\0';
    return l;
}

/* Expects a TG_ERR_NAME from tg_rust_source, with a message. */
static void expect_name_error(const tg_tape *t, const tg_rust_options *o, const char *what)
{
    char *s;
    size_t wl;
    tg_status st = source(t, o, &s, &wl);
    cr_expect(st == TG_ERR_NAME, "%s: tg_rust_source gave %s (%d), expected TG_ERR_NAME", what,
              tg_status_str(st), (int)st);
    if (st == TG_OK)
        free(s);
    else
        cr_expect(tg_last_error()[0] != '\0', "%s: tg_last_error() is empty after a failure",
                  what);
}

/* A fresh temporary directory (not created). */
static void tmp_dir(char *buf, size_t len, const char *tag)
{
    const char *b = getenv("TG_BINARY_DIR");
    int n = snprintf(buf, len, "%s/rust_names_test/%s_%ld", b && *b ? b : "/tmp", tag,
                     (long)getpid());
    cr_assert(n > 0 && (size_t)n < len);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert(s != NULL);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = '\0';
    return s;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The source with comment lines and the forbid attribute removed. */
static char *code_only(const char *src)
{
    size_t n = strlen(src);
    char *out = malloc(n + 1), *o = out;
    cr_assert(out != NULL);
    for (const char *p = src; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p + 1) : strlen(p);
        const char *q = p;
        while (q < p + l && (*q == ' ' || *q == '\t'))
            q++;
        bool skip = strncmp(q, "//", 2) == 0 || strncmp(q, "#![forbid(unsafe_code)]", 23) == 0;
        if (!skip) {
            memcpy(o, p, l);
            o += l;
        }
        p += l;
    }
    *o = '\0';
    return out;
}

/* code with the partial-derivative helpers (tg_powdx, tg_powdy, tg_hypotdx,
 * tg_hypotdx_f64, tg_atan2dx) blanked out: in an f32 crate they widen to
 * f64 on purpose, to compute what the C interpreter computes (issue 9) */
static void blank_wide_helpers(char *code)
{
    static const char *const fns[] = { "\nfn tg_powdx(", "\nfn tg_powdy(", "\nfn tg_hypotdx(",
                                       "\nfn tg_hypotdx_f64(", "\nfn tg_atan2dx(" };
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        char *p = strstr(code, fns[i]);
        char *e = p ? strstr(p, "\n}\n") : NULL;
        if (p && e)
            memset(p, ' ', (size_t)(e - p));
    }
}

/* ---------------------------------------------------------- sanitising */

Test(rust_names, block_and_tape_names_are_sanitised)
{
    static const char *const in[] = { "my block", "X", "2d", "na\xc3\xafve x" };
    static const char *const out[] = { "Out Value" };
    tg_tape *t = blocks_tape("My Tape", in, 4, out, 1);
    size_t wl;
    char *s = source_ok(t, NULL, &wl);
    const char *want = "pub fn my_tape(my_block: &[f64], x: &[f64], v2d: &[f64], na_ve_x: &[f64], "
                       "out_value: &mut [f64], work: &mut [f64]) -> Result<(), Error> {";
    char *l = line_with(s, "pub fn ");
    cr_expect(l && strcmp(l, want) == 0, "signature\n  got:  %s\n  want: %s", l ? l : "(none)",
              want);
    free(l);
    cr_expect(strstr(s, "pub const INPUTS_MY_TAPE: &[(&str, usize)] = &[(\"my_block\", 1), "
                        "(\"x\", 1), (\"v2d\", 1), (\"na_ve_x\", 1)];"),
              "INPUTS_ constant with the sanitised names missing");
    cr_expect(strstr(s, "pub const OUTPUTS_MY_TAPE: &[(&str, usize)] = &[(\"out_value\", 1)];"),
              "OUTPUTS_ constant with the sanitised names missing");
    free(s);
    tg_tape_free(t);

    /* tape names: leading digit, upper case, non-ASCII, punctuation */
    static const struct { const char *tape, *fn; } names[] = {
        { "2d", "v2d" },          { "X", "x" },
        { "my block", "my_block" }, { "caf\xc3\xa9 au lait", "caf_au_lait" },
        { "Rosen-Brock", "rosen_brock" }, { "a..b", "a_b" },
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        static const char *const xin[] = { "x" };
        static const char *const yout[] = { "y" };
        t = blocks_tape(names[i].tape, xin, 1, yout, 1);
        s = source_ok(t, NULL, &wl);
        char needle[128];
        snprintf(needle, sizeof needle, "pub fn %s(x: &[f64], y: &mut [f64], work: &mut [f64])",
                 names[i].fn);
        cr_expect(strstr(s, needle) != NULL, "tape \"%s\": expected `%s`", names[i].tape, needle);
        free(s);
        tg_tape_free(t);
    }
}

Test(rust_names, crate_files_use_sanitised_names)
{
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    tg_tape *t = blocks_tape("My Tape", xin, 1, yout, 1);
    char dir[4096], path[4200];
    tmp_dir(dir, sizeof dir, "crate");
    TU_OK(tg_rust_crate(t, NULL, dir));
    snprintf(path, sizeof path, "%s/Cargo.toml", dir);
    char *toml = read_text(path);
    cr_assert(toml != NULL, "no %s", path);
    cr_expect(strstr(toml, "name = \"my_tape\"") != NULL, "Cargo.toml:\n%s", toml);
    free(toml);
    static const char *files[] = { "README.md", "src/lib.rs", "tests/kernels.rs" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        cr_expect(exists(path), "tg_rust_crate did not write %s", path);
    }
    tg_tape_free(t);
}

/* --------------------------------------------------------- collisions */

Test(rust_names, colliding_blocks_are_refused)
{
    static const struct { const char *a, *b; bool out; } pairs[] = {
        { "a b", "a_b", false },      /* two inputs */
        { "Speed", "speed", false },
        { "x-1", "x.1", false },
        { "y", "Y", true },           /* an input and an output share one namespace */
        { "2d", "v2d", false },
        { "caf\xc3\xa9", "caf\xc3\xa8", false },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        const char *in2[2] = { pairs[i].a, pairs[i].b };
        const char *in1[1] = { pairs[i].a };
        const char *out1[1] = { pairs[i].b };
        static const char *const z[] = { "z" };
        tg_tape *t = pairs[i].out ? blocks_tape("f", in1, 1, out1, 1) : blocks_tape("f", in2, 2, z, 1);
        TU_TAPE_OK(t);
        char what[128];
        snprintf(what, sizeof what, "blocks \"%s\" and \"%s\"", pairs[i].a, pairs[i].b);
        expect_name_error(t, NULL, what);
        tg_tape_free(t);
    }
}

Test(rust_names, keyword_and_work_blocks_are_refused)
{
    static const char *const bad[] = { "fn", "type", "self", "Self", "Type", "match", "loop",
                                       "async", "dyn", "work", "Work", "WORK" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        for (int side = 0; side < 2; side++) {
            const char *in[2] = { "x", bad[i] };
            const char *out[1] = { side ? bad[i] : "y" };
            tg_tape *t = side ? blocks_tape("f", in, 1, out, 1) : blocks_tape("f", in, 2, out, 1);
            char what[128];
            snprintf(what, sizeof what, "%s block \"%s\"", side ? "output" : "input", bad[i]);
            expect_name_error(t, NULL, what);
            tg_tape_free(t);
        }
    }
    /* the tape name too (it becomes the function and crate name) */
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    static const char *const badtape[] = { "fn", "type", "self" };
    for (size_t i = 0; i < 3; i++) {
        tg_tape *t = blocks_tape(badtape[i], xin, 1, yout, 1);
        char what[64];
        snprintf(what, sizeof what, "tape \"%s\"", badtape[i]);
        expect_name_error(t, NULL, what);
        tg_tape_free(t);
    }
}

/* ------------------------------------------------ explicit crate/function */

static const char *const INVALID[] = { "my-crate", "2x", "", "fn", "a b", "_", "self", "x\xc3\xa9" };
static const char *const VALID[] = { "MyKernel", "_k", "eval_kernel" };

Test(rust_names, invalid_explicit_names_are_refused)
{
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    tg_tape *t = blocks_tape("f", xin, 1, yout, 1);
    char dir[4096];
    for (size_t i = 0; i < sizeof INVALID / sizeof *INVALID; i++) {
        char what[128];
        tg_rust_options of = { NULL, INVALID[i], 0, 0 };
        snprintf(what, sizeof what, "function_name \"%s\"", INVALID[i]);
        expect_name_error(t, &of, what);
        tg_rust_options oc = { INVALID[i], NULL, 0, 0 };
        snprintf(what, sizeof what, "crate_name \"%s\"", INVALID[i]);
        expect_name_error(t, &oc, what);

        /* tg_rust_crate refuses them as well and writes nothing */
        tmp_dir(dir, sizeof dir, "invalid");
        tg_status st = tg_rust_crate(t, &of, dir);
        cr_expect(st == TG_ERR_NAME, "tg_rust_crate with function_name \"%s\": %s", INVALID[i],
                  tg_status_str(st));
        cr_expect(tg_last_error()[0] != '\0');
        st = tg_rust_crate(t, &oc, dir);
        cr_expect(st == TG_ERR_NAME, "tg_rust_crate with crate_name \"%s\": %s", INVALID[i],
                  tg_status_str(st));
        char path[4200];
        snprintf(path, sizeof path, "%s/src/lib.rs", dir);
        cr_expect(!exists(path), "tg_rust_crate wrote %s despite an invalid name", path);

        /* the builder: a bad crate name is a sticky error reported by write,
         * a bad function name fails the add */
        tg_rust_builder *b = tg_rust_builder_new(&oc);
        cr_assert(b != NULL);
        tg_rust_builder_add(b, t, "g");
        st = tg_rust_builder_write(b, dir);
        cr_expect(st == TG_ERR_NAME, "builder with crate_name \"%s\": write gave %s", INVALID[i],
                  tg_status_str(st));
        cr_expect(tg_rust_builder_error(b)[0] != '\0', "builder error message empty");
        tg_rust_builder_free(b);
        b = tg_rust_builder_new(NULL);
        cr_assert(b != NULL);
        st = tg_rust_builder_add(b, t, INVALID[i]);
        cr_expect(st == TG_ERR_NAME, "builder add with function name \"%s\" gave %s", INVALID[i],
                  tg_status_str(st));
        cr_expect(tg_rust_builder_error(b)[0] != '\0', "builder error message empty");
        st = tg_rust_builder_write(b, dir);
        cr_expect(st == TG_ERR_NAME, "builder write after a bad add gave %s (errors are sticky)",
                  tg_status_str(st));
        tg_rust_builder_free(b);
    }
    tg_tape_free(t);
}

Test(rust_names, valid_explicit_names_are_used_verbatim)
{
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    tg_tape *t = blocks_tape("Some Tape", xin, 1, yout, 1);
    for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++) {
        tg_rust_options o = { "my_crate", VALID[i], 0, 0 };
        size_t wl;
        char *s = source_ok(t, &o, &wl);
        char needle[256], U[64];
        snprintf(needle, sizeof needle, "pub fn %s(x: &[f64], y: &mut [f64], work: &mut [f64])",
                 VALID[i]);
        cr_expect(strstr(s, needle) != NULL, "function_name \"%s\": `%s` missing", VALID[i],
                  needle);
        size_t k = 0;
        for (; VALID[i][k]; k++)
            U[k] = (char)toupper((unsigned char)VALID[i][k]);
        U[k] = '\0';
        snprintf(needle, sizeof needle, "pub const WORK_LEN_%s: usize = %zu;", U, wl);
        cr_expect(strstr(s, needle) != NULL, "function_name \"%s\": `%s` missing", VALID[i],
                  needle);
        free(s);

        /* as crate names: Cargo.toml's package name */
        tg_rust_options oc = { VALID[i], NULL, 0, 0 };
        char dir[4096], path[4200];
        tmp_dir(dir, sizeof dir, VALID[i]);
        TU_OK(tg_rust_crate(t, &oc, dir));
        snprintf(path, sizeof path, "%s/Cargo.toml", dir);
        char *toml = read_text(path);
        cr_assert(toml != NULL);
        snprintf(needle, sizeof needle, "name = \"%s\"\n", VALID[i]);
        cr_expect(strstr(toml, needle) != NULL, "crate_name \"%s\": Cargo.toml has no `%s`:\n%s",
                  VALID[i], needle, toml);
        free(toml);
        snprintf(path, sizeof path, "%s/tests/kernels.rs", dir);
        char *kt = read_text(path);
        cr_assert(kt != NULL);
        snprintf(needle, sizeof needle, "use %s::*;", VALID[i]);
        cr_expect(strstr(kt, needle) != NULL, "tests/kernels.rs does not `%s`", needle);
        free(kt);
    }
    tg_tape_free(t);
}

/* ------------------------------------------------------------ builder */

Test(rust_names, builder_kernels_are_crate_underscore_function)
{
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    tg_tape *a = blocks_tape("Alpha Tape", xin, 1, yout, 1);
    tg_tape *b2 = blocks_tape("beta", xin, 1, yout, 1);
    char dir[4096], path[4200];

    /* explicit crate name */
    tg_rust_options o = { "kit", NULL, 0, 0 };
    tg_rust_builder *b = tg_rust_builder_new(&o);
    cr_assert(b != NULL);
    TU_OK(tg_rust_builder_add(b, a, "eval"));
    TU_OK(tg_rust_builder_add(b, b2, NULL));       /* the sanitised tape name */
    TU_OK(tg_rust_builder_add(b, a, NULL));
    tmp_dir(dir, sizeof dir, "builder");
    TU_OK(tg_rust_builder_write(b, dir));
    tg_rust_builder_free(b);
    snprintf(path, sizeof path, "%s/src/lib.rs", dir);
    char *s = read_text(path);
    cr_assert(s != NULL);
    static const char *const want[] = { "pub fn kit_eval(", "pub fn kit_beta(",
                                        "pub fn kit_alpha_tape(", "WORK_LEN_KIT_EVAL",
                                        "INPUTS_KIT_BETA", "OUTPUTS_KIT_ALPHA_TAPE" };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(s, want[i]) != NULL, "builder source has no `%s`", want[i]);
    free(s);

    /* default crate name: the first tape's sanitised name */
    b = tg_rust_builder_new(NULL);
    cr_assert(b != NULL);
    TU_OK(tg_rust_builder_add(b, a, "g"));
    TU_OK(tg_rust_builder_add(b, b2, "h"));
    tmp_dir(dir, sizeof dir, "builder_default");
    TU_OK(tg_rust_builder_write(b, dir));
    tg_rust_builder_free(b);
    snprintf(path, sizeof path, "%s/src/lib.rs", dir);
    s = read_text(path);
    cr_assert(s != NULL);
    cr_expect(strstr(s, "pub fn alpha_tape_g(") && strstr(s, "pub fn alpha_tape_h("),
              "default crate name: kernels alpha_tape_g and alpha_tape_h expected");
    free(s);
    snprintf(path, sizeof path, "%s/Cargo.toml", dir);
    s = read_text(path);
    cr_assert(s != NULL);
    cr_expect(strstr(s, "name = \"alpha_tape\"") != NULL, "Cargo.toml:\n%s", s);
    free(s);
    tg_tape_free(a);
    tg_tape_free(b2);
}

Test(rust_names, builder_refuses_duplicate_kernels)
{
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    tg_tape *a = blocks_tape("a", xin, 1, yout, 1);
    tg_tape *xy = blocks_tape("x y", xin, 1, yout, 1);
    char dir[4096];
    tmp_dir(dir, sizeof dir, "dup");

    /* the same function name twice */
    tg_rust_options o = { "kit", NULL, 0, 0 };
    tg_rust_builder *b = tg_rust_builder_new(&o);
    TU_OK(tg_rust_builder_add(b, a, "f"));
    tg_status st = tg_rust_builder_add(b, a, "f");
    cr_expect(st == TG_ERR_NAME, "second kernel kit_f: %s", tg_status_str(st));
    cr_expect(tg_rust_builder_error(b)[0] != '\0');
    st = tg_rust_builder_write(b, dir);
    cr_expect(st == TG_ERR_NAME, "write after a duplicate: %s", tg_status_str(st));
    cr_expect(tg_last_error()[0] != '\0', "tg_last_error() empty after a failed write");
    tg_rust_builder_free(b);

    /* a sanitised tape name meeting an explicit one */
    b = tg_rust_builder_new(&o);
    TU_OK(tg_rust_builder_add(b, xy, NULL));       /* kit_x_y */
    st = tg_rust_builder_add(b, a, "x_y");
    cr_expect(st == TG_ERR_NAME, "kit_x_y twice (\"x y\" and x_y): %s", tg_status_str(st));
    tg_rust_builder_free(b);

    /* the bundle's kernel names colliding with an added one */
    b = tg_rust_builder_new(&o);
    TU_OK(tg_rust_builder_add(b, a, "a_f"));
    st = tg_rust_bundle(b, a);                     /* wants kit_a_f */
    cr_expect(st == TG_ERR_NAME, "bundle kernel kit_a_f after an added kit_a_f: %s",
              tg_status_str(st));
    tg_rust_builder_free(b);
    tg_tape_free(a);
    tg_tape_free(xy);
}

Test(rust_names, builder_crate_name_from_a_keyword_tape_is_refused)
{
    /* the crate name defaults to the first tape's sanitised name: a keyword
     * cannot be a crate name (`use fn::*;` in tests/kernels.rs) */
    static const char *const xin[] = { "x" };
    static const char *const yout[] = { "y" };
    tg_tape *t = blocks_tape("Fn", xin, 1, yout, 1);
    tg_rust_builder *b = tg_rust_builder_new(NULL);
    cr_assert(b != NULL);
    tg_status sa = tg_rust_builder_add(b, t, "g");
    char dir[4096];
    tmp_dir(dir, sizeof dir, "kwcrate");
    tg_status sw = tg_rust_builder_write(b, dir);
    cr_expect(sa == TG_ERR_NAME || sw == TG_ERR_NAME,
              "builder whose crate name defaults to the keyword `fn` (tape \"Fn\"): add gave %s, "
              "write gave %s; expected TG_ERR_NAME", tg_status_str(sa), tg_status_str(sw));
    tg_rust_builder_free(b);
    tg_tape_free(t);
}

/* ------------------------------------------------------- the source text */

/* A tape using every opcode at least once (signum included), with blocks of
 * several sizes. */
static tg_tape *all_ops_tape(void)
{
    tg_tape *t = tu_tape("all_ops", 0);
    tg_var p[3], q = tg_input(t, "q");
    tg_input_vec(t, "p", 3, p);
    tg_var acc[TG_OP_COUNT + 8];
    size_t na = 0;
    for (int op = 0; op < TG_OP_COUNT; op++) {
        int ar = (tg_op_flags((tg_opcode)op) & TG_OPF_EXTENDED) ? 0 : tg_op_arity((tg_opcode)op);
        if (ar == 1)
            acc[na++] = tg_op1((tg_opcode)op, TG_OPND(p[op % 3]));
        else if (ar == 2)
            acc[na++] = tg_op2((tg_opcode)op, TG_OPND(p[op % 3]), TG_OPND(q));
        else if (ar == 3)
            acc[na++] = tg_op3((tg_opcode)op, TG_OPND(q), TG_OPND(p[0]), TG_OPND(p[1]));
    }
    acc[na++] = tg_pow(p[2], 3.5);            /* the constant-exponent pow */
    acc[na++] = tg_mul(p[0], NAN);
    acc[na++] = tg_add(p[1], INFINITY);
    acc[na++] = tg_sub(-1e-310, p[2]);
    tg_output_vec(t, "r", 2, acc);
    tg_output(t, "s", tg_sum(na, acc));
    TU_TAPE_OK(t);
    return t;
}

Test(rust_names, source_shape)
{
    tg_tape *t = all_ops_tape();
    for (int c = 0; c < 4; c++) {
        bool f32 = c & 1, no_std = c >> 1;
        const char *T = f32 ? "f32" : "f64", *other = f32 ? "f64" : "f32";
        tg_rust_options o = { NULL, NULL, f32, no_std };
        size_t wl;
        char *s = source_ok(t, &o, &wl);
        const char *cfg = f32 ? (no_std ? "f32 no_std" : "f32 std") : (no_std ? "f64 no_std" : "f64 std");

        cr_expect(strstr(s, "\n#![forbid(unsafe_code)]\n") != NULL, "[%s] no #![forbid(unsafe_code)]",
                  cfg);
        cr_expect((strstr(s, "#![no_std]") != NULL) == no_std, "[%s] #![no_std] %s", cfg,
                  no_std ? "missing" : "present in std mode");
        char *code = code_only(s);
        cr_expect(strstr(code, "unsafe") == NULL, "[%s] the code uses `unsafe`", cfg);
        cr_expect(strstr(s, ".signum()") == NULL,
                  "[%s] `.signum()` emitted (Rust's signum(-0.0) is -1, tg_signum(-0) is 0)", cfg);
        cr_expect(strstr(s, "tg_signum(") != NULL, "[%s] signum not spelt through tg_signum", cfg);
        blank_wide_helpers(code);
        cr_expect(strstr(code, other) == NULL, "[%s] `%s` appears in the %s source:\n%s", cfg,
                  other, T, line_with(code, other) ? line_with(code, other) : "");
        free(code);

        char want[512];
        snprintf(want, sizeof want,
                 "pub fn all_ops(q: &[%s], p: &[%s], r: &mut [%s], s: &mut [%s], work: &mut [%s]) "
                 "-> Result<(), Error> {", T, T, T, T, T);
        char *l = line_with(s, "pub fn all_ops(");
        cr_expect(l && strcmp(l, want) == 0, "[%s] signature\n  got:  %s\n  want: %s", cfg,
                  l ? l : "(none)", want);
        free(l);
        cr_expect(strstr(s, "pub const INPUTS_ALL_OPS: &[(&str, usize)] = &[(\"q\", 1), (\"p\", 3)];"),
                  "[%s] INPUTS_ALL_OPS", cfg);
        cr_expect(strstr(s, "pub const OUTPUTS_ALL_OPS: &[(&str, usize)] = &[(\"r\", 2), (\"s\", 1)];"),
                  "[%s] OUTPUTS_ALL_OPS", cfg);
        snprintf(want, sizeof want, "pub const WORK_LEN_ALL_OPS: usize = %zu;", wl);
        cr_expect(strstr(s, want) != NULL, "[%s] tg_rust_source's work_len %zu is not the "
                  "WORK_LEN_ALL_OPS constant:\n%s", cfg, wl,
                  line_with(s, "WORK_LEN_ALL_OPS:") ? line_with(s, "WORK_LEN_ALL_OPS:") : "");
        cr_expect(wl == 0, "[%s] a kernel of one part keeps its values in locals, work_len %zu",
                  cfg, wl);
        free(s);
    }
    tg_tape_free(t);
}

Test(rust_names, work_slice_of_a_kernel_without_work)
{
    /* y = x + 1: no value is shared, work_len 0; the work slice is still the
     * last parameter (named _work, unused) */
    tg_tape *t = tu_tape("inc", 0);
    tg_output(t, "y", tg_add(tg_input(t, "x"), 1.0));
    size_t wl = 99;
    char *s = source_ok(t, NULL, &wl);
    cr_expect(wl == 0, "work_len %zu, expected 0", wl);
    cr_expect(strstr(s, "pub const WORK_LEN_INC: usize = 0;") != NULL);
    char *l = line_with(s, "pub fn inc(");
    cr_expect(l && strstr(l, "(x: &[f64], y: &mut [f64], ")
                  && strstr(l, "work: &mut [f64]) -> Result<(), Error>"),
              "signature: %s", l ? l : "(none)");
    free(l);
    free(s);
    tg_tape_free(t);
}

static tg_tape *rosenbrock(size_t n)
{
    tg_tape *t = tu_tape("rosenbrock", 0);
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

/* The WORK_LEN_ constant of kernel U in src, or -1. */
static long work_len_const(const char *src, const char *U)
{
    char needle[160];
    snprintf(needle, sizeof needle, "pub const WORK_LEN_%s: usize = ", U);
    const char *p = strstr(src, needle);
    return p ? strtol(p + strlen(needle), NULL, 10) : -1;
}

Test(rust_names, work_len_reuses_slots)
{
    tg_tape *f = rosenbrock(100);
    tg_tape *g = tg_gradient_tape(f, TG_ALL);
    tg_tape *h = tg_hessian_tape(f, TG_ALL);
    TU_TAPE_OK(g);
    TU_TAPE_OK(h);
    const tg_tape *tt[3] = { f, g, h };
    static const char *U[3] = { "ROSENBROCK", "ROSENBROCK_GRAD", "ROSENBROCK_HESS" };
    for (int i = 0; i < 3; i++) {
        for (int f32 = 0; f32 < 2; f32++) {
            tg_rust_options o = { NULL, NULL, f32, 0 };
            size_t wl;
            char *s = source_ok(tt[i], &o, &wl);
            long c = work_len_const(s, U[i]);
            cr_expect(c >= 0 && (size_t)c == wl, "%s: work_len %zu but WORK_LEN_%s = %ld",
                      tg_tape_name(tt[i]), wl, U[i], c);
            cr_expect(wl < tg_tape_size(tt[i]),
                      "%s: work_len %zu is not smaller than the %zu instructions", tg_tape_name(tt[i]),
                      wl, tg_tape_size(tt[i]));
            if (!f32)
                cr_log_info("Rosenbrock n=100, %-16s %6zu instructions, work_len %zu",
                            tg_tape_name(tt[i]), tg_tape_size(tt[i]), wl);
            free(s);
        }
    }
    tg_tape_free(f);
    tg_tape_free(g);
    tg_tape_free(h);
}

Test(rust_names, errors_leave_a_message)
{
    tg_status st = tg_rust_source(NULL, NULL, NULL, NULL);
    cr_expect(st == TG_ERR_ARG, "NULL tape: %s", tg_status_str(st));
    cr_expect(tg_last_error()[0] != '\0', "tg_last_error() empty after TG_ERR_ARG");
    static const char *const in[2] = { "a b", "a_b" };
    static const char *const out[1] = { "y" };
    tg_tape *t = blocks_tape("f", in, 2, out, 1);
    char *s = NULL;
    st = tg_rust_source(t, NULL, &s, NULL);
    cr_expect(st == TG_ERR_NAME);
    const char *msg = tg_last_error();
    cr_expect(msg[0] != '\0', "tg_last_error() empty after TG_ERR_NAME");
    cr_log_info("collision message: %s", msg);
    tg_tape_free(t);
}
