/* tests/test_atomic.c -- files are written atomically (src/tape/atomic.c).
 *
 *  - a tape saved over a good file under a file size limit (the issue's
 *    reproducer, in a child process with RLIMIT_FSIZE 8192 and SIGXFSZ
 *    ignored) fails with TG_ERR_IO "file size limit exceeded"; the old file
 *    is bit-identical and still loads; no temporary file is left;
 *  - the same for a Rust crate written over an older crate: every old file
 *    (lib.rs included) is intact, nothing else appears;
 *  - an unwritable directory, a directory as the target: TG_ERR_IO, the old
 *    file intact, nothing left;
 *  - a new file gets 0666 & ~umask, a replaced file keeps its mode, a
 *    symbolic link stays a link to the new content;
 *  - tape_write_files stages every file before renaming any;
 *  - an empty Rust builder is refused (TG_ERR_ARG) and writes nothing. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tape/internal.h"
#include "testutil.h"

static char dir[64];

static const char *
path_in(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void
setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-test-atomic-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
}

static void
teardown(void)
{
    char cmd[128];
    chmod(dir, 0700);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
}

TestSuite(atomic, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------ helpers */

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static bytes
read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    bytes b = { NULL, 0 };
    size_t cap = 0, got;
    do {
        if (b.n == cap) {
            cap = cap ? 2 * cap : 65536;
            b.p = realloc(b.p, cap);
        }
        got = fread(b.p + b.n, 1, cap - b.n, f);
        b.n += got;
    } while (got > 0);
    fclose(f);
    return b;
}

static void
assert_same_file(const char *path, bytes want)
{
    bytes now = read_all(path);
    cr_assert(now.n == want.n && memcmp(now.p, want.p, want.n) == 0,
              "%s changed: %zu bytes, was %zu", path, now.n, want.n);
    free(now.p);
}

static int
cmp_name(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* The names in directory d, sorted, joined by spaces. */
static void
listing(const char *d, char *out, size_t len)
{
    char names[64][256];
    int n = 0;
    DIR *h = opendir(d);
    cr_assert(h != NULL, "cannot list %s", d);
    for (struct dirent *e; (e = readdir(h)) != NULL && n < 64;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(h);
    qsort(names, (size_t)n, sizeof names[0], cmp_name);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", names[i]);
}

static void
assert_listing(const char *d, const char *want)
{
    char got[4096];
    listing(d, got, sizeof got);
    cr_assert_str_eq(got, want, "%s holds \"%s\", expected \"%s\"", d, got, want);
}

/* A tape of about 25 bytes per input: a big one does not fit in 8 kB. */
static tg_tape *
chain(const char *name, size_t n)
{
    tg_tape *t = tu_tape(name, 0);
    tg_var *x = calloc(n, sizeof *x);
    tg_input_vec(t, "x", n, x);
    tg_var acc = tg_sin(x[0]);
    for (size_t i = 1; i < n; i++)
        acc = tg_add(tg_mul(acc, x[i]), tg_cos(x[i - 1]));
    tg_output(t, "f", acc);
    free(x);
    TU_TAPE_OK(t);
    return t;
}

/* Runs f(arg) in a child whose files may not exceed 8192 bytes (SIGXFSZ
 * ignored: writes fail with EFBIG); f's return is the child's exit code. */
static int
with_fsize_limit(int (*f)(const void *), const void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = { 8192, 8192 };
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(90);
        _exit(f(arg));
    }
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    cr_assert(WIFEXITED(st), "the child was killed by signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

/* ------------------------------------------------------ the reproducer */

static int
save_big(const void *arg)
{
    tg_tape *big = chain("big", 2000);
    tg_status s = tg_tape_save(big, arg);
    int ok = s == TG_ERR_IO && strstr(tg_last_error(), "file size limit exceeded") != NULL
             && strstr(tg_last_error(), (const char *)arg) != NULL;
    if (!ok)
        fprintf(stderr, "child: status %s: %s\n", tg_status_str(s), tg_last_error());
    tg_tape_free(big);
    return ok ? 0 : 1;
}

Test(atomic, failed_save_under_a_file_size_limit_keeps_the_old_file)
{
    tg_tape *small = chain("small", 20);
    const char *keep = path_in("keep.tape");
    TU_OK(tg_tape_save(small, keep));
    bytes old = read_all(keep);
    cr_assert_lt(old.n, 8192);
    cr_assert_eq(with_fsize_limit(save_big, keep), 0, "the save did not fail as expected");
    assert_same_file(keep, old);
    assert_listing(dir, "keep.tape");
    tg_tape *back = tg_tape_load(keep);
    TU_TAPE_OK(back);
    cr_assert_eq(tg_tape_size(back), tg_tape_size(small));
    /* Without the limit the same save succeeds and replaces the file. */
    tg_tape *big = chain("big", 2000);
    TU_OK(tg_tape_save(big, keep));
    bytes now = read_all(keep);
    cr_assert_gt(now.n, 8192);
    assert_listing(dir, "keep.tape");
    free(now.p);
    free(old.p);
    tg_tape_free(big);
    tg_tape_free(back);
    tg_tape_free(small);
}

static int
crate_big(const void *arg)
{
    tg_tape *big = chain("k", 2000);
    tg_status s = tg_rust_crate(big, NULL, arg);
    int ok = s == TG_ERR_IO && strstr(tg_last_error(), "file size limit exceeded") != NULL;
    if (!ok)
        fprintf(stderr, "child: status %s: %s\n", tg_status_str(s), tg_last_error());
    tg_tape_free(big);
    return ok ? 0 : 1;
}

Test(atomic, failed_crate_write_keeps_every_old_file)
{
    static const char *const files[] = { "Cargo.toml", "README.md", "src/lib.rs", "tests/kernels.rs" };
    tg_tape *small = chain("k", 3);
    const char *crate = path_in("crate");
    TU_OK(tg_rust_crate(small, NULL, crate));
    bytes old[4];
    char p[4][512];
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", crate, files[i]);
        old[i] = read_all(p[i]);
    }
    cr_assert_eq(with_fsize_limit(crate_big, crate), 0, "the crate write did not fail as expected");
    for (int i = 0; i < 4; i++) {
        assert_same_file(p[i], old[i]);
        free(old[i].p);
    }
    char sub[512];
    assert_listing(crate, "Cargo.toml README.md src tests");
    snprintf(sub, sizeof sub, "%s/src", crate);
    assert_listing(sub, "lib.rs");
    snprintf(sub, sizeof sub, "%s/tests", crate);
    assert_listing(sub, "kernels.rs");
    tg_tape_free(small);
}

/* ------------------------------------------------ unwritable targets */

Test(atomic, unwritable_directory_keeps_the_old_file)
{
    tg_tape *t = chain("t", 10), *u = chain("u", 30);
    /* /proc/self is not writable, not even by root */
    cr_assert_eq(tg_tape_save(t, "/proc/self/t.tape"), TG_ERR_IO);
    cr_assert(strstr(tg_last_error(), "/proc/self/t.tape") != NULL, "%s", tg_last_error());
    const char *sub = path_in("ro");
    cr_assert(mkdir(sub, 0700) == 0);
    char keep[300];
    snprintf(keep, sizeof keep, "%s/keep.tape", sub);
    TU_OK(tg_tape_save(t, keep));
    bytes old = read_all(keep);
    cr_assert(chmod(sub, 0500) == 0);
    if (geteuid() != 0) {           /* root writes anywhere */
        cr_assert_eq(tg_tape_save(u, keep), TG_ERR_IO);
        cr_assert(strstr(tg_last_error(), "ermission denied") != NULL, "%s", tg_last_error());
        assert_same_file(keep, old);
        assert_listing(sub, "keep.tape");
    } else {
        cr_log_info("running as root: the read-only directory case is skipped");
    }
    chmod(sub, 0700);
    free(old.p);
    tg_tape_free(t);
    tg_tape_free(u);
}

Test(atomic, a_directory_is_not_replaced)
{
    tg_tape *t = chain("t", 5);
    const char *d = path_in("adir");
    cr_assert(mkdir(d, 0700) == 0);
    cr_assert_eq(tg_tape_save(t, d), TG_ERR_IO);
    cr_assert(strstr(tg_last_error(), "is a directory") != NULL, "%s", tg_last_error());
    struct stat st;
    cr_assert(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
    assert_listing(dir, "adir");
    tg_tape_free(t);
}

/* ------------------------------------------------------ modes, links */

Test(atomic, modes_and_symbolic_links)
{
    tg_tape *t = chain("t", 5), *u = chain("u", 7);
    const char *f = path_in("m.tape");
    mode_t old = umask(027);
    TU_OK(tg_tape_save(t, f));
    struct stat st;
    cr_assert(stat(f, &st) == 0);
    cr_assert_eq(st.st_mode & 0777, 0640, "new file mode %o with umask 027", st.st_mode & 0777);
    umask(022);
    cr_assert(chmod(f, 0604) == 0);
    TU_OK(tg_tape_save(u, f));
    cr_assert(stat(f, &st) == 0);
    cr_assert_eq(st.st_mode & 0777, 0604, "replaced file mode %o, was 0604", st.st_mode & 0777);
    umask(old);

    const char *link = path_in("link.tape");
    cr_assert(symlink("m.tape", link) == 0);
    TU_OK(tg_tape_save(t, link));
    cr_assert(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced by a file");
    tg_tape *back = tg_tape_load(f);
    TU_TAPE_OK(back);
    cr_assert_str_eq(tg_tape_name(back), "t", "the link's target was not rewritten");
    assert_listing(dir, "link.tape m.tape");
    tg_tape_free(back);
    tg_tape_free(t);
    tg_tape_free(u);
}

/* ------------------------------------------------------ groups of files */

Test(atomic, a_group_is_staged_before_any_rename)
{
    const char *a = path_in("a.txt");
    char err[256];
    TU_OK(tape_write_file(a, "old", 3, err, sizeof err));
    tape_wfile f[2] = { { a, "new", 3 }, { path_in("missing/b.txt"), "b", 1 } };
    cr_assert_eq(tape_write_files(f, 2, err, sizeof err), TG_ERR_IO);
    cr_assert(strstr(err, "missing/b.txt") != NULL, "%s", err);
    assert_same_file(a, (bytes){ (uint8_t *)"old", 3 });
    assert_listing(dir, "a.txt");
    f[1].path = path_in("b.txt");
    TU_OK(tape_write_files(f, 2, err, sizeof err));
    assert_same_file(a, (bytes){ (uint8_t *)"new", 3 });
    assert_listing(dir, "a.txt b.txt");
}

/* ------------------------------------------------------ the builder */

Test(atomic, an_empty_rust_builder_is_refused)
{
    tg_rust_builder *b = tg_rust_builder_new(NULL);
    cr_assert(b != NULL);
    const char *crate = path_in("empty_crate");
    cr_assert_eq(tg_rust_builder_write(b, crate), TG_ERR_ARG);
    cr_assert(strstr(tg_last_error(), "no kernels") != NULL, "%s", tg_last_error());
    cr_assert(strstr(tg_rust_builder_error(b), "no kernels") != NULL, "%s", tg_rust_builder_error(b));
    cr_assert(access(crate, F_OK) != 0, "an empty builder created %s", crate);
    /* Not sticky: with a kernel the same builder writes. */
    tg_tape *t = chain("k", 3);
    TU_OK(tg_rust_builder_add(b, t, NULL));
    TU_OK(tg_rust_builder_write(b, crate));
    cr_assert(access(path_in("empty_crate/src/lib.rs"), F_OK) == 0);
    tg_rust_builder_free(b);
    tg_tape_free(t);
}
