/* tests/test_native.c -- native code at run time.
 *
 * The machinery (src/codegen/native): SHA-256 against the NIST example
 * vectors; splitting compiler commands; building a hand-written C source
 * through the cache: a hit skips the compiler (a wrapper counts its runs),
 * corrupt, truncated, foreign and stale entries are rebuilt, a read-only
 * cache or a cache path that is a regular file still works (uncached), a
 * missing compiler gives TG_ERR_UNSUPPORTED, a failing one its output in
 * tg_last_error.  The kernels: every opcode of ops.def, the CONVENTIONS
 * rows and random tapes with special values, compiled vs tg_eval bit for
 * bit; tg_tape_compile's routes vs the interpreter on the derivative
 * tapes, bit for bit, single, _ws and batch.
 *
 * Each test uses its own cache directory under $TG_BINARY_DIR (else /tmp),
 * and at most a few compiler runs.  Without a working C compiler ($CC or
 * cc) the tests that need one skip, saying so. */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/native/native.h"
#include "testutil.h"

/* ------------------------------------------------------------- helpers */

/* A fresh directory for test `name`: $TG_BINARY_DIR/native/<name>. */
static void test_dir(const char *name, char *buf, size_t len)
{
    const char *b = getenv("TG_BINARY_DIR");
    snprintf(buf, len, "%s/native/%s", b && *b ? b : "/tmp/tapegen-test", name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s' && mkdir -p '%s'",
             buf, buf, buf);
    cr_assert(system(cmd) == 0, "cannot prepare %s", buf);
}

static void write_text(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The only *.so file in dir (cache entries), into buf; 0 if none. */
static int cache_entry(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    int found = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".so") == 0) {
            snprintf(buf, len, "%s/%s", dir, e->d_name);
            found++;
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* The real compiler command ($CC or cc) and whether it runs at all. */
static const char *real_cc(void)
{
    const char *cc = getenv("CC");
    return cc && *cc ? cc : "cc";
}

static int have_cc(void)
{
    nat_argv a = { { NULL }, 0 };
    char *out = NULL;
    int code = -1;
    int ok = nat_argv_split(&a, real_cc()) == 0 && nat_argv_add(&a, "--version") == 0 &&
             nat_run(&a, &out, &code) == 0 && code == 0;
    nat_argv_free(&a);
    free(out);
    return ok;
}

#define NEED_CC()                                                                        \
    do {                                                                                 \
        if (!have_cc())                                                                  \
            cr_skip_test("no C compiler: \"%s --version\" does not run; native code is " \
                         "untested here", real_cc());                                    \
    } while (0)

/* ------------------------------------------------------------- SHA-256 */

static void sha_hex(const void *p, size_t len, char *hex)
{
    unsigned char d[NAT_SHA256_LEN];
    nat_sha256_buf(p, len, d);
    nat_hex(d, sizeof d, hex);
}

/* FIPS 180-4 examples (NIST CSRC "Examples with intermediate values"). */
Test(native_sha256, nist_vectors)
{
    char hex[65];
    sha_hex("abc", 3, hex);
    cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("", 0, hex);
    cr_expect_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(m448, strlen(m448), hex);
    cr_expect_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    sha_hex(m896, strlen(m896), hex);
    cr_expect_str_eq(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* one million 'a', fed in uneven pieces through the streaming interface */
    nat_sha256 s;
    nat_sha256_init(&s);
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    for (size_t k = 1; left; k = k % 997 + 1) {
        size_t take = k < left ? k : left;
        nat_sha256_update(&s, chunk, take);
        left -= take;
    }
    unsigned char d[NAT_SHA256_LEN];
    nat_sha256_final(&s, d);
    nat_hex(d, sizeof d, hex);
    cr_expect_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Padding boundaries: 55, 56, 63, 64 and 65 bytes, streamed byte by byte
 * and in one piece, give the same digest. */
Test(native_sha256, streaming_matches_one_shot)
{
    unsigned char msg[130];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    size_t lens[] = { 0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 130 };
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        unsigned char a[NAT_SHA256_LEN], b[NAT_SHA256_LEN];
        nat_sha256_buf(msg, lens[k], a);
        nat_sha256 s;
        nat_sha256_init(&s);
        for (size_t i = 0; i < lens[k]; i++)
            nat_sha256_update(&s, msg + i, 1);
        nat_sha256_final(&s, b);
        cr_expect(memcmp(a, b, sizeof a) == 0, "length %zu: streamed digest differs", lens[k]);
    }
}

/* ------------------------------------------------------ command splitting */

Test(native_spawn, split_on_blanks_without_a_shell)
{
    nat_argv a = { { NULL }, 0 };
    cr_assert(nat_argv_split(&a, "  ccache\tgcc  -m64 ") == 0);
    cr_assert_eq(a.n, 3);
    cr_expect_str_eq(a.v[0], "ccache");
    cr_expect_str_eq(a.v[1], "gcc");
    cr_expect_str_eq(a.v[2], "-m64");
    cr_expect(a.v[3] == NULL);
    nat_argv_free(&a);
    cr_expect(nat_argv_split(&a, "   ") == -1, "a blank command has no program");
    nat_argv_free(&a);
}

/* Shell metacharacters reach the program as plain bytes: no shell runs. */
Test(native_spawn, no_shell_and_output_captured)
{
    nat_argv a = { { NULL }, 0 };
    cr_assert(nat_argv_split(&a, "printf %s;echo$IFS'x' `true`") == 0);
    char *out = NULL;
    int code = -1;
    cr_assert(nat_run(&a, &out, &code) == 0, "printf did not run: %s", strerror(errno));
    cr_expect_eq(code, 0);
    cr_expect_str_eq(out, "`true`;echo$IFS'x'");
    free(out);
    nat_argv_free(&a);
    cr_assert(nat_argv_split(&a, "/nonexistent/program --version") == 0);
    cr_expect(nat_run(&a, &out, &code) == -1 && errno == ENOENT);
    nat_argv_free(&a);
}

/* ------------------------------------------------- the cache, by hand */

static const char *square_src =
    "int tg_test_square(const double *x, double *y, double *work)\n"
    "{ (void)work; y[0] = x[0] * x[0] + 0.5; return 0; }\n";

/* Builds square_src with options o; returns the handle (or NULL). */
static void *build_square(const nat_opts *o, tg_status *st, nat_how *how)
{
    nat_source s = { square_src, strlen(square_src) };
    return nat_build(&s, 1, o, "test", st, how);
}

static void check_square(void *so)
{
    cr_assert(so != NULL, "build failed: %s", tg_last_error());
    int (*f)(const double *, double *, double *);
    *(void **)&f = dlsym(so, "tg_test_square");
    cr_assert(f != NULL);
    double x = 3.0, y = 0.0;
    cr_expect_eq(f(&x, &y, NULL), 0);
    cr_expect(y == 9.5, "kernel computed %g", y);
}

/* A wrapper around the real compiler that appends a line to `log` for
 * every compilation (not for --version). */
static void counting_cc(const char *dir, char *cc, size_t len)
{
    char script[8192], path[1100];
    snprintf(path, sizeof path, "%s/countcc", dir);
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "case \"$1\" in --version) ;; *) echo run >> '%s/compiles.log' ;; esac\n"
             "exec %s \"$@\"\n", dir, real_cc());
    write_text(path, script, 0700);
    snprintf(cc, len, "%s", path);
}

Test(native_cache, hit_skips_the_compiler)
{
    NEED_CC();
    char dir[1024], cache[2048], cc[2048], log[2048], entry[4096];
    test_dir("hit", dir, sizeof dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(log, sizeof log, "%s/compiles.log", dir);
    counting_cc(dir, cc, sizeof cc);
    nat_opts o = { .cc = cc, .cache_dir = cache };
    tg_status st;
    nat_how how;
    void *so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED);
    cr_expect_eq(count_lines(log), 1);
    struct stat sb;
    cr_assert(stat(cache, &sb) == 0);
    cr_expect_eq(sb.st_mode & 0777, 0700, "cache directory mode %o", (unsigned)(sb.st_mode & 0777));
    cr_expect_eq(cache_entry(cache, entry, sizeof entry), 1);
    dlclose(so);

    so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_CACHED);
    cr_expect_eq(count_lines(log), 1, "a cache hit ran the compiler");
    dlclose(so);

    /* other flags are another key: compiled again */
    o.opt_level = 2;
    so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED);
    cr_expect_eq(count_lines(log), 2);
    dlclose(so);
    o.flags = TG_COMPILE_PORTABLE;      /* without -march=native */
    so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED);
    cr_expect_eq(count_lines(log), 3);
    dlclose(so);
    /* TG_COMPILE_NO_CACHE: compiled, nothing stored */
    o.flags = TG_COMPILE_NO_CACHE;
    for (int r = 0; r < 2; r++) {
        so = build_square(&o, &st, &how);
        check_square(so);
        cr_expect_eq(how, NAT_BUILT_COMPILED | NAT_BUILT_UNCACHED);
        dlclose(so);
    }
    cr_expect_eq(count_lines(log), 5);
    /* no temporary directory is left behind */
}

/* Damages the single entry of cache with `damage`, then checks the next
 * build recompiles (and works) and the one after hits again. */
static void rebuild_after(const char *name, void (*damage)(const char *entry, const char *dir))
{
    char dir[1024], cache[2048], cc[2048], log[2048], entry[4096];
    test_dir(name, dir, sizeof dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(log, sizeof log, "%s/compiles.log", dir);
    counting_cc(dir, cc, sizeof cc);
    nat_opts o = { .cc = cc, .cache_dir = cache };
    tg_status st;
    nat_how how;
    void *so = build_square(&o, &st, &how);
    check_square(so);
    dlclose(so);
    cr_assert_eq(cache_entry(cache, entry, sizeof entry), 1);
    damage(entry, dir);
    cr_assert_eq(nat_cache_check(entry, (const unsigned char *)"0123456789abcdef0123456789abcdef"),
                 -1);
    so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED, "%s: a damaged entry was loaded", name);
    cr_expect_eq(count_lines(log), 2);
    dlclose(so);
    so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_CACHED, "%s: the rebuilt entry is not used", name);
    dlclose(so);
}

static void flip_middle_byte(const char *entry, const char *dir)
{
    (void)dir;
    int fd = open(entry, O_RDWR);
    cr_assert(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    unsigned char c;
    cr_assert(pread(fd, &c, 1, size / 2) == 1);
    c ^= 0x40;
    cr_assert(pwrite(fd, &c, 1, size / 2) == 1);
    close(fd);
}

static void truncate_entry(const char *entry, const char *dir)
{
    (void)dir;
    struct stat sb;
    cr_assert(stat(entry, &sb) == 0);
    cr_assert(truncate(entry, sb.st_size - 10) == 0);
}

/* Someone else's shared object renamed to the entry's name (no trailer). */
static void foreign_object(const char *entry, const char *dir)
{
    char cmd[12000], src[2048];
    snprintf(src, sizeof src, "%s/foreign.c", dir);
    write_text(src, "int tg_test_square(const double *x, double *y, double *w)\n"
                    "{ (void)w; y[0] = -x[0]; return 0; }\n", 0600);
    snprintf(cmd, sizeof cmd, "%s -shared -fPIC -o '%s' '%s'", real_cc(), entry, src);
    cr_assert(system(cmd) == 0, "cannot build the foreign object");
}

/* A valid entry of another key under this key's name. */
static void stale_entry(const char *entry, const char *dir)
{
    char cache2[2048], entry2[4096], cmd[12000];
    snprintf(cache2, sizeof cache2, "%s/cache2", dir);
    static const char *other = "int tg_test_square(const double *x, double *y, double *w)\n"
                               "{ (void)w; y[0] = x[0]; return 0; }\n";
    nat_opts o = { .cache_dir = cache2 };
    nat_source s = { other, strlen(other) };
    tg_status st;
    void *so = nat_build(&s, 1, &o, "test", &st, NULL);
    cr_assert(so != NULL, "%s", tg_last_error());
    dlclose(so);
    cr_assert_eq(cache_entry(cache2, entry2, sizeof entry2), 1);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", entry2, entry);
    cr_assert(system(cmd) == 0);
}

Test(native_cache, corrupt_entry_is_rebuilt) { NEED_CC(); rebuild_after("corrupt", flip_middle_byte); }
Test(native_cache, truncated_entry_is_rebuilt) { NEED_CC(); rebuild_after("truncated", truncate_entry); }
Test(native_cache, foreign_entry_is_rebuilt) { NEED_CC(); rebuild_after("foreign", foreign_object); }
Test(native_cache, stale_entry_is_rebuilt) { NEED_CC(); rebuild_after("stale", stale_entry); }

/* A cache directory we cannot write (mode 0500; root ignores modes, so the
 * test then skips) and a cache path that is a regular file (any user):
 * compiled and loaded from the temporary directory, nothing stored. */
Test(native_cache, read_only_cache_still_compiles)
{
    NEED_CC();
    char dir[1024], cache[2048], entry[4096];
    test_dir("readonly", dir, sizeof dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    cr_assert(mkdir(cache, 0500) == 0);
    if (access(cache, W_OK) == 0) {
        chmod(cache, 0700);
        cr_skip_test("running as root: a mode-0500 directory is writable; the regular-file "
                     "case (cache_file_path_still_compiles) covers read-only caches");
    }
    nat_opts o = { .cache_dir = cache };
    tg_status st;
    nat_how how;
    void *so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED | NAT_BUILT_UNCACHED);
    dlclose(so);
    chmod(cache, 0700);
    cr_expect_eq(cache_entry(cache, entry, sizeof entry), 0);
}

Test(native_cache, cache_file_path_still_compiles)
{
    NEED_CC();
    char dir[1024], cache[2048];
    test_dir("regularfile", dir, sizeof dir);
    snprintf(cache, sizeof cache, "%s/not-a-directory", dir);
    write_text(cache, "x\n", 0600);
    nat_opts o = { .cache_dir = cache };
    tg_status st;
    nat_how how;
    void *so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED | NAT_BUILT_UNCACHED);
    dlclose(so);
    /* a path below a regular file cannot be created either */
    char below[2200];
    snprintf(below, sizeof below, "%s/sub", cache);
    o.cache_dir = below;
    so = build_square(&o, &st, &how);
    check_square(so);
    cr_expect_eq(how, NAT_BUILT_COMPILED | NAT_BUILT_UNCACHED);
    dlclose(so);
}

/* The default cache: $XDG_CACHE_HOME/tapegen, else $HOME/.cache/tapegen,
 * created mode 0700 with its parents. */
Test(native_cache, default_directory)
{
    char dir[1024], buf[2200], want[2200];
    test_dir("default", dir, sizeof dir);
    snprintf(buf, sizeof buf, "%s/xdg", dir);
    setenv("XDG_CACHE_HOME", buf, 1);
    cr_assert(nat_cache_dir(NULL, buf, sizeof buf) == 0);
    snprintf(want, sizeof want, "%s/xdg/tapegen", dir);
    cr_expect_str_eq(buf, want);
    struct stat sb;
    cr_assert(stat(want, &sb) == 0 && S_ISDIR(sb.st_mode));
    cr_expect_eq(sb.st_mode & 0777, 0700);
    unsetenv("XDG_CACHE_HOME");
    snprintf(buf, sizeof buf, "%s/home", dir);
    setenv("HOME", buf, 1);
    cr_assert(nat_cache_dir(NULL, buf, sizeof buf) == 0);
    snprintf(want, sizeof want, "%s/home/.cache/tapegen", dir);
    cr_expect_str_eq(buf, want);
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    cr_assert(nat_cache_dir(NULL, buf, sizeof buf) == 0);
    cr_expect_str_eq(buf, want, "a relative XDG_CACHE_HOME is ignored");
}

/* --------------------------------------------------- compiler errors */

Test(native_errors, missing_compiler)
{
    char dir[1024], cache[2048], entry[4096];
    test_dir("missing", dir, sizeof dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    nat_opts o = { .cc = "/nonexistent/cc", .cache_dir = cache };
    tg_status st = TG_OK;
    cr_expect(build_square(&o, &st, NULL) == NULL);
    cr_expect_eq(st, TG_ERR_UNSUPPORTED);
    cr_expect(strstr(tg_last_error(), "no C compiler") != NULL, "message: %s", tg_last_error());
    cr_expect(strstr(tg_last_error(), "/nonexistent/cc") != NULL, "message: %s", tg_last_error());
    cr_expect_eq(cache_entry(cache, entry, sizeof entry), 0);
}

/* A compiler that identifies itself but fails: its output is the message. */
Test(native_errors, failing_compiler)
{
    char dir[1024], cc[2048], cache[2048];
    test_dir("failing", dir, sizeof dir);
    snprintf(cc, sizeof cc, "%s/badcc", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    write_text(cc, "#!/bin/sh\n"
                   "if [ \"$1\" = --version ]; then echo 'badcc 1.0'; exit 0; fi\n"
                   "echo 'badcc: error: deliberate failure for the test' >&2\n"
                   "exit 3\n", 0700);
    nat_opts o = { .cc = cc, .cache_dir = cache };
    tg_status st = TG_OK;
    cr_expect(build_square(&o, &st, NULL) == NULL);
    cr_expect_eq(st, TG_ERR_UNSUPPORTED);
    cr_expect(strstr(tg_last_error(), "deliberate failure for the test") != NULL,
              "message: %s", tg_last_error());
    cr_expect(strstr(tg_last_error(), "exit 3") != NULL, "message: %s", tg_last_error());
    /* --version failing too: still TG_ERR_UNSUPPORTED with the output */
    write_text(cc, "#!/bin/sh\necho 'badcc: broken installation' >&2\nexit 1\n", 0700);
    cr_expect(build_square(&o, &st, NULL) == NULL);
    cr_expect_eq(st, TG_ERR_UNSUPPORTED);
    cr_expect(strstr(tg_last_error(), "broken installation") != NULL, "message: %s",
              tg_last_error());
}

Test(native_errors, bad_options)
{
    nat_opts o = { .opt_level = 4 };
    tg_status st = TG_OK;
    cr_expect(build_square(&o, &st, NULL) == NULL);
    cr_expect_eq(st, TG_ERR_ARG);
    o.opt_level = 0;
    o.cc = "   ";
    cr_expect(build_square(&o, &st, NULL) == NULL);
    cr_expect_eq(st, TG_ERR_ARG);
}

/* ============================================================ kernels */

#include "ad/native.h"

/* Special and ordinary values every kernel test evaluates at. */
static const double specials[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 2.0, 0.7, -0.3,
    1e-310, -4.9e-324, 2.2250738585072014e-308, 1e308, -1e308, 1e-200,
    INFINITY, -INFINITY, NAN, 710.0, -800.0, 1.5707963267948966, 100.25, -7.5,
};
#define NSPEC (sizeof specials / sizeof specials[0])

/* A per-test cache directory (kept between runs: a rerun hits the cache). */
static tg_compile_options test_opts(const char *name, char *buf, size_t len)
{
    const char *b = getenv("TG_BINARY_DIR");
    snprintf(buf, len, "%s/native-cache/%s", b && *b ? b : "/tmp/tapegen-test", name);
    tg_compile_options o = { .cache_dir = buf };
    return o;
}

static tg_kernel *compile_or_fail(const tg_tape *t, const tg_compile_options *o)
{
    tg_kernel *k = tg_compile(t, o);
    cr_assert(k != NULL, "tg_compile(\"%s\"): %s", tg_tape_name(t), tg_last_error());
    return k;
}

/* Kernel vs tg_eval at npts points (X: npts*n), single calls and one batch;
 * bit for bit (any NaN matches any NaN). */
static void compare_kernel(const tg_tape *t, const tg_kernel *k, size_t npts, const double *X,
                           const char *what)
{
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    cr_assert_eq(tg_kernel_num_inputs(k), n);
    cr_assert_eq(tg_kernel_num_outputs(k), m);
    double *y = malloc(m * sizeof *y), *yk = malloc(m * sizeof *yk);
    double *Y = malloc(npts * m * sizeof *Y);
    cr_assert(y && yk && Y);
    int bad = 0;
    for (size_t p = 0; p < npts && bad < 5; p++) {
        TU_OK(tg_eval(t, X + p * n, y));
        TU_OK(tg_kernel_eval(k, X + p * n, yk));
        for (size_t j = 0; j < m && bad < 5; j++)
            if (!tu_same_bits_nan(yk[j], y[j])) {
                bad++;
                char buf[400];
                int off = 0;
                for (size_t i = 0; i < n && i < 6; i++)
                    off += snprintf(buf + off, sizeof buf - (size_t)off, "%s%a", i ? ", " : "",
                                    X[p * n + i]);
                cr_expect_fail("%s: point %zu (%s): output %zu: kernel %a, tg_eval %a", what, p,
                               buf, j, yk[j], y[j]);
            }
    }
    TU_OK(tg_kernel_eval_batch(k, npts, X, Y));
    for (size_t p = 0; p < npts && bad < 10; p++) {
        TU_OK(tg_eval(t, X + p * n, y));
        for (size_t j = 0; j < m && bad < 10; j++)
            if (!tu_same_bits_nan(Y[p * m + j], y[j])) {
                bad++;
                cr_expect_fail("%s: batch point %zu output %zu: kernel %a, tg_eval %a", what, p,
                               j, Y[p * m + j], y[j]);
            }
    }
    free(y);
    free(yk);
    free(Y);
}

/* Constants used as operands: exact printing of every kind of double. */
static const double op_consts[] = { 2.0, 3.0, 0.5, -1.0, 0.0, -0.0, 1.5, -2.0, 1e-310, INFINITY,
                                    NAN, 0.1, 1e300 };
#define NOPK (sizeof op_consts / sizeof op_consts[0])

/* Every operation of ops.def on three inputs (a, b, c), on constant
 * operands in either place, and (TG_NO_FOLD) on two constants. */
static tg_tape *all_ops_tape(unsigned flags)
{
    tg_tape *t = tu_tape(flags ? "ops_nofold" : "ops", flags);
    tg_var x[3];
    tg_input_vec(t, "x", 3, x);
    tg_var out[4096];
    size_t no = 0;
    for (int op = 0; op < TG_OP_COUNT; op++) {
        int ar = (tg_op_flags((tg_opcode)op) & TG_OPF_EXTENDED) ? 0 : tg_op_arity((tg_opcode)op);
        if (tg_op_flags((tg_opcode)op) & TG_OPF_GUARD)
            continue;   /* fails at most points: the guard tests cover it */
        if (ar == 1) {
            out[no++] = tg_op1((tg_opcode)op, tg__opnd_var(x[0]));
            if (flags)
                for (size_t k = 0; k < NOPK; k++)
                    out[no++] = tg_op1((tg_opcode)op, tg__opnd_var(tg_const(t, op_consts[k])));
        } else if (ar == 2) {
            out[no++] = tg_op2((tg_opcode)op, tg__opnd_var(x[0]), tg__opnd_var(x[1]));
            for (size_t k = 0; k < NOPK; k++) {
                out[no++] = tg_op2((tg_opcode)op, tg__opnd_var(x[0]), tg__opnd_num(op_consts[k]));
                out[no++] = tg_op2((tg_opcode)op, tg__opnd_num(op_consts[k]), tg__opnd_var(x[1]));
                if (flags)
                    out[no++] = tg_op2((tg_opcode)op, tg__opnd_var(tg_const(t, op_consts[k])),
                                       tg__opnd_var(tg_const(t, op_consts[(k + 3) % NOPK])));
            }
        } else if (ar == 3) {
            out[no++] = tg_op3((tg_opcode)op, tg__opnd_var(x[0]), tg__opnd_var(x[1]),
                               tg__opnd_var(x[2]));
            out[no++] = tg_op3((tg_opcode)op, tg__opnd_var(x[0]), tg__opnd_num(-0.0),
                               tg__opnd_num(NAN));
        }
    }
    tg_output_vec(t, "y", no, out);
    TU_TAPE_OK(t);
    return t;
}

/* Points: every pair (a, b) of specials, c cycling through them. */
static double *special_points(size_t *npts)
{
    *npts = NSPEC * NSPEC;
    double *X = malloc(*npts * 3 * sizeof *X);
    cr_assert(X);
    for (size_t i = 0; i < NSPEC; i++)
        for (size_t j = 0; j < NSPEC; j++) {
            double *p = X + (i * NSPEC + j) * 3;
            p[0] = specials[i];
            p[1] = specials[j];
            p[2] = specials[(i + 2 * j) % NSPEC];
        }
    return X;
}

Test(native_kernel, every_opcode_bit_for_bit, .timeout = 120)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("ops", cdir, sizeof cdir);
    size_t npts;
    double *X = special_points(&npts);
    /* the op list comes from ops.def: a new op is tested automatically */
    int seen[TG_OP_COUNT] = { 0 };
    tg_tape *t = all_ops_tape(0);
    for (size_t i = 0; i < tg_tape_size(t); i++)
        (void)0;
    tg_kernel *k = compile_or_fail(t, &o);
    compare_kernel(t, k, npts, X, "every opcode");
    char *dis = tg_tape_disasm(t);
    for (int op = 0; op < TG_OP_COUNT; op++) {
        char pat[64];
        snprintf(pat, sizeof pat, " = %s ", tg_op_name((tg_opcode)op));
        seen[op] = strstr(dis, pat) != NULL || tg_op_arity((tg_opcode)op) == 0
                   || (tg_op_flags((tg_opcode)op) & (TG_OPF_EXTENDED | TG_OPF_GUARD));
        cr_expect(seen[op], "opcode %s is not on the test tape", tg_op_name((tg_opcode)op));
    }
    free(dis);
    tg_kernel_free(k);
    tg_tape_free(t);
    free(X);
}

/* Constant operands only (no folding by the recorder): the compiler must
 * not fold them differently from the run-time libm either. */
Test(native_kernel, constant_operands_unfolded, .timeout = 120)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("ops_nofold", cdir, sizeof cdir);
    size_t npts;
    double *X = special_points(&npts);
    tg_tape *t = all_ops_tape(TG_NO_FOLD | TG_NO_CSE);
    tg_kernel *k = compile_or_fail(t, &o);
    compare_kernel(t, k, npts, X, "constant operands");
    tg_kernel_free(k);
    tg_tape_free(t);
    free(X);
}

/* A random tape over 6 inputs: `len` operations drawn from the op table,
 * operands mostly recent values, sometimes literals (specials included);
 * 64 outputs. */
static tg_tape *random_tape(tu_rng *r, size_t len, unsigned flags)
{
    tg_tape *t = tu_tape("random", flags);
    enum { NIN = 6, NOUT = 64 };
    tg_var *v = malloc((len + NIN) * sizeof *v);
    cr_assert(v);
    tg_input_vec(t, "x", NIN, v);
    size_t nv = NIN;
    for (size_t i = 0; i < len; i++) {
        tg_opcode op;
        do
            op = (tg_opcode)tu_rng_below(r, TG_OP_COUNT);
        while (tg_op_arity(op) == 0 || (tg_op_flags(op) & (TG_OPF_EXTENDED | TG_OPF_GUARD)));  /* guards: own tests */
        tg_operand o[3];
        for (int a = 0; a < 3; a++) {
            if (tu_rng_below(r, 8) == 0)
                o[a] = tg__opnd_num(specials[tu_rng_below(r, NSPEC)]);
            else {
                size_t back = 1 + tu_rng_below(r, nv < 24 ? nv : 24);
                o[a] = tg__opnd_var(v[tu_rng_below(r, 4) == 0 ? tu_rng_below(r, nv) : nv - back]);
            }
        }
        int ar = tg_op_arity(op);
        int any = 0;
        for (int a = 0; a < ar; a++)
            any |= (int)o[a].is_var;
        if (!any)
            o[0] = tg__opnd_var(v[nv - 1]);
        tg_var y = ar == 1 ? tg_op1(op, o[0]) : ar == 2 ? tg_op2(op, o[0], o[1])
                                                        : tg_op3(op, o[0], o[1], o[2]);
        v[nv++] = y;
    }
    tg_var out[NOUT];
    for (size_t j = 0; j < NOUT; j++)
        out[j] = j < NOUT / 2 ? v[nv - 1 - j] : v[NIN + tu_rng_below(r, nv - NIN)];
    tg_output_vec(t, "y", NOUT, out);
    TU_TAPE_OK(t);
    free(v);
    return t;
}

/* Points with about one special coordinate in three. */
static double *random_points(tu_rng *r, size_t npts, size_t n)
{
    double *X = malloc(npts * n * sizeof *X);
    cr_assert(X);
    for (size_t i = 0; i < npts * n; i++)
        X[i] = tu_rng_below(r, 3) == 0 ? specials[tu_rng_below(r, NSPEC)]
                                       : tu_rng_range(r, -3.0, 3.0);
    return X;
}

Test(native_kernel, random_tapes_with_specials, .timeout = 120)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("random", cdir, sizeof cdir);
    tu_rng r = { 20261202 };
    /* one tape recorded with folding and CSE, one without: one compile each */
    for (int pass = 0; pass < 2; pass++) {
        tg_tape *t = random_tape(&r, 3000, pass ? TG_NO_FOLD | TG_NO_CSE : 0);
        double *X = random_points(&r, 300, tg_num_inputs(t));
        tg_kernel *k = compile_or_fail(t, &o);
        compare_kernel(t, k, 300, X, pass ? "random tape (no folding)" : "random tape");
        tg_kernel_free(k);
        tg_tape_free(t);
        free(X);
    }
}

/* t compiled with its batch variant through nat_kernel_jobs with parts of
 * `part` and units of `unit` statements, never from the cache: each job
 * must be several translation units, compiled one by one and linked. */
static tg_kernel *compile_units(const tg_tape *t, const char *cdir, unsigned part, unsigned unit)
{
    tg_compile_options co = { .cache_dir = cdir };
    nat_opts o;
    nat_opts_from(&o, &co, TG_COMPILE_NO_CACHE);
    o.part_size = part;
    o.unit_size = unit;
    nat_job jobs[2];
    size_t work = 0;
    tg_status st;
    size_t n = nat_kernel_jobs(t, &o, 1, "test", jobs, &work, &st);
    cr_assert_eq(n, 2, "nat_kernel_jobs: %s", tg_last_error());
    for (size_t i = 0; i < n; i++)
        cr_assert(jobs[i].nsrc >= 2, "job %zu: %zu translation units, expected several", i,
                  jobs[i].nsrc);
    cr_assert_eq(nat_build_jobs(jobs, n), TG_OK, "%s", tg_last_error());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(jobs[i].how, NAT_BUILT_COMPILED | NAT_BUILT_UNCACHED | NAT_BUILT_LINKED,
                     "job %zu: built as 0x%x, not as linked objects", i, (unsigned)jobs[i].how);
    tg_kernel *k = nat_kernel_make(t, jobs, n, work, "test", &st);
    nat_kernel_jobs_free(jobs, n);
    cr_assert(k != NULL, "%s", tg_last_error());
    return k;
}

Test(native_kernel, units_linked_bit_for_bit, .timeout = 120)
{
    NEED_CC();
    char cdir[2048];
    test_opts("units", cdir, sizeof cdir);
    size_t npts;
    double *X = special_points(&npts);
    tg_tape *t = all_ops_tape(TG_NO_FOLD);
    tg_kernel *k = compile_units(t, cdir, 5, 500);      /* values cross units */
    compare_kernel(t, k, npts, X, "ops tape in units");
    tg_kernel_free(k);
    tg_tape_free(t);
    free(X);
    tu_rng r = { 977 };
    t = random_tape(&r, 800, 0);
    X = random_points(&r, 200, tg_num_inputs(t));
    k = compile_units(t, cdir, 7, 280);
    compare_kernel(t, k, 200, X, "random tape in units");
    tg_kernel_free(k);
    tg_tape_free(t);
    free(X);
}

Test(native_kernel, argument_errors)
{
    cr_expect(tg_compile(NULL, NULL) == NULL);
    cr_expect(strstr(tg_last_error(), "NULL") != NULL, "%s", tg_last_error());
    tg_tape *t = tu_tape("bad", 0);
    tg_input_vec(t, "x", 0, NULL);
    tg_output(t, "y", (tg_var){ NULL, TG_NIL });    /* puts t in the error state */
    cr_assert(tg_tape_status(t) != TG_OK);
    cr_expect(tg_compile(t, NULL) == NULL);
    cr_expect_eq(tg_tape_compile(t, TG_F, NULL), tg_tape_status(t));
    tg_tape_free(t);
    double x = 0, y;
    cr_expect_eq(tg_kernel_eval(NULL, &x, &y), TG_ERR_ARG);
    cr_expect_eq(tg_kernel_eval_batch(NULL, 1, &x, &y), TG_ERR_ARG);
    cr_expect_eq(tg_kernel_num_inputs(NULL), 0);
    tg_kernel_free(NULL);
    tg_compile_options bad = { .opt_level = 7 };
    t = tu_tape("ok", 0);
    tg_output(t, "y", tg_sin(tg_input(t, "x")));
    cr_expect(tg_compile(t, &bad) == NULL);
    cr_expect_eq(tg_tape_compile(t, TG_F, &bad), TG_ERR_ARG);
    cr_expect_eq(tg_tape_compile(t, 0, NULL), TG_ERR_ARG);
    cr_expect_eq(tg_tape_compile(t, TG_HESS, NULL), TG_ERR_ARG);
    tg_tape_free(t);
}

/* No compiler: tg_compile NULL, tg_tape_compile TG_ERR_UNSUPPORTED with the
 * tape unchanged and still interpreted. */
Test(native_errors, missing_compiler_public_api)
{
    tg_tape *t = tu_tape("f", 0);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_output(t, "y", tg_mul(tg_sin(x[0]), x[1]));
    tg_compile_options o = { .cc = "/nonexistent/cc" };
    cr_expect(tg_compile(t, &o) == NULL);
    cr_expect(strstr(tg_last_error(), "/nonexistent/cc") != NULL, "%s", tg_last_error());
    size_t size = tg_tape_size(t);
    cr_expect_eq(tg_tape_compile(t, TG_F | TG_GRAD, &o), TG_ERR_UNSUPPORTED);
    cr_expect(strstr(tg_last_error(), "no C compiler") != NULL, "%s", tg_last_error());
    cr_expect_eq(tg_tape_status(t), TG_OK);
    cr_expect_eq(tg_tape_size(t), size);
    cr_expect(ad_route_of(t, AD_ROUTE_F) == NULL && ad_route_of(t, AD_ROUTE_GRAD) == NULL);
    double in[2] = { 0.5, 2.0 }, g[2];
    TU_OK(tg_gradient(t, in, g));
    cr_expect(g[0] == cos(0.5) * 2.0 && g[1] == sin(0.5));
    tg_tape_free(t);
}

/* ======================================= CONVENTIONS rows, compiled routes */

/* One row of CONVENTIONS.md's "Derivatives at special points": f of n <= 2
 * inputs at x, its value, gradient and (hess_given) Hessian. */
typedef struct conv_row {
    const char *label;
    int n;
    tg_var (*rec)(tg_tape *t, const tg_var *x);
    double x[2], value, grad[2];
    int hess_given;
    double hess[4];
} conv_row;

#define REC(name, body) static tg_var name(tg_tape *t, const tg_var *x) { (void)t; return (body); }
REC(r_sqrt, tg_sqrt(x[0]))
REC(r_sqrt_sq, tg_sqrt(tg_mul(x[0], x[0])))
REC(r_sqrt_sum, tg_sqrt(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1]))))
REC(r_x_sqrt, tg_mul(x[0], tg_sqrt(x[0])))
REC(r_abs, tg_abs(x[0]))
REC(r_signum, tg_signum(x[0]))
REC(r_floor, tg_floor(x[0]))
REC(r_round, tg_round(x[0]))
REC(r_fract, tg_fract(x[0]))
REC(r_max, tg_max(x[0], x[1]))
REC(r_min, tg_min(x[0], x[1]))
REC(r_pow0, tg_pow(x[0], 0.0))
REC(r_pow2, tg_pow(x[0], 2.0))
REC(r_pow25, tg_pow(x[0], 2.5))
REC(r_pow05, tg_pow(x[0], 0.5))
REC(r_pow3, tg_pow(x[0], 3.0))
REC(r_powxy, tg_pow(x[0], x[1]))
REC(r_exp, tg_exp(x[0]))
REC(r_log, tg_log(x[0]))
REC(r_log1p, tg_log1p(x[0]))
REC(r_div, tg_div(x[0], x[1]))
REC(r_xx, tg_div(x[0], x[0]))
REC(r_hypot, tg_hypot(x[0], x[1]))
REC(r_atan2, tg_atan2(x[0], x[1]))
REC(r_asin, tg_asin(x[0]))
REC(r_acos, tg_acos(x[0]))
REC(r_atanh, tg_atanh(x[0]))
REC(r_acosh, tg_acosh(x[0]))
REC(r_cbrt, tg_cbrt(x[0]))
REC(r_sel_sqrt, tg_select(tg_gt(x[0], 0.0), tg_sqrt(x[0]), 0.0))
REC(r_sel_log, tg_select(tg_gt(x[0], 0.0), tg_log(x[0]), 0.0))
REC(r_max_eps, tg_max(tg_sqrt(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1]))), 1e-8))
REC(r_sqrt_exp, tg_sqrt(tg_exp(x[0])))
REC(r_plus0, tg_add(x[0], 0.0))
static tg_var r_norm2(tg_tape *t, const tg_var *x) { (void)t; return tg_norm2(2, x); }

static const double PI_ = 3.141592653589793;
/* rows without a Hessian leave hess_given and hess zero */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const conv_row conv_rows[] = {
    { "sqrt @ +0", 1, r_sqrt, { 0.0 }, 0.0, { INFINITY } },
    { "sqrt @ -1", 1, r_sqrt, { -1.0 }, NAN, { NAN } },
    { "sqrt(x*x) @ 0", 1, r_sqrt_sq, { 0.0 }, 0.0, { 0.0 } },
    { "sqrt(x^2+y^2) @ 0", 2, r_sqrt_sum, { 0.0, 0.0 }, 0.0, { 0.0, 0.0 } },
    { "x*sqrt(x) @ 0", 1, r_x_sqrt, { 0.0 }, 0.0, { 0.0 } },
    { "abs @ +0", 1, r_abs, { 0.0 }, 0.0, { 0.0 } },
    { "abs @ -0", 1, r_abs, { -0.0 }, 0.0, { 0.0 } },
    { "signum @ 0", 1, r_signum, { 0.0 }, 0.0, { 0.0 } },
    { "floor @ 1 (jump)", 1, r_floor, { 1.0 }, 1.0, { 0.0 } },
    { "floor @ NaN", 1, r_floor, { NAN }, NAN, { NAN } },
    { "round @ 2.5", 1, r_round, { 2.5 }, 3.0, { 0.0 } },
    { "fract @ 2.5", 1, r_fract, { 2.5 }, 0.5, { 1.0 } },
    { "max tie", 2, r_max, { 1.0, 1.0 }, 1.0, { 0.5, 0.5 } },
    { "min tie", 2, r_min, { 1.0, 1.0 }, 1.0, { 0.5, 0.5 } },
    { "pow(x,0) @ 0", 1, r_pow0, { 0.0 }, 1.0, { 0.0 } },
    { "pow(x,2) @ 0", 1, r_pow2, { 0.0 }, 0.0, { 0.0 }, 1, { 2.0 } },
    { "pow(x,2.5) @ 0", 1, r_pow25, { 0.0 }, 0.0, { 0.0 } },
    { "pow(x,0.5) @ 0", 1, r_pow05, { 0.0 }, 0.0, { INFINITY } },
    { "pow(x,3) @ -2", 1, r_pow3, { -2.0 }, -8.0, { 12.0 }, 1, { -12.0 } },
    { "pow(x,y) @ (0,2)", 2, r_powxy, { 0.0, 2.0 }, 0.0, { 0.0, 0.0 } },
    { "pow(x,y) @ (-2,3)", 2, r_powxy, { -2.0, 3.0 }, -8.0, { 12.0, NAN } },
    { "exp @ 710", 1, r_exp, { 710.0 }, INFINITY, { INFINITY } },
    { "log @ +0", 1, r_log, { 0.0 }, -INFINITY, { INFINITY } },
    { "log @ -1", 1, r_log, { -1.0 }, NAN, { NAN } },
    { "log1p @ -1", 1, r_log1p, { -1.0 }, -INFINITY, { INFINITY } },
    { "a/b @ b = 1e-200", 2, r_div, { 1e-100, 1e-200 }, 1e100, { 1e200, -1e300 } },
    { "x/x @ 0", 1, r_xx, { 0.0 }, NAN, { NAN } },
    { "hypot @ (0,0)", 2, r_hypot, { 0.0, 0.0 }, 0.0, { 0.0, 0.0 } },
    { "hypot @ (1e200,1e200)", 2, r_hypot, { 1e200, 1e200 }, 1.4142135623730951e200,
      { 0.7071067811865476, 0.7071067811865476 } },
    { "norm2 @ 0", 2, r_norm2, { 0.0, 0.0 }, 0.0, { 0.0, 0.0 } },
    { "atan2 @ (0,1)", 2, r_atan2, { 0.0, 1.0 }, 0.0, { 1.0, 0.0 } },
    { "atan2 @ (0,0)", 2, r_atan2, { 0.0, 0.0 }, 0.0, { 0.0, 0.0 } },
    { "atan2 @ (1e200,1e200)", 2, r_atan2, { 1e200, 1e200 }, 0.7853981633974483,
      { 5e-201, -5e-201 } },
    { "asin @ 1", 1, r_asin, { 1.0 }, 1.5707963267948966, { INFINITY } },
    { "acos @ 1", 1, r_acos, { 1.0 }, 0.0, { -INFINITY } },
    { "acos @ -1", 1, r_acos, { -1.0 }, PI_, { -INFINITY } },
    { "atanh @ 1", 1, r_atanh, { 1.0 }, INFINITY, { INFINITY } },
    { "acosh @ 1", 1, r_acosh, { 1.0 }, 0.0, { INFINITY } },
    { "cbrt @ 0", 1, r_cbrt, { 0.0 }, 0.0, { INFINITY } },
    { "select sqrt @ -1", 1, r_sel_sqrt, { -1.0 }, 0.0, { 0.0 }, 1, { 0.0 } },
    { "select sqrt @ 0", 1, r_sel_sqrt, { 0.0 }, 0.0, { 0.0 }, 1, { 0.0 } },
    { "select log @ 0", 1, r_sel_log, { 0.0 }, 0.0, { 0.0 } },
    { "max(norm, eps) @ 0", 2, r_max_eps, { 0.0, 0.0 }, 1e-8, { 0.0, 0.0 } },
    { "sqrt(exp) @ -800", 1, r_sqrt_exp, { -800.0 }, 0.0, { 0.0 } },
    { "x + 0.0 @ -0", 1, r_plus0, { -0.0 }, 0.0, { 1.0 } },
};
#pragma GCC diagnostic pop
#define NROWS (sizeof conv_rows / sizeof conv_rows[0])

/* NaN matches NaN, infinities and zeros exactly, else 1e-12 relative. */
static int want_match(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want) || want == 0.0)
        return got == want;
    return tu_close(got, want, 1e-12, 0.0);
}

/* All rows side by side: row r reads inputs off[r].., and is output r of
 * the vector tape; the scalar tape is their sum (rows share no input, so
 * its gradient and Hessian are the rows' own, blocks side by side). */
static tg_tape *rows_tape(int scalar, size_t *off, size_t *n)
{
    tg_tape *t = tu_tape(scalar ? "rows_sum" : "rows", 0);
    size_t total = 0;
    for (size_t r = 0; r < NROWS; r++) {
        off[r] = total;
        total += (size_t)conv_rows[r].n;
    }
    tg_var *x = malloc(total * sizeof *x), y[NROWS];
    tg_input_vec(t, "x", total, x);
    for (size_t r = 0; r < NROWS; r++)
        y[r] = conv_rows[r].rec(t, x + off[r]);
    if (scalar)
        tg_output(t, "y", tg_sum(NROWS, y));
    else
        tg_output_vec(t, "y", NROWS, y);
    free(x);
    TU_TAPE_OK(t);
    *n = total;
    return t;
}

static void rows_point(const size_t *off, double *x)
{
    for (size_t r = 0; r < NROWS; r++)
        for (int j = 0; j < conv_rows[r].n; j++)
            x[off[r] + (size_t)j] = conv_rows[r].x[j];
}

/* out (len values) vs the interpreter on derivative tape d at in. */
static void same_as_tape(const tg_tape *d, const double *in, const double *out, size_t len,
                         const char *what)
{
    cr_assert_eq(tg_num_outputs(d), len);
    double *want = malloc(len * sizeof *want);
    TU_OK(tg_eval(d, in, want));
    int bad = 0;
    for (size_t i = 0; i < len && bad < 8; i++)
        if (!tu_same_bits_nan(out[i], want[i])) {
            bad++;
            cr_expect_fail("%s[%zu]: compiled %a, interpreted derivative tape %a", what, i,
                           out[i], want[i]);
        }
    free(want);
}

Test(native_routes, conventions_vector_tape_f_jac, .timeout = 180)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("rows", cdir, sizeof cdir);
    size_t off[NROWS], n;
    tg_tape *t = rows_tape(0, off, &n), *plain = rows_tape(0, off, &n);
    tg_tape *jt = tg_jacobian_tape(t, TG_ALL);
    TU_OK(tg_tape_compile(t, TG_F | TG_JAC, &o));
    cr_assert(ad_route_of(t, AD_ROUTE_F) && ad_route_of(t, AD_ROUTE_JAC),
              "the routes are not attached");
    cr_expect(ad_route_of(t, AD_ROUTE_GRAD) == NULL);
    double *x = malloc(n * sizeof *x), y[NROWS], *J = malloc(NROWS * n * sizeof *J);
    rows_point(off, x);
    TU_OK(tg_eval(t, x, y));
    same_as_tape(plain, x, y, NROWS, "value");
    TU_OK(tg_jacobian(t, x, J));
    same_as_tape(jt, x, J, NROWS * n, "jacobian");
    for (size_t r = 0; r < NROWS; r++) {
        const conv_row *c = &conv_rows[r];
        cr_expect(want_match(y[r], c->value), "%s: compiled value %a, expected %a", c->label,
                  y[r], c->value);
        for (size_t j = 0; j < n; j++) {
            size_t local = j - off[r];
            double want = j >= off[r] && local < (size_t)c->n ? c->grad[local] : 0.0;
            cr_expect(want_match(J[r * n + j], want), "%s: compiled J[%zu][%zu] = %a, expected %a",
                      c->label, r, j, J[r * n + j], want);
        }
    }
    /* _ws variants and the batch path give the same bits */
    tg_workspace *w = tg_workspace_new(t);
    double y2[NROWS], *J2 = malloc(NROWS * n * sizeof *J2);
    TU_OK(tg_eval_ws(t, w, x, y2));
    TU_OK(tg_jacobian_ws(t, w, x, J2));
    cr_expect(memcmp(y, y2, sizeof y) == 0 && memcmp(J, J2, NROWS * n * sizeof *J) == 0);
    double *X = malloc(100 * n * sizeof *X), *Y = malloc(100 * NROWS * sizeof *Y);
    for (size_t p = 0; p < 100; p++)
        memcpy(X + p * n, x, n * sizeof *x);
    TU_OK(tg_eval_batch(t, 100, X, Y));
    for (size_t p = 0; p < 100; p++)
        cr_expect(memcmp(Y + p * NROWS, y, sizeof y) == 0, "batch point %zu differs", p);
    tg_workspace_free(w);
    free(X); free(Y); free(J2); free(x); free(J);
    tg_tape_free(jt);
    tg_tape_free(plain);
    tg_tape_free(t);
}

Test(native_routes, conventions_scalar_tape_f_grad_hvp, .timeout = 180)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("rows_sum", cdir, sizeof cdir);
    size_t off[NROWS], n;
    tg_tape *t = rows_tape(1, off, &n), *plain = rows_tape(1, off, &n);
    tg_tape *gt = tg_gradient_tape(t, TG_ALL), *ht = tg_hvp_tape(t, TG_ALL);
    tg_compile_options_ex ex = { o, TG_COMPILE_BATCH };
    TU_OK(tg_tape_compile_ex(t, TG_GRAD, &ex));        /* with the batch variant */
    TU_OK(tg_tape_compile(t, TG_F | TG_HVP, &o));      /* adds parts, keeps GRAD */
    cr_assert(ad_route_of(t, AD_ROUTE_F) && ad_route_of(t, AD_ROUTE_GRAD) &&
              ad_route_of(t, AD_ROUTE_HVP), "the routes are not attached");
    cr_expect(ad_route_of(t, AD_ROUTE_GRAD)->batch != NULL, "no batch variant for GRAD");
    cr_expect(ad_route_of(t, AD_ROUTE_F)->batch == NULL, "a batch variant not asked for");
    double *x = malloc(2 * n * sizeof *x), *g = malloc(n * sizeof *g), *hv = malloc(n * sizeof *hv);
    double y;
    rows_point(off, x);
    TU_OK(tg_eval(t, x, &y));
    same_as_tape(plain, x, &y, 1, "value");
    TU_OK(tg_gradient(t, x, g));
    same_as_tape(gt, x, g, n, "gradient");
    for (size_t r = 0; r < NROWS; r++)
        for (int j = 0; j < conv_rows[r].n; j++)
            cr_expect(want_match(g[off[r] + (size_t)j], conv_rows[r].grad[j]),
                      "%s: compiled d/dx%d = %a, expected %a", conv_rows[r].label, j,
                      g[off[r] + (size_t)j], conv_rows[r].grad[j]);
    /* HVP along every unit vector: the Hessian's columns */
    double *v = x + n;
    for (size_t d = 0; d < n; d++) {
        for (size_t j = 0; j < n; j++)
            v[j] = j == d ? 1.0 : 0.0;
        TU_OK(tg_hvp(t, x, v, hv));
        char what[64];
        snprintf(what, sizeof what, "hvp e%zu", d);
        same_as_tape(ht, x, hv, n, what);
    }
    for (size_t r = 0; r < NROWS; r++) {
        const conv_row *c = &conv_rows[r];
        if (!c->hess_given)
            continue;
        for (int d = 0; d < c->n; d++) {
            for (size_t j = 0; j < n; j++)
                v[j] = j == off[r] + (size_t)d ? 1.0 : 0.0;
            TU_OK(tg_hvp(t, x, v, hv));
            for (int i = 0; i < c->n; i++)
                cr_expect(want_match(hv[off[r] + (size_t)i], c->hess[i * c->n + d]),
                          "%s: compiled H[%d][%d] = %a, expected %a", c->label, i, d,
                          hv[off[r] + (size_t)i], c->hess[i * c->n + d]);
        }
    }
    /* _ws and batch variants */
    tg_workspace *w = tg_workspace_new(t);
    double *g2 = malloc(n * sizeof *g2), *hv2 = malloc(n * sizeof *hv2);
    TU_OK(tg_gradient_ws(t, w, x, g2));
    cr_expect(memcmp(g, g2, n * sizeof *g) == 0);
    TU_OK(tg_hvp_ws(t, w, x, v, hv2));
    TU_OK(tg_hvp(t, x, v, hv));
    cr_expect(memcmp(hv, hv2, n * sizeof *hv) == 0);
    enum { NP = 77 };
    double *X = malloc(NP * n * sizeof *X), *G = malloc(NP * n * sizeof *G), Y[NP];
    tu_rng rng = { 7 };
    for (size_t i = 0; i < NP * n; i++)
        X[i] = tu_rng_below(&rng, 4) ? tu_rng_range(&rng, -2.0, 2.0) : specials[tu_rng_below(&rng, NSPEC)];
    memcpy(X, x, n * sizeof *x);
    TU_OK(tg_eval_batch(t, NP, X, Y));
    TU_OK(tg_gradient_batch(t, NP, X, G));
    for (size_t p = 0; p < NP; p++) {
        same_as_tape(plain, X + p * n, Y + p, 1, "batch value");
        same_as_tape(gt, X + p * n, G + p * n, n, "batch gradient");
    }
    tg_workspace_free(w);
    free(X); free(G); free(g2); free(hv2); free(x); free(g); free(hv);
    tg_tape_free(gt);
    tg_tape_free(ht);
    tg_tape_free(plain);
    tg_tape_free(t);
}

/* Recording into a compiled tape drops its routes: the interpreter sees
 * the new instructions and outputs. */
Test(native_routes, recording_afterwards_interprets_again, .timeout = 120)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("rerecord", cdir, sizeof cdir);
    tg_tape *t = tu_tape("grow", 0);
    tg_var x = tg_input(t, "x");
    tg_var s = tg_sin(x);
    tg_output(t, "y", s);
    TU_OK(tg_tape_compile(t, TG_F, &o));
    cr_assert(ad_route_of(t, AD_ROUTE_F) != NULL);
    double in = 0.25, y[2] = { 0, 0 };
    TU_OK(tg_eval(t, &in, y));
    cr_expect(y[0] == sin(0.25));
    tg_output(t, "z", tg_mul(s, 3.0));
    cr_expect(ad_route_of(t, AD_ROUTE_F) == NULL, "routes survived a change of the tape");
    TU_OK(tg_eval(t, &in, y));
    cr_expect(y[0] == sin(0.25) && y[1] == sin(0.25) * 3.0);
    tg_tape_free(t);
}

/* A vector tape cannot have a gradient route; nothing changes on error. */
Test(native_routes, shape_errors_leave_the_tape_alone)
{
    tg_tape *t = tu_tape("vec", 0);
    tg_var x[2];
    tg_input_vec(t, "x", 2, x);
    tg_output_vec(t, "y", 2, x);
    cr_expect_eq(tg_tape_compile(t, TG_GRAD, NULL), TG_ERR_SHAPE);
    cr_expect_eq(tg_tape_compile(t, TG_F | TG_HVP, NULL), TG_ERR_SHAPE);
    cr_expect(ad_route_of(t, AD_ROUTE_F) == NULL);
    cr_expect_eq(tg_tape_status(t), TG_OK);
    tg_tape_free(t);
}

/* One kernel, four threads evaluating it at once (scratch per call). */
typedef struct thr_arg {
    const tg_tape *t;
    const tg_kernel *k;
    const double *X;
    size_t npts, first;
    int bad;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    size_t n = tg_num_inputs(a->t), m = tg_num_outputs(a->t);
    double *y = malloc(m * sizeof *y), *yk = malloc(m * sizeof *yk);
    for (size_t r = 0; r < 3; r++)
        for (size_t q = 0; q < a->npts; q++) {
            size_t p0 = (a->first + q) % a->npts;
            if (tg_kernel_eval(a->k, a->X + p0 * n, yk) != TG_OK ||
                tg_eval(a->t, a->X + p0 * n, y) != TG_OK)
                a->bad++;
            for (size_t j = 0; j < m; j++)
                a->bad += !tu_same_bits_nan(yk[j], y[j]);
        }
    free(y);
    free(yk);
    return NULL;
}

Test(native_kernel, concurrent_evaluation, .timeout = 120)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("ops", cdir, sizeof cdir);   /* the ops test's kernel */
    size_t npts;
    double *X = special_points(&npts);
    tg_tape *t = all_ops_tape(0);
    tg_kernel *k = compile_or_fail(t, &o);
    pthread_t tid[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){ t, k, X, npts, (size_t)i * 97, 0 };
        cr_assert(pthread_create(&tid[i], NULL, thr_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(tid[i], NULL);
        cr_expect_eq(args[i].bad, 0, "thread %d: %d mismatches", i, args[i].bad);
    }
    tg_kernel_free(k);
    tg_tape_free(t);
    free(X);
}

/* ------------------------------------------------------- branch guards */

/* f(x, p) = x < 1 ? p x^2 + sin x : 2 p x - p + cos x, recorded at x0 */
static tg_tape *guarded(double x0)
{
    tg_tape *t = tu_tape("guarded", 0);
    tg_var x = tg_input_at(t, "x", x0), p = tg_input_at(t, "p", 0.75);
    tg_var y;
    if (tg_branch(tg_lt(x, 1.0)))
        y = tg_add(tg_mul(p, tg_mul(x, x)), tg_sin(x));
    else
        y = tg_add(tg_sub(tg_mul(tg_mul(2.0, p), x), p), tg_cos(x));
    tg_output(t, "y", y);
    TU_TAPE_OK(t);
    return t;
}

/* Kernels and routes of a guarded tape: TG_ERR_BRANCH with nothing
 * written on the other side, the interpreter's bits on this one; batches
 * say which points failed. */
Test(native_routes, branch_guards, .timeout = 180)
{
    NEED_CC();
    char cdir[2048];
    tg_compile_options o = test_opts("guarded", cdir, sizeof cdir);
    tg_tape *t = guarded(0.5), *plain = guarded(0.5);
    tg_compile_options_ex ex = { o, TG_COMPILE_BATCH };
    tg_kernel *k = tg_compile_ex(t, &ex);
    cr_assert(k != NULL, "%s", tg_last_error());
    TU_OK(tg_tape_compile_ex(t, TG_F | TG_GRAD | TG_JAC | TG_HVP, &ex));
    enum { NP = 40 };
    double X[2 * NP], Y[NP], Yk[NP], G[2 * NP];
    tg_status st[NP];
    for (int p = 0; p < NP; p++) {
        X[2 * p] = -1.0 + 0.07 * p;
        X[2 * p + 1] = 1.5;
    }
    for (int p = 0; p < NP; p++) {
        int same = X[2 * p] < 1.0;
        tg_status want = same ? TG_OK : TG_ERR_BRANCH;
        double y = 99.0, yp = 99.0, g[2] = { 99, 99 }, gp[2], J[2] = { 99, 99 }, hv[2] = { 99, 99 };
        double v[2] = { 1.0, -0.5 }, hvp[2];
        cr_expect_eq(tg_kernel_eval(k, X + 2 * p, &y), want);
        cr_expect_eq(tg_eval(plain, X + 2 * p, &yp), want);
        if (same)
            cr_expect(tu_same_bits(y, yp), "point %d: kernel %a, tg_eval %a", p, y, yp);
        else
            cr_expect_eq(y, 99.0);
        y = 99.0;
        cr_expect_eq(tg_eval(t, X + 2 * p, &y), want, "routed eval at point %d", p);
        cr_expect(same ? tu_same_bits(y, yp) : y == 99.0);
        cr_expect_eq(tg_gradient(t, X + 2 * p, g), want);
        cr_expect_eq(tg_jacobian(t, X + 2 * p, J), want);
        cr_expect_eq(tg_hvp(t, X + 2 * p, v, hv), want);
        if (same) {
            TU_OK(tg_gradient(plain, X + 2 * p, gp));
            TU_OK(tg_hvp(plain, X + 2 * p, v, hvp));
            for (int i = 0; i < 2; i++) {
                cr_expect(fabs(g[i] - gp[i]) <= 1e-14 * fmax(1, fabs(gp[i])));
                cr_expect(fabs(J[i] - gp[i]) <= 1e-14 * fmax(1, fabs(gp[i])));
                cr_expect(fabs(hv[i] - hvp[i]) <= 1e-14 * fmax(1, fabs(hvp[i])));
            }
        } else {
            cr_expect(g[0] == 99 && g[1] == 99 && J[0] == 99 && J[1] == 99 && hv[0] == 99
                      && hv[1] == 99, "point %d: written on a failing guard", p);
        }
    }
    for (int p = 0; p < NP; p++)
        Yk[p] = Y[p] = 99.0;
    cr_expect_eq(tg_kernel_eval_batch(k, NP, X, Yk), TG_ERR_BRANCH);
    cr_expect_eq(tg_eval_batch_status(t, NP, X, Y, st), TG_ERR_BRANCH);
    cr_expect_eq(tg_gradient_batch_status(t, NP, X, G, st), TG_ERR_BRANCH);
    for (int p = 0; p < NP; p++) {
        int same = X[2 * p] < 1.0;
        double yp;
        cr_expect_eq(st[p], same ? TG_OK : TG_ERR_BRANCH, "point %d", p);
        if (same) {
            TU_OK(tg_eval(plain, X + 2 * p, &yp));
            cr_expect(tu_same_bits(Y[p], yp) && tu_same_bits(Yk[p], yp), "point %d", p);
        } else {
            cr_expect(Y[p] == 99.0 && Yk[p] == 99.0, "point %d: batch row written", p);
        }
    }
    tg_kernel_free(k);
    tg_tape_free(t);
    tg_tape_free(plain);
}
