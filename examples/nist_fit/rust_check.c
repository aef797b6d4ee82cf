/* rust_check.c -- nist_fit --rust: export, build, run and compare (see
 * rust_check.h).
 *
 * The runner prints, for each dataset, in this order:
 *
 *     case NAME
 *     rss HEX
 *     r N HEX...          (N = n residuals)
 *     jac N HEX...        (N = n*k, row-major dr_i/db_j)
 *     end
 *
 * or "error NAME MESSAGE" when a kernel refused its arguments.  HEX is the
 * 16-digit bit pattern of an f64, so nothing is lost on the way.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* popen, clock_gettime, mkdir, access */
#endif

#include "rust_check.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fit.h"

/* ------------------------------------------------------------ helpers */

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t
bits_of(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double
double_of(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Maps a double's bits onto a line where adjacent doubles are adjacent
 * integers (-0 and +0 both at 2^63). */
static uint64_t
ordered(double v)
{
    uint64_t u = bits_of(v);
    return (u >> 63) ? UINT64_C(0x8000000000000000) - (u & ~(UINT64_C(1) << 63))
                     : u + UINT64_C(0x8000000000000000);
}

uint64_t
nist_ulp_distance(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : UINT64_MAX;
    uint64_t oa = ordered(a), ob = ordered(b);
    return oa > ob ? oa - ob : ob - oa;
}

double
nist_rel_diff(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0.0 : INFINITY;
    if (a == b)
        return 0.0;
    double s = fmax(fabs(a), fabs(b));
    return isinf(s) ? INFINITY : fabs(a - b) / s;
}

int
nist_values_agree(double a, double b)
{
    return nist_ulp_distance(a, b) <= NIST_RUST_ULPS || nist_rel_diff(a, b) <= NIST_RUST_REL;
}

/* s in single quotes for sh. */
static int
sh_quote(char *out, size_t len, const char *s)
{
    size_t o = 0;
    if (len < 3)
        return -1;
    out[o++] = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            if (o + 5 >= len)
                return -1;
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            if (o + 2 >= len)
                return -1;
            out[o++] = *s;
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
    return 0;
}

static int
is_exe(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int
nist_find_cargo(char *path, size_t len)
{
    const char *env = getenv("TG_CARGO"), *p = getenv("PATH"), *home = getenv("HOME");

    if (!env || !*env)
        env = getenv("CARGO");
    if (env && *env) {
        snprintf(path, len, "%s", env);
        return is_exe(path) ? 0 : -1;       /* an explicit $CARGO is not second-guessed */
    }
    while (p && *p) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        if (dl > 0 && snprintf(path, len, "%.*s/cargo", (int)dl, p) < (int)len && is_exe(path))
            return 0;
        p = end ? end + 1 : NULL;
    }
    if (home && *home && snprintf(path, len, "%s/.cargo/bin/cargo", home) < (int)len
        && is_exe(path))
        return 0;
    snprintf(path, len, "/root/.cargo/bin/cargo");
    return is_exe(path) ? 0 : -1;
}

static int
mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return -1;
    for (char *q = buf + 1;; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *q = c;
            if (c == '\0')
                return 0;
        }
    }
}

/* v as a Rust f64 literal that reads back to the same bits: the shortest of
 * %.15g, %.16g, %.17g that round-trips, with ".0" added to an integer. */
static void
rust_f64(char *buf, size_t len, double v)
{
    if (isnan(v) || isinf(v)) {
        snprintf(buf, len, "f64::from_bits(0x%016" PRIx64 ")", bits_of(v));
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (bits_of(strtod(buf, NULL)) == bits_of(v))
            break;
    }
    if (!strpbrk(buf, ".eE"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

/* ------------------------------------------------------------- cases */

static void
case_free(nist_rust_case *c)
{
    free(c->x);
    free(c->r_c);
    free(c->r_rs);
    memset(c, 0, sizeof *c);
}

void
nist_rust_free(nist_rust *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        case_free(&rs->c[i]);
    free(rs->c);
    rs->c = NULL;
    rs->n = rs->cap = 0;
}

int
nist_rust_add(nist_rust *rs, const nist_dataset *d, const nist_model *m, const double *b,
              char *err, size_t errlen)
{
    size_t n = d->n, k = (size_t)d->k;
    int finite = 1;

    if (m->k != d->k || k > NIST_MAXP || n == 0) {
        snprintf(err, errlen, "%s: %d parameters in the file, %d in the model", d->name, d->k,
                 m->k);
        return -1;
    }
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->c[i].name, m->name) == 0) {
            snprintf(err, errlen, "%s: dataset given twice", m->name);
            return -1;
        }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 32;
        nist_rust_case *c = realloc(rs->c, cap * sizeof *c);
        if (!c) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rs->c = c;
        rs->cap = cap;
    }
    nist_rust_case *c = &rs->c[rs->n];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", m->name);
    snprintf(c->formula, sizeof c->formula, "%s", d->model);
    for (size_t i = 0; c->name[i]; i++)
        c->fn[i] = (char)tolower((unsigned char)c->name[i]);
    c->model = m;
    c->k = d->k;
    c->n = n;
    for (size_t j = 0; j < k; j++)
        finite &= isfinite(b[j]) != 0;
    memcpy(c->b, finite ? b : d->cert, k * sizeof *b);
    /* x y | r_c J_c J_tape | r_rs J_rs */
    c->x = malloc((2 * n) * sizeof *c->x);
    c->r_c = malloc((n + 2 * n * k) * sizeof *c->r_c);
    c->r_rs = malloc((n + n * k) * sizeof *c->r_rs);
    if (!c->x || !c->r_c || !c->r_rs) {
        case_free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->y = c->x + n;
    c->J_c = c->r_c + n;
    c->J_tape = c->J_c + n * k;
    c->J_rs = c->r_rs + n;
    memcpy(c->x, d->x, n * sizeof *c->x);
    memcpy(c->y, d->y, n * sizeof *c->y);
    rs->n++;
    return 0;
}

/* ----------------------------------------------------------- generate */

/* C values of case c: residual tape t, optimised Jacobian tape jt. */
static int
c_values(nist_rust_case *c, const tg_tape *t, const tg_tape *jt, char *err, size_t errlen)
{
    size_t n = c->n, k = (size_t)c->k, nin = k + 2 * n;
    double *in = malloc((nin + n * nin) * sizeof *in), *J = in + nin;
    tg_status s = TG_ERR_NOMEM;

    if (in) {
        memcpy(in, c->b, k * sizeof *in);
        memcpy(in + k, c->x, n * sizeof *in);
        memcpy(in + k + n, c->y, n * sizeof *in);
        s = tg_eval(t, in, c->r_c);
        if (s == TG_OK)
            s = tg_jacobian(t, in, J);
        if (s == TG_OK)
            s = tg_eval(jt, in, c->J_tape);
    }
    if (s == TG_OK) {
        for (size_t i = 0; i < n; i++)
            memcpy(c->J_c + i * k, J + i * nin, k * sizeof *J);
        c->rss_c = 0.0;
        for (size_t i = 0; i < n; i++)
            c->rss_c += c->r_c[i] * c->r_c[i];
    } else {
        snprintf(err, errlen, "%s: C evaluation failed: %s: %s", c->name, tg_status_str(s),
                 tg_last_error());
    }
    free(in);
    return s == TG_OK ? 0 : -1;
}

static void
put_array(FILE *f, const char *decl, const double *v, size_t n)
{
    char num[64];
    fprintf(f, "    %s: [f64; %zu] = [", decl, n);
    for (size_t i = 0; i < n; i++) {
        rust_f64(num, sizeof num, v[i]);
        fprintf(f, "%s%s%s", i % 6 ? " " : "\n        ", num, ",");
    }
    fprintf(f, "\n    ];\n");
}

int
nist_rust_write_runner(const nist_rust *rs, FILE *f)
{
    fprintf(f,
        "// Generated by tapegen's examples/nist_fit (nist_fit --rust). Do not edit.\n"
        "//\n"
        "// For each NIST StRD dataset: the parameters nist_fit fitted from Start 1\n"
        "// and the dataset's data, as literals that read back to the same bits; the\n"
        "// residual kernel and the Jacobian kernel of the crate are called there and\n"
        "// their results printed as f64 bit patterns for nist_fit to compare with the\n"
        "// C interpreter.  Output per dataset: \"case NAME\", \"rss HEX\",\n"
        "// \"r N HEX...\", \"jac N HEX...\" (n x k, row-major), \"end\"; or\n"
        "// \"error NAME MESSAGE\" when a kernel refuses its arguments.\n"
        "#![forbid(unsafe_code)]\n"
        "\n"
        "use %s::*;\n"
        "use std::fmt::Write as _;\n"
        "use std::io::Write as _;\n"
        "\n"
        "fn hex_line(out: &mut String, tag: &str, v: &[f64]) {\n"
        "    let _ = write!(out, \"{} {}\", tag, v.len());\n"
        "    for x in v {\n"
        "        let _ = write!(out, \" {:016x}\", x.to_bits());\n"
        "    }\n"
        "    out.push('\\n');\n"
        "}\n"
        "\n"
        "/// The report of one dataset; the RSS is summed in the order C sums it.\n"
        "fn report(name: &str, r: &[f64], jac: &[f64]) -> String {\n"
        "    let mut rss = 0.0f64;\n"
        "    for v in r {\n"
        "        rss += v * v;\n"
        "    }\n"
        "    let mut out = String::new();\n"
        "    let _ = writeln!(out, \"case {}\", name);\n"
        "    let _ = writeln!(out, \"rss {:016x}\", rss.to_bits());\n"
        "    hex_line(&mut out, \"r\", r);\n"
        "    hex_line(&mut out, \"jac\", jac);\n"
        "    out.push_str(\"end\\n\");\n"
        "    out\n"
        "}\n", NIST_RUST_CRATE);
    for (size_t i = 0; i < rs->n; i++) {
        const nist_rust_case *c = &rs->c[i];
        char U[80], kr[160], kj[160];
        size_t j;
        for (j = 0; c->fn[j] && j + 1 < sizeof U; j++)
            U[j] = (char)toupper((unsigned char)c->fn[j]);
        U[j] = '\0';
        snprintf(kr, sizeof kr, "%s_%s_r", NIST_RUST_CRATE, c->fn);
        snprintf(kj, sizeof kj, "%s_%s_jac", NIST_RUST_CRATE, c->fn);
        fprintf(f, "\n/// %s: %s; %d parameters, %zu observations.\n"
                "fn run_%s() -> Result<String, Error> {\n",
                c->name, c->formula, c->k, c->n, c->fn);
        put_array(f, "const B", c->b, (size_t)c->k);
        put_array(f, "static X", c->x, c->n);
        put_array(f, "static Y", c->y, c->n);
        fprintf(f,
            "    let mut r = vec![0.0f64; %zu];\n"
            "    let mut jac = vec![0.0f64; %zu];\n"
            "    let mut work = vec![0.0f64; WORK_LEN_%s_%s_R.max(WORK_LEN_%s_%s_JAC)];\n"
            "    %s(&B, &X, &Y, &mut r, &mut work)?;\n"
            "    %s(&B, &X, &Y, &mut jac, &mut work)?;\n"
            "    Ok(report(\"%s\", &r, &jac))\n"
            "}\n",
            c->n, c->n * (size_t)c->k, "NIST_KERNELS", U, "NIST_KERNELS", U, kr, kj, c->name);
    }
    fprintf(f, "\nfn main() {\n"
               "    let cases: [(&str, fn() -> Result<String, Error>); %zu] = [\n", rs->n);
    for (size_t i = 0; i < rs->n; i++)
        fprintf(f, "        (\"%s\", run_%s),\n", rs->c[i].name, rs->c[i].fn);
    fprintf(f,
        "    ];\n"
        "    let mut failed = false;\n"
        "    let stdout = std::io::stdout();\n"
        "    let mut out = stdout.lock();\n"
        "    for (name, run) in cases.iter() {\n"
        "        let text = match run() {\n"
        "            Ok(text) => text,\n"
        "            Err(e) => {\n"
        "                failed = true;\n"
        "                format!(\"error {} {}\\n\", name, e)\n"
        "            }\n"
        "        };\n"
        "        if out.write_all(text.as_bytes()).is_err() {\n"
        "            std::process::exit(2);\n"
        "        }\n"
        "    }\n"
        "    let _ = out.flush();\n"
        "    std::process::exit(if failed { 1 } else { 0 });\n"
        "}\n");
    return ferror(f) ? -1 : 0;
}

static int
write_text(const char *path, const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The whole file, NUL-terminated (*len without the NUL); NULL if unreadable. */
static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, got;

    if (!f)
        return NULL;
    do {
        if (cap - n < 65536) {
            char *nb = realloc(buf, cap = 2 * cap + 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Moves the staged file stage/rel to dir/rel unless dir/rel already has the
 * same bytes (then cargo's mtime-based fingerprints stay valid and a rerun
 * does not rebuild the crate).  Sets *changed when it moved the file. */
static int
sync_file(const char *stage, const char *dir, const char *rel, int *changed, char *err,
          size_t errlen)
{
    char from[8448], to[8448];
    size_t la = 0, lb = 0;
    snprintf(from, sizeof from, "%s/%s", stage, rel);
    snprintf(to, sizeof to, "%s/%s", dir, rel);
    char *a = read_all(from, &la), *b = read_all(to, &lb);
    int same = a && b && la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    if (same)
        return remove(from) == 0 ? 0 : (snprintf(err, errlen, "cannot remove %s", from), -1);
    if (rename(from, to) != 0) {
        snprintf(err, errlen, "cannot move %s to %s: %s", from, to, strerror(errno));
        return -1;
    }
    *changed = 1;
    return 0;
}

int
nist_rust_generate(nist_rust *rs, const char *dir, char *err, size_t errlen)
{
    static const char *const files[] = {
        "Cargo.toml", "README.md", "src/lib.rs", "tests/kernels.rs",
        "src/bin/nist_check.rs", ".cargo/config.toml"
    };
    static const char *const subdirs[] = { "src/bin", "src", "tests", ".cargo", "" };
    tg_rust_options o = { 0 };
    tg_rust_builder *b;
    tg_tape **tapes = calloc(2 * rs->n + 1, sizeof *tapes);
    char path[8448], stage[4200];
    int rc = -1, changed = 0;
    double t0 = now();

    snprintf(stage, sizeof stage, "%s/.nist_gen", dir);
    o.crate_name = NIST_RUST_CRATE;
    b = tg_rust_builder_new(&o);
    if (!b || !tapes) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < rs->n; i++) {
        nist_rust_case *c = &rs->c[i];
        char fn[80];
        tg_tape *t = tapes[2 * i] = nist_record(c->model, c->n);
        if (!t || tg_tape_status(t) != TG_OK) {
            snprintf(err, errlen, "%s: recording failed: %s", c->name,
                     t ? tg_tape_error(t) : "out of memory");
            goto out;
        }
        tg_tape *jt = tapes[2 * i + 1] = tg_jacobian_tape(t, tg_input_block_index(t, "b"));
        if (!jt || tg_tape_status(jt) != TG_OK) {
            snprintf(err, errlen, "%s: tg_jacobian_tape failed: %s", c->name,
                     jt ? tg_tape_error(jt) : "out of memory");
            goto out;
        }
        tg_status s = tg_tape_optimize(jt, TG_OPT_BASIC);
        if (s != TG_OK) {
            snprintf(err, errlen, "%s: tg_tape_optimize: %s", c->name, tg_status_str(s));
            goto out;
        }
        if (tg_num_outputs(jt) != c->n * (size_t)c->k
            || tg_num_inputs(jt) != tg_num_inputs(t)) {
            snprintf(err, errlen, "%s: the Jacobian tape has %zu inputs and %zu outputs, "
                     "expected %zu and %zu", c->name, tg_num_inputs(jt), tg_num_outputs(jt),
                     tg_num_inputs(t), c->n * (size_t)c->k);
            goto out;
        }
        c->tape_size = tg_tape_size(t);
        c->jac_tape_size = tg_tape_size(jt);
        if (c_values(c, t, jt, err, errlen) != 0)
            goto out;
        snprintf(fn, sizeof fn, "%s_r", c->fn);
        tg_rust_builder_add(b, t, fn);
        snprintf(fn, sizeof fn, "%s_jac", c->fn);
        if (tg_rust_builder_add(b, jt, fn) != TG_OK) {
            snprintf(err, errlen, "tg_rust_builder_add (%s): %s", c->name,
                     tg_rust_builder_error(b));
            goto out;
        }
    }
    rs->t_tapes = now() - t0;
    t0 = now();

    /* everything goes to a staging directory first, see sync_file */
    for (size_t i = 0; i < 8; i++) {     /* src/bin src tests .cargo, in both */
        snprintf(path, sizeof path, "%s/%s", i < 4 ? dir : stage, subdirs[i % 4]);
        if (mkdir_p(path) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            goto out;
        }
    }
    if (tg_rust_builder_write(b, stage) != TG_OK) {
        snprintf(err, errlen, "tg_rust_builder_write(%s): %s", stage, tg_rust_builder_error(b));
        goto out;
    }
    snprintf(path, sizeof path, "%s/src/bin/nist_check.rs", stage);
    FILE *f = fopen(path, "w");
    if (!f || nist_rust_write_runner(rs, f) != 0 || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        goto out;
    }
    /* cargo offline, with Debian's packaged crates as the registry (the
     * kernels need none, unless a tape uses erf/erfc: then libm) */
    struct stat st;
    int debian = stat("/usr/share/cargo/registry", &st) == 0 && S_ISDIR(st.st_mode);
    snprintf(path, sizeof path, "%s/.cargo/config.toml", stage);
    if (write_text(path,
                   debian ? "# Written by nist_fit --rust: build offline from Debian's crates.\n"
                            "[source.crates-io]\nreplace-with = \"debian\"\n\n"
                            "[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n\n"
                            "[net]\noffline = true\n"
                          : "# Written by nist_fit --rust: build offline.\n"
                            "[net]\noffline = true\n", err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (sync_file(stage, dir, files[i], &changed, err, errlen) != 0)
            goto out;
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        snprintf(path, sizeof path, "%s/%s", stage, subdirs[i]);
        rmdir(path);
    }
    snprintf(path, sizeof path, "%s/src/lib.rs", dir);
    rs->lib_bytes = stat(path, &st) == 0 ? (size_t)st.st_size : 0;
    rs->crate_changed = changed;
    rs->t_write = now() - t0;
    rc = 0;
out:
    tg_rust_builder_free(b);
    if (tapes)
        for (size_t i = 0; i < 2 * rs->n; i++)
            tg_tape_free(tapes[i]);
    free(tapes);
    return rc;
}

/* -------------------------------------------------------------- parse */

static nist_rust_case *
find_case(nist_rust *rs, const char *name)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->c[i].name, name) == 0)
            return &rs->c[i];
    return NULL;
}

static int
read_hex(FILE *f, double *v)
{
    char tok[40], *end;
    if (fscanf(f, "%39s", tok) != 1)
        return -1;
    errno = 0;
    unsigned long long u = strtoull(tok, &end, 16);
    if (*end || end == tok || errno || strlen(tok) != 16)
        return -1;
    *v = double_of((uint64_t)u);
    return 0;
}

static int
read_vec(FILE *f, const char *tag, double *v, size_t n)
{
    char tok[16];
    size_t got;
    if (fscanf(f, "%15s %zu", tok, &got) != 2 || strcmp(tok, tag) != 0 || got != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (read_hex(f, &v[i]) != 0)
            return -1;
    return 0;
}

int
nist_rust_parse(nist_rust *rs, FILE *f, char *err, size_t errlen)
{
    char tok[128];

    while (fscanf(f, "%127s", tok) == 1) {
        if (strcmp(tok, "error") == 0) {
            char line[256] = "";
            nist_rust_case *c;
            if (fscanf(f, "%127s", tok) != 1 || !(c = find_case(rs, tok)))
                goto bad;
            if (fgets(line, sizeof line, f))
                line[strcspn(line, "\n")] = '\0';
            const char *msg = line[0] == ' ' ? line + 1 : line;
            memcpy(c->rs_error, msg, strlen(msg) + 1);      /* < sizeof line */
            continue;
        }
        if (strcmp(tok, "case") != 0)
            goto bad;
        nist_rust_case *c;
        if (fscanf(f, "%127s", tok) != 1 || !(c = find_case(rs, tok)))
            goto bad;
        if (fscanf(f, "%127s", tok) != 1 || strcmp(tok, "rss") != 0
            || read_hex(f, &c->rss_rs) != 0
            || read_vec(f, "r", c->r_rs, c->n) != 0
            || read_vec(f, "jac", c->J_rs, c->n * (size_t)c->k) != 0
            || fscanf(f, "%127s", tok) != 1 || strcmp(tok, "end") != 0) {
            snprintf(err, errlen, "the runner's output for %s is malformed", c->name);
            return -1;
        }
        c->have_rust = 1;
    }
    return 0;
bad:
    snprintf(err, errlen, "unexpected \"%s\" in the runner's output", tok);
    return -1;
}

/* ------------------------------------------------------------ compare */

void
nist_rust_compare(const nist_rust_case *c, nist_rust_diff *d)
{
    size_t n = c->n, nk = c->n * (size_t)c->k;
    int ok = c->have_rust;

    memset(d, 0, sizeof *d);
    if (!c->have_rust)
        return;
    for (size_t i = 0; i < n + nk; i++) {
        int isr = i < n;
        double a = isr ? c->r_c[i] : c->J_c[i - n], b = isr ? c->r_rs[i] : c->J_rs[i - n];
        double a_tape = isr ? c->r_c[i] : c->J_tape[i - n];
        double rel = nist_rel_diff(a, b);
        uint64_t ulp = nist_ulp_distance(a, b);
        if (isr) {
            d->rel_r = fmax(d->rel_r, rel);
            d->ulp_r = ulp > d->ulp_r ? ulp : d->ulp_r;
            d->same_r += bits_of(a) == bits_of(b);
        } else {
            d->rel_J = fmax(d->rel_J, rel);
            d->ulp_J = ulp > d->ulp_J ? ulp : d->ulp_J;
            d->same_J += bits_of(a) == bits_of(b);
        }
        d->same_tape += bits_of(a_tape) == bits_of(b);
        ok &= nist_values_agree(a, b) && nist_values_agree(a_tape, b);
    }
    d->rss_agree = nist_values_agree(c->rss_c, c->rss_rs);
    d->same_tape += bits_of(c->rss_c) == bits_of(c->rss_rs);
    d->agree = ok && d->rss_agree;
}

static void
put_rel(FILE *out, double rel)
{
    if (rel == 0.0)
        fprintf(out, " %9s", "0");
    else
        fprintf(out, " %9.1e", rel);
}

int
nist_rust_report(const nist_rust *rs, FILE *out)
{
    int bad = 0;
    size_t bitwise = 0;

    fprintf(out, "\nRust (crate %s, cargo --release) vs C (tg_eval, tg_jacobian) at the "
                 "parameters fitted from Start 1:\n", NIST_RUST_CRATE);
    fprintf(out, "%-9s %4s %2s %24s %24s %9s %9s %7s %11s  %s\n", "dataset", "n", "k",
            "RSS (C)", "RSS (Rust)", "max rel r", "max rel J", "max ulp", "same bits",
            "agree?");
    for (size_t i = 0; i < rs->n; i++) {
        const nist_rust_case *c = &rs->c[i];
        nist_rust_diff d;
        nist_rust_compare(c, &d);
        fprintf(out, "%-9s %4zu %2d %24.16e", c->name, c->n, c->k, c->rss_c);
        if (!c->have_rust) {
            fprintf(out, " %24s  no result from Rust%s%s\n", "-", c->rs_error[0] ? ": " : "",
                    c->rs_error);
            bad++;
            continue;
        }
        size_t total = c->n + c->n * (size_t)c->k + 1;      /* r, J, RSS */
        uint64_t ulp = d.ulp_r > d.ulp_J ? d.ulp_r : d.ulp_J;
        char ulps[24], ident[32];
        if (ulp == UINT64_MAX)
            snprintf(ulps, sizeof ulps, "NaN");
        else if (ulp > 9999999)
            snprintf(ulps, sizeof ulps, ">1e7");
        else
            snprintf(ulps, sizeof ulps, "%" PRIu64, ulp);
        if (d.same_tape == total)
            snprintf(ident, sizeof ident, "all %zu", total);
        else
            snprintf(ident, sizeof ident, "%zu/%zu", d.same_tape, total);
        fprintf(out, " %24.16e", c->rss_rs);
        put_rel(out, d.rel_r);
        put_rel(out, d.rel_J);
        fprintf(out, " %7s %11s  %s\n", ulps, ident, d.agree ? "yes" : "NO");
        bad += !d.agree;
        bitwise += d.agree && d.same_tape == total;
    }
    fprintf(out,
        "max rel, max ulp: Rust vs tg_eval (r) and tg_jacobian (J) on the residual tape.\n"
        "same bits: Rust values (r, J, RSS) identical to the C interpreter's on the tapes\n"
        "that were translated (tg_eval of the residual tape and of the Jacobian tape).\n"
        "agree: both comparisons within %d ulp or %.0e relative, entry by entry.\n"
        "%zu datasets: %zu agree (%zu with every bit the C interpreter's), %d do not.\n",
        NIST_RUST_ULPS, NIST_RUST_REL, rs->n, rs->n - (size_t)bad, bitwise, bad);
    if (rs->verbose) {
        fprintf(out, "\nC only: the Jacobian tape (tg_eval; tangent code, TG_OPT_BASIC) vs "
                     "tg_jacobian's sweeps\n(reverse mode on the residual tape):\n");
        fprintf(out, "%-9s %12s %12s %9s %7s\n", "dataset", "tape instr", "jac instr",
                "max rel", "max ulp");
        for (size_t i = 0; i < rs->n; i++) {
            const nist_rust_case *c = &rs->c[i];
            double rel = 0.0;
            uint64_t ulp = 0;
            for (size_t j = 0; j < c->n * (size_t)c->k; j++) {
                rel = fmax(rel, nist_rel_diff(c->J_c[j], c->J_tape[j]));
                uint64_t u = nist_ulp_distance(c->J_c[j], c->J_tape[j]);
                ulp = u > ulp ? u : ulp;
            }
            fprintf(out, "%-9s %12zu %12zu", c->name, c->tape_size, c->jac_tape_size);
            put_rel(out, rel);
            fprintf(out, " %7" PRIu64 "\n", ulp);
        }
    }
    return bad;
}

/* -------------------------------------------------------------- cargo */

/* Functions of src/lib.rs by first line, to name the kernel a diagnostic
 * points into. */
typedef struct fn_index {
    size_t n, cap;
    long *line;
    char (*name)[128];
} fn_index;

static void
fn_index_load(fn_index *ix, const char *lib_path)
{
    FILE *f = fopen(lib_path, "r");
    char buf[512];
    long line = 0;

    memset(ix, 0, sizeof *ix);
    if (!f)
        return;
    while (fgets(buf, sizeof buf, f)) {
        int full = strchr(buf, '\n') != NULL;
        line++;
        const char *q = strncmp(buf, "pub fn ", 7) == 0 ? buf + 7
                      : strncmp(buf, "fn ", 3) == 0 ? buf + 3 : NULL;
        if (q) {
            if (ix->n == ix->cap) {
                size_t cap = ix->cap ? 2 * ix->cap : 256;
                long *l = realloc(ix->line, cap * sizeof *l);
                if (l)
                    ix->line = l;
                char (*nm)[128] = realloc(ix->name, cap * sizeof *nm);
                if (nm)
                    ix->name = nm;
                if (!l || !nm)
                    break;
                ix->cap = cap;
            }
            size_t len = strcspn(q, "(<: \n");
            snprintf(ix->name[ix->n], sizeof ix->name[0], "%.*s", (int)(len < 127 ? len : 127), q);
            ix->line[ix->n++] = line;
        }
        while (!full && fgets(buf, sizeof buf, f))      /* the rest of a long line */
            full = strchr(buf, '\n') != NULL;
    }
    fclose(f);
}

static const char *
fn_index_find(const fn_index *ix, long line)
{
    const char *name = "?";
    for (size_t i = 0; i < ix->n && ix->line[i] <= line; i++)
        name = ix->name[i];
    return name;
}

/* One kind of diagnostic in one function. */
typedef struct cargo_diag {
    char head[200];             /* "error[E0425]: cannot find value `b` in this scope" */
    char where[160];            /* the function, or the file                  */
    char loc[160];              /* the first location                         */
    int count;
} cargo_diag;

#define MAX_DIAGS 48

/* The dataset of a generated function name nist_kernels_<fn>_{r,jac}[_partN]. */
static const char *
dataset_of(const nist_rust *rs, const char *fname)
{
    size_t pl = strlen(NIST_RUST_CRATE "_");
    if (strncmp(fname, NIST_RUST_CRATE "_", pl) != 0)
        return NULL;
    for (size_t i = 0; i < rs->n; i++) {
        size_t l = strlen(rs->c[i].fn);
        const char *rest = fname + pl + l;
        if (strncmp(fname + pl, rs->c[i].fn, l) == 0
            && (strncmp(rest, "_r", 2) == 0 || strncmp(rest, "_jac", 4) == 0)
            && (rest[rest[1] == 'r' ? 2 : 4] == '\0' || rest[rest[1] == 'r' ? 2 : 4] == '_'))
            return rs->c[i].name;
    }
    return NULL;
}

/* Reads cargo's log: counts warnings and errors, groups them by message and
 * function, prints the groups and the first diagnostic in full.  Returns the
 * number of diagnostics (summary lines such as "could not compile" aside). */
static int
summarise_log(const nist_rust *rs, const char *dir, const char *log_path, int *warnings)
{
    char path[4200], buf[1024];
    fn_index ix;
    cargo_diag *d = calloc(MAX_DIAGS, sizeof *d);
    size_t nd = 0;
    int total = 0, errors = 0, first_lines = 0, in_first = 0, others = 0;
    cargo_diag *cur = NULL;
    FILE *log = fopen(log_path, "r");

    *warnings = 0;
    if (!log || !d) {
        if (log)
            fclose(log);
        free(d);
        return 0;
    }
    snprintf(path, sizeof path, "%s/src/lib.rs", dir);
    fn_index_load(&ix, path);
    while (fgets(buf, sizeof buf, log)) {
        int warn = strncmp(buf, "warning", 7) == 0, err = strncmp(buf, "error", 5) == 0;
        if ((warn || err) && (strstr(buf, "could not compile") || strstr(buf, " generated ")
                              || strstr(buf, "aborting due to"))) {
            cur = NULL;
            in_first = 0;
            continue;
        }
        if (warn || err) {
            total++;
            *warnings += warn;
            errors += err;
            buf[strcspn(buf, "\n")] = '\0';
            cur = NULL;
            in_first = total == 1;
            if (nd < MAX_DIAGS) {
                cur = &d[nd];                  /* placed once its location is known */
                snprintf(cur->head, sizeof cur->head, "%.199s", buf);
                cur->where[0] = cur->loc[0] = '\0';
                cur->count = 0;
            } else {
                others++;
            }
            if (in_first)
                printf("  cargo | %s\n", buf);
            continue;
        }
        if (in_first && first_lines < 30) {
            if (buf[0] == '\n')
                in_first = 0;
            else {
                printf("  cargo | %s", buf);
                first_lines++;
            }
        }
        const char *arrow = strstr(buf, "--> ");
        if (cur && arrow) {
            char file[512];
            long line = 0;
            arrow += 4;
            size_t fl = strcspn(arrow, ":\n");
            snprintf(file, sizeof file, "%.*s", (int)fl, arrow);
            if (arrow[fl] == ':')
                line = strtol(arrow + fl + 1, NULL, 10);
            snprintf(cur->loc, sizeof cur->loc, "%.120s:%ld", file, line);
            if (strcmp(file, "src/lib.rs") == 0) {
                const char *fname = fn_index_find(&ix, line), *ds = dataset_of(rs, fname);
                snprintf(cur->where, sizeof cur->where, "fn %s%s%s%s", fname,
                         ds ? " (dataset " : "", ds ? ds : "", ds ? ")" : "");
            } else {
                snprintf(cur->where, sizeof cur->where, "%.159s", file);
            }
            /* merge with an earlier group of the same message and place */
            size_t j;
            for (j = 0; j < nd; j++)
                if (strcmp(d[j].head, cur->head) == 0 && strcmp(d[j].where, cur->where) == 0)
                    break;
            if (j < nd)
                d[j].count++;
            else {
                cur->count = 1;
                nd++;
            }
            cur = NULL;
        }
    }
    if (cur) {                  /* a diagnostic without a location */
        cur->count = 1;
        snprintf(cur->where, sizeof cur->where, "(no location)");
        nd++;
    }
    fclose(log);
    if (total) {
        printf("Rust: cargo reported %d error%s and %d warning%s:\n", errors,
               errors == 1 ? "" : "s", *warnings, *warnings == 1 ? "" : "s");
        for (size_t j = 0; j < nd && j < 24; j++)
            printf("  %5dx %s\n         in %s, first at %s\n", d[j].count, d[j].head,
                   d[j].where, d[j].loc[0] ? d[j].loc : "?");
        int more = others;
        for (size_t j = 24; j < nd; j++)
            more += d[j].count;
        if (more)
            printf("  and %d more diagnostic%s (see %s)\n", more, more == 1 ? "" : "s",
                   log_path);
    }
    free(ix.line);
    free(ix.name);
    free(d);
    return total;
}

/* Runs cmd, copying its output into log_path (cargo's status lines are
 * echoed with -v; diagnostics are summarised afterwards).  Returns its exit
 * status, or -1. */
static int
run_logged(const char *cmd, const char *log_path, int verbose)
{
    FILE *p = popen(cmd, "r"), *log = fopen(log_path, "w");
    char line[4096];

    if (!p) {
        if (log)
            fclose(log);
        return -1;
    }
    while (fgets(line, sizeof line, p)) {
        if (log)
            fputs(line, log);
        const char *w = line + strspn(line, " ");
        if (verbose && w > line && isupper((unsigned char)w[0]) && islower((unsigned char)w[1]))
            printf("  cargo | %s", line);       /* status lines: Compiling, Finished */
    }
    if (log)
        fclose(log);
    int st = pclose(p);
    fflush(stdout);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int
nist_rust_check(nist_rust *rs, const char *dir)
{
    char err[512], cargo[4096], qdir[4200], qcargo[4200], cmd[9000], path[4200];
    int warnings = 0, rc;

    printf("\nRust: exporting %zu residual and %zu Jacobian kernels to %s ...\n", rs->n, rs->n,
           dir);
    fflush(stdout);
    if (nist_rust_generate(rs, dir, err, sizeof err) != 0) {
        printf("nist_fit: FAILED: Rust export: %s\n", err);
        return NIST_RUST_FAILED;
    }
    printf("Rust: generated in %.2f s (tapes and C values %.2f s, crate files %.2f s; "
           "src/lib.rs %.1f MB%s)\n", rs->t_tapes + rs->t_write, rs->t_tapes, rs->t_write,
           (double)rs->lib_bytes / 1e6,
           rs->crate_changed ? "" : "; no file changed since the last run");
    if (nist_find_cargo(cargo, sizeof cargo) != 0) {
        const char *env = getenv("TG_CARGO");
        if (!env || !*env)
            env = getenv("CARGO");
        printf("Rust: cargo not found (%s%s); the crate is written to %s but the Rust "
               "check is SKIPPED\n", env && *env ? "not executable: " : "looked for $TG_CARGO, "
               "$CARGO, cargo on $PATH, ~/.cargo/bin/cargo", env && *env ? env : "", dir);
        return NIST_RUST_NO_CARGO;
    }
    if (sh_quote(qdir, sizeof qdir, dir) || sh_quote(qcargo, sizeof qcargo, cargo)) {
        printf("nist_fit: path too long\n");
        return NIST_RUST_FAILED;
    }
    snprintf(cmd, sizeof cmd, "cd %s && %s build --release --offline --target-dir target 2>&1",
             qdir, qcargo);
    snprintf(path, sizeof path, "%s/cargo-build.log", dir);
    printf("Rust: %s build --release --offline (log: %s) ...\n", cargo, path);
    fflush(stdout);
    double t0 = now();
    rc = run_logged(cmd, path, rs->verbose);
    rs->t_cargo = now() - t0;
    summarise_log(rs, dir, path, &warnings);
    rs->cargo_warnings = warnings;
    if (rc != 0) {
        printf("nist_fit: FAILED: cargo build failed (exit status %d) after %.1f s; see %s\n",
               rc, rs->t_cargo, path);
        return NIST_RUST_FAILED;
    }
    printf("Rust: cargo build took %.1f s, %d warning%s\n", rs->t_cargo, warnings,
           warnings == 1 ? "" : "s");

    snprintf(path, sizeof path, "%s/target/release/nist_check", dir);
    if (sh_quote(cmd, sizeof cmd, path)) {
        printf("nist_fit: path too long\n");
        return NIST_RUST_FAILED;
    }
    t0 = now();
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("nist_fit: cannot run %s: %s\n", path, strerror(errno));
        return NIST_RUST_FAILED;
    }
    int perr = nist_rust_parse(rs, p, err, sizeof err);
    int st = pclose(p);
    rs->t_run = now() - t0;
    if (perr != 0) {
        printf("nist_fit: %s\n", err);
        return NIST_RUST_FAILED;
    }
    if (st != 0)
        printf("Rust: the runner exited with status %d\n",
               st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : st);
    int bad = nist_rust_report(rs, stdout);
    printf("Timings: generation %.2f s, cargo build %.1f s, runner %.3f s\n",
           rs->t_tapes + rs->t_write, rs->t_cargo, rs->t_run);
    if (warnings)       /* the generated code is meant to compile cleanly */
        printf("nist_fit: FAILED: the cargo build gave %d warning%s (listed above)\n",
               warnings, warnings == 1 ? "" : "s");
    if (bad)
        printf("nist_fit: FAILED: %d dataset%s where Rust and C disagree\n", bad,
               bad == 1 ? "" : "s");
    return bad == 0 && st == 0 && warnings == 0 ? NIST_RUST_AGREE : NIST_RUST_FAILED;
}
