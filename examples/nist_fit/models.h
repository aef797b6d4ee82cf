/* models.h -- the 25 NIST StRD models, written with tapegen's operations.
 *
 * Each model function records the predicted response y = f(b, x) for one
 * observation: b[0..k) are the parameters b1..bk and x is the predictor,
 * both values on the same tape.  The formulas are those printed in the
 * "Model:" section of each NAME.dat file, operation for operation.
 */
#ifndef NIST_MODELS_H
#define NIST_MODELS_H

#include <stddef.h>
#include <tapegen.h>

typedef tg_var (*nist_model_fn)(const tg_var *b, tg_var x);

typedef struct nist_model {
    const char *name;       /* dataset name, e.g. "Misra1a"               */
    int k;                  /* number of parameters                       */
    nist_model_fn fn;
} nist_model;

/* The models in NIST's order (lower, average, higher difficulty). */
extern const nist_model nist_models[];
extern const size_t nist_num_models;

/* The model of the dataset called name (case-insensitive), or NULL. */
const nist_model *nist_model_find(const char *name);

#endif /* NIST_MODELS_H */
