/* test_nist_rust.c -- the parts of nist_fit --rust that need no cargo.
 *
 *  - the agreement rule (ulp distance, relative difference);
 *  - the f64 literals of the runner read back to the same bits, and the
 *    runner's data arrays are the dataset's;
 *  - the crate's files and kernel names, and the C values the check uses
 *    (the Jacobian tape that is translated against tg_jacobian);
 *  - parsing of the runner's output and the comparison: output made from
 *    the C values agrees bit for bit, a perturbed value or a refused kernel
 *    does not, malformed output is an error;
 *  - every generated function uses the parameters it declares used, and
 *    only those (a static check of what rustc would reject or warn about).
 *
 * The end-to-end check with cargo is the CTest nist_rust_agrees (examples/
 * nist_fit/CMakeLists.txt).  The example's sources are compiled in.
 * Data: $TG_SOURCE_DIR/examples/nist_fit/data, else relative to this file.
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>

#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NIST_NO_LMDER 1
#include "../examples/nist_fit/fit.c"
#include "../examples/nist_fit/models.c"
#include "../examples/nist_fit/nist.c"
#include "../examples/nist_fit/rust_check.c"
#include "nist_data.h"

/* A scratch directory for crate files: BIN/test_nist_rust/WHAT (reused from
 * run to run; every test uses its own WHAT), or /tmp/test_nist_rust.PID/WHAT. */
static const char *
scratch(const char *what)
{
    static char dir[4200];
    const char *bin = getenv("TG_BINARY_DIR");
    if (bin && *bin)
        snprintf(dir, sizeof dir, "%s/test_nist_rust/%s", bin, what);
    else
        snprintf(dir, sizeof dir, "/tmp/test_nist_rust.%ld/%s", (long)getpid(), what);
    return dir;
}

/* Adds the dataset called name to rs at its certified parameters. */
static void
add_certified(nist_rust *rs, const char *name)
{
    const nist_model *m = nist_model_find(name);
    nist_dataset d;
    char err[512];

    cr_assert_not_null(m, "no model %s", name);
    cr_assert_eq(nist_load_named(data_dir(), m->name, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(nist_rust_add(rs, &d, m, d.cert, err, sizeof err), 0, "%s", err);
    nist_free(&d);
}

static char *
read_crate_file(const char *dir, const char *rel)
{
    char path[8448];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *s = read_all(path, &len);
    cr_assert_not_null(s, "cannot read %s", path);
    return s;
}

/* Writes what the runner would print if it computed exactly the C values
 * of the translated tapes. */
static void
fake_runner_output(const nist_rust *rs, FILE *f)
{
    for (size_t i = 0; i < rs->n; i++) {
        const nist_rust_case *c = &rs->c[i];
        size_t nk = c->n * (size_t)c->k;
        fprintf(f, "case %s\nrss %016" PRIx64 "\nr %zu", c->name, bits_of(c->rss_c), c->n);
        for (size_t j = 0; j < c->n; j++)
            fprintf(f, " %016" PRIx64, bits_of(c->r_c[j]));
        fprintf(f, "\njac %zu", nk);
        for (size_t j = 0; j < nk; j++)
            fprintf(f, " %016" PRIx64, bits_of(c->J_tape[j]));
        fprintf(f, "\nend\n");
    }
}

/* ------------------------------------------------------------ the rule */

Test(nist_rust, ulp_distance_and_agreement)
{
    double one_up = nextafter(1.0, 2.0), tiny = nextafter(0.0, 1.0);

    cr_expect_eq(nist_ulp_distance(1.0, 1.0), 0);
    cr_expect_eq(nist_ulp_distance(1.0, one_up), 1);
    cr_expect_eq(nist_ulp_distance(one_up, 1.0), 1);
    cr_expect_eq(nist_ulp_distance(0.0, -0.0), 0);
    cr_expect_eq(nist_ulp_distance(-tiny, tiny), 2);
    cr_expect_eq(nist_ulp_distance(-1.0, nextafter(-1.0, -2.0)), 1);
    cr_expect_eq(nist_ulp_distance(NAN, NAN), 0);
    cr_expect_eq(nist_ulp_distance(NAN, 1.0), UINT64_MAX);
    cr_expect_eq(nist_rel_diff(2.0, 2.0), 0.0);
    cr_expect_eq(nist_rel_diff(1.0, 0.5), 0.5);
    cr_expect(isinf(nist_rel_diff(1.0, NAN)));

    double x = 1.0;
    for (int i = 0; i < 4; i++)
        x = nextafter(x, 2.0);
    cr_expect(nist_values_agree(1.0, x), "4 ulp agree");
    cr_expect(nist_values_agree(1.0, 1.0 + 5e-13), "5e-13 relative agrees");
    cr_expect(!nist_values_agree(1.0, 1.0 + 1e-11), "1e-11 relative does not agree");
    cr_expect(!nist_values_agree(1e-300, 2e-300));
    cr_expect(!nist_values_agree(1.0, NAN));
    cr_expect(nist_values_agree(-0.0, 0.0));
}

Test(nist_rust, literals_read_back_to_the_same_bits)
{
    static const double v[] = { 0.0, -0.0, 1.0, -2.0, 77.6, 0.1, 1e22, 1e23, 5e-324,
                                2.2250738585072014e-308, 1.7976931348623157e308,
                                123456789012345678.0, 0.0005501564318059135 };
    char buf[64];
    uint64_t state = 0x9E3779B97F4A7C15u;

    for (size_t i = 0; i < sizeof v / sizeof *v + 20000; i++) {
        double d;
        if (i < sizeof v / sizeof *v) {
            d = v[i];
        } else {                    /* random finite bit patterns */
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            d = double_of(state);
            if (!isfinite(d))
                continue;
        }
        rust_f64(buf, sizeof buf, d);
        cr_assert(strpbrk(buf, ".e"), "%s is not an f64 literal", buf);
        cr_assert_eq(bits_of(strtod(buf, NULL)), bits_of(d), "%s does not read back to %a",
                     buf, d);
    }
}

/* --------------------------------------------------- crate and C values */

Test(nist_rust, crate_files_kernels_and_c_values)
{
    nist_rust rs = { 0 };
    char err[512];
    const char *dir = scratch("crate");

    char path[4300];
    snprintf(path, sizeof path, "%s/Cargo.toml", dir);
    remove(path);                       /* left by an earlier run */
    add_certified(&rs, "Misra1a");
    add_certified(&rs, "BoxBOD");       /* the same model function, other data */
    cr_assert_eq(nist_rust_generate(&rs, dir, err, sizeof err), 0, "%s", err);
    cr_expect(rs.crate_changed);

    char *lib = read_crate_file(dir, "src/lib.rs"), *bin = read_crate_file(dir, "src/bin/nist_check.rs");
    char *toml = read_crate_file(dir, "Cargo.toml"), *cfg = read_crate_file(dir, ".cargo/config.toml");
    cr_expect(strstr(toml, "name = \"nist_kernels\""), "%s", toml);
    cr_expect(strstr(cfg, "offline = true"));
    static const char *const kernels[] = {
        "pub fn nist_kernels_misra1a_r(", "pub fn nist_kernels_misra1a_jac(",
        "pub fn nist_kernels_boxbod_r(", "pub fn nist_kernels_boxbod_jac(",
        /* what the runner relies on */
        "pub const WORK_LEN_NIST_KERNELS_MISRA1A_R: usize",
        "pub const WORK_LEN_NIST_KERNELS_BOXBOD_JAC: usize",
    };
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; i++)
        cr_expect(strstr(lib, kernels[i]), "src/lib.rs lacks `%s`", kernels[i]);
    cr_expect(strstr(bin, "nist_kernels_boxbod_jac(&B, &X, &Y, &mut jac, &mut work)?;"));
    cr_expect(strstr(bin, "(\"Misra1a\", run_misra1a),"));

    /* the runner's X of Misra1a is the data, bit for bit */
    const nist_rust_case *c = &rs.c[0];
    const char *p = strstr(bin, "static X: [f64; 14] = [");
    cr_assert_not_null(p);
    p = strchr(p, '=') + 3;
    for (size_t i = 0; i < c->n; i++) {
        char *end;
        double v = strtod(p, &end);
        cr_assert(end != p && *end == ',', "literal %zu of X", i);
        cr_expect_eq(bits_of(v), bits_of(c->x[i]), "X[%zu]", i);
        p = end + 1;
    }

    /* C values: residuals by hand, the translated Jacobian tape vs the sweeps */
    for (size_t ci = 0; ci < rs.n; ci++) {
        c = &rs.c[ci];
        for (size_t i = 0; i < c->n; i++) {
            double f = c->b[0] * (1.0 - exp(-(c->b[1] * c->x[i])));
            cr_expect(nist_values_agree(c->r_c[i], c->y[i] - f), "%s r[%zu]", c->name, i);
            cr_expect(nist_values_agree(c->J_c[2 * i], -(1.0 - exp(-(c->b[1] * c->x[i])))));
        }
        for (size_t j = 0; j < c->n * (size_t)c->k; j++)
            cr_expect(nist_values_agree(c->J_c[j], c->J_tape[j]), "%s J[%zu]: %a vs %a",
                      c->name, j, c->J_c[j], c->J_tape[j]);
        cr_expect(c->tape_size > 0 && c->jac_tape_size > 0);
    }

    /* a second generation with the same input changes no file */
    cr_assert_eq(nist_rust_generate(&rs, dir, err, sizeof err), 0, "%s", err);
    cr_expect(!rs.crate_changed, "regenerating rewrote a file (cargo would rebuild)");
    free(lib);
    free(bin);
    free(toml);
    free(cfg);
    nist_rust_free(&rs);
}

/* ------------------------------------------------ parse and compare */

Test(nist_rust, parse_and_compare)
{
    nist_rust rs = { 0 };
    char err[512];
    nist_rust_diff d;

    add_certified(&rs, "Misra1a");
    add_certified(&rs, "Eckerle4");
    cr_assert_eq(nist_rust_generate(&rs, scratch("parse"), err, sizeof err), 0, "%s", err);

    /* exactly the C values of the translated tapes: agree, every bit */
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    fake_runner_output(&rs, f);
    rewind(f);
    cr_assert_eq(nist_rust_parse(&rs, f, err, sizeof err), 0, "%s", err);
    fclose(f);
    for (size_t i = 0; i < rs.n; i++) {
        const nist_rust_case *c = &rs.c[i];
        cr_assert(c->have_rust);
        nist_rust_compare(c, &d);
        cr_expect(d.agree, "%s", c->name);
        cr_expect_eq(d.same_tape, c->n + c->n * (size_t)c->k + 1, "%s", c->name);
        cr_expect_eq(d.rel_r, 0.0);
    }
    FILE *out = tmpfile();
    cr_expect_eq(nist_rust_report(&rs, out), 0);
    fclose(out);

    /* one Jacobian entry 1e-9 off: that dataset disagrees, the report says so */
    nist_rust_case *c = &rs.c[1];
    double keep = c->J_rs[5];
    c->J_rs[5] *= 1.0 + 1e-9;
    nist_rust_compare(c, &d);
    cr_expect(!d.agree);
    cr_expect_eq(d.same_tape, c->n + c->n * (size_t)c->k);
    out = tmpfile();
    cr_expect_eq(nist_rust_report(&rs, out), 1);
    fclose(out);
    c->J_rs[5] = keep;

    /* 2 ulp on a residual: not the same bits, but within the rule */
    c->r_rs[0] = nextafter(nextafter(c->r_rs[0], INFINITY), INFINITY);
    nist_rust_compare(c, &d);
    cr_expect(d.agree);
    cr_expect_eq(d.ulp_r, 2);

    /* a refused kernel: no result for that dataset */
    for (size_t i = 0; i < rs.n; i++)
        rs.c[i].have_rust = 0;
    f = tmpfile();
    fprintf(f, "error Misra1a input `x` has 13 values, 14 needed\n");
    rewind(f);
    cr_assert_eq(nist_rust_parse(&rs, f, err, sizeof err), 0, "%s", err);
    fclose(f);
    cr_expect(!rs.c[0].have_rust);
    cr_expect_str_eq(rs.c[0].rs_error, "input `x` has 13 values, 14 needed");
    out = tmpfile();
    cr_expect_eq(nist_rust_report(&rs, out), 2);
    fclose(out);

    /* malformed output */
    static const char *const bad[] = {
        "case Nope\n",
        "case Misra1a\nrss 3ff0000000000000\nr 13\n",
        "case Misra1a\nrss 3ff00000000000zz\n",
        "hello\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = tmpfile();
        fputs(bad[i], f);
        rewind(f);
        cr_expect_eq(nist_rust_parse(&rs, f, err, sizeof err), -1, "accepted: %s", bad[i]);
        fclose(f);
    }
    nist_rust_free(&rs);
}

/* --------------------------------------- the generated functions' parameters */

/* Is `name[` used in body (as a whole identifier)? */
static int
uses(const char *body, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = body; p + nl < body + len; p++) {
        if (strncmp(p, name, nl) == 0 && p[nl] == '['
            && (p == body || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')))
            return 1;
    }
    return 0;
}

/* For every part function `fn NAME_partN(...) {` of lib.rs: a parameter
 * declared `_p:` must not be used as `p[...]` (rustc: E0425, cannot find
 * value), and one declared `p:` must be used (rustc: unused variable)
 * unless the function carries #[allow(unused_variables)].
 * Returns the number of offences; the first few are logged. */
static int
check_parameters(const char *lib, const char *dataset, int *shown)
{
    int bad = 0;
    for (const char *p = lib; (p = strstr(p, "\nfn ")) != NULL;) {
        static const char allow_attr[] = "#[allow(unused_variables)]";
        size_t al = sizeof allow_attr - 1;
        int allow = p - lib >= (ptrdiff_t)al && strncmp(p - al, allow_attr, al) == 0;
        const char *eol = strchr(p + 1, '\n'), *open = strchr(p, '(');
        p += 4;
        if (!eol || !open || open > eol || eol - p < 4 || strncmp(eol - 3, ") {", 3) != 0)
            continue;
        char fname[160];
        snprintf(fname, sizeof fname, "%.*s", (int)(open - p), p);
        if (!strstr(fname, "_part"))
            continue;
        const char *close = eol - 3, *body = eol + 1, *end = strstr(body, "\n}\n");
        if (!end)
            break;
        for (const char *q = open + 1; q < close;) {
            const char *colon = memchr(q, ':', (size_t)(close - q));
            if (!colon)
                break;
            char param[128];
            snprintf(param, sizeof param, "%.*s", (int)(colon - q), q);
            int unused = param[0] == '_';
            int used = uses(body, (size_t)(end - body), param + unused);
            if (unused ? used : (!used && !allow)) {
                bad++;
                if ((*shown)++ < 6)
                    cr_log_error("%s: fn %s declares `%s` but %s", dataset, fname, param,
                                 used ? "uses it (rustc E0425: cannot find value)"
                                      : "never uses it (rustc: unused variable)");
            }
            const char *next = strstr(colon, "], ");
            q = next && next < close ? next + 3 : close;
        }
        p = end;
    }
    return bad;
}

Test(nist_rust, generated_functions_use_exactly_their_parameters)
{
    int total = 0, shown = 0;
    char offenders[512] = "";

    for (size_t mi = 0; mi < nist_num_models; mi++) {
        nist_rust rs = { 0 };
        char err[512];
        const char *dir = scratch(nist_models[mi].name);
        add_certified(&rs, nist_models[mi].name);
        cr_assert_eq(nist_rust_generate(&rs, dir, err, sizeof err), 0, "%s", err);
        char *lib = read_crate_file(dir, "src/lib.rs");
        int bad = check_parameters(lib, nist_models[mi].name, &shown);
        if (bad) {
            size_t l = strlen(offenders);
            snprintf(offenders + l, sizeof offenders - l, " %s (%d)", nist_models[mi].name, bad);
        }
        total += bad;
        free(lib);
        nist_rust_free(&rs);
    }
    cr_expect_eq(total, 0, "Rust translator: %d part-function parameters are declared unused "
                 "but used, or the reverse, in:%s", total, offenders);
}

/* The crate's own tests (tests/kernels.rs, written by tg_rust_builder_write):
 * in a `*_refuses_a_short_input` test the kernel's Result must not be bound
 * to the name of an output array that is checked afterwards, as in
 *     let mut r = [7.0 as f64; 14]; ... let r = kernel(..., &mut r, ...);
 *     assert!(r.iter().all(|&v| v == 7.0));     // rustc E0308
 * which is what an output block named "r" (the residuals) gives. */
Test(nist_rust, generated_crate_tests_do_not_shadow_outputs)
{
    nist_rust rs = { 0 };
    char err[512];
    const char *dir = scratch("crate_tests");
    int bad = 0;

    add_certified(&rs, "Misra1a");
    cr_assert_eq(nist_rust_generate(&rs, dir, err, sizeof err), 0, "%s", err);
    char *tests = read_crate_file(dir, "tests/kernels.rs");
    for (const char *p = tests; (p = strstr(p, "_refuses_a_short_input() {\n")) != NULL;) {
        const char *end = strstr(p, "\n}\n");
        cr_assert_not_null(end);
        const char *call = strstr(p, "    let ");
        for (; call && call < end; call = strstr(call + 1, "    let ")) {
            char name[128];
            if (sscanf(call, "    let %127[A-Za-z0-9_] = %*[a-z0-9_](", name) != 1
                || strncmp(call + 8 + strlen(name), " = nist_kernels_", 16) != 0)
                continue;
            char decl[160], use[160];
            snprintf(decl, sizeof decl, "let mut %s = [7.0", name);
            snprintf(use, sizeof use, "assert!(%s.iter()", name);
            const char *d = strstr(p, decl), *u = strstr(call, use);
            if (d && d < call && u && u < end) {
                const char *fn = p;
                while (fn > tests && fn[-1] != '\n')
                    fn--;
                bad++;
                cr_log_error("tests/kernels.rs: %.*s binds the kernel's Result to `%s`, the "
                             "name of the output it then checks (rustc E0308)",
                             (int)(strchr(p, '(') - fn), fn, name);
            }
        }
        p = end;
    }
    cr_expect_eq(bad, 0, "Rust translator: %d crate tests shadow an output block with the "
                 "kernel's Result", bad);
    free(tests);
    nist_rust_free(&rs);
}
