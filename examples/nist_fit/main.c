/* main.c -- nist_fit: fit the NIST StRD nonlinear regression problems.
 *
 *     nist_fit [-v] [--rust OUT_DIR] DATA_DIR [DATASET...]
 *
 * For each dataset (all 25 by default) the model is recorded once on a
 * tapegen tape, and MINPACK's lmder fits it from NIST's Start 1 and Start 2
 * with the Jacobian computed by tapegen.  One line per fit: lmder's
 * termination codes, evaluations, fitted vs certified RSS, the smallest log
 * relative error (LRE) over the parameters and the LRE of the RSS.  -v also
 * prints every parameter.
 *
 * --rust OUT_DIR (before or after DATA_DIR) then exports every dataset's
 * residual and Jacobian tapes into one Rust crate in OUT_DIR, builds it
 * with cargo, runs it at the parameters fitted from Start 1 and compares it
 * with the C interpreter (rust_check.c).
 *
 * Exit status: 0 when every dataset was read and fitted (stalls included: a
 * stall from a hard start is a result) and, with --rust, Rust agrees with C;
 * 1 on a read/parse error or an unknown dataset; 2 on a usage error; 3 when
 * the Rust export, the cargo build or the runner failed, or Rust and C
 * disagree; 77 when cargo was not found (the Rust check was skipped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fit.h"
#include "rust_check.h"

static const char *const status_names[] = { "ok", "stalled", "FAILED" };

typedef struct tally {
    int fits, lre6, lre4, failed;
} tally;

static void
print_header(void)
{
    printf("%-9s %-7s %-5s %-11s %6s %5s %17s %17s %6s %6s  %s\n",
           "dataset", "level", "start", "lmder info", "nfev", "njev",
           "RSS", "certified RSS", "minLRE", "RSSLRE", "status");
}

static void
print_fit(const nist_dataset *d, int start, const nist_fit_result *r)
{
    char info[32] = "";
    size_t len = 0;

    for (int i = 0; i < r->runs && len < sizeof info - 4; i++)
        len += (size_t)snprintf(info + len, sizeof info - len, "%s%d",
                                i ? "," : "", r->info[i]);
    printf("%-9s %-7s %-5d %-11s %6d %5d %17.10e %17.10e %6.1f %6.1f  %s",
           d->name, d->difficulty, start, info, r->nfev, r->njev, r->rss,
           d->rss, r->min_lre, r->lre_rss, status_names[r->status]);
    if (r->status != NIST_FIT_OK)
        printf(" (%s)", r->why);
    putchar('\n');
}

static void
print_params(const nist_dataset *d, const nist_fit_result *r)
{
    for (int j = 0; j < d->k; j++)
        printf("      b%-2d = %22.15e   certified %17.10e   LRE %4.1f\n",
               j + 1, r->b[j], d->cert[j], r->lre[j]);
}

/* Loads and fits one dataset from both starts; with rs, adds it to the Rust
 * check with the parameters fitted from Start 1.  Returns -1 on an error. */
static int
run_dataset(const char *dir, const char *name, int verbose, tally *t, nist_rust *rs)
{
    int rc = 0;
    const nist_model *model = nist_model_find(name);
    nist_dataset d;
    nist_problem p;
    char err[512];

    if (!model) {
        fprintf(stderr, "nist_fit: no model for dataset \"%s\"\n", name);
        return -1;
    }
    if (nist_load_named(dir, model->name, &d, err, sizeof err) != 0) {
        fprintf(stderr, "nist_fit: %s\n", err);
        return -1;
    }
    if (nist_problem_init(&p, &d, model, err, sizeof err) != 0) {
        fprintf(stderr, "nist_fit: %s\n", err);
        nist_free(&d);
        return -1;
    }
    if (verbose)
        printf("%s: %s  (%zu observations, tape of %zu instructions)\n",
               d.name, d.model, d.n, tg_tape_size(p.tape));
    for (int s = 1; s <= 2; s++) {
        nist_fit_result r;
        nist_fit(&p, s == 1 ? d.start1 : d.start2, &r);
        print_fit(&d, s, &r);
        if (verbose) {
            print_params(&d, &r);
            if (p.nonfinite)
                printf("      (%ld trial points gave non-finite residuals; lmder "
                       "rejected them)\n", p.nonfinite);
        }
        t->fits++;
        t->lre6 += r.status != NIST_FIT_FAILED && r.min_lre >= 6.0;
        t->lre4 += r.status != NIST_FIT_FAILED && r.min_lre >= 4.0;
        t->failed += r.status == NIST_FIT_FAILED;
        if (rs && s == 1 && nist_rust_add(rs, &d, model, r.b, err, sizeof err) != 0) {
            fprintf(stderr, "nist_fit: %s\n", err);
            rc = -1;
        }
    }
    nist_problem_free(&p);
    nist_free(&d);
    return rc;
}

static int
usage(void)
{
    fprintf(stderr, "usage: nist_fit [-v] [--rust OUT_DIR] DATA_DIR [DATASET...]\n"
                    "  fits the NIST StRD nonlinear regression datasets "
                    "(DATA_DIR/NAME.dat; all 25 if none named)\n"
                    "  -v              print every parameter (and more of the Rust check)\n"
                    "  --rust OUT_DIR  then export the residual and Jacobian tapes to the Rust\n"
                    "                  crate OUT_DIR, build it with cargo ($TG_CARGO, $CARGO,\n"
                    "                  PATH, ~/.cargo/bin), run it at the fitted parameters and\n"
                    "                  compare with C (exit 3: disagreement, 77: no cargo)\n");
    return 2;
}

int
main(int argc, char **argv)
{
    int verbose = 0, errors = 0, rc = 0;
    const char *dir = NULL, *rust_dir = NULL;
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    size_t nnames = 0;
    tally t = { 0, 0, 0, 0 };
    nist_rust rs = { 0 };
    clock_t c0 = clock();

    if (!names)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--rust") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                free(names);
                return usage();
            }
            rust_dir = argv[++i];
        } else if (argv[i][0] == '-') {
            free(names);
            return usage();
        } else if (!dir) {
            dir = argv[i];
        } else {
            names[nnames++] = argv[i];
        }
    }
    if (!dir) {
        free(names);
        return usage();
    }
    rs.verbose = verbose;
    print_header();
    if (nnames == 0) {
        for (size_t i = 0; i < nist_num_models; i++)
            errors += run_dataset(dir, nist_models[i].name, verbose, &t,
                                  rust_dir ? &rs : NULL) != 0;
    } else {
        for (size_t i = 0; i < nnames; i++)
            errors += run_dataset(dir, names[i], verbose, &t, rust_dir ? &rs : NULL) != 0;
    }
    free(names);
    printf("\nlmder info of each call (the first from the start, then restarts while "
           "the RSS drops):");
    for (int i = 1; i <= 8; i++)
        printf(" %d %s%s", i, nist_lmder_info_str(i), i < 8 ? "," : "\n");
    printf("%d fits (dataset x start): %d reach LRE >= 6 on every parameter, "
           "%d reach LRE >= 4, %d stalled below 4, %d failed; %.2f s CPU\n",
           t.fits, t.lre6, t.lre4, t.fits - t.lre4 - t.failed, t.failed,
           (double)(clock() - c0) / CLOCKS_PER_SEC);
    fflush(stdout);
    if (errors)
        fprintf(stderr, "nist_fit: %d dataset(s) could not be loaded\n", errors);
    if (rust_dir && rs.n > 0)
        rc = nist_rust_check(&rs, rust_dir);
    nist_rust_free(&rs);
    return errors ? 1 : rc;
}
