/* main.c -- nist_fit: fit the NIST StRD nonlinear regression problems.
 *
 *     nist_fit [-v] DATA_DIR [DATASET...]
 *
 * For each dataset (all 25 by default) the model is recorded once on a
 * tapegen tape, and MINPACK's lmder fits it from NIST's Start 1 and Start 2
 * with the Jacobian computed by tapegen.  One line per fit: lmder's
 * termination codes, evaluations, fitted vs certified RSS, the smallest log
 * relative error (LRE) over the parameters and the LRE of the RSS.  -v also
 * prints every parameter.  Exit status: 0 when every dataset was read and
 * fitted (stalls included: a stall from a hard start is a result), 1 on a
 * read/parse error or an unknown dataset, 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fit.h"

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

/* Loads and fits one dataset from both starts.  Returns -1 on an error. */
static int
run_dataset(const char *dir, const char *name, int verbose, tally *t)
{
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
    }
    nist_problem_free(&p);
    nist_free(&d);
    return 0;
}

int
main(int argc, char **argv)
{
    int verbose = 0, argi = 1, errors = 0;
    tally t = { 0, 0, 0, 0 };
    clock_t c0 = clock();

    if (argi < argc && strcmp(argv[argi], "-v") == 0) {
        verbose = 1;
        argi++;
    }
    if (argi >= argc || argv[argi][0] == '-') {
        fprintf(stderr, "usage: nist_fit [-v] DATA_DIR [DATASET...]\n"
                        "  fits the NIST StRD nonlinear regression datasets "
                        "(DATA_DIR/NAME.dat; all 25 if none named)\n");
        return 2;
    }
    const char *dir = argv[argi++];
    print_header();
    if (argi == argc) {
        for (size_t i = 0; i < nist_num_models; i++)
            errors += run_dataset(dir, nist_models[i].name, verbose, &t) != 0;
    } else {
        for (; argi < argc; argi++)
            errors += run_dataset(dir, argv[argi], verbose, &t) != 0;
    }
    printf("\nlmder info of each call (the first from the start, then restarts while "
           "the RSS drops):");
    for (int i = 1; i <= 8; i++)
        printf(" %d %s%s", i, nist_lmder_info_str(i), i < 8 ? "," : "\n");
    printf("%d fits (dataset x start): %d reach LRE >= 6 on every parameter, "
           "%d reach LRE >= 4, %d stalled below 4, %d failed; %.2f s CPU\n",
           t.fits, t.lre6, t.lre4, t.fits - t.lre4 - t.failed, t.failed,
           (double)(clock() - c0) / CLOCKS_PER_SEC);
    if (errors)
        fprintf(stderr, "nist_fit: %d dataset(s) could not be loaded\n", errors);
    return errors ? 1 : 0;
}
