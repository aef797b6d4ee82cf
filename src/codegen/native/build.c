/* src/codegen/native/build.c -- C sources to a loaded shared object: look
 * the key up in the cache; on a miss compile in a private mkdtemp
 * directory, store the object in the cache (when the cache directory is
 * usable; otherwise load it straight from the temporary directory), remove
 * the temporary files, dlopen. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/native/native.h"
#include "tape/alloc.h"
#include "tape/internal.h"

enum { PATHLEN = 4096 };

/* The key: compiler identity and flags, then every source with its length. */
static void
build_key(const nat_cc *cc, const nat_source *src, size_t nsrc, unsigned char key[NAT_SHA256_LEN])
{
    nat_sha256 s;
    nat_sha256_init(&s);
    nat_sha256_update(&s, cc->id, sizeof cc->id);
    for (size_t i = 0; i < nsrc; i++) {
        uint64_t len = src[i].len;
        nat_sha256_update(&s, &len, sizeof len);
        nat_sha256_update(&s, src[i].text, src[i].len);
    }
    nat_sha256_final(&s, key);
}

static int
write_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int bad = 0;
    while (len && !bad) {
        ssize_t w = write(fd, text, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bad = 1;
        else {
            text += w;
            len -= (size_t)w;
        }
    }
    return close(fd) || bad ? -1 : 0;
}

/* A private temporary directory: $TMPDIR/tapegen-XXXXXX (mode 0700). */
static int
make_tmpdir(char *buf, size_t len)
{
    const char *t = getenv("TMPDIR");
    if (!t || t[0] != '/')
        t = "/tmp";
    if ((size_t)snprintf(buf, len, "%s/tapegen-XXXXXX", t) >= len - 128)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

static void
remove_tmp(const char *dir, size_t nsrc, const char *so)
{
    char p[PATHLEN + 32];
    for (size_t i = 0; i < nsrc; i++) {
        snprintf(p, sizeof p, "%s/k%zu.c", dir, i);
        unlink(p);
    }
    unlink(so);
    rmdir(dir);
}

/* Runs the compiler on the sources in dir into so.  TG_OK, or the
 * compiler's failure with its output in the message. */
static tg_status
run_cc(const nat_cc *cc, const char *dir, size_t nsrc, const char *so, const char *fn)
{
    nat_argv a = { { NULL }, 0 };
    char p[PATHLEN + 32];
    int bad = 0;
    for (int i = 0; i < cc->cmd.n; i++)
        bad |= nat_argv_add(&a, cc->cmd.v[i]);
    for (int i = 0; i < cc->flags.n; i++)
        bad |= nat_argv_add(&a, cc->flags.v[i]);
    bad |= nat_argv_add(&a, "-o") | nat_argv_add(&a, so);
    for (size_t i = 0; i < nsrc; i++) {
        snprintf(p, sizeof p, "%s/k%zu.c", dir, i);
        bad |= nat_argv_add(&a, p);
    }
    bad |= nat_argv_add(&a, "-lm");
    if (bad) {
        nat_argv_free(&a);
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
    }
    char *out = NULL;
    int code = 0;
    int r = nat_run(&a, &out, &code);
    int e = errno;
    nat_argv_free(&a);
    if (r) {
        mem_free(out);
        return tape_fail_call(TG_ERR_UNSUPPORTED, "%s: cannot run the C compiler \"%s\": %s", fn,
                            cc->cmd.v[0], strerror(e));
    }
    /* exit status unknown (SIGCHLD ignored by the program): trust the file */
    if (code > 0 || (code < 0 && access(so, R_OK))) {
        tg_status s = tape_fail_call(TG_ERR_UNSUPPORTED, "%s: the C compiler \"%s\" failed "
                                   "(exit %d): %s", fn, cc->cmd.v[0], code, out ? out : "");
        mem_free(out);
        return s;
    }
    mem_free(out);
    return TG_OK;
}

static void *
load(const char *path, const char *fn, tg_status *st)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        *st = tape_fail_call(TG_ERR_UNSUPPORTED, "%s: cannot load the compiled kernel: %s", fn,
                           e ? e : "dlopen failed");
    }
    return h;
}

/* Cache miss: compile in a temporary directory, store, load. */
static void *
compile_and_load(const nat_cc *cc, const nat_source *src, size_t nsrc,
                 const unsigned char key[NAT_SHA256_LEN], const char *cdir, const char *fn,
                 tg_status *st, nat_how *how)
{
    char dir[PATHLEN], so[PATHLEN + 80], p[PATHLEN + 32], hex[2 * NAT_SHA256_LEN + 1];
    if (make_tmpdir(dir, sizeof dir)) {
        *st = tape_fail_call(TG_ERR_IO, "%s: cannot create a temporary directory: %s", fn,
                           strerror(errno));
        return NULL;
    }
    /* named by the key: the loader treats equal paths as the same object */
    nat_hex(key, NAT_SHA256_LEN, hex);
    snprintf(so, sizeof so, "%s/%s.so", dir, hex);
    void *h = NULL;
    *st = TG_OK;
    for (size_t i = 0; i < nsrc && *st == TG_OK; i++) {
        snprintf(p, sizeof p, "%s/k%zu.c", dir, i);
        if (write_file(p, src[i].text, src[i].len))
            *st = tape_fail_call(TG_ERR_IO, "%s: cannot write %s: %s", fn, p, strerror(errno));
    }
    if (*st == TG_OK)
        *st = run_cc(cc, dir, nsrc, so, fn);
    if (*st == TG_OK) {
        if (cdir && nat_cache_store(cdir, key, so) == 0) {
            nat_cache_path(cdir, key, p, sizeof p);
            *how = NAT_BUILT_COMPILED;
            h = load(p, fn, st);
        } else {
            *how = NAT_BUILT_COMPILED | NAT_BUILT_UNCACHED;
            h = load(so, fn, st);
        }
    }
    remove_tmp(dir, nsrc, so);
    return h;
}

void *
nat_build(const nat_source *src, size_t nsrc, const nat_opts *o, const char *fn, tg_status *st,
          nat_how *how)
{
    nat_how dummy;
    if (!how)
        how = &dummy;
    *how = 0;
    nat_cc cc;
    *st = nat_cc_init(&cc, o, fn);
    if (*st != TG_OK)
        return NULL;
    unsigned char key[NAT_SHA256_LEN];
    build_key(&cc, src, nsrc, key);
    char cdir[PATHLEN], path[PATHLEN + 80];
    int cached = !(o->flags & TG_COMPILE_NO_CACHE) &&
                 nat_cache_dir(o->cache_dir, cdir, sizeof cdir) == 0;
    void *h = NULL;
    if (cached) {
        nat_cache_path(cdir, key, path, sizeof path);
        if (nat_cache_check(path, key) == 0 && (h = load(path, fn, st)) != NULL)
            *how = NAT_BUILT_CACHED;
    }
    if (!h)
        h = compile_and_load(&cc, src, nsrc, key, cached ? cdir : NULL, fn, st, how);
    nat_cc_free(&cc);
    return h;
}

static void *
job_main(void *p)
{
    nat_job *j = p;
    j->so = nat_build(&j->src, 1, &j->o, j->fn, &j->st, &j->how);
    if (!j->so)
        snprintf(j->msg, sizeof j->msg, "%s", tg_last_error());
    return NULL;
}

tg_status
nat_build_jobs(nat_job *jobs, size_t n)
{
    pthread_t tid[8];
    int started[8] = { 0 };
    for (size_t i = 0; i < n; i++) {
        jobs[i].so = NULL;
        jobs[i].msg[0] = '\0';
        /* the last job (or a failed start) runs on this thread */
        if (i + 1 < n && i < 8 && pthread_create(&tid[i], NULL, job_main, &jobs[i]) == 0)
            started[i] = 1;
        else
            job_main(&jobs[i]);
    }
    for (size_t i = 0; i < n && i < 8; i++)
        if (started[i])
            pthread_join(tid[i], NULL);
    for (size_t i = 0; i < n; i++)
        if (!jobs[i].so)
            return tape_fail_call(jobs[i].st, "%s", jobs[i].msg);
    return TG_OK;
}
