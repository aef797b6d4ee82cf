/* rust_check.h -- nist_fit --rust: the residual and Jacobian tapes of the
 * fitted datasets as one Rust crate, built with cargo, run, and compared
 * with the C interpreter.
 *
 * For every dataset added (with the parameters fitted from Start 1 and the
 * dataset's own data) the crate "nist_kernels" gets two kernels:
 *
 *     nist_kernels_NAME_r    from the residual tape          b, x, y -> r
 *     nist_kernels_NAME_jac  from tg_jacobian_tape(tape, b),  b, x, y -> jac
 *                            optimised with TG_OPT_BASIC     (n x k, row-major)
 *
 * (NAME is the dataset name in lower case) and a runner, src/bin/
 * nist_check.rs, holding every dataset's parameters and data as literals.
 * The runner calls both kernels of each dataset and prints the residuals,
 * the Jacobian and the RSS as hex bit patterns; nist_rust_check builds the
 * crate with `cargo build --release --offline`, runs the runner, and
 * compares with tg_eval and tg_jacobian on the same tape.
 *
 * This is example code: it prints, and runs cargo through popen.
 */
#ifndef NIST_RUST_CHECK_H
#define NIST_RUST_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tapegen.h>

#include "models.h"
#include "nist.h"

#define NIST_RUST_CRATE "nist_kernels"

/* Exit statuses of nist_rust_check (and of nist_fit --rust). */
enum {
    NIST_RUST_AGREE = 0,        /* every dataset: Rust agrees with C           */
    NIST_RUST_FAILED = 3,       /* generation, cargo (errors or warnings), the
                                   runner, or disagreement                    */
    NIST_RUST_NO_CARGO = 77     /* no cargo: crate written, not built (CTest skip) */
};

/* Agreement of one Rust value with its C value: the same value (or both
 * NaN), or at most NIST_RUST_ULPS units in the last place apart, or within
 * NIST_RUST_REL relative.  + - * / sqrt are expected to agree bit for bit;
 * exp and pow may differ by an ulp between glibc and Rust's std. */
#define NIST_RUST_ULPS 4
#define NIST_RUST_REL  1e-12

typedef struct nist_rust_case {
    char name[64];              /* "Misra1a"                                   */
    char fn[64];                /* "misra1a": kernel names nist_kernels_<fn>_r/_jac */
    char formula[512];          /* the model as the .dat file states it        */
    const nist_model *model;
    int k;
    size_t n;
    double b[NIST_MAXP];        /* the parameters of the check                 */
    double *x, *y;              /* n each (owned)                              */
    /* C: tg_eval and tg_jacobian (first k columns) of the residual tape, and
     * tg_eval of the optimised Jacobian tape that was translated */
    double *r_c, *J_c, *J_tape, rss_c;
    size_t tape_size, jac_tape_size;
    /* Rust, from the runner's output */
    int have_rust;
    double *r_rs, *J_rs, rss_rs;
    char rs_error[256];         /* the runner's "error" line, if any           */
} nist_rust_case;

typedef struct nist_rust {
    nist_rust_case *c;
    size_t n, cap;
    int verbose;
    /* timings of the last nist_rust_check, seconds (wall clock) */
    double t_tapes, t_write, t_cargo, t_run;
    size_t lib_bytes;           /* size of the generated src/lib.rs            */
    int crate_changed;          /* some file of the crate was (re)written      */
    int cargo_warnings;         /* "warning:" diagnostics of the cargo build   */
} nist_rust;

/* Adds dataset d (model m) with parameters b (d->k values; the certified
 * values are used instead if b has a non-finite entry).  Copies everything.
 * Returns 0, or -1 with a message in err. */
int nist_rust_add(nist_rust *rs, const nist_dataset *d, const nist_model *m,
                  const double *b, char *err, size_t errlen);
void nist_rust_free(nist_rust *rs);

/* Records the tapes, computes the C values and writes the crate into dir
 * (Cargo.toml, README.md, src/lib.rs, tests/kernels.rs by tg_rust_builder;
 * src/bin/nist_check.rs and .cargo/config.toml by this file).  Files are
 * staged in dir/.nist_gen and replace those in dir only when their bytes
 * differ, so that a rerun does not make cargo rebuild.  Returns 0, or -1
 * with a message in err. */
int nist_rust_generate(nist_rust *rs, const char *dir, char *err, size_t errlen);

/* Writes the runner's source to f.  Returns 0, or -1 on a write error. */
int nist_rust_write_runner(const nist_rust *rs, FILE *f);

/* Reads the runner's output (see rust_check.c) into the cases' Rust fields.
 * Returns 0, or -1 with a message in err on malformed output. */
int nist_rust_parse(nist_rust *rs, FILE *f, char *err, size_t errlen);

/* Units in the last place between a and b (0 for equal values, +0 and -0
 * included; UINT64_MAX when exactly one is NaN). */
uint64_t nist_ulp_distance(double a, double b);
/* |a - b| / max(|a|, |b|); 0 for equal values or two NaNs, INFINITY when
 * only one is NaN. */
double nist_rel_diff(double a, double b);
/* The agreement rule above. */
int nist_values_agree(double a, double b);

/* Comparison of one case. */
typedef struct nist_rust_diff {
    double rel_r, rel_J;        /* largest relative difference                 */
    uint64_t ulp_r, ulp_J;      /* largest ulp distance                        */
    size_t same_r, same_J;      /* entries with the bits of tg_eval / tg_jacobian */
    size_t same_tape;           /* r, J and RSS entries with the bits of tg_eval
                                   on the translated tapes (of n + n*k + 1)    */
    int rss_agree;
    int agree;                  /* everything within the rule, against both    */
} nist_rust_diff;
void nist_rust_compare(const nist_rust_case *c, nist_rust_diff *d);

/* Prints the table; returns the number of cases that do not agree. */
int nist_rust_report(const nist_rust *rs, FILE *out);

/* The path of cargo: $TG_CARGO or $CARGO if set (then it must be an
 * executable), else `cargo` on $PATH, else ~/.cargo/bin/cargo or
 * /root/.cargo/bin/cargo.  Returns 0, or -1 when there is none. */
int nist_find_cargo(char *path, size_t len);

/* The whole check: generate into dir, build with cargo, run, compare, print.
 * Returns NIST_RUST_AGREE, NIST_RUST_NO_CARGO, or NIST_RUST_FAILED (also
 * when the build gave warnings: the generated code must compile cleanly). */
int nist_rust_check(nist_rust *rs, const char *dir);

#endif /* NIST_RUST_CHECK_H */
