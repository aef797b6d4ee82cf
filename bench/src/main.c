/* bench/src/main.c -- tgbench: the benchmark harness's command line.
 *
 *   tgbench [--quick | --smoke] [--workload w1|w2|w3|w4|w1s|w4s|w3s|all] [--n N]...
 *           [--batch-points P] [--rounds R] [--min-time S] [--no-adolc]
 *           [--no-loops] [--only OP] [--csv FILE] [-v]
 *   tgbench --loopmem hand|flat|store|ckptK [--n STEPS]
 *   tgbench --memprobe tapegen|adolc|hand [--n N] [--csv FILE]
 *   tgbench --rust-gen DIR [--n N] [--csv FILE]
 *   tgbench --report OUTDIR FILE.csv...
 *
 * Exit status: 0 when every check passed, 1 on a mismatch or failure, 2 on
 * a usage error. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegen.h>

#include "adolc_iface.h"
#include "bench.h"
#include "systems.h"

static void
usage(FILE *f)
{
    fputs("usage: tgbench [--quick | --smoke] [--workload w1|w2|w3|w4|w1s|w4s|w3s|all] [--n N]...\n"
          "               [--batch-points P] [--rounds R] [--min-time S] [--no-adolc]\n"
          "               [--no-loops] [--only OP] [--csv FILE] [-v]\n"
          "       tgbench --loopmem hand|flat|store|ckptK [--n STEPS]\n"
          "       tgbench --memprobe tapegen|adolc|hand [--n N] [--csv FILE]\n"
          "       tgbench --rust-gen DIR [--n N] [--csv FILE]\n"
          "       tgbench --report OUTDIR FILE.csv...\n"
          "\n"
          "  --quick      smallest sizes, each measurement >= 0.02 s, 3 rounds\n"
          "  --smoke      correctness of every system on tiny sizes, minimal timing\n"
          "  --workload   which workload (default all); --n gives its sizes\n"
          "               (W1 default 2 10 100 1000 100000, W4 default 100 1000;\n"
          "               w1s/w4s: W1's sparse Hessian and W4's sparse Jacobian,\n"
          "               default 1000 10000 100000; w3s: W3 as a scan, --n = steps,\n"
          "               default 1000 100000)\n"
          "  --no-loops   leave out the loop variants (W1 as a map, issue 11)\n"
          "  --loopmem    one peak-memory probe of W3 as a scan (run by w3s itself)\n"
          "  --rounds     rounds per measurement (default 7)\n"
          "  --min-time   seconds each measurement lasts at least (default 0.2)\n"
          "  --no-adolc   leave ADOL-C out even when it is built in\n"
          "  --only OP    time only the cases whose op begins with OP (e.g. record)\n"
          "  --no-lazy    tg_gradient/tg_hvp sweep only (no lazy derivative tapes)\n"
          "  --csv FILE   append the raw rows to FILE (header when FILE is new)\n"
          "  --inject-mismatch  spoil tapegen's gradient by 1e-7 (relative) before its\n"
          "               check, to test that the harness catches it (exit status 1)\n",
          f);
}

static FILE *
open_csv(const char *path)
{
    if (!path)
        return NULL;
    FILE *probe = fopen(path, "r");
    int exists = probe != NULL;
    if (probe)
        fclose(probe);
    FILE *f = fopen(path, "a");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (!exists)
        bench_write_csv_header(f);
    return f;
}

int
main(int argc, char **argv)
{
    bench_opts o = { 0 };
    o.rounds = 7;
    o.min_time = 0.2;
    o.adolc = 1;
    const char *workload = "all", *csv_path = NULL, *memprobe = NULL, *rust_dir = NULL;
    const char *loopmem = NULL;
    size_t sizes[16];
    int nsizes = 0, rounds_set = 0, time_set = 0;
    long batch_points = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(a, "--smoke") == 0) {
            o.smoke = 1;
        } else if (strcmp(a, "--workload") == 0 && more) {
            workload = argv[++i];
        } else if (strcmp(a, "--n") == 0 && more) {
            if (nsizes < 16)
                sizes[nsizes++] = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--batch-points") == 0 && more) {
            batch_points = atol(argv[++i]);
        } else if (strcmp(a, "--rounds") == 0 && more) {
            o.rounds = atoi(argv[++i]);
            rounds_set = 1;
        } else if (strcmp(a, "--min-time") == 0 && more) {
            o.min_time = atof(argv[++i]);
            time_set = 1;
        } else if (strcmp(a, "--inject-mismatch") == 0) {
            o.inject_mismatch = 1;
        } else if (strcmp(a, "--only") == 0 && more) {
            o.only = argv[++i];
        } else if (strcmp(a, "--no-lazy") == 0) {
            o.no_lazy = 1;
        } else if (strcmp(a, "--no-loops") == 0) {
            o.no_loops = 1;
        } else if (strcmp(a, "--loopmem") == 0 && more) {
            loopmem = argv[++i];
        } else if (strcmp(a, "--no-adolc") == 0) {
            o.adolc = 0;
        } else if (strcmp(a, "--csv") == 0 && more) {
            csv_path = argv[++i];
        } else if (strcmp(a, "-v") == 0) {
            o.verbose = 1;
        } else if (strcmp(a, "--memprobe") == 0 && more) {
            memprobe = argv[++i];
        } else if (strcmp(a, "--rust-gen") == 0 && more) {
            rust_dir = argv[++i];
        } else if (strcmp(a, "--report") == 0 && more) {
            return run_report(argv[i + 1], argc - i - 2, argv + i + 2);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tgbench: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.quick && !rounds_set)
        o.rounds = 3;
    if (o.quick && !time_set)
        o.min_time = 0.02;
    if (o.smoke && !rounds_set)
        o.rounds = 1;
    if (o.smoke && !time_set)
        o.min_time = 0.001;
    o.threads_max = 2;

    FILE *csv = open_csv(csv_path);
    int failed = 0;

    if (loopmem) {
        failed = run_loopmem(loopmem, nsizes ? sizes[0] : 1000);
    } else if (memprobe) {
        failed = run_memprobe(memprobe, nsizes ? sizes[0] : 100000, csv);
    } else if (rust_dir) {
        failed = run_rust_gen(rust_dir, nsizes ? sizes[0] : 1000, csv);
    } else {
        int all = strcmp(workload, "all") == 0;
        int w1 = all || strcmp(workload, "w1") == 0, w2 = all || strcmp(workload, "w2") == 0;
        int w3 = all || strcmp(workload, "w3") == 0, w4 = all || strcmp(workload, "w4") == 0;
        int w1s = all || strcmp(workload, "w1s") == 0, w4s = all || strcmp(workload, "w4s") == 0;
        int w3s = (all && !o.no_loops) || strcmp(workload, "w3s") == 0;
        if (!w1 && !w2 && !w3 && !w4 && !w1s && !w4s && !w3s) {
            fprintf(stderr, "tgbench: unknown workload %s\n", workload);
            return 2;
        }
        printf("tgbench: tapegen %s, ADOL-C %s, OpenMP %s; %d rounds, >= %g s per measurement%s\n",
               TG_VERSION_STRING, o.adolc && adb_available() ? adb_version() : "off",
               bench_have_openmp() ? "on" : "off", o.rounds, o.min_time,
               o.smoke ? " (smoke)" : o.quick ? " (quick)" : "");
        if (w1) {
            static const size_t full[] = { 2, 10, 100, 1000, 100000 };
            static const size_t quick[] = { 2, 10, 100 };
            static const size_t smoke[] = { 2, 100 };
            const size_t *ns = o.smoke ? smoke : o.quick ? quick : full;
            int cnt = o.smoke ? 2 : o.quick ? 3 : 5;
            if (nsizes && !all) {
                ns = sizes;
                cnt = nsizes;
            }
            for (int k = 0; k < cnt; k++) {
                size_t bp = 0;
                if (ns[k] == 100)
                    bp = batch_points >= 0 ? (size_t)batch_points : o.smoke ? 64 : 10000;
                failed |= run_w1(&o, ns[k], bp, csv);
            }
        }
        if (w2)
            failed |= run_w2(&o, csv);
        if (w3)
            failed |= run_w3(&o, csv);
        if (w3s) {
            static const size_t full[] = { 1000, 100000 };
            static const size_t quick[] = { 1000, 10000 };
            static const size_t smoke[] = { 100 };
            const size_t *ns = o.smoke ? smoke : o.quick ? quick : full;
            int cnt = o.smoke ? 1 : 2;
            if (nsizes && !all) {
                ns = sizes;
                cnt = nsizes;
            }
            for (int k = 0; k < cnt; k++)
                failed |= run_w3_scan(&o, ns[k], csv);
        }
        if (w4) {
            static const size_t full[] = { 100, 1000 };
            static const size_t quick[] = { 100 };
            const size_t *ns = o.quick || o.smoke ? quick : full;
            int cnt = o.quick || o.smoke ? 1 : 2;
            if (nsizes && !all) {
                ns = sizes;
                cnt = nsizes;
            }
            for (int k = 0; k < cnt; k++)
                failed |= run_w4(&o, ns[k], csv);
        }
        if (w1s || w4s) {
            static const size_t full[] = { 1000, 10000, 100000 };
            static const size_t quick[] = { 1000 };
            static const size_t smoke[] = { 10 };
            const size_t *ns = o.smoke ? smoke : o.quick ? quick : full;
            int cnt = o.smoke || o.quick ? 1 : 3;
            if (nsizes && !all) {
                ns = sizes;
                cnt = nsizes;
            }
            for (int k = 0; k < cnt; k++) {
                if (w1s)
                    failed |= run_w1_sparse(&o, ns[k], csv);
                if (w4s)
                    failed |= run_w4_sparse(&o, ns[k], csv);
            }
        }
        if (failed)
            fprintf(stderr, "tgbench: CHECK FAILURES (see above)\n");
        else
            printf("tgbench: all systems agree with the hand-written derivatives\n");
    }
    if (csv)
        fclose(csv);
    return failed ? 1 : 0;
}
