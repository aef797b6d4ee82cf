/* examples/mpc/rust.c -- the MPC gradient in Rust, checked against C (see
 * rust.h). */
#define _DEFAULT_SOURCE 1   /* realpath */
#define _POSIX_C_SOURCE 200809L

#include "rust.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int
is_exe(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* cargo from $TG_CARGO or $CARGO, else PATH, ~/.cargo/bin, /root/.cargo/bin. */
static int
find_cargo(char *path, size_t len)
{
    const char *env = getenv("TG_CARGO"), *p = getenv("PATH"), *home = getenv("HOME");
    if (!env || !*env)
        env = getenv("CARGO");
    if (env && *env) {
        snprintf(path, len, "%s", env);
        return is_exe(path) ? 0 : -1;
    }
    while (p && *p) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        if (dl > 0 && snprintf(path, len, "%.*s/cargo", (int)dl, p) < (int)len && is_exe(path))
            return 0;
        p = end ? end + 1 : NULL;
    }
    if (home && *home && snprintf(path, len, "%s/.cargo/bin/cargo", home) < (int)len &&
        is_exe(path))
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

static int
write_file(const char *dir, const char *name, const char *text)
{
    char path[4200];
    int len = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= sizeof path)
        return -1;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A path is put between single quotes for the shell: refuse quotes in it. */
static int
shell_safe(const char *s)
{
    return strchr(s, '\'') == NULL;
}

static const char RUNNER_TOML[] =
    "[package]\nname = \"mpc_runner\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n"
    "[dependencies]\nmpc_grad = { path = \"../mpc_grad\" }\n\n[workspace]\n";

/* The runner: reads the inputs (hex bit patterns, blocks concatenated),
 * calls the kernel, prints "time SECONDS_PER_CALL" and the gradient in hex. */
static const char RUNNER_MAIN[] =
    "//! Calls the generated MPC gradient kernel at the point in the file\n"
    "//! argv[1] (one f64 bit pattern in hex per line, the kernel's input\n"
    "//! blocks concatenated); prints the time per call and the gradient.\n"
    "use std::time::Instant;\n\n"
    "fn main() {\n"
    "    let args: Vec<String> = std::env::args().collect();\n"
    "    let text = std::fs::read_to_string(&args[1]).expect(\"input file\");\n"
    "    let x: Vec<f64> = text\n"
    "        .split_whitespace()\n"
    "        .map(|h| f64::from_bits(u64::from_str_radix(h, 16).expect(\"hex\")))\n"
    "        .collect();\n"
    "    let blocks = mpc_grad::INPUTS_GRAD;\n"
    "    let total: usize = blocks.iter().map(|b| b.1).sum();\n"
    "    assert_eq!(x.len(), total, \"input length\");\n"
    "    let (u, rest) = x.split_at(blocks[0].1);\n"
    "    let (x0, xref) = rest.split_at(blocks[1].1);\n"
    "    let mut g = vec![0.0f64; mpc_grad::OUTPUTS_GRAD[0].1];\n"
    "    let mut work = vec![0.0f64; mpc_grad::WORK_LEN_GRAD];\n"
    "    mpc_grad::grad(u, x0, xref, &mut g, &mut work).expect(\"kernel\");\n"
    "    let mut reps = 1u32;\n"
    "    let per_call = loop {\n"
    "        let t0 = Instant::now();\n"
    "        for _ in 0..reps {\n"
    "            mpc_grad::grad(std::hint::black_box(u), x0, xref, &mut g, &mut work).expect(\"kernel\");\n"
    "        }\n"
    "        let s = t0.elapsed().as_secs_f64();\n"
    "        if s > 0.1 || reps >= 1 << 20 {\n"
    "            break s / reps as f64;\n"
    "        }\n"
    "        reps *= 4;\n"
    "    };\n"
    "    println!(\"time {:e}\", per_call);\n"
    "    for v in &g {\n"
    "        println!(\"{:016x}\", v.to_bits());\n"
    "    }\n"
    "}\n";

static const char CARGO_CONFIG[] =
    "# Offline: crates.io is replaced by Debian's packaged crates.\n"
    "[source.crates-io]\nreplace-with = \"debian\"\n\n"
    "[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n\n[net]\noffline = true\n";

/* Translates the gradient of f into dir/mpc_grad; prints and returns
 * MPC_RUST_UNAVAILABLE when a step fails. */
static int
emit(const tg_tape *f, const char *dir, double *secs, size_t *size)
{
    double t0 = now();
    tg_tape *g = tg_gradient_tape(f, TG_ALL);
    const char *what = "tg_gradient_tape";
    tg_status st = g ? tg_tape_status(g) : TG_ERR_NOMEM;
    if (st == TG_OK) {
        what = "tg_tape_optimize";
        st = tg_tape_optimize(g, TG_OPT_BASIC);
    }
    if (st == TG_OK) {
        char path[4200];
        tg_rust_options ro;
        memset(&ro, 0, sizeof ro);
        ro.crate_name = "mpc_grad";
        ro.function_name = "grad";
        snprintf(path, sizeof path, "%s/mpc_grad", dir);
        what = "tg_rust_crate";
        st = tg_rust_crate(g, &ro, path);
    }
    if (st != TG_OK) {
        printf("Rust: %s failed on %s: %s (%s)\n", what, tg_tape_name(f), tg_status_str(st),
               g && tg_tape_status(g) != TG_OK ? tg_tape_error(g) : tg_last_error());
        tg_tape_free(g);
        return MPC_RUST_UNAVAILABLE;
    }
    *size = tg_tape_size(g);
    *secs = now() - t0;
    tg_tape_free(g);
    return MPC_RUST_OK;
}

int
mpc_rust_check(const tg_tape *f, const double *x, const double *g_c, size_t n, const char *dir_arg,
               double tol)
{
    char cargo[4096], path[4200], cmd[24576], dir[4096];
    double t_emit = 0.0;
    size_t gsize = 0;
    /* absolute: the commands below change directory */
    if (!shell_safe(dir_arg) || mkdir_p(dir_arg) != 0 || !realpath(dir_arg, dir)) {
        printf("Rust: cannot create %s\n", dir_arg);
        return MPC_RUST_FAILED;
    }
    int rc = emit(f, dir, &t_emit, &gsize);
    if (rc != MPC_RUST_OK)
        return rc;
    snprintf(path, sizeof path, "%s/mpc_runner/src", dir);
    if (mkdir_p(path) != 0) {
        printf("Rust: cannot create %s\n", path);
        return MPC_RUST_FAILED;
    }
    snprintf(path, sizeof path, "%s/mpc_runner", dir);
    char cfgdir[4200];
    snprintf(cfgdir, sizeof cfgdir, "%s/.cargo", dir);
    if (write_file(path, "Cargo.toml", RUNNER_TOML) || write_file(path, "src/main.rs", RUNNER_MAIN) ||
        mkdir_p(cfgdir) || write_file(cfgdir, "config.toml", CARGO_CONFIG)) {
        printf("Rust: cannot write the runner crate under %s\n", dir);
        return MPC_RUST_FAILED;
    }
    /* the point, as bit patterns */
    snprintf(path, sizeof path, "%s/x.hex", dir);
    FILE *fx = fopen(path, "w");
    if (!fx) {
        printf("Rust: cannot write %s\n", path);
        return MPC_RUST_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &x[i], sizeof b);
        fprintf(fx, "%016" PRIx64 "\n", b);
    }
    if (fclose(fx) != 0)
        return MPC_RUST_FAILED;
    printf("Rust: gradient tape of %s (%zu instructions after TG_OPT_BASIC) -> %s/mpc_grad "
           "in %.3f s\n", tg_tape_name(f), gsize, dir, t_emit);
    if (find_cargo(cargo, sizeof cargo) != 0 || !shell_safe(cargo)) {
        printf("Rust: cargo not found ($TG_CARGO, $CARGO, PATH, ~/.cargo/bin): the crate is "
               "written but not built\n");
        return MPC_RUST_NO_CARGO;
    }
    char bindir[4096];
    snprintf(bindir, sizeof bindir, "%s", cargo);
    *strrchr(bindir, '/') = '\0';
    snprintf(cmd, sizeof cmd,
             "cd '%s/mpc_runner' && PATH='%s':\"$PATH\" CARGO_TARGET_DIR='%s/target' "
             "CARGO_TERM_COLOR=never '%s' build --release --offline >'%s/cargo-build.log' 2>&1",
             dir, bindir, dir, cargo, dir);
    double t0 = now();
    int st = system(cmd);
    double t_build = now() - t0;
    if (st != 0) {
        printf("Rust: FAILED: cargo build --release (status %d) after %.1f s; log %s/cargo-build.log\n",
               st, t_build, dir);
        return MPC_RUST_FAILED;
    }
    printf("Rust: cargo build --release --offline (kernel + runner): %.1f s\n", t_build);
    snprintf(cmd, sizeof cmd, "'%s/target/release/mpc_runner' '%s/x.hex'", dir, dir);
    FILE *p = popen(cmd, "r");
    double *g_rs = calloc(n ? n : 1, sizeof *g_rs), per_call = NAN;
    size_t got = 0;
    char line[256];
    while (p && g_rs && fgets(line, sizeof line, p)) {
        if (strncmp(line, "time ", 5) == 0) {
            per_call = strtod(line + 5, NULL);
        } else if (got < n) {
            uint64_t b = strtoull(line, NULL, 16);
            memcpy(&g_rs[got++], &b, sizeof b);
        }
    }
    int prc = p ? pclose(p) : -1;
    if (prc != 0 || got != n || !g_rs) {
        printf("Rust: FAILED: the runner exited with status %d after %zu of %zu values\n", prc, got, n);
        free(g_rs);
        return MPC_RUST_FAILED;
    }
    double scale = 0.0, err = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(g_c[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(g_rs[i] - g_c[i]) / fmax(fmax(fabs(g_c[i]), 1e-6 * scale), 1e-300);
        if (!(e <= err)) {
            err = e;
            worst = i;
        }
    }
    int ok = err <= tol;
    printf("Rust: gradient (%zu values) vs C tg_gradient: max rel diff %.2e (entry %zu) -> %s "
           "(tolerance %.0e); %.2f us per call in Rust\n",
           n, err, worst, ok ? "agree" : "DISAGREE", tol, per_call * 1e6);
    free(g_rs);
    return ok ? MPC_RUST_OK : MPC_RUST_FAILED;
}
