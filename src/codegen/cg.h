/* src/codegen/cg.h -- the Rust code generator's internals: names, one
 * kernel's analysis and emission, and the crate pipeline. */
#ifndef TG_CODEGEN_CG_H
#define TG_CODEGEN_CG_H

#include "tape/fmt.h"
#include "tape/internal.h"

#define CG_IDENT_MAX 128

/* names.c */
bool cg_is_keyword(const char *s);
/* Strict: [A-Za-z_][A-Za-z0-9_]*, not a keyword, not "_". */
bool cg_valid_ident(const char *s);
/* A user-facing name as a snake_case Rust identifier (lowercase, other
 * characters to '_', leading digit prefixed with "v"); never fails, may
 * give a keyword (callers check). */
void cg_sanitize(const char *s, char *out, size_t len);

/* One kernel to emit. */
typedef struct cg_kernel {
    const tg_tape *t;
    char fname[CG_IDENT_MAX * 2 + 2];   /* Rust function name */
    char uname[CG_IDENT_MAX * 2 + 2];   /* the same in upper case, for its constants */
    char (*in)[CG_IDENT_MAX];           /* sanitised input block names */
    char (*out)[CG_IDENT_MAX];          /* sanitised output block names */
    uint32_t work_len;
    unsigned needs;                     /* CG_NEED_* helpers used */
} cg_kernel;

enum {
    CG_NEED_MIN = 1, CG_NEED_MAX = 2, CG_NEED_AZMUL = 4, CG_NEED_SIGNUM = 8,
    CG_NEED_FRACT = 16, CG_NEED_POWK = 32, CG_NEED_LIBM = 64, CG_NEED_ACOSH = 128,
    CG_NEED_POWDX = 256, CG_NEED_POWDY = 512, CG_NEED_HYPOTDX = 1024, CG_NEED_ATAN2DX = 2048,
    CG_NEED_LOOP = 4096         /* tg_ro, tg_rw: the windows loops pass to bodies */
};

typedef struct cg_opts {
    bool f32, no_std;
} cg_opts;

/* partials_rs.c: needs closed over the helpers' own needs (tg_azmul,
 * tg_hypotdx, libm without std), and the helpers' Rust text. */
unsigned cg_partial_needs(unsigned needs, const cg_opts *o);
void     cg_put_partial_helpers(tape_sb *sb, unsigned needs, const cg_opts *o);

/* emit.c: names checked, kernel k emitted into sb (its function and its
 * metadata constants); sets k->work_len and k->needs. */
tg_status cg_kernel_names(cg_kernel *k, const tg_tape *t, const char *fname, char *err, size_t errlen);
void      cg_kernel_free(cg_kernel *k);
tg_status cg_emit_kernel(tape_sb *sb, cg_kernel *k, const cg_opts *o);
void      cg_fmt_const(char *buf, size_t len, double v, bool f32);

/* The crate pipeline: builder.c collects kernels (tg_rust_builder_*, the
 * single-kernel API), lib_rs.c prints src/lib.rs (prelude + kernels),
 * tests_rs.c the generated tests, crate.c writes the crate's files,
 * bundle.c adds a function's derivative kernels. */
struct tg_rust_builder {
    char crate[CG_IDENT_MAX];
    bool crate_explicit;
    cg_opts o;
    cg_kernel *k;
    tg_tape **owned;        /* derivative tapes made by the bundle */
    uint32_t nk, cap, nowned;
    tg_status status;
    char err[256];
};

/* builder.c: the builder's sticky error funnel; the first error wins. */
tg_status cg_fail(tg_rust_builder *b, tg_status s, const char *fmt, ...) TAPE_PRINTF(3, 4);
/* lib_rs.c: the text of src/lib.rs (malloc'd) for b's kernels; sets each
 * kernel's needs to the crate's (they decide the libm dependency). */
tg_status cg_lib_rs(tg_rust_builder *b, char **src);
/* tests_rs.c: tests/kernels.rs, every kernel against the C interpreter. */
tg_status cg_tests_rs(tape_sb *sb, tg_rust_builder *b);

/* c.c: the C translation of t as translation units (o->unit_size; see
 * tg_c_options): *units, nunits malloc'd strings in a malloc'd array, unit
 * 0 the one with the entry points; free with cg_c_units_free.  Errors as
 * tg_c_source (NULL arguments are the caller's bug). */
tg_status cg_c_units(const tg_tape *t, const tg_c_options *o, char ***units, size_t *nunits,
                     size_t *work_len);
void      cg_c_units_free(char **units, size_t nunits);

#endif
