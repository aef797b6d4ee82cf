/* src/codegen/native/native.h -- the run-time compiler: C source in, a
 * loaded shared object out.  It runs the user's C compiler as a subprocess
 * (argv, never a shell), keeps every shared object in a cache keyed by a
 * SHA-256 of everything that determines its bytes, and loads it with
 * dlopen.  It consumes the C backend and knows nothing of Rust.
 *
 *   sha256.c   FIPS 180-4 SHA-256 (keys and checksums; no crypto library)
 *   spawn.c    splitting a command, running it, capturing its output
 *   cc.c       which compiler, its identity (`cc --version`, cached per
 *              process), the flags
 *   cache.c    the cache directory and its entries (shared object + trailer)
 *   build.c    source -> cached or freshly compiled shared object -> dlopen
 *   kernel.c   tg_compile, tg_kernel_eval(_batch), tg_kernel_free
 *   route.c    tg_tape_compile: derivative tapes compiled and attached */
#ifndef TG_CODEGEN_NATIVE_H
#define TG_CODEGEN_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#include "tapegen.h"

/* ---------------------------------------------------------------- sha256.c */
#define NAT_SHA256_LEN 32
typedef struct nat_sha256 {
    uint32_t h[8];
    uint64_t len;               /* bytes hashed so far */
    unsigned char buf[64];
    size_t fill;
} nat_sha256;
void nat_sha256_init(nat_sha256 *s);
void nat_sha256_update(nat_sha256 *s, const void *data, size_t len);
void nat_sha256_final(nat_sha256 *s, unsigned char out[NAT_SHA256_LEN]);
void nat_sha256_buf(const void *data, size_t len, unsigned char out[NAT_SHA256_LEN]);
/* len bytes as 2*len lowercase hex digits plus NUL into out. */
void nat_hex(const unsigned char *d, size_t len, char *out);

/* ---------------------------------------------------------------- spawn.c */
#define NAT_MAX_ARGS 128

/* A growable argv: words owned by the list. */
typedef struct nat_argv {
    char *v[NAT_MAX_ARGS + 1];
    int n;
} nat_argv;
/* Appends a copy of s; -1 when full or out of memory. */
int  nat_argv_add(nat_argv *a, const char *s);
/* Appends the words of cmd split on blanks (no quoting, no shell); -1 when
 * full, out of memory, or cmd has no word. */
int  nat_argv_split(nat_argv *a, const char *cmd);
void nat_argv_free(nat_argv *a);

/* Runs argv (PATH search for argv[0]) with stdin from /dev/null and stdout
 * and stderr captured together into *out (malloc'd, NUL-terminated, at most
 * NAT_OUT_MAX bytes kept; may be NULL to discard).  Returns 0 when the
 * program ran, with its exit code in *code (-1: killed by a signal, or the
 * status was reaped elsewhere); -1 with errno set when it could not be
 * started (ENOENT: no such program). */
#define NAT_OUT_MAX 65536
int  nat_run(const nat_argv *argv, char **out, int *code);

/* ------------------------------------------------------------------- cc.c */
/* Which compiler and how: the command words, the flags (everything but the
 * file names) and the identity that goes into the cache key. */
typedef struct nat_cc {
    nat_argv cmd;               /* o->cc, else $CC, else "cc", split on blanks */
    nat_argv flags;
    unsigned char id[NAT_SHA256_LEN];   /* compiler --version, flags, CPU when -march=native */
} nat_cc;

/* Options as the native unit sees them (public options plus extensions). */
typedef struct nat_opts {
    const char *cc;
    const char *cache_dir;
    int opt_level;
    unsigned flags;             /* TG_COMPILE_* */
} nat_opts;

/* Fills c from o.  On failure returns a status (TG_ERR_UNSUPPORTED when the
 * compiler cannot be run or identify itself) with the message in
 * tg_last_error, prefixed by fn. */
tg_status nat_cc_init(nat_cc *c, const nat_opts *o, const char *fn);
void      nat_cc_free(nat_cc *c);

/* ---------------------------------------------------------------- cache.c */
/* The cache directory for o (o->cache_dir, else $XDG_CACHE_HOME/tapegen,
 * else $HOME/.cache/tapegen) into buf, created (with parents) mode 0700.
 * Returns 0 when it exists and is writable, -1 otherwise (the caller then
 * compiles without caching; not an error). */
int  nat_cache_dir(const char *cache_dir, char *buf, size_t len);
/* Path of the entry for key in dir. */
void nat_cache_path(const char *dir, const unsigned char key[NAT_SHA256_LEN], char *buf, size_t len);
/* 0 if the entry at path is a valid entry for key (our trailer, the key,
 * the checksum of the shared object); -1 otherwise (missing, foreign,
 * corrupt, truncated, stale, wrong owner or mode). */
int  nat_cache_check(const char *path, const unsigned char key[NAT_SHA256_LEN]);
/* Writes the shared object at so_path as the entry for key in dir,
 * atomically (temporary file + rename).  0 or -1. */
int  nat_cache_store(const char *dir, const unsigned char key[NAT_SHA256_LEN], const char *so_path);

/* ---------------------------------------------------------------- build.c */
/* One C translation unit to compile. */
typedef struct nat_source {
    const char *text;
    size_t len;
} nat_source;

/* What a nat_build did, for tests and benchmarks. */
typedef enum { NAT_BUILT_CACHED = 1, NAT_BUILT_COMPILED = 2, NAT_BUILT_UNCACHED = 4 } nat_how;

/* Compiles the sources into one shared object (or finds it in the cache)
 * and dlopens it.  Returns the handle, or NULL with the message in
 * tg_last_error (prefixed by fn) and the status in *st. */
void *nat_build(const nat_source *src, size_t nsrc, const nat_opts *o, const char *fn,
                tg_status *st, nat_how *how);

/* One build of a batch of builds run at the same time (one thread each, so
 * the compilers use the cores in parallel). */
typedef struct nat_job {
    nat_source src;             /* in: one translation unit (owned by the caller) */
    nat_opts o;                 /* in */
    const char *fn;             /* in: message prefix */
    void *so;                   /* out: the handle, or NULL */
    tg_status st;               /* out */
    nat_how how;                /* out */
    char msg[1024];             /* out: the message when st != TG_OK */
} nat_job;
/* Runs every job; afterwards the first failure (if any) is also the calling
 * thread's tg_last_error, and its status is returned. */
tg_status nat_build_jobs(nat_job *jobs, size_t n);

/* --------------------------------------------------------------- kernel.c */
typedef int (*nat_fn)(const double *x, double *y, double *work);
typedef int (*nat_batch_fn)(size_t npts, const double *X, double *Y, double *work);

struct tg_kernel {
    void *so;                   /* dlopen handle of the kernel */
    void *so_batch;             /* of the batch variant (NULL: batches loop over fn) */
    nat_fn fn;
    nat_batch_fn batch;
    size_t nin, nout;
    size_t work;                /* doubles fn needs */
    size_t batch_work;          /* doubles one batch call needs */
    size_t ninst;               /* instructions of the tape (to decide on threads) */
    nat_how how;                /* cache hit or compiled (tests, benchmarks) */
};

/* Compiling a kernel in two steps, so that several kernels compile at the
 * same time: the C sources into jobs[0] (the kernel) and, with batch,
 * jobs[1] (its batch variant); then, after nat_build_jobs, the kernel from
 * the loaded objects (which it takes over).  The batch variant is compiled
 * at -O3, where gcc 12 vectorises its loops over the points of a block
 * (W1 n = 100: 0.49x the time of single calls per point, against 0.72x at
 * -O1 -ftree-vectorize; W1 n = 1000 gradient: 3.7 s against 0.7 s for the
 * kernel alone at -O1).  nat_kernel_jobs returns the number of jobs (0 on
 * error, with *st set); nat_kernel_jobs_free releases the sources. */
size_t     nat_kernel_jobs(const tg_tape *t, const nat_opts *o, int batch, const char *fn,
                           nat_job *jobs, size_t *work, tg_status *st);
void       nat_kernel_jobs_free(nat_job *jobs, size_t n);
tg_kernel *nat_kernel_make(const tg_tape *t, nat_job *jobs, size_t n, size_t work,
                           const char *fn, tg_status *st);
/* The public options (either may be NULL) in native form. */
void nat_opts_from(nat_opts *n, const tg_compile_options *o, unsigned flags);

#endif
