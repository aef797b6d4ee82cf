/* nist.h -- reading NIST StRD nonlinear regression files (NAME.dat).
 *
 * A .dat file states the model in its header, a table of parameters
 * ("b1 = start1 start2 certified sd"), the certified residual sum of
 * squares, and then a "Data:  y  x" section with one observation per line.
 * nist_load reads all of it and checks it for consistency; every problem is
 * reported through the error buffer, never by aborting.
 */
#ifndef NIST_H
#define NIST_H

#include <stddef.h>

#define NIST_MAXP 16                    /* most parameters of any StRD problem: 9 */

typedef struct nist_dataset {
    char name[64];                      /* "Misra1a" (from "Dataset Name:")      */
    char difficulty[16];                /* "Lower", "Average" or "Higher"         */
    char model[512];                    /* "y = b1*(1-exp[-b2*x])", one line      */
    int k;                              /* number of parameters b1..bk            */
    double start1[NIST_MAXP];
    double start2[NIST_MAXP];
    double cert[NIST_MAXP];             /* certified values                       */
    double sd[NIST_MAXP];               /* their certified standard deviations    */
    int cert_digits[NIST_MAXP];         /* significant digits printed for cert[]  */
    double rss;                         /* certified residual sum of squares      */
    int rss_digits;
    size_t n;                           /* observations                           */
    double *x, *y;                      /* n predictor / response values (owned)  */
} nist_dataset;

/* Reads the file at path into *d.  Returns 0, or -1 with a message in
 * err[0..errlen) (d then owns nothing).  Release with nist_free. */
int nist_load(const char *path, nist_dataset *d, char *err, size_t errlen);
void nist_free(nist_dataset *d);

/* Reads "DIR/NAME.dat". */
int nist_load_named(const char *dir, const char *name, nist_dataset *d,
                    char *err, size_t errlen);

#endif /* NIST_H */
